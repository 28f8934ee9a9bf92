/* http.h - one HTTP transfer at a time per thread, over a pool of libcurl easy
 * handles shared by all threads.
 *
 * Idle handles (and the connections each keeps alive) are reused; DNS and TLS
 * sessions are shared between handles. Knows nothing of HubSpot beyond the
 * response headers it captures (rate limits, Retry-After, correlation id).
 * The bearer token goes only into the Authorization header, never into a log
 * or an error string; verbose output is never enabled.
 *
 * Proxies: a plain http:// URL (allowed to loopback hosts only) never goes
 * through a proxy, whatever http_proxy/all_proxy say: the proxy would see the
 * token in clear. https:// URLs honour the environment's proxies, which then
 * see only the CONNECT line (the host name), not the request.
 */
#ifndef HUBFS_HTTP_H
#define HUBFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/ratelimit.h" /* struct rl_headers */

#define HTTP_DEFAULT_MAX_BODY (64u * 1024 * 1024)

struct http;

struct http_opts {
	const char *ca_file;     /* CA bundle for verification; NULL = system default */
	size_t max_body;         /* response bodies beyond this fail; 0 = 64 MiB */
	int max_idle;            /* idle handles kept for reuse; 0 = 16 */
	int64_t connect_timeout_ms; /* 0 = 10000 (never more than the transfer's own) */
};

struct http_req {
	const char *method;      /* "GET", "POST", "PATCH", "PUT", "DELETE" */
	const char *url;         /* complete URL, already encoded */
	const char *bearer;      /* token for "Authorization: Bearer", or NULL */
	const char *body;        /* request body or NULL */
	size_t body_len;
	const char *content_type; /* of body; NULL = "application/json" (the OAuth
				   * token call sends a form) */
	int64_t timeout_ms;      /* whole transfer, > 0 */
	/* Send it at most once: on a connection of its own, never a pooled one.
	 * libcurl sends a request again by itself, on a new connection, when a
	 * reused connection closes before any answer byte arrives; that is also
	 * what a server that acted and then lost the connection looks like, so
	 * a write (a create above all) would be applied twice. A new connection
	 * is never resent that way; the caller sees the failure (resp.sent) and
	 * decides. */
	bool once;
	size_t max_body;         /* response bodies beyond this fail; 0 = the pool's
				  * (never more than it) */
};

struct http_resp {
	long status;             /* HTTP status, 0 if no answer; may be set even when
				  * the transfer failed later (body cut or too large) */
	char *body;              /* NUL-terminated response body (malloc), may be NULL */
	size_t len;
	struct rl_headers rl;    /* captured rate-limit headers and Retry-After */
	char correlation_id[64]; /* x-hubspot-correlation-id, "" if none */
	char content_type[128];
	bool timed_out;          /* the transfer hit timeout_ms */
	bool too_large;          /* the body passed max_body */
	bool sent;               /* request bytes left us: the server may have acted */
	char error[256];         /* curl's reason when status is 0 (no secrets in it) */
};

/* Check that url is one hubfs may talk to: https://, or http:// to a loopback
 * host (127.0.0.0/8, ::1, localhost). Returns 0, or -EINVAL with a static
 * reason in *why. */
int http_url_allowed(const char *url, const char **why);

/* Create a pool. Returns 0 and *out, -ENOMEM, or -EIO if libcurl could not be
 * initialised. Call curl_global_init() before (hubspot.c does). */
int http_new(const struct http_opts *opts, struct http **out);
/* Free the pool; no transfer may be running. Accepts NULL. */
void http_free(struct http *h);

/* Perform one transfer, blocking the calling thread at most req->timeout_ms
 * (plus name resolution, which libcurl bounds with the same timeout).
 * *resp is initialised here and must be released with http_resp_clear()
 * whatever the result. Returns 0 if an HTTP answer arrived (any status), or
 * -ETIMEDOUT, -EFBIG (body too large), -ENOMEM, -EIO (no answer). */
int http_perform(struct http *h, const struct http_req *req, struct http_resp *resp);
void http_resp_clear(struct http_resp *resp);

/* Parse a Retry-After value (delta seconds or HTTP date) relative to
 * now_epoch_s. Returns ms >= 0, or -1 if unparseable. */
int64_t http_parse_retry_after(const char *value, int64_t now_epoch_s);

#endif
