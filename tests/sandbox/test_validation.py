"""Write validation (§1.4, §2.1, §2.5, §12): property errors, contacts
uniqueness, lifecycle stage order, pipelines, owners."""

import json

import pytest


def create(sb, t, props):
    return sb.api('POST', '/crm/v3/objects/' + t, {'properties': props})


def inner(body):
    """The JSON list embedded in 'Property values were not valid: [...]'."""
    prefix = 'Property values were not valid: '
    assert body['message'].startswith(prefix), body['message']
    return json.loads(body['message'][len(prefix):])


def assert_prop_error(r, code, name):
    assert r.status == 400, r
    b = r.json()
    assert b['status'] == 'error' and b['category'] == 'VALIDATION_ERROR'
    assert b['correlationId']
    codes = [(e['code'], e['context']['propertyName']) for e in b['errors']]
    assert (code, [name]) in codes, codes
    items = inner(b)
    it = [i for i in items if i['name'] == name][0]
    assert it['isValid'] is False and it['error'] == code
    assert it['portalId'] == 12345678
    return b


def test_unknown_property(sandbox):
    r = create(sandbox, 'contacts', {'email': 'x@example.com', 'description': 'hi'})
    b = assert_prop_error(r, 'PROPERTY_DOESNT_EXIST', 'description')
    assert b['errors'][0]['message'] == 'Property "description" does not exist'


@pytest.mark.parametrize('t,name,value', [
    ('contacts', 'hs_object_id', '5'),
    ('contacts', 'lastmodifieddate', '2024-01-01T00:00:00Z'),
    ('contacts', 'num_associated_deals', '3'),
    ('companies', 'hs_lastmodifieddate', '1700000000000'),
    ('deals', 'hs_is_closed', 'true'),
    ('tickets', 'hs_ticket_id', '1'),
])
def test_read_only_values(sandbox, t, name, value):
    rid = sandbox.api('GET', '/crm/v3/objects/' + t,
                      query={'limit': 1}).json()['results'][0]['id']
    r = sandbox.api('PATCH', '/crm/v3/objects/%s/%s' % (t, rid),
                    {'properties': {name: value}})
    assert_prop_error(r, 'READ_ONLY_VALUE', name)


@pytest.mark.parametrize('t,props,code,name', [
    ('contacts', {'favorite_color': 'pink'}, 'INVALID_OPTION', 'favorite_color'),
    ('contacts', {'favorite_color': 'RED'}, 'INVALID_OPTION', 'favorite_color'),
    ('contacts', {'nps_score': 'ten'}, 'INVALID_INTEGER', 'nps_score'),
    ('contacts', {'nps_score': '1e3'}, 'INVALID_INTEGER', 'nps_score'),
    ('contacts', {'nps_score': ' 7'}, 'INVALID_INTEGER', 'nps_score'),
    ('contacts', {'vip': 'yes'}, 'INVALID_BOOLEAN', 'vip'),
    ('contacts', {'vip': 'true '}, 'INVALID_BOOLEAN', 'vip'),
    ('contacts', {'email': 'not-an-email'}, 'INVALID_EMAIL', 'email'),
    ('contacts', {'hubspot_owner_id': 'bob'}, 'INVALID_INTEGER', 'hubspot_owner_id'),
    ('contacts', {'hubspot_owner_id': '999'}, 'INVALID_OWNER_ID', 'hubspot_owner_id'),
    ('contacts', {'interests': 'webinars;golf'}, 'INVALID_OPTION', 'interests'),
    ('companies', {'contract_start': '2024-03-01T10:00:00Z'}, 'INVALID_DATE',
     'contract_start'),
    ('companies', {'contract_start': '1709287200000'}, 'INVALID_DATE', 'contract_start'),
    ('companies', {'contract_start': 'yesterday'}, 'INVALID_DATE', 'contract_start'),
    ('companies', {'industry': 'Banking'}, 'INVALID_OPTION', 'industry'),
    ('deals', {'closedate': '2024-13-01T00:00:00Z'}, 'INVALID_LONG', 'closedate'),
    ('deals', {'closedate': '2025-10-23'}, 'INVALID_LONG', 'closedate'),
    ('deals', {'amount': '1,000'}, 'INVALID_INTEGER', 'amount'),
    ('tickets', {'escalated': '1'}, 'INVALID_BOOLEAN', 'escalated'),
])
def test_bad_values_on_update(sandbox, t, props, code, name):
    rid = sandbox.api('GET', '/crm/v3/objects/' + t,
                      query={'limit': 1}).json()['results'][0]['id']
    before = sandbox.record(t, rid)
    r = sandbox.api('PATCH', '/crm/v3/objects/%s/%s' % (t, rid), {'properties': props})
    assert_prop_error(r, code, name)
    assert sandbox.record(t, rid)['properties'] == before['properties']


def test_not_midnight_message(sandbox):
    r = create(sandbox, 'companies', {'name': 'M', 'contract_start': '1606768561954'})
    b = assert_prop_error(r, 'INVALID_DATE', 'contract_start')
    assert 'is at 20:36:1.954 UTC, not midnight!' in b['errors'][0]['message']


def test_several_errors_reported_together(sandbox):
    r = create(sandbox, 'contacts', {'email': 'e@example.com', 'nps_score': 'x',
                                     'favorite_color': 'pink', 'foo': '1'})
    assert r.status == 400
    assert {e['code'] for e in r.json()['errors']} == \
        {'INVALID_INTEGER', 'INVALID_OPTION', 'PROPERTY_DOESNT_EXIST'}


def test_values_are_normalised(sandbox):
    r = create(sandbox, 'deals', {'dealname': 'N', 'dealstage': 'appointmentscheduled',
                                  'amount': '0100.50', 'closedate': '1700000000000'})
    assert r.status == 201
    p = r.json()['properties']
    assert p['amount'] == '100.5'
    assert p['closedate'] == '2023-11-14T22:13:20.000Z'
    r = create(sandbox, 'companies', {'name': 'D', 'contract_start': '2024-03-01',
                                      'numberofemployees': 12.0})
    p = r.json()['properties']
    assert p['contract_start'] == '2024-03-01' and p['numberofemployees'] == '12'
    r = create(sandbox, 'contacts', {'email': 'b@example.com', 'vip': 'TRUE',
                                     'closedate_not': None} if False else
               {'email': 'b@example.com', 'vip': 'TRUE'})
    assert r.json()['properties']['vip'] == 'true'


def test_checkbox_values_and_append(sandbox):
    cid = create(sandbox, 'contacts', {'email': 'cb@example.com',
                                       'interests': 'webinars;events'}).json()['id']
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'interests': ';case_studies'}})
    assert r.status == 200
    assert r.json()['properties']['interests'] == 'webinars;events;case_studies'
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'interests': 'events'}})
    assert r.json()['properties']['interests'] == 'events'


def test_string_length_cap(sandbox):
    r = create(sandbox, 'contacts', {'email': 'long@example.com',
                                     'jobtitle': 'x' * 65537})
    assert r.status == 400
    r = create(sandbox, 'contacts', {'email': 'long2@example.com',
                                     'jobtitle': 'x' * 65536})
    assert r.status == 201


def test_properties_must_be_an_object(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/contacts', {'properties': ['email']})
    assert r.status == 400 and r.json()['category'] == 'VALIDATION_ERROR'
    r = sandbox.api('POST', '/crm/v3/objects/contacts',
                    {'properties': {'email': {'x': 1}}})
    assert r.status == 400


# ---------------------------------------------------------------- contacts rules

def test_email_unique_case_insensitive_409(sandbox):
    first = create(sandbox, 'contacts', {'email': 'Dup@Example.com'}).json()['id']
    r = create(sandbox, 'contacts', {'email': 'dup@example.COM'})
    assert r.status == 409
    b = r.json()
    assert b['category'] == 'CONFLICT'
    assert b['message'] == 'Contact already exists. Existing ID: %s' % first
    assert 'errors' not in b and 'context' not in b
    # also when another contact is changed to that email
    other = create(sandbox, 'contacts', {'email': 'other@example.com'}).json()['id']
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + other,
                    {'properties': {'email': 'DUP@example.com'}})
    assert r.status == 409


def test_seeded_emails_are_taken(sandbox):
    rec = sandbox.api('GET', '/crm/v3/objects/contacts',
                      query={'limit': 1, 'properties': 'email'}).json()['results'][0]
    r = create(sandbox, 'contacts', {'email': rec['properties']['email'].upper()})
    assert r.status == 409
    assert r.json()['message'].endswith(rec['id'])


def test_lifecycle_forward_only(sandbox):
    cid = create(sandbox, 'contacts', {'email': 'lc@example.com',
                                       'lifecyclestage': 'lead'}).json()['id']
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': 'customer'}})
    assert r.status == 200
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': 'lead'}})
    assert r.status == 400
    b = r.json()
    assert b['category'] == 'VALIDATION_ERROR'
    assert 'customer' in b['message'] and 'lead' in b['message']
    # clear, then set lower in a later request
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': ''}})
    assert r.status == 200 and 'lifecyclestage' not in r.json()['properties']
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': 'subscriber'}})
    assert r.status == 200 and r.json()['properties']['lifecyclestage'] == 'subscriber'
    # 'other' is the last stage
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': 'other'}})
    assert r.status == 200
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': 'evangelist'}})
    assert r.status == 400


def test_lifecycle_clear_and_lower_in_same_request_fails(sandbox):
    # one request can only carry one value per property: the strict reading
    cid = create(sandbox, 'contacts', {'email': 'lc2@example.com',
                                       'lifecyclestage': 'opportunity'}).json()['id']
    r = sandbox.api('PATCH', '/crm/v3/objects/contacts/' + cid,
                    {'properties': {'lifecyclestage': 'lead'}})
    assert r.status == 400


# ---------------------------------------------------------------- pipelines

def test_deal_stage_validated_against_pipeline(sandbox):
    r = create(sandbox, 'deals', {'dealname': 'A', 'dealstage': 'nosuchstage'})
    assert_prop_error(r, 'INVALID_OPTION', 'dealstage')
    r = create(sandbox, 'deals', {'dealname': 'A', 'pipeline': '7421055',
                                  'dealstage': 'closedwon'})
    assert_prop_error(r, 'INVALID_OPTION', 'dealstage')
    r = create(sandbox, 'deals', {'dealname': 'A', 'pipeline': '7421055',
                                  'dealstage': '7421056'})
    assert r.status == 201
    did = r.json()['id']
    # moving to another pipeline needs a stage of that pipeline
    r = sandbox.api('PATCH', '/crm/v3/objects/deals/' + did,
                    {'properties': {'pipeline': 'default'}})
    assert_prop_error(r, 'INVALID_OPTION', 'dealstage')
    r = sandbox.api('PATCH', '/crm/v3/objects/deals/' + did,
                    {'properties': {'pipeline': 'default', 'dealstage': 'closedlost'}})
    assert r.status == 200
    r = create(sandbox, 'deals', {'dealname': 'A', 'pipeline': 'nope',
                                  'dealstage': 'closedwon'})
    assert_prop_error(r, 'INVALID_OPTION', 'pipeline')
    r = sandbox.api('PATCH', '/crm/v3/objects/deals/' + did,
                    {'properties': {'dealstage': ''}})
    assert_prop_error(r, 'INVALID_OPTION', 'dealstage')


def test_ticket_stage_validated(sandbox):
    r = create(sandbox, 'tickets', {'subject': 'T', 'hs_pipeline_stage': '9'})
    assert_prop_error(r, 'INVALID_OPTION', 'hs_pipeline_stage')
    r = create(sandbox, 'tickets', {'subject': 'T', 'hs_pipeline_stage': '4'})
    assert r.status == 201


def test_required_properties_on_create(sandbox):
    r = create(sandbox, 'deals', {'dealname': 'No stage'})
    assert_prop_error(r, 'REQUIRED_PROPERTY', 'dealstage')
    r = create(sandbox, 'tickets', {'hs_pipeline_stage': '1'})
    assert_prop_error(r, 'REQUIRED_PROPERTY', 'subject')


def test_calculated_deal_properties(sandbox):
    did = create(sandbox, 'deals', {'dealname': 'W', 'dealstage': 'closedwon'}).json()['id']
    p = sandbox.api('GET', '/crm/v3/objects/deals/' + did, query={
        'properties': 'hs_is_closed,hs_is_closed_won,hs_deal_stage_probability'}
    ).json()['properties']
    assert p['hs_is_closed'] == 'true' and p['hs_is_closed_won'] == 'true'
    assert p['hs_deal_stage_probability'] == '1'
