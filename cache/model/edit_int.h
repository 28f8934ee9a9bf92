/* edit_int.h - what edit.c (edits of records) and edit_new.c (new records and
 * the associations they carry) share; private to cache/model/edit*.c.
 */
#ifndef HUBFS_EDIT_INT_H
#define HUBFS_EDIT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <json-c/json.h>

#include "cache/model/edit.h"

/* Fill err (may be NULL) with prop ("" if NULL) and a reason, both cut at a
 * UTF-8 character boundary. */
void G_GNUC_PRINTF(3, 4) edit_set_err(struct edit_error *err, const char *prop,
				      const char *fmt, ...);
/* v JSON-quoted and cut for a reason. g_free it. */
char *edit_quote(const char *v);
/* names (char *) joined by ", ", cut with ", …". g_free it. */
char *edit_join_list(GPtrArray *names);
/* "an array", "null", … */
const char *edit_type_noun(json_object *o);
/* Parse a record file: one object of the record's keys with a properties
 * object; creating: an "associations" key is allowed too. 0 with *top owned
 * and *props borrowed from it, or -EINVAL with err set. */
int edit_parse_file(const char *buf, size_t len, bool creating, json_object **top,
		    json_object **props, struct edit_error *err);
/* The string a written value stands for (borrowed from v), or NULL with err. */
const char *edit_value_string(const char *name, json_object *v, struct edit_error *err);
/* The value sent for val (numbers normalised); *owned holds what must be freed. */
const char *edit_sent_value(json_object *def, const char *val, char **owned);
/* Validate a non-empty value of property name (its definition def). */
int edit_check_value(const struct edit_ctx *ctx, const char *name, json_object *def,
		     const char *val, struct edit_error *err);
/* The pipeline and stage of changes against the pipelines; bprops: the base
 * record's properties, NULL for a new record. */
int edit_check_pipelines(const struct edit_ctx *ctx, json_object *changes, json_object *bprops,
			 struct edit_error *err);
/* err: name is not a property of the type. */
void edit_unknown_prop(const struct edit_ctx *ctx, const char *name, struct edit_error *err);

#endif
