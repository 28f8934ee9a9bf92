/* cache_events.h - changes pushed to the store (HubSpot's webhook events, or
 * another mount of a team relaying what it saw) and applied in the background.
 *
 * cache_events_add folds events into the cache's coalescer
 * (cache/model/changes.h: dedupe, ordering, merging of bursts) and returns at
 * once: it never calls HubSpot and never waits for the cache's lock while a
 * fetch runs. A worker thread of the store's own drains the coalescer when
 * its work is due and applies it:
 *   gone ids (deletion, merged away)    forgotten: record, listing entry and
 *                                       association maps; the kernel is told
 *   records changed, created, restored  batch reads (at most 100 ids a call)
 *                                       stored under the write-epoch guard, so
 *                                       a local edit made meanwhile is never
 *                                       overwritten and no record goes back to
 *                                       an older updatedAt; an id the read does
 *                                       not return is gone
 *   association changes                 the maps of both sides are refetched
 *                                       (v4 batch reads) or, for a merge
 *                                       survivor, forgotten
 *   a bound reached (flags)             the type's incremental refresh
 *                                       (CHANGES_REFRESH) or relist
 *                                       (CHANGES_RELIST) is queued; every map of
 *                                       the type is forgotten (ASSOC_STALE)
 * A batch read that fails (after the client's own retries) gives its ids back
 * to the coalescer (changes_retry) and is tried again a little later. The
 * worker keeps to a share of the rate budget (burst_calls, call_interval_ms):
 * past it, what arrives waits and is read in fewer, fuller batch reads.
 * Kernel caches are invalidated through the cache's record_changed hook, as
 * for any other change, and through assoc_changed for every association
 * list forgotten (with the links it held).
 *
 * Polling becomes the safety net: while events arrive (one within quiet_ms,
 * or a cache_events_alive), the type's periodic incremental refresh runs
 * every ttl * backoff instead of every ttl; once they stop it is back to ttl.
 *
 * Every function is thread-safe and accepts a cache whose events were never
 * started (cache_events_add starts them with the defaults).
 */
#ifndef HUBFS_CACHE_EVENTS_H
#define HUBFS_CACHE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/cache.h"
#include "cache/model/changes.h"
#include "client/webhook.h"

struct cache_events_opts {
	uint64_t portal_id;  /* events of another portal are ignored; 0 = accept any */
	int64_t quiet_ms;    /* events count as arriving until this long (wall) after the
			      * last one or the last cache_events_alive; 0 = 10 minutes */
	unsigned backoff;    /* while they arrive, the periodic refresh runs every
			      * ttl * backoff; 0 = 10; 1 = polling unchanged */
	int64_t linger_ms;   /* how long a first change waits for others to batch with
			      * it; 0 = 100 ms, < 0 = none */
	size_t max_pending;  /* records with work pending before a type falls back to its
			      * refresh or relist (changes_opts); 0 = 10,000 */
	/* The worker's share of the rate budget, a token bucket of calls: up to
	 * burst_calls at once, then one more every call_interval_ms. A steady
	 * stream of events is then read in larger batches rather than in more
	 * calls. 0 = 20 calls, and one every 500 ms (a fifth of HubSpot's
	 * default 100 per 10 s). */
	unsigned burst_calls;
	int64_t call_interval_ms;
};

/* Set the options and start the worker. Idempotent: a second call updates
 * quiet_ms and backoff of the running worker (portal_id and linger_ms are
 * those of the first start, or of the first cache_events_add). Returns 0, or
 * -ENOMEM/-EAGAIN if the thread could not start. Not to be called after
 * cache_stop. */
int cache_events_start(struct cache *c, const struct cache_events_opts *o);

/* Fold events ev[0..n) in (each counted: see struct changes_stats) and wake
 * the worker. Returns how many brought new work (0 for duplicates, stale or
 * ignored events). Never blocks on the network or a fetch; after cache_stop
 * the events are counted and dropped. Starts the worker with the default
 * options if cache_events_start was not called. */
size_t cache_events_add(struct cache *c, const struct wh_event *ev, size_t n);

/* The source of events is alive though it had none to send (a delivery of
 * zero events, a team heartbeat): polling stays backed off. */
void cache_events_alive(struct cache *c);

/* Whether events arrive (one, or cache_events_alive, within quiet_ms): the
 * periodic refresh is backed off. False if events were never started. */
bool cache_events_active(struct cache *c);

struct cache_events_stats {
	bool started;
	bool active;                  /* cache_events_active */
	int64_t refresh_every_ms;     /* the periodic refresh interval now (ttl, or
				       * ttl * backoff while active) */
	struct changes_stats changes; /* the coalescer: received, applied, duplicates, ... */
	uint64_t stored;              /* records stored from the worker's batch reads */
	uint64_t kept;                /* ... of them not stored: the cache had a newer
				       * copy or a local write (nothing goes backward) */
	uint64_t forgotten;           /* records dropped as gone */
	uint64_t assoc_maps;          /* association maps replaced or forgotten */
	uint64_t calls;               /* API calls the worker made (batch reads) */
	uint64_t failed;              /* of which failed (ids given back to retry) */
	uint64_t refreshes, relists;  /* fall-backs queued for a type flag */
	int64_t last_event_ms;        /* wall clock of the last cache_events_add with events; 0 none */
	int64_t last_applied_ms;      /* wall clock of the last drain applied; 0 none */
};

/* A consistent snapshot (zeroes if never started). */
void cache_events_stats(struct cache *c, struct cache_events_stats *st);

/* Add "events" {received, applied, duplicates, out_of_order, overflow,
 * ignored {kind, portal, type, id, time}, stored, kept, forgotten,
 * assoc_maps, calls, failed, pending, last_event, last_applied, active,
 * refresh_every_ms} to obj (status.json), if events were started. */
void cache_events_status(struct cache *c, json_object *obj);

/* Called by the store itself: cache_stop stops the worker (queued work is
 * dropped), cache_free frees the rest; the periodic refresh asks how often
 * it is due (ttl, or ttl * backoff while events arrive). */
void cache_events_stop(struct cache *c);
void cache_events_free(struct cache *c);
int64_t cache_events_refresh_every(struct cache *c);

#endif
