/* test_assocfile.c - <type>/<id>/associations.json (cache/model/assocfile.h):
 * canonical types, rendering (sorted keys and ids, labels from types),
 * parsing of saved files (and what it refuses), and the diff a save turns
 * into. No network. */
#include <errno.h>

#include <glib.h>
#include <json-c/json.h>

#include "cache/model/assocfile.h"
#include "tests/unit/test.h"

static json_object *J(const char *s)
{
	json_object *o = json_tokener_parse(s);

	if (!o)
		FAIL("test JSON does not parse: %s", s);
	return o;
}

static void test_types_canon(void)
{
	json_object *t = J("[{\"category\":\"USER_DEFINED\",\"typeId\":30,\"label\":\"Billing contact\"},"
			   "{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":\"1\","
			   "\"label\":\"Primary\"},{\"category\":\"HUBSPOT_DEFINED\",\"typeId\":279,"
			   "\"label\":null},{\"typeId\":30},{\"typeId\":\"x\"},7]");
	char *s = assocfile_types_canon(t), *e, *e2;

	ASSERT_STR(s, "[{\"category\":\"HUBSPOT_DEFINED\",\"typeId\":1,\"label\":\"Primary\"},"
		      "{\"category\":\"USER_DEFINED\",\"typeId\":30,\"label\":\"Billing contact\"},"
		      "{\"category\":\"HUBSPOT_DEFINED\",\"typeId\":279,\"label\":null}]");
	e = assocfile_types_edit(s, "USER_DEFINED", 37, "Decision maker", true);
	ASSERT(strstr(e, "\"typeId\":37,\"label\":\"Decision maker\"") != NULL);
	e2 = assocfile_types_edit(e, NULL, 1, NULL, false);
	ASSERT(strstr(e2, "Primary") == NULL && strstr(e2, "Decision maker") != NULL);
	g_free(e2);
	e2 = assocfile_types_canon(NULL);
	ASSERT_STR(e2, "[]");
	g_free(e2);
	e2 = assocfile_types_edit(NULL, "HUBSPOT_DEFINED", 279, NULL, true);
	ASSERT_STR(e2, "[{\"category\":\"HUBSPOT_DEFINED\",\"typeId\":279,\"label\":null}]");
	g_free(e2);
	g_free(e);
	g_free(s);
	json_object_put(t);
}

static void test_render(void)
{
	json_object *by = J("{\"deals\": [], \"companies\": ["
			    "{\"id\": \"202\", \"types\": [{\"category\":\"HUBSPOT_DEFINED\","
			    "\"typeId\":279,\"label\":null}]},"
			    "{\"id\": 31, \"types\": [{\"category\":\"USER_DEFINED\",\"typeId\":30,"
			    "\"label\":\"Billing contact\"},"
			    "{\"category\":\"HUBSPOT_DEFINED\",\"typeId\":1,\"label\":\"Primary\"}]},"
			    "{\"id\": \"31\"}, {\"id\": \"bad\"}]}");
	size_t len;
	char *text = assocfile_render(by, &len);
	json_object *o = J(text), *c, *e;

	ASSERT_EQ(len, strlen(text));
	ASSERT(text[len - 1] == '\n');
	ASSERT(strstr(text, "\"companies\"") < strstr(text, "\"deals\""));
	c = json_object_object_get(o, "companies");
	ASSERT_EQ(json_object_array_length(c), 2);
	e = json_object_array_get_idx(c, 0);
	ASSERT_STR(json_object_get_string(json_object_object_get(e, "id")), "31");
	ASSERT_STR(json_object_to_json_string_ext(json_object_object_get(e, "labels"),
						  JSON_C_TO_STRING_PLAIN),
		   "[\"Primary\",\"Billing contact\"]");
	e = json_object_array_get_idx(c, 1);
	ASSERT_EQ(json_object_array_length(json_object_object_get(e, "labels")), 0);
	ASSERT_EQ(json_object_array_length(json_object_object_get(o, "deals")), 0);
	/* what it renders parses back to the same state */
	{
		json_object *p = NULL;
		char *why = NULL;

		ASSERT_EQ(assocfile_parse(text, len, &p, &why), 0);
		ASSERT_STR(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN),
			   "{\"companies\":{\"31\":[\"Billing contact\",\"Primary\"],\"202\":[]},"
			   "\"deals\":{}}");
		json_object_put(p);
	}
	json_object_put(o);
	g_free(text);
	json_object_put(by);
}

static void refused(const char *text, const char *why_has)
{
	json_object *o = NULL;
	char *why = NULL;

	if (assocfile_parse(text, strlen(text), &o, &why) != -EINVAL)
		FAIL("accepted: %s", text);
	ASSERT(o == NULL && why != NULL);
	if (!strstr(why, why_has))
		FAIL("reason \"%s\" lacks \"%s\" (%s)", why, why_has, text);
	g_free(why);
}

static void test_parse_refuses(void)
{
	refused("", "empty");
	refused("{\"companies\": [", "line 1");
	refused("[1]", "not a JSON object");
	refused("{\"companies\": {}}", "companies: must be a list");
	refused("{\"companies\": [7]}", "entry 1 is not an object");
	refused("{\"companies\": [{\"labels\": []}]}", "no valid \"id\"");
	refused("{\"companies\": [{\"id\": \"0\"}]}", "no valid \"id\"");
	refused("{\"companies\": [{\"id\": \"12a\"}]}", "no valid \"id\"");
	refused("{\"companies\": [{\"id\": 5}, {\"id\": \"5\"}]}", "5 is listed twice");
	refused("{\"companies\": [{\"id\": 5, \"labels\": \"Primary\"}]}", "must be a list");
	refused("{\"companies\": [{\"id\": 5, \"labels\": [\"\"]}]}", "non-empty strings");
	refused("{\"companies\": [{\"id\": 5, \"labels\": [3]}]}", "non-empty strings");
	refused("{\"a\": []} x", "after the end");
}

static GArray *diff(const char *before, const char *after, json_object **b, json_object **a)
{
	char *why = NULL;

	ASSERT_EQ(assocfile_parse(before, strlen(before), b, &why), 0);
	ASSERT_EQ(assocfile_parse(after, strlen(after), a, &why), 0);
	return assocfile_diff(*b, *a);
}

static void assert_change(GArray *c, guint i, const char *name, uint64_t id,
			  enum assoc_change_op op, const char *label)
{
	const struct assoc_change *x;

	if (i >= c->len)
		FAIL("change %u of %u", i, c->len);
	x = &g_array_index(c, struct assoc_change, i);
	ASSERT_STR(x->name, name);
	ASSERT_EQ(x->id, id);
	ASSERT_EQ(x->op, op);
	if (label)
		ASSERT_STR(x->label, label);
	else
		ASSERT(x->label == NULL);
}

static void test_diff(void)
{
	json_object *b, *a;
	GArray *c = diff("{\"companies\": [{\"id\": \"1\", \"labels\": [\"Primary\"]},"
			 " {\"id\": \"2\", \"labels\": [\"Billing contact\"]}, {\"id\": \"3\"}],"
			 " \"deals\": [{\"id\": \"9\"}], \"tickets\": [{\"id\": \"8\"}]}",
			 /* deals left out: left alone; tickets []: all removed */
			 "{\"tickets\": [], \"companies\": [{\"id\": 1, \"labels\": [\"Primary\","
			 " \"Decision maker\"], \"types\": \"ignored\"}, {\"id\": \"2\"},"
			 " {\"id\": \"4\", \"labels\": [\"Billing contact\"]}, {\"id\": \"5\"}]}",
			 &b, &a);

	ASSERT_EQ(c->len, 6);
	assert_change(c, 0, "companies", 1, AC_LABEL_ADD, "Decision maker");
	assert_change(c, 1, "companies", 2, AC_LABEL_DEL, "Billing contact");
	assert_change(c, 2, "companies", 3, AC_LINK_DEL, NULL);
	assert_change(c, 3, "companies", 4, AC_LABEL_ADD, "Billing contact");
	assert_change(c, 4, "companies", 5, AC_LINK_ADD, NULL);
	assert_change(c, 5, "tickets", 8, AC_LINK_DEL, NULL);
	g_array_free(c, TRUE);
	json_object_put(b);
	json_object_put(a);

	/* the same state, differently written: nothing */
	c = diff("{\"companies\": [{\"id\": \"1\", \"labels\": [\"A\", \"B\"]}]}",
		 "{\"companies\": [{\"id\": 1, \"labels\": [\"B\", \"A\", \"A\"]}]}", &b, &a);
	ASSERT_EQ(c->len, 0);
	g_array_free(c, TRUE);
	json_object_put(b);
	json_object_put(a);
}

int main(void)
{
	RUN(test_types_canon);
	RUN(test_render);
	RUN(test_parse_refuses);
	RUN(test_diff);
	return 0;
}
