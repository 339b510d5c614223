/*
 * test_series.c: docs/architecture.md rules 1-6 on one series, case by case.
 *
 * Each case feeds readings to series_apply() and compares what landed in
 * each UTC hour with values worked out by hand (the arithmetic is in the
 * comments). T0 = 2026-10-01T00:00:00Z = 1790812800 s (date -u -d).
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "series.h"
#include "tallytime.h"
#include "testutil.h"

#define S(x)  ((int64_t)(x) * NS_PER_SEC)
#define T0    S(1790812800LL)
#define H     NS_PER_HOUR
#define GAP   S(300)
#define MAXH  8

struct hour_row {
	int64_t hour_ns;
	uint64_t qty;
	double qty_real;
	int64_t spanned_ns, covered_ns;
	uint32_t samples;
};

struct rec {
	struct hour_row h[MAXH];
	int n;
};

static int rec_emit(void *ctx, const struct hour_add *a)
{
	struct rec *r = ctx;
	for (int i = 0; i < r->n; i++)
		if (r->h[i].hour_ns == a->hour_ns) {
			r->h[i].qty += a->qty;
			r->h[i].qty_real += a->qty_real;
			r->h[i].spanned_ns += a->spanned_ns;
			r->h[i].covered_ns += a->covered_ns;
			r->h[i].samples += a->samples;
			return 0;
		}
	ck_assert_int_lt(r->n, MAXH);
	r->h[r->n].hour_ns = a->hour_ns;
	r->h[r->n].qty = a->qty;
	r->h[r->n].qty_real = a->qty_real;
	r->h[r->n].spanned_ns = a->spanned_ns;
	r->h[r->n].covered_ns = a->covered_ns;
	r->h[r->n].samples = a->samples;
	r->n++;
	return 0;
}

static const struct hour_row *row(const struct rec *r, int64_t hour_ns)
{
	for (int i = 0; i < r->n; i++)
		if (r->h[i].hour_ns == hour_ns)
			return &r->h[i];
	return NULL;
}

struct reading {
	int64_t t, origin;
	uint8_t kind, flags;
	uint64_t c;
	double g;
	int outcome;            /* expected enum series_outcome */
};

struct expect {
	int64_t hour_ns;
	uint64_t qty;
	double qty_real;
	int64_t spanned_ns, covered_ns;
	int samples;
};

struct series_case {
	const char *name;
	struct reading r[8];
	int nr;
	struct expect x[4];
	int nx;
};

#define C(t_, v_, o_) { .t = (t_), .origin = 0, .kind = SAMPLE_CUMULATIVE, .c = (v_), .outcome = (o_) }
#define CO(t_, org_, v_, o_) { .t = (t_), .origin = (org_), .kind = SAMPLE_CUMULATIVE, .c = (v_), .outcome = (o_) }
#define CL(t_, v_, o_) { .t = (t_), .kind = SAMPLE_CUMULATIVE, .flags = SAMPLE_F_LAST, .c = (v_), .outcome = (o_) }
#define G(t_, v_, o_) { .t = (t_), .kind = SAMPLE_GAUGE, .g = (v_), .outcome = (o_) }
#define GO(t_, org_, v_, o_) { .t = (t_), .origin = (org_), .kind = SAMPLE_GAUGE, .g = (v_), .outcome = (o_) }
#define GL(t_, v_, o_) { .t = (t_), .kind = SAMPLE_GAUGE, .flags = SAMPLE_F_LAST, .g = (v_), .outcome = (o_) }

static const struct series_case cases[] = {
	{ "plain delta",
	  /* 400 - 100 = 300 over 10 s, both readings in hour 0 */
	  { C(T0 + S(10), 100, SERIES_BASELINE), C(T0 + S(20), 400, SERIES_DELTA) }, 2,
	  { { T0, 300, 0, S(10), S(10), 2 } }, 1 },
	{ "reset mid-hour (reboot)",
	  /* 1500 - 1000 = 500, then the counter went down to 200: it started
	   * again, so +200 (never negative); total 700 over 20 s */
	  { C(T0 + S(10), 1000, SERIES_BASELINE), C(T0 + S(20), 1500, SERIES_DELTA),
	    C(T0 + S(30), 200, SERIES_RESET) }, 3,
	  { { T0, 700, 0, S(20), S(20), 3 } }, 1 },
	{ "64-bit wrap",
	  /* 2^64 - 100 -> 50: 100 to reach 2^64, then 50 more = 150 */
	  { C(T0 + S(10), UINT64_MAX - 99, SERIES_BASELINE), C(T0 + S(20), 50, SERIES_WRAP) }, 2,
	  { { T0, 150, 0, S(10), S(10), 2 } }, 1 },
	{ "gap of two hours inside one life, counter",
	  /* 00:30 -> 02:30, 9000 units over 7200 s: hour 00 gets 1800/7200 =
	   * 2250, hour 01 3600/7200 = 4500, hour 02 the rest 2250; the gap is
	   * longer than max_gap (300 s), so spanned but not covered */
	  { C(T0 + S(1800), 1000, SERIES_BASELINE), C(T0 + S(9000), 10000, SERIES_DELTA) }, 2,
	  { { T0, 2250, 0, S(1800), 0, 1 }, { T0 + H, 4500, 0, S(3600), 0, 0 },
	    { T0 + 2 * H, 2250, 0, S(1800), 0, 1 } }, 3 },
	{ "gap of two hours inside one life, gauge",
	  /* 4 vCPUs held from 00:30 to 02:30: 4*1800, 4*3600, 4*1800 vCPU-s */
	  { G(T0 + S(1800), 4, SERIES_BASELINE), G(T0 + S(9000), 4, SERIES_DELTA) }, 2,
	  { { T0, 0, 7200, S(1800), 0, 1 }, { T0 + H, 0, 14400, S(3600), 0, 0 },
	    { T0 + 2 * H, 0, 7200, S(1800), 0, 1 } }, 3 },
	{ "first sight of a counter started before the agent: baseline",
	  { C(T0 + S(10), 123456, SERIES_BASELINE) }, 1,
	  { { T0, 0, 0, 0, 0, 1 } }, 1 },
	{ "first sight of a counter started while watching: from zero",
	  /* the domain started at +5 s: 500 ns counted over (5, 10] */
	  { CO(T0 + S(10), T0 + S(5), 500, SERIES_FROM_ZERO) }, 1,
	  { { T0, 500, 0, S(5), S(5), 1 } }, 1 },
	{ "last reading on stop, then a new life without origin",
	  /* 300 - 100 = 200 until the stop; the next reading after a final one
	   * starts a new life: with no origin it is only a baseline */
	  { C(T0 + S(10), 100, SERIES_BASELINE), CL(T0 + S(15), 300, SERIES_DELTA),
	    C(T0 + S(100), 50, SERIES_BASELINE) }, 3,
	  { { T0, 200, 0, S(5), S(5), 3 } }, 1 },
	{ "last reading on stop, then a new life from its origin",
	  /* 200 before the stop; restarted at +90 s, 50 by +100 s: 250 over
	   * 5 s + 10 s spanned (the 75 s stopped are not spanned) */
	  { C(T0 + S(10), 100, SERIES_BASELINE), CL(T0 + S(15), 300, SERIES_DELTA),
	    CO(T0 + S(100), T0 + S(90), 50, SERIES_FROM_ZERO) }, 3,
	  { { T0, 250, 0, S(15), S(15), 3 } }, 1 },
	{ "gauge stops with the last reading",
	  /* 2 held 10->15 = 10; stopped; restarted at 90, 2 held from 90 to 100 = 20 */
	  { G(T0 + S(10), 2, SERIES_BASELINE), GL(T0 + S(15), 2, SERIES_DELTA),
	    GO(T0 + S(100), T0 + S(90), 2, SERIES_FROM_ZERO) }, 3,
	  { { T0, 0, 30, S(15), S(15), 3 } }, 1 },
	{ "duplicate and out-of-order readings are dropped",
	  /* 100 -> 200 -> 300: 200; the repeated +20 s and the late +15 s change nothing */
	  { C(T0 + S(10), 100, SERIES_BASELINE), C(T0 + S(20), 200, SERIES_DELTA),
	    C(T0 + S(20), 200, SERIES_DROPPED), C(T0 + S(15), 150, SERIES_DROPPED),
	    C(T0 + S(30), 300, SERIES_DELTA) }, 5,
	  { { T0, 200, 0, S(20), S(20), 3 } }, 1 },
	{ "hour boundary split to the nanosecond",
	  /* 1 ns before 01:00 to 1 ns after: 2 ns, 1000000001 units; hour 00
	   * gets floor(1000000001 * 1 / 2) = 500000000, hour 01 the rest */
	  { C(T0 + H - 1, 0, SERIES_BASELINE), C(T0 + H + 1, 1000000001, SERIES_DELTA) }, 2,
	  { { T0, 500000000, 0, 1, 1, 1 }, { T0 + H, 500000001, 0, 1, 1, 1 } }, 2 },
	{ "a reading exactly on the hour closes the hour before",
	  /* (00:59:50, 01:00:00] lies wholly in hour 00; the reading itself
	   * is counted in hour 01, where its time is */
	  { C(T0 + H - S(10), 0, SERIES_BASELINE), C(T0 + H, 70, SERIES_DELTA) }, 2,
	  { { T0, 70, 0, S(10), S(10), 1 }, { T0 + H, 0, 0, 0, 0, 1 } }, 2 },
	{ "month boundary",
	  /* 2026-10-31T23:59:50Z (1793491190) to 2026-11-01T00:00:10Z: 20 s,
	   * 20 units, 10 into Oct 31 23:00 and 10 into Nov 1 00:00 */
	  { C(S(1793491190LL), 5, SERIES_BASELINE), C(S(1793491210LL), 25, SERIES_DELTA) }, 2,
	  { { S(1793487600LL), 10, 0, S(10), S(10), 1 }, { S(1793491200LL), 10, 0, S(10), S(10), 1 } }, 2 },
	{ "a VM that lives 90 seconds: memory",
	  /* started +100 s, stopped +190 s: 2 GiB = 2147483648 B held 90 s =
	   * 193273528320 byte-seconds, no rounding to a whole hour */
	  { GO(T0 + S(110), T0 + S(100), 2147483648.0, SERIES_FROM_ZERO),
	    G(T0 + S(150), 2147483648.0, SERIES_DELTA), GL(T0 + S(190), 2147483648.0, SERIES_DELTA) }, 3,
	  { { T0, 0, 193273528320.0, S(90), S(90), 3 } }, 1 },
	{ "a VM that lives 90 seconds: cpu",
	  /* half a CPU for 90 s = 45e9 ns, counted from the start at +100 s */
	  { CO(T0 + S(110), T0 + S(100), 5000000000ULL, SERIES_FROM_ZERO),
	    CL(T0 + S(190), 45000000000ULL, SERIES_DELTA) }, 2,
	  { { T0, 45000000000ULL, 0, S(90), S(90), 2 } }, 1 },
	{ "a later origin starts a new life even when the value did not go down",
	  /* baseline 100; restarted at +50 s and already at 1000 by +60 s:
	   * 1000 from zero over (50, 60], not 900 */
	  { C(T0 + S(10), 100, SERIES_BASELINE), CO(T0 + S(60), T0 + S(50), 1000, SERIES_FROM_ZERO) }, 2,
	  { { T0, 1000, 0, S(10), S(10), 2 } }, 1 },
	{ "reset with origin counts from the origin",
	  /* 5000 baseline at +10; the counter restarted at +40 and reads 300
	   * at +60 (origin later: new life): 300 over (40, 60] */
	  { CO(T0 + S(10), T0 + S(1), 5000, SERIES_FROM_ZERO), CO(T0 + S(60), T0 + S(40), 300, SERIES_FROM_ZERO) }, 2,
	  /* first reading: 5000 from zero over (1, 10] */
	  { { T0, 5300, 0, S(29), S(29), 2 } }, 1 },
};

START_TEST(test_case)
{
	const struct series_case *c = &cases[_i];
	struct series_state st;
	struct rec r;
	memset(&st, 0, sizeof(st));
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < c->nr; i++) {
		struct sample s;
		memset(&s, 0, sizeof(s));
		s.time_ns = c->r[i].t;
		s.origin_ns = c->r[i].origin;
		s.kind = c->r[i].kind;
		s.flags = c->r[i].flags;
		if (s.kind == SAMPLE_GAUGE)
			s.v.gauge = c->r[i].g;
		else
			s.v.counter = c->r[i].c;
		int out = series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL);
		ck_assert_msg(out == c->r[i].outcome, "%s: reading %d: outcome %d, expected %d", c->name, i,
			      out, c->r[i].outcome);
	}
	ck_assert_msg(r.n == c->nx, "%s: %d hours touched, expected %d", c->name, r.n, c->nx);
	for (int i = 0; i < c->nx; i++) {
		const struct expect *x = &c->x[i];
		const struct hour_row *h = row(&r, x->hour_ns);
		ck_assert_msg(h != NULL, "%s: no usage in hour %d", c->name, i);
		ck_assert_msg(h->qty == x->qty, "%s: hour %d qty %llu, expected %llu", c->name, i,
			      (unsigned long long)h->qty, (unsigned long long)x->qty);
		ck_assert_msg(h->qty_real == x->qty_real, "%s: hour %d integral %.17g, expected %.17g",
			      c->name, i, h->qty_real, x->qty_real);
		ck_assert_msg(h->spanned_ns == x->spanned_ns, "%s: hour %d spanned %lld, expected %lld",
			      c->name, i, (long long)h->spanned_ns, (long long)x->spanned_ns);
		ck_assert_msg(h->covered_ns == x->covered_ns, "%s: hour %d covered %lld, expected %lld",
			      c->name, i, (long long)h->covered_ns, (long long)x->covered_ns);
		ck_assert_msg((int)h->samples == x->samples, "%s: hour %d samples %u, expected %d", c->name,
			      i, h->samples, x->samples);
	}
}
END_TEST

START_TEST(test_gauge_ns_split)
{
	/* 1.0 held over 2 ns straddling 01:00: 1e-9 unit-seconds each side */
	struct series_state st;
	struct rec r;
	struct sample s;
	memset(&st, 0, sizeof(st));
	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	s.kind = SAMPLE_GAUGE;
	s.v.gauge = 1.0;
	s.time_ns = T0 + H - 1;
	series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL);
	s.time_ns = T0 + H + 1;
	series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL);
	ck_assert_double_eq_tol(row(&r, T0)->qty_real, 1e-9, 1e-24);
	ck_assert_double_eq_tol(row(&r, T0 + H)->qty_real, 1e-9, 1e-24);
}
END_TEST

/* An emit that fails (out of memory) stops the split: series_apply
 * returns its errno and the series keeps its previous reading, so the
 * failure cannot pass for an applied reading. */
static int fail_second(void *ctx, const struct hour_add *a)
{
	return ++*(int *)ctx == 2 ? -ENOMEM : 0;
}

START_TEST(test_emit_failure_surfaces)
{
	struct series_state st;
	struct sample s;
	int calls = 0;
	memset(&st, 0, sizeof(st));
	memset(&s, 0, sizeof(s));
	s.kind = SAMPLE_CUMULATIVE;
	s.time_ns = T0;
	s.v.counter = 100;
	ck_assert_int_eq(series_apply(&st, &s, GAP, fail_second, &calls, NULL, NULL), SERIES_BASELINE);
	/* 3 hours later, 3600 more: three hours' parts; the second fails */
	calls = 0;
	s.time_ns = T0 + 3 * H;
	s.v.counter = 3700;
	ck_assert_int_eq(series_apply(&st, &s, 1000 * H, fail_second, &calls, NULL, NULL), -ENOMEM);
	ck_assert_int_eq(calls, 2);                   /* stopped at the failure */
	ck_assert_int_eq(st.last_ns, T0);             /* still the baseline */
	ck_assert_uint_eq(st.last.counter, 100);
}
END_TEST

START_TEST(test_kind_change_refused)
{
	struct series_state st;
	struct rec r;
	struct sample s;
	memset(&st, 0, sizeof(st));
	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	s.kind = SAMPLE_CUMULATIVE;
	s.time_ns = T0 + S(1);
	s.v.counter = 10;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_BASELINE);
	s.kind = SAMPLE_GAUGE;
	s.time_ns = T0 + S(2);
	s.v.gauge = 3;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_BAD_KIND);
	ck_assert_int_eq(st.last.counter, 10);
}
END_TEST

/* A counter amount past 2^63 - 1 in one reading fits no ledger row: every
 * way a counter reading yields an amount refuses it and leaves the series
 * as it was (its next reading counts from the last one applied). */
START_TEST(test_amount_past_2_63_refused)
{
	struct series_state st;
	struct rec r;
	struct sample s;
	memset(&st, 0, sizeof(st));
	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	s.kind = SAMPLE_CUMULATIVE;
	s.time_ns = T0 + S(1);
	s.v.counter = 1000;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_BASELINE);
	/* a rise of 2^63 + 5 */
	s.time_ns = T0 + S(2);
	s.v.counter = 1000 + (1ULL << 63) + 5;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_TOO_LARGE);
	ck_assert_uint_eq(st.last.counter, 1000);
	ck_assert_int_eq(st.last_ns, T0 + S(1));
	/* a rise of exactly 2^63 - 1 is the largest taken */
	s.time_ns = T0 + S(3);
	s.v.counter = 1000 + (uint64_t)INT64_MAX;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_DELTA);
	ck_assert_uint_eq(row(&r, T0)->qty, (uint64_t)INT64_MAX);
	/* a wrap near 2^64 to 2^63: (2^64 - 1 - (2^64 - 5)) + 2^63 + 1 = 2^63 + 5 */
	st.last.counter = UINT64_MAX - 4;
	s.time_ns = T0 + S(4);
	s.v.counter = 1ULL << 63;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_TOO_LARGE);
	/* a reset to 2^63 (counted from zero) */
	st.last.counter = UINT64_MAX - (1ULL << 41);
	s.time_ns = T0 + S(5);
	s.v.counter = 1ULL << 63;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_TOO_LARGE);
	ck_assert_int_eq(st.last_ns, T0 + S(3));
	/* a delta reading of 2^63 */
	memset(&st, 0, sizeof(st));
	s.kind = SAMPLE_DELTA;
	s.time_ns = T0 + S(6);
	s.v.counter = 1ULL << 63;
	ck_assert_int_eq(series_apply(&st, &s, GAP, rec_emit, &r, NULL, NULL), SERIES_TOO_LARGE);
	ck_assert_uint_eq(st.flags, 0);
	/* nothing but the one taken was added */
	ck_assert_int_eq(r.n, 1);
	ck_assert_uint_eq(row(&r, T0)->qty, (uint64_t)INT64_MAX);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("series");
	TCase *tc = tcase_create("rules");
	tcase_add_loop_test(tc, test_case, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_gauge_ns_split);
	tcase_add_test(tc, test_kind_change_refused);
	tcase_add_test(tc, test_amount_past_2_63_refused);
	tcase_add_test(tc, test_emit_failure_surfaces);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
