/* hubspot.h - typed HubSpot CRM API calls over one shared, rate-limited client.
 *
 * Knows nothing of FUSE. Thread-safe: any number of threads may call into one
 * struct hs_client at once. Every call goes through the one rate limiter
 * (client/ratelimit.h) in the priority class given by the caller, retries
 * 429/5xx/timeouts with the policies below until the call's deadline,
 * and maps the outcome to 0 or -errno in exactly one place:
 *
 *   2xx (incl. 207) -> 0        404 -> -ENOENT      401/403 -> -EACCES
 *   409 -> -EEXIST              400 -> -EINVAL      429 (after deadline) -> -EAGAIN
 *   network failure / timeout / other -> -EIO       deadline passed while waiting -> -EAGAIN
 *   cancelled (hs_call.cancel) while waiting -> -ECANCELED
 *
 * On failure the HubSpot error body (category, message, correlationId) is copied
 * into call->err, for the caller's error log. Tokens never reach call->err or a log.
 *
 * Retries, in detail (hs_request):
 *   - Waiting for the limiter never passes call->deadline_ms: if the wait
 *     would, the call returns -EAGAIN at once (nothing sent). A deadline
 *     already passed sends nothing. Every transfer is cut at the deadline
 *     (and at transfer_timeout_ms). With a team (opts.team), asking Redis
 *     counts as a wait of the team's command timeout: with less than that
 *     left a call on the shared budget fails with -EAGAIN, one on this
 *     mount's share goes on without asking.
 *   - 429 TEN_SECONDLY_ROLLING / SECONDLY: the limiter pauses (window + margin,
 *     1 s, or Retry-After) and the call is sent again; -EAGAIN if the pause
 *     outlasts the deadline. 429 DAILY: -EAGAIN at once, not retried; reads
 *     are then held by the limiter (hs_client_stats: rate.daily_paused).
 *   - 5xx (but 501/505), 408, 423 (>= 2 s), 477, timeouts and network errors:
 *     exponential backoff with full jitter (200 ms * 2^n, cap 10 s; Retry-After
 *     honoured up to 5 min) while the next attempt fits before the deadline;
 *     then the last attempt's errno (-EIO). deadline_ms == 0 retries forever:
 *     use it only for background work.
 *   - Writes (every request but GET and the POSTs that read: search,
 *     batch/read) are sent on a connection of their own (see http.h: libcurl
 *     would otherwise resend a request whose reused connection died) and are
 *     never resent once they may have reached the server (a 5xx, a timeout,
 *     a connection cut after sending): call->in_doubt is set instead, and
 *     the caller looks the outcome up. They are resent after a 429, 423 or
 *     477 (not applied) or when the connection was never made.
 *   - 401 EXPIRED_AUTHENTICATION: with OAuth (opts.oauth), the access token
 *     is refreshed (client/oauth.h) and the request sent again, once per
 *     call. When no valid OAuth token can be had (the refresh failed), the
 *     call fails with -EAGAIN before anything is sent and call->err says
 *     why (category OAUTH_REFRESH_FAILED): callers treat it as transient,
 *     as if HubSpot were unreachable.
 *
 * Response bodies are returned as json-c trees owned by the caller
 * (json_object_put() when done). Record ids are decimal strings.
 */
#ifndef HUBFS_HUBSPOT_H
#define HUBFS_HUBSPOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "client/ratelimit.h" /* enum rl_prio */

struct hs_client;
struct oauth;
struct team;

struct hs_client_opts {
	const char *api_url;     /* default "https://api.hubapi.com"; http:// only to loopback */
	const char *token;       /* bearer token; copied; never logged */
	struct oauth *oauth;     /* OAuth token source instead of token (client/oauth.h);
				  * borrowed: must outlive the client */
	const char *ca_file;     /* optional CA bundle for TLS verification */
	int rate_max;            /* requests per window; default 100 */
	int rate_interval_ms;    /* window; default 10000 */
	int search_per_sec;      /* default 5 */
	int transfer_timeout_ms; /* one HTTP transfer; default 20000 */
	int search_interval_ms;  /* search budget window; default 1000 (tests shorten it) */
	int64_t (*oauth_now)(void); /* the clock of OAuth token lives handed to client/oauth.h;
				     * default hs_now_ms (tests inject one) */
	/* Mounts of one portal on many machines sharing one budget through
	 * Redis (client/team.h); borrowed: must outlive the client (or be
	 * detached, hs_client_set_team()); NULL: this client's limiter alone. With a team every attempt takes a slot of
	 * the local limiter (this mount's priorities, in-flight accounting and
	 * daily reserves) and then a grant of the team's shared budget in the
	 * same class, waiting the longer of the two; its end, rate headers and
	 * 429s are reported to both. While Redis is unreachable the client
	 * sends on its local limiter capped at 1/n of the budget (n = mounts
	 * the team last saw), and returns to the shared budget when Redis
	 * answers (keeping the cap one window span more, until what was sent
	 * under it has left HubSpot's window). A round trip to Redis is only
	 * started with at least the team's command timeout left before the
	 * call's deadline (see hs_request). The rate settings above should
	 * match the team's. */
	struct team *team;
};

struct hs_error {
	int http_status;         /* 0 if no HTTP response */
	char category[64];       /* e.g. "VALIDATION_ERROR", "" if none */
	char message[512];
	char correlation_id[64];
	/* 403 MISSING_SCOPES: the scopes the call needs (one of them), from the
	 * body's errors[].context.requiredGranularScopes, space-separated; else "". */
	char scopes[256];
};

/* Per-call context: priority class, absolute deadline (hs_now_ms() clock; 0 = no
 * deadline, retry forever), and the error filled on failure. */
struct hs_call {
	enum rl_prio prio;
	int64_t deadline_ms;
	struct hs_error err;
	long http_status;        /* status of the final attempt (e.g. 200 vs 207) */
	/* Set on failure when a write may have been applied: it was sent but its
	 * answer was lost or was a 5xx. A write is never retried here; the caller
	 * looks the outcome up before sending it again. */
	bool in_doubt;
	/* Optional, read atomically: once *cancel is non-zero the call stops
	 * waiting (for the rate limiter, or before a retry) and fails with
	 * -ECANCELED; nothing more is sent. A transfer under way finishes (its
	 * own timeout bounds it). For background work that unmounting ends. */
	const int *cancel;
};

/* Monotonic milliseconds, the clock of deadlines. */
int64_t hs_now_ms(void);
/* Wall-clock milliseconds since the epoch: HubSpot's timestamps, and what is
 * kept across mounts (the journal's times). */
int64_t hs_wall_ms(void);
/* ms (of either clock) as a struct timespec, for an absolute wait on a
 * CLOCK_MONOTONIC condition variable or clock_nanosleep (hs_now_ms's clock). */
struct timespec hs_timespec_ms(int64_t ms);

/* err as one line for a log or a status file: "what: HTTP <status>
 * <category>: <message> correlationId=<id>", or "what: <message>" when there
 * was no HTTP answer (what NULL: no "what: " prefix). Cut to len bytes at a
 * UTF-8 boundary. */
void hs_error_line(char *buf, size_t len, const char *what, const struct hs_error *err);

/* Create a client. Returns 0 and *out, or -EINVAL with a reason in *why (static
 * string) for a bad URL (non-https to a non-loopback host) or missing token
 * (and no opts->oauth). */
int hs_client_new(const struct hs_client_opts *opts, struct hs_client **out, const char **why);
void hs_client_free(struct hs_client *c); /* accepts NULL; no call may be running */

/* Attach a team (as opts.team) to a client made without one, or detach it
 * (team NULL): for a daemon that learns the portal id, which keys the
 * team's budget, through the client (hs_account_info()). No other call on c
 * may be running. Returns 0, or -EBUSY if c has a team and team is not
 * NULL. Detached while Redis was unreachable, the client keeps its share
 * one window more (as when Redis comes back). */
int hs_client_set_team(struct hs_client *c, struct team *team);

/* Replace the private-app bearer token; copied. Calls already sent keep the
 * old one. Returns 0 or -ENOMEM (old token kept). (An OAuth client takes its
 * tokens from opts->oauth, which wins over this one.) */
int hs_client_set_token(struct hs_client *c, const char *token);

/* The one HTTP-outcome-to-errno mapping: 2xx -> 0, 400 -> -EINVAL,
 * 401/403 -> -EACCES, 404 -> -ENOENT, 409 -> -EEXIST, 429 -> -EAGAIN,
 * anything else, and any network_error (no answer, timeout), -> -EIO. */
int hs_errno_from_status(long status, bool network_error);

/* Fill *err from an error response: HubSpot's "category" (or "errorType"
 * when there is no category, as in 429 bodies), "message" and
 * "correlationId" (else the x-hubspot-correlation-id header value, may be
 * NULL). Non-JSON and empty bodies are tolerated: the message then says so
 * (with a short excerpt of a plain-text body). Strings are truncated to fit,
 * never mid-UTF-8-sequence. If policy is not NULL it receives the 429
 * policy named by "policyName", or guessed from "message". */
void hs_error_parse(struct hs_error *err, long status, const char *body, size_t len,
		    const char *correlation_header, enum rl_policy *policy);

#define HS_JSON_MAX_VALUES 1000000

/* Parse a JSON text of len bytes with the client's depth bound (64). Bytes that
 * are not UTF-8 are read as U+FFFD. Returns 0 and *out (NULL for an empty or
 * all-whitespace text and for the text null), -EINVAL for malformed JSON or
 * trailing garbage, or -EFBIG for a text of more than HS_JSON_MAX_VALUES
 * values (about 72 MB of json-c objects; a real HubSpot page holds far fewer). */
int hs_json_parse(const char *buf, size_t len, json_object **out);

/* Make an error from the server safe to keep and show: every copy of secret
 * in its category, message and correlation id blanked (secret_scrub), and
 * control characters (ESC, CR, LF, …) turned into spaces. secret may be NULL
 * (then only the control characters). */
void hs_error_scrub(struct hs_error *err, const char *secret);

/* Blank, in the NUL-terminated s, every secret the client holds: its bearer
 * token and, with OAuth, the access token, client secret and refresh token
 * (secret_scrub). For text that may hold what a server echoed. Thread-safe;
 * call with no client or oauth lock held. */
void hs_client_scrub(struct hs_client *c, char *s);

/* Generic request: method, path with query (already encoded, e.g.
 * "/crm/v3/objects/contacts?limit=100"), optional JSON body (not consumed).
 * *out receives the parsed body (NULL for 204/empty). Used by the typed calls
 * below and by anything not yet typed. Search paths (ending in "/search") use
 * the separate search budget. */
int hs_request(struct hs_client *c, struct hs_call *call, const char *method,
	       const char *path, json_object *body, json_object **out);

/* --- typed reads ------------------------------------------------------ */

/* GET /crm/v3/objects/{type}?limit=100&properties=<props_csv>[&after=<after>]
 * [&archived=true]. *out = {results:[…], paging?}. after may be NULL. */
int hs_list_page(struct hs_client *c, struct hs_call *call, const char *type,
		 const char *props_csv, const char *after, bool archived, json_object **out);

/* POST /crm/v3/objects/{type}/batch/read with inputs [{id}] (n <= 100) and
 * properties. *out = {status, results:[…], errors?}; ids that do not exist
 * are simply missing from results (207 is success). */
int hs_batch_read(struct hs_client *c, struct hs_call *call, const char *type,
		  const char *const *ids, size_t n, const char *const *props, size_t nprops,
		  json_object **out);

/* POST /crm/v3/objects/{type}/search with the given request body. */
int hs_search(struct hs_client *c, struct hs_call *call, const char *type,
	      json_object *request, json_object **out);

/* GET /crm/v3/properties/{type}  -> {results:[Property]} */
int hs_properties(struct hs_client *c, struct hs_call *call, const char *type, json_object **out);
/* GET /crm/v3/pipelines/{type}   -> {results:[Pipeline]} */
int hs_pipelines(struct hs_client *c, struct hs_call *call, const char *type, json_object **out);
/* GET /crm/v3/owners?limit=100[&after=] -> {results, paging?} */
int hs_owners_page(struct hs_client *c, struct hs_call *call, const char *after, json_object **out);
/* GET /account-info/v3/details -> {portalId, …} */
int hs_account_info(struct hs_client *c, struct hs_call *call, json_object **out);

/* POST /crm/v4/associations/{from}/{to}/batch/read, inputs [{id[, after]}]
 * (n <= 1000; afters may be NULL or hold NULLs). *out = {results:[{from:{id},
 * to:[{toObjectId, associationTypes}], paging?}], errors?}. */
int hs_assoc_batch_read(struct hs_client *c, struct hs_call *call, const char *from,
			const char *to, const char *const *ids, const char *const *afters,
			size_t n, json_object **out);

/* GET /crm/v4/associations/{from}/{to}/labels -> {results:[{category, typeId,
 * label}]}: the association types from -> to (label null: the unlabeled one). */
int hs_assoc_labels(struct hs_client *c, struct hs_call *call, const char *from, const char *to,
		    json_object **out);

/* --- typed writes (all inputs arrays are json arrays, not consumed) ----- */

/* POST …/batch/{verb} with {"inputs": inputs}; verb in update|create|upsert|archive. */
int hs_batch_write(struct hs_client *c, struct hs_call *call, const char *type,
		   const char *verb, json_object *inputs, json_object **out);
/* POST /crm/v4/associations/{from}/{to}/batch/{verb}; verb in
 * create|archive|associate/default|labels/archive. */
int hs_assoc_batch_write(struct hs_client *c, struct hs_call *call, const char *from,
			 const char *to, const char *verb, json_object *inputs, json_object **out);

/* --- status --------------------------------------------------------- */

/* Add client statistics to obj: "online" (bool), "api_calls" {endpoint: n},
 * "http_429" (n), "rate" {window_max, window_ms, used_in_window, left_in_window,
 * daily_remaining (or null), search_in_window (bool: searches learned to count
 * in the window), ...}, "last_error" (string or null), and "auth":
 * {"mode": "private_app", "state": "ok"} or, with OAuth, oauth_stats()'s
 * object (state, last refresh error, token calls). With a team (opts.team),
 * "team": team_stats()'s object (connected, degraded, mounts, the shared
 * window's use, leases; one round trip to Redis, at most its command
 * timeout) and this client's side: "budget" ("shared", "local": on this
 * mount's share while Redis is unreachable, "rejoining": shared again, the
 * share holding one window more), "local_share" (null, or {parts,
 * window_max, search_max, lift_in_ms}), "requests_shared",
 * "requests_local", "went_local" (times) and "grants_unreported" (attempts
 * that ended too close to their deadline to hand the grant back).
 * Thread-safe; call with no lock held. */
void hs_client_stats(struct hs_client *c, json_object *obj);

/* True if the last transfer attempt failed at the network level (no answer). */
bool hs_client_offline(struct hs_client *c);
/* Whether another client of the app spent the same 10-s budget lately
 * (ratelimit_others_recent): then searches, whose 5 a second are shared by
 * every client of the account and whose answers say nothing of it, are kept
 * to what is needed. */
bool hs_client_shared(struct hs_client *c);

#endif
