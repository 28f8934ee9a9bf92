/* assocfile.c - <type>/<id>/associations.json: render, parse, diff. */
#include "cache/model/assocfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/model/edit.h"
#include "cache/model/json_util.h"
#include "cache/model/record.h"

/* --- association types ----------------------------------------------------- */

struct atype {
	int64_t id;
	const char *category; /* borrowed */
	const char *label;    /* borrowed, NULL for null */
};

static gint atype_cmp(gconstpointer a, gconstpointer b)
{
	const struct atype *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* A member that is a number, or a string of one. */
static bool int_member(json_object *o, const char *k1, const char *k2, int64_t *v)
{
	json_object *x = NULL;
	char *end = NULL;

	if (!json_object_object_get_ex(o, k1, &x) && !json_object_object_get_ex(o, k2, &x))
		return false;
	if (json_object_is_type(x, json_type_int)) {
		*v = json_object_get_int64(x);
		return true;
	}
	if (!json_object_is_type(x, json_type_string))
		return false;
	*v = g_ascii_strtoll(json_object_get_string(x), &end, 10);
	return end && end != json_object_get_string(x) && *end == '\0';
}

static const char *str_member(json_object *o, const char *k1, const char *k2)
{
	const char *s = json_util_field(o, k1);

	return s ? s : json_util_field(o, k2);
}

static char *types_text(GArray *a)
{
	json_object *arr = json_object_new_array();
	char *s;

	for (guint i = 0; i < a->len; i++) {
		const struct atype *t = &g_array_index(a, struct atype, i);
		json_object *o = json_object_new_object();

		json_object_object_add(o, "category", json_object_new_string(t->category));
		json_object_object_add(o, "typeId", json_object_new_int64(t->id));
		json_object_object_add(o, "label", t->label ? json_object_new_string(t->label) : NULL);
		json_object_array_add(arr, o);
	}
	s = g_strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	return s;
}

/* Fill a (struct atype, borrowing from types) sorted, duplicates dropped. */
static void types_collect(json_object *types, GArray *a)
{
	for (size_t i = 0; i < json_util_array_len(types); i++) {
		json_object *o = json_object_array_get_idx(types, i);
		struct atype t = { 0 };

		if (!json_object_is_type(o, json_type_object) ||
		    !int_member(o, "typeId", "associationTypeId", &t.id) || t.id < 0 ||
		    t.id > INT32_MAX)
			continue;
		t.category = str_member(o, "category", "associationCategory");
		if (!t.category)
			t.category = "HUBSPOT_DEFINED";
		t.label = json_util_field(o, "label");
		g_array_append_val(a, t);
	}
	g_array_sort(a, atype_cmp);
	for (guint i = 1; i < a->len;) {
		if (g_array_index(a, struct atype, i).id == g_array_index(a, struct atype, i - 1).id)
			g_array_remove_index(a, i);
		else
			i++;
	}
}

char *assocfile_types_canon(json_object *types)
{
	GArray *a = g_array_new(FALSE, TRUE, sizeof(struct atype));
	char *s;

	types_collect(types, a);
	s = types_text(a);
	g_array_free(a, TRUE);
	return s;
}

char *assocfile_types_edit(const char *canon, const char *category, int type_id,
			   const char *label, bool add)
{
	json_object *o = canon ? json_tokener_parse(canon) : NULL;
	GArray *a = g_array_new(FALSE, TRUE, sizeof(struct atype));
	char *s;

	types_collect(o, a);
	for (guint i = 0; i < a->len; i++) {
		if (g_array_index(a, struct atype, i).id == type_id) {
			g_array_remove_index(a, i);
			break;
		}
	}
	if (add) {
		struct atype t = { .id = type_id, .category = category ? category : "HUBSPOT_DEFINED",
				   .label = label };

		g_array_append_val(a, t);
		g_array_sort(a, atype_cmp);
	}
	s = types_text(a);
	g_array_free(a, TRUE);
	json_object_put(o);
	return s;
}

/* --- render ---------------------------------------------------------------- */

struct entry {
	uint64_t id;
	json_object *types; /* borrowed */
};

static gint entry_cmp(gconstpointer a, gconstpointer b)
{
	const struct entry *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static gint str_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A list entry's id: a string or a number holding a record id. */
static bool entry_id(json_object *v, uint64_t *id)
{
	const char *s;

	if (!v || (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int)))
		return false;
	s = json_object_get_string(v);
	return record_parse_id(s, strlen(s), id) == 0;
}

static json_object *render_list(json_object *list)
{
	GArray *es = g_array_new(FALSE, TRUE, sizeof(struct entry));
	json_object *out = json_object_new_array();

	for (size_t i = 0; i < json_util_array_len(list); i++) {
		json_object *o = json_object_array_get_idx(list, i), *v = NULL;
		struct entry e = { 0 };

		if (!json_object_object_get_ex(o, "id", &v) || !entry_id(v, &e.id))
			continue;
		json_object_object_get_ex(o, "types", &e.types);
		g_array_append_val(es, e);
	}
	g_array_sort(es, entry_cmp);
	for (guint i = 0; i < es->len; i++) {
		const struct entry *e = &g_array_index(es, struct entry, i);
		GArray *ts = g_array_new(FALSE, TRUE, sizeof(struct atype));
		json_object *o, *labels = json_object_new_array(), *types = json_object_new_array();
		char idbuf[24];

		if (i > 0 && g_array_index(es, struct entry, i - 1).id == e->id) {
			g_array_free(ts, TRUE);
			json_object_put(labels);
			json_object_put(types);
			continue;
		}
		types_collect(e->types, ts);
		for (guint k = 0; k < ts->len; k++) {
			const struct atype *t = &g_array_index(ts, struct atype, k);
			json_object *x = json_object_new_object();

			if (t->label && *t->label)
				json_object_array_add(labels, json_object_new_string(t->label));
			json_object_object_add(x, "category", json_object_new_string(t->category));
			json_object_object_add(x, "typeId", json_object_new_int64(t->id));
			json_object_object_add(x, "label",
					       t->label ? json_object_new_string(t->label) : NULL);
			json_object_array_add(types, x);
		}
		g_array_free(ts, TRUE);
		snprintf(idbuf, sizeof(idbuf), "%" G_GUINT64_FORMAT, e->id);
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(idbuf));
		json_object_object_add(o, "labels", labels);
		json_object_object_add(o, "types", types);
		json_object_array_add(out, o);
	}
	g_array_free(es, TRUE);
	return out;
}

char *assocfile_render(json_object *by_type, size_t *len)
{
	GPtrArray *keys = g_ptr_array_new();
	json_object *out = json_object_new_object();
	char *text;

	if (json_object_is_type(by_type, json_type_object)) {
		json_object_object_foreach(by_type, k, v) {
			(void)v;
			g_ptr_array_add(keys, k);
		}
	}
	g_ptr_array_sort(keys, str_cmp);
	for (guint i = 0; i < keys->len; i++)
		json_object_object_add(out, keys->pdata[i],
				       render_list(json_object_object_get(by_type, keys->pdata[i])));
	text = json_util_pretty(out, len);
	json_object_put(out);
	g_ptr_array_free(keys, TRUE);
	return text;
}

/* --- parse ----------------------------------------------------------------- */

/* A key for a message: control characters, quotes and backslashes escaped
 * (UTF-8 kept), so a reason stays one line. g_free. */
static char *key_text(const char *key)
{
	char high[129];

	for (int i = 0; i < 128; i++)
		high[i] = (char)(0x80 + i);
	high[128] = '\0';
	return g_strescape(key, high);
}

/* The labels of one entry as a sorted json array of distinct strings. */
static int parse_labels(json_object *v, json_object **out, char **why, const char *key,
			const char *id)
{
	GPtrArray *ls = g_ptr_array_new();
	json_object *arr = json_object_new_array();

	if (v && !json_object_is_type(v, json_type_array)) {
		*why = g_strdup_printf("%s: %s: \"labels\" must be a list of label names", key, id);
		goto fail;
	}
	for (size_t i = 0; i < json_util_array_len(v); i++) {
		json_object *s = json_object_array_get_idx(v, i);

		if (!json_object_is_type(s, json_type_string) || !*json_object_get_string(s)) {
			*why = g_strdup_printf("%s: %s: \"labels\" must hold non-empty strings", key, id);
			goto fail;
		}
		g_ptr_array_add(ls, (gpointer)json_object_get_string(s));
	}
	g_ptr_array_sort(ls, str_cmp);
	for (guint i = 0; i < ls->len; i++)
		if (i == 0 || strcmp(ls->pdata[i], ls->pdata[i - 1]) != 0)
			json_object_array_add(arr, json_object_new_string(ls->pdata[i]));
	g_ptr_array_free(ls, TRUE);
	*out = arr;
	return 0;
fail:
	g_ptr_array_free(ls, TRUE);
	json_object_put(arr);
	return -EINVAL;
}

static int parse_list(const char *rawkey, json_object *list, json_object *into, char **why)
{
	g_autofree char *key = key_text(rawkey);

	if (!json_object_is_type(list, json_type_array)) {
		*why = g_strdup_printf("%s: must be a list of {\"id\": …, \"labels\": […]}", key);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *e = json_object_array_get_idx(list, i), *v = NULL, *labels = NULL;
		char idbuf[24];
		uint64_t id;

		if (!json_object_is_type(e, json_type_object)) {
			*why = g_strdup_printf("%s: entry %zu is not an object", key, i + 1);
			return -EINVAL;
		}
		if (!json_object_object_get_ex(e, "id", &v) || !entry_id(v, &id)) {
			*why = g_strdup_printf("%s: entry %zu has no valid \"id\" (a record id)", key,
					       i + 1);
			return -EINVAL;
		}
		snprintf(idbuf, sizeof(idbuf), "%" G_GUINT64_FORMAT, id);
		if (json_object_object_get_ex(into, idbuf, NULL)) {
			*why = g_strdup_printf("%s: %s is listed twice", key, idbuf);
			return -EINVAL;
		}
		json_object_object_get_ex(e, "labels", &v);
		if (!json_object_object_get_ex(e, "labels", NULL))
			v = NULL;
		if (parse_labels(v, &labels, why, key, idbuf) < 0)
			return -EINVAL;
		json_object_object_add(into, idbuf, labels);
	}
	return 0;
}

int assocfile_parse(const char *text, size_t len, json_object **out, char **why)
{
	struct edit_error err;
	json_object *o = NULL, *res;
	int rc;

	memset(&err, 0, sizeof(err));
	*out = NULL;
	*why = NULL;
	if (edit_parse_json(text, len, &o, &err) < 0) {
		*why = g_strdup(err.reason);
		return -EINVAL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = g_strdup("not a JSON object of type name -> list of associations");
		return -EINVAL;
	}
	res = json_object_new_object();
	rc = 0;
	json_object_object_foreach(o, k, v) {
		json_object *m = json_object_new_object();

		json_object_object_add(res, k, m);
		if ((rc = parse_list(k, v, m, why)) < 0)
			break;
	}
	json_object_put(o);
	if (rc < 0) {
		json_object_put(res);
		return rc;
	}
	*out = res;
	return 0;
}

/* --- diff ------------------------------------------------------------------ */

static bool has_label(json_object *labels, const char *l)
{
	for (size_t i = 0; i < json_util_array_len(labels); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(labels, i)), l))
			return true;
	return false;
}

static void change(GArray *out, const char *name, const char *id, enum assoc_change_op op,
		   const char *label)
{
	struct assoc_change c = { .name = name, .op = op, .label = label };

	c.id = g_ascii_strtoull(id, NULL, 10);
	g_array_append_val(out, c);
}

static gint change_cmp(gconstpointer a, gconstpointer b)
{
	const struct assoc_change *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r)
		return r;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->op != y->op)
		return x->op < y->op ? -1 : 1;
	return g_strcmp0(x->label, y->label);
}

/* The changes of one key: bm and am map id -> labels (bm may be NULL). */
static void diff_key(const char *name, json_object *bm, json_object *am, GArray *out)
{
	json_object_object_foreach(am, id, al) {
		json_object *bl = NULL;

		if (!bm || !json_object_object_get_ex(bm, id, &bl)) {
			if (json_util_array_len(al) == 0)
				change(out, name, id, AC_LINK_ADD, NULL);
			for (size_t i = 0; i < json_util_array_len(al); i++)
				change(out, name, id, AC_LABEL_ADD,
				       json_object_get_string(json_object_array_get_idx(al, i)));
			continue;
		}
		for (size_t i = 0; i < json_util_array_len(al); i++) {
			const char *l = json_object_get_string(json_object_array_get_idx(al, i));

			if (!has_label(bl, l))
				change(out, name, id, AC_LABEL_ADD, l);
		}
		for (size_t i = 0; i < json_util_array_len(bl); i++) {
			const char *l = json_object_get_string(json_object_array_get_idx(bl, i));

			if (!has_label(al, l))
				change(out, name, id, AC_LABEL_DEL, l);
		}
	}
	if (!bm)
		return;
	json_object_object_foreach(bm, bid, bl2) {
		(void)bl2;
		if (!json_object_object_get_ex(am, bid, NULL))
			change(out, name, bid, AC_LINK_DEL, NULL);
	}
}

GArray *assocfile_diff(json_object *before, json_object *after)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(struct assoc_change));

	if (!json_object_is_type(after, json_type_object))
		return out;
	json_object_object_foreach(after, k, am) {
		json_object *bm = NULL;

		if (json_object_is_type(before, json_type_object))
			json_object_object_get_ex(before, k, &bm);
		diff_key(k, bm, am, out);
	}
	g_array_sort(out, change_cmp);
	return out;
}
