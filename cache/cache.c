#include "cache/cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cache/objtype.h"
#include "cache/record.h"
#include "client/log.h"

/* Record ids are below 2^48 (record_parse_id), so they are stored directly as
 * hash-table keys (GSIZE_TO_POINTER); hubfs needs a 64-bit build. */
#define KEY(id) GSIZE_TO_POINTER((gsize)(id))
#define UNKEY(p) ((uint64_t)GPOINTER_TO_SIZE(p))

struct rec {
	uint64_t id;
	uint8_t type;
	uint32_t len;
	char *text;
	int64_t mtime_ms;     /* updatedAt */
	int64_t fetched_ms;
	uint64_t local_epoch; /* epoch of the last local write, 0 if none */
	GList lru;            /* link in c->lru; data = this rec */
};

struct assoc {
	uint64_t *ids;
	size_t n;
	int64_t fetched_ms;
};

/* A listed record: its attributes as of the page it came in, so readdirplus
 * needs no fetch even when the record itself was evicted. */
struct lent {
	uint64_t id;
	uint64_t size;
	int64_t mtime_ms;
};

struct listing {
	int type;
	unsigned refs;        /* protected by c->lock, like every field here */
	GArray *ids;          /* struct lent, in HubSpot's list order */
	bool complete;
	bool fetching;
	int err;
	char *after;
	int64_t started_ms;
	int64_t started_wall;
	int64_t completed_ms;
};

struct tcache {
	GHashTable *recs;       /* id -> struct rec */
	GHashTable *wanted;     /* id -> 1: known to exist, not cached */
	GHashTable *inflight;   /* id -> 1: in a batch/read right now */
	GHashTable *missing;    /* id -> expiry ms (negative cache) */
	GHashTable *gone;       /* id -> 1: archived by this mount; hidden from listings */
	struct listing *listing;
	int64_t synced_ms;      /* every record of the type is fresh since then */
	int64_t sync_wall_ms;   /* the same moment, wall clock (0: never fetched) */
	bool refreshing;        /* an incremental refresh is queued or running */
	bool relisting;         /* a background relist is queued or running */
	int64_t relist_fail_ms; /* when the last background relist failed */
	int64_t refresh_fail_ms;/* when the last refresh failed (0: it did not) */
	GHashTable *recent;     /* id -> wall ms of this mount's last change */
	const struct schema *schema;
	bool schema_fetching;
	GHashTable *assoc[OT_COUNT];          /* from id -> struct assoc */
	GHashTable *assoc_inflight[OT_COUNT]; /* from id -> 1 */
	char *pipelines;
	size_t pipelines_len;
};

struct cache {
	struct hs_client *hc;
	struct cache_opts opts;
	struct cache_hooks hooks;

	/* Lock order: c->lock only; never held across HTTP or hooks. */
	GMutex lock;
	GCond cond;             /* broadcast whenever a fetch finishes */
	struct tcache t[OT_COUNT];   /* protected by lock */
	GQueue lru;             /* head = most recently used; protected by lock */
	size_t bytes;           /* rendered bytes held; protected by lock */
	uint64_t epoch;         /* write epoch; protected by lock */
	uint64_t hits, misses;  /* protected by lock */
	GArray *notify;         /* pending hook calls {type, id}; protected by lock */
	GHashTable *owners;     /* id -> text (g_strdup); NULL until loaded */
	bool owners_fetching;

	GThread *worker;        /* background refreshes (opts.background) */
	GAsyncQueue *work;      /* type + 1, or STOP */
};

#define WORK_STOP GINT_TO_POINTER(-1)
#define WORK_RELIST 0x100

static int64_t wall_now(void)
{
	return g_get_real_time() / 1000;
}

static gpointer worker_main(gpointer p);
static void kick_relist(struct cache *c, int type);

struct note {
	int type;
	uint64_t id;
};

struct rendered {
	uint64_t id;
	char *text;
	size_t len;
	int64_t mtime_ms;
};

static int64_t now_ms(struct cache *c)
{
	return c->opts.now();
}

static void assoc_free(gpointer p)
{
	struct assoc *a = p;

	g_free(a->ids);
	g_free(a);
}

struct cache *cache_new(struct hs_client *hc, const struct cache_opts *opts,
			const struct cache_hooks *hooks)
{
	struct cache *c = g_new0(struct cache, 1);

	c->hc = hc;
	if (opts)
		c->opts = *opts;
	if (!c->opts.ttl_ms)
		c->opts.ttl_ms = 60000;
	if (!c->opts.max_bytes)
		c->opts.max_bytes = (size_t)512 << 20;
	if (!c->opts.now)
		c->opts.now = hs_now_ms;
	if (!c->opts.wall)
		c->opts.wall = wall_now;
	if (!c->opts.index_delay_ms)
		c->opts.index_delay_ms = 10000;
	if (!c->opts.relist_ms)
		c->opts.relist_ms = 900000;
	if (hooks)
		c->hooks = *hooks;
	g_mutex_init(&c->lock);
	g_cond_init(&c->cond);
	g_queue_init(&c->lru);
	c->epoch = 1;
	c->notify = g_array_new(FALSE, FALSE, sizeof(struct note));
	for (int t = 0; t < OT_COUNT; t++) {
		struct tcache *tc = &c->t[t];

		tc->recs = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->wanted = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->inflight = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->missing = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->gone = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->recent = g_hash_table_new(g_direct_hash, g_direct_equal);
		for (int u = 0; u < OT_COUNT; u++) {
			tc->assoc[u] = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, assoc_free);
			tc->assoc_inflight[u] = g_hash_table_new(g_direct_hash, g_direct_equal);
		}
	}
	if (c->opts.background) {
		c->work = g_async_queue_new();
		c->worker = g_thread_new("hubfs-refresh", worker_main, c);
	}
	return c;
}

static void listing_unref(struct listing *l)
{
	if (!l || --l->refs)
		return;
	g_array_free(l->ids, TRUE);
	g_free(l->after);
	g_free(l);
}

static void rec_free(struct rec *r)
{
	g_free(r->text);
	g_free(r);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	if (c->worker) {
		g_async_queue_push(c->work, WORK_STOP);
		g_thread_join(c->worker);
		g_async_queue_unref(c->work);
	}
	for (int t = 0; t < OT_COUNT; t++) {
		struct tcache *tc = &c->t[t];
		GHashTableIter it;
		gpointer v;

		g_hash_table_iter_init(&it, tc->recs);
		while (g_hash_table_iter_next(&it, NULL, &v))
			rec_free(v);
		g_hash_table_destroy(tc->recs);
		g_hash_table_destroy(tc->wanted);
		g_hash_table_destroy(tc->inflight);
		g_hash_table_destroy(tc->missing);
		g_hash_table_destroy(tc->gone);
		g_hash_table_destroy(tc->recent);
		for (int u = 0; u < OT_COUNT; u++) {
			g_hash_table_destroy(tc->assoc[u]);
			g_hash_table_destroy(tc->assoc_inflight[u]);
		}
		listing_unref(tc->listing);
		schema_free((struct schema *)tc->schema);
		g_free(tc->pipelines);
	}
	if (c->owners)
		g_hash_table_destroy(c->owners);
	g_array_free(c->notify, TRUE);
	/* The LRU links live inside the records freed above: nothing to free here. */
	g_mutex_clear(&c->lock);
	g_cond_clear(&c->cond);
	g_free(c);
}

/* Unlock, then run the hook for every record noted as changed. */
static void unlock_and_notify(struct cache *c)
{
	GArray *pending = NULL;

	if (c->notify->len) {
		pending = c->notify;
		c->notify = g_array_new(FALSE, FALSE, sizeof(struct note));
	}
	g_mutex_unlock(&c->lock);
	if (!pending)
		return;
	for (guint i = 0; i < pending->len; i++) {
		struct note *n = &g_array_index(pending, struct note, i);

		if (c->hooks.record_changed)
			c->hooks.record_changed(c->hooks.ud, n->type, n->id);
	}
	g_array_free(pending, TRUE);
}

static void note_changed(struct cache *c, int type, uint64_t id)
{
	struct note n = { type, id };

	g_array_append_val(c->notify, n);
}

/* Wait on c->cond until woken or the deadline. Returns false on timeout. */
static bool wait_until(struct cache *c, int64_t deadline)
{
	gint64 end;

	if (!deadline) {
		g_cond_wait(&c->cond, &c->lock);
		return true;
	}
	end = g_get_monotonic_time() + (deadline - now_ms(c)) * 1000;
	if (deadline <= now_ms(c))
		return false;
	return g_cond_wait_until(&c->cond, &c->lock, end) || deadline > now_ms(c);
}

static bool rec_fresh(struct cache *c, struct tcache *tc, struct rec *r, int64_t now)
{
	return now < MAX(r->fetched_ms, tc->synced_ms) + c->opts.ttl_ms;
}

static void rec_touch(struct cache *c, struct rec *r)
{
	g_queue_unlink(&c->lru, &r->lru);
	g_queue_push_head_link(&c->lru, &r->lru);
}

static void rec_remove(struct cache *c, struct rec *r)
{
	g_hash_table_remove(c->t[r->type].recs, KEY(r->id));
	g_queue_unlink(&c->lru, &r->lru);
	c->bytes -= r->len;
	rec_free(r);
}

/* Evict least-recently-used clean records until under budget; keep `keep`. */
static void evict(struct cache *c, struct rec *keep)
{
	GList *l = c->lru.tail;

	while (c->bytes > c->opts.max_bytes && l) {
		struct rec *r = l->data;

		l = l->prev;
		if (r == keep || r->local_epoch)
			continue;
		g_hash_table_add(c->t[r->type].wanted, KEY(r->id));
		rec_remove(c, r);
	}
}

/* Insert rendered data; takes ownership of x->text. Lock held. Returns 1 if dropped. */
static int store_locked(struct cache *c, int type, struct rendered *x, uint64_t epoch, int64_t now)
{
	struct tcache *tc = &c->t[type];
	struct rec *r = g_hash_table_lookup(tc->recs, KEY(x->id));

	g_hash_table_remove(tc->wanted, KEY(x->id));
	g_hash_table_remove(tc->missing, KEY(x->id));
	if (r) {
		/* Generation guard: a fetch that started before a local write, or
		 * that carries an older version than we hold, never overwrites. */
		if (r->local_epoch > epoch || r->mtime_ms > x->mtime_ms) {
			g_free(x->text);
			return 1;
		}
		r->fetched_ms = now;
		rec_touch(c, r);
		if (r->len == x->len && memcmp(r->text, x->text, x->len) == 0) {
			g_free(x->text);
			return 0;
		}
		c->bytes = c->bytes - r->len + x->len;
		g_free(r->text);
		r->text = x->text;
		r->len = (uint32_t)x->len;
		r->mtime_ms = x->mtime_ms;
		note_changed(c, type, x->id);
	} else {
		r = g_new0(struct rec, 1);
		r->id = x->id;
		r->type = (uint8_t)type;
		r->text = x->text;
		r->len = (uint32_t)x->len;
		r->mtime_ms = x->mtime_ms;
		r->fetched_ms = now;
		r->lru.data = r;
		g_hash_table_insert(tc->recs, KEY(r->id), r);
		g_queue_push_head_link(&c->lru, &r->lru);
		c->bytes += r->len;
	}
	x->text = NULL;
	evict(c, r);
	return 0;
}

/* Render the objects of a results array outside the lock. */
static GArray *render_results(json_object *results, const struct schema *s)
{
	size_t n = record_jarray_len(results);
	GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(struct rendered), (guint)n);

	for (size_t i = 0; i < n; i++) {
		struct rendered x;

		if (record_render(json_object_array_get_idx(results, i), s, &x.text, &x.len, &x.id,
				  &x.mtime_ms) == 0)
			g_array_append_val(out, x);
	}
	return out;
}

static void call_init(struct hs_call *call, enum rl_prio prio, int64_t deadline)
{
	memset(call, 0, sizeof(*call));
	call->prio = prio;
	call->deadline_ms = deadline;
}

/* Fetch the schema of a type if needed. Lock held on entry and exit. */
static int ensure_schema(struct cache *c, int type, int64_t deadline)
{
	struct tcache *tc = &c->t[type];
	json_object *resp = NULL;
	struct schema *s = NULL;
	struct hs_call call;
	int rc;

	while (!tc->schema) {
		if (tc->schema_fetching) {
			if (!wait_until(c, deadline))
				return -EAGAIN;
			continue;
		}
		tc->schema_fetching = true;
		g_mutex_unlock(&c->lock);
		call_init(&call, RL_PRIO_USER, deadline);
		rc = hs_properties(c->hc, &call, objtype_name(type), &resp);
		if (rc == 0)
			rc = schema_new(type, resp, c->opts.shown[type], &s);
		else
			log_warn("properties of %s: %s", objtype_name(type), call.err.message);
		json_object_put(resp);
		g_mutex_lock(&c->lock);
		tc->schema_fetching = false;
		tc->schema = s;
		g_cond_broadcast(&c->cond);
		if (rc)
			return rc;
	}
	return 0;
}

int cache_schema(struct cache *c, int type, int64_t deadline, const struct schema **out)
{
	int rc;

	g_mutex_lock(&c->lock);
	rc = ensure_schema(c, type, deadline);
	*out = c->t[type].schema;
	g_mutex_unlock(&c->lock);
	return rc;
}

/* Batch-read `want` plus up to 99 known-but-uncached or stale neighbours.
 * Lock held on entry and exit. If another thread is already fetching want,
 * waits for it and returns 1 (the caller looks again). */
static int fetch_records(struct cache *c, int type, uint64_t want, int64_t deadline)
{
	struct tcache *tc = &c->t[type];
	const char *ids[100];
	char idbuf[100][24];
	json_object *resp = NULL, *results = NULL;
	GArray *got = NULL;
	GHashTableIter it;
	gpointer k, v;
	struct hs_call call;
	uint64_t epoch;
	size_t n = 0;
	int64_t now;
	int rc;

	if (g_hash_table_contains(tc->inflight, KEY(want)))
		return wait_until(c, deadline) ? 1 : -EAGAIN;
	rc = ensure_schema(c, type, deadline);
	if (rc)
		return rc;
	if (g_hash_table_contains(tc->inflight, KEY(want)))
		return 1;

	now = now_ms(c);
	snprintf(idbuf[n], sizeof(idbuf[n]), "%" G_GUINT64_FORMAT, want);
	n++;
	g_hash_table_iter_init(&it, tc->wanted);
	while (n < 100 && g_hash_table_iter_next(&it, &k, NULL))
		if (UNKEY(k) != want && !g_hash_table_contains(tc->inflight, k))
			snprintf(idbuf[n++], sizeof(idbuf[0]), "%" G_GUINT64_FORMAT, UNKEY(k));
	g_hash_table_iter_init(&it, tc->recs);
	while (n < 100 && g_hash_table_iter_next(&it, &k, &v))
		if (UNKEY(k) != want && !rec_fresh(c, tc, v, now) &&
		    !g_hash_table_contains(tc->inflight, k))
			snprintf(idbuf[n++], sizeof(idbuf[0]), "%" G_GUINT64_FORMAT, UNKEY(k));
	for (size_t i = 0; i < n; i++) {
		ids[i] = idbuf[i];
		g_hash_table_add(tc->inflight, KEY(g_ascii_strtoull(idbuf[i], NULL, 10)));
	}
	if (!tc->sync_wall_ms) {
		/* The type's first fetch: incremental refreshes start from here. */
		tc->sync_wall_ms = c->opts.wall();
		tc->synced_ms = now;
	}
	epoch = c->epoch;
	g_mutex_unlock(&c->lock);

	call_init(&call, RL_PRIO_USER, deadline);
	{
		const struct schema *s = tc->schema;
		size_t np = schema_shown_count(s);
		const char **props = g_new(const char *, MAX(np, 1));

		for (size_t i = 0; i < np; i++)
			props[i] = schema_shown(s, i);
		rc = hs_batch_read(c->hc, &call, objtype_name(type), ids, n, props, np, &resp);
		g_free(props);
	}
	if (rc == 0 && json_object_object_get_ex(resp, "results", &results))
		got = render_results(results, tc->schema);
	else if (rc)
		log_info("batch read of %zu %s: %d %s", n, objtype_name(type), rc, call.err.message);

	g_mutex_lock(&c->lock);
	now = now_ms(c);
	if (got) {
		GHashTable *found = g_hash_table_new(g_direct_hash, g_direct_equal);

		/* The record asked for goes in last, so that a tight budget evicts
		 * its neighbours rather than it. */
		for (int pass = 0; pass < 2; pass++)
			for (guint i = 0; i < got->len; i++) {
				struct rendered *x = &g_array_index(got, struct rendered, i);

				if ((x->id == want) != (pass == 1))
					continue;
				g_hash_table_add(found, KEY(x->id));
				store_locked(c, type, x, epoch, now);
			}
		for (size_t i = 0; i < n; i++) {
			uint64_t id = g_ascii_strtoull(ids[i], NULL, 10);
			struct rec *r;

			if (g_hash_table_contains(found, KEY(id)))
				continue;
			/* Not in HubSpot (any more): forget it for a ttl, and relist to
			 * find what else was archived. */
			kick_relist(c, type);
			g_hash_table_remove(tc->wanted, KEY(id));
			g_hash_table_insert(tc->missing, KEY(id), GSIZE_TO_POINTER(now + c->opts.ttl_ms));
			r = g_hash_table_lookup(tc->recs, KEY(id));
			if (r && !r->local_epoch) {
				rec_remove(c, r);
				note_changed(c, type, id);
			}
		}
		g_hash_table_destroy(found);
		g_array_free(got, TRUE); /* texts now owned by the cache */
	}
	for (size_t i = 0; i < n; i++)
		g_hash_table_remove(tc->inflight, KEY(g_ascii_strtoull(ids[i], NULL, 10)));
	g_cond_broadcast(&c->cond);
	json_object_put(resp);
	return rc;
}

static bool listing_fresh(struct cache *c, struct listing *l, int64_t now)
{
	/* With background refreshes, a listing is kept current incrementally and
	 * relisted only every relist_ms (to notice archived records). */
	int64_t life = c->opts.background ? c->opts.relist_ms : c->opts.ttl_ms;

	return l && !l->err && (!l->complete || now < l->completed_ms + life);
}

/* Queue a background relist of a type unless one is pending. Lock held. */
static void kick_relist(struct cache *c, int type)
{
	struct tcache *tc = &c->t[type];

	if (!c->work || tc->relisting)
		return;
	if (tc->relist_fail_ms && now_ms(c) < tc->relist_fail_ms + c->opts.ttl_ms)
		return;
	tc->relisting = true;
	g_async_queue_push(c->work, GINT_TO_POINTER(type + 1 + WORK_RELIST));
}

static bool type_stale(struct cache *c, struct tcache *tc, int64_t now)
{
	return tc->sync_wall_ms && now >= tc->synced_ms + c->opts.ttl_ms;
}

/* Queue a background refresh of a type unless one is pending. Lock held. */
static void kick_refresh(struct cache *c, int type)
{
	struct tcache *tc = &c->t[type];

	if (!c->work || tc->refreshing)
		return;
	/* After a failure, wait a little before asking again (offline). */
	if (tc->refresh_fail_ms && now_ms(c) < tc->refresh_fail_ms + 2000)
		return;
	tc->refreshing = true;
	g_async_queue_push(c->work, GINT_TO_POINTER(type + 1));
}

/* Look up a record, fetching it when missing or stale. Lock held on entry and
 * exit; on success *out points at the record (valid while the lock is held). */
static int lookup_locked(struct cache *c, int type, uint64_t id, int64_t deadline, struct rec **out)
{
	struct tcache *tc = &c->t[type];
	bool fetched = false;

	for (;;) {
		struct rec *r = g_hash_table_lookup(tc->recs, KEY(id));
		int64_t now = now_ms(c);
		gpointer exp;
		int rc;

		if (r && (fetched || rec_fresh(c, tc, r, now) || r->local_epoch)) {
			if (!fetched)
				c->hits++;
			rec_touch(c, r);
			*out = r;
			return 0;
		}
		if (r && c->opts.background && tc->sync_wall_ms) {
			/* Stale: serve it and refresh the whole type in the background
			 * (one search); changed records are invalidated when it lands. */
			kick_refresh(c, type);
			c->hits++;
			rec_touch(c, r);
			*out = r;
			return 0;
		}
		if (g_hash_table_contains(tc->gone, KEY(id)))
			return -ENOENT;
		if (!r) {
			if (fetched)
				return -ENOENT;
			exp = g_hash_table_lookup(tc->missing, KEY(id));
			if (exp && (int64_t)GPOINTER_TO_SIZE(exp) > now)
				return -ENOENT;
			/* A complete, fresh listing knows every record. */
			if (tc->listing && tc->listing->complete && listing_fresh(c, tc->listing, now) &&
			    !g_hash_table_contains(tc->wanted, KEY(id)))
				return -ENOENT;
		}
		c->misses++;
		rc = fetch_records(c, type, id, deadline);
		if (rc == 1)
			continue;
		if (rc < 0) {
			r = g_hash_table_lookup(tc->recs, KEY(id));
			if (r && rc != -ENOENT && rc != -EACCES) {
				*out = r; /* serve stale data rather than fail */
				return 0;
			}
			return rc;
		}
		fetched = true;
	}
}

int cache_record_stat(struct cache *c, int type, uint64_t id, int64_t deadline, struct rec_attr *a)
{
	struct rec *r;
	int rc;

	g_mutex_lock(&c->lock);
	rc = lookup_locked(c, type, id, deadline, &r);
	if (rc == 0) {
		a->size = r->len;
		a->mtime_ms = r->mtime_ms;
	}
	unlock_and_notify(c);
	return rc;
}

int cache_record_read(struct cache *c, int type, uint64_t id, uint64_t off, size_t size,
		      char *buf, size_t *n, int64_t deadline)
{
	struct rec *r;
	int rc;

	*n = 0;
	g_mutex_lock(&c->lock);
	rc = lookup_locked(c, type, id, deadline, &r);
	if (rc == 0 && off < r->len) {
		*n = MIN(size, r->len - off);
		memcpy(buf, r->text + off, *n);
	}
	unlock_and_notify(c);
	return rc;
}

int cache_record_text(struct cache *c, int type, uint64_t id, int64_t deadline,
		      char **text, size_t *len)
{
	struct rec *r;
	int rc;

	g_mutex_lock(&c->lock);
	rc = lookup_locked(c, type, id, deadline, &r);
	if (rc == 0) {
		*text = g_memdup2(r->text, r->len + 1);
		*len = r->len;
	}
	unlock_and_notify(c);
	return rc;
}

uint64_t cache_epoch(struct cache *c)
{
	uint64_t e;

	g_mutex_lock(&c->lock);
	e = c->epoch;
	g_mutex_unlock(&c->lock);
	return e;
}

/* Render an API object with the type's schema (which must be loaded). */
static int render_obj(struct cache *c, int type, json_object *obj, struct rendered *x)
{
	const struct schema *s;

	g_mutex_lock(&c->lock);
	s = c->t[type].schema; /* immutable once set */
	g_mutex_unlock(&c->lock);
	if (!s)
		return -EINVAL;
	return record_render(obj, s, &x->text, &x->len, &x->id, &x->mtime_ms);
}

int cache_store(struct cache *c, int type, json_object *obj, uint64_t epoch)
{
	struct rendered x;
	int rc;

	rc = render_obj(c, type, obj, &x);
	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	rc = store_locked(c, type, &x, epoch, now_ms(c));
	unlock_and_notify(c);
	return rc;
}

int cache_record_put_local(struct cache *c, int type, uint64_t id, const char *text, size_t len,
			   int64_t mtime_ms)
{
	cache_record_put_local_epoch(c, type, id, text, len, mtime_ms);
	return 0;
}

uint64_t cache_record_put_local_epoch(struct cache *c, int type, uint64_t id, const char *text,
				      size_t len, int64_t mtime_ms)
{
	uint64_t epoch;
	struct tcache *tc = &c->t[type];
	struct rec *r;

	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(tc->recs, KEY(id));
	if (!r) {
		r = g_new0(struct rec, 1);
		r->id = id;
		r->type = (uint8_t)type;
		r->lru.data = r;
		g_hash_table_insert(tc->recs, KEY(id), r);
		g_queue_push_head_link(&c->lru, &r->lru);
	} else {
		c->bytes -= r->len;
		g_free(r->text);
		rec_touch(c, r);
	}
	r->text = g_malloc(len + 1);
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	r->len = (uint32_t)len;
	r->mtime_ms = mtime_ms;
	r->fetched_ms = now_ms(c);
	r->local_epoch = epoch = ++c->epoch;
	c->bytes += len;
	g_hash_table_insert(tc->recent, KEY(id), GSIZE_TO_POINTER((gsize)c->opts.wall()));
	g_hash_table_remove(tc->wanted, KEY(id));
	g_hash_table_remove(tc->missing, KEY(id));
	note_changed(c, type, id);
	evict(c, r);
	unlock_and_notify(c);
	return epoch;
}

int cache_land(struct cache *c, int type, json_object *obj, uint64_t sent_epoch)
{
	struct rendered x;
	struct rec *r;
	int rc;

	rc = render_obj(c, type, obj, &x);
	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type].recs, KEY(x.id));
	if (r && r->local_epoch > sent_epoch) {
		g_free(x.text);
		rc = 1;
	} else {
		if (r)
			r->local_epoch = 0;
		/* Our own write: the server's version replaces the local rendering
		 * even when its updatedAt equals what we showed. */
		if (r)
			r->mtime_ms = INT64_MIN;
		rc = store_locked(c, type, &x, c->epoch, now_ms(c));
	}
	unlock_and_notify(c);
	return rc;
}

uint64_t cache_record_local_epoch(struct cache *c, int type, uint64_t id)
{
	struct rec *r;
	uint64_t e = 0;

	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type].recs, KEY(id));
	if (r)
		e = r->local_epoch;
	g_mutex_unlock(&c->lock);
	return e;
}

void cache_record_forget(struct cache *c, int type, uint64_t id)
{
	struct rec *r;

	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type].recs, KEY(id));
	if (r) {
		rec_remove(c, r);
		note_changed(c, type, id);
	}
	g_hash_table_remove(c->t[type].wanted, KEY(id));
	unlock_and_notify(c);
}

/* --- listings --------------------------------------------------------- */

struct listing *cache_listing_open(struct cache *c, int type)
{
	struct tcache *tc = &c->t[type];
	struct listing *l;

	g_mutex_lock(&c->lock);
	if (c->opts.background && type_stale(c, tc, now_ms(c)))
		kick_refresh(c, type);
	if (c->work && tc->listing && tc->listing->complete && !tc->listing->err &&
	    !listing_fresh(c, tc->listing, now_ms(c))) {
		/* Relist due: keep serving this one, relist behind it. */
		kick_relist(c, type);
	} else if (!listing_fresh(c, tc->listing, now_ms(c))) {
		l = g_new0(struct listing, 1);
		l->type = type;
		l->refs = 1; /* the type's reference */
		l->ids = g_array_new(FALSE, FALSE, sizeof(struct lent));
		l->started_ms = now_ms(c);
		l->started_wall = c->opts.wall();
		listing_unref(tc->listing);
		tc->listing = l;
	}
	l = tc->listing;
	l->refs++;
	g_mutex_unlock(&c->lock);
	return l;
}

void cache_listing_close(struct cache *c, struct listing *l)
{
	if (!l)
		return;
	g_mutex_lock(&c->lock);
	listing_unref(l);
	g_mutex_unlock(&c->lock);
}

/* A complete, error-free listing is the only thing allowed to remove records:
 * drop clean records it did not contain that were fetched before it started. */
static void listing_prune(struct cache *c, struct listing *l)
{
	struct tcache *tc = &c->t[l->type];
	GHashTable *in = g_hash_table_new(g_direct_hash, g_direct_equal);
	GHashTableIter it;
	gpointer k, v;

	for (guint i = 0; i < l->ids->len; i++)
		g_hash_table_add(in, KEY(g_array_index(l->ids, struct lent, i).id));
	g_hash_table_iter_init(&it, tc->recs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct rec *r = v;

		if (g_hash_table_contains(in, k) || r->local_epoch || r->fetched_ms >= l->started_ms)
			continue;
		g_hash_table_iter_steal(&it);
		g_queue_unlink(&c->lru, &r->lru);
		c->bytes -= r->len;
		note_changed(c, l->type, r->id);
		rec_free(r);
	}
	g_hash_table_iter_init(&it, tc->wanted);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(in, k))
			g_hash_table_iter_remove(&it);
	g_hash_table_destroy(in);
}

/* Fetch the next page of listing l. Lock held on entry and exit (dropped for
 * the HTTP call); l->fetching guards against two fetchers. */
static int fetch_page(struct cache *c, struct listing *l, enum rl_prio prio, int64_t deadline)
{
	struct tcache *tc = &c->t[l->type];
	json_object *resp = NULL, *results = NULL, *paging, *next, *after;
	struct hs_call call;
	GArray *got = NULL;
	uint64_t epoch;
	char *cursor;
	int rc;

	rc = ensure_schema(c, l->type, deadline);
	if (rc)
		return rc;
	l->fetching = true;
	cursor = g_strdup(l->after);
	epoch = c->epoch;
	g_mutex_unlock(&c->lock);

	call_init(&call, prio, deadline);
	rc = hs_list_page(c->hc, &call, objtype_name(l->type), schema_props_csv(tc->schema),
			  cursor, false, &resp);
	g_free(cursor);
	if (rc == 0 && json_object_object_get_ex(resp, "results", &results))
		got = render_results(results, tc->schema);
	else if (rc)
		log_warn("listing %s: %s", objtype_name(l->type), call.err.message);

	g_mutex_lock(&c->lock);
	l->fetching = false;
	g_cond_broadcast(&c->cond);
	if (rc) {
		/* A timeout of this reader is not a failure of the listing. */
		if (rc != -EAGAIN)
			l->err = rc;
		json_object_put(resp);
		return rc;
	}
	for (guint j = 0; got && j < got->len; j++) {
		struct rendered *x = &g_array_index(got, struct rendered, j);
		struct lent e = { x->id, x->len, x->mtime_ms };

		if (g_hash_table_contains(tc->gone, KEY(e.id))) {
			g_free(x->text); /* archived here, not yet there */
			continue;
		}
		g_array_append_val(l->ids, e);
		store_locked(c, l->type, x, epoch, now_ms(c));
	}
	if (got)
		g_array_free(got, TRUE);
	g_free(l->after);
	l->after = NULL;
	if (json_object_object_get_ex(resp, "paging", &paging) &&
	    json_object_object_get_ex(paging, "next", &next) &&
	    json_object_object_get_ex(next, "after", &after)) {
		l->after = g_strdup(record_jstr(after));
	}
	if (!l->after || !*l->after) { /* no (usable) cursor: the last page */
		l->complete = true;
		l->completed_ms = now_ms(c);
	}
	json_object_put(resp);
	return 0;
}

/* A listing just completed: it becomes the type's listing (if it is not
 * already), the type is synced as of its start, and records it did not
 * contain are pruned. Lock held. */
static void listing_install(struct cache *c, struct listing *l)
{
	struct tcache *tc = &c->t[l->type];

	if (tc->listing != l) {
		l->refs++;
		listing_unref(tc->listing);
		tc->listing = l;
	}
	if (l->started_wall >= tc->sync_wall_ms) {
		tc->synced_ms = l->started_ms;
		tc->sync_wall_ms = l->started_wall;
	}
	listing_prune(c, l);
}

int cache_listing_entry(struct cache *c, struct listing *l, size_t i, int64_t deadline,
			uint64_t *id, struct rec_attr *a)
{
	struct tcache *tc = &c->t[l->type];
	int rc = 0;

	g_mutex_lock(&c->lock);
	for (;;) {
		if (i < l->ids->len) {
			struct lent *e = &g_array_index(l->ids, struct lent, i);
			struct rec *r;

			*id = e->id;
			if (!a)
				break;
			r = g_hash_table_lookup(tc->recs, KEY(*id));
			if (r) {
				a->size = r->len;
				a->mtime_ms = r->mtime_ms;
				break;
			}
			if (listing_fresh(c, l, now_ms(c))) {
				a->size = e->size; /* evicted: the page's attributes */
				a->mtime_ms = e->mtime_ms;
				break;
			}
			rc = lookup_locked(c, l->type, *id, deadline, &r);
			if (rc == 0) {
				a->size = r->len;
				a->mtime_ms = r->mtime_ms;
			}
			break;
		}
		if (l->complete) {
			rc = 1;
			break;
		}
		if (l->err) {
			rc = l->err;
			break;
		}
		if (l->fetching) {
			if (!wait_until(c, deadline)) {
				rc = -EAGAIN;
				break;
			}
			continue;
		}
		rc = fetch_page(c, l, RL_PRIO_USER, deadline);
		if (rc)
			break;
		if (l->complete && tc->listing == l)
			listing_install(c, l);
	}
	unlock_and_notify(c);
	return rc;
}

/* The periodic relist, in the background: a new listing is fetched whole
 * and installed only if complete and error-free; until then, and if it fails,
 * the previous listing stays (a failed relist removes nothing). */
static void relist(struct cache *c, int type)
{
	struct tcache *tc = &c->t[type];
	struct listing *l = g_new0(struct listing, 1);
	int rc = 0;

	l->type = type;
	l->refs = 1;
	l->ids = g_array_new(FALSE, FALSE, sizeof(struct lent));
	g_mutex_lock(&c->lock);
	l->started_ms = now_ms(c);
	l->started_wall = c->opts.wall();
	while (rc == 0 && !l->complete)
		rc = fetch_page(c, l, RL_PRIO_BACKGROUND, hs_now_ms() + 120000);
	tc->relisting = false;
	if (rc == 0)
		listing_install(c, l);
	else
		tc->relist_fail_ms = now_ms(c);
	listing_unref(l);
	log_debug("relist of %s: %s", objtype_name(type), rc ? "failed, previous listing kept" : "done");
	unlock_and_notify(c);
}

void cache_listing_note(struct cache *c, int type, uint64_t id, bool add)
{
	struct listing *l;

	g_mutex_lock(&c->lock);
	l = c->t[type].listing;
	if (l) {
		guint i;

		for (i = 0; i < l->ids->len; i++)
			if (g_array_index(l->ids, struct lent, i).id == id)
				break;
		if (add && i == l->ids->len) {
			struct rec *r = g_hash_table_lookup(c->t[type].recs, KEY(id));
			struct lent e = { id, r ? r->len : 0, r ? r->mtime_ms : 0 };

			g_array_append_val(l->ids, e);
		}
		if (add && !g_hash_table_contains(c->t[type].recs, KEY(id)))
			g_hash_table_add(c->t[type].wanted, KEY(id));
		else if (!add && i < l->ids->len)
			g_array_remove_index(l->ids, i);
	}
	if (add) {
		g_hash_table_remove(c->t[type].missing, KEY(id));
		g_hash_table_remove(c->t[type].gone, KEY(id));
	} else {
		g_hash_table_add(c->t[type].gone, KEY(id));
	}
	g_hash_table_insert(c->t[type].recent, KEY(id), GSIZE_TO_POINTER((gsize)c->opts.wall()));
	if (add && !l && !g_hash_table_contains(c->t[type].recs, KEY(id)))
		g_hash_table_add(c->t[type].wanted, KEY(id));
	if (!add) {
		struct rec *r = g_hash_table_lookup(c->t[type].recs, KEY(id));

		if (r)
			rec_remove(c, r);
		g_hash_table_remove(c->t[type].wanted, KEY(id));
		g_hash_table_insert(c->t[type].missing, KEY(id),
				    GSIZE_TO_POINTER(now_ms(c) + c->opts.ttl_ms));
		note_changed(c, type, id);
	}
	unlock_and_notify(c);
}

/* --- associations ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool assoc_fresh(struct cache *c, struct assoc *e, int64_t now)
{
	return e && now < e->fetched_ms + c->opts.ttl_ms;
}

/* v4 batch/read of the `to` associations of ids (n <= 1000), following per-id
 * paging. Fills acc: id -> GArray of uint64. No lock held. */
static int assoc_fetch(struct cache *c, int from, int to, char **ids, size_t n, int64_t deadline,
		       GHashTable *acc)
{
	char **afters = g_new0(char *, n);
	char **cur_ids = g_new0(char *, n);
	size_t m = n;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		cur_ids[i] = g_strdup(ids[i]);
	while (m && rc == 0) {
		json_object *resp = NULL, *results;
		struct hs_call call;
		size_t next_m = 0;

		call_init(&call, RL_PRIO_USER, deadline);
		rc = hs_assoc_batch_read(c->hc, &call, objtype_name(from), objtype_name(to),
					 (const char *const *)cur_ids, (const char *const *)afters, m, &resp);
		for (size_t i = 0; i < m; i++) {
			g_free(afters[i]);
			afters[i] = NULL;
		}
		if (rc == 0 && json_object_object_get_ex(resp, "results", &results)) {
			size_t nr = record_jarray_len(results);

			for (size_t i = 0; i < nr; i++) {
				json_object *res = json_object_array_get_idx(results, i), *jf, *jfid, *jto;
				json_object *paging, *next, *after;
				GArray *arr;
				uint64_t fid;

				if (!json_object_object_get_ex(res, "from", &jf) ||
				    !json_object_object_get_ex(jf, "id", &jfid))
					continue;
				fid = g_ascii_strtoull(record_jstr(jfid), NULL, 10);
				arr = g_hash_table_lookup(acc, KEY(fid));
				if (!arr)
					continue;
				if (json_object_object_get_ex(res, "to", &jto)) {
					size_t nt = record_jarray_len(jto);

					for (size_t j = 0; j < nt; j++) {
						json_object *x = json_object_array_get_idx(jto, j), *tid;
						uint64_t v;

						if (json_object_object_get_ex(x, "toObjectId", &tid) &&
						    record_parse_id(record_jstr(tid), strlen(record_jstr(tid)), &v) == 0)
							g_array_append_val(arr, v);
					}
				}
				if (json_object_object_get_ex(res, "paging", &paging) &&
				    json_object_object_get_ex(paging, "next", &next) &&
				    json_object_object_get_ex(next, "after", &after) && next_m < n) {
					g_free(cur_ids[next_m]);
					cur_ids[next_m] = g_strdup(record_jstr(jfid));
					afters[next_m] = g_strdup(record_jstr(after));
					next_m++;
				}
			}
		}
		json_object_put(resp);
		m = next_m;
	}
	for (size_t i = 0; i < n; i++) {
		g_free(afters[i]);
		g_free(cur_ids[i]);
	}
	g_free(afters);
	g_free(cur_ids);
	return rc;
}

int cache_assoc_list(struct cache *c, int from, uint64_t id, int to, int64_t deadline,
		     uint64_t **ids, size_t *n)
{
	struct tcache *tc = &c->t[from], *ttc = &c->t[to];
	GHashTable *table = tc->assoc[to], *inflight = tc->assoc_inflight[to];
	int rc = 0;

	g_mutex_lock(&c->lock);
	for (;;) {
		struct assoc *e = g_hash_table_lookup(table, KEY(id));
		int64_t now = now_ms(c);
		GHashTable *acc;
		GPtrArray *want;
		GHashTableIter it;
		gpointer k, v;

		if (assoc_fresh(c, e, now)) {
			c->hits++;
			*ids = g_memdup2(e->ids, MAX(e->n, 1) * sizeof(uint64_t));
			*n = e->n;
			break;
		}
		if (g_hash_table_contains(inflight, KEY(id))) {
			if (!wait_until(c, deadline)) {
				rc = -EAGAIN;
				break;
			}
			continue;
		}
		c->misses++;
		/* Take along up to 999 listed or cached neighbours without fresh data. */
		want = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(want, g_strdup_printf("%" G_GUINT64_FORMAT, id));
		g_hash_table_add(inflight, KEY(id));
		if (tc->listing) {
			for (guint i = 0; i < tc->listing->ids->len && want->len < 1000; i++) {
				uint64_t x = g_array_index(tc->listing->ids, struct lent, i).id;

				if (x == id || g_hash_table_contains(inflight, KEY(x)) ||
				    assoc_fresh(c, g_hash_table_lookup(table, KEY(x)), now))
					continue;
				g_ptr_array_add(want, g_strdup_printf("%" G_GUINT64_FORMAT, x));
				g_hash_table_add(inflight, KEY(x));
			}
		}
		g_hash_table_iter_init(&it, tc->recs);
		while (want->len < 1000 && g_hash_table_iter_next(&it, &k, NULL)) {
			if (g_hash_table_contains(inflight, k) ||
			    assoc_fresh(c, g_hash_table_lookup(table, k), now))
				continue;
			g_ptr_array_add(want, g_strdup_printf("%" G_GUINT64_FORMAT, UNKEY(k)));
			g_hash_table_add(inflight, k);
		}
		acc = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					    (GDestroyNotify)g_array_unref);
		for (guint i = 0; i < want->len; i++)
			g_hash_table_insert(acc, KEY(g_ascii_strtoull(want->pdata[i], NULL, 10)),
					    g_array_new(FALSE, FALSE, sizeof(uint64_t)));
		g_mutex_unlock(&c->lock);

		rc = assoc_fetch(c, from, to, (char **)want->pdata, want->len, deadline, acc);

		g_mutex_lock(&c->lock);
		now = now_ms(c);
		g_hash_table_iter_init(&it, acc);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			GArray *arr = v;

			g_hash_table_remove(inflight, k);
			if (rc)
				continue;
			e = g_new0(struct assoc, 1);
			if (arr->len > 1)
				qsort(arr->data, arr->len, sizeof(uint64_t), cmp_u64);
			e->n = arr->len;
			e->ids = g_new0(uint64_t, MAX(arr->len, 1));
			if (arr->len)
				memcpy(e->ids, arr->data, arr->len * sizeof(uint64_t));
			e->fetched_ms = now;
			g_hash_table_replace(table, k, e);
			/* Targets are known to exist: a miss on one fetches its neighbours too. */
			for (guint j = 0; j < arr->len; j++) {
				uint64_t x = g_array_index(arr, uint64_t, j);

				if (!g_hash_table_contains(ttc->recs, KEY(x)))
					g_hash_table_add(ttc->wanted, KEY(x));
			}
		}
		g_hash_table_destroy(acc);
		g_ptr_array_free(want, TRUE);
		g_cond_broadcast(&c->cond);
		if (rc) {
			e = g_hash_table_lookup(table, KEY(id));
			if (e && rc != -ENOENT) { /* serve stale rather than fail */
				*ids = g_memdup2(e->ids, MAX(e->n, 1) * sizeof(uint64_t));
				*n = e->n;
				rc = 0;
			}
			break;
		}
	}
	g_mutex_unlock(&c->lock);
	return rc;
}

static void assoc_edit(struct assoc *e, uint64_t x, bool add)
{
	size_t i;

	for (i = 0; i < e->n && e->ids[i] < x; i++)
		;
	if (add && (i == e->n || e->ids[i] != x)) {
		e->ids = g_realloc(e->ids, (e->n + 1) * sizeof(uint64_t));
		memmove(e->ids + i + 1, e->ids + i, (e->n - i) * sizeof(uint64_t));
		e->ids[i] = x;
		e->n++;
	} else if (!add && i < e->n && e->ids[i] == x) {
		memmove(e->ids + i, e->ids + i + 1, (e->n - i - 1) * sizeof(uint64_t));
		e->n--;
	}
}

void cache_assoc_note(struct cache *c, int from, uint64_t id, int to, uint64_t to_id, bool add)
{
	struct assoc *e;

	g_mutex_lock(&c->lock);
	/* Only lists we hold are edited; a list fetched later includes the change. */
	e = g_hash_table_lookup(c->t[from].assoc[to], KEY(id));
	if (e)
		assoc_edit(e, to_id, add);
	e = g_hash_table_lookup(c->t[to].assoc[from], KEY(to_id));
	if (e)
		assoc_edit(e, id, add);
	g_mutex_unlock(&c->lock);
}

/* --- pipelines and owners --------------------------------------------- */

static char *pretty(json_object *o, size_t *len)
{
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *s = g_strconcat(t, "\n", NULL);

	*len = strlen(s);
	return s;
}

int cache_pipelines_text(struct cache *c, int type, int64_t deadline, char **text, size_t *len)
{
	struct tcache *tc = &c->t[type];
	json_object *resp = NULL, *results;
	struct hs_call call;
	char *s = NULL;
	size_t slen = 0;
	int rc = 0;

	g_mutex_lock(&c->lock);
	if (!tc->pipelines) {
		g_mutex_unlock(&c->lock);
		call_init(&call, RL_PRIO_USER, deadline);
		rc = hs_pipelines(c->hc, &call, objtype_name(type), &resp);
		if (rc == 0) {
			if (!json_object_object_get_ex(resp, "results", &results))
				results = resp;
			s = pretty(results, &slen);
		}
		json_object_put(resp);
		g_mutex_lock(&c->lock);
		if (s && !tc->pipelines) {
			tc->pipelines = s;
			tc->pipelines_len = slen;
		} else {
			g_free(s);
		}
	}
	if (tc->pipelines) {
		*text = g_memdup2(tc->pipelines, tc->pipelines_len + 1);
		*len = tc->pipelines_len;
		rc = 0;
	}
	g_mutex_unlock(&c->lock);
	return rc;
}

static int owners_load(struct cache *c, int64_t deadline)
{
	GHashTable *owners;
	char *after = NULL;
	int rc = 0;

	g_mutex_lock(&c->lock);
	while (!c->owners && c->owners_fetching) {
		if (!wait_until(c, deadline)) {
			g_mutex_unlock(&c->lock);
			return -EAGAIN;
		}
	}
	if (c->owners) {
		g_mutex_unlock(&c->lock);
		return 0;
	}
	c->owners_fetching = true;
	g_mutex_unlock(&c->lock);

	owners = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	do {
		json_object *resp = NULL, *results, *paging, *next, *jafter;
		struct hs_call call;

		call_init(&call, RL_PRIO_USER, deadline);
		rc = hs_owners_page(c->hc, &call, after, &resp);
		g_free(after);
		after = NULL;
		if (rc == 0 && json_object_object_get_ex(resp, "results", &results)) {
			for (size_t i = 0; i < record_jarray_len(results); i++) {
				json_object *o = json_object_array_get_idx(results, i), *jid;
				uint64_t id;
				size_t l;

				if (json_object_object_get_ex(o, "id", &jid) &&
				    record_parse_id(record_jstr(jid), strlen(record_jstr(jid)), &id) == 0)
					g_hash_table_insert(owners, KEY(id), pretty(o, &l));
			}
			if (json_object_object_get_ex(resp, "paging", &paging) &&
			    json_object_object_get_ex(paging, "next", &next) &&
			    json_object_object_get_ex(next, "after", &jafter))
				after = *record_jstr(jafter) ? g_strdup(record_jstr(jafter)) : NULL;
		}
		json_object_put(resp);
	} while (rc == 0 && after);
	g_free(after);

	g_mutex_lock(&c->lock);
	c->owners_fetching = false;
	if (rc == 0)
		c->owners = owners;
	else
		g_hash_table_destroy(owners);
	g_cond_broadcast(&c->cond);
	g_mutex_unlock(&c->lock);
	return rc;
}

int cache_owner_ids(struct cache *c, int64_t deadline, uint64_t **ids, size_t *n)
{
	GHashTableIter it;
	gpointer k;
	size_t i = 0;
	int rc = owners_load(c, deadline);

	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	*n = g_hash_table_size(c->owners);
	*ids = g_new(uint64_t, MAX(*n, 1));
	g_hash_table_iter_init(&it, c->owners);
	while (g_hash_table_iter_next(&it, &k, NULL))
		(*ids)[i++] = UNKEY(k);
	g_mutex_unlock(&c->lock);
	qsort(*ids, *n, sizeof(uint64_t), cmp_u64);
	return 0;
}

int cache_owner_text(struct cache *c, uint64_t id, int64_t deadline, char **text, size_t *len)
{
	const char *s;
	int rc = owners_load(c, deadline);

	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	s = g_hash_table_lookup(c->owners, KEY(id));
	if (s) {
		*len = strlen(s);
		*text = g_memdup2(s, *len + 1);
	} else {
		rc = -ENOENT;
	}
	g_mutex_unlock(&c->lock);
	return rc;
}

void cache_expire(struct cache *c)
{
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&c->lock);
	for (int t = 0; t < OT_COUNT; t++) {
		struct tcache *tc = &c->t[t];

		tc->synced_ms = 0;
		if (tc->listing && tc->listing->complete)
			tc->listing->completed_ms = INT64_MIN / 2;
		g_hash_table_iter_init(&it, tc->recs);
		while (g_hash_table_iter_next(&it, NULL, &v))
			((struct rec *)v)->fetched_ms = INT64_MIN / 2;
		for (int u = 0; u < OT_COUNT; u++) {
			g_hash_table_iter_init(&it, tc->assoc[u]);
			while (g_hash_table_iter_next(&it, NULL, &v))
				((struct assoc *)v)->fetched_ms = INT64_MIN / 2;
		}
	}
	g_mutex_unlock(&c->lock);
}

/* --- incremental refresh ------------------------------------------------ */

static json_object *refresh_request(const char *lastmod, int64_t lower, const struct schema *sc,
				    const char *after)
{
	json_object *req = json_object_new_object(), *groups = json_object_new_array();
	json_object *group = json_object_new_object(), *filters = json_object_new_array();
	json_object *f = json_object_new_object(), *sorts = json_object_new_array();
	json_object *sort = json_object_new_object(), *props = json_object_new_array();
	char buf[32];

	snprintf(buf, sizeof(buf), "%" G_GINT64_FORMAT, lower);
	json_object_object_add(f, "propertyName", json_object_new_string(lastmod));
	json_object_object_add(f, "operator", json_object_new_string("GTE"));
	json_object_object_add(f, "value", json_object_new_string(buf));
	json_object_array_add(filters, f);
	json_object_object_add(group, "filters", filters);
	json_object_array_add(groups, group);
	json_object_object_add(req, "filterGroups", groups);
	json_object_object_add(sort, "propertyName", json_object_new_string(lastmod));
	json_object_object_add(sort, "direction", json_object_new_string("ASCENDING"));
	json_object_array_add(sorts, sort);
	json_object_object_add(req, "sorts", sorts);
	for (size_t i = 0; i < schema_shown_count(sc); i++)
		json_object_array_add(props, json_object_new_string(schema_shown(sc, i)));
	json_object_object_add(req, "properties", props);
	json_object_object_add(req, "limit", json_object_new_int(200));
	if (after)
		json_object_object_add(req, "after", json_object_new_string(after));
	return req;
}

/* Whether id is in listing l (linear: only for records new to the listing). */
static bool listing_has(struct listing *l, uint64_t id)
{
	for (guint i = 0; i < l->ids->len; i++)
		if (g_array_index(l->ids, struct lent, i).id == id)
			return true;
	return false;
}

int cache_refresh(struct cache *c, int type, enum rl_prio prio, int64_t deadline)
{
	struct tcache *tc = &c->t[type];
	const char *lastmod = objtype_lastmod_prop(type);
	int64_t lower, start_wall, start_mono, last_ts;
	char *after = NULL;
	uint64_t epoch;
	int rc = 0, pages = 0;

	g_mutex_lock(&c->lock);
	if (!tc->sync_wall_ms) {
		tc->refreshing = false;
		g_mutex_unlock(&c->lock);
		return 0; /* nothing of this type was ever fetched */
	}
	rc = ensure_schema(c, type, deadline);
	if (rc) {
		tc->refreshing = false;
		g_mutex_unlock(&c->lock);
		return rc;
	}
	/* Everything changed since the last sync, less the indexing delay (a change
	 * made just before it may not have been searchable yet), less a second. */
	lower = tc->sync_wall_ms - c->opts.index_delay_ms - 1000;
	start_wall = c->opts.wall();
	start_mono = now_ms(c);
	epoch = c->epoch;
	g_mutex_unlock(&c->lock);
	last_ts = lower;

	for (;;) {
		json_object *req = refresh_request(lastmod, lower, tc->schema, after);
		json_object *resp = NULL, *results = NULL, *paging, *next, *jafter;
		struct hs_call call;
		GArray *got = NULL;

		call_init(&call, prio, deadline);
		rc = hs_search(c->hc, &call, objtype_name(type), req, &resp);
		json_object_put(req);
		pages++;
		if (rc) {
			log_info("refresh of %s: %s", objtype_name(type), call.err.message);
			json_object_put(resp);
			break;
		}
		if (json_object_object_get_ex(resp, "results", &results))
			got = render_results(results, tc->schema);
		g_mutex_lock(&c->lock);
		for (guint j = 0; got && j < got->len; j++) {
			struct rendered *x = &g_array_index(got, struct rendered, j);
			struct lent e = { x->id, x->len, x->mtime_ms };

			if (x->mtime_ms > last_ts)
				last_ts = x->mtime_ms;
			if (g_hash_table_contains(tc->gone, KEY(e.id))) {
				g_free(x->text);
				continue;
			}
			/* Created elsewhere: a complete listing learns of it here. */
			if (tc->listing && tc->listing->complete &&
			    !g_hash_table_contains(tc->recs, KEY(e.id)) && !listing_has(tc->listing, e.id))
				g_array_append_val(tc->listing->ids, e);
			g_hash_table_remove(tc->missing, KEY(e.id));
			store_locked(c, type, x, epoch, now_ms(c));
		}
		g_mutex_unlock(&c->lock);
		if (got)
			g_array_free(got, TRUE);
		g_free(after);
		after = NULL;
		if (json_object_object_get_ex(resp, "paging", &paging) &&
		    json_object_object_get_ex(paging, "next", &next) &&
		    json_object_object_get_ex(next, "after", &jafter)) {
			const char *a = record_jstr(jafter);

			if (!*a) {
				json_object_put(resp);
				break;
			}

			if (g_ascii_strtoll(a, NULL, 10) + 200 > 10000) {
				/* Search stops at 10,000 results: start a new window at the
				 * last timestamp seen (records are re-read, harmlessly). */
				if (last_ts <= lower) {
					log_warn("refresh of %s: over 10,000 records share one timestamp; "
						 "relisting instead", objtype_name(type));
					json_object_put(resp);
					rc = -EIO;
					break;
				}
				lower = last_ts;
			} else {
				after = g_strdup(a);
			}
			json_object_put(resp);
			continue;
		}
		json_object_put(resp);
		break;
	}
	g_free(after);

	g_mutex_lock(&c->lock);
	tc->refreshing = false;
	if (rc == 0) {
		tc->synced_ms = start_mono;
		tc->sync_wall_ms = start_wall;
		tc->refresh_fail_ms = 0;
	} else {
		tc->refresh_fail_ms = now_ms(c);
		if (rc == -EIO && tc->listing && tc->listing->complete)
			tc->listing->completed_ms = INT64_MIN / 2; /* relist */
	}
	g_cond_broadcast(&c->cond);
	log_debug("refresh of %s: %d page(s), rc %d", objtype_name(type), pages, rc);
	unlock_and_notify(c);
	return rc;
}

static gpointer worker_main(gpointer p)
{
	struct cache *c = p;

	for (;;) {
		gpointer v = g_async_queue_pop(c->work);
		int type;

		if (v == WORK_STOP)
			break;
		type = GPOINTER_TO_INT(v) - 1;
		if (type >= WORK_RELIST)
			relist(c, type - WORK_RELIST);
		else
			cache_refresh(c, type, RL_PRIO_BACKGROUND, hs_now_ms() + 120000);
	}
	return NULL;
}

void cache_refresh_async(struct cache *c, int type)
{
	g_mutex_lock(&c->lock);
	for (int t = 0; t < OT_COUNT; t++)
		if (type < 0 || t == type)
			kick_refresh(c, t);
	g_mutex_unlock(&c->lock);
}

void cache_recent_local(struct cache *c, int type, int64_t since, uint64_t **ids, size_t *n)
{
	GHashTableIter it;
	gpointer k, v;
	GArray *a = g_array_new(FALSE, FALSE, sizeof(uint64_t));

	g_mutex_lock(&c->lock);
	g_hash_table_iter_init(&it, c->t[type].recent);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		uint64_t id = UNKEY(k);

		if ((int64_t)GPOINTER_TO_SIZE(v) >= since)
			g_array_append_val(a, id);
	}
	g_mutex_unlock(&c->lock);
	*n = a->len;
	*ids = (uint64_t *)(void *)g_array_free(a, FALSE);
}

bool cache_record_gone(struct cache *c, int type, uint64_t id)
{
	bool g;

	g_mutex_lock(&c->lock);
	g = g_hash_table_contains(c->t[type].gone, KEY(id));
	g_mutex_unlock(&c->lock);
	return g;
}

/* --- status ------------------------------------------------------------- */

void cache_stats(struct cache *c, json_object *obj)
{
	json_object *jc = json_object_new_object(), *types = json_object_new_object();
	size_t records = 0;
	int64_t now;

	g_mutex_lock(&c->lock);
	now = now_ms(c);
	for (int t = 0; t < OT_COUNT; t++) {
		struct tcache *tc = &c->t[t];
		struct listing *l = tc->listing;
		json_object *jt = json_object_new_object();

		records += g_hash_table_size(tc->recs);
		json_object_object_add(jt, "cached", json_object_new_int64(g_hash_table_size(tc->recs)));
		json_object_object_add(jt, "listed", json_object_new_int64(l ? l->ids->len : 0));
		json_object_object_add(jt, "listing_complete", json_object_new_boolean(l && l->complete));
		json_object_object_add(jt, "listing_in_progress",
				       json_object_new_boolean(l && !l->complete && !l->err && l->ids->len));
		json_object_object_add(jt, "last_refresh_age_s",
				       tc->sync_wall_ms ? json_object_new_double((double)(now - tc->synced_ms) / 1000)
							: NULL);
		json_object_object_add(jt, "stale", json_object_new_boolean(type_stale(c, tc, now)));
		json_object_object_add(jt, "refreshing", json_object_new_boolean(tc->refreshing));
		json_object_object_add(jt, "last_refresh_failed", json_object_new_boolean(tc->refresh_fail_ms != 0));
		json_object_object_add(types, objtype_name(t), jt);
	}
	json_object_object_add(jc, "records", json_object_new_int64((int64_t)records));
	json_object_object_add(jc, "bytes", json_object_new_int64((int64_t)c->bytes));
	json_object_object_add(jc, "max_bytes", json_object_new_int64((int64_t)c->opts.max_bytes));
	json_object_object_add(jc, "hits", json_object_new_int64((int64_t)c->hits));
	json_object_object_add(jc, "misses", json_object_new_int64((int64_t)c->misses));
	json_object_object_add(jc, "hit_rate", json_object_new_double(
		c->hits + c->misses ? (double)c->hits / (double)(c->hits + c->misses) : 0.0));
	g_mutex_unlock(&c->lock);
	json_object_object_add(obj, "cache", jc);
	json_object_object_add(obj, "types", types);
}
