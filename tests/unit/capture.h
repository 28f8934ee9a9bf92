/* capture.h - keep a unit test's stderr (its log lines) in a file, to check
 * afterwards that no secret reached the logs.
 *
 * capture_start("test_x") sends stderr to a temporary file from then on; a
 * failed assertion (SIGABRT) first copies what was captured to the real
 * stderr, so the reason is not lost. capture_end() restores stderr and
 * returns the captured text (g_free), deleting the file. */
#ifndef HUBFS_TEST_CAPTURE_H
#define HUBFS_TEST_CAPTURE_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib.h>

static char capture_path[64];
static int capture_saved = -1;

static void capture_on_abort(int sig)
{
	char buf[4096];
	ssize_t n;
	int fd = open(capture_path, O_RDONLY);

	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (write(capture_saved, buf, (size_t)n) < 0)
			break;
	signal(sig, SIG_DFL);
	raise(sig);
}

static inline void capture_start(const char *name)
{
	int fd;

	snprintf(capture_path, sizeof(capture_path), "/tmp/%s_stderr_XXXXXX", name);
	fd = mkstemp(capture_path);
	if (fd < 0) {
		perror("mkstemp");
		exit(1);
	}
	fprintf(stderr, "%s (stderr of the run goes to %s)\n", name, capture_path);
	capture_saved = dup(2);
	if (capture_saved < 0) {
		perror("dup");
		exit(1);
	}
	dup2(fd, 2);
	close(fd);
	setvbuf(stderr, NULL, _IONBF, 0);
	signal(SIGABRT, capture_on_abort);
}

static inline char *capture_end(gsize *len)
{
	char *text = NULL;

	fflush(stderr);
	dup2(capture_saved, 2);
	close(capture_saved);
	signal(SIGABRT, SIG_DFL);
	if (!g_file_get_contents(capture_path, &text, len, NULL)) {
		fprintf(stderr, "FAIL: the captured stderr %s is gone\n", capture_path);
		exit(1);
	}
	unlink(capture_path);
	return text;
}

#endif
