/* writeback_int.h - what the writeback files share; private to cache/writeback*.c.
 *
 * writeback.c         the object, the batcher thread and its cycle, scheduling,
 *                     the queueing calls and the queue's status;
 * writeback_batch.c   batch calls (bisection, result matching, backoff), error
 *                     lines and rejected files, and the archives and
 *                     association writes, which need nothing more;
 * writeback_update.c  updates: the read before sending, conflicts, the
 *                     lifecycle-stage two-step, landing;
 * writeback_create.c  creates (upsert on email, batch/create) and the lookup
 *                     of in-doubt creates;
 * writeback_doubt.c   the lookup of the other in-doubt writes (upserts,
 *                     archives, associations): did a write whose answer was
 *                     lost land? (Updates need none: their read before
 *                     sending tells, see writeback_update.c.)
 *
 * The wb_do_* functions run on the batcher thread without wb->lock; the ones
 * marked "Lock held" want it held.
 */
#ifndef HUBFS_WRITEBACK_INT_H
#define HUBFS_WRITEBACK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <json-c/json.h>

#include "cache/model/objtypes.h"
#include "cache/writeback/journal.h"
#include "cache/writeback/writeback.h"
#include "client/hubspot.h"

struct schema;

#define BATCH_MAX 100
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 60000
#define TAKE_WINDOW 1000           /* journal rows looked at to fill one chunk */

struct writeback {
	struct hs_client *hc;       /* borrowed */
	struct cache *c;            /* borrowed */
	const struct objtypes *types; /* borrowed, immutable: no lock needed */
	struct writeback_hooks hooks;
	int64_t delay_ms, index_delay_ms, call_timeout_ms;
	pthread_t thread;

	/* Lock order: wb->lock, then nothing (no cache or client call inside). */
	pthread_mutex_t lock;
	pthread_cond_t wake;        /* the batcher: new work, sync, stop */
	pthread_cond_t done;        /* sync waiters: the queue changed */
	struct journal *j;          /* protected by lock */
	int64_t last_queue_ms;      /* protected by lock; hs_now_ms of the last queued op */
	unsigned flush;             /* protected by lock; sync calls waiting (skip the quiet wait) */
	bool stop;                  /* protected by lock */
	bool busy;                  /* protected by lock; a cycle runs (hooks may be pending) */
	int64_t drain_deadline;     /* protected by lock; valid when stop */
	int64_t backoff_until;      /* protected by lock; hs_now_ms clock */
	unsigned backoff_n;         /* protected by lock */
	/* In-doubt writes, for status.json; protected by lock. */
	uint64_t doubt_calls;       /* write calls whose answer was lost */
	uint64_t doubt_landed;      /* operations looked up and found landed */
	uint64_t doubt_not_landed;  /* looked up and not landed (sent again, or a conflict) */
	int batch_kind;             /* protected by lock; the last chunk put in flight */
	const struct objtype *batch_type; /* protected by lock; its type (NULL: unknown) */
};

struct wb_err {
	char reason[256];
	char property[128];
	struct hs_error e;
};

enum outcome { OUT_NONE, OUT_OK, OUT_FAILED, OUT_IN_DOUBT };

/* One input of a batch call and what became of it. */
struct item {
	json_object *input;         /* owned */
	char match[64];             /* objectWriteTraceId / record id / "from:to" */
	char alt[256];              /* upsert: the lowercased email */
	enum outcome outcome;
	json_object *result;        /* the matching results[] object (owned ref), may be NULL */
	struct wb_err err;          /* when OUT_FAILED */
};

struct batch {
	const struct objtype *type;
	const struct objtype *to_type; /* not NULL: associations v4 */
	const char *verb;
	bool create;                /* not idempotent: never re-sent unless known not applied */
};

/* --- writeback.c: scheduling --------------------------------------------------- */

/* The type of a journal row (and the other side's, for associations) in this
 * mount's registry, or NULL when the mount does not show it: such rows stay
 * in the journal untouched. */
const struct objtype *wb_type_of(struct writeback *wb, const struct jop *op);
const struct objtype *wb_to_type_of(struct writeback *wb, const struct jop *op);

/* Lock held. May a chunk of this type be taken now? */
bool wb_take_ok(struct writeback *wb, const struct objtype *type);
/* Lock held. Mark rows in flight (creates: on disk before they are sent). 0 or -errno. */
int wb_mark_in_flight(struct writeback *wb, GPtrArray *rows);
/* Lock held, inside journal_begin: commit if rc is 0, else roll back and log. */
void wb_journal_done(struct writeback *wb, int rc);

/* --- writeback_batch.c: JSON, error lines, batch calls ------------------------ */

/* A property value as a string; unset (absent, null) is "". */
const char *wb_prop_val(json_object *props, const char *name);
/* obj.properties if it is an object, else NULL. Borrowed. */
json_object *wb_obj_props(json_object *obj);

/* Clear *w and fill reason and (when e is not NULL) the HubSpot error. */
void wb_err_set(struct wb_err *w, const char *reason, const struct hs_error *e);
/* The journal's last_error text. g_free. */
char *wb_err_json(const struct wb_err *w);
/* Mark journal row seq failed with w as its last error. Returns journal_set_state's rc. */
int wb_set_failed(struct writeback *wb, int64_t seq, const struct wb_err *w, int64_t now);
/* Lock held, inside journal_begin: write the plain outcome of journal row
 * seq: sent (the row goes), failed (kept with its error), in doubt, or still
 * to send. 0 or the journal's error. */
int wb_settle_row(struct writeback *wb, int64_t seq, const struct item *it, int64_t now);
/* One .hubfs/errors.log line through hooks->error. key is the create key or
 * NULL (then id names the record). extra (consumed) adds fields. */
void wb_report(struct writeback *wb, const char *op, const struct objtype *type, uint64_t id,
	       const char *key, const struct wb_err *w, json_object *extra);
/* The local version of a record for .hubfs/rejected/ (server may be NULL, s
 * may be NULL). */
void wb_reject(struct writeback *wb, const struct objtype *type, uint64_t id, const char *key,
	       json_object *server, json_object *local, const struct schema *s);
/* Store the server's version in the cache unless a newer local write exists;
 * without a full object, forget the record so the next read fetches it. */
void wb_land(struct writeback *wb, const struct objtype *type, uint64_t id, json_object *obj,
	     uint64_t epoch);

/* Release an item's input and result and zero it. */
void wb_item_clear(struct item *it);
/* A write call at RL_PRIO_WRITE, due within call_timeout_ms (or the drain deadline). */
void wb_call_init(struct writeback *wb, struct hs_call *call);
/* A call got through: the next failure backs off from the start. */
void wb_backoff_reset(struct writeback *wb);
/* A transient failure of what: the batcher waits, longer each time, and logs it. */
void wb_backoff(struct writeback *wb, const char *what, const struct hs_call *call, int rc);
/* Count the outcome of looking up n in-doubt operations: landed or not (then
 * they are sent again). */
void wb_doubt_settled(struct writeback *wb, bool landed, unsigned n);
/* The item failed for reason (e, the HubSpot error, may be NULL). */
void wb_item_fail(struct item *it, const char *reason, const struct hs_error *e);
/* Send items (n <= 100) as one batch call, bisecting on whole-batch refusals.
 * Returns 0 when every item has an outcome, or -EAGAIN after a transient
 * failure (the items without an outcome were not applied) or a lost answer
 * (the items are OUT_IN_DOUBT; the batcher backs off either way). */
int wb_send_batch(struct writeback *wb, const struct batch *b, struct item **v, size_t n);
/* An archive of type/id, for a type whose archive takes its line items along
 * (OTF_CASCADE_DELETE: quotes; otherwise nothing happens): queued -> they
 * leave the listings with it at once; landed -> the cache forgets them;
 * refused -> they are shown again. Which ones: the record's associations in
 * the cache (read once if not cached, within call_timeout_ms). Not locked. */
enum cascade { CASCADE_QUEUED, CASCADE_LANDED, CASCADE_REFUSED };
void wb_cascade(struct writeback *wb, const struct objtype *type, uint64_t id, enum cascade what);
/* Archives (to_type NULL) or association adds/removes of one pair of types:
 * 1 if a chunk was sent, 0 if nothing to do, -EAGAIN on a transient failure. */
int wb_do_simple(struct writeback *wb, enum jop_kind kind, const struct objtype *type,
		 const struct objtype *to_type);

/* --- writeback_labels.c -------------------------------------------------------- */

/* Is op a label row (a labeled add or a label removal, see writeback_labels.c)?
 * Then its type id, category and label (each may be NULL). */
bool wb_label_of(const struct jop *op, int *type_id, const char **category, const char **label);
/* A label row's AssociationSpec list (borrowed), or NULL. */
json_object *wb_label_types(const struct jop *op);
/* Lock held. The pairs of type and to_type (either direction; keys "from:to"
 * as seen from type) with a removal of every type queued, and its seq. */
GHashTable *wb_removals(struct writeback *wb, const struct objtype *type,
			const struct objtype *to_type);
/* Must label row op wait for a removal of its pair queued before it? */
bool wb_label_waits(GHashTable *removals, const struct jop *op);

/* --- writeback_update.c ------------------------------------------------------- */

/* 1 if a chunk was sent, 0 if nothing to do, -EAGAIN on a transient failure. */
int wb_do_updates(struct writeback *wb, const struct objtype *type);

/* --- writeback_create.c ------------------------------------------------------- */

/* Lock held. Wall time an in-doubt operation may be looked up (0 = now). */
int64_t wb_lookup_due(struct writeback *wb, const struct jop *op);
/* Send pending creates of a type: 1 if a chunk was sent, 0 if nothing to do,
 * -EAGAIN on a transient failure. */
int wb_do_creates(struct writeback *wb, const struct objtype *type);
/* Settle in-doubt creates that are due (not upserts: writeback_doubt.c).
 * Returns how many were settled, or -EAGAIN. */
int wb_do_in_doubt(struct writeback *wb, const struct objtype *type);
/* Lock held. Is op an upsert (a create with an email, of a type that upserts
 * on it: contacts)? False for a type this mount does not show. */
bool wb_create_by_upsert(struct writeback *wb, const struct jop *op);
/* Lock held. A pending create of the same key becomes an update of record id. */
int wb_creates_to_update(struct writeback *wb, const struct objtype *type, const char *key,
			uint64_t id, int64_t now);
/* Lock held, inside a journal transaction. The associations op (a create)
 * carried could not go with it (an upsert, or a create settled as an update of
 * record xid): queue each as an association write of its pair's default type.
 * 0 or the journal's -errno. */
int wb_create_assocs_queue(struct writeback *wb, const struct objtype *type, const struct jop *op,
			   uint64_t xid, int64_t now);
/* Not locked. op (a create) settled as record xid: show its associations in
 * the cached lists of both sides at once. */
void wb_create_assocs_note(struct writeback *wb, const struct objtype *type, const struct jop *op,
			   uint64_t xid);
/* An in-doubt create found landed as record id: the created hook, the log,
 * and the team (cache_team_landed), once per record, as a create whose
 * answer came. */
void wb_create_found(struct writeback *wb, const struct objtype *type, const char *key,
		     const char *id);

/* --- writeback_doubt.c -------------------------------------------------------- */

/* Settle the in-doubt upserts, archives and association writes of a type by
 * looking them up: landed ones are done, the others pending again. Returns
 * how many were settled, or -EAGAIN. */
int wb_do_in_doubt_other(struct writeback *wb, const struct objtype *type);

#endif
