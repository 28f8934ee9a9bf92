/* dirops.c - the handlers that change a directory: create and mknod (a
 * scratch file, a _new/ file, or O_CREAT of an existing record), unlink (of a
 * node, a record with allow_delete, or an association link), symlink (adds an
 * association) and rename, whose rules are how editors save: a scratch file
 * renamed onto <id>.json is an edit, onto _new/<name>.json a create, and a
 * record renamed to a scratch name is copied, leaving the record in place.
 *
 * Lock rules: h->lock guards dnodes and dirents; it is never held across a
 * cache, writeback or HTTP call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache/model/record.h"
#include "fs/internal.h"
#include "fs/names.h"

/* --- names and creates ----------------------------------------------------- */

/* Type of a directory that may hold scratch files (type dir or _new/), else NULL. */
static const struct objtype *scratch_dir_type(struct hubfs *h, fuse_ino_t parent)
{
	return is_typedir(parent) || is_newdir(parent) || INO_KIND(parent) == K_ASSOC_ROOT ?
	       ino_type(h, parent) : NULL;
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
	const struct objtype *t = scratch_dir_type(h, parent);
	struct dnode *d;
	uint64_t id;

	if (h->o.ro || ino_readonly(h, parent))
		return -EROFS;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (!t)
		return -EPERM;
	if (is_typedir(parent) && name_record(name, &id)) {
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
			rc = wbuf_get(h, INO_MAKE(K_RECORD, t->idx, 0, id), ctx->pid, &w);
			if (rc)
				return rc;
			g_byte_array_set_size(w->data, 0);
			g_mutex_unlock(&h->lock);
		}
		return 0;
	}
	if (is_typedir(parent) && !strcmp(name, "_new"))
		return -EEXIST;
	if (INO_KIND(parent) == K_ASSOC_ROOT && !strcmp(name, ASSOC_FILE)) {
		/* O_CREAT of associations.json (a stale dentry): open it. */
		struct wbuf *w;
		int rc = 0;

		if (trunc && (rc = wbuf_get(h, INO_MAKE(K_ASSOCFILE, t->idx, 0, INO_ID(parent)),
					    ctx->pid, &w)) == 0) {
			g_byte_array_set_size(w->data, 0);
			g_mutex_unlock(&h->lock);
		}
		return rc;
	}
	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (!d) {
		bool creating = is_newdir(parent) && name_creation(name);

		d = dnode_new(h, parent, name, creating ? D_NEWFILE : D_SCRATCH, t, S_IFREG | (mode & 07777));
		d->uid = ctx->uid;
		d->gid = ctx->gid;
	} else if (trunc && !d->committed && d->kind != D_LINK) {
		dnode_truncate(h, d, 0);
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

void hubfs_w_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hubfs *h = H(req);
	struct dnode *d;
	uint64_t id;
	int rc = 0;

	if (h->o.ro || ino_readonly(h, parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (d) {
		GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);

		if (parent == INO_REJECTED)
			rejected_forget(h, d, gone);
		dnode_unlink(h, d);
		g_mutex_unlock(&h->lock);
		for (guint i = 0; i < gone->len; i++)
			unlink(gone->pdata[i]);
		g_ptr_array_unref(gone);
		fuse_reply_err(req, 0);
		return;
	}
	g_mutex_unlock(&h->lock);

	if (is_typedir(parent) && name_record(name, &id)) {
		const struct objtype *t = ino_type(h, parent);
		struct rec_attr a;

		if (t->flags & OTF_NO_DELETE) {
			g_autofree char *file = g_strdup_printf("%s/%s", t->name, name);
			g_autofree char *why = g_strdup_printf("HubSpot has no delete for %s", t->name);

			hubfs_error_say(h, "delete", file, why);
			rc = -EPERM;
		} else if (!h->o.allow_delete) {
			rc = -EPERM;
		} else if ((rc = cache_record_stat(h->cache, t, id, deadline_of(h), &a)) == 0 &&
			   (rc = writeback_archive(h->wb, t, id)) == 0) {
			cache_listing_note(h->cache, t, id, false);
		}
	} else if (INO_KIND(parent) == K_ASSOC_DIR && name_record(name, &id)) {
		struct fuse_entry_param e;

		rc = do_lookup(h, parent, name, &e); /* is it there? */
		if (rc == 0)
			rc = writeback_assoc(h->wb, false, ino_type(h, parent), INO_ID(parent),
					     ino_type2(h, parent), id);
		if (rc == 0)
			cache_assoc_note(h->cache, ino_type(h, parent), INO_ID(parent),
					 ino_type2(h, parent), id, false);
	} else {
		struct fuse_entry_param e;

		rc = do_lookup(h, parent, name, &e);
		if (rc == 0)
			rc = -EPERM;
	}
	fuse_reply_err(req, -rc);
}

/* path with "." and ".." steps and repeated slashes resolved, as text (no
 * symlink is followed). Absolute in, absolute out. g_free. */
static char *lexical_path(const char *path)
{
	gchar **parts = g_strsplit(path, "/", -1);
	GPtrArray *out = g_ptr_array_new();
	GString *g = g_string_new(NULL);

	for (gchar **p = parts; *p; p++) {
		if (!**p || !strcmp(*p, "."))
			continue;
		if (!strcmp(*p, "..")) {
			if (out->len)
				g_ptr_array_remove_index(out, out->len - 1);
			continue;
		}
		g_ptr_array_add(out, *p);
	}
	for (guint i = 0; i < out->len; i++)
		g_string_append_printf(g, "/%s", (char *)out->pdata[i]);
	if (!g->len)
		g_string_append_c(g, '/');
	g_ptr_array_free(out, TRUE);
	g_strfreev(parts);
	return g_string_free(g, FALSE);
}

/* Does link, written in association directory parent as name, point at the
 * record its name names, in the directory's type, in this mount? Exactly
 * ../../../<type>/<id>.json, or a path that resolves to the same file here
 * (./ and ../ steps, or the absolute path through this mountpoint). */
static bool assoc_link_ok(struct hubfs *h, const char *link, fuse_ino_t parent, const char *name)
{
	const char *to = ino_type2(h, parent)->name;
	g_autofree char *canon = g_strdup_printf("../../../%s/%s", to, name);
	g_autofree char *want = NULL, *from = NULL, *got = NULL;

	if (!strcmp(link, canon))
		return true;
	if (!h->mountpoint || !*link)
		return false;
	want = g_strdup_printf("%s/%s/%s", h->mountpoint, to, name);
	from = g_strdup_printf("%s/%s/%" PRIu64 "/%s/", h->mountpoint, ino_type(h, parent)->name,
			       INO_ID(parent), to);
	if (link[0] != '/') {
		g_autofree char *joined = g_strconcat(from, link, NULL);

		got = lexical_path(joined);
	} else {
		got = lexical_path(link);
	}
	return !strcmp(got, want);
}

void hubfs_w_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct hubfs *h = H(req);
	struct rec_attr a;
	uint64_t id;
	int rc;

	if (h->o.ro || ino_readonly(h, parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (INO_KIND(parent) != K_ASSOC_DIR || !name_record(name, &id)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* ln -s ../../../companies/201.json contacts/101/companies/: the link must
	 * name the record its own name names, in the directory's type. */
	if (!assoc_link_ok(h, link, parent, name)) {
		g_autofree char *file = g_strdup_printf("%s/%" PRIu64 "/%s/%s",
							ino_type(h, parent)->name, INO_ID(parent),
							ino_type2(h, parent)->name, name);
		g_autofree char *why = g_strdup_printf("an association link must be ../../../%s/%s (or "
						       "a path to that file in this mount), not %s",
						       ino_type2(h, parent)->name, name, link);

		hubfs_error_say(h, "link", file, why);
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = cache_record_stat(h->cache, ino_type2(h, parent), id, deadline_of(h), &a);
	if (rc == 0)
		rc = writeback_assoc(h->wb, true, ino_type(h, parent), INO_ID(parent),
				     ino_type2(h, parent), id);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	cache_assoc_note(h->cache, ino_type(h, parent), INO_ID(parent), ino_type2(h, parent), id, true);
	reply_entry_of(req, parent, name, NULL);
}

/* --- rename ---------------------------------------------------------------- */

/* Copy a record into a scratch file named newname (replacing a scratch file). */
static int record_to_scratch(struct hubfs *h, fuse_ino_t rec, fuse_ino_t newparent,
			     const char *newname, bool noreplace)
{
	const struct objtype *t = scratch_dir_type(h, newparent);
	char *text = NULL;
	size_t len = 0;
	struct dnode *d;
	int rc;

	rc = cache_record_text(h->cache, ino_type(h, rec), INO_ID(rec), deadline_of(h), &text, &len);
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
		rc = dnode_truncate(h, d, 0);
		if (rc == 0)
			rc = dnode_write(h, d, text, len, 0);
	}
	g_mutex_unlock(&h->lock);
	g_free(text);
	return rc;
}

/* The node named parent/name, if it is still the one numbered ino. Lock held. */
static struct dnode *dnode_again(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	struct dnode *d = dnode_at(h, parent, name);

	return d && d->ino == ino ? d : NULL;
}

/* A dnode may only be renamed while it is an uncommitted scratch or _new/
 * file. Lock held. */
static bool movable(const struct dnode *d)
{
	return d->kind != D_LINK && d->kind != D_REJECTED && !d->committed;
}

/* May dst (or nothing) be replaced by a rename? 0, or -EEXIST / -EPERM. Lock held. */
static int replaceable(const struct dnode *dst, bool noreplace)
{
	if (!dst)
		return 0;
	if (noreplace)
		return -EEXIST;
	return dst->kind == D_LINK || dst->committed ? -EPERM : 0;
}

/* <id>.json -> a scratch name: copy the record there; the record stays. */
static int rename_record(struct hubfs *h, fuse_ino_t parent, const char *name, uint64_t id,
			 fuse_ino_t newparent, const char *newname, bool noreplace)
{
	struct rec_attr a;
	int rc;

	rc = cache_record_stat(h->cache, ino_type(h, parent), id, deadline_of(h), &a);
	if (rc == 0)
		rc = record_to_scratch(h, INO_MAKE(K_RECORD, INO_TYPE(parent), 0, id), newparent,
				       newname, noreplace);
	if (rc == 0) {
		hubfs_inval_entry(h, parent, name);
		hubfs_inval_entry(h, newparent, newname);
	}
	return rc;
}

/* A scratch file's bytes (a reference), if parent/name still is node ino and
 * movable; else NULL. */
static GByteArray *scratch_data(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	GByteArray *data = NULL;
	struct dnode *d;

	g_mutex_lock(&h->lock);
	d = dnode_again(h, parent, name, ino);
	if (d && movable(d))
		data = g_byte_array_ref(d->data);
	g_mutex_unlock(&h->lock);
	return data;
}

/* scratch -> <id>.json: commit the scratch file's content as an edit of the
 * record, then remove the scratch file. */
static int rename_to_record(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino,
			    fuse_ino_t newparent, const char *newname, uint64_t did, bool noreplace)
{
	const struct objtype *t = scratch_dir_type(h, newparent);
	g_autofree char *base = NULL;
	GByteArray *data;
	struct rec_attr a;
	size_t base_len = 0;
	struct dnode *d;
	int rc;

	rc = cache_record_stat(h->cache, t, did, deadline_of(h), &a);
	if (rc)
		return rc == -ENOENT ? -EPERM : rc; /* inventing an id is not allowed */
	if (noreplace)
		return -EEXIST;
	rc = cache_record_text(h->cache, t, did, deadline_of(h), &base, &base_len);
	if (rc)
		return rc;
	data = scratch_data(h, parent, name, ino);
	if (!data)
		return -ENOENT;
	rc = commit_record(h, INO_MAKE(K_RECORD, t->idx, 0, did), (const char *)data->data, data->len,
			   base, base_len, false);
	g_byte_array_unref(data);
	if (rc)
		return rc;
	g_mutex_lock(&h->lock);
	d = dnode_again(h, parent, name, ino);
	if (d)
		dnode_unlink(h, d);
	g_mutex_unlock(&h->lock);
	/* The kernel now maps newname to the scratch inode: make it look again. */
	hubfs_inval_entry(h, newparent, newname);
	return 0;
}

/* Give node d the name newparent/newname, replacing dst (may be NULL, never
 * d). Lock held. */
static void dnode_move(struct hubfs *h, struct dnode *d, struct dnode *dst, fuse_ino_t newparent,
		       const char *newname)
{
	g_autofree char *k = dnode_key(d->parent, d->name);

	if (dst)
		dnode_unlink(h, dst);
	g_hash_table_remove(h->dirents, k); /* frees the table's key, not the node */
	g_free(d->name);
	d->name = g_strdup(newname);
	d->parent = newparent;
	dnode_now_ts(&d->ctime);
	g_hash_table_insert(h->dirents, dnode_key(newparent, newname), d);
}

/* scratch -> _new/<name>.json: a create of the scratch file's content; the
 * node becomes the committed _new/ file, a link once the create lands. */
static int rename_to_create(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino,
			    fuse_ino_t newparent, const char *newname, bool noreplace)
{
	const struct objtype *t = scratch_dir_type(h, newparent);
	struct dnode *d, *dst;
	GByteArray *data;
	char *key = NULL;
	int rc;

	g_mutex_lock(&h->lock);
	dst = dnode_at(h, newparent, newname);
	rc = dst && dst->ino != ino ? replaceable(dst, noreplace) : 0;
	g_mutex_unlock(&h->lock);
	if (rc)
		return rc;
	data = scratch_data(h, parent, name, ino);
	if (!data)
		return -ENOENT;
	rc = commit_create(h, t, newname, (const char *)data->data, data->len, &key);
	g_byte_array_unref(data);
	if (rc)
		return rc;
	g_mutex_lock(&h->lock);
	d = dnode_again(h, parent, name, ino);
	if (d) {
		dst = dnode_at(h, newparent, newname);
		dnode_move(h, d, dst != d ? dst : NULL, newparent, newname);
		d->kind = D_NEWFILE;
		dnode_committed(h, d, key);
		key = NULL;
	}
	g_mutex_unlock(&h->lock);
	g_free(key);
	return 0;
}

/* scratch -> a scratch name (possibly replacing another scratch file). */
static int rename_scratch(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino,
			  fuse_ino_t newparent, const char *newname, bool noreplace)
{
	bool creating = is_newdir(newparent) && name_creation(newname);
	struct dnode *d, *dst;
	int rc = 0;
	uint64_t did;

	g_mutex_lock(&h->lock);
	d = dnode_again(h, parent, name, ino);
	dst = dnode_at(h, newparent, newname);
	if (!d)
		rc = -ENOENT;
	else if (!movable(d))
		rc = -EPERM;
	else if (dst != d && (rc = replaceable(dst, noreplace)) == 0) {
		dnode_move(h, d, dst, newparent, newname);
		if (d->kind == D_NEWFILE && !creating)
			d->kind = D_SCRATCH;
		else if (d->kind == D_SCRATCH && creating)
			d->kind = D_NEWFILE;
	}
	g_mutex_unlock(&h->lock);
	if (rc == 0 && is_typedir(newparent) && name_record(newname, &did))
		hubfs_inval_entry(h, newparent, newname);
	return rc;
}

/* The rules of rename, which are how editors save (fs/names.h decides which
 * one applies). Nodes are looked up again by name and number under the lock
 * at each step, never kept across an unlock: the batcher's create hook may
 * unlink and free a _new/ node at any time. */
static int do_rename(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	struct rename_req r = { .parent = parent, .newparent = newparent, .name = name,
				.newname = newname, .flags = flags,
				.ro = h->o.ro || ino_readonly(h, parent) || ino_readonly(h, newparent) };
	bool noreplace = flags & RENAME_NOREPLACE;
	enum rename_action action;
	fuse_ino_t ino = 0;
	struct dnode *src;
	uint64_t id;
	int rc;

	g_mutex_lock(&h->lock);
	src = dnode_at(h, parent, name);
	if (src) {
		ino = src->ino;
		r.src_node = true;
		r.src_movable = movable(src);
	}
	g_mutex_unlock(&h->lock);
	rc = assoc_rename(h, parent, name, ino, newparent, newname, flags);
	if (rc != -ENOSYS)
		return rc;
	if (INO_KIND(parent) == K_ASSOC_ROOT)
		return rename_scratch(h, parent, name, ino, newparent, newname, noreplace);
	rc = rename_decide(&r, &action, &id);
	if (rc)
		return rc;
	switch (action) {
	case RENAME_COPY:
		return rename_record(h, parent, name, id, newparent, newname, noreplace);
	case RENAME_EDIT:
		return rename_to_record(h, parent, name, ino, newparent, newname, id, noreplace);
	case RENAME_CREATE:
		return rename_to_create(h, parent, name, ino, newparent, newname, noreplace);
	default:
		return rename_scratch(h, parent, name, ino, newparent, newname, noreplace);
	}
}

void hubfs_w_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		    const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -do_rename(H(req), parent, name, newparent, newname, flags));
}
