/*
 * bench_rrd: values per second that rrdstore writes into RRD files, the
 * figure issue 2 names (target: at least 1,000,000 values/s, several data
 * sources per file, several timestamps per call). For comparison it also
 * writes one value per rrd_update_r call through librrd directly, the way
 * collectd's rrdtool plugin does without its cache (the project's peer
 * benchmark harness measured about 33,000 updates/s for that on this kind
 * of machine).
 *
 * Each run: FILES disk files (6 data sources each) get ROWS timestamps,
 * queued and flushed in one call per file; files are created beforehand and
 * not timed. Median of RUNS.
 *
 * usage: bench_rrd [FILES [ROWS [RUNS]]]   (defaults 1000 60 5)
 */
#include "err.h"
#include "rrdstore.h"
#include "tallytime.h"

#include <rrd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static const char *const ds[] = { "read_bytes", "write_bytes", "read_requests", "write_requests",
				   "capacity", "allocation" };

int main(int argc, char **argv)
{
	int files = argc > 1 ? atoi(argv[1]) : 1000;
	int rows = argc > 2 ? atoi(argv[2]) : 60;
	int runs = argc > 3 ? atoi(argv[3]) : 5;
	struct tally_err e = { 0 };
	char dir[] = "/tmp/tally-bench-rrd-XXXXXX";
	struct rrdstore *s;
	double *rate = calloc((size_t)runs, sizeof(double)), single = 0;
	int64_t t = 1790812800LL;

	if (!mkdtemp(dir) || rrdstore_open(&s, dir, 60, true, &e)) {
		fprintf(stderr, "bench_rrd: %s\n", e.msg);
		return 1;
	}
	char res[64];
	/* create the files (not timed) */
	for (int f = 0; f < files; f++) {
		snprintf(res, sizeof(res), "vm-%05d", f);
		rrdstore_put(s, res, "disk", "vda", ds[0], (t + 60) * NS_PER_SEC, 1);
	}
	t += 60;
	if (rrdstore_flush(s, &e)) {
		fprintf(stderr, "bench_rrd: %s\n", e.msg);
		return 1;
	}
	for (int r = 0; r < runs; r++) {
		int64_t t0 = time_mono_ns();
		for (int f = 0; f < files; f++) {
			snprintf(res, sizeof(res), "vm-%05d", f);
			for (int k = 1; k <= rows; k++)
				for (int d = 0; d < 6; d++)
					rrdstore_put(s, res, "disk", "vda", ds[d], (t + 60 * k) * NS_PER_SEC,
						     (double)(k * d));
		}
		if (rrdstore_flush(s, &e)) {
			fprintf(stderr, "bench_rrd: %s\n", e.msg);
			return 1;
		}
		double sec = (double)(time_mono_ns() - t0) / 1e9;
		rate[r] = (double)files * rows * 6 / sec;
		t += 60 * rows;
	}
	/* baseline: librrd, one timestamp and one value per call */
	{
		char path[512], val[64];
		const char *av[1] = { val };
		int n = files < 1000 ? files : 1000;
		int64_t t0 = time_mono_ns();
		for (int f = 0; f < n; f++) {
			snprintf(res, sizeof(res), "vm-%05d", f);
			rrdstore_path(s, res, "disk", "vda", path, sizeof(path));
			snprintf(val, sizeof(val), "%lld:7", (long long)(t + 60));
			rrd_clear_error();
			rrd_update_r(path, "read_bytes", 1, av);
		}
		single = n / ((double)(time_mono_ns() - t0) / 1e9);
	}
	qsort(rate, (size_t)runs, sizeof(double), cmp_double);
	printf("rrd: %d files x 6 data sources x %d timestamps per rrd_update_r call\n", files, rows);
	printf("rrd: values/s median %.0f  min %.0f  max %.0f  (%d runs)\n", rate[runs / 2], rate[0],
	       rate[runs - 1], runs);
	printf("rrd: librrd one value per call: %.0f values/s  (ratio %.1fx)\n", single,
	       rate[runs / 2] / single);
	rrdstore_close(s);
	free(rate);
	snprintf(res, sizeof(res), "rm -rf %s", dir);
	return system(res) ? 1 : 0;
}
