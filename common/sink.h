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

/* What a read's sink calls came to: the first refusal (a negative errno)
 * and how many there were. A collector goes on with its other readings
 * when one is refused (the batcher counts each as dropped) and returns the
 * first error from read() with sink_status_err(), so the scheduler counts
 * and says it: no refusal goes unseen, none is ORed into another. */
struct sink_status {
	int first;                   /* 0, or the first refusal's -errno */
	unsigned long refused;
};

/* Note rc (a sink call's return); returns it. */
static inline int sink_note(struct sink_status *st, int rc)
{
	if (rc < 0) {
		if (!st->first)
			st->first = rc;
		st->refused++;
	}
	return rc;
}

struct tally_err;
/* 0 when nothing was refused; else st->first, with "who: N readings
 * refused by the sink (why)" in e. */
int sink_status_err(const struct sink_status *st, const char *who, struct tally_err *e);

#endif
