/* disk.h - the cache's copy on disk, so a remount starts warm.
 *
 * One SQLite database per portal, $dir/cache.db ($XDG_CACHE_HOME/hubfs/<portal-id>/,
 * dir 0700, files 0600: cache.db, its -wal and -shm, and cache.lock, which one
 * process holds while it has the cache open), holding what the in-memory cache
 * (cache/cache.h) had:
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
 * in the same transaction as the last records of the refresh or listing that
 * earned it, so a mount killed during a refresh finds the new mark only with
 * every record of that refresh. A refresh queued within one batch is all or
 * nothing; one that spans batches may leave some records newer under the old
 * mark, which is safe: the refresh from the old mark fetches them again. The database is
 * checked page by page (PRAGMA quick_check, about 1.5 s per 1,000,000 records)
 * only when it was not closed cleanly; damage found later stops the disk cache
 * for the mount, and the file is deleted at close.
 *
 * Writes are queued and applied by a writer thread in batches (one transaction
 * every flush_ms or 4,096 operations), so a caller does not wait for disk,
 * except while the queue is full (16,384 operations or 16 MiB): then a write
 * waits for the writer to take a batch, which bounds memory. Reads are
 * synchronous on their own connections (WAL) and see every write queued before
 * them, applied or not: a record evicted from memory whose newer version is
 * still in the queue is read back as that newer version, and a dropped type is
 * gone at once.
 *
 * After a write fails (disk full, I/O error) or the file proves damaged,
 * nothing more is served (reads say -ENOENT or -EIO) or written, and the
 * stats say "failed"; what is on disk stays consistent, as of the last batch.
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
 * memory-only cache): -EBUSY if another process has this cache open, -ELOOP if
 * cache.db (or its -wal or -shm) is a symbolic link, which is left alone. */
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
 * properties= list, in the order sent). Records of the type rendered with
 * another set are dropped with the type's marks (*dropped set true; its
 * associations and account data stay). Then *st describes what is on disk.
 * Call once per type per mount, before any other call for the type: record
 * calls for a type not declared in this process are ignored (reads -ENOENT,
 * the listing -EIO). Applies every queued write first. 0 or -EIO. */
int disk_type_open(struct disk *d, const char *type_id, const char *shown_csv,
		   struct disk_type *st, bool *dropped);

/* A listing entry: enough for readdirplus without the record. A listing
 * holds one per record (a million of them at 1,000,000 contacts), so the
 * fields are packed into 16 bytes, not 24: ids are below 2^48
 * (record_parse_id), a record's text below 2^32 bytes (struct rec's len),
 * and 48 signed bits of milliseconds reach past the year 10,000. The cache's
 * struct lent is the same fields (cache_int.h), so a listing loaded from
 * disk is adopted as it is. */
#define DISK_LENT_FIELDS \
	uint64_t id : 48;      \
	uint64_t size : 32;    \
	int64_t mtime_ms : 48
struct disk_lent {
	DISK_LENT_FIELDS;
} __attribute__((packed));

/* The listed records of a type, ascending by id: a GArray of struct disk_lent
 * (g_array_unref). 0 or -EIO. */
int disk_listing_load(struct disk *d, const char *type_id, GArray **out);

/* --- records (writes are queued; see above) -------------------------------- */

/* Store the server's version of a record, fetched at wall time seen_ms; listed:
 * the record is in its type's listing (false does not take it out: a forget or
 * a complete listing does). A version older than the one stored (smaller
 * mtime_ms: two fetches raced) leaves the stored text. Never pass a locally
 * edited version: only what HubSpot answered. Ids are 1 to 2^48 - 1. */
void disk_put_record(struct disk *d, const char *type_id, uint64_t id, const char *text,
		     size_t len, int64_t mtime_ms, bool listed, int64_t seen_ms);
/* The record is gone (archived, merged away, 404): remove its row. */
void disk_forget_record(struct disk *d, const char *type_id, uint64_t id);
/* The record was read now (LRU order for eviction; coalesced in memory and
 * applied with the next batch, cheap). */
void disk_touch_record(struct disk *d, const char *type_id, uint64_t id, int64_t now_ms);

/* A record's text: 0 with g_malloc'd *text (*len bytes, NUL-terminated) and its
 * mtime_ms; -ENOENT if the row is absent or its text was evicted, -EIO if it
 * cannot be read. */
int disk_get_record(struct disk *d, const char *type_id, uint64_t id, char **text, size_t *len,
		    int64_t *mtime_ms);

/* A type was synced as of sync_wall_ms (an incremental refresh that started
 * then has stored its records): queued after those records, applied in the
 * same transaction as the last of them. */
void disk_type_synced(struct disk *d, const char *type_id, int64_t sync_wall_ms);
/* A complete, error-free listing that started at started_ms (wall) has stored
 * every record it holds: rows of the type not seen since started_ms are
 * removed, the listing is marked complete, relist_wall_ms = started_ms, and
 * the type synced as of started_ms. Marks never move back: a later mark
 * already stored stays. */
void disk_listing_complete(struct disk *d, const char *type_id, int64_t started_ms);

/* --- associations and account data ------------------------------------------ */

/* The `to` records associated with from_type/id, sorted (replaces what was there). */
void disk_put_assoc(struct disk *d, const char *from_type, uint64_t id, const char *to_type,
		    const uint64_t *ids, size_t n, int64_t seen_ms);
/* 0 with g_malloc'd *ids (sorted) and *n, -ENOENT if none stored. */
int disk_get_assoc(struct disk *d, const char *from_type, uint64_t id, const char *to_type,
		   uint64_t **ids, size_t *n, int64_t *seen_ms);

/* Opaque account data by key ("schema:0-1", "pipelines:0-3", "owners", …); a
 * key ending in ":<type id>" belongs to that type (see disk_drop). */
void disk_put_blob(struct disk *d, const char *key, const char *text, size_t len, int64_t seen_ms);
int disk_get_blob(struct disk *d, const char *key, char **text, size_t *len, int64_t *seen_ms);

/* --- maintenance ------------------------------------------------------------ */

/* Drop everything of a type (NULL: of every type, and the account data):
 * `echo drop-cache [type] > .hubfs/ctl`. Everything of a type is its records,
 * its marks, associations from or to it, and account data whose key ends in
 * ":<type id>". Queued like a write, and hidden from reads at once. */
void disk_drop(struct disk *d, const char *type_id);

/* Add "disk" {path, bytes (record texts), max_bytes, file_bytes (database and
 * write-ahead log), records, texts, evicted, discarded, queued, write_errors,
 * failed} to obj. */
void disk_stats(struct disk *d, json_object *obj);

#endif
