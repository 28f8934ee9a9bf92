"""The sandbox's in-memory CRM: records, validation, associations and the
search-visibility history.  Thread safe: every public method takes
``self.lock``.  Nothing here knows about HTTP except the ApiError it raises.
"""

import array
import bisect
import functools
import html.parser
import json
import threading
import time

from . import schema as S
from .util import (ApiError, iso_ms, iso_date, parse_iso, parse_number,
                   normalize_number, validation_error, dumps)

MAX_STRING = 65536


class Rec(object):
    """One record.  props holds only non-empty values (strings), including
    createdate and the last-modified property; hs_object_id is computed."""
    __slots__ = ('id', 'props', 'c_ms', 'u_ms', 'archived', 'archived_ms', 'hist')

    def __init__(self, rid, props, c_ms, u_ms):
        self.id = rid
        self.props = props
        self.c_ms = c_ms
        self.u_ms = u_ms
        self.archived = False
        self.archived_ms = None
        # search visibility history: None (current version is indexed) or a
        # list of (monotonic write time, Snap or None) oldest first.
        self.hist = None


class Snap(object):
    """A frozen version of a record as search sees it."""
    __slots__ = ('props', 'c_ms', 'u_ms', 'archived')

    def __init__(self, rec):
        self.props = dict(rec.props)
        self.c_ms = rec.c_ms
        self.u_ms = rec.u_ms
        self.archived = rec.archived


class PropError(Exception):
    """Collected property validation failures of one input."""

    def __init__(self, items):
        Exception.__init__(self, 'invalid properties')
        self.items = items  # [(code, message, name, value)]


def prop_error_to_api(items, portal_id):
    inner = []
    errors = []
    for code, msg, name, value in items:
        d = {'isValid': False, 'message': msg, 'error': code, 'name': name,
             'localizedErrorMessage': msg}
        if value is not None:
            d['propertyValue'] = value
        d['portalId'] = portal_id
        inner.append(d)
        errors.append({'message': msg, 'code': code,
                       'context': {'propertyName': [name]}})
    return validation_error('Property values were not valid: ' + dumps(inner),
                            errors=errors)


def not_found_error(rid):
    return ApiError(404, 'Object not found.  objectId are usually numeric.',
                    'OBJECT_NOT_FOUND', context={'id': [str(rid)]})


def conflict_error(existing_id, what='Contact'):
    return ApiError(409, '%s already exists. Existing ID: %d' % (what, existing_id),
                    'CONFLICT')


class _Text(html.parser.HTMLParser):
    BLOCK = frozenset(('p', 'div', 'br', 'li', 'ul', 'ol', 'tr', 'h1', 'h2', 'h3', 'h4',
                       'h5', 'h6', 'blockquote', 'pre', 'table'))

    def __init__(self):
        html.parser.HTMLParser.__init__(self, convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCK:
            self.parts.append('\n')

    def handle_endtag(self, tag):
        if tag in self.BLOCK:
            self.parts.append('\n')

    def handle_data(self, data):
        self.parts.append(data)


@functools.lru_cache(maxsize=1 << 16)
def html_to_text(s):
    """Plain text of a HubSpot rich-text body: tags dropped, entities
    decoded, runs of blanks collapsed, one line per block element."""
    p = _Text()
    try:
        p.feed(s)
        p.close()
    except Exception:  # noqa: BLE001 - malformed HTML: fall back to the raw text
        return ' '.join(s.split())
    lines = (' '.join(x.split()) for x in ''.join(p.parts).split('\n'))
    return '\n'.join(x for x in lines if x)


# the rich-text body behind each type's hs_body_preview
BODY_PROP = {'notes': ('hs_note_body',), 'calls': ('hs_call_body',),
             'meetings': ('hs_meeting_body',), 'tasks': ('hs_task_body',),
             'communications': ('hs_communication_body',),
             'postal_mail': ('hs_postal_mail_body',),
             'emails': ('hs_email_text', 'hs_email_html')}

_EMAIL_HDR = {'hs_email_from_email': ('from', 'email'),
              'hs_email_from_firstname': ('from', 'firstName'),
              'hs_email_from_lastname': ('from', 'lastName'),
              'hs_email_to_email': ('to', 'email'),
              'hs_email_to_firstname': ('to', 'firstName'),
              'hs_email_to_lastname': ('to', 'lastName')}

_LEAD_FIELDS = {'hs_associated_contact_email': ('contacts', 578, 'email'),
                'hs_associated_contact_firstname': ('contacts', 578, 'firstname'),
                'hs_associated_contact_lastname': ('contacts', 578, 'lastname'),
                'hs_associated_company_name': ('companies', 580, 'name'),
                'hs_associated_company_domain': ('companies', 580, 'domain')}


def line_item_amount(props):
    """quantity x (price - unit discount) less the discount percentage."""
    try:
        price = float(props.get('price') or 0)
        qty = float(props.get('quantity') or 1)
        disc = float(props.get('discount') or 0)
        pct = float(props.get('hs_discount_percentage') or 0)
    except ValueError:
        return None
    if 'price' not in props:
        return None
    amount = qty * (price - disc) * (1 - pct / 100.0)
    return normalize_number('%.2f' % amount)


@functools.lru_cache(maxsize=1 << 12)
def _email_headers(raw):
    try:
        h = json.loads(raw)
    except ValueError:
        return {}
    return h if isinstance(h, dict) else {}


class Store(object):
    def __init__(self, portal_id=12345678):
        self.lock = threading.RLock()
        self.portal_id = portal_id
        self.index_delay = 10.0
        self.empty_null = True      # activity types: empty requested props as null
        self.line_item_dedup = True
        self.log_floor = 4096       # modification log: least length it is compacted at
        self._last_ms = 0
        # change events (webhooks): sink(event dict) or None; the thread's
        # change source ('API' for API calls, 'CRM' for the control API)
        self.sink = None
        self.ctx = threading.local()
        self.clear()

    # ------------------------------------------------------------ setup

    def clear(self):
        with self.lock:
            self.tables = {}
            self.active = {}                            # sorted int ids
            self.archived_ids = {}
            self.next_id = {}
            # what search needs without a scan (search.execute's fast paths):
            # ids whose rec.hist may be set (a superset: pruned as the history
            # expires), and the modification log, (u_ms, id) appended in write
            # order (tick_ms: ascending) for every u_ms a write sets, with the
            # newest u_ms of a record that is not in it (seeded records)
            self.pending = {}
            self.mod_ms = {}
            self.mod_id = {}
            self.mod_cap = {}                           # compacted at this length
            self.unlogged_ms = {}
            for t in S.ALL:
                self.ensure_type(t)
            self.emails = {}                            # lower email -> id
            self.assoc = {}                             # (ft, tt) -> {fid: {tid: types}}
            self._tuple_cache = {}

    def ensure_type(self, t):
        """Tables for a (possibly new) type."""
        if t not in self.tables:
            self.tables[t] = {}
            self.active[t] = []
            self.archived_ids[t] = []
            self.next_id[t] = S.ID_BASE[t] + 1
            self.pending[t] = set()
            self.mod_ms[t] = array.array('q')
            self.mod_id[t] = array.array('q')
            self.mod_cap[t] = self.log_floor
            self.unlogged_ms[t] = -(1 << 62)

    def drop_type(self, t):
        """Forget a deleted custom type and every association to it."""
        for d in (self.tables, self.active, self.archived_ids, self.next_id, self.pending,
                  self.mod_ms, self.mod_id, self.mod_cap, self.unlogged_ms):
            d.pop(t, None)
        for k in [k for k in self.assoc if t in k]:
            del self.assoc[k]

    # ------------------------------------------------------------ events

    def source(self):
        return getattr(self.ctx, 'source', None) or 'CRM'

    def _emit(self, kind, t, rid, ms, **kw):
        sink = self.sink
        if sink is None:
            return
        ev = {'kind': kind, 'type': t, 'id': rid, 'at': ms, 'source': self.source()}
        ev.update(kw)
        sink(ev)

    MAX_LEAD_MS = 1000

    def tick_ms(self, after=None):
        """Wall-clock ms of a write: strictly increasing across writes as long
        as that keeps it within MAX_LEAD_MS of the clock (past that, a burst
        of writes, such as a bulk load of a million records, shares
        milliseconds as HubSpot's imports do, instead of running minutes into
        the future); always later than `after`, the record's last write."""
        now = int(time.time() * 1000)
        ms = max(now, self._last_ms + 1)
        if ms > now + self.MAX_LEAD_MS:
            ms = self._last_ms
        if after is not None and ms <= after:
            ms = after + 1
        if ms > self._last_ms:
            self._last_ms = ms
        return ms

    def types_tuple(self, types):
        key = frozenset(types)
        t = self._tuple_cache.get(key)
        if t is None:
            t = tuple(sorted(key, key=lambda x: S.TYPE_ORDER.get(x, (2, x))))
            self._tuple_cache[key] = t
        return t

    # bulk insertion used by the seeder: ids must be given ascending
    def seed_record(self, t, props, c_ms, u_ms):
        rid = self.next_id[t]
        self.next_id[t] = rid + 1
        props[S.CREATE_PROP[t]] = iso_ms(c_ms)
        props[S.MODIFIED_PROP[t]] = iso_ms(u_ms)
        rec = Rec(rid, props, c_ms, u_ms)
        self.tables[t][rid] = rec
        self.active[t].append(rid)
        if u_ms > self.unlogged_ms[t]:
            self.unlogged_ms[t] = u_ms
        if t == 'contacts':
            email = props.get('email')
            if email:
                self.emails[email.lower()] = rid
        return rid

    def seed_assoc(self, ft, fid, tt, tid, types):
        inv = [S.ASSOC_TYPES[x][5] for x in types]
        inv = [x for x in inv if x is not None]
        unl_b = S.UNLABELED.get((tt, ft))
        if unl_b is not None and unl_b not in inv:
            inv.append(unl_b)
        self.assoc.setdefault((ft, tt), {}).setdefault(fid, {})[tid] = \
            self.types_tuple(types)
        if inv:
            self.assoc.setdefault((tt, ft), {}).setdefault(tid, {})[fid] = \
                self.types_tuple(inv)

    # ------------------------------------------------------------ lookup

    def get(self, t, rid, archived=False):
        """Record by int/str id, active (or archived when archived=True)."""
        try:
            rid = int(rid)
        except (TypeError, ValueError):
            return None
        rec = self.tables[t].get(rid)
        if rec is None or rec.archived != archived:
            return None
        return rec

    def find_by(self, t, prop, value, archived=False):
        """Lookup by a unique property (email for contacts, hs_object_id)."""
        if prop in (None, '', 'hs_object_id', 'id'):
            return self.get(t, value, archived)
        if t == 'contacts' and prop == 'email' and isinstance(value, str):
            if not archived:
                rid = self.emails.get(value.lower())
                return self.tables[t].get(rid) if rid else None
            low = value.lower()
            for rid in self.archived_ids[t]:
                rec = self.tables[t][rid]
                if rec.props.get('email', '').lower() == low:
                    return rec
            return None
        pdef = S.PROPERTIES[t].get(prop)
        if pdef is not None and pdef.get('hasUniqueValue') and isinstance(value, str):
            tab = self.tables[t]
            for rid in self.id_list(t, archived):
                if tab[rid].props.get(prop) == value:
                    return tab[rid]
            return None
        raise validation_error(
            'Unable to perform lookup by non-unique %s property %s in portal ID %d'
            % (S.TYPE_ID[t], prop, self.portal_id))

    def unique_conflict(self, t, changes, rec):
        """409 when a hasUniqueValue property (custom objects) would repeat."""
        if not S.is_custom(t):
            return
        for name, v in changes.items():
            pdef = S.PROPERTIES[t].get(name)
            if v and pdef is not None and pdef.get('hasUniqueValue'):
                other = self.find_by(t, name, v)
                if other is not None and (rec is None or other.id != rec.id):
                    raise conflict_error(other.id, S.INFO[t].labels[0])

    def id_list(self, t, archived=False):
        return self.archived_ids[t] if archived else self.active[t]

    def count(self, t, archived=False):
        return len(self.id_list(t, archived))

    # ------------------------------------------------------------ values

    def value(self, t, rec, name, props=None):
        """The string value of a property (computed ones included) or None."""
        if props is None:
            props = rec.props
        v = props.get(name)
        if v is not None:
            if name == 'hs_object_id':      # the id, whatever an unvalidated write stored
                return str(rec.id)
            return v
        if name in S.CALCULATED_ALL[t] or name == 'associatedcompanyid':
            if t in S.CORE:
                return self._computed(t, rec, name, props)
            return self._computed_other(t, rec, name, props)
        return None

    def _computed_other(self, t, rec, name, props):
        if name == 'hs_object_id':
            return str(rec.id)
        if name == 'hs_body_preview':
            for p in BODY_PROP.get(t, ()):
                if props.get(p):
                    return html_to_text(props[p]) or None
            return None
        if name in _EMAIL_HDR:
            raw = props.get('hs_email_headers')
            if not raw:
                return None
            who, key = _EMAIL_HDR[name]
            h = _email_headers(raw).get(who)
            if isinstance(h, list):
                vals = [x.get(key) for x in h if isinstance(x, dict) and x.get(key)]
                return ';'.join(str(v) for v in vals) or None
            if isinstance(h, dict) and h.get(key):
                return str(h[key])
            return None
        if t == 'line_items' and name == 'amount':
            return line_item_amount(props)
        if t == 'quotes':
            if name == 'hs_quote_number':
                return 'Q-%05d' % (rec.id - S.ID_BASE[t])
            if name == 'hs_public_url_key':
                return '%032x' % ((rec.id * 2654435761) % (1 << 128))
            if name == 'hs_quote_amount':
                total = 0.0
                for lid, _ in self.assoc_of('quotes', rec.id, 'line_items'):
                    a = line_item_amount(self.tables['line_items'][lid].props)
                    total += float(a) if a else 0.0
                return normalize_number(repr(round(total, 2)))
            if name == 'hubspot_owner_id':
                for did, _ in self.assoc_of('quotes', rec.id, 'deals'):
                    o = self.tables['deals'][did].props.get('hubspot_owner_id')
                    if o:
                        return o
                return props.get('hs_quote_owner_id')
        if t == 'invoices' and name == 'hs_number':
            return 'INV-%05d' % (rec.id - S.ID_BASE[t])
        if t == 'leads' and name in _LEAD_FIELDS:
            other, primary, prop = _LEAD_FIELDS[name]
            items = self.assoc_of('leads', rec.id, other)
            for oid, types in sorted(items, key=lambda x: primary not in x[1]):
                return self.tables[other][oid].props.get(prop)
            return None
        return None

    def _n_assoc(self, t, rec, other, only_type=None):
        m = self.assoc.get((t, other), {}).get(rec.id)
        if not m:
            return 0
        tab = self.tables[other]
        n = 0
        for oid, types in m.items():
            r = tab.get(oid)
            if r is not None and not r.archived and (only_type is None or only_type in types):
                n += 1
        return n

    def _computed(self, t, rec, name, props):
        if name == 'hs_object_id':
            return str(rec.id)
        if name == 'hs_ticket_id':
            return str(rec.id)
        if name == 'num_associated_deals':
            return str(self._n_assoc(t, rec, 'deals'))
        if name == 'num_associated_contacts':
            return str(self._n_assoc(t, rec, 'contacts'))
        if name == 'hs_num_child_companies':
            return str(self._n_assoc(t, rec, 'companies', 13))
        if name == 'associatedcompanyid':
            m = self.assoc.get(('contacts', 'companies'), {}).get(rec.id) or {}
            for oid, types in m.items():
                if 1 in types and self.get('companies', oid):
                    return str(oid)
            return None
        if t == 'deals' and name in ('hs_is_closed', 'hs_is_closed_won',
                                     'hs_deal_stage_probability'):
            meta = S.DEAL_STAGE_META.get(props.get('dealstage'))
            if meta is None:
                return None
            if name == 'hs_is_closed':
                return meta['isClosed']
            if name == 'hs_is_closed_won':
                return 'true' if meta['isClosed'] == 'true' and \
                    meta['probability'] == '1.0' else 'false'
            return normalize_number(meta['probability'])
        return None

    def render(self, t, rec, names, search=False, snap=None, with_history=None):
        """The API shape of a record.  names=None gives the default set.
        GET/list omit empty requested properties (activity types: null, as
        their guides say); search returns them null."""
        props = snap.props if snap is not None else rec.props
        if names is None:
            names = S.DEFAULT_GET[t]
        known = S.PROPERTIES[t]
        nulls = search or (self.empty_null and S.INFO[t].empty_null)
        out = {}
        for n in names:
            if n in out:
                continue
            v = self.value(t, rec, n, props)
            if v is not None:
                out[n] = v
            elif nulls and n in known:
                out[n] = None
        modp = S.MODIFIED_PROP[t]
        cp = S.CREATE_PROP[t]
        out[cp] = props[cp]
        out[modp] = props[modp]
        out['hs_object_id'] = str(rec.id)
        r = {'id': str(rec.id), 'properties': out,
             'createdAt': props[cp], 'updatedAt': props[modp],
             'archived': rec.archived if snap is None else False}
        if rec.archived and snap is None:
            r['archivedAt'] = iso_ms(rec.archived_ms)
        if t not in S.CORE and not search:
            r['url'] = 'https://app.hubspot.com/contacts/%d/record/%s/%d' % (
                self.portal_id, S.TYPE_ID[t], rec.id)
        if with_history:
            hist = {}
            for n in with_history:
                v = self.value(t, rec, n, props)
                if v is not None and n in known:
                    hist[n] = [{'value': v, 'timestamp': props[modp],
                                'sourceType': 'API', 'sourceId': 'sandbox',
                                'sourceLabel': None, 'updatedByUserId': None}]
            r['propertiesWithHistory'] = hist
        return r

    # ------------------------------------------------------------ validation

    def _check_value(self, t, name, value, pdef, errs):
        """Validate and normalise one value; returns the stored string or
        '' for a clear, or None after appending an error."""
        ptype = pdef['type']
        if value == '':
            return ''
        if ptype == 'string':
            if len(value) > MAX_STRING:
                errs.append(('INVALID_STRING_LENGTH',
                             'Property value for %s is %d characters long; the '
                             'maximum is %d.' % (name, len(value), MAX_STRING),
                             name, None))
                return None
            if t == 'contacts' and name == 'email':
                at = value.find('@')
                if (value.strip() != value or ' ' in value or at <= 0
                        or value.count('@') != 1 or '.' not in value[at:]
                        or value.endswith('.')):
                    errs.append(('INVALID_EMAIL', 'Email address %s is invalid' % value,
                                 name, value))
                    return None
            return value
        if value != value.strip():
            code = {'number': 'INVALID_INTEGER', 'bool': 'INVALID_BOOLEAN',
                    'datetime': 'INVALID_LONG', 'date': 'INVALID_DATE'}.get(
                        ptype, 'INVALID_OPTION')
            errs.append((code, '%s has leading or trailing whitespace, which is not '
                         'allowed for %s properties.' % (dumps(value), ptype),
                         name, value))
            return None
        if ptype == 'number':
            if parse_number(value) is None:
                errs.append(('INVALID_INTEGER', '%s was not a valid number.' % value,
                             name, value))
                return None
            return normalize_number(value)
        if ptype == 'bool':
            low = value.lower()
            if low not in ('true', 'false'):
                errs.append(('INVALID_BOOLEAN', '%s was not a valid boolean.' % value,
                             name, value))
                return None
            return low
        if ptype == 'datetime':
            if value.lstrip('-').isdigit() and len(value) <= 15:
                return iso_ms(int(value))
            r = parse_iso(value)
            if r is None or not r[1]:
                errs.append(('INVALID_LONG', '%s was not a valid long.' % value,
                             name, value))
                return None
            return iso_ms(r[0])
        if ptype == 'date':
            if value.lstrip('-').isdigit() and len(value) <= 15:
                ms = int(value)
            else:
                r = parse_iso(value)
                if r is None:
                    errs.append(('INVALID_DATE', '%s was not a valid date.' % value,
                                 name, value))
                    return None
                ms = r[0]
            rem = ms % 86400000
            if rem:
                h, rem = divmod(rem, 3600000)
                m, rem = divmod(rem, 60000)
                s, frac = divmod(rem, 1000)
                errs.append(('INVALID_DATE', '%s is at %d:%d:%d.%d UTC, not midnight!'
                             % (value, h, m, s, frac), name, value))
                return None
            return iso_date(ms)
        if ptype == 'enumeration':
            if name == 'hubspot_owner_id':
                if not value.isdigit():
                    errs.append(('INVALID_INTEGER', '%s was not a valid integer (for '
                                 'owner ID).' % value, name, value))
                    return None
                if value not in S.ACTIVE_OWNER_IDS:
                    errs.append(('INVALID_OWNER_ID', '%s is not a valid owner id' % value,
                                 name, value))
                    return None
                return value
            if not pdef['options']:
                return value  # pipeline/stage: checked against pipelines later
            allowed = [o['value'] for o in pdef['options']]
            if pdef['fieldType'] == 'checkbox':
                parts = [p for p in value.split(';') if p != '']
                bad = [p for p in parts if p not in allowed]
                if bad or not parts:
                    errs.append(('INVALID_OPTION', '%s was not one of the allowed '
                                 'options: [%s]' % (bad[0] if bad else value,
                                                    ', '.join(allowed)), name, value))
                    return None
                return value  # leading ';' (append) resolved by the caller
            if value not in allowed:
                errs.append(('INVALID_OPTION', '%s was not one of the allowed options: '
                             '[%s]' % (value, ', '.join(allowed)), name, value))
                return None
            return value
        return value

    def prepare(self, t, props_in, rec=None, validate=True):
        """Check an input `properties` object against the schema.

        Returns {name: normalised value, '' meaning clear}.  Raises ApiError
        (400) for shape problems and PropError for property failures."""
        if props_in is None:
            props_in = {}
        if not isinstance(props_in, dict):
            raise validation_error('Invalid input JSON on line 1, column 1: Cannot '
                                   'deserialize value of type `java.util.LinkedHashMap` '
                                   'from non-object value (`properties` must be an '
                                   'object)')
        schema = S.PROPERTIES[t]
        errs = []
        out = {}
        for name, value in props_in.items():
            if value is None:
                value = ''
            elif isinstance(value, bool):
                value = 'true' if value else 'false'
            elif isinstance(value, int):
                value = str(value)
            elif isinstance(value, float):
                value = repr(value)
                if value.endswith('.0'):
                    value = value[:-2]
            elif not isinstance(value, str):
                raise validation_error(
                    'Invalid input JSON on line 1, column 1: Cannot deserialize value '
                    'of type `java.lang.String` from %s value (property %s)'
                    % ('Array' if isinstance(value, list) else 'Object', name))
            pdef = schema.get(name)
            if pdef is None:
                if validate:
                    errs.append(('PROPERTY_DOESNT_EXIST',
                                 'Property "%s" does not exist' % name, name, None))
                continue
            if not validate:
                out[name] = value
                continue
            if pdef['modificationMetadata']['readOnlyValue'] or pdef['calculated']:
                errs.append(('READ_ONLY_VALUE', '"%s" is a read only property; its '
                             'value cannot be set.' % name, name, value))
                continue
            v = self._check_value(t, name, value, pdef, errs)
            if v is None:
                continue
            if (pdef['fieldType'] == 'checkbox' and v.startswith(';') and rec is not None):
                cur = [p for p in rec.props.get(name, '').split(';') if p]
                for p in v.split(';'):
                    if p and p not in cur:
                        cur.append(p)
                v = ';'.join(cur)
            elif pdef['fieldType'] == 'checkbox' and v:
                seen = []
                for p in v.split(';'):
                    if p and p not in seen:
                        seen.append(p)
                v = ';'.join(seen)
            out[name] = v
        if validate and not errs:
            self._check_rules(t, out, rec, errs)
        if errs:
            raise PropError(errs)
        return out

    def _check_rules(self, t, out, rec, errs):
        cur = rec.props if rec is not None else {}
        # lifecycle stage only moves forward (contacts and companies)
        if t in ('contacts', 'companies') and out.get('lifecyclestage'):
            new = out['lifecyclestage']
            old = cur.get('lifecyclestage')
            if old and S.LIFECYCLE_STAGES.index(new) < S.LIFECYCLE_STAGES.index(old):
                errs.append(('INVALID_LIFECYCLE_STAGE',
                             'lifecyclestage can only be moved forward through the '
                             'API: the current stage is %s, the requested stage %s '
                             'is earlier. Clear the property (set it to "") first, '
                             'then set %s in a later request.' % (old, new, new),
                             'lifecyclestage', new))
        # pipeline / stage
        if t in S.PIPELINE_PROP:
            pprop, sprop, pdefault = S.PIPELINE_PROP[t]
            if pprop in out or sprop in out:
                pipe = out.get(pprop, cur.get(pprop)) or pdefault
                stage = out.get(sprop, cur.get(sprop))
                stages = S.STAGES[t]
                if pprop in out and out[pprop] not in stages:
                    errs.append(('INVALID_OPTION', '%s was not one of the allowed '
                                 'options: [%s]' % (out[pprop] or '""', ', '.join(stages)),
                                 pprop, out[pprop]))
                elif stage is not None and stage not in stages[pipe] or \
                        (sprop in out and not out[sprop]):
                    errs.append(('INVALID_OPTION', '%s was not one of the allowed '
                                 'options: [%s]' % (stage or '""', ', '.join(stages[pipe])),
                                 sprop, stage))
        if t not in S.CORE:
            self._check_rules_other(t, out, rec, errs)
        if rec is None and t in S.REQUIRED_ON_CREATE:
            for name in S.REQUIRED_ON_CREATE[t]:
                if not out.get(name):
                    errs.append(('REQUIRED_PROPERTY', 'Property "%s" is required when '
                                 'creating a %s' % (name, S.SINGULAR[t]), name, None))

    def _check_rules_other(self, t, out, rec, errs):
        cur = rec.props if rec is not None else {}
        if t == 'meetings' and rec is None and not out.get('hs_timestamp') and \
                out.get('hs_meeting_start_time'):
            out['hs_timestamp'] = out['hs_meeting_start_time']
        if t == 'calls' and out.get('hs_call_recording_url') and \
                not out['hs_call_recording_url'].lower().startswith('https://'):
            errs.append(('INVALID_URL', 'hs_call_recording_url must be an HTTPS URL',
                         'hs_call_recording_url', out['hs_call_recording_url']))
        if t == 'line_items':
            for name in ('price', 'quantity'):
                if out.get(name, '').startswith('-'):
                    errs.append(('INVALID_INTEGER', '%s of a line item cannot be negative: '
                                 '%s' % (name, out[name]), name, out[name]))
            pid = out.get('hs_product_id')
            if pid and self.get('products', pid) is None:
                errs.append(('INVALID_OBJECT_ID', 'Product %s does not exist' % pid,
                             'hs_product_id', pid))
        if t == 'tasks' and out.get('hs_task_status') == 'COMPLETED' and \
                cur.get('hs_task_status') != 'COMPLETED':
            out['hs_task_completion_date'] = iso_ms(int(time.time() * 1000))
        if t == 'invoices' and out.get('hs_invoice_status') == 'open' and \
                cur.get('hs_invoice_status') != 'open':
            n_ct = len(self.assoc_of('invoices', rec.id, 'contacts')) if rec else 0
            n_li = len(self.assoc_of('invoices', rec.id, 'line_items')) if rec else 0
            if n_ct != 1 or n_li < 1:
                errs.append(('INVALID_OPTION', 'An invoice can be opened only with exactly '
                             'one associated contact and at least one line item (it has '
                             '%d and %d)' % (n_ct, n_li), 'hs_invoice_status', 'open'))

    def api_error(self, exc):
        if isinstance(exc, PropError):
            return prop_error_to_api(exc.items, self.portal_id)
        return exc

    # ------------------------------------------------------------ search history

    def _pre_write(self, t, rec, is_new=False):
        if self.index_delay <= 0:
            rec.hist = None
            return
        if rec.hist is None:
            rec.hist = [(-1.0, None if is_new else Snap(rec))]
        self.pending[t].add(rec.id)

    def _post_write(self, rec):
        if self.index_delay <= 0:
            rec.hist = None
            return
        now = time.monotonic()
        rec.hist.append((now, Snap(rec)))
        # drop versions that a newer, already visible one supersedes
        cut = now - self.index_delay
        h = rec.hist
        i = len(h) - 1
        while i > 0 and h[i][0] > cut:
            i -= 1
        if i > 0:
            del h[:i]

    def search_view(self, rec, now):
        """The version of rec search sees at monotonic time now (Snap, rec
        itself for "current", or None)."""
        h = rec.hist
        if h is None:
            return rec
        cut = now - self.index_delay
        if h[-1][0] <= cut:
            rec.hist = None
            return rec
        for i in range(len(h) - 1, -1, -1):
            if h[i][0] <= cut:
                return h[i][1]
        return h[0][1]

    def flush_index(self):
        with self.lock:
            for t in list(self.tables):
                for rec in self.tables[t].values():
                    rec.hist = None
                self.pending[t].clear()

    def search_pending(self, t, now):
        """{id: view} of the active records of t that search sees in another
        version than the current one at monotonic time now (a Snap, or None:
        not visible yet); every other active record is seen as it is.  Costs
        the records written within index_delay, not the type's size."""
        pend = self.pending[t]
        tab = self.tables[t]
        out = {}
        for rid in list(pend):
            rec = tab.get(rid)
            if rec is None or rec.archived:
                pend.discard(rid)      # a restore writes, and adds it back
                continue
            view = self.search_view(rec, now)
            if rec.hist is None:
                pend.discard(rid)
                continue
            out[rid] = view
        return out

    def _logged(self, t, rec):
        """Note a write that set rec.u_ms (from tick_ms) in the modification log."""
        ms, ids = self.mod_ms[t], self.mod_id[t]
        if len(ms) >= self.mod_cap[t]:
            # compact: keep the entries that are still some record's u_ms;
            # at twice what is kept next time (amortised O(1) a write)
            tab = self.tables[t]
            keep = [(m, i) for m, i in zip(ms, ids)
                    if tab.get(i) is not None and tab[i].u_ms == m]
            ms = self.mod_ms[t] = array.array('q', (m for m, _ in keep))
            ids = self.mod_id[t] = array.array('q', (i for _, i in keep))
            self.mod_cap[t] = max(self.log_floor, 2 * len(keep))
        ms.append(rec.u_ms)
        ids.append(rec.id)

    def modified_since(self, t, lo_ms):
        """Ascending ids of the active records of t that search may see
        modified at lo_ms or later, or None when a seeded record may be that
        recent (then only a scan knows).  A superset: the log's entries from
        lo_ms on.  A version search sees in place of the current one (index
        delay) is never newer than it, and the current u_ms is in the log
        unless it is a seeded one."""
        if lo_ms <= self.unlogged_ms[t]:
            return None
        i = bisect.bisect_left(self.mod_ms[t], lo_ms)
        cand = set(self.mod_id[t][i:])
        tab = self.tables[t]
        out = []
        for rid in cand:
            rec = tab.get(rid)
            if rec is not None and not rec.archived:
                out.append(rid)
        out.sort()
        return out

    # ------------------------------------------------------------ writes

    def _apply(self, t, rec, changes):
        """Apply prepared changes to rec; returns the names that changed."""
        changed = []
        p = rec.props
        cp = S.CREATE_PROP[t]
        for name, v in changes.items():
            if name == cp:
                if v:
                    ms = parse_iso(v)[0]
                    if ms != rec.c_ms:
                        rec.c_ms = ms
                        p[cp] = v
                        changed.append(name)
                continue
            old = p.get(name)
            if v == '':
                if old is not None:
                    del p[name]
                    changed.append(name)
            elif old != v:
                p[name] = v
                changed.append(name)
        return changed

    def _email_conflict(self, t, changes, rec):
        if t != 'contacts':
            return
        email = changes.get('email')
        if email:
            other = self.emails.get(email.lower())
            if other is not None and (rec is None or other != rec.id):
                raise conflict_error(other)

    def _reindex_email(self, t, rec, old_email):
        if t != 'contacts':
            return
        new_email = rec.props.get('email')
        if old_email and (rec.archived or not new_email or
                          old_email.lower() != new_email.lower()):
            if self.emails.get(old_email.lower()) == rec.id:
                del self.emails[old_email.lower()]
        if new_email and not rec.archived:
            self.emails[new_email.lower()] = rec.id

    def create(self, t, props_in, validate=True, prepared=None):
        """Create a record; returns it.  Raises ApiError / PropError."""
        with self.lock:
            changes = prepared if prepared is not None else \
                self.prepare(t, props_in, None, validate)
            self._email_conflict(t, changes, None)
            self.unique_conflict(t, changes, None)
            ms = self.tick_ms()
            props = {}
            c_ms = ms
            cp = S.CREATE_PROP[t]
            if changes.get(cp):
                c_ms = parse_iso(changes[cp])[0]
            for k, v in changes.items():
                if v != '' and k != cp:
                    props[k] = v
            if t in S.PIPELINE_PROP:
                pprop, sprop, pdefault = S.PIPELINE_PROP[t]
                props.setdefault(pprop, pdefault)
                if t in S.PIPELINE_FIRST_STAGE:
                    props.setdefault(sprop, S.STAGES[t][props[pprop]][0])
            if t not in S.CORE:
                self._create_defaults(t, props)
            rid = self.next_id[t]
            self.next_id[t] = rid + 1
            props[cp] = iso_ms(c_ms)
            props[S.MODIFIED_PROP[t]] = iso_ms(ms)
            rec = Rec(rid, props, c_ms, ms)
            self._pre_write(t, rec, is_new=True)
            self.tables[t][rid] = rec
            self._logged(t, rec)
            ids = self.active[t]
            if not ids or ids[-1] < rid:
                ids.append(rid)
            else:
                bisect.insort(ids, rid)
            self._reindex_email(t, rec, None)
            self._post_write(rec)
            if self.sink is not None:
                self._emit('creation', t, rid, ms)
                skip = (cp, S.MODIFIED_PROP[t])
                for k in sorted(props):
                    if k not in skip:
                        self._emit('propertyChange', t, rid, ms, name=k, value=props[k])
            return rec

    def _create_defaults(self, t, props):
        """Server-side defaults of the other types at creation."""
        if t == 'invoices':
            props.setdefault('hs_invoice_status', 'draft')
        elif t == 'line_items' and props.get('hs_product_id'):
            prod = self.get('products', props['hs_product_id'])
            if prod is not None:
                for k in ('name', 'price', 'hs_sku', 'description',
                          'hs_recurring_billing_period'):
                    if k in prod.props:
                        props.setdefault(k, prod.props[k])
        elif t == 'communications':
            props.setdefault('hs_communication_logged_from', 'CRM')

    def update(self, t, rec, props_in, validate=True, prepared=None):
        with self.lock:
            changes = prepared if prepared is not None else \
                self.prepare(t, props_in, rec, validate)
            self._email_conflict(t, changes, rec)
            self.unique_conflict(t, changes, rec)
            old_email = rec.props.get('email')
            self._pre_write(t, rec)
            changed = self._apply(t, rec, changes)
            if changed:
                ms = self.tick_ms(rec.u_ms)
                rec.u_ms = ms
                rec.props[S.MODIFIED_PROP[t]] = iso_ms(ms)
                self._logged(t, rec)
                self._reindex_email(t, rec, old_email)
                self._post_write(rec)
                if self.sink is not None:
                    for k in changed:
                        self._emit('propertyChange', t, rec.id, ms, name=k,
                                   value=rec.props.get(k, ''))
            elif rec.hist is not None and len(rec.hist) == 1 and rec.hist[0][0] < 0:
                rec.hist = None
            return rec

    def archive(self, t, rec):
        """Delete as the type does it: to the recycle bin (restorable), or
        for good (emails).  Archiving a quote takes its line items along."""
        with self.lock:
            if rec.archived:
                return
            if S.INFO[t].delete == 'hard':
                self.delete(t, rec)
                return
            self._pre_write(t, rec)
            ms = self.tick_ms()
            rec.archived = True
            rec.archived_ms = ms
            self._move(t, rec.id, self.active[t], self.archived_ids[t])
            self._reindex_email(t, rec, rec.props.get('email'))
            self._post_write(rec)
            self._emit('deletion', t, rec.id, ms)
            if t == 'quotes':
                for lid, _ in self.assoc_of('quotes', rec.id, 'line_items'):
                    self.archive('line_items', self.tables['line_items'][lid])

    def delete(self, t, rec):
        """Remove a record for good: not listed as archived, not restorable,
        its associations gone on both sides."""
        with self.lock:
            if self.tables[t].get(rec.id) is not rec:
                return
            ms = self.tick_ms()
            del self.tables[t][rec.id]
            lst = self.archived_ids[t] if rec.archived else self.active[t]
            i = bisect.bisect_left(lst, rec.id)
            if i < len(lst) and lst[i] == rec.id:
                del lst[i]
            if not rec.archived:
                if t == 'contacts' and rec.props.get('email'):
                    low = rec.props['email'].lower()
                    if self.emails.get(low) == rec.id:
                        del self.emails[low]
            for (ft, tt), m in list(self.assoc.items()):
                if ft == t:
                    targets = m.pop(rec.id, None) or {}
                    back = self.assoc.get((tt, t), {})
                    for oid in targets:
                        bm = back.get(oid)
                        if bm is not None:
                            bm.pop(rec.id, None)
                            if not bm:
                                del back[oid]
            rec.archived = True
            rec.archived_ms = ms
            self._emit('deletion', t, rec.id, ms)

    def restore(self, t, rec):
        with self.lock:
            if not rec.archived:
                return
            self._email_conflict(t, {'email': rec.props.get('email')}, rec)
            self._pre_write(t, rec)
            ms = self.tick_ms(rec.u_ms)
            rec.archived = False
            rec.archived_ms = None
            rec.u_ms = ms
            rec.props[S.MODIFIED_PROP[t]] = iso_ms(ms)
            self._logged(t, rec)
            self._move(t, rec.id, self.archived_ids[t], self.active[t])
            self._reindex_email(t, rec, None)
            self._post_write(rec)
            self._emit('restore', t, rec.id, ms)

    @staticmethod
    def _move(t, rid, src, dst):
        i = bisect.bisect_left(src, rid)
        if i < len(src) and src[i] == rid:
            del src[i]
        bisect.insort(dst, rid)

    # ------------------------------------------------------------ associations

    def assoc_of(self, ft, fid, tt):
        """{to_id: types} of fid toward type tt, live targets only, sorted."""
        m = self.assoc.get((ft, tt), {}).get(fid)
        if not m:
            return []
        tab = self.tables[tt]
        out = []
        for oid in sorted(m):
            r = tab.get(oid)
            if r is not None and not r.archived:
                out.append((oid, m[oid]))
        return out

    def _set_pair(self, ft, fid, tt, tid, types):
        """Set the types fid -> tid to `types` (empty: no association) and
        update the other side: inverses of removed types go, inverses of
        added ones come, and the other side's unlabeled type stays while the
        pair is associated.  (Where HubSpot documents no inverse for a type,
        the other side carries only its unlabeled type.)"""
        new = set(types or ())
        fwd = self.assoc.setdefault((ft, tt), {})
        back = self.assoc.setdefault((tt, ft), {})
        cur = set(fwd.get(fid, {}).get(tid, ()))
        if ft == tt and fid == tid:
            # self association: the forward view is authoritative
            if new:
                fwd.setdefault(fid, {})[tid] = self.types_tuple(new)
            else:
                self._drop(fwd, fid, tid)
            self._assoc_events(ft, fid, tt, tid, cur, new)
            return
        back_cur = set(back.get(tid, {}).get(fid, ()))
        if new:
            back_new = set(back_cur)
            for x in cur - new:
                inv = S.ASSOC_TYPES[x][5]
                if inv is not None:
                    back_new.discard(inv)
            for x in new - cur:
                inv = S.ASSOC_TYPES[x][5]
                if inv is not None:
                    back_new.add(inv)
            unl_b = S.UNLABELED.get((tt, ft))
            if unl_b is not None:
                back_new.add(unl_b)
            fwd.setdefault(fid, {})[tid] = self.types_tuple(new)
            if back_new:
                back.setdefault(tid, {})[fid] = self.types_tuple(back_new)
            else:
                self._drop(back, tid, fid)
        else:
            back_new = set()
            self._drop(fwd, fid, tid)
            self._drop(back, tid, fid)
        self._assoc_events(ft, fid, tt, tid, cur, new)
        self._assoc_events(tt, tid, ft, fid, back_cur, back_new)
        # a lead whose last primary association went is deleted
        if ft == 'leads' and (cur - new) & S.LEAD_PRIMARY:
            self._lead_check(fid)
        elif tt == 'leads' and (back_cur - back_new) & S.LEAD_PRIMARY:
            self._lead_check(tid)

    @staticmethod
    def _drop(m, a, b):
        d = m.get(a)
        if d is not None:
            d.pop(b, None)
            if not d:
                del m[a]

    def _assoc_events(self, ft, fid, tt, tid, before, after):
        if self.sink is None or before == after:
            return
        ms = self.tick_ms()
        for x in sorted(after - before):
            self._emit('associationChange', ft, fid, ms, to_type=tt, to_id=tid, type_id=x,
                       removed=False)
        for x in sorted(before - after):
            self._emit('associationChange', ft, fid, ms, to_type=tt, to_id=tid, type_id=x,
                       removed=True)

    def _lead_check(self, lead_id):
        rec = self.get('leads', lead_id)
        if rec is None:
            return
        for other in ('contacts', 'companies', 'deals'):
            for oid, types in self.assoc.get(('leads', other), {}).get(lead_id, {}).items():
                if set(types) & S.LEAD_PRIMARY:
                    return
        self.archive('leads', rec)

    def pair_types(self, ft, fid, tt, tid):
        return self.assoc.get((ft, tt), {}).get(fid, {}).get(tid, ())

    def check_types(self, ft, tt, specs):
        """specs: [{associationCategory, associationTypeId}] -> set of type ids.
        Raises ApiError(400) for a type that does not fit the pair."""
        if not isinstance(specs, list):
            raise validation_error('Invalid input JSON on line 1, column 1: Cannot '
                                   'deserialize value of type `java.util.ArrayList` '
                                   'from non-array value (association types must be '
                                   'an array)')
        out = set()
        for s in specs:
            if not isinstance(s, dict):
                raise validation_error('association type must be an object with '
                                       'associationCategory and associationTypeId')
            tidv = s.get('associationTypeId', s.get('typeId'))
            cat = s.get('associationCategory', s.get('category'))
            try:
                tidv = int(tidv)
            except (TypeError, ValueError):
                raise validation_error('associationTypeId %r is not a valid integer'
                                       % (tidv,))
            d = S.ASSOC_TYPES.get(tidv)
            if d is None or d[0] != ft or d[1] != tt or (cat is not None and cat != d[2]):
                raise validation_error(
                    '%s %s is not a valid association type between %s and %s'
                    % (cat or 'association type', tidv, S.SINGULAR[ft], S.SINGULAR[tt]),
                    sub_category='crm.associations.INVALID_ASSOCIATION_TYPE')
            out.add(tidv)
        return out

    def associate(self, ft, fid, tt, tid, types=None, replace=False):
        """Add (or with replace=True set) association types fid->tid; the
        unlabeled type and the inverse side are always maintained.
        Returns the resulting type tuple."""
        with self.lock:
            unl = S.UNLABELED.get((ft, tt))
            if unl is None:
                raise validation_error(
                    'No association is defined from %s to %s'
                    % (S.SINGULAR[ft], S.SINGULAR[tt]),
                    sub_category='crm.associations.INVALID_ASSOCIATION_TYPE')
            cur = set(self.pair_types(ft, fid, tt, tid))
            want = set(types or ())
            new = (want if replace else cur | want) | {unl}
            self._set_pair(ft, fid, tt, tid, new)
            self._enforce_primary(ft, fid, tt, tid, new)
            return self.pair_types(ft, fid, tt, tid)

    def _enforce_primary(self, ft, fid, tt, tid, new):
        # a contact/deal/ticket has one primary company (and so on for the
        # other types of PRIMARY_SINGLE)
        for p in S.PRIMARY_SINGLE:
            d = S.ASSOC_TYPES.get(p)
            if d is None:
                continue
            inv = d[5]
            if d[0] == ft and d[1] == tt and p in new:
                owner, keep = fid, tid
            elif inv is not None and d[0] == tt and d[1] == ft and inv in new:
                owner, keep = tid, fid
            else:
                continue
            m = self.assoc.get((d[0], d[1]), {}).get(owner, {})
            for other, types in list(m.items()):
                if other != keep and p in types:
                    self._set_pair(d[0], owner, d[1], other,
                                   [x for x in types if x != p])

    def unassociate(self, ft, fid, tt, tid, types=None):
        """Remove all types (types=None) or the given ones; removing the
        unlabeled type removes everything."""
        with self.lock:
            cur = set(self.pair_types(ft, fid, tt, tid))
            if not cur:
                return
            unl = S.UNLABELED.get((ft, tt))
            if types is None or unl in types:
                new = set()
            else:
                new = cur - set(types)
            self._set_pair(ft, fid, tt, tid, new)

    # ------------------------------------------------------------ merge

    def merge(self, t, primary, merged):
        """Merge `merged` into `primary`: properties the primary lacks are
        moved over, associations are moved, the merged record is gone for
        good (its id no longer answers).  Returns the number of properties
        moved."""
        with self.lock:
            skip = {S.CREATE_PROP[t], S.MODIFIED_PROP[t], 'hs_object_id'}
            moved = {}
            for k, v in merged.props.items():
                if k not in skip and k not in primary.props and k != 'email':
                    moved[k] = v
            if t == 'contacts' and merged.props.get('email'):
                extra = [x for x in primary.props.get('hs_additional_emails', '').split(';')
                         if x]
                extra.append(merged.props['email'])
                moved['hs_additional_emails'] = ';'.join(extra)
            assoc_moves = []
            for (ft, tt), m in list(self.assoc.items()):
                if ft != t or merged.id not in m:
                    continue
                for oid, types in list(m[merged.id].items()):
                    if tt == t and oid in (primary.id, merged.id):
                        continue
                    assoc_moves.append((tt, oid, types))
            ms = self.tick_ms()
            merged_id = merged.id
            self.sink, sink = None, self.sink     # the merge event stands for these
            try:
                self.delete(t, merged)
            finally:
                self.sink = sink
            self._pre_write(t, primary)
            changed = self._apply(t, primary, moved)
            ms = self.tick_ms(primary.u_ms)
            primary.u_ms = ms
            primary.props[S.MODIFIED_PROP[t]] = iso_ms(ms)
            self._logged(t, primary)
            self._reindex_email(t, primary, primary.props.get('email'))
            self._post_write(primary)
            self._emit('merge', t, primary.id, ms, merged=[merged_id],
                       moved=len(changed))
            for k in changed:
                self._emit('propertyChange', t, primary.id, ms, name=k,
                           value=primary.props.get(k, ''))
            # the primary keeps its own primary associations
            held = set()
            for p in S.PRIMARY_SINGLE:
                d = S.ASSOC_TYPES.get(p)
                if d is not None and d[0] == t and any(
                        p in ty for ty in self.assoc.get((t, d[1]), {}).get(
                            primary.id, {}).values()):
                    held.add(p)
            for tt, oid, types in assoc_moves:
                if self.tables[tt].get(oid) is None:
                    continue
                self.associate(t, primary.id, tt, oid, [x for x in types if x not in held])
            return len(changed)
