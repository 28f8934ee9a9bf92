/* fuzz_objtypes - objtypes_new (cache/model/objtypes.h) on what HubSpot sends
 * at mount: a custom object schemas response and an object-library
 * enablement answer, with an -o types= value.
 *
 * Input: up to three parts separated by "\n--\n": the schemas response, the
 * enablement response, the types= value. An empty or unparsable JSON part is
 * passed as NULL.
 *
 * Invariants:
 * - the result is 0, -EINVAL or -E2BIG; on failure no registry and a reason;
 * - at most OBJTYPES_MAX types, idx dense; directory names are non-empty,
 *   contain no '/', are not "." or "..", and are unique; objectTypeIds unique;
 *   objtypes_by_name, objtypes_by_id and objtypes_lookup find each type by its
 *   directory name and id; every list is non-NULL and NULL-terminated;
 * - a custom object is OTF_CUSTOM with an objectTypeId "<digits>-<digits>";
 * - associations are symmetric, objtypes_assoc_targets agrees with
 *   objtypes_associable, a type id is 0 exactly when the pair is not
 *   associable or has no known id, and products/users have none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/objtypes.h"
#include "tests/fuzz/fuzz_common.h"

static json_object *part_json(const uint8_t *p, size_t len)
{
	bool ok;

	return len ? fuzz_json((const char *)p, len, 0, &ok) : NULL;
}

static void check_list(const struct objtype *t, const char *what, const char *const *l)
{
	size_t n = 0;

	FUZZ_CHECK(l != NULL, "%s: %s is NULL", t->name, what);
	for (; l[n]; n++)
		FUZZ_CHECK(*l[n], "%s: empty name in %s", t->name, what);
}

static void check_type(const struct objtypes *r, const struct objtype *t, unsigned i)
{
	size_t len = strlen(t->name);

	FUZZ_CHECK(t->idx == i, "idx %u at %u", t->idx, i);
	FUZZ_CHECK(len > 0 && !strchr(t->name, '/') && strcmp(t->name, ".") != 0 &&
		   strcmp(t->name, "..") != 0, "directory name \"%s\"", t->name);
	FUZZ_CHECK(objtypes_by_name(r, t->name, len) == t, "by_name %s", t->name);
	FUZZ_CHECK(objtypes_by_id(r, t->id) == t, "by_id %s", t->id);
	FUZZ_CHECK(objtypes_lookup(r, t->id) == t, "lookup %s", t->id);
	FUZZ_CHECK(objtypes_lookup(r, t->name) == t, "lookup %s", t->name);
	FUZZ_CHECK(t->singular && t->label && t->lastmod && t->createdate, "%s: NULL text",
		   t->name);
	check_list(t, "default_props", t->default_props);
	check_list(t, "text_props", t->text_props);
	check_list(t, "identity_props", t->identity_props);
	check_list(t, "required", t->required);
	FUZZ_CHECK(!t->pipeline_prop == !t->stage_prop, "%s: half a pipeline", t->name);
	if (t->flags & OTF_CUSTOM) {
		size_t a = strspn(t->id, "0123456789");

		FUZZ_CHECK(a > 0 && t->id[a] == '-' && t->id[a + 1] &&
			   strspn(t->id + a + 1, "0123456789") == strlen(t->id + a + 1),
			   "custom objectTypeId \"%s\"", t->id);
		FUZZ_CHECK(strcmp(t->singular, "object") == 0, "%s: singular %s", t->name,
			   t->singular);
	}
}

static void check_assoc(const struct objtypes *r)
{
	size_t n = objtypes_count(r);
	unsigned idx[OBJTYPES_MAX];

	for (unsigned i = 0; i < n; i++) {
		const struct objtype *a = objtypes_at(r, i);
		size_t k = objtypes_assoc_targets(r, a, idx, OBJTYPES_MAX), m = 0;

		FUZZ_CHECK(k <= n, "%s: %zu targets of %zu types", a->name, k, n);
		if (a->flags & OTF_NO_ASSOC)
			FUZZ_CHECK(k == 0, "%s: %zu targets", a->name, k);
		for (unsigned j = 0; j < n; j++) {
			const struct objtype *b = objtypes_at(r, j);
			bool ab = objtypes_associable(r, a, b);

			FUZZ_CHECK(ab == objtypes_associable(r, b, a), "%s/%s asymmetric", a->name,
				   b->name);
			FUZZ_CHECK(objtypes_assoc_type_id(r, a, b) >= 0, "%s/%s negative id", a->name,
				   b->name);
			if (!ab)
				FUZZ_CHECK(objtypes_assoc_type_id(r, a, b) == 0, "%s/%s id without pair",
					   a->name, b->name);
			if (ab) {
				FUZZ_CHECK(m < k && idx[m] == j, "%s: target %s out of order", a->name,
					   b->name);
				m++;
			}
		}
		FUZZ_CHECK(m == k, "%s: %zu targets, %zu associable", a->name, k, m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 };
	json_object *schemas, *enablement;
	struct objtypes_opts o = { 0 };
	struct objtypes *r = NULL;
	const char *why = NULL;
	char *types = NULL;
	int rc;

	fuzz_init();
	fuzz_split(data, size, "\n--\n", part, len, 3);
	schemas = part_json(part[0], len[0]);
	enablement = part_json(part[1], len[1]);
	if (part[2]) {
		types = fuzz_strndup(part[2], len[2]);
		o.types = types;
	}
	rc = objtypes_new(&o, schemas, enablement, &r, &why);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG, "rc %d", rc);
	if (rc != 0) {
		FUZZ_CHECK(r == NULL, "rc %d with a registry", rc);
		FUZZ_CHECK(why && *why, "rc %d without a reason", rc);
	} else {
		size_t n = objtypes_count(r);
		GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);

		FUZZ_CHECK(r != NULL, "rc 0 without a registry");
		FUZZ_CHECK(n <= OBJTYPES_MAX, "%zu types", n);
		for (unsigned i = 0; i < n; i++) {
			const struct objtype *t = objtypes_at(r, i);

			check_type(r, t, i);
			FUZZ_CHECK(g_hash_table_add(names, (gpointer)t->name), "%s twice", t->name);
		}
		FUZZ_CHECK(objtypes_at(r, (unsigned)n) == NULL, "objtypes_at past the end");
		check_assoc(r);
		g_hash_table_destroy(names);
	}
	objtypes_free(r);
	json_object_put(schemas);
	json_object_put(enablement);
	g_free(types);
	return 0;
}
