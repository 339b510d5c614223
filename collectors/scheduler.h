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
 *
 * Clocks (real time; docs/clock.md says what an operator sees). Three
 * times are at play: the wall clock (CLOCK_REALTIME), the collection clock
 * (tallytime.h: CLOCK_MONOTONIC anchored to the wall clock once, never
 * steps) and data time, which ticks, readings, events and the ledger use:
 *     data time = collection time + shift_ns
 * The scheduler sleeps on CLOCK_MONOTONIC, collectors read and stamp in
 * collection time, and the batcher adds shift_ns to every stamp. Before
 * each tick the scheduler compares the two clocks: when the wall clock
 * moved against the collection clock by more than the tolerance, it stepped
 * (logged once per step, counted in clock_steps):
 *   - forward: data time follows it (shift_ns grows by the step, rounded to
 *     the millisecond) and the next tick is the first on the new time. The
 *     batches say so (batch.clock_step_ns), and the aggregator moves each
 *     series' last reading forward by as much: the reading after the step
 *     counts the time that really passed, the skipped span is no gap, no
 *     silence, no gauge time (clock_skipped_ns adds it up).
 *   - back: data time does not follow (no reading may be stamped before an
 *     earlier one); it runs on at the real rate, ahead of the wall clock
 *     by clock_ahead_ns, until the wall clock catches up (a later forward
 *     step) - or for good, the ledger's times then being that much ahead.
 * Ticks stay on multiples of the interval in data time. A fast-forward run
 * has one virtual clock: none of this applies.
 */
#ifndef TALLY_SCHEDULER_H
#define TALLY_SCHEDULER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "collector.h"
#include "log.h"

/* A move of the wall clock against the collection clock larger than this
 * between two ticks is a step; smaller ones (measurement, a slewed
 * clock) are not looked at. */
#define SCHED_STEP_TOLERANCE_NS (100LL * 1000000)

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
	int64_t not_before_ns;       /* real time: data time starts after this (the ledger's
				      * last cycle), even if the wall clock is behind it */
	/* the clocks; NULL: the real ones (tests pass their own) */
	int64_t (*now_ns)(void);     /* the wall clock */
	int64_t (*collect_ns)(void); /* the collection clock */
	void (*sleep_until)(int64_t collect_ns); /* until that collection time */
	/* instead of sleeping: wait(ctx, collect_ns) may return before that
	 * time, having done other work on this thread (tallyd books pushed
	 * usage events meanwhile: daemon/events.h); the loop then waits again.
	 * NULL: sleep_until */
	void (*wait)(void *ctx, int64_t collect_ns);

	/* data time = collection time + shift_ns (real time; 0 in fast-forward) */
	int64_t shift_ns;
	int64_t wall_offset_ns;      /* wall - collection clock at the last look */
	uint64_t clock_steps;        /* steps of the wall clock seen */
	int64_t clock_skipped_ns;    /* forward steps data time followed, summed */
	int64_t clock_ahead_ns;      /* data time ahead of the wall clock (it stepped back), else 0 */

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
