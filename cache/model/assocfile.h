/* assocfile.h - <type>/<id>/associations.json: the associations of one record
 * with their labels, as a file to read and to edit.
 *
 * The file is a JSON object whose keys are the directory names of the types
 * the record can be associated with (sorted), each a list sorted by id of
 *   {"id": "201", "labels": ["Primary", "Decision maker"],
 *    "types": [{"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}, …]}
 * `labels` holds the non-null labels of `types` (HubSpot's association types
 * of the pair, sorted by typeId); `types` is informational and ignored when
 * the file is saved.
 *
 * A save is the state the user wants for the keys it holds: a list entry
 * missing from a key's list is an association to remove, a new entry one to
 * add (unlabeled, or with its labels), a label added to or taken from
 * `labels` a label to add or remove. A key left out of the file is left as
 * it is (to remove every association toward a type, save its key with []).
 *
 * Pure: json-c and GLib only.
 */
#ifndef HUBFS_MODEL_ASSOCFILE_H
#define HUBFS_MODEL_ASSOCFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <json-c/json.h>

/* The canonical text of an association types array as HubSpot sends it
 * ([{category, typeId, label}], also with associationCategory and
 * associationTypeId): entries sorted by typeId, duplicates and entries
 * without a numeric typeId dropped, each {"category", "typeId", "label"}
 * (label a string or null). "[]" for anything but an array. g_free. */
char *assocfile_types_canon(json_object *types);

/* canon (a canonical types text, NULL = "[]") with one type added (replacing
 * one of the same typeId) or removed. Returns canonical text (g_free). */
char *assocfile_types_edit(const char *canon, const char *category, int type_id,
			   const char *label, bool add);

/* The file's text: by_type maps a directory name to a json array of
 * {"id": "<id>", "types": <a canonical types array>} (ids as strings or
 * numbers; "types" may be missing: none). Keys sorted, entries sorted by id
 * (duplicates dropped), pretty-printed like every file hubfs serves.
 * g_malloc'd; *len its length. */
char *assocfile_render(json_object *by_type, size_t *len);

/* Parse a saved file. On success 0 and *out = {name: {"<id>": [labels]}}
 * (labels sorted, duplicates dropped; ids canonical decimal). On failure
 * -EINVAL and *why (g_free) says what is wrong: not JSON (line, column), not
 * an object, a key whose value is not a list, an entry that is not an object
 * or has no valid id, an id listed twice under one key, labels that are not a
 * list of non-empty strings. */
int assocfile_parse(const char *text, size_t len, json_object **out, char **why);

enum assoc_change_op {
	AC_LINK_ADD,  /* a new association without labels: the default type */
	AC_LINK_DEL,  /* an association removed (every type between the pair) */
	AC_LABEL_ADD, /* a label added (to a new association, or an existing one) */
	AC_LABEL_DEL, /* a label removed from an association that stays */
};

struct assoc_change {
	const char *name;  /* the key (type directory name); borrowed */
	uint64_t id;       /* the other record */
	enum assoc_change_op op;
	const char *label; /* AC_LABEL_*: the label; borrowed */
};

/* What turns `before` into `after` (both from assocfile_parse), for the keys
 * of `after` only. A new entry with labels gives only AC_LABEL_ADDs (a
 * labeled association brings its unlabeled type along). In key, id, op order.
 * The strings are borrowed from before/after. GArray of struct assoc_change. */
GArray *assocfile_diff(json_object *before, json_object *after);

#endif
