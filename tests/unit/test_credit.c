/*
 * test_credit.c: credit notes correct an issued invoice without touching
 * it (issue 18, item 5). A partial note credits an amount or a line with
 * the invoice's tax on it; a note never credits more than is left; the
 * whole-invoice note credits what is left and opens the period again, so
 * a corrected invoice can be issued for it, and late usage of that period
 * is then measured against the corrected one. Notes are numbered in their
 * own series; the ledger refuses to change one. Amounts worked by hand.
 *
 * acme's vm-a holds 1 vCPU for 10 hours of October at 1.00 a vCPU-hour:
 * invoice #1 is 10.00, VAT 19 % = 1.90, total 11.90.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "credit.h"
#include "invoice.h"
#include "issue.h"
#include "plan.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define T0 (1790812800LL * NS_PER_SEC)   /* 2026-10-01T00:00:00Z */
#define NOV (1793491200LL * NS_PER_SEC)  /* 2026-11-01T00:00:00Z */
#define DEC (1796083200LL * NS_PER_SEC)  /* 2026-12-01T00:00:00Z */
#define H NS_PER_HOUR

static const char plan_x[] = "plan: p\nissuer:\n  name: Example Cloud\n  invoice_prefix: INV-\n"
			     "  credit_note_prefix: CN-\ncurrency: EUR\ntax:\n  - {name: VAT, rate: 19%}\n"
			     "versions:\n  - from: 2026-01-01\n    prices:\n"
			     "      - {meter: vcpus, unit: vCPU-hour, price: 1.00}\n";

static void write_file(const char *text)
{
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static int run(int64_t from, int64_t to, int64_t now_ns, struct invoice **out, size_t *n)
{
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to, .tenant = "acme" };
	ck_assert_msg(invoice_build_all(&p, &q, out, n, &e) == 0, "%s", e.msg);
	ck_assert_msg(issue_adjust_all(ledger, *out, *n, &p, &e) == 0, "%s", e.msg);
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

/* Issue a note; its document's credit_note object (caller decrefs root). */
static const json_t *credit(const char *inv, const char *reason, int line, const char *amount, json_t **root,
			    int *rc, struct tally_err *e)
{
	struct credit_request r = { .invoice = inv, .reason = reason, .line = line, .amount = amount,
				    .date_ns = NOV + 24 * H };
	char *doc = NULL;
	*root = NULL;
	*rc = credit_issue(ledger, &r, NOV + 25 * H, &doc, e);
	if (*rc)
		return NULL;
	json_error_t je;
	*root = json_loads(doc, 0, &je);
	free(doc);
	ck_assert_ptr_nonnull(*root);
	return json_object_get(*root, "credit_note");
}

static const char *s(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int64_t count(const char *sql)
{
	return tu_ledger_int(ledger, sql);
}

START_TEST(test_credit_notes)
{
	lf_open();
	lf_meta("vm-a", "acme", "m1.small", T0);
	lf_reading("vm-a", M_VCPUS, T0, 1, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, T0 + 10 * H, 1, 0, 0);
	lf_close();
	write_file(plan_x);
	struct invoice *v;
	size_t n;
	struct tally_err e = { 0 };
	json_t *root;
	int rc;
	ck_assert_int_eq(run(T0, NOV, NOV + H, &v, &n), 0);
	ck_assert_int_eq(v[0].total_minor, 1190);
	char sha1[65];
	str_copy(sha1, v[0].sha256, sizeof(sha1));
	release(v, n);

	/* no reason, a line the invoice lacks, a bad amount: refused */
	ck_assert_ptr_null(credit("1", "", 0, "1.00", &root, &rc, &e));
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_null(credit("1", "x", 4, NULL, &root, &rc, &e));
	ck_assert_msg(rc == -EINVAL && strstr(e.msg, "the invoice has no line 4 (it has 1)"), "%s", e.msg);
	ck_assert_ptr_null(credit("1", "x", 0, "1.001", &root, &rc, &e));
	ck_assert_msg(rc == -EINVAL && strstr(e.msg, "--amount '1.001'"), "%s", e.msg);
	ck_assert_ptr_null(credit("9", "x", 0, "1.00", &root, &rc, &e));
	ck_assert_int_eq(rc, -ENOENT);

	/* 2.50 goodwill: VAT 19 % of 2.50 = 0.475 -> 0.48 (half-even: 8 is
	 * even), total -2.98 */
	const json_t *cn = credit("1", "goodwill", 0, "2.50", &root, &rc, &e);
	ck_assert_msg(cn, "%s", e.msg);
	ck_assert_str_eq(s(cn, "credit_note_number"), "CN-1");
	ck_assert_str_eq(s(json_object_get(cn, "invoice"), "invoice_number"), "INV-1");
	ck_assert_str_eq(s(json_object_get(cn, "invoice"), "sha256"), sha1);
	ck_assert_str_eq(s(cn, "subtotal"), "-2.50");
	ck_assert_str_eq(s(json_array_get(json_object_get(cn, "taxes"), 0), "amount"), "-0.48");
	ck_assert_str_eq(s(cn, "total"), "-2.98");
	ck_assert(json_is_false(json_object_get(cn, "cancels_invoice")));
	json_decref(root);

	/* 7.50 is left: line 1 (10.00) and 7.51 are more than that */
	ck_assert_ptr_null(credit("1", "x", 1, NULL, &root, &rc, &e));
	ck_assert_msg(rc == -EINVAL && strstr(e.msg, "10.00 is more than is left to credit on the invoice (7.50 of"
					      " 10.00 before tax)"), "%s", e.msg);
	ck_assert_ptr_null(credit("1", "x", 0, "7.51", &root, &rc, &e));
	ck_assert_int_eq(rc, -EINVAL);
	/* the period is still the invoice's: no second invoice for it */
	ck_assert_int_eq(run(T0, NOV, NOV + 30 * H, &v, &n), -EEXIST);
	release(v, n);

	/* the whole invoice: -10.00, +2.50 already credited = -7.50; the VAT
	 * as invoiced less what CN-1 credited: -(1.90 - 0.48) = -1.42; total
	 * -(11.90 - 2.98) = -8.92; CN-1 and CN-2 add up to the invoice */
	cn = credit("1", "wrong price", 0, NULL, &root, &rc, &e);
	ck_assert_msg(cn, "%s", e.msg);
	ck_assert_str_eq(s(cn, "credit_note_number"), "CN-2");
	ck_assert_uint_eq(json_array_size(json_object_get(cn, "lines")), 2);
	ck_assert_str_eq(s(json_array_get(json_object_get(cn, "lines"), 0), "amount"), "-10.00");
	ck_assert_str_eq(s(json_array_get(json_object_get(cn, "lines"), 1), "amount"), "2.50");
	ck_assert_str_eq(s(cn, "subtotal"), "-7.50");
	ck_assert_str_eq(s(json_array_get(json_object_get(cn, "taxes"), 0), "amount"), "-1.42");
	ck_assert_str_eq(s(cn, "total"), "-8.92");
	ck_assert(json_is_true(json_object_get(cn, "cancels_invoice")));
	json_decref(root);
	ck_assert_ptr_null(credit("1", "again", 0, "1.00", &root, &rc, &e));
	ck_assert_msg(rc == -EINVAL && strstr(e.msg, "cancelled by a credit note already"), "%s", e.msg);

	/* the invoice itself never changed */
	ck_assert_int_eq(count("SELECT count(*) FROM invoices WHERE number = 1 AND total_minor = 1190"), 1);
	ck_assert(!tu_ledger_try(ledger, "UPDATE credit_notes SET total_minor = 0"));
	ck_assert(!tu_ledger_try(ledger, "DELETE FROM credit_notes"));

	/* the period is open again: a corrected invoice, #2, in the invoice
	 * series (credit notes have their own) */
	ck_assert_int_eq(run(T0, NOV, NOV + 30 * H, &v, &n), 0);
	ck_assert_int_eq(v[0].number, 2);
	ck_assert_str_eq(v[0].number_text, "INV-2");
	release(v, n);

	/* late usage of October: 5 more vCPU-hours; November's invoice carries
	 * 5.00 against #2, the invoice that stands (not #1, cancelled) */
	struct agg_config ac = { .ledger_path = ledger, .max_gap_ns = 40 * 24 * H };
	ck_assert_int_eq(agg_open(&agg, &ac, &e), 0);
	batch_init(&bt, "host-1");
	lf_reading("vm-a", M_VCPUS, T0 + 15 * H, 1, 0, SAMPLE_F_LAST);
	lf_close();
	ck_assert_int_eq(run(NOV, DEC, 0, &v, &n), 0);
	ck_assert_uint_eq(v[0].n_lines, 1);
	ck_assert_int_eq(v[0].lines[0].type, INV_ADJUSTMENT);
	ck_assert_int_eq(v[0].lines[0].amount_minor, 500);
	ck_assert_msg(strstr(v[0].lines[0].description, "after Example Cloud #2 was issued"), "%s",
		      v[0].lines[0].description);
	release(v, n);

	/* show: the stored note, hash checked; by number in its own series */
	char *doc;
	ck_assert_int_eq(credit_find(ledger, "2", &doc, &e), 0);
	ck_assert_ptr_nonnull(strstr(doc, "\"credit_note_number\": \"CN-2\""));
	free(doc);
	ck_assert_int_eq(credit_find(ledger, "3", &doc, &e), -ENOENT);
	lf_teardown();
}
END_TEST

int main(void)
{
	Suite *su = suite_create("credit");
	TCase *tc = tcase_create("credit");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_credit_notes);
	suite_add_tcase(su, tc);
	return tu_run(su);
}
