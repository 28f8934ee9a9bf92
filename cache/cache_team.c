/* cache_team.c - the store in a team of mounts (cache/cache_team.h): lease
 * gating of refreshes and relists, publishing what this mount learned or
 * landed, and applying what the others published.
 *
 * Threads: the publisher drains c->tm->out into team_publish() (in order, so
 * a refresh's records go out before its marker); the fetcher reads again, in
 * batch reads, the records whose copies a change dropped. The team's own
 * thread calls cache_team_apply(). Whoever uses tm->t holds tm->rw as a
 * reader; detaching takes it as the writer, so team_free() can follow.
 */
#include "cache/cache_int.h"
#include "cache/cache_team.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/log.h"

#define FETCH_TIMEOUT_MS 30000 /* one background batch read of dropped records */
#define OUT_MAX 100000         /* changes queued to publish; past that they are dropped */

enum { A_UPDATE, A_ARCHIVE, A_ASSOC, A_REFRESH, A_RELIST, A_RESYNC, A_COUNT };
static const char *const applied_names[A_COUNT] = {
	"update", "archive", "assoc", "refresh", "relist", "resync",
};

struct cache_team {
	GRWLock rw;            /* readers use t; the writer (detach) clears it */
	struct team *t;        /* NULL once detached */

	GMutex lock;           /* everything below */
	GCond cond;
	bool stop;
	GArray *out;           /* struct team_change, to publish */
	GHashTable **fetch;    /* [type idx]: ids to read again */
	size_t nfetch;
	bool *own_refresh;     /* [type idx]: the next refresh runs here (after RESYNC) */
	bool *held_refresh;    /* [type idx]: this mount took the lease (released at detach) */
	bool *held_relist;
	uint64_t applied[A_COUNT];
	uint64_t dropped, refresh_skipped, relist_skipped;
	GThread *publisher, *fetcher;
};

static struct cache_team *tm_of(struct cache *c)
{
	return g_atomic_pointer_get(&c->tm);
}

/* The team, with tm->rw held as a reader (release with tm_put), or NULL. */
static struct team *tm_get(struct cache_team *tm)
{
	if (!tm)
		return NULL;
	g_rw_lock_reader_lock(&tm->rw);
	if (!tm->t) {
		g_rw_lock_reader_unlock(&tm->rw);
		return NULL;
	}
	return tm->t;
}

static void tm_put(struct cache_team *tm)
{
	g_rw_lock_reader_unlock(&tm->rw);
}

/* --- publishing -------------------------------------------------------- */

static void queue_out(struct cache *c, const struct team_change *ch)
{
	struct cache_team *tm = tm_of(c);

	if (!tm)
		return;
	g_mutex_lock(&tm->lock);
	if (!tm->stop && tm->out->len < OUT_MAX) {
		g_array_append_vals(tm->out, ch, 1);
		g_cond_broadcast(&tm->cond);
	} else {
		tm->dropped++;
	}
	g_mutex_unlock(&tm->lock);
}

static void change_init(struct team_change *ch, enum team_change_kind kind,
			const struct objtype *type, uint64_t id, int64_t updated_ms)
{
	memset(ch, 0, sizeof(*ch));
	ch->kind = kind;
	g_strlcpy(ch->type, type->id, sizeof(ch->type));
	ch->id = id;
	ch->updated_ms = updated_ms > 0 ? updated_ms : 0;
}

static gpointer publisher_main(gpointer p)
{
	struct cache *c = p;
	struct cache_team *tm = c->tm;

	g_mutex_lock(&tm->lock);
	for (;;) {
		GArray *batch;
		struct team *t;
		int rc = -EAGAIN;

		while (!tm->stop && tm->out->len == 0)
			g_cond_wait(&tm->cond, &tm->lock);
		if (tm->out->len == 0)
			break; /* stopping, and what was queued went out (unmount's last landings) */
		batch = tm->out;
		tm->out = g_array_new(FALSE, FALSE, sizeof(struct team_change));
		g_mutex_unlock(&tm->lock);
		if ((t = tm_get(tm))) {
			rc = team_publish(t, (const struct team_change *)(void *)batch->data, batch->len);
			tm_put(tm);
		}
		if (rc)
			log_info("team: %u change(s) not published (%s); the other mounts see them "
				 "at their next refresh", batch->len, strerror(-rc));
		g_mutex_lock(&tm->lock);
		if (rc)
			tm->dropped += batch->len;
		g_array_free(batch, TRUE);
	}
	g_mutex_unlock(&tm->lock);
	return NULL;
}

void cache_team_landed(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct team_change ch;
	struct rec *r;
	int64_t mtime = 0;

	if (!tm_of(c))
		return;
	g_mutex_lock(&c->lock);
	r = g_hash_table_lookup(c->t[type->idx].recs, KEY(id));
	if (r && !r->local_epoch)
		mtime = r->mtime_ms;
	g_mutex_unlock(&c->lock);
	change_init(&ch, TEAM_CHANGE_UPDATE, type, id, mtime);
	queue_out(c, &ch);
}

void cache_team_archived(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct team_change ch;

	change_init(&ch, TEAM_CHANGE_ARCHIVE, type, id, 0);
	queue_out(c, &ch);
}

void cache_team_assoc_landed(struct cache *c, const struct objtype *from, uint64_t id,
			     const struct objtype *to, uint64_t to_id, bool add)
{
	struct team_change ch;

	change_init(&ch, TEAM_CHANGE_ASSOC, from, id, 0);
	g_strlcpy(ch.to_type, to->id, sizeof(ch.to_type));
	ch.to_id = to_id;
	ch.removed = !add;
	queue_out(c, &ch);
}

void cache_team_refreshed(struct cache *c, const struct objtype *type, const GArray *seen,
			  int64_t sync_wall)
{
	struct team_change ch;

	if (!tm_of(c))
		return;
	for (guint i = 0; i < seen->len; i++) {
		const struct lent *e = &g_array_index(seen, struct lent, i);

		change_init(&ch, TEAM_CHANGE_UPDATE, type, e->id, e->mtime_ms);
		queue_out(c, &ch);
	}
	change_init(&ch, TEAM_CHANGE_REFRESH, type, 0, sync_wall);
	queue_out(c, &ch);
}

void cache_team_relisted(struct cache *c, const struct objtype *type, const struct listing *old,
			 const struct listing *now)
{
	struct team_change ch;

	if (!tm_of(c))
		return;
	if (old && old != now && old->complete) {
		GHashTable *in = g_hash_table_new(g_direct_hash, g_direct_equal);

		for (guint i = 0; i < now->ids->len; i++)
			g_hash_table_add(in, KEY(g_array_index(now->ids, struct lent, i).id));
		for (guint i = 0; i < old->ids->len; i++) {
			const struct lent *e = &g_array_index(old->ids, struct lent, i);

			/* One changed since the relist began may just have been
			 * created after its pages went by: not proof of an archive. */
			if (g_hash_table_contains(in, KEY(e->id)) || e->mtime_ms >= now->started_wall)
				continue;
			change_init(&ch, TEAM_CHANGE_ARCHIVE, type, e->id, 0);
			queue_out(c, &ch);
		}
		g_hash_table_destroy(in);
	}
	change_init(&ch, TEAM_CHANGE_RELIST, type, 0, now->started_wall);
	queue_out(c, &ch);
}

/* --- leases ------------------------------------------------------------ */

bool cache_team_gate(struct cache *c, const struct objtype *type, bool relist)
{
	struct cache_team *tm = tm_of(c);
	struct tcache *tc = &c->t[type->idx];
	char name[TEAM_LEASE_NAME_MAX], holder[TEAM_MOUNT_ID_MAX] = "";
	struct team *t;
	int64_t ttl;
	bool own;
	int rc;

	if (!tm)
		return true;
	g_mutex_lock(&tm->lock);
	own = !relist && tm->own_refresh[type->idx];
	tm->own_refresh[type->idx] = false;
	g_mutex_unlock(&tm->lock);
	g_mutex_lock(&c->lock);
	/* A marker from the holder may have come while this waited in the queue. */
	if (!relist && !own && tc->sync_wall_ms && !cache_type_stale(c, tc, cache_now_ms(c))) {
		tc->refreshing = false;
		g_mutex_unlock(&c->lock);
		return false;
	}
	g_mutex_unlock(&c->lock);
	if (own || !(t = tm_get(tm)))
		return true;
	snprintf(name, sizeof(name), "%s/%s", relist ? "relist" : "refresh", type->id);
	ttl = relist ? c->opts.relist_ms : c->opts.ttl_ms;
	rc = team_lease(t, name, ttl, holder, sizeof(holder));
	tm_put(tm);
	if (rc != 0) { /* ours, or Redis did not answer: do it here */
		g_mutex_lock(&tm->lock);
		if (rc == 1)
			(relist ? tm->held_relist : tm->held_refresh)[type->idx] = true;
		g_mutex_unlock(&tm->lock);
		return true;
	}
	log_debug("team: %s of %s is %s's", relist ? "relist" : "refresh", type->name, holder);
	g_mutex_lock(&tm->lock);
	if (relist)
		tm->relist_skipped++;
	else
		tm->refresh_skipped++;
	g_mutex_unlock(&tm->lock);
	g_mutex_lock(&c->lock);
	if (relist) {
		tc->relisting = false;
		tc->relist_fail_ms = cache_now_ms(c); /* asked again after a ttl */
	} else {
		tc->refreshing = false;
		/* Asked again 2 s later (cache_kick_refresh's pause after a failure)
		 * if the holder's marker has not come by then. */
		tc->refresh_fail_ms = cache_now_ms(c);
	}
	g_mutex_unlock(&c->lock);
	return false;
}

/* --- applying ---------------------------------------------------------- */

static bool listing_find(struct listing *l, uint64_t id, guint *at)
{
	for (guint i = 0; i < l->ids->len; i++)
		if (g_array_index(l->ids, struct lent, i).id == id) {
			*at = i;
			return true;
		}
	return false;
}

/* Queue id for the fetcher. Lock c->lock held (tm->lock is taken inside). */
static void want_fetch(struct cache *c, struct cache_team *tm, const struct objtype *type,
		       uint64_t id)
{
	g_hash_table_add(c->t[type->idx].wanted, KEY(id));
	g_mutex_lock(&tm->lock);
	if (!g_hash_table_contains(tm->fetch[type->idx], KEY(id))) {
		g_hash_table_add(tm->fetch[type->idx], KEY(id));
		tm->nfetch++;
		g_cond_broadcast(&tm->cond);
	}
	g_mutex_unlock(&tm->lock);
}

/* A record changed elsewhere (updatedAt updated_ms, 0 if unknown). Our copy,
 * unless as new or newer, or edited here and not yet landed (the writeback
 * decides that one), is dropped and read again; a record new to a complete
 * listing joins it. Lock held. */
static void apply_update(struct cache *c, struct cache_team *tm, const struct objtype *type,
			 uint64_t id, int64_t updated_ms)
{
	struct tcache *tc = &c->t[type->idx];
	struct rec *r = g_hash_table_lookup(tc->recs, KEY(id));
	struct listing *l = tc->listing;
	bool in_listing = false;
	guint at = 0;

	if (g_hash_table_contains(tc->gone, KEY(id)))
		return; /* archived here; the archive decides */
	if (r && (r->local_epoch || (updated_ms > 0 && r->mtime_ms >= updated_ms)))
		return;
	g_hash_table_remove(tc->missing, KEY(id));
	cache_note_recent(c, tc, id); /* query directories overlay it */
	if (l)
		in_listing = listing_find(l, id, &at);
	if (l && l->complete && !in_listing) {
		struct lent e = { id, r ? r->len : 0, updated_ms };

		g_array_append_val(l->ids, e);
		in_listing = true;
	}
	if (r) {
		cache_rec_remove(c, r);
		cache_note_changed(c, type, id);
	}
	if (r || in_listing)
		want_fetch(c, tm, type, id);
}

/* Archived elsewhere: gone from the listing and the cache, hidden from
 * search results while HubSpot's index may still return it. Lock held. */
static void apply_archive(struct cache *c, const struct objtype *type, uint64_t id)
{
	struct tcache *tc = &c->t[type->idx];
	struct rec *r = g_hash_table_lookup(tc->recs, KEY(id));
	guint at;

	if (tc->listing && listing_find(tc->listing, id, &at))
		g_array_remove_index(tc->listing->ids, at);
	if (r) {
		cache_rec_remove(c, r);
		cache_note_changed(c, type, id);
	}
	g_hash_table_remove(tc->wanted, KEY(id));
	cache_note_missing(c, tc, id, cache_now_ms(c) + c->opts.ttl_ms);
	cache_note_gone(c, tc, id, c->opts.wall() + c->opts.index_delay_ms + CACHE_GONE_KEEP_MS);
	cache_note_recent(c, tc, id);
}

/* The holder's marker: every change up to its sync point was published before
 * it. Lock held. */
static void apply_marker(struct cache *c, const struct objtype *type, int64_t sync_wall,
			 bool relist)
{
	struct tcache *tc = &c->t[type->idx];

	if (!tc->sync_wall_ms)
		return; /* never fetched here: nothing to keep fresh */
	if (relist && tc->listing && tc->listing->complete && !tc->listing->err)
		tc->listing->completed_ms = cache_now_ms(c);
	if (sync_wall > tc->sync_wall_ms)
		tc->sync_wall_ms = sync_wall;
	tc->synced_ms = cache_now_ms(c);
	tc->refresh_fail_ms = 0;
	g_cond_broadcast(&c->cond);
}

/* The feed was cut: changes may have been missed. Every type's next refresh
 * runs here, from this mount's own sync point, lease or not. */
static void apply_resync(struct cache *c, struct cache_team *tm)
{
	g_mutex_lock(&tm->lock);
	for (size_t i = 0; i < c->ntypes; i++)
		tm->own_refresh[i] = true;
	g_mutex_unlock(&tm->lock);
	g_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->ntypes; i++)
		c->t[i].synced_ms = INT64_MIN / 2; /* stale: the next use refreshes */
	g_mutex_unlock(&c->lock);
}

void cache_team_apply(struct cache *c, const struct team_change *ch)
{
	struct cache_team *tm = tm_of(c);
	const struct objtype *type, *to = NULL;
	int a;

	if (!tm)
		return;
	g_rw_lock_reader_lock(&tm->rw);
	if (!tm->t) {
		g_rw_lock_reader_unlock(&tm->rw);
		return;
	}
	if (ch->kind == TEAM_CHANGE_RESYNC) {
		apply_resync(c, tm);
		a = A_RESYNC;
		goto count;
	}
	type = objtypes_by_id(c->types, ch->type);
	if (ch->kind == TEAM_CHANGE_ASSOC)
		to = objtypes_by_id(c->types, ch->to_type);
	if (!type || (ch->kind == TEAM_CHANGE_ASSOC && !to)) {
		g_rw_lock_reader_unlock(&tm->rw);
		return; /* a type this mount does not show */
	}
	if (ch->kind == TEAM_CHANGE_ASSOC) {
		cache_assoc_note(c, type, ch->id, to, ch->to_id, !ch->removed);
		a = A_ASSOC;
		goto count;
	}
	g_mutex_lock(&c->lock);
	switch (ch->kind) {
	case TEAM_CHANGE_UPDATE:
	case TEAM_CHANGE_CREATE:
		apply_update(c, tm, type, ch->id, ch->updated_ms);
		a = A_UPDATE;
		break;
	case TEAM_CHANGE_ARCHIVE:
		apply_archive(c, type, ch->id);
		a = A_ARCHIVE;
		break;
	case TEAM_CHANGE_REFRESH:
	case TEAM_CHANGE_RELIST:
		apply_marker(c, type, ch->updated_ms, ch->kind == TEAM_CHANGE_RELIST);
		a = ch->kind == TEAM_CHANGE_RELIST ? A_RELIST : A_REFRESH;
		break;
	default:
		g_mutex_unlock(&c->lock);
		g_rw_lock_reader_unlock(&tm->rw);
		return;
	}
	cache_unlock_and_notify(c);
count:
	g_mutex_lock(&tm->lock);
	tm->applied[a]++;
	g_mutex_unlock(&tm->lock);
	g_rw_lock_reader_unlock(&tm->rw);
}

/* --- fetching ---------------------------------------------------------- */

/* Take one queued id (and its type) off tm->fetch; false if none. tm->lock held. */
static bool fetch_take(struct cache *c, struct cache_team *tm, const struct objtype **type,
		       uint64_t *id)
{
	for (size_t i = 0; i < c->ntypes; i++) {
		GHashTableIter it;
		gpointer k;

		g_hash_table_iter_init(&it, tm->fetch[i]);
		if (g_hash_table_iter_next(&it, &k, NULL)) {
			*type = c->t[i].type;
			*id = UNKEY(k);
			g_hash_table_iter_remove(&it);
			tm->nfetch--;
			return true;
		}
	}
	return false;
}

/* Read the dropped records again: each lookup batch-reads its record with up
 * to 99 other wanted ones of its type, so the next ids are mostly hits. */
static gpointer fetcher_main(gpointer p)
{
	struct cache *c = p;
	struct cache_team *tm = c->tm;

	g_mutex_lock(&tm->lock);
	for (;;) {
		const struct objtype *type;
		struct rec_attr a;
		uint64_t id;
		int rc;

		while (!tm->stop && !fetch_take(c, tm, &type, &id))
			g_cond_wait(&tm->cond, &tm->lock);
		if (tm->stop)
			break;
		g_mutex_unlock(&tm->lock);
		rc = cache_stopping(c) ? 0 :
		     cache_record_stat(c, type, id, hs_now_ms() + FETCH_TIMEOUT_MS, &a);
		if (rc && rc != -ENOENT)
			log_info("team: reading %s/%" G_GUINT64_FORMAT " again: %s (read on next use)",
				 type->name, id, strerror(-rc));
		g_mutex_lock(&tm->lock);
	}
	g_mutex_unlock(&tm->lock);
	return NULL;
}

/* --- lifecycle and status --------------------------------------------- */

int cache_team_attach(struct cache *c, struct team *t)
{
	struct cache_team *tm;

	if (tm_of(c))
		return -EBUSY;
	tm = g_new0(struct cache_team, 1);
	g_rw_lock_init(&tm->rw);
	g_mutex_init(&tm->lock);
	g_cond_init(&tm->cond);
	tm->t = t;
	tm->out = g_array_new(FALSE, FALSE, sizeof(struct team_change));
	tm->fetch = g_new0(GHashTable *, c->ntypes);
	for (size_t i = 0; i < c->ntypes; i++)
		tm->fetch[i] = g_hash_table_new(g_direct_hash, g_direct_equal);
	tm->own_refresh = g_new0(bool, c->ntypes);
	tm->held_refresh = g_new0(bool, c->ntypes);
	tm->held_relist = g_new0(bool, c->ntypes);
	g_atomic_pointer_set(&c->tm, tm);
	tm->publisher = g_thread_new("hubfs-team-pub", publisher_main, c);
	tm->fetcher = g_thread_new("hubfs-team-fetch", fetcher_main, c);
	return 0;
}

void cache_team_detach(struct cache *c)
{
	struct cache_team *tm = tm_of(c);
	char name[TEAM_LEASE_NAME_MAX];

	if (!tm || !tm->publisher)
		return;
	g_mutex_lock(&tm->lock);
	tm->stop = true;
	g_cond_broadcast(&tm->cond);
	g_mutex_unlock(&tm->lock);
	g_thread_join(tm->publisher);
	g_thread_join(tm->fetcher);
	tm->publisher = tm->fetcher = NULL;
	g_rw_lock_writer_lock(&tm->rw);
	for (size_t i = 0; tm->t && i < c->ntypes; i++) {
		/* The next mount takes over at once instead of after a ttl. */
		if (tm->held_refresh[i]) {
			snprintf(name, sizeof(name), "refresh/%s", c->t[i].type->id);
			team_lease_release(tm->t, name);
		}
		if (tm->held_relist[i]) {
			snprintf(name, sizeof(name), "relist/%s", c->t[i].type->id);
			team_lease_release(tm->t, name);
		}
	}
	tm->t = NULL;
	g_rw_lock_writer_unlock(&tm->rw);
}

void cache_team_free_state(struct cache *c)
{
	struct cache_team *tm = tm_of(c);

	if (!tm)
		return;
	cache_team_detach(c);
	for (size_t i = 0; i < c->ntypes; i++)
		g_hash_table_destroy(tm->fetch[i]);
	g_free(tm->fetch);
	g_free(tm->own_refresh);
	g_free(tm->held_refresh);
	g_free(tm->held_relist);
	g_array_free(tm->out, TRUE);
	g_rw_lock_clear(&tm->rw);
	g_mutex_clear(&tm->lock);
	g_cond_clear(&tm->cond);
	g_free(tm);
	c->tm = NULL;
}

void cache_team_stats(struct cache *c, json_object *obj)
{
	struct cache_team *tm = tm_of(c);
	json_object *held, *applied;

	if (!tm)
		return;
	held = json_object_new_array();
	applied = json_object_new_object();
	g_mutex_lock(&tm->lock);
	for (size_t i = 0; i < c->ntypes; i++) {
		if (tm->held_refresh[i])
			json_object_array_add(held, json_object_new_string_len(c->t[i].type->name,
									       (int)strlen(c->t[i].type->name)));
	}
	for (int a = 0; a < A_COUNT; a++)
		json_object_object_add(applied, applied_names[a], json_object_new_uint64(tm->applied[a]));
	json_object_object_add(obj, "refresh_leases_taken", held);
	json_object_object_add(obj, "applied", applied);
	json_object_object_add(obj, "fetch_queue", json_object_new_uint64(tm->nfetch));
	json_object_object_add(obj, "publish_dropped", json_object_new_uint64(tm->dropped));
	json_object_object_add(obj, "refreshes_skipped", json_object_new_uint64(tm->refresh_skipped));
	json_object_object_add(obj, "relists_skipped", json_object_new_uint64(tm->relist_skipped));
	g_mutex_unlock(&tm->lock);
}
