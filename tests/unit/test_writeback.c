/* writeback: batching, coalescing, conflicts, lifecycle stages, partial
 * failures, creates (upsert, in doubt), transient faults, archives and
 * associations — against the sandbox (started on port 0). API calls are
 * counted from the writeback client's own per-endpoint statistics; the
 * sandbox's control API (another client) plays the other user and checks what
 * landed. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "cache/cache.h"
#include "cache/writeback/journal.h"
#include "cache/writeback/writeback.h"
#include "client/hubspot.h"
#include "client/log.h"
#include "tests/unit/sandbox.h"
#include "tests/unit/test.h"
#include "tests/unit/types.h"

#define url sandbox_url
static char *tmp;
static struct hs_client *ctl_hc; /* control API and checks: "another client" */


static int64_t dl(void)
{
	return hs_now_ms() + 30000;
}

/* A request as the other client (control API, or the API itself). */
static json_object *req(const char *method, const char *path, const char *body)
{
	json_object *b = body ? json_tokener_parse(body) : NULL, *out = NULL;
	struct hs_call call = { .prio = RL_PRIO_USER, .deadline_ms = dl() };
	int rc;

	ASSERT(!body || b);
	rc = hs_request(ctl_hc, &call, method, path, b, &out);
	if (rc)
		FAIL("%s %s: %d %s", method, path, rc, call.err.message);
	json_object_put(b);
	return out;
}

static void ctl(const char *method, const char *path, const char *body)
{
	json_object_put(req(method, path, body));
}

/* The stored value of a property (raw control view), g_free'd by the caller;
 * NULL when unset. */
static char *server_prop(const char *type, uint64_t id, const char *prop)
{
	char path[128];
	json_object *o, *p, *v;
	char *s = NULL;

	snprintf(path, sizeof(path), "/__sandbox/objects/%s/%" PRIu64, type, id);
	o = req("GET", path, NULL);
	if (json_object_object_get_ex(o, "properties", &p) && json_object_object_get_ex(p, prop, &v) && v)
		s = g_strdup(json_object_get_string(v));
	json_object_put(o);
	return s;
}

static void set_prop(const char *type, uint64_t id, const char *prop, const char *value,
		     bool validate)
{
	char path[128], *body;

	snprintf(path, sizeof(path), "/__sandbox/objects/%s/%" PRIu64, type, id);
	body = g_strdup_printf("{\"properties\": {\"%s\": \"%s\"}, \"validate\": %s}", prop, value,
			       validate ? "true" : "false");
	ctl("PATCH", path, body);
	g_free(body);
}

/* Records of a type whose prop equals value (search after an index flush). */
static int64_t count_eq(const char *type, const char *prop, const char *value)
{
	char path[96], *body;
	json_object *o;
	int64_t n;

	ctl("POST", "/__sandbox/index/flush", NULL);
	snprintf(path, sizeof(path), "/crm/v3/objects/%s/search", type);
	body = g_strdup_printf("{\"filterGroups\": [{\"filters\": [{\"propertyName\": \"%s\","
			       " \"operator\": \"EQ\", \"value\": \"%s\"}]}], \"limit\": 10}",
			       prop, value);
	o = req("POST", path, body);
	n = json_object_get_int64(json_object_object_get(o, "total"));
	json_object_put(o);
	g_free(body);
	return n;
}

static void fault(const char *body)
{
	ctl("POST", "/__sandbox/faults", body);
}

/* --- hooks ------------------------------------------------------------------ */

struct seen {
	pthread_mutex_t lock;
	GHashTable *created;        /* "type/key" -> id */
	GPtrArray *errors;          /* json texts */
	GPtrArray *rejected;        /* "name\ntext" */
};

static struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_created(void *ud, const struct objtype *type, const char *key, const char *id)
{
	pthread_mutex_lock(&seen.lock);
	g_hash_table_insert(seen.created, g_strdup_printf("%s/%s", type->name, key),
			    g_strdup(id));
	pthread_mutex_unlock(&seen.lock);
}

static void on_error(void *ud, json_object *line)
{
	pthread_mutex_lock(&seen.lock);
	g_ptr_array_add(seen.errors, g_strdup(json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)));
	pthread_mutex_unlock(&seen.lock);
}

static void on_rejected(void *ud, const char *name, const char *text, size_t len)
{
	pthread_mutex_lock(&seen.lock);
	g_ptr_array_add(seen.rejected, g_strdup_printf("%s\n%.*s", name, (int)len, text));
	pthread_mutex_unlock(&seen.lock);
}

static void seen_reset(void)
{
	pthread_mutex_lock(&seen.lock);
	if (seen.created) {
		g_hash_table_destroy(seen.created);
		g_ptr_array_unref(seen.errors);
		g_ptr_array_unref(seen.rejected);
	}
	seen.created = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	seen.errors = g_ptr_array_new_with_free_func(g_free);
	seen.rejected = g_ptr_array_new_with_free_func(g_free);
	pthread_mutex_unlock(&seen.lock);
}

/* The id a create key became, g_free'd by the caller; NULL if none. */
static char *created_id(const char *type, const char *key)
{
	char *k = g_strdup_printf("%s/%s", type, key), *id;

	pthread_mutex_lock(&seen.lock);
	id = g_strdup(g_hash_table_lookup(seen.created, k));
	pthread_mutex_unlock(&seen.lock);
	g_free(k);
	return id;
}

/* Number of error lines (or rejected files) containing all of the needles. */
static unsigned seen_count(GPtrArray *a, const char *n1, const char *n2)
{
	unsigned n = 0;

	pthread_mutex_lock(&seen.lock);
	for (guint i = 0; i < a->len; i++)
		if (strstr(a->pdata[i], n1) && (!n2 || strstr(a->pdata[i], n2)))
			n++;
	pthread_mutex_unlock(&seen.lock);
	return n;
}

/* --- fixture ------------------------------------------------------------------ */

struct fx {
	struct hs_client *hc;
	struct cache *c;
	struct writeback *wb;
	char *dir;
};

static void fx_open(struct fx *f, const char *name, int64_t delay_ms, int64_t call_timeout_ms)
{
	struct writeback_opts o = { .types = test_types(), .delay_ms = delay_ms, .index_delay_ms = 1000,
				    .call_timeout_ms = call_timeout_ms };
	struct writeback_hooks h = { .created = on_created, .error = on_error,
				     .rejected = on_rejected };
	struct cache_opts co = { .ttl_ms = 60000 };

	if (!f->dir)
		f->dir = g_build_filename(tmp, name, NULL);
	o.state_dir = f->dir;
	f->hc = sandbox_client(0);
	f->c = cache_new(f->hc, test_types(), &co, NULL);
	ASSERT(f->c != NULL);
	ASSERT_EQ(writeback_new(f->hc, f->c, &o, &h, &f->wb), 0);
}

static void fx_close(struct fx *f, int64_t drain_ms)
{
	writeback_free(f->wb, drain_ms);
	cache_free(f->c);
	hs_client_free(f->hc);
	f->wb = NULL;
	f->c = NULL;
	f->hc = NULL;
}

static void fx_done(struct fx *f)
{
	g_free(f->dir);
	f->dir = NULL;
}

static int sync_report(struct fx *f, char **report)
{
	return writeback_sync(f->wb, hs_now_ms() + 40000, report);
}

static void sync_ok(struct fx *f)
{
	char *report = NULL;
	int rc = sync_report(f, &report);

	if (rc != 0)
		FAIL("sync: %d\n%s", rc, report ? report : "");
	g_free(report);
}

static void queue_update(struct fx *f, const struct objtype *type, uint64_t id,
			 const char *changes, const char *bases, uint64_t epoch)
{
	json_object *c = json_tokener_parse(changes), *b = bases ? json_tokener_parse(bases) : NULL;

	ASSERT(c && (!bases || b));
	ASSERT_EQ(writeback_update(f->wb, type, id, c, b, epoch), 0);
	json_object_put(c);
	json_object_put(b);
}

/* {"prop": "<current server value>"} or {"prop": null}. */
static char *base_of(const char *type, uint64_t id, const char *prop)
{
	char *v = server_prop(type, id, prop), *s;

	s = v ? g_strdup_printf("{\"%s\": \"%s\"}", prop, v) : g_strdup_printf("{\"%s\": null}", prop);
	g_free(v);
	return s;
}

static int64_t queue_count(struct fx *f, const char *state)
{
	json_object *o = json_object_new_object(), *q;
	int64_t n;

	writeback_stats(f->wb, o);
	ASSERT(json_object_object_get_ex(o, "queue", &q));
	n = json_object_get_int64(json_object_object_get(q, state));
	json_object_put(o);
	return n;
}

#define UPD "POST /crm/v3/objects/contacts/batch/update"
#define READ "POST /crm/v3/objects/contacts/batch/read"

/* --- tests ---------------------------------------------------------------------- */

static void test_many_updates(void)
{
	struct fx f = { 0 };
	char *text = NULL;
	size_t len;
	int64_t reads;

	fx_open(&f, "many", 100, 0);
	for (uint64_t id = 1000001; id <= 1000250; id++) {
		char ch[96];

		snprintf(ch, sizeof(ch), "{\"jobtitle\": \"Title %" PRIu64 "\"}", id);
		queue_update(&f, ty(TY_CONTACTS), id, ch, NULL, 0);
	}
	sync_ok(&f);
	fprintf(stderr, "    250 updates: %" PRId64 " batch/update, %" PRId64 " batch/read\n",
		calls(f.hc, UPD), calls(f.hc, READ));
	ASSERT_LE(calls(f.hc, UPD), 3);
	ASSERT_LE(calls(f.hc, READ), 3);
	ASSERT_EQ(queue_count(&f, "pending") + queue_count(&f, "failed") + queue_count(&f, "conflict"), 0);
	for (uint64_t id = 1000001; id <= 1000250; id += 13) {
		char want[64], *v = server_prop("contacts", id, "jobtitle");

		snprintf(want, sizeof(want), "Title %" PRIu64, id);
		ASSERT_STR(v, want);
		g_free(v);
	}
	{
		char *v = server_prop("contacts", 1000250, "jobtitle");

		ASSERT_STR(v, "Title 1000250");
		g_free(v);
	}
	/* The landed records are in the cache, complete, without another call. */
	reads = calls(f.hc, READ);
	ASSERT_EQ(cache_record_text(f.c, ty(TY_CONTACTS), 1000007, dl(), &text, &len), 0);
	ASSERT(strstr(text, "\"jobtitle\": \"Title 1000007\"") != NULL);
	ASSERT(strstr(text, "\"email\": \"") != NULL);
	g_free(text);
	ASSERT_EQ(calls(f.hc, READ), reads);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000007), "clean");
	fx_close(&f, 1000);
	fx_done(&f);
}

static void test_coalesce(void)
{
	struct fx f = { 0 };
	char *b1 = base_of("contacts", 1000251, "phone"), *v;

	fx_open(&f, "coalesce", 300, 0);
	queue_update(&f, ty(TY_CONTACTS), 1000251, "{\"phone\": \"+1 555 0001\"}", b1, 0);
	queue_update(&f, ty(TY_CONTACTS), 1000251, "{\"jobtitle\": \"Chief Coalescer\"}", NULL, 0);
	queue_update(&f, ty(TY_CONTACTS), 1000251, "{\"phone\": \"+1 555 0002\"}",
		     "{\"phone\": \"+1 555 0001\"}", 0);
	{
		char *q = writeback_queue_text(f.wb, NULL);

		/* One line for the record, later values winning. */
		ASSERT(strstr(q, "pending contacts/1000251 ") == q);
		ASSERT(strchr(q, '\n') == q + strlen(q) - 1);
		ASSERT(strstr(q, " phone=\"+1 555 0002\"") != NULL);
		ASSERT(strstr(q, " jobtitle=\"Chief Coalescer\"") != NULL);
		ASSERT(strstr(q, "0001") == NULL);
		g_free(q);
	}
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000251), "pending");
	sync_ok(&f);
	/* One record, one input, one call: a duplicate id would have been a 400. */
	ASSERT_EQ(calls(f.hc, UPD), 1);
	ASSERT_EQ(calls(f.hc, READ), 1);
	v = server_prop("contacts", 1000251, "phone");
	ASSERT_STR(v, "+1 555 0002");
	g_free(v);
	v = server_prop("contacts", 1000251, "jobtitle");
	ASSERT_STR(v, "Chief Coalescer");
	g_free(v);
	g_free(b1);
	fx_close(&f, 1000);
	fx_done(&f);
}

static void test_conflict(void)
{
	struct fx f = { 0 };
	char *bp = base_of("contacts", 1000252, "phone"), *bj = base_of("contacts", 1000252, "jobtitle");
	char *bases, *report = NULL, *v;

	{
		json_object *a = json_tokener_parse(bp), *b = json_tokener_parse(bj);

		json_object_object_add(a, "jobtitle", json_object_get(json_object_object_get(b, "jobtitle")));
		bases = g_strdup(json_object_to_json_string(a));
		json_object_put(a);
		json_object_put(b);
	}
	seen_reset();
	fx_open(&f, "conflict", 100, 0);
	/* The other client changes phone; we change phone and jobtitle. */
	set_prop("contacts", 1000252, "phone", "+1 555 7777", true);
	queue_update(&f, ty(TY_CONTACTS), 1000252,
		     "{\"phone\": \"+1 555 9999\", \"jobtitle\": \"Head of Conflicts\"}", bases, 0);
	ASSERT_EQ(sync_report(&f, &report), -EIO);
	ASSERT(report && strstr(report, "conflict contacts/1000252 phone=\"+1 555 9999\""));
	g_free(report);
	v = server_prop("contacts", 1000252, "phone");
	ASSERT_STR(v, "+1 555 7777"); /* not overwritten */
	g_free(v);
	v = server_prop("contacts", 1000252, "jobtitle");
	ASSERT_STR(v, "Head of Conflicts"); /* the other change landed */
	g_free(v);
	ASSERT_EQ(seen_count(seen.errors, "\"property\":\"phone\"", "conflict"), 1);
	ASSERT_EQ(seen_count(seen.rejected, "contacts-1000252.json\n", "+1 555 9999"), 1);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000252), "conflict");
	ASSERT_EQ(queue_count(&f, "conflict"), 1);
	/* The cache shows the server's version again. */
	{
		char *text = NULL;
		size_t len;

		ASSERT_EQ(cache_record_text(f.c, ty(TY_CONTACTS), 1000252, dl(), &text, &len), 0);
		ASSERT(strstr(text, "+1 555 7777") != NULL);
		g_free(text);
	}

	/* We change jobtitle while the other client changes phone: both kept. */
	g_free(bj);
	bj = base_of("contacts", 1000253, "jobtitle");
	set_prop("contacts", 1000253, "phone", "+1 555 4242", true);
	queue_update(&f, ty(TY_CONTACTS), 1000253, "{\"jobtitle\": \"Peacekeeper\"}", bj, 0);
	ASSERT_EQ(sync_report(&f, NULL), -EIO); /* still the conflict of 1000252 */
	v = server_prop("contacts", 1000253, "phone");
	ASSERT_STR(v, "+1 555 4242");
	g_free(v);
	v = server_prop("contacts", 1000253, "jobtitle");
	ASSERT_STR(v, "Peacekeeper");
	g_free(v);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000253), "clean");

	/* retry: the user insists; the local value goes over the server's. */
	ASSERT_EQ(writeback_retry(f.wb), 0);
	sync_ok(&f);
	v = server_prop("contacts", 1000252, "phone");
	ASSERT_STR(v, "+1 555 9999");
	g_free(v);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000252), "clean");

	/* A conflict, then the user edits the property again from the server's
	 * version: the new edit supersedes the conflict. */
	set_prop("contacts", 1000253, "phone", "+1 555 1111", true);
	queue_update(&f, ty(TY_CONTACTS), 1000253, "{\"phone\": \"+1 555 2222\"}",
		     "{\"phone\": \"+1 555 4242\"}", 0);
	ASSERT_EQ(sync_report(&f, NULL), -EIO);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000253), "conflict");
	queue_update(&f, ty(TY_CONTACTS), 1000253, "{\"phone\": \"+1 555 3333\"}",
		     "{\"phone\": \"+1 555 1111\"}", 0);
	sync_ok(&f);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000253), "clean");
	v = server_prop("contacts", 1000253, "phone");
	ASSERT_STR(v, "+1 555 3333");
	g_free(v);
	g_free(bp);
	g_free(bj);
	g_free(bases);
	fx_close(&f, 1000);
	fx_done(&f);
}

static void test_lifecycle_backward(void)
{
	struct fx f = { 0 };
	char *v;

	set_prop("contacts", 1000254, "lifecyclestage", "customer", false);
	fx_open(&f, "lifecycle", 100, 0);
	queue_update(&f, ty(TY_CONTACTS), 1000254, "{\"lifecyclestage\": \"lead\", \"jobtitle\": \"Demoted\"}",
		     "{\"lifecyclestage\": \"customer\"}", 0);
	sync_ok(&f);
	v = server_prop("contacts", 1000254, "lifecyclestage");
	ASSERT_STR(v, "lead");
	g_free(v);
	v = server_prop("contacts", 1000254, "jobtitle");
	ASSERT_STR(v, "Demoted");
	g_free(v);
	/* Clear in one batch, set in the next; never a 400. */
	ASSERT_EQ(calls(f.hc, UPD), 2);
	ASSERT_EQ(calls(f.hc, READ), 2);
	/* Forward moves go in one. */
	queue_update(&f, ty(TY_CONTACTS), 1000254, "{\"lifecyclestage\": \"opportunity\"}",
		     "{\"lifecyclestage\": \"lead\"}", 0);
	sync_ok(&f);
	ASSERT_EQ(calls(f.hc, UPD), 3);
	v = server_prop("contacts", 1000254, "lifecyclestage");
	ASSERT_STR(v, "opportunity");
	g_free(v);
	fx_close(&f, 1000);
	fx_done(&f);

	/* A crash after the clearing step: the server has "", the journal still
	 * says customer -> subscriber. That "" is ours, not a conflict. */
	{
		struct jop op = { .kind = JOP_UPDATE, .type = "0-1", .id = 1000254,
				  .state = JS_IN_FLIGHT };
		struct journal *j = NULL;

		f.dir = g_build_filename(tmp, "lifecycle-crash", NULL);
		op.props = json_tokener_parse("{\"lifecyclestage\": \"subscriber\"}");
		op.base = json_tokener_parse("{\"lifecyclestage\": \"opportunity\"}");
		ASSERT_EQ(journal_open(f.dir, g_get_real_time() / 1000, &j), 0);
		ASSERT_EQ(journal_insert(j, &op, g_get_real_time() / 1000, NULL), 0);
		journal_close(j);
		json_object_put(op.props);
		json_object_put(op.base);
		set_prop("contacts", 1000254, "lifecyclestage", "", true);
		fx_open(&f, NULL, 100, 0);
		sync_ok(&f);
		v = server_prop("contacts", 1000254, "lifecyclestage");
		ASSERT_STR(v, "subscriber");
		g_free(v);
		ASSERT_EQ(calls(f.hc, UPD), 1);
		fx_close(&f, 1000);
		fx_done(&f);
	}
}

static void test_bad_record(void)
{
	struct fx f = { 0 };
	char *report = NULL, *v, *text = NULL, *old = server_prop("contacts", 1000257, "favorite_color");
	size_t len;
	uint64_t epoch;
	const struct schema *s;

	seen_reset();
	fx_open(&f, "bad", 100, 0);
	/* The bad record is shown locally (read-your-writes) until rejected. */
	ASSERT_EQ(cache_schema(f.c, ty(TY_CONTACTS), dl(), &s), 0);
	ASSERT_EQ(cache_record_text(f.c, ty(TY_CONTACTS), 1000257, dl(), &text, &len), 0);
	g_free(text);
	epoch = cache_record_put_local(f.c, ty(TY_CONTACTS), 1000257, "local\n", 6, 0);
	for (uint64_t id = 1000255; id <= 1000260; id++)
		queue_update(&f, ty(TY_CONTACTS), id, id == 1000257
			     ? "{\"favorite_color\": \"ultraviolet\", \"jobtitle\": \"Bad\"}"
			     : "{\"jobtitle\": \"Good\"}", NULL, id == 1000257 ? epoch : 0);
	ASSERT_EQ(sync_report(&f, &report), -EIO);
	ASSERT(report && strstr(report, "failed contacts/1000257 "));
	ASSERT(strstr(report, "[VALIDATION_ERROR: "));
	g_free(report);
	for (uint64_t id = 1000255; id <= 1000260; id++) {
		v = server_prop("contacts", id, "jobtitle");
		if (id == 1000257)
			ASSERT(!v || strcmp(v, "Bad") != 0);
		else
			ASSERT_STR(v, "Good");
		g_free(v);
	}
	ASSERT_EQ(calls(f.hc, UPD), 1); /* 207: the bad input named, the rest landed */
	ASSERT_EQ(seen_count(seen.errors, "\"id\":\"1000257\"", "\"category\":\"VALIDATION_ERROR\""), 1);
	ASSERT_EQ(seen_count(seen.errors, "\"message\":\"", "ultraviolet"), 1);
	ASSERT_EQ(seen_count(seen.rejected, "contacts-1000257.json\n", "ultraviolet"), 1);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000257), "failed");
	/* The cached record is the server's version again. */
	ASSERT_EQ(cache_record_text(f.c, ty(TY_CONTACTS), 1000257, dl(), &text, &len), 0);
	ASSERT(strstr(text, "ultraviolet") == NULL);
	ASSERT(strstr(text, "\"id\": \"1000257\"") != NULL);
	g_free(text);
	ASSERT_EQ(writeback_forget(f.wb), 0);
	ASSERT_STR(writeback_record_state(f.wb, ty(TY_CONTACTS), 1000257), "clean");

	/* A whole-batch 400 is bisected: every good record still lands. */
	fault("{\"kind\": \"status\", \"status\": 400, \"count\": 1, \"path\": \"/batch/update$\","
	      " \"body\": \"{\\\"status\\\":\\\"error\\\",\\\"category\\\":\\\"VALIDATION_ERROR\\\","
	      "\\\"message\\\":\\\"injected\\\",\\\"correlationId\\\":\\\"c-1\\\"}\","
	      " \"content_type\": \"application/json\"}");
	for (uint64_t id = 1000255; id <= 1000260; id++)
		queue_update(&f, ty(TY_CONTACTS), id, "{\"jobtitle\": \"Bisected\"}", NULL, 0);
	sync_ok(&f);
	for (uint64_t id = 1000255; id <= 1000260; id++) {
		v = server_prop("contacts", id, "jobtitle");
		ASSERT_STR(v, "Bisected");
		g_free(v);
	}
	ASSERT_EQ(calls(f.hc, UPD), 4); /* 1 + the refused one + its two halves */
	g_free(old);
	fx_close(&f, 1000);
	fx_done(&f);
}

static void test_creates(void)
{
	struct fx f = { 0 };
	json_object *p1 = json_tokener_parse("{\"email\": \"twice@example.com\", \"firstname\": \"Twice\"}");
	json_object *p2 = json_tokener_parse("{\"email\": \"TWICE@example.com\", \"lastname\": \"Again\"}");
	json_object *p3 = json_tokener_parse("{\"name\": \"Fresh Widgets\", \"domain\": \"fresh.example\"}");
	char *a, *b, *c, *v;

	seen_reset();
	fx_open(&f, "creates", 100, 0);
	ASSERT_EQ(writeback_create(f.wb, ty(TY_CONTACTS), "twice.json", p1, NULL), 0);
	ASSERT_EQ(writeback_create(f.wb, ty(TY_COMPANIES), "fresh.json", p3, NULL), 0);
	sync_ok(&f);
	ASSERT_EQ(writeback_create(f.wb, ty(TY_CONTACTS), "again.json", p2, NULL), 0);
	sync_ok(&f);
	a = created_id("contacts", "twice.json");
	b = created_id("contacts", "again.json");
	c = created_id("companies", "fresh.json");
	ASSERT(a && b && c);
	ASSERT_STR(a, b); /* the second create updated the first contact */
	ASSERT_EQ(count_eq("contacts", "email", "twice@example.com"), 1);
	v = server_prop("contacts", g_ascii_strtoull(a, NULL, 10), "lastname");
	ASSERT_STR(v, "Again");
	g_free(v);
	ASSERT_EQ(count_eq("companies", "name", "Fresh Widgets"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/contacts/batch/create"), 0);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/contacts/batch/upsert"), 2);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/companies/batch/create"), 1);

	/* 409 "Contact already exists. Existing ID: N": the create becomes an
	 * update of N. */
	fault("{\"kind\": \"status\", \"status\": 409, \"count\": 1,"
	      " \"path\": \"/contacts/batch/upsert$\", \"content_type\": \"application/json\","
	      " \"body\": \"{\\\"status\\\":\\\"error\\\",\\\"message\\\":"
	      "\\\"Contact already exists. Existing ID: 1000280\\\",\\\"correlationId\\\":"
	      "\\\"c-409\\\",\\\"category\\\":\\\"CONFLICT\\\"}\"}");
	{
		json_object *p4 = json_tokener_parse("{\"email\": \"exists@example.com\","
						     " \"jobtitle\": \"Existing\"}");

		ASSERT_EQ(writeback_create(f.wb, ty(TY_CONTACTS), "exists.json", p4, NULL), 0);
		json_object_put(p4);
	}
	sync_ok(&f);
	v = created_id("contacts", "exists.json");
	ASSERT_STR(v, "1000280");
	g_free(v);
	v = server_prop("contacts", 1000280, "jobtitle");
	ASSERT_STR(v, "Existing");
	g_free(v);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/contacts/batch/upsert"), 3);
	g_free(a);
	g_free(b);
	g_free(c);
	json_object_put(p1);
	json_object_put(p2);
	json_object_put(p3);
	fx_close(&f, 1000);
	fx_done(&f);
}

/* A journal left by a crash: a create in flight. Found by search = created, no
 * second create; not found = sent once. */
static void test_in_doubt_replay(void)
{
	struct fx f = { .dir = g_build_filename(tmp, "doubt", NULL) };
	struct journal *j = NULL;
	struct jop found = { .kind = JOP_CREATE, .type = "0-2", .key = "doubt.json",
			     .state = JS_IN_FLIGHT, .attempts = 1 };
	struct jop fresh = found, twin = found;
	char *id;
	json_object *o;
	int64_t t0;

	seen_reset();
	found.props = json_tokener_parse("{\"name\": \"Doubtful Inc\", \"city\": \"Oslo\"}");
	fresh.key = "fresh2.json";
	fresh.props = json_tokener_parse("{\"name\": \"Never Sent Ltd\"}");
	ASSERT_EQ(journal_open(f.dir, g_get_real_time() / 1000, &j), 0);
	ASSERT_EQ(journal_insert(j, &found, g_get_real_time() / 1000, NULL), 0);
	ASSERT_EQ(journal_insert(j, &fresh, g_get_real_time() / 1000, NULL), 0);
	/* A second create of the same company, also in flight: one record
	 * answers one create only, so this one is sent. */
	twin.key = "doubt-twin.json";
	twin.props = found.props;
	ASSERT_EQ(journal_insert(j, &twin, g_get_real_time() / 1000, NULL), 0);
	journal_close(j);
	/* The first send had landed before the crash. */
	o = req("POST", "/__sandbox/objects/companies",
		"{\"properties\": {\"name\": \"Doubtful Inc\", \"city\": \"Oslo\"}}");
	id = g_strdup(json_object_get_string(json_object_object_get(o, "id")));
	json_object_put(o);

	t0 = hs_now_ms();
	fx_open(&f, "doubt", 100, 0);
	ASSERT_EQ(queue_count(&f, "in_doubt"), 3);
	sync_ok(&f);
	/* Looked up only after the indexing delay. */
	ASSERT_GE(hs_now_ms() - t0, 1000);
	{
		char *got = created_id("companies", "doubt.json"), *got2 = created_id("companies", "fresh2.json");

		char *got3 = created_id("companies", "doubt-twin.json");

		ASSERT_STR(got, id);
		ASSERT(got2 != NULL);
		ASSERT(got3 != NULL && strcmp(got3, id) != 0);
		g_free(got);
		g_free(got2);
		g_free(got3);
	}
	ASSERT_EQ(count_eq("companies", "name", "Doubtful Inc"), 2);
	ASSERT_EQ(count_eq("companies", "name", "Never Sent Ltd"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/companies/batch/create"), 1);
	/* All three looked up in one search (one filter group each); the two not
	 * found sent in one batch. */
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/companies/search"), 1);
	json_object_put(found.props);
	json_object_put(fresh.props);
	g_free(id);
	fx_close(&f, 1000);
	fx_done(&f);
}

/* The answer to a create is lost (the server applied it): in doubt, looked up,
 * never sent twice. A 503 on a create: in doubt, not found, sent again. */
static void test_in_doubt_live(void)
{
	struct fx f = { 0 };
	json_object *p = json_tokener_parse("{\"subject\": \"Lost answer\", \"hs_pipeline\": \"0\","
					    " \"hs_pipeline_stage\": \"1\"}");
	json_object *q = json_tokener_parse("{\"subject\": \"Refused once\", \"hs_pipeline\": \"0\","
					    " \"hs_pipeline_stage\": \"1\"}");
	char *a, *b;

	seen_reset();
	fx_open(&f, "doubt-live", 100, 0);
	fault("{\"kind\": \"drop_after\", \"count\": 1, \"path\": \"/tickets/batch/create$\"}");
	ASSERT_EQ(writeback_create(f.wb, ty(TY_TICKETS), "lost.json", p, NULL), 0);
	sync_ok(&f);
	a = created_id("tickets", "lost.json");
	ASSERT(a != NULL);
	ASSERT_EQ(count_eq("tickets", "subject", "Lost answer"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/tickets/batch/create"), 1);

	fault("{\"kind\": \"503\", \"count\": 1, \"path\": \"/tickets/batch/create$\"}");
	ASSERT_EQ(writeback_create(f.wb, ty(TY_TICKETS), "refused.json", q, NULL), 0);
	sync_ok(&f);
	b = created_id("tickets", "refused.json");
	ASSERT(b != NULL);
	ASSERT_EQ(count_eq("tickets", "subject", "Refused once"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/tickets/batch/create"), 3);
	g_free(a);
	g_free(b);
	json_object_put(p);
	json_object_put(q);
	fx_close(&f, 1000);
	fx_done(&f);
}

/* Does the sandbox hold the association type/id -> to/to_id? */
static bool server_assoc(const char *type, const char *id, const char *to, const char *to_id)
{
	char path[128];
	json_object *o, *a, *m;
	bool yes;

	snprintf(path, sizeof(path), "/__sandbox/objects/%s/%s", type, id);
	o = req("GET", path, NULL);
	yes = json_object_object_get_ex(o, "associations", &a) &&
	      json_object_object_get_ex(a, to, &m) && json_object_object_get_ex(m, to_id, NULL);
	json_object_put(o);
	return yes;
}

/* Associations ride in the create call itself: a lost answer is looked up,
 * never sent twice; an upsert (which cannot carry them) is followed by the
 * association writes; a create HubSpot refuses keeps them in rejected/. */
static void test_create_assocs(void)
{
	struct fx f = { 0 };
	json_object *t = json_tokener_parse("{\"subject\": \"With its contact\", \"hs_pipeline\": "
					    "\"0\", \"hs_pipeline_stage\": \"1\"}");
	json_object *ta = json_tokener_parse("[{\"toObjectTypeId\": \"0-1\", \"to\": {\"id\": "
					     "\"1000281\"}, \"types\": [{\"associationCategory\": "
					     "\"HUBSPOT_DEFINED\", \"associationTypeId\": 16}]}, "
					     "{\"toObjectTypeId\": \"0-3\", \"to\": {\"id\": "
					     "\"3000002\"}, \"types\": [{\"associationCategory\": "
					     "\"HUBSPOT_DEFINED\", \"associationTypeId\": 28}]}]");
	json_object *c = json_tokener_parse("{\"email\": \"linked@example.com\"}");
	json_object *ca = json_tokener_parse("[{\"toObjectTypeId\": \"0-2\", \"to\": {\"id\": "
					     "\"2000016\"}, \"types\": [{\"associationCategory\": "
					     "\"HUBSPOT_DEFINED\", \"associationTypeId\": 279}]}]");
	json_object *bad = json_tokener_parse("[{\"toObjectTypeId\": \"0-1\", \"to\": {\"id\": "
					      "\"999999999\"}, \"types\": [{\"associationCategory\": "
					      "\"HUBSPOT_DEFINED\", \"associationTypeId\": 16}]}]");
	json_object *unknown = json_tokener_parse("[{\"toObjectTypeId\": \"0-46\", \"to\": {\"id\": "
						  "\"1\"}, \"types\": []}]");
	char *id;

	seen_reset();
	fx_open(&f, "create-assocs", 100, 0);
	/* Only types this mount shows. */
	ASSERT_EQ(writeback_create(f.wb, ty(TY_TICKETS), "x.json", t, unknown), -EINVAL);
	fault("{\"kind\": \"drop_after\", \"count\": 1, \"path\": \"/tickets/batch/create$\"}");
	ASSERT_EQ(writeback_create(f.wb, ty(TY_TICKETS), "linked.json", t, ta), 0);
	sync_ok(&f);
	id = created_id("tickets", "linked.json");
	ASSERT(id != NULL);
	ASSERT_EQ(count_eq("tickets", "subject", "With its contact"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/tickets/batch/create"), 1);
	ASSERT(server_assoc("tickets", id, "contacts", "1000281"));
	ASSERT(server_assoc("tickets", id, "deals", "3000002"));
	ASSERT(server_assoc("contacts", "1000281", "tickets", id));
	/* No association call: they went with the create. */
	ASSERT_EQ(calls(f.hc, "POST /crm/v4/associations/tickets/contacts/batch/associate/default"), 0);
	g_free(id);

	ASSERT_EQ(writeback_create(f.wb, ty(TY_CONTACTS), "linked.json", c, ca), 0);
	sync_ok(&f);
	id = created_id("contacts", "linked.json");
	ASSERT(id != NULL);
	ASSERT(server_assoc("contacts", id, "companies", "2000016"));
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/contacts/batch/upsert"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v4/associations/contacts/companies/batch/associate/default"), 1);
	g_free(id);

	ASSERT_EQ(writeback_create(f.wb, ty(TY_TICKETS), "orphan.json", t, bad), 0);
	writeback_sync(f.wb, hs_now_ms() + 20000, NULL);
	ASSERT(created_id("tickets", "orphan.json") == NULL);
	ASSERT_EQ(seen_count(seen.errors, "orphan.json", "999999999"), 1);
	ASSERT_EQ(seen_count(seen.rejected, "\"associations\"", "999999999"), 1);
	ASSERT_EQ(count_eq("tickets", "subject", "With its contact"), 1);
	json_object_put(t);
	json_object_put(ta);
	json_object_put(c);
	json_object_put(ca);
	json_object_put(bad);
	json_object_put(unknown);
	fx_close(&f, 1000);
	fx_done(&f);
}

/* 5xx and 429 past the call deadline: pending, backed off, landed later. */
static void test_transient(void)
{
	struct fx f = { 0 };
	char *v;

	fx_open(&f, "transient", 100, 700);
	/* More 503s than the client's own retries fit in a 700 ms call: the
	 * writeback has to keep them pending and come back. */
	fault("{\"kind\": \"503\", \"count\": 8, \"path\": \"/contacts/batch/update$\"}");
	fault("{\"kind\": \"429\", \"policy\": \"SECONDLY\", \"count\": 2,"
	      " \"path\": \"/contacts/batch/read$\"}");
	for (uint64_t id = 1000261; id <= 1000265; id++)
		queue_update(&f, ty(TY_CONTACTS), id, "{\"jobtitle\": \"Persistent\"}", NULL, 0);
	/* A sync that cannot wait long enough says so; nothing is lost. */
	ASSERT_EQ(writeback_sync(f.wb, hs_now_ms() + 300, NULL), -EAGAIN);
	ASSERT_EQ(queue_count(&f, "pending") + queue_count(&f, "in_flight"), 5);
	sync_ok(&f);
	for (uint64_t id = 1000261; id <= 1000265; id++) {
		v = server_prop("contacts", id, "jobtitle");
		ASSERT_STR(v, "Persistent");
		g_free(v);
	}
	ASSERT_EQ(calls(f.hc, UPD), 9); /* 8 refused, then landed */
	{
		json_object *o = req("POST", "/__sandbox/count",
				     "{\"path_re\": \"/contacts/batch/update$\", \"status\": 503}");

		ASSERT_EQ(json_object_get_int64(json_object_object_get(o, "count")), 8);
		json_object_put(o);
	}
	ASSERT_EQ(queue_count(&f, "failed"), 0);
	fx_close(&f, 1000);
	fx_done(&f);
}

/* Archive, associations, the queue file and a journal carried to the next
 * mount (unmount without drain, then remount). */
static void test_archive_assoc_remount(void)
{
	struct fx f = { 0 };
	json_object *o;
	char *q, *v;

	fx_open(&f, "remount", 600000, 0); /* nothing is sent on its own */
	ASSERT_EQ(writeback_archive(f.wb, ty(TY_CONTACTS), 1000270), 0);
	ASSERT_EQ(writeback_assoc(f.wb, true, ty(TY_CONTACTS), 1000271, ty(TY_COMPANIES), 2000015), 0);
	ASSERT_EQ(writeback_assoc(f.wb, true, ty(TY_DEALS), 3000001, ty(TY_CONTACTS), 1000272), 0);
	ASSERT_EQ(writeback_assoc(f.wb, false, ty(TY_CONTACTS), 1000272, ty(TY_DEALS), 3000001), 0);
	queue_update(&f, ty(TY_CONTACTS), 1000273, "{\"jobtitle\": \"Remounted\"}", NULL, 0);
	{
		json_object *p = json_tokener_parse("{\"subject\": \"Remounted with a link\", "
						    "\"hs_pipeline\": \"0\", \"hs_pipeline_stage\": \"1\"}");
		json_object *a = json_tokener_parse("[{\"toObjectTypeId\": \"0-1\", \"to\": {\"id\": "
						    "\"1000275\"}, \"types\": [{\"associationCategory\":"
						    " \"HUBSPOT_DEFINED\", \"associationTypeId\": 16}]}]");

		ASSERT_EQ(writeback_create(f.wb, ty(TY_TICKETS), "remount.json", p, a), 0);
		json_object_put(p);
		json_object_put(a);
	}
	q = writeback_queue_text(f.wb, NULL);
	ASSERT(strstr(q, "pending tickets/_new/remount.json subject=\"Remounted with a link\" "
		      "hs_pipeline=\"0\" hs_pipeline_stage=\"1\" +contacts/1000275\n"));
	ASSERT(strstr(q, "pending contacts/1000270 archive\n"));
	ASSERT(strstr(q, "pending contacts/1000271 +companies/2000015\n"));
	ASSERT(strstr(q, "pending contacts/1000272 -deals/3000001\n"));
	ASSERT(!strstr(q, "+contacts/1000272"));
	ASSERT(strstr(q, "pending contacts/1000273 jobtitle=\"Remounted\"\n"));
	g_free(q);
	ASSERT_EQ(queue_count(&f, "pending"), 5);
	fx_close(&f, 0); /* unmount: left in the journal */
	v = server_prop("contacts", 1000273, "jobtitle");
	ASSERT(!v || strcmp(v, "Remounted") != 0);
	g_free(v);

	ctl("PUT", "/__sandbox/associations/deals/3000001/contacts/1000272", NULL);
	fx_open(&f, "remount", 100, 0);
	sync_ok(&f);
	o = req("GET", "/__sandbox/objects/contacts/1000270", NULL);
	ASSERT(json_object_get_boolean(json_object_object_get(o, "archived")));
	json_object_put(o);
	o = req("GET", "/__sandbox/objects/contacts/1000271", NULL);
	ASSERT(json_object_object_get(json_object_object_get(json_object_object_get(o, "associations"),
							     "companies"), "2000015") != NULL);
	json_object_put(o);
	o = req("GET", "/__sandbox/objects/contacts/1000272", NULL);
	ASSERT(json_object_object_get(json_object_object_get(o, "associations"), "deals") == NULL ||
	       json_object_object_get(json_object_object_get(json_object_object_get(o, "associations"),
							     "deals"), "3000001") == NULL);
	json_object_put(o);
	v = server_prop("contacts", 1000273, "jobtitle");
	ASSERT_STR(v, "Remounted");
	g_free(v);
	/* The create's association came back from the journal with it. */
	v = created_id("tickets", "remount.json");
	ASSERT(v && server_assoc("tickets", v, "contacts", "1000275"));
	g_free(v);
	ASSERT_EQ(calls(f.hc, "POST /crm/v3/objects/contacts/batch/archive"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v4/associations/contacts/companies/batch/associate/default"), 1);
	ASSERT_EQ(calls(f.hc, "POST /crm/v4/associations/contacts/deals/batch/archive"), 1);

	/* Unmount drains what it can within drain_ms. */
	queue_update(&f, ty(TY_CONTACTS), 1000274, "{\"jobtitle\": \"Drained\"}", NULL, 0);
	fx_close(&f, 10000);
	v = server_prop("contacts", 1000274, "jobtitle");
	ASSERT_STR(v, "Drained");
	g_free(v);
	fx_done(&f);
}

int main(int argc, char **argv)
{
	int64_t t0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SRCROOT\n", argv[0]);
		return 2;
	}
	log_set_level(getenv("HUBFS_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERR);
	tmp = g_dir_make_tmp("hubfs-writeback-XXXXXX", NULL);
	sandbox_start(argv[1], "--index-delay", "1", "--contacts", "300", "--companies", "20",
		      "--deals", "10", "--tickets", "5", (char *)NULL);
	ctl_hc = sandbox_client(100000);
	seen_reset();
	t0 = hs_now_ms();
	RUN(test_many_updates);
	RUN(test_coalesce);
	RUN(test_conflict);
	RUN(test_lifecycle_backward);
	RUN(test_bad_record);
	RUN(test_creates);
	RUN(test_in_doubt_replay);
	RUN(test_in_doubt_live);
	RUN(test_create_assocs);
	RUN(test_transient);
	RUN(test_archive_assoc_remount);
	fprintf(stderr, "  total %.1f s\n", (double)(hs_now_ms() - t0) / 1000);
	hs_client_free(ctl_hc);
	sandbox_stop();
	{
		char *cmd = g_strdup_printf("rm -rf '%s'", tmp);

		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
		g_free(cmd);
	}
	g_free(tmp);
	pthread_mutex_lock(&seen.lock);
	g_hash_table_destroy(seen.created);
	g_ptr_array_unref(seen.errors);
	g_ptr_array_unref(seen.rejected);
	pthread_mutex_unlock(&seen.lock);
	return 0;
}
