/* names.h - the naming rules of the namespace hubfs serves, as pure functions
 * of inode numbers (fs/inode.h) and names: which names are record files and
 * which are creations, and what a rename means. No FUSE, no state: the rules
 * are tested on their own (tests/unit/test_fs.c), and dirops.c carries them
 * out.
 */
#ifndef HUBFS_NAMES_H
#define HUBFS_NAMES_H

#include <stdbool.h>
#include <stdint.h>

/* "<id>.json" with id a record id (record_parse_id): sets *id. */
bool name_record(const char *name, uint64_t *id);
/* A name that, in <type>/_new/, creates a record: "<something>.json", not a
 * dot file (an editor's swap and backup files stay scratch files). */
bool name_creation(const char *name);

/* Does directory ino hold scratch files: a type directory or its _new/? */
bool ino_scratch_dir(uint64_t ino);

/* What a rename is, by the rules editors save by: */
enum rename_action {
	RENAME_COPY,   /* <type>/<id>.json -> a scratch name: the record is copied
			* there and stays (vim's backup rename) */
	RENAME_EDIT,   /* a scratch file -> <type>/<id>.json: its bytes are an edit
			* of the record, and the scratch file goes */
	RENAME_CREATE, /* a scratch file -> <type>/_new/<name>.json: a create */
	RENAME_MOVE,   /* a scratch file -> another scratch name */
};

struct rename_req {
	uint64_t parent, newparent;
	const char *name, *newname;
	unsigned flags;       /* rename(2) flags; only RENAME_NOREPLACE is taken */
	bool ro;              /* a read-only mount */
	bool src_node;        /* parent/name is one of our nodes (scratch, _new/, link …) */
	bool src_movable;     /* ... that may be renamed (an uncommitted scratch or _new/ file) */
};

/* The rename r asks for: 0 and *action (and, for RENAME_COPY the source's,
 * for RENAME_EDIT the target's record id in *id), or -errno: EINVAL (flags
 * other than RENAME_NOREPLACE), EROFS, ENAMETOOLONG, ENOENT (no such record
 * name where records live), EPERM (_new/ itself, a record onto a record or
 * into creation, a node that may not move, into a directory without scratch
 * files), EXDEV (between the directories of two types). Whether the records
 * and nodes named exist beyond that is for the caller. */
int rename_decide(const struct rename_req *r, enum rename_action *action, uint64_t *id);

#endif
