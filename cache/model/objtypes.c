/* objtypes.c - the registry of object types: building it from the standard
 * table (objtypes_table.c), the account's custom object schemas, object-library
 * enablement and -o types=, and reading it. */
#include "cache/model/objtypes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cache/model/objtypes_int.h"

/* Longest custom object name or fullyQualifiedName taken as a directory name. */
#define NAME_MAX_LEN 200

/* Names a custom object's directory never takes (it gets its
 * fullyQualifiedName instead, like one that clashes with a standard type of
 * the table): the root directories that are not object types, and the API
 * names of HubSpot's standard types the table leaves out (objtypes_table.c
 * says why), so that a custom object is named the same whether or not a later
 * hubfs shows that standard type. */
static const char *const reserved_names[] = {
	"schema", "pipelines", "owners", "search",
	"contracts", "partner_clients", "partner_services", "payments", "forecasts",
	"marketing_events", NULL
};

struct objtypes {
	size_t n;
	struct objtype t[OBJTYPES_MAX];
	const char *fqn[OBJTYPES_MAX];            /* custom objects' fullyQualifiedName, or NULL */
	const char *const *aliases[OBJTYPES_MAX]; /* more names objtypes_lookup takes, or NULL */
	/* assoc[from][to]: -1 not associable; 0 associable, type id unknown;
	 * > 0 the unlabeled association type id from → to */
	int32_t assoc[OBJTYPES_MAX][OBJTYPES_MAX];
	GStringChunk *strs;                       /* custom objects' strings */
	GPtrArray *vecs;                          /* custom objects' string vectors */
};

/* A type before selection: every standard type and every custom object. */
struct cand {
	struct objtype t;
	const char *fqn;
	const char *const *aliases;
	json_object *assocs;    /* custom: the schema's associations[] (borrowed), or NULL */
	bool selected;          /* by -o types= */
	bool shown;             /* goes into the registry */
};

static const char *const no_props[] = { NULL };

/* *why's text when it is not a static string: per thread, valid until the
 * next objtypes_new on the same thread. */
static _Thread_local char why_buf[512];

static int G_GNUC_PRINTF(3, 4) fail(const char **why, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why_buf, sizeof(why_buf), fmt, ap);
	va_end(ap);
	if (why)
		*why = why_buf;
	return rc;
}

/* ---------------------------------------------------------------- checks */

/* What HubSpot allows as a schema name: a letter, then letters, digits and
 * underscores. Safe as a directory name. */
static bool valid_name(const char *s)
{
	size_t i;

	if (!g_ascii_isalpha(s[0]))
		return false;
	for (i = 1; s[i]; i++)
		if (!g_ascii_isalnum(s[i]) && s[i] != '_')
			return false;
	return i <= NAME_MAX_LEN;
}

/* "<digits>-<digits>", as "0-46" or "2-3465404". */
static bool valid_type_id(const char *s)
{
	size_t a = strspn(s, "0123456789"), b;

	if (a == 0 || a > 10 || s[a] != '-')
		return false;
	b = strspn(s + a + 1, "0123456789");
	return b > 0 && b <= 19 && s[a + 1 + b] == '\0';
}

static bool in_list(const char *const *l, const char *s)
{
	for (; l && *l; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

/* An optional string member: 0 and *out = NULL when absent or null; -1 when
 * it is something else than a string. */
static int opt_str(json_object *o, const char *key, const char **out)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*out = json_object_get_string(v);
	return 0;
}

/* A JSON string of digits or an integer, 1 .. INT32_MAX; -1 if neither. */
static int64_t positive_id(json_object *v)
{
	int64_t n;
	char *end;

	if (json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);

		if (!g_ascii_isdigit(s[0]) || strlen(s) > 10)
			return -1;
		n = g_ascii_strtoll(s, &end, 10);
		if (*end)
			return -1;
	} else {
		return -1;
	}
	return n >= 1 && n <= INT32_MAX ? n : -1;
}

/* ---------------------------------------------------------------- custom schemas */

static const char *keep(struct objtypes *r, const char *s)
{
	return s ? g_string_chunk_insert_const(r->strs, s) : NULL;
}

/* A vector of the strings of `arr` (NULL: empty), owned by r; NULL if arr is
 * not an array of non-empty strings. */
static const char *const *str_vec(struct objtypes *r, json_object *arr)
{
	const char **v;
	size_t n;

	if (!arr)
		return no_props;
	if (!json_object_is_type(arr, json_type_array))
		return NULL;
	n = json_object_array_length(arr);
	v = g_new0(const char *, n + 1);
	g_ptr_array_add(r->vecs, v);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(e, json_type_string) || !*json_object_get_string(e))
			return NULL;
		v[i] = keep(r, json_object_get_string(e));
	}
	return v;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The declared type of property `name` in properties[] ("string",
 * "number", …), or NULL if it is not declared. */
static const char *prop_type(json_object *props, const char *name)
{
	size_t n = props ? json_object_array_length(props) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(props, i);
		const char *pn, *pt;

		if (opt_str(p, "name", &pn) == 0 && pn && strcmp(pn, name) == 0)
			return opt_str(p, "type", &pt) == 0 ? pt : NULL;
	}
	return NULL;
}

/* What an in-doubt create of a custom object is looked up by: its display
 * property and its required properties, those declared as strings (or not
 * declared at all). */
static const char *const *custom_identity(struct objtypes *r, const char *display,
					  const char *const *required, json_object *props)
{
	GPtrArray *v = g_ptr_array_new();
	const char *t;

	if (display && (!(t = prop_type(props, display)) || strcmp(t, "string") == 0))
		g_ptr_array_add(v, (gpointer)display);
	for (const char *const *p = required; *p; p++) {
		if ((t = prop_type(props, *p)) && strcmp(t, "string") != 0)
			continue;
		if (!display || strcmp(*p, display) != 0)
			g_ptr_array_add(v, (gpointer)*p);
	}
	g_ptr_array_add(v, NULL);
	g_ptr_array_add(r->vecs, v->pdata);
	return (const char *const *)g_ptr_array_free(v, false);
}

/* properties[]: an array of objects, each with a non-empty string name.
 * Sets *pipelines when both hs_pipeline and hs_pipeline_stage are there. */
static int check_properties(json_object *props, bool *pipelines)
{
	bool pipe = false, stage = false;
	size_t n;

	*pipelines = false;
	if (!props)
		return 0;
	if (!json_object_is_type(props, json_type_array))
		return -1;
	n = json_object_array_length(props);
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(props, i);
		const char *name;

		if (!json_object_is_type(p, json_type_object) || opt_str(p, "name", &name) < 0 ||
		    !name || !*name)
			return -1;
		pipe |= strcmp(name, "hs_pipeline") == 0;
		stage |= strcmp(name, "hs_pipeline_stage") == 0;
	}
	*pipelines = pipe && stage;
	return 0;
}

/* associations[]: objects with fromObjectTypeId, toObjectTypeId and a
 * positive id. */
static int check_associations(json_object *assocs)
{
	size_t n;

	if (!assocs)
		return 0;
	if (!json_object_is_type(assocs, json_type_array))
		return -1;
	n = json_object_array_length(assocs);
	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(assocs, i);
		const char *from, *to;

		if (!json_object_is_type(a, json_type_object) ||
		    opt_str(a, "fromObjectTypeId", &from) < 0 || !from || !valid_type_id(from) ||
		    opt_str(a, "toObjectTypeId", &to) < 0 || !to || !valid_type_id(to) ||
		    positive_id(member(a, "id")) < 0)
			return -1;
	}
	return 0;
}

/* The objectTypeId of a schema: objectTypeId, else "2-" + id (or id itself
 * when it already has the "<meta type>-" form); NULL if neither is usable. */
static const char *custom_type_id(struct objtypes *r, json_object *s)
{
	json_object *idv = member(s, "id");
	const char *oti;
	char buf[32];

	if (opt_str(s, "objectTypeId", &oti) < 0)
		return NULL;
	if (oti && *oti)
		return valid_type_id(oti) ? keep(r, oti) : NULL;
	if (json_object_is_type(idv, json_type_string) && valid_type_id(json_object_get_string(idv)))
		return keep(r, json_object_get_string(idv));
	if (positive_id(idv) < 0)
		return NULL;
	snprintf(buf, sizeof(buf), "2-%" G_GINT64_FORMAT, (gint64)positive_id(idv));
	return keep(r, buf);
}

/* One ObjectSchema into *c. 0, 1 for an archived schema (skipped), or -EINVAL. */
static int parse_schema(struct objtypes *r, json_object *s, size_t i, struct cand *c,
			const char **why)
{
	const char *name, *fqn, *display, *plural = NULL;
	json_object *labels, *props, *v;
	bool pipelines;

	if (!json_object_is_type(s, json_type_object))
		return fail(why, -EINVAL, "schemas: results[%zu] is not an object", i);
	if (json_object_object_get_ex(s, "archived", &v) && json_object_is_type(v, json_type_boolean) &&
	    json_object_get_boolean(v))
		return 1;
	if (opt_str(s, "name", &name) < 0 || !name || !valid_name(name))
		return fail(why, -EINVAL, "schemas: results[%zu]: name missing or not a letter "
			    "followed by letters, digits and underscores", i);
	memset(c, 0, sizeof(*c));
	if (!(c->t.id = custom_type_id(r, s)))
		return fail(why, -EINVAL, "schemas: %s: no usable objectTypeId or id", name);
	if (opt_str(s, "fullyQualifiedName", &fqn) < 0 || opt_str(s, "primaryDisplayProperty",
								   &display) < 0)
		return fail(why, -EINVAL, "schemas: %s: fullyQualifiedName or primaryDisplayProperty "
			    "is not a string", name);
	labels = member(s, "labels");
	if (labels && json_object_is_type(labels, json_type_object) &&
	    opt_str(labels, "plural", &plural) < 0)
		plural = NULL;
	props = member(s, "properties");
	if (check_properties(props, &pipelines) < 0)
		return fail(why, -EINVAL, "schemas: %s: properties is not a list of named "
			    "properties", name);
	c->t.name = keep(r, name);
	c->t.path = c->t.id; /* the objectTypeId: every API takes it for a custom object */
	c->fqn = keep(r, fqn && *fqn ? fqn : NULL);
	c->t.singular = "object";
	c->t.label = keep(r, plural && *plural ? plural : name);
	c->t.lastmod = "hs_lastmodifieddate";
	c->t.createdate = "hs_createdate";
	c->t.display = keep(r, display && *display ? display : NULL);
	c->t.default_props = no_props;
	c->t.text_props = str_vec(r, member(s, "searchableProperties"));
	c->t.required = str_vec(r, member(s, "requiredProperties"));
	if (!c->t.text_props || !c->t.required)
		return fail(why, -EINVAL, "schemas: %s: requiredProperties or searchableProperties "
			    "is not a list of names", name);
	c->t.identity_props = custom_identity(r, c->t.display, c->t.required, props);
	if (pipelines) {
		c->t.pipeline_prop = "hs_pipeline";
		c->t.stage_prop = "hs_pipeline_stage";
	}
	c->t.read_scope = "crm.objects.custom.read";
	c->t.flags = OTF_CUSTOM;
	c->assocs = member(s, "associations");
	if (check_associations(c->assocs) < 0)
		return fail(why, -EINVAL, "schemas: %s: associations is not a list of "
			    "{fromObjectTypeId, toObjectTypeId, id}", name);
	return 0;
}

static bool dir_taken(GArray *cands, const char *name)
{
	for (guint i = 0; i < cands->len; i++)
		if (strcmp(g_array_index(cands, struct cand, i).t.name, name) == 0)
			return true;
	return false;
}

static bool id_taken(GArray *cands, const char *id)
{
	for (guint i = 0; i < cands->len; i++)
		if (strcmp(g_array_index(cands, struct cand, i).t.id, id) == 0)
			return true;
	return false;
}

/* Append the unarchived custom objects of a schemas response to cands. */
static int add_schemas(struct objtypes *r, json_object *schemas, GArray *cands, const char **why)
{
	json_object *results;
	size_t n;

	if (!json_object_is_type(schemas, json_type_object) ||
	    !json_object_object_get_ex(schemas, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		return fail(why, -EINVAL, "schemas: not an object with a results list");
	n = json_object_array_length(results);
	for (size_t i = 0; i < n; i++) {
		struct cand c;
		int rc = parse_schema(r, json_object_array_get_idx(results, i), i, &c, why);

		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;
		if (dir_taken(cands, c.t.name) || in_list(reserved_names, c.t.name)) {
			if (!c.fqn || !valid_name(c.fqn))
				return fail(why, -EINVAL, "schemas: %s: the name is taken and "
					    "fullyQualifiedName is missing or unusable", c.t.name);
			c.t.name = c.fqn;
			if (dir_taken(cands, c.t.name) || in_list(reserved_names, c.t.name))
				return fail(why, -EINVAL, "schemas: %s: name taken twice", c.t.name);
		}
		if (id_taken(cands, c.t.id))
			return fail(why, -EINVAL, "schemas: %s: objectTypeId %s taken twice", c.t.name,
				    c.t.id);
		g_array_append_val(cands, c);
	}
	return 0;
}

/* ---------------------------------------------------------------- names */

static bool name_eq(const char *a, const char *b, bool fold)
{
	return fold ? g_ascii_strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

/* How closely a name must match, tried in this order: the directory name;
 * then the fullyQualifiedName, the singular (webhook) name of a standard type
 * (a custom object's is always "object") or an alias; then any of these in any
 * case ("COMMERCE_PAYMENT", "Contacts"). */
enum match { M_DIR, M_EXACT, M_FOLD, M_COUNT };

static bool names(const struct objtype *t, const char *fqn, const char *const *aliases,
		  const char *s, enum match m)
{
	bool fold = m == M_FOLD;

	if (m == M_DIR)
		return strcmp(t->name, s) == 0;
	if (name_eq(t->name, s, fold) || (fqn && name_eq(fqn, s, fold)))
		return true;
	if (!(t->flags & OTF_CUSTOM) && name_eq(t->singular, s, fold))
		return true;
	for (; aliases && *aliases; aliases++)
		if (name_eq(*aliases, s, fold))
			return true;
	return false;
}

/* -o types=: mark the candidates it names. Returns whether the option limits
 * anything; names nothing matches are appended to `unknown`. */
static bool select_types(GArray *cands, const char *types, GString *unknown)
{
	gchar **tok;
	bool all = false;

	if (!types || !*types)
		return false;
	tok = g_strsplit(types, ",", -1);
	for (gchar **p = tok; *p; p++) {
		const char *s = g_strstrip(*p);
		struct cand *hit = NULL;

		if (!*s)
			continue;
		if (strcmp(s, "all") == 0) {
			all = true;
			continue;
		}
		for (guint i = 0; i < cands->len; i++) {
			struct cand *c = &g_array_index(cands, struct cand, i);

			if (strcmp(s, "core") == 0 ? (c->t.flags & OTF_CORE) != 0 :
			    strcmp(c->t.id, s) == 0) {
				c->selected = true;
				hit = c;
			}
		}
		for (int m = 0; !hit && m < M_COUNT; m++)
			for (guint i = 0; !hit && i < cands->len; i++) {
				struct cand *c = &g_array_index(cands, struct cand, i);

				if (names(&c->t, c->fqn, c->aliases, s, m)) {
					c->selected = true;
					hit = c;
				}
			}
		if (!hit)
			g_string_append_printf(unknown, "%s%s", unknown->len ? ", " : "", s);
	}
	g_strfreev(tok);
	return !all;
}

static bool enabled(json_object *enablement, const char *id)
{
	json_object *by, *v;

	return enablement && json_object_is_type(enablement, json_type_object) &&
	       json_object_object_get_ex(enablement, "enablementByObjectTypeId", &by) &&
	       json_object_is_type(by, json_type_object) && json_object_object_get_ex(by, id, &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* ---------------------------------------------------------------- associations */

static void set_assoc(struct objtypes *r, int a, int b, int32_t ab, int32_t ba)
{
	if (a < 0 || b < 0 || (r->t[a].flags & OTF_NO_ASSOC) || (r->t[b].flags & OTF_NO_ASSOC))
		return;
	if (ab > 0 || r->assoc[a][b] < 0)
		r->assoc[a][b] = ab;
	if (a != b && (ba > 0 || r->assoc[b][a] < 0))
		r->assoc[b][a] = ba;
}

static int idx_of(const struct objtypes *r, const char *id)
{
	const struct objtype *t = objtypes_by_id(r, id);

	return t ? (int)t->idx : -1;
}

/* The HUBSPOT_DEFINED table, then each custom object's associations[] and the
 * activities HubSpot associates every custom object with. */
static void build_assoc(struct objtypes *r, const int *std_idx, json_object *const *assocs)
{
	for (size_t i = 0; i < OBJTYPES_MAX; i++)
		for (size_t j = 0; j < OBJTYPES_MAX; j++)
			r->assoc[i][j] = -1;
	for (size_t k = 0; k < objtypes_std_assoc_count; k++) {
		const struct std_assoc *a = &objtypes_std_assoc[k];

		set_assoc(r, std_idx[a->a], std_idx[a->b], a->ab, a->ba);
	}
	for (size_t i = 0; i < r->n; i++) {
		size_t n = assocs[i] ? json_object_array_length(assocs[i]) : 0;

		if (!(r->t[i].flags & OTF_CUSTOM))
			continue;
		for (size_t k = 0; k < n; k++) {
			json_object *a = json_object_array_get_idx(assocs[i], k);
			const char *from, *to;

			opt_str(a, "fromObjectTypeId", &from);
			opt_str(a, "toObjectTypeId", &to);
			set_assoc(r, idx_of(r, from), idx_of(r, to), (int32_t)positive_id(member(a, "id")),
			     0);
		}
		for (size_t k = 0; k < objtypes_custom_auto_assoc_count; k++)
			set_assoc(r, (int)i, std_idx[objtypes_custom_auto_assoc[k]], 0, 0);
	}
}

/* ---------------------------------------------------------------- build */

int objtypes_new(const struct objtypes_opts *o, json_object *schemas, json_object *enablement,
		 struct objtypes **out, const char **why)
{
	struct objtypes *r = g_new0(struct objtypes, 1);
	GArray *cands = g_array_new(false, true, sizeof(struct cand));
	GString *unknown = g_string_new(NULL), *warn = g_string_new(NULL);
	json_object *assocs[OBJTYPES_MAX];
	int std_idx[ST_COUNT];
	bool limited;
	size_t shown = 0;
	int rc = 0;

	*out = NULL;
	if (why)
		*why = NULL;
	r->strs = g_string_chunk_new(1024);
	r->vecs = g_ptr_array_new_with_free_func(g_free);
	for (int s = 0; s < ST_COUNT; s++) {
		struct cand c = { .t = objtypes_std[s].t, .aliases = objtypes_std[s].aliases };

		g_array_append_val(cands, c);
	}
	if (schemas && (rc = add_schemas(r, schemas, cands, why)) < 0)
		goto out;

	limited = select_types(cands, o ? o->types : NULL, unknown);
	if (unknown->len)
		g_string_append_printf(warn, "-o types: no type called %s", unknown->str);
	for (guint i = 0; i < cands->len; i++) {
		struct cand *c = &g_array_index(cands, struct cand, i);
		bool off = (c->t.flags & OTF_OBJECT_LIBRARY) && !enabled(enablement, c->t.id);

		if (off && c->selected)
			g_string_append_printf(warn, "%s-o types: %s is not enabled in the object "
					       "library", warn->len ? "; " : "", c->t.name);
		c->shown = !off && (!limited || c->selected);
		shown += c->shown;
	}
	if (shown > OBJTYPES_MAX) {
		rc = fail(why, -E2BIG, "%zu object types are more than the %d a mount can show: "
			  "choose them with -o types=", shown, OBJTYPES_MAX);
		goto out;
	}
	for (guint i = 0; i < cands->len; i++) {
		struct cand *c = &g_array_index(cands, struct cand, i);

		if (!c->shown)
			continue;
		c->t.idx = (unsigned)r->n;
		r->t[r->n] = c->t;
		r->fqn[r->n] = c->fqn;
		r->aliases[r->n] = c->aliases;
		assocs[r->n] = c->assocs;
		r->n++;
	}
	for (int s = 0; s < ST_COUNT; s++)
		std_idx[s] = idx_of(r, objtypes_std[s].t.id);
	build_assoc(r, std_idx, assocs);
	if (warn->len)
		fail(why, 0, "%s", warn->str);
	*out = r;
	r = NULL;
out:
	objtypes_free(r);
	g_array_free(cands, true);
	g_string_free(unknown, true);
	g_string_free(warn, true);
	return rc;
}

struct objtypes *objtypes_new_core(void)
{
	const struct objtypes_opts o = { .types = "core" };
	struct objtypes *r = NULL;
	int rc = objtypes_new(&o, NULL, NULL, &r, NULL);

	g_assert(rc == 0 && r);
	return r;
}

void objtypes_free(struct objtypes *r)
{
	if (!r)
		return;
	g_string_chunk_free(r->strs);
	g_ptr_array_free(r->vecs, true);
	g_free(r);
}

/* ---------------------------------------------------------------- reads */

size_t objtypes_count(const struct objtypes *r)
{
	return r->n;
}

const struct objtype *objtypes_at(const struct objtypes *r, unsigned idx)
{
	return idx < r->n ? &r->t[idx] : NULL;
}

const struct objtype *objtypes_by_name(const struct objtypes *r, const char *s, size_t len)
{
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->t[i].name) == len && memcmp(r->t[i].name, s, len) == 0)
			return &r->t[i];
	return NULL;
}

const struct objtype *objtypes_by_id(const struct objtypes *r, const char *type_id)
{
	if (!type_id)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->t[i].id, type_id) == 0)
			return &r->t[i];
	return NULL;
}

const struct objtype *objtypes_lookup(const struct objtypes *r, const char *any_name)
{
	const struct objtype *t;

	if (!any_name || !*any_name)
		return NULL;
	if ((t = objtypes_by_id(r, any_name)))
		return t;
	for (int m = 0; m < M_COUNT; m++)
		for (size_t i = 0; i < r->n; i++)
			if (names(&r->t[i], r->fqn[i], r->aliases[i], any_name, m))
				return &r->t[i];
	return NULL;
}

const struct objtype *objtypes_standard_at(unsigned i)
{
	return i < ST_COUNT ? &objtypes_std[i].t : NULL;
}

/* Whether t is one of r's own types (not, say, objtypes_standard_at's). */
static bool mine(const struct objtypes *r, const struct objtype *t)
{
	return t && t->idx < r->n && t == &r->t[t->idx];
}

bool objtypes_associable(const struct objtypes *r, const struct objtype *from,
			 const struct objtype *to)
{
	return mine(r, from) && mine(r, to) && r->assoc[from->idx][to->idx] >= 0;
}

int objtypes_assoc_type_id(const struct objtypes *r, const struct objtype *from,
			   const struct objtype *to)
{
	return objtypes_associable(r, from, to) ? r->assoc[from->idx][to->idx] : 0;
}

size_t objtypes_assoc_targets(const struct objtypes *r, const struct objtype *from,
			      unsigned *idx, size_t max)
{
	size_t n = 0;

	if (!mine(r, from))
		return 0;
	for (size_t j = 0; j < r->n; j++)
		if (r->assoc[from->idx][j] >= 0) {
			if (n < max)
				idx[n] = (unsigned)j;
			n++;
		}
	return n;
}
