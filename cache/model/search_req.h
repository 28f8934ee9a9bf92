/* search_req.h - the body of POST /crm/v3/objects/{type}/search, built
 * piece by piece: filter groups (OR'ed) of filters (AND'ed), free text,
 * properties, sorts, limit and the cursor. Every search hubfs sends is built
 * here: query directories, incremental refresh, counting, the lookup of
 * in-doubt creates. Pure: json-c only.
 */
#ifndef HUBFS_MODEL_SEARCH_REQ_H
#define HUBFS_MODEL_SEARCH_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* A new body with no filter group yet ({"filterGroups": []}). json_object_put it. */
json_object *search_req_new(void);
/* The page: {"limit": limit, "after": after (if not NULL: not the first page)}. */
void search_req_page(json_object *req, int limit, const char *after);
/* Append a filter group; returns its filters array (borrowed) for search_req_filter. */
json_object *search_req_group(json_object *req);
/* Append {propertyName, operator, value} (value NULL: none, as HAS_PROPERTY). */
void search_req_filter(json_object *filters, const char *prop, const char *op, const char *value);
/* Add one sort by prop, ascending or descending. */
void search_req_sort(json_object *req, const char *prop, bool ascending);
/* The properties the results carry (an empty list asks for none). */
void search_req_props(json_object *req, const char *const *props, size_t n);
/* Free text (HubSpot's "query" field). */
void search_req_text(json_object *req, const char *text);

#endif
