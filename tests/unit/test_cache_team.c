/* test_cache_team - the store in a team (cache/cache_team.h): two caches,
 * each with its own hs_client and struct team (two mounts on two machines),
 * a real redis-server and the sandbox. What each cache asked HubSpot comes
 * from its client's own per-endpoint statistics.
 *
 *   a landed write published by A is read again by B, which holds the
 *     record, in one batch read; B reads nothing it does not hold
 *   a webhook event relayed by A reaches B the same way
 *   one refresh for both: A takes the lease and searches, its marker makes
 *     B fresh without a search; B asking while A holds the lease is refused
 *     and searches nothing; after RESYNC, and when asked (SIGHUP), B
 *     refreshes for itself
 *
 * The caches run on a fake clock (their ttl); Redis, leases and the events
 * worker on the real one. No case asserts how long something took.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cache/cache.h"
#include "cache/cache_team.h"
#include "client/hubspot.h"
#include "client/team.h"
#include "tests/unit/redis.h"
#include "tests/unit/sandbox.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

#define PORTAL 12345678 /* the sandbox's */
#define TTL_MS 60000
#define SEARCH "POST /crm/v3/objects/contacts/search"
#define BREAD "POST /crm/v3/objects/contacts/batch/read"

static int64_t fake_now = 1000000; /* read by the caches' threads */
static int64_t clock_now(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void clock_advance(int64_t ms)
{
	__atomic_add_fetch(&fake_now, ms, __ATOMIC_SEQ_CST);
}

static struct redis rs;
static struct hs_client *ctl_hc;

struct mnt {
	struct hs_client *hc;
	struct team *t;
	struct cache *c; /* atomic: the team's thread reads it */
};

static void on_change(void *ud, const struct team_change *ch)
{
	struct mnt *m = ud;
	struct cache *c = g_atomic_pointer_get(&m->c);

	if (c)
		cache_team_apply(c, ch);
}

static void mnt_open(struct mnt *m, const char *id)
{
	char url[160], cred[TEAM_CRED_HASH_LEN + 1];
	struct team_opts to = { 0 };
	struct cache_opts co = { .ttl_ms = TTL_MS, .now = clock_now, .background = true,
				 .index_delay_ms = 1000 };
	const char *why = NULL;
	struct cache *c;

	snprintf(url, sizeof(url), "unix:%s", rs.sock);
	team_cred_hash("unit-token", cred);
	to.url = url;
	to.portal_id = PORTAL;
	to.cred_hash = cred;
	to.mount_id = id;
	to.cmd_timeout_ms = 1000;
	to.heartbeat_ms = 200;
	to.on_change = on_change;
	to.ud = m;
	memset(m, 0, sizeof(*m));
	m->hc = sandbox_client(0);
	ASSERT_EQ(team_new(&to, &m->t, &why), 0);
	ASSERT(team_connected(m->t));
	ASSERT_EQ(hs_client_set_team(m->hc, m->t), 0);
	c = cache_new(m->hc, test_types(), &co, NULL);
	ASSERT_EQ(cache_team_attach(c, m->t, PORTAL), 0);
	ASSERT_EQ(cache_team_attach(c, m->t, PORTAL), -EBUSY);
	g_atomic_pointer_set(&m->c, c);
}

static void mnt_close(struct mnt *m)
{
	struct cache *c = m->c;

	cache_team_detach(c);
	g_atomic_pointer_set(&m->c, NULL);
	cache_free(c);
	hs_client_set_team(m->hc, NULL);
	team_free(m->t);
	hs_client_free(m->hc);
}

/* The sandbox's contacts, as a plain client sees them: ids[0..n). */
static size_t contact_ids(uint64_t *ids, size_t max)
{
	struct hs_call call = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	json_object *resp = NULL, *results;
	size_t n = 0;

	ASSERT_EQ(hs_request(ctl_hc, &call, "GET", "/crm/v3/objects/contacts?limit=20", NULL, &resp), 0);
	ASSERT(json_object_object_get_ex(resp, "results", &results));
	for (size_t i = 0; i < json_object_array_length(results) && n < max; i++) {
		json_object *id;

		ASSERT(json_object_object_get_ex(json_object_array_get_idx(results, i), "id", &id));
		ids[n++] = g_ascii_strtoull(json_object_get_string(id), NULL, 10);
	}
	json_object_put(resp);
	return n;
}

/* Change a contact's jobtitle as another client would. */
static void set_jobtitle(uint64_t id, const char *v)
{
	struct hs_call call = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	char path[96];
	json_object *body = json_object_new_object(), *props = json_object_new_object(), *resp = NULL;

	json_object_object_add(props, "jobtitle", json_object_new_string(v));
	json_object_object_add(body, "properties", props);
	snprintf(path, sizeof(path), "/crm/v3/objects/contacts/%" G_GUINT64_FORMAT, id);
	ASSERT_EQ(hs_request(ctl_hc, &call, "PATCH", path, body, &resp), 0);
	json_object_put(body);
	json_object_put(resp);
}

static bool shows(struct cache *c, uint64_t id, const char *v)
{
	char *text = NULL;
	size_t len;
	bool yes;

	ASSERT_EQ(cache_record_text(c, ty(TY_CONTACTS), id, hs_now_ms() + 20000, &text, &len), 0);
	yes = strstr(text, v) != NULL;
	g_free(text);
	return yes;
}

static int64_t applied(struct cache *c, const char *what)
{
	json_object *o = json_object_new_object(), *a, *v;
	int64_t n = -1;

	cache_team_stats(c, o);
	if (json_object_object_get_ex(o, "applied", &a) && json_object_object_get_ex(a, what, &v))
		n = json_object_get_int64(v);
	else if (json_object_object_get_ex(o, what, &v))
		n = json_object_get_int64(v);
	json_object_put(o);
	return n;
}

static void test_landed_and_relayed(void)
{
	struct mnt a, b;
	uint64_t ids[20];
	struct wh_event ev;
	int64_t reads;

	ASSERT_GE(contact_ids(ids, 20), 10);
	mnt_open(&a, "unit-a");
	mnt_open(&b, "unit-b");
	ASSERT(!shows(b.c, ids[1], "Landed Elsewhere"));
	ASSERT(!shows(b.c, ids[2], "Pushed By HubSpot"));
	reads = calls(b.hc, BREAD);

	/* A lands an edit (the sandbox has it); B holds the record */
	set_jobtitle(ids[1], "Landed Elsewhere");
	cache_team_landed(a.c, ty(TY_CONTACTS), ids[1]);
	WAIT_FOR(shows(b.c, ids[1], "Landed Elsewhere"));
	ASSERT_EQ(calls(b.hc, BREAD), reads + 1);
	ASSERT_EQ(calls(b.hc, SEARCH), 0);

	/* a record B neither holds nor lists: nothing to read */
	cache_team_landed(a.c, ty(TY_CONTACTS), ids[9]);
	WAIT_FOR(applied(b.c, "update") == 2);
	sleep_ms(300); /* the events worker's linger and more */
	ASSERT_EQ(calls(b.hc, BREAD), reads + 1);

	/* A's webhook receiver relays HubSpot's event */
	set_jobtitle(ids[2], "Pushed By HubSpot");
	memset(&ev, 0, sizeof(ev));
	ev.kind = WH_PROPERTY_CHANGE;
	g_strlcpy(ev.object, "contact", sizeof(ev.object));
	ev.object_id = ids[2];
	ev.occurred_at = g_get_real_time() / 1000;
	ev.portal_id = PORTAL;
	ASSERT_EQ(cache_team_relay(a.c, &ev, 1), 1);
	WAIT_FOR(shows(b.c, ids[2], "Pushed By HubSpot"));
	ASSERT_EQ(calls(b.hc, BREAD), reads + 2);
	ASSERT_EQ(calls(a.hc, BREAD), 0); /* A never read anything */

	/* an event of a type the cache does not show is not relayed */
	g_strlcpy(ev.object, "no_such_type", sizeof(ev.object));
	ASSERT_EQ(cache_team_relay(a.c, &ev, 1), 0);
	mnt_close(&a);
	mnt_close(&b);
}

static void test_one_refresh(void)
{
	struct mnt a, b;
	uint64_t ids[20];

	ASSERT_GE(contact_ids(ids, 20), 10);
	mnt_open(&a, "unit-c");
	mnt_open(&b, "unit-d");
	ASSERT(!shows(a.c, ids[3], "x-none"));
	ASSERT(!shows(b.c, ids[3], "x-none"));

	/* both stale: A refreshes first and takes the lease */
	clock_advance(TTL_MS + 1000);
	cache_refresh_async(a.c, ty(TY_CONTACTS));
	WAIT_FOR(calls(a.hc, SEARCH) == 1 && applied(b.c, "refresh") == 1);
	/* B counts as refreshed by A's marker: asking costs nothing */
	cache_refresh_async(b.c, ty(TY_CONTACTS));
	sleep_ms(300);
	ASSERT_EQ(calls(b.hc, SEARCH), 0);
	ASSERT_EQ(applied(b.c, "refreshes_skipped"), 0);

	/* stale again: B asks first, A still holds the lease: B searches nothing */
	clock_advance(TTL_MS + 1000);
	cache_refresh_async(b.c, ty(TY_CONTACTS));
	WAIT_FOR(applied(b.c, "refreshes_skipped") == 1);
	ASSERT_EQ(calls(b.hc, SEARCH), 0);
	cache_refresh_async(a.c, ty(TY_CONTACTS)); /* the holder renews and refreshes */
	WAIT_FOR(calls(a.hc, SEARCH) == 2 && applied(b.c, "refresh") == 2);
	ASSERT_EQ(calls(b.hc, SEARCH), 0);

	/* the feed was cut (RESYNC): B's next refresh is its own, lease or not */
	{
		struct team_change ch = { .kind = TEAM_CHANGE_RESYNC };

		cache_team_apply(b.c, &ch);
	}
	cache_refresh_async(b.c, ty(TY_CONTACTS));
	WAIT_FOR(calls(b.hc, SEARCH) == 1);
	WAIT_FOR(applied(a.c, "refresh") == 1); /* and A heard B's */
	ASSERT_EQ(calls(a.hc, SEARCH), 2);

	/* SIGHUP (cache_expire): asked for, so B refreshes itself, lease or not */
	cache_expire(b.c);
	cache_refresh_async(b.c, ty(TY_CONTACTS));
	WAIT_FOR(calls(b.hc, SEARCH) == 2);
	ASSERT_EQ(applied(b.c, "refreshes_skipped"), 1);
	mnt_close(&a);
	mnt_close(&b);
}

int main(int argc, char **argv)
{
	sandbox_start(argc > 1 ? argv[1] : ".", "--contacts", "40", "--companies", "5", "--deals",
		      "5", "--tickets", "5", (char *)NULL);
	redis_start(&rs, NULL);
	ctl_hc = sandbox_client(0);
	RUN(test_landed_and_relayed);
	RUN(test_one_refresh);
	hs_client_free(ctl_hc);
	redis_stop(&rs);
	sandbox_stop();
	return 0;
}
