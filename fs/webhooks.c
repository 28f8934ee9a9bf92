/* webhooks.c - the mount's webhook receiver: client/webhook.h's server on
 * webhook_listen, each accepted delivery handed to the store
 * (cache/cache_events.h), which applies it in the background. The server
 * answers once the events are queued, well within HubSpot's 5 s.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache_events.h"
#include "cache/cache_team.h"
#include "cache/model/record.h"
#include "client/log.h"
#include "client/secret.h"
#include "client/webhook.h"
#include "fs/hubfs.h"

/* While deliveries arrive the periodic refresh runs BACKOFF times less
 * often; after BACKOFF ttls without one it is back to every ttl. */
#define BACKOFF 10

/* On the server's thread: queue, never fetch. */
static void on_events(void *ud, GArray *events)
{
	struct hubfs *h = ud;

	if (events->len) {
		const struct wh_event *ev = (const struct wh_event *)(void *)events->data;

		cache_events_add(h->cache, ev, events->len);
		cache_team_relay(h->cache, ev, events->len); /* the team's other mounts */
	} else
		cache_events_alive(h->cache);
	g_array_unref(events);
}

static bool loopback(const char *addr)
{
	return g_str_has_prefix(addr, "127.") || g_str_has_prefix(addr, "[::1]");
}

int hubfs_webhooks_start(struct hubfs *h)
{
	struct wh_server_opts so = { 0 };
	struct cache_events_opts eo = { 0 };
	const char *why = NULL;
	int rc;

	if (!h->o.webhook_listen)
		return 0;
	eo.portal_id = h->portal_id; /* an app's target URL hears every portal it is in */
	eo.backoff = BACKOFF;
	eo.quiet_ms = (int64_t)h->o.ttl_s * 1000 * BACKOFF;
	/* A fifth of the request budget (-o rate_limit) for reading what events
	 * name: 20 calls at once and one every 500 ms by default. */
	eo.burst_calls = (unsigned)MAX(1, h->o.rate_max / 5);
	eo.call_interval_ms = MAX(1, (int64_t)h->o.rate_interval_ms / eo.burst_calls);
	rc = cache_events_start(h->cache, &eo);
	if (rc) {
		fprintf(stderr, "hubfs: webhook_listen: cannot start the events worker: %s\n",
			strerror(-rc));
		goto out;
	}
	so.listen = h->o.webhook_listen;
	so.path = h->o.webhook_path;
	so.public_url = h->o.webhook_public_url;
	so.secret = h->webhook_secret;
	so.allow_v1 = h->o.webhook_v1;
	so.on_events = on_events;
	so.ud = h;
	rc = wh_server_start(&so, &h->wh, &why);
	if (rc) {
		fprintf(stderr, "hubfs: webhook_listen=%s: %s (%s)\n", h->o.webhook_listen,
			why ? why : "cannot start", strerror(-rc));
		goto out;
	}
	log_notice("webhook receiver on http://%s%s%s", wh_server_address(h->wh),
		   h->o.webhook_path ? h->o.webhook_path : "/hubspot",
		   h->o.webhook_v1 ? " (v1 signatures accepted too)" : "");
	if (!loopback(wh_server_address(h->wh)))
		log_notice("webhook receiver: %s is reachable from other hosts; every request is "
			   "checked against the client secret", wh_server_address(h->wh));
out:
	/* The server holds its own copy (wiped at stop). */
	secret_free(h->webhook_secret);
	h->webhook_secret = NULL;
	return rc ? -1 : 0;
}

void hubfs_webhooks_stop(struct hubfs *h)
{
	wh_server_stop(h->wh);
	h->wh = NULL;
}

void hubfs_webhooks_status(struct hubfs *h, json_object *obj)
{
	char tbuf[RECORD_TIME_LEN];
	struct wh_stats st;
	json_object *o, *rej;

	if (!h->wh)
		return;
	wh_server_stats(h->wh, &st);
	o = json_object_new_object();
	rej = json_object_new_object();
	json_object_object_add(o, "listen", json_object_new_string(wh_server_address(h->wh)));
	json_object_object_add(o, "path", json_object_new_string(h->o.webhook_path ?
								  h->o.webhook_path : "/hubspot"));
	json_object_object_add(o, "v1", json_object_new_boolean(h->o.webhook_v1));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)st.received));
	json_object_object_add(o, "deliveries", json_object_new_int64((int64_t)st.accepted));
	json_object_object_add(o, "events", json_object_new_int64((int64_t)st.events));
	json_object_object_add(o, "events_other", json_object_new_int64((int64_t)st.events_other));
	for (int i = 0; i < WH_REJ_COUNT; i++)
		json_object_object_add(rej, wh_reject_name((enum wh_reject)i),
				       json_object_new_int64((int64_t)st.rejected[i]));
	json_object_object_add(o, "rejected", rej);
	json_object_object_add(o, "last_delivery", st.last_delivery_ms ?
			       json_object_new_string(record_format_time(st.last_delivery_ms, tbuf)) :
			       NULL);
	json_object_object_add(obj, "webhooks", o);
}
