/*
 * sim.h: the simulated fleet, the ground truth of tally's exactness tests,
 * the demo and the benchmarks.
 *
 * N VMs in T tenants on H simulated hosts. Every counter is a known function
 * of time: within one life of a VM (from a boot, migration-in or start to
 * the next reboot, migration-out or stop) counter m reads
 *     rate[m] * (t - life_start) / 1 s        (exact: t is whole seconds)
 * and every gauge is constant (flavor allocations, instance = 1). Events
 * fall on whole seconds at times drawn from a hash of (seed, vm, hour), so
 * a schedule depends on nothing but the config: the same config gives the
 * same readings whether run in fast-forward or in real time, resumed after a
 * crash or not.
 *
 * What the sim sends, per VM, to the agent of the host it runs on:
 * - at every tick while running: cpu, vcpus, memory, instance, and per disk
 *   (device "vda", "vdb", ...) read/write bytes and requests and capacity,
 *   per NIC (device = MAC) incoming/outgoing bytes and packets; origin_ns =
 *   life start when the life began while the sim watched, else 0;
 * - at an event (reboot with counter reset, stop, migration): a final
 *   reading of every meter at the event time with SAMPLE_F_LAST, then the
 *   lifecycle event(s); the new life's counters start from zero;
 * - metadata (name, tenant, flavor) at the first tick.
 * A tick's readings of one VM are lost together with probability `loss`,
 * except at the first tick of a run; final readings are not lost (the
 * collector takes them synchronously on the lifecycle edge, rule 4) unless
 * `final_loss` says so: a fault to test what a collector that misses a
 * domain's destroy does to the rest (the event still comes).
 *
 * The sim follows the time the daemon gives read(): the collection clock's
 * ticks in real time (collectors/scheduler.h: it never steps, so the
 * counters grow with the time that really passes, as a real VM's do, when
 * the wall clock steps), or a virtual clock racing through a period in
 * fast-forward.
 * Counters of device j (0-based) run at rate * (j + 1).
 *
 * Lives that began before the sim's start_ns are "before we watched": their
 * first reading is a baseline (rule 3), so usage is measured from start_ns.
 *
 * Traffic classes (`classes`, off by default): each NIC counter is also
 * sent split into the meters network.<class>.* (docs/meters.md), as a pcap
 * capture of that NIC would count them, in the same emit as the NIC's own
 * counter (ticks and final readings alike, same origin_ns). The split is a
 * pure function of the NIC counter's value and rate (sim_class_split), so
 * for every NIC, direction and reading the class counters add up exactly
 * to the NIC's counter, start from zero with it and reset with it, and
 * never go down within a life. Without `classes` nothing of this is sent
 * and every other reading is the same.
 */
#ifndef TALLY_SIM_H
#define TALLY_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "meter.h"

#define SIM_MAX_DEVS 4
#define SIM_MAX_CLASSES 5                /* the traffic classes of docs/meters.md */
#define SIM_SHARE_ONE 1000000u           /* a class share of 1, in parts per million */

struct sim_config {
	uint32_t vms, tenants, hosts;
	char host_prefix[40];            /* host h is the agent "<host_prefix><h>" */
	uint32_t disks, nics;            /* per VM, 0..SIM_MAX_DEVS */
	uint64_t seed;
	double loss;                     /* probability a VM's tick is lost */
	double final_loss;               /* probability a final reading is lost */
	double reboots_per_day;          /* per VM */
	double stops_per_day;
	double migrations_per_day;
	double crashes_per_day;          /* crashed, then restarted after 1 min - 2 h */
	int64_t start_ns;                /* schedule anchor and first tick; whole seconds */
	int64_t interval_ns;             /* whole seconds */
	/* traffic classes, in the order the config writes them; 0: none sent */
	uint32_t n_classes;
	uint16_t class_meter[SIM_MAX_CLASSES]; /* the class's network.<class>.incoming.bytes;
					       * its other three counters follow (meter.h) */
	uint32_t class_ppm[SIM_MAX_CLASSES];   /* its share, parts per million; they add up
					       * to SIM_SHARE_ONE */
};

enum sim_event { SIM_EV_NONE, SIM_EV_REBOOT, SIM_EV_STOP, SIM_EV_START, SIM_EV_MIGRATE, SIM_EV_CRASH };

struct sim_vm {
	char uuid[37];
	char name[16];
	char tenant[16];
	const char *flavor;
	uint32_t vcpus;
	uint64_t memory_bytes, disk_bytes;
	uint64_t rate[METER_COUNT];      /* counters: units per second */
	char dev[SIM_MAX_DEVS * 2][18];  /* disks then NIC MACs */
};

/* One life: [start_ns, end_ns) on host; origin_known when it began at or
 * after the sim's start. end_ns is INT64_MAX while it goes on. */
struct sim_life {
	int64_t start_ns, end_ns;
	uint32_t host;
	bool origin_known;
	enum sim_event ended_by;
};

void sim_config_default(struct sim_config *c);
void sim_vm_describe(const struct sim_config *c, uint32_t vm, struct sim_vm *out);

/* The lives of vm that overlap [c->start_ns, until_ns], in order; writes at
 * most max and returns how many there are (may exceed max). */
int sim_lives(const struct sim_config *c, uint32_t vm, int64_t until_ns, struct sim_life *out, int max);

/* True when vm's readings at tick index k (0 = start_ns) are lost. */
bool sim_tick_lost(const struct sim_config *c, uint32_t vm, int64_t k);
/* Whether the final reading of vm at t_ns (an event's time) is lost. */
bool sim_final_lost(const struct sim_config *c, uint32_t vm, int64_t t_ns);

/* The class counters out[0..c->n_classes) of a NIC counter that reads
 * `counter` and grows by rate units per second (docs/config.md,
 * collectors.sim.classes, has worked examples):
 * - each second's rate units are split into whole class rates: class i
 *   gets floor(rate * share_i) for every class but the last written, the
 *   last gets what is left, so they add up to rate;
 * - counter = q * rate + p (0 <= p < rate): q whole seconds of every class
 *   rate, and the p units of the second begun go to the classes in the
 *   order written, each up to its rate (only a reading off whole seconds of
 *   its life has p > 0: real time after a wall clock step).
 * So the out[] add up to counter exactly and each is non-decreasing in it. */
void sim_class_split(const struct sim_config *c, uint64_t rate, uint64_t counter,
		     uint64_t out[SIM_MAX_CLASSES]);

#endif
