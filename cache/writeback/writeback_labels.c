/* writeback_labels.c - labeled association writes: what a journal row of a
 * label says, and which of them must wait for a removal queued before them.
 *
 * A label row is an assoc_add or assoc_del row whose props are
 * {"types": [{"associationCategory", "associationTypeId"}], "label": "…"}:
 * the add goes out through batch/create (which makes the association, with
 * its unlabeled type, when it is not there yet), the removal through
 * batch/labels/archive (the association and its other types stay). Rows
 * without props are the default add (batch/associate/default) and the
 * removal of every type (batch/archive).
 */
#include "cache/writeback/writeback_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cache/model/json_util.h"
#include "cache/writeback/journal.h"

bool wb_label_of(const struct jop *op, int *type_id, const char **category, const char **label)
{
	json_object *types, *t, *v;

	if ((op->kind != JOP_ASSOC_ADD && op->kind != JOP_ASSOC_DEL) || !op->props ||
	    !json_object_object_get_ex(op->props, "types", &types) ||
	    json_util_array_len(types) != 1)
		return false;
	t = json_object_array_get_idx(types, 0);
	if (!json_object_object_get_ex(t, "associationTypeId", &v) ||
	    !json_object_is_type(v, json_type_int))
		return false;
	if (type_id)
		*type_id = json_object_get_int(v);
	if (category)
		*category = json_util_field(t, "associationCategory");
	if (label)
		*label = json_util_field(op->props, "label");
	return true;
}

json_object *wb_label_types(const struct jop *op)
{
	json_object *types = NULL;

	if (op->props)
		json_object_object_get_ex(op->props, "types", &types);
	return types;
}

static char *pair_key(uint64_t a, uint64_t b)
{
	return g_strdup_printf("%" PRIu64 ":%" PRIu64, a, b);
}

/* Lock held. */
GHashTable *wb_removals(struct writeback *wb, const struct objtype *type,
			const struct objtype *to_type)
{
	GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	unsigned states = JS_MASK(JS_PENDING) | JS_MASK(JS_IN_FLIGHT) | JS_MASK(JS_IN_DOUBT);

	for (int side = 0; side < 2; side++) {
		const struct objtype *a = side ? to_type : type, *b = side ? type : to_type;
		GPtrArray *rows = NULL;

		if (journal_list(wb->j, states, JOP_ASSOC_DEL, a->id, 0, 0, &rows) != 0)
			continue;
		for (guint i = 0; i < rows->len; i++) {
			const struct jop *op = rows->pdata[i];
			char *k;
			gpointer old;

			if (op->props || strcmp(op->to_type, b->id) != 0)
				continue;
			k = side ? pair_key(op->to_id, op->id) : pair_key(op->id, op->to_id);
			old = g_hash_table_lookup(out, k);
			if (!old || GPOINTER_TO_SIZE(old) > (gsize)op->seq)
				g_hash_table_insert(out, k, GSIZE_TO_POINTER((gsize)op->seq));
			else
				g_free(k);
		}
		g_ptr_array_unref(rows);
	}
	return out;
}

bool wb_label_waits(GHashTable *removals, const struct jop *op)
{
	g_autofree char *k = pair_key(op->id, op->to_id);
	gpointer seq = g_hash_table_lookup(removals, k);

	return seq && (int64_t)GPOINTER_TO_SIZE(seq) < op->seq;
}
