/* inode.h - inode numbers hubfs hands to the kernel.
 *
 * Numbers are computed, not allocated, so the kernel's forget needs no state:
 *   bits 63..56  kind
 *   bits 55..52  object type (records, association dirs, links)
 *   bits 51..48  target object type (association dirs)
 *   bits 47..0   record id (< 2^48, see record_parse_id)
 * Static nodes (root, type directories, schema/, .hubfs/ …) have kind 0 and a
 * small fixed number. A symlink's target depends only on its target record
 * (every link lives three levels below the root), so all links to one record
 * share one inode.
 */
#ifndef HUBFS_INODE_H
#define HUBFS_INODE_H

#include <stdint.h>

enum ino_kind {
	K_STATIC = 0,
	K_RECORD = 1,     /* <type>/<id>.json */
	K_ASSOC_ROOT = 2, /* <type>/<id>/ */
	K_ASSOC_DIR = 3,  /* <type>/<id>/<totype>/ */
	K_LINK = 4,       /* …/<totype>/<toid>.json -> ../../../<totype>/<toid>.json */
	K_OWNER = 5,      /* owners/<id>.json */
	K_DYN = 6,        /* scratch files, _new/ files and links, rejected/ files: allocated */
	K_QUERY = 7,      /* search/<type>/<query>/: allocated */
};

#define INO_MAKE(kind, t, t2, id) \
	(((uint64_t)(kind) << 56) | ((uint64_t)(t) << 52) | ((uint64_t)(t2) << 48) | (uint64_t)(id))
#define INO_KIND(ino) ((int)((ino) >> 56))
#define INO_TYPE(ino) ((int)(((ino) >> 52) & 0xf))
#define INO_TYPE2(ino) ((int)(((ino) >> 48) & 0xf))
#define INO_ID(ino) ((ino) & ((UINT64_C(1) << 48) - 1))

/* Static inodes. */
enum {
	INO_ROOT = 1,
	INO_TYPEDIR = 2,      /* + type: 2..5 */
	INO_SCHEMA_DIR = 10,
	INO_SCHEMA_FILE = 11, /* + type: 11..14 */
	INO_PIPE_DIR = 20,
	INO_PIPE_DEALS = 21,
	INO_PIPE_TICKETS = 22,
	INO_OWNERS_DIR = 30,
	INO_CTL_DIR = 40,     /* .hubfs/ */
	INO_STATUS = 41,
	INO_README = 42,
	INO_ERRORS = 43,      /* .hubfs/errors.log */
	INO_QUEUE = 44,       /* .hubfs/queue */
	INO_CREATED = 45,     /* .hubfs/created */
	INO_CTL = 46,         /* .hubfs/ctl */
	INO_REJECTED = 47,    /* .hubfs/rejected/ */
	INO_SEARCH_DIR = 50,  /* search/ */
	INO_SEARCH_TYPE = 51, /* + type: search/<type>/ */
	INO_NEW_DIR = 60,     /* + type: <type>/_new/ */
};

#endif
