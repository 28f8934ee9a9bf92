/* search.c - query directories, the FUSE side: search/<type>/<query>/ lists
 * the records the query finds as links ../../../<type>/<id>.json. The search
 * itself, its kept answer and the overlay of this mount's writes are the
 * store's (cache_search in cache/cache.h); here are the inode numbers, the
 * kernel's references and the bound on how many query directories are held. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client/log.h"
#include "fs/internal.h"

#define QNODES_MAX 256       /* query directories held at once */
#define SWEEP_EVERY_MS 1000

/* A query directory. Every field but s is protected by h->lock; s is
 * shared by reference and used without h->lock. Query directories are never
 * listed, so only lookups give the kernel references (nlookup, dropped by
 * forget). Bounds (qnodes_sweep): a node unused for longer than ttl loses its
 * answer (stale anyway), and is freed once the kernel holds no reference;
 * past QNODES_MAX nodes the least recently used is freed even so, and the
 * kernel told to drop its entry (a later path walk looks the query up
 * afresh). Nodes in use (users) are kept. */
struct qnode {
	fuse_ino_t ino;
	const struct objtype *type;
	char *text;
	struct cache_search *s;
	unsigned users;      /* search_results calls using s without the lock */
	uint64_t nlookup;    /* the kernel's references */
	int64_t used_ms;     /* hs_now_ms of the last lookup, stat or listing */
};

static void qnode_free(gpointer p)
{
	struct qnode *qn = p;

	cache_search_unref(qn->s);
	g_free(qn->text);
	g_free(qn);
}

void hubfs_search_init(struct hubfs *h)
{
	h->queries = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, qnode_free);
	h->qnames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

void hubfs_search_destroy(struct hubfs *h)
{
	if (!h->queries)
		return;
	g_hash_table_destroy(h->qnames);
	g_hash_table_destroy(h->queries);
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

static gint by_use(gconstpointer a, gconstpointer b)
{
	const struct qnode *x = *(struct qnode *const *)a, *y = *(struct qnode *const *)b;

	return x->used_ms < y->used_ms ? -1 : x->used_ms > y->used_ms;
}

/* Keep the query table bounded (see struct qnode); room for one more node
 * when `adding`. At most once a second unless over the cap. Lock held; the
 * searches whose answers may go are added to forget (with a reference), to
 * be forgotten once the lock is dropped. */
static void qnodes_sweep(struct hubfs *h, bool adding, GPtrArray *forget)
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

		if (qn->users)
			continue;
		if ((idle_long && !qn->nlookup) || g_hash_table_size(h->queries) > max)
			qnode_evict(h, qn);
		else if (idle_long)
			g_ptr_array_add(forget, cache_search_ref(qn->s));
	}
	g_ptr_array_free(all, TRUE);
}

/* Drop the answers qnodes_sweep set aside. Lock not held. */
static void forget_answers(struct hubfs *h, GPtrArray *forget)
{
	for (guint i = 0; i < forget->len; i++) {
		cache_search_forget(h->cache, forget->pdata[i]);
		cache_search_unref(forget->pdata[i]);
	}
	g_ptr_array_free(forget, TRUE);
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

/* The node of an existing query, or NULL. Lock held. */
static struct qnode *qnode_find(struct hubfs *h, const char *key)
{
	struct qnode *qn = g_hash_table_lookup(h->qnames, key);

	if (qn)
		qn->used_ms = hs_now_ms();
	return qn;
}

int search_lookup(struct hubfs *h, const struct objtype *type, const char *name, fuse_ino_t *ino)
{
	g_autofree char *key = qname_key(type, name);
	GPtrArray *forget = g_ptr_array_new();
	struct cache_search *s = NULL;
	struct qnode *qn;
	char *why = NULL;
	int rc;

	g_mutex_lock(&h->lock);
	qn = qnode_find(h, key);
	if (qn)
		*ino = qn->ino;
	qnodes_sweep(h, false, forget);
	g_mutex_unlock(&h->lock);
	forget_answers(h, forget);
	if (qn)
		return 0;

	rc = cache_search_new(h->cache, type, name, deadline_of(h), &s, &why);
	if (rc == -EINVAL) {
		g_autofree char *file = g_strdup_printf("search/%s/%s", type->name, name);

		hubfs_error_say(h, "search", file, why ? why : "malformed query");
		g_free(why);
		return -ENOENT;
	}
	if (rc)
		return rc;
	forget = g_ptr_array_new();
	g_mutex_lock(&h->lock);
	qn = qnode_find(h, key);
	if (!qn) {
		qnodes_sweep(h, true, forget);
		qn = g_new0(struct qnode, 1);
		qn->ino = INO_MAKE(K_QUERY, 0, 0, ++h->next_dyn);
		qn->type = type;
		qn->text = g_strdup(name);
		qn->s = g_steal_pointer(&s);
		qn->used_ms = hs_now_ms();
		g_hash_table_insert(h->queries, GSIZE_TO_POINTER(qn->ino), qn);
		g_hash_table_insert(h->qnames, g_strdup(key), qn);
	}
	*ino = qn->ino;
	g_mutex_unlock(&h->lock);
	forget_answers(h, forget);
	cache_search_unref(s);
	return 0;
}

/* A failed search in errors.log: HubSpot's message and category, or why the
 * paging was stopped. */
static void search_error(struct hubfs *h, const struct objtype *type, const char *text,
			 const struct hs_error *e)
{
	g_autofree char *file = g_strdup_printf("search/%s/%s", type->name, text);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "op", json_object_new_string("search"));
	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "reason", json_object_new_string(e->message));
	if (e->category[0])
		json_object_object_add(o, "category", json_object_new_string(e->category));
	hubfs_error(h, o);
	json_object_put(o);
}

int search_results(struct hubfs *h, fuse_ino_t ino, uint64_t **ids, size_t *n)
{
	struct cache_search *s;
	struct hs_error err;
	const struct objtype *type;
	g_autofree char *text = NULL;
	struct qnode *qn;
	int rc;

	g_mutex_lock(&h->lock);
	qn = qnode_of(h, ino);
	if (!qn) {
		g_mutex_unlock(&h->lock);
		return -ENOENT;
	}
	qn->users++; /* qn stays while its search runs unlocked */
	qn->used_ms = hs_now_ms();
	s = cache_search_ref(qn->s);
	type = qn->type;
	text = g_strdup(qn->text);
	g_mutex_unlock(&h->lock);

	/* One deadline, this syscall's, for every page and every wait. */
	rc = cache_search_results(h->cache, s, deadline_of(h), ids, n, &err);
	if (err.message[0])
		search_error(h, type, text, &err);
	cache_search_unref(s);
	g_mutex_lock(&h->lock);
	qn->users--;
	g_mutex_unlock(&h->lock);
	return rc;
}
