"""Throughput checks: the sandbox must never be the bottleneck of a test."""

import http.client
import json
import time


def list_pages(sb, n_pages, properties='email,firstname,lastname,phone,company,'
               'jobtitle,lifecyclestage,hs_lead_status,hubspot_owner_id,createdate,'
               'lastmodifieddate'):
    """Walk list pages of 100 on one keep-alive connection -> pages/second."""
    c = http.client.HTTPConnection(sb.host, sb.port, timeout=30)
    hdrs = {'Authorization': 'Bearer ' + sb.token}
    after = None
    done = 0
    t0 = time.perf_counter()
    while done < n_pages:
        path = '/crm/v3/objects/contacts?limit=100&properties=' + properties
        if after:
            path += '&after=' + after
        c.request('GET', path, headers=hdrs)
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200 and len(body['results']) == 100
        done += 1
        after = body.get('paging', {}).get('next', {}).get('after')
        if after is None:
            after = None
    dt = time.perf_counter() - t0
    c.close()
    return n_pages / dt


def test_list_pages_per_second(sandbox):
    rate = list_pages(sandbox, 100)
    print('list pages/s (1,000 contacts, wraps around): %.0f' % rate)
    assert rate >= 50


def test_seed_100k_and_page_deep(sandbox):
    t0 = time.perf_counter()
    info = sandbox.reset(contacts=100000, companies=2000, deals=3000, tickets=1000)
    seeded = time.perf_counter() - t0
    print('seeded %s in %.2fs' % (info['sizes'], seeded))
    assert info['sizes']['contacts'] == 100000
    assert seeded < 20
    # a page near the end costs the same as the first one (bisect, no scan)
    rate = list_pages(sandbox, 60)
    print('list pages/s (100,000 contacts): %.0f' % rate)
    assert rate >= 50
    t0 = time.perf_counter()
    r = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'limit': 100, 'after': 'MTA5OTkwMAo='})
    assert r.status == 200 and r.json()['results'][0]['id'] == '1099901'
    assert time.perf_counter() - t0 < 0.5
    sandbox.configure(search_limit=0)
    t0 = time.perf_counter()
    r = sandbox.api('POST', '/crm/v3/objects/contacts/search', {
        'filterGroups': [{'filters': [{'propertyName': 'lastmodifieddate',
                                       'operator': 'GTE', 'value': '1730000000000'}]}],
        'sorts': [{'propertyName': 'lastmodifieddate', 'direction': 'ASCENDING'}],
        'limit': 200})
    dt = time.perf_counter() - t0
    print('search over 100,000 contacts: %.2fs, total %d' % (dt, r.json()['total']))
    assert r.status == 200 and dt < 5
