"""Custom object schemas (both base paths), object-library enablement and
per-token scopes."""

import pytest

from tests.sandbox.client import SandboxError, start_sandbox

BASES = ('/crm-object-schemas/v3/schemas', '/crm/v3/schemas')
CARS = 'p12345678_cars'

PETS = {
    'name': 'pets', 'labels': {'singular': 'Pet', 'plural': 'Pets'},
    'primaryDisplayProperty': 'pet_name', 'requiredProperties': ['pet_name'],
    'searchableProperties': ['pet_name', 'species'],
    'properties': [
        {'name': 'pet_name', 'label': 'Name'},
        {'name': 'species', 'label': 'Species', 'type': 'enumeration',
         'fieldType': 'select', 'options': [{'label': 'Dog', 'value': 'dog'},
                                            {'label': 'Cat', 'value': 'cat'}]},
        {'name': 'age', 'label': 'Age', 'type': 'number'},
        {'name': 'chip', 'label': 'Chip id', 'hasUniqueValue': True}],
    'associatedObjects': ['CONTACT', '0-2'],
}


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize('base', BASES)
def test_list_and_get_seeded_schemas(sandbox, base):
    r = sandbox.api('GET', base)
    assert r.status == 200
    res = r.json()['results']
    assert 'paging' not in r.json()
    by = {s['name']: s for s in res}
    cars = by['cars']
    assert cars['objectTypeId'] == '2-4810001' and cars['id'] == '4810001'
    assert cars['fullyQualifiedName'] == CARS
    assert cars['labels'] == {'singular': 'Car', 'plural': 'Cars'}
    assert cars['requiredProperties'] == ['year', 'make', 'vin', 'model']
    assert cars['primaryDisplayProperty'] == 'model'
    pnames = {p['name'] for p in cars['properties']}
    assert {'vin', 'make', 'model', 'year', 'hs_createdate', 'hs_object_id'} <= pnames
    assoc = {a['toObjectTypeId']: a for a in cars['associations']}
    assert {'0-1', '0-2', '0-3', '0-46', '0-48', '0-49', '0-47', '0-27'} <= set(assoc)
    assert by['contracts']['fullyQualifiedName'] == 'p12345678_contracts'
    for key in ('2-4810001', CARS):
        one = sandbox.api('GET', '%s/%s' % (base, key))
        assert one.status == 200 and one.json() == cars
    assert sandbox.api('GET', base + '/cars').status == 404
    assert sandbox.api('GET', base + '/0-1').status == 404
    # the schema's association id is the unlabeled association type
    labels = sandbox.api('GET', '/crm/v4/associations/%s/contacts/labels' % CARS).json()
    unl = [x for x in labels['results'] if x['label'] is None]
    assert unl == [{'category': 'USER_DEFINED', 'typeId': int(assoc['0-1']['id']),
                    'label': None}]


def test_create_schema_then_use_the_type(sandbox):
    r = sandbox.api('POST', BASES[1], PETS)
    assert r.status == 201, r.body
    s = r.json()
    t = s['fullyQualifiedName']
    assert t == 'p12345678_pets' and s['objectTypeId'].startswith('2-')
    assert sandbox.api('GET', BASES[0] + '/' + t).json() == s
    # objects API by objectTypeId and fully qualified name
    bad = sandbox.api('POST', '/crm/v3/objects/' + s['objectTypeId'], {'properties': {}})
    assert bad.status == 400 and bad.json()['errors'][0]['context']['propertyName'] == [
        'pet_name']
    ok = sandbox.api('POST', '/crm/v3/objects/' + t, {
        'properties': {'pet_name': 'Rex', 'species': 'dog', 'chip': 'C1'},
        'associations': [{'to': {'id': '1000001'}, 'types': [
            {'associationCategory': 'USER_DEFINED',
             'associationTypeId': int(next(a['id'] for a in s['associations']
                                           if a['toObjectTypeId'] == '0-1'))}]}]})
    assert ok.status == 201, ok.body
    pid = ok.json()['id']
    assert int(pid) == 2003000001          # third custom type of the portal
    r = sandbox.api('GET', '/crm/v4/objects/contacts/1000001/associations/' + t).json()
    assert [x['toObjectId'] for x in r['results']] == [int(pid)]
    assert sandbox.api('POST', '/crm/v3/objects/' + t, {'properties': {
        'pet_name': 'Tom', 'chip': 'C1'}}).status == 409
    assert sandbox.api('GET', '/crm/v3/objects/pets').status == 400
    sandbox.flush_index()
    s2 = sandbox.api('POST', '/crm/v3/objects/%s/search' % t, {'query': 'rex'}).json()
    assert s2['total'] == 1
    assert sandbox.api('GET', '/crm/v3/properties/' + t + '/species').json()['options'][1][
        'value'] == 'cat'
    # the name is taken; a reset forgets the schema
    assert sandbox.api('POST', BASES[0], PETS).status == 409
    sandbox.reset()
    assert sandbox.api('GET', BASES[0] + '/' + t).status == 404


@pytest.mark.parametrize('change,msg', [
    ({'name': 'Bad-Name'}, 'Invalid object name'),
    ({'requiredProperties': ['nope']}, 'do not exist'),
    ({'properties': [{'name': 'x', 'label': 'X', 'type': 'colour'}]}, 'Invalid property type'),
    ({'associatedObjects': ['widgets']}, 'Unknown object type'),
    ({'labels': {'singular': 'Pet'}}, 'plural'),
])
def test_create_schema_validation(sandbox, change, msg):
    egg = dict(PETS, **change)
    r = sandbox.api('POST', BASES[0], egg)
    assert r.status == 400 and msg in r.json()['message']


def test_patch_schema_and_batch_read(sandbox):
    r = sandbox.api('PATCH', BASES[0] + '/' + CARS, {
        'labels': {'singular': 'Vehicle', 'plural': 'Vehicles'},
        'requiredProperties': ['vin'], 'primaryDisplayProperty': 'vin'})
    assert r.status == 200, r.body
    assert r.json()['labels']['plural'] == 'Vehicles' and 'properties' not in r.json()
    ok = sandbox.api('POST', '/crm/v3/objects/' + CARS, {'properties': {'vin': 'V1'}})
    assert ok.status == 201
    assert sandbox.api('PATCH', BASES[0] + '/' + CARS, {'name': 'autos'}).status == 400
    b = sandbox.api('POST', BASES[1] + '/batch/read', {'inputs': [CARS, '2-9999999']})
    assert b.status == 207
    assert [x['name'] for x in b.json()['results']] == ['cars']


def test_schema_associations_and_delete(sandbox):
    r = sandbox.api('POST', BASES[0], dict(PETS, name='gadgets', requiredProperties=[],
                                           associatedObjects=[]))
    t = r.json()['fullyQualifiedName']
    tid = r.json()['objectTypeId']
    a = sandbox.api('POST', '%s/%s/associations' % (BASES[0], t),
                    {'fromObjectTypeId': tid, 'toObjectTypeId': '0-5', 'name': 'gadget_ticket'})
    assert a.status == 201 and a.json()['toObjectTypeId'] == '0-5'
    assoc_id = a.json()['id']
    rec = sandbox.api('POST', '/crm/v3/objects/' + t, {'properties': {'pet_name': 'g'}})
    assert sandbox.api('PUT', '/crm/v4/objects/%s/%s/associations/default/tickets/5000001'
                       % (t, rec.json()['id'])).status == 200
    r = sandbox.api('DELETE', '%s/%s' % (BASES[0], t))
    assert r.status == 400                       # records first
    sandbox.api('DELETE', '/crm/v3/objects/%s/%s' % (t, rec.json()['id']))
    assert sandbox.api('DELETE', '%s/%s' % (BASES[0], t)).status == 400   # archived too
    sandbox._ctl('POST', 'reset', {})
    r = sandbox.api('POST', BASES[0], dict(PETS, name='gadgets', requiredProperties=[],
                                           associatedObjects=[]))
    t = r.json()['fullyQualifiedName']
    assert sandbox.api('DELETE', '%s/%s/associations/%s' % (BASES[0], t, '99999')).status == 404
    assert sandbox.api('DELETE', '%s/%s' % (BASES[0], t)).status == 204
    assert sandbox.api('GET', '/crm/v3/objects/' + t).status == 400
    arch = sandbox.api('GET', BASES[0], query={'archived': 'true'}).json()['results']
    assert [s['name'] for s in arch] == ['gadgets']
    assert sandbox.api('POST', BASES[0], dict(PETS, name='gadgets')).status == 409
    assert sandbox.api('DELETE', '%s/%s' % (BASES[0], t), query={'archived': 'true'}).status \
        == 204
    assert sandbox.api('POST', BASES[0], dict(PETS, name='gadgets')).status == 201
    assert assoc_id


def test_custom_object_limit(sandbox):
    sandbox.configure(custom_object_limit=3)
    assert sandbox.api('POST', BASES[0], PETS).status == 201
    r = sandbox.api('POST', BASES[0], dict(PETS, name='more'))
    assert r.status == 400 and 'limit' in r.json()['message']


def test_no_custom_objects_flag():
    sb = start_sandbox(contacts=1, companies=0, deals=0, tickets=0, no_custom_objects=True)
    try:
        assert sb.api('GET', BASES[0]).json() == {'results': []}
        assert sb.api('GET', '/crm/v3/objects/' + CARS).status == 400
    finally:
        sb.stop()


# ---------------------------------------------------------------- object library


def test_object_library_enablement_and_disabled_types():
    sb = start_sandbox(contacts=3, companies=0, deals=0, tickets=0, rate_limit='off',
                       object_library='0-420=off,courses=off', objects='0-410=2,0-421=1')
    try:
        r = sb.api('GET', '/crm/v3/object-library/enablement')
        assert r.json() == {'enablementByObjectTypeId': {
            '0-162': True, '0-410': False, '0-420': False, '0-421': True}}
        assert sb.api('GET', '/crm/v3/object-library/enablement/0-410').json() == {
            'enablement': False}
        assert sb.api('GET', '/crm/v3/object-library/enablement/0-1').status == 404
        for path in ('/crm/v3/objects/0-420', '/crm/v3/objects/0-410/2410000001',
                     '/crm/v3/properties/0-410', '/crm/v3/pipelines/0-420'):
            r = sb.api('GET', path)
            assert r.status == 400, path
            assert r.json()['message'].startswith('The 0-4') and 'not enabled' in \
                r.json()['message']
        assert sb.api('POST', '/crm/v3/objects/0-410/search', {}).status == 400
        assert sb.api('GET', '/crm/v3/objects/0-421').status == 200
        sb.configure(object_library={'0-410': True},
                     object_library_message='disabled: {objectTypeId}')
        assert sb.api('GET', '/crm/v3/objects/0-410').status == 200
        assert sb.api('GET', '/crm/v3/objects/0-420').json()['message'] == 'disabled: 0-420'
        with pytest.raises(SandboxError):
            sb.configure(object_library={'0-1': False})
    finally:
        sb.stop()


# ---------------------------------------------------------------- scopes


def test_withheld_scopes_answer_403_missing_scopes():
    sb = start_sandbox(contacts=3, companies=1, deals=1, tickets=1, rate_limit='off',
                       objects='quotes=1,notes=2,emails=1',
                       scopes='-crm.objects.quotes.read,-crm.objects.quotes.write,'
                              '-e-commerce,-sales-email-read')
    try:
        r = sb.api('GET', '/crm/v3/objects/quotes')
        assert r.status == 403
        b = r.json()
        assert b['category'] == 'MISSING_SCOPES' and b['status'] == 'error'
        assert b['message'].startswith("This app hasn't been granted all required scopes")
        assert b['errors'][0]['message'] == 'One or more of the following scopes are required.'
        assert b['errors'][0]['context']['requiredGranularScopes'] == [
            'crm.objects.quotes.read', 'e-commerce']
        assert b['links'] == {'scopes': 'https://developers.hubspot.com/scopes'}
        assert r.header('x-hubspot-correlation-id')
        # counted like any other call, with the rate-limit headers
        assert sb.count(endpoint='GET /crm/v3/objects/quotes', status=403) == 1
        r = sb.api('GET', '/crm/v3/objects/emails')
        assert r.status == 403 and r.json()['errors'][0]['context'][
            'requiredGranularScopes'] == ['sales-email-read']
        assert sb.api('GET', '/crm/v3/objects/notes').status == 200
        assert sb.api('GET', '/crm/v3/properties/quotes').status == 403
        assert sb.api('GET', '/crm/v4/objects/deals/3000001/associations/quotes').status == 403
        assert sb.api('GET', '/crm/v3/objects/contacts').status == 200
        assert 'crm.objects.quotes.read' not in sb.config()['scopes']
        # a token of its own scopes
        tok = sb._ctl('POST', 'tokens', {'scopes': ['crm.objects.contacts.read']})
        assert tok['scopes'] == ['crm.objects.contacts.read']
        t = tok['access_token']
        assert sb.api('GET', '/crm/v3/objects/contacts', token=t).status == 200
        assert sb.api('GET', '/crm/v3/objects/companies', token=t).status == 403
        assert sb.api('POST', '/crm/v3/objects/contacts', {'properties': {}},
                      token=t).json()['errors'][0]['context']['requiredGranularScopes'] == [
            'crm.objects.contacts.write']
        info = sb.api('GET', '/oauth/v1/access-tokens/' + t, token=None).json()
        assert info['scopes'] == ['crm.objects.contacts.read']
        # back to every scope
        sb.configure(scopes='all')
        assert sb.api('GET', '/crm/v3/objects/quotes').status == 200
    finally:
        sb.stop()


def test_schemas_need_custom_scopes():
    sb = start_sandbox(contacts=1, companies=0, deals=0, tickets=0,
                       scopes='crm.objects.contacts.read')
    try:
        r = sb.api('GET', BASES[0])
        assert r.status == 403 and r.json()['errors'][0]['context'][
            'requiredGranularScopes'] == ['crm.schemas.custom.read', 'crm.objects.custom.read']
        assert sb.api('GET', '/crm/v3/objects/' + CARS).status == 403
        assert sb.api('GET', '/crm/v3/owners').status == 403
    finally:
        sb.stop()


def test_bad_scopes_option_is_refused():
    with pytest.raises(RuntimeError):
        start_sandbox(contacts=1, scopes='tickets,-crm.objects.contacts.read')
