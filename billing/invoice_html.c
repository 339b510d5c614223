/*
 * invoice_html.c: invoices as one printable, self-contained HTML file: the
 * lines and totals as in the text form, and per meter billed a chart of the
 * tenant's usage over the period, drawn by librrd's rrd_graph from the RRD
 * files of the resources on the line and embedded as a PNG data URI. The
 * charts are pictures only: every figure on the invoice comes from the
 * ledger (schemas/rrd.md: billing never reads RRD averages).
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
	char *argv[3 * MAX_FILES + 32];
	int argc;
	char *own[3 * MAX_FILES + 32];   /* strings to free */
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

/* The PNG of meter m summed over the resources of inv's lines of that
 * meter, as base64 (malloc'd), or NULL with a reason in why. */
static char *chart_png_base64(const struct invoice *inv, int m, const char *rrd_dir, char *why, size_t wlen)
{
	const struct meter_def *md = &meter_table[m];
	struct chart c = { .argc = 0 };
	int files = 0;
	char *out = NULL;

	add(&c, "graph");
	add(&c, "-");
	add(&c, "--imgformat=PNG");
	add(&c, "--start=%lld", (long long)(inv->from_ns / NS_PER_SEC));
	add(&c, "--end=%lld", (long long)(inv->to_ns / NS_PER_SEC));
	add(&c, "--width=640");
	add(&c, "--height=140");
	add(&c, "--lower-limit=0");
	add(&c, "--slope-mode");
	add(&c, "--title=%s", md->name);
	bool counter = md->kind != SAMPLE_GAUGE;
	const char *label = m == M_CPU ? "CPUs busy" : counter ? "per second" : md->unit;
	add(&c, "--vertical-label=%s", label);
	if (!strcmp(md->unit, "B"))
		add(&c, "--base=1024");
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
	/* CDEF:t=b0,b1,+,b2,+,...  (scaled for cpu: ns/s -> CPUs) */
	char *expr = NULL;
	size_t elen = 0;
	FILE *ef = open_memstream(&expr, &elen);
	if (!ef)
		goto out;
	fprintf(ef, "CDEF:t=b0");
	for (int i = 1; i < files; i++)
		fprintf(ef, ",b%d,+", i);
	if (m == M_CPU)
		fprintf(ef, ",1000000000,/");
	fclose(ef);
	if (c.argc < (int)(sizeof(c.argv) / sizeof(c.argv[0])) - 3)
		c.argv[c.argc++] = keep(&c, expr);
	else
		free(expr);
	add(&c, "AREA:t#4e79a7:%s of tenant %s (%d file%s)", md->name, inv->tenant, files, files == 1 ? "" : "s");
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

static void invoice_html(FILE *f, const struct invoice *inv, const char *rrd_dir)
{
	char a[48], b[48], amt[48], q[64], pr[48], pct[16];
	fputs("<section class=\"invoice\">\n<h1>", f);
	if (inv->number > 0) {
		fputs("Invoice ", f);
		html_esc(f, inv->issuer);
		fprintf(f, " #%lld", (long long)inv->number);
	} else {
		fputs("Draft invoice (not issued)", f);
	}
	fputs("</h1>\n<p class=\"meta\">Tenant <b class=\"tenant\">", f);
	html_esc(f, inv->tenant);
	fputs("</b> &middot; plan ", f);
	html_esc(f, inv->plan);
	fprintf(f, " &middot; period %s to %s (UTC) &middot; currency %s", time_format_iso(inv->from_ns, a, sizeof(a)),
		time_format_iso(inv->to_ns, b, sizeof(b)), inv->currency);
	if (inv->number > 0)
		fprintf(f, "<br>issued %s &middot; SHA-256 %s", time_format_iso(inv->issued_ns, a, sizeof(a)),
			inv->sha256);
	fputs("</p>\n", f);
	if (inv->data_until_ns < inv->to_ns)
		fprintf(f, "<p class=\"note\">Usage is recorded only up to %s: this period is not complete yet.</p>\n",
			inv->data_until_ns ? time_format_iso(inv->data_until_ns, a, sizeof(a)) : "(no data)");
	fputs("<table>\n<tr><th>#</th><th>Description</th><th>Quantity</th><th>Unit</th><th>Unit price</th>"
	      "<th>Amount</th><th>Data</th></tr>\n", f);
	const char *group = NULL;
	for (size_t i = 0; i < inv->n_lines; i++) {
		const struct invoice_line *l = &inv->lines[i];
		if (l->group != group) {
			fputs("<tr class=\"group\"><td></td><td colspan=\"6\">", f);
			html_esc(f, l->group);
			fputs("</td></tr>\n", f);
			group = l->group;
		}
		fprintf(f, "<tr class=\"line\" data-line=\"%zu\"><td class=\"n\">%zu</td><td>", i + 1, i + 1);
		html_esc(f, l->description);
		if (l->selector[0]) {
			fputs(" [", f);
			html_esc(f, l->selector);
			fputs("]", f);
		}
		q[0] = pr[0] = pct[0] = '\0';
		if (l->type == INV_USAGE) {
			money_format_ratio(l->calc.qty_num, l->calc.qty_den, 9, q, sizeof(q));
			if (l->tiered)
				snprintf(pr, sizeof(pr), "tiered");
			else
				money_format_price(l->price_nanos, pr, sizeof(pr));
			if (l->spanned_ns > 0)
				snprintf(pct, sizeof(pct), "%.1f%%", 100.0 * (double)l->covered_ns / (double)l->spanned_ns);
		}
		fprintf(f, "</td><td class=\"n\">%s</td><td>%s</td><td class=\"n\">%s</td>"
			"<td class=\"n amount\">%s</td><td class=\"n\">%s</td></tr>\n", q, l->unit, pr,
			money_format(l->amount_minor, inv->minor_digits, amt, sizeof(amt)), pct);
	}
	fprintf(f, "<tr><td></td><td colspan=\"4\">Subtotal</td><td class=\"n\">%s</td><td></td></tr>\n",
		money_format(inv->subtotal_minor, inv->minor_digits, amt, sizeof(amt)));
	for (int i = 0; i < inv->n_taxes; i++) {
		money_format_price(inv->taxes[i].ppm * 100000, pr, sizeof(pr));
		fputs("<tr><td></td><td colspan=\"4\">", f);
		html_esc(f, inv->taxes[i].name);
		fprintf(f, " %s%%</td><td class=\"n\">%s</td><td></td></tr>\n", pr,
			money_format(inv->taxes[i].amount_minor, inv->minor_digits, amt, sizeof(amt)));
	}
	fprintf(f, "<tr class=\"total\"><td></td><td colspan=\"4\">Total %s</td><td class=\"n\" id=\"total-",
		inv->currency);
	html_esc(f, inv->tenant);
	fprintf(f, "\">%s</td><td></td></tr>\n</table>\n",
		money_format(inv->total_minor, inv->minor_digits, amt, sizeof(amt)));
	for (size_t i = 0; i < inv->n_notes; i++) {
		const struct meter_def *m = &meter_table[inv->notes[i].meter];
		fputs("<p class=\"note\">Not billed: usage of ", f);
		html_esc(f, m->name);
		fputs(" that no price of the plan matches.</p>\n", f);
	}

	/* one chart per meter billed, in the order of the lines */
	bool drawn[METER_COUNT] = { false };
	for (size_t i = 0; i < inv->n_lines; i++) {
		int m = inv->lines[i].meter;
		if (inv->lines[i].type != INV_USAGE || m < 0 || drawn[m])
			continue;
		drawn[m] = true;
		char why[300] = "";
		char *png = rrd_dir ? chart_png_base64(inv, m, rrd_dir, why, sizeof(why)) : NULL;
		if (!rrd_dir)
			snprintf(why, sizeof(why), "no RRD directory given");
		fputs("<figure>", f);
		if (png) {
			fputs("<img class=\"chart\" alt=\"", f);
			html_esc(f, meter_table[m].name);
			fprintf(f, " usage\" src=\"data:image/png;base64,%s\">", png);
			free(png);
		} else {
			fputs("<p class=\"note\">No chart: ", f);
			html_esc(f, why);
			fputs("</p>", f);
		}
		fputs("<figcaption>", f);
		html_esc(f, meter_table[m].name);
		fputs(": the tenant's resources on this invoice, from the RRD files (a picture: the amounts come"
		      " from the ledger)</figcaption></figure>\n", f);
	}
	fputs("</section>\n", f);
}

int invoice_render_html(FILE *f, const struct invoice *invs, size_t n, const char *rrd_dir)
{
	html_head(f, "tally invoices");
	for (size_t i = 0; i < n; i++)
		invoice_html(f, &invs[i], rrd_dir);
	fputs("</body></html>\n", f);
	return ferror(f) ? -EIO : 0;
}
