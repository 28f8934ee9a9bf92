"""Batch endpoints (§1.3, §2.1, §2.5): read/create/update/upsert/archive."""

import re

ISO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')


def ids(sb, t, n):
    r = sb.api('GET', '/crm/v3/objects/' + t, query={'limit': n}).json()
    return [x['id'] for x in r['results']]


def post(sb, path, body, **kw):
    return sb.api('POST', path, body, **kw)


def assert_envelope(b):
    assert b['status'] == 'COMPLETE'
    assert ISO.match(b['startedAt']) and ISO.match(b['completedAt'])


def test_batch_read_all_found(sandbox):
    want = ids(sandbox, 'contacts', 5)
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read',
             {'inputs': [{'id': i} for i in want], 'properties': ['email', 'phone']})
    assert r.status == 200
    b = r.json()
    assert_envelope(b)
    assert 'errors' not in b and 'numErrors' not in b
    assert sorted(x['id'] for x in b['results']) == sorted(want)
    for x in b['results']:
        assert {'email', 'hs_object_id', 'createdate', 'lastmodifieddate'} <= \
            set(x['properties'])


def test_batch_read_missing_is_207(sandbox):
    want = ids(sandbox, 'companies', 2)
    r = post(sandbox, '/crm/v3/objects/companies/batch/read',
             {'inputs': [{'id': want[0]}, {'id': '999'}, {'id': want[1]}, {'id': '998'}],
              'properties': ['name']})
    assert r.status == 207
    b = r.json()
    assert_envelope(b)
    assert sorted(x['id'] for x in b['results']) == sorted(want)
    assert b['numErrors'] == 1
    e = b['errors'][0]
    assert e['status'] == 'error' and e['category'] == 'OBJECT_NOT_FOUND'
    assert e['message'] == ('Could not get some COMPANY objects, they may be deleted or '
                            'not exist. Check that ids are valid.')
    assert sorted(e['context']['ids']) == ['998', '999']


def test_batch_read_archived_and_id_property(sandbox):
    a, b_ = ids(sandbox, 'contacts', 2)
    sandbox.archive('contacts', a)
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read', {'inputs': [{'id': a},
                                                                          {'id': b_}]})
    assert r.status == 207 and [x['id'] for x in r.json()['results']] == [b_]
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read?archived=true',
             {'inputs': [{'id': a}, {'id': b_}]})
    assert r.status == 207 and [x['id'] for x in r.json()['results']] == [a]
    assert r.json()['results'][0]['archived'] is True
    email = sandbox.record('contacts', b_)['properties']['email']
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read',
             {'idProperty': 'email', 'inputs': [{'id': email.upper()}],
              'properties': ['email']})
    assert r.status == 200 and r.json()['results'][0]['id'] == b_


def test_batch_caps(sandbox):
    big = {'inputs': [{'id': str(i)} for i in range(101)]}
    for op in ('read', 'create', 'update', 'upsert', 'archive'):
        r = post(sandbox, '/crm/v3/objects/contacts/batch/' + op, big)
        assert r.status == 400, op
        assert r.json()['category'] == 'VALIDATION_ERROR'
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read',
             {'inputs': [{'id': str(i)} for i in range(51)],
              'propertiesWithHistory': ['email']})
    assert r.status == 400
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read',
             {'inputs': [{'id': str(i)} for i in range(100)]})
    assert r.status == 207


def test_batch_create_201(sandbox):
    r = post(sandbox, '/crm/v3/objects/contacts/batch/create', {'inputs': [
        {'properties': {'email': 'b1@example.com', 'firstname': 'B1'}},
        {'properties': {'email': 'b2@example.com'},
         'associations': [{'to': {'id': ids(sandbox, 'companies', 1)[0]},
                           'types': [{'associationCategory': 'HUBSPOT_DEFINED',
                                      'associationTypeId': 279}]}]}]})
    assert r.status == 201
    b = r.json()
    assert_envelope(b)
    got = {x['properties']['email']: x['id'] for x in b['results']}
    assert set(got) == {'b1@example.com', 'b2@example.com'}
    raw = sandbox.record('contacts', got['b2@example.com'])
    assert list(raw['associations']['companies'].values()) == [[279]]


def test_batch_create_without_trace_ids_fails_whole_batch(sandbox):
    before = sandbox.health()['records']['contacts']
    r = post(sandbox, '/crm/v3/objects/contacts/batch/create', {'inputs': [
        {'properties': {'email': 'ok@example.com'}},
        {'properties': {'email': 'bad@example.com', 'nps_score': 'x'}}]})
    assert r.status == 400 and r.json()['category'] == 'VALIDATION_ERROR'
    assert sandbox.health()['records']['contacts'] == before
    # conflict with an existing contact: 409 naming the first conflict
    existing = sandbox.create('contacts', {'email': 'exists@example.com'})['id']
    r = post(sandbox, '/crm/v3/objects/contacts/batch/create', {'inputs': [
        {'properties': {'email': 'fresh@example.com'}},
        {'properties': {'email': 'EXISTS@example.com'}}]})
    assert r.status == 409
    assert r.json()['message'] == 'Contact already exists. Existing ID: %s' % existing
    assert sandbox.api('GET', '/crm/v3/objects/contacts/fresh@example.com',
                       query={'idProperty': 'email'}).status == 404
    # duplicate emails inside one batch
    r = post(sandbox, '/crm/v3/objects/contacts/batch/create', {'inputs': [
        {'properties': {'email': 'twin@example.com'}},
        {'properties': {'email': 'Twin@example.com'}}]})
    assert r.status == 409 and r.json()['category'] == 'CONFLICT'


def test_batch_create_with_trace_ids_is_partial_207(sandbox):
    existing = sandbox.create('contacts', {'email': 'taken@example.com'})['id']
    r = post(sandbox, '/crm/v3/objects/contacts/batch/create', {'inputs': [
        {'properties': {'email': 'good@example.com'}, 'objectWriteTraceId': 't1'},
        {'properties': {'email': 'taken@example.com'}, 'objectWriteTraceId': 't2'},
        {'properties': {'email': 'x@example.com', 'vip': 'maybe'},
         'objectWriteTraceId': 't3'}]})
    assert r.status == 207
    b = r.json()
    assert_envelope(b)
    assert [x['properties']['email'] for x in b['results']] == ['good@example.com']
    assert b['results'][0]['objectWriteTraceId'] == 't1'
    assert b['numErrors'] == 2
    by_trace = {e['context']['objectWriteTraceId'][0]: e for e in b['errors']}
    assert by_trace['t2']['category'] == 'CONFLICT'
    assert by_trace['t2']['message'].endswith(existing)
    assert by_trace['t3']['category'] == 'VALIDATION_ERROR'
    assert by_trace['t3']['errors'][0]['code'] == 'INVALID_BOOLEAN'


def test_batch_update_200_and_207_for_missing(sandbox):
    a, b_ = ids(sandbox, 'deals', 2)
    r = post(sandbox, '/crm/v3/objects/deals/batch/update', {'inputs': [
        {'id': a, 'properties': {'amount': '1234'}},
        {'id': b_, 'properties': {'forecast_note': 'hot'}}]})
    assert r.status == 200
    res = {x['id']: x for x in r.json()['results']}
    assert res[a]['properties']['amount'] == '1234'
    assert res[b_]['properties']['forecast_note'] == 'hot'
    r = post(sandbox, '/crm/v3/objects/deals/batch/update', {'inputs': [
        {'id': a, 'properties': {'amount': '99'}},
        {'id': '4040', 'properties': {'amount': '1'}}]})
    assert r.status == 207
    b = r.json()
    assert [x['id'] for x in b['results']] == [a]
    assert b['errors'][0]['category'] == 'OBJECT_NOT_FOUND'
    assert b['errors'][0]['context']['ids'] == ['4040']
    assert 'DEAL objects' in b['errors'][0]['message']
    assert sandbox.record('deals', a)['properties']['amount'] == '99'


def test_batch_update_validation_fails_whole_batch(sandbox):
    a, b_ = ids(sandbox, 'contacts', 2)
    before = sandbox.record('contacts', a)['properties']
    r = post(sandbox, '/crm/v3/objects/contacts/batch/update', {'inputs': [
        {'id': a, 'properties': {'city': 'Changed'}},
        {'id': b_, 'properties': {'hs_object_id': '1'}}]})
    assert r.status == 400
    assert r.json()['errors'][0]['code'] == 'READ_ONLY_VALUE'
    assert sandbox.record('contacts', a)['properties'] == before


def test_batch_update_by_email_is_non_unique_400(sandbox):
    r = post(sandbox, '/crm/v3/objects/contacts/batch/update', {'inputs': [
        {'id': 'a@example.com', 'idProperty': 'email', 'properties': {'city': 'X'}}]})
    assert r.status == 400
    assert r.json()['message'] == ('Unable to perform update/upsert by non-unique 0-1 '
                                   'property email in portal ID 12345678')


def test_batch_update_duplicate_ids_400(sandbox):
    a = ids(sandbox, 'contacts', 1)[0]
    r = post(sandbox, '/crm/v3/objects/contacts/batch/update', {'inputs': [
        {'id': a, 'properties': {'city': 'X'}}, {'id': a, 'properties': {'city': 'Y'}}]})
    assert r.status == 400 and 'Duplicate IDs' in r.json()['message']


def test_batch_upsert_by_email(sandbox):
    existing = sandbox.create('contacts', {'email': 'up@example.com',
                                           'firstname': 'Old'})['id']
    r = post(sandbox, '/crm/v3/objects/contacts/batch/upsert', {'inputs': [
        {'id': 'UP@example.com', 'idProperty': 'email',
         'properties': {'firstname': 'New'}},
        {'id': 'brand.new@example.com', 'idProperty': 'email',
         'properties': {'lastname': 'Fresh'}}]})
    assert r.status == 200
    b = r.json()
    assert_envelope(b)
    res = {x['id']: x for x in b['results']}
    assert res[existing]['new'] is False
    assert res[existing]['properties']['firstname'] == 'New'
    created = [x for x in b['results'] if x['new']]
    assert len(created) == 1
    assert created[0]['properties']['email'] == 'brand.new@example.com'
    assert created[0]['properties']['lastname'] == 'Fresh'
    # upserting again updates, never duplicates
    r = post(sandbox, '/crm/v3/objects/contacts/batch/upsert', {'inputs': [
        {'id': 'brand.new@example.com', 'idProperty': 'email',
         'properties': {'lastname': 'Again'}}]})
    assert r.json()['results'][0]['new'] is False
    assert r.json()['results'][0]['id'] == created[0]['id']


def test_batch_upsert_requires_unique_id_property(sandbox):
    r = post(sandbox, '/crm/v3/objects/contacts/batch/upsert', {'inputs': [
        {'id': 'x@example.com', 'properties': {}}]})
    assert r.status == 400 and 'non-unique' in r.json()['message']
    r = post(sandbox, '/crm/v3/objects/companies/batch/upsert', {'inputs': [
        {'id': 'acme.com', 'idProperty': 'domain', 'properties': {}}]})
    assert r.status == 400
    assert r.json()['message'] == ('Unable to perform update/upsert by non-unique 0-2 '
                                   'property domain in portal ID 12345678')


def test_batch_upsert_respects_lifecycle_rule(sandbox):
    sandbox.create('contacts', {'email': 'lcu@example.com', 'lifecyclestage': 'customer'})
    r = post(sandbox, '/crm/v3/objects/contacts/batch/upsert', {'inputs': [
        {'id': 'lcu@example.com', 'idProperty': 'email',
         'properties': {'lifecyclestage': 'lead'}}]})
    assert r.status == 400


def test_batch_archive_204(sandbox):
    a, b_ = ids(sandbox, 'tickets', 2)
    r = post(sandbox, '/crm/v3/objects/tickets/batch/archive',
             {'inputs': [{'id': a}, {'id': b_}, {'id': '777'}]})
    assert r.status == 204 and r.body == b''
    assert sandbox.record('tickets', a)['archived'] is True
    assert sandbox.api('GET', '/crm/v3/objects/tickets/' + b_).status == 404


def test_batch_needs_inputs(sandbox):
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read', {'properties': []})
    assert r.status == 400
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read', {'inputs': {'id': '1'}})
    assert r.status == 400
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read', {'inputs': [1, 2]})
    assert r.status == 400
    r = post(sandbox, '/crm/v3/objects/contacts/batch/read', {'inputs': []})
    assert r.status == 200 and r.json()['results'] == []
