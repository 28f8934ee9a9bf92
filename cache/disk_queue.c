/* disk_queue.c - the disk cache's queue of writes: bounded (a writer waits
 * while it is full), indexed by record, association and blob so that reads
 * see what is queued, and cancelled in place by a drop. See disk.h.
 */
#include "cache/disk_int.h"

#include <errno.h>
#include <string.h>

#include "cache/model/record.h"

/* The pending index: one entry per record, association or blob. */
int disk_op_class(enum op_kind k)
{
	return k == OP_PUT || k == OP_FORGET ? 1 : k == OP_ASSOC ? 2 : k == OP_BLOB ? 3 : 0;
}

guint disk_op_hash(gconstpointer p)
{
	const struct op *o = p;
	uint64_t k = DISK_KEY(o->tid, o->id);

	if (disk_op_class(o->kind) == 3)
		return g_str_hash(o->key);
	k ^= (uint64_t)o->to_tid * UINT64_C(0x9e3779b97f4a7c15);
	return (guint)(k ^ k >> 29 ^ k >> 47) * 31u + (guint)disk_op_class(o->kind);
}

gboolean disk_op_equal(gconstpointer a, gconstpointer b)
{
	const struct op *x = a, *y = b;
	int c = disk_op_class(x->kind);

	if (c != disk_op_class(y->kind))
		return FALSE;
	if (c == 3)
		return strcmp(x->key, y->key) == 0;
	return x->tid == y->tid && x->id == y->id && (c != 2 || x->to_tid == y->to_tid);
}

/* --- the queue ------------------------------------------------------------ */

struct op *disk_op_new(enum op_kind kind)
{
	struct op *op = g_new0(struct op, 1);

	op->kind = kind;
	return op;
}

bool disk_push(struct disk *d, struct op *op, bool may_wait)
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

struct dtype *disk_tget(struct disk *d, const char *name, bool create)
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
	op = disk_op_new(OP_TYPE);
	op->tid = t->tid;
	op->key = g_strdup(name);
	disk_push(d, op, false);
	return t;
}

struct dtype *disk_topen(struct disk *d, const char *name)
{
	struct dtype *t = disk_tget(d, name, false);

	return t && t->shown && !d->failed ? t : NULL;
}

int disk_flush(struct disk *d)
{
	struct op *op = disk_op_new(OP_NOP);
	uint64_t seq;
	int rc;

	g_mutex_lock(&d->lock);
	disk_push(d, op, false);
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
	op = disk_op_new(OP_PUT);
	op->id = id;
	op->data = g_malloc(len + 1);
	memcpy(op->data, text, len);
	op->data[len] = '\0';
	op->len = len;
	op->ms = mtime_ms;
	op->seen_ms = seen_ms;
	op->listed = listed;
	g_mutex_lock(&d->lock);
	t = disk_topen(d, type_id);
	if (!t) {
		disk_op_free(op);
	} else {
		op->tid = t->tid;
		if (disk_push(d, op, true))
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
	op = disk_op_new(OP_FORGET);
	op->id = id;
	g_mutex_lock(&d->lock);
	t = disk_topen(d, type_id);
	if (!t) {
		disk_op_free(op);
	} else {
		op->tid = t->tid;
		if (disk_push(d, op, true))
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
	t = disk_topen(d, type_id);
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
	t = disk_topen(d, type_id);
	if (t) {
		op = disk_op_new(kind);
		op->tid = t->tid;
		op->ms = ms;
		if (disk_push(d, op, true) && kind == OP_LISTED) {
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
	op = disk_op_new(OP_ASSOC);
	op->id = id;
	op->seen_ms = seen_ms;
	op->len = n * sizeof(uint64_t);
	op->data = g_malloc(op->len + 1);
	v = (uint64_t *)(void *)op->data;
	if (n) {
		memcpy(v, ids, op->len);
		qsort(v, n, sizeof(*v), cmp_u64);
	}
	for (size_t i = 0; i < n; i++)
		v[i] = GUINT64_TO_LE(v[i]);
	g_mutex_lock(&d->lock);
	f = d->failed ? NULL : disk_tget(d, from_type, true);
	t = d->failed ? NULL : disk_tget(d, to_type, true);
	if (!f || !t) {
		disk_op_free(op);
	} else {
		op->tid = f->tid;
		op->to_tid = t->tid;
		if (disk_push(d, op, true))
			index_add(d, op);
	}
	g_mutex_unlock(&d->lock);
}

void disk_put_blob(struct disk *d, const char *key, const char *text, size_t len, int64_t seen_ms)
{
	struct op *op;

	if (!d || !key || !*key || !text)
		return;
	op = disk_op_new(OP_BLOB);
	op->key = g_strdup(key);
	op->data = g_malloc(len + 1);
	memcpy(op->data, text, len);
	op->data[len] = '\0';
	op->len = len;
	op->seen_ms = seen_ms;
	g_mutex_lock(&d->lock);
	if (disk_push(d, op, true))
		index_add(d, op);
	g_mutex_unlock(&d->lock);
}

struct dtype *disk_blob_type(struct disk *d, const char *key)
{
	const char *c = strrchr(key, ':');

	return c ? disk_tget(d, c + 1, false) : NULL;
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
		return !records_only && (!t || disk_blob_type(d, o->key) == t);
	case OP_DROP_ALL:
		return !t;
	default:
		return !t || o->tid == t->tid;
	}
}

/* Writes queued before a drop need not be applied, and reads stop seeing them
 * and what is stored at once. */
void disk_drop_locked(struct disk *d, struct dtype *t, bool records_only)
{
	struct op *op = disk_op_new(t ? OP_DROP : OP_DROP_ALL);
	GHashTableIter it;
	gpointer k, v;

	if (t) {
		op->tid = t->tid;
		op->key = g_strdup(t->name);
		op->records_only = records_only;
	}
	if (!disk_push(d, op, true))
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
		t = disk_tget(d, type_id, true);
	if (t || !type_id)
		disk_drop_locked(d, t, false);
	g_mutex_unlock(&d->lock);
}

