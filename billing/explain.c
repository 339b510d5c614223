/*
 * explain.c: `tally invoice explain`: the ledger rows behind one line of an
 * invoice and the arithmetic from them to its amount (explain.h).
 */
#include "explain.h"
#include "vec.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct row {
	char uuid[64], name[128], device[48];
	int64_t hour_ns;
	__int128 qty;
	int64_t covered_ns, spanned_ns;
};

struct collect {
	struct rate_key want;
	struct row *rows;
	size_t n, cap;
};

static int on_row(void *ctx, const struct rate_row *r)
{
	struct collect *c = ctx;
	if (r->k.version != c->want.version || r->k.override != c->want.override || r->k.price != c->want.price)
		return 0;
	if (vec_reserve((void **)&c->rows, &c->cap, c->n + 1, sizeof(*c->rows), 256))
		return -ENOMEM;
	struct row *x = &c->rows[c->n++];
	str_copy(x->uuid, r->uuid, sizeof(x->uuid));
	str_copy(x->name, r->name, sizeof(x->name));
	str_copy(x->device, r->device, sizeof(x->device));
	x->hour_ns = r->hour_ns;
	x->qty = r->qty;
	x->covered_ns = r->covered_ns;
	x->spanned_ns = r->spanned_ns;
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c;
	if ((c = strcmp(x->name, y->name)) || (c = strcmp(x->uuid, y->uuid)) || (c = strcmp(x->device, y->device)))
		return c;
	return x->hour_ns < y->hour_ns ? -1 : x->hour_ns > y->hour_ns;
}

/* A ledger quantity in its own words: "7200000 vCPU-ms" for gauges. */
static void ledger_qty(int meter, __int128 q, char *buf, size_t len)
{
	const struct meter_def *m = meter_get(meter);
	char n[64];
	money_format_ratio(q, 1, 0, n, sizeof(n));
	snprintf(buf, len, "%s %s%s", n, m->unit, m->kind == SAMPLE_GAUGE ? "-ms" : "");
}

static unsigned __int128 gcd(unsigned __int128 a, unsigned __int128 b)
{
	while (b) {
		unsigned __int128 t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* num/den (den > 0) as a decimal: exact when it terminates within 18
 * places, else rounded to 18 and marked with '~'. */
static void exact_wide(const struct money_u256 *num, unsigned __int128 den, char *buf, size_t len)
{
	char t[80];
	struct money_u256 red = { num->hi % den, num->lo };
	unsigned __int128 q, r = 0;
	money_u256_divmod(&red, den, &q, &r);   /* num mod den */
	unsigned __int128 d = den / gcd(den, r);
	int twos = 0, fives = 0;
	for (; d % 2 == 0; d /= 2)
		twos++;
	for (; d % 5 == 0; d /= 5)
		fives++;
	bool terminates = d == 1 && twos <= 18 && fives <= 18;
	money_format_u256(num, den, 18, t, sizeof(t));
	size_t l = strlen(t);
	while (l > 0 && t[l - 1] == '0')
		t[--l] = '\0';
	if (l > 0 && t[l - 1] == '.')
		t[--l] = '\0';
	snprintf(buf, len, "%s%s", terminates ? "" : "~", t);
}

/* The same for a non-negative num of 128 bits. */
static void exact(__int128 num, __int128 den, char *buf, size_t len)
{
	struct money_u256 n = { 0, (unsigned __int128)num };
	exact_wide(&n, (unsigned __int128)den, buf, len);
}

/* The stored line number n of an issued document: its type, description,
 * selector and amount. Returns 0 or -EINVAL. */
static int issued_line(const char *doc, int n, char *type, char *desc, char *sel, char *amount,
		       struct tally_err *e)
{
	json_error_t je;
	json_t *root = json_loads(doc, 0, &je), *lines = NULL, *l = NULL;
	int rc = 0;
	if (!root)
		return err_set(e, -EINVAL, "the stored invoice does not parse: %s", je.text);
	lines = json_object_get(json_array_get(json_object_get(root, "invoices"), 0), "lines");
	if (!json_is_array(lines) || n < 1 || (size_t)n > json_array_size(lines)) {
		rc = err_set(e, -EINVAL, "line %d: the invoice has lines 1 to %zu", n, json_array_size(lines));
		goto out;
	}
	l = json_array_get(lines, (size_t)n - 1);
	str_copy(type, json_string_value(json_object_get(l, "type")) ?: "", 16);
	str_copy(desc, json_string_value(json_object_get(l, "description")) ?: "", 192);
	str_copy(sel, json_string_value(json_object_get(l, "selector")) ?: "", 192);
	str_copy(amount, json_string_value(json_object_get(l, "amount")) ?: "", 48);
out:
	json_decref(root);
	return rc;
}

int explain_line(FILE *f, const struct explain_query *q, const struct plan *p, struct tally_err *e)
{
	struct rate_query rq = { .ledger = q->ledger, .from_ns = q->from_ns, .to_ns = q->to_ns, .tenant = q->tenant };
	struct invoice *invs = NULL;
	struct collect c = { 0 };
	size_t n = 0;
	char a[48], b[64], m[48], x[80];
	int rc;

	if ((rc = invoice_build_all(p, &rq, &invs, &n, e)))
		return rc;
	if (n != 1) {
		rc = err_set(e, -ESRCH, "tenant '%s' has no invoice for this period", q->tenant);
		goto out;
	}
	struct invoice *inv = &invs[0];
	const struct invoice_line *l = NULL;
	char type[16] = "usage", desc[192], sel[192], issued_amount[48] = "";
	if (q->issued_doc) {
		if ((rc = issued_line(q->issued_doc, q->line, type, desc, sel, issued_amount, e)))
			goto out;
		for (size_t i = 0; i < inv->n_lines && strcmp(type, "usage") == 0; i++)
			if (inv->lines[i].type == INV_USAGE && !strcmp(inv->lines[i].description, desc) &&
			    !strcmp(inv->lines[i].selector, sel))
				l = &inv->lines[i];
	} else {
		if (q->line < 1 || (size_t)q->line > inv->n_lines) {
			rc = err_set(e, -EINVAL, "line %d: the invoice has lines 1 to %zu", q->line, inv->n_lines);
			goto out;
		}
		l = &inv->lines[q->line - 1];
		str_copy(desc, l->description, sizeof(desc));
		str_copy(sel, l->selector, sizeof(sel));
		money_format(l->amount_minor, inv->minor_digits, issued_amount, sizeof(issued_amount));
		str_copy(type, invoice_line_type_name(l->type), sizeof(type));
	}
	fprintf(f, "line %d of the %s invoice of tenant %s, %s to %s: %s%s%s%s\n", q->line,
		q->issued_doc ? "issued" : "draft", inv->tenant, time_format_iso(inv->from_ns, a, sizeof(a)),
		time_format_iso(inv->to_ns, b, sizeof(b)), desc, sel[0] ? " [" : "", sel, sel[0] ? "]" : "");
	if (strcmp(type, "usage")) {
		fprintf(f, "a %s line of %s %s: it is not made of ledger rows (docs/invoice.md says how it is"
			" computed)\n", type, issued_amount, inv->currency);
		rc = 0;
		goto out;
	}
	if (!l) {
		fprintf(f, "the ledger no longer gives this line under the stored plan; it was %s %s when issued\n",
			issued_amount, inv->currency);
		rc = 0;
		goto out;
	}

	c.want = l->key;
	rq.on_row = on_row;
	rq.ctx = &c;
	struct rate_result rr;
	if ((rc = rate_collect(&rq, p, &rr, e)))
		goto out;
	rate_result_release(&rr);
	if (c.n > 1)
		qsort(c.rows, c.n, sizeof(*c.rows), cmp_row);
	const struct plan_price *pp = rate_price(p, &l->key);
	__int128 num, den;
	rate_unit_ratio(pp, inv->month_s ? inv->month_s : 1, &num, &den);
	fprintf(f, "\nledger rows (%zu): resource, device, hour, quantity in %s, as the ledger holds it\n", c.n, l->unit);
	__int128 sum = 0;   /* the rows add up to the line's quantity: it fit rating */
	for (size_t i = 0; i < c.n; i++) {
		const struct row *r = &c.rows[i];
		money_format_ratio(r->qty * den, num, 9, b, sizeof(b));
		ledger_qty(l->meter, r->qty, x, sizeof(x));
		fprintf(f, "  %s %s  %s  %s  %s  (%s)\n", r->name[0] ? r->name : "-", r->uuid,
			r->device[0] ? r->device : "-", time_format_iso(r->hour_ns, a, sizeof(a)), b, x);
		sum += r->qty;
	}
	ledger_qty(l->meter, sum, x, sizeof(x));
	exact(sum * den, num, b, sizeof(b));
	fprintf(f, "\nsum: %s = %s %s\n", x, b, l->unit);
	const struct rate_calc *rc2 = &l->calc;
	if (rc2->start_num > 0) {
		exact(rc2->start_num, rc2->qty_den, b, sizeof(b));
		fprintf(f, "the period's usage of this price before this part: %s %s (the free allowance, tiers and"
			" blocks go on from there)\n", b, l->unit);
	}
	if (rc2->free_num > 0) {
		exact(rc2->free_num, rc2->qty_den, b, sizeof(b));
		fprintf(f, "free allowance: -%s %s\n", b, l->unit);
	}
	for (int s = 0; s < rc2->n_steps; s++) {
		const struct rate_step *st = &rc2->steps[s];
		char pr[48];
		struct money_u256 part;
		money_format_price(st->price_nanos, pr, sizeof(pr));
		exact(st->qty_num, st->qty_den, b, sizeof(b));
		if (pp->model == PLAN_BLOCK) {
			char bl[48];
			money_format_price(pp->block_nanos, bl, sizeof(bl));
			fprintf(f, "blocks: %s %s in blocks of %s started = %s blocks x %s = ", b, l->unit, bl,
				money_format_ratio(st->blocks, 1, 0, m, sizeof(m)), pr);
			money_u256_mul((unsigned __int128)st->blocks, (unsigned __int128)st->price_nanos, &part);
			exact_wide(&part, MONEY_NANOS, x, sizeof(x));
			fprintf(f, "%s %s\n", x, inv->currency);
			continue;
		}
		money_u256_mul((unsigned __int128)st->qty_num, (unsigned __int128)st->price_nanos, &part);
		exact_wide(&part, (unsigned __int128)st->qty_den * MONEY_NANOS, x, sizeof(x));
		if (pp->model == PLAN_GRADUATED || pp->model == PLAN_VOLUME) {
			char w[160];
			fprintf(f, "%s (%s %s): ", pp->model == PLAN_VOLUME ? "the tier reached" : "tier",
				rate_tier_words(st, w, sizeof(w)), l->unit);
		}
		fprintf(f, "%s %s x %s = %s %s\n", b, l->unit, pr, x, inv->currency);
	}
	exact_wide(&rc2->amount_num, rc2->amount_den, x, sizeof(x));
	static const char *const modes[] = { "half to even", "half up", "down" };
	fprintf(f, "amount: %s %s, rounded %s to the minor unit: %s %s\n", x, inv->currency, modes[p->rounding],
		money_format(l->amount_minor, inv->minor_digits, m, sizeof(m)), inv->currency);
	if (q->issued_doc && strcmp(m, issued_amount))
		fprintf(f, "issued as %s %s: the difference is usage recorded after the invoice was issued,"
			" billed as an adjustment on a later invoice\n", issued_amount, inv->currency);
	rc = 0;
out:
	free(c.rows);
	for (size_t i = 0; i < n; i++)
		invoice_release(&invs[i]);
	free(invs);
	return rc;
}
