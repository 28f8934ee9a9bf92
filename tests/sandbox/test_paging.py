"""Deep paging and large accounts work (what, not how fast: the sandbox's
throughput is measured by scripts/bench, row 16, where a slow machine shows as
a figure instead of a failed test)."""

import http.client
import json


def walk_pages(sb, n_pages):
    """Walk n_pages list pages of 100 on one keep-alive connection; every page
    is full (the listing wraps around past the end)."""
    c = http.client.HTTPConnection(sb.host, sb.port, timeout=30)
    hdrs = {'Authorization': 'Bearer ' + sb.token}
    after = None
    try:
        for _ in range(n_pages):
            path = '/crm/v3/objects/contacts?limit=100&properties=email,firstname'
            if after:
                path += '&after=' + after
            c.request('GET', path, headers=hdrs)
            r = c.getresponse()
            body = json.loads(r.read())
            assert r.status == 200 and len(body['results']) == 100
            after = body.get('paging', {}).get('next', {}).get('after')
    finally:
        c.close()


def test_list_pages_on_one_connection(sandbox):
    walk_pages(sandbox, 20)


def test_seed_100k_and_page_deep(sandbox):
    info = sandbox.reset(contacts=100000, companies=2000, deals=3000, tickets=1000)
    assert info['sizes']['contacts'] == 100000
    walk_pages(sandbox, 5)
    r = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'limit': 100, 'after': 'MTA5OTkwMAo='})
    assert r.status == 200 and r.json()['results'][0]['id'] == '1099901'
    sandbox.configure(search_limit=0)
    r = sandbox.api('POST', '/crm/v3/objects/contacts/search', {
        'filterGroups': [{'filters': [{'propertyName': 'lastmodifieddate',
                                       'operator': 'GTE', 'value': '1730000000000'}]}],
        'sorts': [{'propertyName': 'lastmodifieddate', 'direction': 'ASCENDING'}],
        'limit': 200})
    assert r.status == 200 and r.json()['total'] > 0
