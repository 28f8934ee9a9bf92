/* assoc.c - association labels in the tree:
 *
 * - <type>/<id>/associations.json: every association of the record with its
 *   labels (cache/model/assocfile.h has the format), built from the same
 *   cached v4 batch reads as the association directories. Saving it (a
 *   write and close, or a scratch file renamed onto it: sed -i, editors)
 *   queues the v4 writes that turn what the writer started from into what
 *   was saved: default adds, removals, label adds (batch/create) and label
 *   removals (batch/labels/archive), through the journal like every other
 *   write. A label the pair does not define is refused at close (EINVAL,
 *   with the pair's labels in errors.log).
 * - schema/labels/<from>_to_<to>.json: the association types defined from
 *   one type to another (GET …/associations/{from}/{to}/labels), for the
 *   pairs that can carry labels (the four core types and custom objects).
 * - user.hubspot.labels.<id> on an association directory: the labels of its
 *   link <id>.json, comma-separated. (Linux allows user.* attributes on
 *   regular files and directories only, never on a symlink, so the link's
 *   own attribute cannot exist: its directory carries it.)
 *
 * Lock rules: called without h->lock; it is taken only around dnode work.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/assocfile.h"
#include "cache/model/json_util.h"
#include "cache/model/record.h"
#include "fs/internal.h"
#include "fs/names.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define XATTR_LABELS "user.hubspot.labels."

/* --- associations.json ----------------------------------------------------- */

int assoc_file_text(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len)
{
	const struct objtype *t = ino_type(h, ino);
	int64_t deadline = deadline_of(h);
	unsigned idx[OBJTYPES_MAX];
	json_object *by;
	struct rec_attr a;
	size_t n;
	int rc;

	if (!t)
		return -ENOENT;
	rc = cache_record_stat(h->cache, t, INO_ID(ino), deadline, &a);
	if (rc)
		return rc;
	n = assoc_dirs(h, t, idx);
	by = json_object_new_object();
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct objtype *to = objtypes_at(h->types, idx[i]);
		json_object *links = NULL;

		rc = cache_assoc_links(h->cache, t, INO_ID(ino), to, deadline, &links);
		if (rc == 0)
			json_object_object_add(by, to->name, links);
	}
	if (rc == 0)
		*text = assocfile_render(by, len);
	json_object_put(by);
	return rc;
}

int wfile_text(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len)
{
	if (INO_KIND(ino) == K_ASSOCFILE)
		return assoc_file_text(h, ino, text, len);
	return cache_record_text(h->cache, ino_type(h, ino), INO_ID(ino), deadline_of(h), text, len);
}

int wfile_commit(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len, const char *base,
		 size_t base_len, bool quiet)
{
	if (INO_KIND(ino) == K_ASSOCFILE)
		return assoc_commit(h, ino, data, len, base, base_len, quiet);
	return commit_record(h, ino, data, len, base, base_len, quiet);
}

/* One change of a save, resolved: the types, the label's association type. */
struct planned {
	const struct assoc_change *c;
	const struct objtype *to;
	const char *category;  /* AC_LABEL_*: borrowed from the definitions */
	int type_id;
};

/* "A", "B" (or "none") of the labels defined from -> to. g_free. */
static char *defined_list(json_object *defs)
{
	GString *g = g_string_new(NULL);

	for (size_t i = 0; i < json_util_array_len(defs); i++) {
		const char *l = json_util_field(json_object_array_get_idx(defs, i), "label");

		if (l && *l)
			g_string_append_printf(g, "%s\"%s\"", g->len ? ", " : "", l);
	}
	if (!g->len)
		g_string_append(g, "none");
	return g_string_free(g, FALSE);
}

/* The definition of label in defs: its category and type id. */
static bool find_label(json_object *defs, const char *label, const char **category, int *type_id)
{
	for (size_t i = 0; i < json_util_array_len(defs); i++) {
		json_object *d = json_object_array_get_idx(defs, i), *v;
		const char *l = json_util_field(d, "label");

		if (!l || strcmp(l, label) != 0 || !json_object_object_get_ex(d, "typeId", &v))
			continue;
		*category = json_util_field(d, "category");
		if (!*category)
			*category = "HUBSPOT_DEFINED";
		*type_id = json_object_get_int(v);
		return *type_id > 0;
	}
	return false;
}

/* The target type a key of the file names, if this record has it. */
static const struct objtype *key_type(struct hubfs *h, const struct objtype *from, const char *key)
{
	const struct objtype *to = objtypes_by_name(h->types, key, strlen(key));

	return to && to != from && objtypes_associable(h->types, from, to) ? to : NULL;
}

/* Was the change's link there before the save (then its record exists)? */
static bool linked(json_object *before, const struct assoc_change *c)
{
	json_object *m = NULL;
	char id[24];

	snprintf(id, sizeof(id), "%" PRIu64, c->id);
	return json_object_object_get_ex(before, c->name, &m) &&
	       json_object_object_get_ex(m, id, NULL);
}

/* Check every change of a save and resolve its labels, before anything is
 * queued (a new link's record must exist). 0, or -EINVAL with *why; -EIO etc.
 * when the definitions cannot be read. defs: key -> definitions (json
 * array), filled as needed. */
static int plan_changes(struct hubfs *h, const struct objtype *from, json_object *before,
			json_object *after, GArray *changes, GHashTable *defs, GArray *plan, char **why)
{
	json_object_object_foreach(after, k, v) {
		(void)v;
		if (!key_type(h, from, k)) {
			unsigned idx[OBJTYPES_MAX];
			size_t n = assoc_dirs(h, from, idx);
			GString *g = g_string_new(NULL);

			for (size_t i = 0; i < n; i++)
				g_string_append_printf(g, "%s%s", i ? ", " : "",
						       objtypes_at(h->types, idx[i])->name);
			*why = g_strdup_printf("\"%s\" is not a type %s can be associated with (the "
					       "keys are: %s)", k, from->name, g->str);
			g_string_free(g, TRUE);
			return -EINVAL;
		}
	}
	for (guint i = 0; i < changes->len; i++) {
		const struct assoc_change *c = &g_array_index(changes, struct assoc_change, i);
		struct planned p = { .c = c, .to = key_type(h, from, c->name) };
		json_object *d;
		struct rec_attr a;
		int rc;

		if ((c->op == AC_LINK_ADD || (c->op == AC_LABEL_ADD && !linked(before, c))) &&
		    (rc = cache_record_stat(h->cache, p.to, c->id, deadline_of(h), &a)) != 0) {
			if (rc != -ENOENT)
				return rc;
			*why = g_strdup_printf("%s: there is no record %" PRIu64, c->name, c->id);
			return -EINVAL;
		}
		if (c->op == AC_LABEL_ADD || c->op == AC_LABEL_DEL) {
			d = g_hash_table_lookup(defs, c->name);
			if (!d) {
				rc = cache_assoc_labels(h->cache, from, p.to, deadline_of(h), &d);
				if (rc)
					return rc;
				g_hash_table_insert(defs, (gpointer)c->name, d);
			}
			if (!find_label(d, c->label, &p.category, &p.type_id)) {
				g_autofree char *list = defined_list(d);

				*why = g_strdup_printf("%s: %" PRIu64 ": no label \"%s\" is defined from %s "
						       "to %s; the labels defined are: %s", c->name,
						       c->id, c->label, from->name, p.to->name, list);
				return -EINVAL;
			}
		}
		g_array_append_val(plan, p);
	}
	return 0;
}

/* Queue the planned writes; the cache shows them at once (and has the kernel
 * forget both sides' directories and links: hubfs_assoc_changed). */
static int queue_changes(struct hubfs *h, const struct objtype *from, uint64_t id, GArray *plan)
{
	for (guint i = 0; i < plan->len; i++) {
		const struct planned *p = &g_array_index(plan, struct planned, i);
		const struct assoc_change *c = p->c;
		bool add = c->op == AC_LINK_ADD || c->op == AC_LABEL_ADD;
		int rc;

		if (c->op == AC_LINK_ADD || c->op == AC_LINK_DEL) {
			rc = writeback_assoc(h->wb, add, from, id, p->to, c->id);
			if (rc == 0)
				cache_assoc_note(h->cache, from, id, p->to, c->id, add);
		} else {
			rc = writeback_assoc_label(h->wb, add, from, id, p->to, c->id, p->category,
						   p->type_id, c->label);
			if (rc == 0)
				cache_assoc_note_label(h->cache, from, id, p->to, c->id, p->category,
						       p->type_id, c->label, add);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static void json_put(gpointer o)
{
	json_object_put(o);
}

int assoc_commit(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len, const char *base,
		 size_t base_len, bool quiet)
{
	const struct objtype *from = ino_type(h, ino);
	g_autofree char *label = commit_label(h, ino);
	json_object *before = NULL, *after = NULL;
	GHashTable *defs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, json_put);
	GArray *changes = NULL, *plan = g_array_new(FALSE, TRUE, sizeof(struct planned));
	char *why = NULL, *ignored = NULL;
	int rc;

	if (!from) {
		rc = -ENOENT;
		goto out;
	}
	if (len == 0) {
		why = g_strdup("empty file: nothing was saved (to remove the associations toward a "
			       "type, save its key with [])");
		rc = -EINVAL;
		goto out;
	}
	rc = assocfile_parse(data, len, &after, &why);
	if (rc)
		goto out;
	if (!base || assocfile_parse(base, base_len, &before, &ignored) != 0)
		before = json_object_new_object();
	changes = assocfile_diff(before, after);
	rc = plan_changes(h, from, before, after, changes, defs, plan, &why);
	if (rc == 0)
		rc = queue_changes(h, from, INO_ID(ino), plan);
	if (rc && !why && rc != -EINVAL)
		hubfs_error_say(h, "write", label, strerror(-rc));
out:
	if (rc == -EINVAL && why && !quiet)
		hubfs_reject(h, label, NULL, why, data, len);
	/* Readers see the saved state (or, refused, the current one) again. */
	if (!quiet)
		hubfs_inval_inode(h, ino);
	g_free(why);
	g_free(ignored);
	json_object_put(before);
	json_object_put(after);
	if (changes)
		g_array_free(changes, TRUE);
	g_array_free(plan, TRUE);
	g_hash_table_destroy(defs);
	return rc;
}

/* A scratch file of a record's directory renamed onto associations.json:
 * commit its bytes, then remove it. Any other rename there moves a scratch
 * file to another scratch name (dirops.c), or is refused. */
int assoc_rename(struct hubfs *h, fuse_ino_t parent, const char *name, fuse_ino_t ino,
		 fuse_ino_t newparent, const char *newname, unsigned flags)
{
	fuse_ino_t file = INO_MAKE(K_ASSOCFILE, INO_TYPE(newparent), 0, INO_ID(newparent));
	g_autofree char *base = NULL;
	GByteArray *data = NULL;
	size_t base_len = 0;
	struct dnode *d;
	int rc;

	if (INO_KIND(parent) != K_ASSOC_ROOT && INO_KIND(newparent) != K_ASSOC_ROOT)
		return -ENOSYS;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (h->o.ro)
		return -EROFS;
	if (parent != newparent)
		return -EXDEV;
	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (d && d->ino == ino && d->kind == D_SCRATCH)
		data = g_byte_array_ref(d->data);
	g_mutex_unlock(&h->lock);
	if (!data)
		return -EPERM; /* associations.json and the directories stay where they are */
	if (strcmp(newname, ASSOC_FILE) != 0) {
		g_byte_array_unref(data);
		if (key_type(h, ino_type(h, newparent), newname))
			return -EISDIR; /* an association directory's name */
		return -ENOSYS; /* a scratch file to another name: dirops.c */
	}
	if (flags & RENAME_NOREPLACE) {
		g_byte_array_unref(data);
		return -EEXIST;
	}
	rc = assoc_file_text(h, file, &base, &base_len);
	if (rc == 0)
		rc = assoc_commit(h, file, (const char *)data->data, data->len, base, base_len, false);
	g_byte_array_unref(data);
	if (rc)
		return rc;
	g_mutex_lock(&h->lock);
	d = dnode_at(h, parent, name);
	if (d && d->ino == ino)
		dnode_unlink(h, d);
	g_mutex_unlock(&h->lock);
	hubfs_inval_entry(h, newparent, newname);
	return 0;
}

/* --- schema/labels/ --------------------------------------------------------- */

/* Pairs that can carry labels: between the core types and custom objects. */
static bool labelable(const struct objtype *t)
{
	return t->flags & (OTF_CORE | OTF_CUSTOM);
}

/* The k-th pair of schema/labels/ (from in registry order, then to). */
static bool labels_pair(struct hubfs *h, size_t k, const struct objtype **from,
			const struct objtype **to)
{
	for (unsigned i = 0; i < objtypes_count(h->types); i++) {
		const struct objtype *f = objtypes_at(h->types, i);
		unsigned idx[OBJTYPES_MAX];
		size_t n;

		if (!labelable(f))
			continue;
		n = assoc_dirs(h, f, idx);
		for (size_t j = 0; j < n; j++) {
			const struct objtype *t = objtypes_at(h->types, idx[j]);

			if (!labelable(t) || k-- != 0)
				continue;
			*from = f;
			*to = t;
			return true;
		}
	}
	return false;
}

size_t assoc_labels_count(struct hubfs *h)
{
	const struct objtype *f, *t;
	size_t n = 0;

	while (labels_pair(h, n, &f, &t))
		n++;
	return n;
}

int assoc_labels_entry(struct hubfs *h, size_t k, char *name, size_t size, fuse_ino_t *child)
{
	const struct objtype *f, *t;

	if (!labels_pair(h, k, &f, &t))
		return 1;
	snprintf(name, size, "%s_to_%s.json", f->name, t->name);
	*child = INO_MAKE(K_LABELS, f->idx, t->idx, 0);
	return 0;
}

fuse_ino_t assoc_labels_lookup(struct hubfs *h, const char *name)
{
	size_t n = strlen(name);

	if (n < 10 || strcmp(name + n - 5, ".json") != 0)
		return 0;
	for (unsigned i = 0; i < objtypes_count(h->types); i++) {
		const struct objtype *f = objtypes_at(h->types, i), *t;
		size_t fl = strlen(f->name);

		if (!labelable(f) || n < fl + 4 + 5 || strncmp(name, f->name, fl) != 0 ||
		    strncmp(name + fl, "_to_", 4) != 0)
			continue;
		t = objtypes_by_name(h->types, name + fl + 4, n - fl - 4 - 5);
		if (t && t != f && labelable(t) && objtypes_associable(h->types, f, t))
			return INO_MAKE(K_LABELS, f->idx, t->idx, 0);
	}
	return 0;
}

int assoc_labels_text(struct hubfs *h, fuse_ino_t ino, char **text, size_t *len)
{
	const struct objtype *f = ino_type(h, ino), *t = ino_type2(h, ino);
	json_object *defs = NULL, *o, *labels;
	int rc;

	if (!f || !t || f == t || !labelable(f) || !labelable(t) ||
	    !objtypes_associable(h->types, f, t))
		return -ENOENT;
	rc = cache_assoc_labels(h->cache, f, t, deadline_of(h), &defs);
	if (rc)
		return rc;
	o = json_object_new_object();
	labels = json_object_new_array();
	for (size_t i = 0; i < json_util_array_len(defs); i++) {
		const char *l = json_util_field(json_object_array_get_idx(defs, i), "label");

		if (l && *l)
			json_object_array_add(labels, json_object_new_string(l));
	}
	json_object_object_add(o, "from", json_object_new_string(f->name));
	json_object_object_add(o, "to", json_object_new_string(t->name));
	json_object_object_add(o, "labels", labels);
	json_object_object_add(o, "types", defs);
	*text = json_util_pretty(o, len);
	json_object_put(o);
	return 0;
}

/* --- labels of links, as xattrs of their directory ------------------------- */

/* "A,B" of a link's types (a json array), or NULL if it has none. g_free. */
static char *labels_csv(json_object *types)
{
	GString *g = g_string_new(NULL);

	for (size_t i = 0; i < json_util_array_len(types); i++) {
		const char *l = json_util_field(json_object_array_get_idx(types, i), "label");

		if (l && *l)
			g_string_append_printf(g, "%s%s", g->len ? "," : "", l);
	}
	if (!g->len) {
		g_string_free(g, TRUE);
		return NULL;
	}
	return g_string_free(g, FALSE);
}

static json_object *dir_links(struct hubfs *h, fuse_ino_t ino)
{
	const struct objtype *f = ino_type(h, ino), *t = ino_type2(h, ino);
	json_object *links = NULL;

	if (!f || !t || cache_assoc_links(h->cache, f, INO_ID(ino), t, deadline_of(h), &links) != 0)
		return NULL;
	return links;
}

int assoc_dir_getxattr(struct hubfs *h, fuse_ino_t ino, const char *name, char **val, size_t *len)
{
	size_t pl = strlen(XATTR_LABELS);
	json_object *links;
	uint64_t id;

	if (strncmp(name, XATTR_LABELS, pl) != 0 ||
	    (!name_record(name + pl, &id) && record_parse_id(name + pl, strlen(name + pl), &id) != 0))
		return -ENODATA;
	links = dir_links(h, ino);
	for (size_t i = 0; i < json_util_array_len(links); i++) {
		json_object *l = json_object_array_get_idx(links, i);

		if (g_ascii_strtoull(json_util_field(l, "id"), NULL, 10) != id)
			continue;
		*val = labels_csv(json_object_object_get(l, "types"));
		if (!*val)
			*val = g_strdup("");
		*len = strlen(*val);
		json_object_put(links);
		return 0;
	}
	json_object_put(links);
	return -ENODATA;
}

void assoc_dir_listxattr(struct hubfs *h, fuse_ino_t ino, GString *out)
{
	json_object *links = dir_links(h, ino);

	for (size_t i = 0; i < json_util_array_len(links); i++) {
		json_object *l = json_object_array_get_idx(links, i);
		g_autofree char *csv = labels_csv(json_object_object_get(l, "types"));

		if (csv) {
			g_string_append_printf(out, "%s%s", XATTR_LABELS, json_util_field(l, "id"));
			g_string_append_c(out, '\0');
		}
	}
	json_object_put(links);
}
