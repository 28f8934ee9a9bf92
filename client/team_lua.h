/* team_lua.h - the Lua scripts that keep a team's shared state in Redis
 * (client/team.c runs them with EVALSHA, loading them on NOSCRIPT).
 *
 * Budget scripts (ACQUIRE, DONE, HEADERS, N429, STATS) take the keys
 *   KEYS[1] settings hash, KEYS[2] window zset, KEYS[3] search zset
 * and the common arguments ARGV[1..6]: the default window max, window ms,
 * search max, search ms (used while the hash has none: the first mount to
 * grant stores its own), the daily probe interval and the in-flight ttl.
 * Their own arguments start at ARGV[7]. Times are Redis TIME in ms.
 *
 * The window zsets hold one member per request: its score is the time it
 * leaves the window, now + in-flight ttl while in flight, completion + span
 * once done (span = interval + min(250, interval / 10), as in ratelimit.c).
 * So the k-th lowest score is when the k-th request leaves, and a crashed
 * mount's grants leave after the in-flight ttl.
 */
#ifndef HUBFS_TEAM_LUA_H
#define HUBFS_TEAM_LUA_H

enum team_script {
	/* ARGV[7] prio (0 write, 1 user, 2 background), ARGV[8] search (0/1).
	 * Returns {0, seq, used, external} (granted) or {wait_ms}. */
	TEAM_LUA_ACQUIRE,
	/* ARGV[7] seq, ARGV[8] search, ARGV[9] http status. Returns 1. */
	TEAM_LUA_DONE,
	/* ARGV[7] max, [8] interval ms, [9] remaining, [10] daily, [11] daily
	 * remaining (-1 each when absent), [12..14] the grant's used, seq and
	 * external (seq 0: no grant). Returns the requests added as external. */
	TEAM_LUA_HEADERS,
	/* ARGV[7] policy (enum rl_policy), [8] search, [9] retry-after ms or -1.
	 * Returns 1. */
	TEAM_LUA_N429,
	/* KEYS[4] mounts zset, KEYS[5] lease index zset; ARGV[7] the lease key
	 * prefix, [8] heartbeat ms. Returns a JSON text: {window, mounts_seen,
	 * leases}. */
	TEAM_LUA_STATS,
	/* KEYS[1] mounts zset; ARGV[1] mount id, [2] heartbeat ms, [3] 1 to
	 * leave. Returns the number of live mounts. */
	TEAM_LUA_HEARTBEAT,
	/* KEYS[1] lease key, KEYS[2] lease index; ARGV[1] mount id, [2] ttl ms,
	 * [3] lease name. Returns {1, holder} or {0, holder}. */
	TEAM_LUA_LEASE,
	/* KEYS[1] lease key, KEYS[2] lease index; ARGV[1] mount id, [2] lease
	 * name. Returns 1 (released) or 0 (not ours). */
	TEAM_LUA_RELEASE,
	TEAM_LUA_COUNT
};

/* The script's text. */
const char *team_lua_text(enum team_script s);

#endif
