/* edit.h - turning the bytes a writer closed into property changes.
 *
 * Pure functions, no I/O, no FUSE: parse the edited record file, validate it
 * against the account's schema and pipelines (the rules of edit_parse below),
 * and diff it against the version the writer started from.
 */
#ifndef HUBFS_EDIT_H
#define HUBFS_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/model/schema.h"

struct objtype;
struct objtypes;

struct edit_ctx {
	const struct objtype *type; /* what is edited: names, pipelines, required properties */
	const struct schema *schema;
	json_object *pipelines;     /* results array of GET /crm/v3/pipelines/{type}, or NULL
				     * (a type with pipelines: stages are then not checked) */
	json_object *owner_ids;     /* json array of owner id strings, or NULL (not checked) */
	/* New records only (edit_parse_create): */
	const struct objtypes *types; /* the mount's registry, type a member: what "associations"
				       * may name; NULL: a file with associations is refused */
	int64_t now_ms;             /* wall clock (ms since the epoch) an engagement's missing
				     * hs_timestamp is set to; 0: not filled in */
};

struct edit_error {
	char property[128];         /* property at fault, "" if none */
	char reason[512];           /* one readable sentence, no trailing newline */
};

/* Parse and validate buf (len bytes) as an edit of the record whose current file
 * is base (base_len bytes; the rendered record file). Accepts the full record
 * shape or a bare {"properties": {...}}; properties absent from the edit are
 * left alone; null or "" clears. On success returns 0 and:
 *   *changes: object name -> new value (string; "" = clear), only the
 *             properties whose value differs from base (empty object: no change);
 *   *bases:   object name -> the base value (string or null) of each change.
 * On failure returns -EINVAL with *err filled (nothing allocated): empty file,
 * invalid JSON (with line/column), not an object, unknown top-level key, id /
 * createdAt / updatedAt / archived changed, unknown property, read-only property
 * changed, value not a string/number/bool/null, bad number/date/datetime/bool,
 * enumeration value not an option, pipeline or stage not in the pipelines,
 * owner not an owner, a string over 65,536 characters. */
int edit_parse(const struct edit_ctx *ctx, const char *buf, size_t len, const char *base,
	       size_t base_len, json_object **changes, json_object **bases, struct edit_error *err);

/* Parse and validate buf as a new record (for <type>/_new/). System fields
 * (id, createdAt, updatedAt, archived) and read-only properties are ignored so
 * a copied record file works as a template; null/"" values are dropped. An
 * engagement (OTF_ENGAGEMENT) without hs_timestamp gets one: its
 * hs_meeting_start_time where the file sets that (meetings), else
 * ctx->now_ms. Every property of the type's required list must then be there
 * (the reason names all that are missing).
 *
 * The file may also carry the record's associations, created with it:
 *   "associations": {"contacts": ["101"], "deals": [301]}
 * (keys: a type's directory name, or any name objtypes_lookup takes; each
 * with the default association type of the pair), or the API's own form
 *   "associations": [{"to": {"id": "101"}, "types": [{"associationCategory":
 *                    "HUBSPOT_DEFINED", "associationTypeId": 202}]}]
 * whose type ids must be default ids from this type that the registry knows
 * (they say which type the record is). A type that needs a contact
 * (OTF_NEEDS_CONTACT: leads) must carry one as its primary contact: the first
 * contact of the object form is made primary; the array form must say so
 * (type id 578).
 *
 * On success returns 0, *props (name -> string) and, if assocs is not NULL,
 * *assocs: NULL when the file has none, else an array with one entry per
 * record associated with, in file order (repeats merged):
 *   {"toObjectTypeId": "0-1", "to": {"id": "101"},
 *    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}
 * assocs NULL: a file with "associations" is refused as an unknown key.
 * Empty properties, a missing required property, a bad association ->
 * -EINVAL with *err filled and nothing allocated. */
int edit_parse_create(const struct edit_ctx *ctx, const char *buf, size_t len, json_object **props,
		      json_object **assocs, struct edit_error *err);
/* edit_parse_create without associations. */
int edit_parse_new(const struct edit_ctx *ctx, const char *buf, size_t len, json_object **props,
		   struct edit_error *err);

/* Parse buf as one JSON value (strict JSON, valid UTF-8, an optional BOM, only
 * whitespace after it). Returns 0 and *out (may be NULL for `null`), or -EINVAL
 * with err->reason saying where (line and column). */
int edit_parse_json(const char *buf, size_t len, json_object **out, struct edit_error *err);

/* Apply changes to a base record file, producing the file every reader sees
 * until the server's version arrives (read-your-writes). g_malloc'd, *len set. */
int edit_apply(const struct schema *s, const char *base, size_t base_len, json_object *changes,
	       char **text, size_t *len);

#endif
