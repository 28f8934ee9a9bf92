/* team_msg.h - the team change feed's message format (client/team.h).
 *
 * One message is a JSON object published on the team's Redis channel:
 *   {"v": 1, "origin": "<mount id>", "changes": [
 *     {"kind": "update", "type": "contacts", "id": "123", "updated": 1700000000000},
 *     {"kind": "assoc", "type": "contacts", "id": "1", "to_type": "companies",
 *      "to_id": "2", "removed": false},
 *     {"kind": "update", "type": "0-1", "id": "7", "updated": 1700000000000,
 *      "refreshed": true}, …]}
 * ("refreshed" only when true.)
 * Ids are decimal strings, as HubSpot writes them. Readers ignore members
 * they do not know (so a later version may add some), skip a change they
 * cannot use (unknown kind, bad id, a string too long for struct
 * team_change) and drop a message of another version or without an origin.
 * Anyone who can publish on the channel can send anything: decoding is
 * bounded and never trusts a length or a count.
 */
#ifndef HUBFS_TEAM_MSG_H
#define HUBFS_TEAM_MSG_H

#include <stddef.h>

#include "client/team.h"

#define TEAM_MSG_MAX (256 * 1024) /* bytes of one message, either way */
#define TEAM_MSG_MAX_CHANGES 500  /* changes in one message, either way */

/* Check one change for publishing: a kind other than RESYNC, a type name
 * (and for ASSOC a to_type) of 1..63 of [A-Za-z0-9_.-], an id > 0 for the
 * record kinds (and a to_id for ASSOC), updated_ms >= 0. Returns 0 or
 * -EINVAL. The decoder applies the same rules. */
int team_change_check(const struct team_change *ch);

/* Encode changes[0..n) (1 <= n <= TEAM_MSG_MAX_CHANGES) from origin into a
 * NUL-terminated malloc'd text in *out (free()). Returns 0, -EINVAL (a change
 * fails team_change_check(), bad n or origin), -E2BIG (longer than
 * TEAM_MSG_MAX) or -ENOMEM; *out is NULL on failure. */
int team_msg_encode(const char *origin, const struct team_change *changes, size_t n, char **out);

/* Decode buf[0..len) and call cb once per usable change, in order, with
 * origin filled in. Returns the number of changes delivered (>= 0), with the
 * number skipped added to *skipped (may be NULL); or -EINVAL for a text that
 * is not a message (not JSON, longer than TEAM_MSG_MAX, another version, no
 * origin, no changes array), and then cb is not called. */
int team_msg_decode(const char *buf, size_t len,
		    void (*cb)(void *ud, const struct team_change *ch), void *ud, size_t *skipped);

#endif
