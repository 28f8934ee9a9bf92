/* cache_list.c - listings of a type: shared by their readers and fetched page
 * by page as readers ask, installed when complete (pruning records they no
 * longer hold), relisted whole in the background, and edited at once by this
 * mount's creates and archives.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "cache/model/search_req.h"
#include "client/log.h"

/* A listing reads 100 records a page. HubSpot's list answers carry no total,
 * so after this many pages (and every this many, until it is known) a search
 * of limit 1 counts the records, which bounds the pages (cache/pager.h);
 * smaller types never pay for it. A listing whose total a progress display
 * already asked for (cache_listing_total) uses that one instead. Until then,
 * and if the count fails, the bound is LIST_MAX_PAGES (10 million records). */
#define LIST_PER_PAGE 100
#define LIST_PROBE_PAGES 50
#define LIST_MAX_PAGES 100000

/* --- listings --------------------------------------------------------- */

static void tail_drop_pending(struct listing *l);

void cache_listing_unref(struct listing *l)
{
	if (!l || --l->refs)
		return;
	pager_destroy(&l->pager);
	g_array_free(l->ids, TRUE);
	if (l->tail_pend) {
		tail_drop_pending(l);
		g_ptr_array_free(l->tail_pend, TRUE);
	}
	if (l->tail)
		g_array_free(l->tail, TRUE);
	g_free(l->after);
	g_free(l);
}

void cache_listing_append(struct listing *l, const struct lent *e)
{
	if (l->ids->len && g_array_index(l->ids, struct lent, l->ids->len - 1).id >= e->id)
		l->unsorted = true;
	g_array_append_vals(l->ids, e, 1);
}

bool cache_listing_contains(struct listing *l, uint64_t id)
{
	guint lo = 0, hi = l->ids->len;

	if (l->unsorted) {
		for (guint i = 0; i < l->ids->len; i++)
			if (g_array_index(l->ids, struct lent, i).id == id)
				return true;
		return false;
	}
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		uint64_t m = g_array_index(l->ids, struct lent, mid).id;

		if (m == id)
			return true;
		if (m < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Records this mount created (or changed) that l does not hold, when l did
 * not come from the list endpoint alone (a listing from disk, or one whose
 * top came from search, which lags writes). Lock held. */
static void listing_add_recent(struct cache *c, struct listing *l)
{
	struct tcache *tc = &c->t[l->type->idx];
	GHashTableIter it;
	gpointer key;

	g_hash_table_iter_init(&it, tc->recent);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		struct rec *r = g_hash_table_lookup(tc->recs, key);
		struct lent e = { UNKEY(key), r ? r->len : 0, r ? r->mtime_ms : 0 };

		if (r && !g_hash_table_contains(tc->gone, key) && !cache_listing_contains(l, e.id))
			cache_listing_append(l, &e);
	}
}

bool cache_listing_adopt_disk(struct cache *c, struct listing *l)
{
	struct tcache *tc = &c->t[l->type->idx];
	int64_t age;

	if (!tc->disk_listing || l->ids->len || l->pager.pages || l->complete || l->fetching ||
	    l->err)
		return false;
	g_array_free(l->ids, TRUE);
	l->ids = tc->disk_listing; /* ascending by id */
	tc->disk_listing = NULL;
	if (g_hash_table_size(tc->gone)) { /* archived by this mount meanwhile */
		guint k = 0;

		for (guint i = 0; i < l->ids->len; i++) {
			struct lent e = g_array_index(l->ids, struct lent, i);

			if (!g_hash_table_contains(tc->gone, KEY(e.id)))
				g_array_index(l->ids, struct lent, k++) = e;
		}
		g_array_set_size(l->ids, k);
	}
	listing_add_recent(c, l); /* created by this mount meanwhile */
	l->complete = true;
	/* The relist schedule goes on from the disk's mark: the listing counts
	 * as fetched when that relist started. */
	age = MAX(c->opts.wall() - tc->disk_relist_wall, 0);
	l->started_wall = tc->disk_relist_wall;
	l->started_ms = l->completed_ms = cache_now_ms(c) - age;
	log_info("listing %s: %u records from disk", l->type->name, l->ids->len);
	if (!cache_listing_fresh(c, l, cache_now_ms(c)))
		cache_kick_relist(c, l->type);
	return true;
}

bool cache_listing_fresh(struct cache *c, struct listing *l, int64_t now)
{
	/* With background refreshes, a listing is kept current incrementally and
	 * relisted only every relist_ms (to notice archived records). */
	int64_t life = c->opts.background ? c->opts.relist_ms : c->opts.ttl_ms;

	return l && !l->err && (!l->complete || now < l->completed_ms + life);
}

struct listing *cache_listing_open(struct cache *c, const struct objtype *type)
{
	struct tcache *tc = &c->t[type->idx];
	struct listing *l;

	g_mutex_lock(&c->lock);
	if (c->opts.background && cache_type_stale(c, tc, cache_now_ms(c)))
		cache_kick_refresh(c, type);
	if (c->work && tc->listing && tc->listing->complete && !tc->listing->err &&
	    !cache_listing_fresh(c, tc->listing, cache_now_ms(c))) {
		/* Relist due: keep serving this one, relist behind it. */
		cache_kick_relist(c, type);
	} else if (!cache_listing_fresh(c, tc->listing, cache_now_ms(c))) {
		l = g_new0(struct listing, 1);
		l->type = type;
		l->refs = 1; /* the type's reference */
		l->ids = g_array_new(FALSE, FALSE, sizeof(struct lent));
		pager_init(&l->pager, LIST_MAX_PAGES);
		l->started_ms = cache_now_ms(c);
		l->started_wall = c->opts.wall();
		l->total = -1;
		cache_listing_unref(tc->listing);
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
	cache_listing_unref(l);
	g_mutex_unlock(&c->lock);
}

/* Whether id is in l: a binary search of its ids, or a lookup in `in` (an
 * unsorted listing's ids). */
static bool listing_prune_has(struct listing *l, GHashTable *in, gpointer k)
{
	return in ? g_hash_table_contains(in, k) : cache_listing_contains(l, GPOINTER_TO_SIZE(k));
}

/* A complete, error-free listing is the only thing allowed to remove records:
 * drop clean records it did not contain that were fetched before it started.
 * A listing in id order is searched as it is (a set of a million ids would
 * take 16 MB at the moment memory peaks); only an unsorted one gets a set. */
static void listing_prune(struct cache *c, struct listing *l)
{
	struct tcache *tc = &c->t[l->type->idx];
	GHashTable *in = NULL;
	GHashTableIter it;
	gpointer k, v;

	if (l->unsorted) {
		in = g_hash_table_new(g_direct_hash, g_direct_equal);
		for (guint i = 0; i < l->ids->len; i++)
			g_hash_table_add(in, KEY(g_array_index(l->ids, struct lent, i).id));
	}
	g_hash_table_iter_init(&it, tc->recs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		struct rec *r = v;

		if (listing_prune_has(l, in, k) || r->local_epoch || r->fetched_ms >= l->started_ms)
			continue;
		g_hash_table_iter_steal(&it);
		g_queue_unlink(&c->lru, &r->lru);
		c->bytes -= r->len;
		cache_note_changed(c, l->type, r->id);
		cache_rec_free(r);
	}
	g_hash_table_iter_init(&it, tc->wanted);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!listing_prune_has(l, in, k))
			g_hash_table_iter_remove(&it);
	if (in)
		g_hash_table_destroy(in);
}

/* How many records of a type HubSpot counts (a search of limit 1). No lock
 * held. 0 and *total, or -errno. */
static int count_records(struct cache *c, const struct objtype *type, enum rl_prio prio,
			 int64_t deadline, uint64_t *total)
{
	json_object *req = search_req_new(), *resp = NULL, *t;
	struct hs_call call;
	int rc;

	search_req_props(req, NULL, 0);
	search_req_page(req, 1, NULL);
	cache_call_init(&call, prio, deadline);
	rc = hs_search(c->hc, &call, type->path, req, &resp);
	json_object_put(req);
	if (rc == 0 && json_object_object_get_ex(resp, "total", &t) &&
	    json_object_is_type(t, json_type_int) && json_object_get_int64(t) >= 0)
		*total = (uint64_t)json_object_get_int64(t);
	else if (rc == 0)
		rc = -EPROTO;
	json_object_put(resp);
	return rc;
}

static void listing_install(struct cache *c, struct listing *l);

/* --- the search side of a listing --------------------------------------- */

#define TAIL_PAGE 200
#define TAIL_WINDOW_PAGES 50 /* HubSpot's search stops at 10,000 results a query */
#define TAIL_INFLIGHT 5      /* pages on their way at once: the search budget's 5 a second */
#define TAIL_BUDGET_MS 600000

/* Search pages the split leaves to the search side: a quarter of the list
 * pages the type would take alone, so that its share (200 a page) and the
 * list side's (100) cost 0.75 x ceil(total / 100) calls, the fewest searches
 * (the slower budget: 5 a second) that reach that bound. The relist that
 * catches up a type served from disk (the only listing with a background
 * search side) has no reader waiting: its search side takes two thirds of
 * the records, so it costs about N/150 calls (10,000 records: ~67), taking
 * a little longer. */
static int64_t tail_cap(const struct listing *l)
{
	if (l->tail_prio == RL_PRIO_BACKGROUND)
		return (l->total * 2 / 3 + TAIL_PAGE - 1) / TAIL_PAGE;
	return ((l->total + LIST_PER_PAGE - 1) / LIST_PER_PAGE + 3) / 4;
}

/* Whether the two sides met. Either the list side (ascending) reached the
 * lowest id the search side (descending) has, or the two hold, without
 * overlapping, as many records as the search total counted: then the search
 * side's records above the list side's last id complete the listing, in
 * order; a record both saw is listed once, and one only the list side saw
 * (search lags writes) stays. Records written since, or within index_delay
 * before, that search did not show yet are found by the refresh that
 * follows (it searches from the listing's start less index_delay); a record
 * archived meanwhile goes at the next relist. Lock held. */
static void listing_meet(struct cache *c, struct listing *l)
{
	uint64_t high;

	if (!l->tail || l->tail_stop || l->complete || !l->ids->len || !l->tail_low)
		return;
	if (l->unsorted) { /* not in id order: the list side goes on alone */
		l->tail_stop = true;
		return;
	}
	high = g_array_index(l->ids, struct lent, l->ids->len - 1).id;
	if (high > l->tail_top) {
		/* The list side has ids above the highest search knows: the two
		 * disagree (a broken server), so the list side goes on alone, under
		 * its page bound. */
		log_warn("listing %s: list and search disagree (id %" G_GUINT64_FORMAT " above %"
			 G_GUINT64_FORMAT "); listing without search", l->type->name, high, l->tail_top);
		l->tail_stop = true;
		return;
	}
	if (high < l->tail_low &&
	    (l->total < 0 || (int64_t)l->ids->len + (int64_t)l->tail->len != l->total))
		return;
	for (guint i = l->tail->len; i-- > 0;) {
		struct lent *e = &g_array_index(l->tail, struct lent, i);

		if (e->id > high)
			cache_listing_append(l, e);
	}
	/* Its entries are in ids now: free them before the listing is installed
	 * (and pruned), where memory peaks (10 MB at a million records). */
	g_array_free(l->tail, TRUE);
	l->tail = g_array_new(FALSE, FALSE, sizeof(struct lent));
	listing_add_recent(c, l); /* this mount's creates search does not show yet */
	log_info("listing %s: list and search met at id %" G_GUINT64_FORMAT " (%u list, %u search "
		 "calls)", l->type->name, high, l->list_calls, l->tail_calls);
	l->met_at = high;
	l->tail_stop = true;
	l->complete = true;
	l->completed_ms = cache_now_ms(c);
	g_clear_pointer(&l->after, g_free);
	g_cond_broadcast(&c->cond);
}

/* One search page: the records below `below` (0: all), highest ids first,
 * from offset `offset` (each window its own query, so the 10,000-result
 * limit never applies). No lock held. 0 and *got (struct rendered), or
 * -errno. */
static int tail_page(struct cache *c, struct listing *l, const struct schema *sc, uint64_t below,
		     unsigned offset, GArray **got, int64_t *total)
{
	json_object *req = search_req_new(), *resp = NULL, *results, *t;
	struct hs_call call;
	char lim[24], off[16];
	int rc;

	if (below) {
		snprintf(lim, sizeof(lim), "%" G_GUINT64_FORMAT, below);
		search_req_filter(search_req_group(req), "hs_object_id", "LT", lim);
	}
	search_req_sort(req, "hs_object_id", false);
	search_req_props(req, NULL, 0);
	for (size_t i = 0; i < schema_shown_count(sc); i++) {
		const char *name = schema_shown(sc, i);

		search_req_props(req, &name, 1);
	}
	snprintf(off, sizeof(off), "%u", offset);
	search_req_page(req, TAIL_PAGE, offset ? off : NULL);
	cache_call_init_bg(c, &call, hs_now_ms() + TAIL_BUDGET_MS);
	call.prio = l->tail_prio;
	rc = hs_search(c->hc, &call, l->type->path, req, &resp);
	json_object_put(req);
	*got = NULL;
	if (rc == 0 && json_object_object_get_ex(resp, "results", &results)) {
		*got = cache_render_results(results, sc);
		if (json_object_object_get_ex(resp, "total", &t) && json_object_is_type(t, json_type_int))
			*total = json_object_get_int64(t);
	} else if (rc == 0) {
		rc = -EPROTO;
	} else if (rc != -ECANCELED) {
		log_info("listing %s, search side: %s; the list side goes on alone", l->type->name,
			 call.err.message);
	}
	json_object_put(resp);
	return rc;
}

/* Drop the answered pages not merged yet (their offsets may have moved). Lock
 * held. */
static void tail_drop_pending(struct listing *l)
{
	for (guint i = 0; i < l->tail_pend->len; i++) {
		GArray *pg = g_ptr_array_index(l->tail_pend, i);

		if (pg)
			g_array_free(pg, TRUE);
	}
	g_ptr_array_set_size(l->tail_pend, 0);
	l->tail_recs = l->tail->len;
}

/* What the search side does next: 1 ask for page tail_next, 0 wait (for the
 * first page's total, or for the window above to be merged: the next window
 * is the ids below its lowest), -1 nothing more (the thread ends). Pages are
 * asked for while the split leaves the search side more (tail_cap) and a
 * whole page is left between the sides; what is left then is the list
 * side's. Lock held. */
static int tail_claim(struct cache *c, struct listing *l)
{
	unsigned g = l->tail_next;
	int64_t left;

	if (l->tail_stop || l->tail_dry || l->tail_nomore || l->complete || l->err ||
	    cache_stopping(c))
		return -1;
	if (g > 0 && l->total < 0)
		return l->tail_merged ? -1 : 0; /* the top page told no total: one at a time */
	if (g > 0 && hs_client_shared(c->hc)) {
		/* Another client of the app showed up: the search budget is
		 * the whole account's, so the list side brings the rest. */
		log_info("listing %s: another client spends this app's budget; the list side "
			 "brings the rest", l->type->name);
		l->tail_nomore = true;
		return -1;
	}
	if (g > 0 && l->tail_recs >= TAIL_PAGE * tail_cap(l)) {
		l->tail_nomore = true;
		return -1;
	}
	if (g > 0) {
		left = l->total - (int64_t)l->ids->len - (l->fetching ? LIST_PER_PAGE : 0) -
		       l->tail_recs;
		if (left < TAIL_PAGE) {
			l->tail_nomore = true;
			return -1;
		}
	}
	if (g > 0 && g % TAIL_WINDOW_PAGES == 0 && l->tail_merged < g)
		return 0;
	return 1;
}

static gpointer tail_main(gpointer p);

/* Start a thread of the search side of l; false if none could be. Lock
 * held. */
static bool tail_spawn(struct cache *c, struct listing *l)
{
	GThread *th;

	l->refs++;
	c->tails++;
	l->tail_workers++;
	l->tail_running = true;
	th = g_thread_try_new("hubfs-listsearch", tail_main, l, NULL);
	if (th) {
		g_thread_unref(th);
		return true;
	}
	l->refs--;
	c->tails--;
	l->tail_running = --l->tail_workers > 0;
	return false;
}

/* The answer to page g: its records go into the cache, and the pages
 * answered in order join tail; the first one tells the total, and the
 * other threads start. got is freed. Lock held. */
static void tail_answer(struct cache *c, struct listing *l, unsigned g, int rc, GArray *got,
			int64_t total, uint64_t epoch)
{
	struct tcache *tc = &c->t[l->type->idx];
	GArray *pg;

	l->tail_inflight--;
	l->tail_calls++;
	if (rc || !got || l->tail_stop || l->complete) {
		if (got) {
			for (guint j = 0; j < got->len; j++)
				g_free(g_array_index(got, struct rendered, j).text);
			g_array_free(got, TRUE);
		}
		if ((rc || !got) && !l->complete)
			l->tail_stop = true; /* failed: the list side goes on alone */
		return;
	}
	if (total >= 0 && g == 0 && l->total < 0) {
		l->total = total;
		l->total_asked = true; /* no count needed */
	}
	if (total >= 0 && l->tail_win_total < 0) {
		l->tail_win_total = total;
	} else if (total >= 0 && total != l->tail_win_total) {
		/* Records came or went in the window between two of its pages, so
		 * the offsets moved: what is merged stays, the list side brings
		 * the rest. */
		log_info("listing %s: the search total moved (%" G_GINT64_FORMAT " to %"
			 G_GINT64_FORMAT "); the list side brings the rest", l->type->name,
			 l->tail_win_total, total);
		l->tail_nomore = true;
		tail_drop_pending(l);
		for (guint j = 0; j < got->len; j++)
			g_free(g_array_index(got, struct rendered, j).text);
		g_array_free(got, TRUE);
		return;
	}
	pg = g_array_sized_new(FALSE, FALSE, sizeof(struct lent), got->len);
	for (guint j = 0; j < got->len; j++) {
		struct rendered *x = &g_array_index(got, struct rendered, j);
		struct lent e = { x->id, x->len, x->mtime_ms };

		if (j && x->id >= g_array_index(got, struct rendered, j - 1).id)
			l->tail_stop = true; /* not descending: a broken server */
		if (g_hash_table_contains(tc->gone, KEY(e.id))) {
			g_free(x->text);
			continue;
		}
		g_array_append_val(pg, e);
		x->listed = true;
		cache_store_locked(c, l->type, x, epoch, cache_now_ms(c));
	}
	l->tail_recs += (int64_t)got->len - TAIL_PAGE;
	if (got->len < TAIL_PAGE)
		l->tail_nomore = true; /* nothing below this page */
	g_array_free(got, TRUE);
	if (g - l->tail_merged >= l->tail_pend->len)
		g_ptr_array_set_size(l->tail_pend, g - l->tail_merged + 1);
	g_ptr_array_index(l->tail_pend, g - l->tail_merged) = pg;
	/* merge the pages answered in order */
	while (!l->tail_stop && l->tail_pend->len && g_ptr_array_index(l->tail_pend, 0)) {
		pg = g_ptr_array_steal_index(l->tail_pend, 0);
		if (pg->len && l->tail_low && g_array_index(pg, struct lent, 0).id >= l->tail_low)
			l->tail_stop = true; /* not below the page above: a broken server */
		if (!l->tail_stop && pg->len) {
			if (!l->tail_merged)
				l->tail_top = g_array_index(pg, struct lent, 0).id;
			g_array_append_vals(l->tail, pg->data, pg->len);
			l->tail_low = g_array_index(pg, struct lent, pg->len - 1).id;
		}
		g_array_free(pg, TRUE);
		l->tail_merged++;
	}
	if (g == 0 && l->total >= 0 && !l->tail_stop && !l->tail_nomore) {
		int64_t more = MIN((int64_t)TAIL_INFLIGHT, tail_cap(l)) - l->tail_workers;

		while (more-- > 0 && tail_spawn(c, l))
			;
	}
	/* The list side may be waiting for this page (tail_ahead_wait): wake
	 * it now, not when its TAIL_PACE_MS wait runs out. */
	g_cond_broadcast(&c->cond);
	listing_meet(c, l);
}

/* A thread of the search side: asks for the next page while there is one to
 * ask for, until the sides meet or the search fails (the list side then
 * goes on alone). */
static gpointer tail_main(gpointer p)
{
	struct listing *l = p;
	struct cache *c = l->tail_cache;
	struct tcache *tc = &c->t[l->type->idx];
	const struct schema *sc;
	int claim;

	g_mutex_lock(&c->lock);
	sc = tc->schema;
	while ((claim = tail_claim(c, l)) >= 0) {
		GArray *got = NULL;
		uint64_t epoch = c->epoch, below;
		int64_t total = -1;
		unsigned g;
		int rc;

		if (claim == 0) {
			cache_wait_until(c, hs_now_ms() + 100);
			continue;
		}
		g = l->tail_next++;
		if (g == 1)
			l->tail_bound = l->tail_top + 1; /* not what was made since the first page */
		else if (g % TAIL_WINDOW_PAGES == 0 && g) {
			l->tail_bound = l->tail_low;
			l->tail_win_total = -1;
		}
		below = g ? l->tail_bound : 0;
		l->tail_inflight++;
		l->tail_recs += TAIL_PAGE;
		g_mutex_unlock(&c->lock);
		rc = tail_page(c, l, sc, below, (g % TAIL_WINDOW_PAGES) * TAIL_PAGE, &got, &total);
		g_mutex_lock(&c->lock);
		tail_answer(c, l, g, rc, got, total, epoch);
		if (l->tail_nomore && !l->tail_inflight && !l->tail_stop)
			l->tail_dry = true; /* nothing lower: the list side comes up to it */
		if (l->complete && tc->listing == l)
			listing_install(c, l);
	}
	if (l->tail_nomore && !l->tail_inflight && !l->tail_stop)
		l->tail_dry = true;
	l->tail_running = --l->tail_workers > 0;
	c->tails--;
	g_cond_broadcast(&c->cond);
	cache_listing_unref(l);
	cache_unlock_and_notify(c);
	return NULL;
}

/* Whether the list side should wait for the search side. Until the search
 * side's first page tells the total, the list side stays within a page of
 * it (in records); then it brings what the split leaves it (tail_cap): the
 * fewest calls for the fewest searches. Lock held. */
static bool tail_pacing(struct listing *l)
{
	int64_t share;

	if (!l->tail || !l->tail_running || l->tail_stop || l->tail_dry || l->complete)
		return false;
	/* The first search page tells the total and may hold all that is left
	 * (a type of 101-300 records): one list page until it answers. */
	if (l->total < 0 && !l->tail_merged)
		return l->ids->len >= LIST_PER_PAGE;
	if (l->total < 0)
		return (int64_t)l->ids->len >= l->tail_recs + LIST_PER_PAGE;
	share = l->total - MAX(TAIL_PAGE * tail_cap(l), l->tail_recs);
	return (int64_t)l->ids->len + LIST_PER_PAGE > share;
}

/* The list side waits at most this for one search page: a search slot
 * frees a second (and a margin) after its last answer. */
#define TAIL_PACE_MS 3000

/* Wait while the list side is ahead and the search side moves; true if the
 * caller should look again (it moved, or the listing completed). Lock held. */
static bool tail_ahead_wait(struct cache *c, struct listing *l, int64_t deadline)
{
	unsigned seen = l->tail_calls;
	int64_t until = hs_now_ms() + TAIL_PACE_MS;

	if (!tail_pacing(l))
		return false;
	if (deadline && deadline < until)
		until = deadline;
	while (tail_pacing(l) && l->tail_calls == seen && cache_wait_until(c, until))
		;
	return l->complete || l->tail_calls != seen || !tail_pacing(l);
}

/* Start the search side of l (more than a page to list): one thread for the
 * top page, which tells the total; the others start then. Lock held. */
static void tail_start(struct cache *c, struct listing *l, enum rl_prio prio)
{
	if (l->tail || !c->work || cache_stopping(c))
		return;
	l->tail = g_array_new(FALSE, FALSE, sizeof(struct lent));
	l->tail_pend = g_ptr_array_new();
	l->tail_win_total = -1;
	l->tail_prio = prio;
	l->tail_cache = c;
	if (hs_client_shared(c->hc)) {
		/* Searches are the whole account's 5 a second, and their
		 * answers do not say what the others take of them. */
		log_info("listing %s: another client spends this app's budget; listing without "
			 "search", l->type->name);
		l->tail_stop = true;
	} else if (!tail_spawn(c, l)) {
		l->tail_stop = true;
	}
}

/* A list page's records join l (unless the search side completed it
 * meanwhile) and the cache; frees got. Lock held. */
static void page_store(struct cache *c, struct listing *l, GArray *got, uint64_t epoch)
{
	struct tcache *tc = &c->t[l->type->idx];
	struct rec *r;

	for (guint j = 0; j < got->len; j++) {
		struct rendered *x = &g_array_index(got, struct rendered, j);
		struct lent e = { x->id, x->len, x->mtime_ms };

		if (g_hash_table_contains(tc->gone, KEY(e.id))) {
			g_free(x->text); /* archived here, not yet there */
			continue;
		}
		if (!l->complete)
			cache_listing_append(l, &e);
		x->listed = true;
		cache_store_locked(c, l->type, x, epoch, cache_now_ms(c));
		if ((r = g_hash_table_lookup(tc->recs, KEY(e.id))))
			r->listed = true;
	}
	g_array_free(got, TRUE);
}

/* Fetch the next page of listing l. Lock held on entry and exit (dropped for
 * the HTTP call); l->fetching guards against two fetchers, and only the
 * fetcher touches l->pager. */
static int fetch_page(struct cache *c, struct listing *l, enum rl_prio prio, int64_t deadline)
{
	struct tcache *tc = &c->t[l->type->idx];
	json_object *resp = NULL, *results = NULL;
	const char *next;
	struct hs_call call;
	GArray *got = NULL;
	uint64_t epoch, total = 0;
	const char *why = NULL;
	char *cursor;
	bool probe, counted;
	int rc;

	rc = cache_ensure_schema(c, l->type, deadline);
	if (rc)
		return rc;
	if (tc->denied) /* the schema came, the records were refused */
		return -EACCES;
	l->fetching = true;
	cursor = g_strdup(l->after);
	epoch = c->epoch;
	probe = !l->pager.max_pages && (l->pager.pages + 1) % LIST_PROBE_PAGES == 0;
	counted = probe && l->total >= 0; /* the progress display's search answered */
	if (counted)
		total = (uint64_t)l->total;
	g_mutex_unlock(&c->lock);

	if (prio == RL_PRIO_BACKGROUND)
		cache_call_init_bg(c, &call, deadline);
	else
		cache_call_init(&call, prio, deadline);
	rc = cache_deny(c, l->type, &call,
			hs_list_page(c->hc, &call, l->type->path, schema_props_csv(tc->schema),
				     cursor, false, &resp));
	g_free(cursor);
	if (rc == 0 && probe && !counted && count_records(c, l->type, prio, deadline, &total) != 0)
		probe = false; /* asked again LIST_PROBE_PAGES pages later */
	if (rc == 0 && json_object_object_get_ex(resp, "results", &results))
		got = cache_render_results(results, tc->schema);
	else if (rc == -EAGAIN && prio == RL_PRIO_BACKGROUND) /* a relist's deadline */
		log_info("listing %s: %s", l->type->name, call.err.message);
	else if (rc && rc != -ECANCELED && (rc != -EACCES || call.err.http_status != 403))
		log_warn("listing %s: %s", l->type->name, call.err.message);

	g_mutex_lock(&c->lock);
	l->fetching = false;
	l->list_calls++;
	g_cond_broadcast(&c->cond);
	if (rc) {
		/* A timeout of this reader is not a failure of the listing. */
		if (rc != -EAGAIN)
			l->err = rc;
		json_object_put(resp);
		return rc;
	}
	if (got)
		page_store(c, l, got, epoch);
	if (l->complete) {
		json_object_put(resp);
		return 0;
	}
	g_free(l->after);
	l->after = NULL;
	if ((next = json_util_paging_after(resp)))
		l->after = g_strdup(next);
	if (probe)
		pager_set_total(&l->pager, total, LIST_PER_PAGE);
	if (pager_next(&l->pager, l->after, &why) != 0) {
		log_err("listing %s: %s (page %u); the listing stops here", l->type->name,
			why, l->pager.pages);
		l->err = -EIO;
		json_object_put(resp);
		return -EIO;
	}
	if (!l->after || !*l->after) { /* no (usable) cursor: the last page */
		l->complete = true;
		l->completed_ms = cache_now_ms(c);
		l->tail_stop = true;
	} else if (!l->tail && (tc->listing == l || tc->unconfirmed)) {
		/* More than a page: search pages down from the top meanwhile (a
		 * listing someone waits for, or the relist that catches up a type
		 * served from disk; a periodic relist lists alone). */
		tail_start(c, l, prio);
	}
	listing_meet(c, l);
	if (l->complete) {
		/* done */
	} else if (!l->total_asked && !l->tail_running && tc->listing == l && c->work) {
		/* More than a page: a progress display wants "n of total". */
		l->total_asked = true;
		cache_work_push(c, WORK_TOTAL, l->type);
	}
	json_object_put(resp);
	return 0;
}

/* A listing just completed: it becomes the type's listing (if it is not
 * already), the type is synced as of its start (the next refresh searches
 * from there) and fresh as of now ("a cached listing is fresh for ttl": a
 * 100,000-record listing takes longer than ttl, and is not stale the moment
 * it is complete), and records it did not contain are pruned. Lock held. */
static void listing_install(struct cache *c, struct listing *l)
{
	struct tcache *tc = &c->t[l->type->idx];

	if (l->installed)
		return;
	l->installed = true;
	if (tc->listing != l) {
		l->refs++;
		cache_listing_unref(tc->listing);
		tc->listing = l;
	}
	if (l->started_wall >= tc->sync_wall_ms) {
		tc->synced_ms = cache_now_ms(c);
		tc->sync_wall_ms = l->started_wall;
	}
	listing_prune(c, l);
	/* On disk: rows the listing did not see go, and its marks are set, after
	 * every record it stored. */
	if (cache_disk_on(c, tc))
		disk_listing_complete(c->disk, l->type->id, l->started_wall);
	if (tc->disk_listing)
		g_array_free(tc->disk_listing, TRUE);
	tc->disk_listing = NULL;
	tc->unconfirmed = false;
}

int cache_listing_entry(struct cache *c, struct listing *l, size_t i, int64_t deadline,
			uint64_t *id, struct rec_attr *a)
{
	struct tcache *tc = &c->t[l->type->idx];
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
			if (cache_listing_fresh(c, l, cache_now_ms(c))) {
				a->size = e->size; /* evicted: the page's attributes */
				a->mtime_ms = e->mtime_ms;
				break;
			}
			rc = cache_lookup_locked(c, l->type, *id, deadline, &r);
			if (rc == 0) {
				a->size = r->len;
				a->mtime_ms = r->mtime_ms;
			}
			break;
		}
		if (l->complete && l->tail_running) {
			/* The sides met while a search page was on its way: its
			 * answer is not needed, but the listing's calls end with it. */
			if (!cache_wait_until(c, deadline)) {
				rc = -EAGAIN;
				break;
			}
			continue;
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
			if (!cache_wait_until(c, deadline)) {
				rc = -EAGAIN;
				break;
			}
			continue;
		}
		if (c->disk && tc->disk == 0) {
			/* A listing kept on disk is known once the schema is. */
			rc = cache_ensure_schema(c, l->type, deadline);
			if (rc)
				break;
			continue;
		}
		if (tc->listing == l && cache_listing_adopt_disk(c, l))
			continue;
		if (tail_ahead_wait(c, l, deadline))
			continue;
		rc = fetch_page(c, l, RL_PRIO_USER, deadline);
		if (rc)
			break;
		if (l->complete && tc->listing == l)
			listing_install(c, l);
	}
	cache_unlock_and_notify(c);
	return rc;
}

#define RELIST_MIN_BUDGET_MS 120000
#define RELIST_MS_PER_RECORD 10 /* a second a page (1,000 s for 100,000 records: a
				 * background relist of them took ~130 s at 100/10 s) */

/* The time a whole relist may take: relist_interval (by then the next one is
 * due), or three times what the last complete listing took if that is
 * longer (a big account on a slow budget). A listing kept on disk says
 * nothing of how long it took: the relist that catches up a type served
 * from disk (whether or not its listing was opened yet: one due at mount
 * starts before any `ls`) gets at least RELIST_MIN_BUDGET_MS, and a second
 * per page of what the disk holds or the catch-up expects (hint). Lock
 * held. */
static int64_t relist_budget_ms(struct cache *c, struct tcache *tc, int64_t hint)
{
	int64_t budget = c->opts.relist_ms > 0 ? c->opts.relist_ms : RELIST_MIN_BUDGET_MS;
	struct listing *prev = tc->listing;

	if (tc->unconfirmed || (prev && prev->complete && prev->completed_ms == prev->started_ms &&
				tc->from_disk)) {
		int64_t n = MAX(hint, 0);

		if (prev && prev->complete)
			n = MAX(n, (int64_t)prev->ids->len);
		if (tc->disk_listing)
			n = MAX(n, (int64_t)tc->disk_listing->len);
		budget = MAX(budget, MAX(RELIST_MIN_BUDGET_MS, n * RELIST_MS_PER_RECORD));
	}
	/* (a listing marked due for a relist has completed_ms far in the past:
	 * no duration to go by) */
	if (prev && prev->complete && prev->completed_ms > prev->started_ms &&
	    prev->completed_ms - prev->started_ms < INT64_MAX / 3 &&
	    3 * (prev->completed_ms - prev->started_ms) > budget)
		budget = 3 * (prev->completed_ms - prev->started_ms);
	return budget;
}

/* The periodic relist, in the background: a new listing is fetched whole,
 * under one deadline, and installed only if complete and error-free; until
 * then, and if it fails, the previous listing stays (a failed relist removes
 * nothing). */
void cache_relist(struct cache *c, const struct objtype *type)
{
	struct tcache *tc = &c->t[type->idx];
	struct listing *l = g_new0(struct listing, 1);
	int64_t budget, deadline;
	int rc = 0;

	l->type = type;
	l->refs = 1;
	l->ids = g_array_new(FALSE, FALSE, sizeof(struct lent));
	pager_init(&l->pager, LIST_MAX_PAGES);
	l->total = -1;
	g_mutex_lock(&c->lock);
	if (tc->relist_hint > 0) /* the catch-up's bound: no count needed */
		l->total = tc->relist_hint;
	tc->relist_hint = 0;
	l->started_ms = cache_now_ms(c);
	l->started_wall = c->opts.wall();
	budget = relist_budget_ms(c, tc, l->total);
	deadline = hs_now_ms() + budget;
	/* Each page may wait its turn at the rate limiter (background class);
	 * unmounting ends the relist between pages, installing nothing. */
	while (rc == 0 && !l->complete) {
		if (tail_ahead_wait(c, l, deadline))
			continue;
		rc = cache_stopping(c) ? -ECANCELED : fetch_page(c, l, RL_PRIO_BACKGROUND, deadline);
	}
	tc->relisting = false;
	if (rc == 0) {
		cache_team_relisted(c, type, tc->listing, l); /* a team hears what went */
		if (tc->unconfirmed && tc->catchup && !strcmp(tc->catchup, "relist"))
			tc->catchup_calls += l->list_calls + l->tail_calls;
		listing_install(c, l);
	} else {
		tc->relist_fail_ms = cache_now_ms(c);
		if (hs_now_ms() >= deadline)
			log_notice("relist of %s: not done within %" G_GINT64_FORMAT " s (%u pages); "
				 "the previous listing stays", type->name, budget / 1000,
				 l->pager.pages);
	}
	cache_listing_unref(l);
	log_debug("relist of %s: %s", type->name, rc ? "failed, previous listing kept" : "done");
	cache_unlock_and_notify(c);
}

void cache_listing_total(struct cache *c, const struct objtype *type)
{
	json_object *req = json_object_new_object(), *resp = NULL, *v;
	struct listing *l;
	struct hs_call call;
	int64_t total = -1;
	int rc;

	json_object_object_add(req, "limit", json_object_new_int(1));
	cache_call_init(&call, RL_PRIO_BACKGROUND, hs_now_ms() + 120000);
	rc = hs_search(c->hc, &call, type->path, req, &resp);
	if (rc == 0 && json_object_object_get_ex(resp, "total", &v) && json_object_is_type(v, json_type_int))
		total = json_object_get_int64(v);
	else
		log_debug("total of %s: %s", type->name, rc ? call.err.message : "no total");
	json_object_put(req);
	json_object_put(resp);
	g_mutex_lock(&c->lock);
	l = c->t[type->idx].listing;
	if (l && l->total_asked && !l->complete)
		l->total = total;
	g_mutex_unlock(&c->lock);
}

void cache_listing_note(struct cache *c, const struct objtype *type, uint64_t id, bool add)
{
	struct listing *l;

	g_mutex_lock(&c->lock);
	l = c->t[type->idx].listing;
	if (l) {
		guint i;

		for (i = 0; i < l->ids->len; i++)
			if (g_array_index(l->ids, struct lent, i).id == id)
				break;
		if (add && i == l->ids->len) {
			struct rec *r = g_hash_table_lookup(c->t[type->idx].recs, KEY(id));
			struct lent e = { id, r ? r->len : 0, r ? r->mtime_ms : 0 };

			cache_listing_append(l, &e);
		}
		if (add && !g_hash_table_contains(c->t[type->idx].recs, KEY(id)))
			g_hash_table_add(c->t[type->idx].wanted, KEY(id));
		else if (!add && i < l->ids->len)
			g_array_remove_index(l->ids, i);
	}
	if (add) {
		g_hash_table_remove(c->t[type->idx].missing, KEY(id));
		g_hash_table_remove(c->t[type->idx].gone, KEY(id));
	} else {
		cache_note_gone(c, &c->t[type->idx], id, GONE_PENDING);
	}
	cache_note_recent(c, &c->t[type->idx], id);
	if (add && !l && !g_hash_table_contains(c->t[type->idx].recs, KEY(id)))
		g_hash_table_add(c->t[type->idx].wanted, KEY(id));
	if (!add) {
		struct rec *r = g_hash_table_lookup(c->t[type->idx].recs, KEY(id));

		if (r)
			cache_rec_remove(c, r);
		g_hash_table_remove(c->t[type->idx].wanted, KEY(id));
		cache_disk_forget(c, type, id);
		cache_note_missing(c, &c->t[type->idx], id, cache_now_ms(c) + c->opts.ttl_ms);
		cache_note_changed(c, type, id);
	}
	cache_unlock_and_notify(c);
}
