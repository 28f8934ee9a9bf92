/* cache_refresh.c - keeping types fresh: the incremental refresh (one search
 * on the last-modified property, paged, windowed past 10,000 results), the
 * background worker that runs refreshes and relists (opts.background), and
 * what this mount changed, for overlaying search results.
 */
#include "cache/cache_int.h"

#include "cache/cache_events.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "cache/model/search_req.h"
#include "client/log.h"

/* Pages of one search window while its total is not known (10,000 results
 * at 200 a page is 50). */
#define REFRESH_MAX_PAGES 60
#define REFRESH_PAGE 200
#define SEARCH_RESULTS_MAX 10000 /* a search returns no more */

/* --- queueing background work ------------------------------------------ */

/* Queue a background relist of a type unless one is pending. Lock held. */
void cache_kick_relist(struct cache *c, const struct objtype *type)
{
	struct tcache *tc = &c->t[type->idx];

	if (!c->work || tc->relisting || cache_stopping(c))
		return;
	if (tc->relist_fail_ms && cache_now_ms(c) < tc->relist_fail_ms + c->opts.ttl_ms)
		return;
	tc->relisting = true;
	cache_work_push(c, WORK_RELIST, type);
}

/* While pushed changes arrive (cache_events.h) the periodic refresh is only
 * the safety net: due every ttl * backoff, and back to ttl once they stop. */
bool cache_type_stale(struct cache *c, struct tcache *tc, int64_t now)
{
	return tc->sync_wall_ms && now >= tc->synced_ms + cache_events_refresh_every(c);
}

/* Queue a background refresh of a type unless one is pending. Lock held. */
void cache_kick_refresh(struct cache *c, const struct objtype *type)
{
	struct tcache *tc = &c->t[type->idx];

	if (!c->work || tc->refreshing || cache_stopping(c))
		return;
	/* A stale record asks too, but while pushed changes keep the type
	 * current the refresh waits for its backed-off turn. */
	if (tc->sync_wall_ms && !cache_type_stale(c, tc, cache_now_ms(c)))
		return;
	/* After a failure, wait a little before asking again (offline). */
	if (tc->refresh_fail_ms && cache_now_ms(c) < tc->refresh_fail_ms + 2000)
		return;
	tc->refreshing = true;
	cache_work_push(c, WORK_REFRESH, type);
}

/* --- incremental refresh ------------------------------------------------ */

/* One incremental refresh under way. */
struct refresh {
	const struct objtype *type;
	struct tcache *tc;
	enum rl_prio prio;
	int64_t deadline;
	int64_t lower;       /* the window's lower bound on the last-modified property */
	int64_t last_ts;     /* the latest updatedAt seen */
	uint64_t epoch;      /* the write epoch at the start */
	char *after;         /* the next page's cursor, or NULL */
	struct pager pg;     /* of the current 10,000-result window */
	int pages;
	GArray *seen;        /* struct lent: every record returned, for the team */
	/* The first refresh of a type served from disk: after its first page, a
	 * relist is chosen instead if it costs fewer calls. */
	bool catchup;
	uint64_t listed;     /* records the listing holds (what a relist reads) */
	int64_t total;       /* the first page's total (changes), -1 unknown */
};

/* The catch-up after a remount is cheaper as a relist: more search pages of
 * changes (200 a page) than list pages of the whole type (100 a page). */
#define CATCHUP_RELIST (-ERANGE)

/* The search for the window's next page: lastmod >= lower, ascending, every
 * shown property, 200 a page. */
static json_object *refresh_request(const struct refresh *r)
{
	const struct schema *sc = r->tc->schema;
	json_object *req = search_req_new();
	char lower[32];

	snprintf(lower, sizeof(lower), "%" G_GINT64_FORMAT, r->lower);
	search_req_filter(search_req_group(req), r->type->lastmod, "GTE", lower);
	search_req_sort(req, r->type->lastmod, true);
	search_req_props(req, NULL, 0); /* every shown property, none else */
	for (size_t i = 0; i < schema_shown_count(sc); i++) {
		const char *name = schema_shown(sc, i);

		search_req_props(req, &name, 1);
	}
	search_req_page(req, REFRESH_PAGE, r->after);
	return req;
}

/* Store a page's records; one created elsewhere joins a complete listing
 * (also if it was read by id, or through a link, before). Takes the lock. */
static void refresh_store(struct cache *c, struct refresh *r, GArray *got)
{
	struct tcache *tc = r->tc;

	g_mutex_lock(&c->lock);
	for (guint j = 0; j < got->len; j++) {
		struct rendered *x = &g_array_index(got, struct rendered, j);
		struct lent e = { x->id, x->len, x->mtime_ms };
		bool listed = tc->listing && tc->listing->complete;
		struct rec *rec;

		g_array_append_val(r->seen, e);
		if (x->mtime_ms > r->last_ts)
			r->last_ts = x->mtime_ms;
		if (g_hash_table_contains(tc->gone, KEY(e.id))) {
			g_free(x->text);
			continue;
		}
		rec = g_hash_table_lookup(tc->recs, KEY(e.id));
		if (listed && !(rec && rec->listed) && !cache_listing_contains(tc->listing, e.id))
			cache_listing_append(tc->listing, &e);
		g_hash_table_remove(tc->missing, KEY(e.id));
		x->listed = listed;
		if (!rec) /* maybe a stale copy on disk, or in the kernel's cache */
			cache_note_changed(c, r->type, e.id);
		cache_store_locked(c, r->type, x, r->epoch, cache_now_ms(c));
		if (listed && (rec = g_hash_table_lookup(tc->recs, KEY(e.id))))
			rec->listed = true;
	}
	g_mutex_unlock(&c->lock);
}

/* After a page: 1 if there is more (r->after: the next page's cursor, or NULL
 * for the first page of a new window), 0 when done, or -EIO to relist
 * instead. Search stops at 10,000 results: past that a new window starts at
 * the last timestamp seen (records are re-read, harmlessly). */
static int refresh_next(struct cache *c, struct refresh *r, json_object *resp)
{
	const char *a = json_util_paging_after(resp), *why = NULL;

	g_clear_pointer(&r->after, g_free);
	if (!a || !*a)
		return 0;
	if (pager_next(&r->pg, a, &why) != 0) {
		log_err("refresh of %s: %s (page %u); relisting instead", r->type->name, why,
			r->pg.pages);
		return -EIO;
	}
	if (g_ascii_strtoll(a, NULL, 10) + REFRESH_PAGE <= SEARCH_RESULTS_MAX) {
		r->after = g_strdup(a);
		return 1;
	}
	if (r->last_ts <= r->lower) {
		log_warn("refresh of %s: over 10,000 records share one timestamp; relisting instead",
			 r->type->name);
		return -EIO;
	}
	r->lower = r->last_ts;
	pager_destroy(&r->pg); /* a new window: its own cursors and total */
	pager_init(&r->pg, REFRESH_MAX_PAGES);
	return 1;
}

/* One page: 1 if there are more, 0 when done, or -errno. No lock held. */
static int refresh_page(struct cache *c, struct refresh *r)
{
	json_object *req = refresh_request(r), *resp = NULL, *results, *jtotal;
	struct hs_call call;
	int rc;

	if (r->prio == RL_PRIO_BACKGROUND)
		cache_call_init_bg(c, &call, r->deadline);
	else
		cache_call_init(&call, r->prio, r->deadline);
	rc = hs_search(c->hc, &call, r->type->path, req, &resp);
	json_object_put(req);
	r->pages++;
	if (rc) {
		log_info("refresh of %s: %s", r->type->name, call.err.message);
		json_object_put(resp);
		return rc;
	}
	if (json_object_object_get_ex(resp, "results", &results)) {
		GArray *got = cache_render_results(results, r->tc->schema);

		refresh_store(c, r, got);
		g_array_free(got, TRUE);
	}
	if (!r->pg.max_pages && json_object_object_get_ex(resp, "total", &jtotal) &&
	    json_object_is_type(jtotal, json_type_int) && json_object_get_int64(jtotal) >= 0) {
		uint64_t total = (uint64_t)json_object_get_int64(jtotal);

		pager_set_total(&r->pg, total, REFRESH_PAGE);
		if (r->pages == 1) {
			r->total = (int64_t)total;
			if (r->catchup && r->listed &&
			    (total + REFRESH_PAGE - 1) / REFRESH_PAGE > (r->listed + 99) / 100) {
				json_object_put(resp);
				return CATCHUP_RELIST;
			}
		}
	}
	rc = refresh_next(c, r, resp);
	json_object_put(resp);
	if (rc > 0 && r->prio == RL_PRIO_BACKGROUND && cache_stopping(c))
		rc = -ECANCELED; /* unmounting: a background refresh ends here, unfinished */
	return rc;
}

/* The records a type served from disk lists (what a relist reads again). */
static uint64_t catchup_listed(struct tcache *tc)
{
	return tc->listing && tc->listing->complete ? tc->listing->ids->len :
	       tc->disk_listing ? tc->disk_listing->len : 0;
}

/* A type served from disk catches up by a relist without a search when a
 * relist runs anyway: one is under way, or one is due (the relist schedule
 * survives the mount: a downtime longer than relist_interval). A refresh
 * would only add its search pages to the relist's list pages. Lock held.
 * True if the relist was chosen (and queued). */
static bool catchup_by_relist(struct cache *c, struct tcache *tc)
{
	struct listing *l = tc->listing;
	bool due;

	if (!c->work || !catchup_listed(tc))
		return false;
	/* The catch-up relist failed (or ran out of time): the incremental
	 * refresh catches the type up instead, and the relist comes again on
	 * its schedule. */
	if (!tc->relisting && tc->relist_fail_ms)
		return false;
	if (l && l->complete)
		due = !cache_listing_fresh(c, l, cache_now_ms(c));
	else
		due = tc->disk_listing && c->opts.wall() >= tc->disk_relist_wall + c->opts.relist_ms;
	if (!due && !tc->relisting)
		return false;
	if (!tc->catchup) {
		tc->catchup = "relist";
		tc->catchup_calls = 0;
		tc->catchup_changes = -1;
		log_notice("%s: the relist that is due catches it up after the remount",
			   tc->type->name);
	}
	cache_kick_relist(c, tc->type);
	return true;
}

int cache_refresh(struct cache *c, const struct objtype *type, enum rl_prio prio, int64_t deadline)
{
	struct refresh r = { .type = type, .tc = &c->t[type->idx], .prio = prio,
			     .deadline = deadline, .total = -1 };
	struct tcache *tc = r.tc;
	int64_t start_wall, start_mono;
	int rc;

	g_mutex_lock(&c->lock);
	rc = tc->sync_wall_ms ? cache_ensure_schema(c, type, deadline) : 0;
	if (rc == 0 && tc->sync_wall_ms && tc->unconfirmed && catchup_by_relist(c, tc))
		rc = 1;
	/* Queued while stale, but a relist synced the type meanwhile. */
	if (rc == 0 && prio == RL_PRIO_BACKGROUND && tc->sync_wall_ms && !tc->unconfirmed &&
	    !cache_type_stale(c, tc, cache_now_ms(c)))
		rc = 1;
	if (rc || !tc->sync_wall_ms) {
		/* failed, nothing of this type was ever fetched, or a relist
		 * catches the type up */
		tc->refreshing = false;
		g_mutex_unlock(&c->lock);
		return rc < 0 ? rc : 0;
	}
	if (tc->unconfirmed) {
		/* (not again to a relist once one failed) */
		r.catchup = !tc->relist_fail_ms;
		r.listed = catchup_listed(tc);
	}
	/* Everything changed since the last sync, less the indexing delay (a change
	 * made just before it may not have been searchable yet), less a second. */
	r.lower = r.last_ts = tc->sync_wall_ms - c->opts.index_delay_ms - 1000;
	start_wall = c->opts.wall();
	start_mono = cache_now_ms(c);
	r.epoch = c->epoch;
	g_mutex_unlock(&c->lock);
	pager_init(&r.pg, REFRESH_MAX_PAGES);
	r.seen = g_array_new(FALSE, FALSE, sizeof(struct lent));
	while ((rc = refresh_page(c, &r)) > 0)
		;
	g_free(r.after);
	pager_destroy(&r.pg);
	if (rc == 0) /* the other mounts of a team apply it instead of searching */
		cache_team_refreshed(c, type, r.seen, start_wall);
	g_array_free(r.seen, TRUE);

	g_mutex_lock(&c->lock);
	tc->refreshing = false;
	if ((r.catchup || tc->unconfirmed) && (rc == 0 || rc == CATCHUP_RELIST)) {
		tc->catchup = rc == 0 ? "refresh" : "relist";
		tc->catchup_calls = (unsigned)r.pages;
		tc->catchup_changes = r.total;
		log_notice("%s: caught up after the remount by %s (%" G_GINT64_FORMAT " changes, "
			   "%u records listed)", type->name, rc == 0 ? "an incremental refresh" :
			   "a relist, which costs fewer calls", r.total, (unsigned)r.listed);
	}
	if (rc == CATCHUP_RELIST) {
		/* Served as it is until the relist is installed. */
		tc->relist_hint = (int64_t)r.listed + r.total;
		cache_kick_relist(c, type);
		rc = 0;
	} else if (rc == 0) {
		tc->synced_ms = start_mono;
		tc->sync_wall_ms = start_wall;
		tc->refresh_fail_ms = 0;
		tc->unconfirmed = false;
		if (cache_disk_on(c, tc))
			disk_type_synced(c->disk, type->id, start_wall);
	} else {
		tc->refresh_fail_ms = cache_now_ms(c);
		if (rc == -EIO && tc->listing && tc->listing->complete)
			tc->listing->completed_ms = INT64_MIN / 2; /* relist */
	}
	g_cond_broadcast(&c->cond);
	log_debug("refresh of %s: %d page(s), rc %d", type->name, r.pages, rc);
	cache_unlock_and_notify(c);
	return rc;
}

gpointer cache_worker_main(gpointer p)
{
	struct cache *c = p;

	for (;;) {
		struct work *w = g_async_queue_pop(c->work);
		enum work_kind kind = w->kind;
		const struct objtype *t = w->type;

		g_free(w);
		if (kind == WORK_STOP || cache_stopping(c))
			break;
		/* In a team, one mount refreshes (relists) a type for all. */
		if (kind == WORK_RELIST && cache_team_gate(c, t, true))
			cache_relist(c, t);
		else if (kind == WORK_TOTAL)
			cache_listing_total(c, t);
		else if (kind == WORK_REFRESH && cache_team_gate(c, t, false))
			cache_refresh(c, t, RL_PRIO_BACKGROUND, hs_now_ms() + 120000);
	}
	return NULL;
}

void cache_refresh_async(struct cache *c, const struct objtype *type)
{
	g_mutex_lock(&c->lock);
	for (size_t t = 0; t < c->ntypes; t++)
		if (!type || t == type->idx)
			cache_kick_refresh(c, c->t[t].type);
	g_mutex_unlock(&c->lock);
}

void cache_recent_local(struct cache *c, const struct objtype *type, int64_t since, uint64_t **ids,
			size_t *n)
{
	GHashTableIter it;
	gpointer k, v;
	GArray *a = g_array_new(FALSE, FALSE, sizeof(uint64_t));

	g_mutex_lock(&c->lock);
	g_hash_table_iter_init(&it, c->t[type->idx].recent);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		uint64_t id = UNKEY(k);

		if ((int64_t)GPOINTER_TO_SIZE(v) >= since)
			g_array_append_val(a, id);
	}
	g_mutex_unlock(&c->lock);
	*n = a->len;
	*ids = (uint64_t *)(void *)g_array_free(a, FALSE);
}

bool cache_record_gone(struct cache *c, const struct objtype *type, uint64_t id)
{
	bool g;

	g_mutex_lock(&c->lock);
	g = g_hash_table_contains(c->t[type->idx].gone, KEY(id));
	g_mutex_unlock(&c->lock);
	return g;
}
