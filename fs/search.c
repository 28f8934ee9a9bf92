/* search.c - query directories: search/<type>/<query>/ lists the records
 * HubSpot's search returns for the query, as links ../../../<type>/<id>.json,
 * overlaid with this mount's own writes of the last index_delay seconds
 * (evaluated locally), which HubSpot's search index does not show yet. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cache/pager.h"
#include "cache/query.h"
#include "cache/record.h"
#include "client/log.h"
#include "fs/internal.h"

#define SEARCH_MAX 10000
#define QNODES_MAX 256       /* query directories held at once */
#define SWEEP_EVERY_MS 1000

/* A query directory. Every field but q is protected by h->lock. Query
 * directories are never listed, so only lookups give the kernel references
 * (nlookup, dropped by forget). Bounds (qnodes_sweep): a node unused for
 * longer than ttl loses its results (stale anyway), and is freed once the
 * kernel holds no reference; past QNODES_MAX nodes the least recently used
 * is freed even so, and the kernel told to drop its entry (a later path walk
 * looks the query up afresh). Nodes in use (users, fetching) are kept. */
struct qnode {
	fuse_ino_t ino;
	const struct objtype *type;
	char *text;
	struct query *q;     /* immutable once parsed: no lock needed to use it */
	uint64_t *ids;       /* HubSpot's answer, sorted */
	size_t n;
	int64_t fetched_ms;  /* 0: never (or results dropped) */
	bool fetching;
	unsigned users;      /* search_results calls using q without the lock */
	uint64_t nlookup;    /* the kernel's references */
	int64_t used_ms;     /* hs_now_ms of the last lookup, stat or listing */
};

static void qnode_free(gpointer p)
{
	struct qnode *qn = p;

	query_free(qn->q);
	g_free(qn->ids);
	g_free(qn->text);
	g_free(qn);
}

void hubfs_search_init(struct hubfs *h)
{
	h->queries = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, qnode_free);
	h->qnames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_cond_init(&h->qcond);
}

void hubfs_search_destroy(struct hubfs *h)
{
	if (!h->queries)
		return;
	g_hash_table_destroy(h->qnames);
	g_hash_table_destroy(h->queries);
	g_cond_clear(&h->qcond);
}

static struct qnode *qnode_of(struct hubfs *h, fuse_ino_t ino)
{
	return INO_KIND(ino) == K_QUERY ? g_hash_table_lookup(h->queries, GSIZE_TO_POINTER(ino)) : NULL;
}

static char *qname_key(const struct objtype *type, const char *text)
{
	return g_strdup_printf("%u/%s", type->idx, text);
}

/* Free qn, out of both tables; tell the kernel if it may still hold it. Lock held. */
static void qnode_evict(struct hubfs *h, struct qnode *qn)
{
	g_autofree char *key = qname_key(qn->type, qn->text);

	if (qn->nlookup)
		hubfs_inval_entry(h, INO_OF_TYPE(K_SEARCHTYPE, qn->type->idx), qn->text);
	g_hash_table_remove(h->qnames, key);
	g_hash_table_remove(h->queries, GSIZE_TO_POINTER(qn->ino)); /* frees qn */
}

static bool qnode_busy(const struct qnode *qn)
{
	return qn->fetching || qn->users;
}

static gint by_use(gconstpointer a, gconstpointer b)
{
	const struct qnode *x = *(struct qnode *const *)a, *y = *(struct qnode *const *)b;

	return x->used_ms < y->used_ms ? -1 : x->used_ms > y->used_ms;
}

/* Keep the query table bounded (see struct qnode); room for one more node
 * when `adding`. At most once a second unless over the cap. Lock held. */
static void qnodes_sweep(struct hubfs *h, bool adding)
{
	int64_t now = hs_now_ms(), idle = (int64_t)h->o.ttl_s * 1000;
	guint max = QNODES_MAX - (adding ? 1 : 0);
	GPtrArray *all;
	GHashTableIter it;
	gpointer v;

	if (now < h->qswept_ms + SWEEP_EVERY_MS && g_hash_table_size(h->queries) <= max)
		return;
	h->qswept_ms = now;
	all = g_ptr_array_new();
	g_hash_table_iter_init(&it, h->queries);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(all, v);
	g_ptr_array_sort(all, by_use);
	for (guint i = 0; i < all->len; i++) {
		struct qnode *qn = all->pdata[i];
		bool idle_long = now - qn->used_ms > idle;

		if (qnode_busy(qn))
			continue;
		if ((idle_long && !qn->nlookup) || g_hash_table_size(h->queries) > max) {
			qnode_evict(h, qn);
		} else if (idle_long && qn->ids) {
			g_free(qn->ids);
			qn->ids = NULL;
			qn->n = 0;
			qn->fetched_ms = 0;
		}
	}
	g_ptr_array_free(all, TRUE);
}

void search_ref(struct hubfs *h, fuse_ino_t ino)
{
	struct qnode *qn;

	g_mutex_lock(&h->lock);
	qn = qnode_of(h, ino);
	if (qn)
		qn->nlookup++;
	g_mutex_unlock(&h->lock);
}

void search_forget_locked(struct hubfs *h, fuse_ino_t ino, uint64_t n)
{
	struct qnode *qn = qnode_of(h, ino);

	if (qn)
		qn->nlookup = qn->nlookup > n ? qn->nlookup - n : 0;
}

size_t search_count(struct hubfs *h)
{
	size_t n;

	g_mutex_lock(&h->lock);
	n = g_hash_table_size(h->queries);
	g_mutex_unlock(&h->lock);
	return n;
}

const struct objtype *search_type_of(struct hubfs *h, fuse_ino_t ino)
{
	const struct objtype *t = NULL;
	struct qnode *qn;

	g_mutex_lock(&h->lock);
	qn = qnode_of(h, ino);
	if (qn) {
		t = qn->type;
		qn->used_ms = hs_now_ms();
	}
	g_mutex_unlock(&h->lock);
	return t;
}

int search_lookup(struct hubfs *h, const struct objtype *type, const char *name, fuse_ino_t *ino)
{
	g_autofree char *key = qname_key(type, name);
	const struct schema *s = NULL;
	struct query *q = NULL;
	struct qnode *qn;
	char *why = NULL;
	int rc;

	g_mutex_lock(&h->lock);
	qn = g_hash_table_lookup(h->qnames, key);
	if (qn) {
		*ino = qn->ino;
		qn->used_ms = hs_now_ms();
	}
	qnodes_sweep(h, false);
	g_mutex_unlock(&h->lock);
	if (qn)
		return 0;

	rc = cache_schema(h->cache, type, deadline_of(h), &s);
	if (rc)
		return rc;
	rc = query_parse(name, type, s, &q, &why);
	if (rc) {
		g_autofree char *file = g_strdup_printf("search/%s/%s", type->name, name);

		hubfs_error_say(h, "search", file, why ? why : "malformed query");
		g_free(why);
		return -ENOENT;
	}
	g_mutex_lock(&h->lock);
	qn = g_hash_table_lookup(h->qnames, key);
	if (!qn) {
		qnodes_sweep(h, true);
		qn = g_new0(struct qnode, 1);
		qn->ino = INO_MAKE(K_QUERY, 0, 0, ++h->next_dyn);
		qn->type = type;
		qn->text = g_strdup(name);
		qn->q = q;
		q = NULL;
		g_hash_table_insert(h->queries, GSIZE_TO_POINTER(qn->ino), qn);
		g_hash_table_insert(h->qnames, g_strdup(key), qn);
	}
	qn->used_ms = hs_now_ms();
	*ino = qn->ino;
	g_mutex_unlock(&h->lock);
	query_free(q);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Run the search (all pages, up to 10,000 results) within deadline, the one
 * of the syscall that asked; the returned properties fill the record cache.
 * No lock held. */
static int run_search(struct hubfs *h, struct qnode *qn, GArray *out, int64_t deadline)
{
	const struct schema *s = NULL;
	const char **props;
	char *after = NULL;
	struct pager pg;
	size_t np;
	int rc;

	rc = cache_schema(h->cache, qn->type, deadline, &s);
	if (rc)
		return rc;
	np = schema_shown_count(s);
	props = g_new(const char *, np + 1);
	for (size_t i = 0; i < np; i++)
		props[i] = schema_shown(s, i);
	pager_init(&pg, SEARCH_MAX / 200 + 2);
	do {
		json_object *req = query_request(qn->q, props, np, 200, after), *resp = NULL;
		json_object *results, *paging, *next, *jafter, *jtotal;
		struct hs_call call = { .prio = RL_PRIO_USER, .deadline_ms = deadline };
		const char *why = NULL;
		uint64_t epoch = cache_epoch(h->cache);

		rc = hs_search(h->hc, &call, qn->type->path, req, &resp);
		json_object_put(req);
		g_free(after);
		after = NULL;
		if (rc) {
			if (call.err.message[0]) {
				json_object *o = json_object_new_object();
				g_autofree char *file = g_strdup_printf("search/%s/%s", qn->type->name,
									qn->text);

				json_object_object_add(o, "op", json_object_new_string("search"));
				json_object_object_add(o, "file", json_object_new_string(file));
				json_object_object_add(o, "reason", json_object_new_string(call.err.message));
				json_object_object_add(o, "category", json_object_new_string(call.err.category));
				hubfs_error(h, o);
				json_object_put(o);
			}
			break;
		}
		if (json_object_object_get_ex(resp, "results", &results)) {
			for (size_t i = 0; i < record_jarray_len(results); i++) {
				json_object *r = json_object_array_get_idx(results, i), *jid;
				uint64_t id;

				if (!json_object_object_get_ex(r, "id", &jid) ||
				    record_parse_id(record_jstr(jid), strlen(record_jstr(jid)), &id) != 0)
					continue;
				g_array_append_val(out, id);
				cache_store(h->cache, qn->type, r, epoch);
			}
		}
		if (out->len < SEARCH_MAX && json_object_object_get_ex(resp, "paging", &paging) &&
		    json_object_object_get_ex(paging, "next", &next) &&
		    json_object_object_get_ex(next, "after", &jafter) &&
		    *record_jstr(jafter) && g_ascii_strtoll(record_jstr(jafter), NULL, 10) < SEARCH_MAX)
			after = g_strdup(record_jstr(jafter));
		if (!pg.max_pages && json_object_object_get_ex(resp, "total", &jtotal) &&
		    json_object_is_type(jtotal, json_type_int) && json_object_get_int64(jtotal) >= 0)
			pager_set_total(&pg, (uint64_t)json_object_get_int64(jtotal), 200);
		if (pager_next(&pg, after, &why) != 0) {
			hubfs_error_say(h, "search", qn->text, why);
			g_free(after);
			after = NULL;
			rc = -EIO;
		}
		json_object_put(resp);
	} while (after);
	pager_destroy(&pg);
	g_free(props);
	return rc;
}

/* This mount's recent writes, checked against the query locally. */
static void overlay(struct hubfs *h, struct qnode *qn, GArray *ids, int64_t deadline)
{
	int64_t since = hubfs_wall_ms() - (int64_t)h->o.index_delay_s * 1000 - 2000;
	GHashTable *set = g_hash_table_new(g_direct_hash, g_direct_equal);
	uint64_t *recent = NULL;
	size_t n = 0;

	cache_recent_local(h->cache, qn->type, since, &recent, &n);
	if (!n)
		goto out;
	for (guint i = 0; i < ids->len; i++)
		g_hash_table_add(set, GSIZE_TO_POINTER(g_array_index(ids, uint64_t, i)));
	for (size_t i = 0; i < n; i++) {
		uint64_t id = recent[i];
		bool match = false;
		char *text = NULL;
		size_t len;

		if (!cache_record_gone(h->cache, qn->type, id) &&
		    cache_record_text(h->cache, qn->type, id, deadline, &text, &len) == 0) {
			json_object *o = json_tokener_parse(text), *props;

			if (o && json_object_object_get_ex(o, "properties", &props))
				match = query_match(qn->q, props);
			json_object_put(o);
		}
		g_free(text);
		if (match)
			g_hash_table_add(set, GSIZE_TO_POINTER(id));
		else
			g_hash_table_remove(set, GSIZE_TO_POINTER(id));
	}
	g_array_set_size(ids, 0);
	{
		GHashTableIter it;
		gpointer k;

		g_hash_table_iter_init(&it, set);
		while (g_hash_table_iter_next(&it, &k, NULL)) {
			uint64_t id = GPOINTER_TO_SIZE(k);

			g_array_append_val(ids, id);
		}
	}
out:
	g_hash_table_destroy(set);
	g_free(recent);
}

/* Wait on h->qcond until woken or the deadline (hs_now_ms clock). Lock held.
 * Returns false once the deadline has passed. */
static bool qwait_until(struct hubfs *h, int64_t deadline)
{
	int64_t left = deadline - hs_now_ms();

	if (left <= 0)
		return false;
	g_cond_wait_until(&h->qcond, &h->lock, g_get_monotonic_time() + left * 1000);
	return true;
}

int search_results(struct hubfs *h, fuse_ino_t ino, uint64_t **ids, size_t *n)
{
	int64_t life = (int64_t)h->o.ttl_s * 1000;
	int64_t deadline = deadline_of(h); /* this syscall's, for every wait and page */
	struct qnode *qn;
	GArray *a;
	int rc = 0;

	g_mutex_lock(&h->lock);
	qn = qnode_of(h, ino);
	if (!qn) {
		g_mutex_unlock(&h->lock);
		return -ENOENT;
	}
	qn->users++; /* qn stays while we use it unlocked */
	qn->used_ms = hs_now_ms();
	/* Another syscall is fetching this query: wait for it, but not past our
	 * own deadline; then serve the last answer, if there is one. */
	while (qn->fetching && qwait_until(h, deadline))
		;
	if (qn->fetching && !qn->fetched_ms) {
		qn->users--;
		g_mutex_unlock(&h->lock);
		return -EAGAIN;
	}
	if (!qn->fetching && (!qn->fetched_ms || hs_now_ms() >= qn->fetched_ms + life)) {
		qn->fetching = true;
		g_mutex_unlock(&h->lock);
		a = g_array_new(FALSE, FALSE, sizeof(uint64_t));
		rc = run_search(h, qn, a, deadline);
		if (a->len > 1)
			qsort(a->data, a->len, sizeof(uint64_t), cmp_u64);
		g_mutex_lock(&h->lock);
		qn->fetching = false;
		g_cond_broadcast(&h->qcond);
		if (rc == 0) {
			g_free(qn->ids);
			qn->n = a->len;
			qn->ids = (uint64_t *)(void *)g_array_free(a, FALSE);
			qn->fetched_ms = hs_now_ms();
		} else {
			g_array_free(a, TRUE);
			if (!qn->fetched_ms) {
				qn->users--;
				g_mutex_unlock(&h->lock);
				return rc;
			}
			rc = 0; /* serve the last answer rather than fail */
		}
	}
	a = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), (guint)qn->n);
	if (qn->n)
		g_array_append_vals(a, qn->ids, (guint)qn->n);
	g_mutex_unlock(&h->lock);

	overlay(h, qn, a, deadline);
	g_mutex_lock(&h->lock);
	qn->users--;
	g_mutex_unlock(&h->lock);
	if (a->len > 1)
		qsort(a->data, a->len, sizeof(uint64_t), cmp_u64);
	*n = a->len;
	*ids = (uint64_t *)(void *)g_array_free(a, FALSE);
	return rc;
}
