/* query.h - the query language of search/<type>/<query>/ directories.
 *
 * Pure functions, no I/O. Syntax: conditions joined by '&' (AND),
 * groups joined by '|' (OR); operators  =  !=  <  <=  >  >=  ~ (contains token,
 * '*' wildcard)  !~ (does not contain token);  prop? (has property);  !prop?
 * (has not);  q=text  (free text, once per query, in any group: it applies to
 * the whole query, HubSpot's "query" field); names and values are
 * percent-decoded after splitting, so %26 %7C %3D etc. carry special characters;
 * nothing is trimmed. "name=" / "name!=" (empty value) mean !name? / name?.
 * Example: "amount>=10000&dealstage!=closedwon|q=acme".
 */
#ifndef HUBFS_QUERY_H
#define HUBFS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/model/schema.h"

struct query;

struct objtype;

/* Parse a query directory name for object type t whose schema is s. t names
 * the type in reasons and gives the free-text properties
 * (t->text_props). Checks every property exists (in the schema),
 * values of number and date properties parse, and HubSpot's caps: at most 5
 * groups, 6 filters per group, 18 filters in all, free text at most 3,000
 * characters, values at most 65,536. Returns 0 and *out, or -EINVAL with a
 * one-sentence reason in *why (g_malloc'd; why may be NULL). */
int query_parse(const char *text, const struct objtype *t, const struct schema *s,
		struct query **out, char **why);
void query_free(struct query *q); /* accepts NULL */
/* A parsed query is immutable: query_request and query_match may run on it from
 * any number of threads at once. */

/* The body of POST /crm/v3/objects/{type}/search for this query: filterGroups,
 * query (if any), the given properties, limit, after (NULL = first page), and
 * sorts (by hs_object_id ascending, so paging is stable). above > 0 adds
 * hs_object_id > above to every group (one group of its own if the query has
 * none): the window past HubSpot's 10,000-result cap, which only
 * query_can_window queries may ask for. New object. */
json_object *query_request(const struct query *q, const char *const *props, size_t nprops,
			   int limit, const char *after, uint64_t above);
/* Is there room under HubSpot's caps (6 filters a group, 18 in all) for the
 * window filter of query_request in every group? */
bool query_can_window(const struct query *q);

/* Evaluate the query locally against a record's properties (name -> string or
 * null), as HubSpot's search would, so an overlaid record agrees with search
 * once it is indexed. Unset =
 * missing, null or "". AND within a group, OR across groups, AND free text.
 * EQ/NEQ: numbers numerically, dates as epoch ms, enumerations exactly
 * (case-sensitive; a checkbox property matches any of its ';'-separated
 * values), anything else case-insensitively; NEQ matches unset. LT..GTE:
 * numeric for number, epoch ms for date/datetime (stored ISO, or epoch ms from
 * a local write), raw strings for enumerations, lowercased strings otherwise;
 * unset never matches. CONTAINS_TOKEN (case-insensitive): a value with '*' is
 * a glob ('*', '?', '[...]') on the whole stored value or on one of its
 * whitespace-separated words; else the value itself, or its word tokens as a
 * contiguous run of the stored value's tokens (tokens split on non-alphanumerics
 * and '_'); NOT_CONTAINS_TOKEN matches unset. HAS_PROPERTY = set. Free text:
 * every whitespace-separated word is a case-insensitive substring of one of the
 * type's searchable properties (HubSpot's free-text `query` searches only
 * those: t->text_props). */
bool query_match(const struct query *q, json_object *props);

#endif
