/* cli.c - hubfs status, hubfs sync, --help and --version.
 *
 * `hubfs sync MNT` writes "sync" to MNT/.hubfs/ctl from a second thread (the
 * write returns when the queue is empty) while the first one reads
 * MNT/.hubfs/status.json every half second and shows how far it got: one line
 * redrawn in place on a terminal, plain lines (one per change, at most one a
 * second) otherwise; once the write returns, it waits for a status.json
 * snapshot taken after that, so that its last line and a `hubfs status` run
 * next show the queue as the sync left it. `hubfs status MNT` prints a
 * summary of status.json, `--json` the file itself, `--watch` the summary
 * again every few seconds.
 */
#include "fs/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <glib.h>
#include <json-c/json.h>

#include "fs/hubfs.h"
#include "hubfs_config.h"

#define SYNC_POLL_MS 500     /* status.json is a snapshot of at most 1 s */
#define RATE_WINDOW_MS 15000 /* the landing rate is taken over this much */
#define WATCH_DEFAULT_S 2
#define FRESH_WAIT_MS 3000   /* longest wait for a snapshot newer than a sync */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hubfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (hubfs --help lists the commands and options)\n", stderr);
	return CLI_USAGE;
}

/* --- status.json ------------------------------------------------------------ */

/* Parse MNT/.hubfs/status.json into *out. 0, or -1 after printing why (as
 * "hubfs CMD: …"). */
static int status_read(const char *cmd, const char *mnt, json_object **out, char **text_out)
{
	g_autofree char *path = g_build_filename(mnt, ".hubfs", "status.json", NULL);
	char *text = NULL;
	GError *err = NULL;

	*out = NULL;
	if (!g_file_get_contents(path, &text, NULL, &err)) {
		fprintf(stderr, "hubfs %s: %s is not a mounted hubfs (%s)\n", cmd, mnt, err->message);
		g_error_free(err);
		return -1;
	}
	*out = json_tokener_parse(text);
	if (!*out || !json_object_is_type(*out, json_type_object)) {
		fprintf(stderr, "hubfs %s: %s is not JSON\n", cmd, path);
		json_object_put(*out);
		*out = NULL;
		g_free(text);
		return -1;
	}
	if (text_out)
		*text_out = text;
	else
		g_free(text);
	return 0;
}

/* o.a.b (b may be NULL), or NULL. */
static json_object *jget(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, a, &v))
		return NULL;
	if (b && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return v;
}

static int64_t jint(json_object *o, const char *a, const char *b)
{
	return json_object_get_int64(jget(o, a, b));
}

static const char *jstr(json_object *o, const char *a, const char *b)
{
	json_object *v = jget(o, a, b);

	return v ? json_object_get_string(v) : "?";
}

/* status.json is a snapshot that lives for a second (and the kernel keeps its
 * attributes as long). Wait, at most FRESH_WAIT_MS, until the one served was
 * taken after now: read next, and by whoever reads it within its second
 * (`hubfs sync && hubfs status`), it shows the state as of now, not the one
 * a poll left a moment before. */
static void status_wait_fresh(const char *mnt)
{
	g_autofree char *path = g_build_filename(mnt, ".hubfs", "status.json", NULL);
	int64_t end = mono_ms() + FRESH_WAIT_MS;
	struct timespec now;
	struct stat st;

	clock_gettime(CLOCK_REALTIME, &now);
	while (stat(path, &st) == 0 && mono_ms() < end &&
	       (st.st_mtim.tv_sec < now.tv_sec ||
		(st.st_mtim.tv_sec == now.tv_sec && st.st_mtim.tv_nsec <= now.tv_nsec)))
		g_usleep(100 * 1000);
}

static int64_t remaining_of(json_object *o)
{
	return jint(o, "queue", "pending") + jint(o, "queue", "in_flight") + jint(o, "queue", "in_doubt");
}

/* The webhook receiver's requests, rejected by reason, and what the events
 * did; the polling interval while they arrive. */
static void print_webhooks(json_object *o)
{
	json_object *w = jget(o, "webhooks", NULL), *e = jget(o, "events", NULL), *rej;
	bool any = false;

	if (w) {
		printf("webhooks: on %s%s: %s requests, %s deliveries of %s events, last %s\n",
		       jstr(w, "listen", NULL), jstr(w, "path", NULL), jstr(w, "requests", NULL),
		       jstr(w, "deliveries", NULL), jstr(w, "events", NULL),
		       jget(w, "last_delivery", NULL) ? jstr(w, "last_delivery", NULL) : "never");
		printf("  rejected:");
		if (json_object_object_get_ex(w, "rejected", &rej)) {
			json_object_object_foreach(rej, k, n) {
				if (json_object_get_int64(n)) {
					printf(" %s %s", json_object_get_string(n), k);
					any = true;
				}
			}
		}
		printf("%s\n", any ? "" : " none");
	}
	if (e) {
		printf("events: %s received, %s applied, %s duplicates, %s out of order, %s ignored; "
		       "%s records read (%s calls), %s gone, %s pending\n", jstr(e, "received", NULL),
		       jstr(e, "applied", NULL), jstr(e, "duplicates", NULL),
		       jstr(e, "out_of_order", NULL),
		       jstr(e, "ignored_total", NULL), jstr(e, "records_stored", NULL),
		       jstr(e, "calls", NULL), jstr(e, "records_forgotten", NULL),
		       jstr(e, "pending", NULL));
		printf("  polling: every %.0f s%s\n",
		       json_object_get_double(jget(e, "refresh_every_s", NULL)),
		       json_object_get_boolean(jget(e, "polling_backed_off", NULL)) ?
		       " (backed off: deliveries arrive)" : "");
	}
}

/* The team of redis=: connected or degraded, the mounts seen, the shared
 * window's use, who holds which lease, the changes exchanged. */
static void print_team(json_object *t)
{
	json_object *v, *l;
	size_t n;

	if (json_object_get_boolean(jget(t, "degraded", NULL)))
		printf("team: DEGRADED: Redis at %s does not answer; this mount sends at most 1/%s "
		       "of the budget and refreshes on its own until it does\n", jstr(t, "url", NULL),
		       jstr(t, "local_share_mounts", NULL));
	else
		printf("team: connected to %s as %s, budget %s\n", jstr(t, "url", NULL),
		       jstr(t, "mount_id", NULL), jstr(t, "budget", NULL));
	if (json_object_object_get_ex(t, "mounts_seen", &v) && json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		printf("  mounts seen: %zu", n);
		for (size_t i = 0; i < n; i++)
			printf("%s%s", i ? ", " : " (", jstr(json_object_array_get_idx(v, i), "id", NULL));
		printf("%s\n", n ? ")" : "");
	}
	if (jget(t, "window", NULL))
		printf("  shared window: %s of %s used in %s ms (%s in flight), searches %s of %s, "
		       "daily remaining %s\n", jstr(t, "window", "used"), jstr(t, "window", "max"),
		       jstr(t, "window", "interval_ms"), jstr(t, "window", "inflight"),
		       jstr(t, "window", "search_used"), jstr(t, "window", "search_max"),
		       jstr(t, "window", "daily_remaining"));
	if (json_object_object_get_ex(t, "leases", &v) && json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++) {
			l = json_object_array_get_idx(v, i);
			printf("  lease %s: %s%s, %s ms left\n", jstr(l, "name", NULL), jstr(l, "holder", NULL),
			       json_object_get_boolean(jget(l, "ours", NULL)) ? " (this mount)" : "",
			       jstr(l, "ttl_ms", NULL));
		}
	}
	printf("  changes: %s published, %s received, %s applied from others' refreshes; "
	       "%s refreshes left to another mount\n", jstr(t, "published", NULL),
	       jstr(t, "received", NULL), jstr(t, "applied", "refresh"),
	       jstr(t, "refreshes_skipped", NULL));
}

static void print_summary(json_object *o, const char *mnt)
{
	json_object *v, *calls, *types, *q;

	printf("hubfs on %s  portal %s  %s\n", mnt, jstr(o, "portal_id", NULL),
	       json_object_object_get_ex(o, "online", &v) && !json_object_get_boolean(v) ? "OFFLINE" : "online");
	if (jget(o, "rate", NULL))
		printf("rate budget: %s of %s used in the %s ms window, daily remaining %s\n",
		       jstr(o, "rate", "used_in_window"), jstr(o, "rate", "window_max"),
		       jstr(o, "rate", "window_ms"), jstr(o, "rate", "daily_remaining"));
	if (json_object_get_boolean(jget(o, "rate", "search_in_window")))
		printf("  searches count in the 10-second window too (HubSpot refused a search "
		       "for it once)\n");
	if (json_object_object_get_ex(o, "team", &v))
		print_team(v);
	printf("429 responses: %s\n", jstr(o, "http_429", NULL));
	if (json_object_object_get_ex(o, "api_calls", &calls)) {
		printf("API calls:\n");
		json_object_object_foreach(calls, k, n)
			printf("  %6s  %s\n", json_object_get_string(n), k);
	}
	if (jget(o, "cache", NULL))
		printf("cache: %s records, %s bytes, hit rate %.1f%%\n", jstr(o, "cache", "records"),
		       jstr(o, "cache", "bytes"), 100 * json_object_get_double(jget(o, "cache", "hit_rate")));
	if (jget(o, "disk", NULL))
		printf("disk cache: %s (%s records, %s of %s bytes of record text%s)\n",
		       jstr(o, "disk", "path"), jstr(o, "disk", "records"), jstr(o, "disk", "bytes"),
		       jstr(o, "disk", "max_bytes"),
		       json_object_get_boolean(jget(o, "disk", "failed")) ? ", FAILED: not used" : "");
	else if (jget(o, "cache", "persistent"))
		printf("disk cache: none (cache=memory, or it could not be opened)\n");
	if (json_object_object_get_ex(o, "types", &types)) {
		int shown = 0, idle = 0;

		/* the types read so far, and those HubSpot refuses the token; the
		 * others (an account shows dozens) only counted */
		json_object_object_foreach(types, k0, t0) {
			(void)k0;
			shown++;
			idle += jint(t0, "listed", NULL) == 0 && !jget(t0, "denied", NULL) &&
				!json_object_get_boolean(jget(t0, "listing_complete", NULL)) &&
				!json_object_get_boolean(jget(t0, "listing_in_progress", NULL));
		}
		printf("types: %d shown, %d not listed yet\n", shown, idle);
		json_object_object_foreach(types, k, t) {
			int64_t listed = jint(t, "listed", NULL), total = jint(t, "listing_total", NULL);
			bool busy = json_object_get_boolean(jget(t, "listing_in_progress", NULL));

			if (jget(t, "denied", NULL)) {
				printf("  %-10s EACCES: the token lacks %s\n", k, jstr(t, "denied", NULL));
				continue;
			}
			if (listed == 0 && !busy && !json_object_get_boolean(jget(t, "listing_complete", NULL)))
				continue;
			printf("  %-10s listed %" PRId64, k, listed);
			if (json_object_get_boolean(jget(t, "listing_complete", NULL)))
				printf(" (complete)");
			else if (busy && jget(t, "listing_total", NULL) && total > 0)
				printf(" of %" PRId64 " (listing… %d%%)", total,
				       (int)(listed >= total ? 100 : listed * 100 / total));
			else if (busy)
				printf(" (listing…)");
			if (json_object_get_boolean(jget(t, "unconfirmed", NULL)))
				printf(" from disk, stale until refreshed");
			if (jget(t, "catch_up", "way"))
				printf(" (caught up after remount by %s%s: %s calls, %s changes)",
				       jstr(t, "catch_up", "way"),
				       json_object_get_boolean(jget(t, "catch_up", "done")) ? "" : ", running",
				       jstr(t, "catch_up", "calls"), jstr(t, "catch_up", "changes"));
			putchar('\n');
		}
	}
	if (json_object_object_get_ex(o, "auth", &v)) {
		json_object *st = jget(v, "state", NULL), *er = jget(v, "error", NULL);

		if (st && !strcmp(json_object_get_string(st), "refresh_failed"))
			printf("auth: %s, REFRESH FAILED: %s\n"
			       "      (edits stay queued; fix the credentials in the config and send SIGHUP,"
			       " or remount)\n", jstr(v, "mode", NULL), er ? json_object_get_string(er) : "?");
		else
			printf("auth: %s, %s%s%s\n", jstr(v, "mode", NULL), st ? json_object_get_string(st) : "?",
			       jget(v, "expires_in_s", NULL) ? ", token expires in " : "",
			       jget(v, "expires_in_s", NULL) ? jstr(v, "expires_in_s", NULL) : "");
	}
	if (json_object_object_get_ex(o, "queue", &q)) {
		printf("queue: %s pending, %s in flight, %s failed, %s conflict, %s in doubt",
		       jstr(q, "pending", NULL), jstr(q, "in_flight", NULL), jstr(q, "failed", NULL),
		       jstr(q, "conflict", NULL), jstr(q, "in_doubt", NULL));
		if (jget(q, "landed", NULL))
			printf("; %s landed since mount", jstr(q, "landed", NULL));
		if (jget(q, "batch", "kind"))
			printf(" (sending: %s of %s %s)", jstr(q, "batch", "kind"), jstr(q, "batch", "records"),
			       jstr(q, "batch", "type"));
		putchar('\n');
	}
	print_webhooks(o);
}

/* hubfs status [--json | --watch [--interval SEC]] MOUNTPOINT */
static int cmd_status(int argc, char *argv[])
{
	const char *mnt = NULL;
	bool json = false, watch = false;
	long interval = WATCH_DEFAULT_S;
	int rc = CLI_OK;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--watch")) {
			watch = true;
		} else if (!strcmp(a, "--interval") || !strncmp(a, "--interval=", 11)) {
			const char *v = a[10] == '=' ? a + 11 : i + 1 < argc ? argv[++i] : "";
			char *end;

			interval = strtol(v, &end, 10);
			if (!*v || *end || interval < 1 || interval > 3600)
				return usage_error("status: --interval takes whole seconds, 1 to 3600");
		} else if (a[0] == '-' && a[1]) {
			return usage_error("status: unknown option %s", a);
		} else if (!mnt) {
			mnt = a;
		} else {
			return usage_error("status: one MOUNTPOINT, not %s and %s", mnt, a);
		}
	}
	if (!mnt)
		return usage_error("usage: hubfs status [--json | --watch [--interval SEC]] MOUNTPOINT");
	if (json && watch)
		return usage_error("status: --json and --watch do not go together");
	for (;;) {
		json_object *o = NULL;
		char *text = NULL;

		if (status_read("status", mnt, &o, &text) != 0) {
			rc = CLI_NO_MOUNT;
			break;
		}
		if (json) {
			fputs(text, stdout);
		} else {
			if (watch && isatty(STDOUT_FILENO))
				printf("\033[H\033[2J"); /* home, clear: redraw in place */
			if (watch)
				printf("every %ld s: hubfs status %s  (Ctrl-C stops)\n\n", interval, mnt);
			print_summary(o, mnt);
		}
		json_object_put(o);
		g_free(text);
		if (!watch)
			break;
		if (!isatty(STDOUT_FILENO))
			putchar('\n');
		fflush(stdout);
		sleep((unsigned)interval);
	}
	fflush(stdout);
	return rc;
}

/* --- sync ----------------------------------------------------------------------- */

int64_t cli_eta_s(int64_t remaining, double per_s)
{
	if (remaining <= 0)
		return 0;
	if (per_s <= 0)
		return -1;
	return (int64_t)((double)remaining / per_s + 0.999);
}

char *cli_progress_line(const struct cli_progress *p, char *buf, size_t size, int width)
{
	int64_t total = p->landed + p->remaining, eta = cli_eta_s(p->remaining, p->per_s);
	GString *g = g_string_new(NULL);

	g_string_append_printf(g, "hubfs sync: %" PRId64 "/%" PRId64 " landed (%d%%)", p->landed, total,
			       total > 0 ? (int)(p->landed * 100 / total) : 100);
	if (p->remaining > 0) {
		if (eta >= 0)
			g_string_append_printf(g, ", ETA %" PRId64 ":%02d", eta / 60, (int)(eta % 60));
		else
			g_string_append(g, ", ETA --:--");
	}
	if (p->per_s > 0)
		g_string_append_printf(g, ", %.0f/s", p->per_s < 1 ? 1 : p->per_s);
	if (p->batch_kind && p->batch_records > 0)
		g_string_append_printf(g, ", sending %s of %" PRId64 " %s", p->batch_kind, p->batch_records,
				       p->batch_type ? p->batch_type : "records");
	if (p->offline)
		g_string_append(g, ", HubSpot not answering (retrying)");
	else if (p->rate_waiting)
		g_string_append_printf(g, ", waiting for the rate limit (%" PRId64 " waits)", p->waits);
	else if (p->waits > 0)
		g_string_append_printf(g, ", %" PRId64 " rate-limit waits", p->waits);
	if (width > 0 && g->len > (size_t)width - 1)
		g_string_truncate(g, (size_t)width - 1);
	snprintf(buf, size, "%s", g->str);
	g_string_free(g, TRUE);
	return buf;
}

struct sync_job {
	char *ctl;
	bool tty;
	int done_fd;   /* written once the ctl write returned */
	int err;       /* 0, or the errno of the write (EIO: something did not land) */
};

/* The thread that writes "sync" to ctl until it is answered for good. */
static void *sync_writer(void *arg)
{
	struct sync_job *j = arg;

	for (;;) {
		int fd = open(j->ctl, O_WRONLY | O_CLOEXEC);
		ssize_t n;

		if (fd < 0) {
			j->err = errno;
			break;
		}
		n = write(fd, "sync\n", 5);
		j->err = n < 0 ? errno : 0;
		if (close(fd) != 0 && !j->err)
			j->err = errno;
		if (j->err != EAGAIN)
			break;
		/* op_timeout passed with changes still being sent: ask again. */
		if (!j->tty)
			fprintf(stderr, "hubfs sync: still sending, waiting…\n");
	}
	if (write(j->done_fd, "", 1) < 0) {
		/* the reader then notices at its next poll timeout */
	}
	return NULL;
}

/* Landing rate over the last RATE_WINDOW_MS, from (ms, landed) samples. */
struct rate_samples {
	int64_t t[64], n[64];
	unsigned len;
};

static double rate_add(struct rate_samples *r, int64_t t, int64_t n)
{
	unsigned first = 0;

	if (r->len == G_N_ELEMENTS(r->t)) {
		memmove(r->t, r->t + 1, sizeof(r->t[0]) * (r->len - 1));
		memmove(r->n, r->n + 1, sizeof(r->n[0]) * (r->len - 1));
		r->len--;
	}
	r->t[r->len] = t;
	r->n[r->len] = n;
	r->len++;
	while (first + 1 < r->len && t - r->t[first] > RATE_WINDOW_MS)
		first++;
	if (r->n[r->len - 1] <= r->n[first] || t - r->t[first] < 900)
		return r->n[r->len - 1] > r->n[first] ? 0.0 : -1.0;
	return (double)(r->n[r->len - 1] - r->n[first]) * 1000.0 / (double)(t - r->t[first]);
}

static int term_width(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* hubfs sync MOUNTPOINT */
static int cmd_sync(int argc, char *argv[])
{
	g_autofree char *queue = NULL;
	struct sync_job job = { 0 };
	struct rate_samples rs = { 0 };
	struct cli_progress last = { 0 };
	json_object *o = NULL;
	int64_t landed0, waits0, total = 0, t0 = mono_ms(), printed_ms = 0;
	char line[512], printed[512] = "", kind[32], type[64];
	int pipefd[2], rc = CLI_OK;
	pthread_t thr;
	const char *mnt;

	if (argc != 3 || argv[2][0] == '-')
		return usage_error("usage: hubfs sync MOUNTPOINT");
	mnt = argv[2];
	if (status_read("sync", mnt, &o, NULL) != 0)
		return CLI_NO_MOUNT;
	landed0 = jint(o, "queue", "landed");
	waits0 = jint(o, "rate", "waits");
	last.remaining = remaining_of(o);
	json_object_put(o);

	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		fprintf(stderr, "hubfs sync: pipe: %s\n", strerror(errno));
		return CLI_NO_MOUNT;
	}
	job.ctl = g_build_filename(mnt, ".hubfs", "ctl", NULL);
	job.tty = isatty(STDOUT_FILENO);
	job.done_fd = pipefd[1];
	if (pthread_create(&thr, NULL, sync_writer, &job) != 0) {
		fprintf(stderr, "hubfs sync: cannot start a thread\n");
		rc = CLI_NO_MOUNT;
		goto out;
	}
	for (bool done = false; !done;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		json_object *b;
		int64_t now;

		done = poll(&pfd, 1, SYNC_POLL_MS) > 0;
		if (done)
			status_wait_fresh(mnt);
		now = mono_ms();
		if (status_read("sync", mnt, &o, NULL) != 0)
			continue; /* gone: the writer fails too and says so below */
		last.landed = jint(o, "queue", "landed") - landed0;
		if (last.landed < 0) /* remounted meanwhile */
			last.landed = 0;
		last.remaining = remaining_of(o);
		b = jget(o, "queue", "batch");
		last.batch_kind = last.batch_type = NULL;
		last.batch_records = 0;
		if (b && json_object_is_type(b, json_type_object)) {
			snprintf(kind, sizeof(kind), "%s", jstr(b, "kind", NULL));
			snprintf(type, sizeof(type), "%s", jstr(b, "type", NULL));
			last.batch_kind = kind;
			last.batch_type = type;
			last.batch_records = jint(b, "records", NULL);
		}
		last.waits = jint(o, "rate", "waits") - waits0;
		last.rate_waiting = jint(o, "rate", "left_in_window") == 0 || jint(o, "rate", "paused_ms") > 0;
		last.offline = jget(o, "online", NULL) && !json_object_get_boolean(jget(o, "online", NULL));
		last.per_s = rate_add(&rs, now - t0, last.landed);
		json_object_put(o);
		total = MAX(total, last.landed + last.remaining);
		if (done && job.err == 0) { /* the snapshot is old if the wait gave up */
			last.landed = total;
			last.remaining = 0;
			last.batch_kind = NULL;
		}
		if (job.tty) {
			cli_progress_line(&last, line, sizeof(line), term_width());
			printf("\r%s\033[K", line);
			fflush(stdout);
		} else {
			cli_progress_line(&last, line, sizeof(line), 0);
			/* A line when something changed, at most one a second. */
			if ((last.landed || last.remaining) && strcmp(line, printed) &&
			    (now - printed_ms >= 1000 || done)) {
				printf("%s\n", line);
				fflush(stdout);
				snprintf(printed, sizeof(printed), "%s", line);
				printed_ms = now;
			}
		}
	}
	pthread_join(thr, NULL);
	if (job.tty)
		putchar('\n');
	if (job.err == 0) {
		printf("hubfs sync: every queued change landed (%" PRId64 " in %.1f s)\n", last.landed,
		       (double)(mono_ms() - t0) / 1000);
	} else if (job.err == EIO) {
		g_autofree char *q = NULL;

		fprintf(stderr, "hubfs sync: %s; not landed:\n", strerror(job.err));
		queue = g_build_filename(mnt, ".hubfs", "queue", NULL);
		if (g_file_get_contents(queue, &q, NULL, NULL))
			fputs(q, stderr);
		fprintf(stderr, "(details in %s/.hubfs/errors.log; `echo retry > %s/.hubfs/ctl` sends "
			"them again)\n", mnt, mnt);
		rc = CLI_NOT_LANDED;
	} else {
		fprintf(stderr, "hubfs sync: %s: %s\n", job.ctl, strerror(job.err));
		rc = CLI_NO_MOUNT;
	}
	fflush(stdout);
out:
	close(pipefd[0]);
	close(pipefd[1]);
	g_free(job.ctl);
	return rc;
}

/* --- --help, --version, dispatch -------------------------------------------------------- */

static void print_version(void)
{
	printf("hubfs %s\n", HUBFS_VERSION);
	printf("FUSE library version %s\n", fuse_pkgversion());
#ifdef HUBFS_HAVE_LIBSYSTEMD
	printf("systemd readiness notification (sd_notify): yes\n");
#else
	printf("systemd readiness notification (sd_notify): no (built without libsystemd)\n");
#endif
}

int cli_main(int argc, char *argv[])
{
	if (argc < 2) {
		hubfs_opts_usage();
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc, argv);
	if (!strcmp(argv[1], "sync"))
		return cmd_sync(argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			i++; /* an option's value, whatever it says */
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			hubfs_opts_usage();
			fuse_cmdline_help();
			return CLI_OK;
		}
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
			print_version();
			return CLI_OK;
		}
	}
	return -1;
}
