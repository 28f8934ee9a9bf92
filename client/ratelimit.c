/* ratelimit.c - see ratelimit.h for the accounting model. */
#include "client/ratelimit.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX 100
#define DEFAULT_INTERVAL_MS 10000
#define DEFAULT_SEARCH_PER_SEC 5
#define DEFAULT_SEARCH_INTERVAL_MS 1000
#define MARGIN_CAP_MS 250
/* The search budget's margin: a fiftieth of its interval (20 ms of the
 * second). A request's stamp is its completion, already later than the
 * server's count of it by the answer's way back (and the server's work);
 * the margin only covers clock granularity. A tenth, as the 10-s window has,
 * made each of a cold listing's five search slots turn every 1.1 s + a
 * round trip instead of 1.0 s + a round trip. */
#define MARGIN_DIV 10
#define SEARCH_MARGIN_DIV 50
#define SECONDLY_PAUSE_MS 1000
#define MIN_429_PAUSE_MS 100 /* even "Retry-After: 0" must not make a 429 loop spin */
#define DEFAULT_DAILY_PROBE_MS (5 * 60 * 1000)

/* Header values outside these bounds are ignored, so a broken or hostile
 * response cannot make us allocate a huge window or stop for a day. */
#define SANE_MAX_LIMIT 100000
#define SANE_MIN_INTERVAL_MS 100
#define SANE_MAX_INTERVAL_MS (60 * 60 * 1000)
#define SANE_MAX_RETRY_AFTER_MS (24 * 60 * 60 * 1000)

/* Share of a window each class may fill, in percent (see ratelimit.h). */
static const int prio_share[] = {
	[RL_PRIO_WRITE] = 100,
	[RL_PRIO_USER] = 90,
	[RL_PRIO_BACKGROUND] = 60,
};

/* Share of the daily limit held back from each class, per mille. */
static const int daily_reserve_permille[] = {
	[RL_PRIO_WRITE] = 0,
	[RL_PRIO_USER] = 10,
	[RL_PRIO_BACKGROUND] = 50,
};

#define SEARCH_RING 256

/* One budget: the 10 s window or the search second. */
struct rl_window {
	int max;
	int64_t interval_ms;
	int64_t margin_ms;
	bool margin_auto;     /* margin follows interval changes */
	int margin_div;       /* the automatic margin: interval / margin_div, capped */
	int inflight;         /* granted, not yet done: no expiry */
	int64_t *done;        /* completion times still in the window, ascending */
	int ndone;
	int cap;              /* allocated length of done; always >= max */
	int64_t paused_until; /* 429 pause; 0 if none */
};

struct ratelimit {
	struct rl_window win;
	struct rl_window search;
	int64_t daily_limit;     /* -1 unknown */
	int64_t daily_remaining; /* -1 unknown */
	bool daily_paused;
	int64_t daily_probe_at;  /* next time a held class may send one probe */
	int64_t daily_probe_ms;
	uint64_t granted;
	uint64_t win_granted;    /* grants of the window class */
	uint64_t denied;
	uint64_t n429[RL_POLICY_COUNT];
	uint64_t external;
	bool external_seen;
	int64_t external_at;     /* when the last one was found */
	/* When our last searches were granted (a ring): should the server
	 * count searches in the window, extra requests up to their number may
	 * be ours, not another client's. */
	int64_t search_at[SEARCH_RING];
	unsigned search_n;       /* searches granted so far */
	int share_parts;         /* > 1: capped at 1/share_parts of each budget */
	int64_t share_lift_at;   /* the cap goes at this time; 0: no lift pending */
	/* The server counts searches in the 10 s window too (learned from a
	 * search's TEN_SECONDLY 429): every search in flight, and every one
	 * granted from then on, holds a slot of win as well as of search. */
	bool search_in_window;
};

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t auto_margin(int64_t interval_ms, int div)
{
	int64_t m = interval_ms / div;

	return m < MARGIN_CAP_MS ? m : MARGIN_CAP_MS;
}

/* Make room for n completion stamps. Returns 0 or -1 (nothing changed). */
static int window_reserve(struct rl_window *w, int n)
{
	int64_t *p;

	if (n <= w->cap)
		return 0;
	p = realloc(w->done, (size_t)n * sizeof(*p));
	if (!p)
		return -1;
	w->done = p;
	w->cap = n;
	return 0;
}

static int window_init(struct rl_window *w, int max, int64_t interval_ms, int margin_div)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
	w->interval_ms = interval_ms;
	w->margin_div = margin_div;
	w->margin_ms = auto_margin(interval_ms, margin_div);
	w->margin_auto = true;
	return window_reserve(w, max);
}

static int64_t window_span(const struct rl_window *w)
{
	return w->interval_ms + w->margin_ms;
}

/* Drop completion stamps that have left the window. */
static void window_expire(struct rl_window *w, int64_t now_ms)
{
	int k = 0;

	while (k < w->ndone && w->done[k] + window_span(w) <= now_ms)
		k++;
	if (k == 0)
		return;
	memmove(w->done, w->done + k, (size_t)(w->ndone - k) * sizeof(*w->done));
	w->ndone -= k;
}

/* Insert a completion stamp, keeping done[] sorted. Callers guarantee room:
 * every stamp was first an in-flight grant, and grants never exceed max. */
static void window_insert(struct rl_window *w, int64_t t)
{
	int i = w->ndone;

	if (w->ndone >= w->cap)
		return;
	while (i > 0 && w->done[i - 1] > t) {
		w->done[i] = w->done[i - 1];
		i--;
	}
	w->done[i] = t;
	w->ndone++;
}

static int window_used(const struct rl_window *w)
{
	return w->inflight + w->ndone;
}

/* The cap of ratelimit_set_share() in force at now_ms (1: none); a lift
 * that is due is carried out. */
static int share_parts(struct ratelimit *rl, int64_t now_ms)
{
	if (rl->share_lift_at && now_ms >= rl->share_lift_at) {
		rl->share_parts = 1;
		rl->share_lift_at = 0;
	}
	return rl->share_parts > 1 ? rl->share_parts : 1;
}

/* A window's maximum under a share of 1/parts. */
static int share_max(const struct rl_window *w, int parts)
{
	int m = parts > 1 ? w->max / parts : w->max;

	return m < 1 ? 1 : m;
}

/* The search budget (5 a second) is too small for a user reserve: 90 % of 5
 * rounds down to 4, a fifth of the budget, and a cold listing's search side
 * (a user class caller that pages the whole second long) then brings 4
 * pages a second instead of 5. The only write-class search (a create's
 * duplicate check after a lost answer) still gets the next slot that
 * frees, within a span; background searches keep their 60 %. */
static const int search_share[] = {
	[RL_PRIO_WRITE] = 100,
	[RL_PRIO_USER] = 100,
	[RL_PRIO_BACKGROUND] = 60,
};

static int class_cap(int max, enum rl_prio prio, bool search)
{
	int cap = (int)((int64_t)max * (search ? search_share : prio_share)[prio] / 100);

	return cap < 1 ? 1 : cap;
}

/* ms until the window, holding at most max requests, has room for one more
 * request of class prio; 0 now. */
static int64_t window_wait(struct ratelimit *rl, struct rl_window *w, int max, enum rl_prio prio,
			   int64_t now_ms)
{
	int cap = class_cap(max, prio, w == &rl->search);
	int used, k;
	int64_t wait = 0;

	window_expire(w, now_ms);
	if (w->paused_until > now_ms)
		wait = w->paused_until - now_ms;
	used = window_used(w);
	if (used < cap)
		return wait;
	/* Requests leave in order done[0], done[1], …, then the in-flight ones
	 * (each no earlier than a full span after it completes). Room appears
	 * once the (used - cap)-th of them has left. */
	k = used - cap;
	if (k < w->ndone)
		return max64(wait, max64(1, w->done[k] + window_span(w) - now_ms));
	return max64(wait, window_span(w));
}

static bool prio_valid(enum rl_prio prio)
{
	return prio == RL_PRIO_WRITE || prio == RL_PRIO_USER || prio == RL_PRIO_BACKGROUND;
}

struct ratelimit *ratelimit_new(int max, int64_t interval_ms, int search_per_sec)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return NULL;
	if (max <= 0 || max > SANE_MAX_LIMIT)
		max = DEFAULT_MAX;
	if (interval_ms <= 0 || interval_ms > SANE_MAX_INTERVAL_MS)
		interval_ms = DEFAULT_INTERVAL_MS;
	if (search_per_sec <= 0 || search_per_sec > SANE_MAX_LIMIT)
		search_per_sec = DEFAULT_SEARCH_PER_SEC;
	if (window_init(&rl->win, max, interval_ms, MARGIN_DIV) < 0 ||
	    window_init(&rl->search, search_per_sec, DEFAULT_SEARCH_INTERVAL_MS,
			SEARCH_MARGIN_DIV) < 0) {
		ratelimit_free(rl);
		return NULL;
	}
	rl->daily_limit = -1;
	rl->daily_remaining = -1;
	rl->daily_probe_ms = DEFAULT_DAILY_PROBE_MS;
	rl->share_parts = 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->win.done);
	free(rl->search.done);
	free(rl);
}

void ratelimit_set_search_interval(struct ratelimit *rl, int64_t interval_ms)
{
	if (interval_ms <= 0 || interval_ms > SANE_MAX_INTERVAL_MS)
		return;
	rl->search.interval_ms = interval_ms;
	if (rl->search.margin_auto)
		rl->search.margin_ms = auto_margin(interval_ms, rl->search.margin_div);
}

void ratelimit_set_margins(struct ratelimit *rl, int64_t window_margin_ms, int64_t search_margin_ms)
{
	if (window_margin_ms >= 0) {
		rl->win.margin_ms = window_margin_ms;
		rl->win.margin_auto = false;
	}
	if (search_margin_ms >= 0) {
		rl->search.margin_ms = search_margin_ms;
		rl->search.margin_auto = false;
	}
}

void ratelimit_set_daily_probe(struct ratelimit *rl, int64_t probe_ms)
{
	if (probe_ms > 0)
		rl->daily_probe_ms = probe_ms;
}

void ratelimit_set_share(struct ratelimit *rl, int parts, int64_t now_ms)
{
	if (parts > 1) {
		rl->share_parts = parts;
		rl->share_lift_at = 0;
		return;
	}
	if (share_parts(rl, now_ms) <= 1 || rl->share_lift_at)
		return;
	rl->share_lift_at = now_ms + max64(window_span(&rl->win), window_span(&rl->search));
}

/* Is class prio held back by the daily budget (a DAILY 429, or the budget
 * down to the class's reserve)? Writes never are: they are what the reserve
 * is kept for, and a write that meets a DAILY 429 is not retried anyway. */
static bool daily_held(const struct ratelimit *rl, enum rl_prio prio)
{
	int64_t reserve;

	if (prio == RL_PRIO_WRITE)
		return false;
	if (rl->daily_paused)
		return true;
	if (rl->daily_limit <= 0 || rl->daily_remaining < 0)
		return false;
	reserve = rl->daily_limit * daily_reserve_permille[prio] / 1000;
	return rl->daily_remaining <= reserve;
}

/* ms until w has room for one request of class prio under the share in
 * force (parts); 0 now. */
static int64_t budget_wait(struct ratelimit *rl, struct rl_window *w, int parts, enum rl_prio prio,
			   int64_t now_ms)
{
	int64_t wait = window_wait(rl, w, share_max(w, parts), prio, now_ms);

	/* a cap being lifted: room may come with the lift */
	if (parts > 1 && rl->share_lift_at && wait > rl->share_lift_at - now_ms)
		wait = max64(rl->share_lift_at - now_ms, window_wait(rl, w, w->max, prio, now_ms));
	return wait;
}

/* Does a search (search true) hold a slot of the 10 s window too? */
static bool holds_win(const struct ratelimit *rl, bool search)
{
	return search && rl->search_in_window;
}

int64_t ratelimit_acquire(struct ratelimit *rl, enum rl_prio prio, bool search, int64_t now_ms)
{
	struct rl_window *w = search ? &rl->search : &rl->win;
	bool probe = false;
	int64_t wait;
	int parts;

	if (!prio_valid(prio))
		prio = RL_PRIO_BACKGROUND;
	parts = share_parts(rl, now_ms);
	wait = budget_wait(rl, w, parts, prio, now_ms);
	/* counted in the 10 s window too: room in both, with the window's
	 * class shares, as a window request */
	if (holds_win(rl, search))
		wait = max64(wait, budget_wait(rl, &rl->win, parts, prio, now_ms));
	if (daily_held(rl, prio)) {
		if (rl->daily_probe_at > now_ms)
			wait = max64(wait, rl->daily_probe_at - now_ms);
		else
			probe = true;
	}
	if (wait > 0) {
		rl->denied++;
		return wait;
	}
	if (probe)
		rl->daily_probe_at = now_ms + rl->daily_probe_ms;
	w->inflight++;
	rl->granted++;
	if (holds_win(rl, search))
		rl->win.inflight++;
	if (w == &rl->win || holds_win(rl, search))
		rl->win_granted++;
	else
		rl->search_at[rl->search_n++ % SEARCH_RING] = now_ms;
	if (rl->daily_remaining > 0)
		rl->daily_remaining--;
	return 0;
}

void ratelimit_done(struct ratelimit *rl, bool search, long http_status, int64_t now_ms)
{
	struct rl_window *w = search ? &rl->search : &rl->win;

	if (w->inflight <= 0)
		return;
	w->inflight--;
	window_insert(w, now_ms);
	if (holds_win(rl, search) && rl->win.inflight > 0) {
		rl->win.inflight--;
		window_insert(&rl->win, now_ms);
	}
	/* Any answer but a 429 means the server is taking calls again. An
	 * answer to a request sent before the DAILY 429 can end the pause
	 * early; the next call then meets the 429 again and re-pauses. */
	if (http_status > 0 && http_status != 429)
		rl->daily_paused = false;
}

void ratelimit_cancel(struct ratelimit *rl, bool search)
{
	struct rl_window *w = search ? &rl->search : &rl->win;

	if (w->inflight <= 0)
		return;
	w->inflight--;
	if (holds_win(rl, search) && rl->win.inflight > 0)
		rl->win.inflight--;
	if (rl->granted > 0)
		rl->granted--;
	/* win_granted stays: tickets count grants since theirs by it, and a
	 * grant taken back only makes them think a little more was ours */
}

void ratelimit_ticket(struct ratelimit *rl, struct rl_ticket *t)
{
	t->used = window_used(&rl->win);
	t->seq = rl->win_granted;
	t->external = rl->external;
	t->share_parts = rl->share_parts > 1 ? rl->share_parts : 1;
}

/* Our searches granted after `since` (SEARCH_RING at most). */
static int64_t searches_since(const struct ratelimit *rl, int64_t since)
{
	unsigned n = rl->search_n < SEARCH_RING ? rl->search_n : SEARCH_RING;
	int64_t k = 0;

	for (unsigned i = 0; i < n; i++)
		k += rl->search_at[(rl->search_n - 1 - i) % SEARCH_RING] > since;
	return k;
}

void ratelimit_note_headers(struct ratelimit *rl, const struct rl_headers *h,
			    const struct rl_ticket *t, int64_t now_ms)
{
	struct rl_window *w = &rl->win;

	if (h->max > 0 && h->max <= SANE_MAX_LIMIT && h->max != w->max &&
	    window_reserve(w, (int)h->max) == 0)
		w->max = (int)h->max;
	if (h->interval_ms >= SANE_MIN_INTERVAL_MS && h->interval_ms <= SANE_MAX_INTERVAL_MS &&
	    h->interval_ms != w->interval_ms) {
		w->interval_ms = h->interval_ms;
		if (w->margin_auto)
			w->margin_ms = auto_margin(h->interval_ms, w->margin_div);
	}
	if (h->daily > 0)
		rl->daily_limit = h->daily;
	if (h->daily_remaining >= 0)
		rl->daily_remaining = h->daily_remaining;
	/* Under a share the rest of the budget is the others': their requests
	 * in Remaining are not ours to count. */
	if (t && h->remaining >= 0 && h->remaining < w->max && share_parts(rl, now_ms) <= 1) {
		/* Every request of ours the server can have counted was in our
		 * window when this one was granted, or was granted since. */
		int64_t server_used = w->max - h->remaining;
		int64_t ours = (int64_t)t->used + (int64_t)(rl->win_granted - t->seq) +
			       (int64_t)(rl->external - t->external);
		int64_t extra = server_used - ours;

		if (extra > searches_since(rl, now_ms - window_span(w))) {
			rl->external_seen = true;
			rl->external_at = now_ms;
		}
		window_expire(w, now_ms);
		while (extra-- > 0 && window_used(w) < w->max) {
			window_insert(w, now_ms);
			rl->external++;
		}
	}
}

bool ratelimit_others_recent(struct ratelimit *rl, int64_t now_ms)
{
	return rl->external_seen && now_ms - rl->external_at < window_span(&rl->win);
}

/* A search was refused for the 10 s window: the server counts searches in
 * it. The searches still in flight may be counted there already, so they
 * take a window slot now (room for their stamps is made beyond max: they
 * were granted without one); every later search takes one when granted. */
static void learn_search_in_window(struct ratelimit *rl)
{
	int n = rl->search.inflight;

	rl->search_in_window = true;
	(void)window_reserve(&rl->win, rl->win.cap + n); /* if it fails, a stamp is lost, no more */
	rl->win.inflight += n;
}

bool ratelimit_note_429(struct ratelimit *rl, enum rl_policy policy, bool search,
			int64_t retry_after_ms, int64_t now_ms)
{
	struct rl_window *own = search ? &rl->search : &rl->win;
	bool have_ra = retry_after_ms >= 0 && retry_after_ms <= SANE_MAX_RETRY_AFTER_MS;
	bool learned = false;
	int64_t pause;

	/* only a policy the server named: a search's UNKNOWN is SECONDLY */
	if (search && policy == RL_POLICY_TEN_SECONDLY && !rl->search_in_window) {
		learn_search_in_window(rl);
		learned = true;
	}
	if (have_ra && retry_after_ms < MIN_429_PAUSE_MS)
		retry_after_ms = MIN_429_PAUSE_MS;
	if (policy == RL_POLICY_UNKNOWN)
		policy = search ? RL_POLICY_SECONDLY : RL_POLICY_TEN_SECONDLY;
	if ((unsigned)policy >= RL_POLICY_COUNT)
		policy = RL_POLICY_TEN_SECONDLY;
	rl->n429[policy]++;
	switch (policy) {
	case RL_POLICY_DAILY:
		rl->daily_paused = true;
		rl->daily_probe_at = now_ms + (have_ra ? retry_after_ms : rl->daily_probe_ms);
		return learned;
	case RL_POLICY_SECONDLY:
		pause = have_ra ? retry_after_ms : SECONDLY_PAUSE_MS;
		own->paused_until = max64(own->paused_until, now_ms + pause);
		return learned;
	case RL_POLICY_TEN_SECONDLY:
	default:
		pause = have_ra ? retry_after_ms : window_span(&rl->win);
		rl->win.paused_until = max64(rl->win.paused_until, now_ms + pause);
		own->paused_until = max64(own->paused_until, now_ms + pause);
		return learned;
	}
}

void ratelimit_stats(struct ratelimit *rl, int64_t now_ms, struct rl_stats *st)
{
	int parts = share_parts(rl, now_ms);

	memset(st, 0, sizeof(*st));
	window_expire(&rl->win, now_ms);
	window_expire(&rl->search, now_ms);
	st->window_max = rl->win.max;
	st->window_ms = rl->win.interval_ms;
	st->used_in_window = window_used(&rl->win);
	st->share_parts = parts;
	st->share_window_max = share_max(&rl->win, parts);
	st->share_search_max = share_max(&rl->search, parts);
	st->share_lift_ms = rl->share_lift_at ? rl->share_lift_at - now_ms : 0;
	st->left_in_window = st->share_window_max - st->used_in_window;
	if (st->left_in_window < 0)
		st->left_in_window = 0;
	st->inflight = rl->win.inflight;
	st->search_max = rl->search.max;
	st->search_used = window_used(&rl->search);
	st->daily_limit = rl->daily_limit;
	st->daily_remaining = rl->daily_remaining;
	st->daily_paused = rl->daily_paused;
	st->paused_ms = max64(0, rl->win.paused_until - now_ms);
	st->search_paused_ms = max64(0, rl->search.paused_until - now_ms);
	st->granted = rl->granted;
	st->denied = rl->denied;
	memcpy(st->n429, rl->n429, sizeof(st->n429));
	st->external = rl->external;
	st->search_in_window = rl->search_in_window;
}

enum rl_policy ratelimit_policy_from_name(const char *name)
{
	if (!name)
		return RL_POLICY_UNKNOWN;
	if (strcasecmp(name, "TEN_SECONDLY_ROLLING") == 0)
		return RL_POLICY_TEN_SECONDLY;
	if (strcasecmp(name, "SECONDLY") == 0)
		return RL_POLICY_SECONDLY;
	if (strcasecmp(name, "DAILY") == 0)
		return RL_POLICY_DAILY;
	return RL_POLICY_UNKNOWN;
}

const char *ratelimit_policy_name(enum rl_policy p)
{
	switch (p) {
	case RL_POLICY_TEN_SECONDLY: return "TEN_SECONDLY_ROLLING";
	case RL_POLICY_SECONDLY: return "SECONDLY";
	case RL_POLICY_DAILY: return "DAILY";
	default: return "UNKNOWN";
	}
}

int64_t ratelimit_backoff_ms(unsigned attempt, uint32_t rnd)
{
	const int64_t base = 200, cap = 10000;
	int64_t ceiling = cap;

	/* 200 << 6 already passes the cap; avoid shifting further. */
	if (attempt < 6)
		ceiling = base << attempt;
	if (ceiling > cap)
		ceiling = cap;
	return (int64_t)(rnd % (uint64_t)(ceiling + 1));
}
