/* The query language of search/<type>/<query>/: parsing (every form, percent-
 * decoding, every refusal and its reason, the caps at their edges), the exact
 * search request, a table of local matches, and a cross-check of query_match
 * against the sandbox's search over a seeded account (skipped, with a message,
 * when /usr/bin/python3 is missing). argv[1] is tests/unit/golden. */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "cache/model/query.h"
#include "cache/model/schema.h"
#include "client/hubspot.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

static const char *dir;
static struct schema *schemas[TY_COUNT];

static json_object *load_json(const char *name)
{
	g_autofree char *p = g_build_filename(dir, "edit", name, NULL);
	json_object *o = json_object_from_file(p);

	if (!o)
		FAIL("cannot read %s", p);
	return o;
}

static void load_schemas(void)
{
	static const int types[] = { TY_CONTACTS, TY_DEALS, TY_TICKETS };

	for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autofree char *name = g_strdup_printf("%s_props.json", ty(types[i])->name);
		json_object *resp = load_json(name);

		ASSERT_EQ(schema_new(ty(types[i]), resp, "all", &schemas[types[i]]), 0);
		json_object_put(resp);
	}
}

static const char *plain(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static struct query *parse_ok(int t, const char *text)
{
	struct query *q = NULL;
	char *why = NULL;
	int rc = query_parse(text, ty(t), schemas[t], &q, &why);

	if (rc != 0 || !q)
		FAIL("query %s on %s refused: %s", text, ty(t)->name, why ? why : "(no reason)");
	ASSERT(why == NULL);
	return q;
}

/* The filterGroups (and query) the text parses into, against expect (any JSON
 * spacing). */
static void check_parse(int t, const char *text, const char *groups, const char *free_text)
{
	struct query *q = parse_ok(t, text);
	json_object *r = query_request(q, NULL, 0, 10, NULL, 0), *fg, *qt = NULL, *want;

	ASSERT(json_object_object_get_ex(r, "filterGroups", &fg));
	want = json_tokener_parse(groups);
	if (!want)
		FAIL("bad expectation %s", groups);
	{
		g_autofree char *w = g_strdup(plain(want));

		if (strcmp(plain(fg), w) != 0)
			FAIL("query %s: filterGroups\n  got  %s\n  want %s", text, plain(fg), w);
	}
	json_object_object_get_ex(r, "query", &qt);
	if (free_text)
		ASSERT_STR(qt ? json_object_get_string(qt) : NULL, free_text);
	else
		ASSERT(qt == NULL);
	json_object_put(want);
	json_object_put(r);
	query_free(q);
}

/* The text is refused with -EINVAL and exactly this reason. */
static void check_err(int t, const char *text, const char *reason)
{
	struct query *q = (struct query *)0x1;
	char *why = NULL;
	int rc = query_parse(text, ty(t), schemas[t], &q, &why);

	if (rc != -EINVAL)
		FAIL("query %s: rc %d, want -EINVAL", text, rc);
	ASSERT(q == NULL);
	ASSERT(why != NULL);
	if (strcmp(why, reason) != 0)
		FAIL("query %s:\n  reason %s\n  want   %s", text, why, reason);
	g_free(why);
	/* why may be NULL */
	ASSERT_EQ(query_parse(text, ty(t), schemas[t], &q, NULL), -EINVAL);
}

#define D TY_DEALS
#define C TY_CONTACTS
#define T TY_TICKETS

static void test_operators(void)
{
	check_parse(D, "amount=5", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"EQ\",\"value\":\"5\"}]}]", NULL);
	check_parse(D, "amount!=5", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"NEQ\",\"value\":\"5\"}]}]", NULL);
	check_parse(D, "amount<5", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"LT\",\"value\":\"5\"}]}]", NULL);
	check_parse(D, "amount<=5", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"LTE\",\"value\":\"5\"}]}]", NULL);
	check_parse(D, "amount>5", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"GT\",\"value\":\"5\"}]}]", NULL);
	check_parse(D, "amount>=5", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"GTE\",\"value\":\"5\"}]}]", NULL);
	check_parse(D, "dealname~acme", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"CONTAINS_TOKEN\",\"value\":\"acme\"}]}]", NULL);
	check_parse(D, "dealname!~acme", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"NOT_CONTAINS_TOKEN\",\"value\":\"acme\"}]}]", NULL);
	check_parse(D, "forecast_note?", "[{\"filters\":[{\"propertyName\":\"forecast_note\",\"operator\":\"HAS_PROPERTY\"}]}]", NULL);
	check_parse(D, "!forecast_note?", "[{\"filters\":[{\"propertyName\":\"forecast_note\",\"operator\":\"NOT_HAS_PROPERTY\"}]}]", NULL);
	/* An empty value after = / != tests for a missing / present value. */
	check_parse(D, "forecast_note=", "[{\"filters\":[{\"propertyName\":\"forecast_note\",\"operator\":\"NOT_HAS_PROPERTY\"}]}]", NULL);
	check_parse(D, "forecast_note!=", "[{\"filters\":[{\"propertyName\":\"forecast_note\",\"operator\":\"HAS_PROPERTY\"}]}]", NULL);
	check_parse(D, "q=acme", "[]", "acme");
	/* The README's example query, and q= written in a group of its own. */
	check_parse(D, "amount>=10000&dealstage!=closedwon",
		    "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"GTE\",\"value\":\"10000\"},"
		    "{\"propertyName\":\"dealstage\",\"operator\":\"NEQ\",\"value\":\"closedwon\"}]}]", NULL);
	check_parse(D, "amount>=10000&dealstage!=closedwon|q=acme",
		    "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"GTE\",\"value\":\"10000\"},"
		    "{\"propertyName\":\"dealstage\",\"operator\":\"NEQ\",\"value\":\"closedwon\"}]}]", "acme");
	check_parse(D, "amount<5&q=acme|dealtype=newbusiness",
		    "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"LT\",\"value\":\"5\"}]},"
		    "{\"filters\":[{\"propertyName\":\"dealtype\",\"operator\":\"EQ\",\"value\":\"newbusiness\"}]}]",
		    "acme");
	/* Longest operator first, the first operator after the name splits, the
	 * rest belongs to the value. */
	check_parse(D, "dealname>=<=", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"GTE\",\"value\":\"<=\"}]}]", NULL);
	check_parse(D, "dealname=a=b", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"EQ\",\"value\":\"a=b\"}]}]", NULL);
	check_parse(D, "dealname=<5", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"EQ\",\"value\":\"<5\"}]}]", NULL);
	check_parse(D, "dealname!~!~", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"NOT_CONTAINS_TOKEN\",\"value\":\"!~\"}]}]", NULL);
	check_parse(D, "dealname~why?", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"CONTAINS_TOKEN\",\"value\":\"why?\"}]}]", NULL);
	check_parse(D, "dealname~~", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"CONTAINS_TOKEN\",\"value\":\"~\"}]}]", NULL);
	/* Whitespace is part of names and values (file names); nothing is trimmed. */
	check_parse(D, "dealname= Acme  Corp ", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"EQ\",\"value\":\" Acme  Corp \"}]}]", NULL);
	check_parse(D, "q= two  words ", "[]", " two  words ");
	/* Values pass through unchanged: enumeration case, dates, numbers. */
	check_parse(D, "dealstage=ClosedWon&closedate>=2024-01-31&createdate<1700000000000&amount>-1.5e3",
		    "[{\"filters\":[{\"propertyName\":\"dealstage\",\"operator\":\"EQ\",\"value\":\"ClosedWon\"},"
		    "{\"propertyName\":\"closedate\",\"operator\":\"GTE\",\"value\":\"2024-01-31\"},"
		    "{\"propertyName\":\"createdate\",\"operator\":\"LT\",\"value\":\"1700000000000\"},"
		    "{\"propertyName\":\"amount\",\"operator\":\"GT\",\"value\":\"-1.5e3\"}]}]", NULL);
	/* Comparisons on strings are allowed (HubSpot compares them as text). */
	check_parse(C, "email>m&lifecyclestage<lead&vip<=true",
		    "[{\"filters\":[{\"propertyName\":\"email\",\"operator\":\"GT\",\"value\":\"m\"},"
		    "{\"propertyName\":\"lifecyclestage\",\"operator\":\"LT\",\"value\":\"lead\"},"
		    "{\"propertyName\":\"vip\",\"operator\":\"LTE\",\"value\":\"true\"}]}]", NULL);
	/* ~ takes any text, also on numbers and dates. */
	check_parse(D, "amount~12*", "[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"CONTAINS_TOKEN\",\"value\":\"12*\"}]}]", NULL);
	check_parse(T, "subject~login&hs_ticket_priority=HIGH|!content?",
		    "[{\"filters\":[{\"propertyName\":\"subject\",\"operator\":\"CONTAINS_TOKEN\",\"value\":\"login\"},"
		    "{\"propertyName\":\"hs_ticket_priority\",\"operator\":\"EQ\",\"value\":\"HIGH\"}]},"
		    "{\"filters\":[{\"propertyName\":\"content\",\"operator\":\"NOT_HAS_PROPERTY\"}]}]", NULL);
}

static void test_percent(void)
{
	check_parse(D, "dealname=a%26b%7Cc%3Dd%21e%3Cf%3Eg%7Eh%3Fi%25j%2Fk",
		    "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"EQ\",\"value\":\"a&b|c=d!e<f>g~h?i%j/k\"}]}]",
		    NULL);
	/* lowercase hex; names are decoded too; %3D in a value is never an operator */
	check_parse(D, "%64ealname~x%2fy%3d%3e", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"CONTAINS_TOKEN\",\"value\":\"x/y=>\"}]}]", NULL);
	check_parse(D, "!%64ealname?", "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"NOT_HAS_PROPERTY\"}]}]", NULL);
	/* UTF-8, raw or encoded */
	check_parse(D, "dealname=Caf%C3%A9%20M%C3%BCller|dealname=Café",
		    "[{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"EQ\",\"value\":\"Café Müller\"}]},"
		    "{\"filters\":[{\"propertyName\":\"dealname\",\"operator\":\"EQ\",\"value\":\"Café\"}]}]", NULL);
	/* %26 and %7C in free text; "q" itself may be encoded */
	check_parse(D, "%71=a%26b%7Cc", "[]", "a&b|c");
	/* An encoded operator inside a name stays part of the name. */
	check_err(D, "dealname%3D=x", "property \"dealname=\" does not exist on deals");
	check_err(D, "dealname%3F", "condition \"dealname%3F\" has no operator (use = != < <= > >= ~ !~, name? or !name?)");
}

static void test_errors(void)
{
	check_err(D, "", "the query is empty");
	check_err(D, "a=1||b=2", "group 2 of the query is empty (two '|' in a row, or a '|' at the start or end)");
	check_err(D, "|amount=1", "group 1 of the query is empty (two '|' in a row, or a '|' at the start or end)");
	check_err(D, "amount=1|", "group 2 of the query is empty (two '|' in a row, or a '|' at the start or end)");
	check_err(D, "amount=1&", "group 1 of the query has an empty condition (two '&' in a row, or a '&' at the start or end)");
	check_err(D, "amount=1|&amount=2", "group 2 of the query has an empty condition (two '&' in a row, or a '&' at the start or end)");
	check_err(D, "amount=1&&amount=2", "group 1 of the query has an empty condition (two '&' in a row, or a '&' at the start or end)");
	check_err(D, "amount", "condition \"amount\" has no operator (use = != < <= > >= ~ !~, name? or !name?)");
	check_err(D, "!amount", "condition \"!amount\" has no operator (use = != < <= > >= ~ !~, name? or !name?)");
	check_err(D, "?", "condition \"?\" names no property");
	check_err(D, "!?", "condition \"!?\" names no property");
	check_err(D, "=5", "condition \"=5\" has no property name before its operator");
	check_err(D, "<=5", "condition \"<=5\" has no property name before its operator");
	check_err(D, "!=5", "condition \"!=5\" has no property name before its operator");
	check_err(D, "~x", "condition \"~x\" has no property name before its operator");
	check_err(D, "%20=5", "property \" \" does not exist on deals");
	check_err(D, "amout>=10000", "property \"amout\" does not exist on deals");
	check_err(C, "amount>=10000", "property \"amount\" does not exist on contacts");
	check_err(D, "amount>1&nope?", "property \"nope\" does not exist on deals");
	check_err(D, "!nope?", "property \"nope\" does not exist on deals");
	check_err(D, "Amount=1", "property \"Amount\" does not exist on deals");
	check_err(D, "amount =1", "property \"amount \" does not exist on deals");
	check_err(D, "dealname=%2", "bad percent-encoding in \"%2\": '%' must be followed by two hex digits (write %25 for a literal '%')");
	check_err(D, "dealname=100%", "bad percent-encoding in \"100%\": '%' must be followed by two hex digits (write %25 for a literal '%')");
	check_err(D, "dealname=%zz", "bad percent-encoding in \"%zz\": '%' must be followed by two hex digits (write %25 for a literal '%')");
	check_err(D, "deal%name=x", "bad percent-encoding in \"deal%name\": '%' must be followed by two hex digits (write %25 for a literal '%')");
	check_err(D, "dealname=a%00b", "%00 in \"a%00b\": a query cannot contain a NUL character");
	check_err(D, "dealname=%FF", "\"%FF\" does not decode to valid UTF-8 text");
	check_err(D, "dealname=\xff", "the query is not valid UTF-8");
	check_err(D, "q=a&q=b", "free text (q=) appears twice; give it once, it applies to the whole query");
	check_err(D, "q=a|amount=1&q=b", "free text (q=) appears twice; give it once, it applies to the whole query");
	check_err(D, "q=", "free text (q=) is empty");
	check_err(D, "q=%20%09", "free text (q=) is empty");
	check_err(D, "amount<", "condition \"amount<\" has no value after its operator");
	check_err(D, "amount<=", "condition \"amount<=\" has no value after its operator");
	check_err(D, "amount>", "condition \"amount>\" has no value after its operator");
	check_err(D, "amount>=", "condition \"amount>=\" has no value after its operator");
	check_err(D, "dealname~", "condition \"dealname~\" has no value after its operator");
	check_err(D, "dealname!~", "condition \"dealname!~\" has no value after its operator");
	check_err(D, "amount>=10k", "\"10k\" is not a number, and \"amount\" is a number property");
	check_err(D, "amount=1,5", "\"1,5\" is not a number, and \"amount\" is a number property");
	check_err(D, "amount!=%20" "5", "\" 5\" is not a number, and \"amount\" is a number property");
	check_err(D, "amount<nan", "\"nan\" is not a number, and \"amount\" is a number property");
	check_err(D, "closedate>soon", "\"soon\" is not a date or time, and \"closedate\" is a datetime property (write YYYY-MM-DD, an ISO-8601 time such as 2024-01-31T12:00:00Z, or epoch milliseconds)");
	check_err(C, "renewal_date=2024-02-30", "\"2024-02-30\" is not a date or time, and \"renewal_date\" is a date property (write YYYY-MM-DD, an ISO-8601 time such as 2024-01-31T12:00:00Z, or epoch milliseconds)");
	/* Long names and values are cut in reasons; control characters escaped. */
	check_err(D, "a_very_long_property_name_that_goes_on_and_on_and_on_beyond_sixty_chars=1",
		  "property \"a_very_long_property_name_that_goes_on_and_on_and_on_beyond_…\" does not exist on deals");
	check_err(D, "bad%0Aname=1", "property \"bad\\nname\" does not exist on deals");
	/* Leading/trailing whitespace is significant in dates and numbers as sent. */
	check_parse(D, "closedate>%202024-01-01", "[{\"filters\":[{\"propertyName\":\"closedate\",\"operator\":\"GT\",\"value\":\" 2024-01-01\"}]}]", NULL);
	/* why may be NULL; no type */
	{
		struct query *q = NULL;
		char *why = NULL;

		ASSERT_EQ(query_parse("amount=1", NULL, schemas[D], &q, &why), -EINVAL);
		ASSERT_STR(why, "search is not available for this object type");
		g_free(why);
		ASSERT_EQ(query_parse(NULL, ty(D), schemas[D], &q, NULL), -EINVAL);
		ASSERT(q == NULL);
	}
}

/* n conditions "amount>i" joined by '&'. */
static void add_group(GString *s, int n)
{
	if (s->len)
		g_string_append_c(s, '|');
	for (int i = 0; i < n; i++)
		g_string_append_printf(s, "%samount>%d", i ? "&" : "", i);
}

static char *groups_of(const int *sizes, size_t n, const char *extra)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < n; i++)
		add_group(s, sizes[i]);
	if (extra)
		g_string_append(s, extra);
	return g_string_free(s, FALSE);
}

static void check_caps_ok(const int *sizes, size_t n, const char *extra)
{
	g_autofree char *text = groups_of(sizes, n, extra);

	query_free(parse_ok(D, text));
}

static void check_caps_err(const int *sizes, size_t n, const char *extra, const char *reason)
{
	g_autofree char *text = groups_of(sizes, n, extra);

	check_err(D, text, reason);
}

static void test_caps(void)
{
	static const int five[] = { 1, 1, 1, 1, 1 }, six[] = { 1, 1, 1, 1, 1, 1 };
	static const int g6[] = { 6 }, g7[] = { 7 }, t18[] = { 6, 6, 6 }, t19[] = { 6, 6, 6, 1 };
	static const int t18b[] = { 4, 4, 4, 3, 3 }, t19b[] = { 4, 4, 4, 4, 3 }, g7b[] = { 1, 7 };
	g_autofree char *text = NULL, *val = NULL, *big = NULL;
	GString *s;

	check_caps_ok(five, 5, NULL);
	check_caps_err(six, 6, NULL, "the query has 6 groups; HubSpot allows at most 5 '|'-separated groups");
	check_caps_ok(g6, 1, NULL);
	check_caps_err(g7, 1, NULL, "group 1 of the query has 7 conditions; HubSpot allows at most 6 in a group");
	check_caps_err(g7b, 2, NULL, "group 2 of the query has 7 conditions; HubSpot allows at most 6 in a group");
	check_caps_ok(t18, 3, NULL);
	check_caps_ok(t18b, 5, NULL);
	check_caps_err(t19, 4, NULL, "the query has 19 conditions; HubSpot allows at most 18 in all");
	check_caps_err(t19b, 5, NULL, "the query has 19 conditions; HubSpot allows at most 18 in all");
	/* q= is not a filter: it does not count, and a group of only q= is no group. */
	check_caps_ok(g6, 1, "&q=acme");
	check_caps_ok(five, 5, "|q=acme");

	/* free text: 3,000 characters (not bytes) */
	s = g_string_new("q=");
	for (int i = 0; i < 3000; i++)
		g_string_append(s, "%C3%A9");
	text = g_string_free(s, FALSE);
	query_free(parse_ok(D, text));
	big = g_strconcat(text, "x", NULL);
	check_err(D, big, "free text (q=) is 3001 characters long; HubSpot allows at most 3,000");
	g_clear_pointer(&big, g_free);

	/* a value: 65,536 characters */
	val = g_strnfill(65536, 'x');
	g_free(text);
	text = g_strconcat("dealname~", val, NULL);
	query_free(parse_ok(D, text));
	big = g_strconcat(text, "é", NULL);
	check_err(D, big, "the value for \"dealname\" is 65537 characters long; HubSpot allows at most 65,536");
}

static void test_request(void)
{
	static const char *const props[] = { "dealname", "amount" };
	struct query *q;
	json_object *r;

	q = parse_ok(D, "amount>=10000&dealstage!=closedwon");
	r = query_request(q, props, 2, 100, NULL, 0);
	ASSERT_STR(plain(r),
		   "{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"GTE\",\"value\":\"10000\"},"
		   "{\"propertyName\":\"dealstage\",\"operator\":\"NEQ\",\"value\":\"closedwon\"}]}],"
		   "\"properties\":[\"dealname\",\"amount\"],\"limit\":100,"
		   "\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}]}");
	json_object_put(r);
	query_free(q);

	q = parse_ok(D, "q=acme corp");
	r = query_request(q, props, 1, 200, "200", 0);
	ASSERT_STR(plain(r),
		   "{\"filterGroups\":[],\"query\":\"acme corp\",\"properties\":[\"dealname\"],\"limit\":200,"
		   "\"after\":\"200\",\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}]}");
	json_object_put(r);
	query_free(q);

	q = parse_ok(D, "forecast_note?&dealname=|!forecast_note?&dealname!=&q=x/y");
	r = query_request(q, NULL, 0, 10, "10", 0);
	ASSERT_STR(plain(r),
		   "{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"forecast_note\",\"operator\":\"HAS_PROPERTY\"},"
		   "{\"propertyName\":\"dealname\",\"operator\":\"NOT_HAS_PROPERTY\"}]},"
		   "{\"filters\":[{\"propertyName\":\"forecast_note\",\"operator\":\"NOT_HAS_PROPERTY\"},"
		   "{\"propertyName\":\"dealname\",\"operator\":\"HAS_PROPERTY\"}]}],"
		   "\"query\":\"x/y\",\"properties\":[],\"limit\":10,\"after\":\"10\","
		   "\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}]}");
	json_object_put(r);
	query_free(q);
	query_free(NULL);
}

/* The window past HubSpot's 10,000-result cap: hs_object_id > above in every
 * group, or a group of its own for free text alone; and which queries have
 * room for it under the caps (6 a group, 18 in all). */
static void test_request_window(void)
{
	struct query *q;
	json_object *r;

	q = parse_ok(D, "amount>=10000|dealstage=closedwon");
	ASSERT(query_can_window(q));
	r = query_request(q, NULL, 0, 200, NULL, 4000123);
	ASSERT_STR(plain(r),
		   "{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"GTE\",\"value\":\"10000\"},"
		   "{\"propertyName\":\"hs_object_id\",\"operator\":\"GT\",\"value\":\"4000123\"}]},"
		   "{\"filters\":[{\"propertyName\":\"dealstage\",\"operator\":\"EQ\",\"value\":\"closedwon\"},"
		   "{\"propertyName\":\"hs_object_id\",\"operator\":\"GT\",\"value\":\"4000123\"}]}],"
		   "\"properties\":[],\"limit\":200,"
		   "\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}]}");
	json_object_put(r);
	query_free(q);

	q = parse_ok(D, "q=acme");
	ASSERT(query_can_window(q));
	r = query_request(q, NULL, 0, 200, NULL, 7);
	ASSERT_STR(plain(r),
		   "{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"hs_object_id\",\"operator\":\"GT\",\"value\":\"7\"}]}],"
		   "\"query\":\"acme\",\"properties\":[],\"limit\":200,"
		   "\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}]}");
	json_object_put(r);
	query_free(q);

	/* six in a group: no room */
	q = parse_ok(D, "amount>1&amount>2&amount>3&amount>4&amount>5&amount>6");
	ASSERT(!query_can_window(q));
	query_free(q);
	/* 3 groups of 5 + 3 = 18 */
	q = parse_ok(D, "amount>1&amount>2&amount>3&amount>4&amount>5|amount>1&amount>2&amount>3&amount>4&"
		     "amount>5|amount>1&amount>2&amount>3&amount>4&amount>5");
	ASSERT(query_can_window(q));
	query_free(q);
	/* 3 groups of 5 and 1 of 2: 17 conditions, 21 with the window */
	q = parse_ok(D, "amount>1&amount>2&amount>3&amount>4&amount>5|amount>1&amount>2&amount>3&amount>4&"
		     "amount>5|amount>1&amount>2&amount>3&amount>4&amount>5|amount>1&amount>2");
	ASSERT(!query_can_window(q));
	query_free(q);
}

/* ---------------------------------------------------------------- local matching */

struct mcase {
	const char *query;
	bool want;
};

static void check_matches(int t, const char *record, const struct mcase *cases, size_t n)
{
	json_object *props = json_tokener_parse(record);

	if (!props)
		FAIL("bad record %s", record);
	for (size_t i = 0; i < n; i++) {
		struct query *q = parse_ok(t, cases[i].query);
		bool got = query_match(q, props);

		if (got != cases[i].want)
			FAIL("%s on %s: got %s, want %s", cases[i].query, record, got ? "match" : "no match",
			     cases[i].want ? "match" : "no match");
		query_free(q);
	}
	json_object_put(props);
}

static void test_match_deal(void)
{
	static const char deal[] =
		"{\"dealname\":\"Acme Corp - Enterprise plan\",\"amount\":\"15000\","
		"\"dealstage\":\"contractsent\",\"pipeline\":\"default\","
		"\"closedate\":\"2024-03-01T00:00:00.000Z\",\"dealtype\":\"newbusiness\","
		"\"forecast_note\":null,\"hs_is_closed\":\"false\",\"hubspot_owner_id\":\"\","
		"\"createdate\":\"2023-01-15T10:00:00.000Z\"}";
	static const struct mcase cases[] = {
		/* numbers compare numerically */
		{ "amount>=10000", true }, { "amount>15000", false }, { "amount>=15000", true },
		{ "amount=15000.0", true }, { "amount=1.5e4", true }, { "amount!=15000", false },
		{ "amount<2e4", true }, { "amount>9", true }, { "amount<=-1", false },
		{ "amount!=1", true },
		/* enumerations: case-sensitive */
		{ "dealstage=contractsent", true }, { "dealstage=ContractSent", false },
		{ "dealstage!=ContractSent", true }, { "dealstage<d", true }, { "dealstage<D", false },
		/* strings: case-insensitive equality, lowercase comparison */
		{ "dealname=acme corp - enterprise plan", true }, { "dealname=acme", false },
		{ "dealname=ACME CORP - ENTERPRISE PLAN", true }, { "dealname= acme corp - enterprise plan", false },
		{ "dealname>acme", true }, { "dealname<b", true }, { "dealname<Acme", false },
		{ "hs_is_closed=FALSE", true }, { "hs_is_closed!=false", false },
		/* tokens */
		{ "dealname~acme", true }, { "dealname~ACME", true }, { "dealname~acm", false },
		{ "dealname~corp enterprise", true }, { "dealname~enterprise corp", false },
		{ "dealname~corp - enterprise", true }, { "dealname~corp%2Denterprise", true },
		{ "dealname~plan!", true }, { "dealname~-", false },
		{ "dealname!~acme", false }, { "dealname!~pilot", true },
		/* '*' wildcards: the whole value, or one whitespace-separated word */
		{ "dealname~acm*", true }, { "dealname~*plan", true }, { "dealname~*enter*", true },
		{ "dealname~enter*", true }, { "dealname~*terp", false }, { "dealname~corp*plan", false },
		{ "dealname~acme*plan", true }, { "dealname~a?me*", true }, { "dealname~[ab]cme*", true },
		{ "dealname~[!a]cme*", false }, { "dealname~*", true }, { "dealname!~*corp*", false },
		{ "amount~15*", true }, { "amount~15", false }, { "amount~15000", true },
		/* unset: null, "" and missing alike */
		{ "forecast_note?", false }, { "!forecast_note?", true }, { "forecast_note=", true },
		{ "forecast_note!=", false }, { "forecast_note!=x", true }, { "forecast_note=x", false },
		{ "forecast_note<x", false }, { "forecast_note>x", false }, { "forecast_note~x", false },
		{ "forecast_note!~x", true }, { "hubspot_owner_id?", false }, { "!hubspot_owner_id?", true },
		{ "hubspot_owner_id!=31000001", true }, { "hs_deal_stage_probability!=1", true },
		/* dates: ISO, dates at midnight, epoch ms, offsets */
		{ "closedate>=2024-03-01", true }, { "closedate>2024-03-01", false },
		{ "closedate=2024-03-01", true }, { "closedate=1709251200000", true },
		{ "closedate<1709251200001", true }, { "closedate<2024-03-01", false },
		{ "closedate<2024-03-01T00:00:00.001Z", true },
		{ "closedate>2024-03-01T01:00:00%2B02:00", true }, { "closedate>2024-03-01T01:00+0000", false },
		{ "closedate=2024-03-01 00:00:00,000", true }, { "closedate>%202024-02-29%20", true },
		{ "createdate<2023-01-15T10:00:00.0001Z", false }, { "createdate<=2023-01-15T10:00:00Z", true },
		/* groups: AND inside, OR across */
		{ "amount<100|dealstage=contractsent", true }, { "amount<100|dealstage=closedwon", false },
		{ "amount>100&dealstage=closedwon", false }, { "amount>100&dealstage=contractsent&dealname~plan", true },
		/* free text: each word a substring of a searchable property */
		{ "q=acme", true }, { "q=ACME plan", true }, { "q=enterprise xyz", false },
		{ "q=contract", true }, { "q=newbus", true }, { "q=15000", false }, { "q=p - e", true },
		{ "q=corp - ent", true }, { "q=rp", true },
		/* q applies to the whole query, whichever group it is written in */
		{ "amount<100&q=acme", false }, { "amount>100&q=acme", true }, { "amount<100|q=acme", false },
		{ "amount>100|q=zzz", false }, { "amount<100|dealtype=newbusiness&q=acme", true },
	};
	static const struct mcase typed[] = {
		/* values an editor typed as JSON numbers / booleans */
		{ "amount=15000", true }, { "hs_is_closed=true", true }, { "amount>14999.5", true },
		/* a value without word tokens matches only itself */
		{ "forecast_note~%3F%3F%3F", true }, { "forecast_note~%3F%3F", false },
		{ "forecast_note!~%3F%3F%3F", false },
	};

	check_matches(D, deal, cases, G_N_ELEMENTS(cases));
	check_matches(D, "{\"amount\":15000,\"hs_is_closed\":true,\"forecast_note\":\"???\"}", typed, G_N_ELEMENTS(typed));
}

static void test_match_contact(void)
{
	static const char contact[] =
		"{\"email\":\"Jane.Doe@HubSpot.com\",\"firstname\":\"Zoë\",\"lastname\":\"O'Brien-Smith\","
		"\"interests\":\"webinars;product_updates\",\"renewal_date\":\"2024-06-30\","
		"\"last_call_at\":\"1719705600000\",\"nps_score\":\"9\",\"favorite_color\":\"blue\","
		"\"phone\":\"\",\"company\":null,\"jobtitle\":\"Head of R&D | Labs\",\"notes\":\"x_y\"}";
	static const struct mcase cases[] = {
		{ "email~*@hubspot.com", true }, { "email~jane", true }, { "email~hubspot.com", true },
		{ "email~doe@hubspot", true }, { "email~*.com", true }, { "email~jane.*", true },
		{ "email~j?ne*", true }, { "email~hub", false }, { "email~*@hubspot", false },
		{ "email=jane.doe@hubspot.com", true }, { "email!=JANE.DOE@HUBSPOT.COM", false },
		/* checkbox enumerations: one of the ';'-separated values, case-sensitive */
		{ "interests=webinars", true }, { "interests=product_updates", true },
		{ "interests=Webinars", false }, { "interests!=webinars", false }, { "interests!=events", true },
		{ "interests=webinars;product_updates", false }, { "interests~webinars", true },
		{ "interests~WEBINARS", true }, { "interests<x", true },
		{ "favorite_color=blue", true }, { "favorite_color=Blue", false }, { "favorite_color~Blue", true },
		{ "phone?", false }, { "!phone?", true }, { "company?", false }, { "phone=", true },
		{ "renewal_date>=2024-06-30", true }, { "renewal_date=2024-06-30", true },
		{ "renewal_date<2024-06-30T00:00:01Z", true }, { "renewal_date>1719705599999", true },
		/* a stored epoch-ms date (a local write not yet normalised) */
		{ "last_call_at=2024-06-30", true }, { "last_call_at>2024-06-29", true },
		{ "nps_score>10", false }, { "nps_score>=9", true }, { "nps_score=09", true },
		{ "firstname=ZOË", true }, { "firstname~zoë", true }, { "firstname~zoe", false },
		{ "lastname~o'brien", true }, { "lastname~brien smith", true }, { "lastname~obrien", false },
		{ "jobtitle~r%26d", true }, { "jobtitle~r d labs", true }, { "jobtitle~%7C", false },
		{ "jobtitle=head of r%26d %7C labs", true }, { "jobtitle~*%7C*", true },
		{ "notes~x", true }, { "notes~x_y", true }, { "notes~xy", false },
		{ "q=jane hubspot", true }, { "q=doe@", true }, { "q=webinars", false }, { "q=zoë o'b", true },
		{ "q=ZOË", true }, { "q=labs", false },
	};

	check_matches(C, contact, cases, G_N_ELEMENTS(cases));
}

static void test_match_ticket(void)
{
	static const char ticket[] =
		"{\"subject\":\"Überweisung fehlgeschlagen — Konto 4711\",\"content\":\"Kunde_meldet Fehler\","
		"\"hs_pipeline_stage\":\"2\",\"hs_ticket_priority\":\"HIGH\"}";
	static const struct mcase cases[] = {
		{ "subject~überweisung", true }, { "subject~ÜBERWEISUNG", true }, { "subject~konto 4711", true },
		{ "subject~fehlgeschlagen konto", true }, { "subject~—", false }, { "subject~*—*", true },
		{ "subject~über*", true }, { "subject~*4711", true },
		{ "content~meldet", true }, { "content~kunde_meldet", true }, { "content~kunde meldet fehler", true },
		{ "hs_ticket_priority=HIGH", true }, { "hs_ticket_priority=high", false },
		{ "hs_pipeline_stage=2", true }, { "hs_pipeline_stage>10", true },
		{ "q=überw", true }, { "q=KUNDE_M", true }, { "q=2", true }, { "q=HIGH", false },
	};

	check_matches(T, ticket, cases, G_N_ELEMENTS(cases));
}

/* ---------------------------------------------------------------- against the sandbox */

static pid_t sandbox_pid;
static char url[64];
static struct hs_client *hc;

static bool sandbox_start(const char *srcroot)
{
	g_autofree char *tmp = g_dir_make_tmp("hubfs-test-query-XXXXXX", NULL);
	g_autofree char *portfile = g_build_filename(tmp, "port", NULL);
	struct hs_client_opts o = { .token = "unit-token", .rate_max = 100000, .search_per_sec = 100000 };
	const char *why = NULL;
	char *port = NULL;

	sandbox_pid = fork();
	ASSERT(sandbox_pid >= 0);
	if (sandbox_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* a crashed test takes its sandbox along */
		if (chdir(srcroot) != 0)
			_exit(127);
		execl("/usr/bin/python3", "python3", "-m", "tests.sandbox", "--port", "0", "--port-file",
		      portfile, "--token", "unit-token", "--rate-limit", "off", "--search-limit", "0",
		      "--daily-limit", "0", "--index-delay", "0", "--demo", "--contacts", "120",
		      "--deals", "80", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400 && !port; i++) {
		int st;

		usleep(50000);
		if (waitpid(sandbox_pid, &st, WNOHANG) == sandbox_pid)
			FAIL("the sandbox exited at startup (status %d)", st);
		if (!g_file_get_contents(portfile, &port, NULL, NULL) || !*g_strstrip(port)) {
			g_free(port);
			port = NULL;
		}
	}
	if (!port)
		FAIL("the sandbox did not start within 20 s");
	snprintf(url, sizeof(url), "http://127.0.0.1:%s", port);
	g_free(port);
	unlink(portfile);
	rmdir(tmp);
	o.api_url = url;
	ASSERT_EQ(hs_client_new(&o, &hc, &why), 0);
	return true;
}

static void sandbox_stop(void)
{
	hs_client_free(hc);
	kill(sandbox_pid, SIGTERM);
	waitpid(sandbox_pid, NULL, 0);
}

static json_object *call(const char *method, const char *path, const char *body)
{
	struct hs_call c = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
	json_object *b = body ? json_tokener_parse(body) : NULL, *out = NULL;
	int rc;

	ASSERT(!body || b);
	rc = hs_request(hc, &c, method, path, b, &out);
	if (rc)
		FAIL("%s %s: %d %s", method, path, rc, c.err.message);
	json_object_put(b);
	return out;
}

static const char *next_after(json_object *page)
{
	json_object *p, *n, *a;

	if (json_object_object_get_ex(page, "paging", &p) && json_object_object_get_ex(p, "next", &n) &&
	    json_object_object_get_ex(n, "after", &a))
		return json_object_get_string(a);
	return NULL;
}

/* Every record of type t with every property: id -> properties. */
static json_object *list_all(int t, const struct schema *s)
{
	json_object *all = json_object_new_object();
	g_autofree char *after = NULL;

	do {
		struct hs_call c = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
		json_object *page = NULL, *res, *props, *id;
		const char *na;

		ASSERT_EQ(hs_list_page(hc, &c, ty(t)->path, schema_props_csv(s), after, false, &page), 0);
		ASSERT(json_object_object_get_ex(page, "results", &res));
		for (size_t i = 0; i < json_object_array_length(res); i++) {
			json_object *r = json_object_array_get_idx(res, i);

			ASSERT(json_object_object_get_ex(r, "id", &id));
			ASSERT(json_object_object_get_ex(r, "properties", &props));
			json_object_object_add(all, json_object_get_string(id), json_object_get(props));
		}
		na = next_after(page);
		g_free(after);
		after = g_strdup(na);
		json_object_put(page);
	} while (after);
	return all;
}

/* The ids search returns for q, sorted ("," joined), and their count. */
static char *search_ids(int t, const struct query *q, size_t *n)
{
	static const char *const props[] = { "hs_object_id" };
	GString *ids = g_string_new(NULL);
	g_autofree char *after = NULL, *prev = NULL;

	*n = 0;
	do {
		struct hs_call c = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
		json_object *req = query_request(q, props, 1, 7, after, 0), *page = NULL, *res, *id;
		const char *na;
		int rc = hs_search(hc, &c, ty(t)->path, req, &page);

		if (rc)
			FAIL("search %s: %d %s", plain(req), rc, c.err.message);
		json_object_put(req);
		ASSERT(json_object_object_get_ex(page, "results", &res));
		for (size_t i = 0; i < json_object_array_length(res); i++) {
			ASSERT(json_object_object_get_ex(json_object_array_get_idx(res, i), "id", &id));
			/* sorted by hs_object_id, so ascending ids (same width per type) */
			ASSERT(!prev || strcmp(prev, json_object_get_string(id)) < 0);
			g_string_append_printf(ids, "%s%s", ids->len ? "," : "", json_object_get_string(id));
			g_free(prev);
			prev = g_strdup(json_object_get_string(id));
			(*n)++;
		}
		na = next_after(page);
		g_free(after);
		after = g_strdup(na);
		json_object_put(page);
	} while (after);
	return g_string_free(ids, FALSE);
}

static int cmp_pstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *local_ids(const struct query *q, json_object *all, size_t *n)
{
	GString *ids = g_string_new(NULL);
	GPtrArray *keys = g_ptr_array_new();

	*n = 0;
	json_object_object_foreach(all, id, props)
		if (query_match(q, props))
			g_ptr_array_add(keys, id);
	g_ptr_array_sort(keys, cmp_pstr);
	for (guint i = 0; i < keys->len; i++) {
		g_string_append_printf(ids, "%s%s", ids->len ? "," : "", (char *)keys->pdata[i]);
		(*n)++;
	}
	g_ptr_array_free(keys, TRUE);
	return g_string_free(ids, FALSE);
}

/* Records that make the seeded account's corners sharper: special characters,
 * Unicode, checkbox values, fractions, missing values. */
static const char *const extra_records[][2] = {
	{ "contacts", "{\"email\":\"zoe.test@hubspot.com\",\"firstname\":\"Zoë\",\"lastname\":\"O'Brien-Smith\","
	  "\"interests\":\"webinars;case_studies\",\"nps_score\":\"10\",\"favorite_color\":\"blue\","
	  "\"vip\":\"true\",\"jobtitle\":\"VP, Sales & Marketing\"}" },
	{ "contacts", "{\"email\":\"a_b@x-y.io\",\"firstname\":\"ANNA\",\"lastname\":\"Lee\",\"nps_score\":\"9.5\","
	  "\"jobtitle\":\"Head of R&D | Labs\",\"interests\":\"events\"}" },
	{ "contacts", "{\"email\":\"nobody@example.org\",\"firstname\":\"  spaced  out \"}" },
	{ "deals", "{\"dealname\":\"Acme = Big | Deal & Co\",\"amount\":\"10000\",\"dealstage\":\"closedwon\","
	  "\"pipeline\":\"default\",\"forecast_note\":\"50% likely; call back?\"}" },
	{ "deals", "{\"dealname\":\"Ümlaut Überweisung\",\"amount\":\"0.5\",\"dealstage\":\"appointmentscheduled\","
	  "\"pipeline\":\"default\",\"description\":\"multi word description here\",\"closedate\":\"2023-06-15T12:30:00.000Z\"}" },
	{ "deals", "{\"dealname\":\"no amount\",\"dealstage\":\"qualifiedtobuy\",\"pipeline\":\"default\"}" },
	{ "tickets", "{\"subject\":\"Login_fails on mobile\",\"content\":\"user@example.com cannot log-in\","
	  "\"hs_pipeline\":\"0\",\"hs_pipeline_stage\":\"1\",\"hs_ticket_category\":\"PRODUCT_ISSUE;BILLING_ISSUE\"}" },
	{ "companies", "{\"name\":\"Zeta Ωmega GmbH\",\"domain\":\"zeta-omega.io\",\"tier\":\"gold\","
	  "\"contract_start\":\"2023-06-01\",\"numberofemployees\":\"101\"}" },
};

static const struct {
	int type;
	const char *query;
} xqueries[] = {
	{ TY_DEALS, "amount>=50000&dealstage!=closedwon" },
	{ TY_DEALS, "amount<20000|dealstage=closedwon" },
	{ TY_DEALS, "amount=10000" },
	{ TY_DEALS, "amount>0.4&amount<1" },
	{ TY_DEALS, "amount!=10000&dealstage=closedwon" },
	{ TY_DEALS, "dealname~*plan" },
	{ TY_DEALS, "dealname~enterprise%20plan" },
	{ TY_DEALS, "dealname~ltd*" },
	{ TY_DEALS, "dealname~acme%20%3D%20big" },
	{ TY_DEALS, "dealname=acme%20%3D%20big%20%7C%20deal%20%26%20co" },
	{ TY_DEALS, "dealname~überweisung|dealname~ÜMLAUT" },
	{ TY_DEALS, "dealname>m" },
	{ TY_DEALS, "dealname<=b&dealname!~pilot" },
	{ TY_DEALS, "closedate>=2023-01-01&closedate<2024-01-01" },
	{ TY_DEALS, "closedate=2023-06-15T14:30:00%2B02:00" },
	{ TY_DEALS, "createdate>1672531200000" },
	{ TY_DEALS, "q=renewal" },
	{ TY_DEALS, "q=acme%20pilot" },
	{ TY_DEALS, "q=ltd&amount>50000|dealtype=existingbusiness" },
	{ TY_DEALS, "forecast_note?" },
	{ TY_DEALS, "!forecast_note?&amount>90000" },
	{ TY_DEALS, "forecast_note~*likely*|forecast_note~back%3F" },
	{ TY_DEALS, "dealtype!=newbusiness" },
	{ TY_DEALS, "amount=" },
	{ TY_DEALS, "hs_is_closed=TRUE&amount>10000" },
	{ TY_DEALS, "hs_is_closed_won=true|hs_deal_stage_probability>=0.5" },
	{ TY_DEALS, "dealstage~closed*" },
	{ TY_DEALS, "pipeline=7421055|dealstage=7421058" },
	{ TY_DEALS, "hs_priority=High" },
	{ TY_DEALS, "hs_priority=high|hs_priority<low" },
	{ TY_DEALS, "num_associated_contacts>=2" },
	{ TY_CONTACTS, "email~*@hubspot.com" },
	{ TY_CONTACTS, "email~*.io" },
	{ TY_CONTACTS, "email~*.co*" },
	{ TY_CONTACTS, "lifecyclestage=customer|lifecyclestage=evangelist" },
	{ TY_CONTACTS, "interests=webinars" },
	{ TY_CONTACTS, "interests!=webinars&nps_score?" },
	{ TY_CONTACTS, "nps_score>=9" },
	{ TY_CONTACTS, "nps_score<9.5&nps_score>3" },
	{ TY_CONTACTS, "firstname=anna|firstname=ZOË" },
	{ TY_CONTACTS, "firstname=%20%20spaced%20%20out%20" },
	{ TY_CONTACTS, "lastname~o%27brien" },
	{ TY_CONTACTS, "q=hernández" },
	{ TY_CONTACTS, "q=müller%20.co" },
	{ TY_CONTACTS, "jobtitle~manager&!hs_lead_status?" },
	{ TY_CONTACTS, "jobtitle~r%26d|jobtitle~sales%20%26%20marketing" },
	{ TY_CONTACTS, "city=são%20paulo|country~united" },
	{ TY_CONTACTS, "favorite_color=Blue|vip=TRUE" },
	{ TY_CONTACTS, "hs_lead_status?&lifecyclestage=lead" },
	{ TY_CONTACTS, "lastname<d&firstname>m" },
	{ TY_COMPANIES, "tier=gold|tier=silver" },
	{ TY_COMPANIES, "numberofemployees>100&country!=germany" },
	{ TY_COMPANIES, "domain~*.io|website~*.de" },
	{ TY_COMPANIES, "q=energy" },
	{ TY_COMPANIES, "q=ωmega" },
	{ TY_COMPANIES, "contract_start>=2023-06-01" },
	{ TY_COMPANIES, "name<c|annualrevenue>=30000000" },
	{ TY_COMPANIES, "!tier?&lifecyclestage=customer" },
	{ TY_TICKETS, "subject~log*" },
	{ TY_TICKETS, "subject~login" },
	{ TY_TICKETS, "hs_ticket_priority=HIGH|hs_ticket_priority=urgent" },
	{ TY_TICKETS, "hs_ticket_category=BILLING_ISSUE" },
	{ TY_TICKETS, "q=dashboard|hs_pipeline_stage=1" },
	{ TY_TICKETS, "content~user@example.com" },
	{ TY_TICKETS, "hs_ticket_id>5000005" },
	{ TY_TICKETS, "escalated!=true" },
};

/* query_match must select exactly what the sandbox's search returns, over the
 * seeded account plus a few sharp records. */
static void test_sandbox(const char *srcroot)
{
	struct schema *s[TY_COUNT] = { 0 };
	json_object *all[TY_COUNT] = { 0 };
	size_t partial = 0;

	if (access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "    /usr/bin/python3 not found: skipping the sandbox cross-check\n");
		return;
	}
	sandbox_start(srcroot);
	for (size_t i = 0; i < G_N_ELEMENTS(extra_records); i++) {
		g_autofree char *path = g_strdup_printf("/__sandbox/objects/%s", extra_records[i][0]);
		g_autofree char *body = g_strdup_printf("{\"properties\":%s}", extra_records[i][1]);

		json_object_put(call("POST", path, body));
	}
	json_object_put(call("POST", "/__sandbox/index/flush", "{}"));
	for (int t = 0; t < TY_COUNT; t++) {
		struct hs_call c = { .prio = RL_PRIO_USER, .deadline_ms = hs_now_ms() + 30000 };
		json_object *resp = NULL;

		ASSERT_EQ(hs_properties(hc, &c, ty(t)->path, &resp), 0);
		ASSERT_EQ(schema_new(ty(t), resp, "all", &s[t]), 0);
		json_object_put(resp);
		all[t] = list_all(t, s[t]);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(xqueries); i++) {
		int t = xqueries[i].type;
		struct query *q = NULL;
		char *why = NULL;
		size_t nr, nl;
		g_autofree char *remote = NULL, *local = NULL;

		if (query_parse(xqueries[i].query, ty(t), s[t], &q, &why) != 0)
			FAIL("%s on %s refused: %s", xqueries[i].query, ty(t)->name, why);
		remote = search_ids(t, q, &nr);
		local = local_ids(q, all[t], &nl);
		if (strcmp(remote, local) != 0)
			FAIL("%s on %s:\n  search (%zu) %s\n  local  (%zu) %s", xqueries[i].query,
			     ty(t)->name, nr, remote, nl, local);
		if (getenv("QUERY_VERBOSE"))
			fprintf(stderr, "    %-55s %3zu of %d\n", xqueries[i].query, nl,
				json_object_object_length(all[t]));
		if (nl > 0 && nl < (size_t)json_object_object_length(all[t]))
			partial++;
		query_free(q);
	}
	/* The comparison means something only if most queries split the records. */
	fprintf(stderr, "    %zu queries agree with the sandbox, %zu of them select some but not all records\n",
		G_N_ELEMENTS(xqueries), partial);
	ASSERT_GE(partial, G_N_ELEMENTS(xqueries) - 3);
	for (int t = 0; t < TY_COUNT; t++) {
		json_object_put(all[t]);
		schema_free(s[t]);
	}
	sandbox_stop();
}


int main(int argc, char **argv)
{
	g_autofree char *root = NULL;

	ASSERT(argc > 1);
	dir = argv[1];
	load_schemas();
	RUN(test_operators);
	RUN(test_percent);
	RUN(test_errors);
	RUN(test_caps);
	RUN(test_request);
	RUN(test_request_window);
	RUN(test_match_deal);
	RUN(test_match_contact);
	RUN(test_match_ticket);
	/* golden = <root>/tests/unit/golden */
	root = g_build_filename(dir, "..", "..", "..", NULL);
	fprintf(stderr, "  test_sandbox\n");
	test_sandbox(root);
	for (int t = 0; t < TY_COUNT; t++)
		schema_free(schemas[t]);
	return 0;
}
