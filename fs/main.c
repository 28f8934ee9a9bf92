/* main.c - hubfs: mount (the commands are in cli.c). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/writeback/statedir.h"
#include "client/log.h"
#include "client/oauth.h"
#include "client/secret.h"
#include "fs/cli.h"
#include "fs/daemon.h"
#include "fs/hubfs.h"
#include "fs/notify.h"
#include "hubfs_config.h"

/* $XDG_STATE_HOME/hubfs/<portal-id>, mode 0700, checked (cache/writeback/statedir.h). */
static char *state_dir_for(uint64_t portal)
{
	g_autofree char *why = NULL;
	char *dir = NULL;

	if (statedir_prepare(portal, &dir, &why) != 0)
		fprintf(stderr, "hubfs: state directory: %s; refusing to mount\n", why);
	return dir;
}

/* $XDG_CACHE_HOME/hubfs/<portal-id> (else ~/.cache/hubfs/<portal-id>), or
 * NULL when neither is set (the cache then stays in memory). disk_open
 * makes it 0700. */
static char *cache_dir_for(uint64_t portal)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char id[24];

	snprintf(id, sizeof(id), "%" G_GUINT64_FORMAT, portal);
	if (xdg && *xdg == '/')
		return g_build_filename(xdg, "hubfs", id, NULL);
	if (home && *home == '/')
		return g_build_filename(home, ".cache", "hubfs", id, NULL);
	return NULL;
}

/* The cache's word to the user (a disk cache discarded, and why): once, in
 * the log and errors.log. */
static void cache_notice(void *ud, const char *msg)
{
	struct hubfs *h = ud;

	log_notice("%s", msg);
	if (h->errors)
		hubfs_error_say(h, "cache", NULL, msg);
}

/* SIGHUP refreshes every type (as `refresh` in .hubfs/ctl does). The signal is
 * blocked in every thread and taken here with sigwait, so the handler may call
 * anything. Workers are started later and inherit the mask. */
static void *hup_main(void *p)
{
	struct hubfs *h = p;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	while (sigwait(&set, &sig) == 0) {
		if (!h->cache)
			break;
		if (g_atomic_int_get(&h->stopping))
			break;
		log_notice("SIGHUP: refreshing every type");
		if (h->oauth)
			hubfs_opts_reload_oauth(h);
		cache_expire(h->cache);
		cache_refresh_async(h->cache, NULL);
	}
	return NULL;
}

static void hup_start(struct hubfs *h)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	h->hup_running = pthread_create(&h->hup_thread, NULL, hup_main, h) == 0;
}

static void hup_stop(struct hubfs *h)
{
	if (!h->hup_running)
		return;
	g_atomic_int_set(&h->stopping, 1);
	pthread_kill(h->hup_thread, SIGHUP);
	pthread_join(h->hup_thread, NULL);
	h->hup_running = false;
}

static int portal_of(struct hubfs *h)
{
	struct hs_call call = { .prio = RL_PRIO_USER,
				.deadline_ms = hs_now_ms() + (int64_t)h->o.op_timeout_s * 1000 };
	json_object *resp = NULL, *v;
	int rc = hs_account_info(h->hc, &call, &resp);

	if (rc == 0 && json_object_object_get_ex(resp, "portalId", &v))
		h->portal_id = (uint64_t)json_object_get_int64(v);
	else if (rc == 0)
		rc = -EPROTO;
	else
		fprintf(stderr, "hubfs: cannot reach HubSpot at %s: %s (%s)\n", h->o.api_url,
			strerror(-rc), call.err.message[0] ? call.err.message : "no answer");
	json_object_put(resp);
	if (rc == 0 && h->o.portal && h->portal_id != h->o.portal) { /* SOURCE hubspot:<id>, portal= */
		fprintf(stderr, "hubfs: the token is for portal %" G_GUINT64_FORMAT ", but this mount is for "
			"portal %" G_GUINT64_FORMAT " (SOURCE hubspot:<id>, or portal=); refusing to mount\n",
			h->portal_id, h->o.portal);
		rc = -EACCES;
	}
	return rc;
}

/* Everything that must live in the process that serves (fs/daemon.c says
 * why): the client and its OAuth token, the portal, the mount lock, the cache
 * and its worker, the journal and its batcher, the session, the SIGHUP and
 * invalidation threads. Startup errors are printed to stderr, which is still
 * the user's terminal. Returns 0 once mounted (h->se set), else 1 after
 * undoing what it did. */
static int mount_setup(struct hubfs *h, struct fuse_args *args, const char *mountpoint)
{
	struct hs_client_opts co = { 0 };
	struct cache_opts cao = { 0 };
	struct cache_hooks hooks = { 0 };
	const char *why = NULL;
	char mopts[256];

	/* SIGHUP belongs to the hup thread (sigwait): block it before any thread
	 * starts (cache, writeback, libcurl's resolver), or one of those takes it
	 * with fuse's exit handler and the mount goes away. */
	{
		sigset_t hup;

		sigemptyset(&hup);
		sigaddset(&hup, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &hup, NULL);
	}
	if (hubfs_audit_prepare(h, mountpoint) != 0) /* before any request */
		return 1;
	if (h->oauth) {
		struct hs_error e = { 0 };

		if (oauth_start(h->oauth, hs_now_ms(), hs_now_ms() + (int64_t)h->o.op_timeout_s * 1000,
				&e) != 0) {
			fprintf(stderr, "hubfs: OAuth: cannot get an access token from %s/oauth/v1/token: "
				"%s%s%s (check client_id, client_secret and refresh_token in the config)\n",
				h->o.api_url, e.category, e.category[0] ? ": " : "", e.message);
			return 1;
		}
	}
	co.api_url = h->o.api_url;
	co.token = h->token;
	co.oauth = h->oauth;
	co.ca_file = h->o.ca_file;
	co.rate_max = h->o.rate_max;
	co.rate_interval_ms = h->o.rate_interval_ms;
	co.search_per_sec = h->o.search_per_sec;
	if (hs_client_new(&co, &h->hc, &why) != 0) {
		fprintf(stderr, "hubfs: %s: %s\n", h->o.api_url, why ? why : "cannot create client");
		return 1;
	}
	secret_free(h->token); /* the client holds the one copy now */
	h->token = NULL;
	if (portal_of(h) != 0 || hubfs_opts_bind_portal(h) != 0)
		return 1;
	h->mountpoint = realpath(mountpoint, NULL);
	h->state_dir = state_dir_for(h->portal_id);
	if (!h->state_dir)
		return 1;
	/* One mount per portal and state directory: a second one would share the
	 * journal. Refused before the worker, the batcher or the journal start. */
	if (instance_lock(h->state_dir, h->portal_id, h->mountpoint ? h->mountpoint : mountpoint,
			  &h->lock_fd) != 0)
		return 1;

	cao.ttl_ms = (int64_t)h->o.ttl_s * 1000;
	cao.index_delay_ms = (int64_t)h->o.index_delay_s * 1000;
	cao.relist_ms = (int64_t)h->o.relist_interval_s * 1000;
	cao.background = true;
	cao.max_bytes = (size_t)h->o.cache_mb << 20;
	if (!h->o.cache_memory) {
		h->cache_dir = cache_dir_for(h->portal_id);
		cao.disk_dir = h->cache_dir;
		cao.portal_id = h->portal_id;
		cao.disk_max_bytes = (size_t)h->o.cache_disk_mb << 20;
	}
	if (hubfs_types_setup(h) != 0)
		return 1;
	cao.shown = h->shown;
	hooks.record_changed = hubfs_record_changed;
	hooks.assoc_changed = hubfs_assoc_changed;
	hooks.type_denied = hubfs_type_denied;
	hooks.notice = cache_notice;
	hooks.ud = h;
	h->inval = g_async_queue_new_full(g_free);
	hubfs_write_init(h); /* errors.log, for the cache's notices */
	h->cache = cache_new(h->hc, h->types, &cao, &hooks);
	if (cache_disk_notice(h->cache))
		cache_notice(h, cache_disk_notice(h->cache));
	else if (!h->o.cache_memory && !h->cache_dir)
		cache_notice(h, "neither XDG_CACHE_HOME nor HOME is set: the cache is kept in memory "
			     "only");
	if (hubfs_team_setup(h) != 0) /* redis=: before any write can land */
		return 1;
	hubfs_types_report(h);
	hubfs_search_init(h);
	if (!h->o.ro) {
		struct writeback_opts wo = { .types = h->types, .state_dir = h->state_dir,
					     .delay_ms = h->o.writeback_delay_ms,
					     .index_delay_ms = (int64_t)h->o.index_delay_s * 1000 };
		struct writeback_hooks wh = hubfs_writeback_hooks(h);
		int rc = writeback_new(h->hc, h->cache, &wo, &wh, &h->wb);

		if (rc) {
			fprintf(stderr, "hubfs: journal in %s: %s\n", h->state_dir, strerror(-rc));
			return 1;
		}
	}
	if (hubfs_webhooks_start(h) != 0) /* webhook_listen: after the fork, once the cache is */
		return 1;

	snprintf(mopts, sizeof(mopts), "-ofsname=hubspot:%" G_GUINT64_FORMAT
		 ",subtype=hubfs,default_permissions,noatime", h->portal_id);
	fuse_opt_add_arg(args, mopts);
	h->se = fuse_session_new(args, &hubfs_ops, sizeof(hubfs_ops), h);
	if (!h->se)
		return 1;
	if (fuse_set_signal_handlers(h->se) != 0)
		goto out_session;
	hup_start(h);
	if (fuse_session_mount(h->se, mountpoint) != 0)
		goto out_signals;
	if (hubfs_audit_mount(h) != 0) {
		fuse_session_unmount(h->se);
		goto out_signals;
	}
	clock_gettime(CLOCK_REALTIME, &h->mount_time);
	h->mounted_ms = hs_now_ms();
	log_info("mounted portal %" G_GUINT64_FORMAT " on %s", h->portal_id, mountpoint);
	hubfs_inval_start(h);
	return 0;

out_signals:
	hup_stop(h);
	fuse_remove_signal_handlers(h->se);
out_session:
	fuse_session_destroy(h->se);
	h->se = NULL;
	return 1;
}

/* Unmounted (or never mounted): stop background work first, so the stop goes
 * ahead of queued refreshes and relists; send what is queued within
 * drain_timeout (the rest stays in the journal for the next mount, and
 * writeback_free says so loudly); then free everything. */
static void mount_teardown(struct hubfs *h)
{
	g_atomic_int_set(&h->stopping, 1);
	hubfs_webhooks_stop(h); /* no delivery after this */
	cache_stop(h->cache);
	writeback_free(h->wb, h->se ? (int64_t)h->o.drain_timeout_s * 1000 : 0);
	h->wb = NULL;
	hubfs_audit_stop(h);
	if (h->se) {
		hubfs_inval_stop(h);
		hup_stop(h);
		fuse_remove_signal_handlers(h->se);
		fuse_session_destroy(h->se);
	}
	hubfs_dirs_destroy(h);
	hubfs_write_destroy(h);
	g_queue_clear_full(&h->landed, g_free);
	hubfs_search_destroy(h);
	hubfs_team_detach(h);
	cache_free(h->cache);
	hubfs_team_free(h);
	hubfs_types_free(h);
	if (h->inval)
		g_async_queue_unref(h->inval);
	hs_client_free(h->hc);
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	g_free(h->state_dir);
	g_free(h->cache_dir);
	free(h->mountpoint);
	free(h->audit_path);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts copts = { 0 };
	struct fuse_loop_config lc = { 0 };
	struct hubfs h = { .lock_fd = -1, .ready_fd = -1 };
	int ret = 1;

	hubfs_harden_process();
	/* Two malloc arenas, not eight per core: the record texts of a big
	 * listing are allocated by the listing threads and freed (evicted) by
	 * others, and each arena keeps free space of its own (7 of 81 MiB at
	 * 300,000 contacts with cache_mb=32). MALLOC_ARENA_MAX in the
	 * environment still decides. */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
	if ((ret = cli_main(argc, argv)) >= 0) /* status, sync, --help, --version */
		return ret;
	ret = 1;
	if (hubfs_opts_parse(&args, &h) != 0)
		goto out_args;
	if (fuse_parse_cmdline(&args, &copts) != 0)
		goto out_args;
	if (copts.show_help) {
		hubfs_opts_usage();
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (copts.show_version) {
		printf("hubfs %s\n", HUBFS_VERSION);
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (!copts.mountpoint) {
		hubfs_opts_usage();
		goto out_args;
	}
	log_set_level(copts.debug ? LOG_DEBUG : h.o.log_level);
	h.o.foreground = copts.foreground;
	h.uid = getuid();
	h.gid = getgid();

	/* Daemonize first: the parent only waits for the child to serve (or
	 * fail) and exits with its status. */
	if (!copts.foreground) {
		int rc = daemon_start(&h.ready_fd, &ret);

		if (rc < 0)
			fprintf(stderr, "hubfs: cannot start in the background: %s\n", strerror(-rc));
		if (rc != 0)
			goto out_args;
		ret = 1;
	}
	g_mutex_init(&h.lock);
	if (mount_setup(&h, &args, copts.mountpoint) != 0)
		goto out_mount;
	if (!copts.foreground)
		daemon_detach(h.state_dir);
	else if (chdir("/") != 0)
		log_warn("chdir /: %s", strerror(errno));

	/* The parent (and systemd, Type=notify) is told the mount serves from
	 * the FUSE init callback. */
	lc.clone_fd = copts.clone_fd;
	lc.max_idle_threads = copts.max_idle_threads == UINT_MAX ? 10 : copts.max_idle_threads;
	ret = fuse_session_loop_mt(h.se, &lc);
	/* libfuse's handlers end the loop on SIGTERM (systemctl stop) and SIGINT,
	 * which it then returns: a clean stop, exit 0 once unmounted and drained. */
	ret = ret == 0 || ret == SIGTERM || ret == SIGINT ? 0 : 1;
	hubfs_notify_stopping(&h);
	fuse_session_unmount(h.se);
	hubfs_audit_stop(&h); /* the view goes with the main mount */
out_mount:
	mount_teardown(&h);
	g_mutex_clear(&h.lock);
out_args:
	oauth_free(h.oauth);
	secret_free(h.webhook_secret);
	secret_free(h.redis_password);
	if (h.token) {
		memset(h.token, 0, strlen(h.token));
		g_free(h.token);
	}
	hubfs_opts_free(&h.o);
	free(copts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
