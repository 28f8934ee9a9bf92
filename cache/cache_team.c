/* cache_team.c - the store in a team of mounts (cache/cache_team.h): lease
 * gating of refreshes and relists, publishing what this mount learned or
 * landed, and applying what the others published.
 *
 * Threads: the publisher drains c->tm->out into team_publish() (in order, so
 * a refresh's records go out before its marker). The team's own thread calls
 * cache_team_apply(), which hands record changes to cache_events_add() (the
 * store's worker batch-reads them where they are held or listed). Whoever
 * uses tm->t holds tm->rw as a reader; detaching takes it as the writer, so
 * team_free() can follow.
 */
#include "cache/cache_int.h"
#include "cache/cache_team.h"

#include "cache/cache_events.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/log.h"

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
	uint64_t portal_id;
	bool *own_refresh;     /* [type idx]: the next refresh runs here (after RESYNC) */
	bool *held_refresh;    /* [type idx]: this mount took the lease (released at detach) */
	bool *held_relist;
	uint64_t applied[A_COUNT];
	uint64_t dropped, refresh_skipped, relist_skipped;
	GThread *publisher;
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
		ch.refreshed = true;
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
			ch.refreshed = true;
			queue_out(c, &ch);
		}
		g_hash_table_destroy(in);
	}
	change_init(&ch, TEAM_CHANGE_RELIST, type, 0, now->started_wall);
	queue_out(c, &ch);
}

/* The type of an event's record: objectTypeId if sent, else its object name. */
static const struct objtype *event_type(struct cache *c, const char *type_id, const char *object)
{
	const struct objtype *t = NULL;

	if (type_id && type_id[0])
		t = objtypes_by_id(c->types, type_id);
	if (!t && object && object[0] && strcmp(object, "object") != 0)
		t = objtypes_lookup(c->types, object);
	return t;
}

/* The two types of an associationChange: from/toObjectTypeId, else the two
 * halves of associationType ("CONTACT_TO_COMPANY"), lowercased. */
static bool assoc_types(struct cache *c, const struct wh_event *e, const struct objtype **from,
			const struct objtype **to)
{
	const char *sep = strstr(e->association_type, "_TO_");

	*from = e->from_type_id[0] ? objtypes_by_id(c->types, e->from_type_id) : NULL;
	*to = e->to_type_id[0] ? objtypes_by_id(c->types, e->to_type_id) : NULL;
	if ((!*from || !*to) && sep) {
		g_autofree char *a = g_ascii_strdown(e->association_type,
						     (gssize)(sep - e->association_type));
		g_autofree char *b = g_ascii_strdown(sep + 4, -1);

		if (!*from)
			*from = objtypes_lookup(c->types, a);
		if (!*to)
			*to = objtypes_lookup(c->types, b);
	}
	return *from && *to;
}

size_t cache_team_relay(struct cache *c, const struct wh_event *ev, size_t n)
{
	struct team_change ch;
	size_t queued = 0;

	if (!tm_of(c))
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct wh_event *e = &ev[i];
		const struct objtype *t = event_type(c, e->object_type_id, e->object), *to;
		uint64_t survivor;

		switch (e->kind) {
		case WH_CREATION:
		case WH_PROPERTY_CHANGE:
		case WH_RESTORE:
			if (!t || !e->object_id)
				continue;
			change_init(&ch, e->kind == WH_CREATION ? TEAM_CHANGE_CREATE : TEAM_CHANGE_UPDATE,
				    t, e->object_id, e->occurred_at);
			queue_out(c, &ch);
			queued++;
			break;
		case WH_DELETION:
		case WH_PRIVACY_DELETION:
			if (!t || !e->object_id)
				continue;
			change_init(&ch, TEAM_CHANGE_ARCHIVE, t, e->object_id, 0);
			queue_out(c, &ch);
			queued++;
			break;
		case WH_MERGE:
			survivor = e->new_id ? e->new_id : e->primary_id ? e->primary_id : e->object_id;
			if (!t || !survivor)
				continue;
			change_init(&ch, TEAM_CHANGE_UPDATE, t, survivor, e->occurred_at);
			queue_out(c, &ch);
			queued++;
			for (size_t k = 0; k < e->n_merged + 2; k++) {
				uint64_t id = k < e->n_merged ? e->merged_ids[k] :
					      k == e->n_merged ? e->primary_id : e->object_id;

				if (!id || id == survivor)
					continue;
				change_init(&ch, TEAM_CHANGE_ARCHIVE, t, id, 0);
				queue_out(c, &ch);
				queued++;
			}
			break;
		case WH_ASSOCIATION_CHANGE:
			if (!e->from_id || !e->to_id || !assoc_types(c, e, &t, &to))
				continue;
			change_init(&ch, TEAM_CHANGE_ASSOC, t, e->from_id, 0);
			g_strlcpy(ch.to_type, to->id, sizeof(ch.to_type));
			ch.to_id = e->to_id;
			ch.removed = e->removed;
			queue_out(c, &ch);
			queued++;
			break;
		default:
			break;
		}
	}
	return queued;
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
	/* cache_expire() (SIGHUP: the user asks for everything now) zeroes
	 * synced_ms and puts the listing's completion at INT64_MIN / 2 (so
	 * do a refresh that found it must relist, and a webhook flag): those run
	 * here, whoever holds the lease. */
	if (!relist && tc->sync_wall_ms && tc->synced_ms == 0)
		own = true;
	if (relist && tc->listing && tc->listing->completed_ms == INT64_MIN / 2)
		own = true;
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

/* Whether anything of a type was fetched or shown here (else a change has
 * nothing to update: the first access fetches it fresh). Lock held. */
static bool type_in_use(struct tcache *tc)
{
	return tc->sync_wall_ms || tc->listing || g_hash_table_size(tc->recs);
}

/* A record changed (or was archived) elsewhere. Whether it concerns this
 * mount (cache_events_add() then reads it again, or forgets it): an archive
 * always does; a change only if the record is cached here or the type has a
 * listing here (which the record is in, or joins), so a mount reads again
 * what it holds and nothing else. A landed write (or a pushed change) is
 * overlaid on the query directories for the indexing delay, as this mount's
 * own writes are (cache_search.c), and an archived record is hidden from
 * search results as long as the index may still return it; what a refresh
 * found is overlaid only where it is read again anyway (the overlay reads
 * every record it considers: a refresh of thousands would cost as many
 * reads at the next `ls` of a query directory). Lock held. */
static bool note_change(struct cache *c, const struct objtype *type, const struct team_change *ch)
{
	struct tcache *tc = &c->t[type->idx];
	gpointer g = g_hash_table_lookup(tc->gone, KEY(ch->id));
	bool archived = ch->kind == TEAM_CHANGE_ARCHIVE, held;

	if (!type_in_use(tc) || (g && (int64_t)GPOINTER_TO_SIZE(g) == GONE_PENDING))
		return false; /* nothing shown; or archived here and not yet landed: that decides */
	held = archived || tc->listing || g_hash_table_contains(tc->recs, KEY(ch->id));
	if (held || !ch->refreshed)
		cache_note_recent(c, tc, ch->id);
	if (archived)
		cache_note_gone(c, tc, ch->id,
				c->opts.wall() + c->opts.index_delay_ms + CACHE_GONE_KEEP_MS);
	return held;
}

/* The change as the webhook event that means the same (cache/model/changes.h):
 * a record that exists (read again where it is held or listed) or is gone.
 * Without an updatedAt it is news as of now. */
static void as_event(struct cache_team *tm, const struct team_change *ch, struct wh_event *e,
		     int64_t now)
{
	memset(e, 0, sizeof(*e));
	e->kind = ch->kind == TEAM_CHANGE_ARCHIVE ? WH_DELETION :
		  ch->kind == TEAM_CHANGE_CREATE ? WH_CREATION : WH_PROPERTY_CHANGE;
	g_strlcpy(e->type, e->kind == WH_DELETION ? "object.deletion" :
		  e->kind == WH_CREATION ? "object.creation" : "object.propertyChange",
		  sizeof(e->type));
	g_strlcpy(e->object, "object", sizeof(e->object));
	g_strlcpy(e->object_type_id, ch->type, sizeof(e->object_type_id));
	e->object_id = ch->id;
	e->occurred_at = ch->updated_ms > 0 && ch->updated_ms <= now ? ch->updated_ms : now;
	e->portal_id = tm->portal_id;
	g_strlcpy(e->change_source, "TEAM", sizeof(e->change_source));
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

/* What the change kind counts as in "applied". */
static int applied_kind(enum team_change_kind k)
{
	switch (k) {
	case TEAM_CHANGE_ARCHIVE: return A_ARCHIVE;
	case TEAM_CHANGE_ASSOC: return A_ASSOC;
	case TEAM_CHANGE_REFRESH: return A_REFRESH;
	case TEAM_CHANGE_RELIST: return A_RELIST;
	case TEAM_CHANGE_RESYNC: return A_RESYNC;
	default: return A_UPDATE;
	}
}

void cache_team_apply(struct cache *c, const struct team_change *ch)
{
	struct cache_team *tm = tm_of(c);
	const struct objtype *type = NULL, *to = NULL;
	struct wh_event e;
	bool held;

	if (!tm)
		return;
	g_rw_lock_reader_lock(&tm->rw);
	if (!tm->t)
		goto out;
	if (ch->kind != TEAM_CHANGE_RESYNC && !(type = objtypes_by_id(c->types, ch->type)))
		goto out; /* a type this mount does not show */
	switch (ch->kind) {
	case TEAM_CHANGE_RESYNC:
		apply_resync(c, tm);
		break;
	case TEAM_CHANGE_ASSOC:
		/* The change is known exactly: the held lists are edited, no call. */
		if (!(to = objtypes_by_id(c->types, ch->to_type)))
			goto out;
		cache_assoc_note(c, type, ch->id, to, ch->to_id, !ch->removed);
		break;
	case TEAM_CHANGE_REFRESH:
	case TEAM_CHANGE_RELIST:
		g_mutex_lock(&c->lock);
		apply_marker(c, type, ch->updated_ms, ch->kind == TEAM_CHANGE_RELIST);
		g_mutex_unlock(&c->lock);
		break;
	case TEAM_CHANGE_UPDATE:
	case TEAM_CHANGE_CREATE:
	case TEAM_CHANGE_ARCHIVE:
		g_mutex_lock(&c->lock);
		held = note_change(c, type, ch);
		g_mutex_unlock(&c->lock);
		if (held) {
			as_event(tm, ch, &e, c->opts.wall());
			cache_events_add(c, &e, 1);
		}
		break;
	default:
		goto out;
	}
	g_mutex_lock(&tm->lock);
	tm->applied[applied_kind(ch->kind)]++;
	g_mutex_unlock(&tm->lock);
out:
	g_rw_lock_reader_unlock(&tm->rw);
}

/* --- lifecycle and status --------------------------------------------- */

int cache_team_attach(struct cache *c, struct team *t, uint64_t portal_id)
{
	struct cache_events_stats st;
	struct cache_team *tm;

	if (tm_of(c))
		return -EBUSY;
	/* The others' changes are applied as pushed events; they do not make
	 * polling back off here (the team's refresh is the poll), unless
	 * whoever started the events (webhooks) said otherwise. */
	cache_events_stats(c, &st);
	if (!st.started) {
		struct cache_events_opts eo = { .portal_id = portal_id, .backoff = 1 };
		int rc = cache_events_start(c, &eo);

		if (rc)
			return rc;
	}
	tm = g_new0(struct cache_team, 1);
	g_rw_lock_init(&tm->rw);
	g_mutex_init(&tm->lock);
	g_cond_init(&tm->cond);
	tm->t = t;
	tm->out = g_array_new(FALSE, FALSE, sizeof(struct team_change));
	tm->portal_id = portal_id;
	tm->own_refresh = g_new0(bool, c->ntypes);
	tm->held_refresh = g_new0(bool, c->ntypes);
	tm->held_relist = g_new0(bool, c->ntypes);
	g_atomic_pointer_set(&c->tm, tm);
	tm->publisher = g_thread_new("hubfs-team-pub", publisher_main, c);
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
	tm->publisher = NULL;
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
	json_object_object_add(obj, "publish_dropped", json_object_new_uint64(tm->dropped));
	json_object_object_add(obj, "refreshes_skipped", json_object_new_uint64(tm->refresh_skipped));
	json_object_object_add(obj, "relists_skipped", json_object_new_uint64(tm->relist_skipped));
	g_mutex_unlock(&tm->lock);
}
