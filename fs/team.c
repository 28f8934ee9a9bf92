/* team.c - the mount's team (-o redis=): created in the serving process once
 * the portal id is known (it names the team's keys), handed to the client
 * (the shared rate budget) and to the cache (leases, the change feed).
 *
 * The team's thread delivers the others' changes through on_change() below,
 * which forwards them to the cache while one is attached: h outlives the
 * team, the cache does not, so detaching (before cache_free) makes the
 * callback a no-op and team_free() may come after cache_free().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache_team.h"
#include "client/log.h"
#include "client/secret.h"
#include "fs/hubfs.h"

#define TEAM_CMD_TIMEOUT_MS 500

static void on_change(void *ud, const struct team_change *ch)
{
	struct hubfs *h = ud;

	g_rw_lock_reader_lock(&h->team_rw);
	if (h->team_cache)
		cache_team_apply(h->team_cache, ch);
	g_rw_lock_reader_unlock(&h->team_rw);
}

/* "<host>:<pid>:<8 hex>", host cut to what a mount id allows. */
static void mount_id(char *out, size_t len)
{
	char host[64] = "";

	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		g_strlcpy(host, "host", sizeof(host));
	for (char *p = host; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != '_')
			*p = '_';
	snprintf(out, len, "%.60s:%ld:%08x", host, (long)getpid(), g_random_int());
}

int hubfs_team_setup(struct hubfs *h)
{
	struct team_opts to = { 0 };
	char id[TEAM_MOUNT_ID_MAX];
	const char *why = NULL;
	int rc;

	g_rw_lock_init(&h->team_rw);
	h->team_rw_init = true;
	if (!h->o.redis_url)
		return 0;
	/* hiredis writes to sockets Redis may have closed: EPIPE, not death.
	 * libfuse ignores SIGPIPE while it serves, but not before or after. */
	signal(SIGPIPE, SIG_IGN);
	mount_id(id, sizeof(id));
	to.url = h->o.redis_url;
	to.password = h->redis_password;
	to.portal_id = h->portal_id;
	to.cred_hash = h->team_cred;
	to.mount_id = id;
	to.window_max = h->o.rate_max;
	to.window_ms = h->o.rate_interval_ms;
	to.search_per_sec = h->o.search_per_sec;
	to.search_interval_ms = 1000;
	/* Each round trip to Redis gives up after this (then the mount goes on
	 * alone until Redis answers). Above the library's 200 ms: a busy
	 * machine (a 2-core box running a build) answers a local Redis slower
	 * than that now and then, and a mount should not leave its team for it;
	 * far below op_timeout, which a syscall waits at most. */
	to.cmd_timeout_ms = TEAM_CMD_TIMEOUT_MS;
	to.on_change = on_change;
	to.ud = h;
	rc = team_new(&to, &h->team, &why);
	secret_free(h->redis_password); /* the team holds the one copy now */
	h->redis_password = NULL;
	if (rc) {
		fprintf(stderr, "hubfs: redis=%s: %s; refusing to mount\n", h->o.redis_url,
			why ? why : strerror(-rc));
		return -1;
	}
	if (!team_connected(h->team))
		fprintf(stderr, "hubfs: warning: redis=%s does not answer yet; mounting on this "
			"mount's share of the rate budget until it does (hubfs status shows it)\n",
			h->o.redis_url);
	rc = hs_client_set_team(h->hc, h->team);
	if (rc == 0)
		rc = cache_team_attach(h->cache, h->team, h->portal_id);
	if (rc) {
		fprintf(stderr, "hubfs: redis=%s: cannot attach the team: %s\n", h->o.redis_url,
			strerror(-rc));
		return -1;
	}
	g_rw_lock_writer_lock(&h->team_rw);
	h->team_cache = h->cache;
	g_rw_lock_writer_unlock(&h->team_rw);
	log_notice("team: joined through %s as %s (%d mount(s) seen)", h->o.redis_url, id,
		   team_mounts(h->team));
	return 0;
}

void hubfs_team_detach(struct hubfs *h)
{
	if (!h->team)
		return;
	signal(SIGPIPE, SIG_IGN); /* fuse_remove_signal_handlers() put it back */
	g_rw_lock_writer_lock(&h->team_rw);
	h->team_cache = NULL;
	g_rw_lock_writer_unlock(&h->team_rw);
	cache_team_detach(h->cache);
}

void hubfs_team_free(struct hubfs *h)
{
	if (h->team) {
		hs_client_set_team(h->hc, NULL); /* no call runs: the cache and writeback are gone */
		team_free(h->team);
		h->team = NULL;
	}
	if (h->team_rw_init) /* a mount that failed before the team has none */
		g_rw_lock_clear(&h->team_rw);
	h->team_rw_init = false;
}
