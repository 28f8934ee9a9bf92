/* team_int.h - what team.c (connections, the feed, the background thread)
 * and team_ops.c (budget, leases, status) share. Private to client/team*.c. */
#ifndef HUBFS_TEAM_INT_H
#define HUBFS_TEAM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "client/team.h"
#include "client/team_lua.h"

/* Where Redis is. */
struct team_addr {
	char *host;  /* TCP; NULL for a unix socket */
	int port;
	char *path;  /* unix socket; NULL for TCP */
	int db;
	char *user;  /* ACL user for AUTH, or NULL */
};

struct team {
	/* Immutable after team_new(). */
	struct team_addr addr;
	char *password;                  /* NULL if none; wiped at free */
	char *url_shown;                 /* without user */
	char mount_id[TEAM_MOUNT_ID_MAX];
	char *k_cfg, *k_win, *k_srch, *k_mounts, *k_leases, *k_lease_prefix, *channel;
	int64_t cmd_timeout_ms, heartbeat_ms;
	char defaults[6][24];            /* ARGV[1..6] of the budget scripts */
	char hb_arg[24];
	char sha[TEAM_LUA_COUNT][41];
	void (*on_change)(void *ud, const struct team_change *ch);
	void *ud;

	pthread_mutex_t lock;
	redisContext *cmd;               /* protected by lock; NULL while down */
	bool was_up;                     /* protected by lock: for the degraded/rejoined log lines */
	atomic_int mounts;               /* live mounts at the last heartbeat; read without
					  * the lock, so team_mounts() never waits for a round trip */
	uint64_t reconnects;             /* protected by lock */
	uint64_t script_loads;           /* protected by lock */
	uint64_t published;              /* protected by lock */
	uint64_t received;               /* protected by lock */
	uint64_t dropped;                /* protected by lock */
	uint64_t errors;                 /* protected by lock */
	char last_error[256];            /* protected by lock; "" if none */
	bool subscribed;                 /* protected by lock (written by the thread) */
	atomic_bool warned_nopass;       /* "Redis has no password" said once */

	/* Background thread only. */
	redisContext *sub;
	pthread_t thread;
	bool thread_started;
	int wake[2];                     /* pipe: wakes the thread (reconnect now, or stop) */
	atomic_bool stop;
};

/* Run script s (EVALSHA, loading it on NOSCRIPT) within one command timeout,
 * taking t->lock. Returns the reply (never an error reply; the caller frees
 * it) or NULL: Redis down, slow, or it answered an error (in last_error). */
redisReply *team_run(struct team *t, enum team_script s, int nkeys, const char *const *keys,
		     int nargs, const char *const *args);

/* team_run() for a budget script: keys settings, window, search; the common
 * ARGV[1..6] (t->defaults) before args[0..nargs), nargs <= 8. */
redisReply *team_run_budget(struct team *t, enum team_script s, int nargs, const char *const *args);

/* True and *v if r is an integer reply. */
bool team_int_reply(const redisReply *r, long long *v);

/* Add the local part of team_stats() (no Redis round trip) to obj. */
void team_stats_local(struct team *t, json_object *obj);

#endif
