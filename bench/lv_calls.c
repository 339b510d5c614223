/*
 * lv_calls: one shape of libvirt stats call, made back to back over one
 * read-only connection for every active domain, so that
 * bench/libvirt_qemu.sh can measure what each shape costs libvirtd and the
 * QEMU processes (the CPU they spend is read around this program; its own
 * is not counted). The shapes are the calls a collector can make:
 *
 *   bulk:G1+G2...   one virConnectGetAllDomainStats(NOWAIT) per round with
 *                   these groups (state cpu-total balloon vcpu interface
 *                   block), for all domains at once
 *   rpcbulk:G1+G2.. the same call over libvirt's protocol on the daemon's
 *                   read-only socket (collectors/libvirt_rpc.h), as the
 *                   collector makes it on a hypervisor on this host
 *   blockstats      virDomainBlockStats per disk (libvirt 9: QMP
 *                   query-blockstats twice, devices and nodes)
 *   blockstatsflags virDomainBlockStatsFlags per disk (the same QMP)
 *   blockinfo       virDomainGetBlockInfo per disk (the above plus
 *                   query-named-block-nodes)
 *   info            virDomainGetInfo per domain (no QEMU)
 *   cpustats        virDomainGetCPUStats(total) per domain (the cgroup)
 *   memstats        virDomainMemoryStats per domain (QEMU's balloon)
 *
 * The domains and their disks are listed once, before the rounds (one
 * bulk call with the block group). Prints "calls N failed F domains D
 * rounds R wall_s W client_cpu_s C": calls is the number of API calls made
 * in the rounds, C this process's CPU in them (the client's share of a
 * collector's cost: encoding, decoding, freeing).
 *
 * SHAPE may be several shapes joined by commas (bulk:state+interface,
 * blockstats): each round makes them one after the other, as one
 * collection cycle would.
 *
 * LV_CALLS_GAP_MS=MS pauses that long between rounds (a collector's
 * cycle: its caches cold again), not counted in wall_s.
 *
 * usage: lv_calls URI SHAPE ROUNDS
 */
#include "libvirt_rpc.h"
#include "tallytime.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_DOMS 1024
#define MAX_DISKS 16

static struct {
	virDomainPtr dom;
	char disk[MAX_DISKS][32];
	int n_disks;
} doms[MAX_DOMS];
static int n_doms;
static struct lvrpc *rpc;   /* rpcbulk: the protocol's connection */
static const char *uri;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* this process's CPU seconds (user + system) */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static void quiet(void *ud, virErrorPtr err)
{
	(void)ud;
	(void)err;
}

static unsigned int group_bits(const char *list)
{
	static const struct { const char *name; unsigned int bit; } g[] = {
		{ "state", VIR_DOMAIN_STATS_STATE }, { "cpu-total", VIR_DOMAIN_STATS_CPU_TOTAL },
		{ "balloon", VIR_DOMAIN_STATS_BALLOON }, { "vcpu", VIR_DOMAIN_STATS_VCPU },
		{ "interface", VIR_DOMAIN_STATS_INTERFACE }, { "block", VIR_DOMAIN_STATS_BLOCK },
	};
	unsigned int bits = 0;
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
		size_t i;
		for (i = 0; i < sizeof(g) / sizeof(g[0]); i++)
			if (!strcmp(t, g[i].name))
				break;
		if (i == sizeof(g) / sizeof(g[0])) {
			fprintf(stderr, "lv_calls: unknown stats group '%s'\n", t);
			exit(2);
		}
		bits |= g[i].bit;
	}
	return bits;
}

/* The active domains and their disks' targets, from one bulk call. */
static int list_domains(virConnectPtr c)
{
	virDomainStatsRecordPtr *recs = NULL;
	int n = virConnectGetAllDomainStats(c, VIR_DOMAIN_STATS_BLOCK, &recs,
					    VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
	if (n < 0)
		return -1;
	for (int i = 0; i < n && n_doms < MAX_DOMS; i++) {
		doms[n_doms].dom = recs[i]->dom;
		virDomainRef(recs[i]->dom);
		for (int p = 0; p < recs[i]->nparams; p++) {
			const virTypedParameter *tp = &recs[i]->params[p];
			int k;
			char rest[16];
			if (tp->type == VIR_TYPED_PARAM_STRING && sscanf(tp->field, "block.%d.%15s", &k, rest) == 2 &&
			    !strcmp(rest, "name") && doms[n_doms].n_disks < MAX_DISKS)
				snprintf(doms[n_doms].disk[doms[n_doms].n_disks++], 32, "%s", tp->value.s);
		}
		n_doms++;
	}
	virDomainStatsRecordListFree(recs);
	return 0;
}

/* A whole number from lo to hi, or exit 2 naming what was given. */
static long number(const char *what, const char *text, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (end == text || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "lv_calls: %s: expected a whole number from %ld to %ld (got '%s')\n", what, lo, hi,
			text);
		exit(2);
	}
	return v;
}

/* One round of shape `shape` over every domain; counts calls and failures.
 * Returns 0, or 2 for a shape it does not know. */
static int run_shape(virConnectPtr c, const char *shape, long *calls, long *failed)
{
	if (!strncmp(shape, "rpcbulk:", 8)) {
		struct tally_err e = { 0 };
		struct lvrpc_answer a;
		char path[108];
		int code;
		if (!rpc && (lvrpc_socket_for(uri, NULL, path, sizeof(path)) ||
			     lvrpc_open(&rpc, path, uri, 5 * NS_PER_SEC, &e))) {
			fprintf(stderr, "lv_calls: cannot speak libvirt's protocol for %s: %s\n", uri, e.msg);
			exit(1);
		}
		int rc = lvrpc_all_stats(rpc, group_bits(shape + 8),
					 VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT,
					 30 * NS_PER_SEC, &a, &code, &e);
		(*calls)++;
		*failed += rc != 0;
		if (rc == 0)
			lvrpc_answer_free(&a);
		return 0;
	}
	if (!strncmp(shape, "bulk:", 5)) {
		virDomainStatsRecordPtr *recs = NULL;
		int n = virConnectGetAllDomainStats(c, group_bits(shape + 5), &recs,
						    VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE |
						    VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
		(*calls)++;
		*failed += n < 0;
		if (n >= 0)
			virDomainStatsRecordListFree(recs);
		return 0;
	}
	for (int i = 0; i < n_doms; i++) {
		virDomainPtr d = doms[i].dom;
		int rc = 0;
		if (!strcmp(shape, "info")) {
			virDomainInfo info;
			rc = virDomainGetInfo(d, &info);
			(*calls)++;
		} else if (!strcmp(shape, "cpustats")) {
			virTypedParameter p[4];
			rc = virDomainGetCPUStats(d, p, 4, -1, 1, 0) < 0 ? -1 : 0;
			(*calls)++;
		} else if (!strcmp(shape, "memstats")) {
			virDomainMemoryStatStruct ms[VIR_DOMAIN_MEMORY_STAT_NR];
			rc = virDomainMemoryStats(d, ms, VIR_DOMAIN_MEMORY_STAT_NR, 0) < 0 ? -1 : 0;
			(*calls)++;
		} else {
			for (int k = 0; k < doms[i].n_disks; k++) {
				const char *t = doms[i].disk[k];
				if (!strcmp(shape, "blockstats")) {
					virDomainBlockStatsStruct bs;
					rc |= virDomainBlockStats(d, t, &bs, sizeof(bs));
				} else if (!strcmp(shape, "blockstatsflags")) {
					virTypedParameter p[16];
					int np = 16;
					rc |= virDomainBlockStatsFlags(d, t, p, &np, 0);
				} else if (!strcmp(shape, "blockinfo")) {
					virDomainBlockInfo bi;
					rc |= virDomainGetBlockInfo(d, t, &bi, 0);
				} else {
					fprintf(stderr, "lv_calls: unknown shape '%s'\n", shape);
					return 2;
				}
				(*calls)++;
			}
		}
		*failed += rc != 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: lv_calls URI SHAPE ROUNDS\n");
		return 2;
	}
	const char *shape = argv[2];
	long rounds = number("ROUNDS", argv[3], 1, 100000000);
	const char *gap = getenv("LV_CALLS_GAP_MS");
	long gap_ms = gap ? number("LV_CALLS_GAP_MS", gap, 0, 3600000) : 0;
	virSetErrorFunc(NULL, quiet);
	uri = argv[1];
	virConnectPtr c = virConnectOpenReadOnly(argv[1]);
	if (!c) {
		fprintf(stderr, "lv_calls: cannot connect to %s\n", argv[1]);
		return 1;
	}
	if (list_domains(c) || n_doms == 0) {
		fprintf(stderr, "lv_calls: no active domain on %s\n", argv[1]);
		return 1;
	}
	long calls = 0, failed = 0;
	double t0 = now_s(), c0 = cpu_s();
	double paused = 0;
	for (long r = 0; r < rounds; r++) {
		char buf[256], *save = NULL;
		if (gap_ms > 0 && r) {
			double p0 = now_s();
			struct timespec ts = { .tv_sec = gap_ms / 1000, .tv_nsec = gap_ms % 1000 * 1000000L };
			nanosleep(&ts, NULL);
			paused += now_s() - p0;
		}
		snprintf(buf, sizeof(buf), "%s", shape);
		for (char *one = strtok_r(buf, ",", &save); one; one = strtok_r(NULL, ",", &save))
			if (run_shape(c, one, &calls, &failed))
				return 2;
	}
	double w = now_s() - t0 - paused, cpu = cpu_s() - c0;
	printf("calls %ld failed %ld domains %d rounds %ld wall_s %.3f client_cpu_s %.4f\n", calls, failed, n_doms,
	       rounds, w, cpu);
	for (int i = 0; i < n_doms; i++)
		virDomainFree(doms[i].dom);
	virConnectClose(c);
	return failed ? 1 : 0;
}
