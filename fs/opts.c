/* opts.c - mount options, from $XDG_CONFIG_HOME/hubfs/config and -o.
 *
 * The config file decides where the token is sent (api_url, ca_file), so it
 * is trusted only if no other user could have written it: it must be owned
 * by the user and not writable by group or others, whatever it holds (as ssh
 * treats ~/.ssh/config); hubfs refuses to mount otherwise. Its text is
 * checked by fs/config.c (known keys only, no ',' or '\' in values) and its
 * values are applied to the options directly, never turned back into -o
 * strings. -o wins over the config; with SOURCE profile:NAME, the
 * [profile NAME] section wins over [hubfs].
 *
 * OAuth: client_id, client_secret and refresh_token are read from the config
 * file only (never from -o: argv is public): from the mounted profile's
 * section, then [oauth], then [hubfs], key by key. A config that holds
 * secrets, in any section, must also be unreadable by others (mode 0600). A
 * private-app token (HUBSPOT_TOKEN or token_file=) wins over OAuth when both
 * are configured. The secrets go straight into struct oauth (client/oauth.h)
 * and are wiped here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/log.h"
#include "client/oauth.h"
#include "client/secret.h"
#include "fs/config.h"
#include "fs/hubfs.h"
#include "fs/source.h"

#define TOKEN_FILE_MAX (64 * 1024)
#define DEFAULT_UMASK 077

/* fuse_opt writes ints; these mirror struct hubfs_opts for parsing. */
struct raw {
	char *api_url, *token_file, *ca_file, *rate_limit, *log_level, *umask, *portal, *cache;
	char *audit_view;
	char *redis, *redis_password_file;
	char *props[4];
	char *wh_listen, *wh_path, *wh_secret_file, *wh_public_url;
	char *types;         /* -o types= */
	GPtrArray *props_more; /* "name=LIST" of props_<name> for the other types */
	int ttl, op_timeout, index_delay, relist_interval, search_per_sec, cache_mb, cache_disk_mb;
	int writeback_delay_ms, drain_timeout, ro, allow_delete, allow_other, wh_v1;
};

#define O(t, f) { t, offsetof(struct raw, f), 1 }

enum { KEY_RO = 1, KEY_ALLOW_OTHER };

static const struct fuse_opt spec[] = {
	O("api_url=%s", api_url),
	O("token_file=%s", token_file),
	O("ca_file=%s", ca_file),
	O("rate_limit=%s", rate_limit),
	O("log_level=%s", log_level),
	O("umask=%s", umask),
	O("portal=%s", portal),
	O("audit_view=%s", audit_view),
	O("redis=%s", redis),
	O("redis_password_file=%s", redis_password_file),
	O("props_contacts=%s", props[0]),
	O("props_companies=%s", props[1]),
	O("props_deals=%s", props[2]),
	O("props_tickets=%s", props[3]),
	O("types=%s", types),
	O("ttl=%d", ttl),
	O("op_timeout=%d", op_timeout),
	O("index_delay=%d", index_delay),
	O("relist_interval=%d", relist_interval),
	O("search_per_sec=%d", search_per_sec),
	O("cache_mb=%d", cache_mb),
	O("cache_disk_mb=%d", cache_disk_mb),
	O("cache=%s", cache),
	O("writeback_delay_ms=%d", writeback_delay_ms),
	O("drain_timeout=%d", drain_timeout),
	O("allow_delete", allow_delete),
	O("webhook_listen=%s", wh_listen),
	O("webhook_path=%s", wh_path),
	O("webhook_secret_file=%s", wh_secret_file),
	O("webhook_public_url=%s", wh_public_url),
	O("webhook_v1", wh_v1),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
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
	       "(a regular file of yours, mode 0600), or else from an OAuth app: client_id,\n"
	       "client_secret and refresh_token under [oauth] in the config file (then mode 0600).\n"
	       "Options (also read, as key = value lines under [hubfs], from\n"
	       "$XDG_CONFIG_HOME/hubfs/config, which must be yours and not writable by others;\n"
	       "-o wins):\n"
	       "    -o api_url=URL            HubSpot API base (default https://api.hubapi.com;\n"
	       "                              plain http only to loopback, never via a proxy)\n"
	       "    -o token_file=PATH        file holding the private-app token (mode 0600)\n"
	       "    -o ca_file=PATH           CA bundle for TLS verification (default: system)\n"
	       "    -o ttl=SECONDS            freshness of cached data and kernel caches (default 60)\n"
	       "    -o op_timeout=SECONDS     longest any syscall waits on HubSpot (default 30)\n"
	       "    -o index_delay=SECONDS    HubSpot's search indexing delay (default 10)\n"
	       "    -o relist_interval=SEC    full relist to find archived records (default 900)\n"
	       "    -o rate_limit=N/Ss        request budget, e.g. 100/10s (default 100/10s)\n"
	       "    -o search_per_sec=N       search request budget per second (default 5)\n"
	       "    -o cache_mb=MB            byte budget of cached records in memory (default 512)\n"
	       "    -o cache=WHERE            disk: keep the cache for the next mount, under\n"
	       "                              $XDG_CACHE_HOME/hubfs/PORTAL-ID (the default);\n"
	       "                              memory: keep nothing on disk\n"
	       "    -o cache_disk_mb=MB       byte budget of records kept on disk (default 1024)\n"
	       "    -o types=LIST             object types shown: all (default), core (contacts,\n"
	       "                              companies, deals, tickets), or directory names and\n"
	       "                              objectTypeIds joined by '+' (core among them)\n"
	       "    -o props_<type>=LIST      properties shown for <type> (any type's directory name):\n"
	       "                              default, all, or a comma-separated list (default: default;\n"
	       "                              custom objects: all)\n"
	       "    -o writeback_delay_ms=MS  quiet time before edits are sent (default 2000)\n"
	       "    -o drain_timeout=SECONDS  how long unmount waits for the queue (default 30)\n"
	       "    -o allow_delete           rm archives records (default: EPERM)\n"
	       "    -o ro                     read-only mount\n"
	       "    -o umask=OCTAL            permission bits taken away from every file and\n"
	       "                              directory (default 077: records 0600, directories\n"
	       "                              0700); 022 lets other users read, with allow_other\n"
	       "    -o allow_other            (FUSE) let other local users in: they then read, and\n"
	       "                              if umask allows write, the CRM with your token\n"
	       "    -o log_level=LEVEL        error|warning|notice|info|debug (default notice)\n"
	       "    -o portal=ID              refuse to mount unless the token is for portal ID\n"
	       "    -o webhook_listen=ADDR:PORT  receive HubSpot's signed webhooks there (off by\n"
	       "                              default; PORT or :PORT binds 127.0.0.1 only; any other\n"
	       "                              address only when named, e.g. 0.0.0.0:8787)\n"
	       "    -o webhook_path=PATH      the request path to accept (default /hubspot)\n"
	       "    -o webhook_secret_file=PATH  the app's client secret (mode 0600); default: the\n"
	       "                              OAuth client_secret of the config file\n"
	       "    -o webhook_public_url=URL the target URL set in HubSpot, when a reverse proxy or\n"
	       "                              tunnel stands between (the v3 signature covers it)\n"
	       "    -o webhook_v1             also accept v1 signatures (older apps; no timestamp)\n"
	       "    -o audit_view=PATH        also serve the mount read-only on PATH (an existing\n"
	       "                              directory): same cache and API budget, no round trip\n"
	       "                              at close(), unmounted with the main mount\n"
	       "    -o redis=URL              join the team of mounts of this portal through Redis\n"
	       "                              (redis://host[:port][/db] or unix:/path[?db=N]): one\n"
	       "                              shared rate budget, one refresh per type, writes seen\n"
	       "                              by every mount at once\n"
	       "    -o redis_password_file=PATH  file holding the Redis password (mode 0600)\n"
	       "\n");
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw *r = data;

	if (key == KEY_RO)
		r->ro = 1;
	else if (key == KEY_ALLOW_OTHER)
		r->allow_other = 1;
	else if (key == FUSE_OPT_KEY_OPT && source_opt_ignored(arg))
		return 0; /* noauto, user, _netdev, x-systemd.*, …: mount(8)'s, not ours */
	else if (key == FUSE_OPT_KEY_OPT && g_str_has_prefix(arg, "props_") && strchr(arg, '=')) {
		/* props_<type>= of a type other than the four: resolved against the
		 * registry at mount (fs/types.c), which knows the account's types. */
		if (!r->props_more)
			r->props_more = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(r->props_more, g_strdup(arg + strlen("props_")));
		return 0;
	}
	return 1; /* keep: the kernel (ro) or libfuse (allow_other, the rest) takes it too */
}

void hubfs_harden_process(void)
{
	struct rlimit none = { 0, 0 };

	/* No core dump (it would hold the token), and /proc/PID/mem, environ,
	 * maps and ptrace closed to the user's other processes. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
}

static char *config_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg && *xdg)
		return g_build_filename(xdg, "hubfs", "config", NULL);
	if (home && *home)
		return g_build_filename(home, ".config", "hubfs", "config", NULL);
	return NULL;
}

/* Read, check and parse the config file through one descriptor (what is
 * checked is what is read), for SOURCE profile:<profile> if profile is not
 * NULL. Returns 1 with *cfg, 0 if there is no config file, or -1 after
 * printing a reason (the profile's section missing is one). */
static int config_load(const char *path, const char *profile, struct config *cfg)
{
	g_autofree char *why = NULL;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd, rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "hubfs: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
		fprintf(stderr, "hubfs: %s: not a regular file of at most 1 MiB\n", path);
		goto out;
	}
	/* The config says where the token goes: another user who could write it
	 * could send it to a server of theirs. */
	if (st.st_uid != getuid()) {
		fprintf(stderr, "hubfs: %s is owned by uid %u, not by you (uid %u); the config says "
			"where your token is sent, so it must be yours and not writable by others "
			"(mode 0600 or 0644); refusing to mount\n", path, (unsigned)st.st_uid,
			(unsigned)getuid());
		goto out;
	}
	if (st.st_mode & 022) {
		fprintf(stderr, "hubfs: %s is mode %04o: writable by %s, who could send your token "
			"anywhere; chmod go-w %s (mode 0600 or 0644); refusing to mount\n", path,
			(unsigned)(st.st_mode & 07777), st.st_mode & 020 ? "its group" : "other users",
			path);
		goto out;
	}
	text = g_malloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	switch (config_parse(text, len, profile, cfg, &why)) {
	case 0:
		break;
	case -ENOENT:
		fprintf(stderr, "hubfs: SOURCE profile:%s: %s has no [profile %s] section\n", profile,
			path, profile);
		goto out;
	default:
		fprintf(stderr, "hubfs: %s: %s; refusing to mount\n", path, why);
		goto out;
	}
	if (config_has_secrets(cfg) && (st.st_mode & 077) != 0) {
		fprintf(stderr, "hubfs: %s holds OAuth secrets (client_secret, refresh_token) but is "
			"mode %04o; it must be mode 0600 and owned by you "
			"(chmod 600 %s); refusing to mount\n", path, (unsigned)(st.st_mode & 07777), path);
		config_clear(cfg);
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

/* A whole positive decimal number. 0 or -1. */
static int parse_count(const char *s, int *out)
{
	long v = 0;

	if (!*s)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return -1;
	}
	if (v <= 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Config values for whatever -o did not set. 0, or -1 after printing why. */
static int apply_config(struct raw *r, const struct config *cfg, struct fuse_args *args,
			const char *path)
{
	char **strs[CFG_NKEYS] = {
		[CFG_API_URL] = &r->api_url, [CFG_TOKEN_FILE] = &r->token_file,
		[CFG_CA_FILE] = &r->ca_file, [CFG_RATE_LIMIT] = &r->rate_limit,
		[CFG_LOG_LEVEL] = &r->log_level, [CFG_UMASK] = &r->umask, [CFG_PORTAL] = &r->portal,
		[CFG_AUDIT_VIEW] = &r->audit_view,
		[CFG_REDIS] = &r->redis, [CFG_REDIS_PASSWORD_FILE] = &r->redis_password_file,
		[CFG_CACHE] = &r->cache,
		[CFG_PROPS_CONTACTS] = &r->props[0], [CFG_PROPS_COMPANIES] = &r->props[1],
		[CFG_PROPS_DEALS] = &r->props[2], [CFG_PROPS_TICKETS] = &r->props[3],
		[CFG_WEBHOOK_LISTEN] = &r->wh_listen, [CFG_WEBHOOK_PATH] = &r->wh_path,
		[CFG_WEBHOOK_SECRET_FILE] = &r->wh_secret_file,
		[CFG_WEBHOOK_PUBLIC_URL] = &r->wh_public_url,
		[CFG_TYPES] = &r->types,
	};
	int *ints[CFG_NKEYS] = {
		[CFG_TTL] = &r->ttl, [CFG_OP_TIMEOUT] = &r->op_timeout,
		[CFG_INDEX_DELAY] = &r->index_delay, [CFG_RELIST_INTERVAL] = &r->relist_interval,
		[CFG_SEARCH_PER_SEC] = &r->search_per_sec, [CFG_CACHE_MB] = &r->cache_mb,
		[CFG_CACHE_DISK_MB] = &r->cache_disk_mb,
		[CFG_WRITEBACK_DELAY_MS] = &r->writeback_delay_ms,
		[CFG_DRAIN_TIMEOUT] = &r->drain_timeout,
	};

	/* props_<name> of the other types: the config's, for the names -o left out */
	for (char **e = cfg->props_more; e && *e; e++) {
		size_t n = (size_t)(strchr(*e, '=') - *e);
		bool given = false;

		for (guint i = 0; r->props_more && i < r->props_more->len && !given; i++) {
			const char *o = g_ptr_array_index(r->props_more, i);

			given = !strncmp(o, *e, n) && o[n] == '=';
		}
		if (given)
			continue;
		if (!r->props_more)
			r->props_more = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(r->props_more, g_strdup(*e));
	}
	for (int k = 0; k < CFG_NKEYS; k++) {
		const char *v = cfg->val[k];
		int b;

		if (!v)
			continue;
		if (strs[k]) {
			if (!*strs[k])
				*strs[k] = strdup(v);
		} else if (ints[k]) {
			if (parse_count(v, &b) != 0) {
				fprintf(stderr, "hubfs: %s: %s must be a positive whole number\n", path,
					config_key_name(k));
				return -1;
			}
			if (!*ints[k])
				*ints[k] = b;
		} else if (parse_bool(v, &b) != 0) {
			fprintf(stderr, "hubfs: %s: %s must be true or false\n", path, config_key_name(k));
			return -1;
		} else if (k == CFG_ALLOW_DELETE) {
			r->allow_delete |= b;
		} else if (k == CFG_WEBHOOK_V1) {
			r->wh_v1 |= b;
		} else if (k == CFG_RO && b && !r->ro) {
			r->ro = 1;
			fuse_opt_add_arg(args, "-oro"); /* the kernel mounts read-only too */
		}
	}
	return 0;
}

/* Build h->oauth from the config's credentials (no network yet). */
static int oauth_setup(struct hubfs *h, struct config *cfg, const char *path)
{
	struct hubfs_opts *o = &h->o;
	g_autofree char *url = NULL;
	struct oauth_opts oo = { 0 };
	const char *why = NULL;
	size_t n = strlen(o->api_url);

	if (!cfg->client_id || !cfg->client_secret || !cfg->refresh_token) {
		fprintf(stderr, "hubfs: %s: OAuth needs client_id, client_secret and refresh_token "
			"(under [oauth], or the profile's section); found only some of them\n",
			path ? path : "config");
		return -1;
	}
	while (n > 0 && o->api_url[n - 1] == '/')
		n--;
	url = g_strdup_printf("%.*s/oauth/v1/token", (int)n, o->api_url);
	oo.token_url = url;
	oo.client_id = cfg->client_id;
	oo.client_secret = cfg->client_secret;
	oo.refresh_token = cfg->refresh_token;
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
	struct config cfg;
	int rc;

	if (!h->oauth || !path)
		return 0;
	if (config_load(path, h->o.profile, &cfg) <= 0)
		return -1;
	rc = cfg.client_id && cfg.client_secret && cfg.refresh_token ?
	     oauth_set_credentials(h->oauth, cfg.client_id, cfg.client_secret, cfg.refresh_token) :
	     -EINVAL;
	config_clear(&cfg);
	if (rc == 0)
		log_notice("OAuth credentials re-read from %s", path);
	else
		log_err("OAuth credentials in %s are incomplete; keeping the old ones", path);
	return rc;
}

static void on_portal_mismatch(void *ud, const char *msg)
{
	struct hubfs *h = ud;

	if (h->errors) /* errors.log is open (hubfs_write_init) */
		hubfs_error_say(h, "auth", NULL, msg);
}

int hubfs_opts_bind_portal(struct hubfs *h)
{
	if (!h->oauth)
		return 0;
	if (oauth_bind_portal(h->oauth, h->portal_id, on_portal_mismatch, h) != 0) {
		fprintf(stderr, "hubfs: OAuth: the access token is not for portal %" G_GUINT64_FORMAT
			", the account HubSpot reports; refusing to mount\n", h->portal_id);
		return -1;
	}
	return 0;
}

/* The secret in the file of option `opt` (token_file, webhook_secret_file,
 * redis_password_file), read from the descriptor that was checked: a regular
 * file of ours that no one else can read (a FIFO or a device could feed
 * anything, or block the mount). malloc'd, or NULL after printing why. */
static char *read_secret_file(const char *opt, const char *path)
{
	struct stat st;
	char *buf = NULL, *tok = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		fprintf(stderr, "hubfs: %s %s: %s\n", opt, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "hubfs: %s %s: not a regular file (FIFOs, devices and "
			"directories are refused)\n", opt, path);
		goto out;
	}
	if (st.st_uid != getuid()) {
		fprintf(stderr, "hubfs: %s %s is owned by uid %u, not by you (uid %u)\n", opt, path,
			(unsigned)st.st_uid, (unsigned)getuid());
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		fprintf(stderr, "hubfs: %s %s must be mode 0600 (not readable by others)\n", opt, path);
		goto out;
	}
	if (st.st_size > TOKEN_FILE_MAX) {
		fprintf(stderr, "hubfs: %s %s: larger than 64 KiB\n", opt, path);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto out;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	tok = strdup(g_strstrip(buf));
	explicit_bzero(buf, len);
	free(buf);
out:
	close(fd);
	return tok;
}

/* The webhook receiver's settings: the others need webhook_listen, which
 * needs a secret: webhook_secret_file=, else the OAuth client_secret of the
 * config (a file that holds one is mode 0600, config_load checks). The
 * addresses are checked when the receiver starts (client/webhook.h). 0, or
 * -1 after printing why. */
static int webhook_setup(struct hubfs *h, const struct config *cfg)
{
	struct hubfs_opts *o = &h->o;

	if (!o->webhook_listen) {
		if (!o->webhook_path && !o->webhook_secret_file && !o->webhook_public_url &&
		    !o->webhook_v1)
			return 0;
		fprintf(stderr, "hubfs: webhook_path, webhook_secret_file, webhook_public_url and "
			"webhook_v1 set up the webhook receiver: they need webhook_listen=ADDR:PORT\n");
		return -1;
	}
	if (o->webhook_secret_file) {
		h->webhook_secret = read_secret_file("webhook_secret_file", o->webhook_secret_file);
	} else if (cfg->client_secret) {
		h->webhook_secret = strdup(cfg->client_secret);
	} else {
		fprintf(stderr, "hubfs: webhook_listen: webhooks are signed with the app's client "
			"secret: set webhook_secret_file=PATH (mode 0600), or client_secret under "
			"[oauth] in the config file\n");
		return -1;
	}
	if (h->webhook_secret && !*h->webhook_secret) {
		fprintf(stderr, "hubfs: webhook_secret_file %s is empty\n", o->webhook_secret_file);
		secret_free(h->webhook_secret);
		h->webhook_secret = NULL;
	}
	return h->webhook_secret ? 0 : -1;
}

/* HUBSPOT_TOKEN, taken out of the environment (malloc'd, or NULL). unsetenv
 * only drops the pointer: the value stays in the environment block the
 * kernel shows in /proc/PID/environ, so it is overwritten first. */
static char *take_env_token(void)
{
	char *env = getenv("HUBSPOT_TOKEN"), *t = NULL;

	if (env && *env)
		t = strdup(env);
	if (env)
		explicit_bzero(env, strlen(env));
	unsetenv("HUBSPOT_TOKEN");
	return t;
}

static int parse_level(const char *s)
{
	static const char *names[] = { "error", "warning", "notice", "info", "debug" };

	for (int i = 0; i < 5; i++)
		if (!g_ascii_strcasecmp(s, names[i]))
			return LOG_ERR + i;
	return -1;
}

static int parse_umask(const char *s, mode_t *out)
{
	unsigned v = 0;

	if (!*s || strlen(s) > 4)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return -1;
		v = v * 8 + (unsigned)(*p - '0');
	}
	if (v > 0777)
		return -1;
	*out = (mode_t)v;
	return 0;
}

/* redis= and redis_password_file=: the URL checked as the team will read it
 * (rediss:// refused: Debian's hiredis has no TLS), the password read from
 * its file, and the hash of the credential the team's keys are named by
 * (the token, or the OAuth app's client id), taken before the token leaves
 * for the client. 0, or -1 after printing why. */
static int redis_setup(struct hubfs *h, struct raw *r, const struct config *cfg)
{
	const char *why = NULL;
	int rc;

	if (!r->redis) {
		if (!r->redis_password_file)
			return 0;
		fprintf(stderr, "hubfs: redis_password_file= is set but redis= is not: the password "
			"is for the team's Redis\n");
		return -1;
	}
	rc = team_url_check(r->redis, &why);
	if (rc == -EPROTONOSUPPORT) {
		fprintf(stderr, "hubfs: redis=%s: %s; use redis:// over a trusted network, or "
			"unix:/path with a tunnel (stunnel, ssh -L) to reach Redis over TLS; refusing "
			"to mount\n", r->redis, why ? why : "TLS is not supported");
		return -1;
	}
	if (rc) {
		fprintf(stderr, "hubfs: redis=%s: %s (expected redis://host[:port][/db] or "
			"unix:/path[?db=N]; a password goes in redis_password_file=)\n", r->redis,
			why ? why : "not a Redis URL");
		return -1;
	}
	if (r->redis_password_file) {
		h->redis_password = read_secret_file("redis_password_file", r->redis_password_file);
		if (!h->redis_password)
			return -1;
		if (!*h->redis_password) {
			fprintf(stderr, "hubfs: redis_password_file %s is empty\n",
				r->redis_password_file);
			return -1;
		}
	}
	if (h->token)
		team_cred_hash(h->token, h->team_cred);
	else if (cfg->client_id)
		team_cred_hash(cfg->client_id, h->team_cred);
	h->o.redis_url = r->redis;
	r->redis = NULL;
	return 0;
}

static void warn_allow_other(const struct hubfs_opts *o)
{
	fprintf(stderr, "hubfs: warning: allow_other: every local user can reach this mount, and "
		"whatever they read or write goes to HubSpot with your token. ");
	if ((o->umask & 077) == 077)
		fprintf(stderr, "Files are mode 0600 and directories 0700 (umask=%03o), so the "
			"kernel lets only you (and root) in; -o umask=022 would open it to every "
			"user.\n", (unsigned)o->umask);
	else
		fprintf(stderr, "With umask=%03o they pass the permission check: they %s the CRM "
			"as you.\n", (unsigned)o->umask,
			(o->umask & 022) != 022 && !o->ro ? "read and change" : "read");
}

int hubfs_opts_parse(struct fuse_args *args, struct hubfs *h)
{
	struct hubfs_opts *o = &h->o;
	g_autofree char *path = config_path();
	struct raw r = { 0 };
	struct config cfg = { 0 };
	struct hubfs_source src;
	char *env_token;
	int rc = 0;

	/* Out of the environment first, whatever else fails. */
	env_token = take_env_token();
	if (source_take(args, &src) != 0)
		goto fail;
	o->profile = src.profile; /* freed by hubfs_opts_free, also after a failure */
	if (path)
		rc = config_load(path, o->profile, &cfg);
	if (rc < 0)
		goto fail;
	if (rc == 0 && o->profile) {
		fprintf(stderr, "hubfs: SOURCE profile:%s: there is no config file %s\n", o->profile,
			path ? path : "(neither XDG_CONFIG_HOME nor HOME is set)");
		goto fail;
	}
	if (fuse_opt_parse(args, &r, spec, proc) == -1)
		goto fail_raw;
	if (apply_config(&r, &cfg, args, path) != 0)
		goto fail_raw;
	/* The portal the mount must be: SOURCE hubspot:<id>, or portal= (-o, the
	 * profile, [hubfs]); the two must agree. */
	o->portal = src.portal;
	if (r.portal) {
		uint64_t p = source_portal_id(r.portal);

		if (!p || (src.portal && p != src.portal)) {
			fprintf(stderr, "hubfs: portal=%s: %s\n", r.portal,
				p ? "SOURCE names another portal" : "a portal id is a number");
			goto fail_raw;
		}
		o->portal = p;
	}

	o->api_url = r.api_url ? r.api_url : strdup("https://api.hubapi.com");
	o->token_file = r.token_file;
	o->ca_file = r.ca_file;
	o->audit_view = r.audit_view;
	r.audit_view = NULL;
	for (int t = 0; t < 4; t++)
		o->shown[t] = r.props[t];
	o->webhook_listen = r.wh_listen;
	o->webhook_path = r.wh_path;
	o->webhook_secret_file = r.wh_secret_file;
	o->webhook_public_url = r.wh_public_url;
	o->webhook_v1 = r.wh_v1;
	r.wh_listen = r.wh_path = r.wh_secret_file = r.wh_public_url = NULL;
	o->types = r.types;
	o->props_more = r.props_more;
	r.api_url = r.token_file = r.ca_file = r.types = NULL;
	r.props_more = NULL;
	memset(r.props, 0, sizeof(r.props));
	o->ttl_s = r.ttl > 0 ? r.ttl : 60;
	o->op_timeout_s = r.op_timeout > 0 ? r.op_timeout : 30;
	o->index_delay_s = r.index_delay > 0 ? r.index_delay : 10;
	o->relist_interval_s = r.relist_interval > 0 ? r.relist_interval : 900;
	o->search_per_sec = r.search_per_sec > 0 ? r.search_per_sec : 5;
	o->cache_mb = r.cache_mb > 0 ? r.cache_mb : 512;
	o->cache_disk_mb = r.cache_disk_mb > 0 ? r.cache_disk_mb : 1024;
	o->writeback_delay_ms = r.writeback_delay_ms > 0 ? r.writeback_delay_ms : 2000;
	o->drain_timeout_s = r.drain_timeout > 0 ? r.drain_timeout : 30;
	o->ro = r.ro;
	o->allow_delete = r.allow_delete;
	o->allow_other = r.allow_other;
	o->umask = DEFAULT_UMASK;
	o->rate_max = 100;
	o->rate_interval_ms = 10000;
	o->log_level = LOG_NOTICE;
	if (r.rate_limit) {
		int n = 0, secs = 0;

		if (sscanf(r.rate_limit, "%d/%ds", &n, &secs) != 2 || n <= 0 || secs <= 0) {
			fprintf(stderr, "hubfs: rate_limit=%s: expected N/Ss, e.g. 100/10s\n", r.rate_limit);
			goto fail_raw;
		}
		o->rate_max = n;
		o->rate_interval_ms = secs * 1000;
	}
	if (r.log_level) {
		o->log_level = parse_level(r.log_level);
		if (o->log_level < 0) {
			fprintf(stderr, "hubfs: log_level: error|warning|notice|info|debug\n");
			goto fail_raw;
		}
	}
	if (r.cache && strcmp(r.cache, "disk") && strcmp(r.cache, "memory")) {
		fprintf(stderr, "hubfs: cache=%s: expected disk or memory\n", r.cache);
		goto fail_raw;
	}
	o->cache_memory = r.cache && !strcmp(r.cache, "memory");
	if (r.umask && parse_umask(r.umask, &o->umask) != 0) {
		fprintf(stderr, "hubfs: umask=%s: expected an octal mode such as 077 or 022\n", r.umask);
		goto fail_raw;
	}
	if (o->allow_other)
		warn_allow_other(o);
	if (webhook_setup(h, &cfg) != 0)
		goto fail_raw;

	if (o->token_file)
		h->token = read_secret_file("token_file", o->token_file);
	else
		h->token = env_token;
	if (h->token != env_token)
		secret_free(env_token);
	env_token = NULL;
	/* A private-app token wins over OAuth credentials in the config. */
	if (h->token && (cfg.client_id || cfg.client_secret || cfg.refresh_token))
		fprintf(stderr, "hubfs: notice: a private-app token (%s) is set: it is used, and the "
			"OAuth credentials in the config are ignored\n",
			o->token_file ? "token_file=" : "HUBSPOT_TOKEN");
	if (!h->token && !o->token_file && (cfg.client_id || cfg.client_secret || cfg.refresh_token)) {
		if (oauth_setup(h, &cfg, path) != 0)
			goto fail_raw;
	} else if (!h->token) {
		if (!o->token_file)
			fprintf(stderr, "hubfs: no token: set HUBSPOT_TOKEN or -o token_file=PATH, or "
				"OAuth credentials under [oauth] in the config (mode 0600)\n");
		goto fail_raw;
	}
	if (redis_setup(h, &r, &cfg) != 0)
		goto fail_raw;
	free(r.rate_limit);
	free(r.log_level);
	free(r.umask);
	free(r.portal);
	free(r.redis_password_file);
	free(r.cache);
	config_clear(&cfg);
	return 0;
fail_raw:
	free(r.redis);
	free(r.redis_password_file);
	free(r.api_url);
	free(r.audit_view);
	free(r.token_file);
	free(r.ca_file);
	for (int t = 0; t < 4; t++)
		free(r.props[t]);
	free(r.wh_listen);
	free(r.wh_path);
	free(r.wh_secret_file);
	free(r.wh_public_url);
	free(r.types);
	if (r.props_more)
		g_ptr_array_free(r.props_more, true);
	free(r.rate_limit);
	free(r.log_level);
	free(r.umask);
	free(r.portal);
	free(r.cache);
fail:
	secret_free(env_token);
	config_clear(&cfg);
	return -1;
}

void hubfs_opts_free(struct hubfs_opts *o)
{
	g_free(o->profile);
	free(o->api_url);
	free(o->token_file);
	free(o->ca_file);
	free(o->audit_view);
	free(o->redis_url);
	for (int t = 0; t < 4; t++)
		free(o->shown[t]);
	free(o->webhook_listen);
	free(o->webhook_path);
	free(o->webhook_secret_file);
	free(o->webhook_public_url);
	free(o->types);
	if (o->props_more)
		g_ptr_array_free(o->props_more, true);
}
