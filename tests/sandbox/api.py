"""The HubSpot API routes of the sandbox (objects, batch, search, associations,
properties, pipelines, owners, account info, OAuth).

`match(req)` maps a request to a Route whose `endpoint` is the normalised
name used by the request log and counts, e.g.
``POST /crm/v3/objects/contacts/batch/read``.
"""

import bisect
import time
import urllib.parse

from . import schema as S
from . import search as searchmod
from .server import Response
from .store import PropError, not_found_error, conflict_error
from .util import (ApiError, decode_cursor, encode_cursor, iso_ms, validation_error,
                   new_correlation_id, dumps)

LIST_MAX = 100
BATCH_MAX = 100
HISTORY_MAX = 50
OWNERS_MAX = 500

AUTH_MISSING = ('Authentication credentials not found. This API supports OAuth 2.0 '
                'authentication and you can find more details at '
                'https://developers.hubspot.com/docs/methods/auth/oauth-overview')


class Route(object):
    """need: scope clauses the token must satisfy (each clause: one of its
    scopes); gate: types whose object-library enablement is checked."""
    __slots__ = ('endpoint', 'fn', 'args', 'auth', 'search', 'need', 'gate')

    def __init__(self, endpoint, fn, args=(), auth=True, search=False, need=(), gate=()):
        self.endpoint = endpoint
        self.fn = fn
        self.args = args
        self.auth = auth
        self.search = search
        self.need = need
        self.gate = gate

    def call(self, app, req):
        return self.fn(app, req, *self.args)


# ---------------------------------------------------------------- auth


def authenticate(app, req):
    """'static' | 'oauth', or raises the HubSpot 401.  Sets req.scopes to the
    token's granted scopes (None: every scope)."""
    h = req.headers.get('Authorization') or ''
    tok = None
    if h[:7].lower() == 'bearer ':
        tok = h[7:].strip()
    if not tok:
        raise ApiError(401, AUTH_MISSING, 'INVALID_AUTHENTICATION')
    if tok == app.cfg.token:
        req.scopes = app.cfg.scopes
        return 'static'
    exp = app.tokens.lookup(tok)
    if exp is None:
        raise ApiError(401, AUTH_MISSING, 'INVALID_AUTHENTICATION')
    now = time.time()
    if exp <= now:
        raise ApiError(401, 'The OAuth token used to make this call expired %d second(s) '
                       'ago.' % int(now - exp), 'EXPIRED_AUTHENTICATION',
                       context={'expire time': [iso_ms(exp * 1000)]})
    sc = app.tokens.scopes(tok)
    req.scopes = app.cfg.scopes if sc is None else sc
    return 'oauth'


SCOPES_MSG = ("This app hasn't been granted all required scopes to make this call. Read "
              'more about required scopes here: https://developers.hubspot.com/scopes.')


def check_access(app, req, route):
    """403 MISSING_SCOPES for a scope the token lacks, 400 for a type the
    object library has not enabled."""
    granted = req.scopes
    if granted is not None:
        for clause in route.need:
            if not any(s in granted for s in clause):
                raise ApiError(403, SCOPES_MSG, 'MISSING_SCOPES', errors=[{
                    'message': 'One or more of the following scopes are required.',
                    'context': {'requiredGranularScopes': list(clause)}}],
                    links={'scopes': 'https://developers.hubspot.com/scopes'})
    for t in route.gate:
        info = S.INFO.get(t)
        if info is not None and info.library and \
                not app.cfg.object_library.get(info.type_id, True):
            raise validation_error(app.cfg.object_library_message.format(
                objectTypeId=info.type_id, type=t))


def _read(*types):
    out = ()
    for t in types:
        out += S.INFO[t].read
    return out


def _write(*types):
    out = ()
    for t in types:
        out += S.INFO[t].write
    return out


# ---------------------------------------------------------------- routing


def _not_found_route(req):
    return ApiError(404, 'Unable to find a route for %s %s' % (req.method, req.path),
                    'OBJECT_NOT_FOUND')


def _method_not_allowed(req, allowed):
    return ApiError(405, 'HTTP %s is not supported by this resource; use %s'
                    % (req.method, ' or '.join(allowed)), 'VALIDATION_ERROR',
                    headers={'Allow': ', '.join(allowed)})


def _type(name):
    t = S.canon_type(name)
    if t is None:
        raise validation_error('Unable to infer object type from: %s' % name)
    return t


def _pick(req, table):
    fn = table.get(req.method)
    if fn is None:
        raise _method_not_allowed(req, sorted(table))
    return fn


_BATCH_OPS = {'read': 'read', 'create': 'create', 'update': 'update', 'upsert': 'upsert',
              'archive': 'archive'}


def _match_objects(req, s, prefix):
    """/crm/v3/objects/{t}/... and /crm/objects/v3/{t}/... (same handlers;
    the log names each by the shape it used)."""
    n = len(s)
    m = req.method
    t = _type(s[3])
    ops = S.INFO[t].ops
    base = prefix + t
    rd, wr, gate = _read(t), _write(t), (t,)
    if n == 4:
        table = {'GET': list_objects}
        if 'create' in ops:
            table['POST'] = create_object
        fn = _pick(req, table)
        return Route('%s %s' % (m, base), fn, (t,), need=rd if m == 'GET' else wr,
                     gate=gate)
    if n == 5 and s[4] == 'search' and 'search' in ops:
        _pick(req, {'POST': 1})
        return Route('POST %s/search' % base, search_objects, (t,), search=True, need=rd,
                     gate=gate)
    if n == 5 and s[4] == 'merge' and 'merge' in ops and m == 'POST':
        return Route('POST %s/merge' % base, merge_objects, (t,), need=wr, gate=gate)
    if n == 6 and s[4] == 'batch':
        op = s[5]
        fn = {'read': batch_read, 'create': batch_create, 'update': batch_update,
              'upsert': batch_upsert, 'archive': batch_archive}.get(op)
        if fn is None or _BATCH_OPS[op] not in ops:
            raise _not_found_route(req)
        _pick(req, {'POST': 1})
        return Route('POST %s/batch/%s' % (base, op), fn, (t,),
                     need=rd if op == 'read' else wr, gate=gate)
    if n == 5:
        table = {'GET': get_object}
        if 'update' in ops:
            table['PATCH'] = update_object
        if 'archive' in ops:
            table['DELETE'] = archive_object
        fn = _pick(req, table)
        return Route('%s %s/{id}' % (m, base), fn, (t, s[4]), need=rd if m == 'GET' else wr,
                     gate=gate)
    if n in (7, 9) and s[5] == 'associations':
        # the per-object v3 association routes (activities, leads, custom objects)
        tt = _type(s[6])
        b = '%s/{id}/associations/%s' % (base, tt)
        if n == 7:
            _pick(req, {'GET': 1})
            return Route('GET ' + b, v3_assoc_list, (t, s[4], tt), need=_read(t, tt),
                         gate=(t, tt))
        fn = _pick(req, {'PUT': v3_assoc_put, 'DELETE': v3_assoc_delete})
        return Route('%s %s/{toId}/{associationTypeId}' % (m, b), fn, (t, s[4], tt, s[7], s[8]),
                     need=_write(t, tt), gate=(t, tt))
    raise _not_found_route(req)


def _match_assoc_family(req, s, prefix):
    """/crm/v4/associations/{from}/{to}/... and /crm/associations/v4/... ."""
    n = len(s)
    ft, tt = _type(s[3]), _type(s[4])
    base = '%s/%s/%s' % (prefix, ft, tt)
    rest = '/'.join(s[5:])
    gate = (ft, tt)
    if rest == 'labels':
        from . import api_schema as X
        fn = _pick(req, {'GET': assoc_labels, 'POST': X.labels_create,
                         'PUT': X.labels_update})
        return Route('%s %s/labels' % (req.method, base), fn, (ft, tt),
                     need=_read(ft, tt) if req.method == 'GET' else _write(ft, tt), gate=gate)
    if n == 7 and s[5] == 'labels':
        from . import api_schema as X
        _pick(req, {'DELETE': 1})
        return Route('DELETE %s/labels/{associationTypeId}' % base, X.labels_delete,
                     (ft, tt, s[6]), need=_write(ft, tt), gate=gate)
    fn = {'batch/read': assoc_batch_read, 'batch/create': assoc_batch_create,
          'batch/associate/default': assoc_batch_default,
          'batch/archive': assoc_batch_archive,
          'batch/labels/archive': assoc_batch_labels_archive}.get(rest)
    if fn is None:
        raise _not_found_route(req)
    _pick(req, {'POST': 1})
    return Route('POST %s/%s' % (base, rest), fn, (ft, tt),
                 need=_read(ft, tt) if rest == 'batch/read' else _write(ft, tt), gate=gate)


SCHEMA_READ = (('crm.schemas.custom.read', 'crm.objects.custom.read'),)
SCHEMA_WRITE = (('crm.schemas.custom.write',),)


def _match_schemas(req, s, prefix):
    from . import api_schema as X
    n = len(s) - len(prefix.strip('/').split('/'))
    rest = s[len(s) - n:]
    m = req.method
    if n == 0:
        fn = _pick(req, {'GET': X.schema_list, 'POST': X.schema_create})
        return Route('%s %s' % (m, prefix), fn, (), need=SCHEMA_READ if m == 'GET'
                     else SCHEMA_WRITE)
    if rest == ['batch', 'read']:
        _pick(req, {'POST': 1})
        return Route('POST %s/batch/read' % prefix, X.schema_batch_read, (), need=SCHEMA_READ)
    if n == 1:
        fn = _pick(req, {'GET': X.schema_get, 'PATCH': X.schema_patch,
                         'DELETE': X.schema_delete})
        return Route('%s %s/{objectType}' % (m, prefix), fn, (rest[0],),
                     need=SCHEMA_READ if m == 'GET' else SCHEMA_WRITE)
    if n == 2 and rest[1] == 'associations':
        _pick(req, {'POST': 1})
        return Route('POST %s/{objectType}/associations' % prefix, X.schema_assoc_create,
                     (rest[0],), need=SCHEMA_WRITE)
    if n == 3 and rest[1] == 'associations':
        _pick(req, {'DELETE': 1})
        return Route('DELETE %s/{objectType}/associations/{associationIdentifier}' % prefix,
                     X.schema_assoc_delete, (rest[0], rest[2]), need=SCHEMA_WRITE)
    raise _not_found_route(req)


def match(req):
    s = req.segs
    n = len(s)
    m = req.method
    if n >= 4 and s[0] == 'crm' and s[1] == 'v3' and s[2] == 'objects':
        return _match_objects(req, s, '/crm/v3/objects/')
    if n >= 4 and s[0] == 'crm' and s[1] == 'objects' and s[2] == 'v3':
        return _match_objects(req, s, '/crm/objects/v3/')
    if n >= 4 and s[0] == 'crm' and s[1] == 'v3' and s[2] == 'properties':
        t = _type(s[3])
        base = '/crm/v3/properties/' + t
        if n == 4:
            _pick(req, {'GET': 1})
            return Route('GET ' + base, list_properties, (t,), need=_read(t), gate=(t,))
        if n == 5:
            _pick(req, {'GET': 1})
            return Route('GET %s/{name}' % base, get_property, (t, s[4]), need=_read(t),
                         gate=(t,))
        raise _not_found_route(req)
    if n >= 4 and s[0] == 'crm' and s[1] == 'v3' and s[2] == 'pipelines':
        t = _type(s[3])
        base = '/crm/v3/pipelines/' + t
        _pick(req, {'GET': 1})
        kw = {'need': _read(t), 'gate': (t,)}
        if n == 4:
            return Route('GET ' + base, list_pipelines, (t,), **kw)
        if n == 5:
            return Route('GET %s/{pipelineId}' % base, get_pipeline, (t, s[4]), **kw)
        if n == 6 and s[5] == 'stages':
            return Route('GET %s/{pipelineId}/stages' % base, list_stages, (t, s[4]), **kw)
        if n == 7 and s[5] == 'stages':
            return Route('GET %s/{pipelineId}/stages/{stageId}' % base, get_stage,
                         (t, s[4], s[6]), **kw)
        raise _not_found_route(req)
    if n >= 3 and s[:3] == ['crm', 'v3', 'owners']:
        _pick(req, {'GET': 1})
        need = (('crm.objects.owners.read',),)
        if n == 3:
            return Route('GET /crm/v3/owners', list_owners, need=need)
        if n == 4:
            return Route('GET /crm/v3/owners/{ownerId}', get_owner, (s[3],), need=need)
        raise _not_found_route(req)
    if s == ['account-info', 'v3', 'details']:
        _pick(req, {'GET': 1})
        return Route('GET /account-info/v3/details', account_info)
    if n >= 7 and s[0] == 'crm' and s[1] == 'v4' and s[2] == 'objects' and \
            s[5] == 'associations':
        t = _type(s[3])
        fid = s[4]
        base = '/crm/v4/objects/%s/{id}/associations' % t
        if n == 9 and s[6] == 'default':
            tt = _type(s[7])
            _pick(req, {'PUT': 1})
            return Route('PUT %s/default/%s/{toId}' % (base, tt), assoc_put_default,
                         (t, fid, tt, s[8]), need=_write(t, tt), gate=(t, tt))
        if n == 8:
            tt = _type(s[6])
            fn = _pick(req, {'PUT': assoc_put_labels, 'DELETE': assoc_delete})
            return Route('%s %s/%s/{toId}' % (m, base, tt), fn, (t, fid, tt, s[7]),
                         need=_write(t, tt), gate=(t, tt))
        if n == 7:
            tt = _type(s[6])
            _pick(req, {'GET': 1})
            return Route('GET %s/%s' % (base, tt), assoc_list, (t, fid, tt),
                         need=_read(t, tt), gate=(t, tt))
        raise _not_found_route(req)
    if n >= 6 and s[:3] == ['crm', 'v4', 'associations']:
        return _match_assoc_family(req, s, '/crm/v4/associations')
    if n >= 6 and s[:3] == ['crm', 'associations', 'v4'] and s[3] != 'definitions':
        return _match_assoc_family(req, s, '/crm/associations/v4')
    if n >= 3 and s[:3] == ['crm-object-schemas', 'v3', 'schemas']:
        return _match_schemas(req, s, '/crm-object-schemas/v3/schemas')
    if n >= 3 and s[:3] == ['crm', 'v3', 'schemas']:
        return _match_schemas(req, s, '/crm/v3/schemas')
    if n >= 4 and s[:4] == ['crm', 'v3', 'object-library', 'enablement']:
        from . import api_schema as X
        _pick(req, {'GET': 1})
        if n == 4:
            return Route('GET /crm/v3/object-library/enablement', X.library_all)
        if n == 5:
            return Route('GET /crm/v3/object-library/enablement/{objectTypeId}',
                         X.library_one, (s[4],))
        raise _not_found_route(req)
    if n == 4 and s[:3] == ['crm', 'v3', 'limits'] and s[3] in ('records',
                                                              'custom-object-types'):
        from . import api_schema as X
        _pick(req, {'GET': 1})
        return Route('GET /crm/v3/limits/' + s[3], X.limits_records if s[3] == 'records'
                     else X.limits_custom)
    if s == ['oauth', 'v1', 'token']:
        _pick(req, {'POST': 1})
        return Route('POST /oauth/v1/token', oauth_token, auth=False)
    if n == 4 and s[:3] == ['oauth', 'v1', 'access-tokens']:
        _pick(req, {'GET': 1})
        return Route('GET /oauth/v1/access-tokens/{token}', oauth_token_info, (s[3],),
                     auth=False)
    raise _not_found_route(req)


# ---------------------------------------------------------------- helpers


def _json_obj(req):
    body = req.json()
    if not isinstance(body, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: Cannot '
                               'deserialize value of type `%s` from %s value'
                               % ('object', type(body).__name__))
    return body


def _inputs(body, cap, what='inputs'):
    inputs = body.get('inputs')
    if inputs is None:
        raise validation_error('Invalid input JSON on line 1, column 1: missing '
                               'required field `inputs`')
    if not isinstance(inputs, list):
        raise validation_error('Invalid input JSON on line 1, column 1: Cannot '
                               'deserialize value of type `java.util.ArrayList` from '
                               'non-array value (`inputs`)')
    if len(inputs) > cap:
        raise validation_error('Batch input size %d exceeds the maximum of %d %s per '
                               'request.' % (len(inputs), cap, what),
                               context={'maxInputs': [str(cap)]})
    for i in inputs:
        if not isinstance(i, dict):
            raise validation_error('Invalid input JSON on line 1, column 1: each input '
                                   'must be an object')
    return inputs


def _int_param(req, name, default, lo, hi):
    v = req.q(name)
    if v is None or v == '':
        return default
    try:
        n = int(v)
    except ValueError:
        raise validation_error('%s must be an integer, got %r' % (name, v))
    if n < lo or n > hi:
        raise validation_error('%s must be between %d and %d, got %d' % (name, lo, hi, n),
                               context={name: [v]})
    return n


def _bool_param(req, name):
    v = req.q(name)
    return v is not None and v.lower() == 'true'


def _str_list(v, name):
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise validation_error('Invalid input JSON on line 1, column 1: `%s` must be an '
                               'array of strings' % name)
    return v


def _link(req, after):
    q = [(k, v) for k, vs in req.query.items() for v in vs if k != 'after']
    q.append(('after', urllib.parse.unquote(after)))
    return '%s%s?%s' % (req.base_url(), req.path, urllib.parse.urlencode(q))


def _now_iso():
    return iso_ms(time.time() * 1000)


def _batch_body(results, errors, started):
    b = {'status': 'COMPLETE', 'results': results}
    if errors:
        b['numErrors'] = len(errors)
        b['errors'] = errors
    b['startedAt'] = started
    b['completedAt'] = _now_iso()
    return b


def _object_not_found_error(t, ids):
    return {'status': 'error', 'category': 'OBJECT_NOT_FOUND',
            'message': 'Could not get some %s objects, they may be deleted or not exist. '
                       'Check that ids are valid.' % S.UPPER[t],
            'context': {'ids': [str(i) for i in ids]}}


def _input_error(app, exc, trace):
    """Batch errors[] entry for one failed input (with objectWriteTraceId)."""
    e = app.store.api_error(exc)
    d = {'status': 'error', 'category': e.category, 'message': e.message,
         'context': {'objectWriteTraceId': [str(trace)]}}
    if e.errors:
        d['errors'] = e.errors
    return d


def _all_names(t, rec):
    names = [k for k in rec.props]
    return names


def _embed_assoc(app, t, rec, assoc_types, out, req):
    if not assoc_types:
        return
    emb = {}
    for other in assoc_types:
        items = app.store.assoc_of(t, rec.id, other)
        if not items:
            continue
        res = []
        for oid, types in items:
            for tid in types:
                res.append({'id': str(oid), 'type': S.ASSOC_TYPES[tid][4]})
        entry = {'results': res[:100]}
        if len(res) > 100:
            last = int(res[99]['id'])
            entry['paging'] = {'next': {'after': encode_cursor(last),
                                        'link': '%s/crm/v3/objects/%s/%d/associations/%s'
                                        '?after=%s' % (req.base_url(), t, rec.id, other,
                                                       encode_cursor(last))}}
        # HubSpot keys line items as "line items" (with a space)
        emb['line items' if other == 'line_items' else other] = entry
    if emb:
        out['associations'] = emb


def _assoc_param(req):
    names = req.qlist('associations')
    if not names:
        return None
    out = []
    for n in names:
        t = S.canon_type(n)
        if t and t not in out:
            out.append(t)
    return out


def _lookup(app, t, rid, id_property, archived=False):
    try:
        rec = app.store.find_by(t, id_property, rid, archived)
    except ApiError:
        raise validation_error('Unable to perform lookup by non-unique %s property %s in '
                               'portal ID %d' % (S.TYPE_ID[t], id_property,
                                                 app.store.portal_id))
    if rec is None:
        raise not_found_error(rid)
    return rec


def _write_error(app, exc):
    if isinstance(exc, PropError):
        return app.store.api_error(exc)
    return exc


# ---------------------------------------------------------------- objects v3


def list_objects(app, req, t):
    limit = _int_param(req, 'limit', 10, 1, LIST_MAX)
    archived = _bool_param(req, 'archived')
    names = req.qlist('properties')
    hist = req.qlist('propertiesWithHistory')
    if hist and limit > HISTORY_MAX:
        raise validation_error('The maximum limit for requests with '
                               'propertiesWithHistory is %d' % HISTORY_MAX)
    assoc = _assoc_param(req)
    after = req.q('after')
    st = app.store
    with st.lock:
        ids = st.id_list(t, archived)
        start = 0
        if after:
            last = decode_cursor(after)
            if last is None:
                raise validation_error('Invalid `after` paging cursor: %s' % after)
            start = bisect.bisect_right(ids, last)
        page = ids[start:start + limit]
        tab = st.tables[t]
        results = []
        for rid in page:
            rec = tab[rid]
            r = st.render(t, rec, names, with_history=hist)
            if assoc:
                _embed_assoc(app, t, rec, assoc, r, req)
            results.append(r)
        more = start + limit < len(ids)
    body = {'results': results}
    if more and page:
        cur = encode_cursor(page[-1])
        body['paging'] = {'next': {'after': cur, 'link': _link(req, cur)}}
    return Response(200, body)


def get_object(app, req, t, rid):
    names = req.qlist('properties')
    hist = req.qlist('propertiesWithHistory')
    assoc = _assoc_param(req)
    with app.store.lock:
        rec = _lookup(app, t, rid, req.q('idProperty'), _bool_param(req, 'archived'))
        r = app.store.render(t, rec, names, with_history=hist)
        _embed_assoc(app, t, rec, assoc, r, req)
    return Response(200, r)


def _parse_create_assocs(app, t, assocs):
    """v3 create `associations` -> [(to_type, to_id, {types})]."""
    if assocs is None:
        return []
    if not isinstance(assocs, list):
        raise validation_error('Invalid input JSON on line 1, column 1: `associations` '
                               'must be an array')
    out = []
    for a in assocs:
        if not isinstance(a, dict) or not isinstance(a.get('to'), dict):
            raise validation_error('Invalid input JSON on line 1, column 1: association '
                                   'inputs need `to: {id}` and `types`')
        types = a.get('types') or []
        if not isinstance(types, list) or not types:
            raise validation_error('association to %s needs at least one type'
                                   % (a['to'].get('id'),))
        tt = None
        for spec in types:
            if not isinstance(spec, dict):
                raise validation_error('association types must be objects')
            try:
                d = S.ASSOC_TYPES.get(int(spec.get('associationTypeId')))
            except (TypeError, ValueError):
                d = None
            if d is None or d[0] != t or (tt is not None and d[1] != tt):
                raise validation_error('%s is not a valid association type from %s'
                                       % (spec.get('associationTypeId'), S.SINGULAR[t]),
                                       sub_category='crm.associations.'
                                       'INVALID_ASSOCIATION_TYPE')
            tt = d[1]
        ids = app.store.check_types(t, tt, types)
        to_id = a['to'].get('id')
        target = app.store.get(tt, to_id)
        if target is None:
            raise validation_error('%s %s does not exist or is archived; cannot '
                                   'associate' % (S.SINGULAR[tt].capitalize(), to_id),
                                   sub_category='crm.associations.INVALID_OBJECT_IDS',
                                   context={'toObjectId': [str(to_id)]})
        out.append((tt, target.id, ids))
    return out


def _check_required_assocs(t, assocs):
    """A lead is created with its primary contact (type 578), or not at all."""
    if t == 'leads' and not any(tt == 'contacts' and 578 in ids for tt, _, ids in assocs):
        raise validation_error(
            'A lead must be created with an association to an existing contact as its '
            'primary contact (associationCategory HUBSPOT_DEFINED, associationTypeId 578).',
            sub_category='crm.associations.REQUIRED_ASSOCIATION_MISSING',
            context={'requiredAssociationTypeIds': ['578']})


def create_object(app, req, t):
    body = _json_obj(req)
    st = app.store
    with st.lock:
        assocs = _parse_create_assocs(app, t, body.get('associations'))
        _check_required_assocs(t, assocs)
        try:
            rec = st.create(t, body.get('properties'))
        except (ApiError, PropError) as e:
            raise _write_error(app, e)
        for tt, tid, types in assocs:
            st.associate(t, rec.id, tt, tid, types)
        r = st.render(t, rec, _all_names(t, rec))
    return Response(201, r)


def update_object(app, req, t, rid):
    body = _json_obj(req)
    st = app.store
    with st.lock:
        rec = _lookup(app, t, rid, req.q('idProperty'))
        try:
            st.update(t, rec, body.get('properties'))
        except (ApiError, PropError) as e:
            raise _write_error(app, e)
        r = st.render(t, rec, _all_names(t, rec))
    return Response(200, r)


def archive_object(app, req, t, rid):
    st = app.store
    with st.lock:
        rec = st.get(t, rid)
        if rec is not None:
            st.archive(t, rec)
    return Response(204)


def batch_read(app, req, t):
    body = _json_obj(req)
    hist = _str_list(body.get('propertiesWithHistory'), 'propertiesWithHistory')
    cap = HISTORY_MAX if hist else BATCH_MAX
    inputs = _inputs(body, cap)
    names = _str_list(body.get('properties'), 'properties') or None
    idp = body.get('idProperty')
    archived = _bool_param(req, 'archived')
    started = _now_iso()
    st = app.store
    results = []
    missing = []
    seen = set()
    with st.lock:
        for inp in inputs:
            rid = inp.get('id')
            if rid is None:
                raise validation_error('Invalid input JSON on line 1, column 1: each '
                                       'input needs an `id`')
            rid = str(rid)
            try:
                rec = st.find_by(t, idp, rid, archived)
            except ApiError:
                raise validation_error('Unable to perform lookup by non-unique %s '
                                       'property %s in portal ID %d'
                                       % (S.TYPE_ID[t], idp, st.portal_id))
            if rec is None:
                if rid not in missing:
                    missing.append(rid)
                continue
            if rec.id in seen:
                continue
            seen.add(rec.id)
            results.append(st.render(t, rec, names, with_history=hist))
    errors = [_object_not_found_error(t, missing)] if missing else []
    return Response(207 if errors else 200, _batch_body(results, errors, started))


def _has_trace(inputs):
    return any(i.get('objectWriteTraceId') is not None for i in inputs)


def batch_create(app, req, t):
    body = _json_obj(req)
    inputs = _inputs(body, BATCH_MAX)
    partial = _has_trace(inputs)
    started = _now_iso()
    st = app.store
    with st.lock:
        prepared = []
        errors = []
        batch_emails = {}
        if t == 'line_items' and st.line_item_dedup:
            # HubSpot merges identical line-item inputs of one batch
            seen_inputs = set()
            unique = []
            for inp in inputs:
                key = dumps(inp)
                if key not in seen_inputs:
                    seen_inputs.add(key)
                    unique.append(inp)
            inputs = unique
        for idx, inp in enumerate(inputs):
            try:
                assocs = _parse_create_assocs(app, t, inp.get('associations'))
                _check_required_assocs(t, assocs)
                ch = st.prepare(t, inp.get('properties'), None)
                st.unique_conflict(t, ch, None)
                if t == 'contacts' and ch.get('email'):
                    low = ch['email'].lower()
                    other = st.emails.get(low)
                    if other is not None:
                        raise conflict_error(other)
                    if low in batch_emails:
                        raise ApiError(409, 'Duplicate input: email %s appears more than '
                                       'once in this batch (inputs %d and %d).'
                                       % (ch['email'], batch_emails[low], idx),
                                       'CONFLICT')
                    batch_emails[low] = idx
                prepared.append((inp, ch, assocs))
            except (ApiError, PropError) as e:
                if not partial:
                    raise _write_error(app, e)
                errors.append(_input_error(app, e, inp.get('objectWriteTraceId')))
        results = []
        for inp, ch, assocs in prepared:
            rec = st.create(t, None, prepared=ch)
            for tt, tid, types in assocs:
                st.associate(t, rec.id, tt, tid, types)
            r = st.render(t, rec, _all_names(t, rec))
            if inp.get('objectWriteTraceId') is not None:
                r['objectWriteTraceId'] = str(inp['objectWriteTraceId'])
            results.append(r)
    return Response(207 if errors else 201, _batch_body(results, errors, started))


def _unique_prop(t, prop):
    p = S.PROPERTIES[t].get(prop) if isinstance(prop, str) else None
    return p is not None and bool(p.get('hasUniqueValue')) and S.is_custom(t)


def _non_unique(app, t, prop):
    return validation_error('Unable to perform update/upsert by non-unique %s property %s '
                            'in portal ID %d' % (S.TYPE_ID[t], prop, app.store.portal_id))


def batch_update(app, req, t):
    body = _json_obj(req)
    inputs = _inputs(body, BATCH_MAX)
    top_idp = body.get('idProperty')
    partial = _has_trace(inputs)
    started = _now_iso()
    st = app.store
    seen = {}
    dups = []
    for inp in inputs:
        idp = inp.get('idProperty', top_idp)
        if idp not in (None, ''):
            # HubSpot: only record ids work here, even hs_object_id and email
            # are "non-unique" (use batch/upsert for email)
            raise _non_unique(app, t, idp)
        rid = inp.get('id')
        if rid is None:
            raise validation_error('Invalid input JSON on line 1, column 1: each input '
                                   'needs an `id`')
        if str(rid) in seen and str(rid) not in dups:
            dups.append(str(rid))
        seen[str(rid)] = 1
    if dups:
        raise validation_error('Duplicate IDs found in batch input: [%s]. IDs must be '
                               'unique' % ', '.join(dups))
    with st.lock:
        todo = []
        missing = []
        errors = []
        for inp in inputs:
            rid = str(inp['id'])
            rec = st.get(t, rid)
            if rec is None:
                missing.append(rid)
                continue
            try:
                ch = st.prepare(t, inp.get('properties'), rec)
                if t == 'contacts' and ch.get('email'):
                    other = st.emails.get(ch['email'].lower())
                    if other is not None and other != rec.id:
                        raise conflict_error(other)
                todo.append((inp, rec, ch))
            except (ApiError, PropError) as e:
                if not partial:
                    raise _write_error(app, e)
                errors.append(_input_error(app, e, inp.get('objectWriteTraceId')))
        results = []
        for inp, rec, ch in todo:
            st.update(t, rec, None, prepared=ch)
            r = st.render(t, rec, _all_names(t, rec))
            if inp.get('objectWriteTraceId') is not None:
                r['objectWriteTraceId'] = str(inp['objectWriteTraceId'])
            results.append(r)
    if missing:
        errors.insert(0, _object_not_found_error(t, missing))
    return Response(207 if errors else 200, _batch_body(results, errors, started))


def batch_upsert(app, req, t):
    body = _json_obj(req)
    inputs = _inputs(body, BATCH_MAX)
    top_idp = body.get('idProperty')
    partial = _has_trace(inputs)
    started = _now_iso()
    st = app.store
    for inp in inputs:
        idp = inp.get('idProperty', top_idp)
        if not (t == 'contacts' and idp == 'email') and not _unique_prop(t, idp):
            raise _non_unique(app, t, idp or 'hs_object_id')
        if not isinstance(inp.get('id'), str) or not inp['id']:
            raise validation_error('Invalid input JSON on line 1, column 1: each upsert '
                                   'input needs an `id` (the email)')
    with st.lock:
        results = []
        errors = []
        # validate everything first so a failing batch changes nothing
        plan = []
        for inp in inputs:
            email = inp['id']
            idp = inp.get('idProperty', top_idp)
            rec = st.find_by(t, idp, email)
            props = dict(inp.get('properties') or {}) if isinstance(
                inp.get('properties'), dict) else inp.get('properties')
            try:
                if isinstance(props, dict) and rec is None:
                    props.setdefault(idp, email)
                ch = st.prepare(t, props, rec)
                plan.append((inp, rec, ch))
            except (ApiError, PropError) as e:
                if not partial:
                    raise _write_error(app, e)
                errors.append(_input_error(app, e, inp.get('objectWriteTraceId')))
        for inp, rec, ch in plan:
            try:
                if rec is None:
                    # an earlier input of this batch may have created it
                    rec = st.find_by(t, inp.get('idProperty', top_idp), inp['id'])
                if rec is None:
                    rec = st.create(t, None, prepared=ch)
                    new = True
                else:
                    st.update(t, rec, None, prepared=ch)
                    new = False
            except (ApiError, PropError) as e:
                if not partial:
                    raise _write_error(app, e)
                errors.append(_input_error(app, e, inp.get('objectWriteTraceId')))
                continue
            r = st.render(t, rec, _all_names(t, rec))
            r['new'] = new
            if inp.get('objectWriteTraceId') is not None:
                r['objectWriteTraceId'] = str(inp['objectWriteTraceId'])
            results.append(r)
    return Response(207 if errors else 200, _batch_body(results, errors, started))


def batch_archive(app, req, t):
    body = _json_obj(req)
    inputs = _inputs(body, BATCH_MAX)
    st = app.store
    with st.lock:
        for inp in inputs:
            rec = st.get(t, inp.get('id'))
            if rec is not None:
                st.archive(t, rec)
    return Response(204)


def merge_objects(app, req, t):
    body = _json_obj(req)
    pid, mid = body.get('primaryObjectId'), body.get('objectIdToMerge')
    if pid is None or mid is None:
        raise validation_error('Invalid input JSON on line 1, column 1: merge needs '
                               '`primaryObjectId` and `objectIdToMerge`')
    st = app.store
    with st.lock:
        primary = st.get(t, pid)
        merged = st.get(t, mid)
        if primary is None:
            raise not_found_error(pid)
        if merged is None:
            raise not_found_error(mid)
        if primary.id == merged.id:
            raise validation_error('Cannot merge %s %s with itself' % (S.SINGULAR[t], pid))
        st.merge(t, primary, merged)
        r = st.render(t, primary, _all_names(t, primary))
    return Response(200, r)


def _v3_type_id(t, tt, ident):
    """A v3 association type: numeric id or its name (note_to_contact)."""
    try:
        tid = int(ident)
    except ValueError:
        low = ident.lower()
        tid = None
        for k, d in S.ASSOC_TYPES.items():
            if d[0] == t and d[1] == tt and d[4].lower() == low:
                tid = k
                break
    d = S.ASSOC_TYPES.get(tid)
    if d is None or d[0] != t or d[1] != tt:
        raise validation_error('%s is not a valid association type between %s and %s'
                               % (ident, S.SINGULAR[t], S.SINGULAR[tt]),
                               sub_category='crm.associations.INVALID_ASSOCIATION_TYPE')
    return tid


def v3_assoc_list(app, req, t, fid, tt):
    limit = _int_param(req, 'limit', 500, 1, 500)
    after = req.q('after')
    start_after = None
    if after:
        start_after = decode_cursor(after)
        if start_after is None:
            raise validation_error('Invalid `after` paging cursor: %s' % after)
    st = app.store
    with st.lock:
        rec = _lookup(app, t, fid, None)
        items = st.assoc_of(t, rec.id, tt)
        page, more = _assoc_page(items, start_after, limit)
    res = [{'id': str(oid), 'type': S.ASSOC_TYPES[x][4]} for oid, types in page for x in types]
    body = {'results': res}
    if more and page:
        cur = encode_cursor(page[-1][0])
        body['paging'] = {'next': {'after': cur, 'link': _link(req, cur)}}
    return Response(200, body)


def v3_assoc_put(app, req, t, fid, tt, tid, ident):
    st = app.store
    with st.lock:
        typ = _v3_type_id(t, tt, ident)
        f = _lookup(app, t, fid, None)
        o = st.get(tt, tid)
        if o is None:
            raise not_found_error(tid)
        st.associate(t, f.id, tt, o.id, [typ])
        r = st.render(t, f, None)
        _embed_assoc(app, t, f, [tt], r, req)
    return Response(200, r)


def v3_assoc_delete(app, req, t, fid, tt, tid, ident):
    st = app.store
    with st.lock:
        typ = _v3_type_id(t, tt, ident)
        try:
            st.unassociate(t, int(fid), tt, int(tid), [typ])
        except ValueError:
            pass
    return Response(204)


def search_objects(app, req, t):
    body = req.json() if req.body else {}
    cfg = app.cfg
    caps = searchmod.Caps(cfg.search_max_groups, cfg.search_max_filters_per_group,
                          cfg.search_max_filters, results=cfg.search_cap)
    parsed = searchmod.parse_request(t, body, caps)
    with app.store.lock:
        out = searchmod.execute(app.store, t, parsed)
    return Response(200, out)


# ---------------------------------------------------------------- properties etc.


def list_properties(app, req, t):
    if _bool_param(req, 'archived'):
        return Response(200, {'results': []})
    names = req.qlist('properties')
    res = S.PROPERTY_LIST[t]
    if names:
        res = [p for p in res if p['name'] in names]
    return Response(200, {'results': res})


def get_property(app, req, t, name):
    p = S.PROPERTIES[t].get(name)
    if p is None:
        raise ApiError(404, 'Unable to find property %s for object type %s'
                       % (name, S.TYPE_ID[t]), 'OBJECT_NOT_FOUND')
    return Response(200, p)


def _pipelines(t):
    if t not in S.PIPELINES:
        raise validation_error('Pipelines are not supported for object type %s' % t)
    return S.PIPELINES[t]


def list_pipelines(app, req, t):
    return Response(200, {'results': _pipelines(t)})


def _pipeline(t, pid):
    for p in _pipelines(t):
        if p['id'] == pid:
            return p
    raise ApiError(404, 'Unable to find pipeline %s for object type %s'
                   % (pid, S.TYPE_ID[t]), 'OBJECT_NOT_FOUND')


def get_pipeline(app, req, t, pid):
    return Response(200, _pipeline(t, pid))


def list_stages(app, req, t, pid):
    return Response(200, {'results': _pipeline(t, pid)['stages']})


def get_stage(app, req, t, pid, sid):
    for s in _pipeline(t, pid)['stages']:
        if s['id'] == sid:
            return Response(200, s)
    raise ApiError(404, 'Unable to find stage %s in pipeline %s' % (sid, pid),
                   'OBJECT_NOT_FOUND')


def list_owners(app, req):
    limit = _int_param(req, 'limit', 100, 1, OWNERS_MAX)
    archived = _bool_param(req, 'archived')
    email = req.q('email')
    owners = [o for o in S.OWNERS if o['archived'] == archived and
              (not email or o['email'].lower() == email.lower())]
    start = 0
    after = req.q('after')
    if after:
        start = decode_cursor(after)
        if start is None:
            raise validation_error('Invalid `after` paging cursor: %s' % after)
    page = owners[start:start + limit]
    body = {'results': page}
    if start + limit < len(owners):
        cur = encode_cursor(start + limit)
        body['paging'] = {'next': {'after': cur, 'link': _link(req, cur)}}
    return Response(200, body)


def get_owner(app, req, oid):
    idp = req.q('idProperty', 'id')
    if idp not in ('id', 'userId'):
        raise validation_error('idProperty must be id or userId')
    archived = _bool_param(req, 'archived')
    for o in S.OWNERS:
        key = o['id'] if idp == 'id' else str(o['userIdIncludingInactive'])
        if key == oid and o['archived'] == archived:
            return Response(200, o)
    raise ApiError(404, 'Owner %s not found' % oid, 'OBJECT_NOT_FOUND',
                   context={'id': [oid]})


def account_info(app, req):
    return Response(200, {
        'portalId': app.cfg.portal_id, 'accountType': 'STANDARD',
        'timeZone': 'US/Eastern', 'companyCurrency': 'USD',
        'additionalCurrencies': [], 'utcOffset': '-05:00',
        'utcOffsetMilliseconds': -18000000, 'uiDomain': 'app.hubspot.com',
        'dataHostingLocation': 'na1'})


# ---------------------------------------------------------------- associations v4


def _assoc_obj(app, t, rid, which='from'):
    rec = app.store.get(t, rid)
    if rec is None:
        raise validation_error('%s %s is not valid: the %s object does not exist or is '
                               'archived' % (S.SINGULAR[t].capitalize(), rid, which),
                               sub_category='crm.associations.INVALID_OBJECT_IDS',
                               context={'%sObjectId' % which: [str(rid)]})
    return rec


def _spec_out(tid):
    return S.assoc_spec(tid)


def assoc_put_default(app, req, t, fid, tt, tid):
    st = app.store
    with st.lock:
        unl, inv = _default_types(t, tt)
        f = _assoc_obj(app, t, fid)
        o = _assoc_obj(app, tt, tid, 'to')
        st.associate(t, f.id, tt, o.id)
    now = _now_iso()
    return Response(200, {
        'status': 'COMPLETE',
        'results': _default_results(str(f.id), str(o.id), unl, inv),
        'startedAt': now, 'completedAt': now})


def _default_types(t, tt):
    """(unlabeled type t->tt, unlabeled type tt->t or None); 400 when the
    two types cannot be associated."""
    unl = S.UNLABELED.get((t, tt))
    if unl is None:
        raise validation_error('No association is defined from %s to %s'
                               % (S.SINGULAR[t], S.SINGULAR[tt]),
                               sub_category='crm.associations.INVALID_ASSOCIATION_TYPE')
    return unl, S.UNLABELED.get((tt, t))


def _default_results(fid, tid, unl, inv):
    out = [{'from': {'id': fid}, 'to': {'id': tid},
            'associationSpec': {'associationCategory': S.ASSOC_TYPES[unl][2],
                                'associationTypeId': unl}}]
    if inv is not None:
        out.append({'from': {'id': tid}, 'to': {'id': fid},
                    'associationSpec': {'associationCategory': S.ASSOC_TYPES[inv][2],
                                        'associationTypeId': inv}})
    return out


def _labels_between(t, fid, tt, tid, types):
    return {'fromObjectTypeId': S.TYPE_ID[t], 'fromObjectId': fid,
            'toObjectTypeId': S.TYPE_ID[tt], 'toObjectId': tid,
            'labels': [S.ASSOC_TYPES[x][3] for x in types if S.ASSOC_TYPES[x][3]]}


def assoc_put_labels(app, req, t, fid, tt, tid):
    specs = req.json()
    st = app.store
    with st.lock:
        types = st.check_types(t, tt, specs)
        f = _assoc_obj(app, t, fid)
        o = _assoc_obj(app, tt, tid, 'to')
        res = st.associate(t, f.id, tt, o.id, types, replace=True)
    return Response(201, _labels_between(t, f.id, tt, o.id, res))


def assoc_delete(app, req, t, fid, tt, tid):
    st = app.store
    with st.lock:
        try:
            st.unassociate(t, int(fid), tt, int(tid))
        except ValueError:
            pass
    return Response(204)


def _assoc_page(items, start_after, limit):
    ids = [oid for oid, _ in items]
    start = 0
    if start_after is not None:
        start = bisect.bisect_right(ids, start_after)
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, more


def _assoc_results(page):
    return [{'toObjectId': oid,
             'associationTypes': [_spec_out(x) for x in types]} for oid, types in page]


def assoc_list(app, req, t, fid, tt):
    limit = _int_param(req, 'limit', app.cfg.assoc_page_limit, 1, app.cfg.assoc_page_limit)
    after = req.q('after')
    start_after = None
    if after:
        start_after = decode_cursor(after)
        if start_after is None:
            raise validation_error('Invalid `after` paging cursor: %s' % after)
    st = app.store
    with st.lock:
        try:
            rid = int(fid)
        except ValueError:
            raise not_found_error(fid)
        items = st.assoc_of(t, rid, tt) if st.get(t, rid) else []
        page, more = _assoc_page(items, start_after, limit)
    body = {'results': _assoc_results(page)}
    if more and page:
        cur = encode_cursor(page[-1][0])
        body['paging'] = {'next': {'after': cur, 'link': _link(req, cur)}}
    return Response(200, body)


def assoc_batch_read(app, req, ft, tt):
    body = _json_obj(req)
    inputs = _inputs(body, app.cfg.assoc_read_limit, 'ids')
    started = _now_iso()
    st = app.store
    per = app.cfg.assoc_page_limit
    results = []
    errors = []
    with st.lock:
        for inp in inputs:
            rid = inp.get('id')
            try:
                rid = int(rid)
            except (TypeError, ValueError):
                raise validation_error('Invalid input JSON on line 1, column 1: each input '
                                       'needs a numeric `id`')
            after = inp.get('after')
            start_after = None
            if after:
                start_after = decode_cursor(str(after))
                if start_after is None:
                    raise validation_error('Invalid `after` paging cursor for id %d: %s'
                                           % (rid, after))
            items = st.assoc_of(ft, rid, tt) if st.get(ft, rid) else []
            page, more = _assoc_page(items, start_after, per)
            if not page:
                if app.cfg.assoc_read_empty == 'error' and start_after is None:
                    errors.append({
                        'status': 'error', 'category': 'OBJECT_NOT_FOUND',
                        'subCategory': 'crm.associations.NO_ASSOCIATIONS_FOUND',
                        'message': 'No %s is associated with %s %d.'
                                   % (tt, S.SINGULAR[ft], rid),
                        'context': {'fromObjectId': [str(rid)]}})
                continue
            r = {'from': {'id': str(rid)}, 'to': _assoc_results(page)}
            if more:
                cur = encode_cursor(page[-1][0])
                r['paging'] = {'next': {'after': cur, 'link': None}}
            results.append(r)
    return Response(207 if errors else 200, _batch_body(results, errors, started))


def _pair_ids(inp, to_many=False):
    f = inp.get('from')
    to = inp.get('to')
    if not isinstance(f, dict) or f.get('id') is None or to is None:
        raise validation_error('Invalid input JSON on line 1, column 1: each input needs '
                               '`from: {id}` and `to`')
    if to_many:
        if isinstance(to, dict):
            to = [to]
        if not isinstance(to, list) or not all(isinstance(x, dict) for x in to):
            raise validation_error('Invalid input JSON on line 1, column 1: `to` must be '
                                   'an array of {id}')
        return str(f['id']), [str(x.get('id')) for x in to]
    if not isinstance(to, dict) or to.get('id') is None:
        raise validation_error('Invalid input JSON on line 1, column 1: `to` must be {id}')
    return str(f['id']), str(to['id'])


def _assoc_invalid_ids(app, ft, fid, tt, tid):
    st = app.store
    bad = []
    if st.get(ft, fid) is None:
        bad.append(('fromObjectId', fid))
    if st.get(tt, tid) is None:
        bad.append(('toObjectId', tid))
    if not bad:
        return None
    return {'status': 'error', 'category': 'VALIDATION_ERROR',
            'subCategory': 'crm.associations.INVALID_OBJECT_IDS',
            'message': 'One or more object ids are invalid: %s'
                       % ', '.join('%s %s' % b for b in bad),
            'context': {k: [v] for k, v in bad}}


def assoc_batch_create(app, req, ft, tt):
    body = _json_obj(req)
    inputs = _inputs(body, app.cfg.assoc_batch_limit)
    started = _now_iso()
    st = app.store
    results = []
    errors = []
    with st.lock:
        plan = []
        for inp in inputs:
            fid, tid = _pair_ids(inp)
            types = st.check_types(ft, tt, inp.get('types') or [])
            plan.append((fid, tid, types))
        for fid, tid, types in plan:
            err = _assoc_invalid_ids(app, ft, fid, tt, tid)
            if err:
                errors.append(err)
                continue
            res = st.associate(ft, int(fid), tt, int(tid), types)
            results.append(_labels_between(ft, int(fid), tt, int(tid), res))
    return Response(207 if errors else 201, _batch_body(results, errors, started))


def assoc_batch_default(app, req, ft, tt):
    body = _json_obj(req)
    inputs = _inputs(body, app.cfg.assoc_batch_limit)
    started = _now_iso()
    st = app.store
    unl, inv = _default_types(ft, tt)
    results = []
    errors = []
    with st.lock:
        pairs = [_pair_ids(inp) for inp in inputs]
        for fid, tid in pairs:
            err = _assoc_invalid_ids(app, ft, fid, tt, tid)
            if err:
                errors.append(err)
                continue
            st.associate(ft, int(fid), tt, int(tid))
            results += _default_results(fid, tid, unl, inv)
    return Response(207 if errors else 200, _batch_body(results, errors, started))


def assoc_batch_archive(app, req, ft, tt):
    body = _json_obj(req)
    inputs = _inputs(body, app.cfg.assoc_batch_limit)
    st = app.store
    with st.lock:
        plan = [_pair_ids(inp, to_many=True) for inp in inputs]
        for fid, tids in plan:
            for tid in tids:
                try:
                    st.unassociate(ft, int(fid), tt, int(tid))
                except ValueError:
                    pass
    return Response(204)


def assoc_batch_labels_archive(app, req, ft, tt):
    body = _json_obj(req)
    inputs = _inputs(body, app.cfg.assoc_batch_limit)
    st = app.store
    with st.lock:
        plan = []
        for inp in inputs:
            fid, tid = _pair_ids(inp)
            plan.append((fid, tid, st.check_types(ft, tt, inp.get('types') or [])))
        for fid, tid, types in plan:
            try:
                st.unassociate(ft, int(fid), tt, int(tid), types)
            except ValueError:
                pass
    return Response(204)


def assoc_labels(app, req, ft, tt):
    res = [S.assoc_spec(tid) for tid, d in sorted(S.ASSOC_TYPES.items())
           if d[0] == ft and d[1] == tt]
    return Response(200, {'results': res})


# ---------------------------------------------------------------- oauth


def _oauth_error(status, message):
    return Response(400, {'status': status, 'message': message,
                          'correlationId': new_correlation_id()})


def oauth_token(app, req):
    try:
        form = urllib.parse.parse_qs(req.body.decode('utf-8'), keep_blank_values=True)
    except UnicodeDecodeError:
        form = {}
    f = {k: v[-1] for k, v in form.items()}
    cfg = app.cfg
    grant = f.get('grant_type')
    if grant not in ('refresh_token', 'authorization_code'):
        return _oauth_error('BAD_GRANT_TYPE', 'missing or unsupported grant_type; this '
                            'endpoint takes application/x-www-form-urlencoded '
                            'grant_type=refresh_token or authorization_code')
    if f.get('client_id') != cfg.client_id:
        return _oauth_error('BAD_CLIENT_ID', 'missing or unknown client id')
    if f.get('client_secret') != cfg.client_secret:
        return _oauth_error('BAD_CLIENT_SECRET', 'missing or invalid client secret')
    if grant == 'refresh_token':
        if f.get('refresh_token') != cfg.refresh_token:
            return _oauth_error('BAD_REFRESH_TOKEN', 'missing or unknown refresh token')
    else:
        if f.get('code') != cfg.auth_code:
            return _oauth_error('BAD_AUTH_CODE', 'missing or unknown auth code')
    tok = app.tokens.issue(cfg.token_expiry)
    scopes = ['crm.objects.contacts.read', 'crm.objects.contacts.write',
              'crm.objects.companies.read', 'crm.objects.companies.write',
              'crm.objects.deals.read', 'crm.objects.deals.write', 'tickets',
              'crm.objects.owners.read', 'oauth'] if cfg.scopes is None else sorted(cfg.scopes)
    return Response(200, {'token_type': 'bearer', 'refresh_token': cfg.refresh_token,
                          'access_token': tok, 'expires_in': cfg.token_expiry,
                          'hub_id': cfg.portal_id, 'scopes': scopes})


def oauth_token_info(app, req, tok):
    exp = app.tokens.lookup(tok)
    if exp is None or exp <= time.time():
        return Response(404, {'status': 'error', 'message': 'Token not found or expired',
                              'correlationId': new_correlation_id(),
                              'category': 'OBJECT_NOT_FOUND'})
    return Response(200, {'token': tok, 'user': 'sandbox-user@hubfs-sandbox.test',
                          'hub_domain': 'hubfs-sandbox.test', 'hub_id': app.cfg.portal_id,
                          'app_id': 1234567, 'expires_in': int(exp - time.time()),
                          'user_id': 9100001, 'token_type': 'access',
                          'scopes': _token_scopes(app, tok)})


def _token_scopes(app, tok):
    sc = app.tokens.scopes(tok)
    if sc is None:
        sc = app.cfg.scopes
    return ['crm.objects.contacts.read', 'oauth'] if sc is None else sorted(sc)
