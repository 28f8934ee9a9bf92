/* disk_writer.c - the disk cache's writer thread: takes the queue in batches,
 * applies each batch in one SQLite transaction on its own connection, evicts
 * record texts past the byte budget, then lets reads forget the writes it
 * committed. See disk.h for the contract and disk.c for the queue.
 */
#include "cache/disk_int.h"

#include <errno.h>
#include <string.h>

#include "client/log.h"

enum wstmt {
	W_REC_GET, W_REC_INS, W_REC_UPD, W_REC_SEEN, W_REC_DEL, W_TEXT_PUT, W_TEXT_DEL,
	W_TYPE_INS, W_TYPE_SHOWN, W_SYNCED, W_LISTED, W_TYPE_RESET,
	W_PRUNE_COUNT, W_PRUNE_TEXTS, W_PRUNE_RECS,
	W_ASSOC_PUT, W_ASSOC_DEL_FROM, W_ASSOC_DEL_TO, W_BLOB_PUT, W_BLOB_DEL_TYPE,
	W_TOUCH, W_LRU, W_EVICT_REC, W_META_PUT, W_COUNT
};

static const char *const wsql[W_COUNT] = {
	[W_REC_GET] = "SELECT mtime, has_text, size FROM recs WHERE k = ?1",
	[W_REC_INS] = "INSERT INTO recs (k, size, mtime, listed, seen, used, has_text)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)",
	[W_REC_UPD] = "UPDATE recs SET size = ?2, mtime = ?3, listed = listed OR ?4,"
		      " seen = max(seen, ?5), used = max(used, ?5), has_text = 1 WHERE k = ?1",
	[W_REC_SEEN] = "UPDATE recs SET listed = listed OR ?2, seen = max(seen, ?3),"
		       " used = max(used, ?3) WHERE k = ?1",
	[W_REC_DEL] = "DELETE FROM recs WHERE k = ?1",
	[W_TEXT_PUT] = "INSERT OR REPLACE INTO texts (k, text) VALUES (?1, ?2)",
	[W_TEXT_DEL] = "DELETE FROM texts WHERE k = ?1",
	[W_TYPE_INS] = "INSERT OR IGNORE INTO types (tid, name) VALUES (?1, ?2)",
	[W_TYPE_SHOWN] = "UPDATE types SET shown = ?2 WHERE tid = ?1",
	[W_SYNCED] = "UPDATE types SET sync_ms = max(sync_ms, ?2) WHERE tid = ?1",
	[W_LISTED] = "UPDATE types SET complete = 1, relist_ms = max(relist_ms, ?2),"
		     " sync_ms = max(sync_ms, ?2) WHERE tid = ?1",
	[W_TYPE_RESET] = "UPDATE types SET sync_ms = 0, relist_ms = 0, complete = 0"
			 " WHERE ?1 < 0 OR tid = ?1",
	[W_PRUNE_COUNT] = "SELECT count(*), total(has_text), total(CASE WHEN has_text THEN size END)"
			  " FROM recs WHERE k BETWEEN ?1 AND ?2 AND seen < ?3",
	[W_PRUNE_TEXTS] = "DELETE FROM texts WHERE k IN (SELECT k FROM recs"
			  " WHERE k BETWEEN ?1 AND ?2 AND seen < ?3 AND has_text)",
	[W_PRUNE_RECS] = "DELETE FROM recs WHERE k BETWEEN ?1 AND ?2 AND seen < ?3",
	[W_ASSOC_PUT] = "INSERT OR REPLACE INTO assocs (k, to_tid, seen, ids) VALUES (?1, ?2, ?3, ?4)",
	[W_ASSOC_DEL_FROM] = "DELETE FROM assocs WHERE k BETWEEN ?1 AND ?2",
	[W_ASSOC_DEL_TO] = "DELETE FROM assocs WHERE to_tid = ?1",
	[W_BLOB_PUT] = "INSERT OR REPLACE INTO blobs (key, seen, text) VALUES (?1, ?2, ?3)",
	/* The account data of a type: keys ending in ":<type id>". */
	[W_BLOB_DEL_TYPE] = "DELETE FROM blobs WHERE length(key) > length(?1)"
			    " AND substr(key, length(key) - length(?1) + 1) = ?1",
	[W_TOUCH] = "UPDATE recs SET used = ?2 WHERE k = ?1 AND used < ?2",
	[W_LRU] = "SELECT k, size FROM recs WHERE has_text ORDER BY used LIMIT 256",
	[W_EVICT_REC] = "UPDATE recs SET has_text = 0 WHERE k = ?1",
	[W_META_PUT] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS types ("
	" tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, shown TEXT,"
	" sync_ms INTEGER NOT NULL DEFAULT 0, relist_ms INTEGER NOT NULL DEFAULT 0,"
	" complete INTEGER NOT NULL DEFAULT 0);"
	/* Rows are small so that a listing reads few pages; texts live apart. */
	"CREATE TABLE IF NOT EXISTS recs ("
	" k INTEGER PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" listed INTEGER NOT NULL, seen INTEGER NOT NULL, used INTEGER NOT NULL,"
	" has_text INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS recs_lru ON recs (used) WHERE has_text;"
	"CREATE TABLE IF NOT EXISTS texts (k INTEGER PRIMARY KEY, text BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS assocs ("
	" k INTEGER NOT NULL, to_tid INTEGER NOT NULL, seen INTEGER NOT NULL, ids BLOB NOT NULL,"
	" PRIMARY KEY (k, to_tid));"
	"CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, seen INTEGER NOT NULL,"
	" text BLOB NOT NULL);";

static int wfail(struct disk *d, int rc, const char *what)
{
	log_err("disk cache %s: %s: %s", d->path, what, sqlite3_errmsg(d->w.db));
	disk_note_damage(d, rc, what);
	return disk_sql_errno(rc) ? disk_sql_errno(rc) : -EIO;
}

static int wexec(struct disk *d, const char *sql)
{
	int rc = sqlite3_exec(d->w.db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : wfail(d, rc, sql);
}

/* The statement, prepared on first use, reset and unbound. NULL on failure. */
static sqlite3_stmt *W(struct disk *d, enum wstmt which)
{
	sqlite3_stmt **st = &d->w.st[which];

	if (!*st) {
		int rc = sqlite3_prepare_v3(d->w.db, wsql[which], -1, SQLITE_PREPARE_PERSISTENT,
					    st, NULL);

		if (rc != SQLITE_OK) {
			wfail(d, rc, wsql[which]);
			return NULL;
		}
	}
	sqlite3_reset(*st);
	sqlite3_clear_bindings(*st);
	return *st;
}

/* Step a statement that returns no rows. */
static int done(struct disk *d, sqlite3_stmt *st)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		rc = wfail(d, rc, sqlite3_sql(st));
	else
		rc = 0;
	sqlite3_reset(st);
	return rc;
}

void disk_writer_finalize(struct disk *d)
{
	for (int i = 0; i < W_COUNT; i++) {
		sqlite3_finalize(d->w.st[i]);
		d->w.st[i] = NULL;
	}
}

int disk_writer_init(struct disk *d)
{
	return wexec(d, schema_sql);
}

/* After a drop, give the free pages back: a dropped million records should
 * not keep their 700 MB. (Pages freed by eviction are reused by new texts.) */
static void vacuum(struct disk *d, GPtrArray *batch)
{
	for (guint i = 0; i < batch->len; i++) {
		struct op *op = batch->pdata[i];

		if (!op->cancelled && (op->kind == OP_DROP || op->kind == OP_DROP_ALL)) {
			if (sqlite3_exec(d->w.db, "PRAGMA incremental_vacuum", NULL, NULL, NULL) !=
			    SQLITE_OK)
				log_warn("disk cache %s: incremental_vacuum: %s", d->path,
					 sqlite3_errmsg(d->w.db));
			return;
		}
	}
}

static int meta_put(struct disk *d, const char *key, int64_t v)
{
	sqlite3_stmt *st = W(d, W_META_PUT);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return done(d, st);
}

int disk_writer_stamp(struct disk *d, bool clean)
{
	int rc = wexec(d, "BEGIN IMMEDIATE");

	if (rc == 0)
		rc = meta_put(d, "format", DISK_FORMAT);
	if (rc == 0)
		rc = meta_put(d, "portal", (int64_t)d->portal_id);
	if (rc == 0)
		rc = meta_put(d, "clean", clean);
	if (rc == 0)
		return wexec(d, "COMMIT");
	sqlite3_exec(d->w.db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int disk_writer_recount(struct disk *d)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(d->w.db, "SELECT count(*), total(has_text),"
				    " total(CASE WHEN has_text THEN size END) FROM recs", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return wfail(d, rc, "recount");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		d->counts.records = sqlite3_column_int64(st, 0);
		d->counts.texts = sqlite3_column_int64(st, 1);
		d->counts.text_bytes = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return wfail(d, rc, "recount");
	rc = wexec(d, "BEGIN");
	if (rc == 0)
		rc = meta_put(d, "records", d->counts.records);
	if (rc == 0)
		rc = meta_put(d, "texts", d->counts.texts);
	if (rc == 0)
		rc = meta_put(d, "text_bytes", d->counts.text_bytes);
	if (rc == 0)
		return wexec(d, "COMMIT");
	sqlite3_exec(d->w.db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int disk_writer_load(struct disk *d)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(d->w.db, "SELECT key, value FROM meta WHERE key IN"
				" ('records', 'texts', 'text_bytes')", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return wfail(d, rc, "load counts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		int64_t v = sqlite3_column_int64(st, 1);

		if (strcmp(k, "records") == 0)
			d->counts.records = v;
		else if (strcmp(k, "texts") == 0)
			d->counts.texts = v;
		else
			d->counts.text_bytes = v;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return wfail(d, rc, "load counts");

	rc = sqlite3_prepare_v2(d->w.db, "SELECT tid, name FROM types", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return wfail(d, rc, "load types");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int tid = sqlite3_column_int(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		struct dtype *t;

		if (tid <= 0 || tid > DISK_TID_MAX || !name || g_hash_table_contains(d->types, name))
			continue;
		t = g_new0(struct dtype, 1);
		t->tid = tid;
		t->name = g_strdup(name);
		t->prune_before = INT64_MIN;
		g_hash_table_insert(d->types, t->name, t);
		if ((guint)tid >= d->by_tid->len)
			g_ptr_array_set_size(d->by_tid, tid + 1);
		d->by_tid->pdata[tid] = t;
		if (tid >= d->next_tid)
			d->next_tid = tid + 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : wfail(d, rc, "load types");
}

/* --- applying one op ---------------------------------------------------- */

static int apply_put(struct disk *d, struct op *op, struct disk_counts *c)
{
	uint64_t k = DISK_KEY(op->tid, op->id);
	sqlite3_stmt *st = W(d, W_REC_GET);
	bool exists = false, had_text = false;
	int64_t old_mtime = 0, old_size = 0;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)k);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		exists = true;
		old_mtime = sqlite3_column_int64(st, 0);
		had_text = sqlite3_column_int(st, 1) != 0;
		old_size = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return wfail(d, rc, "read record");

	if (exists && op->ms < old_mtime) {
		/* An older version of what is stored (two fetches raced): keep the
		 * newer text; the record was still seen, and listed if it says so. */
		st = W(d, W_REC_SEEN);
		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, (int64_t)k);
		sqlite3_bind_int(st, 2, op->listed);
		sqlite3_bind_int64(st, 3, op->seen_ms);
		return done(d, st);
	}
	st = W(d, exists ? W_REC_UPD : W_REC_INS);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)k);
	sqlite3_bind_int64(st, 2, (int64_t)op->len);
	sqlite3_bind_int64(st, 3, op->ms);
	sqlite3_bind_int(st, 4, op->listed);
	sqlite3_bind_int64(st, 5, op->seen_ms);
	rc = done(d, st);
	if (rc)
		return rc;
	st = W(d, W_TEXT_PUT);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)k);
	sqlite3_bind_blob64(st, 2, op->data, op->len, SQLITE_STATIC);
	rc = done(d, st);
	if (rc)
		return rc;
	c->records += !exists;
	c->texts += !had_text;
	c->text_bytes += (int64_t)op->len - (had_text ? old_size : 0);
	return 0;
}

static int apply_forget(struct disk *d, struct op *op, struct disk_counts *c)
{
	uint64_t k = DISK_KEY(op->tid, op->id);
	sqlite3_stmt *st = W(d, W_REC_GET);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)k);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->records--;
		if (sqlite3_column_int(st, 1)) {
			c->texts--;
			c->text_bytes -= sqlite3_column_int64(st, 2);
		}
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return wfail(d, rc, "read record");
	st = W(d, W_REC_DEL);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)k);
	rc = done(d, st);
	if (rc)
		return rc;
	st = W(d, W_TEXT_DEL);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)k);
	return done(d, st);
}

/* Remove the records of a type last seen before `before`. */
static int prune(struct disk *d, int tid, int64_t before, struct disk_counts *c)
{
	static const enum wstmt steps[] = { W_PRUNE_COUNT, W_PRUNE_TEXTS, W_PRUNE_RECS };

	for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
		sqlite3_stmt *st = W(d, steps[i]);
		int rc;

		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY_LO(tid));
		sqlite3_bind_int64(st, 2, (int64_t)DISK_KEY_HI(tid));
		sqlite3_bind_int64(st, 3, before);
		if (steps[i] != W_PRUNE_COUNT) {
			rc = done(d, st);
			if (rc)
				return rc;
			continue;
		}
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			c->records -= sqlite3_column_int64(st, 0);
			c->texts -= sqlite3_column_int64(st, 1);
			c->text_bytes -= sqlite3_column_int64(st, 2);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return wfail(d, rc, "count records");
	}
	return 0;
}

static int bind_tid_done(struct disk *d, enum wstmt which, int tid, int64_t v)
{
	sqlite3_stmt *st = W(d, which);

	if (!st)
		return -EIO;
	sqlite3_bind_int(st, 1, tid);
	sqlite3_bind_int64(st, 2, v);
	return done(d, st);
}

static int apply_drop(struct disk *d, struct op *op, struct disk_counts *c)
{
	sqlite3_stmt *st;
	char *suffix;
	int rc;

	rc = prune(d, op->tid, INT64_MAX, c);
	if (rc == 0 && op->records_only)
		return bind_tid_done(d, W_TYPE_RESET, op->tid, 0);
	if (rc == 0 && (st = W(d, W_ASSOC_DEL_FROM))) {
		sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY_LO(op->tid));
		sqlite3_bind_int64(st, 2, (int64_t)DISK_KEY_HI(op->tid));
		rc = done(d, st);
	}
	if (rc == 0)
		rc = bind_tid_done(d, W_ASSOC_DEL_TO, op->tid, 0);
	if (rc == 0 && (st = W(d, W_BLOB_DEL_TYPE))) {
		suffix = g_strconcat(":", op->key, NULL);
		sqlite3_bind_text(st, 1, suffix, -1, g_free);
		rc = done(d, st);
	}
	if (rc == 0)
		rc = bind_tid_done(d, W_TYPE_RESET, op->tid, 0);
	return rc;
}

static int apply_drop_all(struct disk *d, struct disk_counts *c)
{
	int rc = wexec(d, "DELETE FROM recs; DELETE FROM texts; DELETE FROM assocs;"
		       " DELETE FROM blobs");

	if (rc == 0)
		rc = bind_tid_done(d, W_TYPE_RESET, -1, 0);
	if (rc == 0)
		memset(c, 0, sizeof(*c));
	return rc;
}

static int apply_op(struct disk *d, struct op *op, struct disk_counts *c)
{
	sqlite3_stmt *st;
	int rc;

	switch (op->kind) {
	case OP_TYPE:
		st = W(d, W_TYPE_INS);
		if (!st)
			return -EIO;
		sqlite3_bind_int(st, 1, op->tid);
		sqlite3_bind_text(st, 2, op->key, -1, SQLITE_STATIC);
		rc = done(d, st);
		if (rc || !op->shown)
			return rc;
		st = W(d, W_TYPE_SHOWN);
		if (!st)
			return -EIO;
		sqlite3_bind_int(st, 1, op->tid);
		sqlite3_bind_text(st, 2, op->shown, -1, SQLITE_STATIC);
		return done(d, st);
	case OP_PUT:
		return apply_put(d, op, c);
	case OP_FORGET:
		return apply_forget(d, op, c);
	case OP_SYNCED:
		return bind_tid_done(d, W_SYNCED, op->tid, op->ms);
	case OP_LISTED:
		rc = prune(d, op->tid, op->ms, c);
		return rc ? rc : bind_tid_done(d, W_LISTED, op->tid, op->ms);
	case OP_ASSOC:
		st = W(d, W_ASSOC_PUT);
		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY(op->tid, op->id));
		sqlite3_bind_int(st, 2, op->to_tid);
		sqlite3_bind_int64(st, 3, op->seen_ms);
		/* A zero-length blob, not NULL, for an empty list. */
		sqlite3_bind_blob64(st, 4, op->len ? op->data : "", op->len, SQLITE_STATIC);
		return done(d, st);
	case OP_BLOB:
		st = W(d, W_BLOB_PUT);
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, op->seen_ms);
		sqlite3_bind_blob64(st, 3, op->len ? op->data : "", op->len, SQLITE_STATIC);
		return done(d, st);
	case OP_DROP:
		return apply_drop(d, op, c);
	case OP_DROP_ALL:
		return apply_drop_all(d, c);
	case OP_NOP:
		return 0;
	}
	return 0;
}

static int apply_touches(struct disk *d, GHashTable *touches)
{
	GHashTableIter it;
	gpointer k, v;
	sqlite3_stmt *st;
	int rc = 0;

	if (!touches)
		return 0;
	g_hash_table_iter_init(&it, touches);
	while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
		st = W(d, W_TOUCH);
		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, (int64_t)GPOINTER_TO_SIZE(k));
		sqlite3_bind_int64(st, 2, (int64_t)GPOINTER_TO_SIZE(v));
		rc = done(d, st);
	}
	return rc;
}

/* Record texts past max_bytes go, least recently used first; their rows stay
 * (size, mtime, listed) so listings keep their attributes. */
static int evict(struct disk *d, struct disk_counts *c, uint64_t *evicted)
{
	while (c->text_bytes > (int64_t)d->max_bytes) {
		int64_t ks[256], sizes[256];
		int n = 0, rc;
		sqlite3_stmt *st = W(d, W_LRU);

		if (!st)
			return -EIO;
		while (n < 256 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			ks[n] = sqlite3_column_int64(st, 0);
			sizes[n++] = sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		if (n < 256 && rc != SQLITE_DONE)
			return wfail(d, rc, "least recently used");
		if (n == 0)
			break; /* counters off; nothing left to evict */
		for (int i = 0; i < n && c->text_bytes > (int64_t)d->max_bytes; i++) {
			st = W(d, W_TEXT_DEL);
			if (!st)
				return -EIO;
			sqlite3_bind_int64(st, 1, ks[i]);
			rc = done(d, st);
			if (rc == 0 && (st = W(d, W_EVICT_REC))) {
				sqlite3_bind_int64(st, 1, ks[i]);
				rc = done(d, st);
			}
			if (rc)
				return rc;
			c->texts--;
			c->text_bytes -= sizes[i];
			(*evicted)++;
		}
	}
	return 0;
}

/* One transaction: the ops of the batch (skipping cancelled ones), the
 * touches, evictions, the counters. */
static int apply_batch(struct disk *d, GPtrArray *batch, GHashTable *touches,
		       struct disk_counts *c, uint64_t *evicted)
{
	int rc = wexec(d, "BEGIN IMMEDIATE");

	if (rc)
		return rc;
	for (guint i = 0; rc == 0 && i < batch->len; i++) {
		struct op *op = batch->pdata[i];

		if (!op->cancelled)
			rc = apply_op(d, op, c);
	}
	if (rc == 0)
		rc = apply_touches(d, touches);
	if (rc == 0)
		rc = evict(d, c, evicted);
	if (rc == 0)
		rc = meta_put(d, "records", c->records);
	if (rc == 0)
		rc = meta_put(d, "texts", c->texts);
	if (rc == 0)
		rc = meta_put(d, "text_bytes", c->text_bytes);
	if (rc == 0)
		rc = wexec(d, "COMMIT");
	if (rc)
		sqlite3_exec(d->w.db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* --- the thread ---------------------------------------------------------- */

static bool has_work(struct disk *d)
{
	return d->queue.length || (d->touches && g_hash_table_size(d->touches));
}

/* Whether the writer should take a batch now rather than wait for flush_ms. */
static bool batch_due(struct disk *d)
{
	return d->stopping || d->flush_seq > d->applied_seq || d->space_waiters ||
	       d->queue.length >= DISK_BATCH_OPS || d->queue_bytes >= DISK_BATCH_BYTES ||
	       (d->touches && g_hash_table_size(d->touches) >= DISK_TOUCH_MAX);
}

static gint64 oldest_us(struct disk *d)
{
	gint64 t = G_MAXINT64;

	if (d->queue.length)
		t = ((struct op *)g_queue_peek_head(&d->queue))->queued_us;
	if (d->touches && g_hash_table_size(d->touches) && d->touch_first_us < t)
		t = d->touch_first_us;
	return t;
}

/* Take a batch off the queue (lock held). */
static void take(struct disk *d, GPtrArray *batch, GHashTable **touches)
{
	size_t bytes = 0;

	while (d->queue.length && batch->len < DISK_BATCH_OPS &&
	       (batch->len == 0 || bytes < DISK_BATCH_BYTES)) {
		struct op *op = g_queue_pop_head(&d->queue);

		bytes += op->len;
		d->queue_bytes -= op->len;
		g_ptr_array_add(batch, op);
	}
	*touches = NULL;
	if (d->touches && g_hash_table_size(d->touches)) {
		*touches = d->touches;
		d->touches = g_hash_table_new(g_direct_hash, g_direct_equal);
	}
}

/* After the batch is committed (rc 0) or lost: reads stop overlaying its
 * writes and stop hiding what its drops and listings removed. Lock held. */
static void settle(struct disk *d, GPtrArray *batch, bool attempted, int rc,
		   const struct disk_counts *c, uint64_t evicted)
{
	for (guint i = 0; i < batch->len; i++) {
		struct op *op = batch->pdata[i];
		struct dtype *t = op->tid > 0 && (guint)op->tid < d->by_tid->len ?
				  d->by_tid->pdata[op->tid] : NULL;

		if (g_hash_table_lookup(d->pending, op) == op)
			g_hash_table_remove(d->pending, op);
		if (t && t->drop_seq == op->seq)
			t->drop_seq = 0;
		if (t && t->prune_seq == op->seq) {
			t->prune_seq = 0;
			t->prune_before = INT64_MIN;
		}
		if (d->drop_all_seq == op->seq)
			d->drop_all_seq = 0;
		if (op->seq > d->applied_seq)
			d->applied_seq = op->seq;
	}
	if (rc == 0) {
		d->counts = *c;
		d->evicted += evicted;
	} else if (attempted) {
		/* What is on disk is every batch before this one: consistent, but
		 * older than what this mount knows. Serve and write nothing more. */
		d->failed = true;
		d->write_errors++;
		log_err("disk cache %s: a write failed (%s); not used for the rest of this mount",
			d->path, g_strerror(-rc));
	}
}

gpointer disk_writer_main(gpointer p)
{
	struct disk *d = p;
	GPtrArray *batch = g_ptr_array_new_with_free_func((GDestroyNotify)disk_op_free);

	g_mutex_lock(&d->lock);
	for (;;) {
		struct disk_counts c;
		GHashTable *touches;
		uint64_t evicted = 0;
		bool failed;
		int rc = -EIO;

		while (!has_work(d) && !d->stopping)
			g_cond_wait(&d->wake, &d->lock);
		if (!has_work(d))
			break; /* stopping, and everything is applied */
		while (!batch_due(d) &&
		       g_cond_wait_until(&d->wake, &d->lock, oldest_us(d) + d->flush_ms * 1000))
			;
		take(d, batch, &touches);
		failed = d->failed;
		c = d->counts;
		g_cond_broadcast(&d->space);
		g_mutex_unlock(&d->lock);

		if (!failed)
			rc = apply_batch(d, batch, touches, &c, &evicted);
		if (rc == 0)
			vacuum(d, batch);

		g_mutex_lock(&d->lock);
		settle(d, batch, !failed, rc, &c, evicted);
		g_cond_broadcast(&d->done);
		g_mutex_unlock(&d->lock);
		g_ptr_array_set_size(batch, 0); /* frees the ops */
		if (touches)
			g_hash_table_destroy(touches);
		g_mutex_lock(&d->lock);
	}
	g_mutex_unlock(&d->lock);
	g_ptr_array_free(batch, TRUE);
	return NULL;
}
