#include "cache/model/schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/json_util.h"
#include "cache/model/objtypes.h"

struct schema {
	json_object *defs;      /* name -> definition (owned) */
	char **shown;           /* sorted, NULL-terminated */
	size_t nshown;
	char *csv;
	GHashTable *shown_set;  /* name -> 1; keys borrowed from shown */
	char *text;
	size_t text_len;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool prop_custom(json_object *def)
{
	json_object *v;

	return json_object_object_get_ex(def, "hubspotDefined", &v) && !json_object_get_boolean(v);
}

bool schema_prop_readonly(json_object *def)
{
	json_object *mm, *v;

	if (!def)
		return false;
	if (json_object_object_get_ex(def, "modificationMetadata", &mm) &&
	    json_object_object_get_ex(mm, "readOnlyValue", &v) && json_object_get_boolean(v))
		return true;
	return json_object_object_get_ex(def, "calculated", &v) && json_object_get_boolean(v);
}

static void add_shown(GPtrArray *names, GHashTable *seen, const char *name)
{
	if (g_hash_table_contains(seen, name))
		return;
	g_hash_table_add(seen, (gpointer)name);
	g_ptr_array_add(names, g_strdup(name));
}

int schema_new(const struct objtype *t, json_object *response, const char *shown,
	       struct schema **out)
{
	json_object *results, *sorted = NULL;
	struct schema *s;
	GPtrArray *names;
	GHashTable *seen;
	GString *csv;
	size_t n;

	if (!json_object_object_get_ex(response, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		return -EINVAL;

	s = g_new0(struct schema, 1);
	s->defs = json_object_new_object();
	n = json_object_array_length(results);
	for (size_t i = 0; i < n; i++) {
		json_object *def = json_object_array_get_idx(results, i), *nm;

		if (json_object_object_get_ex(def, "name", &nm) && json_object_is_type(nm, json_type_string))
			json_object_object_add(s->defs, json_object_get_string(nm), json_object_get(def));
	}

	names = g_ptr_array_new();
	seen = g_hash_table_new(g_str_hash, g_str_equal);
	if ((!shown || !strcmp(shown, "default")) && (t->flags & OTF_CUSTOM))
		shown = "all"; /* a custom object's properties are all the account's own */
	if (!shown || !strcmp(shown, "default")) {
		for (const char *const *p = t->default_props; *p; p++)
			if (json_object_object_get_ex(s->defs, *p, NULL))
				add_shown(names, seen, *p);
		json_object_object_foreach(s->defs, key, def)
			if (prop_custom(def))
				add_shown(names, seen, key);
	} else if (!strcmp(shown, "all")) {
		json_object_object_foreach(s->defs, key, def) {
			(void)def;
			add_shown(names, seen, key);
		}
	} else {
		char **parts = g_strsplit(shown, ",", -1);

		for (char **p = parts; *p; p++) {
			char *nm = g_strstrip(*p);
			json_object *def;

			if (*nm && json_object_object_get_ex(s->defs, nm, &def))
				add_shown(names, seen, json_object_get_string(json_object_object_get(def, "name")));
		}
		g_strfreev(parts);
	}
	g_hash_table_destroy(seen);

	if (names->len > 1)
		qsort(names->pdata, names->len, sizeof(char *), cmp_str);
	s->nshown = names->len;
	g_ptr_array_add(names, NULL);
	s->shown = (char **)g_ptr_array_free(names, FALSE);

	s->shown_set = g_hash_table_new(g_str_hash, g_str_equal);
	csv = g_string_new(NULL);
	for (size_t i = 0; i < s->nshown; i++) {
		g_hash_table_add(s->shown_set, s->shown[i]);
		if (i)
			g_string_append_c(csv, ',');
		g_string_append(csv, s->shown[i]);
	}
	s->csv = g_string_free(csv, FALSE);

	/* schema/<type>.json: definitions sorted by name. */
	{
		GPtrArray *keys = g_ptr_array_new();

		json_object_object_foreach(s->defs, key, def) {
			(void)def;
			g_ptr_array_add(keys, key);
		}
		if (keys->len > 1)
			qsort(keys->pdata, keys->len, sizeof(char *), cmp_str);
		sorted = json_object_new_array();
		for (guint i = 0; i < keys->len; i++)
			json_object_array_add(sorted, json_object_get(json_object_object_get(s->defs, keys->pdata[i])));
		g_ptr_array_free(keys, TRUE);
		s->text = json_util_pretty(sorted, &s->text_len);
		json_object_put(sorted);
	}
	*out = s;
	return 0;
}

void schema_free(struct schema *s)
{
	if (!s)
		return;
	json_object_put(s->defs);
	g_strfreev(s->shown);
	g_free(s->csv);
	g_hash_table_destroy(s->shown_set);
	g_free(s->text);
	g_free(s);
}

size_t schema_shown_count(const struct schema *s)
{
	return s->nshown;
}

const char *schema_shown(const struct schema *s, size_t i)
{
	return i < s->nshown ? s->shown[i] : NULL;
}

const char *schema_props_csv(const struct schema *s)
{
	return s->csv;
}

bool schema_is_shown(const struct schema *s, const char *name)
{
	return g_hash_table_contains(s->shown_set, name);
}

json_object *schema_prop(const struct schema *s, const char *name)
{
	json_object *def;

	return json_object_object_get_ex(s->defs, name, &def) ? def : NULL;
}

const char *schema_text(const struct schema *s, size_t *len)
{
	*len = s->text_len;
	return s->text;
}
