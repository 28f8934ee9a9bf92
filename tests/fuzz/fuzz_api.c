/* fuzz_api - what hubfs does with the bytes HubSpot sends: hs_json_parse,
 * hs_error_parse, http_parse_retry_after, schema_new on a properties answer,
 * record_render (and record_parse_time / record_parse_id) on the objects of
 * a list, batch or search page, and edit validation against pipelines and
 * owners lists from the wire.
 *
 * The walkers of list / batch / association / owners pages are static in
 * cache/cache_*.c, cache/writeback/writeback.c and fs/search.c; only what they call
 * (record_render, record_parse_id) is reached here. See README.md.
 *
 * Input: one selector byte, then up to four parts separated by "\n--\n":
 *   0  a properties response (GET /crm/v3/properties/{type})
 *   1  a page or object (list, batch/read, search, associations, pipelines, owners)
 *   2  an error body
 *   3  a header value (x-hubspot-correlation-id, Retry-After), a shown= list,
 *      and a property value for the pipeline/owner edits
 * Every part also goes through hs_json_parse and hs_error_parse. Selector:
 * bits 0-1 the object type, 2-3 shown (default, "all", NULL, part 3), 4-6 the
 * HTTP status.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/edit.h"
#include "cache/model/record.h"
#include "cache/model/schema.h"
#include "client/http.h"
#include "client/hubspot.h"
#include "client/ratelimit.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/types.h"

static struct schema *fixed[TY_COUNT];  /* from the golden properties, shown = default */
static struct schema *deals_all;
static char *deal_base;
static size_t deal_base_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const files[TY_COUNT] = { "contacts_props.json", "contacts_props.json",
						     "deals_props.json", "tickets_props.json" };
	json_object *api, *resp;
	uint64_t id;
	int64_t ms;

	(void)argc;
	(void)argv;
	fuzz_init();
	for (int t = 0; t < TY_COUNT; t++) {
		resp = fuzz_golden(files[t]);
		if (schema_new(ty(t), resp, NULL, &fixed[t]) != 0)
			abort();
		if (t == TY_DEALS && schema_new(ty(t), resp, "all", &deals_all) != 0)
			abort();
		json_object_put(resp);
	}
	api = fuzz_golden("deal_301.json");
	if (record_render(api, fixed[TY_DEALS], &deal_base, &deal_base_len, &id, &ms) != 0)
		abort();
	json_object_put(api);
	return 0;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

static bool all_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isspace(s[i]))
			return false;
	return true;
}

/* ------------------------------------------------------------ hs_json_parse */

static json_object *check_json(const char *buf, size_t len)
{
	json_object *o = (json_object *)1, *ref, *o2 = NULL;
	bool ok;
	int rc = hs_json_parse(buf, len, &o);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "hs_json_parse: %d", rc);
	if (all_space(buf, len))
		FUZZ_CHECK(rc == 0 && !o, "blank text: rc %d", rc);
	if (rc)
		FUZZ_CHECK(!o, "hs_json_parse failed but set *out");

	/* What strict JSON accepts (within the depth bound), it accepts alike. */
	ref = fuzz_json(buf, len, JSON_TOKENER_STRICT, &ok);
	if (ok && !ref)
		FUZZ_CHECK(rc == 0 && !o, "the JSON text null is refused");
	/* (Bytes that are not UTF-8 are read as U+FFFD, so only UTF-8 compares.) */
	if (ok && ref && fuzz_json_depth(ref) < 60 && fuzz_utf8(buf, len)) {
		FUZZ_CHECK(rc == 0, "strict JSON refused: %d", rc);
		FUZZ_CHECK(fuzz_json_equal(o, ref), "parsed differently from strict JSON:\n%s\n%s",
			   fuzz_json_text(o), fuzz_json_text(ref));
	}
	json_object_put(ref);

	/* What it accepts serializes to UTF-8 text it parses to the same value. */
	if (rc == 0 && o) {
		g_autofree char *text = g_strdup(fuzz_json_text(o));

		FUZZ_CHECK(fuzz_utf8(text, strlen(text)), "parsed value is not UTF-8: %s", text);

		FUZZ_CHECK(hs_json_parse(text, strlen(text), &o2) == 0 && fuzz_json_equal(o, o2),
			   "serialized value does not parse back: %s -> %s", text, fuzz_json_text(o2));
		json_object_put(o2);
	}
	return rc == 0 ? o : NULL;
}

/* ------------------------------------------------------------ hs_error_parse */

/* dst is src, or src cut short (at a NUL, or at most 3 bytes before the field
 * ends, at a UTF-8 boundary if src is UTF-8). */
static void check_copied(const char *what, const char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(dst, cap), m;

	FUZZ_CHECK(n < cap, "%s not NUL-terminated", what);
	if (!src)
		src = "";
	m = strlen(src);
	FUZZ_CHECK(n <= m && !memcmp(dst, src, n), "%s \"%s\" is not a prefix of \"%s\"", what, dst, src);
	if (m < cap)
		FUZZ_CHECK(n == m, "%s cut: \"%s\" of \"%s\"", what, dst, src);
	else
		FUZZ_CHECK(n + 4 >= cap, "%s cut too short (%zu bytes of %zu)", what, n, m);
	if (fuzz_utf8(src, m))
		FUZZ_CHECK(fuzz_utf8(dst, n), "%s cut mid-character", what);
}

static void check_error(long status, const char *body, size_t len, const char *corr_hdr)
{
	struct hs_error e, e2;
	enum rl_policy pol = (enum rl_policy)-1;
	json_object *o = NULL;
	size_t n;

	hs_error_parse(&e, status, body, len, corr_hdr, &pol);
	hs_error_parse(&e2, status, body, len, NULL, NULL);
	FUZZ_CHECK(e.http_status == status, "status %d", e.http_status);
	FUZZ_CHECK(!strcmp(e.message, e2.message) && !strcmp(e.category, e2.category),
		   "message depends on the policy pointer");
	FUZZ_CHECK(pol >= RL_POLICY_UNKNOWN && pol <= RL_POLICY_DAILY, "policy %d", (int)pol);
	n = strnlen(e.message, sizeof(e.message));
	FUZZ_CHECK(n < sizeof(e.message), "message not NUL-terminated");

	if (body && len && hs_json_parse(body, len, &o) == 0 && json_object_is_type(o, json_type_object)) {
		const char *cat = str(o, "category"), *msg = str(o, "message"), *corr = str(o, "correlationId");
		enum rl_policy want = ratelimit_policy_from_name(str(o, "policyName"));

		check_copied("category", e.category, sizeof(e.category), cat ? cat : str(o, "errorType"));
		if (msg) {
			check_copied("message", e.message, sizeof(e.message), msg);
		} else {
			g_autofree char *w = g_strdup_printf("HTTP %ld", status);

			FUZZ_CHECK(!strcmp(e.message, w), "message \"%s\", want \"%s\"", e.message, w);
		}
		check_copied("correlation id", e.correlation_id, sizeof(e.correlation_id),
			     corr && *corr ? corr : corr_hdr);
		if (want != RL_POLICY_UNKNOWN)
			FUZZ_CHECK(pol == want, "policy %d, policyName says %d", (int)pol, (int)want);
	} else {
		g_autofree char *prefix = g_strdup_printf("HTTP %ld", status);

		FUZZ_CHECK(g_str_has_prefix(e.message, prefix), "message \"%s\"", e.message);
		FUZZ_CHECK(e.category[0] == '\0', "category \"%s\" from a non-JSON body", e.category);
		FUZZ_CHECK(pol == RL_POLICY_UNKNOWN, "policy from a non-JSON body");
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK((unsigned char)e.message[i] >= 0x20 && e.message[i] != 0x7f,
				   "control character in \"%s\"", e.message);
		if (body && fuzz_utf8(body, len))
			FUZZ_CHECK(fuzz_utf8(e.message, n), "message not UTF-8: %s", e.message);
		check_copied("correlation id", e.correlation_id, sizeof(e.correlation_id), corr_hdr);
	}
	json_object_put(o);
}

/* ------------------------------------------------------------ times and ids */

static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* record_parse_time against a reference for HubSpot's own format
 * YYYY-MM-DDTHH:MM:SS[.fff]Z with every field in range. */
static void check_time(const char *s)
{
	int64_t ms = 0;
	int rc = record_parse_time(s, &ms);
	int y, mo, d, h, mi, sec, frac = 0, nfrac = 0;
	size_t n = strlen(s);
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "record_parse_time(%s): %d", s, rc);
	if (n && strspn(s, "0123456789") == n) {
		FUZZ_CHECK(rc == 0, "epoch ms %s refused", s);
		if (n <= 18)
			FUZZ_CHECK(ms == g_ascii_strtoll(s, NULL, 10), "epoch %s -> %" PRId64, s, ms);
		return;
	}
	if (n < 20 || s[n - 1] != 'Z' || strspn(s, "0123456789") != 4 || s[4] != '-' || s[7] != '-' ||
	    s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return;
	for (size_t i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && !g_ascii_isdigit(s[i]))
			return;
	if (n > 20) {
		if (s[19] != '.' || n - 21 < 1 || strspn(s + 20, "0123456789") != n - 21)
			return;
		for (size_t i = 20; i < n - 1; i++, nfrac++)
			if (nfrac < 3)
				frac = frac * 10 + (s[i] - '0');
		for (; nfrac < 3; nfrac++)
			frac *= 10;
	}
	y = atoi(s);
	mo = atoi(s + 5);
	d = atoi(s + 8);
	h = atoi(s + 11);
	mi = atoi(s + 14);
	sec = atoi(s + 17);
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59 ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return;
	FUZZ_CHECK(rc == 0, "%s refused", s);
	FUZZ_CHECK(ms == ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + frac,
		   "%s -> %" PRId64, s, ms);
}

static void check_id(const char *s, size_t len)
{
	uint64_t id = UINT64_MAX;

	if (record_parse_id(s, len, &id) == 0) {
		char buf[32];

		FUZZ_CHECK(id <= RECORD_ID_MAX, "id %" PRIu64, id);
		snprintf(buf, sizeof(buf), "%" PRIu64, id);
		FUZZ_CHECK(strlen(buf) == len && !memcmp(buf, s, len), "id %.*s read as %s", (int)len, s, buf);
	}
}

/* Every string in o through record_parse_time and record_parse_id. */
static void check_strings(json_object *o, int depth)
{
	if (depth > 8)
		return;
	if (json_object_is_type(o, json_type_string)) {
		check_time(json_object_get_string(o));
		check_id(json_object_get_string(o), strlen(json_object_get_string(o)));
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o) && i < 64; i++)
			check_strings(json_object_array_get_idx(o, i), depth + 1);
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			check_time(k);
			check_id(k, strlen(k));
			check_strings(v, depth + 1);
		}
	}
}

/* ------------------------------------------------------------ schema_new */

static struct schema *check_schema(int t, json_object *resp, const char *shown)
{
	json_object *results, *txt;
	struct schema *s = (struct schema *)1;
	bool want_ok = json_object_object_get_ex(resp, "results", &results) &&
		       json_object_is_type(results, json_type_array);
	GHashTable *names;
	const char *text;
	size_t n, tlen;
	GString *csv;
	int rc;
	bool ok;

	rc = schema_new(ty(t), resp, shown, &s);
	FUZZ_CHECK(rc == (want_ok ? 0 : -EINVAL), "schema_new: %d", rc);
	if (rc)
		return NULL;
	names = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		const char *nm = str(json_object_array_get_idx(results, i), "name");

		if (nm)
			g_hash_table_add(names, (gpointer)nm);
	}
	n = schema_shown_count(s);
	csv = g_string_new(NULL);
	for (size_t i = 0; i < n; i++) {
		const char *nm = schema_shown(s, i);

		FUZZ_CHECK(nm && schema_prop(s, nm) && schema_is_shown(s, nm), "shown %zu: %s", i, nm);
		FUZZ_CHECK(i == 0 || strcmp(schema_shown(s, i - 1), nm) < 0, "shown not sorted/unique at %s", nm);
		(void)schema_prop_readonly(schema_prop(s, nm));
		g_string_append_printf(csv, "%s%s", i ? "," : "", nm);
	}
	FUZZ_CHECK(schema_shown(s, n) == NULL, "schema_shown past the end");
	FUZZ_CHECK(!strcmp(csv->str, schema_props_csv(s)), "csv %s, want %s", schema_props_csv(s), csv->str);
	g_string_free(csv, TRUE);
	if (shown && !strcmp(shown, "all"))
		FUZZ_CHECK(n == g_hash_table_size(names), "all: %zu shown of %u", n, g_hash_table_size(names));
	if (!shown || !strcmp(shown, "default")) {
		GHashTableIter it;
		gpointer k;

		g_hash_table_iter_init(&it, names);
		while (g_hash_table_iter_next(&it, &k, NULL)) {
			json_object *def = schema_prop(s, k), *hd;

			FUZZ_CHECK(def, "no definition for %s", (char *)k);
			if (json_object_object_get_ex(def, "hubspotDefined", &hd) && !json_object_get_boolean(hd))
				FUZZ_CHECK(schema_is_shown(s, k), "custom property %s not shown", (char *)k);
		}
	}
	text = schema_text(s, &tlen);
	FUZZ_CHECK(strlen(text) == tlen && tlen >= 3 && text[tlen - 1] == '\n', "schema text");
	txt = fuzz_json(text, tlen, 0, &ok);
	FUZZ_CHECK(json_object_is_type(txt, json_type_array) &&
		   json_object_array_length(txt) == g_hash_table_size(names),
		   "schema text is not an array of %u definitions", g_hash_table_size(names));
	json_object_put(txt);
	g_hash_table_destroy(names);
	return s;
}

/* ------------------------------------------------------------ record_render */

static void check_render(int t, const struct schema *s, json_object *obj)
{
	static const char *const keys[] = { "id", "properties", "createdAt", "updatedAt", "archived" };
	json_object *jid = NULL, *o, *props, *upd, *ch = NULL, *bs = NULL;
	const char *sid;
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0, i = 0;
	uint64_t id = 0, id2;
	int64_t ms = -1, ms2, want_ms = 0;
	bool want_ok, ok;
	struct edit_ctx ctx = { .type = ty(t), .schema = s };
	struct edit_error err;
	int rc;

	want_ok = json_object_object_get_ex(obj, "id", &jid) && (sid = json_object_get_string(jid)) &&
		  record_parse_id(sid, strlen(sid), &id2) == 0;
	rc = record_render(obj, s, &text, &len, &id, &ms);
	FUZZ_CHECK(rc == (want_ok ? 0 : -EINVAL), "record_render: %d on %s", rc, fuzz_json_text(obj));
	if (rc)
		return;
	FUZZ_CHECK(id == id2, "id %" PRIu64 ", want %" PRIu64, id, id2);
	FUZZ_CHECK(strlen(text) == len && len >= 2 && !strcmp(text + len - 2, "}\n"),
		   "record file does not end in }\\n (len %zu, strlen %zu):\n%s", len, strlen(text), text);
	if (json_object_object_get_ex(obj, "updatedAt", &upd) && upd)
		record_parse_time(json_object_get_string(upd), &want_ms);
	FUZZ_CHECK(ms == want_ms, "updated_ms %" PRId64 ", want %" PRId64, ms, want_ms);

	o = fuzz_json(text, len, 0, &ok);
	FUZZ_CHECK(json_object_is_type(o, json_type_object) && json_object_object_length(o) == 5,
		   "record file does not parse:\n%s", text);
	json_object_object_foreach(o, k, v) {
		(void)v;
		FUZZ_CHECK(!strcmp(k, keys[i]), "key %zu is %s", i, k);
		i++;
	}
	props = json_object_object_get(o, "properties");
	FUZZ_CHECK((size_t)json_object_object_length(props) == schema_shown_count(s), "properties");
	i = 0;
	json_object_object_foreach(props, name, pv) {
		FUZZ_CHECK(!strcmp(name, schema_shown(s, i)), "property %s at %zu", name, i);
		FUZZ_CHECK(!pv || json_object_is_type(pv, json_type_string), "%s = %s", name, fuzz_json_text(pv));
		i++;
	}
	/* A record file renders to itself. */
	FUZZ_CHECK(record_render(o, s, &text2, &len2, &id2, &ms2) == 0 && len2 == len &&
		   !memcmp(text, text2, len), "render is not a fixed point:\n%s\n---\n%s", text, text2);
	json_object_put(o);

	/* Saved unchanged, a record file is a valid edit that changes nothing. */
	memset(&err, 0, sizeof(err));
	rc = edit_parse(&ctx, text, len, text, len, &ch, &bs, &err);
	if (rc != 0) {
		FUZZ_CHECK(false, "the unchanged record file is refused as an edit: %s (%s)\n%s",
			   err.reason, err.property, text);
	} else {
		FUZZ_CHECK(json_object_object_length(ch) == 0, "unchanged file changes %s", fuzz_json_text(ch));
	}
	json_object_put(ch);
	json_object_put(bs);
	g_free(text);
	g_free(text2);
}

/* ------------------------------------------------------------ pipelines and owners from the wire */

/* Reasons are UTF-8 whatever the wire held (hs_json_parse reads bytes that are
 * not UTF-8 as U+FFFD; edit files must be UTF-8). */
static void check_edit_reason(int rc, const struct edit_error *err)
{
	size_t n = strnlen(err->reason, sizeof(err->reason));

	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "edit rc %d", rc);
	if (rc) {
		FUZZ_CHECK(n > 0 && n < sizeof(err->reason), "reason: %s", err->reason);
		FUZZ_CHECK(fuzz_utf8(err->reason, n), "reason not UTF-8: %s", err->reason);
	}
}

static void check_pipeline_edits(json_object *list, const char *value)
{
	static const char *const edits[] = {
		"{\"properties\": {\"pipeline\": \"7421055\"}}",
		"{\"properties\": {\"dealstage\": \"7421056\"}}",
		"{\"properties\": {\"pipeline\": \"default\", \"dealstage\": \"closedwon\"}}",
		"{\"properties\": {\"hubspot_owner_id\": \"31000001\"}}",
	};
	static const char *const props[] = { "pipeline", "dealstage", "hubspot_owner_id" };
	struct edit_ctx ctx = { .type = ty(TY_DEALS), .schema = deals_all, .pipelines = list,
				.owner_ids = list };
	struct edit_error err;
	json_object *ch, *bs, *np;
	int rc;

	for (size_t i = 0; i < G_N_ELEMENTS(edits) + G_N_ELEMENTS(props); i++) {
		g_autofree char *e = NULL;

		if (i < G_N_ELEMENTS(edits)) {
			e = g_strdup(edits[i]);
		} else {
			json_object *o = json_object_new_object(), *p = json_object_new_object();

			json_object_object_add(p, props[i - G_N_ELEMENTS(edits)], json_object_new_string(value));
			json_object_object_add(o, "properties", p);
			e = g_strdup(json_object_to_json_string(o));
			json_object_put(o);
		}
		memset(&err, 0, sizeof(err));
		rc = edit_parse(&ctx, e, strlen(e), deal_base, deal_base_len, &ch, &bs, &err);
		check_edit_reason(rc, &err);
		json_object_put(ch);
		json_object_put(bs);
		memset(&err, 0, sizeof(err));
		rc = edit_parse_new(&ctx, e, strlen(e), &np, &err);
		check_edit_reason(rc, &err);
		json_object_put(np);
	}
}

/* ------------------------------------------------------------ entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[8] = { 400, 401, 403, 404, 409, 429, 500, 207 };
	const uint8_t *part[4];
	size_t plen[4], np;
	char *p[4] = { NULL, NULL, NULL, NULL };
	json_object *o[4] = { NULL, NULL, NULL, NULL };
	const char *shown;
	struct schema *s = NULL;
	int t;
	long status;

	if (size < 1)
		return 0;
	t = data[0] & 3;
	status = statuses[(data[0] >> 4) & 7];
	np = fuzz_split(data + 1, size - 1, "\n--\n", part, plen, 4);
	for (size_t i = 0; i < np; i++) {
		p[i] = fuzz_strndup(part[i], plen[i]);
		o[i] = check_json(p[i], plen[i]);
		check_error(status, p[i], plen[i], np > 3 ? p[3] : NULL);
	}
	(void)hs_errno_from_status(status, false);
	if (np > 3) {
		int64_t ra = http_parse_retry_after(p[3], 1700000000);

		FUZZ_CHECK(ra >= -1, "Retry-After %s -> %" PRId64, p[3], ra);
	}
	switch ((data[0] >> 2) & 3) {
	case 0: shown = "default"; break;
	case 1: shown = "all"; break;
	case 2: shown = NULL; break;
	default: shown = np > 3 ? p[3] : "";
	}

	if (o[0])
		s = check_schema(t, o[0], shown);
	if (o[1]) {
		const struct schema *rs = s ? s : fixed[t];
		json_object *results;

		check_strings(o[1], 0);
		check_render(t, rs, o[1]);
		if (json_object_object_get_ex(o[1], "results", &results) &&
		    json_object_is_type(results, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(results) && i < 32; i++)
				check_render(t, rs, json_object_array_get_idx(results, i));
			check_pipeline_edits(results, np > 3 ? p[3] : "");
		} else if (json_object_is_type(o[1], json_type_array)) {
			check_pipeline_edits(o[1], np > 3 ? p[3] : "");
		}
	}
	schema_free(s);
	for (size_t i = 0; i < 4; i++) {
		json_object_put(o[i]);
		g_free(p[i]);
	}
	return 0;
}
