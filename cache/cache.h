/* cache.h - records, listings and associations of a HubSpot account, with TTLs
 * and a byte budget. Knows nothing of FUSE.
 *
 * Every function is thread-safe. A function that may have to fetch takes an
 * absolute deadline (hs_now_ms() clock) and never blocks past it; it returns
 * -EAGAIN or -EIO then. HTTP is never done while holding the cache lock.
 *
 * Freshness: a record or listing is fresh for ttl after it was fetched (or
 * after the type was last synced as a whole). A miss on a record fetches it
 * with one batch/read together with up to 99 other known-but-uncached (or stale)
 * records of the same type; an association miss fetches up to 1,000 records'
 * associations in one v4 batch/read the same way.
 */
#ifndef HUBFS_CACHE_H
#define HUBFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/model/objtypes.h"
#include "cache/model/schema.h"
#include "client/hubspot.h"

struct cache;
struct listing;

struct cache_opts {
	int64_t ttl_ms;            /* default 60 000 */
	size_t max_bytes;          /* budget for rendered records; default 512 MiB */
	/* Per type, by idx (objtypes_count entries; the array may be NULL, an
	 * entry NULL): "default", "all", or a csv list of properties (schema_new).
	 * Borrowed: must outlive the cache. */
	const char *const *shown;
	int64_t (*now)(void);      /* clock; default hs_now_ms (tests inject) */
	int64_t (*wall)(void);     /* wall clock in ms (HubSpot's timestamps); default real */
	int64_t index_delay_ms;    /* HubSpot's search indexing delay; default 10 000 */
	int64_t relist_ms;         /* full relist interval; default 900 000 */
	/* Refresh stale data in the background with one incremental search per
	 * type (stale-while-revalidate). Off: stale records are re-read with
	 * batch/read before they are served. */
	bool background;
	/* The copy on disk (cache/disk.h), so a remount starts warm: its directory
	 * ($XDG_CACHE_HOME/hubfs/<portal-id>), or NULL for a cache in memory only
	 * (cache=memory). Used only with background. A type found there is listed
	 * from disk at once and served stale until a refresh from its saved sync
	 * mark (less index_delay) has run; a record evicted from memory is read
	 * back from disk, never from HubSpot. */
	const char *disk_dir;
	uint64_t portal_id;        /* a disk cache of another portal is discarded */
	size_t disk_max_bytes;     /* record texts kept on disk (cache_disk_mb); 0: 1 GiB */
};

/* Called (without the cache lock held) when the bytes of a record the cache
 * already had change, or a record disappears. Used to invalidate kernel caches. */
struct cache_hooks {
	void (*record_changed)(void *ud, const struct objtype *type, uint64_t id);
	/* The list of from/id toward `to` changed, or was forgotten (a pushed
	 * change, a team relay, this mount's own edit, or a read that found
	 * links gone): ids[0..n) (borrowed for the call) are the links that may
	 * have gone or come: every link of a forgotten list, the links a read
	 * no longer found, the one link an edit changed. Called without the
	 * cache lock, so that the kernel forgets the list's directory and those
	 * links at once. May be NULL. */
	void (*assoc_changed)(void *ud, const struct objtype *from, uint64_t id,
			      const struct objtype *to, const uint64_t *ids, size_t n);
	/* HubSpot refused the token a type (403, e.g. MISSING_SCOPES): called
	 * once per type, without the cache lock, with the scopes it needs
	 * (space-separated) and the error line. May be NULL. */
	void (*type_denied)(void *ud, const struct objtype *type, const char *scopes,
			    const char *line);
	/* One sentence for the user, said once (errors.log): part of the disk
	 * cache was discarded and why. May be NULL. */
	void (*notice)(void *ud, const char *msg);
	void *ud;
};

struct rec_attr {
	uint64_t size;
	int64_t mtime_ms;          /* updatedAt */
};

/* A cache of the types of registry `types`. Never NULL. hc and types are
 * borrowed and must outlive the cache. Every function below that takes a
 * type takes one of `types` (objtypes_at, objtypes_by_name, …): its idx
 * indexes the cache's per-type tables. */
struct cache *cache_new(struct hs_client *hc, const struct objtypes *types,
			const struct cache_opts *opts, const struct cache_hooks *hooks);
/* The registry the cache was built with. */
const struct objtypes *cache_types(struct cache *c);
void cache_free(struct cache *c); /* accepts NULL */
/* Stop background work, ahead of what is queued: the worker takes the stop
 * next, a relist or refresh under way ends after its current call (which stops
 * waiting for the rate limiter or a retry), and nothing new is queued. A
 * relist cut short installs nothing. Foreground calls keep working. Does not
 * wait for the worker (cache_free does). Accepts NULL; idempotent. */
void cache_stop(struct cache *c);

/* The scopes a type needs that the token lacks (g_free), or NULL when HubSpot
 * has not refused the type. Once refused, every fetch of the type fails with
 * -EACCES at once: a type costs one refused call, once. Never calls. */
char *cache_type_denied(struct cache *c, const struct objtype *type);

/* Schema of a type, fetched on first use and kept. *out is borrowed for the
 * life of the cache. */
int cache_schema(struct cache *c, const struct objtype *type, int64_t deadline,
		 const struct schema **out);

/* Attributes of a record, fetching it if missing or stale. -ENOENT if HubSpot
 * has no such (unarchived) record. */
int cache_record_stat(struct cache *c, const struct objtype *type, uint64_t id, int64_t deadline,
		      struct rec_attr *a);

/* Copy up to size bytes at off into buf; *n is set to the bytes copied. */
int cache_record_read(struct cache *c, const struct objtype *type, uint64_t id, uint64_t off,
		      size_t size, char *buf, size_t *n, int64_t deadline);

/* The kernel was told to forget what it knew of the record (its size and
 * pages): from now on its reads and attributes are of the current text. Until
 * then a record whose text changed is served as it was (size and bytes), so
 * that a read the kernel sized by the old length never gets a longer or
 * shorter text (truncated, or padded with NULs). */
void cache_record_shown_done(struct cache *c, const struct objtype *type, uint64_t id);

/* A g_malloc'd copy of the whole record file. */
int cache_record_text(struct cache *c, const struct objtype *type, uint64_t id, int64_t deadline,
		      char **text, size_t *len);

/* Store an API object as fetched at write epoch `epoch` (see cache_epoch). Newer
 * local data wins: the object is dropped if the record was written locally after
 * epoch, or if the cached record has a later updatedAt. Returns 0, 1 if dropped,
 * or -EINVAL for a malformed object. */
int cache_store(struct cache *c, const struct objtype *type, json_object *obj, uint64_t epoch);

/* Current write epoch; take it before a fetch and hand it to cache_store. */
uint64_t cache_epoch(struct cache *c);

/* Replace a record's bytes with a local write (read-your-writes) and move the
 * epoch, so that fetches started before it cannot overwrite it. Returns the
 * epoch of this write (hand it to the writeback). */
uint64_t cache_record_put_local(struct cache *c, const struct objtype *type, uint64_t id,
				const char *text, size_t len, int64_t mtime_ms);

/* A write landed: store the server's answer obj for the record unless a newer
 * local write (epoch > sent_epoch) happened meanwhile; when stored, the record
 * is clean again (its local epoch cleared). Returns 0, 1 if kept local, -EINVAL. */
int cache_land(struct cache *c, const struct objtype *type, json_object *obj, uint64_t sent_epoch);

/* Epoch of the last local write of a record (0 if clean or not cached). */
uint64_t cache_record_local_epoch(struct cache *c, const struct objtype *type, uint64_t id);

/* Drop a record from the cache (archived, or to force a re-fetch). */
void cache_record_forget(struct cache *c, const struct objtype *type, uint64_t id);

/* --- listings -------------------------------------------------------- */

/* A listing of a type, shared by everyone reading it: the current one if it is
 * fresh or still being fetched, else a new one. Pages are fetched on demand by
 * cache_listing_entry, so readers stream entries as pages arrive. */
struct listing *cache_listing_open(struct cache *c, const struct objtype *type);
void cache_listing_close(struct cache *c, struct listing *l); /* accepts NULL */

/* Entry i of the listing: returns 0 with *id (and *a, if a is not NULL), 1 at the
 * end, or -errno if fetching the page failed. */
int cache_listing_entry(struct cache *c, struct listing *l, size_t i, int64_t deadline,
			uint64_t *id, struct rec_attr *a);

/* A record created (add) or archived (!add) by this mount: update the current
 * listing of its type at once, without a call. An archived record stays hidden
 * from later listings and lookups until the archive has landed and search
 * and lists can no longer return it; add after !add (an archive HubSpot
 * refused) shows it again, fetched on the next read. */
void cache_listing_note(struct cache *c, const struct objtype *type, uint64_t id, bool add);

/* --- associations ---------------------------------------------------- */

/* Sorted ids of the `to` records associated with from/id (g_free *ids). */
int cache_assoc_list(struct cache *c, const struct objtype *from, uint64_t id,
		     const struct objtype *to, int64_t deadline, uint64_t **ids, size_t *n);

/* The same list with each link's association types: *links = a json array,
 * sorted by id, of {"id": "<id>", "types": [{category, typeId, label}…]}
 * (types sorted by typeId). Same costs as cache_assoc_list (one cache). */
int cache_assoc_links(struct cache *c, const struct objtype *from, uint64_t id,
		      const struct objtype *to, int64_t deadline, json_object **links);

/* This mount added or removed an association: update the cached lists of both
 * sides at once (read-your-writes), without a call. An added link shows the
 * pair's unlabeled type. */
void cache_assoc_note(struct cache *c, const struct objtype *from, uint64_t id,
		      const struct objtype *to, uint64_t to_id, bool add);
/* This mount added or removed a label (association type type_id of category)
 * from/id -> to/to_id: the cached link shows it at once (an add makes the link
 * if it is not there). */
void cache_assoc_note_label(struct cache *c, const struct objtype *from, uint64_t id,
			    const struct objtype *to, uint64_t to_id, const char *category,
			    int type_id, const char *label, bool add);

/* The association types defined from -> to (GET …/associations/{from}/{to}/labels):
 * *results = a json array of {category, typeId, label} (label null: the
 * unlabeled type). Kept for the TTL; a failed refresh serves the old list. */
int cache_assoc_labels(struct cache *c, const struct objtype *from, const struct objtype *to,
		       int64_t deadline, json_object **results);

/* --- read-only account data -------------------------------------------- */

/* g_malloc'd text of pipelines/<type>.json. */
int cache_pipelines_text(struct cache *c, const struct objtype *type, int64_t deadline, char **text,
			 size_t *len);
/* Sorted owner ids (g_free). */
int cache_owner_ids(struct cache *c, int64_t deadline, uint64_t **ids, size_t *n);
/* The same, only if the owners are already loaded (never calls HubSpot):
 * 0, or -EAGAIN. */
int cache_owner_ids_cached(struct cache *c, uint64_t **ids, size_t *n);
/* g_malloc'd text of owners/<id>.json. */
int cache_owner_text(struct cache *c, uint64_t id, int64_t deadline, char **text, size_t *len);

/* An archive this mount queued (cache_listing_note !add) landed: the record
 * stays hidden while HubSpot's search may still return it (index_delay and
 * a margin), then is forgotten, so the table of archived ids stays bounded. */
void cache_archive_landed(struct cache *c, const struct objtype *type, uint64_t id);

/* Make everything cached stale, so the next access refreshes it (ctl refresh). */
void cache_expire(struct cache *c);

/* Incremental refresh of a type now: one search on the last-modified property
 * from (last sync - index delay - 1 s), ascending, paged, windowed past 10,000
 * results; changed records are re-rendered (hooks fire), new ones join the
 * listing. A type never fetched has nothing to refresh (returns 0). Returns 0 or
 * -errno (then nothing is marked fresh). */
int cache_refresh(struct cache *c, const struct objtype *type, enum rl_prio prio, int64_t deadline);
/* Queue a background refresh of a type (or of every type for NULL). */
void cache_refresh_async(struct cache *c, const struct objtype *type);

/* Ids of records of a type this mount changed (edited, created, archived) at or
 * after wall-clock ms `since` (g_free *ids). For overlaying search results. */
void cache_recent_local(struct cache *c, const struct objtype *type, int64_t since, uint64_t **ids,
			size_t *n);
/* True if this mount archived the record. */
bool cache_record_gone(struct cache *c, const struct objtype *type, uint64_t id);

/* --- query directories' searches (cache_search.c) -------------------- */

/* One query of a type (search/<type>/<query>/): its text parsed against the
 * type's schema, and HubSpot's last answer. Shared by reference. */
struct cache_search;

/* Parse text as a query of type t (the schema is fetched within deadline if
 * needed). 0 and *out (one reference), -EINVAL with a one-sentence reason in
 * *why (g_free; why may be NULL), or the schema fetch's -errno. */
int cache_search_new(struct cache *c, const struct objtype *t, const char *text,
		     int64_t deadline, struct cache_search **out, char **why);
struct cache_search *cache_search_ref(struct cache_search *s);
void cache_search_unref(struct cache_search *s); /* accepts NULL; the last frees */
const struct objtype *cache_search_type(const struct cache_search *s);
/* The ids the query finds now, sorted (g_free *ids): HubSpot's search (every
 * page up to 10,000 results, each record stored in the cache), reused for
 * ttl and run by one caller at a time (the others wait for its answer, never
 * past their own deadline), overlaid with this mount's writes of the last
 * index_delay + 2 s, matched locally (the search index does not show them
 * yet). Every page and wait shares the one deadline. When the search fails
 * and there is an earlier answer, that is served (0); else -errno. Either
 * way a failure is described in *err (message "" if none; err may be NULL). */
int cache_search_results(struct cache *c, struct cache_search *s, int64_t deadline,
			 uint64_t **ids, size_t *n, struct hs_error *err);
/* Drop the kept answer (to bound memory; the next results call searches
 * again), unless a search is under way. */
void cache_search_forget(struct cache *c, struct cache_search *s);

/* --- the disk copy ------------------------------------------------------- */

/* Why the disk cache was discarded or not used at cache_new (one sentence,
 * static), or NULL: the mount says it once. */
const char *cache_disk_notice(struct cache *c);
/* `echo drop-cache [type] > .hubfs/ctl`: forget what is kept of a type (NULL:
 * of every type) on disk and in memory, but for records with local edits;
 * the next listing lists anew. */
void cache_drop(struct cache *c, const struct objtype *type);
/* Whether a type is served from a previous mount's disk copy that no refresh
 * or relist has confirmed yet (its records show as stale). */
bool cache_type_unconfirmed(struct cache *c, const struct objtype *type);

/* --- status ---------------------------------------------------------- */

/* Add "cache" {records, bytes, max_bytes, hits, misses, hit_rate, disk_reads,
 * persistent}, "disk" (disk_stats, when persistent) and "types" {<type>:
 * {listed, complete, last_refresh, from_disk, unconfirmed, catch_up}} to obj. */
void cache_stats(struct cache *c, json_object *obj);

#endif
