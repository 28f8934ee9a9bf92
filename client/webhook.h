/* webhook.h - HubSpot webhook deliveries: the event parser, the request
 * signatures (v3, and v1 for older apps) and an HTTP receiver.
 *
 * HubSpot POSTs a JSON array of events (fewer than 100 per request, in no
 * particular order, sometimes twice) to the app's target URL and retries a
 * delivery up to 10 times over 24 hours when the answer is not 2xx within 5
 * seconds. Deliveries do not count against the API rate limits.
 *
 * webhook.c holds the pure parts (wh_parse, wh_verify_*, wh_uri_decode): no
 * I/O, no clock (time is an argument), thread-safe. webhook_server.c holds the
 * receiver (libmicrohttpd, one internal thread) that checks each request and
 * hands the events of each accepted delivery to a callback. Nothing here knows
 * about the cache or the mount: the caller maps events onto them.
 *
 * The secret (the app's client secret) is only ever used as an HMAC key or
 * hash prefix: it never reaches a log line, an error string or the stats.
 */
#ifndef HUBFS_WEBHOOK_H
#define HUBFS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* ---- events -------------------------------------------------------------- */

/* The action part of subscriptionType ("contact.propertyChange" ->
 * WH_PROPERTY_CHANGE). Any other action, or none, is WH_OTHER. */
enum wh_kind {
	WH_CREATION,
	WH_DELETION,
	WH_PROPERTY_CHANGE,
	WH_ASSOCIATION_CHANGE,
	WH_MERGE,
	WH_RESTORE,
	WH_PRIVACY_DELETION,
	WH_OTHER,
};
#define WH_KIND_COUNT 8

/* Most events one delivery may hold; HubSpot sends fewer than 100.
 * The cap bounds what a 1 MiB body of "{}," can cost in memory. */
#define WH_MAX_EVENTS 1000

/* One parsed event. Every field missing from the payload, of the wrong JSON
 * type or out of range is 0 / "" / false. A string that does not fit its
 * array is left empty, never truncated (so a cut-off name never matches a
 * real one). Ids are HubSpot's positive integers, sent as JSON numbers (or
 * numeric strings, also accepted); 0 means "none". */
struct wh_event {
	enum wh_kind kind;
	char type[128];              /* subscriptionType as sent (or eventType, its older name) */
	char object[64];             /* its object part: "contact", "line_item", "object", ...;
				      * "" (and kind WH_OTHER) when that part is empty or does not fit */
	char object_type_id[32];     /* objectTypeId when the payload has it ("0-1", "2-12345") */
	uint64_t object_id;          /* objectId */
	int64_t occurred_at;         /* occurredAt, ms since the epoch */
	uint64_t event_id;           /* eventId (not guaranteed unique by HubSpot) */
	uint64_t subscription_id;
	uint64_t portal_id;
	uint64_t app_id;
	int32_t attempt;             /* attemptNumber, from 0 */
	char change_source[32];      /* "CRM", "API", "IMPORT", ... */
	char source_id[128];         /* sourceId ("userId:123", an app id, ...) */
	/* propertyChange */
	char property[256];          /* propertyName (the value is not kept: records are refetched) */
	/* merge */
	uint64_t primary_id;         /* primaryObjectId: the survivor */
	uint64_t new_id;             /* newObjectId */
	uint64_t *merged_ids;        /* mergedObjectIds (g_malloc'd; freed with the array), or NULL */
	size_t n_merged;             /* valid ids in merged_ids; invalid entries are skipped */
	/* associationChange (fires once for each side) */
	char association_type[64];   /* "CONTACT_TO_COMPANY", ... */
	char association_category[32]; /* "HUBSPOT_DEFINED", "USER_DEFINED", ... when sent */
	uint32_t association_type_id; /* associationTypeId when sent, else 0 */
	uint64_t from_id;            /* fromObjectId */
	uint64_t to_id;              /* toObjectId */
	char from_type_id[32];       /* fromObjectTypeId / toObjectTypeId when sent ("0-1",
				      * "2-3465404"): the types of from_id and to_id; newer payloads
				      * and custom objects carry them, associationType's names may
				      * not be type names ("CAR_TO_CONTACT") */
	char to_type_id[32];
	bool removed;                /* associationRemoved */
	bool primary;                /* isPrimaryAssociation */
};

/* Parse a delivery body: a JSON array of event objects, JSON whitespace
 * allowed around it. Returns 0 and *out, a GArray of struct wh_event that
 * frees its elements' merged_ids when released (g_array_unref(*out)). An
 * empty array gives 0 and an empty *out. Events of subscription types this
 * module does not know (conversation.*, newer ones) are kept as WH_OTHER, with
 * type and object filled in. Returns -EINVAL, *out = NULL and *why (a static
 * string) when the body is not JSON, not an array, has an element that is not
 * an object, or holds more than WH_MAX_EVENTS events. Thread-safe. */
int wh_parse(const char *body, size_t len, GArray **out, const char **why);

/* "creation", "propertyChange", ... (the subscriptionType action), "other". */
const char *wh_kind_name(enum wh_kind k);

/* ---- signatures ------------------------------------------------------------ */

/* Requests older or newer than this (ms) are stale. */
#define WH_MAX_SKEW_MS 300000

/* The URI as HubSpot hashes it for v3: uri with the percent-escapes of
 * : / ? @ ! $ ' ( ) * , ; (%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B,
 * hex digits in either case) decoded in one left-to-right pass; every other
 * escape (%20, %25, ...) stays as it is. Returns a g_malloc'd string. */
char *wh_uri_decode(const char *uri);

/* Check a v3 signature: X-HubSpot-Signature-v3 (signature) must be the
 * base64 of HMAC-SHA-256 keyed by secret over method + wh_uri_decode(uri) +
 * body + timestamp, where uri is the full URL HubSpot posted to
 * ("https://host/path?query") and timestamp is X-HubSpot-Request-Timestamp
 * (ms since the epoch, decimal digits). The comparison takes the same time
 * wherever the signatures differ.
 * Returns 0 if it matches and |now_ms - timestamp| <= WH_MAX_SKEW_MS;
 * -EACCES if it does not match; -ETIME if it matches but is stale; -EINVAL if
 * an argument is NULL or empty (body may be empty), the timestamp is not a
 * decimal number, or the signature is not 44 base64 characters. */
int wh_verify_v3(const char *secret, const char *method, const char *uri,
		 const char *body, size_t len, const char *timestamp,
		 const char *signature, int64_t now_ms);

/* Check a v1 signature (older apps): X-HubSpot-Signature must be the hex
 * SHA-256 of secret + body (hex digits in either case). There is no
 * timestamp, so nothing says a v1 request is fresh. Returns 0, -EACCES (no
 * match) or -EINVAL (NULL/empty secret, or not 64 hex digits). */
int wh_verify_v1(const char *secret, const char *body, size_t len, const char *signature);

/* ---- the receiver ----------------------------------------------------------- */

/* Why a request was not accepted. WH_REJ_REPLAY is answered 200 (HubSpot must
 * not retry it) but its events are dropped; WH_REJ_BUSY is answered 503 so
 * HubSpot retries it later with a fresh timestamp. */
enum wh_reject {
	WH_REJ_SIGNATURE,   /* 401: missing, malformed or wrong signature; v1 when not allowed */
	WH_REJ_STALE,       /* 401: a right v3 signature on a timestamp over 5 minutes off */
	WH_REJ_REPLAY,      /* 200, ignored: a v3 signature seen before (or a v1 one
			     * within the last 5 minutes) */
	WH_REJ_SIZE,        /* 413: body over max_body (a body without a length that goes
			     * on past twice max_body: connection closed, no answer) */
	WH_REJ_JSON,        /* 400: signed, but not a valid delivery (wh_parse failed) */
	WH_REJ_METHOD,      /* 405: not POST */
	WH_REJ_PATH,        /* 404: not the configured path */
	WH_REJ_BUSY,        /* 503: the replay set is full and cannot vouch for this timestamp */
};
#define WH_REJ_COUNT 8

/* "signature", "stale", ... as used in status output. */
const char *wh_reject_name(enum wh_reject r);

struct wh_server_opts {
	/* "PORT", "HOST:PORT", "[V6ADDR]:PORT" or ":PORT"; HOST numeric, or a
	 * name (its first address, looked up at start). An empty HOST, a bare
	 * PORT and NULL ("127.0.0.1:0", an ephemeral port) bind the loopback
	 * 127.0.0.1; any other address only when named. */
	const char *listen;
	const char *path;            /* request path to accept; NULL = "/hubspot" */
	/* The target URL configured in HubSpot, when a reverse proxy or tunnel
	 * stands between: v3 is checked against it. NULL: "http://" + Host + the
	 * request target as received. */
	const char *public_url;
	const char *secret;          /* required; copied, and wiped at stop */
	bool allow_v1;               /* accept requests that carry only a v1 signature */
	size_t max_body;             /* 0 = 1 MiB; a longer body is answered 413, and one
				      * announced longer (Content-Length) before it is read */
	size_t replay_max;           /* signatures remembered; 0 = 8192 */
	/* Wall clock, ms since the epoch; NULL = the system's (g_get_real_time). */
	int64_t (*wall_now)(void);
	/* Called on the server thread with the events of each accepted delivery,
	 * before its 200 is sent: takes ownership of events (g_array_unref when
	 * done). Must return quickly (queue the events to another thread; no
	 * HTTP to HubSpot here): HubSpot gives up on an answer after 5 s. NULL:
	 * events are counted and dropped. */
	void (*on_events)(void *ud, GArray *events);
	void *ud;
};

/* Counters since start. Rejected requests are counted by reason; received
 * counts every request accepted or rejected (so received = accepted + the
 * sum of rejected). */
struct wh_stats {
	uint64_t received;
	uint64_t accepted;           /* deliveries handed to on_events */
	uint64_t events;             /* events in them */
	uint64_t events_other;       /* of which WH_OTHER */
	uint64_t rejected[WH_REJ_COUNT];
	int64_t last_delivery_ms;    /* wall clock of the last accepted delivery; 0 = none yet */
};

struct wh_server;

/* Bind o->listen and serve in a thread of the server's own. Returns 0 and
 * *out, or -errno with *out = NULL and *why (static string): -EINVAL for a bad
 * listen address, path (must start with "/"), public_url (must be http:// or
 * https://) or a missing secret; the bind's errno (-EADDRINUSE, -EACCES,
 * -EADDRNOTAVAIL, ...); -EIO if libmicrohttpd would not start. Strings in o
 * are copied. */
int wh_server_start(const struct wh_server_opts *o, struct wh_server **out, const char **why);

/* The port bound (useful with port 0). */
uint16_t wh_server_port(const struct wh_server *s);

/* The address bound, "127.0.0.1:8787" or "[::1]:8787" (owned by s). */
const char *wh_server_address(const struct wh_server *s);

/* A consistent snapshot of the counters. Thread-safe. */
void wh_server_stats(struct wh_server *s, struct wh_stats *st);

/* Stop listening, finish or drop the requests in progress, join the thread
 * and free s. on_events is not called once this returns. Accepts NULL. */
void wh_server_stop(struct wh_server *s);

#endif
