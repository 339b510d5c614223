/*
 * test_issue.c: issued invoices are numbered per issuer, stored with a
 * SHA-256 of their document, never issued twice for a period, stored all
 * or none; late usage becomes exactly one adjustment on the next invoice;
 * explain lists the rows behind a line and its arithmetic.
 *
 * The ledger (tests/unit/ledger_fixture.h): acme's vm-a holds 1 vCPU, read
 * at T0 and T0+10h: 10 vCPU-hours in October. At 1.00 per vCPU-hour the
 * October invoice is 10.00. Late usage: readings at T0+15h (5 more vCPU-
 * hours in October) and 2026-11-01T02:00Z (2 in November, from the
 * 2026-11-01T00:00Z reading on). The November draft then has its own line
 * 2.00 and an adjustment of 15.00 - 10.00 = 5.00 for October: 7.00.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "invoice.h"
#include "issue.h"
#include "plan.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define T0 (1790812800LL * NS_PER_SEC)   /* 2026-10-01T00:00:00Z */
#define NOV (1793491200LL * NS_PER_SEC)  /* 2026-11-01T00:00:00Z: date -u -d 2026-11-01 +%s */
#define DEC (1796083200LL * NS_PER_SEC)  /* 2026-12-01T00:00:00Z */
#define H NS_PER_HOUR

static const char plan_x[] = "plan: p\nissuer: Example Cloud\ncurrency: EUR\n"
			     "versions:\n  - from: 2026-01-01\n    prices:\n"
			     "      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n";

static void write_file(const char *text)
{
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void october(void)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_meta("vm-b", "globex", "m1.small", T0);
	lf_reading("vm-a", M_VCPUS, T0, 1, 0, 0);
	lf_reading("vm-b", M_VCPUS, T0, 1, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, T0 + 10 * H, 1, 0, 0);
	lf_reading("vm-b", M_VCPUS, T0 + 10 * H, 1, 0, 0);
	lf_close();
}

/* Build (and adjust) the invoices of [from, to) for tenant (NULL: all);
 * issue them when now_ns != 0. Returns the status of the issue. */
static int run(int64_t from, int64_t to, const char *tenant, int64_t now_ns, struct invoice **out, size_t *n)
{
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to, .tenant = tenant };
	ck_assert_msg(invoice_build_all(&p, &q, out, n, &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < *n; i++)
		ck_assert_msg(issue_adjust(ledger, &(*out)[i], &p, &e) == 0, "%s", e.msg);
	int rc = now_ns ? issue_store(ledger, *out, *n, &p, now_ns, &e) : 0;
	plan_release(&p);
	return rc;
}

static void release(struct invoice *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		invoice_release(&v[i]);
	free(v);
}

static int64_t count(const char *sql)
{
	return tu_ledger_int(ledger, sql);
}

/* FIPS 180-2's first example: SHA-256("abc"). */
START_TEST(test_sha256_known_answer)
{
	char hex[65];
	issue_sha256_hex("abc", 3, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	lf_open();
	lf_close();
}
END_TEST

START_TEST(test_numbered_stored_and_never_twice)
{
	october();
	write_file(plan_x);
	struct invoice *v;
	size_t n;
	ck_assert_int_eq(run(T0, NOV, NULL, NOV + H, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	/* tenants in name order: acme #1, globex #2, both 10.00 */
	ck_assert_str_eq(v[0].tenant, "acme");
	ck_assert_int_eq(v[0].number, 1);
	ck_assert_int_eq(v[1].number, 2);
	ck_assert_str_eq(v[0].issuer, "Example Cloud");
	ck_assert_int_eq(v[0].total_minor, 1000);
	release(v, n);
	ck_assert_int_eq(count("SELECT count(*) FROM invoices"), 2);
	ck_assert_int_eq(count("SELECT total_minor FROM invoices WHERE number = 1"), 1000);

	/* the stored document is what its hash says */
	struct issued is;
	struct tally_err e = { 0 };
	char hex[65];
	ck_assert_int_eq(issue_find(ledger, "1", &is, &e), 0);
	issue_sha256_hex(is.document, strlen(is.document), hex);
	ck_assert_str_eq(hex, is.sha256);
	ck_assert_str_eq(is.tenant, "acme");
	ck_assert_ptr_nonnull(strstr(is.document, "\"number\": 1"));
	free(is.plan_text);
	free(is.document);
	ck_assert_int_eq(issue_find(ledger, "Example Cloud#2", &is, &e), 0);
	ck_assert_str_eq(is.tenant, "globex");
	free(is.plan_text);
	free(is.document);
	ck_assert_int_eq(issue_find(ledger, "3", &is, &e), -ENOENT);

	/* the same period again, or a part of it: refused, nothing stored */
	ck_assert_int_eq(run(T0, NOV, "acme", NOV + 2 * H, &v, &n), -EEXIST);
	release(v, n);
	ck_assert_int_eq(run(T0 + 24 * H, T0 + 48 * H, "globex", NOV + 2 * H, &v, &n), -EEXIST);
	release(v, n);
	ck_assert_int_eq(count("SELECT count(*) FROM invoices"), 2);

	/* another issuer counts from 1 */
	write_file("plan: q\nissuer: Other\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n");
	ck_assert_int_eq(run(NOV, DEC, "acme", DEC + H, &v, &n), 0);
	ck_assert_int_eq(v[0].number, 1);
	ck_assert_str_eq(v[0].issuer, "Other");
	release(v, n);
}
END_TEST

/* Two tenants issued together, the second overlapping an issued invoice:
 * neither is stored. */
START_TEST(test_all_or_none)
{
	october();
	write_file(plan_x);
	struct invoice *v;
	size_t n;
	ck_assert_int_eq(run(T0, NOV, "globex", NOV + H, &v, &n), 0);
	release(v, n);
	ck_assert_int_eq(run(T0, NOV, NULL, NOV + 2 * H, &v, &n), -EEXIST);
	ck_assert_int_eq(v[0].number, 0);
	release(v, n);
	ck_assert_int_eq(count("SELECT count(*) FROM invoices"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM invoices WHERE tenant = 'acme'"), 0);
}
END_TEST

START_TEST(test_late_usage_adjusted_once)
{
	october();
	write_file(plan_x);
	struct invoice *v;
	size_t n;
	ck_assert_int_eq(run(T0, NOV, "acme", NOV + H, &v, &n), 0);
	release(v, n);

	/* late: 5 more vCPU-hours in October, 2 in November */
	struct agg_config ac = { .ledger_path = ledger, .max_gap_ns = 40 * 24 * H };
	struct tally_err e = { 0 };
	ck_assert_int_eq(agg_open(&agg, &ac, &e), 0);
	batch_init(&bt, "host-1");
	lf_reading("vm-a", M_VCPUS, T0 + 15 * H, 1, 0, SAMPLE_F_LAST);
	lf_flush();
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, "vm-a", sizeof(s.resource));
	s.meter = M_VCPUS;
	s.kind = SAMPLE_GAUGE;
	s.time_ns = s.origin_ns = NOV;   /* a new life, started at NOV */
	s.v.gauge = 1;
	ck_assert_int_eq(batch_add_sample(&bt, &s), 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, NOV + 2 * H, 1, 0, 0);
	lf_close();

	ck_assert_int_eq(run(NOV, DEC, "acme", 0, &v, &n), 0);
	ck_assert_uint_eq(v[0].n_lines, 2);
	ck_assert_int_eq(v[0].lines[0].type, INV_USAGE);
	ck_assert_int_eq(v[0].lines[0].amount_minor, 200);
	ck_assert_int_eq(v[0].lines[1].type, INV_ADJUSTMENT);
	ck_assert_int_eq(v[0].lines[1].amount_minor, 500);
	ck_assert_ptr_nonnull(strstr(v[0].lines[1].description, "usage for 2026-10 recorded after Example Cloud #1"));
	ck_assert_int_eq(v[0].base_minor, 200);
	ck_assert_int_eq(v[0].total_minor, 700);
	release(v, n);

	/* issued, it carries the adjustment; December has none left to carry */
	ck_assert_int_eq(run(NOV, DEC, "acme", DEC + H, &v, &n), 0);
	release(v, n);
	ck_assert_int_eq(count("SELECT amount_minor FROM invoice_adjustments"), 500);
	ck_assert_int_eq(run(DEC, DEC + 31 * 24 * H, "acme", 0, &v, &n), 0);
	for (size_t i = 0; i < v[0].n_lines; i++)
		ck_assert_int_ne(v[0].lines[i].type, INV_ADJUSTMENT);
	ck_assert_int_eq(v[0].total_minor, 0);
	release(v, n);
}
END_TEST

/* An adjustment is in the minor units of the plan its period was issued
 * under: October issued in EUR with 2 minor digits (10.00 = 1000), 5 more
 * vCPU-hours recorded late make it 15.00, a difference of 500 cents. A
 * November invoice rated with a plan of 4 minor digits printed that 500
 * as 0.0500 EUR (it is 5.0000 EUR), and one in JPY as 500 yen: another
 * scale or currency, with exit 0. tally converts neither: refused, the
 * issued invoice and both scales named. */
START_TEST(test_adjustment_in_other_units_refused)
{
	october();
	write_file(plan_x);
	struct invoice *v;
	size_t n;
	ck_assert_int_eq(run(T0, NOV, "acme", NOV + H, &v, &n), 0);
	release(v, n);
	struct agg_config ac = { .ledger_path = ledger, .max_gap_ns = 40 * 24 * H };
	struct tally_err e = { 0 };
	ck_assert_int_eq(agg_open(&agg, &ac, &e), 0);
	batch_init(&bt, "host-1");
	lf_reading("vm-a", M_VCPUS, T0 + 15 * H, 1, 0, SAMPLE_F_LAST);
	lf_close();

	static const char *const plans[] = {
		"plan: p\nissuer: Example Cloud\ncurrency: EUR\nminor_digits: 4\n"
		"versions:\n  - from: 2026-01-01\n    prices:\n      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n",
		"plan: p\nissuer: Example Cloud\ncurrency: JPY\n"
		"versions:\n  - from: 2026-01-01\n    prices:\n      - {meter: vcpus, unit: vCPU-hour, price: 1}\n",
	};
	static const char *const says[] = {
		"tenant 'acme': Example Cloud #1 for 2026-10 was issued in EUR with 2 minor digits, this invoice is in"
		" EUR with 4",
		"tenant 'acme': Example Cloud #1 for 2026-10 was issued in EUR with 2 minor digits, this invoice is in"
		" JPY with 0",
	};
	for (int i = 0; i < 2; i++) {
		struct plan p;
		struct plan_errors errs;
		write_file(plans[i]);
		ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
		struct rate_query q = { .ledger = ledger, .from_ns = NOV, .to_ns = DEC, .tenant = "acme" };
		ck_assert_msg(invoice_build_all(&p, &q, &v, &n, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(issue_adjust(ledger, &v[0], &p, &e), -EINVAL);
		ck_assert_msg(strstr(e.msg, says[i]), "%s", e.msg);
		release(v, n);
		plan_release(&p);
	}
	/* the plan of the issued invoice's units: the 5.00 carried */
	write_file(plan_x);
	ck_assert_int_eq(run(NOV, DEC, "acme", 0, &v, &n), 0);
	ck_assert_int_eq(v[0].lines[v[0].n_lines - 1].type, INV_ADJUSTMENT);
	ck_assert_int_eq(v[0].lines[v[0].n_lines - 1].amount_minor, 500);
	release(v, n);
}
END_TEST

/* The adjustment's difference never wraps (issue 9): an issued September
 * invoice of acme stored with a base of -2^63 minor units (an INSERT the
 * ledger allows; only changes are refused) rates again to 0, and 0 - (-2^63)
 * does not fit an int64: November is refused naming the tenant and the
 * invoice, never given an adjustment of -2^63. */
START_TEST(test_adjustment_past_int64_refused)
{
	october();
	write_file(plan_x);
	tu_ledger_sql(ledger, "INSERT INTO invoices (issuer, number, tenant, from_ns, to_ns, issued_ns, currency,"
				      " base_minor, subtotal_minor, total_minor, plan_text, document, sha256) VALUES"
				      " ('Example Cloud', 7, 'acme', 1788220800000000000, 1790812800000000000,"
				      " 1790812800000000000, 'EUR', -9223372036854775808, 0, 0, 'plan: p\nissuer: Example"
				      " Cloud\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n', '{}', '')");
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	ck_assert_int_eq(plan_load(plan_path, &p, &errs), 0);
	struct rate_query q = { .ledger = ledger, .from_ns = NOV, .to_ns = DEC, .tenant = "acme" };
	struct invoice *v;
	size_t n;
	ck_assert_int_eq(invoice_build_all(&p, &q, &v, &n, &e), 0);
	ck_assert_int_eq(issue_adjust(ledger, &v[0], &p, &e), -ERANGE);
	ck_assert_msg(strstr(e.msg, "tenant 'acme': the adjustment for Example Cloud #7 cannot be represented"), "%s",
		      e.msg);
	release(v, n);
	plan_release(&p);
}
END_TEST

/* explain of a draft line: the interval T0..T0+10h is split one hour per
 * hourly row, so hours 0-9 hold 1 vCPU-hour each, and hour 10 has a row of
 * 0 that counts the reading at T0+10h: 11 rows; their sum 10 vCPU-hours and
 * 10 x 1.00 = 10.00. */
START_TEST(test_explain_draft)
{
	october();
	write_file(plan_x);
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	ck_assert_int_eq(plan_load(plan_path, &p, &errs), 0);
	struct explain_query q = { .ledger = ledger, .tenant = "acme", .from_ns = T0, .to_ns = NOV, .line = 1 };
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_msg(explain_line(f, &q, &p, &e) == 0, "%s", e.msg);
	fclose(f);
	ck_assert_msg(strstr(buf, "ledger rows (11)") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "vm-a vm-a  -  2026-10-01T09:00:00Z  1.000000000  (3600000 vCPU-ms)") != NULL, "%s",
		      buf);
	ck_assert_msg(strstr(buf, "sum: 36000000 vCPU-ms = 10 vCPU-hour") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "10 vCPU-hour x 1 = 10 EUR") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "rounded half to even to the minor unit: 10.00 EUR") != NULL, "%s", buf);
	free(buf);
	q.line = 2;
	f = open_memstream(&buf, &len);
	ck_assert_int_eq(explain_line(f, &q, &p, &e), -EINVAL);
	fclose(f);
	free(buf);
	ck_assert_ptr_nonnull(strstr(e.msg, "line 2: the invoice has lines 1 to 1"));
	plan_release(&p);
}
END_TEST

/* explain of a graduated price: the same 10 vCPU-hours, the first 4 at
 * 1.00 and the rest at 0.50: 4 x 1 + 6 x 0.5 = 7.00, each tier named by
 * its bounds. */
START_TEST(test_explain_tiers)
{
	october();
	write_file("plan: p\nissuer: Example Cloud\ncurrency: EUR\n"
		   "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, tiers: [{up_to: 4, price: 1.00}, {price: 0.50}]}\n");
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	ck_assert_int_eq(plan_load(plan_path, &p, &errs), 0);
	struct explain_query q = { .ledger = ledger, .tenant = "acme", .from_ns = T0, .to_ns = NOV, .line = 1 };
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_msg(explain_line(f, &q, &p, &e) == 0, "%s", e.msg);
	fclose(f);
	ck_assert_msg(strstr(buf, "tier (first 4 vCPU-hour): 4 vCPU-hour x 1 = 4 EUR") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "tier (over 4 vCPU-hour): 6 vCPU-hour x 0.5 = 3 EUR") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "7.00 EUR") != NULL, "%s", buf);
	free(buf);
	plan_release(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("issue");
	TCase *tc = tcase_create("issue");
	tcase_add_checked_fixture(tc, NULL, lf_teardown);
	tcase_add_test(tc, test_sha256_known_answer);
	tcase_add_test(tc, test_numbered_stored_and_never_twice);
	tcase_add_test(tc, test_all_or_none);
	tcase_add_test(tc, test_late_usage_adjusted_once);
	tcase_add_test(tc, test_adjustment_in_other_units_refused);
	tcase_add_test(tc, test_adjustment_past_int64_refused);
	tcase_add_test(tc, test_explain_draft);
	tcase_add_test(tc, test_explain_tiers);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
