/* json_util.h - reading JSON that came from a server, and writing the JSON
 * files hubfs shows. Accessors that tolerate whatever a misbehaving server
 * sends (a wrong type reads as absent, never as a crash), used by every
 * library of hubfs. Pure: json-c and GLib only.
 */
#ifndef HUBFS_MODEL_JSON_UTIL_H
#define HUBFS_MODEL_JSON_UTIL_H

#include <stddef.h>

#include <json-c/json.h>

/* The length of a, 0 unless it is an array. */
size_t json_util_array_len(json_object *a);

/* The text of o: "" unless it is a string or a number; never NULL. For ids
 * and cursors, which HubSpot sends as strings and some servers as numbers. */
const char *json_util_str(json_object *o);

/* o[key] if o is an object and that member a string, else NULL. Borrowed. */
const char *json_util_field(json_object *o, const char *key);

/* The cursor of the next page of a paged answer (paging.next.after), or NULL
 * when there is none. "" when the server sent an empty one. Borrowed. */
const char *json_util_paging_after(json_object *resp);

/* o as the files hubfs serves show JSON: pretty-printed with a two-space
 * indent, "/" not escaped, a trailing newline. g_malloc'd; *len its length. */
char *json_util_pretty(json_object *o, size_t *len);

/* Copy src (NULL: "") into dst of size bytes (> 0), cut if it does not fit at
 * a UTF-8 character boundary, so a truncated message stays valid UTF-8.
 * Returns the bytes copied. */
size_t json_util_copy_utf8(char *dst, size_t size, const char *src);

#endif
