/*
 * test_time.c: parsing and formatting of UTC times and durations. Expected
 * Unix times come from `date -u -d ... +%s` (GNU coreutils, an independent
 * oracle), e.g. date -u -d 2026-10-01 +%s = 1790812800.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "err.h"
#include "tallytime.h"
#include "testutil.h"

#define S(x) ((int64_t)(x) * NS_PER_SEC)

static const struct {
	const char *in;
	int64_t start_ns, end_ns;
} ok_cases[] = {
	/* a month: [first instant, first instant of the next) */
	{ "2026-10", S(1790812800LL), S(1793491200LL) },
	/* February of a leap year: 29 days, 2028-02-01 .. 2028-03-01 */
	{ "2028-02", S(1832976000LL), S(1835481600LL) },
	/* December rolls into the next year: 2026-12-01 .. 2027-01-01 */
	{ "2026-12", S(1795996800LL + 86400), S(1798761600LL) },
	/* a day */
	{ "2026-10-01", S(1790812800LL), S(1790812800LL + 86400) },
	/* instants */
	{ "2026-10-05T13:00:00Z", S(1791205200LL), S(1791205200LL) },
	{ "2026-10-05T13:00Z", S(1791205200LL), S(1791205200LL) },
	{ "2026-10-05 13:00:00", S(1791205200LL), S(1791205200LL) },
	{ "2026-10-05T15:00:00+02:00", S(1791205200LL), S(1791205200LL) },
	{ "2026-10-05T10:30:00-0230", S(1791205200LL), S(1791205200LL) },
	{ "2026-10-05T13:00:00.5Z", S(1791205200LL) + 500000000, S(1791205200LL) + 500000000 },
	{ "2026-10-05T13:00:00.000000001Z", S(1791205200LL) + 1, S(1791205200LL) + 1 },
	{ "@1791205200", S(1791205200LL), S(1791205200LL) },
};

static const struct {
	const char *in, *why;
} bad_cases[] = {
	{ "", "not a date" },
	{ "2026-13", "month must be 01-12" },
	{ "2026-00", "month must be 01-12" },
	{ "2026-11-31", "no such day" },
	{ "2026-02-29", "no such day" },
	{ "2026-10-05T24:00:00Z", "time of day out of range" },
	{ "2026-10-05T13:00:00Zjunk", "trailing characters" },
	{ "2026-10-05T13:00:00.1234567890Z", "more than 9 fractional digits" },
	{ "2026-10-05X13:00", "expected 'T'" },
	{ "@12abc", "not a number" },
	{ "yesterday", "not a date" },
};

START_TEST(test_parse_ok)
{
	int64_t s, t;
	struct tally_err e = { 0 };
	ck_assert_msg(time_parse_range(ok_cases[_i].in, &s, &t, &e) == 0, "%s: %s", ok_cases[_i].in, e.msg);
	ck_assert_msg(s == ok_cases[_i].start_ns && t == ok_cases[_i].end_ns, "%s: got [%lld, %lld]",
		      ok_cases[_i].in, (long long)s, (long long)t);
}
END_TEST

START_TEST(test_parse_bad)
{
	int64_t s, t;
	struct tally_err e = { 0 };
	ck_assert_int_eq(time_parse_range(bad_cases[_i].in, &s, &t, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, bad_cases[_i].why) != NULL, "'%s': message '%s' lacks '%s'",
		      bad_cases[_i].in, e.msg, bad_cases[_i].why);
}
END_TEST

START_TEST(test_durations)
{
	int64_t ns;
	struct tally_err e = { 0 };
	ck_assert_int_eq(duration_parse("10s", &ns, &e), 0);
	ck_assert_int_eq(ns, S(10));
	ck_assert_int_eq(duration_parse("250ms", &ns, &e), 0);
	ck_assert_int_eq(ns, 250000000);
	ck_assert_int_eq(duration_parse("5m", &ns, &e), 0);
	ck_assert_int_eq(ns, S(300));
	ck_assert_int_eq(duration_parse("1h", &ns, &e), 0);
	ck_assert_int_eq(ns, S(3600));
	ck_assert_int_eq(duration_parse("2d", &ns, &e), 0);
	ck_assert_int_eq(ns, S(172800));
	ck_assert_int_eq(duration_parse("7", &ns, &e), 0);
	ck_assert_int_eq(ns, S(7));
	ck_assert_int_eq(duration_parse("10 parsecs", &ns, &e), -EINVAL);
	ck_assert_int_eq(duration_parse("-5s", &ns, &e), -EINVAL);
	ck_assert_int_eq(duration_parse("fast", &ns, &e), -EINVAL);
	ck_assert_int_eq(duration_parse("1000000d", &ns, &e), -ERANGE);
}
END_TEST

START_TEST(test_format_and_hours)
{
	char buf[48];
	ck_assert_str_eq(time_format_iso(S(1790812800LL), buf, sizeof(buf)), "2026-10-01T00:00:00Z");
	ck_assert_str_eq(time_format_iso(S(1791205200LL) + 1, buf, sizeof(buf)),
			 "2026-10-05T13:00:00.000000001Z");
	ck_assert_str_eq(time_format_iso(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999999999Z");
	/* round trip through the parser */
	int64_t s, t;
	ck_assert_int_eq(time_parse_range("2028-02-29T23:59:59.25Z", &s, &t, NULL), 0);
	ck_assert_str_eq(time_format_iso(s, buf, sizeof(buf)), "2028-02-29T23:59:59.250000000Z");
	/* hours: a boundary is its own hour; before the epoch rounds down */
	ck_assert_int_eq(hour_floor(S(1790812800LL)), S(1790812800LL));
	ck_assert_int_eq(hour_floor(S(1790812800LL) + NS_PER_HOUR - 1), S(1790812800LL));
	ck_assert_int_eq(hour_floor(-1), -NS_PER_HOUR);
	ck_assert_int_eq(hour_floor(0), 0);
	ck_assert_int_eq(time_days_from_civil(1970, 1, 1), 0);
	ck_assert_int_eq(time_days_from_civil(2026, 10, 1), 1790812800LL / 86400);
	ck_assert_int_eq(time_days_from_civil(1969, 12, 31), -1);
}
END_TEST

/* The month holding an instant, by hand: 2026-10-01 = 1790812800 s,
 * 2026-11-01 = 1793491200 (31 days later); 2028-02-01 = 1832976000,
 * 2028-03-01 = 1835481600 (29 days: a leap year); 2026-12-01 = 1796083200,
 * 2027-01-01 = 1798761600; before the epoch, 1969-12-01 = -2678400. */
/* Rounding to the millisecond: halves away from zero, both signs. */
START_TEST(test_round_ms)
{
	static const struct { int64_t in, out; } rows[] = {
		{ 0, 0 }, { 499999, 0 }, { 500000, 1000000 }, { 1499999, 1000000 },
		{ 1200000003417LL, 1200000000000LL }, { -499999, 0 }, { -500000, -1000000 },
		{ -600000004759LL, -600000000000LL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_int_eq(time_round_ms(rows[i].in), rows[i].out);
}
END_TEST

/* The collection clock is CLOCK_MONOTONIC plus one anchor, the same on
 * every call. */
START_TEST(test_collect_clock)
{
	int64_t a = time_collect_anchor_ns();
	ck_assert_int_ne(a, 0);
	ck_assert_int_eq(time_collect_anchor_ns(), a);
	int64_t m1 = time_mono_ns(), c = time_collect_ns(), m2 = time_mono_ns();
	ck_assert_int_ge(c, m1 + a);
	ck_assert_int_le(c, m2 + a);
}
END_TEST

START_TEST(test_month_of)
{
	static const struct { int64_t t, from, to; } c[] = {
		{ S(1790812800LL), S(1790812800LL), S(1793491200LL) },          /* its first instant */
		{ S(1793491200LL) - 1, S(1790812800LL), S(1793491200LL) },      /* its last nanosecond */
		{ S(1835481600LL) - 1, S(1832976000LL), S(1835481600LL) },      /* 2028-02-29T23:59:59.999999999 */
		{ S(1796083200LL) + 5, S(1796083200LL), S(1798761600LL) },      /* December: into January */
		{ -1, S(-2678400LL), 0 },                                        /* 1969-12-31T23:59:59.999999999 */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int64_t from, to;
		time_month_of(c[i].t, &from, &to);
		ck_assert_msg(from == c[i].from && to == c[i].to, "case %zu: [%lld, %lld)", i, (long long)from,
			      (long long)to);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("time");
	TCase *tc = tcase_create("time");
	tcase_add_loop_test(tc, test_parse_ok, 0, (int)(sizeof(ok_cases) / sizeof(ok_cases[0])));
	tcase_add_loop_test(tc, test_parse_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_format_and_hours);
	tcase_add_test(tc, test_month_of);
	tcase_add_test(tc, test_round_ms);
	tcase_add_test(tc, test_collect_clock);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
