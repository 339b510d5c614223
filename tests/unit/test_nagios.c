/*
 * test_nagios.c: check_tally's threshold ranges, as the monitoring-plugins
 * development guidelines define them:
 *
 *   10      alert if x < 0 or x > 10   (outside 0 .. 10)
 *   10:     alert if x < 10            (outside 10 .. inf)
 *   ~:10    alert if x > 10            (outside -inf .. 10)
 *   10:20   alert if x < 10 or x > 20  (outside 10 .. 20)
 *   @10:20  alert if 10 <= x <= 20     (inside 10 .. 20)
 *
 * Each row is a range, a value and whether it alerts, worked out by hand
 * from that table: a value exactly on an edge is inside the range, so it
 * does not alert for a plain range and does alert for an "@" range.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "nagios.h"
#include "testutil.h"

static const struct {
	const char *range;
	double v;
	bool alert;
} cases[] = {
	/* "10": 0 .. 10 */
	{ "10", -1, true },
	{ "10", -0.001, true },
	{ "10", 0, false },             /* lower edge */
	{ "10", 5, false },
	{ "10", 10, false },            /* upper edge */
	{ "10", 10.001, true },
	{ "10", 11, true },
	/* "10:": 10 .. inf */
	{ "10:", -5, true },
	{ "10:", 9.999, true },
	{ "10:", 10, false },           /* edge */
	{ "10:", 1e12, false },
	/* "~:10": -inf .. 10 */
	{ "~:10", -1e12, false },
	{ "~:10", 0, false },
	{ "~:10", 10, false },          /* edge */
	{ "~:10", 10.5, true },
	/* "10:20" */
	{ "10:20", 9, true },
	{ "10:20", 10, false },         /* lower edge */
	{ "10:20", 15, false },
	{ "10:20", 20, false },         /* upper edge */
	{ "10:20", 20.1, true },
	/* "@10:20": alert inside, edges included */
	{ "@10:20", 9.99, false },
	{ "@10:20", 10, true },         /* lower edge */
	{ "@10:20", 15, true },
	{ "@10:20", 20, true },         /* upper edge */
	{ "@10:20", 21, false },
	/* "@10": inside 0 .. 10 */
	{ "@10", -0.5, false },
	{ "@10", 0, true },
	{ "@10", 10, true },
	{ "@10", 10.5, false },
	/* "@~:10": inside -inf .. 10 */
	{ "@~:10", -1e9, true },
	{ "@~:10", 10, true },
	{ "@~:10", 10.01, false },
	/* negative bounds */
	{ "-10:-5", -11, true },
	{ "-10:-5", -10, false },
	{ "-10:-5", -7, false },
	{ "-10:-5", -5, false },
	{ "-10:-5", -4.9, true },
	{ "-10:-5", 0, true },
	{ "~:-5", -5, false },
	{ "~:-5", -4, true },
	{ "-3:", -3, false },
	{ "-3:", -3.5, true },
	/* decimal bounds */
	{ "0.5:1.5", 0.49, true },
	{ "0.5:1.5", 0.5, false },
	{ "0.5:1.5", 1.5, false },
	{ "0.5:1.5", 1.51, true },
	{ "@-1.5:2.25", -1.51, false },
	{ "@-1.5:2.25", -1.5, true },
	{ "@-1.5:2.25", 0, true },
	{ "@-1.5:2.25", 2.25, true },
	{ "@-1.5:2.25", 2.26, false },
	/* an empty start is 0; a one-point range; an exponent */
	{ ":10", -1, true },
	{ ":10", 0, false },
	{ "5:5", 5, false },
	{ "5:5", 4.9, true },
	{ "5:5", 5.1, true },
	{ "1e3", 1000, false },
	{ "1e3", 1001, true },
	/* "~:" is everything: never alerts, "@~:" always */
	{ "~:", -1e300, false },
	{ "@~:", 1e300, true },
};

START_TEST(test_range_alert)
{
	struct nagios_range r;
	char err[160] = "";
	ck_assert_msg(nagios_range_parse(cases[_i].range, &r, err, sizeof(err)) == 0, "%s: %s",
		      cases[_i].range, err);
	ck_assert_msg(nagios_range_alert(&r, cases[_i].v) == cases[_i].alert, "range '%s', value %g:"
		      " expected %s", cases[_i].range, cases[_i].v, cases[_i].alert ? "an alert" : "no alert");
}
END_TEST

START_TEST(test_range_fields)
{
	struct nagios_range r;
	char err[160];
	ck_assert_int_eq(nagios_range_parse("10", &r, err, sizeof(err)), 0);
	ck_assert(!r.start_inf && !r.end_inf && !r.inside);
	ck_assert(r.start == 0 && r.end == 10);
	ck_assert_int_eq(nagios_range_parse("10:", &r, err, sizeof(err)), 0);
	ck_assert(r.start == 10 && r.end_inf && !r.start_inf);
	ck_assert_int_eq(nagios_range_parse("~:10", &r, err, sizeof(err)), 0);
	ck_assert(r.start_inf && r.end == 10 && !r.end_inf);
	ck_assert_int_eq(nagios_range_parse("@-2.5:7.25", &r, err, sizeof(err)), 0);
	ck_assert(r.inside && r.start == -2.5 && r.end == 7.25);
}
END_TEST

static const char *const bad[] = {
	"", "abc", "@", "~", ":", "10:5", "-5:-10", "1:2:3", "~10", "10:abc", "inf", "nan",
	"0x10", "10 ", " 10", "@@10", "1.5.5", "10:~",
};

START_TEST(test_range_bad)
{
	struct nagios_range r;
	char err[160] = "";
	ck_assert_msg(nagios_range_parse(bad[_i], &r, err, sizeof(err)) == -EINVAL, "'%s' accepted", bad[_i]);
	ck_assert_msg(strstr(err, "range '") != NULL, "'%s': message '%s'", bad[_i], err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nagios");
	TCase *tc = tcase_create("range");
	tcase_add_loop_test(tc, test_range_alert, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_range_fields);
	tcase_add_loop_test(tc, test_range_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
