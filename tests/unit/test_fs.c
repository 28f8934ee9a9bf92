/* test_fs.c - the pure logic of fs/: the inode layout (fs/inode.h) and the
 * naming rules with the rename decision table (fs/names.h). No mount. */
#include <errno.h>
#include <stdio.h>

#include <glib.h>

#include "cache/model/objtypes.h"
#include "cache/model/record.h"
#include "fs/inode.h"
#include "fs/names.h"
#include "tests/unit/test.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Every field round-trips at its extremes, and fields never bleed into each
 * other. */
static void test_inode_fields(void)
{
	static const uint64_t ids[] = { 0, 1, 101, 1000257, RECORD_ID_MAX };

	ASSERT_EQ(INO_TYPES_MAX, OBJTYPES_MAX);
	ASSERT(K_KINDS <= 16);
	for (int k = 0; k < K_KINDS; k++)
		for (unsigned t = 0; t < INO_TYPES_MAX; t += 7)
			for (unsigned u = 0; u < INO_TYPES_MAX; u += 9)
				for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
					uint64_t ino = INO_MAKE(k, t, u, ids[i]);

					if (INO_KIND(ino) != k || INO_TYPE(ino) != t ||
					    INO_TYPE2(ino) != u || INO_ID(ino) != ids[i])
						FAIL("INO_MAKE(%d, %u, %u, %" G_GUINT64_FORMAT ") "
						     "= %#" G_GINT64_MODIFIER "x", k, t, u, ids[i], ino);
				}
	/* the last type, the largest id: all bits used, none shared */
	ASSERT_EQ(INO_MAKE(K_SEARCHTYPE, 63, 63, RECORD_ID_MAX),
		  ((uint64_t)K_SEARCHTYPE << 60) | ((uint64_t)63 << 54) | ((uint64_t)63 << 48) |
		  RECORD_ID_MAX);
	ASSERT_EQ(INO_TYPE(INO_MAKE(K_RECORD, 63, 0, RECORD_ID_MAX)), 63);
	ASSERT_EQ(INO_TYPE2(INO_MAKE(K_ASSOC_DIR, 0, 63, 0)), 63);
	ASSERT_EQ(INO_ID(INO_MAKE(K_ASSOC_DIR, 63, 63, 0)), 0);
}

/* Fixed numbers: the root is FUSE's, and no computed inode (a kind other than
 * 0) can equal a fixed one. */
static void test_inode_static(void)
{
	static const uint64_t fixed[] = { INO_ROOT, INO_SCHEMA_DIR, INO_PIPE_DIR, INO_OWNERS_DIR,
					  INO_CTL_DIR, INO_STATUS, INO_README, INO_ERRORS,
					  INO_QUEUE, INO_CREATED, INO_CTL, INO_REJECTED,
					  INO_SEARCH_DIR };
	GHashTable *seen = g_hash_table_new(g_int64_hash, g_int64_equal);

	ASSERT_EQ(INO_ROOT, 1); /* FUSE_ROOT_ID */
	for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) {
		ASSERT_EQ(INO_KIND(fixed[i]), K_STATIC);
		ASSERT_LT(fixed[i], 1u << 16);
		if (!g_hash_table_add(seen, (gpointer)&fixed[i]))
			FAIL("fixed inode %" G_GUINT64_FORMAT " twice", fixed[i]);
	}
	g_hash_table_destroy(seen);
	/* per-type nodes: one kind each, id 0, distinct for every type */
	for (unsigned t = 0; t < INO_TYPES_MAX; t++) {
		ASSERT_EQ(INO_OF_TYPE(K_TYPEDIR, t), INO_MAKE(K_TYPEDIR, t, 0, 0));
		ASSERT(INO_OF_TYPE(K_TYPEDIR, t) != INO_OF_TYPE(K_NEWDIR, t));
		ASSERT(INO_OF_TYPE(K_SCHEMA, t) != INO_OF_TYPE(K_PIPES, t));
		ASSERT(INO_OF_TYPE(K_SEARCHTYPE, t) != INO_OF_TYPE(K_TYPEDIR, t));
		ASSERT_EQ(INO_KIND(INO_OF_TYPE(K_NEWDIR, t)), K_NEWDIR);
		ASSERT_EQ(INO_TYPE(INO_OF_TYPE(K_NEWDIR, t)), t);
		if (t)
			ASSERT(INO_OF_TYPE(K_TYPEDIR, t) != INO_OF_TYPE(K_TYPEDIR, t - 1));
	}
	/* the snapshot files of .hubfs/: status.json … ctl, not README.md */
	ASSERT(ino_is_snapshot(INO_STATUS) && ino_is_snapshot(INO_ERRORS) &&
	       ino_is_snapshot(INO_QUEUE) && ino_is_snapshot(INO_CREATED) && ino_is_snapshot(INO_CTL));
	ASSERT(!ino_is_snapshot(INO_README) && !ino_is_snapshot(INO_REJECTED) &&
	       !ino_is_snapshot(INO_CTL_DIR));
	ASSERT_EQ(INO_CTL - INO_STATUS, INO_SNAPS - 1);
}

static void test_names(void)
{
	uint64_t id = 0;

	ASSERT(name_record("101.json", &id) && id == 101);
	ASSERT(!name_record("0101.json", &id) && !name_record(".json", &id));
	ASSERT(!name_record("101", &id) && !name_record("101.json~", &id));
	ASSERT(!name_record("281474976710656.json", &id)); /* 2^48 */
	ASSERT(name_record("281474976710655.json", &id) && id == RECORD_ID_MAX);
	ASSERT(name_creation("acme.json") && name_creation("101.json"));
	ASSERT(!name_creation(".acme.json.swp") && !name_creation(".acme.json"));
	ASSERT(!name_creation("acme.json~") && !name_creation(".json"));
}

/* The rename decision table. CONTACTS/DEALS are two types' directories. */
#define CONTACTS INO_OF_TYPE(K_TYPEDIR, 0)
#define CONTACTS_NEW INO_OF_TYPE(K_NEWDIR, 0)
#define DEALS INO_OF_TYPE(K_TYPEDIR, 2)
#define DEALS_NEW INO_OF_TYPE(K_NEWDIR, 2)
#define ASSOC INO_MAKE(K_ASSOC_DIR, 0, 1, 101)
#define RECORD -1 /* the source is a record (not one of our nodes) */
#define MOVABLE 1 /* an uncommitted scratch or _new/ file */
#define FIXED 0   /* a committed _new/ file, a link, a rejected/ file */

static const struct {
	uint64_t parent;
	const char *name;
	int src;
	uint64_t newparent;
	const char *newname;
	unsigned flags;
	int want;          /* -errno, or the action */
	uint64_t id;
	const char *why;
} table[] = {
	/* vim's backup: the record is copied, and stays */
	{ CONTACTS, "101.json", RECORD, CONTACTS, "101.json~", 0, RENAME_COPY, 101, "backup" },
	{ CONTACTS, "101.json", RECORD, CONTACTS_NEW, "draft", 0, RENAME_COPY, 101,
	  "a scratch name in _new/" },
	{ CONTACTS, "101.json", RECORD, CONTACTS, "102.json", 0, -EPERM, 0, "record onto record" },
	{ CONTACTS, "101.json", RECORD, CONTACTS_NEW, "copy.json", 0, -EPERM, 0,
	  "a record into creation" },
	{ CONTACTS, "101.json", RECORD, DEALS, "x~", 0, -EPERM, 0, "a record across types" },
	{ CONTACTS, "101.json", RECORD, CONTACTS, "_new", 0, -EPERM, 0, "onto _new/" },
	{ CONTACTS, "nosuch", RECORD, CONTACTS, "x", 0, -ENOENT, 0, "not a record name" },
	{ ASSOC, "201.json", RECORD, ASSOC, "202.json", 0, -ENOENT, 0, "a link is not ours" },
	{ INO_ROOT, "contacts", RECORD, INO_ROOT, "people", 0, -EPERM, 0, "a type directory" },
	{ INO_CTL_DIR, "ctl", RECORD, INO_CTL_DIR, "x", 0, -EPERM, 0, "a control file" },
	{ CONTACTS, "_new", RECORD, CONTACTS, "new", 0, -EPERM, 0, "_new/ itself" },
	/* an editor's save: scratch file onto the record */
	{ CONTACTS, "101.json.tmp", MOVABLE, CONTACTS, "101.json", 0, RENAME_EDIT, 101, "save" },
	{ CONTACTS, "4913", MOVABLE, CONTACTS, "101.json", RENAME_NOREPLACE, RENAME_EDIT, 101,
	  "noreplace is the caller's (the record exists)" },
	{ CONTACTS, "x", MOVABLE, CONTACTS, "0101.json", 0, RENAME_MOVE, 0,
	  "not a record name: a scratch name" },
	/* creates */
	{ CONTACTS_NEW, ".acme.json.swp", MOVABLE, CONTACTS_NEW, "acme.json", 0, RENAME_CREATE,
	  0, "save in _new/" },
	{ CONTACTS, "draft", MOVABLE, CONTACTS_NEW, "acme.json", 0, RENAME_CREATE, 0,
	  "from the type directory" },
	{ CONTACTS_NEW, "acme.json", MOVABLE, CONTACTS_NEW, ".acme.json~", 0, RENAME_MOVE, 0,
	  "a _new/ file to a dot name" },
	{ CONTACTS_NEW, "a", MOVABLE, CONTACTS, "b", 0, RENAME_MOVE, 0, "out of _new/" },
	{ CONTACTS, "draft", MOVABLE, CONTACTS, "_new", 0, -EPERM, 0, "onto _new/" },
	{ CONTACTS, "draft", MOVABLE, DEALS_NEW, "d.json", 0, -EXDEV, 0, "across types" },
	{ CONTACTS, "draft", MOVABLE, DEALS, "301.json", 0, -EXDEV, 0, "across types, a record" },
	{ CONTACTS, "draft", MOVABLE, INO_ROOT, "draft", 0, -EPERM, 0, "to the root" },
	{ CONTACTS, "draft", MOVABLE, ASSOC, "201.json", 0, -EPERM, 0, "into links" },
	{ CONTACTS_NEW, "acme.json", FIXED, CONTACTS_NEW, "b.json", 0, -EPERM, 0,
	  "committed: read-only" },
	{ INO_REJECTED, "contacts-101.json", FIXED, INO_REJECTED, "x", 0, -EPERM, 0,
	  "rejected/ files stay" },
	/* flags and names */
	{ CONTACTS, "a", MOVABLE, CONTACTS, "b", RENAME_EXCHANGE, -EINVAL, 0, "exchange" },
	{ CONTACTS, "a", MOVABLE, CONTACTS, "b", 1u << 7, -EINVAL, 0, "an unknown flag" },
};

static void test_rename_table(void)
{
	char longname[300];

	for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
		struct rename_req r = { .parent = table[i].parent, .name = table[i].name,
					.newparent = table[i].newparent,
					.newname = table[i].newname, .flags = table[i].flags,
					.src_node = table[i].src != RECORD,
					.src_movable = table[i].src == MOVABLE };
		enum rename_action a = (enum rename_action)-1;
		uint64_t id = 99;
		int rc = rename_decide(&r, &a, &id);
		int got = rc ? rc : (int)a;

		if (got != table[i].want || (rc == 0 && id != table[i].id))
			FAIL("%s (%s -> %s): got %d id %" G_GUINT64_FORMAT ", want %d id %"
			     G_GUINT64_FORMAT, table[i].why, table[i].name, table[i].newname, got,
			     id, table[i].want, table[i].id);
	}
	/* a read-only mount, a name too long */
	{
		struct rename_req r = { .parent = CONTACTS, .name = "a", .newparent = CONTACTS,
					.newname = "b", .src_node = true, .src_movable = true,
					.ro = true };
		enum rename_action a;
		uint64_t id;

		ASSERT_EQ(rename_decide(&r, &a, &id), -EROFS);
		r.ro = false;
		memset(longname, 'x', 256);
		longname[256] = '\0';
		r.newname = longname;
		ASSERT_EQ(rename_decide(&r, &a, &id), -ENAMETOOLONG);
		longname[255] = '\0';
		ASSERT_EQ(rename_decide(&r, &a, &id), 0);
		ASSERT_EQ(a, RENAME_MOVE);
	}
}

int main(void)
{
	RUN(test_inode_fields);
	RUN(test_inode_static);
	RUN(test_names);
	RUN(test_rename_table);
	return 0;
}
