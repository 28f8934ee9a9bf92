#include "client/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* Process-wide by nature (stderr is process-wide); set once at startup. */
int log_threshold = LOG_NOTICE;
/* stderr is a journald stream (a systemd service): lines carry "<N>", the
 * syslog priority journald reads, instead of "hubfs: level:". Set with the
 * level, before any thread starts. */
static int to_journal;

/* systemd sets $JOURNAL_STREAM to "DEVICE:INODE" of the stream it connected
 * to stderr; it only counts if stderr is still that stream. */
static int stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_level(int level)
{
	log_threshold = level;
	to_journal = stderr_is_journal();
}

void log_msg(int level, const char *fmt, ...)
{
	static const char *names[] = { "emerg", "alert", "crit", "error", "warning",
				       "notice", "info", "debug" };
	char line[1024], out[4 * sizeof(line)];
	size_t n = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One line per message, and no terminal control from text a server or
	 * a file name supplied: ESC, CR, LF and the rest are shown as \xNN. */
	for (const char *p = line; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch == 0x7f)
			n += (size_t)snprintf(out + n, sizeof(out) - n, "\\x%02x", ch);
		else
			out[n++] = (char)ch;
	}
	out[n] = '\0';
	if (to_journal)
		fprintf(stderr, "<%d>%s\n", level & 7, out);
	else
		fprintf(stderr, "hubfs: %s: %s\n", names[level & 7], out);
}
