/*
 * test_units.c: the billing units price lists use (issue 18, item 3):
 * GB-month and GiB-month (a gauge's byte-seconds over the seconds of the
 * period's calendar month), per-month and per-day units of any gauge (a
 * VM or a floating IP per month, prorated by the time it existed),
 * per-request and per-1000; a price's description, its default from the
 * meter's title. Every expected figure is worked by hand in the comment
 * above its check; the ledger is written by the real aggregator.
 *
 * Times: SEP = 2026-09-01T00:00:00Z (1790812800 - 30 x 86400 =
 * 1788220800: September has 30 days), OCT = 2026-10-01T00:00:00Z
 * (1790812800; October has 31 days, 744 hours).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "invoice.h"
#include "meter.h"
#include "plan.h"
#include "rate.h"
#include "tallytime.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define SEP (1788220800LL * NS_PER_SEC)
#define OCT (1790812800LL * NS_PER_SEC)
#define NOV (1793491200LL * NS_PER_SEC)
#define DAY (24 * NS_PER_HOUR)
#define GIB 1073741824.0

static void write_plan(const char *yaml)
{
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(yaml, f);
	fclose(f);
}

static size_t invoices(int64_t from, int64_t to, struct invoice **out, struct tally_err *e)
{
	struct plan p;
	struct plan_errors errs;
	int rc = plan_load(plan_path, &p, &errs);
	ck_assert_msg(rc == 0, "plan: %s", errs.n ? errs.msg[0] : "?");
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to };
	size_t n = 0;
	rc = invoice_build_all(&p, &q, out, &n, e);
	plan_release(&p);
	return rc ? (size_t)rc : n;
}

static const struct invoice_line *usage(const struct invoice *inv, int n)
{
	for (size_t i = 0; i < inv->n_lines; i++)
		if (inv->lines[i].type == INV_USAGE && n-- == 0)
			return &inv->lines[i];
	ck_abort_msg("no usage line");
	return NULL;
}

static char *qty(const struct invoice_line *l, char *buf)
{
	return money_format_ratio(l->calc.qty_num, l->calc.qty_den, 9, buf, 64);
}

static void free_invoices(struct invoice *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		invoice_release(&v[i]);
	free(v);
}

#define HEAD "plan: units\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"

/* 10 GiB held 15 days of September (30 days): 10 x 2^30 B x 15 x 86400 s
 * over 2^30 B x 30 x 86400 s = 5 GiB-month exactly; at 0.10 = 0.50. In
 * GB-month: 10 x 2^30 / 10^9 x 15/30 = 5.36870912 GB-month; at 0.02 =
 * 0.1073741824 -> 0.11. A day of it (2026-09-05) in GiB-month: 10 GiB x
 * 1 day / 30 days = 0.333333333 (9 places, half-even). */
START_TEST(test_gib_month)
{
	lf_open();
	lf_meta("vol-1", "acme", "", SEP);
	lf_reading("vol-1", M_DISK_CAPACITY, SEP, 10 * GIB, 0, 0);
	lf_flush();
	lf_reading("vol-1", M_DISK_CAPACITY, SEP + 15 * DAY, 10 * GIB, 0, SAMPLE_F_LAST);
	lf_close();
	write_plan(HEAD "      - {meter: disk.device.capacity, unit: GiB-month, price: 0.10}\n");
	struct invoice *v;
	struct tally_err e = { 0 };
	char b[64];
	size_t n = invoices(SEP, OCT, &v, &e);
	ck_assert_msg(n == 1, "%s", e.msg);
	ck_assert_str_eq(qty(usage(&v[0], 0), b), "5.000000000");
	ck_assert_str_eq(usage(&v[0], 0)->unit, "GiB-month");
	ck_assert_int_eq(usage(&v[0], 0)->places, 4);
	ck_assert_int_eq(usage(&v[0], 0)->amount_minor, 50);
	ck_assert_str_eq(usage(&v[0], 0)->description, "Block storage");   /* the meter's title */
	free_invoices(v, n);

	n = invoices(SEP + 4 * DAY, SEP + 5 * DAY, &v, &e);
	ck_assert_msg(n == 1, "%s", e.msg);
	ck_assert_str_eq(qty(usage(&v[0], 0), b), "0.333333333");
	free_invoices(v, n);

	write_plan(HEAD "      - {meter: disk.device.capacity, unit: GB-month, price: 0.02,"
		   " description: Volumes (SSD)}\n");
	n = invoices(SEP, OCT, &v, &e);
	ck_assert_msg(n == 1, "%s", e.msg);
	ck_assert_str_eq(qty(usage(&v[0], 0), b), "5.368709120");
	ck_assert_int_eq(usage(&v[0], 0)->amount_minor, 11);
	ck_assert_str_eq(usage(&v[0], 0)->description, "Volumes (SSD)");
	free_invoices(v, n);

	/* a period across a month boundary has no one month to divide by */
	write_plan(HEAD "      - {meter: disk.device.capacity, unit: GiB-month, price: 0.10}\n");
	int rc = (int)invoices(SEP + 10 * DAY, OCT + 5 * DAY, &v, &e);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_msg(strstr(e.msg, "priced per GiB-month: the period must lie in one calendar month"), "%s", e.msg);
	lf_teardown();
}
END_TEST

/* October has 744 hours: a VM running all of it is 744 instance-hours,
 * 31 instance-days, 1 instance-month. A second VM that ran 15 of the 31
 * days is 15/31 = 0.483870967741... instance-month, shown 0.483870968;
 * at 3.00 a month: 1.451612903... -> 1.45 (a floating IP per month,
 * prorated by existence, is the same arithmetic on its own gauge). */
START_TEST(test_per_month_and_day)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1", OCT);
	lf_meta("vm-b", "beta", "m1", OCT);
	lf_reading("vm-a", M_INSTANCE, OCT, 1, 0, 0);
	lf_reading("vm-b", M_INSTANCE, OCT, 1, 0, 0);
	lf_flush();
	lf_reading("vm-b", M_INSTANCE, OCT + 15 * DAY, 1, 0, SAMPLE_F_LAST);
	lf_flush();
	lf_reading("vm-a", M_INSTANCE, NOV, 1, 0, 0);
	lf_close();
	struct invoice *v;
	struct tally_err e = { 0 };
	char b[64];
	const char *units[3][2] = { { "instance-hour", "744.000000000" }, { "instance-day", "31.000000000" },
				    { "instance-month", "1.000000000" } };
	for (int u = 0; u < 3; u++) {
		char text[256];
		snprintf(text, sizeof(text), HEAD "      - {meter: instance, unit: %s, price: 3.00}\n", units[u][0]);
		write_plan(text);
		size_t n = invoices(OCT, NOV, &v, &e);
		ck_assert_msg(n == 2, "%s", e.msg);
		ck_assert_str_eq(v[0].tenant, "acme");
		ck_assert_str_eq(qty(usage(&v[0], 0), b), units[u][1]);
		if (u == 2) {
			ck_assert_int_eq(usage(&v[0], 0)->amount_minor, 300);
			ck_assert_str_eq(qty(usage(&v[1], 0), b), "0.483870968");
			ck_assert_int_eq(usage(&v[1], 0)->amount_minor, 145);
		}
		free_invoices(v, n);
	}
	lf_teardown();
}
END_TEST

/* 12345 read requests: per request at 0.0001 = 1.2345 -> 1.23 (half-even:
 * 0.45 of a cent is below half); per thousand at 0.40 = 12.345 x 0.40 =
 * 4.938 -> 4.94; per million at 0.40 = 0.004938 -> 0.00. The first
 * reading is a baseline (0), the second 12345. */
START_TEST(test_per_request_and_thousand)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1", OCT);
	lf_reading("vm-a", M_DISK_READ_REQUESTS, OCT, 0, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_DISK_READ_REQUESTS, OCT + NS_PER_HOUR, 0, 12345, 0);
	lf_close();
	const char *units[3][4] = { { "request", "0.0001", "12345.000000000", "123" },
				    { "request-thousand", "0.40", "12.345000000", "494" },
				    { "request-million", "0.40", "0.012345000", "0" } };
	for (int u = 0; u < 3; u++) {
		char text[256], b[64];
		struct invoice *v;
		struct tally_err e = { 0 };
		snprintf(text, sizeof(text), HEAD "      - {meter: disk.device.read.requests, unit: %s, price: %s}\n",
			 units[u][0], units[u][1]);
		write_plan(text);
		size_t n = invoices(OCT, NOV, &v, &e);
		ck_assert_msg(n == 1, "%s", e.msg);
		ck_assert_str_eq(qty(usage(&v[0], 0), b), units[u][2]);
		ck_assert_int_eq(usage(&v[0], 0)->amount_minor, atoi(units[u][3]));
		free_invoices(v, n);
	}
	lf_teardown();
}
END_TEST

/* The plan refuses a unit that is none, or that does not fit the meter,
 * naming the units that fit; places counted by hand. */
START_TEST(test_unit_mistakes)
{
	static const char text[] =
		"plan: u\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"      /* 1-5 */
		"      - {meter: network.outgoing.bytes, unit: GiB-month, price: 1}\n"         /* 6 */
		"      - {meter: disk.device.capacity, unit: B-month, price: 1}\n"             /* 7 */
		"      - {meter: vcpus, unit: vCPU, price: 1}\n"                               /* 8 */
		"      - {meter: memory, unit: parsec, price: 1}\n"                            /* 9 */
		"      - {meter: instance, unit: vCPU-hour, price: 1}\n"                       /* 10 */
		"      - {meter: cpu, unit: CPU-hour, price: 1, description: {a: b}}\n";       /* 11 */
	struct plan p;
	struct plan_errors errs;
	ck_assert_int_eq(plan_load_text("u.yaml", text, sizeof(text) - 1, &p, &errs), -EINVAL);
	const char *want[] = {
		"u.yaml:6:47: unit 'GiB-month' does not fit meter 'network.outgoing.bytes' (it measures B, a count):"
		" its units are GB, GiB",
		"u.yaml:7:45: unit 'B-month' does not fit meter 'disk.device.capacity' (it measures B, a level over"
		" time): its units are GB-hour, GiB-hour, GB-day, GiB-day, GB-month, GiB-month",
		"u.yaml:8:30: unit 'vCPU' does not fit meter 'vcpus' (it measures vCPU, a level over time): its units"
		" are vCPU-hour, vCPU-day, vCPU-month",
		"u.yaml:9:31: unit 'parsec' is not a billing unit (for 'memory': GB-hour, GiB-hour, GB-day,"
		" GiB-day, GB-month, GiB-month",
		"u.yaml:10:33: unit 'vCPU-hour' does not fit meter 'instance'",
		"u.yaml:11:61: key 'description'",
	};
	ck_assert_int_eq(errs.total, 6);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(strstr(errs.msg[i], want[i]) != NULL, "mistake %d: '%s' lacks '%s'", i, errs.msg[i],
			      want[i]);
}
END_TEST

/* rate_month_seconds: the seconds of the one month a period lies in. */
START_TEST(test_month_seconds)
{
	ck_assert_int_eq(rate_month_seconds(OCT, NOV), 31 * 86400);
	ck_assert_int_eq(rate_month_seconds(SEP, OCT), 30 * 86400);
	ck_assert_int_eq(rate_month_seconds(SEP + 3 * DAY, SEP + 4 * DAY), 30 * 86400);
	/* February 2027 has 28 days (2027-02-01 = 1801440000), February 2028 29
	 * (a leap year; 2028-02-01 = 1801440000 + 365 x 86400 = 1832976000) */
	ck_assert_int_eq(rate_month_seconds(1801440000LL * NS_PER_SEC, (1801440000LL + 86400) * NS_PER_SEC),
			 28 * 86400);
	ck_assert_int_eq(rate_month_seconds(1832976000LL * NS_PER_SEC, (1832976000LL + 86400) * NS_PER_SEC),
			 29 * 86400);
	ck_assert_int_eq(rate_month_seconds(SEP + 29 * DAY, OCT + DAY), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("units");
	TCase *tc = tcase_create("units");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_gib_month);
	tcase_add_test(tc, test_per_month_and_day);
	tcase_add_test(tc, test_per_request_and_thousand);
	tcase_add_test(tc, test_unit_mistakes);
	tcase_add_test(tc, test_month_seconds);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
