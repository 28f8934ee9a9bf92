/* writeback.h - the durable journal and the batcher that sends queued edits.
 *
 * Knows nothing of FUSE. Every queued operation is in the SQLite journal
 * ($state_dir/journal.db, dir 0700, file 0600) before the queueing call returns.
 * A batcher thread coalesces operations per record (a later edit supersedes
 * earlier values of the same property; the earliest base value is kept), waits
 * for delay_ms of quiet or 100 pending records of a type, and sends batch calls
 * of at most 100 inputs (HubSpot's batch limit) at RL_PRIO_WRITE.
 */
#ifndef HUBFS_WRITEBACK_H
#define HUBFS_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/cache.h"
#include "client/hubspot.h"

struct writeback;

struct writeback_opts {
	const struct objtypes *types; /* the mount's registry (borrowed, outlives the writeback);
				       * the cache's own */
	const char *state_dir;      /* e.g. $XDG_STATE_HOME/hubfs/<portal-id> */
	int64_t delay_ms;           /* writeback_delay, default 2000 */
	int64_t index_delay_ms;     /* search indexing delay, default 10000 (in-doubt lookups) */
	/* Deadline of one batch call, retries included (default 30000); a call
	 * that still fails leaves its operations pending and the batcher backs
	 * off. Tests shorten it. */
	int64_t call_timeout_ms;
};

struct writeback_hooks {
	/* A create landed: key (the _new/ file name) now is record id. */
	void (*created)(void *ud, const struct objtype *type, const char *key, const char *id);
	/* A line for .hubfs/errors.log (a JSON object: time, op, type, id or key,
	 * property, reason, category, message, correlationId). Borrowed. */
	void (*error)(void *ud, json_object *line);
	/* The local version of a record that lost a conflict or was rejected, for
	 * .hubfs/rejected/ (name like "contacts-101.json"). */
	void (*rejected)(void *ud, const char *name, const char *text, size_t len);
	void *ud;
};

/* Open the journal (creating it), replay what an earlier mount left (in-flight
 * updates become pending again; in-flight creates become in doubt and are looked
 * up before any re-send), and start the batcher thread. The cache is borrowed:
 * landed writes are stored with cache_land; rejected ones revert the cached
 * record to the server's version. Returns 0 or -errno. */
int writeback_new(struct hs_client *hc, struct cache *c, const struct writeback_opts *o,
		  const struct writeback_hooks *hooks, struct writeback **out);

/* Stop the batcher after draining for at most drain_ms; what is left stays in
 * the journal for the next mount and is logged loudly. Accepts NULL. */
void writeback_free(struct writeback *wb, int64_t drain_ms);

/* Queue changed properties of a record (changes: name -> string, "" clears;
 * bases: name -> base string or null), made at cache write epoch `epoch`.
 * Durable on return. 0 or -errno (-EIO if the journal cannot be written). */
int writeback_update(struct writeback *wb, const struct objtype *type, uint64_t id,
		     json_object *changes, json_object *bases, uint64_t epoch);
/* Queue a create of props under the local name key, with the associations
 * assocs (NULL: none; else edit_parse_create's array: {"toObjectTypeId",
 * "to": {"id"}, "types": [...]} per record), durably in one journal row, so
 * they are sent in the create call itself (batch/create inputs carry them)
 * and a create looked up after a lost answer is never sent twice with them.
 * A type that upserts on email (OTF_UPSERT_EMAIL: contacts) goes through
 * batch/upsert when props has an email; an upsert cannot carry associations,
 * so they are queued as association writes (default types) in the same
 * transaction that settles it. 0, -EINVAL (bad arguments, a type this mount
 * does not show), -EIO. */
int writeback_create(struct writeback *wb, const struct objtype *type, const char *key,
		     json_object *props, json_object *assocs);
/* Queue an archive (DELETE) of a record. Per-type semantics: a type whose
 * archive takes its line items along (OTF_CASCADE_DELETE: quotes) hides them
 * with it at once and the cache forgets them when it lands (which costs one
 * association read if the quote's line items are not cached); a hard-deleted
 * type (OTF_HARD_DELETE: emails) is gone for good when it lands. The caller
 * refuses types that cannot be deleted (OTF_NO_DELETE). */
int writeback_archive(struct writeback *wb, const struct objtype *type, uint64_t id);
/* Queue adding/removing the default association from/id -> to/to_id. */
int writeback_assoc(struct writeback *wb, bool add, const struct objtype *from, uint64_t id,
		    const struct objtype *to, uint64_t to_id);
/* Queue adding or removing one label (association type type_id of category,
 * named label for messages) of from/id -> to/to_id: batch/create, which makes
 * the association too when it is not there, or batch/labels/archive, which
 * leaves it and its other types. */
int writeback_assoc_label(struct writeback *wb, bool add, const struct objtype *from, uint64_t id,
			  const struct objtype *to, uint64_t to_id, const char *category,
			  int type_id, const char *label);

/* Wait until nothing is pending or in flight (or the deadline). Returns 0 if all
 * landed, -EIO if some failed or conflict (each listed as a line in *report,
 * g_malloc'd, may be NULL), -EAGAIN on deadline. In-doubt creates count as
 * not landed; the quiet wait and any backoff are skipped (a sync sends
 * now); on return the hooks of what landed have run. */
int writeback_sync(struct writeback *wb, int64_t deadline, char **report);

/* ctl commands: make failed operations pending again / drop failed ones.
 * Both act on conflicts too; retry of a conflict sends the local
 * values over the server's (the user saw the conflict and insists), forget
 * drops them. */
int writeback_retry(struct writeback *wb);
int writeback_forget(struct writeback *wb);

/* "clean", "pending", "conflict" or "failed" for a record (user.hubfs.state),
 * from its queued updates and archive: conflict before failed before pending
 * (pending includes in flight and in doubt). */
const char *writeback_record_state(struct writeback *wb, const struct objtype *type, uint64_t id);

/* .hubfs/queue, g_malloc'd: one line per journal row, oldest first: "<state> <type>/<id or _new/key> <what>
 * [<category>: <message> (correlationId <id>)]", <what> being name="value"
 * pairs (JSON strings), "archive", or "+<type>/<id>" / "-<type>/<id>". A record
 * with a conflict and a newer edit has two lines. */
char *writeback_queue_text(struct writeback *wb, size_t *len);
/* Add "queue" {pending, in_flight, failed, conflict, in_doubt (rows now),
 * landed (since mount), batch ({kind, type, records} in flight, or null)} and
 * "in_doubt" {answers_lost, found_landed, not_landed} (since the mount: write
 * calls whose answer was lost, and the operations of such calls looked up and
 * found landed, so not sent again, or not landed, so sent again) to obj. */
void writeback_stats(struct writeback *wb, json_object *obj);

#endif
