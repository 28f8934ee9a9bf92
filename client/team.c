/* team.c - a mount's membership in a team through Redis (see team.h).
 *
 * Two connections per mount, both hiredis in blocking mode with socket
 * timeouts: `cmd` for the scripts (team_lua.h) and `sub`, subscribed to the
 * change feed. A background thread owns `sub`, reconnects both with backoff
 * and heartbeats; callers share `cmd` under t->lock.
 *
 * Lock rules: t->lock guards `cmd` and the counters and state marked below.
 * A caller takes it with the deadline of its call (pthread_mutex_clocklock),
 * so a caller stuck behind a slow command gives up in time instead of
 * queueing; the socket timeout of every command is what is left of the same
 * deadline. A command that fails at the socket level (timeout, reset) leaves
 * the connection in an unknown state: it is freed at once, under the lock,
 * and the background thread is woken to reconnect. Connecting happens outside
 * the lock. on_change is called without the lock.
 */
#include "client/team.h"
#include "client/team_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <hiredis/hiredis.h>

#include "client/hubspot.h" /* hs_json_parse */
#include "client/log.h"
#include "client/team_lua.h"
#include "client/team_msg.h"

#define DEFAULT_MAX 100
#define DEFAULT_WINDOW_MS 10000
#define DEFAULT_SEARCH_PER_SEC 5
#define DEFAULT_SEARCH_MS 1000
#define DEFAULT_CMD_TIMEOUT_MS 200
#define DEFAULT_HEARTBEAT_MS 2000
#define DEFAULT_INFLIGHT_TTL_MS 60000
#define DEFAULT_DAILY_PROBE_MS (5 * 60 * 1000)
#define DEFAULT_PORT 6379
#define BACKOFF_FIRST_MS 100
#define BACKOFF_CAP_MS 2000
#define MAX_DB 1000000
#define MAX_ARGS 24

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(int64_t ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* --- URL ------------------------------------------------------------- */

static void addr_clear(struct team_addr *a)
{
	g_free(a->host);
	g_free(a->path);
	g_free(a->user);
	memset(a, 0, sizeof(*a));
}

static bool parse_db(const char *s, int *db)
{
	char *end;
	long v;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > MAX_DB)
		return false;
	*db = (int)v;
	return true;
}

/* Read a Redis URL into *a. Returns 0 or -errno with a static reason. */
static int url_parse(const char *url, struct team_addr *a, const char **why)
{
	GUri *u = NULL;
	const char *scheme, *path, *query;
	int rc = -EINVAL;

	memset(a, 0, sizeof(*a));
	if (!url || !*url) {
		*why = "no Redis URL";
		return -EINVAL;
	}
	if (g_ascii_strncasecmp(url, "rediss:", 7) == 0) {
		*why = "rediss:// (TLS) is not supported: this hiredis (0.14) has no TLS; use "
		       "redis:// on a trusted network, or unix:/path";
		return -EPROTONOSUPPORT;
	}
	u = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_NON_DNS, NULL);
	if (!u) {
		*why = "the Redis URL does not parse (redis://host:port/db or unix:/path)";
		return -EINVAL;
	}
	scheme = g_uri_get_scheme(u);
	path = g_uri_get_path(u);
	query = g_uri_get_query(u);
	if (g_uri_get_password(u)) {
		*why = "a password in the Redis URL would show in the process list: "
		       "use redis_password_file=";
		goto out;
	}
	if (g_uri_get_fragment(u)) {
		*why = "the Redis URL has a #fragment";
		goto out;
	}
	if (g_ascii_strcasecmp(scheme, "unix") == 0) {
		if ((g_uri_get_host(u) && *g_uri_get_host(u)) || g_uri_get_user(u) ||
		    g_uri_get_port(u) != -1) {
			*why = "a unix: Redis URL takes a path only (unix:/path/redis.sock?db=N)";
			goto out;
		}
		if (!path || path[0] != '/' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			*why = "a unix: Redis URL needs an absolute socket path (at most 107 bytes)";
			goto out;
		}
		if (query && (strncmp(query, "db=", 3) != 0 || !parse_db(query + 3, &a->db))) {
			*why = "a unix: Redis URL takes only ?db=N (0..1000000)";
			goto out;
		}
		a->path = g_strdup(path);
	} else if (g_ascii_strcasecmp(scheme, "redis") == 0) {
		const char *host = g_uri_get_host(u);

		if (!host || !*host) {
			*why = "the Redis URL has no host (redis://host:port/db)";
			goto out;
		}
		if (query) {
			*why = "a redis:// URL takes no ?parameters (the database is the path: redis://host/N)";
			goto out;
		}
		if (path && *path && strcmp(path, "/") != 0 && !parse_db(path + 1, &a->db)) {
			*why = "the Redis URL's path must be a database number (redis://host:port/N)";
			goto out;
		}
		a->host = g_strdup(host);
		a->port = g_uri_get_port(u) > 0 ? g_uri_get_port(u) : DEFAULT_PORT;
		if (g_uri_get_user(u) && *g_uri_get_user(u))
			a->user = g_strdup(g_uri_get_user(u));
	} else {
		*why = "the Redis URL must start with redis:// or unix:";
		goto out;
	}
	rc = 0;
out:
	g_uri_unref(u);
	if (rc < 0)
		addr_clear(a);
	return rc;
}

int team_url_check(const char *url, const char **why)
{
	struct team_addr a;
	int rc = url_parse(url, &a, why);

	if (rc == 0)
		addr_clear(&a);
	return rc;
}

void team_cred_hash(const char *credential, char out[TEAM_CRED_HASH_LEN + 1])
{
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);

	g_checksum_update(c, (const guchar *)"hubfs-team:", 11);
	g_checksum_update(c, (const guchar *)credential, (gssize)strlen(credential));
	memcpy(out, g_checksum_get_string(c), TEAM_CRED_HASH_LEN);
	out[TEAM_CRED_HASH_LEN] = '\0';
	g_checksum_free(c);
}

/* --- connections ----------------------------------------------------- */

static void set_error_locked(struct team *t, const char *what, const char *detail)
{
	snprintf(t->last_error, sizeof(t->last_error), "%s%s%s", what, detail ? ": " : "",
		 detail ? detail : "");
	t->errors++;
}

static void set_error(struct team *t, const char *what, const char *detail)
{
	pthread_mutex_lock(&t->lock);
	set_error_locked(t, what, detail);
	pthread_mutex_unlock(&t->lock);
}

static void wake_thread(struct team *t)
{
	ssize_t n = write(t->wake[1], "w", 1);

	(void)n; /* a full pipe already wakes it */
}

/* Send one command on a connection being set up, within the deadline. */
static redisReply *setup_command(redisContext *c, int64_t deadline, int argc, const char **argv)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return NULL;
	redisSetTimeout(c, tv_ms(left));
	return redisCommandArgv(c, argc, argv, NULL);
}

/* Open a connection, authenticate, and for the command connection select the
 * database. Returns 0 and *out, -EACCES (password refused or missing),
 * -EINVAL (database refused), -ENOMEM, or -EAGAIN (unreachable, slow); the
 * reason goes to last_error. Takes no lock but for set_error. */
static int connect_ctx(struct team *t, bool subscriber, redisContext **out)
{
	int64_t deadline = now_ms() + t->cmd_timeout_ms;
	struct timeval tv = tv_ms(t->cmd_timeout_ms);
	redisContext *c;
	redisReply *r = NULL;
	const char *what = "connect";
	int rc = -EAGAIN;

	*out = NULL;
	if (t->addr.path)
		c = redisConnectUnixWithTimeout(t->addr.path, tv);
	else
		c = redisConnectWithTimeout(t->addr.host, t->addr.port, tv);
	if (!c)
		return -ENOMEM;
	if (c->err)
		goto fail_io;
	if (!t->addr.path)
		redisEnableKeepAlive(c);
	if (t->password) {
		const char *argv[3] = { "AUTH" };
		int argc = 1;

		if (t->addr.user)
			argv[argc++] = t->addr.user;
		argv[argc++] = t->password;
		what = "AUTH";
		r = setup_command(c, deadline, argc, argv);
		if (!r)
			goto fail_io;
		if (r->type == REDIS_REPLY_ERROR) {
			/* A server without a password answers AUTH with an error
			 * but takes commands: go on (warned once below). */
			if (!strstr(r->str, "without any password configured") &&
			    !strstr(r->str, "no password is set")) {
				set_error(t, "Redis refused the password", r->str);
				rc = -EACCES;
				goto fail;
			}
			if (!atomic_exchange(&t->warned_nopass, true))
				log_warn("team: Redis has no password set; redis_password_file= is not needed");
		}
		freeReplyObject(r);
		r = NULL;
	}
	if (!subscriber && t->addr.db != 0) {
		char db[16];
		const char *argv[2] = { "SELECT", db };

		snprintf(db, sizeof(db), "%d", t->addr.db);
		what = "SELECT";
		r = setup_command(c, deadline, 2, argv);
		if (!r)
			goto fail_io;
		if (r->type == REDIS_REPLY_ERROR) {
			rc = strncmp(r->str, "NOAUTH", 6) == 0 ? -EACCES : -EINVAL;
			set_error(t, rc == -EACCES ? "Redis wants a password (redis_password_file=)" :
				  "Redis refused the database number", r->str);
			goto fail;
		}
		freeReplyObject(r);
		r = NULL;
	}
	{
		const char *argv[2] = { "SUBSCRIBE", t->channel };

		what = subscriber ? "SUBSCRIBE" : "PING";
		if (subscriber)
			r = setup_command(c, deadline, 2, argv);
		else
			r = setup_command(c, deadline, 1, (const char *[]){ "PING" });
		if (!r)
			goto fail_io;
		if (r->type == REDIS_REPLY_ERROR) {
			rc = strncmp(r->str, "NOAUTH", 6) == 0 ? -EACCES : -EAGAIN;
			set_error(t, rc == -EACCES ? "Redis wants a password (redis_password_file=)" :
				  what, r->str);
			goto fail;
		}
		freeReplyObject(r);
	}
	redisSetTimeout(c, tv);
	*out = c;
	return 0;
fail_io:
	set_error(t, what, c->err ? c->errstr : "timed out");
fail:
	freeReplyObject(r);
	redisFree(c);
	return rc;
}

/* Free a broken command connection. Caller holds t->lock. */
static void drop_cmd_locked(struct team *t, const char *what, const char *detail)
{
	/* detail may point into t->cmd: use it before the free */
	set_error_locked(t, what, detail);
	if (t->was_up)
		log_warn("team: Redis unreachable (%s%s%s); using this mount's share of the budget",
			 what, detail ? ": " : "", detail ? detail : "");
	t->was_up = false;
	redisFree(t->cmd);
	t->cmd = NULL;
	wake_thread(t);
}

/* One command on cmd within deadline. NULL if the connection is down, the
 * deadline has passed (nothing sent) or the command failed at the socket
 * level (connection dropped). Caller holds t->lock. */
static redisReply *command_locked(struct team *t, int64_t deadline, int argc, const char **argv,
				  const size_t *lens)
{
	int64_t left = deadline - now_ms();
	redisReply *r;

	if (!t->cmd || left <= 0)
		return NULL;
	redisSetTimeout(t->cmd, tv_ms(left));
	r = redisCommandArgv(t->cmd, argc, argv, lens);
	if (!r)
		drop_cmd_locked(t, "command", t->cmd->err ? t->cmd->errstr : "failed");
	return r;
}

/* EVALSHA script s with keys and args, loading it on NOSCRIPT. Returns the
 * reply (not an error reply) or NULL. Caller holds t->lock. */
static redisReply *script_locked(struct team *t, int64_t deadline, enum team_script s, int nkeys,
				 const char *const *keys, int nargs, const char *const *args)
{
	const char *argv[MAX_ARGS];
	char nk[12];
	int argc = 0;
	redisReply *r;

	if (3 + nkeys + nargs > MAX_ARGS)
		return NULL;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVALSHA";
	argv[argc++] = t->sha[s];
	argv[argc++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	r = command_locked(t, deadline, argc, argv, NULL);
	if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* A restarted or flushed server: load it and run it again. */
		const char *load[3] = { "SCRIPT", "LOAD", team_lua_text(s) };
		redisReply *lr;

		freeReplyObject(r);
		r = NULL;
		lr = command_locked(t, deadline, 3, load, NULL);
		if (!lr)
			return NULL;
		if (lr->type != REDIS_REPLY_STRING || strcmp(lr->str, t->sha[s]) != 0) {
			set_error_locked(t, "SCRIPT LOAD", lr->type == REDIS_REPLY_ERROR ? lr->str :
					 "unexpected answer");
			freeReplyObject(lr);
			return NULL;
		}
		freeReplyObject(lr);
		t->script_loads++;
		r = command_locked(t, deadline, argc, argv, NULL);
	}
	if (r && r->type == REDIS_REPLY_ERROR) {
		set_error_locked(t, "script", r->str);
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

/* Take t->lock by deadline (CLOCK_MONOTONIC ms). 0 or -EAGAIN.
 * pthread_mutex_timedlock() takes CLOCK_REALTIME, so the deadline is moved
 * to that clock; a clock step in those few ms only lengthens or shortens
 * one wait. (pthread_mutex_clocklock() would avoid that, but the thread
 * sanitizer and valgrind's tools do not know it.) */
static int lock_until(struct team *t, int64_t deadline)
{
	struct timespec ts;
	int64_t left = deadline - now_ms();

	if (left < 0)
		left = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_mutex_timedlock(&t->lock, &ts) == 0 ? 0 : -EAGAIN;
}

/* Run script s within one command timeout. */
redisReply *team_run(struct team *t, enum team_script s, int nkeys, const char *const *keys,
		       int nargs, const char *const *args)
{
	int64_t deadline = now_ms() + t->cmd_timeout_ms;
	redisReply *r;

	if (lock_until(t, deadline) < 0)
		return NULL;
	r = script_locked(t, deadline, s, nkeys, keys, nargs, args);
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* Run a budget script: keys cfg, win, srch; the common ARGV[1..6] first. */
redisReply *team_run_budget(struct team *t, enum team_script s, int nargs, const char *const *args)
{
	const char *keys[3] = { t->k_cfg, t->k_win, t->k_srch };
	const char *all[6 + 8];

	if (nargs > 8)
		return NULL;
	for (int i = 0; i < 6; i++)
		all[i] = t->defaults[i];
	for (int i = 0; i < nargs; i++)
		all[6 + i] = args[i];
	return team_run(t, s, 3, keys, 6 + nargs, all);
}

bool team_int_reply(const redisReply *r, long long *v)
{
	if (!r || r->type != REDIS_REPLY_INTEGER)
		return false;
	*v = r->integer;
	return true;
}

/* --- membership ------------------------------------------------------- */

/* Heartbeat (or leave): refresh this mount's entry, learn the mount count. */
static void heartbeat(struct team *t, bool leave)
{
	const char *keys[1] = { t->k_mounts };
	const char *args[3] = { t->mount_id, t->hb_arg, leave ? "1" : "0" };
	redisReply *r = team_run(t, TEAM_LUA_HEARTBEAT, 1, keys, 3, args);
	long long n;

	if (!leave && team_int_reply(r, &n) && n > 0)
		atomic_store(&t->mounts, n > INT32_MAX ? INT32_MAX : (int)n);
	freeReplyObject(r);
}

bool team_connected(struct team *t)
{
	bool up;

	pthread_mutex_lock(&t->lock);
	up = t->cmd != NULL;
	pthread_mutex_unlock(&t->lock);
	return up;
}

int team_mounts(struct team *t)
{
	return atomic_load(&t->mounts);
}

int64_t team_cmd_timeout_ms(struct team *t)
{
	return t->cmd_timeout_ms;
}

int team_local_share(struct team *t, int max)
{
	int n = team_mounts(t);
	int share = n > 1 ? max / n : max;

	return share < 1 ? 1 : share;
}

/* --- the change feed ---------------------------------------------------- */

struct deliver_ctx {
	struct team *t;
	uint64_t received, own;
};

static void deliver_one(void *ud, const struct team_change *ch)
{
	struct deliver_ctx *d = ud;

	if (strcmp(ch->origin, d->t->mount_id) == 0) {
		d->own++;
		return;
	}
	d->received++;
	if (d->t->on_change)
		d->t->on_change(d->t->ud, ch);
}

static void handle_message(struct team *t, const redisReply *r)
{
	struct deliver_ctx d = { .t = t };
	size_t skipped = 0;
	int n;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return; /* subscribe confirmations, pongs */
	n = team_msg_decode(r->element[2]->str, r->element[2]->len, deliver_one, &d, &skipped);
	pthread_mutex_lock(&t->lock);
	t->received += d.received;
	if (n < 0)
		t->dropped++;
	t->dropped += skipped;
	pthread_mutex_unlock(&t->lock);
	if (n < 0)
		log_info("team: dropped a change message that is not one (%zu bytes)", r->element[2]->len);
}

int team_publish(struct team *t, const struct team_change *changes, size_t n)
{
	size_t done = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		if (team_change_check(&changes[i]) < 0)
			return -EINVAL;
	while (done < n) {
		size_t k = n - done < TEAM_MSG_MAX_CHANGES ? n - done : TEAM_MSG_MAX_CHANGES;
		const char *argv[3] = { "PUBLISH", t->channel };
		int64_t deadline;
		redisReply *r;
		char *text;

		rc = team_msg_encode(t->mount_id, changes + done, k, &text);
		while (rc == -E2BIG && k > 1) {
			k /= 2;
			rc = team_msg_encode(t->mount_id, changes + done, k, &text);
		}
		if (rc < 0)
			return rc;
		argv[2] = text;
		deadline = now_ms() + t->cmd_timeout_ms;
		if (lock_until(t, deadline) < 0) {
			free(text);
			return -EAGAIN;
		}
		r = command_locked(t, deadline, 3, argv, NULL);
		if (r && r->type == REDIS_REPLY_INTEGER)
			t->published += k;
		else if (r)
			set_error_locked(t, "PUBLISH", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
		pthread_mutex_unlock(&t->lock);
		free(text);
		if (!r || r->type != REDIS_REPLY_INTEGER) {
			freeReplyObject(r);
			return -EAGAIN;
		}
		freeReplyObject(r);
		done += k;
	}
	return 0;
}

/* --- the background thread ---------------------------------------------- */

static int64_t backoff_ms(unsigned fails)
{
	int64_t d = fails >= 5 ? BACKOFF_CAP_MS : (int64_t)BACKOFF_FIRST_MS << fails;

	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	/* half fixed, half jitter: mounts that lost Redis together do not all
	 * come back in the same millisecond */
	return d / 2 + g_random_int_range(0, (gint32)(d / 2) + 1);
}

static void set_subscribed(struct team *t, bool on)
{
	pthread_mutex_lock(&t->lock);
	t->subscribed = on;
	pthread_mutex_unlock(&t->lock);
}

static void drop_sub(struct team *t, const char *why)
{
	set_error(t, "change feed", why);
	redisFree(t->sub);
	t->sub = NULL;
	set_subscribed(t, false);
}

/* Read what the feed has sent. False if the connection broke. */
static bool read_sub(struct team *t, bool *pong)
{
	void *reply;

	if (redisBufferRead(t->sub) != REDIS_OK)
		return false;
	for (;;) {
		if (redisGetReplyFromReader(t->sub, &reply) != REDIS_OK)
			return false;
		if (!reply)
			return true;
		{
			redisReply *r = reply;

			if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
			    r->element[0]->type == REDIS_REPLY_STRING &&
			    strcmp(r->element[0]->str, "pong") == 0)
				*pong = true;
			else
				handle_message(t, r);
		}
		freeReplyObject(reply);
	}
}

/* Ask the feed connection for a pong, so that a server that silently went
 * away (stopped, partitioned) is noticed. False if sending failed. */
static bool ping_sub(struct team *t)
{
	int done = 0;

	if (redisAppendCommand(t->sub, "PING") != REDIS_OK)
		return false;
	while (!done)
		if (redisBufferWrite(t->sub, &done) != REDIS_OK)
			return false;
	return true;
}

static void resync(struct team *t)
{
	struct team_change ch;

	if (!t->on_change)
		return;
	memset(&ch, 0, sizeof(ch));
	ch.kind = TEAM_CHANGE_RESYNC;
	memcpy(ch.origin, t->mount_id, sizeof(ch.origin));
	t->on_change(t->ud, &ch);
}

static void *team_thread(void *arg)
{
	struct team *t = arg;
	int64_t cmd_retry_at = 0, sub_retry_at = 0, next_hb = 0, ping_sent = 0;
	unsigned cmd_fails = 0, sub_fails = 0;
	bool sub_ever = t->sub != NULL;

	while (!atomic_load(&t->stop)) {
		int64_t now = now_ms(), sleep_ms;
		struct pollfd pfd[2];
		bool up = team_connected(t);
		nfds_t nfd = 1;

		if (!up && now >= cmd_retry_at) {
			redisContext *c;

			if (connect_ctx(t, false, &c) == 0) {
				pthread_mutex_lock(&t->lock);
				if (!t->cmd) {
					t->cmd = c;
					c = NULL;
					t->reconnects++;
					t->was_up = true;
					log_notice("team: Redis is back; sharing the team's budget again");
				}
				pthread_mutex_unlock(&t->lock);
				if (c)
					redisFree(c);
				cmd_fails = 0;
				next_hb = now; /* rejoin the mount list at once */
				up = true;
			} else {
				cmd_retry_at = now_ms() + backoff_ms(cmd_fails++);
			}
		}
		if (!t->sub && now >= sub_retry_at) {
			if (connect_ctx(t, true, &t->sub) == 0) {
				set_subscribed(t, true);
				sub_fails = 0;
				ping_sent = 0;
				/* messages published while the feed was down are lost */
				if (sub_ever)
					resync(t);
				sub_ever = true;
			} else {
				sub_retry_at = now_ms() + backoff_ms(sub_fails++);
			}
		}
		now = now_ms();
		if (now >= next_hb) {
			if (up)
				heartbeat(t, false);
			if (t->sub) {
				if (ping_sent && now - ping_sent > t->heartbeat_ms + t->cmd_timeout_ms)
					drop_sub(t, "no answer to PING");
				else if (!ping_sent && !ping_sub(t))
					drop_sub(t, t->sub->errstr);
				else if (!ping_sent)
					ping_sent = now;
				if (!t->sub)
					sub_retry_at = now;
			}
			next_hb = now_ms() + t->heartbeat_ms;
		}
		now = now_ms();
		sleep_ms = next_hb - now;
		if (!team_connected(t) && cmd_retry_at - now < sleep_ms)
			sleep_ms = cmd_retry_at - now;
		if (!t->sub && sub_retry_at - now < sleep_ms)
			sleep_ms = sub_retry_at - now;
		if (sleep_ms < 0)
			sleep_ms = 0;
		pfd[0] = (struct pollfd){ .fd = t->wake[0], .events = POLLIN };
		if (t->sub)
			pfd[nfd++] = (struct pollfd){ .fd = t->sub->fd, .events = POLLIN };
		if (poll(pfd, nfd, (int)(sleep_ms > 60000 ? 60000 : sleep_ms)) < 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			char buf[64];

			while (read(t->wake[0], buf, sizeof(buf)) > 0)
				;
		}
		if (nfd > 1 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			bool pong = false;

			if (!read_sub(t, &pong)) {
				drop_sub(t, t->sub->err ? t->sub->errstr : "closed");
				sub_retry_at = now_ms();
			} else if (pong) {
				ping_sent = 0;
			}
		}
	}
	return NULL;
}

/* --- lifecycle -------------------------------------------------------- */

static bool id_chars_ok(const char *s, size_t max, bool hex)
{
	size_t n = strnlen(s, max);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (hex ? !g_ascii_isxdigit(c) :
			  !(g_ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

static int64_t pos_or(int64_t v, int64_t dflt)
{
	return v > 0 ? v : dflt;
}

int team_new(const struct team_opts *o, struct team **out, const char **why)
{
	struct team *t;
	sigset_t all, old;
	int rc;

	*out = NULL;
	*why = NULL;
	if (!o->mount_id || !id_chars_ok(o->mount_id, TEAM_MOUNT_ID_MAX, false)) {
		*why = "the mount id must be 1..95 of [A-Za-z0-9._:-]";
		return -EINVAL;
	}
	if (!o->cred_hash || !id_chars_ok(o->cred_hash, TEAM_CRED_HASH_MAX, true) ||
	    strlen(o->cred_hash) < 8) {
		*why = "the credential hash must be 8..127 hex digits";
		return -EINVAL;
	}
	if (o->portal_id == 0) {
		*why = "no portal id";
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->wake[0] = t->wake[1] = -1;
	pthread_mutex_init(&t->lock, NULL);
	rc = url_parse(o->url, &t->addr, why);
	if (rc < 0)
		goto fail;
	if (pipe2(t->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		t->wake[0] = t->wake[1] = -1;
		rc = -errno;
		*why = "no pipe";
		goto fail;
	}
	if (o->password && *o->password)
		t->password = g_strdup(o->password);
	if (t->addr.path)
		t->url_shown = t->addr.db ? g_strdup_printf("unix:%s?db=%d", t->addr.path, t->addr.db) :
					    g_strdup_printf("unix:%s", t->addr.path);
	else
		t->url_shown = g_strdup_printf(strchr(t->addr.host, ':') ? "redis://[%s]:%d/%d" :
					       "redis://%s:%d/%d", t->addr.host, t->addr.port,
					       t->addr.db);
	memcpy(t->mount_id, o->mount_id, strlen(o->mount_id) + 1);
	{
		char *p = g_strdup_printf("hubfs:{%" PRIu64 ":%s}:", o->portal_id, o->cred_hash);

		t->k_cfg = g_strconcat(p, "budget", NULL);
		t->k_win = g_strconcat(p, "window", NULL);
		t->k_srch = g_strconcat(p, "search", NULL);
		t->k_mounts = g_strconcat(p, "mounts", NULL);
		t->k_leases = g_strconcat(p, "leases", NULL);
		t->k_lease_prefix = g_strconcat(p, "lease:", NULL);
		t->channel = g_strconcat(p, "changes", NULL);
		g_free(p);
	}
	t->cmd_timeout_ms = pos_or(o->cmd_timeout_ms, DEFAULT_CMD_TIMEOUT_MS);
	t->heartbeat_ms = pos_or(o->heartbeat_ms, DEFAULT_HEARTBEAT_MS);
	snprintf(t->hb_arg, sizeof(t->hb_arg), "%" PRId64, t->heartbeat_ms);
	snprintf(t->defaults[0], sizeof(t->defaults[0]), "%d",
		 o->window_max > 0 && o->window_max <= 100000 ? o->window_max : DEFAULT_MAX);
	snprintf(t->defaults[1], sizeof(t->defaults[1]), "%" PRId64,
		 o->window_ms >= 100 && o->window_ms <= 3600000 ? o->window_ms : DEFAULT_WINDOW_MS);
	snprintf(t->defaults[2], sizeof(t->defaults[2]), "%d",
		 o->search_per_sec > 0 && o->search_per_sec <= 100000 ? o->search_per_sec :
									DEFAULT_SEARCH_PER_SEC);
	snprintf(t->defaults[3], sizeof(t->defaults[3]), "%" PRId64,
		 o->search_interval_ms >= 100 && o->search_interval_ms <= 3600000 ?
			 o->search_interval_ms : DEFAULT_SEARCH_MS);
	snprintf(t->defaults[4], sizeof(t->defaults[4]), "%" PRId64,
		 pos_or(o->daily_probe_ms, DEFAULT_DAILY_PROBE_MS));
	snprintf(t->defaults[5], sizeof(t->defaults[5]), "%" PRId64,
		 pos_or(o->inflight_ttl_ms, DEFAULT_INFLIGHT_TTL_MS));
	for (int s = 0; s < TEAM_LUA_COUNT; s++) {
		gchar *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA1, team_lua_text(s), -1);

		memcpy(t->sha[s], sum, 41);
		g_free(sum);
	}
	t->on_change = o->on_change;
	t->ud = o->ud;
	atomic_init(&t->mounts, 1);

	rc = connect_ctx(t, false, &t->cmd);
	if (rc == -EACCES || rc == -EINVAL || rc == -ENOMEM) {
		*why = rc == -EACCES ? "Redis refused the password, or wants one (redis_password_file=)" :
		       rc == -EINVAL ? "Redis refused the database number" : "out of memory";
		goto fail;
	}
	if (t->cmd) {
		t->was_up = true;
		heartbeat(t, false);
		if (connect_ctx(t, true, &t->sub) == 0)
			t->subscribed = true;
	} else {
		log_warn("team: Redis at %s unreachable; using this mount's share of the budget "
			 "until it answers", t->url_shown);
	}
	/* the thread takes no signals: they belong to the daemon's main loop */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->thread, NULL, team_thread, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		rc = -EAGAIN;
		*why = "cannot start the team thread";
		goto fail;
	}
	t->thread_started = true;
	*out = t;
	return 0;
fail:
	team_free(t);
	return rc;
}

void team_free(struct team *t)
{
	if (!t)
		return;
	if (t->thread_started) {
		atomic_store(&t->stop, true);
		wake_thread(t);
		pthread_join(t->thread, NULL);
	}
	if (t->cmd)
		heartbeat(t, true);
	redisFree(t->cmd);
	redisFree(t->sub);
	if (t->wake[0] >= 0) {
		close(t->wake[0]);
		close(t->wake[1]);
	}
	if (t->password) {
		explicit_bzero(t->password, strlen(t->password));
		g_free(t->password);
	}
	addr_clear(&t->addr);
	g_free(t->url_shown);
	g_free(t->k_cfg);
	g_free(t->k_win);
	g_free(t->k_srch);
	g_free(t->k_mounts);
	g_free(t->k_leases);
	g_free(t->k_lease_prefix);
	g_free(t->channel);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void team_stats_local(struct team *t, json_object *obj)
{
	pthread_mutex_lock(&t->lock);
	json_object_object_add(obj, "connected", json_object_new_boolean(t->cmd != NULL));
	json_object_object_add(obj, "degraded", json_object_new_boolean(t->cmd == NULL));
	json_object_object_add(obj, "subscribed", json_object_new_boolean(t->subscribed));
	json_object_object_add(obj, "url", json_object_new_string(t->url_shown));
	json_object_object_add(obj, "mount_id", json_object_new_string(t->mount_id));
	json_object_object_add(obj, "mounts", json_object_new_int(atomic_load(&t->mounts)));
	json_object_object_add(obj, "local_share_mounts", json_object_new_int(atomic_load(&t->mounts)));
	json_object_object_add(obj, "reconnects", json_object_new_uint64(t->reconnects));
	json_object_object_add(obj, "script_loads", json_object_new_uint64(t->script_loads));
	json_object_object_add(obj, "published", json_object_new_uint64(t->published));
	json_object_object_add(obj, "received", json_object_new_uint64(t->received));
	json_object_object_add(obj, "dropped", json_object_new_uint64(t->dropped));
	json_object_object_add(obj, "errors", json_object_new_uint64(t->errors));
	json_object_object_add(obj, "last_error",
			       t->last_error[0] ? json_object_new_string(t->last_error) : NULL);
	pthread_mutex_unlock(&t->lock);
}
