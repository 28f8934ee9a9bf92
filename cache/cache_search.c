/* cache_search.c - the searches of query directories (search/<type>/<query>/):
 * HubSpot's search run page by page under the deadline of the syscall that
 * asked, windowed on hs_object_id past HubSpot's 10,000-result cap, its
 * answer kept for ttl and shared (one search at a time per query; the others
 * wait for it, never past their own deadline), its records stored in the
 * cache, and overlaid with this mount's recent writes, which HubSpot's search
 * index does not show yet, matched locally. A run cut short by its deadline
 * is gone on with by the next caller.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/model/json_util.h"
#include "cache/model/query.h"
#include "cache/model/record.h"

#define SEARCH_MAX 10000     /* HubSpot's search hands out no more per query */
#define SEARCH_PAGE 200
#define OVERLAY_MARGIN_MS 2000

struct sweep;

struct cache_search {
	const struct objtype *type;
	struct query *q;     /* immutable once parsed: used without a lock */
	int refs;            /* atomic */
	/* protected by c->lock: */
	uint64_t *ids;       /* HubSpot's last answer, sorted */
	size_t n;
	int64_t fetched_ms;  /* hs_now_ms of that answer; 0: none */
	bool fetching;       /* a caller is running the search */
	struct sweep *cut;   /* a run cut short (deadline, failed call) after some
			      * pages, for the next caller to go on from; or NULL */
};

static void sweep_free(struct sweep *w);

int cache_search_new(struct cache *c, const struct objtype *t, const char *text, int64_t deadline,
		     struct cache_search **out, char **why)
{
	const struct schema *s = NULL;
	struct query *q = NULL;
	int rc;

	*out = NULL;
	if (why)
		*why = NULL;
	rc = cache_schema(c, t, deadline, &s);
	if (rc)
		return rc;
	rc = query_parse(text, t, s, &q, why);
	if (rc)
		return rc;
	*out = g_new0(struct cache_search, 1);
	(*out)->type = t;
	(*out)->q = q;
	(*out)->refs = 1;
	return 0;
}

struct cache_search *cache_search_ref(struct cache_search *s)
{
	g_atomic_int_inc(&s->refs);
	return s;
}

void cache_search_unref(struct cache_search *s)
{
	if (!s || !g_atomic_int_dec_and_test(&s->refs))
		return;
	query_free(s->q);
	g_free(s->ids);
	sweep_free(s->cut);
	g_free(s);
}

const struct objtype *cache_search_type(const struct cache_search *s)
{
	return s->type;
}

void cache_search_forget(struct cache *c, struct cache_search *s)
{
	g_mutex_lock(&c->lock);
	if (!s->fetching) {
		g_clear_pointer(&s->ids, g_free);
		s->n = 0;
		s->fetched_ms = 0;
		g_clear_pointer(&s->cut, sweep_free);
	}
	g_mutex_unlock(&c->lock);
}

/* One run of the search, window by window: HubSpot's search hands out at
 * most SEARCH_MAX results per query (paging past that is refused with 400),
 * so once a window reaches the cap the next one asks for hs_object_id >
 * the last id seen, the results being sorted by hs_object_id. A run cut
 * short keeps its sweep (what it has, where it stopped) for the next caller
 * to go on from, within ttl of the run's start: a query too large for one
 * op_timeout (about 100 pages at HubSpot's 5 searches a second) is listed
 * after a few tries, each page fetched once. */
struct sweep {
	GArray *ids;         /* every window's results so far */
	char *after;         /* the next page's cursor in this window; NULL: its first */
	uint64_t above;      /* the window's bound (hs_object_id > above); 0: none */
	uint64_t last;       /* the highest id returned so far */
	size_t got;          /* results of this window */
	bool capped;         /* the window ended at the result cap, not at the end */
	bool in_window;      /* got, capped and pg belong to a window under way */
	bool broken;         /* the server misbehaved: start over next time */
	int64_t total;       /* the first window's total; -1 unknown */
	int64_t started_ms;  /* hs_now_ms at the run's start */
	struct pager pg;     /* of this window */
};

static struct sweep *sweep_new(void)
{
	struct sweep *w = g_new0(struct sweep, 1);

	w->ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	w->total = -1;
	w->started_ms = hs_now_ms();
	return w;
}

static void sweep_free(struct sweep *w)
{
	if (!w)
		return;
	if (w->ids)
		g_array_free(w->ids, TRUE);
	g_free(w->after);
	pager_destroy(&w->pg);
	g_free(w);
}

/* The page's total, or -1. */
static int64_t total_of(json_object *resp)
{
	json_object *jtotal;

	if (json_object_object_get_ex(resp, "total", &jtotal) &&
	    json_object_is_type(jtotal, json_type_int) && json_object_get_int64(jtotal) >= 0)
		return json_object_get_int64(jtotal);
	return -1;
}

/* One page of the current window: its ids appended to w->ids, its records
 * stored, w->after the next cursor (NULL at the end of the window). On a
 * failure w->after is left for the page to be asked again. A 400 for a page
 * past the window's first is HubSpot's result cap (the sandbox can lower
 * it): the window ends there. No lock held. */
static int search_page(struct cache *c, struct cache_search *s, const char *const *props,
		       size_t np, struct sweep *w, int64_t deadline, struct hs_error *err)
{
	json_object *req = query_request(s->q, props, np, SEARCH_PAGE, w->after, w->above);
	json_object *resp = NULL, *results;
	uint64_t epoch = cache_epoch(c);
	bool deeper = w->after != NULL;
	struct hs_call call;
	const char *next, *why = NULL;
	int64_t total;
	int rc;

	cache_call_init(&call, RL_PRIO_USER, deadline);
	rc = hs_search(c->hc, &call, s->type->path, req, &resp);
	json_object_put(req);
	if (rc == -EINVAL && deeper && call.err.http_status == 400 && w->got) {
		g_clear_pointer(&w->after, g_free);
		w->capped = true;
		json_object_put(resp);
		return 0;
	}
	if (rc) {
		*err = call.err;
		json_object_put(resp);
		return rc;
	}
	g_clear_pointer(&w->after, g_free);
	results = json_object_object_get_ex(resp, "results", &results) ? results : NULL;
	for (size_t i = 0; i < json_util_array_len(results); i++) {
		json_object *r = json_object_array_get_idx(results, i), *jid;
		const char *sid;
		uint64_t id;

		if (!json_object_object_get_ex(r, "id", &jid))
			continue;
		sid = json_util_str(jid);
		if (record_parse_id(sid, strlen(sid), &id) != 0)
			continue;
		g_array_append_val(w->ids, id);
		w->got++;
		w->last = MAX(w->last, id);
		cache_store(c, s->type, r, epoch);
	}
	next = json_util_paging_after(resp);
	if (next && *next) {
		if (w->got < SEARCH_MAX && g_ascii_strtoll(next, NULL, 10) < SEARCH_MAX)
			w->after = g_strdup(next);
		else
			w->capped = true;
	}
	total = total_of(resp);
	if (!deeper && w->total < 0)
		w->total = total;
	if (!w->pg.max_pages && total >= 0)
		pager_set_total(&w->pg, (uint64_t)total, SEARCH_PAGE);
	if (pager_next(&w->pg, w->after, &why) != 0) {
		snprintf(err->message, sizeof(err->message), "%s", why);
		g_clear_pointer(&w->after, g_free);
		w->broken = true; /* not to be gone on from */
		rc = -EIO;
	}
	json_object_put(resp);
	return rc;
}

/* After a window that ended at the cap: 1 to go on with the next window, 0
 * to stop (err says why, if the listing is short). */
static int next_window(struct cache_search *s, struct sweep *w, struct hs_error *err)
{
	size_t have = w->ids->len;

	if (w->total >= 0 && have >= (size_t)w->total)
		return 0; /* the cap fell on the last match */
	if (w->last <= w->above) {
		snprintf(err->message, sizeof(err->message), "HubSpot's search stopped at %zu "
			 "results without moving past hs_object_id %" G_GUINT64_FORMAT
			 "; listing those", have, w->above);
		return 0;
	}
	if (!query_can_window(s->q)) {
		snprintf(err->message, sizeof(err->message), "the query matches %" G_GINT64_FORMAT
			 " records but HubSpot's search hands out %zu at most, and paging past that "
			 "needs one more condition (hs_object_id) in every group, over HubSpot's 6 a "
			 "group or 18 in all; listing the first %zu", w->total, w->got, have);
		return 0;
	}
	/* Bounded: records created meanwhile may add a tenth to the total. */
	if (w->total >= 0 && have > (size_t)w->total + (size_t)w->total / 10 + SEARCH_PAGE) {
		snprintf(err->message, sizeof(err->message), "HubSpot's search returned %zu "
			 "results for a total of %" G_GINT64_FORMAT "; stopped there", have, w->total);
		return 0;
	}
	w->above = w->last;
	return 1;
}

/* Run the search from where w stands: every window, every page, under one
 * deadline. No lock held. */
static int run_search(struct cache *c, struct cache_search *s, struct sweep *w, int64_t deadline,
		      struct hs_error *err)
{
	const struct schema *sc = NULL;
	const char **props;
	size_t np;
	int rc;

	rc = cache_schema(c, s->type, deadline, &sc);
	if (rc)
		return rc;
	np = schema_shown_count(sc);
	props = g_new(const char *, np + 1);
	for (size_t i = 0; i < np; i++)
		props[i] = schema_shown(sc, i);
	for (;;) {
		if (!w->in_window) {
			w->got = 0;
			w->capped = false;
			pager_destroy(&w->pg);
			pager_init(&w->pg, SEARCH_MAX / SEARCH_PAGE + 2);
			w->in_window = true;
		}
		do
			rc = search_page(c, s, props, np, w, deadline, err);
		while (rc == 0 && w->after);
		if (rc || !w->capped || !next_window(s, w, err))
			break;
		w->in_window = false;
	}
	g_free(props);
	return rc;
}

/* This mount's writes of the last index_delay (and a margin) that the search
 * index may not show yet, matched against the query locally: ids gains the
 * ones that match and loses the ones that do not (or are archived). */
static void overlay(struct cache *c, struct cache_search *s, GArray *ids, int64_t deadline)
{
	int64_t since = c->opts.wall() - c->opts.index_delay_ms - OVERLAY_MARGIN_MS;
	GHashTable *set = g_hash_table_new(g_direct_hash, g_direct_equal);
	GHashTableIter it;
	uint64_t *recent = NULL;
	gpointer k;
	size_t n = 0;

	cache_recent_local(c, s->type, since, &recent, &n);
	if (!n)
		goto out;
	for (guint i = 0; i < ids->len; i++)
		g_hash_table_add(set, KEY(g_array_index(ids, uint64_t, i)));
	for (size_t i = 0; i < n; i++) {
		json_object *o = NULL, *props;
		bool match = false;
		char *text = NULL;
		size_t len;

		if (!cache_record_gone(c, s->type, recent[i]) &&
		    cache_record_text(c, s->type, recent[i], deadline, &text, &len) == 0) {
			o = json_tokener_parse(text);
			match = o && json_object_object_get_ex(o, "properties", &props) &&
				query_match(s->q, props);
		}
		json_object_put(o);
		g_free(text);
		if (match)
			g_hash_table_add(set, KEY(recent[i]));
		else
			g_hash_table_remove(set, KEY(recent[i]));
	}
	g_array_set_size(ids, 0);
	g_hash_table_iter_init(&it, set);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		uint64_t id = UNKEY(k);

		g_array_append_val(ids, id);
	}
out:
	g_hash_table_destroy(set);
	g_free(recent);
}

/* Sort ids, dropping repeats (a record that moved between pages). */
static void sort_unique(GArray *ids)
{
	guint n = 0;

	if (ids->len < 2)
		return;
	qsort(ids->data, ids->len, sizeof(uint64_t), record_id_cmp);
	for (guint i = 0; i < ids->len; i++)
		if (!n || g_array_index(ids, uint64_t, i) != g_array_index(ids, uint64_t, n - 1))
			g_array_index(ids, uint64_t, n++) = g_array_index(ids, uint64_t, i);
	g_array_set_size(ids, n);
}

/* A run that failed: kept in s->cut if it got anywhere (err says so), so
 * the next caller goes on from there. Lock held. */
static void keep_cut(struct cache *c, struct cache_search *s, struct sweep *w,
		     struct hs_error *err)
{
	g_autofree char *note = NULL, *of = NULL;

	if (w->broken || !w->ids->len || cache_stopping(c)) {
		sweep_free(w);
		return;
	}
	of = w->total >= 0 ? g_strdup_printf(" of %" G_GINT64_FORMAT, w->total) : g_strdup("");
	note = g_strdup_printf("%s; the %u results%s fetched so far are kept: list again within "
			       "ttl to go on from there", err->message[0] ? err->message : "stopped",
			       w->ids->len, of);
	g_strlcpy(err->message, note, sizeof(err->message));
	s->cut = w;
}

/* HubSpot's answer for s, fresh within ttl: reused, or searched for by this
 * caller, or waited for from another. Returns it (a copy) in *out, or -errno
 * when there is none. Lock held on entry and exit. */
static int answer_locked(struct cache *c, struct cache_search *s, int64_t deadline, GArray **out,
			 struct hs_error *err)
{
	GArray *a;
	int rc;

	/* Another caller is searching: wait for it, but not past our own
	 * deadline; then serve the last answer, if there is one. */
	while (s->fetching && cache_wait_until(c, deadline))
		;
	if (s->fetching && !s->fetched_ms)
		return -EAGAIN;
	if (!s->fetching && (!s->fetched_ms || hs_now_ms() >= s->fetched_ms + c->opts.ttl_ms)) {
		struct sweep *w = g_steal_pointer(&s->cut);

		if (w && hs_now_ms() >= w->started_ms + c->opts.ttl_ms)
			g_clear_pointer(&w, sweep_free); /* too old to go on from */
		if (!w)
			w = sweep_new();
		s->fetching = true;
		g_mutex_unlock(&c->lock);
		rc = run_search(c, s, w, deadline, err);
		if (rc == 0)
			sort_unique(w->ids);
		g_mutex_lock(&c->lock);
		s->fetching = false;
		g_cond_broadcast(&c->cond);
		if (rc == 0) {
			g_free(s->ids);
			s->n = w->ids->len;
			s->ids = (uint64_t *)(void *)g_array_free(g_steal_pointer(&w->ids), FALSE);
			s->fetched_ms = hs_now_ms();
			sweep_free(w);
		} else {
			keep_cut(c, s, w, err);
			if (!s->fetched_ms)
				return rc;
			/* serve the last answer rather than fail */
		}
	}
	a = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), (guint)s->n);
	if (s->n)
		g_array_append_vals(a, s->ids, (guint)s->n);
	*out = a;
	return 0;
}

int cache_search_results(struct cache *c, struct cache_search *s, int64_t deadline, uint64_t **ids,
			 size_t *n, struct hs_error *err)
{
	struct hs_error ignored;
	GArray *a = NULL;
	int rc;

	if (!err)
		err = &ignored;
	memset(err, 0, sizeof(*err));
	*ids = NULL;
	*n = 0;
	g_mutex_lock(&c->lock);
	rc = answer_locked(c, s, deadline, &a, err);
	g_mutex_unlock(&c->lock);
	if (rc)
		return rc;
	overlay(c, s, a, deadline);
	if (a->len > 1)
		qsort(a->data, a->len, sizeof(uint64_t), record_id_cmp);
	*n = a->len;
	*ids = (uint64_t *)(void *)g_array_free(a, FALSE);
	return 0;
}
