/* audit.c - the audit view (-o audit_view=PATH): the same daemon serves a
 * second, read-only FUSE session on PATH, from the same cache, client and API
 * budget, so an audit (grep -r, find) of a read-write mount runs at read-only
 * speed without a second daemon, login or cache.
 *
 * Why a second session rather than a second daemon: a read-write mount needs
 * the FLUSH of every close(), because that is where a save is checked and
 * refused with EINVAL; a read-only session answers FLUSH with ENOSYS once and
 * the kernel sends no more, which is most of a warm grep's cost. The view is
 * mounted `ro` in the kernel, so every write fails with EROFS before it gets
 * here (the handlers below say EROFS too, should one arrive).
 *
 * The handlers are the main mount's (fs/ops.c, the write path's forgets:
 * the kernels of both mounts hold references in the same tables), but for
 * the writes, open, flush and init. While a handler runs for the view, its
 * thread is marked (audit_serving), and the modes it serves lose their write
 * bits. The view's loop runs in a thread of its own; the kernel caches of
 * both mounts are invalidated together (ops.c's invalidation thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/log.h"
#include "fs/internal.h"

#define AUDIT_WAKE_SIGNAL SIGUSR2
#define AUDIT_STOP_POLL_US 20000

/* Thread-local, not in struct hubfs: it says which session the request this
 * thread is serving came from, which the shared handlers (they reply
 * themselves) cannot be told otherwise short of a second copy of each. */
static __thread bool serving;

bool audit_serving(void)
{
	return serving;
}

/* Run a shared handler for the view: the modes it serves are read-only. */
#define AS_VIEW(call) \
	do { \
		serving = true; \
		call; \
		serving = false; \
	} while (0)

static void a_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	AS_VIEW(hubfs_ops.lookup(req, parent, name));
}

static void a_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	AS_VIEW(hubfs_ops.getattr(req, ino, fi));
}

static void a_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	AS_VIEW(hubfs_ops.readdirplus(req, ino, size, off, fi));
}

static void a_init(void *userdata, struct fuse_conn_info *conn)
{
	hubfs_conn_init(conn);
}

static void a_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* No per-open state, as on the main mount: ENOSYS ends open and release
	 * round trips (FUSE_CAP_NO_OPEN_SUPPORT). */
	fuse_reply_err(req, (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) ? EROFS
										  : ENOSYS);
}

/* Nothing to commit here: ENOSYS, and the kernel sends no more FLUSH (nor
 * fsync) on this mount. */
static void a_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

static void a_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

static void a_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void a_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void a_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void a_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void a_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void a_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void a_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void a_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void a_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void a_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		       size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void a_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

/* The main mount's handlers, but for the ones above. */
static struct fuse_lowlevel_ops view_ops(void)
{
	struct fuse_lowlevel_ops o = hubfs_ops;

	o.init = a_init;
	o.destroy = NULL;
	o.lookup = a_lookup;
	o.getattr = a_getattr;
	o.readdirplus = a_readdirplus;
	o.open = a_open;
	o.flush = a_flush;
	o.fsync = a_fsync;
	o.setattr = a_setattr;
	o.write = a_write;
	o.create = a_create;
	o.mknod = a_mknod;
	o.mkdir = a_mkdir;
	o.unlink = a_unlink;
	o.rmdir = a_unlink;
	o.symlink = a_symlink;
	o.rename = a_rename;
	o.link = a_link;
	o.setxattr = a_setxattr;
	o.removexattr = a_removexattr;
	return o;
}

/* Is one of the two paths the other, or inside it? */
static bool nested(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	if (strncmp(a, b, n) != 0)
		return false;
	if (la == lb)
		return true;
	/* "/" holds everything; else the longer one goes on with a '/' */
	return n == 1 || (la > lb ? a[n] : b[n]) == '/';
}

int hubfs_audit_prepare(struct hubfs *h, const char *mountpoint)
{
	g_autofree char *main_mnt = NULL;
	struct stat st;

	if (!h->o.audit_view)
		return 0;
	h->audit_path = realpath(h->o.audit_view, NULL);
	if (!h->audit_path || stat(h->audit_path, &st) != 0) {
		fprintf(stderr, "hubfs: audit_view=%s: %s\n", h->o.audit_view, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hubfs: audit_view=%s: not a directory\n", h->o.audit_view);
		return -1;
	}
	main_mnt = h->mountpoint ? g_strdup(h->mountpoint) : realpath(mountpoint, NULL);
	if (main_mnt && nested(main_mnt, h->audit_path)) {
		fprintf(stderr, "hubfs: audit_view=%s: %s\n", h->o.audit_view,
			!strcmp(main_mnt, h->audit_path) ? "is the mountpoint itself" :
			"the view and the mountpoint may not hold one another");
		return -1;
	}
	return 0;
}

static void *view_main(void *p)
{
	struct hubfs *h = p;
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 10 };

	fuse_session_loop_mt(h->audit_se, &lc);
	if (!g_atomic_int_get(&h->stopping))
		log_notice("audit view %s was unmounted; %s goes on serving", h->audit_path,
			   h->mountpoint ? h->mountpoint : "the mount");
	g_atomic_int_set(&h->audit_done, 1);
	return NULL;
}

static void wake(int sig)
{
	(void)sig; /* only to end the view loop's wait (it checks its session) */
}

int hubfs_audit_mount(struct hubfs *h)
{
	struct fuse_lowlevel_ops ops = view_ops(); /* fuse_session_new keeps a copy */
	struct sigaction sa = { .sa_handler = wake };
	g_autofree char *opts = NULL;
	char *argv[] = { "hubfs", "-o", NULL, NULL };
	struct fuse_args args;

	if (!h->audit_path)
		return 0;
	opts = g_strdup_printf("ro,fsname=hubspot:%" G_GUINT64_FORMAT ",subtype=hubfs,"
			       "default_permissions,noatime%s", h->portal_id,
			       h->o.allow_other ? ",allow_other" : "");
	argv[2] = opts;
	args = (struct fuse_args)FUSE_ARGS_INIT(3, argv);
	h->audit_se = fuse_session_new(&args, &ops, sizeof(ops), h);
	fuse_opt_free_args(&args);
	if (!h->audit_se) {
		fprintf(stderr, "hubfs: audit_view=%s: cannot start a FUSE session\n", h->audit_path);
		return -1;
	}
	if (fuse_session_mount(h->audit_se, h->audit_path) != 0) {
		fprintf(stderr, "hubfs: audit_view=%s: cannot mount there (see above)\n",
			h->audit_path);
		fuse_session_destroy(h->audit_se);
		h->audit_se = NULL;
		return -1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(AUDIT_WAKE_SIGNAL, &sa, NULL);
	if (pthread_create(&h->audit_thread, NULL, view_main, h) != 0) {
		fprintf(stderr, "hubfs: audit_view=%s: cannot start its thread\n", h->audit_path);
		fuse_session_unmount(h->audit_se);
		fuse_session_destroy(h->audit_se);
		h->audit_se = NULL;
		return -1;
	}
	h->audit_running = true;
	log_info("audit view of portal %" G_GUINT64_FORMAT " on %s", h->portal_id, h->audit_path);
	return 0;
}

void hubfs_audit_stop(struct hubfs *h)
{
	if (!h->audit_se)
		return;
	g_atomic_int_set(&h->stopping, 1); /* the main session has ended */
	/* Its kernel caches are invalidated by that thread: stop it first. */
	hubfs_inval_stop(h);
	fuse_session_exit(h->audit_se);
	/* Detach the view (lazily, as fusermount3 -u -z): if nothing is using it
	 * the kernel ends the session and its loop returns. */
	fuse_session_unmount(h->audit_se);
	if (h->audit_running) {
		/* If something still holds it (a shell's cwd), the loop waits on its
		 * workers: a signal makes it see the session is over, and those
		 * users get ENOTCONN once its descriptor is closed. */
		while (!g_atomic_int_get(&h->audit_done)) {
			pthread_kill(h->audit_thread, AUDIT_WAKE_SIGNAL);
			g_usleep(AUDIT_STOP_POLL_US);
		}
		pthread_join(h->audit_thread, NULL);
		h->audit_running = false;
	}
	fuse_session_destroy(h->audit_se);
	h->audit_se = NULL;
}
