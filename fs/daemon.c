/* daemon.c - running hubfs in the background (daemon.h).
 *
 * Why our own fork instead of fuse_daemonize(): everything a mount needs
 * (the refresh worker, the batcher, the SIGHUP thread, the journal's lock,
 * curl's shared state) must be created in the process that serves, so the
 * fork comes first, before any of it; and a user must still see startup
 * errors (bad token, unreachable API, a mount already running) on the
 * terminal with a non-zero exit status, so the parent waits on a pipe until
 * the child serves or dies. fuse_daemonize() forks late and points stderr at
 * /dev/null.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "client/log.h"

#define LOG_ROTATE_BYTES (1 << 20)

int daemon_start(int *ready_fd, int *status)
{
	int p[2], ws = 0;
	pid_t pid;
	ssize_t n;
	char c;

	*ready_fd = -1;
	*status = 1;
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	fflush(NULL); /* nothing buffered is written twice */
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		*ready_fd = p[1];
		return 0;
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1) {
		*status = 0;
		return 1;
	}
	/* The child closed the pipe without saying it serves: it exited. */
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(ws))
		*status = WEXITSTATUS(ws) ? WEXITSTATUS(ws) : 1;
	else if (WIFSIGNALED(ws))
		fprintf(stderr, "hubfs: the daemon was killed by signal %d before it mounted\n",
			WTERMSIG(ws));
	return 1;
}

void daemon_ready(int *ready_fd)
{
	char c = 'R';
	ssize_t n;

	if (*ready_fd < 0)
		return;
	do
		n = write(*ready_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	close(*ready_fd);
	*ready_fd = -1;
}

/* Is fd the caller's choice of log: a regular file, or /dev/null? */
static bool chosen_log(int fd)
{
	struct stat st, null;

	if (fstat(fd, &st) != 0)
		return false;
	if (S_ISREG(st.st_mode))
		return true;
	return S_ISCHR(st.st_mode) && stat("/dev/null", &null) == 0 && st.st_rdev == null.st_rdev;
}

static int open_log(const char *state_dir)
{
	g_autofree char *path = g_build_filename(state_dir, "hubfs.log", NULL);
	g_autofree char *old = g_strconcat(path, ".1", NULL);
	struct stat st;
	int fd;

	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > LOG_ROTATE_BYTES)
		rename(path, old);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		log_err("cannot open %s: %s; daemon messages are lost", path, strerror(errno));
	return fd < 0 ? -errno : fd;
}

int daemon_detach(const char *state_dir)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), log = -1, rc = 0;
	bool keep = chosen_log(STDERR_FILENO);

	if (null < 0) {
		log_err("cannot open /dev/null: %s", strerror(errno));
		return -errno;
	}
	if (!keep) {
		log = open_log(state_dir);
		if (log < 0)
			rc = log;
	}
	/* setsid fails only for a process group leader, which a forked child is not. */
	if (setsid() < 0)
		log_warn("setsid: %s", strerror(errno));
	if (chdir("/") != 0)
		log_warn("chdir /: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	if (!keep)
		dup2(log >= 0 ? log : null, STDERR_FILENO);
	if (log >= 0)
		close(log);
	close(null);
	return rc;
}

int instance_lock(const char *state_dir, uint64_t portal, const char *mountpoint, int *fd_out)
{
	g_autofree char *path = g_build_filename(state_dir, "mount.lock", NULL);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	g_autofree char *me = NULL;
	int fd, e;

	*fd_out = -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		fprintf(stderr, "hubfs: cannot open %s: %s\n", path, strerror(e));
		return -e;
	}
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		char held[PATH_MAX + 64] = "";
		char **holder;
		ssize_t n;

		e = errno;
		if (e != EAGAIN && e != EACCES) {
			fprintf(stderr, "hubfs: cannot lock %s: %s\n", path, strerror(e));
			close(fd);
			return -e;
		}
		n = pread(fd, held, sizeof(held) - 1, 0);
		held[n > 0 ? n : 0] = '\0';
		holder = g_strsplit(held, "\n", 3);
		if (g_strv_length(holder) >= 2)
			fprintf(stderr, "hubfs: portal %" PRIu64 " is already mounted on %s (hubfs pid %s,"
				" state directory %s); unmount it first: fusermount3 -u %s\n", portal,
				holder[1], holder[0], state_dir, holder[1]);
		else
			fprintf(stderr, "hubfs: portal %" PRIu64 " is already mounted (state directory"
				" %s is in use); unmount it first\n", portal, state_dir);
		g_strfreev(holder);
		close(fd);
		return -EBUSY;
	}
	/* Read by a second mount, for its message: the pid, then the mountpoint. */
	me = g_strdup_printf("%d\n%s\n", (int)getpid(), mountpoint);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, me, strlen(me), 0) != (ssize_t)strlen(me))
		log_warn("%s: %s", path, strerror(errno)); /* the lock holds all the same */
	*fd_out = fd;
	return 0;
}
