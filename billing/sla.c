/*
 * sla.c: availability per VM from the ledger's lifecycle events (sla.h,
 * docs/sla.md), and the report in text, CSV and JSON.
 *
 * Each VM's events are walked in time order from its first sight, with a
 * state (running, off on request, down) that decides for every stretch of
 * time whether it counts as expected and as down; only the stretches inside
 * the measured window [max(period start, first sight), min(period end, end
 * of data)) count.
 */
#include "sla.h"
#include "lifecycle.h"
#include "vec.h"
#include "csv.h"
#include "err.h"
#include "invoice.h"
#include "reader.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum vm_state { ST_RUN, ST_OFF, ST_DOWN };

struct walk {
	struct sla_vm *vm;
	int64_t lo, hi;              /* measured window */
	enum vm_state st;
	int64_t since;               /* when st began */
	char cause[16], detail[64];  /* of the current downtime, or stretch off */
	size_t cap, cap_off;
};

static int64_t overlap(int64_t a, int64_t b, int64_t lo, int64_t hi)
{
	int64_t x = a > lo ? a : lo, y = b < hi ? b : hi;
	return y > x ? y - x : 0;
}

/* Append [start, end) to list (n, cap) if it overlaps the window. */
static int add_stretch(struct walk *w, struct sla_incident **list, size_t *n, size_t *cap, int64_t start, int64_t end,
		       const char *cause, const char *detail)
{
	struct sla_vm *v = w->vm;
	int64_t counted = overlap(start, end, w->lo, w->hi);
	if (counted == 0 && (end <= w->lo || start >= w->hi))
		return 0;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct sla_incident *p = realloc(*list, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*list = p;
		*cap = nc;
	}
	(void)v;
	struct sla_incident *i = &(*list)[(*n)++];
	i->start_ns = start;
	i->end_ns = end;
	i->counted_ns = counted;
	str_copy(i->cause, cause, sizeof(i->cause));
	str_copy(i->detail, detail, sizeof(i->detail));
	return 0;
}

static int add_incident(struct walk *w, int64_t start, int64_t end, const char *cause, const char *detail)
{
	size_t before = w->vm->n_incidents;
	int rc = add_stretch(w, &w->vm->incidents, &w->vm->n_incidents, &w->cap, start, end, cause, detail);
	if (!rc && w->vm->n_incidents > before)
		w->vm->down_ns += w->vm->incidents[w->vm->n_incidents - 1].counted_ns;
	return rc;
}

/* Leave the current state at t: account for [since, t). */
static int close_stretch(struct walk *w, int64_t t)
{
	if (w->st != ST_OFF)
		w->vm->expected_ns += overlap(w->since, t, w->lo, w->hi);
	if (w->st == ST_DOWN)
		return add_incident(w, w->since, t, w->cause, w->detail);
	if (w->st == ST_OFF && w->cause[0]) /* off by an event (not before the first sight) */
		return add_stretch(w, &w->vm->offs, &w->vm->n_offs, &w->cap_off, w->since, t, w->cause, w->detail);
	return 0;
}

static int set_state(struct walk *w, int64_t t, enum vm_state st, const char *cause, const char *detail)
{
	if (st == w->st)
		return 0;
	int rc = close_stretch(w, t);
	w->st = st;
	w->since = t;
	str_copy(w->cause, cause, sizeof(w->cause));
	str_copy(w->detail, detail, sizeof(w->detail));
	return rc;
}

/* One event. silent_at holds the start of a silence until it is heard. */
static int on_event(struct walk *w, const struct plan *p, int64_t t, const char *type, const char *reason,
		    int64_t *silent_at)
{
	int rc = 0;
	switch (lifecycle_type_of(type)) {
	case LIFECYCLE_STARTED:
	case LIFECYCLE_MIGRATED_IN:
	case LIFECYCLE_RESUMED:
		return set_state(w, t, ST_RUN, "", "");
	case LIFECYCLE_CRASHED:
		return set_state(w, t, ST_DOWN, "crashed", reason);
	case LIFECYCLE_STOPPED:
		return !strcmp(reason, "failed") ? set_state(w, t, ST_DOWN, "failed", reason)
						  : set_state(w, t, ST_OFF, type, reason);
	case LIFECYCLE_SHUTDOWN:
	case LIFECYCLE_UNDEFINED:
		return set_state(w, t, ST_OFF, type, reason);
	case LIFECYCLE_SUSPENDED:
		return !strcmp(reason, "ioerror") ? set_state(w, t, ST_DOWN, "ioerror", reason)
						   : set_state(w, t, ST_OFF, type, reason);
	case LIFECYCLE_SILENT:
		*silent_at = t;
		return 0;
	case LIFECYCLE_HEARD:
		if (*silent_at >= 0 && w->st == ST_RUN && t - *silent_at > p->sla_grace_ns)
			rc = add_incident(w, *silent_at, t, "silent", reason);
		*silent_at = -1;
		return rc;
	default:
		return 0; /* rebooted, migrated_out, defined, device events: no change */
	}
}

static int cmp_vm(const void *a, const void *b)
{
	const struct sla_vm *x = a, *y = b;
	int c;
	if ((c = strcmp(x->tenant, y->tenant)) || (c = strcmp(x->name, y->name)))
		return c;
	return strcmp(x->uuid, y->uuid);
}

/* Class and credit of a measured VM. */
static void classify(struct sla_vm *v, const struct plan *p, const struct plan_attrs *a)
{
	v->cls = -1;
	for (int i = 0; i < p->n_sla && v->cls < 0; i++)
		if (plan_select(p->sla[i].sel_key, p->sla[i].sel_val, p->sla[i].n_sel, a))
			v->cls = i;
	if (v->cls < 0 || v->expected_ns == 0)
		return;
	const struct plan_sla_class *c = &p->sla[v->cls];
	__int128 up = (__int128)(v->expected_ns - v->down_ns) * 1000000, e = v->expected_ns;
	v->breached = up < (__int128)c->target_ppm * e;
	for (int t = 0; t < c->n_credits; t++)
		if (up < (__int128)c->credits[t].below_ppm * e)
			v->credit_ppm = c->credits[t].credit_ppm;
}

struct compute {
	const struct sla_query *q;
	const struct plan *p;
	struct sla_report *out;
	struct ledger_reader *lr;
	size_t cap;
	bool tenant_seen;
	int64_t end;                 /* of the period, or of the data when it stops sooner */
	struct walk *w;              /* the VM being walked */
	int64_t silent_at;
	struct tally_err *e;
};

static int on_vm_event(void *ctx, int64_t t_ns, const char *type, const char *reason)
{
	struct compute *c = ctx;
	return on_event(c->w, c->p, t_ns, type, reason, &c->silent_at);
}

/* One VM of the ledger (reader.h): its events walked into incidents. */
static int on_vm(void *ctx, const struct ledger_instance_row *row)
{
	struct compute *c = ctx;
	const struct sla_query *q = c->q;
	struct sla_report *out = c->out;
	struct tally_err *e = c->e;
	int64_t end = c->end;
	int rc;

	if (q->tenant && strcmp(row->tenant, q->tenant))
		return 0;
	c->tenant_seen = true;
	if (vec_reserve((void **)&out->vms, &c->cap, out->n_vms + 1, sizeof(*out->vms), 64))
		return err_set(e, -ENOMEM, "out of memory");
	struct sla_vm *v = &out->vms[out->n_vms];
	memset(v, 0, sizeof(*v));
	str_copy(v->uuid, row->uuid, sizeof(v->uuid));
	str_copy(v->name, row->name, sizeof(v->name));
	str_copy(v->tenant, row->tenant, sizeof(v->tenant));
	str_copy(v->host, row->host, sizeof(v->host));
	int64_t first = row->first_seen_ns, last = row->last_seen_ns;
	struct walk w = { .vm = v, .lo = first > q->from_ns ? first : q->from_ns, .hi = end, .st = ST_RUN,
			  .since = first };
	v->from_ns = w.lo;
	v->to_ns = w.hi > w.lo ? w.hi : w.lo;
	c->w = &w;
	c->silent_at = -1;
	if ((rc = ledger_read_events(c->lr, row->id, on_vm_event, c, e)))
		goto fail;
	/* gone quiet while it should run, and not heard of since: silent
	 * from its last reading (or the recorded start of the silence) */
	if (w.st == ST_RUN) {
		int64_t s0 = c->silent_at >= 0 ? c->silent_at : last;
		if (s0 < w.since)
			s0 = w.since;
		if (s0 < end && end - s0 > c->p->sla_grace_ns && set_state(&w, s0, ST_DOWN, "silent", "no readings since")) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	bool ongoing = w.st == ST_DOWN;
	v->expected_at_end = w.st != ST_OFF;
	size_t before = v->n_incidents;
	if (close_stretch(&w, w.since > end ? w.since : end)) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (ongoing && v->n_incidents > before)
		v->incidents[v->n_incidents - 1].end_ns = INT64_MAX;
	/* VMs that did not exist in the period at all are left out */
	if (v->expected_ns == 0 && v->n_incidents == 0 && last < q->from_ns) {
		free(v->incidents);
		free(v->offs);
		return 0;
	}
	const struct plan_attrs a = { .flavor = row->flavor, .labels = row->labels, .project = row->project,
				      .user = row->user, .name = row->attr_name, .host = row->host };
	classify(v, c->p, &a);
	out->n_vms++;
	return 0;
fail:
	/* the VM is not counted: its lists are freed here */
	if (rc == -ENOMEM && !e->msg[0])
		err_set(e, rc, "out of memory");
	free(v->incidents);
	free(v->offs);
	return rc;
}

int sla_compute(const struct sla_query *q, const struct plan *p, struct sla_report *out, struct tally_err *e)
{
	struct compute c = { .q = q, .p = p, .out = out, .e = e };
	int rc;

	memset(out, 0, sizeof(*out));
	out->from_ns = q->from_ns;
	out->to_ns = q->to_ns;
	if ((rc = ledger_reader_open(q->ledger, &c.lr, e)) ||
	    (rc = ledger_data_until(c.lr, &out->data_until_ns, e)))
		goto out;
	c.end = q->to_ns < out->data_until_ns ? q->to_ns : out->data_until_ns;
	if ((rc = ledger_read_instances(c.lr, q->from_ns, q->to_ns, on_vm, &c, e)))
		goto out;
	if (q->tenant && !c.tenant_seen) {
		rc = err_set(e, -ESRCH, "tenant '%s' has no VMs in the ledger %s", q->tenant, q->ledger);
		goto out;
	}
	if (out->n_vms > 1)
		qsort(out->vms, out->n_vms, sizeof(*out->vms), cmp_vm);
	rc = 0;
out:
	ledger_reader_close(c.lr);
	if (rc)
		sla_report_release(out);
	return rc;
}

bool sla_budget_of(const struct sla_report *r, const struct sla_vm *v, const struct plan *p,
		   int64_t burn_ppm, struct sla_budget *out)
{
	if (v->cls < 0)
		return false;
	const struct plan_sla_class *c = &p->sla[v->cls];
	memset(out, 0, sizeof(*out));
	out->expected_ns = v->expected_ns;
	if (v->expected_at_end && r->to_ns > v->to_ns)
		out->expected_ns += r->to_ns - v->to_ns;
	out->budget_ns = (int64_t)((__int128)(1000000 - c->target_ppm) * out->expected_ns / 1000000);
	out->threshold_ns = (int64_t)((__int128)burn_ppm * out->budget_ns / 1000000);
	out->burning = v->down_ns > out->threshold_ns;
	if (!out->burning)
		return true;
	/* the incident in which the counted downtime passed the threshold */
	int64_t before = 0;
	for (size_t i = 0; i < v->n_incidents; i++) {
		const struct sla_incident *in = &v->incidents[i];
		if (before + in->counted_ns > out->threshold_ns) {
			int64_t from = in->start_ns > v->from_ns ? in->start_ns : v->from_ns;
			out->cross_ns = from + (out->threshold_ns - before) + 1;
			break;
		}
		before += in->counted_ns;
	}
	return true;
}

void sla_report_release(struct sla_report *r)
{
	for (size_t i = 0; i < r->n_vms; i++) {
		free(r->vms[i].incidents);
		free(r->vms[i].offs);
	}
	free(r->vms);
	r->vms = NULL;
	r->n_vms = 0;
}

/* a ppm figure as a percentage with 4 decimals */
char *sla_ppm_text(int64_t ppm, char *buf, size_t len)
{
	snprintf(buf, len, "%lld.%04lld", (long long)(ppm / 10000), (long long)(ppm % 10000));
	return buf;
}

char *sla_availability_text(const struct sla_vm *v, char *buf, size_t len)
{
	if (v->expected_ns == 0)
		return sla_ppm_text(1000000, buf, len);
	int64_t ppm = (int64_t)((__int128)(v->expected_ns - v->down_ns) * 1000000 / v->expected_ns);
	return sla_ppm_text(ppm, buf, len);
}

void sla_fleet_of(const struct sla_report *r, struct sla_fleet *out)
{
	memset(out, 0, sizeof(*out));
	out->all.cls = -1;
	for (size_t i = 0; i < r->n_vms; i++) {
		out->all.expected_ns += r->vms[i].expected_ns;
		out->all.down_ns += r->vms[i].down_ns;
		out->breached += r->vms[i].breached;
		out->credited += r->vms[i].credit_ppm > 0;
	}
}

char *sla_duration_text(int64_t ns, char *buf, size_t len)
{
	int64_t s = ns / NS_PER_SEC;
	snprintf(buf, len, "%lldh%02lldm%02llds", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
	return buf;
}

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

int sla_credit_lines(struct invoice *inv, const struct sla_report *r, const struct plan *p, struct tally_err *e)
{
	for (size_t i = 0; i < r->n_vms; i++) {
		const struct sla_vm *v = &r->vms[i];
		if (v->credit_ppm <= 0 || strcmp(v->tenant, inv->tenant))
			continue;
		/* the VM's charges, in millionths of a minor unit: its share of
		 * each usage line (amount x its quantity / the line's), exact */
		__int128 charges = 0, share;
		int64_t credit = 0;
		for (size_t d = 0; d < inv->n_details; d++) {
			const struct invoice_detail *x = &inv->details[d];
			const struct invoice_line *l = &inv->lines[x->line];
			if (strcmp(x->resource, v->uuid) || l->qty <= 0 || l->amount_minor < 0 || x->qty < 0)
				continue;
			struct money_u256 num;
			money_u256_mul((unsigned __int128)l->amount_minor * 1000000, (unsigned __int128)x->qty, &num);
			if (money_u256_round_wide(&num, (unsigned __int128)l->qty, MONEY_HALF_EVEN, &share) ||
			    __builtin_add_overflow(charges, share, &charges))
				return err_set(e, -ERANGE, "tenant '%s': the charges of %s cannot be represented",
					       inv->tenant, v->uuid);
		}
		struct money_u256 cn;
		money_u256_mul((unsigned __int128)charges, (unsigned __int128)v->credit_ppm, &cn);
		if (money_u256_round(&cn, false, (unsigned __int128)1000000 * 1000000, p->rounding, &credit))
			return err_set(e, -ERANGE, "tenant '%s': the SLA credit of %s cannot be represented", inv->tenant,
				       v->uuid);
		if (credit == 0)
			continue;
		struct invoice_line *l = invoice_add_line(inv);
		if (!l)
			return err_set(e, -ENOMEM, "out of memory");
		char av[24], pct[24], ch[48], a[48], d[32];
		int64_t chm = (int64_t)money_round_div(charges, 1000000, MONEY_HALF_EVEN);
		l->type = INV_CREDIT;
		l->group = "credits";
		l->meter = -1;
		l->from_ns = v->from_ns;
		l->to_ns = v->to_ns;
		l->amount_minor = -credit;
		money_format_price(v->credit_ppm * 100000, pct, sizeof(pct));   /* ppm -> % as nanos */
		int n = snprintf(l->description, sizeof(l->description), "SLA credit %s: %s%% of %s (%s%% available",
				 v->name[0] ? v->name : v->uuid, pct, money_format(chm, inv->minor_digits, ch, sizeof(ch)),
				 sla_availability_text(v, av, sizeof(av)));
		if (v->n_incidents && n > 0 && (size_t)n < sizeof(l->description))
			snprintf(l->description + n, sizeof(l->description) - (size_t)n, "; %s %s, %s%s)",
				 v->incidents[0].cause, time_format_iso(v->incidents[0].start_ns, a, sizeof(a)),
				 sla_duration_text(v->incidents[0].counted_ns, d, sizeof(d)),
				 v->n_incidents > 1 ? ", more in tally sla" : "");
		else if (n > 0 && (size_t)n < sizeof(l->description))
			snprintf(l->description + n, sizeof(l->description) - (size_t)n, ")");
	}
	return 0;
}
