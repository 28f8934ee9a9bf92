/* disk.c - the cache's copy on disk: opening (and discarding what cannot be
 * used), the write queue with its index of pending writes, and reads that
 * overlay that index on what is stored. The writer thread and its SQL are in
 * disk_writer.c. See disk.h.
 */
#include "cache/disk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/record.h"
#include "client/log.h"

#define READERS_MAX 4

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
	if (!d->damaged)
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

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What the database header says before SQLite opens the file: NULL if it
 * may be used (or is empty), else why it is discarded. A truncated file is
 * caught here when no write-ahead log is pending (a clean close leaves none),
 * because the header then gives the exact size. */
static const char *check_header(const char *path, bool wal_pending)
{
	unsigned char h[100];
	struct stat sb;
	uint32_t pgsz, pages;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	const char *why = NULL;

	if (fd < 0)
		return NULL; /* absent; other errors surface when SQLite opens it */
	if (fstat(fd, &sb) != 0 || sb.st_size == 0)
		goto out;
	if (read(fd, h, sizeof(h)) != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
		why = why_not_sqlite;
		goto out;
	}
	pgsz = (uint32_t)h[16] << 8 | h[17];
	if (pgsz == 1)
		pgsz = 65536;
	if (pgsz < 512 || (pgsz & (pgsz - 1))) {
		why = why_damaged;
		goto out;
	}
	pages = be32(h + 28);
	if (!wal_pending && ((uint64_t)sb.st_size % pgsz ||
			     (pages && be32(h + 24) == be32(h + 92) &&
			      (uint64_t)sb.st_size < (uint64_t)pages * pgsz)))
		why = why_damaged;
out:
	close(fd);
	return why;
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
		log_err("disk cache %s is in use by another process", d->dir);
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

/* One attempt at opening: 0 with the writer connection open, 0 with *why set
 * (the caller discards the files and tries again), or -errno. */
static int db_open(struct disk *d, const char **why, bool *unclean)
{
	char *wal = sibling(d, "-wal");
	struct stat sb;
	int rc;

	*why = check_header(d->path, stat(wal, &sb) == 0 && sb.st_size > 0);
	g_free(wal);
	if (*why)
		return 0;
	rc = make_file(d->path);
	if (rc) {
		log_err("disk cache: cannot create %s: %s", d->path, g_strerror(-rc));
		return rc;
	}
	rc = sqlite3_open_v2(d->path, &d->w.db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(d->w.db, 5000);
		/* A cache: a commit need not reach the platter before it returns
		 * (WAL + NORMAL loses at most the last batches on power loss, and
		 * never leaves a torn one). */
		rc = sqlite3_exec(d->w.db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
				  " PRAGMA cache_size = -16384; PRAGMA journal_size_limit = 67108864",
				  NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = identify(d, why, unclean);
	if (rc != SQLITE_OK) {
		if (is_damage(rc)) {
			*why = (rc & 0xff) == SQLITE_NOTADB ? why_not_sqlite : why_damaged;
			rc = SQLITE_OK;
		} else {
			log_err("disk cache %s: %s", d->path,
				d->w.db ? sqlite3_errmsg(d->w.db) : sqlite3_errstr(rc));
		}
	}
	if (rc != SQLITE_OK || *why)
		wclose(d);
	return rc == SQLITE_OK ? 0 : (disk_sql_errno(rc) ? disk_sql_errno(rc) : -EIO);
}

static void dtype_free(struct dtype *t)
{
	g_free(t->name);
	g_free(t->shown);
	g_free(t);
}

static void rconn_close(struct rconn *c)
{
	for (size_t i = 0; i < G_N_ELEMENTS(c->st); i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	g_free(c);
}

/* Close the idle read connections (all of them: no read is running). */
static void close_pool(struct disk *d)
{
	g_mutex_lock(&d->pool_lock);
	for (guint i = 0; i < d->pool->len; i++)
		rconn_close(d->pool->pdata[i]);
	g_ptr_array_set_size(d->pool, 0);
	d->nconns = 0;
	g_mutex_unlock(&d->pool_lock);
}

/* Free everything; the writer thread has stopped (or never started). */
static void disk_free(struct disk *d)
{
	struct op *op;

	if (d->pool) {
		close_pool(d);
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

/* The pending index: one entry per record, association or blob. */
static int op_class(enum op_kind k)
{
	return k == OP_PUT || k == OP_FORGET ? 1 : k == OP_ASSOC ? 2 : k == OP_BLOB ? 3 : 0;
}

static guint op_hash(gconstpointer p)
{
	const struct op *o = p;
	uint64_t k = DISK_KEY(o->tid, o->id);

	if (op_class(o->kind) == 3)
		return g_str_hash(o->key);
	k ^= (uint64_t)o->to_tid * UINT64_C(0x9e3779b97f4a7c15);
	return (guint)(k ^ k >> 29 ^ k >> 47) * 31u + (guint)op_class(o->kind);
}

static gboolean op_equal(gconstpointer a, gconstpointer b)
{
	const struct op *x = a, *y = b;
	int c = op_class(x->kind);

	if (c != op_class(y->kind))
		return FALSE;
	if (c == 3)
		return strcmp(x->key, y->key) == 0;
	return x->tid == y->tid && x->id == y->id && (c != 2 || x->to_tid == y->to_tid);
}

int disk_open(const struct disk_opts *o, struct disk **out, const char **notice)
{
	struct disk *d;
	bool unclean = false;
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
	d->pending = g_hash_table_new(op_hash, op_equal);
	d->touches = g_hash_table_new(g_direct_hash, g_direct_equal);
	d->types = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)dtype_free);
	d->by_tid = g_ptr_array_new();
	d->pool = g_ptr_array_new();
	d->next_tid = 1;

	rc = open_files(d);
	for (int attempt = 0; rc == 0; attempt++) {
		const char *why = NULL;

		rc = db_open(d, &why, &unclean);
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
		unclean = false;
	}
	if (rc == 0)
		rc = disk_writer_init(d);
	if (rc == 0 && unclean)
		rc = disk_writer_recount(d);
	if (rc == 0)
		rc = disk_writer_stamp(d, false);
	if (rc == 0)
		rc = disk_writer_load(d);
	if (rc == 0) {
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
		close_pool(d);
		if (disk_writer_stamp(d, true) == 0)
			sqlite3_exec(d->w.db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	disk_free(d);
}

/* --- the queue ------------------------------------------------------------ */

static struct op *op_new(enum op_kind kind)
{
	struct op *op = g_new0(struct op, 1);

	op->kind = kind;
	return op;
}

/* Queue op (lock held; takes it). A write waits while the queue is full; a
 * barrier or a type row never does. Returns false if the op was dropped (the
 * cache failed or is closing). */
static bool push(struct disk *d, struct op *op, bool may_wait)
{
	while (may_wait && !d->failed && !d->stopping && d->queue.length &&
	       (d->queue.length >= DISK_QUEUE_OPS || d->queue_bytes + op->len > DISK_QUEUE_BYTES)) {
		d->space_waiters++;
		g_cond_signal(&d->wake);
		g_cond_wait(&d->space, &d->lock);
		d->space_waiters--;
	}
	if ((d->failed && op->kind != OP_NOP) || d->stopping) {
		disk_op_free(op);
		return false;
	}
	op->seq = ++d->next_seq;
	op->queued_us = g_get_monotonic_time();
	g_queue_push_tail(&d->queue, op);
	d->queue_bytes += op->len;
	if (d->queue.length == 1 || d->queue.length == DISK_BATCH_OPS ||
	    (d->queue_bytes >= DISK_BATCH_BYTES && d->queue_bytes - op->len < DISK_BATCH_BYTES))
		g_cond_signal(&d->wake);
	return true;
}

/* The latest write of a key, for reads until it is committed (lock held). */
static void index_add(struct disk *d, struct op *op)
{
	struct op *prev = g_hash_table_lookup(d->pending, op);

	if (prev && prev->kind == OP_PUT && op->kind == OP_PUT) {
		op->listed |= prev->listed;
		if (prev->ms > op->ms) {
			/* Older than the version queued before it: the writer will keep
			 * that one's text (see apply_put), so reads show it too. */
			d->queue_bytes -= op->len;
			g_free(op->data);
			op->data = g_memdup2(prev->data, prev->len + 1);
			op->len = prev->len;
			op->ms = prev->ms;
			d->queue_bytes += op->len;
		}
	}
	g_hash_table_add(d->pending, op);
}

/* A type by name; with create, a new one gets the next tid and its row is
 * queued. Lock held. NULL if unknown (or out of tids). */
static struct dtype *tget(struct disk *d, const char *name, bool create)
{
	struct dtype *t = name ? g_hash_table_lookup(d->types, name) : NULL;
	struct op *op;

	if (t || !create || !name || !*name || d->next_tid > DISK_TID_MAX)
		return t;
	t = g_new0(struct dtype, 1);
	t->tid = d->next_tid++;
	t->name = g_strdup(name);
	t->prune_before = INT64_MIN;
	g_hash_table_insert(d->types, t->name, t);
	if ((guint)t->tid >= d->by_tid->len)
		g_ptr_array_set_size(d->by_tid, t->tid + 1);
	d->by_tid->pdata[t->tid] = t;
	op = op_new(OP_TYPE);
	op->tid = t->tid;
	op->key = g_strdup(name);
	push(d, op, false);
	return t;
}

/* A type disk_type_open declared in this process: only then are its records
 * known to be rendered with the shown properties in use. Lock held. */
static struct dtype *topen(struct disk *d, const char *name)
{
	struct dtype *t = tget(d, name, false);

	return t && t->shown && !d->failed ? t : NULL;
}

int disk_flush(struct disk *d)
{
	struct op *op = op_new(OP_NOP);
	uint64_t seq;
	int rc;

	g_mutex_lock(&d->lock);
	push(d, op, false);
	seq = d->next_seq;
	if (d->flush_seq < seq)
		d->flush_seq = seq;
	g_cond_signal(&d->wake);
	while (d->applied_seq < seq && !d->stopping)
		g_cond_wait(&d->done, &d->lock);
	rc = d->failed ? -EIO : 0;
	g_mutex_unlock(&d->lock);
	return rc;
}

/* --- writes ------------------------------------------------------------- */

void disk_put_record(struct disk *d, const char *type_id, uint64_t id, const char *text,
		     size_t len, int64_t mtime_ms, bool listed, int64_t seen_ms)
{
	struct op *op;
	struct dtype *t;

	if (!d || id == 0 || id > RECORD_ID_MAX || !text)
		return;
	op = op_new(OP_PUT);
	op->id = id;
	op->data = g_malloc(len + 1);
	memcpy(op->data, text, len);
	op->data[len] = '\0';
	op->len = len;
	op->ms = mtime_ms;
	op->seen_ms = seen_ms;
	op->listed = listed;
	g_mutex_lock(&d->lock);
	t = topen(d, type_id);
	if (!t) {
		disk_op_free(op);
	} else {
		op->tid = t->tid;
		if (push(d, op, true))
			index_add(d, op);
	}
	g_mutex_unlock(&d->lock);
}

void disk_forget_record(struct disk *d, const char *type_id, uint64_t id)
{
	struct op *op;
	struct dtype *t;

	if (!d || id == 0 || id > RECORD_ID_MAX)
		return;
	op = op_new(OP_FORGET);
	op->id = id;
	g_mutex_lock(&d->lock);
	t = topen(d, type_id);
	if (!t) {
		disk_op_free(op);
	} else {
		op->tid = t->tid;
		if (push(d, op, true))
			index_add(d, op);
	}
	g_mutex_unlock(&d->lock);
}

void disk_touch_record(struct disk *d, const char *type_id, uint64_t id, int64_t now_ms)
{
	struct dtype *t;
	gpointer k, old;

	if (!d || id == 0 || id > RECORD_ID_MAX)
		return;
	g_mutex_lock(&d->lock);
	t = topen(d, type_id);
	if (t) {
		k = GSIZE_TO_POINTER((gsize)DISK_KEY(t->tid, id));
		old = g_hash_table_lookup(d->touches, k);
		if (old && (int64_t)GPOINTER_TO_SIZE(old) >= now_ms) {
			/* already as recent */
		} else if (old || g_hash_table_size(d->touches) < DISK_TOUCH_MAX) {
			if (g_hash_table_size(d->touches) == 0) {
				d->touch_first_us = g_get_monotonic_time();
				g_cond_signal(&d->wake);
			}
			g_hash_table_insert(d->touches, k, GSIZE_TO_POINTER((gsize)now_ms));
		} else {
			d->dropped_touches++; /* LRU order is approximate past this */
		}
	}
	g_mutex_unlock(&d->lock);
}

static void push_type_op(struct disk *d, const char *type_id, enum op_kind kind, int64_t ms)
{
	struct dtype *t;
	struct op *op;

	if (!d)
		return;
	g_mutex_lock(&d->lock);
	t = topen(d, type_id);
	if (t) {
		op = op_new(kind);
		op->tid = t->tid;
		op->ms = ms;
		if (push(d, op, true) && kind == OP_LISTED) {
			GHashTableIter it;
			gpointer k;

			/* Until it is applied, stored rows it will remove are hidden;
			 * queued puts it will remove are forgotten by the index. */
			t->prune_seq = op->seq;
			if (ms > t->prune_before)
				t->prune_before = ms;
			g_hash_table_iter_init(&it, d->pending);
			while (g_hash_table_iter_next(&it, &k, NULL)) {
				struct op *p = k;

				if (p->kind == OP_PUT && p->tid == t->tid && p->seen_ms < ms)
					g_hash_table_iter_remove(&it);
			}
		}
	}
	g_mutex_unlock(&d->lock);
}

void disk_type_synced(struct disk *d, const char *type_id, int64_t sync_wall_ms)
{
	push_type_op(d, type_id, OP_SYNCED, sync_wall_ms);
}

void disk_listing_complete(struct disk *d, const char *type_id, int64_t started_ms)
{
	push_type_op(d, type_id, OP_LISTED, started_ms);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void disk_put_assoc(struct disk *d, const char *from_type, uint64_t id, const char *to_type,
		    const uint64_t *ids, size_t n, int64_t seen_ms)
{
	struct dtype *f, *t;
	struct op *op;
	uint64_t *v;

	if (!d || id == 0 || id > RECORD_ID_MAX || (n && !ids))
		return;
	op = op_new(OP_ASSOC);
	op->id = id;
	op->seen_ms = seen_ms;
	op->len = n * sizeof(uint64_t);
	op->data = g_malloc(op->len + 1);
	v = (uint64_t *)(void *)op->data;
	memcpy(v, ids, op->len);
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		v[i] = GUINT64_TO_LE(v[i]);
	g_mutex_lock(&d->lock);
	f = d->failed ? NULL : tget(d, from_type, true);
	t = d->failed ? NULL : tget(d, to_type, true);
	if (!f || !t) {
		disk_op_free(op);
	} else {
		op->tid = f->tid;
		op->to_tid = t->tid;
		if (push(d, op, true))
			index_add(d, op);
	}
	g_mutex_unlock(&d->lock);
}

void disk_put_blob(struct disk *d, const char *key, const char *text, size_t len, int64_t seen_ms)
{
	struct op *op;

	if (!d || !key || !*key || !text)
		return;
	op = op_new(OP_BLOB);
	op->key = g_strdup(key);
	op->data = g_malloc(len + 1);
	memcpy(op->data, text, len);
	op->data[len] = '\0';
	op->len = len;
	op->seen_ms = seen_ms;
	g_mutex_lock(&d->lock);
	if (push(d, op, true))
		index_add(d, op);
	g_mutex_unlock(&d->lock);
}

/* The type whose account data a blob key holds ("schema:0-1" -> 0-1), or
 * NULL. Lock held. */
static struct dtype *blob_type(struct disk *d, const char *key)
{
	const char *c = strrchr(key, ':');

	return c ? tget(d, c + 1, false) : NULL;
}

/* Whether a queued op writes something of type t (NULL: of any type; with
 * records_only, only the type's records and marks). */
static bool op_of(struct disk *d, const struct op *o, const struct dtype *t, bool records_only)
{
	switch (o->kind) {
	case OP_TYPE:
	case OP_NOP:
		return false;
	case OP_ASSOC:
		return !records_only && (!t || o->tid == t->tid || o->to_tid == t->tid);
	case OP_BLOB:
		return !records_only && (!t || blob_type(d, o->key) == t);
	case OP_DROP_ALL:
		return !t;
	default:
		return !t || o->tid == t->tid;
	}
}

/* Queue a drop of t (NULL: everything). Writes queued before it need not be
 * applied, and reads stop seeing them and what is stored at once. Lock held. */
static void drop_locked(struct disk *d, struct dtype *t, bool records_only)
{
	struct op *op = op_new(t ? OP_DROP : OP_DROP_ALL);
	GHashTableIter it;
	gpointer k, v;

	if (t) {
		op->tid = t->tid;
		op->key = g_strdup(t->name);
		op->records_only = records_only;
	}
	if (!push(d, op, true))
		return;
	for (GList *l = d->queue.head; l; l = l->next) {
		struct op *o = l->data;

		if (o != op && !o->cancelled && op_of(d, o, t, records_only)) {
			o->cancelled = true;
			d->queue_bytes -= o->len;
			g_free(o->data);
			o->data = NULL;
			o->len = 0;
		}
	}
	g_hash_table_iter_init(&it, d->pending);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (op_of(d, k, t, records_only))
			g_hash_table_iter_remove(&it);
	g_hash_table_iter_init(&it, d->types);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct dtype *x = v;

		if (!t || x == t) {
			x->prune_seq = 0;
			x->prune_before = INT64_MIN;
		}
	}
	if (t)
		t->drop_seq = op->seq;
	else
		d->drop_all_seq = op->seq;
}

void disk_drop(struct disk *d, const char *type_id)
{
	struct dtype *t = NULL;

	if (!d)
		return;
	g_mutex_lock(&d->lock);
	if (type_id)
		t = tget(d, type_id, true);
	if (t || !type_id)
		drop_locked(d, t, false);
	g_mutex_unlock(&d->lock);
}

/* --- reads ---------------------------------------------------------------- */

enum rstmt { R_REC, R_LIST, R_ASSOC, R_BLOB, R_TYPE, R_COUNT };

static const char *const rsql[] = {
	[R_REC] = "SELECT r.mtime, r.seen, t.text FROM recs r JOIN texts t ON t.k = r.k"
		  " WHERE r.k = ?1",
	[R_LIST] = "SELECT k, size, mtime, seen FROM recs WHERE k BETWEEN ?1 AND ?2 AND listed"
		   " ORDER BY k",
	[R_ASSOC] = "SELECT seen, ids FROM assocs WHERE k = ?1 AND to_tid = ?2",
	[R_BLOB] = "SELECT seen, text FROM blobs WHERE key = ?1",
	[R_TYPE] = "SELECT shown, sync_ms, relist_ms, complete FROM types WHERE tid = ?1",
	[R_COUNT] = "SELECT count(*) FROM recs WHERE k BETWEEN ?1 AND ?2 AND listed",
};

/* A read connection from the pool (opened when none is idle, up to
 * READERS_MAX). NULL if one cannot be opened. */
static struct rconn *conn_get(struct disk *d)
{
	struct rconn *c = NULL;
	int rc;

	g_mutex_lock(&d->pool_lock);
	while (!d->pool->len && d->nconns >= READERS_MAX)
		g_cond_wait(&d->pool_cond, &d->pool_lock);
	if (d->pool->len)
		c = g_ptr_array_steal_index_fast(d->pool, d->pool->len - 1);
	else
		d->nconns++;
	g_mutex_unlock(&d->pool_lock);
	if (c)
		return c;

	c = g_new0(struct rconn, 1);
	rc = sqlite3_open_v2(d->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(c->db, 5000);
		rc = sqlite3_exec(c->db, "PRAGMA query_only = 1; PRAGMA cache_size = -4096",
				  NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		return c;
	log_err("disk cache %s: cannot open a reader: %s", d->path,
		c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
	rconn_close(c);
	g_mutex_lock(&d->pool_lock);
	d->nconns--;
	g_cond_signal(&d->pool_cond);
	g_mutex_unlock(&d->pool_lock);
	return NULL;
}

static void conn_put(struct disk *d, struct rconn *c)
{
	g_mutex_lock(&d->pool_lock);
	g_ptr_array_add(d->pool, c);
	g_cond_signal(&d->pool_cond);
	g_mutex_unlock(&d->pool_lock);
}

static sqlite3_stmt *R(struct disk *d, struct rconn *c, enum rstmt which)
{
	sqlite3_stmt **st = &c->st[which];

	if (!*st) {
		int rc = sqlite3_prepare_v3(c->db, rsql[which], -1, SQLITE_PREPARE_PERSISTENT, st,
					    NULL);

		if (rc != SQLITE_OK) {
			log_err("disk cache %s: %s", d->path, sqlite3_errmsg(c->db));
			disk_note_damage(d, rc, "prepare");
			return NULL;
		}
	}
	return *st;
}

/* A read step failed: -EIO (and the file is noted as damaged if it is). */
static int rfail(struct disk *d, struct rconn *c, int rc)
{
	log_err("disk cache %s: read: %s", d->path, sqlite3_errmsg(c->db));
	disk_note_damage(d, rc, "read");
	return -EIO;
}

int disk_get_record(struct disk *d, const char *type_id, uint64_t id, char **text, size_t *len,
		    int64_t *mtime_ms)
{
	struct op probe = { .kind = OP_PUT, .id = id }, *p;
	int64_t before = INT64_MIN;
	struct rconn *c;
	sqlite3_stmt *st;
	struct dtype *t;
	int rc;

	g_mutex_lock(&d->lock);
	t = topen(d, type_id);
	if (!t) {
		g_mutex_unlock(&d->lock);
		return -ENOENT;
	}
	probe.tid = t->tid;
	p = g_hash_table_lookup(d->pending, &probe);
	if (p) {
		rc = -ENOENT;
		if (p->kind == OP_PUT) {
			*text = g_memdup2(p->data, p->len + 1);
			*len = p->len;
			*mtime_ms = p->ms;
			rc = 0;
		}
		g_mutex_unlock(&d->lock);
		return rc;
	}
	if (d->drop_all_seq || t->drop_seq) {
		g_mutex_unlock(&d->lock);
		return -ENOENT;
	}
	if (t->prune_seq)
		before = t->prune_before;
	g_mutex_unlock(&d->lock);

	c = conn_get(d);
	if (!c)
		return -EIO;
	st = R(d, c, R_REC);
	rc = -EIO;
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY(probe.tid, id));
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) >= before) {
			const void *b = sqlite3_column_blob(st, 2);
			int n = sqlite3_column_bytes(st, 2);

			*text = g_malloc((size_t)n + 1);
			if (n)
				memcpy(*text, b, (size_t)n);
			(*text)[n] = '\0';
			*len = (size_t)n;
			*mtime_ms = sqlite3_column_int64(st, 0);
			rc = 0;
		} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
			rc = -ENOENT;
		} else {
			rc = rfail(d, c, rc);
		}
		sqlite3_reset(st);
	}
	conn_put(d, c);
	return rc;
}

/* A queued write of a listed record, as the listing sees it. */
struct pend {
	bool forget, listed;
	uint64_t size;
	int64_t mtime_ms;
};

static gint cmp_lent(gconstpointer a, gconstpointer b)
{
	uint64_t x = ((const struct disk_lent *)a)->id, y = ((const struct disk_lent *)b)->id;

	return x < y ? -1 : x > y;
}

int disk_listing_load(struct disk *d, const char *type_id, GArray **out)
{
	GHashTable *ovl = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	int64_t before = INT64_MIN;
	bool hidden, added = false;
	GHashTableIter it;
	gpointer k, v;
	struct rconn *c = NULL;
	sqlite3_stmt *st;
	struct dtype *t;
	GArray *a = NULL;
	guint hint;
	int tid, rc = 0;

	*out = NULL;
	g_mutex_lock(&d->lock);
	t = topen(d, type_id);
	if (!t) {
		g_mutex_unlock(&d->lock);
		g_hash_table_destroy(ovl);
		return -EIO;
	}
	tid = t->tid;
	hidden = d->drop_all_seq || t->drop_seq;
	if (t->prune_seq)
		before = t->prune_before;
	hint = (guint)MIN(t->listed_hint, (uint64_t)G_MAXUINT / 2);
	g_hash_table_iter_init(&it, d->pending);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		struct op *p = k;
		struct pend *e;

		if (op_class(p->kind) != 1 || p->tid != tid)
			continue;
		e = g_new(struct pend, 1);
		e->forget = p->kind == OP_FORGET;
		e->listed = p->listed;
		e->size = p->len;
		e->mtime_ms = p->ms;
		g_hash_table_insert(ovl, GSIZE_TO_POINTER((gsize)p->id), e);
	}
	g_mutex_unlock(&d->lock);

	a = g_array_sized_new(FALSE, FALSE, sizeof(struct disk_lent), hint + g_hash_table_size(ovl));
	if (!hidden) {
		c = conn_get(d);
		st = c ? R(d, c, R_LIST) : NULL;
		rc = st ? 0 : -EIO;
		if (st) {
			sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY_LO(tid));
			sqlite3_bind_int64(st, 2, (int64_t)DISK_KEY_HI(tid));
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				struct disk_lent e;
				struct pend *p;

				if (sqlite3_column_int64(st, 3) < before)
					continue; /* a queued complete listing removes it */
				e.id = DISK_KEY_ID((uint64_t)sqlite3_column_int64(st, 0));
				e.size = (uint64_t)sqlite3_column_int64(st, 1);
				e.mtime_ms = sqlite3_column_int64(st, 2);
				p = g_hash_table_size(ovl) ?
				    g_hash_table_lookup(ovl, GSIZE_TO_POINTER((gsize)e.id)) : NULL;
				if (p) {
					bool keep = !p->forget;

					e.size = p->size;
					e.mtime_ms = p->mtime_ms;
					g_hash_table_remove(ovl, GSIZE_TO_POINTER((gsize)e.id));
					if (!keep)
						continue;
				}
				g_array_append_val(a, e);
			}
			rc = rc == SQLITE_DONE ? 0 : rfail(d, c, rc);
			sqlite3_reset(st);
		}
		if (c)
			conn_put(d, c);
	}
	/* Queued records the stored listing does not hold yet. */
	g_hash_table_iter_init(&it, ovl);
	while (rc == 0 && g_hash_table_iter_next(&it, &k, &v)) {
		struct pend *p = v;
		struct disk_lent e = { (uint64_t)GPOINTER_TO_SIZE(k), p->size, p->mtime_ms };

		if (p->forget || !p->listed)
			continue;
		g_array_append_val(a, e);
		added = true;
	}
	g_hash_table_destroy(ovl);
	if (rc) {
		g_array_unref(a);
		return rc;
	}
	if (added)
		g_array_sort(a, cmp_lent);
	*out = a;
	return 0;
}

int disk_get_assoc(struct disk *d, const char *from_type, uint64_t id, const char *to_type,
		   uint64_t **ids, size_t *n, int64_t *seen_ms)
{
	struct op probe = { .kind = OP_ASSOC, .id = id }, *p;
	struct dtype *f, *t;
	struct rconn *c;
	sqlite3_stmt *st;
	const void *b;
	size_t len;
	int rc;

	g_mutex_lock(&d->lock);
	f = d->failed ? NULL : tget(d, from_type, false);
	t = d->failed ? NULL : tget(d, to_type, false);
	if (!f || !t) {
		g_mutex_unlock(&d->lock);
		return -ENOENT;
	}
	probe.tid = f->tid;
	probe.to_tid = t->tid;
	p = g_hash_table_lookup(d->pending, &probe);
	if (p) {
		len = p->len;
		*ids = g_malloc(len ? len : 1);
		memcpy(*ids, p->data, len);
		*seen_ms = p->seen_ms;
		g_mutex_unlock(&d->lock);
		goto out_decode;
	}
	if (d->drop_all_seq || f->drop_seq || t->drop_seq) {
		g_mutex_unlock(&d->lock);
		return -ENOENT;
	}
	g_mutex_unlock(&d->lock);

	c = conn_get(d);
	if (!c)
		return -EIO;
	st = R(d, c, R_ASSOC);
	rc = -EIO;
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY(probe.tid, id));
		sqlite3_bind_int(st, 2, probe.to_tid);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*seen_ms = sqlite3_column_int64(st, 0);
			b = sqlite3_column_blob(st, 1);
			len = (size_t)sqlite3_column_bytes(st, 1) / sizeof(uint64_t) * sizeof(uint64_t);
			*ids = g_malloc(len ? len : 1);
			if (len)
				memcpy(*ids, b, len);
			rc = 0;
		} else {
			rc = rc == SQLITE_DONE ? -ENOENT : rfail(d, c, rc);
		}
		sqlite3_reset(st);
	}
	conn_put(d, c);
	if (rc)
		return rc;
out_decode:
	*n = len / sizeof(uint64_t);
	for (size_t i = 0; i < *n; i++)
		(*ids)[i] = GUINT64_FROM_LE((*ids)[i]);
	return 0;
}

int disk_get_blob(struct disk *d, const char *key, char **text, size_t *len, int64_t *seen_ms)
{
	struct op probe = { .kind = OP_BLOB, .key = (char *)key }, *p;
	struct dtype *t;
	struct rconn *c;
	sqlite3_stmt *st;
	int rc;

	if (!key)
		return -ENOENT;
	g_mutex_lock(&d->lock);
	p = d->failed ? NULL : g_hash_table_lookup(d->pending, &probe);
	if (p) {
		*text = g_memdup2(p->data, p->len + 1);
		*len = p->len;
		*seen_ms = p->seen_ms;
		g_mutex_unlock(&d->lock);
		return 0;
	}
	t = blob_type(d, key);
	if (d->failed || d->drop_all_seq || (t && t->drop_seq)) {
		g_mutex_unlock(&d->lock);
		return -ENOENT;
	}
	g_mutex_unlock(&d->lock);

	c = conn_get(d);
	if (!c)
		return -EIO;
	st = R(d, c, R_BLOB);
	rc = -EIO;
	if (st) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const void *b = sqlite3_column_blob(st, 1);
			int n = sqlite3_column_bytes(st, 1);

			*seen_ms = sqlite3_column_int64(st, 0);
			*text = g_malloc((size_t)n + 1);
			if (n)
				memcpy(*text, b, (size_t)n);
			(*text)[n] = '\0';
			*len = (size_t)n;
			rc = 0;
		} else {
			rc = rc == SQLITE_DONE ? -ENOENT : rfail(d, c, rc);
		}
		sqlite3_reset(st);
	}
	conn_put(d, c);
	return rc;
}

/* --- types ------------------------------------------------------------------ */

/* The stored row of a type and its listed count. 0, or -errno. */
static int type_row(struct disk *d, int tid, char **shown, struct disk_type *ty)
{
	struct rconn *c = conn_get(d);
	sqlite3_stmt *st;
	int rc = -EIO;

	*shown = NULL;
	memset(ty, 0, sizeof(*ty));
	if (!c)
		return -EIO;
	st = R(d, c, R_TYPE);
	if (st) {
		sqlite3_bind_int(st, 1, tid);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *s = (const char *)sqlite3_column_text(st, 0);

			*shown = g_strdup(s);
			ty->sync_wall_ms = sqlite3_column_int64(st, 1);
			ty->relist_wall_ms = sqlite3_column_int64(st, 2);
			ty->complete = sqlite3_column_int(st, 3) != 0;
		}
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rfail(d, c, rc);
		sqlite3_reset(st);
	}
	st = rc == 0 ? R(d, c, R_COUNT) : NULL;
	if (st) {
		sqlite3_bind_int64(st, 1, (int64_t)DISK_KEY_LO(tid));
		sqlite3_bind_int64(st, 2, (int64_t)DISK_KEY_HI(tid));
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			ty->listed = (uint64_t)sqlite3_column_int64(st, 0);
		rc = rc == SQLITE_ROW ? 0 : rfail(d, c, rc);
		sqlite3_reset(st);
	} else if (rc == 0) {
		rc = -EIO;
	}
	conn_put(d, c);
	if (rc) {
		g_free(*shown);
		*shown = NULL;
	}
	return rc;
}

int disk_type_open(struct disk *d, const char *type_id, const char *shown_csv,
		   struct disk_type *st, bool *dropped)
{
	struct disk_type ty;
	struct dtype *t;
	char *stored = NULL;
	int tid, rc;

	*dropped = false;
	memset(st, 0, sizeof(*st));
	if (!type_id || !*type_id || !shown_csv)
		return -EINVAL;
	g_mutex_lock(&d->lock);
	t = d->failed ? NULL : tget(d, type_id, true);
	tid = t ? t->tid : 0;
	g_mutex_unlock(&d->lock);
	if (!t)
		return -EIO;
	/* What is stored, once every queued write is applied. */
	rc = disk_flush(d);
	if (rc == 0)
		rc = type_row(d, tid, &stored, &ty);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	if (!stored || strcmp(stored, shown_csv) != 0) {
		struct op *op = op_new(OP_TYPE);

		op->tid = tid;
		op->key = g_strdup(type_id);
		op->shown = g_strdup(shown_csv);
		g_mutex_lock(&d->lock);
		if (stored) {
			/* Records rendered with other properties are of no use (its
			 * associations and account data still are). */
			drop_locked(d, t, true);
			*dropped = true;
			memset(&ty, 0, sizeof(ty));
		}
		push(d, op, false);
		g_mutex_unlock(&d->lock);
		rc = disk_flush(d);
	}
	g_free(stored);
	if (rc)
		return rc;
	g_mutex_lock(&d->lock);
	g_free(t->shown);
	t->shown = g_strdup(shown_csv);
	t->listed_hint = ty.listed;
	g_mutex_unlock(&d->lock);
	*st = ty;
	return 0;
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
	json_object *o = json_object_new_object();

	if (!d) {
		json_object_put(o);
		return;
	}
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
