/* team.h - mounts of one HubSpot portal on many machines, coordinated through
 * Redis: one shared rate budget, leases (so one mount does a job for all),
 * and a change feed (what one mount wrote or learned, the others hear at once).
 *
 * Knows nothing of FUSE or of the cache; client/hubspot.c and the cache plug
 * into it. Thread-safe: any number of threads may call into one struct team.
 *
 * Timing: every call that talks to Redis returns within cmd_timeout_ms (one
 * deadline covers waiting for the connection lock, the round trip and a
 * script reload); it then fails with -EAGAIN and, for a lost connection,
 * leaves reconnecting to the team's background thread. So a slow, stopped or
 * dead Redis costs a caller at most cmd_timeout_ms once, and nothing after
 * that until Redis answers again. That is still a round trip or a timeout:
 * do not call with a lock held that a FUSE worker may wait on. (Only
 * connecting, in team_new() and the background thread, resolves a host
 * name, which the timeout does not bound: give an address or a name from
 * /etc/hosts where that matters.)
 *
 * Degraded mode: while the command connection is down, team_acquire() answers
 * -EAGAIN at once and the caller uses its local limiter with this mount's
 * share of the budget (team_local_share()). The background thread reconnects
 * with a growing backoff (100 ms doubling to 2 s, jittered), reloads the Lua
 * scripts when Redis answers NOSCRIPT (a restarted or flushed server),
 * resubscribes to the change feed and heartbeats again; team_stats() says
 * "degraded" meanwhile.
 *
 * Keys: everything lives under "hubfs:{<portal_id>:<cred_hash>}:" (one hash
 * tag, so a cluster would keep a team's keys on one slot) and expires by
 * itself: the windows an in-flight ttl and a span after their last grant, the
 * budget settings after two idle days, the mount list after ten heartbeats,
 * a lease after its ttl. The budget belongs to the app on the account, so two
 * mounts with the same portal and credential hash share it whatever else
 * differs (the Redis database number only separates keys, not the feed).
 *
 * Clock: the shared window is kept in Redis TIME (read inside the scripts), so
 * the machines' clocks need not agree; local backoff and deadlines use
 * CLOCK_MONOTONIC. Nothing here takes an injected clock: the logic that
 * needs one runs inside Redis.
 *
 * Secrets: the password is copied, sent only in AUTH, never logged or put in
 * team_stats(), and wiped at team_free(). The credential itself never comes
 * here, only a hash of it.
 *
 * The process must ignore SIGPIPE (libfuse's fuse_set_signal_handlers() does):
 * hiredis writes to a socket that Redis may have closed.
 */
#ifndef HUBFS_TEAM_H
#define HUBFS_TEAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "client/ratelimit.h" /* enum rl_prio, enum rl_policy, struct rl_headers */

#define TEAM_MOUNT_ID_MAX 96   /* a mount id is 1..95 of [A-Za-z0-9._:-] */
#define TEAM_CRED_HASH_MAX 128 /* a credential hash is 8..127 hex digits */
#define TEAM_TYPE_MAX 64       /* an object type name is 1..63 of [A-Za-z0-9_.-] */
#define TEAM_LEASE_NAME_MAX 128 /* a lease name is 1..127 of [A-Za-z0-9._:/-] */

struct team;

/* One change on the team's feed. Record ids are HubSpot's numeric ids. */
enum team_change_kind {
	TEAM_CHANGE_UPDATE = 1,  /* a record changed (an edit landed, or a refresh saw it) */
	TEAM_CHANGE_CREATE,      /* a record was created */
	TEAM_CHANGE_ARCHIVE,     /* a record was archived (deleted) */
	TEAM_CHANGE_ASSOC,       /* an association was added or removed */
	TEAM_CHANGE_REFRESH,     /* a refresh of type ran: the changes it found were
				  * published before this; updated_ms = its sync point */
	TEAM_CHANGE_RELIST,      /* a full listing of type completed; updated_ms as above */
	/* Local only (never published): the feed was cut and is back, so
	 * changes may have been missed; drop what the feed would have fixed. */
	TEAM_CHANGE_RESYNC,
};

struct team_change {
	enum team_change_kind kind;
	char type[TEAM_TYPE_MAX];    /* object type as the mount names it ("contacts", "2-1234"):
				      * 1..63 of [A-Za-z0-9_.-]; "" for RESYNC */
	uint64_t id;                 /* record id; 0 for REFRESH, RELIST, RESYNC */
	int64_t updated_ms;          /* epoch ms: the record's updatedAt (0 if unknown), or the sync point */
	char to_type[TEAM_TYPE_MAX]; /* ASSOC: the other end's type; "" otherwise */
	uint64_t to_id;              /* ASSOC: the other end's id */
	bool removed;                /* ASSOC: true if the association was removed */
	bool refreshed;              /* UPDATE, ARCHIVE: a refresh or relist found it (already
				      * searchable, or soon), rather than a write landing or
				      * HubSpot pushing it */
	char origin[TEAM_MOUNT_ID_MAX]; /* mount id of the publisher (set by team_publish) */
};

struct team_opts {
	const char *url;         /* redis://[user@]host[:port][/db] or unix:/path[?db=N];
				  * a password in the URL is refused (it would sit in argv) */
	const char *password;    /* NULL or "": no AUTH; copied, wiped at free, never logged */
	uint64_t portal_id;      /* HubSpot portal (hub) id, > 0 */
	const char *cred_hash;   /* hex hash of the app credential (never the credential) */
	const char *mount_id;    /* unique per mount, e.g. host:pid:random */
	/* Budget until HubSpot's headers say otherwise; the first mount to use
	 * an empty namespace sets it for the team. <= 0: 100 per 10000 ms, 5
	 * searches per 1000 ms. */
	int window_max;
	int64_t window_ms;
	int search_per_sec;
	int64_t search_interval_ms;
	int64_t cmd_timeout_ms;  /* bound of every call into Redis; <= 0: 200 */
	int64_t heartbeat_ms;    /* mount heartbeat; a mount is gone after 3 missed; <= 0: 2000 */
	int64_t inflight_ttl_ms; /* a grant not done by then counts as done (its mount died);
				  * <= 0: 60000; at least a window span + 1 s */
	int64_t daily_probe_ms;  /* one probe per this while the daily budget is held; <= 0: 300000 */
	/* Called from the team's background thread, without any team lock, for
	 * each change another mount published (never for this mount's own) and
	 * for RESYNC. It may call team functions but team_free(); it should
	 * return quickly (heartbeats wait for it). May be NULL. */
	void (*on_change)(void *ud, const struct team_change *ch);
	void *ud;
};

/* The credential hash of a team's key namespace (team_opts.cred_hash): the
 * first 32 hex digits of SHA-256("hubfs-team:" credential), into out. Pass
 * what HubSpot's limits belong to: an OAuth app's client id, or a private
 * app's token. Every mount of the same app gets the same hash; the
 * credential cannot be read back from it. */
#define TEAM_CRED_HASH_LEN 32
void team_cred_hash(const char *credential, char out[TEAM_CRED_HASH_LEN + 1]);

/* Check a Redis URL the way team_new() reads it, without connecting, so an
 * option parser can refuse it at mount. Returns 0, or -EINVAL (bad URL, a
 * password in it, an unknown parameter) or -EPROTONOSUPPORT (rediss://: this
 * hiredis has no TLS) with a static reason in *why. */
int team_url_check(const char *url, const char **why);

/* Create a team member and connect to Redis (within about three command
 * timeouts: the command connection, a heartbeat, the change feed). Returns 0 and
 * *out; the team is then connected, or degraded (Redis unreachable, slow or
 * refusing commands: the background thread keeps trying). Fails only for
 * what retrying cannot fix: -EINVAL (bad options or URL, or Redis refused the
 * database number), -EPROTONOSUPPORT (rediss://), -EACCES (Redis refused the
 * password, or demands one that was not given), -ENOMEM, -EAGAIN (no
 * thread); a static reason in *why. */
int team_new(const struct team_opts *opts, struct team **out, const char **why);

/* Leave the team (this mount drops off the mount list at once if Redis
 * answers in time), stop the background thread and free. Leases held stay
 * until their ttl: release them first on a clean shutdown. Accepts NULL. No
 * other call may be running; on_change is not called after this returns. */
void team_free(struct team *t);

/* True while the command connection is up (not degraded). */
bool team_connected(struct team *t);

/* A request granted by team_acquire(), to hand back to team_done() and
 * team_note_headers(). */
struct team_grant {
	uint64_t seq;      /* grant number in its class; 0: no grant */
	bool search;
	int used;          /* shared window use at grant time, this one included */
	uint64_t external; /* external requests the team had counted by then */
};

/* Ask to start one request of class prio now, against the team's shared
 * budget, in one round trip: the rolling window (search = false) or the
 * search budget (search = true), each class up to its share (background
 * 60 %, user 90 %, write 100 % of the maximum, as in ratelimit.h), 429
 * pauses any mount noted, and the daily budget with its reserves and probes.
 * Returns 0 if granted (*g filled: the request is in flight until
 * team_done()); > 0, the ms after which asking again may succeed (nothing
 * recorded; a done in another mount does not wake this one, so wait at most
 * that long and ask again); or -EAGAIN if Redis did not answer in time (the
 * caller falls back to its local limiter, see team_local_share()). */
int64_t team_acquire(struct team *t, enum rl_prio prio, bool search, struct team_grant *g);

/* The request of grant g ended (http_status as for ratelimit_done(): 0 if no
 * answer): it stays in the shared window for a window span from now. An
 * answer other than 429 ends a shared daily pause. Best effort: if Redis is
 * unreachable the grant leaves the window after inflight_ttl_ms. */
void team_done(struct team *t, const struct team_grant *g, long http_status);

/* Adapt the shared budget to a response's rate headers (as
 * ratelimit_note_headers()): Max and Interval-Milliseconds (sane values
 * only), Daily and Daily-Remaining; with the response's window grant g (NULL
 * or a search grant: none), requests the server counted beyond the team's own
 * (another client of the app) are added to the shared window. Every mount
 * sees the result on its next acquire. Call after team_done(). Best effort. */
void team_note_headers(struct team *t, const struct rl_headers *h, const struct team_grant *g);

/* A 429 of the given policy arrived (as ratelimit_note_429(), shared):
 * TEN_SECONDLY pauses the window for a span, SECONDLY the call's class for
 * 1 s, DAILY holds all but writes (a probe every daily_probe_ms);
 * retry_after_ms >= 0 replaces the pause (at least 100 ms). Best effort. */
void team_note_429(struct team *t, enum rl_policy policy, bool search, int64_t retry_after_ms);

/* This mount's share of a budget of max while the team is unreachable:
 * max / the number of mounts last seen by the heartbeat (at least 1). Before
 * any heartbeat succeeded the count is 1: the mount behaves as without
 * Redis. */
int team_local_share(struct team *t, int max);

/* Number of live mounts at the last successful heartbeat (1 before any).
 * Never waits: safe to call while Redis is slow. */
int team_mounts(struct team *t);

/* The bound of one call into Redis (team_opts.cmd_timeout_ms, or its
 * default): what a caller with a deadline must have left before it asks. */
int64_t team_cmd_timeout_ms(struct team *t);

/* Take or renew the lease `name` for ttl_ms (> 0): SET NX PX, or a renewal
 * if this mount holds it. Returns 1 if this mount holds it now; 0 if another
 * mount does (its mount id in holder, truncated to holder_len; holder may be
 * NULL); -EINVAL for a bad name or ttl; -EAGAIN if Redis did not answer. A
 * holder that stops renewing (it died) loses the lease ttl_ms after its last
 * renewal. */
int team_lease(struct team *t, const char *name, int64_t ttl_ms, char *holder, size_t holder_len);

/* Release the lease `name` if this mount holds it (checked and deleted in
 * one script, so a lease that expired and was taken by another mount is not
 * touched). Returns 1 released, 0 not ours (or not held), -EINVAL, -EAGAIN. */
int team_lease_release(struct team *t, const char *name);

/* Publish changes[0..n) on the team's feed (origin is set to this mount's id;
 * large batches go out as several messages). Other mounts' on_change sees
 * each, in order; this mount's does not. Returns 0 (sent; receivers that are
 * disconnected miss it and later get RESYNC), -EINVAL (a change with a bad
 * kind, type or RESYNC), -ENOMEM, or -EAGAIN (Redis did not answer: nothing
 * or only a prefix was sent). */
int team_publish(struct team *t, const struct team_change *changes, size_t n);

/* Add the team's state to obj (one round trip when connected):
 *   "connected", "degraded" (bools), "subscribed" (the feed is up),
 *   "url" (without user), "mount_id", "mounts" (last count),
 *   "local_share_mounts" (the divisor team_local_share() uses),
 *   "reconnects", "script_loads", "published", "received", "dropped",
 *   "errors", "last_error" (string or null);
 * and when Redis answered: "mounts_seen" [{id, age_ms}], "window" {max,
 * interval_ms, used, inflight, left, paused_ms, search_max,
 * search_interval_ms, search_used, search_paused_ms, daily_limit,
 * daily_remaining (null if unknown), daily_paused, granted (ever),
 * granted_today (UTC day; HubSpot's daily budget is in Daily-Remaining),
 * external, n429 {policy: n}}, "leases" [{name, holder, ttl_ms, ours}].
 * Never includes the password. */
void team_stats(struct team *t, json_object *obj);

/* Name of a change kind on the wire ("update", "create", "archive", "assoc",
 * "refresh", "relist", "resync"); NULL if invalid. */
const char *team_change_kind_name(enum team_change_kind k);

#endif
