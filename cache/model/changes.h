/* changes.h - what HubSpot's webhook events mean for the cache: a bounded,
 * ordered, coalescing set of pending work.
 *
 * Events (struct wh_event, parsed by client/webhook.h) come in deliveries of
 * up to 100, in no order, some twice, some retried hours later. changes_add
 * folds any number of them into work pending per record (type, id);
 * changes_drain hands that work out coalesced: the ids gone, batch reads of
 * at most 100 ids of one type, v4 association batch reads of at most 1,000
 * ids of one type pair, and per-type fall-back flags. A burst of 1,000
 * propertyChange events on 300 contacts drained at once is 3 batch reads.
 *
 * What each event means for its record:
 *   creation, restore, propertyChange   the record exists: read it
 *   deletion, privacyDeletion           the record is gone
 *   merge                               the survivor (newObjectId, else
 *       primaryObjectId, else objectId) exists: read it, and every association
 *       map of it is stale; mergedObjectIds, primaryObjectId and objectId other
 *       than the survivor are gone
 *   associationChange                   the association maps of both sides
 *       are refetched (fromObjectId's map to the other type, and toObjectId's
 *       map back); the records themselves are untouched
 *
 * Nothing goes backward. Each record remembers the newest occurredAt applied
 * to it (L) and what the events at L said (exists, gone, or both). An event
 * older than L, or at L and saying the same, brings nothing new: it is
 * coalesced with the record's pending work if it agrees with it, else dropped
 * (a deletion older than a restore). One at L that disagrees (a deletion and
 * a restore in the same millisecond) makes the record "unsure", which is
 * read: a read is always safe, because a record the read does not return is
 * gone. So for the events given between two drains,
 * the work does not depend on the order they came in. Records stay remembered
 * after their work is handed out (the history, bounded in count and age), so a
 * deletion retried after the restore that followed it cannot hide the record.
 * Past the history, a deletion is trusted only if it is newer than every
 * event the module forgot or dropped (a watermark); an older one is turned
 * into a read, which verifies it.
 *
 * Duplicates: the same (eventId, subscriptionId, occurredAt, type, objectId,
 * and the other ids and property of the event) seen within a bounded window
 * is counted and dropped. eventId alone is not unique. Correctness does not
 * rest on this window (ordering makes a late duplicate harmless); it saves
 * work and gives an honest count.
 *
 * Ignored, and counted by reason (enum changes_ignore): events that are not
 * about records, of another portal, of types the registry does not show, with
 * no usable id, or with no (or a future) occurredAt. object.* events name
 * their type by objectTypeId; the others by their object name
 * ("line_item"), or objectTypeId when that name is unknown.
 *
 * Bounds (changes_opts; defaults in brackets). Records with work pending
 * [10,000]: past it, an event for a record not already pending raises a flag
 * on its type instead (CHANGES_REFRESH; CHANGES_RELIST for a deletion or
 * merge, which search cannot see), and is counted as overflow. Association
 * maps pending [10,000]: past it, CHANGES_ASSOC_STALE on both types. History
 * [32,768 records, 1 h]. Duplicate window [16,384 events, 1 h]. All four
 * full at the defaults hold about 6 MiB, whatever arrives.
 *
 * Pure: no I/O, no clock (now is wall-clock ms since the epoch, the clock
 * occurredAt is on), no logging. Thread-safe: every function takes the
 * module's one mutex, a leaf: it is never held while calling out, so
 * changes_drain's held callback may take the cache's locks.
 * Depends on GLib, the type registry and struct wh_event (a header only: no
 * webhook function is called).
 */
#ifndef HUBFS_MODEL_CHANGES_H
#define HUBFS_MODEL_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/model/objtypes.h"
#include "client/webhook.h"

#define CHANGES_READ_MAX 100    /* ids in one batch read of records */
#define CHANGES_ASSOC_MAX 1000  /* ids in one v4 association batch read */

/* Why an event was ignored. */
enum changes_ignore {
	CHI_KIND,    /* not a record event: conversation.*, or an action this version does not know */
	CHI_PORTAL,  /* another portal's (an app's target URL gets every portal it is installed in) */
	CHI_TYPE,    /* a type the mount does not show, or an association the mount has no map for */
	CHI_ID,      /* no usable id: objectId missing or 0; a merge with no survivor; an
		      * association without both ids */
	CHI_TIME,    /* no occurredAt, or one more than 5 minutes ahead of now */
};
#define CHI_COUNT 5

/* "kind", "portal", "type", "id", "time" (status output). */
const char *changes_ignore_name(enum changes_ignore r);

struct changes_opts {
	const struct objtypes *types; /* required; borrowed, must outlive the module */
	uint64_t portal_id;           /* events of another portal are ignored; 0 = accept any */
	size_t max_pending;           /* records with work pending; 0 = 10,000 */
	size_t max_assoc;             /* association maps pending; 0 = 10,000 */
	size_t max_history;           /* records remembered after their work went out; 0 = 32,768 */
	int64_t history_ms;           /* ... for at most this long after it went out; 0 = 1 h */
	size_t max_dedupe;            /* events remembered to spot duplicates; 0 = 16,384 */
	int64_t dedupe_ms;            /* ... for at most this long after they came; 0 = 1 h */
	int64_t linger_ms;            /* changes_due: how long the first pending change
				       * waits for more to batch with it; 0 = 100, < 0 = none */
};

struct changes;

/* Returns NULL (and nothing is allocated) if o or o->types is NULL. */
struct changes *changes_new(const struct changes_opts *o);
void changes_free(struct changes *c); /* accepts NULL */

/* Fold events ev[0..n) in: each is applied, or counted as a duplicate, out
 * of order, overflow or ignored (see struct changes_stats). now: wall-clock
 * ms. Returns how many were applied (0: nothing new to drain). Never fails:
 * memory stays within the bounds, past which flags stand for what was dropped.
 * Cheap enough for the receiver's thread: O(events + merged ids), no call out. */
size_t changes_add(struct changes *c, const struct wh_event *ev, size_t n, int64_t now);

/* When to drain: -1 if nothing is pending; 0 now (a record is gone, a flag is
 * raised, linger is over, or half the pending bound is used); else the ms
 * left of the linger that started with the oldest pending change. */
int64_t changes_due(struct changes *c, int64_t now);

/* ---- the work ---------------------------------------------------------- */

enum changes_job_kind {
	/* ids of type are gone (deleted, or merged into another): drop the
	 * records, their listing entries and their association maps. No call. */
	CHANGES_GONE,
	/* every association map of these records is stale (merge survivors):
	 * forget them; the next access refetches. No call. */
	CHANGES_ASSOC_ALL,
	/* one batch read of 1..CHANGES_READ_MAX ids of type: store what it
	 * returns, and list a returned record the listing lacks (unless this
	 * mount removed it); an id it does not return is gone. */
	CHANGES_READ,
	/* one v4 association batch read type -> to of 1..CHANGES_ASSOC_MAX ids:
	 * replace those maps; an id it does not return has no associations. */
	CHANGES_ASSOC,
};

struct changes_job {
	enum changes_job_kind kind;
	const struct objtype *type;   /* the records' type (ASSOC: the from side) */
	const struct objtype *to;     /* ASSOC: the associated type; else NULL */
	size_t n;                     /* >= 1 */
	uint64_t *ids;                /* n ids, ascending, distinct */
};

/* Per-type flags: what was dropped when a bound was reached. */
enum changes_type_flag {
	CHANGES_REFRESH = 1u << 0,     /* changes dropped: run the incremental refresh */
	CHANGES_RELIST = 1u << 1,      /* deletions or merges dropped (search cannot see
					* them): relist the type */
	CHANGES_ASSOC_STALE = 1u << 2, /* association changes dropped: every cached
					* association map of the type is stale */
};

struct changes_work {
	/* In this order: GONE, ASSOC_ALL, READ, ASSOC; within a kind by type
	 * idx (then to idx). No (type, id) is in two GONE or READ jobs, nor in
	 * both. */
	struct changes_job *jobs;
	size_t n_jobs;
	unsigned flags[OBJTYPES_MAX]; /* enum changes_type_flag, by type idx */
	size_t calls;                 /* READ and ASSOC jobs: the API calls this work costs */
};

/* What the cache holds of a record: the updatedAt (ms) of its copy; -1 if it
 * holds none, or one that must be read anyway; INT64_MAX if nothing it holds
 * or shows would change with a read. Called by changes_drain without the
 * module's lock, on the draining thread, only for records whose news since
 * the last drain is propertyChange alone (no creation, restore, merge or
 * deletion, not unsure, not given back by changes_retry, not handed out as
 * gone or unsure the drain before): such a record is not read when this is
 * >= its newest occurredAt (a change in the same millisecond as the copy's
 * updatedAt is taken as in the copy: HubSpot stamps updatedAt with the time
 * of the change). */
typedef int64_t (*changes_held_fn)(void *ud, const struct objtype *t, uint64_t id);

/* Take all pending work: NULL if there is none, else a work list the caller
 * frees with changes_work_free. held may be NULL (every record is read).
 * The records drained are remembered as applied: events older than what
 * they were drained at are dropped from now on. */
struct changes_work *changes_drain(struct changes *c, int64_t now, changes_held_fn held,
				   void *ud);
void changes_work_free(struct changes_work *w); /* accepts NULL */

/* A READ or ASSOC job's call failed for good (after the client's own
 * retries): make its ids pending again, except a record that has become gone
 * since. Past the bounds, flags as in changes_add. GONE and ASSOC_ALL jobs
 * need no call and are ignored. */
void changes_retry(struct changes *c, const struct changes_job *j, int64_t now);

/* ---- status ------------------------------------------------------------- */

struct changes_stats {
	/* Every event given to changes_add is counted once in received and once
	 * in exactly one of the five after it:
	 * received == applied + duplicates + out_of_order + overflow + sum(ignored). */
	uint64_t received;
	uint64_t applied;        /* taken into pending work, or coalesced with pending
				  * work that it agrees with */
	uint64_t duplicates;     /* seen before, within the window */
	uint64_t out_of_order;   /* dropped: older than what its record already had and
				  * saying otherwise (a deletion older than a restore), or
				  * no newer than work already handed out */
	uint64_t overflow;       /* dropped at a bound: a type flag stands for it */
	uint64_t ignored[CHI_COUNT];
	uint64_t skipped_held;   /* record reads saved: the cache's copy was as new */
	uint64_t drains;         /* changes_drain calls that returned work */
	uint64_t reads, assoc_reads; /* READ and ASSOC jobs handed out */
	uint64_t gone;           /* ids handed out as gone */
	uint64_t retried;        /* ids given back by changes_retry */
	int64_t last_event_at;   /* newest occurredAt of an event not ignored; 0 = none */
	int64_t last_received;   /* now of the last changes_add with events; 0 = none */
	size_t pending;          /* records with work pending */
	size_t pending_assoc;    /* association maps pending */
	size_t history;          /* records remembered after their work went out */
	size_t dedupe;           /* events remembered in the duplicate window */
	int64_t watermark;       /* deletions at or before this occurredAt are verified
				  * by a read unless their record is remembered */
};

/* A consistent snapshot. */
void changes_stats(struct changes *c, struct changes_stats *st);

#endif
