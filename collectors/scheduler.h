/*
 * scheduler.h: calls every configured collector once per interval and
 * closes each cycle into batches.
 *
 * Real time: ticks are multiples of the interval since the epoch (so all
 * agents sample at the same instants). A cycle that takes longer than the
 * interval is an overrun: the ticks it covered are skipped, not queued
 * (catching up would only sample the same counters twice in a row), counted
 * in `overruns`/`skipped_ticks` and complained about once per back-off
 * window. Fast-forward: a virtual clock steps from the first tick to `end`
 * as fast as the collectors and the sink allow, for the simulated fleet.
 *
 * After each cycle the scheduler flushes the batcher (which delivers the
 * batches) and calls cycle_done(), where the owner decides whether to
 * commit. The scheduler owns none of the collectors' state.
 */
#ifndef TALLY_SCHEDULER_H
#define TALLY_SCHEDULER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "collector.h"
#include "log.h"

struct tally_err;

struct sched_collector {
	const struct collector_ops *ops;
	void *state;                 /* owned by the caller */
	uint64_t errors;             /* reads that failed */
	int64_t read_ns;             /* duration of the last read (monotonic) */
	struct complaint fail;
};

struct scheduler {
	struct sched_collector *coll;
	size_t n_coll;
	int64_t interval_ns;
	bool fast_forward;
	int64_t end_ns;              /* fast-forward: the last tick (its readings close the period) */
	struct batcher *batcher;
	/* 0 to go on, negative errno to stop the run with that error */
	int (*cycle_done)(void *ctx, int64_t tick_ns, struct tally_err *e);
	void *ctx;
	volatile sig_atomic_t *stop; /* set by a signal handler: finish the cycle, return */
	int64_t (*now_ns)(void);     /* NULL: the real clock; tests pass their own */
	void (*sleep_until)(int64_t t_ns); /* NULL: the real one; tests pass their own */

	/* figures */
	uint64_t cycles;
	uint64_t overruns, skipped_ticks;
	int64_t last_cycle_ns;       /* duration of the last cycle */
	int64_t max_cycle_ns;
	struct complaint overrun_complaint;
};

/* The first real-time tick at or after t. */
int64_t sched_next_tick(int64_t t_ns, int64_t interval_ns);

/* Run cycles from first_tick_ns until *stop, the end (fast-forward), or an
 * error. Returns 0 or the error that stopped it (message in e). */
int sched_run(struct scheduler *s, int64_t first_tick_ns, struct tally_err *e);

#endif
