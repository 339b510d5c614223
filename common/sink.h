/*
 * sink.h: where a collector puts what it read.
 *
 * A collector knows nothing of batches, ledgers or HTTP: it calls these
 * functions and the daemon decides where the values go (the aggregator
 * in-process, or the agent's spool). Tests pass a sink that records.
 *
 * agent names the host the reading comes from; NULL means this host's own
 * agent id. Only a collector that speaks for several hosts (the simulated
 * fleet, an SNMP poller) passes one. The sink copies everything it is given.
 * Each function returns 0, or a negative errno (-ENOMEM, -ENOSPC when a
 * bounded queue is full: the caller counts it as a dropped reading).
 */
#ifndef TALLY_SINK_H
#define TALLY_SINK_H

#include "sample.h"

struct sink {
	void *ctx;
	int (*sample)(void *ctx, const char *agent, const struct sample *s);
	int (*meta)(void *ctx, const char *agent, const struct resource_meta *m);
	int (*event)(void *ctx, const char *agent, const struct lifecycle_event *ev);
};

#endif
