/*
 * bench_commit: one cycle's commit for many series, on any ledger
 * location (issue 13: 100,000 series on PostgreSQL, target <= 1 s).
 *
 * SERIES series (SERIES / 10 resources x 10 meters, counters and gauges as
 * the fleet has them) are written the way the aggregator writes a cycle:
 * ledger_begin, one usage row and one series row each, the agent's seq,
 * ledger_commit (with its hash chain). The first commit inserts every row;
 * the RUNS commits after it add to the same hour's rows and update the
 * series in place, as real time does every commit_every. The median of
 * those is printed, with the first.
 *
 * usage: bench_commit LOCATION [SERIES [RUNS]]   (defaults 100000 5)
 */
#include "err.h"
#include "ledger.h"
#include "meter.h"
#include "tallytime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 (1790812800LL * NS_PER_SEC)   /* 2026-10-01T00:00:00Z */

static const int meters[10] = { M_CPU, M_VCPUS, M_MEMORY, M_INSTANCE, M_DISK_READ_BYTES, M_DISK_WRITE_BYTES,
				M_DISK_READ_REQUESTS, M_DISK_CAPACITY, M_NET_IN_BYTES, M_NET_OUT_BYTES };

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One cycle at t: every series' usage and reading. */
static int cycle(struct ledger *l, const int64_t *mid, int res, int64_t t, uint64_t seq, struct tally_err *e)
{
	int rc;
	if ((rc = ledger_begin(l, e)))
		return rc;
	for (int r = 1; r <= res; r++) {
		if (seq == 1) {
			struct ledger_resource lr = { .id = r, .first_seen_ns = T0, .last_seen_ns = t };
			snprintf(lr.meta.resource, sizeof(lr.meta.resource), "00000000-0000-4000-8000-%012d", r);
			snprintf(lr.meta.tenant, sizeof(lr.meta.tenant), "tenant-%02d", r % 50);
			snprintf(lr.meta.type, sizeof(lr.meta.type), "instance");
			if ((rc = ledger_put_resource(l, &lr, false, e)) || lr.id != r)
				goto fail;
		}
		for (int m = 0; m < 10; m++) {
			int gauge = meter_table[meters[m]].kind == SAMPLE_GAUGE;
			struct ledger_usage u = { .resource_id = r, .meter_id = mid[m], .device = "", .hour_ns = T0,
						  .is_real = gauge, .qty = (int64_t)(r * 7919 + m) * 1000,
						  .qty_real = 10.0 * (1 + r % 4), .spanned_ns = 10 * NS_PER_SEC,
						  .covered_ns = 10 * NS_PER_SEC, .samples = 1, .exists = seq > 1 };
			struct ledger_series s = { .resource_id = r, .meter_id = mid[m], .device = "", .agent = "bench",
						   .last_ns = t, .kind = meter_table[meters[m]].kind,
						   .last_counter = (uint64_t)(r + m) * seq, .last_gauge = 1 + r % 4,
						   .flags = 1, .exists = seq > 1 };
			if ((rc = ledger_add_usage(l, &u, e)) || (rc = ledger_put_series(l, &s, e)))
				goto fail;
		}
	}
	struct ledger_agent a = { .agent = "bench", .from_seq = seq - 1, .last_seq = seq, .last_time_ns = t,
				  .batches = (int64_t)seq };
	if ((rc = ledger_put_agent(l, &a, e)) || (rc = ledger_commit(l, e)))
		goto fail;
	return 0;
fail:
	ledger_rollback(l);
	return rc;
}

int main(int argc, char **argv)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	int64_t mid[10];
	int series = argc > 2 ? atoi(argv[2]) : 100000, runs = argc > 3 ? atoi(argv[3]) : 5;
	if (argc < 2 || series < 10 || runs < 1 || runs > 51) {
		fprintf(stderr, "usage: bench_commit LOCATION [SERIES [RUNS]]\n");
		return 2;
	}
	if (ledger_open(&l, argv[1], &e) || ledger_begin(l, &e)) {
		fprintf(stderr, "bench_commit: %s\n", e.msg);
		return 1;
	}
	for (int m = 0; m < 10; m++) {
		const struct meter_def *md = &meter_table[meters[m]];
		if (ledger_meter_id(l, md->name, md->kind == SAMPLE_GAUGE ? "gauge" : "cumulative", md->unit, &mid[m], &e)) {
			fprintf(stderr, "bench_commit: %s\n", e.msg);
			return 1;
		}
	}
	if (ledger_commit(l, &e)) {
		fprintf(stderr, "bench_commit: %s\n", e.msg);
		return 1;
	}
	double s[52];
	for (int i = 0; i <= runs; i++) {
		int64_t t0 = time_mono_ns();
		if (cycle(l, mid, series / 10, T0 + (i + 1) * 10 * NS_PER_SEC, (uint64_t)i + 1, &e)) {
			fprintf(stderr, "bench_commit: %s\n", e.msg);
			return 1;
		}
		s[i] = (double)(time_mono_ns() - t0) / 1e9;
	}
	ledger_close(l);
	double first = s[0];
	qsort(s + 1, (size_t)runs, sizeof(double), cmp_d);
	printf("%-10s commit of one cycle, %d series: median %.3f s of %d (min %.3f, max %.3f); the first (inserts)"
	       " %.3f s\n", ledger_location_engine(argv[1]), series, s[1 + runs / 2], runs, s[1], s[runs], first);
	return 0;
}
