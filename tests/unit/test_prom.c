/*
 * test_prom.c: the live snapshot and its Prometheus exposition, from
 * readings fed to a real aggregator by hand.
 *
 * The counter case: cpu reads 1000 (baseline), 3000, then 500 (the VM
 * rebooted: its counter started again), then 1500. The aggregator counts
 * 2000, then 500 (a reset counts the new value), then 1000, so the exposed
 * counter reads 0, 2000, 2500, 3500 ns: it never goes down although the
 * VM's counter did. 3500 ns is 0.0000035 s.
 */
#include <check.h>
#include <string.h>

#include "aggregator.h"
#include "alerting.h"
#include "batch.h"
#include "err.h"
#include "prom.h"
#include "state.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

#define T0 (1790812800LL * NS_PER_SEC)   /* 2026-10-01T00:00:00Z */

static char dir[64], path[128];
static struct aggregator *agg;
static uint64_t seq;

static void setup(void)
{
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "prom");
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	struct agg_config c = { .ledger_path = path, .max_gap_ns = 300 * NS_PER_SEC };
	ck_assert_msg(agg_open(&agg, &c, &e) == 0, "%s", e.msg);
	seq = 0;
}

static void teardown(void)
{
	agg_close(agg);
	tu_rmrf(dir);
}

static void meta(struct batch *b, const char *uuid, const char *name, const char *tenant, int64_t t)
{
	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	m.time_ns = t;
	str_copy(m.resource, uuid, sizeof(m.resource));
	str_copy(m.type, "instance", sizeof(m.type));
	str_copy(m.name, name, sizeof(m.name));
	str_copy(m.tenant, tenant, sizeof(m.tenant));
	str_copy(m.flavor, "m1.small", sizeof(m.flavor));
	ck_assert_int_eq(batch_add_meta(b, &m), 0);
}

static void reading(struct batch *b, const char *uuid, int meter, const char *dev, int64_t t,
		    uint64_t counter, double gauge)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	s.time_ns = t;
	s.meter = (uint16_t)meter;
	s.kind = (uint8_t)meter_table[meter].kind;
	if (s.kind == SAMPLE_GAUGE)
		s.v.gauge = gauge;
	else
		s.v.counter = counter;
	str_copy(s.resource, uuid, sizeof(s.resource));
	str_copy(s.device, dev, sizeof(s.device));
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
}

static void deliver(struct batch *b, int64_t t)
{
	struct tally_err e = { 0 };
	b->seq = ++seq;
	b->time_ns = t;
	ck_assert_msg(agg_ingest(agg, b, &e) == 0, "%s", e.msg);
	batch_clear(b);
}

static struct live_state *snap(int64_t tick, int64_t stale_after)
{
	struct live_inputs in = { .tick_ns = tick, .stale_after_ns = stale_after };
	struct live_state *st = live_build(agg, &in);
	ck_assert_ptr_nonnull(st);
	return st;
}

static char *render(const struct live_state *st, enum prom_format f, const char *tenant)
{
	struct sbuf b = { 0 };
	ck_assert_int_eq(prom_render(st, f, tenant, &b), 0);
	ck_assert_ptr_nonnull(b.p);
	return b.p;
}

#define LABELS_A "uuid=\"vm-a\",name=\"web \\\"1\\\" \\\\ a\",tenant=\"t1\",flavor=\"m1.small\",host=\"agent1\""

START_TEST(test_counter_never_down)
{
	static const uint64_t raw[] = { 1000, 3000, 500, 1500 };
	static const uint64_t want[] = { 0, 2000, 2500, 3500 };  /* see the file comment */
	static const char *const line[] = {
		"tally_cpu_seconds_total{" LABELS_A "} 0\n",
		"tally_cpu_seconds_total{" LABELS_A "} 0.000002\n",
		"tally_cpu_seconds_total{" LABELS_A "} 0.0000025\n",
		"tally_cpu_seconds_total{" LABELS_A "} 0.0000035\n",
	};
	struct batch b;
	batch_init(&b, "agent1");
	for (int i = 0; i < 4; i++) {
		int64_t t = T0 + i * 10 * NS_PER_SEC;
		if (i == 0)
			meta(&b, "vm-a", "web \"1\" \\ a", "t1", t);
		reading(&b, "vm-a", M_CPU, "", t, raw[i], 0);
		deliver(&b, t);
		struct live_state *st = snap(t, 0);
		ck_assert_uint_eq(st->n_series, 1);
		ck_assert_uint_eq(st->series[0].total, want[i]);
		/* the first reading is a baseline: no interval, so no rate (the
		 * API's "rate": null), not a rate of 0; every later one, the
		 * reset included (it counts the new value), has one */
		ck_assert_msg(st->series[0].has_rate == (i > 0), "step %d: has_rate %d", i, st->series[0].has_rate);
		char *text = render(st, PROM_TEXT, NULL);
		ck_assert_msg(strstr(text, line[i]) != NULL, "step %d: no '%s' in\n%s", i, line[i], text);
		free(text);
		live_free(st);
	}
	batch_release(&b);
}
END_TEST

START_TEST(test_families_tenants_stale)
{
	struct batch b;
	batch_init(&b, "agent1");
	/* vm-a (t1) reads at 0 and 60 s; vm-b (t2) only at 0 s */
	meta(&b, "vm-a", "a", "t1", T0);
	meta(&b, "vm-b", "b", "t2", T0);
	reading(&b, "vm-a", M_VCPUS, "", T0, 0, 2);
	reading(&b, "vm-a", M_NET_IN_BYTES, "52:54:00:00:00:01", T0, 100, 0);
	reading(&b, "vm-b", M_VCPUS, "", T0, 0, 4);
	deliver(&b, T0);
	int64_t t1 = T0 + 60 * NS_PER_SEC;
	reading(&b, "vm-a", M_VCPUS, "", t1, 0, 2);
	reading(&b, "vm-a", M_NET_IN_BYTES, "52:54:00:00:00:01", t1, 350, 0);
	deliver(&b, t1);

	/* stale_after 30 s: vm-b's last reading (60 s old) is stale, vm-a's is not */
	struct live_state *st = snap(t1, 30 * NS_PER_SEC);
	ck_assert_uint_eq(st->n_resources, 2);
	ck_assert_str_eq(st->resources[0].uuid, "vm-a");      /* sorted by uuid */
	ck_assert(!st->resources[0].stale);
	ck_assert(st->resources[1].stale);
	ck_assert_uint_eq(st->stale_resources, 1);
	ck_assert_int_eq(live_find_resource(st, "vm-b"), 1);
	ck_assert_int_eq(live_find_resource(st, "vm-c"), -1);

	char *text = render(st, PROM_TEXT, NULL);
	/* 350 - 100 = 250 bytes since the baseline */
	ck_assert_ptr_nonnull(strstr(text, "# TYPE tally_network_incoming_bytes_total counter\n"
		"tally_network_incoming_bytes_total{uuid=\"vm-a\",name=\"a\",tenant=\"t1\",flavor=\"m1.small\","
		"host=\"agent1\",device=\"52:54:00:00:00:01\"} 250\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE tally_vcpus gauge\ntally_vcpus{uuid=\"vm-a\""));
	ck_assert_ptr_null(strstr(text, "vm-b"));              /* stale: left out */
	ck_assert_ptr_nonnull(strstr(text, "\ntally_stale_resources 1\n"));
	/* 2 vcpus + 2 net readings + 1 vcpus of vm-b = 5 samples applied */
	ck_assert_ptr_nonnull(strstr(text, "\ntally_samples_ingested_total 5\n"));
	ck_assert_ptr_null(strstr(text, "# EOF"));
	free(text);

	/* a tenant sees its own series and no self-metrics */
	text = render(st, PROM_TEXT, "t2");
	ck_assert_ptr_null(strstr(text, "vm-a"));
	ck_assert_ptr_null(strstr(text, "tally_samples_ingested"));
	free(text);
	text = render(st, PROM_TEXT, "t1");
	ck_assert_ptr_nonnull(strstr(text, "tally_vcpus{uuid=\"vm-a\""));
	ck_assert_ptr_null(strstr(text, "tally_stale_resources"));
	free(text);

	/* OpenMetrics: counter family named without _total, samples with it, # EOF last */
	text = render(st, PROM_OPENMETRICS, NULL);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE tally_network_incoming_bytes counter\n"
		"tally_network_incoming_bytes_total{"));
	size_t n = strlen(text);
	ck_assert(n > 6 && !strcmp(text + n - 6, "# EOF\n"));
	free(text);
	live_free(st);
	batch_release(&b);
}
END_TEST

START_TEST(test_store_refs)
{
	struct live_store s;
	ck_assert_int_eq(live_store_init(&s), 0);
	ck_assert_ptr_null(live_acquire(&s));
	struct live_state *a = snap(T0, 0), *b = snap(T0 + 1, 0);
	live_publish(&s, a);
	struct live_state *r = live_acquire(&s);
	ck_assert_ptr_eq(r, a);
	live_publish(&s, b);                 /* a stays valid: the reader holds it */
	ck_assert_int_eq(r->tick_ns, T0);
	live_put(&s, r);                     /* last reference: freed (ASan would see a leak or a double free) */
	r = live_acquire(&s);
	ck_assert_ptr_eq(r, b);
	live_put(&s, r);
	live_store_release(&s);
}
END_TEST

static const struct {
	const char *accept;
	enum prom_format want;
} accepts[] = {
	{ NULL, PROM_TEXT },
	{ "text/plain;version=0.0.4", PROM_TEXT },
	{ "*/*", PROM_TEXT },
	/* what Prometheus 2.42 sends */
	{ "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
	  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", PROM_OPENMETRICS },
	{ "application/openmetrics-text; version=1.0.0; q=0.5, text/plain", PROM_OPENMETRICS },
	{ "application/openmetrics-text;q=0, text/plain", PROM_TEXT },
};

START_TEST(test_negotiate)
{
	ck_assert_int_eq(prom_negotiate(accepts[_i].accept), accepts[_i].want);
}
END_TEST

/* Alert self-metrics: an engine told by hand that two VMs burn their SLA
 * budget (SLABurn, firing at once) publishes 2 firing, 0 pending; the
 * sender counted 3 good POSTs (the last at T0 + 1.5 s) and 2 failed ones.
 * A tenant's page has none of it. */
START_TEST(test_alert_metrics)
{
	struct alerting_config c;
	struct alerting *g;
	struct alert_store store;
	struct tally_err e = { 0 };
	ck_assert_int_eq(alerting_config_parse(&c, NULL, 10 * NS_PER_SEC, &e), 0);
	c.enabled = true;
	c.stale_intervals = 0;
	ck_assert_int_eq(alert_store_init(&store), 0);
	ck_assert_int_eq(alerting_new(&g, &c, "agent1", 10 * NS_PER_SEC), 0);
	struct alert_sla_set set = { .from_ns = T0, .to_ns = T0 + 31 * 24 * NS_PER_HOUR, .n = 2 };
	set.v = calloc(2, sizeof(*set.v));
	ck_assert_ptr_nonnull(set.v);
	for (int i = 0; i < 2; i++) {
		snprintf(set.v[i].uuid, sizeof(set.v[i].uuid), "vm-%d", i);
		set.v[i].burning = true;
		set.v[i].since_ns = T0 + NS_PER_SEC;
	}
	alerting_set_sla(g, &set);
	ck_assert_int_eq(alerting_eval(g, agg, T0 + 60 * NS_PER_SEC, 0), 0);
	ck_assert_int_eq(alerting_publish(g, &store), 0);
	for (int i = 0; i < 3; i++)
		alert_store_count_post(&store, true, 2, T0 + NS_PER_SEC / 2 * (i + 1));
	alert_store_count_post(&store, false, 2, T0 + 2 * NS_PER_SEC);
	alert_store_count_post(&store, false, 2, T0 + 3 * NS_PER_SEC);

	struct live_inputs in = { .tick_ns = T0, .stale_after_ns = NS_PER_SEC, .alerts = &store };
	struct live_state *st = live_build(agg, &in);
	ck_assert_ptr_nonnull(st);
	char *text = render(st, PROM_TEXT, NULL);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE tally_alerts gauge\ntally_alerts{state=\"pending\"} 0\n"
					   "tally_alerts{state=\"firing\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "tally_alertmanager_posts_total{result=\"ok\"} 3\n"
					   "tally_alertmanager_posts_total{result=\"failed\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\ntally_alertmanager_last_success_timestamp_seconds 1790812801.5\n"));
	free(text);
	text = render(st, PROM_TEXT, "t1");
	ck_assert_ptr_null(strstr(text, "tally_alert"));
	free(text);
	live_free(st);
	/* without a store: no alert families at all */
	in.alerts = NULL;
	st = live_build(agg, &in);
	ck_assert_ptr_nonnull(st);
	text = render(st, PROM_TEXT, NULL);
	ck_assert_ptr_null(strstr(text, "tally_alert"));
	free(text);
	live_free(st);
	alerting_free(g);
	alert_store_release(&store);
}
END_TEST

/* Label values must be UTF-8: Prometheus refuses a scrape with one bad
 * byte anywhere (promtool: "invalid label value"), losing every series of
 * it. A Nova name of 43 snowmen (U+2603, 3 bytes each: 129 bytes) is cut
 * by the 128-byte name field to 42 of them and the first byte of the 43rd
 * (0xe2): that lone byte becomes U+FFFD (ef bf bd), as do a stray 0xff,
 * an overlong '/' (c0 af) and a UTF-16 surrogate (ed a0 80) in the tenant,
 * byte by byte; valid text (é, ☃) and the escapes stay. */
START_TEST(test_label_utf8)
{
	char nova[200] = "", want[400] = "name=\"";
	for (int i = 0; i < 43; i++)
		strcat(nova, "\xe2\x98\x83");
	for (int i = 0; i < 42; i++)
		strcat(want, "\xe2\x98\x83");
	strcat(want, "\xef\xbf\xbd\",tenant=\"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	       "\xef\xbf\xbd\xef\xbf\xbd\\\\\\\"\xc3\xa9\",");
	struct batch b;
	batch_init(&b, "agent1");
	meta(&b, "vm-u", nova, "a\xff\xc0\xaf\xed\xa0\x80\\\"\xc3\xa9", T0);
	reading(&b, "vm-u", M_VCPUS, "", T0, 0, 2);
	deliver(&b, T0);
	struct live_state *st = snap(T0, 0);
	char *text = render(st, PROM_TEXT, NULL);
	const char *line = strstr(text, "\ntally_vcpus{");
	ck_assert_msg(strstr(text, want) != NULL, "no '%s' in: %.600s", want, line ? line + 1 : "(none)");
	free(text);
	live_free(st);
	batch_release(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("prom");
	TCase *tc = tcase_create("snapshot");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_counter_never_down);
	tcase_add_test(tc, test_label_utf8);
	tcase_add_test(tc, test_families_tenants_stale);
	tcase_add_test(tc, test_store_refs);
	tcase_add_test(tc, test_alert_metrics);
	tcase_add_loop_test(tc, test_negotiate, 0, (int)(sizeof(accepts) / sizeof(accepts[0])));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
