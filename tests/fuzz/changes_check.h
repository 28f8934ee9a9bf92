/* changes_check.h - invariants of cache/model/changes.h that every harness
 * driving it checks (fuzz_changes, fuzz_webhook). A violation aborts through
 * FUZZ_CHECK. */
#ifndef HUBFS_FUZZ_CHANGES_CHECK_H
#define HUBFS_FUZZ_CHANGES_CHECK_H

#include "cache/model/changes.h"

/* The bounds the module works to: o's, with its defaults for the zeros. */
struct changes_bounds {
	size_t pending, assoc, history, dedupe;
};
void changes_bounds_of(const struct changes_opts *o, struct changes_bounds *b);

/* The counters add up (received = applied + duplicates + out_of_order +
 * overflow + ignored) and the tables are within their bounds. Returns the
 * snapshot checked. */
struct changes_stats changes_check_stats(struct changes *c, const struct changes_bounds *b);

/* The shape changes.h promises for a work list: jobs in kind order, by type
 * (and to) within a kind, 1..100 ids per READ, 1..1,000 per ASSOC, ids
 * ascending, types of r, ASSOC pairs associable and only they with a `to`,
 * no (type, id) in two GONE or READ jobs, calls = READ + ASSOC jobs, only
 * known flags. w may be NULL (nothing to check). */
void changes_check_work(const struct changes_work *w, const struct objtypes *r);

/* The jobs as text, one "kind type[>to] ids" per job, then the flags: equal
 * texts mean equal work. g_free the result. */
char *changes_work_text(const struct changes_work *w);

#endif
