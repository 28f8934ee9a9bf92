"""Malformed requests get HubSpot-shaped 4xx JSON, never a traceback or a
hang; the server survives abuse."""

import json
import socket
import time

import pytest


def send_raw(sb, data, read_timeout=5):
    s = socket.create_connection((sb.host, sb.port), timeout=read_timeout)
    try:
        s.sendall(data)
        out = b''
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if b'\r\n\r\n' in out:
                head, _, body = out.partition(b'\r\n\r\n')
                cl = [ln for ln in head.split(b'\r\n') if ln.lower().startswith(
                    b'content-length:')]
                if cl and len(body) >= int(cl[0].split(b':')[1]):
                    break
        return out
    finally:
        s.close()


def assert_hubspot_error(r, status):
    assert r.status == status, r
    b = r.json()
    assert b['status'] == 'error' and b['message'] and b['correlationId']
    assert 'Traceback' not in r.body.decode('utf-8', 'replace')
    return b


@pytest.mark.parametrize('body', [b'{', b'{"properties": }', b'not json', b'\xff\xfe',
                                  b'[1, 2', b''])
def test_bad_json(sandbox, body):
    r = sandbox.api('POST', '/crm/v3/objects/contacts', body,
                    headers={'Content-Type': 'application/json'})
    b = assert_hubspot_error(r, 400)
    assert b['category'] == 'VALIDATION_ERROR'
    assert b['message'].startswith('Invalid input JSON on line ')


def test_bad_json_position(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/contacts/search', b'{\n  "limit": x}')
    assert r.json()['message'].startswith('Invalid input JSON on line 2, column 12')


@pytest.mark.parametrize('path,body', [
    ('/crm/v3/objects/contacts', []),
    ('/crm/v3/objects/contacts', 'string'),
    ('/crm/v3/objects/contacts', {'properties': 'x'}),
    ('/crm/v3/objects/contacts/batch/read', {'inputs': 'x'}),
    ('/crm/v3/objects/contacts/batch/read', {'inputs': [{'id': '1'}], 'properties': 'x'}),
    ('/crm/v3/objects/contacts/batch/update', {'inputs': [{'properties': {}}]}),
    ('/crm/v3/objects/contacts/batch/create', {'inputs': [{'properties': []}]}),
    ('/crm/v3/objects/contacts/search', []),
    ('/crm/v3/objects/contacts/search', {'filterGroups': {}}),
    ('/crm/v3/objects/contacts/search', {'filterGroups': [{'filters': [1]}]}),
    ('/crm/v3/objects/contacts/search', {'limit': 'ten'}),
    ('/crm/v3/objects/contacts/search', {'sorts': [5]}),
    ('/crm/v3/objects/contacts/search', {'properties': 'email'}),
    ('/crm/v3/objects/contacts/search', {'query': 5}),
    ('/crm/v4/associations/contacts/companies/batch/read', {'inputs': [{'id': 'x'}]}),
    ('/crm/v4/associations/contacts/companies/batch/create', {'inputs': [{'from': 1}]}),
    ('/crm/v4/associations/contacts/companies/batch/archive', {'inputs': [{'from': {}}]}),
])
def test_wrong_types_are_400(sandbox, path, body):
    r = sandbox.api('POST', path, body)
    b = assert_hubspot_error(r, 400)
    assert b['category'] == 'VALIDATION_ERROR'


def test_unknown_routes_are_404_json(sandbox):
    for p in ('/', '/crm', '/crm/v3/objects/contacts/1/2/3', '/crm/v3/objects/contacts/batch/x',
              '/crm/v5/objects/contacts', '/favicon.ico'):
        r = sandbox.api('GET', p)
        assert_hubspot_error(r, 404)
        assert r.header('Content-Type').startswith('application/json')


def test_method_not_allowed(sandbox):
    r = sandbox.api('PUT', '/crm/v3/objects/contacts', {})
    assert_hubspot_error(r, 405)
    assert 'GET' in r.header('Allow')
    r = sandbox.api('GET', '/crm/v3/objects/contacts/search')
    assert_hubspot_error(r, 405)


def test_oversize_body_is_413_json(sandbox):
    sandbox.configure(max_body_bytes=1024 * 1024)
    big = json.dumps({'properties': {'jobtitle': 'x' * (2 * 1024 * 1024)}})
    r = sandbox.api('POST', '/crm/v3/objects/contacts', big)
    b = assert_hubspot_error(r, 413)
    assert b['category'] == 'VALIDATION_ERROR'
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


def test_default_body_cap_is_10_mib(sandbox):
    assert sandbox.config()['max_body_bytes'] == 10 * 1024 * 1024


def test_chunked_request_body(sandbox):
    body = json.dumps({'inputs': [{'id': '1000001'}]}).encode()
    req = (b'POST /crm/v3/objects/contacts/batch/read HTTP/1.1\r\nHost: x\r\n'
           b'Authorization: Bearer sandbox-token\r\nContent-Type: application/json\r\n'
           b'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
           + b'%x\r\n' % 5 + body[:5] + b'\r\n'
           + b'%x\r\n' % (len(body) - 5) + body[5:] + b'\r\n0\r\n\r\n')
    out = send_raw(sandbox, req)
    assert out.startswith(b'HTTP/1.1 200')
    assert b'"1000001"' in out


def test_garbage_request_line_does_not_kill_server(sandbox):
    out = send_raw(sandbox, b'\x00\x01garbage\r\n\r\n', read_timeout=2)
    assert b'Traceback' not in out
    assert out.startswith(b'HTTP/1.1 400')
    body = out.partition(b'\r\n\r\n')[2]
    assert json.loads(body)['status'] == 'error'
    out = send_raw(sandbox, b'GET /' + b'a' * 70000 + b' HTTP/1.1\r\n\r\n', read_timeout=2)
    assert out.startswith(b'HTTP/1.1 414') and b'"status":"error"' in out
    send_raw(sandbox, b'GET /crm/v3/owners HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n'
             b'\r\nshort', read_timeout=0.5)
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


def test_client_disconnect_mid_body(sandbox):
    s = socket.create_connection((sandbox.host, sandbox.port), timeout=5)
    s.sendall(b'POST /crm/v3/objects/contacts HTTP/1.1\r\nHost: x\r\n'
              b'Authorization: Bearer sandbox-token\r\nContent-Length: 1000\r\n\r\n{"pro')
    s.close()
    time.sleep(0.1)
    assert sandbox.api('GET', '/crm/v3/owners').status == 200


def test_internal_error_is_500_json_without_traceback(sandbox):
    sandbox.fault('exception', count=1)
    r = sandbox.api('GET', '/crm/v3/objects/contacts')
    b = assert_hubspot_error(r, 500)
    assert b['category'] == 'INTERNAL_ERROR'
    assert sandbox.api('GET', '/crm/v3/objects/contacts').status == 200


def test_weird_ids_and_params(sandbox):
    for rid in ('%00', '..', '1' * 200, '-1', '1.5', '%E2%98%83'):
        r = sandbox.api('GET', '/crm/v3/objects/contacts/' + rid)
        assert r.status == 404, rid
    r = sandbox.api('GET', '/crm/v3/objects/contacts', query={'archived': 'maybe'})
    assert r.status == 200
    r = sandbox.api('GET', '/crm/v4/objects/contacts/abc/associations/companies')
    assert r.status == 404
    r = sandbox.api('PUT', '/crm/v4/objects/contacts/abc/associations/default/companies/x')
    assert r.status == 400


def test_unicode_round_trip(sandbox):
    r = sandbox.api('POST', '/crm/v3/objects/contacts', {'properties': {
        'email': 'zoe@example.com', 'firstname': 'Zoë', 'lastname': '山田 🚀'}})
    assert r.status == 201
    cid = r.json()['id']
    g = sandbox.api('GET', '/crm/v3/objects/contacts/' + cid)
    assert g.json()['properties']['lastname'] == '山田 🚀'
    assert '山田'.encode('utf-8') in g.body                 # raw UTF-8, not \\u escapes


def test_concurrent_clients(sandbox):
    import threading
    errors = []

    def worker(n):
        try:
            for i in range(20):
                r = sandbox.api('POST', '/crm/v3/objects/contacts', {'properties': {
                    'email': 'c%d-%d@example.com' % (n, i)}})
                assert r.status == 201
                assert sandbox.api('GET', '/crm/v3/objects/contacts',
                                   query={'limit': 100}).status == 200
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors
    assert sandbox.health()['records']['contacts'] == 1000 + 160
    ids = []
    after = None
    while True:
        q = {'limit': 100}
        if after:
            q['after'] = after
        b = sandbox.api('GET', '/crm/v3/objects/contacts', query=q).json()
        ids += [x['id'] for x in b['results']]
        if 'paging' not in b:
            break
        after = b['paging']['next']['after']
    assert len(ids) == len(set(ids)) == 1160
