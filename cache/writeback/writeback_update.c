/* writeback_update.c - sending queued updates: coalesce a
 * record's pending rows, read the records, check each change against the
 * server's value (conflicts) and the lifecycle-stage order, send one
 * batch/update, then rewrite the journal and land the result in the cache.
 * See writeback_int.h.
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
#include "cache/model/schema.h"
#include "cache/writeback/journal.h"
#include "client/log.h"

/* --- updates -------------------------------------------------------------------- */

/* The pending rows of one record, merged (later values win, earliest base). */
struct urec {
	uint64_t id;
	char ids[24];
	GArray *seqs;               /* int64_t, ascending */
	GArray *doubted;            /* gboolean per seq: the row was in doubt when taken */
	json_object *doubt_props;   /* names the in-doubt rows change (name -> null), or NULL */
	json_object *props, *base;
	uint64_t epoch;
	json_object *cur;           /* the server's record just before sending (owned ref) */
	json_object *send;          /* what this batch sends */
	json_object *conflicts;     /* name -> {server, base, local} */
	json_object *remain, *remain_base; /* lifecycle: for the next batch */
	bool sent;
	bool transient;             /* not sent: the rows go back as they were */
	bool in_doubt;              /* sent, answer lost: the rows are in doubt */
	struct item it;
};

static void urec_free(struct urec *u)
{
	g_array_unref(u->seqs);
	g_array_unref(u->doubted);
	json_object_put(u->doubt_props);
	json_object_put(u->props);
	json_object_put(u->base);
	json_object_put(u->cur);
	json_object_put(u->send);
	json_object_put(u->conflicts);
	json_object_put(u->remain);
	json_object_put(u->remain_base);
	wb_item_clear(&u->it);
	g_free(u);
}

static const char *const lifecycle[] = {
	"subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
	"customer", "evangelist", "other", NULL,
};

static int stage_rank(const char *s)
{
	for (int i = 0; lifecycle[i]; i++)
		if (strcmp(lifecycle[i], s) == 0)
			return i;
	return -1;
}

/* Must the stage be cleared first? Only forward moves are accepted; custom
 * (unknown) stages have no known order, so they take the safe two-step. */
static bool stage_backward(const struct objtype *type, const char *name, const char *server,
			   const char *want)
{
	int a, b;

	if (!(type->flags & OTF_LIFECYCLE) || strcmp(name, "lifecyclestage") != 0)
		return false;
	if (!*server || !*want || strcmp(server, want) == 0)
		return false;
	a = stage_rank(server);
	b = stage_rank(want);
	return a < 0 || b < 0 || b < a;
}

/* Lock held. Take up to 100 records' pending updates of a type, in flight,
 * with the in-doubt ones (sent, answer lost): the read before sending tells
 * whether they landed. */
static int take_updates(struct writeback *wb, const struct objtype *type, GPtrArray *out)
{
	GHashTable *by_id;
	GPtrArray *rows = NULL;
	int rc;

	if (!wb_take_ok(wb, type))
		return 0;
	/* A bounded window: rows of a record past it go in a later chunk, after
	 * this one settled, so a record's edits still land in order. */
	rc = journal_list(wb->j, JS_MASK(JS_PENDING) | JS_MASK(JS_IN_DOUBT), JOP_UPDATE, type->id, 0,
			  TAKE_WINDOW, &rows);
	if (rc)
		return rc;
	by_id = g_hash_table_new(g_int64_hash, g_int64_equal);
	for (guint i = 0; i < rows->len; i++) {
		struct jop *op = rows->pdata[i];
		struct urec *u = g_hash_table_lookup(by_id, &op->id);

		if (!u) {
			if (out->len == BATCH_MAX)
				continue;
			u = g_new0(struct urec, 1);
			u->id = op->id;
			snprintf(u->ids, sizeof(u->ids), "%" PRIu64, op->id);
			u->seqs = g_array_new(FALSE, FALSE, sizeof(int64_t));
			u->doubted = g_array_new(FALSE, FALSE, sizeof(gboolean));
			u->props = json_object_new_object();
			u->base = json_object_new_object();
			g_ptr_array_add(out, u);
			g_hash_table_insert(by_id, &u->id, u);
		}
		json_object_object_foreach(op->props, k, v) {
			json_object *bv;

			if (!json_object_object_get_ex(u->props, k, NULL) &&
			    json_object_object_get_ex(op->base, k, &bv))
				json_object_object_add(u->base, k, json_object_get(bv));
			json_object_object_add(u->props, k, json_object_get(v));
		}
		u->epoch = MAX(u->epoch, op->epoch);
		g_array_append_val(u->seqs, op->seq);
		{
			gboolean d = op->state == JS_IN_DOUBT;

			g_array_append_val(u->doubted, d);
			if (d && !u->doubt_props)
				u->doubt_props = json_object_new_object();
			json_object_object_foreach(op->props, dk, dv) {
				(void)dv;
				if (d)
					json_object_object_add(u->doubt_props, dk, NULL);
			}
		}
	}
	/* Mark every row taken (rows of records past the first 100 stay). */
	{
		GPtrArray *taken = g_ptr_array_new();

		for (guint i = 0; i < rows->len; i++) {
			struct jop *op = rows->pdata[i];

			if (g_hash_table_contains(by_id, &op->id))
				g_ptr_array_add(taken, op);
		}
		rc = wb_mark_in_flight(wb, taken);
		g_ptr_array_free(taken, TRUE);
	}
	g_hash_table_destroy(by_id);
	g_ptr_array_unref(rows);
	return rc;
}

/* Property names for the read before sending: the shown ones and the changed ones. */
static GPtrArray *read_props(const struct schema *s, GPtrArray *recs)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);

	if (s) {
		gchar **v = g_strsplit(schema_props_csv(s), ",", -1);

		for (gchar **p = v; *p; p++)
			if (**p && g_hash_table_add(seen, *p))
				g_ptr_array_add(names, g_strdup(*p));
		g_hash_table_destroy(seen);
		seen = g_hash_table_new(g_str_hash, g_str_equal);
		for (guint i = 0; i < names->len; i++)
			g_hash_table_add(seen, names->pdata[i]);
		g_strfreev(v);
	}
	for (guint i = 0; i < recs->len; i++) {
		struct urec *u = recs->pdata[i];

		json_object_object_foreach(u->props, k, v) {
			(void)v;
			if (!g_hash_table_contains(seen, k)) {
				char *d = g_strdup(k);

				g_ptr_array_add(names, d);
				g_hash_table_add(seen, d);
			}
		}
	}
	g_hash_table_destroy(seen);
	return names;
}

/* Compare each change with the server's value; decide what to send now. */
static void plan_record(const struct objtype *type, struct urec *u)
{
	json_object *sp = wb_obj_props(u->cur);

	u->send = json_object_new_object();
	json_object_object_foreach(u->props, k, v) {
		const char *sv = wb_prop_val(sp, k), *nv = json_object_get_string(v);
		json_object *bv;

		if (json_object_object_get_ex(u->base, k, &bv)) {
			const char *bs = bv ? json_object_get_string(bv) : "";
			/* A stage we were moving back may already be cleared by our
			 * own first step (then a crash lost the journal update). */
			bool our_clear = !*sv && stage_backward(type, k, bs, nv);

			if (!our_clear && strcmp(sv, bs) != 0 && strcmp(sv, nv) != 0) {
				json_object *c = json_object_new_object();

				json_object_object_add(c, "server", json_object_new_string(sv));
				json_object_object_add(c, "base", json_object_new_string(bs));
				json_object_object_add(c, "local", json_object_new_string(nv));
				if (!u->conflicts)
					u->conflicts = json_object_new_object();
				json_object_object_add(u->conflicts, k, c);
				continue;
			}
		}
		if (strcmp(sv, nv) == 0)
			continue; /* already so */
		if (stage_backward(type, k, sv, nv)) {
			json_object_object_add(u->send, k, json_object_new_string(""));
			if (!u->remain) {
				u->remain = json_object_new_object();
				u->remain_base = json_object_new_object();
			}
			json_object_object_add(u->remain, k, json_object_new_string(nv));
			json_object_object_add(u->remain_base, k, json_object_new_string(""));
			continue;
		}
		json_object_object_add(u->send, k, json_object_new_string(nv));
	}
}

/* The server's record after the update: what was read before, with the
 * update's answer over it. New reference. */
static json_object *landed_object(struct urec *u)
{
	json_object *o = NULL, *p, *rp = wb_obj_props(u->it.result);
	const char *ua = json_util_field(u->it.result, "updatedAt");

	if (json_object_deep_copy(u->cur, &o, NULL) != 0 || !o)
		return NULL;
	p = wb_obj_props(o);
	if (p && rp) {
		json_object_object_foreach(rp, k, v)
			json_object_object_add(p, k, json_object_get(v));
	}
	if (ua)
		json_object_object_add(o, "updatedAt", json_object_new_string(ua));
	return o;
}

/* Lock held. Rewrite the journal for one record once its batch settled. */
static int settle_record_journal(struct writeback *wb, const struct objtype *type, struct urec *u,
				 json_object *landed)
{
	int64_t now = hs_wall_ms(), first = g_array_index(u->seqs, int64_t, 0);
	int64_t last = g_array_index(u->seqs, int64_t, u->seqs->len - 1);
	int rc = 0;

	if (u->transient || u->in_doubt) {
		for (guint i = 0; rc == 0 && i < u->seqs->len; i++) {
			bool d = u->in_doubt || g_array_index(u->doubted, gboolean, i);

			rc = journal_set_state(wb->j, g_array_index(u->seqs, int64_t, i),
					       d ? JS_IN_DOUBT : JS_PENDING, NULL, now);
		}
		return rc;
	}
	for (guint i = 1; rc == 0 && i < u->seqs->len; i++)
		rc = journal_delete(wb->j, g_array_index(u->seqs, int64_t, i));
	if (rc)
		return rc;
	if (u->it.outcome == OUT_FAILED) {
		rc = journal_set_props(wb->j, first, u->props, u->base, now);
		if (rc == 0)
			rc = wb_set_failed(wb, first, &u->it.err, now);
		/* Later edits built on the rejected values compare with the server's. */
		json_object_object_foreach(u->props, k, v) {
			if (rc == 0)
				rc = journal_rebase(wb->j, type->id, u->id, last, k, json_object_get_string(v),
						    u->cur ? wb_prop_val(wb_obj_props(u->cur), k) : NULL, now);
		}
		return rc;
	}
	/* Landed (possibly nothing to send). */
	if (u->remain) {
		rc = journal_set_props(wb->j, first, u->remain, u->remain_base, now);
		if (rc == 0)
			rc = journal_set_state(wb->j, first, JS_PENDING, NULL, now);
	} else {
		rc = journal_delete(wb->j, first);
	}
	if (rc == 0 && u->conflicts) {
		struct jop op = { .kind = JOP_UPDATE, .id = u->id, .state = JS_CONFLICT,
				  .epoch = u->epoch };
		struct wb_err w;

		g_strlcpy(op.type, type->id, sizeof(op.type));
		op.props = json_object_new_object();
		op.base = json_object_new_object();
		json_object_object_foreach(u->conflicts, k, c) {
			json_object *bv;

			(void)c;
			json_object_object_add(op.props, k, json_object_get(json_object_object_get(u->props, k)));
			if (json_object_object_get_ex(u->base, k, &bv))
				json_object_object_add(op.base, k, json_object_get(bv));
		}
		wb_err_set(&w, "conflict: changed on HubSpot since it was read", NULL);
		op.error = wb_err_json(&w);
		rc = journal_insert(wb->j, &op, now, NULL);
		g_free(op.error);
		json_object_put(op.props);
		json_object_put(op.base);
	}
	/* Later edits of what was sent compare with what the server now holds. */
	if (rc == 0 && landed && u->sent) {
		json_object_object_foreach(u->send, k, v) {
			const char *now_v = wb_prop_val(wb_obj_props(landed), k);

			if (rc == 0 && strcmp(now_v, json_object_get_string(v)) != 0)
				rc = journal_rebase(wb->j, type->id, u->id, last, k, json_object_get_string(v),
						    now_v, now);
		}
	}
	return rc;
}

/* After the journal: cache, error lines, rejected files. No lock held. */
static void settle_record_after(struct writeback *wb, const struct objtype *type, struct urec *u,
				json_object *landed, const struct schema *s)
{
	if (u->transient || u->in_doubt)
		return;
	if (u->it.outcome == OUT_FAILED) {
		wb_report(wb, "update", type, u->id, NULL, &u->it.err, NULL);
		wb_reject(wb, type, u->id, NULL, u->cur, u->props, s);
		wb_land(wb, type, u->id, s ? u->cur : NULL, u->epoch);
		return;
	}
	if (u->conflicts) {
		json_object_object_foreach(u->conflicts, k, c) {
			struct wb_err w;
			json_object *extra = json_object_new_object();

			wb_err_set(&w, "conflict: changed on HubSpot since it was read; not overwritten",
				NULL);
			snprintf(w.property, sizeof(w.property), "%s", k);
			json_object_object_foreach(c, ck, cv)
				json_object_object_add(extra, ck, json_object_get(cv));
			wb_report(wb, "update", type, u->id, NULL, &w, extra);
		}
		wb_reject(wb, type, u->id, NULL, u->cur, u->props, s);
	}
	/* Phase one of a lifecycle move keeps the local view until phase two. */
	if (!u->remain)
		wb_land(wb, type, u->id, s ? landed : NULL, u->epoch);
	cache_team_landed(wb->c, type, u->id); /* the other mounts of a team read it again */
}

/* An update whose answer was lost is settled by the read before sending:
 * a change the server already holds is not sent again (plan_record), and the
 * record then settles as any landed update (settle_record_after: cached, and
 * published to the team once). Count whether what the in-doubt rows changed
 * had landed. */
static void doubt_looked_up(struct writeback *wb, const struct urec *u)
{
	bool landed = true;

	if (!u->doubt_props)
		return;
	json_object_object_foreach(u->doubt_props, k, v) {
		(void)v;
		if (json_object_object_get_ex(u->send, k, NULL) ||
		    (u->conflicts && json_object_object_get_ex(u->conflicts, k, NULL)))
			landed = false;
	}
	log_notice("writeback: in-doubt update of %s %s", u->ids,
		   landed ? "had landed; not sent again" : "had not landed; sending it again");
	wb_doubt_settled(wb, landed, 1);
}

/* The read before sending: each record's server version into u->cur (those
 * HubSpot no longer has are failed here). -EAGAIN after a transient failure
 * (every record then goes back as it was). */
static int read_before(struct writeback *wb, const struct objtype *type, const struct schema *s,
		       GPtrArray *recs)
{
	GPtrArray *names = read_props(s, recs);
	const char **ids = g_new0(const char *, recs->len + 1);
	json_object *out = NULL, *results;
	struct hs_call call;
	int rc;

	for (guint i = 0; i < recs->len; i++)
		ids[i] = ((struct urec *)recs->pdata[i])->ids;
	wb_call_init(wb, &call);
	rc = hs_batch_read(wb->hc, &call, type->path, ids, recs->len,
			   (const char *const *)names->pdata, names->len, &out);
	g_free(ids);
	g_ptr_array_unref(names);
	if (rc != 0) {
		wb_backoff(wb, "batch/read before update", &call, rc);
		for (guint i = 0; i < recs->len; i++)
			((struct urec *)recs->pdata[i])->transient = true;
		json_object_put(out);
		return -EAGAIN;
	}
	wb_backoff_reset(wb);
	results = json_object_object_get_ex(out, "results", &results) ? results : NULL;
	for (size_t r = 0; r < json_util_array_len(results); r++) {
		json_object *o = json_object_array_get_idx(results, r);
		const char *rid = json_util_field(o, "id");

		for (guint i = 0; rid && i < recs->len; i++) {
			struct urec *u = recs->pdata[i];

			if (!u->cur && strcmp(u->ids, rid) == 0)
				u->cur = json_object_get(o);
		}
	}
	json_object_put(out);
	return 0;
}

/* Plan one record against the server's version: what to send (its batch
 * input in u->it), or nothing, or a failure when HubSpot has no such record.
 * Returns whether it goes into the batch. */
static bool plan_send(struct writeback *wb, const struct objtype *type, struct urec *u)
{
	if (!u->cur) {
		struct hs_error e = { .http_status = 404 };

		snprintf(e.category, sizeof(e.category), "OBJECT_NOT_FOUND");
		snprintf(e.message, sizeof(e.message),
			 "the record does not exist on HubSpot (archived or merged?)");
		wb_item_fail(&u->it, "record not found", &e);
		if (u->doubt_props)
			wb_doubt_settled(wb, false, 1);
		return false;
	}
	plan_record(type, u);
	doubt_looked_up(wb, u);
	if (json_object_object_length(u->send) == 0) {
		u->it.outcome = OUT_OK;
		return false;
	}
	u->it.input = json_object_new_object();
	json_object_object_add(u->it.input, "id", json_object_new_string(u->ids));
	json_object_object_add(u->it.input, "properties", json_object_get(u->send));
	json_object_object_add(u->it.input, "objectWriteTraceId", json_object_new_string(u->ids));
	snprintf(u->it.match, sizeof(u->it.match), "%s", u->ids);
	u->sent = true;
	return true;
}

/* Send the planned records as one batch/update. 0, or -EAGAIN after a
 * transient failure or a lost answer (marked on the records). */
static int send_updates(struct writeback *wb, const struct objtype *type, GPtrArray *recs)
{
	struct item **items = g_new0(struct item *, recs->len + 1);
	struct urec **owners = g_new0(struct urec *, recs->len + 1);
	struct batch b = { .type = type, .verb = "update" };
	size_t nitems = 0;
	int rc = 0;

	for (guint i = 0; i < recs->len; i++) {
		struct urec *u = recs->pdata[i];

		if (plan_send(wb, type, u)) {
			owners[nitems] = u;
			items[nitems++] = &u->it;
		}
	}
	if (nitems)
		rc = wb_send_batch(wb, &b, items, nitems);
	for (size_t i = 0; i < nitems; i++) {
		if (items[i]->outcome == OUT_NONE)
			owners[i]->transient = true;
		else if (items[i]->outcome == OUT_IN_DOUBT)
			owners[i]->in_doubt = true;
	}
	g_free(owners);
	g_free(items);
	return rc;
}

static int process_updates(struct writeback *wb, const struct objtype *type, GPtrArray *recs)
{
	const struct schema *s = NULL;
	json_object **landed = g_new0(json_object *, recs->len + 1);
	int rc, jrc;

	if (cache_schema(wb->c, type, hs_now_ms() + wb->call_timeout_ms, &s) != 0)
		s = NULL; /* no full read: landed records are forgotten instead */
	rc = read_before(wb, type, s, recs);
	if (rc == 0)
		rc = send_updates(wb, type, recs);
	for (guint i = 0; i < recs->len; i++) {
		struct urec *u = recs->pdata[i];

		if (!u->transient && !u->in_doubt && u->it.outcome == OUT_OK && u->cur)
			landed[i] = landed_object(u);
	}
	pthread_mutex_lock(&wb->lock);
	jrc = journal_begin(wb->j);
	for (guint i = 0; jrc == 0 && i < recs->len; i++)
		jrc = settle_record_journal(wb, type, recs->pdata[i], landed[i]);
	wb_journal_done(wb, jrc);
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	for (guint i = 0; i < recs->len; i++)
		settle_record_after(wb, type, recs->pdata[i], landed[i], s);
	for (guint i = 0; i < recs->len; i++)
		json_object_put(landed[i]);
	g_free(landed);
	return rc ? -EAGAIN : 0;
}

/* 1 if a chunk was sent, 0 if nothing to do, -EAGAIN on a transient failure. */
int wb_do_updates(struct writeback *wb, const struct objtype *type)
{
	GPtrArray *recs = g_ptr_array_new_with_free_func((GDestroyNotify)urec_free);
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = take_updates(wb, type, recs);
	pthread_mutex_unlock(&wb->lock);
	if (rc == 0 && recs->len > 0) {
		rc = process_updates(wb, type, recs) == 0 ? 1 : -EAGAIN;
	} else if (rc < 0) {
		wb_backoff(wb, "journal", NULL, rc);
		rc = -EAGAIN;
	}
	g_ptr_array_unref(recs);
	return rc;
}
