/* changes.c - webhook events folded into pending cache work: ordering per
 * record, duplicates, bounds, and the coalesced work list. See changes.h.
 *
 * Three tables, all under c->lock:
 *   recs    every record remembered, pending or in the history, keyed by
 *           (type idx, id); each on exactly one of two lists, in the order it
 *           got there (pending: became pending; history: its work went out)
 *   assocs  association maps to refetch, keyed by (from idx, id, to idx);
 *           to == ASSOC_ALL for "every map of the record"
 *   seen    the duplicate window: event keys, oldest first in seen_order
 */
#include "cache/model/changes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

/* What the events at a record's newest occurredAt said. */
#define B_EXISTS 1u
#define B_GONE 2u

/* rec->flags */
#define F_PENDING 1u
#define F_MUST_READ 2u  /* created, restored, merged into, retried or back from
			 * gone since at0: a read, whatever the cache holds */

#define ASSOC_ALL 0xffffu

#define DEF_MAX_PENDING 10000
#define DEF_MAX_ASSOC 10000
#define DEF_MAX_HISTORY 32768
#define DEF_HISTORY_MS (60 * 60 * 1000)
#define DEF_MAX_DEDUPE 16384
#define DEF_DEDUPE_MS (60 * 60 * 1000)
#define DEF_LINGER_MS 100

struct rec {
	struct rec *prev, *next;   /* on c->pending or c->history */
	uint64_t id;
	int64_t at;                /* newest occurredAt applied; 0 = none yet */
	int64_t at0;               /* `at` when the record last became pending */
	int64_t floor;             /* c->watermark when first remembered: deletions at or
				    * before it may be older than something forgotten */
	int64_t since;             /* in the history: now when its work went out */
	uint16_t type;
	uint8_t bits;              /* B_EXISTS | B_GONE */
	uint8_t flags;             /* F_PENDING | F_MUST_READ */
};

struct rlist {
	struct rec *first, *last;
	size_t n;
};

struct assoc {
	uint64_t id;
	uint16_t from, to;         /* type idx; to may be ASSOC_ALL */
};

/* An event, as far as telling duplicates apart goes. */
struct seen {
	uint64_t event_id, sub_id, object_id, a, b;
	int64_t at;
	int64_t when;              /* now when it came (not part of the key) */
	uint32_t prop;             /* hash of propertyName */
	uint16_t type;
	uint8_t kind, removed;
};

enum outcome { O_OLD, O_OVERFLOW, O_APPLIED };

struct changes {
	const struct objtypes *types;   /* immutable */
	uint64_t portal_id;
	size_t max_pending, max_assoc, max_history, max_dedupe;
	int64_t history_ms, dedupe_ms, linger_ms;

	/* Lock order: c->lock is a leaf. Everything below is protected by it. */
	GMutex lock;
	GHashTable *recs;               /* struct rec * (key and value), owned */
	struct rlist pending, history;
	GHashTable *assocs;             /* struct assoc *, owned */
	GHashTable *seen;               /* struct seen *, owned by seen_order */
	GQueue seen_order;
	unsigned flags[OBJTYPES_MAX];   /* enum changes_type_flag, since the last drain */
	int64_t watermark;              /* newest occurredAt forgotten or dropped at a bound */
	int64_t pending_since;          /* now when the oldest pending work came ... */
	bool lingering;                 /* ... if any */
	bool urgent;                    /* a record became gone since the last drain */
	struct changes_stats st;        /* the sizes are filled in by changes_stats */
};

static const char *const ignore_names[CHI_COUNT] = {
	[CHI_KIND] = "kind",
	[CHI_PORTAL] = "portal",
	[CHI_TYPE] = "type",
	[CHI_ID] = "id",
	[CHI_TIME] = "time",
};

const char *changes_ignore_name(enum changes_ignore r)
{
	return (unsigned)r < CHI_COUNT ? ignore_names[r] : "?";
}

/* ---------------------------------------------------------------- tables */

static guint rec_hash(gconstpointer p)
{
	const struct rec *r = p;

	return g_int64_hash(&r->id) ^ ((guint)r->type * 0x9e3779b1u);
}

static gboolean rec_equal(gconstpointer a, gconstpointer b)
{
	const struct rec *x = a, *y = b;

	return x->id == y->id && x->type == y->type;
}

static guint assoc_hash(gconstpointer p)
{
	const struct assoc *a = p;

	return g_int64_hash(&a->id) ^ ((guint)a->from * 0x9e3779b1u) ^ ((guint)a->to * 0x85ebca6bu);
}

static gboolean assoc_equal(gconstpointer a, gconstpointer b)
{
	const struct assoc *x = a, *y = b;

	return x->id == y->id && x->from == y->from && x->to == y->to;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static guint seen_hash(gconstpointer p)
{
	const struct seen *s = p;
	uint64_t h = 0;

	h = mix(h, s->event_id);
	h = mix(h, s->sub_id);
	h = mix(h, s->object_id);
	h = mix(h, s->a);
	h = mix(h, s->b);
	h = mix(h, (uint64_t)s->at);
	h = mix(h, ((uint64_t)s->prop << 32) | ((uint64_t)s->type << 16) | ((uint64_t)s->kind << 8) |
		   s->removed);
	return (guint)(h ^ (h >> 32));
}

static gboolean seen_equal(gconstpointer a, gconstpointer b)
{
	const struct seen *x = a, *y = b;

	return x->event_id == y->event_id && x->sub_id == y->sub_id &&
	       x->object_id == y->object_id && x->a == y->a && x->b == y->b && x->at == y->at &&
	       x->prop == y->prop && x->type == y->type && x->kind == y->kind &&
	       x->removed == y->removed;
}

static void rlist_append(struct rlist *l, struct rec *r)
{
	r->next = NULL;
	r->prev = l->last;
	if (l->last)
		l->last->next = r;
	else
		l->first = r;
	l->last = r;
	l->n++;
}

static void rlist_remove(struct rlist *l, struct rec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->first = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->last = r->prev;
	r->prev = r->next = NULL;
	l->n--;
}

/* a + b, or the bound it would pass. */
static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t s;

	if (__builtin_add_overflow(a, b, &s))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return s;
}

/* Whether `then` is at least `ms` (>= 0) before `now`, without overflow. */
static bool aged(int64_t then, int64_t ms, int64_t now)
{
	return now >= then && (uint64_t)now - (uint64_t)then >= (uint64_t)ms;
}

/* ---------------------------------------------------------------- life */

struct changes *changes_new(const struct changes_opts *o)
{
	struct changes *c;

	if (!o || !o->types)
		return NULL;
	c = g_new0(struct changes, 1);
	c->types = o->types;
	c->portal_id = o->portal_id;
	c->max_pending = o->max_pending ? o->max_pending : DEF_MAX_PENDING;
	c->max_assoc = o->max_assoc ? o->max_assoc : DEF_MAX_ASSOC;
	c->max_history = o->max_history ? o->max_history : DEF_MAX_HISTORY;
	c->history_ms = o->history_ms > 0 ? o->history_ms : DEF_HISTORY_MS;
	c->max_dedupe = o->max_dedupe ? o->max_dedupe : DEF_MAX_DEDUPE;
	c->dedupe_ms = o->dedupe_ms > 0 ? o->dedupe_ms : DEF_DEDUPE_MS;
	c->linger_ms = o->linger_ms == 0 ? DEF_LINGER_MS : o->linger_ms < 0 ? 0 : o->linger_ms;
	g_mutex_init(&c->lock);
	c->recs = g_hash_table_new_full(rec_hash, rec_equal, g_free, NULL);
	c->assocs = g_hash_table_new_full(assoc_hash, assoc_equal, g_free, NULL);
	c->seen = g_hash_table_new(seen_hash, seen_equal);
	g_queue_init(&c->seen_order);
	return c;
}

void changes_free(struct changes *c)
{
	if (!c)
		return;
	g_hash_table_destroy(c->recs);
	g_hash_table_destroy(c->assocs);
	g_hash_table_destroy(c->seen);
	g_queue_clear_full(&c->seen_order, g_free);
	g_mutex_clear(&c->lock);
	g_free(c);
}

/* Forget history and duplicate keys past their bounds. A record forgotten
 * raises the watermark to its newest event: a deletion at or before that can
 * no longer be checked against what the record saw. */
static void expire(struct changes *c, int64_t now)
{
	struct rec *r;
	struct seen *s;

	while ((r = c->history.first) &&
	       (c->history.n > c->max_history || aged(r->since, c->history_ms, now))) {
		rlist_remove(&c->history, r);
		c->watermark = MAX(c->watermark, r->at);
		g_hash_table_remove(c->recs, r); /* frees r */
	}
	while ((s = g_queue_peek_head(&c->seen_order)) &&
	       (c->seen_order.length > c->max_dedupe || aged(s->when, c->dedupe_ms, now))) {
		g_queue_pop_head(&c->seen_order);
		g_hash_table_remove(c->seen, s);
		g_free(s);
	}
}

/* ---------------------------------------------------------------- applying */

static void note_pending(struct changes *c, int64_t now)
{
	if (!c->lingering) {
		c->pending_since = now;
		c->lingering = true;
	}
}

/* One event's news for one record: at occurredAt t, it exists (B_EXISTS) or
 * is gone (B_GONE); must_read for creations, restores and merge survivors. */
static enum outcome apply_rec(struct changes *c, const struct objtype *t, uint64_t id,
			      int64_t at, unsigned eff, bool must_read, int64_t now)
{
	struct rec key = { .id = id, .type = (uint16_t)t->idx }, *r;
	bool pending, fresh = false;

	r = g_hash_table_lookup(c->recs, &key);
	if (!r) {
		if (c->pending.n >= c->max_pending) {
			c->flags[t->idx] |= eff & B_GONE ? CHANGES_RELIST : CHANGES_REFRESH;
			c->watermark = MAX(c->watermark, at);
			return O_OVERFLOW;
		}
		r = g_new0(struct rec, 1);
		r->id = id;
		r->type = (uint16_t)t->idx;
		r->floor = c->watermark;
		g_hash_table_add(c->recs, r);
		fresh = true;
	}
	/* A deletion that something forgotten might be newer than is verified. */
	if (eff == B_GONE && at <= r->floor)
		eff = B_EXISTS | B_GONE;
	pending = r->flags & F_PENDING;
	/* News since the last drain that says "read it", in whatever order it came. */
	if (pending && must_read && at > r->at0)
		r->flags |= F_MUST_READ;
	/* No newer than what the record has: nothing to do. Coalesced if it
	 * agrees with work still pending, else dropped. */
	if (at < r->at || (at == r->at && (r->bits | eff) == r->bits))
		return pending && (r->bits | eff) == r->bits ? O_APPLIED : O_OLD;
	if (!pending) {
		if (c->pending.n >= c->max_pending) {
			/* In the history, so not fresh. Remember that something
			 * happened at `at` (unsure), so that an older deletion
			 * retried later cannot win; the type's flag reads it. */
			c->flags[t->idx] |= eff & B_GONE ? CHANGES_RELIST : CHANGES_REFRESH;
			r->bits = B_EXISTS | B_GONE;
			r->at = at;
			return O_OVERFLOW;
		}
		if (!fresh)
			rlist_remove(&c->history, r);
		r->at0 = r->at;
		r->flags = F_PENDING;
		/* Handed out as gone (or unsure) last time: the cache may hold
		 * nothing of it now, but a read brings it back. */
		if ((must_read && at > r->at0) || (r->bits & B_GONE))
			r->flags |= F_MUST_READ;
		rlist_append(&c->pending, r);
		note_pending(c, now);
	}
	if (at > r->at) {
		r->at = at;
		r->bits = (uint8_t)eff;
	} else {
		r->bits |= (uint8_t)eff;
	}
	if (r->bits == B_GONE)
		c->urgent = true;
	return O_APPLIED;
}

static enum outcome apply_assoc(struct changes *c, const struct objtype *from, uint64_t id,
				unsigned to, int64_t now)
{
	struct assoc key = { .id = id, .from = (uint16_t)from->idx, .to = (uint16_t)to }, *a;

	if (g_hash_table_contains(c->assocs, &key))
		return O_APPLIED;
	if (g_hash_table_size(c->assocs) >= c->max_assoc) {
		c->flags[from->idx] |= CHANGES_ASSOC_STALE;
		return O_OVERFLOW;
	}
	a = g_memdup2(&key, sizeof(key));
	g_hash_table_add(c->assocs, a);
	note_pending(c, now);
	return O_APPLIED;
}

static enum outcome best(enum outcome a, enum outcome b)
{
	return MAX(a, b);
}

/* ---------------------------------------------------------------- reading events */

/* The event's own type: objectTypeId for object.*, else the object name
 * ("line_item"), or objectTypeId when the name is unknown. NULL if neither
 * names a type shown, or they name two different ones. */
static const struct objtype *event_type(const struct changes *c, const struct wh_event *e)
{
	const struct objtype *by_id = NULL, *by_name;

	if (e->object_type_id[0])
		by_id = objtypes_by_id(c->types, e->object_type_id);
	if (strcmp(e->object, "object") == 0 || !e->object[0])
		return by_id;
	by_name = objtypes_lookup(c->types, e->object);
	if (!by_name)
		return by_id;
	return by_id && by_id != by_name ? NULL : by_name;
}

/* The types of associationType "CONTACT_TO_COMPANY", "LINE_ITEM_TO_DEAL",
 * "CAR_TO_CONTACT": of the splits at a "_TO_" (any case), the first where
 * both sides name types, else the first where the right side does (a custom
 * object's singular label is no type name: *left stays NULL). */
static void split_assoc(const struct changes *c, const char *s, const struct objtype **left,
			const struct objtype **right)
{
	size_t len = strlen(s);
	bool found = false;

	*left = *right = NULL;
	for (size_t i = 1; i + 4 < len; i++) {
		char name[sizeof(((struct wh_event *)0)->association_type)];
		const struct objtype *l, *r;

		if (g_ascii_strncasecmp(s + i, "_TO_", 4) != 0)
			continue;
		r = objtypes_lookup(c->types, s + i + 4);
		if (!r)
			continue;
		memcpy(name, s, i);
		name[i] = '\0';
		l = objtypes_lookup(c->types, name);
		if (l) {
			*left = l;
			*right = r;
			return;
		}
		if (!found) {
			*right = r;
			found = true;
		}
	}
}

/* The one type `to` with the unlabeled association type id from -> to, or NULL. */
static const struct objtype *by_assoc_id(const struct changes *c, const struct objtype *from,
					 uint32_t id)
{
	const struct objtype *hit = NULL;

	for (unsigned i = 0; i < objtypes_count(c->types); i++) {
		const struct objtype *t = objtypes_at(c->types, i);

		if (objtypes_assoc_type_id(c->types, from, t) == (int)id) {
			if (hit)
				return NULL;
			hit = t;
		}
	}
	return hit;
}

/* The types of fromObjectId and toObjectId: fromObjectTypeId/toObjectTypeId
 * when sent; else the names in associationType; else the event's own type
 * (from) and the associationTypeId (to). Returns CHI_COUNT if both are known
 * and the mount has maps between them, else the reason to ignore. */
static int assoc_types(const struct changes *c, const struct wh_event *e,
		       const struct objtype *own, const struct objtype **from,
		       const struct objtype **to)
{
	const struct objtype *l = NULL, *r = NULL, *sl = NULL, *sr = NULL;

	if (e->from_type_id[0] && !(l = objtypes_by_id(c->types, e->from_type_id)))
		return CHI_TYPE;
	if (e->to_type_id[0] && !(r = objtypes_by_id(c->types, e->to_type_id)))
		return CHI_TYPE;
	if ((!l || !r) && e->association_type[0])
		split_assoc(c, e->association_type, &sl, &sr);
	if (!l)
		l = sl ? sl : own;
	if (!r)
		r = sr;
	if (!r && l && e->association_type_id)
		r = by_assoc_id(c, l, e->association_type_id);
	if (!l || !r || !objtypes_associable(c->types, l, r))
		return CHI_TYPE;
	*from = l;
	*to = r;
	return CHI_COUNT;
}

/* Whether the event was seen within the window; remembers it if not. */
static bool duplicate(struct changes *c, const struct wh_event *e, const struct objtype *t,
		      int64_t now)
{
	struct seen key = {
		.event_id = e->event_id, .sub_id = e->subscription_id, .object_id = e->object_id,
		.at = e->occurred_at, .type = (uint16_t)t->idx, .kind = (uint8_t)e->kind,
		.prop = e->property[0] ? g_str_hash(e->property) : 0,
	}, *s;

	switch (e->kind) {
	case WH_ASSOCIATION_CHANGE: {
		uint64_t h = mix(g_str_hash(e->association_type), e->association_type_id);

		h = mix(mix(h, g_str_hash(e->from_type_id)), g_str_hash(e->to_type_id));
		key.a = e->from_id;
		key.b = e->to_id;
		key.removed = e->removed;
		key.prop = (uint32_t)(h ^ (h >> 32));
		break;
	}
	case WH_MERGE: {
		uint64_t h = e->n_merged;

		for (size_t i = 0; i < e->n_merged; i++)
			h = mix(h, e->merged_ids[i]);
		key.a = e->primary_id;
		key.b = e->new_id;
		key.prop = (uint32_t)(h ^ (h >> 32));
		break;
	}
	default:
		break;
	}
	if (g_hash_table_contains(c->seen, &key))
		return true;
	if (c->seen_order.length >= c->max_dedupe) {
		s = g_queue_pop_head(&c->seen_order);
		g_hash_table_remove(c->seen, s);
		g_free(s);
	}
	key.when = now;
	s = g_memdup2(&key, sizeof(key));
	g_queue_push_tail(&c->seen_order, s);
	g_hash_table_add(c->seen, s);
	return false;
}

static enum outcome apply_merge(struct changes *c, const struct wh_event *e,
				const struct objtype *t, uint64_t survivor, int64_t now)
{
	enum outcome o = apply_rec(c, t, survivor, e->occurred_at, B_EXISTS, true, now);

	o = best(o, apply_assoc(c, t, survivor, ASSOC_ALL, now));
	for (size_t i = 0; i < e->n_merged; i++)
		if (e->merged_ids[i] != survivor)
			o = best(o, apply_rec(c, t, e->merged_ids[i], e->occurred_at, B_GONE, false,
					      now));
	if (e->primary_id && e->primary_id != survivor)
		o = best(o, apply_rec(c, t, e->primary_id, e->occurred_at, B_GONE, false, now));
	if (e->object_id && e->object_id != survivor && e->object_id != e->primary_id)
		o = best(o, apply_rec(c, t, e->object_id, e->occurred_at, B_GONE, false, now));
	return o;
}

/* One event: returns CHI_* to ignore it, or CHI_COUNT with *o its outcome
 * (duplicates: *o is left alone and *dup set). */
static int add_one(struct changes *c, const struct wh_event *e, int64_t now, enum outcome *o,
		   bool *dup)
{
	const struct objtype *t, *from = NULL, *to = NULL;
	uint64_t id = e->object_id, from_id = 0;
	int why;

	if ((unsigned)e->kind >= WH_OTHER)
		return CHI_KIND;
	if (c->portal_id && e->portal_id != c->portal_id)
		return CHI_PORTAL;
	t = event_type(c, e);
	if (!t)
		return CHI_TYPE;
	switch (e->kind) {
	case WH_MERGE:
		id = e->new_id ? e->new_id : e->primary_id ? e->primary_id : e->object_id;
		break;
	case WH_ASSOCIATION_CHANGE:
		why = assoc_types(c, e, t, &from, &to);
		if (why != CHI_COUNT)
			return why;
		from_id = e->from_id ? e->from_id : from == t ? e->object_id : 0;
		id = from_id && e->to_id ? from_id : 0;
		break;
	default:
		break;
	}
	if (!id)
		return CHI_ID;
	if (e->occurred_at <= 0 || e->occurred_at > sat_add(now, WH_MAX_SKEW_MS))
		return CHI_TIME;
	c->st.last_event_at = MAX(c->st.last_event_at, e->occurred_at);
	if (duplicate(c, e, t, now)) {
		*dup = true;
		return CHI_COUNT;
	}
	switch (e->kind) {
	case WH_CREATION:
	case WH_RESTORE:
		*o = apply_rec(c, t, id, e->occurred_at, B_EXISTS, true, now);
		break;
	case WH_PROPERTY_CHANGE:
		*o = apply_rec(c, t, id, e->occurred_at, B_EXISTS, false, now);
		break;
	case WH_DELETION:
	case WH_PRIVACY_DELETION:
		*o = apply_rec(c, t, id, e->occurred_at, B_GONE, false, now);
		break;
	case WH_MERGE:
		*o = apply_merge(c, e, t, id, now);
		break;
	case WH_ASSOCIATION_CHANGE:
		*o = best(apply_assoc(c, from, from_id, to->idx, now),
			  apply_assoc(c, to, e->to_id, from->idx, now));
		break;
	default:
		return CHI_KIND;
	}
	return CHI_COUNT;
}

size_t changes_add(struct changes *c, const struct wh_event *ev, size_t n, int64_t now)
{
	size_t applied = 0;

	if (!n)
		return 0;
	g_mutex_lock(&c->lock);
	expire(c, now);
	c->st.last_received = now;
	for (size_t i = 0; i < n; i++) {
		enum outcome o = O_OLD;
		bool dup = false;
		int why = add_one(c, &ev[i], now, &o, &dup);

		c->st.received++;
		if (why != CHI_COUNT)
			c->st.ignored[why]++;
		else if (dup)
			c->st.duplicates++;
		else if (o == O_APPLIED)
			applied++;
		else if (o == O_OVERFLOW)
			c->st.overflow++;
		else
			c->st.out_of_order++;
	}
	c->st.applied += applied;
	g_mutex_unlock(&c->lock);
	return applied;
}

static bool any_flags(const struct changes *c)
{
	for (size_t i = 0; i < OBJTYPES_MAX; i++)
		if (c->flags[i])
			return true;
	return false;
}

/* ms from now to end, 0 if past, without overflow. */
static int64_t left(int64_t end, int64_t now)
{
	uint64_t d;

	if (end <= now)
		return 0;
	d = (uint64_t)end - (uint64_t)now;
	return d > INT64_MAX ? INT64_MAX : (int64_t)d;
}

int64_t changes_due(struct changes *c, int64_t now)
{
	int64_t rc;

	g_mutex_lock(&c->lock);
	if (!c->pending.n && !g_hash_table_size(c->assocs) && !any_flags(c))
		rc = -1;
	else if (c->urgent || any_flags(c) || c->pending.n >= (c->max_pending + 1) / 2 ||
		 g_hash_table_size(c->assocs) >= (c->max_assoc + 1) / 2)
		rc = 0;
	else
		rc = left(sat_add(c->pending_since, c->linger_ms), now);
	g_mutex_unlock(&c->lock);
	return rc;
}

/* ---------------------------------------------------------------- draining */

struct item {
	uint64_t id;
	int64_t at;
	uint16_t type, to;         /* to: ASSOC_ALL, or the associated type (assoc items) */
	uint8_t gone;              /* record items: 1 gone, 0 read */
	uint8_t askable;           /* record items: the held callback may save the read */
	uint8_t skip;
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->gone != y->gone)
		return x->gone ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Cut items[0..n) (sorted, skipped ones left out) into jobs of kind, at most
 * max ids each, one type (and to) per job. */
static void cut(GArray *jobs, const struct objtypes *types, const struct item *it, size_t n,
		enum changes_job_kind kind, size_t max)
{
	size_t i = 0;

	while (i < n) {
		struct changes_job j = { .kind = kind };
		size_t k = i;

		while (k < n && it[k].type == it[i].type && it[k].to == it[i].to && k - i < max)
			k++;
		j.type = objtypes_at(types, it[i].type);
		if (kind == CHANGES_ASSOC)
			j.to = objtypes_at(types, it[i].to);
		j.ids = g_new(uint64_t, k - i);
		for (size_t m = i; m < k; m++)
			j.ids[j.n++] = it[m].id;
		g_array_append_val(jobs, j);
		i = k;
	}
}

/* &items[i] of a GArray of struct item, or NULL when there is nothing there. */
static const struct item *items(GArray *a, size_t i)
{
	return i < a->len ? &g_array_index(a, struct item, i) : NULL;
}

/* Drop the items marked skip, keeping the order. */
static void squeeze(GArray *a)
{
	guint o = 0;

	for (guint i = 0; i < a->len; i++)
		if (!g_array_index(a, struct item, i).skip)
			g_array_index(a, struct item, o++) = g_array_index(a, struct item, i);
	g_array_set_size(a, o);
}

struct changes_work *changes_drain(struct changes *c, int64_t now, changes_held_fn held,
				   void *ud)
{
	struct changes_work *w = NULL;
	GArray *recs, *maps, *jobs;
	GHashTableIter hi;
	gpointer k;
	struct rec *r;
	size_t skipped = 0, n_gone, n_reads = 0, n_assoc = 0, gone_ids = 0;
	unsigned flags[OBJTYPES_MAX];

	g_mutex_lock(&c->lock);
	expire(c, now);
	if (!c->pending.n && !g_hash_table_size(c->assocs) && !any_flags(c)) {
		g_mutex_unlock(&c->lock);
		return NULL;
	}
	recs = g_array_sized_new(FALSE, FALSE, sizeof(struct item), (guint)c->pending.n);
	while ((r = c->pending.first)) {
		struct item it = { .id = r->id, .at = r->at, .type = r->type,
				   .gone = r->bits == B_GONE,
				   .askable = r->bits == B_EXISTS && !(r->flags & F_MUST_READ) };

		g_array_append_val(recs, it);
		rlist_remove(&c->pending, r);
		r->flags = 0;
		r->since = now;
		rlist_append(&c->history, r);
	}
	maps = g_array_sized_new(FALSE, FALSE, sizeof(struct item), g_hash_table_size(c->assocs));
	g_hash_table_iter_init(&hi, c->assocs);
	while (g_hash_table_iter_next(&hi, &k, NULL)) {
		const struct assoc *a = k;
		struct item it = { .id = a->id, .type = a->from, .to = a->to };

		g_array_append_val(maps, it);
	}
	g_hash_table_remove_all(c->assocs);
	memcpy(flags, c->flags, sizeof(flags));
	memset(c->flags, 0, sizeof(c->flags));
	c->lingering = false;
	c->urgent = false;
	expire(c, now);
	g_mutex_unlock(&c->lock);

	/* Outside the lock: the callback may take the cache's. */
	for (guint i = 0; held && i < recs->len; i++) {
		struct item *it = &g_array_index(recs, struct item, i);

		if (it->askable && held(ud, objtypes_at(c->types, it->type), it->id) >= it->at) {
			it->skip = 1;
			skipped++;
		}
	}
	squeeze(recs);
	if (recs->len > 1)
		qsort(recs->data, recs->len, sizeof(struct item), item_cmp);
	if (maps->len > 1)
		qsort(maps->data, maps->len, sizeof(struct item), item_cmp);
	for (n_gone = 0; n_gone < recs->len; n_gone++)
		if (!g_array_index(recs, struct item, n_gone).gone)
			break;
	/* The ASSOC_ALL items apart (sorted, as maps is), the others kept in order. */
	{
		GArray *all = g_array_new(FALSE, FALSE, sizeof(struct item));
		guint o = 0;

		for (guint i = 0; i < maps->len; i++) {
			struct item *it = &g_array_index(maps, struct item, i);

			if (it->to == ASSOC_ALL)
				g_array_append_val(all, *it);
			else
				g_array_index(maps, struct item, o++) = *it;
		}
		g_array_set_size(maps, o);
		jobs = g_array_new(FALSE, FALSE, sizeof(struct changes_job));
		cut(jobs, c->types, items(recs, 0), n_gone, CHANGES_GONE, SIZE_MAX);
		cut(jobs, c->types, items(all, 0), all->len, CHANGES_ASSOC_ALL, SIZE_MAX);
		cut(jobs, c->types, items(recs, n_gone), recs->len - n_gone, CHANGES_READ,
		    CHANGES_READ_MAX);
		cut(jobs, c->types, items(maps, 0), maps->len, CHANGES_ASSOC, CHANGES_ASSOC_MAX);
		g_array_free(all, TRUE);
	}
	g_array_free(recs, TRUE);
	g_array_free(maps, TRUE);

	w = g_new0(struct changes_work, 1);
	memcpy(w->flags, flags, sizeof(flags));
	w->n_jobs = jobs->len;
	w->jobs = (struct changes_job *)(void *)g_array_free(jobs, FALSE);
	for (size_t i = 0; i < w->n_jobs; i++) {
		if (w->jobs[i].kind == CHANGES_READ)
			n_reads++;
		else if (w->jobs[i].kind == CHANGES_ASSOC)
			n_assoc++;
		else if (w->jobs[i].kind == CHANGES_GONE)
			gone_ids += w->jobs[i].n;
	}
	w->calls = n_reads + n_assoc;

	g_mutex_lock(&c->lock);
	c->st.drains++;
	c->st.skipped_held += skipped;
	c->st.reads += n_reads;
	c->st.assoc_reads += n_assoc;
	c->st.gone += gone_ids;
	g_mutex_unlock(&c->lock);
	return w;
}

void changes_work_free(struct changes_work *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_jobs; i++)
		g_free(w->jobs[i].ids);
	g_free(w->jobs);
	g_free(w);
}

void changes_retry(struct changes *c, const struct changes_job *j, int64_t now)
{
	if (!j || !j->type || (j->kind != CHANGES_READ && j->kind != CHANGES_ASSOC))
		return;
	if (j->kind == CHANGES_ASSOC && !j->to)
		return;
	g_mutex_lock(&c->lock);
	expire(c, now);
	for (size_t i = 0; i < j->n; i++) {
		struct rec key = { .id = j->ids[i], .type = (uint16_t)j->type->idx }, *r;

		c->st.retried++;
		if (j->kind == CHANGES_ASSOC) {
			apply_assoc(c, j->type, j->ids[i], j->to->idx, now);
			continue;
		}
		r = g_hash_table_lookup(c->recs, &key);
		if (r && r->bits == B_GONE)
			continue; /* gone since: nothing to read */
		if (r && (r->flags & F_PENDING)) {
			r->flags |= F_MUST_READ;
			continue;
		}
		if (c->pending.n >= c->max_pending) {
			c->flags[j->type->idx] |= CHANGES_REFRESH;
			continue;
		}
		if (!r) {
			r = g_new0(struct rec, 1);
			r->id = j->ids[i];
			r->type = (uint16_t)j->type->idx;
			r->floor = c->watermark;
			r->bits = B_EXISTS | B_GONE;
			g_hash_table_add(c->recs, r);
		} else {
			rlist_remove(&c->history, r);
		}
		r->at0 = r->at;
		r->flags = F_PENDING | F_MUST_READ;
		rlist_append(&c->pending, r);
		note_pending(c, now);
	}
	g_mutex_unlock(&c->lock);
}

void changes_stats(struct changes *c, struct changes_stats *st)
{
	g_mutex_lock(&c->lock);
	*st = c->st;
	st->pending = c->pending.n;
	st->pending_assoc = g_hash_table_size(c->assocs);
	st->history = c->history.n;
	st->dedupe = c->seen_order.length;
	st->watermark = c->watermark;
	g_mutex_unlock(&c->lock);
}
