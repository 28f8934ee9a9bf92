"""Small helpers shared by the sandbox modules: time formats, cursors, errors.

Standard library only.
"""

import base64
import calendar
import json
import re
import time
import urllib.parse
import uuid

# ---------------------------------------------------------------- time


def now_ms():
    return int(time.time() * 1000)


def iso_ms(ms):
    """Epoch milliseconds -> '2024-01-17T19:55:04.281Z' (UTC, millis, Z)."""
    ms = int(ms)
    secs, frac = divmod(ms, 1000)
    t = time.gmtime(secs)
    return '%04d-%02d-%02dT%02d:%02d:%02d.%03dZ' % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, frac)


def iso_date(ms):
    t = time.gmtime(int(ms) // 1000)
    return '%04d-%02d-%02d' % (t.tm_year, t.tm_mon, t.tm_mday)


_ISO_RE = re.compile(
    r'^(\d{4})-(\d{2})-(\d{2})'
    r'(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?'
    r'(Z|[+-]\d{2}:?\d{2})?)?$')
_EPOCH_RE = re.compile(r'^-?\d{1,15}$')


def parse_iso(s):
    """ISO-8601 date or datetime -> (epoch ms, has_time) or None."""
    m = _ISO_RE.match(s)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        y, mo, d = int(y), int(mo), int(d)
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            return None
        h = int(hh) if hh else 0
        mn = int(mi) if mi else 0
        sc = int(ss) if ss else 0
        if h > 23 or mn > 59 or sc > 60:
            return None
        # validate the day of month
        if d > calendar.monthrange(y, mo)[1]:
            return None
        secs = calendar.timegm((y, mo, d, h, mn, sc, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    ms = secs * 1000
    if frac:
        ms += int((frac + '00')[:3])
    if tz and tz != 'Z':
        sign = 1 if tz[0] == '+' else -1
        digits = tz[1:].replace(':', '')
        off = (int(digits[:2]) * 60 + int(digits[2:])) * 60000
        ms -= sign * off
    return ms, hh is not None


def parse_time_value(s):
    """A filter/date value: epoch-ms digits or ISO-8601 -> epoch ms or None."""
    if isinstance(s, bool):
        return None
    if isinstance(s, (int, float)):
        return int(s)
    if not isinstance(s, str):
        return None
    s = s.strip()
    if _EPOCH_RE.match(s):
        return int(s)
    r = parse_iso(s)
    return r[0] if r else None


# ---------------------------------------------------------------- numbers

_NUM_RE = re.compile(r'^-?(\d+(\.\d*)?|\.\d+)$')


def parse_number(s):
    """HubSpot-style number string -> float/int or None (no exponents)."""
    if not isinstance(s, str) or not _NUM_RE.match(s):
        return None
    try:
        if '.' in s:
            return float(s)
        return int(s)
    except ValueError:
        return None


def normalize_number(s):
    """'0100.500' -> '100.5'; '12.0' -> '12'.  s must be a valid number."""
    neg = s.startswith('-')
    body = s[1:] if neg else s
    if '.' in body:
        ip, fp = body.split('.', 1)
        fp = fp.rstrip('0')
    else:
        ip, fp = body, ''
    ip = ip.lstrip('0') or '0'
    out = ip + ('.' + fp if fp else '')
    if neg and out != '0':
        out = '-' + out
    return out


def num_key(s):
    """Sort/compare key for a stored numeric string."""
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- cursors


def encode_cursor(n):
    """Opaque list cursor, shaped like HubSpot's ("NTI1Cg%3D%3D")."""
    raw = base64.b64encode(('%d\n' % n).encode()).decode()
    return urllib.parse.quote(raw, safe='')


def decode_cursor(s):
    """Inverse of encode_cursor; tolerant of single or double URL-encoding.

    Returns an int or None when the cursor is garbage."""
    if not isinstance(s, str) or not s or len(s) > 200:
        return None
    for _ in range(3):
        u = urllib.parse.unquote(s)
        if u == s:
            break
        s = u
    try:
        raw = base64.b64decode(s + '=' * (-len(s) % 4), validate=True)
        return int(raw.decode().strip())
    except (ValueError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """An HTTP error with a HubSpot-shaped JSON body."""

    def __init__(self, status, message, category=None, errors=None,
                 context=None, sub_category=None, links=None, extra=None,
                 headers=None):
        Exception.__init__(self, message)
        self.status = status
        self.message = message
        self.category = category
        self.errors = errors
        self.context = context
        self.sub_category = sub_category
        self.links = links
        self.extra = extra
        self.headers = headers or {}

    def body(self, correlation_id=None):
        b = {'status': 'error', 'message': self.message,
             'correlationId': correlation_id or new_correlation_id()}
        if self.category:
            b['category'] = self.category
        if self.sub_category:
            b['subCategory'] = self.sub_category
        if self.errors is not None:
            b['errors'] = self.errors
        if self.context is not None:
            b['context'] = self.context
        if self.links is not None:
            b['links'] = self.links
        if self.extra:
            b.update(self.extra)
        return b


def new_correlation_id():
    return str(uuid.uuid4())


def validation_error(message, **kw):
    return ApiError(400, message, 'VALIDATION_ERROR', **kw)


def bad_json_error(detail, line=1, column=1):
    return validation_error(
        'Invalid input JSON on line %d, column %d: %s' % (line, column, detail))


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(',', ':'))
