/* fuzz_common.h - helpers shared by the libFuzzer harnesses of tests/fuzz/.
 *
 * The harnesses check invariants, not just "does not crash": a violated
 * invariant prints both sides and abort()s, which libFuzzer reports as a crash
 * and saves as an artifact. Findings that were reported but are not fixed yet
 * are "known": fuzz_known() tolerates them (so fuzzing can go past them) unless
 * HUBFS_FUZZ_STRICT=1 is set in the environment. Each known issue is listed in
 * tests/fuzz/README.md with its reproducer.
 */
#ifndef HUBFS_FUZZ_COMMON_H
#define HUBFS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Print "file:line: invariant failed: <cond>" and the formatted details, then abort. */
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));

#define FUZZ_CHECK(cond, ...) do { if (!(cond)) \
	fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

/* Once per process: GLib criticals (failed g_return_if_fail preconditions)
 * become fatal, hubfs logging is quiet. */
void fuzz_init(void);

/* True if the known issue `id` (see README.md) is to be tolerated this run. */
bool fuzz_known(const char *id);

/* The file name in tests/unit/golden/edit/ (FUZZ_GOLDEN_DIR, or
 * $HUBFS_FUZZ_GOLDEN), parsed; aborts if it is missing or not JSON. */
json_object *fuzz_golden(const char *name);

/* A NUL-terminated g_malloc'd copy of data[0..size). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Parse the whole of s[0..len) with json-c tokener flags (JSON_TOKENER_STRICT,
 * JSON_TOKENER_VALIDATE_UTF8, or 0 for json-c's lenient default), JSON
 * whitespace allowed after the value, depth up to 128. Returns the value (NULL
 * for a failure; *ok tells a JSON null from a failure). */
json_object *fuzz_json(const char *s, size_t len, int flags, bool *ok);
#define FUZZ_STRICT (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)

/* Nesting depth of a value (a scalar is 1). */
int fuzz_json_depth(json_object *o);

/* Deep equality: objects by key set, arrays in order, numbers by value (NaN
 * equal to NaN, an integer equal to the same double), strings by bytes
 * (embedded NULs included). */
bool fuzz_json_equal(json_object *a, json_object *b);

/* json_object_to_json_string_ext(o, PLAIN | NOSLASHESCAPE), or "null". Borrowed from o. */
const char *fuzz_json_text(json_object *o);

bool fuzz_utf8(const char *s, size_t len);

/* Split data at every occurrence of sep into at most max parts (the last one
 * keeps the rest). Returns the number of parts; parts point into data. */
size_t fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **part,
		  size_t *part_len, size_t max);

#endif
