/* test_webhook.c - client/webhook.[ch]: the event parser, the v1 and v3
 * signature checks, HubSpot's URI decoding, and the receiver over real HTTP
 * (libcurl, and a raw socket where curl would be too polite) on 127.0.0.1,
 * port 0, with an injected wall clock.
 *
 * The expected signatures are not computed by the code under test:
 *  - v1: the test vector of HubSpot's docs and SDK tests.
 *  - v3: values from Python's hmac module, made with
 *      base64.b64encode(hmac.new(secret.encode(), (method + uri).encode() + body
 *                                + ts.encode(), hashlib.sha256).digest())
 *    (the exact inputs are next to each vector). The server tests sign with
 *    GLib's GHmac in sign_v3() below, which is first checked against those
 *    Python values.
 *
 * stderr (where log.c writes, at debug level) goes to a temp file for the whole
 * run and is searched for the secrets at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <glib.h>

#include "client/log.h"
#include "client/webhook.h"
#include "tests/unit/capture.h"
#include "tests/unit/test.h"

#define SECRET "whsec+7d9a/2c1e=test-secret"
#define OTHER_SECRET "whsec+7d9a/2c1e=test-secreT"

/* HubSpot's documented example of a v1 signature (secret, body, signature). */
#define DOC_SECRET "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
#define DOC_BODY "[{\"eventId\":1,\"subscriptionId\":12345,\"portalId\":62515,\"occurredAt\":" \
	"1564113600000,\"subscriptionType\":\"contact.creation\",\"attemptNumber\":0," \
	"\"objectId\":123,\"changeSource\":\"CRM\",\"changeFlag\":\"NEW\",\"appId\":54321}]"
#define DOC_V1 "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
#define DOC_TS "1564113600000"

/* ---- helpers ------------------------------------------------------------------ */

static _Atomic int64_t fake_now = 1700000000000;

static int64_t test_clock(void)
{
	return atomic_load(&fake_now);
}

/* base64(HMAC-SHA-256(secret, method + uri + body + ts)), uri already decoded. */
static char *sign_v3(const char *secret, const char *method, const char *uri, const char *body,
		     size_t len, const char *ts)
{
	guint8 d[32];
	gsize n = sizeof(d);
	GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret));

	g_hmac_update(h, (const guchar *)method, -1);
	g_hmac_update(h, (const guchar *)uri, -1);
	g_hmac_update(h, (const guchar *)body, (gssize)len);
	g_hmac_update(h, (const guchar *)ts, -1);
	g_hmac_get_digest(h, d, &n);
	g_hmac_unref(h);
	return g_base64_encode(d, n);
}

static char *sign_v1(const char *secret, const char *body)
{
	g_autofree char *all = g_strconcat(secret, body, NULL);

	return g_compute_checksum_for_string(G_CHECKSUM_SHA256, all, -1);
}

static GArray *parse_ok(const char *body)
{
	const char *why = "unset";
	GArray *ev = NULL;

	if (wh_parse(body, strlen(body), &ev, &why) != 0)
		FAIL("wh_parse refused %s: %s", body, why);
	ASSERT(why == NULL);
	ASSERT(ev != NULL);
	return ev;
}

static void parse_bad(const char *body, size_t len, const char *why_part)
{
	const char *why = NULL;
	GArray *ev = (GArray *)1;

	ASSERT_EQ(wh_parse(body, len, &ev, &why), -EINVAL);
	ASSERT(ev == NULL);
	ASSERT(why != NULL);
	if (!strstr(why, why_part))
		FAIL("wh_parse(%.60s): reason \"%s\" lacks \"%s\"", body, why, why_part);
}

#define EV(a, i) (&g_array_index((a), struct wh_event, (i)))

/* ---- signatures ----------------------------------------------------------------- */

static void test_v1_vector(void)
{
	const char *b = DOC_BODY;
	size_t n = strlen(b);
	g_autofree char *upper = g_ascii_strup(DOC_V1, -1);
	g_autofree char *mine = sign_v1(DOC_SECRET, DOC_BODY);
	g_autofree char *tampered = g_strdup(DOC_BODY);
	char flipped[] = DOC_V1;

	ASSERT_STR(mine, DOC_V1); /* the test's own signer agrees with HubSpot's example */
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, DOC_V1), 0);
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, upper), 0);
	flipped[10] = flipped[10] == '0' ? '1' : '0';
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, flipped), -EACCES);
	ASSERT_EQ(wh_verify_v1("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyz", b, n, DOC_V1), -EACCES);
	tampered[strlen(tampered) - 3] = '2'; /* appId 54321 -> 54322 */
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, tampered, n, DOC_V1), -EACCES);
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n - 1, DOC_V1), -EACCES);
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, DOC_V1 "0"), -EINVAL);
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817d"),
		  -EINVAL);
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, "g32db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"),
		  -EINVAL);
	ASSERT_EQ(wh_verify_v1(DOC_SECRET, b, n, NULL), -EINVAL);
	ASSERT_EQ(wh_verify_v1("", b, n, DOC_V1), -EINVAL);
	ASSERT_EQ(wh_verify_v1(NULL, b, n, DOC_V1), -EINVAL);
}

/* Each from Python's hmac (see the top of the file). */
static const struct {
	const char *secret, *method, *uri_sent, *uri_signed, *body, *ts, *sig;
} v3_vectors[] = {
	/* HubSpot's example delivery at a plain URL */
	{ DOC_SECRET, "POST", "https://example.com/webhook", "https://example.com/webhook",
	  DOC_BODY, DOC_TS, "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA=" },
	/* every escape of the table, in both cases; %20 and %25 stay */
	{ DOC_SECRET, "POST",
	  "https://hooks.example.com/hub%3Aspot/x%2fy?portal=62515&q=%40a%2C%20b%253A%21%24%27%28%29%2a%3B",
	  "https://hooks.example.com/hub:spot/x/y?portal=62515&q=@a,%20b%253A!$'()*;",
	  DOC_BODY, DOC_TS, "A/vTqWCfsvfTIpcQNeAEjmr+2CXZ5tQGLlF1zrSexmA=" },
	/* a secret with base64 and form characters, UTF-8 in the body */
	{ "s3cr3t+/=&webhook", "POST", "http://127.0.0.1:8787/hubspot", "http://127.0.0.1:8787/hubspot",
	  "[{\"subscriptionType\":\"contact.propertyChange\",\"objectId\":7,"
	  "\"propertyName\":\"firstname\",\"propertyValue\":\"Zo\xc3\xab\"}]",
	  "1700000000123", "HnUEdYyRScSMRcJmpsEyw7LfH87yUeC24ayu5KqES1s=" },
};

static void test_v3_vectors(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(v3_vectors); i++) {
		const typeof(v3_vectors[0]) *v = &v3_vectors[i];
		size_t n = strlen(v->body);
		int64_t ts = g_ascii_strtoll(v->ts, NULL, 10);
		g_autofree char *mine = sign_v3(v->secret, v->method, v->uri_signed, v->body, n, v->ts);
		g_autofree char *dec = wh_uri_decode(v->uri_sent);

		ASSERT_STR(mine, v->sig);
		ASSERT_STR(dec, v->uri_signed);
		ASSERT_EQ(wh_verify_v3(v->secret, v->method, v->uri_sent, v->body, n, v->ts, v->sig, ts), 0);
		/* the decoded form is a fixed point */
		ASSERT_EQ(wh_verify_v3(v->secret, v->method, v->uri_signed, v->body, n, v->ts, v->sig, ts), 0);
	}
}

static void test_v3_refusals(void)
{
	const char *u = "https://example.com/webhook", *b = DOC_BODY, *sig = v3_vectors[0].sig;
	size_t n = strlen(b);
	int64_t ts = 1564113600000;
	g_autofree char *tampered = g_strdup(DOC_BODY);
	char flip[64];

	/* what is signed: secret, method, URI, body, timestamp */
	ASSERT_EQ(wh_verify_v3("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyz", "POST", u, b, n, DOC_TS, sig, ts), -EACCES);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "PUT", u, b, n, DOC_TS, sig, ts), -EACCES);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", "https://example.com/webhook2", b, n, DOC_TS, sig, ts), -EACCES);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", "http://example.com/webhook", b, n, DOC_TS, sig, ts), -EACCES);
	tampered[20] = '2';
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, tampered, n, DOC_TS, sig, ts), -EACCES);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n - 1, DOC_TS, sig, ts), -EACCES);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, "1564113600001", sig, ts), -EACCES);
	/* an escape outside the table is not decoded: %68 is 'h' */
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", "https://example.com/web%68ook", b, n, DOC_TS, sig, ts),
		  -EACCES);
	snprintf(flip, sizeof(flip), "%s", sig);
	flip[42] = flip[42] == 'A' ? 'B' : 'A';
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, flip, ts), -EACCES);

	/* stale: more than 5 minutes either way, checked after the signature */
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, sig, ts + 300000), 0);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, sig, ts + 300001), -ETIME);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, sig, ts - 300000), 0);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, sig, ts - 300001), -ETIME);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, flip, ts + 3600000), -EACCES);

	/* malformed headers */
	static const char *const bad_ts[] = { "", "abc", "-1564113600000", "+1564113600000",
					      " 1564113600000", "1564113600000 ", "1.5e12",
					      "1234567890123456789" };
	for (size_t i = 0; i < G_N_ELEMENTS(bad_ts); i++)
		ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, bad_ts[i], sig, ts), -EINVAL);
	static const char *const bad_sig[] = { "", "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA",
					       "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA==",
					       "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TV-=",
					       "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVAA" };
	for (size_t i = 0; i < G_N_ELEMENTS(bad_sig); i++)
		ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, bad_sig[i], ts), -EINVAL);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, NULL, sig, ts), -EINVAL);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", u, b, n, DOC_TS, NULL, ts), -EINVAL);
	ASSERT_EQ(wh_verify_v3("", "POST", u, b, n, DOC_TS, sig, ts), -EINVAL);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "", u, b, n, DOC_TS, sig, ts), -EINVAL);
	ASSERT_EQ(wh_verify_v3(DOC_SECRET, "POST", "", b, n, DOC_TS, sig, ts), -EINVAL);
}

static void test_uri_decode(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B", ":/?@!$'()*,;" },
		{ "%3a%2f%3f%40%21%24%27%28%29%2a%2c%3b", ":/?@!$'()*,;" },
		/* the query's own '?' and '&' are left alone, as are other escapes */
		{ "https://h/p?a=1&b=%20%25%26%2B%3D%5B%23", "https://h/p?a=1&b=%20%25%26%2B%3D%5B%23" },
		/* one pass: what a decoded %25 would form is not decoded again */
		{ "%253A", "%253A" },
		{ "%%3A", "%:" },
		{ "%3A3A", ":3A" },
		/* incomplete or non-hex escapes, NUL */
		{ "%", "%" }, { "%3", "%3" }, { "a%3", "a%3" }, { "%zz%3Az", "%zz:z" }, { "%00", "%00" },
		{ "", "" },
		{ "https://user%40x:p%3Aw@h:8443/a%2Fb/c?x=%2F%3F#f", "https://user@x:p:w@h:8443/a/b/c?x=/?#f" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *got = wh_uri_decode(cases[i].in);

		ASSERT_STR(got, cases[i].out);
	}
}

/* ---- the parser ------------------------------------------------------------------- */

static void test_parse_creation(void)
{
	g_autoptr(GArray) ev = parse_ok(DOC_BODY);
	struct wh_event *e;

	ASSERT_EQ(ev->len, 1);
	e = EV(ev, 0);
	ASSERT_EQ(e->kind, WH_CREATION);
	ASSERT_STR(e->type, "contact.creation");
	ASSERT_STR(e->object, "contact");
	ASSERT_STR(e->object_type_id, "");
	ASSERT_EQ(e->object_id, 123);
	ASSERT_EQ(e->occurred_at, 1564113600000);
	ASSERT_EQ(e->event_id, 1);
	ASSERT_EQ(e->subscription_id, 12345);
	ASSERT_EQ(e->portal_id, 62515);
	ASSERT_EQ(e->app_id, 54321);
	ASSERT_EQ(e->attempt, 0);
	ASSERT_STR(e->change_source, "CRM");
	ASSERT_STR(wh_kind_name(e->kind), "creation");
}

static void test_parse_kinds(void)
{
	g_autoptr(GArray) ev = parse_ok(
		"[{\"subscriptionType\":\"deal.propertyChange\",\"objectId\":301,\"propertyName\":\"amount\","
		"  \"propertyValue\":\"1200\",\"occurredAt\":1700000000001,\"attemptNumber\":3,"
		"  \"changeSource\":\"API\",\"sourceId\":\"userId:42\"},"
		" {\"subscriptionType\":\"company.deletion\",\"objectId\":\"201\"},"
		" {\"subscriptionType\":\"ticket.restore\",\"objectId\":501},"
		" {\"subscriptionType\":\"contact.privacyDeletion\",\"objectId\":101},"
		" {\"subscriptionType\":\"line_item.creation\",\"objectId\":9001},"
		" {\"subscriptionType\":\"object.propertyChange\",\"objectTypeId\":\"2-3456789\","
		"  \"objectId\":77,\"propertyName\":\"plan\"},"
		" {\"eventType\":\"product.deletion\",\"objectId\":5}]");
	static const struct { enum wh_kind k; const char *obj; uint64_t id; } want[] = {
		{ WH_PROPERTY_CHANGE, "deal", 301 }, { WH_DELETION, "company", 201 },
		{ WH_RESTORE, "ticket", 501 }, { WH_PRIVACY_DELETION, "contact", 101 },
		{ WH_CREATION, "line_item", 9001 }, { WH_PROPERTY_CHANGE, "object", 77 },
		{ WH_DELETION, "product", 5 },
	};

	ASSERT_EQ(ev->len, G_N_ELEMENTS(want));
	for (guint i = 0; i < ev->len; i++) {
		ASSERT_EQ(EV(ev, i)->kind, want[i].k);
		ASSERT_STR(EV(ev, i)->object, want[i].obj);
		ASSERT_EQ(EV(ev, i)->object_id, want[i].id);
	}
	ASSERT_STR(EV(ev, 0)->property, "amount");
	ASSERT_EQ(EV(ev, 0)->occurred_at, 1700000000001);
	ASSERT_EQ(EV(ev, 0)->attempt, 3);
	ASSERT_STR(EV(ev, 0)->change_source, "API");
	ASSERT_STR(EV(ev, 0)->source_id, "userId:42");
	ASSERT_STR(EV(ev, 5)->object_type_id, "2-3456789");
	ASSERT_STR(EV(ev, 5)->property, "plan");
	ASSERT_STR(EV(ev, 6)->type, "product.deletion");
}

static void test_parse_merge(void)
{
	g_autoptr(GArray) ev = parse_ok(
		"[{\"subscriptionType\":\"contact.merge\",\"objectId\":101,\"primaryObjectId\":101,"
		"  \"mergedObjectIds\":[102,\"103\",-4,\"x\",null,1.5,18446744073709551615],"
		"  \"newObjectId\":105,\"numberOfPropertiesMoved\":4,\"occurredAt\":1700000000000},"
		" {\"subscriptionType\":\"company.merge\",\"objectId\":7,\"mergedObjectIds\":[]},"
		" {\"subscriptionType\":\"deal.merge\",\"objectId\":8,\"mergedObjectIds\":[0,\"\"]}]");
	struct wh_event *e = EV(ev, 0);

	ASSERT_EQ(e->kind, WH_MERGE);
	ASSERT_EQ(e->primary_id, 101);
	ASSERT_EQ(e->new_id, 105);
	ASSERT_EQ(e->n_merged, 3); /* the invalid entries are skipped */
	ASSERT_EQ(e->merged_ids[0], 102);
	ASSERT_EQ(e->merged_ids[1], 103);
	ASSERT(e->merged_ids[2] == UINT64_MAX);
	ASSERT_EQ(EV(ev, 1)->n_merged, 0);
	ASSERT(EV(ev, 1)->merged_ids == NULL);
	ASSERT_EQ(EV(ev, 2)->n_merged, 0);
	ASSERT(EV(ev, 2)->merged_ids == NULL);
}

static void test_parse_association(void)
{
	g_autoptr(GArray) ev = parse_ok(
		"[{\"subscriptionType\":\"contact.associationChange\",\"associationType\":\"CONTACT_TO_COMPANY\","
		"  \"fromObjectId\":101,\"toObjectId\":201,\"associationRemoved\":true,"
		"  \"isPrimaryAssociation\":false,\"occurredAt\":1700000000000},"
		" {\"subscriptionType\":\"company.associationChange\",\"associationType\":\"COMPANY_TO_CONTACT\","
		"  \"fromObjectId\":\"201\",\"toObjectId\":\"101\",\"associationRemoved\":false,"
		"  \"isPrimaryAssociation\":true,\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":280},"
		" {\"subscriptionType\":\"deal.associationChange\",\"associationRemoved\":\"true\"},"
		" {\"subscriptionType\":\"object.associationChange\",\"associationType\":\"CAR_TO_CONTACT\","
		"  \"objectTypeId\":\"2-3465404\",\"fromObjectTypeId\":\"2-3465404\",\"toObjectTypeId\":\"0-1\","
		"  \"fromObjectId\":7,\"toObjectId\":101}]");

	ASSERT_EQ(EV(ev, 0)->kind, WH_ASSOCIATION_CHANGE);
	ASSERT_STR(EV(ev, 0)->association_type, "CONTACT_TO_COMPANY");
	ASSERT_EQ(EV(ev, 0)->from_id, 101);
	ASSERT_EQ(EV(ev, 0)->to_id, 201);
	ASSERT(EV(ev, 0)->removed);
	ASSERT(!EV(ev, 0)->primary);
	ASSERT_EQ(EV(ev, 0)->association_type_id, 0);
	ASSERT_STR(EV(ev, 1)->association_type, "COMPANY_TO_CONTACT");
	ASSERT_EQ(EV(ev, 1)->from_id, 201);
	ASSERT_EQ(EV(ev, 1)->to_id, 101);
	ASSERT(!EV(ev, 1)->removed);
	ASSERT(EV(ev, 1)->primary);
	ASSERT_STR(EV(ev, 1)->association_category, "HUBSPOT_DEFINED");
	ASSERT_EQ(EV(ev, 1)->association_type_id, 280);
	ASSERT(!EV(ev, 2)->removed); /* a string is not a boolean */
	ASSERT_STR(EV(ev, 0)->from_type_id, "");
	ASSERT_STR(EV(ev, 0)->to_type_id, "");
	ASSERT_STR(EV(ev, 3)->from_type_id, "2-3465404");
	ASSERT_STR(EV(ev, 3)->to_type_id, "0-1");
	ASSERT_EQ(EV(ev, 3)->from_id, 7);
}

static void test_parse_unknown_and_odd(void)
{
	char big[400];
	g_autofree char *body = NULL;
	g_autoptr(GArray) ev = NULL;

	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	body = g_strdup_printf(
		"[{\"subscriptionType\":\"conversation.newMessage\",\"objectId\":1},"
		" {\"subscriptionType\":\"contact.somethingNew\",\"objectId\":2},"
		" {\"subscriptionType\":\"nodot\",\"objectId\":3},"
		" {\"objectId\":4},"
		" {\"subscriptionType\":42,\"objectId\":-5,\"occurredAt\":\"soon\"},"
		" {\"subscriptionType\":\"contact.propertyChange\",\"objectId\":\"+6\",\"propertyName\":\"%s\"},"
		" {\"subscriptionType\":\"contact.propertyChange\",\"objectId\":7.0,\"propertyName\":\"a\\u0000b\"},"
		" {\"subscriptionType\":\"contact.creation\",\"objectId\":\" 8\",\"portalId\":\"08\"},"
		" {\"subscriptionType\":\"Contact.Creation\",\"objectId\":9},"
		" {\"subscriptionType\":\".creation\",\"objectId\":10},"
		" {\"subscriptionType\":\"%.70s.creation\",\"objectId\":11}]", big, big);
	ev = parse_ok(body);
	ASSERT_EQ(ev->len, 11);
	ASSERT_EQ(EV(ev, 0)->kind, WH_OTHER);
	ASSERT_STR(EV(ev, 0)->object, "conversation");
	ASSERT_STR(EV(ev, 0)->type, "conversation.newMessage");
	ASSERT_EQ(EV(ev, 0)->object_id, 1);
	ASSERT_EQ(EV(ev, 1)->kind, WH_OTHER);
	ASSERT_STR(EV(ev, 1)->object, "contact");
	ASSERT_EQ(EV(ev, 2)->kind, WH_OTHER);
	ASSERT_STR(EV(ev, 2)->object, "nodot");
	ASSERT_EQ(EV(ev, 3)->kind, WH_OTHER);
	ASSERT_STR(EV(ev, 3)->type, "");
	ASSERT_STR(EV(ev, 3)->object, "");
	ASSERT_EQ(EV(ev, 3)->object_id, 4);
	ASSERT_EQ(EV(ev, 4)->kind, WH_OTHER);
	ASSERT_EQ(EV(ev, 4)->object_id, 0);
	ASSERT_EQ(EV(ev, 4)->occurred_at, 0);
	ASSERT_EQ(EV(ev, 5)->kind, WH_PROPERTY_CHANGE);
	ASSERT_EQ(EV(ev, 5)->object_id, 0);      /* "+6" is not an id */
	ASSERT_STR(EV(ev, 5)->property, "");     /* too long: empty, not cut */
	ASSERT_EQ(EV(ev, 6)->object_id, 0);      /* a double is not an id */
	ASSERT_STR(EV(ev, 6)->property, "");     /* holds a NUL */
	ASSERT_EQ(EV(ev, 7)->object_id, 0);
	ASSERT_EQ(EV(ev, 7)->portal_id, 8);
	ASSERT_EQ(EV(ev, 8)->kind, WH_OTHER);    /* names are case-sensitive */
	/* no object, or one too long to hold: the event cannot be placed */
	ASSERT_EQ(EV(ev, 9)->kind, WH_OTHER);
	ASSERT_STR(EV(ev, 9)->object, "");
	ASSERT_EQ(EV(ev, 10)->kind, WH_OTHER);
	ASSERT_STR(EV(ev, 10)->object, "");
	ASSERT(g_str_has_suffix(EV(ev, 10)->type, "p.creation"));
}

static void test_parse_refusals(void)
{
	GString *many = g_string_new("[");
	g_autoptr(GArray) ev = NULL;
	const char *why;

	parse_bad("", 0, "not JSON");
	parse_bad("   ", 3, "not JSON");
	parse_bad("not json", 8, "not JSON");
	parse_bad("[{\"objectId\":1}", 15, "not JSON");
	parse_bad("[{\"objectId\":1},]", 17, "not JSON");
	parse_bad("{\"objectId\":1}", 14, "not a JSON array");
	parse_bad("\"[]\"", 4, "not a JSON array");
	parse_bad("[{}, 1]", 7, "not a JSON object");
	parse_bad("[[{}]]", 6, "not a JSON object");
	parse_bad("[] []", 5, "not JSON");
	parse_bad("[]x", 3, "not JSON");
	parse_bad("[{}]\0", 5, "after");
	parse_bad("[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]", 44, "not JSON");
	for (int i = 0; i <= WH_MAX_EVENTS; i++)
		g_string_append(many, i ? ",{}" : "{}");
	g_string_append(many, "]");
	parse_bad(many->str, many->len, "more than 1000");
	/* exactly the cap is fine */
	g_string_truncate(many, many->len - 4);
	g_string_append(many, "]");
	ASSERT_EQ(wh_parse(many->str, many->len, &ev, &why), 0);
	ASSERT_EQ(ev->len, WH_MAX_EVENTS);
	g_string_free(many, TRUE);
	g_clear_pointer(&ev, g_array_unref);
	ev = parse_ok(" \n[ ]\r\n\t");
	ASSERT_EQ(ev->len, 0);
}

/* ---- the receiver ---------------------------------------------------------------------- */

/* Deliveries handed over by the server (on its thread). */
static GMutex got_lock;
static GPtrArray *got; /* of GArray *; protected by got_lock */

static void on_events(void *ud, GArray *events)
{
	ASSERT(ud == &got);
	g_mutex_lock(&got_lock);
	g_ptr_array_add(got, events);
	g_mutex_unlock(&got_lock);
}

static guint ngot(void)
{
	guint n;

	g_mutex_lock(&got_lock);
	n = got->len;
	g_mutex_unlock(&got_lock);
	return n;
}

static int open_fds(void)
{
	GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
	int n = 0;

	ASSERT(d);
	while (g_dir_read_name(d))
		n++;
	g_dir_close(d);
	return n;
}

static struct wh_server *start(struct wh_server_opts o)
{
	struct wh_server *s = NULL;
	const char *why = NULL;
	int rc;

	if (!o.secret)
		o.secret = SECRET;
	o.wall_now = test_clock;
	o.on_events = on_events;
	o.ud = &got;
	rc = wh_server_start(&o, &s, &why);
	if (rc)
		FAIL("wh_server_start: %d %s", rc, why);
	return s;
}

struct post {
	const char *method;        /* NULL = POST */
	const char *target;        /* NULL = "/hubspot" */
	const char *body;          /* NULL = DOC_BODY */
	size_t len;                /* 0 = strlen(body) */
	const char *sig3, *ts, *sig1, *version;
	bool chunked;
	bool may_fail;             /* a connection closed without an answer gives status 0 */
};

struct reply {
	long status;
	char allow[64];
	char text[256];
};

static size_t on_header(char *b, size_t size, size_t n, void *p)
{
	struct reply *r = p;

	if (n * size > 6 && g_ascii_strncasecmp(b, "Allow:", 6) == 0)
		snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(n * size - 6), b + 6);
	return size * n;
}

static size_t on_body(char *b, size_t size, size_t n, void *p)
{
	struct reply *r = p;
	size_t have = strlen(r->text);

	snprintf(r->text + have, sizeof(r->text) - have, "%.*s", (int)(size * n), b);
	return size * n;
}

struct chunk_src { const char *p; size_t left; };

static size_t on_read(char *b, size_t size, size_t n, void *p)
{
	struct chunk_src *c = p;
	size_t k = MIN(size * n, MIN(c->left, 4096));

	memcpy(b, c->p, k);
	c->p += k;
	c->left -= k;
	return k;
}

static struct reply http(struct wh_server *s, struct post p)
{
	struct reply r = { 0 };
	struct curl_slist *h = NULL;
	g_autofree char *url = NULL;
	char line[256];
	struct chunk_src src;
	CURL *c = curl_easy_init();
	CURLcode cc;

	ASSERT(c);
	if (!p.body)
		p.body = DOC_BODY;
	if (!p.len)
		p.len = strlen(p.body);
	url = g_strdup_printf("http://127.0.0.1:%u%s", wh_server_port(s), p.target ? p.target : "/hubspot");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, p.method ? p.method : "POST");
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
#define HDR(name, v) do { if (v) { snprintf(line, sizeof(line), "%s: %s", name, v); \
	h = curl_slist_append(h, line); } } while (0)
	HDR("X-HubSpot-Signature-v3", p.sig3);
	HDR("X-HubSpot-Request-Timestamp", p.ts);
	HDR("X-HubSpot-Signature", p.sig1);
	HDR("X-HubSpot-Signature-Version", p.version);
	if (p.chunked) {
		src = (struct chunk_src){ p.body, p.len };
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &src);
	} else if (!p.method || strcmp(p.method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, p.body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p.len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK && !p.may_fail)
		FAIL("%s: %s", url, curl_easy_strerror(cc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return r;
}

/* A v3-signed POST of body to target, signed for signed_url (NULL = the
 * local URL) at timestamp ts (0 = the fake now). */
static struct reply post_v3(struct wh_server *s, const char *target, const char *signed_url,
			    const char *body, int64_t ts, const char *secret)
{
	char t[32], local[256];
	g_autofree char *sig = NULL;

	snprintf(t, sizeof(t), "%" PRId64, ts ? ts : test_clock());
	snprintf(local, sizeof(local), "http://127.0.0.1:%u%s", wh_server_port(s), target);
	sig = sign_v3(secret ? secret : SECRET, "POST", signed_url ? signed_url : local, body,
		      strlen(body), t);
	return http(s, (struct post){ .target = target, .body = body, .sig3 = sig, .ts = t });
}

static struct wh_stats stats(struct wh_server *s)
{
	struct wh_stats st;

	wh_server_stats(s, &st);
	return st;
}

static void test_server_listen(void)
{
	static const struct { const char *spec, *prefix; } ok[] = {
		{ NULL, "127.0.0.1:" }, { "", "127.0.0.1:" }, { "0", "127.0.0.1:" },
		{ ":0", "127.0.0.1:" }, { "127.0.0.1:0", "127.0.0.1:" }, { "localhost:0", "127.0.0.1:" },
		{ "0.0.0.0:0", "0.0.0.0:" },
	};
	static const char *const bad[] = { "::1:80", "127.0.0.1:65536", "127.0.0.1:x", "127.0.0.1:",
					   "[::1]", "[]:80", "host.invalid.:80", "1.2.3.4.5:80" };
	struct wh_server_opts o = { 0 };
	struct wh_server *s = NULL, *s2 = NULL;
	const char *why;
	char spec[64];
	int fds = open_fds();

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		s = start((struct wh_server_opts){ .listen = ok[i].spec });
		if (!g_str_has_prefix(wh_server_address(s), ok[i].prefix))
			FAIL("listen \"%s\" bound %s", ok[i].spec ? ok[i].spec : "(null)", wh_server_address(s));
		ASSERT_GT(wh_server_port(s), 0);
		wh_server_stop(s);
	}
	o.secret = SECRET;
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		o.listen = bad[i];
		why = NULL;
		if (wh_server_start(&o, &s, &why) != -EINVAL)
			FAIL("listen \"%s\" was not refused", bad[i]);
		ASSERT(s == NULL);
		ASSERT(why && strstr(why, "listen address"));
	}
	/* IPv6 loopback, where the machine has it */
	o.listen = "[::1]:0";
	if (wh_server_start(&o, &s, &why) == 0) {
		ASSERT(g_str_has_prefix(wh_server_address(s), "[::1]:"));
		wh_server_stop(s);
	} else {
		fprintf(stderr, "    (no IPv6 loopback here: %s)\n", why);
	}
	/* a port in use */
	s = start((struct wh_server_opts){ 0 });
	snprintf(spec, sizeof(spec), "127.0.0.1:%u", wh_server_port(s));
	o.listen = spec;
	ASSERT_EQ(wh_server_start(&o, &s2, &why), -EADDRINUSE);
	ASSERT(s2 == NULL);
	wh_server_stop(s);
	/* what else is refused */
	o.listen = NULL;
	o.secret = "";
	ASSERT_EQ(wh_server_start(&o, &s, &why), -EINVAL);
	o.secret = NULL;
	ASSERT_EQ(wh_server_start(&o, &s, &why), -EINVAL);
	o.secret = SECRET;
	o.path = "hubspot";
	ASSERT_EQ(wh_server_start(&o, &s, &why), -EINVAL);
	o.path = NULL;
	o.public_url = "ftp://example.com/hubspot";
	ASSERT_EQ(wh_server_start(&o, &s, &why), -EINVAL);
	wh_server_stop(NULL);
	ASSERT_EQ(open_fds(), fds); /* every listening socket closed */
}

static void test_server_v3(void)
{
	struct wh_server *s = start((struct wh_server_opts){ 0 });
	char ts[32], local[128];
	g_autofree char *sig = NULL, *other = NULL, *sig_uri = NULL;
	g_autofree char *v1 = sign_v1(SECRET, DOC_BODY);
	struct reply r;
	struct wh_stats st;
	GArray *ev;

	snprintf(ts, sizeof(ts), "%" PRId64, test_clock());
	snprintf(local, sizeof(local), "http://127.0.0.1:%u/hubspot", wh_server_port(s));
	sig = sign_v3(SECRET, "POST", local, DOC_BODY, strlen(DOC_BODY), ts);

	r = http(s, (struct post){ .sig3 = sig, .ts = ts });
	ASSERT_EQ(r.status, 200);
	ASSERT_EQ(ngot(), 1);
	ev = got->pdata[0];
	ASSERT_EQ(ev->len, 1);
	ASSERT_EQ(EV(ev, 0)->kind, WH_CREATION);
	ASSERT_EQ(EV(ev, 0)->object_id, 123);
	st = stats(s);
	ASSERT_EQ(st.received, 1);
	ASSERT_EQ(st.accepted, 1);
	ASSERT_EQ(st.events, 1);
	ASSERT_EQ(st.last_delivery_ms, test_clock());

	/* the same request again: answered 200 (HubSpot must not retry it), ignored */
	r = http(s, (struct post){ .sig3 = sig, .ts = ts });
	ASSERT_EQ(r.status, 200);
	ASSERT_EQ(ngot(), 1);
	ASSERT_EQ(stats(s).rejected[WH_REJ_REPLAY], 1);

	/* refusals: 401 and nothing handed over */
	other = sign_v3(OTHER_SECRET, "POST", local, DOC_BODY, strlen(DOC_BODY), ts);
	ASSERT_EQ(http(s, (struct post){ .sig3 = other, .ts = ts }).status, 401); /* wrong secret */
	ASSERT_EQ(http(s, (struct post){ .sig3 = sig, .ts = ts, .body = DOC_BODY " " }).status, 401);
	ASSERT_EQ(http(s, (struct post){ .sig3 = sig, .ts = ts,
					 .body = "[{\"eventId\":2}]" }).status, 401); /* tampered */
	ASSERT_EQ(http(s, (struct post){ .sig3 = sig }).status, 401);               /* no timestamp */
	ASSERT_EQ(http(s, (struct post){ .ts = ts }).status, 401);                  /* no signature */
	ASSERT_EQ(http(s, (struct post){ 0 }).status, 401);                         /* unsigned */
	ASSERT_EQ(http(s, (struct post){ .sig3 = "not base64", .ts = ts }).status, 401);
	ASSERT_EQ(http(s, (struct post){ .sig3 = sig, .ts = "1700000000001" }).status, 401);
	/* v1 is not accepted unless enabled */
	ASSERT_EQ(http(s, (struct post){ .sig1 = v1, .version = "v1" }).status, 401);
	ASSERT_EQ(ngot(), 1);
	st = stats(s);
	ASSERT_EQ(st.rejected[WH_REJ_SIGNATURE], 9);
	ASSERT_EQ(st.accepted, 1);
	ASSERT_EQ(st.received, 11);

	/* stale: a right signature on a timestamp 5 min + 1 ms old, or ahead */
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, DOC_BODY, test_clock() - 300001, NULL).status, 401);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, DOC_BODY, test_clock() + 300001, NULL).status, 401);
	ASSERT_EQ(stats(s).rejected[WH_REJ_STALE], 2);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, DOC_BODY, test_clock() - 300000, NULL).status, 200);
	ASSERT_EQ(ngot(), 2);

	/* the query is signed; HubSpot's escapes are decoded, others are not */
	sig_uri = g_strdup_printf("http://127.0.0.1:%u/hubspot?portal=62515&x=:a/b%%20@", wh_server_port(s));
	ASSERT_EQ(post_v3(s, "/hubspot?portal=62515&x=%3Aa%2fb%20%40", sig_uri, DOC_BODY, 0, NULL).status, 200);
	g_free(sig_uri);
	sig_uri = g_strdup_printf("http://127.0.0.1:%u/hubspot?x=%%3Aa", wh_server_port(s));
	ASSERT_EQ(post_v3(s, "/hubspot?x=%3Aa", sig_uri, DOC_BODY, 0, NULL).status, 401);
	ASSERT_EQ(ngot(), 3);
	/* a signature for another host */
	ASSERT_EQ(post_v3(s, "/hubspot", "http://example.com/hubspot", DOC_BODY, 0, NULL).status, 401);
	ASSERT_EQ(ngot(), 3);
	wh_server_stop(s);
}

static void test_server_public_url(void)
{
	const char *pub = "https://hooks.example.com/hubfs/hook?mount=a%2Fb";
	struct wh_server *s = start((struct wh_server_opts){ .public_url = pub, .path = "/in" });
	guint before = ngot();

	/* signed as HubSpot saw it, posted by the proxy to /in */
	ASSERT_EQ(post_v3(s, "/in", "https://hooks.example.com/hubfs/hook?mount=a/b", DOC_BODY, 0,
			  NULL).status, 200);
	/* the local URL is not what HubSpot signed */
	ASSERT_EQ(post_v3(s, "/in", NULL, "[]", 0, NULL).status, 401);
	ASSERT_EQ(post_v3(s, "/hubspot", "https://hooks.example.com/hubfs/hook?mount=a/b", "[]", 0,
			  NULL).status, 404);
	ASSERT_EQ(ngot(), before + 1);
	wh_server_stop(s);
}

static void test_server_v1(void)
{
	struct wh_server *s = start((struct wh_server_opts){ .allow_v1 = true });
	g_autofree char *v1 = sign_v1(SECRET, DOC_BODY), *up = g_ascii_strup(v1, -1);
	g_autofree char *body2 = g_strdup("[{\"subscriptionType\":\"deal.deletion\",\"objectId\":9}]");
	g_autofree char *v1b = sign_v1(SECRET, body2), *v1x = sign_v1(OTHER_SECRET, DOC_BODY);
	guint before = ngot();

	ASSERT_EQ(http(s, (struct post){ .sig1 = v1, .version = "v1" }).status, 200);
	ASSERT_EQ(ngot(), before + 1);
	/* a replay, even with the hex in capitals */
	ASSERT_EQ(http(s, (struct post){ .sig1 = up, .version = "v1" }).status, 200);
	ASSERT_EQ(ngot(), before + 1);
	ASSERT_EQ(stats(s).rejected[WH_REJ_REPLAY], 1);
	/* no version header: v1 */
	ASSERT_EQ(http(s, (struct post){ .body = body2, .sig1 = v1b }).status, 200);
	ASSERT_EQ(ngot(), before + 2);
	ASSERT_EQ(http(s, (struct post){ .sig1 = v1x }).status, 401);
	ASSERT_EQ(http(s, (struct post){ .sig1 = v1, .version = "v2" }).status, 401);
	/* a failed v3 is not saved by a right v1 */
	ASSERT_EQ(http(s, (struct post){ .sig1 = v1, .sig3 = "vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA=",
					 .ts = "1700000000000" }).status, 401);
	ASSERT_EQ(ngot(), before + 2);
	/* v1 replays are remembered for 5 minutes only */
	atomic_fetch_add(&fake_now, 300001);
	ASSERT_EQ(http(s, (struct post){ .sig1 = v1 }).status, 200);
	ASSERT_EQ(ngot(), before + 3);
	wh_server_stop(s);
}

static void test_server_http_refusals(void)
{
	struct wh_server *s = start((struct wh_server_opts){ .max_body = 1024 });
	g_autofree char *big = g_strnfill(1025, ' ');
	g_autofree char *huge = g_strnfill(3 * 1024, ' ');
	g_autofree char *fits = g_strnfill(1024, ' ');
	struct reply r;
	guint before = ngot();
	struct wh_stats st;

	/* the path is checked first, then the method */
	r = post_v3(s, "/hubspot/", NULL, DOC_BODY, 0, NULL);
	ASSERT_EQ(r.status, 404);
	ASSERT_EQ(post_v3(s, "/other", NULL, DOC_BODY, 0, NULL).status, 404);
	ASSERT_EQ(http(s, (struct post){ .method = "GET", .target = "/" }).status, 404);
	r = http(s, (struct post){ .method = "GET" });
	ASSERT_EQ(r.status, 405);
	ASSERT(strstr(r.allow, "POST"));
	ASSERT_EQ(http(s, (struct post){ .method = "PUT" }).status, 405);

	/* non-JSON, or JSON that is no delivery, correctly signed: 400 */
	r = post_v3(s, "/hubspot", NULL, "<html>hello</html>", 0, NULL);
	ASSERT_EQ(r.status, 400);
	ASSERT(strstr(r.text, "JSON"));
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, "{\"objectId\":1}", 0, NULL).status, 400);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, "[1,2]", 0, NULL).status, 400);

	/* the size cap, with Content-Length and chunked */
	memcpy(big, "[]", 2);
	memcpy(fits, "[]", 2);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, big, 0, NULL).status, 413);
	ASSERT_EQ(http(s, (struct post){ .body = big, .chunked = true, .sig3 = "x", .ts = "1" }).status, 413);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, fits, 0, NULL).status, 200); /* exactly the cap */
	/* a chunked body that goes on and on: dropped, then the connection closed */
	ASSERT_EQ(http(s, (struct post){ .body = huge, .chunked = true, .may_fail = true }).status, 0);

	st = stats(s);
	ASSERT_EQ(st.rejected[WH_REJ_PATH], 3);
	ASSERT_EQ(st.rejected[WH_REJ_METHOD], 2);
	ASSERT_EQ(st.rejected[WH_REJ_JSON], 3);
	ASSERT_EQ(st.rejected[WH_REJ_SIZE], 3);
	ASSERT_EQ(st.accepted, 1);
	ASSERT_EQ(st.events, 0);
	ASSERT_EQ(ngot(), before + 1);
	wh_server_stop(s);
}

/* A chunked body within the cap is taken whole. */
static void test_server_chunked(void)
{
	struct wh_server *s = start((struct wh_server_opts){ 0 });
	char ts[32], local[128];
	GString *body = g_string_new("[");
	g_autofree char *sig = NULL;
	guint before = ngot();
	GArray *ev;

	for (int i = 1; i <= 99; i++)
		g_string_append_printf(body, "%s{\"subscriptionType\":\"contact.propertyChange\","
				       "\"objectId\":%d,\"propertyName\":\"firstname\",\"occurredAt\":%d}",
				       i > 1 ? "," : "", i, 1000 + i);
	g_string_append(body, "]");
	snprintf(ts, sizeof(ts), "%" PRId64, test_clock());
	snprintf(local, sizeof(local), "http://127.0.0.1:%u/hubspot", wh_server_port(s));
	sig = sign_v3(SECRET, "POST", local, body->str, body->len, ts);
	ASSERT_GT(body->len, 8192);
	ASSERT_EQ(http(s, (struct post){ .body = body->str, .len = body->len, .chunked = true,
					 .sig3 = sig, .ts = ts }).status, 200);
	ASSERT_EQ(ngot(), before + 1);
	ev = got->pdata[before];
	ASSERT_EQ(ev->len, 99);
	ASSERT_EQ(EV(ev, 98)->object_id, 99);
	ASSERT_EQ(EV(ev, 98)->occurred_at, 1099);
	g_string_free(body, TRUE);
	wh_server_stop(s);
}

/* A Content-Length past the cap is answered before any of the body is sent. */
static void test_server_413_before_body(void)
{
	struct wh_server *s = start((struct wh_server_opts){ 0 });
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(wh_server_port(s)) };
	const char *req = "POST /hubspot HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
			  "Content-Length: 1000000000\r\n"
			  "X-HubSpot-Signature-v3: vYt5enFv25HJRG6tsXKFuOtDlX0chl9mxouF1re6TVA=\r\n"
			  "X-HubSpot-Request-Timestamp: 1700000000000\r\n\r\n";
	struct pollfd pfd;
	char buf[512] = "";
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT(fd >= 0);
	ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	ASSERT_EQ(poll(&pfd, 1, 20000), 1); /* a deadline against hanging, not a timing check */
	n = read(fd, buf, sizeof(buf) - 1);
	ASSERT_GT(n, 12);
	if (!g_str_has_prefix(buf, "HTTP/1.1 413"))
		FAIL("answer to a 1 GB Content-Length: %.40s", buf);
	close(fd);
	ASSERT_EQ(stats(s).rejected[WH_REJ_SIZE], 1);
	wh_server_stop(s);
}

static void test_server_unknown_events(void)
{
	struct wh_server *s = start((struct wh_server_opts){ 0 });
	const char *body = "[{\"subscriptionType\":\"conversation.creation\",\"objectId\":1},"
			   "{\"subscriptionType\":\"contact.somethingNew\",\"objectId\":2},"
			   "{\"subscriptionType\":\"contact.deletion\",\"objectId\":3}]";
	guint before = ngot();
	struct wh_stats st;

	ASSERT_EQ(post_v3(s, "/hubspot", NULL, body, 0, NULL).status, 200);
	ASSERT_EQ(ngot(), before + 1);
	ASSERT_EQ(((GArray *)got->pdata[before])->len, 3); /* kept, for the consumer to ignore */
	st = stats(s);
	ASSERT_EQ(st.events, 3);
	ASSERT_EQ(st.events_other, 1); /* conversation.creation is a creation, of a conversation */
	ASSERT_EQ(EV((GArray *)got->pdata[before], 0)->kind, WH_CREATION);
	ASSERT_STR(EV((GArray *)got->pdata[before], 0)->object, "conversation");
	wh_server_stop(s);
}

/* With room for 2 signatures: the oldest goes, and a request it could be a
 * replay of is answered 503 (retry later) rather than accepted. */
static void test_server_replay_bound(void)
{
	struct wh_server *s = start((struct wh_server_opts){ .replay_max = 2 });
	int64_t t0 = test_clock();
	const char *b[] = { "[{\"objectId\":1}]", "[{\"objectId\":2}]", "[{\"objectId\":3}]",
			    "[{\"objectId\":4}]", "[{\"objectId\":5}]" };
	guint before = ngot();
	struct wh_stats st;

	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[0], t0 - 3000, NULL).status, 200);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[1], t0 - 2000, NULL).status, 200);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[2], t0 - 1000, NULL).status, 200); /* evicts b0 */
	ASSERT_EQ(ngot(), before + 3);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[0], t0 - 3000, NULL).status, 503); /* cannot tell */
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[3], t0 - 3500, NULL).status, 503); /* older than kept */
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[2], t0 - 1000, NULL).status, 200); /* replay */
	ASSERT_EQ(ngot(), before + 3);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[4], t0, NULL).status, 200);        /* evicts b1 */
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[1], t0 - 2000, NULL).status, 503);
	ASSERT_EQ(ngot(), before + 4);
	st = stats(s);
	ASSERT_EQ(st.rejected[WH_REJ_BUSY], 3);
	ASSERT_EQ(st.rejected[WH_REJ_REPLAY], 1);
	ASSERT_EQ(st.accepted, 4);
	/* once the window has moved on, old ones are stale and new ones (in order) are welcome */
	atomic_fetch_add(&fake_now, 400000);
	ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[0], t0 - 3000, NULL).status, 401);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(post_v3(s, "/hubspot", NULL, b[i], test_clock() - 5 + i, NULL).status, 200);
	ASSERT_EQ(ngot(), before + 9);
	wh_server_stop(s);
}

/* No secret anywhere in the captured stderr (the logs at debug level, and
 * libmicrohttpd's). */
static void check_stderr(void)
{
	gsize len = 0;
	g_autofree char *text = capture_end(&len);
	ASSERT(strstr(text, "webhook: listening on 127.0.0.1:")); /* the logs did run */
	ASSERT(strstr(text, "request rejected (signature)"));
	ASSERT(strstr(text, "whsec") == NULL);
	ASSERT(strstr(text, "7d9a") == NULL);
	ASSERT(strstr(text, DOC_SECRET) == NULL);
	fprintf(stderr, "  %zu bytes of logs: no secret in them\n", (size_t)len);
}

int main(void)
{
	capture_start("test_webhook");
	log_set_level(LOG_DEBUG);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	got = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

	RUN(test_v1_vector);
	RUN(test_v3_vectors);
	RUN(test_v3_refusals);
	RUN(test_uri_decode);
	RUN(test_parse_creation);
	RUN(test_parse_kinds);
	RUN(test_parse_merge);
	RUN(test_parse_association);
	RUN(test_parse_unknown_and_odd);
	RUN(test_parse_refusals);
	RUN(test_server_listen);
	RUN(test_server_v3);
	RUN(test_server_public_url);
	RUN(test_server_v1);
	RUN(test_server_http_refusals);
	RUN(test_server_chunked);
	RUN(test_server_413_before_body);
	RUN(test_server_unknown_events);
	RUN(test_server_replay_bound);

	g_ptr_array_free(got, TRUE);
	curl_global_cleanup();
	check_stderr();
	return 0;
}
