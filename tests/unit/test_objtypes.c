/* test_objtypes.c - the object type registry (cache/model/objtypes.h): the
 * core four exactly as hubfs has always had them, the standard table, custom
 * object schemas, object-library enablement, -o types=, the 64-type cap,
 * lookups, and HUBSPOT_DEFINED association type ids. No network. */
#include <errno.h>

#include <glib.h>
#include <json-c/json.h>

#include "cache/model/objtypes.h"
#include "cache/model/objtypes_int.h"
#include "tests/unit/test.h"

#define NSTD 32 /* standard types in the table */

static const char enable_all[] = "{\"enablementByObjectTypeId\": {\"0-162\": true, "
				 "\"0-410\": true, \"0-420\": true, \"0-421\": true}}";

static json_object *J(const char *s)
{
	json_object *o = json_tokener_parse(s);

	if (!o)
		FAIL("test JSON does not parse: %s", s);
	return o;
}

static void assert_list(const char *what, const char *const *got, const char *const *want)
{
	size_t i;

	if (!got)
		FAIL("%s: NULL list", what);
	for (i = 0; want[i]; i++) {
		if (!got[i])
			FAIL("%s: ends at %zu, want \"%s\" there", what, i, want[i]);
		if (strcmp(got[i], want[i]) != 0)
			FAIL("%s[%zu]: \"%s\", want \"%s\"", what, i, got[i], want[i]);
	}
	if (got[i])
		FAIL("%s: extra \"%s\" at %zu", what, got[i], i);
}

static bool has(const char *const *l, const char *s)
{
	for (; l && *l; l++)
		if (strcmp(*l, s) == 0)
			return true;
	return false;
}

/* Build with `types` from the JSON texts (NULL: not given); rc expected. */
static struct objtypes *build(const char *types, const char *schemas, const char *enablement,
			      int want_rc, const char **why)
{
	struct objtypes_opts o = { .types = types };
	json_object *s = schemas ? J(schemas) : NULL, *e = enablement ? J(enablement) : NULL;
	struct objtypes *r = (struct objtypes *)1;
	const char *w = "unset";
	int rc = objtypes_new(&o, s, e, &r, &w);

	if (rc != want_rc)
		FAIL("objtypes_new(types=%s): %d, want %d (why: %s)", types ? types : "(null)", rc,
		     want_rc, w ? w : "(null)");
	if (rc == 0 && !r)
		FAIL("rc 0 without a registry");
	if (rc != 0 && r)
		FAIL("rc %d with a registry", rc);
	if (rc != 0 && (!w || !*w))
		FAIL("rc %d without a reason", rc);
	if (why)
		*why = w;
	json_object_put(s);
	json_object_put(e);
	return r;
}

static const struct objtype *L(const struct objtypes *r, const char *name)
{
	const struct objtype *t = objtypes_lookup(r, name);

	if (!t)
		FAIL("no type %s", name);
	return t;
}

static int assoc_id(const struct objtypes *r, const char *from, const char *to)
{
	return objtypes_assoc_type_id(r, L(r, from), L(r, to));
}

/* ---------------------------------------------------------------- the core four */

/* The lists of cache/objtype.c, cache/model/query.c (text_*), cache/writeback_create.c
 * (identity_props) and cache/model/edit.c (required_on_create, pipe_props) before
 * the registry, verbatim. */
static void test_core_facts(void)
{
	static const char *const contacts_props[] = {
		"email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage",
		"hs_lead_status", "hubspot_owner_id", "createdate", "lastmodifieddate", NULL
	};
	static const char *const companies_props[] = {
		"name", "domain", "industry", "city", "country", "phone", "numberofemployees",
		"annualrevenue", "lifecyclestage", "hubspot_owner_id", "createdate",
		"hs_lastmodifieddate", NULL
	};
	static const char *const deals_props[] = {
		"dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
		"createdate", "hs_lastmodifieddate", NULL
	};
	static const char *const tickets_props[] = {
		"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
		"hubspot_owner_id", "createdate", "hs_lastmodifieddate", NULL
	};
	static const char *const text_contacts[] = {
		"firstname", "lastname", "email", "phone", "hs_additional_emails", "fax", "mobilephone",
		"company", "hs_marketable_until_renewal", NULL
	};
	static const char *const text_companies[] = { "website", "phone", "name", "domain", NULL };
	static const char *const text_deals[] = {
		"dealname", "pipeline", "dealstage", "description", "dealtype", NULL
	};
	static const char *const text_tickets[] = {
		"subject", "content", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_id", NULL
	};
	static const char *const id_contacts[] = { "email", "firstname", "lastname", NULL };
	static const char *const id_companies[] = { "name", "domain", NULL };
	static const char *const id_deals[] = { "dealname", "pipeline", "dealstage", NULL };
	static const char *const id_tickets[] = { "subject", "hs_pipeline", "hs_pipeline_stage", NULL };
	static const char *const req_deals[] = { "dealname", "dealstage", NULL };
	static const char *const req_tickets[] = { "subject", "hs_pipeline_stage", NULL };
	static const char *const none[] = { NULL };
	static const struct {
		const char *name, *id, *singular, *lastmod, *pipe, *stage, *defpipe, *scope;
		const char *const *props, *const *text, *const *ident, *const *req;
		unsigned flags;
	} want[4] = {
		{ "contacts", "0-1", "contact", "lastmodifieddate", NULL, NULL, NULL,
		  "crm.objects.contacts.read", contacts_props, text_contacts, id_contacts, none,
		  OTF_CORE | OTF_UPSERT_EMAIL | OTF_LIFECYCLE },
		{ "companies", "0-2", "company", "hs_lastmodifieddate", NULL, NULL, NULL,
		  "crm.objects.companies.read", companies_props, text_companies, id_companies, none,
		  OTF_CORE | OTF_LIFECYCLE },
		{ "deals", "0-3", "deal", "hs_lastmodifieddate", "pipeline", "dealstage", "default",
		  "crm.objects.deals.read", deals_props, text_deals, id_deals, req_deals, OTF_CORE },
		{ "tickets", "0-5", "ticket", "hs_lastmodifieddate", "hs_pipeline", "hs_pipeline_stage",
		  "0", "tickets", tickets_props, text_tickets, id_tickets, req_tickets, OTF_CORE },
	};
	struct objtypes *core = objtypes_new_core();
	struct objtypes *all = build(NULL, NULL, enable_all, 0, NULL);

	ASSERT_EQ(objtypes_count(core), 4);
	for (unsigned i = 0; i < 4; i++) {
		const struct objtype *regs[] = { objtypes_at(core, i), objtypes_at(all, i),
						 objtypes_standard_at(i) };

		for (size_t k = 0; k < 3; k++) {
			const struct objtype *t = regs[k];

			ASSERT(t != NULL);
			if (k < 2)
				ASSERT_EQ(t->idx, i);
			ASSERT_STR(t->name, want[i].name);
			ASSERT_STR(t->id, want[i].id);
			ASSERT_STR(t->singular, want[i].singular);
			ASSERT_STR(t->lastmod, want[i].lastmod);
			ASSERT_STR(t->createdate, "createdate");
			ASSERT_STR(t->read_scope, want[i].scope);
			ASSERT_EQ(t->flags, want[i].flags);
			assert_list(t->name, t->default_props, want[i].props);
			assert_list(t->name, t->text_props, want[i].text);
			assert_list(t->name, t->identity_props, want[i].ident);
			assert_list(t->name, t->required, want[i].req);
			if (want[i].pipe) {
				ASSERT_STR(t->pipeline_prop, want[i].pipe);
				ASSERT_STR(t->stage_prop, want[i].stage);
				ASSERT_STR(t->default_pipeline, want[i].defpipe);
			} else {
				ASSERT(!t->pipeline_prop && !t->stage_prop && !t->default_pipeline);
			}
		}
	}
	ASSERT(objtypes_at(core, 4) == NULL);
	objtypes_free(core);
	objtypes_free(all);
}

/* ---------------------------------------------------------------- the standard table */

static void test_standard_table(void)
{
	const char *why = "unset";
	struct objtypes *r = build(NULL, NULL, enable_all, 0, &why);
	GHashTable *names = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTable *ids = g_hash_table_new(g_str_hash, g_str_equal);

	ASSERT(why == NULL);
	ASSERT_EQ(objtypes_count(r), NSTD);
	ASSERT(objtypes_standard_at(NSTD - 1) != NULL);
	ASSERT(objtypes_standard_at(NSTD) == NULL);
	for (unsigned i = 0; i < NSTD; i++) {
		const struct objtype *t = objtypes_at(r, i), *s = objtypes_standard_at(i);

		ASSERT_EQ(t->idx, i);
		ASSERT_STR(t->id, s->id);
		ASSERT(g_hash_table_add(names, (gpointer)t->name));
		ASSERT(g_hash_table_add(ids, (gpointer)t->id));
		ASSERT(strncmp(t->id, "0-", 2) == 0);
		/* URLs: the API name, but for the object library (specified on the id) */
		ASSERT_STR(t->path, (t->flags & OTF_OBJECT_LIBRARY) ? t->id : t->name);
		ASSERT(t->singular && t->label && t->read_scope);
		ASSERT(!(t->flags & OTF_CUSTOM));
		ASSERT_STR(t->lastmod, i == 0 ? "lastmodifieddate" : "hs_lastmodifieddate");
		ASSERT(strcmp(t->createdate, "createdate") == 0 ||
		       strcmp(t->createdate, "hs_createdate") == 0);
		ASSERT(t->default_props && t->text_props && t->identity_props && t->required);
		/* what a record file shows carries what it needs */
		if (!has(t->default_props, t->lastmod) || !has(t->default_props, t->createdate))
			FAIL("%s: timestamps not shown", t->name);
		if (t->display && !has(t->default_props, t->display))
			FAIL("%s: display %s not shown", t->name, t->display);
		for (const char *const *p = t->required; *p; p++)
			if (!has(t->default_props, *p))
				FAIL("%s: required %s not shown", t->name, *p);
		if (t->pipeline_prop && (!has(t->default_props, t->pipeline_prop) ||
					 !has(t->default_props, t->stage_prop)))
			FAIL("%s: pipeline not shown", t->name);
		if ((t->flags & OTF_ENGAGEMENT) && !has(t->required, "hs_timestamp"))
			FAIL("%s: an activity without hs_timestamp", t->name);
		if ((t->flags & OTF_READONLY) && (t->required[0] || t->identity_props[0]))
			FAIL("%s: read-only with create facts", t->name);
	}
	/* the documented facts of the standard types (ids, timestamps, required
	 * properties) that the code branches on */
	ASSERT_STR(L(r, "notes")->id, "0-46");
	ASSERT_STR(L(r, "line_items")->id, "0-8");
	ASSERT_STR(L(r, "goal_targets")->id, "0-74");
	ASSERT_STR(L(r, "commerce_payments")->id, "0-101");
	ASSERT_STR(L(r, "postal_mail")->id, "0-116");
	ASSERT_STR(L(r, "projects")->id, "0-970");
	ASSERT_STR(L(r, "services")->id, "0-162");
	ASSERT_STR(L(r, "courses")->id, "0-410");
	ASSERT_STR(L(r, "listings")->id, "0-420");
	ASSERT_STR(L(r, "appointments")->id, "0-421");
	ASSERT_STR(L(r, "invoices")->id, "0-53");
	ASSERT_EQ(L(r, "emails")->flags, OTF_ENGAGEMENT | OTF_HARD_DELETE);
	ASSERT_EQ(L(r, "quotes")->flags, OTF_CASCADE_DELETE);
	ASSERT_EQ(L(r, "products")->flags, OTF_NO_ASSOC);
	ASSERT_EQ(L(r, "users")->flags, OTF_NO_ASSOC);
	ASSERT_EQ(L(r, "feedback_submissions")->flags, OTF_READONLY | OTF_NO_DELETE);
	ASSERT_EQ(L(r, "leads")->flags, OTF_NEEDS_CONTACT);
	for (const char *const *n = (const char *const[]){ "calls", "emails", "meetings", "notes",
							   "tasks", "communications",
							   "postal_mail", NULL }; *n; n++)
		ASSERT(L(r, *n)->flags & OTF_ENGAGEMENT);
	for (const char *const *n = (const char *const[]){ "services", "courses", "listings",
							   "appointments", NULL }; *n; n++) {
		ASSERT(L(r, *n)->flags & OTF_OBJECT_LIBRARY);
		ASSERT_STR(L(r, *n)->pipeline_prop, "hs_pipeline");
	}
	for (const char *const *n = (const char *const[]){ "orders", "leads", "projects", NULL };
	     *n; n++) {
		ASSERT_STR(L(r, *n)->pipeline_prop, "hs_pipeline");
		ASSERT_STR(L(r, *n)->stage_prop, "hs_pipeline_stage");
		ASSERT(L(r, *n)->default_pipeline == NULL);
	}
	ASSERT(L(r, "notes")->pipeline_prop == NULL);
	ASSERT_STR(L(r, "quotes")->createdate, "hs_createdate");
	ASSERT_STR(L(r, "products")->createdate, "createdate");
	ASSERT_STR(L(r, "notes")->display, "hs_body_preview");
	ASSERT_STR(L(r, "calls")->display, "hs_call_title");
	ASSERT(L(r, "commerce_payments")->display == NULL);
	assert_list("notes text", L(r, "notes")->text_props, (const char *const[]){ "hs_note_body", NULL });
	assert_list("calls text", L(r, "calls")->text_props,
		    (const char *const[]){ "hs_call_title", "hs_body_preview", NULL });
	assert_list("emails req", L(r, "emails")->required,
		    (const char *const[]){ "hs_timestamp", "hs_email_direction", NULL });
	assert_list("quotes req", L(r, "quotes")->required,
		    (const char *const[]){ "hs_title", "hs_expiration_date", NULL });
	assert_list("projects req", L(r, "projects")->required,
		    (const char *const[]){ "hs_name", "hs_pipeline", "hs_pipeline_stage", NULL });
	ASSERT_STR(L(r, "emails")->read_scope, "crm.objects.contacts.read sales-email-read");
	ASSERT(has(L(r, "tasks")->default_props, "hs_task_priority"));
	ASSERT(has(L(r, "line_items")->default_props, "hs_product_id"));
	g_hash_table_destroy(names);
	g_hash_table_destroy(ids);
	objtypes_free(r);
}

/* ---------------------------------------------------------------- lookups */

static void test_lookups(void)
{
	struct objtypes *r = build(NULL, NULL, enable_all, 0, NULL);
	static const struct { const char *name, *want; } alias[] = {
		{ "0-46", "notes" }, { "0-3", "deals" }, { "0-970", "projects" },
		{ "contacts", "contacts" }, { "line_items", "line_items" },
		/* singular names from HubSpot's own URLs */
		{ "line_item", "line_items" }, { "quote", "quotes" },
		{ "communication", "communications" }, { "discount", "discounts" },
		{ "COMMERCE_PAYMENT", "commerce_payments" }, { "quote_template", "quote_templates" },
		/* webhook object names */
		{ "contact", "contacts" }, { "company", "companies" }, { "deal", "deals" },
		{ "ticket", "tickets" }, { "product", "products" },
		/* v3 embed key, case */
		{ "line items", "line_items" }, { "Contacts", "contacts" }, { "NOTE", "notes" },
	};
	const struct objtype *t;

	for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++) {
		t = objtypes_lookup(r, alias[i].name);
		if (!t || strcmp(t->name, alias[i].want) != 0)
			FAIL("lookup %s: %s, want %s", alias[i].name, t ? t->name : "(none)",
			     alias[i].want);
	}
	ASSERT(objtypes_lookup(r, "object") == NULL);
	ASSERT(objtypes_lookup(r, "nope") == NULL);
	ASSERT(objtypes_lookup(r, "") == NULL);
	ASSERT(objtypes_lookup(r, NULL) == NULL);
	ASSERT(objtypes_lookup(r, "0-54") == NULL);

	/* directory names only, length-delimited, exact case */
	t = objtypes_by_name(r, "contacts/123.json", 8);
	ASSERT(t && t->idx == 0);
	ASSERT_STR(objtypes_by_name(r, "line_itemsX", 10)->name, "line_items");
	ASSERT(objtypes_by_name(r, "contacts", 7) == NULL);   /* "contact" */
	ASSERT(objtypes_by_name(r, "contact", 7) == NULL);
	ASSERT(objtypes_by_name(r, "Contacts", 8) == NULL);
	ASSERT(objtypes_by_name(r, "0-1", 3) == NULL);
	ASSERT(objtypes_by_name(r, "", 0) == NULL);

	/* objectTypeId only */
	ASSERT_STR(objtypes_by_id(r, "0-8")->name, "line_items");
	ASSERT(objtypes_by_id(r, "line_items") == NULL);
	ASSERT(objtypes_by_id(r, "0-") == NULL);
	ASSERT(objtypes_by_id(r, NULL) == NULL);

	ASSERT(objtypes_at(r, NSTD) == NULL);
	ASSERT(objtypes_at(r, 1u << 31) == NULL);
	objtypes_free(r);
	objtypes_free(NULL);
}

/* ---------------------------------------------------------------- custom objects */

/* Two custom objects as GET /crm-object-schemas/v3/schemas returns them: cars
 * (no objectTypeId: derived from id), and one called "listings", which is a
 * standard directory name even when the object library does not enable
 * listings, so it gets its fullyQualifiedName; plus an archived schema. */
static const char schemas_json[] =
	"{\"results\": ["
	"{\"id\": \"3465404\", \"fullyQualifiedName\": \"p1234_cars\", \"name\": \"cars\","
	" \"labels\": {\"singular\": \"Car\", \"plural\": \"Cars\"},"
	" \"primaryDisplayProperty\": \"model\", \"secondaryDisplayProperties\": [\"make\"],"
	" \"requiredProperties\": [\"year\", \"make\", \"VIN\", \"model\"],"
	" \"searchableProperties\": [\"year\", \"make\", \"VIN\", \"model\"],"
	" \"properties\": ["
	"  {\"name\": \"model\", \"label\": \"Model\", \"type\": \"string\", \"fieldType\": \"text\","
	"   \"groupName\": \"cars_information\", \"displayOrder\": -1, \"hasUniqueValue\": false,"
	"   \"archived\": false},"
	"  {\"name\": \"make\", \"label\": \"Make\", \"type\": \"string\", \"fieldType\": \"text\"},"
	"  {\"name\": \"VIN\", \"label\": \"VIN\", \"type\": \"string\", \"fieldType\": \"text\","
	"   \"hasUniqueValue\": true},"
	"  {\"name\": \"year\", \"label\": \"Year\", \"type\": \"number\", \"fieldType\": \"number\"}],"
	" \"associations\": ["
	"  {\"id\": \"75\", \"fromObjectTypeId\": \"2-3465404\", \"toObjectTypeId\": \"0-1\","
	"   \"name\": \"cars_to_contact\", \"createdAt\": \"2024-01-01T00:00:00Z\"},"
	"  {\"id\": \"76\", \"fromObjectTypeId\": \"0-1\", \"toObjectTypeId\": \"2-3465404\","
	"   \"name\": \"contact_to_cars\"},"
	"  {\"id\": 120, \"fromObjectTypeId\": \"2-3465404\", \"toObjectTypeId\": \"2-7777\","
	"   \"name\": \"cars_to_listings\"},"
	"  {\"id\": \"90\", \"fromObjectTypeId\": \"2-3465404\", \"toObjectTypeId\": \"0-7\","
	"   \"name\": \"cars_to_product\"},"
	"  {\"id\": \"91\", \"fromObjectTypeId\": \"2-3465404\", \"toObjectTypeId\": \"2-999\","
	"   \"name\": \"cars_to_gone\"}],"
	" \"metaType\": \"PORTAL_SPECIFIC\", \"archived\": false,"
	" \"createdAt\": \"2024-01-01T00:00:00Z\", \"updatedAt\": \"2024-01-02T00:00:00Z\"},"
	"{\"id\": \"7777\", \"objectTypeId\": \"2-7777\", \"fullyQualifiedName\": \"p1234_listings\","
	" \"name\": \"listings\", \"labels\": {\"singular\": \"Listing\", \"plural\": \"Our listings\"},"
	" \"requiredProperties\": [\"address\"], \"searchableProperties\": [],"
	" \"properties\": [{\"name\": \"address\", \"type\": \"string\"},"
	"  {\"name\": \"hs_pipeline\", \"type\": \"enumeration\"},"
	"  {\"name\": \"hs_pipeline_stage\", \"type\": \"enumeration\"}],"
	" \"associations\": [{\"id\": \"121\", \"fromObjectTypeId\": \"2-7777\","
	"   \"toObjectTypeId\": \"2-3465404\", \"name\": \"listings_to_cars\"}]},"
	"{\"id\": \"5555\", \"objectTypeId\": \"2-5555\", \"name\": \"old\", \"labels\": {},"
	" \"requiredProperties\": [], \"properties\": [], \"associations\": [], \"archived\": true}"
	"]}";

static const char enable_some[] = "{\"enablementByObjectTypeId\": {\"0-420\": false, "
				  "\"0-421\": true, \"0-162\": true, \"0-410\": false}}";

static void test_custom_objects(void)
{
	const char *why = "unset";
	struct objtypes *r = build(NULL, schemas_json, enable_some, 0, &why);
	const struct objtype *cars, *lst, *t;
	unsigned idx[OBJTYPES_MAX];
	size_t n;

	ASSERT(why == NULL);
	/* 32 standard, minus courses and listings, plus 2 custom */
	ASSERT_EQ(objtypes_count(r), NSTD - 2 + 2);
	ASSERT(objtypes_by_id(r, "0-420") == NULL && objtypes_by_id(r, "0-410") == NULL);
	ASSERT(objtypes_by_id(r, "0-421") && objtypes_by_id(r, "0-162"));
	ASSERT(objtypes_by_id(r, "2-5555") == NULL);
	ASSERT(objtypes_lookup(r, "old") == NULL);

	cars = objtypes_by_id(r, "2-3465404");
	ASSERT(cars != NULL);
	ASSERT_EQ(cars->idx, NSTD - 2);
	ASSERT_STR(cars->name, "cars");
	ASSERT_STR(cars->path, "2-3465404");
	ASSERT_STR(cars->singular, "object");
	ASSERT_STR(cars->label, "Cars");
	ASSERT_STR(cars->lastmod, "hs_lastmodifieddate");
	ASSERT_STR(cars->createdate, "hs_createdate");
	ASSERT_STR(cars->display, "model");
	ASSERT_STR(cars->read_scope, "crm.objects.custom.read");
	ASSERT_EQ(cars->flags, OTF_CUSTOM);
	assert_list("cars defaults", cars->default_props, (const char *const[]){ NULL });
	assert_list("cars text", cars->text_props,
		    (const char *const[]){ "year", "make", "VIN", "model", NULL });
	assert_list("cars required", cars->required,
		    (const char *const[]){ "year", "make", "VIN", "model", NULL });
	/* display first, then the required string properties (year is a number) */
	assert_list("cars identity", cars->identity_props,
		    (const char *const[]){ "model", "make", "VIN", NULL });
	ASSERT(cars->pipeline_prop == NULL && cars->stage_prop == NULL);

	lst = objtypes_by_id(r, "2-7777");
	ASSERT(lst != NULL);
	ASSERT_EQ(lst->idx, NSTD - 1);
	ASSERT_STR(lst->name, "p1234_listings");
	ASSERT_STR(lst->label, "Our listings");
	ASSERT(lst->display == NULL);
	assert_list("listings text", lst->text_props, (const char *const[]){ NULL });
	assert_list("listings identity", lst->identity_props,
		    (const char *const[]){ "address", NULL });
	ASSERT_STR(lst->pipeline_prop, "hs_pipeline");
	ASSERT_STR(lst->stage_prop, "hs_pipeline_stage");
	ASSERT(lst->default_pipeline == NULL);

	/* names */
	ASSERT(objtypes_by_name(r, "cars", 4) == cars);
	ASSERT(objtypes_by_name(r, "p1234_listings", 14) == lst);
	ASSERT(objtypes_by_name(r, "listings", 8) == NULL);
	ASSERT(objtypes_lookup(r, "p1234_cars") == cars);
	ASSERT(objtypes_lookup(r, "P1234_CARS") == cars);
	ASSERT(objtypes_lookup(r, "2-3465404") == cars);
	ASSERT(objtypes_lookup(r, "p1234_listings") == lst);
	ASSERT(objtypes_lookup(r, "object") == NULL);

	/* associations: the schema's ids, the reverse direction associable */
	ASSERT_EQ(assoc_id(r, "cars", "contacts"), 75);
	ASSERT_EQ(assoc_id(r, "contacts", "cars"), 76);
	ASSERT_EQ(assoc_id(r, "cars", "p1234_listings"), 120);
	ASSERT_EQ(assoc_id(r, "p1234_listings", "cars"), 121);
	ASSERT(objtypes_associable(r, cars, L(r, "notes")));
	ASSERT(objtypes_associable(r, L(r, "notes"), cars));
	ASSERT_EQ(assoc_id(r, "cars", "notes"), 0);
	ASSERT(!objtypes_associable(r, cars, L(r, "deals")));
	ASSERT(!objtypes_associable(r, cars, L(r, "products")));
	ASSERT(!objtypes_associable(r, L(r, "products"), cars));
	ASSERT(!objtypes_associable(r, cars, cars));
	ASSERT(!objtypes_associable(r, lst, L(r, "contacts")));
	/* only the schema's list plus the five activities, in idx order */
	n = objtypes_assoc_targets(r, cars, idx, OBJTYPES_MAX);
	ASSERT_EQ(n, 7);
	{
		const char *want[] = { "contacts", "tasks", "notes", "meetings", "calls", "emails",
				       "p1234_listings" };

		for (size_t i = 0; i < n; i++)
			ASSERT_STR(objtypes_at(r, idx[i])->name, want[i]);
	}
	ASSERT_EQ(objtypes_assoc_targets(r, cars, idx, 2), 7);   /* counts past max */
	ASSERT_EQ(objtypes_assoc_targets(r, cars, NULL, 0), 7);
	t = objtypes_standard_at(0);   /* not this registry's */
	ASSERT(!objtypes_associable(r, t, cars));
	ASSERT_EQ(objtypes_assoc_targets(r, t, NULL, 0), 0);
	objtypes_free(r);

	/* without enablement, no object-library type; the custom "listings" keeps
	 * its fullyQualifiedName all the same */
	r = build(NULL, schemas_json, NULL, 0, NULL);
	ASSERT_EQ(objtypes_count(r), NSTD - 4 + 2);
	ASSERT(objtypes_by_id(r, "0-421") == NULL && objtypes_by_id(r, "0-162") == NULL);
	ASSERT_STR(objtypes_by_id(r, "2-7777")->name, "p1234_listings");
	ASSERT(objtypes_lookup(r, "listings") == NULL);
	objtypes_free(r);

	/* a name only the custom object has as its directory wins over a
	 * standard type's singular name; a reserved root name takes the
	 * fullyQualifiedName */
	r = build(NULL, "{\"results\": [{\"id\": \"1\", \"name\": \"note\", \"labels\": {},"
		  " \"requiredProperties\": [], \"properties\": [], \"associations\": []},"
		  "{\"id\": \"2\", \"name\": \"search\", \"fullyQualifiedName\": \"p9_search\","
		  " \"requiredProperties\": [], \"properties\": [], \"associations\": []}]}",
		  NULL, 0, NULL);
	ASSERT_STR(objtypes_lookup(r, "note")->id, "2-1");
	ASSERT_STR(objtypes_lookup(r, "NOTE")->id, "0-46");
	ASSERT_STR(objtypes_by_id(r, "2-2")->name, "p9_search");
	ASSERT_STR(objtypes_by_id(r, "2-1")->label, "note");
	objtypes_free(r);
}

static void test_malformed_schemas(void)
{
	static const struct { const char *json, *reason; } bad[] = {
		{ "[]", "results" },
		{ "{}", "results" },
		{ "{\"results\": {}}", "results" },
		{ "{\"results\": [\"cars\"]}", "results[0]" },
		{ "{\"results\": [{\"id\": \"1\"}]}", "name" },
		{ "{\"results\": [{\"id\": \"1\", \"name\": 7}]}", "name" },
		{ "{\"results\": [{\"id\": \"1\", \"name\": \"../etc\"}]}", "name" },
		{ "{\"results\": [{\"id\": \"1\", \"name\": \"a/b\"}]}", "name" },
		{ "{\"results\": [{\"id\": \"1\", \"name\": \"\"}]}", "name" },
		{ "{\"results\": [{\"id\": \"1\", \"name\": \"_x\"}]}", "name" },
		{ "{\"results\": [{\"name\": \"cars\"}]}", "objectTypeId" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"x\"}]}", "objectTypeId" },
		{ "{\"results\": [{\"name\": \"cars\", \"objectTypeId\": \"abc\"}]}", "objectTypeId" },
		{ "{\"results\": [{\"name\": \"cars\", \"objectTypeId\": \"2-1/..\"}]}", "objectTypeId" },
		{ "{\"results\": [{\"name\": \"cars\", \"objectTypeId\": 5}]}", "objectTypeId" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"fullyQualifiedName\": 3}]}",
		  "fullyQualifiedName" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"requiredProperties\": \"year\"}]}",
		  "requiredProperties" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"requiredProperties\": [1]}]}",
		  "requiredProperties" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"searchableProperties\": [\"\"]}]}",
		  "searchableProperties" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"properties\": {}}]}", "properties" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"properties\": [{\"label\": \"x\"}]}]}",
		  "properties" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"associations\": {}}]}",
		  "associations" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"associations\": "
		  "[{\"id\": \"75\", \"fromObjectTypeId\": \"2-1\"}]}]}", "associations" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"associations\": "
		  "[{\"id\": \"x\", \"fromObjectTypeId\": \"2-1\", \"toObjectTypeId\": \"0-1\"}]}]}",
		  "associations" },
		{ "{\"results\": [{\"name\": \"cars\", \"id\": \"1\", \"associations\": "
		  "[{\"id\": 0, \"fromObjectTypeId\": \"2-1\", \"toObjectTypeId\": \"0-1\"}]}]}",
		  "associations" },
		/* a standard name without a fullyQualifiedName to fall back on */
		{ "{\"results\": [{\"name\": \"notes\", \"id\": \"1\"}]}", "fullyQualifiedName" },
		{ "{\"results\": [{\"name\": \"notes\", \"id\": \"1\", \"fullyQualifiedName\": "
		  "\"p1_notes\\\"\"}]}", "fullyQualifiedName" },
		/* the same objectTypeId twice, or a standard one */
		{ "{\"results\": [{\"name\": \"a\", \"id\": \"1\"}, {\"name\": \"b\", \"id\": \"1\"}]}",
		  "2-1" },
		{ "{\"results\": [{\"name\": \"a\", \"objectTypeId\": \"0-1\"}]}", "0-1" },
		/* the same directory twice */
		{ "{\"results\": [{\"name\": \"a\", \"id\": \"1\"}, {\"name\": \"a\", \"id\": \"2\","
		  " \"fullyQualifiedName\": \"a\"}]}", "taken" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct objtypes_opts o = { 0 };
		json_object *s = J(bad[i].json);
		struct objtypes *r = (struct objtypes *)1;
		const char *why = NULL;
		int rc = objtypes_new(&o, s, NULL, &r, &why);

		if (rc != -EINVAL || r != NULL)
			FAIL("%s: rc %d, want -EINVAL", bad[i].json, rc);
		if (!why || !strstr(why, bad[i].reason))
			FAIL("%s: reason \"%s\" does not say %s", bad[i].json, why ? why : "(null)",
			     bad[i].reason);
		json_object_put(s);
	}
	/* an empty schema list is fine; a schema with only name and id too */
	objtypes_free(build(NULL, "{\"results\": []}", NULL, 0, NULL));
	{
		struct objtypes *r = build(NULL, "{\"results\": [{\"name\": \"x\", \"id\": 9}]}", NULL,
					   0, NULL);
		const struct objtype *t = objtypes_by_id(r, "2-9");

		ASSERT(t && strcmp(t->name, "x") == 0 && strcmp(t->label, "x") == 0);
		assert_list("x required", t->required, (const char *const[]){ NULL });
		assert_list("x identity", t->identity_props, (const char *const[]){ NULL });
		objtypes_free(r);
	}
}

/* ---------------------------------------------------------------- enablement, types=, cap */

static void test_enablement(void)
{
	static const struct { const char *json; size_t count; } cases[] = {
		{ NULL, NSTD - 4 },
		{ "{}", NSTD - 4 },
		{ "{\"enablementByObjectTypeId\": []}", NSTD - 4 },
		{ "{\"enablementByObjectTypeId\": {\"0-420\": \"true\", \"0-421\": 1}}", NSTD - 4 },
		{ "{\"enablementByObjectTypeId\": {\"0-420\": true}}", NSTD - 3 },
		/* a standard type outside the object library is not switched off */
		{ "{\"enablementByObjectTypeId\": {\"0-1\": false, \"0-46\": false}}", NSTD - 4 },
		{ enable_all, NSTD },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct objtypes *r = build(NULL, NULL, cases[i].json, 0, NULL);

		if (objtypes_count(r) != cases[i].count)
			FAIL("%s: %zu types, want %zu", cases[i].json ? cases[i].json : "(null)",
			     objtypes_count(r), cases[i].count);
		ASSERT(objtypes_by_id(r, "0-1") && objtypes_by_id(r, "0-46"));
		objtypes_free(r);
	}
}

static void assert_names(const struct objtypes *r, const char *const *want)
{
	size_t i;

	for (i = 0; want[i]; i++) {
		const struct objtype *t = objtypes_at(r, (unsigned)i);

		if (!t || strcmp(t->name, want[i]) != 0 || t->idx != i)
			FAIL("type %zu: %s, want %s", i, t ? t->name : "(none)", want[i]);
	}
	ASSERT_EQ(objtypes_count(r), i);
}

static void test_types_option(void)
{
	const char *why;
	struct objtypes *r;
	unsigned idx[OBJTYPES_MAX];
	size_t n;

	r = build("core", schemas_json, enable_all, 0, &why);
	ASSERT(why == NULL);
	assert_names(r, (const char *const[]){ "contacts", "companies", "deals", "tickets", NULL });
	/* associations only among what is shown */
	n = objtypes_assoc_targets(r, objtypes_at(r, 0), idx, OBJTYPES_MAX);
	ASSERT_EQ(n, 4);
	ASSERT_EQ(assoc_id(r, "contacts", "companies"), 279);
	objtypes_free(r);

	/* names, ids and aliases, spaces, in registry order whatever the option's */
	r = build(" notes, 0-3 ,line_item,,p1234_cars", schemas_json, NULL, 0, &why);
	ASSERT(why == NULL);
	assert_names(r, (const char *const[]){ "deals", "line_items", "notes", "cars", NULL });
	ASSERT_EQ(assoc_id(r, "notes", "deals"), 214);
	ASSERT_EQ(assoc_id(r, "deals", "line_items"), 19);
	ASSERT(objtypes_associable(r, L(r, "cars"), L(r, "notes")));
	ASSERT(!objtypes_associable(r, L(r, "cars"), L(r, "deals")));
	objtypes_free(r);

	r = build("core,notes,2-7777", schemas_json, NULL, 0, &why);
	ASSERT(why == NULL);
	assert_names(r, (const char *const[]){ "contacts", "companies", "deals", "tickets", "notes",
					       "p1234_listings", NULL });
	objtypes_free(r);

	/* unknown names: a warning, not a failure */
	r = build("cars,nope,deals,zz_top", schemas_json, NULL, 0, &why);
	assert_names(r, (const char *const[]){ "deals", "cars", NULL });
	ASSERT(why && strstr(why, "nope") && strstr(why, "zz_top") && !strstr(why, "cars"));
	objtypes_free(r);

	/* an object-library type that is not enabled: said so */
	r = build("listings,services", NULL, enable_some, 0, &why);
	assert_names(r, (const char *const[]){ "services", NULL });
	ASSERT(why && strstr(why, "listings") && strstr(why, "object library"));
	ASSERT(!strstr(why, "services"));
	objtypes_free(r);

	/* nothing left is allowed (the mount decides what to make of it) */
	r = build("nope", NULL, NULL, 0, &why);
	ASSERT_EQ(objtypes_count(r), 0);
	ASSERT(why && strstr(why, "nope"));
	objtypes_free(r);

	/* "all", "" and NULL: everything */
	r = build("all", schemas_json, enable_all, 0, &why);
	ASSERT_EQ(objtypes_count(r), NSTD + 2);
	objtypes_free(r);
	r = build("", schemas_json, enable_all, 0, &why);
	ASSERT_EQ(objtypes_count(r), NSTD + 2);
	objtypes_free(r);
	{
		json_object *e = J(enable_all);
		struct objtypes *q = NULL;

		ASSERT_EQ(objtypes_new(NULL, NULL, e, &q, NULL), 0);
		ASSERT_EQ(objtypes_count(q), NSTD);
		objtypes_free(q);
		json_object_put(e);
	}
}

/* n custom objects c0 … c{n-1}, each associated with contacts. */
static char *many_schemas(int n)
{
	GString *s = g_string_new("{\"results\": [");

	for (int i = 0; i < n; i++)
		g_string_append_printf(s, "%s{\"id\": \"%d\", \"name\": \"c%d\", \"labels\": {},"
				       " \"requiredProperties\": [], \"properties\": [],"
				       " \"associations\": [{\"id\": \"%d\", \"fromObjectTypeId\":"
				       " \"2-%d\", \"toObjectTypeId\": \"0-1\"}]}",
				       i ? "," : "", 1000 + i, i, 5000 + i, 1000 + i);
	g_string_append(s, "]}");
	return g_string_free(s, false);
}

static void test_cap(void)
{
	char *fits = many_schemas(OBJTYPES_MAX - NSTD), *over = many_schemas(OBJTYPES_MAX - NSTD + 1);
	const char *why;
	struct objtypes *r;

	r = build(NULL, fits, enable_all, 0, &why);
	ASSERT_EQ(objtypes_count(r), OBJTYPES_MAX);
	ASSERT_STR(objtypes_at(r, OBJTYPES_MAX - 1)->name, "c31");
	ASSERT_EQ(assoc_id(r, "c31", "contacts"), 5031);
	objtypes_free(r);

	r = build(NULL, over, enable_all, -E2BIG, &why);
	ASSERT(strstr(why, "types=") && strstr(why, "65"));
	/* without the object library it fits again; with types= too */
	r = build(NULL, over, NULL, 0, NULL);
	ASSERT_EQ(objtypes_count(r), OBJTYPES_MAX - 3);
	objtypes_free(r);
	r = build("core,c0,c32", over, enable_all, 0, &why);
	assert_names(r, (const char *const[]){ "contacts", "companies", "deals", "tickets", "c0",
					       "c32", NULL });
	objtypes_free(r);
	g_free(fits);
	g_free(over);
}

/* ---------------------------------------------------------------- associations */

static void test_association_ids(void)
{
	/* a sample of HubSpot's HUBSPOT_DEFINED default association type ids, both
	 * directions */
	static const struct { const char *from, *to; int id; } ids[] = {
		{ "contacts", "companies", 279 }, { "companies", "contacts", 280 },
		{ "contacts", "deals", 4 }, { "deals", "contacts", 3 },
		{ "contacts", "tickets", 15 }, { "tickets", "contacts", 16 },
		{ "companies", "deals", 342 }, { "deals", "companies", 341 },
		{ "companies", "tickets", 340 }, { "tickets", "companies", 339 },
		{ "deals", "tickets", 27 }, { "tickets", "deals", 28 },
		{ "contacts", "contacts", 449 }, { "companies", "companies", 450 },
		{ "deals", "deals", 451 }, { "tickets", "tickets", 452 },
		{ "deals", "line_items", 19 }, { "line_items", "deals", 20 },
		{ "deals", "quotes", 63 }, { "quotes", "deals", 64 },
		{ "quotes", "line_items", 67 }, { "line_items", "quotes", 68 },
		{ "quotes", "quote_templates", 286 }, { "quote_templates", "quotes", 0 },
		{ "line_items", "discounts", 368 }, { "discounts", "line_items", 367 },
		{ "companies", "orders", 935 }, { "orders", "companies", 934 },
		{ "orders", "line_items", 513 }, { "line_items", "orders", 514 },
		{ "invoices", "commerce_payments", 541 }, { "quotes", "invoices", 408 },
		{ "invoices", "quotes", 407 },
		{ "tickets", "commerce_payments", 1355 }, { "commerce_payments", "tickets", 1354 },
		{ "notes", "contacts", 202 }, { "contacts", "notes", 201 },
		{ "notes", "companies", 190 }, { "deals", "notes", 213 },
		{ "calls", "tickets", 220 }, { "tickets", "calls", 219 },
		{ "emails", "deals", 210 }, { "deals", "emails", 209 },
		{ "emails", "leads", 0 }, { "leads", "emails", 598 },
		{ "meetings", "calls", 400 }, { "calls", "meetings", 399 },
		{ "tasks", "quotes", 218 }, { "quotes", "tasks", 217 },
		{ "communications", "contacts", 81 }, { "contacts", "communications", 82 },
		{ "postal_mail", "companies", 459 }, { "companies", "postal_mail", 460 },
		{ "calls", "feedback_submissions", 1156 }, { "feedback_submissions", "calls", 1155 },
		{ "feedback_submissions", "companies", 928 }, { "companies", "feedback_submissions", 929 },
		{ "leads", "contacts", 608 }, { "contacts", "leads", 609 },
		{ "leads", "deals", 1037 }, { "deals", "leads", 1038 },
		{ "goal_targets", "deals", 1356 }, { "deals", "goal_targets", 1357 },
		{ "appointments", "tickets", 946 }, { "tickets", "appointments", 947 },
		{ "services", "projects", 1245 }, { "projects", "services", 0 },
		{ "services", "notes", 836 }, { "notes", "services", 837 },
		{ "listings", "emails", 894 }, { "courses", "postal_mail", 880 },
		{ "projects", "companies", 1236 }, { "companies", "projects", 1237 },
		{ "tasks", "projects", 1247 }, { "projects", "tasks", 0 },
	};
	static const char *const not_pairs[][2] = {
		{ "notes", "tasks" }, { "notes", "notes" }, { "emails", "postal_mail" },
		{ "leads", "postal_mail" }, { "goal_targets", "contacts" }, { "invoices", "carts" },
		{ "quote_templates", "deals" }, { "subscriptions", "subscriptions" },
	};
	struct objtypes *r = build(NULL, NULL, enable_all, 0, NULL);
	unsigned idx[OBJTYPES_MAX];

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int got = assoc_id(r, ids[i].from, ids[i].to);

		if (got != ids[i].id)
			FAIL("%s -> %s: %d, want %d", ids[i].from, ids[i].to, got, ids[i].id);
		if (!objtypes_associable(r, L(r, ids[i].from), L(r, ids[i].to)))
			FAIL("%s -> %s not associable", ids[i].from, ids[i].to);
	}
	for (size_t i = 0; i < sizeof(not_pairs) / sizeof(not_pairs[0]); i++)
		if (objtypes_associable(r, L(r, not_pairs[i][0]), L(r, not_pairs[i][1])) ||
		    assoc_id(r, not_pairs[i][0], not_pairs[i][1]) != 0)
			FAIL("%s -> %s associable", not_pairs[i][0], not_pairs[i][1]);

	/* products and users: nothing, either way */
	for (unsigned i = 0; i < objtypes_count(r); i++) {
		const struct objtype *t = objtypes_at(r, i);

		for (const char *const *n = (const char *const[]){ "products", "users", NULL }; *n; n++) {
			ASSERT(!objtypes_associable(r, t, L(r, *n)));
			ASSERT(!objtypes_associable(r, L(r, *n), t));
		}
		/* symmetric */
		for (unsigned j = 0; j < objtypes_count(r); j++)
			ASSERT_EQ(objtypes_associable(r, t, objtypes_at(r, j)),
				  objtypes_associable(r, objtypes_at(r, j), t));
	}
	ASSERT_EQ(objtypes_assoc_targets(r, L(r, "products"), idx, OBJTYPES_MAX), 0);
	ASSERT_EQ(objtypes_assoc_targets(r, L(r, "users"), idx, OBJTYPES_MAX), 0);
	ASSERT(!objtypes_associable(r, NULL, L(r, "contacts")));

	/* what a contact can be associated with, in idx order */
	{
		const char *want[] = { "contacts", "companies", "deals", "tickets", "quotes",
				       "communications", "feedback_submissions", "tasks", "notes",
				       "meetings", "calls", "emails", "invoices", "subscriptions",
				       "commerce_payments", "postal_mail", "orders", "leads",
				       "carts", "services", "courses", "listings", "appointments",
				       "projects" };
		size_t n = objtypes_assoc_targets(r, L(r, "contacts"), idx, OBJTYPES_MAX);

		ASSERT_EQ(n, sizeof(want) / sizeof(want[0]));
		for (size_t i = 0; i < n; i++)
			ASSERT_STR(objtypes_at(r, idx[i])->name, want[i]);
	}
	objtypes_free(r);
}

/* The table itself: each unordered pair once, no product or user, and every
 * id used for one direction of one pair only (a copied number is a typo). */
static void test_assoc_table(void)
{
	GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	bool pair[ST_COUNT][ST_COUNT] = { { false } };

	for (size_t k = 0; k < objtypes_std_assoc_count; k++) {
		const struct std_assoc *a = &objtypes_std_assoc[k];

		ASSERT(a->a < ST_COUNT && a->b < ST_COUNT);
		if (pair[a->a][a->b] || pair[a->b][a->a])
			FAIL("row %zu: %s/%s twice", k, objtypes_std[a->a].t.name,
			     objtypes_std[a->b].t.name);
		pair[a->a][a->b] = true;
		ASSERT(!(objtypes_std[a->a].t.flags & OTF_NO_ASSOC));
		ASSERT(!(objtypes_std[a->b].t.flags & OTF_NO_ASSOC));
		ASSERT(a->ab || a->ba);
		for (int d = 0; d < (a->a == a->b ? 1 : 2); d++) {
			unsigned id = d ? a->ba : a->ab;

			if (id && !g_hash_table_add(seen, GUINT_TO_POINTER(id)))
				FAIL("row %zu: id %u used twice", k, id);
		}
	}
	g_hash_table_destroy(seen);
}

int main(void)
{
	RUN(test_core_facts);
	RUN(test_standard_table);
	RUN(test_lookups);
	RUN(test_custom_objects);
	RUN(test_malformed_schemas);
	RUN(test_enablement);
	RUN(test_types_option);
	RUN(test_cap);
	RUN(test_association_ids);
	RUN(test_assoc_table);
	return 0;
}
