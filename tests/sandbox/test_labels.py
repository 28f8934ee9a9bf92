"""v4 association labels (both path families), labeled associations,
HUBSPOT_DEFINED type ids of every type, creating records with
associations, the per-object v3 association routes."""

import pytest

FAMILIES = ('/crm/v4/associations', '/crm/associations/v4')
CARS = 'p12345678_cars'


def labels(sb, f, t, family=FAMILIES[0]):
    r = sb.api('GET', '%s/%s/%s/labels' % (family, f, t))
    assert r.status == 200, r.body
    return r.json()['results']


# ---------------------------------------------------------------- label definitions


@pytest.mark.parametrize('family', FAMILIES)
def test_create_paired_label_gives_both_directions(sandbox, family):
    r = sandbox.api('POST', '%s/contacts/companies/labels' % family,
                    {'name': 'employee_manager', 'label': 'Employee', 'inverseLabel': 'Manager'})
    assert r.status == 200, r.body
    res = r.json()['results']
    assert [x['label'] for x in res] == ['Employee', 'Manager']
    assert all(x['category'] == 'USER_DEFINED' for x in res)
    fwd, inv = res[0]['typeId'], res[1]['typeId']
    assert {'category': 'USER_DEFINED', 'typeId': fwd, 'label': 'Employee'} in \
        labels(sandbox, 'contacts', 'companies', family)
    assert {'category': 'USER_DEFINED', 'typeId': inv, 'label': 'Manager'} in \
        labels(sandbox, 'companies', 'contacts', FAMILIES[1 - FAMILIES.index(family)])
    # usable at once, and the other side sees the inverse label
    r = sandbox.api('PUT', '/crm/v4/objects/contacts/1000001/associations/companies/2000002',
                    [{'associationCategory': 'USER_DEFINED', 'associationTypeId': fwd}])
    assert r.status == 201 and r.json()['labels'] == ['Employee']
    back = sandbox.api('GET', '/crm/v4/objects/companies/2000002/associations/contacts').json()
    types = [t for x in back['results'] if x['toObjectId'] == 1000001
             for t in x['associationTypes']]
    assert {'category': 'USER_DEFINED', 'typeId': inv, 'label': 'Manager'} in types
    # and in the log under the family it was called with
    assert sandbox.count(endpoint='POST %s/contacts/companies/labels' % family) == 1


def test_unpaired_label_reads_the_same_both_ways(sandbox):
    r = sandbox.api('POST', '/crm/v4/associations/deals/tickets/labels',
                    {'name': 'escalation', 'label': 'Escalation'})
    assert len(r.json()['results']) == 1
    tid = r.json()['results'][0]['typeId']
    inv = [x for x in labels(sandbox, 'tickets', 'deals') if x['label'] == 'Escalation']
    assert len(inv) == 1 and inv[0]['typeId'] != tid


@pytest.mark.parametrize('body,msg', [
    ({'name': 'bad-name', 'label': 'X'}, 'no hyphens'),
    ({'name': '9lives', 'label': 'X'}, 'start with a digit'),
    ({'name': 'ok'}, 'label'),
    ({'name': 'billing_contact', 'label': 'Dup'}, 'already exists'),
])
def test_label_validation(sandbox, body, msg):
    r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/labels', body)
    assert r.status == 400 and msg in r.json()['message']


def test_labels_only_between_labelable_types(sandbox):
    r = sandbox.api('POST', '/crm/v4/associations/notes/contacts/labels',
                    {'name': 'x', 'label': 'X'})
    assert r.status == 400
    r = sandbox.api('POST', '/crm/v4/associations/%s/deals/labels' % CARS,
                    {'name': 'trade_in', 'label': 'Trade-in'})
    assert r.status == 200


def test_ten_labels_per_pair(sandbox):
    # contacts -> deals has "Decision maker" already
    for i in range(9):
        r = sandbox.api('POST', '/crm/v4/associations/contacts/deals/labels',
                        {'name': 'role_%d' % i, 'label': 'Role %d' % i})
        assert r.status == 200, (i, r.body)
    r = sandbox.api('POST', '/crm/v4/associations/contacts/deals/labels',
                    {'name': 'role_x', 'label': 'One too many'})
    assert r.status == 400 and r.json()['context'] == {'maxLabels': ['10']}


def test_rename_and_delete_labels(sandbox):
    made = sandbox.api('POST', '/crm/associations/v4/contacts/tickets/labels',
                       {'name': 'reporter', 'label': 'Reporter'}).json()['results'][0]['typeId']
    r = sandbox.api('PUT', '/crm/v4/associations/contacts/tickets/labels',
                    {'associationTypeId': made, 'label': 'Original reporter'})
    assert r.status == 204
    assert {'category': 'USER_DEFINED', 'typeId': made, 'label': 'Original reporter'} in \
        labels(sandbox, 'contacts', 'tickets')
    assert any(x['label'] == 'Original reporter' for x in labels(sandbox, 'tickets',
                                                                 'contacts'))
    # in use: refused; unused: gone from both sides
    sandbox.api('PUT', '/crm/v4/objects/contacts/1000001/associations/tickets/5000001',
                [{'associationCategory': 'USER_DEFINED', 'associationTypeId': made}])
    r = sandbox.api('DELETE', '/crm/v4/associations/contacts/tickets/labels/%d' % made)
    assert r.status == 400 and r.json()['subCategory'] == 'crm.associations.LABEL_IN_USE'
    sandbox.api('DELETE', '/crm/v4/objects/contacts/1000001/associations/tickets/5000001')
    assert sandbox.api('DELETE', '/crm/associations/v4/contacts/tickets/labels/%d'
                       % made).status == 204
    assert not [x for x in labels(sandbox, 'contacts', 'tickets') if x['typeId'] == made]
    assert not [x for x in labels(sandbox, 'tickets', 'contacts') if x['label']]
    # HubSpot's own types cannot go
    r = sandbox.api('DELETE', '/crm/v4/associations/contacts/companies/labels/1')
    assert r.status == 400
    assert sandbox.api('DELETE', '/crm/v4/associations/contacts/companies/labels/777').status \
        == 404
    # a reset forgets them
    sandbox.api('POST', '/crm/v4/associations/contacts/tickets/labels',
                {'name': 'temp', 'label': 'Temp'})
    sandbox.reset()
    assert [x['label'] for x in labels(sandbox, 'contacts', 'tickets')] == [None]


# ---------------------------------------------------------------- labeled associations


def test_labeled_put_replaces_and_batch_label_calls(demo):
    lab = {x['label']: x['typeId'] for x in labels(demo, 'contacts', CARS)}
    car = demo.api('GET', '/crm/v3/objects/' + CARS, query={'limit': 1}).json()['results'][0]
    url = '/crm/v4/objects/contacts/1000002/associations/%s/%s' % (CARS, car['id'])
    spec = lambda t: {'associationCategory': 'USER_DEFINED', 'associationTypeId': t}  # noqa
    r = demo.api('PUT', url, [spec(lab['Owned car']), spec(lab['Test driver'])])
    assert r.status == 201 and sorted(r.json()['labels']) == ['Owned car', 'Test driver']
    r = demo.api('PUT', url, [spec(lab['Test driver'])])
    assert r.json()['labels'] == ['Test driver']
    got = demo.api('GET', '/crm/v4/objects/contacts/1000002/associations/' + CARS).json()
    types = {t['typeId'] for x in got['results'] if str(x['toObjectId']) == car['id']
             for t in x['associationTypes']}
    assert types == {lab['Test driver'], lab[None]}
    # batch create adds, batch labels/archive removes only the label
    b = demo.api('POST', '/crm/v4/associations/contacts/%s/batch/create' % CARS, {'inputs': [
        {'from': {'id': '1000002'}, 'to': {'id': car['id']}, 'types': [spec(lab['Owned car'])]}]})
    assert b.status == 201 and sorted(b.json()['results'][0]['labels']) == [
        'Owned car', 'Test driver']
    demo.api('POST', '/crm/v4/associations/contacts/%s/batch/labels/archive' % CARS, {'inputs': [
        {'from': {'id': '1000002'}, 'to': {'id': car['id']},
         'types': [spec(lab['Test driver']), spec(lab['Owned car'])]}]})
    raw = demo.record('contacts', '1000002')['associations'][CARS][car['id']]
    assert raw == [lab[None]]


# ---------------------------------------------------------------- type ids


@pytest.mark.parametrize('f,t,fwd,inv', [
    ('notes', 'contacts', 202, 201), ('notes', 'companies', 190, 189),
    ('notes', 'deals', 214, 213), ('calls', 'tickets', 220, 219),
    ('emails', 'deals', 210, 209), ('meetings', 'leads', 601, 600),
    ('tasks', 'quotes', 218, 217), ('communications', 'contacts', 81, 82),
    ('postal_mail', 'companies', 459, 460), ('deals', 'line_items', 19, 20),
    ('quotes', 'line_items', 67, 68), ('quotes', 'deals', 64, 63),
    ('leads', 'contacts', 608, 609), ('invoices', 'line_items', 409, 410),
    ('0-421', 'contacts', 906, 907), ('0-162', 'deals', 794, 795),
    ('projects', 'tickets', 1240, 1241), ('calls', 'meetings', 399, 400),
])
def test_default_association_types_per_direction(demo, f, t, fwd, inv):
    a = demo.api('GET', '/crm/v3/objects/' + f, query={'limit': 1}).json()['results'][0]['id']
    b = demo.api('GET', '/crm/v3/objects/' + t, query={'limit': 1}).json()['results'][0]['id']
    r = demo.api('PUT', '/crm/v4/objects/%s/%s/associations/default/%s/%s' % (f, a, t, b))
    assert r.status == 200, r.body
    specs = {(x['from']['id'], x['associationSpec']['associationTypeId'])
             for x in r.json()['results']}
    assert specs == {(a, fwd), (b, inv)}
    ls = labels(demo, f, t)
    assert {'category': 'HUBSPOT_DEFINED', 'typeId': fwd, 'label': None} in ls
    back = demo.api('GET', '/crm/v4/objects/%s/%s/associations/%s' % (t, b, f)).json()
    assert any(x['toObjectId'] == int(a) and
               {'category': 'HUBSPOT_DEFINED', 'typeId': inv, 'label': None}
               in x['associationTypes'] for x in back['results'])


def test_primary_types_and_one_way_types(demo):
    ls = {x['typeId']: x['label'] for x in labels(demo, 'leads', 'contacts')}
    assert ls == {578: 'Primary', 608: None}
    assert {x['typeId'] for x in labels(demo, 'contacts', 'leads')} == {609}
    assert {x['typeId']: x['label'] for x in labels(demo, 'quotes', 'contacts')} == {
        69: None, 702: 'Signer', 1226: 'Billing contact'}
    # quote -> quote template exists one way only
    assert [x['typeId'] for x in labels(demo, 'quotes', 'quote_templates')] == [286]
    assert labels(demo, 'quote_templates', 'quotes') == []
    q = demo.api('GET', '/crm/v4/objects/quotes/14000001/associations/quote_templates').json()
    assert q['results'][0]['associationTypes'][0]['typeId'] == 286
    # products and users cannot be associated
    r = demo.api('PUT', '/crm/v4/objects/products/7000001/associations/default/deals/3000001')
    assert r.status == 400
    assert labels(demo, 'products', 'deals') == []


def test_lead_primary_contact_moves(demo):
    lead = demo.api('GET', '/crm/v3/objects/leads', query={'limit': 1}).json()['results'][0]['id']
    cur = demo.record('leads', lead)['associations']['contacts']
    (old,) = [k for k, v in cur.items() if 578 in v]
    new = '1000050' if old != '1000050' else '1000049'
    r = demo.api('PUT', '/crm/v4/objects/leads/%s/associations/contacts/%s' % (lead, new),
                 [{'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 578}])
    assert r.status == 201
    cur = demo.record('leads', lead)['associations']['contacts']
    assert cur[new] == [578, 608] and cur[old] == [608]
    assert demo.api('GET', '/crm/v3/objects/leads/' + lead).status == 200


# ---------------------------------------------------------------- create with associations


def test_note_created_with_associations(demo):
    r = demo.api('POST', '/crm/v3/objects/notes', {
        'properties': {'hs_timestamp': '2024-05-02T10:00:00Z', 'hs_note_body': '<p>call log</p>'},
        'associations': [
            {'to': {'id': 1000001}, 'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                               'associationTypeId': 202}]},
            {'to': {'id': '3000002'}, 'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                                 'associationTypeId': 214}]}]})
    assert r.status == 201, r.body
    nid = int(r.json()['id'])
    got = demo.api('GET', '/crm/v4/objects/contacts/1000001/associations/notes').json()
    assert nid in [x['toObjectId'] for x in got['results']]
    raw = demo.record('notes', nid)['associations']
    assert raw['contacts'] == {'1000001': [202]} and raw['deals'] == {'3000002': [214]}


@pytest.mark.parametrize('assoc,msg', [
    ([{'to': {'id': 1000001}, 'types': []}], 'at least one type'),
    ([{'to': {'id': 1000001}}], 'at least one type'),
    ([{'to': {'id': 1000001}, 'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                         'associationTypeId': 214}]}], 'does not exist'),
    ([{'to': {'id': 1000001}, 'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                         'associationTypeId': 194}]}], 'not a valid'),
])
def test_create_association_errors(demo, assoc, msg):
    r = demo.api('POST', '/crm/v3/objects/notes', {
        'properties': {'hs_timestamp': '2024-05-02T10:00:00Z'}, 'associations': assoc})
    assert r.status == 400 and msg in r.json()['message'], r.body
    assert demo.count(method='POST', status=201) == 0


def test_batch_create_with_associations_and_lead_rule(demo):
    spec = {'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 204}
    r = demo.api('POST', '/crm/v3/objects/tasks/batch/create', {'inputs': [
        {'properties': {'hs_timestamp': '2024-06-01T09:00:00Z', 'hs_task_subject': 'A'},
         'associations': [{'to': {'id': '1000003'}, 'types': [spec]}]},
        {'properties': {'hs_timestamp': '2024-06-02T09:00:00Z', 'hs_task_subject': 'B'},
         'associations': [{'to': {'id': '1000004'}, 'types': [spec]}]}]})
    assert r.status == 201, r.body
    for res, cid in zip(r.json()['results'], ('1000003', '1000004')):
        assert demo.record('tasks', res['id'])['associations']['contacts'] == {cid: [204]}
    r = demo.api('POST', '/crm/v3/objects/leads/batch/create', {'inputs': [
        {'properties': {'hs_lead_name': 'x'}, 'objectWriteTraceId': 't1'},
        {'properties': {'hs_lead_name': 'y'}, 'objectWriteTraceId': 't2', 'associations': [
            {'to': {'id': '1000005'}, 'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                                 'associationTypeId': 578}]}]}]})
    assert r.status == 207
    assert r.json()['errors'][0]['context']['objectWriteTraceId'] == ['t1']
    assert len(r.json()['results']) == 1


def test_v3_embed_keys_for_new_types(demo):
    r = demo.api('GET', '/crm/v3/objects/deals/3000001',
                 query={'associations': 'line_items,notes,%s' % CARS}).json()
    emb = r['associations']
    assert 'line items' in emb and 'line_items' not in emb
    assert all(x['type'] == 'deal_to_line_item' for x in emb['line items']['results'])


def test_v3_per_object_association_routes(demo):
    n = demo.api('GET', '/crm/v3/objects/notes', query={'limit': 1}).json()['results'][0]['id']
    r = demo.api('PUT', '/crm/v3/objects/notes/%s/associations/contacts/1000009/note_to_contact'
                 % n)
    assert r.status == 200, r.body
    assert any(x['id'] == '1000009' for x in r.json()['associations']['contacts']['results'])
    g = demo.api('GET', '/crm/v3/objects/notes/%s/associations/contacts' % n).json()
    assert {'id': '1000009', 'type': 'note_to_contact'} in g['results']
    assert demo.api('DELETE', '/crm/v3/objects/notes/%s/associations/contacts/1000009/202'
                    % n).status == 204
    g = demo.api('GET', '/crm/v3/objects/notes/%s/associations/contacts' % n).json()
    assert '1000009' not in [x['id'] for x in g['results']]
    assert demo.api('PUT', '/crm/v3/objects/notes/%s/associations/contacts/1000009/999'
                    % n).status == 400
    assert demo.count(endpoint='PUT /crm/v3/objects/notes/{id}/associations/contacts/{toId}/'
                      '{associationTypeId}') == 2
