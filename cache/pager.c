/* pager.c - guards of a paged read (see pager.h). */
#include "cache/pager.h"

#include <errno.h>

void pager_init(struct pager *p, unsigned hard_max)
{
	p->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	p->pages = 0;
	p->max_pages = 0;
	p->hard_max = hard_max;
}

void pager_destroy(struct pager *p)
{
	if (p->seen)
		g_hash_table_destroy(p->seen);
	p->seen = NULL;
}

void pager_set_total(struct pager *p, uint64_t total, unsigned per_page)
{
	uint64_t pages = (total + total / 10 + per_page - 1) / (per_page ? per_page : 1) + 2;

	p->max_pages = pages > p->hard_max ? p->hard_max : (unsigned)pages;
}

int pager_next(struct pager *p, const char *cursor, const char **why)
{
	unsigned max = p->max_pages ? p->max_pages : p->hard_max;

	p->pages++;
	if (!cursor || !*cursor)
		return 0;
	if (g_hash_table_contains(p->seen, cursor)) {
		*why = "HubSpot handed out a paging cursor it had handed out before";
		return -EPROTO;
	}
	if (p->pages >= max) {
		*why = "more pages than the records HubSpot counts would fill";
		return -EPROTO;
	}
	g_hash_table_add(p->seen, g_strdup(cursor));
	return 0;
}
