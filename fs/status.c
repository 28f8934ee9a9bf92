/* status.c - .hubfs/status.json and .hubfs/README.md. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs/hubfs.h"
#include "hubfs_config.h"

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

	json_object_object_add(o, "version", json_object_new_string(HUBFS_VERSION));
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
	"  left, daily remaining, auth state, cache records/bytes/hit rate, the writeback queue\n"
	"  (pending, in flight, failed, conflict, in doubt), listing progress and last refresh per\n"
	"  type. `hubfs status MOUNTPOINT` prints a summary.\n"
	"- `queue` — one line per queued change: state, record, properties, error.\n"
	"- `errors.log` — JSON lines: rejected saves (file, property, reason), HubSpot's refusals\n"
	"  (category, message, correlationId), conflicts, bad queries.\n"
	"- `rejected/` — the bytes of every rejected save and of every local version that lost a\n"
	"  conflict. Nothing you wrote is ever lost.\n"
	"- `created` — one line per record created through `<type>/_new/`: name, type, id.\n"
	"- `ctl` — write a command: `sync` (wait until the queue is empty; fails listing what did\n"
	"  not land; `hubfs sync MOUNTPOINT` does this), `retry` (send failed and conflicting\n"
	"  changes again, yours winning), `forget` (drop them), `refresh [type]` (refresh now).\n"
	"- `README.md` — this file.\n"
	"\n"
	"Record files: `<type>/<id>.json`; save an edit and it is sent in a batch. New records:\n"
	"write `<type>/_new/<name>.json`. Associations: `<type>/<id>/<other type>/<id>.json`\n"
	"symlinks (`ln -s` adds, `rm` removes). Queries: `search/<type>/<query>/`, e.g.\n"
	"`search/deals/amount>=10000&dealstage!=closedwon`. `schema/<type>.json` holds the property\n"
	"definitions, `pipelines/` the deal and ticket pipelines, `owners/` the owners.\n"
	"\n"
	"xattrs on records: `user.hubspot.url` (the record in HubSpot's web app),\n"
	"`user.hubfs.state` (clean, pending, conflict, failed, or stale while HubSpot is\n"
	"unreachable) and `user.hubfs.error` (why the last save was refused).\n";

const char *hubfs_readme_text(size_t *len)
{
	*len = sizeof(readme) - 1;
	return readme;
}
