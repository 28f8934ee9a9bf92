/* ctl.c - the .hubfs/ control files the write path feeds: errors.log (one
 * JSON line per failure), rejected/ (the bytes of a refused save), created
 * (the ids of _new/ files as their creates land), queue, status.json and the
 * ctl command file (sync, retry, forget, refresh); and the writeback hooks
 * that report into them.
 *
 * Lock rules: h->lock guards snapshots, the logs, dnodes and dirents; it is
 * never held across a cache, writeback or HTTP call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/objtype.h"
#include "cache/record.h"
#include "client/log.h"
#include "fs/internal.h"

/* --- errors.log and rejected/ ------------------------------------------------- */

static json_object *iso_now(void)
{
	int64_t ms = hubfs_wall_ms();
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char buf[64];

	gmtime_r(&s, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_object_new_string(buf);
}

void hubfs_error_say(struct hubfs *h, const char *op, const char *file, const char *reason)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "op", json_object_new_string(op));
	if (file)
		json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	hubfs_error(h, o);
	json_object_put(o);
}

void hubfs_error(struct hubfs *h, json_object *obj)
{
	json_object *line = json_object_new_object();
	const char *txt;

	json_object_object_add(line, "time", iso_now());
	json_object_object_foreach(obj, k, v)
		if (strcmp(k, "time") != 0)
			json_object_object_add(line, k, json_object_get(v));
	txt = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	g_mutex_lock(&h->lock);
	g_string_append(h->errors, txt);
	g_string_append_c(h->errors, '\n');
	if (h->errors->len > ERRORS_MAX) {
		const char *cut = strchr(h->errors->str + (h->errors->len - ERRORS_MAX), '\n');

		g_string_erase(h->errors, 0, cut ? cut + 1 - h->errors->str : 0);
	}
	if (h->errors_fd >= 0) {
		g_autofree char *l = g_strconcat(txt, "\n", NULL);

		if (write(h->errors_fd, l, strlen(l)) < 0)
			log_warn("errors.log: %s", strerror(errno));
	}
	g_mutex_unlock(&h->lock);
	log_notice("%s", txt);
	json_object_put(line);
}

/* Keep bytes under .hubfs/rejected/<name> (a unique name is made). */
static void keep_rejected(struct hubfs *h, const char *name, const char *data, size_t len)
{
	g_autofree char *base = g_strdelimit(g_strdup(name), "/", '-');
	struct dnode *d;

	g_mutex_lock(&h->lock);
	for (int n = 1; dnode_at(h, INO_REJECTED, base); n++) {
		g_autofree char *stem = g_strdup(name);
		char *dot;

		g_strdelimit(stem, "/", '-');
		dot = strrchr(stem, '.');
		if (dot)
			*dot = '\0';
		g_free(base);
		base = g_strdup_printf("%s.%d%s", stem, n, strrchr(name, '.') ? strrchr(name, '.') : "");
	}
	d = dnode_new(h, INO_REJECTED, base, D_REJECTED, -1, S_IFREG | 0644);
	g_byte_array_append(d->data, (const guint8 *)data, (guint)len);
	g_mutex_unlock(&h->lock);
}

void hubfs_reject(struct hubfs *h, const char *file, const char *property, const char *reason,
		  const char *data, size_t len)
{
	json_object *o = json_object_new_object();
	g_autofree char *kept = g_strdup_printf("%s.%" PRId64 ".rejected", file, hubfs_wall_ms());

	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "op", json_object_new_string("save"));
	if (property && *property)
		json_object_object_add(o, "property", json_object_new_string(property));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	g_strdelimit(kept, "/", '-');
	json_object_object_add(o, "rejected", json_object_new_string(kept));
	hubfs_error(h, o);
	json_object_put(o);
	keep_rejected(h, kept, data, len);
}

/* --- .hubfs/ files ------------------------------------------------------------ */

int ctl_text(struct hubfs *h, fuse_ino_t ino, bool fresh, char **text, size_t *len)
{
	int i = (int)(ino - INO_STATUS);
	char *s = NULL;
	size_t n = 0;

	if (ino != INO_STATUS && ino != INO_ERRORS && ino != INO_QUEUE && ino != INO_CREATED &&
	    ino != INO_CTL)
		return -ENOENT;
	/* A snapshot lives for a second: every stat and read within it sees the
	 * same bytes, size and mtime, so a reader's reads (and its EOF probe) are
	 * consistent; regenerating per getattr would let a second read() see a
	 * newer, longer text. */
	g_mutex_lock(&h->lock);
	if (h->snap[i] && hs_now_ms() - h->snap_ms[i] < 1000)
		fresh = false;
	else if (!h->snap[i])
		fresh = true;
	g_mutex_unlock(&h->lock);
	if (fresh) {
		if (ino == INO_STATUS)
			s = hubfs_status_json(h, &n);
		else if (ino == INO_QUEUE)
			s = h->wb ? writeback_queue_text(h->wb, &n) : g_strdup("");
		g_mutex_lock(&h->lock);
		if (ino == INO_ERRORS)
			s = g_strdup(h->errors->str);
		else if (ino == INO_CREATED)
			s = g_strdup(h->created->str);
		else if (ino == INO_CTL)
			s = g_strdup("");
		n = strlen(s);
		g_free(h->snap[i]);
		h->snap[i] = s;
		h->snap_len[i] = n;
		h->snap_ms[i] = hs_now_ms();
		clock_gettime(CLOCK_REALTIME, &h->snap_time[i]);
		g_mutex_unlock(&h->lock);
	}
	g_mutex_lock(&h->lock);
	*text = g_memdup2(h->snap[i], h->snap_len[i] + 1);
	*len = h->snap_len[i];
	g_mutex_unlock(&h->lock);
	return 0;
}

int ctl_command(struct hubfs *h, const char *buf, size_t size)
{
	g_autofree char *cmd = g_strndup(buf, size);
	int rc = 0;

	g_strstrip(cmd);
	if (!strcmp(cmd, "sync")) {
		char *report = NULL;

		rc = writeback_sync(h->wb, deadline_of(h), &report);
		if (rc == -EIO && report)
			hubfs_error_say(h, "sync", NULL, report);
		g_free(report);
	} else if (!strcmp(cmd, "retry")) {
		rc = writeback_retry(h->wb);
	} else if (!strcmp(cmd, "forget")) {
		rc = writeback_forget(h->wb);
	} else if (!strcmp(cmd, "refresh") || g_str_has_prefix(cmd, "refresh ")) {
		/* refresh [path]: the type named by the path's first component (or
		 * every type), refreshed now; the write returns when it is done. */
		const char *path = cmd[7] ? g_strstrip(cmd + 8) : "";
		int only = -1;

		if (*path) {
			const char *slash = strchr(path, '/');

			only = objtype_from_name(path, slash ? (size_t)(slash - path) : strlen(path));
			if (only < 0) {
				hubfs_error_say(h, "ctl", NULL, "refresh PATH: PATH must start with "
						"contacts, companies, deals or tickets");
				return -EINVAL;
			}
		}
		for (int t = 0; t < OT_COUNT && rc == 0; t++)
			if (only < 0 || t == only)
				rc = cache_refresh(h->cache, t, RL_PRIO_USER, deadline_of(h));
	} else {
		hubfs_error_say(h, "ctl", NULL, "unknown command; use sync, retry, forget or refresh");
		rc = -EINVAL;
	}
	return rc;
}

/* --- writeback hooks ------------------------------------------------------------ */

#define LANDED_MAX 64

/* The committed _new/ file d became record id: replace it by a link to the
 * record. Lock held. */
static void newfile_to_link(struct hubfs *h, struct dnode *d, const char *id)
{
	fuse_ino_t parent = d->parent;
	g_autofree char *name = g_strdup(d->name);
	int type = d->type;
	struct dnode *l;

	dnode_unlink(h, d); /* may free d */
	l = dnode_new(h, parent, name, D_LINK, type, S_IFLNK | 0777);
	l->link = g_strdup_printf("../%s.json", id);
	hubfs_inval_entry(h, parent, name);
}

void dnode_committed(struct hubfs *h, struct dnode *d, char *key)
{
	size_t klen = strlen(key);

	d->committed = true;
	d->mode = S_IFREG | 0444;
	g_free(d->link);
	d->link = key; /* the journal key, matched when it lands */
	if (!d->name || d->kind != D_NEWFILE)
		return; /* removed meanwhile: nothing to link */
	for (GList *l = h->landed.head; l; l = l->next) {
		char *e = l->data;

		if (!strncmp(e, key, klen) && e[klen] == '\t') {
			newfile_to_link(h, d, e + klen + 1);
			g_queue_delete_link(&h->landed, l);
			g_free(e);
			return;
		}
	}
}

static void on_created(void *ud, int type, const char *key, const char *id)
{
	struct hubfs *h = ud;
	g_autofree char *name = g_strdup(key);
	char *hash = strrchr(name, '#');
	fuse_ino_t parent = INO_NEW_DIR + (fuse_ino_t)type;
	struct dnode *d;
	uint64_t rid;

	if (hash)
		*hash = '\0';
	g_mutex_lock(&h->lock);
	g_string_append_printf(h->created, "%s/_new/%s %s %s\n", objtype_name(type), name,
			       objtype_name(type), id);
	d = dnode_at(h, parent, name);
	if (d && d->kind == D_NEWFILE && d->link && !strcmp(d->link, key)) {
		newfile_to_link(h, d, id);
	} else {
		/* Not marked yet (or gone, or from an earlier mount): kept a
		 * little while for dnode_committed. */
		g_queue_push_tail(&h->landed, g_strdup_printf("%s\t%s", key, id));
		if (h->landed.length > LANDED_MAX)
			g_free(g_queue_pop_head(&h->landed));
	}
	g_mutex_unlock(&h->lock);
	if (record_parse_id(id, strlen(id), &rid) == 0)
		cache_listing_note(h->cache, type, rid, true);
}

static void on_error(void *ud, json_object *line)
{
	hubfs_error(ud, line);
}

static void on_rejected(void *ud, const char *name, const char *text, size_t len)
{
	keep_rejected(ud, name, text, len);
}

struct writeback_hooks hubfs_writeback_hooks(struct hubfs *h)
{
	struct writeback_hooks wh = { .created = on_created, .error = on_error,
				      .rejected = on_rejected, .ud = h };

	return wh;
}
