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
    if s == ['bulk'] and m == 'POST':
        return _bulk(app, _body(req))
    if n >= 1 and s[0] == 'webhooks':
        return _webhooks(app, req, s[1:])
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


# ---------------------------------------------------------------- bulk changes

_TOUCH = {'contacts': 'jobtitle', 'companies': 'description', 'deals': 'description',
          'tickets': 'content'}
_BULK_N = [0]


def _touch_prop(t):
    """A writable string property a bulk update changes by default."""
    if t in _TOUCH:
        return _TOUCH[t]
    from .store import BODY_PROP
    if t in BODY_PROP:
        return BODY_PROP[t][0]
    for p in S.PROPERTY_LIST[t]:
        if p['type'] == 'string' and not p['calculated'] and \
                not p['modificationMetadata']['readOnlyValue'] and p['fieldType'] != 'html' \
                and not p.get('hasUniqueValue'):
            return p['name']
    return None


def _fill(props, i, rid, n):
    out = {}
    for k, v in props.items():
        out[k] = v.replace('{i}', str(i)).replace('{id}', str(rid)).replace('{n}', str(n)) \
            if isinstance(v, str) else v
    return out


def _select(app, t, spec, exclude=(), archived=False):
    if not isinstance(spec, dict):
        raise validation_error('each bulk action takes an object: {"count": N} or '
                               '{"ids": [...]}')
    st = app.store
    pool = [r for r in st.id_list(t, archived) if r not in exclude]
    if spec.get('ids') is not None:
        ids = spec['ids']
        if not isinstance(ids, list):
            raise validation_error('ids must be a list')
        out = []
        for x in ids:
            rec = st.get(t, x, archived)
            if rec is None:
                raise ApiError(404, 'no %s%s with id %s' % ('archived ' if archived else '',
                                                            S.SINGULAR[t], x),
                               'OBJECT_NOT_FOUND')
            out.append(rec.id)
        return out
    count = spec.get('count')
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise validation_error('count must be a non-negative integer')
    if count > len(pool):
        raise validation_error('only %d %s records to choose %d from'
                               % (len(pool), t, count))
    pick = spec.get('pick', 'spread')
    if pick == 'first':
        return pool[:count]
    if pick == 'last':
        return pool[len(pool) - count:]
    if pick == 'random':
        import random
        return sorted(random.Random(spec.get('seed', 1)).sample(pool, count))
    if pick == 'spread':
        if not count:
            return []
        step = len(pool) / float(count)
        return [pool[int(i * step)] for i in range(count)]
    raise validation_error('pick must be first, last, spread or random')


def _create_defaults(app, t, i, n):
    import time as _t
    now = str(int(_t.time() * 1000))
    d = {'contacts': {'email': 'bulk{n}-{i}@example.com', 'firstname': 'Bulk',
                      'lastname': 'Contact {i}'},
         'companies': {'name': 'Bulk Company {n}-{i}', 'domain': 'bulk{n}-{i}.example.com'},
         'deals': {'dealname': 'Bulk deal {n}-{i}', 'dealstage': 'appointmentscheduled',
                   'amount': '1000'},
         'tickets': {'subject': 'Bulk ticket {n}-{i}', 'hs_pipeline_stage': '1'}}.get(t)
    if d is not None:
        return dict(d)
    out = {}
    for name in S.REQUIRED_ON_CREATE.get(t, ()):
        pdef = S.PROPERTIES[t][name]
        if name == 'hs_timestamp':
            out[name] = now
        elif name in ('hs_pipeline', 'hs_pipeline_stage') and t in S.PIPELINE_PROP:
            pid = S.PIPELINE_PROP[t][2]
            out[name] = pid if name == 'hs_pipeline' else S.STAGES[t][pid][0]
        elif pdef['type'] == 'number':
            out[name] = '{i}'
        elif pdef['type'] == 'enumeration' and pdef['options']:
            out[name] = pdef['options'][0]['value']
        elif pdef['type'] in ('date',):
            out[name] = str(int(now) - int(now) % 86400000)
        elif pdef['type'] == 'datetime':
            out[name] = now
        elif pdef['type'] == 'bool':
            out[name] = 'true'
        else:
            out[name] = '%s {n}-{i}' % pdef['label']
    touch = _touch_prop(t)
    if touch and touch not in out:
        out[touch] = 'Bulk %s {n}-{i}' % S.SINGULAR[t]
    return out


def _bulk(app, d):
    """Change many records at once as another client: update (N records'
    properties), archive, restore, create.  Everything is validated before
    anything is written."""
    t = _type(d.get('type', ''))
    validate = d.get('validate', True)
    unknown = set(d) - {'type', 'update', 'archive', 'restore', 'create', 'validate'}
    if unknown:
        raise validation_error('unknown bulk field(s): %s' % ', '.join(sorted(unknown)))
    st = app.store
    t0 = time.time()
    with st.lock:
        _BULK_N[0] += 1
        n = _BULK_N[0]
        plan_u, plan_a, plan_r, plan_c = [], [], [], []
        if d.get('update') is not None:
            spec = d['update']
            ids = _select(app, t, spec)
            props = spec.get('properties')
            if props is None:
                touch = _touch_prop(t)
                if touch is None:
                    raise validation_error('%s has no string property to change; give '
                                           '`properties`' % t)
                props = {touch: 'Changed by another client (bulk {n}, #{i})'}
            if not isinstance(props, dict):
                raise validation_error('update.properties must be an object')
            for i, rid in enumerate(ids):
                rec = st.get(t, rid)
                try:
                    plan_u.append((rec, st.prepare(t, _fill(props, i, rid, n), rec, validate)))
                except (ApiError, PropError) as e:
                    raise _write_error(app, e)
        if d.get('archive') is not None:
            plan_a = _select(app, t, d['archive'], exclude=set(r.id for r, _ in plan_u))
        if d.get('restore') is not None:
            plan_r = _select(app, t, d['restore'], archived=True)
        if d.get('create') is not None:
            spec = d['create']
            if not isinstance(spec, dict):
                raise validation_error('create takes {"count": N, "properties": {...}}')
            count = spec.get('count', 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise validation_error('create.count must be a non-negative integer')
            given = spec.get('properties') or {}
            if not isinstance(given, dict):
                raise validation_error('create.properties must be an object')
            if t == 'leads' and not st.active['contacts']:
                raise validation_error('leads need a contact to be created with')
            for i in range(count):
                props = _create_defaults(app, t, i, n)
                props.update(given)
                try:
                    plan_c.append(st.prepare(t, _fill(props, i, '', n), None, validate))
                except (ApiError, PropError) as e:
                    raise _write_error(app, e)
        out = {'type': t, 'updated': [], 'archived': [], 'restored': [], 'created': []}
        for rec, ch in plan_u:
            try:
                st.update(t, rec, None, prepared=ch)
            except (ApiError, PropError) as e:
                raise _write_error(app, e)
            out['updated'].append(str(rec.id))
        for rid in plan_a:
            st.archive(t, st.tables[t][rid])
            out['archived'].append(str(rid))
        for rid in plan_r:
            st.restore(t, st.tables[t][rid])
            out['restored'].append(str(rid))
        contacts = st.active['contacts']
        for i, ch in enumerate(plan_c):
            try:
                rec = st.create(t, None, prepared=ch)
            except (ApiError, PropError) as e:
                raise _write_error(app, e)
            if t == 'leads':
                st.associate('leads', rec.id, 'contacts', contacts[i % len(contacts)], {578})
            out['created'].append(str(rec.id))
    out['counts'] = {k: len(out[k]) for k in ('updated', 'archived', 'restored', 'created')}
    out['seconds'] = round(time.time() - t0, 3)
    return Response(200, out)


# ---------------------------------------------------------------- webhooks


def _webhooks(app, req, s):
    wh = app.webhooks
    m = req.method
    try:
        if s == []:
            if m == 'GET':
                return Response(200, {'targets': wh.list(),
                                      'pending': wh.pending()})
            if m == 'POST':
                return Response(201, wh.add_target(_body(req)))
            if m == 'DELETE':
                return Response(200, {'removed': wh.remove_target()})
        if len(s) == 1 and s[0].isdigit():
            tid = int(s[0])
            if m == 'PATCH':
                r = wh.update_target(tid, _body(req))
                if r is None:
                    raise ApiError(404, 'no webhook target %d' % tid, 'OBJECT_NOT_FOUND')
                return Response(200, r)
            if m == 'DELETE':
                if not wh.remove_target(tid):
                    raise ApiError(404, 'no webhook target %d' % tid, 'OBJECT_NOT_FOUND')
                return Response(200, {'removed': 1})
            if m == 'GET':
                for tg in wh.list():
                    if tg['id'] == tid:
                        return Response(200, tg)
                raise ApiError(404, 'no webhook target %d' % tid, 'OBJECT_NOT_FOUND')
        if s == ['deliveries'] and m == 'GET':
            tgt = req.q('target')
            entries, last = wh.deliveries(_since(req), int(tgt) if tgt else None)
            limit = req.q('limit')
            if limit:
                entries = entries[:int(limit)]
            return Response(200, {'deliveries': entries, 'last_seq': last})
        if s == ['faults']:
            if m == 'POST':
                return Response(201, wh.add_fault(_body(req)))
            if m == 'GET':
                return Response(200, {'faults': wh.faults()})
            if m == 'DELETE':
                wh.clear_faults()
                return Response(200, {'ok': True})
        if s == ['flush'] and m == 'POST':
            wh.flush()
            return Response(200, {'ok': True, 'pending': wh.pending()})
        if s == ['wait'] and m == 'POST':
            d = _body(req)
            wh.flush()
            idle = wh.wait(float(d.get('timeout', 10)), bool(d.get('include_retries')))
            return Response(200, {'idle': idle, 'pending': wh.pending()})
    except (ValueError, TypeError) as e:
        raise validation_error(str(e))
    raise ApiError(404, 'unknown control route %s %s' % (m, req.path), 'OBJECT_NOT_FOUND')
