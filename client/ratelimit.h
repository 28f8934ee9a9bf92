/* ratelimit.h - HubSpot request budget: rolling window, search budget, daily
 * budget, priorities with reserves, 429 policies, retry backoff.
 *
 * Pure bookkeeping in the style of curl's lib/ratelimit: it never sleeps and
 * never reads a clock; every function takes the current time (`now_ms`, any
 * monotonic millisecond clock) as an argument. Not thread-safe: the owner
 * serialises calls (hubspot.c holds its client lock around them).
 *
 * Accounting (why HubSpot never sees more than its limit):
 *   A granted request is "in flight" from ratelimit_acquire() until
 *   ratelimit_done(); while in flight it counts against the window with no
 *   expiry, because the server may see it at any moment until the answer
 *   arrives. At ratelimit_done() it is stamped with the completion time (an
 *   upper bound of the server's arrival time) and stays in the window for
 *   interval + margin more. So for any two requests the server's arrival
 *   times differ by at least the interval whenever we let them share no
 *   window, whatever the network latency or the skew between the two clocks'
 *   offsets. The same holds for the search budget (search_per_sec per
 *   1000 ms + margin).
 *
 * Search and the 10 s window: HubSpot documents the search endpoints as a
 * budget of their own, so at first a search takes a slot of the search
 * budget only. If a search is refused with a 429 that names the
 * TEN_SECONDLY_ROLLING policy, the server evidently counts searches in the
 * 10 s window as well; from then on (for the limiter's life) a search takes
 * a slot of both budgets: it waits until both have room (in the window with
 * the window's class shares and cap, as any window request), is in flight
 * in both, and is stamped in, or released from, both. The searches in
 * flight when it is learned take their window slot at once.
 *
 * Priorities: a class may only start a request while the number of requests
 * in the window is below its share of the window's maximum: background 60 %,
 * user 90 %, write 100 % (each at least 1). So a grep over 100,000 records
 * leaves 40 % of every window to saves and 10 % of it to nobody but saves.
 * The search budget has no user reserve (user 100 %, background 60 %): 10 %
 * of 5 a second is no whole slot, and rounding it up to one would keep a
 * fifth of the budget from a cold listing's search side.
 *
 * Share: a limiter that spends a budget together with others it cannot ask
 * (mounts of a team while Redis is unreachable) can be capped at 1/parts of
 * each budget (ratelimit_set_share); the class shares then apply to the
 * capped maximum.
 */
#ifndef HUBFS_RATELIMIT_H
#define HUBFS_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

enum rl_prio { RL_PRIO_WRITE = 0, RL_PRIO_USER = 1, RL_PRIO_BACKGROUND = 2 };

/* The policy a 429 names (body "policyName", or guessed from "message"). */
enum rl_policy {
	RL_POLICY_UNKNOWN = 0,
	RL_POLICY_TEN_SECONDLY = 1, /* TEN_SECONDLY_ROLLING: the burst window */
	RL_POLICY_SECONDLY = 2,     /* SECONDLY: search (and legacy per-second) */
	RL_POLICY_DAILY = 3,        /* DAILY: the account's daily budget */
};
#define RL_POLICY_COUNT 4

/* Rate-limit headers of one response; -1 where a header was absent. */
struct rl_headers {
	int64_t max;             /* X-HubSpot-RateLimit-Max */
	int64_t interval_ms;     /* X-HubSpot-RateLimit-Interval-Milliseconds */
	int64_t remaining;       /* X-HubSpot-RateLimit-Remaining */
	int64_t daily;           /* X-HubSpot-RateLimit-Daily */
	int64_t daily_remaining; /* X-HubSpot-RateLimit-Daily-Remaining */
	int64_t retry_after_ms;  /* Retry-After (seconds or HTTP date), in ms */
};

/* Snapshot for status output. */
struct rl_stats {
	int window_max;          /* requests per window (after header adaptation) */
	int64_t window_ms;       /* window length (without the safety margin) */
	int used_in_window;      /* in flight + completed within the window */
	int left_in_window;      /* window_max - used, never negative */
	int inflight;
	int search_max;
	int search_used;
	int64_t daily_limit;     /* -1 if unknown (OAuth calls carry no daily headers) */
	int64_t daily_remaining; /* -1 if unknown; our estimate between headers */
	bool daily_paused;       /* a DAILY 429 was seen and no call succeeded since */
	int64_t paused_ms;       /* how long the window class stays paused, 0 if not */
	int share_parts;         /* > 1: capped at 1/share_parts (ratelimit_set_share); 1: not */
	int share_window_max;    /* the capped window maximum (window_max if not capped) */
	int share_search_max;    /* the capped search maximum (search_max if not capped) */
	int64_t share_lift_ms;   /* ms until a cap being lifted goes, 0 if none pending */
	int64_t search_paused_ms;
	uint64_t granted;        /* requests granted, both classes */
	uint64_t denied;         /* acquire calls answered with a wait */
	uint64_t n429[RL_POLICY_COUNT];
	uint64_t external;       /* requests seen in -Remaining that were not ours */
	bool search_in_window;   /* searches take a slot of the 10 s window too (learned) */
};

struct ratelimit;

/* Create a limiter: max requests per interval_ms (<= 0: 100 / 10000) and
 * search_per_sec search calls per second (<= 0: 5). The safety margins
 * default to min(250, interval/10) ms for the window and min(250,
 * search interval/50) ms for search (20 ms: a stamp at completion already
 * trails the server's count by the answer's way back). Returns NULL on
 * allocation failure. */
struct ratelimit *ratelimit_new(int max, int64_t interval_ms, int search_per_sec);
void ratelimit_free(struct ratelimit *rl); /* accepts NULL */

/* Length of the search window (default 1000 ms); for tests and for a server
 * that documents another one. Values <= 0 are ignored. */
void ratelimit_set_search_interval(struct ratelimit *rl, int64_t interval_ms);
/* Safety margins in ms (defaults above); negative values are ignored. */
void ratelimit_set_margins(struct ratelimit *rl, int64_t window_margin_ms, int64_t search_margin_ms);
/* After a DAILY 429 (or with the daily budget down to a class's reserve)
 * non-write calls are held, and one probe call is let through every
 * probe_ms (default 300000) to find out whether the budget is back. */
void ratelimit_set_daily_probe(struct ratelimit *rl, int64_t probe_ms);

/* Cap the limiter at 1/parts of each budget: the window and the search
 * budget then take at most max / parts requests each (at least 1), and the
 * class shares apply to that. The maxima themselves are kept and keep
 * adapting to headers; the cap is a divisor, so it follows them. For a
 * budget spent together with parts - 1 others that cannot be asked. While
 * capped, a ticket's Remaining is not compared with our own use
 * (ratelimit_note_headers): the rest of the budget is the others' to spend.
 * Requests already in the window stay; with more of them than the cap, new
 * ones wait until enough have left.
 * parts <= 1 lifts the cap, but only once a span (interval + margin, of the
 * longer of the two budgets) has passed from now_ms: requests sent under
 * the cap, which whoever now shares the budget with us did not see, have
 * left the server's window by then. Asking to lift again does not postpone
 * it; a new cap (parts > 1) cancels it. */
void ratelimit_set_share(struct ratelimit *rl, int parts, int64_t now_ms);

/* Ask to start one request of class prio now. Returns 0 if granted: the
 * request is counted (in flight) and the caller must call ratelimit_done()
 * with the same `search` flag when the transfer ends, whatever its outcome.
 * Otherwise returns the number of ms (> 0) after which asking again may
 * succeed; nothing is recorded. A wait may also end earlier when a
 * ratelimit_done() frees a slot, so waiters should be woken then too. */
int64_t ratelimit_acquire(struct ratelimit *rl, enum rl_prio prio, bool search, int64_t now_ms);

/* A granted request ended at now_ms. http_status is the answer's status, or 0
 * if no answer arrived (network error, timeout). An answer other than 429
 * ends a daily pause. A done without a matching acquire is ignored. */
void ratelimit_done(struct ratelimit *rl, bool search, long http_status, int64_t now_ms);

/* A request granted by ratelimit_acquire() was not sent after all: it leaves
 * the window at once, as if never granted (the daily estimate keeps its unit
 * until the next headers, and a daily probe it was is not handed back).
 * Call instead of ratelimit_done(), with the same `search` flag. */
void ratelimit_cancel(struct ratelimit *rl, bool search);

/* What the window looked like when a request was granted, so that the
 * server's -Remaining in its answer can be compared with what we had sent by
 * then. Taken with ratelimit_ticket() right after a granting acquire. */
struct rl_ticket {
	int used;          /* our requests in the window, this one included */
	uint64_t seq;      /* window grants so far (cancelled ones included) */
	uint64_t external; /* external requests counted so far */
	int share_parts;   /* the cap in force (ratelimit_set_share), 1 if none */
};
void ratelimit_ticket(struct ratelimit *rl, struct rl_ticket *t);

/* Learn from a response's headers: adopt the server's Max and Interval when
 * they differ from ours (sane values only) and take Daily / Daily-Remaining
 * as the daily budget. With the request's ticket (may be NULL), and no cap
 * of ratelimit_set_share() in force, also compare
 * -Remaining with our own accounting: the server counts at most the requests
 * we had in the window at grant time plus those granted since, so any excess
 * is someone else spending the same budget (another client of the app); it
 * is counted as used now, until a full window has passed. Call after
 * ratelimit_done() for the same response. */
void ratelimit_note_headers(struct ratelimit *rl, const struct rl_headers *h,
			    const struct rl_ticket *t, int64_t now_ms);

/* Whether ratelimit_note_headers() found someone else spending the window's
 * budget (another client of the app) within the window's span before now_ms:
 * more extra requests than our searches of the last window (which a server
 * counting searches in the window would count).
 * Search answers carry no such headers: a process that sees others on the
 * window keeps its searches few, since the 5 a second are per account. */
bool ratelimit_others_recent(struct ratelimit *rl, int64_t now_ms);

/* A 429 arrived for a request of the given class. TEN_SECONDLY pauses the
 * window class for interval + margin; SECONDLY pauses the call's class for
 * 1000 ms; DAILY holds all but writes (see ratelimit_set_daily_probe);
 * UNKNOWN is taken as SECONDLY for search calls and TEN_SECONDLY otherwise.
 * retry_after_ms >= 0 (a Retry-After header) replaces the policy's pause,
 * but no pause is shorter than 100 ms, so a 429 storm cannot make us spin.
 * A search refused with TEN_SECONDLY as named by the server (not UNKNOWN)
 * makes searches count in the 10 s window from then on (see the top of
 * this file); returns true for the 429 that taught it, false otherwise. */
bool ratelimit_note_429(struct ratelimit *rl, enum rl_policy policy, bool search,
			int64_t retry_after_ms, int64_t now_ms);

/* Fill *st as of now_ms. */
void ratelimit_stats(struct ratelimit *rl, int64_t now_ms, struct rl_stats *st);

/* Parse a policyName ("TEN_SECONDLY_ROLLING", "SECONDLY", "DAILY"; case-
 * insensitive). Anything else, or NULL, is RL_POLICY_UNKNOWN. */
enum rl_policy ratelimit_policy_from_name(const char *name);
const char *ratelimit_policy_name(enum rl_policy p);

/* Retry delay before attempt `attempt` + 1 after a 5xx or a timeout (attempt
 * counts from 0): "full jitter", uniformly distributed in [0, min(10000,
 * 200 * 2^attempt)] ms, drawn from rnd (any uniformly random 32-bit value,
 * injected so tests are deterministic). */
int64_t ratelimit_backoff_ms(unsigned attempt, uint32_t rnd);

#endif
