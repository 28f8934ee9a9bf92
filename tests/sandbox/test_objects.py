"""Objects v3: create / get / list / patch / archive."""

import re

import pytest

ISO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
TYPES = {'contacts': '0-1', 'companies': '0-2', 'deals': '0-3', 'tickets': '0-5'}


def first_id(sb, t):
    r = sb.api('GET', '/crm/v3/objects/' + t, query={'limit': 1})
    return r.json()['results'][0]['id']


def test_list_default_shape_and_properties(sandbox):
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    assert r.status == 200
    assert r.header('Content-Type').startswith('application/json')
    body = r.json()
    assert len(body['results']) == 10          # default limit
    rec = body['results'][0]
    assert set(rec) == {'id', 'properties', 'createdAt', 'updatedAt', 'archived'}
    assert rec['archived'] is False
    assert ISO.match(rec['createdAt']) and ISO.match(rec['updatedAt'])
    props = rec['properties']
    # default set of §2.3 plus the three system properties
    assert set(props) <= {'firstname', 'lastname', 'email', 'createdate',
                          'lastmodifieddate', 'hs_object_id'}
    assert props['hs_object_id'] == rec['id']
    assert props['createdate'] == rec['createdAt']
    assert props['lastmodifieddate'] == rec['updatedAt']
    assert all(isinstance(v, str) for v in props.values())


@pytest.mark.parametrize('t,expect', [
    ('companies', {'name', 'domain', 'createdate', 'hs_lastmodifieddate', 'hs_object_id'}),
    ('deals', {'dealname', 'amount', 'closedate', 'pipeline', 'dealstage', 'createdate',
               'hs_lastmodifieddate', 'hs_object_id'}),
    ('tickets', {'content', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category',
                 'hs_ticket_priority', 'subject', 'createdate', 'hs_lastmodifieddate',
                 'hs_object_id'}),
])
def test_default_properties_per_type(sandbox, t, expect):
    r = sandbox.api('GET', '/crm/v3/objects/' + t, query={'limit': 20}).json()
    seen = set()
    for rec in r['results']:
        assert set(rec['properties']) <= expect
        seen |= set(rec['properties'])
        assert rec['properties']['hs_lastmodifieddate'] == rec['updatedAt']
    assert {'createdate', 'hs_lastmodifieddate', 'hs_object_id'} <= seen


def test_list_paging_walks_every_record_in_id_order(sandbox):
    ids = []
    after = None
    pages = 0
    while True:
        q = {'limit': 100, 'properties': 'email'}
        if after:
            q['after'] = after
        r = sandbox.api('GET', '/crm/v3/objects/contacts', query=q)
        assert r.status == 200
        body = r.json()
        ids += [int(x['id']) for x in body['results']]
        pages += 1
        if 'paging' not in body:
            break
        nxt = body['paging']['next']
        after = nxt['after']
        assert after and not after.isdigit()          # opaque, not an offset
        assert 'after=' in nxt['link'] and nxt['link'].startswith('http')
    assert pages == 10
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert ids == sorted(ids)


def test_list_cursor_is_stable_across_inserts(sandbox):
    r = sandbox.api('GET', '/crm/v3/objects/companies', query={'limit': 5}).json()
    after = r['paging']['next']['after']
    last = int(r['results'][-1]['id'])
    sandbox.create('companies', {'name': 'Inserted Ltd'})
    r2 = sandbox.api('GET', '/crm/v3/objects/companies',
                     query={'limit': 5, 'after': after}).json()
    assert int(r2['results'][0]['id']) == last + 1


def test_list_last_page_has_no_paging(sandbox):
    sandbox.reset(contacts=7)
    r = sandbox.api('GET', '/crm/v3/objects/contacts', query={'limit': 7}).json()
    assert len(r['results']) == 7 and 'paging' not in r
    r = sandbox.api('GET', '/crm/v3/objects/contacts', query={'limit': 5}).json()
    r2 = sandbox.api('GET', '/crm/v3/objects/contacts',
                     query={'limit': 5, 'after': r['paging']['next']['after']}).json()
    assert len(r2['results']) == 2 and 'paging' not in r2


@pytest.mark.parametrize('limit', ['101', '0', '-1', 'abc'])
def test_list_limit_out_of_range_is_400(sandbox, limit):
    r = sandbox.api('GET', '/crm/v3/objects/contacts', query={'limit': limit})
    assert r.status == 400
    assert r.json()['category'] == 'VALIDATION_ERROR'


def test_list_bad_cursor_is_400(sandbox):
    r = sandbox.api('GET', '/crm/v3/objects/contacts', query={'after': '!!!'})
    assert r.status == 400


def test_type_ids_and_singular_names_are_accepted(sandbox):
    for t, tid in TYPES.items():
        a = sandbox.api('GET', '/crm/v3/objects/' + t, query={'limit': 3}).json()
        b = sandbox.api('GET', '/crm/v3/objects/' + tid, query={'limit': 3}).json()
        assert a['results'] == b['results']
        assert a['paging']['next']['after'] == b['paging']['next']['after']
    r = sandbox.api('GET', '/crm/v3/objects/contact', query={'limit': 1})
    assert r.status == 200
    r = sandbox.api('GET', '/crm/v3/objects/widgets')
    assert r.status == 400


def test_record_ids_are_per_type_ranges(sandbox):
    assert first_id(sandbox, 'contacts') == '1000001'
    assert first_id(sandbox, 'companies') == '2000001'
    assert first_id(sandbox, 'deals') == '3000001'
    assert first_id(sandbox, 'tickets') == '5000001'


def test_get_one_requested_properties_and_omits_empty(sandbox):
    cid = sandbox.create('contacts', {'email': 'omit@example.com',
                                      'firstname': 'Om'})['id']
    r = sandbox.api('GET', '/crm/v3/objects/contacts/' + cid,
                    query={'properties': 'email,firstname,phone,unknown_prop'})
    assert r.status == 200
    p = r.json()['properties']
    assert p['email'] == 'omit@example.com' and p['firstname'] == 'Om'
    assert 'phone' not in p and 'unknown_prop' not in p
    assert set(p) == {'email', 'firstname', 'createdate', 'lastmodifieddate',
                      'hs_object_id'}


def test_repeated_properties_params_are_merged(sandbox):
    cid = first_id(sandbox, 'contacts')
    r = sandbox.api('GET', '/crm/v3/objects/contacts/%s?properties=email&properties=city'
                    % cid).json()
    assert {'email', 'city'} <= set(r['properties'])


def test_get_missing_is_404_object_not_found(sandbox):
    for rid in ('999', 'abc'):
        r = sandbox.api('GET', '/crm/v3/objects/contacts/' + rid)
        assert r.status == 404
        b = r.json()
        assert b['status'] == 'error'
        assert b['category'] == 'OBJECT_NOT_FOUND'
        assert b['message'] == 'Object not found.  objectId are usually numeric.'
        assert b['context'] == {'id': [rid]}
        assert b['correlationId']
        assert r.header('x-hubspot-correlation-id') == b['correlationId']


def test_get_by_email_id_property(sandbox):
    rec = sandbox.create('contacts', {'email': 'Find.Me@Example.com'})
    r = sandbox.api('GET', '/crm/v3/objects/contacts/find.me@example.com',
                    query={'idProperty': 'email'})
    assert r.status == 200 and r.json()['id'] == rec['id']
    r = sandbox.api('GET', '/crm/v3/objects/contacts/nobody@example.com',
                    query={'idProperty': 'email'})
    assert r.status == 404


def test_create_201_and_server_maintained_fields(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/contacts',
                    {'properties': {'email': 'new@example.com', 'firstname': 'New',
                                    'nps_score': 9, 'vip': True}})
    assert r.status == 201
    b = r.json()
    assert b['id'].isdigit()
    p = b['properties']
    assert p['hs_object_id'] == b['id']
    assert p['nps_score'] == '9' and p['vip'] == 'true'      # strings on the wire
    assert ISO.match(p['createdate']) and p['createdate'] == b['createdAt']
    assert p['lastmodifieddate'] == b['updatedAt']
    assert b['archived'] is False
    got = sandbox.api('GET', '/crm/v3/objects/contacts/' + b['id'],
                      query={'properties': 'email,nps_score,vip'}).json()
    assert got['properties']['nps_score'] == '9'


def test_create_deal_defaults_pipeline(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/deals',
                    {'properties': {'dealname': 'D', 'dealstage': 'qualifiedtobuy'}})
    assert r.status == 201
    assert r.json()['properties']['pipeline'] == 'default'
    r = sandbox.api('POST', '/crm/v3/objects/tickets',
                    {'properties': {'subject': 'S', 'hs_pipeline_stage': '1'}})
    assert r.status == 201 and r.json()['properties']['hs_pipeline'] == '0'


def test_patch_updates_clears_and_bumps_updated_at(sandbox):
    cid = sandbox.create('contacts', {'email': 'p@example.com', 'jobtitle': 'CEO',
                                      'phone': '123'})['id']
    before = sandbox.record('contacts', cid)
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'jobtitle': 'CTO', 'phone': ''}})
    assert r.status == 200
    b = r.json()
    assert b['properties']['jobtitle'] == 'CTO'
    assert 'phone' not in b['properties']
    assert b['updatedAt'] > before['updatedAt']
    assert b['properties']['lastmodifieddate'] == b['updatedAt']
    assert b['createdAt'] == before['createdAt']
    raw = sandbox.record('contacts', cid)
    assert 'phone' not in raw['properties']


def test_patch_by_email_and_missing_404(sandbox):
    sandbox.create('contacts', {'email': 'byemail@example.com'})
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/byemail@example.com',
                    {'properties': {'city': 'Oslo'}}, query={'idProperty': 'email'})
    assert r.status == 200 and r.json()['properties']['city'] == 'Oslo'
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/424242',
                    {'properties': {'city': 'Oslo'}})
    assert r.status == 404 and r.json()['category'] == 'OBJECT_NOT_FOUND'


def test_patch_without_change_keeps_updated_at(sandbox):
    cid = sandbox.create('contacts', {'email': 'same@example.com', 'city': 'Rome'})['id']
    before = sandbox.record('contacts', cid)['updatedAt']
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'city': 'Rome'}})
    assert r.status == 200 and r.json()['updatedAt'] == before


def test_delete_archives_and_archived_views(sandbox):
    cid = first_id(sandbox, 'deals')
    r = sandbox.api('DELETE', '/crm/v3/objects/deals/' + cid)
    assert r.status == 204 and r.body == b''
    r = sandbox.api('GET', '/crm/v3/objects/deals/' + cid)
    assert r.status == 404
    assert r.json()['message'] == 'Object not found.  objectId are usually numeric.'
    r = sandbox.api('GET', '/crm/v3/objects/deals/' + cid, query={'archived': 'true'})
    assert r.status == 200
    b = r.json()
    assert b['archived'] is True and ISO.match(b['archivedAt'])
    lst = sandbox.api('GET', '/crm/v3/objects/deals', query={'archived': 'true'}).json()
    assert [x['id'] for x in lst['results']] == [cid]
    assert all(x['archived'] for x in lst['results'])
    act = sandbox.api('GET', '/crm/v3/objects/deals', query={'limit': 100}).json()
    assert cid not in [x['id'] for x in act['results']]
    # an active id with archived=true is not found
    other = first_id(sandbox, 'deals')
    assert sandbox.api('GET', '/crm/v3/objects/deals/' + other,
                       query={'archived': 'true'}).status == 404
    # deleting again (or a missing id) is still 204
    assert sandbox.api('DELETE', '/crm/v3/objects/deals/' + cid).status == 204


def test_archived_contact_email_can_be_reused(sandbox):
    a = sandbox.create('contacts', {'email': 'reuse@example.com'})['id']
    sandbox.api('DELETE', '/crm/v3/objects/contacts/' + a)
    r = sandbox.api('POST', '/crm/v3/objects/contacts',
                    {'properties': {'email': 'reuse@example.com'}})
    assert r.status == 201 and r.json()['id'] != a


def test_properties_with_history(sandbox):
    cid = first_id(sandbox, 'contacts')
    r = sandbox.api('GET', '/crm/v3/objects/contacts/' + cid,
                    query={'propertiesWithHistory': 'email'}).json()
    h = r['propertiesWithHistory']['email']
    assert h[0]['value'] == r['properties']['email']
    assert h[0]['sourceType'] == 'API' and ISO.match(h[0]['timestamp'])
    r = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'propertiesWithHistory': 'email', 'limit': 51})
    assert r.status == 400


def test_list_embeds_v3_associations(sandbox):
    r = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'limit': 5, 'associations': 'companies,deals'}).json()
    rec = r['results'][0]
    comp = rec['associations']['companies']['results']
    # seeded contacts have a primary company: listed once per type
    types = sorted(x['type'] for x in comp)
    assert types == ['contact_to_company', 'contact_to_company_unlabeled']
    assert len({x['id'] for x in comp}) == 1
    raw = sandbox.record('contacts', rec['id'])
    assert comp[0]['id'] in raw['associations']['companies']


def test_get_embeds_associations_by_type_id(sandbox):
    deal = first_id(sandbox, 'deals')
    r = sandbox.api('GET', '/crm/v3/objects/deals/' + deal,
                    query={'associations': '0-1,companies'}).json()
    assert set(r['associations']) == {'contacts', 'companies'}
    assert {x['type'] for x in r['associations']['contacts']['results']} == \
        {'deal_to_contact'}
