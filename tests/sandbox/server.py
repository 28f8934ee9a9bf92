"""HTTP plumbing of the sandbox: configuration, rate limiter, fault
injection, request log, and the request handler that ties them to the API
(api.py) and control (control.py) routes.
"""

import collections
import json
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import schema as S
from . import seed as seedmod
from .store import Store
from .util import ApiError, dumps, iso_ms, new_correlation_id, validation_error

JSON_CT = 'application/json;charset=utf-8'

# ---------------------------------------------------------------- config


def parse_rate(v):
    """'100/10s' | '100/10000ms' | 'off' | 100 | {max, interval_ms} ->
    (max, interval_ms) or None when off."""
    if v in (None, False, 'off', 'none', 0, '0'):
        return None
    if isinstance(v, dict):
        return int(v['max']), int(v.get('interval_ms', 10000))
    if isinstance(v, int) and not isinstance(v, bool):
        return v, 10000
    if isinstance(v, str):
        m = re.match(r'^\s*(\d+)\s*(?:/\s*(\d+(?:\.\d+)?)\s*(ms|s)?)?\s*$', v)
        if m:
            n = int(m.group(1))
            if n == 0:
                return None
            if m.group(2) is None:
                return n, 10000
            span = float(m.group(2))
            ms = span if m.group(3) == 'ms' else span * 1000
            return n, int(ms)
    raise ValueError('bad rate limit %r (use e.g. "100/10s" or "off")' % (v,))


class Config(object):
    FIELDS = {
        'index_delay': 10.0, 'rate_limit': (100, 10000), 'daily_limit': 250000,
        'search_limit': 5, 'latency_ms': 0, 'token_expiry': 1800,
        'retry_after': None, 'assoc_batch_limit': 100, 'assoc_read_limit': 1000,
        'assoc_page_limit': 500, 'assoc_read_empty': 'omit',
        'max_body_bytes': 10 * 1024 * 1024, 'search_max_groups': 5,
        'search_max_filters_per_group': 6, 'search_max_filters': 18,
        'verbose': False, 'client_id': 'sandbox-client-id',
        'client_secret': 'sandbox-client-secret',
        'refresh_token': 'sandbox-refresh-token', 'auth_code': 'sandbox-auth-code',
        'portal_id': 12345678, 'token': 'sandbox-token',
        # issue 13/14: object types, scopes, search budget
        'search_in_window': False, 'scopes': None,
        'object_library': {'0-162': True, '0-410': True, '0-420': True, '0-421': True},
        'object_library_message': 'The {objectTypeId} object is not enabled in this '
                                  'account. Activate it in the object library before '
                                  'using it through the API.',
        'activity_empty_null': True, 'line_item_dedup': True, 'labels_per_pair': 10,
        'custom_object_limit': 10, 'record_limit': 1000000,
        'custom_record_limit': 500000,
        # issue 14: results one search query hands out (HubSpot: 10,000); tests lower it
        'search_cap': 10000,
    }

    def __init__(self, **kw):
        for k, v in self.FIELDS.items():
            setattr(self, k, v)
        self.update(kw)

    def copy(self):
        c = Config()
        c.__dict__.update(self.__dict__)
        c.object_library = dict(self.object_library)
        return c

    def update(self, d):
        """Apply a dict of settings; raises ValueError for bad ones."""
        for k, v in d.items():
            if k not in self.FIELDS:
                raise ValueError('unknown setting %r' % k)
            if k == 'rate_limit':
                v = parse_rate(v)
            elif k in ('index_delay',):
                v = float(v)
                if v < 0:
                    raise ValueError('index_delay must be >= 0')
            elif k in ('daily_limit', 'search_limit', 'latency_ms', 'token_expiry',
                       'assoc_batch_limit', 'assoc_read_limit', 'assoc_page_limit',
                       'max_body_bytes', 'search_max_groups',
                       'search_max_filters_per_group', 'search_max_filters',
                       'portal_id', 'search_cap'):
                if isinstance(v, bool) or int(v) != v or int(v) < 0:
                    raise ValueError('%s must be a non-negative integer' % k)
                v = int(v)
                if k == 'search_cap' and v < 1:
                    raise ValueError('search_cap must be at least 1')
            elif k == 'retry_after':
                v = None if v in (None, '', False) else int(v)
            elif k == 'assoc_read_empty':
                if v not in ('omit', 'error'):
                    raise ValueError('assoc_read_empty must be "omit" or "error"')
            elif k in ('verbose', 'search_in_window', 'activity_empty_null',
                       'line_item_dedup'):
                if not isinstance(v, bool):
                    raise ValueError('%s must be true or false' % k)
            elif k in ('labels_per_pair', 'custom_object_limit', 'record_limit',
                       'custom_record_limit'):
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ValueError('%s must be a non-negative integer' % k)
            elif k == 'scopes':
                v = parse_scopes(v)
            elif k == 'object_library':
                v = parse_library(v, getattr(self, 'object_library', None))
            elif not isinstance(v, str):
                raise ValueError('%s must be a string' % k)
            setattr(self, k, v)

    def to_dict(self):
        d = {}
        for k in self.FIELDS:
            v = getattr(self, k)
            if k == 'rate_limit':
                v = 'off' if v is None else '%d/%gs' % (v[0], v[1] / 1000.0)
            elif k == 'scopes' and v is not None:
                v = sorted(v)
            elif k == 'object_library':
                v = dict(v)
            d[k] = v
        return d


def parse_scopes(v):
    """None/'all' -> None (every scope); a list or comma string of scopes ->
    that set; entries starting with '-' withhold from every scope."""
    from .catalog import ALL_SCOPES
    if v in (None, '', 'all'):
        return None
    if isinstance(v, str):
        v = [x.strip() for x in v.split(',') if x.strip()]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ValueError('scopes must be a list of scope names (or "all")')
    minus = [x[1:] for x in v if x.startswith('-')]
    plus = [x for x in v if not x.startswith('-')]
    if minus and plus:
        raise ValueError('scopes: give either the granted scopes or -withheld ones, '
                         'not both')
    if minus:
        return frozenset(ALL_SCOPES) - frozenset(minus)
    return frozenset(plus)


def parse_library(v, cur=None):
    """{'0-420': false, ...} or '0-420=off,courses=on' -> {typeId: bool}."""
    from .catalog import LIBRARY
    out = dict(cur) if cur else {tid: True for tid in LIBRARY}
    if isinstance(v, str):
        pairs = []
        for item in v.split(','):
            item = item.strip()
            if not item:
                continue
            if '=' not in item:
                raise ValueError('object library: use TYPE=on|off, got %r' % item)
            k, val = item.split('=', 1)
            if val.lower() not in ('on', 'off', 'true', 'false', '1', '0'):
                raise ValueError('object library: %s must be on or off' % k)
            pairs.append((k.strip(), val.lower() in ('on', 'true', '1')))
    elif isinstance(v, dict):
        pairs = list(v.items())
    else:
        raise ValueError('object_library must be an object {objectTypeId: bool}')
    names = {t: tid for tid, t in LIBRARY.items()}
    for k, val in pairs:
        tid = names.get(k, k)
        if tid not in LIBRARY:
            raise ValueError('%s is not an object-library type (one of %s)'
                             % (k, ', '.join(sorted(LIBRARY))))
        if not isinstance(val, bool):
            raise ValueError('object library: %s must be true or false' % k)
        out[tid] = val
    return out


# ---------------------------------------------------------------- limiter


class Limiter(object):
    """Rolling window per app, daily counter, search per-second limit."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.window = collections.deque()
        self.search = collections.deque()
        self.daily_used = 0

    def check(self, cfg, is_search, oauth):
        """Count one request.  Returns (policy or None, headers dict)."""
        now = time.monotonic()
        with self.lock:
            rate = cfg.rate_limit
            if rate and (not is_search or cfg.search_in_window):
                mx, ims = rate
                cut = now - ims / 1000.0
                w = self.window
                while w and w[0] <= cut:
                    w.popleft()
            if cfg.daily_limit and self.daily_used >= cfg.daily_limit:
                return 'DAILY', self._headers(cfg, is_search, oauth, 0)
            if is_search:
                if cfg.search_limit:
                    cut = now - 1.0
                    s = self.search
                    while s and s[0] <= cut:
                        s.popleft()
                    if len(s) >= cfg.search_limit:
                        return 'SECONDLY', {}
                # search_in_window: search also takes a slot of the rolling
                # window (and is refused when it is full); its responses still
                # carry no rate-limit headers
                if rate and cfg.search_in_window:
                    if len(self.window) >= rate[0]:
                        return 'TEN_SECONDLY_ROLLING', {}
                    self.window.append(now)
                if cfg.search_limit:
                    self.search.append(now)
                self.daily_used += 1
                return None, {}
            if rate:
                if len(self.window) >= rate[0]:
                    return 'TEN_SECONDLY_ROLLING', self._headers(cfg, False, oauth, 0)
                self.window.append(now)
            self.daily_used += 1
            return None, self._headers(cfg, False, oauth, None)

    def _headers(self, cfg, is_search, oauth, remaining):
        h = {}
        if is_search:
            return h
        if cfg.rate_limit:
            mx, ims = cfg.rate_limit
            rem = mx - len(self.window) if remaining is None else remaining
            h['X-HubSpot-RateLimit-Max'] = str(mx)
            h['X-HubSpot-RateLimit-Remaining'] = str(max(rem, 0))
            h['X-HubSpot-RateLimit-Interval-Milliseconds'] = str(ims)
        if cfg.daily_limit and not oauth:
            h['X-HubSpot-RateLimit-Daily'] = str(cfg.daily_limit)
            h['X-HubSpot-RateLimit-Daily-Remaining'] = str(
                max(cfg.daily_limit - self.daily_used, 0))
        return h


def rate_limit_body(policy, portal_id):
    msg = {'DAILY': 'You have reached your daily limit.',
           'SECONDLY': 'You have reached your secondly limit.',
           'TEN_SECONDLY_ROLLING': 'You have reached your ten_secondly_rolling limit.'
           }.get(policy, 'You have reached your %s limit.' % policy.lower())
    b = {'status': 'error', 'message': msg, 'errorType': 'RATE_LIMIT',
         'correlationId': new_correlation_id(), 'policyName': policy}
    if policy == 'TEN_SECONDLY_ROLLING':
        b['groupName'] = 'publicapi:private_app-api-calls-ten-secondly:1234567:%d' % portal_id
    elif policy == 'SECONDLY':
        b['groupName'] = 'publicapi:crm-search-secondly:%d' % portal_id
    else:
        b['requestId'] = new_correlation_id()
    return b


# ---------------------------------------------------------------- faults

FAULT_KINDS = ('429', '500', '502', '503', '504', 'status', 'latency', 'cut', 'drop',
               'drop_after', 'expired_token', 'exception')


class InjectedBug(Exception):
    """Raised inside request handling by the 'exception' fault, to prove
    that no traceback reaches a client."""


class Fault(object):
    def __init__(self, fid, d):
        kind = str(d.get('kind', ''))
        if kind == 'rate_limit':
            kind = '429'
        if kind not in FAULT_KINDS:
            raise ValueError('unknown fault kind %r (one of %s)'
                             % (kind, ', '.join(FAULT_KINDS)))
        self.id = fid
        self.kind = kind
        self.status = int(d['status']) if d.get('status') is not None else (
            int(kind) if kind.isdigit() else None)
        if kind == 'status' and self.status is None:
            raise ValueError('fault kind "status" needs a status')
        self.policy = d.get('policy', 'TEN_SECONDLY_ROLLING')
        if kind == '429' and self.policy not in ('TEN_SECONDLY_ROLLING', 'SECONDLY',
                                                 'DAILY'):
            raise ValueError('policy must be TEN_SECONDLY_ROLLING, SECONDLY or DAILY')
        self.method = d.get('method')
        self.method = self.method.upper() if self.method else None
        self.path = d.get('path')
        self.path_re = re.compile(self.path) if self.path else None
        count = d.get('count')
        seconds = d.get('seconds')
        if count is None and seconds is None:
            count = 1
        self.remaining = int(count) if count is not None else None
        self.seconds = float(seconds) if seconds is not None else None
        self.until = time.monotonic() + self.seconds if seconds is not None else None
        self.retry_after = d.get('retry_after')
        self.latency_ms = int(d.get('latency_ms', 0) or 0)
        if kind == 'latency' and not self.latency_ms:
            raise ValueError('fault kind "latency" needs latency_ms')
        self.cut_bytes = d.get('cut_bytes')
        self.body = d.get('body')
        self.content_type = d.get('content_type')
        self.fired = 0

    def live(self, now):
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.until is not None and now >= self.until:
            return False
        return True

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        if self.path_re and not self.path_re.search(path):
            return False
        return True

    def to_dict(self):
        return {'id': self.id, 'kind': self.kind, 'status': self.status,
                'policy': self.policy if self.kind == '429' else None,
                'method': self.method, 'path': self.path,
                'remaining': self.remaining, 'seconds': self.seconds,
                'seconds_left': (max(0.0, self.until - time.monotonic())
                                 if self.until is not None else None),
                'retry_after': self.retry_after, 'latency_ms': self.latency_ms,
                'cut_bytes': self.cut_bytes, 'fired': self.fired,
                'live': self.live(time.monotonic())}


class Faults(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.next_id = 1

    def add(self, d):
        with self.lock:
            f = Fault(self.next_id, d)
            self.next_id += 1
            self.items.append(f)
            return f

    def clear(self):
        with self.lock:
            self.items = []

    def remove(self, fid):
        with self.lock:
            n = len(self.items)
            self.items = [f for f in self.items if f.id != fid]
            return len(self.items) != n

    def list(self):
        with self.lock:
            return [f.to_dict() for f in self.items]

    def take(self, method, path):
        """Consume the faults matching a request.
        Returns (added latency ms, fault or None)."""
        now = time.monotonic()
        latency = 0
        chosen = None
        with self.lock:
            for f in self.items:
                if not f.live(now) or not f.matches(method, path):
                    continue
                if f.kind == 'latency':
                    latency += f.latency_ms
                elif chosen is None:
                    chosen = f
                else:
                    continue
                f.fired += 1
                if f.remaining is not None:
                    f.remaining -= 1
            # forget spent faults
            self.items = [f for f in self.items if f.live(now)]
        return latency, chosen


# ---------------------------------------------------------------- log


class RequestLog(object):
    def __init__(self, maxlen=200000):
        self.lock = threading.Lock()
        self.entries = collections.deque(maxlen=maxlen)
        self.seq = 0

    def add(self, e):
        with self.lock:
            self.seq += 1
            e['seq'] = self.seq
            self.entries.append(e)

    def clear(self):
        with self.lock:
            self.entries.clear()

    def since(self, seq=None):
        with self.lock:
            if seq is None:
                return list(self.entries)
            return [e for e in self.entries if e['seq'] > seq]

    def last_seq(self):
        with self.lock:
            return self.seq


# ---------------------------------------------------------------- app


class Tokens(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.issued = {}   # access token -> expiry (epoch seconds)
        self.granted = {}  # access token -> frozenset of scopes (absent: config's)

    def issue(self, expires_in, scopes=None):
        tok = 'CJ' + secrets.token_urlsafe(400)   # ~540 chars, like real ones
        with self.lock:
            self.issued[tok] = time.time() + expires_in
            if scopes is not None:
                self.granted[tok] = scopes
        return tok

    def scopes(self, tok):
        with self.lock:
            return self.granted.get(tok)

    def expire_all(self):
        with self.lock:
            now = time.time()
            n = 0
            for k, v in self.issued.items():
                if v > now:
                    self.issued[k] = now - 0.001
                    n += 1
            return n

    def clear(self):
        with self.lock:
            self.issued.clear()
            self.granted.clear()

    def lookup(self, tok):
        with self.lock:
            return self.issued.get(tok)


class App(object):
    """Everything a request handler needs; one per server."""

    def __init__(self, cfg, seed=1, sizes=None, demo=False, objects=None, custom=True):
        from .webhooks import Webhooks
        self.base_cfg = cfg.copy()
        self.cfg = cfg
        self.base_seed = seed
        self.base_sizes = dict(sizes or {})
        self.base_objects = dict(objects or {})
        self.base_demo = demo
        self.base_custom = custom
        self.store = Store(cfg.portal_id)
        self.limiter = Limiter()
        self.faults = Faults()
        self.log = RequestLog()
        self.tokens = Tokens()
        self.webhooks = Webhooks(self)
        self.started = time.time()
        self.seed_info = {}
        self.reset()

    def reset(self, seed=None, sizes=None, demo=None, config=None, objects=None,
              custom=None):
        """Back to a freshly seeded account with the startup configuration
        (or the given seed/sizes/demo/config).  objects: sizes of the other
        types ({'notes': 500, 'p12345678_cars': 20}); custom: seed the custom
        object schemas."""
        from . import catalog
        seed = self.base_seed if seed is None else seed
        demo = self.base_demo if demo is None else demo
        custom = self.base_custom if custom is None else custom
        # a demo reset of a non-demo server starts from the demo sizes
        eff = {} if demo and not self.base_demo else dict(self.base_sizes)
        if demo:
            for k, v in seedmod.DEMO_SIZES.items():
                eff.setdefault(k, v)
        if sizes:
            eff.update(sizes)
        other = {} if demo and not self.base_demo else dict(self.base_objects)
        if objects:
            other.update(objects)
        cfg = self.base_cfg.copy()
        if config:
            cfg.update(config)
        self.webhooks.reset()
        t0 = time.time()
        with self.store.lock:
            self.cfg = cfg
            self.store.sink = None
            self.store.portal_id = cfg.portal_id
            self.store.index_delay = cfg.index_delay
            self.store.empty_null = cfg.activity_empty_null
            self.store.line_item_dedup = cfg.line_item_dedup
            catalog.reset_portal(cfg.portal_id, custom=custom)
            self.store.clear()
            other = seedmod.resolve_sizes(other)
            counts = seedmod.seed(self.store, seed=seed, demo=demo,
                                  **{k: int(eff.get(k, 0)) for k in S.TYPES})
            more = seedmod.seed_objects(self.store, seed=seed, demo=demo, sizes=other)
            self.store.sink = self.webhooks.emit
        self.limiter.reset()
        self.faults.clear()
        self.log.clear()
        self.tokens.clear()
        self.seed_info = {'seed': seed, 'demo': demo, 'sizes': counts, 'objects': more,
                          'custom_schemas': custom,
                          'seconds': round(time.time() - t0, 3)}
        return self.seed_info

    def configure(self, d):
        with self.store.lock:
            d = dict(d)
            daily_used = d.pop('daily_used', None)
            expire = d.pop('expire_tokens', None)
            new = self.cfg.copy()
            new.update(d)
            self.cfg = new
            self.store.portal_id = new.portal_id
            self.store.index_delay = new.index_delay
            self.store.empty_null = new.activity_empty_null
            self.store.line_item_dedup = new.line_item_dedup
        if daily_used is not None:
            with self.limiter.lock:
                self.limiter.daily_used = int(daily_used)
        if 'rate_limit' in d:
            with self.limiter.lock:
                self.limiter.window.clear()
        if expire:
            self.tokens.expire_all()
        return self.config_dict()

    def config_dict(self):
        d = self.cfg.to_dict()
        d['daily_used'] = self.limiter.daily_used
        return d


# ---------------------------------------------------------------- request


class Request(object):
    __slots__ = ('method', 'path', 'raw_path', 'query_string', 'query', 'headers',
                 'body', 'host', '_json', 'segs', 'scopes')

    def __init__(self, method, target, headers, body):
        self.method = method
        u = urllib.parse.urlsplit(target)
        self.raw_path = u.path
        self.path = u.path
        self.query_string = u.query
        self.query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.host = headers.get('Host') or 'localhost'
        self._json = None
        self.scopes = None
        self.segs = [urllib.parse.unquote(s) for s in u.path.strip('/').split('/')] \
            if u.path.strip('/') else []

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def qlist(self, name):
        """Comma-separated, possibly repeated list parameter, or None when absent."""
        v = self.query.get(name)
        if v is None:
            return None
        out = []
        for item in v:
            for x in item.split(','):
                x = x.strip()
                if x and x not in out:
                    out.append(x)
        return out

    def json(self):
        if self._json is None:
            if not self.body:
                raise validation_error('Invalid input JSON on line 1, column 1: No '
                                       'content to map due to end-of-input')
            try:
                text = self.body.decode('utf-8')
            except UnicodeDecodeError:
                raise validation_error('Invalid input JSON on line 1, column 1: Invalid '
                                       'UTF-8 in request body')
            try:
                self._json = (json.loads(text),)
            except json.JSONDecodeError as e:
                raise validation_error('Invalid input JSON on line %d, column %d: %s'
                                       % (e.lineno, e.colno, e.msg))
            except RecursionError:
                raise validation_error('Invalid input JSON on line 1, column 1: nesting '
                                       'too deep')
        return self._json[0]

    def base_url(self):
        return 'http://' + self.host


class Response(object):
    __slots__ = ('status', 'body', 'headers', 'action', 'cut_bytes', 'ctype')

    def __init__(self, status, body=None, headers=None, ctype=JSON_CT):
        self.status = status
        self.body = body           # JSON-able object, bytes, or None
        self.headers = dict(headers or {})
        self.action = None         # None | 'drop' | 'cut'
        self.cut_bytes = None
        self.ctype = ctype

    def encoded(self):
        if self.body is None:
            return b''
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode('utf-8')
        return dumps(self.body).encode('utf-8')


def error_response(exc):
    cid = new_correlation_id()
    h = {'x-hubspot-correlation-id': cid}
    h.update(exc.headers)
    return Response(exc.status, exc.body(cid), h)


# ---------------------------------------------------------------- handler


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'hubfs-sandbox/1.0'
    sys_version = ''
    timeout = 300
    # headers and body go out in separate writes: without TCP_NODELAY the
    # body waits for a delayed ACK (~40 ms per request)
    disable_nagle_algorithm = True

    # quiet unless --verbose
    def log_message(self, fmt, *args):
        if self.server.app.cfg.verbose:
            sys.stderr.write('sandbox: %s - %s\n' % (self.address_string(), fmt % args))

    def do_GET(self):
        self._dispatch()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, oversized headers,
        unsupported method) as HubSpot-shaped JSON instead of HTML."""
        self.close_connection = True
        # an unparsable request line leaves the default HTTP/0.9, which
        # would suppress the status line and headers
        self.request_version = 'HTTP/1.1'
        cid = new_correlation_id()
        body = dumps({'status': 'error', 'message': message or 'Bad request',
                      'correlationId': cid,
                      'category': 'VALIDATION_ERROR' if code < 500 else
                      'INTERNAL_ERROR'}).encode('utf-8')
        try:
            self.send_response(code, message)
            self.send_header('Content-Type', JSON_CT)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('Connection', 'close')
            self.end_headers()
            if self.command != 'HEAD' and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self, limit):
        """Request body bytes, or raises ApiError(413) after draining."""
        te = (self.headers.get('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            parts = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError('eof in chunked body')
                size = int(line.split(b';', 1)[0].strip() or b'0', 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b'\r\n', b'\n', b''):
                            break
                    break
                total += size
                data = self.rfile.read(size)
                self.rfile.readline(3)
                if total <= limit:
                    parts.append(data)
            if total > limit:
                self.close_connection = True
                raise _too_large(total, limit)
            return b''.join(parts)
        cl = self.headers.get('Content-Length')
        if not cl:
            return b''
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise validation_error('Invalid Content-Length header')
        if n > limit:
            self.close_connection = True
            # drain a bounded amount so the client can read our answer
            left = min(n, 64 * 1024 * 1024)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            raise _too_large(n, limit)
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError('short body')
        return data

    def _dispatch(self):
        app = self.server.app
        t0 = time.monotonic()
        method = self.command
        is_control = self.path.startswith('/__sandbox')
        try:
            body = self._read_body(app.cfg.max_body_bytes)
        except ConnectionError:
            self.close_connection = True
            return
        except ApiError as e:
            req = Request(method, self.path, self.headers, b'')
            resp = error_response(e)
            if not is_control:
                self._finish_api(app, req, resp, t0, 0, None, None, None)
            else:
                self._send(resp)
            return
        req = Request(method, self.path, self.headers, body)
        # writes of this request are "API" (a client of the API) or "CRM"
        # (another client, through the control API) in webhook events
        app.store.ctx.source = 'CRM' if is_control else 'API'
        if is_control:
            from . import control
            try:
                resp = control.handle(app, req)
            except ApiError as e:
                resp = error_response(e)
            except Exception as e:  # noqa: BLE001 - a bug must not kill the server
                traceback.print_exc()
                resp = Response(500, {'status': 'error', 'message': 'sandbox control '
                                      'error: %s' % e, 'category': 'INTERNAL_ERROR'})
            self._send(resp)
            return
        self._api(app, req, t0)

    def _api(self, app, req, t0):
        from . import api
        fault = None
        auth = None
        endpoint = None
        try:
            route = api.match(req)
            endpoint = route.endpoint
            extra_latency, fault = app.faults.take(req.method, req.path)
            latency = app.cfg.latency_ms + extra_latency
            if latency:
                time.sleep(latency / 1000.0)
            if fault is not None and fault.kind == 'exception':
                raise InjectedBug('injected failure')
            if fault is not None and fault.kind not in ('cut', 'drop_after'):
                resp = self._fault_response(app, fault)
            else:
                resp, auth = self._serve(app, req, route)
                if fault is not None:
                    resp.action = 'cut' if fault.kind == 'cut' else 'drop'
                    resp.cut_bytes = fault.cut_bytes
            if fault is None and extra_latency:
                fault = _LATENCY
        except ApiError as e:
            resp = error_response(e)
        except Exception as e:  # noqa: BLE001
            if not isinstance(e, InjectedBug):
                traceback.print_exc()
            cid = new_correlation_id()
            resp = Response(500, {'status': 'error', 'message': 'internal error (%s)'
                                  % type(e).__name__, 'correlationId': cid,
                                  'category': 'INTERNAL_ERROR'},
                            {'x-hubspot-correlation-id': cid})
        self._finish_api(app, req, resp, t0, len(req.body), fault, auth, endpoint)

    def _serve(self, app, req, route):
        from . import api
        cfg = app.cfg
        auth = None
        if route.auth:
            auth = api.authenticate(app, req)   # raises 401
            policy, rl_headers = app.limiter.check(cfg, route.search, auth == 'oauth')
            if policy:
                h = dict(rl_headers)
                if cfg.retry_after is not None:
                    h['Retry-After'] = str(cfg.retry_after)
                return Response(429, rate_limit_body(policy, cfg.portal_id), h), auth
        else:
            rl_headers = {}
        try:
            if route.auth:
                api.check_access(app, req, route)
            resp = route.call(app, req)
        except ApiError as e:
            resp = error_response(e)
        for k, v in rl_headers.items():
            resp.headers.setdefault(k, v)
        return resp, auth

    def _fault_response(self, app, fault):
        h = {}
        if fault.retry_after is not None:
            h['Retry-After'] = str(fault.retry_after)
        k = fault.kind
        if k == 'drop':
            r = Response(0)
            r.action = 'drop'
            return r
        if k == '429':
            if fault.policy != 'SECONDLY' and app.cfg.rate_limit:
                mx, ims = app.cfg.rate_limit
                h.update({'X-HubSpot-RateLimit-Max': str(mx),
                          'X-HubSpot-RateLimit-Remaining': '0',
                          'X-HubSpot-RateLimit-Interval-Milliseconds': str(ims)})
            return Response(429, rate_limit_body(fault.policy, app.cfg.portal_id), h)
        if k == 'expired_token':
            exp = time.time() - 1
            e = ApiError(401, 'The OAuth token used to make this call expired 1 '
                         'second(s) ago.', 'EXPIRED_AUTHENTICATION',
                         context={'expire time': [iso_ms(exp * 1000)]})
            r = error_response(e)
            r.headers.update(h)
            return r
        status = fault.status
        if fault.body is not None:
            return Response(status, fault.body, h,
                            ctype=fault.content_type or 'text/html; charset=utf-8')
        cid = new_correlation_id()
        h['x-hubspot-correlation-id'] = cid
        msg = {500: 'internal error', 502: 'Bad Gateway', 503: 'Service Unavailable',
               504: 'Gateway Timeout'}.get(status, 'injected error %d' % status)
        return Response(status, {'status': 'error', 'message': msg, 'correlationId': cid,
                                 'category': 'INTERNAL_ERROR' if status >= 500
                                 else 'INJECTED'}, h)

    def _finish_api(self, app, req, resp, t0, body_len, fault, auth, endpoint):
        # Log before answering, so a client that reads the log right after
        # its response always finds the entry.
        data = resp.encoded()
        if resp.action == 'drop':
            sent = 0
        elif resp.action == 'cut':
            sent = self._cut_len(resp, data)
        else:
            sent = len(data)
        if resp.status >= 200:
            resp.headers.setdefault('x-hubspot-correlation-id', new_correlation_id())
        app.log.add({
            'method': req.method, 'path': req.path, 'query': req.query_string,
            'endpoint': endpoint or '%s %s' % (req.method, req.path),
            'status': resp.status if resp.action != 'drop' else 0,
            'time': time.time(),
            'duration': round((time.monotonic() - t0) * 1000.0, 3),
            'request_bytes': body_len, 'response_bytes': sent,
            'injected': fault is not None,
            'fault': fault.kind if fault is not None else None,
            'auth': auth})
        self._send(resp, data)

    @staticmethod
    def _cut_len(resp, data):
        n = resp.cut_bytes
        if n is None:
            n = len(data) // 2
        return max(0, min(int(n), max(len(data) - 1, 0)))

    def _send(self, resp, data=None):
        """Write resp; returns the number of body bytes sent."""
        if resp.action == 'drop':
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return 0
        if data is None:
            data = resp.encoded()
        try:
            self.send_response(resp.status)
            if resp.status != 204 and resp.status >= 200:
                if data or resp.body is not None:
                    self.send_header('Content-Type', resp.ctype)
                self.send_header('Content-Length', str(len(data)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            if resp.action == 'cut':
                self.send_header('Connection', 'close')
            self.end_headers()
            if resp.action == 'cut':
                n = self._cut_len(resp, data)
                self.wfile.write(data[:n])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return n
            if self.command != 'HEAD' and resp.status != 204:
                self.wfile.write(data)
            return len(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return 0


class _LatencyMarker(object):
    kind = 'latency'


_LATENCY = _LatencyMarker()


def _too_large(n, limit):
    return ApiError(413, 'Request body of %d bytes exceeds the maximum of %d bytes.'
                    % (n, limit), 'VALIDATION_ERROR')


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr, app):
        ThreadingHTTPServer.__init__(self, addr, Handler)
        self.app = app

    def handle_error(self, request, client_address):
        # connection-level errors (client went away) are not news
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
            return
        if self.app.cfg.verbose:
            ThreadingHTTPServer.handle_error(self, request, client_address)
