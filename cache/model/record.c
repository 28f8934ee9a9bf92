#include "cache/model/record.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cache/model/json_util.h"

int record_parse_id(const char *s, size_t len, uint64_t *id)
{
	uint64_t v = 0;

	if (len == 0 || len > 15 || s[0] == '0')
		return -ENOENT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -ENOENT;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > RECORD_ID_MAX)
		return -ENOENT;
	*id = v;
	return 0;
}

int record_parse_time(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, n = 0;
	struct tm tm = { 0 };
	int64_t frac = 0;
	const char *p;

	if (!s || !*s)
		return -EINVAL;
	if (strspn(s, "0123456789") == strlen(s)) {
		*ms = g_ascii_strtoll(s, NULL, 10);
		return 0;
	}
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -EINVAL;
	p = s + n;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (*p != 'Z' && strcmp(p, "+00:00") != 0)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*ms = (int64_t)timegm(&tm) * 1000 + frac;
	return 0;
}

static json_object *copy_field(json_object *obj, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(obj, key, &v) ? json_object_get(v) : NULL;
}

int record_render(json_object *obj, const struct schema *s, char **text, size_t *len,
		  uint64_t *id, int64_t *updated_ms)
{
	json_object *jid, *props = NULL, *out, *outprops, *upd, *arch;
	const char *sid;
	size_t n;

	if (!json_object_object_get_ex(obj, "id", &jid))
		return -EINVAL;
	sid = json_object_get_string(jid);
	if (!sid || record_parse_id(sid, strlen(sid), id) != 0)
		return -EINVAL;
	json_object_object_get_ex(obj, "properties", &props);

	out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_string(sid));
	outprops = json_object_new_object();
	n = schema_shown_count(s);
	for (size_t i = 0; i < n; i++) {
		const char *name = schema_shown(s, i);
		json_object *v = NULL;

		if (props && json_object_object_get_ex(props, name, &v) && v &&
		    !json_object_is_type(v, json_type_string))
			v = json_object_new_string(json_object_get_string(v));
		else
			v = json_object_get(v);
		json_object_object_add(outprops, name, v);
	}
	json_object_object_add(out, "properties", outprops);
	json_object_object_add(out, "createdAt", copy_field(obj, "createdAt"));
	upd = copy_field(obj, "updatedAt");
	json_object_object_add(out, "updatedAt", upd);
	arch = copy_field(obj, "archived");
	json_object_object_add(out, "archived", arch ? arch : json_object_new_boolean(0));

	*updated_ms = 0;
	if (upd)
		record_parse_time(json_object_get_string(upd), updated_ms);

	*text = json_util_pretty(out, len);
	json_object_put(out);
	return 0;
}

char *record_format_time(int64_t ms, char buf[RECORD_TIME_LEN])
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, RECORD_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return buf;
}

int record_id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}
