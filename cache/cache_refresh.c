/* cache_refresh.c - keeping types fresh: the incremental refresh (one search
 * on the last-modified property, paged, windowed past 10,000 results), the
 * background worker that runs refreshes and relists (opts.background), and
 * what this mount changed, for overlaying search results.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/record.h"
#include "client/log.h"

/* Pages of one search window while its total is not known (10,000 results
 * at 200 a page is 50). */
#define REFRESH_MAX_PAGES 60

/* --- queueing background work ------------------------------------------ */

/* Queue a background relist of a type unless one is pending. Lock held. */
void cache_kick_relist(struct cache *c, int type)
{
	struct tcache *tc = &c->t[type];

	if (!c->work || tc->relisting || cache_stopping(c))
		return;
	if (tc->relist_fail_ms && cache_now_ms(c) < tc->relist_fail_ms + c->opts.ttl_ms)
		return;
	tc->relisting = true;
	g_async_queue_push(c->work, GINT_TO_POINTER(type + 1 + WORK_RELIST));
}

bool cache_type_stale(struct cache *c, struct tcache *tc, int64_t now)
{
	return tc->sync_wall_ms && now >= tc->synced_ms + c->opts.ttl_ms;
}

/* Queue a background refresh of a type unless one is pending. Lock held. */
void cache_kick_refresh(struct cache *c, int type)
{
	struct tcache *tc = &c->t[type];

	if (!c->work || tc->refreshing || cache_stopping(c))
		return;
	/* After a failure, wait a little before asking again (offline). */
	if (tc->refresh_fail_ms && cache_now_ms(c) < tc->refresh_fail_ms + 2000)
		return;
	tc->refreshing = true;
	g_async_queue_push(c->work, GINT_TO_POINTER(type + 1));
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
	struct pager pg;         /* of the current 10,000-result window */
	int rc = 0, pages = 0;

	g_mutex_lock(&c->lock);
	if (!tc->sync_wall_ms) {
		tc->refreshing = false;
		g_mutex_unlock(&c->lock);
		return 0; /* nothing of this type was ever fetched */
	}
	rc = cache_ensure_schema(c, type, deadline);
	if (rc) {
		tc->refreshing = false;
		g_mutex_unlock(&c->lock);
		return rc;
	}
	/* Everything changed since the last sync, less the indexing delay (a change
	 * made just before it may not have been searchable yet), less a second. */
	lower = tc->sync_wall_ms - c->opts.index_delay_ms - 1000;
	start_wall = c->opts.wall();
	start_mono = cache_now_ms(c);
	epoch = c->epoch;
	g_mutex_unlock(&c->lock);
	last_ts = lower;
	pager_init(&pg, REFRESH_MAX_PAGES);

	for (;;) {
		json_object *req = refresh_request(lastmod, lower, tc->schema, after);
		json_object *resp = NULL, *results = NULL, *paging, *next, *jafter, *jtotal;
		struct hs_call call;
		const char *why = NULL;
		GArray *got = NULL;

		if (prio == RL_PRIO_BACKGROUND)
			cache_call_init_bg(c, &call, deadline);
		else
			cache_call_init(&call, prio, deadline);
		rc = hs_search(c->hc, &call, objtype_name(type), req, &resp);
		json_object_put(req);
		pages++;
		if (rc) {
			log_info("refresh of %s: %s", objtype_name(type), call.err.message);
			json_object_put(resp);
			break;
		}
		if (json_object_object_get_ex(resp, "results", &results))
			got = cache_render_results(results, tc->schema);
		if (!pg.max_pages && json_object_object_get_ex(resp, "total", &jtotal) &&
		    json_object_is_type(jtotal, json_type_int) && json_object_get_int64(jtotal) >= 0)
			pager_set_total(&pg, (uint64_t)json_object_get_int64(jtotal), 200);
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
			/* Created elsewhere: a complete listing learns of it here (also
			 * if it was read by id, or through a link, before). */
			struct rec *r = g_hash_table_lookup(tc->recs, KEY(e.id));
			bool listed = tc->listing && tc->listing->complete;

			if (listed && !(r && r->listed) && !listing_has(tc->listing, e.id))
				g_array_append_val(tc->listing->ids, e);
			g_hash_table_remove(tc->missing, KEY(e.id));
			cache_store_locked(c, type, x, epoch, cache_now_ms(c));
			if (listed && (r = g_hash_table_lookup(tc->recs, KEY(e.id))))
				r->listed = true;
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
			if (pager_next(&pg, a, &why) != 0) {
				log_err("refresh of %s: %s (page %u); relisting instead",
					objtype_name(type), why, pg.pages);
				json_object_put(resp);
				rc = -EIO;
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
				pager_destroy(&pg); /* a new window: its own cursors and total */
				pager_init(&pg, REFRESH_MAX_PAGES);
			} else {
				after = g_strdup(a);
			}
			json_object_put(resp);
			/* Unmounting: a background refresh ends here, unfinished. */
			if (prio == RL_PRIO_BACKGROUND && cache_stopping(c)) {
				rc = -ECANCELED;
				break;
			}
			continue;
		}
		json_object_put(resp);
		break;
	}
	g_free(after);
	pager_destroy(&pg);

	g_mutex_lock(&c->lock);
	tc->refreshing = false;
	if (rc == 0) {
		tc->synced_ms = start_mono;
		tc->sync_wall_ms = start_wall;
		tc->refresh_fail_ms = 0;
	} else {
		tc->refresh_fail_ms = cache_now_ms(c);
		if (rc == -EIO && tc->listing && tc->listing->complete)
			tc->listing->completed_ms = INT64_MIN / 2; /* relist */
	}
	g_cond_broadcast(&c->cond);
	log_debug("refresh of %s: %d page(s), rc %d", objtype_name(type), pages, rc);
	cache_unlock_and_notify(c);
	return rc;
}

gpointer cache_worker_main(gpointer p)
{
	struct cache *c = p;

	for (;;) {
		gpointer v = g_async_queue_pop(c->work);
		int type;

		if (v == WORK_STOP || cache_stopping(c))
			break;
		type = GPOINTER_TO_INT(v) - 1;
		if (type >= WORK_TOTAL)
			cache_listing_total(c, type - WORK_TOTAL);
		else if (type >= WORK_RELIST)
			cache_relist(c, type - WORK_RELIST);
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
			cache_kick_refresh(c, t);
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
