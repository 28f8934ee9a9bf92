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
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "hubfs: %s: %s\n", names[level & 7], line);
}
