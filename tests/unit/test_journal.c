/* journal: durability across a crash, coalescing, replay transitions, file
 * modes, the one-process lock, retry/forget and rebase. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "cache/writeback/journal.h"
#include "tests/unit/test.h"

/* The journal keys types by objectTypeId. */
#define CONTACTS "0-1"
#define COMPANIES "0-2"
#define DEALS "0-3"

static char *tmp;

static char *state_dir(const char *name)
{
	return g_build_filename(tmp, name, "hubfs", "12345", NULL);
}

static json_object *obj(const char *text)
{
	json_object *o = json_tokener_parse(text);

	ASSERT(o != NULL);
	return o;
}

static void assert_json(json_object *o, const char *want)
{
	json_object *w = obj(want);

	if (!json_object_equal(o, w))
		FAIL("json %s != %s", json_object_to_json_string(o), want);
	json_object_put(w);
}

static GPtrArray *list(struct journal *j, unsigned mask)
{
	GPtrArray *a = NULL;

	ASSERT_EQ(journal_list(j, mask, -1, NULL, 0, 0, &a), 0);
	return a;
}

static void update(struct journal *j, uint64_t id, const char *ch, const char *base, uint64_t epoch,
		   int64_t *seq)
{
	json_object *c = obj(ch), *b = base ? obj(base) : NULL;

	ASSERT_EQ(journal_add_update(j, CONTACTS, id, c, b, epoch, 1000, seq), 0);
	json_object_put(c);
	json_object_put(b);
}

static void test_modes(void)
{
	char *dir = state_dir("modes"), *db;
	struct journal *j = NULL;
	struct stat sb;

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	update(j, 1, "{\"phone\": \"1\"}", NULL, 1, NULL);
	ASSERT_EQ(stat(dir, &sb), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0700);
	db = g_build_filename(dir, "journal.db", NULL);
	ASSERT_EQ(stat(db, &sb), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0600);
	g_free(db);
	db = g_build_filename(dir, "journal.db-wal", NULL);
	if (stat(db, &sb) == 0)
		ASSERT_EQ(sb.st_mode & 07777, 0600);
	g_free(db);
	journal_close(j);

	/* A looser existing directory is tightened. */
	ASSERT_EQ(chmod(dir, 0755), 0);
	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	ASSERT_EQ(stat(dir, &sb), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0700);
	journal_close(j);
	g_free(dir);
}

/* A child queues and is killed without closing anything; every queued row is
 * there when the journal is opened again. */
static void test_durable_across_kill(void)
{
	char *dir = state_dir("kill");
	struct journal *j = NULL;
	GPtrArray *a;
	int status;
	pid_t pid = fork();

	ASSERT(pid >= 0);
	if (pid == 0) {
		json_object *p = json_tokener_parse("{\"name\": \"Acme\"}");

		if (journal_open(dir, 1000, &j) != 0)
			_exit(2);
		for (uint64_t id = 1; id <= 50; id++) {
			json_object *c = json_object_new_object();

			json_object_object_add(c, "phone", json_object_new_string("555"));
			if (journal_add_update(j, CONTACTS, id, c, NULL, id, 1000, NULL) != 0)
				_exit(3);
			json_object_put(c);
		}
		if (journal_add_create(j, COMPANIES, "acme.json", p, 1000, NULL) != 0)
			_exit(4);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT_EQ(journal_open(dir, 2000, &j), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 51);
	for (guint i = 0; i < 50; i++) {
		struct jop *op = a->pdata[i];

		ASSERT_EQ(op->kind, JOP_UPDATE);
		ASSERT_EQ(op->id, i + 1);
		ASSERT_EQ(op->state, JS_PENDING);
		assert_json(op->props, "{\"phone\": \"555\"}");
		ASSERT_EQ(op->epoch, 0); /* reset at replay */
	}
	ASSERT_EQ(((struct jop *)a->pdata[50])->kind, JOP_CREATE);
	ASSERT_STR(((struct jop *)a->pdata[50])->key, "acme.json");
	g_ptr_array_unref(a);
	journal_close(j);
	g_free(dir);
}

static void test_one_process(void)
{
	char *dir = state_dir("lock");
	struct journal *j = NULL;
	int status;
	pid_t pid;

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		struct journal *j2 = NULL;

		_exit(journal_open(dir, 1000, &j2) == -EBUSY ? 0 : 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	journal_close(j);
	g_free(dir);
}

static void test_coalesce(void)
{
	char *dir = state_dir("coalesce");
	struct journal *j = NULL;
	int64_t s1 = 0, s2 = 0, s3 = 0;
	GPtrArray *a;
	struct jop *op;

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	update(j, 7, "{\"phone\": \"1\"}", "{\"phone\": \"0\"}", 3, &s1);
	update(j, 7, "{\"phone\": \"2\", \"jobtitle\": \"CTO\"}",
	       "{\"phone\": \"1\", \"jobtitle\": null}", 5, &s2);
	/* No base given for company: not checked, and a later base does not add one. */
	update(j, 7, "{\"company\": \"A\"}", NULL, 4, NULL);
	update(j, 7, "{\"company\": \"B\"}", "{\"company\": \"A\"}", 4, NULL);
	ASSERT_EQ(s1, s2);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 1);
	op = a->pdata[0];
	assert_json(op->props, "{\"phone\": \"2\", \"jobtitle\": \"CTO\", \"company\": \"B\"}");
	assert_json(op->base, "{\"phone\": \"0\", \"jobtitle\": null}");
	ASSERT_EQ(op->epoch, 5);
	g_ptr_array_unref(a);

	/* Another record is its own row. */
	update(j, 8, "{\"phone\": \"9\"}", "{\"phone\": \"8\"}", 6, &s3);
	ASSERT_NE(s3, s1);

	/* An in-flight row is not merged into: the new edit is a new row. */
	ASSERT_EQ(journal_set_state(j, s1, JS_IN_FLIGHT, NULL, 1100), 0);
	update(j, 7, "{\"phone\": \"3\"}", "{\"phone\": \"2\"}", 9, &s2);
	ASSERT_GT(s2, s3);
	ASSERT_EQ(journal_get(j, s1, &op), 0);
	ASSERT_EQ(op->state, JS_IN_FLIGHT);
	ASSERT_EQ(op->attempts, 1);
	ASSERT_EQ(op->sent_ms, 1100);
	assert_json(op->props, "{\"phone\": \"2\", \"jobtitle\": \"CTO\", \"company\": \"B\"}");
	jop_free(op);

	/* Creates of one key merge; associations: the last op on a pair wins. */
	{
		json_object *p1 = obj("{\"name\": \"Acme\", \"city\": \"X\"}"), *p2 = obj("{\"city\": \"Y\"}");
		int64_t c1, c2, a1, a2;

		ASSERT_EQ(journal_add_create(j, COMPANIES, "acme.json", p1, 1000, &c1), 0);
		ASSERT_EQ(journal_add_create(j, COMPANIES, "acme.json", p2, 1000, &c2), 0);
		ASSERT_EQ(c1, c2);
		ASSERT_EQ(journal_get(j, c1, &op), 0);
		assert_json(op->props, "{\"name\": \"Acme\", \"city\": \"Y\"}");
		jop_free(op);
		ASSERT_EQ(journal_add_assoc(j, true, CONTACTS, 7, COMPANIES, 70, 1000, &a1), 0);
		ASSERT_EQ(journal_add_assoc(j, false, COMPANIES, 70, CONTACTS, 7, 1000, &a2), 0);
		ASSERT_EQ(journal_get(j, a1, &op), -ENOENT);
		ASSERT_EQ(journal_get(j, a2, &op), 0);
		ASSERT_EQ(op->kind, JOP_ASSOC_DEL);
		ASSERT_STR(op->type, COMPANIES);
		ASSERT_STR(op->to_type, CONTACTS);
		ASSERT_EQ(op->to_id, 7);
		jop_free(op);
		json_object_put(p1);
		json_object_put(p2);
	}
	/* Bad arguments change nothing. */
	{
		json_object *bad = obj("{\"phone\": 5}"), *empty = obj("{}");

		ASSERT_EQ(journal_add_update(j, CONTACTS, 9, bad, NULL, 0, 1000, NULL), -EINVAL);
		ASSERT_EQ(journal_add_update(j, CONTACTS, 9, empty, NULL, 0, 1000, NULL), -EINVAL);
		ASSERT_EQ(journal_add_update(j, CONTACTS, 0, bad, NULL, 0, 1000, NULL), -EINVAL);
		/* a type is an objectTypeId that fits struct jop */
		ASSERT_EQ(journal_add_update(j, NULL, 9, empty, NULL, 0, 1000, NULL), -EINVAL);
		ASSERT_EQ(journal_add_archive(j, "", 9, 1000, NULL), -EINVAL);
		ASSERT_EQ(journal_add_archive(j, "2-123456789012345678901234567890", 9, 1000, NULL),
			  -EINVAL);
		ASSERT_EQ(journal_add_assoc(j, true, CONTACTS, 1, NULL, 2, 1000, NULL), -EINVAL);
		json_object_put(bad);
		json_object_put(empty);
	}
	journal_close(j);
	g_free(dir);
}

static void test_replay(void)
{
	char *dir = state_dir("replay");
	struct journal *j = NULL;
	int64_t su, sc, sa, sx, sf, counts[JS_STATE_COUNT];
	json_object *p = obj("{\"name\": \"Acme\"}");
	struct jop *op;

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	update(j, 1, "{\"phone\": \"1\"}", "{\"phone\": \"0\"}", 42, &su);
	ASSERT_EQ(journal_add_create(j, COMPANIES, "acme.json", p, 1000, &sc), 0);
	ASSERT_EQ(journal_add_archive(j, DEALS, 5, 1000, &sa), 0);
	ASSERT_EQ(journal_add_assoc(j, true, CONTACTS, 1, COMPANIES, 2, 1000, &sx), 0);
	update(j, 2, "{\"phone\": \"1\"}", NULL, 1, &sf);
	ASSERT_EQ(journal_begin(j), 0);
	ASSERT_EQ(journal_set_state(j, su, JS_IN_FLIGHT, NULL, 1500), 0);
	ASSERT_EQ(journal_set_state(j, sc, JS_IN_FLIGHT, NULL, 1500), 0);
	ASSERT_EQ(journal_set_state(j, sa, JS_IN_FLIGHT, NULL, 1500), 0);
	ASSERT_EQ(journal_set_state(j, sx, JS_IN_FLIGHT, NULL, 1500), 0);
	ASSERT_EQ(journal_set_state(j, sf, JS_FAILED, "{\"reason\": \"x\"}", 1500), 0);
	ASSERT_EQ(journal_commit(j), 0);
	ASSERT_EQ(journal_counts(j, counts), 0);
	ASSERT_EQ(counts[JS_IN_FLIGHT], 4);
	journal_close(j);

	ASSERT_EQ(journal_open(dir, 3000, &j), 0);
	ASSERT_EQ(journal_get(j, su, &op), 0);
	ASSERT_EQ(op->state, JS_IN_DOUBT); /* sent, answer unknown: looked up first */
	ASSERT_EQ(op->epoch, 0);
	jop_free(op);
	ASSERT_EQ(journal_get(j, sc, &op), 0);
	ASSERT_EQ(op->state, JS_IN_DOUBT);
	ASSERT_EQ(op->attempts, 1);
	ASSERT_EQ(op->sent_ms, 1500);    /* the earliest it can have been applied */
	ASSERT_EQ(op->updated_ms, 3000); /* the latest */
	jop_free(op);
	ASSERT_EQ(journal_get(j, sa, &op), 0);
	ASSERT_EQ(op->state, JS_IN_DOUBT);
	jop_free(op);
	ASSERT_EQ(journal_get(j, sx, &op), 0);
	ASSERT_EQ(op->state, JS_IN_DOUBT);
	jop_free(op);
	ASSERT_EQ(journal_get(j, sf, &op), 0);
	ASSERT_EQ(op->state, JS_FAILED);
	ASSERT_STR(op->error, "{\"reason\": \"x\"}");
	jop_free(op);
	ASSERT_EQ(journal_counts(j, counts), 0);
	ASSERT_EQ(counts[JS_PENDING], 0);
	ASSERT_EQ(counts[JS_IN_DOUBT], 4);
	ASSERT_EQ(counts[JS_FAILED], 1);
	ASSERT_EQ(counts[JS_IN_FLIGHT], 0);
	ASSERT_EQ(journal_count_pending(j, DEALS), 0);

	/* A rolled-back group leaves nothing behind. */
	ASSERT_EQ(journal_begin(j), 0);
	ASSERT_EQ(journal_delete(j, su), 0);
	journal_rollback(j);
	ASSERT_EQ(journal_get(j, su, &op), 0);
	jop_free(op);
	journal_close(j);
	json_object_put(p);
	g_free(dir);
}

static void test_retry_forget_rebase(void)
{
	char *dir = state_dir("retry");
	struct journal *j = NULL;
	int64_t s1, s2, s3, counts[JS_STATE_COUNT];
	struct jop *op;
	struct jop c = { .kind = JOP_UPDATE, .type = CONTACTS, .id = 3, .state = JS_CONFLICT };

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	c.props = obj("{\"phone\": \"mine\"}");
	c.base = obj("{\"phone\": \"old\"}");
	ASSERT_EQ(journal_insert(j, &c, 1000, &s1), 0);
	update(j, 4, "{\"phone\": \"x\"}", NULL, 1, &s2);
	ASSERT_EQ(journal_set_state(j, s2, JS_FAILED, NULL, 1000), 0);
	ASSERT_EQ(journal_retry(j, 2000), 0);
	ASSERT_EQ(journal_get(j, s1, &op), 0);
	ASSERT_EQ(op->state, JS_PENDING);
	assert_json(op->base, "{}"); /* retry of a conflict: the local value is sent */
	assert_json(op->props, "{\"phone\": \"mine\"}");
	jop_free(op);
	ASSERT_EQ(journal_get(j, s2, &op), 0);
	ASSERT_EQ(op->state, JS_PENDING);
	jop_free(op);

	/* A newer edit supersedes the properties of failed and conflict rows. */
	ASSERT_EQ(journal_set_state(j, s1, JS_CONFLICT, NULL, 1000), 0);
	update(j, 3, "{\"jobtitle\": \"other\"}", NULL, 1, NULL);
	ASSERT_EQ(journal_get(j, s1, &op), 0);
	ASSERT_EQ(op->state, JS_CONFLICT);
	jop_free(op);
	{
		int64_t sx;
		struct jop two = c;

		two.props = obj("{\"phone\": \"a\", \"company\": \"b\"}");
		two.base = obj("{\"phone\": \"0\", \"company\": \"1\"}");
		two.state = JS_FAILED;
		ASSERT_EQ(journal_insert(j, &two, 1000, &sx), 0);
		update(j, 3, "{\"phone\": \"newest\"}", NULL, 1, NULL);
		ASSERT_EQ(journal_get(j, s1, &op), -ENOENT); /* conflict row emptied: gone */
		ASSERT_EQ(journal_get(j, sx, &op), 0);
		assert_json(op->props, "{\"company\": \"b\"}");
		assert_json(op->base, "{\"company\": \"1\"}");
		ASSERT_EQ(op->state, JS_FAILED);
		jop_free(op);
		json_object_put(two.props);
		json_object_put(two.base);
		/* Put the conflict row back for forget below. */
		ASSERT_EQ(journal_insert(j, &c, 1000, &s1), 0);
	}
	ASSERT_EQ(journal_forget(j), 0);
	ASSERT_EQ(journal_counts(j, counts), 0);
	ASSERT_EQ(counts[JS_CONFLICT], 0);
	ASSERT_EQ(counts[JS_FAILED], 0);
	ASSERT_EQ(counts[JS_PENDING], 2);

	/* Rebase: a later edit made on top of a value that became v2 on the server. */
	update(j, 5, "{\"amount\": \"10\"}", "{\"amount\": \"5\"}", 1, &s3);
	ASSERT_EQ(journal_rebase(j, CONTACTS, 5, s3, "amount", "5", "5.0", 1000), 0); /* not after s3 */
	ASSERT_EQ(journal_get(j, s3, &op), 0);
	assert_json(op->base, "{\"amount\": \"5\"}");
	jop_free(op);
	ASSERT_EQ(journal_rebase(j, CONTACTS, 5, s3 - 1, "amount", "5", "5.0", 1000), 0);
	ASSERT_EQ(journal_rebase(j, CONTACTS, 5, s3 - 1, "amount", "7", "8", 1000), 0); /* no match */
	ASSERT_EQ(journal_get(j, s3, &op), 0);
	assert_json(op->base, "{\"amount\": \"5.0\"}");
	jop_free(op);
	json_object_put(c.props);
	json_object_put(c.base);
	journal_close(j);
	g_free(dir);
}

/* The version-1 schema, as hubfs wrote it before types were objectTypeIds. */
static const char v1_sql[] =
	"CREATE TABLE ops ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind TEXT NOT NULL CHECK (kind IN ('update','create','archive','assoc_add','assoc_del')),"
	" type INTEGER NOT NULL, rec_id INTEGER NOT NULL DEFAULT 0, key TEXT, props TEXT,"
	" base TEXT, to_type INTEGER NOT NULL DEFAULT -1, to_id INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'pending'"
	"  CHECK (state IN ('pending','in_flight','failed','conflict','in_doubt')),"
	" attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0,"
	" epoch INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX ops_rec ON ops(type, rec_id, kind, state);"
	"CREATE INDEX ops_state ON ops(state, type);";

/* A version-1 journal (user_version `version`) in dir holding `rows` (SQL
 * after the schema), as an earlier hubfs left it. */
static void plant_v1(const char *dir, int version, const char *rows)
{
	g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
	g_autofree char *sql = g_strdup_printf("%s%s PRAGMA user_version = %d;", v1_sql, rows,
					       version);
	sqlite3 *d = NULL;

	ASSERT_EQ(g_mkdir_with_parents(dir, 0700), 0);
	ASSERT_EQ(sqlite3_open(db, &d), SQLITE_OK);
	if (sqlite3_exec(d, sql, NULL, NULL, NULL) != SQLITE_OK)
		FAIL("planting a v1 journal: %s", sqlite3_errmsg(d));
	sqlite3_close(d);
	ASSERT_EQ(chmod(db, 0600), 0);
}

static int user_version_of(const char *dir)
{
	g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
	sqlite3_stmt *st;
	sqlite3 *d = NULL;
	int v;

	ASSERT_EQ(sqlite3_open(db, &d), SQLITE_OK);
	ASSERT_EQ(sqlite3_prepare_v2(d, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(d);
	return v;
}

/* Rows of every kind and state a v1 journal held, with the old integer types
 * (0 contacts, 1 companies, 2 deals, 3 tickets; to_type -1 for none). Seq 90
 * was taken and deleted: a new row must not reuse it. */
static const char v1_rows[] =
	"INSERT INTO ops (seq, kind, type, rec_id, props, base, state, created_ms, updated_ms, epoch)"
	" VALUES (3, 'update', 0, 101, '{\"phone\":\"+1 555 0100\"}', '{\"phone\":null}',"
	" 'pending', 1000, 1000, 7);"
	"INSERT INTO ops (seq, kind, type, key, props, state, attempts, created_ms, updated_ms,"
	" sent_ms) VALUES (4, 'create', 2, 'big deal.json#1', '{\"dealname\":\"Big\"}',"
	" 'in_flight', 1, 1000, 1500, 1500);"
	"INSERT INTO ops (seq, kind, type, rec_id, state, created_ms, updated_ms)"
	" VALUES (5, 'archive', 3, 501, 'pending', 1000, 1000);"
	"INSERT INTO ops (seq, kind, type, rec_id, to_type, to_id, state, created_ms, updated_ms)"
	" VALUES (6, 'assoc_add', 0, 101, 1, 201, 'pending', 1000, 1000);"
	"INSERT INTO ops (seq, kind, type, rec_id, to_type, to_id, state, created_ms, updated_ms)"
	" VALUES (7, 'assoc_del', 2, 301, 0, 102, 'pending', 1000, 1000);"
	"INSERT INTO ops (seq, kind, type, rec_id, props, base, state, last_error, created_ms,"
	" updated_ms) VALUES (8, 'update', 1, 201, '{\"city\":\"X\"}', '{}', 'failed',"
	" '{\"reason\":\"r\"}', 1000, 1000);"
	"INSERT INTO ops (seq, kind, type, created_ms, updated_ms)"
	" VALUES (90, 'archive', 0, 1000, 1000);"
	"DELETE FROM ops WHERE seq = 90;";

static void test_migrate_v1(void)
{
	char *dir = state_dir("v1");
	struct journal *j = NULL;
	GPtrArray *a;
	struct jop *op;
	int64_t seq = 0;
	json_object *p = obj("{\"name\": \"New\"}");

	plant_v1(dir, 1, v1_rows);
	ASSERT_EQ(journal_open(dir, 3000, &j), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 6);
	op = a->pdata[0];
	ASSERT_EQ(op->seq, 3);
	ASSERT_EQ(op->kind, JOP_UPDATE);
	ASSERT_STR(op->type, CONTACTS);
	ASSERT_STR(op->to_type, "");
	ASSERT_EQ(op->id, 101);
	ASSERT_EQ(op->state, JS_PENDING);
	ASSERT_EQ(op->epoch, 0); /* reset at replay, as always */
	assert_json(op->props, "{\"phone\": \"+1 555 0100\"}");
	assert_json(op->base, "{\"phone\": null}");
	op = a->pdata[1];
	ASSERT_EQ(op->kind, JOP_CREATE);
	ASSERT_STR(op->type, DEALS);
	ASSERT_STR(op->key, "big deal.json#1");
	ASSERT_EQ(op->state, JS_IN_DOUBT); /* it was in flight: looked up first */
	ASSERT_EQ(op->sent_ms, 1500);
	assert_json(op->props, "{\"dealname\": \"Big\"}");
	op = a->pdata[2];
	ASSERT_EQ(op->kind, JOP_ARCHIVE);
	ASSERT_STR(op->type, "0-5"); /* tickets */
	ASSERT_EQ(op->id, 501);
	op = a->pdata[3];
	ASSERT_EQ(op->kind, JOP_ASSOC_ADD);
	ASSERT_STR(op->type, CONTACTS);
	ASSERT_STR(op->to_type, COMPANIES);
	ASSERT_EQ(op->to_id, 201);
	op = a->pdata[4];
	ASSERT_EQ(op->kind, JOP_ASSOC_DEL);
	ASSERT_STR(op->type, DEALS);
	ASSERT_STR(op->to_type, CONTACTS);
	op = a->pdata[5];
	ASSERT_STR(op->type, COMPANIES);
	ASSERT_EQ(op->state, JS_FAILED);
	ASSERT_STR(op->error, "{\"reason\":\"r\"}");
	g_ptr_array_unref(a);
	/* The migrated rows work as any: found by type, merged into. */
	ASSERT_EQ(journal_count_pending(j, CONTACTS), 2);
	update(j, 101, "{\"jobtitle\": \"CTO\"}", NULL, 1, &seq);
	ASSERT_EQ(seq, 3);
	ASSERT_EQ(journal_add_create(j, COMPANIES, "new.json", p, 3000, &seq), 0);
	ASSERT_GT(seq, 90);
	journal_close(j);
	ASSERT_EQ(user_version_of(dir), 2);
	/* Opened again: version 2 as it is. */
	ASSERT_EQ(journal_open(dir, 4000, &j), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 7);
	g_ptr_array_unref(a);
	journal_close(j);
	json_object_put(p);
	g_free(dir);
}

/* The table without its version (written by a hubfs that set user_version
 * in a second statement, and was killed between them) is version 1 too. */
static void test_migrate_unversioned(void)
{
	char *dir = state_dir("v0");
	struct journal *j = NULL;
	GPtrArray *a;

	plant_v1(dir, 0, v1_rows);
	ASSERT_EQ(journal_open(dir, 3000, &j), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 6);
	ASSERT_STR(((struct jop *)a->pdata[0])->type, CONTACTS);
	g_ptr_array_unref(a);
	journal_close(j);
	ASSERT_EQ(user_version_of(dir), 2);
	g_free(dir);
}

/* A v1 row with a type no hubfs wrote cannot be named: nothing is guessed or
 * changed, the journal stays version 1 and is not opened. A newer version is
 * refused the same way. */
static void test_migrate_refused(void)
{
	char *dir = state_dir("v1-odd"), *newer = state_dir("v3");
	struct journal *j = NULL;

	plant_v1(dir, 1, "INSERT INTO ops (kind, type, rec_id, created_ms, updated_ms)"
			 " VALUES ('archive', 7, 5, 1000, 1000);");
	ASSERT_EQ(journal_open(dir, 3000, &j), -EPROTO);
	ASSERT(j == NULL);
	ASSERT_EQ(user_version_of(dir), 1);
	plant_v1(newer, 3, "");
	ASSERT_EQ(journal_open(newer, 3000, &j), -EPROTO);
	ASSERT_EQ(user_version_of(newer), 3);
	g_free(dir);
	g_free(newer);
}

/* journal_landed counts the rows journal_delete removed (operations that
 * landed), not rows superseded by a newer edit, nor deletes of nothing. */
static void test_landed_count(void)
{
	char *dir = state_dir("landed");
	struct journal *j = NULL;
	int64_t s1 = 0, s2 = 0;

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	ASSERT_EQ(journal_landed(j), 0);
	update(j, 7, "{\"phone\": \"1\"}", NULL, 1, &s1);
	update(j, 8, "{\"phone\": \"2\"}", NULL, 1, &s2);
	ASSERT_EQ(journal_delete(j, s1), 0);
	ASSERT_EQ(journal_landed(j), 1);
	ASSERT_EQ(journal_delete(j, s1), 0); /* already gone */
	ASSERT_EQ(journal_landed(j), 1);
	/* A failed row whose only property a newer edit changes is dropped. */
	ASSERT_EQ(journal_set_state(j, s2, JS_FAILED, NULL, 1100), 0);
	update(j, 8, "{\"phone\": \"3\"}", NULL, 2, NULL);
	ASSERT_EQ(journal_get(j, s2, &(struct jop *){ NULL }), -ENOENT);
	ASSERT_EQ(journal_landed(j), 1);
	journal_close(j);
	g_free(dir);
}

/* Label rows: the opposite write of the same label cancels, the same write
 * twice is one row, other labels and the pair's default add stay; a removal
 * of the pair takes every pending row of it along. */
static void test_labels(void)
{
	char *dir = state_dir("labels");
	struct journal *j = NULL;
	json_object *l30 = obj("{\"types\": [{\"associationCategory\": \"USER_DEFINED\","
			       " \"associationTypeId\": 30}], \"label\": \"Billing contact\"}");
	json_object *l1 = obj("{\"types\": [{\"associationCategory\": \"HUBSPOT_DEFINED\","
			      " \"associationTypeId\": 1}], \"label\": \"Primary\"}");
	int64_t s = 0;
	GPtrArray *a;

	ASSERT_EQ(journal_open(dir, 1000, &j), 0);
	ASSERT_EQ(journal_add_assoc_label(j, true, CONTACTS, 7, COMPANIES, 9, l30, 1000, &s), 0);
	ASSERT_EQ(journal_add_assoc_label(j, true, CONTACTS, 7, COMPANIES, 9, l30, 1000, NULL), 0);
	ASSERT_EQ(journal_add_assoc_label(j, false, CONTACTS, 7, COMPANIES, 9, l1, 1000, NULL), 0);
	ASSERT_EQ(journal_add_assoc(j, true, CONTACTS, 7, DEALS, 3, 1000, NULL), 0);
	ASSERT_EQ(journal_add_assoc(j, true, CONTACTS, 7, COMPANIES, 9, 1000, NULL), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 4); /* label 30 once, label 1 removal, two default adds */
	ASSERT_EQ(((struct jop *)a->pdata[0])->seq, s);
	assert_json(((struct jop *)a->pdata[0])->props, json_object_to_json_string(l30));
	ASSERT_EQ(((struct jop *)a->pdata[1])->kind, JOP_ASSOC_DEL);
	ASSERT(((struct jop *)a->pdata[3])->props == NULL);
	g_ptr_array_unref(a);
	/* removing label 30 again cancels its pending add */
	ASSERT_EQ(journal_add_assoc_label(j, false, CONTACTS, 7, COMPANIES, 9, l30, 1000, NULL), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 3);
	g_ptr_array_unref(a);
	/* a label row in flight is not cancelled: the new write is a row of its own */
	ASSERT_EQ(journal_add_assoc_label(j, true, CONTACTS, 7, COMPANIES, 9, l30, 1000, &s), 0);
	ASSERT_EQ(journal_set_state(j, s, JS_IN_FLIGHT, NULL, 1100), 0);
	ASSERT_EQ(journal_add_assoc_label(j, false, CONTACTS, 7, COMPANIES, 9, l30, 1000, NULL), 0);
	a = list(j, JS_ANY);
	ASSERT_EQ(a->len, 5);
	g_ptr_array_unref(a);
	/* removing the pair drops its pending rows, labels and default add alike */
	ASSERT_EQ(journal_add_assoc(j, false, COMPANIES, 9, CONTACTS, 7, 1000, NULL), 0);
	a = list(j, JS_MASK(JS_PENDING));
	ASSERT_EQ(a->len, 2); /* the deals add, the removal */
	ASSERT_STR(((struct jop *)a->pdata[0])->to_type, DEALS);
	ASSERT_EQ(((struct jop *)a->pdata[1])->kind, JOP_ASSOC_DEL);
	g_ptr_array_unref(a);
	ASSERT_EQ(journal_add_assoc_label(j, true, CONTACTS, 7, COMPANIES, 9, NULL, 1000, NULL),
		  -EINVAL);
	json_object_put(l30);
	json_object_put(l1);
	journal_close(j);
	g_free(dir);
}

int main(void)
{
	tmp = g_dir_make_tmp("hubfs-journal-XXXXXX", NULL);
	ASSERT(tmp != NULL);
	RUN(test_modes);
	RUN(test_durable_across_kill);
	RUN(test_one_process);
	RUN(test_coalesce);
	RUN(test_replay);
	RUN(test_retry_forget_rebase);
	RUN(test_migrate_v1);
	RUN(test_migrate_unversioned);
	RUN(test_migrate_refused);
	RUN(test_landed_count);
	RUN(test_labels);
	{
		char *cmd = g_strdup_printf("rm -rf '%s'", tmp);

		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
		g_free(cmd);
	}
	g_free(tmp);
	return 0;
}
