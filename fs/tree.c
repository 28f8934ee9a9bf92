/* tree.c - the fixed part of the namespace: the nodes that exist once per
 * mount (root, schema/, pipelines/, owners/, search/, .hubfs/ and its files),
 * a table; and the nodes that exist once per object type (its directory and
 * _new/, schema/<type>.json, pipelines/<type>.json, search/<type>/), which
 * are not in the table but walked from the registry (fs/inode.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/internal.h"

struct snode {
	fuse_ino_t ino, parent;
	const char *name;
	mode_t type;
};

static const struct snode stree[] = {
	{ INO_ROOT, INO_ROOT, "", S_IFDIR },
	{ INO_SCHEMA_DIR, INO_ROOT, "schema", S_IFDIR },
	{ INO_LABELS_DIR, INO_SCHEMA_DIR, "labels", S_IFDIR },
	{ INO_PIPE_DIR, INO_ROOT, "pipelines", S_IFDIR },
	{ INO_OWNERS_DIR, INO_ROOT, "owners", S_IFDIR },
	{ INO_SEARCH_DIR, INO_ROOT, "search", S_IFDIR },
	{ INO_CTL_DIR, INO_ROOT, ".hubfs", S_IFDIR },
	{ INO_STATUS, INO_CTL_DIR, "status.json", S_IFREG },
	{ INO_README, INO_CTL_DIR, "README.md", S_IFREG },
	{ INO_ERRORS, INO_CTL_DIR, "errors.log", S_IFREG },
	{ INO_QUEUE, INO_CTL_DIR, "queue", S_IFREG },
	{ INO_CREATED, INO_CTL_DIR, "created", S_IFREG },
	{ INO_CTL, INO_CTL_DIR, "ctl", S_IFREG },
	{ INO_REJECTED, INO_CTL_DIR, "rejected", S_IFDIR },
};
#define NSTATIC (sizeof(stree) / sizeof(stree[0]))

static const struct snode *snode_find(fuse_ino_t ino)
{
	for (size_t i = 0; i < NSTATIC; i++)
		if (stree[i].ino == ino)
			return &stree[i];
	return NULL;
}

const struct objtype *ino_type(struct hubfs *h, fuse_ino_t ino)
{
	return objtypes_at(h->types, INO_TYPE(ino));
}

const struct objtype *ino_type2(struct hubfs *h, fuse_ino_t ino)
{
	return objtypes_at(h->types, INO_TYPE2(ino));
}

/* --- per-type nodes -------------------------------------------------------- */

/* The kind of per-type node directory dir holds (one per type that has it),
 * or -1. A type directory holds its own type's _new/ only. */
static int type_child_kind(fuse_ino_t dir)
{
	switch (dir) {
	case INO_ROOT:
		return K_TYPEDIR;
	case INO_SCHEMA_DIR:
		return K_SCHEMA;
	case INO_PIPE_DIR:
		return K_PIPES;
	case INO_SEARCH_DIR:
		return K_SEARCHTYPE;
	}
	return INO_KIND(dir) == K_TYPEDIR ? K_NEWDIR : -1;
}

/* Does type t have a node of per-type kind k? */
static bool type_has(const struct objtype *t, int k)
{
	switch (k) {
	case K_PIPES:
		return t->pipeline_prop != NULL;
	case K_SEARCHTYPE:
		return !(t->flags & OTF_NO_SEARCH);
	case K_NEWDIR:
		return !(t->flags & OTF_READONLY);
	default:
		return true;
	}
}

static void type_child_name(const struct objtype *t, int k, char *buf, size_t size)
{
	if (k == K_SCHEMA || k == K_PIPES)
		snprintf(buf, size, "%s.json", t->name);
	else if (k == K_NEWDIR)
		snprintf(buf, size, "_new");
	else
		snprintf(buf, size, "%s", t->name);
}

/* The type a per-type node of kind k named name stands for, or NULL. */
static const struct objtype *type_child_lookup(struct hubfs *h, fuse_ino_t dir, int k,
					       const char *name)
{
	const struct objtype *t;
	size_t n = strlen(name);

	if (k == K_NEWDIR)
		t = strcmp(name, "_new") == 0 ? ino_type(h, dir) : NULL;
	else if (k == K_SCHEMA || k == K_PIPES)
		t = n > 5 && strcmp(name + n - 5, ".json") == 0 ?
		    objtypes_by_name(h->types, name, n - 5) : NULL;
	else
		t = objtypes_by_name(h->types, name, n);
	return t && type_has(t, k) ? t : NULL;
}

bool tree_node_valid(struct hubfs *h, fuse_ino_t ino)
{
	const struct objtype *t;

	switch (INO_KIND(ino)) {
	case K_STATIC:
		return snode_find(ino) != NULL;
	case K_TYPEDIR:
	case K_NEWDIR:
	case K_SCHEMA:
	case K_PIPES:
	case K_SEARCHTYPE:
		t = ino_type(h, ino);
		return t && INO_TYPE2(ino) == 0 && INO_ID(ino) == 0 && type_has(t, INO_KIND(ino));
	default:
		return false;
	}
}

bool tree_node_is_dir(fuse_ino_t ino)
{
	const struct snode *sn;

	switch (INO_KIND(ino)) {
	case K_STATIC:
		sn = snode_find(ino);
		return sn && sn->type == S_IFDIR;
	case K_SCHEMA:
	case K_PIPES:
		return false;
	default:
		return true;
	}
}

/* --- directories of fixed nodes --------------------------------------------- */

size_t tree_count(struct hubfs *h, fuse_ino_t dir)
{
	int k = type_child_kind(dir);
	size_t n = 0;

	if (k == K_NEWDIR)
		n = ino_type(h, dir) && type_has(ino_type(h, dir), k);
	else if (k >= 0)
		for (unsigned t = 0; t < objtypes_count(h->types); t++)
			n += type_has(objtypes_at(h->types, t), k);
	for (size_t i = 0; i < NSTATIC; i++)
		n += stree[i].parent == dir && stree[i].ino != INO_ROOT;
	return n;
}

int tree_entry(struct hubfs *h, fuse_ino_t dir, size_t k, char *name, size_t size,
	       fuse_ino_t *child)
{
	int kind = type_child_kind(dir);

	/* The per-type nodes first, in registry order, then the table's. */
	if (kind == K_NEWDIR) {
		const struct objtype *t = ino_type(h, dir);

		if (t && type_has(t, kind) && k-- == 0) {
			type_child_name(t, kind, name, size);
			*child = INO_OF_TYPE(kind, t->idx);
			return 0;
		}
	} else if (kind >= 0) {
		for (unsigned i = 0; i < objtypes_count(h->types); i++) {
			const struct objtype *t = objtypes_at(h->types, i);

			if (!type_has(t, kind) || k-- != 0)
				continue;
			type_child_name(t, kind, name, size);
			*child = INO_OF_TYPE(kind, t->idx);
			return 0;
		}
	}
	for (size_t i = 0; i < NSTATIC; i++) {
		if (stree[i].parent != dir || stree[i].ino == INO_ROOT || k-- != 0)
			continue;
		snprintf(name, size, "%s", stree[i].name);
		*child = stree[i].ino;
		return 0;
	}
	return 1;
}

fuse_ino_t tree_lookup(struct hubfs *h, fuse_ino_t dir, const char *name)
{
	int kind = type_child_kind(dir);
	const struct objtype *t;

	if (kind >= 0 && (t = type_child_lookup(h, dir, kind, name)))
		return INO_OF_TYPE(kind, t->idx);
	for (size_t i = 0; i < NSTATIC; i++)
		if (stree[i].parent == dir && stree[i].ino != INO_ROOT && !strcmp(stree[i].name, name))
			return stree[i].ino;
	return 0;
}

fuse_ino_t tree_parent(fuse_ino_t dir)
{
	const struct snode *sn;

	switch (INO_KIND(dir)) {
	case K_STATIC:
		sn = snode_find(dir);
		return sn ? sn->parent : INO_ROOT;
	case K_NEWDIR:
		return INO_OF_TYPE(K_TYPEDIR, INO_TYPE(dir));
	case K_SCHEMA:
		return INO_SCHEMA_DIR;
	case K_PIPES:
		return INO_PIPE_DIR;
	case K_SEARCHTYPE:
		return INO_SEARCH_DIR;
	default:
		return INO_ROOT;
	}
}
