/* cache_events: pushed changes applied to the store against the sandbox
 * (port 0): gone records leave the listing without a call, changed records
 * are read in one batch read, a local write pending is never overwritten, an
 * id HubSpot does not have is forgotten, a type never used costs nothing, a
 * merge removes the merged ids, polling backs off and comes back, and
 * unmounting with work queued does not wait for it; association lists
 * forgotten or edited are told to the kernel's side (assoc_changed). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "cache/cache.h"
#include "cache/cache_events.h"
#include "client/hubspot.h"
#include "tests/unit/sandbox.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

#define url sandbox_url
#define BREAD "POST /crm/v3/objects/contacts/batch/read"
#define LIST "GET /crm/v3/objects/contacts"

static int changed_hooks;
static uint64_t changed_last;

static void on_changed(void *ud, const struct objtype *t, uint64_t id)
{
	(void)ud;
	(void)t;
	g_atomic_int_inc(&changed_hooks);
	changed_last = id;
}

static int64_t dl(void)
{
	return hs_now_ms() + 20000;
}

/* The ids of a whole listing of contacts (g_free). */
static uint64_t *list_ids(struct cache *c, size_t *n)
{
	struct listing *l = cache_listing_open(c, ty(TY_CONTACTS));
	GArray *a = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	uint64_t id;
	int rc;

	while ((rc = cache_listing_entry(c, l, a->len, dl(), &id, NULL)) == 0)
		g_array_append_val(a, id);
	ASSERT_EQ(rc, 1);
	cache_listing_close(c, l);
	*n = a->len;
	return (uint64_t *)(void *)g_array_free(a, FALSE);
}

static bool listed(struct cache *c, uint64_t want)
{
	size_t n;
	g_autofree uint64_t *ids = list_ids(c, &n);

	for (size_t i = 0; i < n; i++)
		if (ids[i] == want)
			return true;
	return false;
}

static struct wh_event ev(const char *object, enum wh_kind kind, const char *action, uint64_t id)
{
	struct wh_event e;

	memset(&e, 0, sizeof(e));
	g_snprintf(e.type, sizeof(e.type), "%s.%s", object, action);
	g_strlcpy(e.object, object, sizeof(e.object));
	e.kind = kind;
	e.object_id = id;
	e.occurred_at = hs_wall_ms();
	e.event_id = (uint64_t)g_random_int();
	e.subscription_id = 1;
	return e;
}

/* Wait until the worker has nothing pending and has applied a drain since
 * `since` drains. */
static void settle(struct cache *c, uint64_t drains)
{
	struct cache_events_stats st;
	int64_t end = hs_now_ms() + 10000;

	do {
		g_usleep(20000);
		cache_events_stats(c, &st);
	} while ((st.changes.pending || st.changes.drains <= drains || !st.last_applied_ms ||
		  st.last_applied_ms < st.last_event_ms) && hs_now_ms() < end);
	g_usleep(50000); /* the last job of the drain */
	ASSERT_EQ(st.changes.pending, 0);
}

static uint64_t drains(struct cache *c)
{
	struct cache_events_stats st;

	cache_events_stats(c, &st);
	return st.changes.drains;
}

static void test_apply(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .background = true };
	struct cache_hooks hooks = { .record_changed = on_changed };
	struct cache *c = cache_new(hc, test_types(), &o, &hooks);
	struct cache_events_opts eo = { .linger_ms = 10 };
	struct cache_events_stats st;
	struct wh_event e[3];
	struct rec_attr a;
	char *text = NULL;
	size_t n, len;
	uint64_t *ids, d, reads;
	int64_t lists;

	ASSERT_EQ(cache_events_start(c, &eo), 0);
	ids = list_ids(c, &n);
	lists = calls(hc, LIST); /* the cold listing (list pages, and search from the top) */
	ASSERT_EQ(n, 250);
	reads = calls(hc, BREAD);

	/* a deletion: out of the listing and unreadable, without a call */
	d = drains(c);
	e[0] = ev("contact", WH_DELETION, "deletion", ids[5]);
	ASSERT_EQ(cache_events_add(c, e, 1), 1);
	settle(c, d);
	ASSERT(!listed(c, ids[5]));
	ASSERT_EQ(cache_record_stat(c, ty(TY_CONTACTS), ids[5], dl(), &a), -ENOENT);
	ASSERT_EQ(calls(hc, BREAD), reads);
	ASSERT(changed_hooks >= 1 && changed_last == ids[5]); /* the kernel is told */

	/* the same event again: a duplicate, nothing to do */
	ASSERT_EQ(cache_events_add(c, e, 1), 0);

	/* a local write pending: read (a creation), but the local text stays */
	ASSERT(cache_record_put_local(c, ty(TY_CONTACTS), ids[7], "local\n", 6, 0) > 0);
	d = drains(c);
	e[0] = ev("contact", WH_CREATION, "creation", ids[7]);
	e[1] = ev("contact", WH_PROPERTY_CHANGE, "propertyChange", 987654321); /* not in HubSpot */
	e[2] = ev("ticket", WH_PROPERTY_CHANGE, "propertyChange", 1);        /* never used here */
	ASSERT_EQ(cache_events_add(c, e, 3), 3);
	settle(c, d);
	ASSERT_EQ(calls(hc, BREAD), reads + 1); /* both contacts in one batch read */
	ASSERT_EQ(calls(hc, "POST /crm/v3/objects/tickets/batch/read"), 0);
	ASSERT_EQ(cache_record_text(c, ty(TY_CONTACTS), ids[7], dl(), &text, &len), 0);
	ASSERT_STR(text, "local\n");
	g_free(text);
	ASSERT(!listed(c, 987654321));
	cache_events_stats(c, &st);
	ASSERT(st.kept >= 1);
	ASSERT(st.forgotten >= 2);       /* ids[5] and the unknown id */
	ASSERT_EQ(st.calls, 1);
	ASSERT(st.active);
	ASSERT_EQ(st.refresh_every_ms, 60000 * 10);

	/* a merge of ids[9] into ids[8]: the merged id goes, the survivor is read */
	d = drains(c);
	e[0] = ev("contact", WH_MERGE, "merge", ids[8]);
	e[0].primary_id = ids[8];
	e[0].new_id = ids[8];
	e[0].merged_ids = (uint64_t[]){ ids[9] };
	e[0].n_merged = 1;
	ASSERT_EQ(cache_events_add(c, e, 1), 1);
	settle(c, d);
	ASSERT(!listed(c, ids[9]));
	ASSERT(listed(c, ids[8]));
	ASSERT_EQ(calls(hc, BREAD), reads + 2);
	ASSERT_EQ(calls(hc, LIST), lists); /* never relisted */

	/* work queued at the stop is dropped, not waited for */
	e[0] = ev("contact", WH_PROPERTY_CHANGE, "propertyChange", ids[20]);
	cache_events_add(c, e, 1);
	g_free(ids);
	cache_free(c);
	hs_client_free(hc);
}

/* A record whose text changed is served as the kernel last saw it (size and
 * bytes) until the kernel was told to forget it: a read it sized by the old
 * length must not get the new text (cut, or padded with NULs). */
static void test_changed_text_waits_for_the_kernel(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .background = true };
	struct cache_hooks hooks = { .record_changed = on_changed };
	struct cache *c = cache_new(hc, test_types(), &o, &hooks);
	struct cache_events_opts eo = { .linger_ms = 10 };
	const struct objtype *t = ty(TY_CONTACTS);
	json_object *body = json_object_new_object(), *props = json_object_new_object(), *out = NULL;
	struct wh_event e;
	struct hs_call call;
	struct rec_attr a;
	char path[96], buf[8192];
	char *old = NULL, *now = NULL;
	size_t n, len_old, len_now, got;
	uint64_t *ids, d;

	ASSERT_EQ(cache_events_start(c, &eo), 0);
	ids = list_ids(c, &n);
	ASSERT_EQ(cache_record_text(c, t, ids[30], dl(), &old, &len_old), 0);

	/* changed elsewhere: a longer job title */
	json_object_object_add(props, "jobtitle",
			       json_object_new_string("Head of Everything Changed Elsewhere, Again"));
	json_object_object_add(body, "properties", props);
	snprintf(path, sizeof(path), "/crm/v3/objects/contacts/%" PRIu64, ids[30]);
	memset(&call, 0, sizeof(call));
	call.deadline_ms = dl();
	ASSERT_EQ(hs_request(hc, &call, "PATCH", path, body, &out), 0);
	json_object_put(body);
	json_object_put(out);

	d = drains(c);
	e = ev("contact", WH_PROPERTY_CHANGE, "propertyChange", ids[30]);
	ASSERT_EQ(cache_events_add(c, &e, 1), 1);
	settle(c, d);
	ASSERT(changed_last == ids[30]); /* the kernel is told */
	ASSERT_EQ(cache_record_text(c, t, ids[30], dl(), &now, &len_now), 0);
	ASSERT(len_now > len_old && strstr(now, "Changed Elsewhere, Again"));

	/* until the kernel forgot the old size: the old text, whole */
	ASSERT_EQ(cache_record_stat(c, t, ids[30], dl(), &a), 0);
	ASSERT_EQ(a.size, len_old);
	ASSERT_EQ(cache_record_read(c, t, ids[30], 0, sizeof(buf), buf, &got, dl()), 0);
	ASSERT_EQ(got, len_old);
	ASSERT(memcmp(buf, old, len_old) == 0);

	/* then the new one */
	cache_record_shown_done(c, t, ids[30]);
	ASSERT_EQ(cache_record_stat(c, t, ids[30], dl(), &a), 0);
	ASSERT_EQ(a.size, len_now);
	ASSERT_EQ(cache_record_read(c, t, ids[30], 0, sizeof(buf), buf, &got, dl()), 0);
	ASSERT_EQ(got, len_now);
	ASSERT(memcmp(buf, now, len_now) == 0);

	g_free(old);
	g_free(now);
	g_free(ids);
	cache_free(c);
	hs_client_free(hc);
}

static void test_polling_backoff(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 1000 };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	struct cache_events_opts eo = { .quiet_ms = 300, .backoff = 4 };
	struct wh_event e = ev("company", WH_PROPERTY_CHANGE, "propertyChange", 5);

	ASSERT(!cache_events_active(c));
	ASSERT_EQ(cache_events_refresh_every(c), 1000);
	ASSERT_EQ(cache_events_start(c, &eo), 0);
	ASSERT_EQ(cache_events_refresh_every(c), 1000); /* nothing arrived yet */
	cache_events_add(c, &e, 1);
	ASSERT(cache_events_active(c));
	ASSERT_EQ(cache_events_refresh_every(c), 4000);
	g_usleep(400000);
	ASSERT(!cache_events_active(c));
	ASSERT_EQ(cache_events_refresh_every(c), 1000);
	cache_events_alive(c); /* a delivery of no events keeps it backed off */
	ASSERT_EQ(cache_events_refresh_every(c), 4000);
	cache_free(c);
	hs_client_free(hc);
}

/* Past the pending bound a type falls back: changes dropped queue its
 * refresh (one search), deletions dropped its relist. */
static void test_overflow_falls_back(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .background = true };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	struct cache_events_opts eo = { .linger_ms = 10, .max_pending = 2 };
	struct cache_events_stats st;
	struct wh_event e[6];
	size_t n;
	uint64_t *ids, d;
	int64_t lists;
	int64_t end;

	ASSERT_EQ(cache_events_start(c, &eo), 0);
	ids = list_ids(c, &n);
	lists = calls(hc, LIST);   /* the cold listing's, and its search side's */
	d = drains(c);
	for (int i = 0; i < 4; i++)
		e[i] = ev("contact", WH_PROPERTY_CHANGE, "propertyChange", ids[30 + i]);
	e[4] = ev("contact", WH_DELETION, "deletion", ids[40]);
	e[5] = ev("contact", WH_DELETION, "deletion", ids[41]);
	cache_events_add(c, e, 6);
	settle(c, d);
	end = hs_now_ms() + 10000;
	while (calls(hc, LIST) <= lists &&
	       hs_now_ms() < end)
		g_usleep(20000);
	cache_events_stats(c, &st);
	ASSERT(st.changes.overflow >= 1);
	ASSERT(st.refreshes >= 1);
	ASSERT(st.relists >= 1);
	/* the relist ran (the refresh it makes needless may be skipped) */
	ASSERT(calls(hc, LIST) > lists);
	g_free(ids);
	cache_free(c);
	hs_client_free(hc);
}

/* What assoc_changed was told: one entry per call. */
struct told {
	unsigned from, to;
	uint64_t id;
	size_t n;
	uint64_t first;
};
static GMutex told_lock;
static GArray *told;

static void on_assoc(void *ud, const struct objtype *from, uint64_t id, const struct objtype *to,
		     const uint64_t *ids, size_t n)
{
	struct told t = { from->idx, to->idx, id, n, n ? ids[0] : 0 };

	(void)ud;
	g_mutex_lock(&told_lock);
	g_array_append_val(told, t);
	g_mutex_unlock(&told_lock);
}

/* Whether the hook was told of from/id's list toward `to` with the link x
 * among ids (x == 0: with no link). */
static bool was_told(int from, uint64_t id, int to, uint64_t x, size_t n)
{
	bool found = false;

	g_mutex_lock(&told_lock);
	for (guint i = 0; i < told->len && !found; i++) {
		struct told *t = &g_array_index(told, struct told, i);

		found = t->from == (unsigned)from && t->to == (unsigned)to && t->id == id &&
			t->n == n && (!n || t->first == x);
	}
	g_mutex_unlock(&told_lock);
	return found;
}

/* An associationChange forgets the lists of both sides, and the hook hears of
 * every link they held (the kernel forgets them: a link it looked up would
 * resolve for ttl otherwise); an edit of this mount or a team relay tells
 * of the one link, on both sides. */
static void test_assoc_hook(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .background = true };
	struct cache_hooks hooks = { .assoc_changed = on_assoc };
	struct cache *c = cache_new(hc, test_types(), &o, &hooks);
	struct cache_events_opts eo = { .linger_ms = 10 };
	struct wh_event e;
	uint64_t *ids, *links = NULL, *back = NULL, cid = 0, co = 0, d;
	size_t n, nl = 0, nb = 0;

	told = g_array_new(FALSE, FALSE, sizeof(struct told));
	ASSERT_EQ(cache_events_start(c, &eo), 0);
	ids = list_ids(c, &n);
	for (size_t i = 0; i < n && !cid; i++) {
		g_free(links);
		links = NULL;
		ASSERT_EQ(cache_assoc_list(c, ty(TY_CONTACTS), ids[i], ty(TY_COMPANIES), dl(), &links,
					   &nl), 0);
		if (nl == 1)
			cid = ids[i], co = links[0];
	}
	ASSERT(cid != 0);
	ASSERT_EQ(cache_assoc_list(c, ty(TY_COMPANIES), co, ty(TY_CONTACTS), dl(), &back, &nb), 0);
	ASSERT(nb >= 1);
	ASSERT_EQ(told->len, 0); /* first reads: nothing held before */

	d = drains(c);
	e = ev("contact", WH_ASSOCIATION_CHANGE, "associationChange", cid);
	g_strlcpy(e.association_type, "CONTACT_TO_COMPANY", sizeof(e.association_type));
	e.from_id = cid;
	e.to_id = co;
	e.removed = true;
	ASSERT_EQ(cache_events_add(c, &e, 1), 1);
	settle(c, d);
	ASSERT(was_told(TY_CONTACTS, cid, TY_COMPANIES, co, 1));
	ASSERT(was_told(TY_COMPANIES, co, TY_CONTACTS, back[0], nb));

	g_array_set_size(told, 0);
	cache_assoc_note(c, ty(TY_CONTACTS), cid, ty(TY_COMPANIES), co, true);
	ASSERT(was_told(TY_CONTACTS, cid, TY_COMPANIES, co, 1));
	ASSERT(was_told(TY_COMPANIES, co, TY_CONTACTS, cid, 1));
	ASSERT_EQ(told->len, 2);

	g_free(links);
	g_free(back);
	g_free(ids);
	cache_free(c);
	hs_client_free(hc);
	g_array_free(told, TRUE);
}

/* A steady stream of events: past its burst the worker waits for tokens and
 * reads what gathered meanwhile in one call. */
static void test_call_budget(void)
{
	struct hs_client *hc = sandbox_client(0);
	struct cache_opts o = { .ttl_ms = 60000, .background = true };
	struct cache *c = cache_new(hc, test_types(), &o, NULL);
	struct cache_events_opts eo = { .linger_ms = -1, .burst_calls = 2,
					.call_interval_ms = 1000 };
	struct cache_events_stats st;
	struct wh_event e;
	size_t n;
	uint64_t *ids, d, reads;

	ASSERT_EQ(cache_events_start(c, &eo), 0);
	ids = list_ids(c, &n);
	reads = calls(hc, BREAD);
	d = drains(c);
	for (int i = 0; i < 8; i++) { /* 8 changes 50 ms apart: 8 reads without the budget */
		e = ev("contact", WH_CREATION, "creation", ids[50 + i]);
		cache_events_add(c, &e, 1);
		g_usleep(50000);
	}
	settle(c, d);
	cache_events_stats(c, &st);
	ASSERT_EQ(st.changes.pending, 0);
	ASSERT(calls(hc, BREAD) - reads <= 3); /* the burst of 2, then one with the rest */
	ASSERT(calls(hc, BREAD) - reads >= 2);
	g_free(ids);
	cache_free(c);
	hs_client_free(hc);
}

int main(int argc, char **argv)
{
	sandbox_start(argc > 1 ? argv[1] : ".", "--contacts", "250", "--companies", "10", "--deals",
		      "10", "--tickets", "5", (char *)NULL);
	RUN(test_apply);
	RUN(test_changed_text_waits_for_the_kernel);
	RUN(test_polling_backoff);
	RUN(test_overflow_falls_back);
	RUN(test_call_budget);
	RUN(test_assoc_hook);
	sandbox_stop();
	return 0;
}
