/* cli.h - the hubfs commands that are not a mount: `hubfs status`, `hubfs
 * sync`, `--help` and `--version`, and the progress line `sync` draws. They
 * talk to a running mount through its .hubfs/ files only. */
#ifndef HUBFS_CLI_H
#define HUBFS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of `hubfs status` and `hubfs sync` (hubfs(1) lists them). */
enum cli_exit {
	CLI_OK = 0,         /* done: every queued change landed / the summary was printed */
	CLI_NOT_LANDED = 1, /* sync: some changes failed or are in conflict (listed) */
	CLI_USAGE = 2,      /* bad arguments */
	CLI_NO_MOUNT = 3,   /* MOUNTPOINT is not a hubfs mount, or it went away */
};

/* If argv is a command rather than a mount (status, sync, -h/--help,
 * -V/--version, or no argument at all), run it and return its exit status.
 * Otherwise return -1 and do nothing. */
int cli_main(int argc, char *argv[]);

/* One sample of a running sync, taken from status.json. */
struct cli_progress {
	int64_t landed;             /* changes landed since the sync started */
	int64_t remaining;          /* pending + in flight + in doubt */
	const char *batch_kind;     /* the chunk being sent ("update", "create", …) or NULL */
	const char *batch_type;     /* its object type */
	int64_t batch_records;
	int64_t waits;              /* rate-limit waits since the sync started */
	bool rate_waiting;          /* the request window is full or paused now */
	bool offline;               /* HubSpot is not answering */
	double per_s;               /* landing rate; <= 0: not known yet */
};

/* Seconds until remaining changes land at per_s, or -1 if unknown. */
int64_t cli_eta_s(int64_t remaining, double per_s);

/* The one-line display of p, cut to width - 1 columns (so that a terminal
 * never wraps it; width <= 0: not cut), in buf (NUL-terminated). Returns buf. */
char *cli_progress_line(const struct cli_progress *p, char *buf, size_t size, int width);

#endif
