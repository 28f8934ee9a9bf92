/* oauth.c - OAuth access tokens: exchange, lazy refresh, one refresh at a
 * time (see oauth.h).
 *
 * Lock rules: o->lock guards every mutable field. It is never held across a
 * token call; a thread that refreshes sets o->refreshing, drops the lock for
 * the transfer and broadcasts o->cond when done. Threads that need a token
 * while another refreshes use the old one if it is still valid, else wait on
 * o->cond (CLOCK_MONOTONIC) until their deadline.
 */
#include "client/oauth.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <glib.h>

#include "cache/model/json_util.h"
#include "client/http.h"
#include "client/log.h"
#include "client/secret.h"

#define DEFAULT_REFRESH_PCT 80
#define DEFAULT_RETRY_MS 5000
#define DEFAULT_RETRY_MAX_MS 300000
#define DEFAULT_TRANSFER_TIMEOUT_MS 15000
#define MAX_ATTEMPTS 3            /* per refresh, on no answer / 5xx / 429 */
#define ATTEMPT_BACKOFF_MS 500    /* 500 ms, then 1 s */
#define MAX_TOKEN_BODY (64 * 1024)
#define ENDPOINT "POST /oauth/v1/token"
#define INFO_ENDPOINT "GET /oauth/v1/access-tokens/{token}"

struct oauth {
	char *token_url;             /* immutable */
	char *info_url;              /* immutable: …/oauth/v1/access-tokens/ (the token follows) */
	int refresh_pct;             /* immutable */
	int64_t retry_ms, retry_max_ms; /* immutable */
	int64_t transfer_timeout_ms; /* immutable */
	struct http *http;           /* thread-safe itself */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* a refresh ended; waits on lock */
	char *client_id;             /* protected by lock */
	char *client_secret;         /* protected by lock; wiped */
	char *refresh_token;         /* protected by lock; wiped */
	char *access;                /* protected by lock; wiped; NULL before the first grant */
	uint64_t gen;                /* protected by lock; bumped with each new access token */
	int64_t expires_at;          /* protected by lock; `now` clock */
	int64_t refresh_at;          /* protected by lock */
	bool refreshing;             /* protected by lock: a thread is in a token call */
	unsigned fails;              /* protected by lock: failed refreshes in a row */
	int64_t retry_at;            /* protected by lock: no new attempt before this */
	char error[768];             /* protected by lock: last refresh failure, "" if ok */
	uint64_t token_calls;        /* protected by lock: HTTP attempts at the endpoint */
	uint64_t refreshes;          /* protected by lock: grants received */
	uint64_t failures;           /* protected by lock: refreshes that failed */
	uint64_t portal;             /* protected by lock: the mounted portal, 0 until bound */
	uint64_t hub_id;             /* protected by lock: portal of the current access token */
	bool mismatch;               /* protected by lock: a token of another portal came;
				      * nothing is sent until new credentials */
	bool mismatch_unsaid;        /* protected by lock: on_mismatch not called yet */
	void (*on_mismatch)(void *ud, const char *msg); /* set by oauth_bind_portal */
	void *ud;
};

struct grant {
	char *access;
	char *refresh;               /* NULL if the answer had none */
	int64_t expires_in_s;
	uint64_t hub_id;             /* the portal the token is for; 0 if not said */
};

/* ".../oauth/v1/token" -> ".../oauth/v1/access-tokens/" (malloc'd). */
static char *info_url_of(const char *token_url)
{
	size_t n = strlen(token_url);
	char *u;

	if (n >= 6 && strcmp(token_url + n - 6, "/token") == 0)
		n -= 6;
	u = malloc(n + sizeof("/access-tokens/"));
	if (u) {
		memcpy(u, token_url, n);
		strcpy(u + n, "/access-tokens/");
	}
	return u;
}

int oauth_new(const struct oauth_opts *opts, struct oauth **out, const char **why)
{
	const char *dummy;
	struct oauth *o;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!why)
		why = &dummy;
	*why = NULL;
	if (!opts->client_id || !*opts->client_id || !opts->client_secret ||
	    !*opts->client_secret || !opts->refresh_token || !*opts->refresh_token) {
		*why = "OAuth needs client_id, client_secret and refresh_token";
		return -EINVAL;
	}
	rc = http_url_allowed(opts->token_url, why);
	if (rc < 0)
		return rc;
	if (secret_curl_global_init() != CURLE_OK) {
		*why = "libcurl initialisation failed";
		return -EIO;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		curl_global_cleanup();
		*why = "out of memory";
		return -ENOMEM;
	}
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_condattr_destroy(&ca);
	o->refresh_pct = opts->refresh_pct > 0 && opts->refresh_pct < 100 ? opts->refresh_pct
									  : DEFAULT_REFRESH_PCT;
	o->retry_ms = opts->retry_ms > 0 ? opts->retry_ms : DEFAULT_RETRY_MS;
	o->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : DEFAULT_RETRY_MAX_MS;
	if (o->retry_max_ms < o->retry_ms)
		o->retry_max_ms = o->retry_ms;
	o->transfer_timeout_ms = opts->transfer_timeout_ms > 0 ? opts->transfer_timeout_ms
							       : DEFAULT_TRANSFER_TIMEOUT_MS;
	o->token_url = strdup(opts->token_url);
	o->info_url = info_url_of(opts->token_url);
	o->client_id = strdup(opts->client_id);
	o->client_secret = strdup(opts->client_secret);
	o->refresh_token = strdup(opts->refresh_token);
	if (!o->token_url || !o->info_url || !o->client_id || !o->client_secret || !o->refresh_token) {
		rc = -ENOMEM;
		*why = "out of memory";
		goto fail;
	}
	{
		struct http_opts ho = { .ca_file = opts->ca_file, .max_body = MAX_TOKEN_BODY,
					.max_idle = 1 };

		rc = http_new(&ho, &o->http);
	}
	if (rc < 0) {
		*why = rc == -ENOMEM ? "out of memory" : "libcurl share setup failed";
		goto fail;
	}
	*out = o;
	return 0;
fail:
	oauth_free(o);
	return rc;
}

void oauth_free(struct oauth *o)
{
	if (!o)
		return;
	http_free(o->http);
	secret_free(o->access);
	secret_free(o->refresh_token);
	secret_free(o->client_secret);
	free(o->client_id);
	free(o->token_url);
	free(o->info_url);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	free(o);
	curl_global_cleanup();
}

/* ---- one token call ---------------------------------------------------- */

/* Wipe a string held by json-c before the tree is freed: the parsed answer
 * holds the new tokens. json-c owns the bytes; overwriting them in place
 * (same length) is safe. */
static void json_wipe(json_object *o, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		explicit_bzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

/* Parse a 200 answer into *g. 0 or -EIO with err->message set. */
static int grant_parse(const char *body, size_t len, struct grant *g, struct hs_error *err)
{
	json_object *o = NULL, *v;
	const char *access, *refresh;
	int64_t exp = 0;
	int rc = -EIO;

	if (hs_json_parse(body ? body : "", len, &o) < 0 || !o ||
	    !json_object_is_type(o, json_type_object)) {
		snprintf(err->message, sizeof(err->message), ENDPOINT ": HTTP 200 with a non-JSON body");
		goto out;
	}
	access = json_util_field(o, "access_token");
	refresh = json_util_field(o, "refresh_token");
	if (json_object_object_get_ex(o, "expires_in", &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		exp = json_object_get_int64(v);
	if (!secret_token_ok(access) || exp <= 0) {
		snprintf(err->message, sizeof(err->message),
			 ENDPOINT ": HTTP 200 without a usable access_token and expires_in");
		goto out;
	}
	g->access = strdup(access);
	g->refresh = secret_token_ok(refresh) ? strdup(refresh) : NULL;
	g->expires_in_s = exp;
	if (json_object_object_get_ex(o, "hub_id", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0)
		g->hub_id = (uint64_t)json_object_get_int64(v);
	if (!g->access) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (o) {
		json_wipe(o, "access_token");
		json_wipe(o, "refresh_token");
		json_object_put(o);
	}
	return rc;
}

static char *form_encode(const char *id, const char *secret, const char *rt)
{
	char *eid = g_uri_escape_string(id, NULL, FALSE);
	char *esec = g_uri_escape_string(secret, NULL, FALSE);
	char *ert = g_uri_escape_string(rt, NULL, FALSE);
	char *form = g_strdup_printf("grant_type=refresh_token&client_id=%s&client_secret=%s"
				     "&refresh_token=%s", eid, esec, ert);

	explicit_bzero(esec, strlen(esec));
	explicit_bzero(ert, strlen(ert));
	g_free(eid);
	g_free(esec);
	g_free(ert);
	return form;
}

/* The portal of a new access token, when the grant did not say: GET
 * …/oauth/v1/access-tokens/{token} -> {hub_id, …} (one attempt). 0 with
 * g->hub_id set, or -EIO with *err filled: a token whose portal cannot be
 * confirmed is not used. */
static int token_hub(struct oauth *o, struct grant *g, int64_t deadline_ms, struct hs_error *err)
{
	char *esc = g_uri_escape_string(g->access, NULL, FALSE);
	char *url = g_strconcat(o->info_url, esc, NULL);
	struct http_req req = { .method = "GET", .url = url, .timeout_ms = o->transfer_timeout_ms };
	struct http_resp resp = { 0 };
	json_object *b = NULL, *v;
	int rc = -EIO;

	if (deadline_ms > 0 && deadline_ms - hs_now_ms() < req.timeout_ms)
		req.timeout_ms = deadline_ms - hs_now_ms() > 1 ? deadline_ms - hs_now_ms() : 1;
	pthread_mutex_lock(&o->lock);
	o->token_calls++;
	pthread_mutex_unlock(&o->lock);
	memset(err, 0, sizeof(*err));
	if (http_perform(o->http, &req, &resp) != 0) {
		snprintf(err->message, sizeof(err->message), INFO_ENDPOINT ": %s",
			 resp.error[0] ? resp.error : "no answer");
	} else if (resp.status != 200) {
		hs_error_parse(err, resp.status, resp.body, resp.len, resp.correlation_id, NULL);
	} else if (hs_json_parse(resp.body ? resp.body : "", resp.len, &b) == 0 && b &&
		   json_object_object_get_ex(b, "hub_id", &v) && json_object_is_type(v, json_type_int) &&
		   json_object_get_int64(v) > 0) {
		g->hub_id = (uint64_t)json_object_get_int64(v);
		rc = 0;
	} else {
		snprintf(err->message, sizeof(err->message),
			 INFO_ENDPOINT ": HTTP 200 without a hub_id: cannot tell which portal the "
			 "new access token is for");
	}
	if (b) {
		json_wipe(b, "token");
		json_object_put(b);
	}
	if (resp.body)
		explicit_bzero(resp.body, resp.len);
	http_resp_clear(&resp);
	explicit_bzero(url, strlen(url));
	explicit_bzero(esc, strlen(esc));
	g_free(url);
	g_free(esc);
	return rc;
}

/* One refresh: up to MAX_ATTEMPTS token calls within deadline_ms (real
 * clock; 0 = none). Returns 0 and *g, or -EACCES (credentials refused),
 * -EIO, -EAGAIN (deadline), with *err filled. */
static int exchange(struct oauth *o, const char *id, const char *secret, const char *rt,
		    int64_t deadline_ms, struct grant *g, struct hs_error *err)
{
	char *form = form_encode(id, secret, rt);
	struct http_resp resp = { 0 };
	int rc = -EIO;

	memset(err, 0, sizeof(*err));
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		struct http_req req = { .method = "POST", .url = o->token_url, .body = form,
					.body_len = strlen(form),
					.content_type = "application/x-www-form-urlencoded" };
		int64_t now = hs_now_ms(), backoff = (int64_t)ATTEMPT_BACKOFF_MS << attempt;
		bool retry = false;
		int hrc;

		req.timeout_ms = o->transfer_timeout_ms;
		if (deadline_ms > 0) {
			if (now >= deadline_ms) {
				if (!err->message[0])
					snprintf(err->message, sizeof(err->message),
						 ENDPOINT ": deadline passed before an answer");
				rc = -EAGAIN;
				break;
			}
			if (deadline_ms - now < req.timeout_ms)
				req.timeout_ms = deadline_ms - now;
		}
		pthread_mutex_lock(&o->lock);
		o->token_calls++;
		pthread_mutex_unlock(&o->lock);
		hrc = http_perform(o->http, &req, &resp);
		if (hrc != 0) {
			memset(err, 0, sizeof(*err));
			snprintf(err->message, sizeof(err->message), ENDPOINT ": %s",
				 resp.error[0] ? resp.error : "no answer");
			rc = hrc == -ENOMEM ? -ENOMEM : -EIO;
			retry = hrc != -ENOMEM && hrc != -EFBIG;
		} else if (resp.status == 200) {
			rc = grant_parse(resp.body, resp.len, g, err);
			err->http_status = rc ? 200 : 0;
		} else {
			json_object *b = NULL;

			hs_error_parse(err, resp.status, resp.body, resp.len, resp.correlation_id, NULL);
			/* OAuth errors name themselves in "status" (BAD_REFRESH_TOKEN, …). */
			if (!err->category[0] && hs_json_parse(resp.body ? resp.body : "", resp.len, &b) == 0 &&
			    b && json_object_is_type(b, json_type_object)) {
				const char *st = json_util_field(b, "status");

				if (st && strcmp(st, "error") != 0)
					snprintf(err->category, sizeof(err->category), "%s", st);
			}
			json_object_put(b);
			if (resp.status == 400 || resp.status == 401 || resp.status == 403) {
				rc = -EACCES;
			} else {
				rc = -EIO;
				retry = resp.status == 429 || resp.status >= 500;
			}
		}
		if (resp.body)
			explicit_bzero(resp.body, resp.len);
		http_resp_clear(&resp);
		if (!retry)
			break;
		if (attempt + 1 < MAX_ATTEMPTS &&
		    (deadline_ms <= 0 || hs_now_ms() + backoff < deadline_ms)) {
			struct timespec ts = hs_timespec_ms(hs_now_ms() + backoff);

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		} else {
			break;
		}
	}
	if (rc == 0 && !g->hub_id)
		rc = token_hub(o, g, deadline_ms, err);
	hs_error_scrub(err, secret);
	hs_error_scrub(err, rt);
	hs_error_scrub(err, g->access);
	explicit_bzero(form, strlen(form));
	g_free(form);
	return rc;
}

/* ---- state --------------------------------------------------------------- */

static void describe(char *dst, size_t len, const struct hs_error *e)
{
	/* Without an answer the message already says what failed. */
	hs_error_line(dst, len, e->http_status > 0 ? ENDPOINT : NULL, e);
}

/* Run one refresh as the refreshing thread. Lock held on entry and exit
 * (dropped for the call). Returns 0 or the exchange's -errno. A failure is
 * logged unless quiet (oauth_start: the caller reports it). */
/* Blank the secrets this struct holds in an error. Lock held. */
static void scrub_error_locked(struct oauth *o, struct hs_error *err)
{
	hs_error_scrub(err, o->access);
	hs_error_scrub(err, o->client_secret);
	hs_error_scrub(err, o->refresh_token);
}

/* A new access token is for another portal than the mounted one (the config
 * now holds another account's credentials, or the server is not HubSpot): it
 * is dropped, and so is the current one; nothing is sent until new
 * credentials come (oauth_set_credentials). Lock held. */
static void portal_refused(struct oauth *o, uint64_t hub_id, struct hs_error *err)
{
	secret_free(o->access);
	o->access = NULL;
	o->gen++;
	o->mismatch = true;
	o->mismatch_unsaid = true;
	o->failures++;
	snprintf(o->error, sizeof(o->error),
		 "OAuth: the new access token is for portal %" PRIu64 ", not the mounted portal %"
		 PRIu64 ": nothing is sent to HubSpot (edits stay queued); put this portal's "
		 "client_id, client_secret and refresh_token in the config, then send SIGHUP or "
		 "remount", hub_id, o->portal);
	log_err("%s", o->error);
	memset(err, 0, sizeof(*err));
	snprintf(err->category, sizeof(err->category), "OAUTH_PORTAL_MISMATCH");
	g_strlcpy(err->message, o->error, sizeof(err->message));
}

static int refresh_locked(struct oauth *o, int64_t now, int64_t deadline_ms, bool quiet,
			  struct hs_error *err)
{
	char *id = NULL, *secret = NULL, *rt = NULL;
	struct grant g = { 0 };
	int rc;

	o->refreshing = true;
	id = strdup(o->client_id);
	secret = strdup(o->client_secret);
	rt = strdup(o->refresh_token);
	pthread_mutex_unlock(&o->lock);
	if (id && secret && rt) {
		rc = exchange(o, id, secret, rt, deadline_ms, &g, err);
	} else {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "out of memory");
		rc = -ENOMEM;
	}
	pthread_mutex_lock(&o->lock);
	o->refreshing = false;
	pthread_cond_broadcast(&o->cond);
	scrub_error_locked(o, err);
	if (rc == 0 && o->portal && g.hub_id != o->portal) {
		portal_refused(o, g.hub_id, err);
		rc = -EACCES;
	} else if (rc == 0) {
		int64_t life = g.expires_in_s * 1000;

		secret_free(o->access);
		o->access = g.access;
		g.access = NULL;
		o->gen++;
		o->expires_at = now + life;
		o->refresh_at = now + life * o->refresh_pct / 100;
		o->refreshes++;
		if (o->fails)
			log_notice("OAuth: access token refreshed again after %u failed attempt%s",
				   o->fails, o->fails == 1 ? "" : "s");
		else
			log_info("OAuth: access token refreshed (expires in %" PRId64 " s)",
				 g.expires_in_s);
		o->fails = 0;
		o->retry_at = 0;
		o->error[0] = '\0';
		o->hub_id = g.hub_id;
		/* HubSpot hands back the same refresh token; should it ever issue a
		 * new one, this mount uses it (in memory only). */
		if (g.refresh && rt && strcmp(g.refresh, rt) != 0 &&
		    strcmp(g.refresh, o->refresh_token) != 0) {
			log_notice("OAuth: HubSpot issued a new refresh token; it is used for this "
				   "mount only (kept in memory), the config still holds the old one");
			secret_free(o->refresh_token);
			o->refresh_token = g.refresh;
			g.refresh = NULL;
		}
	} else if (rc != 0) {
		int64_t d = o->retry_ms << (o->fails < 16 ? o->fails : 16);

		if (d > o->retry_max_ms || d <= 0)
			d = o->retry_max_ms;
		o->fails++;
		o->failures++;
		o->retry_at = now + d;
		describe(o->error, sizeof(o->error), err);
		if (!quiet)
			log_warn("OAuth: token refresh failed (%s); %s; next try in %" PRId64 " s",
				 o->error, o->access && now < o->expires_at ?
				 "the current access token is used until it expires" :
				 "no valid access token: cached data is served, edits stay queued",
				 d / 1000);
	}
	secret_free(g.access);
	secret_free(g.refresh);
	free(id);
	secret_free(secret);
	secret_free(rt);
	return rc;
}

int oauth_start(struct oauth *o, int64_t now, int64_t deadline_ms, struct hs_error *err)
{
	int rc;

	pthread_mutex_lock(&o->lock);
	while (o->refreshing)
		pthread_cond_wait(&o->cond, &o->lock);
	rc = refresh_locked(o, now, deadline_ms, true, err);
	pthread_mutex_unlock(&o->lock);
	return rc;
}

/* Lock held: hand out the current token. */
static int give(struct oauth *o, char **token, uint64_t *gen, struct hs_error *err)
{
	*token = strdup(o->access);
	*gen = o->gen;
	if (*token)
		return 0;
	memset(err, 0, sizeof(*err));
	snprintf(err->message, sizeof(err->message), "out of memory");
	return -ENOMEM;
}

static void unavailable(struct oauth *o, int64_t now, struct hs_error *err)
{
	memset(err, 0, sizeof(*err));
	snprintf(err->category, sizeof(err->category), "OAUTH_REFRESH_FAILED");
	snprintf(err->message, sizeof(err->message),
		 "no valid OAuth access token: the refresh failed (%.400s); next try in %" PRId64 " s",
		 o->error, o->retry_at > now ? (o->retry_at - now + 999) / 1000 : 0);
}

int oauth_token(struct oauth *o, int64_t now, int64_t deadline_ms, char **token, uint64_t *gen,
		struct hs_error *err)
{
	char said[sizeof(o->error)];
	bool say;
	int rc;

	*token = NULL;
	*gen = 0;
	pthread_mutex_lock(&o->lock);
	for (;;) {
		bool valid = o->access && now < o->expires_at;

		if (o->mismatch) {
			memset(err, 0, sizeof(*err));
			snprintf(err->category, sizeof(err->category), "OAUTH_PORTAL_MISMATCH");
			g_strlcpy(err->message, o->error, sizeof(err->message));
			rc = -EAGAIN;
			break;
		}
		if (o->access && now < o->refresh_at) {
			rc = give(o, token, gen, err);
			break;
		}
		if (o->refreshing) {
			struct timespec until;

			if (valid) { /* someone is refreshing: the old token still works */
				rc = give(o, token, gen, err);
				break;
			}
			if (deadline_ms > 0 && hs_now_ms() >= deadline_ms) {
				memset(err, 0, sizeof(*err));
				snprintf(err->message, sizeof(err->message),
					 "deadline passed while waiting for the OAuth token refresh");
				rc = -EAGAIN;
				break;
			}
			if (deadline_ms > 0) {
				until = hs_timespec_ms(deadline_ms);
				pthread_cond_timedwait(&o->cond, &o->lock, &until);
			} else {
				pthread_cond_wait(&o->cond, &o->lock);
			}
			continue;
		}
		if (o->fails && now < o->retry_at) {
			if (valid) {
				rc = give(o, token, gen, err);
			} else {
				unavailable(o, now, err);
				rc = -EAGAIN;
			}
			break;
		}
		if (refresh_locked(o, now, deadline_ms, false, err) == 0 || o->mismatch)
			continue;
		/* Failed: keep going with the old token while it lasts. */
		if (o->access && now < o->expires_at) {
			rc = give(o, token, gen, err);
		} else {
			unavailable(o, now, err);
			rc = -EAGAIN;
		}
		break;
	}
	/* Say a refused token once, outside the lock (the hook writes errors.log). */
	say = o->mismatch_unsaid && o->on_mismatch;
	if (say) {
		o->mismatch_unsaid = false;
		memcpy(said, o->error, sizeof(said));
	}
	pthread_mutex_unlock(&o->lock);
	if (say)
		o->on_mismatch(o->ud, said);
	return rc;
}

int oauth_bind_portal(struct oauth *o, uint64_t portal, void (*on_mismatch)(void *ud, const char *msg),
		      void *ud)
{
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	o->portal = portal;
	o->on_mismatch = on_mismatch;
	o->ud = ud;
	if (o->hub_id && o->hub_id != portal)
		rc = -EACCES;
	pthread_mutex_unlock(&o->lock);
	return rc;
}

void oauth_scrub(struct oauth *o, char *s)
{
	pthread_mutex_lock(&o->lock);
	secret_scrub(s, o->access);
	secret_scrub(s, o->client_secret);
	secret_scrub(s, o->refresh_token);
	pthread_mutex_unlock(&o->lock);
}

void oauth_expired(struct oauth *o, uint64_t gen, int64_t now)
{
	pthread_mutex_lock(&o->lock);
	if (o->access && gen == o->gen && now < o->expires_at) {
		log_info("OAuth: HubSpot says the access token expired; refreshing");
		o->expires_at = now;
		o->refresh_at = now;
	}
	pthread_mutex_unlock(&o->lock);
}

int oauth_set_credentials(struct oauth *o, const char *client_id, const char *client_secret,
			  const char *refresh_token)
{
	char *id = NULL, *secret = NULL, *rt = NULL;

	if ((client_id && !*client_id) || (client_secret && !*client_secret) ||
	    (refresh_token && !*refresh_token))
		return -EINVAL;
	if ((client_id && !(id = strdup(client_id))) ||
	    (client_secret && !(secret = strdup(client_secret))) ||
	    (refresh_token && !(rt = strdup(refresh_token)))) {
		free(id);
		secret_free(secret);
		return -ENOMEM;
	}
	pthread_mutex_lock(&o->lock);
	if (id) {
		free(o->client_id);
		o->client_id = id;
	}
	if (secret) {
		secret_free(o->client_secret);
		o->client_secret = secret;
	}
	if (rt) {
		secret_free(o->refresh_token);
		o->refresh_token = rt;
	}
	o->retry_at = 0; /* try the new credentials at the next request */
	o->mismatch = false;
	o->mismatch_unsaid = false;
	pthread_mutex_unlock(&o->lock);
	return 0;
}

static json_object *secs_or_null(bool have, int64_t ms)
{
	if (!have)
		return NULL;
	return json_object_new_int64(ms > 0 ? (ms + 999) / 1000 : 0);
}

void oauth_stats(struct oauth *o, int64_t now, json_object *obj)
{
	json_object *a = json_object_new_object();
	const char *state;

	pthread_mutex_lock(&o->lock);
	state = o->mismatch ? "portal_mismatch" : o->refreshing ? "refreshing" :
		o->fails ? "refresh_failed" : "ok";
	json_object_object_add(a, "mode", json_object_new_string("oauth"));
	json_object_object_add(a, "state", json_object_new_string(state));
	json_object_object_add(a, "error", o->error[0] ? json_object_new_string(o->error) : NULL);
	json_object_object_add(a, "token_calls", json_object_new_uint64(o->token_calls));
	json_object_object_add(a, "refreshes", json_object_new_uint64(o->refreshes));
	json_object_object_add(a, "refresh_failures", json_object_new_uint64(o->failures));
	json_object_object_add(a, "expires_in_s", secs_or_null(o->access != NULL, o->expires_at - now));
	json_object_object_add(a, "next_refresh_in_s",
			       secs_or_null(o->access != NULL, o->refresh_at - now));
	json_object_object_add(a, "next_retry_in_s", secs_or_null(o->fails > 0, o->retry_at - now));
	pthread_mutex_unlock(&o->lock);
	json_object_object_add(obj, "auth", a);
}
