/* query.h - the query language of search/<type>/<query>/ directories.
 *
 * Pure functions, no I/O. Syntax (DESIGN.md §4): conditions joined by '&' (AND),
 * groups joined by '|' (OR); operators  =  !=  <  <=  >  >=  ~ (contains token,
 * '*' wildcard)  !~ (does not contain token);  prop? (has property);  !prop?
 * (has not);  q=text  (free text, once per query); names and values are
 * percent-decoded after splitting, so %26 %7C %3D etc. carry special characters.
 * Example: "amount>=10000&dealstage!=closedwon|q=acme".
 */
#ifndef HUBFS_QUERY_H
#define HUBFS_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "cache/schema.h"

struct query;

/* Parse a query directory name for an object type whose schema is s. Checks
 * every property exists (in the schema) and HubSpot's caps: at most 5 groups,
 * 6 filters per group, 18 filters in all, free text at most 3,000 characters.
 * Returns 0 and *out, or -EINVAL with a one-sentence reason in *why (g_malloc'd). */
int query_parse(const char *text, const struct schema *s, struct query **out, char **why);
void query_free(struct query *q); /* accepts NULL */

/* The body of POST /crm/v3/objects/{type}/search for this query: filterGroups,
 * query (if any), the given properties, limit, after (NULL = first page), and
 * sorts (by hs_object_id ascending, so paging is stable). New object. */
json_object *query_request(const struct query *q, const char *const *props, size_t nprops,
			   int limit, const char *after);

/* Evaluate the query locally against a record's properties (name -> string or
 * null), the way HubSpot would: EQ/NEQ case-insensitive (numbers numerically),
 * LT..GTE numeric for number/date/datetime properties (dates as ISO or epoch ms),
 * CONTAINS_TOKEN on word tokens with '*' wildcards, HAS_PROPERTY = non-empty;
 * free text matches if any of the type's searchable text properties present in
 * props contains it (case-insensitive). */
bool query_match(const struct query *q, json_object *props);

#endif
