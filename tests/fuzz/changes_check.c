/* changes_check.c - see changes_check.h. */
#include "tests/fuzz/changes_check.h"

#include <inttypes.h>
#include <string.h>

#include <glib.h>

#include "tests/fuzz/fuzz_common.h"

void changes_bounds_of(const struct changes_opts *o, struct changes_bounds *b)
{
	/* changes.c's defaults */
	b->pending = o->max_pending ? o->max_pending : 10000;
	b->assoc = o->max_assoc ? o->max_assoc : 10000;
	b->history = o->max_history ? o->max_history : 32768;
	b->dedupe = o->max_dedupe ? o->max_dedupe : 16384;
}

struct changes_stats changes_check_stats(struct changes *c, const struct changes_bounds *b)
{
	struct changes_stats st;
	uint64_t ign = 0;

	changes_stats(c, &st);
	for (int i = 0; i < CHI_COUNT; i++)
		ign += st.ignored[i];
	FUZZ_CHECK(st.received == st.applied + st.duplicates + st.out_of_order + st.overflow + ign,
		   "received %" PRIu64 " != applied %" PRIu64 " + duplicates %" PRIu64
		   " + out_of_order %" PRIu64 " + overflow %" PRIu64 " + ignored %" PRIu64,
		   st.received, st.applied, st.duplicates, st.out_of_order, st.overflow, ign);
	FUZZ_CHECK(st.pending <= b->pending, "pending %zu > %zu", st.pending, b->pending);
	FUZZ_CHECK(st.pending_assoc <= b->assoc, "pending_assoc %zu > %zu", st.pending_assoc,
		   b->assoc);
	FUZZ_CHECK(st.history <= b->history, "history %zu > %zu", st.history, b->history);
	FUZZ_CHECK(st.dedupe <= b->dedupe, "dedupe %zu > %zu", st.dedupe, b->dedupe);
	return st;
}

static int pair_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

void changes_check_work(const struct changes_work *w, const struct objtypes *r)
{
	size_t calls = 0, n_rec = 0;
	uint64_t *recs;
	int kind = -1;
	unsigned last_type = 0, last_to = 0;

	if (!w)
		return;
	for (size_t i = 0; i < w->n_jobs; i++)
		if (w->jobs[i].kind == CHANGES_GONE || w->jobs[i].kind == CHANGES_READ)
			n_rec += w->jobs[i].n;
	recs = g_new(uint64_t, 2 * n_rec + 2);
	n_rec = 0;
	for (size_t i = 0; i < w->n_jobs; i++) {
		const struct changes_job *j = &w->jobs[i];

		FUZZ_CHECK(j->kind >= CHANGES_GONE && j->kind <= CHANGES_ASSOC, "job kind %d", j->kind);
		FUZZ_CHECK((int)j->kind >= kind, "job %zu of kind %d after kind %d", i, j->kind, kind);
		FUZZ_CHECK(j->type && objtypes_at(r, j->type->idx) == j->type, "job %zu: no type of ours",
			   i);
		FUZZ_CHECK((j->kind == CHANGES_ASSOC) == (j->to != NULL), "job %zu: to %p", i,
			   (void *)j->to);
		if (j->to)
			FUZZ_CHECK(objtypes_at(r, j->to->idx) == j->to &&
				   objtypes_associable(r, j->type, j->to),
				   "job %zu: %s -> %s not associable", i, j->type->name, j->to->name);
		if ((int)j->kind == kind)
			FUZZ_CHECK(j->type->idx > last_type ||
				   (j->type->idx == last_type &&
				    (j->kind == CHANGES_READ ||
				     (j->kind == CHANGES_ASSOC && j->to->idx >= last_to))),
				   "job %zu (%s) out of type order", i, j->type->name);
		kind = (int)j->kind;
		last_type = j->type->idx;
		last_to = j->to ? j->to->idx : 0;
		FUZZ_CHECK(j->n >= 1, "job %zu empty", i);
		if (j->kind == CHANGES_READ)
			FUZZ_CHECK(j->n <= CHANGES_READ_MAX, "read of %zu ids", j->n);
		if (j->kind == CHANGES_ASSOC)
			FUZZ_CHECK(j->n <= CHANGES_ASSOC_MAX, "assoc read of %zu ids", j->n);
		if (j->kind == CHANGES_READ || j->kind == CHANGES_ASSOC)
			calls++;
		for (size_t k = 0; k < j->n; k++) {
			FUZZ_CHECK(j->ids[k] > 0, "id 0 in job %zu", i);
			FUZZ_CHECK(k == 0 || j->ids[k - 1] < j->ids[k], "ids of job %zu not ascending",
				   i);
			if (j->kind == CHANGES_GONE || j->kind == CHANGES_READ) {
				recs[2 * n_rec] = j->type->idx;
				recs[2 * n_rec + 1] = j->ids[k];
				n_rec++;
			}
		}
	}
	FUZZ_CHECK(calls == w->calls, "calls %zu, counted %zu", w->calls, calls);
	qsort(recs, n_rec, 2 * sizeof(uint64_t), pair_cmp);
	for (size_t i = 1; i < n_rec; i++)
		FUZZ_CHECK(pair_cmp(&recs[2 * (i - 1)], &recs[2 * i]) != 0,
			   "record %" PRIu64 "/%" PRIu64 " in two gone/read jobs", recs[2 * i],
			   recs[2 * i + 1]);
	g_free(recs);
	for (size_t t = 0; t < OBJTYPES_MAX; t++) {
		FUZZ_CHECK(!(w->flags[t] & ~(unsigned)(CHANGES_REFRESH | CHANGES_RELIST |
						      CHANGES_ASSOC_STALE)),
			   "flags %#x", w->flags[t]);
		FUZZ_CHECK(!w->flags[t] || t < objtypes_count(r), "flags on type %zu of %zu", t,
			   objtypes_count(r));
	}
}

char *changes_work_text(const struct changes_work *w)
{
	static const char *const kinds[] = { "gone", "assoc_all", "read", "assoc" };
	GString *s = g_string_new(NULL);

	for (size_t i = 0; w && i < w->n_jobs; i++) {
		const struct changes_job *j = &w->jobs[i];

		g_string_append_printf(s, "%s %s%s%s", kinds[j->kind], j->type->name, j->to ? ">" : "",
				       j->to ? j->to->name : "");
		for (size_t k = 0; k < j->n; k++)
			g_string_append_printf(s, "%c%" PRIu64, k ? ',' : ' ', j->ids[k]);
		g_string_append(s, "; ");
	}
	for (size_t t = 0; w && t < OBJTYPES_MAX; t++)
		if (w->flags[t])
			g_string_append_printf(s, "flags %zu=%u; ", t, w->flags[t]);
	return g_string_free(s, FALSE);
}
