/* dnode.c - the nodes the write path allocates: scratch files, _new/ files
 * (pending creates) and their links, and .hubfs/rejected/ files. In memory,
 * fully POSIX, never uploaded; scratch and _new/ files count against
 * SCRATCH_MAX, rejected/ files have bounds of their own (rejected.c). Here:
 * the node table, stat/read/list/readlink, data writes, forget and xattrs.
 *
 * Lock rules: h->lock guards dnodes and dirents; it is never held across a
 * cache, writeback or HTTP call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/xattr.h>

#include "fs/internal.h"

/* --- dynamic nodes --------------------------------------------------------- */

char *dnode_key(fuse_ino_t parent, const char *name)
{
	return g_strdup_printf("%" PRIu64 "/%s", (uint64_t)parent, name);
}

void dnode_free(struct dnode *d)
{
	if (d->data)
		g_byte_array_unref(d->data);
	if (d->xattrs)
		g_hash_table_destroy(d->xattrs);
	if (d->writers)
		g_array_free(d->writers, TRUE);
	g_free(d->link);
	g_free(d->disk);
	g_free(d->name);
	g_free(d);
}

void dnode_now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* Lock held. */
struct dnode *dnode_new(struct hubfs *h, fuse_ino_t parent, const char *name,
			enum dkind kind, const struct objtype *type, mode_t mode)
{
	struct dnode *d = g_new0(struct dnode, 1);

	d->ino = INO_MAKE(K_DYN, 0, 0, ++h->next_dyn);
	d->parent = parent;
	d->name = g_strdup(name);
	d->kind = kind;
	d->type = type;
	d->mode = mode;
	d->uid = h->uid;
	d->gid = h->gid;
	dnode_now_ts(&d->mtime);
	d->atime = d->ctime = d->mtime;
	d->data = g_byte_array_new();
	d->xattrs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
	d->writers = g_array_new(FALSE, FALSE, sizeof(pid_t));
	g_hash_table_insert(h->dnodes, GSIZE_TO_POINTER(d->ino), d);
	g_hash_table_insert(h->dirents, dnode_key(parent, name), d);
	return d;
}

/* Remove a node's name; free it once the kernel holds no reference. Lock held. */
void dnode_unlink(struct hubfs *h, struct dnode *d)
{
	if (d->name) {
		g_autofree char *k = dnode_key(d->parent, d->name);

		g_hash_table_remove(h->dirents, k);
		g_free(d->name);
		d->name = NULL;
	}
	if (d->kind == D_SCRATCH || d->kind == D_NEWFILE)
		h->scratch_bytes -= d->data->len;
	if (d->nlookup == 0) {
		g_hash_table_remove(h->dnodes, GSIZE_TO_POINTER(d->ino));
		dnode_free(d);
	} else if (d->kind == D_SCRATCH || d->kind == D_NEWFILE) {
		/* Kept for the kernel's references; readable, no longer counted. */
		d->kind = D_REJECTED;
	}
}

struct dnode *dnode_at(struct hubfs *h, fuse_ino_t parent, const char *name)
{
	g_autofree char *k = dnode_key(parent, name);

	return g_hash_table_lookup(h->dirents, k);
}

struct dnode *dnode_of(struct hubfs *h, fuse_ino_t ino)
{
	return INO_KIND(ino) == K_DYN ? g_hash_table_lookup(h->dnodes, GSIZE_TO_POINTER(ino)) : NULL;
}

fuse_ino_t dyn_lookup(struct hubfs *h, fuse_ino_t parent, const char *name)
{
	struct dnode *d;
	fuse_ino_t ino = 0;

	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (d)
		ino = d->ino;
	g_mutex_unlock(&h->lock);
	return ino;
}

void dyn_ref(struct hubfs *h, fuse_ino_t ino)
{
	struct dnode *d;

	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d)
		d->nlookup++;
	g_mutex_unlock(&h->lock);
}

bool dyn_stat(struct hubfs *h, fuse_ino_t ino, struct stat *st)
{
	struct dnode *d;

	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d) {
		memset(st, 0, sizeof(*st));
		st->st_ino = ino;
		st->st_mode = d->mode;
		st->st_nlink = d->name ? 1 : 0;
		st->st_uid = d->uid;
		st->st_gid = d->gid;
		st->st_size = d->kind == D_LINK ? (off_t)strlen(d->link) :
			      d->disk ? (off_t)d->disk_size : (off_t)d->data->len;
		st->st_blksize = 4096;
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_atim = d->atime;
		st->st_mtim = d->mtime;
		st->st_ctim = d->ctime;
	}
	g_mutex_unlock(&h->lock);
	return d != NULL;
}

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

GArray *dyn_list(struct hubfs *h, fuse_ino_t parent)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(struct dent));
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&h->lock);
	g_hash_table_iter_init(&it, h->dirents);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct dnode *d = v;
		struct dent e;

		if (d->parent != parent)
			continue;
		snprintf(e.name, sizeof(e.name), "%s", d->name);
		e.ino = d->ino;
		g_array_append_val(out, e);
	}
	g_mutex_unlock(&h->lock);
	g_array_sort(out, cmp_dent);
	return out;
}

char *dyn_readlink(struct hubfs *h, fuse_ino_t ino)
{
	struct dnode *d;
	char *s = NULL;

	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d && d->kind == D_LINK)
		s = g_strdup(d->link);
	g_mutex_unlock(&h->lock);
	return s;
}

int dyn_read(struct hubfs *h, fuse_ino_t ino, off_t off, size_t size, char **buf, size_t *n)
{
	struct dnode *d;
	char *disk = NULL;
	int rc = 0;

	*n = 0;
	*buf = NULL;
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (!d)
		rc = -ENOENT;
	else if (d->kind == D_LINK)
		rc = -EINVAL;
	else if (d->disk)
		disk = g_strdup(d->disk); /* read below, unlocked */
	else if ((size_t)off < d->data->len) {
		*n = MIN(size, d->data->len - (size_t)off);
		*buf = g_memdup2(d->data->data + off, *n);
	}
	g_mutex_unlock(&h->lock);
	if (disk) {
		rc = rejected_read(disk, off, size, buf, n);
		g_free(disk);
	}
	return rc;
}

/* Resize a byte array, zero-filling what it grows by. */
void dnode_bytes_resize(GByteArray *a, size_t n)
{
	size_t old = a->len;

	g_byte_array_set_size(a, (guint)n);
	if (n > old)
		memset(a->data + old, 0, n - old);
}

/* Write into a node's data, growing it; lock held. */
int dnode_write(struct hubfs *h, struct dnode *d, const char *buf, size_t size, off_t off)
{
	size_t end = (size_t)off + size;

	if (end > d->data->len) {
		if (h->scratch_bytes + (end - d->data->len) > SCRATCH_MAX)
			return -ENOSPC;
		h->scratch_bytes += end - d->data->len;
		dnode_bytes_resize(d->data, end);
	}
	memcpy(d->data->data + off, buf, size);
	dnode_now_ts(&d->mtime);
	d->ctime = d->mtime;
	return 0;
}

int dnode_truncate(struct hubfs *h, struct dnode *d, size_t size)
{
	size_t old = d->data->len;

	if (size > old && h->scratch_bytes + (size - old) > SCRATCH_MAX)
		return -ENOSPC;
	dnode_bytes_resize(d->data, size);
	h->scratch_bytes = h->scratch_bytes + size - old;
	dnode_now_ts(&d->mtime);
	d->ctime = d->mtime;
	return 0;
}

/* --- forget ---------------------------------------------------------------- */

static void forget_one(struct hubfs *h, fuse_ino_t ino, uint64_t n)
{
	struct dnode *d = dnode_of(h, ino);

	if (!d)
		return;
	d->nlookup = d->nlookup > n ? d->nlookup - n : 0;
	if (!d->name && d->nlookup == 0) {
		g_hash_table_remove(h->dnodes, GSIZE_TO_POINTER(ino));
		dnode_free(d);
	}
}

void hubfs_w_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct hubfs *h = H(req);

	if (INO_KIND(ino) == K_DYN || INO_KIND(ino) == K_QUERY) {
		g_mutex_lock(&h->lock);
		if (INO_KIND(ino) == K_DYN)
			forget_one(h, ino, nlookup);
		else
			search_forget_locked(h, ino, nlookup);
		g_mutex_unlock(&h->lock);
	}
	fuse_reply_none(req);
}

void hubfs_w_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct hubfs *h = H(req);

	g_mutex_lock(&h->lock);
	for (size_t i = 0; i < count; i++)
		if (INO_KIND(forgets[i].ino) == K_DYN)
			forget_one(h, forgets[i].ino, forgets[i].nlookup);
		else if (INO_KIND(forgets[i].ino) == K_QUERY)
			search_forget_locked(h, forgets[i].ino, forgets[i].nlookup);
	g_mutex_unlock(&h->lock);
	fuse_reply_none(req);
}

/* --- xattrs of our nodes --------------------------------------------------- */

void hubfs_w_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		      size_t size, int flags)
{
	struct hubfs *h = H(req);
	struct dnode *d;
	int rc = 0;

	if (INO_KIND(ino) != K_DYN) {
		fuse_reply_err(req, ENOTSUP); /* records keep only hubfs's own names */
		return;
	}
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (!d)
		rc = -ENOENT;
	else if ((flags & XATTR_CREATE) && g_hash_table_contains(d->xattrs, name))
		rc = -EEXIST;
	else if ((flags & XATTR_REPLACE) && !g_hash_table_contains(d->xattrs, name))
		rc = -ENODATA;
	else if (size > 65536)
		rc = -E2BIG;
	else
		g_hash_table_insert(d->xattrs, g_strdup(name), g_bytes_new(value, size));
	g_mutex_unlock(&h->lock);
	fuse_reply_err(req, -rc);
}

int dyn_getxattr(struct hubfs *h, fuse_ino_t ino, const char *name, char **val, size_t *len)
{
	struct dnode *d;
	GBytes *b;
	int rc = -ENODATA;

	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d && (b = g_hash_table_lookup(d->xattrs, name))) {
		gsize n;
		const void *p = g_bytes_get_data(b, &n);

		*val = g_memdup2(p, n ? n : 1);
		*len = n;
		rc = 0;
	}
	g_mutex_unlock(&h->lock);
	return rc;
}

int dyn_listxattr(struct hubfs *h, fuse_ino_t ino, GString *out)
{
	struct dnode *d;
	GHashTableIter it;
	gpointer k;

	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d) {
		g_hash_table_iter_init(&it, d->xattrs);
		while (g_hash_table_iter_next(&it, &k, NULL))
			g_string_append_len(out, k, (gssize)strlen(k) + 1);
	}
	g_mutex_unlock(&h->lock);
	return d ? 0 : -ENOENT;
}

void hubfs_w_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct hubfs *h = H(req);
	struct dnode *d;
	int rc = -ENODATA;

	if (INO_KIND(ino) != K_DYN) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (d && g_hash_table_remove(d->xattrs, name))
		rc = 0;
	g_mutex_unlock(&h->lock);
	fuse_reply_err(req, -rc);
}
