/* disk.h - the cache's copy on disk, so a remount starts warm.
 *
 * One SQLite database per portal, $dir/cache.db ($XDG_CACHE_HOME/hubfs/<portal-id>/,
 * dir 0700, file 0600), holding what the in-memory cache (cache/cache.h) had:
 * rendered record files, which records a type's listing holds, when each type
 * was last synced and relisted, association maps, and account data (schemas,
 * pipelines, owners) as opaque text. Never a token or any other secret.
 *
 * It is only a cache. The journal of edits (journal.h) is separate and keeps
 * its own promises; nothing here is needed to land an edit. Whatever does not
 * match is thrown away rather than served: a database of another portal, of
 * another format version, one SQLite finds damaged, or rows of a type rendered
 * with another set of shown properties. A crash never leaves a row half-written
 * (each batch of writes is one transaction), and a type's sync mark is written
 * in the same transaction as the records of the refresh or listing that earned
 * it, so a mount killed during a refresh finds either the old mark with the old
 * records or the new mark with the new ones.
 *
 * Writes are queued and applied by a writer thread in batches (one transaction
 * every flush_ms or a few thousand operations), so no caller waits for disk.
 * Reads are synchronous on their own connection (WAL) and see every write queued
 * before them, applied or not: a record evicted from memory whose newer version
 * is still in the queue is read back as that newer version.
 *
 * Space: record texts beyond max_bytes are evicted least-recently-used first;
 * an evicted record keeps its row (id, size, mtime, listed) so a listing still
 * lists it with the right attributes, and reading it fetches it again.
 *
 * Thread-safe. Times are wall-clock epoch milliseconds passed in by the caller.
 */
#ifndef HUBFS_DISK_H
#define HUBFS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <json-c/json.h>

struct disk;

struct disk_opts {
	const char *dir;      /* created 0700 with its parents if missing */
	uint64_t portal_id;   /* a database of another portal is discarded */
	size_t max_bytes;     /* record texts kept on disk (cache_disk_mb); 0: default 1 GiB */
	int64_t flush_ms;     /* longest a queued write waits; 0: default 200 */
};

/* Open (creating) the database. A database that cannot be used (other portal,
 * other format, damaged, not SQLite) is deleted and created anew; *notice then
 * holds one sentence saying which and why (static storage, NULL when nothing was
 * discarded), for the mount to print once. Returns 0 and *out, or -errno when
 * the directory or a new database cannot be made (the mount then runs with a
 * memory-only cache). */
int disk_open(const struct disk_opts *o, struct disk **out, const char **notice);
/* Apply every queued write, then close. Accepts NULL. */
void disk_close(struct disk *d);
/* Wait until every write queued before the call is on disk. 0 or -EIO. */
int disk_flush(struct disk *d);

/* --- types --------------------------------------------------------------- */

/* What is known of a type on disk. */
struct disk_type {
	int64_t sync_wall_ms;   /* the type was synced as of then: refresh searches from here
				 * (less the index delay); 0: never */
	int64_t relist_wall_ms; /* start of the last complete, error-free listing; 0: never */
	bool complete;          /* a complete listing is on disk */
	uint64_t listed;        /* records the listing holds */
};

/* Declare the shown-property set a type's records are rendered with (its
 * properties= list, in the order sent). Rows of the type rendered with another
 * set are dropped (*dropped set true). Then *st describes what is on disk.
 * Call once per type per mount, before any other call for the type. 0 or -EIO. */
int disk_type_open(struct disk *d, const char *type_id, const char *shown_csv,
		   struct disk_type *st, bool *dropped);

/* A listing entry: enough for readdirplus without the record. */
struct disk_lent {
	uint64_t id;
	uint64_t size;
	int64_t mtime_ms;
};

/* The listed records of a type, ascending by id: a GArray of struct disk_lent
 * (g_array_unref). 0 or -EIO. */
int disk_listing_load(struct disk *d, const char *type_id, GArray **out);

/* --- records (writes are queued; see above) -------------------------------- */

/* Store the server's version of a record, fetched at wall time seen_ms; listed:
 * the record is in its type's listing. Never pass a locally edited version:
 * only what HubSpot answered. */
void disk_put_record(struct disk *d, const char *type_id, uint64_t id, const char *text,
		     size_t len, int64_t mtime_ms, bool listed, int64_t seen_ms);
/* The record is gone (archived, merged away, 404): remove its row. */
void disk_forget_record(struct disk *d, const char *type_id, uint64_t id);
/* The record was read now (LRU order for eviction; coalesced, cheap). */
void disk_touch_record(struct disk *d, const char *type_id, uint64_t id, int64_t now_ms);

/* A record's text: 0 with g_malloc'd *text (*len bytes, NUL-terminated) and its
 * mtime_ms; -ENOENT if the row is absent or its text was evicted. */
int disk_get_record(struct disk *d, const char *type_id, uint64_t id, char **text, size_t *len,
		    int64_t *mtime_ms);

/* A type was synced as of sync_wall_ms (an incremental refresh that started
 * then has stored its records): queued after those records, applied in the
 * same transaction as the last of them. */
void disk_type_synced(struct disk *d, const char *type_id, int64_t sync_wall_ms);
/* A complete, error-free listing that started at started_ms (wall) has stored
 * every record it holds: rows of the type not seen since started_ms are
 * removed, the listing is marked complete, relist_wall_ms = started_ms, and
 * the type synced as of started_ms. */
void disk_listing_complete(struct disk *d, const char *type_id, int64_t started_ms);

/* --- associations and account data ------------------------------------------ */

/* The `to` records associated with from_type/id, sorted (replaces what was there). */
void disk_put_assoc(struct disk *d, const char *from_type, uint64_t id, const char *to_type,
		    const uint64_t *ids, size_t n, int64_t seen_ms);
/* 0 with g_malloc'd *ids (sorted) and *n, -ENOENT if none stored. */
int disk_get_assoc(struct disk *d, const char *from_type, uint64_t id, const char *to_type,
		   uint64_t **ids, size_t *n, int64_t *seen_ms);

/* Opaque account data by key ("schema:0-1", "pipelines:0-3", "owners", …). */
void disk_put_blob(struct disk *d, const char *key, const char *text, size_t len, int64_t seen_ms);
int disk_get_blob(struct disk *d, const char *key, char **text, size_t *len, int64_t *seen_ms);

/* --- maintenance ------------------------------------------------------------ */

/* Drop everything of a type (NULL: of every type, and the account data):
 * `echo drop-cache [type] > .hubfs/ctl`. Queued like a write. */
void disk_drop(struct disk *d, const char *type_id);

/* Add "disk" {path, bytes, max_bytes, records, texts, evicted, discarded, queued,
 * write_errors} to obj. */
void disk_stats(struct disk *d, json_object *obj);

#endif
