/* schema.h - one object type's property definitions and the properties hubfs shows.
 *
 * Built from the answer of GET /crm/v3/properties/{type}. Immutable once built,
 * so readers need no lock.
 */
#ifndef HUBFS_SCHEMA_H
#define HUBFS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

struct schema;

struct objtype;

/* Build the schema of type t from a properties response ({results:[…]}).
 * shown selects the properties shown in record files: NULL or "default" = the
 * type's curated default list (t->default_props, those the account has) plus
 * every custom property (a custom object: every property); "all" = every
 * property; otherwise a comma-separated list (unknown names dropped). Returns
 * 0 and *out, or -EINVAL if the response is malformed. */
int schema_new(const struct objtype *t, json_object *response, const char *shown,
	       struct schema **out);
void schema_free(struct schema *s); /* accepts NULL */

/* Shown properties, sorted by name. */
size_t schema_shown_count(const struct schema *s);
const char *schema_shown(const struct schema *s, size_t i);
/* Shown properties as one comma-separated list, for properties= parameters. */
const char *schema_props_csv(const struct schema *s);
/* True if name is shown. */
bool schema_is_shown(const struct schema *s, const char *name);

/* Definition of a property (borrowed), or NULL if the account has none. */
json_object *schema_prop(const struct schema *s, const char *name);
/* True if the property's value is read-only (modificationMetadata.readOnlyValue or calculated). */
bool schema_prop_readonly(json_object *def);

/* schema/<type>.json: the definitions, sorted by name, pretty-printed, trailing
 * newline. Borrowed; lives as long as s. */
const char *schema_text(const struct schema *s, size_t *len);

#endif
