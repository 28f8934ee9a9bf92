#include "client/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* Process-wide by nature (stderr is process-wide); set once at startup. */
int log_threshold = LOG_NOTICE;

void log_set_level(int level)
{
	log_threshold = level;
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
	fprintf(stderr, "hubfs: %s: %s\n", names[level & 7], out);
}
