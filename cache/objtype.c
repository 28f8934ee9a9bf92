#include "cache/objtype.h"

#include <string.h>

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

static const struct {
	const char *name, *id, *lastmod;
	const char *const *props;
} types[OT_COUNT] = {
	[OT_CONTACTS] = { "contacts", "0-1", "lastmodifieddate", contacts_props },
	[OT_COMPANIES] = { "companies", "0-2", "hs_lastmodifieddate", companies_props },
	[OT_DEALS] = { "deals", "0-3", "hs_lastmodifieddate", deals_props },
	[OT_TICKETS] = { "tickets", "0-5", "hs_lastmodifieddate", tickets_props },
};

const char *objtype_name(int t)
{
	return t >= 0 && t < OT_COUNT ? types[t].name : NULL;
}

const char *objtype_id(int t)
{
	return t >= 0 && t < OT_COUNT ? types[t].id : NULL;
}

const char *objtype_lastmod_prop(int t)
{
	return t >= 0 && t < OT_COUNT ? types[t].lastmod : NULL;
}

const char *const *objtype_default_props(int t)
{
	return t >= 0 && t < OT_COUNT ? types[t].props : NULL;
}

int objtype_from_name(const char *name, size_t len)
{
	for (int t = 0; t < OT_COUNT; t++)
		if (strlen(types[t].name) == len && memcmp(types[t].name, name, len) == 0)
			return t;
	return -1;
}
