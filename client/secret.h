/* secret.h - secrets in memory (bearer tokens, OAuth client secrets and
 * refresh tokens): the one check of a token's shape, wipe-and-free, and
 * blanking them out of text a server may echo back.
 *
 * A hostile or broken server can put whatever it received into an error
 * message, a category, a correlation id or a plain-text body; hubfs copies
 * those into status.json, errors.log and stderr. secret_scrub() is applied
 * to every such string before it is stored.
 */
#ifndef HUBFS_SECRET_H
#define HUBFS_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_MAX_LEN 8192

/* Whether t can be sent as a bearer token: 1..SECRET_MAX_LEN bytes, none of
 * them a control character or a space (it goes into a header line). */
bool secret_token_ok(const char *t);

/* Wipe s (up to its NUL) and free() it. Accepts NULL. */
void secret_free(char *s);

/* Overwrite with '*', in the NUL-terminated s, every copy of secret: as is,
 * percent-encoded (upper- or lower-case hex, as in a URL or a form body),
 * and a copy cut short at the end of s (a field truncated in the middle of
 * one). Secrets shorter than 4 bytes are left alone (they would blank
 * ordinary words). Returns the number of bytes blanked. Never changes the
 * length of s. */
size_t secret_scrub(char *s, const char *secret);

/* curl_global_init(CURL_GLOBAL_DEFAULT), with libcurl's memory freed
 * wiped: libcurl builds every request, the Authorization header and a token
 * call's form body included, in buffers of its own, and would free them
 * with the secret still in them. The first call of the process (this or
 * curl_global_init) sets the allocator. Returns a CURLcode. */
int secret_curl_global_init(void);

#endif
