/* status.c - .hubfs/status.json and .hubfs/README.md. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs/hubfs.h"

int64_t hubfs_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_object *iso_time(int64_t wall_ms)
{
	char buf[64];
	time_t s = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
	return json_object_new_string(buf);
}

char *hubfs_status_json(struct hubfs *h, size_t *len)
{
	json_object *o = json_object_new_object(), *q = json_object_new_object();
	const char *txt;
	char *s;

	json_object_object_add(o, "version", json_object_new_string("0.1.0"));
	json_object_object_add(o, "portal_id", json_object_new_int64((int64_t)h->portal_id));
	json_object_object_add(o, "now", iso_time(hubfs_wall_ms()));
	json_object_object_add(o, "mounted_at", iso_time((int64_t)h->mount_time.tv_sec * 1000 +
							  h->mount_time.tv_nsec / 1000000));
	json_object_object_add(o, "read_only", json_object_new_boolean(h->o.ro));
	json_object_object_add(o, "ttl_s", json_object_new_int(h->o.ttl_s));
	hs_client_stats(h->hc, o);
	cache_stats(h->cache, o);
	if (h->wb) {
		json_object_put(q);
		writeback_stats(h->wb, o);
	} else {
		json_object_object_add(o, "queue", q);
	}

	txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					     JSON_C_TO_STRING_NOSLASHESCAPE);
	s = g_strconcat(txt, "\n", NULL);
	*len = strlen(s);
	json_object_put(o);
	return s;
}

static const char readme[] =
	"# .hubfs — the control directory of this mount\n"
	"\n"
	"- `status.json` — online/offline, API calls by endpoint, 429s, the rate budget used and\n"
	"  left, daily remaining, cache records/bytes/hit rate, writeback queue counts, listing\n"
	"  progress and last refresh per type. `hubfs status MOUNTPOINT` prints a summary.\n"
	"- `README.md` — this file.\n"
	"\n"
	"Record files: `<type>/<id>.json`. Associations: `<type>/<id>/<other type>/<id>.json`\n"
	"symlinks (the `<id>/` directories resolve but are not listed). `schema/<type>.json` holds\n"
	"the property definitions, `pipelines/` the deal and ticket pipelines, `owners/` the owners.\n"
	"\n"
	"xattrs on records: `user.hubspot.url` (the record in HubSpot's web app) and\n"
	"`user.hubfs.state` (clean, or stale while HubSpot is unreachable).\n";

const char *hubfs_readme_text(size_t *len)
{
	*len = sizeof(readme) - 1;
	return readme;
}
