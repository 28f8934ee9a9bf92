/* team_msg.c - encode and decode the team change feed (see team_msg.h). */
#include "client/team_msg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/hubspot.h" /* hs_json_parse: the one bounded JSON reader */

#define MSG_VERSION 1

static const char *const kind_names[] = {
	[TEAM_CHANGE_UPDATE] = "update",
	[TEAM_CHANGE_CREATE] = "create",
	[TEAM_CHANGE_ARCHIVE] = "archive",
	[TEAM_CHANGE_ASSOC] = "assoc",
	[TEAM_CHANGE_REFRESH] = "refresh",
	[TEAM_CHANGE_RELIST] = "relist",
	[TEAM_CHANGE_RESYNC] = "resync",
};

const char *team_change_kind_name(enum team_change_kind k)
{
	if ((int)k < TEAM_CHANGE_UPDATE || (int)k > TEAM_CHANGE_RESYNC)
		return NULL;
	return kind_names[k];
}

static int kind_from_name(const char *s)
{
	for (int k = TEAM_CHANGE_UPDATE; k < TEAM_CHANGE_RESYNC; k++) /* RESYNC is never on the wire */
		if (strcmp(s, kind_names[k]) == 0)
			return k;
	return -1;
}

static bool type_ok(const char *s, size_t len)
{
	if (len == 0 || len >= TEAM_TYPE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static bool origin_ok(const char *s, size_t len)
{
	if (len == 0 || len >= TEAM_MOUNT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-' || c == ':'))
			return false;
	}
	return true;
}

static bool record_kind(enum team_change_kind k)
{
	return k == TEAM_CHANGE_UPDATE || k == TEAM_CHANGE_CREATE || k == TEAM_CHANGE_ARCHIVE ||
	       k == TEAM_CHANGE_ASSOC;
}

int team_change_check(const struct team_change *ch)
{
	if (!team_change_kind_name(ch->kind) || ch->kind == TEAM_CHANGE_RESYNC)
		return -EINVAL;
	if (!type_ok(ch->type, strnlen(ch->type, TEAM_TYPE_MAX)))
		return -EINVAL;
	if (record_kind(ch->kind) && ch->id == 0)
		return -EINVAL;
	if (ch->kind == TEAM_CHANGE_ASSOC &&
	    (!type_ok(ch->to_type, strnlen(ch->to_type, TEAM_TYPE_MAX)) || ch->to_id == 0))
		return -EINVAL;
	if (ch->updated_ms < 0)
		return -EINVAL;
	return 0;
}

static int add_id(json_object *o, const char *key, uint64_t id)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, id);
	return json_object_object_add(o, key, json_object_new_string(buf));
}

static json_object *change_to_json(const struct team_change *ch)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "kind", json_object_new_string(kind_names[ch->kind]));
	json_object_object_add(o, "type", json_object_new_string(ch->type));
	if (record_kind(ch->kind))
		add_id(o, "id", ch->id);
	json_object_object_add(o, "updated", json_object_new_int64(ch->updated_ms));
	if (ch->kind == TEAM_CHANGE_ASSOC) {
		json_object_object_add(o, "to_type", json_object_new_string(ch->to_type));
		add_id(o, "to_id", ch->to_id);
		json_object_object_add(o, "removed", json_object_new_boolean(ch->removed));
	}
	if (ch->refreshed)
		json_object_object_add(o, "refreshed", json_object_new_boolean(true));
	return o;
}

int team_msg_encode(const char *origin, const struct team_change *changes, size_t n, char **out)
{
	json_object *msg = NULL, *arr;
	const char *text;
	size_t len;
	int rc = 0;

	*out = NULL;
	if (!origin || !origin_ok(origin, strlen(origin)) || n == 0 || n > TEAM_MSG_MAX_CHANGES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (team_change_check(&changes[i]) < 0)
			return -EINVAL;
	msg = json_object_new_object();
	arr = json_object_new_array();
	if (!msg || !arr) {
		json_object_put(arr);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(msg, "v", json_object_new_int(MSG_VERSION));
	json_object_object_add(msg, "origin", json_object_new_string(origin));
	json_object_object_add(msg, "changes", arr);
	for (size_t i = 0; i < n; i++) {
		json_object *c = change_to_json(&changes[i]);

		if (!c || json_object_array_add(arr, c) < 0) {
			json_object_put(c);
			rc = -ENOMEM;
			goto out;
		}
	}
	text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	if (len > TEAM_MSG_MAX) {
		rc = -E2BIG;
		goto out;
	}
	*out = strdup(text);
	if (!*out)
		rc = -ENOMEM;
out:
	json_object_put(msg);
	return rc;
}

/* Copy string member key of o into buf (size TEAM_TYPE_MAX) if it is a valid
 * type name. */
static bool get_type(json_object *o, const char *key, char *buf)
{
	json_object *v;
	const char *s;
	int len;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (len < 0 || !type_ok(s, (size_t)len))
		return false;
	memcpy(buf, s, (size_t)len);
	buf[len] = '\0';
	return true;
}

/* A decimal id string: 1..20 digits, no sign, no leading zero, fits 64 bits, > 0. */
static bool get_id(json_object *o, const char *key, uint64_t *id)
{
	json_object *v;
	const char *s;
	int len;
	uint64_t x = 0;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (len < 1 || len > 20 || s[0] == '0')
		return false;
	for (int i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*id = x;
	return true;
}

/* Fill *ch from one element of "changes"; false if it is not usable. */
static bool change_from_json(json_object *o, struct team_change *ch)
{
	json_object *v;
	int kind;

	if (!json_object_is_type(o, json_type_object))
		return false;
	if (!json_object_object_get_ex(o, "kind", &v) || !json_object_is_type(v, json_type_string))
		return false;
	kind = kind_from_name(json_object_get_string(v));
	if (kind < 0)
		return false;
	ch->kind = (enum team_change_kind)kind;
	if (!get_type(o, "type", ch->type))
		return false;
	if (record_kind(ch->kind) && !get_id(o, "id", &ch->id))
		return false;
	if (json_object_object_get_ex(o, "updated", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return false;
		ch->updated_ms = json_object_get_int64(v);
		/* json-c saturates out-of-range integers; either bound is not a time */
		if (ch->updated_ms < 0 || ch->updated_ms == INT64_MAX)
			return false;
	}
	if (ch->kind == TEAM_CHANGE_ASSOC) {
		if (!get_type(o, "to_type", ch->to_type) || !get_id(o, "to_id", &ch->to_id))
			return false;
		if (json_object_object_get_ex(o, "removed", &v)) {
			if (!json_object_is_type(v, json_type_boolean))
				return false;
			ch->removed = json_object_get_boolean(v);
		}
	}
	if (json_object_object_get_ex(o, "refreshed", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return false;
		ch->refreshed = json_object_get_boolean(v);
	}
	return true;
}

int team_msg_decode(const char *buf, size_t len,
		    void (*cb)(void *ud, const struct team_change *ch), void *ud, size_t *skipped)
{
	json_object *msg = NULL, *v, *arr;
	char origin[TEAM_MOUNT_ID_MAX];
	const char *s;
	size_t n, nskip = 0;
	int olen, delivered = 0, rc = -EINVAL;

	if (len > TEAM_MSG_MAX || hs_json_parse(buf, len, &msg) < 0 || !msg)
		goto out;
	if (!json_object_is_type(msg, json_type_object))
		goto out;
	if (!json_object_object_get_ex(msg, "v", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != MSG_VERSION)
		goto out;
	if (!json_object_object_get_ex(msg, "origin", &v) || !json_object_is_type(v, json_type_string))
		goto out;
	s = json_object_get_string(v);
	olen = json_object_get_string_len(v);
	if (olen < 0 || !origin_ok(s, (size_t)olen))
		goto out;
	memcpy(origin, s, (size_t)olen);
	origin[olen] = '\0';
	if (!json_object_object_get_ex(msg, "changes", &arr) ||
	    !json_object_is_type(arr, json_type_array))
		goto out;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct team_change ch;

		if (i >= TEAM_MSG_MAX_CHANGES) {
			nskip += n - i;
			break;
		}
		memset(&ch, 0, sizeof(ch));
		if (!change_from_json(json_object_array_get_idx(arr, i), &ch)) {
			nskip++;
			continue;
		}
		memcpy(ch.origin, origin, (size_t)olen + 1);
		if (cb)
			cb(ud, &ch);
		delivered++;
	}
	rc = delivered;
out:
	if (skipped && rc >= 0)
		*skipped += nskip;
	json_object_put(msg);
	return rc;
}
