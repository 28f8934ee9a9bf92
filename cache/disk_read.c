/* disk_read.c - the disk cache's reads: a small pool of read connections
 * (WAL lets them read while the writer writes), and every read overlaid with
 * the queued writes it must see. Also disk_type_open. See disk.h.
 */
#include "cache/disk_int.h"

#include <errno.h>
#include <string.h>

#include "cache/model/record.h"
#include "client/log.h"

#define READERS_MAX 4

static void rconn_close(struct rconn *c)
{
	for (size_t i = 0; i < G_N_ELEMENTS(c->st); i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	g_free(c);
}

void disk_pool_close(struct disk *d)
{
	g_mutex_lock(&d->pool_lock);
	for (guint i = 0; i < d->pool->len; i++)
		rconn_close(d->pool->pdata[i]);
	g_ptr_array_set_size(d->pool, 0);
	d->nconns = 0;
	g_mutex_unlock(&d->pool_lock);
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

	if (id == 0 || id > RECORD_ID_MAX)
		return -ENOENT;
	g_mutex_lock(&d->lock);
	t = disk_topen(d, type_id);
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
	t = disk_topen(d, type_id);
	if (!t) {
		g_mutex_unlock(&d->lock);
		g_hash_table_destroy(ovl);
		return -EIO;
	}
	tid = t->tid;
	hidden = d->drop_all_seq || t->drop_seq;
	if (t->prune_seq)
		before = t->prune_before;
	hint = hidden ? 0 : (guint)MIN(t->listed_hint, (uint64_t)G_MAXUINT / 2);
	g_hash_table_iter_init(&it, d->pending);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		struct op *p = k;
		struct pend *e;

		if (disk_op_class(p->kind) != 1 || p->tid != tid)
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

	if (id == 0 || id > RECORD_ID_MAX)
		return -ENOENT;
	g_mutex_lock(&d->lock);
	f = d->failed ? NULL : disk_tget(d, from_type, false);
	t = d->failed ? NULL : disk_tget(d, to_type, false);
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
	t = disk_blob_type(d, key);
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
	t = d->failed ? NULL : disk_tget(d, type_id, true);
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
		struct op *op = disk_op_new(OP_TYPE);

		op->tid = tid;
		op->key = g_strdup(type_id);
		op->shown = g_strdup(shown_csv);
		g_mutex_lock(&d->lock);
		if (stored) {
			/* Records rendered with other properties are of no use (its
			 * associations and account data still are). */
			disk_drop_locked(d, t, true);
			*dropped = true;
			memset(&ty, 0, sizeof(ty));
		}
		disk_push(d, op, false);
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

