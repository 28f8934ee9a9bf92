/* write.c - the write path of the FUSE layer: writes into record files.
 *
 * Record files have no per-open state (open answers ENOSYS, see ops.c), so a
 * record being written has one buffer per inode, filled by setattr(size) and
 * write, and committed at flush by the process that wrote it: parsed,
 * validated, diffed, journaled (writeback_update, see commit.c), and made
 * visible to every reader at once. Any other name created in a type directory
 * is a scratch file (dnode.c): in memory, fully POSIX, never uploaded;
 * renaming one onto <id>.json commits it as an edit (dirops.c), which is how
 * vim, sed -i, jq > t && mv t f and friends save. Writes to scratch and _new/
 * files and to .hubfs/ctl (ctl.c) come through here too.
 *
 * Lock rules: h->lock guards dnodes, dirents, wbufs, rec_errors, snapshots and
 * the logs; it is never held across a cache, writeback or HTTP call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/objtype.h"
#include "fs/internal.h"

/* --- pids: who wrote, so that only the writer's close commits ----------------- */

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

/* The thread-group id of pid, read from /proc with h->lock dropped (a read
 * of /proc may block; h->lock is never held across it). Lock held on entry
 * and exit: the caller looks its node up again. */
static pid_t tgid_unlocked(struct hubfs *h, pid_t pid)
{
	pid_t tg;

	g_mutex_unlock(&h->lock);
	tg = tgid_of(pid);
	g_mutex_lock(&h->lock);
	return tg;
}

static bool writers_known(GArray *w, pid_t pid)
{
	for (guint i = 0; w && i < w->len; i++)
		if (g_array_index(w, pid_t, i) == pid)
			return true;
	return false;
}

/* Note pid, and its thread group tg, as writers. */
static void writers_add(GArray *w, pid_t pid, pid_t tg)
{
	if (!writers_known(w, pid))
		g_array_append_val(w, pid);
	if (tg != pid && !writers_known(w, tg))
		g_array_append_val(w, tg);
}

/* Did pid, or another thread of its group tg, write? */
static bool writers_has(GArray *w, pid_t pid, pid_t tg)
{
	return writers_known(w, pid) || (tg != pid && writers_known(w, tg));
}

/* Does process pid hold another descriptor on path? Without open/release
 * (no-open), this is how the close that ends a write is told apart from the
 * close of a dup'd descriptor (`cmd > file` closes one before writing). Only
 * readlink is used: it never calls back into this filesystem. */
static bool other_fd_open(pid_t pid, const char *path)
{
	char dir[64];
	GDir *d;
	const char *n;
	int found = 0;

	if (!path)
		return false;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = g_dir_open(dir, 0, NULL);
	if (!d)
		return false;
	while ((n = g_dir_read_name(d)) && !found) {
		g_autofree char *l = g_build_filename(dir, n, NULL);
		g_autofree char *t = g_file_read_link(l, NULL);

		if (t && !strcmp(t, path))
			found++;
	}
	g_dir_close(d);
	/* The descriptor being closed has already left the table (close_fd,
	 * dup2 and exit all remove it before the flush), so any match is another. */
	return found > 0;
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

/* The buffer of a record, created from the current record file if needed.
 * Returns 0 with h->lock HELD (*out valid until unlocked), or -errno unlocked. */
int wbuf_get(struct hubfs *h, fuse_ino_t ino, pid_t pid, struct wbuf **out)
{
	struct wbuf *w;
	char *text = NULL;
	size_t len = 0;
	pid_t tg;
	int rc;

	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w && writers_known(w->writers, pid)) {
		*out = w;
		return 0; /* lock held */
	}
	g_mutex_unlock(&h->lock);

	tg = tgid_of(pid); /* /proc: not under h->lock */
	for (;;) {
		if (!w) {
			rc = cache_record_text(h->cache, INO_TYPE(ino), INO_ID(ino), deadline_of(h),
					       &text, &len);
			if (rc)
				return rc;
		}
		g_mutex_lock(&h->lock);
		w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
		if (w || text)
			break;
		g_mutex_unlock(&h->lock); /* committed meanwhile: from the record file again */
	}
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
	writers_add(w->writers, pid, tg);
	*out = w; /* valid while h->lock is held */
	g_free(text);
	return 0; /* lock held */
}

bool wbuf_size(struct hubfs *h, fuse_ino_t ino, size_t *size)
{
	struct wbuf *w;

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

	if (INO_KIND(ino) == K_RECORD && (to_set & FUSE_SET_ATTR_SIZE)) {
		struct wbuf *w;

		if (h->o.ro) {
			rc = -EROFS;
			goto out;
		}
		if ((size_t)attr->st_size > RECORD_WRITE_MAX) {
			rc = -EFBIG;
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
	 * editors and cp -p do not trip (DESIGN.md §2); the reported mode stays. */
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
	int rc = 0;

	if (h->o.ro) {
		rc = -EROFS;
	} else if (INO_KIND(ino) == K_RECORD) {
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
		pid_t pid = req_pid(req), tg = pid;

		g_mutex_lock(&h->lock);
		d = dnode_of(h, ino);
		if (d && !writers_known(d->writers, pid)) {
			tg = tgid_unlocked(h, pid);
			d = dnode_of(h, ino);
		}
		if (!d)
			rc = -ENOENT;
		else if (d->committed || d->kind == D_LINK)
			rc = -EPERM;
		else if (d->kind == D_NEWFILE && (size_t)off + size > RECORD_WRITE_MAX)
			rc = -EFBIG;
		else if ((rc = dnode_write(h, d, buf, size, off)) == 0)
			writers_add(d->writers, pid, tg);
		g_mutex_unlock(&h->lock);
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

/* Commit what the calling process wrote to ino. quiet: fsync's probe. */
static int commit_for(struct hubfs *h, fuse_ino_t ino, pid_t pid, bool quiet)
{
	pid_t tg = pid; /* read from /proc only when pid itself did not write */
	int rc = 0;

	if (INO_KIND(ino) == K_RECORD) {
		struct wbuf *w;

		g_mutex_lock(&h->lock);
		w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
		if (w && !writers_known(w->writers, pid)) {
			tg = tgid_unlocked(h, pid);
			w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
		}
		if (!w || !writers_has(w->writers, pid, tg)) {
			g_mutex_unlock(&h->lock);
			return 0; /* a reader's close */
		}
		if (!quiet) {
			g_autofree char *label = commit_label(ino);
			g_autofree char *path = mount_path(h, label);
			bool more;

			g_mutex_unlock(&h->lock);
			more = other_fd_open(pid, path);
			g_mutex_lock(&h->lock);
			w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
			if (!w || more) {
				/* Not this process's last close of the file (e.g. `cmd >
				 * file` closes the fd it dup'd before writing). */
				g_mutex_unlock(&h->lock);
				return 0;
			}
		}
		if (w->data->len == 0 && quiet) {
			g_mutex_unlock(&h->lock);
			return 0;
		}
		g_hash_table_steal(h->wbufs, GSIZE_TO_POINTER(ino));
		g_mutex_unlock(&h->lock);
		if (w->too_big) {
			g_autofree char *label = commit_label(ino);

			hubfs_reject(h, label, NULL, "larger than 1 MiB: nothing was saved",
				     (const char *)w->data->data, w->data->len);
			hubfs_inval_inode(h, ino);
			wbuf_free(w);
			return -EFBIG;
		}
		rc = commit_record(h, ino, (const char *)w->data->data, w->data->len, w->base, w->base_len,
				   quiet);
		if (quiet && rc == -EINVAL) {
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
	} else if (INO_KIND(ino) == K_DYN) {
		struct dnode *d;
		GByteArray *data = NULL;
		char *name = NULL, *key = NULL;
		int type = -1;

		g_mutex_lock(&h->lock);
		d = dnode_of(h, ino);
		if (d && !writers_known(d->writers, pid)) {
			tg = tgid_unlocked(h, pid);
			d = dnode_of(h, ino);
		}
		if (d && d->kind == D_NEWFILE && d->name && !d->committed && writers_has(d->writers, pid, tg)) {
			data = g_byte_array_ref(d->data);
			name = g_strdup(d->name);
			type = d->type;
		}
		g_mutex_unlock(&h->lock);
		if (!data)
			return 0;
		if (!quiet) {
			g_autofree char *rel = g_strdup_printf("%s/_new/%s", objtype_name(type), name);
			g_autofree char *path = mount_path(h, rel);

			if (other_fd_open(pid, path)) {
				g_byte_array_unref(data);
				g_free(name);
				return 0;
			}
		}
		if (quiet) {
			g_byte_array_unref(data);
			g_free(name);
			return 0; /* creates happen at close */
		}
		rc = commit_create(h, type, name, (const char *)data->data, data->len, &key);
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
		g_byte_array_unref(data);
		g_free(name);
	}
	return rc;
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
	h->errors_fd = -1;
	if (h->state_dir) {
		g_autofree char *p = g_build_filename(h->state_dir, "errors.log", NULL);

		h->errors_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	}
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
	for (int i = 0; i < 8; i++)
		g_free(h->snap[i]);
	if (h->errors_fd >= 0)
		close(h->errors_fd);
}
