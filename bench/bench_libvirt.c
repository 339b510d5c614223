/*
 * bench_libvirt: the libvirt collector reading a 1000-domain libvirt
 * test-driver fleet (tests/fixtures/libvirt/gen-testnode.sh: 2 disks and
 * 1 NIC each), the figure issue 3 names: CPU per collection cycle per
 * domain and wall time per cycle, every domain reported. The test driver
 * answers the bulk call with state only, so this measures the per-domain
 * fallback path (GetInfo, MemoryStats, 2 x BlockStats, 2 x GetBlockInfo,
 * InterfaceStats per domain) - the slow path; the bulk path does less.
 * Readings go to a sink that counts them. Median of CYCLES cycles after
 * one warm-up cycle (which also reads every domain's XML).
 *
 * usage: bench_libvirt NODE_XML [CYCLES]
 */
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "tallytime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

extern const struct collector_ops libvirt_collector;

static uint64_t n_samples;
static char seen[4096][37];
static int n_seen;

static int count_sample(void *ctx, const char *agent, const struct sample *s)
{
	n_samples++;
	if (s->meter == M_CPU && n_seen < 4096)
		memcpy(seen[n_seen++], s->resource, 37);
	return 0;
}
static int count_meta(void *ctx, const char *agent, const struct resource_meta *m) { return 0; }
static int count_event(void *ctx, const char *agent, const struct lifecycle_event *ev) { return 0; }

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_libvirt NODE_XML [CYCLES]\n");
		return 2;
	}
	int cycles = argc > 2 ? atoi(argv[2]) : 10;
	char yaml[600];
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "bench", .interval_ns = 10 * NS_PER_SEC };
	void *st = NULL;
	snprintf(yaml, sizeof(yaml), "uri: 'test://%s'\nxml_refresh: 100000\n", argv[1]);
	if (cfg_load_string("bench", yaml, strlen(yaml), &root, &e) ||
	    libvirt_collector.configure(root, &env, &st, &e) || libvirt_collector.init(st, 0, &e)) {
		fprintf(stderr, "bench_libvirt: %s\n", e.msg);
		return 1;
	}
	cfg_free(root);
	struct sink sk = { NULL, count_sample, count_meta, count_event };
	double *cpu = calloc((size_t)cycles, sizeof(double)), *wall = calloc((size_t)cycles, sizeof(double));
	int domains = 0;
	for (int c = -1; c < cycles; c++) {
		n_samples = 0;
		n_seen = 0;
		double c0 = cpu_s();
		int64_t w0 = time_mono_ns();
		if (libvirt_collector.read(st, time_now_ns(), &sk, &e)) {
			fprintf(stderr, "bench_libvirt: %s\n", e.msg);
			return 1;
		}
		if (c < 0)
			continue; /* warm-up: first sight, XML of every domain */
		cpu[c] = cpu_s() - c0;
		wall[c] = (double)(time_mono_ns() - w0) / 1e9;
		domains = n_seen;
	}
	qsort(cpu, (size_t)cycles, sizeof(double), cmp_double);
	qsort(wall, (size_t)cycles, sizeof(double), cmp_double);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("libvirt: %d domains reported per cycle, %llu readings per cycle\n", domains,
	       (unsigned long long)n_samples);
	printf("libvirt: CPU per cycle median %.1f ms (%.1f us per domain), wall median %.1f ms, %d cycles\n",
	       cpu[cycles / 2] * 1e3, cpu[cycles / 2] * 1e6 / (domains ? domains : 1), wall[cycles / 2] * 1e3,
	       cycles);
	printf("libvirt: peak RSS %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
	libvirt_collector.free(st);
	free(cpu);
	free(wall);
	return 0;
}
