/*
 * sla_probe.h: the input of the SLABurn alert (aggregator/alerting.h), made
 * by the same computation as `tally sla` and the invoices' credits
 * (sla_compute, sla_budget_of), so the pager and the invoice never disagree.
 */
#ifndef TALLY_DAEMON_SLA_PROBE_H
#define TALLY_DAEMON_SLA_PROBE_H

#include <stdint.h>

#include "alerting.h"

struct sla_probe_ctx {
	const char *ledger;          /* the ledger tallyd commits to */
	const char *plan;            /* the rate plan file, read at every probe */
};

/* An alert_sla_probe: ctx is a struct sla_probe_ctx. For the month (UTC)
 * that holds t_ns, one entry per VM with an SLA class; a plan without an
 * `sla` section gives none. Returns 0, or a negative errno with a message
 * in e (the plan does not load, the ledger cannot be read). */
int sla_probe_burn(void *ctx, int64_t t_ns, int64_t burn_ppm, struct alert_sla_set *out,
		   struct tally_err *e);

#endif
