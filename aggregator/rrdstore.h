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
 * rrdstore_put() queues a value; values of one file are written by one
 * rrd_update_r() call carrying many timestamps, at rrdstore_flush(), when a
 * file has RRDSTORE_MAX_ROWS queued, or when all files together have
 * RRDSTORE_BUDGET_ROWS (about 10 MB): memory stays bounded however many
 * readings arrive between two commits. A value not after
 * the file's last update (a replay after a crash) is skipped and counted.
 * The store owns its queues; rrdstore_close() frees them without writing.
 */
#ifndef TALLY_RRDSTORE_H
#define TALLY_RRDSTORE_H

#include <stddef.h>
#include <stdint.h>

struct tally_err;
struct rrdstore;

#define RRDSTORE_MAX_ROWS 512       /* rows queued per file before it is written */
#define RRDSTORE_BUDGET_ROWS 131072 /* rows queued in all files before all are written */

struct rrdstore_stats {
	uint64_t files_created;
	uint64_t updates;          /* rrd_update_r calls */
	uint64_t values;           /* values written */
	uint64_t skipped_old;      /* rows not after the file's last update */
	uint64_t errors;
};

int rrdstore_open(struct rrdstore **out, const char *dir, int step_s, struct tally_err *e);
void rrdstore_close(struct rrdstore *s);

/* Queue value for data source ds of (resource, group, device) at time_ns
 * (whole seconds count: values in the same second merge, the last wins).
 * Returns 0, -ENOMEM, -EINVAL for an unknown group/ds, or the error of an
 * early flush of a full queue (message lost: see rrdstore_stats.errors). */
int rrdstore_put(struct rrdstore *s, const char *resource, const char *group, const char *device,
		 const char *ds, int64_t time_ns, double value);

/* Write everything queued. Returns 0 or the first error (naming the file);
 * other files are still written. */
int rrdstore_flush(struct rrdstore *s, struct tally_err *e);

/* The file for (resource, group, device) into buf. 0 or -ENAMETOOLONG. */
int rrdstore_path(const struct rrdstore *s, const char *resource, const char *group,
		  const char *device, char *buf, size_t len);

void rrdstore_get_stats(const struct rrdstore *s, struct rrdstore_stats *out);

#endif
