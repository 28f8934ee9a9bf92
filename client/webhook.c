/* webhook.c - parse HubSpot webhook deliveries and check their signatures.
 *
 * Pure functions: no I/O, no clock, no state. JSON by json-c, hashes, HMAC and
 * base64 by GLib. See webhook.h for the contracts.
 */
#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "client/webhook.h"

/* Events are flat objects; merged ids one level down. */
#define PARSE_MAX_DEPTH 16

static const char *const kind_names[WH_KIND_COUNT] = {
	[WH_CREATION] = "creation",
	[WH_DELETION] = "deletion",
	[WH_PROPERTY_CHANGE] = "propertyChange",
	[WH_ASSOCIATION_CHANGE] = "associationChange",
	[WH_MERGE] = "merge",
	[WH_RESTORE] = "restore",
	[WH_PRIVACY_DELETION] = "privacyDeletion",
	[WH_OTHER] = "other",
};

const char *wh_kind_name(enum wh_kind k)
{
	return (unsigned)k < WH_KIND_COUNT ? kind_names[k] : "other";
}

/* ---- events ---------------------------------------------------------------- */

static json_object *field(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A positive integer from a JSON integer or a string of decimal digits;
 * 0 for anything else (negative, fractional, too large, absent). */
static uint64_t as_u64(json_object *v)
{
	guint64 n;
	const char *s;

	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v) < 0 ? 0 : json_object_get_uint64(v);
	if (!json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	/* g_ascii_string_to_unsigned would take a leading '+'. */
	if (!g_ascii_isdigit(s[0]) || (size_t)json_object_get_string_len(v) != strlen(s))
		return 0;
	if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &n, NULL))
		return 0;
	return n;
}

static uint64_t get_id(json_object *o, const char *key)
{
	return as_u64(field(o, key));
}

static int64_t get_i64(json_object *o, const char *key)
{
	uint64_t n = as_u64(field(o, key));

	return n > INT64_MAX ? 0 : (int64_t)n;
}

static bool get_bool(json_object *o, const char *key)
{
	json_object *v = field(o, key);

	return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* Copy the string value of key into dst[size]: left empty when absent, not a
 * string, holding a NUL, or too long to fit whole. */
static void get_str(json_object *o, const char *key, char *dst, size_t size)
{
	json_object *v = field(o, key);
	size_t n;

	dst[0] = '\0';
	if (!json_object_is_type(v, json_type_string))
		return;
	n = (size_t)json_object_get_string_len(v);
	if (n >= size || memchr(json_object_get_string(v), '\0', n))
		return;
	memcpy(dst, json_object_get_string(v), n + 1);
}

static enum wh_kind kind_of(const char *action)
{
	for (int k = 0; k < WH_OTHER; k++)
		if (strcmp(action, kind_names[k]) == 0)
			return k;
	return WH_OTHER;
}

/* "contact.propertyChange" -> object "contact", kind WH_PROPERTY_CHANGE. No
 * '.': the whole type is the object. An event whose object part is empty or
 * does not fit cannot be placed: WH_OTHER with no object. */
static void split_type(struct wh_event *e)
{
	const char *dot = strchr(e->type, '.');
	size_t n = dot ? (size_t)(dot - e->type) : strlen(e->type);

	e->kind = WH_OTHER;
	if (n == 0 || n >= sizeof(e->object))
		return;
	memcpy(e->object, e->type, n);
	e->object[n] = '\0';
	if (dot)
		e->kind = kind_of(dot + 1);
}

static void event_fill(json_object *o, struct wh_event *e)
{
	json_object *v;

	memset(e, 0, sizeof(*e));
	/* An older docs example names the field eventType. */
	get_str(o, field(o, "subscriptionType") ? "subscriptionType" : "eventType",
		e->type, sizeof(e->type));
	split_type(e);
	get_str(o, "objectTypeId", e->object_type_id, sizeof(e->object_type_id));
	e->object_id = get_id(o, "objectId");
	e->occurred_at = get_i64(o, "occurredAt");
	e->event_id = get_id(o, "eventId");
	e->subscription_id = get_id(o, "subscriptionId");
	e->portal_id = get_id(o, "portalId");
	e->app_id = get_id(o, "appId");
	e->attempt = (int32_t)MIN(get_i64(o, "attemptNumber"), INT32_MAX);
	get_str(o, "changeSource", e->change_source, sizeof(e->change_source));
	get_str(o, "sourceId", e->source_id, sizeof(e->source_id));
	get_str(o, "propertyName", e->property, sizeof(e->property));

	e->primary_id = get_id(o, "primaryObjectId");
	e->new_id = get_id(o, "newObjectId");
	v = field(o, "mergedObjectIds");
	if (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) {
		size_t n = json_object_array_length(v);

		e->merged_ids = g_new(uint64_t, n);
		for (size_t i = 0; i < n; i++) {
			uint64_t id = as_u64(json_object_array_get_idx(v, i));

			if (id)
				e->merged_ids[e->n_merged++] = id;
		}
		if (e->n_merged == 0)
			g_clear_pointer(&e->merged_ids, g_free);
	}

	get_str(o, "associationType", e->association_type, sizeof(e->association_type));
	get_str(o, "associationCategory", e->association_category,
		sizeof(e->association_category));
	e->association_type_id = (uint32_t)MIN(get_id(o, "associationTypeId"), UINT32_MAX);
	e->from_id = get_id(o, "fromObjectId");
	e->to_id = get_id(o, "toObjectId");
	get_str(o, "fromObjectTypeId", e->from_type_id, sizeof(e->from_type_id));
	get_str(o, "toObjectTypeId", e->to_type_id, sizeof(e->to_type_id));
	e->removed = get_bool(o, "associationRemoved");
	e->primary = get_bool(o, "isPrimaryAssociation");
}

static void event_clear(void *p)
{
	struct wh_event *e = p;

	g_clear_pointer(&e->merged_ids, g_free);
	e->n_merged = 0;
}

static bool json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int wh_parse(const char *body, size_t len, GArray **out, const char **why)
{
	json_tokener *tok = NULL;
	json_object *root = NULL;
	GArray *events = NULL;
	size_t end, n;
	int rc = -EINVAL;

	*out = NULL;
	*why = "not JSON";
	if (!body || len == 0 || len > INT32_MAX)
		goto out;
	tok = json_tokener_new_ex(PARSE_MAX_DEPTH);
	if (!tok) {
		rc = -ENOMEM;
		*why = "out of memory";
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (!root)
		goto out;
	for (end = json_tokener_get_parse_end(tok); end < len && json_space(body[end]); end++)
		;
	if (end != len) {
		*why = "text after the JSON value";
		goto out;
	}
	if (!json_object_is_type(root, json_type_array)) {
		*why = "not a JSON array of events";
		goto out;
	}
	n = json_object_array_length(root);
	if (n > WH_MAX_EVENTS) {
		*why = "more than 1000 events in one delivery";
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!json_object_is_type(json_object_array_get_idx(root, i), json_type_object)) {
			*why = "an event that is not a JSON object";
			goto out;
		}
	}
	events = g_array_sized_new(FALSE, TRUE, sizeof(struct wh_event), (guint)n);
	g_array_set_clear_func(events, event_clear);
	g_array_set_size(events, (guint)n);
	for (size_t i = 0; i < n; i++)
		event_fill(json_object_array_get_idx(root, i),
			   &g_array_index(events, struct wh_event, i));
	*out = g_steal_pointer(&events);
	*why = NULL;
	rc = 0;
out:
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* ---- signatures -------------------------------------------------------------- */

/* Compare n bytes in a time that depends on n only. */
static bool same_bytes(const char *a, const char *b, size_t n)
{
	volatile unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return d == 0;
}

char *wh_uri_decode(const char *uri)
{
	static const char decoded[] = ":/?@!$'()*,;";
	GString *s = g_string_sized_new(strlen(uri));

	for (const char *p = uri; *p; p++) {
		if (p[0] == '%' && g_ascii_isxdigit(p[1]) && g_ascii_isxdigit(p[2])) {
			char c = (char)(g_ascii_xdigit_value(p[1]) * 16 + g_ascii_xdigit_value(p[2]));

			if (c != '\0' && strchr(decoded, c)) {
				g_string_append_c(s, c);
				p += 2;
				continue;
			}
		}
		g_string_append_c(s, *p);
	}
	return g_string_free(s, FALSE);
}

/* Milliseconds: 1 to 18 decimal digits (no sign, no space), so no overflow. */
static bool parse_ms(const char *s, int64_t *ms)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 18 || s[n] != '\0')
		return false;
	*ms = g_ascii_strtoll(s, NULL, 10);
	return true;
}

/* HMAC-SHA-256 is 32 bytes: 43 base64 characters and one '='. */
static bool base64_sha256(const char *s)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	return strlen(s) == 44 && strspn(s, alphabet) == 43 && s[43] == '=';
}

int wh_verify_v3(const char *secret, const char *method, const char *uri,
		 const char *body, size_t len, const char *timestamp,
		 const char *signature, int64_t now_ms)
{
	guint8 digest[32];
	gsize dlen = sizeof(digest);
	g_autofree char *plain = NULL;
	g_autofree char *expect = NULL;
	GHmac *h;
	int64_t ts, skew;

	if (!secret || !*secret || !method || !*method || !uri || !*uri || (!body && len) ||
	    !timestamp || !signature || !parse_ms(timestamp, &ts) || !base64_sha256(signature) ||
	    len > G_MAXSSIZE)
		return -EINVAL;
	plain = wh_uri_decode(uri);
	h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *)secret, strlen(secret));
	g_hmac_update(h, (const guchar *)method, -1);
	g_hmac_update(h, (const guchar *)plain, -1);
	if (len)
		g_hmac_update(h, (const guchar *)body, (gssize)len);
	g_hmac_update(h, (const guchar *)timestamp, -1);
	g_hmac_get_digest(h, digest, &dlen);
	g_hmac_unref(h);
	expect = g_base64_encode(digest, dlen);
	if (!same_bytes(expect, signature, 44))
		return -EACCES;
	/* Checked after the signature, so that "stale" counts only requests that
	 * HubSpot really sent: a clock off by minutes, or a delayed delivery. */
	skew = now_ms - ts;
	if (skew > WH_MAX_SKEW_MS || skew < -WH_MAX_SKEW_MS)
		return -ETIME;
	return 0;
}

int wh_verify_v1(const char *secret, const char *body, size_t len, const char *signature)
{
	char got[65];
	GChecksum *c;
	bool same;

	if (!secret || !*secret || (!body && len) || !signature || strlen(signature) != 64 ||
	    strspn(signature, "0123456789abcdefABCDEF") != 64 || len > G_MAXSSIZE)
		return -EINVAL;
	for (int i = 0; i < 64; i++)
		got[i] = g_ascii_tolower(signature[i]);
	got[64] = '\0';
	c = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(c, (const guchar *)secret, -1);
	if (len)
		g_checksum_update(c, (const guchar *)body, (gssize)len);
	same = same_bytes(g_checksum_get_string(c), got, 64);
	g_checksum_free(c);
	return same ? 0 : -EACCES;
}
