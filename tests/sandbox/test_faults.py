"""Fault injection, the request log and counts, and writes "as another
client" through the control API."""

import http.client
import json
import socket
import time

import pytest

from tests.sandbox.client import SandboxError


def raw(sb, method, path, body=None, token=True, timeout=10):
    """One request on a fresh connection -> (status, headers, body) or the
    exception http.client raised."""
    c = http.client.HTTPConnection(sb.host, sb.port, timeout=timeout)
    hdrs = {}
    if token:
        hdrs['Authorization'] = 'Bearer ' + sb.token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs['Content-Type'] = 'application/json'
    try:
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


@pytest.mark.parametrize('policy,msg', [
    ('TEN_SECONDLY_ROLLING', 'You have reached your ten_secondly_rolling limit.'),
    ('SECONDLY', 'You have reached your secondly limit.'),
    ('DAILY', 'You have reached your daily limit.'),
])
def test_injected_429_per_policy(sandbox, policy, msg):
    sandbox.fault('429', count=2, policy=policy, path=r'^/crm/v3/objects/contacts$')
    for _ in range(2):
        r = sandbox.api('GET', '/crm/v3/objects/contacts')
        assert r.status == 429
        b = r.json()
        assert b['policyName'] == policy and b['message'] == msg
        assert b['errorType'] == 'RATE_LIMIT'
        assert r.header('Retry-After') is None
    assert sandbox.api('GET', '/crm/v3/objects/contacts').status == 200
    log = sandbox.log()
    assert [e['injected'] for e in log] == [True, True, False]
    assert [e['fault'] for e in log][:2] == ['429', '429']


def test_fault_matching_by_method_and_path(sandbox):
    sandbox.fault('503', count=5, method='POST', path='/batch/read$')
    assert sandbox.api('GET', '/crm/v3/objects/contacts').status == 200
    assert sandbox.api('POST', '/crm/v3/objects/contacts/batch/create',
                       {'inputs': []}).status == 201
    r = sandbox.api('POST', '/crm/v3/objects/deals/batch/read', {'inputs': []})
    assert r.status == 503
    assert r.json()['status'] == 'error'
    f = sandbox.faults()[0]
    assert f['fired'] == 1 and f['remaining'] == 4


@pytest.mark.parametrize('status', [500, 502, 503, 504])
def test_5xx_with_retry_after(sandbox, status):
    sandbox.fault(str(status), retry_after=2)
    r = sandbox.api('GET', '/crm/v3/owners')
    assert r.status == status
    assert r.header('Retry-After') == '2'
    assert r.json()['category'] == 'INTERNAL_ERROR'
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


def test_status_fault_with_raw_body(sandbox):
    sandbox.fault('status', status=404, body='<html>not found</html>',
                  path='/idProperty|contacts/')
    r = sandbox.api('GET', '/crm/v3/objects/contacts/a@b.com',
                    query={'idProperty': 'email'})
    assert r.status == 404 and r.body == b'<html>not found</html>'
    assert r.header('Content-Type').startswith('text/html')
    sandbox.fault('status', status=477, retry_after=1)
    assert sandbox.api('GET', '/crm/v3/owners').status == 477


def test_time_span_fault(sandbox):
    t0 = time.monotonic()
    sandbox.fault('500', seconds=1.5)
    assert [sandbox.api('GET', '/crm/v3/owners').status for _ in range(3)] == [500] * 3
    time.sleep(max(0.0, t0 + 1.6 - time.monotonic()))
    assert sandbox.api('GET', '/crm/v3/owners').status == 200
    assert sandbox.faults() == []


def test_expired_token_fault(sandbox):
    sandbox.fault('expired_token', count=1)
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    assert r.status == 401
    b = r.json()
    assert b['category'] == 'EXPIRED_AUTHENTICATION'
    assert 'expired' in b['message'] and 'expire time' in b['context']
    assert sandbox.api('GET', '/crm/v3/objects/contacts').status == 200


def test_latency_fault_and_global_latency(sandbox):
    sandbox.fault('latency', latency_ms=300, count=1)
    t0 = time.monotonic()
    assert sandbox.api('GET', '/crm/v3/owners').status == 200
    assert time.monotonic() - t0 >= 0.3
    assert sandbox.log()[-1]['injected'] is True
    assert sandbox.log()[-1]['duration'] >= 300
    sandbox.configure(latency_ms=200)
    t0 = time.monotonic()
    sandbox.api('GET', '/crm/v3/owners')
    assert time.monotonic() - t0 >= 0.2
    assert sandbox.log()[-1]['injected'] is False


def test_cut_response_mid_body(sandbox):
    sandbox.fault('cut', count=1)
    with pytest.raises(http.client.IncompleteRead) as ei:
        raw(sandbox, 'GET', '/crm/v3/objects/contacts?limit=50')
    e = ei.value
    assert 0 < len(e.partial) < e.partial.__len__() + e.expected
    entry = sandbox.log()[-1]
    assert entry['injected'] and entry['fault'] == 'cut' and entry['status'] == 200
    assert 0 < entry['response_bytes']
    # next request is fine
    s, _, body = raw(sandbox, 'GET', '/crm/v3/objects/contacts?limit=50')
    assert s == 200 and json.loads(body)['results']


def test_cut_after_n_bytes_still_applies_the_write(sandbox):
    sandbox.fault('cut', count=1, cut_bytes=10, method='POST')
    with pytest.raises(http.client.IncompleteRead) as ei:
        raw(sandbox, 'POST', '/crm/v3/objects/contacts',
            {'properties': {'email': 'indoubt@example.com'}})
    assert len(ei.value.partial) == 10
    r = sandbox.api('GET', '/crm/v3/objects/contacts/indoubt@example.com',
                    query={'idProperty': 'email'})
    assert r.status == 200


def test_drop_without_response_does_not_apply(sandbox):
    sandbox.fault('drop', count=1, method='POST')
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        raw(sandbox, 'POST', '/crm/v3/objects/contacts',
            {'properties': {'email': 'dropped@example.com'}})
    assert sandbox.api('GET', '/crm/v3/objects/contacts/dropped@example.com',
                       query={'idProperty': 'email'}).status == 404
    e = sandbox.log()[-2]
    assert e['status'] == 0 and e['fault'] == 'drop' and e['injected']


def test_drop_after_applies_then_closes(sandbox):
    sandbox.fault('drop_after', count=1, method='POST')
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        raw(sandbox, 'POST', '/crm/v3/objects/contacts',
            {'properties': {'email': 'applied@example.com'}})
    assert sandbox.api('GET', '/crm/v3/objects/contacts/applied@example.com',
                       query={'idProperty': 'email'}).status == 200


def test_faults_do_not_hang_keepalive_clients(sandbox):
    # a cut on a keep-alive connection must end that connection, not stall it
    sandbox.fault('cut', count=1)
    c = http.client.HTTPConnection(sandbox.host, sandbox.port, timeout=5)
    c.request('GET', '/crm/v3/owners', headers={'Authorization': 'Bearer sandbox-token'})
    r = c.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()


def test_fault_list_and_clear(sandbox):
    a = sandbox.fault('500', count=3)
    sandbox.fault('latency', latency_ms=10, seconds=60)
    fl = sandbox.faults()
    assert [f['kind'] for f in fl] == ['500', 'latency']
    assert fl[0]['remaining'] == 3 and fl[1]['seconds_left'] > 50
    sandbox.remove_fault(a['id'])
    assert [f['kind'] for f in sandbox.faults()] == ['latency']
    sandbox.clear_faults()
    assert sandbox.faults() == []
    with pytest.raises(SandboxError):
        sandbox.fault('explode')
    with pytest.raises(SandboxError):
        sandbox.fault('429', policy='HOURLY')


def test_reset_clears_faults(sandbox):
    sandbox.fault('500', count=10)
    sandbox.reset()
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


# ---------------------------------------------------------------- log & counts

def test_log_entries(sandbox):
    sandbox.api('GET', '/crm/v3/objects/contacts', query={'limit': 3})
    sandbox.api('POST', '/crm/v3/objects/contacts/batch/read',
                {'inputs': [{'id': '1000001'}]})
    log = sandbox.log()
    assert len(log) == 2
    e = log[0]
    assert {'seq', 'method', 'path', 'query', 'status', 'time', 'duration',
            'request_bytes', 'response_bytes', 'injected', 'endpoint'} <= set(e)
    assert e['method'] == 'GET' and e['path'] == '/crm/v3/objects/contacts'
    assert e['query'] == 'limit=3' and e['status'] == 200
    assert e['response_bytes'] > 100 and e['request_bytes'] == 0
    assert log[1]['request_bytes'] > 10 and log[1]['seq'] == e['seq'] + 1
    assert sandbox.log(since=e['seq']) == [log[1]]


def test_counts_endpoint_names(sandbox):
    cid = '1000001'
    calls = [
        ('GET', '/crm/v3/objects/0-1', None),
        ('GET', '/crm/v3/objects/contacts', None),
        ('GET', '/crm/v3/objects/contacts/' + cid, None),
        ('POST', '/crm/v3/objects/contacts/batch/read', {'inputs': []}),
        ('POST', '/crm/v3/objects/contacts/search', {}),
        ('POST', '/crm/v4/associations/contact/companies/batch/read', {'inputs': []}),
        ('GET', '/crm/v4/objects/contacts/%s/associations/companies' % cid, None),
        ('GET', '/crm/v3/properties/deals', None),
        ('GET', '/crm/v3/pipelines/deals', None),
        ('GET', '/crm/v3/owners', None),
        ('GET', '/account-info/v3/details', None),
    ]
    for m, p, b in calls:
        assert sandbox.api(m, p, b).status < 300, p
    counts = sandbox.counts()
    assert counts == {
        'GET /crm/v3/objects/contacts': 2,
        'GET /crm/v3/objects/contacts/{id}': 1,
        'POST /crm/v3/objects/contacts/batch/read': 1,
        'POST /crm/v3/objects/contacts/search': 1,
        'POST /crm/v4/associations/contacts/companies/batch/read': 1,
        'GET /crm/v4/objects/contacts/{id}/associations/companies': 1,
        'GET /crm/v3/properties/deals': 1,
        'GET /crm/v3/pipelines/deals': 1,
        'GET /crm/v3/owners': 1,
        'GET /account-info/v3/details': 1,
    }


def test_count_filters_and_clear_log(sandbox):
    for _ in range(3):
        sandbox.api('GET', '/crm/v3/objects/contacts')
    sandbox.api('GET', '/crm/v3/objects/contacts/999')
    seq = sandbox.last_seq()
    sandbox.api('PATCH', '/crm/v3/objects/contacts/1000001',
                {'properties': {'city': 'Bergen'}})
    assert sandbox.count() == 5
    assert sandbox.count(method='GET') == 4
    assert sandbox.count(path_re=r'^/crm/v3/objects/contacts$') == 3
    assert sandbox.count(status=404) == 1
    assert sandbox.count(endpoint='GET /crm/v3/objects/contacts/{id}') == 1
    assert sandbox.count(since=seq) == 1
    assert sandbox.counts(since=seq) == {'PATCH /crm/v3/objects/contacts/{id}': 1}
    sandbox.clear_log()
    assert sandbox.count() == 0 and sandbox.log() == []
    sandbox.api('GET', '/crm/v3/owners')
    assert sandbox.log()[0]['seq'] > seq        # sequence numbers keep growing


def test_unauthenticated_and_unknown_routes_are_logged(sandbox):
    sandbox.api('GET', '/crm/v3/objects/contacts', token=None)
    sandbox.api('GET', '/crm/v9/nothing')
    log = sandbox.log()
    assert [e['status'] for e in log] == [401, 404]
    assert log[1]['endpoint'] == 'GET /crm/v9/nothing'


# ---------------------------------------------------------------- other client

def test_write_as_other_client_updates_and_archives(sandbox):
    cid = '1000002'
    before = sandbox.api('GET', '/crm/v3/objects/contacts/' + cid).json()
    rec = sandbox.update('contacts', cid, {'firstname': 'Other'})
    assert rec['properties']['firstname'] == 'Other'
    after = sandbox.api('GET', '/crm/v3/objects/contacts/' + cid).json()
    assert after['properties']['firstname'] == 'Other'
    assert after['updatedAt'] > before['updatedAt']
    assert sandbox.count() == 2                    # control calls are not logged
    with pytest.raises(SandboxError) as ei:
        sandbox.update('contacts', cid, {'nps_score': 'x'})
    assert ei.value.status == 400
    # bypass validation to simulate a UI edit the API would refuse
    sandbox.update('contacts', cid, {'lifecyclestage': 'subscriber'}, validate=False)
    sandbox.archive('contacts', cid)
    assert sandbox.api('GET', '/crm/v3/objects/contacts/' + cid).status == 404
    sandbox.restore('contacts', cid)
    assert sandbox.api('GET', '/crm/v3/objects/contacts/' + cid).status == 200


def test_write_as_other_create_and_associate(sandbox):
    rec = sandbox.create('contacts', {'email': 'other@example.com'},
                         associations=[{'type': 'companies', 'id': '2000001',
                                        'types': [1]}])
    assert rec['associations']['companies'] == {'2000001': [1, 279]}
    with pytest.raises(SandboxError) as ei:
        sandbox.create('contacts', {'email': 'OTHER@example.com'})
    assert ei.value.status == 409
    res = sandbox.associate('deals', '3000001', 'tickets', '5000001')
    assert res['types'] == [27] and res['inverse'] == [28]
    got = sandbox.api('GET', '/crm/v4/objects/tickets/5000001/associations/deals').json()
    assert got['results'][0]['toObjectId'] == 3000001
    sandbox.unassociate('deals', '3000001', 'tickets', '5000001')
    got = sandbox.api('GET', '/crm/v4/objects/tickets/5000001/associations/deals').json()
    assert got['results'] == []
    assert sandbox.write_as_other('update', 'deals', '3000001',
                                  {'amount': '5'})['properties']['amount'] == '5'


def test_raw_record_shows_search_view(sandbox):
    sandbox.configure(index_delay=30)
    sandbox.update('companies', '2000003', {'name': 'Renamed'})
    raw_rec = sandbox.record('companies', '2000003')
    assert raw_rec['properties']['name'] == 'Renamed'
    assert raw_rec['search']['visible'] is True
    assert raw_rec['search']['current'] is False
    assert raw_rec['search']['properties']['name'] != 'Renamed'
    assert raw_rec['search']['seconds_until_current'] > 25
    assert raw_rec['computed']['hs_object_id'] == '2000003'


def test_health_and_reset_sizes(sandbox):
    h = sandbox.health()
    assert h['ok'] and h['records'] == {'contacts': 1000, 'companies': 200,
                                        'deals': 300, 'tickets': 100}
    info = sandbox.reset(contacts=5, companies=2, deals=1, tickets=0, seed=9)
    assert info['sizes'] == {'contacts': 5, 'companies': 2, 'deals': 1, 'tickets': 0}
    assert sandbox.health()['seed']['seed'] == 9
    info = sandbox.reset(demo=True)
    assert info['sizes'] == {'contacts': 50, 'companies': 15, 'deals': 30, 'tickets': 10}
    info = sandbox.reset(demo=True, companies=3)
    assert info['sizes'] == {'contacts': 50, 'companies': 3, 'deals': 30, 'tickets': 10}
    demo = sandbox.api('GET', '/crm/v3/objects/contacts', query={
        'limit': 50, 'properties': 'email,firstname,lastname,jobtitle'}).json()['results']
    assert len(demo) == 50
    assert all(x['properties']['jobtitle'] and '@' in x['properties']['email']
               for x in demo)
    sandbox.reset()
    assert sandbox.health()['records']['contacts'] == 1000


def test_seed_is_deterministic(sandbox):
    a = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'limit': 20, 'properties': 'email,jobtitle,phone'}).json()
    sandbox.reset(seed=2)
    b = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'limit': 20, 'properties': 'email,jobtitle,phone'}).json()
    sandbox.reset()
    c = sandbox.api('GET', '/crm/v3/objects/contacts',
                    query={'limit': 20, 'properties': 'email,jobtitle,phone'}).json()
    assert a == c and a != b
    # seeded timestamps are fixed and in the past
    assert all(x['updatedAt'] < '2025' for x in a['results'])


def test_configure_rejects_bad_settings(sandbox):
    for bad in ({'rate_limit': 'fast'}, {'index_delay': -1}, {'nope': 1},
                {'daily_limit': 'x'}):
        with pytest.raises(SandboxError) as ei:
            sandbox.configure(**bad)
        assert ei.value.status == 400
    cfg = sandbox.configure(rate_limit='190/10s', index_delay=0.5)
    assert cfg['rate_limit'] == '190/10s' and cfg['index_delay'] == 0.5


def test_socket_stays_usable_after_control_errors(sandbox):
    s = socket.create_connection((sandbox.host, sandbox.port), timeout=5)
    s.sendall(b'GET /__sandbox/nope HTTP/1.1\r\nHost: x\r\n\r\n'
              b'GET /__sandbox/health HTTP/1.1\r\nHost: x\r\n\r\n')
    data = b''
    deadline = time.monotonic() + 5
    while data.count(b'HTTP/1.1 ') < 2 and time.monotonic() < deadline:
        data += s.recv(65536)
    s.close()
    assert b'HTTP/1.1 404' in data and b'HTTP/1.1 200' in data
