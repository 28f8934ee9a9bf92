/* cache_assoc.c - association lists: a miss fetches up to 1,000 records'
 * associations with one v4 batch/read (following each record's paging); this
 * mount's changes edit the cached lists of both sides at once.
 */
#include "cache/cache_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/model/assocfile.h"
#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "client/log.h"

/* Requests of one batch/read's paging: a record's links come some hundreds a
 * page, so this is hundreds of thousands of links. */
#define ASSOC_MAX_ROUNDS 1000

/* --- associations ------------------------------------------------------ */

/* One link of a read: the other record and its association types. */
struct alink {
	uint64_t id;
	const char *types; /* interned canonical text */
};

static int alink_cmp(const void *a, const void *b)
{
	const struct alink *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The interned canonical text of a types array from HubSpot. */
static const char *types_intern(json_object *types)
{
	char *s = assocfile_types_canon(types);
	const char *r = g_intern_string(s);

	g_free(s);
	return r;
}

static bool assoc_fresh(struct cache *c, struct assoc *e, int64_t now)
{
	return e && now < e->fetched_ms + c->opts.ttl_ms;
}

/* v4 batch/read of the `to` associations of ids (n <= 1000), following per-id
 * paging. Fills acc: id -> GArray of struct alink. No lock held. */
static int assoc_fetch(struct cache *c, const struct objtype *from, const struct objtype *to,
		       char **ids, size_t n, int64_t deadline, GHashTable *acc)
{
	char **afters = g_new0(char *, n);
	char **cur_ids = g_new0(char *, n);
	size_t m = n;
	unsigned rounds = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		cur_ids[i] = g_strdup(ids[i]);
	while (m && rc == 0) {
		json_object *resp = NULL, *results;
		struct hs_call call;
		size_t next_m = 0;

		/* A server that always says "more" does not get to loop. */
		if (++rounds > ASSOC_MAX_ROUNDS) {
			log_err("associations %s -> %s: still paging after %u requests; stopped",
				from->name, to->name, ASSOC_MAX_ROUNDS);
			rc = -EIO;
			break;
		}

		cache_call_init(&call, RL_PRIO_USER, deadline);
		rc = hs_assoc_batch_read(c->hc, &call, from->path, to->path,
					 (const char *const *)cur_ids, (const char *const *)afters, m, &resp);
		for (size_t i = 0; i < m; i++) {
			g_free(afters[i]);
			afters[i] = NULL;
		}
		if (rc == 0 && json_object_object_get_ex(resp, "results", &results)) {
			size_t nr = json_util_array_len(results);

			for (size_t i = 0; i < nr; i++) {
				json_object *res = json_object_array_get_idx(results, i), *jf, *jfid, *jto;
				const char *after = json_util_paging_after(res);
				GArray *arr;
				uint64_t fid;

				if (!json_object_object_get_ex(res, "from", &jf) ||
				    !json_object_object_get_ex(jf, "id", &jfid))
					continue;
				fid = g_ascii_strtoull(json_util_str(jfid), NULL, 10);
				arr = g_hash_table_lookup(acc, KEY(fid));
				if (!arr)
					continue;
				if (json_object_object_get_ex(res, "to", &jto)) {
					size_t nt = json_util_array_len(jto);

					for (size_t j = 0; j < nt; j++) {
						json_object *x = json_object_array_get_idx(jto, j), *tid;
						struct alink v;

						if (json_object_object_get_ex(x, "toObjectId", &tid) &&
						    record_parse_id(json_util_str(tid), strlen(json_util_str(tid)),
								    &v.id) == 0) {
							v.types = types_intern(json_object_object_get(
								x, "associationTypes"));
							g_array_append_val(arr, v);
						}
					}
				}
				if (after && next_m < n) {
					g_free(cur_ids[next_m]);
					cur_ids[next_m] = g_strdup(json_util_str(jfid));
					afters[next_m] = g_strdup(after);
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

#define ASSOC_BATCH_MAX 1000 /* records of one v4 batch/read */

/* The records of one association read: id first, then listed or cached
 * records of its type whose lists toward `to` are not fresh, up to
 * ASSOC_BATCH_MAX; all marked in flight. A GPtrArray of id strings. Lock held. */
static GPtrArray *assoc_pick(struct cache *c, struct tcache *tc, GHashTable *table,
			     GHashTable *inflight, uint64_t id, int64_t now)
{
	GPtrArray *want = g_ptr_array_new_with_free_func(g_free);
	struct listing *l = tc->listing;
	GHashTableIter it;
	gpointer k;

	g_ptr_array_add(want, g_strdup_printf("%" G_GUINT64_FORMAT, id));
	g_hash_table_add(inflight, KEY(id));
	for (guint i = 0; l && i < l->ids->len && want->len < ASSOC_BATCH_MAX; i++) {
		uint64_t x = g_array_index(l->ids, struct lent, i).id;

		if (x == id || g_hash_table_contains(inflight, KEY(x)) ||
		    assoc_fresh(c, g_hash_table_lookup(table, KEY(x)), now))
			continue;
		g_ptr_array_add(want, g_strdup_printf("%" G_GUINT64_FORMAT, x));
		g_hash_table_add(inflight, KEY(x));
	}
	g_hash_table_iter_init(&it, tc->recs);
	while (want->len < ASSOC_BATCH_MAX && g_hash_table_iter_next(&it, &k, NULL)) {
		if (g_hash_table_contains(inflight, k) ||
		    assoc_fresh(c, g_hash_table_lookup(table, k), now))
			continue;
		g_ptr_array_add(want, g_strdup_printf("%" G_GUINT64_FORMAT, UNKEY(k)));
		g_hash_table_add(inflight, k);
	}
	return want;
}

/* A read replaced the held list old of from/id by e: when they differ, the fs
 * is told, with the links old had and e lacks (a link the kernel looked up
 * would resolve for ttl more otherwise). Lock held. */
static void note_replaced(struct cache *c, const struct objtype *from, uint64_t id,
			  const struct objtype *to, const struct assoc *old, const struct assoc *e)
{
	GArray *gone;
	size_t j = 0;

	if (old->n == e->n && !memcmp(old->ids, e->ids, e->n * sizeof(uint64_t)) &&
	    !memcmp(old->types, e->types, e->n * sizeof(char *)))
		return; /* the same links and types (interned: equal texts are one pointer) */
	gone = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	for (size_t i = 0; i < old->n; i++) {
		while (j < e->n && e->ids[j] < old->ids[i])
			j++;
		if (j == e->n || e->ids[j] != old->ids[i])
			g_array_append_val(gone, old->ids[i]);
	}
	cache_note_assoc(c, from, id, to, (const uint64_t *)(void *)gone->data, gone->len);
	g_array_free(gone, TRUE);
}

/* Keep what a read found (acc: from id -> GArray of struct alink; nothing if
 * rc failed) and take the records off inflight. Targets are known to exist:
 * a miss on one fetches its neighbours too. Lock held. */
static void assoc_store(struct cache *c, const struct objtype *from, const struct objtype *to,
			GHashTable *table, GHashTable *inflight, GHashTable *acc, int rc)
{
	struct tcache *ttc = &c->t[to->idx];
	int64_t now = cache_now_ms(c);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, acc);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		GArray *arr = v;
		struct assoc *e, *old;

		g_hash_table_remove(inflight, k);
		if (rc)
			continue;
		if (arr->len > 1)
			qsort(arr->data, arr->len, sizeof(struct alink), alink_cmp);
		e = g_new0(struct assoc, 1);
		e->ids = g_new0(uint64_t, MAX(arr->len, 1));
		e->types = g_new0(const char *, MAX(arr->len, 1));
		for (guint j = 0; j < arr->len; j++) {
			const struct alink *l = &g_array_index(arr, struct alink, j);

			if (e->n && e->ids[e->n - 1] == l->id)
				continue; /* listed twice (a server's paging overlap) */
			e->ids[e->n] = l->id;
			e->types[e->n++] = l->types;
		}
		e->fetched_ms = now;
		if ((old = g_hash_table_lookup(table, k)))
			note_replaced(c, from, UNKEY(k), to, old, e);
		g_hash_table_replace(table, k, e);
		for (guint j = 0; j < arr->len; j++) {
			uint64_t x = g_array_index(arr, struct alink, j).id;

			if (!g_hash_table_contains(ttc->recs, KEY(x)))
				g_hash_table_add(ttc->wanted, KEY(x));
		}
	}
}

/* What a caller gets of a record's list: its ids, or its links as JSON. */
struct assoc_out {
	uint64_t **ids;
	size_t *n;
	json_object **links;
};

/* Lock held. */
static void assoc_copy(const struct assoc *e, struct assoc_out *o)
{
	if (o->ids) {
		*o->ids = g_memdup2(e->ids, MAX(e->n, 1) * sizeof(uint64_t));
		*o->n = e->n;
		return;
	}
	*o->links = json_object_new_array_ext((int)MAX(e->n, 1));
	for (size_t i = 0; i < e->n; i++) {
		json_object *l = json_object_new_object();
		char buf[24];

		snprintf(buf, sizeof(buf), "%" G_GUINT64_FORMAT, e->ids[i]);
		json_object_object_add(l, "id", json_object_new_string(buf));
		json_object_object_add(l, "types", json_tokener_parse(e->types && e->types[i] ?
								       e->types[i] : "[]"));
		json_object_array_add(*o->links, l);
	}
}

static int assoc_get(struct cache *c, const struct objtype *from, uint64_t id,
		     const struct objtype *to, int64_t deadline, struct assoc_out *o)
{
	struct tcache *tc = &c->t[from->idx];
	GHashTable *table, *inflight;
	int rc = 0;

	g_mutex_lock(&c->lock);
	table = cache_assoc_table(c, from, to, false);
	inflight = cache_assoc_table(c, from, to, true);
	for (;;) {
		struct assoc *e = g_hash_table_lookup(table, KEY(id));
		GHashTable *acc;
		GPtrArray *want;

		if (assoc_fresh(c, e, cache_now_ms(c))) {
			c->hits++;
			assoc_copy(e, o);
			break;
		}
		if (g_hash_table_contains(inflight, KEY(id))) {
			if (!cache_wait_until(c, deadline)) {
				rc = -EAGAIN;
				break;
			}
			continue;
		}
		c->misses++;
		want = assoc_pick(c, tc, table, inflight, id, cache_now_ms(c));
		acc = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					    (GDestroyNotify)g_array_unref);
		for (guint i = 0; i < want->len; i++)
			g_hash_table_insert(acc, KEY(g_ascii_strtoull(want->pdata[i], NULL, 10)),
					    g_array_new(FALSE, FALSE, sizeof(struct alink)));
		g_mutex_unlock(&c->lock);

		rc = assoc_fetch(c, from, to, (char **)want->pdata, want->len, deadline, acc);

		g_mutex_lock(&c->lock);
		assoc_store(c, from, to, table, inflight, acc, rc);
		g_hash_table_destroy(acc);
		g_ptr_array_free(want, TRUE);
		g_cond_broadcast(&c->cond);
		if (rc) {
			e = g_hash_table_lookup(table, KEY(id));
			if (e && rc != -ENOENT) { /* serve stale rather than fail */
				assoc_copy(e, o);
				rc = 0;
			}
			break;
		}
	}
	cache_unlock_and_notify(c);
	return rc;
}

int cache_assoc_list(struct cache *c, const struct objtype *from, uint64_t id,
		     const struct objtype *to, int64_t deadline, uint64_t **ids, size_t *n)
{
	struct assoc_out o = { .ids = ids, .n = n };

	return assoc_get(c, from, id, to, deadline, &o);
}

int cache_assoc_links(struct cache *c, const struct objtype *from, uint64_t id,
		      const struct objtype *to, int64_t deadline, json_object **links)
{
	struct assoc_out o = { .links = links };

	*links = NULL;
	return assoc_get(c, from, id, to, deadline, &o);
}

/* The types of a link this mount made with the default type from -> to (the
 * unlabeled one), until a read says more. Interned. */
static const char *default_types(struct cache *c, const struct objtype *from,
				 const struct objtype *to)
{
	int tid = objtypes_assoc_type_id(c->types, from, to);
	char *s;
	const char *r;

	if (tid <= 0)
		return g_intern_static_string("[]");
	s = assocfile_types_edit(NULL, (from->flags | to->flags) & OTF_CUSTOM ? "USER_DEFINED" :
				 "HUBSPOT_DEFINED", tid, NULL, true);
	r = g_intern_string(s);
	g_free(s);
	return r;
}

/* Add (with types, when not there yet) or remove x in a cached list. Returns
 * its index after an add, or -1. */
static ssize_t assoc_edit(struct assoc *e, uint64_t x, bool add, const char *types)
{
	size_t i;

	for (i = 0; i < e->n && e->ids[i] < x; i++)
		;
	if (add && (i == e->n || e->ids[i] != x)) {
		e->ids = g_realloc(e->ids, (e->n + 1) * sizeof(uint64_t));
		e->types = g_realloc(e->types, (e->n + 1) * sizeof(char *));
		memmove(e->ids + i + 1, e->ids + i, (e->n - i) * sizeof(uint64_t));
		memmove(e->types + i + 1, e->types + i, (e->n - i) * sizeof(char *));
		e->ids[i] = x;
		e->types[i] = types;
		e->n++;
	} else if (!add && i < e->n && e->ids[i] == x) {
		memmove(e->ids + i, e->ids + i + 1, (e->n - i - 1) * sizeof(uint64_t));
		memmove(e->types + i, e->types + i + 1, (e->n - i - 1) * sizeof(char *));
		e->n--;
	}
	return add ? (ssize_t)i : -1;
}

void cache_assoc_note(struct cache *c, const struct objtype *from, uint64_t id,
		      const struct objtype *to, uint64_t to_id, bool add)
{
	GHashTable *fwd, *back;
	struct assoc *e;

	g_mutex_lock(&c->lock);
	/* Only lists we hold are edited; a list fetched later includes the change. */
	fwd = c->t[from->idx].assoc[to->idx];
	back = c->t[to->idx].assoc[from->idx];
	if (fwd && (e = g_hash_table_lookup(fwd, KEY(id))))
		assoc_edit(e, to_id, add, default_types(c, from, to));
	if (back && (e = g_hash_table_lookup(back, KEY(to_id))))
		assoc_edit(e, id, add, default_types(c, to, from));
	/* Held or not: the kernel may hold either link, or know it missing. */
	cache_note_assoc(c, from, id, to, &to_id, 1);
	cache_note_assoc(c, to, to_id, from, &id, 1);
	cache_unlock_and_notify(c);
}

void cache_assoc_note_label(struct cache *c, const struct objtype *from, uint64_t id,
			    const struct objtype *to, uint64_t to_id, const char *category,
			    int type_id, const char *label, bool add)
{
	GHashTable *fwd, *back;
	struct assoc *e;

	g_mutex_lock(&c->lock);
	fwd = c->t[from->idx].assoc[to->idx];
	back = c->t[to->idx].assoc[from->idx];
	if (fwd && (e = g_hash_table_lookup(fwd, KEY(id)))) {
		ssize_t i = -1;

		if (add)
			i = assoc_edit(e, to_id, true, default_types(c, from, to));
		else
			for (size_t k = 0; k < e->n && i < 0; k++)
				if (e->ids[k] == to_id)
					i = (ssize_t)k;
		if (i >= 0) {
			char *s = assocfile_types_edit(e->types[i], category, type_id, label, add);

			e->types[i] = g_intern_string(s);
			g_free(s);
		}
	}
	/* The other side: the link exists now; its own label (the inverse, whose
	 * id this side does not know) shows once read again. */
	if (add && back && (e = g_hash_table_lookup(back, KEY(to_id))))
		assoc_edit(e, id, true, default_types(c, to, from));
	cache_note_assoc(c, from, id, to, &to_id, 1);
	if (add)
		cache_note_assoc(c, to, to_id, from, &id, 1);
	cache_unlock_and_notify(c);
}

/* --- label definitions --------------------------------------------------- */

struct assoc_labels {
	char *text;        /* the results array, JSON text */
	int64_t fetched_ms;
};

static void labels_free(gpointer p)
{
	struct assoc_labels *l = p;

	g_free(l->text);
	g_free(l);
}

static gpointer pair_key(const struct objtype *from, const struct objtype *to)
{
	return GUINT_TO_POINTER(from->idx * OBJTYPES_MAX + to->idx + 1);
}

int cache_assoc_labels(struct cache *c, const struct objtype *from, const struct objtype *to,
		       int64_t deadline, json_object **results)
{
	json_object *resp = NULL, *res = NULL;
	struct assoc_labels *l;
	struct hs_call call;
	int rc;

	*results = NULL;
	g_mutex_lock(&c->lock);
	if (!c->assoc_labels)
		c->assoc_labels = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
							labels_free);
	l = g_hash_table_lookup(c->assoc_labels, pair_key(from, to));
	if (l && cache_now_ms(c) < l->fetched_ms + c->opts.ttl_ms) {
		c->hits++;
		*results = json_tokener_parse(l->text);
		g_mutex_unlock(&c->lock);
		return 0;
	}
	c->misses++;
	g_mutex_unlock(&c->lock);

	cache_call_init(&call, RL_PRIO_USER, deadline);
	rc = hs_assoc_labels(c->hc, &call, from->path, to->path, &resp);
	if (rc == 0 && (!json_object_object_get_ex(resp, "results", &res) ||
			!json_object_is_type(res, json_type_array))) {
		log_err("association labels %s -> %s: the answer has no results list", from->name,
			to->name);
		rc = -EIO;
	}
	g_mutex_lock(&c->lock);
	if (rc == 0) {
		l = g_new0(struct assoc_labels, 1);
		l->text = g_strdup(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
		l->fetched_ms = cache_now_ms(c);
		g_hash_table_replace(c->assoc_labels, pair_key(from, to), l);
		*results = json_object_get(res);
	} else if ((l = g_hash_table_lookup(c->assoc_labels, pair_key(from, to)))) {
		*results = json_tokener_parse(l->text); /* serve stale rather than fail */
		rc = 0;
	}
	g_mutex_unlock(&c->lock);
	json_object_put(resp);
	return rc;
}
