/* hubspot.c - the client core of hubspot.h: lifecycle, the request loop
 * (retries, deadlines), error parsing and errno mapping, stats. The typed
 * calls that build URLs and bodies live in hubspot_calls.c; request slots
 * (the rate limiter and a team's shared budget) in hubspot_slot.c. Lock
 * rules: hubspot_int.h.
 */
#include "client/hubspot.h"
#include "client/hubspot_int.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <glib.h>

#include "cache/model/json_util.h"
#include "client/http.h"
#include "client/log.h"
#include "client/oauth.h"
#include "client/secret.h"

#define DEFAULT_API_URL "https://api.hubapi.com"
#define DEFAULT_TRANSFER_TIMEOUT_MS 20000
#define JSON_MAX_DEPTH 64
#define LOCKED_RETRY_MS 2000     /* 423: HubSpot's record lock lasts 2 s */
#define MAX_RETRY_AFTER_MS (5 * 60 * 1000) /* longer Retry-After on a 5xx: wait this */

/* libcurl's global state is process-wide by nature; count the clients that
 * need it so the last hs_client_free() releases it (LeakSanitizer clean). */
static pthread_mutex_t curl_global_lock = PTHREAD_MUTEX_INITIALIZER;
static int curl_global_users; /* protected by curl_global_lock */

int64_t hs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hs_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec hs_timespec_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	return ts;
}

void hs_error_line(char *buf, size_t len, const char *what, const struct hs_error *err)
{
	g_autofree char *line = NULL;

	if (err->http_status > 0)
		line = g_strdup_printf("%s%sHTTP %d %s%s%s%s%s", what ? what : "", what ? ": " : "",
				       err->http_status, err->category, err->category[0] ? ": " : "",
				       err->message, err->correlation_id[0] ? " correlationId=" : "",
				       err->correlation_id);
	else
		line = g_strdup_printf("%s%s%s", what ? what : "", what ? ": " : "", err->message);
	json_util_copy_utf8(buf, len, line);
}

/* ---- errors ------------------------------------------------------------ */

int hs_errno_from_status(long status, bool network_error)
{
	if (network_error)
		return -EIO;
	if (status >= 200 && status <= 299)
		return 0;
	switch (status) {
	case 400: return -EINVAL;
	case 401:
	case 403: return -EACCES;
	case 404: return -ENOENT;
	case 409: return -EEXIST;
	case 429: return -EAGAIN;
	default: return -EIO;
	}
}

/* An upper bound of the number of JSON values in buf: one more than the
 * separators and openings outside strings. */
static size_t json_values(const char *buf, size_t len)
{
	size_t n = 1;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == ',' || ch == '[' || ch == '{') {
			n++;
		}
	}
	return n;
}

int hs_json_parse(const char *buf, size_t len, json_object **out)
{
	g_autofree char *valid = NULL;
	json_tokener *tok;
	json_object *o;
	size_t i, end;
	int rc = -EINVAL;

	*out = NULL;
	for (i = 0; i < len && isspace((unsigned char)buf[i]); i++)
		;
	if (i == len)
		return 0;
	if (len > INT32_MAX - 1)
		return -EFBIG;
	/* json-c spends about 72 bytes on each value: [0,0,0,…] would make a
	 * 16 MiB answer take over half a gigabyte. */
	if (json_values(buf, len) > HS_JSON_MAX_VALUES)
		return -EFBIG;
	/* Bytes that are not UTF-8 become U+FFFD, so what hubfs renders and later
	 * compares an edit against is always UTF-8 (record files are validated). */
	if (!g_utf8_validate_len(buf, len, NULL)) {
		valid = g_utf8_make_valid(buf, (gssize)len);
		buf = valid;
		len = strlen(valid);
		if (len > INT32_MAX - 1)
			return -EFBIG;
	}
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* A bare number (or null) at the very end may still "continue": say it ended. */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	for (i = end; i < len && isspace((unsigned char)buf[i]); i++)
		;
	if (i != len) {
		json_object_put(o);
		goto out;
	}
	*out = o;   /* NULL for the JSON text null */
	rc = 0;
out:
	json_tokener_free(tok);
	return rc;
}

static enum rl_policy policy_from_message(const char *msg)
{
	if (!msg)
		return RL_POLICY_UNKNOWN;
	if (strstr(msg, "ten_secondly"))
		return RL_POLICY_TEN_SECONDLY;
	if (strstr(msg, "secondly limit"))
		return RL_POLICY_SECONDLY;
	if (strstr(msg, "daily limit"))
		return RL_POLICY_DAILY;
	return RL_POLICY_UNKNOWN;
}

/* A short, printable excerpt of a plain-text body; HTML is not worth it. */
static void text_excerpt(char *dst, size_t dstlen, long status, const char *body, size_t len)
{
	g_autofree char *line = NULL, *head = NULL;
	char ex[121];
	size_t i, n;

	if (len == 0 || !body) {
		snprintf(dst, dstlen, "HTTP %ld with an empty body", status);
		return;
	}
	if (memchr(body, '<', len < 512 ? len : 512)) {
		snprintf(dst, dstlen, "HTTP %ld with a non-JSON body", status);
		return;
	}
	/* Control characters (a NUL too) as spaces; the excerpt cut at a
	 * character boundary. */
	head = g_malloc(MIN(len, sizeof(ex)) + 1);
	for (i = 0; i < MIN(len, sizeof(ex)); i++) {
		unsigned char ch = (unsigned char)body[i];

		head[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	head[i] = '\0';
	n = json_util_copy_utf8(ex, sizeof(ex), head);
	while (n > 0 && ex[n - 1] == ' ')
		ex[--n] = '\0';
	line = g_strdup_printf("HTTP %ld: %s", status, ex);
	json_util_copy_utf8(dst, dstlen, line);
}

/* errors[].context.requiredGranularScopes (or requiredScopes) of a
 * MISSING_SCOPES body into err->scopes, space-separated. */
static void required_scopes(struct hs_error *err, json_object *o)
{
	json_object *errors, *ctx, *list;
	GString *g = g_string_new(NULL);

	if (json_object_object_get_ex(o, "errors", &errors) &&
	    json_object_is_type(errors, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(errors); i++) {
			json_object *e = json_object_array_get_idx(errors, i);

			if (!json_object_object_get_ex(e, "context", &ctx) ||
			    !json_object_is_type(ctx, json_type_object) ||
			    (!json_object_object_get_ex(ctx, "requiredGranularScopes", &list) &&
			     !json_object_object_get_ex(ctx, "requiredScopes", &list)) ||
			    !json_object_is_type(list, json_type_array))
				continue;
			for (size_t k = 0; k < json_object_array_length(list); k++) {
				json_object *sc = json_object_array_get_idx(list, k);

				if (json_object_is_type(sc, json_type_string))
					g_string_append_printf(g, "%s%s", g->len ? " " : "",
							       json_object_get_string(sc));
			}
		}
	}
	json_util_copy_utf8(err->scopes, sizeof(err->scopes), g->str);
	g_string_free(g, true);
}

void hs_error_parse(struct hs_error *err, long status, const char *body, size_t len,
		    const char *correlation_header, enum rl_policy *policy)
{
	json_object *o = NULL;
	const char *cat = NULL, *msg = NULL, *corr = NULL;

	memset(err, 0, sizeof(*err));
	err->http_status = (int)status;
	if (policy)
		*policy = RL_POLICY_UNKNOWN;
	if (body && len > 0 && hs_json_parse(body, len, &o) == 0 && o &&
	    json_object_is_type(o, json_type_object)) {
		cat = json_util_field(o, "category");
		if (!cat)
			cat = json_util_field(o, "errorType");
		msg = json_util_field(o, "message");
		corr = json_util_field(o, "correlationId");
		if (policy) {
			*policy = ratelimit_policy_from_name(json_util_field(o, "policyName"));
			if (*policy == RL_POLICY_UNKNOWN)
				*policy = policy_from_message(msg);
		}
		json_util_copy_utf8(err->category, sizeof(err->category), cat);
		required_scopes(err, o);
		if (msg)
			json_util_copy_utf8(err->message, sizeof(err->message), msg);
		else
			snprintf(err->message, sizeof(err->message), "HTTP %ld", status);
	} else {
		text_excerpt(err->message, sizeof(err->message), status, body, len);
	}
	if (!corr || !*corr)
		corr = correlation_header;
	json_util_copy_utf8(err->correlation_id, sizeof(err->correlation_id), corr);
	json_object_put(o);
}

static void scrub_field(char *f, const char *secret)
{
	secret_scrub(f, secret);
	for (; *f; f++)
		if ((unsigned char)*f < 0x20 || *f == 0x7f)
			*f = ' ';
}

void hs_error_scrub(struct hs_error *err, const char *secret)
{
	scrub_field(err->category, secret);
	scrub_field(err->message, secret);
	scrub_field(err->correlation_id, secret);
	scrub_field(err->scopes, secret);
}

/* ---- client lifecycle ---------------------------------------------------- */

static int curl_global_get(void)
{
	int rc = 0;

	pthread_mutex_lock(&curl_global_lock);
	if (curl_global_users == 0 && secret_curl_global_init() != CURLE_OK)
		rc = -EIO;
	else
		curl_global_users++;
	pthread_mutex_unlock(&curl_global_lock);
	return rc;
}

static void curl_global_put(void)
{
	pthread_mutex_lock(&curl_global_lock);
	if (curl_global_users > 0 && --curl_global_users == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&curl_global_lock);
}

int hs_client_new(const struct hs_client_opts *opts, struct hs_client **out, const char **why)
{
	struct http_opts hopts = { 0 };
	const char *url = opts->api_url && *opts->api_url ? opts->api_url : DEFAULT_API_URL;
	const char *dummy;
	struct hs_client *c = NULL;
	pthread_condattr_t ca;
	size_t n;
	int rc;

	*out = NULL;
	if (!why)
		why = &dummy;
	*why = NULL;
	if (!opts->oauth && !secret_token_ok(opts->token)) {
		*why = "missing or malformed token";
		return -EINVAL;
	}
	rc = http_url_allowed(url, why);
	if (rc < 0)
		return rc;
	rc = curl_global_get();
	if (rc < 0) {
		*why = "libcurl initialisation failed";
		return rc;
	}
	rc = -ENOMEM;
	*why = "out of memory";
	c = calloc(1, sizeof(*c));
	if (!c) {
		curl_global_put();
		return rc;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->base_url = strdup(url);
	c->oauth = opts->oauth;
	c->oauth_now = opts->oauth_now ? opts->oauth_now : hs_now_ms;
	c->team = opts->team;
	c->team_parts = 1;
	c->token = c->oauth ? NULL : strdup(opts->token);
	c->rl = ratelimit_new(opts->rate_max, opts->rate_interval_ms, opts->search_per_sec);
	c->calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if (!c->base_url || (!c->token && !c->oauth) || !c->rl)
		goto fail;
	n = strlen(c->base_url);
	while (n > 0 && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	if (opts->search_interval_ms > 0)
		ratelimit_set_search_interval(c->rl, opts->search_interval_ms);
	c->transfer_timeout_ms = opts->transfer_timeout_ms > 0 ? opts->transfer_timeout_ms :
				 DEFAULT_TRANSFER_TIMEOUT_MS;
	hopts.ca_file = opts->ca_file;
	rc = http_new(&hopts, &c->http);
	if (rc < 0) {
		*why = rc == -ENOMEM ? "out of memory" : "libcurl share setup failed";
		goto fail;
	}
	*why = NULL;
	*out = c;
	return 0;
fail:
	hs_client_free(c);
	return rc;
}

void hs_client_free(struct hs_client *c)
{
	if (!c)
		return;
	http_free(c->http);
	ratelimit_free(c->rl);
	if (c->calls)
		g_hash_table_destroy(c->calls);
	secret_free(c->token);
	free(c->base_url);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
	curl_global_put();
}

int hs_client_set_token(struct hs_client *c, const char *token)
{
	char *t, *old;

	if (!secret_token_ok(token))
		return -EINVAL;
	t = strdup(token);
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	old = c->token;
	c->token = t;
	pthread_mutex_unlock(&c->lock);
	secret_free(old);
	return 0;
}

/* ---- secrets out of what the server says --------------------------------- */

/* s with the attempt's token and every secret the client holds blanked. */
static void scrub_text(struct hs_client *c, char *s, const char *token)
{
	secret_scrub(s, token);
	pthread_mutex_lock(&c->lock);
	secret_scrub(s, c->token);
	pthread_mutex_unlock(&c->lock);
	if (c->oauth)
		oauth_scrub(c->oauth, s);
}

void hs_client_scrub(struct hs_client *c, char *s)
{
	if (c && s)
		scrub_text(c, s, NULL);
}

static void scrub_error(struct hs_client *c, struct hs_error *e, const char *token)
{
	hs_error_scrub(e, token);
	scrub_text(c, e->category, NULL);
	scrub_text(c, e->message, NULL);
	scrub_text(c, e->correlation_id, NULL);
}

/* The strings of a successful answer's "errors" (a 207 batch answer lists
 * the inputs HubSpot refused, with messages that end up in errors.log),
 * blanked in place: json-c owns the bytes, and blanking keeps their length. */
static void scrub_json(struct hs_client *c, json_object *v, const char *token, int depth)
{
	if (!v || depth > 8)
		return;
	switch (json_object_get_type(v)) {
	case json_type_string:
		scrub_text(c, (char *)json_object_get_string(v), token);
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			scrub_json(c, json_object_array_get_idx(v, i), token, depth + 1);
		break;
	case json_type_object: {
		json_object_object_foreach(v, k, x) {
			(void)k;
			scrub_json(c, x, token, depth + 1);
		}
		break;
	}
	default:
		break;
	}
}

static void scrub_answer(struct hs_client *c, json_object *o, const char *token)
{
	json_object *errs;

	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "errors", &errs))
		scrub_json(c, errs, token, 0);
}

/* ---- response caps --------------------------------------------------------- */

/* The largest answer an endpoint may give. HubSpot's pages are small: 100
 * records (200 for search) of a few KB each even with every property, a few
 * hundred property definitions; so a larger answer is a broken or hostile
 * server, refused before it is parsed (hs_json_parse also caps the values). */
static size_t response_cap(const char *path)
{
	if (strncmp(path, "/account-info/", 14) == 0)
		return 1u << 20;
	if (strncmp(path, "/crm/v3/owners", 14) == 0 || strncmp(path, "/crm/v3/pipelines/", 18) == 0)
		return 4u << 20;
	if (strncmp(path, "/crm/v4/associations/", 21) == 0)
		return 32u << 20; /* up to 1,000 records' links in one batch/read */
	return 16u << 20;
}

/* ---- request loop ----------------------------------------------------------- */

/* "GET /crm/v3/objects/contacts/{id}" from "GET" + "/crm/v3/objects/contacts/123?x=y":
 * the query goes, and segments that are ids (all digits, or escaped or
 * e-mail-like values) become {id}, so counters stay few and hold no PII. */
static void endpoint_key(const char *method, const char *path, char *buf, size_t buflen)
{
	size_t n = (size_t)snprintf(buf, buflen, "%s ", method);
	const char *p = path;

	while (*p && *p != '?' && n + 1 < buflen) {
		const char *seg = p + 1, *e = seg;
		bool digits = true, idlike = false;

		while (*e && *e != '/' && *e != '?') {
			if (!isdigit((unsigned char)*e))
				digits = false;
			if (*e == '%' || *e == '@')
				idlike = true;
			e++;
		}
		if (e > seg && (digits || idlike))
			n += (size_t)snprintf(buf + n, buflen - n, "/{id}");
		else
			n += (size_t)snprintf(buf + n, buflen - n, "/%.*s", (int)(e - seg), seg);
		if (n >= buflen)
			n = buflen - 1;
		p = e;
	}
	buf[n < buflen ? n : buflen - 1] = '\0';
}

static bool path_is_search(const char *path)
{
	size_t n = strcspn(path, "?");

	return n >= 7 && memcmp(path + n - 7, "/search", 7) == 0;
}

static bool path_ends_with(const char *path, const char *suffix)
{
	size_t n = strcspn(path, "?"), m = strlen(suffix);

	return n >= m && memcmp(path + n - m, suffix, m) == 0;
}

/* May this request be sent again when its first sending may have reached
 * the server? Only the reads: GET, and the POSTs that read (search,
 * batch/read, the v4 association batch/read). A write sent twice is applied
 * twice: a create makes a duplicate record, and an update, archive or
 * association sent again after someone else changed the record would undo
 * that change. So a write whose answer is lost is left in doubt for the
 * caller, which looks the outcome up before it sends anything again. */
static bool request_resendable(const char *method, const char *path)
{
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		return true;
	if (strcmp(method, "POST") != 0)
		return false;
	return path_ends_with(path, "/search") || path_ends_with(path, "/batch/read");
}

static bool status_retryable(long status)
{
	return (status >= 500 && status <= 599 && status != 501 && status != 505) ||
	       status == 423 || status == 477 || status == 408;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = hs_timespec_ms(hs_now_ms() + ms);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Sleep before a retry: 0, or -ECANCELED as soon as the call is cancelled. */
static int retry_sleep(const struct hs_call *call, int64_t ms)
{
	int64_t end = hs_now_ms() + ms;

	while (!hs_cancelled(call)) {
		int64_t left = end - hs_now_ms();

		if (left <= 0)
			return 0;
		sleep_ms(call->cancel && left > HS_CANCEL_POLL_MS ? HS_CANCEL_POLL_MS : left);
	}
	return -ECANCELED;
}

static void set_last_error(struct hs_client *c, const char *endpoint, const struct hs_error *e)
{
	pthread_mutex_lock(&c->lock);
	hs_error_line(c->last_error, sizeof(c->last_error), endpoint, e);
	pthread_mutex_unlock(&c->lock);
}

/* The 401 EXPIRED_AUTHENTICATION hook: with OAuth, make the next token_get()
 * refresh (once per token, see oauth.h) and let the caller retry; 0 then.
 * Private-app tokens do not expire: -ENOTSUP, the 401 stands. */
static int auth_refresh(struct hs_client *c, uint64_t gen)
{
	if (!c->oauth)
		return -ENOTSUP;
	oauth_expired(c->oauth, gen, c->oauth_now());
	return 0;
}

/* The bearer token for the next attempt (a copy: secret_free it) and, with
 * OAuth, its generation. 0, or -ENOMEM / -EAGAIN (no valid OAuth token:
 * call->err says why). */
static int token_get(struct hs_client *c, struct hs_call *call, char **token, uint64_t *gen)
{
	*gen = 0;
	if (c->oauth)
		return oauth_token(c->oauth, c->oauth_now(), call->deadline_ms, token, gen, &call->err);
	pthread_mutex_lock(&c->lock);
	*token = strdup(c->token);
	pthread_mutex_unlock(&c->lock);
	if (*token)
		return 0;
	json_util_copy_utf8(call->err.message, sizeof(call->err.message), "out of memory");
	return -ENOMEM;
}

/* Delay before the next attempt, or -1 if it would pass the deadline. */
static int64_t retry_delay(struct hs_client *c, struct hs_call *call, unsigned *attempt,
			   long status, int64_t retry_after_ms)
{
	int64_t d = ratelimit_backoff_ms((*attempt)++, g_random_int());

	if (retry_after_ms > MAX_RETRY_AFTER_MS)
		retry_after_ms = MAX_RETRY_AFTER_MS;
	if (retry_after_ms > d)
		d = retry_after_ms;
	if (status == 423 && d < LOCKED_RETRY_MS)
		d = LOCKED_RETRY_MS;
	if (call->deadline_ms > 0 && hs_now_ms() + d >= call->deadline_ms)
		return -1;
	pthread_mutex_lock(&c->lock);
	c->retries++;
	pthread_mutex_unlock(&c->lock);
	return d;
}

/* One hs_request: what its attempts share. */
struct request {
	struct hs_client *c;
	struct hs_call *call;
	const char *path;
	char endpoint[160];
	bool search, resendable;
	bool refreshed;          /* an expired OAuth token was refreshed once */
	uint64_t gen;            /* the generation of the token sent */
	char *token;             /* the last attempt's (kept to scrub its answer) */
	unsigned attempt;        /* retries so far, for the backoff */
	json_object **out;
};

/* What an attempt leads to: the call is over (with *rc), or it is tried again. */
enum next { NEXT_DONE, NEXT_AGAIN };

/* Wait before the next attempt: NEXT_AGAIN, or NEXT_DONE when the wait would
 * pass the deadline (*rc stands) or the call was cancelled meanwhile. */
static enum next retry_after(struct request *r, long status, int64_t retry_after_ms, int *rc)
{
	int64_t delay = retry_delay(r->c, r->call, &r->attempt, status, retry_after_ms);

	if (delay < 0)
		return NEXT_DONE;
	if (status)
		log_info("%s: HTTP %ld; retrying in %lld ms", r->endpoint, status, (long long)delay);
	else
		log_info("%s: %s; retrying in %lld ms", r->endpoint, r->call->err.message,
			 (long long)delay);
	if (retry_sleep(r->call, delay) != 0) {
		*rc = -ECANCELED;
		return NEXT_DONE;
	}
	return NEXT_AGAIN;
}

/* No HTTP answer (network failure, timeout, a body past its cap). A write
 * that may have reached the server is never sent again: in doubt. */
static enum next on_no_answer(struct request *r, const struct http_resp *resp, int hrc, int *rc)
{
	struct hs_call *call = r->call;

	memset(&call->err, 0, sizeof(call->err));
	json_util_copy_utf8(call->err.message, sizeof(call->err.message),
			    resp->error[0] ? resp->error : "request failed");
	scrub_error(r->c, &call->err, r->token);
	call->http_status = 0;
	*rc = hrc == -ENOMEM ? -ENOMEM : hs_errno_from_status(0, true);
	if (hrc == -EFBIG || hrc == -ENOMEM)
		return NEXT_DONE;
	if (!r->resendable && resp->sent) {
		call->in_doubt = true;
		return NEXT_DONE;
	}
	return retry_after(r, 0, -1, rc);
}

/* A 2xx: parse the body into *r->out. */
static int on_success(struct request *r, const struct http_resp *resp)
{
	struct hs_call *call = r->call;
	json_object *o = NULL;
	int prc = r->out ? hs_json_parse(resp->body ? resp->body : "", resp->len, &o) : 0;

	if (prc < 0) {
		hs_error_parse(&call->err, resp->status, NULL, 0, resp->correlation_id, NULL);
		scrub_error(r->c, &call->err, r->token);
		if (prc == -EFBIG)
			snprintf(call->err.message, sizeof(call->err.message),
				 "HTTP %ld with a body of more than %d JSON values", resp->status,
				 HS_JSON_MAX_VALUES);
		else
			snprintf(call->err.message, sizeof(call->err.message),
				 "HTTP %ld with an unparseable JSON body", resp->status);
		return -EIO;
	}
	scrub_answer(r->c, o, r->token);
	if (r->out)
		*r->out = o;
	memset(&call->err, 0, sizeof(call->err));
	return 0;
}

/* An error status: 429 waits for the limiter (but the daily limit), an
 * expired OAuth token is refreshed once, retryable statuses back off (a
 * write answered 5xx goes in doubt instead), the rest is the call's errno. */
static enum next on_status(struct request *r, const struct http_resp *resp, enum rl_policy policy,
			   int *rc)
{
	struct hs_call *call = r->call;

	if (resp->status != 429) {
		hs_error_parse(&call->err, resp->status, resp->body, resp->len, resp->correlation_id,
			       &policy);
		scrub_error(r->c, &call->err, r->token);
	}
	*rc = hs_errno_from_status(resp->status, false);
	if (resp->status == 429) {
		/* DAILY is not retried: nothing will change for hours. The other
		 * policies paused the limiter; hs_slot_acquire waits. */
		if (policy == RL_POLICY_DAILY) {
			log_err("%s: HubSpot's daily API limit is reached; reads are held, writes are "
				"tried again later (correlationId=%s)", r->endpoint,
				call->err.correlation_id);
			return NEXT_DONE;
		}
		log_warn("%s: HTTP 429 (%s policy) correlationId=%s", r->endpoint,
			 ratelimit_policy_name(policy), call->err.correlation_id);
		return NEXT_AGAIN;
	}
	if (resp->status == 401 && !r->refreshed &&
	    strcmp(call->err.category, "EXPIRED_AUTHENTICATION") == 0 &&
	    auth_refresh(r->c, r->gen) == 0) {
		r->refreshed = true;
		return NEXT_AGAIN;
	}
	if (!status_retryable(resp->status))
		return NEXT_DONE;
	/* 423 and 477 say the request was not applied; a 5xx may have been, so
	 * a write is not sent again. */
	if (!r->resendable && resp->status >= 500) {
		call->in_doubt = true;
		return NEXT_DONE;
	}
	return retry_after(r, resp->status, resp->rl.retry_after_ms, rc);
}

/* One attempt: a token, a request slot, the transfer, its outcome. */
static enum next attempt(struct request *r, struct http_req *req, struct http_resp *resp, int *rc)
{
	struct hs_call *call = r->call;
	enum rl_policy policy = RL_POLICY_UNKNOWN;
	struct hs_slot slot;
	int64_t now;
	int hrc;

	http_resp_clear(resp);
	secret_free(r->token);
	r->token = NULL;
	/* The token first: an OAuth refresh may wait, and a call that cannot
	 * have one takes no request slot. */
	*rc = token_get(r->c, call, &r->token, &r->gen);
	if (*rc < 0)
		return NEXT_DONE;
	*rc = hs_slot_acquire(r->c, call, r->search, &slot);
	if (*rc == -ECANCELED) {
		json_util_copy_utf8(call->err.message, sizeof(call->err.message), "cancelled");
		return NEXT_DONE;
	}
	if (*rc < 0) {
		/* Keep the last attempt's error if there was one. */
		if (!call->err.message[0])
			json_util_copy_utf8(call->err.message, sizeof(call->err.message),
					    "rate limited: no request slot before the deadline");
		*rc = -EAGAIN;
		return NEXT_DONE;
	}
	now = hs_now_ms();
	req->timeout_ms = r->c->transfer_timeout_ms;
	if (call->deadline_ms > 0 && call->deadline_ms - now < req->timeout_ms)
		req->timeout_ms = call->deadline_ms - now > 1 ? call->deadline_ms - now : 1;
	req->bearer = r->token;
	req->max_body = response_cap(r->path);
	hrc = http_perform(r->c->http, req, resp);
	if (hrc == 0 && resp->status == 429) {
		hs_error_parse(&call->err, resp->status, resp->body, resp->len, resp->correlation_id,
			       &policy);
		scrub_error(r->c, &call->err, r->token);
	}
	hs_slot_done(r->c, call, &slot, r->endpoint, resp, hrc == 0, policy);
	if (hrc != 0)
		return on_no_answer(r, resp, hrc, rc);
	call->http_status = resp->status;
	if (resp->status >= 200 && resp->status <= 299) {
		*rc = on_success(r, resp);
		return NEXT_DONE;
	}
	return on_status(r, resp, policy, rc);
}

int hs_request(struct hs_client *c, struct hs_call *call, const char *method,
	       const char *path, json_object *body, json_object **out)
{
	struct request r = { .c = c, .call = call, .path = path, .out = out };
	struct http_req req = { .method = method };
	struct http_resp resp = { 0 };
	char *url = NULL, *body_str = NULL;
	int rc = 0;

	if (out)
		*out = NULL;
	if (!call)
		return -EINVAL;
	memset(&call->err, 0, sizeof(call->err));
	call->http_status = 0;
	call->in_doubt = false;
	if (!c || !method || !path || path[0] != '/') {
		json_util_copy_utf8(call->err.message, sizeof(call->err.message), "invalid request");
		return -EINVAL;
	}
	r.search = path_is_search(path);
	r.resendable = request_resendable(method, path);
	endpoint_key(method, path, r.endpoint, sizeof(r.endpoint));
	url = g_strconcat(c->base_url, path, NULL);
	if (body) {
		size_t len = 0;
		const char *s = json_object_to_json_string_length(body,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

		body_str = s ? g_strndup(s, len) : NULL;
		if (!body_str) {
			rc = -ENOMEM;
			goto out;
		}
		req.body_len = len;
	}
	req.url = url;
	req.body = body_str;
	req.once = !r.resendable;
	while (attempt(&r, &req, &resp, &rc) == NEXT_AGAIN)
		;
	if (rc < 0 && rc != -ECANCELED)
		set_last_error(c, r.endpoint, &call->err);
out:
	secret_free(r.token);
	http_resp_clear(&resp);
	g_free(body_str);
	g_free(url);
	return rc;
}

/* ---- status ----------------------------------------------------------------- */

static json_object *int_or_null(int64_t v)
{
	return v >= 0 ? json_object_new_int64(v) : NULL;
}

void hs_client_stats(struct hs_client *c, json_object *obj)
{
	json_object *calls = json_object_new_object();
	json_object *rate = json_object_new_object();
	struct rl_stats st;
	GHashTableIter it;
	gpointer k, v;
	uint64_t n429, retries;
	char last_error[sizeof(c->last_error)];
	bool online, others;

	pthread_mutex_lock(&c->lock);
	ratelimit_stats(c->rl, hs_now_ms(), &st);
	others = ratelimit_others_recent(c->rl, hs_now_ms());
	g_hash_table_iter_init(&it, c->calls);
	while (g_hash_table_iter_next(&it, &k, &v))
		json_object_object_add(calls, k, json_object_new_uint64(*(uint64_t *)v));
	n429 = c->http_429;
	retries = c->retries;
	online = c->net_state == 1;
	memcpy(last_error, c->last_error, sizeof(last_error));
	pthread_mutex_unlock(&c->lock);

	json_object_object_add(rate, "window_max", json_object_new_int(st.window_max));
	json_object_object_add(rate, "window_ms", json_object_new_int64(st.window_ms));
	json_object_object_add(rate, "used_in_window", json_object_new_int(st.used_in_window));
	json_object_object_add(rate, "left_in_window", json_object_new_int(st.left_in_window));
	json_object_object_add(rate, "in_flight", json_object_new_int(st.inflight));
	json_object_object_add(rate, "search_per_window", json_object_new_int(st.search_max));
	json_object_object_add(rate, "search_used", json_object_new_int(st.search_used));
	json_object_object_add(rate, "daily_limit", int_or_null(st.daily_limit));
	json_object_object_add(rate, "daily_remaining", int_or_null(st.daily_remaining));
	json_object_object_add(rate, "daily_paused", json_object_new_boolean(st.daily_paused));
	json_object_object_add(rate, "paused_ms", json_object_new_int64(st.paused_ms));
	json_object_object_add(rate, "search_paused_ms", json_object_new_int64(st.search_paused_ms));
	json_object_object_add(rate, "waits", json_object_new_uint64(st.denied));
	json_object_object_add(rate, "external_requests", json_object_new_uint64(st.external));
	json_object_object_add(rate, "search_in_window", json_object_new_boolean(st.search_in_window));
	json_object_object_add(rate, "others_lately", json_object_new_boolean(others));

	json_object_object_add(obj, "online", json_object_new_boolean(online));
	json_object_object_add(obj, "api_calls", calls);
	json_object_object_add(obj, "http_429", json_object_new_uint64(n429));
	json_object_object_add(obj, "retries", json_object_new_uint64(retries));
	json_object_object_add(obj, "rate", rate);
	json_object_object_add(obj, "last_error",
			       last_error[0] ? json_object_new_string(last_error) : NULL);
	if (c->oauth) {
		oauth_stats(c->oauth, c->oauth_now(), obj);
	} else {
		json_object *auth = json_object_new_object();

		json_object_object_add(auth, "mode", json_object_new_string("private_app"));
		json_object_object_add(auth, "state", json_object_new_string("ok"));
		json_object_object_add(obj, "auth", auth);
	}
	hs_slot_stats(c, obj);
}

bool hs_client_shared(struct hs_client *c)
{
	bool shared;

	pthread_mutex_lock(&c->lock);
	shared = ratelimit_others_recent(c->rl, hs_now_ms());
	pthread_mutex_unlock(&c->lock);
	return shared;
}

bool hs_client_offline(struct hs_client *c)
{
	bool off;

	pthread_mutex_lock(&c->lock);
	off = c->net_state == -1;
	pthread_mutex_unlock(&c->lock);
	return off;
}
