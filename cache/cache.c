/* cache.c - the core of the cache (cache.h): its life cycle, the record store
 * with its TTL, byte-budget LRU and write-epoch guard, schemas, and status.
 * The rest of the module: cache_rec.c (record lookups and writes), cache_list.c
 * (listings), cache_assoc.c (associations), cache_account.c (pipelines,
 * owners) and cache_refresh.c (incremental refresh, the background worker);
 * what they share is in cache_int.h.
 */
#include "cache/cache_int.h"

#include "cache/cache_events.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "client/log.h"

/* A pending hook call: record_changed (to NULL), or assoc_changed of the list
 * of type/id toward `to`, with the links ids[0..n) (g_malloc'd). */
struct note {
	const struct objtype *type;
	uint64_t id;
	const struct objtype *to;
	uint64_t *ids;
	size_t n;
};

int64_t cache_now_ms(struct cache *c)
{
	return c->opts.now();
}

static void assoc_free(gpointer p)
{
	struct assoc *a = p;

	g_free(a->ids);
	g_free(a->types);
	g_free(a);
}

static void shown_free(gpointer p)
{
	struct shown *s = p;

	g_free(s->text);
	g_free(s);
}

struct cache *cache_new(struct hs_client *hc, const struct objtypes *types,
			const struct cache_opts *opts, const struct cache_hooks *hooks)
{
	struct cache *c = g_new0(struct cache, 1);

	c->hc = hc;
	c->types = types;
	c->ntypes = objtypes_count(types);
	if (opts)
		c->opts = *opts;
	if (!c->opts.ttl_ms)
		c->opts.ttl_ms = 60000;
	if (!c->opts.max_bytes)
		c->opts.max_bytes = (size_t)512 << 20;
	if (!c->opts.now)
		c->opts.now = hs_now_ms;
	if (!c->opts.wall)
		c->opts.wall = hs_wall_ms;
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
	c->t = g_new0(struct tcache, c->ntypes);
	for (size_t t = 0; t < c->ntypes; t++) {
		struct tcache *tc = &c->t[t];

		tc->type = objtypes_at(types, (unsigned)t);
		tc->recs = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->wanted = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->inflight = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->missing = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->gone = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->recent = g_hash_table_new(g_direct_hash, g_direct_equal);
		tc->shown = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, shown_free);
		tc->assoc = g_new0(GHashTable *, c->ntypes);
		tc->assoc_inflight = g_new0(GHashTable *, c->ntypes);
	}
	if (c->opts.background && c->opts.disk_dir) {
		struct disk_opts dopt = { .dir = c->opts.disk_dir, .portal_id = c->opts.portal_id,
					  .max_bytes = c->opts.disk_max_bytes };
		int rc = disk_open(&dopt, &c->disk, &c->disk_notice);

		if (rc == -EBUSY)
			c->disk_notice = "the disk cache is in use by another hubfs process; this mount "
					 "keeps its cache in memory only";
		else if (rc)
			c->disk_notice = "the disk cache cannot be opened; this mount keeps its cache in "
					 "memory only";
		if (rc)
			log_notice("disk cache in %s: %s", c->opts.disk_dir, g_strerror(-rc));
	}
	c->opts.disk_dir = NULL; /* borrowed: not kept */
	if (c->opts.background) {
		c->work = g_async_queue_new_full(g_free);
		c->worker = g_thread_new("hubfs-refresh", cache_worker_main, c);
	}
	return c;
}

void cache_rec_free(struct rec *r)
{
	g_free(r->text);
	g_free(r);
}

const struct objtypes *cache_types(struct cache *c)
{
	return c->types;
}

void cache_work_push(struct cache *c, enum work_kind kind, const struct objtype *t)
{
	struct work *w = g_new(struct work, 1);

	w->kind = kind;
	w->type = t;
	if (kind == WORK_STOP)
		g_async_queue_push_front(c->work, w);
	else
		g_async_queue_push(c->work, w);
}

GHashTable *cache_assoc_table(struct cache *c, const struct objtype *from,
			      const struct objtype *to, bool inflight)
{
	GHashTable **slot = inflight ? &c->t[from->idx].assoc_inflight[to->idx] :
				       &c->t[from->idx].assoc[to->idx];

	if (!*slot)
		*slot = inflight ? g_hash_table_new(g_direct_hash, g_direct_equal) :
				   g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, assoc_free);
	return *slot;
}

void cache_stop(struct cache *c)
{
	if (!c || !g_atomic_int_compare_and_exchange(&c->stopping, 0, 1))
		return;
	cache_events_stop(c);
	if (c->work)
		cache_work_push(c, WORK_STOP, NULL);
}

bool cache_stopping(struct cache *c)
{
	return g_atomic_int_get(&c->stopping) != 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_stop(c);
	cache_team_free_state(c);
	cache_events_free(c);
	g_mutex_lock(&c->lock);
	while (c->tails) /* the search sides of listings end after their call */
		g_cond_wait(&c->cond, &c->lock);
	g_mutex_unlock(&c->lock);
	if (c->worker) {
		g_thread_join(c->worker);
		g_async_queue_unref(c->work);
	}
	for (size_t t = 0; t < c->ntypes; t++) {
		struct tcache *tc = &c->t[t];
		GHashTableIter it;
		gpointer v;

		g_hash_table_iter_init(&it, tc->recs);
		while (g_hash_table_iter_next(&it, NULL, &v))
			cache_rec_free(v);
		g_hash_table_destroy(tc->recs);
		g_hash_table_destroy(tc->wanted);
		g_hash_table_destroy(tc->inflight);
		g_hash_table_destroy(tc->missing);
		g_hash_table_destroy(tc->gone);
		g_hash_table_destroy(tc->recent);
		g_hash_table_destroy(tc->shown);
		for (size_t u = 0; u < c->ntypes; u++) {
			if (tc->assoc[u])
				g_hash_table_destroy(tc->assoc[u]);
			if (tc->assoc_inflight[u])
				g_hash_table_destroy(tc->assoc_inflight[u]);
		}
		g_free(tc->assoc);
		g_free(tc->assoc_inflight);
		cache_listing_unref(tc->listing);
		schema_free((struct schema *)tc->schema);
		g_free(tc->pipelines);
		g_free(tc->denied);
	}
	if (c->owners)
		g_hash_table_destroy(c->owners);
	if (c->assoc_labels)
		g_hash_table_destroy(c->assoc_labels);
	for (size_t t = 0; t < c->ntypes; t++)
		if (c->t[t].disk_listing)
			g_array_free(c->t[t].disk_listing, TRUE);
	disk_close(c->disk); /* applies what is queued */
	g_free(c->t);
	for (guint i = 0; i < c->notify->len; i++)
		g_free(g_array_index(c->notify, struct note, i).ids);
	g_array_free(c->notify, TRUE);
	/* The LRU links live inside the records freed above: nothing to free here. */
	g_mutex_clear(&c->lock);
	g_cond_clear(&c->cond);
	g_free(c);
}

/* Unlock, then run the hook for every record and association list noted as
 * changed, in the order noted. */
void cache_unlock_and_notify(struct cache *c)
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

		if (!n->to && c->hooks.record_changed)
			c->hooks.record_changed(c->hooks.ud, n->type, n->id);
		else if (n->to && c->hooks.assoc_changed)
			c->hooks.assoc_changed(c->hooks.ud, n->type, n->id, n->to, n->ids, n->n);
		g_free(n->ids);
	}
	g_array_free(pending, TRUE);
}

void cache_note_changed(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct note n = { type, id, NULL, NULL, 0 };

	g_array_append_val(c->notify, n);
}

void cache_note_assoc(struct cache *c, const struct objtype *from, uint64_t id,
		      const struct objtype *to, const uint64_t *ids, size_t n)
{
	struct note x = { from, id, to, NULL, n };

	if (!c->hooks.assoc_changed)
		return;
	x.ids = n ? g_memdup2(ids, n * sizeof(*ids)) : NULL;
	g_array_append_val(c->notify, x);
}

/* --- bounded side tables ------------------------------------------------ */

/* r's text is being replaced: keep it (or free it) while the kernel may hold
 * its size. Only where someone invalidates the kernel's copy (the hook), and
 * only the oldest such text: the one the kernel can have. Lock held. */
static void keep_shown(struct cache *c, struct tcache *tc, struct rec *r)
{
	struct shown *s;

	if (!c->hooks.record_changed || g_hash_table_contains(tc->shown, KEY(r->id))) {
		g_free(r->text);
		return;
	}
	s = g_new(struct shown, 1);
	s->text = r->text;
	s->len = r->len;
	g_hash_table_insert(tc->shown, KEY(r->id), s);
}

void cache_record_shown_done(struct cache *c, const struct objtype *type, uint64_t id)
{
	g_mutex_lock(&c->lock);
	g_hash_table_remove(c->t[type->idx].shown, KEY(id));
	g_mutex_unlock(&c->lock);
}

#define SIDE_SWEEP_MIN 1024     /* no sweep below this many entries */
#define RECENT_KEEP_MS 60000    /* beyond index_delay: the overlay looks back 2 s */
#define GONE_KEEP_MS CACHE_GONE_KEEP_MS

/* Sweep table t (id -> time) of entries before `before` once it has doubled
 * since the last sweep. */
static void side_sweep(GHashTable *t, guint *mark, int64_t before)
{
	GHashTableIter it;
	gpointer v;

	if (g_hash_table_size(t) < MAX(*mark * 2, SIDE_SWEEP_MIN))
		return;
	g_hash_table_iter_init(&it, t);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if ((int64_t)GPOINTER_TO_SIZE(v) < before)
			g_hash_table_iter_remove(&it);
	*mark = g_hash_table_size(t);
}

void cache_note_recent(struct cache *c, struct tcache *tc, uint64_t id)
{
	int64_t wall = c->opts.wall();

	g_hash_table_insert(tc->recent, KEY(id), GSIZE_TO_POINTER((gsize)wall));
	side_sweep(tc->recent, &tc->recent_mark, wall - c->opts.index_delay_ms - RECENT_KEEP_MS);
}

void cache_note_missing(struct cache *c, struct tcache *tc, uint64_t id, int64_t until)
{
	g_hash_table_insert(tc->missing, KEY(id), GSIZE_TO_POINTER((gsize)until));
	side_sweep(tc->missing, &tc->missing_mark, cache_now_ms(c));
}

void cache_note_gone(struct cache *c, struct tcache *tc, uint64_t id, int64_t until)
{
	g_hash_table_insert(tc->gone, KEY(id), GSIZE_TO_POINTER((gsize)until));
	side_sweep(tc->gone, &tc->gone_mark, c->opts.wall());
}

void cache_archive_landed(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct tcache *tc = &c->t[type->idx];

	g_mutex_lock(&c->lock);
	/* Lists stop returning it now; search may for index_delay more. */
	if (g_hash_table_contains(tc->gone, KEY(id)))
		cache_note_gone(c, tc, id, c->opts.wall() + c->opts.index_delay_ms + GONE_KEEP_MS);
	g_mutex_unlock(&c->lock);
}

/* Wait on c->cond until woken or the deadline (on the client's clock,
 * hs_now_ms, like every call deadline; not the cache's TTL clock, which
 * tests may fake). Returns false on timeout. */
bool cache_wait_until(struct cache *c, int64_t deadline)
{
	int64_t now = hs_now_ms();
	gint64 end;

	if (!deadline) {
		g_cond_wait(&c->cond, &c->lock);
		return true;
	}
	if (deadline <= now)
		return false;
	end = g_get_monotonic_time() + (deadline - now) * 1000;
	return g_cond_wait_until(&c->cond, &c->lock, end) || deadline > hs_now_ms();
}

bool cache_rec_fresh(struct cache *c, struct tcache *tc, struct rec *r, int64_t now)
{
	return now < MAX(r->fetched_ms, tc->synced_ms) + c->opts.ttl_ms;
}

void cache_rec_touch(struct cache *c, struct rec *r)
{
	g_queue_unlink(&c->lru, &r->lru);
	g_queue_push_head_link(&c->lru, &r->lru);
}

void cache_rec_remove(struct cache *c, struct rec *r)
{
	g_hash_table_remove(c->t[r->type].recs, KEY(r->id));
	g_queue_unlink(&c->lru, &r->lru);
	c->bytes -= r->len;
	cache_rec_free(r);
}

#define TRIM_EVERY (16u << 20)

/* Evict least-recently-used clean records until under budget; keep `keep`. */
void cache_evict(struct cache *c, struct rec *keep)
{
	GList *l = c->lru.tail;

	while (CACHE_CHARGE(c->bytes, c->lru.length) > c->opts.max_bytes && l) {
		struct rec *r = l->data;

		l = l->prev;
		if (r == keep || r->local_epoch)
			continue;
		/* Evicted: read back from disk when the disk has it, else fetched
		 * with its neighbours. */
		if (!cache_disk_on(c, &c->t[r->type]))
			g_hash_table_add(c->t[r->type].wanted, KEY(r->id));
		c->evicted += r->len;
		cache_rec_remove(c, r);
	}
#ifdef __GLIBC__
	/* A big listing allocates record texts on its threads and evicts them
	 * on others; the space they leave in an arena that no longer
	 * allocates stays resident. Give whole free pages back now and then. */
	if (c->evicted >= TRIM_EVERY) {
		c->evicted = 0;
		malloc_trim(0);
	}
#endif
}

/* Insert rendered data; takes ownership of x->text. Lock held. Returns 1 if dropped. */
int cache_store_locked(struct cache *c, const struct objtype *type, struct rendered *x,
		       uint64_t epoch, int64_t now)
{
	struct tcache *tc = &c->t[type->idx];
	struct rec *r = g_hash_table_lookup(tc->recs, KEY(x->id));

	g_hash_table_remove(tc->wanted, KEY(x->id));
	g_hash_table_remove(tc->missing, KEY(x->id));
	/* The disk keeps the server's version whatever memory keeps (it keeps
	 * the newer of two). */
	cache_disk_put(c, type, x);
	if (r) {
		/* Generation guard: a fetch that started before a local write, or
		 * that carries an older version than we hold, never overwrites. */
		if (r->local_epoch > epoch || r->mtime_ms > x->mtime_ms) {
			g_free(x->text);
			return 1;
		}
		r->fetched_ms = now;
		cache_rec_touch(c, r);
		if (r->len == x->len && memcmp(r->text, x->text, x->len) == 0) {
			g_free(x->text);
			return 0;
		}
		c->bytes = c->bytes - r->len + x->len;
		keep_shown(c, tc, r);
		r->text = x->text;
		r->len = (uint32_t)x->len;
		r->mtime_ms = x->mtime_ms;
		cache_note_changed(c, type, x->id);
	} else {
		r = g_new0(struct rec, 1);
		r->id = x->id;
		r->type = (uint8_t)type->idx;
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
	cache_evict(c, r);
	return 0;
}

/* Render the objects of a results array outside the lock. */
GArray *cache_render_results(json_object *results, const struct schema *s)
{
	size_t n = json_util_array_len(results);
	GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(struct rendered), (guint)n);

	for (size_t i = 0; i < n; i++) {
		struct rendered x;

		x.listed = false;
		if (record_render(json_object_array_get_idx(results, i), s, &x.text, &x.len, &x.id,
				  &x.mtime_ms) == 0)
			g_array_append_val(out, x);
	}
	return out;
}

void cache_call_init(struct hs_call *call, enum rl_prio prio, int64_t deadline)
{
	memset(call, 0, sizeof(*call));
	call->prio = prio;
	call->deadline_ms = deadline;
}

void cache_call_init_bg(struct cache *c, struct hs_call *call, int64_t deadline)
{
	cache_call_init(call, RL_PRIO_BACKGROUND, deadline);
	call->cancel = &c->stopping;
}

int cache_deny(struct cache *c, const struct objtype *t, const struct hs_call *call, int rc)
{
	struct tcache *tc = &c->t[t->idx];
	const char *scopes = call->err.scopes[0] ? call->err.scopes :
			     t->read_scope ? t->read_scope : "(HubSpot did not say)";
	bool first = false;
	char line[768];

	if (rc != -EACCES || call->err.http_status != 403)
		return rc;
	g_mutex_lock(&c->lock);
	if (!tc->denied) {
		tc->denied = g_strdup(scopes);
		first = true;
	}
	g_cond_broadcast(&c->cond);
	g_mutex_unlock(&c->lock);
	if (!first)
		return rc;
	hs_error_line(line, sizeof(line), NULL, &call->err);
	log_warn("%s: HubSpot refuses this token the type (it needs %s): %s", t->name, scopes, line);
	if (c->hooks.type_denied)
		c->hooks.type_denied(c->hooks.ud, t, scopes, line);
	return rc;
}

char *cache_type_denied(struct cache *c, const struct objtype *type)
{
	char *s;

	g_mutex_lock(&c->lock);
	s = g_strdup(c->t[type->idx].denied);
	g_mutex_unlock(&c->lock);
	return s;
}

/* --- the disk copy ---------------------------------------------------- */

/* The same fields (DISK_LENT_FIELDS), so the same layout. */
G_STATIC_ASSERT(sizeof(struct lent) == sizeof(struct disk_lent));
G_STATIC_ASSERT(sizeof(struct lent) == 16);

/* What the disk holds of a type, read once its schema (and so its shown
 * properties) is known. */
struct disk_prep {
	int state;              /* tcache.disk */
	struct disk_type st;
	GArray *listing;        /* struct lent, or NULL */
};

bool cache_disk_on(struct cache *c, struct tcache *tc)
{
	return c->disk && tc->disk == 1;
}

/* Open the type on disk (no lock held): records rendered with other shown
 * properties are dropped there (and the user told once); a type never synced
 * has nothing to trust; a complete listing is loaded. */
static void disk_type_prepare(struct cache *c, const struct objtype *type, const struct schema *s,
			      struct disk_prep *p)
{
	bool dropped = false;

	p->state = -1;
	if (!c->disk)
		return;
	if (disk_type_open(c->disk, type->id, schema_props_csv(s), &p->st, &dropped) != 0)
		return;
	p->state = 1;
	if (dropped && c->hooks.notice) {
		char *msg = g_strdup_printf("the disk cache of %s was rendered with other properties "
					    "(props_%s changed); it was discarded and %s is listed "
					    "anew", type->name, type->name, type->name);

		c->hooks.notice(c->hooks.ud, msg);
		g_free(msg);
	}
	if (!p->st.sync_wall_ms) {
		/* Records without a sync mark cannot be brought up to date. */
		disk_drop(c->disk, type->id);
		memset(&p->st, 0, sizeof(p->st));
		return;
	}
	if (p->st.complete && disk_listing_load(c->disk, type->id, &p->listing) != 0)
		p->listing = NULL;
}

/* Lock held: the type starts from what the disk had, stale until a refresh
 * from its sync mark (queued now) confirms it. */
static void disk_type_apply(struct cache *c, struct tcache *tc, struct disk_prep *p)
{
	tc->disk = p->state;
	if (p->state != 1 || !p->st.sync_wall_ms || tc->sync_wall_ms) {
		if (p->listing)
			g_array_free(p->listing, TRUE);
		return;
	}
	tc->sync_wall_ms = p->st.sync_wall_ms;
	tc->synced_ms = cache_now_ms(c) - c->opts.ttl_ms - 1; /* stale */
	tc->from_disk = tc->unconfirmed = true;
	tc->catchup_changes = -1;
	if (p->listing) {
		tc->disk_listing = p->listing;
		tc->disk_relist_wall = p->st.relist_wall_ms;
	}
	log_info("%s: %u records listed from disk, synced as of %" G_GINT64_FORMAT " s ago",
		 tc->type->name, p->listing ? p->listing->len : 0,
		 (c->opts.wall() - p->st.sync_wall_ms) / 1000);
	cache_kick_refresh(c, tc->type);
}

void cache_disk_put(struct cache *c, const struct objtype *type, const struct rendered *x)
{
	struct tcache *tc = &c->t[type->idx];
	struct rec *r;

	if (!cache_disk_on(c, tc))
		return;
	r = g_hash_table_lookup(tc->recs, KEY(x->id));
	disk_put_record(c->disk, type->id, x->id, x->text, x->len, x->mtime_ms,
			x->listed || (r && r->listed) ||
			(tc->listing && tc->listing->complete && cache_listing_contains(tc->listing, x->id)),
			c->opts.wall());
	c->disk_gen++;
}

void cache_disk_forget(struct cache *c, const struct objtype *type, uint64_t id)
{
	if (!cache_disk_on(c, &c->t[type->idx]))
		return;
	disk_forget_record(c->disk, type->id, id);
	c->disk_gen++;
}

int cache_disk_load(struct cache *c, const struct objtype *type, uint64_t id, struct rec **out)
{
	struct tcache *tc = &c->t[type->idx];
	char *text = NULL;
	size_t len = 0;
	int64_t mtime = 0;
	struct rec *r;
	int rc;

	/* A disk write of a record while the lock was dropped may have made what
	 * was read older than what is stored: read again. */
	for (int tries = 0;; tries++) {
		uint64_t gen = c->disk_gen;

		if (!cache_disk_on(c, tc))
			return -ENOENT;
		g_mutex_unlock(&c->lock);
		rc = disk_get_record(c->disk, type->id, id, &text, &len, &mtime);
		g_mutex_lock(&c->lock);
		if (rc)
			return -ENOENT;
		if (gen == c->disk_gen || tries >= 8)
			break;
		g_free(text);
		text = NULL;
	}
	r = g_hash_table_lookup(tc->recs, KEY(id));
	if (r || g_hash_table_contains(tc->gone, KEY(id))) {
		g_free(text); /* fetched or archived meanwhile */
		if (!r)
			return -ENOENT;
		*out = r;
		return 0;
	}
	r = g_new0(struct rec, 1);
	r->id = id;
	r->type = (uint8_t)type->idx;
	r->text = text;
	r->len = (uint32_t)len;
	r->mtime_ms = mtime;
	r->fetched_ms = INT64_MIN / 2; /* as fresh as its type's last sync */
	r->lru.data = r;
	g_hash_table_insert(tc->recs, KEY(id), r);
	g_queue_push_head_link(&c->lru, &r->lru);
	c->bytes += r->len;
	c->disk_reads++;
	disk_touch_record(c->disk, type->id, id, c->opts.wall());
	cache_evict(c, r);
	*out = r;
	return 0;
}

const char *cache_disk_notice(struct cache *c)
{
	return c->disk_notice;
}

bool cache_type_unconfirmed(struct cache *c, const struct objtype *type)
{
	bool u;

	g_mutex_lock(&c->lock);
	u = c->t[type->idx].unconfirmed;
	g_mutex_unlock(&c->lock);
	return u;
}

void cache_drop(struct cache *c, const struct objtype *type)
{
	g_mutex_lock(&c->lock);
	for (size_t t = 0; t < c->ntypes; t++) {
		struct tcache *tc = &c->t[t];
		GHashTableIter it;
		gpointer v;

		if (type && t != type->idx)
			continue;
		g_hash_table_iter_init(&it, tc->recs);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			struct rec *r = v;

			if (r->local_epoch)
				continue;
			g_hash_table_iter_steal(&it);
			g_queue_unlink(&c->lru, &r->lru);
			c->bytes -= r->len;
			cache_note_changed(c, tc->type, r->id);
			cache_rec_free(r);
		}
		g_hash_table_remove_all(tc->wanted);
		cache_listing_unref(tc->listing);
		tc->listing = NULL;
		if (tc->disk_listing)
			g_array_free(tc->disk_listing, TRUE);
		tc->disk_listing = NULL;
		tc->unconfirmed = false;
		if (type && c->disk)
			disk_drop(c->disk, type->id);
	}
	if (!type && c->disk)
		disk_drop(c->disk, NULL);
	c->disk_gen++;
	cache_unlock_and_notify(c);
}

/* Fetch the schema of a type if needed. Lock held on entry and exit. */
int cache_ensure_schema(struct cache *c, const struct objtype *type, int64_t deadline)
{
	struct tcache *tc = &c->t[type->idx];
	json_object *resp = NULL;
	struct schema *s = NULL;
	struct disk_prep prep = { 0 };
	struct hs_call call;
	int rc;

	while (!tc->schema) {
		if (tc->denied)
			return -EACCES;
		if (tc->schema_fetching) {
			if (!cache_wait_until(c, deadline))
				return -EAGAIN;
			continue;
		}
		tc->schema_fetching = true;
		g_mutex_unlock(&c->lock);
		cache_call_init(&call, RL_PRIO_USER, deadline);
		rc = cache_deny(c, type, &call, hs_properties(c->hc, &call, type->path, &resp));
		if (rc == 0)
			rc = schema_new(type, resp, c->opts.shown ? c->opts.shown[type->idx] : NULL, &s);
		else if (rc != -EACCES || call.err.http_status != 403) /* cache_deny said so */
			log_warn("properties of %s: %s", type->name, call.err.message);
		json_object_put(resp);
		if (rc == 0)
			disk_type_prepare(c, type, s, &prep);
		g_mutex_lock(&c->lock);
		tc->schema_fetching = false;
		tc->schema = s;
		if (rc == 0)
			disk_type_apply(c, tc, &prep);
		g_cond_broadcast(&c->cond);
		if (rc)
			return rc;
	}
	return 0;
}

int cache_schema(struct cache *c, const struct objtype *type, int64_t deadline,
		 const struct schema **out)
{
	int rc;

	g_mutex_lock(&c->lock);
	rc = cache_ensure_schema(c, type, deadline);
	*out = c->t[type->idx].schema;
	g_mutex_unlock(&c->lock);
	return rc;
}

void cache_expire(struct cache *c)
{
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&c->lock);
	for (size_t t = 0; t < c->ntypes; t++) {
		struct tcache *tc = &c->t[t];

		tc->synced_ms = 0;
		if (tc->listing && tc->listing->complete)
			tc->listing->completed_ms = INT64_MIN / 2;
		g_hash_table_iter_init(&it, tc->recs);
		while (g_hash_table_iter_next(&it, NULL, &v))
			((struct rec *)v)->fetched_ms = INT64_MIN / 2;
		for (size_t u = 0; u < c->ntypes; u++) {
			if (!tc->assoc[u])
				continue;
			g_hash_table_iter_init(&it, tc->assoc[u]);
			while (g_hash_table_iter_next(&it, NULL, &v))
				((struct assoc *)v)->fetched_ms = INT64_MIN / 2;
		}
	}
	g_mutex_unlock(&c->lock);
}

/* --- status ------------------------------------------------------------- */

void cache_stats(struct cache *c, json_object *obj)
{
	json_object *jc = json_object_new_object(), *types = json_object_new_object();
	json_object *denied = json_object_new_object();
	size_t records = 0;
	int64_t now;

	g_mutex_lock(&c->lock);
	now = cache_now_ms(c);
	for (size_t t = 0; t < c->ntypes; t++) {
		struct tcache *tc = &c->t[t];
		struct listing *l = tc->listing;
		json_object *jt = json_object_new_object();

		records += g_hash_table_size(tc->recs);
		json_object_object_add(jt, "cached", json_object_new_int64(g_hash_table_size(tc->recs)));
		/* while a listing is in progress, what its search side has counts too */
		json_object_object_add(jt, "listed", json_object_new_int64(
			!l ? 0 : l->ids->len + (!l->complete && l->tail && !l->tail_stop ? l->tail->len : 0)));
		json_object_object_add(jt, "listing_complete", json_object_new_boolean(l && l->complete));
		json_object_object_add(jt, "listing_in_progress",
				       json_object_new_boolean(l && !l->complete && !l->err && l->ids->len));
		json_object_object_add(jt, "listing_total", /* the search total, when asked */
				       l && l->total >= 0 ? json_object_new_int64(l->total) : NULL);
		json_object_object_add(jt, "last_refresh_age_s",
				       tc->sync_wall_ms ? json_object_new_double((double)(now - tc->synced_ms) / 1000)
							: NULL);
		json_object_object_add(jt, "stale", json_object_new_boolean(cache_type_stale(c, tc, now)));
		json_object_object_add(jt, "refreshing", json_object_new_boolean(tc->refreshing));
		json_object_object_add(jt, "last_refresh_failed", json_object_new_boolean(tc->refresh_fail_ms != 0));
		json_object_object_add(jt, "tracked_recent", json_object_new_int64(g_hash_table_size(tc->recent)));
		json_object_object_add(jt, "tracked_missing", json_object_new_int64(g_hash_table_size(tc->missing)));
		json_object_object_add(jt, "tracked_gone", json_object_new_int64(g_hash_table_size(tc->gone)));
		/* the scopes HubSpot said the token lacks for the type, or null */
		json_object_object_add(jt, "denied", tc->denied ? json_object_new_string(tc->denied)
							       : NULL);
		if (tc->denied)
			json_object_object_add(denied, tc->type->name,
					       json_object_new_string(tc->denied));
		json_object_object_add(jt, "from_disk", json_object_new_boolean(tc->from_disk));
		json_object_object_add(jt, "unconfirmed", json_object_new_boolean(tc->unconfirmed));
		if (tc->catchup) {
			json_object *cu = json_object_new_object();

			json_object_object_add(cu, "way", json_object_new_string(tc->catchup));
			json_object_object_add(cu, "calls", json_object_new_int64(tc->catchup_calls));
			json_object_object_add(cu, "changes", tc->catchup_changes >= 0 ?
					       json_object_new_int64(tc->catchup_changes) : NULL);
			json_object_object_add(cu, "done", json_object_new_boolean(!tc->unconfirmed));
			json_object_object_add(jt, "catch_up", cu);
		}
		json_object_object_add(types, tc->type->name, jt);
	}
	json_object_object_add(jc, "records", json_object_new_int64((int64_t)records));
	json_object_object_add(jc, "bytes", json_object_new_int64(
				       (int64_t)CACHE_CHARGE(c->bytes, c->lru.length)));
	json_object_object_add(jc, "max_bytes", json_object_new_int64((int64_t)c->opts.max_bytes));
	json_object_object_add(jc, "hits", json_object_new_int64((int64_t)c->hits));
	json_object_object_add(jc, "misses", json_object_new_int64((int64_t)c->misses));
	json_object_object_add(jc, "hit_rate", json_object_new_double(
		c->hits + c->misses ? (double)c->hits / (double)(c->hits + c->misses) : 0.0));
	json_object_object_add(jc, "persistent", json_object_new_boolean(c->disk != NULL));
	json_object_object_add(jc, "disk_reads", json_object_new_int64((int64_t)c->disk_reads));
	g_mutex_unlock(&c->lock);
	disk_stats(c->disk, obj);
	json_object_object_add(obj, "cache", jc);
	json_object_object_add(obj, "types", types);
	/* {"emails": "sales-email-read"}: the types HubSpot refused the token */
	json_object_object_add(obj, "types_denied", denied);
}
