/* types.c - the object types a mount shows: the one place the registry
 * (cache/model/objtypes.h) is built, once at mount, and the per-type mount
 * options resolved against it. Everything after reads h->types, which is
 * immutable until unmount.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/log.h"
#include "fs/hubfs.h"

_Static_assert(OBJTYPES_MAX <= INO_TYPES_MAX, "a type idx must fit an inode number");

/* The option names props_<name> took before types came from a registry, in
 * the order of struct hubfs_opts.shown. */
static const char *const core_names[] = { "contacts", "companies", "deals", "tickets" };

int hubfs_types_setup(struct hubfs *h)
{
	size_t n;

	/* The four core types. Discovering the account's other types (the
	 * standard table, object-library enablement, custom object schemas)
	 * would go here, before anything reads h->types. */
	h->types = objtypes_new_core();
	n = objtypes_count(h->types);
	if (n > INO_TYPES_MAX) { /* objtypes_new refuses this already: inodes have 6 bits */
		fprintf(stderr, "hubfs: %zu object types are more than the %u a mount can show; "
			"refusing to mount\n", n, INO_TYPES_MAX);
		return -1;
	}
	h->shown = g_new0(const char *, n);
	for (size_t i = 0; i < G_N_ELEMENTS(core_names); i++) {
		const struct objtype *t = objtypes_by_name(h->types, core_names[i],
							   strlen(core_names[i]));

		if (t)
			h->shown[t->idx] = h->o.shown[i];
	}
	return 0;
}

void hubfs_types_free(struct hubfs *h)
{
	g_free(h->shown);
	h->shown = NULL;
	objtypes_free(h->types);
	h->types = NULL;
}
