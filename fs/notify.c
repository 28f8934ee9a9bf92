/* notify.c - sd_notify(3) messages for a systemd Type=notify service. */
#include "fs/notify.h"

#include <stdint.h>
#include <unistd.h>

#include "fs/hubfs.h"
#include "hubfs_config.h"

#ifdef HUBFS_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

/* Beyond drain_timeout, unmounting waits for the call in flight to end and for
 * the background threads to stop. */
#define STOP_MARGIN_S 30

void hubfs_notify_ready(struct hubfs *h)
{
	/* MAINPID: without -f the daemon is a child of the process the manager
	 * started (the unit runs hubfs -f, where it is that process). Called
	 * from the FUSE init callback: the kernel has sent its first request. */
	sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=portal %" G_GUINT64_FORMAT " mounted on %s",
		   (unsigned long)getpid(), h->portal_id, h->mountpoint ? h->mountpoint : "?");
}

void hubfs_notify_stopping(struct hubfs *h)
{
	uint64_t usec = (uint64_t)(h->o.drain_timeout_s + STOP_MARGIN_S) * 1000000u;

	sd_notifyf(0, "STOPPING=1\nEXTEND_TIMEOUT_USEC=%" G_GUINT64_FORMAT "\n"
		   "STATUS=unmounting: sending what is queued (up to drain_timeout=%d s)",
		   usec, h->o.drain_timeout_s);
}
#else
void hubfs_notify_ready(struct hubfs *h)
{
	(void)h;
}

void hubfs_notify_stopping(struct hubfs *h)
{
	(void)h;
}
#endif
