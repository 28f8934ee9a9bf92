/* json_util.c - see json_util.h. */
#include "cache/model/json_util.h"

#include <string.h>

#include <glib.h>

size_t json_util_array_len(json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

const char *json_util_str(json_object *o)
{
	const char *s = NULL;

	if (json_object_is_type(o, json_type_string) || json_object_is_type(o, json_type_int) ||
	    json_object_is_type(o, json_type_double))
		s = json_object_get_string(o);
	return s ? s : "";
}

const char *json_util_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

const char *json_util_paging_after(json_object *resp)
{
	json_object *paging, *next, *after;

	if (!json_object_is_type(resp, json_type_object) ||
	    !json_object_object_get_ex(resp, "paging", &paging) ||
	    !json_object_is_type(paging, json_type_object) ||
	    !json_object_object_get_ex(paging, "next", &next) ||
	    !json_object_is_type(next, json_type_object) ||
	    !json_object_object_get_ex(next, "after", &after))
		return NULL;
	return json_util_str(after);
}

char *json_util_pretty(json_object *o, size_t *len)
{
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *s = g_strconcat(t, "\n", NULL);

	if (len)
		*len = strlen(s);
	return s;
}

size_t json_util_copy_utf8(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size) {
		size_t cut = size - 1;

		/* Back up over the continuation bytes of the character cut (at
		 * most three: a character is at most four bytes). */
		n = cut;
		while (n > 0 && cut - n < 3 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
		if (((unsigned char)src[n] & 0xC0) == 0x80)
			n = cut; /* not UTF-8 there anyway: cut where it fits */
	}
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}
