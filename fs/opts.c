/* opts.c - mount options, from $XDG_CONFIG_HOME/hubfs/config and -o. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/log.h"
#include "fs/hubfs.h"

/* fuse_opt writes ints; these mirror struct hubfs_opts for parsing. */
struct raw {
	char *api_url, *token_file, *ca_file, *rate_limit, *log_level;
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
	printf("usage: hubfs [-f] [-o opt,...] MOUNTPOINT\n"
	       "       hubfs status MOUNTPOINT     summary of .hubfs/status.json\n"
	       "       hubfs sync MOUNTPOINT       wait until every queued edit landed\n"
	       "\n"
	       "Mounts a HubSpot CRM account. The token comes from $HUBSPOT_TOKEN or token_file=\n"
	       "(mode 0600). Options (also read, as key = value lines under [hubfs], from\n"
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
	       "\n");
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw *r = data;

	if (key == KEY_RO) {
		r->ro = 1;
		return 1; /* keep: the kernel mounts read-only too */
	}
	return 1;
}

/* Config file lines become -o options placed before the command line's. */
static int load_config(struct fuse_args *args)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	g_autofree char *path = NULL;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) keys = NULL;
	int pos = 1;

	if (xdg && *xdg)
		path = g_build_filename(xdg, "hubfs", "config", NULL);
	else if (home)
		path = g_build_filename(home, ".config", "hubfs", "config", NULL);
	if (!path || access(path, F_OK) != 0)
		return 0;
	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
		fprintf(stderr, "hubfs: %s: %s\n", path, err->message);
		return -1;
	}
	keys = g_key_file_get_keys(kf, "hubfs", NULL, NULL);
	for (char **k = keys; k && *k; k++) {
		g_autofree char *v = g_key_file_get_string(kf, "hubfs", *k, NULL);
		g_autofree char *o = NULL;

		if (!strcmp(*k, "token") || !strcmp(*k, "client_secret") || !strcmp(*k, "refresh_token")) {
			fprintf(stderr, "hubfs: %s: secrets belong in token_file=, not in the config\n", path);
			return -1;
		}
		if (!v)
			continue;
		o = (!strcmp(v, "true") || !strcmp(v, "yes")) &&
		    (!strcmp(*k, "ro") || !strcmp(*k, "allow_delete")) ? g_strdup_printf("-o%s", *k)
								       : g_strdup_printf("-o%s=%s", *k, v);
		fuse_opt_insert_arg(args, pos++, o);
	}
	return 0;
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
	const char *env;

	if (load_config(args))
		return -1;
	if (fuse_opt_parse(args, &r, spec, proc) == -1)
		return -1;

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
			return -1;
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
			return -1;
		}
	}

	env = getenv("HUBSPOT_TOKEN");
	if (o->token_file)
		h->token = read_token_file(o->token_file);
	else if (env && *env)
		h->token = g_strdup(env);
	/* Keep the token out of anything we might start later. */
	unsetenv("HUBSPOT_TOKEN");
	if (!h->token) {
		if (!o->token_file)
			fprintf(stderr, "hubfs: no token: set HUBSPOT_TOKEN or -o token_file=PATH\n");
		return -1;
	}
	return 0;
}

void hubfs_opts_free(struct hubfs_opts *o)
{
	free(o->api_url);
	free(o->token_file);
	free(o->ca_file);
	for (int t = 0; t < 4; t++)
		free(o->shown[t]);
}
