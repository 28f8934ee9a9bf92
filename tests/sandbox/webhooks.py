"""Webhook deliveries: the sandbox plays HubSpot's webhooks service.

The store reports every change (API or control API) to `Webhooks.emit`,
which only files it (one lock, no I/O).  A dispatcher thread cuts the queue
of each target into batches (JSON arrays of at most `max_batch` events) and
hands them to sender threads, which POST them signed like HubSpot:

- v1: `X-HubSpot-Signature` = hex SHA-256 of client secret + body,
  `X-HubSpot-Signature-Version: v1`;
- v3: `X-HubSpot-Signature-v3` = base64 HMAC-SHA-256 (key: client secret)
  of method + URI + body + timestamp, `X-HubSpot-Request-Timestamp` = epoch
  ms; the URI is the target URL with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A
  %2C %3B decoded.

A delivery that fails (connection error, no answer within `timeout_s`, any
status other than 2xx) is retried up to `max_retries` times after the
delays of `retry_delays_ms` (default: doubling from 84 s, about 24 h in all),
each retry with `attemptNumber` + 1 and fresh signatures.
"""

import base64
import collections
import hashlib
import heapq
import hmac
import http.client
import sys
import threading
import time
import traceback
import urllib.parse

from . import schema as S
from .util import dumps

EVENT_KINDS = ('creation', 'deletion', 'propertyChange', 'associationChange', 'merge',
               'restore')
FAULT_KINDS = ('bad_signature', 'stale_timestamp', 'tampered_body', 'duplicate',
               'out_of_order')
# properties HubSpot does not deliver propertyChange events for
UNSUBSCRIBABLE = frozenset(('hs_lastmodifieddate', 'lastmodifieddate',
                            'num_unique_conversion_events'))
_V3_DECODE = (('%3A', ':'), ('%2F', '/'), ('%3F', '?'), ('%40', '@'), ('%21', '!'),
              ('%24', '$'), ('%27', "'"), ('%28', '('), ('%29', ')'), ('%2A', '*'),
              ('%2C', ','), ('%3B', ';'))


def default_retry_delays(n=10, first_ms=84000):
    return [first_ms * (2 ** i) for i in range(n)]


def v3_uri(url):
    """The URI of the v3 signature: the URL with HubSpot's list of
    percent-encodings decoded (either case)."""
    out = url
    for enc, ch in _V3_DECODE:
        out = out.replace(enc, ch).replace(enc.lower(), ch)
    return out


def signature_v1(secret, body):
    return hashlib.sha256(secret.encode('utf-8') + body).hexdigest()


def signature_v3(secret, method, uri, body, timestamp):
    msg = method.encode('utf-8') + uri.encode('utf-8') + body + str(timestamp).encode('utf-8')
    mac = hmac.new(secret.encode('utf-8'), msg, hashlib.sha256).digest()
    return base64.b64encode(mac).decode('ascii')


class Subscription(object):
    def __init__(self, sid, d):
        if isinstance(d, str):
            d = {'eventType': d}
        if not isinstance(d, dict):
            raise ValueError('a subscription is an event type string or an object')
        et = d.get('eventType') or d.get('subscriptionType')
        if not isinstance(et, str) or not et:
            raise ValueError('subscription needs an eventType')
        if et != '*':
            pre, _, kind = et.partition('.')
            if kind not in EVENT_KINDS and kind != '*':
                raise ValueError('unknown event type %r (kinds: %s)'
                                 % (et, ', '.join(EVENT_KINDS)))
            prefixes = {S.INFO[t].webhook for t in S.ALL} | {'*'}
            if pre not in prefixes:
                raise ValueError('unknown event type prefix %r (one of %s)'
                                 % (pre, ', '.join(sorted(prefixes))))
        self.id = sid
        self.event_type = et
        self.property = d.get('propertyName')
        otid = d.get('objectTypeId')
        self.object_type = None
        if otid is not None:
            t = S.canon_type(str(otid))
            if t is None:
                raise ValueError('unknown objectTypeId %r' % (otid,))
            self.object_type = S.TYPE_ID[t]
        self.active = bool(d.get('active', True))

    def matches(self, sub_type, ev):
        if not self.active:
            return False
        if self.event_type != '*':
            pre, _, kind = self.event_type.partition('.')
            spre, _, skind = sub_type.partition('.')
            if pre != '*' and pre != spre:
                return False
            if kind != '*' and kind != skind:
                return False
        if self.object_type and S.TYPE_ID.get(ev['type']) != self.object_type:
            return False
        if self.property and ev['kind'] == 'propertyChange' and ev['name'] != self.property:
            return False
        if self.property and ev['kind'] != 'propertyChange' and self.event_type != '*':
            return False
        return True

    def to_dict(self):
        d = {'id': self.id, 'eventType': self.event_type, 'active': self.active}
        if self.property:
            d['propertyName'] = self.property
        if self.object_type:
            d['objectTypeId'] = self.object_type
        return d


class Batch(object):
    __slots__ = ('id', 'events', 'attempt', 'faults')

    def __init__(self, bid, events):
        self.id = bid
        self.events = events
        self.attempt = 0
        self.faults = []


class Target(object):
    """One webhook app: target URL, client secret, subscriptions, settings."""

    SETTINGS = ('max_concurrent', 'max_per_second', 'max_batch', 'batch_window_ms',
                'timeout_s', 'retry_delays_ms', 'max_retries', 'signatures', 'active',
                'app_id')

    def __init__(self, tid, d, next_sub):
        self.id = tid
        self.queue = collections.deque()
        self.ready = []              # heap of (due monotonic, seq, Batch)
        self.inflight = 0
        self.sent_times = collections.deque()
        self.faults = []
        self.stats = {'events': 0, 'batches': 0, 'deliveries': 0, 'delivered': 0,
                      'failed_attempts': 0, 'given_up': 0}
        self.subs = []
        self.url = None
        self.secret = None
        self.app_id = 1234567
        self.max_concurrent = 10
        self.max_per_second = None
        self.max_batch = 99
        self.batch_window_ms = 50
        self.timeout_s = 5.0
        self.retry_delays_ms = default_retry_delays()
        self.max_retries = 10
        self.signatures = ('v1', 'v3')
        self.active = True
        self.update(d, next_sub, create=True)

    def update(self, d, next_sub, create=False):
        if not isinstance(d, dict):
            raise ValueError('webhook settings must be an object')
        known = set(self.SETTINGS) | {'target_url', 'targetUrl', 'client_secret',
                                      'clientSecret', 'subscriptions', 'events'}
        bad = set(d) - known
        if bad:
            raise ValueError('unknown webhook setting(s): %s' % ', '.join(sorted(bad)))
        url = d.get('target_url', d.get('targetUrl'))
        if url is not None or create:
            u = urllib.parse.urlsplit(url or '')
            if u.scheme not in ('http', 'https') or not u.hostname:
                raise ValueError('target_url must be an http(s) URL')
            self.url = url
        secret = d.get('client_secret', d.get('clientSecret'))
        if secret is not None or create:
            if not isinstance(secret, str) or not secret:
                raise ValueError('client_secret is required')
            self.secret = secret
        subs = d.get('subscriptions', d.get('events'))
        if subs is not None or create:
            if isinstance(subs, str):
                subs = [x.strip() for x in subs.split(',') if x.strip()]
            if not isinstance(subs, list) or not subs:
                raise ValueError('subscriptions: a non-empty list of event types')
            self.subs = [Subscription(next_sub(), x) for x in subs]
        for k in ('max_concurrent', 'max_batch', 'max_retries', 'app_id'):
            if k in d:
                v = d[k]
                if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == 'max_retries'
                                                                         else 1):
                    raise ValueError('%s must be a positive integer' % k)
                if k == 'max_batch' and v > 99:
                    raise ValueError('max_batch is at most 99 (HubSpot sends fewer than '
                                     '100 events per request)')
                setattr(self, k, v)
        if 'max_per_second' in d:
            v = d['max_per_second']
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or v <= 0):
                raise ValueError('max_per_second must be a positive number or null')
            self.max_per_second = v
        for k in ('batch_window_ms', 'timeout_s'):
            if k in d:
                v = d[k]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ValueError('%s must be a non-negative number' % k)
                setattr(self, k, float(v))
        if 'retry_delays_ms' in d:
            v = d['retry_delays_ms']
            if not isinstance(v, list) or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0
                    for x in v):
                raise ValueError('retry_delays_ms must be a list of non-negative numbers')
            self.retry_delays_ms = [float(x) for x in v]
            if 'max_retries' not in d:
                self.max_retries = len(v)
        if 'signatures' in d:
            v = d['signatures']
            if isinstance(v, str):
                v = [x.strip() for x in v.split(',') if x.strip()]
            if not isinstance(v, list) or not v or not set(v) <= {'v1', 'v3'}:
                raise ValueError('signatures: a list of "v1" and/or "v3"')
            self.signatures = tuple(v)
        if 'active' in d:
            self.active = bool(d['active'])

    def delay_ms(self, retry_index):
        d = self.retry_delays_ms
        if not d:
            return 0.0
        return d[min(retry_index, len(d) - 1)]

    def to_dict(self):
        return {'id': self.id, 'target_url': self.url, 'client_secret_set': bool(self.secret),
                'app_id': self.app_id, 'subscriptions': [s.to_dict() for s in self.subs],
                'max_concurrent': self.max_concurrent, 'max_per_second': self.max_per_second,
                'max_batch': self.max_batch, 'batch_window_ms': self.batch_window_ms,
                'timeout_s': self.timeout_s, 'retry_delays_ms': list(self.retry_delays_ms),
                'max_retries': self.max_retries, 'signatures': list(self.signatures),
                'active': self.active, 'queued': len(self.queue),
                'scheduled': len(self.ready), 'inflight': self.inflight,
                'stats': dict(self.stats)}


class Webhooks(object):
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.gen = 0
        self.thread = None
        self.reset()

    # ------------------------------------------------------------ setup

    def reset(self):
        with self.lock:
            self.gen += 1
            self.targets = {}
            self.next_target = 1
            self.next_sub_id = 1
            self.event_id = 0
            self.batch_id = 0
            self.seq = 0
            self.log = collections.deque(maxlen=20000)
            self.cond.notify_all()

    def _next_sub(self):
        sid = self.next_sub_id
        self.next_sub_id += 1
        return sid

    def _ensure_thread(self):
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._dispatch, name='webhook-dispatch',
                                           daemon=True)
            self.thread.start()

    def add_target(self, d):
        with self.lock:
            tg = Target(self.next_target, d, self._next_sub)
            self.next_target += 1
            self.targets[tg.id] = tg
            self._ensure_thread()
            return tg.to_dict()

    def update_target(self, tid, d):
        with self.lock:
            tg = self.targets.get(tid)
            if tg is None:
                return None
            tg.update(d, self._next_sub)
            self.cond.notify_all()
            return tg.to_dict()

    def remove_target(self, tid=None):
        with self.lock:
            if tid is None:
                n = len(self.targets)
                self.targets = {}
                return n
            return 1 if self.targets.pop(tid, None) is not None else 0

    def list(self):
        with self.lock:
            return [tg.to_dict() for tg in self.targets.values()]

    def add_fault(self, d):
        kind = d.get('kind')
        if kind not in FAULT_KINDS:
            raise ValueError('unknown webhook fault %r (one of %s)'
                             % (kind, ', '.join(FAULT_KINDS)))
        count = d.get('count', 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError('count must be a positive integer')
        f = {'kind': kind, 'remaining': count,
             'stale_ms': float(d.get('stale_ms', 6 * 60 * 1000)),
             'hold_ms': float(d.get('hold_ms', 1000))}
        with self.lock:
            tid = d.get('target')
            tgs = [self.targets.get(tid)] if tid is not None else list(self.targets.values())
            if not tgs or tgs[0] is None:
                raise ValueError('no such webhook target')
            for tg in tgs:
                tg.faults.append(dict(f))
            return f

    def clear_faults(self):
        with self.lock:
            for tg in self.targets.values():
                tg.faults = []

    def faults(self):
        with self.lock:
            return [dict(f, target=tg.id) for tg in self.targets.values() for f in tg.faults]

    # ------------------------------------------------------------ events

    def emit(self, ev):
        """Called by the store (under its lock) for every change; files the
        event for each target whose subscriptions want it.  No I/O."""
        if not self.targets:
            return
        if ev['kind'] == 'propertyChange' and ev['name'] in UNSUBSCRIBABLE:
            return
        t = ev['type']
        info = S.INFO.get(t)
        if info is None:
            return
        sub_type = '%s.%s' % (info.webhook, ev['kind'])
        with self.lock:
            for tg in self.targets.values():
                if not tg.active:
                    continue
                for sub in tg.subs:
                    if sub.matches(sub_type, ev):
                        self.event_id += 1
                        tg.queue.append((time.monotonic(),
                                         self._payload(tg, sub, sub_type, ev)))
                        tg.stats['events'] += 1
            self.cond.notify_all()

    def _payload(self, tg, sub, sub_type, ev):
        p = {'eventId': self.event_id, 'subscriptionId': sub.id,
             'portalId': self.app.cfg.portal_id, 'appId': tg.app_id,
             'occurredAt': ev['at'], 'subscriptionType': sub_type, 'attemptNumber': 0,
             'objectId': ev['id'], 'changeSource': ev['source'],
             'sourceId': 'userId:9100001' if ev['source'] == 'CRM' else str(tg.app_id)}
        t = ev['type']
        if S.INFO[t].webhook == 'object':
            p['objectTypeId'] = S.TYPE_ID[t]
        k = ev['kind']
        if k == 'creation':
            p['changeFlag'] = 'NEW'
        elif k == 'deletion':
            p['changeFlag'] = 'DELETED'
        elif k == 'restore':
            p['changeFlag'] = 'RESTORED'
        elif k == 'propertyChange':
            p['propertyName'] = ev['name']
            p['propertyValue'] = ev['value']
        elif k == 'merge':
            p['primaryObjectId'] = ev['id']
            p['mergedObjectIds'] = list(ev['merged'])
            p['newObjectId'] = ev['id']
            p['numberOfPropertiesMoved'] = ev['moved']
        elif k == 'associationChange':
            d = S.ASSOC_TYPES.get(ev['type_id'])
            tt = ev['to_type']
            p['associationType'] = '%s_TO_%s' % (S.UPPER[t], S.UPPER[tt])
            p['fromObjectId'] = ev['id']
            p['toObjectId'] = ev['to_id']
            p['associationRemoved'] = ev['removed']
            p['isPrimaryAssociation'] = bool(d and d[3] == 'Primary')
            p['associationTypeId'] = ev['type_id']
            p['associationCategory'] = d[2] if d else 'HUBSPOT_DEFINED'
            if S.INFO[tt].webhook == 'object':
                p['toObjectTypeId'] = S.TYPE_ID[tt]
        return p

    # ------------------------------------------------------------ dispatch

    def _take_fault(self, tg, kinds):
        for f in tg.faults:
            if f['kind'] in kinds and f['remaining'] > 0:
                f['remaining'] -= 1
                if f['remaining'] == 0:
                    tg.faults = [x for x in tg.faults if x['remaining'] > 0]
                return f
        return None

    def _cut(self, tg, now, force=False):
        """Move queued events into batches (lock held)."""
        while tg.queue:
            oldest = tg.queue[0][0]
            if not force and len(tg.queue) < tg.max_batch and \
                    now - oldest < tg.batch_window_ms / 1000.0:
                return oldest + tg.batch_window_ms / 1000.0
            events = [tg.queue.popleft()[1] for _ in range(min(tg.max_batch, len(tg.queue)))]
            self.batch_id += 1
            b = Batch(self.batch_id, events)
            due = now
            f = self._take_fault(tg, ('out_of_order',))
            if f is not None:
                b.events.reverse()
                b.faults.append('out_of_order')
                due = now + f['hold_ms'] / 1000.0
            tg.stats['batches'] += 1
            self._schedule(tg, b, due)
        return None

    def _schedule(self, tg, b, due):
        self.seq += 1
        heapq.heappush(tg.ready, (due, self.seq, b))

    def _dispatch(self):
        while True:
            try:
                self._dispatch_once()
            except Exception:  # noqa: BLE001 - a sandbox bug: say so, keep delivering
                traceback.print_exc(file=sys.stderr)
                time.sleep(0.1)

    def _dispatch_once(self):
        with self.lock:
            now = time.monotonic()
            wake = now + 1.0
            gen = self.gen
            for tg in list(self.targets.values()):
                t = self._cut(tg, now)
                if t is not None:
                    wake = min(wake, t)
                while tg.ready and tg.inflight < tg.max_concurrent:
                    due = tg.ready[0][0]
                    if due > now:
                        wake = min(wake, due)
                        break
                    if tg.max_per_second:
                        while tg.sent_times and tg.sent_times[0] <= now - 1.0:
                            tg.sent_times.popleft()
                        if len(tg.sent_times) >= tg.max_per_second:
                            wake = min(wake, tg.sent_times[0] + 1.0)
                            break
                        tg.sent_times.append(now)
                    _, _, b = heapq.heappop(tg.ready)
                    tg.inflight += 1
                    threading.Thread(target=self._send, args=(gen, tg, b),
                                     name='webhook-send', daemon=True).start()
            self.cond.wait(max(0.0, wake - time.monotonic()))

    def _send(self, gen, tg, b, duplicate=False):
        with self.lock:
            url, secret = tg.url, tg.secret
            fault = self._take_fault(tg, ('bad_signature', 'stale_timestamp',
                                          'tampered_body'))
            events = [dict(e, attemptNumber=b.attempt) for e in b.events]
            sigs = tg.signatures
            timeout = tg.timeout_s
        body = dumps(events).encode('utf-8')
        ts = int(time.time() * 1000)
        applied = list(b.faults)
        key = secret
        if fault is not None:
            applied.append(fault['kind'])
            if fault['kind'] == 'bad_signature':
                key = secret + '-wrong'
            elif fault['kind'] == 'stale_timestamp':
                ts -= int(fault['stale_ms'])
        if duplicate:
            applied.append('duplicate')
        headers = {'Content-Type': 'application/json', 'User-Agent': 'HubSpot Connect 2.0 '
                   '(http://dev.hubspot.com/) (namespace: webhooks-nio) - sandbox'}
        if 'v1' in sigs:
            headers['X-HubSpot-Signature'] = signature_v1(key, body)
            headers['X-HubSpot-Signature-Version'] = 'v1'
        if 'v3' in sigs:
            headers['X-HubSpot-Signature-v3'] = signature_v3(key, 'POST', v3_uri(url), body, ts)
            headers['X-HubSpot-Request-Timestamp'] = str(ts)
        if fault is not None and fault['kind'] == 'tampered_body':
            body = body[:-1] + b' ]'
        t0 = time.monotonic()
        status, error = self._post(url, body, headers, timeout)
        dur = round((time.monotonic() - t0) * 1000.0, 3)
        ok = 200 <= status < 300
        with self.lock:
            if gen != self.gen or self.targets.get(tg.id) is not tg:
                tg.inflight -= 1
                return
            tg.stats['deliveries'] += 1
            retry_in = None
            final = True
            if ok:
                tg.stats['delivered'] += 1
            else:
                tg.stats['failed_attempts'] += 1
                if not duplicate and b.attempt < tg.max_retries:
                    retry_in = tg.delay_ms(b.attempt)
                    final = False
                elif not duplicate:
                    tg.stats['given_up'] += 1
            self.seq += 1
            self.log.append({
                'seq': self.seq, 'target': tg.id, 'batch': b.id, 'attempt': b.attempt,
                'time': time.time(), 'url': url, 'status': status, 'error': error,
                'duration_ms': dur, 'count': len(events), 'events': events,
                'faults': applied, 'duplicate': duplicate, 'retry_in_ms': retry_in,
                'final': final,
                'headers': {k: v for k, v in headers.items() if k.startswith('X-HubSpot')},
                'body_bytes': len(body)})
            dup = None
            if ok and not duplicate:
                dup = self._take_fault(tg, ('duplicate',))
            if retry_in is not None:
                b.attempt += 1
                self._schedule(tg, b, time.monotonic() + retry_in / 1000.0)
            tg.inflight -= 1
            self.cond.notify_all()
        if dup is not None:
            with self.lock:
                tg.inflight += 1
            self._send(gen, tg, b, duplicate=True)

    @staticmethod
    def _post(url, body, headers, timeout):
        u = urllib.parse.urlsplit(url)
        path = (u.path or '/') + ('?' + u.query if u.query else '')
        cls = http.client.HTTPSConnection if u.scheme == 'https' else \
            http.client.HTTPConnection
        conn = cls(u.hostname, u.port, timeout=timeout)
        try:
            conn.request('POST', path, body=body, headers=headers)
            r = conn.getresponse()
            r.read(1 << 20)
            return r.status, None
        except (OSError, http.client.HTTPException) as e:
            return 0, '%s: %s' % (type(e).__name__, e)
        finally:
            conn.close()

    # ------------------------------------------------------------ control helpers

    def deliveries(self, since=None, target=None):
        with self.lock:
            out = [e for e in self.log if (since is None or e['seq'] > since) and
                   (target is None or e['target'] == target)]
            return out, self.seq

    def flush(self):
        """Cut every queue into batches now (skip the batching window)."""
        with self.lock:
            now = time.monotonic()
            for tg in self.targets.values():
                self._cut(tg, now, force=True)
            self.cond.notify_all()

    def pending(self, include_retries=True):
        with self.lock:
            return self._pending(include_retries)

    def _pending(self, include_retries):
        n = 0
        for tg in self.targets.values():
            n += len(tg.queue) + tg.inflight
            if include_retries:
                n += len(tg.ready)
            else:
                n += sum(1 for _, _, b in tg.ready if b.attempt == 0)
        return n

    def wait(self, timeout=10.0, include_retries=False):
        """Block until nothing is queued, scheduled (first attempts; with
        include_retries also retries) or in flight; returns True when idle."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self._pending(include_retries):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.05))
            return True
