/* commit.c - turning the bytes a writer left into an edit or a create:
 * parsed, validated, diffed against what the writer started from, applied to
 * the current record file, journaled (writeback_update / writeback_create);
 * or rejected, with the bytes kept in .hubfs/rejected/. Also each record's
 * last outcome, shown as the user.hubfs.state and user.hubfs.error xattrs.
 *
 * Lock rules: h->lock guards rec_errors; it is never held across a cache,
 * writeback or HTTP call (every function here is called without it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/edit.h"
#include "fs/internal.h"

/* --- a record's last outcome (xattrs) -------------------------------------- */

static void set_rec_error(struct hubfs *h, fuse_ino_t ino, const char *reason)
{
	g_mutex_lock(&h->lock);
	if (reason)
		g_hash_table_insert(h->rec_errors, GSIZE_TO_POINTER(ino), g_strdup(reason));
	else
		g_hash_table_remove(h->rec_errors, GSIZE_TO_POINTER(ino));
	g_mutex_unlock(&h->lock);
}

char *record_error(struct hubfs *h, fuse_ino_t ino)
{
	char *s;

	g_mutex_lock(&h->lock);
	s = g_strdup(g_hash_table_lookup(h->rec_errors, GSIZE_TO_POINTER(ino)));
	g_mutex_unlock(&h->lock);
	return s;
}

const char *record_state(struct hubfs *h, fuse_ino_t ino)
{
	const struct objtype *t = ino_type(h, ino);
	const char *s = h->wb && t ? writeback_record_state(h->wb, t, INO_ID(ino)) : "clean";

	/* stale: HubSpot is unreachable, or the record comes from a previous
	 * mount's disk cache that no refresh has confirmed yet. */
	if (!strcmp(s, "clean") && (hs_client_offline(h->hc) ||
				    (t && cache_type_unconfirmed(h->cache, t))))
		return "stale";
	return s;
}

/* --- commits ------------------------------------------------------------------- */

struct ectx {
	struct edit_ctx c;
	json_object *pipelines, *owners;
};

#define OWNERS_RETRY_MS 60000 /* after a failed owners load, saves skip the check this long */

/* May a save load the owner list from HubSpot now? Not while HubSpot is
 * unreachable, nor within OWNERS_RETRY_MS of a failed load: each save would
 * wait op_timeout for it. The owner check is then left to HubSpot (a bad
 * owner is refused when the edit is sent, and reported). */
static bool owners_may_load(struct hubfs *h)
{
	int64_t failed;

	if (hs_client_offline(h->hc))
		return false;
	g_mutex_lock(&h->lock);
	failed = h->owners_fail_ms;
	g_mutex_unlock(&h->lock);
	return !failed || hs_now_ms() - failed >= OWNERS_RETRY_MS;
}

static int ectx_init(struct hubfs *h, const struct objtype *type, struct ectx *e)
{
	int64_t deadline = deadline_of(h);
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	e->c.type = type;
	e->c.types = h->types;
	e->c.now_ms = hs_wall_ms();
	rc = cache_schema(h->cache, type, deadline, &e->c.schema);
	if (rc)
		return rc;
	if (type->pipeline_prop) {
		char *text = NULL;
		size_t len;

		if (cache_pipelines_text(h->cache, type, deadline, &text, &len) == 0)
			e->pipelines = json_tokener_parse(text);
		g_free(text);
		e->c.pipelines = e->pipelines;
	}
	/* Validated against the cached list when there is one. */
	rc = cache_owner_ids_cached(h->cache, &ids, &n);
	if (rc && owners_may_load(h)) {
		rc = cache_owner_ids(h->cache, deadline, &ids, &n);
		g_mutex_lock(&h->lock);
		h->owners_fail_ms = rc ? hs_now_ms() : 0;
		g_mutex_unlock(&h->lock);
	}
	if (rc == 0) {
		e->owners = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			char buf[24];

			snprintf(buf, sizeof(buf), "%" PRIu64, ids[i]);
			json_object_array_add(e->owners, json_object_new_string(buf));
		}
		e->c.owner_ids = e->owners;
		g_free(ids);
	}
	return 0;
}

/* A save that cannot even be checked (the property definitions are not
 * cached and HubSpot cannot be reached): refused, but logged and kept in
 * rejected/ like any refused save, so nothing written is lost. */
static int unchecked(struct hubfs *h, fuse_ino_t ino, const char *label, int rc, const char *data,
		     size_t len)
{
	g_autofree char *why = g_strdup_printf("cannot be checked now (the account's property "
					       "definitions could not be read: %s); nothing was "
					       "saved, the bytes are kept: save again later",
					       strerror(-rc));

	hubfs_reject(h, label, NULL, why, data, len);
	if (ino)
		set_rec_error(h, ino, why);
	return rc;
}

static void ectx_clear(struct ectx *e)
{
	json_object_put(e->pipelines);
	json_object_put(e->owners);
}

char *commit_label(struct hubfs *h, fuse_ino_t ino)
{
	if (INO_KIND(ino) == K_ASSOCFILE)
		return g_strdup_printf("%s/%" PRIu64 "/" ASSOC_FILE, ino_type(h, ino)->name, INO_ID(ino));
	return g_strdup_printf("%s/%" PRIu64 ".json", ino_type(h, ino)->name, INO_ID(ino));
}

/* Commit data as an edit of record ino, diffed against base. quiet: on invalid
 * input return -EINVAL without logging (fsync probes). */
int commit_record(struct hubfs *h, fuse_ino_t ino, const char *data, size_t len,
		  const char *base, size_t base_len, bool quiet)
{
	const struct objtype *type = ino_type(h, ino);
	uint64_t id = INO_ID(ino);
	g_autofree char *label = commit_label(h, ino);
	json_object *changes = NULL, *bases = NULL;
	struct edit_error err = { { 0 }, { 0 } };
	char *cur = NULL, *text = NULL;
	size_t cur_len = 0, tlen = 0;
	struct ectx e;
	uint64_t epoch;
	int rc;

	if (len == 0) {
		snprintf(err.reason, sizeof(err.reason), "empty file: nothing was saved (an empty "
			 "save never clears a record)");
		rc = -EINVAL;
		goto reject;
	}
	rc = ectx_init(h, type, &e);
	if (rc) {
		rc = rc == -ENOENT ? -EIO : rc;
		return quiet ? rc : unchecked(h, ino, label, rc, data, len);
	}
	rc = edit_parse(&e.c, data, len, base, base_len, &changes, &bases, &err);
	if (rc)
		goto reject_ctx;
	if (json_object_object_length(changes) == 0) {
		/* Nothing changed: no API call. Drop the kernel's copy of the bytes
		 * written if they differ from the rendering (e.g. reformatted). */
		if (len != base_len || memcmp(data, base, len) != 0)
			hubfs_inval_inode(h, ino);
		set_rec_error(h, ino, NULL);
		rc = 0;
		goto out;
	}
	/* Apply to the current file (a refresh may have moved it on since). */
	rc = cache_record_text(h->cache, type, id, deadline_of(h), &cur, &cur_len);
	if (rc == 0)
		rc = edit_apply(e.c.schema, cur, cur_len, changes, &text, &tlen);
	if (rc)
		goto out;
	epoch = cache_record_put_local(h->cache, type, id, text, tlen, hs_wall_ms());
	rc = writeback_update(h->wb, type, id, changes, bases, epoch);
	if (rc) {
		hubfs_error_say(h, "journal", label, strerror(-rc));
		cache_record_forget(h->cache, type, id);
		rc = -EIO;
		goto out;
	}
	set_rec_error(h, ino, NULL);
	hubfs_inval_inode(h, ino);
out:
	ectx_clear(&e);
	json_object_put(changes);
	json_object_put(bases);
	g_free(cur);
	g_free(text);
	return rc;
reject_ctx:
	ectx_clear(&e);
reject:
	if (quiet)
		return rc;
	hubfs_reject(h, label, err.property, err.reason, data, len);
	set_rec_error(h, ino, err.reason);
	hubfs_inval_inode(h, ino);
	return rc;
}

/* Commit a _new/ file as a create. Lock not held; d stays valid because only
 * this mount's handlers remove nodes and the kernel holds a reference. */
int commit_create(struct hubfs *h, const struct objtype *type, const char *name, const char *data,
		  size_t len, char **key_out)
{
	g_autofree char *label = g_strdup_printf("%s/_new/%s", type->name, name);
	struct edit_error err = { { 0 }, { 0 } };
	json_object *props = NULL, *assocs = NULL;
	struct ectx e;
	char *key;
	int rc;

	if (len == 0) {
		snprintf(err.reason, sizeof(err.reason), "empty file: nothing to create");
		hubfs_reject(h, label, NULL, err.reason, data, len);
		return -EINVAL;
	}
	rc = ectx_init(h, type, &e);
	if (rc)
		return unchecked(h, 0, label, rc == -ENOENT ? -EIO : rc, data, len);
	rc = edit_parse_create(&e.c, data, len, &props, &assocs, &err);
	ectx_clear(&e);
	if (rc) {
		hubfs_reject(h, label, err.property, err.reason, data, len);
		return rc;
	}
	/* The key names the create in the journal: unique across mounts. */
	key = g_strdup_printf("%s#%" PRId64, name, g_get_real_time());
	rc = writeback_create(h->wb, type, key, props, assocs);
	json_object_put(props);
	json_object_put(assocs);
	if (rc) {
		g_free(key);
		return -EIO;
	}
	*key_out = key;
	return 0;
}
