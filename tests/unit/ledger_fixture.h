/*
 * ledger_fixture.h: a ledger written by the real aggregator from readings a
 * test chooses, for the billing suites. One ledger per test: lf_open()
 * makes it in a fresh directory (dir), or in a fresh PostgreSQL schema when
 * the suite runs on PostgreSQL (ledger_backend.h), lf_meta()/lf_reading() add to the
 * current batch (lf_event() an event), lf_flush() ingests it, lf_close()
 * commits and closes. max_gap is 40 days unless lf_max_gap_ns says else,
 * so readings far apart still count as covered.
 */
#ifndef TALLY_LEDGER_FIXTURE_H
#define TALLY_LEDGER_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "aggregator.h"
#include "ledger_backend.h"
#include "batch.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

static char dir[64], ledger[512], plan_path[128];
static int64_t lf_max_gap_ns = 40 * 24 * NS_PER_HOUR;   /* set before lf_open() to change */
static struct aggregator *agg;
static struct batch bt;
static uint64_t seq;
static int64_t lf_cycle_ns;            /* the latest reading ingested */

static inline void lf_open(void)
{
	struct agg_config ac = { 0 };
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "billing");
	tu_ledger_location(ledger, sizeof(ledger), dir, "ledger.db");
	snprintf(plan_path, sizeof(plan_path), "%s/plan.yaml", dir);
	ac.ledger_path = ledger;
	ac.max_gap_ns = lf_max_gap_ns;
	ck_assert_int_eq(agg_open(&agg, &ac, &e), 0);
	batch_init(&bt, "host-1");
	seq = 0;
	lf_cycle_ns = 0;
}

static inline void lf_meta(const char *res, const char *tenant, const char *flavor, int64_t t)
{
	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	str_copy(m.resource, res, sizeof(m.resource));
	str_copy(m.name, res, sizeof(m.name));
	str_copy(m.tenant, tenant, sizeof(m.tenant));
	str_copy(m.flavor, flavor, sizeof(m.flavor));
	str_copy(m.type, "instance", sizeof(m.type));
	snprintf(m.labels, sizeof(m.labels), "flavor=%s", flavor);
	m.time_ns = t;
	ck_assert_int_eq(batch_add_meta(&bt, &m), 0);
}

static inline void lf_reading(const char *res, int meter, int64_t t, double g, uint64_t c, unsigned flags)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, res, sizeof(s.resource));
	s.meter = (uint16_t)meter;
	s.kind = meter_table[meter].kind;
	s.time_ns = t;
	s.flags = (uint8_t)flags;
	if (s.kind == SAMPLE_GAUGE)
		s.v.gauge = g;
	else
		s.v.counter = c;
	ck_assert_int_eq(batch_add_sample(&bt, &s), 0);
}

/* A lifecycle event, as a collector reports it. */
static inline void lf_event(const char *res, int64_t t, const char *type, const char *reason)
{
	struct lifecycle_event ev;
	memset(&ev, 0, sizeof(ev));
	str_copy(ev.resource, res, sizeof(ev.resource));
	str_copy(ev.type, type, sizeof(ev.type));
	str_copy(ev.reason, reason, sizeof(ev.reason));
	ev.time_ns = t;
	ck_assert_int_eq(batch_add_event(&bt, &ev), 0);
}

/* Ingest what was added since the last flush as one batch, closing the
 * cycle at its latest reading (the ledger's "data until"). */
static inline void lf_flush(void)
{
	struct tally_err e = { 0 };
	for (size_t i = 0; i < bt.n_samples; i++)
		if (bt.samples[i].time_ns > lf_cycle_ns)
			lf_cycle_ns = bt.samples[i].time_ns;
	bt.time_ns = lf_cycle_ns;
	bt.seq = ++seq;
	ck_assert_msg(agg_ingest(agg, &bt, &e) == 0, "%s", e.msg);
	batch_clear(&bt);
}

static inline void lf_close(void)
{
	struct tally_err e = { 0 };
	lf_flush();
	ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
	agg_close(agg);
	batch_release(&bt);
}

static inline void lf_teardown(void)
{
	tu_rmrf(dir);
}

#endif
