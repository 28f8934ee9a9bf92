/* hubspot_calls.c - the typed calls of hubspot.h: URLs (every id and value
 * percent-encoded) and request bodies (json-c), over hs_request(). Split from
 * hubspot.c along the seam "what to ask" / "how to ask". */
#include "client/hubspot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#define MAX_PATH_LEN (64 * 1024)  /* longer URLs are refused before sending */
#define MAX_BATCH 100             /* objects batch endpoints */
#define MAX_ASSOC_BATCH_READ 1000 /* associations v4 batch/read */

/* Object type names and verbs: short, [A-Za-z0-9_-]. Still escaped in URLs. */
static bool name_ok(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++)
		if (!g_ascii_isalnum(s[n]) && s[n] != '_' && s[n] != '-')
			return false;
	return n > 0 && n <= 64;
}

/* Append s percent-encoded as one URL component (everything but RFC 3986
 * unreserved characters is escaped, including '/', ',', '&', '=' and '%'). */
static void append_escaped(GString *g, const char *s)
{
	char *e = g_uri_escape_string(s, NULL, FALSE);

	g_string_append(g, e);
	g_free(e);
}

/* Append a comma-separated list with each item escaped and the commas kept. */
static void append_csv(GString *g, const char *csv)
{
	const char *p = csv;
	bool first = true;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n > 0) {
			char *item = g_strndup(p, n);

			if (!first)
				g_string_append_c(g, ',');
			append_escaped(g, item);
			g_free(item);
			first = false;
		}
		p += n;
		if (*p == ',')
			p++;
	}
}

static int request_path(struct hs_client *c, struct hs_call *call, const char *method,
			GString *path, json_object *body, json_object **out)
{
	int rc;

	if (path->len > MAX_PATH_LEN) {
		memset(&call->err, 0, sizeof(call->err));
		snprintf(call->err.message, sizeof(call->err.message),
			 "request URL longer than %d bytes", MAX_PATH_LEN);
		g_string_free(path, TRUE);
		return -E2BIG;
	}
	rc = hs_request(c, call, method, path->str, body, out);
	g_string_free(path, TRUE);
	return rc;
}

static int bad_args(struct hs_call *call, json_object **out, const char *why)
{
	if (out)
		*out = NULL;
	if (call) {
		memset(&call->err, 0, sizeof(call->err));
		snprintf(call->err.message, sizeof(call->err.message), "%s", why);
		call->http_status = 0;
	}
	return -EINVAL;
}

static GString *objects_path(const char *type, const char *suffix)
{
	GString *g = g_string_new("/crm/v3/objects/");

	append_escaped(g, type);
	g_string_append(g, suffix);
	return g;
}

int hs_list_page(struct hs_client *c, struct hs_call *call, const char *type,
		 const char *props_csv, const char *after, bool archived, json_object **out)
{
	GString *g;

	if (!name_ok(type))
		return bad_args(call, out, "invalid object type");
	g = objects_path(type, "?limit=100");
	if (props_csv && *props_csv) {
		g_string_append(g, "&properties=");
		append_csv(g, props_csv);
	}
	if (after && *after) {
		g_string_append(g, "&after=");
		append_escaped(g, after);
	}
	if (archived)
		g_string_append(g, "&archived=true");
	return request_path(c, call, "GET", g, NULL, out);
}

static json_object *string_array(const char *const *v, size_t n)
{
	json_object *a = json_object_new_array_ext((int)n);

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i] ? v[i] : ""));
	return a;
}

/* A batch's "inputs": [{"id": ids[i]}, …], with "after": afters[i] where
 * afters is given and afters[i] is not empty. */
static json_object *id_inputs(const char *const *ids, const char *const *afters, size_t n)
{
	json_object *inputs = json_object_new_array_ext((int)n);

	for (size_t i = 0; i < n; i++) {
		json_object *in = json_object_new_object();

		json_object_object_add(in, "id", json_object_new_string(ids[i] ? ids[i] : ""));
		if (afters && afters[i] && *afters[i])
			json_object_object_add(in, "after", json_object_new_string(afters[i]));
		json_object_array_add(inputs, in);
	}
	return inputs;
}

/* {"status":"COMPLETE","results":[]}: the answer to an empty batch, given
 * without asking. */
static int empty_batch(struct hs_call *call, json_object **out)
{
	memset(&call->err, 0, sizeof(call->err));
	call->http_status = 200;
	if (out) {
		*out = json_object_new_object();
		json_object_object_add(*out, "status", json_object_new_string("COMPLETE"));
		json_object_object_add(*out, "results", json_object_new_array());
	}
	return 0;
}

int hs_batch_read(struct hs_client *c, struct hs_call *call, const char *type,
		  const char *const *ids, size_t n, const char *const *props, size_t nprops,
		  json_object **out)
{
	json_object *body;
	int rc;

	if (!name_ok(type) || n > MAX_BATCH || (n && !ids) || (nprops && !props))
		return bad_args(call, out, "invalid batch read (type, or more than 100 ids)");
	if (n == 0)
		return empty_batch(call, out);
	body = json_object_new_object();
	json_object_object_add(body, "inputs", id_inputs(ids, NULL, n));
	json_object_object_add(body, "properties", string_array(props, nprops));
	rc = request_path(c, call, "POST", objects_path(type, "/batch/read"), body, out);
	json_object_put(body);
	return rc;
}

int hs_search(struct hs_client *c, struct hs_call *call, const char *type,
	      json_object *request, json_object **out)
{
	if (!name_ok(type) || !request)
		return bad_args(call, out, "invalid search (type or request)");
	return request_path(c, call, "POST", objects_path(type, "/search"), request, out);
}

static int get_typed(struct hs_client *c, struct hs_call *call, const char *prefix,
		     const char *type, json_object **out)
{
	GString *g;

	if (!name_ok(type))
		return bad_args(call, out, "invalid object type");
	g = g_string_new(prefix);
	append_escaped(g, type);
	return request_path(c, call, "GET", g, NULL, out);
}

int hs_properties(struct hs_client *c, struct hs_call *call, const char *type, json_object **out)
{
	return get_typed(c, call, "/crm/v3/properties/", type, out);
}

int hs_pipelines(struct hs_client *c, struct hs_call *call, const char *type, json_object **out)
{
	return get_typed(c, call, "/crm/v3/pipelines/", type, out);
}

int hs_owners_page(struct hs_client *c, struct hs_call *call, const char *after, json_object **out)
{
	GString *g = g_string_new("/crm/v3/owners?limit=100");

	if (after && *after) {
		g_string_append(g, "&after=");
		append_escaped(g, after);
	}
	return request_path(c, call, "GET", g, NULL, out);
}

int hs_account_info(struct hs_client *c, struct hs_call *call, json_object **out)
{
	return request_path(c, call, "GET", g_string_new("/account-info/v3/details"), NULL, out);
}

static GString *assoc_path(const char *from, const char *to, const char *verb)
{
	GString *g = g_string_new("/crm/v4/associations/");

	append_escaped(g, from);
	g_string_append_c(g, '/');
	append_escaped(g, to);
	g_string_append(g, "/batch/");
	g_string_append(g, verb); /* from a fixed list, may contain '/' */
	return g;
}

int hs_assoc_batch_read(struct hs_client *c, struct hs_call *call, const char *from,
			const char *to, const char *const *ids, const char *const *afters,
			size_t n, json_object **out)
{
	json_object *body;
	int rc;

	if (!name_ok(from) || !name_ok(to) || n > MAX_ASSOC_BATCH_READ || (n && !ids))
		return bad_args(call, out, "invalid association batch read (types, or more than 1000 ids)");
	if (n == 0)
		return empty_batch(call, out);
	body = json_object_new_object();
	json_object_object_add(body, "inputs", id_inputs(ids, afters, n));
	rc = request_path(c, call, "POST", assoc_path(from, to, "read"), body, out);
	json_object_put(body);
	return rc;
}

int hs_assoc_labels(struct hs_client *c, struct hs_call *call, const char *from, const char *to,
		    json_object **out)
{
	GString *g = g_string_new("/crm/v4/associations/");

	if (!name_ok(from) || !name_ok(to)) {
		g_string_free(g, TRUE);
		return bad_args(call, out, "invalid association labels read (types)");
	}
	append_escaped(g, from);
	g_string_append_c(g, '/');
	append_escaped(g, to);
	g_string_append(g, "/labels");
	return request_path(c, call, "GET", g, NULL, out);
}

/* {"inputs": inputs}, sharing (not consuming) the caller's array. */
static json_object *inputs_body(json_object *inputs)
{
	json_object *body = json_object_new_object();

	json_object_object_add(body, "inputs", json_object_get(inputs));
	return body;
}

static bool verb_in(const char *verb, const char *const *list)
{
	for (; verb && *list; list++)
		if (strcmp(verb, *list) == 0)
			return true;
	return false;
}

int hs_batch_write(struct hs_client *c, struct hs_call *call, const char *type,
		   const char *verb, json_object *inputs, json_object **out)
{
	static const char *const verbs[] = { "update", "create", "upsert", "archive", NULL };
	json_object *body;
	GString *g;
	int rc;

	if (!name_ok(type) || !verb_in(verb, verbs) || !json_object_is_type(inputs, json_type_array) ||
	    json_object_array_length(inputs) > MAX_BATCH)
		return bad_args(call, out, "invalid batch write (type, verb, or inputs not an array of <= 100)");
	if (json_object_array_length(inputs) == 0)
		return empty_batch(call, out);
	body = inputs_body(inputs);
	g = objects_path(type, "/batch/");
	g_string_append(g, verb);
	rc = request_path(c, call, "POST", g, body, out);
	json_object_put(body);
	return rc;
}

int hs_assoc_batch_write(struct hs_client *c, struct hs_call *call, const char *from,
			 const char *to, const char *verb, json_object *inputs, json_object **out)
{
	static const char *const verbs[] = { "create", "archive", "associate/default", "labels/archive",
					     NULL };
	json_object *body;
	int rc;

	if (!name_ok(from) || !name_ok(to) || !verb_in(verb, verbs) ||
	    !json_object_is_type(inputs, json_type_array))
		return bad_args(call, out, "invalid association batch write (types, verb or inputs)");
	if (json_object_array_length(inputs) == 0)
		return empty_batch(call, out);
	body = inputs_body(inputs);
	rc = request_path(c, call, "POST", assoc_path(from, to, verb), body, out);
	json_object_put(body);
	return rc;
}
