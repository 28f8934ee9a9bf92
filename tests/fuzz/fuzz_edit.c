/* fuzz_edit - the record-file parser, validator and diff (cache/model/edit.h).
 *
 * Input: one selector byte, then the bytes a writer closed. The selector picks
 * the fixture (a contact, a deal with pipelines, a ticket with pipelines, all
 * from tests/unit/golden/edit/) and whether pipelines and owners are known.
 * The record's base file is record_render of the fixture's API object.
 *
 * Invariants:
 *  - edit_parse: 0 or -EINVAL; on failure no output and a one-line, valid UTF-8
 *    reason; on success the changes name existing, writable properties whose
 *    value differs from the base, and bases hold the base values;
 *  - edit_apply of those changes gives a record file (ends "}\n", strict JSON,
 *    the fixed key order, every shown property) that is a no-change edit of
 *    itself, whose diff against the base is the changes again (but for
 *    properties the file does not show and checkbox appends), and against which
 *    the writer's file is no change (same exceptions);
 *  - edit_parse_new: on success a non-empty object of non-empty strings naming
 *    writable properties, that edit_apply accepts;
 *  - edit_parse_create (the core registry): the same properties as
 *    edit_parse_new where that accepts the file; associations NULL or a
 *    non-empty array of distinct records, each of a type associable with the
 *    record's, with a valid id and at least one typed association;
 *  - edit_apply with the input as base: a record file that renders to itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cache/model/edit.h"
#include "cache/model/json_util.h"
#include "cache/model/objtypes.h"
#include "cache/model/record.h"
#include "cache/model/schema.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/types.h"

struct fx {
	const struct objtype *type;
	struct schema *s;
	json_object *pipes_resp;
	json_object *pipelines;  /* borrowed from pipes_resp */
	json_object *owners;
	char *base;
	size_t base_len;
	json_object *bprops;     /* the base file's properties (owned by bobj) */
	json_object *bobj;
};

static struct fx fxs[3];

static void fx_load(struct fx *f, int ti, const char *record)
{
	const struct objtype *type = ty(ti);
	g_autofree char *props = g_strdup_printf("%s_props.json", type->name);
	json_object *resp = fuzz_golden(props), *api = fuzz_golden(record);
	uint64_t id;
	int64_t ms;
	bool ok;

	f->type = type;
	if (schema_new(type, resp, NULL, &f->s) != 0)
		abort();
	json_object_put(resp);
	if (type->pipeline_prop) {
		g_autofree char *pipes = g_strdup_printf("%s_pipelines.json", type->name);

		f->pipes_resp = fuzz_golden(pipes);
		f->pipelines = json_object_object_get(f->pipes_resp, "results");
	}
	f->owners = json_tokener_parse("[\"31000001\", \"31000002\", \"31000003\"]");
	if (record_render(api, f->s, &f->base, &f->base_len, &id, &ms) != 0)
		abort();
	json_object_put(api);
	f->bobj = fuzz_json(f->base, f->base_len, FUZZ_STRICT, &ok);
	f->bprops = json_object_object_get(f->bobj, "properties");
	if (!f->bprops)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	fx_load(&fxs[0], TY_CONTACTS, "contact_101.json");
	fx_load(&fxs[1], TY_DEALS, "deal_301.json");
	fx_load(&fxs[2], TY_TICKETS, "ticket_501.json");
	return 0;
}

/* ------------------------------------------------------------ checks */

static void check_error(int rc, const struct edit_error *err, const char *what)
{
	size_t rlen = strnlen(err->reason, sizeof(err->reason));
	size_t plen = strnlen(err->property, sizeof(err->property));

	FUZZ_CHECK(rc == -EINVAL, "%s returned %d", what, rc);
	FUZZ_CHECK(rlen < sizeof(err->reason), "%s: reason not NUL-terminated", what);
	FUZZ_CHECK(plen < sizeof(err->property), "%s: property not NUL-terminated", what);
	FUZZ_CHECK(rlen > 0, "%s: empty reason", what);
	FUZZ_CHECK(fuzz_utf8(err->reason, rlen), "%s: reason not UTF-8: %s", what, err->reason);
	FUZZ_CHECK(fuzz_utf8(err->property, plen), "%s: property not UTF-8", what);
	FUZZ_CHECK(!strchr(err->reason, '\n'), "%s: reason spans lines: %s", what, err->reason);
}

/* The base value of a property as edit_parse compares it ("" for null), or
 * NULL if the base file does not show it. */
static const char *base_value(json_object *bprops, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(bprops, name, &v))
		return NULL;
	return v ? json_object_get_string(v) : "";
}

/* The length of the base value, NULs included (0 for null or not shown). */
static size_t base_len(json_object *bprops, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(bprops, name, &v) || !v)
		return 0;
	return (size_t)json_object_get_string_len(v);
}

/* A record file: newline-terminated strict JSON with the keys id, properties,
 * createdAt, updatedAt, archived in that order, and exactly the shown
 * properties, sorted, as strings or null.
 * Returns the parsed file. */
static json_object *check_record_file(const struct schema *s, const char *text, size_t len)
{
	static const char *const keys[] = { "id", "properties", "createdAt", "updatedAt", "archived" };
	json_object *o, *props;
	size_t i = 0, n;
	bool ok;

	FUZZ_CHECK(strlen(text) == len, "length %zu but strlen %zu", len, strlen(text));
	FUZZ_CHECK(len >= 2 && !strcmp(text + len - 2, "}\n"), "record file does not end in }\\n: %s",
		   text);
	o = fuzz_json(text, len, FUZZ_STRICT, &ok);
	FUZZ_CHECK(o && json_object_is_type(o, json_type_object), "record file is not strict JSON:\n%s",
		   text);
	FUZZ_CHECK(json_object_object_length(o) == 5, "record file has %d keys",
		   json_object_object_length(o));
	json_object_object_foreach(o, k, v) {
		(void)v;
		FUZZ_CHECK(!strcmp(k, keys[i]), "key %zu is %s, not %s", i, k, keys[i]);
		i++;
	}
	FUZZ_CHECK(json_object_is_type(json_object_object_get(o, "id"), json_type_string), "id not a string");
	props = json_object_object_get(o, "properties");
	n = schema_shown_count(s);
	FUZZ_CHECK((size_t)json_object_object_length(props) == n, "%d properties, %zu shown",
		   json_object_object_length(props), n);
	i = 0;
	json_object_object_foreach(props, name, pv) {
		FUZZ_CHECK(!strcmp(name, schema_shown(s, i)), "property %zu is %s, not %s", i, name,
			   schema_shown(s, i));
		FUZZ_CHECK(!pv || json_object_is_type(pv, json_type_string), "property %s is %s", name,
			   fuzz_json_text(pv));
		i++;
	}
	return o;
}

/* The properties object of the writer's file as strict JSON sees it (after a
 * UTF-8 BOM), or NULL; *top owns it. */
static json_object *input_props(const char *buf, size_t len, json_object **top)
{
	bool ok;

	if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) {
		buf += 3;
		len -= 3;
	}
	*top = fuzz_json(buf, len, FUZZ_STRICT, &ok);
	return json_object_object_get(*top, "properties");
}

/* s is a plain decimal as HubSpot takes it: -?digits with an optional point. */
static bool plain_decimal(const char *s)
{
	size_t n;

	s += *s == '-';
	n = strspn(s, "0123456789");
	if (s[n] == '.')
		n += 1 + strspn(s + n + 1, "0123456789");
	return n > 0 && s[n] == '\0' && strcmp(s, ".") != 0;
}

/* A change or new value is what the writer wrote: the string, "" for null,
 * true/false, a number as written — or, for a number property written with
 * an exponent or a +, the same number as a plain decimal. */
static void check_written(const struct schema *sc, json_object *in, const char *name, json_object *v)
{
	json_object *w;
	const char *want;

	FUZZ_CHECK(json_object_object_get_ex(in, name, &w), "%s changed but not in the file", name);
	if (!w)
		want = "";
	else if (json_object_is_type(w, json_type_boolean))
		want = json_object_get_boolean(w) ? "true" : "false";
	else
		want = json_object_get_string(w);
	if (!strcmp(json_object_get_string(v), want))
		return;
	{
		json_object *def = schema_prop(sc, name), *t = NULL;
		const char *got = json_object_get_string(v);
		bool number = def && json_object_object_get_ex(def, "type", &t) &&
			      !strcmp(json_object_get_string(t), "number");

		FUZZ_CHECK(number && plain_decimal(got) && strpbrk(want, "eE+") &&
			   g_ascii_strtod(got, NULL) == g_ascii_strtod(want, NULL),
			   "%s: change %s, the file says %s", name, fuzz_json_text(v), fuzz_json_text(w));
	}
}

/* The value a changes object gives a property after edit_apply ("" = null). */
static const char *applied_value(json_object *aprops, const char *name)
{
	return base_value(aprops, name);
}

static void check_edit_ok(const struct fx *f, const struct edit_ctx *ctx, const char *buf,
			  size_t len, json_object *ch, json_object *bs)
{
	json_object *applied, *aprops, *ch2 = NULL, *bs2 = NULL, *top, *in = input_props(buf, len, &top);
	struct edit_error err;
	char *text = NULL;
	size_t tlen = 0;
	int rc;

	FUZZ_CHECK(json_object_is_type(ch, json_type_object), "changes: %s", fuzz_json_text(ch));
	FUZZ_CHECK(json_object_is_type(bs, json_type_object), "bases: %s", fuzz_json_text(bs));
	FUZZ_CHECK(json_object_object_length(ch) == json_object_object_length(bs),
		   "changes %s, bases %s", fuzz_json_text(ch), fuzz_json_text(bs));
	json_object_object_foreach(ch, name, v) {
		json_object *def = schema_prop(f->s, name), *b;
		const char *bv = base_value(f->bprops, name);

		FUZZ_CHECK(def, "change to unknown property %s", name);
		FUZZ_CHECK(!schema_prop_readonly(def), "change to read-only property %s", name);
		FUZZ_CHECK(json_object_is_type(v, json_type_string), "change %s = %s", name, fuzz_json_text(v));
		FUZZ_CHECK(strlen(json_object_get_string(v)) == (size_t)json_object_get_string_len(v),
			   "change %s holds a NUL", name);
		FUZZ_CHECK(fuzz_utf8(json_object_get_string(v), (size_t)json_object_get_string_len(v)),
			   "change %s = %s is not UTF-8", name, fuzz_json_text(v));
		FUZZ_CHECK(!bv || strcmp(bv, json_object_get_string(v)) != 0 ||
			   strlen(bv) != base_len(f->bprops, name),
			   "change %s = \"%s\" equals the base", name, json_object_get_string(v));
		check_written(f->s, in, name, v);
		FUZZ_CHECK(json_object_object_get_ex(bs, name, &b), "no base for change %s", name);
		if (bv && json_object_object_get(f->bprops, name))
			FUZZ_CHECK(b && !strcmp(json_object_get_string(b), bv), "base of %s: %s, want %s",
				   name, fuzz_json_text(b), bv);
		else
			FUZZ_CHECK(!b, "base of %s (not set in the base file): %s", name, fuzz_json_text(b));
	}

	rc = edit_apply(f->s, f->base, f->base_len, ch, &text, &tlen);
	FUZZ_CHECK(rc == 0, "edit_apply of %s: %d", fuzz_json_text(ch), rc);
	applied = check_record_file(f->s, text, tlen);
	aprops = json_object_object_get(applied, "properties");

	/* The applied file, saved as is, changes nothing. */
	rc = edit_parse(ctx, text, tlen, text, tlen, &ch2, &bs2, &err);
	FUZZ_CHECK(rc == 0 && json_object_object_length(ch2) == 0,
		   "applied file as an edit of itself: rc %d, changes %s (%s)\n%s", rc,
		   fuzz_json_text(ch2), rc ? err.reason : "", text);
	json_object_put(ch2);
	json_object_put(bs2);
	ch2 = bs2 = NULL;

	/* Against the base it is the same change (minus what it cannot show). */
	rc = edit_parse(ctx, text, tlen, f->base, f->base_len, &ch2, &bs2, &err);
	FUZZ_CHECK(rc == 0, "applied file as an edit of the base: %s (%s)\nchanges %s", err.reason,
		   err.property, fuzz_json_text(ch));
	json_object_object_foreach(ch2, n2, v2) {
		json_object *x;

		FUZZ_CHECK(json_object_object_get_ex(ch, n2, &x), "applied file changes %s = %s too",
			   n2, fuzz_json_text(v2));
	}
	json_object_object_foreach(ch, n1, v1) {
		const char *av = applied_value(aprops, n1);
		json_object *x;

		if (!av || strcmp(av, json_object_get_string(v1)) != 0)
			continue; /* not shown, or a checkbox append merged */
		FUZZ_CHECK(json_object_object_get_ex(ch2, n1, &x) &&
			   !strcmp(json_object_get_string(x), json_object_get_string(v1)),
			   "applied file lost the change %s = %s", n1, fuzz_json_text(v1));
	}
	json_object_put(ch2);
	json_object_put(bs2);
	ch2 = bs2 = NULL;

	/* Saved again after the write landed locally: no change but what the file
	 * cannot show and checkbox appends. */
	rc = edit_parse(ctx, buf, len, text, tlen, &ch2, &bs2, &err);
	FUZZ_CHECK(rc == 0, "the same edit against the applied file: %s", err.reason);
	json_object_object_foreach(ch2, n3, v3) {
		const char *av = applied_value(aprops, n3);
		json_object *x;

		FUZZ_CHECK(json_object_object_get_ex(ch, n3, &x), "re-diff changes %s = %s",
			   n3, fuzz_json_text(v3));
		FUZZ_CHECK(!av || strcmp(av, json_object_get_string(x)) != 0,
			   "re-diff changes %s again (%s)", n3, fuzz_json_text(v3));
	}
	json_object_put(ch2);
	json_object_put(bs2);
	json_object_put(applied);
	json_object_put(top);
	g_free(text);
}

static void check_new(const struct fx *f, const struct edit_ctx *ctx, const char *buf, size_t len)
{
	json_object *props = (json_object *)1, *applied, *top, *in;
	struct edit_error err;
	char *text = NULL;
	size_t tlen = 0;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = edit_parse_new(ctx, buf, len, &props, &err);
	if (rc != 0) {
		FUZZ_CHECK(!props, "edit_parse_new failed but set props");
		check_error(rc, &err, "edit_parse_new");
		return;
	}
	FUZZ_CHECK(json_object_is_type(props, json_type_object) && json_object_object_length(props) > 0,
		   "new props %s", fuzz_json_text(props));
	in = input_props(buf, len, &top);
	json_object_object_foreach(props, name, v) {
		check_written(f->s, in, name, v);
		json_object *def = schema_prop(f->s, name);

		FUZZ_CHECK(def && !schema_prop_readonly(def), "new record sets %s", name);
		FUZZ_CHECK(json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0,
			   "new %s = %s", name, fuzz_json_text(v));
		FUZZ_CHECK(fuzz_utf8(json_object_get_string(v), (size_t)json_object_get_string_len(v)),
			   "new %s = %s is not UTF-8", name, fuzz_json_text(v));
	}
	rc = edit_apply(f->s, f->base, f->base_len, props, &text, &tlen);
	FUZZ_CHECK(rc == 0, "edit_apply of new props: %d", rc);
	applied = check_record_file(f->s, text, tlen);
	json_object_put(applied);
	json_object_put(top);
	g_free(text);
	json_object_put(props);
}

static void check_assoc(const struct edit_ctx *ctx, json_object *e, GHashTable *seen)
{
	const char *tid = json_util_field(e, "toObjectTypeId");
	const struct objtype *to = tid ? objtypes_by_id(ctx->types, tid) : NULL;
	json_object *t = NULL, *types = NULL;
	const char *id;
	uint64_t n;

	FUZZ_CHECK(to && objtypes_associable(ctx->types, ctx->type, to), "association to %s",
		   fuzz_json_text(e));
	json_object_object_get_ex(e, "to", &t);
	id = json_util_field(t, "id");
	FUZZ_CHECK(id && record_parse_id(id, strlen(id), &n) == 0, "association id %s",
		   fuzz_json_text(e));
	FUZZ_CHECK(g_hash_table_add(seen, g_strdup_printf("%s:%s", tid, id)),
		   "association listed twice: %s", fuzz_json_text(e));
	FUZZ_CHECK(json_object_object_get_ex(e, "types", &types) &&
		   json_object_is_type(types, json_type_array) && json_object_array_length(types) > 0,
		   "association without types: %s", fuzz_json_text(e));
	for (size_t k = 0; k < json_object_array_length(types); k++) {
		json_object *spec = json_object_array_get_idx(types, k);

		FUZZ_CHECK(json_util_field(spec, "associationCategory") &&
			   json_object_get_int(json_object_object_get(spec, "associationTypeId")) > 0,
			   "association type %s", fuzz_json_text(spec));
	}
}

static void check_create(const struct edit_ctx *ctx0, const char *buf, size_t len)
{
	struct edit_ctx ctx = *ctx0;
	json_object *props = (json_object *)1, *assocs = (json_object *)1, *plain = NULL;
	struct edit_error err, err2;
	GHashTable *seen;
	int rc, rc2;

	ctx.types = test_types();
	ctx.now_ms = INT64_C(1780000000000);
	memset(&err, 0, sizeof(err));
	rc = edit_parse_create(&ctx, buf, len, &props, &assocs, &err);
	if (rc != 0) {
		FUZZ_CHECK(!props && !assocs, "edit_parse_create failed but set outputs");
		check_error(rc, &err, "edit_parse_create");
		return;
	}
	/* Core types are no engagements: the properties are edit_parse_new's. */
	memset(&err2, 0, sizeof(err2));
	rc2 = edit_parse_new(ctx0, buf, len, &plain, &err2);
	FUZZ_CHECK(rc2 != 0 || json_object_equal(plain, props), "create props %s, new props %s",
		   fuzz_json_text(props), fuzz_json_text(plain));
	json_object_put(plain);
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	FUZZ_CHECK(!assocs || (json_object_is_type(assocs, json_type_array) &&
			       json_object_array_length(assocs) > 0), "associations %s",
		   fuzz_json_text(assocs));
	for (size_t i = 0; assocs && i < json_object_array_length(assocs); i++)
		check_assoc(&ctx, json_object_array_get_idx(assocs, i), seen);
	g_hash_table_destroy(seen);
	json_object_put(props);
	json_object_put(assocs);
}

/* The input as the base of edit_apply: whatever it renders to renders to itself. */
static void check_render_fixpoint(const struct fx *f, const char *buf, size_t len)
{
	char *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;
	json_object *o;

	if (edit_apply(f->s, buf, len, NULL, &t1, &l1) != 0)
		return;
	o = check_record_file(f->s, t1, l1);
	json_object_put(o);
	FUZZ_CHECK(edit_apply(f->s, t1, l1, NULL, &t2, &l2) == 0, "rendered file does not re-render:\n%s", t1);
	FUZZ_CHECK(l1 == l2 && !memcmp(t1, t2, l1), "render is not a fixed point:\n%s\n---\n%s", t1, t2);
	g_free(t1);
	g_free(t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fx *f;
	struct edit_ctx ctx;
	struct edit_error err;
	json_object *ch = (json_object *)1, *bs = (json_object *)1;
	const char *buf;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	/* 'c', 'd', 't' pick the contact, deal or ticket with pipelines and
	 * owners known; 'C', 'D', 'T' the same with neither; any other byte b
	 * fixture b % 3, pipelines and owners hidden if (b / 3) is odd. */
	{
		static const char sels[] = "cdtCDT";
		const char *sel = memchr(sels, data[0], 6);
		size_t i = sel ? (size_t)(sel - sels) % 3 : data[0] % 3u;
		bool hide = sel ? sel - sels >= 3 : (data[0] / 3) & 1;

		f = &fxs[i];
		memset(&ctx, 0, sizeof(ctx));
		ctx.type = f->type;
		ctx.schema = f->s;
		ctx.pipelines = hide ? NULL : f->pipelines;
		ctx.owner_ids = hide ? NULL : f->owners;
	}
	buf = (const char *)data + 1;
	len = size - 1;

	memset(&err, 0, sizeof(err));
	rc = edit_parse(&ctx, buf, len, f->base, f->base_len, &ch, &bs, &err);
	if (rc == 0) {
		check_edit_ok(f, &ctx, buf, len, ch, bs);
		json_object_put(ch);
		json_object_put(bs);
	} else {
		FUZZ_CHECK(!ch && !bs, "edit_parse failed (%d) but set outputs", rc);
		check_error(rc, &err, "edit_parse");
	}
	check_new(f, &ctx, buf, len);
	check_create(&ctx, buf, len);
	check_render_fixpoint(f, buf, len);
	return 0;
}
