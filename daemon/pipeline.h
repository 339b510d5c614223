/*
 * pipeline.h: tallyd's pipeline, the one place that knows both the
 * collectors and the aggregator.
 *
 *   collectors --read--> scheduler --sink--> batcher --delivery--> aggregator
 *                                                                  -> ledger, RRD
 *   at each cycle's end: alert rules, commits, live snapshots, SLA probe
 *
 * pipeline_run() drives whatever outputs it is given; an output left NULL
 * is simply not produced. The batcher hands each batch to a delivery (a
 * pair of functions in pipeline.c): the aggregator in this process (the
 * all-in-one role), or the agent's spools (the agent role: agent.h, no
 * ledger opened, and at the end of a fast-forward period the run waits
 * until the aggregator has every batch); the aggregator role ingests what
 * agents send through the same agg_ingest: the roles differ by delivery,
 * not by pipeline.
 */
#ifndef TALLY_DAEMON_PIPELINE_H
#define TALLY_DAEMON_PIPELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "alerting.h"
#include "daemoncfg.h"

struct tally_err;
struct live_store;
struct alert_store;
struct ingest;
struct events;

/* What the pipeline drives besides the ledger and RRD. */
struct pipeline_outputs {
	/* snapshots of the live state for the exporters (aggregator/state.h):
	 * after every successful commit and, in real time, after every cycle */
	struct live_store *live;
	/* the committed alerts (aggregator/alerting.h), published after every
	 * commit; alerts are evaluated and kept in the ledger whenever the
	 * config has an `alerts:` section, published or not */
	struct alert_store *alerts;
	/* the input of the built-in SLABurn, asked after a commit at most once
	 * a minute of data time; NULL: no SLABurn */
	alert_sla_probe sla_probe;
	void *sla_probe_ctx;
	/* SIGHUP (reload.h): when *reload is set (a signal handler may set
	 * it), the config file is read again at the end of the running cycle
	 * and what may change is applied; http_reload (NULL: no listener)
	 * hands the listener its new tokens and plan. */
	volatile sig_atomic_t *reload;
	int (*http_reload)(void *ctx, const struct httpd_section *h, struct tally_err *e);
	void *http_reload_ctx;
	/* the aggregator role: the requests the listener queues (ingest.h);
	 * the pipeline answers every one of them before it returns */
	struct ingest *ingest;
	/* the all-in-one and aggregator roles: usage events sources POST
	 * (events.h), booked on the aggregator's ledger between its commits
	 * (while the scheduler waits for the next cycle, or after each round
	 * of ingest requests); answered 503 once the pipeline returns */
	struct events *events;
};

struct pipeline_summary {
	uint64_t cycles, batches, samples, commits, duplicate_batches, overruns;
	uint64_t resets, baselines, from_zero, dropped_old, invalid, rrd_errors;
	int64_t first_tick_ns, last_tick_ns;
	double wall_s;
	bool resumed;
	bool agent;                       /* the agent role: spooled is filled, not the ledger's counts */
	struct agent_summary spooled;
};

/* Run until *stop, the end of a fast-forward period, or an error. out may
 * be NULL (the ledger and RRD only). Returns 0 or the error (message in
 * e); -ENOSPC when the ledger's disk is full in fast-forward. */
int pipeline_run(struct daemon_config *c, const struct pipeline_outputs *out, volatile sig_atomic_t *stop,
		 struct pipeline_summary *sum, struct tally_err *e);

#endif
