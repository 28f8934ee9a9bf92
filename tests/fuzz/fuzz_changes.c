/* fuzz_changes - webhook events through the coalescer (cache/model/changes.h):
 * any mix of event kinds, types, ids, times, duplicates, drains between them
 * and retried jobs, with the bounds small or not.
 *
 * Input: a header byte, then 5 bytes per event (at most 400 events):
 *   header  bit 0 max_pending 3; 1 max_assoc 4; 2 max_history 3; 3 max_dedupe 2
 *           (else the defaults); 4 only portal 62515 is ours (else any)
 *   b0      bits 0-2 kind: creation, deletion, propertyChange,
 *           associationChange, merge, restore, privacyDeletion, or
 *           conversation.newMessage; bits 3-5 type: contact, company, deal,
 *           line_item, a custom object (object.* with objectTypeId 2-3465404),
 *           product, "spaceship" (unknown), object.* of an unknown 2-1;
 *           bits 6-7: 0 an event; 1 drain first; 2 a copy of an earlier event
 *           (b1 picks it); 3 retry the last drain's READ and ASSOC jobs first
 *   b1      bits 0-2 objectId (0 = none); bits 3-7 eventId
 *   b2      bits 0-4 occurredAt = base + it (0: none; 31: 10 minutes ahead);
 *           bits 5-7: 7 another portal, 6 another subscription
 *   b3      associationChange: bits 0-2 toObjectId, 3-4 how the other type is
 *           named (associationType "CONTACT_TO_COMPANY", toObjectTypeId,
 *           associationTypeId only, a bogus associationType), 5-7 the other
 *           type (as b0's); merge: bits 0-2 newObjectId, 3-5 primaryObjectId
 *   b4      merge: up to three mergedObjectIds (bits 0-2, 3-5, 6-7; 0 = none)
 *
 * Invariants, for every input:
 *   - the counters add up and the tables stay within their bounds after
 *     every call; every work list has the promised shape (changes_check.h);
 *   - nothing goes backward: a record is handed out as gone only if, among
 *     all valid events received for it so far, the newest say "gone" and none
 *     as new says it exists;
 *   - no work names a record or map that no event (or retried job) named;
 *   - a type flag comes with every drain after an overflow;
 *   - the events given in one go, forward or backward, with a held callback
 *     that depends only on the record, give the same work (order does not
 *     matter within a drain); and that work's gone and read records are what
 *     a reference model says (newest event per record; ties read), its maps
 *     are both sides of every valid association event, its all-maps records
 *     the merges' survivors.
 * With the default bounds and no retries, also across the drains of the
 * input: the last thing handed out for each record is the reference model's
 * verdict over all its events, and every map of a valid event went out.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <json-c/json.h>

#include "cache/model/changes.h"
#include "tests/fuzz/changes_check.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_EVENTS 400
#define PORTAL 62515
#define BASE 1700000000000LL
#define NOW (BASE + 1000)
#define NIDS 8                 /* ids 0..7 */
#define ALL OBJTYPES_MAX       /* "every map" in the reference's map table */

static const char schemas_json[] =
	"{\"results\": [{\"id\": \"3465404\", \"objectTypeId\": \"2-3465404\","
	" \"fullyQualifiedName\": \"p1234_cars\", \"name\": \"cars\","
	" \"labels\": {\"singular\": \"Car\", \"plural\": \"Cars\"},"
	" \"requiredProperties\": [], \"properties\": [{\"name\": \"model\", \"type\": \"string\"}],"
	" \"associations\": [{\"id\": \"75\", \"fromObjectTypeId\": \"2-3465404\","
	"   \"toObjectTypeId\": \"0-1\", \"name\": \"cars_to_contact\"},"
	"  {\"id\": \"76\", \"fromObjectTypeId\": \"0-1\", \"toObjectTypeId\": \"2-3465404\","
	"   \"name\": \"contact_to_cars\"}]}]}";

static const struct {
	const char *object;    /* subscriptionType's object part */
	const char *type_id;   /* objectTypeId sent (object.*) and toObjectTypeId */
	const char *upper;     /* in associationType */
} sel_types[8] = {
	{ "contact", "0-1", "CONTACT" },
	{ "company", "0-2", "COMPANY" },
	{ "deal", "0-3", "DEAL" },
	{ "line_item", "0-8", "LINE_ITEM" },
	{ "object", "2-3465404", "CAR" },
	{ "product", "0-7", "PRODUCT" },
	{ "spaceship", "9-9", "SPACESHIP" },
	{ "object", "2-1", "WIDGET" },
};

static const char *const kind_names[8] = { "creation", "deletion", "propertyChange",
					   "associationChange", "merge", "restore",
					   "privacyDeletion", "newMessage" };

static struct objtypes *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct objtypes_opts o = { 0 };
	json_object *s;
	const char *why = NULL;

	(void)argc;
	(void)argv;
	fuzz_init();
	s = json_tokener_parse(schemas_json);
	if (!s || objtypes_new(&o, s, NULL, &reg, &why) != 0)
		abort();
	json_object_put(s);
	return 0;
}

/* The type a selector names, for the reference (NULL: the mount has none). */
static const struct objtype *sel_type(unsigned sel)
{
	return sel < 6 ? objtypes_by_id(reg, sel_types[sel].type_id) : NULL;
}

/* ---- the reference ------------------------------------------------------------- */

/* What one event means, worked out from how it was made. */
struct meaning {
	bool valid;
	size_t n_rec;
	/* bits: 1 exists, 2 gone; must: a creation, restore or merge survivor */
	struct { unsigned type; uint64_t id; unsigned bits; bool must; } rec[8];
	size_t n_map;
	struct { unsigned from; uint64_t id; unsigned to; } map[2];   /* to == ALL: every map */
	int64_t at;
};

struct input {
	bool bounded, portal_check;
	struct changes_opts opts;
	size_t n;
	struct wh_event ev[MAX_EVENTS];
	struct meaning m[MAX_EVENTS];
	uint8_t op[MAX_EVENTS];
	uint64_t merged[MAX_EVENTS][3];
};

/* The unique type `to` with from's unlabeled association type id, as the
 * module looks it up when only associationTypeId names it. */
static const struct objtype *by_assoc_id(const struct objtype *from, int id)
{
	const struct objtype *hit = NULL;

	for (unsigned i = 0; i < objtypes_count(reg); i++)
		if (objtypes_assoc_type_id(reg, from, objtypes_at(reg, i)) == id) {
			if (hit)
				return NULL;
			hit = objtypes_at(reg, i);
		}
	return hit;
}

static void add_rec(struct meaning *m, const struct objtype *t, uint64_t id, unsigned bits,
		    bool must)
{
	m->rec[m->n_rec].type = t->idx;
	m->rec[m->n_rec].id = id;
	m->rec[m->n_rec].bits = bits;
	m->rec[m->n_rec].must = must;
	m->n_rec++;
}

static void build(struct input *in, size_t i, const uint8_t *b)
{
	struct wh_event *e = &in->ev[i];
	struct meaning *m = &in->m[i];
	unsigned kind = b[0] & 7, sel = (b[0] >> 3) & 7, off = b[2] & 31, misc = b[2] >> 5;
	const struct objtype *t = sel_type(sel);
	bool ok;

	memset(e, 0, sizeof(*e));
	memset(m, 0, sizeof(*m));
	g_snprintf(e->type, sizeof(e->type), "%s.%s", kind == 7 ? "conversation" : sel_types[sel].object,
		   kind_names[kind]);
	g_strlcpy(e->object, kind == 7 ? "conversation" : sel_types[sel].object, sizeof(e->object));
	e->kind = kind == 7 ? WH_OTHER : (enum wh_kind)kind;
	if (strcmp(e->object, "object") == 0)
		g_strlcpy(e->object_type_id, sel_types[sel].type_id, sizeof(e->object_type_id));
	e->object_id = b[1] & 7;
	e->event_id = b[1] >> 3;
	e->occurred_at = off == 0 ? 0 : off == 31 ? NOW + 600000 : BASE + off;
	e->subscription_id = misc == 6 ? 8 : 7;
	e->portal_id = misc == 7 ? 999 : PORTAL;
	m->at = e->occurred_at;

	ok = kind != 7 && t && off != 0 && off != 31 && (!in->portal_check || misc != 7);
	switch (kind) {
	case 0: case 2: case 5:
		m->valid = ok && e->object_id;
		if (m->valid)
			add_rec(m, t, e->object_id, 1, kind != 2);
		break;
	case 1: case 6:
		m->valid = ok && e->object_id;
		if (m->valid)
			add_rec(m, t, e->object_id, 2, false);
		break;
	case 4: {
		uint64_t surv;

		e->new_id = b[3] & 7;
		e->primary_id = (b[3] >> 3) & 7;
		for (int k = 0; k < 3; k++) {
			uint64_t id = (b[4] >> (3 * k)) & (k < 2 ? 7 : 3);

			if (id)
				in->merged[i][e->n_merged++] = id;
		}
		e->merged_ids = e->n_merged ? in->merged[i] : NULL;
		surv = e->new_id ? e->new_id : e->primary_id ? e->primary_id : e->object_id;
		m->valid = ok && surv;
		if (!m->valid)
			break;
		add_rec(m, t, surv, 1, true);
		for (size_t k = 0; k < e->n_merged; k++)
			if (e->merged_ids[k] != surv)
				add_rec(m, t, e->merged_ids[k], 2, false);
		if (e->primary_id && e->primary_id != surv)
			add_rec(m, t, e->primary_id, 2, false);
		if (e->object_id && e->object_id != surv && e->object_id != e->primary_id)
			add_rec(m, t, e->object_id, 2, false);
		m->map[0].from = t->idx;
		m->map[0].id = surv;
		m->map[0].to = ALL;
		m->n_map = 1;
		break;
	}
	case 3: {
		unsigned how = (b[3] >> 3) & 3, tsel = b[3] >> 5;
		const struct objtype *to = NULL;

		e->from_id = e->object_id;
		e->to_id = b[3] & 7;
		switch (how) {
		case 0:
			g_snprintf(e->association_type, sizeof(e->association_type), "%s_TO_%s",
				   sel_types[sel].upper, sel_types[tsel].upper);
			/* CAR, SPACESHIP, WIDGET name no type */
			to = tsel < 4 || tsel == 5 ? sel_type(tsel) : NULL;
			break;
		case 1:
			g_strlcpy(e->to_type_id, sel_types[tsel].type_id, sizeof(e->to_type_id));
			to = sel_type(tsel);
			break;
		case 2: {
			int id = t && sel_type(tsel) ? objtypes_assoc_type_id(reg, t, sel_type(tsel)) : 0;

			e->association_type_id = id > 0 ? (uint32_t)id : 4242;
			to = t ? by_assoc_id(t, (int)e->association_type_id) : NULL;
			break;
		}
		default:
			g_strlcpy(e->association_type, "BOGUS", sizeof(e->association_type));
			break;
		}
		m->valid = ok && to && objtypes_associable(reg, t, to) && e->from_id && e->to_id;
		if (m->valid) {
			m->map[0].from = t->idx;
			m->map[0].id = e->from_id;
			m->map[0].to = to->idx;
			m->map[1].from = to->idx;
			m->map[1].id = e->to_id;
			m->map[1].to = t->idx;
			m->n_map = 2;
		}
		break;
	}
	default:
		break;
	}
}

/* Parse the input; false if it holds no event. */
static bool parse(const uint8_t *data, size_t size, struct input *in)
{
	uint8_t h;

	if (size < 1)
		return false;
	h = data[0];
	memset(&in->opts, 0, sizeof(in->opts));
	in->opts.types = reg;
	in->opts.max_pending = h & 1 ? 3 : 0;
	in->opts.max_assoc = h & 2 ? 4 : 0;
	in->opts.max_history = h & 4 ? 3 : 0;
	in->opts.max_dedupe = h & 8 ? 2 : 0;
	in->portal_check = h & 16;
	in->opts.portal_id = in->portal_check ? PORTAL : 0;
	in->bounded = h & 15;
	in->n = 0;
	data++;
	size--;
	for (; size >= 5 && in->n < MAX_EVENTS; data += 5, size -= 5) {
		size_t i = in->n;

		in->op[i] = data[0] >> 6;
		if (in->op[i] == 2) {
			size_t src;

			if (i == 0)
				continue;
			src = data[1] % i;
			in->ev[i] = in->ev[src];
			if (in->ev[src].merged_ids) {
				memcpy(in->merged[i], in->merged[src], sizeof(in->merged[i]));
				in->ev[i].merged_ids = in->merged[i];
			}
			in->m[i] = in->m[src];
		} else {
			build(in, i, data);
		}
		in->n++;
	}
	return in->n > 0;
}

/* Newest valid event per record, and what the events at that time said. */
struct truth {
	int64_t at[OBJTYPES_MAX][NIDS];
	unsigned bits[OBJTYPES_MAX][NIDS];
	bool named[OBJTYPES_MAX][NIDS];           /* by an event or a retried READ */
	bool must[OBJTYPES_MAX][NIDS];            /* by a creation, restore or merge survivor */
	bool map[OBJTYPES_MAX][NIDS][OBJTYPES_MAX + 1]; /* maps named */
};

static void truth_add(struct truth *tr, const struct meaning *m)
{
	if (!m->valid)
		return;
	for (size_t k = 0; k < m->n_rec; k++) {
		unsigned t = m->rec[k].type;
		uint64_t id = m->rec[k].id;

		tr->named[t][id] = true;
		tr->must[t][id] |= m->rec[k].must;
		if (m->at > tr->at[t][id]) {
			tr->at[t][id] = m->at;
			tr->bits[t][id] = m->rec[k].bits;
		} else if (m->at == tr->at[t][id]) {
			tr->bits[t][id] |= m->rec[k].bits;
		}
	}
	for (size_t k = 0; k < m->n_map; k++)
		tr->map[m->map[k].from][m->map[k].id][m->map[k].to] = true;
}

/* No gone record without the newest news saying so; no phantom ids. */
static void check_against(const struct changes_work *w, const struct truth *tr)
{
	for (size_t i = 0; w && i < w->n_jobs; i++) {
		const struct changes_job *j = &w->jobs[i];

		for (size_t k = 0; k < j->n; k++) {
			unsigned t = j->type->idx;
			uint64_t id = j->ids[k];

			FUZZ_CHECK(id < NIDS, "id %" PRIu64 " from nowhere", id);
			switch (j->kind) {
			case CHANGES_GONE:
				FUZZ_CHECK(tr->bits[t][id] == 2,
					   "%s %" PRIu64 " gone, but the newest news (at %" PRId64
					   ") says %u", j->type->name, id, tr->at[t][id], tr->bits[t][id]);
				break;
			case CHANGES_READ:
				FUZZ_CHECK(tr->named[t][id], "read of %s %" PRIu64 " that nothing named",
					   j->type->name, id);
				break;
			case CHANGES_ASSOC_ALL:
				FUZZ_CHECK(tr->map[t][id][ALL], "all maps of %s %" PRIu64 " unasked",
					   j->type->name, id);
				break;
			case CHANGES_ASSOC:
				FUZZ_CHECK(tr->map[t][id][j->to->idx], "map %s %" PRIu64 " -> %s unasked",
					   j->type->name, id, j->to->name);
				break;
			}
		}
	}
}

/* ---- runs ---------------------------------------------------------------------- */

static int64_t held_det(void *ud, const struct objtype *t, uint64_t id)
{
	(void)ud;
	return BASE + (int64_t)((t->idx * 7 + id * 13) % 32);
}

struct run {
	struct changes *c;
	struct changes_bounds b;
	struct truth *tr;
	struct changes_work *last;    /* the last drain's work, for retries */
	uint64_t overflow_seen;
	/* the last verdict handed out per record: 0 none, 1 read, 2 gone */
	uint8_t verdict[OBJTYPES_MAX][NIDS];
	bool map_out[OBJTYPES_MAX][NIDS][OBJTYPES_MAX + 1];
};

static void drain_step(struct run *r)
{
	struct changes_work *w = changes_drain(r->c, NOW, NULL, NULL);
	struct changes_stats st = changes_check_stats(r->c, &r->b);

	changes_check_work(w, reg);
	check_against(w, r->tr);
	if (st.overflow > r->overflow_seen) {
		bool flag = false;

		for (size_t t = 0; w && t < OBJTYPES_MAX; t++)
			flag |= w->flags[t] != 0;
		FUZZ_CHECK(flag, "%" PRIu64 " overflowed, no flag raised",
			   st.overflow - r->overflow_seen);
		r->overflow_seen = st.overflow;
	}
	for (size_t j = 0; w && j < w->n_jobs; j++) {
		const struct changes_job *jb = &w->jobs[j];

		for (size_t q = 0; q < jb->n; q++) {
			if (jb->kind == CHANGES_GONE || jb->kind == CHANGES_READ)
				r->verdict[jb->type->idx][jb->ids[q]] = jb->kind == CHANGES_GONE ? 2 : 1;
			else
				r->map_out[jb->type->idx][jb->ids[q]]
					  [jb->kind == CHANGES_ASSOC ? jb->to->idx : ALL] = true;
		}
	}
	changes_work_free(r->last);
	r->last = w;
}

static void retry_step(struct run *r)
{
	for (size_t j = 0; r->last && j < r->last->n_jobs; j++) {
		const struct changes_job *jb = &r->last->jobs[j];

		changes_retry(r->c, jb, NOW);
		for (size_t q = 0; q < jb->n && jb->kind == CHANGES_READ; q++)
			r->tr->named[jb->type->idx][jb->ids[q]] = true;
	}
	changes_check_stats(r->c, &r->b);
}

/* The events as the input says: in segments between markers, each segment
 * in one changes_add; a drain or a retry where marked, a drain at the end. */
static void run_as_given(const struct input *in, struct truth *tr)
{
	static struct run r;
	bool retried = false;
	size_t i = 0;

	memset(&r, 0, sizeof(r));
	r.tr = tr;
	r.c = changes_new(&in->opts);
	FUZZ_CHECK(r.c, "changes_new failed");
	changes_bounds_of(&in->opts, &r.b);
	while (i < in->n) {
		size_t k = i + 1;

		if (in->op[i] == 1) {
			drain_step(&r);
		} else if (in->op[i] == 3) {
			retry_step(&r);
			retried = true;
		}
		while (k < in->n && (in->op[k] == 0 || in->op[k] == 2))
			k++;
		for (size_t q = i; q < k; q++)
			truth_add(tr, &in->m[q]);
		changes_add(r.c, &in->ev[i], k - i, NOW);
		changes_check_stats(r.c, &r.b);
		i = k;
	}
	drain_step(&r);
	changes_work_free(r.last);
	FUZZ_CHECK(changes_drain(r.c, NOW, NULL, NULL) == NULL, "work left after the last drain");

	if (!in->bounded && !retried) {
		for (unsigned t = 0; t < OBJTYPES_MAX; t++)
			for (uint64_t id = 0; id < NIDS; id++) {
				uint8_t want = !tr->named[t][id] ? 0 : tr->bits[t][id] == 2 ? 2 : 1;

				FUZZ_CHECK(r.verdict[t][id] == want,
					   "type %u id %" PRIu64 ": last handed out %u, newest news "
					   "(at %" PRId64 ") says %u", t, id, r.verdict[t][id],
					   tr->at[t][id], want);
				for (unsigned to = 0; to <= ALL; to++)
					FUZZ_CHECK(r.map_out[t][id][to] == tr->map[t][id][to],
						   "map %u/%" PRIu64 " -> %u: out %d, asked %d", t, id, to,
						   r.map_out[t][id][to], tr->map[t][id][to]);
			}
	}
	changes_free(r.c);
}

/* All events in one changes_add, in the given order or reversed, then one
 * drain with held (or none). */
static struct changes_work *run_at_once(const struct input *in, bool reverse, bool held)
{
	struct changes_opts o = in->opts;
	struct changes *c;
	struct changes_bounds b;
	struct wh_event *ev = g_new(struct wh_event, in->n);
	struct changes_work *w;

	/* the order-independence claim is for what fits the bounds */
	o.max_pending = o.max_assoc = o.max_history = o.max_dedupe = 0;
	c = changes_new(&o);
	changes_bounds_of(&o, &b);
	for (size_t i = 0; i < in->n; i++)
		ev[i] = in->ev[reverse ? in->n - 1 - i : i];
	changes_add(c, ev, in->n, NOW);
	changes_check_stats(c, &b);
	w = changes_drain(c, NOW, held ? held_det : NULL, NULL);
	changes_check_stats(c, &b);
	changes_check_work(w, reg);
	g_free(ev);
	changes_free(c);
	return w;
}

static void check_one_drain(const struct input *in)
{
	static struct truth tr;
	static uint8_t got[OBJTYPES_MAX][NIDS];
	static bool maps[OBJTYPES_MAX][NIDS][OBJTYPES_MAX + 1];
	struct changes_work *fw = run_at_once(in, false, true), *bw = run_at_once(in, true, true);
	struct changes_work *w = run_at_once(in, false, false);
	g_autofree char *ft = changes_work_text(fw), *bt = changes_work_text(bw);

	FUZZ_CHECK(strcmp(ft, bt) == 0, "order matters:\n  forward:  %s\n  backward: %s", ft, bt);
	memset(&tr, 0, sizeof(tr));
	memset(got, 0, sizeof(got));
	memset(maps, 0, sizeof(maps));
	for (size_t i = 0; i < in->n; i++)
		truth_add(&tr, &in->m[i]);
	check_against(w, &tr);
	check_against(fw, &tr);
	/* With held: exactly the reads of records that only changed (no
	 * creation, restore, merge, deletion), no newer than the copy, left out. */
	for (size_t j = 0; fw && j < fw->n_jobs; j++) {
		const struct changes_job *jb = &fw->jobs[j];

		for (size_t q = 0; q < jb->n && jb->kind == CHANGES_READ; q++)
			got[jb->type->idx][jb->ids[q]] = 1;
	}
	for (unsigned t = 0; t < objtypes_count(reg); t++)
		for (uint64_t id = 1; id < NIDS; id++) {
			bool read = tr.named[t][id] && tr.bits[t][id] != 2;
			bool skip = tr.bits[t][id] == 1 && !tr.must[t][id] &&
				    held_det(NULL, objtypes_at(reg, t), id) >= tr.at[t][id];

			FUZZ_CHECK(got[t][id] == (read && !skip),
				   "held: type %u id %" PRIu64 " read %u, want %d (at %" PRId64
				   ", bits %u, must %d)", t, id, got[t][id], read && !skip, tr.at[t][id],
				   tr.bits[t][id], tr.must[t][id]);
		}
	memset(got, 0, sizeof(got));
	for (size_t j = 0; w && j < w->n_jobs; j++) {
		const struct changes_job *jb = &w->jobs[j];

		for (size_t q = 0; q < jb->n; q++) {
			if (jb->kind == CHANGES_GONE || jb->kind == CHANGES_READ)
				got[jb->type->idx][jb->ids[q]] = jb->kind == CHANGES_GONE ? 2 : 1;
			else
				maps[jb->type->idx][jb->ids[q]][jb->kind == CHANGES_ASSOC ? jb->to->idx : ALL] =
					true;
		}
	}
	for (unsigned t = 0; t < OBJTYPES_MAX; t++)
		for (uint64_t id = 0; id < NIDS; id++) {
			uint8_t want = !tr.named[t][id] ? 0 : tr.bits[t][id] == 2 ? 2 : 1;

			FUZZ_CHECK(got[t][id] == want, "one drain: type %u id %" PRIu64 " %u, want %u",
				   t, id, got[t][id], want);
			for (unsigned to = 0; to <= ALL; to++)
				FUZZ_CHECK(maps[t][id][to] == tr.map[t][id][to],
					   "one drain: map %u/%" PRIu64 " -> %u: %d, want %d", t, id, to,
					   maps[t][id][to], tr.map[t][id][to]);
		}
	changes_work_free(fw);
	changes_work_free(bw);
	changes_work_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct input in;
	static struct truth tr;

	if (!parse(data, size, &in))
		return 0;
	memset(&tr, 0, sizeof(tr));
	run_as_given(&in, &tr);
	check_one_drain(&in);
	return 0;
}
