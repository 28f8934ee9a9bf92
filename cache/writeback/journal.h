/* journal.h - the durable writeback journal: one SQLite row per queued operation.
 *
 * $dir/journal.db (dir 0700, created with its parents; file 0600), WAL with
 * synchronous=FULL, so a row is on disk when the call that wrote it returns.
 * The database is opened in exclusive locking mode: a second process (another
 * mount of the same portal) gets -EBUSY instead of sending the same edits twice.
 *
 * Not thread-safe: one owner (the writeback) serialises every call with its own
 * lock. Times are wall-clock milliseconds passed in by the caller (persisted
 * across mounts, so not the monotonic clock); the journal never reads a clock.
 *
 * Schema (user_version 2):
 *
 *   ops(seq        INTEGER PRIMARY KEY AUTOINCREMENT  -- queueing order
 *       kind       TEXT    update|create|archive|assoc_add|assoc_del
 *       type       TEXT    the record's objectTypeId ("0-1", "2-3465404"): the one
 *                          key of a type that an account never renumbers
 *       rec_id     INTEGER record id (update/archive/assoc from); 0 for a create
 *       key        TEXT    create: the _new/ name (NULL otherwise)
 *       props      TEXT    JSON object: update -> changed values, create -> values,
 *                          assoc -> NULL, or {"types": [AssociationSpec]} for a
 *                          labeled add (batch/create) or label removal
 *                          (batch/labels/archive)
 *       base       TEXT    JSON object: update -> base value of each change
 *                          (string or null); a name missing here is not checked
 *                          for conflicts (retry of a conflict, 409 -> update);
 *                          create -> {"associations": [...]} the record is
 *                          created with (the writeback's, see writeback_create)
 *       to_type    TEXT    assoc: the other side's objectTypeId ('' otherwise)
 *       to_id      INTEGER assoc: the other side's id
 *       state      TEXT    pending|in_flight|failed|conflict|in_doubt
 *       attempts   INTEGER times sent
 *       last_error TEXT    JSON {reason, category, message, correlationId} or NULL
 *       created_ms, updated_ms, sent_ms INTEGER  wall clock; sent_ms = last send
 *                          (0 = never sent), updated_ms = last state change
 *       epoch      INTEGER cache write epoch of the latest edit merged in)
 *
 * Version 1 stored type and to_type as integers, the index of the type among
 * contacts, companies, deals, tickets (in that order; -1 for no to_type).
 * journal_open migrates such a journal in one transaction, its rows (queued
 * edits included) kept as they were but for those two columns.
 */
#ifndef HUBFS_JOURNAL_H
#define HUBFS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <json-c/json.h>

struct journal;

enum jop_kind { JOP_UPDATE, JOP_CREATE, JOP_ARCHIVE, JOP_ASSOC_ADD, JOP_ASSOC_DEL, JOP_KIND_COUNT };
enum jop_state { JS_PENDING, JS_IN_FLIGHT, JS_FAILED, JS_CONFLICT, JS_IN_DOUBT, JS_STATE_COUNT };

#define JS_MASK(s) (1u << (s))
#define JS_ANY 0x1fu

/* Longest objectTypeId kept, with its NUL ("<10 digits>-<19 digits>"). */
#define JOP_TYPE_MAX 32

/* One operation, as read from the journal. Owned by whoever got it; jop_free. */
struct jop {
	int64_t seq;
	enum jop_kind kind;
	char type[JOP_TYPE_MAX];    /* objectTypeId */
	uint64_t id;
	char *key;              /* create only */
	json_object *props;     /* update, create; else NULL */
	json_object *base;      /* update; else NULL */
	char to_type[JOP_TYPE_MAX]; /* assoc only: objectTypeId; else "" */
	uint64_t to_id;
	enum jop_state state;
	int attempts;
	char *error;            /* last_error JSON text, or NULL */
	int64_t created_ms, updated_ms, sent_ms;
	uint64_t epoch;
};

void jop_free(struct jop *op); /* accepts NULL */
const char *jop_kind_name(enum jop_kind k);
const char *jop_state_name(enum jop_state s);

/* Open (creating) $dir/journal.db, migrate a version-1 journal (see above), and
 * replay what an earlier run left:
 * in_flight rows become in_doubt (sent, answer unknown; updated_ms = now_ms:
 * the writeback looks each one up before sending it again), and
 * every epoch is reset to 0 (epochs of an earlier cache mean nothing to the
 * next one: a landed write then never hides a newer local one). Returns 0 and
 * *out, -EBUSY if another process holds the journal, -EPROTO for a journal of
 * a newer hubfs (or a version-1 journal with a type it cannot name, left as
 * it was), -EIO/-EACCES/-ENOMEM. */
int journal_open(const char *dir, int64_t now_ms, struct journal **out);
void journal_close(struct journal *j); /* accepts NULL */

/* Group the calls that follow into one transaction (nestable: SAVEPOINTs).
 * Every modifying call below is its own transaction when not grouped. */
int journal_begin(struct journal *j);
int journal_commit(struct journal *j);
void journal_rollback(struct journal *j); /* undo since the matching begin */

/* Every call taking a type takes an objectTypeId (1 to JOP_TYPE_MAX - 1
 * bytes; else -EINVAL); where a type filters rows, NULL means any. */

/* Queue changed properties of a record. If the record has a pending update,
 * the changes are merged into it in the same transaction: later values win,
 * and a property's earliest base is kept (a property the pending row already
 * changes keeps that row's base, or its lack of one). The changed properties
 * also leave the record's failed and conflict rows (superseded; a row left
 * empty is dropped), so a retry never sends them over the newer edit.
 * changes: name -> string;
 * bases: name -> string or null, may be NULL. *seq (may be NULL) gets the row.
 * Returns 0, -EINVAL for bad arguments, -EIO. */
int journal_add_update(struct journal *j, const char *type, uint64_t id, json_object *changes,
		       json_object *bases, uint64_t epoch, int64_t now_ms, int64_t *seq);
/* Queue a create under key. A pending create of the same type and key takes
 * the new values instead (later values win). */
int journal_add_create(struct journal *j, const char *type, const char *key, json_object *props,
		       int64_t now_ms, int64_t *seq);
/* Queue an archive; a pending archive of the same record is reused. */
int journal_add_archive(struct journal *j, const char *type, uint64_t id, int64_t now_ms,
			int64_t *seq);
/* Queue adding/removing the default association of a pair. Pending operations
 * on the same pair (either direction) are dropped first: the last one wins. */
int journal_add_assoc(struct journal *j, bool add, const char *from, uint64_t id, const char *to,
		      uint64_t to_id, int64_t now_ms, int64_t *seq);
/* Queue adding (batch/create) or removing (batch/labels/archive) one labeled
 * association type of a pair: types = {"types": [{"associationCategory",
 * "associationTypeId"}]}, kept as the row's props (assoc rows without props
 * are the default add and the removal of every type). The opposite write of
 * the same label, pending, cancels with this one; the same write pending
 * makes this one a no-op. A later removal of the pair (journal_add_assoc with
 * add false) drops these rows. */
int journal_add_assoc_label(struct journal *j, bool add, const char *from, uint64_t id,
			    const char *to, uint64_t to_id, json_object *types, int64_t now_ms,
			    int64_t *seq);
/* Insert a row as given (op->seq, created/updated_ms ignored). */
int journal_insert(struct journal *j, const struct jop *op, int64_t now_ms, int64_t *seq);

/* Rows whose state is in state_mask (JS_MASK bits), of kind (-1: any), type
 * (NULL: any) and record id (0: any), in seq order, at most limit (0: all).
 * *out: GPtrArray of struct jop * that frees its elements. */
int journal_list(struct journal *j, unsigned state_mask, int kind, const char *type, uint64_t id,
		 unsigned limit, GPtrArray **out);
/* One row by seq: 0 and *out, or -ENOENT. */
int journal_get(struct journal *j, int64_t seq, struct jop **out);

/* Set a row's state and last error (NULL clears it), updated_ms = now_ms.
 * JS_IN_FLIGHT also counts an attempt and sets sent_ms = now_ms. For an
 * in-doubt create, sent_ms is then the earliest and updated_ms the latest time
 * the server can have applied it. -ENOENT if there is no such row. */
int journal_set_state(struct journal *j, int64_t seq, enum jop_state state, const char *error,
		      int64_t now_ms);
/* Replace a row's props and base (either may be NULL: left alone). */
int journal_set_props(struct journal *j, int64_t seq, json_object *props, json_object *base,
		      int64_t now_ms);
/* Remove a row: the writeback calls it for an operation that landed. */
int journal_delete(struct journal *j, int64_t seq);
/* Rows journal_delete removed since journal_open (for progress displays). */
uint64_t journal_landed(struct journal *j);

/* For pending updates of type/id with seq > after_seq: where the base of prop
 * equals from (a string, or NULL for null), make it to (NULL for null). Used when
 * an earlier write of the same record lands or is rejected, so later edits made
 * on top of it are compared with what the server now holds. */
int journal_rebase(struct journal *j, const char *type, uint64_t id, int64_t after_seq,
		   const char *prop, const char *from, const char *to, int64_t now_ms);

/* Rows per state. */
int journal_counts(struct journal *j, int64_t counts[JS_STATE_COUNT]);
/* Pending rows of a type (NULL: any). -errno on error. */
int64_t journal_count_pending(struct journal *j, const char *type);

/* The rows in the states of state_mask, grouped by what sends them: kind,
 * type and to_type ("" but for associations), with their count; in the
 * order of each group's oldest row. *out: GArray of struct jgroup. */
struct jgroup {
	enum jop_kind kind;
	char type[JOP_TYPE_MAX];
	char to_type[JOP_TYPE_MAX];
	int64_t count;
};
int journal_groups(struct journal *j, unsigned state_mask, GArray **out);

/* ctl retry: failed rows become pending; conflict rows become pending with the
 * bases of their properties dropped, so the local values are sent over the
 * server's (the user has seen the conflict and asks for their version). */
int journal_retry(struct journal *j, int64_t now_ms);
/* ctl forget: drop failed and conflict rows. */
int journal_forget(struct journal *j);

#endif
