/*
 * libvirt_state.h: the libvirt collector's state, shared by its files:
 * libvirt.c (configuration, events, the domains and their readings, the
 * cycle), libvirt_calls.c (the calls a cycle makes besides the library's
 * bulk call: that call over libvirt's protocol, the per-disk and info
 * calls, the second calls) and libvirt_cgroup.c (cpu time from the
 * domains' cgroups). Nothing outside the collector includes it; its test
 * seams are libvirt_internal.h.
 */
#ifndef TALLY_LIBVIRT_STATE_H
#define TALLY_LIBVIRT_STATE_H

#include <pthread.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "libvirt_internal.h"
#include "libvirt_rpc.h"
#include "log.h"
#include "mapping.h"
#include "sample.h"
#include "sink.h"

/* Per NIC slot (index in the XML's NIC list) and counter (rx/tx
 * bytes/pkts): what put_nic() needs to tell a tap that went on counting. */
struct lv_nic_slot {
	char mac[18];                /* the NIC these counters are of */
	int ifindex;                 /* its host device's ifindex when last looked (0: unknown) */
	int64_t ifindex_life;        /* origin_ns of the life ifindex was looked at for */
	int8_t looked;               /* ifindex was looked at (for ifindex_life) */
	int8_t same_dev;             /* this life's device is the last life's: 1, 0, -1 unknown */
	struct lv_nic_ctr {
		uint64_t prev;       /* the last value read, in any life */
		int64_t life;        /* origin_ns of the life `carry` was decided for */
		uint8_t have, carry; /* carry: the counter went on across the restart */
	} ctr[4];
};

/* One domain. Its devices are heap arrays of exactly the XML's length (a
 * host's thousand domains would otherwise carry LV_MAX_DEVS of each). */
struct lv_dom {
	char uuid[37];
	struct lv_disk *disks;       /* n_disks, from the XML */
	struct lv_disk_size {        /* parallel to disks */
		uint64_t capacity, allocation;  /* bytes, last read */
		uint8_t have;
	} *sizes;
	int n_disks;
	struct lv_nic *nics;         /* n_nics, from the XML */
	int n_nics;
	struct lv_nic_slot *slots;   /* n_slots >= n_nics: never shrinks, so a NIC that
					comes back in its slot finds its counters */
	int n_slots;
	struct resource_meta sent;   /* last metadata sent */
	int have_info;
	int seen_cycle;              /* last cycle it was read */
	int64_t first_seen_ns;
	int64_t origin_ns;           /* counted from zero since (0: baseline) */
	int origin_by_event;         /* origin_ns came from a started event */
	double mem_resident, mem_usage;   /* bytes, last memory stats; < 0 = not reported */
	int have_memstats;
	/* The last reading of every series of the current life, kept per
	 * series: a read that did not return a group (a NOWAIT answer for a
	 * domain in a job, or being destroyed, lacks block and balloon) leaves
	 * that group's entries as they were, so the stop's final reading ends
	 * every series the life had. Emptied by the final reading. */
	struct lv_last {
		int64_t time_ns, origin_ns;      /* a sample without its resource (uuid) */
		uint64_t bits;                   /* sample.v, as stored */
		uint16_t meter;
		uint8_t kind, flags;
		char device[TALLY_DEV_MAX];
	} *last;
	int n_last, cap_last;
	int last_cur;                /* where the next put's entry is expected (same order each read) */
	int ev_running;              /* running by the lifecycle events: 1, 0, -1 unknown */
	int disagree;                /* a read saw another state than the events said, once */
	int64_t last_reboot_ns;      /* to fold the 2-3 reboot events of one reboot */
	uint64_t last_cpu;           /* ns, the last cpu time read */
	unsigned int dom_id;         /* the domain id (one QEMU process) it was read from */
	int have_cpu;
	unsigned int origin_id;      /* the process origin_ns is the start of (0: none known) */
	int64_t stop_ns;             /* the last stop's time (its final reading) */
	int cg_fd;                   /* its cgroup's cpu time file, -1: none open */
	unsigned int cg_id;          /* the domain id (process) cg_fd is of, or was looked for */
	unsigned int cg_ok_id;       /* the process whose cgroup agreed with libvirt's cpu.time (0: none) */
	uint8_t blk_busy;            /* a per-disk call waited for its job: the NOWAIT block group until a slow
					cycle's bulk answer has it again */
	uint8_t want_sizes;          /* its disks' sizes are not read yet (first sight, a new process, a
					device event): the block group at the next cycle */
	uint8_t xml_stale;           /* a new process or a device event: its XML is read again next cycle */
	uint8_t cg_v1;               /* cg_fd is cpuacct.usage (ns), else cpu.stat (usage_usec) */
	uint64_t xml_hash;           /* of the XML info was parsed from */
	unsigned char raw[VIR_UUID_BUFLEN];   /* uuid, as bytes (the protocol's calls) */
	virDomainPtr ptr;            /* list path: our reference, kept across cycles */
	int ptr_id;                  /* the active domain id ptr was found by (0: none) */
	unsigned int bulk_id;        /* bulk path: the domain id its records came with (0: none) */
	/* this cycle's per-disk call and (slow cycles) virDomainGetInfo, asked
	 * with the others over libvirt's protocol (rpc_calls()): valid when
	 * rpc_cycle, info_cycle are this cycle */
	int rpc_cycle, info_cycle;
	struct lvrpc_call rpc, info;
	char rpc_target[32];         /* rpc.path: the disk asked for */
};

/* What a bulk record holds that the meters need, from one pass over its
 * parameters (a lookup by name per field would scan them all each time,
 * and build each block.N./net.N. key with snprintf). A field present twice
 * keeps its first value, as virTypedParamsGet* would; a field of another
 * type than libvirt documents is left out, as it would be; devices past
 * LV_MAX_DEVS are not read (nor identified from the XML). */
struct lv_rec {
	int state;
	unsigned long long cpu, bal_cur, bal_rss, bal_avail, bal_unused;
	unsigned int vcpus;
	uint8_t have_state, have_cpu, have_vcpus, have_cur, have_rss, have_avail, have_unused;
	unsigned int n_blk, n_net;   /* block.count, net.count */
	uint8_t have_n_blk, have_n_net;
	struct lv_rec_dev {
		const char *name;            /* the record's string, NULL when absent */
		unsigned long long v[6];     /* in the order of blk_fields / net_fields */
		uint8_t have;                /* bit f: v[f] present */
	} blk[LV_MAX_DEVS], net[LV_MAX_DEVS];
};

struct lv {
	struct sink_status ss;       /* this read's sink refusals (sink.h) */
	char uri[256];
	int xml_refresh;             /* cycles */
	int slow_every;              /* cycles between reads of the balloon and vcpu groups */
	int block_every;             /* cycles between reads of the block group */
	int path;                    /* the path said in the log: 0 none yet, 1 bulk, 2 per-domain */
	char mapping_path[4096];
	struct mapping mapping;   /* tenants of domains without Nova metadata */
	virConnectPtr conn;
	int nowait_ok;               /* the driver accepts NOWAIT */
	int bulk_useless;            /* the last bulk answer had no domain's groups */
	int cycle;
	int64_t prev_read_ns;
	struct lv_dom *dom;
	size_t n_dom, cap_dom;
	uint32_t *slot;              /* open addressing: index + 1 into dom, by uuid */
	size_t mask;
	/* the list path (a driver whose bulk answer is useless): active domain
	 * ids each cycle, and the domain each id was found to be, so a domain
	 * is looked up (virDomainLookupByID, virDomainGetUUID) once per QEMU
	 * process rather than listed, identified and freed every cycle */
	int *ids;
	size_t cap_ids;
	uint32_t *id_slot;           /* open addressing: index + 1 into dom, by ptr_id */
	size_t id_mask;
	int id_stale;                /* id_slot must be rebuilt */
	/* the bulk path: domain ids each cycle's records came with, so a
	 * record is matched to its domain without virDomainGetUUID (libvirt
	 * formats the UUID for its debug log in every such call, the dearest
	 * thing the collector did per domain). Within one connection an id
	 * names one process and is never given again; a stop drops the id,
	 * a new connection all of them. */
	uint32_t *bid_slot;          /* open addressing: index + 1 into dom, by bulk_id */
	size_t bid_mask, bid_used;
	struct complaint conn_fail, fallback_note, xml_fail, stale_note, dev_note, ev_note, torn_note, cg_note;
	/* lifecycle events: filled by libvirt's event thread, drained by read() */
	pthread_mutex_t ev_lock;
	pthread_cond_t cb_gone;          /* signalled when cb_live drops */
	int cb_live;                     /* callbacks registered and not yet freed by libvirt */
	struct lv_event {
		int64_t time_ns;
		unsigned char uuid[VIR_UUID_BUFLEN];
		unsigned int id;             /* the domain id (QEMU process) it speaks of */
		int event, detail;           /* VIR_DOMAIN_EVENT_* and its detail, or LV_EV_* */
		uint64_t value;              /* LV_EV_BALLOON: the new balloon size, KiB */
		char alias[64];              /* LV_EV_DEVICE_REMOVED: the device's alias */
	} ev[LV_EVENT_QUEUE];
	struct lv_event *ev_batch;   /* LV_EVENT_QUEUE of them: read()'s copy of ev, drained outside the lock */
	size_t ev_n;
	uint64_t ev_dropped;         /* events lost to a full queue */
	int cb_lifecycle, cb_reboot, cb_unplug, cb_plug, cb_balloon;   /* callback ids, -1 = none */
	int local;                   /* the hypervisor is this host: its taps can be read */
	char sysfs_net[128];         /* /sys/class/net */
	/* cpu time from the domains' cgroups (docs/libvirt.md): libvirt 9's
	 * cpu-total group also asks QEMU for halt-poll times (QMP query-stats),
	 * which costs more than the rest of a cycle's counters; the cgroup file
	 * libvirt takes cpu.time from is read here instead, and cpu-total is
	 * asked once per QEMU process to check that both say the same */
	char sysfs_cgroup[128];      /* /sys/fs/cgroup */
	int cg_ok;                   /* a domain's cgroup agreed with libvirt's cpu.time */
	int cg_off;                  /* one disagreed: libvirt's cpu-total every cycle */
	int asked_cpu;               /* this cycle's bulk call asked for cpu-total */
	int vcpus_by_info;           /* this cycle takes vCPUs from virDomainGetInfo (a slow cycle, local) */
	/* A cycle's second calls (extra_calls()): virDomainListGetStats for
	 * just the domains that need more than the bulk call asked, cpu-total
	 * for the processes whose cgroup is not checked yet ([0]) and the
	 * block group for those whose disks are not read by a per-disk call
	 * ([1]). Their answers, and for each record of the bulk answer (by
	 * index, n_xrec of them) what was asked for it and its answers. */
	virDomainStatsRecordPtr *xans[2];
	struct lv_xrec {
		virDomainStatsRecordPtr rec[2];  /* NULL: not asked, or no answer */
		uint8_t asked;                   /* bit g: asked in call g */
	} *xrec;
	size_t cap_xrec;
	int n_xrec;
	int disk_calls;              /* config disk_counters: per-disk (1) or bulk (0) */
	int blk_main;                /* this cycle's bulk call asks for the block group */
	int blk_calls;               /* this cycle reads disk counters by per-disk calls and the second call */
	int64_t interval_ns;
	/* figures */
	uint64_t bulk_domains, fallback_domains, stale, reads, events;
	uint64_t tail_closed;        /* counter series whose final reading was read at the stop */
	uint64_t tail_open;          /* counter series ended with their last read value */
	uint64_t tail_open_ns;       /* summed time from those series' last reading to their stop */
	uint64_t cg_checks;          /* domains asked cpu-total to check their cgroup (second call) */
	uint64_t blk_alone;          /* domains asked the block group alone (second call) */
	uint64_t disk_calls_n, disk_calls_failed;  /* per-disk virDomainBlockStats calls, and those that failed */
	uint64_t disk_calls_rpc;     /* of those, asked over libvirt's protocol at once (libvirt_rpc.h) */
	uint64_t info_calls_rpc;     /* virDomainGetInfo calls asked that way */
	uint64_t bulk_calls_rpc;     /* bulk stats calls answered that way */
	/* The per-disk calls and the slow cycles' virDomainGetInfo over
	 * libvirt's protocol, on the daemon's read-only socket (a hypervisor
	 * on this host): NULL until opened; when it cannot
	 * be (another URI, no socket, authentication asked) or breaks, the
	 * library's call until rpc_retry_ns (monotonic) */
	struct lvrpc *rpc;
	int64_t rpc_retry_ns;
	char rpc_path[108];
	struct complaint rpc_note;
	struct lvrpc_call **rpc_batch;   /* rpc_calls()' scratch */
	size_t rpc_cap;
	int rpc_said;                /* the log said the protocol is used */
	/* the bulk call over the protocol too (rpc_bulk()): its answer, as
	 * the records the rest reads (dom: the domain's reference, looked up
	 * once per process and then kept by its lv_dom), and which of those
	 * references no domain took yet (freed with the answer) */
	struct lvrpc_answer bulk_ans;
	struct lv_brec {
		virDomainStatsRecord r;
		uint8_t own;             /* r.dom is ours to free */
	} *bulk_rec;
	virDomainStatsRecordPtr *bulk_ptr;
	size_t cap_brec, cap_bptr;
	int bulk_rpc;                /* this cycle's records came over the protocol */
	int bulk_rpc_off;            /* the daemon refused it: the library's call on this connection */
	int rpc_test;                /* rpc_path was given by a test (lv_test_rpc) */
	struct lv_rec rec;           /* from_record()'s scratch: one record's fields */
	/* the domain id of each of this cycle's records, asked of libvirt once
	 * (virDomainGetID formats the domain's UUID for libvirt's debug log
	 * each time, logged or not) or taken from the protocol's answer */
	unsigned int *rid;
	size_t cap_rid;
};

/* libvirt.c: the domain whose records came with domain id `id` on this
 * connection, or NULL. */
struct lv_dom *lv_dom_by_bulk_id(struct lv *s, unsigned int id);

/* libvirt_cgroup.c: cpu time from the domain's cgroup (docs/libvirt.md) */
void lv_cg_close(struct lv_dom *d);
int lv_cg_cpu(struct lv *s, struct lv_dom *d, unsigned int id, uint64_t *ns);
void lv_cg_check(struct lv *s, struct lv_dom *d, unsigned int id, unsigned long long *cpu);

/* libvirt_calls.c: how d's disk counters are read this cycle, and its
 * per-disk call; the bulk call over the protocol and its answer's free;
 * the cycle's per-disk and info calls over the protocol; the second
 * calls, what they ask, and their answers' free (each documented there) */
int lv_disk_way(const struct lv *s, const struct lv_dom *d);
int lv_disk_call_due(const struct lv *s, const struct lv_dom *d, const struct lv_xrec *xr);
int lv_disk_call(struct lv *s, struct lv_dom *d, virDomainPtr dom, struct lv_rec *r);
int lv_rpc_bulk(struct lv *s, unsigned int groups, unsigned int flags, virDomainStatsRecordPtr **recs);
void lv_rpc_bulk_free(struct lv *s);
void lv_rpc_calls(struct lv *s, virDomainStatsRecordPtr *recs, int n);
int lv_extra_plan(struct lv *s, virDomainStatsRecordPtr *recs, int n, virDomainPtr *doms[2], size_t k[2]);
void lv_extra_calls(struct lv *s, virDomainStatsRecordPtr *recs, int n);
void lv_extra_free(struct lv *s);

#endif
