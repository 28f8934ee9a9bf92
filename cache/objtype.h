/* objtype.h - the CRM object types hubfs mounts, and their fixed facts. */
#ifndef HUBFS_OBJTYPE_H
#define HUBFS_OBJTYPE_H

#include <stddef.h>

enum objtype { OT_CONTACTS = 0, OT_COMPANIES, OT_DEALS, OT_TICKETS, OT_COUNT };

/* "contacts", "companies", … ; NULL for an out-of-range type. */
const char *objtype_name(int t);
/* HubSpot's type id: "0-1", "0-2", "0-3", "0-5". */
const char *objtype_id(int t);
/* Last-modified property used for incremental refresh. */
const char *objtype_lastmod_prop(int t);
/* NULL-terminated curated default property list of DESIGN.md §2. */
const char *const *objtype_default_props(int t);
/* Type for a name of len bytes (not necessarily NUL-terminated); -1 if none. */
int objtype_from_name(const char *name, size_t len);

#endif
