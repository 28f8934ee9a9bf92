/* log: one line per message (a newline or other control character in the
 * text is shown as \xNN); "<N>" syslog priorities when stderr is the journald
 * stream that $JOURNAL_STREAM names, "hubfs: level:" otherwise. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "client/log.h"
#include "tests/unit/test.h"

/* Log through a fresh stderr file and return what was written (g_free). */
static char *capture(const char *journal_stream, int same_file)
{
	char path[] = "/tmp/hubfs-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *text = NULL, env[64];
	struct stat st;

	ASSERT(fd >= 0 && saved >= 0);
	ASSERT_EQ(fstat(fd, &st), 0);
	if (journal_stream) {
		snprintf(env, sizeof(env), "%s", journal_stream);
		if (same_file)
			snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", env, 1);
	} else {
		unsetenv("JOURNAL_STREAM");
	}
	fflush(stderr);
	ASSERT_EQ(dup2(fd, 2), 2);
	log_set_level(LOG_INFO);
	log_warn("listing %s: %d", "contacts", 7);
	log_err("two\nlines");
	log_debug("not shown");
	fflush(stderr);
	ASSERT_EQ(dup2(saved, 2), 2);
	close(saved);
	close(fd);
	ASSERT(g_file_get_contents(path, &text, NULL, NULL));
	unlink(path);
	return text;
}

int main(void)
{
	char *t;

	t = capture(NULL, 0);
	ASSERT_STR(t, "hubfs: warning: listing contacts: 7\nhubfs: error: two\\x0alines\n");
	g_free(t);
	t = capture("x", 1);
	ASSERT_STR(t, "<4>listing contacts: 7\n<3>two\\x0alines\n");
	g_free(t);
	/* A stream systemd set up for someone else (stderr redirected since). */
	t = capture("1:1", 0);
	ASSERT_STR(t, "hubfs: warning: listing contacts: 7\nhubfs: error: two\\x0alines\n");
	g_free(t);
	return 0;
}
