/* The edit validator: rejections and their reasons, the diff against the base,
 * pipelines and owners, new records, and edit_apply against record_render. */
#include <errno.h>

#include <glib.h>

#include "cache/model/edit.h"
#include "cache/model/record.h"
#include "cache/model/schema.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

static const char *dir;

static char *slurp(const char *name)
{
	g_autofree char *p = g_build_filename(dir, "edit", name, NULL);
	char *s = NULL;

	if (!g_file_get_contents(p, &s, NULL, NULL))
		FAIL("cannot read %s", p);
	return s;
}

static json_object *load_json(const char *name)
{
	g_autofree char *txt = slurp(name);
	json_object *o = json_tokener_parse(txt);

	if (!o)
		FAIL("%s is not JSON", name);
	return o;
}

/* One object type's schema, pipelines, owners and one record's base file. */
struct fx {
	struct schema *s;
	json_object *pipes_resp;
	json_object *owners;
	json_object *api;       /* the record as the API sent it */
	char *base;             /* the record file rendered from it */
	size_t base_len;
	struct edit_ctx ctx;
};

static void fx_init(struct fx *f, int ti, const char *record)
{
	const struct objtype *type = ty(ti);
	const char *tn = type->name;
	g_autofree char *props = g_strdup_printf("%s_props.json", tn);
	g_autofree char *pipes = g_strdup_printf("%s_pipelines.json", tn);
	g_autofree char *pp = g_build_filename(dir, "edit", pipes, NULL);
	json_object *resp = load_json(props);
	uint64_t id;
	int64_t ms;

	memset(f, 0, sizeof(*f));
	ASSERT_EQ(schema_new(type, resp, NULL, &f->s), 0);
	json_object_put(resp);
	f->ctx.type = type;
	f->ctx.schema = f->s;
	if (g_file_test(pp, G_FILE_TEST_EXISTS)) {
		f->pipes_resp = load_json(pipes);
		f->ctx.pipelines = json_object_object_get(f->pipes_resp, "results");
		ASSERT(f->ctx.pipelines);
	}
	f->owners = json_tokener_parse("[\"31000001\", \"31000002\", \"31000003\"]");
	f->ctx.owner_ids = f->owners;
	f->api = load_json(record);
	ASSERT_EQ(record_render(f->api, f->s, &f->base, &f->base_len, &id, &ms), 0);
}

static void fx_destroy(struct fx *f)
{
	schema_free(f->s);
	json_object_put(f->pipes_resp);
	json_object_put(f->owners);
	json_object_put(f->api);
	g_free(f->base);
}

/* The base file with one property set to the JSON text value (NULL: removed),
 * pretty-printed like a record file, as an editor would save it. */
static char *with_prop(const struct fx *f, const char *name, const char *value)
{
	json_object *o = json_tokener_parse(f->base), *props = json_object_object_get(o, "properties");
	char *out;

	ASSERT(props);
	if (value) {
		json_object *v = json_tokener_parse(value);

		ASSERT(v || !strcmp(value, "null"));
		json_object_object_add(props, name, v);
	} else {
		json_object_object_del(props, name);
	}
	out = g_strconcat(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
				JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE), "\n", NULL);
	json_object_put(o);
	return out;
}

/* The base file with a top-level key set to the JSON text value. */
static char *with_top(const struct fx *f, const char *key, const char *value)
{
	json_object *o = json_tokener_parse(f->base);
	char *out;

	json_object_object_add(o, key, json_tokener_parse(value));
	out = g_strconcat(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
				JSON_C_TO_STRING_SPACED), "\n", NULL);
	json_object_put(o);
	return out;
}

static int parse(const struct fx *f, const char *edit, json_object **ch, json_object **bs,
		 struct edit_error *err)
{
	memset(err, 0x5a, sizeof(*err));
	return edit_parse(&f->ctx, edit, strlen(edit), f->base, f->base_len, ch, bs, err);
}

/* edit must be rejected for property prop with exactly this reason. */
static void reject_at(int line, const struct fx *f, const char *edit, const char *prop,
		      const char *reason)
{
	json_object *ch = (json_object *)1, *bs = (json_object *)1;
	struct edit_error err;
	int rc = parse(f, edit, &ch, &bs, &err);

	if (rc != -EINVAL)
		FAIL("line %d: edit accepted (rc %d), wanted: %s", line, rc, reason);
	if (ch || bs)
		FAIL("line %d: outputs set on failure", line);
	if (strcmp(err.property, prop) != 0)
		FAIL("line %d: property \"%s\", wanted \"%s\" (%s)", line, err.property, prop, err.reason);
	if (strcmp(err.reason, reason) != 0)
		FAIL("line %d: reason\n  got:  %s\n  want: %s", line, err.reason, reason);
}
#define REJECT(f, edit, prop, reason) reject_at(__LINE__, f, edit, prop, reason)

/* Setting property name to the JSON text value must be rejected with reason. */
#define REJECT_PROP(f, name, value, reason) do { \
	g_autofree char *e_ = with_prop(f, name, value); \
	reject_at(__LINE__, f, e_, name, reason); } while (0)

/* Setting name to value must be accepted as exactly one change to want. */
static void accept_at(int line, const struct fx *f, const char *name, const char *value,
		      const char *want)
{
	g_autofree char *edit = with_prop(f, name, value);
	json_object *ch = NULL, *bs = NULL, *v;
	struct edit_error err;
	int rc = parse(f, edit, &ch, &bs, &err);

	if (rc != 0)
		FAIL("line %d: %s = %s rejected: %s", line, name, value, err.reason);
	if (json_object_object_length(ch) != 1 || !json_object_object_get_ex(ch, name, &v) ||
	    strcmp(json_object_get_string(v), want) != 0)
		FAIL("line %d: changes %s, wanted %s = \"%s\"", line, json_object_to_json_string(ch),
		     name, want);
	ASSERT_EQ(json_object_object_length(bs), 1);
	ASSERT(json_object_object_get_ex(bs, name, NULL));
	json_object_put(ch);
	json_object_put(bs);
}
#define ACCEPT(f, name, value, want) accept_at(__LINE__, f, name, value, want)

static void assert_json(json_object *o, const char *want)
{
	const char *got = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	ASSERT_STR(got, want);
}

/* ---------------------------------------------------------------- the file */

static void test_reject_file_shape(void)
{
	struct fx f;
	json_object *ch = (json_object *)1, *bs = (json_object *)1;
	struct edit_error err;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	ASSERT_EQ(edit_parse(&f.ctx, "", 0, f.base, f.base_len, &ch, &bs, &err), -EINVAL);
	ASSERT(!ch && !bs);
	ASSERT_STR(err.reason, "empty file");
	ASSERT_STR(err.property, "");
	REJECT(&f, " \n\t\n", "", "empty file");
	REJECT(&f, "{\n  \"properties\": {\n    \"email\": \"x@y.com\",\n    \"firstname\" \"A\"\n  }\n}\n",
	       "", "invalid JSON at line 4, column 17: object property name separator ':' expected");
	/* Columns count characters, not bytes. */
	REJECT(&f, "{\"properties\": {\n\"lastname\": \"López\",, \"x\": 1}}", "",
	       "invalid JSON at line 2, column 21: quoted object property name expected");
	REJECT(&f, "{\"properties\": {\"firstname\": \"Ana\"}, }", "",
	       "invalid JSON at line 1, column 38: unexpected character");
	REJECT(&f, "{\"properties\": {\"firstname\": \"Ana\"\n", "",
	       "invalid JSON at line 2, column 1: unexpected end of file");
	REJECT(&f, "{\"properties\": {\"firstname\": 'Ana'}}", "",
	       "invalid JSON at line 1, column 30: unexpected character");
	REJECT(&f, "{\"properties\": {}}\n{\"properties\": {}}\n", "",
	       "invalid JSON at line 2, column 1: unexpected text after the end of the JSON value");
	REJECT(&f, "{\"properties\": {\"firstname\": \"A\xff\"}}", "",
	       "invalid JSON at line 1, column 32: invalid utf-8 string");
	/* What json-c's own check lets through: an overlong NUL, a surrogate, a
	 * code point past U+10FFFF (the column is where the bad bytes start). */
	REJECT(&f, "{\"properties\": {\"firstname\": \"A\xc0\x80\"}}", "",
	       "invalid JSON at line 1, column 32: invalid utf-8 string");
	REJECT(&f, "{\"properties\": {\"firstname\": \"A\xed\xa0\x80\"}}", "",
	       "invalid JSON at line 1, column 32: invalid utf-8 string");
	REJECT(&f, "{\"properties\":\n {\"firstname\": \"Ló\xf4\x90\x80\x80\"}}", "",
	       "invalid JSON at line 2, column 19: invalid utf-8 string");
	ASSERT_EQ(edit_parse(&f.ctx, "{\"properties\": {}}\0xx", 21, f.base, f.base_len, &ch, &bs, &err),
		  -EINVAL);
	ASSERT_STR(err.reason, "invalid JSON at line 1, column 19: unexpected text after the end of "
		   "the JSON value");
	REJECT(&f, "[{\"properties\": {}}]", "", "the file must hold one JSON object, not an array");
	REJECT(&f, "null", "", "the file must hold one JSON object, not null");
	REJECT(&f, "\"x\"", "", "the file must hold one JSON object, not a string");
	REJECT(&f, "12", "", "the file must hold one JSON object, not a number");
	REJECT(&f, "{\"properties\": {}, \"associations\": {}}", "",
	       "unknown key \"associations\"; a record file has only id, properties, createdAt, "
	       "updatedAt and archived");
	REJECT(&f, "{\"id\": \"101\"}", "", "\"properties\" is missing");
	REJECT(&f, "{\"properties\": [\"email\"]}", "", "\"properties\" must be an object, not an array");
	REJECT(&f, "{\"properties\": null}", "", "\"properties\" must be an object, not null");
	/* Duplicate keys: json-c keeps the last value and drops the others. */
	REJECT(&f, "{\"properties\": {\"firstname\": \"A\",\n \"firstname\": \"B\"}}", "firstname",
	       "duplicate key \"firstname\" in \"properties\" at line 2, column 2: a key may appear "
	       "once (which value was meant?)");
	REJECT(&f, "{\"properties\": {\"email\": \"a@b.c\", \"\\u0065mail\": \"d@e.f\"}}", "email",
	       "duplicate key \"email\" in \"properties\" at line 1, column 35: a key may appear "
	       "once (which value was meant?)");
	REJECT(&f, "{\"id\": \"101\", \"properties\": {}, \"id\": \"102\"}", "",
	       "duplicate key \"id\" at line 1, column 33: a key may appear once (which value was "
	       "meant?)");
	REJECT(&f, "{\"properties\": {\"x\": 1}, \"properties\": {\"firstname\": \"A\"}}", "",
	       "duplicate key \"properties\" at line 1, column 26: a key may appear once (which value "
	       "was meant?)");
	/* the same names in different objects, and in string values, are fine */
	{
		json_object *c2 = NULL, *b2 = NULL;

		ASSERT_EQ(parse(&f, "{\"properties\": {\"firstname\": \"properties\", \"lastname\": "
				"\"{\\\"firstname\\\": 1, \\\"firstname\\\": 2}\"}}", &c2, &b2, &err), 0);
		json_object_put(c2);
		json_object_put(b2);
	}
	fx_destroy(&f);
}

static void test_reject_system_fields(void)
{
	struct fx f;
	g_autofree char *id = NULL, *id_num = NULL, *created = NULL, *updated = NULL, *archived = NULL;
	g_autofree char *same = NULL, *nl = NULL, *nl2 = NULL;
	json_object *ch, *bs;
	struct edit_error err;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	id = with_top(&f, "id", "\"102\"");
	REJECT(&f, id, "", "\"id\" cannot be changed (101 → 102)");
	id_num = with_top(&f, "id", "102");
	REJECT(&f, id_num, "", "\"id\" cannot be changed (101 → 102)");
	created = with_top(&f, "createdAt", "\"2024-01-18T00:00:00.000Z\"");
	REJECT(&f, created, "",
	       "\"createdAt\" cannot be changed (2024-01-17T19:55:04.281Z → 2024-01-18T00:00:00.000Z)");
	updated = with_top(&f, "updatedAt", "null");
	REJECT(&f, updated, "", "\"updatedAt\" cannot be changed (2024-09-11T13:27:39.356Z → null)");
	/* A value that would break the reason's line is shown JSON-quoted. */
	nl = with_top(&f, "id", "\"1\\n2\"");
	REJECT(&f, nl, "", "\"id\" cannot be changed (101 → \"1\\n2\")");
	nl2 = with_top(&f, "id", "\"101\\u0000\"");
	REJECT(&f, nl2, "", "\"id\" cannot be changed (101 → \"101\")");
	archived = with_top(&f, "archived", "true");
	REJECT(&f, archived, "", "\"archived\" cannot be changed (false → true)");
	/* The same id written as a number is no change. */
	same = with_top(&f, "id", "101");
	ASSERT_EQ(parse(&f, same, &ch, &bs, &err), 0);
	assert_json(ch, "{}");
	json_object_put(ch);
	json_object_put(bs);
	fx_destroy(&f);
}

/* A value HubSpot holds that a writer could not write (U+0000): the file
 * saved unchanged is no change, and changing it keeps the whole base. */
static void test_nul_in_base(void)
{
	struct fx f;
	json_object *props, *ch, *bs, *v;
	struct edit_error err;
	g_autofree char *shorter = NULL, *other = NULL;
	uint64_t id;
	int64_t ms;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	props = json_object_object_get(f.api, "properties");
	json_object_object_add(props, "firstname", json_object_new_string_len("A\0b", 3));
	g_free(f.base);
	ASSERT_EQ(record_render(f.api, f.s, &f.base, &f.base_len, &id, &ms), 0);
	ASSERT(strstr(f.base, "\"A\\u0000b\""));
	ASSERT_EQ(edit_parse(&f.ctx, f.base, f.base_len, f.base, f.base_len, &ch, &bs, &err), 0);
	assert_json(ch, "{}");
	json_object_put(ch);
	json_object_put(bs);
	/* "A" is a change, though its C string equals the base's. */
	shorter = with_prop(&f, "firstname", "\"A\"");
	ASSERT_EQ(parse(&f, shorter, &ch, &bs, &err), 0);
	assert_json(ch, "{\"firstname\":\"A\"}");
	ASSERT(json_object_object_get_ex(bs, "firstname", &v));
	ASSERT_EQ(json_object_get_string_len(v), 3);
	json_object_put(ch);
	json_object_put(bs);
	other = with_prop(&f, "firstname", "\"A\\u0000c\"");
	REJECT(&f, other, "firstname", "property \"firstname\" contains a NUL character");
	fx_destroy(&f);
}

/* ---------------------------------------------------------------- properties */

static void test_reject_properties(void)
{
	struct fx f;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	REJECT_PROP(&f, "nosuch", "\"x\"", "property \"nosuch\" does not exist on contacts");
	REJECT(&f, "{\"properties\": {\"email\": \"a@b.com\", \"Email\": \"a@b.com\"}}", "Email",
	       "property \"Email\" does not exist on contacts");
	REJECT(&f, "{\"properties\": {\"first\\nname\": \"Ana\"}}", "first\nname",
	       "property \"first\\nname\" does not exist on contacts");
	REJECT_PROP(&f, "firstname", "{\"value\": \"Ana\"}",
		    "property \"firstname\": a value must be a string, number, true, false or null, "
		    "not an object");
	REJECT_PROP(&f, "interests", "[\"events\"]",
		    "property \"interests\": a value must be a string, number, true, false or null, "
		    "not an array");
	REJECT(&f, "{\"properties\": {\"nps_score\": NaN}}", "nps_score",
	       "property \"nps_score\": NaN is not a JSON number");
	REJECT(&f, "{\"properties\": {\"nps_score\": -Infinity}}", "nps_score",
	       "property \"nps_score\": -Infinity is not a JSON number");
	REJECT(&f, "{\"properties\": {\"notes\": 123456789012345678901234567890}}", "notes",
	       "property \"notes\": the number is too large; write it as a string");
	REJECT(&f, "{\"properties\": {\"notes\": \"a\\u0000b\"}}", "notes",
	       "property \"notes\" contains a NUL character");
	/* Read-only: shown (lastmodifieddate), not shown (hs_object_id), calculated. */
	REJECT_PROP(&f, "lastmodifieddate", "\"2024-09-12T00:00:00.000Z\"",
		    "property \"lastmodifieddate\" is read-only");
	REJECT_PROP(&f, "lastmodifieddate", "null", "property \"lastmodifieddate\" is read-only");
	REJECT(&f, "{\"properties\": {\"hs_object_id\": \"101\"}}", "hs_object_id",
	       "property \"hs_object_id\" is read-only");
	REJECT(&f, "{\"properties\": {\"num_associated_deals\": 3}}", "num_associated_deals",
	       "property \"num_associated_deals\" is read-only");
	/* The first fault in file order is the one reported. */
	REJECT(&f, "{\"properties\": {\"vip\": \"maybe\", \"nosuch\": 1}}", "vip",
	       "property \"vip\": \"maybe\" is not true or false");
	fx_destroy(&f);
}

static void test_formats(void)
{
	struct fx f;
	g_autofree char *big = NULL, *too_big = NULL, *long_enum = NULL;
	GString *s;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	/* number */
	ACCEPT(&f, "nps_score", "9", "9");
	ACCEPT(&f, "nps_score", "1.5", "1.5");
	ACCEPT(&f, "nps_score", "1.50", "1.50");
	ACCEPT(&f, "nps_score", "-3", "-3");
	/* exponents and a leading + are sent as the plain decimal HubSpot takes */
	ACCEPT(&f, "nps_score", "1e3", "1000");
	ACCEPT(&f, "nps_score", "\"+4.5\"", "4.5");
	ACCEPT(&f, "nps_score", "\".5\"", ".5");
	ACCEPT(&f, "nps_score", "\"7.\"", "7.");
	ACCEPT(&f, "nps_score", "\"-2.5E-3\"", "-0.0025");
	ACCEPT(&f, "nps_score", "1.25e1", "12.5");
	ACCEPT(&f, "nps_score", "\"5E+2\"", "500");
	ACCEPT(&f, "nps_score", "0.00e5", "0");
	ACCEPT(&f, "nps_score", "-0e0", "0");
	ACCEPT(&f, "nps_score", "123.456e-1", "12.3456");
	ACCEPT(&f, "nps_score", "\"007e1\"", "70");
	ACCEPT(&f, "nps_score", "1e64", "10000000000000000000000000000000000000000000000000000000000000000");
	REJECT_PROP(&f, "nps_score", "1e65", "property \"nps_score\": \"1e65\" is not a number");
	{
		/* the base is "8": 8e0 and +8 are no change */
		g_autofree char *e1 = with_prop(&f, "nps_score", "8e0"), *e2 = with_prop(&f, "nps_score", "\"+8\"");
		json_object *ch, *bs;
		struct edit_error err;

		ASSERT_EQ(parse(&f, e1, &ch, &bs, &err), 0);
		assert_json(ch, "{}");
		json_object_put(ch);
		json_object_put(bs);
		ASSERT_EQ(parse(&f, e2, &ch, &bs, &err), 0);
		assert_json(ch, "{}");
		json_object_put(ch);
		json_object_put(bs);
	}
	ACCEPT(&f, "nps_score", "12345678901234567890", "12345678901234567890");
	REJECT_PROP(&f, "nps_score", "\"12abc\"", "property \"nps_score\": \"12abc\" is not a number");
	REJECT_PROP(&f, "nps_score", "\"1,5\"", "property \"nps_score\": \"1,5\" is not a number");
	REJECT_PROP(&f, "nps_score", "\"1 000\"", "property \"nps_score\": \"1 000\" is not a number");
	REJECT_PROP(&f, "nps_score", "\".\"", "property \"nps_score\": \".\" is not a number");
	REJECT_PROP(&f, "nps_score", "\"1e\"", "property \"nps_score\": \"1e\" is not a number");
	REJECT_PROP(&f, "nps_score", "\"Infinity\"", "property \"nps_score\": \"Infinity\" is not a number");
	REJECT_PROP(&f, "nps_score", "1e999", "property \"nps_score\": \"1e999\" is not a number");
	REJECT_PROP(&f, "nps_score", "\"0x10\"", "property \"nps_score\": \"0x10\" is not a number");
	REJECT_PROP(&f, "nps_score", "\" 12\"",
		    "property \"nps_score\": \" 12\" has leading or trailing whitespace, which number "
		    "properties do not allow");
	REJECT_PROP(&f, "nps_score", "\"12\\n\"",
		    "property \"nps_score\": \"12\\n\" has leading or trailing whitespace, which number "
		    "properties do not allow");
	/* bool */
	ACCEPT(&f, "vip", "true", "true");
	ACCEPT(&f, "vip", "\"true\"", "true");
	REJECT_PROP(&f, "vip", "\"yes\"", "property \"vip\": \"yes\" is not true or false");
	REJECT_PROP(&f, "vip", "\"True\"", "property \"vip\": \"True\" is not true or false");
	REJECT_PROP(&f, "vip", "1", "property \"vip\": \"1\" is not true or false");
	REJECT_PROP(&f, "vip", "\"true \"",
		    "property \"vip\": \"true \" has leading or trailing whitespace, which bool "
		    "properties do not allow");
	/* date */
	ACCEPT(&f, "renewal_date", "\"2025-02-28\"", "2025-02-28");
	ACCEPT(&f, "renewal_date", "\"2024-02-29\"", "2024-02-29");
	ACCEPT(&f, "renewal_date", "\"1740700800000\"", "1740700800000");
	ACCEPT(&f, "renewal_date", "1740700800000", "1740700800000");
	for (const char *const *bad = (const char *const[]){ "\"2025-02-29\"", "\"2025-2-3\"",
		     "\"2025-13-01\"", "\"1740700800001\"", "\"2025-02-28T00:00:00Z\"", "\"tomorrow\"",
		     "\"-86400000\"", NULL }; *bad; bad++) {
		g_autofree char *want = g_strdup_printf("property \"renewal_date\": %s is not a date "
			"(YYYY-MM-DD, or epoch milliseconds at midnight UTC)", *bad);

		REJECT_PROP(&f, "renewal_date", *bad, want);
	}
	/* datetime */
	ACCEPT(&f, "last_call_at", "\"2024-09-12T08:30:00Z\"", "2024-09-12T08:30:00Z");
	ACCEPT(&f, "last_call_at", "\"2024-09-12T08:30:00.123Z\"", "2024-09-12T08:30:00.123Z");
	ACCEPT(&f, "last_call_at", "\"2024-09-12T08:30:00+00:00\"", "2024-09-12T08:30:00+00:00");
	ACCEPT(&f, "last_call_at", "\"1726129800000\"", "1726129800000");
	ACCEPT(&f, "last_call_at", "1726129800123", "1726129800123");
	for (const char *const *bad = (const char *const[]){ "\"2024-13-01T00:00:00Z\"",
		     "\"2024-02-30T00:00:00Z\"", "\"2024-01-17T24:00:00Z\"", "\"2024-01-17 19:55:04Z\"",
		     "\"2024-01-17T19:55:04+02:00\"", "\"2024-01-17T19:55:04\"", "\"2024-01-17\"",
		     "\"2024-01-17T19:55:04.Z\"", "\"yesterday\"", NULL }; *bad; bad++) {
		g_autofree char *want = g_strdup_printf("property \"last_call_at\": %s is not a "
			"date-time (like 2024-01-17T19:55:04.281Z, or epoch milliseconds)", *bad);

		REJECT_PROP(&f, "last_call_at", *bad, want);
	}
	/* enumeration */
	ACCEPT(&f, "lifecyclestage", "\"customer\"", "customer");
	REJECT_PROP(&f, "lifecyclestage", "\"custmer\"",
		    "property \"lifecyclestage\": \"custmer\" is not one of subscriber, lead, "
		    "marketingqualifiedlead, salesqualifiedlead, opportunity, customer, evangelist, other");
	REJECT_PROP(&f, "lifecyclestage", "\"Customer\"",
		    "property \"lifecyclestage\": \"Customer\" is not one of subscriber, lead, "
		    "marketingqualifiedlead, salesqualifiedlead, opportunity, customer, evangelist, other");
	REJECT_PROP(&f, "lifecyclestage", "\" customer\"",
		    "property \"lifecyclestage\": \" customer\" has leading or trailing whitespace, which "
		    "enumeration properties do not allow");
	ACCEPT(&f, "favorite_color", "\"red\"", "red");
	REJECT_PROP(&f, "favorite_color", "true",
		    "property \"favorite_color\": \"true\" is not one of red, green, blue");
	/* A long option list is cut. */
	long_enum = with_prop(&f, "industry_segment", "\"SHIPPING\"");
	REJECT(&f, long_enum, "industry_segment",
	       "property \"industry_segment\": \"SHIPPING\" is not one of ACCOUNTING, AIRLINES_AVIATION, "
	       "BANKING, BIOTECHNOLOGY, COMPUTER_SOFTWARE, CONSTRUCTION, CONSUMER_GOODS, "
	       "EDUCATION_MANAGEMENT, FINANCIAL_SERVICES, FOOD_BEVERAGES, …");
	/* checkbox: ;-separated, a leading ; appends */
	ACCEPT(&f, "interests", "\"events\"", "events");
	ACCEPT(&f, "interests", "\"product_updates;webinars;events\"", "product_updates;webinars;events");
	ACCEPT(&f, "interests", "\";product_updates\"", ";product_updates");
	REJECT_PROP(&f, "interests", "\"webinars;podcasts\"",
		    "property \"interests\": \"podcasts\" is not one of product_updates, webinars, events");
	REJECT_PROP(&f, "interests", "\"webinars;;events\"",
		    "property \"interests\": empty value in the ;-separated list; choose from "
		    "product_updates, webinars, events");
	REJECT_PROP(&f, "interests", "\"events;\"",
		    "property \"interests\": empty value in the ;-separated list; choose from "
		    "product_updates, webinars, events");
	REJECT_PROP(&f, "interests", "\";\"",
		    "property \"interests\": empty value in the ;-separated list; choose from "
		    "product_updates, webinars, events");
	/* external options are not checked locally */
	ACCEPT(&f, "account_region", "\"EMEA-South\"", "EMEA-South");
	REJECT_PROP(&f, "account_region", "\"EMEA \"",
		    "property \"account_region\": \"EMEA \" has leading or trailing whitespace, which "
		    "enumeration properties do not allow");
	/* strings: anything up to 65,536 characters; whitespace is data */
	ACCEPT(&f, "jobtitle", "\"  CTO \"", "  CTO ");
	ACCEPT(&f, "phone", "\" +34 600 000 000\"", " +34 600 000 000");
	ACCEPT(&f, "jobtitle", "42", "42");
	s = g_string_new("\"");
	for (int i = 0; i < 65536 / 2; i++)
		g_string_append(s, "é");   /* 2 bytes, 1 character */
	big = g_strdup_printf("%s%s\"", s->str, s->str + 1);
	g_string_free(s, TRUE);
	{
		g_autofree char *edit = with_prop(&f, "notes", big);
		json_object *ch, *bs;
		struct edit_error err;

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		ASSERT_EQ(g_utf8_strlen(json_object_get_string(json_object_object_get(ch, "notes")), -1),
			  65536);
		json_object_put(ch);
		json_object_put(bs);
	}
	too_big = g_strdup_printf("\"x%s", big + 1);
	REJECT_PROP(&f, "notes", too_big, "property \"notes\" is 65537 characters long; the limit is 65,536");
	/* A long bad value is cut in the reason. */
	REJECT_PROP(&f, "nps_score", "\"1234567890123456789012345678901234567890123456789012345678901234567890x\"",
		    "property \"nps_score\": \"123456789012345678901234567890123456789012345678901234567890…\" "
		    "is not a number");
	fx_destroy(&f);
}

/* ---------------------------------------------------------------- the diff */

static void test_diff(void)
{
	struct fx f;
	json_object *ch, *bs;
	struct edit_error err;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	/* The unchanged file: no change, no error, though it shows read-only values. */
	ASSERT_EQ(parse(&f, f.base, &ch, &bs, &err), 0);
	assert_json(ch, "{}");
	assert_json(bs, "{}");
	json_object_put(ch);
	json_object_put(bs);

	/* One change among many unchanged properties. */
	{
		g_autofree char *edit = with_prop(&f, "firstname", "\"Mary\"");

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		assert_json(ch, "{\"firstname\":\"Mary\"}");
		assert_json(bs, "{\"firstname\":\"María\"}");
		json_object_put(ch);
		json_object_put(bs);
	}
	/* null and "" clear; clearing what is unset is no change. */
	{
		const char *edit = "{\"properties\": {\"phone\": null, \"jobtitle\": \"\", "
				   "\"account_region\": null, \"industry_segment\": \"\", "
				   "\"lastname\": \"López\"}}";

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		assert_json(ch, "{\"phone\":\"\",\"jobtitle\":\"\"}");
		assert_json(bs, "{\"phone\":\"+34 600 123 456\",\"jobtitle\":\"Head of Procurement\"}");
		json_object_put(ch);
		json_object_put(bs);
	}
	/* Numbers and booleans become their canonical strings; equal ones are no change. */
	{
		const char *edit = "{\"properties\": {\"nps_score\": 8, \"vip\": true, "
				   "\"favorite_color\": \"blue\"}}";

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		assert_json(ch, "{\"vip\":\"true\"}");
		assert_json(bs, "{\"vip\":\"false\"}");
		json_object_put(ch);
		json_object_put(bs);
	}
	/* A bare properties edit; a property not in the file has no known base. */
	{
		const char *edit = "{\"properties\": {\"nps_score\": 9.5, \"city\": \"Sevilla\", "
				   "\"hubspot_owner_id\": 31000003, \"lifecyclestage\": null}}";

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		assert_json(ch, "{\"nps_score\":\"9.5\",\"city\":\"Sevilla\",\"hubspot_owner_id\":"
			    "\"31000003\",\"lifecyclestage\":\"\"}");
		assert_json(bs, "{\"nps_score\":\"8\",\"city\":null,\"hubspot_owner_id\":\"31000001\","
			    "\"lifecyclestage\":\"lead\"}");
		json_object_put(ch);
		json_object_put(bs);
	}
	/* Clearing a property the file does not show is sent: the writer asked for it. */
	ASSERT_EQ(parse(&f, "{\"properties\": {\"city\": null}}", &ch, &bs, &err), 0);
	assert_json(ch, "{\"city\":\"\"}");
	assert_json(bs, "{\"city\":null}");
	json_object_put(ch);
	json_object_put(bs);
	/* An empty properties object, a BOM, CRLF line ends. */
	ASSERT_EQ(parse(&f, "\xEF\xBB\xBF{\r\n\"properties\": {}\r\n}\r\n", &ch, &bs, &err), 0);
	assert_json(ch, "{}");
	json_object_put(ch);
	json_object_put(bs);
	/* An edit that removes properties leaves them alone. */
	{
		g_autofree char *edit = with_prop(&f, "email", NULL);

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		assert_json(ch, "{}");
		json_object_put(ch);
		json_object_put(bs);
	}
	fx_destroy(&f);
}

static void test_bad_base(void)
{
	struct fx f;
	json_object *ch = (json_object *)1, *bs = (json_object *)1;
	struct edit_error err;
	const char *edit = "{\"properties\": {\"firstname\": \"Ana\"}}";

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	ASSERT_EQ(edit_parse(&f.ctx, edit, strlen(edit), "{\"id\": ", 7, &ch, &bs, &err), -EINVAL);
	ASSERT(!ch && !bs);
	ASSERT_STR(err.reason, "internal error: the record's current version is not a record file");
	ASSERT_EQ(edit_parse(&f.ctx, edit, strlen(edit), NULL, 0, &ch, &bs, &err), -EINVAL);
	fx_destroy(&f);
}

/* ---------------------------------------------------------------- pipelines and owners */

static void test_deal_pipelines(void)
{
	struct fx f;
	json_object *ch, *bs;
	struct edit_error err;

	fx_init(&f, TY_DEALS, "deal_301.json");
	ACCEPT(&f, "dealstage", "\"contractsent\"", "contractsent");
	REJECT_PROP(&f, "dealstage", "\"7421057\"",
		    "property \"dealstage\": \"7421057\" is not a stage of pipeline \"default\" (Sales "
		    "Pipeline); its stages: appointmentscheduled, qualifiedtobuy, presentationscheduled, "
		    "decisionmakerboughtin, contractsent, closedwon, closedlost");
	REJECT_PROP(&f, "dealstage", "\"closed won\"",
		    "property \"dealstage\": \"closed won\" is not a stage of pipeline \"default\" (Sales "
		    "Pipeline); its stages: appointmentscheduled, qualifiedtobuy, presentationscheduled, "
		    "decisionmakerboughtin, contractsent, closedwon, closedlost");
	REJECT_PROP(&f, "dealstage", "null", "property \"dealstage\" cannot be cleared: every deal has a stage");
	REJECT_PROP(&f, "pipeline", "\"\"", "property \"pipeline\" cannot be cleared: every deal is in a pipeline");
	REJECT_PROP(&f, "pipeline", "\"renewals\"",
		    "property \"pipeline\": \"renewals\" is not a deals pipeline; pipelines: 7421055, default");
	/* Moving pipeline needs a stage of the new one. */
	REJECT_PROP(&f, "pipeline", "\"7421055\"",
		    "property \"pipeline\": the deal's dealstage \"qualifiedtobuy\" is not a stage of "
		    "pipeline \"7421055\"; set dealstage too (7421056, 7421057, 7421058)");
	ASSERT_EQ(parse(&f, "{\"properties\": {\"pipeline\": \"7421055\", \"dealstage\": \"7421056\"}}",
			&ch, &bs, &err), 0);
	assert_json(ch, "{\"pipeline\":\"7421055\",\"dealstage\":\"7421056\"}");
	assert_json(bs, "{\"pipeline\":\"default\",\"dealstage\":\"qualifiedtobuy\"}");
	json_object_put(ch);
	json_object_put(bs);
	REJECT(&f, "{\"properties\": {\"dealstage\": \"closedwon\", \"pipeline\": \"7421055\"}}", "dealstage",
	       "property \"dealstage\": \"closedwon\" is not a stage of pipeline \"7421055\" (Renewals); "
	       "its stages: 7421056, 7421057, 7421058");
	/* Other deal properties */
	ACCEPT(&f, "amount", "13000.50", "13000.50");
	REJECT_PROP(&f, "amount", "\"13.000,50\"", "property \"amount\": \"13.000,50\" is not a number");
	REJECT_PROP(&f, "dealtype", "\"upsell\"",
		    "property \"dealtype\": \"upsell\" is not one of newbusiness, existingbusiness");
	REJECT_PROP(&f, "hs_is_closed", "\"true\"", "property \"hs_is_closed\" is read-only");
	/* Without pipelines, stages are not checked. */
	f.ctx.pipelines = NULL;
	ACCEPT(&f, "dealstage", "\"7421057\"", "7421057");
	ACCEPT(&f, "pipeline", "\"renewals\"", "renewals");
	fx_destroy(&f);
}

static void test_deal_without_pipeline(void)
{
	struct fx f;

	fx_init(&f, TY_DEALS, "deal_301.json");
	/* A record with no pipeline is in the default one (not simply the first listed). */
	json_object_object_add(json_object_object_get(f.api, "properties"), "pipeline", NULL);
	g_free(f.base);
	{
		uint64_t id;
		int64_t ms;

		ASSERT_EQ(record_render(f.api, f.s, &f.base, &f.base_len, &id, &ms), 0);
	}
	ASSERT(strstr(f.base, "\"pipeline\": null"));
	ACCEPT(&f, "dealstage", "\"closedlost\"", "closedlost");
	REJECT_PROP(&f, "dealstage", "\"7421056\"",
		    "property \"dealstage\": \"7421056\" is not a stage of pipeline \"default\" (Sales "
		    "Pipeline); its stages: appointmentscheduled, qualifiedtobuy, presentationscheduled, "
		    "decisionmakerboughtin, contractsent, closedwon, closedlost");
	/* An account whose default pipeline has another id: the lowest displayOrder. */
	{
		json_object *sales = json_object_array_get_idx(f.ctx.pipelines, 1);

		ASSERT_STR(json_object_get_string(json_object_object_get(sales, "id")), "default");
		json_object_object_add(sales, "id", json_object_new_string("100"));
		ACCEPT(&f, "dealstage", "\"closedlost\"", "closedlost");
		REJECT_PROP(&f, "dealstage", "\"7421056\"",
			    "property \"dealstage\": \"7421056\" is not a stage of pipeline \"100\" (Sales "
			    "Pipeline); its stages: appointmentscheduled, qualifiedtobuy, presentationscheduled, "
			    "decisionmakerboughtin, contractsent, closedwon, closedlost");
		json_object_object_add(sales, "id", json_object_new_string("default"));
	}
	/* A base pipeline no longer listed: any listed stage goes, others do not. */
	json_object_object_add(json_object_object_get(f.api, "properties"), "pipeline",
			       json_object_new_string("999"));
	g_free(f.base);
	{
		uint64_t id;
		int64_t ms;

		ASSERT_EQ(record_render(f.api, f.s, &f.base, &f.base_len, &id, &ms), 0);
	}
	ACCEPT(&f, "dealstage", "\"7421056\"", "7421056");
	REJECT_PROP(&f, "dealstage", "\"nosuch\"",
		    "property \"dealstage\": \"nosuch\" is not a stage of any deals pipeline");
	fx_destroy(&f);
}

static int parse_new(const struct fx *f, const char *buf, json_object **props, struct edit_error *err)
{
	memset(err, 0x5a, sizeof(*err));
	*props = (json_object *)1;
	return edit_parse_new(&f->ctx, buf, strlen(buf), props, err);
}

static void reject_new_at(int line, const struct fx *f, const char *buf, const char *prop,
			  const char *reason)
{
	json_object *props;
	struct edit_error err;
	int rc = parse_new(f, buf, &props, &err);

	if (rc != -EINVAL || props)
		FAIL("line %d: new record accepted (rc %d), wanted: %s", line, rc, reason);
	if (strcmp(err.property, prop) != 0 || strcmp(err.reason, reason) != 0)
		FAIL("line %d: \"%s\" %s\n  want: \"%s\" %s", line, err.property, err.reason, prop, reason);
}
#define REJECT_NEW(f, buf, prop, reason) reject_new_at(__LINE__, f, buf, prop, reason)

static void test_ticket_pipelines(void)
{
	struct fx f;
	json_object *ch, *bs;
	struct edit_error err;

	fx_init(&f, TY_TICKETS, "ticket_501.json");
	ACCEPT(&f, "hs_pipeline_stage", "\"4\"", "4");
	ACCEPT(&f, "hs_pipeline_stage", "3", "3");
	REJECT_PROP(&f, "hs_pipeline_stage", "\"613\"",
		    "property \"hs_pipeline_stage\": \"613\" is not a stage of pipeline \"0\" (Support "
		    "Pipeline); its stages: 1, 2, 3, 4");
	ASSERT_EQ(parse(&f, "{\"properties\": {\"hs_pipeline\": \"612\", \"hs_pipeline_stage\": \"614\"}}",
			&ch, &bs, &err), 0);
	assert_json(ch, "{\"hs_pipeline\":\"612\",\"hs_pipeline_stage\":\"614\"}");
	json_object_put(ch);
	json_object_put(bs);
	REJECT_PROP(&f, "hs_pipeline", "612",
		    "property \"hs_pipeline\": the ticket's hs_pipeline_stage \"2\" is not a stage of "
		    "pipeline \"612\"; set hs_pipeline_stage too (613, 614)");
	REJECT_PROP(&f, "hs_ticket_priority", "\"low\"",
		    "property \"hs_ticket_priority\": \"low\" is not one of LOW, MEDIUM, HIGH");
	/* a new ticket needs a subject and a stage */
	{
		json_object *props;

		ASSERT_EQ(parse_new(&f, "{\"properties\": {\"subject\": \"S\", \"hs_pipeline_stage\": \"1\"}}",
				    &props, &err), 0);
		json_object_put(props);
	}
	REJECT_NEW(&f, "{\"properties\": {\"subject\": \"S\"}}", "hs_pipeline_stage",
		   "property \"hs_pipeline_stage\" is required to create a ticket");
	REJECT_NEW(&f, "{\"properties\": {\"hs_pipeline_stage\": \"1\", \"content\": \"c\"}}", "subject",
		   "property \"subject\" is required to create a ticket");
	fx_destroy(&f);
}

static void test_owners(void)
{
	struct fx f;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	ACCEPT(&f, "hubspot_owner_id", "\"31000002\"", "31000002");
	ACCEPT(&f, "hubspot_owner_id", "31000003", "31000003");
	ACCEPT(&f, "hubspot_owner_id", "null", "");
	REJECT_PROP(&f, "hubspot_owner_id", "\"999\"",
		    "property \"hubspot_owner_id\": \"999\" is not an owner id (see owners/)");
	REJECT_PROP(&f, "hubspot_owner_id", "\"alice.mercer@hubfs-sandbox.test\"",
		    "property \"hubspot_owner_id\": \"alice.mercer@hubfs-sandbox.test\" is not an owner "
		    "id (see owners/)");
	REJECT_PROP(&f, "hubspot_owner_id", "\"31000002 \"",
		    "property \"hubspot_owner_id\": \"31000002 \" has leading or trailing whitespace, "
		    "which enumeration properties do not allow");
	/* Without the owner list, owners are not checked. */
	f.ctx.owner_ids = NULL;
	ACCEPT(&f, "hubspot_owner_id", "\"999\"", "999");
	fx_destroy(&f);
}

/* ---------------------------------------------------------------- new records */


static void test_new_contact(void)
{
	struct fx f;
	json_object *props;
	struct edit_error err;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	/* A copied record file is a template: system fields and read-only
	 * properties are ignored, nulls dropped, the rest kept in file order. */
	{
		g_autofree char *copy = with_top(&f, "id", "\"999\"");

		ASSERT_EQ(parse_new(&f, copy, &props, &err), 0);
		assert_json(props, "{\"company\":\"Acme Ibérica\",\"createdate\":"
			    "\"2024-01-17T19:55:04.281Z\",\"email\":\"maria.lopez@example.com\","
			    "\"favorite_color\":\"blue\",\"firstname\":\"María\","
			    "\"hs_lead_status\":\"OPEN\",\"hubspot_owner_id\":\"31000001\",\"interests\":"
			    "\"webinars;events\",\"jobtitle\":\"Head of Procurement\",\"last_call_at\":"
			    "\"2024-09-10T08:00:00.000Z\",\"lastname\":\"López\",\"lifecyclestage\":\"lead\","
			    "\"notes\":\"Prefers email.\\nCall only after 10:00.\",\"nps_score\":\"8\","
			    "\"phone\":\"+34 600 123 456\",\"renewal_date\":\"2025-03-01\",\"vip\":\"false\"}");
		json_object_put(props);
	}
	ASSERT_EQ(parse_new(&f, "{\"properties\": {\"email\": \"new@example.com\", \"vip\": true, "
			    "\"nps_score\": 10, \"phone\": \"\", \"hs_object_id\": {\"x\": 1}, "
			    "\"lastmodifieddate\": \"yesterday\"}}", &props, &err), 0);
	assert_json(props, "{\"email\":\"new@example.com\",\"vip\":\"true\",\"nps_score\":\"10\"}");
	json_object_put(props);

	REJECT_NEW(&f, "", "", "empty file");
	REJECT_NEW(&f, "{\"properties\": {}}", "", "no properties to create");
	REJECT_NEW(&f, "{\"properties\": {\"email\": null, \"phone\": \"\", \"hs_object_id\": \"5\"}}", "",
		   "no properties to create");
	REJECT_NEW(&f, "{\"properties\": {\"email\": \"a@b.com\"", "",
		   "invalid JSON at line 1, column 35: unexpected end of file");
	REJECT_NEW(&f, "{\"properties\": {\"email\": \"a@b.com\"}, \"associations\": []}", "",
		   "unknown key \"associations\"; a record file has only id, properties, createdAt, "
		   "updatedAt and archived");
	REJECT_NEW(&f, "{\"email\": \"a@b.com\"}", "",
		   "unknown key \"email\"; a record file has only id, properties, createdAt, updatedAt "
		   "and archived");
	REJECT_NEW(&f, "{\"properties\": {\"email\": \"a@b.com\", \"emial\": \"a@b.com\"}}", "emial",
		   "property \"emial\" does not exist on contacts");
	REJECT_NEW(&f, "{\"properties\": {\"email\": \"a@b.com\", \"lifecyclestage\": \"prospect\"}}",
		   "lifecyclestage", "property \"lifecyclestage\": \"prospect\" is not one of subscriber, "
		   "lead, marketingqualifiedlead, salesqualifiedlead, opportunity, customer, evangelist, other");
	REJECT_NEW(&f, "{\"properties\": {\"email\": \"a@b.com\", \"hubspot_owner_id\": \"1\"}}",
		   "hubspot_owner_id", "property \"hubspot_owner_id\": \"1\" is not an owner id (see owners/)");
	REJECT_NEW(&f, "{\"properties\": {\"email\": [\"a@b.com\"]}}", "email",
		   "property \"email\": a value must be a string, number, true, false or null, not an array");
	fx_destroy(&f);
}

static void test_new_deal(void)
{
	struct fx f;
	json_object *props;
	struct edit_error err;

	fx_init(&f, TY_DEALS, "deal_301.json");
	/* No pipeline: the default pipeline's stages. */
	ASSERT_EQ(parse_new(&f, "{\"properties\": {\"dealname\": \"New\", \"dealstage\": \"closedwon\"}}",
			    &props, &err), 0);
	assert_json(props, "{\"dealname\":\"New\",\"dealstage\":\"closedwon\"}");
	json_object_put(props);
	REJECT_NEW(&f, "{\"properties\": {\"dealname\": \"New\", \"dealstage\": \"7421057\"}}", "dealstage",
		   "property \"dealstage\": \"7421057\" is not a stage of pipeline \"default\" (Sales "
		   "Pipeline); its stages: appointmentscheduled, qualifiedtobuy, presentationscheduled, "
		   "decisionmakerboughtin, contractsent, closedwon, closedlost");
	ASSERT_EQ(parse_new(&f, "{\"properties\": {\"dealname\": \"R\", \"pipeline\": \"7421055\", "
			    "\"dealstage\": \"7421057\", \"amount\": 1e2}}", &props, &err), 0);
	assert_json(props, "{\"dealname\":\"R\",\"pipeline\":\"7421055\",\"dealstage\":\"7421057\","
		    "\"amount\":\"100\"}");
	json_object_put(props);
	REJECT_NEW(&f, "{\"properties\": {\"dealname\": \"R\", \"pipeline\": \"nope\"}}", "pipeline",
		   "property \"pipeline\": \"nope\" is not a deals pipeline; pipelines: 7421055, default");
	/* HubSpot refuses a deal without a name or a stage: so does the close. */
	REJECT_NEW(&f, "{\"properties\": {\"dealname\": \"R\", \"amount\": 5}}", "dealstage",
		   "property \"dealstage\" is required to create a deal");
	REJECT_NEW(&f, "{\"properties\": {\"dealname\": \"\", \"dealstage\": \"closedwon\"}}", "dealname",
		   "property \"dealname\" is required to create a deal");
	/* The copied deal file, its read-only and calculated values ignored. */
	ASSERT_EQ(parse_new(&f, f.base, &props, &err), 0);
	assert_json(props, "{\"amount\":\"12500\",\"closedate\":\"2024-12-20T00:00:00.000Z\","
		    "\"createdate\":\"2024-02-01T09:30:00.000Z\",\"dealname\":\"Acme Ibérica renewal 2025\","
		    "\"dealstage\":\"qualifiedtobuy\",\"forecast_note\":\"Budget confirmed in Q3 call.\","
		    "\"hubspot_owner_id\":\"31000002\",\"pipeline\":\"default\"}");
	json_object_put(props);
	fx_destroy(&f);
}


/* ---------------------------------------------------------------- other types */

/* A type of the full standard registry, with a made-up schema of the given
 * "name:type" properties, for new records of every kind. */
struct nfx {
	struct objtypes *r;
	struct schema *s;
	struct edit_ctx ctx;
};

static void nfx_init(struct nfx *f, const char *type, const char *const *props)
{
	struct objtypes_opts o = { 0 };
	json_object *resp = json_object_new_object(), *res = json_object_new_array();
	const char *why = NULL;

	memset(f, 0, sizeof(*f));
	ASSERT_EQ(objtypes_new(&o, NULL, NULL, &f->r, &why), 0);
	for (; *props; props++) {
		json_object *d = json_object_new_object();
		g_auto(GStrv) nt = g_strsplit(*props, ":", 2);

		json_object_object_add(d, "name", json_object_new_string(nt[0]));
		json_object_object_add(d, "type", json_object_new_string(nt[1]));
		json_object_object_add(d, "fieldType", json_object_new_string(
			!strcmp(nt[1], "datetime") ? "date" : "text"));
		json_object_array_add(res, d);
	}
	json_object_object_add(resp, "results", res);
	f->ctx.type = objtypes_by_name(f->r, type, strlen(type));
	ASSERT(f->ctx.type);
	ASSERT_EQ(schema_new(f->ctx.type, resp, NULL, &f->s), 0);
	json_object_put(resp);
	f->ctx.schema = f->s;
	f->ctx.types = f->r;
	f->ctx.now_ms = INT64_C(1780000000000); /* 2026-05-28T20:26:40.000Z */
}

static void nfx_destroy(struct nfx *f)
{
	schema_free(f->s);
	objtypes_free(f->r);
}

static int create(const struct nfx *f, const char *buf, json_object **props, json_object **assocs,
		  struct edit_error *err)
{
	memset(err, 0x5a, sizeof(*err));
	*props = *assocs = (json_object *)1;
	return edit_parse_create(&f->ctx, buf, strlen(buf), props, assocs, err);
}

static void reject_create_at(int line, const struct nfx *f, const char *buf, const char *prop,
			     const char *reason)
{
	json_object *props, *assocs;
	struct edit_error err;
	int rc = create(f, buf, &props, &assocs, &err);

	if (rc != -EINVAL || props || assocs)
		FAIL("line %d: create accepted (rc %d), wanted: %s", line, rc, reason);
	if (strcmp(err.property, prop) != 0 || strcmp(err.reason, reason) != 0)
		FAIL("line %d: \"%s\" %s\n  want: \"%s\" %s", line, err.property, err.reason, prop,
		     reason);
}
#define REJECT_CREATE(f, buf, prop, reason) reject_create_at(__LINE__, f, buf, prop, reason)

static const char *const note_props[] = { "hs_timestamp:datetime", "hs_note_body:string", NULL };

static void test_new_note_timestamp(void)
{
	static const char *const meeting_props[] = { "hs_timestamp:datetime",
		"hs_meeting_title:string", "hs_meeting_start_time:datetime", NULL };
	struct nfx f;
	json_object *props, *assocs;
	struct edit_error err;

	nfx_init(&f, "notes", note_props);
	/* An engagement without hs_timestamp happens now. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_note_body\": \"Called about pricing\"}}", &props,
			 &assocs, &err), 0);
	assert_json(props, "{\"hs_note_body\":\"Called about pricing\","
		    "\"hs_timestamp\":\"2026-05-28T20:26:40.000Z\"}");
	ASSERT(!assocs);
	json_object_put(props);
	/* One the file gives (or empties: then now) is kept. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_note_body\": \"x\", \"hs_timestamp\": "
			 "\"2025-01-02T03:04:05.000Z\"}}", &props, &assocs, &err), 0);
	assert_json(props, "{\"hs_note_body\":\"x\",\"hs_timestamp\":\"2025-01-02T03:04:05.000Z\"}");
	json_object_put(props);
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\", \"hs_timestamp\": \"soon\"}}",
		      "hs_timestamp", "property \"hs_timestamp\": \"soon\" is not a date-time "
		      "(like 2024-01-17T19:55:04.281Z, or epoch milliseconds)");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_timestamp\": \"\"}}", "", "no properties to create");
	/* Without a clock, nothing is filled in: HubSpot's requirement stands. */
	f.ctx.now_ms = 0;
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}}", "hs_timestamp",
		      "property \"hs_timestamp\" is required to create a note");
	nfx_destroy(&f);

	/* A meeting takes its start time, as HubSpot would. */
	nfx_init(&f, "meetings", meeting_props);
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_meeting_title\": \"Kick-off\", "
			 "\"hs_meeting_start_time\": \"2026-06-01T09:00:00.000Z\"}}", &props, &assocs,
			 &err), 0);
	assert_json(props, "{\"hs_meeting_title\":\"Kick-off\",\"hs_meeting_start_time\":"
		    "\"2026-06-01T09:00:00.000Z\",\"hs_timestamp\":\"2026-06-01T09:00:00.000Z\"}");
	json_object_put(props);
	nfx_destroy(&f);
}

static void test_new_required(void)
{
	static const char *const quote_props[] = { "hs_title:string", "hs_expiration_date:date",
		"hs_status:string", NULL };
	static const char *const email_props[] = { "hs_timestamp:datetime",
		"hs_email_direction:string", "hs_email_subject:string", NULL };
	struct nfx f;

	/* Every missing required property is named; the first is the one at fault. */
	nfx_init(&f, "quotes", quote_props);
	REJECT_CREATE(&f, "{\"properties\": {\"hs_status\": \"DRAFT\"}}", "hs_title",
		      "properties \"hs_title\", \"hs_expiration_date\" are required to create a quote");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_title\": \"Q-1\"}}", "hs_expiration_date",
		      "property \"hs_expiration_date\" is required to create a quote");
	nfx_destroy(&f);
	/* hs_timestamp is filled in; the email's direction is not. */
	nfx_init(&f, "emails", email_props);
	REJECT_CREATE(&f, "{\"properties\": {\"hs_email_subject\": \"Hi\"}}", "hs_email_direction",
		      "property \"hs_email_direction\" is required to create an email");
	nfx_destroy(&f);
}

static void test_new_associations(void)
{
	struct nfx f;
	json_object *props, *assocs;
	struct edit_error err;

	nfx_init(&f, "notes", note_props);
	/* By type: the default association type of each pair; repeats merged. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
			 "{\"contacts\": [\"101\", 102, \"101\"], \"deals\": \"301\"}}", &props, &assocs,
			 &err), 0);
	assert_json(assocs, "[{\"toObjectTypeId\":\"0-1\",\"to\":{\"id\":\"101\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":202}]},"
		    "{\"toObjectTypeId\":\"0-1\",\"to\":{\"id\":\"102\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":202}]},"
		    "{\"toObjectTypeId\":\"0-3\",\"to\":{\"id\":\"301\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":214}]}]");
	json_object_put(props);
	json_object_put(assocs);
	/* HubSpot's array form: the type id says which type the record is. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
			 "[{\"to\": {\"id\": \"101\"}, \"types\": [{\"associationCategory\": "
			 "\"HUBSPOT_DEFINED\", \"associationTypeId\": 202}]}, {\"to\": {\"id\": 201}, "
			 "\"types\": [{\"associationCategory\": \"HUBSPOT_DEFINED\", "
			 "\"associationTypeId\": 190}]}]}", &props, &assocs, &err), 0);
	assert_json(assocs, "[{\"toObjectTypeId\":\"0-1\",\"to\":{\"id\":\"101\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":202}]},"
		    "{\"toObjectTypeId\":\"0-2\",\"to\":{\"id\":\"201\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":190}]}]");
	json_object_put(props);
	json_object_put(assocs);
	/* None, or empty: no associations. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": {}}",
			 &props, &assocs, &err), 0);
	ASSERT(!assocs);
	json_object_put(props);

	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "{\"widgets\": [\"1\"]}}", "",
		      "associations: \"widgets\" is not an object type of this mount");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "{\"products\": [\"1\"]}}", "", "associations: notes cannot be associated with "
		      "products");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "{\"contacts\": [\"01\"]}}", "", "associations: \"contacts\": \"01\" is not a "
		      "record id (write a list of ids, like [\"101\"])");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "{\"contacts\": [{\"id\": 1}]}}", "", "associations: \"contacts\": an object is "
		      "not a record id (write a list of ids, like [\"101\"])");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": \"101\"}",
		      "", "associations: write {\"contacts\": [\"101\"], …} or HubSpot's array "
		      "[{\"to\": {\"id\": \"101\"}, \"types\": […]}], not a string");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "[{\"to\": {\"id\": \"101\"}, \"types\": [{\"associationCategory\": "
		      "\"HUBSPOT_DEFINED\", \"associationTypeId\": 999}]}]}", "",
		      "associations: entry 1: association type 999 is not a default association type "
		      "from notes that hubfs knows; write {\"<type>\": [\"<id>\"]} instead");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "[{\"to\": {\"id\": \"101\"}, \"types\": [{\"associationCategory\": "
		      "\"HUBSPOT\", \"associationTypeId\": 202}]}]}", "",
		      "associations: entry 1: associationCategory must be HUBSPOT_DEFINED, "
		      "USER_DEFINED or INTEGRATOR_DEFINED");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "[{\"to\": {\"id\": \"101\"}, \"types\": [{\"associationCategory\": "
		      "\"HUBSPOT_DEFINED\", \"associationTypeId\": 202}, {\"associationCategory\": "
		      "\"HUBSPOT_DEFINED\", \"associationTypeId\": 214}]}]}", "",
		      "associations: entry 1: its types lead to contacts and deals; one entry is one "
		      "record");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": [{\"to\": "
		      "\"101\"}]}", "", "associations: entry 1 must be {\"to\": {\"id\": \"…\"}, "
		      "\"types\": [{\"associationCategory\": …, \"associationTypeId\": …}]}");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associatons\": {}}", "",
		      "unknown key \"associatons\"; a record file has only id, properties, createdAt, "
		      "updatedAt and archived (and, to create, associations)");
	/* Without a registry they cannot be checked: refused, not dropped. */
	f.ctx.types = NULL;
	REJECT_CREATE(&f, "{\"properties\": {\"hs_note_body\": \"x\"}, \"associations\": "
		      "{\"contacts\": [\"101\"]}}", "", "associations: cannot be checked here");
	nfx_destroy(&f);
}

static void test_new_lead(void)
{
	static const char *const lead_props[] = { "hs_lead_name:string", NULL };
	struct nfx f;
	json_object *props, *assocs;
	struct edit_error err;

	nfx_init(&f, "leads", lead_props);
	/* The first contact becomes the lead's primary contact. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_lead_name\": \"Acme\"}, \"associations\": "
			 "{\"companies\": [\"201\"], \"contacts\": [\"101\", \"102\"]}}", &props,
			 &assocs, &err), 0);
	assert_json(assocs, "[{\"toObjectTypeId\":\"0-2\",\"to\":{\"id\":\"201\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":610}]},"
		    "{\"toObjectTypeId\":\"0-1\",\"to\":{\"id\":\"101\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":578}]},"
		    "{\"toObjectTypeId\":\"0-1\",\"to\":{\"id\":\"102\"},\"types\":"
		    "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":608}]}]");
	json_object_put(props);
	json_object_put(assocs);
	/* The array form names the primary type itself. */
	ASSERT_EQ(create(&f, "{\"properties\": {\"hs_lead_name\": \"Acme\"}, \"associations\": "
			 "[{\"to\": {\"id\": \"101\"}, \"types\": [{\"associationCategory\": "
			 "\"HUBSPOT_DEFINED\", \"associationTypeId\": 578}]}]}", &props, &assocs,
			 &err), 0);
	json_object_put(props);
	json_object_put(assocs);
	REJECT_CREATE(&f, "{\"properties\": {\"hs_lead_name\": \"Acme\"}}", "",
		      "a lead must be created with an existing contact: add \"associations\": "
		      "{\"contacts\": [\"<contact id>\"]}");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_lead_name\": \"Acme\"}, \"associations\": "
		      "{\"companies\": [\"201\"]}}", "", "a lead must be created with an existing "
		      "contact: add \"associations\": {\"contacts\": [\"<contact id>\"]}");
	REJECT_CREATE(&f, "{\"properties\": {\"hs_lead_name\": \"Acme\"}, \"associations\": "
		      "[{\"to\": {\"id\": \"101\"}, \"types\": [{\"associationCategory\": "
		      "\"HUBSPOT_DEFINED\", \"associationTypeId\": 608}]}]}", "",
		      "associations: a lead is created with its primary contact (association type "
		      "578), which none of its contacts is");
	/* Required properties are checked first. */
	REJECT_CREATE(&f, "{\"properties\": {\"hs_lead_name\": \"\"}, \"associations\": "
		      "{\"contacts\": [\"101\"]}}", "", "no properties to create");
	nfx_destroy(&f);
}

/* ---------------------------------------------------------------- edit_apply */

/* record_render of the API object with props set (NULL value: unset). */
static char *render_with(const struct fx *f, const char *const *kv)
{
	json_object *o = json_tokener_parse(json_object_to_json_string(f->api));
	json_object *props = json_object_object_get(o, "properties");
	char *text;
	size_t len;
	uint64_t id;
	int64_t ms;

	for (; kv[0]; kv += 2)
		json_object_object_add(props, kv[0], kv[1] ? json_object_new_string(kv[1]) : NULL);
	ASSERT_EQ(record_render(o, f->s, &text, &len, &id, &ms), 0);
	json_object_put(o);
	return text;
}

static void test_apply(void)
{
	struct fx f;
	json_object *ch, *bs;
	struct edit_error err;
	char *text, *text2;
	size_t len, len2;
	g_autofree char *golden = NULL;

	fx_init(&f, TY_CONTACTS, "contact_101.json");
	/* apply(base, parse(edited)) is what the server's version would render as. */
	{
		const char *edit = "{\"properties\": {\"firstname\": \"Mary\", \"phone\": null, "
				   "\"nps_score\": 10, \"vip\": true, \"interests\": \";product_updates\", "
				   "\"lifecyclestage\": \"customer\", \"account_region\": \"EMEA\", "
				   "\"city\": \"Sevilla\"}}";
		const char *kv[] = { "firstname", "Mary", "phone", NULL, "nps_score", "10", "vip", "true",
				     "interests", "webinars;events;product_updates", "lifecyclestage", "customer",
				     "account_region", "EMEA", NULL };
		g_autofree char *want = render_with(&f, kv);

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		ASSERT_EQ(edit_apply(f.s, f.base, f.base_len, ch, &text, &len), 0);
		ASSERT_STR(text, want);
		ASSERT_EQ(len, strlen(want));
		golden = slurp("contact_101_applied.json");
		ASSERT_STR(text, golden);
		/* Applying the same changes again changes nothing; the result parses
		 * as a no-change edit of itself. */
		ASSERT_EQ(edit_apply(f.s, text, len, ch, &text2, &len2), 0);
		ASSERT_STR(text2, text);
		g_free(text2);
		json_object_put(ch);
		json_object_put(bs);
		ASSERT_EQ(edit_parse(&f.ctx, text, len, text, len, &ch, &bs, &err), 0);
		assert_json(ch, "{}");
		json_object_put(ch);
		json_object_put(bs);
		g_free(text);
	}
	/* A full-file edit with one change applies to the same text as editing it. */
	{
		g_autofree char *edit = with_prop(&f, "jobtitle", "\"CEO\"");

		ASSERT_EQ(parse(&f, edit, &ch, &bs, &err), 0);
		ASSERT_EQ(edit_apply(f.s, f.base, f.base_len, ch, &text, &len), 0);
		ASSERT_STR(text, edit);
		g_free(text);
		json_object_put(ch);
		json_object_put(bs);
	}
	/* Changes to properties the file does not show leave the text alone. */
	ASSERT_EQ(parse(&f, "{\"properties\": {\"city\": \"Bilbao\"}}", &ch, &bs, &err), 0);
	ASSERT_EQ(edit_apply(f.s, f.base, f.base_len, ch, &text, &len), 0);
	ASSERT_STR(text, f.base);
	ASSERT_EQ(len, f.base_len);
	g_free(text);
	json_object_put(ch);
	json_object_put(bs);
	/* No changes: the base again. */
	ASSERT_EQ(edit_apply(f.s, f.base, f.base_len, NULL, &text, &len), 0);
	ASSERT_STR(text, f.base);
	g_free(text);
	/* A base that is not a record file. */
	ch = json_tokener_parse("{\"firstname\": \"A\"}");
	ASSERT_EQ(edit_apply(f.s, "{\"properties\": {}}", 18, ch, &text, &len), -EINVAL);
	ASSERT_EQ(edit_apply(f.s, "nope", 4, ch, &text, &len), -EINVAL);
	json_object_put(ch);
	fx_destroy(&f);
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "tests/unit/golden";
	RUN(test_reject_file_shape);
	RUN(test_reject_system_fields);
	RUN(test_nul_in_base);
	RUN(test_reject_properties);
	RUN(test_formats);
	RUN(test_diff);
	RUN(test_bad_base);
	RUN(test_deal_pipelines);
	RUN(test_deal_without_pipeline);
	RUN(test_ticket_pipelines);
	RUN(test_owners);
	RUN(test_new_contact);
	RUN(test_new_deal);
	RUN(test_new_note_timestamp);
	RUN(test_new_required);
	RUN(test_new_associations);
	RUN(test_new_lead);
	RUN(test_apply);
	return 0;
}
