/* source.h - hubfs as a mount helper. mount(8) (through mount.fuse3) runs
 * `hubfs SOURCE MOUNTPOINT -o OPTIONS`, where SOURCE is the fstab's first
 * field: `hubspot` (the portal of the token), `hubspot:<portal-id>` (that
 * portal, or no mount) or `profile:<name>` (the [profile <name>] section of
 * the config). OPTIONS then also hold what mount(8) keeps for itself (noauto,
 * user, _netdev, nofail, x-systemd.*, …), which hubfs accepts and ignores. */
#ifndef HUBFS_SOURCE_H
#define HUBFS_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include <fuse_opt.h>

struct hubfs_source {
	char *profile;   /* profile:<name>, or NULL (g_free) */
	uint64_t portal; /* hubspot:<portal-id>, or 0 */
};

/* If args hold two positional arguments, the first is SOURCE: parse it into
 * *src and remove it from args (which must be allocated, or are copied).
 * Returns 0 (also when there is no SOURCE) or -1 after printing why. */
int source_take(struct fuse_args *args, struct hubfs_source *src);

/* Parse a portal id (decimal, 1 to 2^63-1). 0 if it is not one. */
uint64_t source_portal_id(const char *s);

/* Whether opt (one -o option) is one of the options mount(8) and fstab use
 * for themselves, which FUSE filesystems accept and ignore. */
bool source_opt_ignored(const char *opt);

#endif
