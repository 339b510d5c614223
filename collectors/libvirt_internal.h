/*
 * libvirt_internal.h: the libvirt collector's test seams and event
 * descriptions; its pure parsers have their own files (libvirt_xml.h for
 * the domain XML, mapping.h for the tenant mapping file).
 */
#ifndef TALLY_LIBVIRT_INTERNAL_H
#define TALLY_LIBVIRT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <libvirt/libvirt.h>

#include "libvirt_xml.h"
#include "mapping.h"
#include "sample.h"
#include "sink.h"

struct tally_err;

#define LV_EVENT_QUEUE 4096   /* lifecycle events between two reads; more are dropped and counted */

/* Lifecycle events. libvirt's lifecycle events keep their own numbers
 * (VIR_DOMAIN_EVENT_STARTED ... ); the other events the collector listens
 * to are numbered from LV_EV_REBOOT on. What an event means for the
 * collector is its edge; what the ledger records is its type and reason
 * (struct lifecycle_event, docs/libvirt.md lists them). */
enum { LV_EV_REBOOT = 100, LV_EV_DEVICE_REMOVED, LV_EV_BALLOON, LV_EV_DEVICE_ADDED };

enum lv_edge {
	LV_EDGE_NONE = 0,    /* recorded only (shutdown, defined) */
	LV_EDGE_START,       /* a new process: its counters start from zero */
	LV_EDGE_STOP,        /* the process ended: every series takes its final reading */
	LV_EDGE_PAUSE,       /* not running from now on (suspended, panicked) */
	LV_EDGE_RESUME,      /* running from now on */
	LV_EDGE_REBOOT,      /* the guest rebooted in the same process */
	LV_EDGE_BALLOON,     /* the balloon changed size: the memory gauge */
	LV_EDGE_DEVICE,      /* a device was added or removed: the devices and disk sizes are read again */
};

struct lv_event_desc {
	const char *type;    /* lifecycle_event.type, NULL: no event is recorded */
	const char *reason;  /* lifecycle_event.reason from the detail, "" when none */
	enum lv_edge edge;
};

/* What libvirt's event (VIR_DOMAIN_EVENT_* or LV_EV_*) with this detail is.
 * Returns 0, or -ENOENT for an event the collector does not use. */
int lv_event_describe(int event, int detail, struct lv_event_desc *out);

/* slow_every's default for a collection interval: the cycles in two
 * minutes of data time, at least 1 (docs/config.md). */
uint64_t lv_slow_every_default(int64_t interval_ns);

/* Test seam: how a cycle reads (lv_read chooses it from the cycle's
 * number, slow_every, block_every and disk_counters), and the answers of
 * its second calls (virDomainListGetStats for some domains), which the
 * collector uses only where it asked for them. */
struct lv_test_cycle {
	int block_main;      /* the bulk call asked for the block group */
	int disk_calls;      /* disk counters by per-disk calls (virDomainBlockStats) and the second call */
	int vcpus_by_info;   /* vCPUs from virDomainGetInfo */
	virDomainStatsRecordPtr *xcpu, *xblk;  /* per record, NULL or its answer to the cpu-total / block call */
	unsigned char *asked;  /* out, per record: bit 0 cpu-total asked for it, bit 1 the block group */
};

/* Test seam: one cycle of the collector `state` (from libvirt_collector's
 * configure and init) with these bulk-answer records in place of the
 * virConnectGetAllDomainStats() call, so tests can hand it the partial
 * answers a real host gives (a domain being destroyed answers without its
 * block and balloon groups). c: the cycle's way of reading (NULL: the
 * records have every group the cycle asked for, no second calls, no
 * per-disk calls). Queued events are drained first, as in a read. The
 * records stay the caller's. Returns 0, or -ENOMEM. */
int lv_read_records(void *state, virDomainStatsRecordPtr *recs, int n, struct lv_test_cycle *c, int64_t now_ns,
		    const struct sink *sink);

/* Test seam: queue libvirt's event (VIR_DOMAIN_EVENT_* or LV_EV_*) for
 * dom as libvirt's event thread would, for events a test driver cannot
 * make (a device added). */
void lv_test_event(void *state, virDomainPtr dom, int event, int detail);

/* Test seam: a hypervisor on this host whose /sys/class/net and
 * /sys/fs/cgroup are at these roots (trees a test made), and whether the
 * records lv_read_records() is given next stand for a bulk call that asked
 * for the cpu-total group (1) or not (0: cpu time from the cgroups). */
void lv_test_host(void *state, const char *net_root, const char *cgroup_root, int cpu_total);

/* Test seam: the per-disk calls over libvirt's protocol go to the daemon
 * at socket_path (a test's), whatever the URI. */
void lv_test_rpc(void *state, const char *socket_path);

/* Test seam: the lifecycle events queued by libvirt's event thread and not
 * yet drained by a read, so tests wait for events instead of sleeping. */
size_t lv_events_queued(void *state);

#endif
