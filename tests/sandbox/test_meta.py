"""Properties (§5), pipelines and owners (§6), account info."""

import pytest

SHOWN = {
    'contacts': ['email', 'firstname', 'lastname', 'phone', 'company', 'jobtitle',
                 'lifecyclestage', 'hs_lead_status', 'hubspot_owner_id', 'createdate',
                 'lastmodifieddate'],
    'companies': ['name', 'domain', 'industry', 'city', 'country', 'phone',
                  'numberofemployees', 'annualrevenue', 'lifecyclestage',
                  'hubspot_owner_id', 'createdate', 'hs_lastmodifieddate'],
    'deals': ['dealname', 'amount', 'dealstage', 'pipeline', 'closedate',
              'hubspot_owner_id', 'createdate', 'hs_lastmodifieddate'],
    'tickets': ['subject', 'content', 'hs_pipeline', 'hs_pipeline_stage',
                'hs_ticket_priority', 'hubspot_owner_id', 'createdate',
                'hs_lastmodifieddate'],
}
CUSTOM = {'contacts': {'favorite_color': 'enumeration', 'nps_score': 'number',
                       'vip': 'bool'},
          'companies': {'tier': 'enumeration'},
          'deals': {'forecast_note': 'string'},
          'tickets': {'escalated': 'bool'}}
REQUIRED = {'name', 'label', 'type', 'fieldType', 'groupName', 'description', 'options'}


@pytest.mark.parametrize('t', sorted(SHOWN))
def test_property_schema(sandbox, t):
    r = sandbox.api('GET', '/crm/v3/properties/' + t)
    assert r.status == 200
    props = {p['name']: p for p in r.json()['results']}
    assert set(SHOWN[t]) <= set(props)
    for p in props.values():
        assert REQUIRED <= set(p)
        assert p['type'] in ('string', 'number', 'date', 'datetime', 'bool', 'enumeration')
        assert isinstance(p['hubspotDefined'], bool)
        assert isinstance(p['modificationMetadata']['readOnlyValue'], bool)
    for name, ptype in CUSTOM[t].items():
        assert props[name]['type'] == ptype and props[name]['hubspotDefined'] is False
    assert props['hs_object_id']['modificationMetadata']['readOnlyValue'] is True
    mod = 'lastmodifieddate' if t == 'contacts' else 'hs_lastmodifieddate'
    assert props[mod]['modificationMetadata']['readOnlyValue'] is True
    assert props['createdate']['type'] == 'datetime'
    owner = props['hubspot_owner_id']
    assert owner['externalOptions'] is True and owner['referencedObjectType'] == 'OWNER'
    types = {p['type'] for p in props.values()}
    assert {'string', 'number', 'datetime', 'enumeration'} <= types


def test_schema_has_every_type_and_options(sandbox):
    allp = []
    for t in SHOWN:
        allp += sandbox.api('GET', '/crm/v3/properties/' + t).json()['results']
    assert {'string', 'number', 'date', 'datetime', 'bool', 'enumeration'} == \
        {p['type'] for p in allp}
    fav = [p for p in allp if p['name'] == 'favorite_color'][0]
    assert [o['value'] for o in fav['options']] == ['red', 'green', 'blue', 'yellow',
                                                    'purple']
    assert {'label', 'value', 'displayOrder', 'hidden'} <= set(fav['options'][0])
    lc = [p for p in allp if p['name'] == 'lifecyclestage'][0]
    assert [o['value'] for o in lc['options']][:3] == ['subscriber', 'lead',
                                                      'marketingqualifiedlead']


def test_get_one_property_and_404(sandbox):
    r = sandbox.api('GET', '/crm/v3/properties/contacts/vip')
    assert r.status == 200 and r.json()['type'] == 'bool'
    r = sandbox.api('GET', '/crm/v3/properties/0-2/tier')
    assert r.status == 200 and r.json()['type'] == 'enumeration'
    r = sandbox.api('GET', '/crm/v3/properties/contacts/nope')
    assert r.status == 404 and r.json()['status'] == 'error'


def test_deal_pipelines(sandbox):
    r = sandbox.api('GET', '/crm/v3/pipelines/deals')
    assert r.status == 200
    pipes = {p['id']: p for p in r.json()['results']}
    d = pipes['default']
    assert [s['id'] for s in d['stages']] == [
        'appointmentscheduled', 'qualifiedtobuy', 'presentationscheduled',
        'decisionmakerboughtin', 'contractsent', 'closedwon', 'closedlost']
    probs = {s['id']: s['metadata']['probability'] for s in d['stages']}
    assert probs['appointmentscheduled'] == '0.2' and probs['closedwon'] == '1.0'
    assert probs['closedlost'] == '0.0'
    assert {s['id']: s['metadata']['isClosed'] for s in d['stages']}['closedwon'] == 'true'
    r = sandbox.api('GET', '/crm/v3/pipelines/deals/default/stages/contractsent')
    assert r.status == 200 and r.json()['metadata']['probability'] == '0.9'
    assert sandbox.api('GET', '/crm/v3/pipelines/deals/nope').status == 404
    assert sandbox.api('GET', '/crm/v3/pipelines/deals/default/stages').json()[
        'results'][0]['id'] == 'appointmentscheduled'


def test_ticket_pipeline(sandbox):
    r = sandbox.api('GET', '/crm/v3/pipelines/tickets').json()['results']
    assert r[0]['id'] == '0'
    assert [s['id'] for s in r[0]['stages']] == ['1', '2', '3', '4']
    assert r[0]['stages'][3]['metadata']['ticketState'] == 'CLOSED'


def test_owners(sandbox):
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == 200
    owners = r.json()['results']
    assert len(owners) >= 5
    o = owners[0]
    assert {'id', 'email', 'firstName', 'lastName', 'userId', 'type', 'createdAt',
            'updatedAt', 'archived', 'teams'} <= set(o)
    r = sandbox.api('GET', '/crm/v3/owners/' + o['id'])
    assert r.status == 200 and r.json() == o
    r = sandbox.api('GET', '/crm/v3/owners/%d' % o['userId'],
                    query={'idProperty': 'userId'})
    assert r.json()['id'] == o['id']
    assert sandbox.api('GET', '/crm/v3/owners/1').status == 404
    arch = sandbox.api('GET', '/crm/v3/owners', query={'archived': 'true'}).json()
    assert arch['results'] and arch['results'][0]['userId'] is None
    page = sandbox.api('GET', '/crm/v3/owners', query={'limit': 2}).json()
    assert len(page['results']) == 2 and page['paging']['next']['after']
    nxt = sandbox.api('GET', '/crm/v3/owners',
                      query={'limit': 2, 'after': page['paging']['next']['after']}).json()
    assert nxt['results'][0]['id'] == owners[2]['id']
    by_mail = sandbox.api('GET', '/crm/v3/owners', query={'email': o['email']}).json()
    assert [x['id'] for x in by_mail['results']] == [o['id']]
    # seeded records only use active owners
    ids = {x['id'] for x in owners}
    recs = sandbox.api('GET', '/crm/v3/objects/contacts',
                       query={'limit': 50, 'properties': 'hubspot_owner_id'}).json()
    assert {x['properties']['hubspot_owner_id'] for x in recs['results']} <= ids


def test_account_info_and_portal_id(sandbox):
    r = sandbox.api('GET', '/account-info/v3/details')
    assert r.status == 200
    b = r.json()
    assert b['portalId'] == 12345678 and isinstance(b['portalId'], int)
    assert b['timeZone'] and b['companyCurrency'] == 'USD'
    sandbox.configure(portal_id=424242)
    assert sandbox.api('GET', '/account-info/v3/details').json()['portalId'] == 424242
