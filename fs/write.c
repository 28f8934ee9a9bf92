/* write.c - the write path of the FUSE layer: writes into record files.
 *
 * Record files have no per-open state (open answers ENOSYS, see ops.c), so a
 * record being written has one buffer per inode, filled by setattr(size) and
 * write, and committed at flush by the process that wrote it: parsed,
 * validated, diffed, journaled (writeback_update, see commit.c), and made
 * visible to every reader at once. One save at a time: a second process that
 * opened the record on its own gets EBUSY while the first still holds it;
 * processes sharing one open file (an inherited descriptor) write one save,
 * committed by the last close. Two saves have no writer to commit them and
 * are committed at once: the pages the kernel writes back from a shared
 * writable mapping (no pid), and truncate(2) of a path.
 *
 * Any other name created in a type directory is a scratch file (dnode.c): in
 * memory, fully POSIX, never uploaded; renaming one onto <id>.json commits it
 * as an edit (dirops.c), which is how vim, sed -i, jq > t && mv t f and
 * friends save. Writes to scratch and _new/ files and to .hubfs/ctl (ctl.c)
 * come through here too.
 *
 * Lock rules: h->lock guards dnodes, dirents, wbufs, rec_errors, snapshots and
 * the logs; it is never held across a cache, writeback or HTTP call, nor
 * across a read of /proc.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include "client/log.h"
#include "fs/internal.h"

#define ORPHAN_MS 2000 /* a buffer untouched this long, with no writer holding it, is orphaned */

/* --- pids: who wrote, so that only the writer's close commits -----------------
 *
 * Everything here that reads /proc runs without h->lock: a slow /proc (a
 * process being torn down) must not stall every other handler. */

static pid_t tgid_of(pid_t pid)
{
	char path[64], *text = NULL, *p;
	pid_t tgid = pid;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (g_file_get_contents(path, &text, NULL, NULL) && (p = strstr(text, "\nTgid:")))
		tgid = (pid_t)atoi(p + 6);
	g_free(text);
	return tgid;
}

/* Lock held. Note a writer: its thread id and its process id. */
static void writers_add(GArray *w, pid_t pid, pid_t tgid)
{
	pid_t ids[2] = { pid, tgid };

	for (int k = 0; k < 2; k++) {
		bool seen = false;

		for (guint i = 0; i < w->len && !seen; i++)
			seen = g_array_index(w, pid_t, i) == ids[k];
		if (!seen)
			g_array_append_val(w, ids[k]);
	}
}

/* Lock held. */
static bool writers_has(GArray *w, pid_t pid)
{
	for (guint i = 0; w && i < w->len; i++)
		if (g_array_index(w, pid_t, i) == pid)
			return true;
	return false;
}

/* Lock held. Forget a writer (both its ids). */
static void writers_drop(GArray *w, pid_t pid, pid_t tgid)
{
	for (guint i = w->len; i-- > 0;)
		if (g_array_index(w, pid_t, i) == pid || g_array_index(w, pid_t, i) == tgid)
			g_array_remove_index(w, i);
}

/* The descriptors process pid holds on path (GArray of int, never NULL).
 * Without open/release (no-open), this is how hubfs knows who has a record
 * open. Only readlink is used: it never calls back into this filesystem. */
static GArray *fds_on(pid_t pid, const char *path)
{
	GArray *fds = g_array_new(FALSE, FALSE, sizeof(int));
	char dir[64];
	GDir *d;
	const char *n;

	if (!path)
		return fds;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = g_dir_open(dir, 0, NULL);
	if (!d)
		return fds;
	while ((n = g_dir_read_name(d))) {
		g_autofree char *l = g_build_filename(dir, n, NULL);
		g_autofree char *t = g_file_read_link(l, NULL);

		if (t && !strcmp(t, path)) {
			int fd = atoi(n);

			g_array_append_val(fds, fd);
		}
	}
	g_dir_close(d);
	return fds;
}

/* Does process pid hold another descriptor on path? This tells the close
 * that ends a write from the close of a dup'd descriptor (`cmd > file`
 * closes one before writing): the descriptor being closed has already left
 * the table (close_fd, dup2 and exit all remove it before the flush), so any
 * match is another. */
static bool other_fd_open(pid_t pid, const char *path)
{
	GArray *fds = fds_on(pid, path);
	bool found = fds->len > 0;

	g_array_unref(fds);
	return found;
}

/* Do processes a and b hold path through one open file (a descriptor
 * inherited or passed from one to the other, as a shell's `exec 3>f; cmd
 * >&3`)? Then they write one save together. When the kernel cannot tell
 * (no kcmp), yes: the old, shared behaviour. */
static bool share_open_file(pid_t a, pid_t b, const char *path)
{
	GArray *fa = fds_on(a, path), *fb = fds_on(b, path);
	bool same = false;

	for (guint i = 0; i < fa->len && !same; i++) {
		for (guint k = 0; k < fb->len && !same; k++) {
			long r = syscall(SYS_kcmp, a, b, KCMP_FILE, g_array_index(fa, int, i),
					 g_array_index(fb, int, k));

			same = r == 0 || (r < 0 && (errno == ENOSYS || errno == EPERM));
		}
	}
	g_array_unref(fa);
	g_array_unref(fb);
	return same;
}

/* The system call thread tid is in (from /proc), or -1 when it cannot be
 * read (another user's process, or a hardened ptrace policy). */
static long current_syscall(pid_t tid)
{
	char path[64], *text = NULL;
	long nr = -1;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)tid);
	if (g_file_get_contents(path, &text, NULL, NULL) && g_ascii_isdigit(text[0]))
		nr = strtol(text, NULL, 10);
	g_free(text);
	return nr;
}

static char *mount_path(struct hubfs *h, const char *rel)
{
	return h->mountpoint ? g_strconcat(h->mountpoint, "/", rel, NULL) : NULL;
}

static pid_t req_pid(fuse_req_t req)
{
	return fuse_req_ctx(req)->pid;
}

/* --- record write buffers ---------------------------------------------------- */

static void wbuf_free(gpointer p)
{
	struct wbuf *w = p;

	if (!w)
		return;
	g_byte_array_unref(w->data);
	g_free(w->base);
	g_array_free(w->writers, TRUE);
	g_free(w);
}

/* May process pid write into a record whose buffer the processes in writers
 * (a copy) are writing? Yes if none of them still has the file open, or if
 * pid shares an open file with one of them (one save). Otherwise the record
 * is being saved by another process: -EBUSY, logged, and that save is left
 * alone (its bytes are not mixed with these, nor reset by their failure). */
static int may_join(struct hubfs *h, fuse_ino_t ino, pid_t pid, GArray *writers)
{
	g_autofree char *label = commit_label(h, ino);
	g_autofree char *path = mount_path(h, label);
	pid_t busy = 0;

	for (guint i = 0; i < writers->len; i++) {
		pid_t w = g_array_index(writers, pid_t, i);

		if (!other_fd_open(w, path))
			continue;
		if (share_open_file(w, pid, path))
			return 0;
		busy = w;
	}
	if (busy) {
		g_autofree char *why = g_strdup_printf("being saved by another process (pid %d); nothing "
						       "was written: save again once it has closed the file",
						       (int)busy);

		hubfs_error_say(h, "write", label, why);
		return -EBUSY;
	}
	return 0;
}

/* The buffer of a record, created from the current record file if needed.
 * Returns 0 with h->lock HELD (*out valid until unlocked), or -errno unlocked
 * (-EBUSY: another process is saving this record). */
int wbuf_get(struct hubfs *h, fuse_ino_t ino, pid_t pid, struct wbuf **out)
{
	struct wbuf *w;
	char *text = NULL;
	size_t len = 0;
	pid_t tgid;
	bool admitted = false;
	int rc;

	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w && writers_has(w->writers, pid)) {
		w->touched_ms = hs_now_ms();
		*out = w;
		return 0; /* lock held */
	}
	g_mutex_unlock(&h->lock);
	tgid = tgid_of(pid);
	for (;;) {
		GArray *others;

		g_mutex_lock(&h->lock);
		w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
		if (!w)
			break;
		if (admitted || writers_has(w->writers, tgid)) {
			writers_add(w->writers, pid, tgid);
			w->touched_ms = hs_now_ms();
			*out = w;
			return 0; /* lock held */
		}
		others = g_array_copy(w->writers);
		g_mutex_unlock(&h->lock);
		rc = may_join(h, ino, pid, others);
		g_array_unref(others);
		if (rc)
			return rc;
		admitted = true;
	}
	g_mutex_unlock(&h->lock);

	rc = wfile_text(h, ino, &text, &len);
	if (rc)
		return rc;
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (!w) {
		w = g_new0(struct wbuf, 1);
		w->data = g_byte_array_new();
		g_byte_array_append(w->data, (guint8 *)text, (guint)len);
		w->base = text;
		w->base_len = len;
		w->writers = g_array_new(FALSE, FALSE, sizeof(pid_t));
		g_hash_table_insert(h->wbufs, GSIZE_TO_POINTER(ino), w);
		text = NULL;
	}
	/* (A buffer another process made meanwhile is joined: both started
	 * writing at the same moment, a race a real file has too.) */
	writers_add(w->writers, pid, tgid);
	w->touched_ms = hs_now_ms();
	*out = w; /* valid while h->lock is held */
	g_free(text);
	return 0; /* lock held */
}

/* A save with no writer behind it, committed now: the bytes of the record
 * file with data at off (a page the kernel writes back from a shared
 * mapping), or cut or zero-filled to size (truncate(2) of a path: no open
 * file, so no close would ever commit it). Validated, journaled and sent like
 * any save; refused ones are logged and kept, and the error returned. */
static int save_now(struct hubfs *h, fuse_ino_t ino, const char *data, size_t size, off_t off,
		    size_t truncate_to)
{
	char *text = NULL;
	size_t len = 0;
	GByteArray *b;
	int rc;

	rc = wfile_text(h, ino, &text, &len);
	if (rc)
		return rc;
	b = g_byte_array_new();
	g_byte_array_append(b, (guint8 *)text, (guint)len);
	if (data) {
		if ((size_t)off + size > b->len)
			dnode_bytes_resize(b, (size_t)off + size);
		memcpy(b->data + off, data, size);
	} else {
		dnode_bytes_resize(b, truncate_to);
	}
	rc = wfile_commit(h, ino, (const char *)b->data, b->len, text, len, false);
	g_byte_array_unref(b);
	g_free(text);
	return rc;
}

/* A page written back from a shared writable mapping (mmap MAP_SHARED, then
 * the kernel's writeback at msync, close or later): it carries no writer's
 * pid. Part of a save in progress if there is one; else a save of its own. */
static int mapped_write(struct hubfs *h, fuse_ino_t ino, const char *buf, size_t size, off_t off)
{
	struct wbuf *w;

	if ((size_t)off + size > RECORD_WRITE_MAX)
		return -EFBIG;
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w) {
		if ((size_t)off + size > w->data->len)
			dnode_bytes_resize(w->data, (size_t)off + size);
		memcpy(w->data->data + off, buf, size);
		g_mutex_unlock(&h->lock);
		return 0;
	}
	g_mutex_unlock(&h->lock);
	return save_now(h, ino, buf, size, off, 0);
}

/* truncate(2) of a record path (no open file): part of a save in progress
 * by the same process, refused while another process saves the record, or
 * else a save of its own, now (so nothing is left behind uncommitted). */
static int truncate_path(struct hubfs *h, fuse_ino_t ino, pid_t pid, size_t size)
{
	struct wbuf *w;
	pid_t tgid = tgid_of(pid);
	bool busy = false;

	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w && (writers_has(w->writers, pid) || writers_has(w->writers, tgid)))
		dnode_bytes_resize(w->data, size);
	else
		busy = w != NULL;
	g_mutex_unlock(&h->lock);
	if (busy) {
		struct wbuf *mine;
		int rc = wbuf_get(h, ino, pid, &mine); /* -EBUSY, logged, unless they are done */

		if (rc)
			return rc;
		dnode_bytes_resize(mine->data, size);
		g_mutex_unlock(&h->lock);
		return 0;
	}
	return w ? 0 : save_now(h, ino, NULL, 0, 0, size);
}

/* A buffer nobody is writing any more: untouched for ORPHAN_MS and none of
 * its writers holds the file. That is a truncate(2) of a path that could not
 * be told from an open(O_TRUNC) (see truncate_path), or a writer gone
 * without a close. It is committed now, as the save it is (an empty one is
 * refused, logged and kept), instead of hiding the record. True if it was. */
static bool wbuf_reap(struct hubfs *h, fuse_ino_t ino)
{
	g_autofree char *label = commit_label(h, ino);
	g_autofree char *path = mount_path(h, label);
	int64_t now = hs_now_ms();
	struct wbuf *w;
	GArray *writers;
	bool held = false;

	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (!w || now - w->touched_ms < ORPHAN_MS || now - w->checked_ms < ORPHAN_MS) {
		g_mutex_unlock(&h->lock);
		return false;
	}
	w->checked_ms = now;
	writers = g_array_copy(w->writers);
	g_mutex_unlock(&h->lock);
	for (guint i = 0; i < writers->len && !held; i++)
		held = other_fd_open(g_array_index(writers, pid_t, i), path);
	g_array_unref(writers);
	if (held)
		return false;
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (!w || hs_now_ms() - w->touched_ms < ORPHAN_MS) {
		g_mutex_unlock(&h->lock);
		return false;
	}
	g_hash_table_steal(h->wbufs, GSIZE_TO_POINTER(ino));
	g_mutex_unlock(&h->lock);
	log_notice("%s: a save nobody closed (truncate of a path?); committing it now", label);
	wfile_commit(h, ino, (const char *)w->data->data, w->data->len, w->base, w->base_len, false);
	wbuf_free(w);
	return true;
}

bool wbuf_size(struct hubfs *h, fuse_ino_t ino, size_t *size)
{
	struct wbuf *w;

	wbuf_reap(h, ino);
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w)
		*size = w->data->len;
	g_mutex_unlock(&h->lock);
	return w != NULL;
}

int wbuf_read(struct hubfs *h, fuse_ino_t ino, off_t off, size_t size, char *buf, size_t *n)
{
	struct wbuf *w;
	int rc = -ENOENT;

	*n = 0;
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w) {
		if ((size_t)off < w->data->len) {
			*n = MIN(size, w->data->len - (size_t)off);
			memcpy(buf, w->data->data + off, *n);
		}
		rc = 0;
	}
	g_mutex_unlock(&h->lock);
	return rc;
}

/* --- handlers -------------------------------------------------------------- */

void hubfs_w_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		     struct fuse_file_info *fi)
{
	struct hubfs *h = H(req);
	struct dnode *d;
	struct stat st;
	double timeout;
	int rc = 0;

	if (is_wfile(ino) && (to_set & FUSE_SET_ATTR_SIZE)) {
		struct wbuf *w;

		if (h->o.ro || ino_readonly(h, ino)) {
			rc = -EROFS;
			goto out;
		}
		if ((size_t)attr->st_size > RECORD_WRITE_MAX) {
			rc = -EFBIG;
			goto out;
		}
		/* No file: truncate(2) of a path, or open(O_TRUNC) (the kernel
		 * sends both alike; only the latter is followed by writes and a
		 * close). A size other than 0, or a caller seen in truncate(2), is
		 * the former. Otherwise it is taken as an open, and wbuf_reap
		 * commits the buffer if no writer turns up. */
		if (!fi && (attr->st_size != 0 || current_syscall(req_pid(req)) == SYS_truncate)) {
			rc = truncate_path(h, ino, req_pid(req), (size_t)attr->st_size);
			goto out;
		}
		rc = wbuf_get(h, ino, req_pid(req), &w);
		if (rc)
			goto out;
		dnode_bytes_resize(w->data, (size_t)attr->st_size);
		g_mutex_unlock(&h->lock);
	} else if (INO_KIND(ino) == K_DYN) {
		g_mutex_lock(&h->lock);
		d = dnode_of(h, ino);
		if (!d)
			rc = -ENOENT;
		else if ((to_set & FUSE_SET_ATTR_SIZE) && (d->committed || d->kind == D_LINK))
			rc = -EPERM;
		else {
			if (to_set & FUSE_SET_ATTR_SIZE)
				rc = dnode_truncate(h, d, (size_t)attr->st_size);
			if (to_set & FUSE_SET_ATTR_MODE)
				d->mode = (d->mode & S_IFMT) | (attr->st_mode & 07777);
			if (to_set & FUSE_SET_ATTR_UID)
				d->uid = attr->st_uid;
			if (to_set & FUSE_SET_ATTR_GID)
				d->gid = attr->st_gid;
			if (to_set & FUSE_SET_ATTR_ATIME)
				d->atime = attr->st_atim;
			if (to_set & FUSE_SET_ATTR_MTIME)
				d->mtime = attr->st_mtim;
			if (to_set & FUSE_SET_ATTR_ATIME_NOW)
				dnode_now_ts(&d->atime);
			if (to_set & FUSE_SET_ATTR_MTIME_NOW)
				dnode_now_ts(&d->mtime);
			dnode_now_ts(&d->ctime);
		}
		g_mutex_unlock(&h->lock);
	} else if ((to_set & FUSE_SET_ATTR_SIZE) && ino != INO_CTL) {
		rc = h->o.ro ? -EROFS : -EPERM;
	}
	/* chmod/chown/utimens on records and directories: accepted as no-ops so
	 * editors and cp -p do not trip; the reported mode stays. */
out:
	if (rc == 0)
		rc = do_getattr(h, ino, &st, &timeout);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout);
}

void hubfs_w_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct hubfs *h = H(req);
	struct dnode *d;
	bool note_pid = false;
	int rc = 0;

	if (h->o.ro || ino_readonly(h, ino)) {
		rc = -EROFS;
	} else if (is_wfile(ino) && fi && fi->writepage) {
		rc = mapped_write(h, ino, buf, size, off);
	} else if (is_wfile(ino)) {
		struct wbuf *w;

		if ((size_t)off + size > RECORD_WRITE_MAX) {
			rc = -EFBIG;
			if (wbuf_get(h, ino, req_pid(req), &w) == 0) {
				w->too_big = true;
				g_mutex_unlock(&h->lock);
			}
		} else if ((rc = wbuf_get(h, ino, req_pid(req), &w)) == 0) {
			if ((size_t)off + size > w->data->len)
				dnode_bytes_resize(w->data, (size_t)off + size);
			memcpy(w->data->data + off, buf, size);
			g_mutex_unlock(&h->lock);
		}
	} else if (INO_KIND(ino) == K_DYN) {
		g_mutex_lock(&h->lock);
		d = dnode_of(h, ino);
		if (!d)
			rc = -ENOENT;
		else if (d->committed || d->kind == D_LINK)
			rc = -EPERM;
		else if (d->kind == D_NEWFILE && (size_t)off + size > RECORD_WRITE_MAX)
			rc = -EFBIG;
		else if ((rc = dnode_write(h, d, buf, size, off)) == 0 &&
			 !writers_has(d->writers, req_pid(req)))
			note_pid = true;
		g_mutex_unlock(&h->lock);
		if (note_pid) {
			pid_t tgid = tgid_of(req_pid(req));

			g_mutex_lock(&h->lock);
			d = dnode_of(h, ino);
			if (d)
				writers_add(d->writers, req_pid(req), tgid);
			g_mutex_unlock(&h->lock);
		}
	} else if (ino == INO_CTL) {
		rc = ctl_command(h, buf, size);
	} else {
		rc = -EBADF;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/* Is pid, or its process (*tgid, read from /proc when needed, else 0), a
 * writer of record ino's buffer? */
static bool record_writer(struct hubfs *h, fuse_ino_t ino, pid_t pid, pid_t *tgid)
{
	struct wbuf *w;
	bool mine;

	*tgid = 0;
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	mine = w && writers_has(w->writers, pid);
	g_mutex_unlock(&h->lock);
	if (!w || mine)
		return mine;
	*tgid = tgid_of(pid);
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	mine = w && writers_has(w->writers, *tgid);
	g_mutex_unlock(&h->lock);
	return mine;
}

/* At close: is the save not over yet? Not this process's last close of the
 * file (`cmd > file` closes the fd it dup'd before writing), or other
 * processes of the same save still hold it (a shell that handed its
 * descriptor to a command): the last one commits. This writer is dropped
 * from the buffer's writers. */
static bool save_goes_on(struct hubfs *h, fuse_ino_t ino, pid_t pid, pid_t tgid, const char *path)
{
	struct wbuf *w;
	GArray *others;
	bool still = false;

	if (other_fd_open(pid, path))
		return true;
	if (!tgid)
		tgid = tgid_of(pid);
	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (!w) {
		g_mutex_unlock(&h->lock);
		return true; /* someone else committed it */
	}
	writers_drop(w->writers, pid, tgid);
	others = g_array_copy(w->writers);
	g_mutex_unlock(&h->lock);
	for (guint i = 0; i < others->len && !still; i++)
		still = other_fd_open(g_array_index(others, pid_t, i), path);
	g_array_unref(others);
	return still;
}

/* Take record ino's buffer out of the table to commit it, or NULL (gone, or
 * empty at an fsync). */
static struct wbuf *wbuf_take(struct hubfs *h, fuse_ino_t ino, bool quiet)
{
	struct wbuf *w;

	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w && !(w->data->len == 0 && quiet))
		g_hash_table_steal(h->wbufs, GSIZE_TO_POINTER(ino));
	else
		w = NULL;
	g_mutex_unlock(&h->lock);
	return w;
}

/* Commit the buffer of record ino, written by pid. quiet: an fsync, which
 * only checks (and keeps the buffer when the check fails, for close). */
static int commit_record_buf(struct hubfs *h, fuse_ino_t ino, pid_t pid, bool quiet)
{
	g_autofree char *label = commit_label(h, ino);
	g_autofree char *path = mount_path(h, label);
	struct wbuf *w;
	pid_t tgid;
	int rc;

	if (!record_writer(h, ino, pid, &tgid))
		return 0; /* a reader's close, or nothing written */
	if (!quiet && save_goes_on(h, ino, pid, tgid, path))
		return 0;
	w = wbuf_take(h, ino, quiet);
	if (!w)
		return 0;
	if (w->too_big) {
		hubfs_reject(h, label, NULL, "larger than 1 MiB: nothing was saved",
			     (const char *)w->data->data, w->data->len);
		hubfs_inval_inode(h, ino);
		wbuf_free(w);
		return -EFBIG;
	}
	rc = wfile_commit(h, ino, (const char *)w->data->data, w->data->len, w->base, w->base_len,
			   quiet);
	if (quiet && rc != 0) {
		/* keep it for close, which reports the problem */
		g_mutex_lock(&h->lock);
		if (!g_hash_table_contains(h->wbufs, GSIZE_TO_POINTER(ino))) {
			g_hash_table_insert(h->wbufs, GSIZE_TO_POINTER(ino), w);
			w = NULL;
		}
		g_mutex_unlock(&h->lock);
		rc = 0;
	}
	wbuf_free(w);
	return rc;
}

/* A _new/ file pid wrote: its bytes (a reference), name and type, if it is
 * uncommitted and pid (or its process) a writer of it. Lock not held. */
static GByteArray *newfile_of(struct hubfs *h, fuse_ino_t ino, pid_t pid, char **name,
			      const struct objtype **type)
{
	GByteArray *data = NULL;
	struct dnode *d;
	pid_t tgid = pid;
	bool maybe;

	/* The writer's process id is read (from /proc, unlocked) only when the
	 * thread id is not known. */
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	maybe = d && d->kind == D_NEWFILE && d->name && !d->committed &&
		!writers_has(d->writers, pid);
	g_mutex_unlock(&h->lock);
	if (maybe)
		tgid = tgid_of(pid);
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d && d->kind == D_NEWFILE && d->name && !d->committed &&
	    (writers_has(d->writers, pid) || writers_has(d->writers, tgid))) {
		data = g_byte_array_ref(d->data);
		*name = g_strdup(d->name);
		*type = d->type;
	}
	g_mutex_unlock(&h->lock);
	return data;
}

/* Commit a _new/ file at its last close as a create. Only close commits
 * one (quiet, an fsync, does nothing). */
static int commit_newfile(struct hubfs *h, fuse_ino_t ino, pid_t pid, bool quiet)
{
	const struct objtype *type = NULL;
	g_autofree char *name = NULL, *rel = NULL, *path = NULL;
	char *key = NULL;
	GByteArray *data;
	struct dnode *d;
	int rc;

	if (quiet)
		return 0;
	data = newfile_of(h, ino, pid, &name, &type);
	if (!data)
		return 0;
	rel = g_strdup_printf("%s/_new/%s", type->name, name);
	path = mount_path(h, rel);
	if (other_fd_open(pid, path)) {
		g_byte_array_unref(data);
		return 0;
	}
	rc = commit_create(h, type, name, (const char *)data->data, data->len, &key);
	g_byte_array_unref(data);
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d) {
		g_array_set_size(d->writers, 0);
		if (rc == 0) {
			dnode_committed(h, d, key);
			key = NULL;
		}
	}
	g_mutex_unlock(&h->lock);
	g_free(key);
	return rc;
}

/* Commit what the calling process wrote to ino (quiet: fsync's probe): a
 * record's buffer as an edit, a _new/ file as a create. */
static int commit_for(struct hubfs *h, fuse_ino_t ino, pid_t pid, bool quiet)
{
	if (is_wfile(ino))
		return commit_record_buf(h, ino, pid, quiet);
	if (INO_KIND(ino) == K_DYN)
		return commit_newfile(h, ino, pid, quiet);
	return 0;
}

void hubfs_w_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Read-only: nothing to commit, and ENOSYS stops the kernel from sending a
	 * FLUSH round trip on every close (which dominates a warm grep -r). */
	if (H(req)->o.ro) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fuse_reply_err(req, -commit_for(H(req), ino, req_pid(req), false));
}

void hubfs_w_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	/* A valid buffer is journaled now (fsync = durable); an invalid one is left
	 * for close to report. fsync itself never fails (vim E667). */
	commit_for(H(req), ino, req_pid(req), true);
	fuse_reply_err(req, 0);
}

/* --- the write path's state ------------------------------------------------ */

void hubfs_write_init(struct hubfs *h)
{
	h->dnodes = g_hash_table_new(g_direct_hash, g_direct_equal);
	h->dirents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	h->wbufs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, wbuf_free);
	h->rec_errors = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	h->errors = g_string_new(NULL);
	h->created = g_string_new(NULL);
	hubfs_errors_open(h);
	rejected_load(h);
}

void hubfs_write_destroy(struct hubfs *h)
{
	GHashTableIter it;
	gpointer v;

	if (!h->dnodes)
		return;
	g_hash_table_iter_init(&it, h->dnodes);
	while (g_hash_table_iter_next(&it, NULL, &v))
		dnode_free(v);
	g_hash_table_destroy(h->dnodes);
	g_hash_table_destroy(h->dirents);
	g_hash_table_destroy(h->wbufs);
	g_hash_table_destroy(h->rec_errors);
	g_string_free(h->errors, TRUE);
	g_string_free(h->created, TRUE);
	for (int i = 0; i < INO_SNAPS; i++)
		g_free(h->snap[i]);
	rejected_destroy(h);
	hubfs_errors_close(h);
}
