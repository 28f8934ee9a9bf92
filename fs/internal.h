/* internal.h - what the FUSE handler files of fs/ share. Not a public API. */
#ifndef HUBFS_FS_INTERNAL_H
#define HUBFS_FS_INTERNAL_H

#include <sys/stat.h>

#include "fs/hubfs.h"
#include "fs/inode.h"

/* An allocated node: scratch file, _new/ file (pending create) or link, rejected file. */
enum dkind { D_SCRATCH, D_NEWFILE, D_LINK, D_REJECTED };

struct dnode {
	fuse_ino_t ino;
	fuse_ino_t parent;
	char *name;          /* NULL once unlinked (kept until the kernel forgets it) */
	enum dkind kind;
	const struct objtype *type; /* of the directory it lives in; NULL in rejected/ */
	mode_t mode;         /* with S_IFREG or S_IFLNK */
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	GByteArray *data;
	char *link;          /* D_LINK target */
	GHashTable *xattrs;  /* name -> GBytes */
	uint64_t nlookup;
	char *disk;          /* D_REJECTED kept on disk: its file (rejected.c), else NULL */
	size_t disk_size;    /* the size of that file */
	bool committed;      /* D_NEWFILE: its create is queued; read-only now */
	GArray *writers;     /* pids that wrote since the last commit (pid_t) */
};

/* A record being written (no-open: one buffer per inode, committed at flush). */
struct wbuf {
	GByteArray *data;
	char *base;          /* the record file the writer started from */
	size_t base_len;
	GArray *writers;     /* pid_t */
	int64_t touched_ms;  /* hs_now_ms() of the last write or truncate */
	int64_t checked_ms;  /* hs_now_ms() of the last orphan check (write.c) */
	bool too_big;        /* a write went past RECORD_WRITE_MAX */
};

struct dent {
	char name[256];
	fuse_ino_t ino;
};

static inline struct hubfs *H(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

int64_t deadline_of(struct hubfs *h);
/* audit.c: this thread is serving a request of the read-only audit view. */
bool audit_serving(void);
int do_getattr(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout);
int do_lookup(struct hubfs *h, fuse_ino_t parent, const char *name, struct fuse_entry_param *e);

static inline bool is_typedir(fuse_ino_t ino)
{
	return INO_KIND(ino) == K_TYPEDIR;
}

static inline bool is_newdir(fuse_ino_t ino)
{
	return INO_KIND(ino) == K_NEWDIR;
}

/* A file written through a per-inode buffer (write.c): a record file, or a
 * record's associations.json. */
static inline bool is_wfile(fuse_ino_t ino)
{
	return INO_KIND(ino) == K_RECORD || INO_KIND(ino) == K_ASSOCFILE;
}

/* Is ino a record of a read-only type (OTF_READONLY: HubSpot takes no
 * create, update or delete of it), or a directory of its records? Such files
 * are 0444 and every write, create, unlink or rename in them is EROFS. */
static inline bool ino_readonly(struct hubfs *h, fuse_ino_t ino)
{
	const struct objtype *t;

	switch (INO_KIND(ino)) {
	case K_RECORD:
	case K_TYPEDIR:
	case K_NEWDIR:
	case K_ASSOC_ROOT:
	case K_ASSOC_DIR:
		t = objtypes_at(h->types, INO_TYPE(ino));
		return t && (t->flags & OTF_READONLY);
	default:
		return false;
	}
}

/* tree.c: the fixed nodes, once per mount (a table) or once per type (the
 * registry's), with h->lock not held (the registry is immutable). */
/* The type an inode number carries (INO_TYPE, INO_TYPE2), or NULL if the
 * registry has no such idx. */
const struct objtype *ino_type(struct hubfs *h, fuse_ino_t ino);
const struct objtype *ino_type2(struct hubfs *h, fuse_ino_t ino);
/* Is ino a fixed node of this mount (kind K_STATIC or a per-type kind)? */
bool tree_node_valid(struct hubfs *h, fuse_ino_t ino);
/* Is a valid fixed node a directory? */
bool tree_node_is_dir(fuse_ino_t ino);
/* How many fixed nodes directory dir holds; the k-th (0-based: per-type
 * nodes in registry order, then the table's) into name and *child: 0, or 1
 * past the end. */
size_t tree_count(struct hubfs *h, fuse_ino_t dir);
int tree_entry(struct hubfs *h, fuse_ino_t dir, size_t k, char *name, size_t size,
	       fuse_ino_t *child);
/* The fixed node dir/name, or 0. */
fuse_ino_t tree_lookup(struct hubfs *h, fuse_ino_t dir, const char *name);
/* The directory holding fixed node ino (the root holds itself). */
fuse_ino_t tree_parent(fuse_ino_t ino);

/* The write path (dnode.c, write.c, commit.c, dirops.c, ctl.c), for ops.c:
 * all with h->lock NOT held */
fuse_ino_t dyn_lookup(struct hubfs *h, fuse_ino_t parent, const char *name);
bool dyn_stat(struct hubfs *h, fuse_ino_t ino, struct stat *st);
GArray *dyn_list(struct hubfs *h, fuse_ino_t parent); /* of struct dent */
int dyn_read(struct hubfs *h, fuse_ino_t ino, off_t off, size_t size, char **buf, size_t *n);
void dyn_ref(struct hubfs *h, fuse_ino_t ino);
char *dyn_readlink(struct hubfs *h, fuse_ino_t ino); /* g_free; NULL if not a link */
bool wbuf_size(struct hubfs *h, fuse_ino_t ino, size_t *size);
int wbuf_read(struct hubfs *h, fuse_ino_t ino, off_t off, size_t size, char *buf, size_t *n);
int ctl_text(struct hubfs *h, fuse_ino_t ino, bool fresh, char **text, size_t *len);
const char *record_state(struct hubfs *h, fuse_ino_t ino);
char *record_error(struct hubfs *h, fuse_ino_t ino);

/* What the write-path files share among themselves. */

/* dnode.c: the node table. "Lock held" means h->lock. */
char *dnode_key(fuse_ino_t parent, const char *name); /* "parent/name", g_free */
void dnode_free(struct dnode *d);
void dnode_now_ts(struct timespec *ts); /* wall clock, for node times */
/* A new node named parent/name, in both tables. Lock held. Never NULL. */
struct dnode *dnode_new(struct hubfs *h, fuse_ino_t parent, const char *name,
			enum dkind kind, const struct objtype *type, mode_t mode);
/* Remove a node's name; free it once the kernel holds no reference. Lock held. */
void dnode_unlink(struct hubfs *h, struct dnode *d);
struct dnode *dnode_at(struct hubfs *h, fuse_ino_t parent, const char *name); /* lock held; or NULL */
struct dnode *dnode_of(struct hubfs *h, fuse_ino_t ino); /* lock held; NULL if not a dnode */
/* Resize a byte array, zero-filling what it grows by. */
void dnode_bytes_resize(GByteArray *a, size_t n);
/* Write into / truncate a node's data, counted against SCRATCH_MAX; lock held.
 * 0, or -ENOSPC with nothing changed. */
int dnode_write(struct hubfs *h, struct dnode *d, const char *buf, size_t size, off_t off);
int dnode_truncate(struct hubfs *h, struct dnode *d, size_t size);

/* write.c: the buffer of a record, created from the current record file if
 * needed, with pid noted as a writer. Returns 0 with h->lock HELD (*out valid
 * until unlocked), or -errno unlocked. */
int wbuf_get(struct hubfs *h, fuse_ino_t ino, pid_t pid, struct wbuf **out);

/* commit.c, with h->lock NOT held */
char *commit_label(struct hubfs *h, fuse_ino_t ino); /* "<type>/<id>.json", g_free */
/* Commit data as an edit of record ino, diffed against base. quiet: on invalid
 * input return -EINVAL without logging (fsync probes). 0 or -errno; a rejected
 * edit is logged and its bytes kept in .hubfs/rejected/. */
int commit_record(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len,
		  const char *base, size_t base_len, bool quiet);
/* Commit a _new/ file as a create: 0 with *key_out (g_free) naming it in the
 * journal, or -errno (a rejected create is logged and its bytes kept). */
int commit_create(struct hubfs *h, const struct objtype *type, const char *name, const char *data,
		  size_t len, char **key_out);

/* ops.c: the association directories of a record of type t (one per type it
 * can be associated with, but its own): fills idx (OBJTYPES_MAX), returns how many. */
size_t assoc_dirs(struct hubfs *h, const struct objtype *t, unsigned *idx);

/* assoc.c: association labels (associations.json, schema/labels/, link xattrs). */
#define ASSOC_FILE "associations.json"
/* The current text of a buffered file (is_wfile): g_free. */
int wfile_text(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len);
/* Commit a buffered file's bytes (commit_record, or assoc_commit). */
int wfile_commit(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len, const char *base,
		 size_t base_len, bool quiet);
/* <type>/<id>/associations.json of ino (K_ASSOCFILE): g_free. */
int assoc_file_text(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len);
/* Commit a saved associations.json against base (what the writer started
 * from): validated, then queued as v4 association and label writes. -EINVAL
 * (logged, bytes kept in rejected/, unless quiet) for a bad file or label. */
int assoc_commit(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len, const char *base,
		 size_t base_len, bool quiet);
/* schema/labels/: its entries, lookup, and the text of a file (K_LABELS). */
size_t assoc_labels_count(struct hubfs *h);
int assoc_labels_entry(struct hubfs *h, size_t k, char *name, size_t size, fuse_ino_t *child);
fuse_ino_t assoc_labels_lookup(struct hubfs *h, const char *name);
int assoc_labels_text(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len);
/* xattrs of an association directory (K_ASSOC_DIR): user.hubspot.labels.<id>. */
int assoc_dir_getxattr(struct hubfs *h, fuse_ino_t ino, const char *name, char **val, size_t *len);
void assoc_dir_listxattr(struct hubfs *h, fuse_ino_t ino, GString *out);
/* A rename into or within a record's directory (<type>/<id>/): a scratch
 * file onto associations.json commits it. 0 or -errno; -ENOSYS: not ours,
 * dirops.c's rules apply. */
int assoc_rename(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino,
		 fuse_ino_t newparent, const char *newname, unsigned flags);

/* rejected.c: .hubfs/rejected/ kept in $state_dir/rejected/ (bounded). */
/* Keep bytes as rejected/<name> (made unique; '/' becomes '-'), dropping the
 * oldest over the bounds. Lock not held. */
void rejected_keep(struct hubfs *h, const char *name, const char *data, size_t len);
/* Show the files an earlier mount kept (at start, before any request). */
void rejected_load(struct hubfs *h);
void rejected_destroy(struct hubfs *h);
/* Read a kept file's bytes (lock not held): 0, -ENOENT or -EIO; *buf g_free. */
int rejected_read(const char *path, off_t off, size_t size, char **buf, size_t *n);
/* Lock held. Node d of rejected/ is being removed: stop counting it; its
 * file's path is added to gone, to be unlinked once unlocked. */
void rejected_forget(struct hubfs *h, struct dnode *d, GPtrArray *gone);

/* ctl.c: a _new/ file's create was queued under key (taken): the file is
 * read-only from now on and becomes a link to the record once the create
 * lands, or now if it landed already (the batcher may beat the caller back to
 * the lock). Lock held. */
void dnode_committed(struct hubfs *h, struct dnode *d, char *key);
/* ctl.c: run a command written to .hubfs/ctl. 0 or -errno (-EINVAL logged). */
int ctl_command(struct hubfs *h, const char *buf, size_t size);

/* search.c */
int search_lookup(struct hubfs *h, const struct objtype *type, const char *name, fuse_ino_t *ino);
int search_results(struct hubfs *h, fuse_ino_t ino, uint64_t **ids, size_t *n);
/* The type of query directory ino, or NULL if there is no such directory. */
const struct objtype *search_type_of(struct hubfs *h, fuse_ino_t ino);
void search_ref(struct hubfs *h, fuse_ino_t ino); /* the kernel took a reference */
void search_forget_locked(struct hubfs *h, fuse_ino_t ino, uint64_t n); /* h->lock held */

void hubfs_w_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		     struct fuse_file_info *fi);
void hubfs_w_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi);
void hubfs_w_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void hubfs_w_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void hubfs_w_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi);
void hubfs_w_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void hubfs_w_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void hubfs_w_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void hubfs_w_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		    const char *newname, unsigned int flags);
void hubfs_w_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void hubfs_w_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void hubfs_w_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		      size_t size, int flags);
int dyn_getxattr(struct hubfs *h, fuse_ino_t ino, const char *name, char **val, size_t *len);
int dyn_listxattr(struct hubfs *h, fuse_ino_t ino, GString *out);
void hubfs_w_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
