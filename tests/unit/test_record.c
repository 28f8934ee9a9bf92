/* Rendering of record files against golden files, ids, times, schema selection. */
#include <errno.h>

#include <glib.h>

#include "cache/model/record.h"
#include "cache/model/schema.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

static const char *dir;

static char *slurp(const char *name)
{
	g_autofree char *p = g_build_filename(dir, name, NULL);
	char *s = NULL;

	if (!g_file_get_contents(p, &s, NULL, NULL))
		FAIL("cannot read %s", p);
	return s;
}

static struct schema *load_schema(const char *shown)
{
	g_autofree char *txt = slurp("contact_props.json");
	json_object *o = json_tokener_parse(txt);
	struct schema *s = NULL;

	ASSERT(o);
	ASSERT_EQ(schema_new(ty(TY_CONTACTS), o, shown, &s), 0);
	json_object_put(o);
	return s;
}

static void test_golden(void)
{
	struct schema *s = load_schema(NULL);
	g_autofree char *in = slurp("contact_in.json"), *want = slurp("contact_out.json");
	json_object *o = json_tokener_parse(in);
	char *text = NULL;
	size_t len = 0;
	uint64_t id = 0;
	int64_t ms = 0;

	ASSERT_EQ(record_render(o, s, &text, &len, &id, &ms), 0);
	ASSERT_STR(text, want);
	ASSERT_EQ(len, strlen(want));
	ASSERT_EQ(id, 512);
	ASSERT_EQ(ms, INT64_C(1726061259356));
	/* hs_object_id is not shown; the custom property is. */
	ASSERT(!schema_is_shown(s, "hs_object_id"));
	ASSERT(schema_is_shown(s, "favorite_color"));
	ASSERT_STR(schema_props_csv(s),
		   "createdate,email,favorite_color,firstname,lastmodifieddate,lastname,lifecyclestage,phone");
	g_free(text);
	json_object_put(o);
	schema_free(s);
}

static void test_shown_lists(void)
{
	struct schema *all = load_schema("all"), *some = load_schema("email, nosuch,phone");

	ASSERT_EQ(schema_shown_count(all), 9);
	ASSERT_STR(schema_props_csv(some), "email,phone");
	ASSERT(schema_prop_readonly(schema_prop(all, "lastmodifieddate")));
	ASSERT(!schema_prop_readonly(schema_prop(all, "email")));
	ASSERT(schema_prop(all, "nosuch") == NULL);
	schema_free(all);
	schema_free(some);
}

static void test_bad_objects(void)
{
	struct schema *s = load_schema(NULL);
	const char *bad[] = { "{}", "{\"id\": \"abc\"}", "{\"id\": \"0123\"}", "{\"id\": \"-5\"}",
			      "{\"id\": \"281474976710656\"}" };
	char *text;
	size_t len;
	uint64_t id;
	int64_t ms;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *o = json_tokener_parse(bad[i]);

		ASSERT_EQ(record_render(o, s, &text, &len, &id, &ms), -EINVAL);
		json_object_put(o);
	}
	schema_free(s);
}

static void test_ids_and_times(void)
{
	uint64_t id;
	int64_t ms;

	ASSERT_EQ(record_parse_id("101", 3, &id), 0);
	ASSERT_EQ(id, 101);
	ASSERT_EQ(record_parse_id("0", 1, &id), -ENOENT);
	ASSERT_EQ(record_parse_id("01", 2, &id), -ENOENT);
	ASSERT_EQ(record_parse_id("1a", 2, &id), -ENOENT);
	ASSERT_EQ(record_parse_id("", 0, &id), -ENOENT);
	ASSERT_EQ(record_parse_id("1234567890123456", 16, &id), -ENOENT);
	ASSERT_EQ(record_parse_id("281474976710655", 15, &id), 0);
	ASSERT_EQ(record_parse_time("1970-01-01T00:00:01.5Z", &ms), 0);
	ASSERT_EQ(ms, 1500);
	ASSERT_EQ(record_parse_time("2024-01-17T19:55:04Z", &ms), 0);
	ASSERT_EQ(ms, INT64_C(1705521304000));
	ASSERT_EQ(record_parse_time("1705521304000", &ms), 0);
	ASSERT_EQ(ms, INT64_C(1705521304000));
	ASSERT_EQ(record_parse_time("yesterday", &ms), -EINVAL);
	ASSERT_EQ(record_parse_time("2024-01-17T19:55:04+02:00", &ms), -EINVAL);
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "tests/unit/golden";
	RUN(test_golden);
	RUN(test_shown_lists);
	RUN(test_bad_objects);
	RUN(test_ids_and_times);
	return 0;
}
