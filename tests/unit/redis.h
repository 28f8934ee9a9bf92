/* redis.h - run a real redis-server (Debian's package, installed by
 * scripts/install-deps) for a C unit test, the way sandbox.h runs the
 * HubSpot sandbox.
 *
 * redis_start() starts one on a unix socket in a fresh temporary directory
 * (and on a loopback port with redis_start_port()), nothing persisted; it
 * dies with the test (PR_SET_PDEATHSIG) even if the test aborts. A server
 * that does not come up FAILS the test: a missing redis-server is a broken
 * setup, not a reason to skip. redis_kill() crashes it (SIGKILL, nothing
 * said to the clients), redis_spawn() starts it again on the same socket,
 * empty; redis_signal(SIGSTOP/SIGCONT) hangs and resumes it; redis_stop()
 * ends it and removes its directory. Also the clock helpers every such test
 * needs: mono_ms(), sleep_ms(), WAIT_FOR(). */
#ifndef HUBFS_TEST_REDIS_H
#define HUBFS_TEST_REDIS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "tests/unit/test.h"

/* --- clock and polling -------------------------------------------------- */

static __attribute__((unused)) int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static __attribute__((unused)) void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Poll cond every 10 ms for up to 15 s (a deadline for a hang, not a timing
 * assertion). */
#define WAIT_FOR(cond) do { int64_t until_ = mono_ms() + 15000; \
	while (!(cond)) { if (mono_ms() > until_) FAIL("timed out waiting for %s", #cond); \
		sleep_ms(10); } } while (0)

/* --- redis-server fixture ----------------------------------------------- */

struct redis {
	char dir[64];
	char conf[128];
	char sock[128];
	char password[64]; /* "" if none */
	int port;          /* TCP port on 127.0.0.1, 0 for none */
	pid_t pid;
};

static __attribute__((unused)) redisContext *redis_raw(const struct redis *r);

static __attribute__((unused)) void redis_spawn(struct redis *r)
{
	redisContext *c = NULL;
	int64_t until = mono_ms() + 15000;

	r->pid = fork();
	ASSERT(r->pid >= 0);
	if (r->pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		/* a failed assertion abort()s the test: the server goes with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 0);
		dup2(fd, 1);
		execlp("redis-server", "redis-server", r->conf, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		int st;

		if (waitpid(r->pid, &st, WNOHANG) == r->pid)
			FAIL("redis-server exited (status %d): is it installed? scripts/install-deps "
			     "installs it; its log is in %s", st, r->dir);
		if (access(r->sock, F_OK) == 0 && (c = redis_raw(r)) != NULL)
			break;
		if (mono_ms() > until)
			FAIL("redis-server did not come up on %s", r->sock);
		sleep_ms(20);
	}
	redisFree(c);
}

/* A TCP port that was free a moment ago. */
static __attribute__((unused)) int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ASSERT(fd >= 0);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static __attribute__((unused)) void redis_start_port(struct redis *r, const char *password, int port)
{
	FILE *f;

	memset(r, 0, sizeof(*r));
	r->port = port;
	snprintf(r->dir, sizeof(r->dir), "/tmp/hubfs-team-XXXXXX");
	ASSERT(mkdtemp(r->dir) != NULL);
	snprintf(r->conf, sizeof(r->conf), "%s/redis.conf", r->dir);
	snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
	snprintf(r->password, sizeof(r->password), "%s", password ? password : "");
	f = fopen(r->conf, "w");
	ASSERT(f != NULL);
	fprintf(f, "port %d\nbind 127.0.0.1\nunixsocket %s\nunixsocketperm 700\ndir %s\n"
		"save \"\"\nappendonly no\ndaemonize no\nlogfile %s/redis.log\n", r->port, r->sock,
		r->dir, r->dir);
	if (password)
		fprintf(f, "requirepass %s\n", password);
	fclose(f);
	chmod(r->conf, 0600);
	redis_spawn(r);
}

static __attribute__((unused)) void redis_start(struct redis *r, const char *password)
{
	redis_start_port(r, password, 0);
}

static __attribute__((unused)) void redis_signal(struct redis *r, int sig)
{
	ASSERT(r->pid > 0);
	ASSERT_EQ(kill(r->pid, sig), 0);
}

/* Kill (SIGKILL: a crash, nothing said to the clients) and reap. */
static __attribute__((unused)) void redis_kill(struct redis *r)
{
	int st;

	redis_signal(r, SIGKILL);
	ASSERT_EQ(waitpid(r->pid, &st, 0), r->pid);
	r->pid = 0;
}

static __attribute__((unused)) void redis_stop(struct redis *r)
{
	char cmd[256];

	if (r->pid > 0) {
		kill(r->pid, SIGCONT);
		redis_kill(r);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
	ASSERT_EQ(system(cmd), 0);
}

/* A plain connection for the test's own look at Redis; NULL if none yet. */
static __attribute__((unused)) redisContext *redis_raw(const struct redis *r)
{
	redisContext *c = redisConnectUnix(r->sock);
	redisReply *rep;

	if (!c || c->err) {
		redisFree(c);
		return NULL;
	}
	if (r->password[0]) {
		rep = redisCommand(c, "AUTH %s", r->password);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			freeReplyObject(rep);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(rep);
	}
	rep = redisCommand(c, "PING");
	if (!rep || rep->type != REDIS_REPLY_STATUS) {
		freeReplyObject(rep);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(rep);
	return c;
}

#endif
