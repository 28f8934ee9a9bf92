/* ctl.c - the .hubfs/ control files the write path feeds: errors.log (one
 * JSON line per failure), rejected/ (the bytes of a refused save), created
 * (the ids of _new/ files as their creates land), queue, status.json and the
 * ctl command file (sync, retry, forget, refresh, drop-cache); and the writeback hooks
 * that report into them. errors.log is also kept on disk ($state_dir,
 * rotated at ERRORS_FILE_MAX), as is rejected/ (rejected.c); created keeps
 * the last CREATED_MAX lines.
 *
 * Lock rules: h->lock guards snapshots, the in-memory logs, dnodes and
 * dirents; it is never held across a cache, writeback or HTTP call, nor
 * across file I/O (errors_file_lock guards the errors.log file).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/model/record.h"
#include "cache/writeback/statedir.h"
#include "client/log.h"
#include "fs/internal.h"

/* --- errors.log and rejected/ ------------------------------------------------- */

/* Now, as errors.log and created write times. */
static json_object *iso_now(void)
{
	char buf[RECORD_TIME_LEN];

	return json_object_new_string(record_format_time(hs_wall_ms(), buf));
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

/* Lock held. Was the same line (time aside) logged in the last 2 s? A tool's
 * several lookups of one bad name (ls does two) are one event. */
static bool error_repeated(struct hubfs *h, const char *key)
{
	uint64_t hash = g_str_hash(key) | (uint64_t)strlen(key) << 32;
	int64_t now = hs_now_ms();

	for (unsigned i = 0; i < G_N_ELEMENTS(h->errors_recent); i++)
		if (h->errors_recent[i] == hash && now - h->errors_recent_ms[i] < 2000)
			return true;
	h->errors_recent[h->errors_next] = hash;
	h->errors_recent_ms[h->errors_next] = now;
	h->errors_next = (h->errors_next + 1) % G_N_ELEMENTS(h->errors_recent);
	return false;
}

/* errors_file_lock held. Open $state_dir/<name> for appending through the
 * state directory's checks (0600, not through a symlink, a regular file of
 * ours), or -1. */
static int errors_file_open(struct hubfs *h, const char *name)
{
	g_autofree char *why = NULL;
	int fd = statedir_open(h->state_dir, name, O_WRONLY | O_APPEND | O_CREAT, &why);

	if (fd < 0)
		log_err("%s not kept on disk: %s", name, why ? why : strerror(-fd));
	return fd;
}

void hubfs_errors_open(struct hubfs *h)
{
	g_mutex_init(&h->errors_file_lock);
	h->errors_fd = h->state_dir ? errors_file_open(h, "errors.log") : -1;
}

void hubfs_errors_close(struct hubfs *h)
{
	if (h->errors_fd >= 0)
		close(h->errors_fd);
	h->errors_fd = -1;
	g_mutex_clear(&h->errors_file_lock);
}

/* Append a line to $state_dir/errors.log; past ERRORS_FILE_MAX it becomes
 * errors.log.1 (replacing the one before) and a new file is started, so the
 * disk holds at most twice that. Not under h->lock. */
static void errors_file_write(struct hubfs *h, const char *line, size_t len)
{
	struct stat st;

	g_mutex_lock(&h->errors_file_lock);
	if (h->errors_fd >= 0 && fstat(h->errors_fd, &st) == 0 &&
	    (size_t)st.st_size + len > ERRORS_FILE_MAX && st.st_size > 0) {
		g_autofree char *cur = g_build_filename(h->state_dir, "errors.log", NULL);
		g_autofree char *old = g_build_filename(h->state_dir, "errors.log.1", NULL);

		close(h->errors_fd);
		if (rename(cur, old) != 0)
			log_warn("errors.log: cannot rotate: %s", strerror(errno));
		h->errors_fd = errors_file_open(h, "errors.log");
	}
	if (h->errors_fd >= 0 && write(h->errors_fd, line, len) < 0)
		log_warn("errors.log: %s", strerror(errno));
	g_mutex_unlock(&h->errors_file_lock);
}

void hubfs_error(struct hubfs *h, json_object *obj)
{
	json_object *line = json_object_new_object(), *key = json_object_new_object();
	const int fl = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
	g_autofree char *txt = NULL;
	bool repeated;

	json_object_object_add(line, "time", iso_now());
	json_object_object_foreach(obj, k, v) {
		if (strcmp(k, "time") != 0) {
			json_object_object_add(line, k, json_object_get(v));
			json_object_object_add(key, k, json_object_get(v));
		}
	}
	txt = g_strconcat(json_object_to_json_string_ext(line, fl), "\n", NULL);
	hs_client_scrub(h->hc, txt); /* reasons may quote what the server sent */
	g_mutex_lock(&h->lock);
	repeated = error_repeated(h, json_object_to_json_string_ext(key, fl));
	if (!repeated) {
		g_string_append(h->errors, txt);
		if (h->errors->len > ERRORS_MAX) {
			const char *cut = strchr(h->errors->str + (h->errors->len - ERRORS_MAX), '\n');

			g_string_erase(h->errors, 0, cut ? cut + 1 - h->errors->str : 0);
		}
	}
	g_mutex_unlock(&h->lock);
	if (!repeated) {
		errors_file_write(h, txt, strlen(txt));
		/* errors.log is the place; the daemon's log gets it at info level. */
		txt[strlen(txt) - 1] = '\0';
		log_info("%s", txt);
	}
	json_object_put(key);
	json_object_put(line);
}

void hubfs_reject(struct hubfs *h, const char *file, const char *property, const char *reason,
		  const char *data, size_t len)
{
	json_object *o = json_object_new_object();
	g_autofree char *kept = g_strdup_printf("%s.%" PRId64 ".rejected", file, hs_wall_ms());

	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "op", json_object_new_string("save"));
	if (property && *property)
		json_object_object_add(o, "property", json_object_new_string(property));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	g_strdelimit(kept, "/", '-');
	json_object_object_add(o, "rejected", json_object_new_string(kept));
	hubfs_error(h, o);
	json_object_put(o);
	rejected_keep(h, kept, data, len);
}

/* --- .hubfs/ files ------------------------------------------------------------ */

int ctl_text(struct hubfs *h, fuse_ino_t ino, bool fresh, char **text, size_t *len)
{
	int i = (int)(ino - INO_STATUS);
	char *s = NULL;
	size_t n = 0;

	if (!ino_is_snapshot(ino))
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

static int ctl_one(struct hubfs *h, char *cmd);

/* One write may hold several commands, one a line (`printf 'sync\nrefresh\n'`):
 * run in order, up to the first that fails (its error is the write's). */
int ctl_command(struct hubfs *h, const char *buf, size_t size)
{
	g_autofree char *all = g_strndup(buf, size);
	gchar **lines = g_strsplit(all, "\n", -1);
	int rc = 0, n = 0;

	for (gchar **l = lines; *l && rc == 0; l++) {
		g_strstrip(*l);
		if (**l) {
			rc = ctl_one(h, *l);
			n++;
		}
	}
	g_strfreev(lines);
	if (n == 0) {
		hubfs_error_say(h, "ctl", NULL, "no command; use sync, retry, forget, refresh or drop-cache");
		rc = -EINVAL;
	}
	return rc;
}

static int ctl_one(struct hubfs *h, char *cmd)
{
	int rc = 0;

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
		const struct objtype *only = NULL;

		if (*path) {
			const char *slash = strchr(path, '/');

			only = objtypes_by_name(h->types, path,
						slash ? (size_t)(slash - path) : strlen(path));
			if (!only) {
				hubfs_error_say(h, "ctl", NULL, "refresh PATH: PATH must start with "
						"the directory of an object type of this mount");
				return -EINVAL;
			}
		}
		for (unsigned t = 0; t < objtypes_count(h->types) && rc == 0; t++)
			if (!only || t == only->idx)
				rc = cache_refresh(h->cache, objtypes_at(h->types, t), RL_PRIO_USER,
						   deadline_of(h));
	} else if (!strcmp(cmd, "drop-cache") || g_str_has_prefix(cmd, "drop-cache ")) {
		/* drop-cache [type]: what is kept of the type (or of every type), on
		 * disk and in memory, is forgotten; edits not yet sent are not. */
		const char *name = cmd[10] ? g_strstrip(cmd + 11) : "";
		const struct objtype *only = NULL;

		if (*name) {
			only = objtypes_by_name(h->types, name, strcspn(name, "/"));
			if (!only) {
				hubfs_error_say(h, "ctl", NULL, "drop-cache TYPE: TYPE must be the "
						"directory of an object type of this mount");
				return -EINVAL;
			}
		}
		cache_drop(h->cache, only);
		log_notice("drop-cache: the cache of %s was dropped", only ? only->name : "every type");
	} else {
		hubfs_error_say(h, "ctl", NULL, "unknown command; use sync, retry, forget, refresh or "
				"drop-cache");
		rc = -EINVAL;
	}
	return rc;
}

/* --- writeback hooks ------------------------------------------------------------ */

/* One .hubfs/created line: a JSON object (a name may hold any byte but '/'
 * and NUL, newlines included). g_free. */
static char *created_line(const struct objtype *type, const char *name, const char *id)
{
	json_object *o = json_object_new_object();
	g_autofree char *file = g_strdup_printf("%s/_new/%s", type->name, name);
	char *s;

	json_object_object_add(o, "time", iso_now());
	json_object_object_add(o, "file", json_object_new_string(file));
	json_object_object_add(o, "type", json_object_new_string(type->name));
	json_object_object_add(o, "id", json_object_new_string(id));
	s = g_strconcat(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE), "\n", NULL);
	json_object_put(o);
	return s;
}

#define LANDED_MAX 64

/* The committed _new/ file d became record id: replace it by a link to the
 * record. Lock held. */
static void newfile_to_link(struct hubfs *h, struct dnode *d, const char *id)
{
	fuse_ino_t parent = d->parent;
	g_autofree char *name = g_strdup(d->name);
	const struct objtype *type = d->type;
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

static void on_created(void *ud, const struct objtype *type, const char *key, const char *id)
{
	struct hubfs *h = ud;
	g_autofree char *name = g_strdup(key);
	g_autofree char *line = NULL;
	char *hash = strrchr(name, '#');
	fuse_ino_t parent = INO_OF_TYPE(K_NEWDIR, type->idx);
	struct dnode *d;
	uint64_t rid;

	if (hash)
		*hash = '\0';
	line = created_line(type, name, id);
	g_mutex_lock(&h->lock);
	g_string_append(h->created, line);
	if (++h->created_lines > CREATED_MAX) {
		const char *nl = strchr(h->created->str, '\n');

		g_string_erase(h->created, 0, nl ? nl + 1 - h->created->str : (gssize)h->created->len);
		h->created_lines--;
	}
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
	rejected_keep(ud, name, text, len);
}

struct writeback_hooks hubfs_writeback_hooks(struct hubfs *h)
{
	struct writeback_hooks wh = { .created = on_created, .error = on_error,
				      .rejected = on_rejected, .ud = h };

	return wh;
}
