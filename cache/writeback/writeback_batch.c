/* writeback_batch.c - batch calls and what became of each input: the call
 * with its deadline and backoff, the bisection of whole-batch refusals, the
 * matching of results and 207 errors to inputs; the error lines and rejected
 * files that tell the user; and the archives and association writes, which
 * need nothing around a batch call. See writeback_int.h.
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
#include "cache/model/schema.h"
#include "cache/writeback/journal.h"
#include "client/log.h"

/* --- JSON helpers ----------------------------------------------------------- */

/* A property value as a string; unset (absent, null) is "". */
const char *wb_prop_val(json_object *props, const char *name)
{
	const char *s = json_util_field(props, name);

	return s ? s : "";
}

json_object *wb_obj_props(json_object *obj)
{
	json_object *p;

	return obj && json_object_object_get_ex(obj, "properties", &p) &&
	       json_object_is_type(p, json_type_object) ? p : NULL;
}

/* --- error lines, rejected files, landing ----------------------------------- */

void wb_err_set(struct wb_err *w, const char *reason, const struct hs_error *e)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->reason, sizeof(w->reason), "%s", reason);
	if (e)
		w->e = *e;
}

int wb_set_failed(struct writeback *wb, int64_t seq, const struct wb_err *w, int64_t now)
{
	char *e = wb_err_json(w);
	int rc = journal_set_state(wb->j, seq, JS_FAILED, e, now);

	g_free(e);
	return rc;
}

int wb_settle_row(struct writeback *wb, int64_t seq, const struct item *it, int64_t now)
{
	switch (it->outcome) {
	case OUT_OK:
		return journal_delete(wb->j, seq);
	case OUT_FAILED:
		return wb_set_failed(wb, seq, &it->err, now);
	case OUT_IN_DOUBT:
		/* updated_ms: the latest the server can have applied it. */
		return journal_set_state(wb->j, seq, JS_IN_DOUBT, NULL, now);
	default:
		return journal_set_state(wb->j, seq, JS_PENDING, NULL, now);
	}
}

/* The journal's last_error text. g_free. */
char *wb_err_json(const struct wb_err *w)
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
void wb_report(struct writeback *wb, const char *op, const struct objtype *type, uint64_t id,
	       const char *key, const struct wb_err *w, json_object *extra)
{
	char ts[RECORD_TIME_LEN];
	json_object *l;

	if (key)
		log_warn("writeback: %s %s/_new/%s: %s%s%s", op, type->name, key, w->reason,
			 w->e.message[0] ? ": " : "", w->e.message);
	else
		log_warn("writeback: %s %s/%" PRIu64 "%s%s: %s%s%s", op, type->name, id,
			 w->property[0] ? " " : "", w->property, w->reason,
			 w->e.message[0] ? ": " : "", w->e.message);
	if (!wb->hooks.error) {
		json_object_put(extra);
		return;
	}
	l = json_object_new_object();
	json_object_object_add(l, "time", json_object_new_string(record_format_time(hs_wall_ms(), ts)));
	json_object_object_add(l, "op", json_object_new_string(op));
	json_object_object_add(l, "type", json_object_new_string(type->name));
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
void wb_reject(struct writeback *wb, const struct objtype *type, uint64_t id, const char *key,
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
	p = wb_obj_props(o);
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
	if (!text)
		text = json_util_pretty(o, &len);
	if (key) {
		char *safe = g_strdelimit(g_strdup(key), "/", '_'), *hash = strchr(safe, '#');

		if (hash && hash != safe)
			*hash = '\0'; /* the fs makes keys unique with a "#n" suffix */

		name = g_strdup_printf("%s-_new-%s", type->name, safe);
		g_free(safe);
	} else {
		name = g_strdup_printf("%s-%" PRIu64 ".json", type->name, id);
	}
	wb->hooks.rejected(wb->hooks.ud, name, text, len);
	g_free(name);
	g_free(text);
	json_object_put(o);
}

/* Store the server's version in the cache unless a newer local write exists;
 * without a full object, forget the record so the next read fetches it. */
void wb_land(struct writeback *wb, const struct objtype *type, uint64_t id, json_object *obj,
	     uint64_t epoch)
{
	if (obj && cache_land(wb->c, type, obj, epoch) >= 0)
		return;
	if (cache_record_local_epoch(wb->c, type, id) <= epoch)
		cache_record_forget(wb->c, type, id);
}

/* --- batch calls -------------------------------------------------------------- */

void wb_item_clear(struct item *it)
{
	json_object_put(it->input);
	json_object_put(it->result);
	memset(it, 0, sizeof(*it));
}

void wb_call_init(struct writeback *wb, struct hs_call *call)
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

void wb_backoff_reset(struct writeback *wb)
{
	pthread_mutex_lock(&wb->lock);
	wb->backoff_n = 0;
	wb->backoff_until = 0;
	pthread_mutex_unlock(&wb->lock);
}

/* Start or lengthen the batcher's wait after a failure; returns it in ms. */
static int64_t backoff_step(struct writeback *wb)
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
	return d;
}

void wb_backoff(struct writeback *wb, const char *what, const struct hs_call *call, int rc)
{
	int64_t d = backoff_step(wb);

	log_warn("writeback: %s failed (%s%s%s); operations stay queued, next try in %" PRId64 " ms",
		 what, g_strerror(-rc), call && call->err.message[0] ? ": " : "",
		 call ? call->err.message : "", d);
}

void wb_doubt_settled(struct writeback *wb, bool landed, unsigned n)
{
	pthread_mutex_lock(&wb->lock);
	if (landed)
		wb->doubt_landed += n;
	else
		wb->doubt_not_landed += n;
	pthread_mutex_unlock(&wb->lock);
}

/* The whole batch was refused for what it carries (400, 404, 409): bisect. */
static bool permanent(int rc)
{
	return rc == -EINVAL || rc == -EEXIST || rc == -ENOENT || rc == -E2BIG;
}

void wb_item_fail(struct item *it, const char *reason, const struct hs_error *e)
{
	it->outcome = OUT_FAILED;
	wb_err_set(&it->err, reason, e);
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
	if ((s = json_util_field(e, "category")))
		snprintf(out->category, sizeof(out->category), "%s", s);
	if ((s = json_util_field(e, "message")))
		snprintf(out->message, sizeof(out->message), "%s", s);
	if ((s = json_util_field(e, "correlationId")))
		snprintf(out->correlation_id, sizeof(out->correlation_id), "%s", s);
}

static void item_fail_entry(struct item *it, json_object *e, long status)
{
	struct hs_error he;
	const char *p = ctx_first(e, "propertyName");

	entry_error(e, status, &he);
	wb_item_fail(it, "rejected by HubSpot", &he);
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
	struct item *it = find_item(v, n, json_util_field(r, "objectWriteTraceId"));
	json_object *f, *t;

	if (!it)
		it = find_item(v, n, json_util_field(r, "id"));
	if (!it && json_util_field(wb_obj_props(r), "email")) {
		char *low = g_utf8_strdown(json_util_field(wb_obj_props(r), "email"), -1);

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

static int resend(struct writeback *wb, const struct batch *b, struct item **v, size_t n)
{
	int rc;

	if (n == 1)
		return wb_send_batch(wb, b, v, 1);
	rc = wb_send_batch(wb, b, v, n / 2);
	return rc ? rc : wb_send_batch(wb, b, v + n / 2, n - n / 2);
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
			rc = wb_send_batch(wb, b, rest, nrest);
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
int wb_send_batch(struct writeback *wb, const struct batch *b, struct item **v, size_t n)
{
	json_object *inputs = json_object_new_array_ext((int)n), *out = NULL;
	struct hs_call call;
	char what[160];
	int rc;

	for (size_t i = 0; i < n; i++)
		json_object_array_add(inputs, json_object_get(v[i]->input));
	wb_call_init(wb, &call);
	if (b->to_type)
		rc = hs_assoc_batch_write(wb->hc, &call, b->type->path, b->to_type->path, b->verb,
					  inputs, &out);
	else
		rc = hs_batch_write(wb->hc, &call, b->type->path, b->verb, inputs, &out);
	json_object_put(inputs);
	snprintf(what, sizeof(what), "%s%s%s batch/%s of %zu", b->type->name, b->to_type ? "->" : "",
		 b->to_type ? b->to_type->name : "", b->verb, n);
	if (rc == 0) {
		wb_backoff_reset(wb);
		rc = settle(wb, b, v, n, out, call.http_status);
		json_object_put(out);
		return rc;
	}
	if (call.in_doubt) {
		int64_t d = backoff_step(wb);

		pthread_mutex_lock(&wb->lock);
		wb->doubt_calls++;
		pthread_mutex_unlock(&wb->lock);
		log_warn("writeback: %s: answer lost (%s); its operations are in doubt and are looked"
			 " up (next try in %" PRId64 " ms) before anything is sent again", what,
			 call.err.message, d);
		for (size_t i = 0; i < n; i++)
			v[i]->outcome = OUT_IN_DOUBT;
		return -EAGAIN;
	}
	if (permanent(rc)) {
		if (n == 1) {
			wb_item_fail(v[0], "rejected by HubSpot", &call.err);
			return 0;
		}
		log_info("writeback: %s refused (%s); splitting it", what, call.err.message);
		return resend(wb, b, v, n);
	}
	wb_backoff(wb, what, &call, rc);
	return -EAGAIN;
}

/* --- archives and associations ------------------------------------------------ */

/* Lock held. Take up to 100 pending rows of a kind (assoc: with to_type). */
static int take_simple(struct writeback *wb, enum jop_kind kind, const struct objtype *type,
		       const struct objtype *to_type, GPtrArray *out)
{
	GPtrArray *rows = NULL;
	int rc;

	if (!wb_take_ok(wb, type))
		return 0;
	GHashTable *removals = NULL;

	rc = journal_list(wb->j, JS_MASK(JS_PENDING), kind, type->id, 0, to_type ? 0 : BATCH_MAX,
			  &rows);
	if (rc)
		return rc;
	for (guint i = 0; i < rows->len && out->len < BATCH_MAX; i++) {
		struct jop *op = rows->pdata[i];

		if (to_type && strcmp(op->to_type, to_type->id) != 0)
			continue;
		/* A label added after a removal of its pair goes after it. */
		if (kind == JOP_ASSOC_ADD && wb_label_of(op, NULL, NULL, NULL)) {
			if (!removals)
				removals = wb_removals(wb, type, to_type);
			if (wb_label_waits(removals, op))
				continue;
		}
		g_ptr_array_add(out, op);
		rows->pdata[i] = NULL;
	}
	if (removals)
		g_hash_table_destroy(removals);
	g_ptr_array_unref(rows);
	return out->len ? wb_mark_in_flight(wb, out) : 0;
}

/* The batch input of an archive ({id}) or an association write ({from, to};
 * a removal's to is a list), and what its result is matched by. */
static void simple_input(enum jop_kind kind, const struct jop *op, struct item *it)
{
	json_object *in = json_object_new_object(), *f, *t;
	char a[24], z[24];

	if (kind == JOP_ARCHIVE) {
		snprintf(it->match, sizeof(it->match), "%" PRIu64, op->id);
		json_object_object_add(in, "id", json_object_new_string(it->match));
		it->input = in;
		return;
	}
	snprintf(a, sizeof(a), "%" PRIu64, op->id);
	snprintf(z, sizeof(z), "%" PRIu64, op->to_id);
	snprintf(it->match, sizeof(it->match), "%s:%s", a, z);
	f = json_object_new_object();
	json_object_object_add(f, "id", json_object_new_string(a));
	t = json_object_new_object();
	json_object_object_add(t, "id", json_object_new_string(z));
	json_object_object_add(in, "from", f);
	if (wb_label_types(op)) {
		json_object_object_add(in, "to", t);
		json_object_object_add(in, "types", json_object_get(wb_label_types(op)));
		it->input = in;
		return;
	}
	if (kind == JOP_ASSOC_DEL) {
		json_object *arr = json_object_new_array();

		json_object_array_add(arr, t);
		t = arr;
	}
	json_object_object_add(in, "to", t);
	it->input = in;
}

/* Write each operation's outcome to the journal. Takes the lock. */
static void simple_settle_journal(struct writeback *wb, GPtrArray *ops, struct item *its)
{
	int64_t now = hs_wall_ms();
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_begin(wb->j);
	for (guint i = 0; rc == 0 && i < ops->len; i++)
		rc = wb_settle_row(wb, ((struct jop *)ops->pdata[i])->seq, &its[i], now);
	wb_journal_done(wb, rc);
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);
}

/* HubSpot's only cascading delete: archiving a quote deletes its line items. */
#define CASCADE_CHILD_ID "0-8"

void wb_cascade(struct writeback *wb, const struct objtype *type, uint64_t id, enum cascade what)
{
	const struct objtype *child = objtypes_by_id(wb->types, CASCADE_CHILD_ID);
	uint64_t *ids = NULL;
	size_t n = 0;

	if (!(type->flags & OTF_CASCADE_DELETE) || !child ||
	    !objtypes_associable(wb->types, type, child) ||
	    cache_assoc_list(wb->c, type, id, child, hs_now_ms() + wb->call_timeout_ms, &ids,
			     &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		switch (what) {
		case CASCADE_QUEUED:
			cache_listing_note(wb->c, child, ids[i], false);
			break;
		case CASCADE_LANDED:
			cache_record_forget(wb->c, child, ids[i]);
			cache_archive_landed(wb->c, child, ids[i]);
			break;
		case CASCADE_REFUSED:
			cache_listing_note(wb->c, child, ids[i], true);
			break;
		}
	}
	if (n && what == CASCADE_LANDED)
		log_info("writeback: %s/%" PRIu64 " archived with its %zu %s", type->name, id, n,
			 child->name);
	g_free(ids);
}

/* After the journal: the cache, and errors.log for what HubSpot refused. The
 * fs showed the change at once; a refusal undoes it in the cache: a refused
 * archive shows the record again (it was hidden as archived by this mount,
 * and would stay hidden until remount), a refused link write is reverted. */
static void simple_after(struct writeback *wb, enum jop_kind kind, const struct objtype *type,
			 const struct objtype *to_type, GPtrArray *ops, struct item *its)
{
	for (guint i = 0; i < ops->len; i++) {
		struct jop *op = ops->pdata[i];

		if (its[i].outcome == OUT_OK && kind == JOP_ARCHIVE) {
			cache_record_forget(wb->c, type, op->id);
			cache_archive_landed(wb->c, type, op->id);
			wb_cascade(wb, type, op->id, CASCADE_LANDED);
			if (type->flags & OTF_HARD_DELETE)
				log_info("writeback: %s/%" PRIu64 " deleted for good (HubSpot keeps "
					 "no restorable copy of %s)", type->name, op->id, type->name);
			cache_team_archived(wb->c, type, op->id);
		} else if (its[i].outcome == OUT_OK) {
			cache_team_assoc_landed(wb->c, type, op->id, to_type, op->to_id,
						kind == JOP_ASSOC_ADD);
		} else if (its[i].outcome == OUT_FAILED) {
			wb_report(wb, jop_kind_name(kind), type, op->id, NULL, &its[i].err, NULL);
			int tid;
			const char *cat, *label;

			if (kind == JOP_ARCHIVE) {
				cache_listing_note(wb->c, type, op->id, true);
				wb_cascade(wb, type, op->id, CASCADE_REFUSED);
			} else if (wb_label_of(op, &tid, &cat, &label))
				cache_assoc_note_label(wb->c, type, op->id, to_type, op->to_id, cat, tid,
						       label, kind == JOP_ASSOC_DEL);
			else
				cache_assoc_note(wb->c, type, op->id, to_type, op->to_id,
						 kind == JOP_ASSOC_DEL);
		}
	}
}

/* Send ops (rows of one kind and pair of types, all label rows or none) as
 * one batch call and settle them. 0, or -EAGAIN. */
static int simple_send(struct writeback *wb, enum jop_kind kind, const struct objtype *type,
		       const struct objtype *to_type, GPtrArray *ops)
{
	struct item *its = NULL, **v = NULL;
	struct batch b = { .type = type, .to_type = to_type };
	bool labels = ops->len && wb_label_of(ops->pdata[0], NULL, NULL, NULL);
	int rc;

	if (labels)
		b.verb = kind == JOP_ASSOC_ADD ? "create" : "labels/archive";
	else
		b.verb = kind == JOP_ASSOC_ADD ? "associate/default" : "archive";
	its = g_new0(struct item, ops->len);
	v = g_new0(struct item *, ops->len);
	for (guint i = 0; i < ops->len; i++) {
		v[i] = &its[i];
		simple_input(kind, ops->pdata[i], &its[i]);
	}
	rc = wb_send_batch(wb, &b, v, ops->len);
	simple_settle_journal(wb, ops, its);
	simple_after(wb, kind, type, to_type, ops, its);
	for (guint i = 0; i < ops->len; i++)
		wb_item_clear(&its[i]);
	g_free(its);
	g_free(v);
	return rc ? -EAGAIN : 0;
}

int wb_do_simple(struct writeback *wb, enum jop_kind kind, const struct objtype *type,
		 const struct objtype *to_type)
{
	GPtrArray *ops = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	GPtrArray *part[2];
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = take_simple(wb, kind, type, to_type, ops);
	pthread_mutex_unlock(&wb->lock);
	if (rc < 0)
		wb_backoff(wb, "journal", NULL, rc);
	if (rc < 0 || ops->len == 0) {
		g_ptr_array_unref(ops);
		return rc < 0 ? -EAGAIN : 0;
	}
	/* Default writes and label writes go to different endpoints. */
	for (int k = 0; k < 2; k++)
		part[k] = g_ptr_array_new();
	for (guint i = 0; i < ops->len; i++)
		g_ptr_array_add(part[wb_label_of(ops->pdata[i], NULL, NULL, NULL)], ops->pdata[i]);
	for (int k = 0; k < 2; k++) {
		if (rc == 0 && part[k]->len)
			rc = simple_send(wb, kind, type, to_type, part[k]);
		else if (rc && part[k]->len) {
			/* not sent: pending again */
			pthread_mutex_lock(&wb->lock);
			for (guint i = 0; i < part[k]->len; i++)
				journal_set_state(wb->j, ((struct jop *)part[k]->pdata[i])->seq,
						  JS_PENDING, NULL, hs_wall_ms());
			pthread_cond_broadcast(&wb->done);
			pthread_mutex_unlock(&wb->lock);
		}
		g_ptr_array_unref(part[k]);
	}
	g_ptr_array_unref(ops);
	return rc < 0 ? -EAGAIN : 1;
}
