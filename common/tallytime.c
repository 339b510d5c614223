/*
 * tallytime.c: clocks, ISO 8601 parsing and formatting, durations.
 *
 * Civil-date arithmetic follows Howard Hinnant's days_from_civil algorithm
 * so no libc time zone state (TZ, mktime) can change a result.
 */
#include "tallytime.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t time_round_ms(int64_t t_ns)
{
	int64_t q = t_ns / 1000000, r = t_ns % 1000000;
	if (r >= 500000)
		q++;
	else if (r <= -500000)
		q--;
	return q * 1000000;
}

/* wall - monotonic; 0 until measured (a measured 0 is stored as 1 ns) */
static int64_t collect_anchor;

int64_t time_collect_anchor_ns(void)
{
	int64_t a = __atomic_load_n(&collect_anchor, __ATOMIC_ACQUIRE);
	if (a)
		return a;
	/* the wall clock read between two monotonic reads, against their mean */
	int64_t m1 = time_mono_ns(), w = time_now_ns(), m2 = time_mono_ns();
	int64_t c = w - (m1 + (m2 - m1) / 2);
	int64_t expected = 0;
	if (!c)
		c = 1;
	if (!__atomic_compare_exchange_n(&collect_anchor, &expected, c, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return expected;  /* another thread measured first */
	return c;
}

int64_t time_collect_ns(void)
{
	return time_mono_ns() + time_collect_anchor_ns();
}

int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void time_month_of(int64_t t_ns, int64_t *start_ns, int64_t *end_ns)
{
	int64_t days = t_ns / (86400 * NS_PER_SEC), y;
	unsigned m, d;
	if (t_ns % (86400 * NS_PER_SEC) < 0)
		days--;
	civil_from_days(days, &y, &m, &d);
	*start_ns = time_days_from_civil(y, m, 1) * 86400 * NS_PER_SEC;
	*end_ns = time_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400 * NS_PER_SEC;
}

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap(y) ? 29 : n[m - 1];
}

/* Read exactly n digits at *p; returns -1 if they are not there. */
static int64_t digits(const char **p, int n)
{
	int64_t v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return v;
}

#define BAD(why) err_set(e, -EINVAL, "'%s': %s (expected 2026-10, 2026-10-05 or 2026-10-05T13:00:00Z)", s, why)

int time_parse_range(const char *s, int64_t *start_ns, int64_t *end_ns,
		     struct tally_err *e)
{
	const char *p = s;
	int64_t y, mo, d = 1, hh = 0, mi = 0, ss = 0, frac_ns = 0, off_s = 0;

	if (*p == '@') {
		char *end;
		errno = 0;
		long long v = strtoll(p + 1, &end, 10);
		if (end == p + 1 || *end || errno || v > INT64_MAX / NS_PER_SEC ||
		    v < INT64_MIN / NS_PER_SEC)
			return BAD("not a number of Unix seconds");
		*start_ns = *end_ns = (int64_t)v * NS_PER_SEC;
		return 0;
	}
	if ((y = digits(&p, 4)) < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 0)
		return BAD("not a date");
	if (y < 1678 || y > 2261)
		return BAD("year out of range 1678-2261");
	if (mo < 1 || mo > 12)
		return BAD("month must be 01-12");
	if (*p == '\0') {
		int64_t ny = mo == 12 ? y + 1 : y, nm = mo == 12 ? 1 : mo + 1;
		*start_ns = time_days_from_civil(y, (unsigned)mo, 1) * 86400 * NS_PER_SEC;
		*end_ns = time_days_from_civil(ny, (unsigned)nm, 1) * 86400 * NS_PER_SEC;
		return 0;
	}
	if (*p++ != '-' || (d = digits(&p, 2)) < 0)
		return BAD("not a date");
	if (d < 1 || d > month_days(y, (unsigned)mo))
		return BAD("no such day in that month");
	int64_t day0 = time_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400;
	if (*p == '\0') {
		*start_ns = day0 * NS_PER_SEC;
		*end_ns = (day0 + 86400) * NS_PER_SEC;
		return 0;
	}
	if (*p != 'T' && *p != 't' && *p != ' ')
		return BAD("expected 'T' after the date");
	p++;
	if ((hh = digits(&p, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2)) < 0)
		return BAD("expected hh:mm after 'T'");
	if (*p == ':') {
		p++;
		if ((ss = digits(&p, 2)) < 0)
			return BAD("expected seconds after hh:mm:");
		if (*p == '.' || *p == ',') {
			int64_t scale = NS_PER_SEC / 10;
			p++;
			if (!isdigit((unsigned char)*p))
				return BAD("expected digits after the decimal point");
			while (isdigit((unsigned char)*p)) {
				if (scale == 0)
					return BAD("more than 9 fractional digits");
				frac_ns += (*p++ - '0') * scale;
				scale /= 10;
			}
		}
	}
	if (hh > 23 || mi > 59 || ss > 59)
		return BAD("time of day out of range");
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int64_t oh, om = 0;
		if ((oh = digits(&p, 2)) < 0)
			return BAD("expected hh:mm offset");
		if (*p == ':')
			p++;
		if (*p && (om = digits(&p, 2)) < 0)
			return BAD("expected hh:mm offset");
		if (oh > 23 || om > 59)
			return BAD("offset out of range");
		off_s = sign * (oh * 3600 + om * 60);
	}
	if (*p != '\0')
		return BAD("trailing characters");
	*start_ns = *end_ns = (day0 + hh * 3600 + mi * 60 + ss - off_s) * NS_PER_SEC + frac_ns;
	return 0;
}
#undef BAD

int duration_parse(const char *s, int64_t *ns, struct tally_err *e)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	int64_t unit = NS_PER_SEC;

	if (end == s || errno || v < 0 || !(v == v))
		return err_set(e, -EINVAL, "'%s': not a duration (expected 10s, 250ms, 5m, 1h or 2d)", s);
	if (!strcmp(end, "") || !strcmp(end, "s"))
		unit = NS_PER_SEC;
	else if (!strcmp(end, "ms"))
		unit = 1000000;
	else if (!strcmp(end, "us"))
		unit = 1000;
	else if (!strcmp(end, "ns"))
		unit = 1;
	else if (!strcmp(end, "m"))
		unit = 60 * NS_PER_SEC;
	else if (!strcmp(end, "h"))
		unit = 3600 * NS_PER_SEC;
	else if (!strcmp(end, "d"))
		unit = 86400 * NS_PER_SEC;
	else
		return err_set(e, -EINVAL, "'%s': unknown unit '%s' (expected ns, us, ms, s, m, h or d)", s, end);
	if (v * (double)unit > 9.2e18)
		return err_set(e, -ERANGE, "'%s': duration too long", s);
	*ns = (int64_t)(v * (double)unit + 0.5);
	return 0;
}

char *time_format_iso(int64_t t_ns, char *buf, size_t len)
{
	int64_t secs = t_ns / NS_PER_SEC, frac = t_ns % NS_PER_SEC;
	if (frac < 0) {
		frac += NS_PER_SEC;
		secs--;
	}
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (frac)
		snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%09" PRId64 "Z", y, m, d,
			 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac);
	else
		snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02dZ", y, m, d,
			 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
	return buf;
}
