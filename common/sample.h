/*
 * sample.h: the value types collectors hand to a sink: a sample, a change of
 * resource metadata, a lifecycle event.
 *
 * All three are plain values with fixed-size strings: the sink copies them,
 * and nobody keeps a pointer into a collector's memory.
 *
 * Invariants a collector keeps (docs/architecture.md, rules 1-4):
 * - resource is a stable id (domain UUID, "host:ifIndex"), never a name that
 *   can be reused; device (disk target+serial, MAC) tells series of one meter
 *   apart and is "" for whole-resource meters.
 * - time_ns is when the value was read, nanoseconds since the epoch, UTC.
 * - origin_ns is the start of the counter's current life when the collector
 *   saw it start (a domain that started or migrated in while the agent ran):
 *   the counter was zero then, and the aggregator counts usage from it
 *   (rule 3). 0 means "started before we watched": the first reading is only
 *   a baseline. A gauge with origin_ns held its first value since then. For a
 *   SAMPLE_DELTA, origin_ns is the start of the interval the delta covers.
 * - SAMPLE_F_LAST marks the final reading before the series' counters vanish
 *   (stop, shutdown, migrate out, unplug; rule 4). The series' next reading,
 *   if any, begins a new life.
 * - SAMPLE_F_CHECK marks a second, independent reading of a counter that
 *   another collector of the same agent bills (the cgroup collector beside
 *   libvirt): the aggregator compares it with the billed series over each
 *   interval (tally_source_divergence_ratio) and never bills it, so a VM's
 *   usage is never counted twice (docs/meters.md, "Two sources").
 */
#ifndef TALLY_SAMPLE_H
#define TALLY_SAMPLE_H

#include <stdint.h>

#include "meter.h"

#define TALLY_ID_MAX    64   /* resource ids and agent ids, with the NUL */
#define TALLY_DEV_MAX   48   /* device label, with the NUL */

#define SAMPLE_F_LAST   0x01u
#define SAMPLE_F_CHECK  0x02u

struct sample {
	int64_t time_ns;
	int64_t origin_ns;              /* see above; 0 = unknown */
	union {
		uint64_t counter;       /* SAMPLE_CUMULATIVE, SAMPLE_DELTA */
		double gauge;           /* SAMPLE_GAUGE */
	} v;
	uint16_t meter;                 /* enum meter_id */
	uint8_t kind;                   /* enum sample_kind */
	uint8_t flags;                  /* SAMPLE_F_* */
	char resource[TALLY_ID_MAX];
	char device[TALLY_DEV_MAX];
};

/* Sent when a resource is first seen and whenever one of its fields changes.
 * Empty strings are "unknown". labels is "key=value" pairs joined by ','
 * and sorted by key, so equal label sets compare equal as strings. */
struct resource_meta {
	int64_t time_ns;                /* valid from */
	char resource[TALLY_ID_MAX];
	char type[16];                  /* "instance", "interface" */
	char name[128];
	char tenant[64];
	char project[64];
	char user[64];
	char flavor[64];
	char labels[512];
};

/* A lifecycle edge of a resource, recorded in the ledger for SLA reports.
 * type is one of: started, stopped, shutdown, crashed, suspended, resumed,
 * migrated_in, migrated_out, rebooted, device_added, device_removed,
 * defined, undefined. reason is the source's detail ("destroyed",
 * "booted", "host-reset", "ioerror" for a suspension), or "". The
 * aggregator adds "silent" and "heard" (the two ends of a gap in a running
 * VM's readings longer than max_gap) itself. */
struct lifecycle_event {
	int64_t time_ns;
	char resource[TALLY_ID_MAX];
	char type[24];
	char reason[64];
};

#endif
