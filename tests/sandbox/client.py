"""Test-side helper for the HubSpot sandbox (urllib only).

    from tests.sandbox.client import start_sandbox
    sb = start_sandbox(contacts=100, rate_limit='off')
    sb.api('GET', '/crm/v3/objects/contacts', query={'limit': 5}).json()
    sb.fault('429', count=3, path='/crm/v3/objects/contacts')
    sb.count(method='GET', path_re=r'^/crm/v3/objects/contacts$')
    sb.stop()
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_PY = os.path.join(REPO_ROOT, 'tests', 'sandbox', 'run.py')


class SandboxError(Exception):
    def __init__(self, status, body):
        Exception.__init__(self, 'sandbox control call failed: %s %s' % (status, body))
        self.status = status
        self.body = body


class ApiResponse(object):
    """Result of Sandbox.api(): status, headers (case-insensitive), raw body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode('utf-8')) if self.body else None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return '<ApiResponse %d %r>' % (self.status, self.body[:200])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def _http(method, url, body=None, headers=None, timeout=60):
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode('utf-8')
        else:
            data = json.dumps(body).encode('utf-8')
            hdrs.setdefault('Content-Type', 'application/json')
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Sandbox(object):
    """Handle on a running sandbox: .url, .token, .portal_id (+ .pid when
    started by start_sandbox)."""

    def __init__(self, url, token='sandbox-token', portal_id=None, proc=None,
                 port_file=None, stderr_path=None):
        self.url = url.rstrip('/')
        self.token = token
        self.proc = proc
        self.pid = proc.pid if proc is not None else None
        self._port_file = port_file
        self.stderr_path = stderr_path
        u = urllib.parse.urlsplit(self.url)
        self.host = u.hostname
        self.port = u.port
        self.portal_id = portal_id if portal_id is not None else \
            self.health()['portalId']

    # ------------------------------------------------------------ plumbing

    def _ctl(self, method, path, body=None, query=None):
        url = self.url + '/__sandbox/' + path
        if query:
            url += '?' + urllib.parse.urlencode(
                {k: v for k, v in query.items() if v is not None})
        status, _, raw = _http(method, url, body if body is not None else
                               ({} if method in ('POST', 'PUT', 'PATCH') else None))
        data = json.loads(raw.decode('utf-8')) if raw else None
        if status >= 300:
            raise SandboxError(status, data)
        return data

    def api(self, method, path, body=None, query=None, token=True, headers=None,
            timeout=60):
        """Call the HubSpot API as a client would.  token=True uses the static
        token, a string uses that token, None/False sends no Authorization."""
        url = self.url + path
        if query:
            url += ('&' if '?' in path else '?') + urllib.parse.urlencode(query, doseq=True)
        hdrs = dict(headers or {})
        if token is True:
            hdrs['Authorization'] = 'Bearer ' + self.token
        elif token:
            hdrs['Authorization'] = 'Bearer ' + token
        status, h, raw = _http(method, url, body, hdrs, timeout)
        return ApiResponse(status, h, raw)

    # ------------------------------------------------------------ control

    def health(self):
        return self._ctl('GET', 'health')

    def reset(self, seed=None, demo=None, config=None, **sizes):
        """Back to the seeded account and the startup configuration; clears
        faults, log, rate counters and issued tokens.  sizes: contacts=,
        companies=, deals=, tickets=, objects={'notes': 50, 'cars': 3},
        custom_schemas=False."""
        body = dict(sizes)
        if seed is not None:
            body['seed'] = seed
        if demo is not None:
            body['demo'] = demo
        if config:
            body['config'] = config
        return self._ctl('POST', 'reset', body)

    def configure(self, **settings):
        """Change settings at run time, e.g. index_delay=0.5,
        rate_limit='10/1s' | 'off', daily_limit=, search_limit=, latency_ms=,
        token_expiry=, retry_after=, daily_used=, expire_tokens=True."""
        return self._ctl('POST', 'config', settings)

    def config(self):
        return self._ctl('GET', 'config')

    def log(self, since=None, limit=None):
        return self._ctl('GET', 'log', query={'since': since, 'limit': limit})['entries']

    def last_seq(self):
        return self.health()['last_seq']

    def clear_log(self):
        return self._ctl('DELETE', 'log')

    def counts(self, since=None):
        """{normalised endpoint: n} of API calls in the log."""
        return self._ctl('GET', 'counts', query={'since': since})['counts']

    def count(self, method=None, path_re=None, status=None, endpoint=None, since=None,
              injected=None):
        """Number of logged API calls matching all given filters."""
        body = {k: v for k, v in (('method', method), ('path_re', path_re),
                                  ('status', status), ('endpoint', endpoint),
                                  ('since', since), ('injected', injected))
                if v is not None}
        return self._ctl('POST', 'count', body)['count']

    def fault(self, kind, count=None, seconds=None, method=None, path=None, status=None,
              policy=None, retry_after=None, latency_ms=None, cut_bytes=None, body=None,
              content_type=None):
        """Inject a fault for the next `count` matching requests or for
        `seconds`.  kind: '429' (policy TEN_SECONDLY_ROLLING|SECONDLY|DAILY),
        '500' '502' '503' '504', 'status' (status=N), 'latency' (latency_ms),
        'cut', 'drop', 'drop_after', 'expired_token', 'exception'.  path is a
        regex searched in the request path (without the query)."""
        d = {'kind': str(kind)}
        for k, v in (('count', count), ('seconds', seconds), ('method', method),
                     ('path', path), ('status', status), ('policy', policy),
                     ('retry_after', retry_after), ('latency_ms', latency_ms),
                     ('cut_bytes', cut_bytes), ('body', body),
                     ('content_type', content_type)):
            if v is not None:
                d[k] = v
        return self._ctl('POST', 'faults', d)

    def faults(self):
        return self._ctl('GET', 'faults')['faults']

    def clear_faults(self):
        return self._ctl('DELETE', 'faults')

    def remove_fault(self, fault_id):
        return self._ctl('DELETE', 'faults/%d' % fault_id)

    def issue_token(self, expires_in=None, scopes=None):
        """An OAuth access token without the OAuth dance; scopes: the
        token's own scopes (list or --scopes string), else the configured."""
        body = {} if expires_in is None else {'expires_in': expires_in}
        if scopes is not None:
            body['scopes'] = scopes
        return self._ctl('POST', 'tokens', body)['access_token']

    def expire_tokens(self):
        return self._ctl('POST', 'tokens/expire')['expired']

    def flush_index(self):
        """Make every pending write visible to search now."""
        return self._ctl('POST', 'index/flush')

    # writes "as another client": same validation and semantics as the API

    def create(self, type, properties, associations=None, validate=True):
        """-> raw record (see record()).  associations: [{type, id, types?}]."""
        body = {'properties': properties, 'validate': validate}
        if associations:
            body['associations'] = associations
        return self._ctl('POST', 'objects/%s' % type, body)

    def update(self, type, id, properties, validate=True):
        return self._ctl('PATCH', 'objects/%s/%s' % (type, id),
                         {'properties': properties, 'validate': validate})

    def archive(self, type, id):
        return self._ctl('DELETE', 'objects/%s/%s' % (type, id))

    def restore(self, type, id):
        return self._ctl('POST', 'objects/%s/%s/restore' % (type, id))

    def associate(self, from_type, from_id, to_type, to_id, types=None, replace=False):
        body = {'replace': replace}
        if types is not None:
            body['types'] = list(types)
        return self._ctl('PUT', 'associations/%s/%s/%s/%s'
                         % (from_type, from_id, to_type, to_id), body)

    def unassociate(self, from_type, from_id, to_type, to_id):
        return self._ctl('DELETE', 'associations/%s/%s/%s/%s'
                         % (from_type, from_id, to_type, to_id))

    def write_as_other(self, action, type, id=None, properties=None, **kw):
        """Generic form: action in create|update|archive|restore|associate|
        unassociate (associate/unassociate take to_type=, to_id=, types=)."""
        if action == 'create':
            return self.create(type, properties or {}, **kw)
        if action == 'update':
            return self.update(type, id, properties or {}, **kw)
        if action == 'archive':
            return self.archive(type, id)
        if action == 'restore':
            return self.restore(type, id)
        if action == 'associate':
            return self.associate(type, id, kw['to_type'], kw['to_id'], kw.get('types'))
        if action == 'unassociate':
            return self.unassociate(type, id, kw['to_type'], kw['to_id'])
        raise ValueError('unknown action %r' % action)

    def bulk(self, type, update=None, archive=None, restore=None, create=None,
             validate=True):
        """Many changes at once as another client.  update/archive/restore:
        {'count': N, 'pick': 'spread'|'first'|'last'|'random', 'seed': 1} or
        {'ids': [...]}; update also 'properties' ({i}, {id}, {n} expand);
        create: {'count': N, 'properties': {...}}.  -> {'updated': [ids],
        'archived': [...], 'restored': [...], 'created': [...], 'counts': {...}}"""
        body = {'type': type, 'validate': validate}
        for k, v in (('update', update), ('archive', archive), ('restore', restore),
                     ('create', create)):
            if v is not None:
                body[k] = v
        return self._ctl('POST', 'bulk', body)

    # webhooks: the sandbox POSTs signed event batches to a target

    def webhooks_subscribe(self, target_url, client_secret, subscriptions, **settings):
        """Register a webhook target -> its settings (with 'id').
        subscriptions: event types ('contact.creation', 'object.*', '*') or
        {eventType, propertyName?, objectTypeId?, active?}; settings:
        max_concurrent, max_per_second, max_batch, batch_window_ms, timeout_s,
        retry_delays_ms, max_retries, signatures, app_id, active."""
        body = dict(settings, target_url=target_url, client_secret=client_secret,
                    subscriptions=subscriptions)
        return self._ctl('POST', 'webhooks', body)

    def webhooks(self):
        return self._ctl('GET', 'webhooks')

    def webhook_update(self, target_id, **settings):
        return self._ctl('PATCH', 'webhooks/%d' % target_id, settings)

    def webhooks_clear(self):
        return self._ctl('DELETE', 'webhooks')

    def webhook_deliveries(self, since=None, target=None, limit=None):
        return self._ctl('GET', 'webhooks/deliveries',
                         query={'since': since, 'target': target, 'limit': limit})['deliveries']

    def webhook_fault(self, kind, count=1, target=None, stale_ms=None, hold_ms=None):
        """kind: bad_signature | stale_timestamp | tampered_body | duplicate |
        out_of_order."""
        d = {'kind': kind, 'count': count}
        for k, v in (('target', target), ('stale_ms', stale_ms), ('hold_ms', hold_ms)):
            if v is not None:
                d[k] = v
        return self._ctl('POST', 'webhooks/faults', d)

    def webhook_faults(self):
        return self._ctl('GET', 'webhooks/faults')['faults']

    def clear_webhook_faults(self):
        return self._ctl('DELETE', 'webhooks/faults')

    def webhooks_flush(self):
        return self._ctl('POST', 'webhooks/flush')

    def webhooks_wait(self, timeout=10, include_retries=False):
        """Send what is queued now and wait until nothing is queued or in
        flight (retries still scheduled count only with include_retries)."""
        return self._ctl('POST', 'webhooks/wait', {'timeout': timeout,
                                                   'include_retries': include_retries})

    def merge(self, type, primary_id, merged_id):
        """Merge merged_id into primary_id as another client -> raw record."""
        return self._ctl('POST', 'objects/%s/%s/merge' % (type, primary_id),
                         {'objectIdToMerge': str(merged_id)})

    def record(self, type, id):
        """Raw stored state of one record (all properties, archived flag,
        associations, and what search currently sees of it)."""
        return self._ctl('GET', 'objects/%s/%s' % (type, id))

    # ------------------------------------------------------------ process

    def stop(self, timeout=10):
        """Stop a server started by start_sandbox (no-op otherwise)."""
        p = self.proc
        if p is None:
            return
        self.proc = None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        for path, keep_if_nonempty in ((self._port_file, False),
                                       (self.stderr_path, True)):
            if not path:
                continue
            try:
                if keep_if_nonempty and os.path.getsize(path) > 0:
                    continue      # keep a crashed server's traceback around
                os.unlink(path)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _arg(name):
    return '--' + name.replace('_', '-')


def start_sandbox(*args, timeout=60, python=None, stderr=None, **options):
    """Start a sandbox subprocess on a free loopback port and wait until it
    answers.  Positional args are passed through (e.g. '--verbose');
    keyword options become --options: contacts=1000, rate_limit='off',
    index_delay=2, demo=True, token='t', seed=3 ...  Returns a Sandbox whose
    .stop() ends the process."""
    fd, port_file = tempfile.mkstemp(prefix='hubfs-sandbox-', suffix='.port')
    os.close(fd)
    os.unlink(port_file)
    cmd = [python or sys.executable, RUN_PY, '--host', '127.0.0.1', '--port', '0',
           '--port-file', port_file]
    for k, v in options.items():
        if v is True:
            cmd.append(_arg(k))
        elif v is False or v is None:
            continue
        elif str(v).startswith('-'):
            cmd.append('%s=%s' % (_arg(k), v))      # e.g. --scopes=-e-commerce
        else:
            cmd += [_arg(k), str(v)]
    cmd += list(args)
    if stderr is None:
        err_fd, err_path = tempfile.mkstemp(prefix='hubfs-sandbox-', suffix='.stderr')
        errf = os.fdopen(err_fd, 'wb')
    else:
        errf, err_path = stderr, None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=errf, cwd=REPO_ROOT)
    if stderr is None:
        errf.close()
    deadline = time.monotonic() + timeout
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = ''
            if err_path:
                with open(err_path, 'rb') as f:
                    msg = f.read().decode('utf-8', 'replace')
            raise RuntimeError('sandbox exited with %s before listening: %s'
                               % (proc.returncode, msg))
        try:
            with open(port_file) as f:
                txt = f.read().strip()
            if txt:
                port = int(txt)
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    if port is None:
        proc.kill()
        proc.wait()
        raise RuntimeError('sandbox did not start within %ss' % timeout)
    url = 'http://127.0.0.1:%d' % port
    sb = Sandbox(url, token=options.get('token', 'sandbox-token'), proc=proc,
                 port_file=port_file, stderr_path=err_path)
    return sb


# ---------------------------------------------------------------- webhook receiver


class WebhookReceiver(object):
    """A loopback HTTP server that records what the sandbox's webhooks POST.

        with WebhookReceiver() as rx:
            sb.webhooks_subscribe(rx.url, 'secret', ['contact.creation'])
            ...
            rx.wait(1)                     # at least one request
            rx.requests[0]['json'], rx.requests[0]['headers']

    rx.respond(500, 500, 200) answers the next requests with those statuses
    (then 200); rx.hold = threading.Event() makes it wait for the event
    before answering; rx.delay = seconds sleeps before answering."""

    def __init__(self, host='127.0.0.1', path='/hubspot'):
        self.requests = []
        self.statuses = []
        self.hold = None
        self.delay = 0.0
        self.active = 0
        self.max_active = 0
        self.cond = threading.Condition()
        rx = self

        class H(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n)
                with rx.cond:
                    rx.active += 1
                    rx.max_active = max(rx.max_active, rx.active)
                    status = rx.statuses.pop(0) if rx.statuses else 200
                if rx.hold is not None:
                    rx.hold.wait(30)
                if rx.delay:
                    time.sleep(rx.delay)
                try:
                    js = json.loads(body.decode('utf-8'))
                except ValueError:
                    js = None
                with rx.cond:
                    rx.active -= 1
                    rx.requests.append({'method': 'POST', 'path': self.path,
                                        'headers': dict(self.headers.items()), 'body': body,
                                        'json': js, 'status': status, 'time': time.time()})
                    rx.cond.notify_all()
                out = b'{}'
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer((host, 0), H)
        self.server.daemon_threads = True
        self.url = 'http://%s:%d%s' % (host, self.server.server_address[1], path)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def respond(self, *statuses):
        with self.cond:
            self.statuses = list(statuses)

    def wait(self, n, timeout=10):
        """Wait until at least n requests arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('%d webhook request(s) after %ss, wanted %d'
                                         % (len(self.requests), timeout, n))
                self.cond.wait(left)
            return list(self.requests)

    def events(self):
        """Every event of every request received so far, in arrival order."""
        with self.cond:
            return [e for r in self.requests for e in (r['json'] or [])]

    def stop(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
