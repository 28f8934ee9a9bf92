/* hubspot_int.h - what hubspot.c (lifecycle, the request loop, errors,
 * status) and hubspot_slot.c (request slots: the local limiter and a team's
 * shared budget) share. Private to client/hubspot*.c.
 *
 * Lock rules: c->lock guards the limiter, the counters, the token and the
 * team state marked below. It is never held across a transfer, a JSON parse,
 * a backoff sleep or a call into the team (client/team.h: a round trip to
 * Redis, up to its command timeout); waiting for the limiter happens on
 * c->cond (CLOCK_MONOTONIC), which is broadcast whenever a transfer ends, a
 * 429 changes the budget or a slot is given back.
 */
#ifndef HUBFS_HUBSPOT_INT_H
#define HUBFS_HUBSPOT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>
#include <json-c/json.h>

#include "client/http.h"
#include "client/hubspot.h"
#include "client/ratelimit.h"
#include "client/team.h"

struct hs_client {
	char *base_url;                /* no trailing '/'; immutable */
	int64_t transfer_timeout_ms;   /* immutable */
	struct http *http;             /* thread-safe itself */
	pthread_mutex_t lock;
	pthread_cond_t cond;           /* slot may have freed; waits on c->lock */
	char *token;                   /* protected by lock; NULL with OAuth */
	struct oauth *oauth;           /* immutable; borrowed; NULL for a private-app token */
	int64_t (*oauth_now)(void);    /* immutable; the clock handed to oauth_* */
	struct ratelimit *rl;          /* protected by lock */
	GHashTable *calls;             /* endpoint -> uint64_t *; protected by lock */
	uint64_t http_429;             /* protected by lock */
	uint64_t retries;              /* protected by lock */
	int net_state;                 /* protected by lock: 0 no attempt yet, 1 answered, -1 no answer */
	char last_error[1024];         /* protected by lock; "" if none */

	/* The team (hubspot_slot.c); all 0 without one. */
	struct team *team;             /* borrowed; NULL: the local limiter alone; set at
					* creation or by hs_client_set_team() while no call
					* runs, so read without the lock */
	bool team_local;               /* protected by lock: Redis unreachable, sending on
					* this mount's share of the budget */
	int team_parts;                /* protected by lock: the share while team_local is
					* 1/team_parts (the mounts last seen), 1 for the whole */
	uint64_t team_shared;          /* protected by lock: requests the team granted */
	uint64_t team_local_sent;      /* protected by lock: requests sent on the share */
	uint64_t team_went_local;      /* protected by lock: times Redis became unreachable */
	uint64_t team_unreported;      /* protected by lock: grants not handed back (no time) */
};

/* How often a cancellable call looks at its flag while it waits. */
#define HS_CANCEL_POLL_MS 100

static inline bool hs_cancelled(const struct hs_call *call)
{
	return call->cancel && __atomic_load_n(call->cancel, __ATOMIC_ACQUIRE) != 0;
}

/* One request's place in the budgets, from hs_slot_acquire() to
 * hs_slot_done(). */
struct hs_slot {
	bool search;              /* the search budget, not the window */
	struct rl_ticket ticket;  /* the local limiter's */
	struct team_grant grant;  /* the team's; seq 0: none (no team, or sent on the share) */
};

/* Wait for a slot of call->prio: the local limiter's and, with a team, the
 * team's (or, while Redis is unreachable, the local limiter's alone, capped
 * at this mount's share). Takes and drops c->lock; never calls the team
 * with it held. Returns 0 (*s filled: the request may go; hs_slot_done()
 * when it ended), -EAGAIN as soon as the wait would pass the call's
 * deadline (nothing held), or -ECANCELED once the call is cancelled. */
int hs_slot_acquire(struct hs_client *c, struct hs_call *call, bool search, struct hs_slot *s);

/* The attempt of slot s ended: book it with the local limiter and the team
 * (done, the answer's rate headers, a 429 of policy), count it under
 * endpoint and note whether the server answered. Broadcasts c->cond. */
void hs_slot_done(struct hs_client *c, const struct hs_call *call, const struct hs_slot *s,
		  const char *endpoint, const struct http_resp *resp, bool answered,
		  enum rl_policy policy);

/* With a team, add "team" to obj: team_stats() (one round trip, at most the
 * team's command timeout) and this client's side of it. No lock held. */
void hs_slot_stats(struct hs_client *c, json_object *obj);

#endif
