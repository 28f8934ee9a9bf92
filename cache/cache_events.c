/* cache_events.c - pushed changes applied to the store (cache_events.h): the
 * coalescer of cache/model/changes.h, drained by a worker thread of its own
 * that reads records in batches, forgets what is gone and stales association
 * maps, all through the same guards as any other fetch.
 */
#include "cache/cache_events.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache_int.h"
#include "cache/model/record.h"
#include "client/log.h"

#define DEF_QUIET_MS (10 * 60 * 1000)
#define DEF_BACKOFF 10
#define RETRY_MIN_MS 1000      /* a failed batch read is tried again after this, */
#define RETRY_MAX_MS 60000     /* doubling up to this */
#define CALL_TIMEOUT_MS 60000  /* one batch read, retries included */
#define IDLE_WAIT_MS 60000     /* the worker looks again at least this often */
#define DEF_BURST_CALLS 20
#define DEF_CALL_INTERVAL_MS 500

struct cache_events {
	struct changes *ch;       /* its own lock, a leaf */
	GThread *thread;

	/* Lock order: c->lock before lock; lock is a leaf (never held while
	 * taking c->lock or calling out). Protected by lock: */
	GMutex lock;
	GCond cond;
	bool stop;
	int64_t quiet_ms;
	unsigned backoff;
	int64_t last_event_ms;    /* wall: the last add with events */
	int64_t last_alive_ms;    /* wall: the last add or cache_events_alive */
	int64_t last_applied_ms;  /* wall: the last drain applied */
	int64_t retry_at;         /* wall: no drain before then (after a failure) */
	int64_t retry_ms;         /* the next failure's wait */
	int64_t tokens;           /* calls the worker may make now (may go below 0) */
	int64_t refill_at;        /* wall: when the next token is due */
	int64_t burst, interval;  /* the bucket: size, ms per token */
	uint64_t stored, kept, forgotten, assoc_maps, calls, failed, refreshes, relists;
};

/* ---- life cycle ----------------------------------------------------------- */

static gpointer events_main(gpointer p);

/* The cache's events, made (with o, or the defaults) if make and there are
 * none yet; NULL if there are none (or the cache is stopping). */
static struct cache_events *events_get(struct cache *c, const struct cache_events_opts *o,
				       bool make, int *err)
{
	struct cache_events *ev;
	struct changes_opts co = { 0 };

	g_mutex_lock(&c->lock);
	ev = c->events;
	if (ev || !make || cache_stopping(c)) {
		g_mutex_unlock(&c->lock);
		return ev;
	}
	co.types = c->types;
	co.portal_id = o ? o->portal_id : 0;
	co.linger_ms = o ? o->linger_ms : 0;
	co.max_pending = o ? o->max_pending : 0;
	ev = g_new0(struct cache_events, 1);
	ev->ch = changes_new(&co);
	g_mutex_init(&ev->lock);
	g_cond_init(&ev->cond);
	ev->quiet_ms = o && o->quiet_ms > 0 ? o->quiet_ms : DEF_QUIET_MS;
	ev->backoff = o && o->backoff ? o->backoff : DEF_BACKOFF;
	ev->retry_ms = RETRY_MIN_MS;
	ev->burst = o && o->burst_calls ? o->burst_calls : DEF_BURST_CALLS;
	ev->interval = o && o->call_interval_ms > 0 ? o->call_interval_ms : DEF_CALL_INTERVAL_MS;
	ev->tokens = ev->burst;
	g_atomic_pointer_set(&c->events, ev);
	/* Started under c->lock: a second caller waits and finds it running.
	 * The thread takes c->lock only once it has work. */
	ev->thread = g_thread_try_new("hubfs-events", events_main, c, NULL);
	if (!ev->thread) {
		g_atomic_pointer_set(&c->events, NULL);
		changes_free(ev->ch);
		g_mutex_clear(&ev->lock);
		g_cond_clear(&ev->cond);
		g_free(ev);
		ev = NULL;
		if (err)
			*err = -EAGAIN;
	}
	g_mutex_unlock(&c->lock);
	return ev;
}

int cache_events_start(struct cache *c, const struct cache_events_opts *o)
{
	struct cache_events *ev;
	int err = -ECANCELED;

	ev = events_get(c, o, true, &err);
	if (!ev)
		return err;
	if (o) {
		g_mutex_lock(&ev->lock);
		if (o->quiet_ms > 0)
			ev->quiet_ms = o->quiet_ms;
		if (o->backoff)
			ev->backoff = o->backoff;
		g_mutex_unlock(&ev->lock);
	}
	return 0;
}

void cache_events_stop(struct cache *c)
{
	struct cache_events *ev = events_get(c, NULL, false, NULL);

	if (!ev)
		return;
	g_mutex_lock(&ev->lock);
	ev->stop = true;
	g_cond_broadcast(&ev->cond);
	g_mutex_unlock(&ev->lock);
}

void cache_events_free(struct cache *c)
{
	struct cache_events *ev = c ? c->events : NULL;

	if (!ev)
		return;
	cache_events_stop(c);
	g_thread_join(ev->thread);
	g_atomic_pointer_set(&c->events, NULL);
	changes_free(ev->ch);
	g_mutex_clear(&ev->lock);
	g_cond_clear(&ev->cond);
	g_free(ev);
}

/* ---- feeding ---------------------------------------------------------------- */

size_t cache_events_add(struct cache *c, const struct wh_event *evs, size_t n)
{
	struct cache_events *ev = events_get(c, NULL, true, NULL);
	int64_t now = c->opts.wall();
	size_t applied;

	if (!ev || !n)
		return 0;
	applied = changes_add(ev->ch, evs, n, now);
	g_mutex_lock(&ev->lock);
	ev->last_event_ms = ev->last_alive_ms = now;
	if (applied)
		g_cond_broadcast(&ev->cond);
	g_mutex_unlock(&ev->lock);
	return applied;
}

void cache_events_alive(struct cache *c)
{
	struct cache_events *ev = events_get(c, NULL, false, NULL);

	if (!ev)
		return;
	g_mutex_lock(&ev->lock);
	ev->last_alive_ms = c->opts.wall();
	g_mutex_unlock(&ev->lock);
}

/* Whether events arrive, and the refresh interval that follows. ev->lock held. */
static bool active_locked(struct cache *c, struct cache_events *ev)
{
	return ev->last_alive_ms && c->opts.wall() < ev->last_alive_ms + ev->quiet_ms;
}

bool cache_events_active(struct cache *c)
{
	struct cache_events *ev = g_atomic_pointer_get(&c->events);
	bool a;

	if (!ev)
		return false;
	g_mutex_lock(&ev->lock);
	a = active_locked(c, ev);
	g_mutex_unlock(&ev->lock);
	return a;
}

int64_t cache_events_refresh_every(struct cache *c)
{
	struct cache_events *ev = g_atomic_pointer_get(&c->events);
	int64_t every = c->opts.ttl_ms;

	if (!ev)
		return every;
	g_mutex_lock(&ev->lock);
	if (active_locked(c, ev) && ev->backoff > 1)
		every = c->opts.ttl_ms > INT64_MAX / ev->backoff ? INT64_MAX :
			c->opts.ttl_ms * (int64_t)ev->backoff;
	g_mutex_unlock(&ev->lock);
	return every;
}

/* ---- applying ----------------------------------------------------------------- */

/* Whether anything of a type was ever fetched or shown: if not, there is
 * nothing to update (the first access fetches it fresh). Lock held. */
static bool type_in_use(struct tcache *tc)
{
	return tc->sync_wall_ms || tc->listing || g_hash_table_size(tc->recs);
}

/* changes_held_fn: what the cache holds of a record. */
static int64_t held(void *ud, const struct objtype *t, uint64_t id)
{
	struct cache *c = ud;
	struct tcache *tc;
	struct rec *r;
	int64_t v = -1;

	g_mutex_lock(&c->lock);
	tc = &c->t[t->idx];
	r = g_hash_table_lookup(tc->recs, KEY(id));
	if (!type_in_use(tc) || g_hash_table_contains(tc->gone, KEY(id)))
		v = INT64_MAX;    /* nothing shown would change */
	else if (r)
		v = r->local_epoch ? INT64_MAX : r->mtime_ms; /* a local write lands with the
							       * server's copy anyway */
	g_mutex_unlock(&c->lock);
	return v;
}

static void call_init(struct cache *c, struct hs_call *call)
{
	/* At the users' priority: someone is looking at these records now. */
	cache_call_init(call, RL_PRIO_USER, hs_now_ms() + CALL_TIMEOUT_MS);
	call->cancel = &c->stopping;
}

/* The map of from/id toward `to` is about to be forgotten: the kernel is told
 * to forget its directory and every link it showed (a link looked up stays
 * in the kernel's cache for ttl otherwise, after the listing lost it). Lock
 * held. */
static void note_dropped(struct cache *c, const struct objtype *from, uint64_t id,
			 const struct objtype *to, const struct assoc *a)
{
	cache_note_assoc(c, from, id, to, a->ids, a->n);
}

/* Forget the map of from/id toward to, if held. Lock held. */
static bool drop_map(struct cache *c, const struct objtype *from, uint64_t id,
		     const struct objtype *to)
{
	GHashTable *table = c->t[from->idx].assoc[to->idx];
	const struct assoc *a = table ? g_hash_table_lookup(table, KEY(id)) : NULL;

	if (!a)
		return false;
	note_dropped(c, from, id, to, a);
	g_hash_table_remove(table, KEY(id));
	return true;
}

/* Forget every map of `from` toward `to`. Lock held. */
static size_t drop_maps_all(struct cache *c, const struct objtype *from, const struct objtype *to)
{
	GHashTable *table = c->t[from->idx].assoc[to->idx];
	GHashTableIter it;
	gpointer k, v;
	size_t n;

	if (!table)
		return 0;
	n = g_hash_table_size(table);
	g_hash_table_iter_init(&it, table);
	while (g_hash_table_iter_next(&it, &k, &v))
		note_dropped(c, from, UNKEY(k), to, v);
	g_hash_table_remove_all(table);
	return n;
}

/* Forget every association map of `from` that holds one of ids (maps toward
 * `to`). Lock held. */
static size_t drop_maps_holding(struct cache *c, const struct objtype *from,
				const struct objtype *to, GHashTable *ids)
{
	GHashTable *table = c->t[from->idx].assoc[to->idx];
	GHashTableIter it;
	gpointer k, v;
	size_t n = 0;

	if (!table)
		return 0;
	g_hash_table_iter_init(&it, table);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		const struct assoc *a = v;

		for (size_t i = 0; i < a->n; i++)
			if (g_hash_table_contains(ids, KEY(a->ids[i]))) {
				note_dropped(c, from, UNKEY(k), to, a);
				g_hash_table_iter_remove(&it);
				n++;
				break;
			}
	}
	return n;
}

/* Forget the association maps of id toward every type. Lock held. */
static size_t drop_maps_of(struct cache *c, struct tcache *tc, uint64_t id)
{
	size_t n = 0;

	for (size_t u = 0; u < c->ntypes; u++)
		n += drop_map(c, tc->type, id, objtypes_at(c->types, (unsigned)u));
	return n;
}

/* ids[0..n) of type are gone from HubSpot: drop the records (but not one
 * with a local write pending: its write learns the news), their listing
 * entries, their maps and every map that links to them. Lock held. */
static void forget_gone(struct cache *c, struct cache_events *ev, const struct objtype *type,
			const uint64_t *ids, size_t n)
{
	struct tcache *tc = &c->t[type->idx];
	GHashTable *set = g_hash_table_new(g_direct_hash, g_direct_equal);
	int64_t now = cache_now_ms(c);
	size_t forgotten = 0, maps = 0;

	for (size_t i = 0; i < n; i++) {
		struct rec *r = g_hash_table_lookup(tc->recs, KEY(ids[i]));

		if (r && r->local_epoch)
			continue;
		if (r)
			cache_rec_remove(c, r);
		g_hash_table_add(set, KEY(ids[i]));
		g_hash_table_remove(tc->wanted, KEY(ids[i]));
		cache_note_missing(c, tc, ids[i], now + c->opts.ttl_ms);
		cache_note_changed(c, type, ids[i]);
		maps += drop_maps_of(c, tc, ids[i]);
		forgotten++;
	}
	if (tc->listing && g_hash_table_size(set)) {
		GArray *l = tc->listing->ids;
		guint o = 0;

		for (guint i = 0; i < l->len; i++)
			if (!g_hash_table_contains(set, KEY(g_array_index(l, struct lent, i).id)))
				g_array_index(l, struct lent, o++) = g_array_index(l, struct lent, i);
		g_array_set_size(l, o);
	}
	for (size_t u = 0; u < c->ntypes && g_hash_table_size(set); u++)
		maps += drop_maps_holding(c, objtypes_at(c->types, (unsigned)u), type, set);
	g_hash_table_destroy(set);
	g_mutex_lock(&ev->lock);
	ev->forgotten += forgotten;
	ev->assoc_maps += maps;
	g_mutex_unlock(&ev->lock);
}

/* One batch read of a job's ids with every shown property (*got: struct
 * rendered). No lock held. */
static int read_batch(struct cache *c, const struct objtype *type, const struct schema *s,
		      const struct changes_job *j, GArray **got)
{
	char (*idbuf)[24] = g_malloc(j->n * sizeof(*idbuf));
	const char **idp = g_new(const char *, j->n);
	size_t np = schema_shown_count(s);
	const char **props = g_new(const char *, MAX(np, 1));
	json_object *resp = NULL, *results;
	struct hs_call call;
	int rc;

	*got = NULL;
	for (size_t i = 0; i < j->n; i++) {
		snprintf(idbuf[i], sizeof(idbuf[i]), "%" G_GUINT64_FORMAT, j->ids[i]);
		idp[i] = idbuf[i];
	}
	for (size_t i = 0; i < np; i++)
		props[i] = schema_shown(s, i);
	call_init(c, &call);
	rc = hs_batch_read(c->hc, &call, type->path, idp, j->n, props, np, &resp);
	if (rc == 0 && json_object_object_get_ex(resp, "results", &results))
		*got = cache_render_results(results, s);
	else if (rc == 0)
		*got = g_array_new(FALSE, FALSE, sizeof(struct rendered));
	else
		log_info("events: batch read of %zu %s: %s", j->n, type->name, call.err.message);
	json_object_put(resp);
	g_free(props);
	g_free(idp);
	g_free(idbuf);
	return rc;
}

/* Store what a batch read returned, at write epoch `epoch` (records written
 * here since, or holding a newer updatedAt, are kept); a complete listing
 * gains the records it lacks and its entries take the new sizes. The ids it
 * did not return are gone. Takes over got's texts. Lock held. */
static void store_read(struct cache *c, struct cache_events *ev, const struct changes_job *j,
		       GArray *got, uint64_t epoch)
{
	struct tcache *tc = &c->t[j->type->idx];
	GHashTable *found = g_hash_table_new(g_direct_hash, g_direct_equal);
	GArray *missing = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	struct listing *l = tc->listing && tc->listing->complete ? tc->listing : NULL;
	uint64_t stored = 0, kept = 0;

	for (guint i = 0; i < got->len; i++) {
		struct rendered *x = &g_array_index(got, struct rendered, i);
		gpointer g = g_hash_table_lookup(tc->gone, KEY(x->id));
		struct rec *r = g_hash_table_lookup(tc->recs, KEY(x->id));

		g_hash_table_add(found, KEY(x->id));
		if (g && (int64_t)GPOINTER_TO_SIZE(g) == GONE_PENDING) {
			g_free(x->text); /* archived here, not yet sent: hidden until it lands */
			kept++;
			continue;
		}
		if (g)
			g_hash_table_remove(tc->gone, KEY(x->id)); /* restored since */
		if (r && r->local_epoch) {
			g_free(x->text);
			kept++;
			continue;
		}
		if (cache_store_locked(c, j->type, x, epoch, cache_now_ms(c)))
			kept++;
		else
			stored++;
	}
	if (l) {
		GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);

		for (guint i = 0; i < l->ids->len; i++) {
			struct lent *e = &g_array_index(l->ids, struct lent, i);
			struct rec *r;

			if (!g_hash_table_contains(found, KEY(e->id)))
				continue;
			g_hash_table_add(seen, KEY(e->id));
			if ((r = g_hash_table_lookup(tc->recs, KEY(e->id)))) {
				e->size = r->len;
				e->mtime_ms = r->mtime_ms;
				r->listed = true;
			}
		}
		for (guint i = 0; i < got->len; i++) {
			uint64_t id = g_array_index(got, struct rendered, i).id;
			struct rec *r = g_hash_table_lookup(tc->recs, KEY(id));

			if (g_hash_table_contains(seen, KEY(id)) || !r ||
			    g_hash_table_contains(tc->gone, KEY(id)))
				continue;
			{
				struct lent e = { id, r->len, r->mtime_ms };

				g_array_append_val(l->ids, e);
			}
			r->listed = true;
			g_hash_table_add(seen, KEY(id));
		}
		g_hash_table_destroy(seen);
	}
	for (size_t i = 0; i < j->n; i++)
		if (!g_hash_table_contains(found, KEY(j->ids[i])))
			g_array_append_val(missing, j->ids[i]);
	g_mutex_lock(&ev->lock);
	ev->stored += stored;
	ev->kept += kept;
	g_mutex_unlock(&ev->lock);
	if (missing->len)
		forget_gone(c, ev, j->type, (const uint64_t *)(void *)missing->data, missing->len);
	g_array_free(missing, TRUE);
	g_hash_table_destroy(found);
}

/* A READ job: 0, or the failed call's -errno. */
static int apply_read(struct cache *c, struct cache_events *ev, const struct changes_job *j)
{
	struct tcache *tc = &c->t[j->type->idx];
	const struct schema *s;
	GArray *got = NULL;
	uint64_t epoch;
	int rc;

	g_mutex_lock(&c->lock);
	if (!type_in_use(tc)) {
		g_mutex_unlock(&c->lock);
		return 0;
	}
	rc = cache_ensure_schema(c, j->type, hs_now_ms() + CALL_TIMEOUT_MS);
	s = tc->schema;
	epoch = c->epoch;
	g_mutex_unlock(&c->lock);
	if (rc)
		return rc;
	rc = read_batch(c, j->type, s, j, &got);
	g_mutex_lock(&ev->lock);
	ev->calls++;
	ev->failed += rc != 0;
	g_mutex_unlock(&ev->lock);
	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	store_read(c, ev, j, got, epoch);
	g_array_free(got, TRUE);
	g_cond_broadcast(&c->cond);
	cache_unlock_and_notify(c);
	return 0;
}

/* ASSOC and ASSOC_ALL: the maps are forgotten, and the next look at them
 * fetches them (one v4 batch read for up to 1,000 records then). Nothing is
 * fetched for maps no one looked at. */
static void apply_maps(struct cache *c, struct cache_events *ev, const struct changes_job *j)
{
	struct tcache *tc = &c->t[j->type->idx];
	size_t n = 0;

	g_mutex_lock(&c->lock);
	for (size_t i = 0; i < j->n; i++) {
		if (j->kind == CHANGES_ASSOC_ALL)
			n += drop_maps_of(c, tc, j->ids[i]);
		else
			n += drop_map(c, j->type, j->ids[i], j->to);
	}
	cache_unlock_and_notify(c);
	g_mutex_lock(&ev->lock);
	ev->assoc_maps += n;
	g_mutex_unlock(&ev->lock);
}

/* The fall-backs a type flag asks for. Lock held. */
static void apply_flags(struct cache *c, struct cache_events *ev, const struct objtype *t,
			unsigned flags)
{
	struct tcache *tc = &c->t[t->idx];
	size_t maps = 0;

	if ((flags & CHANGES_RELIST) && type_in_use(tc)) {
		if (tc->listing && tc->listing->complete)
			tc->listing->completed_ms = INT64_MIN / 2;
		cache_kick_relist(c, t);
		ev->relists++;
	}
	if ((flags & (CHANGES_REFRESH | CHANGES_RELIST)) && tc->sync_wall_ms && c->work &&
	    !tc->refreshing && !cache_stopping(c)) {
		/* Not cache_kick_refresh: this one is due whatever the backoff. */
		tc->refreshing = true;
		cache_work_push(c, WORK_REFRESH, t);
		ev->refreshes++;
	}
	if (flags & CHANGES_ASSOC_STALE)
		for (size_t u = 0; u < c->ntypes; u++) {
			const struct objtype *o = objtypes_at(c->types, (unsigned)u);

			maps += drop_maps_all(c, t, o);
			if (o != t)
				maps += drop_maps_all(c, o, t);
		}
	ev->assoc_maps += maps;
}

/* Drain and apply once. */
static void events_apply(struct cache *c, struct cache_events *ev, int64_t now)
{
	struct changes_work *w = changes_drain(ev->ch, now, held, c);
	bool failed = false;

	if (!w)
		return;
	g_mutex_lock(&c->lock);
	g_mutex_lock(&ev->lock);
	for (size_t t = 0; t < c->ntypes; t++)
		if (w->flags[t])
			apply_flags(c, ev, objtypes_at(c->types, (unsigned)t), w->flags[t]);
	g_mutex_unlock(&ev->lock);
	cache_unlock_and_notify(c);
	for (size_t i = 0; i < w->n_jobs && !cache_stopping(c); i++) {
		const struct changes_job *j = &w->jobs[i];

		switch (j->kind) {
		case CHANGES_GONE:
			g_mutex_lock(&c->lock);
			forget_gone(c, ev, j->type, j->ids, j->n);
			cache_unlock_and_notify(c);
			break;
		case CHANGES_ASSOC_ALL:
		case CHANGES_ASSOC:
			apply_maps(c, ev, j);
			break;
		case CHANGES_READ:
			if (apply_read(c, ev, j) != 0) {
				changes_retry(ev->ch, j, c->opts.wall());
				failed = true;
			}
			break;
		}
	}
	g_mutex_lock(&ev->lock);
	ev->last_applied_ms = c->opts.wall();
	if (failed) {
		ev->retry_at = ev->last_applied_ms + ev->retry_ms;
		ev->retry_ms = MIN(ev->retry_ms * 2, RETRY_MAX_MS);
	} else {
		ev->retry_ms = RETRY_MIN_MS;
	}
	g_mutex_unlock(&ev->lock);
	changes_work_free(w);
}

/* Top the bucket up to now. ev->lock held. */
static void refill(struct cache_events *ev, int64_t now)
{
	int64_t n;

	if (ev->tokens >= ev->burst || !ev->refill_at) {
		ev->refill_at = now + ev->interval;
		return;
	}
	if (now < ev->refill_at)
		return;
	n = (now - ev->refill_at) / ev->interval + 1;
	ev->tokens = MIN(ev->burst, ev->tokens + n);
	ev->refill_at += n * ev->interval;
}

static gpointer events_main(gpointer p)
{
	struct cache *c = p;
	struct cache_events *ev;
	uint64_t calls;

	/* c->events is set by the thread that started this one, under c->lock. */
	g_mutex_lock(&c->lock);
	ev = c->events;
	g_mutex_unlock(&c->lock);
	g_mutex_lock(&ev->lock);
	while (!ev->stop) {
		int64_t now = c->opts.wall(), due = changes_due(ev->ch, now);

		if (due == 0 && now < ev->retry_at)
			due = ev->retry_at - now;
		refill(ev, now);
		if (due == 0 && ev->tokens <= 0)
			due = MAX(1, ev->refill_at - now); /* over its share: let more gather */
		if (due != 0) {
			int64_t ms = due < 0 || due > IDLE_WAIT_MS ? IDLE_WAIT_MS : due;

			g_cond_wait_until(&ev->cond, &ev->lock, g_get_monotonic_time() + ms * 1000);
			continue;
		}
		calls = ev->calls;
		g_mutex_unlock(&ev->lock);
		events_apply(c, ev, now);
		g_mutex_lock(&ev->lock);
		ev->tokens -= (int64_t)(ev->calls - calls);
	}
	g_mutex_unlock(&ev->lock);
	return NULL;
}

/* ---- status ------------------------------------------------------------------- */

void cache_events_stats(struct cache *c, struct cache_events_stats *st)
{
	struct cache_events *ev = events_get(c, NULL, false, NULL);

	memset(st, 0, sizeof(*st));
	st->refresh_every_ms = c->opts.ttl_ms;
	if (!ev)
		return;
	st->refresh_every_ms = cache_events_refresh_every(c);
	changes_stats(ev->ch, &st->changes);
	g_mutex_lock(&ev->lock);
	st->started = true;
	st->active = active_locked(c, ev);
	st->stored = ev->stored;
	st->kept = ev->kept;
	st->forgotten = ev->forgotten;
	st->assoc_maps = ev->assoc_maps;
	st->calls = ev->calls;
	st->failed = ev->failed;
	st->refreshes = ev->refreshes;
	st->relists = ev->relists;
	st->last_event_ms = ev->last_event_ms;
	st->last_applied_ms = ev->last_applied_ms;
	g_mutex_unlock(&ev->lock);
}

static json_object *time_or_null(int64_t ms)
{
	char buf[RECORD_TIME_LEN];

	return ms ? json_object_new_string(record_format_time(ms, buf)) : NULL;
}

void cache_events_status(struct cache *c, json_object *obj)
{
	struct cache_events_stats st;
	json_object *o, *ign;

	cache_events_stats(c, &st);
	if (!st.started)
		return;
	o = json_object_new_object();
	ign = json_object_new_object();
	json_object_object_add(o, "received", json_object_new_int64((int64_t)st.changes.received));
	json_object_object_add(o, "applied", json_object_new_int64((int64_t)st.changes.applied));
	json_object_object_add(o, "duplicates", json_object_new_int64((int64_t)st.changes.duplicates));
	json_object_object_add(o, "out_of_order",
			       json_object_new_int64((int64_t)st.changes.out_of_order));
	json_object_object_add(o, "overflow", json_object_new_int64((int64_t)st.changes.overflow));
	for (int i = 0; i < CHI_COUNT; i++)
		json_object_object_add(ign, changes_ignore_name((enum changes_ignore)i),
				       json_object_new_int64((int64_t)st.changes.ignored[i]));
	json_object_object_add(o, "ignored", ign);
	{
		uint64_t total = 0;

		for (int i = 0; i < CHI_COUNT; i++)
			total += st.changes.ignored[i];
		json_object_object_add(o, "ignored_total", json_object_new_int64((int64_t)total));
	}
	json_object_object_add(o, "pending", json_object_new_int64((int64_t)st.changes.pending));
	json_object_object_add(o, "records_stored", json_object_new_int64((int64_t)st.stored));
	json_object_object_add(o, "records_kept", json_object_new_int64((int64_t)st.kept));
	json_object_object_add(o, "records_forgotten", json_object_new_int64((int64_t)st.forgotten));
	json_object_object_add(o, "reads_saved",
			       json_object_new_int64((int64_t)st.changes.skipped_held));
	json_object_object_add(o, "assoc_maps_dropped", json_object_new_int64((int64_t)st.assoc_maps));
	json_object_object_add(o, "calls", json_object_new_int64((int64_t)st.calls));
	json_object_object_add(o, "calls_failed", json_object_new_int64((int64_t)st.failed));
	json_object_object_add(o, "refreshes_queued", json_object_new_int64((int64_t)st.refreshes));
	json_object_object_add(o, "relists_queued", json_object_new_int64((int64_t)st.relists));
	json_object_object_add(o, "last_event", time_or_null(st.last_event_ms));
	json_object_object_add(o, "last_applied", time_or_null(st.last_applied_ms));
	json_object_object_add(o, "active", json_object_new_boolean(st.active));
	json_object_object_add(o, "polling_backed_off",
			       json_object_new_boolean(st.refresh_every_ms > c->opts.ttl_ms));
	json_object_object_add(o, "refresh_every_s",
			       json_object_new_double((double)st.refresh_every_ms / 1000));
	json_object_object_add(obj, "events", o);
}
