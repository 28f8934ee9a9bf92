/* test_ratelimit.c - the rate limiter against a fake clock. Never sleeps. */
#include "client/ratelimit.h"
#include "tests/unit/test.h"

/* Acquire n requests of one class at time t and complete them at once. */
static void burst(struct ratelimit *rl, enum rl_prio p, bool search, int n, int64_t t)
{
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(ratelimit_acquire(rl, p, search, t), 0);
		ratelimit_done(rl, search, 200, t);
	}
}

static struct ratelimit *mk(int max, int64_t interval, int search)
{
	struct ratelimit *rl = ratelimit_new(max, interval, search);

	ASSERT(rl != NULL);
	return rl;
}

static void test_defaults(void)
{
	struct ratelimit *rl = mk(0, 0, 0);
	struct rl_stats st;

	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.window_max, 100);
	ASSERT_EQ(st.window_ms, 10000);
	ASSERT_EQ(st.search_max, 5);
	ASSERT_EQ(st.left_in_window, 100);
	ASSERT_EQ(st.daily_remaining, -1);
	ASSERT_EQ(st.daily_limit, -1);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

/* 100 writes fill the window; the 101st waits until the first has been out
 * of the window for interval + margin (250 ms at 10 s). */
static void test_window_accounting(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_stats st;
	int64_t w;

	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 1000 + i), 0);
		ratelimit_done(rl, false, 200, 1000 + i);
	}
	ratelimit_stats(rl, 1100, &st);
	ASSERT_EQ(st.used_in_window, 100);
	ASSERT_EQ(st.left_in_window, 0);
	w = ratelimit_acquire(rl, RL_PRIO_WRITE, false, 1100);
	ASSERT_EQ(w, 1000 + 10000 + 250 - 1100);
	/* one ms early: still no */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 11249), 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 11250), 0);
	/* the next slot frees one ms later */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 11250), 1);
	ratelimit_stats(rl, 11250, &st);
	ASSERT_EQ(st.inflight, 1);
	ASSERT_EQ(st.used_in_window, 100);
	ratelimit_free(rl);
}

/* A request counts with no expiry while in flight, and for a full span
 * after it completes: a slow answer pushes its slot's release later. */
static void test_inflight_counts_until_done(void)
{
	struct ratelimit *rl = mk(2, 1000, 5);

	ratelimit_set_margins(rl, 50, -1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	/* both in flight: at least a full span */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 5000), 1050);
	ratelimit_done(rl, false, 200, 5000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 5000), 1050);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 6049), 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 6050), 0);
	/* done without acquire is ignored, never goes negative */
	ratelimit_done(rl, true, 200, 6050);
	ratelimit_done(rl, true, 200, 6050);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 6050), 0);
	ratelimit_free(rl);
}

/* Background stops at 60 %, user at 90 %, writes use the whole window. */
static void test_priorities(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	int64_t t = 0;
	int n;

	for (n = 0; ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, t) == 0; n++)
		ratelimit_done(rl, false, 200, t);
	ASSERT_EQ(n, 60);
	for (n = 0; ratelimit_acquire(rl, RL_PRIO_USER, false, t) == 0; n++)
		ratelimit_done(rl, false, 200, t);
	ASSERT_EQ(n, 30);
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, t), 0);
	for (n = 0; ratelimit_acquire(rl, RL_PRIO_WRITE, false, t) == 0; n++)
		ratelimit_done(rl, false, 200, t);
	ASSERT_EQ(n, 10);
	ratelimit_free(rl);

	/* a grep (background) running flat out never takes a save's slot */
	rl = mk(100, 10000, 5);
	for (t = 0; t < 60000; t += 10) {
		if (ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, t) == 0)
			ratelimit_done(rl, false, 200, t + 5);
		if (t % 1000 == 0) {
			ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, t), 0);
			ratelimit_done(rl, false, 200, t + 5);
		}
	}
	ratelimit_free(rl);

	/* tiny windows still give every class one slot */
	rl = mk(1, 1000, 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 0), 0);
	ratelimit_free(rl);
	/* an invalid class is treated as background */
	rl = mk(10, 1000, 1);
	for (n = 0; ratelimit_acquire(rl, (enum rl_prio)7, false, 0) == 0; n++)
		ratelimit_done(rl, false, 200, 0);
	ASSERT_EQ(n, 6);
	ratelimit_free(rl);
}

/* Over any interval-long stretch of (simulated) server arrival times, never
 * more than max requests, whatever the latency, with a greedy client. */
static void test_no_overrun_with_latency(void)
{
	struct ratelimit *rl = mk(10, 1000, 5);
	int64_t arrivals[2000];
	int n = 0;
	uint32_t seed = 12345;

	for (int64_t t = 0; t < 20000 && n < 2000; t++) {
		if (ratelimit_acquire(rl, RL_PRIO_WRITE, false, t) != 0)
			continue;
		/* arrival anywhere between send and answer, answer up to 300 ms later */
		seed = seed * 1103515245u + 12345u;
		int64_t lat = (seed >> 8) % 300;
		int64_t arr = t + (int64_t)((seed >> 4) % (uint32_t)(lat + 1));
		arrivals[n++] = arr;
		ratelimit_done(rl, false, 200, t + lat);
	}
	ASSERT_GT(n, 100);
	for (int i = 0; i < n; i++) {
		int in = 0;

		for (int j = 0; j < n; j++)
			if (arrivals[j] > arrivals[i] - 1000 && arrivals[j] <= arrivals[i])
				in++;
		ASSERT_LE(in, 10);
	}
	ratelimit_free(rl);
}

/* The server's Max/Interval replace ours; Remaining lower than our own
 * accounting means someone else spends the budget. */
static void test_header_adaptation(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_headers h = { .max = 190, .interval_ms = 10000, .remaining = -1,
				.daily = 500000, .daily_remaining = 499000, .retry_after_ms = -1 };
	struct rl_stats st;
	int n;

	ratelimit_note_headers(rl, &h, NULL, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.window_max, 190);
	ASSERT_EQ(st.daily_limit, 500000);
	ASSERT_EQ(st.daily_remaining, 499000);
	for (n = 0; ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0) == 0; n++)
		ratelimit_done(rl, false, 200, 0);
	ASSERT_EQ(n, 190);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.daily_remaining, 499000 - 190);
	ratelimit_free(rl);

	/* smaller limit and shorter interval; margin follows the interval */
	rl = mk(100, 10000, 5);
	h = (struct rl_headers){ .max = 10, .interval_ms = 1000, .remaining = -1,
				 .daily = -1, .daily_remaining = -1, .retry_after_ms = -1 };
	ratelimit_note_headers(rl, &h, NULL, 0);
	burst(rl, RL_PRIO_WRITE, false, 10, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 1000 + 100);
	/* insane values are ignored */
	h = (struct rl_headers){ .max = 100000000, .interval_ms = 5, .remaining = -1,
				 .daily = -1, .daily_remaining = -1, .retry_after_ms = -1 };
	ratelimit_note_headers(rl, &h, NULL, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.window_max, 10);
	ASSERT_EQ(st.window_ms, 1000);
	ratelimit_free(rl);

	/* Remaining: the server saw 8 of 10 used when our third request (of 3)
	 * arrived -> 5 requests were someone else's */
	{
		struct rl_ticket t1, t3, t4;

		rl = mk(10, 1000, 5);
		ratelimit_set_margins(rl, 0, -1);
		ASSERT(!ratelimit_others_recent(rl, 100));
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 100), 0);
		ratelimit_ticket(rl, &t1);
		ASSERT_EQ(t1.used, 1);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 100), 0);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 100), 0);
		ratelimit_ticket(rl, &t3);
		ASSERT_EQ(t3.used, 3);
		ratelimit_done(rl, false, 200, 110);
		ratelimit_done(rl, false, 200, 110);
		ratelimit_done(rl, false, 200, 110);
		h = (struct rl_headers){ .max = 10, .interval_ms = 1000, .remaining = 2,
					 .daily = -1, .daily_remaining = -1, .retry_after_ms = -1 };
		ratelimit_note_headers(rl, &h, &t3, 110);
		ratelimit_stats(rl, 110, &st);
		ASSERT_EQ(st.external, 5);
		ASSERT_EQ(st.left_in_window, 2);
		/* someone else spends the budget: for a window's span */
		ASSERT(ratelimit_others_recent(rl, 110));
		ASSERT(ratelimit_others_recent(rl, 1109));
		ASSERT(!ratelimit_others_recent(rl, 1110));
		/* the first request's answer, seen later, says the same: the
		 * server counted our 2 later grants and the 5 already known */
		h.remaining = 2;
		ratelimit_note_headers(rl, &h, &t1, 110);
		ratelimit_stats(rl, 110, &st);
		ASSERT_EQ(st.external, 5);
		/* without a ticket Remaining is not used; a higher Remaining
		 * never frees anything */
		h.remaining = 0;
		ratelimit_note_headers(rl, &h, NULL, 110);
		h.remaining = 9;
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 120), 0);
		ratelimit_ticket(rl, &t4);
		ratelimit_done(rl, false, 200, 130);
		ratelimit_note_headers(rl, &h, &t4, 130);
		ratelimit_stats(rl, 130, &st);
		ASSERT_EQ(st.external, 5);
		ASSERT_EQ(st.left_in_window, 1);
		ratelimit_free(rl);

		/* our own requests leaving our window before the answer is read
		 * do not look external: 5 sent at 0..10, the 6th granted at 990
		 * and answered at 1050 with the server having counted all 6 */
		rl = mk(10, 1000, 5);
		ratelimit_set_margins(rl, 0, -1);
		burst(rl, RL_PRIO_WRITE, false, 5, 10);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 990), 0);
		ratelimit_ticket(rl, &t4);
		ASSERT_EQ(t4.used, 6);
		ratelimit_done(rl, false, 200, 1050);
		h.remaining = 4;
		ratelimit_note_headers(rl, &h, &t4, 1050);
		ratelimit_stats(rl, 1050, &st);
		ASSERT_EQ(st.external, 0);
		ASSERT_EQ(st.left_in_window, 9);
		ASSERT(!ratelimit_others_recent(rl, 1050));
		ratelimit_free(rl);

		/* a server that counts searches in the window: extra requests
		 * up to our searches of the last window are not someone else */
		rl = mk(10, 1000, 5);
		ratelimit_set_margins(rl, 0, -1);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 100), 0);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 100), 0);
		ratelimit_done(rl, true, 200, 150);
		ratelimit_done(rl, true, 200, 150);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 200), 0);
		ratelimit_ticket(rl, &t4);
		ratelimit_done(rl, false, 200, 250);
		h.remaining = 7; /* 3 counted: this one and the 2 searches */
		ratelimit_note_headers(rl, &h, &t4, 250);
		ASSERT(!ratelimit_others_recent(rl, 250));
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 300), 0);
		ratelimit_ticket(rl, &t4);
		ratelimit_done(rl, false, 200, 350);
		h.remaining = 3; /* 3 more than ours and our 2 searches */
		ratelimit_note_headers(rl, &h, &t4, 350);
		ASSERT(ratelimit_others_recent(rl, 350));
		ratelimit_free(rl);
	}
}

static void test_429_ten_secondly(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_stats st;

	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 0), 0);
	ratelimit_done(rl, false, 429, 50);
	ratelimit_note_429(rl, RL_POLICY_TEN_SECONDLY, false, -1, 50);
	/* every class of the window waits out the window + margin */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 50), 10250);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 5050), 5250);
	/* the search budget is separate */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 50), 0);
	ratelimit_done(rl, true, 200, 60);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 10300), 0);
	ratelimit_stats(rl, 10300, &st);
	ASSERT_EQ(st.n429[RL_POLICY_TEN_SECONDLY], 1);
	ratelimit_free(rl);

	/* Retry-After replaces the policy's pause */
	rl = mk(100, 10000, 5);
	ratelimit_note_429(rl, RL_POLICY_TEN_SECONDLY, false, 3000, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 3000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 3000), 0);
	/* but never less than 100 ms */
	ratelimit_note_429(rl, RL_POLICY_TEN_SECONDLY, false, 0, 4000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 4000), 100);
	ratelimit_free(rl);

	/* unknown policy on a non-search call = ten-secondly */
	rl = mk(100, 10000, 5);
	ratelimit_note_429(rl, RL_POLICY_UNKNOWN, false, -1, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 10250);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.n429[RL_POLICY_TEN_SECONDLY], 1);
	ASSERT_EQ(st.paused_ms, 10250);
	ratelimit_free(rl);
}

static void test_429_secondly(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_stats st;

	ratelimit_note_429(rl, RL_POLICY_SECONDLY, true, -1, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 0), 1000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ratelimit_done(rl, false, 200, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 1000), 0);
	ratelimit_stats(rl, 1000, &st);
	ASSERT_EQ(st.n429[RL_POLICY_SECONDLY], 1);
	/* unknown policy on a search call = secondly; Retry-After honoured */
	ratelimit_note_429(rl, RL_POLICY_UNKNOWN, true, 2000, 1000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 1000), 2000);
	ratelimit_stats(rl, 1000, &st);
	ASSERT_EQ(st.n429[RL_POLICY_SECONDLY], 2);
	ASSERT_EQ(st.search_paused_ms, 2000);
	ratelimit_free(rl);
}

static void test_429_daily(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_stats st;

	ratelimit_set_daily_probe(rl, 60000);
	ratelimit_note_429(rl, RL_POLICY_DAILY, false, -1, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT(st.daily_paused);
	ASSERT_EQ(st.n429[RL_POLICY_DAILY], 1);
	/* reads and background are held, search too; writes go on */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 0), 60000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, true, 10), 59990);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 10), 0);
	ratelimit_done(rl, false, 429, 20);
	/* at probe time exactly one held call goes through */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 60000), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 60000), 60000);
	/* a non-429 answer ends the pause */
	ratelimit_done(rl, false, 200, 60100);
	ratelimit_stats(rl, 60100, &st);
	ASSERT(!st.daily_paused);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 60100), 0);
	ratelimit_done(rl, false, 200, 60100);
	/* a network failure (status 0) does not end it */
	ratelimit_note_429(rl, RL_POLICY_DAILY, false, 5000, 70000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 70000), 0);
	ratelimit_done(rl, false, 0, 70001);
	ratelimit_stats(rl, 70001, &st);
	ASSERT(st.daily_paused);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 70001), 4999);
	ratelimit_free(rl);
}

/* The daily budget keeps reserves: background stops at 5 % left, users at
 * 1 %, writes go on to the end. */
static void test_daily_reserve(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_headers h = { .max = -1, .interval_ms = -1, .remaining = -1,
				.daily = 10000, .daily_remaining = 501, .retry_after_ms = -1 };
	struct rl_stats st;

	ratelimit_set_daily_probe(rl, 1000);
	ratelimit_note_headers(rl, &h, NULL, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 0), 0); /* 501 -> 500 */
	ratelimit_done(rl, false, 200, 0);
	/* 500 <= 5 %: background gets one probe now, then waits */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 0), 0);
	ratelimit_done(rl, false, 200, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 0), 1000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 0), 0);
	ratelimit_done(rl, false, 200, 0);
	h.daily_remaining = 100;
	ratelimit_note_headers(rl, &h, NULL, 0);
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_USER, false, 1), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 1), 0);
	ratelimit_done(rl, false, 200, 1);
	/* the budget comes back (new day): everyone runs again */
	h.daily_remaining = 9999;
	ratelimit_note_headers(rl, &h, NULL, 2);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, false, 2), 0);
	ratelimit_done(rl, false, 200, 2);
	ratelimit_stats(rl, 2, &st);
	ASSERT_EQ(st.daily_remaining, 9998);
	ratelimit_free(rl);
}

/* Search: 5 per second + margin (20 ms), independent of the 10 s window. */
static void test_search_budget(void)
{
	struct ratelimit *rl = mk(100, 10000, 5);
	struct rl_stats st;
	int n;

	for (n = 0; ratelimit_acquire(rl, RL_PRIO_WRITE, true, 0) == 0; n++)
		ratelimit_done(rl, true, 200, 0);
	ASSERT_EQ(n, 5);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 0), 1020);
	/* the window is untouched */
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.used_in_window, 0);
	ASSERT_EQ(st.search_used, 5);
	burst(rl, RL_PRIO_WRITE, false, 100, 0);
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 1020), 0);
	ratelimit_free(rl);

	/* the window being full does not hold search back, and priorities
	 * apply to search too (background 3 of 5) */
	rl = mk(100, 10000, 5);
	for (n = 0; ratelimit_acquire(rl, RL_PRIO_BACKGROUND, true, 0) == 0; n++)
		ratelimit_done(rl, true, 200, 0);
	ASSERT_EQ(n, 3);
	ratelimit_free(rl);

	/* no user reserve on search: a cold listing's search side (user
	 * class) gets all 5 of a second, not 4 (90 % rounded down), while the
	 * 10 s window keeps its user reserve (90 of 100) */
	rl = mk(100, 10000, 5);
	for (n = 0; ratelimit_acquire(rl, RL_PRIO_USER, true, 0) == 0; n++)
		ratelimit_done(rl, true, 200, 0);
	ASSERT_EQ(n, 5);
	for (n = 0; ratelimit_acquire(rl, RL_PRIO_USER, false, 0) == 0; n++)
		ratelimit_done(rl, false, 200, 0);
	ASSERT_EQ(n, 90);
	ratelimit_free(rl);

	/* shorter search interval for tests */
	rl = mk(100, 10000, 2);
	ratelimit_set_search_interval(rl, 200);
	burst(rl, RL_PRIO_WRITE, true, 2, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 0), 204);
	ratelimit_free(rl);
}

/* Count the grants of one class at time t (each done at once) until a wait. */
static int fill(struct ratelimit *rl, enum rl_prio p, bool search, int64_t t)
{
	int n = 0;

	while (ratelimit_acquire(rl, p, search, t) == 0) {
		ratelimit_done(rl, search, 200, t);
		ASSERT_LT(++n, 100000);
	}
	return n;
}

/* A share: 1/parts of each budget, classes within it, maxima kept. */
static void test_share_cap(void)
{
	struct ratelimit *rl = mk(20, 2000, 5); /* margins 200 and 20 ms */
	struct rl_headers h = { .max = 30, .interval_ms = 2000, .remaining = -1,
				.daily = -1, .daily_remaining = -1, .retry_after_ms = -1 };
	struct rl_ticket t;
	struct rl_stats st;

	ratelimit_set_share(rl, 3, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.share_parts, 3);
	ASSERT_EQ(st.share_window_max, 6);
	ASSERT_EQ(st.share_search_max, 1);
	ASSERT_EQ(st.window_max, 20);  /* the budget itself is kept */
	ASSERT_EQ(st.left_in_window, 6);
	ASSERT_EQ(st.share_lift_ms, 0);
	/* the classes take their shares of the share: 60 %, 90 %, all */
	ASSERT_EQ(fill(rl, RL_PRIO_BACKGROUND, false, 0), 3);
	ASSERT_EQ(fill(rl, RL_PRIO_USER, false, 0), 2);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 0), 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 2200);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, true, 0), 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 0), 1020);
	/* the cap is a divisor: it follows the server's maximum */
	ratelimit_note_headers(rl, &h, NULL, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.window_max, 30);
	ASSERT_EQ(st.share_window_max, 10);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 0), 4);
	/* under a share, Remaining does not count the others as external */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 2200), 0);
	ratelimit_ticket(rl, &t);
	ASSERT_EQ(t.share_parts, 3);
	ratelimit_done(rl, false, 200, 2200);
	h.remaining = 0;
	ratelimit_note_headers(rl, &h, &t, 2200);
	ratelimit_stats(rl, 2200, &st);
	ASSERT_EQ(st.external, 0);
	ASSERT_EQ(st.used_in_window, 1);
	ratelimit_free(rl);

	/* a cap below what the window already holds: wait until enough left */
	rl = mk(20, 2000, 5);
	burst(rl, RL_PRIO_WRITE, false, 10, 0);
	burst(rl, RL_PRIO_WRITE, false, 10, 1000);
	ratelimit_set_share(rl, 2, 1000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 1000), 2200 - 1000 + 1000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 3199), 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 3200), 0);
	ratelimit_free(rl);

	/* 1 part or less is no cap; values below 1 are no cap either */
	rl = mk(20, 2000, 5);
	ratelimit_set_share(rl, 1, 0);
	ratelimit_set_share(rl, -5, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.share_parts, 1);
	ASSERT_EQ(st.share_lift_ms, 0);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 0), 20);
	ratelimit_free(rl);

	/* more parts than requests: still one each */
	rl = mk(20, 2000, 5);
	ratelimit_set_share(rl, 50, 0);
	ASSERT_EQ(fill(rl, RL_PRIO_BACKGROUND, false, 0), 1);
	ASSERT_EQ(fill(rl, RL_PRIO_BACKGROUND, true, 0), 1);
	ratelimit_free(rl);
}

/* Lifting a share waits a span, so that what was sent under it has left the
 * server's window before the whole budget is used again. */
static void test_share_lift(void)
{
	struct ratelimit *rl = mk(20, 2000, 5);
	struct rl_ticket t;
	struct rl_stats st;

	ratelimit_set_share(rl, 4, 0);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 0), 5);
	ratelimit_set_share(rl, 1, 100);
	ratelimit_stats(rl, 100, &st);
	ASSERT_EQ(st.share_parts, 4);
	ASSERT_EQ(st.share_lift_ms, 2200);
	/* asking again does not postpone it */
	ratelimit_set_share(rl, 0, 1000);
	ratelimit_stats(rl, 1000, &st);
	ASSERT_EQ(st.share_lift_ms, 1300);
	/* still capped until then (the first five leave at 2200 anyway); a
	 * wait ends with the lift, not when the capped window has room */
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 2200), 5);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 2200), 100);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 2299), 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 2300), 0);
	ratelimit_ticket(rl, &t);
	ASSERT_EQ(t.share_parts, 1);
	ratelimit_done(rl, false, 200, 2300);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 2300), 20 - 6);
	ratelimit_stats(rl, 2300, &st);
	ASSERT_EQ(st.share_parts, 1);
	ASSERT_EQ(st.share_lift_ms, 0);
	ASSERT_EQ(st.share_window_max, 20);
	ratelimit_free(rl);

	/* a new cap cancels a pending lift */
	rl = mk(20, 2000, 5);
	ratelimit_set_share(rl, 2, 0);
	ratelimit_set_share(rl, 1, 0);
	ratelimit_set_share(rl, 3, 500);
	ratelimit_stats(rl, 5000, &st);
	ASSERT_EQ(st.share_parts, 3);
	ASSERT_EQ(st.share_lift_ms, 0);
	ASSERT_EQ(fill(rl, RL_PRIO_WRITE, false, 5000), 6);
	ratelimit_free(rl);

	/* the lift waits the longer span of the two budgets */
	rl = mk(20, 500, 5);
	ratelimit_set_search_interval(rl, 1000);
	ratelimit_set_share(rl, 2, 0);
	ratelimit_set_share(rl, 1, 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.share_lift_ms, 1020);
	ratelimit_free(rl);
}

/* A grant taken back leaves no trace in the window. */
static void test_cancel(void)
{
	struct ratelimit *rl = mk(2, 1000, 1);
	struct rl_stats st;

	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ratelimit_cancel(rl, false);
	ratelimit_stats(rl, 0, &st);
	ASSERT_EQ(st.inflight, 1);
	ASSERT_EQ(st.used_in_window, 1);
	ASSERT_EQ(st.granted, 1);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
	ratelimit_done(rl, false, 200, 10);
	ratelimit_done(rl, false, 200, 10);
	/* nothing in flight: a cancel is ignored, the two stamps stay */
	ratelimit_cancel(rl, false);
	ratelimit_stats(rl, 10, &st);
	ASSERT_EQ(st.used_in_window, 2);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 10), 1000 + 100);
	/* search grants are taken back from the search budget */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 10), 0);
	ratelimit_cancel(rl, true);
	ratelimit_stats(rl, 10, &st);
	ASSERT_EQ(st.search_used, 0);
	ASSERT_EQ(st.used_in_window, 2);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 10), 0);
	ratelimit_free(rl);
}

/* A 429 that does not say "search counts in the 10 s window" leaves search
 * out of it: after each, with the pauses over and the window full, a search
 * is still granted at once and takes no window slot. */
static void test_search_not_in_window(void)
{
	static const struct {
		enum rl_policy policy;
		bool search;
	} cases[] = {
		{ RL_POLICY_SECONDLY, true },      /* the search budget's own 429 */
		{ RL_POLICY_UNKNOWN, true },       /* no policy named: taken as SECONDLY */
		{ RL_POLICY_TEN_SECONDLY, false }, /* the window's 429 on a window call */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ratelimit *rl = mk(10, 1000, 5);
		struct rl_stats st;

		/* before any 429: a full window does not hold a search */
		burst(rl, RL_PRIO_WRITE, false, 10, 0);
		ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 0), 0);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 0), 0);
		ratelimit_done(rl, true, 429, 5);
		ASSERT(!ratelimit_note_429(rl, cases[i].policy, cases[i].search, -1, 5));
		ratelimit_stats(rl, 5, &st);
		ASSERT(!st.search_in_window);
		/* pauses over (1100 ms at most), the window full again */
		burst(rl, RL_PRIO_WRITE, false, 10, 5000);
		ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 5000), 0);
		ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 5000), 0);
		ratelimit_stats(rl, 5000, &st);
		ASSERT_EQ(st.used_in_window, 10);
		ASSERT_EQ(st.inflight, 0);
		ratelimit_done(rl, true, 200, 5010);
		ratelimit_stats(rl, 5010, &st);
		ASSERT_EQ(st.used_in_window, 10);
		ASSERT(!st.search_in_window);
		ratelimit_free(rl);
	}
}

/* A search refused for the 10 s window (TEN_SECONDLY named by the server)
 * teaches the limiter that the server counts searches there: from then on a
 * search waits for room in both budgets, holds a slot of both, and done or
 * cancel give back both. Window 10/1 s (margin 100 ms), search 5/s (20 ms). */
static void test_search_in_window_learned(void)
{
	struct ratelimit *rl = mk(10, 1000, 5);
	struct rl_headers h = { .max = 10, .interval_ms = 1000, .remaining = -1, .daily = -1,
				.daily_remaining = -1, .retry_after_ms = -1 };
	struct rl_ticket tk;
	struct rl_stats st;

	/* search A on its way when search B is refused */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 0), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 0), 0);
	ratelimit_stats(rl, 0, &st);
	ASSERT(!st.search_in_window);
	ASSERT_EQ(st.used_in_window, 0);
	ratelimit_done(rl, true, 429, 5);
	ASSERT(ratelimit_note_429(rl, RL_POLICY_TEN_SECONDLY, true, -1, 5));
	ratelimit_stats(rl, 5, &st);
	ASSERT(st.search_in_window);
	ASSERT_EQ(st.n429[RL_POLICY_TEN_SECONDLY], 1);
	/* A may be counted there already: it holds a window slot now; the
	 * refused B does not (the server did not count it) */
	ASSERT_EQ(st.used_in_window, 1);
	ASSERT_EQ(st.inflight, 1);
	/* learned once: a second such 429 teaches nothing new */
	ASSERT(!ratelimit_note_429(rl, RL_POLICY_TEN_SECONDLY, true, -1, 6));
	/* both budgets paused for the window's span (1100 ms) */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 6), 1100);
	ratelimit_done(rl, true, 200, 10);
	ratelimit_stats(rl, 10, &st);
	ASSERT_EQ(st.inflight, 0);
	ASSERT_EQ(st.used_in_window, 1); /* stamped in the window */
	ASSERT_EQ(st.search_used, 2);
	ratelimit_stats(rl, 1110, &st);
	ASSERT_EQ(st.used_in_window, 0);

	/* a granted search takes a window slot (user share: 9 of 10) */
	burst(rl, RL_PRIO_USER, false, 8, 2000);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 2000), 0);
	ratelimit_stats(rl, 2000, &st);
	ASSERT_EQ(st.used_in_window, 9);
	ASSERT_EQ(st.inflight, 1);
	ASSERT_EQ(st.search_used, 1);
	ASSERT_EQ(st.left_in_window, 1);
	/* so the user share is spent: a user window call waits, a write goes */
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_USER, false, 2000), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, false, 2000), 0);
	ratelimit_done(rl, false, 200, 2000);
	/* the window is full: a search waits for it although the search
	 * budget has room (1 of 5), until the first stamp leaves (2000 + 1100) */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_WRITE, true, 2000), 1100);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 2000), 1100);
	/* done: stamped in both */
	ratelimit_done(rl, true, 200, 2050);
	ratelimit_stats(rl, 2050, &st);
	ASSERT_EQ(st.inflight, 0);
	ASSERT_EQ(st.used_in_window, 10);
	ASSERT_EQ(st.search_used, 1);
	/* at 3100 the ten stamps of 2000 have left, the search's (2050) not */
	ratelimit_stats(rl, 3100, &st);
	ASSERT_EQ(st.used_in_window, 1);
	ASSERT_EQ(st.search_used, 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 3100), 0);
	ratelimit_stats(rl, 3100, &st);
	ASSERT_EQ(st.used_in_window, 2);
	ASSERT_EQ(st.inflight, 1);
	ASSERT_EQ(st.search_used, 1);
	/* cancel: released from both */
	ratelimit_cancel(rl, true);
	ratelimit_stats(rl, 3100, &st);
	ASSERT_EQ(st.used_in_window, 1);
	ASSERT_EQ(st.inflight, 0);
	ASSERT_EQ(st.search_used, 0);
	ratelimit_stats(rl, 3150, &st);
	ASSERT_EQ(st.used_in_window, 0);

	/* a search counts as ours in the window: a Remaining that shows it
	 * is no one else's request */
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 10000), 0);
	ratelimit_ticket(rl, &tk);
	ASSERT_EQ(tk.used, 1);
	ratelimit_done(rl, true, 200, 10010);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, false, 10020), 0);
	ratelimit_ticket(rl, &tk);
	ASSERT_EQ(tk.used, 2);
	ratelimit_done(rl, false, 200, 10030);
	h.remaining = 8;
	ratelimit_note_headers(rl, &h, &tk, 10030);
	ratelimit_stats(rl, 10030, &st);
	ASSERT_EQ(st.external, 0);
	ASSERT_EQ(st.used_in_window, 2);

	/* background searches keep to the window's background share (6 of
	 * 10), and a share cap (1/2: 5, user 4) applies to searches as to
	 * any window call */
	burst(rl, RL_PRIO_WRITE, false, 4, 10030);
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_BACKGROUND, true, 10030), 0);
	ASSERT_EQ(ratelimit_acquire(rl, RL_PRIO_USER, true, 10030), 0);
	ratelimit_cancel(rl, true);
	ratelimit_set_share(rl, 2, 10030);
	ASSERT_GT(ratelimit_acquire(rl, RL_PRIO_USER, true, 10030), 0);
	ratelimit_free(rl);
}

static void test_policy_names(void)
{
	ASSERT_EQ(ratelimit_policy_from_name("TEN_SECONDLY_ROLLING"), RL_POLICY_TEN_SECONDLY);
	ASSERT_EQ(ratelimit_policy_from_name("ten_secondly_rolling"), RL_POLICY_TEN_SECONDLY);
	ASSERT_EQ(ratelimit_policy_from_name("SECONDLY"), RL_POLICY_SECONDLY);
	ASSERT_EQ(ratelimit_policy_from_name("DAILY"), RL_POLICY_DAILY);
	ASSERT_EQ(ratelimit_policy_from_name("WEEKLY"), RL_POLICY_UNKNOWN);
	ASSERT_EQ(ratelimit_policy_from_name(NULL), RL_POLICY_UNKNOWN);
	ASSERT_STR(ratelimit_policy_name(RL_POLICY_DAILY), "DAILY");
	ASSERT_STR(ratelimit_policy_name(RL_POLICY_TEN_SECONDLY), "TEN_SECONDLY_ROLLING");
}

static void test_backoff(void)
{
	/* bounds: [0, min(10000, 200 * 2^n)] */
	ASSERT_EQ(ratelimit_backoff_ms(0, 0), 0);
	ASSERT_EQ(ratelimit_backoff_ms(0, 200), 200);
	ASSERT_EQ(ratelimit_backoff_ms(0, 201), 0);
	ASSERT_EQ(ratelimit_backoff_ms(1, 400), 400);
	ASSERT_EQ(ratelimit_backoff_ms(2, 800), 800);
	ASSERT_EQ(ratelimit_backoff_ms(5, 6400), 6400);
	ASSERT_EQ(ratelimit_backoff_ms(6, 10000), 10000);
	ASSERT_EQ(ratelimit_backoff_ms(6, 10001), 0);
	for (unsigned a = 0; a < 100; a++) {
		int64_t cap = a < 6 ? (200 << a) : 10000;

		if (cap > 10000)
			cap = 10000;
		ASSERT_LE(ratelimit_backoff_ms(a, UINT32_MAX), cap);
		ASSERT_GE(ratelimit_backoff_ms(a, UINT32_MAX), 0);
		ASSERT_EQ(ratelimit_backoff_ms(a, (uint32_t)cap), cap);
		ASSERT_LE(ratelimit_backoff_ms(a, 0xdeadbeef), cap);
	}
	ASSERT_EQ(ratelimit_backoff_ms(UINT32_MAX, 10000), 10000);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_window_accounting);
	RUN(test_inflight_counts_until_done);
	RUN(test_priorities);
	RUN(test_no_overrun_with_latency);
	RUN(test_header_adaptation);
	RUN(test_429_ten_secondly);
	RUN(test_429_secondly);
	RUN(test_429_daily);
	RUN(test_daily_reserve);
	RUN(test_search_budget);
	RUN(test_share_cap);
	RUN(test_share_lift);
	RUN(test_cancel);
	RUN(test_search_not_in_window);
	RUN(test_search_in_window_learned);
	RUN(test_policy_names);
	RUN(test_backoff);
	return 0;
}
