"""CRM search (§3): request validation, filter compilation, sort, paging.

The caller holds the store lock while running `execute`.
"""

import bisect
import fnmatch
import functools
import math
import re
import time

from . import schema as S
from .util import parse_time_value, num_key, parse_iso, validation_error

OPERATORS = ('EQ', 'NEQ', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN', 'IN', 'NOT_IN',
             'HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'CONTAINS_TOKEN', 'NOT_CONTAINS_TOKEN')
NEGATIVE = ('NEQ', 'NOT_IN', 'NOT_CONTAINS_TOKEN')
MAX_RESULTS = 10000
_TOKEN_SPLIT = re.compile(r'[\W_]+', re.UNICODE)


class Caps(object):
    def __init__(self, groups=5, per_group=6, total=18, limit=200, query_len=3000,
                 results=MAX_RESULTS):
        self.results = results      # a query's results that paging reaches
        self.groups = groups
        self.per_group = per_group
        self.total = total
        self.limit = limit
        self.query_len = query_len


@functools.lru_cache(maxsize=1 << 18)
def _stored_time(v):
    r = parse_iso(v)
    return r[0] if r else None


def _key_fn(ptype):
    """Stored string -> comparable key (None when unparsable)."""
    if ptype == 'number':
        return num_key
    if ptype in ('datetime', 'date'):
        return _stored_time
    return lambda v: v.lower()


def _tokens(v):
    return [x for x in _TOKEN_SPLIT.split(v.lower()) if x]


def _contains_token(stored, needle):
    s = stored.lower()
    n = needle.lower()
    if '*' in n:
        if fnmatch.fnmatchcase(s, n):
            return True
        return any(fnmatch.fnmatchcase(w, n) for w in s.split())
    if n == s:
        return True
    nt = _tokens(n)
    if not nt:
        return False
    st = _tokens(s)
    k = len(nt)
    for i in range(len(st) - k + 1):
        if st[i:i + k] == nt:
            return True
    return False


def _filter_value(f, key, field='value'):
    v = f.get(field)
    if v is None or isinstance(v, (dict, list)):
        raise validation_error('Filter on %s with operator %s requires a `%s`'
                               % (f.get('propertyName'), f.get('operator'), field))
    if isinstance(v, bool):
        v = 'true' if v else 'false'
    return str(v)


def compile_filter(t, f):
    """One filter -> predicate(getter) where getter(name) -> str or None."""
    if not isinstance(f, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: filters must '
                               'be objects')
    name = f.get('propertyName')
    op = f.get('operator', 'EQ')
    if not isinstance(name, str) or not name:
        raise validation_error('Filter is missing propertyName')
    if op not in OPERATORS:
        raise validation_error('Invalid input JSON on line 1, column 1: Cannot '
                               'deserialize value of type `com.hubspot.inbounddb.'
                               'publicobject.core.v2.FilterOperator` from String '
                               '"%s": not one of the values accepted for Enum class: '
                               '[%s]' % (op, ', '.join(OPERATORS)))
    if name.startswith('associations.'):
        other = S.canon_type(name.split('.', 1)[1])
        if other is None or op not in ('EQ', 'IN', 'NEQ', 'NOT_IN'):
            raise validation_error('Unsupported association filter %s %s' % (name, op))
        if S.is_custom(t) or S.is_custom(other):
            raise validation_error('Association filters (%s) are not supported for custom '
                                   'objects' % name)
        if op in ('IN', 'NOT_IN'):
            vals = f.get('values')
            if not isinstance(vals, list) or not vals:
                raise validation_error('Operator %s requires `values`' % op)
            wanted = set()
            for v in vals:
                try:
                    wanted.add(int(v))
                except (TypeError, ValueError):
                    raise validation_error('%r is not a valid object id' % (v,))
        else:
            try:
                wanted = {int(_filter_value(f, None))}
            except ValueError:
                raise validation_error('%r is not a valid object id' % (f.get('value'),))
        neg = op in NEGATIVE

        def assoc_pred(get, rec_assoc, other=other, wanted=wanted, neg=neg):
            ids = rec_assoc(other)
            hit = any(i in wanted for i in ids)
            return not hit if neg else hit
        assoc_pred.assoc = True
        return assoc_pred
    pdef = S.PROPERTIES[t].get(name)
    if pdef is None:
        raise validation_error('Property "%s" does not exist' % name)
    ptype = pdef['type']
    enum = ptype == 'enumeration'
    multi = pdef['fieldType'] == 'checkbox'
    key = _key_fn(ptype)

    if op in ('HAS_PROPERTY', 'NOT_HAS_PROPERTY'):
        if f.get('value') is not None or f.get('values'):
            raise validation_error('Operator %s does not take a value' % op)
        want = op == 'HAS_PROPERTY'
        return lambda get: (get(name) is not None) == want

    def parse_cmp(v):
        if ptype == 'number':
            k = num_key(v)
        elif ptype in ('datetime', 'date'):
            k = parse_time_value(v)
        else:
            return v if enum else v.lower()
        if k is None:
            raise validation_error('%s is not a valid %s value for property %s'
                                   % (v, ptype, name))
        return k

    def vals_of(stored):
        if multi:
            return stored.split(';')
        return (stored,)

    if op in ('EQ', 'NEQ'):
        target = parse_cmp(_filter_value(f, key))
        neg = op == 'NEQ'
        if ptype in ('number', 'datetime', 'date'):
            def pred(get):
                s = get(name)
                if s is None:
                    return neg
                return (key(s) == target) != neg
            if not neg:
                _bounds(pred, t, name, ptype, 'EQ', target, target)
        elif enum:
            def pred(get):
                s = get(name)
                if s is None:
                    return neg
                return (target in vals_of(s)) != neg
        else:
            def pred(get):
                s = get(name)
                if s is None:
                    return neg
                return (s.lower() == target) != neg
        return pred

    if op in ('LT', 'LTE', 'GT', 'GTE', 'BETWEEN'):
        lo = parse_cmp(_filter_value(f, key))
        hi = parse_cmp(_filter_value(f, key, 'highValue')) if op == 'BETWEEN' else None
        if enum and ptype == 'enumeration':
            k2 = lambda v: v  # noqa: E731
        else:
            k2 = key
        cmpf = {'LT': lambda a: a < lo, 'LTE': lambda a: a <= lo,
                'GT': lambda a: a > lo, 'GTE': lambda a: a >= lo,
                'BETWEEN': lambda a: lo <= a <= hi}[op]

        def pred(get):
            s = get(name)
            if s is None:
                return False
            a = k2(s)
            if a is None:
                return False
            try:
                return cmpf(a)
            except TypeError:
                return False
        _bounds(pred, t, name, ptype, op, lo, hi)
        return pred

    if op in ('IN', 'NOT_IN'):
        vals = f.get('values')
        if not isinstance(vals, list) or not vals:
            raise validation_error('Operator %s requires a non-empty `values` array' % op)
        neg = op == 'NOT_IN'
        if ptype in ('number', 'datetime', 'date'):
            targets = set(parse_cmp(str(v)) for v in vals)

            def pred(get):
                s = get(name)
                if s is None:
                    return neg
                return (key(s) in targets) != neg
        else:
            # enumerations match exactly; strings are matched against the
            # lowercased stored value ("values must be lowercase")
            targets = set(('true' if v else 'false') if isinstance(v, bool) else str(v)
                          for v in vals)

            def pred(get):
                s = get(name)
                if s is None:
                    return neg
                if enum:
                    hit = any(x in targets for x in vals_of(s))
                else:
                    hit = s.lower() in targets
                return hit != neg
        return pred

    # CONTAINS_TOKEN / NOT_CONTAINS_TOKEN
    needle = _filter_value(f, key)
    neg = op == 'NOT_CONTAINS_TOKEN'

    def pred(get):
        s = get(name)
        if s is None:
            return neg
        return _contains_token(s, needle) != neg
    return pred


def _bounds(pred, t, name, ptype, op, lo, hi):
    """Mark a range filter that execute() can answer without a scan:
    pred.id_bound = (op, lo, hi) on hs_object_id (a number: float keys),
    pred.mod_lower = the least modification time (ms) it lets through."""
    if name == 'hs_object_id' and ptype == 'number':
        if not any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
            pred.id_bound = (op, lo, hi)
    elif name == S.MODIFIED_PROP[t] and ptype == 'datetime' and \
            op in ('EQ', 'GT', 'GTE', 'BETWEEN') and isinstance(lo, (int, float)) and \
            math.isfinite(lo):
        pred.mod_lower = math.floor(lo)


def parse_request(t, body, caps):
    """Validate a search body -> dict of compiled pieces.  Raises ApiError."""
    if not isinstance(body, dict):
        raise validation_error('Invalid input JSON on line 1, column 1: Cannot '
                               'deserialize value of type `PublicObjectSearchRequest` '
                               'from non-object value')
    groups = body.get('filterGroups')
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise validation_error('Invalid input JSON on line 1, column 1: filterGroups '
                               'must be an array')
    if len(groups) > caps.groups:
        raise validation_error('Too many filter groups (%d). The maximum is %d.'
                               % (len(groups), caps.groups),
                               context={'maxFilterGroups': [str(caps.groups)]})
    total = 0
    compiled = []
    for g in groups:
        if not isinstance(g, dict):
            raise validation_error('Invalid input JSON on line 1, column 1: filter '
                                   'groups must be objects')
        fl = g.get('filters')
        if fl is None:
            fl = []
        if not isinstance(fl, list):
            raise validation_error('Invalid input JSON on line 1, column 1: filters '
                                   'must be an array')
        if len(fl) > caps.per_group:
            raise validation_error('Too many filters in a filter group (%d). The '
                                   'maximum is %d.' % (len(fl), caps.per_group))
        total += len(fl)
        compiled.append([compile_filter(t, f) for f in fl])
    if total > caps.total:
        raise validation_error('Too many filters in the request (%d). The maximum is '
                               '%d.' % (total, caps.total))
    query = body.get('query')
    if query is not None and not isinstance(query, str):
        raise validation_error('Invalid input JSON on line 1, column 1: query must be '
                               'a string')
    if query and len(query) > caps.query_len:
        raise validation_error('Query string is too long (%d characters). The maximum '
                               'is %d.' % (len(query), caps.query_len))
    limit = body.get('limit', 10)
    if limit is None:
        limit = 10
    if isinstance(limit, str) and limit.isdigit():
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise validation_error('Invalid input JSON on line 1, column 1: limit must be '
                               'an integer')
    if limit < 0 or limit > caps.limit:
        raise validation_error('limit must be between 0 and %d, got %d'
                               % (caps.limit, limit))
    after = body.get('after', 0)
    if after in (None, ''):
        after = 0
    try:
        after = int(after)
        if after < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise validation_error('Invalid input JSON on line 1, column 1: after must be '
                               'an integer offset, got %r' % (body.get('after'),))
    if after >= caps.results:
        raise validation_error('The search API returns at most %d results; requested '
                               'offset %d is past that limit. Narrow the query (e.g. '
                               'by a date or id range) instead of paging further.'
                               % (caps.results, after))
    sorts = body.get('sorts')
    if sorts is None:
        sorts = []
    if not isinstance(sorts, list):
        raise validation_error('Invalid input JSON on line 1, column 1: sorts must be '
                               'an array')
    sort = None
    if sorts:
        s = sorts[0]
        if isinstance(s, str):
            desc = s.startswith('-')
            pname = s[1:] if desc else s
        elif isinstance(s, dict):
            pname = s.get('propertyName')
            d = s.get('direction', 'ASCENDING')
            if d not in ('ASCENDING', 'DESCENDING'):
                raise validation_error('Invalid sort direction %r' % (d,))
            desc = d == 'DESCENDING'
        else:
            raise validation_error('Invalid input JSON on line 1, column 1: sorts must '
                                   'be strings or objects')
        if not isinstance(pname, str) or pname not in S.PROPERTIES[t]:
            raise validation_error('Property "%s" does not exist (sort)' % (pname,))
        sort = (pname, desc)
    props = body.get('properties')
    if props is not None:
        if not isinstance(props, list) or not all(isinstance(p, str) for p in props):
            raise validation_error('Invalid input JSON on line 1, column 1: properties '
                                   'must be an array of strings')
    return {'groups': compiled, 'query': query, 'limit': limit, 'after': after,
            'sort': sort, 'properties': props, 'cap': caps.results}


def execute(store, t, req, now=None, fast=True):
    """Run a parsed search under the store lock -> response dict.  now: the
    monotonic time whose index it sees (default: now); fast=False scans every
    record even where an index answers the same (the reference the tests
    hold the fast paths to)."""
    if now is None:
        now = time.monotonic()
    if fast:
        out = _id_window(store, t, req, now)
        if out is not None:
            return out
    tab = store.tables[t]
    groups = req['groups']
    qterms = [q for q in (req['query'] or '').lower().split() if q]
    qprops = S.QUERY_PROPS[t]
    matches = []
    for rid in _candidates(store, t, groups) if fast else store.active[t]:
        rec = tab[rid]
        view = store.search_view(rec, now)
        if view is None or view.archived:
            continue
        props = view.props

        def get(name, rec=rec, props=props):
            return store.value(t, rec, name, props)

        if groups:
            ok = False
            for g in groups:
                good = True
                for pred in g:
                    if getattr(pred, 'assoc', False):
                        res = pred(get, lambda other, rid=rid: [
                            o for o, _ in store.assoc_of(t, rid, other)])
                    else:
                        res = pred(get)
                    if not res:
                        good = False
                        break
                if good:
                    ok = True
                    break
            if not ok:
                continue
        if qterms:
            hay = [(get(p) or '').lower() for p in qprops]
            if not all(any(q in h for h in hay) for q in qterms):
                continue
        matches.append((rec, view))
    if req['sort']:
        pname, desc = req['sort']
        key = _key_fn(S.PROPERTIES[t][pname]['type'])
        present = []
        missing = []
        for m in matches:
            v = store.value(t, m[0], pname, m[1].props)
            k = key(v) if v is not None else None
            if k is None:
                missing.append(m)
            else:
                present.append((k, m))
        present.sort(key=lambda x: x[0], reverse=desc)
        matches = [m for _, m in present] + missing
    total = len(matches)
    after = req['after']
    limit = req['limit']
    end = min(after + limit, total, req['cap'])
    page = matches[after:end] if after < end else []
    return _respond(store, t, req, page, total, end)


def _respond(store, t, req, page, total, end):
    names = req['properties']
    if names is None:
        names = S.DEFAULT_GET[t]
    results = []
    for rec, view in page:
        snap = None if view is rec else view
        results.append(store.render(t, rec, names, search=True, snap=snap))
    out = {'total': total, 'results': results}
    if end < total and req['limit'] > 0:
        out['paging'] = {'next': {'after': str(end)}}
    return out


def _candidates(store, t, groups):
    """The active ids to test, ascending: all of them, or when every filter
    group bounds the modification time from below (a refresh: what changed
    since), the few the store's modification log names."""
    if groups:
        lows = []
        for g in groups:
            lo = [p.mod_lower for p in g if hasattr(p, 'mod_lower')]
            if not lo:
                break
            lows.append(max(lo))
        else:
            ids = store.modified_since(t, min(lows))
            if ids is not None:
                return ids
    return store.active[t]


def _id_window(store, t, req, now):
    """A search on nothing but an hs_object_id range (one filter group of
    EQ/LT/LTE/GT/GTE/BETWEEN filters on it, or none), no query, sorted on
    hs_object_id or not at all (the scan's order is then the id order too):
    answered from the sorted id list in O(log N + after + limit + the
    records written within index_delay), the same page, total and paging as
    the scan.  None for any other search."""
    groups = req['groups']
    if len(groups) > 1 or (req['query'] or '').split():
        return None
    if req['sort'] is not None and req['sort'][0] != 'hs_object_id':
        return None
    bounds = []
    for pred in groups[0] if groups else ():
        b = getattr(pred, 'id_bound', None)
        if b is None:
            return None
        bounds.append(b)
    ids = store.active[t]
    lo, hi = 0, len(ids)
    for op, v, v2 in bounds:
        if op in ('GT',):
            lo = max(lo, bisect.bisect_right(ids, v, key=float))
        if op in ('GTE', 'EQ', 'BETWEEN'):
            lo = max(lo, bisect.bisect_left(ids, v, key=float))
        if op in ('LT',):
            hi = min(hi, bisect.bisect_left(ids, v, key=float))
        if op in ('LTE', 'EQ'):
            hi = min(hi, bisect.bisect_right(ids, v, key=float))
        if op == 'BETWEEN':
            hi = min(hi, bisect.bisect_right(ids, v2, key=float))
    views = store.search_pending(t, now)
    hidden = set()
    for rid, view in views.items():
        if view is None or view.archived:
            i = bisect.bisect_left(ids, rid)
            if lo <= i < hi:
                hidden.add(rid)
    total = max(hi - lo, 0) - len(hidden)
    after = req['after']
    end = min(after + req['limit'], total, req['cap'])
    page = []
    if after < end:
        desc = req['sort'] is not None and req['sort'][1]
        step = -1 if desc else 1
        i = hi - 1 if desc else lo
        skip = after
        tab = store.tables[t]
        while len(page) < end - after:
            rid = ids[i]
            i += step
            if rid in hidden:
                continue
            if skip:
                skip -= 1
                continue
            rec = tab[rid]
            page.append((rec, views.get(rid, rec)))
    return _respond(store, t, req, page, total, end)
