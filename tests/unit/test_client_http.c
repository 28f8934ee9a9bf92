/* test_client_http.c - hubspot.c end to end against a scripted HTTP/1.1
 * responder on 127.0.0.1 (port 0) running in this process.
 *
 * The responder records every request (method, path, Authorization, body,
 * arrival time), answers through a per-test handler, and can enforce a
 * rolling-window rate limit on arrival times exactly as a strict server
 * would, counting violations. Windows are shortened (300 ms) so the whole
 * test takes a few seconds.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <curl/curl.h>

#include "client/http.h"
#include "client/hubspot.h"
#include "client/log.h"
#include "tests/unit/responder.h"
#include "tests/unit/test.h"

#define TOKEN "pat-na1-11111111-2222-3333-4444-555555555555"
#define MAXARR 4096

/* A strict server's rate limit, checked on arrival times: 0 = off. */
struct strict_rl {
	int rl_max;
	int64_t rl_win;
	int s_max;
	int64_t s_win;
	int64_t arr[MAXARR], sarr[MAXARR]; /* protected by the server's lock */
	int narr, nsarr;                    /* protected by the server's lock */
	int violations;                     /* protected by the server's lock */
};

static int count_in(const int64_t *a, int n, int64_t now, int64_t win)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		if (a[i] > now - win && a[i] <= now)
			c++;
	return c;
}

/* A strict server: counts arrivals in (now - window, now]; over the limit
 * answers 429 with HubSpot's body. Returns true if the request is refused. */
static bool rate_check(struct server *srv, const struct srv_req *r, struct srv_reply *rep)
{
	struct strict_rl *s = srv->user;
	bool search = strstr(r->path, "/search") != NULL;
	bool refuse = false;

	pthread_mutex_lock(&srv->lock);
	if (search && s->s_max > 0) {
		if (count_in(s->sarr, s->nsarr, r->at_ms, s->s_win) >= s->s_max)
			refuse = true;
		else if (s->nsarr < MAXARR)
			s->sarr[s->nsarr++] = r->at_ms;
	} else if (!search && s->rl_max > 0) {
		int used = count_in(s->arr, s->narr, r->at_ms, s->rl_win);

		if (used >= s->rl_max) {
			refuse = true;
		} else {
			if (s->narr < MAXARR)
				s->arr[s->narr++] = r->at_ms;
			snprintf(rep->headers, sizeof(rep->headers),
				 "X-HubSpot-RateLimit-Max: %d\r\n"
				 "X-HubSpot-RateLimit-Interval-Milliseconds: %lld\r\n"
				 "X-HubSpot-RateLimit-Remaining: %d\r\n",
				 s->rl_max, (long long)s->rl_win, s->rl_max - used - 1);
		}
	}
	if (refuse) {
		s->violations++;
		rep->status = 429;
		snprintf(rep->body, sizeof(rep->body),
			 "{\"status\":\"error\",\"message\":\"You have reached your %s limit.\","
			 "\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"rl\",\"policyName\":\"%s\"}",
			 search ? "secondly" : "ten_secondly_rolling",
			 search ? "SECONDLY" : "TEN_SECONDLY_ROLLING");
	}
	pthread_mutex_unlock(&srv->lock);
	return refuse;
}

/* ---- helpers --------------------------------------------------------------- */

static struct hs_client *client_for(struct server *s, int rate_max, int interval_ms)
{
	char url[64];
	struct hs_client_opts o = { .api_url = url, .token = TOKEN, .rate_max = rate_max,
				    .rate_interval_ms = interval_ms, .transfer_timeout_ms = 5000 };
	struct hs_client *c = NULL;
	const char *why = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	ASSERT_EQ(hs_client_new(&o, &c, &why), 0);
	ASSERT(why == NULL);
	return c;
}

static struct hs_call user_call(int64_t deadline_in_ms)
{
	struct hs_call call = { .prio = RL_PRIO_USER };

	if (deadline_in_ms > 0)
		call.deadline_ms = hs_now_ms() + deadline_in_ms;
	return call;
}

static int64_t stat_calls(struct hs_client *c, const char *endpoint)
{
	json_object *st = json_object_new_object(), *calls, *n;
	int64_t v = 0;

	hs_client_stats(c, st);
	ASSERT(json_object_object_get_ex(st, "api_calls", &calls));
	if (json_object_object_get_ex(calls, endpoint, &n))
		v = json_object_get_int64(n);
	json_object_put(st);
	return v;
}

static int64_t stat_int(struct hs_client *c, const char *group, const char *key)
{
	json_object *st = json_object_new_object(), *g = st, *n;
	int64_t v = -999;

	hs_client_stats(c, st);
	if (group)
		ASSERT(json_object_object_get_ex(st, group, &g));
	if (json_object_object_get_ex(g, key, &n))
		v = n ? json_object_get_int64(n) : -1;
	json_object_put(st);
	return v;
}

/* ---- handlers ------------------------------------------------------------ */

static void h_ok(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	snprintf(rep->body, sizeof(rep->body), "{\"portalId\":123,\"results\":[],\"n\":%d}", nth);
}

static void h_429_once(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	if (nth == 0) {
		rep->status = 429;
		snprintf(rep->body, sizeof(rep->body),
			 "{\"status\":\"error\",\"message\":\"You have reached your ten_secondly_rolling limit.\","
			 "\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"c429\",\"policyName\":\"TEN_SECONDLY_ROLLING\"}");
		return;
	}
	h_ok(s, r, nth, rep);
}

static void h_429_retry_after_0(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	h_429_once(s, r, nth, rep);
	if (nth == 0)
		snprintf(rep->headers, sizeof(rep->headers), "Retry-After: 0\r\n");
}

static void h_429_always(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	h_429_once(s, r, 0, rep);
}

static void h_500_once(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	if (nth == 0) {
		rep->status = 503;
		rep->ctype = "text/plain";
		snprintf(rep->body, sizeof(rep->body), "upstream overloaded");
		return;
	}
	h_ok(s, r, nth, rep);
}

static void h_500_always(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	rep->status = 500;
	snprintf(rep->body, sizeof(rep->body),
		 "{\"status\":\"error\",\"message\":\"internal\",\"correlationId\":\"c500\",\"category\":\"INTERNAL_ERROR\"}");
}

static void h_slow(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	rep->delay_ms = 3000;
	h_ok(s, r, nth, rep);
}

static void h_404_html(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	rep->status = 404;
	rep->ctype = "text/html";
	snprintf(rep->headers, sizeof(rep->headers), "x-hubspot-correlation-id: corr-404\r\n");
	snprintf(rep->body, sizeof(rep->body), "<html><body>Not Found</body></html>");
}

static void h_400(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	rep->status = 400;
	snprintf(rep->body, sizeof(rep->body),
		 "{\"status\":\"error\",\"message\":\"Property values were not valid\","
		 "\"correlationId\":\"c400\",\"category\":\"VALIDATION_ERROR\"}");
}

static void h_daily(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	if (strcmp(r->method, "GET") == 0) {
		rep->status = 429;
		snprintf(rep->body, sizeof(rep->body),
			 "{\"status\":\"error\",\"message\":\"You have reached your daily limit.\","
			 "\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"cd\",\"policyName\":\"DAILY\"}");
		return;
	}
	h_ok(s, r, nth, rep);
}

static void h_latency(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	rep->delay_ms = (nth * 7) % 30;
	h_ok(s, r, nth, rep);
}

static void h_big(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	memset(rep->body, 'x', 4000);
	rep->body[4000] = '\0';
}

/* ---- tests ----------------------------------------------------------------- */

static void test_refuse_plain_http(void)
{
	static const struct { const char *url; int ok; } t[] = {
		{ "https://api.hubapi.com", 1 },
		{ "https://example.com:8443/base/", 1 },
		{ NULL, 1 }, /* default */
		{ "http://127.0.0.1:8080", 1 },
		{ "http://127.5.6.7", 1 },
		{ "http://localhost:9", 1 },
		{ "http://LOCALHOST", 1 },
		{ "http://[::1]:8080/", 1 },
		{ "http://api.hubapi.com", 0 },
		{ "http://10.0.0.1", 0 },
		{ "http://128.0.0.1", 0 },
		{ "http://127.0.0.1.evil.example", 0 },
		{ "http://localhost.evil.example", 0 },
		{ "http://[::2]", 0 },
		{ "http://[::ffff:127.0.0.1]", 0 },
		{ "ftp://127.0.0.1", 0 },
		{ "file:///etc/passwd", 0 },
		{ "not a url", 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hs_client_opts o = { .api_url = t[i].url, .token = TOKEN };
		struct hs_client *c = (struct hs_client *)1;
		const char *why = NULL;
		int rc = hs_client_new(&o, &c, &why);

		if (t[i].ok) {
			if (rc != 0)
				FAIL("%s refused: %s", t[i].url, why);
			hs_client_free(c);
		} else {
			if (rc != -EINVAL || c != NULL || !why)
				FAIL("%s accepted (rc %d)", t[i].url, rc);
		}
	}
	/* no token, or a token that would break the header */
	{
		struct hs_client_opts o = { .api_url = "https://api.hubapi.com" };
		struct hs_client *c;
		const char *why = NULL;

		ASSERT_EQ(hs_client_new(&o, &c, &why), -EINVAL);
		ASSERT(why != NULL);
		o.token = "abc\r\nX-Evil: 1";
		ASSERT_EQ(hs_client_new(&o, &c, &why), -EINVAL);
		o.token = "";
		ASSERT_EQ(hs_client_new(&o, &c, NULL), -EINVAL);
	}
}

static void test_bearer_and_stats(void)
{
	struct server *s = server_start(h_ok, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = user_call(5000);
	json_object *out = NULL, *v, *st;
	const char *txt;

	ASSERT(!hs_client_offline(c));
	ASSERT_EQ(hs_account_info(c, &call, &out), 0);
	ASSERT(json_object_object_get_ex(out, "portalId", &v));
	ASSERT_EQ(json_object_get_int(v), 123);
	ASSERT_EQ(call.http_status, 200);
	ASSERT_EQ(call.err.http_status, 0);
	json_object_put(out);
	ASSERT_EQ(server_nlog(s), 1);
	ASSERT_STR(s->log[0].method, "GET");
	ASSERT_STR(s->log[0].path, "/account-info/v3/details");
	ASSERT_STR(s->log[0].auth, "Bearer " TOKEN);

	/* a new token is used from the next call on */
	ASSERT_EQ(hs_client_set_token(c, "pat-na1-second"), 0);
	ASSERT_EQ(hs_client_set_token(c, "bad token"), -EINVAL);
	ASSERT_EQ(hs_account_info(c, &call, NULL), 0);
	ASSERT_STR(s->log[1].auth, "Bearer pat-na1-second");

	st = json_object_new_object();
	hs_client_stats(c, st);
	txt = json_object_to_json_string(st);
	ASSERT(strstr(txt, TOKEN) == NULL);
	ASSERT(strstr(txt, "pat-na1-second") == NULL);
	ASSERT(json_object_get_boolean(json_object_object_get(st, "online")));
	ASSERT(json_object_object_get(st, "last_error") == NULL);
	json_object_put(st);
	ASSERT_EQ(stat_calls(c, "GET /account-info/v3/details"), 2);
	ASSERT_EQ(stat_int(c, NULL, "http_429"), 0);
	ASSERT_EQ(stat_int(c, "rate", "used_in_window"), 2);
	ASSERT_EQ(stat_int(c, "rate", "window_max"), 100);
	ASSERT_EQ(stat_int(c, "rate", "daily_remaining"), -1); /* null */
	ASSERT(!hs_client_offline(c));
	hs_client_free(c);
	server_stop(s);
}

static void test_url_escaping(void)
{
	struct server *s = server_start(h_ok, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = user_call(5000);
	const char *ids[] = { "101", "102" };
	const char *afters[] = { NULL, "tok/en=" };
	const char *props[] = { "email", "first name" };
	json_object *out = NULL, *body, *inputs, *req;

	ASSERT_EQ(hs_list_page(c, &call, "contacts", "email,first name,a&b,,", "a/b&c=d%", true, &out), 0);
	json_object_put(out);
	ASSERT_STR(s->log[0].path, "/crm/v3/objects/contacts?limit=100&properties=email,first%20name,a%26b"
				   "&after=a%2Fb%26c%3Dd%25&archived=true");
	ASSERT_EQ(hs_list_page(c, &call, "deals", NULL, NULL, false, NULL), 0);
	ASSERT_STR(s->log[1].path, "/crm/v3/objects/deals?limit=100");
	ASSERT_EQ(hs_owners_page(c, &call, "x y+z", NULL), 0);
	ASSERT_STR(s->log[2].path, "/crm/v3/owners?limit=100&after=x%20y%2Bz");

	ASSERT_EQ(hs_batch_read(c, &call, "contacts", ids, 2, props, 2, NULL), 0);
	ASSERT_STR(s->log[3].method, "POST");
	ASSERT_STR(s->log[3].path, "/crm/v3/objects/contacts/batch/read");
	ASSERT_STR(s->log[3].body, "{\"inputs\":[{\"id\":\"101\"},{\"id\":\"102\"}],"
				   "\"properties\":[\"email\",\"first name\"]}");

	ASSERT_EQ(hs_assoc_batch_read(c, &call, "deals", "contacts", ids, afters, 2, NULL), 0);
	ASSERT_STR(s->log[4].path, "/crm/v4/associations/deals/contacts/batch/read");
	ASSERT_STR(s->log[4].body, "{\"inputs\":[{\"id\":\"101\"},{\"id\":\"102\",\"after\":\"tok/en=\"}]}");

	req = json_tokener_parse("{\"filterGroups\":[],\"limit\":200}");
	ASSERT_EQ(hs_search(c, &call, "contacts", req, NULL), 0);
	ASSERT_STR(s->log[5].path, "/crm/v3/objects/contacts/search");
	ASSERT_STR(s->log[5].body, "{\"filterGroups\":[],\"limit\":200}");
	json_object_put(req);

	/* inputs are shared, not consumed: the caller still owns them */
	inputs = json_tokener_parse("[{\"id\":\"101\",\"properties\":{\"firstname\":\"Ann\"}}]");
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "update", inputs, NULL), 0);
	ASSERT_STR(s->log[6].path, "/crm/v3/objects/contacts/batch/update");
	ASSERT_STR(s->log[6].body, "{\"inputs\":[{\"id\":\"101\",\"properties\":{\"firstname\":\"Ann\"}}]}");
	ASSERT_EQ(hs_assoc_batch_write(c, &call, "contacts", "companies", "associate/default", inputs, NULL), 0);
	ASSERT_STR(s->log[7].path, "/crm/v4/associations/contacts/companies/batch/associate/default");
	ASSERT_EQ(json_object_array_length(inputs), 1);
	json_object_put(inputs);

	ASSERT_EQ(hs_properties(c, &call, "tickets", NULL), 0);
	ASSERT_STR(s->log[8].path, "/crm/v3/properties/tickets");
	ASSERT_EQ(hs_pipelines(c, &call, "deals", NULL), 0);
	ASSERT_STR(s->log[9].path, "/crm/v3/pipelines/deals");

	/* the generic call: a body and an id path */
	body = json_object_new_object();
	json_object_object_add(body, "properties", json_object_new_object());
	ASSERT_EQ(hs_request(c, &call, "PATCH", "/crm/v3/objects/contacts/101", body, NULL), 0);
	ASSERT_STR(s->log[10].method, "PATCH");
	ASSERT_STR(s->log[10].body, "{\"properties\":{}}");
	json_object_put(body);
	ASSERT_EQ(hs_request(c, &call, "GET", "/crm/v3/objects/contacts/jo%40x.com?idProperty=email", NULL, NULL), 0);
	ASSERT_EQ(hs_request(c, &call, "DELETE", "/crm/v3/objects/contacts/102", NULL, NULL), 0);
	ASSERT_STR(s->log[12].method, "DELETE");
	ASSERT_EQ(server_nlog(s), 13);

	/* refused before sending */
	ASSERT_EQ(hs_list_page(c, &call, "con/tacts", NULL, NULL, false, &out), -EINVAL);
	ASSERT(out == NULL);
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "merge", inputs = json_object_new_array(), NULL), -EINVAL);
	json_object_put(inputs);
	ASSERT_EQ(hs_request(c, &call, "GET", "no-slash", NULL, NULL), -EINVAL);
	/* empty batches are answered without a call */
	ASSERT_EQ(hs_batch_read(c, &call, "contacts", NULL, 0, NULL, 0, &out), 0);
	ASSERT_EQ(json_object_array_length(json_object_object_get(out, "results")), 0);
	json_object_put(out);
	ASSERT_EQ(server_nlog(s), 13);

	/* endpoint counters are normalised */
	ASSERT_EQ(stat_calls(c, "GET /crm/v3/objects/contacts"), 1);
	ASSERT_EQ(stat_calls(c, "GET /crm/v3/objects/deals"), 1);
	ASSERT_EQ(stat_calls(c, "POST /crm/v3/objects/contacts/batch/read"), 1);
	ASSERT_EQ(stat_calls(c, "POST /crm/v4/associations/deals/contacts/batch/read"), 1);
	ASSERT_EQ(stat_calls(c, "POST /crm/v3/objects/contacts/search"), 1);
	ASSERT_EQ(stat_calls(c, "PATCH /crm/v3/objects/contacts/{id}"), 1);
	ASSERT_EQ(stat_calls(c, "GET /crm/v3/objects/contacts/{id}"), 1);
	ASSERT_EQ(stat_calls(c, "DELETE /crm/v3/objects/contacts/{id}"), 1);
	ASSERT_EQ(stat_int(c, "rate", "search_used"), 1);
	ASSERT_EQ(stat_int(c, "rate", "used_in_window"), 12);
	hs_client_free(c);
	server_stop(s);
}

static void test_429_then_200(void)
{
	struct server *s = server_start(h_429_once, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 300);
	struct hs_call call = user_call(5000);
	int64_t t0 = hs_now_ms(), dt;

	ASSERT_EQ(hs_list_page(c, &call, "contacts", "email", NULL, false, NULL), 0);
	dt = hs_now_ms() - t0;
	ASSERT_EQ(server_nlog(s), 2);
	/* the retry waited out the window (300 ms + 30 ms margin) */
	ASSERT_GE(s->log[1].at_ms - s->log[0].at_ms, 300);
	ASSERT_LT(dt, 2000);
	ASSERT_EQ(stat_int(c, NULL, "http_429"), 1);
	ASSERT_EQ(stat_calls(c, "GET /crm/v3/objects/contacts"), 2);
	ASSERT_EQ(call.http_status, 200);
	hs_client_free(c);
	server_stop(s);

	/* Retry-After replaces the policy's pause (660 ms here), down to the
	 * 100 ms floor */
	s = server_start(h_429_retry_after_0, NULL, NULL);
	c = client_for(s, 0, 600);
	call = user_call(5000);
	ASSERT_EQ(hs_list_page(c, &call, "contacts", "email", NULL, false, NULL), 0);
	ASSERT_EQ(server_nlog(s), 2);
	ASSERT_GE(s->log[1].at_ms - s->log[0].at_ms, 100);
	ASSERT_LT(s->log[1].at_ms - s->log[0].at_ms, 450);
	hs_client_free(c);
	server_stop(s);
}

static void test_500_then_200(void)
{
	struct server *s = server_start(h_500_once, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = user_call(5000);
	json_object *out = NULL;

	ASSERT_EQ(hs_account_info(c, &call, &out), 0);
	ASSERT(out != NULL);
	json_object_put(out);
	ASSERT_EQ(server_nlog(s), 2);
	ASSERT_EQ(stat_int(c, NULL, "retries"), 1);
	ASSERT_EQ(call.err.http_status, 0);
	hs_client_free(c);
	server_stop(s);
}

static void test_deadlines(void)
{
	struct server *s = server_start(h_500_always, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 300);
	struct hs_call call = user_call(500);
	int64_t t0 = hs_now_ms(), dt;

	/* 5xx until the deadline: the last error, -EIO, no later than the deadline */
	ASSERT_EQ(hs_account_info(c, &call, NULL), -EIO);
	dt = hs_now_ms() - t0;
	ASSERT_LT(dt, 700);
	ASSERT_GE(server_nlog(s), 1);
	ASSERT_EQ(call.err.http_status, 500);
	ASSERT_STR(call.err.category, "INTERNAL_ERROR");
	ASSERT_STR(call.err.correlation_id, "c500");
	{
		json_object *st = json_object_new_object();
		const char *le;

		hs_client_stats(c, st);
		le = json_object_get_string(json_object_object_get(st, "last_error"));
		ASSERT(le != NULL);
		ASSERT_STR(le, "GET /account-info/v3/details: HTTP 500 INTERNAL_ERROR: internal correlationId=c500");
		json_object_put(st);
	}
	hs_client_free(c);
	server_stop(s);

	/* 429 until the deadline: -EAGAIN, without sleeping past it */
	s = server_start(h_429_always, NULL, NULL);
	c = client_for(s, 0, 300);
	call = user_call(500);
	t0 = hs_now_ms();
	ASSERT_EQ(hs_account_info(c, &call, NULL), -EAGAIN);
	dt = hs_now_ms() - t0;
	ASSERT_LT(dt, 600);
	ASSERT_EQ(call.err.http_status, 429);
	ASSERT_STR(call.err.category, "RATE_LIMIT");
	ASSERT_EQ(server_nlog(s), 2); /* at 0 and after the 330 ms pause */
	/* a deadline already passed sends nothing */
	call = user_call(0);
	call.deadline_ms = hs_now_ms() - 1;
	ASSERT_EQ(hs_account_info(c, &call, NULL), -EAGAIN);
	ASSERT_EQ(server_nlog(s), 2);
	hs_client_free(c);
	server_stop(s);

	/* a server that does not answer: the transfer is cut at the deadline */
	s = server_start(h_slow, NULL, NULL);
	c = client_for(s, 0, 0);
	call = user_call(300);
	t0 = hs_now_ms();
	ASSERT_EQ(hs_account_info(c, &call, NULL), -EIO);
	dt = hs_now_ms() - t0;
	ASSERT_LT(dt, 800);
	ASSERT_GE(dt, 250);
	ASSERT_EQ(call.err.http_status, 0);
	ASSERT(call.err.message[0] != '\0');
	ASSERT(hs_client_offline(c));
	ASSERT_EQ(stat_int(c, NULL, "online"), 0);
	hs_client_free(c);
	server_stop(s);
}

static void test_error_bodies(void)
{
	struct server *s = server_start(h_404_html, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = user_call(2000);
	json_object *out = (json_object *)1;

	ASSERT_EQ(hs_request(c, &call, "GET", "/crm/v3/objects/contacts/x%40y.z?idProperty=email", NULL, &out), -ENOENT);
	ASSERT(out == NULL);
	ASSERT_EQ(call.http_status, 404);
	ASSERT_EQ(call.err.http_status, 404);
	ASSERT_STR(call.err.message, "HTTP 404 with a non-JSON body");
	ASSERT_STR(call.err.correlation_id, "corr-404");
	ASSERT_EQ(server_nlog(s), 1); /* a 404 is not retried */
	ASSERT(!hs_client_offline(c));
	hs_client_free(c);
	server_stop(s);

	s = server_start(h_400, NULL, NULL);
	c = client_for(s, 0, 0);
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "update", out = json_object_new_array(), NULL), 0);
	json_object_array_add(out, json_object_new_object());
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "update", out, NULL), -EINVAL);
	json_object_put(out);
	ASSERT_STR(call.err.category, "VALIDATION_ERROR");
	ASSERT_STR(call.err.message, "Property values were not valid");
	ASSERT_STR(call.err.correlation_id, "c400");
	ASSERT_EQ(server_nlog(s), 1);
	hs_client_free(c);
	server_stop(s);
}

/* A write whose answer is a 5xx may have been applied: it is not resent,
 * whatever it is (a create would duplicate a record; an update sent again
 * could undo someone else's change made meanwhile). */
static void test_write_not_resent(void)
{
	struct server *s = server_start(h_500_once, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = { .prio = RL_PRIO_WRITE, .deadline_ms = hs_now_ms() + 3000 };
	json_object *inputs = json_tokener_parse("[{\"properties\":{\"email\":\"a@b.c\"}}]");

	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "create", inputs, NULL), -EIO);
	ASSERT(call.in_doubt);
	ASSERT_EQ(server_nlog(s), 1);
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "create", inputs, NULL), 0);
	ASSERT(!call.in_doubt);
	hs_client_free(c);
	server_stop(s);

	/* no answer at all (timeout after sending): also in doubt */
	s = server_start(h_slow, NULL, NULL);
	c = client_for(s, 0, 0);
	call.deadline_ms = hs_now_ms() + 300;
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "create", inputs, NULL), -EIO);
	ASSERT(call.in_doubt);
	ASSERT_EQ(server_nlog(s), 1);
	json_object_put(inputs);
	hs_client_free(c);
	server_stop(s);

	s = server_start(h_500_once, NULL, NULL);
	c = client_for(s, 0, 0);
	call.deadline_ms = hs_now_ms() + 3000;
	inputs = json_tokener_parse("[{\"id\":\"1\",\"properties\":{\"email\":\"a@b.c\"}}]");
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "update", inputs, NULL), -EIO);
	ASSERT(call.in_doubt);
	ASSERT_EQ(server_nlog(s), 1);
	/* a read is resent */
	call.deadline_ms = hs_now_ms() + 3000;
	ASSERT_EQ(hs_account_info(c, &call, NULL), 0);
	ASSERT_EQ(server_nlog(s), 2);
	json_object_put(inputs);
	hs_client_free(c);
	server_stop(s);
}

/* The server acts on its second request, then closes that connection
 * without answering (the first one reaches it on a connection libcurl then
 * keeps for reuse). */
static void h_drop_second_of_conn(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep)
{
	(void)s;
	h_ok(s, r, nth, rep);
	if (nth == 1)
		rep->drop = true;
}

/* libcurl resends a request by itself when a reused connection closes before
 * any answer byte: a read gets through that way, but a write must not be
 * sent twice. It goes on a new connection, so the drop is seen, and it is in
 * doubt. */
static void test_dropped_connection_not_resent(void)
{
	static const char *const verbs[] = { "create", "update", "upsert", "archive" };
	struct server *s;
	struct hs_client *c;
	struct hs_call call;
	json_object *inputs = json_tokener_parse("[{\"id\":\"1\",\"properties\":{}}]");

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		char path[64];

		s = server_start(h_drop_second_of_conn, NULL, NULL);
		c = client_for(s, 0, 0);
		call = (struct hs_call){ .prio = RL_PRIO_WRITE, .deadline_ms = hs_now_ms() + 3000 };
		ASSERT_EQ(hs_account_info(c, &call, NULL), 0); /* a warm connection */
		ASSERT_EQ(hs_batch_write(c, &call, "contacts", verbs[i], inputs, NULL), -EIO);
		ASSERT(call.in_doubt);
		snprintf(path, sizeof(path), "/crm/v3/objects/contacts/batch/%s", verbs[i]);
		ASSERT_EQ(server_count(s, path), 1);
		ASSERT_EQ(server_nlog(s), 2);
		ASSERT_EQ(stat_int(c, NULL, "retries"), 0);
		hs_client_free(c);
		server_stop(s);
	}
	/* association writes too */
	s = server_start(h_drop_second_of_conn, NULL, NULL);
	c = client_for(s, 0, 0);
	call = (struct hs_call){ .prio = RL_PRIO_WRITE, .deadline_ms = hs_now_ms() + 3000 };
	ASSERT_EQ(hs_account_info(c, &call, NULL), 0);
	ASSERT_EQ(hs_assoc_batch_write(c, &call, "contacts", "companies", "associate/default", inputs, NULL),
		  -EIO);
	ASSERT(call.in_doubt);
	ASSERT_EQ(server_nlog(s), 2);
	hs_client_free(c);
	server_stop(s);

	/* A read on the reused connection is resent by libcurl: three requests
	 * reach the server, and the call succeeds with nothing in doubt. */
	s = server_start(h_drop_second_of_conn, NULL, NULL);
	c = client_for(s, 0, 0);
	call = (struct hs_call){ .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 3000 };
	ASSERT_EQ(hs_account_info(c, &call, NULL), 0);
	ASSERT_EQ(hs_account_info(c, &call, NULL), 0);
	ASSERT(!call.in_doubt);
	ASSERT_EQ(server_nlog(s), 3);
	json_object_put(inputs);
	hs_client_free(c);
	server_stop(s);
}

/* DAILY: not retried, held for reads, writes still go. */
static void test_daily(void)
{
	struct server *s = server_start(h_daily, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = user_call(3000);
	json_object *inputs = json_tokener_parse("[{\"id\":\"1\",\"properties\":{}}]");
	json_object *st = json_object_new_object(), *rate, *v;

	ASSERT_EQ(hs_account_info(c, &call, NULL), -EAGAIN);
	ASSERT_EQ(server_nlog(s), 1);
	ASSERT_STR(call.err.message, "You have reached your daily limit.");
	hs_client_stats(c, st);
	ASSERT(json_object_object_get_ex(st, "rate", &rate));
	ASSERT(json_object_object_get_ex(rate, "daily_paused", &v));
	ASSERT(json_object_get_boolean(v));
	json_object_put(st);
	call = user_call(200);
	ASSERT_EQ(hs_account_info(c, &call, NULL), -EAGAIN);
	ASSERT_EQ(server_nlog(s), 1);
	call = (struct hs_call){ .prio = RL_PRIO_WRITE, .deadline_ms = hs_now_ms() + 2000 };
	ASSERT_EQ(hs_batch_write(c, &call, "contacts", "update", inputs, NULL), 0);
	ASSERT_EQ(server_nlog(s), 2);
	json_object_put(inputs);
	hs_client_free(c);
	server_stop(s);
}

struct load_arg {
	struct hs_client *c;
	int id;
	int fails;
};

static void *load_main(void *p)
{
	struct load_arg *a = p;

	for (int i = 0; i < 6; i++) {
		struct hs_call call = { .prio = (enum rl_prio)((a->id + i) % 3),
					.deadline_ms = hs_now_ms() + 10000 };
		json_object *req = json_object_new_object();
		int rc;

		if (i % 3 == 2)
			rc = hs_search(a->c, &call, "contacts", req, NULL);
		else
			rc = hs_list_page(a->c, &call, "contacts", "email", NULL, false, NULL);
		json_object_put(req);
		if (rc != 0)
			a->fails++;
	}
	return NULL;
}

/* Four threads against a strict 5/300 ms server (and 2/200 ms for search),
 * with varying latency: no 429 at all, and no phantom external usage. */
static void test_no_429_under_load(void)
{
	static struct strict_rl rl = { .rl_max = 5, .rl_win = 300, .s_max = 2, .s_win = 200 };
	struct server *s = server_start(h_latency, rate_check, &rl);
	struct hs_client_opts o = { .token = TOKEN, .rate_max = 5, .rate_interval_ms = 300,
				    .search_per_sec = 2, .search_interval_ms = 200,
				    .transfer_timeout_ms = 5000 };
	struct hs_client *c = NULL;
	struct load_arg args[4];
	pthread_t t[4];
	char url[64];
	int64_t t0 = hs_now_ms(), dt;

	snprintf(url, sizeof(url), "http://localhost:%d", s->port);
	o.api_url = url;
	ASSERT_EQ(hs_client_new(&o, &c, NULL), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct load_arg){ .c = c, .id = i };
		ASSERT_EQ(pthread_create(&t[i], NULL, load_main, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ASSERT_EQ(args[i].fails, 0);
	}
	dt = hs_now_ms() - t0;
	ASSERT_EQ(rl.violations, 0);
	ASSERT_EQ(server_nlog(s), 24);
	ASSERT_EQ(stat_int(c, NULL, "http_429"), 0);
	ASSERT_EQ(stat_int(c, "rate", "external_requests"), 0);
	ASSERT_EQ(stat_calls(c, "GET /crm/v3/objects/contacts"), 16);
	ASSERT_EQ(stat_calls(c, "POST /crm/v3/objects/contacts/search"), 8);
	/* 16 window calls at 5 per 330 ms need at least 3 full windows */
	ASSERT_GE(dt, 900);
	ASSERT_LT(dt, 4000);
	hs_client_free(c);
	server_stop(s);
}

static void test_connection_refused(void)
{
	struct server *s = server_start(h_ok, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = user_call(400);
	int64_t t0 = hs_now_ms();

	server_stop(s); /* nothing listens on that port any more */
	ASSERT_EQ(hs_account_info(c, &call, NULL), -EIO);
	ASSERT_LT(hs_now_ms() - t0, 600);
	ASSERT(hs_client_offline(c));
	ASSERT_EQ(call.err.http_status, 0);
	ASSERT(!call.in_doubt);
	ASSERT_GE(stat_calls(c, "GET /account-info/v3/details"), 1);
	/* a create that never left is not in doubt */
	{
		json_object *in = json_tokener_parse("[{\"properties\":{}}]");

		call = user_call(200);
		ASSERT_EQ(hs_batch_write(c, &call, "deals", "create", in, NULL), -EIO);
		ASSERT(!call.in_doubt);
		json_object_put(in);
	}
	hs_client_free(c);
}

/* The HTTP layer's body bound. */
static void test_body_bound(void)
{
	struct server *s = server_start(h_big, NULL, NULL);
	struct http_opts ho = { .max_body = 1000 };
	struct http *h = NULL;
	struct http_resp resp;
	char url[64];
	struct http_req req = { .method = "GET", .url = url, .timeout_ms = 2000 };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", s->port);
	ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
	ASSERT_EQ(http_new(&ho, &h), 0);
	ASSERT_EQ(http_perform(h, &req, &resp), -EFBIG);
	ASSERT(resp.too_large);
	http_resp_clear(&resp);
	ho.max_body = 5000;
	http_free(h);
	ASSERT_EQ(http_new(&ho, &h), 0);
	ASSERT_EQ(http_perform(h, &req, &resp), 0);
	ASSERT_EQ(resp.len, 4000);
	ASSERT_EQ(resp.status, 200);
	ASSERT(resp.sent);
	http_resp_clear(&resp);
	http_free(h);
	curl_global_cleanup();
	server_stop(s);
}

struct canceller {
	int *flag;
	int after_ms;
};

static void *cancel_later(void *p)
{
	struct canceller *k = p;

	usleep((useconds_t)k->after_ms * 1000);
	__atomic_store_n(k->flag, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A call for background work with hs_call.cancel: it stops retrying, and
 * stops waiting for the limiter, once the flag is set (unmounting). */
static void test_cancel(void)
{
	struct server *s = server_start(h_500_always, NULL, NULL);
	struct hs_client *c = client_for(s, 0, 0);
	struct hs_call call = { .prio = RL_PRIO_BACKGROUND }; /* no deadline: retries forever */
	int flag = 0, sent;
	struct canceller k = { &flag, 300 };
	pthread_t t;
	int64_t t0 = hs_now_ms();

	call.cancel = &flag;
	ASSERT_EQ(pthread_create(&t, NULL, cancel_later, &k), 0);
	ASSERT_EQ(hs_account_info(c, &call, NULL), -ECANCELED);
	ASSERT_LT(hs_now_ms() - t0, 2000);
	pthread_join(t, NULL);
	sent = server_nlog(s);
	ASSERT_GE(sent, 1);
	usleep(300 * 1000);
	ASSERT_EQ(server_nlog(s), sent); /* nothing more */
	/* cancelled before it starts: nothing sent */
	call = (struct hs_call){ .prio = RL_PRIO_BACKGROUND, .cancel = &flag };
	ASSERT_EQ(hs_account_info(c, &call, NULL), -ECANCELED);
	ASSERT_EQ(server_nlog(s), sent);
	hs_client_free(c);
	server_stop(s);

	/* one request per 10 s: the second waits for the limiter, cancelled */
	s = server_start(h_ok, NULL, NULL);
	c = client_for(s, 1, 10000);
	call = user_call(5000);
	ASSERT_EQ(hs_account_info(c, &call, NULL), 0);
	flag = 0;
	call = (struct hs_call){ .prio = RL_PRIO_BACKGROUND, .cancel = &flag };
	t0 = hs_now_ms();
	ASSERT_EQ(pthread_create(&t, NULL, cancel_later, &k), 0);
	ASSERT_EQ(hs_account_info(c, &call, NULL), -ECANCELED);
	ASSERT_LT(hs_now_ms() - t0, 2000);
	ASSERT_GE(hs_now_ms() - t0, 250);
	pthread_join(t, NULL);
	ASSERT_EQ(server_nlog(s), 1);
	hs_client_free(c);
	server_stop(s);
}

/* RUN, with the time each case took: these cases wait on real clocks. */
#define TRUN(fn) do { int64_t t_ = hs_now_ms(); RUN(fn); \
	fprintf(stderr, "    %lld ms\n", (long long)(hs_now_ms() - t_)); } while (0)

int main(void)
{
	log_set_level(LOG_ERR - 1); /* the cases provoke errors on purpose */
	TRUN(test_refuse_plain_http);
	TRUN(test_bearer_and_stats);
	TRUN(test_url_escaping);
	TRUN(test_429_then_200);
	TRUN(test_500_then_200);
	TRUN(test_deadlines);
	TRUN(test_error_bodies);
	TRUN(test_write_not_resent);
	TRUN(test_dropped_connection_not_resent);
	TRUN(test_daily);
	TRUN(test_no_429_under_load);
	TRUN(test_connection_refused);
	TRUN(test_body_bound);
	TRUN(test_cancel);
	return 0;
}
