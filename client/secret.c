/* secret.c - secrets in memory and out of echoed text (see secret.h). */
#include "client/secret.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define SCRUB_MIN 4

bool secret_token_ok(const char *t)
{
	size_t n;

	if (!t || !*t)
		return false;
	n = strnlen(t, SECRET_MAX_LEN + 1);
	if (n > SECRET_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x21 || t[i] == 0x7f)
			return false;
	return true;
}

void secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* libcurl's allocator: glibc's, but a block is wiped before it is freed
 * (malloc_usable_size: the whole block), and realloc moves through a new
 * block so the old one is wiped too. */
static void wipe_free(void *p)
{
	if (p) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void *wipe_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(n);
	if (!n) {
		wipe_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p);
	return q;
}

static char *plain_strdup(const char *s)
{
	return strdup(s);
}

int secret_curl_global_init(void)
{
	return (int)curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wipe_free, wipe_realloc,
					 plain_strdup, calloc);
}

/* RFC 3986 unreserved characters pass as they are; everything else is %XX. */
static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* secret percent-encoded with the given hex digits, malloc'd (wipe it), or
 * NULL if it would be the same as the secret (nothing to encode) or on OOM. */
static char *encoded(const char *secret, size_t n, const char *hex)
{
	char *out, *p;
	bool changed = false;

	for (size_t i = 0; i < n; i++)
		if (!unreserved((unsigned char)secret[i]))
			changed = true;
	if (!changed || !(out = malloc(3 * n + 1)))
		return NULL;
	p = out;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)secret[i];

		if (unreserved(ch)) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return out;
}

/* Blank every whole copy of pat in s, then a copy of pat's start that ends s. */
static size_t blank(char *s, size_t len, const char *pat, size_t n)
{
	size_t done = 0;
	char *p = s;

	while ((p = memmem(p, len - (size_t)(p - s), pat, n))) {
		memset(p, '*', n);
		done += n;
		p += n;
	}
	for (size_t k = n - 1 < len ? n - 1 : len; k >= SCRUB_MIN; k--)
		if (memcmp(s + len - k, pat, k) == 0) {
			memset(s + len - k, '*', k);
			done += k;
			break;
		}
	return done;
}

size_t secret_scrub(char *s, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0, len, done = 0;
	char *enc;

	if (!s || n < SCRUB_MIN)
		return 0;
	len = strlen(s);
	done += blank(s, len, secret, n);
	for (int i = 0; i < 2; i++) {
		enc = encoded(secret, n, i ? "0123456789abcdef" : "0123456789ABCDEF");
		if (!enc)
			break;
		done += blank(s, len, enc, strlen(enc));
		secret_free(enc);
	}
	return done;
}
