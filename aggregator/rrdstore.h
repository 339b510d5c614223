/*
 * rrdstore.h: the RRD time series the aggregator writes for graphs, trends
 * and QoS (billing never reads them). Layout in schemas/rrd.md.
 *
 * One file per (resource, group, device): <dir>/<resource>/<group>.rrd for
 * the whole-instance group, <dir>/<resource>/<group>-<device>.rrd for disks
 * and NICs. The data sources of a group are the meters whose rrd_group it
 * is (common/meter.c), in table order; all are GAUGE: the aggregator passes
 * per-second rates it computed from exact deltas (resets and wraps already
 * handled) and gauge levels as they are, so RRD's own COUNTER/DERIVE
 * heuristics never second-guess a reset.
 *
 * rrdstore_put() queues a value in the caller's thread; the files are
 * created and written by the store's own writer thread, so the ingest cycle
 * never waits for the disk (at 10,000 VMs the first cycle creates 40,000
 * files, about 14 GB). A file's queue goes to the writer once it spans a
 * whole RRD step (a step's primary data point is only complete at its end,
 * so an earlier write shows nothing more), when it holds RRDSTORE_MAX_ROWS,
 * or at rrdstore_flush() and rrdstore_close(); each file's rows are written
 * by one rrd_update_r() call carrying many timestamps.
 *
 * Memory stays bounded: rows waiting for the writer are limited to a budget
 * (at least RRDSTORE_BUDGET_ROWS, and 8 rows per known file). Past it a
 * lossless store (fast-forward: the demo, tests) waits for the writer; a
 * lossy one (real time: metering must keep its schedule, and RRD is only
 * the picture) drops the rows and counts them in rrdstore_stats.dropped.
 * A value not after the file's last update (a replay after a crash) is
 * skipped and counted. Errors of the writer are kept (the first one since
 * the last report) and returned by the next rrdstore_handoff/flush.
 *
 * Threads: every function but rrdstore_get_stats is called from one thread
 * (the aggregator's); rrdstore_get_stats may be called from any thread.
 */
#ifndef TALLY_RRDSTORE_H
#define TALLY_RRDSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tally_err;
struct rrdstore;

#define RRDSTORE_MAX_ROWS 512       /* rows queued per file before it goes to the writer */
#define RRDSTORE_BUDGET_ROWS 131072 /* rows queued in all files before all go to the writer;
                                       also the least budget of rows waiting for the writer */

struct rrdstore_stats {
	uint64_t files_created;
	uint64_t updates;          /* rrd_update_r calls */
	uint64_t values;           /* values written */
	uint64_t skipped_old;      /* rows not after the file's last update */
	uint64_t dropped;          /* rows dropped: the writer was over its budget (lossy store) */
	uint64_t errors;
	uint64_t files;            /* files known (created or found) */
	uint64_t backlog_rows;     /* rows handed to the writer and not yet written */
	uint64_t waits;            /* times a lossless store waited for the writer */
};

/* Open the store and start its writer thread. lossless: wait for the writer
 * instead of dropping rows past the budget (see above). */
int rrdstore_open(struct rrdstore **out, const char *dir, int step_s, bool lossless,
		  struct tally_err *e);
/* Write everything queued, stop the writer and free the store; s may be
 * NULL. Errors of these last writes are counted in the stats only. */
void rrdstore_close(struct rrdstore *s);

/* Queue value for data source ds of (resource, group, device) at time_ns
 * (whole seconds count: values in the same second merge, the last wins).
 * Returns 0, -ENOMEM, -EINVAL for an unknown group/ds, or the error of an
 * early flush of a full queue (message lost: see rrdstore_stats.errors). */
int rrdstore_put(struct rrdstore *s, const char *resource, const char *group, const char *device,
		 const char *ds, int64_t time_ns, double value);

/* Hand the queues that are due (see above) to the writer and return without
 * waiting. Returns 0, or the first error the writer met since the last
 * report (naming the file; other files are still written). */
int rrdstore_handoff(struct rrdstore *s, struct tally_err *e);

/* Hand everything queued to the writer and wait until it is written.
 * Returns 0 or the first error since the last report. */
int rrdstore_flush(struct rrdstore *s, struct tally_err *e);

/* The file for (resource, group, device) into buf. 0 or -ENAMETOOLONG. */
int rrdstore_path(const struct rrdstore *s, const char *resource, const char *group,
		  const char *device, char *buf, size_t len);

void rrdstore_get_stats(const struct rrdstore *s, struct rrdstore_stats *out);

/* Tests only: hold the writer (it takes no job while held) and set the
 * writer's backlog budget in rows (0: the default). Release the hold before
 * rrdstore_flush, which would otherwise wait for ever. */
void rrdstore_test_hold(struct rrdstore *s, bool hold, size_t budget_rows);

#endif
