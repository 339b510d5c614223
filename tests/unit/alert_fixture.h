/*
 * alert_fixture.h: the alert engine on the real aggregator and ledger of
 * ledger_fixture.h, for the suites that drive it cycle by cycle. The
 * caller fills cfg (alerting_config_parse), calls alert_store_init(&store),
 * lf_open() and eng_open(); cycle(t) then ingests what lf_reading() and
 * lf_event() added, evaluates, commits and publishes; eng_restart() is a
 * restart of tallyd on the same ledger.
 */
#ifndef TALLY_ALERT_FIXTURE_H
#define TALLY_ALERT_FIXTURE_H

#include <check.h>
#include <string.h>

#include "aggregator.h"
#include "alerting.h"
#include "cfg.h"
#include "err.h"
#include "ledger_fixture.h"

static struct alerting_config cfg;
static struct alerting *eng;
static struct alert_store store;
static int64_t af_clock_step_ns;       /* the next cycle's batch.clock_step_ns */

static inline void eng_open(void);

/* cfg from the YAML text of a config with an `alerts:` section */
static inline void eng_parse(const char *yaml)
{
	struct cfg_node *root = NULL;
	struct tally_err e = { 0 };
	ck_assert_msg(cfg_load_string("t.yaml", yaml, strlen(yaml), &root, &e) == 0, "%s", e.msg);
	ck_assert_msg(alerting_config_parse(&cfg, cfg_get(root, "alerts"), 10 * NS_PER_SEC, &e) == 0, "%s",
		      e.msg);
	cfg_free(root);
}

static inline void eng_setup(const char *yaml)
{
	eng_parse(yaml);
	ck_assert_int_eq(alert_store_init(&store), 0);
	lf_open();
	eng_open();
}

static inline void eng_teardown(void)
{
	lf_close();
	alerting_free(eng);
	alert_store_release(&store);
	lf_teardown();
}

/* The integer the query gives on the ledger (-1: no row). */
static inline int64_t lf_query(const char *sql)
{
	return tu_ledger_int_or(ledger, sql, -1);
}

static inline void eng_open(void)
{
	struct tally_err e = { 0 };
	ck_assert_int_eq(alerting_new(&eng, &cfg, "tallyd-1", 10 * NS_PER_SEC), 0);
	ck_assert_msg(alerting_attach(eng, agg, &e) == 0, "%s", e.msg);
}

/* A new aggregator and engine on the ledger: what was committed, and (with
 * commit) what the last cycles left; without, as after a kill -9. */
static inline void eng_restart(bool commit)
{
	struct tally_err e = { 0 };
	if (commit)
		ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
	agg_close(agg);
	alerting_free(eng);   /* after agg_close: the commit hook points at it */
	struct agg_config ac = { .ledger_path = ledger, .max_gap_ns = lf_max_gap_ns };
	ck_assert_msg(agg_open(&agg, &ac, &e) == 0, "%s", e.msg);
	eng_open();
}

/* ingest the batch so far, evaluate at t, and (commit) commit and publish */
static inline void cycle_at(int64_t t, bool commit)
{
	struct tally_err e = { 0 };
	bt.clock_step_ns = af_clock_step_ns;
	struct batch copy = bt;   /* lf_flush clears bt; note what was ingested */
	size_t ne = bt.n_events, ns = bt.n_samples;
	lf_flush();
	bt.clock_step_ns = af_clock_step_ns = 0;
	copy.n_events = ne;
	copy.n_samples = ns;
	alerting_note_batch(eng, &copy);
	ck_assert_int_eq(alerting_eval(eng, agg, t, 0), 0);
	if (!commit)
		return;
	ck_assert_msg(agg_commit(agg, &e) == 0, "%s", e.msg);
	alerting_committed(eng);
	ck_assert_int_eq(alerting_publish(eng, &store), 0);
}

static inline void cycle(int64_t t)
{
	cycle_at(t, true);
}

/* the one alert whose labels contain frag, or NULL */
static inline const struct alert_view *find_alert(const struct alert_snap *s, const char *frag)
{
	const struct alert_view *f = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strstr(s->v[i].labels, frag)) {
			ck_assert_ptr_null(f);
			f = &s->v[i];
		}
	return f;
}

#endif
