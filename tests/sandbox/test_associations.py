"""Associations v4 (§4): PUT default/labeled, DELETE, GET list, batch
read/create/associate-default/archive/labels-archive, type ids, inverses."""

import pytest

V4 = '/crm/v4/objects/%s/%s/associations/%s'

EXPECTED_TYPES = [
    # (from, to, unlabeled, inverse unlabeled)
    ('contacts', 'companies', 279, 280), ('contacts', 'deals', 4, 3),
    ('contacts', 'tickets', 15, 16), ('companies', 'deals', 342, 341),
    ('companies', 'tickets', 340, 339), ('deals', 'tickets', 27, 28),
]


def new(sb, t, props):
    return sb.create(t, props)['id']


def fresh(sb):
    """Unassociated records of each type."""
    return {
        'contacts': new(sb, 'contacts', {'email': 'assoc@example.com'}),
        'companies': new(sb, 'companies', {'name': 'Assoc Co'}),
        'deals': new(sb, 'deals', {'dealname': 'Assoc', 'dealstage': 'qualifiedtobuy'}),
        'tickets': new(sb, 'tickets', {'subject': 'Assoc', 'hs_pipeline_stage': '1'}),
    }


def types_of(sb, t, rid, tt):
    r = sb.api('GET', V4 % (t, rid, tt))
    assert r.status == 200
    return {x['toObjectId']: sorted(a['typeId'] for a in x['associationTypes'])
            for x in r.json()['results']}


@pytest.mark.parametrize('ft,tt,unl,inv', EXPECTED_TYPES)
def test_default_put_creates_unlabeled_and_inverse(sandbox, ft, tt, unl, inv):
    ids = fresh(sandbox)
    r = sandbox.api('PUT', '/crm/v4/objects/%s/%s/associations/default/%s/%s'
                    % (ft, ids[ft], tt, ids[tt]))
    assert r.status == 200, r
    b = r.json()
    assert b['status'] == 'COMPLETE'
    specs = {(x['from']['id'], x['to']['id']): x['associationSpec']['associationTypeId']
             for x in b['results']}
    assert specs[(ids[ft], ids[tt])] == unl
    assert specs[(ids[tt], ids[ft])] == inv
    assert types_of(sandbox, ft, ids[ft], tt) == {int(ids[tt]): [unl]}
    assert types_of(sandbox, tt, ids[tt], ft) == {int(ids[ft]): [inv]}


def test_get_list_shape_numeric_ids_and_labels(sandbox):
    cid = sandbox.api('GET', '/crm/v3/objects/contacts',
                      query={'limit': 1}).json()['results'][0]['id']
    r = sandbox.api('GET', V4 % ('contacts', cid, 'companies'))
    b = r.json()
    assert len(b['results']) == 1 and 'paging' not in b
    item = b['results'][0]
    assert isinstance(item['toObjectId'], int)
    assert sorted(item['associationTypes'], key=lambda x: x['typeId']) == [
        {'category': 'HUBSPOT_DEFINED', 'typeId': 1, 'label': 'Primary'},
        {'category': 'HUBSPOT_DEFINED', 'typeId': 279, 'label': None}]
    back = types_of(sandbox, 'companies', item['toObjectId'], 'contacts')
    assert back[int(cid)] == [2, 280]
    # type ids and singular names in the path
    r2 = sandbox.api('GET', V4 % ('0-1', cid, 'company'))
    assert r2.json() == b


def test_labeled_put_replaces_and_keeps_unlabeled(sandbox):
    ids = fresh(sandbox)
    c, d = ids['contacts'], ids['deals']
    r = sandbox.api('PUT', V4 % ('contacts', c, 'deals') + '/' + d,
                    [{'associationCategory': 'USER_DEFINED', 'associationTypeId': 37}])
    assert r.status == 201
    b = r.json()
    assert b == {'fromObjectTypeId': '0-1', 'fromObjectId': int(c),
                 'toObjectTypeId': '0-3', 'toObjectId': int(d),
                 'labels': ['Decision maker']}
    assert types_of(sandbox, 'contacts', c, 'deals') == {int(d): [4, 37]}
    assert types_of(sandbox, 'deals', d, 'contacts') == {int(c): [3, 38]}
    # replacing with just the unlabeled type drops the label
    r = sandbox.api('PUT', V4 % ('contacts', c, 'deals') + '/' + d,
                    [{'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 4}])
    assert r.status == 201 and r.json()['labels'] == []
    assert types_of(sandbox, 'deals', d, 'contacts') == {int(c): [3]}


def test_labeled_put_rejects_wrong_types(sandbox):
    ids = fresh(sandbox)
    url = V4 % ('contacts', ids['contacts'], 'companies') + '/' + ids['companies']
    for spec in ([{'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 4}],
                 [{'associationCategory': 'USER_DEFINED', 'associationTypeId': 279}],
                 [{'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 'x'}],
                 {'associationTypeId': 279}):
        r = sandbox.api('PUT', url, spec)
        assert r.status == 400, spec
        assert r.json()['category'] == 'VALIDATION_ERROR'


def test_primary_company_is_unique(sandbox):
    ids = fresh(sandbox)
    c = ids['contacts']
    co2 = new(sandbox, 'companies', {'name': 'Second'})
    prim = [{'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 1}]
    sandbox.api('PUT', V4 % ('contacts', c, 'companies') + '/' + ids['companies'], prim)
    sandbox.api('PUT', V4 % ('contacts', c, 'companies') + '/' + co2, prim)
    got = types_of(sandbox, 'contacts', c, 'companies')
    assert got == {int(ids['companies']): [279], int(co2): [1, 279]}
    assert types_of(sandbox, 'companies', ids['companies'], 'contacts') == {int(c): [280]}
    assert sandbox.api('GET', '/crm/v3/objects/contacts/' + c, query={
        'properties': 'associatedcompanyid'}).json()['properties'][
            'associatedcompanyid'] == co2


def test_delete_removes_all_types_both_sides(sandbox):
    cid = sandbox.api('GET', '/crm/v3/objects/contacts',
                      query={'limit': 1}).json()['results'][0]['id']
    co = list(types_of(sandbox, 'contacts', cid, 'companies'))[0]
    r = sandbox.api('DELETE', V4 % ('contacts', cid, 'companies') + '/%d' % co)
    assert r.status == 204 and r.body == b''
    assert types_of(sandbox, 'contacts', cid, 'companies') == {}
    assert int(cid) not in types_of(sandbox, 'companies', co, 'contacts')
    # again: still 204
    r = sandbox.api('DELETE', V4 % ('contacts', cid, 'companies') + '/%d' % co)
    assert r.status == 204


def test_put_with_missing_objects_is_400(sandbox):
    ids = fresh(sandbox)
    r = sandbox.api('PUT', '/crm/v4/objects/contacts/%s/associations/default/companies/999'
                    % ids['contacts'])
    assert r.status == 400 and r.json()['category'] == 'VALIDATION_ERROR'


def test_archived_targets_disappear(sandbox):
    deal = sandbox.api('GET', '/crm/v3/objects/deals',
                       query={'limit': 1}).json()['results'][0]['id']
    contacts = types_of(sandbox, 'deals', deal, 'contacts')
    victim = sorted(contacts)[0]
    sandbox.api('DELETE', '/crm/v3/objects/contacts/%d' % victim)
    assert victim not in types_of(sandbox, 'deals', deal, 'contacts')
    sandbox.restore('contacts', victim)
    assert victim in types_of(sandbox, 'deals', deal, 'contacts')


def test_get_list_paging_and_limit_cap(sandbox):
    co = new(sandbox, 'companies', {'name': 'Big Co'})
    contacts = sandbox.api('GET', '/crm/v3/objects/contacts',
                           query={'limit': 30}).json()['results']
    r = sandbox.api('POST', '/crm/v4/associations/companies/contacts/batch/associate/default',
                    {'inputs': [{'from': {'id': co}, 'to': {'id': c['id']}}
                                for c in contacts]})
    assert r.status == 200
    got = []
    after = None
    while True:
        q = {'limit': 7}
        if after:
            q['after'] = after
        b = sandbox.api('GET', V4 % ('companies', co, 'contacts'), query=q).json()
        got += [x['toObjectId'] for x in b['results']]
        if 'paging' not in b:
            break
        after = b['paging']['next']['after']
    assert got == sorted(int(c['id']) for c in contacts)
    assert sandbox.api('GET', V4 % ('companies', co, 'contacts'),
                       query={'limit': 501}).status == 400
    assert sandbox.api('GET', V4 % ('companies', co, 'contacts'),
                       query={'limit': 500}).status == 200


def test_batch_read(sandbox):
    deals = [x['id'] for x in sandbox.api('GET', '/crm/v3/objects/deals',
                                          query={'limit': 5}).json()['results']]
    lonely = new(sandbox, 'deals', {'dealname': 'Alone', 'dealstage': 'closedlost'})
    r = sandbox.api('POST', '/crm/v4/associations/deals/contacts/batch/read',
                    {'inputs': [{'id': d} for d in deals + [lonely, '999']]})
    assert r.status == 200
    b = r.json()
    assert b['status'] == 'COMPLETE'
    froms = [x['from']['id'] for x in b['results']]
    assert sorted(froms) == sorted(deals)                     # none omitted
    for x in b['results']:
        assert 1 <= len(x['to']) <= 3
        for t in x['to']:
            assert isinstance(t['toObjectId'], int)
            assert t['associationTypes'] == [{'category': 'HUBSPOT_DEFINED',
                                              'typeId': 3, 'label': None}]
        assert 'paging' not in x


def test_batch_read_per_from_paging(sandbox):
    co = sandbox.api('GET', '/crm/v3/objects/companies',
                     query={'limit': 1}).json()['results'][0]['id']
    every = sorted(types_of(sandbox, 'companies', co, 'contacts'))
    assert len(every) > 2
    sandbox.configure(assoc_page_limit=2)
    got = []
    after = None
    while True:
        inp = {'id': co}
        if after:
            inp['after'] = after
        b = sandbox.api('POST', '/crm/v4/associations/companies/contacts/batch/read',
                        {'inputs': [inp]}).json()
        item = b['results'][0]
        got += [t['toObjectId'] for t in item['to']]
        assert len(item['to']) <= 2
        if 'paging' not in item:
            break
        after = item['paging']['next']['after']
    assert got == every


def test_batch_read_cap_and_error_mode(sandbox):
    r = sandbox.api('POST', '/crm/v4/associations/deals/contacts/batch/read',
                    {'inputs': [{'id': str(i)} for i in range(1001)]})
    assert r.status == 400
    r = sandbox.api('POST', '/crm/v4/associations/deals/contacts/batch/read',
                    {'inputs': [{'id': str(i)} for i in range(1000)]})
    assert r.status == 200
    sandbox.configure(assoc_read_empty='error')
    r = sandbox.api('POST', '/crm/v4/associations/deals/contacts/batch/read',
                    {'inputs': [{'id': '999'}]})
    assert r.status == 207
    assert r.json()['errors'][0]['subCategory'] == 'crm.associations.NO_ASSOCIATIONS_FOUND'


def test_batch_create_labels_and_207(sandbox):
    ids = fresh(sandbox)
    r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/batch/create', {
        'inputs': [{'from': {'id': ids['contacts']}, 'to': {'id': ids['companies']},
                    'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                               'associationTypeId': 1}]}]})
    assert r.status == 201
    b = r.json()
    assert b['results'][0]['labels'] == ['Primary']
    assert b['results'][0]['fromObjectId'] == int(ids['contacts'])
    assert types_of(sandbox, 'contacts', ids['contacts'], 'companies') == \
        {int(ids['companies']): [1, 279]}
    r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/batch/create', {
        'inputs': [{'from': {'id': ids['contacts']}, 'to': {'id': '999'},
                    'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                               'associationTypeId': 279}]}]})
    assert r.status == 207
    e = r.json()['errors'][0]
    assert e['category'] == 'VALIDATION_ERROR' and e['context'] == {'toObjectId': ['999']}


def test_batch_caps_configurable(sandbox):
    inputs = [{'from': {'id': '1'}, 'to': {'id': '2'}}] * 101
    for op in ('create', 'associate/default', 'archive'):
        r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/batch/' + op,
                        {'inputs': inputs})
        assert r.status == 400, op
    sandbox.configure(assoc_batch_limit=2)
    r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/batch/archive',
                    {'inputs': inputs[:3]})
    assert r.status == 400


def test_batch_archive_and_labels_archive(sandbox):
    cid = sandbox.api('GET', '/crm/v3/objects/contacts',
                      query={'limit': 1}).json()['results'][0]['id']
    co = list(types_of(sandbox, 'contacts', cid, 'companies'))[0]
    # remove only the primary label
    r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/batch/labels/archive',
                    {'inputs': [{'from': {'id': cid}, 'to': {'id': str(co)},
                                 'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                            'associationTypeId': 1}]}]})
    assert r.status == 204
    assert types_of(sandbox, 'contacts', cid, 'companies') == {co: [279]}
    r = sandbox.api('POST', '/crm/v4/associations/contacts/companies/batch/archive',
                    {'inputs': [{'from': {'id': cid}, 'to': [{'id': str(co)}]}]})
    assert r.status == 204
    assert types_of(sandbox, 'contacts', cid, 'companies') == {}
    assert int(cid) not in types_of(sandbox, 'companies', co, 'contacts')


def test_labels_listing(sandbox):
    r = sandbox.api('GET', '/crm/v4/associations/contacts/companies/labels')
    got = {x['typeId']: x for x in r.json()['results']}
    assert got[279] == {'category': 'HUBSPOT_DEFINED', 'typeId': 279, 'label': None}
    assert got[1]['label'] == 'Primary'
    assert got[30]['category'] == 'USER_DEFINED'


def test_create_with_associations_v3_body(sandbox):
    co = sandbox.api('GET', '/crm/v3/objects/companies',
                     query={'limit': 1}).json()['results'][0]['id']
    r = sandbox.api('POST', '/crm/v3/objects/deals', {
        'properties': {'dealname': 'With assoc', 'dealstage': 'contractsent'},
        'associations': [{'to': {'id': co}, 'types': [
            {'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 5}]}]})
    assert r.status == 201
    did = r.json()['id']
    assert types_of(sandbox, 'deals', did, 'companies') == {int(co): [5, 341]}
    r = sandbox.api('POST', '/crm/v3/objects/deals', {
        'properties': {'dealname': 'Bad assoc', 'dealstage': 'contractsent'},
        'associations': [{'to': {'id': '999'}, 'types': [
            {'associationCategory': 'HUBSPOT_DEFINED', 'associationTypeId': 341}]}]})
    assert r.status == 400


def test_v3_embed_pages_after_100(sandbox):
    co = new(sandbox, 'companies', {'name': 'Many'})
    contacts = sandbox.api('GET', '/crm/v3/objects/contacts',
                           query={'limit': 100}).json()['results']
    more = sandbox.api('GET', '/crm/v3/objects/contacts',
                       query={'limit': 5, 'after': 'MTAwMDEwMAo='}).json()['results']
    inputs = [{'from': {'id': co}, 'to': {'id': c['id']}} for c in contacts]
    sandbox.api('POST', '/crm/v4/associations/companies/contacts/batch/associate/default',
                {'inputs': inputs})
    sandbox.api('POST', '/crm/v4/associations/companies/contacts/batch/associate/default',
                {'inputs': [{'from': {'id': co}, 'to': {'id': c['id']}} for c in more]})
    r = sandbox.api('GET', '/crm/v3/objects/companies/' + co,
                    query={'associations': 'contacts'}).json()
    emb = r['associations']['contacts']
    assert len(emb['results']) == 100 and 'paging' in emb
    assert {x['type'] for x in emb['results']} == {'company_to_contact_unlabeled'}
