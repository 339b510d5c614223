/*
 * invoice_html.c: invoices as one printable, self-contained HTML page that
 * a finance team can send (invoice.h): per invoice the issuer and the
 * customer, the invoice and due dates and the number, readable lines
 * (the plan's descriptions, quantities rounded for display to the unit's
 * precision, the unit as a customer reads it), under each line how its
 * free allowance, tiers or blocks make the amount, SLA credits in a
 * section of their own, the totals, the tax note and how to pay; then
 * one chart per group billed (compute, storage, network), drawn by
 * librrd's rrd_graph from the RRD files of the resources on the invoice,
 * in units a customer knows (GiB, vCPUs, Mbit/s), embedded as PNG data.
 *
 * Every amount and quantity comes from the invoice (the ledger); the
 * charts are pictures only (schemas/rrd.md: billing never reads RRD
 * averages). The exact quantities stay in JSON and `tally invoice
 * explain`; the internal columns (meter, selector, data coverage) and the
 * per-resource detail are shown only with --detail.
 */
#include "invoice.h"
#include "err.h"
#include "html.h"
#include "meter.h"
#include "rrdname.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <glob.h>
#include <openssl/evp.h>
#include <rrd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 400        /* per chart: rrd_graph opens every file */

/* ':' separates the fields of an rrd_graph DEF: escape it in a path. */
static void def_path(char *out, size_t len, const char *path)
{
	size_t o = 0;
	for (; *path && o + 2 < len; path++) {
		if (*path == ':')
			out[o++] = '\\';
		out[o++] = *path;
	}
	out[o] = '\0';
}

struct chart {
	char *argv[3 * MAX_FILES + 40];
	int argc;
	char *own[3 * MAX_FILES + 40];   /* strings to free */
	int n_own;
};

static char *keep(struct chart *c, char *s)
{
	if (s && c->n_own < (int)(sizeof(c->own) / sizeof(c->own[0])))
		c->own[c->n_own++] = s;
	return s;
}

static void add(struct chart *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct chart *c, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s && c->argc < (int)(sizeof(c->argv) / sizeof(c->argv[0])) - 1)
		c->argv[c->argc++] = keep(c, s);
	else
		free(s);
}

/* What a chart of meter m shows a customer: the RRD's per-second value
 * times mul over div, in unit. */
struct chart_unit {
	const char *unit;
	const char *mul, *div;       /* RPN factors */
};

static struct chart_unit chart_unit_of(int m)
{
	const struct meter_def *md = meter_get(m);
	bool gauge = md->kind == SAMPLE_GAUGE;
	if (!strcmp(md->unit, "B"))
		return gauge ? (struct chart_unit){ "GiB", "1", "1073741824" }
			     : (struct chart_unit){ "Mbit/s", "8", "1000000" };
	if (!strcmp(md->unit, "ns"))
		return (struct chart_unit){ "CPUs busy", "1", "1000000000" };
	if (m == M_INSTANCE)
		return (struct chart_unit){ "instances running", "1", "1" };
	if (gauge)
		return (struct chart_unit){ md->unit, "1", "1" };
	return (struct chart_unit){ "per second", "1", "1" };
}

/* The PNG of meter m summed over the resources of inv's lines of that
 * meter, as base64 (malloc'd), or NULL with a reason in why. */
static char *chart_png_base64(const struct invoice *inv, int m, const char *title, const char *rrd_dir, char *why,
			      size_t wlen)
{
	const struct meter_def *md = meter_get(m);
	const struct chart_unit cu = chart_unit_of(m);
	struct chart c = { .argc = 0 };
	int files = 0;
	char *out = NULL;

	add(&c, "graph");
	add(&c, "-");
	add(&c, "--imgformat=PNG");
	add(&c, "--start=%lld", (long long)(inv->from_ns / NS_PER_SEC));
	add(&c, "--end=%lld", (long long)(inv->to_ns / NS_PER_SEC));
	add(&c, "--width=640");
	add(&c, "--height=150");
	add(&c, "--lower-limit=0");
	add(&c, "--slope-mode");
	add(&c, "--disable-rrdtool-tag");   /* no watermark on a customer's invoice */
	add(&c, "--units-exponent=0");      /* 240 GiB, not 0.24 k */
	add(&c, "--border=0");
	add(&c, "--color=BACK#FFFFFF");
	add(&c, "--color=CANVAS#FFFFFF");
	add(&c, "--color=SHADEA#FFFFFF");
	add(&c, "--color=SHADEB#FFFFFF");
	add(&c, "--title=%s", title);
	add(&c, "--vertical-label=%s", cu.unit);
	for (size_t d = 0; d < inv->n_details && files < MAX_FILES; d++) {
		if (inv->lines[inv->details[d].line].meter != m)
			continue;
		/* one resource may appear on several lines (versions): once */
		bool seen = false;
		for (size_t x = 0; x < d && !seen; x++)
			seen = inv->lines[inv->details[x].line].meter == m &&
			       !strcmp(inv->details[x].resource, inv->details[d].resource);
		if (seen)
			continue;
		char r[256], pattern[1024];
		if (rrd_name_escape(r, sizeof(r), inv->details[d].resource))
			continue;
		if (!strcmp(md->rrd_group, "instance"))
			snprintf(pattern, sizeof(pattern), "%s/%s/instance.rrd", rrd_dir, r);
		else
			snprintf(pattern, sizeof(pattern), "%s/%s/%s-*.rrd", rrd_dir, r, md->rrd_group);
		glob_t g;
		if (glob(pattern, 0, NULL, &g) != 0)
			continue;
		for (size_t i = 0; i < g.gl_pathc && files < MAX_FILES; i++, files++) {
			char p[1100];
			def_path(p, sizeof(p), g.gl_pathv[i]);
			add(&c, "DEF:a%d=%s:%s:AVERAGE", files, p, md->rrd_ds);
			add(&c, "CDEF:b%d=a%d,UN,0,a%d,IF", files, files, files);
		}
		globfree(&g);
	}
	if (files == 0) {
		snprintf(why, wlen, "no RRD files for %s under %s", md->name, rrd_dir);
		goto out;
	}
	/* CDEF:t=b0,b1,+,b2,+,...,mul,*,div,/  (in the customer's unit) */
	char *expr = NULL;
	size_t elen = 0;
	FILE *ef = open_memstream(&expr, &elen);
	if (!ef)
		goto out;
	fprintf(ef, "CDEF:t=b0");
	for (int i = 1; i < files; i++)
		fprintf(ef, ",b%d,+", i);
	fprintf(ef, ",%s,*,%s,/", cu.mul, cu.div);
	fclose(ef);
	if (c.argc < (int)(sizeof(c.argv) / sizeof(c.argv[0])) - 3)
		c.argv[c.argc++] = keep(&c, expr);
	else
		free(expr);
	add(&c, "AREA:t#4e79a7:%s", md->title);
	c.argv[c.argc] = NULL;

	rrd_clear_error();
	rrd_info_t *info = rrd_graph_v(c.argc, c.argv);
	const rrd_blob_t *png = NULL;
	for (rrd_info_t *i = info; i; i = i->next)
		if (!strcmp(i->key, "image") && i->type == RD_I_BLO)
			png = &i->value.u_blo;
	if (!png || png->size == 0) {
		snprintf(why, wlen, "rrd_graph: %s", rrd_test_error() ? rrd_get_error() : "no image");
	} else {
		out = malloc(4 * ((png->size + 2) / 3) + 1);
		if (out)
			EVP_EncodeBlock((unsigned char *)out, png->ptr, (int)png->size);
	}
	rrd_info_free(info);
out:
	for (int i = 0; i < c.n_own; i++)
		free(c.own[i]);
	return out;
}

/* How a group of lines is headed on the page. */
static const char *group_title(const char *g)
{
	static const struct { const char *group, *title; } t[] = {
		{ "compute", "Compute" }, { "storage", "Storage" }, { "network", "Network" },
		{ "other", "Other services" }, { "fees", "Fees and commitments" },
		{ "charges", "One-off charges and credits" }, { "credits", "Service level credits" },
		{ "adjustments", "Corrections to earlier invoices" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(t[i].group, g))
			return t[i].title;
	return g;
}

static char *date_text(int64_t t_ns, char *buf, size_t len)
{
	time_format_iso(t_ns, buf, len);
	if (len > 10)
		buf[10] = '\0';
	return buf;
}

static void party_html(FILE *f, const char *cls, const char *heading, const struct party *pa)
{
	fprintf(f, "<div class=\"party %s\"><div class=\"label\">%s</div><div class=\"name\">", cls, heading);
	html_esc(f, pa->name);
	fputs("</div>", f);
	for (int i = 0; i < pa->n_address; i++) {
		fputs("<div>", f);
		html_esc(f, pa->address[i]);
		fputs("</div>", f);
	}
	if (pa->vat_id[0]) {
		fputs("<div class=\"vat\">VAT ID ", f);
		html_esc(f, pa->vat_id);
		fputs("</div>", f);
	}
	if (pa->tax_id[0]) {
		fputs("<div>Tax ID ", f);
		html_esc(f, pa->tax_id);
		fputs("</div>", f);
	}
	if (pa->email[0]) {
		fputs("<div>", f);
		html_esc(f, pa->email);
		fputs("</div>", f);
	}
	fputs("</div>\n", f);
}

/* A unit price as a customer reads it: exact, but with at least the
 * currency's minor digits (0.50, not 0.5; 0.00006 stays). */
static char *price_shown(int64_t nanos, int minor_digits, char *buf, size_t len)
{
	money_format_price(nanos, buf, len);
	char *dot = strchr(buf, '.');
	size_t have = dot ? strlen(dot + 1) : 0, n = strlen(buf);
	if (minor_digits > 0 && !dot && n + 1 < len) {
		buf[n++] = '.';
		buf[n] = '\0';
	}
	while ((int)have < minor_digits && n + 1 < len) {
		buf[n++] = '0';
		buf[n] = '\0';
		have++;
	}
	return buf;
}

/* A quantity of a step or allowance, to the line's display precision. */
static char *shown(__int128 num, __int128 den, int places, char *buf, size_t len)
{
	return money_format_ratio(num, den, places, buf, len);
}

static void tier_words(FILE *f, const struct rate_step *st, const char *unit)
{
	char w[160];
	fprintf(f, "%s ", rate_tier_words(st, w, sizeof(w)));
	html_esc(f, unit);
}

/* The rows under a usage line that show how its amount is made, as a
 * customer checks it: the free allowance taken off first, then each tier
 * (graduated), the tier all units are priced at (volume), or the blocks
 * started (block). Per-unit lines are quantity x unit price already. */
static void calc_rows(FILE *f, const struct invoice_line *l, int cols, int minor_digits)
{
	const struct rate_calc *c = &l->calc;
	char q[64], pr[48], b[64];
	if (c->free_num > 0) {
		fprintf(f, "<tr class=\"calc\"><td>included free of charge</td><td class=\"n\">%s</td><td>",
			shown(c->free_num, c->qty_den, l->places, q, sizeof(q)));
		html_esc(f, l->unit_human);
		fprintf(f, "</td><td class=\"n\">0</td><td colspan=\"%d\"></td></tr>\n", cols - 4);
	}
	for (int s = 0; s < c->n_steps && l->model != PLAN_PER_UNIT; s++) {
		const struct rate_step *st = &c->steps[s];
		price_shown(st->price_nanos, minor_digits, pr, sizeof(pr));
		if (l->model == PLAN_BLOCK) {
			money_format_price(l->block_nanos, b, sizeof(b));
			fprintf(f, "<tr class=\"calc\"><td>blocks of %s ", b);
			html_esc(f, l->unit_human);
			fprintf(f, " started</td><td class=\"n\">%s</td><td>blocks</td>",
				money_format_ratio(st->blocks, 1, 0, q, sizeof(q)));
		} else {
			fputs("<tr class=\"calc\"><td class=\"tier\">", f);
			if (l->model == PLAN_VOLUME)
				fputs("all at the price for ", f);
			tier_words(f, st, l->unit_human);
			fprintf(f, "</td><td class=\"n\">%s</td><td>", shown(st->qty_num, st->qty_den, l->places, q, sizeof(q)));
			html_esc(f, l->unit_human);
			fputs("</td>", f);
		}
		fprintf(f, "<td class=\"n\">%s</td><td colspan=\"%d\"></td></tr>\n", pr, cols - 4);
	}
}

static void invoice_html(FILE *f, const struct invoice *inv, const char *rrd_dir, bool detail)
{
	char a[48], b[48], amt[48], q[64], pr[48];
	const int cols = detail ? 8 : 5;
	fputs("<section class=\"invoice\">\n<header>\n", f);
	if (inv->issuer_info.party.name[0])
		party_html(f, "issuer", "From", &inv->issuer_info.party);
	fputs("<div class=\"doc\"><h1>", f);
	if (inv->number > 0) {
		fputs("Invoice <span class=\"number\">", f);
		html_esc(f, inv->number_text[0] ? inv->number_text : inv->issuer);
		fputs("</span>", f);
	} else {
		fputs("Draft invoice", f);
	}
	fputs("</h1>\n<table class=\"meta\">", f);
	if (inv->date_ns)
		fprintf(f, "<tr><th>Invoice date</th><td class=\"date\">%s</td></tr><tr><th>Due date</th>"
			"<td class=\"due\">%s</td></tr>", date_text(inv->date_ns, a, sizeof(a)),
			date_text(inv->due_ns, b, sizeof(b)));
	fprintf(f, "<tr><th>Period</th><td class=\"period\">%s to %s</td></tr>", date_text(inv->from_ns, a, sizeof(a)),
		date_text(inv->to_ns - 1, b, sizeof(b)));
	if (inv->customer_ref[0]) {
		fputs("<tr><th>Your reference</th><td>", f);
		html_esc(f, inv->customer_ref);
		fputs("</td></tr>", f);
	}
	fputs("<tr><th>Account</th><td class=\"tenant\">", f);
	html_esc(f, inv->tenant);
	fprintf(f, "</td></tr><tr><th>Currency</th><td>%s</td></tr></table></div>\n</header>\n", inv->currency);
	if (inv->has_customer)
		party_html(f, "customer", "Bill to", &inv->customer);
	if (inv->number == 0 && inv->data_until_ns < inv->to_ns)
		fprintf(f, "<p class=\"note\">Draft: usage is recorded only up to %s; this period is not complete yet.</p>\n",
			inv->data_until_ns ? time_format_iso(inv->data_until_ns, a, sizeof(a)) : "(no data)");

	fputs("<table class=\"lines\">\n<thead><tr><th>Description</th><th class=\"n\">Quantity</th><th>Unit</th>"
	      "<th class=\"n\">Unit price</th>", f);
	if (detail)
		fputs("<th class=\"internal\">Meter</th><th class=\"internal\">Selector</th><th class=\"n internal\">Data</th>",
		      f);
	fputs("<th class=\"n\">Amount</th></tr></thead>\n<tbody>\n", f);
	const char *group = NULL;
	for (size_t i = 0; i < inv->n_lines; i++) {
		const struct invoice_line *l = &inv->lines[i];
		if (!group || strcmp(l->group, group)) {
			/* SLA credits: a section of their own, with what they are */
			fprintf(f, "</tbody>\n<tbody class=\"group %s\"><tr class=\"group\"><td colspan=\"%d\">%s</td></tr>\n",
				l->group, cols, group_title(l->group));
			if (!strcmp(l->group, "credits"))
				fprintf(f, "<tr class=\"explain\"><td colspan=\"%d\">Credits for availability below the"
					" service level agreed, as a share of the charges of each machine affected.</td></tr>\n",
					cols);
			group = l->group;
		}
		fprintf(f, "<tr class=\"line\" data-line=\"%zu\"><td class=\"desc\">", i + 1);
		html_esc(f, l->description);
		q[0] = pr[0] = '\0';
		if (l->type == INV_USAGE) {
			money_format_ratio(l->calc.qty_num, l->calc.qty_den, l->places, q, sizeof(q));
			if (l->tiered)
				snprintf(pr, sizeof(pr), "see below");
			else
				price_shown(l->price_nanos, inv->minor_digits, pr, sizeof(pr));
		}
		fprintf(f, "</td><td class=\"n qty\">%s</td><td class=\"unit\">", q);
		html_esc(f, l->type == INV_USAGE ? (l->unit_human[0] ? l->unit_human : l->unit) : "");
		fprintf(f, "</td><td class=\"n price\">%s</td>", pr);
		if (detail) {
			fputs("<td class=\"internal\">", f);
			if (l->meter >= 0)
				html_esc(f, meter_get(l->meter)->name);
			fputs("</td><td class=\"internal\">", f);
			html_esc(f, l->selector);
			fputs("</td><td class=\"n internal\">", f);
			if (l->type == INV_USAGE && l->spanned_ns > 0)   /* display only: a ratio of two integers */
				fprintf(f, "%.1f%%", 100.0 * (double)l->covered_ns / (double)l->spanned_ns);
			fputs("</td>", f);
		}
		fprintf(f, "<td class=\"n amount\">%s</td></tr>\n",
			money_format(l->amount_minor, inv->minor_digits, amt, sizeof(amt)));
		if (l->type == INV_USAGE && (l->model != PLAN_PER_UNIT || l->calc.free_num > 0))
			calc_rows(f, l, cols, inv->minor_digits);
		for (size_t d = 0; detail && d < inv->n_details; d++) {
			const struct invoice_detail *x = &inv->details[d];
			if (x->line != i)
				continue;
			fputs("<tr class=\"detail\"><td>", f);
			html_esc(f, x->name[0] ? x->name : x->resource);
			fputs(" <span class=\"internal\">", f);
			html_esc(f, x->resource);
			fprintf(f, "</span></td><td class=\"n\">%s</td><td colspan=\"%d\"></td></tr>\n",
				money_format_ratio(x->qty_num, x->qty_den, l->places, q, sizeof(q)), cols - 2);
		}
	}
	fputs("</tbody>\n<tbody class=\"totals\">\n", f);
	fprintf(f, "<tr class=\"subtotal\"><td colspan=\"%d\">Subtotal</td><td class=\"n\">%s</td></tr>\n", cols - 1,
		money_format(inv->subtotal_minor, inv->minor_digits, amt, sizeof(amt)));
	for (int i = 0; i < inv->n_taxes; i++) {
		money_format_price(inv->taxes[i].ppm * 100000, pr, sizeof(pr));
		fprintf(f, "<tr class=\"tax\"><td colspan=\"%d\">", cols - 1);
		html_esc(f, inv->taxes[i].name);
		fprintf(f, " %s%% of %s</td><td class=\"n\">%s</td></tr>\n", pr,
			money_format(inv->subtotal_minor, inv->minor_digits, q, sizeof(q)),
			money_format(inv->taxes[i].amount_minor, inv->minor_digits, amt, sizeof(amt)));
	}
	fprintf(f, "<tr class=\"total\"><td colspan=\"%d\">Total %s</td><td class=\"n\" id=\"total-", cols - 1,
		inv->currency);
	html_esc(f, inv->tenant);
	fprintf(f, "\">%s</td></tr>\n</tbody>\n</table>\n",
		money_format(inv->total_minor, inv->minor_digits, amt, sizeof(amt)));
	if (inv->tax_note[0]) {
		fputs("<p class=\"taxnote\">", f);
		html_esc(f, inv->tax_note);
		fputs("</p>\n", f);
	}
	if (inv->issuer_info.n_payment) {
		fprintf(f, "<div class=\"payment\">Please pay %s %s", money_format(inv->total_minor, inv->minor_digits, amt,
										   sizeof(amt)), inv->currency);
		if (inv->date_ns)
			fprintf(f, " by %s", date_text(inv->due_ns, a, sizeof(a)));
		if (inv->number_text[0]) {
			fputs(", quoting ", f);
			html_esc(f, inv->number_text);
		}
		fputs(", to:", f);
		for (int i = 0; i < inv->issuer_info.n_payment; i++) {
			fputs("<div>", f);
			html_esc(f, inv->issuer_info.payment[i]);
			fputs("</div>", f);
		}
		fputs("</div>\n", f);
	}
	for (size_t i = 0; detail && i < inv->n_notes; i++) {
		fputs("<p class=\"note internal\">Not billed: usage of ", f);
		html_esc(f, meter_get(inv->notes[i].meter)->name);
		fputs(" that no price of the plan matches.</p>\n", f);
	}
	if (detail && inv->number > 0)
		fprintf(f, "<p class=\"internal\">Issued %s by %s as #%lld, SHA-256 %s</p>\n",
			time_format_iso(inv->issued_ns, a, sizeof(a)), inv->issuer, (long long)inv->number, inv->sha256);

	/* one chart per group billed: its largest usage line's meter */
	for (size_t i = 0; i < inv->n_lines; i++) {
		const struct invoice_line *l = &inv->lines[i];
		if (l->type != INV_USAGE || l->meter < 0)
			continue;
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = inv->lines[j].type != INV_USAGE || strcmp(inv->lines[j].group, l->group);
		if (!first)
			continue;
		/* the group's largest line among the meters RRD draws (a custom
		 * meter's usage is imported: it has no RRD files) */
		const struct invoice_line *top = NULL;
		for (size_t j = i; j < inv->n_lines; j++)
			if (inv->lines[j].type == INV_USAGE && !strcmp(inv->lines[j].group, l->group) &&
			    meter_get(inv->lines[j].meter)->rrd_group &&
			    (!top || inv->lines[j].amount_minor > top->amount_minor))
				top = &inv->lines[j];
		if (!rrd_dir || !top)
			continue;
		char title[200], why[300] = "";
		const struct chart_unit cu = chart_unit_of(top->meter);
		snprintf(title, sizeof(title), "%s: %s (%s)", group_title(l->group), meter_get(top->meter)->title, cu.unit);
		char *png = chart_png_base64(inv, top->meter, title, rrd_dir, why, sizeof(why));
		if (!png) {
			/* usage without RRD files (imported from a file): no picture, and
			 * nothing internal said to the customer */
			fputs("<!-- no chart: ", f);
			html_esc(f, why);
			fputs(" -->\n", f);
			continue;
		}
		fputs("<figure><img class=\"chart\" alt=\"", f);
		html_esc(f, title);
		fprintf(f, "\" src=\"data:image/png;base64,%s\"><figcaption>", png);
		free(png);
		html_esc(f, meter_get(top->meter)->title);
		fprintf(f, " over the period, all resources on this invoice, in %s. A picture of the usage: the amounts"
			" above are from the metered usage.</figcaption></figure>\n", cu.unit);
	}
	fputs("</section>\n", f);
}

int invoice_render_html(FILE *f, const struct invoice *invs, size_t n, const char *rrd_dir,
			const struct invoice_render_opts *o)
{
	html_head(f, n == 1 && invs[0].number_text[0] ? invs[0].number_text : "Invoices");
	for (size_t i = 0; i < n; i++)
		invoice_html(f, &invs[i], rrd_dir, o && o->detail);
	fputs("</body></html>\n", f);
	return ferror(f) ? -EIO : 0;
}
