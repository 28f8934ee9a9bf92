/* cache_account.c - the read-only account data: the pipelines of deals and
 * tickets, and the owners, each fetched on first use and kept.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "client/log.h"

/* 100 owners a page: a million owners is far past any account. */
#define OWNERS_MAX_PAGES 10000

/* --- pipelines and owners --------------------------------------------- */

int cache_pipelines_text(struct cache *c, const struct objtype *type, int64_t deadline, char **text,
			 size_t *len)
{
	struct tcache *tc = &c->t[type->idx];
	json_object *resp = NULL, *results;
	struct hs_call call;
	char *s = NULL;
	size_t slen = 0;
	int rc = 0;

	g_mutex_lock(&c->lock);
	if (!tc->pipelines && tc->denied) {
		g_mutex_unlock(&c->lock);
		return -EACCES;
	}
	if (!tc->pipelines) {
		g_mutex_unlock(&c->lock);
		cache_call_init(&call, RL_PRIO_USER, deadline);
		rc = cache_deny(c, type, &call, hs_pipelines(c->hc, &call, type->path, &resp));
		if (rc == 0) {
			if (!json_object_object_get_ex(resp, "results", &results))
				results = resp;
			s = json_util_pretty(results, &slen);
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
	struct pager pg;
	const char *why = NULL;
	int rc = 0;

	g_mutex_lock(&c->lock);
	while (!c->owners && c->owners_fetching) {
		if (!cache_wait_until(c, deadline)) {
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
	pager_init(&pg, OWNERS_MAX_PAGES);
	do {
		json_object *resp = NULL, *results;
		const char *next;
		struct hs_call call;

		cache_call_init(&call, RL_PRIO_USER, deadline);
		rc = hs_owners_page(c->hc, &call, after, &resp);
		g_free(after);
		after = NULL;
		if (rc == 0 && json_object_object_get_ex(resp, "results", &results)) {
			for (size_t i = 0; i < json_util_array_len(results); i++) {
				json_object *o = json_object_array_get_idx(results, i), *jid;
				uint64_t id;
				size_t l;

				if (json_object_object_get_ex(o, "id", &jid) &&
				    record_parse_id(json_util_str(jid), strlen(json_util_str(jid)), &id) == 0)
					g_hash_table_insert(owners, KEY(id), json_util_pretty(o, &l));
			}
			next = json_util_paging_after(resp);
			after = next && *next ? g_strdup(next) : NULL;
		}
		if (rc == 0 && pager_next(&pg, after, &why) != 0) {
			log_err("owners: %s (page %u); not loaded", why, pg.pages);
			rc = -EIO;
		}
		json_object_put(resp);
	} while (rc == 0 && after);
	g_free(after);
	pager_destroy(&pg);

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

/* Lock held, owners loaded. */
static void owner_ids_locked(struct cache *c, uint64_t **ids, size_t *n)
{
	GHashTableIter it;
	gpointer k;
	size_t i = 0;

	*n = g_hash_table_size(c->owners);
	*ids = g_new(uint64_t, MAX(*n, 1));
	g_hash_table_iter_init(&it, c->owners);
	while (g_hash_table_iter_next(&it, &k, NULL))
		(*ids)[i++] = UNKEY(k);
}

int cache_owner_ids_cached(struct cache *c, uint64_t **ids, size_t *n)
{
	g_mutex_lock(&c->lock);
	if (!c->owners) {
		g_mutex_unlock(&c->lock);
		return -EAGAIN;
	}
	owner_ids_locked(c, ids, n);
	g_mutex_unlock(&c->lock);
	qsort(*ids, *n, sizeof(uint64_t), record_id_cmp);
	return 0;
}

int cache_owner_ids(struct cache *c, int64_t deadline, uint64_t **ids, size_t *n)
{
	int rc = owners_load(c, deadline);

	if (rc)
		return rc;
	g_mutex_lock(&c->lock);
	owner_ids_locked(c, ids, n);
	g_mutex_unlock(&c->lock);
	qsort(*ids, *n, sizeof(uint64_t), record_id_cmp);
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
