/*
 * test_customer.c: the customers file and the plan's issuer map are read
 * exactly, every mistake is refused with its place and the key named, and
 * an invoice carries the parties, its dates and the customer's tax
 * treatment (reverse charge and exempt: no tax, the note instead). Places
 * (line:col) counted by hand in the texts below; amounts worked by hand.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "customer.h"
#include "err.h"
#include "invoice.h"
#include "plan.h"
#include "tallytime.h"
#include "testutil.h"

static char dir[64], path[128];

static void write_text(const char *text)
{
	tu_mkdtemp(dir, sizeof(dir), "customer");
	snprintf(path, sizeof(path), "%s/customers.yaml", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* errs holds a message with this place and text (path stripped). */
static void has(const struct plan_errors *errs, const char *place_and_what)
{
	for (int i = 0; i < errs->n; i++) {
		const char *m = strstr(errs->msg[i], "customers.yaml:");
		if (m && strstr(m + strlen("customers.yaml:"), place_and_what) == m + strlen("customers.yaml:"))
			return;
	}
	for (int i = 0; i < errs->n; i++)
		fprintf(stderr, "  have: %s\n", errs->msg[i]);
	ck_abort_msg("no mistake '%s'", place_and_what);
}

static const char good[] =
	"customers:\n"
	"  acme:\n"
	"    name: Acme Widgets GmbH\n"
	"    address:\n"
	"      - Hauptstraße 1\n"
	"      - 10115 Berlin\n"
	"    vat_id: DE123456789\n"
	"    email: billing@acme.example\n"
	"    currency: EUR\n"
	"    tax: reverse-charge\n"
	"    payment_terms: 14\n"
	"    reference: PO-4711\n"
	"  beta:\n"
	"    name: Beta Ltd\n"
	"    address: 1 High Street, London\n"
	"  gamma:\n"
	"    name: Gamma e.V.\n"
	"    tax: exempt\n"
	"    tax_note: Exempt under section 4 no. 22 UStG\n";

START_TEST(test_good_file)
{
	struct customers c;
	struct plan_errors errs;
	write_text(good);
	int rc = customers_load(path, &c, &errs);
	ck_assert_msg(rc == 0, "%s", errs.n ? errs.msg[0] : "?");
	ck_assert_uint_eq(c.n, 3);
	const struct customer *a = customers_find(&c, "acme");
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->party.name, "Acme Widgets GmbH");
	ck_assert_int_eq(a->party.n_address, 2);
	ck_assert_str_eq(a->party.address[0], "Hauptstraße 1");
	ck_assert_str_eq(a->party.vat_id, "DE123456789");
	ck_assert_str_eq(a->currency, "EUR");
	ck_assert_int_eq(a->tax, TAX_REVERSE_CHARGE);
	ck_assert_msg(strstr(a->tax_note, "Reverse charge") == a->tax_note, "%s", a->tax_note);
	ck_assert_int_eq(a->payment_days, 14);
	ck_assert_str_eq(a->reference, "PO-4711");
	const struct customer *b = customers_find(&c, "beta");
	ck_assert_int_eq(b->party.n_address, 1);               /* one string is one line */
	ck_assert_int_eq(b->tax, TAX_DOMESTIC);
	ck_assert_int_eq(b->payment_days, -1);                  /* the issuer's */
	ck_assert_str_eq(b->tax_note, "");
	ck_assert_str_eq(customers_find(&c, "gamma")->tax_note, "Exempt under section 4 no. 22 UStG");
	ck_assert_ptr_null(customers_find(&c, "delta"));
	customers_release(&c);
	tu_rmrf(dir);
}
END_TEST

/* Every mistake in one pass, each with its place and the key named. */
START_TEST(test_every_mistake)
{
	static const char bad[] =
		"customers:\n"                                  /* 1 */
		"  acme:\n"                                     /* 2 */
		"    name: Acme\n"                              /* 3 */
		"    vat: DE123\n"                              /* 4: unknown key */
		"  beta:\n"                                     /* 5 */
		"    name: Beta\n"                              /* 6 */
		"    tax: reverse-charge\n"                     /* 7: no vat_id */
		"  gamma:\n"                                    /* 8 */
		"    name: Gamma\n"                             /* 9 */
		"    tax: exempt\n"                             /* 10: no tax_note */
		"  delta:\n"                                    /* 11 */
		"    name: Delta\n"                             /* 12 */
		"    email: nobody\n"                           /* 13 */
		"    currency: euro\n"                          /* 14 */
		"    payment_terms: 400\n"                      /* 15 */
		"  eps:\n"                                      /* 16 */
		"    address: [1 Road]\n"                       /* 17: no name */
		"  zeta:\n"                                     /* 18 */
		"    name: Zeta\n"                              /* 19 */
		"    address: {street: 1 Road}\n"               /* 20: a map */
		"    tax: zero\n"                               /* 21 */
		"    vat_id: DE 123\n";                         /* 22 */
	struct customers c;
	struct plan_errors errs;
	write_text(bad);
	ck_assert_int_eq(customers_load(path, &c, &errs), -EINVAL);
	has(&errs, "4:5: unknown key 'vat' in 'customer 'acme''");
	has(&errs, "7:10: customer 'beta': 'tax: reverse-charge' needs the customer's 'vat_id'");
	has(&errs, "10:10: customer 'gamma': 'tax: exempt' needs a 'tax_note'");
	has(&errs, "13:12: 'email': 'nobody' is not an address");
	has(&errs, "14:15: 'currency': expected an ISO 4217 code");
	has(&errs, "15:20: key 'payment_terms': 400 is out of range 0..365");
	has(&errs, "17:5: 'customer 'eps'' needs a 'name'");
	has(&errs, "20:14: 'address': expected a list of at most 6 lines");
	has(&errs, "21:10: key 'tax'");
	has(&errs, "22:13: 'vat_id': 'DE 123' holds ' '");
	ck_assert_int_eq(errs.total, 10);
	ck_assert_ptr_null(c.v);
	tu_rmrf(dir);

	/* the shape of the file itself */
	write_text("customer:\n  acme: {name: Acme}\n");
	ck_assert_int_eq(customers_load(path, &c, &errs), -EINVAL);
	has(&errs, "1:1: unknown key 'customer'");
	tu_rmrf(dir);
	write_text("customers:\n  - acme\n");
	ck_assert_int_eq(customers_load(path, &c, &errs), -EINVAL);
	has(&errs, "2:3: key 'customers'");
	tu_rmrf(dir);
	write_text("customers:\n  acme: Acme GmbH\n");
	ck_assert_int_eq(customers_load(path, &c, &errs), -EINVAL);
	has(&errs, "2:9: customer 'acme': expected a map of billing details");
	tu_rmrf(dir);
	ck_assert_int_eq(customers_load("/nonexistent/customers.yaml", &c, &errs), -ENOENT);
}
END_TEST

static const char plan_text[] =
	"plan: p\n"
	"issuer:\n"
	"  name: Example Cloud GmbH\n"
	"  address: [Cloudstraße 1, 10115 Berlin]\n"
	"  vat_id: DE987654321\n"
	"  payment: [IBAN DE89 3704 0044 0532 0130 00]\n"
	"  payment_terms: 30\n"
	"  invoice_prefix: INV-\n"
	"currency: EUR\n"
	"tax:\n  - {name: VAT, rate: 19%}\n"
	"versions:\n  - from: 2026-01-01\n    fees:\n      - {name: support, amount: 100.00}\n";

START_TEST(test_issuer_map)
{
	struct plan p;
	struct plan_errors errs;
	int rc = plan_load_text("p.yaml", plan_text, sizeof(plan_text) - 1, &p, &errs);
	ck_assert_msg(rc == 0, "%s", errs.n ? errs.msg[0] : "?");
	ck_assert_str_eq(p.issuer, "Example Cloud GmbH");             /* the numbering series */
	ck_assert_str_eq(p.issuer_info.party.vat_id, "DE987654321");
	ck_assert_int_eq(p.issuer_info.party.n_address, 2);
	ck_assert_int_eq(p.issuer_info.n_payment, 1);
	ck_assert_int_eq(p.issuer_info.payment_days, 30);
	ck_assert_str_eq(p.issuer_info.invoice_prefix, "INV-");
	ck_assert_str_eq(p.issuer_info.credit_prefix, "CN-");         /* the default */
	plan_release(&p);

	/* a name alone, as before: the series, no details */
	static const char old[] = "plan: p\nissuer: Example Cloud\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n";
	ck_assert_int_eq(plan_load_text("o.yaml", old, sizeof(old) - 1, &p, &errs), 0);
	ck_assert_str_eq(p.issuer, "Example Cloud");
	ck_assert_str_eq(p.issuer_info.party.name, "");
	plan_release(&p);

	static const char bad[] = "plan: p\nissuer:\n  name: X\n  iban: DE89\n  invoice_prefix: A\n"
				  "  credit_note_prefix: A\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n";
	ck_assert_int_eq(plan_load_text("b.yaml", bad, sizeof(bad) - 1, &p, &errs), -EINVAL);
	ck_assert_msg(strstr(errs.msg[0], "b.yaml:4:3: unknown key 'iban' in 'issuer'"), "%s", errs.msg[0]);
	static const char bad2[] = "plan: p\nissuer:\n  name: X\n  invoice_prefix: A\n"
				   "  credit_note_prefix: A\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n";
	ck_assert_int_eq(plan_load_text("b.yaml", bad2, sizeof(bad2) - 1, &p, &errs), -EINVAL);
	ck_assert_msg(strstr(errs.msg[0], "b.yaml:3:3: 'issuer': credit notes are numbered in a series of their own"),
		      "%s", errs.msg[0]);
}
END_TEST

/* A fee-only invoice per tenant, with the parties put on it. The fee is
 * 100.00; VAT 19 % of 100.00 = 19.00 for a domestic customer; none for
 * reverse charge and exempt. Invoice date 2026-11-01 (1793491200 s);
 * acme's terms 14 days: due 2026-11-15; beta's the issuer's 30 days:
 * due 2026-12-01. */
START_TEST(test_apply)
{
	struct plan p;
	struct plan_errors errs;
	struct customers c;
	struct tally_err e = { 0 };
	ck_assert_int_eq(plan_load_text("p.yaml", plan_text, sizeof(plan_text) - 1, &p, &errs), 0);
	write_text(good);
	ck_assert_int_eq(customers_load(path, &c, &errs), 0);
	struct invoice v[4];
	const char *tenants[4] = { "acme", "beta", "gamma", "delta" };
	for (int i = 0; i < 4; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		str_copy(v[i].tenant, tenants[i], sizeof(v[i].tenant));
		str_copy(v[i].currency, "EUR", sizeof(v[i].currency));
		v[i].minor_digits = 2;
		struct invoice_line *l = invoice_add_line(&v[i]);
		ck_assert_ptr_nonnull(l);
		l->type = INV_FEE;
		l->group = "fees";
		l->meter = -1;
		l->amount_minor = 10000;
	}
	const int64_t date = 1793491200LL * NS_PER_SEC + 5 * NS_PER_HOUR;   /* inside the day: midnight kept */
	/* an issued run needs every tenant in the file: delta is not */
	ck_assert_int_eq(invoice_apply_customers(v, 4, &p, &c, date, true, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "tenant 'delta' has no entry in"), "%s", e.msg);
	ck_assert_int_eq(invoice_apply_customers(v, 4, &p, &c, date, false, &e), 0);
	ck_assert_int_eq(v[0].date_ns, 1793491200LL * NS_PER_SEC);
	ck_assert_int_eq(v[0].due_ns, (1793491200LL + 14 * 86400) * NS_PER_SEC);
	ck_assert_int_eq(v[1].due_ns, (1793491200LL + 30 * 86400) * NS_PER_SEC);
	ck_assert_int_eq(v[0].n_taxes, 0);                                   /* reverse charge */
	ck_assert_int_eq(v[0].total_minor, 10000);
	ck_assert_str_eq(v[0].customer.name, "Acme Widgets GmbH");
	ck_assert_str_eq(v[0].issuer_info.party.name, "Example Cloud GmbH");
	ck_assert_int_eq(v[1].n_taxes, 1);                                   /* domestic */
	ck_assert_int_eq(v[1].taxes[0].amount_minor, 1900);
	ck_assert_int_eq(v[1].total_minor, 11900);
	ck_assert_int_eq(v[2].n_taxes, 0);                                   /* exempt */
	ck_assert_str_eq(v[2].tax_note, "Exempt under section 4 no. 22 UStG");
	ck_assert(!v[3].has_customer);                                       /* a draft without details */
	ck_assert_int_eq(v[3].total_minor, 11900);

	/* a customer billed in another currency than the plan's is refused */
	c.v[0].currency[0] = 'U', c.v[0].currency[1] = 'S', c.v[0].currency[2] = 'D';
	ck_assert_int_eq(invoice_apply_customers(v, 1, &p, &c, date, false, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "tenant 'acme' is billed in USD"), "%s", e.msg);
	for (int i = 0; i < 4; i++)
		invoice_release(&v[i]);
	customers_release(&c);
	plan_release(&p);
	tu_rmrf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("customer");
	TCase *tc = tcase_create("customer");
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_every_mistake);
	tcase_add_test(tc, test_issuer_map);
	tcase_add_test(tc, test_apply);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
