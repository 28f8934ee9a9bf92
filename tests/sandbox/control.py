"""Control API under /__sandbox/ (no auth, no rate limit, not logged).

See README.md for every route with examples.
"""

import os
import re
import time

from . import schema as S
from .server import Response
from .store import PropError
from .server import parse_scopes
from .util import ApiError, iso_ms, validation_error


def _body(req):
    if not req.body:
        return {}
    b = req.json()
    if not isinstance(b, dict):
        raise validation_error('control request body must be a JSON object')
    return b


def _type(name):
    t = S.control_type(name)
    if t is None:
        raise ApiError(404, 'unknown object type %r' % name, 'OBJECT_NOT_FOUND')
    return t


def _rec(app, t, rid, any_state=True):
    st = app.store
    rec = st.get(t, rid) or (st.get(t, rid, archived=True) if any_state else None)
    if rec is None:
        raise ApiError(404, 'no %s with id %s' % (S.SINGULAR[t], rid), 'OBJECT_NOT_FOUND')
    return rec


def raw_record(app, t, rec):
    st = app.store
    now = time.monotonic()
    view = st.search_view(rec, now)
    assoc = {}
    for other in S.ALL:
        m = st.assoc.get((t, other), {}).get(rec.id)
        if m:
            assoc[other] = {str(k): list(v) for k, v in sorted(m.items())}
    visible_from = None
    if rec.hist:
        visible_from = rec.hist[-1][0] + st.index_delay - now
    d = {'id': str(rec.id), 'type': t, 'properties': dict(rec.props),
         'computed': {n: st.value(t, rec, n) for n in sorted(S.CALCULATED_ALL[t])},
         'createdAt': iso_ms(rec.c_ms), 'updatedAt': iso_ms(rec.u_ms),
         'archived': rec.archived,
         'archivedAt': iso_ms(rec.archived_ms) if rec.archived else None,
         'associations': assoc,
         'search': {
             'visible': view is not None and not getattr(view, 'archived', False),
             'current': view is rec,
             'properties': None if view is None else dict(view.props),
             'updatedAt': None if view is None else iso_ms(view.u_ms),
             'seconds_until_current': max(0.0, visible_from) if visible_from else 0.0}}
    return d


def _write_error(app, e):
    if isinstance(e, PropError):
        return app.store.api_error(e)
    return e


def _filter_log(entries, d):
    method = d.get('method')
    method = method.upper() if method else None
    path_re = re.compile(d['path_re']) if d.get('path_re') else None
    endpoint = d.get('endpoint')
    status = d.get('status')
    injected = d.get('injected')
    out = []
    for e in entries:
        if method and e['method'] != method:
            continue
        if path_re and not path_re.search(e['path']):
            continue
        if endpoint and e['endpoint'] != endpoint:
            continue
        if status is not None:
            if isinstance(status, list):
                if e['status'] not in status:
                    continue
            elif e['status'] != int(status):
                continue
        if injected is not None and e['injected'] != bool(injected):
            continue
        out.append(e)
    return out


def _since(req, d=None):
    v = (d or {}).get('since', req.q('since'))
    if v in (None, ''):
        return None
    return int(v)


def handle(app, req):
    s = req.segs[1:]          # drop "__sandbox"
    m = req.method
    n = len(s)
    if s == ['health'] or s == []:
        st = app.store
        return Response(200, {'ok': True, 'pid': os.getpid(), 'portalId': app.cfg.portal_id,
                              'uptime': round(time.time() - app.started, 3),
                              'records': {t: st.count(t) for t in S.TYPES},
                              'archived': {t: st.count(t, True) for t in S.TYPES},
                              'all_records': {t: st.count(t) for t in S.ALL},
                              'all_archived': {t: st.count(t, True) for t in S.ALL},
                              'seed': app.seed_info, 'last_seq': app.log.last_seq()})
    if s == ['reset'] and m == 'POST':
        d = _body(req)
        sizes = {k: int(d[k]) for k in S.TYPES if d.get(k) is not None}
        objects = d.get('objects')
        if objects is not None and not isinstance(objects, dict):
            raise validation_error('objects must be an object {type: size}')
        try:
            if objects:
                _check_sizes(app, objects)
            info = app.reset(seed=d.get('seed'), sizes=sizes or None, demo=d.get('demo'),
                             config=d.get('config'), objects=objects,
                             custom=d.get('custom_schemas'))
        except ValueError as e:
            raise validation_error(str(e))
        return Response(200, dict(info, ok=True))
    if s == ['config']:
        if m == 'GET':
            return Response(200, app.config_dict())
        if m in ('POST', 'PATCH', 'PUT'):
            try:
                return Response(200, app.configure(_body(req)))
            except (ValueError, KeyError, TypeError) as e:
                raise validation_error(str(e))
    if s == ['log']:
        if m == 'GET':
            entries = app.log.since(_since(req))
            limit = req.q('limit')
            if limit:
                entries = entries[:int(limit)]
            return Response(200, {'entries': entries, 'last_seq': app.log.last_seq()})
        if m == 'DELETE':
            app.log.clear()
            return Response(200, {'ok': True, 'last_seq': app.log.last_seq()})
    if s == ['log', 'clear'] and m == 'POST':
        app.log.clear()
        return Response(200, {'ok': True, 'last_seq': app.log.last_seq()})
    if s == ['counts'] and m == 'GET':
        counts = {}
        total = 0
        for e in app.log.since(_since(req)):
            counts[e['endpoint']] = counts.get(e['endpoint'], 0) + 1
            total += 1
        return Response(200, {'counts': dict(sorted(counts.items())), 'total': total,
                              'last_seq': app.log.last_seq()})
    if s == ['count'] and m == 'POST':
        d = _body(req)
        try:
            entries = _filter_log(app.log.since(_since(req, d)), d)
        except re.error as e:
            raise validation_error('bad path_re: %s' % e)
        return Response(200, {'count': len(entries)})
    if s == ['faults']:
        if m == 'GET':
            return Response(200, {'faults': app.faults.list()})
        if m == 'POST':
            d = _body(req)
            try:
                f = app.faults.add(d)
            except (ValueError, KeyError, TypeError, re.error) as e:
                raise validation_error(str(e))
            return Response(201, f.to_dict())
        if m == 'DELETE':
            app.faults.clear()
            return Response(200, {'ok': True})
    if n == 2 and s[0] == 'faults' and m == 'DELETE':
        ok = app.faults.remove(int(s[1]))
        return Response(200 if ok else 404, {'ok': ok})
    if s == ['tokens']:
        if m == 'GET':
            now = time.time()
            with app.tokens.lock:
                toks = [{'access_token': k, 'expires_in': round(v - now, 3),
                         'expired': v <= now,
                         'scopes': sorted(app.tokens.granted[k])
                         if k in app.tokens.granted else None}
                        for k, v in app.tokens.issued.items()]
            return Response(200, {'tokens': toks})
        if m == 'POST':
            d = _body(req)
            exp = float(d.get('expires_in', app.cfg.token_expiry))
            scopes = None
            if d.get('scopes') is not None:
                try:
                    scopes = parse_scopes(d['scopes'])
                except ValueError as e:
                    raise validation_error(str(e))
            tok = app.tokens.issue(exp, scopes)
            out = {'access_token': tok, 'expires_in': exp}
            if scopes is not None:
                out['scopes'] = sorted(scopes)
            return Response(201, out)
    if s == ['tokens', 'expire'] and m == 'POST':
        return Response(200, {'expired': app.tokens.expire_all()})
    if s == ['index', 'flush'] and m == 'POST':
        app.store.flush_index()
        return Response(200, {'ok': True})
    if n >= 2 and s[0] == 'objects':
        return _objects(app, req, s[1:])
    if n == 5 and s[0] == 'associations':
        return _associations(app, req, s[1:])
    raise ApiError(404, 'unknown control route %s %s' % (m, req.path), 'OBJECT_NOT_FOUND')


def _objects(app, req, s):
    t = _type(s[0])
    st = app.store
    m = req.method
    if len(s) == 1 and m == 'POST':
        d = _body(req)
        with st.lock:
            try:
                rec = st.create(t, d.get('properties') or {},
                                validate=d.get('validate', True))
            except (ApiError, PropError) as e:
                raise _write_error(app, e)
            for a in d.get('associations') or []:
                tt = _type(a['type'])
                other = _rec(app, tt, a['id'], any_state=False)
                st.associate(t, rec.id, tt, other.id, set(a.get('types') or ()))
            return Response(201, raw_record(app, t, rec))
    if len(s) == 2:
        with st.lock:
            rec = _rec(app, t, s[1])
            if m == 'GET':
                return Response(200, raw_record(app, t, rec))
            if m == 'PATCH':
                d = _body(req)
                try:
                    st.update(t, rec, d.get('properties') or {},
                              validate=d.get('validate', True))
                except (ApiError, PropError) as e:
                    raise _write_error(app, e)
                return Response(200, raw_record(app, t, rec))
            if m == 'DELETE':
                st.archive(t, rec)
                return Response(200, raw_record(app, t, rec))
    if len(s) == 3 and s[2] == 'restore' and m == 'POST':
        with st.lock:
            rec = _rec(app, t, s[1])
            st.restore(t, rec)
            return Response(200, raw_record(app, t, rec))
    if len(s) == 3 and s[2] == 'merge' and m == 'POST':
        d = _body(req)
        with st.lock:
            primary = _rec(app, t, s[1], any_state=False)
            merged = _rec(app, t, d.get('objectIdToMerge'), any_state=False)
            if primary.id == merged.id:
                raise validation_error('cannot merge a record with itself')
            st.merge(t, primary, merged)
            return Response(200, raw_record(app, t, primary))
    raise ApiError(404, 'unknown control route %s %s' % (m, req.path), 'OBJECT_NOT_FOUND')


def _associations(app, req, s):
    ft, fid, tt, tid = _type(s[0]), s[1], _type(s[2]), s[3]
    st = app.store
    with st.lock:
        f = _rec(app, ft, fid, any_state=False)
        o = _rec(app, tt, tid, any_state=False)
        if req.method == 'PUT':
            d = _body(req)
            types = d.get('types')
            if types is not None:
                types = st.check_types(ft, tt, [{'associationTypeId': x} for x in types])
            res = st.associate(ft, f.id, tt, o.id, types, replace=bool(d.get('replace')))
            return Response(200, {'types': list(res),
                                  'inverse': list(st.pair_types(tt, o.id, ft, f.id))})
        if req.method == 'DELETE':
            st.unassociate(ft, f.id, tt, o.id)
            return Response(200, {'types': []})
    raise ApiError(404, 'unknown control route', 'OBJECT_NOT_FOUND')


def _check_sizes(app, objects):
    """Refuse unknown types before a reset starts clearing the store."""
    from . import catalog
    seeded = {n['name'] for _, n in catalog.SEED_SCHEMAS}
    pid = app.cfg.portal_id
    for k, v in objects.items():
        if S.control_type(k) is None and k not in seeded and \
                k not in {'p%d_%s' % (pid, x) for x in seeded}:
            raise ValueError('unknown object type %r in objects' % k)
        if S.control_type(k) in S.CORE:
            raise ValueError('size %s with its own key, not in objects' % k)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError('size of %s must be a non-negative integer' % k)
