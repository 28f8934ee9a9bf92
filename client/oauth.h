/* oauth.h - OAuth access tokens for the HubSpot client.
 *
 * Holds an OAuth app's client id, client secret and refresh token, trades the
 * refresh token for an access token (POST {api_url}/oauth/v1/token, an
 * application/x-www-form-urlencoded body: grant_type=refresh_token,
 * client_id, client_secret, refresh_token) and hands the current access token to the
 * client (client/hubspot.c) before every request.
 *
 * - The access token lives only in this struct's memory (and, for the length
 *   of one transfer, in a copy handed to the caller). It is never logged,
 *   never put in an error string, and wiped when replaced or freed. So are
 *   the client secret and the refresh token.
 * - Refresh is lazy: the first request at or after refresh_pct (default 80%)
 *   of the token's life refreshes it; an idle mount makes no token calls.
 *   While one thread refreshes, the others keep using the old token if it is
 *   still valid, or wait for the new one: one refresh at a time.
 * - A 401 EXPIRED_AUTHENTICATION is reported with oauth_expired(); the next
 *   oauth_token() then refreshes (once per token, however many requests saw
 *   the 401) and the client retries the request once.
 * - Every new access token must be for the mounted portal (oauth_bind_portal).
 * - The token endpoint is not counted against the 10-second API window: it is
 *   not a CRM API call (HubSpot's burst limit covers the app's API calls; the
 *   sandbox does not count it either). It has its own HTTP pool and retries
 *   (three attempts on no answer, 5xx or 429 within the caller's deadline).
 * - A refresh that fails (400 BAD_REFRESH_TOKEN, a revoked app, HubSpot
 *   unreachable) keeps the old token while it is still valid, and is tried
 *   again, lazily, after retry_ms, doubling up to retry_max_ms. In between,
 *   with no valid token, oauth_token() fails fast with -EAGAIN: nothing is
 *   sent, cached reads are served and queued writes stay queued.
 *   oauth_set_credentials() (a re-read config) retries at once.
 *
 * Time: every function takes `now` (hs_now_ms() clock, milliseconds) for the
 * token's life, so tests drive a fake clock. Deadlines and transfer timeouts
 * are real time (hs_now_ms()). Thread-safe.
 */
#ifndef HUBFS_OAUTH_H
#define HUBFS_OAUTH_H

#include <stdint.h>

#include <json-c/json.h>

#include "client/hubspot.h" /* struct hs_error */

struct oauth;

struct oauth_opts {
	const char *token_url;      /* e.g. "https://api.hubapi.com/oauth/v1/token";
				     * https, or http to loopback only */
	const char *client_id;      /* copied */
	const char *client_secret;  /* copied; wiped at free */
	const char *refresh_token;  /* copied; wiped at free */
	const char *ca_file;        /* optional CA bundle */
	int refresh_pct;            /* refresh at this % of expires_in; default 80 (1..99) */
	int64_t retry_ms;           /* first wait after a failed refresh; default 5000 */
	int64_t retry_max_ms;       /* cap of the doubling wait; default 300000 */
	int transfer_timeout_ms;    /* one token call; default 15000 */
};

/* Create. Returns 0 and *out, or -EINVAL (with a static reason in *why) for a
 * missing credential or a URL hubfs may not use, or -ENOMEM/-EIO. Sends
 * nothing. */
int oauth_new(const struct oauth_opts *opts, struct oauth **out, const char **why);
/* Wipe the secrets and free. Accepts NULL. No call may be running. */
void oauth_free(struct oauth *o);

/* Trade the refresh token for an access token now (at mount). Returns 0, or
 * -EACCES (HubSpot refused the credentials: err says why, e.g. category
 * "BAD_REFRESH_TOKEN"), -EIO (no usable answer), -EAGAIN (deadline). */
int oauth_start(struct oauth *o, int64_t now, int64_t deadline_ms, struct hs_error *err);

/* The access token to send: a malloc'd copy in *token (wipe it and free it:
 * hubspot.c's token_free), and its generation in *gen for oauth_expired().
 * Refreshes first when the token is due (see above). Returns 0, or -EAGAIN
 * with the reason in *err when there is no valid token (refresh failed, or
 * the deadline passed while waiting for another thread's refresh). */
int oauth_token(struct oauth *o, int64_t now, int64_t deadline_ms, char **token, uint64_t *gen,
		struct hs_error *err);

/* HubSpot answered 401 EXPIRED_AUTHENTICATION to a request sent with the
 * token of generation gen: the next oauth_token() refreshes, unless a newer
 * token already replaced that one. */
void oauth_expired(struct oauth *o, uint64_t gen, int64_t now);

/* Replace the credentials (NULL keeps one) and forget the failure backoff,
 * so the next oauth_token() refreshes with them if the token is not valid.
 * Returns 0 or -ENOMEM (nothing changed) / -EINVAL (empty value). */
int oauth_set_credentials(struct oauth *o, const char *client_id, const char *client_secret,
			  const char *refresh_token);

/* The mounted portal: from now on every new access token must be for it
 * (the grant's hub_id, or GET /oauth/v1/access-tokens/{token} when the grant
 * does not say). A token for another portal is dropped with the current one,
 * and oauth_token() fails with -EAGAIN (category OAUTH_PORTAL_MISMATCH, so
 * edits stay queued) until oauth_set_credentials(); on_mismatch(ud, reason)
 * is called once per refusal, with no lock held. Returns 0, or -EACCES if
 * the current token is already for another portal. */
int oauth_bind_portal(struct oauth *o, uint64_t portal, void (*on_mismatch)(void *ud, const char *msg),
		      void *ud);

/* Blank, in the NUL-terminated s, every secret held here: the access token,
 * the client secret and the refresh token (secret_scrub). Takes the lock. */
void oauth_scrub(struct oauth *o, char *s);

/* Add "auth": {"mode": "oauth", "state": "ok" | "refreshing" | "refresh_failed" | "portal_mismatch",
 * "error": string or null, "token_calls", "refreshes", "refresh_failures",
 * "expires_in_s", "next_refresh_in_s", "next_retry_in_s" (int or null)} to obj.
 * Holds no secret. */
void oauth_stats(struct oauth *o, int64_t now, json_object *obj);

#endif
