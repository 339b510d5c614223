/*
 * sla_render.c: the SLA report as aligned text, RFC 4180 CSV or JSON
 * (sla.h, docs/sla.md); the HTML page is sla_html.c. sla.c computes, this
 * file only shows.
 */
#include "sla.h"
#include "csv.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *end_text(const struct sla_incident *i, char *buf, size_t len)
{
	return i->end_ns == INT64_MAX ? "(ongoing)" : time_format_iso(i->end_ns, buf, len);
}

int sla_render(FILE *f, const struct sla_report *r, const struct plan *p, enum sla_format fmt)
{
	char a[48], b[48], av[24], tg[24], d[32], cr[24];
	struct sla_fleet fleet;
	if (fmt == SLA_HTML)
		return sla_render_html(f, r, p);
	sla_fleet_of(r, &fleet);
	if (fmt == SLA_JSON) {
		json_t *root = json_object(), *vms = json_array();
		json_object_set_new(root, "period_from", json_string(time_format_iso(r->from_ns, a, sizeof(a))));
		json_object_set_new(root, "period_to", json_string(time_format_iso(r->to_ns, a, sizeof(a))));
		json_object_set_new(root, "data_until", r->data_until_ns ? json_string(time_format_iso(r->data_until_ns, a,
												      sizeof(a)))
									 : json_null());
		for (size_t i = 0; i < r->n_vms; i++) {
			const struct sla_vm *v = &r->vms[i];
			json_t *o = json_object(), *inc = json_array();
			json_object_set_new(o, "tenant", json_string(v->tenant));
			json_object_set_new(o, "resource", json_string(v->uuid));
			json_object_set_new(o, "name", json_string(v->name));
			json_object_set_new(o, "class", v->cls >= 0 ? json_string(p->sla[v->cls].name) : json_null());
			json_object_set_new(o, "expected_seconds", json_integer(v->expected_ns / NS_PER_SEC));
			json_object_set_new(o, "downtime_seconds", json_integer(v->down_ns / NS_PER_SEC));
			json_object_set_new(o, "availability_percent", json_string(sla_availability_text(v, av, sizeof(av))));
			json_object_set_new(o, "target_percent", v->cls >= 0 ? json_string(sla_ppm_text(p->sla[v->cls].target_ppm,
												   tg, sizeof(tg)))
									     : json_null());
			json_object_set_new(o, "breached", json_boolean(v->breached));
			json_object_set_new(o, "credit_percent", json_string(sla_ppm_text(v->credit_ppm, cr, sizeof(cr))));
			for (size_t k = 0; k < v->n_incidents; k++) {
				const struct sla_incident *x = &v->incidents[k];
				json_t *j = json_object();
				json_object_set_new(j, "start", json_string(time_format_iso(x->start_ns, a, sizeof(a))));
				json_object_set_new(j, "end", x->end_ns == INT64_MAX ? json_null()
							      : json_string(time_format_iso(x->end_ns, b, sizeof(b))));
				json_object_set_new(j, "cause", json_string(x->cause));
				json_object_set_new(j, "detail", json_string(x->detail));
				json_object_set_new(j, "counted_seconds", json_integer(x->counted_ns / NS_PER_SEC));
				json_array_append_new(inc, j);
			}
			json_object_set_new(o, "incidents", inc);
			json_t *offs = json_array();
			for (size_t k = 0; k < v->n_offs; k++) {
				const struct sla_incident *x = &v->offs[k];
				json_t *j = json_object();
				json_object_set_new(j, "start", json_string(time_format_iso(x->start_ns, a, sizeof(a))));
				json_object_set_new(j, "end", x->end_ns == INT64_MAX ? json_null()
							      : json_string(time_format_iso(x->end_ns, b, sizeof(b))));
				json_object_set_new(j, "event", json_string(x->cause));
				json_object_set_new(j, "reason", json_string(x->detail));
				json_object_set_new(j, "seconds", json_integer(x->counted_ns / NS_PER_SEC));
				json_array_append_new(offs, j);
			}
			json_object_set_new(o, "off", offs);
			json_array_append_new(vms, o);
		}
		json_object_set_new(root, "vms", vms);
		json_t *fl = json_object();
		json_object_set_new(fl, "vms", json_integer((json_int_t)r->n_vms));
		json_object_set_new(fl, "availability_percent", json_string(sla_availability_text(&fleet.all, av, sizeof(av))));
		json_object_set_new(fl, "downtime_seconds", json_integer(fleet.all.down_ns / NS_PER_SEC));
		json_object_set_new(fl, "breached", json_integer((json_int_t)fleet.breached));
		json_object_set_new(fl, "credited", json_integer((json_int_t)fleet.credited));
		json_object_set_new(root, "fleet", fl);
		int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', f);
		json_decref(root);
		return rc || ferror(f) ? -EIO : 0;
	}
	if (fmt == SLA_CSV) {
		fputs("tenant,resource,name,class,availability_percent,target_percent,downtime_seconds,"
		      "expected_seconds,credit_percent,incident_start,incident_end,cause,counted_seconds\r\n", f);
		for (size_t i = 0; i < r->n_vms; i++) {
			const struct sla_vm *v = &r->vms[i];
			for (size_t k = 0; k == 0 || k < v->n_incidents; k++) {
				const struct sla_incident *x = v->n_incidents ? &v->incidents[k] : NULL;
				csv_field(f, v->tenant);
				fputc(',', f);
				csv_field(f, v->uuid);
				fputc(',', f);
				csv_field(f, v->name);
				fputc(',', f);
				csv_field(f, v->cls >= 0 ? p->sla[v->cls].name : "");
				fprintf(f, ",%s,%s,%lld,%lld,%s,", sla_availability_text(v, av, sizeof(av)),
					v->cls >= 0 ? sla_ppm_text(p->sla[v->cls].target_ppm, tg, sizeof(tg)) : "",
					(long long)(v->down_ns / NS_PER_SEC), (long long)(v->expected_ns / NS_PER_SEC),
					sla_ppm_text(v->credit_ppm, cr, sizeof(cr)));
				if (x)
					fprintf(f, "%s,%s,%s,%lld\r\n", time_format_iso(x->start_ns, a, sizeof(a)),
						x->end_ns == INT64_MAX ? "" : time_format_iso(x->end_ns, b, sizeof(b)),
						x->cause, (long long)(x->counted_ns / NS_PER_SEC));
				else
					fputs(",,,\r\n", f);
			}
		}
		return ferror(f) ? -EIO : 0;
	}
	fprintf(f, "SLA      %s to %s (UTC)\n", time_format_iso(r->from_ns, a, sizeof(a)),
		time_format_iso(r->to_ns, b, sizeof(b)));
	if (r->data_until_ns < r->to_ns)
		fprintf(f, "NOTE     data only up to %s: availability is measured up to there\n",
			r->data_until_ns ? time_format_iso(r->data_until_ns, a, sizeof(a)) : "(no data)");
	fprintf(f, "\n%-10s %-20s %-36s %-12s %9s %9s %12s %7s\n", "TENANT", "NAME", "RESOURCE", "CLASS", "AVAIL%",
		"TARGET%", "DOWNTIME", "CREDIT%");
	for (size_t i = 0; i < r->n_vms; i++) {
		const struct sla_vm *v = &r->vms[i];
		fprintf(f, "%-10s %-20s %-36s %-12s %9s %9s %12s %7s%s\n", v->tenant[0] ? v->tenant : "-", v->name,
			v->uuid, v->cls >= 0 ? p->sla[v->cls].name : "-", sla_availability_text(v, av, sizeof(av)),
			v->cls >= 0 ? sla_ppm_text(p->sla[v->cls].target_ppm, tg, sizeof(tg)) : "-",
			sla_duration_text(v->down_ns, d, sizeof(d)), sla_ppm_text(v->credit_ppm, cr, sizeof(cr)),
			v->breached ? "  BREACHED" : "");
		for (size_t k = 0; k < v->n_incidents; k++) {
			const struct sla_incident *x = &v->incidents[k];
			fprintf(f, "%10s   %-7s %s .. %s  %s counted  %s\n", "", x->cause,
				time_format_iso(x->start_ns, a, sizeof(a)), end_text(x, b, sizeof(b)),
				sla_duration_text(x->counted_ns, d, sizeof(d)), x->detail);
		}
		for (size_t k = 0; k < v->n_offs; k++) {
			const struct sla_incident *x = &v->offs[k];
			fprintf(f, "%10s   off     %s .. %s  %s not expected  %s%s%s\n", "",
				time_format_iso(x->start_ns, a, sizeof(a)), end_text(x, b, sizeof(b)),
				sla_duration_text(x->counted_ns, d, sizeof(d)), x->cause, x->detail[0] ? ": " : "",
				x->detail);
		}
	}
	fprintf(f, "\nfleet    %zu VMs, availability %s%%, downtime %s, %zu below target, %zu with a credit\n", r->n_vms,
		sla_availability_text(&fleet.all, av, sizeof(av)), sla_duration_text(fleet.all.down_ns, d, sizeof(d)), fleet.breached, fleet.credited);
	return ferror(f) ? -EIO : 0;
}

