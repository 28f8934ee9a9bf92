/* ops.c - the FUSE low-level handlers: decode, call a do_ function that
 * returns 0 or -errno, reply exactly once. */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cache/model/record.h"
#include "client/log.h"
#include "fs/daemon.h"
#include "fs/internal.h"
#include "fs/names.h"
#include "fs/notify.h"

#define XATTR_URL "user.hubspot.url"
#define XATTR_STATE "user.hubfs.state"

/* Open directory state, in fi->fh. */
struct dirh {
	struct listing *l;   /* type directories */
	uint64_t *ids;       /* association directories, owners/ */
	size_t n;
	GArray *dents;       /* our own nodes (scratch, _new/, rejected/), snapshot */
	size_t nfixed;       /* fixed children (tree.c) */
	const struct objtype *qtype; /* query directories: the object type */
	unsigned assoc[OBJTYPES_MAX]; /* a record's directory: its association dirs' types */
	size_t nassoc;
};

static bool has_dyn(fuse_ino_t ino)
{
	return is_typedir(ino) || is_newdir(ino) || ino == INO_REJECTED ||
	       INO_KIND(ino) == K_ASSOC_ROOT;
}

int64_t deadline_of(struct hubfs *h)
{
	return hs_now_ms() + (int64_t)h->o.op_timeout_s * 1000;
}

/* Longest link target: "../../../" + a directory name + "/" + an id + ".json". */
#define LINK_TARGET_MAX 320

static void link_target(const struct objtype *t, uint64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "../../../%s/%" PRIu64 ".json", t->name, id);
}

/* Text of a fixed or owner file (g_malloc'd). */
static int file_text(struct hubfs *h, fuse_ino_t ino, bool fresh_status, char **text, size_t *len)
{
	int64_t deadline = deadline_of(h);
	const struct schema *s;
	const char *t;
	int rc;

	switch (INO_KIND(ino)) {
	case K_OWNER:
		return cache_owner_text(h->cache, INO_ID(ino), deadline, text, len);
	case K_SCHEMA:
		rc = cache_schema(h->cache, ino_type(h, ino), deadline, &s);
		if (rc)
			return rc;
		t = schema_text(s, len);
		*text = g_memdup2(t, *len + 1);
		return 0;
	case K_PIPES:
		return cache_pipelines_text(h->cache, ino_type(h, ino), deadline, text, len);
	case K_LABELS:
		return assoc_labels_text(h, ino, text, len);
	}
	if (ino == INO_README) {
		t = hubfs_readme_text(len);
		*text = g_memdup2(t, *len + 1);
		return 0;
	}
	if (ino_is_snapshot(ino))
		return ctl_text(h, ino, fresh_status, text, len);
	return -ENOENT;
}

static void fill_times(struct stat *st, int64_t ms)
{
	st->st_mtim.tv_sec = ms / 1000;
	st->st_mtim.tv_nsec = (ms % 1000) * 1000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* The permission bits served: what the inode allows, less -o umask (077 by
 * default, so only the mounting user passes default_permissions, even with
 * allow_other). Symlinks keep 0777: their mode is never checked. */
static mode_t served_mode(struct hubfs *h, mode_t m)
{
	if (S_ISLNK(m))
		return m;
	return m & ~h->o.umask & ~(audit_serving() ? (mode_t)0222 : 0);
}

static int getattr_raw(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout);

/* Attributes of any inode; *timeout is how long the kernel may cache them. */
int do_getattr(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout)
{
	int rc = getattr_raw(h, ino, st, timeout);

	st->st_mode = served_mode(h, st->st_mode);
	return rc;
}

size_t assoc_dirs(struct hubfs *h, const struct objtype *t, unsigned *idx)
{
	size_t n = objtypes_assoc_targets(h->types, t, idx, OBJTYPES_MAX), m = 0;

	for (size_t i = 0; i < n; i++)
		if (idx[i] != t->idx)
			idx[m++] = idx[i];
	return m;
}

/* A fixed node: a directory, or a file whose size is its text's. */
static int getattr_fixed(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout)
{
	mode_t wbit = h->o.ro ? 0 : 0200;
	char *text = NULL;
	size_t len;
	int rc;

	if (!tree_node_valid(h, ino))
		return -ENOENT;
	if (tree_node_is_dir(ino)) {
		st->st_mode = S_IFDIR | 0555 | (has_dyn(ino) && !ino_readonly(h, ino) ? wbit : 0);
		st->st_nlink = 2;
		return 0;
	}
	rc = file_text(h, ino, true, &text, &len);
	if (rc)
		return rc;
	g_free(text);
	st->st_mode = S_IFREG | (ino == INO_CTL ? 0200 | wbit : 0444);
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	if (ino_is_snapshot(ino)) {
		/* A new snapshot has a new mtime: AUTO_INVAL_DATA drops the old pages. */
		g_mutex_lock(&h->lock);
		st->st_mtim = st->st_ctim = h->snap_time[ino - INO_STATUS];
		g_mutex_unlock(&h->lock);
		*timeout = 1;
	}
	return 0;
}

static int getattr_record(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout)
{
	const struct objtype *t = ino_type(h, ino);
	struct rec_attr a;
	size_t bsize;
	int rc;

	if (!t)
		return -ENOENT;
	rc = cache_record_stat(h->cache, t, INO_ID(ino), deadline_of(h), &a);
	if (rc)
		return rc;
	st->st_mode = S_IFREG | 0444 | (h->o.ro || ino_readonly(h, ino) ? 0 : 0200);
	st->st_nlink = 1;
	st->st_size = (off_t)a.size;
	fill_times(st, a.mtime_ms);
	/* Being written: the kernel sees the writer's bytes until close, and
	 * must not keep that size afterwards (a rejected save), so these
	 * attributes are not cached at all. */
	if (wbuf_size(h, ino, &bsize)) {
		st->st_size = (off_t)bsize;
		*timeout = 0;
	}
	return 0;
}

static int getattr_raw(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout)
{
	mode_t wbit = h->o.ro ? 0 : 0200;
	const struct objtype *t = ino_type(h, ino);
	unsigned idx[OBJTYPES_MAX];
	char target[LINK_TARGET_MAX];
	struct rec_attr a;
	char *text = NULL;
	size_t len;
	int rc;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = h->uid;
	st->st_gid = h->gid;
	st->st_blksize = 4096;
	st->st_mtim = st->st_atim = st->st_ctim = h->mount_time;
	*timeout = h->o.ttl_s;

	switch (INO_KIND(ino)) {
	case K_RECORD:
		return getattr_record(h, ino, st, timeout);
	case K_DYN:
		if (!dyn_stat(h, ino, st))
			return -ENOENT;
		*timeout = 1;
		return 0;
	case K_ASSOC_ROOT:
		if (!t)
			return -ENOENT;
		rc = cache_record_stat(h->cache, t, INO_ID(ino), deadline_of(h), &a);
		if (rc)
			return rc;
		/* writable: scratch files (sed -i, editors) save associations.json */
		st->st_mode = S_IFDIR | 0555 | wbit;
		st->st_nlink = 2 + assoc_dirs(h, t, idx);
		return 0;
	case K_ASSOCFILE:
		rc = assoc_file_text(h, ino, &text, &len);
		if (rc)
			return rc;
		/* Other text, other mtime: the kernel drops pages of an older text
		 * of the same size (AUTO_INVAL_DATA). */
		st->st_mtim.tv_nsec = g_str_hash(text) % 1000000000;
		g_free(text);
		st->st_mode = S_IFREG | 0444 | wbit;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		if (wbuf_size(h, ino, &len)) {
			st->st_size = (off_t)len;
			*timeout = 0;
		}
		return 0;
	case K_LABELS:
		rc = assoc_labels_text(h, ino, &text, &len);
		if (rc)
			return rc;
		g_free(text);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		return 0;
	case K_ASSOC_DIR:
		if (!t || !ino_type2(h, ino))
			return -ENOENT;
		st->st_mode = S_IFDIR | 0555 | (ino_readonly(h, ino) ? 0 : wbit);
		st->st_nlink = 2;
		return 0;
	case K_QUERY:
		if (!search_type_of(h, ino))
			return -ENOENT;
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		*timeout = 1; /* results come and go */
		return 0;
	case K_LINK:
		if (!t)
			return -ENOENT;
		link_target(t, INO_ID(ino), target, sizeof(target));
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(target);
		return 0;
	case K_OWNER:
		rc = file_text(h, ino, false, &text, &len);
		if (rc)
			return rc;
		g_free(text);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		return 0;
	default:
		return getattr_fixed(h, ino, st, timeout);
	}
}

static bool assoc_contains(struct hubfs *h, const struct objtype *from, uint64_t id,
			   const struct objtype *to, uint64_t toid)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	bool found = false;

	if (cache_assoc_list(h->cache, from, id, to, deadline_of(h), &ids, &n) == 0 && n)
		found = bsearch(&toid, ids, n, sizeof(uint64_t), record_id_cmp) != NULL;
	g_free(ids);
	return found;
}

/* name in a type directory: a record file or a record's directory. */
static int lookup_in_typedir(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t *ino)
{
	unsigned t = INO_TYPE(parent);
	uint64_t id;

	if (name_record(name, &id))
		*ino = INO_MAKE(K_RECORD, t, 0, id);
	else if (record_parse_id(name, strlen(name), &id) == 0)
		*ino = INO_MAKE(K_ASSOC_ROOT, t, 0, id);
	else
		return -ENOENT;
	return 0;
}

/* name in a record's directory: the association directory of a type the
 * record's type can be associated with. */
static int lookup_in_assoc_root(struct hubfs *h, fuse_ino_t parent, const char *name,
				fuse_ino_t *ino)
{
	const struct objtype *from = ino_type(h, parent);
	const struct objtype *to = objtypes_by_name(h->types, name, strlen(name));

	if (!from || !to || to == from || !objtypes_associable(h->types, from, to))
		return -ENOENT;
	*ino = INO_MAKE(K_ASSOC_DIR, from->idx, to->idx, INO_ID(parent));
	return 0;
}

/* name in a query directory: a link to a record the query finds. */
static int lookup_in_query(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t *ino)
{
	const struct objtype *t = search_type_of(h, parent);
	uint64_t *ids = NULL, id;
	size_t n = 0;
	bool found = false;
	int rc;

	if (!t || !name_record(name, &id))
		return -ENOENT;
	rc = search_results(h, parent, &ids, &n);
	if (rc == 0 && n)
		found = bsearch(&id, ids, n, sizeof(uint64_t), record_id_cmp) != NULL;
	g_free(ids);
	if (rc)
		return rc;
	if (!found)
		return -ENOENT;
	*ino = INO_MAKE(K_LINK, t->idx, 0, id);
	return 0;
}

/* The inode of parent/name. */
static int lookup_ino(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t *ino)
{
	uint64_t id;

	*ino = 0;
	switch (INO_KIND(parent)) {
	case K_ASSOC_ROOT:
		if ((*ino = dyn_lookup(h, parent, name)))
			return 0;
		if (!strcmp(name, ASSOC_FILE)) {
			*ino = INO_MAKE(K_ASSOCFILE, INO_TYPE(parent), 0, INO_ID(parent));
			return 0;
		}
		return lookup_in_assoc_root(h, parent, name, ino);
	case K_ASSOC_DIR:
		if (!name_record(name, &id) || !ino_type(h, parent) || !ino_type2(h, parent) ||
		    !assoc_contains(h, ino_type(h, parent), INO_ID(parent), ino_type2(h, parent), id))
			return -ENOENT;
		*ino = INO_MAKE(K_LINK, INO_TYPE2(parent), 0, id);
		return 0;
	case K_QUERY:
		return lookup_in_query(h, parent, name, ino);
	case K_SEARCHTYPE:
		if (!ino_type(h, parent))
			return -ENOENT;
		return search_lookup(h, ino_type(h, parent), name, ino);
	case K_STATIC:
	case K_TYPEDIR:
	case K_NEWDIR:
		break;
	default:
		return -ENOTDIR;
	}
	*ino = tree_lookup(h, parent, name);
	if (!*ino && has_dyn(parent))
		*ino = dyn_lookup(h, parent, name);
	if (*ino)
		return 0;
	if (is_typedir(parent))
		return lookup_in_typedir(h, parent, name, ino);
	if (parent == INO_LABELS_DIR && (*ino = assoc_labels_lookup(h, name)))
		return 0;
	if (parent == INO_OWNERS_DIR && name_record(name, &id)) {
		*ino = INO_MAKE(K_OWNER, 0, 0, id);
		return 0;
	}
	return -ENOENT;
}

int do_lookup(struct hubfs *h, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	fuse_ino_t ino = 0;
	int rc;

	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	rc = lookup_ino(h, parent, name, &ino);
	if (rc)
		return rc;
	memset(e, 0, sizeof(*e));
	rc = do_getattr(h, ino, &e->attr, &e->attr_timeout);
	if (rc)
		return rc;
	e->ino = ino;
	e->entry_timeout = INO_KIND(ino) == K_DYN ? 1 : h->o.ttl_s;
	if (INO_KIND(ino) == K_DYN)
		dyn_ref(h, ino); /* the kernel now holds a reference */
	else if (INO_KIND(ino) == K_QUERY)
		search_ref(h, ino);
	return 0;
}

static void hubfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = do_lookup(H(req), parent, name, &e);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

static void hubfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;
	int rc = do_getattr(H(req), ino, &st, &timeout);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout);
}

static void hubfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	const struct objtype *t = ino_type(H(req), ino);
	char target[LINK_TARGET_MAX];

	if (INO_KIND(ino) == K_DYN) {
		char *l = dyn_readlink(H(req), ino);

		if (l)
			fuse_reply_readlink(req, l);
		else
			fuse_reply_err(req, EINVAL);
		g_free(l);
		return;
	}
	if (INO_KIND(ino) != K_LINK || !t) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	link_target(t, INO_ID(ino), target, sizeof(target));
	fuse_reply_readlink(req, target);
}

static void hubfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* No per-open state: ENOSYS tells the kernel to stop sending open and
	 * release altogether and to keep the page cache (FUSE_CAP_NO_OPEN_SUPPORT).
	 * That round trip is the cost that dominates a warm grep -r. Writes are
	 * buffered per inode instead (write.c). */
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (H(req)->o.ro || ino_readonly(H(req), ino))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fuse_reply_err(req, ENOSYS);
}

/* The current snapshot of a .hubfs/ file, whatever its age; false if there is
 * none yet. */
static bool snapshot_continue(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len)
{
	int i = (int)(ino - INO_STATUS);
	bool have;

	g_mutex_lock(&h->lock);
	have = h->snap[i] != NULL;
	if (have) {
		*text = g_memdup2(h->snap[i], h->snap_len[i] + 1);
		*len = h->snap_len[i];
	}
	g_mutex_unlock(&h->lock);
	return have;
}

static void hubfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct hubfs *h = H(req);
	char *text = NULL, *buf;
	size_t len, n = 0;
	int rc;

	if (INO_KIND(ino) == K_ASSOCFILE) {
		buf = g_malloc(size ? size : 1);
		rc = wbuf_read(h, ino, off, size, buf, &n);
		if (rc == -ENOENT && (rc = assoc_file_text(h, ino, &text, &len)) == 0) {
			n = (size_t)off < len ? MIN(size, len - (size_t)off) : 0;
			memcpy(buf, text + (n ? off : 0), n);
		}
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_buf(req, buf, n);
		g_free(buf);
		g_free(text);
		return;
	}
	if (INO_KIND(ino) == K_RECORD) {
		buf = g_malloc(size ? size : 1);
		rc = wbuf_read(h, ino, off, size, buf, &n);
		if (rc == -ENOENT)
			rc = ino_type(h, ino) ?
			     cache_record_read(h->cache, ino_type(h, ino), INO_ID(ino), (uint64_t)off,
					       size, buf, &n, deadline_of(h)) : -ENOENT;
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_buf(req, buf, n);
		g_free(buf);
		return;
	}
	if (INO_KIND(ino) == K_DYN) {
		rc = dyn_read(h, ino, off, size, &text, &n);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_buf(req, text, n);
		g_free(text);
		return;
	}
	/* A snapshot file (.hubfs/status.json …) read past its start goes on
	 * with the snapshot its first read got, however old: a new one between
	 * two reads of one reader would splice two texts (status.json is
	 * several pages with dozens of types). */
	if (off > 0 && ino_is_snapshot(ino) && snapshot_continue(h, ino, &text, &len))
		rc = 0;
	else
		rc = file_text(h, ino, false, &text, &len);
	if (rc) {
		fuse_reply_err(req, rc == -ENOENT ? EISDIR : -rc);
		return;
	}
	if ((size_t)off < len)
		n = MIN(size, len - (size_t)off);
	fuse_reply_buf(req, text + (n ? off : 0), n);
	g_free(text);
}

/* --- directories -------------------------------------------------------- */

/* Free an open directory's handle (NULL is fine). */
static void dirh_free(struct hubfs *h, struct dirh *d)
{
	if (!d)
		return;
	g_mutex_lock(&h->lock);
	if (h->open_dirs)
		g_hash_table_remove(h->open_dirs, d);
	g_mutex_unlock(&h->lock);
	cache_listing_close(h->cache, d->l);
	g_free(d->ids);
	if (d->dents)
		g_array_free(d->dents, TRUE);
	g_free(d);
}

/* Whether HubSpot refused the token type t (no call): its records' links are
 * refused too, without asking again. */
static bool type_refused(struct hubfs *h, const struct objtype *t)
{
	g_autofree char *scopes = t ? cache_type_denied(h->cache, t) : NULL;

	return scopes != NULL;
}

static void hubfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hubfs *h = H(req);
	struct dirh *d;
	struct stat st;
	double timeout;
	int rc;

	rc = do_getattr(h, ino, &st, &timeout);
	if (rc == 0 && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* A type directory: its schema first (every read of the type needs it),
	 * so that a type HubSpot refuses the token fails here, with EACCES. */
	if (is_typedir(ino)) {
		const struct schema *s;

		rc = cache_schema(h->cache, ino_type(h, ino), deadline_of(h), &s);
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	d = g_new0(struct dirh, 1);
	d->nfixed = tree_count(h, ino);
	if (has_dyn(ino))
		d->dents = dyn_list(h, ino);
	if (is_typedir(ino))
		d->l = cache_listing_open(h->cache, ino_type(h, ino));
	else if (INO_KIND(ino) == K_ASSOC_ROOT)
		d->nassoc = assoc_dirs(h, ino_type(h, ino), d->assoc);
	else if (INO_KIND(ino) == K_ASSOC_DIR)
		rc = type_refused(h, ino_type2(h, ino)) ? -EACCES :
		     cache_assoc_list(h->cache, ino_type(h, ino), INO_ID(ino), ino_type2(h, ino),
				      deadline_of(h), &d->ids, &d->n);
	else if (ino == INO_OWNERS_DIR)
		rc = cache_owner_ids(h->cache, deadline_of(h), &d->ids, &d->n);
	else if (INO_KIND(ino) == K_QUERY) {
		rc = search_results(h, ino, &d->ids, &d->n);
		d->qtype = search_type_of(h, ino);
	}
	if (rc) {
		dirh_free(h, d);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	g_mutex_lock(&h->lock);
	if (!h->open_dirs)
		h->open_dirs = g_hash_table_new(NULL, NULL);
	g_hash_table_add(h->open_dirs, d);
	g_mutex_unlock(&h->lock);
	/* A reply the kernel did not take (the opener was interrupted) leaves
	 * no handle to release. */
	if (fuse_reply_open(req, fi) != 0)
		dirh_free(h, d);
}

void hubfs_dirs_destroy(struct hubfs *h)
{
	GHashTable *dirs;
	GHashTableIter it;
	gpointer d;

	g_mutex_lock(&h->lock);
	dirs = h->open_dirs;
	h->open_dirs = NULL;
	g_mutex_unlock(&h->lock);
	if (!dirs)
		return;
	g_hash_table_iter_init(&it, dirs);
	while (g_hash_table_iter_next(&it, &d, NULL))
		dirh_free(h, d);
	g_hash_table_destroy(dirs);
}

static void hubfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	dirh_free(H(req), (struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Entry i (from 2; 0 and 1 are . and ..) of directory ino: returns 0 with a
 * name and inode, 1 past the end, -errno on failure. For type directories the
 * record's attributes are returned too (*have_attr). */
static int dir_entry(struct hubfs *h, fuse_ino_t ino, struct dirh *d, size_t i, char *name,
		     size_t namesz, fuse_ino_t *child, struct rec_attr *a, bool *have_attr)
{
	size_t k = i - 2;
	uint64_t id;
	int rc;

	*have_attr = false;
	/* Fixed children first, then our own nodes, then (type dirs) the listing. */
	if (d && k < d->nfixed)
		return tree_entry(h, ino, k, name, namesz, child);
	if (d)
		k -= d->nfixed;
	if (d && d->dents && k < d->dents->len) {
		struct dent *e = &g_array_index(d->dents, struct dent, k);

		snprintf(name, namesz, "%s", e->name);
		*child = e->ino;
		return 0;
	}
	if (d && d->dents)
		k -= d->dents->len;
	if (d && d->l) {
		rc = cache_listing_entry(h->cache, d->l, k, deadline_of(h), &id, a);
		if (rc)
			return rc;
		snprintf(name, namesz, "%" PRIu64 ".json", id);
		*child = INO_MAKE(K_RECORD, INO_TYPE(ino), 0, id);
		*have_attr = true;
		return 0;
	}
	switch (INO_KIND(ino)) {
	case K_STATIC:
		if (ino == INO_LABELS_DIR)
			return assoc_labels_entry(h, k, name, namesz, child);
		if (ino == INO_OWNERS_DIR) {
			if (!d || k >= d->n)
				return 1;
			snprintf(name, namesz, "%" PRIu64 ".json", d->ids[k]);
			*child = INO_MAKE(K_OWNER, 0, 0, d->ids[k]);
			return 0;
		}
		return 1;
	case K_ASSOC_ROOT:
		if (d && k == 0) {
			snprintf(name, namesz, "%s", ASSOC_FILE);
			*child = INO_MAKE(K_ASSOCFILE, INO_TYPE(ino), 0, INO_ID(ino));
			return 0;
		}
		k--;
		if (!d || k >= d->nassoc)
			return 1;
		snprintf(name, namesz, "%s", objtypes_at(h->types, d->assoc[k])->name);
		*child = INO_MAKE(K_ASSOC_DIR, INO_TYPE(ino), d->assoc[k], INO_ID(ino));
		return 0;
	case K_ASSOC_DIR:
		if (!d || k >= d->n)
			return 1;
		snprintf(name, namesz, "%" PRIu64 ".json", d->ids[k]);
		*child = INO_MAKE(K_LINK, INO_TYPE2(ino), 0, d->ids[k]);
		return 0;
	case K_QUERY:
		if (!d || k >= d->n)
			return 1;
		snprintf(name, namesz, "%" PRIu64 ".json", d->ids[k]);
		*child = INO_MAKE(K_LINK, d->qtype->idx, 0, d->ids[k]);
		return 0;
	}
	return 1;
}

/* The directory that holds directory ino (the root holds itself). */
static fuse_ino_t dir_parent(struct hubfs *h, fuse_ino_t ino)
{
	const struct objtype *t;

	switch (INO_KIND(ino)) {
	case K_ASSOC_ROOT:
		return INO_OF_TYPE(K_TYPEDIR, INO_TYPE(ino));
	case K_ASSOC_DIR:
		return INO_MAKE(K_ASSOC_ROOT, INO_TYPE(ino), 0, INO_ID(ino));
	case K_QUERY:
		t = search_type_of(h, ino);
		return t ? INO_OF_TYPE(K_SEARCHTYPE, t->idx) : INO_SEARCH_DIR;
	default:
		return tree_parent(ino);
	}
}

/* The file type of a directory entry, for readdir without attributes. */
static mode_t entry_type(struct hubfs *h, fuse_ino_t ino)
{
	struct stat st;

	switch (INO_KIND(ino)) {
	case K_LINK:
		return S_IFLNK;
	case K_DYN:
		return dyn_stat(h, ino, &st) ? st.st_mode & S_IFMT : S_IFREG;
	case K_RECORD:
	case K_OWNER:
	case K_ASSOCFILE:
	case K_LABELS:
		return S_IFREG;
	case K_ASSOC_ROOT:
	case K_ASSOC_DIR:
	case K_QUERY:
		return S_IFDIR;
	default:
		return tree_node_is_dir(ino) ? S_IFDIR : S_IFREG;
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct hubfs *h = H(req);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	char *buf = g_malloc(size);
	size_t pos = 0;
	int rc = 0;

	for (size_t i = (size_t)off;; i++) {
		struct fuse_entry_param e;
		struct rec_attr a;
		bool have_attr;
		char name[300];
		size_t n;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			/* A zero inode number would hide them: readdir(3) skips
			 * such entries. */
			snprintf(name, sizeof(name), "%s", i == 0 ? "." : "..");
			e.attr.st_mode = S_IFDIR;
			e.attr.st_ino = i == 0 ? ino : dir_parent(h, ino);
		} else {
			rc = dir_entry(h, ino, d, i, name, sizeof(name), &e.ino, &a, &have_attr);
			if (rc)
				break;
			if (have_attr) {
				e.attr.st_ino = e.ino;
				e.attr.st_mode = served_mode(h, S_IFREG | 0444 |
							     (h->o.ro || ino_readonly(h, e.ino) ? 0 : 0200));
				e.attr.st_nlink = 1;
				e.attr.st_uid = h->uid;
				e.attr.st_gid = h->gid;
				e.attr.st_size = (off_t)a.size;
				e.attr.st_blksize = 4096;
				fill_times(&e.attr, a.mtime_ms);
				e.attr_timeout = e.entry_timeout = h->o.ttl_s;
			} else if (plus) {
				if (do_getattr(h, e.ino, &e.attr, &e.attr_timeout) != 0)
					continue; /* vanished meanwhile: skip */
				e.entry_timeout = INO_KIND(e.ino) == K_DYN ? 1 : h->o.ttl_s;
			} else {
				e.attr.st_ino = e.ino;
				e.attr.st_mode = entry_type(h, e.ino);
			}
		}
		if (plus)
			n = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, (off_t)i + 1);
		else
			n = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr, (off_t)i + 1);
		if (n > size - pos)
			break;
		if (plus && i >= 2 && INO_KIND(e.ino) == K_DYN)
			dyn_ref(h, e.ino);
		pos += n;
	}
	if (rc < 0 && pos == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, pos);
	g_free(buf);
}

static void hubfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void hubfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

/* --- xattrs ---------------------------------------------------------------- */

#define XATTR_ERROR "user.hubfs.error"

static int xattr_value(struct hubfs *h, fuse_ino_t ino, const char *name, char **val, size_t *len)
{
	/* Every attribute here is in the user namespace; for the others
	 * (security.selinux, system.posix_acl_access) the answer is the one
	 * a filesystem without that namespace gives, EOPNOTSUPP. ls -l then
	 * stops asking after the first file of the mount (it remembers a
	 * device without SELinux labels or ACLs), instead of two round trips
	 * per file; vim and sed -i treat it as "no context, no ACL" too. */
	if (strncmp(name, "user.", 5))
		return -EOPNOTSUPP;
	if (INO_KIND(ino) == K_DYN)
		return dyn_getxattr(h, ino, name, val, len);
	if (INO_KIND(ino) == K_ASSOC_DIR)
		return assoc_dir_getxattr(h, ino, name, val, len);
	if (INO_KIND(ino) != K_RECORD)
		return -ENODATA;
	if (!strcmp(name, XATTR_URL))
		*val = ino_type(h, ino) ?
		       g_strdup_printf("https://app.hubspot.com/contacts/%" PRIu64 "/record/%s/%" PRIu64,
				       h->portal_id, ino_type(h, ino)->id, INO_ID(ino)) : NULL;
	else if (!strcmp(name, XATTR_STATE))
		*val = g_strdup(record_state(h, ino));
	else if (!strcmp(name, XATTR_ERROR))
		*val = record_error(h, ino);
	if (!*val)
		return -ENODATA; /* never ENOENT/EIO: older vim turns those into E342 */
	*len = strlen(*val);
	return 0;
}

static void hubfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *val = NULL;
	size_t n = 0;
	int rc = xattr_value(H(req), ino, name, &val, &n);

	if (rc)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else if (n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, n);
	g_free(val);
}

static void hubfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct hubfs *h = H(req);
	GString *names = g_string_new(NULL);

	if (INO_KIND(ino) == K_RECORD) {
		char *err = record_error(h, ino);

		if (err)
			g_string_append_len(names, XATTR_ERROR, sizeof(XATTR_ERROR));
		g_string_append_len(names, XATTR_STATE, sizeof(XATTR_STATE));
		g_string_append_len(names, XATTR_URL, sizeof(XATTR_URL));
		g_free(err);
	} else if (INO_KIND(ino) == K_DYN) {
		dyn_listxattr(h, ino, names);
	} else if (INO_KIND(ino) == K_ASSOC_DIR) {
		assoc_dir_listxattr(h, ino, names);
	}
	if (size == 0)
		fuse_reply_xattr(req, names->len);
	else if (names->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names->str, names->len);
	g_string_free(names, TRUE);
}

/* --- namespace changes: dirops.c, except these ----------------------------- */

static void hubfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, H(req)->o.ro || ino_readonly(H(req), parent) ? EROFS : EPERM);
}

static void hubfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, H(req)->o.ro || ino_readonly(H(req), parent) ? EROFS : EPERM);
}

static void hubfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EPERM);
}

static void hubfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void hubfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs s;

	memset(&s, 0, sizeof(s));
	s.f_bsize = 4096;
	s.f_frsize = 4096;
	s.f_blocks = 1 << 20;
	s.f_bfree = 1 << 20;
	s.f_bavail = 1 << 20;
	s.f_files = 1 << 24;
	s.f_ffree = 1 << 24;
	s.f_favail = 1 << 24;
	s.f_namemax = 255;
	fuse_reply_statfs(req, &s);
}

void hubfs_conn_init(struct fuse_conn_info *conn)
{
	/* readdirplus always (ls -l and grep -r need no lookup per file); the
	 * kernel keeps pages until mtime/size change; symlink targets cached. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* O_TRUNC must reach us as a setattr (write path with no-open). */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	if (!(conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
		log_warn("kernel lacks FUSE_CAP_NO_OPEN_SUPPORT: every open costs a round trip");
}

static void hubfs_init(void *userdata, struct fuse_conn_info *conn)
{
	hubfs_conn_init(conn);
	/* The kernel is talking to us: the mount serves. A parent waiting in
	 * the terminal (no -f) may return now, and systemd (Type=notify) may
	 * start what comes after the unit. */
	daemon_ready(&((struct hubfs *)userdata)->ready_fd);
	hubfs_notify_ready(userdata);
}

/* --- kernel cache invalidation ----------------------------------------------- */

#define INVAL_STOP "stop"

static gpointer inval_main(gpointer p)
{
	struct hubfs *h = p;

	for (;;) {
		char *v = g_async_queue_pop(h->inval);
		char *name = NULL;
		uint64_t ino;

		if (!strcmp(v, INVAL_STOP)) {
			g_free(v);
			break;
		}
		/* Not from a request handler: libfuse warns that deadlocks. */
		ino = g_ascii_strtoull(v + 2, &name, 10);
		/* the audit view's kernel keeps the same inodes */
		for (int s = 0; s < 2; s++) {
			struct fuse_session *se = s ? h->audit_se : h->se;

			if (!se)
				continue;
			if (v[0] == 'i')
				fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
			else if (name && *name == ' ')
				fuse_lowlevel_notify_inval_entry(se, ino, name + 1, strlen(name + 1));
		}
		/* The kernels forgot the record's old size and pages (a read
		 * sized by them was answered before the call returned): its new
		 * text may be served now. */
		if (v[0] == 'i' && INO_KIND(ino) == K_RECORD && ino_type(h, ino))
			cache_record_shown_done(h->cache, ino_type(h, ino), INO_ID(ino));
		g_free(v);
	}
	return NULL;
}

void hubfs_inval_inode(struct hubfs *h, fuse_ino_t ino)
{
	if (h->inval)
		g_async_queue_push(h->inval, g_strdup_printf("i %" PRIu64, (uint64_t)ino));
}

void hubfs_inval_entry(struct hubfs *h, fuse_ino_t parent, const char *name)
{
	if (h->inval)
		g_async_queue_push(h->inval, g_strdup_printf("e %" PRIu64 " %s", (uint64_t)parent, name));
}

void hubfs_record_changed(void *ud, const struct objtype *type, uint64_t id)
{
	hubfs_inval_inode(ud, INO_MAKE(K_RECORD, type->idx, 0, id));
}

void hubfs_assoc_changed(void *ud, const struct objtype *from, uint64_t id,
			 const struct objtype *to, const uint64_t *ids, size_t n)
{
	struct hubfs *h = ud;
	fuse_ino_t dir = INO_MAKE(K_ASSOC_DIR, from->idx, to->idx, id);
	char name[32];

	/* The directory's listing and associations.json, which shows the list. */
	hubfs_inval_inode(h, dir);
	hubfs_inval_inode(h, INO_MAKE(K_ASSOCFILE, from->idx, 0, id));
	/* The entries of the links: all links to a record share one inode, so
	 * only the entry says whether this directory still holds it. */
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%" PRIu64 ".json", ids[i]);
		hubfs_inval_entry(h, dir, name);
	}
}

void hubfs_inval_start(struct hubfs *h)
{
	h->inval_thread = g_thread_new("hubfs-inval", inval_main, h);
}

void hubfs_inval_stop(struct hubfs *h)
{
	if (!h->inval_thread)
		return;
	g_async_queue_push(h->inval, g_strdup(INVAL_STOP));
	g_thread_join(h->inval_thread);
	h->inval_thread = NULL;
}

const struct fuse_lowlevel_ops hubfs_ops = {
	.init = hubfs_init,
	.lookup = hubfs_lookup,
	.forget = hubfs_w_forget,
	.forget_multi = hubfs_w_forget_multi,
	.getattr = hubfs_getattr,
	.setattr = hubfs_w_setattr,
	.readlink = hubfs_readlink,
	.mknod = hubfs_w_mknod,
	.mkdir = hubfs_mkdir,
	.unlink = hubfs_w_unlink,
	.rmdir = hubfs_rmdir,
	.symlink = hubfs_w_symlink,
	.rename = hubfs_w_rename,
	.link = hubfs_link,
	.open = hubfs_open,
	.read = hubfs_read,
	.write = hubfs_w_write,
	.flush = hubfs_w_flush,
	.fsync = hubfs_w_fsync,
	.opendir = hubfs_opendir,
	.readdir = hubfs_readdir,
	.readdirplus = hubfs_readdirplus,
	.releasedir = hubfs_releasedir,
	.fsyncdir = hubfs_fsyncdir,
	.statfs = hubfs_statfs,
	.setxattr = hubfs_w_setxattr,
	.getxattr = hubfs_getxattr,
	.listxattr = hubfs_listxattr,
	.removexattr = hubfs_w_removexattr,
	.create = hubfs_w_create,
};
