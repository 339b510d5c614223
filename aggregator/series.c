/*
 * series.c: deltas, resets, wraps, gauge integration and the exact split of
 * an interval over UTC hours (see series.h for the rules).
 */
#include "series.h"
#include "tallytime.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

/* Split counter usage q over (a, b] into hours; a <= b. Hour h receives
 * floor(q * (hi - a) / len) - floor(q * (lo - a) / len), so the parts add up
 * to q exactly and an interval whose usage is proportional to time splits
 * without rounding. A zero-length interval puts q in the hour holding b. */
static int split_counter(uint64_t q, int64_t a, int64_t b, int64_t max_gap_ns,
			  series_emit_fn emit, void *ctx)
{
	struct hour_add ad;
	int covered = b - a <= max_gap_ns;
	int rc;

	if (a >= b) {
		memset(&ad, 0, sizeof(ad));
		ad.hour_ns = hour_floor(b);
		ad.qty = q;
		return emit(ctx, &ad);
	}
	unsigned __int128 len = (unsigned __int128)(b - a);
	uint64_t done = 0;
	/* (a, b] over hours: the instant b belongs to the interval, a does not;
	 * an interval ending on an hour boundary belongs to the hour before. */
	for (int64_t h = hour_floor(a); h < b; h += NS_PER_HOUR) {
		int64_t lo = a > h ? a : h;
		int64_t hi = b < h + NS_PER_HOUR ? b : h + NS_PER_HOUR;
		if (hi <= lo)
			continue;
		uint64_t upto = hi == b ? q : (uint64_t)((unsigned __int128)q * (unsigned __int128)(hi - a) / len);
		memset(&ad, 0, sizeof(ad));
		ad.hour_ns = h;
		ad.qty = upto - done;
		ad.spanned_ns = hi - lo;
		ad.covered_ns = covered ? hi - lo : 0;
		done = upto;
		if ((rc = emit(ctx, &ad)))
			return rc;
	}
	assert(done == q);   /* the parts add up to q exactly */
	return 0;
}

static int split_gauge(double v, int64_t a, int64_t b, int64_t max_gap_ns, series_emit_fn emit,
		       void *ctx)
{
	struct hour_add ad;
	int covered = b - a <= max_gap_ns;
	int rc;

	for (int64_t h = hour_floor(a); h < b; h += NS_PER_HOUR) {
		int64_t lo = a > h ? a : h;
		int64_t hi = b < h + NS_PER_HOUR ? b : h + NS_PER_HOUR;
		if (hi <= lo)
			continue;
		memset(&ad, 0, sizeof(ad));
		ad.hour_ns = h;
		/* whole seconds and the nanosecond rest separately, so integer
		 * values times whole seconds stay exact in a double */
		int64_t ns = hi - lo;
		ad.qty_real = v * (double)(ns / NS_PER_SEC) + v * (double)(ns % NS_PER_SEC) / 1e9;
		ad.spanned_ns = ns;
		ad.covered_ns = covered ? ns : 0;
		if ((rc = emit(ctx, &ad)))
			return rc;
	}
	return 0;
}

static int count_sample(int64_t t, series_emit_fn emit, void *ctx)
{
	struct hour_add ad;
	memset(&ad, 0, sizeof(ad));
	ad.hour_ns = hour_floor(t);
	ad.samples = 1;
	return emit(ctx, &ad);
}

int series_apply(struct series_state *st, const struct sample *s, int64_t max_gap_ns,
		 series_emit_fn emit, void *ctx, double *usage, int64_t *interval_ns)
{
	int64_t t = s->time_ns;
	int has = st->flags & SERIES_HAS;
	int outcome, rc = 0;
	double used = 0;
	int64_t ival = 0;

	if (has && s->kind != st->kind)
		return SERIES_BAD_KIND;
	if (has && t <= st->last_ns)
		return SERIES_DROPPED;

	const struct series_state before = *st;
	/* Does this reading begin a new life of the series? */
	int new_life = !has || (st->flags & SERIES_ENDED) ||
		       (s->origin_ns > 0 && s->origin_ns > st->origin_ns && s->kind != SAMPLE_DELTA);
	/* The origin counts only if it lies between the previous reading and
	 * this one: otherwise it cannot be the start of a life we did not see. */
	int origin_ok = s->origin_ns > 0 && s->origin_ns <= t && (!has || s->origin_ns >= st->last_ns);

	switch (s->kind) {
	case SAMPLE_CUMULATIVE:
		if (new_life) {
			if (origin_ok) {
				if (s->v.counter > INT64_MAX)
					return SERIES_TOO_LARGE;
				rc = split_counter(s->v.counter, s->origin_ns, t, max_gap_ns, emit, ctx);
				used = (double)s->v.counter;
				ival = t - s->origin_ns;
				outcome = SERIES_FROM_ZERO;
			} else {
				outcome = SERIES_BASELINE;
			}
		} else if (s->v.counter >= st->last.counter) {
			uint64_t q = s->v.counter - st->last.counter;
			if (q > INT64_MAX)
				return SERIES_TOO_LARGE;
			rc = split_counter(q, st->last_ns, t, max_gap_ns, emit, ctx);
			used = (double)q;
			ival = t - st->last_ns;
			outcome = SERIES_DELTA;
		} else if (st->last.counter > UINT64_MAX - SERIES_WRAP_WINDOW) {
			uint64_t q = (UINT64_MAX - st->last.counter) + s->v.counter + 1;
			if (q > INT64_MAX)
				return SERIES_TOO_LARGE;
			rc = split_counter(q, st->last_ns, t, max_gap_ns, emit, ctx);
			used = (double)q;
			ival = t - st->last_ns;
			outcome = SERIES_WRAP;
		} else {
			int64_t a = origin_ok ? s->origin_ns : st->last_ns;
			if (s->v.counter > INT64_MAX)
				return SERIES_TOO_LARGE;
			rc = split_counter(s->v.counter, a, t, max_gap_ns, emit, ctx);
			used = (double)s->v.counter;
			ival = t - a;
			outcome = SERIES_RESET;
		}
		st->last.counter = s->v.counter;
		break;
	case SAMPLE_GAUGE:
		if (new_life) {
			if (origin_ok) {
				rc = split_gauge(s->v.gauge, s->origin_ns, t, max_gap_ns, emit, ctx);
				ival = t - s->origin_ns;
				used = s->v.gauge * (double)ival / 1e9;
				outcome = SERIES_FROM_ZERO;
			} else {
				outcome = SERIES_BASELINE;
			}
		} else {
			rc = split_gauge(st->last.gauge, st->last_ns, t, max_gap_ns, emit, ctx);
			ival = t - st->last_ns;
			used = st->last.gauge * (double)ival / 1e9;
			outcome = SERIES_DELTA;
		}
		st->last.gauge = s->v.gauge;
		break;
	case SAMPLE_DELTA: {
		int64_t a = s->origin_ns > 0 && s->origin_ns <= t ? s->origin_ns
			    : has ? st->last_ns : t;
		if (has && a < st->last_ns)
			a = st->last_ns; /* never count an interval twice */
		if (s->v.counter > INT64_MAX)
			return SERIES_TOO_LARGE;
		rc = split_counter(s->v.counter, a, t, max_gap_ns, emit, ctx);
		used = (double)s->v.counter;
		ival = t - a;
		st->last.counter = s->v.counter;
		outcome = SERIES_DELTA;
		break;
	}
	default:
		return SERIES_BAD_KIND;
	}
	if (rc || (rc = count_sample(t, emit, ctx))) {
		*st = before;   /* the reading is not applied */
		return rc;
	}
	st->kind = s->kind;
	st->last_ns = t;
	if (new_life)
		st->origin_ns = origin_ok ? s->origin_ns : 0;
	else if (s->origin_ns > st->origin_ns)
		st->origin_ns = s->origin_ns;
	st->flags = SERIES_HAS | ((s->flags & SAMPLE_F_LAST) ? SERIES_ENDED : 0);
	if (usage)
		*usage = used;
	if (interval_ns)
		*interval_ns = ival;
	return outcome;
}
