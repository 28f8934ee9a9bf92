/* test_oauth.c - client/oauth.c, alone and through hs_request, against a
 * scripted HTTP/1.1 responder on 127.0.0.1 (port 0) in this process.
 *
 * Covers: the refresh-token exchange (form body, Content-Type), lazy refresh
 * at 80% of the life with an injected clock, one refresh at a time under
 * concurrent callers, one refresh and one resend on 401
 * EXPIRED_AUTHENTICATION, a refused refresh token (fail fast, backoff, new
 * credentials), and that no token or secret reaches a log line, an error
 * string or the stats. stderr (where log.c writes) goes to a temp file for
 * the whole run, at debug level, and is searched at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "client/hubspot.h"
#include "client/log.h"
#include "client/oauth.h"
#include "tests/unit/capture.h"
#include "tests/unit/responder.h"
#include "tests/unit/test.h"

#define CLIENT_ID "test-client-id"
#define SECRET "s3cr3t+/=&client-secret"
#define RT "rt-7f1e2d3c-refresh-token"

/* ---- the responder ----------------------------------------------------- */

static void note_token(const char *t);

/* The token server's state (server.user); protected by the server's lock. */
struct hub {
	int issued;                  /* access tokens handed out */
	int expires_in;              /* of tokens handed out */
	char valid_rt[128];          /* refresh token the server accepts */
	char bad_token[64];          /* an access token answered 401 EXPIRED */
	bool always_expired;         /* every API call is 401 EXPIRED */
	long hub_id;                 /* the portal of the tokens handed out */
	bool hub_not_in_grant;       /* only GET /oauth/v1/access-tokens/{t} tells it */
};
#define HUB(s) ((struct hub *)(s)->user)

/* Form field value (undecoded) of name in body, into out. */
static bool form_get(const char *body, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t v = strcspn(p + n + 1, "&");

			snprintf(out, len, "%.*s", (int)v, p + n + 1);
			return true;
		}
	}
	return false;
}

/* HubSpot-like: the token endpoint checks the refresh token and issues
 * "AT-<n>"; API routes accept any issued token except bad_token. */
static void hubspot_like(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	(void)nth;
	if (strcmp(r->path, "/oauth/v1/token") == 0) {
		char rt[256] = "", tok[64];

		form_get(r->body, "refresh_token", rt, sizeof(rt));
		pthread_mutex_lock(&s->lock);
		if (strcmp(rt, HUB(s)->valid_rt) != 0) {
			rep->status = 400;
			/* Echo the refresh token, to check it is scrubbed from errors. */
			snprintf(rep->body, sizeof(rep->body),
				 "{\"status\":\"BAD_REFRESH_TOKEN\",\"message\":\"missing or unknown "
				 "refresh token %s\",\"correlationId\":\"c-1\"}", rt);
		} else {
			snprintf(tok, sizeof(tok), "AT-%d-0123456789abcdef", ++HUB(s)->issued);
			note_token(tok);
			snprintf(rep->body, sizeof(rep->body),
				 "{\"token_type\":\"bearer\",\"refresh_token\":\"%s\",\"access_token\":"
				 "\"%s\",\"expires_in\":%d%s%ld}", HUB(s)->valid_rt, tok, HUB(s)->expires_in,
				 HUB(s)->hub_not_in_grant ? ",\"x\":" : ",\"hub_id\":", HUB(s)->hub_id);
		}
		pthread_mutex_unlock(&s->lock);
		rep->delay_ms = 150; /* a slow endpoint, so concurrent callers overlap */
		return;
	}
	if (strncmp(r->path, "/oauth/v1/access-tokens/", 24) == 0) {
		pthread_mutex_lock(&s->lock);
		snprintf(rep->body, sizeof(rep->body), "{\"token\":\"%s\",\"hub_id\":%ld,"
			 "\"token_type\":\"access\"}", r->path + 24, HUB(s)->hub_id);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (HUB(s)->always_expired || (HUB(s)->bad_token[0] && strstr(r->auth, HUB(s)->bad_token))) {
		rep->status = 401;
		snprintf(rep->body, sizeof(rep->body),
			 "{\"status\":\"error\",\"message\":\"The OAuth token used to make this call "
			 "expired 0 second(s) ago.\",\"correlationId\":\"c-2\",\"category\":"
			 "\"EXPIRED_AUTHENTICATION\"}");
	} else {
		snprintf(rep->body, sizeof(rep->body), "{\"portalId\":42}");
	}
	pthread_mutex_unlock(&s->lock);
}

static struct server *hub_start(void)
{
	struct hub *h = calloc(1, sizeof(*h));

	ASSERT(h != NULL);
	h->expires_in = 1800;
	h->hub_id = 42;
	snprintf(h->valid_rt, sizeof(h->valid_rt), "%s", RT);
	return server_start(hubspot_like, NULL, h);
}

static void hub_stop(struct server *s)
{
	free(s->user);
	server_stop(s);
}

/* ---- helpers ----------------------------------------------------------------- */

/* Every token handed out in this run, to look for in logs and errors. */
static char seen_tokens[64][64];
static int nseen;

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void note_token(const char *t)
{
	pthread_mutex_lock(&seen_lock);
	for (int i = 0; i < nseen; i++)
		if (strcmp(seen_tokens[i], t) == 0)
			goto out;
	if (nseen < 64)
		snprintf(seen_tokens[nseen++], sizeof(seen_tokens[0]), "%s", t);
out:
	pthread_mutex_unlock(&seen_lock);
}

static void assert_no_secret(const char *text, const char *where)
{
	static const char *const secrets[] = { SECRET, RT, "s3cr3t", "rt-7f1e2d3c", "AT-",
					       "rt-wrong-one", "rt-rotated-elsewhere" };

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(text, secrets[i]))
			FAIL("a secret (%s) appears in %s: %s", secrets[i], where, text);
	for (int i = 0; i < nseen; i++)
		if (strstr(text, seen_tokens[i]))
			FAIL("access token %s appears in %s", seen_tokens[i], where);
}

static struct oauth *oauth_for(struct server *s, const char *rt)
{
	char url[96];
	struct oauth_opts oo = { .token_url = url, .client_id = CLIENT_ID, .client_secret = SECRET,
				 .refresh_token = rt, .retry_ms = 1000, .retry_max_ms = 4000,
				 .transfer_timeout_ms = 5000 };
	struct oauth *o = NULL;
	const char *why = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/oauth/v1/token", s->port);
	ASSERT_EQ(oauth_new(&oo, &o, &why), 0);
	ASSERT(why == NULL);
	return o;
}

static char *get_token(struct oauth *o, int64_t now, uint64_t *gen, int expect_rc)
{
	struct hs_error err = { 0 };
	char *t = NULL;
	uint64_t g = 0;
	int rc = oauth_token(o, now, hs_now_ms() + 10000, &t, &g, &err);

	ASSERT_EQ(rc, expect_rc);
	if (gen)
		*gen = g;
	assert_no_secret(err.message, "oauth_token's error");
	if (rc == 0) {
		ASSERT(t != NULL);
		note_token(t);
	} else {
		ASSERT(t == NULL);
	}
	return t;
}

static json_object *stats(struct oauth *o, int64_t now)
{
	json_object *st = json_object_new_object(), *a;

	oauth_stats(o, now, st);
	assert_no_secret(json_object_to_json_string(st), "oauth_stats");
	ASSERT(json_object_object_get_ex(st, "auth", &a));
	json_object_get(a);
	json_object_put(st);
	return a;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_exchange(void)
{
	struct server *s = hub_start();
	struct oauth *o = oauth_for(s, RT);
	struct hs_error err = { 0 };
	char v[256];
	uint64_t gen = 0;
	char *t;
	json_object *a;

	ASSERT_EQ(server_count(s, NULL), 0); /* oauth_new sends nothing */
	ASSERT_EQ(oauth_start(o, 1000, hs_now_ms() + 10000, &err), 0);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1);
	pthread_mutex_lock(&s->lock);
	ASSERT_STR(s->log[0].method, "POST");
	ASSERT_STR(s->log[0].ctype, "application/x-www-form-urlencoded");
	ASSERT_STR(s->log[0].auth, ""); /* no bearer on the token call */
	ASSERT(form_get(s->log[0].body, "grant_type", v, sizeof(v)));
	ASSERT_STR(v, "refresh_token");
	ASSERT(form_get(s->log[0].body, "client_id", v, sizeof(v)));
	ASSERT_STR(v, CLIENT_ID);
	ASSERT(form_get(s->log[0].body, "client_secret", v, sizeof(v)));
	ASSERT_STR(v, "s3cr3t%2B%2F%3D%26client-secret"); /* form-encoded */
	ASSERT(form_get(s->log[0].body, "refresh_token", v, sizeof(v)));
	ASSERT_STR(v, RT);
	pthread_mutex_unlock(&s->lock);

	t = get_token(o, 2000, &gen, 0);
	ASSERT_STR(t, "AT-1-0123456789abcdef");
	ASSERT_EQ(gen, 1);
	free(t);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1); /* fresh: no second call */

	a = stats(o, 2000);
	ASSERT_STR(jstr(a, "mode"), "oauth");
	ASSERT_STR(jstr(a, "state"), "ok");
	ASSERT(jstr(a, "error") == NULL);
	ASSERT_STR(jstr(a, "token_calls"), "1");
	ASSERT_STR(jstr(a, "expires_in_s"), "1799"); /* 1800 s from t=1000 ms, seen at 2000 ms */
	json_object_put(a);

	oauth_free(o);
	hub_stop(s);
}

/* Lazy refresh at 80% of expires_in, on an injected clock. */
static void test_refresh_before_expiry(void)
{
	struct server *s = hub_start();
	struct oauth *o;
	const int64_t t0 = 5000000;
	uint64_t gen;
	char *t;

	HUB(s)->expires_in = 100;
	o = oauth_for(s, RT);
	t = get_token(o, t0, &gen, 0); /* the first call exchanges */
	ASSERT_STR(t, "AT-1-0123456789abcdef");
	free(t);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1);

	t = get_token(o, t0 + 79999, &gen, 0);
	ASSERT_STR(t, "AT-1-0123456789abcdef");
	free(t);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1); /* before 80%: nothing */

	t = get_token(o, t0 + 80000, &gen, 0);
	ASSERT_STR(t, "AT-2-0123456789abcdef"); /* at 80%: refreshed, before expiry */
	ASSERT_EQ(gen, 2);
	free(t);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1 + 1);

	/* A token long expired (idle mount): refreshed before use, once. */
	t = get_token(o, t0 + 1000000, &gen, 0);
	ASSERT_STR(t, "AT-3-0123456789abcdef");
	free(t);
	t = get_token(o, t0 + 1000001, &gen, 0);
	ASSERT_STR(t, "AT-3-0123456789abcdef");
	free(t);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 3);
	oauth_free(o);
	hub_stop(s);
}

struct racer {
	struct oauth *o;
	int64_t now;
	char token[64];
	pthread_barrier_t *bar;
};

static void *race_main(void *p)
{
	struct racer *r = p;
	struct hs_error err;
	uint64_t gen;
	char *t = NULL;

	pthread_barrier_wait(r->bar);
	ASSERT_EQ(oauth_token(r->o, r->now, hs_now_ms() + 10000, &t, &gen, &err), 0);
	snprintf(r->token, sizeof(r->token), "%s", t);
	free(t);
	return NULL;
}

/* Many callers at once: one token call; with the old token still valid the
 * others use it, with it expired they wait for the new one. */
static void test_one_refresh_at_a_time(void)
{
	enum { N = 8 };
	struct server *s = hub_start();
	struct oauth *o;
	pthread_t th[N];
	struct racer r[N];
	pthread_barrier_t bar;
	int newer = 0;

	HUB(s)->expires_in = 100;
	o = oauth_for(s, RT);
	free(get_token(o, 0, NULL, 0));
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1);

	/* Expired: all wait for the one refresh, all get AT-2. */
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		r[i] = (struct racer){ .o = o, .now = 200000, .bar = &bar };
		ASSERT_EQ(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ASSERT_STR(r[i].token, "AT-2-0123456789abcdef");
	}
	pthread_barrier_destroy(&bar);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 2);

	/* Due but valid (90% of the life): one refreshes, others may use AT-2. */
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		r[i] = (struct racer){ .o = o, .now = 200000 + 90000, .bar = &bar };
		ASSERT_EQ(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (strcmp(r[i].token, "AT-3-0123456789abcdef") == 0)
			newer++;
		else
			ASSERT_STR(r[i].token, "AT-2-0123456789abcdef");
	}
	pthread_barrier_destroy(&bar);
	ASSERT_GE(newer, 1); /* at least the refreshing thread */
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 3);
	oauth_free(o);
	hub_stop(s);
}

/* The clock of token lives the client hands to oauth_*: the tests move it. */
static int64_t fake_ms = 5000000;
static int64_t fake_now(void)
{
	return fake_ms;
}

static struct hs_client *client_for(struct server *s, struct oauth *o)
{
	char url[64];
	struct hs_client_opts co = { .api_url = url, .oauth = o, .transfer_timeout_ms = 5000,
				     .oauth_now = fake_now };
	struct hs_client *c = NULL;
	const char *why = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	ASSERT_EQ(hs_client_new(&co, &c, &why), 0);
	return c;
}

static int account_info(struct hs_client *c, struct hs_call *call)
{
	json_object *out = NULL;
	int rc;

	*call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 10000 };
	rc = hs_account_info(c, call, &out);
	json_object_put(out);
	assert_no_secret(call->err.message, "call->err");
	return rc;
}

static void *info_main(void *p)
{
	struct hs_call call;

	ASSERT_EQ(account_info(p, &call), 0);
	return NULL;
}

/* 401 EXPIRED_AUTHENTICATION: one refresh, the request sent once more. */
static void test_401_expired(void)
{
	enum { N = 6 };
	struct server *s = hub_start();
	struct oauth *o = oauth_for(s, RT);
	struct hs_client *c = client_for(s, o);
	struct hs_call call;
	pthread_t th[N];
	json_object *st;

	ASSERT_EQ(account_info(c, &call), 0); /* exchanges lazily, then calls */
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1);
	ASSERT_EQ(server_count(s, "/account-info/v3/details"), 1);

	/* The server expires AT-1 early (as after expire_tokens()). */
	pthread_mutex_lock(&s->lock);
	snprintf(HUB(s)->bad_token, sizeof(HUB(s)->bad_token), "AT-1-");
	pthread_mutex_unlock(&s->lock);
	ASSERT_EQ(account_info(c, &call), 0);
	ASSERT_EQ(call.http_status, 200);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 2);
	ASSERT_EQ(server_count(s, "/account-info/v3/details"), 1 + 2); /* 401, then the resend */

	/* Many requests hit the 401 at once: still one refresh. */
	pthread_mutex_lock(&s->lock);
	snprintf(HUB(s)->bad_token, sizeof(HUB(s)->bad_token), "AT-2-");
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, info_main, c), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 3);

	/* A server that says EXPIRED to every token: one refresh per call, then
	 * the 401 stands (-EACCES); no loop. */
	pthread_mutex_lock(&s->lock);
	HUB(s)->always_expired = true;
	pthread_mutex_unlock(&s->lock);
	ASSERT_EQ(account_info(c, &call), -EACCES);
	ASSERT_EQ(call.err.http_status, 401);
	ASSERT_STR(call.err.category, "EXPIRED_AUTHENTICATION");
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 4);

	st = json_object_new_object();
	hs_client_stats(c, st);
	assert_no_secret(json_object_to_json_string(st), "hs_client_stats");
	json_object_put(st);
	hs_client_free(c);
	oauth_free(o);
	hub_stop(s);
}

/* A refused refresh token: oauth_start says why; later, without a valid
 * token, calls fail fast with -EAGAIN (nothing sent) until the backoff ends;
 * new credentials are tried at once. */
static void test_bad_refresh_token(void)
{
	struct server *s = hub_start();
	struct oauth *o = oauth_for(s, "rt-wrong-one");
	struct hs_client *c;
	struct hs_error err = { 0 };
	struct hs_call call;
	json_object *a, *st;
	int api, tok;

	ASSERT_EQ(oauth_start(o, hs_now_ms(), hs_now_ms() + 10000, &err), -EACCES);
	ASSERT_EQ(err.http_status, 400);
	ASSERT_STR(err.category, "BAD_REFRESH_TOKEN");
	ASSERT(strstr(err.message, "missing or unknown refresh token") != NULL);
	ASSERT(strstr(err.message, "rt-wrong-one") == NULL); /* the echo is scrubbed */
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1); /* a 400 is not retried */
	oauth_free(o);

	/* Good at first, then the refresh token is revoked and the token expires. */
	HUB(s)->expires_in = 2;
	o = oauth_for(s, RT);
	c = client_for(s, o);
	ASSERT_EQ(account_info(c, &call), 0);
	pthread_mutex_lock(&s->lock);
	snprintf(HUB(s)->valid_rt, sizeof(HUB(s)->valid_rt), "rt-rotated-elsewhere");
	pthread_mutex_unlock(&s->lock);
	fake_ms += 2100; /* the 2-s token expired */
	api = server_count(s, "/account-info/v3/details");
	tok = server_count(s, "/oauth/v1/token");
	ASSERT_EQ(account_info(c, &call), -EAGAIN);
	ASSERT_STR(call.err.category, "OAUTH_REFRESH_FAILED");
	ASSERT(strstr(call.err.message, "BAD_REFRESH_TOKEN") != NULL);
	ASSERT_EQ(server_count(s, "/account-info/v3/details"), api); /* nothing sent */
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), tok + 1);
	/* Within the backoff (1 s): fail fast, no token call either. */
	ASSERT_EQ(account_info(c, &call), -EAGAIN);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), tok + 1);

	a = stats(o, fake_ms);
	ASSERT_STR(jstr(a, "state"), "refresh_failed");
	ASSERT(jstr(a, "error") && strstr(jstr(a, "error"), "BAD_REFRESH_TOKEN"));
	ASSERT_STR(jstr(a, "refresh_failures"), "1");
	json_object_put(a);
	st = json_object_new_object();
	hs_client_stats(c, st);
	assert_no_secret(json_object_to_json_string(st), "hs_client_stats");
	json_object_put(st);

	/* After the backoff: tried again (and fails again). */
	fake_ms += 1100;
	ASSERT_EQ(account_info(c, &call), -EAGAIN);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), tok + 2);

	/* New credentials: tried at once, and the call goes through. */
	ASSERT_EQ(oauth_set_credentials(o, NULL, NULL, "rt-rotated-elsewhere"), 0);
	ASSERT_EQ(account_info(c, &call), 0);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), tok + 3);
	a = stats(o, fake_ms);
	ASSERT_STR(jstr(a, "state"), "ok");
	ASSERT(jstr(a, "error") == NULL);
	json_object_put(a);

	hs_client_free(c);
	oauth_free(o);
	hub_stop(s);
}

/* Unusable config and endpoints are refused before anything is sent. */
static void test_new_refuses(void)
{
	struct oauth_opts oo = { .token_url = "http://example.com/oauth/v1/token",
				 .client_id = "a", .client_secret = "b", .refresh_token = "c" };
	struct oauth *o = NULL;
	const char *why = NULL;

	ASSERT_EQ(oauth_new(&oo, &o, &why), -EINVAL); /* plain http off loopback */
	ASSERT(why != NULL && o == NULL);
	oo.token_url = "https://api.hubapi.com/oauth/v1/token";
	oo.refresh_token = "";
	ASSERT_EQ(oauth_new(&oo, &o, &why), -EINVAL);
	ASSERT(strstr(why, "refresh_token") != NULL);
	{
		struct hs_client_opts co = { .api_url = "https://x.test" }; /* no token, no oauth */
		struct hs_client *c = NULL;

		ASSERT_EQ(hs_client_new(&co, &c, &why), -EINVAL);
		ASSERT(c == NULL);
	}
}

static void check_stderr(void)
{
	g_autofree char *text = capture_end(NULL);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	int n = 0;

	for (char **l = lines; *l; l++) {
		if (!**l)
			continue;
		assert_no_secret(*l, "a log line");
		n++;
	}
	ASSERT_GT(n, 3); /* the logs did run (debug level) */
	ASSERT_GT(nseen, 3);
	fprintf(stderr, "  %d log lines, %d access tokens: no secret in any\n", n, nseen);
}

static int mismatch_calls;
static char mismatch_msg[1024];

static void on_mismatch(void *ud, const char *msg)
{
	(void)ud;
	mismatch_calls++;
	snprintf(mismatch_msg, sizeof(mismatch_msg), "%s", msg);
}

/* Every new access token must be for the mounted portal: a token of another
 * one is dropped, nothing more is handed out (edits stay queued), it is said
 * once, and new credentials end it. The grant here does not name the portal,
 * so it is asked for (GET /oauth/v1/access-tokens/{token}). */
static void test_portal_check(void)
{
	struct server *s = hub_start();
	struct hs_error err = { 0 };
	struct oauth *o;
	json_object *a;
	char *t = NULL;
	uint64_t gen;

	HUB(s)->expires_in = 100;
	HUB(s)->hub_not_in_grant = true;
	o = oauth_for(s, RT);
	ASSERT_EQ(oauth_start(o, 0, hs_now_ms() + 10000, &err), 0);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 1);
	ASSERT_EQ(server_nlog(s), 2); /* and the token's portal asked once */
	ASSERT_EQ(oauth_bind_portal(o, 42, on_mismatch, NULL), 0);
	free(get_token(o, 1000, &gen, 0));

	/* The credentials now give tokens of portal 43: at 80% of the life the
	 * refresh gets one, and it is refused. */
	pthread_mutex_lock(&s->lock);
	HUB(s)->hub_id = 43;
	pthread_mutex_unlock(&s->lock);
	ASSERT_EQ(oauth_token(o, 80000, hs_now_ms() + 10000, &t, &gen, &err), -EAGAIN);
	ASSERT(t == NULL);
	ASSERT_STR(err.category, "OAUTH_PORTAL_MISMATCH");
	ASSERT(strstr(err.message, "portal 43") && strstr(err.message, "portal 42"));
	assert_no_secret(err.message, "the mismatch error");
	ASSERT_EQ(mismatch_calls, 1);
	ASSERT(strstr(mismatch_msg, "nothing is sent") != NULL);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 2);
	/* Nothing more: no token (not even the old, still valid one), no call,
	 * said once. */
	get_token(o, 81000, NULL, -EAGAIN);
	get_token(o, 500000, NULL, -EAGAIN);
	ASSERT_EQ(server_count(s, "/oauth/v1/token"), 2);
	ASSERT_EQ(mismatch_calls, 1);
	a = stats(o, 81000);
	ASSERT_STR(jstr(a, "state"), "portal_mismatch");
	ASSERT(strstr(jstr(a, "error"), "portal 43") != NULL);
	json_object_put(a);

	/* Fixed credentials (SIGHUP): tokens of portal 42 again. */
	pthread_mutex_lock(&s->lock);
	HUB(s)->hub_id = 42;
	pthread_mutex_unlock(&s->lock);
	ASSERT_EQ(oauth_set_credentials(o, NULL, NULL, RT), 0);
	t = get_token(o, 82000, &gen, 0);
	ASSERT_STR(t, "AT-3-0123456789abcdef");
	free(t);
	a = stats(o, 82000);
	ASSERT_STR(jstr(a, "state"), "ok");
	json_object_put(a);
	oauth_free(o);
	hub_stop(s);
}

/* The first token already for another portal than the account's: bind says so. */
static void test_portal_check_at_bind(void)
{
	struct server *s = hub_start();
	struct hs_error err = { 0 };
	struct oauth *o = oauth_for(s, RT);

	ASSERT_EQ(oauth_start(o, 0, hs_now_ms() + 10000, &err), 0);
	ASSERT_EQ(server_nlog(s), 1); /* the grant named its portal */
	ASSERT_EQ(oauth_bind_portal(o, 7, on_mismatch, NULL), -EACCES);
	ASSERT_EQ(oauth_bind_portal(o, 42, on_mismatch, NULL), 0);
	oauth_free(o);
	hub_stop(s);
}

int main(void)
{
	capture_start("test_oauth");
	log_set_level(LOG_DEBUG);

	RUN(test_new_refuses);
	RUN(test_exchange);
	RUN(test_refresh_before_expiry);
	RUN(test_one_refresh_at_a_time);
	RUN(test_401_expired);
	RUN(test_bad_refresh_token);
	RUN(test_portal_check);
	RUN(test_portal_check_at_bind);
	check_stderr();
	return 0;
}
