/* disk_int.h - what the files of the disk cache share: disk.c (files,
 * opening, closing, status), disk_queue.c (the queue of writes and the index
 * of pending ones), disk_read.c (reads) and disk_writer.c (the writer thread
 * and the SQL it applies). Not a public API: callers use cache/disk.h.
 */
#ifndef HUBFS_DISK_INT_H
#define HUBFS_DISK_INT_H

#include <sqlite3.h>

#include "cache/disk.h"

/* The layout of the tables (disk_writer.c); a database of another format is
 * discarded at open. */
#define DISK_FORMAT 1

/* A record's row key: its type's small number (tid) above its id. Record ids
 * are below 2^48 (RECORD_ID_MAX) and tids below 2^15, so keys are positive
 * SQLite integers, a type's records are one key range, and a text lives in a
 * plain rowid table under the same key. */
#define DISK_ID_BITS 48
#define DISK_TID_MAX 0x7fff
#define DISK_KEY(tid, id) (((uint64_t)(tid) << DISK_ID_BITS) | (uint64_t)(id))
#define DISK_KEY_LO(tid) DISK_KEY(tid, 0)
#define DISK_KEY_HI(tid) DISK_KEY(tid, (UINT64_C(1) << DISK_ID_BITS) - 1)
#define DISK_KEY_ID(k) ((k) & ((UINT64_C(1) << DISK_ID_BITS) - 1))

/* Queue bounds. A producer waits while the queue is full (back-pressure); the
 * writer applies at most one batch per transaction. The queued texts are
 * copies of what memory holds, outside cache_mb: two batches of headroom are
 * enough to keep the writer busy. */
#define DISK_QUEUE_OPS 16384
#define DISK_QUEUE_BYTES (8u << 20)
#define DISK_BATCH_OPS 4096
#define DISK_BATCH_BYTES (4u << 20)
#define DISK_TOUCH_MAX 65536 /* touches held between batches; more are dropped */

enum op_kind {
	OP_TYPE,     /* a type's row: key = name, shown = csv (NULL: keep) */
	OP_PUT,      /* a record: tid, id, data/len, ms = mtime, seen_ms, listed */
	OP_FORGET,   /* tid, id */
	OP_SYNCED,   /* tid, ms = sync mark */
	OP_LISTED,   /* listing complete: tid, ms = started */
	OP_ASSOC,    /* tid, id, to_tid, data = ids (little-endian u64), seen_ms */
	OP_BLOB,     /* key, data/len, seen_ms */
	OP_DROP,     /* tid (key = name, for the blobs of the type) */
	OP_DROP_ALL,
	OP_NOP,      /* a barrier for disk_flush */
};

struct op {
	uint64_t seq;
	enum op_kind kind;
	bool cancelled;  /* by a drop while queued (under d->lock); the writer
			  * reads it once it has taken the op, and skips it */
	bool listed;
	bool records_only; /* OP_DROP: the type's records and marks, not its
			    * associations or account data */
	int tid, to_tid;
	uint64_t id;
	int64_t ms;
	int64_t seen_ms;
	char *data;      /* g_malloc'd; NUL-terminated for texts */
	size_t len;
	char *key;
	char *shown;
	gint64 queued_us; /* monotonic */
};

/* A type as this process knows it. */
struct dtype {
	int tid;
	char *name;
	char *shown;          /* the csv disk_type_open was given; NULL: not opened */
	uint64_t listed_hint; /* listed rows at disk_type_open */
	/* Hiding stored rows that queued writes are about to remove: */
	uint64_t drop_seq;    /* a drop of the type is queued (0: none) */
	uint64_t prune_seq;   /* a complete listing is queued (0: none); until it is */
	int64_t prune_before; /* applied, stored rows last seen before this are hidden */
};

/* Counters of what is on disk, as of the last commit. */
struct disk_counts {
	int64_t records, texts, text_bytes;
};

/* A read connection with its statements. */
struct rconn {
	sqlite3 *db;
	sqlite3_stmt *st[8];
};

/* The writer thread's connection and statements (used by one thread at a
 * time: disk_open, then the writer thread, then disk_close after the join). */
struct wconn {
	sqlite3 *db;
	sqlite3_stmt *st[32];
};

struct disk {
	char *dir, *path;
	uint64_t portal_id;
	size_t max_bytes;
	int64_t flush_ms;
	int lock_fd;              /* flock'd: one process per cache */
	const char *notice;       /* why a database was discarded at open, or NULL */

	/* Lock order: pool_lock and lock are never held together. */
	GMutex lock;
	GCond wake;               /* to the writer: work, a flush, or stop */
	GCond space;              /* to producers: the queue has room */
	GCond done;               /* to flushers: applied_seq moved */
	/* Everything below up to the writer is protected by lock. */
	GQueue queue;             /* struct op *, oldest first */
	size_t queue_bytes;
	unsigned space_waiters;
	uint64_t next_seq;        /* last seq handed out */
	uint64_t applied_seq;     /* every op up to here is committed (or discarded) */
	uint64_t flush_seq;       /* a flusher waits for this */
	GHashTable *pending;      /* struct op -> itself: the latest queued write per record,
				   * association or blob, until it is committed */
	GHashTable *touches;      /* key -> last-used ms (coalesced) */
	gint64 touch_first_us;
	GHashTable *types;        /* name -> struct dtype */
	GPtrArray *by_tid;        /* tid -> struct dtype (NULL where unused) */
	int next_tid;
	uint64_t drop_all_seq;    /* a drop of everything is queued: stored rows hidden */
	bool stopping;
	bool failed;              /* a write failed: nothing is served or written any more */
	bool damaged;             /* SQLite found the file damaged: deleted at close */
	struct disk_counts counts;
	uint64_t evicted, write_errors, discarded, dropped_touches;

	bool started;             /* the writer thread was started (set before it runs) */
	GThread *writer;
	struct wconn w;

	GMutex pool_lock;
	GCond pool_cond;
	GPtrArray *pool;          /* idle struct rconn *; protected by pool_lock */
	unsigned nconns;          /* open read connections; protected by pool_lock */
};

/* disk_queue.c. "Lock held" means d->lock. */
struct op *disk_op_new(enum op_kind kind);
/* Queue op (lock held; takes it). A write waits while the queue is full; a
 * barrier or a type row never does. Returns false if the op was dropped (the
 * cache failed or is closing). */
bool disk_push(struct disk *d, struct op *op, bool may_wait);
/* A type by name; with create, a new one gets the next tid and its row is
 * queued. Lock held. NULL if unknown (or out of tids). */
struct dtype *disk_tget(struct disk *d, const char *name, bool create);
/* A type disk_type_open declared in this process (and the cache not failed):
 * only then are its records known to be rendered with the shown properties in
 * use. Lock held. */
struct dtype *disk_topen(struct disk *d, const char *name);
/* The type whose account data a blob key holds ("schema:0-1" -> 0-1), or NULL. */
struct dtype *disk_blob_type(struct disk *d, const char *key);
/* Queue a drop of t (NULL: everything; records_only: its records and marks).
 * Lock held. */
void disk_drop_locked(struct disk *d, struct dtype *t, bool records_only);
/* The pending index: 1 record (put, forget), 2 association, 3 blob, 0 none. */
int disk_op_class(enum op_kind k);
guint disk_op_hash(gconstpointer p);
gboolean disk_op_equal(gconstpointer a, gconstpointer b);

/* disk_read.c */
/* Close the idle read connections (all of them: no read may be running). */
void disk_pool_close(struct disk *d);

/* disk.c */
/* sqlite result code -> -errno (journal.c's mapping). */
int disk_sql_errno(int rc);
/* A read or write saw SQLITE_CORRUPT/NOTADB: stop using the file and delete it
 * at close. Takes d->lock. */
void disk_note_damage(struct disk *d, int rc, const char *what);
void disk_op_free(struct op *op);

/* disk_writer.c */
/* Create the tables and statements on the writer connection (opened by
 * disk.c). 0 or -errno. */
int disk_writer_init(struct disk *d);
/* Load counters and types (disk_open, before the thread starts). 0 or -errno. */
int disk_writer_load(struct disk *d);
/* Write the format, the portal id and whether the database was closed
 * cleanly (false while in use). 0 or -errno. */
int disk_writer_stamp(struct disk *d, bool clean);
/* Count rows and text bytes anew (after an unclean close). 0 or -errno. */
int disk_writer_recount(struct disk *d);
/* The writer thread: applies the queue in batches until d->stopping and empty. */
gpointer disk_writer_main(gpointer p);
/* Finalize the writer's statements (before its connection closes). */
void disk_writer_finalize(struct disk *d);

#endif
