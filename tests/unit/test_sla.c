/*
 * test_sla.c: availability, incidents and credits of the SLA scenarios,
 * each worked out by hand in its comment. The ledger is written by the real
 * aggregator (tests/unit/ledger_fixture.h) from readings and events as the
 * collectors send them: a VM's "instance" gauge, a final reading
 * (SAMPLE_F_LAST) before a crash or stop, the restart counted from its
 * origin.
 *
 * The plan's classes: "gold" (flavor m1.large) target 99.95 %, credits below
 * 99.95 %: 10 %, below 99 %: 25 %, below 95 %: 100 %; "std" (the rest)
 * target 99.99 %, credits below 99.99 %: 10 %, below 99.9 %: 25 %. Grace
 * for silences: 10 minutes.
 *
 * Times: NOV = 2026-11-01T00:00:00Z (1793491200), DEC = 2026-12-01
 * (1796083200): November has 30 days = 2,592,000 s. OCT = 2026-10-01
 * (1790812800): October has 31 days = 2,678,400 s.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invoice.h"
#include "plan.h"
#include "sla.h"
#include "sla_probe.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define OCT (1790812800LL * NS_PER_SEC)
#define NOV (1793491200LL * NS_PER_SEC)
#define DEC (1796083200LL * NS_PER_SEC)
#define S NS_PER_SEC
#define M (60 * NS_PER_SEC)
#define H NS_PER_HOUR
#define D (24 * NS_PER_HOUR)

static const char plan_yaml[] =
	"plan: sla\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"
	"      - {meter: instance, unit: instance-hour, price: 1}\n"
	"sla:\n  grace: 10m\n  classes:\n"
	"    - name: gold\n      select: {flavor: m1.large}\n      target: 99.95%\n      credits:\n"
	"        - {below: 99.95%, credit: 10%}\n        - {below: 99%, credit: 25%}\n"
	"        - {below: 95%, credit: 100%}\n"
	"    - name: std\n      target: 99.99%\n      credits:\n"
	"        - {below: 99.99%, credit: 10%}\n        - {below: 99.9%, credit: 25%}\n";

/* vm's first reading of a life at t, counted from there; flavor (first
 * sight only) describes it */
static void born(const char *vm, const char *flavor, int64_t t)
{
	if (flavor)
		lf_meta(vm, "acme", flavor, t);
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, vm, sizeof(s.resource));
	s.meter = M_INSTANCE;
	s.kind = SAMPLE_GAUGE;
	s.time_ns = s.origin_ns = t;
	s.v.gauge = 1;
	ck_assert_int_eq(batch_add_sample(&bt, &s), 0);
	lf_flush();
}

static void alive(const char *vm, int64_t t)
{
	lf_reading(vm, M_INSTANCE, t, 1, 0, 0);
	lf_flush();
}

/* down at t (final reading and the event), up again at u */
static void outage(const char *vm, int64_t t, int64_t u, const char *type, const char *reason)
{
	lf_reading(vm, M_INSTANCE, t, 1, 0, SAMPLE_F_LAST);
	lf_event(vm, t, type, reason);
	lf_flush();
	lf_event(vm, u, "started", "booted");
	born(vm, NULL, u);
}

static void report(int64_t from, int64_t to, struct sla_report *r, struct plan *p)
{
	struct plan_errors errs;
	struct tally_err e = { 0 };
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(plan_yaml, f);
	fclose(f);
	ck_assert_msg(plan_load(plan_path, p, &errs) == 0, "%s", errs.msg[0]);
	struct sla_query q = { .ledger = ledger, .from_ns = from, .to_ns = to };
	ck_assert_msg(sla_compute(&q, p, r, &e) == 0, "%s", e.msg);
}

static const struct sla_vm *vm_of(const struct sla_report *r, const char *name)
{
	for (size_t i = 0; i < r->n_vms; i++)
		if (!strcmp(r->vms[i].name, name))
			return &r->vms[i];
	ck_abort_msg("no VM %s in the report", name);
	return NULL;
}

static void avail_is(const struct sla_vm *v, const char *want)
{
	char b[24];
	ck_assert_str_eq(sla_availability_text(v, b, sizeof(b)), want);
}

/* A crash at 2026-11-10T10:00:00Z, restarted at 10:07:30: 450 s down of
 * the 2,592,000 expected. (2592000 - 450) / 2592000 = 99.98263...%: below
 * std's 99.99 % (credit 10 %), not below 99.9 %.
 * A user shutdown at 11-20T10:00 restarted at 12:00 is no downtime: vm-u
 * is expected 2592000 - 7200 s and is 100 %. */
START_TEST(test_crash_and_user_shutdown)
{
	lf_open();
	born("vm-c", "m1.small", NOV);
	born("vm-u", "m1.small", NOV);
	outage("vm-c", NOV + 9 * D + 10 * H, NOV + 9 * D + 10 * H + 7 * M + 30 * S, "crashed", "panicked");
	outage("vm-u", NOV + 19 * D + 10 * H, NOV + 19 * D + 12 * H, "stopped", "shutdown");
	alive("vm-c", DEC);
	alive("vm-u", DEC);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(NOV, DEC, &r, &p);
	const struct sla_vm *c = vm_of(&r, "vm-c"), *u = vm_of(&r, "vm-u");
	ck_assert_int_eq(c->expected_ns, 2592000 * S);
	ck_assert_int_eq(c->down_ns, 450 * S);
	avail_is(c, "99.9826");
	ck_assert_str_eq(p.sla[c->cls].name, "std");
	ck_assert(c->breached);
	ck_assert_int_eq(c->credit_ppm, 100000);
	ck_assert_uint_eq(c->n_incidents, 1);
	ck_assert_str_eq(c->incidents[0].cause, "crashed");
	ck_assert_int_eq(c->incidents[0].start_ns, NOV + 9 * D + 10 * H);
	ck_assert_int_eq(c->incidents[0].end_ns, NOV + 9 * D + 10 * H + 450 * S);
	ck_assert_int_eq(u->expected_ns, (2592000 - 7200) * S);
	ck_assert_int_eq(u->down_ns, 0);
	avail_is(u, "100.0000");
	ck_assert_int_eq(u->credit_ppm, 0);
	ck_assert(!u->breached);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* Silence on 2026-11-10 (a one-day period, 86,400 s), readings every 5 min
 * and max_gap 5 min: vm-l goes 20 min without readings (10:00 -> 10:20),
 * longer than the 10 min grace: 1200 s down, (86400 - 1200) / 86400 =
 * 98.6111 %. vm-s goes 8 min (10:00 -> 10:08): a gap past max_gap, so the
 * aggregator records it, but within the grace: no downtime. */
START_TEST(test_host_silent_longer_and_shorter_than_grace)
{
	const int64_t day = NOV + 9 * D;
	lf_max_gap_ns = 5 * M;
	lf_open();
	born("vm-l", "m1.small", day);
	born("vm-s", "m1.small", day);
	for (int64_t t = day + 5 * M; t <= day + D; t += 5 * M) {
		if (t > day + 10 * H && t < day + 10 * H + 20 * M)
			;       /* vm-l silent */
		else
			lf_reading("vm-l", M_INSTANCE, t, 1, 0, 0);
		if (t == day + 10 * H + 5 * M)
			lf_reading("vm-s", M_INSTANCE, day + 10 * H + 8 * M, 1, 0, 0);
		else
			lf_reading("vm-s", M_INSTANCE, t, 1, 0, 0);
		lf_flush();
	}
	lf_close();
	lf_max_gap_ns = 40 * D;
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	const struct sla_vm *l = vm_of(&r, "vm-l"), *s = vm_of(&r, "vm-s");
	ck_assert_int_eq(l->expected_ns, 86400 * S);
	ck_assert_int_eq(l->down_ns, 1200 * S);
	avail_is(l, "98.6111");
	ck_assert_uint_eq(l->n_incidents, 1);
	ck_assert_str_eq(l->incidents[0].cause, "silent");
	ck_assert_int_eq(l->incidents[0].start_ns, day + 10 * H);
	ck_assert_int_eq(l->incidents[0].end_ns, day + 10 * H + 20 * M);
	ck_assert_int_eq(l->credit_ppm, 250000);       /* 98.61 < 99.9: 25 % */
	ck_assert_int_eq(s->down_ns, 0);
	ck_assert_uint_eq(s->n_incidents, 0);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* A silence over other states, one day (86,400 s), readings every 5 min,
 * max_gap 5 min, grace 10 min: nothing is heard of vm-x or vm-y from 10:00
 * to 13:00 (the aggregator records silent 10:00, heard 13:00: 3 h, longer
 * than the grace). Downtime is expected time the VM did not run: an instant
 * is down once, and a stretch not expected is never down.
 *   vm-x is paused by an I/O error from 11:00 to 12:00 inside the silence:
 *   down 10:00-13:00 once, 10,800 s (ioerror 3600 s, silent the other
 *   7200 s), not 3600 + 10,800. (86400 - 10800) / 86400 = 87.5 %.
 *   vm-y is paused by its tenant from 09:00 to 12:00: not expected for
 *   10,800 s, and of the silence only 12:00-13:00 (3600 s) was expected:
 *   (75600 - 3600) / 75600 = 95.238095...% -> 95.2380. */
START_TEST(test_silence_over_a_pause)
{
	const int64_t day = NOV + 9 * D;
	lf_max_gap_ns = 5 * M;
	lf_open();
	born("vm-x", "m1.small", day);
	born("vm-y", "m1.small", day);
	for (int64_t t = day + 5 * M; t <= day + D; t += 5 * M) {
		if (t == day + 9 * H)
			lf_event("vm-y", t, "suspended", "paused");
		if (t == day + 11 * H)
			lf_event("vm-x", t, "suspended", "ioerror");
		if (t == day + 12 * H) {
			lf_event("vm-x", t, "resumed", "unpaused");
			lf_event("vm-y", t, "resumed", "unpaused");
		}
		if (t <= day + 10 * H || t >= day + 13 * H) {
			lf_reading("vm-x", M_INSTANCE, t, 1, 0, 0);
			lf_reading("vm-y", M_INSTANCE, t, 1, 0, 0);
		}
		lf_flush();
	}
	lf_close();
	lf_max_gap_ns = 40 * D;
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	const struct sla_vm *x = vm_of(&r, "vm-x"), *y = vm_of(&r, "vm-y");
	ck_assert_int_eq(x->expected_ns, 86400 * S);
	ck_assert_int_eq(x->down_ns, 10800 * S);
	avail_is(x, "87.5000");
	ck_assert_uint_eq(x->n_incidents, 2);
	/* listed in time order: the silence (10:00) before the pause inside
	 * it (11:00), though it was heard last */
	ck_assert_str_eq(x->incidents[0].cause, "silent");
	ck_assert_str_eq(x->incidents[1].cause, "ioerror");
	for (size_t i = 0; i < x->n_incidents; i++) {
		const struct sla_incident *in = &x->incidents[i];
		if (!strcmp(in->cause, "silent")) {
			ck_assert_int_eq(in->start_ns, day + 10 * H);
			ck_assert_int_eq(in->end_ns, day + 13 * H);
			ck_assert_int_eq(in->counted_ns, 7200 * S);
		} else {
			ck_assert_str_eq(in->cause, "ioerror");
			ck_assert_int_eq(in->counted_ns, 3600 * S);
		}
	}
	ck_assert_int_eq(y->expected_ns, 75600 * S);
	ck_assert_int_eq(y->down_ns, 3600 * S);
	avail_is(y, "95.2380");
	ck_assert_uint_eq(y->n_incidents, 1);
	ck_assert_str_eq(y->incidents[0].cause, "silent");
	ck_assert_int_eq(y->incidents[0].start_ns, day + 10 * H);
	ck_assert_int_eq(y->incidents[0].end_ns, day + 13 * H);
	ck_assert_int_eq(y->incidents[0].counted_ns, 3600 * S);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* A crash at 2026-10-31T23:50:00Z, restarted 2026-11-01T00:20:00Z: 600 s of
 * it in October, 1200 s in November, one incident with its real start and
 * end in both reports. vm-b (m1.large, "gold") lives from 2026-10-01.
 *   October:  (2678400 - 600) / 2678400 = 99.97759...%  -> 99.9775, >= 99.95
 *   November: (2592000 - 1200) / 2592000 = 99.95370...% -> 99.9537, >= 99.95 */
START_TEST(test_incident_across_the_month_boundary)
{
	lf_open();
	born("vm-b", "m1.large", OCT);
	outage("vm-b", NOV - 10 * M, NOV + 20 * M, "crashed", "panicked");
	alive("vm-b", DEC);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(OCT, NOV, &r, &p);
	const struct sla_vm *v = vm_of(&r, "vm-b");
	ck_assert_str_eq(p.sla[v->cls].name, "gold");
	ck_assert_int_eq(v->down_ns, 600 * S);
	avail_is(v, "99.9775");
	ck_assert_int_eq(v->incidents[0].start_ns, NOV - 10 * M);
	ck_assert_int_eq(v->incidents[0].end_ns, NOV + 20 * M);
	ck_assert_int_eq(v->incidents[0].counted_ns, 600 * S);
	ck_assert(!v->breached);
	sla_report_release(&r);
	plan_release(&p);
	report(NOV, DEC, &r, &p);
	v = vm_of(&r, "vm-b");
	ck_assert_int_eq(v->down_ns, 1200 * S);
	avail_is(v, "99.9537");
	ck_assert_int_eq(v->incidents[0].start_ns, NOV - 10 * M);
	ck_assert_int_eq(v->incidents[0].counted_ns, 1200 * S);
	ck_assert_int_eq(v->credit_ppm, 0);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* Silent for good across the month's end: vm-q's last reading is at
 * 2026-10-31T23:55:00Z and nothing is heard of it since; vm-w runs on, so
 * the data go on to 11-10. The silence is from 23:55 to the end of the data
 * (9 days), far longer than the 10 min grace: downtime over its whole
 * length, 300 s of it in October (docs/sla.md: an incident that spans the
 * boundary counts in each period for the part inside it). That the part in
 * October is shorter than the grace does not matter: the grace is about
 * the silence, not about a period's share of it.
 *   October: (2678400 - 300) / 2678400 = 99.988799...% -> 99.9887, below
 *   std's 99.99 % (not below 99.9 %): breached, credit 10 %;
 *   November: all 777,600 s of the data (to 11-10) down. */
/* A host that crashes with its VMs and comes back: on 2026-11-10 (one
 * day, 86,400 s, readings every 5 min, max_gap 5 min, grace 10 min) vm-h
 * is last read at 10:00, then nothing (no final reading, no stop: its host
 * died with it), and it is started again at 12:00, a new life (a started
 * event and a first reading whose origin is 12:00). vm-o on another host
 * keeps the data going. The aggregator records silent 10:00, heard 12:00:
 * 7200 s, longer than the grace, down: (86400 - 7200) / 86400 = 91.6666 %.
 * Before, the new life's start was taken as nothing having happened:
 * 100.0000 %. */
START_TEST(test_host_crash_then_started_again)
{
	const int64_t day = NOV + 9 * D;
	lf_max_gap_ns = 5 * M;
	lf_open();
	born("vm-h", "m1.small", day);
	born("vm-o", "m1.small", day);
	for (int64_t t = day + 5 * M; t <= day + D; t += 5 * M) {
		if (t <= day + 10 * H)
			lf_reading("vm-h", M_INSTANCE, t, 1, 0, 0);
		if (t == day + 12 * H) {
			lf_event("vm-h", t, "started", "booted");
			born("vm-h", NULL, t);
		} else if (t > day + 12 * H) {
			lf_reading("vm-h", M_INSTANCE, t, 1, 0, 0);
		}
		lf_reading("vm-o", M_INSTANCE, t, 1, 0, 0);
		lf_flush();
	}
	lf_close();
	lf_max_gap_ns = 40 * D;
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	const struct sla_vm *h = vm_of(&r, "vm-h"), *o = vm_of(&r, "vm-o");
	ck_assert_int_eq(h->expected_ns, 86400 * S);
	ck_assert_int_eq(h->down_ns, 7200 * S);
	avail_is(h, "91.6666");
	ck_assert_uint_eq(h->n_incidents, 1);
	ck_assert_str_eq(h->incidents[0].cause, "silent");
	ck_assert_int_eq(h->incidents[0].start_ns, day + 10 * H);
	ck_assert_int_eq(h->incidents[0].end_ns, day + 12 * H);
	ck_assert_int_eq(o->down_ns, 0);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* The same day, but vm-s was stopped at 10:01 (a stopped event) and its
 * final reading was lost; the aggregator restarts at 11:00 (so the stop is
 * known from the ledger, not from its memory), and vm-s is started again
 * at 12:00. Its end was seen: no silence. Off on request 10:01 - 12:00
 * (7140 s): expected 86400 - 7140 = 79260 s, no downtime, 100.0000 %. */
START_TEST(test_stop_with_lost_final_reading_then_started)
{
	const int64_t day = NOV + 9 * D;
	lf_max_gap_ns = 5 * M;
	lf_open();
	born("vm-s", "m1.small", day);
	born("vm-o", "m1.small", day);
	for (int64_t t = day + 5 * M; t <= day + D; t += 5 * M) {
		if (t <= day + 10 * H)
			lf_reading("vm-s", M_INSTANCE, t, 1, 0, 0);
		if (t == day + 10 * H + 5 * M)
			lf_event("vm-s", day + 10 * H + M, "stopped", "destroyed");
		if (t == day + 12 * H) {
			lf_event("vm-s", t, "started", "booted");
			born("vm-s", NULL, t);
		} else if (t > day + 12 * H) {
			lf_reading("vm-s", M_INSTANCE, t, 1, 0, 0);
		}
		lf_reading("vm-o", M_INSTANCE, t, 1, 0, 0);
		lf_flush();
		if (t == day + 11 * H) {
			/* tallyd restarts: the aggregator reopens the ledger */
			struct tally_err e = { 0 };
			struct agg_config ac = { .ledger_path = ledger, .max_gap_ns = lf_max_gap_ns };
			ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
			agg_close(agg);
			ck_assert_msg(agg_open(&agg, &ac, &e) == 0, "%s", e.msg);
		}
	}
	lf_close();
	lf_max_gap_ns = 40 * D;
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	const struct sla_vm *v = vm_of(&r, "vm-s");
	ck_assert_int_eq(v->expected_ns, 79260 * S);
	ck_assert_int_eq(v->down_ns, 0);
	ck_assert_uint_eq(v->n_incidents, 0);
	avail_is(v, "100.0000");
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

START_TEST(test_silent_for_good_across_the_month_end)
{
	lf_open();
	born("vm-q", "m1.small", OCT);
	born("vm-w", "m1.small", OCT);
	alive("vm-q", NOV - 5 * M);
	alive("vm-w", NOV + 9 * D);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(OCT, NOV, &r, &p);
	const struct sla_vm *v = vm_of(&r, "vm-q");
	ck_assert_int_eq(v->expected_ns, 2678400 * S);
	ck_assert_int_eq(v->down_ns, 300 * S);
	avail_is(v, "99.9887");
	ck_assert(v->breached);
	ck_assert_int_eq(v->credit_ppm, 100000);
	ck_assert_uint_eq(v->n_incidents, 1);
	ck_assert_str_eq(v->incidents[0].cause, "silent");
	ck_assert_int_eq(v->incidents[0].start_ns, NOV - 5 * M);
	ck_assert_int_eq(v->incidents[0].end_ns, INT64_MAX);
	ck_assert_int_eq(v->incidents[0].counted_ns, 300 * S);
	sla_report_release(&r);
	plan_release(&p);
	report(NOV, DEC, &r, &p);
	v = vm_of(&r, "vm-q");
	ck_assert_int_eq(v->expected_ns, 777600 * S);
	ck_assert_int_eq(v->down_ns, 777600 * S);
	ck_assert_int_eq(v->incidents[0].start_ns, NOV - 5 * M);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* Created on 2026-11-16T00:00Z: measured over its own 15 days (1,296,000 s).
 * A 30 min crash: (1296000 - 1800) / 1296000 = 99.86111...% -> 99.8611. */
START_TEST(test_vm_created_mid_month)
{
	lf_open();
	born("vm-n", "m1.small", NOV + 15 * D);
	outage("vm-n", NOV + 20 * D, NOV + 20 * D + 30 * M, "crashed", "panicked");
	alive("vm-n", DEC);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(NOV, DEC, &r, &p);
	const struct sla_vm *v = vm_of(&r, "vm-n");
	ck_assert_int_eq(v->from_ns, NOV + 15 * D);
	ck_assert_int_eq(v->expected_ns, 1296000 * S);
	ck_assert_int_eq(v->down_ns, 1800 * S);
	avail_is(v, "99.8611");
	ck_assert_int_eq(v->credit_ppm, 250000);       /* below 99.9 % */
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* Pauses, one day (86,400 s): an I/O error pauses vm-p from 02:00 to 02:15
 * (900 s down), the tenant pauses it from 05:00 to 06:00 (3600 s not
 * expected): (82800 - 900) / 82800 = 98.91304...% -> 98.9130. */
START_TEST(test_ioerror_pause_and_user_pause)
{
	const int64_t day = NOV + 9 * D;
	lf_open();
	born("vm-p", "m1.small", day);
	lf_event("vm-p", day + 2 * H, "suspended", "ioerror");
	lf_event("vm-p", day + 2 * H + 15 * M, "resumed", "");
	lf_event("vm-p", day + 5 * H, "suspended", "paused");
	lf_event("vm-p", day + 6 * H, "resumed", "");
	alive("vm-p", day + D);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	const struct sla_vm *v = vm_of(&r, "vm-p");
	ck_assert_int_eq(v->expected_ns, 82800 * S);
	ck_assert_int_eq(v->down_ns, 900 * S);
	avail_is(v, "98.9130");
	ck_assert_uint_eq(v->n_incidents, 1);
	ck_assert_str_eq(v->incidents[0].cause, "ioerror");
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* A down VM stays down until it is started or resumed, or someone stops
 * or undefines it (docs/sla.md): a pause on request while it is paused by
 * an I/O error does not end the downtime. One day (86,400 s): vm-k is
 * paused by an I/O error at 02:00, "suspended: paused" at 02:30, resumed
 * at 03:00: down 02:00-03:00, 3600 s, all expected.
 * 82,800 / 86,400 = 95.8333...% -> 95.8333. */
START_TEST(test_pause_while_down_is_down)
{
	const int64_t day = NOV + 9 * D;
	lf_open();
	born("vm-k", "m1.small", day);
	lf_event("vm-k", day + 2 * H, "suspended", "ioerror");
	lf_event("vm-k", day + 2 * H + 30 * M, "suspended", "paused");
	lf_event("vm-k", day + 3 * H, "resumed", "unpaused");
	alive("vm-k", day + D);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	const struct sla_vm *v = vm_of(&r, "vm-k");
	ck_assert_int_eq(v->expected_ns, 86400 * S);
	ck_assert_int_eq(v->down_ns, 3600 * S);
	avail_is(v, "95.8333");
	ck_assert_uint_eq(v->n_incidents, 1);
	ck_assert_str_eq(v->incidents[0].cause, "ioerror");
	ck_assert_int_eq(v->incidents[0].end_ns, day + 3 * H);
	ck_assert_uint_eq(v->n_offs, 0);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* Credit tiers at their edges, "gold", one day (86,400 s) each:
 *   vm-e: down 43.2 s: exactly 99.95 %: not below it, no credit
 *   vm-f: down 43.2 s + 1 ns: below 99.95 %: 10 %
 *   vm-g: down 864 s: exactly 99 %: not below 99 %, so 10 %
 *   vm-h: down 4320 s: exactly 95 %: 25 %; vm-i: 4320 s + 1 ns: 100 % */
START_TEST(test_credit_tier_edges)
{
	static const struct { const char *vm; int64_t down; int64_t credit; bool breached; } c[] = {
		{ "vm-e", 43200 * NS_PER_SEC / 1000, 0, false },
		{ "vm-f", 43200 * NS_PER_SEC / 1000 + 1, 100000, true },
		{ "vm-g", 864 * S, 100000, true },
		{ "vm-h", 4320 * S, 250000, true },
		{ "vm-i", 4320 * S + 1, 1000000, true },
	};
	const int64_t day = NOV + 9 * D;
	lf_open();
	for (int i = 0; i < 5; i++) {
		born(c[i].vm, "m1.large", day);
		outage(c[i].vm, day + H, day + H + c[i].down, "crashed", "panicked");
		alive(c[i].vm, day + D);
	}
	lf_close();
	struct sla_report r;
	struct plan p;
	report(day, day + D, &r, &p);
	for (int i = 0; i < 5; i++) {
		const struct sla_vm *v = vm_of(&r, c[i].vm);
		ck_assert_int_eq(v->down_ns, c[i].down);
		ck_assert_msg(v->credit_ppm == c[i].credit, "%s: credit %lld ppm, want %lld", c[i].vm,
			      (long long)v->credit_ppm, (long long)c[i].credit);
		ck_assert_msg(v->breached == c[i].breached, "%s: breached %d", c[i].vm, v->breached);
	}
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* The error budget (SLABurn), November (2,592,000 s), data up to
 * 11-10T11:00Z. vm-g (gold, 99.95 %) crashed 450 s on the 3rd and again at
 * 11-10T10:00Z, still down: down 450 + 3600 = 4050 s. It is not off, so its
 * expected time runs to the month's end: 2,592,000 s, budget 0.05 % of it =
 * 1296 s. At 100 % it passed 1296 s at 10:00 + (1296 - 450) s + 1 ns; at
 * 50 % (648 s) at 10:00 + 198 s + 1 ns; at 1000 % (12,960 s) not yet.
 * vm-s (std, 99.99 %) has no downtime: budget 0.01 % = 259.2 s, not burning. */
START_TEST(test_budget_ongoing_crash)
{
	const int64_t t = NOV + 9 * D + 10 * H;
	lf_open();
	born("vm-g", "m1.large", NOV);
	born("vm-s", "m1.small", NOV);
	outage("vm-g", NOV + 2 * D + 10 * H, NOV + 2 * D + 10 * H + 450 * S, "crashed", "panicked");
	lf_reading("vm-g", M_INSTANCE, t, 1, 0, SAMPLE_F_LAST);
	lf_event("vm-g", t, "crashed", "panicked");
	lf_flush();
	alive("vm-s", t + H);
	lf_close();
	struct sla_report r;
	struct plan p;
	struct sla_budget b;
	report(NOV, DEC, &r, &p);
	const struct sla_vm *g = vm_of(&r, "vm-g"), *v = vm_of(&r, "vm-s");
	ck_assert_int_eq(g->down_ns, 4050 * S);
	ck_assert(sla_budget_of(&r, g, &p, 1000000, &b));
	ck_assert_int_eq(b.expected_ns, 2592000 * S);
	ck_assert_int_eq(b.budget_ns, 1296 * S);
	ck_assert(b.burning);
	ck_assert_int_eq(b.cross_ns, t + 846 * S + 1);
	ck_assert(sla_budget_of(&r, g, &p, 500000, &b));
	ck_assert_int_eq(b.threshold_ns, 648 * S);
	ck_assert(b.burning);
	ck_assert_int_eq(b.cross_ns, t + 198 * S + 1);
	ck_assert(sla_budget_of(&r, g, &p, 10000000, &b));
	ck_assert(!b.burning);
	ck_assert(sla_budget_of(&r, v, &p, 1000000, &b));
	ck_assert_int_eq(b.budget_ns, 259200 * S / 1000);
	ck_assert(!b.burning);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* Off at the end: vm-o and vm-r (std, 99.99 %) both crash for 100 s on
 * 11-02 at 10:00; the tenant stops vm-o on 11-05 (4 days = 345,600 s
 * expected, off since), vm-r runs on; data up to 11-10. vm-o's expected
 * time stays 345,600 s (it is off): budget 34.56 s, passed at 10:00 +
 * 34.56 s + 1 ns. vm-r's runs to the month's end: 2,592,000 s, budget
 * 259.2 s: 100 s is not past it. */
START_TEST(test_budget_off_at_end)
{
	const int64_t t = NOV + D + 10 * H;
	lf_open();
	born("vm-o", "m1.small", NOV);
	born("vm-r", "m1.small", NOV);
	outage("vm-o", t, t + 100 * S, "crashed", "panicked");
	outage("vm-r", t, t + 100 * S, "crashed", "panicked");
	lf_reading("vm-o", M_INSTANCE, NOV + 4 * D, 1, 0, SAMPLE_F_LAST);
	lf_event("vm-o", NOV + 4 * D, "stopped", "shutdown");
	lf_flush();
	alive("vm-r", NOV + 9 * D);
	lf_close();
	struct sla_report r;
	struct plan p;
	struct sla_budget b;
	report(NOV, DEC, &r, &p);
	const struct sla_vm *o = vm_of(&r, "vm-o"), *v = vm_of(&r, "vm-r");
	ck_assert(!o->expected_at_end);
	ck_assert(sla_budget_of(&r, o, &p, 1000000, &b));
	ck_assert_int_eq(b.expected_ns, 345600 * S);
	ck_assert_int_eq(b.budget_ns, 34560 * S / 1000);
	ck_assert(b.burning);
	ck_assert_int_eq(b.cross_ns, t + 34560 * S / 1000 + 1);
	ck_assert(v->expected_at_end);
	ck_assert(sla_budget_of(&r, v, &p, 1000000, &b));
	ck_assert_int_eq(b.expected_ns, 2592000 * S);
	ck_assert(!b.burning);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* At the month's end burning at 100 % is the breach (gold, 99.95 %, budget
 * 1296 s): vm-e down exactly 1296 s on the 6th is at 99.95 % exactly: not
 * burning, not breached; vm-f 1 ns more: both, passed at the crash + 1296 s
 * + 1 ns (its end). vm-n, created on the 16th (15 days, budget 648 s),
 * down 700 s on the 21st: both, passed at the crash + 648 s + 1 ns.
 * The probe (sla_probe_burn, what tallyd runs) says the same for the month
 * holding 11-30T12:00Z; vm-f's availability (2592000 - 1296.000000001) /
 * 2592000 = 99.949999...% shows as 99.9499. */
START_TEST(test_budget_at_the_end_is_the_breach)
{
	static const struct { const char *vm; int64_t born, down; } c[] = {
		{ "vm-e", NOV, 1296 * S }, { "vm-f", NOV, 1296 * S + 1 }, { "vm-n", NOV + 15 * D, 700 * S },
	};
	lf_open();
	for (int i = 0; i < 3; i++)
		born(c[i].vm, "m1.large", c[i].born);
	outage("vm-e", NOV + 5 * D, NOV + 5 * D + c[0].down, "crashed", "panicked");
	outage("vm-f", NOV + 5 * D, NOV + 5 * D + c[1].down, "crashed", "panicked");
	outage("vm-n", NOV + 20 * D, NOV + 20 * D + c[2].down, "crashed", "panicked");
	for (int i = 0; i < 3; i++)
		alive(c[i].vm, DEC);
	lf_close();
	struct sla_report r;
	struct plan p;
	struct sla_budget b;
	report(NOV, DEC, &r, &p);
	const struct sla_vm *e = vm_of(&r, "vm-e"), *f = vm_of(&r, "vm-f"), *n = vm_of(&r, "vm-n");
	ck_assert(sla_budget_of(&r, e, &p, 1000000, &b));
	ck_assert(!b.burning && !e->breached);
	ck_assert(sla_budget_of(&r, f, &p, 1000000, &b));
	ck_assert(b.burning && f->breached);
	ck_assert_int_eq(b.cross_ns, NOV + 5 * D + 1296 * S + 1);
	ck_assert(sla_budget_of(&r, n, &p, 1000000, &b));
	ck_assert_int_eq(b.budget_ns, 648 * S);
	ck_assert(b.burning && n->breached);
	ck_assert_int_eq(b.cross_ns, NOV + 20 * D + 648 * S + 1);

	struct sla_probe_ctx ctx = { .ledger = ledger, .plan = plan_path };
	struct alert_sla_set set;
	struct tally_err err = { 0 };
	ck_assert_msg(sla_probe_burn(&ctx, NOV + 29 * D + 12 * H, 1000000, &set, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(set.from_ns, NOV);
	ck_assert_int_eq(set.to_ns, DEC);
	ck_assert_uint_eq(set.n, 3);
	for (size_t i = 0; i < set.n; i++) {
		const struct alert_sla *a = &set.v[i];
		ck_assert_str_eq(a->cls, "gold");
		ck_assert_str_eq(a->tenant, "acme");
		if (!strcmp(a->name, "vm-e")) {
			ck_assert(!a->burning);
			ck_assert(a->used == 1.0);
		} else if (!strcmp(a->name, "vm-f")) {
			ck_assert(a->burning);
			ck_assert_int_eq(a->since_ns, NOV + 5 * D + 1296 * S + 1);
			ck_assert_str_eq(a->summary, "availability 99.9499 % this month so far, target 99.9500 %"
				     " (class gold): downtime 1296 s of a 1296 s error budget for the month");
		} else {
			ck_assert_str_eq(a->name, "vm-n");
			ck_assert(a->burning);
			ck_assert_int_eq(a->since_ns, NOV + 20 * D + 648 * S + 1);
		}
	}
	alert_sla_set_release(&set);
	/* a plan that does not load is an error naming it, and says nothing */
	FILE *pf = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(pf);
	fputs("plan: x\nversions: 3\n", pf);
	fclose(pf);
	ck_assert_int_eq(sla_probe_burn(&ctx, NOV, 1000000, &set, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, plan_path));
	ck_assert_ptr_null(set.v);
	sla_report_release(&r);
	plan_release(&p);
}
END_TEST

/* The HTML page escapes what came from outside (names from domain XML,
 * tenants from metadata, event reasons, the plan's name): a VM named
 * "<b>web</b> & co" in tenant "o'brien" shows as text, never as markup.
 * Its figures: expected 1000 s, down 10 s: 99.0000 %; downtime 0h00m10s. */
START_TEST(test_html_escapes)
{
	struct sla_incident in = { .start_ns = NOV, .end_ns = NOV + 10 * S, .counted_ns = 10 * S,
				   .cause = "crashed", .detail = "\"x\"<y>" };
	struct sla_vm v = { .uuid = "u-1", .name = "<b>web</b> & co", .tenant = "o'brien", .cls = -1,
			    .expected_ns = 1000 * S, .down_ns = 10 * S, .incidents = &in, .n_incidents = 1 };
	struct sla_report r = { .from_ns = NOV, .to_ns = DEC, .data_until_ns = DEC, .vms = &v, .n_vms = 1 };
	struct plan p;
	memset(&p, 0, sizeof(p));
	str_copy(p.name, "a<plan>", sizeof(p.name));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(sla_render(f, &r, &p, SLA_HTML), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "<td class=\"name\">&lt;b&gt;web&lt;/b&gt; &amp; co</td>"));
	ck_assert_ptr_nonnull(strstr(buf, "<td>o&#39;brien</td>"));
	ck_assert_ptr_nonnull(strstr(buf, "(&quot;x&quot;&lt;y&gt;)"));
	ck_assert_ptr_nonnull(strstr(buf, "plan a&lt;plan&gt;"));
	ck_assert_ptr_null(strstr(buf, "<b>"));
	ck_assert_ptr_nonnull(strstr(buf, "<td class=\"n avail\">99.0000</td>"));
	ck_assert_ptr_nonnull(strstr(buf, "<td class=\"n\">0h00m10s</td>"));
	ck_assert_ptr_null(strstr(buf, "Data only up to"));  /* the data cover the period */
	free(buf);
}
END_TEST

/* The credit on the invoice: the crash scenario of the first test, priced
 * 1.00 per instance-hour. vm-c ran 2,592,000 - 450 = 2,591,550 s, vm-u
 * 2,592,000 - 7,200 = 2,584,800 s: one line of 5,176,350 s = 1437.875
 * instance-hours -> 1437.88 (half-even). vm-c's share of it: 143788 cents
 * x 2591550 / 5176350 = 71987.7503... cents; its 10 % credit 7198.775...
 * -> 71.99. Total 1437.88 - 71.99 = 1365.89. */
START_TEST(test_credit_on_the_invoice)
{
	lf_open();
	born("vm-c", "m1.small", NOV);
	born("vm-u", "m1.small", NOV);
	outage("vm-c", NOV + 9 * D + 10 * H, NOV + 9 * D + 10 * H + 7 * M + 30 * S, "crashed", "panicked");
	outage("vm-u", NOV + 19 * D + 10 * H, NOV + 19 * D + 12 * H, "stopped", "shutdown");
	alive("vm-c", DEC);
	alive("vm-u", DEC);
	lf_close();
	struct sla_report r;
	struct plan p;
	report(NOV, DEC, &r, &p);
	sla_report_release(&r);
	struct rate_query q = { .ledger = ledger, .from_ns = NOV, .to_ns = DEC };
	struct invoice *v;
	size_t n;
	struct tally_err e = { 0 };
	ck_assert_msg(invoice_build_all(&p, &q, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(v[0].n_lines, 2);
	ck_assert_int_eq(v[0].lines[0].amount_minor, 143788);
	ck_assert_int_eq(v[0].lines[1].type, INV_CREDIT);
	ck_assert_int_eq(v[0].lines[1].amount_minor, -7199);
	ck_assert_msg(strstr(v[0].lines[1].description, "SLA credit vm-c: 10% of 719.88 (99.9826% available;"
				" crashed 2026-11-10T10:00:00Z, 0h07m30s)") != NULL, "%s", v[0].lines[1].description);
	ck_assert_int_eq(v[0].total_minor, 136589);
	invoice_release(&v[0]);
	free(v);
	plan_release(&p);
}
END_TEST

/* The credit is of the VM's charges as invoiced: after the tenant's
 * discount. The crash scenario again (vm-c down 450 s, 99.9826 %), acme has
 * 50 % off its usage, and the class credits 100 % below 99.99 %. The line:
 * 1437.88 as above, the discount 50 % of it = 718.94. vm-c's share of the
 * line is 143788 x 2591550 / 5176350 = 71987.750326 cents (to a millionth),
 * of which acme pays half: 35993.875163 -> its 100 % credit 359.94. Total
 * 1437.88 - 718.94 - 359.94 = 359.00: what acme pays for vm-u, which ran.
 * A credit of the undiscounted 719.88 would make the total -0.94: the
 * tenant paid for a VM that ran all month and for one that did not. */
START_TEST(test_credit_after_the_discount)
{
	lf_open();
	born("vm-c", "m1.small", NOV);
	born("vm-u", "m1.small", NOV);
	outage("vm-c", NOV + 9 * D + 10 * H, NOV + 9 * D + 10 * H + 7 * M + 30 * S, "crashed", "panicked");
	outage("vm-u", NOV + 19 * D + 10 * H, NOV + 19 * D + 12 * H, "stopped", "shutdown");
	alive("vm-c", DEC);
	alive("vm-u", DEC);
	lf_close();
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("plan: sla\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"
	      "      - {meter: instance, unit: instance-hour, price: 1}\n"
	      "tenants:\n  acme:\n    discount: 50%\n"
	      "sla:\n  grace: 10m\n  classes:\n"
	      "    - name: all\n      target: 99.99%\n      credits:\n        - {below: 99.99%, credit: 100%}\n", f);
	fclose(f);
	struct plan p;
	struct plan_errors errs;
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
	struct rate_query q = { .ledger = ledger, .from_ns = NOV, .to_ns = DEC };
	struct invoice *v;
	size_t n;
	struct tally_err e = { 0 };
	ck_assert_msg(invoice_build_all(&p, &q, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	int64_t usage = 0, discount = 0, credit = 0;
	const char *desc = "";
	for (size_t i = 0; i < v[0].n_lines; i++) {
		const struct invoice_line *l = &v[0].lines[i];
		if (l->type == INV_DISCOUNT)
			discount += l->amount_minor;
		else if (l->type == INV_CREDIT) {
			credit += l->amount_minor;
			desc = l->description;
		} else
			usage += l->amount_minor;
	}
	ck_assert_int_eq(usage, 143788);
	ck_assert_int_eq(discount, -71894);
	ck_assert_int_eq(credit, -35994);
	ck_assert_msg(strstr(desc, "SLA credit vm-c: 100% of 359.94 (99.9826% available;") != NULL, "%s", desc);
	ck_assert_int_eq(v[0].total_minor, 35900);
	invoice_release(&v[0]);
	free(v);
	plan_release(&p);
}
END_TEST

/* Presets are the published tables: AWS EC2 instance-level 99.5 % with 10 /
 * 30 / 100 % below 99.5 / 99.0 / 95.0 %. An unknown preset is an error with
 * its place. */
START_TEST(test_presets)
{
	struct plan p;
	struct plan_errors errs;
	lf_open();
	lf_close();
	FILE *f = fopen(plan_path, "w");
	fputs("plan: x\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices: []\n"
	      "sla:\n  classes:\n    - {name: a, preset: aws-ec2-instance}\n", f);
	fclose(f);
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
	ck_assert_int_eq(p.sla[0].target_ppm, 995000);
	ck_assert_int_eq(p.sla[0].credits[1].below_ppm, 990000);
	ck_assert_int_eq(p.sla[0].credits[1].credit_ppm, 300000);
	ck_assert_int_eq(p.sla_grace_ns, 5 * M);
	plan_release(&p);
	f = fopen(plan_path, "w");
	fputs("plan: x\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices: []\n"
	      "sla:\n  classes:\n    - {name: a, preset: aws-ec3}\n", f);
	fclose(f);
	ck_assert_int_eq(plan_load(plan_path, &p, &errs), -EINVAL);
	ck_assert_msg(strstr(errs.msg[0], ":8:25: unknown SLA preset 'aws-ec3'") != NULL, "%s", errs.msg[0]);
}
END_TEST

/* A class is shown and credited by its name: one without a name, or
 * with the name of another, is refused with its place (two classes
 * "gold" of different targets would make the report say a VM of 99.97 %
 * is "gold" and breached next to one of 99.97 % "gold" that is not). */
START_TEST(test_class_names)
{
	static const struct { const char *classes, *want; } c[] = {
		{ "    - {target: 99.9%, credits: [{below: 99.9%, credit: 10%}]}\n",
		  ":8:7: an SLA class needs a 'name'" },
		{ "    - {name: '', target: 99.9%, credits: [{below: 99.9%, credit: 10%}]}\n",
		  ":8:7: an SLA class needs a 'name'" },
		{ "    - {name: gold, select: {flavor: m1.large}, preset: gce-instance}\n"
		  "    - {name: gold, target: 99.99%, credits: [{below: 99.99%, credit: 10%}]}\n",
		  ":9:14: SLA class 'gold' is named twice (each class needs a name of its own)" },
	};
	struct plan p;
	struct plan_errors errs;
	lf_open();
	lf_close();
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		FILE *f = fopen(plan_path, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(f, "plan: x\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices: []\n"
			"sla:\n  classes:\n%s", c[i].classes);
		fclose(f);
		ck_assert_int_eq(plan_load(plan_path, &p, &errs), -EINVAL);
		ck_assert_msg(strstr(errs.msg[0], c[i].want) != NULL, "%zu: %s", i, errs.msg[0]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sla");
	TCase *tc = tcase_create("sla");
	tcase_add_checked_fixture(tc, NULL, lf_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crash_and_user_shutdown);
	tcase_add_test(tc, test_host_silent_longer_and_shorter_than_grace);
	tcase_add_test(tc, test_silence_over_a_pause);
	tcase_add_test(tc, test_incident_across_the_month_boundary);
	tcase_add_test(tc, test_vm_created_mid_month);
	tcase_add_test(tc, test_silent_for_good_across_the_month_end);
	tcase_add_test(tc, test_host_crash_then_started_again);
	tcase_add_test(tc, test_stop_with_lost_final_reading_then_started);
	tcase_add_test(tc, test_ioerror_pause_and_user_pause);
	tcase_add_test(tc, test_pause_while_down_is_down);
	tcase_add_test(tc, test_credit_tier_edges);
	tcase_add_test(tc, test_credit_on_the_invoice);
	tcase_add_test(tc, test_credit_after_the_discount);
	tcase_add_test(tc, test_budget_ongoing_crash);
	tcase_add_test(tc, test_html_escapes);
	tcase_add_test(tc, test_budget_off_at_end);
	tcase_add_test(tc, test_budget_at_the_end_is_the_breach);
	tcase_add_test(tc, test_presets);
	tcase_add_test(tc, test_class_names);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
