/* fuzz_config - the config file's text (fs/config.h): whatever a user, or
 * another user who could write the file, puts there.
 *
 * Input: the whole file.
 *
 * Invariants:
 *  - accepted: every value is non-empty, trimmed, and holds no backslash,
 *    no control character and no comma (but in a props_<type> or types list), so it
 *    cannot carry a second mount option; reading the same text again gives
 *    the same values; config_clear leaves nothing;
 *  - refused: -EINVAL, a one-line reason, nothing kept;
 *  - the same answer whether the text was accepted before or not (no state);
 *  - read for a profile ([profile p]): the same checks, so refused exactly
 *    when it is refused without one, or -ENOENT (no such section) with a
 *    reason; the same values checked; a secret seen without the profile is
 *    seen with it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fs/config.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	return 0;
}

static void check_value(const char *name, const char *v, bool list)
{
	size_t n;

	if (!v)
		return;
	n = strlen(v);
	FUZZ_CHECK(n > 0, "%s is empty rather than absent", name);
	FUZZ_CHECK(v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t',
		   "%s not trimmed: \"%s\"", name, v);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		FUZZ_CHECK(ch != '\\', "%s holds a backslash: \"%s\"", name, v);
		FUZZ_CHECK(ch >= 0x20 && ch != 0x7f, "%s holds a control character", name);
		FUZZ_CHECK(list || ch != ',', "%s holds a comma: \"%s\"", name, v);
	}
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check_config(const struct config *cfg)
{
	for (int k = 0; k < CFG_NKEYS; k++)
		check_value(config_key_name(k), cfg->val[k],
			    (k >= CFG_PROPS_CONTACTS && k <= CFG_PROPS_TICKETS) || k == CFG_TYPES);
	for (char **e = cfg->props_more; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		FUZZ_CHECK(eq && eq > *e, "props_more entry \"%s\" is not name=LIST", *e);
		for (const char *c = *e; c < eq; c++)
			FUZZ_CHECK(g_ascii_isalnum(*c) || *c == '_' || *c == '-',
				   "props_more name in \"%s\"", *e);
		check_value("props_<type>", eq + 1, true);
	}
	check_value("client_id", cfg->client_id, false);
	check_value("client_secret", cfg->client_secret, false);
	check_value("refresh_token", cfg->refresh_token, false);
	FUZZ_CHECK(config_has_secrets(cfg) || !(cfg->client_secret || cfg->refresh_token),
		   "config_has_secrets");
}

/* The text read for profile "p": what a mount of SOURCE profile:p sees. */
static void check_profile(const uint8_t *data, size_t size, int rc_plain, bool secrets_plain)
{
	struct config cfg;
	char *why = NULL;
	int rc = config_parse((const char *)data, size, "p", &cfg, &why);

	if (rc_plain != 0) {
		FUZZ_CHECK(rc == rc_plain, "refused without a profile (%d), %d with one", rc_plain, rc);
	} else {
		FUZZ_CHECK(rc == 0 || rc == -ENOENT, "accepted without a profile, %d with one", rc);
	}
	if (rc == 0) {
		FUZZ_CHECK(why == NULL, "a reason for an accepted text: %s", why);
		check_config(&cfg);
		FUZZ_CHECK(config_has_secrets(&cfg) == secrets_plain, "secrets differ with a profile");
	} else {
		FUZZ_CHECK(why && *why && !strchr(why, '\n'), "reason \"%s\"", why ? why : "(null)");
		for (int k = 0; k < CFG_NKEYS; k++)
			FUZZ_CHECK(!cfg.val[k], "%s kept from a refused text", config_key_name(k));
		FUZZ_CHECK(!cfg.client_id && !cfg.client_secret && !cfg.refresh_token,
			   "credentials kept from a refused text");
	}
	config_clear(&cfg);
	g_free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, again;
	char *why = NULL, *why2 = NULL;
	bool secrets = false;
	int rc, rc2;

	rc = config_parse((const char *)data, size, NULL, &cfg, &why);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
	rc2 = config_parse((const char *)data, size, NULL, &again, &why2);
	FUZZ_CHECK(rc2 == rc, "a second parse says %d, the first %d", rc2, rc);
	if (rc == 0) {
		FUZZ_CHECK(why == NULL, "a reason for an accepted text: %s", why);
		check_config(&cfg);
		for (int k = 0; k < CFG_NKEYS; k++)
			FUZZ_CHECK(same(cfg.val[k], again.val[k]), "%s differs between parses",
				   config_key_name(k));
		for (size_t i = 0; cfg.props_more && cfg.props_more[i]; i++)
			FUZZ_CHECK(again.props_more && same(cfg.props_more[i], again.props_more[i]),
				   "props_<type> differs between parses");
		FUZZ_CHECK(same(cfg.client_secret, again.client_secret), "client_secret differs");
		secrets = config_has_secrets(&cfg);
	} else {
		FUZZ_CHECK(why && *why && !strchr(why, '\n'), "reason \"%s\"", why ? why : "(null)");
		for (int k = 0; k < CFG_NKEYS; k++)
			FUZZ_CHECK(!cfg.val[k], "%s kept from a refused text", config_key_name(k));
		FUZZ_CHECK(!cfg.client_id && !cfg.client_secret && !cfg.refresh_token,
			   "credentials kept from a refused text");
	}
	check_profile(data, size, rc, secrets);
	config_clear(&cfg);
	config_clear(&again);
	for (int k = 0; k < CFG_NKEYS; k++)
		FUZZ_CHECK(!cfg.val[k], "config_clear left %s", config_key_name(k));
	FUZZ_CHECK(!cfg.client_secret && !cfg.refresh_token, "config_clear left a secret");
	FUZZ_CHECK(!cfg.props_more, "config_clear left props_<type>");
	g_free(why);
	g_free(why2);
	return 0;
}
