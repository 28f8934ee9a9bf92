/* inode.h - inode numbers hubfs hands to the kernel.
 *
 * Numbers are computed, not allocated, so the kernel's forget needs no state:
 *   bits 63..60  kind
 *   bits 59..54  object type: its idx in the mount's registry (records, type
 *                directories and the other per-type nodes, association dirs,
 *                links)
 *   bits 53..48  target object type (association dirs, schema/labels/ files)
 *   bits 47..0   record id (< 2^48, see record_parse_id); 0 for a per-type node
 * Six bits of type: a mount shows at most 64 types (OBJTYPES_MAX; the
 * registry refuses more). Nodes that exist once per type (its directory,
 * _new/, schema/<type>.json, pipelines/<type>.json, search/<type>/) are kinds
 * of their own with id 0, so a directory of them is a walk of the registry.
 * The other fixed nodes (root, schema/, .hubfs/ …) have kind 0 and a small
 * fixed number. A symlink's target depends only on its target record (every
 * link lives three levels below the root), so all links to one record share
 * one inode.
 */
#ifndef HUBFS_INODE_H
#define HUBFS_INODE_H

#include <stdbool.h>
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
	K_TYPEDIR = 8,    /* <type>/ */
	K_NEWDIR = 9,     /* <type>/_new/ */
	K_SCHEMA = 10,    /* schema/<type>.json */
	K_PIPES = 11,     /* pipelines/<type>.json */
	K_SEARCHTYPE = 12,/* search/<type>/ */
	K_ASSOCFILE = 13, /* <type>/<id>/associations.json */
	K_LABELS = 14,    /* schema/labels/<type>_to_<totype>.json */
	K_KINDS
};

#define INO_TYPE_BITS 6
#define INO_TYPES_MAX (1u << INO_TYPE_BITS)
#define INO_ID_MASK ((UINT64_C(1) << 48) - 1)

#define INO_MAKE(kind, t, t2, id) \
	(((uint64_t)(kind) << 60) | ((uint64_t)(t) << 54) | ((uint64_t)(t2) << 48) | \
	 ((uint64_t)(id) & INO_ID_MASK))
#define INO_KIND(ino) ((int)((uint64_t)(ino) >> 60))
#define INO_TYPE(ino) ((unsigned)(((uint64_t)(ino) >> 54) & (INO_TYPES_MAX - 1)))
#define INO_TYPE2(ino) ((unsigned)(((uint64_t)(ino) >> 48) & (INO_TYPES_MAX - 1)))
#define INO_ID(ino) ((uint64_t)(ino) & INO_ID_MASK)

/* The per-type node of kind k (K_TYPEDIR … K_SEARCHTYPE) for type idx t. */
#define INO_OF_TYPE(k, t) INO_MAKE(k, t, 0, 0)

/* Static inodes (kind 0): the nodes that exist once per mount. */
enum {
	INO_ROOT = 1,         /* FUSE_ROOT_ID */
	INO_SCHEMA_DIR = 10,
	INO_LABELS_DIR = 11,  /* schema/labels/ */
	INO_PIPE_DIR = 20,
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
};

/* The files of .hubfs/ served as one-second snapshots (ctl.c): status.json,
 * errors.log, queue, created, ctl. Their snapshot slot is ino - INO_STATUS. */
#define INO_SNAPS (INO_CTL - INO_STATUS + 1)

static inline bool ino_is_snapshot(uint64_t ino)
{
	return ino >= INO_STATUS && ino <= INO_CTL && ino != INO_README;
}

#endif
