/* journal: durability across a crash, coalescing, replay transitions, file
 * modes, the one-process lock, retry/forget and rebase. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "cache/journal.h"
#include "tests/unit/test.h"

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

	ASSERT_EQ(journal_list(j, mask, -1, -1, 0, 0, &a), 0);
	return a;
}

static void update(struct journal *j, uint64_t id, const char *ch, const char *base, uint64_t epoch,
		   int64_t *seq)
{
	json_object *c = obj(ch), *b = base ? obj(base) : NULL;

	ASSERT_EQ(journal_add_update(j, 0, id, c, b, epoch, 1000, seq), 0);
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
			if (journal_add_update(j, 0, id, c, NULL, id, 1000, NULL) != 0)
				_exit(3);
			json_object_put(c);
		}
		if (journal_add_create(j, 1, "acme.json", p, 1000, NULL) != 0)
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

		ASSERT_EQ(journal_add_create(j, 1, "acme.json", p1, 1000, &c1), 0);
		ASSERT_EQ(journal_add_create(j, 1, "acme.json", p2, 1000, &c2), 0);
		ASSERT_EQ(c1, c2);
		ASSERT_EQ(journal_get(j, c1, &op), 0);
		assert_json(op->props, "{\"name\": \"Acme\", \"city\": \"Y\"}");
		jop_free(op);
		ASSERT_EQ(journal_add_assoc(j, true, 0, 7, 1, 70, 1000, &a1), 0);
		ASSERT_EQ(journal_add_assoc(j, false, 1, 70, 0, 7, 1000, &a2), 0);
		ASSERT_EQ(journal_get(j, a1, &op), -ENOENT);
		ASSERT_EQ(journal_get(j, a2, &op), 0);
		ASSERT_EQ(op->kind, JOP_ASSOC_DEL);
		ASSERT_EQ(op->to_type, 0);
		ASSERT_EQ(op->to_id, 7);
		jop_free(op);
		json_object_put(p1);
		json_object_put(p2);
	}
	/* Bad arguments change nothing. */
	{
		json_object *bad = obj("{\"phone\": 5}"), *empty = obj("{}");

		ASSERT_EQ(journal_add_update(j, 0, 9, bad, NULL, 0, 1000, NULL), -EINVAL);
		ASSERT_EQ(journal_add_update(j, 0, 9, empty, NULL, 0, 1000, NULL), -EINVAL);
		ASSERT_EQ(journal_add_update(j, 0, 0, bad, NULL, 0, 1000, NULL), -EINVAL);
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
	ASSERT_EQ(journal_add_create(j, 1, "acme.json", p, 1000, &sc), 0);
	ASSERT_EQ(journal_add_archive(j, 2, 5, 1000, &sa), 0);
	ASSERT_EQ(journal_add_assoc(j, true, 0, 1, 1, 2, 1000, &sx), 0);
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
	ASSERT_EQ(journal_count_pending(j, 2), 0);

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
	struct jop c = { .kind = JOP_UPDATE, .type = 0, .id = 3, .to_type = -1,
			 .state = JS_CONFLICT };

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
	ASSERT_EQ(journal_rebase(j, 0, 5, s3, "amount", "5", "5.0", 1000), 0); /* not after s3 */
	ASSERT_EQ(journal_get(j, s3, &op), 0);
	assert_json(op->base, "{\"amount\": \"5\"}");
	jop_free(op);
	ASSERT_EQ(journal_rebase(j, 0, 5, s3 - 1, "amount", "5", "5.0", 1000), 0);
	ASSERT_EQ(journal_rebase(j, 0, 5, s3 - 1, "amount", "7", "8", 1000), 0); /* no match */
	ASSERT_EQ(journal_get(j, s3, &op), 0);
	assert_json(op->base, "{\"amount\": \"5.0\"}");
	jop_free(op);
	json_object_put(c.props);
	json_object_put(c.base);
	journal_close(j);
	g_free(dir);
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
	RUN(test_landed_count);
	{
		char *cmd = g_strdup_printf("rm -rf '%s'", tmp);

		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
		g_free(cmd);
	}
	g_free(tmp);
	return 0;
}
