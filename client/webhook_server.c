/* webhook_server.c - the HTTP receiver of HubSpot webhook deliveries.
 *
 * libmicrohttpd serves HTTP on one internal thread (MHD_USE_AUTO picks epoll
 * or poll). Each request goes through, in this order:
 *   path (404), method (405), Content-Length over max_body (413, answered
 *   before the body is read), a body without a length past max_body (413
 *   once it is in: the rest is read and dropped, never buffered; the
 *   connection is closed if it goes on past twice the cap), signature (401), JSON (400), replay (200 but
 *   ignored) or a timestamp the replay set can no longer vouch for (503),
 *   then the events go to on_events and the answer is 200.
 * A request that fails any check changes nothing but a counter.
 *
 * Replays. A v3 signature covers the timestamp, so it is accepted once: its
 * signature is remembered until its timestamp leaves the 5-minute window,
 * after which wh_verify_v3 refuses it as stale anyway. A v1 signature (no
 * timestamp) is remembered for 5 minutes from its arrival; an identical
 * request after that is accepted again (which is why v1 is opt-in). At most
 * replay_max signatures are kept: when the set is full the one with the
 * oldest timestamp goes and `floor` rises to it; from then on a v3 timestamp
 * at or below the floor (and any v1 request while the floor is within the
 * window) is answered 503, so that HubSpot sends it again later, signed
 * afresh, instead of being accepted unchecked.
 *
 * Lock: s->lock guards st, seen, seen_order, floor and noted. The request
 * handler runs on libmicrohttpd's thread; wh_server_stats on any.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "client/log.h"
#include "client/webhook.h"

#define DEFAULT_PATH "/hubspot"
#define DEFAULT_LISTEN "127.0.0.1:0"
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_REPLAY_MAX 8192
#define CONNECTION_LIMIT 64
#define CONNECTION_TIMEOUT_S 15 /* an idle or trickling connection is closed after this */

static const char *const reject_names[WH_REJ_COUNT] = {
	[WH_REJ_SIGNATURE] = "signature",
	[WH_REJ_STALE] = "stale",
	[WH_REJ_REPLAY] = "replay",
	[WH_REJ_SIZE] = "size",
	[WH_REJ_JSON] = "json",
	[WH_REJ_METHOD] = "method",
	[WH_REJ_PATH] = "path",
	[WH_REJ_BUSY] = "busy",
};

const char *wh_reject_name(enum wh_reject r)
{
	return (unsigned)r < WH_REJ_COUNT ? reject_names[r] : "?";
}

/* A remembered signature. */
struct seen {
	int64_t ts;        /* v3: the request's timestamp; v1: its arrival */
	char key[72];      /* "v3:<base64>" or "v1:<hex>" */
};

struct wh_server {
	struct MHD_Daemon *mhd;
	char *path;
	char *public_url;
	char *secret;
	bool allow_v1;
	size_t max_body;
	size_t replay_max;
	int64_t (*wall_now)(void);
	void (*on_events)(void *ud, GArray *events);
	void *ud;
	uint16_t port;
	char address[INET6_ADDRSTRLEN + 8];

	GMutex lock;
	struct wh_stats st;        /* protected by lock */
	GHashTable *seen;          /* key -> struct seen (owned); protected by lock */
	GTree *seen_order;         /* struct seen, by (ts, key) -> same; protected by lock */
	int64_t floor;             /* highest ts evicted while in its window; protected by lock */
	bool noted[WH_REJ_COUNT];  /* reason already logged at notice; protected by lock */
};

/* One request, from the request line to its completion. */
struct req {
	char *target;              /* the request target as received ("/hubspot?x=%3A") */
	bool started;              /* the handler has seen the headers */
	bool too_big;              /* the body passed max_body: drop the rest */
	size_t total;              /* body bytes received */
	GString *body;
};

static int64_t system_wall_ms(void)
{
	return g_get_real_time() / 1000;
}

/* ---- replay set (caller holds s->lock) -------------------------------------- */

static gint seen_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
	const struct seen *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void seen_drop(struct wh_server *s, struct seen *e)
{
	g_tree_remove(s->seen_order, e);
	g_hash_table_remove(s->seen, e->key); /* frees e */
}

/* Forget the signatures that can no longer be replayed. */
static void seen_expire(struct wh_server *s, int64_t now)
{
	GTreeNode *first;

	while ((first = g_tree_node_first(s->seen_order))) {
		struct seen *e = g_tree_node_key(first);

		if (e->ts >= now - WH_MAX_SKEW_MS)
			break;
		seen_drop(s, e);
	}
}

enum seen_verdict { SEEN_NEW, SEEN_REPLAY, SEEN_UNSURE };

/* Look key up; if new and vouchable, remember it (making room if need be). */
static enum seen_verdict seen_check_add(struct wh_server *s, const char *key, int64_t ts,
					bool v1, int64_t now)
{
	GTreeNode *first;
	struct seen *e;

	seen_expire(s, now);
	if (g_hash_table_contains(s->seen, key))
		return SEEN_REPLAY;
	if (v1 ? s->floor >= now - WH_MAX_SKEW_MS : ts <= s->floor)
		return SEEN_UNSURE;
	while (g_hash_table_size(s->seen) >= s->replay_max &&
	       (first = g_tree_node_first(s->seen_order))) {
		e = g_tree_node_key(first);
		s->floor = MAX(s->floor, e->ts);
		seen_drop(s, e);
	}
	e = g_new0(struct seen, 1);
	e->ts = ts;
	g_strlcpy(e->key, key, sizeof(e->key));
	g_hash_table_insert(s->seen, e->key, e);
	g_tree_insert(s->seen_order, e, e);
	return SEEN_NEW;
}

/* ---- answers ------------------------------------------------------------------ */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *text,
			      bool allow_post)
{
	struct MHD_Response *rsp;
	enum MHD_Result r;

	rsp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!rsp)
		return MHD_NO;
	MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow_post)
		MHD_add_response_header(rsp, MHD_HTTP_HEADER_ALLOW, "POST");
	r = MHD_queue_response(conn, status, rsp);
	MHD_destroy_response(rsp);
	return r;
}

/* Count a rejection and log it: the first of each reason at notice, a flood
 * of them at debug only. */
static void count_reject(struct wh_server *s, enum wh_reject why, const char *detail)
{
	bool first;

	g_mutex_lock(&s->lock);
	s->st.received++;
	s->st.rejected[why]++;
	first = !s->noted[why];
	s->noted[why] = true;
	g_mutex_unlock(&s->lock);
	LOG_AT(first ? LOG_NOTICE : LOG_DEBUG, "webhook: request rejected (%s)%s%s%s",
	       wh_reject_name(why), detail ? ": " : "", detail ? detail : "",
	       first ? "; later ones are counted in the status" : "");
}

static enum MHD_Result reject(struct wh_server *s, struct MHD_Connection *conn,
			      enum wh_reject why, const char *detail)
{
	static const struct { unsigned status; const char *text; } reply[WH_REJ_COUNT] = {
		[WH_REJ_SIGNATURE] = { MHD_HTTP_UNAUTHORIZED, "signature check failed\n" },
		[WH_REJ_STALE] = { MHD_HTTP_UNAUTHORIZED, "timestamp more than 5 minutes off\n" },
		[WH_REJ_REPLAY] = { MHD_HTTP_OK, "already received\n" },
		[WH_REJ_SIZE] = { MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n" },
		[WH_REJ_JSON] = { MHD_HTTP_BAD_REQUEST, "not a JSON array of events\n" },
		[WH_REJ_METHOD] = { MHD_HTTP_METHOD_NOT_ALLOWED, "only POST\n" },
		[WH_REJ_PATH] = { MHD_HTTP_NOT_FOUND, "not found\n" },
		[WH_REJ_BUSY] = { MHD_HTTP_SERVICE_UNAVAILABLE, "busy, send it again later\n" },
	};

	count_reject(s, why, detail);
	return answer(conn, reply[why].status, reply[why].text, why == WH_REJ_METHOD);
}

/* ---- the request ---------------------------------------------------------------- */

static const char *header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The URL HubSpot posted to, as it signed it (before wh_uri_decode). */
static char *signed_uri(struct wh_server *s, struct MHD_Connection *conn, const struct req *r)
{
	const char *host = header(conn, MHD_HTTP_HEADER_HOST);

	if (s->public_url)
		return g_strdup(s->public_url);
	if (g_str_has_prefix(r->target, "http://") || g_str_has_prefix(r->target, "https://"))
		return g_strdup(r->target); /* absolute-form request target */
	return g_strconcat("http://", host ? host : "", r->target, NULL);
}

/* Check the signature; on success fill the replay key and its time. */
static int check_signature(struct wh_server *s, struct MHD_Connection *conn, const struct req *r,
			   const char *method, int64_t now, char *key, size_t key_size,
			   int64_t *ts, bool *v1, const char **detail)
{
	const char *sig3 = header(conn, "X-HubSpot-Signature-v3");
	const char *stamp = header(conn, "X-HubSpot-Request-Timestamp");
	const char *sig1 = header(conn, "X-HubSpot-Signature");
	const char *version = header(conn, "X-HubSpot-Signature-Version");
	g_autofree char *uri = NULL;
	int rc;

	*v1 = false;
	if (sig3 || stamp) {
		/* A v3 failure is final: falling back to v1 would drop the timestamp. */
		uri = signed_uri(s, conn, r);
		rc = wh_verify_v3(s->secret, method, uri, r->body->str, r->body->len, stamp, sig3,
				  now);
		if (rc == -EINVAL)
			*detail = "missing or malformed v3 signature or timestamp";
		else if (rc == -EACCES)
			*detail = "v3 signature does not match (wrong secret, altered body, or a "
				  "URL other than the one HubSpot posted to: see webhook_public_url)";
		if (rc == 0) {
			snprintf(key, key_size, "v3:%s", sig3);
			*ts = g_ascii_strtoll(stamp, NULL, 10);
		}
		return rc;
	}
	if (!sig1) {
		*detail = "unsigned request";
		return -EINVAL;
	}
	if (!s->allow_v1) {
		*detail = "only a v1 signature, and v1 is not enabled (webhook_v1)";
		return -EACCES;
	}
	if (version && strcmp(version, "v1") != 0) {
		*detail = "signature version other than v1 and v3";
		return -EACCES;
	}
	rc = wh_verify_v1(s->secret, r->body->str, r->body->len, sig1);
	if (rc != 0) {
		*detail = "v1 signature does not match";
		return rc;
	}
	snprintf(key, key_size, "v1:%s", sig1);
	for (char *p = key; *p; p++)
		*p = g_ascii_tolower(*p);
	*ts = now;
	*v1 = true;
	return 0;
}

static enum MHD_Result finish(struct wh_server *s, struct MHD_Connection *conn, struct req *r,
			      const char *method)
{
	int64_t now = s->wall_now(), ts = 0;
	const char *detail = NULL, *why = NULL;
	GArray *events = NULL;
	enum seen_verdict v;
	char key[80];
	bool v1;
	int rc;

	rc = check_signature(s, conn, r, method, now, key, sizeof(key), &ts, &v1, &detail);
	if (rc == -ETIME)
		return reject(s, conn, WH_REJ_STALE, NULL);
	if (rc != 0)
		return reject(s, conn, WH_REJ_SIGNATURE, detail);
	if (wh_parse(r->body->str, r->body->len, &events, &why) != 0)
		return reject(s, conn, WH_REJ_JSON, why);

	g_mutex_lock(&s->lock);
	v = seen_check_add(s, key, ts, v1, now);
	if (v == SEEN_NEW) {
		s->st.received++;
		s->st.accepted++;
		s->st.events += events->len;
		for (guint i = 0; i < events->len; i++)
			s->st.events_other += g_array_index(events, struct wh_event, i).kind == WH_OTHER;
		s->st.last_delivery_ms = now;
	}
	g_mutex_unlock(&s->lock);
	if (v != SEEN_NEW) {
		g_array_unref(events);
		return reject(s, conn, v == SEEN_REPLAY ? WH_REJ_REPLAY : WH_REJ_BUSY, NULL);
	}
	log_debug("webhook: delivery of %u events accepted", events->len);
	if (s->on_events)
		s->on_events(s->ud, events);
	else
		g_array_unref(events);
	return answer(conn, MHD_HTTP_OK, "ok\n", false);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct wh_server *s = cls;
	struct req *r = *req_cls;
	const char *cl;
	guint64 n = 0;

	if (!r->started) {
		r->started = true;
		if (strcmp(url, s->path) != 0)
			return reject(s, conn, WH_REJ_PATH, NULL);
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return reject(s, conn, WH_REJ_METHOD, NULL);
		cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && g_ascii_string_to_unsigned(cl, 10, 0, G_MAXUINT64, &n, NULL) &&
		    n > s->max_body)
			return reject(s, conn, WH_REJ_SIZE, NULL); /* before any of it is read */
		r->body = g_string_sized_new(MIN(n, s->max_body));
		return MHD_YES;
	}
	if (*upload_size) {
		/* A body without Content-Length (chunked) that outgrows the cap:
		 * libmicrohttpd cannot answer before the body is in, so the rest is
		 * read and dropped (nothing kept) up to as much again, and then the
		 * connection is closed without an answer. */
		r->total += *upload_size;
		if (r->total <= s->max_body) {
			g_string_append_len(r->body, upload, (gssize)*upload_size);
		} else if (r->total - s->max_body <= s->max_body) {
			if (!r->too_big)
				g_string_truncate(r->body, 0);
			r->too_big = true;
		} else {
			count_reject(s, WH_REJ_SIZE, "body without a length past twice the cap: "
				     "connection closed");
			return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		return reject(s, conn, WH_REJ_SIZE, NULL);
	return finish(s, conn, r, method);
}

static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct req *r = g_new0(struct req, 1);

	r->target = g_strdup(uri);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *req_cls;

	if (!r)
		return;
	g_free(r->target);
	if (r->body)
		g_string_free(r->body, TRUE);
	g_free(r);
	*req_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	if (LOG_DEBUG > log_threshold)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	g_strchomp(line);
	log_debug("webhook: libmicrohttpd: %s", line);
}

/* ---- start and stop ------------------------------------------------------------ */

/* Split "PORT", "HOST:PORT", "[V6]:PORT", ":PORT" into host and port. */
static int split_listen(const char *spec, char **host, char **port, const char **why)
{
	const char *colon;

	*why = "webhook listen address: expected PORT, HOST:PORT or [IPV6]:PORT";
	if (!spec || !*spec)
		spec = DEFAULT_LISTEN;
	if (spec[0] == '[') {
		const char *close = strstr(spec, "]:");

		if (!close || close == spec + 1)
			return -EINVAL;
		*host = g_strndup(spec + 1, (gsize)(close - spec - 1));
		colon = close + 1;
	} else if ((colon = strrchr(spec, ':'))) {
		if (memchr(spec, ':', (size_t)(colon - spec))) {
			*why = "webhook listen address: an IPv6 address goes in brackets, [::1]:PORT";
			return -EINVAL;
		}
		*host = colon == spec ? g_strdup("127.0.0.1") : g_strndup(spec, (gsize)(colon - spec));
	} else {
		*host = g_strdup("127.0.0.1");
		colon = spec - 1;
	}
	*port = g_strdup(colon + 1);
	if (!**port || strspn(*port, "0123456789") != strlen(*port) || strlen(*port) > 5 ||
	    atoi(*port) > 65535) {
		g_clear_pointer(host, g_free);
		g_clear_pointer(port, g_free);
		*why = "webhook listen address: the port is not a number from 0 to 65535";
		return -EINVAL;
	}
	return 0;
}

/* A listening, non-blocking socket on spec; fills s->port and s->address. */
static int listen_on(struct wh_server *s, const char *spec, int *fd_out, const char **why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	char host[INET6_ADDRSTRLEN], serv[8];
	g_autofree char *h = NULL, *p = NULL;
	int fd = -1, one = 1, rc;

	rc = split_listen(spec, &h, &p, why);
	if (rc)
		return rc;
	if (getaddrinfo(h, p, &hints, &ai) != 0 || !ai) {
		*why = "webhook listen address: unknown host (use a numeric address)";
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		*why = "webhook listener: socket() failed";
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		rc = -errno;
		*why = "webhook listener: cannot bind the address";
		goto out;
	}
	if (listen(fd, 64) != 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&sa, sl, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		rc = errno ? -errno : -EIO;
		*why = "webhook listener: cannot listen";
		goto out;
	}
	s->port = (uint16_t)atoi(serv);
	snprintf(s->address, sizeof(s->address), sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, serv);
	*fd_out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

static void secret_free(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, strlen(secret));
	g_free(secret);
}

static void server_free(struct wh_server *s)
{
	g_free(s->path);
	g_free(s->public_url);
	secret_free(s->secret);
	if (s->seen_order)
		g_tree_destroy(s->seen_order);
	if (s->seen)
		g_hash_table_destroy(s->seen);
	g_mutex_clear(&s->lock);
	g_free(s);
}

int wh_server_start(const struct wh_server_opts *o, struct wh_server **out, const char **why)
{
	struct wh_server *s;
	int fd = -1, rc;

	*out = NULL;
	if (!o->secret || !*o->secret) {
		*why = "webhook: no secret (the app's client secret) to check signatures with";
		return -EINVAL;
	}
	if (o->path && o->path[0] != '/') {
		*why = "webhook path: must start with /";
		return -EINVAL;
	}
	if (o->public_url && !g_str_has_prefix(o->public_url, "http://") &&
	    !g_str_has_prefix(o->public_url, "https://")) {
		*why = "webhook public URL: must start with https:// or http://";
		return -EINVAL;
	}
	s = g_new0(struct wh_server, 1);
	g_mutex_init(&s->lock);
	s->path = g_strdup(o->path ? o->path : DEFAULT_PATH);
	s->public_url = g_strdup(o->public_url);
	s->secret = g_strdup(o->secret);
	s->allow_v1 = o->allow_v1;
	s->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
	s->replay_max = o->replay_max ? o->replay_max : DEFAULT_REPLAY_MAX;
	s->wall_now = o->wall_now ? o->wall_now : system_wall_ms;
	s->on_events = o->on_events;
	s->ud = o->ud;
	s->seen = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	s->seen_order = g_tree_new_full(seen_cmp, NULL, NULL, NULL);
	s->floor = INT64_MIN;

	rc = listen_on(s, o->listen, &fd, why);
	if (rc)
		goto fail;
	s->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0,
				  NULL, NULL, on_request, s,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				  MHD_OPTION_END);
	if (!s->mhd) {
		close(fd);
		rc = -EIO;
		*why = "webhook listener: libmicrohttpd did not start";
		goto fail;
	}
	log_info("webhook: listening on %s, path %s%s", s->address, s->path,
		 s->allow_v1 ? ", v1 signatures accepted" : "");
	*out = s;
	return 0;
fail:
	server_free(s);
	return rc;
}

uint16_t wh_server_port(const struct wh_server *s)
{
	return s->port;
}

const char *wh_server_address(const struct wh_server *s)
{
	return s->address;
}

void wh_server_stats(struct wh_server *s, struct wh_stats *st)
{
	g_mutex_lock(&s->lock);
	*st = s->st;
	g_mutex_unlock(&s->lock);
}

void wh_server_stop(struct wh_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd); /* joins the thread, closes the listening socket */
	server_free(s);
}
