/* rejected.c - .hubfs/rejected/: the bytes of every refused save and of every
 * local version that lost a conflict, kept on disk in $state_dir/rejected/
 * (directory 0700, files 0600), so they outlive the mount and take no memory.
 * Bounded: at most REJECTED_MAX_FILES files and REJECTED_MAX_BYTES bytes; the
 * oldest go first. Each file is a node of .hubfs/rejected/ (a D_REJECTED
 * dnode with `disk` set) whose bytes are read from disk on demand; the user
 * may delete them. Without a usable state directory the bytes are kept in
 * memory instead, under the same bounds.
 *
 * Lock rules: h->lock guards the nodes and the rejected_* fields; no file is
 * written, read or unlinked while it is held.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/log.h"
#include "fs/internal.h"

struct kept {                  /* a file found on disk at mount */
	char *name;
	size_t size;
	struct timespec mtime;
};

static char *rejected_dir(struct hubfs *h)
{
	return h->state_dir ? g_build_filename(h->state_dir, "rejected", NULL) : NULL;
}

/* The directory, created 0700 if missing; NULL (logged) if it is not ours. */
static char *dir_ready(struct hubfs *h)
{
	char *dir = rejected_dir(h);
	struct stat st;

	if (!dir)
		return NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_warn("%s: %s; rejected saves are kept in memory", dir, strerror(errno));
		g_free(dir);
		return NULL;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		log_warn("%s is not a private directory of this user; rejected saves are kept in"
			 " memory", dir);
		g_free(dir);
		return NULL;
	}
	return dir;
}

/* Lock held. Stop counting node d against the bounds; false if it was not
 * counted (not a kept file). */
static bool uncount(struct hubfs *h, struct dnode *d)
{
	if (!g_queue_remove(h->rejected_order, GSIZE_TO_POINTER(d->ino)))
		return false;
	h->rejected_bytes -= d->disk ? d->disk_size : d->data->len;
	return true;
}

/* Lock held. Drop the oldest kept files until `more` bytes fit; the paths to
 * unlink (once unlocked) are added to gone. */
static void make_room(struct hubfs *h, size_t more, GPtrArray *gone)
{
	while (h->rejected_order->length > 0 &&
	       (h->rejected_order->length >= REJECTED_MAX_FILES ||
		h->rejected_bytes + more > REJECTED_MAX_BYTES)) {
		fuse_ino_t ino = GPOINTER_TO_SIZE(g_queue_pop_head(h->rejected_order));
		struct dnode *d = dnode_of(h, ino);

		if (!d)
			continue;
		h->rejected_bytes -= d->disk ? d->disk_size : d->data->len;
		if (d->disk)
			g_ptr_array_add(gone, g_strdup(d->disk));
		log_info("rejected/%s: dropped (the oldest, over the bound)", d->name);
		dnode_unlink(h, d);
	}
}

static void unlink_all(GPtrArray *gone)
{
	for (guint i = 0; i < gone->len; i++)
		if (unlink(gone->pdata[i]) != 0 && errno != ENOENT)
			log_warn("%s: %s", (char *)gone->pdata[i], strerror(errno));
	g_ptr_array_unref(gone);
}

/* Write data to a new file of dir named name, or name.N: the path, or NULL. */
static char *write_new(const char *dir, const char *name, const char *data, size_t len)
{
	g_autofree char *stem = g_strdup(name);
	const char *ext = strrchr(name, '.');
	char *dot = strrchr(stem, '.');

	if (dot)
		*dot = '\0';
	for (int n = 0; n < 1000; n++) {
		g_autofree char *base = n ? g_strdup_printf("%s.%d%s", stem, n, ext ? ext : "")
					  : g_strdup(name);
		char *path = g_build_filename(dir, base, NULL);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		size_t off = 0;

		if (fd < 0 && errno == EEXIST) {
			g_free(path);
			continue;
		}
		if (fd < 0) {
			log_warn("%s: %s", path, strerror(errno));
			g_free(path);
			return NULL;
		}
		while (off < len) {
			ssize_t k = write(fd, data + off, len - off);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break;
			off += (size_t)k;
		}
		if (off < len || close(fd) != 0) {
			log_warn("%s: %s", path, strerror(errno ? errno : EIO));
			if (off < len)
				close(fd);
			unlink(path);
			g_free(path);
			return NULL;
		}
		return path;
	}
	return NULL;
}

/* Lock held. A unique node name under .hubfs/rejected/ (in-memory copies). */
static char *unique_name(struct hubfs *h, const char *name)
{
	g_autofree char *stem = g_strdup(name);
	const char *ext = strrchr(name, '.');
	char *dot = strrchr(stem, '.');

	if (!dnode_at(h, INO_REJECTED, name))
		return g_strdup(name);
	if (dot)
		*dot = '\0';
	for (int n = 1;; n++) {
		char *b = g_strdup_printf("%s.%d%s", stem, n, ext ? ext : "");

		if (!dnode_at(h, INO_REJECTED, b))
			return b;
		g_free(b);
	}
}

void rejected_keep(struct hubfs *h, const char *name, const char *data, size_t len)
{
	g_autofree char *base = g_strdelimit(g_strdup(name), "/", '-');
	g_autofree char *dir = NULL;
	char *path = NULL;
	GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);
	struct dnode *d;

	if (len > REJECTED_MAX_BYTES) {
		log_warn("rejected/%s: %zu bytes, more than the %zu kept in all: not kept", base, len,
			 (size_t)REJECTED_MAX_BYTES);
		g_ptr_array_unref(gone);
		return;
	}
	/* Room first, so the new file never takes the disk over the bound. */
	g_mutex_lock(&h->lock);
	make_room(h, len, gone);
	h->rejected_bytes += len; /* reserved */
	g_mutex_unlock(&h->lock);
	unlink_all(gone);

	dir = dir_ready(h);
	if (dir)
		path = write_new(dir, base, data, len);
	g_mutex_lock(&h->lock);
	if (path) {
		g_autofree char *nm = g_path_get_basename(path);

		/* A node of that name left from before (deleted on disk meanwhile)
		 * gives way. */
		if ((d = dnode_at(h, INO_REJECTED, nm))) {
			uncount(h, d);
			dnode_unlink(h, d);
		}
		d = dnode_new(h, INO_REJECTED, nm, D_REJECTED, NULL, S_IFREG | 0600);
		d->disk = path;
		d->disk_size = len;
	} else {
		g_autofree char *nm = unique_name(h, base);

		d = dnode_new(h, INO_REJECTED, nm, D_REJECTED, NULL, S_IFREG | 0600);
		g_byte_array_append(d->data, (const guint8 *)data, (guint)len);
	}
	g_queue_push_tail(h->rejected_order, GSIZE_TO_POINTER(d->ino));
	g_mutex_unlock(&h->lock);
}

static gint older(gconstpointer a, gconstpointer b)
{
	const struct kept *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

void rejected_load(struct hubfs *h)
{
	g_autofree char *dir = NULL;
	GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);
	GArray *found = g_array_new(FALSE, FALSE, sizeof(struct kept));
	DIR *dp;
	struct dirent *de;

	h->rejected_order = g_queue_new();
	dir = h->state_dir ? rejected_dir(h) : NULL;
	dp = dir ? opendir(dir) : NULL;
	if (!dp) {
		g_array_unref(found);
		g_ptr_array_unref(gone);
		return;
	}
	while ((de = readdir(dp))) {
		struct stat st;
		struct kept k;

		if (de->d_name[0] == '.' || strlen(de->d_name) > 255)
			continue;
		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		k.name = g_strdup(de->d_name);
		k.size = (size_t)st.st_size;
		k.mtime = st.st_mtim;
		g_array_append_val(found, k);
	}
	closedir(dp);
	g_array_sort(found, older);
	g_mutex_lock(&h->lock);
	for (guint i = 0; i < found->len; i++) {
		struct kept *k = &g_array_index(found, struct kept, i);
		struct dnode *d;

		make_room(h, k->size, gone);
		if (k->size > REJECTED_MAX_BYTES) {
			g_ptr_array_add(gone, g_build_filename(dir, k->name, NULL));
		} else {
			d = dnode_new(h, INO_REJECTED, k->name, D_REJECTED, NULL, S_IFREG | 0600);
			d->disk = g_build_filename(dir, k->name, NULL);
			d->disk_size = k->size;
			d->mtime = d->ctime = d->atime = k->mtime;
			h->rejected_bytes += k->size;
			g_queue_push_tail(h->rejected_order, GSIZE_TO_POINTER(d->ino));
		}
		g_free(k->name);
	}
	g_mutex_unlock(&h->lock);
	g_array_unref(found);
	unlink_all(gone);
}

void rejected_destroy(struct hubfs *h)
{
	if (h->rejected_order)
		g_queue_free(h->rejected_order);
	h->rejected_order = NULL;
}

int rejected_read(const char *path, off_t off, size_t size, char **buf, size_t *n)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t k;

	*n = 0;
	*buf = NULL;
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EIO;
	*buf = g_malloc(size ? size : 1);
	do
		k = pread(fd, *buf, size, off);
	while (k < 0 && errno == EINTR);
	close(fd);
	if (k < 0) {
		g_free(*buf);
		*buf = NULL;
		return -EIO;
	}
	*n = (size_t)k;
	return 0;
}

void rejected_forget(struct hubfs *h, struct dnode *d, GPtrArray *gone)
{
	if (uncount(h, d) && d->disk)
		g_ptr_array_add(gone, g_strdup(d->disk));
}
