/* statedir.h - the per-portal state directory and the files in it
 * (journal.db and its -wal/-shm, errors.log, rejected/ …), trusted only if
 * no other user could have written them.
 *
 * A journal planted by another user would be replayed with the mounting
 * user's token (creates, archives, edits); a symlink planted as errors.log
 * would have hubfs append to a file of the attacker's choosing. So: the
 * directory and everything in it must belong to the mounting user and not be
 * writable by group or others, every directory above it must belong to the
 * user or root and be writable by no one else (unless sticky, as /tmp), and
 * files are opened with O_NOFOLLOW and checked through the descriptor.
 * Read bits for group/others are taken away (0700, 0600); write bits are
 * refused, with the path and the reason.
 */
#ifndef HUBFS_STATEDIR_H
#define HUBFS_STATEDIR_H

#include <stdint.h>

/* The state directory of a portal, $XDG_STATE_HOME/hubfs/<portal> (else
 * $HOME/.local/state/hubfs/<portal>; a relative XDG_STATE_HOME is ignored),
 * created 0700 with its parents and checked (statedir_check). With neither
 * variable set (or a relative HOME) there is no fallback: -ENOENT. Returns 0
 * and *dir (g_free), or -errno with *why (g_free) naming the path and the
 * reason. */
int statedir_prepare(uint64_t portal, char **dir, char **why);

/* Check an existing state directory (see above), and every entry in it and
 * in its subdirectories: regular files and directories only, owned by the
 * user, not writable by group or others. Tightens the read bits of the
 * directory to 0700. Returns 0, or -EPERM (-ENOTDIR, -ELOOP, -errno) with
 * *why (g_free; may be NULL to not want it). */
int statedir_check(const char *dir, char **why);

/* Open dir/name with O_NOFOLLOW | O_CLOEXEC | flags (O_CREAT creates it
 * 0600) and check the descriptor: a regular file owned by the user, not
 * writable by group or others (read bits for them are taken away). Returns
 * the descriptor, or -errno (-ELOOP for a symlink, -EPERM) with *why
 * (g_free; may be NULL). */
int statedir_open(const char *dir, const char *name, int flags, char **why);

#endif
