/*
 * series.h: the arithmetic of docs/architecture.md rules 1-6 for one series, with no
 * storage: a reading goes in, hourly contributions come out.
 *
 * A series is one (resource, meter, device, source agent). Its state is the
 * last reading, the origin of the counter's current life and whether that
 * life ended. series_apply() takes the next reading and calls emit() once
 * for every UTC hour the usage since the previous reading falls in, plus
 * once for the hour the reading itself was taken in (samples = 1).
 *
 * The rules, as implemented here:
 * - cumulative: usage = value - previous over (previous, now]. A value below
 *   the previous one is a reset (the counter started again: usage = value),
 *   except when the previous value was within SERIES_WRAP_WINDOW of 2^64,
 *   which is a wrap (usage = 2^64 - previous + value).
 * - a reading whose origin_ns is later than the life it continues (or the
 *   first reading after a SAMPLE_F_LAST) starts a new life: with origin_ns
 *   set, the counter counts from zero at origin_ns (usage = value over
 *   (origin, now]); without it the reading is a baseline only.
 * - the very first reading of a series is a baseline unless origin_ns says
 *   the counter started while we watched (rule 3).
 * - gauge: the previous value holds until now (piecewise constant, rule 5)
 *   and is integrated into unit-seconds; the first value of a life with
 *   origin_ns is held from origin_ns.
 * - delta: value covers (origin_ns, now], or (previous, now] without origin.
 * - a reading not after the previous one (duplicate, out of order) is
 *   dropped and changes nothing.
 * - an interval is split over hours in proportion to time: counters by
 *   cumulative floor so the parts sum to the whole exactly; gauges as
 *   value * seconds in each hour.
 * - spanned_ns counts every interval; covered_ns only intervals no longer
 *   than max_gap_ns.
 */
#ifndef TALLY_SERIES_H
#define TALLY_SERIES_H

#include <stdint.h>

#include "sample.h"

#define SERIES_HAS   0x01u   /* a reading has been seen */
#define SERIES_ENDED 0x02u   /* the last reading had SAMPLE_F_LAST */

/* A decrease from within this distance of 2^64 is a wrap, not a reset:
 * no real counter gets within 1 TiB of 2^64 except by wrapping. */
#define SERIES_WRAP_WINDOW (1ULL << 40)

struct series_state {
	int64_t last_ns;        /* time of the last reading */
	int64_t origin_ns;      /* origin of the current life, 0 = unknown */
	union {
		uint64_t counter;
		double gauge;
	} last;
	uint8_t kind;           /* enum sample_kind of the series */
	uint8_t flags;          /* SERIES_* */
};

struct hour_add {
	int64_t hour_ns;        /* start of the UTC hour */
	uint64_t qty;           /* counters: base units */
	double qty_real;        /* gauges: unit-seconds */
	int64_t spanned_ns;
	int64_t covered_ns;
	uint32_t samples;
};

enum series_outcome {
	SERIES_DELTA = 0,       /* usage since the previous reading */
	SERIES_BASELINE,        /* first reading, nothing to count */
	SERIES_FROM_ZERO,       /* new life counted from its origin */
	SERIES_RESET,           /* counter went down: started again */
	SERIES_WRAP,            /* counter wrapped past 2^64 */
	SERIES_DROPPED,         /* not after the previous reading */
	SERIES_BAD_KIND,        /* kind differs from the series' kind: dropped */
	SERIES_TOO_LARGE,       /* a counter's amount past 2^63 - 1 in one reading (no
				   ledger row holds it, and no real meter moves that
				   far): refused, the series unchanged */
};

/* Adds one hour's part; returns 0 or a negative errno (out of memory). */
typedef int (*series_emit_fn)(void *ctx, const struct hour_add *a);

/* Apply reading s to st. Returns an enum series_outcome, or the negative
 * errno of the first emit that failed: st is then unchanged, but the
 * hours emitted before the failure were added (the caller's totals are
 * no longer consistent; the aggregator stops as broken). *usage (may be
 * NULL) receives the counter usage or gauge integral this reading added,
 * and *interval_ns the interval it covered, for rate displays. */
int series_apply(struct series_state *st, const struct sample *s, int64_t max_gap_ns,
		 series_emit_fn emit, void *ctx, double *usage, int64_t *interval_ns);

#endif
