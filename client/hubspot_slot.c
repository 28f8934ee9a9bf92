/* hubspot_slot.c - request slots (hubspot_int.h): every request first takes
 * a slot of the client's own limiter (client/ratelimit.h: this mount's
 * priorities, requests in flight, daily reserves) and then, with a team
 * (client/team.h), a grant of the team's shared budget in the same class, so
 * that mounts of one portal on many machines spend one budget. The wait is
 * the longer of the two. Split from hubspot.c along the seam "may it go" /
 * "send it".
 *
 * Redis unreachable (team_acquire() answers -EAGAIN): the client goes on on
 * its local limiter capped at 1/n of the budget, n the mounts the team last
 * saw (ratelimit_set_share), so that n mounts cut off together stay within
 * the budget without hearing from each other. The first grant after that
 * lifts the cap, a window span later (ratelimit.h says why), and the shared
 * budget resumes.
 *
 * Deadlines: a round trip to Redis takes up to the team's command timeout
 * when Redis hangs, so it is only started while the call has that long
 * left. Otherwise a call already on the share goes on without asking, and
 * any other fails with -EAGAIN, as a limiter wait past the deadline does; an
 * attempt that ended that late does not hand its grant back (the team lets
 * it go after its in-flight ttl).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "client/hubspot_int.h"
#include "client/log.h"

#define MAX_ENDPOINTS 256 /* distinct endpoint counters; more go to "other" */

/* Wait until the local limiter grants a slot. Returns 0 (slot taken, *ticket
 * filled), or -EAGAIN as soon as the wait would pass the call's deadline. */
static int local_acquire(struct hs_client *c, struct hs_call *call, bool search,
			 struct rl_ticket *ticket)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		int64_t now = hs_now_ms();
		int64_t wait;
		struct timespec until;

		if (call->deadline_ms > 0 && now >= call->deadline_ms) {
			rc = -EAGAIN;
			break;
		}
		if (hs_cancelled(call)) {
			rc = -ECANCELED;
			break;
		}
		wait = ratelimit_acquire(c->rl, call->prio, search, now);
		if (wait == 0) {
			ratelimit_ticket(c->rl, ticket);
			break;
		}
		if (call->deadline_ms > 0 && now + wait > call->deadline_ms) {
			rc = -EAGAIN;
			break;
		}
		until = hs_timespec_ms(now + (call->cancel && wait > HS_CANCEL_POLL_MS ? HS_CANCEL_POLL_MS : wait));
		pthread_cond_timedwait(&c->cond, &c->lock, &until);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Give a local slot back: the request is not sent now. */
static void local_cancel(struct hs_client *c, bool search)
{
	pthread_mutex_lock(&c->lock);
	ratelimit_cancel(c->rl, search);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Has the call time for a round trip to Redis that may not come back? */
static bool team_time(struct hs_client *c, const struct hs_call *call)
{
	return call->deadline_ms <= 0 ||
	       call->deadline_ms - hs_now_ms() >= team_cmd_timeout_ms(c->team);
}

/* The team said: ask again within ms. Wait that long, not less: a request
 * leaves the shared window only when its time is up, one in flight no
 * earlier than a span from now, so another mount's request ending does not
 * make room sooner (only a larger Max in HubSpot's headers would). 0, or
 * -EAGAIN if that would pass the deadline (as for the local limiter),
 * -ECANCELED if cancelled. */
static int team_wait(struct hs_client *c, const struct hs_call *call, int64_t ms)
{
	int64_t now = hs_now_ms();
	struct timespec until;

	if (call->deadline_ms > 0 && now + ms > call->deadline_ms)
		return -EAGAIN;
	until = hs_timespec_ms(now + (call->cancel && ms > HS_CANCEL_POLL_MS ? HS_CANCEL_POLL_MS : ms));
	pthread_mutex_lock(&c->lock);
	pthread_cond_timedwait(&c->cond, &c->lock, &until);
	pthread_mutex_unlock(&c->lock);
	return hs_cancelled(call) ? -ECANCELED : 0;
}

/* Redis did not answer. Go local (cap the limiter at this mount's share) if
 * not yet. Returns true if the slot in s was taken under that share and may
 * go; false if it must be given back and taken again under it. */
static bool go_local(struct hs_client *c, struct hs_slot *s)
{
	/* Before the lock: the team is not called with it held. A cap still
	 * being lifted was set for as many mounts as then: keep at least that
	 * (a restarted Redis counts the mounts again from 1). */
	int seen = team_mounts(c->team);
	bool now_local = false, ok;
	int parts = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->team_local) {
		c->team_local = true;
		c->team_went_local++;
		c->team_parts = seen > s->ticket.share_parts ? seen : s->ticket.share_parts;
		ratelimit_set_share(c->rl, c->team_parts, hs_now_ms());
		parts = c->team_parts;
		now_local = true;
	}
	ok = s->ticket.share_parts >= c->team_parts;
	if (ok)
		c->team_local_sent++;
	pthread_mutex_unlock(&c->lock);
	if (now_local)
		log_info("team: Redis unreachable; this mount sends at most 1/%d of the budget "
			 "until it answers", parts);
	return ok;
}

/* No time to ask Redis: may the slot in s go on this mount's share? 0
 * (yes), 1 (local, but the slot was not taken under the share: given back,
 * start again) or -EAGAIN (on the shared budget: given back, the call gives
 * up as for a wait past its deadline). Changes no state but counters. */
static int share_only(struct hs_client *c, struct hs_slot *s)
{
	bool local, ok;

	pthread_mutex_lock(&c->lock);
	local = c->team_local;
	ok = local && s->ticket.share_parts >= c->team_parts;
	if (ok)
		c->team_local_sent++;
	pthread_mutex_unlock(&c->lock);
	if (ok)
		return 0;
	local_cancel(c, s->search);
	return local ? 1 : -EAGAIN;
}

/* With the local slot in s held, take the team's grant. Returns 0 (go), 1
 * (the local slot was given back: start again), or -errno (given back). */
static int team_step(struct hs_client *c, struct hs_call *call, struct hs_slot *s)
{
	bool rejoined = false;
	int64_t w;
	int rc;

	/* Redis might keep the call past its deadline */
	if (!team_time(c, call))
		return share_only(c, s);
	w = team_acquire(c->team, call->prio, s->search, &s->grant);
	if (w == 0) {
		pthread_mutex_lock(&c->lock);
		c->team_shared++;
		if (c->team_local) {
			c->team_local = false;
			c->team_parts = 1;
			ratelimit_set_share(c->rl, 1, hs_now_ms());
			rejoined = true;
		}
		pthread_mutex_unlock(&c->lock);
		if (rejoined)
			log_info("team: Redis answers again; back on the shared budget "
				 "(this mount's share holds for one more window)");
		return 0;
	}
	if (w > 0) {
		local_cancel(c, s->search);
		rc = team_wait(c, call, w);
		return rc < 0 ? rc : 1;
	}
	if (go_local(c, s))
		return 0;
	local_cancel(c, s->search);
	return 1;
}

int hs_client_set_team(struct hs_client *c, struct team *team)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (team && c->team) {
		rc = -EBUSY;
	} else {
		c->team = team;
		if (c->team_local) {
			c->team_local = false;
			c->team_parts = 1;
			ratelimit_set_share(c->rl, 1, hs_now_ms());
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int hs_slot_acquire(struct hs_client *c, struct hs_call *call, bool search, struct hs_slot *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->search = search;
	for (;;) {
		rc = local_acquire(c, call, search, &s->ticket);
		if (rc < 0 || !c->team)
			return rc;
		rc = team_step(c, call, s);
		if (rc != 1)
			return rc;
		memset(&s->grant, 0, sizeof(s->grant));
	}
}

static void count_call(struct hs_client *c, const char *endpoint)
{
	uint64_t *n = g_hash_table_lookup(c->calls, endpoint);

	if (!n && g_hash_table_size(c->calls) >= MAX_ENDPOINTS)
		n = g_hash_table_lookup(c->calls, (endpoint = "other"));
	if (!n) {
		n = g_new0(uint64_t, 1);
		g_hash_table_insert(c->calls, g_strdup(endpoint), n);
	}
	(*n)++;
}

void hs_slot_done(struct hs_client *c, const struct hs_call *call, const struct hs_slot *s,
		  const char *endpoint, const struct http_resp *resp, bool answered,
		  enum rl_policy policy)
{
	bool unreported = false, learned = false;
	int64_t now;

	/* The team first, without the lock, so that a waiter woken below
	 * finds the shared slot free too; each round trip only with the time
	 * for it left. */
	if (c->team && s->grant.seq) {
		if (team_time(c, call))
			team_done(c->team, &s->grant, resp->status);
		else
			unreported = true;
		/* search answers carry no rate headers */
		if (answered && !s->search && team_time(c, call))
			team_note_headers(c->team, &resp->rl, &s->grant);
	}
	if (c->team && answered && resp->status == 429 && team_time(c, call))
		team_note_429(c->team, policy, s->search, resp->rl.retry_after_ms);
	now = hs_now_ms();
	pthread_mutex_lock(&c->lock);
	ratelimit_done(c->rl, s->search, resp->status, now);
	if (answered) {
		/* Search answers carry no rate headers, nor a window ticket;
		 * with a team's grant the team counts the app's other clients */
		ratelimit_note_headers(c->rl, &resp->rl,
				       s->search || s->grant.seq ? NULL : &s->ticket, now);
		if (resp->status == 429) {
			c->http_429++;
			learned = ratelimit_note_429(c->rl, policy, s->search,
						     resp->rl.retry_after_ms, now);
		}
	}
	if (unreported)
		c->team_unreported++;
	count_call(c, endpoint);
	c->net_state = resp->status > 0 ? 1 : -1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	/* once a mount: the limiter learns it only once */
	if (learned)
		log_notice("HubSpot counts searches in the 10-second window: from now on a search "
			   "also takes a slot of it (%s answered 429 %s)", endpoint,
			   ratelimit_policy_name(policy));
}

void hs_slot_stats(struct hs_client *c, json_object *obj)
{
	json_object *t, *share = NULL;
	struct rl_stats st;
	bool local;

	if (!c->team)
		return;
	t = json_object_new_object();
	team_stats(c->team, t);
	pthread_mutex_lock(&c->lock);
	ratelimit_stats(c->rl, hs_now_ms(), &st);
	local = c->team_local;
	json_object_object_add(t, "requests_shared", json_object_new_uint64(c->team_shared));
	json_object_object_add(t, "requests_local", json_object_new_uint64(c->team_local_sent));
	json_object_object_add(t, "went_local", json_object_new_uint64(c->team_went_local));
	json_object_object_add(t, "grants_unreported", json_object_new_uint64(c->team_unreported));
	pthread_mutex_unlock(&c->lock);
	/* "local": on this mount's share; "rejoining": shared again, the
	 * share holding until what was sent under it has left the window */
	json_object_object_add(t, "budget", json_object_new_string(
		local ? "local" : st.share_parts > 1 ? "rejoining" : "shared"));
	if (st.share_parts > 1) {
		share = json_object_new_object();
		json_object_object_add(share, "parts", json_object_new_int(st.share_parts));
		json_object_object_add(share, "window_max", json_object_new_int(st.share_window_max));
		json_object_object_add(share, "search_max", json_object_new_int(st.share_search_max));
		json_object_object_add(share, "lift_in_ms", json_object_new_int64(st.share_lift_ms));
	}
	json_object_object_add(t, "local_share", share);
	json_object_object_add(obj, "team", t);
}
