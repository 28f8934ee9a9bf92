/* write.c - the write path of the FUSE layer.
 *
 * Record files have no per-open state (open answers ENOSYS, see ops.c), so a
 * record being written has one buffer per inode, filled by setattr(size) and
 * write, and committed at flush by the process that wrote it: parsed,
 * validated, diffed, journaled (writeback_update), and made visible to every
 * reader at once. Any other name created in a type directory is a scratch file:
 * in memory, fully POSIX, never uploaded; renaming one onto <id>.json commits it
 * as an edit, which is how vim, sed -i, jq > t && mv t f and friends save.
 *
 * Lock rules: h->lock guards dnodes, dirents, wbufs, rec_errors, snapshots and
 * the logs; it is never held across a cache, writeback or HTTP call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cache/edit.h"
#include "cache/objtype.h"
#include "cache/record.h"
#include "client/log.h"
#include "fs/internal.h"

/* --- dynamic nodes --------------------------------------------------------- */

static char *dkey(fuse_ino_t parent, const char *name)
{
	return g_strdup_printf("%" PRIu64 "/%s", (uint64_t)parent, name);
}

static void dnode_free(struct dnode *d)
{
	if (d->data)
		g_byte_array_unref(d->data);
	if (d->xattrs)
		g_hash_table_destroy(d->xattrs);
	if (d->writers)
		g_array_free(d->writers, TRUE);
	g_free(d->link);
	g_free(d->name);
	g_free(d);
}

static void now_ts(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* Lock held. */
static struct dnode *dnode_new(struct hubfs *h, fuse_ino_t parent, const char *name,
			       enum dkind kind, int type, mode_t mode)
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
	now_ts(&d->mtime);
	d->atime = d->ctime = d->mtime;
	d->data = g_byte_array_new();
	d->xattrs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
	d->writers = g_array_new(FALSE, FALSE, sizeof(pid_t));
	g_hash_table_insert(h->dnodes, GSIZE_TO_POINTER(d->ino), d);
	g_hash_table_insert(h->dirents, dkey(parent, name), d);
	return d;
}

/* Remove a node's name; free it once the kernel holds no reference. Lock held. */
static void dnode_unlink(struct hubfs *h, struct dnode *d)
{
	if (d->name) {
		g_autofree char *k = dkey(d->parent, d->name);

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

static struct dnode *dnode_at(struct hubfs *h, fuse_ino_t parent, const char *name)
{
	g_autofree char *k = dkey(parent, name);

	return g_hash_table_lookup(h->dirents, k);
}

static struct dnode *dnode_of(struct hubfs *h, fuse_ino_t ino)
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
		st->st_size = d->kind == D_LINK ? (off_t)strlen(d->link) : (off_t)d->data->len;
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
	int rc = 0;

	*n = 0;
	*buf = NULL;
	g_mutex_lock(&h->lock);
	d = dnode_of(h, ino);
	if (!d)
		rc = -ENOENT;
	else if (d->kind == D_LINK)
		rc = -EINVAL;
	else if ((size_t)off < d->data->len) {
		*n = MIN(size, d->data->len - (size_t)off);
		*buf = g_memdup2(d->data->data + off, *n);
	}
	g_mutex_unlock(&h->lock);
	return rc;
}

/* Resize a byte array, zero-filling what it grows by. */
static void bytes_resize(GByteArray *a, size_t n)
{
	size_t old = a->len;

	g_byte_array_set_size(a, (guint)n);
	if (n > old)
		memset(a->data + old, 0, n - old);
}

/* Write into a node's data, growing it; lock held. */
static int data_write(struct hubfs *h, struct dnode *d, const char *buf, size_t size, off_t off)
{
	size_t end = (size_t)off + size;

	if (end > d->data->len) {
		if (h->scratch_bytes + (end - d->data->len) > SCRATCH_MAX)
			return -ENOSPC;
		h->scratch_bytes += end - d->data->len;
		bytes_resize(d->data, end);
	}
	memcpy(d->data->data + off, buf, size);
	now_ts(&d->mtime);
	d->ctime = d->mtime;
	return 0;
}

static int data_truncate(struct hubfs *h, struct dnode *d, size_t size)
{
	size_t old = d->data->len;

	if (size > old && h->scratch_bytes + (size - old) > SCRATCH_MAX)
		return -ENOSPC;
	bytes_resize(d->data, size);
	h->scratch_bytes = h->scratch_bytes + size - old;
	now_ts(&d->mtime);
	d->ctime = d->mtime;
	return 0;
}

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

static void writers_add(GArray *w, pid_t pid)
{
	pid_t tg;

	for (guint i = 0; i < w->len; i++)
		if (g_array_index(w, pid_t, i) == pid)
			return;
	g_array_append_val(w, pid);
	tg = tgid_of(pid);
	if (tg != pid)
		g_array_append_val(w, tg);
}

static bool writers_has(GArray *w, pid_t pid)
{
	pid_t tg;

	if (!w || !w->len)
		return false;
	for (guint i = 0; i < w->len; i++)
		if (g_array_index(w, pid_t, i) == pid)
			return true;
	tg = tgid_of(pid);
	for (guint i = 0; i < w->len; i++)
		if (g_array_index(w, pid_t, i) == tg)
			return true;
	return false;
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
static int wbuf_get(struct hubfs *h, fuse_ino_t ino, pid_t pid, struct wbuf **out)
{
	struct wbuf *w;
	char *text = NULL;
	size_t len = 0;
	int rc;

	g_mutex_lock(&h->lock);
	w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
	if (w) {
		writers_add(w->writers, pid);
		*out = w;
		return 0; /* lock held */
	}
	g_mutex_unlock(&h->lock);

	rc = cache_record_text(h->cache, INO_TYPE(ino), INO_ID(ino), deadline_of(h), &text, &len);
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
	writers_add(w->writers, pid);
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

/* --- kernel invalidation ------------------------------------------------------ */

static void inval_inode(struct hubfs *h, fuse_ino_t ino)
{
	hubfs_inval_inode(h, ino);
}

void hubfs_inval_entry(struct hubfs *h, fuse_ino_t parent, const char *name)
{
	if (h->inval)
		g_async_queue_push(h->inval, g_strdup_printf("e %" PRIu64 " %s", (uint64_t)parent, name));
}

/* --- errors.log and rejected/ ------------------------------------------------- */

static json_object *iso_now(void)
{
	int64_t ms = hubfs_wall_ms();
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char buf[64];

	gmtime_r(&s, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_object_new_string(buf);
}

void hubfs_error(struct hubfs *h, json_object *obj)
{
	json_object *line = json_object_new_object();
	const char *txt;

	json_object_object_add(line, "time", iso_now());
	json_object_object_foreach(obj, k, v)
		if (strcmp(k, "time") != 0)
			json_object_object_add(line, k, json_object_get(v));
	txt = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	g_mutex_lock(&h->lock);
	g_string_append(h->errors, txt);
	g_string_append_c(h->errors, '\n');
	if (h->errors->len > ERRORS_MAX) {
		const char *cut = strchr(h->errors->str + (h->errors->len - ERRORS_MAX), '\n');

		g_string_erase(h->errors, 0, cut ? cut + 1 - h->errors->str : 0);
	}
	if (h->errors_fd >= 0) {
		g_autofree char *l = g_strconcat(txt, "\n", NULL);

		if (write(h->errors_fd, l, strlen(l)) < 0)
			log_warn("errors.log: %s", strerror(errno));
	}
	g_mutex_unlock(&h->lock);
	log_notice("%s", txt);
	json_object_put(line);
}

/* Keep bytes under .hubfs/rejected/<name> (a unique name is made). */
static void keep_rejected(struct hubfs *h, const char *name, const char *data, size_t len)
{
	g_autofree char *base = g_strdelimit(g_strdup(name), "/", '-');
	struct dnode *d;

	g_mutex_lock(&h->lock);
	for (int n = 1; dnode_at(h, INO_REJECTED, base); n++) {
		g_autofree char *stem = g_strdup(name);
		char *dot;

		g_strdelimit(stem, "/", '-');
		dot = strrchr(stem, '.');
		if (dot)
			*dot = '\0';
		g_free(base);
		base = g_strdup_printf("%s.%d%s", stem, n, strrchr(name, '.') ? strrchr(name, '.') : "");
	}
	d = dnode_new(h, INO_REJECTED, base, D_REJECTED, -1, S_IFREG | 0644);
	g_byte_array_append(d->data, (const guint8 *)data, (guint)len);
	g_mutex_unlock(&h->lock);
}

void hubfs_reject(struct hubfs *h, const char *file, const char *property, const char *reason,
		  const char *data, size_t len)
{
	json_object *o = json_object_new_object();
	g_autofree char *kept = g_strdup_printf("%s.%" PRId64 ".rejected", file, hubfs_wall_ms());

	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "op", json_object_new_string("save"));
	if (property && *property)
		json_object_object_add(o, "property", json_object_new_string(property));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	g_strdelimit(kept, "/", '-');
	json_object_object_add(o, "rejected", json_object_new_string(kept));
	hubfs_error(h, o);
	json_object_put(o);
	keep_rejected(h, kept, data, len);
}

static void set_rec_error(struct hubfs *h, fuse_ino_t ino, const char *reason)
{
	g_mutex_lock(&h->lock);
	if (reason)
		g_hash_table_insert(h->rec_errors, GSIZE_TO_POINTER(ino), g_strdup(reason));
	else
		g_hash_table_remove(h->rec_errors, GSIZE_TO_POINTER(ino));
	g_mutex_unlock(&h->lock);
}

char *record_error(struct hubfs *h, fuse_ino_t ino)
{
	char *s;

	g_mutex_lock(&h->lock);
	s = g_strdup(g_hash_table_lookup(h->rec_errors, GSIZE_TO_POINTER(ino)));
	g_mutex_unlock(&h->lock);
	return s;
}

const char *record_state(struct hubfs *h, fuse_ino_t ino)
{
	const char *s = h->wb ? writeback_record_state(h->wb, INO_TYPE(ino), INO_ID(ino)) : "clean";

	if (!strcmp(s, "clean") && hs_client_offline(h->hc))
		return "stale";
	return s;
}

/* --- commits ------------------------------------------------------------------- */

struct ectx {
	struct edit_ctx c;
	json_object *pipelines, *owners;
};

static int ectx_init(struct hubfs *h, int type, struct ectx *e)
{
	int64_t deadline = deadline_of(h);
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	e->c.type = type;
	rc = cache_schema(h->cache, type, deadline, &e->c.schema);
	if (rc)
		return rc;
	if (type == OT_DEALS || type == OT_TICKETS) {
		char *text = NULL;
		size_t len;

		if (cache_pipelines_text(h->cache, type, deadline, &text, &len) == 0)
			e->pipelines = json_tokener_parse(text);
		g_free(text);
		e->c.pipelines = e->pipelines;
	}
	if (cache_owner_ids(h->cache, deadline, &ids, &n) == 0) {
		e->owners = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			char buf[24];

			snprintf(buf, sizeof(buf), "%" PRIu64, ids[i]);
			json_object_array_add(e->owners, json_object_new_string(buf));
		}
		e->c.owner_ids = e->owners;
		g_free(ids);
	}
	return 0;
}

static void ectx_clear(struct ectx *e)
{
	json_object_put(e->pipelines);
	json_object_put(e->owners);
}

static char *record_label(fuse_ino_t ino)
{
	return g_strdup_printf("%s/%" PRIu64 ".json", objtype_name(INO_TYPE(ino)), INO_ID(ino));
}

/* Commit data as an edit of record ino, diffed against base. quiet: on invalid
 * input return -EINVAL without logging (fsync probes). */
static int commit_record(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len,
			 const char *base, size_t base_len, bool quiet)
{
	int type = INO_TYPE(ino);
	uint64_t id = INO_ID(ino);
	g_autofree char *label = record_label(ino);
	json_object *changes = NULL, *bases = NULL;
	struct edit_error err = { { 0 }, { 0 } };
	char *cur = NULL, *text = NULL;
	size_t cur_len = 0, tlen = 0;
	struct ectx e;
	uint64_t epoch;
	int rc;

	if (len == 0) {
		snprintf(err.reason, sizeof(err.reason), "empty file: nothing was saved (an empty "
			 "save never clears a record)");
		rc = -EINVAL;
		goto reject;
	}
	rc = ectx_init(h, type, &e);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	rc = edit_parse(&e.c, data, len, base, base_len, &changes, &bases, &err);
	if (rc)
		goto reject_ctx;
	if (json_object_object_length(changes) == 0) {
		/* Nothing changed: no API call. Drop the kernel's copy of the bytes
		 * written if they differ from the rendering (e.g. reformatted). */
		if (len != base_len || memcmp(data, base, len) != 0)
			inval_inode(h, ino);
		set_rec_error(h, ino, NULL);
		rc = 0;
		goto out;
	}
	/* Apply to the current file (a refresh may have moved it on since). */
	rc = cache_record_text(h->cache, type, id, deadline_of(h), &cur, &cur_len);
	if (rc == 0)
		rc = edit_apply(e.c.schema, cur, cur_len, changes, &text, &tlen);
	if (rc)
		goto out;
	epoch = cache_record_put_local_epoch(h->cache, type, id, text, tlen, hubfs_wall_ms());
	rc = writeback_update(h->wb, type, id, changes, bases, epoch);
	if (rc) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(label));
		json_object_object_add(o, "op", json_object_new_string("journal"));
		json_object_object_add(o, "reason", json_object_new_string(strerror(-rc)));
		hubfs_error(h, o);
		json_object_put(o);
		cache_record_forget(h->cache, type, id);
		rc = -EIO;
		goto out;
	}
	set_rec_error(h, ino, NULL);
	inval_inode(h, ino);
out:
	ectx_clear(&e);
	json_object_put(changes);
	json_object_put(bases);
	g_free(cur);
	g_free(text);
	return rc;
reject_ctx:
	ectx_clear(&e);
reject:
	if (quiet)
		return rc;
	hubfs_reject(h, label, err.property, err.reason, data, len);
	set_rec_error(h, ino, err.reason);
	inval_inode(h, ino);
	return rc;
}

/* Commit a _new/ file as a create. Lock not held; d stays valid because only
 * this mount's handlers remove nodes and the kernel holds a reference. */
static int commit_create(struct hubfs *h, int type, const char *name, const char *data, size_t len,
			 char **key_out)
{
	g_autofree char *label = g_strdup_printf("%s/_new/%s", objtype_name(type), name);
	struct edit_error err = { { 0 }, { 0 } };
	json_object *props = NULL;
	struct ectx e;
	char *key;
	int rc;

	if (len == 0) {
		snprintf(err.reason, sizeof(err.reason), "empty file: nothing to create");
		hubfs_reject(h, label, NULL, err.reason, data, len);
		return -EINVAL;
	}
	rc = ectx_init(h, type, &e);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	rc = edit_parse_new(&e.c, data, len, &props, &err);
	ectx_clear(&e);
	if (rc) {
		hubfs_reject(h, label, err.property, err.reason, data, len);
		return rc;
	}
	/* The key names the create in the journal: unique across mounts. */
	key = g_strdup_printf("%s#%" PRId64, name, g_get_real_time());
	rc = writeback_create(h->wb, type, key, props);
	json_object_put(props);
	if (rc) {
		g_free(key);
		return -EIO;
	}
	*key_out = key;
	return 0;
}

/* --- handlers ------------------------------------------------------------------ */

static bool creation_name(const char *name)
{
	size_t n = strlen(name);

	return n > 5 && name[0] != '.' && strcmp(name + n - 5, ".json") == 0;
}

static bool record_name(const char *name, uint64_t *id)
{
	size_t n = strlen(name);

	return n > 5 && strcmp(name + n - 5, ".json") == 0 && record_parse_id(name, n - 5, id) == 0;
}

/* Type of a directory that may hold scratch files (type dir or _new/), else -1. */
static int scratch_dir_type(fuse_ino_t parent)
{
	if (is_typedir(parent))
		return (int)(parent - INO_TYPEDIR);
	if (is_newdir(parent))
		return (int)(parent - INO_NEW_DIR);
	return -1;
}

static void reply_entry_of(fuse_req_t req, fuse_ino_t parent, const char *name,
			   struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int rc = do_lookup(H(req), parent, name, &e);

	if (rc)
		fuse_reply_err(req, -rc);
	else if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
}

static int do_create(struct hubfs *h, fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, bool trunc)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int t = scratch_dir_type(parent);
	struct dnode *d;
	uint64_t id;

	if (h->o.ro)
		return -EROFS;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (t < 0)
		return -EPERM;
	if (is_typedir(parent) && record_name(name, &id)) {
		struct rec_attr a;
		struct wbuf *w;
		int rc = cache_record_stat(h->cache, t, id, deadline_of(h), &a);

		/* O_CREAT of an existing record (the kernel's dentry was stale, e.g.
		 * right after vim renamed it to its backup): open it. Otherwise
		 * inventing an id is not allowed. */
		if (rc == -ENOENT)
			return -EPERM;
		if (rc)
			return rc;
		if (trunc) {
			rc = wbuf_get(h, INO_MAKE(K_RECORD, t, 0, id), ctx->pid, &w);
			if (rc)
				return rc;
			g_byte_array_set_size(w->data, 0);
			g_mutex_unlock(&h->lock);
		}
		return 0;
	}
	if (is_typedir(parent) && !strcmp(name, "_new"))
		return -EEXIST;
	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (!d) {
		bool creating = is_newdir(parent) && creation_name(name);

		d = dnode_new(h, parent, name, creating ? D_NEWFILE : D_SCRATCH, t, S_IFREG | (mode & 07777));
		d->uid = ctx->uid;
		d->gid = ctx->gid;
	} else if (trunc && !d->committed && d->kind != D_LINK) {
		data_truncate(h, d, 0);
	}
	g_mutex_unlock(&h->lock);
	return 0;
}

void hubfs_w_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi)
{
	int rc = do_create(H(req), req, parent, name, mode, fi->flags & O_TRUNC);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->keep_cache = 1;
	reply_entry_of(req, parent, name, fi);
}

void hubfs_w_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	int rc = S_ISREG(mode) ? do_create(H(req), req, parent, name, mode, false) : -EPERM;

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry_of(req, parent, name, NULL);
}

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
		bytes_resize(w->data, (size_t)attr->st_size);
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
				rc = data_truncate(h, d, (size_t)attr->st_size);
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
				now_ts(&d->atime);
			if (to_set & FUSE_SET_ATTR_MTIME_NOW)
				now_ts(&d->mtime);
			now_ts(&d->ctime);
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

static int ctl_command(struct hubfs *h, const char *buf, size_t size);

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
				bytes_resize(w->data, (size_t)off + size);
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
		else if ((rc = data_write(h, d, buf, size, off)) == 0)
			writers_add(d->writers, req_pid(req));
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
	int rc = 0;

	if (INO_KIND(ino) == K_RECORD) {
		struct wbuf *w;

		g_mutex_lock(&h->lock);
		w = g_hash_table_lookup(h->wbufs, GSIZE_TO_POINTER(ino));
		if (!w || !writers_has(w->writers, pid)) {
			g_mutex_unlock(&h->lock);
			return 0; /* a reader's close */
		}
		if (!quiet) {
			g_autofree char *label = record_label(ino);
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
			g_autofree char *label = record_label(ino);

			hubfs_reject(h, label, NULL, "larger than 1 MiB: nothing was saved",
				     (const char *)w->data->data, w->data->len);
			inval_inode(h, ino);
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
		if (d && d->kind == D_NEWFILE && d->name && !d->committed && writers_has(d->writers, pid)) {
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
				d->committed = true;
				d->mode = S_IFREG | 0444;
				g_free(d->link);
				d->link = key; /* the journal key, matched when it lands */
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

void hubfs_w_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hubfs *h = H(req);
	struct dnode *d;
	uint64_t id;
	int rc = 0;

	if (h->o.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (d) {
		dnode_unlink(h, d);
		g_mutex_unlock(&h->lock);
		fuse_reply_err(req, 0);
		return;
	}
	g_mutex_unlock(&h->lock);

	if (is_typedir(parent) && record_name(name, &id)) {
		int t = (int)(parent - INO_TYPEDIR);
		struct rec_attr a;

		if (!h->o.allow_delete) {
			rc = -EPERM;
		} else if ((rc = cache_record_stat(h->cache, t, id, deadline_of(h), &a)) == 0 &&
			   (rc = writeback_archive(h->wb, t, id)) == 0) {
			cache_listing_note(h->cache, t, id, false);
		}
	} else if (INO_KIND(parent) == K_ASSOC_DIR && record_name(name, &id)) {
		struct fuse_entry_param e;

		rc = do_lookup(h, parent, name, &e); /* is it there? */
		if (rc == 0)
			rc = writeback_assoc(h->wb, false, INO_TYPE(parent), INO_ID(parent), INO_TYPE2(parent), id);
		if (rc == 0)
			cache_assoc_note(h->cache, INO_TYPE(parent), INO_ID(parent), INO_TYPE2(parent), id, false);
	} else {
		struct fuse_entry_param e;

		rc = do_lookup(h, parent, name, &e);
		if (rc == 0)
			rc = -EPERM;
	}
	fuse_reply_err(req, -rc);
}

void hubfs_w_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct hubfs *h = H(req);
	g_autofree char *want = NULL;
	struct rec_attr a;
	uint64_t id;
	int rc;

	if (h->o.ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (INO_KIND(parent) != K_ASSOC_DIR || !record_name(name, &id)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* ln -s ../../../companies/201.json contacts/101/companies/: the link must
	 * name the record its own name names, in the directory's type. */
	want = g_strdup_printf("%s/%s", objtype_name(INO_TYPE2(parent)), name);
	if (!g_str_has_suffix(link, want) ||
	    (strlen(link) > strlen(want) && link[strlen(link) - strlen(want) - 1] != '/')) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "op", json_object_new_string("link"));
		json_object_object_add(o, "file", json_object_new_string(name));
		json_object_object_add(o, "reason", json_object_new_string(
			"an association link must point at ../../../<type>/<id>.json of its own name"));
		hubfs_error(h, o);
		json_object_put(o);
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = cache_record_stat(h->cache, INO_TYPE2(parent), id, deadline_of(h), &a);
	if (rc == 0)
		rc = writeback_assoc(h->wb, true, INO_TYPE(parent), INO_ID(parent), INO_TYPE2(parent), id);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	cache_assoc_note(h->cache, INO_TYPE(parent), INO_ID(parent), INO_TYPE2(parent), id, true);
	reply_entry_of(req, parent, name, NULL);
}

/* Copy a record into a scratch file named newname (replacing a scratch file). */
static int record_to_scratch(struct hubfs *h, fuse_ino_t rec, fuse_ino_t newparent,
			     const char *newname, bool noreplace)
{
	int t = scratch_dir_type(newparent);
	char *text = NULL;
	size_t len = 0;
	struct dnode *d;
	int rc;

	rc = cache_record_text(h->cache, INO_TYPE(rec), INO_ID(rec), deadline_of(h), &text, &len);
	if (rc)
		return rc;
	g_mutex_lock(&h->lock);
	d = dnode_at(h, newparent, newname);
	if (d && noreplace)
		rc = -EEXIST;
	else if (d && (d->kind == D_LINK || d->committed))
		rc = -EPERM;
	else {
		if (!d)
			d = dnode_new(h, newparent, newname, D_SCRATCH, t, S_IFREG | 0644);
		rc = data_truncate(h, d, 0);
		if (rc == 0)
			rc = data_write(h, d, text, len, 0);
	}
	g_mutex_unlock(&h->lock);
	g_free(text);
	return rc;
}

static int do_rename(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	bool noreplace = flags & RENAME_NOREPLACE;
	int st = scratch_dir_type(parent), dt = scratch_dir_type(newparent);
	struct dnode *src, *dst;
	uint64_t id, did;
	int rc = 0;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (h->o.ro)
		return -EROFS;
	if (strlen(newname) > 255)
		return -ENAMETOOLONG;

	g_mutex_lock(&h->lock);
	src = dnode_at(h, parent, name);
	dst = dnode_at(h, newparent, newname);
	g_mutex_unlock(&h->lock);

	if (!src) {
		/* Only a record can be renamed besides our own nodes: <id>.json ->
		 * a scratch name copies it, leaving the record in place. */
		if (!is_typedir(parent) || !record_name(name, &id))
			return INO_KIND(parent) == K_ASSOC_DIR || is_typedir(parent) || is_newdir(parent)
				       ? -ENOENT : -EPERM;
		if (dt != st || (is_typedir(newparent) && record_name(newname, &did)) ||
		    (is_newdir(newparent) && creation_name(newname)) ||
		    (is_typedir(newparent) && !strcmp(newname, "_new")))
			return -EPERM; /* record -> record, across types, or into creation */
		{
			struct rec_attr a;

			rc = cache_record_stat(h->cache, st, id, deadline_of(h), &a);
			if (rc)
				return rc;
		}
		rc = record_to_scratch(h, INO_MAKE(K_RECORD, st, 0, id), newparent, newname, noreplace);
		if (rc == 0) {
			hubfs_inval_entry(h, parent, name);
			hubfs_inval_entry(h, newparent, newname);
		}
		return rc;
	}
	if (src->kind == D_LINK || src->kind == D_REJECTED || src->committed)
		return -EPERM;
	if (dt < 0 || dt != st)
		return dt < 0 ? -EPERM : -EXDEV;

	if (is_typedir(newparent) && record_name(newname, &did)) {
		/* scratch -> <id>.json: commit the scratch content as an edit. */
		GByteArray *data;
		char *base = NULL;
		size_t base_len = 0;
		struct rec_attr a;

		rc = cache_record_stat(h->cache, dt, did, deadline_of(h), &a);
		if (rc == -ENOENT)
			return -EPERM;
		if (rc)
			return rc;
		if (noreplace)
			return -EEXIST;
		rc = cache_record_text(h->cache, dt, did, deadline_of(h), &base, &base_len);
		if (rc)
			return rc;
		g_mutex_lock(&h->lock);
		src = dnode_at(h, parent, name);
		data = src ? g_byte_array_ref(src->data) : NULL;
		g_mutex_unlock(&h->lock);
		if (!data) {
			g_free(base);
			return -ENOENT;
		}
		rc = commit_record(h, INO_MAKE(K_RECORD, dt, 0, did), (const char *)data->data, data->len,
				   base, base_len, false);
		g_byte_array_unref(data);
		g_free(base);
		if (rc)
			return rc;
		g_mutex_lock(&h->lock);
		src = dnode_at(h, parent, name);
		if (src)
			dnode_unlink(h, src);
		g_mutex_unlock(&h->lock);
		/* The kernel now maps newname to the scratch inode: make it look again. */
		hubfs_inval_entry(h, newparent, newname);
		return 0;
	}
	if (is_typedir(newparent) && !strcmp(newname, "_new"))
		return -EPERM;

	if (is_newdir(newparent) && creation_name(newname)) {
		/* scratch -> _new/<name>.json: a create. */
		GByteArray *data;
		char *key = NULL;

		if (dst && (noreplace || dst->kind == D_LINK || dst->committed))
			return noreplace ? -EEXIST : -EPERM;
		g_mutex_lock(&h->lock);
		src = dnode_at(h, parent, name);
		data = src ? g_byte_array_ref(src->data) : NULL;
		g_mutex_unlock(&h->lock);
		if (!data)
			return -ENOENT;
		rc = commit_create(h, dt, newname, (const char *)data->data, data->len, &key);
		g_byte_array_unref(data);
		if (rc)
			return rc;
		g_mutex_lock(&h->lock);
		src = dnode_at(h, parent, name);
		dst = dnode_at(h, newparent, newname);
		if (dst && dst != src)
			dnode_unlink(h, dst);
		if (src) {
			g_autofree char *k = dkey(parent, name);

			g_hash_table_remove(h->dirents, k); /* frees the table's key, not the node */
			g_free(src->name);
			src->name = g_strdup(newname);
			src->parent = newparent;
			src->kind = D_NEWFILE;
			src->committed = true;
			src->mode = S_IFREG | 0444;
			g_free(src->link);
			src->link = key;
			key = NULL;
			g_hash_table_insert(h->dirents, dkey(newparent, newname), src);
		}
		g_mutex_unlock(&h->lock);
		g_free(key);
		return 0;
	}

	/* scratch -> scratch name (possibly replacing another scratch file). */
	g_mutex_lock(&h->lock);
	src = dnode_at(h, parent, name);
	dst = dnode_at(h, newparent, newname);
	if (!src)
		rc = -ENOENT;
	else if (dst && noreplace)
		rc = -EEXIST;
	else if (dst && (dst->kind == D_LINK || dst->committed))
		rc = -EPERM;
	else if (src != dst) {
		g_autofree char *k = dkey(parent, name);

		if (dst)
			dnode_unlink(h, dst);
		g_hash_table_remove(h->dirents, k); /* frees the table's key, not the node */
		g_free(src->name);
		src->name = g_strdup(newname);
		src->parent = newparent;
		if (src->kind == D_NEWFILE && !(is_newdir(newparent) && creation_name(newname)))
			src->kind = D_SCRATCH;
		else if (src->kind == D_SCRATCH && is_newdir(newparent) && creation_name(newname))
			src->kind = D_NEWFILE;
		now_ts(&src->ctime);
		g_hash_table_insert(h->dirents, dkey(newparent, newname), src);
	}
	g_mutex_unlock(&h->lock);
	if (rc == 0 && is_typedir(newparent) && record_name(newname, &did))
		hubfs_inval_entry(h, newparent, newname);
	return rc;
}

void hubfs_w_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		    const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -do_rename(H(req), parent, name, newparent, newname, flags));
}

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

	if (INO_KIND(ino) == K_DYN) {
		g_mutex_lock(&h->lock);
		forget_one(h, ino, nlookup);
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

/* --- .hubfs/ files ------------------------------------------------------------ */

int ctl_text(struct hubfs *h, fuse_ino_t ino, bool fresh, char **text, size_t *len)
{
	int i = (int)(ino - INO_STATUS);
	char *s = NULL;
	size_t n = 0;

	if (ino != INO_STATUS && ino != INO_ERRORS && ino != INO_QUEUE && ino != INO_CREATED &&
	    ino != INO_CTL)
		return -ENOENT;
	/* A snapshot lives for a second: every stat and read within it sees the
	 * same bytes, size and mtime, so a reader's reads (and its EOF probe) are
	 * consistent; regenerating per getattr would let a second read() see a
	 * newer, longer text. */
	g_mutex_lock(&h->lock);
	if (h->snap[i] && hs_now_ms() - h->snap_ms[i] < 1000)
		fresh = false;
	g_mutex_unlock(&h->lock);
	if (fresh || !h->snap[i]) {
		if (ino == INO_STATUS)
			s = hubfs_status_json(h, &n);
		else if (ino == INO_QUEUE)
			s = h->wb ? writeback_queue_text(h->wb, &n) : g_strdup("");
		g_mutex_lock(&h->lock);
		if (ino == INO_ERRORS)
			s = g_strdup(h->errors->str);
		else if (ino == INO_CREATED)
			s = g_strdup(h->created->str);
		else if (ino == INO_CTL)
			s = g_strdup("");
		n = strlen(s);
		g_free(h->snap[i]);
		h->snap[i] = s;
		h->snap_len[i] = n;
		h->snap_ms[i] = hs_now_ms();
		clock_gettime(CLOCK_REALTIME, &h->snap_time[i]);
		g_mutex_unlock(&h->lock);
	}
	g_mutex_lock(&h->lock);
	*text = g_memdup2(h->snap[i], h->snap_len[i] + 1);
	*len = h->snap_len[i];
	g_mutex_unlock(&h->lock);
	return 0;
}

static int ctl_command(struct hubfs *h, const char *buf, size_t size)
{
	g_autofree char *cmd = g_strndup(buf, size);
	json_object *o;
	int rc = 0;

	g_strstrip(cmd);
	if (!strcmp(cmd, "sync")) {
		char *report = NULL;

		rc = writeback_sync(h->wb, deadline_of(h), &report);
		if (rc == -EIO && report) {
			o = json_object_new_object();
			json_object_object_add(o, "op", json_object_new_string("sync"));
			json_object_object_add(o, "reason", json_object_new_string(report));
			hubfs_error(h, o);
			json_object_put(o);
		}
		g_free(report);
	} else if (!strcmp(cmd, "retry")) {
		rc = writeback_retry(h->wb);
	} else if (!strcmp(cmd, "forget")) {
		rc = writeback_forget(h->wb);
	} else if (!strcmp(cmd, "refresh") || g_str_has_prefix(cmd, "refresh ")) {
		/* refresh [path]: the type named by the path's first component (or
		 * every type), refreshed now; the write returns when it is done. */
		const char *path = cmd[7] ? g_strstrip(cmd + 8) : "";
		int only = -1;

		if (*path) {
			const char *slash = strchr(path, '/');

			only = objtype_from_name(path, slash ? (size_t)(slash - path) : strlen(path));
			if (only < 0) {
				o = json_object_new_object();
				json_object_object_add(o, "op", json_object_new_string("ctl"));
				json_object_object_add(o, "reason", json_object_new_string(
					"refresh PATH: PATH must start with contacts, companies, deals or tickets"));
				hubfs_error(h, o);
				json_object_put(o);
				return -EINVAL;
			}
		}
		for (int t = 0; t < OT_COUNT && rc == 0; t++)
			if (only < 0 || t == only)
				rc = cache_refresh(h->cache, t, RL_PRIO_USER, deadline_of(h));
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "op", json_object_new_string("ctl"));
		json_object_object_add(o, "reason", json_object_new_string(
			"unknown command; use sync, retry, forget or refresh"));
		hubfs_error(h, o);
		json_object_put(o);
		rc = -EINVAL;
	}
	return rc;
}

/* --- writeback hooks ------------------------------------------------------------ */

static void on_created(void *ud, int type, const char *key, const char *id)
{
	struct hubfs *h = ud;
	g_autofree char *name = g_strdup(key);
	char *hash = strrchr(name, '#');
	fuse_ino_t parent = INO_NEW_DIR + (fuse_ino_t)type;
	struct dnode *d;
	uint64_t rid;
	bool relink = false;

	if (hash)
		*hash = '\0';
	g_mutex_lock(&h->lock);
	g_string_append_printf(h->created, "%s/_new/%s %s %s\n", objtype_name(type), name,
			       objtype_name(type), id);
	d = dnode_at(h, parent, name);
	if (d && d->kind == D_NEWFILE && d->link && !strcmp(d->link, key)) {
		struct dnode *l;

		dnode_unlink(h, d);
		l = dnode_new(h, parent, name, D_LINK, type, S_IFLNK | 0777);
		l->link = g_strdup_printf("../%s.json", id);
		relink = true;
	}
	g_mutex_unlock(&h->lock);
	if (record_parse_id(id, strlen(id), &rid) == 0)
		cache_listing_note(h->cache, type, rid, true);
	if (relink)
		hubfs_inval_entry(h, parent, name);
}

static void on_error(void *ud, json_object *line)
{
	hubfs_error(ud, line);
}

static void on_rejected(void *ud, const char *name, const char *text, size_t len)
{
	keep_rejected(ud, name, text, len);
}

struct writeback_hooks hubfs_writeback_hooks(struct hubfs *h)
{
	struct writeback_hooks wh = { .created = on_created, .error = on_error,
				      .rejected = on_rejected, .ud = h };

	return wh;
}

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
