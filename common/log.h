/*
 * log.h: one-line log records to stderr, and complaints that are said once
 * per back-off window.
 *
 * Only programs (cmd/) and the daemon's own loops log; library code fills a
 * struct tally_err instead. A struct complaint remembers when a repeated
 * failure was last reported: the first failure is logged at once, repeats are
 * counted silently until the window ends, then logged with the count, and the
 * window doubles up to a ceiling. complaint_clear() logs that the condition
 * ended (if it was reported) and resets the window. Like collectd's
 * c_complain, so a dead libvirtd does not fill a disk with identical lines.
 */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdint.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
int log_level_parse(const char *s, enum log_level *out); /* 0 or -EINVAL */
void log_set_clock(int64_t (*now_ns)(void));             /* tests; NULL = real */
/* Look again whether stderr is systemd's journal (done before the first
 * record): then records carry a "<N>" syslog priority prefix and no time,
 * which journald reads as the priority; by hand they carry the time. */
void log_detect_journal(void);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct complaint {
	int64_t next_ns;      /* no report before this time */
	int64_t window_ns;    /* current back-off window, 0 = never reported */
	uint64_t suppressed;  /* repeats not logged since the last report */
};

#define COMPLAINT_FIRST_NS (60LL * 1000000000LL)    /* first window: 1 min */
#define COMPLAINT_MAX_NS   (3600LL * 1000000000LL)  /* ceiling: 1 hour */

/* Returns 1 if this call logged, 0 if it was suppressed. */
int complain(struct complaint *c, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void complaint_clear(struct complaint *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
