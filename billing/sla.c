/*
 * sla.c: availability per VM from the ledger's lifecycle events (sla.h,
 * docs/sla.md): a pure computation. The report is shown by sla_render.c
 * (text, CSV, JSON) and sla_html.c; credit lines are the invoice's
 * (invoice_sla_credits, invoice.c).
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
#include "err.h"
#include "reader.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
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
	/* a silence not yet heard of: its start (-1: none), and the time in
	 * the window it has overlapped a running state so far. Only that is
	 * downtime: a silence over a crash or an I/O-error pause is down
	 * once, over a pause on request not at all (not expected). */
	int64_t silent_at, silent_run;
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

/* The part of [since, t) in the window that runs while silent. */
static int64_t silent_running(const struct walk *w, int64_t t)
{
	if (w->st != ST_RUN || w->silent_at < 0)
		return 0;
	return overlap(w->since > w->silent_at ? w->since : w->silent_at, t, w->lo, w->hi);
}

/* Leave the current state at t: account for [since, t). */
static int close_stretch(struct walk *w, int64_t t)
{
	w->silent_run += silent_running(w, t);
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

/* One event. */
static int on_event(struct walk *w, const struct plan *p, int64_t t, const char *type, const char *reason)
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
		if (!strcmp(reason, "ioerror"))
			return set_state(w, t, ST_DOWN, "ioerror", reason);
		/* a pause does not end downtime: only a start, a resume, a stop
		 * or an undefine does (a VM that is not running cannot be
		 * paused on request) */
		return w->st == ST_DOWN ? 0 : set_state(w, t, ST_OFF, type, reason);
	case LIFECYCLE_SILENT:
		w->silent_at = t;
		w->silent_run = 0;
		return 0;
	case LIFECYCLE_HEARD:
		if (w->silent_at >= 0 && t - w->silent_at > p->sla_grace_ns) {
			/* listed with its real ends; counted only where it ran */
			int64_t run = w->silent_run + silent_running(w, t);
			size_t n = w->vm->n_incidents;
			if (run > 0 && !(rc = add_stretch(w, &w->vm->incidents, &w->vm->n_incidents, &w->cap,
							   w->silent_at, t, "silent", reason)) &&
			    w->vm->n_incidents > n) {
				w->vm->incidents[n].counted_ns = run;
				w->vm->down_ns += run;
			}
		}
		w->silent_at = -1;
		w->silent_run = 0;
		return rc;
	default:
		return 0; /* rebooted, migrated_out, defined, device events: no change */
	}
}

static int cmp_incident(const void *a, const void *b)
{
	const struct sla_incident *x = a, *y = b;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	if (x->end_ns != y->end_ns)
		return x->end_ns < y->end_ns ? -1 : 1;
	return strcmp(x->cause, y->cause);
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
	struct tally_err *e;
};

static int on_vm_event(void *ctx, int64_t t_ns, const char *type, const char *reason)
{
	struct compute *c = ctx;
	return on_event(c->w, c->p, t_ns, type, reason);
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
			  .since = first, .silent_at = -1 };
	v->from_ns = w.lo;
	v->to_ns = w.hi > w.lo ? w.hi : w.lo;
	c->w = &w;
	if ((rc = ledger_read_events(c->lr, row->id, on_vm_event, c, e)))
		goto fail;
	/* gone quiet while it should run, and not heard of since: silent
	 * from its last reading (or the recorded start of the silence). The
	 * silence lasts to the end of the data, not of the period: one that
	 * begins just before the period ends and goes on is longer than the
	 * grace in both periods, and each counts its part of it. */
	if (w.st == ST_RUN) {
		int64_t s0 = w.silent_at >= 0 ? w.silent_at : last;
		int64_t data_end = out->data_until_ns;
		if (s0 < w.since)
			s0 = w.since;
		if (s0 < end && data_end - s0 > c->p->sla_grace_ns &&
		    set_state(&w, s0, ST_DOWN, "silent", "no readings since")) {
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
	/* in time order: a silence is listed when it is heard, after what
	 * happened inside it, and the invoice's first incident and SLABurn's
	 * crossing (sla_budget_of) walk them in order */
	if (v->n_incidents > 1)
		qsort(v->incidents, v->n_incidents, sizeof(*v->incidents), cmp_incident);
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

