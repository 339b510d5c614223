/*
 * test_plan.c: rate plans are read exactly (prices to the nano, units that
 * fit their meters) and every kind of mistake is reported with its place,
 * all of them in one pass. Fixtures in tests/fixtures/plans/ and the example
 * config/plan-example.yaml; line:column counted by hand in each file.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "meter.h"
#include "plan.h"
#include "tallytime.h"
#include "testutil.h"

START_TEST(test_example_plan)
{
	struct plan p;
	struct plan_errors errs;
	int rc = plan_load("config/plan-example.yaml", &p, &errs);
	ck_assert_msg(rc == 0, "%s", errs.n ? errs.msg[0] : "?");
	ck_assert_str_eq(p.name, "standard-2026");
	ck_assert_str_eq(p.currency, "EUR");
	ck_assert_int_eq(p.minor_digits, 2);
	ck_assert_int_eq(p.rounding, MONEY_HALF_EVEN);
	ck_assert_int_eq(p.n_taxes, 1);
	ck_assert_int_eq(p.taxes[0].ppm, 190000);               /* 19% */
	ck_assert_uint_eq(p.n_versions, 3);
	ck_assert_int_eq(p.versions[0].from_ns, 1767225600LL * NS_PER_SEC);   /* date -u -d 2026-01-01 +%s */
	ck_assert_int_eq(p.versions[1].from_ns, 1790812800LL * NS_PER_SEC);   /* 2026-10-01 */
	ck_assert_int_eq(p.versions[2].from_ns, 1792022400LL * NS_PER_SEC);   /* 2026-10-15: + 14 x 86400 */
	const struct plan_version *v = &p.versions[0];
	ck_assert_uint_eq(v->n_prices, 9);
	ck_assert_int_eq(v->prices[0].meter, M_VCPUS);
	ck_assert_str_eq(v->prices[0].unit.name, "vCPU-hour");
	ck_assert_int_eq(v->prices[0].price_nanos, 12500000);    /* 0.0125 */
	ck_assert_str_eq(v->prices[0].sel_key[0], "flavor");
	ck_assert_str_eq(v->prices[0].sel_val[0], "m1.small");
	const struct plan_price *net = &v->prices[6];
	ck_assert_int_eq(net->meter, M_NET_OUT_BYTES);
	ck_assert_int_eq(net->model, PLAN_GRADUATED);
	ck_assert_int_eq(net->free_nanos, 10 * MONEY_NANOS);
	ck_assert_int_eq(net->n_tiers, 3);
	ck_assert_int_eq(net->tiers[0].up_to_nanos, 1000 * MONEY_NANOS);
	ck_assert_int_eq(net->tiers[1].price_nanos, 70000000);   /* 0.07 */
	ck_assert(!net->tiers[2].has_up_to);
	ck_assert_int_eq(net->until_ns, 1790812800LL * NS_PER_SEC);   /* all egress: replaced on 1 October */
	ck_assert_int_eq(v->prices[8].model, PLAN_BLOCK);
	ck_assert_int_eq(v->prices[8].block_nanos, 24 * MONEY_NANOS);
	ck_assert_int_eq(v->fees[0].amount_minor, 5000);         /* 50.00 EUR */
	ck_assert(v->fees[0].prorate);
	ck_assert_int_eq(v->minimum_minor, 10000);
	ck_assert_uint_eq(p.n_tenants, 1);
	ck_assert_int_eq(p.tenants[0].discount_ppm, 100000);     /* 10% */
	/* from 1 October egress is priced by traffic class: its own four
	 * prices (internet, peering, internal, the NIC's total at 0) replace
	 * network.outgoing.bytes; the other 8 of the 9 above are inherited,
	 * before its own, in their order */
	const struct plan_version *c = &p.versions[1];
	ck_assert_uint_eq(c->n_own, 4);
	ck_assert_uint_eq(c->n_prices, 8 + 4);
	ck_assert_int_eq(c->prices[6].meter, M_DISK_READ_REQUESTS);
	ck_assert_int_eq(c->prices[6].origin, 0);
	const struct plan_price *inet = &c->prices[8];
	ck_assert_int_eq(inet->meter, meter_lookup("network.internet.outgoing.bytes"));
	ck_assert_int_eq(inet->origin, 1);
	ck_assert_str_eq(inet->unit.name, net->unit.name);       /* GB */
	ck_assert_int_eq(inet->model, PLAN_GRADUATED);           /* all egress's allowance and tiers */
	ck_assert_int_eq(inet->free_nanos, 10 * MONEY_NANOS);
	ck_assert_int_eq(inet->n_tiers, 3);
	ck_assert_int_eq(inet->tiers[0].price_nanos, 90000000);  /* 0.09 */
	ck_assert_int_eq(inet->tiers[1].up_to_nanos, 10000 * MONEY_NANOS);
	ck_assert_int_eq(inet->tiers[2].price_nanos, 50000000);  /* 0.05 */
	ck_assert_int_eq(c->prices[9].meter, meter_lookup("network.peering.outgoing.bytes"));
	ck_assert_int_eq(c->prices[9].price_nanos, 20000000);    /* 0.02 */
	ck_assert_int_eq(c->prices[10].meter, meter_lookup("network.internal.outgoing.bytes"));
	ck_assert_int_eq(c->prices[10].model, PLAN_PER_UNIT);
	ck_assert_int_eq(c->prices[10].price_nanos, 0);          /* free, and shown */
	ck_assert_int_eq(c->prices[11].meter, M_NET_OUT_BYTES);
	ck_assert_int_eq(c->prices[11].price_nanos, 0);          /* the total: never billed twice */
	ck_assert_uint_eq(c->n_fees, 1);
	ck_assert_int_eq(c->minimum_minor, 10000);
	/* from 15 October: its own vcpus and memory replace the four vcpus and
	 * memory entries; cpu, disk capacity, requests and instance (4) and
	 * the 4 egress prices of 1 October are inherited, as are the fee and
	 * the minimum */
	const struct plan_version *w = &p.versions[2];
	ck_assert_uint_eq(w->n_own, 2);
	ck_assert_uint_eq(w->n_prices, 4 + 4 + 2);
	ck_assert_int_eq(w->prices[0].meter, M_CPU);
	ck_assert_int_eq(w->prices[0].origin, 0);
	ck_assert_int_eq(w->prices[4].meter, inet->meter);
	ck_assert_int_eq(w->prices[4].origin, 1);
	ck_assert_int_eq(w->prices[7].meter, M_NET_OUT_BYTES);
	ck_assert_int_eq(w->prices[8].meter, M_VCPUS);
	ck_assert_int_eq(w->prices[8].origin, 2);
	ck_assert_int_eq(w->prices[8].price_nanos, 10000000);   /* 0.010 */
	ck_assert_uint_eq(w->n_fees, 1);
	ck_assert_int_eq(w->minimum_minor, 10000);
	ck_assert_int_eq(v->prices[0].until_ns, 1792022400LL * NS_PER_SEC);   /* vcpus m1.small: replaced */
	ck_assert_int_eq(v->prices[4].until_ns, INT64_MAX);                   /* cpu: never */
	ck_assert_int_eq(inet->until_ns, INT64_MAX);                          /* internet egress: never */
	plan_release(&p);
}
END_TEST

START_TEST(test_every_mistake_with_its_place)
{
	struct plan p;
	struct plan_errors errs;
	const char *f = "tests/fixtures/plans/mistakes.yaml";
	ck_assert_int_eq(plan_load(f, &p, &errs), -EINVAL);
	static const char *const want[] = {
		"mistakes.yaml:1:1: missing 'currency' (an ISO 4217 code such as EUR)",
		"mistakes.yaml:11:20: tier 'up_to' must increase (got 100 after 1000)",
		"mistakes.yaml:14:16: unknown meter 'cpu.time'",
		"mistakes.yaml:18:15: unit 'GB' does not fit meter 'cpu' (it measures ns, a count)",
		"mistakes.yaml:24:9: price for 'vcpus' overlaps the one at line 20",
		"mistakes.yaml:30:16: 'price': '0.0000000001': more precision than the money scale holds",
		"mistakes.yaml:31:14: 'minimum': 10.001 has more precision than the currency holds",
	};
	ck_assert_int_eq(errs.total, 7);
	for (int i = 0; i < 7; i++)
		ck_assert_msg(strstr(errs.msg[i], want[i]) != NULL, "mistake %d: '%s' lacks '%s'", i, errs.msg[i],
			      want[i]);
}
END_TEST

START_TEST(test_disjoint_selectors_and_currency_digits)
{
	struct plan p;
	struct plan_errors errs;
	int rc = plan_load("tests/fixtures/plans/fine-selectors.yaml", &p, &errs);
	ck_assert_msg(rc == 0, "%s", errs.n ? errs.msg[0] : "?");
	ck_assert_int_eq(p.minor_digits, 0);                     /* JPY has no minor unit */
	ck_assert_int_eq(p.versions[1].minimum_minor, 1000);
	ck_assert_uint_eq(p.versions[0].n_prices, 2);             /* flavors differ: no overlap */
	plan_release(&p);
	ck_assert_int_eq(plan_load("tests/fixtures/plans/none.yaml", &p, &errs), -ENOENT);
	ck_assert_ptr_nonnull(strstr(errs.msg[0], "none.yaml: cannot open"));
}
END_TEST

/* Per-tenant prices are checked like a version's, and a version must start
 * on a whole hour since usage is kept per hour. Places counted by hand in
 * tests/fixtures/plans/tenant-prices.yaml. */
START_TEST(test_tenant_prices_and_whole_hours)
{
	struct plan p;
	struct plan_errors errs;
	ck_assert_int_eq(plan_load("tests/fixtures/plans/tenant-prices.yaml", &p, &errs), -EINVAL);
	ck_assert_int_eq(errs.total, 2);
	ck_assert_msg(strstr(errs.msg[0], "tenant-prices.yaml:4:11: 'from' must be a whole UTC hour") != NULL, "%s",
		      errs.msg[0]);
	ck_assert_msg(strstr(errs.msg[1], "tenant-prices.yaml:12:9: price for 'vcpus' overlaps the one at line 11")
		      != NULL, "%s", errs.msg[1]);
}
END_TEST

/* No fixed-size array drops what the plan says (issue 9): nine fees are
 * nine fees (there were 8 slots), eight taxes are eight (there were 4);
 * a ninth tax is refused by name (tests/fixtures/plans/shapes/). */
START_TEST(test_no_silent_truncation)
{
	static const char text[] =
		"plan: many\ncurrency: EUR\ntax:\n"
		"  - {name: t1, rate: 1%}\n  - {name: t2, rate: 1%}\n  - {name: t3, rate: 1%}\n"
		"  - {name: t4, rate: 1%}\n  - {name: t5, rate: 1%}\n  - {name: t6, rate: 1%}\n"
		"  - {name: t7, rate: 1%}\n  - {name: t8, rate: 2.5%}\n"
		"versions:\n  - from: 2026-01-01\n    fees:\n"
		"      - {name: f1, amount: 1}\n      - {name: f2, amount: 2}\n      - {name: f3, amount: 3}\n"
		"      - {name: f4, amount: 4}\n      - {name: f5, amount: 5}\n      - {name: f6, amount: 6}\n"
		"      - {name: f7, amount: 7}\n      - {name: f8, amount: 8}\n      - {name: f9, amount: 9.99}\n";
	struct plan p;
	struct plan_errors errs;
	int rc = plan_load_text("many.yaml", text, sizeof(text) - 1, &p, &errs);
	ck_assert_msg(rc == 0, "%s", errs.n ? errs.msg[0] : "?");
	ck_assert_int_eq(p.n_taxes, 8);
	ck_assert_int_eq(p.taxes[7].ppm, 25000);                  /* 2.5% */
	ck_assert_uint_eq(p.versions[0].n_fees, 9);
	ck_assert_str_eq(p.versions[0].fees[8].name, "f9");
	ck_assert_int_eq(p.versions[0].fees[8].amount_minor, 999);
	plan_release(&p);
}
END_TEST

/* A billing unit that fits meter m, or NULL (for the test below). */
static const char *unit_for(int m)
{
	const struct meter_def *d = &meter_table[m];
	if (!strcmp(d->unit, "ns"))
		return "CPU-hour";
	if (!strcmp(d->unit, "B"))
		return d->kind == SAMPLE_GAUGE ? "GiB-hour" : "GB";
	if (!strcmp(d->unit, "packet"))
		return "packet-million";
	if (!strcmp(d->unit, "request"))
		return "request-million";
	return NULL;
}

/* Inheritance keeps one flag per meter of the table, which holds far more
 * than 32 meters. Version 1 prices meter A (index k) and meter B (index
 * k + 32) at 0.01 and 0.02; version 2 prices B again at 0.03. Version 2
 * must hold A inherited at 0.01 and its own B at 0.03: with a 32-bit mask
 * the shift by B's index wrapped to A's bit, A looked replaced and its
 * price was lost from the 1st of the second month. */
START_TEST(test_inherit_meters_past_32)
{
	int a = -1;
	for (int k = 0; k + 32 < METER_COUNT && a < 0; k++)
		if (unit_for(k) && unit_for(k + 32))
			a = k;
	ck_assert_int_ge(a, 0);
	int b = a + 32;
	char text[1024];
	snprintf(text, sizeof(text),
		 "plan: wide\ncurrency: EUR\n"
		 "versions:\n  - from: 2026-01-01\n    prices:\n"
		 "      - {meter: %s, unit: %s, price: 0.01}\n"
		 "      - {meter: %s, unit: %s, price: 0.02}\n"
		 "  - from: 2026-02-01\n    prices:\n"
		 "      - {meter: %s, unit: %s, price: 0.03}\n",
		 meter_table[a].name, unit_for(a), meter_table[b].name, unit_for(b), meter_table[b].name, unit_for(b));
	struct plan p;
	struct plan_errors errs;
	int rc = plan_load_text("wide.yaml", text, strlen(text), &p, &errs);
	ck_assert_msg(rc == 0, "%s", errs.n ? errs.msg[0] : "?");
	ck_assert_uint_eq(p.n_versions, 2);
	const struct plan_version *v = &p.versions[1];
	int64_t got_a = -1, got_b = -1;
	for (size_t i = 0; i < v->n_prices; i++) {
		if (v->prices[i].meter == a)
			got_a = v->prices[i].price_nanos;
		if (v->prices[i].meter == b)
			got_b = v->prices[i].price_nanos;
	}
	ck_assert_uint_eq(v->n_prices, 2);
	ck_assert_int_eq(got_a, 10000000);   /* 0.01 inherited */
	ck_assert_int_eq(got_b, 30000000);   /* 0.03 its own */
	plan_release(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("plan");
	tcase_add_test(tc, test_example_plan);
	tcase_add_test(tc, test_every_mistake_with_its_place);
	tcase_add_test(tc, test_disjoint_selectors_and_currency_digits);
	tcase_add_test(tc, test_tenant_prices_and_whole_hours);
	tcase_add_test(tc, test_no_silent_truncation);
	tcase_add_test(tc, test_inherit_meters_past_32);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
