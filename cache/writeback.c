/* writeback.c - queueing edits into the journal, and the batcher thread that
 * sends them (DESIGN.md §3). See writeback.h for the contract.
 *
 * One cycle of the batcher, once delay_ms passed without a new operation (or a
 * type has 100 pending, or sync/unmount asks):
 *   1. in-doubt creates: contacts with an email go back to pending (upsert is
 *      idempotent); others are looked up by search once index_delay_ms passed
 *      since the lost answer; found = created, not found = pending (re-sent);
 *   2. creates: contacts with an email by batch/upsert on email, the rest by
 *      batch/create with objectWriteTraceId; rows are in_flight on disk first;
 *   3. updates: one batch/read per 100 records (the shown properties plus the
 *      changed ones), the conflict and lifecycle checks, one batch/update;
 *   4. archives; 5. association adds (batch/associate/default), then removes.
 * A batch answered 400/409 as a whole is bisected; a 207 fails only the inputs
 * it names. A transient failure (429 or 5xx past the call deadline, network)
 * leaves the operations pending and backs the batcher off; nothing is dropped.
 *
 * Landing updates: batch/update answers are merged over the batch/read taken
 * just before (which asked for every shown property), so the cache gets a full
 * record without another call, whatever subset of properties the update answer
 * carries. Without a schema the record is forgotten (refetched on next read).
 *
 * Locking: wb->lock guards the journal and the scheduling fields. It is never
 * held across HTTP, cache calls or hooks (the hooks may call back into us).
 */
#include "cache/writeback.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cache/journal.h"
#include "cache/objtype.h"
#include "cache/record.h"
#include "cache/schema.h"
#include "client/log.h"

#define BATCH_MAX 100
#define DEFAULT_DELAY_MS 2000
#define DEFAULT_INDEX_DELAY_MS 10000
#define DEFAULT_CALL_TIMEOUT_MS 30000
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 60000
#define INDEX_MARGIN_MS 1000       /* added to index_delay_ms before an in-doubt search */
#define CLOCK_SKEW_MS (5 * 60000)  /* createdate window of an in-doubt search */
#define IN_DOUBT_PER_PASS 20
#define LOOKUP_GROUPS 5            /* in-doubt creates per search: filter groups (HubSpot: <= 5) */
#define LOOKUP_FILTERS 18          /* filters per search (HubSpot: <= 18, <= 6 per group) */
#define LOOKUP_LIMIT 100
#define ROUNDS_MAX 10000           /* chunks of one kind and type per cycle */
#define TAKE_WINDOW 1000           /* journal rows looked at to fill one chunk */

struct writeback {
	struct hs_client *hc;       /* borrowed */
	struct cache *c;            /* borrowed */
	struct writeback_hooks hooks;
	int64_t delay_ms, index_delay_ms, call_timeout_ms;
	pthread_t thread;

	/* Lock order: wb->lock, then nothing (no cache or client call inside). */
	pthread_mutex_t lock;
	pthread_cond_t wake;        /* the batcher: new work, sync, stop */
	pthread_cond_t done;        /* sync waiters: the queue changed */
	struct journal *j;          /* protected by lock */
	int64_t last_queue_ms;      /* protected by lock; hs_now_ms of the last queued op */
	unsigned flush;             /* protected by lock; sync calls waiting (skip the quiet wait) */
	bool stop;                  /* protected by lock */
	bool busy;                  /* protected by lock; a cycle runs (hooks may be pending) */
	int64_t drain_deadline;     /* protected by lock; valid when stop */
	int64_t backoff_until;      /* protected by lock; hs_now_ms clock */
	unsigned backoff_n;         /* protected by lock */
};

static int64_t wall_ms(void)
{
	return g_get_real_time() / 1000;
}

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *m, int64_t t)
{
	struct timespec ts;

	if (t == INT64_MAX) {
		pthread_cond_wait(cv, m);
		return;
	}
	ts.tv_sec = t / 1000;
	ts.tv_nsec = (long)(t % 1000) * 1000000;
	pthread_cond_timedwait(cv, m, &ts);
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A property value as a string; unset (absent, null) is "". */
static const char *prop_val(json_object *props, const char *name)
{
	const char *s = str_of(props, name);

	return s ? s : "";
}

static json_object *obj_props(json_object *obj)
{
	json_object *p;

	return obj && json_object_object_get_ex(obj, "properties", &p) &&
	       json_object_is_type(p, json_type_object) ? p : NULL;
}

/* --- error lines and rejected files ---------------------------------------- */

struct wb_err {
	char reason[256];
	char property[128];
	struct hs_error e;
};

static void err_set(struct wb_err *w, const char *reason, const struct hs_error *e)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->reason, sizeof(w->reason), "%s", reason);
	if (e)
		w->e = *e;
}

/* The journal's last_error text. g_free. */
static char *err_json(const struct wb_err *w)
{
	json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "reason", json_object_new_string(w->reason));
	if (w->property[0])
		json_object_object_add(o, "property", json_object_new_string(w->property));
	if (w->e.category[0])
		json_object_object_add(o, "category", json_object_new_string(w->e.category));
	if (w->e.message[0])
		json_object_object_add(o, "message", json_object_new_string(w->e.message));
	if (w->e.correlation_id[0])
		json_object_object_add(o, "correlationId",
				       json_object_new_string(w->e.correlation_id));
	if (w->e.http_status)
		json_object_object_add(o, "status", json_object_new_int(w->e.http_status));
	s = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static json_object *str_or_null(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

/* One .hubfs/errors.log line through hooks->error. key is the create key or
 * NULL (then id names the record). extra (consumed) adds fields. */
static void report(struct writeback *wb, const char *op, int type, uint64_t id, const char *key,
		   const struct wb_err *w, json_object *extra)
{
	json_object *l;
	GDateTime *now;
	char *ts;

	if (key)
		log_warn("writeback: %s %s/_new/%s: %s%s%s", op, objtype_name(type), key, w->reason,
			 w->e.message[0] ? ": " : "", w->e.message);
	else
		log_warn("writeback: %s %s/%" PRIu64 "%s%s: %s%s%s", op, objtype_name(type), id,
			 w->property[0] ? " " : "", w->property, w->reason,
			 w->e.message[0] ? ": " : "", w->e.message);
	if (!wb->hooks.error) {
		json_object_put(extra);
		return;
	}
	now = g_date_time_new_now_utc();
	ts = g_date_time_format_iso8601(now);
	g_date_time_unref(now);
	l = json_object_new_object();
	json_object_object_add(l, "time", json_object_new_string(ts ? ts : ""));
	g_free(ts);
	json_object_object_add(l, "op", json_object_new_string(op));
	json_object_object_add(l, "type", json_object_new_string(objtype_name(type)));
	if (key) {
		json_object_object_add(l, "key", json_object_new_string(key));
	} else {
		char ids[24];

		snprintf(ids, sizeof(ids), "%" PRIu64, id);
		json_object_object_add(l, "id", json_object_new_string(ids));
	}
	json_object_object_add(l, "property", str_or_null(w->property));
	json_object_object_add(l, "reason", json_object_new_string(w->reason));
	json_object_object_add(l, "category", str_or_null(w->e.category));
	json_object_object_add(l, "message", str_or_null(w->e.message));
	json_object_object_add(l, "correlationId", str_or_null(w->e.correlation_id));
	if (extra) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(l, k, json_object_get(v));
		json_object_put(extra);
	}
	wb->hooks.error(wb->hooks.ud, l);
	json_object_put(l);
}

/* The local version of a record for .hubfs/rejected/: the server's object with
 * the local values over it, rendered like the record file when the schema is
 * known; else the bare {"id", "properties"} shape. */
static void reject(struct writeback *wb, int type, uint64_t id, const char *key,
		   json_object *server, json_object *local, const struct schema *s)
{
	json_object *o, *p;
	char *name, *text = NULL;
	size_t len = 0;

	if (!wb->hooks.rejected)
		return;
	if (server) {
		o = NULL;
		json_object_deep_copy(server, &o, NULL);
	} else {
		o = json_object_new_object();
		if (!key) {
			char ids[24];

			snprintf(ids, sizeof(ids), "%" PRIu64, id);
			json_object_object_add(o, "id", json_object_new_string(ids));
		}
	}
	if (!o)
		return;
	p = obj_props(o);
	if (!p) {
		p = json_object_new_object();
		json_object_object_add(o, "properties", p);
	}
	json_object_object_foreach(local, k, v)
		json_object_object_add(p, k, json_object_get(v));
	if (s && server) {
		uint64_t rid;
		int64_t mt;

		if (record_render(o, s, &text, &len, &rid, &mt) != 0)
			text = NULL;
	}
	if (!text) {
		const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE);

		text = g_strconcat(t, "\n", NULL);
		len = strlen(text);
	}
	if (key) {
		char *safe = g_strdelimit(g_strdup(key), "/", '_'), *hash = strchr(safe, '#');

		if (hash && hash != safe)
			*hash = '\0'; /* the fs makes keys unique with a "#n" suffix */

		name = g_strdup_printf("%s-_new-%s", objtype_name(type), safe);
		g_free(safe);
	} else {
		name = g_strdup_printf("%s-%" PRIu64 ".json", objtype_name(type), id);
	}
	wb->hooks.rejected(wb->hooks.ud, name, text, len);
	g_free(name);
	g_free(text);
	json_object_put(o);
}

/* --- batch calls -------------------------------------------------------------- */

enum outcome { OUT_NONE, OUT_OK, OUT_FAILED, OUT_IN_DOUBT };

/* One input of a batch call and what became of it. */
struct item {
	json_object *input;         /* owned */
	char match[64];             /* objectWriteTraceId / record id / "from:to" */
	char alt[256];              /* upsert: the lowercased email */
	enum outcome outcome;
	json_object *result;        /* the matching results[] object (owned ref), may be NULL */
	struct wb_err err;          /* when OUT_FAILED */
};

struct batch {
	int type, to_type;          /* to_type >= 0: associations v4 */
	const char *verb;
	bool create;                /* not idempotent: never re-sent unless known not applied */
};

static void item_clear(struct item *it)
{
	json_object_put(it->input);
	json_object_put(it->result);
	memset(it, 0, sizeof(*it));
}

static void call_init(struct writeback *wb, struct hs_call *call)
{
	int64_t dl = hs_now_ms() + wb->call_timeout_ms;

	memset(call, 0, sizeof(*call));
	call->prio = RL_PRIO_WRITE;
	pthread_mutex_lock(&wb->lock);
	if (wb->stop && wb->drain_deadline < dl)
		dl = wb->drain_deadline;
	pthread_mutex_unlock(&wb->lock);
	call->deadline_ms = dl;
}

static void backoff_reset(struct writeback *wb)
{
	pthread_mutex_lock(&wb->lock);
	wb->backoff_n = 0;
	wb->backoff_until = 0;
	pthread_mutex_unlock(&wb->lock);
}

static void backoff(struct writeback *wb, const char *what, const struct hs_call *call, int rc)
{
	int64_t d;

	pthread_mutex_lock(&wb->lock);
	d = (int64_t)BACKOFF_BASE_MS << MIN(wb->backoff_n, 10u);
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	d += g_random_int_range(0, (gint32)(d / 4 + 1));
	wb->backoff_n++;
	wb->backoff_until = hs_now_ms() + d;
	pthread_mutex_unlock(&wb->lock);
	log_warn("writeback: %s failed (%s%s%s); operations stay queued, next try in %" PRId64 " ms",
		 what, g_strerror(-rc), call && call->err.message[0] ? ": " : "",
		 call ? call->err.message : "", d);
}

/* The whole batch was refused for what it carries (400, 404, 409): bisect. */
static bool permanent(int rc)
{
	return rc == -EINVAL || rc == -EEXIST || rc == -ENOENT || rc == -E2BIG;
}

static void item_fail(struct item *it, const char *reason, const struct hs_error *e)
{
	it->outcome = OUT_FAILED;
	err_set(&it->err, reason, e);
}

/* The first string of context.<key> (or of errors[0].context.<key>). */
static const char *ctx_first(json_object *e, const char *key)
{
	json_object *ctx, *a, *errs;

	if (json_object_object_get_ex(e, "context", &ctx) && json_object_object_get_ex(ctx, key, &a) &&
	    json_object_is_type(a, json_type_array) && json_object_array_length(a) > 0)
		return json_object_get_string(json_object_array_get_idx(a, 0));
	if (json_object_object_get_ex(e, "errors", &errs) && json_object_is_type(errs, json_type_array) &&
	    json_object_array_length(errs) > 0)
		return ctx_first(json_object_array_get_idx(errs, 0), key);
	return NULL;
}

/* A batch errors[] entry as an hs_error. */
static void entry_error(json_object *e, long status, struct hs_error *out)
{
	const char *s;

	memset(out, 0, sizeof(*out));
	out->http_status = (int)status;
	if ((s = str_of(e, "category")))
		snprintf(out->category, sizeof(out->category), "%s", s);
	if ((s = str_of(e, "message")))
		snprintf(out->message, sizeof(out->message), "%s", s);
	if ((s = str_of(e, "correlationId")))
		snprintf(out->correlation_id, sizeof(out->correlation_id), "%s", s);
}

static void item_fail_entry(struct item *it, json_object *e, long status)
{
	struct hs_error he;
	const char *p = ctx_first(e, "propertyName");

	entry_error(e, status, &he);
	item_fail(it, "rejected by HubSpot", &he);
	if (p)
		snprintf(it->err.property, sizeof(it->err.property), "%s", p);
}

static struct item *find_item(struct item **v, size_t n, const char *key)
{
	for (size_t i = 0; key && *key && i < n; i++)
		if (strcmp(v[i]->match, key) == 0 || (v[i]->alt[0] && strcmp(v[i]->alt, key) == 0))
			return v[i];
	return NULL;
}

/* The item a results[] object answers. */
static struct item *result_item(struct item **v, size_t n, json_object *r)
{
	struct item *it = find_item(v, n, str_of(r, "objectWriteTraceId"));
	json_object *f, *t;

	if (!it)
		it = find_item(v, n, str_of(r, "id"));
	if (!it && str_of(obj_props(r), "email")) {
		char *low = g_utf8_strdown(str_of(obj_props(r), "email"), -1);

		it = find_item(v, n, low);
		g_free(low);
	}
	if (!it && json_object_object_get_ex(r, "from", &f) && json_object_object_get_ex(r, "to", &t)) {
		char k[64];

		snprintf(k, sizeof(k), "%s:%s", json_object_get_string(json_object_object_get(f, "id")),
			 json_object_get_string(json_object_object_get(t, "id")));
		it = find_item(v, n, k);
	}
	return it;
}

static int send_batch(struct writeback *wb, const struct batch *b, struct item **v, size_t n);

static int resend(struct writeback *wb, const struct batch *b, struct item **v, size_t n)
{
	int rc;

	if (n == 1)
		return send_batch(wb, b, v, 1);
	rc = send_batch(wb, b, v, n / 2);
	return rc ? rc : send_batch(wb, b, v + n / 2, n - n / 2);
}

/* Match a 2xx answer to the items. 207 errors fail the inputs they name; the
 * unnamed rest is sent again in smaller batches to find the bad ones, unless
 * it is a create whose fate is unknown (then it is in doubt). */
static int settle(struct writeback *wb, const struct batch *b, struct item **v, size_t n,
		  json_object *out, long status)
{
	json_object *results = NULL, *errors = NULL, *unnamed = NULL, *stray = NULL;
	size_t nres = 0, matched = 0, nrest = 0, nstray = 0;
	struct item **rest;
	int rc = 0;

	if (out && json_object_object_get_ex(out, "results", &results) &&
	    json_object_is_type(results, json_type_array))
		nres = json_object_array_length(results);
	for (size_t i = 0; i < nres; i++) {
		json_object *r = json_object_array_get_idx(results, i);
		struct item *it = result_item(v, n, r);

		if (it && it->outcome == OUT_NONE) {
			it->outcome = OUT_OK;
			it->result = json_object_get(r);
			matched++;
		} else if (it) {
			matched++; /* the inverse side of an association */
		} else {
			stray = r;
			nstray++;
		}
	}
	if (out && json_object_object_get_ex(out, "errors", &errors) &&
	    json_object_is_type(errors, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(errors); i++) {
			json_object *e = json_object_array_get_idx(errors, i), *ctx, *a;
			static const char *const keys[] = { "objectWriteTraceId", "ids", NULL };
			bool named = false;

			if (json_object_object_get_ex(e, "context", &ctx)) {
				for (const char *const *k = keys; *k; k++) {
					if (!json_object_object_get_ex(ctx, *k, &a) ||
					    !json_object_is_type(a, json_type_array))
						continue;
					for (size_t x = 0; x < json_object_array_length(a); x++) {
						struct item *it = find_item(v, n,
							json_object_get_string(json_object_array_get_idx(a, x)));

						if (it && it->outcome == OUT_NONE)
							item_fail_entry(it, e, status);
						named = named || it;
					}
				}
			}
			if (!named && !unnamed)
				unnamed = e;
		}
	}
	rest = g_new(struct item *, n);
	for (size_t i = 0; i < n; i++)
		if (v[i]->outcome == OUT_NONE)
			rest[nrest++] = v[i];
	if (nrest == 1 && nstray == 1 && !unnamed) {
		/* One input left, one result we could not name (no trace id
		 * echoed): they are each other's. */
		rest[0]->outcome = OUT_OK;
		rest[0]->result = json_object_get(stray);
		matched++;
		nrest = 0;
	}
	if (nrest == 0)
		goto out;
	if (b->create && (matched < nres || !unnamed)) {
		/* Created, maybe, but we cannot tell which record is whose. */
		for (size_t i = 0; i < nrest; i++)
			rest[i]->outcome = OUT_IN_DOUBT;
	} else if (unnamed) {
		if (nrest == 1)
			item_fail_entry(rest[0], unnamed, status);
		else if (nrest < n)
			rc = send_batch(wb, b, rest, nrest);
		else
			rc = resend(wb, b, rest, nrest);
	} else {
		for (size_t i = 0; i < nrest; i++)
			rest[i]->outcome = OUT_OK; /* 204s, and updates without a result */
	}
out:
	g_free(rest);
	return rc;
}

/* Send items (n <= 100) as one batch call, bisecting on whole-batch refusals.
 * Returns 0 when every item has an outcome, or -EAGAIN after a transient
 * failure (the items without an outcome were not applied). */
static int send_batch(struct writeback *wb, const struct batch *b, struct item **v, size_t n)
{
	json_object *inputs = json_object_new_array_ext((int)n), *out = NULL;
	const char *tn = objtype_name(b->type);
	struct hs_call call;
	char what[96];
	int rc;

	for (size_t i = 0; i < n; i++)
		json_object_array_add(inputs, json_object_get(v[i]->input));
	call_init(wb, &call);
	if (b->to_type >= 0)
		rc = hs_assoc_batch_write(wb->hc, &call, tn, objtype_name(b->to_type), b->verb, inputs,
					  &out);
	else
		rc = hs_batch_write(wb->hc, &call, tn, b->verb, inputs, &out);
	json_object_put(inputs);
	snprintf(what, sizeof(what), "%s%s%s batch/%s of %zu", tn, b->to_type >= 0 ? "->" : "",
		 b->to_type >= 0 ? objtype_name(b->to_type) : "", b->verb, n);
	if (rc == 0) {
		backoff_reset(wb);
		rc = settle(wb, b, v, n, out, call.http_status);
		json_object_put(out);
		return rc;
	}
	if (call.in_doubt) {
		log_warn("writeback: %s: answer lost (%s); the creates are in doubt", what,
			 call.err.message);
		for (size_t i = 0; i < n; i++)
			v[i]->outcome = OUT_IN_DOUBT;
		return 0;
	}
	if (permanent(rc)) {
		if (n == 1) {
			item_fail(v[0], "rejected by HubSpot", &call.err);
			return 0;
		}
		log_info("writeback: %s refused (%s); splitting it", what, call.err.message);
		return resend(wb, b, v, n);
	}
	backoff(wb, what, &call, rc);
	return -EAGAIN;
}

/* --- scheduling ------------------------------------------------------------- */

/* Lock held. May a chunk of this type be taken now? */
static bool take_ok(struct writeback *wb, int type)
{
	int64_t now = hs_now_ms();

	if (wb->stop && now >= wb->drain_deadline)
		return false;
	return wb->stop || wb->flush > 0 || now - wb->last_queue_ms >= wb->delay_ms ||
	       journal_count_pending(wb->j, type) >= BATCH_MAX;
}

static bool create_by_upsert(int type, json_object *props)
{
	return type == OT_CONTACTS && *prop_val(props, "email");
}

/* Lock held. Wall time an in-doubt create may be looked up (0 = now): the
 * indexing delay after the latest moment it can have been applied (when it
 * was marked in doubt). */
static int64_t lookup_due(struct writeback *wb, const struct jop *op)
{
	if (create_by_upsert(op->type, op->props))
		return 0;
	return op->updated_ms + wb->index_delay_ms + INDEX_MARGIN_MS;
}

/* Lock held. Is there work to start now? Else *wake = when to look again
 * (hs_now_ms clock, INT64_MAX: only when told). */
static bool work_ready(struct writeback *wb, int64_t now, int64_t *wake)
{
	GPtrArray *doubt = NULL;
	int64_t pend;
	bool urgent = wb->stop || wb->flush > 0;

	*wake = INT64_MAX;
	if (wb->backoff_until > now) {
		*wake = wb->backoff_until;
		return false;
	}
	pend = journal_count_pending(wb->j, -1);
	if (pend > 0) {
		if (urgent || now - wb->last_queue_ms >= wb->delay_ms)
			return true;
		for (int t = 0; t < OT_COUNT; t++)
			if (journal_count_pending(wb->j, t) >= BATCH_MAX)
				return true;
		*wake = wb->last_queue_ms + wb->delay_ms;
	}
	if (journal_list(wb->j, JS_MASK(JS_IN_DOUBT), JOP_CREATE, -1, 0, 0, &doubt) == 0) {
		int64_t w = wall_ms();

		for (guint i = 0; i < doubt->len; i++) {
			int64_t due = lookup_due(wb, doubt->pdata[i]);

			if (due <= w) {
				g_ptr_array_unref(doubt);
				return true;
			}
			*wake = MIN(*wake, now + (due - w));
		}
		g_ptr_array_unref(doubt);
	}
	return false;
}

/* Lock held. Mark rows in flight (creates: on disk before they are sent). */
static int mark_in_flight(struct writeback *wb, GPtrArray *rows)
{
	int64_t now = wall_ms();
	int rc = journal_begin(wb->j);

	for (guint i = 0; rc == 0 && i < rows->len; i++) {
		struct jop *op = rows->pdata[i];

		rc = journal_set_state(wb->j, op->seq, JS_IN_FLIGHT, NULL, now);
		op->state = JS_IN_FLIGHT;
		op->sent_ms = now;
	}
	if (rc == 0)
		return journal_commit(wb->j);
	journal_rollback(wb->j);
	log_err("writeback: cannot mark operations in flight: %s", g_strerror(-rc));
	return rc;
}

static void journal_done(struct writeback *wb, int rc)
{
	if (rc == 0) {
		rc = journal_commit(wb->j);
		if (rc == 0)
			return;
	}
	journal_rollback(wb->j);
	log_err("writeback: journal update failed (%s); the operations are replayed at the"
		" next mount", g_strerror(-rc));
}

/* --- updates -------------------------------------------------------------------- */

/* The pending rows of one record, merged (later values win, earliest base). */
struct urec {
	uint64_t id;
	char ids[24];
	GArray *seqs;               /* int64_t, ascending */
	json_object *props, *base;
	uint64_t epoch;
	json_object *cur;           /* the server's record just before sending (owned ref) */
	json_object *send;          /* what this batch sends */
	json_object *conflicts;     /* name -> {server, base, local} */
	json_object *remain, *remain_base; /* lifecycle: for the next batch */
	bool sent;
	bool transient;
	struct item it;
};

static void urec_free(struct urec *u)
{
	g_array_unref(u->seqs);
	json_object_put(u->props);
	json_object_put(u->base);
	json_object_put(u->cur);
	json_object_put(u->send);
	json_object_put(u->conflicts);
	json_object_put(u->remain);
	json_object_put(u->remain_base);
	item_clear(&u->it);
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
static bool stage_backward(int type, const char *name, const char *server, const char *want)
{
	int a, b;

	if ((type != OT_CONTACTS && type != OT_COMPANIES) || strcmp(name, "lifecyclestage") != 0)
		return false;
	if (!*server || !*want || strcmp(server, want) == 0)
		return false;
	a = stage_rank(server);
	b = stage_rank(want);
	return a < 0 || b < 0 || b < a;
}

/* Lock held. Take up to 100 records' pending updates of a type, in flight. */
static int take_updates(struct writeback *wb, int type, GPtrArray *out)
{
	GHashTable *by_id;
	GPtrArray *rows = NULL;
	int rc;

	if (!take_ok(wb, type))
		return 0;
	/* A bounded window: rows of a record past it go in a later chunk, after
	 * this one settled, so a record's edits still land in order. */
	rc = journal_list(wb->j, JS_MASK(JS_PENDING), JOP_UPDATE, type, 0, TAKE_WINDOW, &rows);
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
	}
	/* Mark every row taken (rows of records past the first 100 stay). */
	{
		GPtrArray *taken = g_ptr_array_new();

		for (guint i = 0; i < rows->len; i++) {
			struct jop *op = rows->pdata[i];

			if (g_hash_table_contains(by_id, &op->id))
				g_ptr_array_add(taken, op);
		}
		rc = mark_in_flight(wb, taken);
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
static void plan_record(int type, struct urec *u)
{
	json_object *sp = obj_props(u->cur);

	u->send = json_object_new_object();
	json_object_object_foreach(u->props, k, v) {
		const char *sv = prop_val(sp, k), *nv = json_object_get_string(v);
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
	json_object *o = NULL, *p, *rp = obj_props(u->it.result);
	const char *ua = str_of(u->it.result, "updatedAt");

	if (json_object_deep_copy(u->cur, &o, NULL) != 0 || !o)
		return NULL;
	p = obj_props(o);
	if (p && rp) {
		json_object_object_foreach(rp, k, v)
			json_object_object_add(p, k, json_object_get(v));
	}
	if (ua)
		json_object_object_add(o, "updatedAt", json_object_new_string(ua));
	return o;
}

/* Lock held. Rewrite the journal for one record once its batch settled. */
static int settle_record_journal(struct writeback *wb, int type, struct urec *u, json_object *landed)
{
	int64_t now = wall_ms(), first = g_array_index(u->seqs, int64_t, 0);
	int64_t last = g_array_index(u->seqs, int64_t, u->seqs->len - 1);
	int rc = 0;

	if (u->transient) {
		for (guint i = 0; rc == 0 && i < u->seqs->len; i++)
			rc = journal_set_state(wb->j, g_array_index(u->seqs, int64_t, i), JS_PENDING,
					       NULL, now);
		return rc;
	}
	for (guint i = 1; rc == 0 && i < u->seqs->len; i++)
		rc = journal_delete(wb->j, g_array_index(u->seqs, int64_t, i));
	if (rc)
		return rc;
	if (u->it.outcome == OUT_FAILED) {
		char *e = err_json(&u->it.err);

		rc = journal_set_props(wb->j, first, u->props, u->base, now);
		if (rc == 0)
			rc = journal_set_state(wb->j, first, JS_FAILED, e, now);
		g_free(e);
		/* Later edits built on the rejected values compare with the server's. */
		json_object_object_foreach(u->props, k, v) {
			if (rc == 0)
				rc = journal_rebase(wb->j, type, u->id, last, k, json_object_get_string(v),
						    u->cur ? prop_val(obj_props(u->cur), k) : NULL, now);
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
		struct jop op = { .kind = JOP_UPDATE, .type = type, .id = u->id, .to_type = -1,
				  .state = JS_CONFLICT, .epoch = u->epoch };
		struct wb_err w;

		op.props = json_object_new_object();
		op.base = json_object_new_object();
		json_object_object_foreach(u->conflicts, k, c) {
			json_object *bv;

			(void)c;
			json_object_object_add(op.props, k, json_object_get(json_object_object_get(u->props, k)));
			if (json_object_object_get_ex(u->base, k, &bv))
				json_object_object_add(op.base, k, json_object_get(bv));
		}
		err_set(&w, "conflict: changed on HubSpot since it was read", NULL);
		op.error = err_json(&w);
		rc = journal_insert(wb->j, &op, now, NULL);
		g_free(op.error);
		json_object_put(op.props);
		json_object_put(op.base);
	}
	/* Later edits of what was sent compare with what the server now holds. */
	if (rc == 0 && landed && u->sent) {
		json_object_object_foreach(u->send, k, v) {
			const char *now_v = prop_val(obj_props(landed), k);

			if (rc == 0 && strcmp(now_v, json_object_get_string(v)) != 0)
				rc = journal_rebase(wb->j, type, u->id, last, k, json_object_get_string(v),
						    now_v, now);
		}
	}
	return rc;
}

/* Store the server's version in the cache unless a newer local write exists;
 * without a full object, forget the record so the next read fetches it. */
static void land(struct writeback *wb, int type, uint64_t id, json_object *obj, uint64_t epoch)
{
	if (obj && cache_land(wb->c, type, obj, epoch) >= 0)
		return;
	if (cache_record_local_epoch(wb->c, type, id) <= epoch)
		cache_record_forget(wb->c, type, id);
}

/* After the journal: cache, error lines, rejected files. No lock held. */
static void settle_record_after(struct writeback *wb, int type, struct urec *u, json_object *landed,
				const struct schema *s)
{
	if (u->transient)
		return;
	if (u->it.outcome == OUT_FAILED) {
		report(wb, "update", type, u->id, NULL, &u->it.err, NULL);
		reject(wb, type, u->id, NULL, u->cur, u->props, s);
		land(wb, type, u->id, s ? u->cur : NULL, u->epoch);
		return;
	}
	if (u->conflicts) {
		json_object_object_foreach(u->conflicts, k, c) {
			struct wb_err w;
			json_object *extra = json_object_new_object();

			err_set(&w, "conflict: changed on HubSpot since it was read; not overwritten",
				NULL);
			snprintf(w.property, sizeof(w.property), "%s", k);
			json_object_object_foreach(c, ck, cv)
				json_object_object_add(extra, ck, json_object_get(cv));
			report(wb, "update", type, u->id, NULL, &w, extra);
		}
		reject(wb, type, u->id, NULL, u->cur, u->props, s);
	}
	/* Phase one of a lifecycle move keeps the local view until phase two. */
	if (!u->remain)
		land(wb, type, u->id, s ? landed : NULL, u->epoch);
}

static int process_updates(struct writeback *wb, int type, GPtrArray *recs)
{
	const struct schema *s = NULL;
	GPtrArray *names = NULL;
	const char **ids = g_new0(const char *, recs->len + 1);
	struct item **items = g_new0(struct item *, recs->len + 1);
	json_object *out = NULL, *results;
	struct urec **owners = g_new0(struct urec *, recs->len + 1);
	json_object **landed = g_new0(json_object *, recs->len + 1);
	struct hs_call call;
	size_t nitems = 0;
	int rc;

	if (cache_schema(wb->c, type, hs_now_ms() + wb->call_timeout_ms, &s) != 0)
		s = NULL; /* no full read: landed records are forgotten instead */
	names = read_props(s, recs);
	for (guint i = 0; i < recs->len; i++)
		ids[i] = ((struct urec *)recs->pdata[i])->ids;
	call_init(wb, &call);
	rc = hs_batch_read(wb->hc, &call, objtype_name(type), ids, recs->len,
			   (const char *const *)names->pdata, names->len, &out);
	if (rc != 0) {
		backoff(wb, "batch/read before update", &call, rc);
		for (guint i = 0; i < recs->len; i++)
			((struct urec *)recs->pdata[i])->transient = true;
		goto settle;
	}
	backoff_reset(wb);
	if (json_object_object_get_ex(out, "results", &results) &&
	    json_object_is_type(results, json_type_array)) {
		for (size_t r = 0; r < json_object_array_length(results); r++) {
			json_object *o = json_object_array_get_idx(results, r);
			const char *rid = str_of(o, "id");

			for (guint i = 0; rid && i < recs->len; i++) {
				struct urec *u = recs->pdata[i];

				if (!u->cur && strcmp(u->ids, rid) == 0)
					u->cur = json_object_get(o);
			}
		}
	}
	for (guint i = 0; i < recs->len; i++) {
		struct urec *u = recs->pdata[i];

		if (!u->cur) {
			struct hs_error e = { .http_status = 404 };

			snprintf(e.category, sizeof(e.category), "OBJECT_NOT_FOUND");
			snprintf(e.message, sizeof(e.message),
				 "the record does not exist on HubSpot (archived or merged?)");
			item_fail(&u->it, "record not found", &e);
			continue;
		}
		plan_record(type, u);
		if (json_object_object_length(u->send) == 0) {
			u->it.outcome = OUT_OK;
			continue;
		}
		u->it.input = json_object_new_object();
		json_object_object_add(u->it.input, "id", json_object_new_string(u->ids));
		json_object_object_add(u->it.input, "properties", json_object_get(u->send));
		json_object_object_add(u->it.input, "objectWriteTraceId", json_object_new_string(u->ids));
		snprintf(u->it.match, sizeof(u->it.match), "%s", u->ids);
		u->sent = true;
		owners[nitems] = u;
		items[nitems++] = &u->it;
	}
	if (nitems) {
		struct batch b = { .type = type, .to_type = -1, .verb = "update" };

		rc = send_batch(wb, &b, items, nitems);
		for (size_t i = 0; i < nitems; i++) {
			if (items[i]->outcome == OUT_NONE || items[i]->outcome == OUT_IN_DOUBT)
				owners[i]->transient = true;
		}
	}
	for (guint i = 0; i < recs->len; i++) {
		struct urec *u = recs->pdata[i];

		if (!u->transient && u->it.outcome == OUT_OK && u->cur)
			landed[i] = landed_object(u);
	}

settle:
	pthread_mutex_lock(&wb->lock);
	{
		int jrc = journal_begin(wb->j);

		for (guint i = 0; jrc == 0 && i < recs->len; i++)
			jrc = settle_record_journal(wb, type, recs->pdata[i], landed[i]);
		journal_done(wb, jrc);
	}
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	for (guint i = 0; i < recs->len; i++)
		settle_record_after(wb, type, recs->pdata[i], landed[i], s);
	for (guint i = 0; i < recs->len; i++)
		json_object_put(landed[i]);
	g_free(landed);
	g_free(owners);
	g_free(items);
	g_free(ids);
	if (names)
		g_ptr_array_unref(names);
	json_object_put(out);
	return rc ? -EAGAIN : 0;
}

/* 1 if a chunk was sent, 0 if nothing to do, -EAGAIN on a transient failure. */
static int do_updates(struct writeback *wb, int type)
{
	GPtrArray *recs = g_ptr_array_new_with_free_func((GDestroyNotify)urec_free);
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = take_updates(wb, type, recs);
	pthread_mutex_unlock(&wb->lock);
	if (rc == 0 && recs->len > 0) {
		rc = process_updates(wb, type, recs) == 0 ? 1 : -EAGAIN;
	} else if (rc < 0) {
		backoff(wb, "journal", NULL, rc);
		rc = -EAGAIN;
	}
	g_ptr_array_unref(recs);
	return rc;
}

/* --- creates ---------------------------------------------------------------------- */

/* Lock held. Take up to 100 pending creates of a type, in flight (on disk)
 * before anything is sent. A second create of an email already taken waits
 * for the next batch (where the upsert finds the first). */
static int take_creates(struct writeback *wb, int type, GPtrArray *out)
{
	GPtrArray *rows = NULL;
	GHashTable *emails;
	int rc;

	if (!take_ok(wb, type))
		return 0;
	rc = journal_list(wb->j, JS_MASK(JS_PENDING), JOP_CREATE, type, 0, TAKE_WINDOW, &rows);
	if (rc)
		return rc;
	emails = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; i < rows->len && out->len < BATCH_MAX; i++) {
		struct jop *op = rows->pdata[i];

		if (create_by_upsert(type, op->props)) {
			char *low = g_utf8_strdown(prop_val(op->props, "email"), -1);

			if (!g_hash_table_add(emails, low))
				continue;
		}
		g_ptr_array_add(out, op);
		rows->pdata[i] = NULL;
	}
	g_hash_table_destroy(emails);
	g_ptr_array_unref(rows);
	return out->len ? mark_in_flight(wb, out) : 0;
}

/* "Contact already exists. Existing ID: N" -> N, else 0. */
static uint64_t existing_id(const struct item *it)
{
	const char *p = strstr(it->err.e.message, "Existing ID: ");
	uint64_t id = 0;

	if (!p || strcmp(it->err.e.category, "CONFLICT") != 0)
		return 0;
	p += strlen("Existing ID: ");
	if (record_parse_id(p, strspn(p, "0123456789"), &id) != 0)
		return 0;
	return id;
}

struct cdone {                  /* what to tell after a create settled */
	struct jop *op;
	struct item *it;
	char id[24];                /* created (or found) record id, "" if none */
	bool land;                  /* it->result is a full new record */
};

static void create_items(struct jop *op, struct item *it, bool upsert)
{
	snprintf(it->match, sizeof(it->match), "hubfs-%" PRId64, op->seq);
	it->input = json_object_new_object();
	if (upsert) {
		char *low = g_utf8_strdown(prop_val(op->props, "email"), -1);

		snprintf(it->alt, sizeof(it->alt), "%s", low);
		g_free(low);
		json_object_object_add(it->input, "id",
				       json_object_new_string(prop_val(op->props, "email")));
		json_object_object_add(it->input, "idProperty", json_object_new_string("email"));
	}
	json_object_object_add(it->input, "properties", json_object_get(op->props));
	json_object_object_add(it->input, "objectWriteTraceId", json_object_new_string(it->match));
}

/* Lock held. A pending create of the same key becomes an update of the record. */
static int creates_to_update(struct writeback *wb, int type, const char *key, uint64_t id, int64_t now)
{
	GPtrArray *rows = NULL;
	int rc = journal_list(wb->j, JS_MASK(JS_PENDING), JOP_CREATE, type, 0, 0, &rows);

	for (guint i = 0; rc == 0 && i < rows->len; i++) {
		struct jop *op = rows->pdata[i];
		json_object *nob = json_object_new_object();

		if (g_strcmp0(op->key, key) == 0) {
			rc = journal_add_update(wb->j, type, id, op->props, nob, 0, now, NULL);
			if (rc == 0)
				rc = journal_delete(wb->j, op->seq);
		}
		json_object_put(nob);
	}
	if (rows)
		g_ptr_array_unref(rows);
	return rc;
}

static int settle_creates(struct writeback *wb, int type, struct cdone *d, size_t n)
{
	int64_t now = wall_ms();
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_begin(wb->j);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct jop *op = d[i].op;
		struct item *it = d[i].it;
		uint64_t xid;

		switch (it->outcome) {
		case OUT_OK: {
			const char *id = str_of(it->result, "id");
			json_object *nv;

			if (!id) { /* 2xx without the record: we cannot say which it is */
				rc = journal_set_state(wb->j, op->seq, JS_IN_DOUBT, NULL, now);
				break;
			}
			snprintf(d[i].id, sizeof(d[i].id), "%s", id);
			d[i].land = !(json_object_object_get_ex(it->result, "new", &nv) &&
				      !json_object_get_boolean(nv));
			rc = journal_delete(wb->j, op->seq);
			if (rc == 0 && record_parse_id(id, strlen(id), &xid) == 0)
				rc = creates_to_update(wb, type, op->key, xid, now);
			break;
		}
		case OUT_FAILED:
			xid = type == OT_CONTACTS ? existing_id(it) : 0;
			if (xid) {
				/* 409: the contact exists; the create becomes its update. */
				json_object *nob = json_object_new_object();

				snprintf(d[i].id, sizeof(d[i].id), "%" PRIu64, xid);
				log_info("writeback: %s/_new/%s: %s; updating it instead",
					 objtype_name(type), op->key, it->err.e.message);
				rc = journal_add_update(wb->j, type, xid, op->props, nob, 0, now, NULL);
				json_object_put(nob);
				if (rc == 0)
					rc = journal_delete(wb->j, op->seq);
			} else {
				char *e = err_json(&it->err);

				rc = journal_set_state(wb->j, op->seq, JS_FAILED, e, now);
				g_free(e);
			}
			break;
		case OUT_IN_DOUBT:
			/* updated_ms: the latest the server can have applied it. */
			rc = journal_set_state(wb->j, op->seq, JS_IN_DOUBT, NULL, now);
			break;
		default:
			rc = journal_set_state(wb->j, op->seq, JS_PENDING, NULL, now);
			break;
		}
	}
	journal_done(wb, rc);
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);

	for (size_t i = 0; i < n; i++) {
		struct jop *op = d[i].op;
		struct item *it = d[i].it;

		if (d[i].id[0]) {
			uint64_t xid = 0;

			record_parse_id(d[i].id, strlen(d[i].id), &xid);
			if (it->outcome == OUT_OK && xid)
				land(wb, type, xid, d[i].land ? it->result : NULL, cache_epoch(wb->c));
			if (wb->hooks.created)
				wb->hooks.created(wb->hooks.ud, type, op->key, d[i].id);
			log_info("writeback: created %s/_new/%s as %s", objtype_name(type), op->key,
				 d[i].id);
		} else if (it->outcome == OUT_FAILED) {
			report(wb, "create", type, 0, op->key, &it->err, NULL);
			reject(wb, type, 0, op->key, NULL, op->props, NULL);
		}
	}
	return 0;
}

static int do_creates(struct writeback *wb, int type)
{
	GPtrArray *ops = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	struct item *its = NULL, **up = NULL, **cr = NULL;
	struct cdone *d = NULL;
	size_t nup = 0, ncr = 0;
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = take_creates(wb, type, ops);
	pthread_mutex_unlock(&wb->lock);
	if (rc < 0)
		backoff(wb, "journal", NULL, rc);
	if (rc < 0 || ops->len == 0)
		goto out;
	its = g_new0(struct item, ops->len);
	up = g_new0(struct item *, ops->len);
	cr = g_new0(struct item *, ops->len);
	d = g_new0(struct cdone, ops->len);
	for (guint i = 0; i < ops->len; i++) {
		struct jop *op = ops->pdata[i];
		bool upsert = create_by_upsert(type, op->props);

		create_items(op, &its[i], upsert);
		if (upsert)
			up[nup++] = &its[i];
		else
			cr[ncr++] = &its[i];
		d[i].op = op;
		d[i].it = &its[i];
	}
	rc = 0;
	if (nup) {
		struct batch b = { .type = type, .to_type = -1, .verb = "upsert" };

		rc = send_batch(wb, &b, up, nup);
	}
	if (ncr && rc == 0) {
		struct batch b = { .type = type, .to_type = -1, .verb = "create", .create = true };

		rc = send_batch(wb, &b, cr, ncr);
	}
	settle_creates(wb, type, d, ops->len);
	rc = rc ? -EAGAIN : 1;
out:
	for (guint i = 0; its && i < ops->len; i++)
		item_clear(&its[i]);
	g_free(its);
	g_free(up);
	g_free(cr);
	g_free(d);
	g_ptr_array_unref(ops);
	return rc < 0 ? -EAGAIN : rc;
}

/* --- in-doubt creates ---------------------------------------------------------- */

static const char *const *identity_props(int type)
{
	static const char *const contacts[] = { "email", "firstname", "lastname", NULL };
	static const char *const companies[] = { "name", "domain", NULL };
	static const char *const deals[] = { "dealname", "pipeline", "dealstage", NULL };
	static const char *const tickets[] = { "subject", "hs_pipeline", "hs_pipeline_stage", NULL };

	switch (type) {
	case OT_CONTACTS: return contacts;
	case OT_COMPANIES: return companies;
	case OT_DEALS: return deals;
	default: return tickets;
	}
}

/* The names an in-doubt create is looked up by: its identifying string
 * properties, else up to three of its properties. Borrowed from op. */
static GPtrArray *lookup_names(const struct jop *op)
{
	GPtrArray *names = g_ptr_array_new();

	for (const char *const *p = identity_props(op->type); *p; p++)
		if (*prop_val(op->props, *p))
			g_ptr_array_add(names, (gpointer)*p);
	if (names->len == 0) {
		json_object_object_foreach(op->props, k, v) {
			if (names->len < 3 && v && *json_object_get_string(v) &&
			    strcmp(k, "createdate") != 0)
				g_ptr_array_add(names, k);
		}
	}
	return names;
}

/* One filter group finding op: EQ on names, created no earlier than it was
 * first sent (less clock skew). */
static json_object *lookup_group(const struct jop *op, GPtrArray *names, json_object *props)
{
	json_object *g = json_object_new_object(), *filters = json_object_new_array();

	for (guint i = 0; i < names->len; i++) {
		json_object *f = json_object_new_object();

		json_object_object_add(f, "propertyName", json_object_new_string(names->pdata[i]));
		json_object_object_add(f, "operator", json_object_new_string("EQ"));
		json_object_object_add(f, "value",
				       json_object_new_string(prop_val(op->props, names->pdata[i])));
		json_object_array_add(filters, f);
		json_object_array_add(props, json_object_new_string(names->pdata[i]));
	}
	if (!*prop_val(op->props, "createdate")) {
		json_object *f = json_object_new_object();
		char since[32];

		snprintf(since, sizeof(since), "%" PRId64,
			 (op->sent_ms > 0 ? op->sent_ms : op->created_ms) - CLOCK_SKEW_MS);
		json_object_object_add(f, "propertyName", json_object_new_string("createdate"));
		json_object_object_add(f, "operator", json_object_new_string("GTE"));
		json_object_object_add(f, "value", json_object_new_string(since));
		json_object_array_add(filters, f);
	}
	json_object_object_add(g, "filters", filters);
	return g;
}

/* Does a search result carry op's values of names? EQ is case-insensitive;
 * so is this check. */
static bool lookup_match(json_object *o, const struct jop *op, GPtrArray *names)
{
	bool same = str_of(o, "id") != NULL && names->len > 0;

	for (guint i = 0; same && i < names->len; i++) {
		char *a = g_utf8_casefold(prop_val(obj_props(o), names->pdata[i]), -1);
		char *b = g_utf8_casefold(prop_val(op->props, names->pdata[i]), -1);

		same = strcmp(a, b) == 0;
		g_free(a);
		g_free(b);
	}
	return same;
}

/* Look up to LOOKUP_GROUPS in-doubt creates of one type up in one search (one
 * filter group each, OR'ed). ops[0..*n) are looked up; *n is lowered to what
 * fit the filter caps. ids[i] gets the record id of ops[i], "" if not found,
 * or "?" if unsure (more results than one page). 0, or -EAGAIN. */
static int lookup_creates(struct writeback *wb, struct jop **ops, size_t *n, char (*ids)[32])
{
	json_object *req = json_object_new_object(), *groups = json_object_new_array();
	json_object *props = json_object_new_array(), *sorts = json_object_new_array();
	json_object *sort = json_object_new_object(), *out = NULL, *results = NULL, *paging;
	GPtrArray **names = g_new0(GPtrArray *, *n);
	GHashTable *taken = g_hash_table_new(g_str_hash, g_str_equal);
	size_t k = 0, nfilters = 0;
	struct hs_call call;
	int rc;

	for (; k < *n && k < LOOKUP_GROUPS; k++) {
		size_t nf;

		names[k] = lookup_names(ops[k]);
		nf = names[k]->len + 1;
		if (k > 0 && nfilters + nf > LOOKUP_FILTERS) {
			g_ptr_array_free(names[k], TRUE);
			names[k] = NULL;
			break;
		}
		nfilters += nf;
		json_object_array_add(groups, lookup_group(ops[k], names[k], props));
	}
	*n = k;
	json_object_object_add(req, "filterGroups", groups);
	json_object_array_add(props, json_object_new_string("createdate"));
	json_object_object_add(req, "properties", props);
	json_object_object_add(sort, "propertyName", json_object_new_string("createdate"));
	json_object_object_add(sort, "direction", json_object_new_string("ASCENDING"));
	json_object_array_add(sorts, sort);
	json_object_object_add(req, "sorts", sorts);
	json_object_object_add(req, "limit", json_object_new_int(LOOKUP_LIMIT));
	call_init(wb, &call);
	rc = hs_search(wb->hc, &call, objtype_name(ops[0]->type), req, &out);
	json_object_put(req);
	if (rc != 0) {
		backoff(wb, "search for in-doubt creates", &call, rc);
		rc = -EAGAIN;
		goto out;
	}
	if (!json_object_object_get_ex(out, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		results = NULL;
	/* Oldest first; a record answers one create only (two creates of the
	 * same name, one landed: the other is sent again). */
	for (size_t i = 0; i < k; i++) {
		ids[i][0] = '\0';
		for (size_t r = 0; results && !ids[i][0] && r < json_object_array_length(results); r++) {
			json_object *o = json_object_array_get_idx(results, r);

			if (lookup_match(o, ops[i], names[i]) &&
			    !g_hash_table_contains(taken, str_of(o, "id"))) {
				snprintf(ids[i], sizeof(ids[i]), "%s", str_of(o, "id"));
				g_hash_table_add(taken, (gpointer)str_of(o, "id"));
			}
		}
		if (!ids[i][0] && json_object_object_get_ex(out, "paging", &paging))
			snprintf(ids[i], sizeof(ids[i]), "?");
	}
out:
	for (size_t i = 0; i < k; i++)
		if (names[i])
			g_ptr_array_free(names[i], TRUE);
	g_free(names);
	g_hash_table_destroy(taken);
	json_object_put(out);
	return rc;
}

/* Settle in-doubt creates that are due: contacts with an email are simply
 * upserted again; others are searched for. Returns how many were settled,
 * or -EAGAIN. */
static int do_in_doubt(struct writeback *wb, int type)
{
	GPtrArray *rows = NULL, *due = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	int64_t w = wall_ms();
	int rc = 0, n = 0;

	pthread_mutex_lock(&wb->lock);
	if (journal_list(wb->j, JS_MASK(JS_IN_DOUBT), JOP_CREATE, type, 0, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++) {
			struct jop *op = rows->pdata[i];

			if (create_by_upsert(type, op->props)) {
				if (journal_set_state(wb->j, op->seq, JS_PENDING, NULL, w) == 0)
					n++;
			} else if (lookup_due(wb, op) <= w && due->len < IN_DOUBT_PER_PASS) {
				g_ptr_array_add(due, op);
				rows->pdata[i] = NULL;
			}
		}
		g_ptr_array_unref(rows);
	}
	pthread_mutex_unlock(&wb->lock);

	for (guint i = 0; i < due->len;) {
		struct jop **ops = (struct jop **)due->pdata + i;
		char ids[LOOKUP_GROUPS][32];
		size_t m = due->len - i;

		rc = lookup_creates(wb, ops, &m, ids);
		if (rc)
			break;
		pthread_mutex_lock(&wb->lock);
		rc = journal_begin(wb->j);
		for (size_t x = 0; rc == 0 && x < m; x++) {
			uint64_t xid;

			if (ids[x][0] == '?') /* unsure: looked up again later */
				rc = journal_set_state(wb->j, ops[x]->seq, JS_IN_DOUBT, NULL, wall_ms());
			else if (!ids[x][0])
				rc = journal_set_state(wb->j, ops[x]->seq, JS_PENDING, NULL, wall_ms());
			else if ((rc = journal_delete(wb->j, ops[x]->seq)) == 0 &&
				 record_parse_id(ids[x], strlen(ids[x]), &xid) == 0)
				rc = creates_to_update(wb, type, ops[x]->key, xid, w);
		}
		journal_done(wb, rc);
		pthread_cond_broadcast(&wb->done);
		pthread_mutex_unlock(&wb->lock);
		rc = 0;
		for (size_t x = 0; x < m; x++) {
			const char *key = ops[x]->key;

			if (ids[x][0] == '?') {
				log_warn("writeback: in-doubt create %s/_new/%s: too many look-alikes to"
					 " tell; looking again later", objtype_name(type), key);
			} else if (ids[x][0]) {
				log_notice("writeback: in-doubt create %s/_new/%s had landed as %s",
					   objtype_name(type), key, ids[x]);
				if (wb->hooks.created)
					wb->hooks.created(wb->hooks.ud, type, key, ids[x]);
			} else {
				log_notice("writeback: in-doubt create %s/_new/%s not found; sending it"
					   " again", objtype_name(type), key);
			}
		}
		n += (int)m;
		i += (guint)m;
	}
	g_ptr_array_unref(due);
	return rc ? rc : n;
}

/* --- archives and associations ------------------------------------------------ */

/* Lock held. Take up to 100 pending rows of a kind (assoc: with to_type). */
static int take_simple(struct writeback *wb, enum jop_kind kind, int type, int to_type,
		       GPtrArray *out)
{
	GPtrArray *rows = NULL;
	int rc;

	if (!take_ok(wb, type))
		return 0;
	rc = journal_list(wb->j, JS_MASK(JS_PENDING), kind, type, 0, to_type >= 0 ? 0 : BATCH_MAX,
			  &rows);
	if (rc)
		return rc;
	for (guint i = 0; i < rows->len && out->len < BATCH_MAX; i++) {
		struct jop *op = rows->pdata[i];

		if (to_type >= 0 && op->to_type != to_type)
			continue;
		g_ptr_array_add(out, op);
		rows->pdata[i] = NULL;
	}
	g_ptr_array_unref(rows);
	return out->len ? mark_in_flight(wb, out) : 0;
}

static int do_simple(struct writeback *wb, enum jop_kind kind, int type, int to_type)
{
	GPtrArray *ops = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	struct item *its = NULL, **v = NULL;
	struct batch b = { .type = type, .to_type = to_type };
	int64_t now;
	int rc;

	b.verb = kind == JOP_ARCHIVE ? "archive" : kind == JOP_ASSOC_ADD ? "associate/default" : "archive";
	pthread_mutex_lock(&wb->lock);
	rc = take_simple(wb, kind, type, to_type, ops);
	pthread_mutex_unlock(&wb->lock);
	if (rc < 0)
		backoff(wb, "journal", NULL, rc);
	if (rc < 0 || ops->len == 0)
		goto out;
	its = g_new0(struct item, ops->len);
	v = g_new0(struct item *, ops->len);
	for (guint i = 0; i < ops->len; i++) {
		struct jop *op = ops->pdata[i];
		json_object *in = json_object_new_object(), *f, *t;

		v[i] = &its[i];
		if (kind == JOP_ARCHIVE) {
			snprintf(its[i].match, sizeof(its[i].match), "%" PRIu64, op->id);
			json_object_object_add(in, "id", json_object_new_string(its[i].match));
		} else {
			char a[24], z[24];

			snprintf(a, sizeof(a), "%" PRIu64, op->id);
			snprintf(z, sizeof(z), "%" PRIu64, op->to_id);
			snprintf(its[i].match, sizeof(its[i].match), "%s:%s", a, z);
			f = json_object_new_object();
			json_object_object_add(f, "id", json_object_new_string(a));
			t = json_object_new_object();
			json_object_object_add(t, "id", json_object_new_string(z));
			json_object_object_add(in, "from", f);
			if (kind == JOP_ASSOC_DEL) {
				json_object *arr = json_object_new_array();

				json_object_array_add(arr, t);
				t = arr;
			}
			json_object_object_add(in, "to", t);
		}
		its[i].input = in;
	}
	rc = send_batch(wb, &b, v, ops->len);
	now = wall_ms();
	pthread_mutex_lock(&wb->lock);
	{
		int jrc = journal_begin(wb->j);

		for (guint i = 0; jrc == 0 && i < ops->len; i++) {
			struct jop *op = ops->pdata[i];
			char *e;

			switch (its[i].outcome) {
			case OUT_OK:
				jrc = journal_delete(wb->j, op->seq);
				break;
			case OUT_FAILED:
				e = err_json(&its[i].err);
				jrc = journal_set_state(wb->j, op->seq, JS_FAILED, e, now);
				g_free(e);
				break;
			default:
				jrc = journal_set_state(wb->j, op->seq, JS_PENDING, NULL, now);
				break;
			}
		}
		journal_done(wb, jrc);
	}
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	for (guint i = 0; i < ops->len; i++) {
		struct jop *op = ops->pdata[i];

		if (its[i].outcome == OUT_OK && kind == JOP_ARCHIVE)
			cache_record_forget(wb->c, type, op->id);
		else if (its[i].outcome == OUT_FAILED) {
			report(wb, jop_kind_name(kind), type, op->id, NULL, &its[i].err, NULL);
			/* The fs showed the change at once; undo it in the cache. */
			if (kind != JOP_ARCHIVE)
				cache_assoc_note(wb->c, type, op->id, op->to_type, op->to_id,
						 kind == JOP_ASSOC_DEL);
		}
	}
	rc = rc ? -EAGAIN : 1;
out:
	for (guint i = 0; its && i < ops->len; i++)
		item_clear(&its[i]);
	g_free(its);
	g_free(v);
	g_ptr_array_unref(ops);
	return rc < 0 ? -EAGAIN : rc;
}

/* --- the batcher thread ------------------------------------------------------------ */

/* Run call until it finds nothing (0) or fails (-EAGAIN: end the cycle). */
#define DRAIN(call) do { int r_ = 1; \
	for (int n_ = 0; r_ > 0 && n_ < ROUNDS_MAX; n_++) { r_ = (call); done += r_ > 0; } \
	if (r_ < 0) return -EAGAIN; } while (0)

/* One pass over everything that may be sent now. Returns the number of
 * chunks sent or looked up, or -EAGAIN after a transient failure. */
static int cycle(struct writeback *wb)
{
	int done = 0;

	for (int t = 0; t < OT_COUNT; t++) {
		int r = do_in_doubt(wb, t);

		if (r < 0)
			return r;
		done += r;
	}
	for (int t = 0; t < OT_COUNT; t++)
		DRAIN(do_creates(wb, t));
	for (int t = 0; t < OT_COUNT; t++)
		DRAIN(do_updates(wb, t));
	for (int t = 0; t < OT_COUNT; t++)
		DRAIN(do_simple(wb, JOP_ARCHIVE, t, -1));
	for (int t = 0; t < OT_COUNT; t++)
		for (int u = 0; u < OT_COUNT; u++)
			DRAIN(do_simple(wb, JOP_ASSOC_ADD, t, u));
	for (int t = 0; t < OT_COUNT; t++)
		for (int u = 0; u < OT_COUNT; u++)
			DRAIN(do_simple(wb, JOP_ASSOC_DEL, t, u));
	return done;
}

static void *batcher(void *arg)
{
	struct writeback *wb = arg;

	pthread_mutex_lock(&wb->lock);
	for (;;) {
		int64_t now = hs_now_ms(), wake;
		bool ready = work_ready(wb, now, &wake);

		if (wb->stop && (now >= wb->drain_deadline ||
				 (!ready && (wake == INT64_MAX || wake >= wb->drain_deadline))))
			break;
		if (ready) {
			int done;

			wb->busy = true;
			pthread_mutex_unlock(&wb->lock);
			done = cycle(wb);
			pthread_mutex_lock(&wb->lock);
			wb->busy = false;
			/* Work that could not be taken (a row this hubfs cannot
			 * send): do not spin on it. */
			if (done == 0 && wb->backoff_until <= hs_now_ms())
				wb->backoff_until = hs_now_ms() + MAX(wb->delay_ms, BACKOFF_BASE_MS);
			pthread_cond_broadcast(&wb->done);
			continue;
		}
		if (wb->stop)
			wake = MIN(wake, wb->drain_deadline);
		wait_until(&wb->wake, &wb->lock, wake);
	}
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	return NULL;
}

/* --- public API -------------------------------------------------------------------- */

int writeback_new(struct hs_client *hc, struct cache *c, const struct writeback_opts *o,
		  const struct writeback_hooks *hooks, struct writeback **out)
{
	struct writeback *wb;
	pthread_condattr_t ca;
	int64_t counts[JS_STATE_COUNT];
	int rc;

	*out = NULL;
	if (!hc || !c || !o || !o->state_dir)
		return -EINVAL;
	wb = g_new0(struct writeback, 1);
	wb->hc = hc;
	wb->c = c;
	if (hooks)
		wb->hooks = *hooks;
	wb->delay_ms = o->delay_ms > 0 ? o->delay_ms : DEFAULT_DELAY_MS;
	wb->index_delay_ms = o->index_delay_ms > 0 ? o->index_delay_ms : DEFAULT_INDEX_DELAY_MS;
	wb->call_timeout_ms = o->call_timeout_ms > 0 ? o->call_timeout_ms : DEFAULT_CALL_TIMEOUT_MS;
	rc = journal_open(o->state_dir, wall_ms(), &wb->j);
	if (rc) {
		g_free(wb);
		return rc;
	}
	if (journal_counts(wb->j, counts) == 0 &&
	    counts[JS_PENDING] + counts[JS_FAILED] + counts[JS_CONFLICT] + counts[JS_IN_DOUBT] > 0)
		log_warn("writeback: the journal holds operations from an earlier mount: %" PRId64
			 " pending, %" PRId64 " in doubt (looked up before any re-send), %" PRId64
			 " failed, %" PRId64 " in conflict", counts[JS_PENDING], counts[JS_IN_DOUBT],
			 counts[JS_FAILED], counts[JS_CONFLICT]);
	pthread_mutex_init(&wb->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wb->wake, &ca);
	pthread_cond_init(&wb->done, &ca);
	pthread_condattr_destroy(&ca);
	/* Left-over work is sent at once, before new edits. */
	wb->last_queue_ms = hs_now_ms() - wb->delay_ms;
	rc = pthread_create(&wb->thread, NULL, batcher, wb);
	if (rc) {
		journal_close(wb->j);
		pthread_cond_destroy(&wb->wake);
		pthread_cond_destroy(&wb->done);
		pthread_mutex_destroy(&wb->lock);
		g_free(wb);
		return -rc;
	}
	*out = wb;
	return 0;
}

void writeback_free(struct writeback *wb, int64_t drain_ms)
{
	int64_t counts[JS_STATE_COUNT];

	if (!wb)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	wb->drain_deadline = hs_now_ms() + (drain_ms > 0 ? drain_ms : 0);
	pthread_cond_broadcast(&wb->wake);
	pthread_mutex_unlock(&wb->lock);
	pthread_join(wb->thread, NULL);
	if (journal_counts(wb->j, counts) == 0) {
		int64_t left = counts[JS_PENDING] + counts[JS_IN_FLIGHT] + counts[JS_IN_DOUBT];

		if (left || counts[JS_FAILED] || counts[JS_CONFLICT])
			log_err("writeback: unmounting with %" PRId64 " operations not sent (%" PRId64
				" in doubt) and %" PRId64 " failed, %" PRId64 " in conflict; they stay"
				" in the journal for the next mount", left, counts[JS_IN_DOUBT],
				counts[JS_FAILED], counts[JS_CONFLICT]);
	}
	journal_close(wb->j);
	pthread_cond_destroy(&wb->wake);
	pthread_cond_destroy(&wb->done);
	pthread_mutex_destroy(&wb->lock);
	g_free(wb);
}

static bool type_ok(int type)
{
	return type >= 0 && type < OT_COUNT;
}

/* Lock held, after a row was written: the batcher looks again. */
static void queued(struct writeback *wb)
{
	wb->last_queue_ms = hs_now_ms();
	pthread_cond_signal(&wb->wake);
}

int writeback_update(struct writeback *wb, int type, uint64_t id, json_object *changes,
		     json_object *bases, uint64_t epoch)
{
	int rc;

	if (!type_ok(type) || id == 0 || !json_object_is_type(changes, json_type_object))
		return -EINVAL;
	if (json_object_object_length(changes) == 0)
		return 0;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_update(wb->j, type, id, changes, bases, epoch, wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc == -EINVAL ? rc : rc ? -EIO : 0;
}

int writeback_create(struct writeback *wb, int type, const char *key, json_object *props)
{
	int rc;

	if (!type_ok(type) || !key || !*key || !json_object_is_type(props, json_type_object))
		return -EINVAL;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_create(wb->j, type, key, props, wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc == -EINVAL ? rc : rc ? -EIO : 0;
}

int writeback_archive(struct writeback *wb, int type, uint64_t id)
{
	int rc;

	if (!type_ok(type) || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_archive(wb->j, type, id, wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc ? -EIO : 0;
}

int writeback_assoc(struct writeback *wb, bool add, int from, uint64_t id, int to, uint64_t to_id)
{
	int rc;

	if (!type_ok(from) || !type_ok(to) || id == 0 || to_id == 0)
		return -EINVAL;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_assoc(wb->j, add, from, id, to, to_id, wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc ? -EIO : 0;
}

/* One .hubfs/queue line. */
static void queue_line(GString *g, const struct jop *op)
{
	json_object *e;

	g_string_append_printf(g, "%s %s/", jop_state_name(op->state), objtype_name(op->type));
	if (op->kind == JOP_CREATE)
		g_string_append_printf(g, "_new/%s", op->key);
	else
		g_string_append_printf(g, "%" PRIu64, op->id);
	switch (op->kind) {
	case JOP_UPDATE:
	case JOP_CREATE: { /* braces: the foreach macro declares variables (clang) */
		json_object_object_foreach(op->props, k, v) {
			g_string_append_printf(g, " %s=%s", k,
					       json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
		}
		break;
	}
	case JOP_ARCHIVE:
		g_string_append(g, " archive");
		break;
	case JOP_ASSOC_ADD:
	case JOP_ASSOC_DEL:
		g_string_append_printf(g, " %c%s/%" PRIu64, op->kind == JOP_ASSOC_ADD ? '+' : '-',
				       objtype_name(op->to_type), op->to_id);
		break;
	default:
		break;
	}
	e = op->error ? json_tokener_parse(op->error) : NULL;
	if (e) {
		const char *cat = str_of(e, "category"), *msg = str_of(e, "message");
		const char *reason = str_of(e, "reason"), *cid = str_of(e, "correlationId");

		g_string_append(g, " [");
		if (cat)
			g_string_append_printf(g, "%s: %s", cat, msg ? msg : "");
		else
			g_string_append(g, reason ? reason : "error");
		if (cid)
			g_string_append_printf(g, " (correlationId %s)", cid);
		g_string_append_c(g, ']');
		json_object_put(e);
	}
	g_string_append_c(g, '\n');
}

static char *lines(struct writeback *wb, unsigned mask, size_t *len)
{
	GString *g = g_string_new(NULL);
	GPtrArray *rows = NULL;

	if (journal_list(wb->j, mask, -1, -1, 0, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++)
			queue_line(g, rows->pdata[i]);
		g_ptr_array_unref(rows);
	}
	if (len)
		*len = g->len;
	return g_string_free(g, FALSE);
}

int writeback_sync(struct writeback *wb, int64_t deadline, char **report_out)
{
	int64_t counts[JS_STATE_COUNT];
	int rc = 0;

	if (report_out)
		*report_out = NULL;
	pthread_mutex_lock(&wb->lock);
	wb->flush++;
	wb->backoff_until = 0; /* a sync tries now */
	pthread_cond_signal(&wb->wake);
	for (;;) {
		rc = journal_counts(wb->j, counts);
		if (rc)
			break;
		/* Not busy: the hooks of what landed have run too. */
		if (counts[JS_PENDING] + counts[JS_IN_FLIGHT] + counts[JS_IN_DOUBT] == 0 && !wb->busy)
			break;
		if (wb->stop && hs_now_ms() >= wb->drain_deadline) {
			rc = -EAGAIN;
			break;
		}
		if (deadline > 0 && hs_now_ms() >= deadline) {
			rc = -EAGAIN;
			break;
		}
		wait_until(&wb->done, &wb->lock, deadline > 0 ? deadline : INT64_MAX);
	}
	wb->flush--;
	if (rc == 0 && counts[JS_FAILED] + counts[JS_CONFLICT] > 0) {
		rc = -EIO;
		if (report_out)
			*report_out = lines(wb, JS_MASK(JS_FAILED) | JS_MASK(JS_CONFLICT), NULL);
	}
	pthread_mutex_unlock(&wb->lock);
	return rc == 0 || rc == -EIO || rc == -EAGAIN ? rc : -EIO;
}

int writeback_retry(struct writeback *wb)
{
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_retry(wb->j, wall_ms());
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc ? -EIO : 0;
}

int writeback_forget(struct writeback *wb)
{
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_forget(wb->j);
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
	return rc ? -EIO : 0;
}

const char *writeback_record_state(struct writeback *wb, int type, uint64_t id)
{
	GPtrArray *rows = NULL;
	const char *st = "clean";
	bool conflict = false, failed = false, pending = false;

	if (!type_ok(type) || id == 0)
		return st;
	pthread_mutex_lock(&wb->lock);
	if (journal_list(wb->j, JS_ANY, -1, type, id, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++) {
			const struct jop *op = rows->pdata[i];

			if (op->kind != JOP_UPDATE && op->kind != JOP_ARCHIVE)
				continue;
			conflict |= op->state == JS_CONFLICT;
			failed |= op->state == JS_FAILED;
			pending |= op->state == JS_PENDING || op->state == JS_IN_FLIGHT;
		}
		g_ptr_array_unref(rows);
	}
	pthread_mutex_unlock(&wb->lock);
	if (conflict)
		st = "conflict";
	else if (failed)
		st = "failed";
	else if (pending)
		st = "pending";
	return st;
}

json_object *writeback_pending_changes(struct writeback *wb, int type, uint64_t id)
{
	GPtrArray *rows = NULL;
	json_object *o = NULL;

	if (!type_ok(type) || id == 0)
		return NULL;
	pthread_mutex_lock(&wb->lock);
	if (journal_list(wb->j, JS_MASK(JS_PENDING) | JS_MASK(JS_IN_FLIGHT), JOP_UPDATE, type, id, 0,
			 &rows) == 0) {
		for (guint i = 0; i < rows->len; i++) {
			const struct jop *op = rows->pdata[i];

			if (!o)
				o = json_object_new_object();
			json_object_object_foreach(op->props, k, v)
				json_object_object_add(o, k, json_object_get(v));
		}
		g_ptr_array_unref(rows);
	}
	pthread_mutex_unlock(&wb->lock);
	return o;
}

char *writeback_queue_text(struct writeback *wb, size_t *len)
{
	char *s;

	pthread_mutex_lock(&wb->lock);
	s = lines(wb, JS_ANY, len);
	pthread_mutex_unlock(&wb->lock);
	return s;
}

void writeback_stats(struct writeback *wb, json_object *obj)
{
	int64_t counts[JS_STATE_COUNT];
	json_object *q = json_object_new_object();

	pthread_mutex_lock(&wb->lock);
	if (journal_counts(wb->j, counts) != 0)
		memset(counts, 0, sizeof(counts));
	pthread_mutex_unlock(&wb->lock);
	for (int s = 0; s < JS_STATE_COUNT; s++)
		json_object_object_add(q, jop_state_name(s), json_object_new_int64(counts[s]));
	json_object_object_add(obj, "queue", q);
}
