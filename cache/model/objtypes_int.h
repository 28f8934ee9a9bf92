/* objtypes_int.h - the static tables behind objtypes.c (objtypes_table.c).
 * Private to cache/model/objtypes*.c and the unit test. */
#ifndef HUBFS_MODEL_OBJTYPES_INT_H
#define HUBFS_MODEL_OBJTYPES_INT_H

#include <stdint.h>

#include "cache/model/objtypes.h"

/* The standard types, in objectTypeId order. The first four are the old
 * `enum objtype` values (OT_CONTACTS = 0 … OT_TICKETS = 3), which a version-1
 * journal stored: keep them first and in this order. */
enum std_type {
	ST_CONTACTS,        /* 0-1 */
	ST_COMPANIES,       /* 0-2 */
	ST_DEALS,           /* 0-3 */
	ST_TICKETS,         /* 0-5 */
	ST_PRODUCTS,        /* 0-7 */
	ST_LINE_ITEMS,      /* 0-8 */
	ST_QUOTES,          /* 0-14 */
	ST_COMMUNICATIONS,  /* 0-18 */
	ST_FEEDBACK,        /* 0-19 */
	ST_TASKS,           /* 0-27 */
	ST_NOTES,           /* 0-46 */
	ST_MEETINGS,        /* 0-47 */
	ST_CALLS,           /* 0-48 */
	ST_EMAILS,          /* 0-49 */
	ST_INVOICES,        /* 0-53 */
	ST_QUOTE_TEMPLATES, /* 0-64 */
	ST_SUBSCRIPTIONS,   /* 0-69 */
	ST_GOAL_TARGETS,    /* 0-74 */
	ST_DISCOUNTS,       /* 0-84 */
	ST_FEES,            /* 0-85 */
	ST_TAXES,           /* 0-86 */
	ST_PAYMENTS,        /* 0-101, commerce_payments */
	ST_USERS,           /* 0-115 */
	ST_POSTAL_MAIL,     /* 0-116 */
	ST_ORDERS,          /* 0-123 */
	ST_LEADS,           /* 0-136 */
	ST_CARTS,           /* 0-142 */
	ST_SERVICES,        /* 0-162 */
	ST_COURSES,         /* 0-410 */
	ST_LISTINGS,        /* 0-420 */
	ST_APPOINTMENTS,    /* 0-421 */
	ST_PROJECTS,        /* 0-970 */
	ST_COUNT
};

struct std_objtype {
	struct objtype t;          /* idx unused */
	const char *const *aliases; /* more names objtypes_lookup accepts, or NULL */
};

extern const struct std_objtype objtypes_std[ST_COUNT];

/* One HUBSPOT_DEFINED pair: the unlabeled (default) association type id of
 * a → b and of b → a; 0 where HubSpot documents no id for that direction (the
 * pair is still associable: a link is visible from both sides). a == b for a
 * type associated with itself. Every unordered pair appears once. */
struct std_assoc {
	uint8_t a, b;
	uint16_t ab, ba;
};

extern const struct std_assoc objtypes_std_assoc[];
extern const size_t objtypes_std_assoc_count;

/* Standard types a custom object can always be associated with, whether or not
 * its schema lists them (HubSpot adds these associations to every custom
 * object; their type ids are per account). */
extern const uint8_t objtypes_custom_auto_assoc[];
extern const size_t objtypes_custom_auto_assoc_count;

#endif
