/* team_ops.c - the shared budget, leases and status of team.h, each one
 * script run (team_lua.h); connections and the feed are in team.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "client/hubspot.h" /* hs_json_parse */
#include "client/team.h"
#include "client/team_int.h"

static const char *prio_arg(enum rl_prio prio)
{
	switch (prio) {
	case RL_PRIO_WRITE: return "0";
	case RL_PRIO_USER: return "1";
	default: return "2";
	}
}

int64_t team_acquire(struct team *t, enum rl_prio prio, bool search, struct team_grant *g)
{
	const char *args[2] = { prio_arg(prio), search ? "1" : "0" };
	redisReply *r;
	int64_t rc = -EAGAIN;

	memset(g, 0, sizeof(*g));
	r = team_run_budget(t, TEAM_LUA_ACQUIRE, 2, args);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		goto out;
	if (r->element[0]->integer > 0) {
		rc = r->element[0]->integer;
		goto out;
	}
	if (r->elements != 4)
		goto out;
	for (int i = 1; i < 4; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer < 0)
			goto out;
	g->seq = (uint64_t)r->element[1]->integer;
	g->search = search;
	g->used = r->element[2]->integer > INT32_MAX ? INT32_MAX : (int)r->element[2]->integer;
	g->external = (uint64_t)r->element[3]->integer;
	rc = 0;
out:
	freeReplyObject(r);
	return rc;
}

void team_done(struct team *t, const struct team_grant *g, long http_status)
{
	char seq[24], status[24];
	const char *args[3] = { seq, g->search ? "1" : "0", status };

	if (g->seq == 0)
		return;
	snprintf(seq, sizeof(seq), "%" PRIu64, g->seq);
	snprintf(status, sizeof(status), "%ld", http_status);
	freeReplyObject(team_run_budget(t, TEAM_LUA_DONE, 3, args));
}

void team_note_headers(struct team *t, const struct rl_headers *h, const struct team_grant *g)
{
	char v[8][24];
	const char *args[8];
	bool ticket = g && g->seq > 0 && !g->search;

	snprintf(v[0], sizeof(v[0]), "%" PRId64, h->max);
	snprintf(v[1], sizeof(v[1]), "%" PRId64, h->interval_ms);
	snprintf(v[2], sizeof(v[2]), "%" PRId64, h->remaining);
	snprintf(v[3], sizeof(v[3]), "%" PRId64, h->daily);
	snprintf(v[4], sizeof(v[4]), "%" PRId64, h->daily_remaining);
	snprintf(v[5], sizeof(v[5]), "%d", ticket ? g->used : 0);
	snprintf(v[6], sizeof(v[6]), "%" PRIu64, ticket ? g->seq : 0);
	snprintf(v[7], sizeof(v[7]), "%" PRIu64, ticket ? g->external : 0);
	for (int i = 0; i < 8; i++)
		args[i] = v[i];
	freeReplyObject(team_run_budget(t, TEAM_LUA_HEADERS, 8, args));
}

void team_note_429(struct team *t, enum rl_policy policy, bool search, int64_t retry_after_ms)
{
	char p[8], ra[24];
	const char *args[3] = { p, search ? "1" : "0", ra };

	snprintf(p, sizeof(p), "%d", (unsigned)policy < RL_POLICY_COUNT ? (int)policy : 0);
	snprintf(ra, sizeof(ra), "%" PRId64, retry_after_ms < 0 ? -1 : retry_after_ms);
	freeReplyObject(team_run_budget(t, TEAM_LUA_N429, 3, args));
}

/* --- leases --------------------------------------------------------------- */

static bool lease_name_ok(const char *s)
{
	size_t n;

	if (!s)
		return false;
	n = strnlen(s, TEAM_LEASE_NAME_MAX);
	if (n == 0 || n >= TEAM_LEASE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

int team_lease(struct team *t, const char *name, int64_t ttl_ms, char *holder, size_t holder_len)
{
	char ttl[24];
	char *key;
	const char *keys[2], *args[3];
	redisReply *r;
	int rc = -EAGAIN;

	if (holder && holder_len)
		holder[0] = '\0';
	if (!lease_name_ok(name) || ttl_ms <= 0)
		return -EINVAL;
	key = g_strconcat(t->k_lease_prefix, name, NULL);
	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	keys[0] = key;
	keys[1] = t->k_leases;
	args[0] = t->mount_id;
	args[1] = ttl;
	args[2] = name;
	r = team_run(t, TEAM_LUA_LEASE, 2, keys, 3, args);
	g_free(key);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		goto out;
	if (holder && holder_len && r->element[1]->type == REDIS_REPLY_STRING)
		snprintf(holder, holder_len, "%s", r->element[1]->str);
	rc = r->element[0]->integer == 1 ? 1 : 0;
out:
	freeReplyObject(r);
	return rc;
}

int team_lease_release(struct team *t, const char *name)
{
	char *key;
	const char *keys[2], *args[2];
	redisReply *r;
	long long v;
	int rc = -EAGAIN;

	if (!lease_name_ok(name))
		return -EINVAL;
	key = g_strconcat(t->k_lease_prefix, name, NULL);
	keys[0] = key;
	keys[1] = t->k_leases;
	args[0] = t->mount_id;
	args[1] = name;
	r = team_run(t, TEAM_LUA_RELEASE, 2, keys, 2, args);
	g_free(key);
	if (team_int_reply(r, &v))
		rc = v == 1 ? 1 : 0;
	freeReplyObject(r);
	return rc;
}

/* --- status -------------------------------------------------------------- */

/* Lua's cjson writes an empty table as {}: make it the empty list it is. */
static json_object *list_of(json_object *o)
{
	if (o && json_object_is_type(o, json_type_array))
		return json_object_get(o);
	return json_object_new_array();
}

void team_stats(struct team *t, json_object *obj)
{
	const char *keys[5] = { t->k_cfg, t->k_win, t->k_srch, t->k_mounts, t->k_leases };
	const char *args[8];
	char hb[24];
	json_object *st = NULL, *v, *leases;
	redisReply *r;

	for (int i = 0; i < 6; i++)
		args[i] = t->defaults[i];
	args[6] = t->k_lease_prefix;
	snprintf(hb, sizeof(hb), "%" PRId64, t->heartbeat_ms);
	args[7] = hb;
	r = team_run(t, TEAM_LUA_STATS, 5, keys, 8, args);
	/* after the round trip, so the counters include what it did */
	team_stats_local(t, obj);
	if (!r || r->type != REDIS_REPLY_STRING || hs_json_parse(r->str, r->len, &st) < 0 || !st ||
	    !json_object_is_type(st, json_type_object))
		goto out;
	if (json_object_object_get_ex(st, "window", &v) && json_object_is_type(v, json_type_object)) {
		json_object *d;

		/* -1 is the scripts' "unknown" */
		if (json_object_object_get_ex(v, "daily_limit", &d) && json_object_get_int64(d) < 0)
			json_object_object_add(v, "daily_limit", NULL);
		if (json_object_object_get_ex(v, "daily_remaining", &d) && json_object_get_int64(d) < 0)
			json_object_object_add(v, "daily_remaining", NULL);
		json_object_object_add(obj, "window", json_object_get(v));
	}
	json_object_object_get_ex(st, "mounts_seen", &v);
	json_object_object_add(obj, "mounts_seen", list_of(v));
	v = NULL;
	json_object_object_get_ex(st, "leases", &v);
	leases = list_of(v);
	for (size_t i = 0; i < json_object_array_length(leases); i++) {
		json_object *l = json_object_array_get_idx(leases, i), *h;

		if (json_object_object_get_ex(l, "holder", &h))
			json_object_object_add(l, "ours", json_object_new_boolean(
				strcmp(json_object_get_string(h), t->mount_id) == 0));
	}
	json_object_object_add(obj, "leases", leases);
out:
	json_object_put(st);
	freeReplyObject(r);
}
