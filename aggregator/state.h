/*
 * state.h: the aggregator's live state as immutable snapshots, for the
 * exporters (Prometheus /metrics, the JSON API) to read without ever
 * touching the aggregator or the collectors.
 *
 * The ingest thread builds a snapshot after each ledger commit
 * (live_build) and publishes it (live_publish); a reader takes a reference
 * (live_acquire), reads at leisure and gives it back (live_put). The store's
 * lock is held only to swap or take a pointer, so a scrape never blocks
 * ingest, however long it takes, and ingest never waits for a scrape.
 *
 * A snapshot owns all its memory and never changes once published; the last
 * reference frees it. Resources are sorted by uuid (live_find_resource is a
 * binary search); each resource's series are contiguous in series[], sorted
 * by meter then device; by_meter[] lists the series indices meter by meter
 * (meter_start[m] .. meter_start[m + 1]) for rendering metric families.
 */
#ifndef TALLY_STATE_H
#define TALLY_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "aggregator.h"
#include "alerting.h"
#include "selfmetric.h"
#include "snapshot.h"
#include "meter.h"
#include "sample.h"

struct scheduler;

struct live_resource {
	char uuid[TALLY_ID_MAX];
	char name[128];
	char tenant[64];
	char flavor[64];
	char host[TALLY_ID_MAX];       /* agent of its latest reading */
	int64_t first_seen_ns, last_seen_ns;
	bool stale;                    /* no reading within stale_after of the snapshot's tick */
	uint32_t first_series, n_series;
};

struct live_series {
	uint32_t res;                  /* index into resources */
	uint16_t meter;                /* enum meter_id */
	uint8_t kind;                  /* enum sample_kind */
	bool ended;                    /* its last reading was a final one */
	char device[TALLY_DEV_MAX];
	char host[TALLY_ID_MAX];       /* source agent of the series */
	int64_t last_ns;
	uint64_t total;                /* counters: base units since tallyd started */
	double gauge;                  /* gauges: last value, base units */
	double rate;                   /* counters: base units/s over the last interval */
	bool has_rate;                 /* counters: rate was measured; false after a baseline
					* reading (a new series): no interval, no rate, not 0 */
	double divergence;             /* agg_series_view's: < 0 when not checked */
};

#define LIVE_MAX_COLLECTORS 8

struct live_state {
	struct snapshot snap;          /* first: refs, and gen (1, 2, ... as published: a cache key) */
	int64_t tick_ns;               /* the cycle the snapshot closes (virtual in fast-forward) */
	int64_t built_ns;              /* wall clock when it was built */
	int64_t stale_after_ns;
	int64_t last_commit_ns;        /* wall clock of the last successful commit, 0 = none */
	bool no_ledger;                /* built without an aggregator (an agent): no series, and no
					* ledger, ingest or RRD figures */
	struct agg_stats stats;
	uint64_t pending_samples;      /* ingested, not yet committed: the ingest queue */
	uint64_t batcher_dropped;      /* readings refused for lack of memory */
	uint64_t cycles, overruns;
	uint64_t clock_steps;          /* wall-clock steps seen (collectors/scheduler.h) */
	int64_t clock_skipped_ns;      /* forward steps data time followed, summed */
	int64_t clock_ahead_ns;        /* data time ahead of the wall clock, 0 when on it */
	struct live_collector {
		char name[32];
		double read_s;          /* duration of the last read, seconds */
		uint64_t errors;
	} coll[LIVE_MAX_COLLECTORS];
	size_t n_coll;
	struct collector_metric *cmetrics;   /* collectors' self-metrics (selfmetric.h), owned */
	size_t n_cmetrics;
	uint64_t stale_resources;
	/* alerting: the committed alerts and the Alertmanager sender's counts */
	bool alerting;                 /* false: no alert store (no `alerts:` section) */
	uint64_t alerts_pending, alerts_firing;
	struct alert_send_stats send;
	struct live_resource *resources;
	size_t n_resources;
	struct live_series *series;
	size_t n_series;
	uint32_t *by_meter;            /* n_series indices */
	uint32_t meter_start[METER_COUNT + 1];
};

struct live_store {
	struct snapshot_store ss;      /* of struct live_state (common/snapshot.h) */
};

/* What live_build reads besides the aggregator. */
struct live_inputs {
	int64_t tick_ns;
	int64_t stale_after_ns;        /* resources without a reading for this long are stale */
	int64_t last_commit_ns;
	uint64_t batcher_dropped;
	uint64_t cycles, overruns;
	uint64_t clock_steps;
	int64_t clock_skipped_ns, clock_ahead_ns;
	const struct live_collector *coll;
	size_t n_coll;
	const struct collector_metric *cmetrics;  /* copied */
	size_t n_cmetrics;
	struct alert_store *alerts;    /* NULL: no alerting */
};

int live_store_init(struct live_store *s);
/* Drops the store's reference; readers' references stay valid. */
void live_store_release(struct live_store *s);

/* Build a snapshot of a (call from the ingest thread; a NULL in a process
 * without one, an agent: no series, no_ledger set). Returns NULL when out
 * of memory. The caller owns it until it publishes or frees it. */
struct live_state *live_build(const struct aggregator *a, const struct live_inputs *in);
void live_free(struct live_state *st);

/* Replace the current snapshot by st (the store takes the reference). */
void live_publish(struct live_store *s, struct live_state *st);
/* A reference to the current snapshot, or NULL; give it back with live_put. */
struct live_state *live_acquire(struct live_store *s);
void live_put(struct live_store *s, struct live_state *st);

/* Index of the resource uuid in st->resources, or -1. */
long live_find_resource(const struct live_state *st, const char *uuid);

#endif
