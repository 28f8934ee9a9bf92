/* http.c - libcurl transfers over a pool of easy handles (see http.h).
 *
 * Why a pool and not one shared connection cache: libcurl does not support
 * sharing CURL_LOCK_DATA_CONNECT between concurrently running threads
 * (CURLSHOPT_SHARE(3)). Each pooled handle keeps its own live connections;
 * the LIFO pool hands the most recently used (warm) handle out first. DNS
 * and TLS sessions are shared through a share handle with per-kind locks.
 */
#include "client/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "hubfs_config.h"

#define DEFAULT_MAX_IDLE 16
#define DEFAULT_CONNECT_TIMEOUT_MS 10000

struct http {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST]; /* one per curl_lock_data */
	char *ca_file;
	size_t max_body;
	int64_t connect_timeout_ms;
	pthread_mutex_t lock;   /* guards idle/nidle */
	CURL **idle;            /* protected by lock; LIFO */
	int nidle;              /* protected by lock */
	int max_idle;
};

/* Response body sink: grows by doubling up to max, then fails the transfer. */
struct sink {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	bool too_large;
	bool oom;
};

struct hdr_sink {
	struct http_resp *resp;
};

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userp)
{
	struct http *h = userp;

	(void)handle;
	(void)access;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userp)
{
	struct http *h = userp;

	(void)handle;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

int http_url_allowed(const char *url, const char **why)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL;
	unsigned char addr[sizeof(struct in6_addr)];
	int rc = -EINVAL;

	*why = "invalid URL";
	if (!url || !*url)
		return -EINVAL;
	u = curl_url();
	if (!u) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "https") == 0) {
		rc = 0;
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0) {
		*why = "URL scheme must be https (or http to a loopback address)";
		goto out;
	}
	*why = "plain http is only allowed to a loopback address (127.0.0.0/8, ::1, localhost)";
	if (strcasecmp(host, "localhost") == 0) {
		rc = 0;
	} else if (inet_pton(AF_INET, host, addr) == 1) {
		if (addr[0] == 127)
			rc = 0;
	} else if (host[0] == '[') {
		size_t n = strlen(host);
		char inner[INET6_ADDRSTRLEN + 1];

		if (n >= 3 && host[n - 1] == ']' && n - 2 < sizeof(inner)) {
			memcpy(inner, host + 1, n - 2);
			inner[n - 2] = '\0';
			if (inet_pton(AF_INET6, inner, addr) == 1 &&
			    IN6_IS_ADDR_LOOPBACK((struct in6_addr *)addr))
				rc = 0;
		}
	}
out:
	if (rc == 0)
		*why = NULL;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

int http_new(const struct http_opts *opts, struct http **out)
{
	struct http *h;
	int i;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->max_body = opts && opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
	h->max_idle = opts && opts->max_idle > 0 ? opts->max_idle : DEFAULT_MAX_IDLE;
	h->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ?
				opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
	pthread_mutex_init(&h->lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	h->idle = calloc((size_t)h->max_idle, sizeof(*h->idle));
	if (!h->idle || (opts && opts->ca_file && !(h->ca_file = strdup(opts->ca_file)))) {
		http_free(h);
		return -ENOMEM;
	}
	h->share = curl_share_init();
	if (!h->share ||
	    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		http_free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void http_free(struct http *h)
{
	int i;

	if (!h)
		return;
	/* Easy handles first: they reference the share. */
	for (i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->lock);
	free(h->idle);
	free(h->ca_file);
	free(h);
}

static CURL *pool_get(struct http *h)
{
	CURL *e = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->nidle > 0)
		e = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->lock);
	return e ? e : curl_easy_init();
}

/* Return a handle (already reset) to the pool, or free it if the pool is full. */
static void pool_put(struct http *h, CURL *e)
{
	pthread_mutex_lock(&h->lock);
	if (h->nidle < h->max_idle) {
		h->idle[h->nidle++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (e)
		curl_easy_cleanup(e);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct sink *s = userp;
	size_t n = size * nmemb;

	if (n > s->max - s->len) {
		s->too_large = true;
		return 0;
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		char *p;

		while (cap < s->len + n + 1)
			cap *= 2;
		if (cap > s->max + 1)
			cap = s->max + 1;
		p = realloc(s->buf, cap);
		if (!p) {
			s->oom = true;
			return 0;
		}
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

/* Parse a non-negative decimal header value; -1 if it is not one. */
static int64_t parse_count(const char *v)
{
	char *end;
	long long x;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	x = strtoll(v, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (errno || *end)
		return -1;
	return x;
}

int64_t http_parse_retry_after(const char *value, int64_t now_epoch_s)
{
	int64_t secs = parse_count(value);
	time_t when;

	if (secs >= 0)
		return secs > INT64_MAX / 1000 ? INT64_MAX : secs * 1000;
	when = curl_getdate(value, NULL);
	if (when == -1)
		return -1;
	return when <= now_epoch_s ? 0 : ((int64_t)when - now_epoch_s) * 1000;
}

static void rl_headers_reset(struct rl_headers *rl)
{
	rl->max = rl->interval_ms = rl->remaining = -1;
	rl->daily = rl->daily_remaining = rl->retry_after_ms = -1;
}

static void copy_bounded(char *dst, size_t dstlen, const char *src)
{
	snprintf(dst, dstlen, "%s", src);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_resp *r = ((struct hdr_sink *)userp)->resp;
	size_t n = size * nmemb;
	char line[512], *colon, *name, *val, *end;

	/* A new status line (after 100 Continue, say) starts a new header set. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		rl_headers_reset(&r->rl);
		r->correlation_id[0] = '\0';
		r->content_type[0] = '\0';
		return n;
	}
	if (n >= sizeof(line)) /* none of the headers we want is this long */
		return n;
	memcpy(line, data, n);
	line[n] = '\0';
	colon = strchr(line, ':');
	if (!colon)
		return n;
	*colon = '\0';
	name = line;
	val = colon + 1;
	while (*val == ' ' || *val == '\t')
		val++;
	end = val + strlen(val);
	while (end > val && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';

	if (strcasecmp(name, "X-HubSpot-RateLimit-Max") == 0)
		r->rl.max = parse_count(val);
	else if (strcasecmp(name, "X-HubSpot-RateLimit-Interval-Milliseconds") == 0)
		r->rl.interval_ms = parse_count(val);
	else if (strcasecmp(name, "X-HubSpot-RateLimit-Remaining") == 0)
		r->rl.remaining = parse_count(val);
	else if (strcasecmp(name, "X-HubSpot-RateLimit-Daily") == 0)
		r->rl.daily = parse_count(val);
	else if (strcasecmp(name, "X-HubSpot-RateLimit-Daily-Remaining") == 0)
		r->rl.daily_remaining = parse_count(val);
	else if (strcasecmp(name, "Retry-After") == 0)
		r->rl.retry_after_ms = http_parse_retry_after(val, (int64_t)time(NULL));
	else if (strcasecmp(name, "x-hubspot-correlation-id") == 0)
		copy_bounded(r->correlation_id, sizeof(r->correlation_id), val);
	else if (strcasecmp(name, "Content-Type") == 0)
		copy_bounded(r->content_type, sizeof(r->content_type), val);
	return n;
}

/* Zero the Authorization entry before the list is freed: the token should
 * not linger in freed heap memory. */
static void headers_free(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		if (l->data && strncasecmp(l->data, "Authorization:", 14) == 0)
			explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static struct curl_slist *headers_build(const struct http_req *req)
{
	struct curl_slist *list = NULL, *t;
	static const char *const fixed[] = {
		"Accept: application/json",
		"Expect:", /* no 100-continue round trip for large bodies */
	};
	size_t i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		t = curl_slist_append(list, fixed[i]);
		if (!t)
			goto fail;
		list = t;
	}
	if (req->body) {
		char ct[160];

		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/json");
		t = curl_slist_append(list, ct);
		if (!t)
			goto fail;
		list = t;
	}
	if (req->bearer) {
		size_t n = strlen(req->bearer) + sizeof("Authorization: Bearer ");
		char *auth = malloc(n);

		if (!auth)
			goto fail;
		snprintf(auth, n, "Authorization: Bearer %s", req->bearer);
		t = curl_slist_append(list, auth);
		explicit_bzero(auth, n);
		free(auth);
		if (!t)
			goto fail;
		list = t;
	}
	return list;
fail:
	headers_free(list);
	return NULL;
}

/* A plain-http URL (loopback only, see http_url_allowed) must not go through
 * an environment proxy: the proxy would read the bearer token, a form with
 * the client secret, and every answer. An empty CURLOPT_PROXY turns off
 * http_proxy, HTTPS_PROXY and ALL_PROXY alike. https:// keeps them: through a
 * proxy it is a CONNECT tunnel, verified end to end. */
static CURLcode set_proxy(CURL *e, const char *url)
{
	if (strncasecmp(url, "http://", 7) == 0)
		return curl_easy_setopt(e, CURLOPT_PROXY, "");
	return CURLE_OK;
}

static int set_method(CURL *e, const struct http_req *req)
{
	const char *m = req->method;
	CURLcode rc = CURLE_OK;

	if (strcmp(m, "GET") == 0)
		return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK ? 0 : -EINVAL;
	if (strcmp(m, "POST") != 0)
		rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	if (rc == CURLE_OK && (req->body || strcmp(m, "DELETE") != 0)) {
		/* POST/PUT/PATCH always carry a body (possibly empty); DELETE only
		 * when given one. POSTFIELDS makes libcurl send it as is. */
		rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)(req->body ? req->body_len : 0));
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	return rc == CURLE_OK ? 0 : -EINVAL;
}

void http_resp_clear(struct http_resp *resp)
{
	if (!resp)
		return;
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

int http_perform(struct http *h, const struct http_req *req, struct http_resp *resp)
{
	size_t max_body = req->max_body && req->max_body < h->max_body ? req->max_body : h->max_body;
	struct sink sink = { .max = max_body };
	struct hdr_sink hs = { .resp = resp };
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *headers = NULL;
	int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : 1;
	int64_t ctimeout = h->connect_timeout_ms < timeout ? h->connect_timeout_ms : timeout;
	long status = 0, reqsize = 0;
	CURLcode cc;
	CURL *e;
	int rc;

	memset(resp, 0, sizeof(*resp));
	rl_headers_reset(&resp->rl);
	errbuf[0] = '\0';
	e = pool_get(h);
	if (!e) {
		copy_bounded(resp->error, sizeof(resp->error), "out of memory (curl handle)");
		return -ENOMEM;
	}
	headers = headers_build(req);
	if (!headers) {
		copy_bounded(resp->error, sizeof(resp->error), "out of memory (headers)");
		rc = -ENOMEM;
		goto out;
	}

	cc = curl_easy_setopt(e, CURLOPT_URL, req->url);
	/* Each setopt below only fails for unknown options or out of memory;
	 * the first failure is kept and reported. */
#define SET(opt, val) do { if (cc == CURLE_OK) cc = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SHARE, h->share);
	SET(CURLOPT_TIMEOUT_MS, (long)timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)ctimeout);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		SET(CURLOPT_CAINFO, h->ca_file);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_USERAGENT, "hubfs/" HUBFS_VERSION);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (req->once)
		SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, &hs);
	SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
	if (cc == CURLE_OK)
		cc = set_proxy(e, req->url);
	if (cc != CURLE_OK || set_method(e, req) < 0) {
		snprintf(resp->error, sizeof(resp->error), "curl setup failed: %s",
			 curl_easy_strerror(cc));
		rc = -ENOMEM;
		goto out;
	}

	cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &reqsize);
	resp->sent = reqsize > 0 || status > 0;
	resp->status = status;
	if (cc == CURLE_OK) {
		resp->body = sink.buf;
		resp->len = sink.len;
		sink.buf = NULL;
		rc = 0;
		goto out;
	}
	resp->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
	resp->too_large = sink.too_large || cc == CURLE_FILESIZE_EXCEEDED;
	if (resp->too_large)
		snprintf(resp->error, sizeof(resp->error), "response body larger than %zu bytes",
			 max_body);
	else if (sink.oom)
		copy_bounded(resp->error, sizeof(resp->error), "out of memory (response body)");
	else
		snprintf(resp->error, sizeof(resp->error), "%s%s%s", curl_easy_strerror(cc),
			 errbuf[0] ? ": " : "", errbuf);
	rc = resp->too_large ? -EFBIG : sink.oom ? -ENOMEM : resp->timed_out ? -ETIMEDOUT : -EIO;
out:
	free(sink.buf);
	/* Reset drops every pointer into this frame (errbuf, sinks, headers)
	 * but keeps the live connections and caches. */
	curl_easy_reset(e);
	pool_put(h, e);
	headers_free(headers);
	return rc;
}
