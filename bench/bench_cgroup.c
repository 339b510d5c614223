/*
 * bench_cgroup: the cgroup collector's CPU per VM per collection cycle,
 * the figure issue 14 names (target: at most 5 us).
 *
 *   bench_cgroup fake N CYCLES
 *     a fake cgroup v2 tree of N VM scopes built here (tests/unit/
 *     cgroup_tree.h: cpu.stat, memory.stat, io.stat, three PSI files and a
 *     tap per VM, their QEMU command lines and fdinfo, /proc/net/dev), the
 *     collector in `bill` mode with the host; every VM's counters advance
 *     between cycles (the rewriting is not measured).
 *   bench_cgroup tree ROOT SCOPES VERSION MODE CYCLES
 *     an existing tree (bench/cgroup_peers.sh makes one of real, empty v1
 *     cgroups), as `collectors.cgroup` with root, scopes (one pattern),
 *     version and vm_meters as given; the host is not read.
 *
 * Each cycle's read() goes into a batcher that copies every reading, as in
 * tallyd, and delivers to nothing. The figure is the process CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) of read() alone, divided by the VMs read:
 * median, min and max over rounds of CYCLES cycles, after two warm-up
 * cycles (the first opens every file and looks every VM up).
 */
#include "batch.h"
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "tallytime.h"
#include "tests/unit/cgroup_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct collector_ops cgroup_collector;

#define ROUNDS 7

static uint64_t n_samples, n_cpu;

static int deliver(void *ctx, struct batch *b)
{
	for (size_t i = 0; i < b->n_samples; i++)
		n_cpu += b->samples[i].meter == M_CPU;
	n_samples += b->n_samples;
	batch_clear(b);
	return 0;
}

static uint64_t next_seq(void *ctx, const char *agent)
{
	return 1;
}

static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void *open_collector(const char *yaml)
{
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "bench", .interval_ns = NS_PER_SEC };
	void *st = NULL;
	if (cfg_load_string("bench.yaml", yaml, strlen(yaml), &root, &e) ||
	    cgroup_collector.configure(root, &env, &st, &e) || cgroup_collector.init(st, 0, &e)) {
		fprintf(stderr, "bench_cgroup: %s\n", e.msg);
		exit(1);
	}
	cfg_free(root);
	return st;
}

/* Rounds of cycles; prints the figures. advance (may be NULL) runs
 * between cycles, unmeasured. */
static void measure(void *st, int cycles, const char *what, void (*advance)(void *), void *ctx)
{
	struct batcher bt;
	struct tally_err e = { 0 };
	double us[ROUNDS];
	int64_t t = time_now_ns() / NS_PER_SEC * NS_PER_SEC;
	batcher_init(&bt, "bench", deliver, next_seq, NULL);
	struct sink sk = batcher_sink(&bt);
	for (int w = 0; w < 2; w++) {
		if (advance)
			advance(ctx);
		cgroup_collector.read(st, t += NS_PER_SEC, &sk, &e);
		batcher_flush(&bt, t);
	}
	uint64_t vms = 0, samples = 0;
	for (int r = 0; r < ROUNDS; r++) {
		int64_t spent = 0;
		n_cpu = n_samples = 0;
		for (int c = 0; c < cycles; c++) {
			if (advance)
				advance(ctx);
			int64_t c0 = cpu_ns();
			if (cgroup_collector.read(st, t += NS_PER_SEC, &sk, &e)) {
				fprintf(stderr, "bench_cgroup: %s\n", e.msg);
				exit(1);
			}
			batcher_flush(&bt, t);
			spent += cpu_ns() - c0;
		}
		vms = n_cpu / (uint64_t)cycles;
		samples = n_samples / (uint64_t)cycles;
		us[r] = vms ? (double)spent / 1e3 / cycles / (double)vms : 0;
	}
	qsort(us, ROUNDS, sizeof(us[0]), cmp_double);
	printf("%s: %llu VMs read per cycle (%llu readings), CPU per VM per cycle median %.2f us (min %.2f, max %.2f"
	       " over %d rounds of %d cycles)\n", what, (unsigned long long)vms, (unsigned long long)samples,
	       us[ROUNDS / 2], us[0], us[ROUNDS - 1], ROUNDS, cycles);
	batcher_release(&bt);
}

static void advance_fake(void *ctx)
{
	struct ft *t = ctx;
	ft_step(t);
	ft_write_all(t);
}

int main(int argc, char **argv)
{
	char yaml[2048];
	if (argc == 4 && !strcmp(argv[1], "fake")) {
		int n = atoi(argv[2]), cycles = atoi(argv[3]);
		struct ft t;
		/* in RAM (tmpfs) when there is one, as cgroupfs and /proc are */
		ft_create(&t, access("/dev/shm", W_OK) == 0 ? "/dev/shm/tally-bench-cgroup-XXXXXX"
			  : "/tmp/tally-bench-cgroup-XXXXXX", n);
		snprintf(yaml, sizeof(yaml), "root: '%s/cg'\nproc: '%s/proc'\nsys: '%s/sys'\nvm_meters: bill\n", t.dir,
			 t.dir, t.dir);
		void *st = open_collector(yaml);
		char what[128];
		snprintf(what, sizeof(what), "fake cgroup v2 tree, %d VMs (6 files + a tap each), bill, host", n);
		/* BENCH_STILL=1: counters do not move (a profile of read() alone) */
		measure(st, cycles, what, getenv("BENCH_STILL") ? NULL : advance_fake, &t);
		cgroup_collector.free(st);
		ft_destroy(&t);
		return 0;
	}
	if (argc == 7 && !strcmp(argv[1], "tree")) {
		snprintf(yaml, sizeof(yaml), "root: '%s'\nscopes: ['%s']\nversion: '%s'\nvm_meters: %s\nhost: false\n",
			 argv[2], argv[3], argv[4], argv[5]);
		void *st = open_collector(yaml);
		char what[256];
		snprintf(what, sizeof(what), "%s/%s (cgroup v%s), %s", argv[2], argv[3], argv[4], argv[5]);
		measure(st, atoi(argv[6]), what, NULL, NULL);
		cgroup_collector.free(st);
		return 0;
	}
	fprintf(stderr, "usage: bench_cgroup fake N CYCLES\n"
			"       bench_cgroup tree ROOT SCOPES VERSION MODE CYCLES\n");
	return 2;
}
