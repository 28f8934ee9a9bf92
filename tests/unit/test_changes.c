/* test_changes.c - cache/model/changes.[ch]: webhook events folded into
 * pending cache work. Every event kind; merges; associations from both sides;
 * duplicates and reordering never rolling a record back; propertyChange
 * against the cached updatedAt; ignored events counted by reason; coalescing
 * into batch reads; the bounds and their fall-back flags; the history and
 * its watermark; retries; when to drain; and a few threads at once.
 *
 * Events are built here field by field, as wh_parse fills them; times are
 * made-up wall-clock ms. Every test checks that the counters add up.
 */
#include <errno.h>
#include <stdatomic.h>

#include <glib.h>
#include <json-c/json.h>

#include "cache/model/changes.h"
#include "tests/unit/test.h"

#define PORTAL 62515
#define NOW 1700000000000LL

/* Contacts, companies, ... (every standard type but the object library's)
 * and one custom object, cars (2-3465404), associated with contacts. */
static const char schemas_json[] =
	"{\"results\": [{\"id\": \"3465404\", \"objectTypeId\": \"2-3465404\","
	" \"fullyQualifiedName\": \"p1234_cars\", \"name\": \"cars\","
	" \"labels\": {\"singular\": \"Car\", \"plural\": \"Cars\"},"
	" \"requiredProperties\": [], \"properties\": [{\"name\": \"model\", \"type\": \"string\"}],"
	" \"associations\": [{\"id\": \"75\", \"fromObjectTypeId\": \"2-3465404\","
	"   \"toObjectTypeId\": \"0-1\", \"name\": \"cars_to_contact\"},"
	"  {\"id\": \"76\", \"fromObjectTypeId\": \"0-1\", \"toObjectTypeId\": \"2-3465404\","
	"   \"name\": \"contact_to_cars\"}]}]}";

static struct objtypes *reg;
static const struct objtype *CONTACTS, *COMPANIES, *DEALS, *LINE_ITEMS, *CARS, *PRODUCTS;

static void registry_init(void)
{
	struct objtypes_opts o = { 0 };
	json_object *s = json_tokener_parse(schemas_json);
	const char *why = NULL;

	ASSERT(s);
	ASSERT_EQ(objtypes_new(&o, s, NULL, &reg, &why), 0);
	json_object_put(s);
	CONTACTS = objtypes_by_id(reg, "0-1");
	COMPANIES = objtypes_by_id(reg, "0-2");
	DEALS = objtypes_by_id(reg, "0-3");
	LINE_ITEMS = objtypes_by_id(reg, "0-8");
	PRODUCTS = objtypes_by_id(reg, "0-7");
	CARS = objtypes_by_id(reg, "2-3465404");
	ASSERT(CONTACTS && COMPANIES && DEALS && LINE_ITEMS && CARS && PRODUCTS);
	ASSERT(objtypes_associable(reg, CARS, CONTACTS));
}

/* ---- events ---------------------------------------------------------------- */

static _Atomic uint64_t next_event_id = 1000;

static enum wh_kind kind_of(const char *action)
{
	static const char *const names[] = { "creation", "deletion", "propertyChange",
					     "associationChange", "merge", "restore",
					     "privacyDeletion" };

	for (int k = 0; k < (int)G_N_ELEMENTS(names); k++)
		if (strcmp(action, names[k]) == 0)
			return (enum wh_kind)k;
	return WH_OTHER;
}

/* An event of subscription type `type` ("contact.creation") on objectId id at
 * occurredAt `at`, from our portal, with a fresh eventId. */
static struct wh_event E(const char *type, uint64_t id, int64_t at)
{
	struct wh_event e;
	const char *dot = strchr(type, '.');

	memset(&e, 0, sizeof(e));
	g_strlcpy(e.type, type, sizeof(e.type));
	if (dot) {
		memcpy(e.object, type, (size_t)(dot - type));
		e.kind = kind_of(dot + 1);
	} else {
		e.kind = WH_OTHER;
	}
	e.object_id = id;
	e.occurred_at = at;
	e.event_id = atomic_fetch_add(&next_event_id, 1);
	e.subscription_id = 7;
	e.portal_id = PORTAL;
	g_strlcpy(e.change_source, "CRM", sizeof(e.change_source));
	return e;
}

static struct wh_event prop(const char *object, uint64_t id, int64_t at, const char *name)
{
	char type[64];
	struct wh_event e;

	g_snprintf(type, sizeof(type), "%s.propertyChange", object);
	e = E(type, id, at);
	g_strlcpy(e.property, name, sizeof(e.property));
	return e;
}

/* An associationChange as HubSpot sends it for the side `object` (the from side). */
static struct wh_event assoc(const char *object, const char *atype, uint64_t from, uint64_t to,
			     int64_t at)
{
	char type[64];
	struct wh_event e;

	g_snprintf(type, sizeof(type), "%s.associationChange", object);
	e = E(type, from, at);
	g_strlcpy(e.association_type, atype, sizeof(e.association_type));
	e.from_id = from;
	e.to_id = to;
	return e;
}

/* A custom object's event: object.* with objectTypeId. */
static struct wh_event obj(const char *action, const char *type_id, uint64_t id, int64_t at)
{
	char type[64];
	struct wh_event e;

	g_snprintf(type, sizeof(type), "object.%s", action);
	e = E(type, id, at);
	g_strlcpy(e.object_type_id, type_id, sizeof(e.object_type_id));
	return e;
}

/* ---- checks ---------------------------------------------------------------- */

static struct changes *make(const struct changes_opts *extra)
{
	struct changes_opts o = extra ? *extra : (struct changes_opts){ 0 };
	struct changes *c;

	o.types = reg;
	if (!o.portal_id)
		o.portal_id = PORTAL;
	c = changes_new(&o);
	ASSERT(c);
	return c;
}

static size_t add1(struct changes *c, struct wh_event e)
{
	return changes_add(c, &e, 1, NOW);
}

static void check_partition(struct changes *c)
{
	struct changes_stats st;
	uint64_t ign = 0;

	changes_stats(c, &st);
	for (int i = 0; i < CHI_COUNT; i++)
		ign += st.ignored[i];
	if (st.received != st.applied + st.duplicates + st.out_of_order + st.overflow + ign)
		FAIL("received %" PRIu64 " != applied %" PRIu64 " + duplicates %" PRIu64
		     " + out_of_order %" PRIu64 " + overflow %" PRIu64 " + ignored %" PRIu64,
		     st.received, st.applied, st.duplicates, st.out_of_order, st.overflow, ign);
}

static struct changes_stats stats(struct changes *c)
{
	struct changes_stats st;

	check_partition(c);
	changes_stats(c, &st);
	return st;
}

static const char *kind_name(enum changes_job_kind k)
{
	switch (k) {
	case CHANGES_GONE: return "gone";
	case CHANGES_ASSOC_ALL: return "assoc_all";
	case CHANGES_READ: return "read";
	case CHANGES_ASSOC: return "assoc";
	}
	return "?";
}

/* Every job as text, in order: "gone contacts 3,4; read contacts 1,2; assoc
 * contacts>companies 1". Also checks the shape the header promises. */
static char *describe(const struct changes_work *w)
{
	GString *s = g_string_new(NULL);
	size_t calls = 0;
	int last_kind = -1;

	if (!w)
		return g_string_free(s, FALSE);
	for (size_t i = 0; i < w->n_jobs; i++) {
		const struct changes_job *j = &w->jobs[i];

		ASSERT(j->n >= 1);
		ASSERT((int)j->kind >= last_kind);
		last_kind = (int)j->kind;
		ASSERT(j->type);
		ASSERT((j->kind == CHANGES_ASSOC) == (j->to != NULL));
		if (j->kind == CHANGES_READ)
			ASSERT_LE(j->n, CHANGES_READ_MAX);
		if (j->kind == CHANGES_ASSOC)
			ASSERT_LE(j->n, CHANGES_ASSOC_MAX);
		if (j->kind == CHANGES_READ || j->kind == CHANGES_ASSOC)
			calls++;
		for (size_t k = 1; k < j->n; k++)
			ASSERT_LT(j->ids[k - 1], j->ids[k]);
		g_string_append_printf(s, "%s%s %s", s->len ? "; " : "", kind_name(j->kind),
				       j->type->name);
		if (j->to)
			g_string_append_printf(s, ">%s", j->to->name);
		for (size_t k = 0; k < j->n; k++)
			g_string_append_printf(s, "%s%" PRIu64, k ? "," : " ", j->ids[k]);
	}
	ASSERT_EQ(w->calls, calls);
	return g_string_free(s, FALSE);
}

/* Drain and compare the jobs with want ("" = no jobs); flags must be 0. */
#define DRAIN(c, held, ud, want) do { \
	struct changes_work *w_ = changes_drain((c), NOW, (held), (ud)); \
	g_autofree char *got_ = describe(w_); \
	if (w_) for (size_t t_ = 0; t_ < OBJTYPES_MAX; t_++) ASSERT_EQ(w_->flags[t_], 0); \
	ASSERT_STR(got_, (want)); \
	changes_work_free(w_); \
	check_partition(c); \
} while (0)

/* ---- every kind -------------------------------------------------------------- */

static void test_each_kind(void)
{
	struct changes *c = make(NULL);
	struct wh_event ev[] = {
		E("contact.creation", 11, NOW - 900),
		prop("contact", 12, NOW - 900, "email"),
		E("contact.restore", 13, NOW - 900),
		E("contact.deletion", 14, NOW - 900),
		E("contact.privacyDeletion", 15, NOW - 900),
		E("line_item.creation", 21, NOW - 900),
		E("company.deletion", 31, NOW - 900),
		obj("propertyChange", "2-3465404", 41, NOW - 900),
		obj("deletion", "2-3465404", 42, NOW - 900),
		/* a standard type named by objectTypeId, as newer payloads do */
		obj("creation", "0-3", 51, NOW - 900),
	};
	struct changes_stats st;

	ASSERT_EQ(changes_add(c, ev, G_N_ELEMENTS(ev), NOW), G_N_ELEMENTS(ev));
	st = stats(c);
	ASSERT_EQ(st.received, 10);
	ASSERT_EQ(st.applied, 10);
	ASSERT_EQ(st.pending, 10);
	ASSERT_EQ(st.last_event_at, NOW - 900);
	ASSERT_EQ(st.last_received, NOW);
	DRAIN(c, NULL, NULL,
	      "gone contacts 14,15; gone companies 31; gone cars 42; "
	      "read contacts 11,12,13; read deals 51; read line_items 21; read cars 41");
	st = stats(c);
	ASSERT_EQ(st.pending, 0);
	ASSERT_EQ(st.history, 10);
	ASSERT_EQ(st.drains, 1);
	ASSERT_EQ(st.reads, 4);
	ASSERT_EQ(st.gone, 4);
	/* nothing left */
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	changes_free(c);
}

/* ---- merges -------------------------------------------------------------------- */

static void test_merge(void)
{
	struct changes *c = make(NULL);
	struct wh_event e = E("contact.merge", 101, NOW - 500);
	uint64_t merged[] = { 102, 103, 105 };
	struct changes_stats st;

	/* HubSpot's shape: primary 101 and 102, 103 merged into new record 105 */
	e.primary_id = 101;
	e.new_id = 105;
	e.merged_ids = merged;
	e.n_merged = 3; /* the survivor listed among them stays */
	ASSERT_EQ(add1(c, e), 1);
	DRAIN(c, NULL, NULL, "gone contacts 101,102,103; assoc_all contacts 105; read contacts 105");

	/* The sandbox's shape: the primary survives (newObjectId = primary). */
	e = E("company.merge", 201, NOW - 400);
	e.primary_id = 201;
	e.new_id = 201;
	e.merged_ids = merged;
	e.n_merged = 1;
	ASSERT_EQ(add1(c, e), 1);
	DRAIN(c, NULL, NULL, "gone companies 102; assoc_all companies 201; read companies 201");

	/* No newObjectId: primaryObjectId survives; no survivor at all: ignored. */
	e = E("deal.merge", 301, NOW - 400);
	e.primary_id = 301;
	e.merged_ids = merged;
	e.n_merged = 2;
	ASSERT_EQ(add1(c, e), 1);
	e = E("deal.merge", 0, NOW - 400);
	e.merged_ids = merged;
	e.n_merged = 2;
	ASSERT_EQ(add1(c, e), 0);
	DRAIN(c, NULL, NULL, "gone deals 102,103; assoc_all deals 301; read deals 301");
	st = stats(c);
	ASSERT_EQ(st.ignored[CHI_ID], 1);

	/* objectId neither the survivor nor the primary: gone as well */
	e = E("ticket.merge", 409, NOW - 400);
	e.primary_id = 401;
	e.new_id = 405;
	ASSERT_EQ(add1(c, e), 1);
	DRAIN(c, NULL, NULL, "gone tickets 401,409; assoc_all tickets 405; read tickets 405");

	/* A merged record's older change arriving late stays gone; a newer
	 * restore of it comes back. */
	ASSERT_EQ(add1(c, prop("contact", 102, NOW - 600, "email")), 0);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	ASSERT_EQ(add1(c, E("contact.restore", 102, NOW - 100)), 1);
	DRAIN(c, NULL, NULL, "read contacts 102");
	changes_free(c);
}

/* ---- associations ------------------------------------------------------------ */

static void test_association(void)
{
	struct changes *c = make(NULL);
	struct wh_event e;
	struct changes_stats st;

	/* HubSpot fires once per side: both coalesce into the two maps. */
	ASSERT_EQ(add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 50)), 1);
	ASSERT_EQ(add1(c, assoc("company", "COMPANY_TO_CONTACT", 2, 1, NOW - 50)), 1);
	/* underscores in a type's name */
	ASSERT_EQ(add1(c, assoc("line_item", "LINE_ITEM_TO_DEAL", 9, 8, NOW - 50)), 1);
	DRAIN(c, NULL, NULL,
	      "assoc contacts>companies 1; assoc companies>contacts 2; "
	      "assoc deals>line_items 8; assoc line_items>deals 9");

	/* A custom object: associationType names its singular label, which is no
	 * type name; the event's own type (objectTypeId) is the from side. */
	e = obj("associationChange", "2-3465404", 7, NOW - 40);
	g_strlcpy(e.association_type, "CAR_TO_CONTACT", sizeof(e.association_type));
	e.from_id = 7;
	e.to_id = 101;
	ASSERT_EQ(add1(c, e), 1);
	/* The contact's side, with the type ids newer payloads carry. */
	e = assoc("contact", "CONTACT_TO_CAR", 102, 8, NOW - 40);
	g_strlcpy(e.to_type_id, "2-3465404", sizeof(e.to_type_id));
	ASSERT_EQ(add1(c, e), 1);
	/* No associationType at all: the associationTypeId (279 = contact to
	 * company, unlabeled). */
	e = assoc("contact", "", 103, 203, NOW - 40);
	e.association_type_id = 279;
	ASSERT_EQ(add1(c, e), 1);
	DRAIN(c, NULL, NULL,
	      "assoc contacts>companies 103; assoc contacts>cars 101,102; "
	      "assoc companies>contacts 203; assoc cars>contacts 7,8");

	/* Ignored: a type the mount does not show, no map between the types
	 * (products cannot be associated), a missing id, a contradicting
	 * fromObjectTypeId. */
	ASSERT_EQ(add1(c, assoc("contact", "CONTACT_TO_SPACESHIP", 1, 2, NOW - 30)), 0);
	ASSERT_EQ(add1(c, assoc("product", "PRODUCT_TO_DEAL", 1, 2, NOW - 30)), 0);
	ASSERT_EQ(add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 0, NOW - 30)), 0);
	e = assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 30);
	g_strlcpy(e.from_type_id, "9-9", sizeof(e.from_type_id));
	ASSERT_EQ(add1(c, e), 0);
	e = assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 30);
	g_strlcpy(e.to_type_id, "9-9", sizeof(e.to_type_id));
	ASSERT_EQ(add1(c, e), 0);
	st = stats(c);
	ASSERT_EQ(st.ignored[CHI_TYPE], 4);
	ASSERT_EQ(st.ignored[CHI_ID], 1);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);

	/* An association change does not touch the records themselves. */
	ASSERT_EQ(add1(c, E("contact.deletion", 1, NOW - 20)), 1);
	ASSERT_EQ(add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 10)), 1);
	DRAIN(c, NULL, NULL,
	      "gone contacts 1; assoc contacts>companies 1; assoc companies>contacts 2");
	changes_free(c);
}

/* ---- duplicates and order ------------------------------------------------------ */

static void test_duplicates(void)
{
	struct changes *c = make(NULL);
	struct wh_event ev[4];
	struct changes_stats st;

	ev[0] = E("contact.creation", 1, NOW - 100);
	ev[1] = prop("contact", 1, NOW - 90, "firstname");
	ev[2] = E("contact.deletion", 2, NOW - 80);
	ev[3] = assoc("contact", "CONTACT_TO_COMPANY", 3, 4, NOW - 70);
	ASSERT_EQ(changes_add(c, ev, 4, NOW), 4);
	/* HubSpot sends the same delivery again (a retry): all duplicates */
	ASSERT_EQ(changes_add(c, ev, 4, NOW + 1000), 0);
	st = stats(c);
	ASSERT_EQ(st.duplicates, 4);
	DRAIN(c, NULL, NULL, "gone contacts 2; read contacts 1; "
	      "assoc contacts>companies 3; assoc companies>contacts 4");
	/* ... and again after the drain: still nothing to do */
	ASSERT_EQ(changes_add(c, ev, 4, NOW + 2000), 0);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	st = stats(c);
	ASSERT_EQ(st.duplicates, 8);

	/* eventId is not unique: the same id on another object, another
	 * subscription or another time is another event. */
	ev[0] = prop("contact", 5, NOW - 60, "email");
	ev[1] = ev[0];
	ev[1].object_id = 6;
	ev[2] = ev[0];
	ev[2].subscription_id = 8;
	ev[3] = ev[0];
	ev[3].occurred_at = NOW - 59;
	ASSERT_EQ(changes_add(c, ev, 4, NOW), 4);
	st = stats(c);
	ASSERT_EQ(st.duplicates, 8);
	DRAIN(c, NULL, NULL, "read contacts 5,6");
	changes_free(c);
}

static void test_order(void)
{
	struct changes *c = make(NULL);
	struct wh_event del = E("contact.deletion", 1, NOW - 200);
	struct wh_event res = E("contact.restore", 1, NOW - 100);
	struct changes_stats st;

	/* In one delivery, either order: the restore is newer, so: read. */
	{
		struct wh_event ab[] = { del, res }, ba[] = { res, del };

		changes_add(c, ab, 2, NOW);
		DRAIN(c, NULL, NULL, "read contacts 1");
		changes_free(c);
		c = make(NULL);
		changes_add(c, ba, 2, NOW);
		DRAIN(c, NULL, NULL, "read contacts 1");
	}
	/* The deletion retried hours later (after the duplicate window): it is
	 * older than the restore already applied and cannot hide the record. */
	changes_free(c);
	{
		struct changes_opts o = { .max_dedupe = 1 };

		c = make(&o);
	}
	ASSERT_EQ(add1(c, res), 1);
	DRAIN(c, NULL, NULL, "read contacts 1");
	ASSERT_EQ(add1(c, prop("contact", 99, NOW, "x")), 1); /* pushes res out of the window */
	DRAIN(c, NULL, NULL, "read contacts 99");
	ASSERT_EQ(add1(c, del), 0);
	ASSERT_EQ(add1(c, res), 0); /* not a duplicate any more: just not news */
	st = stats(c);
	ASSERT_EQ(st.out_of_order, 2);
	ASSERT_EQ(st.duplicates, 0);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);

	/* A change older than a deletion: the record stays gone. */
	ASSERT_EQ(add1(c, E("contact.deletion", 2, NOW - 50)), 1);
	ASSERT_EQ(add1(c, prop("contact", 2, NOW - 60, "email")), 0);
	DRAIN(c, NULL, NULL, "gone contacts 2");
	ASSERT_EQ(add1(c, prop("contact", 2, NOW - 70, "email")), 0);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	/* A newer change of a deleted record: read it (the read tells). */
	ASSERT_EQ(add1(c, prop("contact", 2, NOW - 40, "email")), 1);
	DRAIN(c, NULL, NULL, "read contacts 2");

	/* A deletion and a restore in the same millisecond: unsure, so read,
	 * whichever came first, and whether or not a drain came between. */
	ASSERT_EQ(add1(c, E("contact.deletion", 3, NOW - 30)), 1);
	DRAIN(c, NULL, NULL, "gone contacts 3");
	ASSERT_EQ(add1(c, E("contact.restore", 3, NOW - 30)), 1);
	DRAIN(c, NULL, NULL, "read contacts 3");
	ASSERT_EQ(add1(c, E("contact.deletion", 3, NOW - 30)), 0); /* nothing new */
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);

	/* Two changes of one save (same ms, two properties): one read, and the
	 * second coming after the drain is covered by it. */
	ASSERT_EQ(add1(c, prop("contact", 4, NOW - 20, "firstname")), 1);
	ASSERT_EQ(add1(c, prop("contact", 4, NOW - 20, "lastname")), 1);
	DRAIN(c, NULL, NULL, "read contacts 4");
	ASSERT_EQ(add1(c, prop("contact", 4, NOW - 20, "email")), 0);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);

	/* Creation, change, deletion of one record, any order: gone. */
	{
		struct wh_event three[] = { E("contact.deletion", 5, NOW - 3),
					    E("contact.creation", 5, NOW - 5),
					    prop("contact", 5, NOW - 4, "email") };

		changes_add(c, three, 3, NOW);
		DRAIN(c, NULL, NULL, "gone contacts 5");
	}
	changes_free(c);
}

/* ---- the cached updatedAt -------------------------------------------------------- */

struct held {
	int64_t updated;   /* what the cache says for every record */
	int calls;
};

static int64_t held_cb(void *ud, const struct objtype *t, uint64_t id)
{
	struct held *h = ud;

	ASSERT(t == CONTACTS);
	ASSERT(id > 0);
	h->calls++;
	return h->updated;
}

static void test_held(void)
{
	struct changes *c = make(NULL);
	struct held h = { .updated = NOW - 100 };
	struct changes_stats st;

	/* The cache's copy is as new as the change (this mount's own write,
	 * coming back as a webhook): no read. */
	add1(c, prop("contact", 1, NOW - 100, "email"));
	add1(c, prop("contact", 2, NOW - 101, "email"));
	/* Newer than the copy: read. */
	add1(c, prop("contact", 3, NOW - 99, "email"));
	DRAIN(c, held_cb, &h, "read contacts 3");
	ASSERT_EQ(h.calls, 3);
	st = stats(c);
	ASSERT_EQ(st.skipped_held, 2);
	ASSERT_EQ(st.reads, 1);

	/* Creations, restores, merge survivors and unsure records are read
	 * whatever the cache holds; deletions do not ask. */
	h.calls = 0;
	h.updated = INT64_MAX;
	add1(c, E("contact.creation", 10, NOW - 50));
	add1(c, E("contact.restore", 11, NOW - 50));
	add1(c, E("contact.deletion", 12, NOW - 50));
	add1(c, E("contact.deletion", 13, NOW - 50));
	add1(c, E("contact.restore", 13, NOW - 50));
	{
		struct wh_event m = E("contact.merge", 14, NOW - 50);

		m.primary_id = 14;
		add1(c, m);
	}
	/* a creation, then a change: still must be read */
	add1(c, E("contact.creation", 15, NOW - 60));
	add1(c, prop("contact", 15, NOW - 50, "email"));
	/* the change first, the (older) creation after: the same */
	add1(c, prop("contact", 16, NOW - 50, "email"));
	add1(c, E("contact.creation", 16, NOW - 60));
	/* INT64_MAX: nothing held that a read would refresh */
	add1(c, prop("contact", 17, NOW - 50, "email"));
	DRAIN(c, held_cb, &h, "gone contacts 12; assoc_all contacts 14; read contacts 10,11,13,14,15,16");
	ASSERT_EQ(h.calls, 1);

	/* A change of a record handed out as gone (its restore lost, say):
	 * read, though the cache, having dropped it, holds nothing. */
	h.calls = 0;
	add1(c, prop("contact", 12, NOW - 45, "email"));
	DRAIN(c, held_cb, &h, "read contacts 12");
	ASSERT_EQ(h.calls, 0);

	/* -1: the cache holds no copy: read. */
	h.calls = 0;
	h.updated = -1;
	add1(c, prop("contact", 20, NOW - 40, "email"));
	DRAIN(c, held_cb, &h, "read contacts 20");
	ASSERT_EQ(h.calls, 1);
	changes_free(c);
}

/* ---- ignored ----------------------------------------------------------------------- */

static void test_ignored(void)
{
	struct changes *c = make(NULL);
	struct wh_event e;
	struct changes_stats st;

	ASSERT_EQ(add1(c, E("conversation.newMessage", 1, NOW)), 0);    /* kind */
	ASSERT_EQ(add1(c, E("contact.somethingNew", 1, NOW)), 0);       /* kind */
	ASSERT_EQ(add1(c, E("", 1, NOW)), 0);                           /* kind */
	e = E("contact.creation", 1, NOW);
	e.portal_id = 99;
	ASSERT_EQ(add1(c, e), 0);                                       /* portal */
	ASSERT_EQ(add1(c, E("spaceship.creation", 1, NOW)), 0);         /* type */
	ASSERT_EQ(add1(c, obj("creation", "2-1", 1, NOW)), 0);          /* type */
	ASSERT_EQ(add1(c, obj("creation", "", 1, NOW)), 0);             /* type */
	e = E("contact.creation", 1, NOW);
	g_strlcpy(e.object_type_id, "0-2", sizeof(e.object_type_id));
	ASSERT_EQ(add1(c, e), 0);                                       /* type: contradiction */
	ASSERT_EQ(add1(c, E("contact.creation", 0, NOW)), 0);           /* id */
	ASSERT_EQ(add1(c, E("contact.deletion", 0, NOW)), 0);           /* id */
	ASSERT_EQ(add1(c, E("contact.creation", 1, 0)), 0);             /* time */
	ASSERT_EQ(add1(c, E("contact.creation", 1, NOW + WH_MAX_SKEW_MS + 1)), 0); /* time */
	ASSERT_EQ(add1(c, E("contact.creation", 1, NOW + WH_MAX_SKEW_MS)), 1);
	st = stats(c);
	ASSERT_EQ(st.received, 13);
	ASSERT_EQ(st.applied, 1);
	ASSERT_EQ(st.ignored[CHI_KIND], 3);
	ASSERT_EQ(st.ignored[CHI_PORTAL], 1);
	ASSERT_EQ(st.ignored[CHI_TYPE], 4);
	ASSERT_EQ(st.ignored[CHI_ID], 2);
	ASSERT_EQ(st.ignored[CHI_TIME], 2);
	ASSERT_EQ(st.last_event_at, NOW + WH_MAX_SKEW_MS);
	DRAIN(c, NULL, NULL, "read contacts 1");
	ASSERT_STR(changes_ignore_name(CHI_KIND), "kind");
	ASSERT_STR(changes_ignore_name(CHI_TIME), "time");
	changes_free(c);

	/* portal_id 0: any portal */
	{
		struct changes_opts o = { 0 };

		o.types = reg;
		c = changes_new(&o);
		e = E("contact.creation", 1, NOW);
		e.portal_id = 99;
		ASSERT_EQ(add1(c, e), 1);
		changes_free(c);
	}
	/* nothing given: nothing counted */
	c = make(NULL);
	ASSERT_EQ(changes_add(c, NULL, 0, NOW), 0);
	st = stats(c);
	ASSERT_EQ(st.received, 0);
	ASSERT_EQ(st.last_received, 0);
	changes_free(c);
	ASSERT(changes_new(NULL) == NULL);
	{
		struct changes_opts o = { 0 };

		ASSERT(changes_new(&o) == NULL);
	}
	changes_free(NULL);
	changes_work_free(NULL);
}

/* ---- coalescing -------------------------------------------------------------------- */

static void shuffle(struct wh_event *ev, size_t n, GRand *r)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)g_rand_int_range(r, 0, (gint32)i);
		struct wh_event t = ev[i - 1];

		ev[i - 1] = ev[j];
		ev[j] = t;
	}
}

static void test_coalescing(void)
{
	struct changes *c = make(NULL);
	GRand *rnd = g_rand_new_with_seed(15);
	struct wh_event *ev = g_new(struct wh_event, 3000);
	struct changes_work *w;
	struct changes_stats st;
	size_t n = 0;

	/* 1,000 propertyChange events on 300 contacts, in 10 deliveries of 100
	 * in no order: 3 batch reads of 100. */
	for (size_t i = 0; i < 1000; i++)
		ev[n++] = prop("contact", 1 + i % 300, NOW - 10000 + (int64_t)i, "p");
	shuffle(ev, n, rnd);
	for (size_t i = 0; i < n; i += 100)
		changes_add(c, ev + i, 100, NOW);
	w = changes_drain(c, NOW, NULL, NULL);
	ASSERT(w);
	ASSERT_EQ(w->calls, 3);
	ASSERT_EQ(w->n_jobs, 3);
	for (size_t i = 0; i < 3; i++) {
		ASSERT_EQ(w->jobs[i].kind, CHANGES_READ);
		ASSERT_EQ(w->jobs[i].n, 100);
		ASSERT_EQ(w->jobs[i].ids[0], 1 + 100 * i);
		ASSERT_EQ(w->jobs[i].ids[99], 100 + 100 * i);
	}
	changes_work_free(w);
	st = stats(c);
	ASSERT_EQ(st.applied, 1000);

	/* 250 contacts and 50 companies: 4 reads (100, 100, 50 contacts; 50
	 * companies), whatever the mix. */
	n = 0;
	for (size_t i = 0; i < 1000; i++)
		ev[n++] = i % 4 == 0 ? prop("company", 1 + i / 4 % 50, NOW - 5000 + (int64_t)i, "name")
				     : prop("contact", 1 + i % 250, NOW - 5000 + (int64_t)i, "p");
	shuffle(ev, n, rnd);
	changes_add(c, ev, n, NOW);
	w = changes_drain(c, NOW, NULL, NULL);
	ASSERT_EQ(w->calls, 4);
	ASSERT_EQ(w->jobs[0].n, 100);
	ASSERT_EQ(w->jobs[1].n, 100);
	ASSERT_EQ(w->jobs[2].n, 50);
	ASSERT(w->jobs[2].type == CONTACTS);
	ASSERT_EQ(w->jobs[3].n, 50);
	ASSERT(w->jobs[3].type == COMPANIES);
	changes_work_free(w);

	/* 3,000 association events (both sides of 1,500 changes) between 1,500
	 * contacts and 40 companies: v4 batch reads of at most 1,000 ids:
	 * contacts->companies 1,000 + 500, companies->contacts 40. */
	n = 0;
	for (size_t i = 0; i < 1500; i++) {
		uint64_t ct = 1 + i, co = 1 + i % 40;

		ev[n++] = assoc("contact", "CONTACT_TO_COMPANY", ct, co, NOW - 100);
		ev[n++] = assoc("company", "COMPANY_TO_CONTACT", co, ct, NOW - 100);
	}
	shuffle(ev, n, rnd);
	for (size_t i = 0; i < n; i += 100)
		changes_add(c, ev + i, 100, NOW);
	w = changes_drain(c, NOW, NULL, NULL);
	ASSERT_EQ(w->calls, 3);
	ASSERT_EQ(w->jobs[0].n, 1000);
	ASSERT(w->jobs[0].type == CONTACTS && w->jobs[0].to == COMPANIES);
	ASSERT_EQ(w->jobs[1].n, 500);
	ASSERT_EQ(w->jobs[2].n, 40);
	ASSERT(w->jobs[2].type == COMPANIES && w->jobs[2].to == CONTACTS);
	changes_work_free(w);
	check_partition(c);
	g_free(ev);
	g_rand_free(rnd);
	changes_free(c);
}

/* ---- bounds -------------------------------------------------------------------------- */

static void test_pending_bound(void)
{
	struct changes_opts o = { .max_pending = 10, .max_assoc = 4 };
	struct changes *c = make(&o);
	struct changes_work *w;
	struct changes_stats st;

	for (uint64_t id = 1; id <= 15; id++)
		add1(c, E("contact.creation", id, NOW - 100));
	st = stats(c);
	ASSERT_EQ(st.pending, 10);
	ASSERT_EQ(st.applied, 10);
	ASSERT_EQ(st.overflow, 5);
	/* records already pending still take news in place */
	ASSERT_EQ(add1(c, E("contact.deletion", 3, NOW - 50)), 1);
	/* a deletion past the bound: search cannot see it, so relist */
	ASSERT_EQ(add1(c, E("company.deletion", 1, NOW - 50)), 0);
	/* association maps past their bound */
	ASSERT_EQ(add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 50)), 1);
	ASSERT_EQ(add1(c, assoc("deal", "DEAL_TO_COMPANY", 1, 2, NOW - 50)), 1);
	ASSERT_EQ(add1(c, assoc("deal", "DEAL_TO_TICKET", 5, 6, NOW - 50)), 0);
	st = stats(c);
	ASSERT_EQ(st.pending, 10);
	ASSERT_EQ(st.pending_assoc, 4);
	ASSERT_EQ(st.overflow, 7);
	ASSERT_EQ(changes_due(c, NOW), 0); /* flags are up: at once */

	w = changes_drain(c, NOW, NULL, NULL);
	{
		g_autofree char *d = describe(w);

		ASSERT_STR(d, "gone contacts 3; read contacts 1,2,4,5,6,7,8,9,10; "
			   "assoc contacts>companies 1; assoc companies>contacts 2; "
			   "assoc companies>deals 2; assoc deals>companies 1");
	}
	ASSERT_EQ(w->flags[CONTACTS->idx], CHANGES_REFRESH);
	ASSERT_EQ(w->flags[COMPANIES->idx], CHANGES_RELIST);
	ASSERT_EQ(w->flags[DEALS->idx], CHANGES_ASSOC_STALE);
	ASSERT_EQ(w->flags[objtypes_by_id(reg, "0-5")->idx], CHANGES_ASSOC_STALE); /* tickets */
	for (size_t t = 0; t < OBJTYPES_MAX; t++)
		if (t > 3)
			ASSERT_EQ(w->flags[t], 0);
	changes_work_free(w);
	/* the flags went out with that work */
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	ASSERT_EQ(changes_due(c, NOW), -1);

	/* A record in the history whose news overflows: a later, older deletion
	 * must still not win (the news is remembered as "something at t"). */
	for (uint64_t id = 100; id < 110; id++)
		add1(c, E("deal.creation", id, NOW - 40));
	ASSERT_EQ(add1(c, E("contact.restore", 3, NOW - 30)), 0); /* overflow */
	w = changes_drain(c, NOW, NULL, NULL);
	ASSERT_EQ(w->flags[CONTACTS->idx], CHANGES_REFRESH);
	changes_work_free(w);
	ASSERT_EQ(add1(c, E("contact.deletion", 3, NOW - 35)), 0);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	st = stats(c);
	ASSERT_EQ(st.out_of_order, 1);
	changes_free(c);
}

static void test_history_bound(void)
{
	struct changes_opts o = { .max_history = 5, .history_ms = 60000 };
	struct changes *c = make(&o);
	struct changes_work *w;
	struct changes_stats st;

	/* 10 records drained: the 5 drained first are forgotten (the order
	 * within one drain is the order they became pending) */
	for (uint64_t id = 1; id <= 10; id++)
		add1(c, E("contact.restore", id, NOW - 1000 + (int64_t)id));
	w = changes_drain(c, NOW, NULL, NULL);
	changes_work_free(w);
	st = stats(c);
	ASSERT_EQ(st.history, 5);
	ASSERT_EQ(st.watermark, NOW - 1000 + 5);
	/* A forgotten record's old deletion cannot be ordered: it is verified
	 * by a read, not trusted. */
	ASSERT_EQ(add1(c, E("contact.deletion", 2, NOW - 1000 + 1)), 1);
	/* A remembered record's old deletion is simply old. */
	ASSERT_EQ(add1(c, E("contact.deletion", 8, NOW - 1000 + 1)), 0);
	/* A deletion newer than anything forgotten is trusted. */
	ASSERT_EQ(add1(c, E("contact.deletion", 3, NOW - 1000 + 6)), 1);
	DRAIN(c, NULL, NULL, "gone contacts 3; read contacts 2");

	/* Age: an hour later, the history is empty, and the watermark covers
	 * everything it held. */
	w = changes_drain(c, NOW + 60000, NULL, NULL);
	ASSERT(w == NULL);
	st = stats(c);
	ASSERT_EQ(st.history, 0);
	ASSERT_EQ(st.watermark, NOW - 1000 + 10);
	ASSERT_EQ(add1(c, E("contact.deletion", 9, NOW - 1000 + 10)), 1);
	ASSERT_EQ(add1(c, E("contact.deletion", 10, NOW - 1000 + 11)), 1);
	DRAIN(c, NULL, NULL, "gone contacts 10; read contacts 9");
	changes_free(c);
}

static void test_dedupe_bound(void)
{
	struct changes_opts o = { .max_dedupe = 3, .dedupe_ms = 1000 };
	struct changes *c = make(&o);
	struct wh_event ev[5];
	struct changes_stats st;

	for (int i = 0; i < 5; i++)
		ev[i] = prop("contact", 1, NOW - 100 + i, "p");
	changes_add(c, ev, 5, NOW);
	st = stats(c);
	ASSERT_EQ(st.dedupe, 3);
	/* again, newest first: 3 duplicates; the 2 forgotten are no longer
	 * duplicates, only old news, coalesced into the pending read */
	{
		struct wh_event rev[5];

		for (int i = 0; i < 5; i++)
			rev[i] = ev[4 - i];
		changes_add(c, rev, 5, NOW);
	}
	st = stats(c);
	ASSERT_EQ(st.duplicates, 3);
	ASSERT_EQ(st.applied, 5 + 2);
	DRAIN(c, NULL, NULL, "read contacts 1");
	/* and by age */
	changes_add(c, ev + 4, 1, NOW + 999);
	st = stats(c);
	ASSERT_EQ(st.duplicates, 4);
	changes_add(c, ev + 4, 1, NOW + 1000 + 999);
	st = stats(c);
	ASSERT_EQ(st.duplicates, 4);
	ASSERT_EQ(st.dedupe, 1);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	changes_free(c);
}

/* ---- retry, due ------------------------------------------------------------------------ */

static void test_retry(void)
{
	struct changes *c = make(NULL);
	struct changes_work *w;
	struct held h = { .updated = INT64_MAX };
	struct changes_stats st;

	add1(c, prop("contact", 1, NOW - 100, "p"));
	add1(c, prop("contact", 2, NOW - 100, "p"));
	add1(c, prop("contact", 3, NOW - 100, "p"));
	add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 100));
	w = changes_drain(c, NOW, NULL, NULL);
	ASSERT_EQ(w->n_jobs, 3);
	/* meanwhile 2 was deleted */
	add1(c, E("contact.deletion", 2, NOW - 50));
	for (size_t i = 0; i < w->n_jobs; i++)
		changes_retry(c, &w->jobs[i], NOW);
	changes_work_free(w);
	/* a retried read is read whatever the cache claims */
	DRAIN(c, held_cb, &h, "gone contacts 2; read contacts 1,3; "
	      "assoc contacts>companies 1; assoc companies>contacts 2");
	ASSERT_EQ(h.calls, 0);
	st = stats(c);
	ASSERT_EQ(st.retried, 5);

	/* the read failed, and meanwhile the record's deletion went out: the
	 * retry does not bring it back */
	add1(c, prop("contact", 5, NOW - 40, "p"));
	w = changes_drain(c, NOW, NULL, NULL);
	add1(c, E("contact.deletion", 5, NOW - 30));
	DRAIN(c, NULL, NULL, "gone contacts 5");
	changes_retry(c, &w->jobs[0], NOW);
	changes_work_free(w);
	ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);

	/* a retried record that is pending again: still one read, and read
	 * whatever the cache claims */
	add1(c, prop("contact", 6, NOW - 40, "p"));
	w = changes_drain(c, NOW, NULL, NULL);
	add1(c, prop("contact", 6, NOW - 20, "p"));
	changes_retry(c, &w->jobs[0], NOW);
	changes_work_free(w);
	h.calls = 0;
	DRAIN(c, held_cb, &h, "read contacts 6");
	ASSERT_EQ(h.calls, 0);
	/* an ASSOC job without its other type is not a job */
	{
		uint64_t ids[] = { 1 };
		struct changes_job j = { .kind = CHANGES_ASSOC, .type = CONTACTS, .n = 1, .ids = ids };

		changes_retry(c, &j, NOW);
		ASSERT(changes_drain(c, NOW, NULL, NULL) == NULL);
	}

	/* a retried id the history forgot: read */
	{
		uint64_t ids[] = { 77 };
		struct changes_job j = { .kind = CHANGES_READ, .type = CONTACTS, .n = 1, .ids = ids };

		changes_retry(c, &j, NOW);
		j.kind = CHANGES_GONE; /* needs no call: ignored */
		changes_retry(c, &j, NOW);
	}
	DRAIN(c, NULL, NULL, "read contacts 77");
	changes_free(c);

	/* retried past the pending bound: the type's flag instead */
	{
		struct changes_opts o = { .max_pending = 1 };
		uint64_t ids[] = { 1, 2 };
		struct changes_job j = { .kind = CHANGES_READ, .type = DEALS, .n = 2, .ids = ids };

		c = make(&o);
		changes_retry(c, &j, NOW);
		w = changes_drain(c, NOW, NULL, NULL);
		{
			g_autofree char *d = describe(w);

			ASSERT_STR(d, "read deals 1");
		}
		ASSERT_EQ(w->flags[DEALS->idx], CHANGES_REFRESH);
		changes_work_free(w);
		changes_free(c);
	}
}

static void test_due(void)
{
	struct changes_opts o = { .linger_ms = 200 };
	struct changes *c = make(&o);

	ASSERT_EQ(changes_due(c, NOW), -1);
	add1(c, prop("contact", 1, NOW - 10, "p"));
	ASSERT_EQ(changes_due(c, NOW), 200);
	ASSERT_EQ(changes_due(c, NOW + 150), 50);
	add1(c, prop("contact", 2, NOW - 10, "p")); /* does not restart the wait */
	ASSERT_EQ(changes_due(c, NOW + 150), 50);
	ASSERT_EQ(changes_due(c, NOW + 250), 0);
	changes_work_free(changes_drain(c, NOW, NULL, NULL));
	ASSERT_EQ(changes_due(c, NOW), -1);
	/* a deletion shows at once: no reads to batch it with */
	add1(c, E("contact.deletion", 1, NOW - 5));
	ASSERT_EQ(changes_due(c, NOW), 0);
	changes_work_free(changes_drain(c, NOW, NULL, NULL));
	/* association maps linger too */
	add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 1));
	ASSERT_EQ(changes_due(c, NOW + 10), 190);
	changes_free(c);

	/* a flag raised: at once (bound 4, one pending, the rest overflowed
	 * by association maps) */
	o.max_assoc = 2;
	c = make(&o);
	add1(c, assoc("contact", "CONTACT_TO_COMPANY", 1, 2, NOW - 1));
	ASSERT_EQ(changes_due(c, NOW), 0); /* half the maps' bound */
	changes_work_free(changes_drain(c, NOW, NULL, NULL));
	o.max_assoc = 6;
	changes_free(c);
	c = make(&o);
	for (uint64_t i = 1; i <= 4; i++)
		add1(c, assoc("contact", "CONTACT_TO_COMPANY", i, i, NOW - 1));
	ASSERT_EQ(stats(c).overflow, 1);
	ASSERT_EQ(changes_due(c, NOW), 0);
	changes_free(c);
	o.max_assoc = 0;

	/* half the pending bound used: at once, before it overflows */
	o.max_pending = 4;
	c = make(&o);
	add1(c, prop("contact", 1, NOW - 10, "p"));
	ASSERT_EQ(changes_due(c, NOW), 200);
	add1(c, prop("contact", 2, NOW - 10, "p"));
	ASSERT_EQ(changes_due(c, NOW), 0);
	changes_free(c);
	o.max_pending = 0;

	/* linger < 0: at once */
	o.linger_ms = -1;
	c = make(&o);
	add1(c, prop("contact", 1, NOW - 10, "p"));
	ASSERT_EQ(changes_due(c, NOW), 0);
	changes_free(c);
}

/* ---- clocks at their ends ------------------------------------------------------- */

static void test_extreme_clock(void)
{
	struct changes_opts o = { .history_ms = INT64_MAX, .dedupe_ms = INT64_MAX,
				  .linger_ms = INT64_MAX };
	struct changes *c = make(&o);
	struct wh_event e = E("contact.deletion", 1, INT64_MAX - 1);

	/* no overflow in now + 5 min, in aging or in the linger */
	ASSERT_EQ(changes_add(c, &e, 1, INT64_MAX), 1);
	e = E("contact.restore", 1, INT64_MAX);
	ASSERT_EQ(changes_add(c, &e, 1, INT64_MAX - 1), 1);
	ASSERT_EQ(changes_due(c, INT64_MIN), 0);
	changes_work_free(changes_drain(c, INT64_MAX, NULL, NULL));
	ASSERT_EQ(stats(c).history, 1);
	e = E("contact.deletion", 1, INT64_MAX - 2);
	ASSERT_EQ(changes_add(c, &e, 1, INT64_MAX), 0); /* older */
	changes_free(c);

	c = make(&o);
	e = prop("contact", 1, 1, "p");
	ASSERT_EQ(changes_add(c, &e, 1, 0), 1);
	ASSERT_EQ(changes_due(c, 0), INT64_MAX);
	ASSERT_EQ(changes_due(c, INT64_MIN), INT64_MAX);
	ASSERT_EQ(changes_due(c, INT64_MAX), 0);
	changes_free(c);
}

/* ---- threads ------------------------------------------------------------------------------ */

struct feeder {
	struct changes *c;
	int seed;
};

static gpointer feed(gpointer p)
{
	struct feeder *f = p;
	GRand *r = g_rand_new_with_seed((guint32)f->seed);

	for (int round = 0; round < 200; round++) {
		struct wh_event ev[20];

		for (int i = 0; i < 20; i++) {
			uint64_t id = (uint64_t)g_rand_int_range(r, 1, 500);
			int64_t at = NOW - g_rand_int_range(r, 0, 10000);

			switch (g_rand_int_range(r, 0, 4)) {
			case 0: ev[i] = E("contact.deletion", id, at); break;
			case 1: ev[i] = E("contact.restore", id, at); break;
			case 2: ev[i] = assoc("contact", "CONTACT_TO_COMPANY", id, id % 7 + 1, at); break;
			default: ev[i] = prop("contact", id, at, "p"); break;
			}
		}
		changes_add(f->c, ev, 20, NOW);
	}
	g_rand_free(r);
	return NULL;
}

static void test_threads(void)
{
	struct changes_opts o = { .max_pending = 300, .max_history = 200 };
	struct changes *c = make(&o);
	struct feeder f[2] = { { c, 1 }, { c, 2 } };
	GThread *t[2];
	struct changes_stats st;
	size_t drained = 0;

	t[0] = g_thread_new("feed0", feed, &f[0]);
	t[1] = g_thread_new("feed1", feed, &f[1]);
	for (int i = 0; i < 200; i++) {
		struct changes_work *w = changes_drain(c, NOW, NULL, NULL);
		g_autofree char *d = describe(w);

		drained += w ? w->n_jobs : 0;
		changes_work_free(w);
		st = stats(c);
		ASSERT_LE(st.pending, 300);
		ASSERT_LE(st.history, 200);
	}
	g_thread_join(t[0]);
	g_thread_join(t[1]);
	changes_work_free(changes_drain(c, NOW, NULL, NULL));
	st = stats(c);
	ASSERT_EQ(st.received, 2 * 200 * 20);
	ASSERT_EQ(st.pending, 0);
	(void)drained;
	changes_free(c);
}

int main(void)
{
	registry_init();
	RUN(test_each_kind);
	RUN(test_merge);
	RUN(test_association);
	RUN(test_duplicates);
	RUN(test_order);
	RUN(test_held);
	RUN(test_ignored);
	RUN(test_coalescing);
	RUN(test_pending_bound);
	RUN(test_history_bound);
	RUN(test_dedupe_bound);
	RUN(test_retry);
	RUN(test_due);
	RUN(test_extreme_clock);
	RUN(test_threads);
	objtypes_free(reg);
	return 0;
}
