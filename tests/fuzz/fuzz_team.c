/* fuzz_team - what a mount does with a message on its team's change feed
 * (client/team_msg.h): anyone who can publish on the Redis channel can send
 * any bytes.
 *
 * Input: the message, as published.
 *
 * Invariants:
 *   - team_msg_decode() returns -EINVAL (and delivers nothing) or the number
 *     of changes it delivered (never more than TEAM_MSG_MAX_CHANGES);
 *   - every delivered change passes team_change_check(), has NUL-terminated
 *     strings within their fields and a non-empty origin;
 *   - the delivered changes encode (team_msg_encode(), within TEAM_MSG_MAX)
 *     and decode back to exactly the same changes, nothing skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client/team.h"
#include "client/team_msg.h"
#include "tests/fuzz/fuzz_common.h"

struct got {
	struct team_change v[TEAM_MSG_MAX_CHANGES];
	size_t n;
};

static void collect(void *ud, const struct team_change *ch)
{
	struct got *g = ud;

	FUZZ_CHECK(g->n < TEAM_MSG_MAX_CHANGES, "more than %d changes delivered", TEAM_MSG_MAX_CHANGES);
	g->v[g->n++] = *ch;
}

static bool same(const struct team_change *a, const struct team_change *b)
{
	return a->kind == b->kind && strcmp(a->type, b->type) == 0 && a->id == b->id &&
	       a->updated_ms == b->updated_ms && strcmp(a->to_type, b->to_type) == 0 &&
	       a->to_id == b->to_id && a->removed == b->removed && strcmp(a->origin, b->origin) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct got g1, g2;
	size_t skipped = 0, skipped2 = 0;
	char *text = NULL;
	int n, rc;

	g1.n = 0;
	n = team_msg_decode((const char *)data, size, collect, &g1, &skipped);
	if (n < 0) {
		FUZZ_CHECK(n == -EINVAL && g1.n == 0, "refusal %d after %zu changes", n, g1.n);
		return 0;
	}
	FUZZ_CHECK((size_t)n == g1.n, "returned %d, delivered %zu", n, g1.n);
	FUZZ_CHECK(size <= TEAM_MSG_MAX, "took %zu bytes", size);
	for (size_t i = 0; i < g1.n; i++) {
		const struct team_change *c = &g1.v[i];

		FUZZ_CHECK(memchr(c->type, 0, sizeof(c->type)) && memchr(c->to_type, 0, sizeof(c->to_type)) &&
			   memchr(c->origin, 0, sizeof(c->origin)), "unterminated string");
		FUZZ_CHECK(team_change_check(c) == 0, "change %zu (kind %d, type %s) fails the check",
			   i, c->kind, c->type);
		FUZZ_CHECK(c->origin[0], "empty origin");
	}
	if (g1.n == 0)
		return 0;
	rc = team_msg_encode(g1.v[0].origin, g1.v, g1.n, &text);
	FUZZ_CHECK(rc == 0 && text, "re-encoding %zu changes: %d", g1.n, rc);
	FUZZ_CHECK(strlen(text) <= TEAM_MSG_MAX, "encoded %zu bytes", strlen(text));
	g2.n = 0;
	rc = team_msg_decode(text, strlen(text), collect, &g2, &skipped2);
	FUZZ_CHECK(rc == n && skipped2 == 0, "round trip: %d of %d, %zu skipped (%s)", rc, n, skipped2,
		   text);
	for (size_t i = 0; i < g1.n; i++)
		FUZZ_CHECK(same(&g1.v[i], &g2.v[i]), "round trip changed change %zu: %s", i, text);
	free(text);
	return 0;
}
