/*
 * invoice_render.c: an invoice as aligned text for a terminal, RFC 4180
 * CSV, or JSON (schemas/invoice.schema.json). Amounts are printed from
 * their integer minor units, quantities as exact rationals rounded to 9
 * decimals for display only: nothing here computes money.
 */
#include "invoice.h"
#include "csv.h"
#include "meter.h"
#include "usage.h"
#include "tallytime.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#define QTY_PLACES 9

const char *invoice_line_type_name(enum invoice_line_type t)
{
	switch (t) {
	case INV_USAGE: return "usage";
	case INV_FEE: return "fee";
	case INV_DISCOUNT: return "discount";
	case INV_MINIMUM: return "minimum";
	case INV_ADJUSTMENT: return "adjustment";
	case INV_CREDIT: return "credit";
	case INV_CHARGE: return "charge";
	}
	return "?";
}

static void pct_text(int64_t covered, int64_t spanned, char *buf, size_t len)
{
	if (spanned <= 0)
		snprintf(buf, len, "-");
	else /* display only: a ratio of two exact integers */
		snprintf(buf, len, "%.1f%%", 100.0 * (double)covered / (double)spanned);
}

static void qty_text(const struct invoice_line *l, char *buf, size_t len)
{
	if (!l->unit[0])
		buf[0] = '\0';
	else
		money_format_ratio(l->calc.qty_num, l->calc.qty_den, QTY_PLACES, buf, len);
}

static void price_text(const struct invoice_line *l, char *buf, size_t len)
{
	if (l->type != INV_USAGE)
		buf[0] = '\0';
	else if (l->tiered)
		snprintf(buf, len, "tiered");
	else
		money_format_price(l->price_nanos, buf, len);
}

static void free_text(const struct invoice_line *l, char *buf, size_t len)
{
	buf[0] = '\0';
	if (l->type == INV_USAGE && l->calc.free_num > 0) {
		char q[64];
		snprintf(buf, len, "%s free", money_format_ratio(l->calc.free_num, l->calc.qty_den, QTY_PLACES, q,
								 sizeof(q)));
	}
}

static void note_text(const struct invoice_note *n, char *buf, size_t len)
{
	const struct meter_def *m = meter_get(n->meter);
	/* human units for the note: the ledger quantity over human_div (an
	 * integer for every meter), exact and rounded once to 3 places */
	char q[64];
	__int128 den = (__int128)m->human_div * (m->kind == SAMPLE_GAUGE ? RATE_GAUGE_SCALE : 1);
	snprintf(buf, len, "%s: %s %s that no price of the plan matches (%lld ledger rows): not billed",
		 m->name, money_format_ratio(n->qty, den, 3, q, sizeof(q)), m->human_unit, (long long)n->rows);
}

/* "2026-11-01": an invoice or due date. */
static char *date_text(int64_t t_ns, char *buf, size_t len)
{
	time_format_iso(t_ns, buf, len);
	if (len > 10)
		buf[10] = '\0';
	return buf;
}

/* A party's block as text lines, each after prefix. */
static void party_text(FILE *f, const char *label, const struct party *pa)
{
	fprintf(f, "%-8s %s\n", label, pa->name);
	for (int i = 0; i < pa->n_address; i++)
		fprintf(f, "%-8s %s\n", "", pa->address[i]);
	if (pa->vat_id[0])
		fprintf(f, "%-8s VAT ID %s\n", "", pa->vat_id);
	if (pa->tax_id[0])
		fprintf(f, "%-8s tax ID %s\n", "", pa->tax_id);
	if (pa->email[0])
		fprintf(f, "%-8s %s\n", "", pa->email);
}

static int render_text(FILE *f, const struct invoice *inv, const struct invoice_render_opts *o)
{
	char a[48], b[48], amt[48], q[64], pr[48], pct[16], fr[80];
	if (inv->number > 0)
		fprintf(f, "INVOICE  %s #%lld    issued %s    sha256 %s\n", inv->issuer, (long long)inv->number,
			time_format_iso(inv->issued_ns, a, sizeof(a)), inv->sha256);
	else
		fprintf(f, "DRAFT    not issued (tally invoice --issue stores and numbers it)\n");
	if (inv->issuer_info.party.name[0])
		party_text(f, "from", &inv->issuer_info.party);
	if (inv->has_customer) {
		party_text(f, "to", &inv->customer);
		if (inv->customer_ref[0])
			fprintf(f, "%-8s your reference %s\n", "", inv->customer_ref);
	}
	if (inv->date_ns)
		fprintf(f, "date     %s    due %s (%d days)%s%s\n", date_text(inv->date_ns, a, sizeof(a)),
			date_text(inv->due_ns, b, sizeof(b)), inv->payment_days, inv->number_text[0] ? "    number " : "",
			inv->number_text);
	fprintf(f, "tenant   %s    plan %s    currency %s\n", inv->tenant[0] ? inv->tenant : "-",
		inv->plan[0] ? inv->plan : "-", inv->currency);
	fprintf(f, "period   %s to %s (UTC)\n", time_format_iso(inv->from_ns, a, sizeof(a)),
		time_format_iso(inv->to_ns, b, sizeof(b)));
	if (inv->data_until_ns < inv->to_ns)
		fprintf(f, "NOTE     usage is recorded only up to %s: this period is not complete yet\n",
			inv->data_until_ns ? time_format_iso(inv->data_until_ns, a, sizeof(a)) : "(no data)");
	pct_text(inv->covered_ns, inv->spanned_ns, pct, sizeof(pct));
	fprintf(f, "data     %s of the time the resources existed is covered by samples\n\n", pct);

	/* the description column fits the lines, up to 64 characters (a
	 * longer description runs into the columns after it) */
	int wd = 11;
	for (size_t i = 0; i < inv->n_lines; i++) {
		int l = (int)strlen(inv->lines[i].description) + 2 +
			(o->detail && inv->lines[i].selector[0] ? (int)strlen(inv->lines[i].selector) + 3 : 0);
		wd = l > wd ? l : wd;
	}
	if (wd > 64)
		wd = 64;
	for (size_t d = 0; o->detail && d < inv->n_details; d++) {
		int l = 5 + (int)strlen(inv->details[d].name) + (int)strlen(inv->details[d].resource);
		wd = l > wd ? l : wd;
	}
	fprintf(f, "%4s %-*s %22s %-15s %14s %14s %8s\n", "#", wd, "DESCRIPTION", "QUANTITY", "UNIT", "UNIT PRICE",
		"AMOUNT", "DATA");
	const char *group = NULL;
	for (size_t i = 0; i < inv->n_lines; i++) {
		const struct invoice_line *l = &inv->lines[i];
		if (l->group != group) {
			fprintf(f, "%s\n", l->group);
			group = l->group;
		}
		char desc[420];
		bool sel = o->detail && l->selector[0];   /* the plan's selector: an internal column */
		snprintf(desc, sizeof(desc), "%s%s%s%s", l->description, sel ? " [" : "", sel ? l->selector : "",
			 sel ? "]" : "");
		qty_text(l, q, sizeof(q));
		price_text(l, pr, sizeof(pr));
		if (l->type == INV_USAGE)
			pct_text(l->covered_ns, l->spanned_ns, pct, sizeof(pct));
		else
			pct[0] = '\0';
		char num[24];
		snprintf(num, sizeof(num), "%zu", i + 1);
		if ((int)strlen(desc) > wd) {   /* a long description on a line of its own */
			fprintf(f, "%4s %s\n", num, desc);
			desc[0] = num[0] = '\0';
		}
		fprintf(f, "%4s %-*s %22s %-15s %14s %14s %8s\n", num, wd, desc, q, l->unit, pr,
			money_format(l->amount_minor, inv->minor_digits, amt, sizeof(amt)), pct);
		free_text(l, fr, sizeof(fr));
		if (fr[0])
			fprintf(f, "%4s %-*s %22s\n", "", wd, "", fr);
		if (l->type == INV_USAGE && l->tiered) {
			for (int s = 0; s < l->calc.n_steps; s++) {
				money_format_ratio(l->calc.steps[s].qty_num, l->calc.steps[s].qty_den, QTY_PLACES, q,
						   sizeof(q));
				money_format_price(l->calc.steps[s].price_nanos, pr, sizeof(pr));
				fprintf(f, "%4s %-*s %22s %-15s %14s\n", "", wd, "  tier", q, l->unit, pr);
			}
		}
		if (!o->detail)
			continue;
		for (size_t d = 0; d < inv->n_details; d++) {
			if (inv->details[d].line != i)
				continue;
			char who[220];
			snprintf(who, sizeof(who), "    %s %s", inv->details[d].name, inv->details[d].resource);
			money_format_ratio(inv->details[d].qty_num, inv->details[d].qty_den, QTY_PLACES, q, sizeof(q));
			pct_text(inv->details[d].covered_ns, inv->details[d].spanned_ns, pct, sizeof(pct));
			fprintf(f, "%4s %-*s %22s %-15s %14s %14s %8s\n", "", wd, who, q, l->unit, "", "", pct);
		}
	}
	int w = 4 + 1 + wd + 1 + 22 + 1 + 15 + 1 + 14;
	fprintf(f, "\n%*s %14s\n", w, "Subtotal", money_format(inv->subtotal_minor, inv->minor_digits, amt,
							      sizeof(amt)));
	for (int i = 0; i < inv->n_taxes; i++) {
		char rate[40], label[80];
		money_format_price(inv->taxes[i].ppm * 100000, rate, sizeof(rate));
		snprintf(label, sizeof(label), "%s %s%%", inv->taxes[i].name, rate);
		fprintf(f, "%*s %14s\n", w, label, money_format(inv->taxes[i].amount_minor, inv->minor_digits, amt,
							       sizeof(amt)));
	}
	char label[32];
	snprintf(label, sizeof(label), "Total %s", inv->currency);
	fprintf(f, "%*s %14s\n", w, label, money_format(inv->total_minor, inv->minor_digits, amt, sizeof(amt)));
	for (size_t i = 0; i < inv->n_notes; i++) {
		char nt[300];
		note_text(&inv->notes[i], nt, sizeof(nt));
		fprintf(f, "NOTE     %s\n", nt);
	}
	if (inv->tax_note[0])
		fprintf(f, "TAX      %s\n", inv->tax_note);
	for (int i = 0; i < inv->issuer_info.n_payment; i++)
		fprintf(f, "%-8s %s\n", i ? "" : "PAY TO", inv->issuer_info.payment[i]);
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

static void csv_row(FILE *f, const struct invoice *inv, const char *type, const char *group, const char *desc,
		    const char *meter, const char *sel, const char *qty, const char *unit, const char *price,
		    int64_t amount, int64_t covered, int64_t spanned, const char *resource)
{
	char amt[48], a[48], b[48];
	/* text cells (names, labels, descriptions: csv_field neutralises a
	 * formula) and the numbers tally formats (csv_number keeps them numbers) */
	const char *fields[] = { inv->tenant, time_format_iso(inv->from_ns, a, sizeof(a)),
				 time_format_iso(inv->to_ns, b, sizeof(b)), inv->currency, type, group, desc, meter,
				 sel, resource, qty, unit, price };
	static const bool number[] = { false, false, false, false, false, false, false, false,
				       false, false, true, false, true };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (number[i])
			csv_number(f, fields[i]);
		else
			csv_field(f, fields[i]);
		fputc(',', f);
	}
	fprintf(f, "%s,", amount == INT64_MIN ? "" : money_format(amount, inv->minor_digits, amt, sizeof(amt)));
	if (spanned > 0)
		fprintf(f, "%lld.%09lld,%lld.%09lld", (long long)(covered / 1000000000),
			(long long)(covered % 1000000000), (long long)(spanned / 1000000000),
			(long long)(spanned % 1000000000));
	else
		fputs(",", f);
	/* who and when, on every row, so a spreadsheet filters by them */
	const char *who[] = { inv->number_text, inv->date_ns ? date_text(inv->date_ns, a, sizeof(a)) : "",
			      inv->date_ns ? date_text(inv->due_ns, b, sizeof(b)) : "",
			      inv->has_customer ? inv->customer.name : "", inv->has_customer ? inv->customer.vat_id : "",
			      inv->has_customer ? inv->customer.email : "", inv->customer_ref,
			      customer_tax_name(inv->tax) };
	for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		fputc(',', f);
		csv_field(f, who[i]);
	}
	fputs("\r\n", f);
}

static int render_csv(FILE *f, const struct invoice *inv, const struct invoice_render_opts *o, bool first)
{
	char q[64], pr[48];
	if (first)
		fputs("tenant,period_from,period_to,currency,type,group,description,meter,selector,resource,"
		      "quantity,unit,unit_price,amount,covered_seconds,spanned_seconds,invoice_number,invoice_date,due_date,"
		      "customer_name,customer_vat_id,customer_email,customer_reference,tax_treatment\r\n", f);
	for (size_t i = 0; i < inv->n_lines; i++) {
		const struct invoice_line *l = &inv->lines[i];
		qty_text(l, q, sizeof(q));
		price_text(l, pr, sizeof(pr));
		csv_row(f, inv, invoice_line_type_name(l->type), l->group, l->description, l->meter >= 0 ? meter_get(l->meter)->name : "",
			l->selector, q, l->unit, pr, l->amount_minor, l->covered_ns, l->spanned_ns, "");
		for (size_t d = 0; o->detail && d < inv->n_details; d++) {
			const struct invoice_detail *x = &inv->details[d];
			if (x->line != i)
				continue;
			money_format_ratio(x->qty_num, x->qty_den, QTY_PLACES, q, sizeof(q));
			csv_row(f, inv, "detail", l->group, x->name, meter_get(l->meter)->name, l->selector, q, l->unit,
				"", INT64_MIN, x->covered_ns, x->spanned_ns, x->resource);
		}
	}
	csv_row(f, inv, "subtotal", "", "", "", "", "", "", "", inv->subtotal_minor, 0, 0, "");
	for (int i = 0; i < inv->n_taxes; i++) {
		char rate[40];
		money_format_price(inv->taxes[i].ppm * 100000, rate, sizeof(rate));
		csv_row(f, inv, "tax", "", inv->taxes[i].name, "", "", "", "", rate, inv->taxes[i].amount_minor, 0, 0,
			"");
	}
	csv_row(f, inv, "total", "", "", "", "", "", "", "", inv->total_minor, 0, 0, "");
	return ferror(f) ? -EIO : 0;
}

int invoice_render(FILE *f, const struct invoice *inv, const struct invoice_render_opts *o, bool first)
{
	if (o->format == INV_CSV)
		return render_csv(f, inv, o, first);
	if (o->format == INV_JSON)
		return invoice_render_json(f, inv, 1, o);
	return render_text(f, inv, o);
}

static json_t *money_json(int64_t minor, int digits)
{
	char buf[48];
	return json_string(money_format(minor, digits, buf, sizeof(buf)));
}

static json_t *ratio_json(__int128 num, __int128 den)
{
	char buf[64];
	return json_string(money_format_ratio(num, den, QTY_PLACES, buf, sizeof(buf)));
}

static json_t *party_json(const struct party *pa)
{
	json_t *o = json_object(), *addr = json_array();
	json_object_set_new(o, "name", json_string(pa->name));
	for (int i = 0; i < pa->n_address; i++)
		json_array_append_new(addr, json_string(pa->address[i]));
	json_object_set_new(o, "address", addr);
	json_object_set_new(o, "vat_id", json_string(pa->vat_id));
	json_object_set_new(o, "tax_id", json_string(pa->tax_id));
	json_object_set_new(o, "email", json_string(pa->email));
	return o;
}

static json_t *invoice_json(const struct invoice *inv, const struct invoice_render_opts *o)
{
	char a[48], pr[48];
	json_t *j = json_object(), *lines = json_array(), *taxes = json_array(), *notes = json_array();
	if (inv->number > 0) {
		json_object_set_new(j, "issuer", json_string(inv->issuer));
		json_object_set_new(j, "number", json_integer(inv->number));
		json_object_set_new(j, "issued", json_string(time_format_iso(inv->issued_ns, a, sizeof(a))));
	}
	if (inv->number_text[0])
		json_object_set_new(j, "invoice_number", json_string(inv->number_text));
	if (inv->date_ns) {
		json_object_set_new(j, "invoice_date", json_string(date_text(inv->date_ns, a, sizeof(a))));
		json_object_set_new(j, "due_date", json_string(date_text(inv->due_ns, a, sizeof(a))));
		json_object_set_new(j, "payment_terms_days", json_integer(inv->payment_days));
	}
	if (inv->issuer_info.party.name[0]) {
		json_t *is = party_json(&inv->issuer_info.party);
		json_t *pay = json_array();
		for (int i = 0; i < inv->issuer_info.n_payment; i++)
			json_array_append_new(pay, json_string(inv->issuer_info.payment[i]));
		json_object_set_new(is, "payment", pay);
		json_object_set_new(j, "issuer_details", is);
	}
	if (inv->has_customer) {
		json_t *cu = party_json(&inv->customer);
		json_object_set_new(cu, "reference", json_string(inv->customer_ref));
		json_object_set_new(j, "customer", cu);
	}
	json_object_set_new(j, "tax_treatment", json_string(customer_tax_name(inv->tax)));
	if (inv->tax_note[0])
		json_object_set_new(j, "tax_note", json_string(inv->tax_note));
	json_object_set_new(j, "tenant", json_string(inv->tenant));
	json_object_set_new(j, "plan", json_string(inv->plan));
	json_object_set_new(j, "currency", json_string(inv->currency));
	json_object_set_new(j, "minor_digits", json_integer(inv->minor_digits));
	json_object_set_new(j, "period_from", json_string(time_format_iso(inv->from_ns, a, sizeof(a))));
	json_object_set_new(j, "period_to", json_string(time_format_iso(inv->to_ns, a, sizeof(a))));
	json_object_set_new(j, "data_until", inv->data_until_ns ? json_string(time_format_iso(inv->data_until_ns, a,
											       sizeof(a)))
								: json_null());
	json_object_set_new(j, "covered_seconds", json_integer(inv->covered_ns / 1000000000));
	json_object_set_new(j, "spanned_seconds", json_integer(inv->spanned_ns / 1000000000));
	for (size_t i = 0; i < inv->n_lines; i++) {
		const struct invoice_line *l = &inv->lines[i];
		json_t *o2 = json_object();
		json_object_set_new(o2, "line", json_integer((json_int_t)i + 1));
		json_object_set_new(o2, "type", json_string(invoice_line_type_name(l->type)));
		json_object_set_new(o2, "group", json_string(l->group));
		json_object_set_new(o2, "description", json_string(l->description));
		json_object_set_new(o2, "from", json_string(time_format_iso(l->from_ns, a, sizeof(a))));
		json_object_set_new(o2, "to", json_string(time_format_iso(l->to_ns, a, sizeof(a))));
		if (l->type == INV_USAGE) {
			json_object_set_new(o2, "meter", json_string(meter_get(l->meter)->name));
			json_object_set_new(o2, "selector", json_string(l->selector));
			json_object_set_new(o2, "quantity", ratio_json(l->calc.qty_num, l->calc.qty_den));
			json_object_set_new(o2, "free_quantity", ratio_json(l->calc.free_num, l->calc.qty_den));
			/* the exact ledger sum behind the line, in base units
			 * (unit-seconds for a gauge's integral) */
			bool gauge = meter_get(l->meter)->kind == SAMPLE_GAUGE;
			char bq[64];
			json_object_set_new(o2, "base_quantity", json_string(money_format_ratio(
				l->qty, gauge ? RATE_GAUGE_SCALE : 1, gauge ? 3 : 0, bq, sizeof(bq))));
			json_object_set_new(o2, "base_unit", json_string(usage_base_unit(l->meter)));
			json_object_set_new(o2, "unit", json_string(l->unit));
			json_object_set_new(o2, "unit_price", l->tiered ? json_null()
					    : json_string(money_format_price(l->price_nanos, pr, sizeof(pr))));
			json_t *tiers = json_array();
			for (int s = 0; l->tiered && s < l->calc.n_steps; s++) {
				json_t *t = json_object();
				json_object_set_new(t, "quantity", ratio_json(l->calc.steps[s].qty_num,
									     l->calc.steps[s].qty_den));
				json_object_set_new(t, "unit_price", json_string(money_format_price(
									  l->calc.steps[s].price_nanos, pr, sizeof(pr))));
				/* the tier's bounds as the plan gives them */
				json_object_set_new(t, "from", ratio_json(l->calc.steps[s].from_num,
									 l->calc.steps[s].qty_den));
				json_object_set_new(t, "up_to", l->calc.steps[s].bounded
						    ? ratio_json(l->calc.steps[s].up_to_num, l->calc.steps[s].qty_den)
						    : json_null());
				json_array_append_new(tiers, t);
			}
			json_object_set_new(o2, "tiers", tiers);
			json_object_set_new(o2, "covered_seconds", json_integer(l->covered_ns / 1000000000));
			json_object_set_new(o2, "spanned_seconds", json_integer(l->spanned_ns / 1000000000));
			json_object_set_new(o2, "ledger_rows", json_integer(l->rows));
		}
		json_object_set_new(o2, "amount", money_json(l->amount_minor, inv->minor_digits));
		if (o->detail && l->type == INV_USAGE) {
			json_t *ds = json_array();
			for (size_t d = 0; d < inv->n_details; d++) {
				const struct invoice_detail *x = &inv->details[d];
				if (x->line != i)
					continue;
				json_t *dj = json_object();
				json_object_set_new(dj, "resource", json_string(x->resource));
				json_object_set_new(dj, "name", json_string(x->name));
				json_object_set_new(dj, "quantity", ratio_json(x->qty_num, x->qty_den));
				json_object_set_new(dj, "covered_seconds", json_integer(x->covered_ns / 1000000000));
				json_object_set_new(dj, "spanned_seconds", json_integer(x->spanned_ns / 1000000000));
				json_array_append_new(ds, dj);
			}
			json_object_set_new(o2, "resources", ds);
		}
		json_array_append_new(lines, o2);
	}
	json_object_set_new(j, "lines", lines);
	json_object_set_new(j, "subtotal", money_json(inv->subtotal_minor, inv->minor_digits));
	for (int i = 0; i < inv->n_taxes; i++) {
		json_t *t = json_object();
		json_object_set_new(t, "name", json_string(inv->taxes[i].name));
		json_object_set_new(t, "rate_percent", json_string(money_format_price(inv->taxes[i].ppm * 100000, pr,
										      sizeof(pr))));
		json_object_set_new(t, "amount", money_json(inv->taxes[i].amount_minor, inv->minor_digits));
		json_array_append_new(taxes, t);
	}
	json_object_set_new(j, "taxes", taxes);
	json_object_set_new(j, "total", money_json(inv->total_minor, inv->minor_digits));
	for (size_t i = 0; i < inv->n_notes; i++) {
		char nt[300];
		note_text(&inv->notes[i], nt, sizeof(nt));
		json_array_append_new(notes, json_string(nt));
	}
	json_object_set_new(j, "notes", notes);
	return j;
}

int invoice_render_json(FILE *f, const struct invoice *invs, size_t n, const struct invoice_render_opts *o)
{
	json_t *root = json_object(), *arr = json_array();
	json_object_set_new(root, "format", json_string("tally-invoice/1"));
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, invoice_json(&invs[i], o));
	json_object_set_new(root, "invoices", arr);
	int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(root);
	return rc || ferror(f) ? -EIO : 0;
}
