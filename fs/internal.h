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
	int type;            /* object type of the directory it lives in */
	mode_t mode;         /* with S_IFREG or S_IFLNK */
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	GByteArray *data;
	char *link;          /* D_LINK target */
	GHashTable *xattrs;  /* name -> GBytes */
	uint64_t nlookup;
	bool committed;      /* D_NEWFILE: its create is queued; read-only now */
	GArray *writers;     /* pids that wrote since the last commit (pid_t) */
};

/* A record being written (no-open: one buffer per inode, committed at flush). */
struct wbuf {
	GByteArray *data;
	char *base;          /* the record file the writer started from */
	size_t base_len;
	GArray *writers;     /* pid_t */
	int empty_flushes;   /* closes that saw it empty (a dup'd fd closing early) */
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
int do_getattr(struct hubfs *h, fuse_ino_t ino, struct stat *st, double *timeout);
int do_lookup(struct hubfs *h, fuse_ino_t parent, const char *name, struct fuse_entry_param *e);
bool is_typedir(fuse_ino_t ino);
bool is_newdir(fuse_ino_t ino);

/* write.c, all with h->lock NOT held */
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

/* search.c */
int search_lookup(struct hubfs *h, int type, const char *name, fuse_ino_t *ino);
int search_results(struct hubfs *h, fuse_ino_t ino, uint64_t **ids, size_t *n);
int search_type_of(struct hubfs *h, fuse_ino_t ino);

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
