/* pager.h - the guards of a paged read (a listing, a search, the owners)
 * against a broken or hostile server, which could otherwise keep a loop
 * going, and the daemon spending the account's API quota, until a deadline
 * or forever: a cursor that comes back, or more pages than the records
 * there are would fill.
 */
#ifndef HUBFS_PAGER_H
#define HUBFS_PAGER_H

#include <stdint.h>

#include <glib.h>

struct pager {
	GHashTable *seen;    /* cursors handed out so far (owned strings) */
	unsigned pages;      /* pages read */
	unsigned max_pages;  /* more is refused; 0 = no bound known yet */
	unsigned hard_max;   /* the bound while the total is not known */
};

/* Start a read; hard_max bounds it until pager_set_total() says better. */
void pager_init(struct pager *p, unsigned hard_max);
/* Free what the pager holds. Accepts a zeroed pager. */
void pager_destroy(struct pager *p);

/* The read covers about total records at per_page a page: it may take what
 * that fills, plus a tenth and two pages (records created meanwhile). */
void pager_set_total(struct pager *p, uint64_t total, unsigned per_page);

/* One more page was read; cursor is its "next" cursor (NULL or "" on the
 * last page). Returns 0 if the read may go on (or is done), or -EPROTO with
 * a static reason in *why: the cursor was handed out before, or the pages
 * passed the bound. */
int pager_next(struct pager *p, const char *cursor, const char **why);

#endif
