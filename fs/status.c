/* status.c - .hubfs/status.json and .hubfs/README.md. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_events.h"
#include "cache/cache_team.h"
#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "fs/hubfs.h"
#include "hubfs_config.h"

static json_object *iso_time(int64_t wall_ms)
{
	char buf[RECORD_TIME_LEN];

	return json_object_new_string(record_format_time(wall_ms, buf));
}

/* Print every number with a fraction to the millisecond: "2.006", not
 * "2.0059999999999998" (json-c's default shows the double's full precision). */
static void round_doubles(json_object *o)
{
	static char fmt[] = "%.3f";

	switch (json_object_get_type(o)) {
	case json_type_double:
		json_object_set_serializer(o, json_object_double_to_json_string, fmt, NULL);
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			round_doubles(v);
		}
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			round_doubles(json_object_array_get_idx(o, i));
		break;
	default:
		break;
	}
}

char *hubfs_status_json(struct hubfs *h, size_t *len)
{
	json_object *o = json_object_new_object(), *q = json_object_new_object(), *q2;
	char *s;

	json_object_object_add(o, "version", json_object_new_string(HUBFS_VERSION));
	json_object_object_add(o, "portal_id", json_object_new_int64((int64_t)h->portal_id));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "now", iso_time(hs_wall_ms()));
	json_object_object_add(o, "mounted_at", iso_time((int64_t)h->mount_time.tv_sec * 1000 +
							  h->mount_time.tv_nsec / 1000000));
	json_object_object_add(o, "read_only", json_object_new_boolean(h->o.ro));
	json_object_object_add(o, "ttl_s", json_object_new_int(h->o.ttl_s));
	json_object_object_add(o, "allow_other", json_object_new_boolean(h->o.allow_other));
	{
		char um[8];

		snprintf(um, sizeof(um), "%03o", (unsigned)h->o.umask);
		json_object_object_add(o, "umask", json_object_new_string(um));
	}
	json_object_object_add(o, "query_dirs", json_object_new_int64((int64_t)search_count(h)));
	hs_client_stats(h->hc, o);
	if (json_object_object_get_ex(o, "team", &q2)) /* redis=: the store's side too */
		cache_team_stats(h->cache, q2);
	cache_stats(h->cache, o);
	hubfs_webhooks_status(h, o);   /* "webhooks": the receiver, when there is one */
	cache_events_status(h->cache, o); /* "events": what they changed, and the polling */
	if (h->wb) {
		json_object_put(q);
		writeback_stats(h->wb, o);
	} else {
		json_object_object_add(o, "queue", q);
	}

	round_doubles(o);
	s = json_util_pretty(o, NULL);
	/* The errors in it came from the server: a last line of defence. */
	hs_client_scrub(h->hc, s);
	*len = strlen(s);
	json_object_put(o);
	return s;
}

static const char readme[] =
	"# .hubfs — the control directory of this mount\n"
	"\n"
	"- `status.json` — online/offline, API calls by endpoint, 429s, the rate budget used and\n"
	"  left, daily remaining, auth state, cache records/bytes/hit rate, the writeback queue\n"
	"  (pending, in flight, failed, conflict, in doubt), writes whose answer was lost and what\n"
	"  looking them up found (`in_doubt`), listing progress and last refresh per type, query\n"
	"  directories held, the types HubSpot refuses this token (`types_denied`, with the scopes\n"
	"  it lacks), and the daemon's `pid` (`kill -HUP` refreshes everything); with\n"
	"  `-o webhook_listen`, the receiver's requests and rejections by reason (`webhooks`) and\n"
	"  what the events changed, and how often polling runs meanwhile (`events`).\n"
	"  `hubfs status MOUNTPOINT` prints a summary.\n"
	"- `queue` — one line per queued change: state, record, properties, error.\n"
	"- `errors.log` — JSON lines: rejected saves (file, property, reason), HubSpot's refusals\n"
	"  (category, message, correlationId), conflicts, bad queries; one line per event (the\n"
	"  same line again within 2 s is dropped). This mount's last MiB; the state directory\n"
	"  keeps `errors.log` and, past 1 MiB, the one before as `errors.log.1`.\n"
	"- `rejected/` — the bytes of every rejected save and of every local version that lost a\n"
	"  conflict, kept on disk (the state directory's `rejected/`, files 0600) across mounts\n"
	"  until you delete them, up to 1,000 files and 64 MiB: past that the oldest go first.\n"
	"- `created` — one JSON line per record created through `<type>/_new/` (time, file, type,\n"
	"  id); the last 1,000.\n"
	"- `ctl` — write a command: `sync` (wait until the queue is empty; fails listing what did\n"
	"  not land; `hubfs sync MOUNTPOINT` does this), `retry` (send failed and conflicting\n"
	"  changes again, yours winning), `forget` (drop them), `refresh [type]` (refresh now).\n"
	"  Several commands, one a line, run in order up to the first that fails.\n"
	"- `README.md` — this file.\n"
	"\n"
	"Record files: `<type>/<id>.json`; save an edit and it is sent in a batch. New records:\n"
	"write `<type>/_new/<name>.json`, with `\"associations\": {\"contacts\": [\"101\"]}` to\n"
	"create it linked (a note is then never orphaned; a lead needs a contact). Read-only\n"
	"types have no `_new/` and answer writes with EROFS. Associations:\n"
	"`<type>/<id>/<other type>/<id>.json` symlinks (`ln -s` adds, `rm` removes);\n"
	"`<type>/<id>/associations.json` lists them with their labels and is editable (labels and\n"
	"entries added or removed are sent); the labels each pair defines are in\n"
	"`schema/labels/<type>_to_<type>.json`. Queries: `search/<type>/<query>/`, e.g.\n"
	"`search/deals/amount>=10000&dealstage!=closedwon`. `schema/<type>.json` holds the property\n"
	"definitions, `pipelines/<type>.json` the pipelines of each type that has them, `owners/`\n"
	"the owners.\n"
	"\n"
	"xattrs on records: `user.hubspot.url` (the record in HubSpot's web app),\n"
	"`user.hubfs.state` (clean, pending, conflict, failed, or stale while HubSpot is\n"
	"unreachable) and `user.hubfs.error` (why the last save was refused).\n";

const char *hubfs_readme_text(size_t *len)
{
	*len = sizeof(readme) - 1;
	return readme;
}
