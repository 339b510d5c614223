/*
 * test_invoice.c: golden invoices. Each test writes a ledger through the
 * real aggregator from readings chosen so that the usage is a round figure,
 * writes a rate plan, and checks the invoice's lines and totals against
 * amounts worked out by hand in the comment above the check.
 *
 * Times: T0 = 2026-10-01T00:00:00Z (date -u -d 2026-10-01 +%s = 1790812800).
 * Gauges are integrated piecewise constant between readings; a counter's
 * first reading is a baseline. max_gap is 40 days here, so readings far
 * apart still count (the month tests read once at each end).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "err.h"
#include "invoice.h"
#include "meter.h"
#include "plan.h"
#include "rate.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define T0 (1790812800LL * NS_PER_SEC)
#define H NS_PER_HOUR
#define DAY (24 * H)
#define GB 1000000000ULL

static void write_plan(const char *yaml)
{
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(yaml, f);
	fclose(f);
}

/* The invoices of [from, to) (tenant NULL: all) under the plan in plan_path. */
static size_t invoices(int64_t from, int64_t to, const char *tenant, bool combined, struct invoice **out)
{
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	int rc = plan_load(plan_path, &p, &errs);
	ck_assert_msg(rc == 0, "plan: %s", errs.n ? errs.msg[0] : "?");
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to, .tenant = tenant,
				.combined = combined };
	size_t n;
	rc = invoice_build_all(&p, &q, out, &n, &e);
	ck_assert_msg(rc == 0, "%s", e.msg);
	plan_release(&p);
	return n;
}

static void free_invoices(struct invoice *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		invoice_release(&v[i]);
	free(v);
}

static const struct invoice *by_tenant(const struct invoice *v, size_t n, const char *t)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].tenant, t))
			return &v[i];
	ck_abort_msg("no invoice for tenant %s", t);
	return NULL;
}

static const struct invoice_line *line_of(const struct invoice *inv, enum invoice_line_type type, int n)
{
	for (size_t i = 0; i < inv->n_lines; i++)
		if (inv->lines[i].type == type && n-- == 0)
			return &inv->lines[i];
	ck_abort_msg("tenant %s: no line of type %d", inv->tenant, type);
	return NULL;
}

static char *qty(const struct invoice_line *l, char *buf)
{
	return money_format_ratio(l->calc.qty_num, l->calc.qty_den, 9, buf, 64);
}

#define PLAN_HEAD "plan: test\ncurrency: EUR\n"

/* Per-unit pricing and a discount. acme's vm-a holds 2 vCPUs from T0 to
 * T0+3h: 6 vCPU-hours at 0.05 = 0.30 EUR. Discount 12.5 % of 0.30 =
 * 0.0375 -> 0.04 (half-even: 3.75 cents is nearer 4). Subtotal 0.26; VAT
 * 19 % of 0.26 = 0.0494 -> 0.05; total 0.31. */
START_TEST(test_per_unit_and_discount)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_VCPUS, T0, 2, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, T0 + 3 * H, 2, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "tax:\n  - name: VAT\n    rate: 19%\n"
		   "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 0.05}\n"
		   "tenants:\n  acme:\n    discount: 12.5%\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	char b[64];
	ck_assert_uint_eq(n, 1);
	const struct invoice_line *u = line_of(&v[0], INV_USAGE, 0);
	ck_assert_str_eq(qty(u, b), "6.000000000");
	ck_assert_int_eq(u->amount_minor, 30);
	ck_assert_int_eq(line_of(&v[0], INV_DISCOUNT, 0)->amount_minor, -4);
	ck_assert_int_eq(v[0].subtotal_minor, 26);
	ck_assert_int_eq(v[0].taxes[0].amount_minor, 5);
	ck_assert_int_eq(v[0].total_minor, 31);
	free_invoices(v, n);
}
END_TEST

/* Egress of three tenants: exactly 1000 GB, 1001 GB and 2500 GB, each as
 * one counter delta in hour 0. */
static void egress_ledger(void)
{
	static const struct { const char *vm, *tenant; uint64_t bytes; } t[] = {
		{ "vm-edge", "edge", 1000 * GB }, { "vm-past", "past", 1001 * GB }, { "vm-big", "big", 2500 * GB },
	};
	lf_open();
	for (int i = 0; i < 3; i++) {
		lf_meta(t[i].vm, t[i].tenant, "m1.small", T0);
		lf_reading(t[i].vm, M_NET_OUT_BYTES, T0, 0, 0, 0);
	}
	lf_flush();
	for (int i = 0; i < 3; i++)
		lf_reading(t[i].vm, M_NET_OUT_BYTES, T0 + H, 0, t[i].bytes, 0);
	lf_close();
}

#define TIERS "        tiers:\n          - {up_to: 1000, price: 0.09}\n" \
	      "          - {up_to: 2000, price: 0.07}\n          - {price: 0.05}\n"

/* Graduated: each tier's units at its own price.
 *   edge 1000 GB: 1000 x 0.09                           =  90.00
 *   past 1001 GB: 1000 x 0.09 + 1 x 0.07                =  90.07
 *   big  2500 GB: 1000 x 0.09 + 1000 x 0.07 + 500 x 0.05 = 185.00 */
START_TEST(test_graduated_tiers_at_the_edge)
{
	egress_ledger();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - meter: network.outgoing.bytes\n        unit: GB\n        mode: graduated\n" TIERS);
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(by_tenant(v, n, "edge")->total_minor, 9000);
	ck_assert_int_eq(by_tenant(v, n, "past")->total_minor, 9007);
	const struct invoice_line *big = line_of(by_tenant(v, n, "big"), INV_USAGE, 0);
	ck_assert_int_eq(big->amount_minor, 18500);
	ck_assert_int_eq(big->calc.n_steps, 3);
	char b[64];
	ck_assert_str_eq(money_format_ratio(big->calc.steps[2].qty_num, big->calc.steps[2].qty_den, 9, b, 64),
			 "500.000000000");
	/* each tier's bounds, as the plan gives them: 0-1000, 1000-2000, 2000- */
	static const char *const from[] = { "0.000000000", "1000.000000000", "2000.000000000" };
	static const char *const up_to[] = { "1000.000000000", "2000.000000000" };
	for (int i = 0; i < 3; i++) {
		const struct rate_step *st = &big->calc.steps[i];
		ck_assert_str_eq(money_format_ratio(st->from_num, st->qty_den, 9, b, 64), from[i]);
		ck_assert(st->bounded == (i < 2));
		if (i < 2)
			ck_assert_str_eq(money_format_ratio(st->up_to_num, st->qty_den, 9, b, 64), up_to[i]);
	}
	/* past 1001 GB: the second step is the tier over 1000 up to 2000 */
	const struct invoice_line *past = line_of(by_tenant(v, n, "past"), INV_USAGE, 0);
	ck_assert_int_eq(past->calc.n_steps, 2);
	ck_assert_str_eq(money_format_ratio(past->calc.steps[1].from_num, past->calc.steps[1].qty_den, 9, b, 64),
			 "1000.000000000");
	ck_assert_str_eq(money_format_ratio(past->calc.steps[1].qty_num, past->calc.steps[1].qty_den, 9, b, 64),
			 "1.000000000");
	free_invoices(v, n);
}
END_TEST

/* Volume: all units at the price of the tier reached (up_to inclusive).
 *   edge 1000 GB: 1000 x 0.09 =  90.00
 *   past 1001 GB: 1001 x 0.07 =  70.07
 *   big  2500 GB: 2500 x 0.05 = 125.00 */
START_TEST(test_volume_tiers_at_the_edge)
{
	egress_ledger();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - meter: network.outgoing.bytes\n        unit: GB\n        mode: volume\n" TIERS);
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_int_eq(by_tenant(v, n, "edge")->total_minor, 9000);
	ck_assert_int_eq(by_tenant(v, n, "past")->total_minor, 7007);
	ck_assert_int_eq(by_tenant(v, n, "big")->total_minor, 12500);
	/* the tier reached: edge the first (up to 1000, inclusive), past the
	 * second (over 1000 up to 2000), big the last (over 2000, no end) */
	char b[64];
	const struct rate_step *st = &line_of(by_tenant(v, n, "edge"), INV_USAGE, 0)->calc.steps[0];
	ck_assert(st->bounded && st->from_num == 0);
	ck_assert_str_eq(money_format_ratio(st->up_to_num, st->qty_den, 9, b, 64), "1000.000000000");
	st = &line_of(by_tenant(v, n, "past"), INV_USAGE, 0)->calc.steps[0];
	ck_assert_str_eq(money_format_ratio(st->from_num, st->qty_den, 9, b, 64), "1000.000000000");
	ck_assert_str_eq(money_format_ratio(st->up_to_num, st->qty_den, 9, b, 64), "2000.000000000");
	st = &line_of(by_tenant(v, n, "big"), INV_USAGE, 0)->calc.steps[0];
	ck_assert(!st->bounded);
	ck_assert_str_eq(money_format_ratio(st->from_num, st->qty_den, 9, b, 64), "2000.000000000");
	free_invoices(v, n);
}
END_TEST

/* Free allowance of 10 GB, then 0.10 per GB: 1000 GB -> 990 x 0.10 =
 * 99.00; 1001 GB -> 99.10. Package pricing, 1.00 per started block of
 * 500 GB: 1000 GB -> 2 blocks = 2.00; 1001 GB -> 3 blocks = 3.00;
 * 2500 GB -> 5 blocks = 5.00. */
START_TEST(test_free_allowance_and_blocks)
{
	egress_ledger();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, free: 10, price: 0.10}\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_int_eq(by_tenant(v, n, "edge")->total_minor, 9900);
	const struct invoice_line *l = line_of(by_tenant(v, n, "past"), INV_USAGE, 0);
	ck_assert_int_eq(l->amount_minor, 9910);
	char b[64];
	ck_assert_str_eq(money_format_ratio(l->calc.free_num, l->calc.qty_den, 9, b, 64), "10.000000000");
	free_invoices(v, n);
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, block: 500, price: 1.00}\n");
	n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_int_eq(by_tenant(v, n, "edge")->total_minor, 200);
	ck_assert_int_eq(by_tenant(v, n, "past")->total_minor, 300);
	ck_assert_int_eq(by_tenant(v, n, "big")->total_minor, 500);
	free_invoices(v, n);
}
END_TEST

/* A tenant that arrives on 2026-10-22 (its VM first read at 00:00 that day,
 * last at 2026-10-31T23:00) with a CPU counter that never moves:
 *   fee 31.00 prorated: 10 of 31 days (22nd..31st) -> 31.00 x 10/31 = 10.00
 *   usage: 0 CPU-hours at 1.00                              =   0.00
 *   minimum commitment 100.00, usage 0.00 below it: true-up = 100.00
 *   subtotal 110.00, no tax. */
START_TEST(test_zero_usage_minimum_and_prorated_fee)
{
	lf_open();
	lf_meta("vm-n", "newco", "m1.small", T0 + 21 * DAY);
	lf_reading("vm-n", M_CPU, T0 + 21 * DAY, 0, 0, 0);
	lf_flush();
	lf_reading("vm-n", M_CPU, T0 + 31 * DAY - H, 0, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: cpu, unit: CPU-hour, price: 1.00}\n"
		   "    fees:\n      - {name: support, amount: 31.00, prorate: true}\n"
		   "    minimum: 100.00\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, "newco", false, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(v[0].days_existed, 10);
	ck_assert_int_eq(v[0].days_in_period, 31);
	ck_assert_int_eq(line_of(&v[0], INV_USAGE, 0)->amount_minor, 0);
	ck_assert_int_eq(line_of(&v[0], INV_FEE, 0)->amount_minor, 1000);
	ck_assert_int_eq(line_of(&v[0], INV_MINIMUM, 0)->amount_minor, 10000);
	ck_assert_int_eq(v[0].total_minor, 11000);
	free_invoices(v, n);
}
END_TEST

/* A VM that lives 1 second (first reading with its origin, final reading
 * 1 s later): 1 instance-second = 1/3600 instance-hour; at 36.00 per
 * instance-hour that is exactly 0.01. */
START_TEST(test_vm_living_one_second)
{
	lf_open();
	lf_meta("vm-s", "acme", "m1.small", T0 + 5 * H);
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, "vm-s", sizeof(s.resource));
	s.meter = M_INSTANCE;
	s.kind = SAMPLE_GAUGE;
	s.time_ns = s.origin_ns = T0 + 5 * H;
	s.v.gauge = 1;
	ck_assert_int_eq(batch_add_sample(&bt, &s), 0);
	lf_flush();
	lf_reading("vm-s", M_INSTANCE, T0 + 5 * H + NS_PER_SEC, 1, 0, SAMPLE_F_LAST);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: instance, unit: instance-hour, price: 36.00}\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	char b[64];
	const struct invoice_line *l = line_of(&v[0], INV_USAGE, 0);
	ck_assert_str_eq(qty(l, b), "0.000277778");   /* 1/3600 */
	ck_assert_int_eq(l->amount_minor, 1);
	free_invoices(v, n);
}
END_TEST

/* One vCPU read at the first and last instant of a month: February 2028
 * (a leap year) has 29 x 24 = 696 hours -> 696.00 at 1.00; October 2026
 * has 31 x 24 = 744 -> 744.00. A non-prorated fee is owed in full. */
START_TEST(test_leap_february_and_31_day_month)
{
	const int64_t feb = 1832976000LL * NS_PER_SEC;    /* date -u -d 2028-02-01 +%s */
	const int64_t mar = 1835481600LL * NS_PER_SEC;    /* 2028-03-01 */
	lf_open();
	lf_meta("vm-f", "acme", "m1.small", feb);
	lf_meta("vm-o", "globex", "m1.small", T0);
	lf_reading("vm-o", M_VCPUS, T0, 1, 0, 0);
	lf_flush();
	lf_reading("vm-o", M_VCPUS, T0 + 31 * DAY, 1, 0, 0);
	lf_flush();
	lf_reading("vm-f", M_VCPUS, feb, 1, 0, 0);
	lf_flush();
	lf_reading("vm-f", M_VCPUS, mar, 1, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n"
		   "    fees:\n      - {name: base, amount: 5.00}\n");
	struct invoice *v;
	size_t n = invoices(feb, mar, "acme", false, &v);
	ck_assert_int_eq(v[0].days_in_period, 29);
	ck_assert_int_eq(line_of(&v[0], INV_USAGE, 0)->amount_minor, 69600);
	ck_assert_int_eq(line_of(&v[0], INV_FEE, 0)->amount_minor, 500);
	free_invoices(v, n);
	n = invoices(T0, T0 + 31 * DAY, "globex", false, &v);
	ck_assert_int_eq(v[0].days_in_period, 31);
	ck_assert_int_eq(line_of(&v[0], INV_USAGE, 0)->amount_minor, 74400);
	free_invoices(v, n);
}
END_TEST

/* A price change on the 16th: one vCPU all October; 1.00 until
 * 2026-10-16T00:00Z (15 days = 360 h -> 360.00), 2.00 after (16 days =
 * 384 h -> 768.00): two lines, 1128.00 in all. */
START_TEST(test_plan_change_mid_month)
{
	lf_open();
	lf_meta("vm-o", "acme", "m1.small", T0);
	lf_reading("vm-o", M_VCPUS, T0, 1, 0, 0);
	lf_flush();
	lf_reading("vm-o", M_VCPUS, T0 + 31 * DAY, 1, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n"
		   "  - from: 2026-10-01\n    prices:\n      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n"
		   "  - from: 2026-10-16\n    prices:\n      - {meter: vcpus, unit: vCPU-hour, price: 2.00}\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	char b[64];
	ck_assert_uint_eq(v[0].n_lines, 2);
	ck_assert_str_eq(qty(&v[0].lines[0], b), "360.000000000");
	ck_assert_int_eq(v[0].lines[0].amount_minor, 36000);
	ck_assert_str_eq(qty(&v[0].lines[1], b), "384.000000000");
	ck_assert_int_eq(v[0].lines[1].amount_minor, 76800);
	ck_assert_int_eq(v[0].total_minor, 112800);
	ck_assert_ptr_nonnull(strstr(v[0].lines[0].description, "until 2026-10-16"));
	ck_assert_ptr_nonnull(strstr(v[0].lines[1].description, "from 2026-10-16"));
	free_invoices(v, n);
}
END_TEST

/* 2^50 bytes of egress in one hour:
 *   per GB at 0.01: 1125899906842624 / 10^9 = 1125899.906842624 GB
 *     x 0.01 = 11258.99906842624 -> 11259.00
 *   per GiB at 0.01: 2^50 / 2^30 = 1048576 GiB x 0.01 = 10485.76 exactly
 *   per GB at 0.000000001 with 4 minor digits: 0.001125899906842624
 *     -> 0.0011 */
START_TEST(test_2_50_bytes_and_a_nano_price)
{
	lf_open();
	lf_meta("vm-x", "acme", "m1.small", T0);
	lf_meta("vm-y", "globex", "m1.large", T0);
	lf_reading("vm-x", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_reading("vm-y", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-x", M_NET_OUT_BYTES, T0 + H, 0, 1ULL << 50, 0);
	lf_reading("vm-y", M_NET_OUT_BYTES, T0 + H, 0, 1ULL << 50, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 0.01, select: {flavor: m1.small}}\n"
		   "      - {meter: network.outgoing.bytes, unit: GiB, price: 0.01, select: {flavor: m1.large}}\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	char b[64];
	const struct invoice_line *x = line_of(by_tenant(v, n, "acme"), INV_USAGE, 0);
	ck_assert_str_eq(qty(x, b), "1125899.906842624");
	ck_assert_int_eq(x->amount_minor, 1125900);
	const struct invoice_line *y = line_of(by_tenant(v, n, "globex"), INV_USAGE, 0);
	ck_assert_str_eq(qty(y, b), "1048576.000000000");
	ck_assert_int_eq(y->amount_minor, 1048576);
	free_invoices(v, n);
	write_plan("plan: nano\ncurrency: EUR\nminor_digits: 4\nversions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 0.000000001}\n");
	n = invoices(T0, T0 + 31 * DAY, "acme", false, &v);
	ck_assert_int_eq(line_of(&v[0], INV_USAGE, 0)->amount_minor, 11);
	free_invoices(v, n);
}
END_TEST

/* Tax rounded once on the subtotal. 2 vCPU-hours at 0.05 = 0.10; VAT 5 %
 * of 0.10 = 0.005: half-even -> 0.00 (0 is even), half-up -> 0.01, down
 * -> 0.00. */
START_TEST(test_tax_rounding)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_VCPUS, T0, 2, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, T0 + H, 2, 0, 0);
	lf_close();
	static const struct { const char *mode; int64_t tax; } c[] = {
		{ "half-even", 0 }, { "half-up", 1 }, { "down", 0 },
	};
	for (int i = 0; i < 3; i++) {
		char yaml[512];
		snprintf(yaml, sizeof(yaml), PLAN_HEAD "rounding: %s\ntax:\n  - {name: VAT, rate: 5%%}\n"
			 "versions:\n  - from: 2026-01-01\n    prices:\n"
			 "      - {meter: vcpus, unit: vCPU-hour, price: 0.05}\n", c[i].mode);
		write_plan(yaml);
		struct invoice *v;
		size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
		ck_assert_int_eq(v[0].subtotal_minor, 10);
		ck_assert_msg(v[0].taxes[0].amount_minor == c[i].tax, "%s: tax %lld, want %lld", c[i].mode,
			      (long long)v[0].taxes[0].amount_minor, (long long)c[i].tax);
		ck_assert_int_eq(v[0].total_minor, 10 + c[i].tax);
		free_invoices(v, n);
	}
}
END_TEST

/* Selectors and tenant prices: m1.small and m1.large vCPUs priced apart;
 * a flavor the plan does not price is a note, not silently nothing; a
 * tenant's own price wins over the version's.
 *   acme:   small 1 vCPU x 10 h at 0.10 = 1.00; large 4 vCPU x 10 h at 0.05
 *           = 2.00; m1.tiny 1 vCPU x 10 h: unpriced, one note
 *   globex: small 1 vCPU x 10 h at its own 0.01 = 0.10 */
START_TEST(test_selectors_overrides_and_unpriced)
{
	lf_open();
	lf_meta("vm-s", "acme", "m1.small", T0);
	lf_meta("vm-l", "acme", "m1.large", T0);
	lf_meta("vm-t", "acme", "m1.tiny", T0);
	lf_meta("vm-g", "globex", "m1.small", T0);
	lf_reading("vm-s", M_VCPUS, T0, 1, 0, 0);
	lf_reading("vm-l", M_VCPUS, T0, 4, 0, 0);
	lf_reading("vm-t", M_VCPUS, T0, 1, 0, 0);
	lf_reading("vm-g", M_VCPUS, T0, 1, 0, 0);
	lf_flush();
	lf_reading("vm-s", M_VCPUS, T0 + 10 * H, 1, 0, 0);
	lf_reading("vm-l", M_VCPUS, T0 + 10 * H, 4, 0, 0);
	lf_reading("vm-t", M_VCPUS, T0 + 10 * H, 1, 0, 0);
	lf_reading("vm-g", M_VCPUS, T0 + 10 * H, 1, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 0.10, select: {flavor: m1.small}}\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 0.05, select: {flavor: m1.large}}\n"
		   "tenants:\n  globex:\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 0.01}\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	const struct invoice *a = by_tenant(v, n, "acme"), *g = by_tenant(v, n, "globex");
	ck_assert_uint_eq(a->n_lines, 2);
	ck_assert_str_eq(a->lines[0].selector, "flavor=m1.small");
	ck_assert_int_eq(a->lines[0].amount_minor, 100);
	ck_assert_str_eq(a->lines[1].selector, "flavor=m1.large");
	ck_assert_int_eq(a->lines[1].amount_minor, 200);
	ck_assert_uint_eq(a->n_notes, 1);
	ck_assert_int_eq(a->notes[0].meter, M_VCPUS);
	ck_assert_int_eq((int64_t)a->notes[0].qty, 36000 * RATE_GAUGE_SCALE);   /* 10 vCPU-h in vCPU-ms */
	ck_assert_int_eq(g->total_minor, 10);
	ck_assert_ptr_nonnull(strstr(g->lines[0].description, "contract price"));   /* the tenant's own */
	free_invoices(v, n);
}
END_TEST

/* A tenant the ledger never saw is an error naming it, not an empty bill. */
START_TEST(test_unknown_tenant)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_VCPUS, T0, 1, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 1}\n");
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	ck_assert_int_eq(plan_load(plan_path, &p, &errs), 0);
	struct rate_query q = { .ledger = ledger, .from_ns = T0, .to_ns = T0 + DAY, .tenant = "nobody" };
	struct invoice *v;
	size_t n;
	ck_assert_int_eq(invoice_build_all(&p, &q, &v, &n, &e), -ESRCH);
	ck_assert_ptr_nonnull(strstr(e.msg, "tenant 'nobody' is not in the ledger"));
	plan_release(&p);
}
END_TEST

/* Properties over a fleet of 12 VMs in 4 tenants with pseudo-random hourly
 * vCPU, CPU and egress readings through October, under per-unit prices:
 * - the tenants' quantities add up exactly to the combined account's, and
 *   their amounts to its amount within half a cent per tenant and line
 *   (each line is rounded once per invoice);
 * - the two half-months' quantities add up exactly to the whole month's;
 * - rendering twice gives the same bytes, in every format. */
static void fleet_ledger(void)
{
	uint64_t x = 88172645463325252ULL, cpu[12] = { 0 }, net[12] = { 0 };
	char vm[12][16];
	lf_open();
	for (int i = 0; i < 12; i++) {
		char t[16];
		snprintf(vm[i], sizeof(vm[i]), "vm-%02d", i);
		snprintf(t, sizeof(t), "t%d", i % 4);
		lf_meta(vm[i], t, i % 2 ? "m1.small" : "m1.large", T0);
	}
	for (int64_t h = 0; h <= 31 * 24; h++) {
		for (int i = 0; i < 12; i++) {
			tu_xorshift(&x);
			cpu[i] += x % 3600000000000ULL;
			net[i] += x % 7777777777ULL;
			lf_reading(vm[i], M_VCPUS, T0 + h * H, (double)(1 + x % 4), 0, 0);
			lf_reading(vm[i], M_CPU, T0 + h * H, 0, cpu[i], 0);
			lf_reading(vm[i], M_NET_OUT_BYTES, T0 + h * H, 0, net[i], 0);
		}
		lf_flush();
	}
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 0.0123}\n"
		   "      - {meter: cpu, unit: CPU-hour, price: 0.0377}\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 0.0891}\n");
}

static __int128 line_qty(const struct invoice *inv, int meter)
{
	for (size_t i = 0; i < inv->n_lines; i++)
		if (inv->lines[i].meter == meter)
			return inv->lines[i].calc.qty_num;
	return 0;
}

START_TEST(test_properties)
{
	fleet_ledger();
	struct invoice *v, *all, *h1, *h2;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(invoices(T0, T0 + 31 * DAY, NULL, true, &all), 1);
	ck_assert_str_eq(all[0].tenant, "*");
	const int meters[3] = { M_VCPUS, M_CPU, M_NET_OUT_BYTES };
	int64_t sum = 0;
	for (size_t t = 0; t < n; t++)
		sum += v[t].total_minor;
	for (int m = 0; m < 3; m++) {
		__int128 q = 0;
		for (size_t t = 0; t < n; t++)
			q += line_qty(&v[t], meters[m]);
		ck_assert_msg(q == line_qty(&all[0], meters[m]), "meter %d: tenants' quantities differ", meters[m]);
	}
	/* 4 tenants x 3 lines, each off the exact amount by at most half a cent */
	ck_assert_msg(llabs(sum - all[0].total_minor) * 2 <= 4 * 3, "sum %lld vs combined %lld", (long long)sum,
		      (long long)all[0].total_minor);
	ck_assert_uint_eq(invoices(T0, T0 + 15 * DAY, NULL, true, &h1), 1);
	ck_assert_uint_eq(invoices(T0 + 15 * DAY, T0 + 31 * DAY, NULL, true, &h2), 1);
	for (int m = 0; m < 3; m++)
		ck_assert(line_qty(&h1[0], meters[m]) + line_qty(&h2[0], meters[m]) == line_qty(&all[0], meters[m]));
	ck_assert_msg(llabs(h1[0].total_minor + h2[0].total_minor - all[0].total_minor) * 2 <= 2 * 3,
		      "halves %lld + %lld vs whole %lld", (long long)h1[0].total_minor, (long long)h2[0].total_minor,
		      (long long)all[0].total_minor);

	for (int fmt = INV_TEXT; fmt <= INV_JSON; fmt++) {
		char *buf[2];
		size_t len[2];
		for (int run = 0; run < 2; run++) {
			struct invoice *w;
			size_t k = invoices(T0, T0 + 31 * DAY, NULL, false, &w);
			struct invoice_render_opts o = { .format = (enum invoice_format)fmt, .detail = true };
			FILE *f = open_memstream(&buf[run], &len[run]);
			if (fmt == INV_JSON)
				ck_assert_int_eq(invoice_render_json(f, w, k, &o), 0);
			for (size_t i = 0; fmt != INV_JSON && i < k; i++)
				ck_assert_int_eq(invoice_render(f, &w[i], &o, i == 0), 0);
			fclose(f);
			free_invoices(w, k);
		}
		ck_assert_uint_eq(len[0], len[1]);
		ck_assert_msg(len[0] > 1000 && !memcmp(buf[0], buf[1], len[0]), "format %d differs across runs", fmt);
		free(buf[0]);
		free(buf[1]);
	}
	free_invoices(v, n);
	free_invoices(all, 1);
	free_invoices(h1, 1);
	free_invoices(h2, 1);
}
END_TEST

/* The rating of [from, to) under the plan in plan_path, expected to be
 * refused: returns the error code, the message in e. */
static int refused(int64_t from, int64_t to, struct tally_err *e)
{
	struct plan p;
	struct plan_errors errs;
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "plan: %s", errs.n ? errs.msg[0] : "?");
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to };
	struct invoice *v = NULL;
	size_t n = 99;
	int rc = invoice_build_all(&p, &q, &v, &n, e);
	plan_release(&p);
	ck_assert_ptr_null(v);     /* nothing half made */
	return rc;
}

/* Sums of lines never wrap (issue 9). One VM sends 6e18 bytes out and
 * receives 6e18 in, both at 10,000,000.00 per GB: each line is 6e9 GB x
 * 10^7 = 6 x 10^16 EUR = 6 x 10^18 cents (it fits), their sum 1.2 x 10^19
 * cents does not fit an int64 (at most 9223372036854775807): a refusal
 * naming the tenant, never -64467440737095516.16. */
START_TEST(test_sum_past_int64_refused)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_reading("vm-a", M_NET_IN_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_NET_OUT_BYTES, T0 + H, 0, 6000000000000000000ULL, 0);
	lf_reading("vm-a", M_NET_IN_BYTES, T0 + H, 0, 6000000000000000000ULL, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 10000000}\n"
		   "      - {meter: network.incoming.bytes, unit: GB, price: 10000000}\n");
	struct tally_err e = { 0 };
	ck_assert_int_eq(refused(T0, T0 + DAY, &e), -ERANGE);
	ck_assert_msg(strstr(e.msg, "tenant 'acme': the subtotal cannot be represented (an amount is at most"
				    " 92233720368547758.07 EUR)"), "%s", e.msg);
	ck_assert_msg(!strstr(e.msg, "-64467440737095516.16"), "%s", e.msg);
}
END_TEST

/* A tax on a large subtotal: 4.6e18 bytes at 10^7 per GB = 4.6 x 10^16
 * EUR = 4.6 x 10^18 cents; 100 % tax doubles it to 9.2 x 10^18 cents, which
 * still fits: total 92000000000000000.00 exactly. 5e18 bytes makes 10^19
 * cents, which does not: refused naming the total. A 50 % discount on two
 * lines of 5 x 10^18 cents: their sum (10^19) does not fit an int64 but is
 * printed nowhere; the discount (5 x 10^18) and the subtotal (5 x 10^18)
 * do, and are exact. */
START_TEST(test_tax_and_discount_near_int64)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_meta("vm-b", "big", "m1.small", T0);
	lf_reading("vm-a", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_reading("vm-b", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_reading("vm-b", M_NET_IN_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_NET_OUT_BYTES, T0 + H, 0, 4600000000000000000ULL, 0);
	lf_reading("vm-b", M_NET_OUT_BYTES, T0 + H, 0, 5000000000000000000ULL, 0);
	lf_reading("vm-b", M_NET_IN_BYTES, T0 + H, 0, 5000000000000000000ULL, 0);
	lf_close();
	write_plan(PLAN_HEAD "tax:\n  - {name: all, rate: 100%}\n"
		   "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 10000000}\n"
		   "tenants:\n  big:\n    discount: 50%\n");
	struct invoice *v;
	char b[64];
	size_t n = invoices(T0, T0 + DAY, "acme", false, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(money_format(v[0].total_minor, 2, b, sizeof(b)), "92000000000000000.00");
	free_invoices(v, n);

	write_plan(PLAN_HEAD "tax:\n  - {name: all, rate: 100%}\n"
		   "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 10000000}\n"
		   "      - {meter: network.incoming.bytes, unit: GB, price: 10000000}\n"
		   "tenants:\n  big:\n    discount: 50%\n");
	struct tally_err e = { 0 };
	ck_assert_int_eq(refused(T0, T0 + DAY, &e), -ERANGE);
	/* acme: 4.6e18 cents + 100 % tax fits; big: discount then 100 % tax:
	 * 5e18 + 5e18 - 5e18 = 5e18, tax 5e18, total 10^19: refused */
	ck_assert_msg(strstr(e.msg, "tenant 'big': the total cannot be represented"), "%s", e.msg);

	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 10000000}\n"
		   "      - {meter: network.incoming.bytes, unit: GB, price: 10000000}\n"
		   "tenants:\n  big:\n    discount: 50%\n");
	n = invoices(T0, T0 + DAY, "big", false, &v);
	ck_assert_str_eq(money_format(line_of(&v[0], INV_DISCOUNT, 0)->amount_minor, 2, b, sizeof(b)),
			 "-50000000000000000.00");
	ck_assert_str_eq(money_format(v[0].subtotal_minor, 2, b, sizeof(b)), "50000000000000000.00");
	free_invoices(v, n);
}
END_TEST

/* One line past int64: 10^19 bytes cannot be a counter delta (at most
 * 2^64 - 1, and the ledger holds int64), so a line too large comes from a
 * price: 9e18 bytes (9 x 10^9 GB) at 10,000,000 per GB = 9 x 10^16 EUR =
 * 9 x 10^18 cents fits; at 20,000,000 it is 1.8 x 10^19: refused naming
 * the tenant and the line. */
START_TEST(test_line_past_int64_refused)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_NET_OUT_BYTES, T0 + H, 0, 9000000000000000000ULL, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 20000000}\n");
	struct tally_err e = { 0 };
	ck_assert_int_eq(refused(T0, T0 + DAY, &e), -ERANGE);
	ck_assert_msg(strstr(e.msg, "tenant 'acme', usage line Outbound traffic: meter network.outgoing.bytes:"
				    " the amount cannot be represented"), "%s", e.msg);
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 10000000}\n");
	struct invoice *v;
	char b[64];
	size_t n = invoices(T0, T0 + DAY, NULL, false, &v);
	ck_assert_str_eq(money_format(v[0].total_minor, 2, b, sizeof(b)), "90000000000000000.00");
	free_invoices(v, n);
}
END_TEST

/* Change the ledger's rows behind the aggregator's back, as a test may
 * (each engine's words: ledger_backend.h). */
static void ledger_sql(const char *sqlite_sql, const char *pg_sql)
{
	tu_ledger_sql2(ledger, sqlite_sql, pg_sql);
}

/* A gauge row above 2^53 milli-units is converted exactly (issue 9): a row
 * of 1125899906842624.5 vCPU-seconds is 1125899906842624500 milli-vCPU-s
 * (llrint(d * 1000.0) made it ...512), and / 3600000 that is
 * 312749974122.95125 vCPU-hours, "312749974122.951250000" to 9 places
 * (...512 would print 312749974122.951253333). At 0.01 per vCPU-hour:
 * 3127499741.2295125 EUR -> 312749974123 cents (half-even; 0.95 cents
 * rounds up). A negative row, and a counter row that is not an integer,
 * are refused: the ledger is not what tally writes. */
START_TEST(test_gauge_rows_exact_and_bad_rows_refused)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_VCPUS, T0, 2, 0, 0);
	lf_reading("vm-a", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, T0 + H, 2, 0, 0);
	lf_reading("vm-a", M_NET_OUT_BYTES, T0 + H, 0, 1000, 0);
	lf_close();
	ledger_sql("DELETE FROM usage WHERE hour_ns <> 1790812800000000000;"
		   "UPDATE usage SET quantity = 1125899906842624.5 WHERE meter_id = (SELECT id FROM meters"
		   " WHERE name = 'vcpus')",
		   "DELETE FROM usage WHERE hour_ns <> 1790812800000000000;"
		   "UPDATE usage SET quantity_real = 1125899906842624.5 WHERE meter_id = (SELECT id FROM meters"
		   " WHERE name = 'vcpus')");
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: vcpus, unit: vCPU-hour, price: 0.01}\n");
	struct invoice *v;
	char b[64];
	size_t n = invoices(T0, T0 + DAY, NULL, false, &v);
	const struct invoice_line *u = line_of(&v[0], INV_USAGE, 0);
	ck_assert_str_eq(qty(u, b), "312749974122.951250000");
	ck_assert_int_eq(u->amount_minor, 312749974123LL);
	free_invoices(v, n);

	struct tally_err e = { 0 };
	ledger_sql("UPDATE usage SET quantity = -7200.0 WHERE meter_id = (SELECT id FROM meters WHERE name = 'vcpus')",
		   "UPDATE usage SET quantity_real = -7200.0 WHERE meter_id = (SELECT id FROM meters WHERE name = 'vcpus')");
	ck_assert_int_eq(refused(T0, T0 + DAY, &e), -ERANGE);
	ck_assert_msg(strstr(e.msg, "usage of vm-a, vcpus at 2026-10-01T00:00:00Z: the ledger's quantity '-7200.0'"
				    " is negative"), "%s", e.msg);
	ledger_sql("UPDATE usage SET quantity = 7200.0 WHERE meter_id = (SELECT id FROM meters WHERE name = 'vcpus');"
		   "UPDATE usage SET quantity = 1000.5 WHERE meter_id = (SELECT id FROM meters"
		   " WHERE name = 'network.outgoing.bytes')",
		   "UPDATE usage SET quantity_real = 7200.0 WHERE meter_id = (SELECT id FROM meters WHERE name = 'vcpus');"
		   "UPDATE usage SET quantity = NULL, quantity_real = 1000.5 WHERE meter_id = (SELECT id FROM meters"
		   " WHERE name = 'network.outgoing.bytes')");
	ck_assert_int_eq(refused(T0, T0 + DAY, &e), -ERANGE);
	ck_assert_msg(strstr(e.msg, "network.outgoing.bytes at 2026-10-01T00:00:00Z: the ledger's quantity '1000.5' is"
				    " not an integer count"), "%s", e.msg);
}
END_TEST

/* Versions inherit (issue 9: a meter priced in one version and not
 * repeated in the next was no longer billed, without a word). One vCPU all
 * October and egress counted 0 -> 10 GB (days 0-10) -> 30 GB (day 20) ->
 * 40 GB (day 31), readings at midnight. Plan: from the 1st vcpus 1.00 and
 * egress 0.01/GB; from the 16th vcpus 2.00 (egress not repeated: it is
 * inherited); from the 26th 'remove: [network.outgoing.bytes]'.
 *   vcpus: 360 h x 1.00 = 360.00 until the 16th, 384 h x 2.00 = 768.00
 *   egress: one line, the 1st until the 26th: 10 GB + 20 GB + the first 5
 *     of the last 11 days' 10 GB, split per hour by cumulative floor:
 *     floor(10^10 x 120 / 264) = 4545454545 B, so 34545454545 B =
 *     34.545454545 GB x 0.01 = 0.34545... -> 0.35
 *   the rest, 10^10 - 4545454545 = 5454545455 B = 5.455 GB, is priced
 *     elsewhere in the plan: a NOTE says it is not billed
 *   total 360.00 + 768.00 + 0.35 = 1128.35 */
START_TEST(test_versions_inherit_and_remove)
{
	lf_open();
	lf_meta("vm-o", "acme", "m1.small", T0);
	lf_reading("vm-o", M_VCPUS, T0, 1, 0, 0);
	lf_reading("vm-o", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 10 * DAY, 0, 10 * GB, 0);
	lf_flush();
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 20 * DAY, 0, 30 * GB, 0);
	lf_flush();
	lf_reading("vm-o", M_VCPUS, T0 + 31 * DAY, 1, 0, 0);
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 31 * DAY, 0, 40 * GB, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n"
		   "  - from: 2026-10-01\n    prices:\n      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, price: 0.01}\n"
		   "  - from: 2026-10-16\n    prices:\n      - {meter: vcpus, unit: vCPU-hour, price: 2.00}\n"
		   "  - from: 2026-10-26\n    remove: [network.outgoing.bytes]\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	char b[64];
	ck_assert_uint_eq(v[0].n_lines, 3);
	const struct invoice_line *c1 = line_of(&v[0], INV_USAGE, 0), *c2 = line_of(&v[0], INV_USAGE, 1),
				  *net = line_of(&v[0], INV_USAGE, 2);
	ck_assert_int_eq(c1->amount_minor, 36000);
	ck_assert_int_eq(c2->amount_minor, 76800);
	ck_assert_str_eq(qty(net, b), "34.545454545");
	ck_assert_int_eq(net->amount_minor, 35);
	ck_assert_str_eq(net->description, "Outbound traffic until 2026-10-26");
	ck_assert_int_eq(v[0].total_minor, 112835);
	ck_assert_uint_eq(v[0].n_notes, 1);
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	struct invoice_render_opts o = { .format = INV_TEXT };
	ck_assert_int_eq(invoice_render(f, &v[0], &o, true), 0);
	fclose(f);
	ck_assert_msg(strstr(buf, "NOTE     network.outgoing.bytes: 5.455 GB that no price of the plan matches"), "%s",
		      buf);
	free(buf);
	free_invoices(v, n);
}
END_TEST

/* The usage line of meter m that starts at from. */
static const struct invoice_line *part_of(const struct invoice *inv, int m, int64_t from)
{
	for (size_t i = 0; i < inv->n_lines; i++)
		if (inv->lines[i].type == INV_USAGE && inv->lines[i].meter == m && inv->lines[i].from_ns == from)
			return &inv->lines[i];
	ck_abort_msg("no line of meter %d from %lld", m, (long long)from);
	return NULL;
}

/* One free allowance, one count for tiers and blocks per period, across a
 * plan change (issue 9: each part restarted them, so a tenant got a second
 * allowance). The plan changes on 2026-10-16T12:00Z (T0 + 372 h).
 * Egress: 0 at T0, 60 GB at T0+15d, 140 GB at T0+31d; the 80 GB of the
 * second interval (384 h) split per hour: 12 h of it before the change =
 * 80 x 12 / 384 = 2.5 GB. Part 1 = 62.5 GB, part 2 = 77.5 GB.
 * Free 10 GB a period; graduated tiers up to 100 GB, then the rest:
 *   part 1 (0.10, then 0.05): positions 0-62.5; 10 free, 52.5 in tier 1
 *     = 5.25
 *   part 2 (0.08, then 0.04): positions 62.5-140 = after the allowance
 *     52.5-130: 47.5 in tier 1 (0.08) = 3.80, 30 in tier 2 (0.04) = 1.20
 *     = 5.00 (restarting gave 10 free again and 67.5 x 0.08 = 5.40)
 * Instance: one all month, 744 instance-hours, blocks of 24 h:
 *   part 1 (1.00 a block): 372 h, ceil(372 / 24) = 16 blocks = 16.00
 *   part 2 (2.00 a block): blocks started by 744 h (31) less those started
 *     by 372 h (16) = 15 = 30.00 (restarting billed 16, the half block
 *     begun before the change twice)
 * Total 5.25 + 5.00 + 16.00 + 30.00 = 56.25. */
START_TEST(test_one_allowance_across_a_plan_change)
{
	lf_open();
	lf_meta("vm-o", "acme", "m1.small", T0);
	lf_reading("vm-o", M_INSTANCE, T0, 1, 0, 0);
	lf_reading("vm-o", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 15 * DAY, 0, 60 * GB, 0);
	lf_flush();
	lf_reading("vm-o", M_INSTANCE, T0 + 31 * DAY, 1, 0, 0);
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 31 * DAY, 0, 140 * GB, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n"
		   "  - from: 2026-10-01\n    prices:\n"
		   "      - {meter: instance, unit: instance-hour, block: 24, price: 1.00}\n"
		   "      - meter: network.outgoing.bytes\n        unit: GB\n        free: 10\n"
		   "        tiers: [{up_to: 100, price: 0.10}, {price: 0.05}]\n"
		   "  - from: 2026-10-16T12:00:00Z\n    prices:\n"
		   "      - {meter: instance, unit: instance-hour, block: 24, price: 2.00}\n"
		   "      - meter: network.outgoing.bytes\n        unit: GB\n        free: 10\n"
		   "        tiers: [{up_to: 100, price: 0.08}, {price: 0.04}]\n");
	struct invoice *v;
	char b[64];
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	const int64_t change = T0 + 372 * H;
	const struct invoice_line *n1 = part_of(&v[0], M_NET_OUT_BYTES, T0), *n2 = part_of(&v[0], M_NET_OUT_BYTES, change);
	const struct invoice_line *i1 = part_of(&v[0], M_INSTANCE, T0), *i2 = part_of(&v[0], M_INSTANCE, change);
	ck_assert_str_eq(qty(n1, b), "62.500000000");
	ck_assert_str_eq(qty(n2, b), "77.500000000");
	ck_assert_int_eq(n1->amount_minor, 525);
	ck_assert_int_eq(n2->amount_minor, 500);
	ck_assert(n2->calc.free_num == 0);
	ck_assert_int_eq(i1->amount_minor, 1600);
	ck_assert_int_eq(i2->amount_minor, 3000);
	ck_assert(i2->calc.steps[0].blocks == 15);
	ck_assert_int_eq(v[0].total_minor, 5625);
	free_invoices(v, n);
}
END_TEST

/* The same price is the same selector, whatever order its labels are
 * written in: {flavor: m1.small, name: vm-o} from the 1st and {name:
 * vm-o, flavor: m1.small} from 2026-10-16T12:00Z select the same VMs, so
 * the period has one allowance of 10 GB. Egress as above: 62.5 GB before
 * the change, 77.5 GB after. Part 1: 10 free, 52.5 x 0.10 = 5.25; part 2:
 * the allowance is used up, 77.5 x 0.08 = 6.20. (Compared as text, the
 * labels in another order were another price: a second 10 GB free, 67.5 x
 * 0.08 = 5.40.) */
START_TEST(test_one_allowance_labels_in_any_order)
{
	lf_open();
	lf_meta("vm-o", "acme", "m1.small", T0);
	lf_reading("vm-o", M_NET_OUT_BYTES, T0, 0, 0, 0);
	lf_flush();
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 15 * DAY, 0, 60 * GB, 0);
	lf_flush();
	lf_reading("vm-o", M_NET_OUT_BYTES, T0 + 31 * DAY, 0, 140 * GB, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n"
		   "  - from: 2026-10-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, select: {flavor: m1.small, name: vm-o},"
		   " free: 10, price: 0.10}\n"
		   "  - from: 2026-10-16T12:00:00Z\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, select: {name: vm-o, flavor: m1.small},"
		   " free: 10, price: 0.08}\n");
	struct invoice *v;
	char b[64];
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	const int64_t change = T0 + 372 * H;
	const struct invoice_line *n1 = part_of(&v[0], M_NET_OUT_BYTES, T0), *n2 = part_of(&v[0], M_NET_OUT_BYTES, change);
	ck_assert_str_eq(qty(n1, b), "62.500000000");
	ck_assert_str_eq(qty(n2, b), "77.500000000");
	ck_assert_int_eq(n1->amount_minor, 525);
	ck_assert(n2->calc.free_num == 0);
	ck_assert_int_eq(n2->amount_minor, 620);
	ck_assert_int_eq(v[0].total_minor, 1145);
	free_invoices(v, n);
}
END_TEST

/* A prorated allowance (prorate_free: true): the tenant's VM lives from
 * 2026-10-21 to the end of October: 11 of 31 days (21st to 31st), so a
 * free 31 GB a month is 31 x 11 / 31 = 11 GB. It sends 25 GB at 0.10/GB:
 * 25 - 11 = 14 GB x 0.10 = 1.40. Not prorated (the default) the whole
 * 31 GB is free: 0.00. */
START_TEST(test_prorated_allowance)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0 + 20 * DAY);
	lf_reading("vm-a", M_NET_OUT_BYTES, T0 + 20 * DAY, 0, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_NET_OUT_BYTES, T0 + 31 * DAY, 0, 25 * GB, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, free: 31, prorate_free: true, price: 0.10}\n");
	struct invoice *v;
	char b[64];
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_int_eq(v[0].days_existed, 11);
	const struct invoice_line *u = line_of(&v[0], INV_USAGE, 0);
	ck_assert_str_eq(money_format_ratio(u->calc.free_num, u->calc.qty_den, 9, b, sizeof(b)), "11.000000000");
	ck_assert_int_eq(u->amount_minor, 140);
	free_invoices(v, n);
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: network.outgoing.bytes, unit: GB, free: 31, price: 0.10}\n");
	n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_int_eq(line_of(&v[0], INV_USAGE, 0)->amount_minor, 0);
	free_invoices(v, n);
}
END_TEST

/* A hypervisor host (resource type "host", no tenant, as the cgroup
 * collector reports it) is outside billing unless the plan prices one of
 * its meters. acme's vm-a uses 1 CPU-hour (3.6e12 ns), the host hv1 2
 * CPU-hours of host.cpu. Plan A prices cpu at 1.00 and a 10.00 fee: one
 * invoice, acme's, 1.00 + 10.00 = 11.00 (no invoice, and no fee, for the
 * host's empty tenant). Plan B also prices host.cpu at 0.50: the host's
 * usage is billed, 2 x 0.50 = 1.00 on the empty tenant's invoice. */
START_TEST(test_host_outside_billing)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	str_copy(m.resource, "hv1", sizeof(m.resource));
	str_copy(m.type, "host", sizeof(m.type));
	str_copy(m.name, "hv1", sizeof(m.name));
	m.time_ns = T0;
	ck_assert_int_eq(batch_add_meta(&bt, &m), 0);
	lf_reading("vm-a", M_CPU, T0, 0, 0, 0);
	lf_reading("hv1", M_HOST_CPU, T0, 0, 0, 0);
	lf_reading("hv1", M_HOST_MEMORY, T0, 1e10, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_CPU, T0 + H, 0, 3600000000000ULL, 0);
	lf_reading("hv1", M_HOST_CPU, T0 + H, 0, 7200000000000ULL, 0);
	lf_reading("hv1", M_HOST_MEMORY, T0 + H, 1e10, 0, 0);
	lf_close();
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: cpu, unit: CPU-hour, price: 1.00}\n"
		   "    fees:\n      - {name: support, amount: 10.00}\n");
	struct invoice *v;
	size_t n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].tenant, "acme");
	ck_assert_int_eq(v[0].total_minor, 1100);
	free_invoices(v, n);
	write_plan(PLAN_HEAD "versions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: cpu, unit: CPU-hour, price: 1.00}\n"
		   "      - {meter: host.cpu, unit: CPU-hour, price: 0.50}\n");
	n = invoices(T0, T0 + 31 * DAY, NULL, false, &v);
	ck_assert_uint_eq(n, 2);
	const struct invoice *h = by_tenant(v, n, "");
	char b[64];
	const struct invoice_line *u = line_of(h, INV_USAGE, 0);
	ck_assert_str_eq(u->description, "Host CPU time");
	ck_assert_str_eq(qty(u, b), "2.000000000");
	ck_assert_int_eq(h->total_minor, 100);
	ck_assert_int_eq(by_tenant(v, n, "acme")->total_minor, 100);
	free_invoices(v, n);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("invoice");
	TCase *tc = tcase_create("invoice");
	tcase_add_checked_fixture(tc, NULL, lf_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_per_unit_and_discount);
	tcase_add_test(tc, test_graduated_tiers_at_the_edge);
	tcase_add_test(tc, test_volume_tiers_at_the_edge);
	tcase_add_test(tc, test_free_allowance_and_blocks);
	tcase_add_test(tc, test_zero_usage_minimum_and_prorated_fee);
	tcase_add_test(tc, test_vm_living_one_second);
	tcase_add_test(tc, test_leap_february_and_31_day_month);
	tcase_add_test(tc, test_plan_change_mid_month);
	tcase_add_test(tc, test_2_50_bytes_and_a_nano_price);
	tcase_add_test(tc, test_tax_rounding);
	tcase_add_test(tc, test_selectors_overrides_and_unpriced);
	tcase_add_test(tc, test_unknown_tenant);
	tcase_add_test(tc, test_properties);
	tcase_add_test(tc, test_sum_past_int64_refused);
	tcase_add_test(tc, test_tax_and_discount_near_int64);
	tcase_add_test(tc, test_line_past_int64_refused);
	tcase_add_test(tc, test_gauge_rows_exact_and_bad_rows_refused);
	tcase_add_test(tc, test_versions_inherit_and_remove);
	tcase_add_test(tc, test_one_allowance_across_a_plan_change);
	tcase_add_test(tc, test_one_allowance_labels_in_any_order);
	tcase_add_test(tc, test_prorated_allowance);
	tcase_add_test(tc, test_host_outside_billing);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
