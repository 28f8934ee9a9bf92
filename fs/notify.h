/* notify.h - telling a service manager (systemd, Type=notify) how the mount
 * is doing, through sd_notify(3): READY=1 once mounted and serving, STOPPING=1
 * with the time the drain of the queue may take once unmounted. Without
 * libsystemd at build time, or outside such a service ($NOTIFY_SOCKET unset),
 * both do nothing. */
#ifndef HUBFS_NOTIFY_H
#define HUBFS_NOTIFY_H

struct hubfs;

/* Mounted and serving (from the FUSE init callback, in the daemon). */
void hubfs_notify_ready(struct hubfs *h);
/* The session ended: unmounting and draining the queue for up to
 * drain_timeout, which extends the manager's stop timeout to match. */
void hubfs_notify_stopping(struct hubfs *h);

#endif
