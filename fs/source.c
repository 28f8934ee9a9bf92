/* source.c - SOURCE and the mount(8) options a FUSE helper ignores. */
#include "fs/source.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fs/config.h"

uint64_t source_portal_id(const char *s)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > INT64_MAX)
		return 0;
	return (uint64_t)v;
}

static int parse(const char *s, struct hubfs_source *src)
{
	if (!strcmp(s, "hubspot"))
		return 0;
	if (g_str_has_prefix(s, "hubspot:")) {
		src->portal = source_portal_id(s + 8);
		if (src->portal)
			return 0;
		fprintf(stderr, "hubfs: SOURCE %s: the portal id after hubspot: is a number "
			"(the Hub ID, e.g. hubspot:12345678)\n", s);
		return -1;
	}
	if (g_str_has_prefix(s, "profile:")) {
		if (config_profile_name_ok(s + 8)) {
			src->profile = g_strdup(s + 8);
			return 0;
		}
		fprintf(stderr, "hubfs: SOURCE %s: a profile name is 1 to %d letters, digits, "
			"'-', '_' or '.'\n", s, CONFIG_PROFILE_MAX);
		return -1;
	}
	fprintf(stderr, "hubfs: SOURCE must be hubspot, hubspot:<portal-id> or profile:<name>, "
		"not '%s'\n", s);
	return -1;
}

int source_take(struct fuse_args *args, struct hubfs_source *src)
{
	int pos[3], n = 0;

	memset(src, 0, sizeof(*src));
	/* Positional arguments: not an option, not the value of -o. (libfuse's
	 * own options take no separate value; "--" is not used by mount.fuse3.) */
	for (int i = 1; i < args->argc; i++) {
		const char *a = args->argv[i];

		if (!strcmp(a, "-o")) {
			i++;
			continue;
		}
		if (a[0] == '-')
			continue;
		if (n < 3)
			pos[n] = i;
		n++;
	}
	if (n < 2)
		return 0; /* MOUNTPOINT alone (or nothing: the usage says so later) */
	if (n > 2) {
		fprintf(stderr, "hubfs: one SOURCE and one MOUNTPOINT, not %d arguments (%s, %s, %s…)\n",
			n, args->argv[pos[0]], args->argv[pos[1]], args->argv[pos[2]]);
		return -1;
	}
	if (parse(args->argv[pos[0]], src) != 0)
		return -1;
	if (!args->allocated) { /* main()'s argv: copy before changing it */
		struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);

		for (int i = 0; i < args->argc; i++)
			if (fuse_opt_add_arg(&copy, args->argv[i]) != 0) {
				fuse_opt_free_args(&copy);
				g_free(src->profile);
				src->profile = NULL;
				return -1;
			}
		*args = copy;
	}
	free(args->argv[pos[0]]);
	memmove(&args->argv[pos[0]], &args->argv[pos[0] + 1],
		sizeof(char *) * (size_t)(args->argc - pos[0])); /* with the NULL */
	args->argc--;
	return 0;
}

bool source_opt_ignored(const char *opt)
{
	/* fstab and mount(8) options that mean nothing to a FUSE filesystem (as
	 * mount.fuse3 drops the first ones itself when it is in the chain),
	 * atime variants the kernel's FUSE mount refuses (hubfs mounts noatime),
	 * and userspace options: x-* / X-* (x-systemd.automount, x-gvfs-show, …)
	 * and comment=. */
	static const char *const words[] = {
		"auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev",
		"nofail", "defaults", "relatime", "norelatime", "strictatime", "nostrictatime",
		"lazytime", "nolazytime", "diratime", "nodiratime", "iversion", "noiversion",
		"loud", "silent", NULL,
	};

	for (size_t i = 0; words[i]; i++)
		if (!strcmp(opt, words[i]))
			return true;
	return !strncmp(opt, "x-", 2) || !strncmp(opt, "X-", 2) || !strncmp(opt, "comment=", 8);
}
