/* record.h - the record file: rendering an API object into the bytes a reader sees.
 *
 * Format: the API's object shape, keys in the fixed order id,
 * properties (every shown property, sorted by name, null when unset), createdAt,
 * updatedAt, archived; pretty-printed with a two-space indent; trailing newline.
 */
#ifndef HUBFS_RECORD_H
#define HUBFS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cache/model/schema.h"

/* Render obj (a SimplePublicObject). On success returns 0 and a g_malloc'd
 * *text of *len bytes (NUL-terminated too), the record's *id and *updated_ms
 * (epoch ms of updatedAt, 0 if absent). Returns -EINVAL for an object without a
 * valid numeric id. */
int record_render(json_object *obj, const struct schema *s, char **text, size_t *len,
		  uint64_t *id, int64_t *updated_ms);

/* Parse ISO-8601 UTC ("2024-01-17T19:55:04.281Z", fraction optional) or an
 * epoch-ms string. Returns 0 and *ms, or -EINVAL. */
int record_parse_time(const char *s, int64_t *ms);

/* Parse a record id: decimal digits only, no leading zero, < 2^48.
 * Returns 0 and *id, or -ENOENT. */
int record_parse_id(const char *s, size_t len, uint64_t *id);

#define RECORD_ID_MAX ((UINT64_C(1) << 48) - 1)

/* ms since the epoch as ISO-8601 UTC with milliseconds, the form HubSpot
 * writes ("2024-01-17T19:55:04.281Z"), into buf. Returns buf. */
#define RECORD_TIME_LEN 64
char *record_format_time(int64_t ms, char buf[RECORD_TIME_LEN]);

/* qsort/bsearch order of record ids (uint64_t). */
int record_id_cmp(const void *a, const void *b);

#endif
