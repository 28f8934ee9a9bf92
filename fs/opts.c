/* opts.c - mount options, from $XDG_CONFIG_HOME/hubfs/config and -o.
 *
 * OAuth: client_id, client_secret and refresh_token are read from the config
 * file only (never from -o: argv is public), in an [oauth] section (or, as a
 * fallback, [hubfs]). A config that holds secrets must be mode 0600 (no group
 * or other bits) and owned by the user, or hubfs refuses to mount. A
 * private-app token (HUBSPOT_TOKEN or token_file=) wins over OAuth when both
 * are configured. The secrets go straight into struct oauth (client/oauth.h)
 * and are wiped here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/log.h"
#include "client/oauth.h"
#include "fs/hubfs.h"
#include "fs/source.h"

#define CONFIG_MAX (1 << 20)

/* OAuth credentials found in the config (secrets: wiped by creds_clear). */
struct creds {
	char *client_id, *client_secret, *refresh_token;
};

/* fuse_opt writes ints; these mirror struct hubfs_opts for parsing. */
struct raw {
	char *api_url, *token_file, *ca_file, *rate_limit, *log_level, *portal;
	char *props[4];
	int ttl, op_timeout, index_delay, relist_interval, search_per_sec, cache_mb;
	int writeback_delay_ms, drain_timeout, ro, allow_delete;
};

#define O(t, f) { t, offsetof(struct raw, f), 1 }

enum { KEY_RO = 1, KEY_HELP };

static const struct fuse_opt spec[] = {
	O("api_url=%s", api_url),
	O("token_file=%s", token_file),
	O("ca_file=%s", ca_file),
	O("rate_limit=%s", rate_limit),
	O("log_level=%s", log_level),
	O("portal=%s", portal),
	O("props_contacts=%s", props[0]),
	O("props_companies=%s", props[1]),
	O("props_deals=%s", props[2]),
	O("props_tickets=%s", props[3]),
	O("ttl=%d", ttl),
	O("op_timeout=%d", op_timeout),
	O("index_delay=%d", index_delay),
	O("relist_interval=%d", relist_interval),
	O("search_per_sec=%d", search_per_sec),
	O("cache_mb=%d", cache_mb),
	O("writeback_delay_ms=%d", writeback_delay_ms),
	O("drain_timeout=%d", drain_timeout),
	O("allow_delete", allow_delete),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_END
};

void hubfs_opts_usage(void)
{
	printf("usage: hubfs [-f] [-o opt,...] [SOURCE] MOUNTPOINT\n"
	       "       hubfs status [--json | --watch [--interval SEC]] MOUNTPOINT\n"
	       "                                   summary of .hubfs/status.json (--json: the file)\n"
	       "       hubfs sync MOUNTPOINT       wait until every queued edit landed, with progress\n"
	       "\n"
	       "SOURCE (as in /etc/fstab, mount -t fuse.hubfs): hubspot (the token's portal),\n"
	       "hubspot:PORTAL-ID (refuses to mount another portal) or profile:NAME (the options\n"
	       "of [profile NAME] in the config file). mount(8)'s own options (noauto, user,\n"
	       "_netdev, nofail, x-systemd.*, ...) are accepted and ignored.\n"
	       "\n"
	       "Mounts a HubSpot CRM account. The token comes from $HUBSPOT_TOKEN or token_file=\n"
	       "(mode 0600), or else from an OAuth app: client_id, client_secret and\n"
	       "refresh_token under [oauth] in the config file (which must then be mode 0600).\n"
	       "Options (also read, as key = value lines under [hubfs], from\n"
	       "$XDG_CONFIG_HOME/hubfs/config; -o wins):\n"
	       "    -o api_url=URL            HubSpot API base (default https://api.hubapi.com;\n"
	       "                              plain http only to loopback)\n"
	       "    -o token_file=PATH        file holding the private-app token (mode 0600)\n"
	       "    -o ca_file=PATH           CA bundle for TLS verification (default: system)\n"
	       "    -o ttl=SECONDS            freshness of cached data and kernel caches (default 60)\n"
	       "    -o op_timeout=SECONDS     longest any syscall waits on HubSpot (default 30)\n"
	       "    -o index_delay=SECONDS    HubSpot's search indexing delay (default 10)\n"
	       "    -o relist_interval=SEC    full relist to find archived records (default 900)\n"
	       "    -o rate_limit=N/Ss        request budget, e.g. 100/10s (default 100/10s)\n"
	       "    -o search_per_sec=N       search request budget per second (default 5)\n"
	       "    -o cache_mb=MB            byte budget of cached records (default 512)\n"
	       "    -o props_<type>=LIST      properties shown for contacts|companies|deals|tickets:\n"
	       "                              default, all, or a comma-separated list (default: default)\n"
	       "    -o writeback_delay_ms=MS  quiet time before edits are sent (default 2000)\n"
	       "    -o drain_timeout=SECONDS  how long unmount waits for the queue (default 30)\n"
	       "    -o allow_delete           rm archives records (default: EPERM)\n"
	       "    -o ro                     read-only mount\n"
	       "    -o log_level=LEVEL        error|warning|notice|info|debug (default notice)\n"
	       "    -o portal=ID              refuse to mount unless the token is for portal ID\n"
	       "\n");
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw *r = data;

	if (key == KEY_RO) {
		r->ro = 1;
		return 1; /* keep: the kernel mounts read-only too */
	}
	if (key == FUSE_OPT_KEY_OPT && source_opt_ignored(arg))
		return 0; /* noauto, user, _netdev, x-systemd.*, …: mount(8)'s, not ours */
	return 1;
}

static void secret_gfree(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

static void creds_clear(struct creds *cr)
{
	g_free(cr->client_id);
	secret_gfree(cr->client_secret);
	secret_gfree(cr->refresh_token);
	memset(cr, 0, sizeof(*cr));
}

static bool is_oauth_key(const char *k)
{
	return !strcmp(k, "client_id") || !strcmp(k, "client_secret") || !strcmp(k, "refresh_token");
}

static char *config_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg && *xdg)
		return g_build_filename(xdg, "hubfs", "config", NULL);
	if (home)
		return g_build_filename(home, ".config", "hubfs", "config", NULL);
	return NULL;
}

/* Read and parse the config file through one descriptor (what is checked is
 * what is read). Returns 1 with *kf and *st, 0 if there is no config file, or
 * -1 after printing a reason. */
static int config_read(const char *path, GKeyFile **kf, struct stat *st)
{
	g_autoptr(GError) err = NULL;
	char *text = NULL;
	size_t len = 0;
	int fd, rc = -1;

	*kf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "hubfs: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > CONFIG_MAX) {
		fprintf(stderr, "hubfs: %s: not a regular file of at most 1 MiB\n", path);
		goto out;
	}
	text = g_malloc((size_t)st->st_size + 1);
	while (len < (size_t)st->st_size) {
		ssize_t n = read(fd, text + len, (size_t)st->st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	*kf = g_key_file_new();
	if (!g_key_file_load_from_data(*kf, text, len, G_KEY_FILE_NONE, &err)) {
		fprintf(stderr, "hubfs: %s: %s\n", path, err->message);
		g_key_file_free(*kf);
		*kf = NULL;
		goto out;
	}
	rc = 1;
out:
	if (text) {
		explicit_bzero(text, len);
		g_free(text);
	}
	close(fd);
	return rc;
}

/* The OAuth credentials of a loaded config: [profile NAME] first (SOURCE
 * profile:NAME), then [oauth], then [hubfs].
 * A config holding a secret must be 0600 and ours. 0, or -1 after printing
 * a reason. */
static int config_creds(const char *path, GKeyFile *kf, const struct stat *st, struct creds *cr,
			const char *profile)
{
	g_autofree char *pgroup = profile ? g_strdup_printf("profile %s", profile) : NULL;
	const char *const groups[] = { pgroup ? pgroup : "oauth", "oauth", "hubfs" };
	char **slot[] = { &cr->client_id, &cr->client_secret, &cr->refresh_token };
	static const char *const names[] = { "client_id", "client_secret", "refresh_token" };

	for (size_t k = 0; k < 3; k++)
		for (size_t g = 0; g < 3 && !*slot[k]; g++) {
			char *v = g_key_file_get_string(kf, groups[g], names[k], NULL);

			if (v && *g_strstrip(v))
				*slot[k] = v;
			else
				secret_gfree(v);
		}
	if (!cr->client_secret && !cr->refresh_token)
		return 0;
	if ((st->st_mode & 077) != 0 || st->st_uid != getuid()) {
		fprintf(stderr, "hubfs: %s holds OAuth secrets (client_secret, refresh_token) but is "
			"mode %04o%s; it must be mode 0600 and owned by you "
			"(chmod 600 %s); refusing to mount\n", path, (unsigned)(st->st_mode & 07777),
			st->st_uid != getuid() ? " and owned by another user" : "", path);
		creds_clear(cr);
		return -1;
	}
	return 0;
}

/* The keys of [profile NAME] become -o options after [hubfs]'s (*pos on),
 * so they win over [hubfs] and lose to the command line. 0, or -1 after
 * printing why (no such section, a token in it). */
static int load_profile(struct fuse_args *args, GKeyFile *kf, const char *path, const char *profile,
			int *pos)
{
	g_autofree char *group = g_strdup_printf("profile %s", profile);
	g_auto(GStrv) keys = NULL;

	if (!g_key_file_has_group(kf, group)) {
		fprintf(stderr, "hubfs: SOURCE profile:%s: %s has no [%s] section\n", profile, path, group);
		return -1;
	}
	if (g_key_file_has_key(kf, group, "token", NULL)) {
		fprintf(stderr, "hubfs: %s: a private-app token belongs in token_file=, not in the config\n", path);
		return -1;
	}
	keys = g_key_file_get_keys(kf, group, NULL, NULL);
	if (keys && *keys && !args->allocated) { /* as load_config does */
		struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);

		for (int i = 0; i < args->argc; i++)
			if (fuse_opt_add_arg(&copy, args->argv[i]) != 0) {
				fuse_opt_free_args(&copy);
				return -1;
			}
		*args = copy;
	}
	for (char **k = keys; k && *k; k++) {
		g_autofree char *v = is_oauth_key(*k) ? NULL : g_key_file_get_string(kf, group, *k, NULL);
		g_autofree char *o = NULL;

		if (!v)
			continue;
		o = (!strcmp(v, "true") || !strcmp(v, "yes")) &&
		    (!strcmp(*k, "ro") || !strcmp(*k, "allow_delete")) ? g_strdup_printf("-o%s", *k)
								       : g_strdup_printf("-o%s=%s", *k, v);
		fuse_opt_insert_arg(args, (*pos)++, o);
	}
	return 0;
}

/* Config file lines become -o options placed before the command line's
 * ([hubfs], then [profile NAME] for SOURCE profile:NAME); OAuth credentials
 * go to *cr. */
static int load_config(struct fuse_args *args, struct creds *cr, const char *profile)
{
	g_autofree char *path = config_path();
	g_autoptr(GKeyFile) kf = NULL;
	g_auto(GStrv) keys = NULL;
	g_autofree char *pgroup = profile ? g_strdup_printf("profile %s", profile) : NULL;
	struct stat st;
	int pos = 1, rc;

	if (!path)
		return 0;
	rc = config_read(path, &kf, &st);
	if (rc == 0 && profile)
		fprintf(stderr, "hubfs: SOURCE profile:%s: there is no config file %s\n", profile, path);
	if (rc <= 0)
		return profile ? -1 : rc;
	if (g_key_file_has_key(kf, "hubfs", "token", NULL) ||
	    g_key_file_has_key(kf, "oauth", "token", NULL)) {
		fprintf(stderr, "hubfs: %s: a private-app token belongs in token_file=, not in the config\n", path);
		return -1;
	}
	if (config_creds(path, kf, &st, cr, profile) != 0)
		return -1;
	keys = g_key_file_get_keys(kf, "hubfs", NULL, NULL);
	/* fuse_opt_insert_arg() needs an allocated argv (it asserts otherwise):
	 * main()'s args point at the real argv until something is added. */
	if (keys && *keys && !args->allocated) {
		struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);

		for (int i = 0; i < args->argc; i++)
			if (fuse_opt_add_arg(&copy, args->argv[i]) != 0) {
				fuse_opt_free_args(&copy);
				return -1;
			}
		*args = copy;
	}
	for (char **k = keys; k && *k; k++) {
		g_autofree char *v = NULL;
		g_autofree char *o = NULL;

		if (is_oauth_key(*k) || (profile && g_key_file_has_key(kf, pgroup, *k, NULL)))
			continue; /* the profile's value comes next, in its place */
		v = g_key_file_get_string(kf, "hubfs", *k, NULL);
		if (!v)
			continue;
		o = (!strcmp(v, "true") || !strcmp(v, "yes")) &&
		    (!strcmp(*k, "ro") || !strcmp(*k, "allow_delete")) ? g_strdup_printf("-o%s", *k)
								       : g_strdup_printf("-o%s=%s", *k, v);
		fuse_opt_insert_arg(args, pos++, o);
	}
	return profile ? load_profile(args, kf, path, profile, &pos) : 0;
}

/* Build h->oauth from the config's credentials (no network yet). */
static int oauth_setup(struct hubfs *h, struct creds *cr, const char *path)
{
	struct hubfs_opts *o = &h->o;
	g_autofree char *url = NULL;
	struct oauth_opts oo = { 0 };
	const char *why = NULL;
	size_t n = strlen(o->api_url);

	if (!cr->client_id || !cr->client_secret || !cr->refresh_token) {
		fprintf(stderr, "hubfs: %s: OAuth needs client_id, client_secret and refresh_token "
			"(under [oauth]); found only some of them\n", path ? path : "config");
		return -1;
	}
	while (n > 0 && o->api_url[n - 1] == '/')
		n--;
	url = g_strdup_printf("%.*s/oauth/v1/token", (int)n, o->api_url);
	oo.token_url = url;
	oo.client_id = cr->client_id;
	oo.client_secret = cr->client_secret;
	oo.refresh_token = cr->refresh_token;
	oo.ca_file = o->ca_file;
	if (oauth_new(&oo, &h->oauth, &why) != 0) {
		fprintf(stderr, "hubfs: OAuth: %s\n", why ? why : "cannot set up");
		return -1;
	}
	return 0;
}

int hubfs_opts_reload_oauth(struct hubfs *h)
{
	g_autofree char *path = config_path();
	g_autoptr(GKeyFile) kf = NULL;
	struct creds cr = { 0 };
	struct stat st;
	int rc;

	if (!h->oauth || !path)
		return 0;
	rc = config_read(path, &kf, &st);
	if (rc <= 0)
		return -1;
	if (config_creds(path, kf, &st, &cr, h->o.profile) != 0)
		return -1;
	rc = cr.client_id && cr.client_secret && cr.refresh_token ?
	     oauth_set_credentials(h->oauth, cr.client_id, cr.client_secret, cr.refresh_token) : -EINVAL;
	creds_clear(&cr);
	if (rc == 0)
		log_notice("OAuth credentials re-read from %s", path);
	else
		log_err("OAuth credentials in %s are incomplete; keeping the old ones", path);
	return rc;
}

static char *read_token_file(const char *path)
{
	struct stat st;
	char *text = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "hubfs: token_file %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
		fprintf(stderr, "hubfs: token_file %s must be mode 0600 (not readable by others)\n", path);
		close(fd);
		return NULL;
	}
	close(fd);
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	g_strstrip(text);
	return text;
}

static int parse_level(const char *s)
{
	static const char *names[] = { "error", "warning", "notice", "info", "debug" };

	for (int i = 0; i < 5; i++)
		if (!g_ascii_strcasecmp(s, names[i]))
			return LOG_ERR + i;
	return -1;
}

int hubfs_opts_parse(struct fuse_args *args, struct hubfs *h)
{
	struct hubfs_opts *o = &h->o;
	struct raw r = { 0 };
	struct creds cr = { 0 };
	struct hubfs_source src;
	const char *env;

	if (source_take(args, &src) != 0)
		return -1;
	o->profile = src.profile;
	if (load_config(args, &cr, o->profile))
		return -1;
	if (fuse_opt_parse(args, &r, spec, proc) == -1) {
		creds_clear(&cr);
		return -1;
	}
	o->portal = src.portal;
	if (r.portal) {
		uint64_t p = source_portal_id(r.portal);

		if (!p || (src.portal && p != src.portal))
			fprintf(stderr, "hubfs: portal=%s: %s\n", r.portal,
				p ? "SOURCE names another portal" : "a portal id is a number");
		free(r.portal);
		if (!p || (src.portal && p != src.portal))
			goto fail;
		o->portal = p;
	}

	o->api_url = r.api_url ? r.api_url : g_strdup("https://api.hubapi.com");
	o->token_file = r.token_file;
	o->ca_file = r.ca_file;
	for (int t = 0; t < 4; t++)
		o->shown[t] = r.props[t];
	o->ttl_s = r.ttl > 0 ? r.ttl : 60;
	o->op_timeout_s = r.op_timeout > 0 ? r.op_timeout : 30;
	o->index_delay_s = r.index_delay > 0 ? r.index_delay : 10;
	o->relist_interval_s = r.relist_interval > 0 ? r.relist_interval : 900;
	o->search_per_sec = r.search_per_sec > 0 ? r.search_per_sec : 5;
	o->cache_mb = r.cache_mb > 0 ? r.cache_mb : 512;
	o->writeback_delay_ms = r.writeback_delay_ms > 0 ? r.writeback_delay_ms : 2000;
	o->drain_timeout_s = r.drain_timeout > 0 ? r.drain_timeout : 30;
	o->ro = r.ro;
	o->allow_delete = r.allow_delete;
	o->rate_max = 100;
	o->rate_interval_ms = 10000;
	o->log_level = LOG_NOTICE;
	if (r.rate_limit) {
		int n = 0, secs = 0;

		if (sscanf(r.rate_limit, "%d/%ds", &n, &secs) != 2 || n <= 0 || secs <= 0) {
			fprintf(stderr, "hubfs: rate_limit=%s: expected N/Ss, e.g. 100/10s\n", r.rate_limit);
			free(r.rate_limit);
			goto fail;
		}
		o->rate_max = n;
		o->rate_interval_ms = secs * 1000;
		free(r.rate_limit);
	}
	if (r.log_level) {
		o->log_level = parse_level(r.log_level);
		free(r.log_level);
		if (o->log_level < 0) {
			fprintf(stderr, "hubfs: log_level: error|warning|notice|info|debug\n");
			goto fail;
		}
	}

	env = getenv("HUBSPOT_TOKEN");
	if (o->token_file)
		h->token = read_token_file(o->token_file);
	else if (env && *env)
		h->token = g_strdup(env);
	/* Keep the token out of anything we might start later. */
	unsetenv("HUBSPOT_TOKEN");
	/* A private-app token wins over OAuth credentials in the config. */
	if (h->token && (cr.client_id || cr.client_secret || cr.refresh_token))
		fprintf(stderr, "hubfs: notice: a private-app token (%s) is set: it is used, and the "
			"OAuth credentials in the config are ignored\n",
			o->token_file ? "token_file=" : "HUBSPOT_TOKEN");
	if (!h->token && !o->token_file && (cr.client_id || cr.client_secret || cr.refresh_token)) {
		g_autofree char *path = config_path();

		if (oauth_setup(h, &cr, path) != 0)
			goto fail;
	} else if (!h->token) {
		if (!o->token_file)
			fprintf(stderr, "hubfs: no token: set HUBSPOT_TOKEN or -o token_file=PATH, or "
				"OAuth credentials under [oauth] in the config (mode 0600)\n");
		goto fail;
	}
	creds_clear(&cr);
	return 0;
fail:
	creds_clear(&cr);
	return -1;
}

void hubfs_opts_free(struct hubfs_opts *o)
{
	g_free(o->profile);
	free(o->api_url);
	free(o->token_file);
	free(o->ca_file);
	for (int t = 0; t < 4; t++)
		free(o->shown[t]);
}
