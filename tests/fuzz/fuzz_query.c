/* fuzz_query - the query language of search/<type>/<query>/ (cache/model/query.h).
 *
 * Input: one selector byte ('c' contacts, 'd' deals, 't' tickets, else modulo
 * 3), the query text up to the first newline, and optionally after it a JSON
 * object used as one more record's properties.
 *
 * Invariants, for every query that parses:
 *  - query_request is strict JSON of the documented shape: at most 5 groups, 6
 *    filters a group, 18 in all, known operators, a value exactly when the
 *    operator takes one, existing property names, free text <= 3,000
 *    characters; properties, limit, after and sorts as given;
 *  - when query_can_window, the window past 10,000 results (above > 0) keeps
 *    within those caps and adds hs_object_id GT above as the last filter of
 *    every group, the groups otherwise as without it;
 *  - the request, written back as a query text (everything percent-encoded),
 *    parses to the same request and matches the same records;
 *  - query_match is deterministic; a query matches a record iff one of its
 *    groups does (and the free text does); a single negatable condition
 *    (= != ~ !~ ? !?) and its negation match complementary sets;
 *  - a record holding exactly a condition's value satisfies = <= >= and ~
 *    (no '*'), and not != < > !~; a record holding the free text in a
 *    searchable property matches it.
 * Refusals: -EINVAL, no query, a one-line UTF-8 reason, and the same answer
 * when the reason is not asked for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/query.h"
#include "cache/model/schema.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/types.h"

static const int types[3] = { TY_CONTACTS, TY_DEALS, TY_TICKETS };
static FILE *dump;              /* $HUBFS_FUZZ_QUERY_DUMP: one JSON line per query (diff_query.py) */
static struct schema *schemas[3];
static GPtrArray *records[3];   /* json objects: properties of fixed records */

/* The first searchable property of each type (query.c's text_props). */
static const char *const text_prop[3] = { "firstname", "dealname", "subject" };

static const char *const common_records[] = {
	"{}",
	"{\"firstname\": null, \"dealname\": \"\", \"subject\": null, \"amount\": null}",
	"{\"amount\": 5, \"nps_score\": 8.5, \"vip\": true, \"hs_object_id\": 101}",
	"{\"amount\": \" 12500 \", \"nps_score\": \"inf\", \"hs_object_id\": \"nan\"}",
	"{\"amount\": \"-1.5e3\", \"nps_score\": \"1e999\", \"createdate\": \"1700000000000\"}",
	"{\"createdate\": \"2024-02-29T23:59:60.999+01:30\", \"closedate\": \"2024-12-20\","
	" \"lastmodifieddate\": \"-5\", \"renewal_date\": \"2025-03-01T00:00:00.000Z\"}",
	"{\"interests\": \"webinars;events;;\", \"lifecyclestage\": \"Lead\", \"dealstage\": \"closedwon\","
	" \"hs_ticket_priority\": \"HIGH\", \"hs_pipeline_stage\": \"2\"}",
	"{\"firstname\": \"María José\", \"lastname\": \"O'Brien-López\", \"email\": \"a_b@x.example.com\","
	" \"dealname\": \"Acme Ibérica renewal 2025\", \"subject\": \"VAT id wrong [urgent]\","
	" \"content\": \"ſtraße İstanbul ǅ ⅷ ²\", \"company\": \"ACME\\u00a0CORP\"}",
	"{\"firstname\": \"*\", \"dealname\": \"?\", \"subject\": \"[a-z]\", \"email\": \"\\t \"}",
};

static const char *const fixtures[3] = {
	"{\"createdate\": \"2024-01-17T19:55:04.281Z\", \"email\": \"maria.lopez@example.com\","
	" \"firstname\": \"María\", \"lastname\": \"López\", \"phone\": \"+34 600 123 456\","
	" \"company\": \"Acme Ibérica\", \"jobtitle\": \"Head of Procurement\", \"city\": \"Madrid\","
	" \"lifecyclestage\": \"lead\", \"hs_lead_status\": \"OPEN\", \"hubspot_owner_id\": \"31000001\","
	" \"lastmodifieddate\": \"2024-09-11T13:27:39.356Z\", \"hs_object_id\": \"101\","
	" \"num_associated_deals\": \"2\", \"favorite_color\": \"blue\", \"nps_score\": \"8\","
	" \"vip\": \"false\", \"interests\": \"webinars;events\", \"renewal_date\": \"2025-03-01\","
	" \"last_call_at\": \"2024-09-10T08:00:00.000Z\", \"notes\": \"Prefers email.\\nCall only after 10:00.\"}",
	"{\"amount\": \"12500\", \"closedate\": \"2024-12-20T00:00:00.000Z\","
	" \"createdate\": \"2024-02-01T09:30:00.000Z\", \"dealname\": \"Acme Ibérica renewal 2025\","
	" \"dealstage\": \"qualifiedtobuy\", \"hs_lastmodifieddate\": \"2024-10-02T16:45:12.004Z\","
	" \"hs_object_id\": \"301\", \"hs_is_closed\": \"false\", \"hs_deal_stage_probability\": \"0.4\","
	" \"pipeline\": \"default\", \"hubspot_owner_id\": \"31000002\", \"dealtype\": \"newbusiness\","
	" \"forecast_note\": \"Budget confirmed in Q3 call.\"}",
	"{\"subject\": \"Invoice shows wrong VAT number\", \"content\": \"The March invoice lists our old VAT id.\","
	" \"hs_pipeline\": \"0\", \"hs_pipeline_stage\": \"2\", \"hs_ticket_priority\": \"MEDIUM\","
	" \"createdate\": \"2024-03-05T11:00:00.000Z\", \"hs_lastmodifieddate\": \"2024-03-06T15:20:00.000Z\","
	" \"hs_object_id\": \"501\"}",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	if (getenv("HUBFS_FUZZ_QUERY_DUMP") && !(dump = fopen(getenv("HUBFS_FUZZ_QUERY_DUMP"), "a")))
		abort();
	for (size_t i = 0; i < 3; i++) {
		g_autofree char *name = g_strdup_printf("%s_props.json", ty(types[i])->name);
		json_object *resp = fuzz_golden(name);

		if (schema_new(ty(types[i]), resp, "all", &schemas[i]) != 0)
			abort();
		json_object_put(resp);
		records[i] = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_put);
		g_ptr_array_add(records[i], json_tokener_parse(fixtures[i]));
		for (size_t k = 0; k < G_N_ELEMENTS(common_records); k++) {
			json_object *o = json_tokener_parse(common_records[k]);

			if (!o)
				abort();
			g_ptr_array_add(records[i], o);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ helpers */

static const struct {
	const char *api, *syntax, *negated;
} ops[] = {
	{ "EQ", "=", "NEQ" }, { "NEQ", "!=", "EQ" }, { "LT", "<", NULL }, { "LTE", "<=", NULL },
	{ "GT", ">", NULL }, { "GTE", ">=", NULL }, { "CONTAINS_TOKEN", "~", "NOT_CONTAINS_TOKEN" },
	{ "NOT_CONTAINS_TOKEN", "!~", "CONTAINS_TOKEN" }, { "HAS_PROPERTY", NULL, "NOT_HAS_PROPERTY" },
	{ "NOT_HAS_PROPERTY", NULL, "HAS_PROPERTY" },
};

static int op_index(const char *api)
{
	for (size_t i = 0; api && i < G_N_ELEMENTS(ops); i++)
		if (!strcmp(ops[i].api, api))
			return (int)i;
	return -1;
}

static void enc(GString *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (g_ascii_isalnum(*p) || *p == '_' || *p == '.' || *p == '-')
			g_string_append_c(b, (char)*p);
		else
			g_string_append_printf(b, "%%%02X", *p);
	}
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

/* One filter written as a condition, with operator api (maybe another than its own). */
static void write_cond(GString *b, json_object *f, const char *api)
{
	int k = op_index(api);

	if (!strcmp(api, "HAS_PROPERTY") || !strcmp(api, "NOT_HAS_PROPERTY")) {
		if (api[0] == 'N')
			g_string_append_c(b, '!');
		enc(b, str(f, "propertyName"));
		g_string_append_c(b, '?');
		return;
	}
	enc(b, str(f, "propertyName"));
	g_string_append(b, ops[k].syntax);
	enc(b, str(f, "value"));
}

/* The query text of groups [from, to) of a request, plus its free text if with_text. */
static char *write_query(json_object *req, size_t from, size_t to, bool with_text)
{
	json_object *fgs = json_object_object_get(req, "filterGroups");
	const char *text = str(req, "query");
	GString *b = g_string_new(NULL);

	for (size_t g = from; g < to; g++) {
		json_object *fl = json_object_object_get(json_object_array_get_idx(fgs, g), "filters");

		if (g > from)
			g_string_append_c(b, '|');
		for (size_t i = 0; i < json_object_array_length(fl); i++) {
			json_object *f = json_object_array_get_idx(fl, i);

			if (i)
				g_string_append_c(b, '&');
			write_cond(b, f, str(f, "operator"));
		}
	}
	if (with_text && text) {
		if (b->len)
			g_string_append_c(b, '&');
		g_string_append(b, "q=");
		enc(b, text);
	}
	return g_string_free(b, FALSE);
}

static struct query *must_parse(size_t ti, const char *text, const char *why_context)
{
	struct query *q = NULL;
	char *why = NULL;
	int rc = query_parse(text, ty(types[ti]), schemas[ti], &q, &why);

	FUZZ_CHECK(rc == 0 && q, "%s %s does not parse: %s", why_context, text, why ? why : "");
	return q;
}

/* ------------------------------------------------------------ request shape */

/* The window request (query.h: query_request with above): within HubSpot's
 * caps whenever query_can_window says so, each group the plain request's
 * group plus hs_object_id GT above. */
static void check_window(const struct query *q, json_object *plain)
{
	json_object *r = query_request(q, NULL, 0, 200, NULL, 4000123), *fw, *fp;
	size_t total = 0, ng;

	json_object_object_get_ex(plain, "filterGroups", &fp);
	FUZZ_CHECK(json_object_object_get_ex(r, "filterGroups", &fw), "window: no filterGroups");
	ng = json_object_array_length(fw);
	FUZZ_CHECK(ng == (json_object_array_length(fp) ? json_object_array_length(fp) : 1),
		   "window: %zu groups for %zu", ng, json_object_array_length(fp));
	for (size_t g = 0; g < ng; g++) {
		json_object *fl = json_object_object_get(json_object_array_get_idx(fw, g), "filters");
		size_t nf = json_object_array_length(fl);
		json_object *last = json_object_array_get_idx(fl, nf - 1);
		const char *name = str(last, "propertyName"), *op = str(last, "operator");
		const char *val = str(last, "value");

		FUZZ_CHECK(!g_strcmp0(name, "hs_object_id") && !g_strcmp0(op, "GT") &&
			   !g_strcmp0(val, "4000123"), "window filter of group %zu: %s", g,
			   fuzz_json_text(last));
		if (g < json_object_array_length(fp)) {
			json_object *pl = json_object_object_get(json_object_array_get_idx(fp, g),
								 "filters");

			FUZZ_CHECK(json_object_array_length(pl) + 1 == nf, "window: group %zu", g);
			for (size_t i = 0; i + 1 < nf; i++)
				FUZZ_CHECK(fuzz_json_equal(json_object_array_get_idx(pl, i),
							   json_object_array_get_idx(fl, i)),
					   "window: group %zu filter %zu differs", g, i);
		}
		if (query_can_window(q))
			FUZZ_CHECK(nf <= 6, "window: group %zu has %zu filters", g, nf);
		total += nf;
	}
	if (query_can_window(q))
		FUZZ_CHECK(total <= 18, "window: %zu filters", total);
	json_object_put(r);
}

static json_object *check_request(size_t ti, const struct query *q)
{
	static const char *const props[] = { "email", "firstname" };
	json_object *r = query_request(q, props, 2, 100, "200", 0), *o, *fgs, *v, *a;
	const char *text;
	size_t total = 0, ng;
	bool ok;

	text = fuzz_json_text(r);
	o = fuzz_json(text, strlen(text), FUZZ_STRICT, &ok);
	FUZZ_CHECK(o && fuzz_json_equal(o, r), "request does not survive strict JSON: %s", text);
	json_object_put(o);

	FUZZ_CHECK(json_object_object_get_ex(r, "filterGroups", &fgs) &&
		   json_object_is_type(fgs, json_type_array), "filterGroups: %s", text);
	ng = json_object_array_length(fgs);
	FUZZ_CHECK(ng <= 5, "%zu groups: %s", ng, text);
	for (size_t g = 0; g < ng; g++) {
		json_object *grp = json_object_array_get_idx(fgs, g), *fl;
		size_t nf;

		FUZZ_CHECK(json_object_object_get_ex(grp, "filters", &fl) &&
			   json_object_is_type(fl, json_type_array), "group %zu: %s", g, text);
		nf = json_object_array_length(fl);
		FUZZ_CHECK(nf >= 1 && nf <= 6, "group %zu has %zu filters: %s", g, nf, text);
		total += nf;
		for (size_t i = 0; i < nf; i++) {
			json_object *f = json_object_array_get_idx(fl, i);
			const char *name = str(f, "propertyName"), *op = str(f, "operator");
			int k = op_index(op);
			bool has_value = json_object_object_get_ex(f, "value", &v);

			FUZZ_CHECK(name && schema_prop(schemas[ti], name), "filter on %s: %s", name, text);
			FUZZ_CHECK(k >= 0, "operator %s: %s", op, text);
			FUZZ_CHECK(has_value == (ops[k].syntax != NULL), "value with %s: %s", op, text);
			if (has_value) {
				const char *val = json_object_get_string(v);

				FUZZ_CHECK(json_object_is_type(v, json_type_string) && *val &&
					   fuzz_utf8(val, strlen(val)) && g_utf8_strlen(val, -1) <= 65536 &&
					   strlen(val) == (size_t)json_object_get_string_len(v),
					   "value %s", fuzz_json_text(v));
			}
		}
	}
	FUZZ_CHECK(total <= 18, "%zu filters: %s", total, text);
	if (json_object_object_get_ex(r, "query", &v)) {
		const char *t = json_object_get_string(v);

		FUZZ_CHECK(json_object_is_type(v, json_type_string) && fuzz_utf8(t, strlen(t)) &&
			   g_utf8_strlen(t, -1) <= 3000 && *t, "query %s", fuzz_json_text(v));
	}
	FUZZ_CHECK(ng > 0 || json_object_object_get_ex(r, "query", NULL), "empty request: %s", text);
	FUZZ_CHECK(json_object_object_get_ex(r, "properties", &a) && json_object_array_length(a) == 2 &&
		   !strcmp(json_object_get_string(json_object_array_get_idx(a, 1)), "firstname"),
		   "properties: %s", text);
	FUZZ_CHECK(json_object_get_int(json_object_object_get(r, "limit")) == 100, "limit: %s", text);
	FUZZ_CHECK(!g_strcmp0(str(r, "after"), "200"), "after: %s", text);
	a = json_object_object_get(r, "sorts");
	FUZZ_CHECK(json_object_is_type(a, json_type_array) && json_object_array_length(a) == 1 &&
		   !g_strcmp0(str(json_object_array_get_idx(a, 0), "propertyName"), "hs_object_id") &&
		   !g_strcmp0(str(json_object_array_get_idx(a, 0), "direction"), "ASCENDING"),
		   "sorts: %s", text);
	return r;
}

/* ------------------------------------------------------------ matching */

/* How query.c compares a property's values: 'n'umber, 't'ime, 'e'num, 'm'ulti
 * enum (checkbox), 's'tring. */
static char kind_of(size_t ti, const char *name)
{
	json_object *def = schema_prop(schemas[ti], name);
	const char *type = str(def, "type"), *ft = str(def, "fieldType");

	if (!type)
		return 's';
	if (!strcmp(type, "number"))
		return 'n';
	if (!strcmp(type, "date") || !strcmp(type, "datetime"))
		return 't';
	if (!strcmp(type, "enumeration"))
		return ft && !strcmp(ft, "checkbox") ? 'm' : 'e';
	return 's';
}

static void check_self_match(size_t ti, json_object *f)
{
	const char *name = str(f, "propertyName"), *op = str(f, "operator"), *val = str(f, "value");
	char kind = kind_of(ti, name);
	g_autofree char *text = NULL;
	json_object *rec;
	struct query *q;
	GString *b;
	bool want, got;
	size_t n;

	if (!val)
		return;
	n = strlen(val);
	if (kind == 't' && (g_ascii_isspace(val[0]) || g_ascii_isspace(val[n - 1])))
		return; /* a typed date may be padded, a stored one is not parsed so */
	if (kind == 'm' && strchr(val, ';'))
		return; /* a stored checkbox value is ;-separated */
	if (strstr(op, "CONTAINS") && strchr(val, '*'))
		return; /* a pattern need not match itself */
	want = !strcmp(op, "EQ") || !strcmp(op, "LTE") || !strcmp(op, "GTE") ||
	       !strcmp(op, "CONTAINS_TOKEN");
	b = g_string_new(NULL);
	write_cond(b, f, op);
	text = g_string_free(b, FALSE);
	q = must_parse(ti, text, "single condition");
	rec = json_object_new_object();
	json_object_object_add(rec, name, json_object_new_string(val));
	got = query_match(q, rec);
	FUZZ_CHECK(got == want, "%s on a record holding exactly {\"%s\": %s}: %d, want %d", text, name,
		   fuzz_json_text(json_object_object_get(rec, name)), got, want);
	json_object_put(rec);
	query_free(q);
}

static void check_matching(size_t ti, const struct query *q, json_object *req, json_object *extra)
{
	json_object *fgs = json_object_object_get(req, "filterGroups");
	size_t ng = json_object_array_length(fgs), nrec = records[ti]->len + (extra != NULL);
	g_autofree char *all = write_query(req, 0, ng, true);
	const char *text = str(req, "query");
	struct query *q2 = must_parse(ti, all, "rewritten query");
	struct query **groups = g_new0(struct query *, ng), **negs = g_new0(struct query *, ng);
	struct query *tq = NULL;
	json_object *r2 = query_request(q2, (const char *const[]){ "email", "firstname" }, 2, 100, "200", 0);

	FUZZ_CHECK(!strcmp(fuzz_json_text(r2), fuzz_json_text(req)), "rewritten query %s parses to\n%s\nnot\n%s",
		   all, fuzz_json_text(r2), fuzz_json_text(req));
	json_object_put(r2);
	for (size_t g = 0; g < ng; g++) {
		g_autofree char *one = write_query(req, g, g + 1, false);
		json_object *fl = json_object_object_get(json_object_array_get_idx(fgs, g), "filters");

		groups[g] = must_parse(ti, one, "one group");
		if (json_object_array_length(fl) == 1) {
			json_object *f = json_object_array_get_idx(fl, 0);
			const char *neg = ops[op_index(str(f, "operator"))].negated;

			if (neg) {
				GString *b = g_string_new(NULL);
				g_autofree char *nt = NULL;

				write_cond(b, f, neg);
				nt = g_string_free(b, FALSE);
				negs[g] = must_parse(ti, nt, "negated condition");
			}
		}
		for (size_t i = 0; i < json_object_array_length(fl); i++)
			check_self_match(ti, json_object_array_get_idx(fl, i));
	}
	if (text) {
		GString *b = g_string_new("q=");

		enc(b, text);
		tq = must_parse(ti, b->str, "free text");
		g_string_free(b, TRUE);
		if (ng == 0) {
			json_object *rec = json_object_new_object();

			json_object_object_add(rec, text_prop[ti], json_object_new_string(text));
			FUZZ_CHECK(query_match(q, rec), "free text %s does not match a record holding it",
				   fuzz_json_text(json_object_object_get(rec, text_prop[ti])));
			json_object_put(rec);
		}
	}

	json_object *line = NULL, *recs = NULL, *ms = NULL;

	if (dump) {
		line = json_object_new_object();
		recs = json_object_new_array();
		ms = json_object_new_array();
		json_object_object_add(line, "type", json_object_new_string(ty(types[ti])->name));
		json_object_object_add(line, "request", json_object_get(req));
		json_object_object_add(line, "records", recs);
		json_object_object_add(line, "matches", ms);
	}
	for (size_t r = 0; r < nrec; r++) {
		json_object *rec = r < records[ti]->len ? records[ti]->pdata[r] : extra;
		bool m = query_match(q, rec), any = ng == 0;

		if (dump) {
			json_object_array_add(recs, json_object_get(rec));
			json_object_array_add(ms, json_object_new_boolean(m));
		}

		FUZZ_CHECK(query_match(q, rec) == m, "query_match not deterministic on %s", fuzz_json_text(rec));
		FUZZ_CHECK(query_match(q2, rec) == m, "rewritten query %s matches %s differently", all,
			   fuzz_json_text(rec));
		for (size_t g = 0; g < ng; g++) {
			bool gm = query_match(groups[g], rec);

			any = any || gm;
			if (negs[g])
				FUZZ_CHECK(query_match(negs[g], rec) == !gm,
					   "group %zu and its negation both %s %s", g,
					   gm ? "match" : "miss", fuzz_json_text(rec));
		}
		if (tq)
			any = any && query_match(tq, rec);
		FUZZ_CHECK(m == any, "query %s: %d, but its groups and free text say %d on %s", all, m,
			   any, fuzz_json_text(rec));
	}
	if (dump) {
		fprintf(dump, "%s\n", fuzz_json_text(line));
		fflush(dump);
		json_object_put(line);
	}
	for (size_t g = 0; g < ng; g++) {
		query_free(groups[g]);
		query_free(negs[g]);
	}
	g_free(groups);
	g_free(negs);
	query_free(tq);
	query_free(q2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sels[] = "cdt";
	const uint8_t *nl;
	g_autofree char *text = NULL;
	json_object *extra = NULL, *req;
	struct query *q = (struct query *)1, *q2 = (struct query *)1;
	char *why = (char *)1;
	size_t ti, tlen;
	int rc;

	if (size < 1)
		return 0;
	ti = memchr(sels, data[0], 3) ? (size_t)((const char *)memchr(sels, data[0], 3) - sels) :
	     data[0] % 3u;
	nl = memchr(data + 1, '\n', size - 1);
	tlen = nl ? (size_t)(nl - data - 1) : size - 1;
	text = fuzz_strndup(data + 1, tlen);
	if (nl) {
		g_autofree char *rest = fuzz_strndup(nl + 1, size - tlen - 2);
		json_object *o = json_tokener_parse(rest);

		if (json_object_is_type(o, json_type_object))
			extra = o;
		else
			json_object_put(o);
	}

	rc = query_parse(text, ty(types[ti]), schemas[ti], &q, &why);
	FUZZ_CHECK(query_parse(text, ty(types[ti]), schemas[ti], &q2, NULL) == rc, "rc differs without why");
	query_free(q2);
	if (rc != 0) {
		size_t n = why ? strlen(why) : 0;

		FUZZ_CHECK(rc == -EINVAL && !q && why && n > 0, "refusal rc %d", rc);
		FUZZ_CHECK(fuzz_utf8(why, n) && !strchr(why, '\n'), "reason: %s", why);
		g_free(why);
		json_object_put(extra);
		return 0;
	}
	FUZZ_CHECK(q && !why, "accepted, but why set");
	req = check_request(ti, q);
	check_window(q, req);
	check_matching(ti, q, req, extra);
	json_object_put(req);
	query_free(q);
	json_object_put(extra);
	return 0;
}
