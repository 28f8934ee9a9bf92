/* daemon.h - running hubfs in the background: the fork whose parent waits for
 * the daemon to serve, the one-mount-per-state-directory lock, and where a
 * daemon's messages go. Used by main.c only. */
#ifndef HUBFS_DAEMON_H
#define HUBFS_DAEMON_H

#include <stdint.h>

/* Fork before anything that must live in the daemon (threads, locks, the
 * journal, curl's shared state). In the child: returns 0 and *ready_fd, the
 * write end of a pipe to hand to daemon_ready() once the mount serves. In the
 * parent: waits until the child is ready (exit status 0) or has exited
 * (its status; 1 if it was killed), returns 1 and *status; the parent then
 * only cleans up and exits with *status. The child's startup errors reach the
 * terminal because it keeps the parent's stderr until daemon_detach(). Returns
 * -errno (nothing forked) if the pipe or the fork fails. */
int daemon_start(int *ready_fd, int *status);

/* Tell the waiting parent the mount serves, and close the pipe. *ready_fd is
 * set to -1; a no-op when it already is (foreground, or said already). */
void daemon_ready(int *ready_fd);

/* Leave the terminal: new session, cwd "/", stdin and stdout on /dev/null.
 * stderr stays where it is if it is a regular file or /dev/null (the caller
 * chose it: `hubfs MNT 2>>log`); otherwise (a terminal, a pipe whose reader
 * would wait for its end) it goes to state_dir/hubfs.log, appended, mode 0600;
 * a hubfs.log past 1 MiB is moved to hubfs.log.1 first. Returns 0, or -errno
 * (then stderr is /dev/null and the reason was logged before). */
int daemon_detach(const char *state_dir);

/* Take state_dir's mount lock (state_dir/mount.lock, an open-file-description
 * lock held as long as *fd is open) and write this mount into it. Returns 0
 * and *fd; -EBUSY after printing which mount holds it (pid and mountpoint), or
 * another -errno after printing why. */
int instance_lock(const char *state_dir, uint64_t portal, const char *mountpoint, int *fd);

#endif
