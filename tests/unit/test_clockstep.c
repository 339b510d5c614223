/*
 * test_clockstep.c: a batch that says its agent's data time stepped forward
 * (batch.clock_step_ns: the wall clock stepped and data time followed,
 * collectors/scheduler.h) on the real aggregator, ledger and alert engine.
 * The step is no gap: no silence events, gauges integrated over the time
 * that passed only, the counter's growth over that time, all covered;
 * windows and pending alerts move with the series. Times: T0 =
 * 2026-10-01T00:00:00Z; expected values worked out in the comments.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "aggregator.h"
#include "alerting.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"
#include "ledger_fixture.h"
#include "alert_fixture.h"

#define T0 (1790812800LL * NS_PER_SEC)
#define S NS_PER_SEC

/* vm-s: 2 vCPUs, running, cpu counter 0 at T0 (baseline), 5e9 at T0+10;
 * the wall clock steps forward 1200 s; the next reading is stamped
 * T0+1220, 10 s of real time after the last one, cpu 1e10. Max gap 30 s.
 *   cpu: 5e9 + 5e9 = 1e10 ns, spanned and covered 10 + 10 = 20 s (without
 *        the step taken into account: 1210 s spanned, 1200 of them a gap);
 *   vcpus: 2 x 20 s = 40 vCPU-seconds (not 2 x 1220);
 *   instance: 1 x 20 s; no silent/heard events (1210 s > 30 s would be);
 *   the series' last reading: T0+1220.
 * network.incoming.bytes reads 0, 2000, 2000, 4000 at T0, +10, +1220,
 * +1230. The window's readings move with the series: at T0+1220 the window
 * (30 s) holds T0+1200, 1210, 1220: rate (2000 - 0) / 20 = 100/s; at
 * T0+1230 (4000 - 0) / 30 = 133/s. (Unmoved, at T0+1220 it would hold
 * T0+1220 alone: no rate.)
 * NetIn (rate above 50/s over 30 s, for 20 s): pending from T0+10 (200/s);
 * the step moves that to T0+1210, so at T0+1220 it has held 10 s (pending)
 * and it fires at T0+1230 with startsAt 1210 + 20 = 1230 (without the
 * move: startsAt T0+30, the skipped 20 minutes counted as held).
 * Fast (rate above 150/s over 30 s, at once): fires at T0+10 (200/s),
 * resolved at T0+1220 (100/s; unmoved it would have no value and stay). */
START_TEST(test_forward_step_is_no_gap)
{
	lf_max_gap_ns = 30 * S;
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  stale_intervals: 0\n  rules:\n"
		  "    - {name: NetIn, meter: network.incoming.bytes, rate_above: 50, window: 30s, for: 20s}\n"
		  "    - {name: Fast, meter: network.incoming.bytes, rate_above: 150, window: 30s}\n");
	lf_meta("vm-s", "sigma", "m1", T0);
	static const struct { int64_t t_s, step_s; uint64_t cpu, net; } rows[] = {
		{ 0, 0, 0, 0 }, { 10, 0, 5000000000ULL, 2000 }, { 1220, 1200, 10000000000ULL, 2000 },
		{ 1230, 0, 15000000000ULL, 4000 },
	};
	for (int i = 0; i < 4; i++) {
		int64_t t = T0 + rows[i].t_s * S;
		lf_reading("vm-s", M_CPU, t, 0, rows[i].cpu, 0);
		lf_reading("vm-s", M_VCPUS, t, 2, 0, 0);
		lf_reading("vm-s", M_INSTANCE, t, 1, 0, 0);
		lf_reading("vm-s", M_NET_IN_BYTES, t, 0, rows[i].net, 0);
		af_clock_step_ns = rows[i].step_s * S;
		cycle(t);
		struct alert_snap *s = alert_acquire(&store);
		const struct alert_view *n = find_alert(s, "alertname=NetIn");
		const struct alert_view *fast = find_alert(s, "alertname=Fast");
		if (rows[i].t_s == 1220) {
			ck_assert_ptr_nonnull(n);
			ck_assert_int_eq(n->state, ALERT_PENDING);
			ck_assert_int_eq(n->active_ns, T0 + 1210 * S);
			ck_assert_ptr_nonnull(fast);
			ck_assert_int_eq(fast->state, ALERT_RESOLVED);
			ck_assert_int_eq(fast->fired_ns, T0 + 10 * S);
			ck_assert_int_eq(fast->resolved_ns, T0 + 1220 * S);
		}
		if (rows[i].t_s == 1230) {
			ck_assert_int_eq(n->state, ALERT_FIRING);
			ck_assert_int_eq(n->fired_ns, T0 + 1230 * S);
		}
		alert_put(&store, s);
	}
	/* the window's readings in the ledger were rewritten at their new times */
	int64_t v = lf_query("SELECT min(t_ns) FROM alert_windows WHERE key LIKE 'NetIn%'");
	ck_assert_int_eq(v, T0 + 1200 * S);
	lf_close();
	v = lf_query("SELECT count(*) FROM events WHERE type IN ('silent', 'heard')");
	ck_assert_int_eq(v, 0);
	v = lf_query("SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'");
	ck_assert_int_eq(v, 15000000000LL);
	v = lf_query("SELECT sum(spanned_ns) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'");
	ck_assert_int_eq(v, 30 * S);
	v = lf_query("SELECT sum(covered_ns) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'");
	ck_assert_int_eq(v, 30 * S);
	v = lf_query("SELECT CAST(round(sum(quantity)) AS INTEGER) FROM usage u JOIN meters m ON m.id = u.meter_id"
	      " WHERE m.name = 'vcpus'");
	ck_assert_int_eq(v, 60);           /* 2 x (10 + 10 + 10) */
	v = lf_query("SELECT CAST(round(sum(quantity)) AS INTEGER) FROM usage u JOIN meters m ON m.id = u.meter_id"
	      " WHERE m.name = 'instance'");
	ck_assert_int_eq(v, 30);
	v = lf_query("SELECT max(last_ns) FROM series");
	ck_assert_int_eq(v, T0 + 1230 * S);
	alerting_free(eng);
	alert_store_release(&store);
	lf_teardown();
}
END_TEST

/* A step back, or one of more than a century, is no step: counted invalid
 * and ignored (the batch's readings still count). */
START_TEST(test_bad_step_refused)
{
	struct agg_stats st;
	lf_open();
	lf_reading("vm-t", M_VCPUS, T0, 2, 0, 0);
	lf_flush();
	bt.clock_step_ns = -5 * S;
	lf_reading("vm-t", M_VCPUS, T0 + 10 * S, 2, 0, 0);
	lf_flush();
	bt.clock_step_ns = AGG_CLOCK_STEP_MAX_NS + 1;
	lf_reading("vm-t", M_VCPUS, T0 + 20 * S, 2, 0, 0);
	lf_flush();
	agg_get_stats(agg, &st);
	ck_assert_uint_eq(st.invalid, 2);
	ck_assert_uint_eq(st.clock_steps, 0);
	ck_assert_uint_eq(st.samples, 3);
	lf_close();
	int64_t v = lf_query("SELECT CAST(round(sum(quantity)) AS INTEGER) FROM usage");
	ck_assert_int_eq(v, 40);           /* 2 x 20 s: nothing moved */
	lf_teardown();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("clockstep");
	TCase *tc = tcase_create("clockstep");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_forward_step_is_no_gap);
	tcase_add_test(tc, test_bad_step_refused);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
