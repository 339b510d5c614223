/*
 * aggregator.h: the one ingest path from batches to the ledger and RRD.
 *
 * agg_ingest() applies a batch to in-memory state: per-series last readings
 * (series.h does the arithmetic) and hourly buckets not yet written.
 * agg_commit() writes all of it - usage, series state, resources, events and
 * each agent's last batch seq - in ONE ledger transaction, so that after a
 * crash the ledger holds either all of a batch's effects or none, and the
 * agent's seq says which (docs/architecture.md rule 7). A batch is durable, and may be
 * acknowledged to its sender, only once agg_commit() has returned 0 after it.
 *
 * A batch's clock_step_ns (batch.h) moves its agent's series forward in
 * time before its readings are applied.
 *
 * If a commit fails (disk full, I/O error) the transaction is rolled back
 * and everything ingested since the last commit stays in memory, marked
 * unwritten: ingest goes on, and a later agg_commit writes all of it in one
 * transaction (the daemon retries with back-off). Only when the rollback
 * fails too, or memory ran out during ingest, is the aggregator broken: it
 * refuses any further work (-EIO) and must be closed and reopened, which
 * reloads the committed state. Either way nothing committed is lost, and
 * batches not yet committed were not acknowledged to their senders.
 *
 * The in-process pipeline (all-in-one tallyd) and the network ingest of the
 * aggregator role both call agg_ingest(): one code path.
 */
#ifndef TALLY_AGGREGATOR_H
#define TALLY_AGGREGATOR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"

struct tally_err;
struct aggregator;

/* The largest batch.clock_step_ns taken (100 years); a larger or negative
 * one is counted invalid and ignored. */
#define AGG_CLOCK_STEP_MAX_NS (100LL * 366 * 86400 * 1000000000)

struct agg_config {
	const char *ledger_path;     /* the ledger's location (ledger.h): a file, created if
					missing, or a database server's */
	int statement_timeout_ms;    /* on a database server: one statement at most (0: no limit) */
	const char *rrd_dir;         /* NULL: no RRD files */
	int rrd_step_s;              /* RRD step, seconds (60) */
	bool rrd_lossless;           /* wait for the RRD writer rather than drop (fast-forward) */
	int64_t max_gap_ns;          /* longer intervals are not "covered" */
};

/* The `ledger:` and `rrd:` sections of tallyd's config (docs/config.md),
 * parsed by agg_settings_parse (aggregator/aggcfg.c): values, owned here. */
struct agg_settings {
	char ledger_path[PATH_MAX];       /* the location: ledger.path or ledger.url (without its
					     password); default: data_dir/ledger.db */
	int64_t statement_timeout_ns;     /* ledger.statement_timeout, default 30 s */
	int64_t max_gap_ns;               /* default 5 min, and at least 3 intervals */
	int64_t commit_every_ns;          /* commit period (wall): AGG_COMMIT_EVERY_FF in
					     fast-forward, _RT in real time, unless given */
	bool rrd_enabled;                 /* default true */
	char rrd_dir[PATH_MAX];           /* default: data_dir/rrd */
	int64_t rrd_step_ns;              /* default 60 s */
};

/* ledger.commit_every when not given: fast-forward commits every second of
 * wall time; real time every 10 s, and at once when agg_must_commit() */
#define AGG_COMMIT_EVERY_FF (1 * 1000000000LL)
#define AGG_COMMIT_EVERY_RT (10 * 1000000000LL)

/* Parse the sections ledger and rrd (either NULL when not given) into s;
 * paths not given are made under data_dir. interval_ns and fast_forward
 * are tallyd's, for the defaults and the checks. Returns 0 or -EINVAL,
 * -ERANGE, -ENAMETOOLONG with "file:line:col: key '...': ..." in e. */
struct cfg_node;
int agg_settings_parse(struct agg_settings *s, const struct cfg_node *ledger, const struct cfg_node *rrd,
		       const char *data_dir, int64_t interval_ns, bool fast_forward, struct tally_err *e);
/* The aggregator's config for s, pointing into s (which must outlive
 * agg_open); lossless: wait for the RRD writer rather than drop. */
void agg_settings_config(const struct agg_settings *s, bool lossless, struct agg_config *out);

struct agg_stats {
	uint64_t batches;            /* ingested (not counting duplicates) */
	uint64_t duplicate_batches;  /* seq already ingested: counted once */
	uint64_t samples;            /* applied */
	uint64_t baselines;          /* first readings (nothing to count) */
	uint64_t from_zero;          /* new lives counted from their origin */
	uint64_t resets;             /* counters that went down */
	uint64_t wraps;              /* counters that wrapped past 2^64 */
	uint64_t dropped_old;        /* readings not after the previous one */
	uint64_t invalid;            /* refused: unknown meter, bad kind, bad id, a bad clock step,
					a counter amount an hour's ledger row cannot hold (2^63) */
	uint64_t clock_steps;        /* batches whose agent's data time stepped forward */
	uint64_t commits;
	uint64_t commit_failures;    /* commits that failed (all rolled back) */
	uint64_t commit_failures_in_row;  /* since the last successful commit */
	uint64_t resyncs;            /* commits that found another writer had moved an agent on:
					what was built on its old state was dropped (aggregator.c) */
	uint64_t rows_written;       /* usage rows added to in commits */
	uint64_t rrd_errors;
	uint64_t rrd_dropped;        /* RRD rows dropped: the writer was behind (real time) */
	uint64_t rrd_backlog;        /* RRD rows waiting for the writer, at the last commit */
	uint64_t rrd_files;          /* RRD files known */
	uint64_t series;             /* series known */
	uint64_t resources;          /* resources known */
	uint64_t checks_compared;    /* intervals a second source's counter was compared over */
	uint64_t checks_unmatched;   /* second-source readings of no billed series (ignored) */
};

int agg_open(struct aggregator **out, const struct agg_config *cfg, struct tally_err *e);
void agg_close(struct aggregator *a);

/* Apply one batch. Returns 0, 1 when the batch was a duplicate (its seq is
 * not above the agent's last one; nothing changed), or a negative errno. */
int agg_ingest(struct aggregator *a, const struct batch *b, struct tally_err *e);

/* Write everything ingested since the last commit in one transaction; then
 * flush RRD. Returns 0, a negative errno (-ENOSPC for a full disk: nothing
 * of this commit was written, all of it is still pending and a later call
 * tries again), or 1 when the ledger committed but writing RRD failed
 * (message in e; graphs only, so the caller warns and goes on). */
int agg_commit(struct aggregator *a, struct tally_err *e);

/* True when the aggregator refuses further work (see above): retrying a
 * commit cannot help, it must be reopened. */
bool agg_broken(const struct aggregator *a);

/* Samples ingested since the last commit. */
uint64_t agg_pending(const struct aggregator *a);

/* True when what was ingested since the last commit holds something a
 * restarted process could not recompute from the next readings, so it
 * should be committed now rather than at the next periodic commit:
 * lifecycle events (also the silent/heard pair of a gap), metadata changes,
 * a series' first reading (baseline or counted from its origin), a final
 * reading (SAMPLE_F_LAST), a counter reset or wrap, a change of an
 * allocation gauge (vcpus, memory, disk capacity, instance), a delta
 * reading. Everything else is counter progress, unchanged allocation gauges
 * and measured levels (memory.usage, memory.resident, disk allocation):
 * lost with the process, the next reading after a restart counts the same
 * counter usage from the last committed one (rule 1) and the last
 * committed gauge value holds across the gap (rule 5), as for any lost
 * reading: resolution is lost, not usage. */
bool agg_must_commit(const struct aggregator *a);

/* The last seq ingested from agent (0 if none), and the cycle time of its
 * last committed batch (0 if none). */
uint64_t agg_agent_seq(const struct aggregator *a, const char *agent);
int64_t agg_agent_time(const struct aggregator *a, const char *agent);

/* What the aggregator knows of an agent that ships over the network
 * (schemas/migrations/007-agents.sql): its seqs and the spool they come
 * from. agg_agent_find() is false for an agent never seen. */
#define AGG_SPOOL_ID_LEN 16
struct agg_agent {
	char name[TALLY_ID_MAX];
	uint64_t seq;                /* the last seq ingested (committed or not) */
	uint64_t committed_seq;      /* the last seq committed */
	int64_t time_ns;             /* cycle time of the last committed batch */
	int64_t batches;
	bool has_spool;              /* its batches came from the spool spool_id */
	uint8_t spool_id[AGG_SPOOL_ID_LEN];
	uint64_t spool_first_seq;
	int64_t contact_ns;          /* wall clock of its last request taken, 0: none */
	int64_t spool_batches, spool_bytes;   /* its spool's depth as it reported it, -1: not */
};
bool agg_agent_find(const struct aggregator *a, const char *agent, struct agg_agent *out);

/* Several aggregators on one ledger (PostgreSQL): take from the ledger
 * every agent another writer moved on since this one last read it (its
 * seq, spool, series and resources), dropping what this aggregator holds
 * of it uncommitted: those batches were not acknowledged, and come again.
 * Called when an agent's request does not follow what this aggregator
 * knows of it (an apparent gap or another spool), and by agg_commit when
 * the ledger refuses an agent's seq (-ESTALE). Not inside a commit.
 * Returns 1 when some agent was taken again, 0 when none had moved, or a
 * negative errno (the aggregator is broken when it could not finish). */
int agg_refresh(struct aggregator *a, struct tally_err *e);

/* Note what a request of agent said besides its batches: the spool they
 * come from (when set_spool) and its contact. Kept in memory, written with
 * the agent's row at the next commit (rolled back with it). Creates the
 * agent when new. 0, -ENOMEM, -ENOSPC (too many agents), -EIO (broken). */
struct agg_agent_note {
	bool set_spool;
	bool has_spool;
	uint8_t spool_id[AGG_SPOOL_ID_LEN];
	uint64_t spool_first_seq;
	int64_t contact_ns;
	int64_t spool_batches, spool_bytes;
};
int agg_agent_note(struct aggregator *a, const char *agent, const struct agg_agent_note *n);

/* The latest cycle time committed by any agent (0 if none): where a
 * fast-forward run resumes. */
int64_t agg_last_cycle_ns(const struct aggregator *a);

/* A hook agg_commit calls inside its transaction, after the aggregator's
 * own writes: a module that keeps its own table in the ledger (alert state,
 * aggregator/alerting.h) writes it there, so it commits or rolls back with
 * the data it was computed from. A non-zero return aborts the commit. fn
 * NULL removes the hook. */
struct ledger;
typedef int (*agg_commit_hook)(void *ctx, struct ledger *l, struct tally_err *e);
void agg_set_commit_hook(struct aggregator *a, agg_commit_hook fn, void *ctx);
/* The ledger, for such a module's loader at start-up (read before the first
 * ingest); the aggregator stays its owner and only writer. */
struct ledger *agg_ledger(struct aggregator *a);

/* Usage events booked beside the aggregator, in transactions of their own
 * on its ledger (aggregator/import.h, struct import_resources): the
 * resources they name are the aggregator's, one id per uuid for both.
 * agg_resource_find: whether the aggregator knows uuid, a copy in *out and
 * whether its row is committed (*in_ledger). agg_resource_new_id: the id
 * of a new resource, taken from the aggregator's own sequence.
 * agg_resource_learn: a resource row such a transaction committed (new,
 * or with a wider span): the aggregator takes its id and widens its span,
 * so that it neither writes a second row for the uuid nor narrows the
 * span when it next writes the row; 0 or -ENOMEM (the aggregator is then
 * broken). Writer's thread only, never inside agg_commit. */
struct ledger_resource;
int agg_resource_find(const struct aggregator *a, const char *uuid, struct ledger_resource *out, bool *in_ledger);
int64_t agg_resource_new_id(struct aggregator *a);
int agg_resource_learn(struct aggregator *a, const struct ledger_resource *r);

void agg_get_stats(const struct aggregator *a, struct agg_stats *out);

/* The live view the exporters read (through aggregator/state.h): one call
 * of fn per series that received a reading since agg_open, in no
 * particular order. The pointers are valid during the call only; call it
 * from the thread that ingests. total is the sum of the series' deltas since
 * agg_open (so it never goes down, whatever the source counter does); it
 * restarts from 0 with the process. Returns 0 or the first non-zero fn(). */
struct ledger_resource;
struct agg_series_view {
	const struct ledger_resource *res;  /* metadata, host, first/last seen */
	uint32_t res_index;                  /* stable while the aggregator is open */
	const char *agent;                   /* source host of the series */
	int64_t agent_time_ns;               /* that agent's committed data time (agg_agent_time) */
	uint16_t meter;                      /* enum meter_id */
	const char *device;
	uint8_t kind;                        /* enum sample_kind */
	bool ended;                          /* its last reading was a final one */
	int64_t last_ns;                     /* time of its last reading */
	uint64_t total;                      /* counters: base units since agg_open */
	double gauge;                        /* gauges: last value, base units */
	double rate;                         /* counters: base units/s, last interval */
	bool has_rate;                       /* counters: rate was measured (false after a
					      * baseline reading: no interval to take it over) */
	double divergence;                   /* a second source's check (SAMPLE_F_CHECK):
						|its usage - this series'| / the larger, over
						the last interval both read; < 0: not checked */
};
typedef int (*agg_series_fn)(void *ctx, const struct agg_series_view *v);
int agg_visit_series(const struct aggregator *a, agg_series_fn fn, void *ctx);

#endif
