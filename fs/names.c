/* names.c - the naming rules of the namespace (names.h). */
#include "fs/names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/record.h"
#include "fs/inode.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static bool json_name(const char *name, size_t *n)
{
	*n = strlen(name);
	return *n > 5 && strcmp(name + *n - 5, ".json") == 0;
}

bool name_record(const char *name, uint64_t *id)
{
	size_t n;

	return json_name(name, &n) && record_parse_id(name, n - 5, id) == 0;
}

bool name_creation(const char *name)
{
	size_t n;

	return json_name(name, &n) && name[0] != '.';
}

bool ino_scratch_dir(uint64_t ino)
{
	return INO_KIND(ino) == K_TYPEDIR || INO_KIND(ino) == K_NEWDIR;
}

static bool is_typedir(uint64_t ino)
{
	return INO_KIND(ino) == K_TYPEDIR;
}

static bool is_newdir(uint64_t ino)
{
	return INO_KIND(ino) == K_NEWDIR;
}

/* Do two scratch directories belong to one type? */
static bool same_type(uint64_t a, uint64_t b)
{
	return ino_scratch_dir(a) && ino_scratch_dir(b) && INO_TYPE(a) == INO_TYPE(b);
}

/* A record, not one of our nodes: it may only be copied to a scratch name of
 * its own type. */
static int decide_record(const struct rename_req *r, enum rename_action *action, uint64_t *id)
{
	uint64_t did;

	if (!is_typedir(r->parent) || !name_record(r->name, id))
		return INO_KIND(r->parent) == K_ASSOC_DIR || ino_scratch_dir(r->parent) ? -ENOENT
											: -EPERM;
	if (!same_type(r->parent, r->newparent) ||
	    (is_typedir(r->newparent) && name_record(r->newname, &did)) ||
	    (is_newdir(r->newparent) && name_creation(r->newname)) ||
	    (is_typedir(r->newparent) && !strcmp(r->newname, "_new")))
		return -EPERM; /* record -> record, across types, or into creation */
	*action = RENAME_COPY;
	return 0;
}

int rename_decide(const struct rename_req *r, enum rename_action *action, uint64_t *id)
{
	*id = 0;
	/* Only RENAME_NOREPLACE has a meaning here: EXCHANGE, WHITEOUT and
	 * flags unknown to us are refused, never taken as a plain rename. */
	if (r->flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (is_typedir(r->parent) && !strcmp(r->name, "_new"))
		return -EPERM;
	if (r->ro)
		return -EROFS;
	if (strlen(r->newname) > 255)
		return -ENAMETOOLONG;
	if (!r->src_node) /* only a record can be renamed besides our own nodes */
		return decide_record(r, action, id);
	if (!r->src_movable)
		return -EPERM;
	if (!ino_scratch_dir(r->newparent))
		return -EPERM;
	if (!same_type(r->parent, r->newparent))
		return -EXDEV;
	if (is_typedir(r->newparent) && name_record(r->newname, id)) {
		*action = RENAME_EDIT;
		return 0;
	}
	if (is_typedir(r->newparent) && !strcmp(r->newname, "_new"))
		return -EPERM;
	*action = is_newdir(r->newparent) && name_creation(r->newname) ? RENAME_CREATE : RENAME_MOVE;
	return 0;
}
