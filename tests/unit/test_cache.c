/* cache: TTL, neighbour prefetch, byte budget and eviction, the write-epoch
 * guard, listings and association batching — against the sandbox (started on
 * port 0), with a fake clock for freshness. API calls are counted from the
 * client's own per-endpoint statistics. */
#include <errno.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "cache/cache.h"
#include "cache/cache_int.h" /* REC_OVERHEAD */
#include "client/hubspot.h"
#include "tests/unit/sandbox.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

static int64_t fake_now = 1000000;
static int64_t clock_now(void)
{
	return fake_now;
}

#define url sandbox_url

static int64_t dl(void)
{
	return hs_now_ms() + 20000;
}

#define LIST "GET /crm/v3/objects/contacts"
#define BREAD "POST /crm/v3/objects/contacts/batch/read"

/* Walk a whole listing; returns the number of entries. */
static size_t list_all(struct cache *c, const struct objtype *t, uint64_t *first)
{
	struct listing *l = cache_listing_open(c, t);
	struct rec_attr a;
	uint64_t id;
	size_t i = 0;
	int rc;

	while ((rc = cache_listing_entry(c, l, i, dl(), &id, &a)) == 0) {
		if (i == 0 && first)
			*first = id;
		ASSERT_GT(a.size, 0);
		i++;
	}
	ASSERT_EQ(rc, 1);
	cache_listing_close(c, l);
	return i;
}

/* The smallest record of a listing (its listing entries' sizes). */
static uint64_t smallest_text(struct cache *c, const struct objtype *t)
{
	struct listing *l = cache_listing_open(c, t);
	struct rec_attr a;
	uint64_t id, min = UINT64_MAX;

	for (size_t i = 0; cache_listing_entry(c, l, i, dl(), &id, &a) == 0; i++)
		min = MIN(min, a.size);
	cache_listing_close(c, l);
	return min;
}

static void test_listing_and_ttl(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .now = clock_now };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	struct rec_attr a;
	uint64_t first = 0;
	char buf[64];
	size_t n;

	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), &first), 250);
	ASSERT_EQ(calls(hc, LIST), 3);
	/* Listed records are fresh: no call. Unknown ids of a complete listing: no call. */
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), first, dl(), &a), 0);
	ASSERT_EQ(cache_record_read(c, ty(TY_CONTACTS), first, 0, 2, buf, &n, dl()), 0);
	ASSERT_EQ(n, 2);
	ASSERT(memcmp(buf, "{\n", 2) == 0);
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), 99999999, dl(), &a), -ENOENT);
	ASSERT_EQ(calls(hc, BREAD), 0);
	/* A second listing within ttl reuses the first. */
	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), NULL), 250);
	ASSERT_EQ(calls(hc, LIST), 3);

	/* After ttl, one stat refreshes 100 stale records in one batch read. */
	fake_now += 60001;
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), first, dl(), &a), 0);
	ASSERT_EQ(calls(hc, BREAD), 1);
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), first, dl(), &a), 0);
	ASSERT_EQ(calls(hc, BREAD), 1);
	/* A stale listing is fetched again. */
	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), NULL), 250);
	ASSERT_EQ(calls(hc, LIST), 6);
	cache_free(c);
	hs_client_free(hc);
}

static void test_budget_and_eviction(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .max_bytes = 30000, .now = clock_now };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	json_object *st = json_object_new_object(), *jc;
	struct rec_attr a;
	uint64_t first = 0;

	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), &first), 250);
	cache_stats(c, st);
	ASSERT(json_object_object_get_ex(st, "cache", &jc));
	ASSERT_LE(json_object_get_int64(json_object_object_get(jc, "bytes")), 30000);
	ASSERT_LT(json_object_get_int64(json_object_object_get(jc, "records")), 250);
	/* The budget holds the records' bookkeeping too, not only their text: as
	 * many records as are kept, each at least the smallest text plus
	 * REC_OVERHEAD, fit in it. */
	ASSERT_LE((uint64_t)json_object_get_int64(json_object_object_get(jc, "records")) *
		  (smallest_text(c, ty(TY_CONTACTS)) + REC_OVERHEAD), 30000);
	json_object_put(st);
	/* The first record was evicted; reading it costs one batch read that takes
	 * evicted neighbours along. */
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), first, dl(), &a), 0);
	ASSERT_EQ(calls(hc, BREAD), 1);
	cache_free(c);
	hs_client_free(hc);
}

static void test_epoch_guard(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .now = clock_now };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	uint64_t first = 0, epoch;
	char *text = NULL;
	size_t len;
	json_object *obj;

	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), &first), 250);
	epoch = cache_epoch(c); /* a fetch starts here … */
	ASSERT(cache_record_put_local(c, ty(TY_CONTACTS), first, "local\n", 6, 0) > 0);
	/* … and its answer arrives after the local write: dropped. */
	obj = json_tokener_parse("{\"id\": \"1\", \"properties\": {\"email\": \"x@y\"},"
				 "\"createdAt\": \"2020-01-01T00:00:00.000Z\","
				 "\"updatedAt\": \"2030-01-01T00:00:00.000Z\", \"archived\": false}");
	{
		char idtxt[24];

		snprintf(idtxt, sizeof(idtxt), "%" PRIu64, first);
		json_object_object_add(obj, "id", json_object_new_string(idtxt));
	}
	ASSERT_EQ(cache_store(c, ty(TY_CONTACTS), obj, epoch), 1);
	ASSERT_EQ(cache_record_text(c, ty(TY_CONTACTS), first, dl(), &text, &len), 0);
	ASSERT_STR(text, "local\n");
	g_free(text);
	/* A fetch that started after the write is taken. */
	ASSERT_EQ(cache_store(c, ty(TY_CONTACTS), obj, cache_epoch(c)), 0);
	ASSERT_EQ(cache_record_text(c, ty(TY_CONTACTS), first, dl(), &text, &len), 0);
	ASSERT(strstr(text, "\"email\": \"x@y\"") != NULL);
	g_free(text);
	/* An older server version never replaces a newer one. */
	json_object_object_add(obj, "updatedAt", json_object_new_string("2021-01-01T00:00:00.000Z"));
	json_object_object_add(obj, "properties", json_tokener_parse("{\"email\": \"old@y\"}"));
	ASSERT_EQ(cache_store(c, ty(TY_CONTACTS), obj, cache_epoch(c)), 1);
	json_object_put(obj);
	cache_free(c);
	hs_client_free(hc);
}

static void test_assoc_batching(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .now = clock_now };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	struct listing *l;
	size_t total = 0;
	uint64_t id;
	int rc;

	/* As after `ls deals`: the listing is complete, so the first association
	 * miss takes every listed deal along (one call for all 120). */
	ASSERT_EQ(list_all(c, ty(TY_DEALS), NULL), 120);
	l = cache_listing_open(c, ty(TY_DEALS));
	for (size_t i = 0; (rc = cache_listing_entry(c, l, i, dl(), &id, NULL)) == 0; i++) {
		uint64_t *ids = NULL;
		size_t n = 0;

		ASSERT_EQ(cache_assoc_list(c, ty(TY_DEALS), id, ty(TY_CONTACTS), dl(), &ids, &n), 0);
		for (size_t j = 1; j < n; j++)
			ASSERT_LT(ids[j - 1], ids[j]);
		total += n;
		g_free(ids);
	}
	ASSERT_EQ(rc, 1);
	cache_listing_close(c, l);
	ASSERT_GT(total, 0);
	ASSERT_EQ(calls(hc, "POST /crm/v4/associations/deals/contacts/batch/read"), 1);
	/* The targets are known: the first read of one fetches 100 in one call. */
	{
		struct rec_attr a;
		uint64_t *ids = NULL;
		size_t n = 0;

		l = cache_listing_open(c, ty(TY_DEALS));
		ASSERT_EQ(cache_listing_entry(c, l, 0, dl(), &id, NULL), 0);
		cache_listing_close(c, l);
		ASSERT_EQ(cache_assoc_list(c, ty(TY_DEALS), id, ty(TY_CONTACTS), dl(), &ids, &n), 0);
		ASSERT_GT(n, 0);
		ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), ids[0], dl(), &a), 0);
		ASSERT_EQ(calls(hc, BREAD), 1);
		g_free(ids);
	}
	cache_free(c);
	hs_client_free(hc);
}

static int64_t fake_wall = 1700000000000;
static int64_t wall_now(void)
{
	return fake_wall;
}

/* tracked_<what> of a type in cache_stats. */
static int64_t tracked(struct cache *c, const char *what)
{
	json_object *o = json_object_new_object(), *t;
	char key[32];
	int64_t n;

	cache_stats(c, o);
	t = json_object_object_get(json_object_object_get(o, "types"), "contacts");
	snprintf(key, sizeof(key), "tracked_%s", what);
	n = json_object_get_int64(json_object_object_get(t, key));
	json_object_put(o);
	return n;
}

/* The ids this mount changed, missed or archived are forgotten once they no
 * longer matter: the tables stay bounded however many records go through. */
static void test_side_tables_bounded(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .now = clock_now, .wall = wall_now,
				.index_delay_ms = 10000 };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	uint64_t *ids = NULL;
	size_t n = 0;

	/* 3,000 local edits and 3,000 archives (landed) of made-up ids: no call */
	for (uint64_t id = 1; id <= 3000; id++) {
		cache_record_put_local(c, ty(TY_CONTACTS), id, "{}\n", 3, 0);
		cache_listing_note(c, ty(TY_CONTACTS), 100000 + id, false);
		cache_archive_landed(c, ty(TY_CONTACTS), 100000 + id);
	}
	ASSERT_EQ(tracked(c, "recent"), 6000);
	ASSERT_EQ(tracked(c, "gone"), 3000);
	ASSERT_EQ(tracked(c, "missing"), 3000);
	ASSERT(cache_record_gone(c, ty(TY_CONTACTS), 100001));
	/* Two minutes on, ttl and index_delay passed: 3,000 more of each */
	fake_now += 120000;
	fake_wall += 120000;
	for (uint64_t id = 200001; id <= 203000; id++) {
		cache_record_put_local(c, ty(TY_CONTACTS), id, "{}\n", 3, 0);
		cache_listing_note(c, ty(TY_CONTACTS), 300000 + id, false);
	}
	ASSERT_LE(tracked(c, "recent"), 6000 + 1);
	ASSERT_LE(tracked(c, "gone"), 3000 + 1);
	ASSERT_LE(tracked(c, "missing"), 3000 + 1);
	ASSERT(!cache_record_gone(c, ty(TY_CONTACTS), 100001));     /* landed long ago */
	ASSERT(cache_record_gone(c, ty(TY_CONTACTS), 300000 + 200001)); /* still queued */
	/* the overlay still sees every recent change */
	cache_recent_local(c, ty(TY_CONTACTS), fake_wall - 12000, &ids, &n);
	ASSERT_EQ(n, 6000);
	g_free(ids);
	ASSERT_EQ(calls(hc, BREAD) + calls(hc, LIST), 0);
	cache_free(c);
	hs_client_free(hc);
}

/* The disk copy: a second cache on the same directory lists and reads with
 * no list or batch/read call, also with a memory budget that keeps almost
 * nothing; another shown-property set discards the type (said once). */
static unsigned notices;
static void on_notice(void *ud, const char *msg)
{
	(void)ud;
	ASSERT(strstr(msg, "other properties") != NULL);
	notices++;
}

static void test_disk_copy(void)
{
	char *dir = g_dir_make_tmp("hubfs-cache-XXXXXX", NULL);
	const char *const other[] = { "email,firstname", NULL, NULL, NULL };
	static const char *const files[] = { "cache.db", "cache.db-wal", "cache.db-shm", "cache.lock" };
	struct cache_hooks hooks = { .notice = on_notice };
	struct cache_opts o = { .ttl_ms = 60000, .background = true, .disk_dir = dir,
				.portal_id = 42 };
	struct hs_client *hc = sandbox_client(0);
	struct cache *c = cache_new(hc, test_types(), &o, &hooks);
	json_object *st, *jc, *jt;
	uint64_t first = 0;
	struct rec_attr a;
	char *text = NULL;
	size_t len = 0;

	ASSERT(cache_disk_notice(c) == NULL);
	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), &first), 250);
	ASSERT_GT(calls(hc, LIST), 0);
	cache_free(c);
	hs_client_free(hc);

	/* Remount, with a budget of 4 KiB: listed and read from disk. */
	hc = sandbox_client(0);
	o.max_bytes = 4096;
	c = cache_new(hc, test_types(), &o, &hooks);
	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), NULL), 250);
	ASSERT_EQ(calls(hc, LIST), 0);
	ASSERT(cache_type_unconfirmed(c, ty(TY_CONTACTS)) ||
	       calls(hc, "POST /crm/v3/objects/contacts/search") > 0);
	ASSERT_EQ(cache_record_text(c, ty(TY_CONTACTS), first, dl(), &text, &len), 0);
	ASSERT(len > 0 && text[0] == '{');
	g_free(text);
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), first + 1, dl(), &a), 0);
	ASSERT_EQ(calls(hc, BREAD), 0);
	st = json_object_new_object();
	cache_stats(c, st);
	ASSERT(json_object_object_get_ex(st, "cache", &jc));
	ASSERT_GT(json_object_get_int64(json_object_object_get(jc, "disk_reads")), 0);
	ASSERT(json_object_get_boolean(json_object_object_get(jc, "persistent")));
	ASSERT(json_object_object_get_ex(st, "types", &jt));
	ASSERT(json_object_get_boolean(json_object_object_get(
		json_object_object_get(jt, "contacts"), "from_disk")));
	json_object_put(st);
	cache_free(c);
	hs_client_free(hc);

	/* Other shown properties: the type is discarded (one notice) and listed anew. */
	hc = sandbox_client(0);
	o.shown = other;
	o.max_bytes = 0;
	c = cache_new(hc, test_types(), &o, &hooks);
	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), NULL), 250);
	ASSERT_GT(calls(hc, LIST), 0);
	ASSERT_EQ(notices, 1);
	cache_free(c);
	hs_client_free(hc);
	o.shown = NULL;

	/* drop-cache: nothing of the type is kept for the next cache. */
	hc = sandbox_client(0);
	o.shown = other;
	c = cache_new(hc, test_types(), &o, &hooks);
	cache_drop(c, NULL);
	cache_free(c);
	hs_client_free(hc);
	hc = sandbox_client(0);
	c = cache_new(hc, test_types(), &o, &hooks);
	ASSERT_EQ(list_all(c, ty(TY_CONTACTS), NULL), 250);
	ASSERT_GT(calls(hc, LIST), 0);
	ASSERT_EQ(notices, 1);
	cache_free(c);
	hs_client_free(hc);

	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		char *p = g_build_filename(dir, files[i], NULL);

		unlink(p);
		g_free(p);
	}
	rmdir(dir);
	g_free(dir);
}

int main(int argc, char **argv)
{
	sandbox_start(argc > 1 ? argv[1] : ".", "--contacts", "250", "--companies", "10", "--deals", "120", "--tickets", "5", (char *)NULL);
	RUN(test_listing_and_ttl);
	RUN(test_budget_and_eviction);
	RUN(test_epoch_guard);
	RUN(test_assoc_batching);
	RUN(test_side_tables_bounded);
	RUN(test_disk_copy);
	sandbox_stop();
	return 0;
}
