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
	[CFG_PORTAL] = "portal",
	[CFG_WEBHOOK_LISTEN] = "webhook_listen",
	[CFG_WEBHOOK_PATH] = "webhook_path",
	[CFG_WEBHOOK_SECRET_FILE] = "webhook_secret_file",
	[CFG_WEBHOOK_PUBLIC_URL] = "webhook_public_url",
	[CFG_WEBHOOK_V1] = "webhook_v1",
	[CFG_AUDIT_VIEW] = "audit_view",
	[CFG_TYPES] = "types",
	[CFG_REDIS] = "redis",
	[CFG_REDIS_PASSWORD_FILE] = "redis_password_file",
	[CFG_CACHE] = "cache",
	[CFG_CACHE_DISK_MB] = "cache_disk_mb",
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

/* Keys whose value is a list that may hold ','. */
static bool is_props(int k)
{
	return (k >= CFG_PROPS_CONTACTS && k <= CFG_PROPS_TICKETS) || k == CFG_TYPES;
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

/* The values one section set: options by enum config_key, OAuth credentials. */
struct section {
	char *val[CFG_NKEYS];
	char *cred[NCREDS];
	GPtrArray *props_more; /* "name=LIST" of props_<name> for other types, or NULL */
};

/* A props_<name> key of a type beyond the four: the name is a directory name
 * or an objectTypeId (letters, digits, '_', '-'); resolved at mount. */
static bool props_more_key(const char *k)
{
	const char *n = k + strlen("props_");

	if (!g_str_has_prefix(k, "props_") || !*n || strlen(n) > 200)
		return false;
	for (; *n; n++)
		if (!g_ascii_isalnum(*n) && *n != '_' && *n != '-')
			return false;
	return true;
}

/* The value of props_<name> in a, or NULL. */
static const char *props_find(GPtrArray *a, const char *name)
{
	size_t n = strlen(name);

	for (guint i = 0; a && i < a->len; i++) {
		const char *e = g_ptr_array_index(a, i);

		if (!strncmp(e, name, n) && e[n] == '=')
			return e + n + 1;
	}
	return NULL;
}

static void section_clear(struct section *sec)
{
	for (int k = 0; k < CFG_NKEYS; k++)
		g_free(sec->val[k]);
	for (int k = 0; k < NCREDS; k++)
		wipe_gfree(sec->cred[k]);
	if (sec->props_more)
		g_ptr_array_free(sec->props_more, true);
	memset(sec, 0, sizeof(*sec));
}

static bool section_has_secrets(const struct section *sec)
{
	return sec->cred[CRED_SECRET] || sec->cred[CRED_REFRESH];
}

/* One group's keys into *sec (options only if options is set; credentials
 * always). 0, or -EINVAL with *why. */
static int take_group(GKeyFile *kf, const char *group, bool options, struct section *sec,
		      char **why)
{
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
	bool seen[CFG_NKEYS] = { false }, cseen[NCREDS] = { false };

	for (char **k = keys; k && *k; k++) {
		int key = options ? key_of(*k) : -1, cred = cred_of(*k);
		bool more = options && key < 0 && props_more_key(*k);
		const char *problem;
		char *v;

		if (!strcmp(*k, "token")) {
			*why = g_strdup_printf("[%s] token: a private-app token belongs in a file named "
					       "by token_file= (mode 0600), not in the config", group);
			return -EINVAL;
		}
		if (key < 0 && cred < 0 && !more) {
			*why = g_strdup_printf("[%s] %s: unknown key (known: %s)", group, *k,
					       options ? "the -o options of hubfs --help, and "
					       "client_id, client_secret, refresh_token" :
					       "client_id, client_secret, refresh_token");
			return -EINVAL;
		}
		if ((key >= 0 && seen[key]) || (cred >= 0 && cseen[cred]) ||
		    (more && props_find(sec->props_more, *k + strlen("props_")))) {
			*why = g_strdup_printf("[%s] %s: given twice", group, *k);
			return -EINVAL;
		}
		/* Raw: GKeyFile's unescaping (\n, \s, …) is not wanted. */
		v = g_key_file_get_value(kf, group, *k, NULL);
		if (!v)
			continue;
		g_strstrip(v);
		problem = value_problem(v, more || (key >= 0 && is_props(key)));
		if (problem) {
			*why = g_strdup_printf("[%s] %s: the value %s", group, *k, problem);
			wipe_gfree(v);
			return -EINVAL;
		}
		if (!*v) {
			g_free(v);
			v = NULL;
		}
		if (more) {
			if (!sec->props_more)
				sec->props_more = g_ptr_array_new_with_free_func(g_free);
			/* an empty value counts as absent, as for every key */
			if (v)
				g_ptr_array_add(sec->props_more,
						g_strdup_printf("%s=%s", *k + strlen("props_"), v));
			g_free(v);
		} else if (key >= 0) {
			seen[key] = true;
			sec->val[key] = v;
		} else {
			cseen[cred] = true;
			sec->cred[cred] = v;
		}
	}
	return 0;
}

bool config_profile_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > CONFIG_PROFILE_MAX)
		return false;
	for (; *name; name++)
		if (!g_ascii_isalnum(*name) && *name != '-' && *name != '_' && *name != '.')
			return false;
	return true;
}

/* The first of a, b, c that is set (moved out), or NULL. */
static char *first_of(char **a, char **b, char **c)
{
	char **p = *a ? a : *b ? b : c;
	char *v = *p;

	*p = NULL;
	return v;
}

int config_parse(const char *text, size_t len, const char *profile, struct config *cfg,
		 char **why)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) groups = NULL;
	struct section hub = { 0 }, oa = { 0 }, prof = { 0 };
	bool found = false, secrets = false;
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
	for (char **g = groups; g && *g; g++) {
		const char *name = g_str_has_prefix(*g, "profile ") ? *g + strlen("profile ") : NULL;
		struct section other = { 0 };
		int r;

		if (!strcmp(*g, "hubfs") || !strcmp(*g, "oauth"))
			continue;
		if (!name) {
			*why = g_strdup_printf("[%s]: unknown group (known: [hubfs], [oauth], "
					       "[profile NAME])", *g);
			goto out;
		}
		if (!config_profile_name_ok(name)) {
			*why = g_strdup_printf("[%s]: a profile name is 1 to %d letters, digits, '-', "
					       "'_' or '.'", *g, CONFIG_PROFILE_MAX);
			goto out;
		}
		/* A profile not mounted is checked as strictly, and its secrets
		 * count for the file's mode all the same. */
		if (profile && !strcmp(name, profile)) {
			found = true;
			r = take_group(kf, *g, true, &prof, why);
		} else {
			r = take_group(kf, *g, true, &other, why);
			secrets |= section_has_secrets(&other);
			section_clear(&other);
		}
		if (r != 0)
			goto out;
	}
	if (take_group(kf, "hubfs", true, &hub, why) != 0 ||
	    take_group(kf, "oauth", false, &oa, why) != 0)
		goto out;
	if (profile && !found) {
		*why = g_strdup_printf("no [profile %s] section", profile);
		rc = -ENOENT;
		goto out;
	}
	secrets |= section_has_secrets(&hub) || section_has_secrets(&oa) || section_has_secrets(&prof);
	/* Options: the profile's, then [hubfs]'s. Credentials, key by key: the
	 * profile's, then [oauth]'s, then [hubfs]'s. */
	for (int k = 0; k < CFG_NKEYS; k++) {
		char **from = prof.val[k] ? &prof.val[k] : &hub.val[k];

		cfg->val[k] = *from;
		*from = NULL;
	}
	for (int k = 0; k < NCREDS; k++)
		*slot[k] = first_of(&prof.cred[k], &oa.cred[k], &hub.cred[k]);
	if (prof.props_more || hub.props_more) {
		GPtrArray *all = g_ptr_array_new();

		for (guint i = 0; prof.props_more && i < prof.props_more->len; i++)
			g_ptr_array_add(all, g_strdup(g_ptr_array_index(prof.props_more, i)));
		for (guint i = 0; hub.props_more && i < hub.props_more->len; i++) {
			const char *e = g_ptr_array_index(hub.props_more, i);
			g_autofree char *name = g_strndup(e, (size_t)(strchr(e, '=') - e));

			if (!props_find(prof.props_more, name))
				g_ptr_array_add(all, g_strdup(e));
		}
		g_ptr_array_add(all, NULL);
		cfg->props_more = (char **)g_ptr_array_free(all, false);
	}
	cfg->secrets = secrets;
	rc = 0;
out:
	section_clear(&hub);
	section_clear(&oa);
	section_clear(&prof);
	if (rc)
		config_clear(cfg);
	return rc;
}

void config_clear(struct config *cfg)
{
	for (int k = 0; k < CFG_NKEYS; k++)
		g_free(cfg->val[k]);
	g_strfreev(cfg->props_more);
	g_free(cfg->client_id);
	wipe_gfree(cfg->client_secret);
	wipe_gfree(cfg->refresh_token);
	memset(cfg, 0, sizeof(*cfg));
}

bool config_has_secrets(const struct config *cfg)
{
	return cfg->secrets || cfg->client_secret || cfg->refresh_token;
}
