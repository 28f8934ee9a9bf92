/* cache_rec.c - records: lookups that serve a fresh record (or, with
 * background refresh, a stale one) and fetch a missing one with one batch/read
 * of up to 100 records of its type; local writes and landed writes, which go
 * through the write-epoch guard.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/record.h"
#include "client/log.h"

/* --- records ----------------------------------------------------------- */

#define BATCH_READ_MAX 100

/* The ids of one batch/read: want first, then known-but-uncached and stale
 * records of the type not already being read, up to BATCH_READ_MAX; all
 * marked in flight. Lock held. */
static size_t batch_pick(struct cache *c, struct tcache *tc, uint64_t want, int64_t now,
			 uint64_t *ids)
{
	GHashTableIter it;
	gpointer k, v;
	size_t n = 0;

	ids[n++] = want;
	g_hash_table_iter_init(&it, tc->wanted);
	while (n < BATCH_READ_MAX && g_hash_table_iter_next(&it, &k, NULL))
		if (UNKEY(k) != want && !g_hash_table_contains(tc->inflight, k))
			ids[n++] = UNKEY(k);
	g_hash_table_iter_init(&it, tc->recs);
	while (n < BATCH_READ_MAX && g_hash_table_iter_next(&it, &k, &v))
		if (UNKEY(k) != want && !cache_rec_fresh(c, tc, v, now) &&
		    !g_hash_table_contains(tc->inflight, k))
			ids[n++] = UNKEY(k);
	for (size_t i = 0; i < n; i++)
		g_hash_table_add(tc->inflight, KEY(ids[i]));
	return n;
}

/* One batch/read of ids with every shown property, rendered (*got: struct
 * rendered, NULL on failure). No lock held. */
static int batch_read(struct cache *c, const struct objtype *type, const struct schema *s,
		      const uint64_t *ids, size_t n, int64_t deadline, GArray **got)
{
	char idbuf[BATCH_READ_MAX][24];
	const char *idp[BATCH_READ_MAX];
	size_t np = schema_shown_count(s);
	const char **props = g_new(const char *, MAX(np, 1));
	json_object *resp = NULL, *results;
	struct hs_call call;
	int rc;

	*got = NULL;
	for (size_t i = 0; i < n; i++) {
		snprintf(idbuf[i], sizeof(idbuf[i]), "%" G_GUINT64_FORMAT, ids[i]);
		idp[i] = idbuf[i];
	}
	for (size_t i = 0; i < np; i++)
		props[i] = schema_shown(s, i);
	cache_call_init(&call, RL_PRIO_USER, deadline);
	rc = cache_deny(c, type, &call, hs_batch_read(c->hc, &call, type->path, idp, n, props, np,
						       &resp));
	g_free(props);
	if (rc == 0 && json_object_object_get_ex(resp, "results", &results))
		*got = cache_render_results(results, s);
	else if (rc)
		log_info("batch read of %zu %s: %d %s", n, type->name, rc, call.err.message);
	json_object_put(resp);
	return rc;
}

/* Store what a batch/read found, and forget what it did not: not in
 * HubSpot (any more), so missing for a ttl, and a relist finds what else was
 * archived. want goes in last, so that a tight budget evicts its neighbours
 * rather than it. Takes over got's texts. Lock held. */
static void batch_store(struct cache *c, const struct objtype *type, uint64_t want,
			const uint64_t *ids, size_t n, GArray *got, uint64_t epoch)
{
	struct tcache *tc = &c->t[type->idx];
	GHashTable *found = g_hash_table_new(g_direct_hash, g_direct_equal);
	int64_t now = cache_now_ms(c);

	for (int pass = 0; pass < 2; pass++)
		for (guint i = 0; i < got->len; i++) {
			struct rendered *x = &g_array_index(got, struct rendered, i);

			if ((x->id == want) != (pass == 1))
				continue;
			g_hash_table_add(found, KEY(x->id));
			cache_store_locked(c, type, x, epoch, now);
		}
	for (size_t i = 0; i < n; i++) {
		struct rec *r;

		if (g_hash_table_contains(found, KEY(ids[i])))
			continue;
		cache_kick_relist(c, type);
		g_hash_table_remove(tc->wanted, KEY(ids[i]));
		cache_note_missing(c, tc, ids[i], now + c->opts.ttl_ms);
		cache_disk_forget(c, type, ids[i]);
		r = g_hash_table_lookup(tc->recs, KEY(ids[i]));
		if (r && !r->local_epoch) {
			cache_rec_remove(c, r);
			cache_note_changed(c, type, ids[i]);
		}
	}
	g_hash_table_destroy(found);
}

/* Batch-read `want` plus up to 99 known-but-uncached or stale neighbours.
 * Lock held on entry and exit. If another thread is already fetching want,
 * waits for it and returns 1 (the caller looks again). */
static int fetch_records(struct cache *c, const struct objtype *type, uint64_t want,
			 int64_t deadline)
{
	struct tcache *tc = &c->t[type->idx];
	uint64_t ids[BATCH_READ_MAX], epoch;
	GArray *got = NULL;
	size_t n;
	int rc;

	if (g_hash_table_contains(tc->inflight, KEY(want)))
		return cache_wait_until(c, deadline) ? 1 : -EAGAIN;
	rc = cache_ensure_schema(c, type, deadline);
	if (rc)
		return rc;
	if (tc->denied)
		return -EACCES;
	if (g_hash_table_contains(tc->inflight, KEY(want)))
		return 1;
	n = batch_pick(c, tc, want, cache_now_ms(c), ids);
	if (!tc->sync_wall_ms) {
		/* The type's first fetch: incremental refreshes start from here. */
		tc->sync_wall_ms = c->opts.wall();
		tc->synced_ms = cache_now_ms(c);
		/* What the disk gets from now on is as current as memory. */
		if (cache_disk_on(c, tc))
			disk_type_synced(c->disk, type->id, tc->sync_wall_ms);
	}
	epoch = c->epoch;
	g_mutex_unlock(&c->lock);

	rc = batch_read(c, type, tc->schema, ids, n, deadline, &got);

	g_mutex_lock(&c->lock);
	if (got) {
		batch_store(c, type, want, ids, n, got, epoch);
		g_array_free(got, TRUE); /* texts now owned by the cache */
	}
	for (size_t i = 0; i < n; i++)
		g_hash_table_remove(tc->inflight, KEY(ids[i]));
	g_cond_broadcast(&c->cond);
	return rc;
}

/* A record served: most recently used, in memory and on disk. Lock held. */
static void rec_used(struct cache *c, struct tcache *tc, struct rec *r)
{
	cache_rec_touch(c, r);
	if (cache_disk_on(c, tc))
		disk_touch_record(c->disk, tc->type->id, r->id, c->opts.wall());
}

/* Look up a record, fetching it when missing or stale. Lock held on entry and
 * exit; on success *out points at the record (valid while the lock is held). */
int cache_lookup_locked(struct cache *c, const struct objtype *type, uint64_t id, int64_t deadline,
			struct rec **out)
{
	struct tcache *tc = &c->t[type->idx];
	bool fetched = false;

	for (;;) {
		struct rec *r = g_hash_table_lookup(tc->recs, KEY(id));
		int64_t now = cache_now_ms(c);
		gpointer exp;
		int rc;

		if (r && (fetched || cache_rec_fresh(c, tc, r, now) || r->local_epoch)) {
			if (!fetched)
				c->hits++;
			rec_used(c, tc, r);
			*out = r;
			return 0;
		}
		if (r && c->opts.background && tc->sync_wall_ms) {
			/* Stale: serve it and refresh the whole type in the background
			 * (one search); changed records are invalidated when it lands. */
			cache_kick_refresh(c, type);
			c->hits++;
			rec_used(c, tc, r);
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
			if (c->disk && tc->disk == 0) {
				/* The disk is read once the shown properties are known. */
				rc = cache_ensure_schema(c, type, deadline);
				if (rc)
					return rc;
				continue;
			}
			/* Evicted from memory (or kept from an earlier mount): from disk. */
			if (cache_disk_load(c, type, id, &r) == 0)
				continue;
			/* A complete, fresh listing knows every record (a record it
			 * holds whose text the disk evicted is fetched). */
			if (tc->listing && tc->listing->complete && cache_listing_fresh(c, tc->listing, now) &&
			    !g_hash_table_contains(tc->wanted, KEY(id)) &&
			    !(cache_disk_on(c, tc) && cache_listing_contains(tc->listing, id)) &&
			    !(tc->listing->met_at && id > tc->listing->met_at)) /* search lags */
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

int cache_record_stat(struct cache *c, const struct objtype *type, uint64_t id, int64_t deadline,
		      struct rec_attr *a)
{
	struct rec *r;
	int rc;

	g_mutex_lock(&c->lock);
	rc = cache_lookup_locked(c, type, id, deadline, &r);
	if (rc == 0) {
		struct shown *s = g_hash_table_lookup(c->t[type->idx].shown, KEY(id));

		a->size = s ? s->len : r->len; /* as the kernel has it, until it forgot */
		a->mtime_ms = r->mtime_ms;
	}
	cache_unlock_and_notify(c);
	return rc;
}

int cache_record_read(struct cache *c, const struct objtype *type, uint64_t id, uint64_t off,
		      size_t size, char *buf, size_t *n, int64_t deadline)
{
	struct rec *r;
	int rc;

	*n = 0;
	g_mutex_lock(&c->lock);
	rc = cache_lookup_locked(c, type, id, deadline, &r);
	if (rc == 0) {
		/* the text the kernel sized its read by, until it forgot it */
		struct shown *s = g_hash_table_lookup(c->t[type->idx].shown, KEY(id));
		const char *text = s ? s->text : r->text;
		size_t len = s ? s->len : r->len;

		if (off < len) {
			*n = MIN(size, len - off);
			memcpy(buf, text + off, *n);
		}
	}
	cache_unlock_and_notify(c);
	return rc;
}

int cache_record_text(struct cache *c, const struct objtype *type, uint64_t id, int64_t deadline,
		      char **text, size_t *len)
{
	struct rec *r;
	int rc;

	g_mutex_lock(&c->lock);
	rc = cache_lookup_locked(c, type, id, deadline, &r);
	if (rc == 0) {
		*text = g_memdup2(r->text, r->len + 1);
		*len = r->len;
	}
	cache_unlock_and_notify(c);
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
static int render_obj(struct cache *c, const struct objtype *type, json_object *obj,
		      struct rendered *x)
{
	const struct schema *s;

	g_mutex_lock(&c->lock);
	s = c->t[type->idx].schema; /* immutable once set */
	g_mutex_unlock(&c->lock);
	if (!s)
		return -EINVAL;
	x->listed = false;
	return record_render(obj, s, &x->text, &x->len, &x->id, &x->mtime_ms);
}

int cache_store(struct cache *c, const struct objtype *type, json_object *obj, uint64_t epoch)
{
	struct rendered x;
	int rc;

	rc = render_obj(c, type, obj, &x);
	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	rc = cache_store_locked(c, type, &x, epoch, cache_now_ms(c));
	cache_unlock_and_notify(c);
	return rc;
}

uint64_t cache_record_put_local(struct cache *c, const struct objtype *type, uint64_t id,
				const char *text, size_t len, int64_t mtime_ms)
{
	uint64_t epoch;
	struct tcache *tc = &c->t[type->idx];
	struct rec *r;

	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(tc->recs, KEY(id));
	if (!r) {
		r = g_new0(struct rec, 1);
		r->id = id;
		r->type = (uint8_t)type->idx;
		r->lru.data = r;
		g_hash_table_insert(tc->recs, KEY(id), r);
		g_queue_push_head_link(&c->lru, &r->lru);
	} else {
		c->bytes -= r->len;
		g_free(r->text);
		cache_rec_touch(c, r);
	}
	r->text = g_malloc(len + 1);
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	r->len = (uint32_t)len;
	r->mtime_ms = mtime_ms;
	r->fetched_ms = cache_now_ms(c);
	r->local_epoch = epoch = ++c->epoch;
	c->bytes += len;
	cache_note_recent(c, tc, id);
	g_hash_table_remove(tc->wanted, KEY(id));
	g_hash_table_remove(tc->missing, KEY(id));
	/* the user's own save is what reads show from now on (the kernel's copy
	 * is invalidated by whoever saved) */
	g_hash_table_remove(tc->shown, KEY(id));
	cache_note_changed(c, type, id);
	cache_evict(c, r);
	cache_unlock_and_notify(c);
	return epoch;
}

int cache_land(struct cache *c, const struct objtype *type, json_object *obj, uint64_t sent_epoch)
{
	struct rendered x;
	struct rec *r;
	int rc;

	rc = render_obj(c, type, obj, &x);
	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type->idx].recs, KEY(x.id));
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
		rc = cache_store_locked(c, type, &x, c->epoch, cache_now_ms(c));
	}
	cache_unlock_and_notify(c);
	return rc;
}

uint64_t cache_record_local_epoch(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct rec *r;
	uint64_t e = 0;

	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type->idx].recs, KEY(id));
	if (r)
		e = r->local_epoch;
	g_mutex_unlock(&c->lock);
	return e;
}

void cache_record_forget(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct rec *r;

	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type->idx].recs, KEY(id));
	if (r) {
		cache_rec_remove(c, r);
		cache_note_changed(c, type, id);
	}
	g_hash_table_remove(c->t[type->idx].wanted, KEY(id));
	cache_disk_forget(c, type, id);
	cache_unlock_and_notify(c);
}
