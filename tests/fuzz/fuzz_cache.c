/* fuzz_cache - the cache's walkers of HubSpot answers (cache/cache_*.c),
 * which are static, driven through the public cache API against an in-process
 * HTTP server on 127.0.0.1 that answers with the fuzz input.
 *
 * Input: one selector byte (bits 0-1 the object type, 2-3 the type associated
 * with it), then up to six bodies separated by "\n--\n", for, in order: a list
 * page, a batch/read answer, an association batch/read answer, an owners page,
 * the pipelines, a search page (incremental refresh). Body k is part k modulo
 * the number of parts, so one part reaches every walker. Each operation gets
 * its body on its first request; any further page is {"results":[]}.
 * Properties requests get the golden schemas of tests/unit/golden/edit/.
 *
 * Invariants: the calls return 0, 1 (end of listing) or -errno; listed ids are
 * valid record ids whose record files end in "}\n" and parse; association and
 * owner ids come sorted; owner files and the pipelines file parse.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "cache/cache.h"
#include "cache/model/record.h"
#include "client/hubspot.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/types.h"

enum { OP_LIST, OP_BATCH, OP_ASSOC, OP_OWNERS, OP_PIPES, OP_SEARCH, OP_COUNT };

static struct {
	pthread_mutex_t lock;
	char *props[TY_COUNT];          /* properties answers */
	const uint8_t *body[OP_COUNT];  /* protected by lock */
	size_t len[OP_COUNT];
	int op;                         /* the operation running */
	int served;                     /* requests it got */
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct hs_client *hc;

/* ------------------------------------------------------------ the server */

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void respond(int fd, const char *path)
{
	static const char empty[] = "{\"results\":[]}";
	char head[256];
	const char *body = empty;
	size_t len = sizeof(empty) - 1;
	char *copy = NULL;

	pthread_mutex_lock(&srv.lock);
	if (g_str_has_prefix(path, "/crm/v3/properties/")) {
		const char *tn = path + strlen("/crm/v3/properties/");
		size_t n = strcspn(tn, "?/ ");

		const struct objtype *ot = objtypes_by_name(test_types(), tn, n);

		body = srv.props[ot ? ot->idx : 0];
		len = strlen(body);
	} else if (srv.served++ == 0 && srv.body[srv.op]) {
		body = (const char *)srv.body[srv.op];
		len = srv.len[srv.op];
	}
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n", len);
	/* One write: a second small one would wait out Nagle and a delayed ACK. */
	copy = g_malloc(strlen(head) + len + 1);
	memcpy(copy, head, strlen(head));
	if (len)
		memcpy(copy + strlen(head), body, len);
	pthread_mutex_unlock(&srv.lock);
	write_all(fd, copy, strlen(head) + len);
	g_free(copy);
}

/* One connection: HTTP/1.1 requests with Content-Length bodies, kept alive. */
static void *conn_main(void *p)
{
	int fd = (int)(intptr_t)p;
	GString *in = g_string_new(NULL);
	char buf[65536];

	for (;;) {
		char *end = strstr(in->str, "\r\n\r\n"), *cl, path[512] = "";
		size_t need, hlen;
		ssize_t r;

		if (!end) {
			r = read(fd, buf, sizeof(buf));
			if (r <= 0)
				break;
			g_string_append_len(in, buf, r);
			continue;
		}
		hlen = (size_t)(end - in->str) + 4;
		need = 0;
		for (cl = in->str; (cl = strcasestr(cl, "\r\ncontent-length:")) && cl < end; cl++)
			need = strtoul(cl + 17, NULL, 10);
		/* curl waits a second for this before sending a large body */
		cl = strcasestr(in->str, "\r\nexpect: 100-continue");
		if (cl && cl < end && in->len < hlen + need &&
		    !write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			break;
		while (in->len < hlen + need) {
			r = read(fd, buf, sizeof(buf));
			if (r <= 0)
				goto out;
			g_string_append_len(in, buf, r);
		}
		sscanf(in->str, "%*s %511s", path);
		respond(fd, path);
		g_string_erase(in, 0, (gssize)(hlen + need));
	}
out:
	g_string_free(in, TRUE);
	close(fd);
	return NULL;
}

static void *accept_main(void *p)
{
	int lfd = (int)(intptr_t)p, one = 1;

	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t th;

		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&th, NULL, conn_main, (void *)(intptr_t)fd) == 0)
			pthread_detach(th);
		else
			close(fd);
	}
	return NULL;
}

static int server_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	pthread_t th;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) ||
	    pthread_create(&th, NULL, accept_main, (void *)(intptr_t)lfd))
		abort();
	pthread_detach(th);
	return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const files[TY_COUNT] = { "contacts_props.json", "contacts_props.json",
						     "deals_props.json", "tickets_props.json" };
	struct hs_client_opts o = { 0 };
	const char *why = NULL;
	char url[64];

	(void)argc;
	(void)argv;
	fuzz_init();
	for (int t = 0; t < TY_COUNT; t++) {
		json_object *p = fuzz_golden(files[t]);

		srv.props[t] = g_strdup(json_object_to_json_string(p));
		json_object_put(p);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", server_start());
	o.api_url = url;
	o.token = "fuzz-token";
	o.rate_max = 100000;     /* the most ratelimit.c takes; more means its default */
	o.rate_interval_ms = 1000;
	o.search_per_sec = 100000;
	o.search_interval_ms = 1000;
	o.transfer_timeout_ms = 5000;
	if (hs_client_new(&o, &hc, &why) != 0) {
		fprintf(stderr, "fuzz_cache: client: %s\n", why ? why : "?");
		abort();
	}
	return 0;
}

/* ------------------------------------------------------------ the operations */

static void begin(int op)
{
	pthread_mutex_lock(&srv.lock);
	srv.op = op;
	srv.served = 0;
	pthread_mutex_unlock(&srv.lock);
}

static int64_t deadline(void)
{
	return hs_now_ms() + 4000;
}

static void check_rc(const char *what, int rc, bool end_ok)
{
	FUZZ_CHECK(rc == 0 || (end_ok && rc == 1) || (rc < 0 && rc > -4096), "%s: %d", what, rc);
}

static void check_text(const char *what, const char *text, size_t len, bool record)
{
	json_object *o;
	bool ok;

	FUZZ_CHECK(strlen(text) == len && len >= 2 && text[len - 1] == '\n', "%s: bad text", what);
	if (record)
		FUZZ_CHECK(!strcmp(text + len - 2, "}\n"), "%s does not end in }\\n", what);
	o = fuzz_json(text, len, 0, &ok);
	FUZZ_CHECK(ok, "%s does not parse:\n%s", what, text);
	json_object_put(o);
}

static void check_sorted(const char *what, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(ids[i] > 0 && ids[i] <= RECORD_ID_MAX, "%s: id %" G_GUINT64_FORMAT, what, ids[i]);
		FUZZ_CHECK(i == 0 || ids[i - 1] <= ids[i], "%s not sorted", what);
	}
}

static void record_file(struct cache *c, const struct objtype *t, uint64_t id)
{
	char *text = NULL;
	size_t len = 0;
	int rc = cache_record_text(c, t, id, deadline(), &text, &len);

	check_rc("cache_record_text", rc, false);
	if (rc == 0)
		check_text("record file", text, len, true);
	g_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[OP_COUNT];
	size_t plen[OP_COUNT], np;
	struct cache_opts co = { .ttl_ms = 60000 };
	struct cache *c;
	struct listing *l;
	struct rec_attr a;
	uint64_t id, *ids = NULL;
	char *text = NULL;
	size_t n = 0, len = 0;
	const struct objtype *t, *u;
	int rc;

	if (size < 1)
		return 0;
	t = ty(data[0] & 3);
	u = ty((data[0] >> 2) & 3);
	np = fuzz_split(data + 1, size - 1, "\n--\n", part, plen, OP_COUNT);
	pthread_mutex_lock(&srv.lock);
	for (int k = 0; k < OP_COUNT; k++) {
		srv.body[k] = part[k % np];
		srv.len[k] = plen[k % np];
	}
	pthread_mutex_unlock(&srv.lock);
	c = cache_new(hc, test_types(), &co, NULL);

	begin(OP_BATCH);
	record_file(c, t, 101);

	begin(OP_LIST);
	l = cache_listing_open(c, t);
	for (size_t i = 0; i < 300; i++) {
		rc = cache_listing_entry(c, l, i, deadline(), &id, &a);
		check_rc("cache_listing_entry", rc, true);
		if (rc)
			break;
		FUZZ_CHECK(id > 0 && id <= RECORD_ID_MAX, "listed id %" G_GUINT64_FORMAT, id);
		if (i < 4) {
			begin(OP_BATCH);
			record_file(c, t, id);
			begin(OP_LIST);
		}
	}
	cache_listing_close(c, l);

	begin(OP_ASSOC);
	rc = cache_assoc_list(c, t, 101, u, deadline(), &ids, &n);
	check_rc("cache_assoc_list", rc, false);
	if (rc == 0)
		check_sorted("associations", ids, n);
	g_free(ids);
	ids = NULL;

	begin(OP_OWNERS);
	rc = cache_owner_ids(c, deadline(), &ids, &n);
	check_rc("cache_owner_ids", rc, false);
	if (rc == 0) {
		check_sorted("owners", ids, n);
		for (size_t i = 0; i < n && i < 4; i++) {
			rc = cache_owner_text(c, ids[i], deadline(), &text, &len);
			FUZZ_CHECK(rc == 0, "owner %" G_GUINT64_FORMAT ": %d", ids[i], rc);
			check_text("owner file", text, len, false);
			g_free(text);
			text = NULL;
		}
	}
	g_free(ids);

	begin(OP_PIPES);
	rc = cache_pipelines_text(c, t, deadline(), &text, &len);
	check_rc("cache_pipelines_text", rc, false);
	if (rc == 0)
		check_text("pipelines file", text, len, false);
	g_free(text);

	begin(OP_SEARCH);
	rc = cache_refresh(c, t, RL_PRIO_USER, deadline());
	check_rc("cache_refresh", rc, false);

	cache_free(c);
	return 0;
}
