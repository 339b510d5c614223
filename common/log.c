/*
 * log.c: stderr logging with levels and back-off complaints (see log.h).
 */
#include "log.h"
#include "tallytime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static enum log_level cur_level = LOG_INFO;
static int64_t (*clock_fn)(void) = time_now_ns;
static const char *names[] = { "error", "warning", "info", "debug" };
static const int priority[] = { 3, 4, 6, 7 };   /* syslog's err, warning, info, debug */
static int journal = -1;                        /* -1: not looked at yet */

/* stderr is the journal when systemd says so: JOURNAL_STREAM holds the
 * device and inode of the stream it connected (systemd.exec(5)). */
void log_detect_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
		  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_level(enum log_level level) { cur_level = level; }
void log_set_clock(int64_t (*now_ns)(void)) { clock_fn = now_ns ? now_ns : time_now_ns; }

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	char ts[48], line[2048];
	if (level > cur_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (journal < 0)
		log_detect_journal();
	if (journal)   /* the journal stamps the time itself and reads the priority */
		fprintf(stderr, "<%d>tally %s: %s\n", priority[level], names[level], line);
	else
		fprintf(stderr, "%s tally %s: %s\n",
			time_format_iso(clock_fn() / NS_PER_SEC * NS_PER_SEC, ts, sizeof(ts)), names[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int complain(struct complaint *c, enum log_level level, const char *fmt, ...)
{
	int64_t now = clock_fn();
	char line[1536];
	va_list ap;

	if (c->window_ns && now < c->next_ns) {
		c->suppressed++;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->suppressed)
		log_msg(level, "%s (repeated %" PRIu64 " times since the last report)", line, c->suppressed);
	else
		log_msg(level, "%s", line);
	c->window_ns = c->window_ns ? c->window_ns * 2 : COMPLAINT_FIRST_NS;
	if (c->window_ns > COMPLAINT_MAX_NS)
		c->window_ns = COMPLAINT_MAX_NS;
	c->next_ns = now + c->window_ns;
	c->suppressed = 0;
	return 1;
}

void complaint_clear(struct complaint *c, const char *fmt, ...)
{
	va_list ap;
	if (c->window_ns) {
		va_start(ap, fmt);
		vlog(LOG_INFO, fmt, ap);
		va_end(ap);
	}
	c->window_ns = c->next_ns = 0;
	c->suppressed = 0;
}
