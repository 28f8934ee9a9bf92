/* edit_new.c - new records (<type>/_new/ files): their properties, what hubfs
 * fills in, what HubSpot refuses a create without, and the associations a
 * record is created with. The contract is edit_parse_create's, in edit.h.
 */
#include "cache/model/edit.h"
#include "cache/model/edit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cache/model/json_util.h"
#include "cache/model/objtypes.h"
#include "cache/model/record.h"

#define CONTACTS_ID "0-1"
/* HubSpot's lead → contact "Primary" association type. A lead is created with
 * it or not at all (400 otherwise); being a labeled type, it is not among the
 * registry's default type ids. */
#define PRIMARY_CONTACT_TYPE 578

static const char *const categories[] = { "HUBSPOT_DEFINED", "USER_DEFINED",
					  "INTEGRATOR_DEFINED", NULL };

/* --- properties ------------------------------------------------------------- */

/* The writable, non-empty properties of the file, validated. */
static int new_props(const struct edit_ctx *ctx, json_object *in, json_object **props,
		     struct edit_error *err)
{
	json_object *out = json_object_new_object();

	json_object_object_foreach(in, name, v) {
		json_object *def = schema_prop(ctx->schema, name);
		g_autofree char *plain = NULL;
		const char *val;

		if (!def) {
			edit_unknown_prop(ctx, name, err);
			goto fail;
		}
		/* A copied record file carries system values; they are not ours to set. */
		if (schema_prop_readonly(def))
			continue;
		val = edit_value_string(name, v, err);
		if (!val)
			goto fail;
		if (!*val)
			continue;
		val = edit_sent_value(def, val, &plain);
		if (edit_check_value(ctx, name, def, val, err) < 0)
			goto fail;
		json_object_object_add(out, name, json_object_new_string(val));
	}
	if (json_object_object_length(out) == 0) {
		edit_set_err(err, NULL, "no properties to create");
		goto fail;
	}
	*props = out;
	return 0;
fail:
	json_object_put(out);
	return -EINVAL;
}

/* An activity is placed on the timeline by hs_timestamp, which HubSpot
 * requires: a file without one is taken as happening now (a meeting: at its
 * start time, which is what HubSpot itself would assume). */
static void fill_timestamp(const struct edit_ctx *ctx, json_object *props)
{
	const char *start = json_util_field(props, "hs_meeting_start_time");
	char ts[RECORD_TIME_LEN];

	if (!(ctx->type->flags & OTF_ENGAGEMENT) ||
	    json_object_object_get_ex(props, "hs_timestamp", NULL))
		return;
	if (start)
		json_object_object_add(props, "hs_timestamp", json_object_new_string(start));
	else if (ctx->now_ms > 0)
		json_object_object_add(props, "hs_timestamp",
				       json_object_new_string(record_format_time(ctx->now_ms, ts)));
}

/* "a note", "an email", "a cars record" (a custom object's singular name is
 * only "object"). g_free it. */
static char *a_record(const struct objtype *t)
{
	if (t->flags & OTF_CUSTOM)
		return g_strdup_printf("a %s record", t->name);
	return g_strdup_printf("%s %s", t->singular[0] && strchr("aeioAEIO", t->singular[0]) ?
			       "an" : "a", t->singular);
}

/* What HubSpot refuses a create without (400): every missing one named, the
 * first as the property at fault. */
static int check_required(const struct edit_ctx *ctx, json_object *props, struct edit_error *err)
{
	GPtrArray *missing = g_ptr_array_new_with_free_func(g_free);
	const char *first = NULL;
	int rc = 0;

	for (const char *const *r = ctx->type->required; *r; r++) {
		if (json_object_object_get_ex(props, *r, NULL))
			continue;
		if (!first)
			first = *r;
		g_ptr_array_add(missing, g_strdup_printf("\"%s\"", *r));
	}
	if (missing->len == 1) {
		g_autofree char *what = a_record(ctx->type);

		edit_set_err(err, first, "property %s is required to create %s",
			     (char *)missing->pdata[0], what);
		rc = -EINVAL;
	} else if (missing->len > 1) {
		g_autofree char *list = edit_join_list(missing), *what = a_record(ctx->type);

		edit_set_err(err, first, "properties %s are required to create %s", list, what);
		rc = -EINVAL;
	}
	g_ptr_array_free(missing, TRUE);
	return rc;
}

/* --- associations ------------------------------------------------------------- */

struct assocs {
	const struct edit_ctx *ctx;
	json_object *out;           /* the entries, in file order */
	GHashTable *seen;           /* "typeId:id" -> entry (borrowed from out) */
	struct edit_error *err;
};

static int bad_assoc(struct assocs *a, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int bad_assoc(struct assocs *a, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	edit_set_err(a->err, NULL, "associations: %s", msg);
	return -EINVAL;
}

/* A record id written as "101" or 101. */
static bool assoc_id(json_object *v, uint64_t *id)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		*id = (uint64_t)n;
		return n > 0 && (uint64_t)n <= RECORD_ID_MAX;
	}
	if (!json_object_is_type(v, json_type_string))
		return false;
	return record_parse_id(json_object_get_string(v), (size_t)json_object_get_string_len(v),
			       id) == 0 && strlen(json_object_get_string(v)) ==
			       (size_t)json_object_get_string_len(v);
}

/* Add (category, type id) to the entry of to/id, made if new. */
static void assoc_put(struct assocs *a, const struct objtype *to, uint64_t id,
		      const char *category, int type_id)
{
	g_autofree char *key = g_strdup_printf("%s:%" PRIu64, to->id, id);
	json_object *e = g_hash_table_lookup(a->seen, key), *types, *spec;
	char ids[24];

	if (!e) {
		json_object *t = json_object_new_object();

		snprintf(ids, sizeof(ids), "%" PRIu64, id);
		json_object_object_add(t, "id", json_object_new_string(ids));
		e = json_object_new_object();
		json_object_object_add(e, "toObjectTypeId", json_object_new_string(to->id));
		json_object_object_add(e, "to", t);
		json_object_object_add(e, "types", json_object_new_array());
		json_object_array_add(a->out, e);
		g_hash_table_insert(a->seen, g_steal_pointer(&key), e);
	}
	types = json_object_object_get(e, "types");
	for (size_t i = 0; i < json_object_array_length(types); i++) {
		json_object *s = json_object_array_get_idx(types, i);

		if (json_object_get_int(json_object_object_get(s, "associationTypeId")) == type_id &&
		    !strcmp(json_util_field(s, "associationCategory"), category))
			return;
	}
	spec = json_object_new_object();
	json_object_object_add(spec, "associationCategory", json_object_new_string(category));
	json_object_object_add(spec, "associationTypeId", json_object_new_int(type_id));
	json_object_array_add(types, spec);
}

/* {"contacts": ["101", 102], "deals": "301"}: the default type of each pair;
 * the first contact of a type that needs one is its primary contact. */
static int assocs_by_type(struct assocs *a, json_object *in)
{
	const struct edit_ctx *ctx = a->ctx;
	bool primary_done = false;

	json_object_object_foreach(in, key, v) {
		const struct objtype *to = objtypes_lookup(ctx->types, key);
		g_autofree char *q = edit_quote(key);
		const char *cat;
		size_t n;
		int tid;

		if (!to)
			return bad_assoc(a, "%s is not an object type of this mount", q);
		if (!objtypes_associable(ctx->types, ctx->type, to))
			return bad_assoc(a, "%s cannot be associated with %s", ctx->type->name,
					 to->name);
		tid = objtypes_assoc_type_id(ctx->types, ctx->type, to);
		if (tid <= 0)
			return bad_assoc(a, "no default association type from %s to %s is known; "
					 "give its associationTypeId in the array form ([{\"to\": "
					 "{\"id\": …}, \"types\": […]}])", ctx->type->name, to->name);
		cat = ((ctx->type->flags | to->flags) & OTF_CUSTOM) ? "USER_DEFINED"
								     : "HUBSPOT_DEFINED";
		n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
		for (size_t i = 0; i < n; i++) {
			json_object *iv = json_object_is_type(v, json_type_array) ?
					  json_object_array_get_idx(v, i) : v;
			bool primary = (ctx->type->flags & OTF_NEEDS_CONTACT) &&
				       !strcmp(to->id, CONTACTS_ID) && !primary_done;
			uint64_t id;

			if (!assoc_id(iv, &id)) {
				g_autofree char *what = json_object_is_type(iv, json_type_string) ?
					edit_quote(json_object_get_string(iv)) :
					g_strdup(edit_type_noun(iv));

				return bad_assoc(a, "%s: %s is not a record id (write a list of "
						 "ids, like [\"101\"])", q, what);
			}
			assoc_put(a, to, id, cat, primary ? PRIMARY_CONTACT_TYPE : tid);
			primary_done |= primary;
		}
	}
	return 0;
}

/* The type a (from this type) association type id leads to: the pair whose
 * default id it is, or a lead's primary contact; NULL if unknown. */
static const struct objtype *type_of_assoc_id(const struct edit_ctx *ctx, int64_t tid)
{
	const struct objtype *to;

	if ((ctx->type->flags & OTF_NEEDS_CONTACT) && tid == PRIMARY_CONTACT_TYPE)
		return objtypes_by_id(ctx->types, CONTACTS_ID);
	for (unsigned i = 0; (to = objtypes_at(ctx->types, i)); i++)
		if (objtypes_assoc_type_id(ctx->types, ctx->type, to) == tid)
			return to;
	return NULL;
}

/* One {"associationCategory", "associationTypeId"} of the array form. */
static int assoc_spec(struct assocs *a, json_object *spec, size_t at, const char **cat,
		      int64_t *tid, const struct objtype **to)
{
	json_object *v = NULL;
	bool known = false;

	if (!json_object_is_type(spec, json_type_object))
		return bad_assoc(a, "entry %zu: each of \"types\" is {\"associationCategory\": …, "
				 "\"associationTypeId\": …}, not %s", at, edit_type_noun(spec));
	*cat = json_util_field(spec, "associationCategory");
	for (const char *const *c = categories; *cat && *c && !known; c++)
		known = !strcmp(*cat, *c);
	if (!known)
		return bad_assoc(a, "entry %zu: associationCategory must be HUBSPOT_DEFINED, "
				 "USER_DEFINED or INTEGRATOR_DEFINED", at);
	json_object_object_get_ex(spec, "associationTypeId", &v);
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
	    json_object_get_int64(v) > INT32_MAX)
		return bad_assoc(a, "entry %zu: associationTypeId must be a positive integer", at);
	*tid = json_object_get_int64(v);
	*to = type_of_assoc_id(a->ctx, *tid);
	if (!*to)
		return bad_assoc(a, "entry %zu: association type %" PRId64 " is not a default "
				 "association type from %s that hubfs knows; write "
				 "{\"<type>\": [\"<id>\"]} instead", at, *tid, a->ctx->type->name);
	return 0;
}

/* [{"to": {"id": "101"}, "types": [{…}]}]: HubSpot's own create form. */
static int assocs_api(struct assocs *a, json_object *in)
{
	for (size_t i = 0; i < json_object_array_length(in); i++) {
		json_object *e = json_object_array_get_idx(in, i), *to = NULL, *idv = NULL, *types;
		const struct objtype *tt = NULL;
		uint64_t id;

		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "to", &to) ||
		    !json_object_object_get_ex(to, "id", &idv) ||
		    !json_object_object_get_ex(e, "types", &types) ||
		    !json_object_is_type(types, json_type_array) ||
		    json_object_array_length(types) == 0)
			return bad_assoc(a, "entry %zu must be {\"to\": {\"id\": \"…\"}, \"types\": "
					 "[{\"associationCategory\": …, \"associationTypeId\": …}]}",
					 i + 1);
		if (!assoc_id(idv, &id))
			return bad_assoc(a, "entry %zu: \"to\" needs a record id", i + 1);
		for (size_t k = 0; k < json_object_array_length(types); k++) {
			const struct objtype *t = NULL;
			const char *cat = NULL;
			int64_t tid = 0;

			if (assoc_spec(a, json_object_array_get_idx(types, k), i + 1, &cat, &tid,
				       &t) < 0)
				return -EINVAL;
			if (tt && t != tt)
				return bad_assoc(a, "entry %zu: its types lead to %s and %s; one entry "
						 "is one record", i + 1, tt->name, t->name);
			tt = t;
			assoc_put(a, t, id, cat, (int)tid);
		}
	}
	return 0;
}

/* A type that needs a contact (leads) has one, as its primary contact. */
static int check_contact(struct assocs *a)
{
	bool contact = false;
	char *what;

	if (!(a->ctx->type->flags & OTF_NEEDS_CONTACT))
		return 0;
	for (size_t i = 0; i < json_object_array_length(a->out); i++) {
		json_object *e = json_object_array_get_idx(a->out, i);
		json_object *types = json_object_object_get(e, "types");

		if (strcmp(json_util_field(e, "toObjectTypeId"), CONTACTS_ID) != 0)
			continue;
		contact = true;
		for (size_t k = 0; k < json_object_array_length(types); k++)
			if (json_object_get_int(json_object_object_get(
				    json_object_array_get_idx(types, k), "associationTypeId")) ==
			    PRIMARY_CONTACT_TYPE)
				return 0;
	}
	what = a_record(a->ctx->type);
	if (contact)
		bad_assoc(a, "%s is created with its primary contact (association type %d), which "
			  "none of its contacts is", what, PRIMARY_CONTACT_TYPE);
	else
		edit_set_err(a->err, NULL, "%s must be created with an existing contact: add "
			     "\"associations\": {\"contacts\": [\"<contact id>\"]}", what);
	g_free(what);
	return -EINVAL;
}

static int parse_assocs(const struct edit_ctx *ctx, json_object *in, json_object **out,
			struct edit_error *err)
{
	struct assocs a = { .ctx = ctx, .out = json_object_new_array(), .err = err };
	int rc;

	*out = NULL;
	a.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (in && !ctx->types)
		rc = bad_assoc(&a, "cannot be checked here");
	else if (!in || json_object_is_type(in, json_type_null))
		rc = 0;
	else if (json_object_is_type(in, json_type_object))
		rc = assocs_by_type(&a, in);
	else if (json_object_is_type(in, json_type_array))
		rc = assocs_api(&a, in);
	else
		rc = bad_assoc(&a, "write {\"contacts\": [\"101\"], …} or HubSpot's array "
			       "[{\"to\": {\"id\": \"101\"}, \"types\": […]}], not %s",
			       edit_type_noun(in));
	if (rc == 0)
		rc = check_contact(&a);
	g_hash_table_destroy(a.seen);
	if (rc == 0 && json_object_array_length(a.out) > 0)
		*out = json_object_get(a.out);
	json_object_put(a.out);
	return rc;
}

/* --- the file ------------------------------------------------------------------ */

int edit_parse_create(const struct edit_ctx *ctx, const char *buf, size_t len, json_object **props,
		      json_object **assocs, struct edit_error *err)
{
	json_object *top = NULL, *in, *out = NULL, *as = NULL, *ain = NULL;
	int rc = -EINVAL;

	*props = NULL;
	if (assocs)
		*assocs = NULL;
	if (edit_parse_file(buf, len, assocs != NULL, &top, &in, err) < 0)
		goto out;
	if (new_props(ctx, in, &out, err) < 0 ||
	    edit_check_pipelines(ctx, out, NULL, err) < 0)
		goto out;
	fill_timestamp(ctx, out);
	if (check_required(ctx, out, err) < 0)
		goto out;
	json_object_object_get_ex(top, "associations", &ain);
	if (parse_assocs(ctx, ain, &as, err) < 0)
		goto out;
	*props = g_steal_pointer(&out);
	if (assocs)
		*assocs = g_steal_pointer(&as);
	rc = 0;
out:
	json_object_put(as);
	json_object_put(out);
	json_object_put(top);
	return rc;
}

int edit_parse_new(const struct edit_ctx *ctx, const char *buf, size_t len, json_object **props,
		   struct edit_error *err)
{
	return edit_parse_create(ctx, buf, len, props, NULL, err);
}
