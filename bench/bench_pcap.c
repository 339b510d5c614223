/*
 * bench_pcap: offline classification with the pcap collector, the figure
 * issue 16 names: packets per second on one core for a capture file of
 * 64-byte frames of VMS VMs (by MAC), with PREFIXES prefixes in each of the
 * internal and peering classes (internet is the rest).
 *
 *   bench_pcap gen DIR PACKETS VMS PREFIXES    write DIR/frames.pcap, DIR/nics.yaml,
 *                                             DIR/classes.yaml (the collector's
 *                                             config) and DIR/networks.lst (the same
 *                                             prefixes for pmacct's networks_file)
 *   bench_pcap run DIR RUNS                   read DIR/frames.pcap RUNS times
 *
 * Frame k is VM i's (a hash of k): even k the router sends to the VM, odd
 * k the VM sends to the router; the remote address is drawn so that about
 * a third of the frames fall in each class. A run is what tallyd does for
 * one capture file: configure, init (the prefix table, the NIC tables) and
 * one read() that counts every frame (libpcap's file reader, decode, MAC
 * lookups, longest-prefix match, counters) and sends the counters to a
 * sink that only counts them. Printed: every run's packets/s over the
 * read (wall clock) and per CPU-second of it, their medians, and the
 * frames counted (every frame counts once: for its VM).
 */
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "pcap_internal.h"
#include "tallytime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

extern const struct collector_ops pcap_collector;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void put32(FILE *f, uint32_t v)
{
	fwrite(&v, 4, 1, f);
}

/* prefixes: internal in 10/8 and 100.64/10, peering in 198.18/15 and
 * 203.0.0.0/8, all /24 to /28, none the same */
static uint32_t pfx_addr[2][100000];
static int pfx_len[2][100000];

static int gen(const char *dir, long packets, long vms, int prefixes)
{
	char path[4096];
	FILE *f;
	if (prefixes > 100000 || vms > 16000000)
		return 2;
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < prefixes; i++) {
			int dup;
			do {
				pfx_len[c][i] = 24 + (int)(rnd() % 5);
				uint32_t base = c == 0 ? (rnd() % 2 ? 0x0a000000u : 0x64400000u)
						       : (rnd() % 2 ? 0xc6120000u : 0xcb000000u);
				uint32_t span = c == 0 ? (base == 0x0a000000u ? 0x00ffffffu : 0x003fffffu)
						       : (base == 0xc6120000u ? 0x0001ffffu : 0x00ffffffu);
				uint32_t mask = ~0u << (32 - pfx_len[c][i]);
				pfx_addr[c][i] = (base | ((uint32_t)rnd() & span)) & mask;
				dup = 0;
				for (int j = 0; j < i && !dup; j++)
					dup = pfx_addr[c][j] == pfx_addr[c][i] && pfx_len[c][j] == pfx_len[c][i];
			} while (dup);
		}
	snprintf(path, sizeof(path), "%s/classes.yaml", dir);
	if (!(f = fopen(path, "w")))
		return 1;
	fprintf(f, "pcap:\n  file: %s/frames.pcap\n  mapping: %s/nics.yaml\n  classes:\n", dir, dir);
	for (int c = 0; c < 2; c++) {
		fprintf(f, "    %s:\n", c ? "peering" : "internal");
		for (int i = 0; i < prefixes; i++)
			fprintf(f, "      - %u.%u.%u.%u/%d\n", pfx_addr[c][i] >> 24, pfx_addr[c][i] >> 16 & 255,
				pfx_addr[c][i] >> 8 & 255, pfx_addr[c][i] & 255, pfx_len[c][i]);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/networks.lst", dir);
	if (!(f = fopen(path, "w")))
		return 1;
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < prefixes; i++)
			fprintf(f, "%d,%u.%u.%u.%u/%d\n", 65001 + c, pfx_addr[c][i] >> 24, pfx_addr[c][i] >> 16 & 255,
				pfx_addr[c][i] >> 8 & 255, pfx_addr[c][i] & 255, pfx_len[c][i]);
	fclose(f);
	snprintf(path, sizeof(path), "%s/nics.yaml", dir);
	if (!(f = fopen(path, "w")))
		return 1;
	for (long i = 0; i < vms; i++)
		fprintf(f, "- {uuid: 00000000-0000-4000-8000-%012lx, mac: '52:54:%02lx:%02lx:%02lx:%02lx'}\n", i,
			i >> 24 & 255, i >> 16 & 255, i >> 8 & 255, i & 255);
	fclose(f);
	snprintf(path, sizeof(path), "%s/frames.pcap", dir);
	if (!(f = fopen(path, "w")))
		return 1;
	put32(f, 0xa1b23c4d);
	uint16_t ver[2] = { 2, 4 };
	fwrite(ver, 2, 2, f);
	put32(f, 0);
	put32(f, 0);
	put32(f, 65535);
	put32(f, 1);
	uint8_t fr[64];
	memset(fr, 0, sizeof(fr));
	for (long k = 0; k < packets; k++) {
		long i = (long)(rnd() % (uint64_t)vms);
		uint8_t vm[6] = { 0x52, 0x54, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
		static const uint8_t router[6] = { 0x02, 0xaa, 0, 0, 0, 1 };
		uint32_t remote;
		int cls = (int)(rnd() % 3);
		if (cls == 2) {
			remote = (uint32_t)rnd();
		} else {
			int j = (int)(rnd() % (uint64_t)prefixes);
			remote = pfx_addr[cls][j] | ((uint32_t)rnd() & ~(~0u << (32 - pfx_len[cls][j])));
		}
		uint32_t local = 0xc0000000u | (uint32_t)(i & 0xffff);
		memcpy(fr, k & 1 ? router : vm, 6);
		memcpy(fr + 6, k & 1 ? vm : router, 6);
		fr[12] = 0x08;
		fr[13] = 0x00;
		uint8_t *ip = fr + 14;
		ip[0] = 0x45;
		ip[2] = 0;
		ip[3] = 50;           /* 64 - 14 */
		ip[8] = 64;
		ip[9] = 17;
		uint32_t s = k & 1 ? local : remote, d = k & 1 ? remote : local;
		for (int b = 0; b < 4; b++) {
			ip[12 + b] = (uint8_t)(s >> (24 - 8 * b));
			ip[16 + b] = (uint8_t)(d >> (24 - 8 * b));
		}
		put32(f, (uint32_t)(1790000000 + k / 1000000));
		put32(f, (uint32_t)(k % 1000000 * 1000));
		put32(f, 64);
		put32(f, 64);
		fwrite(fr, 1, 64, f);
	}
	fclose(f);
	return 0;
}

static uint64_t n_packets_out;
static int count_sample(void *ctx, const char *agent, const struct sample *s)
{
	if (s->meter >= M_NETC_FIRST && s->meter <= M_NETC_LAST && (s->meter - M_NETC_FIRST) % 4 >= 2)
		n_packets_out += s->v.counter;
	return 0;
}
static int count_meta(void *ctx, const char *agent, const struct resource_meta *m) { return 0; }
static int count_event(void *ctx, const char *agent, const struct lifecycle_event *ev) { return 0; }

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int run(const char *dir, int runs)
{
	char path[4096];
	struct tally_err e = { 0 };
	struct cfg_node *root = NULL;
	double rate[64], crate[64];
	snprintf(path, sizeof(path), "%s/classes.yaml", dir);
	if (cfg_load_file(path, &root, &e)) {
		fprintf(stderr, "bench_pcap: %s\n", e.msg);
		return 1;
	}
	if (runs > 64)
		runs = 64;
	uint64_t frames = 0;
	for (int r = 0; r < runs; r++) {
		struct collector_env env = { .agent_id = "bench", .interval_ns = NS_PER_SEC };
		void *st = NULL;
		int64_t t0 = time_mono_ns();
		if (pcap_collector.configure(cfg_get(root, "pcap"), &env, &st, &e) ||
		    pcap_collector.init(st, 0, &e)) {
			fprintf(stderr, "bench_pcap: %s\n", e.msg);
			return 1;
		}
		int64_t t1 = time_mono_ns();
		double c0 = cpu_s();
		struct sink sk = { NULL, count_sample, count_meta, count_event };
		n_packets_out = 0;
		if (pcap_collector.read(st, INT64_MAX, &sk, &e)) {
			fprintf(stderr, "bench_pcap: %s\n", e.msg);
			return 1;
		}
		int64_t t2 = time_mono_ns();
		double cpu = cpu_s() - c0;
		/* each frame counts once for its VM (the router is no VM) */
		frames = n_packets_out;
		rate[r] = (double)frames / ((double)(t2 - t1) / 1e9);
		crate[r] = (double)frames / cpu;
		printf("run %d: %llu frames in %.3f s (cpu %.3f s): %.2f M packets/s; setup %.3f s\n", r + 1,
		       (unsigned long long)frames, (double)(t2 - t1) / 1e9, cpu, rate[r] / 1e6,
		       (double)(t1 - t0) / 1e9);
		pcap_collector.free(st);
	}
	cfg_free(root);
	qsort(rate, (size_t)runs, sizeof(rate[0]), cmp_double);
	qsort(crate, (size_t)runs, sizeof(crate[0]), cmp_double);
	printf("tally_pcap_median_mpps %.2f (min %.2f, max %.2f, %d runs, %llu frames counted)\n",
	       rate[runs / 2] / 1e6, rate[0] / 1e6, rate[runs - 1] / 1e6, runs, (unsigned long long)frames);
	printf("tally_pcap_median_cpu_mpps %.2f (packets per cpu-second; min %.2f, max %.2f)\n", crate[runs / 2] / 1e6,
	       crate[0] / 1e6, crate[runs - 1] / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "gen"))
		return gen(argv[2], atol(argv[3]), atol(argv[4]), atoi(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "run"))
		return run(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: bench_pcap gen DIR PACKETS VMS PREFIXES | run DIR RUNS\n");
	return 2;
}
