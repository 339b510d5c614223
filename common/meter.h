/*
 * meter.h: the meter table (docs/meters.md), the one place meter names, kinds and
 * units are defined.
 *
 * A meter is referred to in memory by its index in the table (uint16_t) and
 * in the ledger, on the wire and on the command line by its name. Units are
 * base units (ns, bytes, requests, packets); the human unit is what
 * `tally usage` prints: quantity / human_div in human_unit. For a gauge the
 * ledger holds the time integral (unit-seconds), so the human unit of
 * `memory` is GiB-hours = bytes * seconds / (2^30 * 3600).
 */
#ifndef TALLY_METER_H
#define TALLY_METER_H

#include <stdint.h>

enum sample_kind {
	SAMPLE_CUMULATIVE = 0, /* raw counter as read: only the aggregator takes deltas */
	SAMPLE_GAUGE = 1,      /* level, integrated over time */
	SAMPLE_DELTA = 2,      /* usage over [origin_ns, time_ns] */
};

enum meter_id {
	M_CPU = 0,
	M_VCPUS,
	M_MEMORY,
	M_MEMORY_USAGE,
	M_MEMORY_RESIDENT,
	M_DISK_READ_BYTES,
	M_DISK_WRITE_BYTES,
	M_DISK_READ_REQUESTS,
	M_DISK_WRITE_REQUESTS,
	M_DISK_CAPACITY,
	M_DISK_ALLOCATION,
	M_NET_IN_BYTES,
	M_NET_OUT_BYTES,
	M_NET_IN_PACKETS,
	M_NET_OUT_PACKETS,
	M_INSTANCE,
	M_IF_IN_BYTES,
	M_IF_OUT_BYTES,
	M_IF_IN_PACKETS,
	M_IF_OUT_PACKETS,
	M_IF_IN_BYTES32,
	M_IF_OUT_BYTES32,
	M_IF_IN_ERRORS,
	M_IF_OUT_ERRORS,
	M_IF_IN_DISCARDS,
	M_IF_OUT_DISCARDS,
	M_IF_UP,
	M_IF_SPEED,
	M_HW_CPU_UTIL,
	M_HW_MEMORY_TOTAL,
	M_HW_MEMORY_USED,
	M_HW_DISK_TOTAL,
	M_HW_DISK_USED,
	/* pressure stall information (cgroup collector): of a VM or a host */
	M_PSI_CPU_SOME,
	M_PSI_CPU_FULL,
	M_PSI_MEMORY_SOME,
	M_PSI_MEMORY_FULL,
	M_PSI_IO_SOME,
	M_PSI_IO_FULL,
	/* the hypervisor host itself, a resource of type "host" (docs/meters.md) */
	M_HOST_CPU,
	M_HOST_CPU_IDLE,
	M_HOST_CPU_STEAL,
	M_HOST_MEMORY,
	M_HOST_MEMORY_AVAILABLE,
	M_HOST_DISK_READ_BYTES,
	M_HOST_DISK_WRITE_BYTES,
	M_HOST_DISK_READ_REQUESTS,
	M_HOST_DISK_WRITE_REQUESTS,
	M_HOST_NET_IN_BYTES,
	M_HOST_NET_OUT_BYTES,
	M_HOST_NET_IN_PACKETS,
	M_HOST_NET_OUT_PACKETS,
	/* traffic classes (collectors/pcap.c): per class, in the order of
	 * enum pcap_class, the four counters in the order of network.* above */
	M_NETC_FIRST,
	M_NETC_LAST = M_NETC_FIRST + 5 * 4 - 1,
	/* the capture's own counters, per capture interface */
	M_PCAP_RECEIVED,
	M_PCAP_DROPPED,
	M_PCAP_IFDROPPED,
	M_PCAP_UNATTRIBUTED,
	METER_COUNT
};

struct meter_def {
	const char *name;       /* Ceilometer name, e.g. "disk.device.read.bytes" */
	enum sample_kind kind;  /* kind collectors send */
	const char *unit;       /* base unit of a sample value */
	const char *human_unit; /* unit `tally usage` prints */
	double human_div;       /* ledger quantity / human_div = human quantity */
	const char *rrd_group;  /* RRD file the meter lives in (schemas/rrd.md) */
	const char *rrd_ds;     /* data source name inside it (<= 19 chars) */
	const char *title;      /* what a customer calls it, for invoices ("Outbound traffic") */
};

extern const struct meter_def meter_table[METER_COUNT];

/* Index of a built-in meter by name, or -1. Collectors, the aggregator
 * and the exporters know only these (index < METER_COUNT). */
int meter_lookup(const char *name);

/* Custom meters (docs/meters.md, "Custom meters"): declared in the
 * config's `meters:` section (metercfg.h), without recompiling, for usage
 * that comes from outside the collectors (tally import: object storage, a
 * floating IP, licences, support). They take the indices from
 * METER_COUNT on, in the order declared, in a process-wide registry that
 * is filled once at start (before any thread reads it) and never shrinks
 * while the process runs. Billing and the importer reach every meter
 * through meter_get() and meter_find(); a custom meter has no RRD group
 * (rrd_group NULL) and never appears in a sample from a collector. */
#define METER_CUSTOM_MAX 256

/* The meter at index m (built-in or custom), or NULL. */
const struct meter_def *meter_get(int m);
/* Index of any meter, built-in or custom, by name, or -1. */
int meter_find(const char *name);
/* Built-in and custom meters: the indices are 0 .. meter_count() - 1. */
int meter_count(void);
/* Add a custom meter (its strings are copied). Returns its index, or
 * -EEXIST (a meter of that name exists), -ENOSPC (METER_CUSTOM_MAX),
 * -ENOMEM. */
int meter_define(const char *name, enum sample_kind kind, const char *unit, const char *title);
/* Forget every custom meter (tests; a process that reads another config). */
void meter_custom_clear(void);

/* Is meter a gauge of what a tenant was given (vCPUs, memory, disk
 * capacity) or whether it ran (instance)? Billed by time (docs/architecture.md
 * rule 5): a change of one must never be lost, while an unchanged value is
 * implied by the previous one. The aggregator commits such a change at once;
 * the agent's spool keeps every change when it thins readings. */
int meter_allocation_gauge(unsigned meter);

#endif
