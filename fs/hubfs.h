/* hubfs.h - the one struct of a mounted hubfs, reached from every request via
 * fuse_req_userdata(). No mutable globals: tests can build two. */
#ifndef HUBFS_HUBFS_H
#define HUBFS_HUBFS_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>
#include <glib.h>

#include "cache/cache.h"
#include "cache/model/objtypes.h"
#include "cache/writeback/writeback.h"
#include "client/hubspot.h"
#include "client/team.h"
#include "fs/inode.h"

struct hubfs_opts {
	char *api_url;
	char *token_file;
	char *ca_file;
	char *audit_view;      /* -o audit_view=PATH: the read-only twin's mountpoint, or NULL */
	char *redis_url;       /* redis=: the team's Redis (fs/team.c), or NULL: no team */
	char *shown[4];        /* per type: default / all / csv */
	char *types;           /* -o types=: NULL (all), "core", or names/objectTypeIds */
	GPtrArray *props_more; /* "name=LIST" of props_<name> for other types, or NULL */
	char *profile;         /* SOURCE profile:<name>, or NULL */
	uint64_t portal;       /* the portal the mount must be (SOURCE hubspot:<id>, portal=), or 0 */
	int ttl_s;             /* kernel + cache freshness; default 60 */
	int op_timeout_s;      /* longest any syscall waits; default 30 */
	int index_delay_s;     /* HubSpot search indexing delay; default 10 */
	int relist_interval_s; /* default 900 */
	int rate_max;          /* default 100 */
	int rate_interval_ms;  /* default 10000 */
	int search_per_sec;    /* default 5 */
	int cache_mb;          /* default 512 */
	int cache_disk_mb;     /* record texts kept on disk; default 1024 */
	bool cache_memory;     /* cache=memory: nothing kept on disk */
	int writeback_delay_ms;/* default 2000 */
	int drain_timeout_s;   /* default 30 */
	int log_level;         /* syslog level; default LOG_NOTICE */
	mode_t umask;          /* taken from every mode served; default 077 */
	bool allow_other;      /* -o allow_other was given */
	bool ro;
	bool allow_delete;
	bool foreground;
	char *webhook_listen;  /* the receiver's ADDR:PORT, or NULL: no receiver */
	char *webhook_path;    /* NULL: /hubspot */
	char *webhook_secret_file;
	char *webhook_public_url;
	bool webhook_v1;
};

struct hubfs {
	struct hubfs_opts o;
	struct hs_client *hc;
	/* The object types this mount shows, built once at mount (fs/types.c) and
	 * immutable after: read without a lock. Inode numbers carry their idx. */
	struct objtypes *types;
	const char **shown;    /* per type idx: the props_<type> option, or NULL (cache_opts) */
	GPtrArray *type_notes; /* what discovery warned of, for errors.log once it is open */
	struct cache *cache;
	struct fuse_session *se;
	uint64_t portal_id;
	char *token;           /* never logged */
	char *redis_password;  /* of redis_password_file=, or NULL; never logged; wiped once
				* the team has its copy */
	char team_cred[TEAM_CRED_HASH_LEN + 1]; /* hash of the app credential (team keys) */
	struct team *team;     /* the mount's team (redis=), or NULL */
	GRWLock team_rw;       /* readers: team callbacks using team_cache; writer: detach */
	bool team_rw_init;     /* team_rw was initialized (hubfs_team_setup ran) */
	struct cache *team_cache; /* the cache team changes go to, or NULL */
	struct oauth *oauth;   /* OAuth token source (client/oauth.h), or NULL: private-app token */
	char *webhook_secret;  /* until the receiver starts (it keeps a copy); never logged */
	struct wh_server *wh;  /* the webhook receiver (fs/webhooks.c), or NULL */
	int64_t mounted_ms;    /* hs_now_ms() at mount */
	struct timespec mount_time; /* wall clock, for directory times */
	uid_t uid;
	gid_t gid;

	GAsyncQueue *inval;    /* "i <ino>" / "e <parent> <name>" strings, drained by inval_thread */
	GThread *inval_thread;

	struct writeback *wb;
	int stopping;          /* atomic: unmounting */
	pthread_t hup_thread;  /* takes SIGHUP (sigwait) and refreshes */
	bool hup_running;
	char *state_dir;       /* $XDG_STATE_HOME/hubfs/<portal-id> */
	char *cache_dir;       /* $XDG_CACHE_HOME/hubfs/<portal-id>, or NULL (cache=memory) */
	char *mountpoint;      /* absolute */
	int lock_fd;           /* state_dir/mount.lock, held while mounted (fs/daemon.h) */
	int ready_fd;          /* to the waiting parent until the mount serves, else -1 */
	/* The audit view (fs/audit.c), if -o audit_view: */
	char *audit_path;      /* its mountpoint, absolute */
	struct fuse_session *audit_se;
	pthread_t audit_thread;/* runs its session loop */
	bool audit_running;
	int audit_done;        /* atomic: its loop returned */

	GMutex lock;           /* protects the fields below; never held across HTTP */
	char *snap[INO_SNAPS]; /* last text of status.json … ctl, by ino - INO_STATUS */
	size_t snap_len[INO_SNAPS];
	int64_t snap_ms[INO_SNAPS]; /* hs_now_ms() when taken */
	struct timespec snap_time[INO_SNAPS];
	GHashTable *dnodes;    /* ino -> struct dnode */
	GHashTable *dirents;   /* "parent/name" -> struct dnode */
	GHashTable *wbufs;     /* record ino -> struct wbuf */
	GHashTable *rec_errors;/* record ino -> last error reason (g_strdup) */
	GHashTable *open_dirs; /* open directory handles (ops.c), made on first use: the
				* kernel may unmount without their RELEASEDIR */
	uint64_t next_dyn;
	int64_t owners_fail_ms;/* hs_now_ms() of the last failed owners load (commit.c), 0 */
	size_t scratch_bytes;  /* total bytes of scratch and _new/ files */
	GString *errors;       /* .hubfs/errors.log, the last ERRORS_MAX bytes */
	GString *created;      /* .hubfs/created, the last CREATED_MAX lines */
	unsigned created_lines;
	uint64_t errors_recent[8]; /* hashes of the last lines (a repeat is dropped) */
	int64_t errors_recent_ms[8];
	unsigned errors_next;
	GQueue *rejected_order;/* rejected/ node inos, oldest first (rejected.c) */
	size_t rejected_bytes; /* their total size */
	GMutex errors_file_lock; /* guards errors_fd and its rotation (not h->lock:
				  * no file I/O under the mount-wide lock) */
	int errors_fd;         /* $state_dir/errors.log, append-only; protected by
				  * errors_file_lock */
	GQueue landed;         /* "key\tid" of creates that landed before their _new/ file
				* was marked committed (ctl.c), oldest first, at most 64 */
	GHashTable *queries;   /* ino -> struct qnode (search.c) */
	GHashTable *qnames;    /* "type/query" -> struct qnode */
	int64_t qswept_ms;     /* hs_now_ms of the last sweep of queries (search.c) */
};

#define ERRORS_MAX (1 << 20)
#define ERRORS_FILE_MAX (1 << 20)   /* errors.log on disk; then errors.log.1 */
#define CREATED_MAX 1000            /* .hubfs/created: the last lines kept */
#define REJECTED_MAX_FILES 1000     /* rejected/: files kept, oldest dropped first */
#define REJECTED_MAX_BYTES ((size_t)64 << 20)
#define SCRATCH_MAX ((size_t)64 << 20)
#define RECORD_WRITE_MAX (1 << 20)

/* fs/types.c: build h->types (and h->shown from the per-type options) at
 * mount, before the cache; 0, or -1 after printing why. Free them last. */
int hubfs_types_setup(struct hubfs *h);
/* Write what discovery warned of (types not shown, scopes missing, unknown
 * names in -o types= or props_<type>=) to errors.log, once it is open. */
void hubfs_types_report(struct hubfs *h);
void hubfs_types_free(struct hubfs *h);
/* Cache hook: HubSpot refused the token a type (403); errors.log says so,
 * with the scopes it needs, once. */
void hubfs_type_denied(void *ud, const struct objtype *type, const char *scopes,
		       const char *line);

/* fs/ops.c */
extern const struct fuse_lowlevel_ops hubfs_ops;
/* What hubfs asks of the kernel at FUSE_INIT (both sessions). */
void hubfs_conn_init(struct fuse_conn_info *conn);
/* Start/stop the kernel-cache invalidation thread (needs h->se). */
void hubfs_inval_start(struct hubfs *h);
void hubfs_inval_stop(struct hubfs *h);
/* Cache hook: a record's bytes changed; queue kernel invalidation. */
void hubfs_record_changed(void *ud, const struct objtype *type, uint64_t id);
/* Cache hook: the list of from/id toward `to` changed or was forgotten; queue
 * kernel invalidation of its directory, associations.json and the entries of
 * the links ids[0..n). */
void hubfs_assoc_changed(void *ud, const struct objtype *from, uint64_t id,
			 const struct objtype *to, const uint64_t *ids, size_t n);

/* Queue invalidation of an inode's attributes and pages (background thread). */
void hubfs_inval_inode(struct hubfs *h, fuse_ino_t ino);
/* Queue invalidation of a directory entry (from the background thread). */
void hubfs_inval_entry(struct hubfs *h, fuse_ino_t parent, const char *name);

/* The write path: fs/write.c (state), fs/ctl.c (hooks, errors.log, rejected/). */
void hubfs_write_init(struct hubfs *h);
void hubfs_write_destroy(struct hubfs *h);
struct writeback_hooks hubfs_writeback_hooks(struct hubfs *h);
/* Open / close $state_dir/errors.log (at start / at the end). */
void hubfs_errors_open(struct hubfs *h);
void hubfs_errors_close(struct hubfs *h);
/* Append a line to .hubfs/errors.log (obj is borrowed); the same line again
 * within 2 s is one event and is dropped. */
void hubfs_error(struct hubfs *h, json_object *obj);
/* One errors.log line {op, file (omitted if NULL), reason}. */
void hubfs_error_say(struct hubfs *h, const char *op, const char *file, const char *reason);
/* Log a rejected edit: errors.log line + bytes kept in .hubfs/rejected/. */
void hubfs_reject(struct hubfs *h, const char *file, const char *property, const char *reason,
		  const char *data, size_t len);

/* fs/webhooks.c: the webhook receiver, when webhook_listen is set: started
 * once the cache exists (0, or -1 after printing why), stopped before it
 * goes. Its counters go into status.json. */
int hubfs_webhooks_start(struct hubfs *h);
void hubfs_webhooks_stop(struct hubfs *h);
void hubfs_webhooks_status(struct hubfs *h, json_object *obj);
/* fs/audit.c: the read-only twin of -o audit_view=PATH. Before the main
 * mount: resolve and check PATH (0, or -1 after printing why). After it:
 * mount the view and serve it from a thread of its own (0, or -1 after
 * printing why, nothing left mounted). Stop: unmount it and end its thread,
 * once the main session has ended (it also stops the invalidation thread);
 * does nothing without a view. */
int hubfs_audit_prepare(struct hubfs *h, const char *mountpoint);
int hubfs_audit_mount(struct hubfs *h);
void hubfs_audit_stop(struct hubfs *h);

/* fs/search.c */
void hubfs_search_init(struct hubfs *h);
void hubfs_search_destroy(struct hubfs *h);
/* Free the directory handles no RELEASEDIR came for (after the session ended). */
void hubfs_dirs_destroy(struct hubfs *h);
size_t search_count(struct hubfs *h); /* query directories held */

/* fs/status.c: g_malloc'd .hubfs/status.json and .hubfs/README.md texts. */
char *hubfs_status_json(struct hubfs *h, size_t *len);
const char *hubfs_readme_text(size_t *len);

/* fs/opts.c */
/* Parse options from argv (removing hubfs's own) and the config file; fill h->o
 * and h->token. Returns 0, or -1 after printing a reason. */
int hubfs_opts_parse(struct fuse_args *args, struct hubfs *h);
void hubfs_opts_usage(void);
void hubfs_opts_free(struct hubfs_opts *o);
/* Re-read the OAuth credentials from the config (SIGHUP) into h->oauth, under
 * the same mode-0600 rule. 0 (also without OAuth), or -1 (old ones kept). */
int hubfs_opts_reload_oauth(struct hubfs *h);
/* With OAuth, bind h->oauth to h->portal_id: every new access token must be
 * for it, or nothing more is sent and errors.log, status.json and stderr say
 * why (client/oauth.h). 0 (also without OAuth), or -1 after printing why (the
 * first token is already for another portal). */
int hubfs_opts_bind_portal(struct hubfs *h);
/* First thing in main: no core dumps, no ptrace or /proc/PID/mem, environ
 * for the user's other processes (PR_SET_DUMPABLE 0). */
void hubfs_harden_process(void);

/* fs/team.c: the team of redis= (client/team.h). Setup after the cache
 * (the portal id keys the team): 0, or -1 after printing why; without
 * redis= nothing. Teardown before cache_free (the cache stops hearing the
 * team) and then team_free after it. */
int hubfs_team_setup(struct hubfs *h);
void hubfs_team_detach(struct hubfs *h);
void hubfs_team_free(struct hubfs *h);

#endif
