/* writeback_doubt.c - settling writes whose answer was lost (in doubt): the
 * server may or may not have applied them, so they are looked up before
 * anything is sent again. Upserts are read back by email,
 * archives by id, association writes by the v4 association read; what
 * landed is done, the rest goes back to pending and is sent again. Creates
 * without an email are searched for (writeback_create.c); updates are
 * settled by their own read before sending (writeback_update.c). See
 * writeback_int.h.
 */
#include "cache/writeback/writeback_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cache/cache_team.h"
#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "cache/writeback/journal.h"
#include "client/log.h"

#define DOUBT_PER_PASS 100         /* in-doubt operations of one kind looked up per pass */

/* One in-doubt operation and what the lookup found. */
struct look {
	struct jop *op;             /* owned */
	bool landed;
	char id[24];                /* upsert: the contact's id when landed */
};

static void looks_free(GArray *a)
{
	for (guint i = 0; i < a->len; i++)
		jop_free(g_array_index(a, struct look, i).op);
	g_array_unref(a);
}

static char *id_str(uint64_t id)
{
	return g_strdup_printf("%" PRIu64, id);
}

/* Do two property values mean the same? Emails compare without case. */
static bool same_value(const char *name, const char *a, const char *b)
{
	if (strcmp(name, "email") == 0)
		return g_ascii_strcasecmp(a, b) == 0;
	return strcmp(a, b) == 0;
}

/* Upserts: read the records (contacts) back by email; landed if one holds
 * every value the upsert set. */
static int look_upserts(struct writeback *wb, const struct objtype *type, GArray *v)
{
	g_autofree char *path = g_strdup_printf("/crm/v3/objects/%s/batch/read", type->path);
	json_object *body = json_object_new_object(), *inputs = json_object_new_array();
	json_object *props = json_object_new_array(), *out = NULL, *results;
	GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);
	struct hs_call call;
	int rc;

	for (guint i = 0; i < v->len; i++) {
		struct jop *op = g_array_index(v, struct look, i).op;
		json_object *in = json_object_new_object();

		json_object_object_add(in, "id", json_object_new_string(wb_prop_val(op->props, "email")));
		json_object_array_add(inputs, in);
		json_object_object_foreach(op->props, k, pv) {
			(void)pv;
			if (g_hash_table_add(names, k))
				json_object_array_add(props, json_object_new_string(k));
		}
	}
	json_object_object_add(body, "idProperty", json_object_new_string("email"));
	json_object_object_add(body, "inputs", inputs);
	json_object_object_add(body, "properties", props);
	wb_call_init(wb, &call);
	rc = hs_request(wb->hc, &call, "POST", path, body, &out);
	json_object_put(body);
	g_hash_table_destroy(names);
	if (rc) {
		wb_backoff(wb, "batch/read of in-doubt upserts", &call, rc);
		return -EAGAIN;
	}
	if (!json_object_object_get_ex(out, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		results = NULL;
	for (guint i = 0; i < v->len; i++) {
		struct look *l = &g_array_index(v, struct look, i);

		for (size_t r = 0; results && !l->landed && r < json_object_array_length(results); r++) {
			json_object *o = json_object_array_get_idx(results, r), *p = wb_obj_props(o);
			bool same = json_util_field(o, "id") != NULL;

			json_object_object_foreach(l->op->props, k, pv) {
				if (same && !same_value(k, wb_prop_val(p, k), json_object_get_string(pv)))
					same = false;
			}
			if (same) {
				l->landed = true;
				snprintf(l->id, sizeof(l->id), "%s", json_util_field(o, "id"));
			}
		}
	}
	json_object_put(out);
	return 0;
}

/* Archives: read the records; landed if the read no longer finds one. */
static int look_archives(struct writeback *wb, const struct objtype *type, GArray *v)
{
	char **ids = g_new0(char *, v->len + 1);
	json_object *out = NULL, *results;
	GHashTable *present = g_hash_table_new(g_str_hash, g_str_equal);
	struct hs_call call;
	int rc;

	for (guint i = 0; i < v->len; i++)
		ids[i] = id_str(g_array_index(v, struct look, i).op->id);
	wb_call_init(wb, &call);
	rc = hs_batch_read(wb->hc, &call, type->path, (const char *const *)ids, v->len, NULL, 0,
			   &out);
	if (rc) {
		wb_backoff(wb, "batch/read of in-doubt archives", &call, rc);
		rc = -EAGAIN;
		goto out;
	}
	if (json_object_object_get_ex(out, "results", &results) &&
	    json_object_is_type(results, json_type_array)) {
		for (size_t r = 0; r < json_object_array_length(results); r++) {
			const char *rid = json_util_field(json_object_array_get_idx(results, r), "id");

			if (rid)
				g_hash_table_add(present, (gpointer)rid);
		}
	}
	for (guint i = 0; i < v->len; i++)
		g_array_index(v, struct look, i).landed = !g_hash_table_contains(present, ids[i]);
out:
	g_hash_table_destroy(present);
	json_object_put(out);
	g_strfreev(ids);
	return rc;
}

/* Is to_id among the associations of from_id in a v4 batch/read answer?
 * Returns 1, 0, or -1 when it cannot tell (more pages). */
static bool has_type(json_object *to_o, int type_id)
{
	json_object *types;

	if (!json_object_object_get_ex(to_o, "associationTypes", &types))
		return false;
	for (size_t i = 0; i < json_util_array_len(types); i++) {
		json_object *t = json_object_array_get_idx(types, i), *v;

		if (json_object_object_get_ex(t, "typeId", &v) && json_object_get_int(v) == type_id)
			return true;
	}
	return false;
}

/* type_id > 0: is that association type of the pair there? */
static int assoc_present(json_object *results, uint64_t from_id, uint64_t to_id, int type_id)
{
	char from[24], to[24];

	snprintf(from, sizeof(from), "%" PRIu64, from_id);
	snprintf(to, sizeof(to), "%" PRIu64, to_id);
	for (size_t r = 0; results && r < json_object_array_length(results); r++) {
		json_object *o = json_object_array_get_idx(results, r), *f, *t;

		if (!json_object_object_get_ex(o, "from", &f) || g_strcmp0(json_util_field(f, "id"), from) != 0)
			continue;
		if (json_object_object_get_ex(o, "to", &t) && json_object_is_type(t, json_type_array)) {
			for (size_t x = 0; x < json_object_array_length(t); x++) {
				json_object *to_o = json_object_array_get_idx(t, x), *tid;

				if (json_object_object_get_ex(to_o, "toObjectId", &tid) &&
				    strcmp(json_object_get_string(tid), to) == 0)
					return type_id <= 0 || has_type(to_o, type_id);
			}
		}
		return json_object_object_get_ex(o, "paging", NULL) ? -1 : 0;
	}
	return 0;
}

/* Association adds and removes toward one type: read the associations of the
 * records; an add landed if the pair is there, a remove if it is not (for a
 * label row: the pair with that label). */
static int look_assocs(struct writeback *wb, const struct objtype *type,
		       const struct objtype *to_type, GArray *v)
{
	char **ids = g_new0(char *, v->len + 1);
	json_object *out = NULL, *results = NULL;
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	struct hs_call call;
	size_t n = 0;
	int rc;

	for (guint i = 0; i < v->len; i++) {
		char *s = id_str(g_array_index(v, struct look, i).op->id);

		if (g_hash_table_add(seen, s))
			ids[n++] = s;
		else
			g_free(s);
	}
	g_hash_table_destroy(seen);
	wb_call_init(wb, &call);
	rc = hs_assoc_batch_read(wb->hc, &call, type->path, to_type->path,
				 (const char *const *)ids, NULL, n, &out);
	g_strfreev(ids);
	if (rc) {
		wb_backoff(wb, "association read of in-doubt links", &call, rc);
		return -EAGAIN;
	}
	if (!json_object_object_get_ex(out, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		results = NULL;
	for (guint i = 0; i < v->len; i++) {
		struct look *l = &g_array_index(v, struct look, i);
		int tid = 0, p;

		wb_label_of(l->op, &tid, NULL, NULL);
		p = assoc_present(results, l->op->id, l->op->to_id, tid);

		/* Unsure (a later page): sent again, which is harmless for a link. */
		l->landed = l->op->kind == JOP_ASSOC_ADD ? p == 1 : p == 0;
	}
	json_object_put(out);
	return 0;
}

/* Write what the lookups found to the journal, then tell (hooks, cache). */
static void settle(struct writeback *wb, const struct objtype *type, GArray *v)
{
	int64_t now = hs_wall_ms();
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_begin(wb->j);
	for (guint i = 0; rc == 0 && i < v->len; i++) {
		struct look *l = &g_array_index(v, struct look, i);
		uint64_t xid;

		if (!l->landed)
			rc = journal_set_state(wb->j, l->op->seq, JS_PENDING, NULL, now);
		else if ((rc = journal_delete(wb->j, l->op->seq)) == 0 && l->id[0] &&
			 record_parse_id(l->id, strlen(l->id), &xid) == 0) {
			rc = wb_creates_to_update(wb, type, l->op->key, xid, now);
			/* A landed upsert carried no associations: they follow it. */
			if (rc == 0)
				rc = wb_create_assocs_queue(wb, type, l->op, xid, now);
		}
	}
	wb_journal_done(wb, rc);
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	if (rc)
		return;
	for (guint i = 0; i < v->len; i++) {
		struct look *l = &g_array_index(v, struct look, i);
		const struct jop *op = l->op;

		wb_doubt_settled(wb, l->landed, 1);
		if (op->kind == JOP_CREATE && l->landed) {
			uint64_t xid;

			if (record_parse_id(l->id, strlen(l->id), &xid) == 0)
				wb_create_assocs_note(wb, type, op, xid);
			wb_create_found(wb, type, op->key, l->id);
			continue;
		}
		/* Landed: told as if the answer had come (writeback_batch.c's
		 * simple_after), the team included. */
		if (op->kind == JOP_ARCHIVE && l->landed) {
			cache_record_forget(wb->c, type, op->id);
			cache_archive_landed(wb->c, type, op->id);
			wb_cascade(wb, type, op->id, CASCADE_LANDED);
			cache_team_archived(wb->c, type, op->id);
		} else if ((op->kind == JOP_ASSOC_ADD || op->kind == JOP_ASSOC_DEL) && l->landed) {
			const struct objtype *to_type = wb_to_type_of(wb, op);

			if (to_type)
				cache_team_assoc_landed(wb->c, type, op->id, to_type, op->to_id,
							op->kind == JOP_ASSOC_ADD);
		}
		if (op->kind == JOP_CREATE)
			log_notice("writeback: in-doubt upsert %s/_new/%s had not landed; sending it"
				   " again", type->name, op->key);
		else
			log_notice("writeback: in-doubt %s of %s/%" PRIu64 " %s", jop_kind_name(op->kind),
				   type->name, op->id,
				   l->landed ? "had landed; not sent again" : "had not landed; sending it again");
	}
}

int wb_do_in_doubt_other(struct writeback *wb, const struct objtype *type)
{
	size_t ntypes = objtypes_count(wb->types);
	GPtrArray *rows = NULL;
	GArray *up = g_array_new(FALSE, TRUE, sizeof(struct look));
	GArray *ar = g_array_new(FALSE, TRUE, sizeof(struct look));
	GArray *as[OBJTYPES_MAX];   /* association writes, by the other side's type */
	int rc = 0, n = 0;

	for (size_t t = 0; t < ntypes; t++)
		as[t] = g_array_new(FALSE, TRUE, sizeof(struct look));
	pthread_mutex_lock(&wb->lock);
	if (journal_list(wb->j, JS_MASK(JS_IN_DOUBT), -1, type->id, 0, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++) {
			struct jop *op = rows->pdata[i];
			const struct objtype *to_type = wb_to_type_of(wb, op);
			struct look l = { .op = op };
			GArray *to = NULL;

			if (op->kind == JOP_CREATE && wb_create_by_upsert(wb, op))
				to = up;
			else if (op->kind == JOP_ARCHIVE)
				to = ar;
			else if ((op->kind == JOP_ASSOC_ADD || op->kind == JOP_ASSOC_DEL) && to_type)
				to = as[to_type->idx];
			if (!to || to->len >= DOUBT_PER_PASS)
				continue;
			g_array_append_val(to, l);
			rows->pdata[i] = NULL;
		}
		g_ptr_array_unref(rows);
	}
	pthread_mutex_unlock(&wb->lock);

	if (up->len && (rc = look_upserts(wb, type, up)) == 0) {
		settle(wb, type, up);
		n += (int)up->len;
	}
	if (rc == 0 && ar->len && (rc = look_archives(wb, type, ar)) == 0) {
		settle(wb, type, ar);
		n += (int)ar->len;
	}
	for (size_t t = 0; t < ntypes; t++) {
		const struct objtype *to_type = objtypes_at(wb->types, (unsigned)t);

		if (rc == 0 && as[t]->len && (rc = look_assocs(wb, type, to_type, as[t])) == 0) {
			settle(wb, type, as[t]);
			n += (int)as[t]->len;
		}
	}
	looks_free(up);
	looks_free(ar);
	for (size_t t = 0; t < ntypes; t++)
		looks_free(as[t]);
	return rc ? rc : n;
}
