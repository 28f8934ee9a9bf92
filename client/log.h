/* log.h - the one logging facility of hubfs.
 *
 * Levels follow syslog order. The level test happens before the arguments are
 * evaluated. Library code logs and returns an error; it never exits. Tokens must
 * never be passed to these functions.
 *
 * Each message is one line on stderr ("hubfs: warning: …"; newlines in the text
 * become spaces). When stderr is a journald stream ($JOURNAL_STREAM names it, as
 * in a systemd service) the line is "<4>…" instead: journald takes the syslog
 * priority from that prefix.
 */
#ifndef HUBFS_LOG_H
#define HUBFS_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARNING = 4, LOG_NOTICE = 5, LOG_INFO = 6, LOG_DEBUG = 7 };

extern int log_threshold; /* messages with level > threshold are dropped */

/* Set the threshold, and look whether stderr goes to journald (call once, at
 * startup, before any thread logs). */
void log_set_level(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...) do { if ((lvl) <= log_threshold) log_msg((lvl), __VA_ARGS__); } while (0)
#define log_err(...)     LOG_AT(LOG_ERR, __VA_ARGS__)
#define log_warn(...)    LOG_AT(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  LOG_AT(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   LOG_AT(LOG_DEBUG, __VA_ARGS__)

#endif
