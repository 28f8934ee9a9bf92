"""Command line: both entry points, options, port file, clean shutdown."""

import os
import signal
import subprocess
import sys
import tempfile
import time

from tests.sandbox.client import REPO_ROOT, Sandbox, start_sandbox


def wait_port(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if os.path.exists(path):
            txt = open(path).read().strip()
            if txt:
                return int(txt)
        time.sleep(0.02)
    raise AssertionError('no port file')


def test_module_entry_point_with_options():
    d = tempfile.mkdtemp()
    pf = os.path.join(d, 'port')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'tests.sandbox', '--port', '0', '--port-file', pf,
         '--token', 'tok-1', '--portal-id', '777', '--demo', '--rate-limit', '7/10s',
         '--daily-limit', '50', '--index-delay', '0.25', '--seed', '5',
         '--latency-ms', '30', '--search-limit', '2', '--token-expiry', '60',
         '--retry-after', '4', '--client-id', 'cid', '--client-secret', 'sec',
         '--refresh-token', 'rt'],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = wait_port(pf, proc)
        sb = Sandbox('http://127.0.0.1:%d' % port, token='tok-1')
        assert sb.portal_id == 777
        h = sb.health()
        assert h['records'] == {'contacts': 50, 'companies': 15, 'deals': 30, 'tickets': 10}
        assert h['seed']['seed'] == 5
        r = sb.api('GET', '/crm/v3/objects/companies', query={'limit': 15,
                                                              'properties': 'domain,industry'})
        assert r.status == 200
        assert r.header('X-HubSpot-RateLimit-Max') == '7'
        assert r.header('X-HubSpot-RateLimit-Daily') == '50'
        assert all('.' in c['properties']['domain'] for c in r.json()['results'])
        assert sb.api('GET', '/crm/v3/owners', token='sandbox-token').status == 401
        cfg = sb.config()
        assert cfg['index_delay'] == 0.25 and cfg['rate_limit'] == '7/10s'
        assert cfg['latency_ms'] == 30 and cfg['search_limit'] == 2
        assert cfg['token_expiry'] == 60 and cfg['retry_after'] == 4
        t0 = time.monotonic()
        tok = sb.api('POST', '/oauth/v1/token', 'grant_type=refresh_token&client_id=cid'
                     '&client_secret=sec&refresh_token=rt', token=None)
        assert time.monotonic() - t0 >= 0.03
        assert tok.status == 200 and tok.json()['expires_in'] == 60
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr.read() == b''          # quiet without --verbose
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_py_script_verbose_from_elsewhere():
    d = tempfile.mkdtemp()
    pf = os.path.join(d, 'port')
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO_ROOT, 'tests', 'sandbox', 'run.py'),
         '--port-file', pf, '--contacts', '3', '--companies', '0', '--deals', '0',
         '--tickets', '0', '--rate-limit', 'off', '--verbose'],
        cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = wait_port(pf, proc)
        sb = Sandbox('http://127.0.0.1:%d' % port)
        r = sb.api('GET', '/crm/v3/objects/contacts')
        assert len(r.json()['results']) == 3
        assert r.header('X-HubSpot-RateLimit-Max') is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        err = proc.stderr.read().decode()
        assert 'listening on' in err and 'GET /crm/v3/objects/contacts' in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_start_sandbox_helper_and_stop():
    sb = start_sandbox(contacts=2, companies=1, deals=0, tickets=0, rate_limit='off',
                       search_limit=0)
    try:
        assert sb.pid and sb.port
        assert sb.health()['records']['contacts'] == 2
        assert sb.config()['search_limit'] == 0
    finally:
        sb.stop()
    assert sb.proc is None
    try:
        os.kill(sb.pid, 0)
        alive = True
    except OSError:
        alive = False
    assert not alive


def test_bad_option_exits_nonzero():
    r = subprocess.run([sys.executable, '-m', 'tests.sandbox', '--rate-limit', 'lots'],
                       cwd=REPO_ROOT, capture_output=True, timeout=30)
    assert r.returncode != 0 and b'rate limit' in r.stderr
