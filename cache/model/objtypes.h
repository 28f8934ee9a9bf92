/* objtypes.h - the registry of CRM object types a mount shows.
 *
 * Built once at mount from the table of HubSpot-defined types that the objects
 * API serves (contacts … projects) plus the account's custom object schemas
 * (GET /crm-object-schemas/v3/schemas), then frozen: every function below is a
 * pure read of immutable data, so readers take no lock.
 *
 * A type has two keys. `idx` is dense (0 .. count-1) and means something only
 * for this mount: it indexes per-type arrays and goes into inode numbers.
 * `id` is HubSpot's objectTypeId ("0-1", "0-46", "2-3465404"): it is the only
 * key ever persisted (journal, disk cache), because an account that gains or
 * loses a custom object renumbers idx but never an objectTypeId.
 *
 * Pure: no I/O, no clock, no locks. Depends on json-c and GLib only.
 */
#ifndef HUBFS_MODEL_OBJTYPES_H
#define HUBFS_MODEL_OBJTYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Most types a mount shows: the inode layout has 6 bits for a type. */
#define OBJTYPES_MAX 64

/* Per-type behaviour, as data instead of `type == contacts` branches. */
enum objtype_flag {
	OTF_CORE = 1u << 0,           /* contacts, companies, deals, tickets (-o types=core) */
	OTF_CUSTOM = 1u << 1,         /* a custom object, from the schemas API */
	OTF_UPSERT_EMAIL = 1u << 2,   /* a create with an email is a batch/upsert on email */
	OTF_LIFECYCLE = 1u << 3,      /* lifecyclestage only moves forward: clear, then set */
	OTF_READONLY = 1u << 4,       /* no create, update or delete: files 0444, writes EROFS */
	OTF_NO_DELETE = 1u << 5,      /* records cannot be archived (EPERM even with allow_delete) */
	OTF_HARD_DELETE = 1u << 6,    /* archiving deletes for good (emails) */
	OTF_CASCADE_DELETE = 1u << 7, /* archiving takes children along (quotes: line items) */
	OTF_ENGAGEMENT = 1u << 8,     /* an activity: hs_timestamp required, hubfs fills now */
	OTF_NO_ASSOC = 1u << 9,       /* cannot be associated with anything (products, users) */
	OTF_OBJECT_LIBRARY = 1u << 10,/* shown only if object-library enablement says so */
	OTF_NO_SEARCH = 1u << 11,     /* no search endpoint: no query dirs, refresh by relist */
	OTF_NEEDS_CONTACT = 1u << 12, /* a create must carry a contact association (leads) */
};

struct objtype {
	unsigned idx;                      /* dense, this mount only, never persisted */
	const char *name;                  /* directory name: API name ("line_items"); a custom
					    * object's schema name, or its fullyQualifiedName when
					    * that clashes with a standard name or a root
					    * directory (schema, pipelines, owners, search) or a
					    * standard type hubfs leaves out (contracts, …) */
	const char *id;                    /* objectTypeId: the persisted key */
	const char *path;                  /* the {objectType} segment of API URLs
					    * (/crm/v3/objects/{path}, /crm/v3/properties/{path},
					    * /crm/v4/associations/{path}/…): the API name of a
					    * standard type where the API takes one ("contacts",
					    * "line_items"), else the objectTypeId (object-library
					    * types, custom objects) */
	const char *singular;              /* webhook subscriptionType object ("contact",
					    * "line_item"); custom objects: "object" */
	const char *label;                 /* human plural label, for messages */
	const char *lastmod;               /* last-modified property: "lastmodifieddate" for
					    * contacts, "hs_lastmodifieddate" otherwise */
	const char *createdate;            /* creation-time property ("createdate"/"hs_createdate") */
	const char *display;               /* primary display property, or NULL */
	/* The four lists below are NULL-terminated and never NULL (maybe empty). */
	const char *const *default_props;  /* curated properties shown by default (plus every
					    * custom property of the account); custom objects:
					    * empty (they show all their properties) */
	const char *const *text_props;     /* properties HubSpot's free-text `query` searches */
	const char *const *identity_props; /* string properties an in-doubt create is looked up by */
	const char *const *required;       /* required on create (HubSpot answers 400 without) */
	const char *pipeline_prop;         /* NULL: the type has no pipelines */
	const char *stage_prop;
	const char *default_pipeline;      /* pipeline id HubSpot assumes when none is given, or NULL */
	const char *read_scope;            /* scope named in the EACCES message, or NULL;
					    * several are space-separated */
	unsigned flags;                    /* enum objtype_flag */
};

struct objtypes;

/* What the mount asked for: NULL/"" or "all" = every type; "core" = the four;
 * otherwise a comma-separated list of directory names or objectTypeIds (or
 * any other name objtypes_lookup takes), "core" allowed among them. Unknown
 * names, and object-library types named but not enabled, are reported in
 * *why but do not fail. */
struct objtypes_opts {
	const char *types;
};

/* Build the registry: every standard type, minus object-library types that
 * `enablement` ({"enablementByObjectTypeId": {"0-420": false, …}}, may be NULL:
 * then object-library types are left out) does not enable, plus every
 * unarchived custom object of `schemas` ({"results": [ObjectSchema…]}, may be
 * NULL), filtered by o->types. Returns 0 and *out; -EINVAL if schemas is
 * malformed (*why says how); -E2BIG if more than OBJTYPES_MAX types remain
 * (*why names the option that narrows them). *why (may be NULL) is NULL, or a
 * message in a per-thread buffer valid until the next objtypes_new on the same
 * thread; it may be set with 0 for a warning. Standard types come first, in
 * objectTypeId order (the core four are idx 0-3 unless -o types= leaves some
 * out), then custom objects in the order of `schemas`. */
int objtypes_new(const struct objtypes_opts *o, json_object *schemas, json_object *enablement,
		 struct objtypes **out, const char **why);
/* The four core types only, no discovery (tests, and a mount whose discovery
 * calls failed). Never NULL. */
struct objtypes *objtypes_new_core(void);
void objtypes_free(struct objtypes *r); /* accepts NULL */

size_t objtypes_count(const struct objtypes *r);
/* NULL when idx >= count. */
const struct objtype *objtypes_at(const struct objtypes *r, unsigned idx);
/* By directory name of len bytes (not necessarily NUL-terminated); NULL if none. */
const struct objtype *objtypes_by_name(const struct objtypes *r, const char *s, size_t len);
/* By objectTypeId ("0-3"), by any name HubSpot accepts in a URL (API name,
 * documented singular alias, fullyQualifiedName), or by a webhook object name
 * ("contact", "line_item"); NULL if none. objtypes_lookup tries, in order: the
 * objectTypeId, directory names, the other names exactly (a standard type's
 * singular name, a custom object's fullyQualifiedName, "line items" as in a v3
 * associations embed), then all of them in any case ("COMMERCE_PAYMENT"). */
const struct objtype *objtypes_by_id(const struct objtypes *r, const char *type_id);
const struct objtype *objtypes_lookup(const struct objtypes *r, const char *any_name);

/* Standard types the registry knows whether or not this mount shows them
 * (for the journal migration and for messages), in objectTypeId order: 0-3 are
 * contacts, companies, deals, tickets, the values of the old `enum objtype`
 * that a version-1 journal stored. NULL when i is out of range. Their idx
 * means nothing: pass a registry's own types to the functions below. */
const struct objtype *objtypes_standard_at(unsigned i);

/* --- associations ------------------------------------------------------ */

/* Whether records of `from` can be associated with records of `to`: a
 * HUBSPOT_DEFINED pair, or a custom schema's association (either direction),
 * or a custom object and calls, emails, meetings, notes or tasks (HubSpot
 * gives every custom object those). Same-type pairs are included where HubSpot
 * defines them (contact→contact). Symmetric. from and to must be types of r
 * (false otherwise). */
bool objtypes_associable(const struct objtypes *r, const struct objtype *from,
			 const struct objtype *to);
/* The unlabeled (default) association type id from → to (HUBSPOT_DEFINED, or the
 * custom schema's association id), for create bodies; 0 if none is known. */
int objtypes_assoc_type_id(const struct objtypes *r, const struct objtype *from,
			   const struct objtype *to);
/* The associable targets of a type, in idx order: fills ids (up to max) with
 * their idx and returns how many there are. */
size_t objtypes_assoc_targets(const struct objtypes *r, const struct objtype *from,
			      unsigned *idx, size_t max);

#endif
