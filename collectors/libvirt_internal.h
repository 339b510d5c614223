/*
 * libvirt_internal.h: the pure parts of the libvirt collector, exposed for
 * tests: reading a domain's XML description into what the collector needs.
 */
#ifndef TALLY_LIBVIRT_INTERNAL_H
#define TALLY_LIBVIRT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <libvirt/libvirt.h>

#include "sample.h"
#include "sink.h"

struct tally_err;

#define LV_MAX_DEVS 32
#define LV_EVENT_QUEUE 4096   /* lifecycle events between two reads; more are dropped and counted */

struct lv_disk {
	char target[32];             /* "vda" */
	char serial[64];             /* "" when none */
	char source[256];            /* file, dev or volume name; "" when none */
	char label[TALLY_DEV_MAX];   /* the device label series use (lv_disk_label) */
};

struct lv_nic {
	char mac[18];                /* "52:54:00:12:34:56", the NIC's identity */
	char target[32];             /* "vnet3", "" when not running */
	char type[16];               /* "bridge", "ethernet", "network", "direct" */
};

struct lv_domain_info {
	char uuid[37];
	char name[128];
	struct lv_disk disks[LV_MAX_DEVS];
	int n_disks;
	struct lv_nic nics[LV_MAX_DEVS];
	int n_nics;
	bool has_nova;               /* Nova's <nova:instance> metadata was there */
	char nova_name[128];
	char project[64];            /* nova:owner/nova:project uuid = the tenant */
	char user[64];
	char flavor[64];
	int skipped_devs;            /* disks or NICs we could not identify */
};

/* The tenant mapping file (collectors.libvirt.mapping): for domains without
 * Nova metadata, a list of rules matched in order, first match wins:
 *   - uuid: 6b0f3c2a-0000-4000-8000-000000000001   # exact
 *     tenant: acme
 *   - name: "web-*"                                 # shell pattern on the name
 *     tenant: web-team
 *     flavor: m1.small
 *     labels: {region: eu-west, tier: gold}
 */
struct lv_rule {
	char uuid[37];               /* "" = match by name */
	char name[128];              /* fnmatch pattern */
	char tenant[64], user[64], flavor[64];
	char labels[400];            /* "k=v,k=v", sorted by key */
};

struct lv_mapping {
	struct lv_rule *rules;
	size_t n;
};

/* Load and check a mapping file: errors name file:line:col. 0 or -errno. */
int lv_mapping_load(const char *path, struct lv_mapping *m, struct tally_err *e);
void lv_mapping_release(struct lv_mapping *m);
/* The first rule for (uuid, name), or NULL. */
const struct lv_rule *lv_mapping_match(const struct lv_mapping *m, const char *uuid, const char *name);

/* Lifecycle events. libvirt's lifecycle events keep their own numbers
 * (VIR_DOMAIN_EVENT_STARTED ... ); the other events the collector listens
 * to are numbered from LV_EV_REBOOT on. What an event means for the
 * collector is its edge; what the ledger records is its type and reason
 * (struct lifecycle_event, docs/libvirt.md lists them). */
enum { LV_EV_REBOOT = 100, LV_EV_DEVICE_REMOVED, LV_EV_BALLOON };

enum lv_edge {
	LV_EDGE_NONE = 0,    /* recorded only (shutdown, defined, device events) */
	LV_EDGE_START,       /* a new process: its counters start from zero */
	LV_EDGE_STOP,        /* the process ended: every series takes its final reading */
	LV_EDGE_PAUSE,       /* not running from now on (suspended, panicked) */
	LV_EDGE_RESUME,      /* running from now on */
	LV_EDGE_REBOOT,      /* the guest rebooted in the same process */
	LV_EDGE_BALLOON,     /* the balloon changed size: the memory gauge */
};

struct lv_event_desc {
	const char *type;    /* lifecycle_event.type, NULL: no event is recorded */
	const char *reason;  /* lifecycle_event.reason from the detail, "" when none */
	enum lv_edge edge;
};

/* What libvirt's event (VIR_DOMAIN_EVENT_* or LV_EV_*) with this detail is.
 * Returns 0, or -ENOENT for an event the collector does not use. */
int lv_event_describe(int event, int detail, struct lv_event_desc *out);

/* Parse a domain XML (virDomainGetXMLDesc) into info. Returns 0, or
 * -EINVAL with a message for XML that is not a domain description. */
int lv_parse_domain_xml(const char *xml, size_t len, struct lv_domain_info *info,
			struct tally_err *e);

/* Test seam: one cycle of the collector `state` (from libvirt_collector's
 * configure and init) with these bulk-answer records in place of the
 * virConnectGetAllDomainStats() call, so tests can hand it the partial
 * answers a real host gives (a domain being destroyed answers without its
 * block and balloon groups). Queued events are drained first, as in a
 * read. The records stay the caller's. Returns 0. */
int lv_read_records(void *state, virDomainStatsRecordPtr *recs, int n, int64_t now_ns, const struct sink *sink);

/* Test seam: a hypervisor on this host whose /sys/class/net and
 * /sys/fs/cgroup are at these roots (trees a test made), and whether the
 * records lv_read_records() is given next stand for a bulk call that asked
 * for the cpu-total group (1) or not (0: cpu time from the cgroups). */
void lv_test_host(void *state, const char *net_root, const char *cgroup_root, int cpu_total);

/* Test seam: the lifecycle events queued by libvirt's event thread and not
 * yet drained by a read, so tests wait for events instead of sleeping. */
size_t lv_events_queued(void *state);

#endif
