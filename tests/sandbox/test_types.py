"""Every object type beyond the core four: names and ids, required
properties, timestamps and default properties, bodies, delete semantics,
read-only types, properties and pipelines, the demo seed."""

import re

import pytest

from tests.sandbox.client import start_sandbox

# name, objectTypeId, create-time property, writable
STANDARD = [
    ('products', '0-7', 'createdate', True), ('line_items', '0-8', 'createdate', True),
    ('quotes', '0-14', 'hs_createdate', True),
    ('communications', '0-18', 'hs_createdate', True),
    ('feedback_submissions', '0-19', 'hs_createdate', False),
    ('tasks', '0-27', 'hs_createdate', True), ('notes', '0-46', 'hs_createdate', True),
    ('meetings', '0-47', 'hs_createdate', True), ('calls', '0-48', 'hs_createdate', True),
    ('emails', '0-49', 'hs_createdate', True), ('invoices', '0-53', 'createdate', True),
    ('quote_templates', '0-64', 'hs_createdate', False),
    ('subscriptions', '0-69', 'hs_createdate', True),
    ('goal_targets', '0-74', 'hs_createdate', True), ('discounts', '0-84', 'createdate', True),
    ('fees', '0-85', 'createdate', True), ('taxes', '0-86', 'createdate', True),
    ('commerce_payments', '0-101', 'createdate', True),
    ('users', '0-115', 'hs_createdate', True), ('postal_mail', '0-116', 'hs_createdate', True),
    ('orders', '0-123', 'createdate', True), ('leads', '0-136', 'createdate', True),
    ('carts', '0-142', 'createdate', True), ('services', '0-162', 'hs_createdate', True),
    ('courses', '0-410', 'hs_createdate', True), ('listings', '0-420', 'hs_createdate', True),
    ('appointments', '0-421', 'hs_createdate', True),
    ('projects', '0-970', 'hs_createdate', True),
    ('contracts', '0-721', 'hs_createdate', False),
]
LIBRARY = {'0-162', '0-410', '0-420', '0-421'}
CARS = 'p12345678_cars'
NOW = '2024-05-02T10:00:00.000Z'


def path_name(name, tid):
    """How the API addresses a type: object-library types by id only."""
    return tid if tid in LIBRARY else name


def first(sb, t, **q):
    q.setdefault('limit', 1)
    return sb.api('GET', '/crm/v3/objects/' + t, query=q).json()['results'][0]


# ---------------------------------------------------------------- names and ids


@pytest.mark.parametrize('name,tid,cprop,writable', STANDARD)
def test_every_type_lists_by_name_id_and_both_path_shapes(demo, name, tid, cprop, writable):
    a = demo.api('GET', '/crm/v3/objects/' + tid, query={'limit': 2})
    assert a.status == 200, a.body
    body = a.json()
    assert body['results'], name
    rec = body['results'][0]
    # ids live in the type's own range: 0-N -> N x 1,000,000 + n
    base = int(tid.split('-')[1]) * 1000000
    assert base < int(rec['id']) < base + 1000000
    assert rec['properties']['hs_object_id'] == rec['id']
    assert rec['properties'][cprop] == rec['createdAt']
    assert rec['properties']['hs_lastmodifieddate'] == rec['updatedAt']
    assert rec['url'].endswith('/record/%s/%s' % (tid, rec['id']))
    other = demo.api('GET', '/crm/objects/v3/' + tid, query={'limit': 2}).json()
    assert other['results'] == body['results']
    if tid in LIBRARY:
        # object-library specs are authored on the objectTypeId only
        assert demo.api('GET', '/crm/v3/objects/' + name).status == 400
    else:
        assert demo.api('GET', '/crm/v3/objects/' + name,
                        query={'limit': 2}).json()['results'] == body['results']
    assert demo.api('GET', '/crm/v3/objects/%s/%s' % (tid, rec['id'])).status == 200


@pytest.mark.parametrize('alias,name', [('quote', 'quotes'), ('line_item', 'line_items'),
                                        ('communication', 'communications'),
                                        ('discount', 'discounts'),
                                        ('COMMERCE_PAYMENT', 'commerce_payments')])
def test_documented_singular_aliases(demo, alias, name):
    a = demo.api('GET', '/crm/v3/objects/' + alias, query={'limit': 3}).json()
    b = demo.api('GET', '/crm/v3/objects/' + name, query={'limit': 3}).json()
    assert a['results'] == b['results']


def test_log_names_the_type_and_the_path_shape(demo):
    seq = demo.last_seq()
    demo.api('GET', '/crm/v3/objects/0-46', query={'limit': 1})
    demo.api('GET', '/crm/objects/v3/0-410', query={'limit': 1})
    demo.api('GET', '/crm/v3/objects/%s' % CARS, query={'limit': 1})
    eps = [e['endpoint'] for e in demo.log(since=seq)]
    assert eps == ['GET /crm/v3/objects/notes', 'GET /crm/objects/v3/courses',
                   'GET /crm/v3/objects/' + CARS]


# ---------------------------------------------------------------- create rules


REQUIRED = {
    'notes': ['hs_timestamp'], 'tasks': ['hs_timestamp'], 'calls': ['hs_timestamp'],
    'emails': ['hs_timestamp', 'hs_email_direction'],
    'communications': ['hs_timestamp', 'hs_communication_channel_type'],
    'postal_mail': ['hs_timestamp'],
    'products': ['hs_sku', 'hs_folder', 'price', 'name', 'description'],
    'quotes': ['hs_title', 'hs_expiration_date'], 'invoices': ['hs_currency'],
    'orders': ['hs_order_name'], 'subscriptions': ['hs_name'],
    'commerce_payments': ['hs_initial_amount', 'hs_initiated_date'],
    '0-421': ['hs_appointment_name'], '0-410': ['hs_course_name'], '0-420': ['hs_name'],
    '0-162': ['hs_name', 'hs_pipeline', 'hs_pipeline_stage'],
    'projects': ['hs_name', 'hs_pipeline', 'hs_pipeline_stage'],
    'users': ['hs_internal_user_id', 'hs_email'],
    CARS: ['year', 'make', 'vin', 'model'],
}


@pytest.mark.parametrize('t', sorted(REQUIRED))
def test_required_properties_on_create_are_named(sandbox, t):
    r = sandbox.api('POST', '/crm/v3/objects/' + t, {'properties': {}})
    assert r.status == 400, r.body
    b = r.json()
    assert b['category'] == 'VALIDATION_ERROR'
    named = sorted(e['context']['propertyName'][0] for e in b['errors']
                   if e['code'] == 'REQUIRED_PROPERTY')
    assert named == sorted(REQUIRED[t])
    assert sandbox.count(method='POST', status=201) == 0


def test_create_note_with_html_body_and_preview(sandbox):
    html = ('<div style="" dir="auto" data-top-level="true"><p style="margin:0;">Spoke '
            'with Carla &amp; Ben about the <b>Enterprise</b> plan.</p><p>Competitor: '
            'Zendeck</p></div>')
    r = sandbox.api('POST', '/crm/v3/objects/notes',
                    {'properties': {'hs_timestamp': NOW, 'hs_note_body': html}})
    assert r.status == 201, r.body
    rec = r.json()
    p = rec['properties']
    assert p['hs_note_body'] == html                       # stored verbatim
    assert set(p) >= {'hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'}
    assert 'createdate' not in p
    got = sandbox.api('GET', '/crm/v3/objects/notes/' + rec['id'],
                      query={'properties': 'hs_body_preview,hs_note_body,hs_attachment_ids'})
    gp = got.json()['properties']
    assert gp['hs_body_preview'] == ('Spoke with Carla & Ben about the Enterprise plan.\n'
                                     'Competitor: Zendeck')
    assert gp['hs_attachment_ids'] is None       # activities: empty requested props are null
    # the preview is read-only, the default GET has only the system properties
    assert sandbox.api('PATCH', '/crm/v3/objects/notes/' + rec['id'],
                       {'properties': {'hs_body_preview': 'x'}}).json()['errors'][0][
        'code'] == 'READ_ONLY_VALUE'
    d = sandbox.api('GET', '/crm/v3/objects/notes/' + rec['id']).json()['properties']
    assert set(d) == {'hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'}
    sandbox.flush_index()
    s = sandbox.api('POST', '/crm/v3/objects/notes/search', {'query': 'zendeck'}).json()
    assert [x['id'] for x in s['results']] == [rec['id']]


def test_activity_datetime_and_enum_validation(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/calls', {'properties': {
        'hs_timestamp': 'yesterday', 'hs_call_direction': 'SIDEWAYS'}})
    codes = sorted(e['code'] for e in r.json()['errors'])
    assert r.status == 400 and codes == ['INVALID_LONG', 'INVALID_OPTION']
    r = sandbox.api('POST', '/crm/v3/objects/calls', {'properties': {
        'hs_timestamp': NOW, 'hs_call_recording_url': 'http://insecure.example/rec.mp3'}})
    assert r.status == 400 and r.json()['errors'][0]['code'] == 'INVALID_URL'
    r = sandbox.api('POST', '/crm/v3/objects/calls', {'properties': {
        'hs_timestamp': '1714644000000', 'hs_call_title': 'Intro',
        'hs_call_disposition': 'f240bbac-87c9-4f6e-bf70-924b57d47db7'}})
    assert r.status == 201
    assert r.json()['properties']['hs_timestamp'] == '2024-05-02T10:00:00.000Z'


def test_meeting_timestamp_defaults_to_start_time(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/meetings', {'properties': {
        'hs_meeting_title': 'Kickoff', 'hs_meeting_start_time': NOW}})
    assert r.status == 201, r.body
    assert r.json()['properties']['hs_timestamp'] == NOW


def test_default_properties_per_type(demo):
    assert set(first(demo, 'products')['properties']) == {
        'name', 'description', 'price', 'createdate', 'hs_lastmodifieddate', 'hs_object_id'}
    q = first(demo, 'quotes')['properties']
    assert {'hs_expiration_date', 'hs_public_url_key', 'hs_status', 'hs_title'} <= set(q)
    li = first(demo, 'line_items')['properties']
    assert {'quantity', 'amount', 'price'} <= set(li)
    for t in ('notes', 'calls', 'leads', CARS):
        assert len(first(demo, t)['properties']) == 3


def test_line_item_amount_product_and_price_rules(demo):
    prod = first(demo, 'products', properties='name,price,hs_sku')
    r = demo.api('POST', '/crm/v3/objects/line_items', {'properties': {
        'hs_product_id': prod['id'], 'quantity': '3', 'hs_discount_percentage': '10'}})
    assert r.status == 201, r.body
    p = demo.api('GET', '/crm/v3/objects/line_items/' + r.json()['id'],
                 query={'properties': 'name,price,amount,hs_sku'}).json()['properties']
    assert p['name'] == prod['properties']['name']
    assert p['hs_sku'] == prod['properties']['hs_sku']
    assert float(p['amount']) == pytest.approx(3 * float(prod['properties']['price']) * 0.9)
    r = demo.api('POST', '/crm/v3/objects/line_items', {'properties': {'price': '-5'}})
    assert r.status == 400
    r = demo.api('POST', '/crm/v3/objects/line_items', {'properties': {'hs_product_id': '7999999'}})
    assert r.status == 400 and r.json()['errors'][0]['code'] == 'INVALID_OBJECT_ID'


def test_line_item_batch_create_merges_identical_inputs(sandbox):
    one = {'properties': {'name': 'Seat', 'price': '10', 'quantity': '2'}}
    two = {'properties': {'name': 'Seat', 'price': '10', 'quantity': '3'}}
    r = sandbox.api('POST', '/crm/v3/objects/line_items/batch/create',
                    {'inputs': [one, one, two, one]})
    assert r.status == 201
    assert len(r.json()['results']) == 2
    assert sandbox.health()['all_records']['line_items'] == 2
    sandbox.configure(line_item_dedup=False)
    r = sandbox.api('POST', '/crm/v3/objects/line_items/batch/create', {'inputs': [one, one]})
    assert len(r.json()['results']) == 2


def test_pipelines_of_new_types(sandbox):
    for t, pid, first_stage in (('leads', 'lead-pipeline-id', 'new-stage-id'),
                                ('orders', '15100001', '15100002'),
                                ('0-421', '15600001', '15600002')):
        r = sandbox.api('GET', '/crm/v3/pipelines/' + t)
        assert r.status == 200, (t, r.body)
        p = r.json()['results'][0]
        assert p['id'] == pid and p['stages'][0]['id'] == first_stage
    assert sandbox.api('GET', '/crm/v3/pipelines/notes').status == 400
    # first stage by default where the stage is not required
    o = sandbox.api('POST', '/crm/v3/objects/orders', {'properties': {'hs_order_name': 'A'}})
    assert o.json()['properties']['hs_pipeline_stage'] == '15100002'
    bad = sandbox.api('POST', '/crm/v3/objects/projects', {'properties': {
        'hs_name': 'P', 'hs_pipeline': '15300001', 'hs_pipeline_stage': 'closedwon'}})
    assert bad.status == 400 and bad.json()['errors'][0]['code'] == 'INVALID_OPTION'


def test_properties_api_for_every_type(demo):
    for name, tid, cprop, _ in STANDARD:
        r = demo.api('GET', '/crm/v3/properties/' + path_name(name, tid))
        assert r.status == 200, name
        names = {p['name'] for p in r.json()['results']}
        assert {cprop, 'hs_lastmodifieddate', 'hs_object_id'} <= names, name
    p = demo.api('GET', '/crm/v3/properties/notes/hs_note_body').json()
    assert p['fieldType'] == 'html' and p['type'] == 'string'
    cars = {p['name']: p for p in demo.api('GET', '/crm/v3/properties/' + CARS).json()[
        'results']}
    assert cars['vin']['hasUniqueValue'] is True and cars['make']['hubspotDefined'] is False


# ---------------------------------------------------------------- delete semantics


def test_email_delete_is_permanent(demo):
    e = first(demo, 'emails')
    assert demo.api('DELETE', '/crm/v3/objects/emails/' + e['id']).status == 204
    assert demo.api('GET', '/crm/v3/objects/emails/' + e['id']).status == 404
    assert demo.api('GET', '/crm/v3/objects/emails/' + e['id'],
                    query={'archived': 'true'}).status == 404
    arch = demo.api('GET', '/crm/v3/objects/emails', query={'archived': 'true'}).json()
    assert arch['results'] == []
    with pytest.raises(Exception):
        demo.restore('emails', e['id'])
    # other activities go to the recycle bin
    n = first(demo, 'notes')
    demo.api('DELETE', '/crm/v3/objects/notes/' + n['id'])
    assert demo.api('GET', '/crm/v3/objects/notes/' + n['id'],
                    query={'archived': 'true'}).status == 200


def test_quote_delete_takes_its_line_items(demo):
    q = first(demo, 'quotes')
    lis = demo.api('GET', '/crm/v4/objects/quotes/%s/associations/line_items' % q['id']).json()
    ids = [str(x['toObjectId']) for x in lis['results']]
    assert ids, 'demo quotes have line items'
    assert demo.api('DELETE', '/crm/v3/objects/quotes/' + q['id']).status == 204
    for lid in ids:
        assert demo.api('GET', '/crm/v3/objects/line_items/' + lid).status == 404
        assert demo.api('GET', '/crm/v3/objects/line_items/' + lid,
                        query={'archived': 'true'}).status == 200


def test_lead_needs_a_primary_contact_and_dies_without_one(demo):
    contact = first(demo, 'contacts')['id']
    r = demo.api('POST', '/crm/v3/objects/leads', {'properties': {'hs_lead_name': 'No one'}})
    assert r.status == 400 and '578' in r.json()['message']
    r = demo.api('POST', '/crm/v3/objects/leads', {
        'properties': {'hs_lead_name': 'Ava - Enterprise'},
        'associations': [{'to': {'id': contact}, 'types': [
            {'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 578}]}]})
    assert r.status == 201, r.body
    lead = r.json()['id']
    got = demo.api('GET', '/crm/v3/objects/leads/' + lead,
                   query={'properties': 'hs_associated_contact_email,hs_pipeline_stage'})
    email = demo.api('GET', '/crm/v3/objects/contacts/' + contact).json()['properties']['email']
    assert got.json()['properties'] == dict(got.json()['properties'],
                                            hs_associated_contact_email=email,
                                            hs_pipeline_stage='new-stage-id')
    # removing the contact association from the contact's side deletes the lead
    assert demo.api('DELETE', '/crm/v4/objects/contacts/%s/associations/leads/%s'
                    % (contact, lead)).status == 204
    assert demo.api('GET', '/crm/v3/objects/leads/' + lead).status == 404
    assert demo.api('GET', '/crm/v3/objects/leads/' + lead,
                    query={'archived': 'true'}).status == 200


@pytest.mark.parametrize('t', ['feedback_submissions', 'quote_templates', 'contracts'])
def test_read_only_types_refuse_writes(demo, t):
    rec = first(demo, t)
    r = demo.api('POST', '/crm/v3/objects/' + t, {'properties': {}})
    assert r.status == 405 and r.header('Allow') == 'GET'
    assert demo.api('PATCH', '/crm/v3/objects/%s/%s' % (t, rec['id']),
                    {'properties': {}}).status == 405
    assert demo.api('DELETE', '/crm/v3/objects/%s/%s' % (t, rec['id'])).status == 405
    for op in ('create', 'update', 'upsert', 'archive'):
        assert demo.api('POST', '/crm/v3/objects/%s/batch/%s' % (t, op),
                        {'inputs': []}).status == 404
    assert demo.api('POST', '/crm/v3/objects/%s/batch/read' % t,
                    {'inputs': [{'id': rec['id']}]}).status == 200
    assert demo.api('GET', '/crm/v3/objects/%s/%s' % (t, rec['id'])).status == 200


def test_contracts_are_not_searchable_feedback_is(demo):
    assert demo.api('POST', '/crm/v3/objects/contracts/search', {}).status == 405
    r = demo.api('POST', '/crm/v3/objects/feedback_submissions/search', {'query': 'NPS'})
    assert r.status == 200 and r.json()['total'] == 10


# ---------------------------------------------------------------- custom objects


def test_custom_object_by_id_and_fqn_not_base_name(demo):
    a = demo.api('GET', '/crm/v3/objects/2-4810001', query={'limit': 5}).json()
    b = demo.api('GET', '/crm/v3/objects/' + CARS, query={'limit': 5}).json()
    assert a['results'] == b['results'] and len(a['results']) == 5
    r = demo.api('GET', '/crm/v3/objects/cars')
    assert r.status == 400 and 'cars' in r.json()['message']
    assert int(a['results'][0]['id']) == 2001000001


def test_custom_object_round_trip_and_unique_property(demo):
    vin = '1FT8W3A68HEC69514'
    r = demo.api('POST', '/crm/v3/objects/' + CARS, {'properties': {
        'vin': vin, 'make': 'Ford', 'model': 'F-350 SD', 'year': '2017'}})
    assert r.status == 201, r.body
    cid = r.json()['id']
    assert set(r.json()['properties']) >= {'hs_createdate', 'hs_lastmodifieddate'}
    dup = demo.api('POST', '/crm/v3/objects/' + CARS, {'properties': {
        'vin': vin, 'make': 'Ford', 'model': 'F-150', 'year': '2018'}})
    assert dup.status == 409 and dup.json()['message'] == \
        'Car already exists. Existing ID: %s' % cid
    got = demo.api('GET', '/crm/v3/objects/%s/%s' % (CARS, vin),
                   query={'idProperty': 'vin', 'properties': 'model,color'})
    assert got.status == 200 and got.json()['id'] == cid
    r = demo.api('PATCH', '/crm/v3/objects/%s/%s' % (CARS, cid),
                 {'properties': {'color': 'green', 'mileage': '1200'}})
    assert r.status == 200
    assert demo.record(CARS, cid)['properties']['color'] == 'green'
    bad = demo.api('PATCH', '/crm/v3/objects/%s/%s' % (CARS, cid),
                   {'properties': {'color': 'plaid'}})
    assert bad.status == 400 and bad.json()['errors'][0]['code'] == 'INVALID_OPTION'
    up = demo.api('POST', '/crm/v3/objects/%s/batch/upsert' % CARS, {'inputs': [
        {'idProperty': 'vin', 'id': vin, 'properties': {'status': 'sold'}},
        {'idProperty': 'vin', 'id': 'NEWVIN0000000001', 'properties': {
            'make': 'Kia', 'model': 'Niro', 'year': '2022'}}]})
    assert up.status == 200, up.body
    assert [x['new'] for x in up.json()['results']] == [False, True]


def test_custom_search_uses_searchable_properties(demo):
    r = demo.api('POST', '/crm/v3/objects/%s/search' % CARS, {'query': 'volvo'}).json()
    assert r['total'] > 0
    assert all(x['properties']['make'] == 'Volvo' for x in demo.api(
        'POST', '/crm/v3/objects/%s/search' % CARS,
        {'query': 'volvo', 'properties': ['make'], 'limit': 100}).json()['results'])
    r = demo.api('POST', '/crm/v3/objects/%s/search' % CARS, {'filterGroups': [{'filters': [
        {'propertyName': 'associations.contact', 'operator': 'EQ', 'value': '1000001'}]}]})
    assert r.status == 400


# ---------------------------------------------------------------- merge


def test_merge_moves_properties_and_associations(sandbox):
    a = sandbox.create('contacts', {'email': 'a@merge.test', 'firstname': 'Ann'})
    b = sandbox.create('contacts', {'email': 'b@merge.test', 'jobtitle': 'CFO',
                                    'lastname': 'Lee'},
                       associations=[{'type': 'companies', 'id': '2000003', 'types': [279]}])
    r = sandbox.api('POST', '/crm/v3/objects/contacts/merge',
                    {'primaryObjectId': a['id'], 'objectIdToMerge': b['id']})
    assert r.status == 200, r.body
    assert r.json()['id'] == a['id']
    raw = sandbox.record('contacts', a['id'])
    assert raw['properties']['jobtitle'] == 'CFO' and raw['properties']['lastname'] == 'Lee'
    assert raw['properties']['hs_additional_emails'] == 'b@merge.test'
    assert raw['properties']['email'] == 'a@merge.test'
    assert '2000003' in raw['associations']['companies']
    assert sandbox.api('GET', '/crm/v3/objects/contacts/' + b['id']).status == 404
    assert sandbox.api('GET', '/crm/v3/objects/contacts/' + b['id'],
                       query={'archived': 'true'}).status == 404
    # the merged email is free again
    assert sandbox.api('POST', '/crm/v3/objects/contacts',
                       {'properties': {'email': 'b@merge.test'}}).status == 201
    assert sandbox.api('POST', '/crm/v3/objects/notes/merge', {}).status == 405


# ---------------------------------------------------------------- demo content


def test_demo_seeds_every_type_with_realistic_content(demo):
    h = demo.health()['all_records']
    assert all(h[t] > 0 for t in h), [t for t in h if not h[t]]
    assert h['p12345678_cars'] == 20 and h['p12345678_contracts'] == 8
    notes = []
    after = None
    while True:
        q = {'limit': 100, 'properties': 'hs_note_body'}
        if after:
            q['after'] = after
        b = demo.api('GET', '/crm/v3/objects/notes', query=q).json()
        notes += [n['properties']['hs_note_body'] for n in b['results']]
        if 'paging' not in b:
            break
        after = b['paging']['next']['after']
    assert len(notes) == 120
    assert sum('competitor' in n.lower() for n in notes) >= 20
    assert any('Cloud Suite' in n for n in notes)
    calls = demo.api('GET', '/crm/v3/objects/calls', query={
        'limit': 100, 'properties': 'hs_call_disposition,hs_call_status,hs_call_title'}).json()
    outcomes = {c['properties']['hs_call_disposition'] for c in calls['results']}
    assert '73a0d17f-1163-4015-bdd5-ec830791da20' in outcomes and len(outcomes) >= 3
    tasks = demo.api('GET', '/crm/v3/objects/tasks', query={
        'limit': 100, 'properties': 'hs_timestamp,hs_task_status,hs_task_subject'}).json()
    assert all(re.match(r'^\d{4}-', t['properties']['hs_timestamp']) for t in tasks['results'])
    assert {'COMPLETED', 'NOT_STARTED'} <= {t['properties']['hs_task_status']
                                            for t in tasks['results']}
    em = first(demo, 'emails', properties='hs_email_from_email,hs_email_to_email,hs_email_subject')
    assert '@' in em['properties']['hs_email_from_email']
    deal = demo.api('GET', '/crm/v4/objects/deals/3000001/associations/line_items').json()
    assert deal['results']


def test_demo_has_labeled_associations(demo):
    labels = demo.api('GET', '/crm/v4/associations/contacts/%s/labels' % CARS).json()['results']
    by = {x['label']: x for x in labels}
    assert {'Owned car', 'Test driver', None} <= set(by)
    owner_type = by['Owned car']['typeId']
    found = 0
    for c in demo.api('GET', '/crm/v3/objects/contacts', query={'limit': 50}).json()['results']:
        r = demo.api('GET', '/crm/v4/objects/contacts/%s/associations/%s' % (c['id'], CARS))
        for x in r.json()['results']:
            if any(t['label'] == 'Owned car' and t['typeId'] == owner_type
                   for t in x['associationTypes']):
                found += 1
    assert found >= 3


def test_objects_flag_sizes_and_seed_is_deterministic():
    kw = dict(contacts=20, companies=5, deals=5, tickets=0, rate_limit='off',
              objects='notes=30,calls=5,0-421=3,cars=4')
    a = start_sandbox(**kw)
    b = start_sandbox(**kw)
    try:
        h = a.health()
        assert h['all_records']['notes'] == 30 and h['all_records']['calls'] == 5
        assert h['all_records']['appointments'] == 3 and h['all_records'][CARS] == 4
        assert h['all_records']['emails'] == 0
        q = {'limit': 100, 'properties': 'hs_note_body,hs_timestamp'}
        assert a.api('GET', '/crm/v3/objects/notes', query=q).body == \
            b.api('GET', '/crm/v3/objects/notes', query=q).body
        a.reset(objects={'emails': 2})
        assert a.health()['all_records']['emails'] == 2
        assert a.health()['all_records']['notes'] == 30
    finally:
        a.stop()
        b.stop()


# ---------------------------------------------------------------- limits


def test_limits_endpoints(demo):
    r = demo.api('GET', '/crm/v3/limits/records').json()
    std = {x['objectTypeId']: x for x in r['hubspotDefinedObjectTypes']}
    assert std['0-46']['usage'] == 120 and std['0-1']['usage'] == 50
    assert std['0-46']['pluralLabel'] == 'Notes'
    by = {x['objectTypeId']: x for x in r['customObjectTypes']['byObjectType']}
    assert by['2-4810001']['usage'] == 20
    assert r['customObjectTypes']['overallUsage'] == 28
    c = demo.api('GET', '/crm/v3/limits/custom-object-types').json()
    assert c == {'limit': 10, 'usage': 2, 'percentage': 20.0}
