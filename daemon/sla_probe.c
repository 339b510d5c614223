/*
 * sla_probe.c: what the SLABurn alert is told of each VM (sla_probe.h): the
 * month so far through sla_compute, the budget through sla_budget_of.
 */
#include "sla_probe.h"
#include "err.h"
#include "plan.h"
#include "sla.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sla_probe_burn(void *ctx, int64_t t_ns, int64_t burn_ppm, struct alert_sla_set *out,
		   struct tally_err *e)
{
	const struct sla_probe_ctx *c = ctx;
	struct plan p;
	struct plan_errors errs;
	struct sla_report r;
	int rc;

	memset(out, 0, sizeof(*out));
	time_month_of(t_ns, &out->from_ns, &out->to_ns);
	if (plan_load(c->plan, &p, &errs))
		return err_set(e, -EINVAL, "%s", errs.n ? errs.msg[0] : "the plan does not load");
	if (!p.has_sla) {
		plan_release(&p);
		return 0;
	}
	struct sla_query q = { .ledger = c->ledger, .from_ns = out->from_ns, .to_ns = out->to_ns };
	if ((rc = sla_compute(&q, &p, &r, e))) {
		plan_release(&p);
		return rc;
	}
	out->v = calloc(r.n_vms ? r.n_vms : 1, sizeof(*out->v));
	if (!out->v) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r.n_vms; i++) {
		const struct sla_vm *v = &r.vms[i];
		struct sla_budget b;
		if (!sla_budget_of(&r, v, &p, burn_ppm, &b))
			continue;
		struct alert_sla *a = &out->v[out->n++];
		str_copy(a->uuid, v->uuid, sizeof(a->uuid));
		str_copy(a->name, v->name, sizeof(a->name));
		str_copy(a->tenant, v->tenant, sizeof(a->tenant));
		str_copy(a->host, v->host, sizeof(a->host));
		str_copy(a->cls, p.sla[v->cls].name, sizeof(a->cls));
		a->burning = b.burning;
		a->since_ns = b.cross_ns;
		a->used = b.budget_ns ? (double)v->down_ns / (double)b.budget_ns : (v->down_ns ? 1 : 0);
		char av[16], tg[16];
		snprintf(a->summary, sizeof(a->summary),
			 "availability %s %% this month so far, target %s %% (class %s): downtime %.0f s"
			 " of a %.0f s error budget for the month",
			 sla_availability_text(v, av, sizeof(av)), sla_ppm_text(p.sla[v->cls].target_ppm, tg, sizeof(tg)),
			 a->cls, (double)v->down_ns / 1e9, (double)b.budget_ns / 1e9);
	}
	rc = 0;
out:
	if (rc)
		alert_sla_set_release(out);
	sla_report_release(&r);
	plan_release(&p);
	return rc;
}
