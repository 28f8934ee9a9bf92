/* hubfs.h - the one struct of a mounted hubfs, reached from every request via
 * fuse_req_userdata(). No mutable globals: tests can build two. */
#ifndef HUBFS_HUBFS_H
#define HUBFS_HUBFS_H

#include <stdbool.h>
#include <stdint.h>

#include <fuse_lowlevel.h>
#include <glib.h>

#include "cache/cache.h"
#include "client/hubspot.h"

struct hubfs_opts {
	char *api_url;
	char *token_file;
	char *ca_file;
	char *shown[4];        /* per type: default / all / csv */
	int ttl_s;             /* kernel + cache freshness; default 60 */
	int op_timeout_s;      /* longest any syscall waits; default 30 */
	int index_delay_s;     /* HubSpot search indexing delay; default 10 */
	int relist_interval_s; /* default 900 */
	int rate_max;          /* default 100 */
	int rate_interval_ms;  /* default 10000 */
	int search_per_sec;    /* default 5 */
	int cache_mb;          /* default 512 */
	int writeback_delay_ms;/* default 2000 */
	int drain_timeout_s;   /* default 30 */
	int log_level;         /* syslog level; default LOG_NOTICE */
	bool ro;
	bool allow_delete;
	bool foreground;
};

struct hubfs {
	struct hubfs_opts o;
	struct hs_client *hc;
	struct cache *cache;
	struct fuse_session *se;
	uint64_t portal_id;
	char *token;           /* never logged */
	int64_t mounted_ms;    /* hs_now_ms() at mount */
	struct timespec mount_time; /* wall clock, for directory times */
	uid_t uid;
	gid_t gid;

	GAsyncQueue *inval;    /* fuse_ino_t to invalidate, drained by inval_thread */
	GThread *inval_thread;

	GMutex lock;           /* protects the fields below */
	char *status_snap;     /* last .hubfs/status.json rendered */
	size_t status_len;
};

/* Milliseconds since the epoch, wall clock. */
int64_t hubfs_wall_ms(void);

/* fs/ops.c */
extern const struct fuse_lowlevel_ops hubfs_ops;
/* Start/stop the kernel-cache invalidation thread (needs h->se). */
void hubfs_inval_start(struct hubfs *h);
void hubfs_inval_stop(struct hubfs *h);
/* Cache hook: a record's bytes changed; queue kernel invalidation. */
void hubfs_record_changed(void *ud, int type, uint64_t id);

/* fs/status.c: g_malloc'd .hubfs/status.json and .hubfs/README.md texts. */
char *hubfs_status_json(struct hubfs *h, size_t *len);
const char *hubfs_readme_text(size_t *len);

/* fs/opts.c */
/* Parse options from argv (removing hubfs's own) and the config file; fill h->o
 * and h->token. Returns 0, or -1 after printing a reason. */
int hubfs_opts_parse(struct fuse_args *args, struct hubfs *h);
void hubfs_opts_usage(void);
void hubfs_opts_free(struct hubfs_opts *o);

#endif
