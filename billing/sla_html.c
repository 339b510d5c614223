/*
 * sla_html.c: the SLA report (sla.h) as one printable, self-contained HTML
 * page: the period, a note when the data end before it, a row per VM
 * (tenant, name, resource, class, availability, target, downtime, credit)
 * with its incidents beneath, and the fleet summary. The same figures as
 * the text, CSV and JSON forms, from the same sla_report.
 */
#include "sla.h"
#include "html.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>

static void cell(FILE *f, const char *cls, const char *text)
{
	fprintf(f, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
	html_esc(f, text);
	fputs("</td>", f);
}

int sla_render_html(FILE *f, const struct sla_report *r, const struct plan *p)
{
	char a[48], b[48], av[24], tg[24], d[32], cr[24];
	struct sla_fleet fl;
	sla_fleet_of(r, &fl);
	html_head(f, "tally SLA report");
	fputs("<section class=\"sla\">\n<h1>SLA report</h1>\n<p class=\"meta\">", f);
	fprintf(f, "<span class=\"period\">%s to %s</span> (UTC), plan ", time_format_iso(r->from_ns, a, sizeof(a)),
		time_format_iso(r->to_ns, b, sizeof(b)));
	html_esc(f, p->name);
	fputs("</p>\n", f);
	if (r->data_until_ns < r->to_ns)
		fprintf(f, "<p class=\"note\">Data only up to %s: availability is measured up to there.</p>\n",
			r->data_until_ns ? time_format_iso(r->data_until_ns, a, sizeof(a)) : "(no data)");
	fputs("<table>\n<tr><th>Tenant</th><th>Name</th><th>Resource</th><th>Class</th><th>Availability %</th>"
	      "<th>Target %</th><th>Downtime</th><th>Credit %</th></tr>\n", f);
	for (size_t i = 0; i < r->n_vms; i++) {
		const struct sla_vm *v = &r->vms[i];
		fprintf(f, "<tr class=\"vm%s\">", v->breached ? " breached" : "");
		cell(f, NULL, v->tenant);
		cell(f, "name", v->name);
		cell(f, NULL, v->uuid);
		cell(f, NULL, v->cls >= 0 ? p->sla[v->cls].name : "-");
		cell(f, "n avail", sla_availability_text(v, av, sizeof(av)));
		cell(f, "n", v->cls >= 0 ? sla_ppm_text(p->sla[v->cls].target_ppm, tg, sizeof(tg)) : "-");
		cell(f, "n", sla_duration_text(v->down_ns, d, sizeof(d)));
		cell(f, "n credit", sla_ppm_text(v->credit_ppm, cr, sizeof(cr)));
		fputs("</tr>\n", f);
		for (size_t k = 0; k < v->n_incidents; k++) {
			const struct sla_incident *x = &v->incidents[k];
			fputs("<tr class=\"incident\"><td></td><td colspan=\"5\">", f);
			html_esc(f, x->cause);
			fprintf(f, " %s .. %s", time_format_iso(x->start_ns, a, sizeof(a)),
				x->end_ns == INT64_MAX ? "(ongoing)" : time_format_iso(x->end_ns, b, sizeof(b)));
			if (x->detail[0]) {
				fputs(" (", f);
				html_esc(f, x->detail);
				fputc(')', f);
			}
			fprintf(f, "</td><td class=\"n\">%s counted</td><td></td></tr>\n",
				sla_duration_text(x->counted_ns, d, sizeof(d)));
		}
	}
	fprintf(f, "<tr class=\"total\"><td colspan=\"4\">Fleet: <span class=\"vms\">%zu</span> VMs,"
		" <span class=\"breached\">%zu</span> below target, <span class=\"credited\">%zu</span> with a"
		" credit</td>", r->n_vms, fl.breached, fl.credited);
	cell(f, "n avail", sla_availability_text(&fl.all, av, sizeof(av)));
	cell(f, NULL, "");
	cell(f, "n", sla_duration_text(fl.all.down_ns, d, sizeof(d)));
	cell(f, NULL, "");
	fputs("</tr>\n</table>\n</section>\n</body></html>\n", f);
	return ferror(f) ? -EIO : 0;
}
