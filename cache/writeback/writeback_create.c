/* writeback_create.c - sending queued creates: records of a type that upserts
 * on email (contacts) with an email by batch/upsert on email, the rest by batch/create with
 * objectWriteTraceId; and creates whose answer was lost (in doubt), looked up
 * by search before anything is sent again. See writeback_int.h.
 */
#include "cache/writeback/writeback_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cache/cache_team.h"
#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "cache/model/search_req.h"
#include "cache/writeback/journal.h"
#include "client/log.h"

#define INDEX_MARGIN_MS 1000       /* added to index_delay_ms before an in-doubt search */
#define CLOCK_SKEW_MS (5 * 60000)  /* createdate window of an in-doubt search */
#define IN_DOUBT_PER_PASS 20
#define LOOKUP_GROUPS 5            /* in-doubt creates per search: filter groups (HubSpot: <= 5) */
#define LOOKUP_FILTERS 18          /* filters per search (HubSpot: <= 18, <= 6 per group) */
#define LOOKUP_LIMIT 100

/* --- associations of creates ------------------------------------------------------ */

/* The associations a create carries (kept in its row's base), or NULL. Borrowed. */
static json_object *create_assocs(const struct jop *op)
{
	json_object *a;

	if (op->kind != JOP_CREATE || !op->base ||
	    !json_object_object_get_ex(op->base, "associations", &a) ||
	    !json_object_is_type(a, json_type_array) || json_object_array_length(a) == 0)
		return NULL;
	return a;
}

/* The associations as a create input carries them ({to, types} each), or NULL. */
static json_object *api_assocs(const struct jop *op)
{
	json_object *a = create_assocs(op), *out;

	if (!a)
		return NULL;
	out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i), *o = json_object_new_object();

		json_object_object_add(o, "to", json_object_get(json_object_object_get(e, "to")));
		json_object_object_add(o, "types", json_object_get(json_object_object_get(e, "types")));
		json_object_array_add(out, o);
	}
	return out;
}

/* Entry i of op's associations: its type in this mount and record id; false
 * if either is unknown (a type the mount does not show: left out). */
static bool assoc_at(struct writeback *wb, json_object *a, size_t i, const struct objtype **to,
		     uint64_t *to_id)
{
	json_object *e = json_object_array_get_idx(a, i), *t = NULL;
	const char *id;

	*to = objtypes_by_id(wb->types, json_util_field(e, "toObjectTypeId"));
	json_object_object_get_ex(e, "to", &t);
	id = json_util_field(t, "id");
	return *to && id && record_parse_id(id, strlen(id), to_id) == 0;
}

int wb_create_assocs_queue(struct writeback *wb, const struct objtype *type, const struct jop *op,
			   uint64_t xid, int64_t now)
{
	json_object *a = create_assocs(op);
	const struct objtype *to;
	uint64_t to_id;
	int rc = 0;

	for (size_t i = 0; rc == 0 && a && i < json_object_array_length(a); i++)
		if (assoc_at(wb, a, i, &to, &to_id))
			rc = journal_add_assoc(wb->j, true, type->id, xid, to->id, to_id, now, NULL);
	return rc;
}

void wb_create_assocs_note(struct writeback *wb, const struct objtype *type, const struct jop *op,
			   uint64_t xid)
{
	json_object *a = create_assocs(op);
	const struct objtype *to;
	uint64_t to_id;

	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		if (assoc_at(wb, a, i, &to, &to_id))
			cache_assoc_note(wb->c, type, xid, to, to_id, true);
}

/* .hubfs/rejected/ for a create HubSpot refused: its properties and the
 * associations it carried, as a file that can go back into _new/. */
static void reject_create(struct writeback *wb, const struct objtype *type, const struct jop *op)
{
	json_object *a = api_assocs(op), *server = NULL;

	if (a) {
		server = json_object_new_object();
		json_object_object_add(server, "associations", a);
	}
	wb_reject(wb, type, 0, op->key, server, op->props, NULL);
	json_object_put(server);
}

/* --- creates ---------------------------------------------------------------------- */

static bool create_by_upsert(const struct objtype *type, json_object *props)
{
	return (type->flags & OTF_UPSERT_EMAIL) && *wb_prop_val(props, "email");
}

bool wb_create_by_upsert(struct writeback *wb, const struct jop *op)
{
	const struct objtype *t = wb_type_of(wb, op);

	return t && create_by_upsert(t, op->props);
}

void wb_create_found(struct writeback *wb, const struct objtype *type, const char *key,
		     const char *id)
{
	uint64_t xid;

	log_notice("writeback: in-doubt create %s/_new/%s had landed as %s", type->name, key,
		   id);
	if (wb->hooks.created)
		wb->hooks.created(wb->hooks.ud, type, key, id);
	/* Published as a create whose answer came is: the team's listings gain
	 * it now, not at their next refresh. */
	if (record_parse_id(id, strlen(id), &xid) == 0)
		cache_team_landed(wb->c, type, xid);
}

/* Lock held. Wall time an in-doubt operation may be looked up (0 = now). A
 * create found by search waits for the indexing delay after the latest
 * moment it can have been applied (when it was marked in doubt); the others
 * are read by id or email, which shows a write at once. */
int64_t wb_lookup_due(struct writeback *wb, const struct jop *op)
{
	if (op->kind != JOP_CREATE || wb_create_by_upsert(wb, op))
		return 0;
	return op->updated_ms + wb->index_delay_ms + INDEX_MARGIN_MS;
}

/* Lock held. Take up to 100 pending creates of a type, in flight (on disk)
 * before anything is sent. A second create of an email already taken waits
 * for the next batch (where the upsert finds the first). */
static int take_creates(struct writeback *wb, const struct objtype *type, GPtrArray *out)
{
	GPtrArray *rows = NULL;
	GHashTable *emails;
	int rc;

	if (!wb_take_ok(wb, type))
		return 0;
	rc = journal_list(wb->j, JS_MASK(JS_PENDING), JOP_CREATE, type->id, 0, TAKE_WINDOW, &rows);
	if (rc)
		return rc;
	emails = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; i < rows->len && out->len < BATCH_MAX; i++) {
		struct jop *op = rows->pdata[i];

		if (create_by_upsert(type, op->props)) {
			char *low = g_utf8_strdown(wb_prop_val(op->props, "email"), -1);

			if (!g_hash_table_add(emails, low))
				continue;
		}
		g_ptr_array_add(out, op);
		rows->pdata[i] = NULL;
	}
	g_hash_table_destroy(emails);
	g_ptr_array_unref(rows);
	return out->len ? wb_mark_in_flight(wb, out) : 0;
}

/* "Contact already exists. Existing ID: N" -> N, else 0. */
static uint64_t existing_id(const struct item *it)
{
	const char *p = strstr(it->err.e.message, "Existing ID: ");
	uint64_t id = 0;

	if (!p || strcmp(it->err.e.category, "CONFLICT") != 0)
		return 0;
	p += strlen("Existing ID: ");
	if (record_parse_id(p, strspn(p, "0123456789"), &id) != 0)
		return 0;
	return id;
}

struct cdone {                  /* what to tell after a create settled */
	struct jop *op;
	struct item *it;
	char id[24];                /* created (or found) record id, "" if none */
	bool land;                  /* it->result is a full new record */
};

static void create_items(struct jop *op, struct item *it, bool upsert)
{
	snprintf(it->match, sizeof(it->match), "hubfs-%" PRId64, op->seq);
	it->input = json_object_new_object();
	if (upsert) {
		char *low = g_utf8_strdown(wb_prop_val(op->props, "email"), -1);

		snprintf(it->alt, sizeof(it->alt), "%s", low);
		g_free(low);
		json_object_object_add(it->input, "id",
				       json_object_new_string(wb_prop_val(op->props, "email")));
		json_object_object_add(it->input, "idProperty", json_object_new_string("email"));
	}
	json_object_object_add(it->input, "properties", json_object_get(op->props));
	if (!upsert) {
		json_object *a = api_assocs(op);

		if (a) /* created with the record, in the same call: never orphaned */
			json_object_object_add(it->input, "associations", a);
	}
	json_object_object_add(it->input, "objectWriteTraceId", json_object_new_string(it->match));
}

/* Lock held. A pending create of the same key becomes an update of the record. */
int wb_creates_to_update(struct writeback *wb, const struct objtype *type, const char *key,
			uint64_t id, int64_t now)
{
	GPtrArray *rows = NULL;
	int rc = journal_list(wb->j, JS_MASK(JS_PENDING), JOP_CREATE, type->id, 0, 0, &rows);

	for (guint i = 0; rc == 0 && i < rows->len; i++) {
		struct jop *op = rows->pdata[i];
		json_object *nob = json_object_new_object();

		if (g_strcmp0(op->key, key) == 0) {
			rc = journal_add_update(wb->j, type->id, id, op->props, nob, 0, now, NULL);
			if (rc == 0)
				rc = wb_create_assocs_queue(wb, type, op, id, now);
			if (rc == 0)
				rc = journal_delete(wb->j, op->seq);
		}
		json_object_put(nob);
	}
	if (rows)
		g_ptr_array_unref(rows);
	return rc;
}

/* Lock held, in a transaction. A create HubSpot answered with its record:
 * the row goes, creates of the same key become its updates. */
static int settle_created(struct writeback *wb, const struct objtype *type, struct cdone *d,
			  int64_t now)
{
	const char *id = json_util_field(d->it->result, "id");
	json_object *nv;
	uint64_t xid;
	int rc;

	if (!id) /* 2xx without the record: we cannot say which it is */
		return journal_set_state(wb->j, d->op->seq, JS_IN_DOUBT, NULL, now);
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->land = !(json_object_object_get_ex(d->it->result, "new", &nv) &&
		    !json_object_get_boolean(nv));
	rc = journal_delete(wb->j, d->op->seq);
	if (rc == 0 && record_parse_id(id, strlen(id), &xid) == 0) {
		rc = wb_creates_to_update(wb, type, d->op->key, xid, now);
		/* An upsert carried no associations: they follow it. */
		if (rc == 0 && create_by_upsert(type, d->op->props))
			rc = wb_create_assocs_queue(wb, type, d->op, xid, now);
	}
	return rc;
}

/* Lock held, in a transaction. 409: the record (a contact, by its email)
 * exists already; the create becomes its update. */
static int settle_existing(struct writeback *wb, const struct objtype *type, struct cdone *d,
			   uint64_t xid, int64_t now)
{
	json_object *nob = json_object_new_object();
	int rc;

	snprintf(d->id, sizeof(d->id), "%" PRIu64, xid);
	log_info("writeback: %s/_new/%s: %s; updating it instead", type->name, d->op->key,
		 d->it->err.e.message);
	rc = journal_add_update(wb->j, type->id, xid, d->op->props, nob, 0, now, NULL);
	json_object_put(nob);
	if (rc == 0)
		rc = wb_create_assocs_queue(wb, type, d->op, xid, now);
	if (rc == 0)
		rc = journal_delete(wb->j, d->op->seq);
	return rc;
}

static int settle_creates(struct writeback *wb, const struct objtype *type, struct cdone *d,
			  size_t n)
{
	int64_t now = hs_wall_ms();
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = journal_begin(wb->j);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct item *it = d[i].it;
		uint64_t xid = 0;

		if (it->outcome == OUT_FAILED && (type->flags & OTF_UPSERT_EMAIL))
			xid = existing_id(it);
		if (it->outcome == OUT_OK)
			rc = settle_created(wb, type, &d[i], now);
		else if (xid)
			rc = settle_existing(wb, type, &d[i], xid, now);
		else
			rc = wb_settle_row(wb, d[i].op->seq, it, now);
	}
	wb_journal_done(wb, rc);
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->lock);

	for (size_t i = 0; i < n; i++) {
		struct jop *op = d[i].op;
		struct item *it = d[i].it;

		if (d[i].id[0]) {
			uint64_t xid = 0;

			record_parse_id(d[i].id, strlen(d[i].id), &xid);
			if (it->outcome == OUT_OK && xid) {
				wb_land(wb, type, xid, d[i].land ? it->result : NULL, cache_epoch(wb->c));
				cache_team_landed(wb->c, type, xid); /* the team's listings gain it */
			}
			if (xid)
				wb_create_assocs_note(wb, type, op, xid);
			if (wb->hooks.created)
				wb->hooks.created(wb->hooks.ud, type, op->key, d[i].id);
			log_info("writeback: created %s/_new/%s as %s", type->name, op->key,
				 d[i].id);
		} else if (it->outcome == OUT_FAILED) {
			wb_report(wb, "create", type, 0, op->key, &it->err, NULL);
			reject_create(wb, type, op);
		}
	}
	return 0;
}

int wb_do_creates(struct writeback *wb, const struct objtype *type)
{
	GPtrArray *ops = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	struct item *its = NULL, **up = NULL, **cr = NULL;
	struct cdone *d = NULL;
	size_t nup = 0, ncr = 0;
	int rc;

	pthread_mutex_lock(&wb->lock);
	rc = take_creates(wb, type, ops);
	pthread_mutex_unlock(&wb->lock);
	if (rc < 0)
		wb_backoff(wb, "journal", NULL, rc);
	if (rc < 0 || ops->len == 0)
		goto out;
	its = g_new0(struct item, ops->len);
	up = g_new0(struct item *, ops->len);
	cr = g_new0(struct item *, ops->len);
	d = g_new0(struct cdone, ops->len);
	for (guint i = 0; i < ops->len; i++) {
		struct jop *op = ops->pdata[i];
		bool upsert = create_by_upsert(type, op->props);

		create_items(op, &its[i], upsert);
		if (upsert)
			up[nup++] = &its[i];
		else
			cr[ncr++] = &its[i];
		d[i].op = op;
		d[i].it = &its[i];
	}
	rc = 0;
	if (nup) {
		struct batch b = { .type = type, .verb = "upsert" };

		rc = wb_send_batch(wb, &b, up, nup);
	}
	if (ncr && rc == 0) {
		struct batch b = { .type = type, .verb = "create", .create = true };

		rc = wb_send_batch(wb, &b, cr, ncr);
	}
	settle_creates(wb, type, d, ops->len);
	rc = rc ? -EAGAIN : 1;
out:
	for (guint i = 0; its && i < ops->len; i++)
		wb_item_clear(&its[i]);
	g_free(its);
	g_free(up);
	g_free(cr);
	g_free(d);
	g_ptr_array_unref(ops);
	return rc < 0 ? -EAGAIN : rc;
}

/* --- in-doubt creates ---------------------------------------------------------- */

/* The names an in-doubt create is looked up by: its identifying string
 * properties, else up to three of its properties. Borrowed from op. */
static GPtrArray *lookup_names(const struct objtype *type, const struct jop *op)
{
	GPtrArray *names = g_ptr_array_new();

	for (const char *const *p = type->identity_props; *p; p++)
		if (*wb_prop_val(op->props, *p))
			g_ptr_array_add(names, (gpointer)*p);
	if (names->len == 0) {
		json_object_object_foreach(op->props, k, v) {
			if (names->len < 3 && v && *json_object_get_string(v) &&
			    strcmp(k, type->createdate) != 0)
				g_ptr_array_add(names, k);
		}
	}
	return names;
}

/* One filter group finding op: EQ on names, created no earlier than it was
 * first sent (less clock skew). */
static void lookup_group(json_object *req, const struct objtype *type, const struct jop *op,
			 GPtrArray *names)
{
	json_object *filters = search_req_group(req);

	for (guint i = 0; i < names->len; i++) {
		const char *name = names->pdata[i];

		search_req_filter(filters, name, "EQ", wb_prop_val(op->props, name));
		search_req_props(req, &name, 1);
	}
	if (!*wb_prop_val(op->props, type->createdate)) {
		char since[32];

		snprintf(since, sizeof(since), "%" PRId64,
			 (op->sent_ms > 0 ? op->sent_ms : op->created_ms) - CLOCK_SKEW_MS);
		search_req_filter(filters, type->createdate, "GTE", since);
	}
}

/* Does a search result carry op's values of names? EQ is case-insensitive;
 * so is this check. */
static bool lookup_match(json_object *o, const struct jop *op, GPtrArray *names)
{
	bool same = json_util_field(o, "id") != NULL && names->len > 0;

	for (guint i = 0; same && i < names->len; i++) {
		char *a = g_utf8_casefold(wb_prop_val(wb_obj_props(o), names->pdata[i]), -1);
		char *b = g_utf8_casefold(wb_prop_val(op->props, names->pdata[i]), -1);

		same = strcmp(a, b) == 0;
		g_free(a);
		g_free(b);
	}
	return same;
}

/* Look up to LOOKUP_GROUPS in-doubt creates of one type up in one search (one
 * filter group each, OR'ed). ops[0..*n) are looked up; *n is lowered to what
 * fit the filter caps. ids[i] gets the record id of ops[i], "" if not found,
 * or "?" if unsure (more results than one page). 0, or -EAGAIN. */
static int lookup_creates(struct writeback *wb, const struct objtype *type, struct jop **ops,
			  size_t *n, char (*ids)[32])
{
	json_object *req = search_req_new(), *out = NULL, *results = NULL, *paging;
	GPtrArray **names = g_new0(GPtrArray *, *n);
	GHashTable *taken = g_hash_table_new(g_str_hash, g_str_equal);
	size_t k = 0, nfilters = 0;
	struct hs_call call;
	int rc;

	for (; k < *n && k < LOOKUP_GROUPS; k++) {
		size_t nf;

		names[k] = lookup_names(type, ops[k]);
		nf = names[k]->len + 1;
		if (k > 0 && nfilters + nf > LOOKUP_FILTERS) {
			g_ptr_array_free(names[k], TRUE);
			names[k] = NULL;
			break;
		}
		nfilters += nf;
		lookup_group(req, type, ops[k], names[k]);
	}
	*n = k;
	search_req_props(req, &type->createdate, 1);
	search_req_sort(req, type->createdate, true);
	search_req_page(req, LOOKUP_LIMIT, NULL);
	wb_call_init(wb, &call);
	rc = hs_search(wb->hc, &call, type->path, req, &out);
	json_object_put(req);
	if (rc != 0) {
		wb_backoff(wb, "search for in-doubt creates", &call, rc);
		rc = -EAGAIN;
		goto out;
	}
	if (!json_object_object_get_ex(out, "results", &results) ||
	    !json_object_is_type(results, json_type_array))
		results = NULL;
	/* Oldest first; a record answers one create only (two creates of the
	 * same name, one landed: the other is sent again). */
	for (size_t i = 0; i < k; i++) {
		ids[i][0] = '\0';
		for (size_t r = 0; results && !ids[i][0] && r < json_object_array_length(results); r++) {
			json_object *o = json_object_array_get_idx(results, r);

			if (lookup_match(o, ops[i], names[i]) &&
			    !g_hash_table_contains(taken, json_util_field(o, "id"))) {
				snprintf(ids[i], sizeof(ids[i]), "%s", json_util_field(o, "id"));
				g_hash_table_add(taken, (gpointer)json_util_field(o, "id"));
			}
		}
		if (!ids[i][0] && json_object_object_get_ex(out, "paging", &paging))
			snprintf(ids[i], sizeof(ids[i]), "?");
	}
out:
	for (size_t i = 0; i < k; i++)
		if (names[i])
			g_ptr_array_free(names[i], TRUE);
	g_free(names);
	g_hash_table_destroy(taken);
	json_object_put(out);
	return rc;
}

/* Settle in-doubt creates that are due by searching for them (upserts are
 * looked up by email in writeback_doubt.c). Returns how many were settled,
 * or -EAGAIN. */
int wb_do_in_doubt(struct writeback *wb, const struct objtype *type)
{
	GPtrArray *rows = NULL, *due = g_ptr_array_new_with_free_func((GDestroyNotify)jop_free);
	int64_t w = hs_wall_ms();
	int rc = 0, n = 0;

	pthread_mutex_lock(&wb->lock);
	if (journal_list(wb->j, JS_MASK(JS_IN_DOUBT), JOP_CREATE, type->id, 0, 0, &rows) == 0) {
		for (guint i = 0; i < rows->len; i++) {
			struct jop *op = rows->pdata[i];

			if (create_by_upsert(type, op->props))
				continue;
			if (wb_lookup_due(wb, op) <= w && due->len < IN_DOUBT_PER_PASS) {
				g_ptr_array_add(due, op);
				rows->pdata[i] = NULL;
			}
		}
		g_ptr_array_unref(rows);
	}
	pthread_mutex_unlock(&wb->lock);

	for (guint i = 0; i < due->len;) {
		struct jop **ops = (struct jop **)due->pdata + i;
		char ids[LOOKUP_GROUPS][32];
		size_t m = due->len - i;

		rc = lookup_creates(wb, type, ops, &m, ids);
		if (rc)
			break;
		pthread_mutex_lock(&wb->lock);
		rc = journal_begin(wb->j);
		for (size_t x = 0; rc == 0 && x < m; x++) {
			uint64_t xid;

			if (ids[x][0] == '?') /* unsure: looked up again later */
				rc = journal_set_state(wb->j, ops[x]->seq, JS_IN_DOUBT, NULL, hs_wall_ms());
			else if (!ids[x][0])
				rc = journal_set_state(wb->j, ops[x]->seq, JS_PENDING, NULL, hs_wall_ms());
			else if ((rc = journal_delete(wb->j, ops[x]->seq)) == 0 &&
				 record_parse_id(ids[x], strlen(ids[x]), &xid) == 0)
				rc = wb_creates_to_update(wb, type, ops[x]->key, xid, w);
		}
		wb_journal_done(wb, rc);
		pthread_cond_broadcast(&wb->done);
		pthread_mutex_unlock(&wb->lock);
		rc = 0;
		for (size_t x = 0; x < m; x++) {
			const char *key = ops[x]->key;

			if (ids[x][0] == '?') {
				log_warn("writeback: in-doubt create %s/_new/%s: too many look-alikes to"
					 " tell; looking again later", type->name, key);
			} else if (ids[x][0]) {
				uint64_t xid;

				wb_doubt_settled(wb, true, 1);
				/* Its associations landed with it, in the same call. */
				if (record_parse_id(ids[x], strlen(ids[x]), &xid) == 0)
					wb_create_assocs_note(wb, type, ops[x], xid);
				wb_create_found(wb, type, key, ids[x]);
			} else {
				wb_doubt_settled(wb, false, 1);
				log_notice("writeback: in-doubt create %s/_new/%s not found; sending it"
					   " again", type->name, key);
			}
		}
		n += (int)m;
		i += (guint)m;
	}
	g_ptr_array_unref(due);
	return rc ? rc : n;
}
