"""Bulk changes "as another client" through the control API (issue 14):
change N records' properties, archive some, restore some, create some, with
no API client involved (nothing in the request log, no rate limit)."""

import time

import pytest

from tests.sandbox.client import SandboxError


def modified(sb, t, rid):
    return sb.record(t, rid)['updatedAt']


def test_update_archive_create_in_one_call(sandbox):
    sandbox.configure(rate_limit='1/10s')
    seq = sandbox.last_seq()
    before = {r: modified(sandbox, 'contacts', r) for r in ('1000001', '1000011')}
    out = sandbox.bulk('contacts', update={'count': 100},
                       archive={'count': 10, 'pick': 'last'},
                       create={'count': 5, 'properties': {'lifecyclestage': 'lead'}})
    assert out['counts'] == {'updated': 100, 'archived': 10, 'restored': 0, 'created': 5}
    # spread over the id range, in order
    assert out['updated'][:3] == ['1000001', '1000011', '1000021']
    # archive picks among the records not just updated
    assert not set(out['archived']) & set(out['updated'])
    assert out['archived'] == [str(i) for i in range(1000990, 1001001) if i != 1000991]
    assert out['created'] == [str(i) for i in range(1001001, 1001006)]
    rec = sandbox.record('contacts', '1000011')
    assert rec['properties']['jobtitle'].startswith('Changed by another client (bulk ')
    assert rec['updatedAt'] > before['1000011']
    assert sandbox.record('contacts', '1000990')['archived'] is True
    new = sandbox.record('contacts', '1001003')
    assert new['properties']['email'].endswith('-2@example.com')
    assert new['properties']['lifecyclestage'] == 'lead'
    h = sandbox.health()
    assert h['records']['contacts'] == 995 and h['archived']['contacts'] == 10
    # not an API client: no log entries, no rate limit
    assert sandbox.log(since=seq) == []
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


def test_updates_follow_the_search_delay_and_are_found_by_a_refresh(sandbox):
    sandbox.configure(index_delay=30)
    t0 = str(int(time.time() * 1000) - 1)
    out = sandbox.bulk('contacts', update={'ids': ['1000005', '1000006'],
                                           'properties': {'city': 'Reykjavik {i} {id}'}})
    assert out['updated'] == ['1000005', '1000006']
    assert sandbox.api('GET', '/crm/v3/objects/contacts/1000006',
                       query={'properties': 'city'}).json()['properties']['city'] == \
        'Reykjavik 1 1000006'
    q = {'filterGroups': [{'filters': [{'propertyName': 'lastmodifieddate',
                                        'operator': 'GT', 'value': t0}]}]}
    assert sandbox.api('POST', '/crm/v3/objects/contacts/search', q).json()['total'] == 0
    sandbox.flush_index()
    r = sandbox.api('POST', '/crm/v3/objects/contacts/search', q).json()
    assert sorted(x['id'] for x in r['results']) == ['1000005', '1000006']


def test_random_pick_is_deterministic_and_restore(sandbox):
    a = sandbox.bulk('deals', archive={'count': 20, 'pick': 'random', 'seed': 7})['archived']
    sandbox.reset()
    b = sandbox.bulk('deals', archive={'count': 20, 'pick': 'random', 'seed': 7})['archived']
    assert a == b and a == sorted(a) and len(set(a)) == 20
    r = sandbox.bulk('deals', restore={'count': 5, 'pick': 'first'})
    assert r['restored'] == a[:5]
    assert sandbox.health()['archived']['deals'] == 15


def test_sixty_percent_change(sandbox):
    out = sandbox.bulk('companies', update={'count': 120, 'pick': 'random'})
    assert len(out['updated']) == 120
    ts = [sandbox.record('companies', i)['updatedAt'] for i in out['updated'][:5]]
    assert all(t.startswith('20') for t in ts)


def test_bad_input_changes_nothing(sandbox):
    with pytest.raises(SandboxError) as e:
        sandbox.bulk('contacts', update={'count': 50, 'properties': {'nps_score': 'ten'}},
                     create={'count': 3})
    assert e.value.status == 400 and e.value.body['errors'][0]['code'] == 'INVALID_INTEGER'
    assert sandbox.health()['records']['contacts'] == 1000
    with pytest.raises(SandboxError) as e:
        sandbox.bulk('contacts', archive={'count': 2000})
    assert e.value.status == 400
    with pytest.raises(SandboxError) as e:
        sandbox.bulk('contacts', archive={'ids': ['1000001', '999']})
    assert e.value.status == 404
    assert sandbox.health()['archived']['contacts'] == 0
    with pytest.raises(SandboxError):
        sandbox.bulk('contacts', update={'count': 1, 'pick': 'middle'})
    with pytest.raises(SandboxError):
        sandbox._ctl('POST', 'bulk', {'type': 'contacts', 'delete': {}})
    # validate=False lets another client move a lifecycle stage backward
    sandbox.update('contacts', '1000001', {'lifecyclestage': 'customer'})
    with pytest.raises(SandboxError):
        sandbox.bulk('contacts', update={'ids': ['1000001'],
                                         'properties': {'lifecyclestage': 'lead'}})
    sandbox.bulk('contacts', update={'ids': ['1000001'],
                                     'properties': {'lifecyclestage': 'lead'}}, validate=False)
    assert sandbox.record('contacts', '1000001')['properties']['lifecyclestage'] == 'lead'


def test_bulk_on_other_types(demo):
    out = demo.bulk('notes', create={'count': 3}, update={'count': 4})
    assert out['counts']['created'] == 3 and out['counts']['updated'] == 4
    n = demo.record('notes', out['created'][0])
    assert n['properties']['hs_timestamp'] and n['properties']['hs_note_body'].startswith(
        'Bulk note ')
    leads = demo.bulk('leads', create={'count': 2})['created']
    for lid in leads:
        assert 578 in list(demo.record('leads', lid)['associations']['contacts'].values())[0]
    cars = demo.bulk('cars', create={'count': 2, 'properties': {'vin': 'VIN-{i}'}})['created']
    assert demo.record('cars', cars[1])['properties']['vin'] == 'VIN-1'
    assert demo.bulk('0-410', update={'count': 1})['counts']['updated'] == 1
