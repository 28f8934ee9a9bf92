/* test_secret.c - client/secret.c: the token shape check, and blanking
 * secrets out of text a server echoed (raw, percent-encoded, cut short);
 * hs_error_scrub on a parsed HubSpot error. No network. */
#include <errno.h>

#include <glib.h>

#include "client/hubspot.h"
#include "client/secret.h"
#include "tests/unit/test.h"

#define TOK "pat-na1-S3cr3t/ab+cd=ef9"

static void scrubbed(const char *in, const char *secret, const char *want)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", in);
	secret_scrub(buf, secret);
	ASSERT_STR(buf, want);
}

static void test_token_ok(void)
{
	char big[SECRET_MAX_LEN + 2];

	ASSERT(secret_token_ok("pat-na1-abc"));
	ASSERT(!secret_token_ok(NULL));
	ASSERT(!secret_token_ok(""));
	ASSERT(!secret_token_ok("a b"));
	ASSERT(!secret_token_ok("ab\r\nX-Evil: 1"));
	ASSERT(!secret_token_ok("ab\x7f"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ASSERT(!secret_token_ok(big));
	big[SECRET_MAX_LEN] = '\0';
	ASSERT(secret_token_ok(big));
}

static void test_scrub_forms(void)
{
	/* as is, twice */
	scrubbed("bad token " TOK " and " TOK ".", TOK,
		 "bad token ************************ and ************************.");
	/* percent-encoded, both cases */
	scrubbed("t=pat-na1-S3cr3t%2Fab%2Bcd%3Def9&x", TOK, "t=******************************&x");
	scrubbed("t=pat-na1-S3cr3t%2fab%2bcd%3def9", TOK, "t=******************************");
	/* cut short at the end of a field */
	scrubbed("correlation pat-na1-S3cr3t/a", TOK, "correlation ****************");
	scrubbed("cut pat-na1-S3cr3t%2Fa", TOK, "cut ******************");
	/* a start shorter than 4 bytes is left: it would blank ordinary words */
	scrubbed("the pat", TOK, "the pat");
	scrubbed("the pat-", TOK, "the ****");
	scrubbed("xx pa", TOK, "xx pa");
	/* nothing to do */
	scrubbed("nothing here", TOK, "nothing here");
	scrubbed("short secrets are not looked for: abc", "abc", "short secrets are not looked for: abc");
	scrubbed("", TOK, "");
	ASSERT_EQ(secret_scrub(NULL, TOK), 0);
	{
		char buf[] = "x " TOK;

		ASSERT_EQ(secret_scrub(buf, NULL), 0);
		ASSERT_EQ(secret_scrub(buf, TOK), strlen(TOK));
	}
}

/* A HubSpot error that echoes the token in every field, cut where the
 * fields end, with terminal control characters. */
static void test_error_scrub(void)
{
	char body[2048];
	struct hs_error e;
	size_t n;

	n = (size_t)snprintf(body, sizeof(body),
			     "{\"status\":\"error\",\"category\":\"" TOK "\",\"correlationId\":\"%s%s\","
			     "\"message\":\"\\u001b[31mbad " TOK " \\r\\nhubfs: error: forged %0*d" TOK "\"}",
			     TOK, TOK "-and-more-than-sixty-four-bytes", 444, 0);
	hs_error_parse(&e, 401, body, n, NULL, NULL);
	ASSERT(strstr(e.message, TOK) != NULL);
	/* the field (511 bytes) ends 10 bytes into the last copy */
	ASSERT(g_str_has_suffix(e.message, "pat-na1-S3"));
	hs_error_scrub(&e, TOK);
	ASSERT(strstr(e.category, "S3cr3t") == NULL);
	ASSERT(strstr(e.correlation_id, "S3cr3t") == NULL);
	ASSERT(strstr(e.message, "S3cr3t") == NULL);
	ASSERT(strstr(e.message, "pat-na1") == NULL);
	ASSERT(g_str_has_suffix(e.message, "**********"));
	for (const char *p = e.message; *p; p++)
		ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
	ASSERT(strstr(e.message, "bad ****") != NULL);

	/* a plain-text body cut at the excerpt's end */
	n = (size_t)snprintf(body, sizeof(body), "%0*d " TOK, 100, 0);
	hs_error_parse(&e, 502, body, n, TOK, NULL);
	hs_error_scrub(&e, TOK);
	ASSERT(strstr(e.message, "pat-n") == NULL);
	ASSERT(strstr(e.correlation_id, "pat-n") == NULL);
}

int main(void)
{
	RUN(test_token_ok);
	RUN(test_scrub_forms);
	RUN(test_error_scrub);
	return 0;
}
