/*
 * selfmetric.h: one series of a collector's own figures for /metrics (an
 * SNMP poller's per-target timeouts, libvirt's calls and their errors).
 *
 * Collectors fill it through collector_ops.metrics() (collectors/
 * collector.h); the aggregator's live state copies it into its snapshots
 * and the exporters render it. It lives here, below all three, so the
 * aggregator and the exporters need not include collectors/.
 */
#ifndef TALLY_SELFMETRIC_H
#define TALLY_SELFMETRIC_H

#include <stdbool.h>

/* name and help are string literals (they outlive the collector: a
 * snapshot keeps the pointers); labels are "key=value" pairs joined by ','
 * with values free of ',', '=' and '"' (the exporter escapes nothing
 * else), "" for none. A counter's name has no _total: the exporter adds
 * it. */
struct collector_metric {
	const char *name;        /* "tally_snmp_timeouts": tally_<collector>_..., base units */
	const char *help;
	bool counter;
	char labels[160];
	double value;
};

#endif
