/* writeback.c - queueing edits into the journal, and the batcher thread that
 * sends them. See writeback.h for the contract.
 *
 * One cycle of the batcher, once delay_ms passed without a new operation (or a
 * type has 100 pending, or sync/unmount asks):
 *   1. in-doubt writes (sent, answer lost): creates are looked up by search
 *      once index_delay_ms passed since the lost answer, contacts with an
 *      email by reading them by email, archives and association writes by
 *      reading the records or their associations; found = landed, not found
 *      = pending (sent again). In-doubt updates are taken with the pending
 *      ones in step 3, whose read before sending shows what landed;
 *   2. creates: contacts (a type that upserts on email) with an email by
 *      batch/upsert on email, the rest by
 *      batch/create with objectWriteTraceId; rows are in_flight on disk first;
 *   3. updates: one batch/read per 100 records (the shown properties plus the
 *      changed ones), the conflict and lifecycle checks, one batch/update;
 *   4. archives; 5. association adds (batch/associate/default), then removes.
 * Each step works on the types (and pairs of types) that have rows, from one
 * grouped journal query, in registry order; rows of a type the mount does not
 * show wait in the journal.
 * A batch answered 400/409 as a whole is bisected; a 207 fails only the inputs
 * it names. A transient failure (429 past the call deadline, a connection
 * that was never made) leaves the operations pending and backs the batcher
 * off; a write that may have reached the server (5xx, timeout, connection
 * lost after sending) is never sent again by the client: its operations go
 * in doubt (step 1). Nothing is dropped, nothing is applied twice.
 *
 * Landing updates: batch/update answers are merged over the batch/read taken
 * just before (which asked for every shown property), so the cache gets a full
 * record without another call, whatever subset of properties the update answer
 * carries. Without a schema the record is forgotten (refetched on next read).
 *
 * Files: this one has the object, the batcher thread, scheduling and the
 * queueing calls; a batch call and its outcomes are in writeback_batch.c, steps
 * 1-2 in writeback_create.c and writeback_doubt.c, step 3 in
 * writeback_update.c, steps 4-5 in writeback_batch.c. writeback_int.h holds
 * what they share.
 *
 * Locking: wb->lock guards the journal and the scheduling fields. It is never
 * held across HTTP, cache calls or hooks (the hooks may call back into us).
 */
#include "cache/writeback/writeback.h"
#include "cache/writeback/writeback_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cache/model/json_util.h"
#include "cache/writeback/journal.h"
#include "client/log.h"

#define DEFAULT_DELAY_MS 2000
#define DEFAULT_INDEX_DELAY_MS 10000
#define DEFAULT_CALL_TIMEOUT_MS 30000
#define ROUNDS_MAX 10000           /* chunks of one kind and type per cycle */

/* Wait on cv until woken or t (hs_now_ms clock; INT64_MAX: no time limit). */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *m, int64_t t)
{
	struct timespec ts;

	if (t == INT64_MAX) {
		pthread_cond_wait(cv, m);
		return;
	}
	ts = hs_timespec_ms(t);
	pthread_cond_timedwait(cv, m, &ts);
}

/* --- scheduling ------------------------------------------------------------- */

const struct objtype *wb_type_of(struct writeback *wb, const struct jop *op)
{
	return objtypes_by_id(wb->types, op->type);
}

const struct objtype *wb_to_type_of(struct writeback *wb, const struct jop *op)
{
	return objtypes_by_id(wb->types, op->to_type);
}

/* Lock held. May a chunk of this type be taken now? */
bool wb_take_ok(struct writeback *wb, const struct objtype *type)
{
	int64_t now = hs_now_ms();

	if (wb->stop && now >= wb->drain_deadline)
		return false;
	return wb->stop || wb->flush > 0 || now - wb->last_queue_ms >= wb->delay_ms ||
	       journal_count_pending(wb->j, type->id) >= BATCH_MAX;
}

/* Whether this mount can send a group's rows: it shows their types. */
static bool group_known(struct writeback *wb, const struct jgroup *g)
{
	bool assoc = g->kind == JOP_ASSOC_ADD || g->kind == JOP_ASSOC_DEL;

	return objtypes_by_id(wb->types, g->type) &&
	       (!assoc || objtypes_by_id(wb->types, g->to_type));
}

/* Lock held. Pending rows this mount can send: 0, 1 (some), or 2 (a type
 * has a full batch waiting). */
static int pending_level(struct writeback *wb)
{
	int64_t per_type[OBJTYPES_MAX] = { 0 };
	GArray *groups = NULL;
	int level = 0;

	if (journal_groups(wb->j, JS_MASK(JS_PENDING), &groups) != 0)
		return 0;
	for (guint i = 0; i < groups->len; i++) {
		const struct jgroup *g = &g_array_index(groups, struct jgroup, i);
		const struct objtype *t = objtypes_by_id(wb->types, g->type);

		if (!group_known(wb, g))
			continue;
		level = MAX(level, 1);
		per_type[t->idx] += g->count;
		if (per_type[t->idx] >= BATCH_MAX)
			level = 2;
	}
	g_array_unref(groups);
	return level;
}

/* Lock held. Is there work to start now? Else *wake = when to look again
 * (hs_now_ms clock, INT64_MAX: only when told). */
static bool work_ready(struct writeback *wb, int64_t now, int64_t *wake)
{
	GPtrArray *doubt = NULL;
	int pend;
	bool urgent = wb->stop || wb->flush > 0;

	*wake = INT64_MAX;
	if (wb->backoff_until > now) {
		*wake = wb->backoff_until;
		return false;
	}
	pend = pending_level(wb);
	if (pend > 0) {
		if (urgent || pend > 1 || now - wb->last_queue_ms >= wb->delay_ms)
			return true;
		*wake = wb->last_queue_ms + wb->delay_ms;
	}
	if (journal_list(wb->j, JS_MASK(JS_IN_DOUBT), -1, NULL, 0, 0, &doubt) == 0) {
		int64_t w = hs_wall_ms();

		for (guint i = 0; i < doubt->len; i++) {
			const struct jop *op = doubt->pdata[i];
			int64_t due;

			if (!wb_type_of(wb, op))
				continue;
			due = wb_lookup_due(wb, op);
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
int wb_mark_in_flight(struct writeback *wb, GPtrArray *rows)
{
	int64_t now = hs_wall_ms();
	int rc = journal_begin(wb->j);

	if (rows->len) { /* for status.json: what is in flight */
		wb->batch_kind = ((struct jop *)rows->pdata[0])->kind;
		g_strlcpy(wb->batch_type, ((struct jop *)rows->pdata[0])->type, sizeof(wb->batch_type));
	}
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

void wb_journal_done(struct writeback *wb, int rc)
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

/* --- the batcher thread ------------------------------------------------------------ */

/* What a cycle works on: the (kind, type, to_type) groups of the rows that
 * are pending or in doubt and that this mount can send, by kind, then type
 * and to_type in registry order. */
struct work_item {
	enum jop_kind kind;
	const struct objtype *type, *to_type;
};

/* Creates first (a later edit of a new record is an update of it), then
 * updates, archives, association adds, removes. */
static int kind_rank(enum jop_kind k)
{
	switch (k) {
	case JOP_CREATE: return 0;
	case JOP_UPDATE: return 1;
	case JOP_ARCHIVE: return 2;
	case JOP_ASSOC_ADD: return 3;
	default: return 4;
	}
}

static gint work_order(gconstpointer a, gconstpointer b)
{
	const struct work_item *x = a, *y = b;
	unsigned xt = x->to_type ? x->to_type->idx : 0, yt = y->to_type ? y->to_type->idx : 0;

	if (x->kind != y->kind)
		return kind_rank(x->kind) < kind_rank(y->kind) ? -1 : 1;
	if (x->type->idx != y->type->idx)
		return x->type->idx < y->type->idx ? -1 : 1;
	return xt < yt ? -1 : xt > yt;
}

/* The cycle's work (GArray of struct work_item), or NULL if the journal
 * cannot be read. */
static GArray *cycle_work(struct writeback *wb)
{
	GArray *groups = NULL, *work;
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_groups(wb->j, JS_MASK(JS_PENDING) | JS_MASK(JS_IN_DOUBT), &groups);
	pthread_mutex_unlock(&wb->lock);
	if (rc)
		return NULL;
	work = g_array_new(FALSE, TRUE, sizeof(struct work_item));
	for (guint i = 0; i < groups->len; i++) {
		const struct jgroup *g = &g_array_index(groups, struct jgroup, i);
		struct work_item w = { .kind = g->kind };

		if (!group_known(wb, g))
			continue;
		w.type = objtypes_by_id(wb->types, g->type);
		if (g->kind == JOP_ASSOC_ADD || g->kind == JOP_ASSOC_DEL)
			w.to_type = objtypes_by_id(wb->types, g->to_type);
		g_array_append_val(work, w);
	}
	g_array_unref(groups);
	g_array_sort(work, work_order);
	return work;
}

/* Run call until it finds nothing (0) or fails (-EAGAIN: end the cycle). */
static int drain(struct writeback *wb, const struct work_item *w, int *done)
{
	int r = 1;

	for (int n = 0; r > 0 && n < ROUNDS_MAX; n++) {
		switch (w->kind) {
		case JOP_CREATE:
			r = wb_do_creates(wb, w->type);
			break;
		case JOP_UPDATE:
			r = wb_do_updates(wb, w->type);
			break;
		default:
			r = wb_do_simple(wb, w->kind, w->type, w->to_type);
			break;
		}
		*done += r > 0;
	}
	return r < 0 ? -EAGAIN : 0;
}

/* The types with in-doubt work, each looked up once. */
static int cycle_doubts(struct writeback *wb, GArray *work, int *done)
{
	bool seen[OBJTYPES_MAX] = { false };

	for (guint i = 0; i < work->len; i++) {
		const struct objtype *t = g_array_index(work, struct work_item, i).type;
		int r;

		if (seen[t->idx])
			continue;
		seen[t->idx] = true;
		r = wb_do_in_doubt(wb, t);
		if (r >= 0) {
			*done += r;
			r = wb_do_in_doubt_other(wb, t);
		}
		if (r < 0)
			return r;
		*done += r;
	}
	return 0;
}

/* One pass over everything that may be sent now: in-doubt lookups, then
 * creates, updates, archives, association adds and removes. Returns the
 * number of chunks sent or looked up, or -EAGAIN after a transient failure. */
static int cycle(struct writeback *wb)
{
	GArray *work = cycle_work(wb);
	int done = 0, rc;

	if (!work)
		return -EAGAIN;
	rc = cycle_doubts(wb, work, &done);
	for (guint i = 0; rc == 0 && i < work->len; i++)
		rc = drain(wb, &g_array_index(work, struct work_item, i), &done);
	g_array_unref(work);
	return rc < 0 ? rc : done;
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

/* Rows of types this mount does not show (-o types= left them out, or the
 * account lost a custom object) are neither sent nor dropped: say so once. */
static void warn_unshown(struct writeback *wb)
{
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	GString *which = g_string_new(NULL);
	GArray *groups = NULL;
	int64_t n = 0;

	if (journal_groups(wb->j, JS_ANY, &groups) == 0) {
		for (guint i = 0; i < groups->len; i++) {
			const struct jgroup *g = &g_array_index(groups, struct jgroup, i);
			const char *u = objtypes_by_id(wb->types, g->type) ? g->to_type : g->type;

			if (group_known(wb, g))
				continue;
			n += g->count;
			if (g_hash_table_add(seen, (gpointer)u))
				g_string_append_printf(which, "%s%s", which->len ? ", " : "", u);
		}
	}
	g_hash_table_destroy(seen);
	if (groups)
		g_array_unref(groups);
	if (n)
		log_warn("writeback: %" PRId64 " operations in the journal are on object types this "
			 "mount does not show (%s); they stay queued for a mount that does", n,
			 which->str);
	g_string_free(which, TRUE);
}

int writeback_new(struct hs_client *hc, struct cache *c, const struct writeback_opts *o,
		  const struct writeback_hooks *hooks, struct writeback **out)
{
	struct writeback *wb;
	pthread_condattr_t ca;
	int64_t counts[JS_STATE_COUNT];
	int rc;

	*out = NULL;
	if (!hc || !c || !o || !o->state_dir || !o->types)
		return -EINVAL;
	wb = g_new0(struct writeback, 1);
	wb->hc = hc;
	wb->c = c;
	wb->types = o->types;
	if (hooks)
		wb->hooks = *hooks;
	wb->delay_ms = o->delay_ms > 0 ? o->delay_ms : DEFAULT_DELAY_MS;
	wb->index_delay_ms = o->index_delay_ms > 0 ? o->index_delay_ms : DEFAULT_INDEX_DELAY_MS;
	wb->call_timeout_ms = o->call_timeout_ms > 0 ? o->call_timeout_ms : DEFAULT_CALL_TIMEOUT_MS;
	rc = journal_open(o->state_dir, hs_wall_ms(), &wb->j);
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
	warn_unshown(wb);
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

/* One of this mount's types. */
static bool type_ok(struct writeback *wb, const struct objtype *type)
{
	return type && objtypes_at(wb->types, type->idx) == type;
}

/* Lock held, after a row was written: the batcher looks again. */
static void queued(struct writeback *wb)
{
	wb->last_queue_ms = hs_now_ms();
	pthread_cond_signal(&wb->wake);
}

int writeback_update(struct writeback *wb, const struct objtype *type, uint64_t id,
		     json_object *changes, json_object *bases, uint64_t epoch)
{
	int rc;

	if (!type_ok(wb, type) || id == 0 || !json_object_is_type(changes, json_type_object))
		return -EINVAL;
	if (json_object_object_length(changes) == 0)
		return 0;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_update(wb->j, type->id, id, changes, bases, epoch, hs_wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc == -EINVAL ? rc : rc ? -EIO : 0;
}

int writeback_create(struct writeback *wb, const struct objtype *type, const char *key,
		     json_object *props)
{
	int rc;

	if (!type_ok(wb, type) || !key || !*key || !json_object_is_type(props, json_type_object))
		return -EINVAL;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_create(wb->j, type->id, key, props, hs_wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc == -EINVAL ? rc : rc ? -EIO : 0;
}

int writeback_archive(struct writeback *wb, const struct objtype *type, uint64_t id)
{
	int rc;

	if (!type_ok(wb, type) || id == 0)
		return -EINVAL;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_archive(wb->j, type->id, id, hs_wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc ? -EIO : 0;
}

int writeback_assoc(struct writeback *wb, bool add, const struct objtype *from, uint64_t id,
		    const struct objtype *to, uint64_t to_id)
{
	int rc;

	if (!type_ok(wb, from) || !type_ok(wb, to) || id == 0 || to_id == 0)
		return -EINVAL;
	pthread_mutex_lock(&wb->lock);
	rc = journal_add_assoc(wb->j, add, from->id, id, to->id, to_id, hs_wall_ms(), NULL);
	if (rc == 0)
		queued(wb);
	pthread_mutex_unlock(&wb->lock);
	return rc ? -EIO : 0;
}

/* A type's directory name, or its objectTypeId if this mount does not show it. */
static const char *type_label(struct writeback *wb, const char *type_id)
{
	const struct objtype *t = objtypes_by_id(wb->types, type_id);

	return t ? t->name : type_id;
}

/* One .hubfs/queue line. */
static void queue_line(struct writeback *wb, GString *g, const struct jop *op)
{
	json_object *e;

	g_string_append_printf(g, "%s %s/", jop_state_name(op->state), type_label(wb, op->type));
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
				       type_label(wb, op->to_type), op->to_id);
		break;
	default:
		break;
	}
	e = op->error ? json_tokener_parse(op->error) : NULL;
	if (e) {
		const char *cat = json_util_field(e, "category"), *msg = json_util_field(e, "message");
		const char *reason = json_util_field(e, "reason"), *cid = json_util_field(e, "correlationId");

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

	if (journal_list(wb->j, mask, -1, NULL, 0, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++)
			queue_line(wb, g, rows->pdata[i]);
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
	rc = journal_retry(wb->j, hs_wall_ms());
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

const char *writeback_record_state(struct writeback *wb, const struct objtype *type, uint64_t id)
{
	GPtrArray *rows = NULL;
	const char *st = "clean";
	bool conflict = false, failed = false, pending = false;

	if (!type_ok(wb, type) || id == 0)
		return st;
	pthread_mutex_lock(&wb->lock);
	if (journal_list(wb->j, JS_ANY, -1, type->id, id, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++) {
			const struct jop *op = rows->pdata[i];

			if (op->kind != JOP_UPDATE && op->kind != JOP_ARCHIVE)
				continue;
			conflict |= op->state == JS_CONFLICT;
			failed |= op->state == JS_FAILED;
			pending |= op->state == JS_PENDING || op->state == JS_IN_FLIGHT ||
				   op->state == JS_IN_DOUBT;
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
	json_object *q = json_object_new_object(), *d = json_object_new_object(), *batch = NULL;
	uint64_t calls, doubt_landed, not_landed, landed;

	pthread_mutex_lock(&wb->lock);
	if (journal_counts(wb->j, counts) != 0)
		memset(counts, 0, sizeof(counts));
	calls = wb->doubt_calls;
	doubt_landed = wb->doubt_landed;
	not_landed = wb->doubt_not_landed;
	landed = journal_landed(wb->j);
	if (counts[JS_IN_FLIGHT] > 0) {
		const struct objtype *bt = objtypes_by_id(wb->types, wb->batch_type);

		batch = json_object_new_object();
		json_object_object_add(batch, "kind", json_object_new_string(jop_kind_name(wb->batch_kind)));
		json_object_object_add(batch, "type", json_object_new_string(bt ? bt->name : wb->batch_type));
		json_object_object_add(batch, "records", json_object_new_int64(counts[JS_IN_FLIGHT]));
	}
	pthread_mutex_unlock(&wb->lock);
	for (int s = 0; s < JS_STATE_COUNT; s++)
		json_object_object_add(q, jop_state_name(s), json_object_new_int64(counts[s]));
	/* Progress (hubfs sync): operations landed since mount, and the chunk
	 * being sent (null between chunks). */
	json_object_object_add(q, "landed", json_object_new_uint64(landed));
	json_object_object_add(q, "batch", batch);
	json_object_object_add(obj, "queue", q);
	json_object_object_add(d, "answers_lost", json_object_new_uint64(calls));
	json_object_object_add(d, "found_landed", json_object_new_uint64(doubt_landed));
	json_object_object_add(d, "not_landed", json_object_new_uint64(not_landed));
	json_object_object_add(obj, "in_doubt", d);
}
