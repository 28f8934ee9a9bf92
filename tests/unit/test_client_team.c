/* test_client_team - hs_client with a team (hubspot.h: opts.team): clients
 * of one portal on several machines spend one rate budget through a real
 * redis-server, against the HubSpot sandbox with a short window (20 requests
 * per 2 s, 5 searches per second) so that a case takes seconds.
 *
 * Each client stands for a mount on its own machine: its own hs_client and
 * struct team, nothing shared but Redis and the sandbox. What the server saw
 * comes from the sandbox's request log: when each request was counted, its
 * status, and which client sent it (each client reads its own object type).
 *
 * No case asserts how long something took, beyond the contract of
 * deadlines: every call returns by its deadline (DEADLINE_SLACK_MS covers
 * scheduling on a loaded machine and valgrind).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "client/hubspot.h"
#include "client/log.h"
#include "client/team.h"
#include "tests/unit/redis.h"
#include "tests/unit/sandbox.h"
#include "tests/unit/test.h"

#define WIN_MAX 20            /* the sandbox's window: 20 requests per WINDOW_MS */
#define WINDOW_MS 2000
#define SPAN_MS 2200          /* window + the limiters' margin, min(250, window / 10) */
#define SEARCH_MAX 5
#define SEARCH_MS 1000
#define CLIENTS 3
#define THREADS 3             /* window-class callers per client */
#define RECORDS 30            /* of each type */
#define LATENCY_MS 5          /* the sandbox sleeps this before it counts a request */
/* Longer than the team's default (200 ms): a mount's round trips queue on one
 * connection, and under valgrind (one thread at a time) or on a loaded
 * 2-core machine a wait of 200 ms for it happens, and takes the client off
 * the shared budget, which the cases that assert it stays on must not see. */
#define CMD_TIMEOUT_MS 1000
#define HEARTBEAT_MS 200
#define DEADLINE_SLACK_MS 500
#define PORTAL 4243

static const char *const types[CLIENTS] = { "contacts", "companies", "deals" };
static const int id_base[CLIENTS] = { 1000001, 2000001, 3000001 };

static struct hs_client *ctl_hc; /* the control API */

/* --- the sandbox's view ------------------------------------------------------ */

static json_object *ctl(const char *method, const char *path, const char *body)
{
	json_object *b = body ? json_tokener_parse(body) : NULL, *out = NULL;
	struct hs_call call = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	int rc = hs_request(ctl_hc, &call, method, path, b, &out);

	if (rc)
		FAIL("%s %s: %d %s", method, path, rc, call.err.message);
	json_object_put(b);
	return out;
}

/* A fresh account, an empty rate window, an empty log. */
static void sandbox_reset(void)
{
	json_object_put(ctl("POST", "/__sandbox/reset", "{}"));
}

static int64_t log_last_seq(void)
{
	json_object *o = ctl("GET", "/__sandbox/log?limit=0", NULL), *v;
	int64_t seq;

	ASSERT(json_object_object_get_ex(o, "last_seq", &v));
	seq = json_object_get_int64(v);
	json_object_put(o);
	return seq;
}

/* One request as the sandbox's limiter saw it. */
struct hit {
	double t;    /* epoch s when the limiter counted it */
	int status;
	int who;     /* client, by the object type it reads; -1 none */
	bool search;
};

struct hits {
	struct hit *v;
	size_t n;
};

static void log_read(int64_t since, struct hits *h)
{
	char path[96];
	json_object *o, *entries;

	snprintf(path, sizeof(path), "/__sandbox/log?since=%lld", (long long)since);
	o = ctl("GET", path, NULL);
	ASSERT(json_object_object_get_ex(o, "entries", &entries));
	h->n = json_object_array_length(entries);
	h->v = calloc(h->n + 1, sizeof(*h->v));
	ASSERT(h->v != NULL);
	for (size_t i = 0; i < h->n; i++) {
		json_object *e = json_object_array_get_idx(entries, i), *v;
		const char *p;
		struct hit *x = &h->v[i];

		ASSERT(json_object_object_get_ex(e, "path", &v));
		p = json_object_get_string(v);
		x->who = -1;
		for (int k = 0; k < CLIENTS; k++) {
			size_t n = strlen("/crm/v3/objects/") + strlen(types[k]);

			if (strncmp(p, "/crm/v3/objects/", 16) == 0 && strncmp(p + 16, types[k], strlen(types[k])) == 0 &&
			    (p[n] == '/' || p[n] == '\0'))
				x->who = k;
		}
		x->search = strlen(p) > 7 && strcmp(p + strlen(p) - 7, "/search") == 0;
		ASSERT(json_object_object_get_ex(e, "status", &v));
		x->status = json_object_get_int(v);
		/* logged when answered; the limiter counted it after the
		 * configured latency from its start */
		ASSERT(json_object_object_get_ex(e, "time", &v));
		x->t = json_object_get_double(v);
		ASSERT(json_object_object_get_ex(e, "duration", &v));
		x->t -= (json_object_get_double(v) - LATENCY_MS) / 1000.0;
	}
	json_object_put(o);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The most requests (of client who, -1 any; of the search budget or the
 * window) the server counted within any ms, among those counted within
 * [from, to] (epoch s). */
static int peak(const struct hits *h, int who, bool search, double ms, double from, double to)
{
	double *t = calloc(h->n + 1, sizeof(*t));
	size_t n = 0;
	int best = 0;

	ASSERT(t != NULL);
	for (size_t i = 0; i < h->n; i++)
		if ((who < 0 || h->v[i].who == who) && h->v[i].search == search &&
		    h->v[i].t >= from && h->v[i].t <= to)
			t[n++] = h->v[i].t;
	qsort(t, n, sizeof(*t), cmp_double);
	for (size_t i = 0, j = 0; i < n; i++) {
		while (t[i] - t[j] >= ms / 1000.0)
			j++;
		if ((int)(i - j + 1) > best)
			best = (int)(i - j + 1);
	}
	free(t);
	return best;
}

static int count(const struct hits *h, int who, int status, double from, double to)
{
	int n = 0;

	for (size_t i = 0; i < h->n; i++)
		if ((who < 0 || h->v[i].who == who) && (status < 0 || h->v[i].status == status) &&
		    h->v[i].t >= from && h->v[i].t <= to)
			n++;
	return n;
}

static double epoch_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- mounts ------------------------------------------------------------------- */

struct member {
	struct team *team;
	struct hs_client *hc;
	char id[32];
};

static void member_open(struct member *m, const struct redis *r, int i)
{
	char url[160], hash[TEAM_CRED_HASH_LEN + 1];
	struct team_opts to = {
		.url = url, .portal_id = PORTAL, .cred_hash = hash, .mount_id = m->id,
		.window_max = WIN_MAX, .window_ms = WINDOW_MS,
		.search_per_sec = SEARCH_MAX, .search_interval_ms = SEARCH_MS,
		.cmd_timeout_ms = CMD_TIMEOUT_MS, .heartbeat_ms = HEARTBEAT_MS,
	};
	struct hs_client_opts co = {
		.api_url = sandbox_url, .token = "unit-token", .rate_max = WIN_MAX,
		.rate_interval_ms = WINDOW_MS, .search_per_sec = SEARCH_MAX,
		.search_interval_ms = SEARCH_MS,
	};
	const char *why = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "host-%c:%d", 'a' + i, (int)getpid());
	snprintf(url, sizeof(url), "unix:%s", r->sock);
	/* what HubSpot's limits belong to: here the private app's token */
	team_cred_hash("unit-token", hash);
	rc = team_new(&to, &m->team, &why);
	if (rc)
		FAIL("team_new: %d %s", rc, why ? why : "");
	co.team = m->team;
	rc = hs_client_new(&co, &m->hc, &why);
	if (rc)
		FAIL("hs_client_new: %d %s", rc, why ? why : "");
}

static void member_close(struct member *m)
{
	hs_client_free(m->hc);
	team_free(m->team);
}

/* Every member has seen all n mounts (the divisor of its share). */
static void wait_mounts(struct member *m, int n)
{
	for (int i = 0; i < n; i++)
		WAIT_FOR(team_mounts(m[i].team) == n);
}

/* hs_client_stats()'s "team" object (caller puts it). */
static json_object *team_status(struct hs_client *hc)
{
	json_object *o = json_object_new_object(), *t = NULL;

	hs_client_stats(hc, o);
	if (!json_object_object_get_ex(o, "team", &t))
		FAIL("no team in %s", json_object_to_json_string(o));
	json_object_get(t);
	json_object_put(o);
	return t;
}

static json_object *get(json_object *o, const char *path)
{
	char buf[128], *save = NULL, *tok;
	json_object *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(v, tok, &v))
			FAIL("no %s in %s", path, json_object_to_json_string(o));
	return v;
}

static int64_t status_int(struct hs_client *hc, const char *path)
{
	json_object *t = team_status(hc);
	int64_t v = json_object_get_int64(get(t, path));

	json_object_put(t);
	return v;
}

static bool budget_is(struct hs_client *hc, const char *want)
{
	json_object *t = team_status(hc);
	bool is = strcmp(json_object_get_string(get(t, "budget")), want) == 0;

	json_object_put(t);
	return is;
}

/* --- callers ------------------------------------------------------------------- */

struct worker {
	struct hs_client *hc;
	int who;                /* client: the object type it reads */
	enum rl_prio prio;
	bool search;
	int count;              /* requests; 0: until *stop */
	atomic_bool *stop;
	int64_t timeout_ms;     /* each call's deadline, from its start */
	const int *cancel;
	/* results */
	int ok, fails, first_rc;
	int64_t worst_overrun;  /* latest return past a deadline, ms (<= 0: in time) */
	char first_err[sizeof(((struct hs_error *)0)->message)];
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned k = 0;

	w->worst_overrun = INT64_MIN;
	for (int i = 0; w->count ? i < w->count : !atomic_load(w->stop); i++) {
		struct hs_call call = { .prio = w->prio, .deadline_ms = hs_now_ms() + w->timeout_ms,
					.cancel = w->cancel };
		json_object *out = NULL;
		int64_t over;
		int rc;

		if (w->search) {
			json_object *req = json_tokener_parse("{\"limit\":1}");

			rc = hs_search(w->hc, &call, types[w->who], req, &out);
			json_object_put(req);
		} else {
			char path[96];

			snprintf(path, sizeof(path), "/crm/v3/objects/%s/%d", types[w->who],
				 id_base[w->who] + (int)(k++ % RECORDS));
			rc = hs_request(w->hc, &call, "GET", path, NULL, &out);
		}
		json_object_put(out);
		over = hs_now_ms() - call.deadline_ms;
		if (over > w->worst_overrun)
			w->worst_overrun = over;
		if (rc == 0) {
			w->ok++;
		} else if (w->fails++ == 0) {
			w->first_rc = rc;
			snprintf(w->first_err, sizeof(w->first_err), "%s", call.err.message);
		}
	}
	return NULL;
}

static void worker_check(const struct worker *w)
{
	if (w->fails)
		FAIL("client %d (prio %d%s): %d of %d calls failed, the first with %d (%s)", w->who,
		     (int)w->prio, w->search ? ", search" : "", w->fails, w->ok + w->fails,
		     w->first_rc, w->first_err);
	ASSERT_LE(w->worst_overrun, DEADLINE_SLACK_MS);
}

/* --- cases --------------------------------------------------------------------- */

/* Three clients at once, every class and search: the server never sees more
 * than the window in any interval, never answers 429, and the budget is used
 * (the clients do not starve each other into idling). */
static void test_shared_budget(void)
{
	enum { PER = 8, SEARCHES = 4, NW = CLIENTS * (THREADS + 1) };
	static const enum rl_prio prios[THREADS] = { RL_PRIO_WRITE, RL_PRIO_USER, RL_PRIO_BACKGROUND };
	struct redis r;
	struct member m[CLIENTS];
	struct worker w[NW];
	pthread_t th[NW];
	struct hits h = { 0 };
	int64_t seq, shared = 0;
	int pk, spk;
	json_object *t;

	redis_start(&r, NULL);
	sandbox_reset();
	for (int i = 0; i < CLIENTS; i++)
		member_open(&m[i], &r, i);
	wait_mounts(m, CLIENTS);
	seq = log_last_seq();
	for (int i = 0; i < NW; i++) {
		int c = i / (THREADS + 1), j = i % (THREADS + 1);

		w[i] = (struct worker){ .hc = m[c].hc, .who = c, .timeout_ms = 30000,
					.prio = j < THREADS ? prios[j] : RL_PRIO_USER,
					.search = j == THREADS, .count = j < THREADS ? PER : SEARCHES };
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NW; i++)
		worker_check(&w[i]);
	log_read(seq, &h);
	pk = peak(&h, -1, false, WINDOW_MS, 0, INFINITY);
	spk = peak(&h, -1, true, SEARCH_MS, 0, INFINITY);
	fprintf(stderr, "    %zu requests, peak %d in any %d ms (max %d), %d searches in any %d ms "
		"(max %d), %d answered 429\n", h.n, pk, WINDOW_MS, WIN_MAX, spk, SEARCH_MS, SEARCH_MAX,
		count(&h, -1, 429, 0, INFINITY));
	/* each call was sent once: nothing was refused, nothing retried */
	ASSERT_EQ(h.n, CLIENTS * (THREADS * PER + SEARCHES));
	ASSERT_EQ(count(&h, -1, 429, 0, INFINITY), 0);
	ASSERT_LE(pk, WIN_MAX);
	ASSERT_LE(spk, SEARCH_MAX);
	/* nine callers flat out: the window was filled, not left idle */
	ASSERT_GE(pk, WIN_MAX * 3 / 4);
	/* the status says so */
	t = team_status(m[0].hc);
	ASSERT(json_object_get_boolean(get(t, "connected")));
	ASSERT_STR(json_object_get_string(get(t, "budget")), "shared");
	ASSERT(json_object_is_type(get(t, "local_share"), json_type_null));
	ASSERT_EQ(json_object_get_int(get(t, "mounts")), CLIENTS);
	ASSERT_EQ(json_object_get_int64(get(t, "window.granted")), (int64_t)h.n);
	ASSERT_EQ(json_object_get_int(get(t, "window.max")), WIN_MAX);
	json_object_put(t);
	for (int i = 0; i < CLIENTS; i++) {
		shared += status_int(m[i].hc, "requests_shared");
		ASSERT_EQ(status_int(m[i].hc, "requests_local"), 0);
		ASSERT_EQ(status_int(m[i].hc, "went_local"), 0);
	}
	ASSERT_EQ(shared, (int64_t)h.n);
	/* and each client counted what it sent */
	for (int i = 0; i < CLIENTS; i++) {
		char ep[96];

		snprintf(ep, sizeof(ep), "GET /crm/v3/objects/%s/{id}", types[i]);
		ASSERT_EQ(calls(m[i].hc, ep), THREADS * PER);
	}
	free(h.v);
	for (int i = 0; i < CLIENTS; i++)
		member_close(&m[i]);
	redis_stop(&r);
}

/* Background work flat out on two clients cannot starve a third client's
 * user calls: background takes at most 60 % of the shared window, whoever
 * does it, so the user calls (up to 90 %) always find room. */
static void test_priorities(void)
{
	enum { BG = 2, USER_CALLS = 15 }; /* background callers on clients 0 and 2 */
	struct redis r;
	struct member m[CLIENTS];
	struct worker bg[2 * BG], user;
	pthread_t th[2 * BG], uth;
	atomic_bool stop = false;
	struct hits h = { 0 };
	int64_t seq;
	int pk_bg, pk;

	redis_start(&r, NULL);
	sandbox_reset();
	for (int i = 0; i < CLIENTS; i++)
		member_open(&m[i], &r, i);
	wait_mounts(m, CLIENTS);
	seq = log_last_seq();
	for (int i = 0; i < 2 * BG; i++) {
		int c = i < BG ? 0 : 2;

		bg[i] = (struct worker){ .hc = m[c].hc, .who = c, .prio = RL_PRIO_BACKGROUND,
					 .stop = &stop, .timeout_ms = 30000 };
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_run, &bg[i]), 0);
	}
	/* the background fills its part first */
	WAIT_FOR(({ json_object *t_ = team_status(m[1].hc);
		    int u_ = json_object_get_int(get(t_, "window.used"));
		    json_object_put(t_); u_ >= WIN_MAX * 6 / 10; }));
	/* every user call must find a slot within two window spans */
	user = (struct worker){ .hc = m[1].hc, .who = 1, .prio = RL_PRIO_USER,
				.count = USER_CALLS, .timeout_ms = 2 * SPAN_MS + 1000 };
	ASSERT_EQ(pthread_create(&uth, NULL, worker_run, &user), 0);
	pthread_join(uth, NULL);
	atomic_store(&stop, true);
	for (int i = 0; i < 2 * BG; i++)
		pthread_join(th[i], NULL);
	worker_check(&user);
	for (int i = 0; i < 2 * BG; i++)
		worker_check(&bg[i]);
	log_read(seq, &h);
	for (size_t i = 0; i < h.n; i++)
		if (h.v[i].who == 2)
			h.v[i].who = 0; /* the background, whichever client */
	pk_bg = peak(&h, 0, false, WINDOW_MS, 0, INFINITY);
	pk = peak(&h, -1, false, WINDOW_MS, 0, INFINITY);
	fprintf(stderr, "    background: %d calls, peak %d in any %d ms; user: %d calls; "
		"peak of both %d; %d answered 429\n", count(&h, 0, -1, 0, INFINITY), pk_bg,
		WINDOW_MS, count(&h, 1, -1, 0, INFINITY), pk, count(&h, -1, 429, 0, INFINITY));
	ASSERT_EQ(count(&h, -1, 429, 0, INFINITY), 0);
	ASSERT_EQ(count(&h, 1, -1, 0, INFINITY), USER_CALLS);
	ASSERT_LE(pk_bg, WIN_MAX * 6 / 10);
	ASSERT_LE(pk, WIN_MAX);
	free(h.v);
	for (int i = 0; i < CLIENTS; i++)
		member_close(&m[i]);
	redis_stop(&r);
}

/* Redis hung, killed and restarted under load: every call still works
 * within its deadline; while Redis is unreachable each client sends at most
 * its share (1/3) of the window; the 429s stay within the bound below; and
 * once Redis is back the shared budget resumes. */
static void test_redis_down(void)
{
	enum { NW = CLIENTS * THREADS };
	struct redis r;
	struct member m[CLIENTS];
	struct worker w[NW];
	pthread_t th[NW];
	atomic_bool stop = false;
	struct hits h = { 0 };
	int64_t seq, granted_before[CLIENTS];
	double t_kill, t_local, t_restart, t_shared;
	int n429, share = WIN_MAX / CLIENTS;
	json_object *t;

	redis_start(&r, NULL);
	sandbox_reset();
	for (int i = 0; i < CLIENTS; i++)
		member_open(&m[i], &r, i);
	wait_mounts(m, CLIENTS);
	seq = log_last_seq();
	for (int i = 0; i < NW; i++) {
		/* the calls a syscall makes (background work yields to them
		 * on a share of 6 as without a team: it has no deadline) */
		w[i] = (struct worker){ .hc = m[i / THREADS].hc, .who = i / THREADS,
					.prio = RL_PRIO_USER, .stop = &stop,
					.timeout_ms = 3 * SPAN_MS };
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	sleep_ms(SPAN_MS);

	/* hung: calls are cut at the command timeout, the clients go on on
	 * their shares; resumed: they come back */
	redis_signal(&r, SIGSTOP);
	for (int i = 0; i < CLIENTS; i++)
		WAIT_FOR(budget_is(m[i].hc, "local"));
	sleep_ms(1000);
	redis_signal(&r, SIGCONT);
	for (int i = 0; i < CLIENTS; i++)
		WAIT_FOR(budget_is(m[i].hc, "shared"));

	/* killed */
	t_kill = epoch_now();
	redis_kill(&r);
	for (int i = 0; i < CLIENTS; i++)
		WAIT_FOR(budget_is(m[i].hc, "local"));
	t_local = epoch_now();
	t = team_status(m[0].hc);
	ASSERT(json_object_get_boolean(get(t, "degraded")));
	ASSERT(!json_object_get_boolean(get(t, "connected")));
	ASSERT_EQ(json_object_get_int(get(t, "local_share_mounts")), CLIENTS);
	ASSERT_EQ(json_object_get_int(get(t, "local_share.parts")), CLIENTS);
	ASSERT_EQ(json_object_get_int(get(t, "local_share.window_max")), share);
	ASSERT_EQ(json_object_get_int(get(t, "local_share.search_max")), 1);
	json_object_put(t);
	/* two full windows on the shares alone */
	sleep_ms(2 * SPAN_MS);

	/* restarted, empty: back on the shared budget */
	for (int i = 0; i < CLIENTS; i++)
		granted_before[i] = status_int(m[i].hc, "requests_shared");
	t_restart = epoch_now();
	redis_spawn(&r);
	for (int i = 0; i < CLIENTS; i++)
		WAIT_FOR(budget_is(m[i].hc, "shared"));
	t_shared = epoch_now();
	sleep_ms(SPAN_MS);
	atomic_store(&stop, true);
	for (int i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NW; i++)
		worker_check(&w[i]);

	log_read(seq, &h);
	n429 = count(&h, -1, 429, 0, INFINITY);
	fprintf(stderr, "    %zu requests, %d answered 429 (%d before the kill, %d after the "
		"restart); peak %d in any %d ms\n", h.n, n429, count(&h, -1, 429, 0, t_kill),
		count(&h, -1, 429, t_restart, INFINITY), peak(&h, -1, false, WINDOW_MS, 0, INFINITY),
		WINDOW_MS);
	/* On its share, each client sends at most 1/3 of the window in any
	 * window: from the moment it went local (by t_local) to the restart. */
	for (int i = 0; i < CLIENTS; i++) {
		int pk = peak(&h, i, false, WINDOW_MS, t_local, t_restart);

		fprintf(stderr, "    client %d on its share: peak %d in any %d ms (share %d)\n", i,
			pk, WINDOW_MS, share);
		ASSERT_LE(pk, share);
		ASSERT_GE(pk, 1);
	}
	/* The 429 bound. Redis goes away with up to a full window of shared
	 * requests in the server's window; each client then caps its own at
	 * its share, but what it sent before still counts there, so the
	 * server may refuse a few until those leave. A client's first 429
	 * pauses its window for a span (TEN_SECONDLY_ROLLING), by when every
	 * request sent before Redis went away has left the server's window and
	 * the shares alone (3 x 6 <= 20) fit: so at most the calls it had in
	 * flight, THREADS per client, per outage (two here: hung, killed).
	 * Coming back, each client keeps its share one window more, until what
	 * it sent under it has left; between the first client back and the
	 * last, the team learns of the others' requests from the answers'
	 * Remaining (team_note_headers). Once all are back, none at all. */
	ASSERT_LE(n429, 2 * CLIENTS * THREADS);
	ASSERT_EQ(count(&h, -1, 429, t_shared, INFINITY), 0);
	/* shared again: the restarted Redis granted each client's calls */
	for (int i = 0; i < CLIENTS; i++)
		ASSERT_GT(status_int(m[i].hc, "requests_shared"), granted_before[i]);
	t = team_status(m[0].hc);
	ASSERT(json_object_get_boolean(get(t, "connected")));
	ASSERT_GT(json_object_get_int64(get(t, "window.granted")), 0);
	ASSERT_GE(json_object_get_int64(get(t, "went_local")), 2);
	ASSERT_GT(json_object_get_int64(get(t, "requests_local")), 0);
	json_object_put(t);
	free(h.v);
	for (int i = 0; i < CLIENTS; i++)
		member_close(&m[i]);
	redis_stop(&r);
}

struct canceller {
	int *flag;
	int64_t after_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	sleep_ms(c->after_ms);
	__atomic_store_n(c->flag, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The wait for the team keeps to the call's deadline and cancel flag, and
 * gives the local slot back meanwhile; a call without time for a round trip
 * to Redis is not sent on the shared budget, but goes on on a share. */
static void test_deadlines(void)
{
	struct redis r;
	struct member m[2];
	struct team_grant g;
	struct hs_call call;
	json_object *st, *v;
	int64_t seq, t0;
	int cancel = 0, held = 0;
	struct canceller cc = { .flag = &cancel, .after_ms = 300 };
	pthread_t th;
	char path[96];

	redis_start(&r, NULL);
	sandbox_reset();
	for (int i = 0; i < 2; i++)
		member_open(&m[i], &r, i);
	wait_mounts(m, 2);
	seq = log_last_seq();
	snprintf(path, sizeof(path), "/crm/v3/objects/contacts/%d", id_base[0]);

	/* with less than the team's command timeout left, no round trip to
	 * Redis: the call fails as for a wait past its deadline, nothing sent */
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + CMD_TIMEOUT_MS / 4 };
	ASSERT_EQ(hs_request(m[0].hc, &call, "GET", path, NULL, NULL), -EAGAIN);
	ASSERT_EQ(log_last_seq(), seq);

	/* another mount holds the whole shared window (in flight) */
	while (team_acquire(m[1].team, RL_PRIO_WRITE, false, &g) == 0)
		held++;
	ASSERT_EQ(held, WIN_MAX);
	/* a wait longer than the deadline: -EAGAIN at once, nothing sent */
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 1000 };
	ASSERT_EQ(hs_request(m[0].hc, &call, "GET", path, NULL, NULL), -EAGAIN);
	ASSERT_LE(hs_now_ms(), call.deadline_ms + DEADLINE_SLACK_MS);
	/* a long deadline: waits, and stops when cancelled */
	pthread_create(&th, NULL, cancel_later, &cc);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000,
				 .cancel = &cancel };
	t0 = hs_now_ms();
	ASSERT_EQ(hs_request(m[0].hc, &call, "GET", path, NULL, NULL), -ECANCELED);
	pthread_join(th, NULL);
	/* bounded by a cancel poll, far below the team's wait of a span */
	ASSERT_LT(hs_now_ms() - t0, SPAN_MS);
	/* the local slots taken meanwhile were given back */
	st = json_object_new_object();
	hs_client_stats(m[0].hc, st);
	ASSERT(json_object_object_get_ex(st, "rate", &v));
	ASSERT_EQ(json_object_get_int(get(v, "used_in_window")), 0);
	ASSERT_EQ(json_object_get_int(get(v, "in_flight")), 0);
	json_object_put(st);
	ASSERT_EQ(log_last_seq(), seq);

	/* Redis gone: the call goes on on this mount's share (half: two
	 * mounts were seen) */
	redis_kill(&r);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	ASSERT_EQ(hs_request(m[0].hc, &call, "GET", path, NULL, NULL), 0);
	ASSERT(budget_is(m[0].hc, "local"));
	/* and on the share, a call with little time left needs no round trip */
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + CMD_TIMEOUT_MS / 2 };
	ASSERT_EQ(hs_request(m[0].hc, &call, "GET", path, NULL, NULL), 0);
	ASSERT_LE(hs_now_ms(), call.deadline_ms + DEADLINE_SLACK_MS);
	ASSERT_EQ(log_last_seq(), seq + 2);
	ASSERT_EQ(status_int(m[0].hc, "requests_local"), 2);
	ASSERT_EQ(status_int(m[0].hc, "local_share.parts"), 2);
	ASSERT_EQ(status_int(m[0].hc, "local_share.window_max"), WIN_MAX / 2);
	for (int i = 0; i < 2; i++)
		member_close(&m[i]);
	redis_stop(&r);
}

static int64_t team_granted(struct team *t)
{
	json_object *o = json_object_new_object();
	int64_t n;

	team_stats(t, o);
	n = json_object_get_int64(get(o, "window.granted"));
	json_object_put(o);
	return n;
}

/* A daemon learns the portal id, which keys the team's budget, through the
 * client: the team is attached to a client made without one, and detached
 * before it is freed. */
static void test_attach(void)
{
	struct redis r;
	struct member m;
	struct team *t;
	struct hs_call call;
	json_object *o;
	char path[96];

	redis_start(&r, NULL);
	sandbox_reset();
	member_open(&m, &r, 0);
	t = m.team;
	snprintf(path, sizeof(path), "/crm/v3/objects/contacts/%d", id_base[0]);
	/* without one: the team sees nothing, the status has no "team" */
	ASSERT_EQ(hs_client_set_team(m.hc, NULL), 0);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	ASSERT_EQ(hs_request(m.hc, &call, "GET", path, NULL, NULL), 0);
	ASSERT_EQ(team_granted(t), 0);
	o = json_object_new_object();
	hs_client_stats(m.hc, o);
	ASSERT(!json_object_object_get_ex(o, "team", NULL));
	json_object_put(o);
	/* attached: every call goes through it; one team at a time */
	ASSERT_EQ(hs_client_set_team(m.hc, t), 0);
	ASSERT_EQ(hs_client_set_team(m.hc, t), -EBUSY);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	ASSERT_EQ(hs_request(m.hc, &call, "GET", path, NULL, NULL), 0);
	ASSERT_EQ(team_granted(t), 1);
	ASSERT(budget_is(m.hc, "shared"));
	/* detached while on its share: calls go on, on the client alone */
	redis_kill(&r);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	ASSERT_EQ(hs_request(m.hc, &call, "GET", path, NULL, NULL), 0);
	ASSERT(budget_is(m.hc, "local"));
	ASSERT_EQ(hs_client_set_team(m.hc, NULL), 0);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	ASSERT_EQ(hs_request(m.hc, &call, "GET", path, NULL, NULL), 0);
	o = json_object_new_object();
	hs_client_stats(m.hc, o);
	ASSERT(!json_object_object_get_ex(o, "team", NULL));
	json_object_put(o);
	member_close(&m);
	redis_stop(&r);
}

int main(int argc, char **argv)
{
	struct hs_client_opts o = { .token = "unit-token", .rate_max = 100000 };
	const char *why = NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SRCROOT\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* as fuse_set_signal_handlers() does in the daemon */
	log_set_level(getenv("HUBFS_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERR);
	sandbox_start(argv[1], "--rate-limit", "20/2s", "--contacts", "30", "--companies", "30",
		      "--deals", "30", "--latency-ms", "5", (char *)NULL);
	o.api_url = sandbox_url;
	ASSERT_EQ(hs_client_new(&o, &ctl_hc, &why), 0);
	RUN(test_attach);
	RUN(test_deadlines);
	RUN(test_shared_budget);
	RUN(test_priorities);
	RUN(test_redis_down);
	hs_client_free(ctl_hc);
	sandbox_stop();
	return 0;
}
