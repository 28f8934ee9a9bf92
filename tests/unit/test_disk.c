/* disk: the on-disk cache. Round trips, reads of queued writes, listings and
 * their pruning, LRU eviction of texts, drops, associations and account data,
 * file modes, discarding what cannot be used, crash safety of a refresh, the
 * bounded queue. `test_disk --scale N` measures N records (suite scale). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "cache/disk.h"
#include "tests/unit/test.h"

static char *tmp;
static const char csv[] = "email,firstname,lastname";

static char *cache_dir(const char *name)
{
	return g_build_filename(tmp, name, "hubfs", "12345", NULL);
}

static struct disk *open_at(const char *dir, uint64_t portal, size_t max_bytes, int64_t flush_ms,
			    const char **notice)
{
	struct disk_opts o = { .dir = dir, .portal_id = portal, .max_bytes = max_bytes,
			       .flush_ms = flush_ms };
	struct disk *d = NULL;
	const char *n = NULL;

	ASSERT_EQ(disk_open(&o, &d, &n), 0);
	ASSERT(d != NULL);
	if (notice)
		*notice = n;
	else if (n)
		FAIL("unexpected notice: %s", n);
	return d;
}

static struct disk *open_simple(const char *dir)
{
	return open_at(dir, 12345, 0, 0, NULL);
}

static void type_open(struct disk *d, const char *type, const char *shown, struct disk_type *st,
		      bool want_dropped)
{
	struct disk_type dummy;
	bool dropped = !want_dropped;

	ASSERT_EQ(disk_type_open(d, type, shown, st ? st : &dummy, &dropped), 0);
	ASSERT_EQ(dropped, want_dropped);
}

static char *rec_text(uint64_t id, int gen)
{
	return g_strdup_printf("{\"id\": \"%" PRIu64 "\", \"properties\": {\"gen\": \"%d\"}}\n",
			       id, gen);
}

static void put(struct disk *d, const char *type, uint64_t id, int gen, bool listed, int64_t seen)
{
	char *t = rec_text(id, gen);

	disk_put_record(d, type, id, t, strlen(t), 1000 + gen, listed, seen);
	g_free(t);
}

/* The record's text is that of generation gen (mtime 1000 + gen). */
static void assert_rec(struct disk *d, const char *type, uint64_t id, int gen)
{
	char *text = NULL, *want = rec_text(id, gen);
	int64_t mtime = 0;
	size_t len = 0;

	ASSERT_EQ(disk_get_record(d, type, id, &text, &len, &mtime), 0);
	ASSERT_STR(text, want);
	ASSERT_EQ(len, strlen(want));
	ASSERT_EQ(text[len], '\0');
	ASSERT_EQ(mtime, 1000 + gen);
	g_free(text);
	g_free(want);
}

static void assert_no_rec(struct disk *d, const char *type, uint64_t id)
{
	char *text = NULL;
	int64_t mtime;
	size_t len;

	ASSERT_EQ(disk_get_record(d, type, id, &text, &len, &mtime), -ENOENT);
	ASSERT(text == NULL);
}

/* The listing holds exactly ids[0..n), ascending. */
static GArray *assert_listing(struct disk *d, const char *type, const uint64_t *ids, size_t n)
{
	GArray *a = NULL;

	ASSERT_EQ(disk_listing_load(d, type, &a), 0);
	ASSERT(a != NULL);
	if (a->len != n) {
		for (guint i = 0; i < a->len; i++)
			fprintf(stderr, " %" PRIu64, (uint64_t)g_array_index(a, struct disk_lent, i).id);
		fputc('\n', stderr);
	}
	ASSERT_EQ(a->len, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_EQ(g_array_index(a, struct disk_lent, i).id, ids[i]);
	return a;
}

static int64_t stat_int(struct disk *d, const char *field)
{
	json_object *o = json_object_new_object(), *disk, *v;
	int64_t n;

	disk_stats(d, o);
	ASSERT(json_object_object_get_ex(o, "disk", &disk));
	ASSERT(json_object_object_get_ex(disk, field, &v));
	n = json_object_get_int64(v);
	json_object_put(o);
	return n;
}

static char *db_path(const char *dir)
{
	return g_build_filename(dir, "cache.db", NULL);
}

/* One integer from the database file, read with SQLite directly. */
static int64_t sql_int(const char *dir, const char *sql)
{
	char *path = g_build_filename(dir, "cache.db", NULL);
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	int64_t v = -1;

	ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	g_free(path);
	return v;
}

static void sql_exec(const char *dir, const char *sql)
{
	char *path = g_build_filename(dir, "cache.db", NULL);
	sqlite3 *db = NULL;

	ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	g_free(path);
}

/* The counters in the stats match what the file holds (after a flush). */
static void assert_counts(struct disk *d, const char *dir)
{
	ASSERT_EQ(disk_flush(d), 0);
	ASSERT_EQ(stat_int(d, "records"), sql_int(dir, "SELECT count(*) FROM recs"));
	ASSERT_EQ(stat_int(d, "texts"), sql_int(dir, "SELECT count(*) FROM texts"));
	ASSERT_EQ(stat_int(d, "texts"), sql_int(dir, "SELECT count(*) FROM recs WHERE has_text"));
	ASSERT_EQ(stat_int(d, "bytes"), sql_int(dir, "SELECT total(length(text)) FROM texts"));
}

/* --- tests ------------------------------------------------------------------ */

static void test_modes(void)
{
	char *dir = cache_dir("modes"), *p, *target;
	struct disk *d, *d2 = NULL;
	struct disk_opts o = { .dir = dir, .portal_id = 12345 };
	const char *sfx[] = { "cache.db", "cache.db-wal", "cache.db-shm", "cache.lock" };
	struct stat sb;
	mode_t old = umask(0);

	d = open_simple(dir);
	type_open(d, "0-1", csv, NULL, false);
	put(d, "0-1", 1, 1, true, 10);
	ASSERT_EQ(disk_flush(d), 0);
	ASSERT_EQ(stat(dir, &sb), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0700);
	for (size_t i = 0; i < G_N_ELEMENTS(sfx); i++) {
		p = g_build_filename(dir, sfx[i], NULL);
		ASSERT_EQ(stat(p, &sb), 0);
		if ((sb.st_mode & 07777) != 0600)
			FAIL("%s has mode %o", p, sb.st_mode & 07777);
		g_free(p);
	}
	/* One process (or one open) per cache. */
	ASSERT_EQ(disk_open(&o, &d2, NULL), -EBUSY);
	ASSERT(d2 == NULL);
	disk_close(d);

	/* A looser directory is tightened. */
	ASSERT_EQ(chmod(dir, 0755), 0);
	d = open_simple(dir);
	ASSERT_EQ(stat(dir, &sb), 0);
	ASSERT_EQ(sb.st_mode & 07777, 0700);
	disk_close(d);
	umask(old);

	/* A symbolic link where the database goes is refused, and the file it
	 * points at is left alone. */
	p = g_build_filename(dir, "cache.db", NULL);
	target = g_build_filename(tmp, "victim", NULL);
	ASSERT(g_file_set_contents(target, "precious", -1, NULL));
	ASSERT_EQ(unlink(p), 0);
	ASSERT_EQ(symlink(target, p), 0);
	ASSERT_EQ(disk_open(&o, &d2, NULL), -ELOOP);
	ASSERT(d2 == NULL);
	{
		char *c = NULL;

		ASSERT(g_file_get_contents(target, &c, NULL, NULL));
		ASSERT_STR(c, "precious");
		g_free(c);
	}
	ASSERT_EQ(lstat(p, &sb), 0);
	ASSERT(S_ISLNK(sb.st_mode));
	ASSERT_EQ(unlink(p), 0);
	g_free(target);
	g_free(p);
	g_free(dir);
}

static void test_roundtrip(void)
{
	char *dir = cache_dir("roundtrip");
	struct disk_type st;
	struct disk *d = open_simple(dir);
	uint64_t ids[] = { 5, 7 };

	type_open(d, "0-1", csv, &st, false);
	ASSERT_EQ(st.sync_wall_ms, 0);
	ASSERT_EQ(st.relist_wall_ms, 0);
	ASSERT(!st.complete);
	ASSERT_EQ(st.listed, 0);
	assert_no_rec(d, "0-1", 5);
	put(d, "0-1", 5, 1, true, 100);
	put(d, "0-1", 7, 1, true, 100);
	put(d, "0-1", 9, 1, false, 100); /* read by id, not (known to be) listed */
	assert_rec(d, "0-1", 5, 1);       /* queued or applied: either way */
	ASSERT_EQ(disk_flush(d), 0);
	assert_rec(d, "0-1", 5, 1);
	assert_rec(d, "0-1", 9, 1);
	put(d, "0-1", 5, 2, false, 200);  /* a newer version; still listed */
	disk_type_synced(d, "0-1", 150);
	disk_forget_record(d, "0-1", 9);
	assert_no_rec(d, "0-1", 9);
	g_array_unref(assert_listing(d, "0-1", ids, 2));
	assert_counts(d, dir);
	disk_close(d);

	d = open_simple(dir);
	/* Records of a type not declared in this process are not served. */
	assert_no_rec(d, "0-1", 5);
	type_open(d, "0-1", csv, &st, false);
	ASSERT_EQ(st.sync_wall_ms, 150);
	ASSERT_EQ(st.listed, 2);
	ASSERT(!st.complete);
	assert_rec(d, "0-1", 5, 2);
	assert_rec(d, "0-1", 7, 1);
	assert_no_rec(d, "0-1", 9);
	assert_no_rec(d, "0-1", 6);
	/* An older version (two fetches raced) does not replace a newer one. */
	put(d, "0-1", 5, 1, true, 300);
	ASSERT_EQ(disk_flush(d), 0);
	assert_rec(d, "0-1", 5, 2);
	/* Another type's ids are apart. */
	type_open(d, "0-2", "name,domain", NULL, false);
	assert_no_rec(d, "0-2", 5);
	put(d, "0-2", 5, 7, true, 300);
	ASSERT_EQ(disk_flush(d), 0);
	assert_rec(d, "0-2", 5, 7);
	assert_rec(d, "0-1", 5, 2);
	/* The largest id there is. */
	put(d, "0-2", (UINT64_C(1) << 48) - 1, 3, true, 300);
	ASSERT_EQ(disk_flush(d), 0);
	assert_rec(d, "0-2", (UINT64_C(1) << 48) - 1, 3);
	assert_counts(d, dir);
	disk_close(d);
	g_free(dir);
}

/* Writes still in the queue are what reads see. */
static void test_pending(void)
{
	char *dir = cache_dir("pending");
	struct disk *d = open_at(dir, 12345, 0, 600000, NULL); /* applied only on flush */
	uint64_t l1[] = { 1, 2, 3 }, l2[] = { 1, 3, 4 };
	GArray *a;

	type_open(d, "0-1", csv, NULL, false);
	for (uint64_t id = 1; id <= 3; id++)
		put(d, "0-1", id, 1, true, 100);
	ASSERT_EQ(disk_flush(d), 0);
	ASSERT_EQ(stat_int(d, "queued"), 0);

	put(d, "0-1", 2, 2, true, 200);
	ASSERT_EQ(stat_int(d, "queued"), 1);
	assert_rec(d, "0-1", 2, 2); /* the queued, newer version */
	a = assert_listing(d, "0-1", l1, 3);
	{
		char *t = rec_text(2, 2);

		ASSERT_EQ(g_array_index(a, struct disk_lent, 1).size, strlen(t));
		ASSERT_EQ(g_array_index(a, struct disk_lent, 1).mtime_ms, 1002);
		g_free(t);
	}
	g_array_unref(a);
	disk_forget_record(d, "0-1", 2);
	assert_no_rec(d, "0-1", 2);
	put(d, "0-1", 4, 1, true, 200);  /* new, listed */
	put(d, "0-1", 5, 1, false, 200); /* new, not listed */
	assert_rec(d, "0-1", 4, 1);
	assert_rec(d, "0-1", 5, 1);
	g_array_unref(assert_listing(d, "0-1", l2, 3));
	/* Two queued versions: the later listed=false keeps the earlier listed. */
	put(d, "0-1", 6, 1, true, 200);
	put(d, "0-1", 6, 2, false, 200);
	{
		uint64_t l[] = { 1, 3, 4, 6 };

		g_array_unref(assert_listing(d, "0-1", l, 4));
	}
	disk_forget_record(d, "0-1", 6);
	/* Queued and older than a queued one: the newer text stays visible. */
	put(d, "0-1", 4, 3, true, 200);
	put(d, "0-1", 4, 2, true, 200);
	assert_rec(d, "0-1", 4, 3);
	ASSERT_GT(stat_int(d, "queued"), 0);
	ASSERT_EQ(sql_int(dir, "SELECT count(*) FROM recs"), 3); /* nothing applied yet */

	ASSERT_EQ(disk_flush(d), 0);
	ASSERT_EQ(stat_int(d, "queued"), 0);
	assert_no_rec(d, "0-1", 2);
	assert_rec(d, "0-1", 4, 3);
	assert_rec(d, "0-1", 5, 1);
	g_array_unref(assert_listing(d, "0-1", l2, 3));

	/* A queued complete listing hides what it will remove at once. */
	put(d, "0-1", 3, 2, true, 300);
	put(d, "0-1", 4, 4, true, 300);
	disk_listing_complete(d, "0-1", 250);
	{
		uint64_t l[] = { 3, 4 };

		g_array_unref(assert_listing(d, "0-1", l, 2));
	}
	assert_no_rec(d, "0-1", 1);
	assert_no_rec(d, "0-1", 5);
	assert_rec(d, "0-1", 3, 2);
	ASSERT_EQ(disk_flush(d), 0);
	{
		uint64_t l[] = { 3, 4 };

		g_array_unref(assert_listing(d, "0-1", l, 2));
	}
	assert_no_rec(d, "0-1", 1);
	assert_counts(d, dir);
	disk_close(d);
	g_free(dir);
}

static void test_listing(void)
{
	char *dir = cache_dir("listing");
	struct disk_type st;
	struct disk *d = open_simple(dir);
	uint64_t before[] = { 3, 10, 20, 30, 1000000 }, after[] = { 10, 30, 40, 1000000 };
	GArray *a;

	type_open(d, "0-1", csv, NULL, false);
	/* Put out of order: the listing comes back ascending by id. */
	put(d, "0-1", 30, 1, true, 100);
	put(d, "0-1", 1000000, 1, true, 100);
	put(d, "0-1", 3, 1, true, 100);
	put(d, "0-1", 20, 1, true, 100);
	put(d, "0-1", 10, 1, true, 100);
	put(d, "0-1", 50, 1, false, 100); /* known, not listed */
	ASSERT_EQ(disk_flush(d), 0);
	a = assert_listing(d, "0-1", before, 5);
	{
		char *t = rec_text(3, 1);

		ASSERT_EQ(g_array_index(a, struct disk_lent, 0).size, strlen(t));
		ASSERT_EQ(g_array_index(a, struct disk_lent, 0).mtime_ms, 1001);
		g_free(t);
	}
	g_array_unref(a);

	/* A relist that started at 500 sees 10, 30, 1000000 and a new 40; 20 and
	 * 3 were archived meanwhile; 50 was read by id after the relist started. */
	put(d, "0-1", 10, 2, true, 510);
	put(d, "0-1", 30, 1, true, 520);
	put(d, "0-1", 40, 1, true, 530);
	put(d, "0-1", 1000000, 1, true, 540);
	put(d, "0-1", 60, 1, false, 600);
	disk_listing_complete(d, "0-1", 500);
	ASSERT_EQ(disk_flush(d), 0);
	g_array_unref(assert_listing(d, "0-1", after, 4));
	assert_no_rec(d, "0-1", 3);
	assert_no_rec(d, "0-1", 20);
	assert_no_rec(d, "0-1", 50);   /* seen before the relist started, not in it */
	assert_rec(d, "0-1", 60, 1);   /* seen after it started: kept */
	assert_rec(d, "0-1", 10, 2);
	assert_counts(d, dir);
	disk_close(d);

	d = open_simple(dir);
	type_open(d, "0-1", csv, &st, false);
	ASSERT(st.complete);
	ASSERT_EQ(st.relist_wall_ms, 500);
	ASSERT_EQ(st.sync_wall_ms, 500);
	ASSERT_EQ(st.listed, 4);
	/* A later incremental refresh moves the sync mark, not the relist mark;
	 * an older listing completing late does not move it back. */
	disk_type_synced(d, "0-1", 900);
	disk_listing_complete(d, "0-1", 450);
	disk_close(d);
	d = open_simple(dir);
	type_open(d, "0-1", csv, &st, false);
	ASSERT_EQ(st.sync_wall_ms, 900);
	ASSERT_EQ(st.relist_wall_ms, 500);
	g_array_unref(assert_listing(d, "0-1", after, 4));
	disk_close(d);
	g_free(dir);
}

static void test_lru(void)
{
	char *dir = cache_dir("lru");
	char *t = rec_text(100, 1);
	size_t one = strlen(t);
	/* Room for ten texts. */
	struct disk *d = open_at(dir, 12345, one * 10, 0, NULL);
	uint64_t ids[20];
	GArray *a;

	g_free(t);
	type_open(d, "0-1", csv, NULL, false);
	for (uint64_t i = 0; i < 20; i++) {
		ids[i] = 100 + i;
		put(d, "0-1", 100 + i, 1, true, 1000 + (int64_t)i);
		if (i == 9) {
			ASSERT_EQ(disk_flush(d), 0);
			/* 100 and 101 read recently: not the first to go. */
			disk_touch_record(d, "0-1", 100, 5000);
			disk_touch_record(d, "0-1", 101, 5001);
			disk_touch_record(d, "0-1", 999, 5001); /* unknown: harmless */
		}
	}
	ASSERT_EQ(disk_flush(d), 0);
	ASSERT_LE(stat_int(d, "bytes"), (int64_t)one * 10);
	ASSERT_EQ(stat_int(d, "texts"), 10);
	ASSERT_EQ(stat_int(d, "records"), 20);
	ASSERT_EQ(stat_int(d, "evicted"), 10);
	assert_rec(d, "0-1", 100, 1);
	assert_rec(d, "0-1", 101, 1);
	for (uint64_t id = 102; id <= 111; id++)
		assert_no_rec(d, "0-1", id);
	for (uint64_t id = 112; id <= 119; id++)
		assert_rec(d, "0-1", id, 1);
	/* Evicted records keep their place and attributes in the listing. */
	a = assert_listing(d, "0-1", ids, 20);
	for (guint i = 0; i < a->len; i++) {
		ASSERT_EQ(g_array_index(a, struct disk_lent, i).size, one);
		ASSERT_EQ(g_array_index(a, struct disk_lent, i).mtime_ms, 1001);
	}
	g_array_unref(a);
	/* Reading one again stores it again (and something older goes). */
	put(d, "0-1", 105, 1, true, 6000);
	ASSERT_EQ(disk_flush(d), 0);
	assert_rec(d, "0-1", 105, 1);
	ASSERT_EQ(stat_int(d, "texts"), 10);
	assert_counts(d, dir);
	disk_close(d);
	g_free(dir);
}

static void test_assoc_blob(void)
{
	char *dir = cache_dir("assoc");
	struct disk *d = open_at(dir, 12345, 0, 600000, NULL);
	uint64_t in[] = { 30, 10, 20 }, *ids = NULL;
	char *text = NULL;
	size_t n = 0, len = 0;
	int64_t seen = 0;

	ASSERT_EQ(disk_get_assoc(d, "0-3", 1, "0-1", &ids, &n, &seen), -ENOENT);
	disk_put_assoc(d, "0-3", 1, "0-1", in, 3, 111);
	disk_put_assoc(d, "0-3", 2, "0-1", NULL, 0, 112); /* none, and that is known */
	for (int pass = 0; pass < 3; pass++) {
		/* queued, applied, and after a reopen */
		ASSERT_EQ(disk_get_assoc(d, "0-3", 1, "0-1", &ids, &n, &seen), 0);
		ASSERT_EQ(n, 3);
		ASSERT_EQ(ids[0], 10);
		ASSERT_EQ(ids[1], 20);
		ASSERT_EQ(ids[2], 30);
		ASSERT_EQ(seen, 111);
		g_free(ids);
		ASSERT_EQ(disk_get_assoc(d, "0-3", 2, "0-1", &ids, &n, &seen), 0);
		ASSERT_EQ(n, 0);
		ASSERT_EQ(seen, 112);
		g_free(ids);
		ASSERT_EQ(disk_get_assoc(d, "0-3", 1, "0-2", &ids, &n, &seen), -ENOENT);
		ASSERT_EQ(disk_get_assoc(d, "0-1", 1, "0-3", &ids, &n, &seen), -ENOENT);
		if (pass == 0) {
			ASSERT_EQ(disk_flush(d), 0);
		} else if (pass == 1) {
			disk_close(d);
			d = open_simple(dir);
		}
	}
	/* Replaced, not merged. */
	disk_put_assoc(d, "0-3", 1, "0-1", in + 1, 1, 200);
	ASSERT_EQ(disk_get_assoc(d, "0-3", 1, "0-1", &ids, &n, &seen), 0);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(ids[0], 10);
	g_free(ids);

	ASSERT_EQ(disk_get_blob(d, "owners", &text, &len, &seen), -ENOENT);
	disk_put_blob(d, "owners", "[1,2]", 5, 300);
	disk_put_blob(d, "empty", "", 0, 301);
	for (int pass = 0; pass < 2; pass++) {
		ASSERT_EQ(disk_get_blob(d, "owners", &text, &len, &seen), 0);
		ASSERT_STR(text, "[1,2]");
		ASSERT_EQ(len, 5);
		ASSERT_EQ(seen, 300);
		g_free(text);
		ASSERT_EQ(disk_get_blob(d, "empty", &text, &len, &seen), 0);
		ASSERT_STR(text, "");
		ASSERT_EQ(len, 0);
		g_free(text);
		disk_close(d);
		d = open_simple(dir);
	}
	disk_put_blob(d, "owners", "[3]", 3, 400);
	ASSERT_EQ(disk_get_blob(d, "owners", &text, &len, &seen), 0);
	ASSERT_STR(text, "[3]");
	g_free(text);
	disk_close(d);
	g_free(dir);
}

static void make_full(const char *dir, int n);

static void fill_two_types(struct disk *d)
{
	uint64_t to[] = { 7 };

	type_open(d, "0-1", csv, NULL, false);
	type_open(d, "0-2", "name", NULL, false);
	put(d, "0-1", 1, 1, true, 100);
	put(d, "0-2", 1, 1, true, 100);
	disk_type_synced(d, "0-1", 100);
	disk_type_synced(d, "0-2", 100);
	disk_put_assoc(d, "0-1", 1, "0-2", to, 1, 100);
	disk_put_assoc(d, "0-2", 1, "0-1", to, 1, 100);
	disk_put_assoc(d, "0-2", 1, "0-3", to, 1, 100);
	disk_put_blob(d, "schema:0-1", "s1", 2, 100);
	disk_put_blob(d, "schema:0-2", "s2", 2, 100);
	disk_put_blob(d, "owners", "o", 1, 100);
}

static bool has_assoc(struct disk *d, const char *f, const char *t)
{
	uint64_t *ids = NULL;
	size_t n;
	int64_t seen;
	int rc = disk_get_assoc(d, f, 1, t, &ids, &n, &seen);

	g_free(ids);
	ASSERT(rc == 0 || rc == -ENOENT);
	return rc == 0;
}

static bool has_blob(struct disk *d, const char *key)
{
	char *text = NULL;
	size_t len;
	int64_t seen;
	int rc = disk_get_blob(d, key, &text, &len, &seen);

	g_free(text);
	ASSERT(rc == 0 || rc == -ENOENT);
	return rc == 0;
}

static void test_drop(void)
{
	char *dir = cache_dir("drop");
	struct disk_type st;
	uint64_t one[] = { 1 };

	for (int applied = 0; applied < 2; applied++) {
		/* Queued writes (applied = 0) and stored rows (1) vanish at once. */
		struct disk *d = open_at(dir, 12345, 0, 600000, NULL);

		fill_two_types(d);
		if (applied)
			ASSERT_EQ(disk_flush(d), 0);
		disk_drop(d, "0-1");
		assert_no_rec(d, "0-1", 1);
		g_array_unref(assert_listing(d, "0-1", NULL, 0));
		assert_rec(d, "0-2", 1, 1);
		ASSERT(!has_assoc(d, "0-1", "0-2"));
		ASSERT(!has_assoc(d, "0-2", "0-1"));
		ASSERT(has_assoc(d, "0-2", "0-3"));
		ASSERT(!has_blob(d, "schema:0-1"));
		ASSERT(has_blob(d, "schema:0-2"));
		ASSERT(has_blob(d, "owners"));
		/* Written after the drop: there. */
		put(d, "0-1", 2, 1, true, 200);
		assert_rec(d, "0-1", 2, 1);
		ASSERT_EQ(disk_flush(d), 0);
		assert_rec(d, "0-1", 2, 1);
		assert_no_rec(d, "0-1", 1);
		assert_counts(d, dir);
		disk_close(d);

		d = open_simple(dir);
		type_open(d, "0-1", csv, &st, false);
		ASSERT_EQ(st.sync_wall_ms, 0);
		ASSERT_EQ(st.listed, 1);
		type_open(d, "0-2", "name", &st, false);
		ASSERT_EQ(st.sync_wall_ms, 100);
		assert_no_rec(d, "0-1", 1);
		assert_rec(d, "0-1", 2, 1);
		assert_rec(d, "0-2", 1, 1);
		ASSERT(has_blob(d, "schema:0-2"));
		ASSERT(!has_blob(d, "schema:0-1"));

		/* Everything, account data included. */
		if (applied) {
			disk_close(d);
			d = open_at(dir, 12345, 0, 600000, NULL);
			fill_two_types(d);
			ASSERT_EQ(disk_flush(d), 0);
		} else {
			fill_two_types(d);
		}
		disk_drop(d, NULL);
		assert_no_rec(d, "0-1", 1);
		assert_no_rec(d, "0-1", 2);
		assert_no_rec(d, "0-2", 1);
		g_array_unref(assert_listing(d, "0-2", NULL, 0));
		ASSERT(!has_blob(d, "owners"));
		ASSERT(!has_blob(d, "schema:0-2"));
		ASSERT(!has_assoc(d, "0-2", "0-3"));
		put(d, "0-2", 1, 2, true, 300);
		assert_rec(d, "0-2", 1, 2);
		disk_close(d);
		d = open_simple(dir);
		type_open(d, "0-1", csv, &st, false);
		ASSERT_EQ(st.listed, 0);
		ASSERT_EQ(st.sync_wall_ms, 0);
		type_open(d, "0-2", "name", &st, false);
		ASSERT_EQ(st.sync_wall_ms, 0);
		g_array_unref(assert_listing(d, "0-2", one, 1));
		assert_rec(d, "0-2", 1, 2);
		ASSERT(!has_blob(d, "owners"));
		assert_counts(d, dir);
		disk_drop(d, NULL);
		ASSERT_EQ(disk_flush(d), 0);
		assert_counts(d, dir);
		ASSERT_EQ(stat_int(d, "records"), 0);
		disk_close(d);
	}
	/* A drop gives the space back. */
	{
		char *path = db_path(dir);
		struct stat sb;
		off_t full;
		struct disk *d;

		make_full(dir, 3000);
		ASSERT_EQ(stat(path, &sb), 0);
		full = sb.st_size;
		d = open_simple(dir);
		disk_drop(d, NULL);
		disk_close(d);
		ASSERT_EQ(stat(path, &sb), 0);
		fprintf(stderr, "    %lld bytes, %lld after drop-cache\n", (long long)full,
			(long long)sb.st_size);
		ASSERT_LT(sb.st_size, full / 4);
		g_free(path);
	}
	g_free(dir);
}

static void test_shown_change(void)
{
	char *dir = cache_dir("shown");
	struct disk_type st;
	struct disk *d = open_simple(dir);
	uint64_t to[] = { 9 };

	type_open(d, "0-1", csv, NULL, false);
	put(d, "0-1", 1, 1, true, 100);
	disk_type_synced(d, "0-1", 100);
	disk_listing_complete(d, "0-1", 50);
	disk_put_assoc(d, "0-1", 1, "0-2", to, 1, 100);
	disk_close(d);

	d = open_simple(dir);
	type_open(d, "0-1", "email,phone", &st, true); /* another property set */
	ASSERT_EQ(st.sync_wall_ms, 0);
	ASSERT_EQ(st.relist_wall_ms, 0);
	ASSERT(!st.complete);
	ASSERT_EQ(st.listed, 0);
	assert_no_rec(d, "0-1", 1);
	/* Associations do not depend on the properties shown. */
	ASSERT(has_assoc(d, "0-1", "0-2"));
	put(d, "0-1", 2, 1, true, 200);
	disk_close(d);

	d = open_simple(dir);
	type_open(d, "0-1", "email,phone", &st, false);
	ASSERT_EQ(st.listed, 1);
	assert_rec(d, "0-1", 2, 1);
	assert_no_rec(d, "0-1", 1);
	assert_counts(d, dir);
	disk_close(d);
	g_free(dir);
}

static void test_stats(void)
{
	char *dir = cache_dir("stats");
	struct disk *d = open_at(dir, 12345, 5000, 600000, NULL);
	json_object *o = json_object_new_object(), *disk, *v;
	char *path = g_build_filename(dir, "cache.db", NULL);

	type_open(d, "0-1", csv, NULL, false);
	put(d, "0-1", 1, 1, true, 100);
	put(d, "0-1", 2, 1, true, 100);
	ASSERT_EQ(stat_int(d, "queued"), 2);
	ASSERT_EQ(disk_flush(d), 0);
	disk_stats(d, o);
	ASSERT(json_object_object_get_ex(o, "disk", &disk));
	ASSERT(json_object_object_get_ex(disk, "path", &v));
	ASSERT_STR(json_object_get_string(v), path);
	ASSERT_EQ(stat_int(d, "max_bytes"), 5000);
	ASSERT_EQ(stat_int(d, "records"), 2);
	ASSERT_EQ(stat_int(d, "texts"), 2);
	ASSERT_EQ(stat_int(d, "bytes"), 2 * (int64_t)strlen("{\"id\": \"1\", \"properties\": {\"gen\": \"1\"}}\n"));
	ASSERT_EQ(stat_int(d, "queued"), 0);
	ASSERT_EQ(stat_int(d, "evicted"), 0);
	ASSERT_EQ(stat_int(d, "discarded"), 0);
	ASSERT_EQ(stat_int(d, "write_errors"), 0);
	ASSERT_GT(stat_int(d, "file_bytes"), 0);
	ASSERT(json_object_object_get_ex(disk, "failed", &v));
	ASSERT(!json_object_get_boolean(v));
	json_object_put(o);
	g_free(path);
	disk_close(d);
	g_free(dir);
}

/* --- discarding what cannot be used -------------------------------------- */

static void make_full(const char *dir, int n)
{
	struct disk *d = open_simple(dir);

	type_open(d, "0-1", csv, NULL, false);
	for (int i = 1; i <= n; i++)
		put(d, "0-1", (uint64_t)i, 1, true, 100);
	disk_type_synced(d, "0-1", 100);
	disk_put_blob(d, "owners", "o", 1, 100);
	disk_close(d);
}

/* The cache opens with notice `want` (said once: the next open is quiet),
 * is empty, and works. */
static void assert_discarded(const char *dir, const char *want_substr)
{
	struct disk_type st;
	const char *notice = NULL;
	struct disk *d = open_at(dir, 12345, 0, 0, &notice);

	ASSERT(notice != NULL);
	if (!strstr(notice, want_substr))
		FAIL("notice \"%s\" does not say \"%s\"", notice, want_substr);
	ASSERT_EQ(stat_int(d, "discarded"), 1);
	ASSERT_EQ(stat_int(d, "records"), 0);
	type_open(d, "0-1", csv, &st, false);
	ASSERT_EQ(st.sync_wall_ms, 0);
	ASSERT_EQ(st.listed, 0);
	assert_no_rec(d, "0-1", 1);
	ASSERT(!has_blob(d, "owners"));
	put(d, "0-1", 1, 5, true, 100);
	ASSERT_EQ(disk_flush(d), 0);
	assert_rec(d, "0-1", 1, 5);
	disk_close(d);
	d = open_at(dir, 12345, 0, 0, &notice);
	ASSERT(notice == NULL);
	ASSERT_EQ(stat_int(d, "discarded"), 0);
	type_open(d, "0-1", csv, NULL, false);
	assert_rec(d, "0-1", 1, 5);
	disk_close(d);
}

static void test_discard(void)
{
	char *dir, *path;
	struct stat sb;

	/* Truncated. */
	dir = cache_dir("truncated");
	make_full(dir, 2000);
	path = db_path(dir);
	ASSERT_EQ(stat(path, &sb), 0);
	ASSERT_GT(sb.st_size, 100000);
	ASSERT_EQ(truncate(path, sb.st_size / 2), 0);
	assert_discarded(dir, "damaged");
	g_free(path);
	g_free(dir);

	/* Random bytes. */
	dir = cache_dir("random");
	make_full(dir, 10);
	path = db_path(dir);
	{
		GRand *r = g_rand_new_with_seed(7);
		char buf[65536];

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)g_rand_int(r);
		ASSERT(g_file_set_contents(path, buf, sizeof(buf), NULL));
		g_rand_free(r);
	}
	assert_discarded(dir, "not an SQLite database");
	g_free(path);
	g_free(dir);

	/* Another portal. */
	dir = cache_dir("portal");
	{
		const char *notice = NULL;
		struct disk *d = open_at(dir, 999, 0, 0, &notice);

		ASSERT(notice == NULL);
		type_open(d, "0-1", csv, NULL, false);
		put(d, "0-1", 1, 1, true, 100);
		disk_put_blob(d, "owners", "o", 1, 100);
		disk_close(d);
	}
	assert_discarded(dir, "another HubSpot account");
	g_free(dir);

	/* An older format. */
	dir = cache_dir("format");
	make_full(dir, 10);
	sql_exec(dir, "UPDATE meta SET value = 0 WHERE key = 'format'");
	assert_discarded(dir, "another version of hubfs");
	g_free(dir);

	/* Some other SQLite database. */
	dir = cache_dir("foreign");
	make_full(dir, 1);
	sql_exec(dir, "DROP TABLE meta; CREATE TABLE notes (x)");
	assert_discarded(dir, "not made by hubfs");
	g_free(dir);

	/* Damaged inside after an unclean close: the quick_check finds it. */
	dir = cache_dir("unclean");
	make_full(dir, 3000);
	sql_exec(dir, "UPDATE meta SET value = 0 WHERE key = 'clean'; PRAGMA wal_checkpoint(TRUNCATE)");
	path = db_path(dir);
	{
		/* Texts: no other step of the open reads them. */
		int64_t root = sql_int(dir, "SELECT rootpage FROM sqlite_master WHERE name = 'texts'");
		int64_t pgsz = sql_int(dir, "PRAGMA page_size");
		char junk[4096];
		int fd = open(path, O_WRONLY);

		ASSERT_GT(root, 1);
		memset(junk, 0x5a, sizeof(junk));
		ASSERT(fd >= 0);
		ASSERT_EQ(pwrite(fd, junk, (size_t)MIN(pgsz, 4096), (root - 1) * pgsz),
			  MIN(pgsz, 4096));
		close(fd);
	}
	assert_discarded(dir, "damaged");
	g_free(path);
	g_free(dir);
}

/* Damage found while reading (the file was closed cleanly, so the open does
 * not check every page): the disk cache stops serving, and the file is gone
 * at close. */
static void test_damage_at_runtime(void)
{
	char *dir = cache_dir("runtime"), *path;
	const char *notice = NULL;
	struct disk *d;
	char *text = NULL;
	size_t len;
	int64_t mtime;
	struct stat sb;

	make_full(dir, 3000);
	path = db_path(dir);
	{
		int64_t root = sql_int(dir, "SELECT rootpage FROM sqlite_master WHERE name = 'texts'");
		int64_t pgsz = sql_int(dir, "PRAGMA page_size");
		char junk[4096];
		int fd = open(path, O_WRONLY);

		memset(junk, 0xa5, sizeof(junk));
		ASSERT(fd >= 0);
		ASSERT_EQ(pwrite(fd, junk, (size_t)MIN(pgsz, 4096), (root - 1) * pgsz),
			  MIN(pgsz, 4096));
		close(fd);
	}
	d = open_at(dir, 12345, 0, 0, &notice);
	ASSERT(notice == NULL);
	type_open(d, "0-1", csv, NULL, false);
	ASSERT_NE(disk_get_record(d, "0-1", 1, &text, &len, &mtime), 0);
	ASSERT(text == NULL);
	/* Nothing more is served or written. */
	{
		GArray *a = NULL;

		ASSERT_EQ(disk_listing_load(d, "0-1", &a), -EIO);
		ASSERT(a == NULL);
	}
	put(d, "0-1", 5000, 1, true, 100);
	assert_no_rec(d, "0-1", 5000);
	ASSERT_EQ(disk_flush(d), -EIO);
	disk_close(d);
	ASSERT_NE(stat(path, &sb), 0);
	d = open_at(dir, 12345, 0, 0, &notice);
	ASSERT(notice == NULL); /* said when it was found */
	ASSERT_EQ(stat_int(d, "records"), 0);
	disk_close(d);
	g_free(path);
	g_free(dir);
}

/* --- crash safety ------------------------------------------------------------ */

#define CRASH_N 2000             /* fits one transaction */
#define CRASH_BIG (3 * 4096 + 100) /* takes four */

/* In a child: write generation gen of every record and the sync mark of that
 * refresh, then hang (to be killed), or die at once once they are queued
 * (exit_early). */
static void crash_child(const char *dir, const char *type, int gen, int n, int wfd,
			bool exit_early)
{
	struct disk *d;
	struct disk_opts o = { .dir = dir, .portal_id = 12345, .flush_ms = 600000 };
	struct disk_type st;
	bool dropped;

	if (disk_open(&o, &d, NULL) != 0 || disk_type_open(d, type, csv, &st, &dropped) != 0)
		_exit(3);
	if (write(wfd, "o", 1) != 1)
		_exit(4);
	for (int i = 1; i <= n; i++)
		put(d, type, (uint64_t)i, gen, true, gen * 1000);
	disk_type_synced(d, type, gen * 1000);
	if (exit_early)
		kill(getpid(), SIGKILL); /* queued, never flushed */
	disk_flush(d);
	if (write(wfd, "d", 1) != 1)
		_exit(5);
	for (;;)
		pause();
}

/* The sync mark and the records agree: all of one generation (atomic), or,
 * when a refresh spans several transactions, the new mark only with every
 * record new. Returns the generation of the mark. */
static int check_refresh(const char *dir, const char *type, int old_gen, int n, bool atomic)
{
	struct disk_type st;
	struct disk *d = open_simple(dir);
	int mark_gen, newer = 0;

	type_open(d, type, csv, &st, false);
	mark_gen = (int)(st.sync_wall_ms / 1000);
	ASSERT(mark_gen == old_gen || mark_gen == old_gen + 1);
	ASSERT_EQ(st.listed, (uint64_t)n);
	for (int i = 1; i <= n; i++) {
		char *text = NULL;
		size_t len;
		int64_t mtime;
		int gen;

		ASSERT_EQ(disk_get_record(d, type, (uint64_t)i, &text, &len, &mtime), 0);
		gen = (int)(mtime - 1000);
		{
			char *want = rec_text((uint64_t)i, gen); /* never torn */

			ASSERT_STR(text, want);
			g_free(want);
		}
		g_free(text);
		if (atomic || mark_gen == old_gen + 1)
			ASSERT_EQ(gen, mark_gen);
		else
			ASSERT(gen == old_gen || gen == old_gen + 1);
		newer += gen == old_gen + 1;
	}
	assert_counts(d, dir);
	disk_close(d);
	if (!atomic)
		fprintf(stderr, "    mark %d, %d of %d records newer\n", mark_gen, newer, n);
	return mark_gen;
}

static void crash_round(const char *dir, const char *type, int *gen, int n, bool atomic,
			int delay_us, bool exit_early)
{
	int fds[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(pipe(fds), 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, type, *gen + 1, n, fds[1], exit_early);
	}
	close(fds[1]);
	ASSERT_EQ(read(fds[0], &c, 1), 1);
	ASSERT_EQ(c, 'o');
	if (!exit_early) {
		if (delay_us)
			g_usleep((gulong)delay_us);
		kill(pid, SIGKILL);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		FAIL("the child exited with %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		FAIL("the child died of signal %d", WTERMSIG(status));
	if (exit_early)
		ASSERT(WIFSIGNALED(status));
	close(fds[0]);
	*gen = check_refresh(dir, type, *gen, n, atomic);
}

static void test_crash_refresh(void)
{
	char *dir = cache_dir("crash");
	/* Kill points spread over the child's life: before it queues, while it
	 * queues, while the writer commits, after. */
	static const int delays_us[] = { 0, 500, 2000, 5000, 10000, 20000, 40000, 80000,
					 150000, 300000, 600000 };
	int gen = 0, moved = 0, kept = 0;
	struct disk *d = open_simple(dir);

	type_open(d, "0-1", csv, NULL, false);
	type_open(d, "0-2", csv, NULL, false);
	for (int i = 1; i <= CRASH_BIG; i++) {
		if (i <= CRASH_N)
			put(d, "0-1", (uint64_t)i, 0, true, 0);
		put(d, "0-2", (uint64_t)i, 0, true, 0);
	}
	disk_close(d);

	/* Queued and never flushed: nothing of it is there. */
	crash_round(dir, "0-1", &gen, CRASH_N, true, 0, true);
	ASSERT_EQ(gen, 0);
	/* One batch (a refresh smaller than a transaction): all or nothing. */
	for (size_t i = 0; i < G_N_ELEMENTS(delays_us); i++) {
		int before = gen;

		crash_round(dir, "0-1", &gen, CRASH_N, true, delays_us[i], false);
		if (gen == before)
			kept++;
		else
			moved++;
	}
	fprintf(stderr, "    one batch: %d kills kept the old refresh, %d found the new one\n",
		kept, moved);
	/* A refresh bigger than a transaction: the mark never comes before its
	 * records. */
	gen = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(delays_us); i += 2)
		crash_round(dir, "0-2", &gen, CRASH_BIG, false, delays_us[i] * 4, false);
	g_free(dir);
}

/* --- the bounded queue ----------------------------------------------------- */

struct producer {
	struct disk *d;
	int from, n;
};

static gpointer produce(gpointer p)
{
	struct producer *w = p;
	char text[1024];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (int i = 0; i < w->n; i++)
		disk_put_record(w->d, "0-1", (uint64_t)(w->from + i), text, sizeof(text) - 1, 1,
				true, 1);
	return NULL;
}

static void test_backpressure(void)
{
	char *dir = cache_dir("queue");
	struct disk *d = open_at(dir, 12345, 0, 600000, NULL);
	struct producer w[2] = { { d, 1, 15000 }, { d, 100001, 15000 } };
	GThread *th[2];
	int64_t max_queued = 0;

	type_open(d, "0-1", csv, NULL, false);
	for (int i = 0; i < 2; i++)
		th[i] = g_thread_new("producer", produce, &w[i]);
	/* 30,000 writes of 1 KiB (30 MiB): the queue holds at most 16 MiB. */
	for (int i = 0; i < 2000; i++) {
		int64_t q = stat_int(d, "queued");

		if (q > max_queued)
			max_queued = q;
		g_usleep(100);
	}
	for (int i = 0; i < 2; i++)
		g_thread_join(th[i]);
	ASSERT_EQ(disk_flush(d), 0);
	fprintf(stderr, "    most queued: %" PRId64 "\n", max_queued);
	ASSERT_LE(max_queued, 16 * 1024 + 2);
	ASSERT_EQ(stat_int(d, "records"), 30000);
	assert_counts(d, dir);
	disk_close(d);
	g_free(dir);
}

/* --- concurrency ------------------------------------------------------------ */

struct rw {
	struct disk *d;
	uint64_t base;
	int rounds;
	int errors;
};

/* The clock of the threads' reads and writes (seen_ms, LRU order): one for
 * all of them, as the wall clock is in use. Per-thread counters would make a
 * slow thread's fresh writes the least recently used and evict them before
 * the thread reads them back. */
static gint64 rw_clock;

static int64_t rw_now(void)
{
	return (int64_t)__atomic_add_fetch(&rw_clock, 1, __ATOMIC_SEQ_CST);
}

/* Each thread writes its own records and reads each back at once: it must
 * see its own write whether the writer has committed it yet or not. */
static gpointer read_own_writes(gpointer p)
{
	struct rw *w = p;

	for (int r = 1; r <= w->rounds; r++)
		for (uint64_t i = 0; i < 50; i++) {
			uint64_t id = w->base + i;
			char *want = rec_text(id, r), *text = NULL;
			size_t len;
			int64_t mtime;
			int rc;

			disk_put_record(w->d, "0-1", id, want, strlen(want), 1000 + r, true, rw_now());
			/* Its own write, or nothing: with a 5,000-byte budget the batch
			 * that commits it may evict its text at once (-ENOENT, which the
			 * contract allows), but an older text must never be served. */
			rc = disk_get_record(w->d, "0-1", id, &text, &len, &mtime);
			if ((rc != 0 && rc != -ENOENT) ||
			    (rc == 0 && (strcmp(text, want) != 0 || mtime != 1000 + r)))
				w->errors++;
			if (i % 7 == 0)
				disk_touch_record(w->d, "0-1", id, rw_now());
			if (i % 13 == 0 && r % 3 == 0) {
				disk_forget_record(w->d, "0-1", id);
				if (disk_get_record(w->d, "0-1", id, &text, &len, &mtime) != -ENOENT)
					w->errors++;
			}
			g_free(text);
			g_free(want);
		}
	return NULL;
}

static gpointer list_repeatedly(gpointer p)
{
	struct rw *w = p;

	for (int r = 0; r < w->rounds; r++) {
		GArray *a = NULL;

		if (disk_listing_load(w->d, "0-1", &a) != 0) {
			w->errors++;
			continue;
		}
		for (guint i = 1; i < a->len; i++)
			if (g_array_index(a, struct disk_lent, i - 1).id >=
			    g_array_index(a, struct disk_lent, i).id)
				w->errors++;
		g_array_unref(a);
	}
	return NULL;
}

static void test_concurrent(void)
{
	char *dir = cache_dir("concurrent");
	struct disk *d = open_at(dir, 12345, 5000, 1, NULL); /* commits all the time, evicts */
	struct rw w[5];
	GThread *th[5];

	type_open(d, "0-1", csv, NULL, false);
	for (int i = 0; i < 5; i++) {
		w[i] = (struct rw){ d, (uint64_t)(i + 1) * 1000, i < 4 ? 40 : 200, 0 };
		th[i] = g_thread_new("rw", i < 4 ? read_own_writes : list_repeatedly, &w[i]);
	}
	for (int i = 0; i < 5; i++) {
		g_thread_join(th[i]);
		ASSERT_EQ(w[i].errors, 0);
	}
	assert_counts(d, dir);
	ASSERT_LE(stat_int(d, "bytes"), 5000);
	ASSERT_GT(stat_int(d, "evicted"), 0);
	disk_close(d);
	g_free(dir);
}

/* --- a failed write ---------------------------------------------------------- */

/* Files may not grow past a limit (RLIMIT_FSIZE, for this test only): the
 * batch that fails is lost whole, nothing more is served or written, and the
 * next open finds the batches before it. */
static void test_write_error(void)
{
	char *dir = cache_dir("full"), *path = db_path(dir);
	struct rlimit old, rl;
	struct disk_type st;
	struct disk *d;
	struct stat sb;
	char big[8192], *text = NULL;
	size_t len;
	int64_t m;
	void (*old_handler)(int);

	d = open_simple(dir);
	type_open(d, "0-1", csv, NULL, false);
	put(d, "0-1", 1, 1, true, 100);
	disk_type_synced(d, "0-1", 100);
	disk_close(d);

	d = open_simple(dir);
	type_open(d, "0-1", csv, NULL, false);
	ASSERT_EQ(stat(path, &sb), 0);
	ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	old_handler = signal(SIGXFSZ, SIG_IGN);
	rl = old;
	rl.rlim_cur = (rlim_t)sb.st_size + 65536;
	ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
	memset(big, 'y', sizeof(big));
	for (uint64_t id = 10; id < 2000; id++)
		disk_put_record(d, "0-1", id, big, sizeof(big), 5000, true, 200);
	disk_type_synced(d, "0-1", 200);
	ASSERT_EQ(disk_flush(d), -EIO);
	ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	ASSERT_EQ(stat_int(d, "write_errors"), 1);
	/* Not even what was stored before is served now, nor anything written. */
	ASSERT_EQ(disk_get_record(d, "0-1", 1, &text, &len, &m), -ENOENT);
	put(d, "0-1", 3, 1, true, 300);
	assert_no_rec(d, "0-1", 3);
	ASSERT_EQ(stat_int(d, "queued"), 0);
	disk_close(d);

	d = open_simple(dir);
	type_open(d, "0-1", csv, &st, false);
	ASSERT_EQ(st.sync_wall_ms, 100);
	assert_rec(d, "0-1", 1, 1);
	assert_no_rec(d, "0-1", 10);
	assert_counts(d, dir);
	disk_close(d);
	g_free(path);
	g_free(dir);
}

/* --- scale (suite scale; prints figures, asserts no time) -------------------- */

static int64_t proc_kb(const char *field)
{
	char *s = NULL, *p;
	int64_t v = -1;

	if (!g_file_get_contents("/proc/self/status", &s, NULL, NULL))
		return -1;
	p = strstr(s, field);
	if (p)
		v = g_ascii_strtoll(p + strlen(field) + 1, NULL, 10);
	g_free(s);
	return v;
}

static void reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "5", 1) != 1)
			fprintf(stderr, "clear_refs: %s\n", g_strerror(errno));
		close(fd);
	}
}

static double secs(gint64 t0)
{
	return (double)(g_get_monotonic_time() - t0) / 1e6;
}

static void scale(int n, size_t max_mb)
{
	char *dir = cache_dir("scale"), *path = db_path(dir);
	char text[700];
	struct disk_type st;
	struct disk *d;
	GArray *a = NULL;
	struct stat sb;
	gint64 t0;
	int64_t hwm0, hwm;

	d = open_at(dir, 12345, max_mb << 20, 0, NULL);
	type_open(d, "0-1", csv, NULL, false);
	reset_hwm();
	hwm0 = proc_kb("VmRSS:");
	t0 = g_get_monotonic_time();
	for (int i = 1; i <= n; i++) {
		int len = snprintf(text, sizeof(text),
				   "{\"id\": \"%d\", \"properties\": {\"email\": \"person%d@example.com\","
				   " \"firstname\": \"First%d\", \"lastname\": \"Last%d\"", i, i, i, i);

		while (len < 590)
			len += snprintf(text + len, sizeof(text) - (size_t)len, ", \"p%d\": \"v%d\"",
					len, i);
		len += snprintf(text + len, sizeof(text) - (size_t)len, "}}\n");
		disk_put_record(d, "0-1", (uint64_t)i * 3, text, (size_t)len, 1700000000000 + i, true,
				1000 + i);
	}
	disk_listing_complete(d, "0-1", 1000);
	ASSERT_EQ(disk_flush(d), 0);
	hwm = proc_kb("VmHWM:");
	fprintf(stderr, "write %d records: %.2f s, %.0f records/s, peak RSS +%" PRId64 " MiB\n",
		n, secs(t0), n / secs(t0), (hwm - hwm0) / 1024);
	/* Bounded: the queue is at most 16 MiB, SQLite's page cache 16 MiB. */
	ASSERT_LT(hwm - hwm0, 160 * 1024);
	ASSERT_EQ(stat_int(d, "records"), n);
	fprintf(stderr, "texts kept: %" PRId64 " (%" PRId64 " MiB), evicted %" PRId64 "\n",
		stat_int(d, "texts"), stat_int(d, "bytes") >> 20, stat_int(d, "evicted"));
	t0 = g_get_monotonic_time();
	disk_close(d);
	fprintf(stderr, "close (checkpoint): %.2f s\n", secs(t0));
	ASSERT_EQ(stat(path, &sb), 0);
	fprintf(stderr, "database: %.1f MiB, %.0f bytes per record\n",
		(double)sb.st_size / 1048576, (double)sb.st_size / n);

	t0 = g_get_monotonic_time();
	d = open_simple(dir);
	type_open(d, "0-1", csv, &st, false);
	fprintf(stderr, "open + type_open (clean): %.3f s\n", secs(t0));
	ASSERT_EQ(st.listed, (uint64_t)n);
	reset_hwm();
	hwm0 = proc_kb("VmRSS:");
	t0 = g_get_monotonic_time();
	ASSERT_EQ(disk_listing_load(d, "0-1", &a), 0);
	hwm = proc_kb("VmHWM:");
	fprintf(stderr, "listing of %u entries: %.3f s, peak RSS +%" PRId64 " MiB (array %zu MiB)\n",
		a->len, secs(t0), (hwm - hwm0) / 1024,
		(size_t)a->len * sizeof(struct disk_lent) >> 20);
	ASSERT_EQ(a->len, (guint)n);
	for (guint i = 1; i < a->len; i++)
		ASSERT_LT(g_array_index(a, struct disk_lent, i - 1).id,
			  g_array_index(a, struct disk_lent, i).id);
	g_array_unref(a);
	t0 = g_get_monotonic_time();
	for (int i = 1; i <= 10000; i++) {
		char *t = NULL;
		size_t len;
		int64_t m;

		int rc = disk_get_record(d, "0-1", (uint64_t)(i * 97 % n + 1) * 3, &t, &len, &m);

		ASSERT(rc == 0 || (rc == -ENOENT && max_mb));
		g_free(t);
	}
	fprintf(stderr, "10,000 random record reads: %.3f s\n", secs(t0));
	disk_close(d);

	sql_exec(dir, "UPDATE meta SET value = 0 WHERE key = 'clean'");
	t0 = g_get_monotonic_time();
	d = open_simple(dir);
	fprintf(stderr, "open after an unclean close (quick_check, recount): %.3f s\n", secs(t0));
	ASSERT_EQ(stat_int(d, "records"), n);
	disk_close(d);
	g_free(path);
	g_free(dir);
}

int main(int argc, char **argv)
{
	tmp = g_dir_make_tmp("hubfs-disk-XXXXXX", NULL);
	ASSERT(tmp != NULL);
	if (argc >= 3 && strcmp(argv[1], "--scale") == 0) {
		/* --scale N [max MiB of texts] */
		scale(atoi(argv[2]), argc > 3 ? (size_t)atoi(argv[3]) : 0);
	} else if (argc == 2) {
		/* One test by name. */
		static const struct { const char *name; void (*fn)(void); } one[] = {
			{ "crash", test_crash_refresh }, { "backpressure", test_backpressure },
			{ "discard", test_discard }, { "concurrent", test_concurrent },
			{ "full", test_write_error }, { "drop", test_drop }, { "pending", test_pending },
		};

		for (size_t i = 0; i < G_N_ELEMENTS(one); i++)
			if (strcmp(argv[1], one[i].name) == 0)
				RUN(one[i].fn);
	} else {
		RUN(test_modes);
		RUN(test_roundtrip);
		RUN(test_pending);
		RUN(test_listing);
		RUN(test_lru);
		RUN(test_assoc_blob);
		RUN(test_drop);
		RUN(test_shown_change);
		RUN(test_stats);
		RUN(test_discard);
		RUN(test_damage_at_runtime);
		RUN(test_crash_refresh);
		RUN(test_backpressure);
		RUN(test_concurrent);
		RUN(test_write_error);
	}
	{
		char *cmd = g_strdup_printf("rm -rf '%s'", tmp);

		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
		g_free(cmd);
	}
	g_free(tmp);
	return 0;
}
