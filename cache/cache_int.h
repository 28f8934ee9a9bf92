/* cache_int.h - what the files of the cache module share: cache.c,
 * cache_rec.c, cache_list.c, cache_assoc.c, cache_account.c, cache_refresh.c.
 * Not a public API: callers use cache/cache.h.
 */
#ifndef HUBFS_CACHE_INT_H
#define HUBFS_CACHE_INT_H

#include <glib.h>

#include "cache/cache.h"
#include "cache/disk.h"
#include "cache/model/objtypes.h"
#include "cache/pager.h"

/* Record ids are below 2^48 (record_parse_id), so they are stored directly as
 * hash-table keys (GSIZE_TO_POINTER); hubfs needs a 64-bit build. */
#define KEY(id) GSIZE_TO_POINTER((gsize)(id))
#define UNKEY(p) ((uint64_t)GPOINTER_TO_SIZE(p))

struct rec {
	uint64_t id;
	uint8_t type;         /* idx of its type (OBJTYPES_MAX fits) */
	bool listed;          /* known to be in the type's listing */
	uint32_t len;
	char *text;
	int64_t mtime_ms;     /* updatedAt */
	int64_t fetched_ms;
	uint64_t local_epoch; /* epoch of the last local write, 0 if none */
	GList lru;            /* link in c->lru; data = this rec */
};

struct assoc {
	uint64_t *ids;
	const char **types;   /* per id: its association types, canonical text
			       * (assocfile_types_canon), interned (g_intern_string:
			       * the combinations of a portal's labels are few) */
	size_t n;
	int64_t fetched_ms;
};

/* A listed record: its attributes as of the page it came in, so readdirplus
 * needs no fetch even when the record itself was evicted. */
struct lent {
	DISK_LENT_FIELDS;     /* id, size, mtime_ms (packed: see cache/disk.h) */
} __attribute__((packed));

struct listing {
	const struct objtype *type;
	bool unsorted;        /* ids are not ascending (cache_listing_append) */
	unsigned refs;        /* protected by c->lock, like every field here */
	GArray *ids;          /* struct lent, in HubSpot's list order */
	bool complete;
	bool fetching;
	int err;
	char *after;
	int64_t started_ms;
	int64_t started_wall;
	int64_t completed_ms;
	struct pager pager;   /* cursors seen, page bound (cache/pager.h) */
	int64_t total;        /* the type's search total, for progress; -1 unknown */
	bool total_asked;     /* a search for total is queued (cold listings of > 1 page) */
	/* The search side of a listing of more than a page (cache_list.c):
	 * search pages of 200 on hs_object_id, descending from the top, while
	 * the list pages (100, ascending) come up from the bottom; they meet in
	 * the middle. Up to 5 pages are on their way at once: page g asks for
	 * the offset 200 * (g % 50) of a window of ids below tail_bound. */
	GArray *tail;         /* struct lent found by search, descending ids, or NULL */
	uint64_t tail_low;    /* the lowest id the search side has (0: none yet) */
	uint64_t tail_top;    /* the highest (its first page's first id) */
	bool tail_running;    /* its threads are at work (tail_workers > 0) */
	bool tail_stop;       /* met, failed or abandoned: the threads end, and a failed
			       * or abandoned tail is not used */
	bool tail_dry;        /* the search side has everything down to tail_low */
	bool tail_nomore;     /* no page is asked for any more (dry once all answered) */
	unsigned tail_workers;   /* threads at work, each holding a reference */
	unsigned tail_inflight;  /* pages asked for, not yet answered */
	unsigned tail_next;      /* the next page to ask for (0: the top) */
	unsigned tail_merged;    /* pages merged into tail, in page order */
	int64_t tail_recs;       /* records the search side has or asked for */
	uint64_t tail_bound;     /* the current window: ids below this (0: all) */
	int64_t tail_win_total;  /* the total its pages report (-1: none yet) */
	GPtrArray *tail_pend;    /* answered pages not yet merged: [g - tail_merged] is
				  * page g's GArray of struct lent, or NULL */
	bool installed;       /* listing_install ran */
	uint64_t met_at;      /* the sides met at this id (0: listed by the list side
			       * alone): above it, search (which lags) listed */
	enum rl_prio tail_prio;
	struct cache *tail_cache;
	unsigned tail_calls, list_calls;
};

/* A record's text as the kernel last saw it (see tcache.shown). */
struct shown {
	char *text;
	uint32_t len;
};

struct tcache {
	const struct objtype *type;
	GHashTable *recs;       /* id -> struct rec */
	GHashTable *wanted;     /* id -> 1: known to exist, not cached */
	GHashTable *inflight;   /* id -> 1: in a batch/read right now */
	GHashTable *missing;    /* id -> expiry ms (negative cache); pruned (cache_note_missing) */
	GHashTable *gone;       /* id -> wall ms after which it may be forgotten, GONE_PENDING
				 * until the archive lands: archived by this mount, hidden
				 * from listings; pruned (cache_note_gone) */
	struct listing *listing;
	int64_t synced_ms;      /* every record of the type is fresh since then (ttl base) */
	int64_t sync_wall_ms;   /* the type is synced as of then, wall clock: the next refresh
				 * searches from there (0: never fetched). A refresh sets both to
				 * its start; a listing sets this to its start, synced_ms to its end. */
	bool refreshing;        /* an incremental refresh is queued or running */
	bool relisting;         /* a background relist is queued or running */
	int64_t relist_fail_ms; /* when the last background relist failed */
	int64_t refresh_fail_ms;/* when the last refresh failed (0: it did not) */
	GHashTable *recent;     /* id -> wall ms of this mount's last change; pruned
				 * (cache_note_recent) */
	GHashTable *shown;      /* id -> struct shown: the text the kernel may still
				 * hold the size of (its record changed since), until
				 * its invalidation landed (cache_record_shown_done) */
	guint recent_mark, missing_mark, gone_mark; /* sizes after the last sweep */
	const struct schema *schema;
	bool schema_fetching;
	/* Associations toward each type (by its idx): tables made on first use of
	 * a pair (cache_assoc_table), so a mount pays only for the pairs read. */
	GHashTable **assoc;          /* [to idx]: from id -> struct assoc, or NULL */
	GHashTable **assoc_inflight; /* [to idx]: from id -> 1, or NULL */
	char *pipelines;
	size_t pipelines_len;
	/* HubSpot refused the token this type (403): the scopes it named (or
	 * the type's read_scope), g_strdup; NULL while it did not. Set once,
	 * never cleared: every later fetch of the type fails with -EACCES
	 * without a call (cache_deny). */
	char *denied;
	/* The disk copy (c->disk): */
	int disk;               /* 0: not opened yet (the schema comes first), 1: in use,
				 * -1: not used for this type */
	GArray *disk_listing;   /* struct lent: a complete listing found on disk, until
				 * the type's first listing adopts it */
	int64_t disk_relist_wall; /* its relist mark (wall ms) */
	bool from_disk;         /* the type started from disk this mount */
	bool unconfirmed;       /* served from disk; no refresh or relist has run since */
	/* How the type caught up after a remount: "refresh" or "relist", its
	 * calls, and the changes the first search counted (-1: unknown). */
	const char *catchup;
	unsigned catchup_calls;
	int64_t catchup_changes;
	int64_t relist_hint;    /* records the next relist may find at most (its page
				 * bound without a count), or 0 */
};

struct cache {
	struct hs_client *hc;
	const struct objtypes *types; /* immutable, borrowed */
	size_t ntypes;
	struct cache_opts opts;
	struct cache_hooks hooks;

	/* Lock order: c->lock only; never held across HTTP or hooks. */
	GMutex lock;
	GCond cond;             /* broadcast whenever a fetch finishes */
	struct tcache *t;       /* [type idx], ntypes of them; protected by lock */
	GQueue lru;             /* head = most recently used; protected by lock */
	size_t bytes;           /* rendered bytes held; protected by lock */
	size_t evicted;         /* text bytes evicted since the last malloc_trim */
	uint64_t epoch;         /* write epoch; protected by lock */
	uint64_t hits, misses;  /* protected by lock */
	GArray *notify;         /* pending hook calls (struct note, cache.c); protected by lock */
	GHashTable *assoc_labels; /* pair key -> struct assoc_labels (cache_assoc.c), made on
				   * first use; protected by lock */
	GHashTable *owners;     /* id -> text (g_strdup); NULL until loaded */
	bool owners_fetching;

	struct disk *disk;      /* the disk copy, or NULL (cache=memory, or it failed) */
	const char *disk_notice;/* why a disk cache was discarded or not used, or NULL */
	uint64_t disk_gen;      /* bumped by each disk write of a record; protected by lock */
	uint64_t disk_reads;    /* records read back from disk; protected by lock */
	unsigned tails;         /* search sides of listings running; protected by lock */

	GThread *worker;        /* background refreshes (opts.background) */
	GAsyncQueue *work;      /* struct work (g_free) */
	int stopping;           /* atomic: cache_stop was called; background page loops end,
				 * their calls give up waiting (hs_call.cancel) */
	struct cache_team *tm;  /* atomic pointer: the team's state (cache_team.c), or NULL */
	/* Pushed changes (cache_events.c), made on first use; set under lock,
	 * read atomically, freed by cache_free. */
	struct cache_events *events;
};

/* An item of c->work: what the background worker does next. */
enum work_kind {
	WORK_REFRESH,
	WORK_RELIST,
	WORK_TOTAL, /* one search (limit 1) for the total of a cold listing */
	WORK_STOP,
};
struct work {
	enum work_kind kind;
	const struct objtype *type; /* NULL for WORK_STOP */
};
/* Queue an item (at the front for WORK_STOP). c->work must exist. */
void cache_work_push(struct cache *c, enum work_kind kind, const struct objtype *t);

/* A record rendered from an API object (outside the lock), ready to store. */
struct rendered {
	uint64_t id;
	char *text;
	size_t len;
	int64_t mtime_ms;
	bool listed;          /* the disk copy: the record is in its type's listing */
};

/* cache.c: the core. "Lock held" means c->lock. */
int64_t cache_now_ms(struct cache *c); /* the injected clock, opts.now */
void cache_rec_free(struct rec *r);
/* Unlock, then run the hooks for every record and association list noted as
 * changed. */
void cache_unlock_and_notify(struct cache *c);
/* Note that a record's bytes changed, for the hook run at unlock. Lock held. */
void cache_note_changed(struct cache *c, const struct objtype *type, uint64_t id);
/* Note that the list of from/id toward `to` changed or was forgotten, with
 * the links that may have come or gone (ids copied), for the assoc_changed
 * hook run at unlock. Every edit of a list (this mount's included), every
 * read that finds a held list changed and every list forgotten is noted
 * here. Lock held. */
void cache_note_assoc(struct cache *c, const struct objtype *from, uint64_t id,
		      const struct objtype *to, const uint64_t *ids, size_t n);
/* The side tables of a type stay bounded: each is swept of entries that no
 * longer matter whenever it has doubled since its last sweep (amortized
 * O(1) per insert). Lock held for all three. */
#define GONE_PENDING INT64_MAX
/* This mount changed id (for the search overlay, which looks back
 * index_delay + 2 s; entries older than index_delay + 60 s go). */
void cache_note_recent(struct cache *c, struct tcache *tc, uint64_t id);
/* HubSpot has no id until `until` (cache clock); expired entries go. */
void cache_note_missing(struct cache *c, struct tcache *tc, uint64_t id, int64_t until);
/* id is hidden as archived by this mount until `until` (wall ms; GONE_PENDING
 * while the archive is queued); expired entries go. */
void cache_note_gone(struct cache *c, struct tcache *tc, uint64_t id, int64_t until);
/* Wait on c->cond until woken or the deadline (0: none). Returns false on timeout. */
bool cache_wait_until(struct cache *c, int64_t deadline);
/* Whether r was fetched, or its type synced, within the ttl. */
bool cache_rec_fresh(struct cache *c, struct tcache *tc, struct rec *r, int64_t now);
void cache_rec_touch(struct cache *c, struct rec *r);  /* to the LRU head; lock held */
void cache_rec_remove(struct cache *c, struct rec *r); /* unlink and free; lock held */
/* What a cached record costs in memory besides its text, charged against
 * cache_mb with it: the struct rec and its allocation header, the text's
 * header and rounding (malloc: 8 bytes of header, 16-byte granules), and its
 * slot in the type's id hash table (key, value and hash at the table's
 * average load). At ~600 bytes a contact this is a fifth of the budget;
 * leaving it out let a full cache hold about a quarter more than cache_mb. */
#define REC_OVERHEAD (sizeof(struct rec) + 16 + 16 + 32)
/* The bytes a cache of n records of `text` bytes is charged. */
#define CACHE_CHARGE(text, n) ((text) + (n) * REC_OVERHEAD)
/* Evict least-recently-used clean records until under budget (their texts
 * plus REC_OVERHEAD each); keep `keep`. Lock held. */
void cache_evict(struct cache *c, struct rec *keep);
/* Insert rendered data; takes ownership of x->text. Lock held. Returns 1 if dropped. */
int cache_store_locked(struct cache *c, const struct objtype *type, struct rendered *x,
		       uint64_t epoch, int64_t now);
/* Render the objects of a results array outside the lock: a GArray of struct
 * rendered (objects that do not render are left out). */
GArray *cache_render_results(json_object *results, const struct schema *s);
void cache_call_init(struct hs_call *call, enum rl_prio prio, int64_t deadline); /* zeroed */
/* A call for background work: cancelled by cache_stop. Zeroed like cache_call_init. */
void cache_call_init_bg(struct cache *c, struct hs_call *call, int64_t deadline);
/* Whether cache_stop was called (background work ends). */
bool cache_stopping(struct cache *c);
/* A call for type t failed: if HubSpot refused the token (403), note the
 * type as denied (once: the hook fires for the first refusal only). Lock not
 * held. Returns rc. */
int cache_deny(struct cache *c, const struct objtype *t, const struct hs_call *call, int rc);
/* Fetch the schema of a type if needed. Lock held on entry and exit. 0 or -errno
 * (-EACCES at once, without a call, for a denied type). */
int cache_ensure_schema(struct cache *c, const struct objtype *type, int64_t deadline);

/* The disk copy of a type is in use (opened, not failed). Lock held. */
bool cache_disk_on(struct cache *c, struct tcache *tc);
/* Queue the server's version x of a record for the disk (x->listed says
 * whether it is in the listing). Lock held. */
void cache_disk_put(struct cache *c, const struct objtype *type, const struct rendered *x);
/* The record is gone from HubSpot: off the disk too. Lock held. */
void cache_disk_forget(struct cache *c, const struct objtype *type, uint64_t id);
/* Read a record back from disk into memory (fetched_ms old: fresh by the
 * type's sync only). Lock held on entry and exit (dropped for the read).
 * 0 and *out, -ENOENT if the disk does not have it. */
int cache_disk_load(struct cache *c, const struct objtype *type, uint64_t id, struct rec **out);

/* cache_rec.c: look up a record, fetching it when missing or stale. Lock held
 * on entry and exit; on success *out points at the record (valid while the
 * lock is held). */
int cache_lookup_locked(struct cache *c, const struct objtype *type, uint64_t id, int64_t deadline,
			struct rec **out);

/* cache_list.c */
/* Append e to l, keeping track of whether l stays ascending. Lock held. */
void cache_listing_append(struct listing *l, const struct lent *e);
/* Whether id is in l (binary search while l is ascending). Lock held. */
bool cache_listing_contains(struct listing *l, uint64_t id);
/* Adopt the listing found on disk into l, a listing not fetched yet: it is
 * complete as of the disk's relist mark. Returns true if it did. Lock held. */
bool cache_listing_adopt_disk(struct cache *c, struct listing *l);
/* Drop a reference; the last frees l. Accepts NULL. Lock held (or the cache unshared). */
void cache_listing_unref(struct listing *l);
/* Whether l may be served as it is: not failed, and complete within its life. */
bool cache_listing_fresh(struct cache *c, struct listing *l, int64_t now);
/* The periodic relist of a type (the worker; lock not held): installed only if
 * complete and error-free, else the previous listing stays. */
void cache_relist(struct cache *c, const struct objtype *type);
/* The worker: one search (limit 1, background priority) for the type's total,
 * kept in the type's listing while it is still being fetched. */
void cache_listing_total(struct cache *c, const struct objtype *type);

/* The association table of a pair, made on first use: from id -> struct
 * assoc, or (inflight) from id -> 1. Lock held. */
GHashTable *cache_assoc_table(struct cache *c, const struct objtype *from,
			      const struct objtype *to, bool inflight);


/* cache_refresh.c */
/* Queue a background relist / refresh of a type unless one is pending. Lock held. */
void cache_kick_relist(struct cache *c, const struct objtype *type);
void cache_kick_refresh(struct cache *c, const struct objtype *type);
/* Whether a type ever fetched has gone a ttl without a sync. */
bool cache_type_stale(struct cache *c, struct tcache *tc, int64_t now);
/* The background worker (opts.background): runs what c->work holds until WORK_STOP. */
gpointer cache_worker_main(gpointer p);
/* cache_team.c (cache/cache_team.h): NULL-safe without a team. */
#define CACHE_GONE_KEEP_MS 60000 /* a landed archive stays hidden this long past index_delay */
/* Whether the worker runs a background refresh (relist) of type now: true
 * without a team, when this mount holds or took the lease, or when Redis did
 * not answer; false (and the type's refreshing/relisting flag cleared) when
 * another mount holds it or a marker made the type fresh meanwhile. */
bool cache_team_gate(struct cache *c, const struct objtype *type, bool relist);
/* A refresh this mount ran succeeded: publish every record its search
 * returned (struct lent: id, mtime) and a REFRESH marker at sync_wall. */
void cache_team_refreshed(struct cache *c, const struct objtype *type, const GArray *seen,
			  int64_t sync_wall);
/* A relist (now) replaces listing old (may be NULL): publish an ARCHIVE for
 * each record of a complete old that now lacks (and that did not change
 * after now started), and a RELIST marker at now's start. Lock held. */
void cache_team_relisted(struct cache *c, const struct objtype *type, const struct listing *old,
			 const struct listing *now);
/* Detach and free the team state (cache_free). */
void cache_team_free_state(struct cache *c);
#endif
