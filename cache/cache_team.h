/* cache_team.h - the store's part in a team of mounts (client/team.h): one
 * refresh and one relist per type for the whole team, and what one mount
 * learns or lands the others hear at once.
 *
 * Refresh: a background refresh of a type first takes the lease
 * "refresh/<type>" for ttl (SET NX PX in Redis). The holder searches as
 * without a team and publishes every record the search returned (type, id,
 * updatedAt) and then a REFRESH marker carrying its sync point. A mount that
 * does not get the lease does not search: the holder's marker makes its type
 * fresh (and moves its sync point), and it asks for the lease again 2 s
 * later if the type is still stale (the holder died: its lease runs out
 * within a ttl). Relists take "relist/<type>" for relist_interval the same
 * way; the holder publishes an ARCHIVE for each record the relist no longer
 * found, then a RELIST marker that makes the others' listings current.
 *
 * Writes: a write this mount lands (edit, create, archive, association) is
 * published; so is one whose answer was lost, once the writeback's lookup
 * finds it landed (once per record). Another mount notes the record among the recent changes its
 * query directories overlay for the indexing delay (as it does its own
 * writes; an archived one is hidden from their results meanwhile), and hands
 * the change to cache_events_add() as the webhook event that means the same
 * (cache/cache_events.h): records it holds or lists are read again in batch
 * reads, never going back to an older updatedAt or over a local edit; an
 * archived one leaves the cache and the listing. An association change edits
 * the lists held of both sides, without a call.
 *
 * Asked for (SIGHUP, which expires the cache; `refresh` in .hubfs/ctl, which
 * calls cache_refresh() itself): the refresh runs on this mount whoever holds
 * the lease, and is published for the others; so does a relist that SIGHUP,
 * a refresh past its limits or a webhook flag made due at once.
 *
 * Faults: when Redis does not answer (team_lease() -EAGAIN) the mount
 * refreshes and relists on its own, as without a team. After the change feed
 * was cut (RESYNC) each type's next refresh runs on this mount whoever holds
 * the lease, from its own sync point, so nothing published during the cut
 * is missed. Publishing never blocks a caller: changes queue and a thread
 * sends them (a change that cannot be sent is counted as dropped; the other
 * mounts then see it at their next refresh, within a ttl).
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef HUBFS_CACHE_TEAM_H
#define HUBFS_CACHE_TEAM_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/cache.h"
#include "client/team.h"
#include "client/webhook.h"

/* Attach team t of portal portal_id to the cache (borrowed: it must outlive
 * the attachment), start the publishing thread, and start the cache's pushed
 * changes (cache_events_start) if nothing did, with polling not backed off.
 * Call once, before writes can land. Returns 0, -EBUSY (already attached),
 * or cache_events_start()'s -errno. */
int cache_team_attach(struct cache *c, struct team *t, uint64_t portal_id);

/* Detach: send what is queued (one round trip, or nothing if Redis is down),
 * stop the publishing thread, release the leases this mount holds, and wait for any refresh still asking Redis. After
 * it returns the cache makes no call into the team. Call before team_free()
 * and cache_free(). Accepts a cache without a team. */
void cache_team_detach(struct cache *c);

/* Apply a change another mount published (team_opts.on_change). Quick: takes
 * the cache lock for table updates and leaves reads to the events worker.
 * Ignored when no team is attached. */
void cache_team_apply(struct cache *c, const struct team_change *ch);

/* An association this mount wrote landed: publish it. */
void cache_team_assoc_landed(struct cache *c, const struct objtype *from, uint64_t id,
			     const struct objtype *to, uint64_t to_id, bool add);

/* An edit or create of type/id landed (after cache_land() or, without a
 * record in the answer, cache_record_forget()): publish it, with the
 * updatedAt the cache now holds (unknown if none). */
void cache_team_landed(struct cache *c, const struct objtype *type, uint64_t id);

/* An archive this mount sent landed: publish it. */
void cache_team_archived(struct cache *c, const struct objtype *type, uint64_t id);

/* This mount's webhook receiver took events ev[0..n) (after
 * cache_events_add()): publish them, so every mount of the team sees a change
 * HubSpot pushed as soon as this one does. Creations, property changes and
 * restores become changes of their record (updatedAt: occurredAt),
 * deletions archives, a merge a change of the survivor and archives of the
 * others, an association change one of the pair (when both types are known:
 * from/toObjectTypeId, else the names in associationType). Events of types
 * this mount does not show are skipped. Returns how many changes were
 * queued; 0 without a team. */
size_t cache_team_relay(struct cache *c, const struct wh_event *ev, size_t n);

/* Add the store's side of the team view to obj: "refresh_leases_taken"
 * [type names whose refresh lease this mount took], "applied" {update,
 * archive, assoc, refresh, relist, resync: changes applied from the others},
 * "publish_dropped",
 * "refreshes_skipped" and "relists_skipped" (another mount held the lease). */
void cache_team_stats(struct cache *c, json_object *obj);

#endif
