/*
 * credit.c: credit notes from issued invoices (credit.h). The note is
 * made from the invoice's stored JSON document (jansson) with integer
 * minor units throughout; it is rendered from its own stored document.
 */
#include "credit.h"
#include "err.h"
#include "html.h"
#include "invoices.h"
#include "issue.h"
#include "plan.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_DAY (24 * NS_PER_HOUR)

/* A decimal amount string of the invoice ("-12.34") in minor units. */
static int amount_of(const char *s, int minor_digits, int64_t *out)
{
	int64_t nanos;
	struct tally_err e = { 0 };
	int64_t q = money_nanos_per_minor(minor_digits);
	if (!s || money_parse_price(s, &nanos, &e) || nanos % q)
		return -EINVAL;
	*out = nanos / q;
	return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static char *date_text(int64_t t_ns, char *buf, size_t len)
{
	time_format_iso(t_ns, buf, len);
	if (len > 10)
		buf[10] = '\0';
	return buf;
}

/* The taxes of the invoice's taxes array on a credited net amount (<= 0):
 * each its rate of the amount, rounded once (on the positive amount, so
 * a credit's tax mirrors an invoice's), into arr; *sum their total. */
static int taxes_on(const json_t *inv_taxes, int64_t net, int minor_digits, enum money_round mode, json_t *arr,
		    int64_t *sum)
{
	size_t i;
	json_t *t;
	*sum = 0;
	json_array_foreach(inv_taxes, i, t) {
		int64_t nanos, tax;
		char buf[48];
		struct tally_err e = { 0 };
		if (money_parse_price(jstr(t, "rate_percent"), &nanos, &e))
			return -EINVAL;
		/* 1 % is 10^9 nanos of a percent and 10^4 ppm */
		if (money_percent(-net, nanos / 100000, mode, &tax))
			return -ERANGE;
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(jstr(t, "name")));
		json_object_set_new(o, "rate_percent", json_string(jstr(t, "rate_percent")));
		json_object_set_new(o, "amount", json_string(money_format(-tax, minor_digits, buf, sizeof(buf))));
		json_array_append_new(arr, o);
		*sum -= tax;
	}
	return 0;
}

static json_t *line_json(int n, const char *description, int credits_line, int64_t amount, int minor_digits)
{
	char buf[48];
	json_t *o = json_object();
	json_object_set_new(o, "line", json_integer(n));
	json_object_set_new(o, "description", json_string(description));
	if (credits_line > 0)
		json_object_set_new(o, "credits_line", json_integer(credits_line));
	json_object_set_new(o, "amount", json_string(money_format(amount, minor_digits, buf, sizeof(buf))));
	return o;
}

struct built {
	json_t *note;                /* the credit_note object, without number */
	int64_t subtotal, total;     /* <= 0 */
	bool cancels;
};

/* The note's lines, taxes and totals from the invoice document inv and
 * what earlier notes credited (sub0, tot0 <= 0). */
static int build(const json_t *inv, const struct credit_request *r, const struct plan *p, int64_t sub0, int64_t tot0,
		 struct built *b, struct tally_err *e)
{
	int md = (int)json_integer_value(json_object_get(inv, "minor_digits"));
	const json_t *lines = json_object_get(inv, "lines"), *taxes = json_object_get(inv, "taxes");
	int64_t inv_sub, inv_total, x;
	json_t *out_lines = json_array(), *out_taxes = json_array();
	char buf[48];
	int rc = 0;

	memset(b, 0, sizeof(*b));
	b->note = json_object();
	if (amount_of(jstr(inv, "subtotal"), md, &inv_sub) || amount_of(jstr(inv, "total"), md, &inv_total) ||
	    !json_is_array(lines) || !json_is_array(taxes)) {
		rc = err_set(e, -EINVAL, "the stored invoice is not an invoice document this tally reads");
		goto out;
	}
	if (inv_sub <= 0) {
		rc = err_set(e, -EINVAL, "the invoice's subtotal is %s: nothing to credit", jstr(inv, "subtotal"));
		goto out;
	}
	int64_t left = inv_sub + sub0;   /* what is left to credit, before tax */
	if (!r->line && !r->amount) {
		/* the whole invoice: every line, then what earlier notes took back */
		size_t i;
		json_t *l;
		int n = 0;
		json_array_foreach(lines, i, l) {
			if (amount_of(jstr(l, "amount"), md, &x)) {
				rc = err_set(e, -EINVAL, "the stored invoice's line %zu has no amount", i + 1);
				goto out;
			}
			json_array_append_new(out_lines, line_json(++n, jstr(l, "description"), (int)i + 1, -x, md));
		}
		if (sub0 != 0)
			json_array_append_new(out_lines, line_json(++n, "already credited by earlier credit notes", 0, -sub0,
								   md));
		b->subtotal = -left;
		b->total = -(inv_total + tot0);
		/* the taxes as invoiced, less those credited: as the invoice's rates
		 * on what is left of each, so the notes add up to the invoice */
		json_t *t;
		int64_t taxsum = 0;
		json_array_foreach(taxes, i, t) {
			int64_t a;
			if (amount_of(jstr(t, "amount"), md, &a)) {
				rc = err_set(e, -EINVAL, "the stored invoice's tax %zu has no amount", i + 1);
				goto out;
			}
			taxsum += a;
		}
		int64_t credited_tax = tot0 - sub0;   /* <= 0 */
		json_array_foreach(taxes, i, t) {
			int64_t a;
			amount_of(jstr(t, "amount"), md, &a);
			json_t *o = json_object();
			/* earlier notes' tax taken off the taxes in proportion (one tax:
			 * all of it; the rounding remainder on the last) */
			int64_t part = taxsum ? (int64_t)((__int128)credited_tax * a / taxsum) : 0;
			if (i + 1 == json_array_size(taxes)) {
				int64_t so_far = 0;
				for (size_t k = 0; k < i; k++) {
					int64_t ak;
					amount_of(jstr(json_array_get(taxes, k), "amount"), md, &ak);
					so_far += taxsum ? (int64_t)((__int128)credited_tax * ak / taxsum) : 0;
				}
				part = credited_tax - so_far;
			}
			json_object_set_new(o, "name", json_string(jstr(t, "name")));
			json_object_set_new(o, "rate_percent", json_string(jstr(t, "rate_percent")));
			json_object_set_new(o, "amount", json_string(money_format(-(a + part), md, buf, sizeof(buf))));
			json_array_append_new(out_taxes, o);
		}
		b->cancels = true;
	} else {
		int64_t net;
		const char *what;
		char desc[400];
		if (r->line) {
			const json_t *l = json_array_get(lines, (size_t)r->line - 1);
			if (!l) {
				rc = err_set(e, -EINVAL, "the invoice has no line %d (it has %zu)", r->line,
					     json_array_size(lines));
				goto out;
			}
			if (amount_of(jstr(l, "amount"), md, &net) || net <= 0) {
				rc = err_set(e, -EINVAL, "line %d of the invoice is %s: only a charge is credited", r->line,
					     jstr(l, "amount"));
				goto out;
			}
			what = jstr(l, "description");
		} else {
			int64_t nanos;
			int64_t q = money_nanos_per_minor(md);
			struct tally_err pe = { 0 };
			if (money_parse_price(r->amount, &nanos, &pe) || nanos <= 0 || nanos % q) {
				rc = err_set(e, -EINVAL, "--amount '%s': expected an amount above zero with at most %d"
					     " decimals (%s)", r->amount, md, pe.msg[0] ? pe.msg : jstr(inv, "currency"));
				goto out;
			}
			net = nanos / q;
			what = r->reason;
		}
		if (net > left) {
			char l2[48];
			rc = err_set(e, -EINVAL, "%s is more than is left to credit on the invoice (%s of %s before tax)",
				     money_format(net, md, buf, sizeof(buf)), money_format(left, md, l2, sizeof(l2)),
				     jstr(inv, "subtotal"));
			goto out;
		}
		snprintf(desc, sizeof(desc), "%s", what);
		json_array_append_new(out_lines, line_json(1, desc, r->line, -net, md));
		int64_t taxsum = 0;
		if ((rc = taxes_on(taxes, -net, md, p->rounding, out_taxes, &taxsum))) {
			rc = err_set(e, rc, "the credit's tax cannot be computed");
			goto out;
		}
		b->subtotal = -net;
		b->total = -net + taxsum;
	}
	json_object_set_new(b->note, "lines", out_lines);
	json_object_set_new(b->note, "subtotal", json_string(money_format(b->subtotal, md, buf, sizeof(buf))));
	json_object_set_new(b->note, "taxes", out_taxes);
	json_object_set_new(b->note, "total", json_string(money_format(b->total, md, buf, sizeof(buf))));
	return 0;
out:
	json_decref(out_lines);
	json_decref(out_taxes);
	json_decref(b->note);
	b->note = NULL;
	return rc;
}

/* The JSON document, as stored and hashed. */
static char *dump(json_t *root)
{
	return json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

int credit_issue(const char *ledger, const struct credit_request *r, int64_t now_ns, char **doc, struct tally_err *e)
{
	struct issued is;
	struct plan p;
	struct plan_errors errs;
	struct ledger_invoice_tx *tx = NULL;
	struct built b = { 0 };
	json_t *root = NULL, *parsed = NULL;
	char hex[65], buf[48], *text = NULL;
	int rc;

	*doc = NULL;
	if (!r->reason || !r->reason[0])
		return err_set(e, -EINVAL, "a credit note needs a --reason (it is printed on the note)");
	if (r->line && r->amount)
		return err_set(e, -EINVAL, "give --line or --amount, not both");
	if ((rc = issue_find(ledger, r->invoice, &is, e)))
		return rc;
	issue_sha256_hex(is.document, strlen(is.document), hex);
	if (strcmp(hex, is.sha256)) {
		rc = err_set(e, -EBADMSG, "%s #%lld: the stored document does not match its hash: the ledger was"
			     " altered outside tally; no credit note is made from it", is.issuer, (long long)is.number);
		goto out_is;
	}
	if ((rc = plan_load_text("stored plan", is.plan_text, strlen(is.plan_text), &p, &errs))) {
		rc = err_set(e, -EINVAL, "the plan stored with %s #%lld does not load: %s", is.issuer,
			     (long long)is.number, errs.n ? errs.msg[0] : "?");
		goto out_is;
	}
	json_error_t je;
	parsed = json_loads(is.document, 0, &je);
	const json_t *inv = json_array_get(json_object_get(parsed, "invoices"), 0);
	if (!inv) {
		rc = err_set(e, -EINVAL, "%s #%lld: the stored document is not an invoice", is.issuer, (long long)is.number);
		goto out_plan;
	}
	if ((rc = ledger_invoices_begin(ledger, &tx, e)))
		goto out_plan;
	int64_t sub0 = 0, tot0 = 0, number, id;
	bool cancelled = false;
	if ((rc = ledger_credit_notes_credited(tx, is.id, &sub0, &tot0, &cancelled, e)))
		goto out_tx;
	if (cancelled) {
		rc = err_set(e, -EINVAL, "%s #%lld is cancelled by a credit note already: nothing left to credit",
			     is.issuer, (long long)is.number);
		goto out_tx;
	}
	if ((rc = build(inv, r, &p, sub0, tot0, &b, e)) ||
	    (rc = ledger_credit_notes_next_number(tx, is.issuer, &number, e)))
		goto out_tx;

	root = json_object();
	json_t *cn = json_object();
	json_object_set_new(root, "format", json_string("tally-credit-note/1"));
	json_object_set_new(cn, "issuer", json_string(is.issuer));
	json_object_set_new(cn, "number", json_integer(number));
	snprintf(buf, sizeof(buf), "%s%lld", p.issuer_info.credit_prefix, (long long)number);
	json_object_set_new(cn, "credit_note_number", json_string(buf));
	json_object_set_new(cn, "issued", json_string(time_format_iso(now_ns, buf, sizeof(buf))));
	json_object_set_new(cn, "credit_note_date", json_string(date_text(r->date_ns, buf, sizeof(buf))));
	json_t *ref = json_object();
	json_object_set_new(ref, "issuer", json_string(is.issuer));
	json_object_set_new(ref, "number", json_integer(is.number));
	if (json_object_get(inv, "invoice_number"))
		json_object_set(ref, "invoice_number", json_object_get(inv, "invoice_number"));
	json_object_set_new(ref, "issued", json_string(jstr(inv, "issued")));
	if (json_object_get(inv, "invoice_date"))
		json_object_set(ref, "invoice_date", json_object_get(inv, "invoice_date"));
	json_object_set_new(ref, "sha256", json_string(is.sha256));
	json_object_set_new(cn, "invoice", ref);
	static const char *const copied[] = { "tenant", "currency", "minor_digits", "period_from", "period_to",
					      "issuer_details", "customer", "tax_treatment", "tax_note", NULL };
	for (int i = 0; copied[i]; i++)
		if (json_object_get(inv, copied[i]))
			json_object_set(cn, copied[i], json_object_get(inv, copied[i]));
	json_object_set_new(cn, "reason", json_string(r->reason));
	json_object_set_new(cn, "cancels_invoice", json_boolean(b.cancels));
	json_object_update(cn, b.note);
	json_object_set_new(root, "credit_note", cn);
	if (!(text = dump(root))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out_tx;
	}
	issue_sha256_hex(text, strlen(text), hex);
	struct ledger_credit_note row = {
		.issuer = is.issuer, .number = number, .invoice_id = is.id, .tenant = is.tenant, .issued_ns = now_ns,
		.currency = jstr(inv, "currency"), .cancels = b.cancels, .subtotal_minor = b.subtotal,
		.total_minor = b.total, .reason = r->reason, .document = text, .sha256 = hex,
	};
	if ((rc = ledger_credit_notes_insert(tx, &row, strlen(text), &id, e)))
		goto out_tx;
	rc = ledger_invoices_commit(tx, e);
	tx = NULL;
	if (rc == 0) {
		*doc = text;
		text = NULL;
	}
out_tx:
	ledger_invoices_abort(tx);
out_plan:
	plan_release(&p);
out_is:
	free(text);
	json_decref(b.note);
	json_decref(root);
	json_decref(parsed);
	free(is.plan_text);
	free(is.document);
	return rc;
}

struct finding {
	char *doc;
	char sha[65];
	int found;
};

static int on_note(void *ctx, const struct ledger_credit_note *cn)
{
	struct finding *f = ctx;
	if (f->found++)
		return -EEXIST;
	str_copy(f->sha, cn->sha256, sizeof(f->sha));
	return (f->doc = strdup(cn->document)) ? 0 : -ENOMEM;
}

int credit_find(const char *ledger, const char *which, char **doc, struct tally_err *e)
{
	char issuer[64], hex[65];
	int64_t number;
	struct finding f = { 0 };
	int rc;

	*doc = NULL;
	if ((rc = issue_parse_which(which, "a credit note's", issuer, &number, e)))
		return rc;
	rc = ledger_credit_notes_find(ledger, number, issuer, on_note, &f, e);
	if (rc == -EEXIST)
		rc = err_set(e, -EINVAL, "'%s': several issuers have a credit note #%lld; give ISSUER#%lld", which,
			     (long long)number, (long long)number);
	else if (rc == -ENOMEM)
		rc = err_set(e, -ENOMEM, "out of memory");
	else if (rc == 0 && !f.found)
		rc = err_set(e, -ENOENT, "%s: no credit note '%s'", ledger, which);
	if (rc == 0) {
		issue_sha256_hex(f.doc, strlen(f.doc), hex);
		if (strcmp(hex, f.sha))
			rc = err_set(e, -EBADMSG, "credit note '%s': the stored document does not match its hash: the"
				     " ledger was altered outside tally", which);
	}
	if (rc) {
		free(f.doc);
		return rc;
	}
	*doc = f.doc;
	return 0;
}

static void party_text(FILE *f, const char *label, const json_t *pa)
{
	size_t i;
	json_t *l;
	if (!pa)
		return;
	fprintf(f, "%-8s %s\n", label, jstr(pa, "name"));
	json_array_foreach(json_object_get(pa, "address"), i, l)
		fprintf(f, "%-8s %s\n", "", json_string_value(l) ? json_string_value(l) : "");
	if (jstr(pa, "vat_id")[0])
		fprintf(f, "%-8s VAT ID %s\n", "", jstr(pa, "vat_id"));
}

static void party_html(FILE *f, const char *cls, const char *heading, const json_t *pa)
{
	size_t i;
	json_t *l;
	if (!pa)
		return;
	fprintf(f, "<div class=\"party %s\"><div class=\"label\">%s</div><div class=\"name\">", cls, heading);
	html_esc(f, jstr(pa, "name"));
	fputs("</div>", f);
	json_array_foreach(json_object_get(pa, "address"), i, l) {
		fputs("<div>", f);
		html_esc(f, json_string_value(l) ? json_string_value(l) : "");
		fputs("</div>", f);
	}
	if (jstr(pa, "vat_id")[0]) {
		fputs("<div class=\"vat\">VAT ID ", f);
		html_esc(f, jstr(pa, "vat_id"));
		fputs("</div>", f);
	}
	fputs("</div>\n", f);
}

int credit_render(FILE *f, const char *doc, enum invoice_format fmt)
{
	json_error_t je;
	json_t *root = json_loads(doc, 0, &je), *cn = json_object_get(root, "credit_note");
	const json_t *ref = json_object_get(cn, "invoice");
	size_t i;
	json_t *l, *t;
	if (!cn || !ref) {
		json_decref(root);
		return -EINVAL;
	}
	const char *invno = jstr(ref, "invoice_number")[0] ? jstr(ref, "invoice_number") : NULL;
	char invbuf[96];
	if (!invno) {
		snprintf(invbuf, sizeof(invbuf), "%s #%lld", jstr(ref, "issuer"),
			 (long long)json_integer_value(json_object_get(ref, "number")));
		invno = invbuf;
	}
	if (fmt == INV_JSON) {
		fputs(doc, f);
		fputc('\n', f);
	} else if (fmt == INV_HTML) {
		html_head(f, jstr(cn, "credit_note_number"));
		fputs("<section class=\"invoice credit-note\">\n<header>\n", f);
		party_html(f, "issuer", "From", json_object_get(cn, "issuer_details"));
		fputs("<div class=\"doc\"><h1>Credit note <span class=\"number\">", f);
		html_esc(f, jstr(cn, "credit_note_number"));
		fputs("</span></h1>\n<table class=\"meta\"><tr><th>Date</th><td>", f);
		html_esc(f, jstr(cn, "credit_note_date"));
		fputs("</td></tr><tr><th>Credits invoice</th><td class=\"credits-invoice\">", f);
		html_esc(f, invno);
		fputs("</td></tr><tr><th>Invoice date</th><td>", f);
		html_esc(f, jstr(ref, "invoice_date"));
		fputs("</td></tr><tr><th>Account</th><td class=\"tenant\">", f);
		html_esc(f, jstr(cn, "tenant"));
		fputs("</td></tr></table></div>\n</header>\n", f);
		party_html(f, "customer", "To", json_object_get(cn, "customer"));
		fputs("<p class=\"reason\">Reason: ", f);
		html_esc(f, jstr(cn, "reason"));
		fputs(json_is_true(json_object_get(cn, "cancels_invoice")) ? " (this credit note cancels the invoice)"
									  : "", f);
		fputs("</p>\n<table class=\"lines\">\n<thead><tr><th>Description</th><th class=\"n\">Amount</th></tr>"
		      "</thead>\n<tbody>\n", f);
		json_array_foreach(json_object_get(cn, "lines"), i, l) {
			fputs("<tr class=\"line\"><td class=\"desc\">", f);
			html_esc(f, jstr(l, "description"));
			fputs("</td><td class=\"n amount\">", f);
			html_esc(f, jstr(l, "amount"));
			fputs("</td></tr>\n", f);
		}
		fputs("</tbody>\n<tbody class=\"totals\">\n<tr class=\"subtotal\"><td>Subtotal</td><td class=\"n\">", f);
		html_esc(f, jstr(cn, "subtotal"));
		fputs("</td></tr>\n", f);
		json_array_foreach(json_object_get(cn, "taxes"), i, t) {
			fputs("<tr class=\"tax\"><td>", f);
			html_esc(f, jstr(t, "name"));
			fprintf(f, " %s%%</td><td class=\"n\">", jstr(t, "rate_percent"));
			html_esc(f, jstr(t, "amount"));
			fputs("</td></tr>\n", f);
		}
		fprintf(f, "<tr class=\"total\"><td>Total credited %s</td><td class=\"n\">", jstr(cn, "currency"));
		html_esc(f, jstr(cn, "total"));
		fputs("</td></tr>\n</tbody>\n</table>\n", f);
		if (jstr(cn, "tax_note")[0]) {
			fputs("<p class=\"taxnote\">", f);
			html_esc(f, jstr(cn, "tax_note"));
			fputs("</p>\n", f);
		}
		fputs("</section>\n</body></html>\n", f);
	} else {
		fprintf(f, "CREDIT NOTE  %s    date %s    credits invoice %s\n", jstr(cn, "credit_note_number"),
			jstr(cn, "credit_note_date"), invno);
		party_text(f, "from", json_object_get(cn, "issuer_details"));
		party_text(f, "to", json_object_get(cn, "customer"));
		fprintf(f, "tenant   %s    period %s to %s    currency %s\n", jstr(cn, "tenant"), jstr(cn, "period_from"),
			jstr(cn, "period_to"), jstr(cn, "currency"));
		fprintf(f, "reason   %s%s\n\n", jstr(cn, "reason"),
			json_is_true(json_object_get(cn, "cancels_invoice")) ? " (cancels the invoice)" : "");
		json_array_foreach(json_object_get(cn, "lines"), i, l)
			fprintf(f, "%4zu %-60s %14s\n", i + 1, jstr(l, "description"), jstr(l, "amount"));
		fprintf(f, "\n%65s %14s\n", "Subtotal", jstr(cn, "subtotal"));
		json_array_foreach(json_object_get(cn, "taxes"), i, t) {
			char label[80];
			snprintf(label, sizeof(label), "%s %s%%", jstr(t, "name"), jstr(t, "rate_percent"));
			fprintf(f, "%65s %14s\n", label, jstr(t, "amount"));
		}
		char label[40];
		snprintf(label, sizeof(label), "Total credited %s", jstr(cn, "currency"));
		fprintf(f, "%65s %14s\n", label, jstr(cn, "total"));
		if (jstr(cn, "tax_note")[0])
			fprintf(f, "TAX      %s\n", jstr(cn, "tax_note"));
	}
	json_decref(root);
	return ferror(f) ? -EIO : 0;
}
