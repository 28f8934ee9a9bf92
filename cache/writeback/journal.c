/* journal.c - the durable writeback journal (SQLite). See journal.h. */
#include "cache/writeback/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache/model/objtypes.h"
#include "cache/writeback/statedir.h"
#include "client/log.h"

#define SCHEMA_VERSION 2

struct journal {
	sqlite3 *db;
	char *path;
	unsigned depth; /* open SAVEPOINTs */
	uint64_t landed; /* rows journal_delete removed since open (a rolled-back
			  * transaction may leave it ahead by that chunk) */
};

static const char *const kind_names[JOP_KIND_COUNT] = {
	"update", "create", "archive", "assoc_add", "assoc_del",
};
static const char *const state_names[JS_STATE_COUNT] = {
	"pending", "in_flight", "failed", "conflict", "in_doubt",
};

const char *jop_kind_name(enum jop_kind k)
{
	return (unsigned)k < JOP_KIND_COUNT ? kind_names[k] : "?";
}

const char *jop_state_name(enum jop_state s)
{
	return (unsigned)s < JS_STATE_COUNT ? state_names[s] : "?";
}

static int name_index(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

void jop_free(struct jop *op)
{
	if (!op)
		return;
	g_free(op->key);
	json_object_put(op->props);
	json_object_put(op->base);
	g_free(op->error);
	g_free(op);
}

static int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

static int fail(struct journal *j, int rc, const char *what)
{
	log_err("journal %s: %s: %s", j->path, what, sqlite3_errmsg(j->db));
	return sql_errno(rc) ? sql_errno(rc) : -EIO;
}

static int exec(struct journal *j, const char *sql)
{
	int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail(j, rc, sql);
}

static int prepare(struct journal *j, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(j->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : fail(j, rc, "prepare");
}

/* Step a statement that returns no rows, then finalize it. */
static int step_done(struct journal *j, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(j, rc, "step");
}

static const char *json_text(json_object *o)
{
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
}

static void bind_json(sqlite3_stmt *st, int i, json_object *o)
{
	const char *s = json_text(o);

	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* --- transactions -------------------------------------------------------- */

int journal_begin(struct journal *j)
{
	int rc = exec(j, "SAVEPOINT jnl");

	if (rc == 0)
		j->depth++;
	return rc;
}

int journal_commit(struct journal *j)
{
	int rc;

	if (j->depth == 0)
		return -EINVAL;
	rc = exec(j, "RELEASE jnl");
	if (rc == 0)
		j->depth--;
	return rc;
}

void journal_rollback(struct journal *j)
{
	if (j->depth == 0)
		return;
	exec(j, "ROLLBACK TO jnl");
	exec(j, "RELEASE jnl");
	j->depth--;
}

/* Finish a self-contained change: commit on success, roll back on failure. */
static int finish(struct journal *j, int rc)
{
	if (rc == 0)
		return journal_commit(j);
	journal_rollback(j);
	return rc;
}

/* --- open and replay ------------------------------------------------------ */

/* The ops table of the current version, named ops or (to migrate into) ops_v2. */
#define OPS_TABLE(name) \
	"CREATE TABLE IF NOT EXISTS " name " (" \
	" seq INTEGER PRIMARY KEY AUTOINCREMENT," \
	" kind TEXT NOT NULL CHECK (kind IN ('update','create','archive','assoc_add','assoc_del'))," \
	" type TEXT NOT NULL," \
	" rec_id INTEGER NOT NULL DEFAULT 0," \
	" key TEXT," \
	" props TEXT," \
	" base TEXT," \
	" to_type TEXT NOT NULL DEFAULT ''," \
	" to_id INTEGER NOT NULL DEFAULT 0," \
	" state TEXT NOT NULL DEFAULT 'pending'" \
	"  CHECK (state IN ('pending','in_flight','failed','conflict','in_doubt'))," \
	" attempts INTEGER NOT NULL DEFAULT 0," \
	" last_error TEXT," \
	" created_ms INTEGER NOT NULL," \
	" updated_ms INTEGER NOT NULL," \
	" sent_ms INTEGER NOT NULL DEFAULT 0," \
	" epoch INTEGER NOT NULL DEFAULT 0);"

static const char indexes_sql[] =
	"CREATE INDEX IF NOT EXISTS ops_rec ON ops(type, rec_id, kind, state);"
	"CREATE INDEX IF NOT EXISTS ops_state ON ops(state, type);";

/* The directory: created 0700 with its parents, then it and everything in
 * it (the -wal and -shm files too) must be the user's own (statedir.h). */
static int make_dir(const char *dir)
{
	g_autofree char *why = NULL;
	int rc;

	if (g_mkdir_with_parents(dir, 0700) != 0)
		return -errno;
	rc = statedir_check(dir, &why);
	if (rc)
		log_err("journal: %s", why);
	return rc;
}

/* The file exists, the user's and mode 0600, before SQLite opens it; SQLite
 * gives its -wal and -shm files the mode of the database file. */
static int make_file(const char *dir)
{
	g_autofree char *why = NULL;
	int fd = statedir_open(dir, "journal.db", O_RDWR | O_CREAT, &why);

	if (fd < 0) {
		log_err("journal: %s", why);
		return fd;
	}
	close(fd);
	return 0;
}

static int user_version(struct journal *j, int *v)
{
	sqlite3_stmt *st;
	int rc = prepare(j, "PRAGMA user_version", &st);

	if (rc)
		return rc;
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : fail(j, rc, "user_version");
}

/* One integer of a query's first row (0 when it has none). */
static int query_int(struct journal *j, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = prepare(j, sql, &st);

	if (rc)
		return rc;
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(j, rc, sql);
}

/* The objectTypeId of a version-1 type column, as SQL: a CASE over the old
 * enum's values (contacts, companies, deals, tickets), `other` for the rest. */
static void v1_type_case(GString *g, const char *col, const char *other)
{
	g_string_append_printf(g, "CASE %s", col);
	for (unsigned i = 0; i < 4; i++)
		g_string_append_printf(g, " WHEN %u THEN '%s'", i, objtypes_standard_at(i)->id);
	g_string_append_printf(g, " ELSE %s END", other);
}

/* Version 1 -> 2: the same rows, type and to_type as objectTypeId text. One
 * transaction: a crash leaves version 1 whole. A type outside the four (no
 * hubfs wrote one) is refused rather than guessed. */
static int migrate_v1(struct journal *j)
{
	GString *copy = g_string_new(NULL);
	int64_t bad = 0, seq = 0;
	int rc = query_int(j, "SELECT count(*) FROM ops WHERE type NOT IN (0, 1, 2, 3)"
			   " OR to_type NOT IN (-1, 0, 1, 2, 3)", &bad);

	if (rc == 0 && bad) {
		log_err("journal %s: version 1 with %" G_GINT64_FORMAT " operations on an object "
			"type this hubfs cannot name; left as it was", j->path, bad);
		rc = -EPROTO;
	}
	if (rc == 0)
		rc = query_int(j, "SELECT seq FROM sqlite_sequence WHERE name = 'ops'", &seq);
	if (rc)
		goto out;
	g_string_append(copy, "INSERT INTO ops_v2 (seq, kind, type, rec_id, key, props, base, to_type,"
			" to_id, state, attempts, last_error, created_ms, updated_ms, sent_ms, epoch)"
			" SELECT seq, kind, ");
	v1_type_case(copy, "type", "NULL");
	g_string_append(copy, ", rec_id, key, props, base, ");
	v1_type_case(copy, "to_type", "''");
	g_string_append(copy, ", to_id, state, attempts, last_error, created_ms, updated_ms, sent_ms,"
			" epoch FROM ops;");
	rc = journal_begin(j);
	if (rc)
		goto out;
	rc = exec(j, OPS_TABLE("ops_v2"));
	if (rc == 0)
		rc = exec(j, copy->str);
	if (rc == 0)
		rc = exec(j, "DROP TABLE ops; ALTER TABLE ops_v2 RENAME TO ops;");
	if (rc == 0)
		rc = exec(j, indexes_sql);
	if (rc == 0 && seq > 0) {
		/* Sequence numbers of rows gone before keep being skipped. */
		g_autofree char *sql = g_strdup_printf("UPDATE sqlite_sequence SET seq = max(seq, %"
						       G_GINT64_FORMAT ") WHERE name = 'ops'", seq);

		rc = exec(j, sql);
	}
	if (rc == 0)
		rc = exec(j, "PRAGMA user_version = 2");
	rc = finish(j, rc);
	if (rc == 0)
		log_notice("journal %s: migrated from version 1 (object types by objectTypeId)",
			   j->path);
out:
	g_string_free(copy, TRUE);
	return rc;
}

/* Bring the schema to SCHEMA_VERSION from v (the file's user_version). */
static int upgrade(struct journal *j, int v)
{
	int64_t has_ops = 0;
	int rc;

	if (v > SCHEMA_VERSION) {
		log_err("journal %s: schema version %d is newer than this hubfs (%d)", j->path, v,
			SCHEMA_VERSION);
		return -EPROTO;
	}
	/* A version-1 journal written before its user_version was (the two were
	 * separate statements) has the table and version 0. */
	rc = query_int(j, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ops'",
		       &has_ops);
	if (rc == 0 && has_ops && v < 2)
		rc = migrate_v1(j);
	if (rc == 0 && !has_ops) {
		rc = journal_begin(j);
		if (rc == 0)
			rc = exec(j, OPS_TABLE("ops"));
		if (rc == 0)
			rc = exec(j, indexes_sql);
		if (rc == 0)
			rc = exec(j, "PRAGMA user_version = 2");
		rc = finish(j, rc);
	}
	return rc;
}

static int replay(struct journal *j, int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc = journal_begin(j);

	if (rc)
		return rc;
	rc = prepare(j, "UPDATE ops SET state = 'in_doubt', updated_ms = ?1 WHERE state = 'in_flight'",
		     &st);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, now_ms);
		rc = step_done(j, st);
	}
	if (rc == 0)
		rc = exec(j, "UPDATE ops SET epoch = 0 WHERE epoch != 0");
	return finish(j, rc);
}

int journal_open(const char *dir, int64_t now_ms, struct journal **out)
{
	struct journal *j;
	int rc, v = 0;

	*out = NULL;
	if (!dir || !*dir)
		return -EINVAL;
	rc = make_dir(dir);
	if (rc) {
		log_err("journal: cannot create %s: %s", dir, g_strerror(-rc));
		return rc;
	}
	j = g_new0(struct journal, 1);
	j->path = g_build_filename(dir, "journal.db", NULL);
	rc = make_file(dir);
	if (rc) {
		log_err("journal: cannot create %s: %s", j->path, g_strerror(-rc));
		goto out_free;
	}
	rc = sqlite3_open_v2(j->path, &j->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		rc = j->db ? fail(j, rc, "open") : -ENOMEM;
		goto out_free;
	}
	sqlite3_busy_timeout(j->db, 1000);
	/* Exclusive locking: one process per journal. WAL + FULL: a commit is
	 * on disk (WAL fsync'd) when it returns. */
	rc = exec(j, "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL;"
		  " PRAGMA synchronous = FULL");
	if (rc == 0)
		rc = exec(j, "BEGIN EXCLUSIVE; COMMIT");
	if (rc == 0)
		rc = user_version(j, &v);
	if (rc == 0)
		rc = upgrade(j, v);
	if (rc == 0)
		rc = replay(j, now_ms);
	if (rc)
		goto out_free;
	*out = j;
	return 0;

out_free:
	if (rc == -EBUSY)
		log_err("journal %s is in use by another process (another mount of this portal?)",
			j->path);
	journal_close(j);
	return rc;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	while (j->depth)
		journal_rollback(j);
	if (j->db)
		sqlite3_close_v2(j->db);
	g_free(j->path);
	g_free(j);
}

/* --- reading rows ---------------------------------------------------------- */

#define COLS "seq, kind, type, rec_id, key, props, base, to_type, to_id, state, attempts," \
	     " last_error, created_ms, updated_ms, sent_ms, epoch"

static json_object *col_json(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	json_object *o = s ? json_tokener_parse(s) : NULL;

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? g_strdup(s) : NULL;
}

/* A type column into a JOP_TYPE_MAX buffer ("" for NULL or too long). */
static void col_copy(sqlite3_stmt *st, int i, char *out)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	if (!s || g_strlcpy(out, s, JOP_TYPE_MAX) >= JOP_TYPE_MAX)
		out[0] = '\0';
}

/* A type argument: an objectTypeId that fits a struct jop. */
static bool type_ok(const char *t)
{
	return t && *t && strlen(t) < JOP_TYPE_MAX;
}

static struct jop *row_read(sqlite3_stmt *st)
{
	struct jop *op = g_new0(struct jop, 1);
	int k = name_index(kind_names, JOP_KIND_COUNT, (const char *)sqlite3_column_text(st, 1));
	int s = name_index(state_names, JS_STATE_COUNT, (const char *)sqlite3_column_text(st, 9));

	op->seq = sqlite3_column_int64(st, 0);
	op->kind = k < 0 ? JOP_UPDATE : (enum jop_kind)k; /* CHECK constraints make k >= 0 */
	col_copy(st, 2, op->type);
	op->id = (uint64_t)sqlite3_column_int64(st, 3);
	op->key = col_text(st, 4);
	op->props = col_json(st, 5);
	op->base = col_json(st, 6);
	if (!op->props && (op->kind == JOP_UPDATE || op->kind == JOP_CREATE))
		op->props = json_object_new_object();
	if (!op->base && op->kind == JOP_UPDATE)
		op->base = json_object_new_object();
	col_copy(st, 7, op->to_type);
	op->to_id = (uint64_t)sqlite3_column_int64(st, 8);
	op->state = s < 0 ? JS_FAILED : (enum jop_state)s;
	op->attempts = sqlite3_column_int(st, 10);
	op->error = col_text(st, 11);
	op->created_ms = sqlite3_column_int64(st, 12);
	op->updated_ms = sqlite3_column_int64(st, 13);
	op->sent_ms = sqlite3_column_int64(st, 14);
	op->epoch = (uint64_t)sqlite3_column_int64(st, 15);
	return op;
}

static void state_list(GString *g, unsigned mask)
{
	bool first = true;

	g_string_append(g, "state IN (");
	for (int s = 0; s < JS_STATE_COUNT; s++) {
		if (!(mask & JS_MASK(s)))
			continue;
		g_string_append_printf(g, "%s'%s'", first ? "" : ",", state_names[s]);
		first = false;
	}
	if (first)
		g_string_append(g, "NULL");
	g_string_append_c(g, ')');
}

int journal_list(struct journal *j, unsigned state_mask, int kind, const char *type, uint64_t id,
		 unsigned limit, GPtrArray **out)
{
	GString *g = g_string_new("SELECT " COLS " FROM ops WHERE ");
	GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	state_list(g, state_mask);
	if (kind >= 0)
		g_string_append_printf(g, " AND kind = '%s'", jop_kind_name(kind));
	if (type)
		g_string_append(g, " AND type = ?1");
	if (id)
		g_string_append(g, " AND rec_id = ?2");
	g_string_append(g, " ORDER BY seq");
	if (limit)
		g_string_append_printf(g, " LIMIT %u", limit);
	rc = prepare(j, g->str, &st);
	g_string_free(g, TRUE);
	if (rc) {
		g_ptr_array_unref(a);
		return rc;
	}
	if (type)
		sqlite3_bind_text(st, 1, type, -1, SQLITE_TRANSIENT);
	if (id)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		g_ptr_array_add(a, row_read(st));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		g_ptr_array_unref(a);
		return fail(j, rc, "list");
	}
	*out = a;
	return 0;
}

int journal_get(struct journal *j, int64_t seq, struct jop **out)
{
	sqlite3_stmt *st;
	int rc = prepare(j, "SELECT " COLS " FROM ops WHERE seq = ?1", &st);

	*out = NULL;
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = row_read(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : fail(j, rc, "get");
}

/* The newest pending row of kind for a record (by id, or by key for creates). */
static int find_pending(struct journal *j, enum jop_kind kind, const char *type, uint64_t id,
			const char *key, struct jop **out)
{
	sqlite3_stmt *st;
	int rc = prepare(j, key ? "SELECT " COLS " FROM ops WHERE state = 'pending' AND kind = ?1"
			      " AND type = ?2 AND key = ?3 ORDER BY seq DESC LIMIT 1"
			    : "SELECT " COLS " FROM ops WHERE state = 'pending' AND kind = ?1"
			      " AND type = ?2 AND rec_id = ?3 ORDER BY seq DESC LIMIT 1", &st);

	*out = NULL;
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, jop_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
	if (key)
		sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(st, 3, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = row_read(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(j, rc, "find");
}

/* --- writing rows ---------------------------------------------------------- */

int journal_insert(struct journal *j, const struct jop *op, int64_t now_ms, int64_t *seq)
{
	sqlite3_stmt *st;
	int rc = prepare(j, "INSERT INTO ops (kind, type, rec_id, key, props, base, to_type, to_id,"
			 " state, attempts, last_error, created_ms, updated_ms, sent_ms, epoch)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
			 &st);

	if (rc)
		return rc;
	if (!type_ok(op->type)) {
		sqlite3_finalize(st);
		return -EINVAL;
	}
	sqlite3_bind_text(st, 1, jop_kind_name(op->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)op->id);
	bind_text(st, 4, op->key);
	bind_json(st, 5, op->props);
	bind_json(st, 6, op->base);
	sqlite3_bind_text(st, 7, op->to_type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)op->to_id);
	sqlite3_bind_text(st, 9, jop_state_name(op->state), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 10, op->attempts);
	bind_text(st, 11, op->error);
	sqlite3_bind_int64(st, 12, now_ms);
	sqlite3_bind_int64(st, 13, op->sent_ms);
	sqlite3_bind_int64(st, 14, (sqlite3_int64)op->epoch);
	rc = step_done(j, st);
	if (rc == 0 && seq)
		*seq = sqlite3_last_insert_rowid(j->db);
	return rc;
}

static bool props_ok(json_object *o)
{
	if (!json_object_is_type(o, json_type_object) || json_object_object_length(o) == 0)
		return false;
	json_object_object_foreach(o, k, v) {
		(void)k;
		if (v && !json_object_is_type(v, json_type_string))
			return false;
	}
	return true;
}

static json_object *str_or_empty(json_object *v)
{
	return json_object_new_string(v ? json_object_get_string(v) : "");
}

int journal_set_props(struct journal *j, int64_t seq, json_object *props, json_object *base,
		      int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc = prepare(j, "UPDATE ops SET props = coalesce(?1, props), base = coalesce(?2, base),"
			 " updated_ms = ?3 WHERE seq = ?4", &st);

	if (rc)
		return rc;
	bind_json(st, 1, props);
	bind_json(st, 2, base);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, seq);
	rc = step_done(j, st);
	if (rc == 0 && sqlite3_changes(j->db) == 0)
		rc = -ENOENT;
	return rc;
}

/* A new edit of a property supersedes it in the record's failed and conflict
 * rows (a retry must not send the old value over the new one); rows left
 * without properties go. */
static int delete_row(struct journal *j, int64_t seq)
{
	sqlite3_stmt *st;
	int rc = prepare(j, "DELETE FROM ops WHERE seq = ?1", &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	return step_done(j, st);
}

int journal_delete(struct journal *j, int64_t seq)
{
	int rc = delete_row(j, seq);

	if (rc == 0 && sqlite3_changes(j->db) > 0)
		j->landed++;
	return rc;
}

uint64_t journal_landed(struct journal *j)
{
	return j->landed;
}

static int supersede(struct journal *j, const char *type, uint64_t id, json_object *changes,
		     int64_t now_ms)
{
	GPtrArray *rows = NULL;
	int rc = journal_list(j, JS_MASK(JS_FAILED) | JS_MASK(JS_CONFLICT), JOP_UPDATE, type, id, 0,
			      &rows);

	for (guint i = 0; rc == 0 && i < rows->len; i++) {
		struct jop *op = rows->pdata[i];
		bool hit = false;

		json_object_object_foreach(changes, k, v) {
			(void)v;
			if (json_object_object_get_ex(op->props, k, NULL)) {
				json_object_object_del(op->props, k);
				json_object_object_del(op->base, k);
				hit = true;
			}
		}
		if (!hit)
			continue;
		if (json_object_object_length(op->props) == 0)
			rc = delete_row(j, op->seq); /* superseded, not landed */
		else
			rc = journal_set_props(j, op->seq, op->props, op->base, now_ms);
	}
	if (rows)
		g_ptr_array_unref(rows);
	return rc;
}

int journal_add_update(struct journal *j, const char *type, uint64_t id, json_object *changes,
		       json_object *bases, uint64_t epoch, int64_t now_ms, int64_t *seq)
{
	struct jop *cur = NULL;
	int rc;

	if (!type_ok(type) || id == 0 || !props_ok(changes) ||
	    (bases && !json_object_is_type(bases, json_type_object)))
		return -EINVAL;
	rc = journal_begin(j);
	if (rc)
		return rc;
	rc = supersede(j, type, id, changes, now_ms);
	if (rc == 0)
		rc = find_pending(j, JOP_UPDATE, type, id, NULL, &cur);
	if (rc == 0 && cur) {
		/* Coalesce: later values win; a property keeps the base of the
		 * earliest edit that changed it. */
		json_object_object_foreach(changes, k, v) {
			json_object *bv;

			if (!json_object_object_get_ex(cur->props, k, NULL) && bases &&
			    json_object_object_get_ex(bases, k, &bv))
				json_object_object_add(cur->base, k, bv ? str_or_empty(bv) : NULL);
			json_object_object_add(cur->props, k, str_or_empty(v));
		}
		rc = journal_set_props(j, cur->seq, cur->props, cur->base, now_ms);
		if (rc == 0 && epoch > cur->epoch) {
			sqlite3_stmt *st;

			rc = prepare(j, "UPDATE ops SET epoch = ?1 WHERE seq = ?2", &st);
			if (rc == 0) {
				sqlite3_bind_int64(st, 1, (sqlite3_int64)epoch);
				sqlite3_bind_int64(st, 2, cur->seq);
				rc = step_done(j, st);
			}
		}
		if (rc == 0 && seq)
			*seq = cur->seq;
	} else if (rc == 0) {
		struct jop op = { .kind = JOP_UPDATE, .id = id, .state = JS_PENDING, .epoch = epoch };

		g_strlcpy(op.type, type, sizeof(op.type));
		op.props = json_object_new_object();
		op.base = json_object_new_object();
		json_object_object_foreach(changes, k, v) {
			json_object *bv;

			json_object_object_add(op.props, k, str_or_empty(v));
			if (bases && json_object_object_get_ex(bases, k, &bv))
				json_object_object_add(op.base, k, bv ? str_or_empty(bv) : NULL);
		}
		rc = journal_insert(j, &op, now_ms, seq);
		json_object_put(op.props);
		json_object_put(op.base);
	}
	jop_free(cur);
	return finish(j, rc);
}

int journal_add_create(struct journal *j, const char *type, const char *key, json_object *props,
		       int64_t now_ms, int64_t *seq)
{
	struct jop *cur = NULL;
	int rc;

	if (!type_ok(type) || !key || !*key || !props_ok(props))
		return -EINVAL;
	rc = journal_begin(j);
	if (rc)
		return rc;
	rc = find_pending(j, JOP_CREATE, type, 0, key, &cur);
	if (rc == 0 && cur) {
		json_object_object_foreach(props, k, v)
			json_object_object_add(cur->props, k, str_or_empty(v));
		rc = journal_set_props(j, cur->seq, cur->props, NULL, now_ms);
		if (rc == 0 && seq)
			*seq = cur->seq;
	} else if (rc == 0) {
		struct jop op = { .kind = JOP_CREATE, .key = (char *)key, .state = JS_PENDING };

		g_strlcpy(op.type, type, sizeof(op.type));
		op.props = json_object_new_object();
		json_object_object_foreach(props, k, v)
			json_object_object_add(op.props, k, str_or_empty(v));
		rc = journal_insert(j, &op, now_ms, seq);
		json_object_put(op.props);
	}
	jop_free(cur);
	return finish(j, rc);
}

int journal_add_archive(struct journal *j, const char *type, uint64_t id, int64_t now_ms,
			int64_t *seq)
{
	struct jop *cur = NULL;
	int rc;

	if (!type_ok(type) || id == 0)
		return -EINVAL;
	rc = journal_begin(j);
	if (rc)
		return rc;
	rc = find_pending(j, JOP_ARCHIVE, type, id, NULL, &cur);
	if (rc == 0 && cur) {
		if (seq)
			*seq = cur->seq;
	} else if (rc == 0) {
		struct jop op = { .kind = JOP_ARCHIVE, .id = id, .state = JS_PENDING };

		g_strlcpy(op.type, type, sizeof(op.type));
		rc = journal_insert(j, &op, now_ms, seq);
	}
	jop_free(cur);
	return finish(j, rc);
}

int journal_add_assoc(struct journal *j, bool add, const char *from, uint64_t id, const char *to,
		      uint64_t to_id, int64_t now_ms, int64_t *seq)
{
	struct jop op = { .kind = add ? JOP_ASSOC_ADD : JOP_ASSOC_DEL, .id = id, .to_id = to_id,
			  .state = JS_PENDING };
	sqlite3_stmt *st;
	int rc;

	if (!type_ok(from) || !type_ok(to) || id == 0 || to_id == 0)
		return -EINVAL;
	g_strlcpy(op.type, from, sizeof(op.type));
	g_strlcpy(op.to_type, to, sizeof(op.to_type));
	rc = journal_begin(j);
	if (rc)
		return rc;
	/* A removal takes every pending write of the pair along (labels too); a
	 * default add only the pair's other default writes. */
	rc = prepare(j, "DELETE FROM ops WHERE state = 'pending' AND kind IN ('assoc_add','assoc_del')"
		     " AND (?5 OR props IS NULL)"
		     " AND ((type = ?1 AND rec_id = ?2 AND to_type = ?3 AND to_id = ?4)"
		     "   OR (type = ?3 AND rec_id = ?4 AND to_type = ?1 AND to_id = ?2))", &st);
	if (rc == 0) {
		sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)id);
		sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)to_id);
		sqlite3_bind_int(st, 5, !add);
		rc = step_done(j, st);
	}
	if (rc == 0)
		rc = journal_insert(j, &op, now_ms, seq);
	return finish(j, rc);
}

int journal_add_assoc_label(struct journal *j, bool add, const char *from, uint64_t id,
			    const char *to, uint64_t to_id, json_object *types, int64_t now_ms,
			    int64_t *seq)
{
	struct jop op = { .kind = add ? JOP_ASSOC_ADD : JOP_ASSOC_DEL, .id = id, .to_id = to_id,
			  .state = JS_PENDING };
	const char *text = json_text(types);
	sqlite3_stmt *st;
	int rc, gone = 0;

	if (!type_ok(from) || !type_ok(to) || id == 0 || to_id == 0 ||
	    !json_object_is_type(types, json_type_object) || !text)
		return -EINVAL;
	g_strlcpy(op.type, from, sizeof(op.type));
	g_strlcpy(op.to_type, to, sizeof(op.to_type));
	rc = journal_begin(j);
	if (rc)
		return rc;
	/* The opposite write of the same label still pending: both are dropped.
	 * The same write pending: nothing more to queue. */
	rc = prepare(j, "DELETE FROM ops WHERE state = 'pending' AND kind = ?5 AND props = ?6"
		     " AND type = ?1 AND rec_id = ?2 AND to_type = ?3 AND to_id = ?4", &st);
	for (int pass = 0; rc == 0 && pass < 2; pass++) {
		if (pass == 1) {
			rc = prepare(j, "SELECT count(*) FROM ops WHERE state = 'pending' AND kind = ?5"
				     " AND props = ?6 AND type = ?1 AND rec_id = ?2 AND to_type = ?3"
				     " AND to_id = ?4", &st);
			if (rc)
				break;
		}
		sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)id);
		sqlite3_bind_text(st, 3, to, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)to_id);
		sqlite3_bind_text(st, 5, kind_names[pass == 0 ? !add ? JOP_ASSOC_ADD : JOP_ASSOC_DEL
								: op.kind], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, text, -1, SQLITE_TRANSIENT);
		if (pass == 0) {
			rc = step_done(j, st);
			gone = rc == 0 ? sqlite3_changes(j->db) : 0;
			if (gone)
				break;
		} else {
			rc = sqlite3_step(st);
			gone = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
			rc = rc == SQLITE_ROW ? 0 : fail(j, rc, "label lookup");
			sqlite3_finalize(st);
		}
	}
	if (rc == 0 && !gone) {
		op.props = json_object_get(types);
		rc = journal_insert(j, &op, now_ms, seq);
		json_object_put(op.props);
	}
	return finish(j, rc);
}

int journal_set_state(struct journal *j, int64_t seq, enum jop_state state, const char *error,
		      int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc;

	if ((unsigned)state >= JS_STATE_COUNT)
		return -EINVAL;
	rc = prepare(j, state == JS_IN_FLIGHT
		     ? "UPDATE ops SET state = ?1, last_error = ?2, updated_ms = ?3, sent_ms = ?3,"
		       " attempts = attempts + 1 WHERE seq = ?4"
		     : "UPDATE ops SET state = ?1, last_error = ?2, updated_ms = ?3 WHERE seq = ?4",
		     &st);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, jop_state_name(state), -1, SQLITE_STATIC);
	bind_text(st, 2, error);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int64(st, 4, seq);
	rc = step_done(j, st);
	if (rc == 0 && sqlite3_changes(j->db) == 0)
		rc = -ENOENT;
	return rc;
}


static bool value_is(json_object *v, const char *s)
{
	if (!v || !s)
		return !v && !s;
	return strcmp(json_object_get_string(v), s) == 0;
}

int journal_rebase(struct journal *j, const char *type, uint64_t id, int64_t after_seq,
		   const char *prop, const char *from, const char *to, int64_t now_ms)
{
	GPtrArray *rows = NULL;
	int rc = journal_begin(j);

	if (rc)
		return rc;
	rc = journal_list(j, JS_MASK(JS_PENDING), JOP_UPDATE, type, id, 0, &rows);
	for (guint i = 0; rc == 0 && i < rows->len; i++) {
		struct jop *op = rows->pdata[i];
		json_object *bv;

		if (op->seq <= after_seq || !json_object_object_get_ex(op->base, prop, &bv) ||
		    !value_is(bv, from))
			continue;
		json_object_object_add(op->base, prop, to ? json_object_new_string(to) : NULL);
		rc = journal_set_props(j, op->seq, NULL, op->base, now_ms);
	}
	if (rows)
		g_ptr_array_unref(rows);
	return finish(j, rc);
}

int journal_counts(struct journal *j, int64_t counts[JS_STATE_COUNT])
{
	sqlite3_stmt *st;
	int rc = prepare(j, "SELECT state, count(*) FROM ops GROUP BY state", &st);

	memset(counts, 0, sizeof(int64_t) * JS_STATE_COUNT);
	if (rc)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int s = name_index(state_names, JS_STATE_COUNT,
				   (const char *)sqlite3_column_text(st, 0));

		if (s >= 0)
			counts[s] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail(j, rc, "counts");
}

int64_t journal_count_pending(struct journal *j, const char *type)
{
	sqlite3_stmt *st;
	int64_t n;
	int rc = prepare(j, type ? "SELECT count(*) FROM ops WHERE state = 'pending' AND type = ?1"
				 : "SELECT count(*) FROM ops WHERE state = 'pending'", &st);

	if (rc)
		return rc;
	if (type)
		sqlite3_bind_text(st, 1, type, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : fail(j, rc, "count");
	sqlite3_finalize(st);
	return n;
}

int journal_groups(struct journal *j, unsigned state_mask, GArray **out)
{
	GString *g = g_string_new("SELECT kind, type, to_type, count(*) FROM ops WHERE ");
	GArray *a = g_array_new(FALSE, TRUE, sizeof(struct jgroup));
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	state_list(g, state_mask);
	g_string_append(g, " GROUP BY kind, type, to_type ORDER BY min(seq)");
	rc = prepare(j, g->str, &st);
	g_string_free(g, TRUE);
	if (rc) {
		g_array_unref(a);
		return rc;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct jgroup grp = { 0 };
		int k = name_index(kind_names, JOP_KIND_COUNT, (const char *)sqlite3_column_text(st, 0));

		if (k < 0)
			continue;
		grp.kind = (enum jop_kind)k;
		col_copy(st, 1, grp.type);
		col_copy(st, 2, grp.to_type);
		grp.count = sqlite3_column_int64(st, 3);
		g_array_append_val(a, grp);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		g_array_unref(a);
		return fail(j, rc, "groups");
	}
	*out = a;
	return 0;
}

int journal_retry(struct journal *j, int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc = journal_begin(j);

	if (rc)
		return rc;
	/* Conflict rows hold only the conflicting properties: dropping their
	 * bases sends the local values over the server's. */
	rc = prepare(j, "UPDATE ops SET base = CASE WHEN state = 'conflict' THEN '{}' ELSE base END,"
		     " state = 'pending', last_error = NULL, updated_ms = ?1"
		     " WHERE state IN ('failed', 'conflict')", &st);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, now_ms);
		rc = step_done(j, st);
	}
	return finish(j, rc);
}

int journal_forget(struct journal *j)
{
	return exec(j, "DELETE FROM ops WHERE state IN ('failed', 'conflict')");
}
