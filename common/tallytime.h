/*
 * tallytime.h: time as int64_t nanoseconds since the Unix epoch, UTC.
 *
 * Every time in tally is an int64_t count of nanoseconds (name ends in _ns),
 * which covers the years 1678-2262. Hours are UTC hours: hour_floor() is
 * the start of the hour holding t. Parsing accepts what an operator types:
 *   2026-10                  a month        -> [2026-10-01, 2026-11-01)
 *   2026-10-05               a day          -> [day, next day)
 *   2026-10-05T13:00:00Z     an instant     -> [t, t]
 *   2026-10-05T13:00Z, 2026-10-05T13:00:00.5Z, 2026-10-05 13:00:00,
 *   2026-10-05T15:00:00+02:00 (offsets are converted to UTC)
 *   @1790000000              Unix seconds
 * An instant without a zone is UTC. time_parse_range() returns the span the
 * text denotes, so "--from 2026-10 --to 2026-10" means all of October.
 */
#ifndef TALLY_TIME_H
#define TALLY_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_PER_SEC  1000000000LL
#define NS_PER_HOUR (3600LL * NS_PER_SEC)

struct tally_err;

int64_t time_now_ns(void);             /* CLOCK_REALTIME */
int64_t time_mono_ns(void);            /* CLOCK_MONOTONIC, for durations */

/* The collection clock: CLOCK_MONOTONIC plus the wall clock's offset from
 * it, measured once, the first time either function is called (by any
 * thread: all agree). It reads like the wall clock did at that moment and
 * then runs at the real rate: a step of the wall clock (NTP, an operator)
 * does not move it. Collectors stamp readings and events with it; the
 * scheduler turns those stamps into data time (collectors/scheduler.h). */
int64_t time_collect_ns(void);
int64_t time_collect_anchor_ns(void);  /* time_collect_ns() - time_mono_ns() */

/* t rounded to the nearest millisecond (halves away from zero). */
int64_t time_round_ms(int64_t t_ns);

static inline int64_t hour_floor(int64_t t_ns)
{
	int64_t h = t_ns / NS_PER_HOUR;
	if (t_ns % NS_PER_HOUR < 0)
		h--;
	return h * NS_PER_HOUR;
}

/* Parse a time or period; *start_ns and *end_ns receive the span it denotes
 * (equal for an instant). Returns 0, or -EINVAL with a message in e. */
int time_parse_range(const char *s, int64_t *start_ns, int64_t *end_ns,
		     struct tally_err *e);

/* Parse a duration: "10s", "250ms", "5m", "1h", "2d", or plain seconds "10".
 * Returns 0, or -EINVAL / -ERANGE with a message in e. */
int duration_parse(const char *s, int64_t *ns, struct tally_err *e);

/* The calendar month (UTC) that holds t: [its first instant, the next
 * month's first instant). */
void time_month_of(int64_t t_ns, int64_t *start_ns, int64_t *end_ns);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);

/* "2026-10-05T13:00:00Z", with ".nnnnnnnnn" only when t is not whole
 * seconds. buf must hold at least 40 bytes. Returns buf. */
char *time_format_iso(int64_t t_ns, char *buf, size_t len);

#endif
