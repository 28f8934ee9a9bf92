/* fuzz_webhook - what hubfs does with a webhook delivery (client/webhook.h):
 * wh_parse on the body, wh_uri_decode on the URL, wh_verify_v3 and
 * wh_verify_v1 on the body, URL, timestamp and signature.
 *
 * Input: one selector byte, then up to six parts separated by "\n--\n":
 *   0  the delivery body (bytes, NULs included)
 *   1  the secret  2  the method  3  the URL  4  the timestamp header
 *   5  a signature header value (tried as v3, and as v1)
 * Missing parts are "" (part 2 "POST", part 3 "https://example.com/hubspot").
 * The selector picks which character of a right signature is changed (bits
 * 0-5) and how far the clock is from the timestamp (bits 6-7: equal, 5 min
 * exactly, 5 min + 1 ms, 5 min + 1 ms ahead).
 *
 * Invariants:
 *  - wh_parse returns 0 with an array and no reason, or -EINVAL with a reason
 *    and no array; it accepts exactly the JSON arrays of at most 1000 objects
 *    (as json-c's strict parser reads them; nesting past its depth limit
 *    refused); every event has a known kind, NUL-terminated strings, merged
 *    ids that are there iff counted and never 0, an object that is the part
 *    of the type before its first '.', a kind other than "other" only for a
 *    type "<object>.<kind name>", and the type, object id and property name
 *    the JSON holds when they are of the expected type and fit.
 *  - the parsed events, through the coalescer (cache/model/changes.h, all
 *    standard types and one custom object): the counters add up, the work
 *    has the promised shape (changes_check.h) and names only ids the events
 *    hold; the same delivery again is all duplicates (or ignored as before)
 *    and adds no work.
 *  - wh_uri_decode equals a reference that replaces each of the twelve
 *    escapes in turn, case-insensitively, over the whole string.
 *  - a v3 signature computed here (GLib HMAC over method + decoded URL + body
 *    + timestamp) verifies when fresh, is -ETIME when stale, and changing any
 *    one of its characters makes it -EACCES or -EINVAL; the fuzzed signature
 *    verifies only if it is the right one; arguments the contract calls
 *    malformed give -EINVAL. The same for v1 (hex SHA-256 of secret + body),
 *    in either case of hex digits.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/changes.h"
#include "client/webhook.h"
#include "tests/fuzz/changes_check.h"
#include "tests/fuzz/fuzz_common.h"

#define PARSER_DEPTH 16 /* PARSE_MAX_DEPTH in webhook.c */

/* The seeds' occurredAt, plus a minute. */
#define CHANGES_NOW (1564113600000LL + 60000)

static struct objtypes *types;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct objtypes_opts o = { 0 };
	json_object *s = json_tokener_parse(
		"{\"results\": [{\"id\": \"3456789\", \"objectTypeId\": \"2-3456789\","
		" \"name\": \"plans\", \"fullyQualifiedName\": \"p62515_plans\","
		" \"associations\": [{\"id\": \"80\", \"fromObjectTypeId\": \"2-3456789\","
		" \"toObjectTypeId\": \"0-1\"}]}]}");
	const char *why = NULL;

	(void)argc;
	(void)argv;
	fuzz_init();
	if (!s || objtypes_new(&o, s, NULL, &types, &why) != 0)
		abort();
	json_object_put(s);
	return 0;
}

/* Every id an event holds, whatever its kind. */
static void event_ids(const struct wh_event *e, GHashTable *ids)
{
	uint64_t v[] = { e->object_id, e->primary_id, e->new_id, e->from_id, e->to_id };

	for (size_t i = 0; i < G_N_ELEMENTS(v); i++)
		g_hash_table_add(ids, g_memdup2(&v[i], sizeof(v[i])));
	for (size_t i = 0; i < e->n_merged; i++)
		g_hash_table_add(ids, g_memdup2(&e->merged_ids[i], sizeof(uint64_t)));
}

static void check_changes(GArray *ev)
{
	struct changes_opts o = { .types = types };
	struct changes *c = changes_new(&o);
	struct changes_bounds b;
	struct changes_stats st1, st2;
	struct changes_work *w;
	GHashTable *ids = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	uint64_t ign = 0;
	size_t n;

	FUZZ_CHECK(c, "changes_new failed");
	changes_bounds_of(&o, &b);
	n = changes_add(c, (const struct wh_event *)(void *)ev->data, ev->len, CHANGES_NOW);
	st1 = changes_check_stats(c, &b);
	FUZZ_CHECK(st1.received == ev->len && st1.applied == n, "received %" PRIu64 " of %u, "
		   "applied %" PRIu64 " vs %zu", st1.received, ev->len, st1.applied, n);
	for (int i = 0; i < CHI_COUNT; i++)
		ign += st1.ignored[i];

	n = changes_add(c, (const struct wh_event *)(void *)ev->data, ev->len, CHANGES_NOW);
	st2 = changes_check_stats(c, &b);
	FUZZ_CHECK(n == 0 && st2.applied == st1.applied, "the same delivery again applied %zu", n);
	FUZZ_CHECK(st2.duplicates - st1.duplicates == ev->len - ign,
		   "again: %" PRIu64 " duplicates of %u events, %" PRIu64 " ignored",
		   st2.duplicates - st1.duplicates, ev->len, ign);
	for (int i = 0; i < CHI_COUNT; i++)
		FUZZ_CHECK(st2.ignored[i] == 2 * st1.ignored[i], "again: ignored %s %" PRIu64
			   " then %" PRIu64, changes_ignore_name(i), st1.ignored[i], st2.ignored[i]);

	for (guint i = 0; i < ev->len; i++)
		event_ids(&g_array_index(ev, struct wh_event, i), ids);
	w = changes_drain(c, CHANGES_NOW, NULL, NULL);
	changes_check_stats(c, &b);
	changes_check_work(w, types);
	for (size_t j = 0; w && j < w->n_jobs; j++)
		for (size_t k = 0; k < w->jobs[j].n; k++)
			FUZZ_CHECK(g_hash_table_contains(ids, &w->jobs[j].ids[k]),
				   "id %" PRIu64 " in no event", w->jobs[j].ids[k]);
	FUZZ_CHECK((w != NULL) == (st1.applied + st1.overflow > 0),
		   "work %p after %" PRIu64 " applied, %" PRIu64 " overflowed", (void *)w,
		   st1.applied, st1.overflow);
	changes_work_free(w);
	FUZZ_CHECK(changes_drain(c, CHANGES_NOW, NULL, NULL) == NULL, "work after the drain");
	g_hash_table_destroy(ids);
	changes_free(c);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

static bool fits(const char *s, size_t size)
{
	return s && strlen(s) < size;
}

static void check_event(const struct wh_event *e, json_object *o)
{
	const char *type = jstr(o, "subscriptionType"), *dot, *prop;
	json_object *v = NULL;
	bool known = false;
	size_t olen;

	FUZZ_CHECK((unsigned)e->kind < WH_KIND_COUNT, "kind %d", e->kind);
#define TERMINATED(f) FUZZ_CHECK(memchr(e->f, '\0', sizeof(e->f)) != NULL, "%s not terminated", #f)
	TERMINATED(type);
	TERMINATED(object);
	TERMINATED(object_type_id);
	TERMINATED(change_source);
	TERMINATED(source_id);
	TERMINATED(property);
	TERMINATED(association_type);
	TERMINATED(association_category);
	TERMINATED(from_type_id);
	TERMINATED(to_type_id);
	FUZZ_CHECK((e->n_merged == 0) == (e->merged_ids == NULL), "n_merged %zu, ids %p",
		   e->n_merged, (void *)e->merged_ids);
	for (size_t i = 0; i < e->n_merged; i++)
		FUZZ_CHECK(e->merged_ids[i] != 0, "merged id %zu is 0", i);

	dot = strchr(e->type, '.');
	olen = dot ? (size_t)(dot - e->type) : strlen(e->type);
	FUZZ_CHECK(e->object[0] == '\0' || (strlen(e->object) == olen &&
					    strncmp(e->object, e->type, olen) == 0),
		   "object \"%s\" of type \"%s\"", e->object, e->type);
	FUZZ_CHECK(e->object[0] || olen == 0 || olen >= sizeof(e->object),
		   "no object from type \"%s\"", e->type);
	for (int k = 0; k < WH_OTHER; k++)
		known |= dot && strcmp(dot + 1, wh_kind_name(k)) == 0;
	if (e->kind != WH_OTHER)
		FUZZ_CHECK(dot && strcmp(dot + 1, wh_kind_name(e->kind)) == 0 && e->object[0],
			   "kind %s from type \"%s\"", wh_kind_name(e->kind), e->type);
	else
		FUZZ_CHECK(!known || !e->object[0], "type \"%s\" left as other", e->type);

	/* what the JSON says, where it is plainly of the right type */
	if (json_object_object_get_ex(o, "subscriptionType", NULL)) {
		if (fits(type, sizeof(e->type)) && strlen(type) == (size_t)json_object_get_string_len(
			    json_object_object_get(o, "subscriptionType")))
			FUZZ_CHECK(strcmp(e->type, type) == 0, "type \"%s\" vs \"%s\"", e->type, type);
		else
			FUZZ_CHECK(e->type[0] == '\0', "type \"%s\" from a non-fitting value", e->type);
	}
	prop = jstr(o, "propertyName");
	if (fits(prop, sizeof(e->property)) &&
	    strlen(prop) == (size_t)json_object_get_string_len(json_object_object_get(o, "propertyName")))
		FUZZ_CHECK(strcmp(e->property, prop) == 0, "property \"%s\"", e->property);
	else
		FUZZ_CHECK(e->property[0] == '\0', "property \"%s\" from nothing", e->property);
	json_object_object_get_ex(o, "objectId", &v);
	if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
		FUZZ_CHECK(e->object_id == json_object_get_uint64(v), "objectId %" PRIu64, e->object_id);
	else if (!json_object_is_type(v, json_type_string))
		FUZZ_CHECK(e->object_id == 0, "objectId %" PRIu64 " from nothing", e->object_id);
	v = NULL;
	if (json_object_object_get_ex(o, "mergedObjectIds", &v) && !json_object_is_type(v, json_type_array))
		FUZZ_CHECK(e->n_merged == 0, "merged ids from a non-array");
}

static void check_parse(const char *body, size_t len)
{
	GArray *ev = (GArray *)1;
	const char *why = "unset";
	json_object *ref;
	bool ok;
	int rc, depth;

	rc = wh_parse(body, len, &ev, &why);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
	if (rc == 0)
		FUZZ_CHECK(ev && !why, "0 with array %p, why %s", (void *)ev, why);
	else
		FUZZ_CHECK(!ev && why && *why, "%d with array %p, no reason", rc, (void *)ev);

	ref = fuzz_json(body, len, JSON_TOKENER_STRICT, &ok);
	depth = ref ? fuzz_json_depth(ref) : 0;
	if (!ok || !json_object_is_type(ref, json_type_array) || depth > PARSER_DEPTH + 1) {
		FUZZ_CHECK(rc != 0, "accepted what is not a JSON array (or too deep: %d)", depth);
	} else if (depth < PARSER_DEPTH) {
		size_t n = json_object_array_length(ref);
		bool objects = true;

		for (size_t i = 0; i < n; i++)
			objects &= json_object_is_type(json_object_array_get_idx(ref, i), json_type_object);
		FUZZ_CHECK((rc == 0) == (objects && n <= WH_MAX_EVENTS),
			   "rc %d (%s) for an array of %zu, objects %d", rc, why ? why : "", n, objects);
		if (rc == 0) {
			FUZZ_CHECK(ev->len == n, "%u events of %zu", ev->len, n);
			for (size_t i = 0; i < n; i++)
				check_event(&g_array_index(ev, struct wh_event, i),
					    json_object_array_get_idx(ref, i));
		}
	}
	if (rc == 0)
		check_changes(ev);
	json_object_put(ref);
	if (rc == 0)
		g_array_unref(ev);
}

/* The docs' way: each escape replaced over the whole string in turn. */
static char *uri_reference(const char *uri)
{
	static const char *const esc[] = { "3A", "2F", "3F", "40", "21", "24", "27", "28", "29",
					   "2A", "2C", "3B" };
	static const char plain[] = ":/?@!$'()*,;";
	char *s = g_strdup(uri);

	for (size_t k = 0; k < G_N_ELEMENTS(esc); k++) {
		GString *o = g_string_new(NULL);

		for (const char *p = s; *p; p++) {
			if (p[0] == '%' && p[1] && p[2] && g_ascii_toupper(p[1]) == esc[k][0] &&
			    g_ascii_toupper(p[2]) == esc[k][1]) {
				g_string_append_c(o, plain[k]);
				p += 2;
			} else {
				g_string_append_c(o, *p);
			}
		}
		g_free(s);
		s = g_string_free(o, FALSE);
	}
	return s;
}

static bool stamp_ok(const char *t)
{
	size_t n = strspn(t, "0123456789");

	return n > 0 && n <= 18 && t[n] == '\0';
}

static bool base64_shape(const char *s)
{
	return strlen(s) == 44 && s[43] == '=' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") == 43;
}

static void check_v3(uint8_t sel, const char *secret, const char *method, const char *uri,
		     const char *body, size_t len, const char *ts, const char *fuzzed)
{
	static const int64_t skew[4] = { 0, WH_MAX_SKEW_MS, WH_MAX_SKEW_MS + 1, -WH_MAX_SKEW_MS - 1 };
	g_autofree char *dec = wh_uri_decode(uri), *ref = uri_reference(uri), *sig = NULL;
	bool valid = *secret && *method && *uri && stamp_ok(ts);
	guint8 d[32];
	gsize dn = sizeof(d);
	int64_t t, now;
	GHmac *h;
	int rc;

	FUZZ_CHECK(strcmp(dec, ref) == 0, "decode \"%s\": \"%s\" vs \"%s\"", uri, dec, ref);
	h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret));
	g_hmac_update(h, (const guchar *)method, -1);
	g_hmac_update(h, (const guchar *)dec, -1);
	g_hmac_update(h, (const guchar *)body, (gssize)len);
	g_hmac_update(h, (const guchar *)ts, -1);
	g_hmac_get_digest(h, d, &dn);
	g_hmac_unref(h);
	sig = g_base64_encode(d, dn);

	if (!valid) {
		FUZZ_CHECK(wh_verify_v3(secret, method, uri, body, len, ts, sig, 0) == -EINVAL,
			   "malformed arguments not refused");
		FUZZ_CHECK(wh_verify_v3(secret, method, uri, body, len, ts, fuzzed, 0) == -EINVAL,
			   "malformed arguments not refused");
		return;
	}
	t = g_ascii_strtoll(ts, NULL, 10);
	now = t + skew[sel >> 6];
	rc = wh_verify_v3(secret, method, uri, body, len, ts, sig, now);
	FUZZ_CHECK(rc == ((sel >> 6) < 2 ? 0 : -ETIME), "right signature: %d at skew %" PRId64,
		   rc, skew[sel >> 6]);
	{
		char bad[45];
		size_t i = (sel & 63) % 44;

		memcpy(bad, sig, sizeof(bad));
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		rc = wh_verify_v3(secret, method, uri, body, len, ts, bad, t);
		FUZZ_CHECK(rc == -EACCES || rc == -EINVAL, "changed signature: %d", rc);
		FUZZ_CHECK(rc == -EINVAL || i != 43, "changed padding not refused as malformed");
	}
	rc = wh_verify_v3(secret, method, uri, body, len, ts, fuzzed, t);
	if (strcmp(fuzzed, sig) == 0)
		FUZZ_CHECK(rc == 0, "the right signature, fuzzed in, gave %d", rc);
	else
		FUZZ_CHECK(rc == (base64_shape(fuzzed) ? -EACCES : -EINVAL),
			   "wrong signature \"%s\": %d", fuzzed, rc);
}

static void check_v1(uint8_t sel, const char *secret, const char *body, size_t len,
		     const char *fuzzed)
{
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree char *hex = NULL, *upper = NULL, *flip = NULL;
	bool hexshape = strlen(fuzzed) == 64 && strspn(fuzzed, "0123456789abcdefABCDEF") == 64;
	int rc;

	g_checksum_update(c, (const guchar *)secret, -1);
	g_checksum_update(c, (const guchar *)body, (gssize)len);
	hex = g_strdup(g_checksum_get_string(c));
	g_checksum_free(c);
	upper = g_ascii_strup(hex, -1);
	if (!*secret) {
		FUZZ_CHECK(wh_verify_v1(secret, body, len, hex) == -EINVAL, "empty secret taken");
		return;
	}
	FUZZ_CHECK(wh_verify_v1(secret, body, len, hex) == 0, "right v1 refused");
	FUZZ_CHECK(wh_verify_v1(secret, body, len, upper) == 0, "right v1 in capitals refused");
	flip = g_strdup(hex);
	flip[sel % 64] = flip[sel % 64] == '0' ? '1' : '0';
	FUZZ_CHECK(wh_verify_v1(secret, body, len, flip) == -EACCES, "changed v1 taken");
	rc = wh_verify_v1(secret, body, len, fuzzed);
	if (g_ascii_strcasecmp(fuzzed, hex) == 0)
		FUZZ_CHECK(rc == 0, "right v1, fuzzed in, gave %d", rc);
	else
		FUZZ_CHECK(rc == (hexshape ? -EACCES : -EINVAL), "wrong v1 \"%s\": %d", fuzzed, rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[6];
	size_t plen[6], n;
	char *s[6];
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	n = fuzz_split(data + 1, size - 1, "\n--\n", part, plen, 6);
	for (size_t i = 0; i < 6; i++)
		s[i] = i < n ? fuzz_strndup(part[i], plen[i]) : g_strdup("");
	if (n < 3) {
		g_free(s[2]);
		s[2] = g_strdup("POST");
	}
	if (n < 4) {
		g_free(s[3]);
		s[3] = g_strdup("https://example.com/hubspot");
	}

	check_parse((const char *)part[0], plen[0]);
	/* the body with its NULs; the other parts as C strings */
	check_v3(sel, s[1], s[2], s[3], (const char *)part[0], plen[0], s[4], s[5]);
	check_v1(sel, s[1], (const char *)part[0], plen[0], s[5]);

	for (size_t i = 0; i < 6; i++)
		g_free(s[i]);
	return 0;
}
