/* search_req.c - see search_req.h. */
#include "cache/model/search_req.h"

json_object *search_req_new(void)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "filterGroups", json_object_new_array());
	return req;
}

void search_req_page(json_object *req, int limit, const char *after)
{
	json_object_object_add(req, "limit", json_object_new_int(limit));
	if (after)
		json_object_object_add(req, "after", json_object_new_string(after));
}

/* req[key] as an array, made on first use. */
static json_object *array_of(json_object *req, const char *key)
{
	json_object *a;

	if (!json_object_object_get_ex(req, key, &a)) {
		a = json_object_new_array();
		json_object_object_add(req, key, a);
	}
	return a;
}

json_object *search_req_group(json_object *req)
{
	json_object *g = json_object_new_object(), *filters = json_object_new_array();

	json_object_object_add(g, "filters", filters);
	json_object_array_add(array_of(req, "filterGroups"), g);
	return filters;
}

void search_req_filter(json_object *filters, const char *prop, const char *op, const char *value)
{
	json_object *f = json_object_new_object();

	json_object_object_add(f, "propertyName", json_object_new_string(prop));
	json_object_object_add(f, "operator", json_object_new_string(op));
	if (value)
		json_object_object_add(f, "value", json_object_new_string(value));
	json_object_array_add(filters, f);
}

void search_req_sort(json_object *req, const char *prop, bool ascending)
{
	json_object *s = json_object_new_object();

	json_object_object_add(s, "propertyName", json_object_new_string(prop));
	json_object_object_add(s, "direction",
			       json_object_new_string(ascending ? "ASCENDING" : "DESCENDING"));
	json_object_array_add(array_of(req, "sorts"), s);
}

void search_req_props(json_object *req, const char *const *props, size_t n)
{
	json_object *a = array_of(req, "properties");

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(props[i]));
}

void search_req_text(json_object *req, const char *text)
{
	json_object_object_add(req, "query", json_object_new_string(text));
}
