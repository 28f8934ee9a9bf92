/* fuzz_assocfile - <type>/<id>/associations.json as a user saves it
 * (cache/model/assocfile.h): assocfile_parse, assocfile_diff,
 * assocfile_render, assocfile_types_canon and assocfile_types_edit.
 *
 * Input: up to two parts separated by "\n--\n": the file the writer started
 * from (base) and the file saved; with one part, the base is empty ({}).
 * Each part is also read as an association types array.
 *
 * Invariants:
 *  - assocfile_parse: 0 or -EINVAL; on failure no output and a one-line,
 *    valid UTF-8 reason; on success an object of objects (canonical decimal
 *    ids) of sorted lists of distinct non-empty strings;
 *  - the state renders (labels as types) to a file that parses back to it;
 *  - a state diffed against itself is no change; base + diff(base, saved)
 *    is saved, for the keys of saved;
 *  - types_canon is a fixed point and sorted; types_edit adds exactly one
 *    type id or removes it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/assocfile.h"
#include "cache/model/record.h"
#include "tests/fuzz/fuzz_common.h"

static const char *plain(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

static void check_state(json_object *s)
{
	FUZZ_CHECK(json_object_is_type(s, json_type_object), "%s", plain(s));
	json_object_object_foreach(s, k, m) {
		FUZZ_CHECK(json_object_is_type(m, json_type_object), "%s: %s", k, plain(m));
		json_object_object_foreach(m, id, ls) {
			uint64_t v;
			char buf[24];

			FUZZ_CHECK(record_parse_id(id, strlen(id), &v) == 0, "id %s", id);
			snprintf(buf, sizeof(buf), "%" G_GUINT64_FORMAT, v);
			FUZZ_CHECK(strcmp(buf, id) == 0, "id %s not canonical", id);
			FUZZ_CHECK(json_object_is_type(ls, json_type_array), "%s", plain(ls));
			for (size_t i = 0; i < json_object_array_length(ls); i++) {
				const char *l = json_object_get_string(json_object_array_get_idx(ls, i));

				FUZZ_CHECK(*l, "empty label");
				if (i)
					FUZZ_CHECK(strcmp(json_object_get_string(
						json_object_array_get_idx(ls, i - 1)), l) < 0,
						"labels not sorted/distinct: %s", plain(ls));
			}
		}
	}
}

/* The state as render's input: each label one USER_DEFINED type. */
static json_object *as_links(json_object *s)
{
	json_object *by = json_object_new_object();

	json_object_object_foreach(s, k, m) {
		json_object *arr = json_object_new_array();

		json_object_object_foreach(m, id, ls) {
			json_object *l = json_object_new_object(), *types = json_object_new_array();

			for (size_t i = 0; i < json_object_array_length(ls); i++) {
				json_object *t = json_object_new_object();

				json_object_object_add(t, "category", json_object_new_string("USER_DEFINED"));
				json_object_object_add(t, "typeId", json_object_new_int((int)i + 1));
				json_object_object_add(t, "label",
						       json_object_get(json_object_array_get_idx(ls, i)));
				json_object_array_add(types, t);
			}
			json_object_object_add(l, "id", json_object_new_string(id));
			json_object_object_add(l, "types", types);
			json_object_array_add(arr, l);
		}
		json_object_object_add(by, k, arr);
	}
	return by;
}

static bool has(json_object *ls, const char *l)
{
	for (size_t i = 0; i < json_object_array_length(ls); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(ls, i)), l))
			return true;
	return false;
}

/* base + changes, for the keys of saved, equals saved. */
static void check_diff(json_object *base, json_object *saved)
{
	GArray *c = assocfile_diff(base, saved);
	GArray *none = assocfile_diff(saved, saved);

	FUZZ_CHECK(none->len == 0, "%u changes of a state against itself", none->len);
	g_array_free(none, TRUE);
	json_object_object_foreach(saved, k, am) {
		json_object *bm = NULL, *res = json_object_new_object();

		json_object_object_get_ex(base, k, &bm);
		if (bm) {
			json_object_object_foreach(bm, bid, bls) {
				json_object *copy = json_object_new_array();

				for (size_t i = 0; i < json_object_array_length(bls); i++)
					json_object_array_add(copy, json_object_get(
						json_object_array_get_idx(bls, i)));
				json_object_object_add(res, bid, copy);
			}
		}
		for (guint i = 0; i < c->len; i++) {
			const struct assoc_change *x = &g_array_index(c, struct assoc_change, i);
			char id[24];
			json_object *ls = NULL;

			if (strcmp(x->name, k) != 0)
				continue;
			snprintf(id, sizeof(id), "%" G_GUINT64_FORMAT, x->id);
			json_object_object_get_ex(res, id, &ls);
			switch (x->op) {
			case AC_LINK_ADD:
				FUZZ_CHECK(!ls, "add of a present link %s", id);
				json_object_object_add(res, id, json_object_new_array());
				break;
			case AC_LINK_DEL:
				FUZZ_CHECK(ls, "removal of an absent link %s", id);
				json_object_object_del(res, id);
				break;
			case AC_LABEL_ADD:
				if (!ls) {
					ls = json_object_new_array();
					json_object_object_add(res, id, ls);
				}
				FUZZ_CHECK(!has(ls, x->label), "label %s added twice", x->label);
				json_object_array_add(ls, json_object_new_string(x->label));
				break;
			case AC_LABEL_DEL:
				FUZZ_CHECK(ls && has(ls, x->label), "label %s removed but absent", x->label);
				for (size_t j = 0; j < json_object_array_length(ls); j++)
					if (!strcmp(json_object_get_string(json_object_array_get_idx(ls, j)),
						    x->label)) {
						json_object_array_del_idx(ls, j, 1);
						break;
					}
				break;
			}
		}
		/* same ids, same label sets */
		FUZZ_CHECK(json_object_object_length(res) == json_object_object_length(am),
			   "%s: %s vs %s", k, plain(res), plain(am));
		json_object_object_foreach(am, id, want) {
			json_object *got = NULL;

			FUZZ_CHECK(json_object_object_get_ex(res, id, &got), "%s: %s missing", k, id);
			FUZZ_CHECK(json_object_array_length(got) == json_object_array_length(want),
				   "%s/%s: %s vs %s", k, id, plain(got), plain(want));
			for (size_t i = 0; i < json_object_array_length(want); i++)
				FUZZ_CHECK(has(got, json_object_get_string(json_object_array_get_idx(want, i))),
					   "%s/%s: %s vs %s", k, id, plain(got), plain(want));
		}
		json_object_put(res);
	}
	g_array_free(c, TRUE);
}

static json_object *parse_part(const char *s, size_t len)
{
	json_object *o = NULL;
	char *why = NULL;
	int rc = assocfile_parse(s, len, &o, &why);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
	if (rc) {
		FUZZ_CHECK(!o && why && !strchr(why, '\n') && g_utf8_validate(why, -1, NULL),
			   "reason %s", why ? why : "(null)");
		g_free(why);
		return NULL;
	}
	FUZZ_CHECK(!why, "a reason with success");
	check_state(o);
	{
		json_object *by = as_links(o), *back = NULL;
		size_t rlen;
		char *text = assocfile_render(by, &rlen), *w2 = NULL;

		FUZZ_CHECK(assocfile_parse(text, rlen, &back, &w2) == 0, "render does not parse: %s", w2);
		FUZZ_CHECK(json_object_equal(back, o), "%s -> %s", plain(o), plain(back));
		json_object_put(back);
		json_object_put(by);
		g_free(text);
	}
	return o;
}

static void check_types(const char *s, size_t len)
{
	bool ok;
	json_object *o = fuzz_json(s, len, 0, &ok);
	char *c = assocfile_types_canon(o), *c2, *e;
	json_object *p = json_tokener_parse(c);
	int64_t prev = -1;

	FUZZ_CHECK(p && json_object_is_type(p, json_type_array), "%s", c);
	for (size_t i = 0; i < json_object_array_length(p); i++) {
		int64_t id = json_object_get_int64(json_object_object_get(
			json_object_array_get_idx(p, i), "typeId"));

		FUZZ_CHECK(id > prev, "not sorted: %s", c);
		prev = id;
	}
	c2 = assocfile_types_canon(p);
	FUZZ_CHECK(!strcmp(c, c2), "%s -> %s", c, c2);
	e = assocfile_types_edit(c, "USER_DEFINED", 77, "x", true);
	FUZZ_CHECK(strstr(e, "\"typeId\":77,") != NULL, "%s", e);
	g_free(c2);
	c2 = assocfile_types_edit(e, NULL, 77, NULL, false);
	FUZZ_CHECK(strstr(c2, "\"typeId\":77,") == NULL, "%s", c2);
	g_free(c2);
	g_free(e);
	json_object_put(p);
	json_object_put(o);
	g_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size), *sep = strstr(s, "\n--\n");
	json_object *base, *saved;

	fuzz_init();
	if (sep) {
		*sep = '\0';
		base = parse_part(s, strlen(s));
		saved = parse_part(sep + 4, size - (size_t)(sep + 4 - s));
		check_types(s, strlen(s));
	} else {
		base = json_object_new_object();
		saved = parse_part(s, size);
		check_types(s, size);
	}
	if (base && saved)
		check_diff(base, saved);
	json_object_put(base);
	json_object_put(saved);
	g_free(s);
	return 0;
}
