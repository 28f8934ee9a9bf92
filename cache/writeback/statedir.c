/* statedir.c - the state directory, trusted only if it is the user's own
 * (see statedir.h).
 */
#include "cache/writeback/statedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#define SCAN_DEPTH 3

static int say(char **why, int rc, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static int say(char **why, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why) {
		va_start(ap, fmt);
		*why = g_strdup_vprintf(fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Whether st (of path) is the user's and writable by no one else; else
 * -EPERM with *why. */
static int owned(const char *path, const struct stat *st, char **why)
{
	uid_t me = getuid();

	if (st->st_uid != me)
		return say(why, -EPERM, "%s is owned by uid %u, not by you (uid %u): another user "
			   "could have put it there", path, (unsigned)st->st_uid, (unsigned)me);
	if (st->st_mode & 022)
		return say(why, -EPERM, "%s is mode %04o: writable by %s (chmod go-w)", path,
			   (unsigned)(st->st_mode & 07777),
			   st->st_mode & 020 ? "its group" : "other users");
	return 0;
}

/* Every directory above path (a real path): the user's or root's, and
 * writable by no one else unless sticky (then no one can replace what is
 * ours in it). */
static int check_ancestors(const char *real, char **why)
{
	g_autofree char *p = g_strdup(real);
	uid_t me = getuid();
	char *slash;

	while ((slash = strrchr(p, '/'))) {
		struct stat st;

		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(p, &st) != 0)
			return say(why, -errno, "%s: %s", p, strerror(errno));
		if (st.st_uid != me && st.st_uid != 0)
			return say(why, -EPERM, "%s (above the state directory) is owned by uid %u: "
				   "that user could replace the state directory", p, (unsigned)st.st_uid);
		if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
			return say(why, -EPERM, "%s (above the state directory) is mode %04o: other "
				   "users could replace the state directory", p,
				   (unsigned)(st.st_mode & 07777));
		if (slash == p)
			break;
	}
	return 0;
}

/* Every entry of the open directory fd (named path), recursively. */
static int scan(int fd, const char *path, int depth, char **why)
{
	DIR *d;
	struct dirent *e;
	int dfd = dup(fd), rc = 0;

	if (dfd < 0 || !(d = fdopendir(dfd))) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		return say(why, rc, "%s: %s", path, strerror(-rc));
	}
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		g_autofree char *p = NULL;
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = g_build_filename(path, e->d_name, NULL);
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = say(why, -errno, "%s: %s", p, strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			rc = say(why, -EPERM, "%s is a %s, not a file of hubfs", p,
				 S_ISLNK(st.st_mode) ? "symlink" : "special file");
			break;
		}
		rc = owned(p, &st, why);
		if (rc == 0 && S_ISDIR(st.st_mode)) {
			int sub;

			if (depth >= SCAN_DEPTH) {
				rc = say(why, -EPERM, "%s: directories nested too deep", p);
				break;
			}
			sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				rc = say(why, -errno, "%s: %s", p, strerror(errno));
				break;
			}
			rc = scan(sub, p, depth + 1, why);
			close(sub);
		}
	}
	if (rc == 0 && errno)
		rc = say(why, -errno, "%s: %s", path, strerror(errno));
	closedir(d);
	return rc;
}

int statedir_check(const char *dir, char **why)
{
	g_autofree char *real = NULL;
	struct stat st;
	int fd, rc;

	if (why)
		*why = NULL;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		return say(why, rc, "%s: %s", dir, rc == -ELOOP || rc == -ENOTDIR ?
			   "not a directory (a symlink or a file is refused)" : strerror(-rc));
	}
	rc = fstat(fd, &st) != 0 ? say(why, -errno, "%s: %s", dir, strerror(errno))
				   : owned(dir, &st, why);
	if (rc == 0 && (st.st_mode & 077) && fchmod(fd, 0700) != 0)
		rc = say(why, -errno, "%s: chmod 0700: %s", dir, strerror(errno));
	if (rc == 0) {
		real = realpath(dir, NULL);
		rc = real ? check_ancestors(real, why) : say(why, -errno, "%s: %s", dir, strerror(errno));
	}
	if (rc == 0)
		rc = scan(fd, dir, 1, why);
	close(fd);
	return rc;
}

int statedir_prepare(uint64_t portal, char **dir, char **why)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	g_autofree char *base = NULL;
	char *d;
	int rc;

	*dir = NULL;
	*why = NULL;
	if (xdg && xdg[0] == '/')
		base = g_strdup(xdg);
	else if (home && home[0] == '/')
		base = g_build_filename(home, ".local", "state", NULL);
	else
		return say(why, -ENOENT, "neither XDG_STATE_HOME nor HOME is set to an absolute path: "
			   "hubfs will not guess where to keep its journal (a shared place such as "
			   "/tmp would let other users plant one)");
	d = g_strdup_printf("%s/hubfs/%" G_GUINT64_FORMAT, base, portal);
	if (g_mkdir_with_parents(d, 0700) != 0) {
		rc = say(why, -errno, "cannot create %s: %s", d, strerror(errno));
		g_free(d);
		return rc;
	}
	rc = statedir_check(d, why);
	if (rc) {
		g_free(d);
		return rc;
	}
	*dir = d;
	return 0;
}

int statedir_open(const char *dir, const char *name, int flags, char **why)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	struct stat st;
	int fd, rc;

	if (why)
		*why = NULL;
	/* O_NONBLOCK: a FIFO in its place must not hang the mount. */
	fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0) {
		rc = -errno;
		return say(why, rc, "%s: %s", path, rc == -ELOOP ? "a symlink, refused" : strerror(-rc));
	}
	if (fstat(fd, &st) != 0)
		rc = say(why, -errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = say(why, -EPERM, "%s: not a regular file", path);
	else
		rc = owned(path, &st, why);
	if (rc == 0 && (st.st_mode & 077) && fchmod(fd, 0600) != 0)
		rc = say(why, -errno, "%s: chmod 0600: %s", path, strerror(errno));
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}
