/*
 * sla.h: availability of every VM in a period, from the lifecycle events in
 * the ledger, against the SLA classes of the rate plan (docs/sla.md).
 *
 * A VM is expected to run from its first sight on, except while it is
 * stopped or paused because someone asked (a stop, a guest shutdown, a
 * destroy, a save, a user pause, an undefine). Downtime is expected time in
 * which it did not run:
 *   crashed   from a crash (or a stop the hypervisor calls failed) until it
 *             is started again or someone stops or undefines it;
 *   ioerror   paused by an I/O error, until resumed;
 *   silent    nothing heard of it (no reading) for longer than the plan's
 *             grace while it should run: the gap the aggregator recorded,
 *             or from its last reading to the end of the data when it went
 *             silent for good.
 * availability = (expected - downtime) / expected, exactly, over the part of
 * the period the VM existed and the ledger has data for; a VM expected for
 * no time at all is 100 %. Its class is the first whose selector matches
 * its labels; the credit is that of the lowest tier whose 'below' the
 * availability is strictly under.
 *
 * A struct sla_report owns its arrays; sla_report_release() frees them.
 */
#ifndef TALLY_SLA_H
#define TALLY_SLA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "plan.h"

struct tally_err;

struct sla_incident {
	int64_t start_ns, end_ns;    /* as it happened; end INT64_MAX: still going */
	int64_t counted_ns;          /* the part inside the period (and the data) */
	char cause[16];              /* "crashed", "failed", "ioerror", "silent" */
	char detail[64];             /* the event's reason */
};

struct sla_vm {
	char uuid[64], name[128], tenant[64], host[64];
	int cls;                     /* index into plan->sla, -1: no class */
	int64_t from_ns, to_ns;      /* the part of the period measured */
	int64_t expected_ns, down_ns;
	int64_t credit_ppm;          /* 0: none */
	bool breached;               /* below the class's target */
	bool expected_at_end;        /* running or down at the end of the data (not off) */
	struct sla_incident *incidents;
	size_t n_incidents;
	/* stretches not expected to run (stopped or paused on request), with
	 * the event that began them as cause ("stopped", "shutdown",
	 * "suspended") and its reason as detail ("destroyed", "host",
	 * "paused"); counted_ns is their part in the period. Not downtime. */
	struct sla_incident *offs;
	size_t n_offs;
};

struct sla_report {
	int64_t from_ns, to_ns, data_until_ns;
	struct sla_vm *vms;          /* sorted by tenant, name, uuid */
	size_t n_vms;
};

struct sla_query {
	const char *ledger;
	int64_t from_ns, to_ns;
	const char *tenant;          /* NULL: all */
};

/* Returns 0; -ESRCH for an unknown tenant; ledger errors; message in e. */
int sla_compute(const struct sla_query *q, const struct plan *p, struct sla_report *out, struct tally_err *e);
void sla_report_release(struct sla_report *r);

/* a share in parts per million as a percentage with 4 decimals: "99.9500" */
char *sla_ppm_text(int64_t ppm, char *buf, size_t len);

/* availability as a percentage with 4 decimals, rounded down (never shown
 * better than it was): "99.9832". */
char *sla_availability_text(const struct sla_vm *v, char *buf, size_t len);


/* The error budget of v for the whole period (docs/sla.md, "Burn"): its
 * expected time projected to the period's end as if nothing changed after
 * the data (a running or down VM stays expected, an off one stays off),
 * times (1 - target), rounded down to the nanosecond. It is burning when
 * its downtime is more than burn_ppm / 10^6 of that budget; cross_ns is
 * the instant its downtime passed it (the first nanosecond over), found in
 * its incidents. At the period's end, burn_ppm = 10^6 burning is exactly
 * sla_vm.breached (same expected time). */
struct sla_budget {
	int64_t expected_ns;         /* projected to the period's end */
	int64_t budget_ns;
	int64_t threshold_ns;        /* burning once down_ns > this */
	bool burning;
	int64_t cross_ns;            /* burning: when down_ns passed threshold_ns */
};

/* Returns false (out untouched) for a VM without a class. */
bool sla_budget_of(const struct sla_report *r, const struct sla_vm *v, const struct plan *p,
		   int64_t burn_ppm, struct sla_budget *out);

/* The fleet summary: all.expected_ns and all.down_ns are the sums over
 * the VMs (sla_availability_text(&all) the fleet's availability). */
struct sla_fleet {
	struct sla_vm all;
	size_t breached, credited;   /* VMs below target, VMs with a credit */
};
void sla_fleet_of(const struct sla_report *r, struct sla_fleet *out);

/* "1h02m03s" (whole seconds, rounded down) */
char *sla_duration_text(int64_t ns, char *buf, size_t len);

enum sla_format { SLA_TEXT, SLA_CSV, SLA_JSON, SLA_HTML };
/* The report in fmt; HTML is one printable page (sla_html.c). 0 or -EIO. */
int sla_render(FILE *f, const struct sla_report *r, const struct plan *p, enum sla_format fmt);
int sla_render_html(FILE *f, const struct sla_report *r, const struct plan *p);

#endif
