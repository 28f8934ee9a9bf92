"""Portal-definition routes: custom object schemas (both base paths),
v4 association label definitions (both path families), object-library
enablement and the limits API.  Each handler takes the store lock: schema
and label changes mutate the shared type registry.
"""

import re

from . import catalog as C
from . import schema as S
from .server import Response
from .util import ApiError, iso_ms, validation_error

import time

NAME_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
PROP_TYPES = {'string': 'text', 'number': 'number', 'date': 'date', 'datetime': 'date',
              'enumeration': 'select', 'bool': 'booleancheckbox'}


def _now():
    return iso_ms(time.time() * 1000)


def _flag(req, name, default=True):
    v = req.q(name)
    if v is None or v == '':
        return default
    return v.lower() == 'true'


# ---------------------------------------------------------------- schemas


def _schema_type(x):
    """objectTypeId or fullyQualifiedName of an active custom object -> type."""
    t = S.canon_type(x)
    if t is None or not S.is_custom(t):
        raise ApiError(404, 'Unable to find object type %s. Custom object types are '
                       'addressed by objectTypeId (2-…) or fullyQualifiedName '
                       '(p{portalId}_{name}).' % x, 'OBJECT_NOT_FOUND',
                       context={'objectType': [x]})
    return t


def schema_dict(t, props=True, assocs=True, audit=True):
    info = S.INFO[t]
    d = dict(info.schema)
    d['labels'] = dict(d['labels'])
    if props:
        d['properties'] = S.PROPERTY_LIST[t]
    else:
        d['properties'] = []
    d['associations'] = list(C.PORTAL.assoc_defs.get(t, [])) if assocs else []
    if not audit:
        for k in ('createdByUserId', 'updatedByUserId'):
            d.pop(k, None)
    return d


def _out(req, t):
    return schema_dict(t, _flag(req, 'includePropertyDefinitions'),
                       _flag(req, 'includeAssociationDefinitions'),
                       _flag(req, 'includeAuditMetadata'))


def schema_list(app, req):
    with app.store.lock:
        if _flag(req, 'archived', False):
            return Response(200, {'results': [dict(s) for s in C.PORTAL.archived_schemas]})
        return Response(200, {'results': [_out(req, t) for t in C.PORTAL.custom]})


def schema_get(app, req, x):
    with app.store.lock:
        return Response(200, _out(req, _schema_type(x)))


def schema_batch_read(app, req):
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get('inputs'), list):
        raise validation_error('Invalid input JSON on line 1, column 1: missing required '
                               'field `inputs`')
    results, missing = [], []
    with app.store.lock:
        for x in body['inputs']:
            x = x.get('objectType', x.get('id')) if isinstance(x, dict) else x
            t = S.canon_type(str(x))
            if t is None or not S.is_custom(t):
                missing.append(str(x))
                continue
            results.append(schema_dict(t, body.get('includePropertyDefinitions', True),
                                       body.get('includeAssociationDefinitions', True),
                                       body.get('includeAuditMetadata', True)))
    b = {'status': 'COMPLETE', 'results': results, 'startedAt': _now(),
         'completedAt': _now()}
    if missing:
        b['numErrors'] = 1
        b['errors'] = [{'status': 'error', 'category': 'OBJECT_NOT_FOUND',
                        'message': 'Unable to find object types: %s' % ', '.join(missing),
                        'context': {'objectTypes': missing}}]
    return Response(207 if missing else 200, b)


def _prop_from_egg(p, when):
    if not isinstance(p, dict) or not isinstance(p.get('name'), str) or \
            not isinstance(p.get('label'), str):
        raise validation_error('Each property needs a `name` and a `label`')
    name = p['name']
    if not NAME_RE.match(name) or name.startswith('hs_'):
        raise validation_error('Invalid property name %r: use letters, digits and '
                               'underscores, start with a letter, no hs_ prefix' % name)
    ptype = p.get('type') or 'string'
    if ptype not in PROP_TYPES:
        raise validation_error('Invalid property type %r for %s (one of %s)'
                               % (ptype, name, ', '.join(sorted(PROP_TYPES))))
    opts = ()
    if ptype == 'enumeration':
        raw = p.get('options')
        if not isinstance(raw, list) or not raw:
            raise validation_error('Enumeration property %s needs options' % name)
        try:
            opts = tuple((str(o['value']), str(o['label'])) for o in raw)
        except (TypeError, KeyError):
            raise validation_error('Options of %s need `label` and `value`' % name)
    field = p.get('fieldType') or PROP_TYPES[ptype]
    prop = C._cprop(name, p['label'], ptype, field, opts, bool(p.get('hasUniqueValue')),
                    p.get('groupName'))
    if p.get('description'):
        prop['description'] = str(p['description'])
    prop['createdAt'] = prop['updatedAt'] = when
    return prop


def _check_names(names, props, what):
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise validation_error('`%s` must be an array of property names' % what)
    bad = [x for x in names if x not in props]
    if bad:
        raise validation_error('%s refers to properties that do not exist: %s'
                               % (what, ', '.join(bad)))
    return names


def schema_create(app, req):
    egg = req.json()
    if not isinstance(egg, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: expected an object')
    for k in ('name', 'labels', 'properties', 'requiredProperties', 'associatedObjects'):
        if k not in egg:
            raise validation_error('Invalid input JSON on line 1, column 1: missing '
                                   'required field `%s`' % k)
    name = egg['name']
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise validation_error('Invalid object name %r: letters, digits and underscores, '
                               'starting with a letter' % (name,))
    labels = egg['labels']
    if not isinstance(labels, dict) or not all(isinstance(labels.get(k), str) and labels[k]
                                               for k in ('singular', 'plural')):
        raise validation_error('`labels` needs `singular` and `plural`')
    if not isinstance(egg['properties'], list):
        raise validation_error('`properties` must be an array')
    st = app.store
    with st.lock:
        taken = [S.INFO[t].schema['name'] for t in C.PORTAL.custom] + \
            [s['name'] for s in C.PORTAL.archived_schemas]
        if name in taken:
            raise ApiError(409, 'An object type with name %s already exists. Existing '
                           'objectTypeId: %s' % (name, _type_id_of(name)), 'CONFLICT')
        if len(C.PORTAL.custom) >= app.cfg.custom_object_limit:
            raise validation_error('This account has reached its limit of %d custom '
                                   'object types' % app.cfg.custom_object_limit)
        when = _now()
        props = [_prop_from_egg(p, when) for p in egg['properties']]
        pnames = {p['name'] for p in props}
        if len(pnames) != len(props):
            raise validation_error('Duplicate property names')
        req_p = _check_names(egg['requiredProperties'], pnames, 'requiredProperties')
        search_p = _check_names(egg.get('searchableProperties'), pnames,
                                'searchableProperties')
        sec = _check_names(egg.get('secondaryDisplayProperties'), pnames,
                           'secondaryDisplayProperties')
        prim = egg.get('primaryDisplayProperty')
        if prim is not None:
            _check_names([prim], pnames, 'primaryDisplayProperty')
        assoc = egg['associatedObjects']
        if not isinstance(assoc, list):
            raise validation_error('`associatedObjects` must be an array')
        for x in assoc:
            if C._resolve(x) is None:
                raise validation_error('Unknown object type in associatedObjects: %s' % (x,))
        t = C.create_schema({'name': name, 'labels': labels, 'properties': props,
                             'requiredProperties': req_p, 'searchableProperties': search_p,
                             'secondaryDisplayProperties': sec,
                             'primaryDisplayProperty': prim,
                             'description': egg.get('description'),
                             'allowsSensitiveProperties': egg.get('allowsSensitiveProperties'),
                             'associatedObjects': assoc}, when=when)
        st.ensure_type(t)
        return Response(201, schema_dict(t))


def _type_id_of(name):
    for t in C.PORTAL.custom:
        if S.INFO[t].schema['name'] == name:
            return S.TYPE_ID[t]
    for s in C.PORTAL.archived_schemas:
        if s['name'] == name:
            return s['objectTypeId']
    return None


def schema_patch(app, req, x):
    body = req.json()
    if not isinstance(body, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: expected an object')
    st = app.store
    with st.lock:
        t = _schema_type(x)
        info = S.INFO[t]
        sch = info.schema
        if 'name' in body and body['name'] != sch['name']:
            raise validation_error('The name of an object type cannot be changed')
        pnames = set(S.PROPERTIES[t])
        new = {}
        if 'labels' in body:
            lab = body['labels']
            if not isinstance(lab, dict):
                raise validation_error('`labels` must be an object')
            new['labels'] = dict(sch['labels'], **{k: str(v) for k, v in lab.items()
                                                   if k in ('singular', 'plural')})
        for k in ('requiredProperties', 'searchableProperties', 'secondaryDisplayProperties'):
            if k in body:
                new[k] = _check_names(body[k], pnames, k)
        if 'primaryDisplayProperty' in body:
            _check_names([body['primaryDisplayProperty']], pnames, 'primaryDisplayProperty')
            new['primaryDisplayProperty'] = body['primaryDisplayProperty']
        if body.get('clearDescription'):
            new['description'] = None
        elif 'description' in body:
            new['description'] = body['description']
        if 'allowsSensitiveProperties' in body:
            new['allowsSensitiveProperties'] = bool(body['allowsSensitiveProperties'])
        sch.update(new)
        sch['updatedAt'] = _now()
        if 'labels' in new:
            info.labels = (new['labels']['singular'], new['labels']['plural'])
        if 'requiredProperties' in new:
            if new['requiredProperties']:
                S.REQUIRED_ON_CREATE[t] = tuple(new['requiredProperties'])
            else:
                S.REQUIRED_ON_CREATE.pop(t, None)
        if 'searchableProperties' in new:
            S.QUERY_PROPS[t] = tuple(new['searchableProperties'])
        if 'primaryDisplayProperty' in new:
            info.display = new['primaryDisplayProperty']
        out = schema_dict(t)
        out.pop('properties')
        out.pop('associations')
        return Response(200, out)


def schema_delete(app, req, x):
    hard = _flag(req, 'archived', False)
    st = app.store
    with st.lock:
        t = S.canon_type(x)
        if t is None or not S.is_custom(t):
            # a soft-deleted schema can still be purged with archived=true
            for s in list(C.PORTAL.archived_schemas):
                if x in (s['objectTypeId'], s['fullyQualifiedName']):
                    if hard:
                        C.PORTAL.archived_schemas.remove(s)
                    return Response(204)
            _schema_type(x)
        n = st.count(t) + st.count(t, True)
        if n:
            raise validation_error('Object type %s still has %d records; delete them '
                                   'before deleting the schema' % (S.TYPE_ID[t], n),
                                   sub_category='ObjectSchemaError.RECORDS_EXIST')
        sch = schema_dict(t)
        sch['archived'] = True
        sch['updatedAt'] = _now()
        for d in list(C.PORTAL.assoc_defs.get(t, [])):
            C.remove_custom_association(t, d['id'])
        for other in C.PORTAL.assoc_defs:
            C.PORTAL.assoc_defs[other] = [d for d in C.PORTAL.assoc_defs[other]
                                          if d['toObjectTypeId'] != S.TYPE_ID[t]]
        C.PORTAL.custom.remove(t)
        C.PORTAL.assoc_defs.pop(t, None)
        S.unregister_type(t)
        st.drop_type(t)
        if not hard:
            C.PORTAL.archived_schemas.append(sch)
        return Response(204)


def schema_assoc_create(app, req, x):
    body = req.json()
    if not isinstance(body, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: expected an object')
    st = app.store
    with st.lock:
        t = _schema_type(x)
        f = C._resolve(str(body.get('fromObjectTypeId', '')))
        to = C._resolve(str(body.get('toObjectTypeId', '')))
        if f != t:
            raise validation_error('fromObjectTypeId must be %s' % S.TYPE_ID[t])
        if to is None or to in ('products', 'users'):
            raise validation_error('toObjectTypeId %r cannot be associated'
                                   % (body.get('toObjectTypeId'),))
        name = body.get('name')
        if name is not None and (not isinstance(name, str) or not NAME_RE.match(name)):
            raise validation_error('Invalid association name %r' % (name,))
        d = C.add_custom_association(t, to, name, when=_now())
        return Response(201, dict(d))


def schema_assoc_delete(app, req, x, ident):
    st = app.store
    with st.lock:
        t = _schema_type(x)
        if not C.remove_custom_association(t, ident):
            raise ApiError(404, 'No association %s on object type %s' % (ident, S.TYPE_ID[t]),
                           'OBJECT_NOT_FOUND')
        return Response(204)


# ---------------------------------------------------------------- labels


LABEL_NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


def labels_create(app, req, ft, tt):
    body = req.json()
    if not isinstance(body, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: expected an object')
    name, label, inv = body.get('name'), body.get('label'), body.get('inverseLabel')
    if not isinstance(name, str) or not LABEL_NAME_RE.match(name):
        raise validation_error('Invalid label name %r: no hyphens, must not start with a '
                               'digit' % (name,))
    if not isinstance(label, str) or not label.strip():
        raise validation_error('`label` is required')
    if inv is not None and (not isinstance(inv, str) or not inv.strip()):
        raise validation_error('`inverseLabel` must be a non-empty string')
    st = app.store
    with st.lock:
        if not C.labels_allowed(ft, tt):
            raise validation_error('Association labels are not supported between %s and %s'
                                   % (S.SINGULAR[ft], S.SINGULAR[tt]))
        if name in C.PORTAL.label_names.get((ft, tt), {}) or \
                name in C.PORTAL.label_names.get((tt, ft), {}):
            raise validation_error('A label named %s already exists between %s and %s'
                                   % (name, S.SINGULAR[ft], S.SINGULAR[tt]))
        n = len(C.user_labels(ft, tt))
        if n >= app.cfg.labels_per_pair:
            raise validation_error('The %s to %s pair already has %d labels; the maximum is %d'
                                   % (S.SINGULAR[ft], S.SINGULAR[tt], n,
                                      app.cfg.labels_per_pair),
                                   context={'maxLabels': [str(app.cfg.labels_per_pair)]})
        made = C.add_label(ft, tt, name, label, inv)
    return Response(200, {'results': [{'category': 'USER_DEFINED', 'typeId': tid,
                                        'label': lab} for tid, lab in made]})


def _user_label(ft, tt, tid):
    try:
        tid = int(tid)
    except (TypeError, ValueError):
        raise validation_error('associationTypeId must be an integer')
    d = S.ASSOC_TYPES.get(tid)
    if d is None or d[0] != ft or d[1] != tt:
        raise ApiError(404, 'No association type %s between %s and %s'
                       % (tid, S.SINGULAR[ft], S.SINGULAR[tt]), 'OBJECT_NOT_FOUND')
    if d[2] != 'USER_DEFINED' or d[3] is None:
        raise validation_error('Association type %d is %s and cannot be changed or deleted'
                               % (tid, 'HUBSPOT_DEFINED' if d[2] == 'HUBSPOT_DEFINED'
                                  else 'the unlabeled custom association'))
    return tid, d


def labels_update(app, req, ft, tt):
    body = req.json()
    if not isinstance(body, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: expected an object')
    label, inv_label = body.get('label'), body.get('inverseLabel')
    if not isinstance(label, str) or not label.strip():
        raise validation_error('`label` is required')
    st = app.store
    with st.lock:
        tid, d = _user_label(ft, tt, body.get('associationTypeId'))
        inv = d[5]
        S.ASSOC_TYPES[tid] = d[:3] + (label,) + d[4:]
        if inv is not None and inv != tid:
            di = S.ASSOC_TYPES[inv]
            if inv_label is not None:
                S.ASSOC_TYPES[inv] = di[:3] + (inv_label,) + di[4:]
            elif di[3] == d[3]:
                # an unpaired label reads the same both ways
                S.ASSOC_TYPES[inv] = di[:3] + (label,) + di[4:]
        S.rebuild_assoc_index()
    return Response(204)


def labels_delete(app, req, ft, tt, tid):
    st = app.store
    with st.lock:
        tid, d = _user_label(ft, tt, tid)
        inv = d[5]
        used = 0
        for m in st.assoc.get((ft, tt), {}).values():
            used += sum(1 for types in m.values() if tid in types)
        if used:
            raise validation_error('Label %d is in use on %d record pairs; remove it from '
                                   'them first' % (tid, used),
                                   sub_category='crm.associations.LABEL_IN_USE')
        S.ASSOC_TYPES.pop(tid, None)
        if inv is not None:
            S.ASSOC_TYPES.pop(inv, None)
        for key in ((ft, tt), (tt, ft)):
            names = C.PORTAL.label_names.get(key, {})
            for k in [k for k, v in names.items() if v in (tid, inv)]:
                del names[k]
        S.rebuild_assoc_index()
    return Response(204)


# ---------------------------------------------------------------- object library


def library_all(app, req):
    return Response(200, {'enablementByObjectTypeId': {
        tid: bool(app.cfg.object_library.get(tid, True)) for tid in sorted(C.LIBRARY)}})


def library_one(app, req, tid):
    if tid not in C.LIBRARY:
        raise ApiError(404, 'Object type %s is not an object-library type' % tid,
                       'OBJECT_NOT_FOUND', context={'objectTypeId': [tid]})
    return Response(200, {'enablement': bool(app.cfg.object_library.get(tid, True))})


# ---------------------------------------------------------------- limits


def _pct(usage, limit):
    return round(100.0 * usage / limit, 2) if limit else 0.0


def limits_records(app, req):
    st = app.store
    cfg = app.cfg
    with st.lock:
        std = []
        for t in S.ALL:
            info = S.INFO[t]
            if info.custom:
                continue
            n = st.count(t)
            std.append({'objectTypeId': info.type_id, 'singularLabel': info.labels[0],
                        'pluralLabel': info.labels[1], 'usage': n,
                        'limit': cfg.record_limit, 'percentage': _pct(n, cfg.record_limit)})
        by = []
        total = 0
        for t in C.PORTAL.custom:
            info = S.INFO[t]
            n = st.count(t)
            total += n
            by.append({'objectTypeId': info.type_id, 'singularLabel': info.labels[0],
                       'pluralLabel': info.labels[1], 'usage': n,
                       'limit': cfg.custom_record_limit,
                       'percentage': _pct(n, cfg.custom_record_limit)})
    overall = cfg.custom_record_limit * max(len(by), 1)
    return Response(200, {'hubspotDefinedObjectTypes': std, 'customObjectTypes': {
        'overallLimit': overall, 'overallUsage': total,
        'overallPercentage': _pct(total, overall), 'byObjectType': by}})


def limits_custom(app, req):
    n = len(C.PORTAL.custom)
    lim = app.cfg.custom_object_limit
    return Response(200, {'limit': lim, 'usage': n, 'percentage': _pct(n, lim)})
