/* disk.c - the cache's copy on disk: the files, opening the database (and
 * discarding one that cannot be used), closing, status. The queue of writes
 * is in disk_queue.c, reads in disk_read.c, the writer thread in
 * disk_writer.c. See disk.h.
 */
#include "cache/disk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/log.h"

static const char why_not_sqlite[] =
	"the disk cache was not an SQLite database; it was deleted and the cache starts empty";
static const char why_damaged[] =
	"the disk cache was damaged; it was deleted and the cache starts empty";
static const char why_foreign[] =
	"the disk cache file was not made by hubfs; it was deleted and the cache starts empty";
static const char why_format[] =
	"the disk cache was written by another version of hubfs; it was deleted and the cache "
	"starts empty";
static const char why_portal[] =
	"the disk cache belonged to another HubSpot account; it was deleted and the cache starts "
	"empty";

int disk_sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

static bool is_damage(int rc)
{
	return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

void disk_note_damage(struct disk *d, int rc, const char *what)
{
	if (!is_damage(rc))
		return;
	g_mutex_lock(&d->lock);
	if (!d->damaged && d->started) /* at open, the notice says it */
		log_err("disk cache %s is damaged (%s); not used for the rest of this mount and "
			"deleted at unmount", d->path, what);
	d->damaged = true;
	d->failed = true;
	g_mutex_unlock(&d->lock);
}

void disk_op_free(struct op *op)
{
	if (!op)
		return;
	g_free(op->data);
	g_free(op->key);
	g_free(op->shown);
	g_free(op);
}

/* --- files ------------------------------------------------------------- */

static char *sibling(const struct disk *d, const char *suffix)
{
	return g_strconcat(d->path, suffix, NULL);
}

/* Delete the database and the files SQLite keeps beside it. */
static void discard_files(struct disk *d)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < G_N_ELEMENTS(sfx); i++) {
		char *p = sibling(d, sfx[i]);

		if (unlink(p) != 0 && errno != ENOENT)
			log_warn("disk cache: cannot delete %s: %s", p, g_strerror(errno));
		g_free(p);
	}
}

/* The directory, created 0700 with its parents (tightened if looser). */
static int make_dir(const char *dir)
{
	struct stat sb;

	if (g_mkdir_with_parents(dir, 0700) != 0)
		return -errno;
	if (stat(dir, &sb) != 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	if ((sb.st_mode & 077) && chmod(dir, 0700) != 0)
		return -errno;
	return 0;
}

/* The database file exists with mode 0600 before SQLite opens it: SQLite
 * gives its -wal and -shm files the database's mode. */
static int make_file(const char *path)
{
	struct stat sb;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) != 0)
		rc = -errno;
	else if (!S_ISREG(sb.st_mode))
		rc = -EINVAL;
	else if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Everything about the files before SQLite sees them, in one place: the
 * directory (0700), one process per cache (an flock'd lock file), and no
 * symbolic link or other non-file where the database and its companions go. */
static int open_files(struct disk *d)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char *lock;
	int rc = make_dir(d->dir);

	if (rc) {
		log_err("disk cache: cannot create %s: %s", d->dir, g_strerror(-rc));
		return rc;
	}
	lock = g_build_filename(d->dir, "cache.lock", NULL);
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	rc = d->lock_fd < 0 ? -errno : 0;
	if (rc == 0 && flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0)
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (rc == -EBUSY)
		log_warn("disk cache %s is in use by another mount of this portal; this one keeps "
			 "its cache in memory", d->dir);
	else if (rc)
		log_err("disk cache: cannot open %s: %s", lock, g_strerror(-rc));
	g_free(lock);
	for (size_t i = 0; rc == 0 && i < G_N_ELEMENTS(sfx); i++) {
		char *p = sibling(d, sfx[i]);
		struct stat sb;

		if (lstat(p, &sb) == 0 && !S_ISREG(sb.st_mode)) {
			log_err("disk cache: %s is not a regular file (%s); not using it", p,
				S_ISLNK(sb.st_mode) ? "a symbolic link" : "another kind of file");
			rc = S_ISLNK(sb.st_mode) ? -ELOOP : -EINVAL;
		}
		g_free(p);
	}
	return rc;
}

/* --- opening the database -------------------------------------------------- */

static void wclose(struct disk *d)
{
	disk_writer_finalize(d);
	sqlite3_close_v2(d->w.db);
	d->w.db = NULL;
}

/* One integer from a query; *found false when it returns no row. */
static int query_int(sqlite3 *db, const char *sql, int64_t *v, bool *found)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	*found = false;
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		*found = true;
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Whose and which format the database is, and whether it is whole. Sets *why
 * to discard it; *unclean when it was not closed cleanly (counters are then
 * recounted). Returns an SQLite result code. */
static int identify(struct disk *d, const char **why, bool *unclean)
{
	sqlite3 *db = d->w.db;
	int64_t v = 0;
	bool found;
	int rc;

	rc = query_int(db, "SELECT count(*) FROM sqlite_master", &v, &found);
	if (rc != SQLITE_OK || v == 0)
		return rc; /* empty: a new database */
	rc = query_int(db, "SELECT value FROM meta WHERE key = 'format'", &v, &found);
	if (rc == SQLITE_ERROR || (rc == SQLITE_OK && !found)) {
		*why = why_foreign; /* no meta table, or no format in it */
		return SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		return rc;
	if (v != DISK_FORMAT) {
		*why = why_format;
		return SQLITE_OK;
	}
	rc = query_int(db, "SELECT value FROM meta WHERE key = 'portal'", &v, &found);
	if (rc != SQLITE_OK)
		return rc;
	if (!found || (uint64_t)v != d->portal_id) {
		*why = why_portal;
		return SQLITE_OK;
	}
	rc = query_int(db, "SELECT value FROM meta WHERE key = 'clean'", &v, &found);
	if (rc != SQLITE_OK || (found && v == 1))
		return rc;
	/* Not closed cleanly (a crash, a kill): check the whole file. This reads
	 * every page (about 0.1 s per 100,000 records when cached), so it is not
	 * done after a clean close; damage found later while reading or writing
	 * stops the disk cache for the mount and deletes the file at unmount. */
	*unclean = true;
	{
		sqlite3_stmt *st;
		const char *res;

		rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return rc;
		rc = sqlite3_step(st);
		res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
		if (rc == SQLITE_ROW && (!res || strcmp(res, "ok") != 0)) {
			log_info("disk cache %s: quick_check: %s", d->path, res ? res : "?");
			*why = why_damaged;
		}
		if (rc == SQLITE_ROW)
			rc = SQLITE_OK;
		sqlite3_finalize(st);
	}
	return rc;
}

/* Open the writer connection and find out whether the file can be used. 0
 * with *why set to discard it, else 0 or -errno. */
static int db_connect(struct disk *d, const char **why, bool *unclean)
{
	int rc = make_file(d->path);

	if (rc) {
		log_err("disk cache: cannot create %s: %s", d->path, g_strerror(-rc));
		return rc;
	}
	rc = sqlite3_open_v2(d->path, &d->w.db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(d->w.db, 5000);
		/* auto_vacuum takes effect only on a new database, and only before
		 * journal_mode: a drop can then give its pages back (see vacuum()).
		 * A cache: a commit need not reach the platter before it returns
		 * (WAL + NORMAL loses at most the last batches on power loss, and
		 * never leaves a torn one). Its page cache is 8 MiB: writes
		 * append by key, and the memory is outside cache_mb. */
		rc = sqlite3_exec(d->w.db, "PRAGMA auto_vacuum = INCREMENTAL;"
				  " PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
				  " PRAGMA cache_size = -8192; PRAGMA journal_size_limit = 67108864",
				  NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = identify(d, why, unclean);
	if (rc == SQLITE_OK)
		return 0;
	if (is_damage(rc)) {
		/* A file of random bytes says NOTADB; a truncated one CORRUPT. */
		*why = (rc & 0xff) == SQLITE_NOTADB ? why_not_sqlite : why_damaged;
		return 0;
	}
	log_err("disk cache %s: %s", d->path, d->w.db ? sqlite3_errmsg(d->w.db) : sqlite3_errstr(rc));
	return disk_sql_errno(rc) ? disk_sql_errno(rc) : -EIO;
}

/* One attempt at opening: 0 with the database ready for the writer thread,
 * 0 with *why set (the caller discards the files and tries again), or -errno. */
static int db_open(struct disk *d, const char **why)
{
	bool unclean = false;
	int rc = db_connect(d, why, &unclean);

	if (rc == 0 && !*why)
		rc = disk_writer_init(d);
	if (rc == 0 && !*why && unclean)
		rc = disk_writer_recount(d);
	if (rc == 0 && !*why)
		rc = disk_writer_stamp(d, false);
	if (rc == 0 && !*why)
		rc = disk_writer_load(d);
	if (rc && d->damaged) {
		/* Damage the checks above did not see. */
		*why = why_damaged;
		rc = 0;
	}
	if (rc == 0 && !*why)
		return 0;
	wclose(d);
	d->damaged = d->failed = false;
	memset(&d->counts, 0, sizeof(d->counts));
	g_hash_table_remove_all(d->types);
	g_ptr_array_set_size(d->by_tid, 0);
	d->next_tid = 1;
	return rc;
}

static void dtype_free(struct dtype *t)
{
	g_free(t->name);
	g_free(t->shown);
	g_free(t);
}

/* Free everything; the writer thread has stopped (or never started). */
static void disk_free(struct disk *d)
{
	struct op *op;

	if (d->pool) {
		disk_pool_close(d);
		g_ptr_array_free(d->pool, TRUE);
	}
	if (d->w.db)
		wclose(d);
	if (d->damaged)
		discard_files(d);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	while ((op = g_queue_pop_head(&d->queue)))
		disk_op_free(op);
	if (d->pending)
		g_hash_table_destroy(d->pending);
	if (d->touches)
		g_hash_table_destroy(d->touches);
	if (d->types)
		g_hash_table_destroy(d->types);
	if (d->by_tid)
		g_ptr_array_free(d->by_tid, TRUE);
	g_mutex_clear(&d->lock);
	g_cond_clear(&d->wake);
	g_cond_clear(&d->space);
	g_cond_clear(&d->done);
	g_mutex_clear(&d->pool_lock);
	g_cond_clear(&d->pool_cond);
	g_free(d->dir);
	g_free(d->path);
	g_free(d);
}

int disk_open(const struct disk_opts *o, struct disk **out, const char **notice)
{
	struct disk *d;
	int rc;

	*out = NULL;
	if (notice)
		*notice = NULL;
	if (!o || !o->dir || !*o->dir)
		return -EINVAL;
	d = g_new0(struct disk, 1);
	d->lock_fd = -1;
	d->dir = g_strdup(o->dir);
	d->path = g_build_filename(o->dir, "cache.db", NULL);
	d->portal_id = o->portal_id;
	d->max_bytes = o->max_bytes ? o->max_bytes : (size_t)1 << 30;
	d->flush_ms = o->flush_ms > 0 ? o->flush_ms : 200;
	g_mutex_init(&d->lock);
	g_cond_init(&d->wake);
	g_cond_init(&d->space);
	g_cond_init(&d->done);
	g_mutex_init(&d->pool_lock);
	g_cond_init(&d->pool_cond);
	g_queue_init(&d->queue);
	d->pending = g_hash_table_new(disk_op_hash, disk_op_equal);
	d->touches = g_hash_table_new(g_direct_hash, g_direct_equal);
	d->types = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)dtype_free);
	d->by_tid = g_ptr_array_new();
	d->pool = g_ptr_array_new();
	d->next_tid = 1;

	rc = open_files(d);
	for (int attempt = 0; rc == 0; attempt++) {
		const char *why = NULL;

		rc = db_open(d, &why);
		if (rc || !why)
			break;
		if (attempt) { /* a file we just created is not one we can use */
			rc = -EIO;
			break;
		}
		log_info("disk cache %s: %s", d->path, why);
		discard_files(d);
		d->notice = why;
		d->discarded++;
	}
	if (rc == 0) {
		d->started = true;
		d->writer = g_thread_try_new("disk-writer", disk_writer_main, d, NULL);
		if (!d->writer)
			rc = -EAGAIN;
	}
	if (rc) {
		disk_free(d);
		return rc;
	}
	if (notice)
		*notice = d->notice;
	*out = d;
	return 0;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	g_mutex_lock(&d->lock);
	d->stopping = true;
	g_cond_signal(&d->wake);
	g_cond_broadcast(&d->space);
	g_mutex_unlock(&d->lock);
	g_thread_join(d->writer);
	d->writer = NULL;
	if (!d->failed && !d->damaged) {
		/* Marked cleanly closed, and everything in the database file (a
		 * clean close leaves no write-ahead log behind). */
		disk_pool_close(d);
		if (disk_writer_stamp(d, true) == 0)
			sqlite3_exec(d->w.db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	disk_free(d);
}

/* --- status ------------------------------------------------------------------ */

static int64_t file_size(const struct disk *d, const char *suffix)
{
	char *p = sibling(d, suffix);
	struct stat sb;
	int64_t n = stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;

	g_free(p);
	return n;
}

void disk_stats(struct disk *d, json_object *obj)
{
	json_object *o;

	if (!d)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(d->path));
	json_object_object_add(o, "file_bytes",
			       json_object_new_int64(file_size(d, "") + file_size(d, "-wal")));
	g_mutex_lock(&d->lock);
	json_object_object_add(o, "bytes", json_object_new_int64(d->counts.text_bytes));
	json_object_object_add(o, "max_bytes", json_object_new_int64((int64_t)d->max_bytes));
	json_object_object_add(o, "records", json_object_new_int64(d->counts.records));
	json_object_object_add(o, "texts", json_object_new_int64(d->counts.texts));
	json_object_object_add(o, "evicted", json_object_new_int64((int64_t)d->evicted));
	json_object_object_add(o, "discarded", json_object_new_int64((int64_t)d->discarded));
	json_object_object_add(o, "queued", json_object_new_int64(d->queue.length));
	json_object_object_add(o, "write_errors", json_object_new_int64((int64_t)d->write_errors));
	json_object_object_add(o, "failed", json_object_new_boolean(d->failed));
	g_mutex_unlock(&d->lock);
	json_object_object_add(obj, "disk", o);
}

