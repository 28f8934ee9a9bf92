/* config.c - parsing and checking the config file's text (see config.h). */
#include "fs/config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "client/secret.h"

static const char *const names[CFG_NKEYS] = {
	[CFG_API_URL] = "api_url",
	[CFG_TOKEN_FILE] = "token_file",
	[CFG_CA_FILE] = "ca_file",
	[CFG_RATE_LIMIT] = "rate_limit",
	[CFG_LOG_LEVEL] = "log_level",
	[CFG_PROPS_CONTACTS] = "props_contacts",
	[CFG_PROPS_COMPANIES] = "props_companies",
	[CFG_PROPS_DEALS] = "props_deals",
	[CFG_PROPS_TICKETS] = "props_tickets",
	[CFG_TTL] = "ttl",
	[CFG_OP_TIMEOUT] = "op_timeout",
	[CFG_INDEX_DELAY] = "index_delay",
	[CFG_RELIST_INTERVAL] = "relist_interval",
	[CFG_SEARCH_PER_SEC] = "search_per_sec",
	[CFG_CACHE_MB] = "cache_mb",
	[CFG_WRITEBACK_DELAY_MS] = "writeback_delay_ms",
	[CFG_DRAIN_TIMEOUT] = "drain_timeout",
	[CFG_ALLOW_DELETE] = "allow_delete",
	[CFG_RO] = "ro",
	[CFG_UMASK] = "umask",
};

enum { CRED_ID, CRED_SECRET, CRED_REFRESH, NCREDS };
static const char *const cred_names[NCREDS] = { "client_id", "client_secret", "refresh_token" };

const char *config_key_name(enum config_key k)
{
	return (unsigned)k < CFG_NKEYS ? names[k] : "?";
}

static int key_of(const char *name)
{
	for (int k = 0; k < CFG_NKEYS; k++)
		if (!strcmp(name, names[k]))
			return k;
	return -1;
}

static int cred_of(const char *name)
{
	for (int k = 0; k < NCREDS; k++)
		if (!strcmp(name, cred_names[k]))
			return k;
	return -1;
}

static bool is_props(int k)
{
	return k >= CFG_PROPS_CONTACTS && k <= CFG_PROPS_TICKETS;
}

static void wipe_gfree(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

/* NULL if the raw value v of key (in group) may be used, else why not. */
static const char *value_problem(const char *v, bool commas_ok)
{
	for (const char *p = v; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '\\')
			return "holds a backslash";
		if (ch == ',' && !commas_ok)
			return "holds a comma (a value is one option, never a list of them)";
		if (ch < 0x20 || ch == 0x7f)
			return "holds a control character";
	}
	return NULL;
}

/* One group's keys into cfg; creds[] collects the OAuth credentials of this
 * group. 0, or -EINVAL with *why. */
static int take_group(GKeyFile *kf, const char *group, bool options, struct config *cfg,
		      char *creds[NCREDS], char **why)
{
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
	bool seen[CFG_NKEYS] = { false }, cseen[NCREDS] = { false };

	for (char **k = keys; k && *k; k++) {
		int key = options ? key_of(*k) : -1, cred = cred_of(*k);
		const char *problem;
		char *v;

		if (!strcmp(*k, "token")) {
			*why = g_strdup_printf("[%s] token: a private-app token belongs in a file named "
					       "by token_file= (mode 0600), not in the config", group);
			return -EINVAL;
		}
		if (key < 0 && cred < 0) {
			*why = g_strdup_printf("[%s] %s: unknown key (known: %s)", group, *k,
					       options ? "the -o options of hubfs --help, and "
					       "client_id, client_secret, refresh_token" :
					       "client_id, client_secret, refresh_token");
			return -EINVAL;
		}
		if ((key >= 0 && seen[key]) || (cred >= 0 && cseen[cred])) {
			*why = g_strdup_printf("[%s] %s: given twice", group, *k);
			return -EINVAL;
		}
		/* Raw: GKeyFile's unescaping (\n, \s, …) is not wanted. */
		v = g_key_file_get_value(kf, group, *k, NULL);
		if (!v)
			continue;
		g_strstrip(v);
		problem = value_problem(v, key >= 0 && is_props(key));
		if (problem) {
			*why = g_strdup_printf("[%s] %s: the value %s", group, *k, problem);
			wipe_gfree(v);
			return -EINVAL;
		}
		if (!*v) {
			g_free(v);
			v = NULL;
		}
		if (key >= 0) {
			seen[key] = true;
			cfg->val[key] = v;
		} else {
			cseen[cred] = true;
			creds[cred] = v;
		}
	}
	return 0;
}

int config_parse(const char *text, size_t len, struct config *cfg, char **why)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) groups = NULL;
	char *hub[NCREDS] = { NULL }, *oa[NCREDS] = { NULL };
	char **slot[NCREDS];
	int rc = -EINVAL;

	memset(cfg, 0, sizeof(*cfg));
	*why = NULL;
	slot[CRED_ID] = &cfg->client_id;
	slot[CRED_SECRET] = &cfg->client_secret;
	slot[CRED_REFRESH] = &cfg->refresh_token;
	if (len > CONFIG_MAX_BYTES) {
		*why = g_strdup("larger than 1 MiB");
		return -EINVAL;
	}
	if (memchr(text, '\0', len)) {
		*why = g_strdup("holds a NUL byte");
		return -EINVAL;
	}
	/* Translations kept, so that "ttl[fr] = …" shows up as the unknown key it is. */
	if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_KEEP_TRANSLATIONS, &err)) {
		/* GLib's message quotes the offending line, which may hold a secret. */
		*why = g_strdup_printf("not a key file (%s)",
				       err->code == G_KEY_FILE_ERROR_PARSE ? "a line is neither "
				       "[group], key = value nor a # comment" : "unreadable");
		return -EINVAL;
	}
	groups = g_key_file_get_groups(kf, NULL);
	for (char **g = groups; g && *g; g++)
		if (strcmp(*g, "hubfs") != 0 && strcmp(*g, "oauth") != 0) {
			*why = g_strdup_printf("[%s]: unknown group (known: [hubfs], [oauth])", *g);
			goto out;
		}
	if (take_group(kf, "hubfs", true, cfg, hub, why) != 0 ||
	    take_group(kf, "oauth", false, cfg, oa, why) != 0)
		goto out;
	/* [oauth] first, then [hubfs] */
	for (int k = 0; k < NCREDS; k++) {
		*slot[k] = oa[k] ? oa[k] : hub[k];
		wipe_gfree(oa[k] ? hub[k] : NULL);
		oa[k] = hub[k] = NULL;
	}
	rc = 0;
out:
	for (int k = 0; k < NCREDS; k++) {
		wipe_gfree(oa[k]);
		wipe_gfree(hub[k]);
	}
	if (rc)
		config_clear(cfg);
	return rc;
}

void config_clear(struct config *cfg)
{
	for (int k = 0; k < CFG_NKEYS; k++)
		g_free(cfg->val[k]);
	g_free(cfg->client_id);
	wipe_gfree(cfg->client_secret);
	wipe_gfree(cfg->refresh_token);
	memset(cfg, 0, sizeof(*cfg));
}

bool config_has_secrets(const struct config *cfg)
{
	return cfg->client_secret || cfg->refresh_token;
}
