/* fuzz_common.c - see fuzz_common.h. */
#include "tests/fuzz/fuzz_common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "client/log.h"

#ifndef FUZZ_GOLDEN_DIR
#define FUZZ_GOLDEN_DIR "tests/unit/golden/edit"
#endif

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant failed: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fuzz_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	log_set_level(LOG_ERR);
}

bool fuzz_known(const char *id)
{
	const char *strict = getenv("HUBFS_FUZZ_STRICT");

	(void)id;
	return !(strict && *strict && strcmp(strict, "0") != 0);
}

json_object *fuzz_golden(const char *name)
{
	const char *dir = getenv("HUBFS_FUZZ_GOLDEN");
	g_autofree char *path = g_build_filename(dir && *dir ? dir : FUZZ_GOLDEN_DIR, name, NULL);
	json_object *o = json_object_from_file(path);

	if (!o) {
		fprintf(stderr, "fuzz: cannot load %s (set HUBFS_FUZZ_GOLDEN to tests/unit/golden/edit)\n",
			path);
		abort();
	}
	return o;
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = g_malloc(size + 1);

	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static bool json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

json_object *fuzz_json(const char *s, size_t len, int flags, bool *ok)
{
	struct json_tokener *tok = json_tokener_new_ex(128);
	json_object *o;
	size_t end, i;

	*ok = false;
	json_tokener_set_flags(tok, flags | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	o = json_tokener_parse_ex(tok, s, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		end = len;
	}
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	for (i = end; i < len && json_ws(s[i]); i++)
		;
	json_tokener_free(tok);
	if (i < len) {
		json_object_put(o);
		return NULL;
	}
	*ok = true;
	return o;
}

int fuzz_json_depth(json_object *o)
{
	int d = 0, e;

	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			e = fuzz_json_depth(json_object_array_get_idx(o, i));
			d = MAX(d, e);
		}
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			(void)k;
			e = fuzz_json_depth(v);
			d = MAX(d, e);
		}
	} else {
		return 1;
	}
	return d + 1;
}

bool fuzz_json_equal(json_object *a, json_object *b)
{
	enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

	if (ta == json_type_int && tb == json_type_int)
		return json_object_get_int64(a) == json_object_get_int64(b) &&
		       json_object_get_uint64(a) == json_object_get_uint64(b);
	if ((ta == json_type_double || ta == json_type_int) &&
	    (tb == json_type_double || tb == json_type_int)) {
		double x = json_object_get_double(a), y = json_object_get_double(b);

		/* json-c reads some malformed numbers leniently ("1E" as 1.0), which
		 * then print as an integer: compare numbers by value. */
		return (isnan(x) && isnan(y)) || x == y;
	}
	if (ta != tb)
		return false;
	switch (ta) {
	case json_type_null:
		return true;
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       !memcmp(json_object_get_string(a), json_object_get_string(b),
			       (size_t)json_object_get_string_len(a));
	case json_type_array: {
		size_t n = json_object_array_length(a);

		if (n != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!fuzz_json_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	}
	case json_type_object: {
		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(a, k, va) {
			json_object *vb;

			if (!json_object_object_get_ex(b, k, &vb) || !fuzz_json_equal(va, vb))
				return false;
		}
		return true;
	}
	default:
		return false;
	}
}

const char *fuzz_json_text(json_object *o)
{
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE) : "null";
}

bool fuzz_utf8(const char *s, size_t len)
{
	return g_utf8_validate_len(s, len, NULL);
}

size_t fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **part,
		  size_t *part_len, size_t max)
{
	size_t n = 0, seplen = strlen(sep);
	const uint8_t *p = data, *end = data + size;

	while (n + 1 < max) {
		const uint8_t *hit = seplen && (size_t)(end - p) >= seplen ?
				     memmem(p, (size_t)(end - p), sep, seplen) : NULL;

		if (!hit)
			break;
		part[n] = p;
		part_len[n++] = (size_t)(hit - p);
		p = hit + seplen;
	}
	part[n] = p;
	part_len[n++] = (size_t)(end - p);
	return n;
}
