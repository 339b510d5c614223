/*
 * bench_snmp: one poll of N SNMP targets by the snmp collector, the figure
 * issue 15 names: wall time and CPU per interval. Targets are 127.0.0.1 at
 * the ports given (v2c, community public); every read polls all of them
 * (each read is a new interval). Readings go to a sink that counts them.
 * Median, min and max over ROUNDS reads after one warm-up read.
 *
 * usage: bench_snmp ROUNDS PORT...
 */
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "tallytime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const struct collector_ops snmp_collector;

static uint64_t n_samples;

static int count_sample(void *ctx, const char *agent, const struct sample *s)
{
	n_samples++;
	return 0;
}
static int count_meta(void *ctx, const char *agent, const struct resource_meta *m) { return 0; }
static int count_event(void *ctx, const char *agent, const struct lifecycle_event *ev) { return 0; }

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_snmp ROUNDS PORT...\n");
		return 2;
	}
	int rounds = atoi(argv[1]);
	if (rounds < 1 || rounds > 10000)
		return 2;
	size_t cap = 256 + (size_t)argc * 128, used = 0;
	char *yaml = malloc(cap);
	if (!yaml)
		return 1;
	used += (size_t)snprintf(yaml + used, cap - used, "targets:\n");
	for (int i = 2; i < argc; i++)
		used += (size_t)snprintf(yaml + used, cap - used, "  - {name: t%d, address: \"127.0.0.1:%s\","
					 " community: public, timeout: 1s, retries: 1}\n", i - 1, argv[i]);
	struct tally_err e = { 0 };
	struct cfg_node *root = NULL;
	struct collector_env env = { .agent_id = "bench", .interval_ns = 10 * NS_PER_SEC };
	void *st = NULL;
	if (cfg_load_string("bench.yaml", yaml, used, &root, &e) ||
	    snmp_collector.configure(root, &env, &st, &e) || snmp_collector.init(st, 0, &e)) {
		fprintf(stderr, "bench_snmp: %s\n", e.msg);
		return 1;
	}
	struct sink sink = { .ctx = NULL, .sample = count_sample, .meta = count_meta, .event = count_event };
	double *wall = calloc((size_t)rounds, sizeof(double)), *cpu = calloc((size_t)rounds, sizeof(double));
	if (!wall || !cpu)
		return 1;
	int64_t now = 1790000000LL * NS_PER_SEC;
	snmp_collector.read(st, now, &sink, &e); /* warm-up: the first answers are baselines */
	uint64_t per = 0;
	for (int r = 0; r < rounds; r++) {
		now += env.interval_ns;
		uint64_t s0 = n_samples;
		double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		if (snmp_collector.read(st, now, &sink, &e))
			fprintf(stderr, "bench_snmp: %s\n", e.msg);
		wall[r] = clock_s(CLOCK_MONOTONIC) - w0;
		cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		per = n_samples - s0;
	}
	qsort(wall, (size_t)rounds, sizeof(double), cmp_double);
	qsort(cpu, (size_t)rounds, sizeof(double), cmp_double);
	printf("tally snmp collector: %d targets, %llu samples per poll, %d polls: wall median %.2f ms"
	       " (min %.2f, max %.2f), CPU median %.2f ms (min %.2f, max %.2f)\n", argc - 2,
	       (unsigned long long)per, rounds, wall[rounds / 2] * 1e3, wall[0] * 1e3, wall[rounds - 1] * 1e3,
	       cpu[rounds / 2] * 1e3, cpu[0] * 1e3, cpu[rounds - 1] * 1e3);
	printf("RESULT tally %.6f %.6f\n", wall[rounds / 2], cpu[rounds / 2]);
	snmp_collector.free(st);
	cfg_free(root);
	free(yaml);
	free(wall);
	free(cpu);
	return 0;
}
