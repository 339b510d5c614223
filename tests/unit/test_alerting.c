/*
 * test_alerting.c: the alert rule parser, the pending/firing/resolved state
 * machine, the engine on a real aggregator and ledger (a crash fires VMDown
 * at the crash's time, a reopen keeps it, the restart resolves it at the
 * start's time; a gauge rule with `for:`; windowed gauge means and counter
 * rates), and the Alertmanager POST body.
 * Every expected value is worked out by hand in the comments.
 *
 * Times: OCT = 2026-10-01T00:00:00Z = 1790812800 s.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "alerting.h"
#include "alerts.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"
#include "ledger_fixture.h"
#include "alert_fixture.h"

#define OCT (1790812800LL * NS_PER_SEC)
#define S NS_PER_SEC

/* ---- the parser ---- */

static int parse(const char *yaml, struct alerting_config *c, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc = cfg_load_string("t.yaml", yaml, strlen(yaml), &root, e);
	if (rc)
		return rc;
	rc = alerting_config_parse(c, root ? cfg_get(root, "alerts") : NULL, 10 * S, e);
	cfg_free(root);
	return rc;
}

START_TEST(parse_defaults)
{
	struct alerting_config c;
	struct tally_err e = { 0 };
	/* no section: alerting off, the documented defaults */
	ck_assert_int_eq(parse("tallyd: {}\n", &c, &e), 0);
	ck_assert(!c.enabled);
	ck_assert_int_eq(c.resend_ns, 60 * S);
	ck_assert_int_eq(c.timeout_ns, 10 * S);
	ck_assert_int_eq(c.resolved_keep_ns, 900 * S);
	ck_assert_int_eq(c.backoff_max_ns, 300 * S);
	ck_assert_uint_eq(c.stale_intervals, 3);
	ck_assert(c.vm_down && c.samples_dropped);
	ck_assert_uint_eq(c.max_alerts, 10000);
	ck_assert_int_eq(c.sla_burn_ppm, 1000000);     /* 100 % of the budget */
	/* sla_burn: a percentage, 1 % = 10^4 ppm */
	ck_assert_int_eq(parse("alerts:\n  sla_burn: 50%\n", &c, &e), 0);
	ck_assert_int_eq(c.sla_burn_ppm, 500000);
	ck_assert_int_eq(parse("alerts:\n  sla_burn: 12.5%\n", &c, &e), 0);
	ck_assert_int_eq(c.sla_burn_ppm, 125000);
	ck_assert_int_eq(parse("alerts:\n  sla_burn: 0.0001%\n", &c, &e), 0);
	ck_assert_int_eq(c.sla_burn_ppm, 1);
	ck_assert_int_eq(parse("alerts:\n  sla_burn: 0%\n", &c, &e), 0);
	ck_assert_int_eq(c.sla_burn_ppm, 0);             /* off */
	/* an empty section: on, built-ins only, nothing sent */
	ck_assert_int_eq(parse("alerts:\n", &c, &e), 0);
	ck_assert(c.enabled);
	ck_assert_uint_eq(c.n_rules, 0);
	ck_assert_str_eq(c.alertmanager, "");
}
END_TEST

START_TEST(parse_rules)
{
	struct alerting_config c;
	struct tally_err e = { 0 };
	const char *y =
		"alerts:\n"
		"  alertmanager: http://127.0.0.1:9093//\n"
		"  resend: 30s\n"
		"  stale_intervals: 0\n"
		"  rules:\n"
		"    - {name: HighCPU, meter: cpu, rate_above: 0.9, window: 5m, for: 2m, severity: critical,\n"
		"       labels: {team: ops, a: '1'}, annotations: {runbook: 'http://w/x'}}\n"
		"    - {name: LowMem, meter: memory, below: 1e9}\n";
	ck_assert_msg(parse(y, &c, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(c.alertmanager, "http://127.0.0.1:9093");   /* trailing slashes dropped */
	ck_assert_int_eq(c.resend_ns, 30 * S);
	ck_assert_uint_eq(c.stale_intervals, 0);
	ck_assert_uint_eq(c.n_rules, 2);
	const struct alert_rule *r = &c.rules[0];
	ck_assert_str_eq(r->name, "HighCPU");
	ck_assert_int_eq(r->meter, M_CPU);
	ck_assert(r->rate);
	ck_assert_int_eq(r->op, ALERT_ABOVE);
	ck_assert_double_eq(r->threshold, 0.9);
	ck_assert_int_eq(r->for_ns, 120 * S);
	ck_assert_int_eq(r->window_ns, 300 * S);
	ck_assert_str_eq(r->severity, "critical");
	ck_assert_str_eq(r->labels, "a=1\nteam=ops\n");              /* sorted by name */
	ck_assert_str_eq(r->annotations, "runbook=http://w/x\n");
	r = &c.rules[1];
	ck_assert_int_eq(r->meter, M_MEMORY);
	ck_assert(!r->rate);
	ck_assert_int_eq(r->op, ALERT_BELOW);
	ck_assert_double_eq(r->threshold, 1e9);
	ck_assert_int_eq(r->for_ns, 0);
	ck_assert_int_eq(r->window_ns, 0);
	ck_assert_str_eq(r->severity, "warning");                     /* the default */
}
END_TEST

static const struct {
	const char *yaml;
	const char *msg;   /* the whole message */
} bad[] = {
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu.util, rate_above: 1}\n",
	  "t.yaml:3:24: key 'meter': unknown meter 'cpu.util' (the meter table is in docs/meters.md: cpu,"
	  " memory, network.incoming.bytes, ...)" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu, rate_above: 1, below: 2}\n",
	  "t.yaml:3:7: rule 'X' needs exactly one of rate_above, rate_below (counters), above, below"
	  " (gauges)" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu}\n",
	  "t.yaml:3:7: rule 'X' needs exactly one of rate_above, rate_below (counters), above, below"
	  " (gauges)" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu, above: 1}\n",
	  "t.yaml:3:29: key 'above': meter 'cpu' is a counter; use rate_above or rate_below" },
	{ "alerts:\n  rules:\n    - {name: X, meter: vcpus, rate_below: 1}\n",
	  "t.yaml:3:31: key 'rate_below': meter 'vcpus' is a gauge; use above or below" },
	{ "alerts:\n  rules:\n    - {name: VMDown, meter: cpu, rate_above: 1}\n",
	  "t.yaml:3:14: key 'name': 'VMDown' is a built-in alert" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu, rate_above: 1}\n    - {name: X, meter: cpu, rate_above: 2}\n",
	  "t.yaml:4:14: key 'name': rule 'X' is given twice" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu, rate_above: 1, severity: page}\n",
	  "t.yaml:3:54: key 'severity': expected one of critical, warning, info (got 'page')" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu, rate_above: 1, span: 5m}\n",
	  "t.yaml:3:44: unknown key 'span' in 'rules' (known: name, meter, rate_above, rate_below, above,"
	  " below, window, for, severity, labels, annotations)" },
	{ "alerts:\n  rules:\n    - {name: X, meter: cpu, rate_above: 1, labels: {uuid: x}}\n",
	  "t.yaml:3:53: key 'labels': 'uuid' is set by tally itself" },
	{ "alerts:\n  alertmanager: localhost:9093\n",
	  "t.yaml:2:17: key 'alertmanager': expected an http:// or https:// URL (got 'localhost:9093')" },
	{ "alerts:\n  resend_every: 1m\n",
	  "t.yaml:2:3: unknown key 'resend_every' in 'alerts' (known: alertmanager, resend, timeout,"
	  " resolved_keep, backoff_max, generator_url, stale_intervals, vm_down, samples_dropped, spool_filling,"
	  " sla_burn, max_alerts, rules, agent_silent)" },
	{ "alerts:\n  sla_burn: 50\n",
	  "t.yaml:2:13: key 'sla_burn': expected a share of the error budget from 0% to 1000% with at most"
	  " 4 decimals, like 100% or 50% (got '50')" },
	{ "alerts:\n  sla_burn: 1000.0001%\n",
	  "t.yaml:2:13: key 'sla_burn': expected a share of the error budget from 0% to 1000% with at most"
	  " 4 decimals, like 100% or 50% (got '1000.0001%')" },
	{ "alerts:\n  sla_burn: 12.34567%\n",
	  "t.yaml:2:13: key 'sla_burn': expected a share of the error budget from 0% to 1000% with at most"
	  " 4 decimals, like 100% or 50% (got '12.34567%')" },
	{ "alerts:\n  rules:\n    - {name: SLABurn, meter: cpu, rate_above: 1}\n",
	  "t.yaml:3:14: key 'name': 'SLABurn' is a built-in alert" },
};

START_TEST(parse_errors)
{
	struct alerting_config c;
	struct tally_err e = { 0 };
	int rc = parse(bad[_i].yaml, &c, &e);
	ck_assert_msg(rc == -EINVAL || rc == -ERANGE, "case %d: rc %d", _i, rc);
	ck_assert_str_eq(e.msg, bad[_i].msg);
}
END_TEST

/* ---- the state machine ---- */

struct step_row {
	bool cond;
	int64_t since_s;       /* 0: unknown */
	int64_t t_s;
	enum alert_state state;
	int64_t active_s, fired_s, resolved_s;
};

static void run_rows(const struct step_row *r, size_t n, int64_t for_s)
{
	struct alert_times a = { 0 };
	for (size_t i = 0; i < n; i++) {
		enum alert_state st = alert_step(&a, r[i].cond, r[i].since_s ? OCT + r[i].since_s * S : 0,
						 OCT + r[i].t_s * S, for_s * S);
		ck_assert_msg(st == r[i].state && a.state == r[i].state, "row %zu: state %s, want %s", i,
			      alert_state_name(st), alert_state_name(r[i].state));
		if (r[i].state == ALERT_INACTIVE)
			continue;
		ck_assert_msg(a.active_ns == OCT + r[i].active_s * S, "row %zu: active", i);
		ck_assert_msg(a.fired_ns == (r[i].fired_s ? OCT + r[i].fired_s * S : 0), "row %zu: fired", i);
		ck_assert_msg(a.resolved_ns == (r[i].resolved_s ? OCT + r[i].resolved_s * S : 0),
			      "row %zu: resolved", i);
	}
}

START_TEST(step_for_2m)
{
	/* for = 120 s, evaluations every 10 s or so */
	static const struct step_row r[] = {
		{ false, 0, 0, ALERT_INACTIVE, 0, 0, 0 },
		{ true, 0, 10, ALERT_PENDING, 10, 0, 0 },      /* became true at 10 */
		{ true, 0, 60, ALERT_PENDING, 10, 0, 0 },      /* held 50 s < 120 */
		{ true, 0, 129, ALERT_PENDING, 10, 0, 0 },     /* 119 s */
		{ true, 0, 130, ALERT_FIRING, 10, 130, 0 },    /* 120 s: fires, startsAt 10 + 120 */
		{ true, 0, 140, ALERT_FIRING, 10, 130, 0 },
		{ false, 0, 150, ALERT_RESOLVED, 10, 130, 150 },
		{ false, 0, 160, ALERT_RESOLVED, 10, 130, 150 },  /* stays resolved */
		{ true, 0, 170, ALERT_PENDING, 170, 0, 0 },    /* a new alert, times start again */
		{ false, 0, 180, ALERT_INACTIVE, 0, 0, 0 },    /* pending and false: forgotten */
		{ true, 0, 190, ALERT_PENDING, 190, 0, 0 },
	};
	run_rows(r, sizeof(r) / sizeof(r[0]), 120);
}
END_TEST

START_TEST(step_events)
{
	/* for = 0 with known instants (an event's time): fires at the crash,
	 * resolves at the start, whatever the evaluation times */
	static const struct step_row r[] = {
		{ true, 95, 100, ALERT_FIRING, 95, 95, 0 },
		{ true, 95, 110, ALERT_FIRING, 95, 95, 0 },
		{ false, 300, 310, ALERT_RESOLVED, 95, 95, 300 },
	};
	run_rows(r, 3, 0);
	/* for = 60: down from 100 to 130 only, which the engine evaluates as
	 * true at 130 then false: 30 s < 60 s, never fires */
	static const struct step_row q[] = {
		{ true, 100, 130, ALERT_PENDING, 100, 0, 0 },
		{ false, 130, 140, ALERT_INACTIVE, 0, 0, 0 },
	};
	run_rows(q, 2, 60);
	/* for = 60: down from 100 to 190: true at 190 (>= 100 + 60) fires with
	 * startsAt 160, then resolves at 190 */
	static const struct step_row p[] = {
		{ true, 100, 120, ALERT_PENDING, 100, 0, 0 },
		{ true, 100, 190, ALERT_FIRING, 100, 160, 0 },
		{ false, 190, 200, ALERT_RESOLVED, 100, 160, 190 },
	};
	run_rows(p, 3, 60);
}
END_TEST

/* ---- the engine on a real aggregator and ledger ---- */

START_TEST(engine_vmdown)
{
	eng_setup("alerts:\n  stale_intervals: 0\n");
	/* vm-a runs from 0; crashes at 95 (final reading, crashed event) */
	lf_meta("vm-a", "acme", "m1", OCT);
	lf_reading("vm-a", M_INSTANCE, OCT, 1, 0, 0);
	cycle(OCT);
	lf_reading("vm-a", M_INSTANCE, OCT + 90 * S, 1, 0, 0);
	cycle(OCT + 90 * S);
	lf_reading("vm-a", M_INSTANCE, OCT + 95 * S, 1, 0, SAMPLE_F_LAST);
	lf_event("vm-a", OCT + 95 * S, "crashed", "panicked");
	cycle(OCT + 100 * S);

	struct alert_snap *s = alert_acquire(&store);
	ck_assert_uint_eq(s->n, 1);
	const struct alert_view *v = &s->v[0];
	/* sorted label lines; host is the batch's agent (ledger_fixture: host-1) */
	ck_assert_str_eq(v->labels, "alertname=VMDown\nhost=host-1\nname=vm-a\nseverity=critical\n"
				    "tenant=acme\nuuid=vm-a\n");
	ck_assert_int_eq(v->state, ALERT_FIRING);
	ck_assert_int_eq(v->active_ns, OCT + 95 * S);
	ck_assert_int_eq(v->fired_ns, OCT + 95 * S);   /* startsAt: the crash itself */
	ck_assert_str_eq(v->tenant, "acme");
	alert_put(&store, s);

	/* tallyd restarts: a new aggregator and engine on the same ledger */
	eng_restart(true);
	ck_assert_int_eq(alerting_publish(eng, &store), 0);
	s = alert_acquire(&store);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_int_eq(s->v[0].state, ALERT_FIRING);
	ck_assert_int_eq(s->v[0].fired_ns, OCT + 95 * S);     /* the same startsAt: no second page */
	ck_assert_str_eq(s->v[0].labels, "alertname=VMDown\nhost=host-1\nname=vm-a\nseverity=critical\n"
					 "tenant=acme\nuuid=vm-a\n");
	alert_put(&store, s);
	cycle(OCT + 200 * S);                                  /* still down */
	s = alert_acquire(&store);
	ck_assert_int_eq(s->v[0].state, ALERT_FIRING);
	alert_put(&store, s);

	/* it starts again at 300: resolved at 300, evaluated at 310 */
	lf_event("vm-a", OCT + 300 * S, "started", "booted");
	lf_reading("vm-a", M_INSTANCE, OCT + 300 * S, 1, 0, 0);
	cycle(OCT + 310 * S);
	s = alert_acquire(&store);
	ck_assert_uint_eq(s->n, 1);
	ck_assert_int_eq(s->v[0].state, ALERT_RESOLVED);
	ck_assert_int_eq(s->v[0].fired_ns, OCT + 95 * S);
	ck_assert_int_eq(s->v[0].resolved_ns, OCT + 300 * S);
	alert_put(&store, s);

	eng_teardown();
}
END_TEST

START_TEST(engine_gauge_for)
{
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  rules:\n"
		  "    - {name: BigMem, meter: memory, above: 1000, for: 20s, labels: {team: ops}}\n");
	lf_meta("vm-b", "beta", "m1", OCT);
	/* memory 2000 (> 1000) from 10 s: pending at 10, still pending at 20
	 * (held 10 s), firing at 30 with startsAt 10 + 20 = 30; 500 at 40:
	 * resolved at 40 */
	/* version (what makes the sender send at once) grows on a change only:
	 * nothing at 0, new at 10, the same at 20, firing at 30, resolved at 40 */
	static const struct { int64_t t_s; double mem; enum alert_state st; uint64_t version; } rows[] = {
		{ 0, 800, ALERT_INACTIVE, 0 },
		{ 10, 2000, ALERT_PENDING, 1 },
		{ 20, 2000, ALERT_PENDING, 1 },
		{ 30, 2000, ALERT_FIRING, 2 },
		{ 40, 500, ALERT_RESOLVED, 3 },
	};
	for (size_t i = 0; i < 5; i++) {
		lf_reading("vm-b", M_MEMORY, OCT + rows[i].t_s * S, rows[i].mem, 0, 0);
		cycle(OCT + rows[i].t_s * S);
		struct alert_snap *s = alert_acquire(&store);
		ck_assert_uint_eq(s->version, rows[i].version);
		const struct alert_view *v = find_alert(s, "alertname=BigMem");
		if (rows[i].st == ALERT_INACTIVE) {
			ck_assert_ptr_null(v);
		} else {
			ck_assert_ptr_nonnull(v);
			ck_assert_msg(v->state == rows[i].st, "t=%lld: %s", (long long)rows[i].t_s,
				      alert_state_name(v->state));
			ck_assert_int_eq(v->active_ns, OCT + 10 * S);
			ck_assert_str_eq(v->labels, "alertname=BigMem\nhost=host-1\nmeter=memory\nname=vm-b\n"
						    "severity=warning\nteam=ops\ntenant=beta\nuuid=vm-b\n");
		}
		if (rows[i].st >= ALERT_FIRING)
			ck_assert_int_eq(v->fired_ns, OCT + 30 * S);
		if (rows[i].st == ALERT_RESOLVED)
			ck_assert_int_eq(v->resolved_ns, OCT + 40 * S);
		alert_put(&store, s);
	}
	eng_teardown();
}
END_TEST

START_TEST(engine_windows)
{
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  stale_intervals: 0\n"
		  "  rules:\n"
		  "    - {name: MemAvg, meter: memory, above: 1000, window: 30s}\n"
		  "    - {name: NetIn, meter: network.incoming.bytes, rate_above: 50, window: 30s}\n");
	lf_meta("vm-c", "gamma", "m1", OCT);
	/* memory, mean of the readings in [t - 30, t]:
	 *   t=0 {600} 600; t=10 {600,1800} 1200 > 1000: fires at 10;
	 *   t=20 1400; t=30 {600,1800,1800,600} 1200; t=40 {1800,1800,600,600}
	 *   1200; t=50 {1800,600,600,600} 900: resolved at 50 (without the
	 *   window: at 30).
	 * network.incoming.bytes, a counter read 0 (baseline), 2000, then 2000
	 * on: totals 0, 2000, 2000, ... rate between the oldest reading in the
	 * window and the last: t=0 one reading, 0; t=10 2000/10 = 200 > 50:
	 * fires at 10; t=20 2000/20 = 100; t=30 2000/30 = 66.7; t=40 (oldest
	 * t=10) 0/30 = 0: resolved at 40 (without the window: at 20). */
	static const struct { int64_t t_s; double mem; uint64_t net; int mem_st, net_st; } rows[] = {
		{ 0, 600, 0, ALERT_INACTIVE, ALERT_INACTIVE },
		{ 10, 1800, 2000, ALERT_FIRING, ALERT_FIRING },
		{ 20, 1800, 2000, ALERT_FIRING, ALERT_FIRING },
		{ 30, 600, 2000, ALERT_FIRING, ALERT_FIRING },
		{ 40, 600, 2000, ALERT_FIRING, ALERT_RESOLVED },
		{ 50, 600, 2000, ALERT_RESOLVED, ALERT_RESOLVED },
	};
	for (size_t i = 0; i < 6; i++) {
		lf_reading("vm-c", M_MEMORY, OCT + rows[i].t_s * S, rows[i].mem, 0, 0);
		lf_reading("vm-c", M_NET_IN_BYTES, OCT + rows[i].t_s * S, 0, rows[i].net, 0);
		cycle(OCT + rows[i].t_s * S);
		struct alert_snap *s = alert_acquire(&store);
		const struct alert_view *m = find_alert(s, "alertname=MemAvg");
		const struct alert_view *n = find_alert(s, "alertname=NetIn");
		ck_assert_msg((m ? (int)m->state : ALERT_INACTIVE) == rows[i].mem_st, "t=%lld: MemAvg %s",
			      (long long)rows[i].t_s, m ? alert_state_name(m->state) : "none");
		ck_assert_msg((n ? (int)n->state : ALERT_INACTIVE) == rows[i].net_st, "t=%lld: NetIn %s",
			      (long long)rows[i].t_s, n ? alert_state_name(n->state) : "none");
		if (m)
			ck_assert_int_eq(m->fired_ns, OCT + 10 * S);
		if (n)
			ck_assert_int_eq(n->fired_ns, OCT + 10 * S);
		if (m && m->state == ALERT_RESOLVED)
			ck_assert_int_eq(m->resolved_ns, OCT + 50 * S);
		if (n && n->state == ALERT_RESOLVED)
			ck_assert_int_eq(n->resolved_ns, OCT + 40 * S);
		alert_put(&store, s);
	}
	eng_teardown();
}
END_TEST

/* A restart of tallyd (_i = 0: clean, committed; 1: killed, the cycle at 20
 * lost with the process) on a windowed counter rule: the window continues
 * from the ledger, so the alert neither resolves nor fires again.
 * NetIn: rate_above 50/s over 30 s; the counter reads 0 (baseline), 2000
 * at 10, then stays at 2000.
 *   t=0  one reading: no rate (unknown, not 0): nothing;
 *   t=10 2000/10 = 200 > 50: fires, startsAt 10;
 *   t=20 (2000-0)/20 = 100: firing (killed: never committed);
 *   restart;
 *   t=30 (2000-0)/30 = 66.7: still firing, startsAt still 10 (an empty
 *        window read 0 here and resolved it; the last interval alone,
 *        0/10, would too);
 *   t=40 the oldest reading in [10, 40] is 10: 0/30 = 0: resolved at 40,
 *        as without a restart (engine_windows).
 * Idle: rate_below 5/s on the same counter without a window: the baseline
 * at 0 has no rate and must not fire it (0 < 5 would); after it the rate
 * is 200, 0 (fires at 20, or at 30 once killed: the reading at 30 is
 * counted from the committed one at 10, 0/20 = 0). */
START_TEST(engine_window_restart)
{
	bool killed = _i == 1;
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  stale_intervals: 0\n"
		  "  rules:\n"
		  "    - {name: NetIn, meter: network.incoming.bytes, rate_above: 50, window: 30s}\n"
		  "    - {name: Idle, meter: network.incoming.bytes, rate_below: 5}\n");
	lf_meta("vm-w", "omega", "m1", OCT);
	static const uint64_t net[] = { 0, 2000, 2000, 2000, 2000 };
	for (int i = 0; i < 5; i++) {
		int64_t t = OCT + i * 10 * S;
		if (i == 3) {
			/* the restart: a new aggregator and engine on the ledger */
			eng_restart(!killed);
			ck_assert_int_eq(alerting_publish(eng, &store), 0);
		}
		lf_reading("vm-w", M_NET_IN_BYTES, t, 0, net[i], 0);
		if (killed && i == 2) {
			cycle_at(t, false);   /* evaluated, never committed: the process dies */
			continue;
		}
		cycle(t);
		struct alert_snap *s = alert_acquire(&store);
		const struct alert_view *n = find_alert(s, "alertname=NetIn");
		const struct alert_view *idle = find_alert(s, "alertname=Idle");
		int want = i == 0 ? ALERT_INACTIVE : i < 4 ? ALERT_FIRING : ALERT_RESOLVED;
		ck_assert_msg((n ? (int)n->state : ALERT_INACTIVE) == want, "t=%d: NetIn %s", i * 10,
			      n ? alert_state_name(n->state) : "none");
		if (n)
			ck_assert_int_eq(n->fired_ns, OCT + 10 * S);
		if (n && n->state == ALERT_RESOLVED)
			ck_assert_int_eq(n->resolved_ns, OCT + 40 * S);
		int64_t idle_from = killed ? 30 : 20;
		want = i * 10 < idle_from ? ALERT_INACTIVE : ALERT_FIRING;
		ck_assert_msg((idle ? (int)idle->state : ALERT_INACTIVE) == want, "t=%d: Idle %s", i * 10,
			      idle ? alert_state_name(idle->state) : "none");
		if (idle)
			ck_assert_int_eq(idle->fired_ns, OCT + idle_from * S);
		alert_put(&store, s);
	}
	eng_teardown();
}
END_TEST

/* The ledger keeps only what the windows hold: a window's readings that
 * left it are deleted, and a rule that is gone from the config (or lost its
 * window) has its readings deleted at the next commit. */
START_TEST(engine_window_rows)
{
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  stale_intervals: 0\n"
		  "  rules:\n"
		  "    - {name: MemAvg, meter: memory, above: 1000, window: 20s}\n");
	lf_meta("vm-r", "rho", "m1", OCT);
	/* interval 10 s, window 20 s: the ring keeps 20/10 + 2 = 4 readings;
	 * after 6 cycles (0..50) the ledger holds those 4 (20, 30, 40, 50) */
	for (int i = 0; i < 6; i++) {
		lf_reading("vm-r", M_MEMORY, OCT + i * 10 * S, 600, 0, 0);
		cycle(OCT + i * 10 * S);
	}
	int64_t n = lf_query("SELECT count(*) FROM alert_windows");
	ck_assert_int_eq(n, 4);
	n = lf_query("SELECT min(t_ns) FROM alert_windows");
	ck_assert_int_eq(n, OCT + 20 * S);
	n = lf_query(tu_pg() ? "SELECT count(*) FROM alert_windows WHERE key = 'MemAvg' || chr(31) || 'memory'"
		       " || chr(31) || 'vm-r' || chr(31) || '' || chr(31) || 'host-1'"
		     : "SELECT count(*) FROM alert_windows WHERE key = 'MemAvg' || char(31) || 'memory'"
		       " || char(31) || 'vm-r' || char(31) || '' || char(31) || 'host-1'");
	ck_assert_int_eq(n, 4);
	/* restart with the rule on another meter: not the same window */
	eng_parse("alerts:\n  vm_down: false\n  samples_dropped: false\n  stale_intervals: 0\n"
		  "  rules:\n"
		  "    - {name: MemAvg, meter: vcpus, above: 1000, window: 20s}\n");
	eng_restart(false);
	cycle(OCT + 60 * S);
	n = lf_query("SELECT count(*) FROM alert_windows");
	ck_assert_int_eq(n, 0);
	eng_teardown();
}
END_TEST

START_TEST(engine_builtins)
{
	struct tally_err e = { 0 };
	eng_setup("alerts:\n  vm_down: false\n");  /* stale after 3 intervals */
	lf_meta("vm-d", "delta", "m1", OCT);
	lf_meta("vm-e", "delta", "m1", OCT);
	/* interval 10 s, stale after 3 intervals: vm-d reads at 0 and 10, then
	 * nothing until 60: stale when its last reading (10) is before t - 30,
	 * first at t = 50 (10 < 20; at 40, 10 < 10 is false); resolved by the
	 * reading at 60. vm-e stops at 10 (a final reading): never stale.
	 * SamplesDropped: the count grows at 10 (0 -> 5): firing at 10, held
	 * while t - 10 < 10 intervals = 100 s, so still firing at 100 and
	 * resolved at 110. */
	static const struct { int64_t t_s; bool read_d; uint64_t dropped; int stale, drop; } rows[] = {
		{ 0, true, 0, ALERT_INACTIVE, ALERT_INACTIVE },
		{ 10, true, 5, ALERT_INACTIVE, ALERT_FIRING },
		{ 20, false, 5, ALERT_INACTIVE, ALERT_FIRING },
		{ 40, false, 5, ALERT_INACTIVE, ALERT_FIRING },
		{ 50, false, 5, ALERT_FIRING, ALERT_FIRING },
		{ 60, true, 5, ALERT_RESOLVED, ALERT_FIRING },
		{ 100, true, 5, ALERT_RESOLVED, ALERT_FIRING },
		{ 110, true, 5, ALERT_RESOLVED, ALERT_RESOLVED },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t t = OCT + rows[i].t_s * S;
		if (rows[i].read_d)
			lf_reading("vm-d", M_VCPUS, t, 2, 0, 0);
		if (rows[i].t_s <= 10)
			lf_reading("vm-e", M_VCPUS, t, 2, 0, rows[i].t_s == 10 ? SAMPLE_F_LAST : 0);
		alerting_note_batch(eng, &bt);
		lf_flush();
		ck_assert_int_eq(alerting_eval(eng, agg, t, rows[i].dropped), 0);
		ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
		alerting_committed(eng);
		ck_assert_int_eq(alerting_publish(eng, &store), 0);
		struct alert_snap *s = alert_acquire(&store);
		const struct alert_view *st = find_alert(s, "alertname=StaleData");
		const struct alert_view *dr = find_alert(s, "alertname=SamplesDropped");
		ck_assert_ptr_null(find_alert(s, "uuid=vm-e"));
		ck_assert_msg((st ? (int)st->state : ALERT_INACTIVE) == rows[i].stale, "t=%lld: stale %s",
			      (long long)rows[i].t_s, st ? alert_state_name(st->state) : "none");
		ck_assert_msg((dr ? (int)dr->state : ALERT_INACTIVE) == rows[i].drop, "t=%lld: dropped %s",
			      (long long)rows[i].t_s, dr ? alert_state_name(dr->state) : "none");
		if (st) {
			ck_assert_str_eq(st->labels, "alertname=StaleData\nhost=host-1\nname=vm-d\n"
						     "severity=warning\ntenant=delta\nuuid=vm-d\n");
			ck_assert_int_eq(st->fired_ns, OCT + 50 * S);
			if (st->state == ALERT_RESOLVED)
				ck_assert_int_eq(st->resolved_ns, OCT + 60 * S);
		}
		if (dr) {
			/* about tallyd itself: no tenant, admin only */
			ck_assert_str_eq(dr->labels, "alertname=SamplesDropped\nhost=tallyd-1\nseverity=warning\n");
			ck_assert_str_eq(dr->tenant, "");
			ck_assert_int_eq(dr->fired_ns, OCT + 10 * S);
			if (dr->state == ALERT_RESOLVED)
				ck_assert_int_eq(dr->resolved_ns, OCT + 110 * S);
		}
		alert_put(&store, s);
	}
	eng_teardown();
}
END_TEST

/* StaleData with two agents, each VM judged against its own agent's data
 * time. Interval 10 s, stale after 3 intervals (30 s). host-1 sends a
 * batch every cycle with vm-a; host-2 sends its routine batches 60 s
 * apart (agent.send_every: 60s), at 0 (vm-b, vm-c) and at 60 (vm-b at 10,
 * 20, ... 60; vm-c nothing since 0). Worked out by hand (the evaluation at
 * t sees the agents' data times committed by the cycle before, and the
 * readings ingested at t):
 * - against the newest agent's time alone, vm-b's last reading (0) would
 *   be stale from t = 40 (0 < 40 - 30): a false alarm, host-2 only lags;
 * - host-2's lag behind host-1 (20 at t = 30, 30 at 40, ..., 50 at 60) is
 *   forgiven: vm-b and vm-c are not stale before host-2's batch of 60 is
 *   committed; at 70 the lag is 0 and vm-c (last read at 0 < 70 - 30)
 *   fires, vm-b (60) does not; vm-a never does. */
static void flush_as(const char *agent)
{
	alerting_note_batch(eng, &bt);
	str_copy(bt.agent, agent, sizeof(bt.agent));
	lf_flush();
	str_copy(bt.agent, "host-1", sizeof(bt.agent));
}

START_TEST(engine_stale_per_agent)
{
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n");
	lf_meta("vm-b", "beta", "m1", OCT);
	lf_meta("vm-c", "beta", "m1", OCT);
	lf_reading("vm-b", M_VCPUS, OCT, 2, 0, 0);
	lf_reading("vm-c", M_VCPUS, OCT, 2, 0, 0);
	flush_as("host-2");
	lf_meta("vm-a", "alpha", "m1", OCT);
	for (int t_s = 0; t_s <= 80; t_s += 10) {
		int64_t t = OCT + t_s * S;
		if (t_s == 60) {
			for (int k = 10; k <= 60; k += 10)
				lf_reading("vm-b", M_VCPUS, OCT + k * S, 2, 0, 0);
			flush_as("host-2");
		}
		lf_reading("vm-a", M_VCPUS, t, 2, 0, 0);
		cycle(t);
		struct alert_snap *s = alert_acquire(&store);
		ck_assert_msg(find_alert(s, "alertname=StaleData\nhost=host-1\nname=vm-a\n") == NULL, "t=%d: vm-a", t_s);
		ck_assert_msg(find_alert(s, "alertname=StaleData\nhost=host-2\nname=vm-b\n") == NULL, "t=%d: vm-b", t_s);
		const struct alert_view *c = find_alert(s, "alertname=StaleData\nhost=host-2\nname=vm-c\n");
		ck_assert_msg((c ? (int)c->state : ALERT_INACTIVE) == (t_s < 70 ? ALERT_INACTIVE : ALERT_FIRING),
			      "t=%d: vm-c %s", t_s, c ? alert_state_name(c->state) : "none");
		if (c)
			ck_assert_int_eq(c->fired_ns, OCT + 70 * S);
		alert_put(&store, s);
	}
	eng_teardown();
}
END_TEST

/* Lives that end without their final reading (a collector that missed a
 * destroy): the end event says they are over. Interval 10 s, StaleData
 * after 3 intervals, BigVCPU: vcpus above 1 (both VMs have 2: it fires at
 * 0 for both).
 *   vm-x reads at 0 and 10, is destroyed at 15 ("stopped", no final
 *   reading): BigVCPU resolves at 15 (the event's time, seen at 20); it is
 *   never stale (before the fix: StaleData at 50, since 10 < 50 - 30, and
 *   BigVCPU firing for good). It starts again at 65 and reads at 70: a new
 *   BigVCPU from 70; then it falls silent, no event: stale at 110 (70 <
 *   110 - 30; at 100, 70 < 70 is false).
 *   vm-y reads at 0 and 10, then nothing: StaleData at 50; its "undefined"
 *   event at 55 arrives at 60: StaleData and BigVCPU resolve at 55. */
START_TEST(engine_ended)
{
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  rules:\n"
		  "    - {name: BigVCPU, meter: vcpus, above: 1}\n");
	lf_meta("vm-x", "xi", "m1", OCT);
	lf_meta("vm-y", "xi", "m1", OCT);
	static const struct { int64_t t_s; bool x, y; int x_big, x_stale, y_big, y_stale; } rows[] = {
		{ 0, true, true, ALERT_FIRING, ALERT_INACTIVE, ALERT_FIRING, ALERT_INACTIVE },
		{ 10, true, true, ALERT_FIRING, ALERT_INACTIVE, ALERT_FIRING, ALERT_INACTIVE },
		{ 20, false, false, ALERT_RESOLVED, ALERT_INACTIVE, ALERT_FIRING, ALERT_INACTIVE },
		{ 40, false, false, ALERT_RESOLVED, ALERT_INACTIVE, ALERT_FIRING, ALERT_INACTIVE },
		{ 50, false, false, ALERT_RESOLVED, ALERT_INACTIVE, ALERT_FIRING, ALERT_FIRING },
		{ 60, false, false, ALERT_RESOLVED, ALERT_INACTIVE, ALERT_RESOLVED, ALERT_RESOLVED },
		{ 70, true, false, ALERT_FIRING, ALERT_INACTIVE, ALERT_RESOLVED, ALERT_RESOLVED },
		{ 100, false, false, ALERT_FIRING, ALERT_INACTIVE, ALERT_RESOLVED, ALERT_RESOLVED },
		{ 110, false, false, ALERT_FIRING, ALERT_FIRING, ALERT_RESOLVED, ALERT_RESOLVED },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t t = OCT + rows[i].t_s * S;
		if (rows[i].x)
			lf_reading("vm-x", M_VCPUS, t, 2, 0, 0);
		if (rows[i].y)
			lf_reading("vm-y", M_VCPUS, t, 2, 0, 0);
		if (rows[i].t_s == 20)
			lf_event("vm-x", OCT + 15 * S, "stopped", "destroyed");
		if (rows[i].t_s == 60)
			lf_event("vm-y", OCT + 55 * S, "undefined", "");
		if (rows[i].t_s == 70)
			lf_event("vm-x", OCT + 65 * S, "started", "booted");
		cycle(t);
		struct alert_snap *s = alert_acquire(&store);
		const struct alert_view *v[4] = {
			find_alert(s, "alertname=BigVCPU\nhost=host-1\nmeter=vcpus\nname=vm-x\n"),
			find_alert(s, "alertname=StaleData\nhost=host-1\nname=vm-x\n"),
			find_alert(s, "alertname=BigVCPU\nhost=host-1\nmeter=vcpus\nname=vm-y\n"),
			find_alert(s, "alertname=StaleData\nhost=host-1\nname=vm-y\n"),
		};
		const int want[4] = { rows[i].x_big, rows[i].x_stale, rows[i].y_big, rows[i].y_stale };
		static const char *const what[4] = { "vm-x BigVCPU", "vm-x StaleData", "vm-y BigVCPU",
						     "vm-y StaleData" };
		for (int k = 0; k < 4; k++)
			ck_assert_msg((v[k] ? (int)v[k]->state : ALERT_INACTIVE) == want[k], "t=%lld: %s %s",
				      (long long)rows[i].t_s, what[k], v[k] ? alert_state_name(v[k]->state) : "none");
		if (rows[i].t_s < 70 && v[0])
			ck_assert_int_eq(v[0]->fired_ns, OCT);
		if (rows[i].t_s >= 20 && rows[i].t_s < 70)
			ck_assert_int_eq(v[0]->resolved_ns, OCT + 15 * S);
		if (rows[i].t_s >= 70)
			ck_assert_int_eq(v[0]->fired_ns, OCT + 70 * S);
		if (v[1])
			ck_assert_int_eq(v[1]->fired_ns, OCT + 110 * S);
		if (rows[i].t_s >= 60) {
			ck_assert_int_eq(v[2]->resolved_ns, OCT + 55 * S);
			ck_assert_int_eq(v[3]->fired_ns, OCT + 50 * S);
			ck_assert_int_eq(v[3]->resolved_ns, OCT + 55 * S);
		}
		alert_put(&store, s);
	}
	eng_teardown();
}
END_TEST

/* An end the engine never heard of (an older tallyd committed the event
 * and kept the alerts firing): at the restart the ledger's events say the
 * life is over, and the alerts of a VM that will never read again resolve
 * at the first evaluation, at the event's time. vm-z reads at 0 and 10
 * (BigVCPU fires at 0, StaleData at 50); "stopped" at 55 reaches the
 * ledger only; the restarted engine evaluates at 70: both resolved at 55. */
START_TEST(engine_ended_restart)
{
	eng_setup("alerts:\n  vm_down: false\n  samples_dropped: false\n  rules:\n"
		  "    - {name: BigVCPU, meter: vcpus, above: 1}\n");
	lf_meta("vm-z", "zeta", "m1", OCT);
	lf_reading("vm-z", M_VCPUS, OCT, 2, 0, 0);
	cycle(OCT);
	lf_reading("vm-z", M_VCPUS, OCT + 10 * S, 2, 0, 0);
	cycle(OCT + 10 * S);
	cycle(OCT + 50 * S);
	lf_event("vm-z", OCT + 55 * S, "stopped", "destroyed");
	lf_flush();                                  /* not noted by the engine */
	eng_restart(true);
	ck_assert_int_eq(alerting_publish(eng, &store), 0);
	struct alert_snap *s = alert_acquire(&store);
	ck_assert_uint_eq(s->n, 2);
	ck_assert_int_eq(s->v[0].state, ALERT_FIRING);       /* as loaded, until evaluated */
	ck_assert_int_eq(s->v[1].state, ALERT_FIRING);
	alert_put(&store, s);
	cycle(OCT + 70 * S);
	s = alert_acquire(&store);
	const struct alert_view *big = find_alert(s, "alertname=BigVCPU");
	const struct alert_view *stale = find_alert(s, "alertname=StaleData");
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(stale);
	ck_assert_int_eq(big->state, ALERT_RESOLVED);
	ck_assert_int_eq(big->fired_ns, OCT);
	ck_assert_int_eq(big->resolved_ns, OCT + 55 * S);
	ck_assert_int_eq(stale->state, ALERT_RESOLVED);
	ck_assert_int_eq(stale->fired_ns, OCT + 50 * S);
	ck_assert_int_eq(stale->resolved_ns, OCT + 55 * S);
	alert_put(&store, s);
	eng_teardown();
}
END_TEST

/* ---- the Alertmanager POST body ---- */

START_TEST(render_body)
{
	struct alert_view v[3];
	memset(v, 0, sizeof(v));
	/* firing since 95 s; now = 1000 s, resend 60 s: endsAt 1000 + 240 =
	 * 1240 s = 00:20:40 */
	strcpy(v[0].labels, "alertname=VMDown\nuuid=vm-a\n");
	strcpy(v[0].annotations, "summary=down\n");
	v[0].state = ALERT_FIRING;
	v[0].active_ns = v[0].fired_ns = OCT + 95 * S;
	/* resolved: [10 s, 70 s] */
	strcpy(v[1].labels, "alertname=X\n");
	v[1].state = ALERT_RESOLVED;
	v[1].active_ns = v[1].fired_ns = OCT + 10 * S;
	v[1].resolved_ns = OCT + 70 * S;
	/* pending: not sent */
	strcpy(v[2].labels, "alertname=Y\n");
	v[2].state = ALERT_PENDING;
	struct alert_snap snap = { .v = v, .n = 3 };
	size_t n = 0;
	char *body = alerts_render(&snap, OCT + 1000 * S, 60 * S, "http://g/a", &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(body,
		"[{\"labels\":{\"alertname\":\"VMDown\",\"uuid\":\"vm-a\"},\"annotations\":{\"summary\":\"down\"},"
		"\"startsAt\":\"2026-10-01T00:01:35Z\",\"endsAt\":\"2026-10-01T00:20:40Z\",\"generatorURL\":\"http://g/a\"},"
		"{\"labels\":{\"alertname\":\"X\"},\"annotations\":{},"
		"\"startsAt\":\"2026-10-01T00:00:10Z\",\"endsAt\":\"2026-10-01T00:01:10Z\",\"generatorURL\":\"http://g/a\"}]");
	free(body);
	/* a firing alert ahead of the wall clock (fast-forward into the
	 * future): its lease counts from startsAt, 5000 + 240 = 5240 s = 01:27:20 */
	v[0].fired_ns = OCT + 5000 * S;
	snap.n = 1;
	body = alerts_render(&snap, OCT + 1000 * S, 60 * S, "", &n);
	ck_assert_str_eq(body,
		"[{\"labels\":{\"alertname\":\"VMDown\",\"uuid\":\"vm-a\"},\"annotations\":{\"summary\":\"down\"},"
		"\"startsAt\":\"2026-10-01T01:23:20Z\",\"endsAt\":\"2026-10-01T01:27:20Z\"}]");
	free(body);
}
END_TEST

/* SLABurn from what the SLA probe says (here: sets made by hand; the probe
 * itself, daemon/sla_probe.c, is tested in test_sla). vm-a passes the
 * threshold at OCT + 1000 s + 1 ns: firing with that startsAt, labelled
 * with its class; the same set again changes nothing; a restart keeps it;
 * the next month's set (vm-a not burning) resolves it at the month's first
 * instant, NOV = 2026-11-01 = 1793491200 s. */
static struct alert_sla_set sla_set(int64_t from, int64_t to, bool burning, int64_t since, double used)
{
	struct alert_sla_set set = { .from_ns = from, .to_ns = to, .n = 1 };
	set.v = calloc(1, sizeof(*set.v));
	ck_assert_ptr_nonnull(set.v);
	str_copy(set.v->uuid, "vm-a", sizeof(set.v->uuid));
	str_copy(set.v->name, "web-1", sizeof(set.v->name));
	str_copy(set.v->tenant, "acme", sizeof(set.v->tenant));
	str_copy(set.v->host, "kvm-7", sizeof(set.v->host));
	str_copy(set.v->cls, "gold", sizeof(set.v->cls));
	set.v->burning = burning;
	set.v->since_ns = since;
	set.v->used = used;
	str_copy(set.v->summary, "availability 99.9 %", sizeof(set.v->summary));
	return set;
}

START_TEST(engine_sla_burn)
{
	const int64_t NOV = 1793491200LL * S, DEC = 1796083200LL * S;
	eng_setup("alerts:\n  stale_intervals: 0\n");
	/* nothing said yet: nothing */
	cycle(OCT + 1000 * S);
	struct alert_snap *sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 0);
	alert_put(&store, sn);
	/* not burning: no alert */
	struct alert_sla_set set = sla_set(OCT, NOV, false, 0, 0.5);
	alerting_set_sla(eng, &set);
	ck_assert_ptr_null(set.v);   /* taken over */
	cycle(OCT + 1010 * S);
	sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 0);
	alert_put(&store, sn);
	/* burning since OCT + 1000 s + 1 ns */
	set = sla_set(OCT, NOV, true, OCT + 1000 * S + 1, 1.25);
	alerting_set_sla(eng, &set);
	cycle(OCT + 1070 * S);
	sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 1);
	ck_assert_str_eq(sn->v[0].labels, "alertname=SLABurn\nhost=kvm-7\nname=web-1\nseverity=critical\n"
					  "sla_class=gold\ntenant=acme\nuuid=vm-a\n");
	ck_assert_int_eq(sn->v[0].state, ALERT_FIRING);
	ck_assert_int_eq(sn->v[0].fired_ns, OCT + 1000 * S + 1);
	ck_assert_str_eq(sn->v[0].tenant, "acme");
	ck_assert(sn->v[0].value == 1.25);
	ck_assert_ptr_nonnull(strstr(sn->v[0].annotations, "summary=availability 99.9 %\n"));
	uint64_t version = sn->version;
	alert_put(&store, sn);
	/* cycles without a new set, and the same set again: no change */
	cycle(OCT + 1080 * S);
	set = sla_set(OCT, NOV, true, OCT + 1000 * S + 1, 1.25);
	alerting_set_sla(eng, &set);
	cycle(OCT + 1090 * S);
	sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 1);
	ck_assert_int_eq(sn->v[0].fired_ns, OCT + 1000 * S + 1);
	ck_assert_uint_eq(sn->version, version);
	alert_put(&store, sn);

	/* a restart keeps it firing, with its startsAt */
	eng_restart(true);
	cycle(NOV + 10 * S);
	sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 1);
	ck_assert_int_eq(sn->v[0].state, ALERT_FIRING);
	ck_assert_int_eq(sn->v[0].fired_ns, OCT + 1000 * S + 1);
	alert_put(&store, sn);
	/* November's budget is new: resolved at November's first instant */
	set = sla_set(NOV, DEC, false, 0, 0);
	alerting_set_sla(eng, &set);
	cycle(NOV + 70 * S);
	sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 1);
	ck_assert_int_eq(sn->v[0].state, ALERT_RESOLVED);
	ck_assert_int_eq(sn->v[0].resolved_ns, NOV);
	alert_put(&store, sn);
	/* a VM the probe no longer lists is resolved too: burning again in
	 * November, then gone from the set, resolved at that evaluation */
	set = sla_set(NOV, DEC, true, NOV + 500 * S + 1, 2);
	alerting_set_sla(eng, &set);
	cycle(NOV + 600 * S);
	set = (struct alert_sla_set){ .from_ns = NOV, .to_ns = DEC };
	alerting_set_sla(eng, &set);
	cycle(NOV + 660 * S);
	sn = alert_acquire(&store);
	ck_assert_uint_eq(sn->n, 1);
	ck_assert_int_eq(sn->v[0].state, ALERT_RESOLVED);
	ck_assert_int_eq(sn->v[0].fired_ns, NOV + 500 * S + 1);
	ck_assert_int_eq(sn->v[0].resolved_ns, NOV + 660 * S);
	alert_put(&store, sn);

	eng_teardown();
}
END_TEST

START_TEST(label_lookup)
{
	char out[32];
	alert_label("alertname=A\nhost=h1\nname=vm=1\n", "name", out, sizeof(out));
	ck_assert_str_eq(out, "vm=1");               /* split at the first '=' */
	alert_label("alertname=A\nhost=h1\n", "hos", out, sizeof(out));
	ck_assert_str_eq(out, "");                   /* a prefix is not a name */
}
END_TEST

/* SIGHUP (alerting_reconfigure): a rule removed from the config, and a
 * built-in turned off, have their firing alerts resolved at the reload's
 * time, not kept until Alertmanager times them out; a rule that stays is
 * found again by its name although its index changed. */
/* AgentSilent (an aggregator's agents, wall clock): silent for longer than
 * agent_silent (60 s) since the last contact, or since the aggregator
 * started when never heard; startsAt is the instant the silence passed 60 s,
 * endsAt the next contact; an agent no longer expected is resolved.
 * Expected instants worked out by hand from the rows. */
START_TEST(engine_agent_silent)
{
	struct tally_err e = { 0 };
	eng_setup("alerts:\n  agent_silent: 60s\n");
	const int64_t T = OCT;   /* the aggregator started at T */
	static const struct {
		int64_t now_s;
		int64_t a_contact_s, b_contact_s;   /* -1: never */
		bool b_listed;
		int a, b;                           /* states */
	} rows[] = {
		{ 30, 10, -1, true, ALERT_INACTIVE, ALERT_INACTIVE },
		{ 60, 10, -1, true, ALERT_INACTIVE, ALERT_INACTIVE },   /* b: 60 s is not more than 60 */
		{ 61, 10, -1, true, ALERT_INACTIVE, ALERT_FIRING },     /* b since T + 60 */
		{ 70, 10, -1, true, ALERT_INACTIVE, ALERT_FIRING },     /* a: 60 s silent at 70 */
		{ 71, 10, -1, true, ALERT_FIRING, ALERT_FIRING },       /* a since 10 + 60 = 70 */
		{ 95, 90, -1, true, ALERT_RESOLVED, ALERT_FIRING },     /* a heard at 90 */
		{ 100, 90, -1, false, ALERT_RESOLVED, ALERT_RESOLVED }, /* b's token removed */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct alert_agent ag[2];
		memset(ag, 0, sizeof(ag));
		strcpy(ag[0].id, "agent-a");
		ag[0].contact_ns = T + rows[i].a_contact_s * S;
		strcpy(ag[1].id, "agent-b");
		ag[1].contact_ns = rows[i].b_contact_s < 0 ? 0 : T + rows[i].b_contact_s * S;
		int64_t now = T + rows[i].now_s * S;
		ck_assert_int_eq(alerting_set_agents(eng, ag, rows[i].b_listed ? 2 : 1, T, now), 0);
		ck_assert_int_eq(alerting_eval(eng, agg, now, 0), 0);
		ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
		alerting_committed(eng);
		ck_assert_int_eq(alerting_publish(eng, &store), 0);
		struct alert_snap *s = alert_acquire(&store);
		const struct alert_view *a = find_alert(s, "host=agent-a"), *b = find_alert(s, "host=agent-b");
		ck_assert_msg((a ? (int)a->state : ALERT_INACTIVE) == rows[i].a, "t=%lld: a %s",
			      (long long)rows[i].now_s, a ? alert_state_name(a->state) : "none");
		ck_assert_msg((b ? (int)b->state : ALERT_INACTIVE) == rows[i].b, "t=%lld: b %s",
			      (long long)rows[i].now_s, b ? alert_state_name(b->state) : "none");
		if (a) {
			ck_assert_str_eq(a->labels, "alertname=AgentSilent\nhost=agent-a\nseverity=critical\n");
			ck_assert_int_eq(a->fired_ns, T + 70 * S);
			if (a->state == ALERT_RESOLVED)
				ck_assert_int_eq(a->resolved_ns, T + 90 * S);
		}
		if (b) {
			ck_assert_int_eq(b->fired_ns, T + 60 * S);
			if (b->state == ALERT_RESOLVED)
				ck_assert_int_eq(b->resolved_ns, T + 100 * S);
		}
		alert_put(&store, s);
	}
	/* kept in the ledger: a restart knows b's alert resolved, a's too */
	eng_restart(true);
	ck_assert_int_eq(lf_query("SELECT count(*) FROM alerts WHERE rule = 'AgentSilent'"), 2);
	eng_teardown();
}
END_TEST

START_TEST(engine_reconfigure)
{
	static struct alerting_config next;   /* outlives the engine, as the daemon's does */
	struct tally_err e = { 0 };
	eng_setup("alerts:\n  vm_down: false\n  rules:\n"
		  "    - {name: Wide, meter: vcpus, above: 1}\n"
		  "    - {name: Big, meter: vcpus, above: 3}\n");
	lf_meta("vm-r", "delta", "m1", OCT);
	for (int k = 0; k < 2; k++) {
		int64_t t = OCT + k * 10 * S;
		lf_reading("vm-r", M_VCPUS, t, 4, 0, 0);
		alerting_note_batch(eng, &bt);
		lf_flush();
		ck_assert_int_eq(alerting_eval(eng, agg, t, k ? 7 : 0), 0);   /* 7 dropped at 10 s */
		ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
		alerting_committed(eng);
	}
	ck_assert_int_eq(alerting_publish(eng, &store), 0);
	struct alert_snap *s = alert_acquire(&store);
	ck_assert_int_eq(find_alert(s, "alertname=Wide")->state, ALERT_FIRING);
	ck_assert_int_eq(find_alert(s, "alertname=Big")->state, ALERT_FIRING);
	ck_assert_int_eq(find_alert(s, "alertname=SamplesDropped")->state, ALERT_FIRING);
	alert_put(&store, s);

	/* Wide is gone, Big is now the first rule, SamplesDropped is off */
	struct cfg_node *root = NULL;
	const char *y = "alerts:\n  vm_down: false\n  samples_dropped: false\n  rules:\n"
			"    - {name: Big, meter: vcpus, above: 3}\n";
	ck_assert_int_eq(cfg_load_string("t2.yaml", y, strlen(y), &root, &e), 0);
	ck_assert_msg(alerting_config_parse(&next, cfg_get(root, "alerts"), 10 * NS_PER_SEC, &e) == 0, "%s", e.msg);
	cfg_free(root);
	int64_t t = OCT + 15 * S;
	ck_assert_int_eq(alerting_reconfigure(eng, &next, t), 0);
	ck_assert_int_eq(alerting_publish(eng, &store), 0);
	s = alert_acquire(&store);
	const struct alert_view *w = find_alert(s, "alertname=Wide"), *b = find_alert(s, "alertname=Big"),
				*d = find_alert(s, "alertname=SamplesDropped");
	ck_assert_int_eq(w->state, ALERT_RESOLVED);
	ck_assert_int_eq(w->resolved_ns, t);
	ck_assert_int_eq(d->state, ALERT_RESOLVED);
	ck_assert_int_eq(b->state, ALERT_FIRING);     /* kept, found by its name */
	alert_put(&store, s);
	/* the next evaluation keeps Big firing on the new rule list */
	lf_reading("vm-r", M_VCPUS, OCT + 20 * S, 4, 0, 0);
	alerting_note_batch(eng, &bt);
	lf_flush();
	ck_assert_int_eq(alerting_eval(eng, agg, OCT + 20 * S, 7), 0);
	ck_assert_int_eq(alerting_publish(eng, &store), 0);
	s = alert_acquire(&store);
	ck_assert_int_eq(find_alert(s, "alertname=Big")->state, ALERT_FIRING);
	w = find_alert(s, "alertname=Wide");
	ck_assert(!w || w->state == ALERT_RESOLVED);  /* never evaluated again: it cannot fire */
	alert_put(&store, s);
	eng_teardown();
}
END_TEST

/* The labels as JSON, as /api/v1/alerts and Alertmanager get them: the
 * same for both (the API's copy once dropped a last line without its
 * newline). Expected objects written out by hand. */
START_TEST(pairs_as_json)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "alertname=A\nhost=h1\n", "{\"alertname\": \"A\", \"host\": \"h1\"}" },
		{ "alertname=A\nhost=h1", "{\"alertname\": \"A\", \"host\": \"h1\"}" },  /* no last newline */
		{ "name=vm=1\n", "{\"name\": \"vm=1\"}" },
		{ "", "{}" },
		{ "novalue\nk=v\n", "{}" },                           /* stops at a line without '=' */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o = alerts_pairs_json(cases[i].in);
		char *txt = json_dumps(o, JSON_SORT_KEYS);
		ck_assert_msg(!strcmp(txt, cases[i].want), "case %zu: %s", i, txt);
		free(txt);
		json_decref(o);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alerting");
	TCase *tc = tcase_create("alerting");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, parse_defaults);
	tcase_add_test(tc, parse_rules);
	tcase_add_loop_test(tc, parse_errors, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, step_for_2m);
	tcase_add_test(tc, step_events);
	tcase_add_test(tc, engine_vmdown);
	tcase_add_test(tc, engine_gauge_for);
	tcase_add_test(tc, engine_windows);
	tcase_add_loop_test(tc, engine_window_restart, 0, 2);
	tcase_add_test(tc, engine_window_rows);
	tcase_add_test(tc, engine_builtins);
	tcase_add_test(tc, engine_ended);
	tcase_add_test(tc, engine_stale_per_agent);
	tcase_add_test(tc, engine_ended_restart);
	tcase_add_test(tc, engine_sla_burn);
	tcase_add_test(tc, render_body);
	tcase_add_test(tc, label_lookup);
	tcase_add_test(tc, pairs_as_json);
	tcase_add_test(tc, engine_reconfigure);
	tcase_add_test(tc, engine_agent_silent);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
