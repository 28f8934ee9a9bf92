/* query.c - parse search/<type>/<query>/ names, build search requests, and
 * evaluate a query locally.
 *
 * Local evaluation follows the rules of HubSpot's search as query_match in
 * query.h spells them out: once a write is indexed, search and query_match
 * must agree, or an overlaid record would flicker in and out of a query
 * directory. Where HubSpot's documentation leaves a rule open, query.h's is
 * the one hubfs keeps, and the test sandbox (tests/sandbox/search.py) is held
 * to the same one (tests/fuzz/diff_query.py compares the two).
 */
#include "cache/model/query.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "cache/model/objtypes.h"
#include "cache/model/search_req.h"

#define MAX_GROUPS 5
#define MAX_PER_GROUP 6
#define MAX_FILTERS 18
#define MAX_TEXT 3000     /* free text, characters */
#define MAX_VALUE 65536   /* one value, characters */
#define SHOW_MAX 60       /* characters of a name or value quoted in a reason */

enum qop {
	Q_EQ, Q_NEQ, Q_LT, Q_LTE, Q_GT, Q_GTE, Q_CONTAINS, Q_NOT_CONTAINS, Q_HAS, Q_NOT_HAS
};

static const char *const op_api[] = {
	[Q_EQ] = "EQ", [Q_NEQ] = "NEQ", [Q_LT] = "LT", [Q_LTE] = "LTE", [Q_GT] = "GT",
	[Q_GTE] = "GTE", [Q_CONTAINS] = "CONTAINS_TOKEN", [Q_NOT_CONTAINS] = "NOT_CONTAINS_TOKEN",
	[Q_HAS] = "HAS_PROPERTY", [Q_NOT_HAS] = "NOT_HAS_PROPERTY",
};

/* The operators of the syntax, longest first so "<=" wins over "<". */
static const struct {
	const char *text;
	enum qop op;
} op_syntax[] = {
	{ ">=", Q_GTE }, { "<=", Q_LTE }, { "!=", Q_NEQ }, { "!~", Q_NOT_CONTAINS },
	{ "=", Q_EQ }, { "<", Q_LT }, { ">", Q_GT }, { "~", Q_CONTAINS },
};

/* How a property's values compare (sandbox search.py _key_fn). */
enum kind { K_STRING, K_NUMBER, K_TIME, K_ENUM };

/* One element of a compiled '*' pattern (Python fnmatch semantics). */
struct gel {
	enum { G_LIT, G_ANY, G_STAR, G_CLASS } kind;
	gunichar c;           /* G_LIT */
	bool neg;             /* G_CLASS */
	gunichar *ranges;     /* G_CLASS: pairs lo, hi */
	size_t nranges;
};

struct cond {
	enum qop op;
	char *name;
	char *value;          /* as sent; NULL for HAS/NOT_HAS */
	enum kind kind;
	bool multi;           /* enumeration with fieldType checkbox: ';'-separated values */
	double num;           /* K_NUMBER target */
	int64_t ms;           /* K_TIME target */
	char *lower;          /* lowercased value (strings, tokens) */
	gunichar *tokens;     /* CONTAINS: the value's tokens, each 0-terminated */
	size_t ntokens;
	struct gel *glob;     /* CONTAINS with '*': compiled pattern */
	size_t nglob;
};

struct group {
	struct cond *conds;
	size_t n;
};

struct query {
	const struct objtype *type;
	struct group *groups;
	size_t ngroups;
	char *text;           /* free text as sent, or NULL */
	char **terms;         /* its lowercased whitespace-separated terms (NULL-terminated) */
};

/* ---------------------------------------------------------------- text helpers */

/* Python's str.isspace (what str.split() splits on). */
static bool py_space(gunichar c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Python's \w minus '_' (the sandbox splits tokens on [\W_]+): letters and
 * every kind of number. */
static bool word_char(gunichar c)
{
	GUnicodeType t;

	if (c < 0x80)
		return g_ascii_isalnum(c);
	if (g_unichar_isalpha(c))
		return true;
	t = g_unichar_type(c);
	return t == G_UNICODE_DECIMAL_NUMBER || t == G_UNICODE_LETTER_NUMBER ||
	       t == G_UNICODE_OTHER_NUMBER;
}

/* Python's str.lower(). Values from a cache should be UTF-8; anything else is
 * lowered as ASCII rather than handed to GLib's UTF-8-only functions. */
static char *lower(const char *s)
{
	return g_utf8_validate(s, -1, NULL) ? g_utf8_strdown(s, -1) : g_ascii_strdown(s, -1);
}

static gunichar *ucs4(const char *s, size_t *n)
{
	glong len = 0;
	gunichar *u;

	if (g_utf8_validate(s, -1, NULL)) {
		u = g_utf8_to_ucs4_fast(s, -1, &len);
	} else {
		len = (glong)strlen(s);
		u = g_new(gunichar, len + 1);
		for (glong i = 0; i <= len; i++)
			u[i] = (unsigned char)s[i];
	}
	*n = (size_t)len;
	return u;
}

/* A name or value as it appears in a reason: JSON-quoted (control characters
 * and quotes stay readable on one line), cut to SHOW_MAX characters. */
static char *quote(const char *v)
{
	g_autofree char *cut = NULL;
	json_object *s;
	char *out;

	if (g_utf8_strlen(v, -1) > SHOW_MAX) {
		const char *end = g_utf8_offset_to_pointer(v, SHOW_MAX);

		cut = g_strdup_printf("%.*s…", (int)(end - v), v);
		v = cut;
	}
	s = json_object_new_string(v);
	out = g_strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(s);
	return out;
}

static int G_GNUC_PRINTF(2, 3) fail(char **why, const char *fmt, ...)
{
	va_list ap;

	if (why) {
		va_start(ap, fmt);
		*why = g_strdup_vprintf(fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int hexval(char c)
{
	return g_ascii_isxdigit(c) ? g_ascii_xdigit_value(c) : -1;
}

/* Percent-decode raw[0..len) into *out (g_malloc'd). The raw text is valid
 * UTF-8 (checked by the caller); so must the result be. */
static int pct_decode(const char *raw, size_t len, char **out, char **why)
{
	g_autofree char *shown = g_strndup(raw, len);
	g_autofree char *q = quote(shown);
	GString *b = g_string_sized_new(len);

	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (raw[i] != '%') {
			g_string_append_c(b, raw[i]);
			continue;
		}
		hi = i + 1 < len ? hexval(raw[i + 1]) : -1;
		lo = i + 2 < len ? hexval(raw[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			g_string_free(b, TRUE);
			return fail(why, "bad percent-encoding in %s: '%%' must be followed by two "
				    "hex digits (write %%25 for a literal '%%')", q);
		}
		if (hi == 0 && lo == 0) {
			g_string_free(b, TRUE);
			return fail(why, "%%00 in %s: a query cannot contain a NUL character", q);
		}
		g_string_append_c(b, (char)(hi << 4 | lo));
		i += 2;
	}
	if (!g_utf8_validate(b->str, (gssize)b->len, NULL)) {
		g_string_free(b, TRUE);
		return fail(why, "%s does not decode to valid UTF-8 text", q);
	}
	*out = g_string_free(b, FALSE);
	return 0;
}

/* ---------------------------------------------------------------- numbers and times */

/* A number in a query value: [+-]digits[.digits][e[+-]digits]. Stricter than
 * the sandbox (Python float() also takes inf, nan, '_' and spaces), because
 * HubSpot would not take those either. */
static bool parse_number_value(const char *s, double *out)
{
	const char *p = s;
	size_t digits = 0;
	char *end;

	if (*p == '+' || *p == '-')
		p++;
	for (; g_ascii_isdigit(*p); p++)
		digits++;
	if (*p == '.')
		for (p++; g_ascii_isdigit(*p); p++)
			digits++;
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!g_ascii_isdigit(*p))
			return false;
		while (g_ascii_isdigit(*p))
			p++;
	}
	if (*p)
		return false;
	*out = g_ascii_strtod(s, &end);
	return true;
}

/* A stored number, as Python's float() reads it (the sandbox's num_key):
 * surrounding whitespace, inf/infinity/nan, exponents. Underscores between
 * digits (also accepted by Python) never occur in stored numbers. */
static bool parse_number_stored(const char *s, double *out)
{
	g_autofree char *t = g_strstrip(g_strdup(s));
	const char *p = t;

	if (*p == '+' || *p == '-')
		p++;
	if (!g_ascii_strcasecmp(p, "inf") || !g_ascii_strcasecmp(p, "infinity")) {
		*out = t[0] == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (!g_ascii_strcasecmp(p, "nan")) {
		*out = NAN;
		return true;
	}
	return parse_number_value(t, out);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* n ASCII digits at *p -> value; advances *p. */
static bool digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!g_ascii_isdigit((*p)[i]))
			return false;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return true;
}

/* ISO-8601 date or datetime -> epoch ms, exactly as the sandbox's
 * util.parse_iso: YYYY-MM-DD[(T| )HH:MM[:SS[(.|,)fraction]][Z|±HH[:]MM]],
 * seconds up to 60, fraction cut to milliseconds. (Python's \d also takes
 * non-ASCII digits; these never occur in stored or typed dates.) */
static bool parse_iso(const char *s, int64_t *ms)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
	const char *p = s;

	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d))
		return false;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return false;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return false;
			if (*p == '.' || *p == ',') {
				int n = 0;

				for (p++; g_ascii_isdigit(*p) && n < 9; p++, n++)
					if (n < 3)
						frac = frac * 10 + (*p - '0');
				if (n == 0)
					return false;
				for (; n < 3; n++)
					frac *= 10;
			}
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '+' ? 1 : -1, oh, om;

			if (!digits(&p, 2, &oh))
				return false;
			if (*p == ':')
				p++;
			if (!digits(&p, 2, &om))
				return false;
			off = sign * (oh * 60 + om);
		}
	}
	if (*p)
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return false;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + frac -
	      (int64_t)off * 60000;
	return true;
}

/* -?\d{1,15} */
static bool parse_epoch(const char *s, int64_t *ms)
{
	const char *p = s + (*s == '-');
	size_t n = strspn(p, "0123456789");

	if (n < 1 || n > 15 || p[n])
		return false;
	*ms = g_ascii_strtoll(s, NULL, 10);
	return true;
}

/* A date in a query value (the sandbox's util.parse_time_value): surrounding
 * whitespace ignored, epoch ms or ISO-8601. */
static bool parse_time_value(const char *s, int64_t *ms)
{
	g_autofree char *t = g_strstrip(g_strdup(s));

	return parse_epoch(t, ms) || parse_iso(t, ms);
}

/* A stored date. The sandbox stores ISO only; epoch ms is accepted as well,
 * for this mount's own writes that have not been normalised by a server. */
static bool parse_time_stored(const char *s, int64_t *ms)
{
	return parse_iso(s, ms) || parse_epoch(s, ms);
}

/* ---------------------------------------------------------------- tokens and patterns */

/* Word tokens of u[0..n) (runs of word characters), appended to out as
 * 0-terminated runs. Returns how many. */
static size_t tokenize(const gunichar *u, size_t n, GArray *out)
{
	static const gunichar zero = 0;
	size_t count = 0;

	for (size_t i = 0; i < n;) {
		size_t j;

		if (!word_char(u[i])) {
			i++;
			continue;
		}
		for (j = i; j < n && word_char(u[j]); j++)
			;
		g_array_append_vals(out, u + i, (guint)(j - i));
		g_array_append_val(out, zero);
		count++;
		i = j;
	}
	return count;
}

/* Compile a (lowercased) pattern the way Python's fnmatch.translate does:
 * '*' any run, '?' one character, '[...]' a class ('!' negates, a-z ranges,
 * ']' first is literal, an unclosed '[' is literal, an empty range is dropped). */
static struct gel *glob_compile(const gunichar *p, size_t n, size_t *count)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(struct gel));

	for (size_t i = 0; i < n;) {
		struct gel e = { 0 };
		gunichar c = p[i++];

		if (c == '*') {
			while (i < n && p[i] == '*')
				i++;
			e.kind = G_STAR;
		} else if (c == '?') {
			e.kind = G_ANY;
		} else if (c == '[') {
			size_t j = i, k;
			GArray *r;

			if (j < n && p[j] == '!')
				j++;
			if (j < n && p[j] == ']')
				j++;
			while (j < n && p[j] != ']')
				j++;
			if (j >= n) {
				e.kind = G_LIT;
				e.c = c;
				g_array_append_val(out, e);
				continue;
			}
			e.kind = G_CLASS;
			k = i;
			if (p[k] == '!') {
				e.neg = true;
				k++;
			}
			r = g_array_new(FALSE, FALSE, sizeof(gunichar));
			while (k < j) {
				gunichar lo = p[k], hi = p[k];

				if (k + 2 < j && p[k + 1] == '-') {
					hi = p[k + 2];
					k += 3;
				} else {
					k++;
				}
				if (lo <= hi) {
					g_array_append_val(r, lo);
					g_array_append_val(r, hi);
				}
			}
			e.nranges = r->len / 2;
			e.ranges = (gunichar *)(void *)g_array_free(r, FALSE);
			i = j + 1;
		} else {
			e.kind = G_LIT;
			e.c = c;
		}
		g_array_append_val(out, e);
	}
	*count = out->len;
	return (struct gel *)(void *)g_array_free(out, FALSE);
}

static bool gel_match(const struct gel *e, gunichar c)
{
	bool in = false;

	switch (e->kind) {
	case G_LIT:
		return e->c == c;
	case G_ANY:
		return true;
	case G_CLASS:
		for (size_t i = 0; i < e->nranges && !in; i++)
			in = c >= e->ranges[2 * i] && c <= e->ranges[2 * i + 1];
		return in != e->neg;
	case G_STAR:
		break;
	}
	return false;
}

/* Whole-string match; every element but '*' takes one character, so the
 * classic one-star backtracking is exact. */
static bool glob_match(const struct gel *g, size_t ng, const gunichar *s, size_t n)
{
	size_t p = 0, t = 0, star = SIZE_MAX, mark = 0;

	while (t < n) {
		if (p < ng && g[p].kind == G_STAR) {
			star = p++;
			mark = t;
		} else if (p < ng && gel_match(&g[p], s[t])) {
			p++;
			t++;
		} else if (star != SIZE_MAX) {
			p = star + 1;
			t = ++mark;
		} else {
			return false;
		}
	}
	while (p < ng && g[p].kind == G_STAR)
		p++;
	return p == ng;
}

/* The sandbox's _contains_token: with '*', a glob on the whole value or on a
 * whitespace-separated word; else the value itself, or the value's tokens as a
 * contiguous run of the stored value's tokens. Case-insensitive. */
static bool contains_token(const struct cond *c, const char *stored)
{
	g_autofree char *s = lower(stored);
	g_autofree gunichar *u = NULL;
	GArray *st;
	size_t n, nst, len;
	bool hit = false;

	u = ucs4(s, &n);
	if (c->glob) {
		if (glob_match(c->glob, c->nglob, u, n))
			return true;
		for (size_t i = 0; i < n;) {
			size_t j;

			if (py_space(u[i])) {
				i++;
				continue;
			}
			for (j = i; j < n && !py_space(u[j]); j++)
				;
			if (glob_match(c->glob, c->nglob, u + i, j - i))
				return true;
			i = j;
		}
		return false;
	}
	if (!strcmp(s, c->lower))
		return true;
	if (!c->ntokens)
		return false;
	st = g_array_new(FALSE, FALSE, sizeof(gunichar));
	nst = tokenize(u, n, st);
	len = 0;
	for (size_t i = 0; i < c->ntokens; i++)
		while (c->tokens[len++])
			;
	/* Token runs are 0-terminated, so a run of k whole tokens matches iff the
	 * flat arrays match from a token start. */
	for (size_t i = 0, at = 0; i + c->ntokens <= nst && !hit; i++) {
		const gunichar *base = (const gunichar *)(void *)st->data;

		hit = at + len <= st->len && !memcmp(base + at, c->tokens, len * sizeof(gunichar));
		while (base[at++])
			;
	}
	g_array_free(st, TRUE);
	return hit;
}

/* ---------------------------------------------------------------- parsing */

static void cond_destroy(struct cond *c)
{
	g_free(c->name);
	g_free(c->value);
	g_free(c->lower);
	g_free(c->tokens);
	for (size_t i = 0; i < c->nglob; i++)
		g_free(c->glob[i].ranges);
	g_free(c->glob);
}

void query_free(struct query *q)
{
	if (!q)
		return;
	for (size_t g = 0; g < q->ngroups; g++) {
		for (size_t i = 0; i < q->groups[g].n; i++)
			cond_destroy(&q->groups[g].conds[i]);
		g_free(q->groups[g].conds);
	}
	g_free(q->groups);
	g_free(q->text);
	g_strfreev(q->terms);
	g_free(q);
}

/* Whitespace-separated terms of the lowercased text (Python str.split()). */
static char **split_terms(const char *text)
{
	g_autofree char *l = lower(text);
	GPtrArray *a = g_ptr_array_new();
	const char *p = l;

	while (*p) {
		const char *e;

		while (*p && py_space(g_utf8_get_char(p)))
			p = g_utf8_next_char(p);
		for (e = p; *e && !py_space(g_utf8_get_char(e)); e = g_utf8_next_char(e))
			;
		if (e > p)
			g_ptr_array_add(a, g_strndup(p, (gsize)(e - p)));
		p = e;
	}
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

/* Set up the comparison of a condition on a property with definition def. */
static int cond_prepare(struct cond *c, json_object *def, char **why)
{
	json_object *v;
	const char *type = json_object_object_get_ex(def, "type", &v) ? json_object_get_string(v) : "";
	g_autofree char *qn = NULL, *qv = NULL;

	if (!type)
		type = "";
	if (!strcmp(type, "number"))
		c->kind = K_NUMBER;
	else if (!strcmp(type, "date") || !strcmp(type, "datetime"))
		c->kind = K_TIME;
	else if (!strcmp(type, "enumeration"))
		c->kind = K_ENUM;
	else
		c->kind = K_STRING;
	c->multi = json_object_object_get_ex(def, "fieldType", &v) &&
		   !g_strcmp0(json_object_get_string(v), "checkbox");
	if (!c->value)
		return 0;
	c->lower = lower(c->value);
	if (c->op == Q_CONTAINS || c->op == Q_NOT_CONTAINS) {
		size_t n;
		g_autofree gunichar *u = ucs4(c->lower, &n);

		if (strchr(c->lower, '*')) {
			c->glob = glob_compile(u, n, &c->nglob);
		} else {
			GArray *t = g_array_new(FALSE, FALSE, sizeof(gunichar));

			c->ntokens = tokenize(u, n, t);
			c->tokens = (gunichar *)(void *)g_array_free(t, FALSE);
		}
		return 0;
	}
	qn = quote(c->name);
	qv = quote(c->value);
	if (c->kind == K_NUMBER && !parse_number_value(c->value, &c->num))
		return fail(why, "%s is not a number, and %s is a number property", qv, qn);
	if (c->kind == K_TIME && !parse_time_value(c->value, &c->ms))
		return fail(why, "%s is not a date or time, and %s is a %s property (write "
			    "YYYY-MM-DD, an ISO-8601 time such as 2024-01-31T12:00:00Z, or epoch "
			    "milliseconds)", qv, qn, type);
	return 0;
}

/* Find the operator of a raw condition: the first operator text after at
 * least one character of name. Returns its offset or -1. */
static long find_op(const char *raw, size_t len, enum qop *op, size_t *oplen)
{
	for (size_t i = 1; i < len; i++) {
		if (!strchr("=!<>~", raw[i]))
			continue;
		for (size_t k = 0; k < G_N_ELEMENTS(op_syntax); k++) {
			size_t n = strlen(op_syntax[k].text);

			if (i + n <= len && !memcmp(raw + i, op_syntax[k].text, n)) {
				*op = op_syntax[k].op;
				*oplen = n;
				return (long)i;
			}
		}
	}
	return -1;
}

/* Parse one raw condition into c, or the free text into q->text. *is_text
 * tells which. */
static int parse_cond(struct query *q, const struct schema *s, const char *raw, size_t len,
		      struct cond *c, bool *is_text, char **why)
{
	g_autofree char *shown = g_strndup(raw, len), *qraw = quote(shown), *qn = NULL;
	size_t oplen = 0;
	enum qop op = Q_EQ;
	long at = find_op(raw, len, &op, &oplen);
	json_object *def;
	int rc;

	*is_text = false;
	memset(c, 0, sizeof(*c));
	for (size_t k = 0; k < G_N_ELEMENTS(op_syntax); k++)
		if (g_str_has_prefix(shown, op_syntax[k].text))
			return fail(why, "condition %s has no property name before its operator",
				    qraw);
	if (at < 0) {
		size_t skip = raw[0] == '!';

		if (raw[len - 1] != '?')
			return fail(why, "condition %s has no operator (use = != < <= > >= ~ !~, "
				    "name? or !name?)", qraw);
		if (len - 1 <= skip)
			return fail(why, "condition %s names no property", qraw);
		c->op = skip ? Q_NOT_HAS : Q_HAS;
		rc = pct_decode(raw + skip, len - 1 - skip, &c->name, why);
		if (rc)
			return rc;
	} else {
		rc = pct_decode(raw, (size_t)at, &c->name, why);
		if (!rc)
			rc = pct_decode(raw + at + oplen, len - (size_t)at - oplen, &c->value, why);
		if (rc)
			return rc;
		c->op = op;
		if (op == Q_EQ && !strcmp(c->name, "q")) {
			g_autofree char *text = g_steal_pointer(&c->value);

			*is_text = true;
			cond_destroy(c);
			if (q->text)
				return fail(why, "free text (q=) appears twice; give it once, it "
					    "applies to the whole query");
			if (g_utf8_strlen(text, -1) > MAX_TEXT)
				return fail(why, "free text (q=) is %ld characters long; HubSpot allows "
					    "at most 3,000", g_utf8_strlen(text, -1));
			q->terms = split_terms(text);
			q->text = g_steal_pointer(&text);
			if (!q->terms[0])
				return fail(why, "free text (q=) is empty");
			return 0;
		}
	}
	qn = quote(c->name);
	if (!*c->name)
		return fail(why, "condition %s names no property", qraw);
	def = schema_prop(s, c->name);
	if (!def)
		return fail(why, "property %s does not exist on %s", qn, q->type->name);
	if (c->value && !*c->value) {
		/* name= and name!= test for a missing / present value. */
		if (op != Q_EQ && op != Q_NEQ)
			return fail(why, "condition %s has no value after its operator", qraw);
		c->op = op == Q_EQ ? Q_NOT_HAS : Q_HAS;
		g_clear_pointer(&c->value, g_free);
	}
	if (c->value && g_utf8_strlen(c->value, -1) > MAX_VALUE)
		return fail(why, "the value for %s is %ld characters long; HubSpot allows at most "
			    "65,536", qn, g_utf8_strlen(c->value, -1));
	return cond_prepare(c, def, why);
}

int query_parse(const char *text, const struct objtype *t, const struct schema *s,
		struct query **out, char **why)
{
	struct query *q;
	g_auto(GStrv) groups = NULL;
	size_t total = 0;
	int rc = 0;

	if (why)
		*why = NULL;
	*out = NULL;
	if (!text || !*text)
		return fail(why, "the query is empty");
	if (!t || !s)
		return fail(why, "search is not available for this object type");
	if (!g_utf8_validate(text, -1, NULL))
		return fail(why, "the query is not valid UTF-8");

	/* The structure first, so "a=1||b=2" is about the '|', not about "a". */
	groups = g_strsplit(text, "|", -1);
	for (size_t g = 0; groups[g]; g++) {
		size_t n = strlen(groups[g]);

		if (!n)
			return fail(why, "group %zu of the query is empty (two '|' in a row, or a '|' "
				    "at the start or end)", g + 1);
		if (groups[g][0] == '&' || groups[g][n - 1] == '&' || strstr(groups[g], "&&"))
			return fail(why, "group %zu of the query has an empty condition (two '&' in a "
				    "row, or a '&' at the start or end)", g + 1);
	}

	q = g_new0(struct query, 1);
	q->type = t;
	q->groups = g_new0(struct group, g_strv_length(groups));
	for (size_t g = 0; groups[g]; g++) {
		g_auto(GStrv) conds = g_strsplit(groups[g], "&", -1);
		struct group *grp = &q->groups[q->ngroups];
		size_t nc = g_strv_length(conds);

		grp->conds = g_new0(struct cond, nc);
		q->ngroups++;
		for (size_t i = 0; i < nc; i++) {
			bool is_text;

			rc = parse_cond(q, s, conds[i], strlen(conds[i]), &grp->conds[grp->n],
					&is_text, why);
			if (!is_text)
				grp->n++; /* even on failure: its fields are freed with q */
			if (rc)
				goto out;
		}
		if (!grp->n) {
			/* The group held only q=, which applies to the whole query. */
			g_free(grp->conds);
			grp->conds = NULL;
			q->ngroups--;
		}
	}
	if (q->ngroups > MAX_GROUPS) {
		rc = fail(why, "the query has %zu groups; HubSpot allows at most 5 '|'-separated "
			  "groups", q->ngroups);
		goto out;
	}
	for (size_t g = 0; g < q->ngroups; g++) {
		if (q->groups[g].n > MAX_PER_GROUP) {
			rc = fail(why, "group %zu of the query has %zu conditions; HubSpot allows at "
				  "most 6 in a group", g + 1, q->groups[g].n);
			goto out;
		}
		total += q->groups[g].n;
	}
	if (total > MAX_FILTERS) {
		rc = fail(why, "the query has %zu conditions; HubSpot allows at most 18 in all",
			  total);
		goto out;
	}
out:
	if (rc) {
		query_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

/* ---------------------------------------------------------------- request */

json_object *query_request(const struct query *q, const char *const *props, size_t nprops,
			   int limit, const char *after, uint64_t above)
{
	json_object *req = search_req_new();
	char bound[24];

	snprintf(bound, sizeof(bound), "%" G_GUINT64_FORMAT, above);
	for (size_t g = 0; g < q->ngroups; g++) {
		json_object *filters = search_req_group(req);

		for (size_t i = 0; i < q->groups[g].n; i++) {
			const struct cond *c = &q->groups[g].conds[i];

			search_req_filter(filters, c->name, op_api[c->op], c->value);
		}
		if (above)
			search_req_filter(filters, "hs_object_id", "GT", bound);
	}
	if (above && !q->ngroups)
		search_req_filter(search_req_group(req), "hs_object_id", "GT", bound);
	if (q->text)
		search_req_text(req, q->text);
	search_req_props(req, props, nprops);
	search_req_page(req, limit, after);
	search_req_sort(req, "hs_object_id", true);
	return req;
}

bool query_can_window(const struct query *q)
{
	size_t total = 0;

	for (size_t g = 0; g < q->ngroups; g++) {
		if (q->groups[g].n + 1 > MAX_PER_GROUP)
			return false;
		total += q->groups[g].n + 1;
	}
	return total + (q->ngroups ? 0 : 1) <= MAX_FILTERS;
}

/* ---------------------------------------------------------------- matching */

/* A property's value, or NULL when unset: missing, null or "" (hubfs shows an
 * unset property as null; an edit clears with null or ""; HubSpot stores
 * neither). Non-strings (a number an editor typed) as their JSON text. */
static const char *get(json_object *props, const char *name)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(props, name, &v) || !v)
		return NULL;
	s = json_object_get_string(v);
	return s && *s ? s : NULL;
}

static bool enum_has(const struct cond *c, const char *stored)
{
	size_t n = strlen(c->value);
	const char *p = stored;

	if (!c->multi)
		return !strcmp(stored, c->value);
	for (;;) {
		const char *e = strchr(p, ';');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && !memcmp(p, c->value, n))
			return true;
		if (!e)
			return false;
		p = e + 1;
	}
}

/* Three-way comparison of the stored value with the condition's value, for
 * LT..GTE; false when the stored value does not parse. */
static bool compare(const struct cond *c, const char *stored, int *cmp)
{
	double d;
	int64_t ms;

	switch (c->kind) {
	case K_NUMBER:
		if (!parse_number_stored(stored, &d) || isnan(d))
			return false;
		*cmp = d < c->num ? -1 : d > c->num;
		return true;
	case K_TIME:
		if (!parse_time_stored(stored, &ms))
			return false;
		*cmp = ms < c->ms ? -1 : ms > c->ms;
		return true;
	case K_ENUM:
		*cmp = strcmp(stored, c->value);
		return true;
	case K_STRING: {
		g_autofree char *l = lower(stored);

		*cmp = strcmp(l, c->lower);
		return true;
	}
	}
	return false;
}

static bool equal(const struct cond *c, const char *stored)
{
	double d;
	int64_t ms;

	switch (c->kind) {
	case K_NUMBER:
		return parse_number_stored(stored, &d) && d == c->num;
	case K_TIME:
		return parse_time_stored(stored, &ms) && ms == c->ms;
	case K_ENUM:
		return enum_has(c, stored);
	case K_STRING: {
		g_autofree char *l = lower(stored);

		return !strcmp(l, c->lower);
	}
	}
	return false;
}

static bool cond_match(const struct cond *c, json_object *props)
{
	const char *v = get(props, c->name);
	int cmp;

	switch (c->op) {
	case Q_HAS:
		return v != NULL;
	case Q_NOT_HAS:
		return v == NULL;
	case Q_EQ:
		return v && equal(c, v);
	case Q_NEQ:
		return !v || !equal(c, v);
	case Q_CONTAINS:
		return v && contains_token(c, v);
	case Q_NOT_CONTAINS:
		return !v || !contains_token(c, v);
	case Q_LT:
		return v && compare(c, v, &cmp) && cmp < 0;
	case Q_LTE:
		return v && compare(c, v, &cmp) && cmp <= 0;
	case Q_GT:
		return v && compare(c, v, &cmp) && cmp > 0;
	case Q_GTE:
		return v && compare(c, v, &cmp) && cmp >= 0;
	}
	return false;
}

static bool text_match(const struct query *q, json_object *props)
{
	const char *const *names = q->type->text_props;
	size_t n = 0;
	bool ok = true;
	char **hay;

	for (; names && names[n]; n++)
		;
	hay = g_new0(char *, n + 1);
	for (size_t i = 0; i < n; i++) {
		const char *v = get(props, names[i]);

		hay[i] = v ? lower(v) : NULL;
	}
	for (size_t t = 0; q->terms[t] && ok; t++) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = hay[i] && strstr(hay[i], q->terms[t]);
		ok = found;
	}
	for (size_t i = 0; i < n; i++)
		g_free(hay[i]);
	g_free(hay);
	return ok;
}

bool query_match(const struct query *q, json_object *props)
{
	bool any = q->ngroups == 0;

	for (size_t g = 0; g < q->ngroups && !any; g++) {
		bool all = true;

		for (size_t i = 0; i < q->groups[g].n && all; i++)
			all = cond_match(&q->groups[g].conds[i], props);
		any = all;
	}
	return any && (!q->text || text_match(q, props));
}
