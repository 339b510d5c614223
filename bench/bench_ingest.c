/*
 * bench_ingest: aggregator ingest throughput, the figure issue 2 names
 * (target: at least 1,000,000 samples/s on one core through delta and
 * bucketing into the ledger).
 *
 * The simulated fleet (VMS VMs, 13 series each) is first read into batches
 * in memory for CYCLES ticks of 10 s; then the clock runs while every batch
 * goes through agg_ingest() and the ledger is committed every COMMIT cycles
 * and at the end, so the figure covers deltas, hourly buckets, and the
 * SQLite writes of usage and series state. RRD is off here (bench_rrd
 * measures it). Each run uses a fresh ledger; the median of RUNS is printed.
 *
 * usage: bench_ingest [VMS [CYCLES [RUNS [COMMIT]]]]   (defaults 1000 360 5 30; COMMIT 1 is how
 * real time commits at 1000 VMs with a 10 s interval and commit_every)
 */
#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "sim.h"
#include "tallytime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct collector_ops sim_collector;

struct store {
	struct batch *b;
	size_t n, cap;
};

static int keep(void *ctx, struct batch *b)
{
	struct store *s = ctx;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->b = realloc(s->b, s->cap * sizeof(*s->b));
		if (!s->b)
			return -1;
	}
	struct batch *c = &s->b[s->n++];
	batch_init(c, b->agent);
	c->seq = b->seq;
	c->time_ns = b->time_ns;
	for (size_t i = 0; i < b->n_samples; i++)
		batch_add_sample(c, &b->samples[i]);
	for (size_t i = 0; i < b->n_metas; i++)
		batch_add_meta(c, &b->metas[i]);
	for (size_t i = 0; i < b->n_events; i++)
		batch_add_event(c, &b->events[i]);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned vms = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	unsigned cycles = argc > 2 ? (unsigned)atoi(argv[2]) : 360;
	unsigned runs = argc > 3 ? (unsigned)atoi(argv[3]) : 5;
	unsigned commit_every = argc > 4 ? (unsigned)atoi(argv[4]) : 30;
	struct tally_err e = { 0 };
	struct store st = { 0 };
	char text[512];

	/* generate the readings once */
	struct collector_env env = { .agent_id = "bench", .interval_ns = 10 * NS_PER_SEC,
				     .start_ns = 1790812800LL * NS_PER_SEC };
	void *sim = NULL;
	struct cfg_node *root = NULL;
	snprintf(text, sizeof(text), "vms: %u\ntenants: 10\nhosts: 10\nseed: 3\nloss: 0.01\n", vms);
	if (cfg_load_string("bench", text, strlen(text), &root, &e) ||
	    sim_collector.configure(root, &env, &sim, &e) || sim_collector.init(sim, 0, &e)) {
		fprintf(stderr, "bench_ingest: %s\n", e.msg);
		return 1;
	}
	cfg_free(root);
	struct batcher bt;
	batcher_init(&bt, "bench", keep, NULL, &st);
	struct sink sk = batcher_sink(&bt);
	uint64_t samples = 0;
	for (unsigned c = 0; c < cycles; c++) {
		int64_t t = env.start_ns + (int64_t)c * env.interval_ns;
		sim_collector.read(sim, t, &sk, &e);
		batcher_flush(&bt, t);
	}
	for (size_t i = 0; i < st.n; i++)
		samples += st.b[i].n_samples;
	batcher_release(&bt);
	sim_collector.free(sim);

	double *rate = calloc(runs, sizeof(double));
	for (unsigned r = 0; r < runs; r++) {
		char dir[] = "/tmp/tally-bench-XXXXXX", path[256];
		if (!mkdtemp(dir))
			return 1;
		snprintf(path, sizeof(path), "%s/ledger.db", dir);
		struct agg_config ac = { .ledger_path = path, .max_gap_ns = 300 * NS_PER_SEC };
		struct aggregator *a;
		if (agg_open(&a, &ac, &e)) {
			fprintf(stderr, "bench_ingest: %s\n", e.msg);
			return 1;
		}
		int64_t t0 = time_mono_ns();
		size_t per_cycle = st.n / cycles;
		for (size_t i = 0; i < st.n; i++) {
			if (agg_ingest(a, &st.b[i], &e) < 0) {
				fprintf(stderr, "bench_ingest: %s\n", e.msg);
				return 1;
			}
			if (per_cycle && (i + 1) % (per_cycle * commit_every) == 0 && agg_commit(a, &e) < 0) {
				fprintf(stderr, "bench_ingest: %s\n", e.msg);
				return 1;
			}
		}
		if (agg_commit(a, &e) < 0) {
			fprintf(stderr, "bench_ingest: %s\n", e.msg);
			return 1;
		}
		double s = (double)(time_mono_ns() - t0) / 1e9;
		rate[r] = (double)samples / s;
		agg_close(a);
		snprintf(path, sizeof(path), "rm -rf %s", dir);
		if (system(path))
			return 1;
	}
	qsort(rate, runs, sizeof(double), cmp_double);
	printf("ingest: %u VMs x %u cycles = %llu samples, commit every %u cycles (%u s simulated)\n", vms,
	       cycles, (unsigned long long)samples, commit_every, commit_every * 10);
	printf("ingest: samples/s median %.0f  min %.0f  max %.0f  (%u runs, one core)\n", rate[runs / 2],
	       rate[0], rate[runs - 1], runs);
	for (size_t i = 0; i < st.n; i++)
		batch_release(&st.b[i]);
	free(st.b);
	free(rate);
	return 0;
}
