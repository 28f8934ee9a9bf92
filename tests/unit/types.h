/* types.h - the object types the C tests use: the core registry
 * (objtypes_new_core), whose idx 0..3 are contacts, companies, deals and
 * tickets. Tests index their own tables with TY_* and pass ty(TY_*) to the
 * code under test. */
#ifndef HUBFS_TEST_TYPES_H
#define HUBFS_TEST_TYPES_H

#include "cache/model/objtypes.h"

enum { TY_CONTACTS, TY_COMPANIES, TY_DEALS, TY_TICKETS, TY_COUNT };

static inline const struct objtypes *test_types(void)
{
	static struct objtypes *r; /* lives as long as the test */

	if (!r)
		r = objtypes_new_core();
	return r;
}

static inline const struct objtype *ty(int i)
{
	return objtypes_at(test_types(), (unsigned)i);
}

#endif
