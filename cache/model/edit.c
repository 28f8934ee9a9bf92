#include "cache/model/edit.h"
#include "cache/model/edit_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/json_util.h"
#include "cache/model/objtypes.h"
#include "cache/model/record.h"

#define STRING_MAX 65536    /* characters in a property value: HubSpot stores no more */
#define SHOW_VALUE_MAX 60   /* characters of a value quoted in a reason */
#define SHOW_LIST_MAX 160   /* bytes of an option list in a reason before "…" */
#define DAY_MS INT64_C(86400000)

static const char *const top_keys[] = { "id", "properties", "createdAt", "updatedAt", "archived",
					NULL };
static const char *const system_keys[] = { "id", "createdAt", "updatedAt", "archived", NULL };

/* ---------------------------------------------------------------- reasons */

void G_GNUC_PRINTF(3, 4) edit_set_err(struct edit_error *err, const char *prop, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	const char *end;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* Cut both at a character boundary so a reason is always valid UTF-8
	 * (a property name the writer made up may hold any bytes: up to the
	 * first that is not UTF-8). */
	g_strlcpy(err->property, prop ? prop : "", sizeof(err->property));
	if (!g_utf8_validate(err->property, -1, &end))
		err->property[end - err->property] = '\0';
	json_util_copy_utf8(err->reason, sizeof(err->reason), msg);
}

/* A value as it appears in a reason: JSON-quoted (so newlines and quotes stay on
 * one line) and cut to SHOW_VALUE_MAX characters. g_free it. */
char *edit_quote(const char *v)
{
	g_autofree char *cut = NULL;
	json_object *s;
	char *out;

	if (g_utf8_validate(v, -1, NULL) && g_utf8_strlen(v, -1) > SHOW_VALUE_MAX) {
		const char *end = g_utf8_offset_to_pointer(v, SHOW_VALUE_MAX);

		cut = g_strdup_printf("%.*s…", (int)(end - v), v);
		v = cut;
	}
	s = json_object_new_string(v);
	out = g_strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(s);
	return out;
}

/* names joined by ", ", cut after SHOW_LIST_MAX bytes with ", …". g_free it. */
char *edit_join_list(GPtrArray *names)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < names->len; i++) {
		if (i && s->len + strlen(names->pdata[i]) > SHOW_LIST_MAX) {
			g_string_append(s, ", …");
			break;
		}
		if (i)
			g_string_append(s, ", ");
		g_string_append(s, names->pdata[i]);
	}
	if (!names->len)
		g_string_append(s, "(none)");
	return g_string_free(s, FALSE);
}

/* ---------------------------------------------------------------- parsing */

/* "an array", "null", … for reasons about a value's JSON type. */
const char *edit_type_noun(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "true or false";
	case json_type_int:
	case json_type_double:
		return "a number";
	case json_type_string:
		return "a string";
	case json_type_array:
		return "an array";
	default:
		return "an object";
	}
}


static bool bool_field(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* 1-based line and column (in characters) of byte offset off. */
static void line_col(const char *buf, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void json_err(const char *buf, size_t off, const char *what, struct edit_error *err)
{
	unsigned line, col;

	line_col(buf, off, &line, &col);
	edit_set_err(err, NULL, "invalid JSON at line %u, column %u: %s", line, col, what);
}

int edit_parse_json(const char *buf, size_t len, json_object **out, struct edit_error *err)
{
	struct json_tokener *tok;
	enum json_tokener_error e;
	json_object *o;
	size_t end, i;
	int rc = -EINVAL;

	*out = NULL;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	for (i = 0; i < len && is_ws(buf[i]); i++)
		;
	if (i == len) {
		edit_set_err(err, NULL, "empty file");
		return -EINVAL;
	}
	if (len > INT32_MAX) {
		edit_set_err(err, NULL, "file too large");
		return -EINVAL;
	}
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
			       JSON_TOKENER_ALLOW_TRAILING_CHARS);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (e == json_tokener_continue) {
		/* A NUL ends a trailing number or reports what is unfinished. */
		o = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
		end = len;
	}
	if (e != json_tokener_success) {
		if (end < len && buf[end] == '\0')
			json_err(buf, end, "unexpected NUL byte", err);
		else if (e == json_tokener_error_parse_eof)
			json_err(buf, end, "unexpected end of file", err);
		else
			json_err(buf, end, json_tokener_error_desc(e), err);
		goto out;
	}
	for (i = end; i < len && is_ws(buf[i]); i++)
		;
	if (i < len) {
		json_err(buf, i, "unexpected text after the end of the JSON value", err);
		json_object_put(o);
		goto out;
	}
	/* json-c's VALIDATE_UTF8 lets overlong forms, surrogates and code points
	 * past U+10FFFF through; GLib's check does not (escapes like \ud800 are
	 * already U+FFFD). */
	const char *bad;

	if (!g_utf8_validate_len(buf, end, &bad)) {
		json_err(buf, (size_t)(bad - buf), "invalid utf-8 string", err);
		json_object_put(o);
		goto out;
	}
	*out = o;
	rc = 0;
out:
	json_tokener_free(tok);
	return rc;
}

/* The end of the JSON string token starting at buf[i] ('"'): the offset of
 * its closing quote. The text is valid JSON (json-c parsed it). */
static size_t string_end(const char *buf, size_t len, size_t i)
{
	for (i++; i < len && buf[i] != '"'; i++)
		if (buf[i] == '\\')
			i++;
	return i;
}

/* The string token buf[a..b] ('"' at both ends), escapes decoded, so that
 * "email" and "\u0065mail" are the same key (as they are to json-c). g_free. */
static char *string_value(const char *buf, size_t a, size_t b)
{
	g_autofree char *tok = g_strndup(buf + a, b - a + 1);
	json_object *o = json_tokener_parse(tok);
	char *s = g_strdup(o && json_object_is_type(o, json_type_string) ? json_object_get_string(o)
									 : tok);

	json_object_put(o);
	return s;
}

/* A key that appears twice in one object of buf (valid JSON: json-c parsed it
 * and kept only the last value, silently dropping the others). Returns the
 * first such key (g_free) with its offset in *at and whether it is in the
 * top-level "properties" object, or NULL. */
static char *duplicate_key(const char *buf, size_t len, size_t *at, bool *in_props)
{
	struct frame {
		GHashTable *keys;   /* NULL for an array */
		bool want_key;
		bool is_props;
	};
	GArray *st = g_array_new(FALSE, TRUE, sizeof(struct frame));
	char *dup = NULL, *last_key = NULL;

	for (size_t i = 0; i < len && !dup; i++) {
		struct frame *top = st->len ? &g_array_index(st, struct frame, st->len - 1) : NULL;
		char c = buf[i];

		if (c == '"') {
			size_t e = string_end(buf, len, i);

			if (top && top->keys && top->want_key) {
				char *k = string_value(buf, i, e);

				top->want_key = false;
				if (!g_hash_table_add(top->keys, k)) {
					dup = g_strdup(k);
					*at = i;
					*in_props = top->is_props;
				}
				g_free(last_key);
				last_key = g_strdup(k);
			}
			i = e;
		} else if (c == '{' || c == '[') {
			struct frame f = { .want_key = c == '{' };

			if (c == '{')
				f.keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			/* the value of "properties" in the top-level object */
			f.is_props = st->len == 1 && c == '{' && last_key && !strcmp(last_key, "properties");
			g_array_append_val(st, f);
		} else if (c == '}' || c == ']') {
			if (top && top->keys)
				g_hash_table_destroy(top->keys);
			if (st->len)
				g_array_set_size(st, st->len - 1);
		} else if (c == ',' && top && top->keys) {
			top->want_key = true;
		}
	}
	for (guint i = 0; i < st->len; i++)
		if (g_array_index(st, struct frame, i).keys)
			g_hash_table_destroy(g_array_index(st, struct frame, i).keys);
	g_array_unref(st);
	g_free(last_key);
	return dup;
}

/* Parse an edit or a new-record file: one object with only the record's keys and
 * a properties object. On success *top is owned by the caller, *props borrowed. */
int edit_parse_file(const char *buf, size_t len, bool creating, json_object **top,
		    json_object **props, struct edit_error *err)
{
	json_object *o;

	if (edit_parse_json(buf, len, &o, err) < 0)
		return -EINVAL;
	if (!json_object_is_type(o, json_type_object)) {
		edit_set_err(err, NULL, "the file must hold one JSON object, not %s", edit_type_noun(o));
		goto fail;
	}
	{
		size_t at = 0;
		bool in_props = false;
		g_autofree char *dup = duplicate_key(buf, len, &at, &in_props);

		if (dup) {
			g_autofree char *q = edit_quote(dup);
			unsigned line, col;

			line_col(buf, at, &line, &col);
			edit_set_err(err, in_props ? dup : NULL, "duplicate key %s%s at line %u, column %u: "
				"a key may appear once (which value was meant?)", q,
				in_props ? " in \"properties\"" : "", line, col);
			goto fail;
		}
	}
	json_object_object_foreach(o, key, v) {
		bool known = false;

		(void)v;
		for (const char *const *k = top_keys; *k && !known; k++)
			known = !strcmp(key, *k);
		if (!known && creating && !strcmp(key, "associations"))
			continue;
		if (!known) {
			g_autofree char *q = edit_quote(key);

			edit_set_err(err, NULL, "unknown key %s; a record file has only id, properties, "
				"createdAt, updatedAt and archived%s", q,
				creating ? " (and, to create, associations)" : "");
			goto fail;
		}
	}
	if (!json_object_object_get_ex(o, "properties", props)) {
		edit_set_err(err, NULL, "\"properties\" is missing");
		goto fail;
	}
	if (!json_object_is_type(*props, json_type_object)) {
		edit_set_err(err, NULL, "\"properties\" must be an object, not %s", edit_type_noun(*props));
		goto fail;
	}
	*top = o;
	return 0;
fail:
	json_object_put(o);
	return -EINVAL;
}

/* The string a property value stands for: null -> "", true -> "true", numbers as
 * written. Borrowed from v. Returns NULL with err set for arrays, objects,
 * non-JSON numbers (NaN, Infinity), integers json-c could not hold, and strings
 * with a NUL character. */
const char *edit_value_string(const char *name, json_object *v, struct edit_error *err)
{
	const char *s;

	switch (json_object_get_type(v)) {
	case json_type_null:
		return "";
	case json_type_boolean:
		return json_object_get_boolean(v) ? "true" : "false";
	case json_type_string:
		s = json_object_get_string(v);
		if (strlen(s) != (size_t)json_object_get_string_len(v)) {
			edit_set_err(err, name, "property \"%s\" contains a NUL character", name);
			return NULL;
		}
		return s;
	case json_type_int:
		s = json_object_get_string(v);
		/* json-c saturates integers it cannot hold; the digits written are lost. */
		if (!strcmp(s, "9223372036854775807") || !strcmp(s, "-9223372036854775808") ||
		    !strcmp(s, "18446744073709551615")) {
			edit_set_err(err, name, "property \"%s\": the number is too large; write it as a "
				"string", name);
			return NULL;
		}
		return s;
	case json_type_double:
		s = json_object_get_string(v);   /* json-c keeps the text as written */
		if (!g_ascii_isdigit(s[s[0] == '-'])) {
			edit_set_err(err, name, "property \"%s\": %s is not a JSON number", name, s);
			return NULL;
		}
		return s;
	default:
		edit_set_err(err, name, "property \"%s\": a value must be a string, number, true, false or "
			"null, not %s", name, edit_type_noun(v));
		return NULL;
	}
}

/* ---------------------------------------------------------------- formats */

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isdigit(s[i]))
			return false;
	return true;
}

static bool all_digits(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && digits(s, n);
}

/* A number in the one form hubfs sends HubSpot (and shows): an optional -,
 * digits with an optional fraction, no exponent and no + (plain_number turns
 * such forms into this one first). */
static bool is_number(const char *s)
{
	const char *p = s;
	size_t ip, fp = 0;

	if (*p == '-')
		p++;
	ip = strspn(p, "0123456789");
	p += ip;
	if (*p == '.') {
		p++;
		fp = strspn(p, "0123456789");
		p += fp;
	}
	return ip + fp > 0 && *p == '\0';
}

/* s written with an exponent or a leading + ("1e2", "+1.5E-3", a JSON
 * number like 2.5e3) as the plain decimal HubSpot takes ("100", "0.0015",
 * "2500"), digit for digit. NULL if s is not such a number or its exponent
 * is beyond ±64. g_free it. */
static char *plain_number(const char *s)
{
	const char *p = s, *ip, *fp = "";
	size_t il, fl = 0;
	bool neg = false, plus = false;
	long e = 0;
	GString *d, *out;

	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		plus = *p == '+';
		p++;
	}
	ip = p;
	il = strspn(p, "0123456789");
	p += il;
	if (*p == '.') {
		fp = ++p;
		fl = strspn(p, "0123456789");
		p += fl;
	}
	if (il + fl == 0)
		return NULL;
	if (*p == 'e' || *p == 'E') {
		bool eneg = false;
		size_t el;

		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		el = strspn(p, "0123456789");
		if (!el || el > 3)
			return NULL;
		e = strtol(p, NULL, 10) * (eneg ? -1 : 1);
		p += el;
		if (e > 64 || e < -64)
			return NULL;
	} else if (!plus) {
		return NULL;
	}
	if (*p)
		return NULL;
	/* digits d with the point after position point */
	d = g_string_new_len(ip, (gssize)il);
	g_string_append_len(d, fp, (gssize)fl);
	long point = (long)il + e;
	out = g_string_new(neg ? "-" : "");
	if (point <= 0) {
		g_string_append(out, "0.");
		for (long i = point; i < 0; i++)
			g_string_append_c(out, '0');
		g_string_append(out, d->str);
	} else if ((size_t)point >= d->len) {
		g_string_append(out, d->str);
		for (long i = (long)d->len; i < point; i++)
			g_string_append_c(out, '0');
	} else {
		g_string_append_len(out, d->str, point);
		g_string_append_c(out, '.');
		g_string_append(out, d->str + point);
	}
	g_string_free(d, TRUE);
	/* no leading zeros before the point, none trailing after it */
	{
		size_t start = neg ? 1 : 0, z = start;

		while (out->str[z] == '0' && out->str[z + 1] && out->str[z + 1] != '.')
			z++;
		g_string_erase(out, (gssize)start, (gssize)(z - start));
		if (strchr(out->str, '.')) {
			while (out->str[out->len - 1] == '0')
				g_string_truncate(out, out->len - 1);
			if (out->str[out->len - 1] == '.')
				g_string_truncate(out, out->len - 1);
		}
		if (!strcmp(out->str, "-0"))
			g_string_assign(out, "0");
	}
	return g_string_free(out, FALSE);
}

/* The value as it will be sent: a number property written with an exponent
 * or a + becomes plain decimal (*owned holds it; g_free it), anything else is
 * val itself. */
const char *edit_sent_value(json_object *def, const char *val, char **owned)
{
	const char *type = json_util_field(def, "type");

	*owned = NULL;
	if (type && !strcmp(type, "number") && *val)
		*owned = plain_number(val);
	return *owned ? *owned : val;
}

/* YYYY-MM-DD, a real calendar day. */
static bool is_ymd(const char *s)
{
	unsigned y, m, d;

	if (strlen(s) < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2))
		return false;
	y = (unsigned)atoi(s);
	m = (unsigned)atoi(s + 5);
	d = (unsigned)atoi(s + 8);
	return y >= 1 && g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y);
}

static bool is_date(const char *s)
{
	if (all_digits(s, 15)) {
		int64_t ms = g_ascii_strtoll(s, NULL, 10);

		return ms % DAY_MS == 0;    /* HubSpot wants date values at midnight UTC */
	}
	return strlen(s) == 10 && is_ymd(s);
}

/* What record_parse_time accepts, checked strictly: epoch ms, or
 * YYYY-MM-DDTHH:MM:SS[.fff]Z / +00:00 with every field in range. */
static bool is_datetime(const char *s)
{
	const char *p;
	int64_t ms;

	if (all_digits(s, 15))
		return true;
	if (!is_ymd(s) || s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2))
		return false;
	if (atoi(s + 11) > 23 || atoi(s + 14) > 59 || atoi(s + 17) > 59)
		return false;
	p = s + 19;
	if (*p == '.') {
		size_t n = strspn(p + 1, "0123456789");

		if (!n)
			return false;
		p += 1 + n;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return false;
	return record_parse_time(s, &ms) == 0;
}

/* ---------------------------------------------------------------- options */

static GPtrArray *option_values(json_object *def)
{
	GPtrArray *vals = g_ptr_array_new();
	json_object *opts;

	if (json_object_object_get_ex(def, "options", &opts) && json_object_is_type(opts, json_type_array)) {
		size_t n = json_object_array_length(opts);

		for (size_t i = 0; i < n; i++) {
			const char *v = json_util_field(json_object_array_get_idx(opts, i), "value");

			if (v)
				g_ptr_array_add(vals, (gpointer)v);
		}
	}
	return vals;
}

static bool in_list(GPtrArray *vals, const char *v, size_t n)
{
	for (guint i = 0; i < vals->len; i++) {
		const char *o = vals->pdata[i];

		if (strlen(o) == n && !memcmp(o, v, n))
			return true;
	}
	return false;
}

/* An enumeration value against the definition's options; checkbox fields hold
 * ;-separated values (a leading ; appends). Definitions without options (owner,
 * pipeline and other external lists) are not checked here. */
static int check_options(const char *name, json_object *def, const char *val, struct edit_error *err)
{
	GPtrArray *vals = option_values(def);
	const char *ft = json_util_field(def, "fieldType");
	int rc = 0;

	if (!vals->len)
		goto out;
	if (ft && !strcmp(ft, "checkbox")) {
		const char *p = val + (val[0] == ';');

		for (;;) {
			size_t n = strcspn(p, ";");

			if (!in_list(vals, p, n)) {
				g_autofree char *one = g_strndup(p, n), *q = edit_quote(one);
				g_autofree char *list = edit_join_list(vals);

				if (n)
					edit_set_err(err, name, "property \"%s\": %s is not one of %s", name, q, list);
				else
					edit_set_err(err, name, "property \"%s\": empty value in the ;-separated "
						"list; choose from %s", name, list);
				rc = -EINVAL;
				goto out;
			}
			if (!p[n])
				break;
			p += n + 1;
		}
	} else if (!in_list(vals, val, strlen(val))) {
		g_autofree char *q = edit_quote(val), *list = edit_join_list(vals);

		edit_set_err(err, name, "property \"%s\": %s is not one of %s", name, q, list);
		rc = -EINVAL;
	}
out:
	g_ptr_array_free(vals, TRUE);
	return rc;
}

static bool is_owner_prop(const char *name, json_object *def)
{
	const char *ref = json_util_field(def, "referencedObjectType");

	return !strcmp(name, "hubspot_owner_id") || (ref && !strcmp(ref, "OWNER"));
}

static bool is_pipe_prop(const struct edit_ctx *ctx, const char *name)
{
	const struct objtype *t = ctx->type;

	return t->pipeline_prop && (!strcmp(name, t->pipeline_prop) || !strcmp(name, t->stage_prop));
}

/* Validate a non-empty value being written to name, everything but the
 * pipeline/stage relation (edit_check_pipelines). */
int edit_check_value(const struct edit_ctx *ctx, const char *name, json_object *def,
		       const char *val, struct edit_error *err)
{
	const char *type = json_util_field(def, "type");
	g_autofree char *q = NULL;
	glong nchars;

	if (!type)
		type = "string";
	nchars = g_utf8_strlen(val, -1);
	if (nchars > STRING_MAX) {
		edit_set_err(err, name, "property \"%s\" is %ld characters long; the limit is 65,536",
			name, nchars);
		return -EINVAL;
	}
	if (!strcmp(type, "string") || !strcmp(type, "phone_number"))
		return 0;
	q = edit_quote(val);
	/* HubSpot rejects non-string values with leading or trailing whitespace
	 * (a 400, since 2025-04-07). */
	if (g_ascii_isspace(val[0]) || g_ascii_isspace(val[strlen(val) - 1])) {
		edit_set_err(err, name, "property \"%s\": %s has leading or trailing whitespace, which %s "
			"properties do not allow", name, q, type);
		return -EINVAL;
	}
	if (!strcmp(type, "number")) {
		if (!is_number(val)) {
			edit_set_err(err, name, "property \"%s\": %s is not a number", name, q);
			return -EINVAL;
		}
	} else if (!strcmp(type, "bool")) {
		if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0) {
			edit_set_err(err, name, "property \"%s\": %s is not true or false", name, q);
			return -EINVAL;
		}
	} else if (!strcmp(type, "date")) {
		if (!is_date(val)) {
			edit_set_err(err, name, "property \"%s\": %s is not a date (YYYY-MM-DD, or epoch "
				"milliseconds at midnight UTC)", name, q);
			return -EINVAL;
		}
	} else if (!strcmp(type, "datetime")) {
		if (!is_datetime(val)) {
			edit_set_err(err, name, "property \"%s\": %s is not a date-time (like "
				"2024-01-17T19:55:04.281Z, or epoch milliseconds)", name, q);
			return -EINVAL;
		}
	} else if (!strcmp(type, "enumeration")) {
		if (is_owner_prop(name, def)) {
			if (ctx->owner_ids && json_object_is_type(ctx->owner_ids, json_type_array)) {
				size_t n = json_object_array_length(ctx->owner_ids);

				for (size_t i = 0; i < n; i++)
					if (!g_strcmp0(json_object_get_string(json_object_array_get_idx(ctx->owner_ids, i)), val))
						return 0;
				edit_set_err(err, name, "property \"%s\": %s is not an owner id (see owners/)",
					name, q);
				return -EINVAL;
			}
			return 0;
		}
		if (is_pipe_prop(ctx, name) || bool_field(def, "externalOptions") ||
		    json_util_field(def, "referencedObjectType"))
			return 0;
		return check_options(name, def, val, err);
	}
	return 0;
}

/* ---------------------------------------------------------------- pipelines */

static json_object *pipeline_find(json_object *pipes, const char *id)
{
	size_t n = id ? json_object_array_length(pipes) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(pipes, i);

		if (!g_strcmp0(json_util_field(p, "id"), id) && !bool_field(p, "archived"))
			return p;
	}
	return NULL;
}

/* The pipeline a record without one is put in: the type's default id, else
 * the lowest displayOrder, else the first. */
static json_object *pipeline_default(json_object *pipes, const char *default_id)
{
	json_object *best = pipeline_find(pipes, default_id), *v;
	int64_t best_order = INT64_MAX;
	size_t n = json_object_array_length(pipes);

	if (best)
		return best;
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(pipes, i);
		int64_t order = json_object_object_get_ex(p, "displayOrder", &v) ?
				json_object_get_int64(v) : INT64_MAX - 1;

		if (!bool_field(p, "archived") && order < best_order) {
			best = p;
			best_order = order;
		}
	}
	if (!best && n)
		best = json_object_array_get_idx(pipes, 0);
	return best;
}

static GPtrArray *stage_ids(json_object *pipe)
{
	GPtrArray *ids = g_ptr_array_new();
	json_object *stages;

	if (json_object_object_get_ex(pipe, "stages", &stages) &&
	    json_object_is_type(stages, json_type_array)) {
		size_t n = json_object_array_length(stages);

		for (size_t i = 0; i < n; i++) {
			json_object *st = json_object_array_get_idx(stages, i);
			const char *id = json_util_field(st, "id");

			if (id && !bool_field(st, "archived"))
				g_ptr_array_add(ids, (gpointer)id);
		}
	}
	return ids;
}

static bool stage_in(json_object *pipe, const char *stage)
{
	GPtrArray *ids = stage_ids(pipe);
	bool found = in_list(ids, stage, strlen(stage));

	g_ptr_array_free(ids, TRUE);
	return found;
}

static const char *changed_str(json_object *changes, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(changes, name, &v) ? json_object_get_string(v) : NULL;
}

/* The pipeline and stage written (in changes) must exist and belong together;
 * the pipeline a record keeps is its base value, or the default pipeline.
 * bprops: the base record's properties, NULL for a new record. */
int edit_check_pipelines(const struct edit_ctx *ctx, json_object *changes, json_object *bprops,
			 struct edit_error *err)
{
	const struct objtype *t = ctx->type;
	const char *pp = t->pipeline_prop, *sp = t->stage_prop;
	const char *new_pipe, *new_stage, *base_pipe, *base_stage;
	json_object *pipes = ctx->pipelines, *pipe;

	if (!pp || !pipes || !json_object_is_type(pipes, json_type_array))
		return 0;
	new_pipe = changed_str(changes, pp);
	new_stage = changed_str(changes, sp);
	if (!new_pipe && !new_stage)
		return 0;
	base_pipe = bprops ? json_util_field(bprops, pp) : NULL;
	base_stage = bprops ? json_util_field(bprops, sp) : NULL;

	if (new_pipe) {
		if (!*new_pipe) {
			edit_set_err(err, pp, "property \"%s\" cannot be cleared: every %s is in a "
				"pipeline", pp, t->singular);
			return -EINVAL;
		}
		pipe = pipeline_find(pipes, new_pipe);
		if (!pipe) {
			GPtrArray *ids = g_ptr_array_new();
			g_autofree char *q = edit_quote(new_pipe), *list = NULL;
			size_t n = json_object_array_length(pipes);

			for (size_t i = 0; i < n; i++) {
				json_object *p = json_object_array_get_idx(pipes, i);

				if (json_util_field(p, "id") && !bool_field(p, "archived"))
					g_ptr_array_add(ids, (gpointer)json_util_field(p, "id"));
			}
			list = edit_join_list(ids);
			g_ptr_array_free(ids, TRUE);
			edit_set_err(err, pp, "property \"%s\": %s is not a %s pipeline; pipelines: %s",
				pp, q, t->name, list);
			return -EINVAL;
		}
	} else if (base_pipe && *base_pipe) {
		pipe = pipeline_find(pipes, base_pipe);
	} else {
		pipe = pipeline_default(pipes, t->default_pipeline);
	}

	if (new_stage) {
		if (!*new_stage) {
			edit_set_err(err, sp, "property \"%s\" cannot be cleared: every %s has a stage",
				sp, t->singular);
			return -EINVAL;
		}
		if (!pipe) {
			/* The record's pipeline is not (or no longer) listed: accept any
			 * stage some pipeline has, and let HubSpot judge. */
			size_t n = json_object_array_length(pipes);

			for (size_t i = 0; i < n; i++)
				if (stage_in(json_object_array_get_idx(pipes, i), new_stage))
					return 0;
			g_autofree char *q = edit_quote(new_stage);

			edit_set_err(err, sp, "property \"%s\": %s is not a stage of any %s pipeline",
				sp, q, t->name);
			return -EINVAL;
		}
		if (!stage_in(pipe, new_stage)) {
			GPtrArray *ids = stage_ids(pipe);
			g_autofree char *q = edit_quote(new_stage), *list = edit_join_list(ids), *pq = NULL;

			g_ptr_array_free(ids, TRUE);
			pq = edit_quote(json_util_field(pipe, "id") ? json_util_field(pipe, "id") : "");
			edit_set_err(err, sp, "property \"%s\": %s is not a stage of pipeline %s (%s); "
				"its stages: %s", sp, q, pq,
				json_util_field(pipe, "label") ? json_util_field(pipe, "label") : "", list);
			return -EINVAL;
		}
	} else if (new_pipe && base_stage && *base_stage && !stage_in(pipe, base_stage)) {
		/* Moving to another pipeline without a stage of it. */
		GPtrArray *ids = stage_ids(pipe);
		g_autofree char *q = edit_quote(base_stage), *pq = edit_quote(new_pipe);
		g_autofree char *list = edit_join_list(ids);

		g_ptr_array_free(ids, TRUE);
		edit_set_err(err, pp, "property \"%s\": the %s's %s %s is not a stage of pipeline "
			"%s; set %s too (%s)", pp, t->singular, sp, q, pq, sp, list);
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- edits */

void edit_unknown_prop(const struct edit_ctx *ctx, const char *name, struct edit_error *err)
{
	g_autofree char *q = edit_quote(name);   /* a name the writer made up may hold anything */

	edit_set_err(err, name, "property %s does not exist on %s", q, ctx->type->name);
}

static int parse_base(const char *base, size_t base_len, json_object **obj, json_object **props,
		      struct edit_error *err)
{
	struct edit_error ignored;

	*obj = NULL;
	if (!base || edit_parse_json(base, base_len, obj, &ignored) < 0 ||
	    !json_object_is_type(*obj, json_type_object) ||
	    !json_object_object_get_ex(*obj, "properties", props) ||
	    !json_object_is_type(*props, json_type_object)) {
		json_object_put(*obj);
		*obj = NULL;
		edit_set_err(err, NULL, "internal error: the record's current version is not a record file");
		return -EINVAL;
	}
	return 0;
}

static const char *shown_str(json_object *v)
{
	return v ? json_object_get_string(v) : "null";
}

/* A string holding a NUL character (its C string is cut short). */
static bool has_nul(json_object *v)
{
	return v && json_object_is_type(v, json_type_string) &&
	       strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v);
}

/* A system value as a reason shows it: as written, or JSON-quoted if it holds
 * anything that would break the reason's line. g_free it. */
static char *shown_sys(json_object *v)
{
	const char *s = shown_str(v);

	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
			return edit_quote(s);
	if (has_nul(v))
		return edit_quote(s);
	return g_strdup(s);
}

/* Both are strings with the same bytes (NULs included). */
static bool same_string(json_object *a, json_object *b)
{
	if (!a || !b || !json_object_is_type(a, json_type_string) ||
	    !json_object_is_type(b, json_type_string))
		return false;
	return json_object_get_string_len(a) == json_object_get_string_len(b) &&
	       memcmp(json_object_get_string(a), json_object_get_string(b),
		      (size_t)json_object_get_string_len(a)) == 0;
}

int edit_parse(const struct edit_ctx *ctx, const char *buf, size_t len, const char *base,
	       size_t base_len, json_object **changes, json_object **bases, struct edit_error *err)
{
	json_object *top = NULL, *props, *bobj = NULL, *bprops, *ch = NULL, *bs = NULL;
	int rc = -EINVAL;

	*changes = NULL;
	*bases = NULL;
	if (edit_parse_file(buf, len, false, &top, &props, err) < 0)
		goto out;
	if (parse_base(base, base_len, &bobj, &bprops, err) < 0)
		goto out;

	for (const char *const *k = system_keys; *k; k++) {
		json_object *ev, *bv = NULL;

		if (!json_object_object_get_ex(top, *k, &ev))
			continue;
		json_object_object_get_ex(bobj, *k, &bv);
		if (!same_string(ev, bv) &&
		    (has_nul(ev) || has_nul(bv) || strcmp(shown_str(ev), shown_str(bv)) != 0)) {
			g_autofree char *was = shown_sys(bv), *now = shown_sys(ev);

			edit_set_err(err, NULL, "\"%s\" cannot be changed (%s → %s)", *k, was, now);
			goto out;
		}
	}

	ch = json_object_new_object();
	bs = json_object_new_object();
	json_object_object_foreach(props, name, v) {
		json_object *def = schema_prop(ctx->schema, name), *bv = NULL;
		const char *val, *bval = NULL;
		bool shown;

		if (!def) {
			edit_unknown_prop(ctx, name, err);
			goto out;
		}
		/* The base file shows every shown property; for any other the
		 * writer never saw a value, so whatever they wrote is a change. */
		shown = json_object_object_get_ex(bprops, name, &bv);
		/* Unchanged, even a value hubfs could not take from a writer (a NUL). */
		if (shown && same_string(v, bv))
			continue;
		val = edit_value_string(name, v, err);
		if (!val)
			goto out;
		g_autofree char *plain = NULL;

		val = edit_sent_value(def, val, &plain);
		if (shown) {
			bval = bv ? json_object_get_string(bv) : "";
			if (!strcmp(val, bval) && !has_nul(bv))
				continue;
		}
		if (schema_prop_readonly(def)) {
			edit_set_err(err, name, "property \"%s\" is read-only", name);
			goto out;
		}
		if (*val && edit_check_value(ctx, name, def, val, err) < 0)
			goto out;
		json_object_object_add(ch, name, json_object_new_string(val));
		json_object_object_add(bs, name, !bv ? NULL : has_nul(bv) ?
				       json_object_new_string_len(bval, json_object_get_string_len(bv)) :
				       json_object_new_string(bval));
	}
	if (edit_check_pipelines(ctx, ch, bprops, err) < 0)
		goto out;

	*changes = ch;
	*bases = bs;
	ch = bs = NULL;
	rc = 0;
out:
	json_object_put(ch);
	json_object_put(bs);
	json_object_put(bobj);
	json_object_put(top);
	return rc;
}

/* The value HubSpot will hold after writing val over cur: for checkbox fields a
 * leading ; adds to the current values instead of replacing them (HubSpot's
 * rule for multi-select values), and repeated values collapse. g_free it. */
static char *merged_value(json_object *def, const char *cur, const char *val)
{
	const char *ft = def ? json_util_field(def, "fieldType") : NULL;
	GPtrArray *parts;
	GString *out;
	char **split;

	if (!ft || strcmp(ft, "checkbox") != 0)
		return g_strdup(val);
	parts = g_ptr_array_new_with_free_func(g_free);
	if (val[0] == ';' && cur) {
		split = g_strsplit(cur, ";", -1);
		for (char **p = split; *p; p++)
			if (**p && !in_list(parts, *p, strlen(*p)))
				g_ptr_array_add(parts, g_strdup(*p));
		g_strfreev(split);
	}
	split = g_strsplit(val, ";", -1);
	for (char **p = split; *p; p++)
		if (**p && !in_list(parts, *p, strlen(*p)))
			g_ptr_array_add(parts, g_strdup(*p));
	g_strfreev(split);
	out = g_string_new(NULL);
	for (guint i = 0; i < parts->len; i++)
		g_string_append_printf(out, "%s%s", i ? ";" : "", (char *)parts->pdata[i]);
	g_ptr_array_free(parts, TRUE);
	return g_string_free(out, FALSE);
}

int edit_apply(const struct schema *s, const char *base, size_t base_len, json_object *changes,
	       char **text, size_t *len)
{
	json_object *obj = NULL, *props;
	uint64_t id;
	int64_t ms;
	int rc;

	if (parse_base(base, base_len, &obj, &props, NULL) < 0)
		return -EINVAL;
	if (changes && json_object_is_type(changes, json_type_object)) {
		json_object_object_foreach(changes, name, v) {
			const char *val = v ? json_object_get_string(v) : "";
			g_autofree char *merged = NULL;

			if (!schema_is_shown(s, name))
				continue;   /* the file does not show it */
			if (*val)
				merged = merged_value(schema_prop(s, name), json_util_field(props, name), val);
			json_object_object_add(props, name, merged && *merged ?
					       json_object_new_string(merged) : NULL);
		}
	}
	rc = record_render(obj, s, text, len, &id, &ms);
	json_object_put(obj);
	return rc;
}
