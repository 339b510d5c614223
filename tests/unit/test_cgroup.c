/*
 * test_cgroup.c: the cgroup/procfs collector.
 *
 * Parsers: every kernel file format on fixtures (tests/fixtures/cgroup/),
 * the expected values read off the fixture by hand, with the odd shapes the
 * kernel really writes (io.stat lines without some keys, iocost's decimal
 * fields, cpu.pressure without "full" before 5.13, a 32-bit counter that
 * wraps in /proc/net/dev) and malformed files, which must be refused with
 * line, column and key.
 *
 * The collector: on a fake cgroup v2 tree, /proc and /sys built by the test
 * (cgroup_tree.h) whose counters the test sets, so every expected value is
 * the test's own number: each sample of a read, then 1000 VMs through the
 * aggregator into a ledger over cycles with a VM starting, one stopping, a
 * disk appearing and a tap's 32-bit counter wrapping (exact usage of every
 * VM); faults (a malformed file, a permission error, a cgroup gone between
 * the listing and the read: one log line each, the others read); and this
 * machine's real /proc, bracketed by two independent reads.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "cgroup_internal.h"
#include "cgroup_tree.h"
#include "collector.h"
#include "err.h"
#include "log.h"
#include "prom.h"
#include "state.h"
#include "tallytime.h"
#include "testutil.h"

extern const struct collector_ops cgroup_collector;

#define FIX "tests/fixtures/cgroup/"

static char fbuf[65536];

/* The fixture's bytes in fbuf; its length. */
static size_t fixture(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), FIX "%s", name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	size_t n = fread(fbuf, 1, sizeof(fbuf), f);
	ck_assert(n < sizeof(fbuf));
	fclose(f);
	return n;
}

START_TEST(test_cpu_stat)
{
	static const char *const keys[] = { "usage_usec", "user_usec", "system_usec", "missing" };
	uint64_t v[4] = { 0 };
	uint32_t found;
	struct tally_err e = { 0 };
	size_t n = fixture("cpu.stat");
	ck_assert_int_eq(cg_parse_keyed(fbuf, n, 0, keys, 4, v, &found, &e), 0);
	ck_assert_uint_eq(found, 0x7);
	ck_assert_uint_eq(v[0], 8123456789ULL);
	ck_assert_uint_eq(v[1], 6000000000ULL);
	ck_assert_uint_eq(v[2], 2123456789ULL);
}
END_TEST

START_TEST(test_memory_stat)
{
	static const char *const keys[] = { "anon", "file" };
	uint64_t v[2];
	uint32_t found;
	struct tally_err e = { 0 };
	size_t n = fixture("memory.stat");
	ck_assert_int_eq(cg_parse_keyed(fbuf, n, 0, keys, 2, v, &found, &e), 0);
	ck_assert_uint_eq(found, 3);
	ck_assert_uint_eq(v[0], 104857600);  /* 100 MiB */
	ck_assert_uint_eq(v[1], 20971520);   /* 20 MiB */
}
END_TEST

START_TEST(test_meminfo)
{
	static const char *const keys[] = { "MemTotal", "MemAvailable", "HugePages_Total" };
	uint64_t v[3];
	uint32_t found;
	struct tally_err e = { 0 };
	size_t n = fixture("proc.meminfo");
	ck_assert_int_eq(cg_parse_keyed(fbuf, n, CG_KEYED_MEMINFO, keys, 3, v, &found, &e), 0);
	ck_assert_uint_eq(found, 7);
	ck_assert_uint_eq(v[0], 24683792ULL * 1024);
	ck_assert_uint_eq(v[1], 23878712ULL * 1024);
	ck_assert_uint_eq(v[2], 0);          /* a count, no kB */
}
END_TEST

/* Each malformed keyed file: the code, and the message's place and key. */
START_TEST(test_keyed_refused)
{
	static const char *const keys[] = { "usage_usec", "user_usec" };
	static const struct { const char *file; int rc; const char *msg; } t[] = {
		{ "bad.cpu.stat", -EINVAL, "line 1 col 12: key 'usage_usec': expected an unsigned integer" },
		{ "bad.cpu.stat.range", -ERANGE, "line 1 col 12: key 'usage_usec': number past 2^64 - 1" },
		{ "bad.cpu.stat.twice", -EINVAL, "line 2 col 1: key 'usage_usec' given twice" },
		{ "bad.cpu.stat.novalue", -EINVAL, "line 1 col 11: key 'usage_usec' has no value" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t v[2];
		uint32_t found;
		struct tally_err e = { 0 };
		size_t n = fixture(t[i].file);
		ck_assert_int_eq(cg_parse_keyed(fbuf, n, 0, keys, 2, v, &found, &e), t[i].rc);
		ck_assert_str_eq(e.msg, t[i].msg);
	}
	/* "12x3" is a number followed by junk: refused, not read as 12 */
	uint64_t v[2];
	uint32_t found;
	struct tally_err e = { 0 };
	ck_assert_int_eq(cg_parse_keyed("user_usec 5 us\n", 15, 0, keys, 2, v, &found, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 13: key 'user_usec': unexpected 'us' after the value");
	/* a key we do not read may say anything */
	ck_assert_int_eq(cg_parse_keyed("weird 1.5x\nusage_usec 7\n", 24, 0, keys, 2, v, &found, &e), 0);
	ck_assert_uint_eq(v[0], 7);
	/* 2^64 - 1 is the last value that fits */
	ck_assert_int_eq(cg_parse_keyed("usage_usec 18446744073709551615\n", 32, 0, keys, 2, v, &found, &e), 0);
	ck_assert_uint_eq(v[0], UINT64_MAX);
}
END_TEST

START_TEST(test_u64)
{
	uint64_t v;
	struct tally_err e = { 0 };
	ck_assert_int_eq(cg_parse_u64("123456789012\n", 13, &v, &e), 0);
	ck_assert_uint_eq(v, 123456789012ULL);
	ck_assert_int_eq(cg_parse_u64("5", 1, &v, &e), 0);
	ck_assert_uint_eq(v, 5);
	ck_assert_int_eq(cg_parse_u64("", 0, &v, &e), -EINVAL);
	ck_assert_int_eq(cg_parse_u64("12 13\n", 6, &v, &e), -EINVAL);
	ck_assert_int_eq(cg_parse_u64("-1\n", 3, &v, &e), -EINVAL);
}
END_TEST

START_TEST(test_psi)
{
	struct cg_psi p;
	struct tally_err e = { 0 };
	size_t n = fixture("cpu.pressure");
	ck_assert_int_eq(cg_parse_psi(fbuf, n, &p, &e), 0);
	ck_assert(p.have_some && p.have_full);
	ck_assert_uint_eq(p.some_us, 1234567);
	ck_assert_uint_eq(p.full_us, 7654);
	n = fixture("io.pressure");
	ck_assert_int_eq(cg_parse_psi(fbuf, n, &p, &e), 0);
	ck_assert_uint_eq(p.some_us, 300000);
	ck_assert_uint_eq(p.full_us, 200000);
	/* Linux 5.10's cpu.pressure: no "full" line */
	n = fixture("cpu.pressure.5.10");
	ck_assert_int_eq(cg_parse_psi(fbuf, n, &p, &e), 0);
	ck_assert(p.have_some && !p.have_full);
	ck_assert_uint_eq(p.some_us, 42);
	n = fixture("bad.pressure");
	ck_assert_int_eq(cg_parse_psi(fbuf, n, &p, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 39: key 'total' missing from the 'some' line");
	ck_assert_int_eq(cg_parse_psi("half total=1\n", 13, &p, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 1: expected 'some' or 'full', got 'half'");
	ck_assert_int_eq(cg_parse_psi("full total=1\n", 13, &p, &e), -EINVAL); /* no "some" */
}
END_TEST

START_TEST(test_io_stat)
{
	struct cg_io_dev d[4];
	int n, skipped;
	struct tally_err e = { 0 };
	size_t len = fixture("io.stat");
	ck_assert_int_eq(cg_parse_io_stat(fbuf, len, d, 4, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(skipped, 0);
	ck_assert_uint_eq(d[0].major, 254);
	ck_assert_uint_eq(d[0].minor, 0);
	ck_assert_uint_eq(d[0].have, CG_IO_RBYTES | CG_IO_WBYTES | CG_IO_RIOS | CG_IO_WIOS);
	ck_assert_uint_eq(d[0].rbytes, 1048576);
	ck_assert_uint_eq(d[0].wbytes, 2097152);
	ck_assert_uint_eq(d[0].rios, 256);
	ck_assert_uint_eq(d[0].wios, 512);
	/* a line without wbytes/wios: those are absent, not zero */
	ck_assert_uint_eq(d[1].major, 8);
	ck_assert_uint_eq(d[1].minor, 16);
	ck_assert_uint_eq(d[1].have, CG_IO_RBYTES | CG_IO_RIOS);
	ck_assert_uint_eq(d[1].rbytes, 4096);
	/* iocost's cost.vrate=100.00 is not read, and not refused */
	ck_assert_uint_eq(d[2].wbytes, 1024);
	/* more devices than room: counted */
	ck_assert_int_eq(cg_parse_io_stat(fbuf, len, d, 2, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(skipped, 1);
	len = fixture("bad.io.stat");
	ck_assert_int_eq(cg_parse_io_stat(fbuf, len, d, 4, &n, &skipped, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 2 col 1: expected a device MAJ:MIN, got 'sda'");
	ck_assert_int_eq(cg_parse_io_stat("8:0 rbytes=x\n", 13, d, 4, &n, &skipped, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 12: key 'rbytes': expected an unsigned integer");
	ck_assert_int_eq(cg_parse_io_stat("8:0 rbytes\n", 11, d, 4, &n, &skipped, &e), -EINVAL);
	/* an empty io.stat (no I/O yet) is no device */
	ck_assert_int_eq(cg_parse_io_stat("", 0, d, 4, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_blkio_v1)
{
	struct cg_io_dev d[4];
	int n = 0, skipped = 0;
	struct tally_err e = { 0 };
	size_t len = fixture("blkio.throttle.io_service_bytes_recursive");
	ck_assert_int_eq(cg_parse_blkio_v1(fbuf, len, true, d, 4, &n, &skipped, &e), 0);
	len = fixture("blkio.throttle.io_serviced_recursive");
	ck_assert_int_eq(cg_parse_blkio_v1(fbuf, len, false, d, 4, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(d[0].major, 254);
	ck_assert_uint_eq(d[0].rbytes, 1048576);
	ck_assert_uint_eq(d[0].wbytes, 2097152);
	ck_assert_uint_eq(d[0].rios, 256);
	ck_assert_uint_eq(d[0].wios, 512);
	ck_assert_uint_eq(d[0].have, 0xf);
	ck_assert_uint_eq(d[1].major, 8);
	ck_assert_uint_eq(d[1].rbytes, 4096);
	ck_assert_uint_eq(d[1].rios, 1);
	/* no I/O at all: "Total 0" alone */
	n = 0;
	len = fixture("blkio.empty");
	ck_assert_int_eq(cg_parse_blkio_v1(fbuf, len, true, d, 4, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(cg_parse_blkio_v1("8:0 Peek 3\n", 11, true, d, 4, &n, &skipped, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 5: unknown operation 'Peek' (Read, Write, Sync, Async, Discard, Total)");
}
END_TEST

START_TEST(test_proc_stat)
{
	struct cg_host_cpu c;
	struct tally_err e = { 0 };
	size_t n = fixture("proc.stat");
	ck_assert_int_eq(cg_parse_proc_stat(fbuf, n, &c, &e), 0);
	ck_assert_int_eq(c.fields, 10);
	ck_assert_uint_eq(c.user, 23384);
	ck_assert_uint_eq(c.nice, 52);
	ck_assert_uint_eq(c.system, 16414);
	ck_assert_uint_eq(c.idle, 87863);
	ck_assert_uint_eq(c.iowait, 3095);
	ck_assert_uint_eq(c.irq, 7);
	ck_assert_uint_eq(c.softirq, 264);
	ck_assert_uint_eq(c.steal, 40);
	ck_assert_int_eq(cg_parse_proc_stat("cpu0 1 2 3 4\n", 13, &c, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 2 col 1: key 'cpu': no 'cpu' line");
	ck_assert_int_eq(cg_parse_proc_stat("cpu  1 2 x 4\n", 13, &c, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 10: key 'system': expected an unsigned integer");
}
END_TEST

START_TEST(test_diskstats)
{
	struct cg_disk d[8];
	int n, skipped;
	struct tally_err e = { 0 };
	size_t len = fixture("proc.diskstats");
	ck_assert_int_eq(cg_parse_diskstats(fbuf, len, d, 8, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(d[1].name, "vda");
	ck_assert_uint_eq(d[1].major, 254);
	ck_assert_uint_eq(d[1].rd_ios, 75879);
	ck_assert_uint_eq(d[1].rd_sectors, 4746866);
	ck_assert_uint_eq(d[1].wr_ios, 857214);
	ck_assert_uint_eq(d[1].wr_sectors, 97388464);
	/* a pre-4.18 line: 11 counters */
	ck_assert_str_eq(d[4].name, "sda");
	ck_assert_uint_eq(d[4].wr_sectors, 160);
	ck_assert_int_eq(cg_parse_diskstats(" 8 0 sda 1 2 3\n", 15, d, 8, &n, &skipped, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 15: device 'sda': 3 counters, at least 7 expected (reads .. sectors_written)");
}
END_TEST

START_TEST(test_net_dev)
{
	struct cg_netif f[8];
	int n, skipped;
	struct tally_err e = { 0 };
	size_t len = fixture("proc.net.dev");
	ck_assert_int_eq(cg_parse_net_dev(fbuf, len, f, 8, &n, &skipped, &e), 0);
	ck_assert_int_eq(n, 4);
	ck_assert_str_eq(f[1].name, "eth0");
	ck_assert_uint_eq(f[1].rx_bytes, 228844621);
	ck_assert_uint_eq(f[1].rx_packets, 4610);
	ck_assert_uint_eq(f[1].tx_bytes, 182873);
	ck_assert_uint_eq(f[1].tx_packets, 2512);
	/* old kernels: no blank between the colon and a wide number */
	ck_assert_str_eq(f[2].name, "vnet12");
	ck_assert_uint_eq(f[2].rx_bytes, 1234567890123ULL);
	ck_assert_uint_eq(f[2].tx_bytes, 55);
	ck_assert_str_eq(f[3].name, "tvmtap1");
	ck_assert_uint_eq(f[3].tx_packets, 20);
	len = fixture("bad.net.dev");
	ck_assert_int_eq(cg_parse_net_dev(fbuf, len, f, 8, &n, &skipped, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 3 col 14: interface 'eth0': 3 counters, 16 expected");
	ck_assert_int_eq(cg_parse_net_dev("eth0: 1\n", 8, f, 8, &n, &skipped, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "line 1 col 1: expected the header of /proc/net/dev (with '|')");
}
END_TEST

/* eth0's rx bytes: 228844621, then 4294967000, then 1000 on a 32-bit
 * counter: the second step wrapped at 2^32, so 2^32 - 4294967000 + 1000 =
 * 1296 bytes came in, and the extended counter reads 2^32 + 1000. */
START_TEST(test_net_dev_wrap32)
{
	static const char *const files[] = { "proc.net.dev", "proc.net.dev.wrapped", "proc.net.dev.wrapped2" };
	const uint64_t want[] = { 228844621ULL, 4294967000ULL, 4294967296ULL + 1000 };
	struct cg_ext x = { 0 };
	for (int i = 0; i < 3; i++) {
		struct cg_netif f[8];
		int n, skipped;
		struct tally_err e = { 0 };
		size_t len = fixture(files[i]);
		ck_assert_int_eq(cg_parse_net_dev(fbuf, len, f, 8, &n, &skipped, &e), 0);
		int k = 0;
		while (k < n && strcmp(f[k].name, "eth0"))
			k++;
		ck_assert_int_lt(k, n);
		ck_assert_uint_eq(cg_counter_extend(&x, f[k].rx_bytes, true), want[i]);
	}
	ck_assert_uint_eq(want[2] - want[1], 1296);
	/* the interface was replaced (another ifindex): a new life, not a wrap */
	ck_assert_uint_eq(cg_counter_extend(&x, 10, false), 10);
	/* a 64-bit counter going down is never a 32-bit wrap */
	struct cg_ext y = { 0 };
	ck_assert_uint_eq(cg_counter_extend(&y, 5000000000ULL, true), 5000000000ULL);
	ck_assert_uint_eq(cg_counter_extend(&y, 7, true), 7);
}
END_TEST

START_TEST(test_qemu_libvirt9)
{
	struct cg_qemu q;
	struct tally_err e = { 0 };
	size_t n = fixture("qemu-libvirt9.cmdline");
	ck_assert_int_eq(cg_parse_qemu_cmdline(fbuf, n, &q, &e), 0);
	ck_assert(q.is_qemu);
	ck_assert_str_eq(q.uuid, "7a11e100-0000-4000-8000-000000000001");
	ck_assert_str_eq(q.name, "tally-vm1");
	ck_assert_uint_eq(q.vcpus, 1);
	ck_assert_uint_eq(q.memory_bytes, 128ULL << 20);
	ck_assert_int_eq(q.n_macs, 1);
	ck_assert_str_eq(q.macs[0], "52:54:00:7a:12:01");
	ck_assert_int_eq(q.n_ifnames, 0);     /* libvirt passes the tap as an fd */
}
END_TEST

START_TEST(test_qemu_legacy)
{
	struct cg_qemu q;
	struct tally_err e = { 0 };
	size_t n = fixture("qemu-legacy.cmdline");
	ck_assert_int_eq(cg_parse_qemu_cmdline(fbuf, n, &q, &e), 0);
	ck_assert_str_eq(q.uuid, "0b5d9e6c-1f0a-4d7e-9c3b-2a1f0e9d8c7b");
	ck_assert_str_eq(q.name, "web-7");
	ck_assert_uint_eq(q.vcpus, 4);
	ck_assert_uint_eq(q.memory_bytes, 2ULL << 30);
	ck_assert_int_eq(q.n_macs, 2);
	ck_assert_str_eq(q.macs[0], "bc:24:11:aa:bb:cc");   /* lower-cased */
	ck_assert_str_eq(q.macs[1], "bc:24:11:00:00:01");
	ck_assert_int_eq(q.n_ifnames, 2);
	ck_assert_str_eq(q.ifnames[0], "tap107i0");
	ck_assert_str_eq(q.ifnames[1], "tap107i1");
	n = fixture("firecracker.cmdline");
	ck_assert_int_eq(cg_parse_qemu_cmdline(fbuf, n, &q, &e), 0);
	ck_assert(!q.is_qemu);
	ck_assert_str_eq(q.uuid, "");
	n = fixture("qemu-baduuid.cmdline");
	ck_assert_int_eq(cg_parse_qemu_cmdline(fbuf, n, &q, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "arg 3: key '-uuid': 'not-a-uuid' is not a UUID");
	/* a command line cut short: "-uuid" as the last word is nothing */
	ck_assert_int_eq(cg_parse_qemu_cmdline("qemu\0-uuid", 10, &q, &e), 0);
	ck_assert_str_eq(q.uuid, "");
}
END_TEST

START_TEST(test_small_files)
{
	char name[16];
	size_t n = fixture("fdinfo.tap");
	ck_assert_int_eq(cg_parse_fdinfo_iff(fbuf, n, name, sizeof(name)), 0);
	ck_assert_str_eq(name, "vnet12");
	n = fixture("fdinfo.file");
	ck_assert_int_eq(cg_parse_fdinfo_iff(fbuf, n, name, sizeof(name)), -ENOENT);
	int pid;
	struct tally_err e = { 0 };
	n = fixture("cgroup.procs");
	ck_assert_int_eq(cg_parse_first_pid(fbuf, n, &pid, &e), 0);
	ck_assert_int_eq(pid, 4242);
	ck_assert_int_eq(cg_parse_first_pid("", 0, &pid, &e), -ENOENT);
	ck_assert_int_eq(cg_parse_first_pid("0\n", 2, &pid, &e), -EINVAL);
	bool pop;
	n = fixture("cgroup.events");
	ck_assert_int_eq(cg_parse_events(fbuf, n, &pop, &e), 0);
	ck_assert(pop);
	ck_assert_int_eq(cg_parse_events("populated 0\n", 12, &pop, &e), 0);
	ck_assert(!pop);
	ck_assert_int_eq(cg_parse_events("populated 2\n", 12, &pop, &e), -EINVAL);
	char u[37];
	ck_assert(cg_find_uuid("kata-3F1E2D4C-0000-4000-8000-00000000000A.scope", u));
	ck_assert_str_eq(u, "3f1e2d4c-0000-4000-8000-00000000000a");
	ck_assert(!cg_find_uuid("machine-qemu\\x2d1\\x2dvm.scope", u));
	ck_assert(!cg_find_uuid("a3f1e2d4c-0000-4000-8000-00000000000a", u)); /* glued to hex: not a UUID */
	uint8_t m[6];
	ck_assert(cg_parse_mac("FE:54:00:7a:12:01", m));
	ck_assert_uint_eq(m[0], 0xfe);
	ck_assert_uint_eq(m[5], 0x01);
	ck_assert(!cg_parse_mac("fe:54:00:7a:12", m));
	ck_assert(!cg_parse_mac("fe:54:00:7a:12:01:02", m));
}
END_TEST


/* ---- the collector on a fake tree ---- */

struct rec {
	struct sample *s;
	int n, cap;
	struct resource_meta m[64];
	int nm;
	struct lifecycle_event ev[64];
	int nev;
};

static int rec_sample(void *ctx, const char *agent, const struct sample *s)
{
	struct rec *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->s = realloc(r->s, (size_t)r->cap * sizeof(*r->s));
		ck_assert_ptr_nonnull(r->s);
	}
	r->s[r->n++] = *s;
	return 0;
}
static int rec_meta(void *ctx, const char *agent, const struct resource_meta *m)
{
	struct rec *r = ctx;
	ck_assert_int_lt(r->nm, 64);
	r->m[r->nm++] = *m;
	return 0;
}
static int rec_event(void *ctx, const char *agent, const struct lifecycle_event *ev)
{
	struct rec *r = ctx;
	ck_assert_int_lt(r->nev, 64);
	r->ev[r->nev++] = *ev;
	return 0;
}

static const struct sample *find(const struct rec *r, const char *res, int meter, const char *dev)
{
	const struct sample *hit = NULL;
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->s[i].resource, res) && r->s[i].meter == meter && !strcmp(r->s[i].device, dev)) {
			ck_assert_msg(!hit, "%s %s '%s' sent twice in one read", res, meter_table[meter].name, dev);
			hit = &r->s[i];
		}
	return hit;
}

static uint64_t counter(const struct rec *r, const char *res, int meter, const char *dev)
{
	const struct sample *s = find(r, res, meter, dev);
	ck_assert_msg(s != NULL, "no %s '%s' of %s", meter_table[meter].name, dev, res);
	ck_assert_int_eq(s->kind, SAMPLE_CUMULATIVE);
	return s->v.counter;
}

static double gauge(const struct rec *r, const char *res, int meter)
{
	const struct sample *s = find(r, res, meter, "");
	ck_assert_msg(s != NULL, "no %s of %s", meter_table[meter].name, res);
	ck_assert_int_eq(s->kind, SAMPLE_GAUGE);
	return s->v.gauge;
}

/* The collector configured on tree t (extra: more YAML keys). */
static void *open_on(const struct ft *t, const char *extra, bool with_libvirt)
{
	char yaml[2048];
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "hv1", .interval_ns = 10 * NS_PER_SEC, .with_libvirt = with_libvirt };
	void *st = NULL;
	snprintf(yaml, sizeof(yaml), "root: '%s/cg'\nproc: '%s/proc'\nsys: '%s/sys'\n%s", t->dir, t->dir, t->dir,
		 extra ? extra : "");
	ck_assert_int_eq(cfg_load_string("cg.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_msg(cgroup_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_msg(cgroup_collector.init(st, 0, &e) == 0, "%s", e.msg);
	return st;
}

static void read_into(void *st, struct rec *r, int64_t t)
{
	struct tally_err e = { 0 };
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	r->n = r->nm = r->nev = 0;
	ck_assert_msg(cgroup_collector.read(st, t, &sk, &e) == 0, "%s", e.msg);
}

#define T0 (1790812860LL * NS_PER_SEC)   /* 2026-10-01T00:01:00Z */

START_TEST(test_tree_read)
{
	struct ft t;
	struct rec r = { 0 };
	char map[600], extra[700];
	ft_create(&t, "/tmp/tally-cgtree-XXXXXX", 3);
	snprintf(map, sizeof(map), "%s/mapping.yaml", t.dir);
	ft_printf(map, "- name: 'vm1'\n  tenant: acme\n  flavor: m1.small\n  labels: {tier: gold}\n");
	snprintf(extra, sizeof(extra), "mapping: '%s'\n", map);
	void *st = open_on(&t, extra, false);
	read_into(st, &r, T0);
	const char *u1 = "7a11e100-0000-4000-8000-000000000001";
	/* VM 1 as ft_vm_init wrote it */
	ck_assert_uint_eq(counter(&r, u1, M_CPU, ""), 2000000ULL * 1000);          /* usage_usec x 1000 */
	ck_assert(gauge(&r, u1, M_MEMORY_RESIDENT) == (double)((100 << 20) + 4096)); /* anon + file */
	ck_assert_uint_eq(counter(&r, u1, M_DISK_READ_BYTES, "254:0"), 4096);
	ck_assert_uint_eq(counter(&r, u1, M_DISK_WRITE_BYTES, "254:0"), 8192);
	ck_assert_uint_eq(counter(&r, u1, M_DISK_READ_REQUESTS, "254:0"), 1);
	ck_assert_uint_eq(counter(&r, u1, M_DISK_WRITE_REQUESTS, "254:0"), 2);
	ck_assert_uint_eq(counter(&r, u1, M_PSI_CPU_SOME, ""), 10 * 1000);          /* us -> ns */
	ck_assert_uint_eq(counter(&r, u1, M_PSI_IO_FULL, ""), 1 * 1000);
	/* the tap's rx (what the guest sent) is network.outgoing, by the guest's MAC */
	ck_assert_uint_eq(counter(&r, u1, M_NET_OUT_BYTES, "52:54:00:00:00:01"), 1000);
	ck_assert_uint_eq(counter(&r, u1, M_NET_OUT_PACKETS, "52:54:00:00:00:01"), 1);
	ck_assert_uint_eq(counter(&r, u1, M_NET_IN_BYTES, "52:54:00:00:00:01"), 2000);
	ck_assert_uint_eq(counter(&r, u1, M_NET_IN_PACKETS, "52:54:00:00:00:01"), 2);
	ck_assert(gauge(&r, u1, M_INSTANCE) == 1);
	ck_assert(gauge(&r, u1, M_VCPUS) == 2);                                     /* -smp 2 */
	ck_assert(gauge(&r, u1, M_MEMORY) == 1024.0 * 1048576);                    /* -m 1024 */
	for (int i = 0; i < r.n; i++) {
		ck_assert_int_eq(r.s[i].origin_ns, 0);                              /* all baselines */
		ck_assert_int_eq(r.s[i].flags, 0);
		ck_assert_int_eq(r.s[i].time_ns, T0);
	}
	ck_assert_int_eq(r.nev, 0);
	/* metadata: the mapping's tenant for vm1, none for the others */
	ck_assert_int_eq(r.nm, 4);  /* three VMs and the host */
	int seen = 0;
	for (int i = 0; i < r.nm; i++) {
		if (!strcmp(r.m[i].resource, u1)) {
			ck_assert_str_eq(r.m[i].type, "instance");
			ck_assert_str_eq(r.m[i].name, "vm1");
			ck_assert_str_eq(r.m[i].tenant, "acme");
			ck_assert_str_eq(r.m[i].flavor, "m1.small");
			ck_assert_str_eq(r.m[i].labels, "source=mapping,tier=gold");
			seen |= 1;
		} else if (!strcmp(r.m[i].resource, "7a11e100-0000-4000-8000-000000000002")) {
			ck_assert_str_eq(r.m[i].tenant, "");
			ck_assert_str_eq(r.m[i].labels, "source=cgroup");
			seen |= 2;
		} else if (!strcmp(r.m[i].resource, "hv1")) {
			ck_assert_str_eq(r.m[i].type, "host");
			seen |= 4;
		}
	}
	ck_assert_int_eq(seen, 7);
	/* the host: user + nice + system (+ irq + softirq) ticks of 10 ms */
	ck_assert_uint_eq(counter(&r, "hv1", M_HOST_CPU, ""), (23384ULL + 16414) * 10000000ULL);
	ck_assert_uint_eq(counter(&r, "hv1", M_HOST_CPU_IDLE, ""), (87863ULL + 3095) * 10000000ULL);
	ck_assert(gauge(&r, "hv1", M_HOST_MEMORY) == 16384000.0 * 1024);
	ck_assert(gauge(&r, "hv1", M_HOST_MEMORY_AVAILABLE) == 12288000.0 * 1024);
	ck_assert_uint_eq(counter(&r, "hv1", M_HOST_DISK_READ_BYTES, "vda"), 800 * 512);
	ck_assert_uint_eq(counter(&r, "hv1", M_HOST_DISK_WRITE_REQUESTS, "vda"), 200);
	ck_assert_ptr_null(find(&r, "hv1", M_HOST_DISK_READ_BYTES, "loop0"));
	ck_assert_uint_eq(counter(&r, "hv1", M_HOST_NET_IN_BYTES, "eth0"), 228844621);
	ck_assert_uint_eq(counter(&r, "hv1", M_HOST_NET_OUT_BYTES, "eth0"), 182873);
	ck_assert_ptr_null(find(&r, "hv1", M_HOST_NET_IN_BYTES, "lo"));
	ck_assert_ptr_null(find(&r, "hv1", M_HOST_NET_IN_BYTES, "vnet1"));          /* a VM's, not the host's */
	ck_assert_uint_eq(counter(&r, "hv1", M_PSI_CPU_SOME, ""), 1000 * 1000);
	ck_assert_uint_eq(counter(&r, "hv1", M_PSI_MEMORY_FULL, ""), 200 * 1000);
	cgroup_collector.free(st);

	/* beside libvirt: cpu and the taps as checks only, no metadata, no
	 * memory, disk or allocation (libvirt bills those), PSI as usual */
	st = open_on(&t, NULL, true);
	read_into(st, &r, T0);
	const struct sample *c = find(&r, u1, M_CPU, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->flags, SAMPLE_F_CHECK);
	c = find(&r, u1, M_NET_OUT_BYTES, "52:54:00:00:00:01");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->flags, SAMPLE_F_CHECK);
	ck_assert_ptr_null(find(&r, u1, M_MEMORY_RESIDENT, ""));
	ck_assert_ptr_null(find(&r, u1, M_INSTANCE, ""));
	ck_assert_ptr_null(find(&r, u1, M_DISK_READ_BYTES, "254:0"));
	ck_assert_uint_eq(counter(&r, u1, M_PSI_CPU_SOME, ""), 10 * 1000);
	ck_assert_int_eq(r.nm, 1);  /* the host only */
	cgroup_collector.free(st);
	free(r.s);
	ft_destroy(&t);
}
END_TEST

/* slow_every: 2. VM 1 (the second added) reads memory.stat and its PSI
 * files at its first read and then on cycles where (cycle + 1) is even:
 * cycle 1 (first), 3, 5; in cycle 2 the last values are sent again. cpu
 * is read every cycle. */
START_TEST(test_slow_files)
{
	struct ft t;
	struct rec r = { 0 };
	const char *u1 = "7a11e100-0000-4000-8000-000000000001";
	ft_create(&t, "/tmp/tally-cgtree-XXXXXX", 3);
	void *st = open_on(&t, "slow_every: 2\n", false);
	read_into(st, &r, T0);
	ck_assert(gauge(&r, u1, M_MEMORY_RESIDENT) == (double)((100 << 20) + 4096));
	ck_assert_uint_eq(counter(&r, u1, M_PSI_CPU_SOME, ""), 10 * 1000);
	t.vm[1].anon += 1 << 20;
	t.vm[1].psi_some_us[0] += 500;
	t.vm[1].cpu_usec += 7;
	ft_write_vm(&t, 1);
	read_into(st, &r, T0 + 10 * NS_PER_SEC);                       /* cycle 2: not read */
	ck_assert(gauge(&r, u1, M_MEMORY_RESIDENT) == (double)((100 << 20) + 4096));
	ck_assert_uint_eq(counter(&r, u1, M_PSI_CPU_SOME, ""), 10 * 1000);
	ck_assert_uint_eq(counter(&r, u1, M_CPU, ""), (2000000ULL + 7) * 1000);
	read_into(st, &r, T0 + 20 * NS_PER_SEC);                       /* cycle 3: read */
	ck_assert(gauge(&r, u1, M_MEMORY_RESIDENT) == (double)((101 << 20) + 4096));
	ck_assert_uint_eq(counter(&r, u1, M_PSI_CPU_SOME, ""), 510 * 1000);
	cgroup_collector.free(st);
	free(r.s);
	ft_destroy(&t);
}
END_TEST

/* The last process of VM 1 leaves (cgroup.events says "populated 0") after
 * it used 12345 us more CPU and read 8192 more bytes since the last read:
 * the watcher takes those counters at once, and the next read sends them as
 * the final reading, at the instant the cgroup emptied (between the two
 * reads), with a stop then: the tail is billed. The cgroup removed later
 * adds nothing. VM 0 goes on. Real-time ticks: the watcher stamps with the
 * wall clock. */
START_TEST(test_final_reading)
{
	struct ft t;
	struct rec r = { 0 };
	const char *u1 = "7a11e100-0000-4000-8000-000000000001";
	char d[512], p[640];
	ft_create(&t, "/tmp/tally-cgtree-XXXXXX", 2);
	void *st = open_on(&t, NULL, false);
	int64_t t1 = time_now_ns();
	read_into(st, &r, t1);
	uint64_t cpu1 = counter(&r, u1, M_CPU, "");
	t.vm[1].cpu_usec += 12345;
	t.vm[1].rbytes[0] += 8192;
	ft_write_vm(&t, 1);
	ft_scope(&t, 1, d, sizeof(d));
	snprintf(p, sizeof(p), "%s/cgroup.events", d);
	int64_t t_empty = time_now_ns();
	ft_printf(p, "populated 0\nfrozen 0\n");
	/* the watcher runs on its own: read until the final reading shows
	 * (a liveness bound of 10 s, not a timing assertion) */
	const struct sample *fin = NULL;
	int64_t tk = t1;
	for (int k = 0; k < 100 && !fin; k++) {
		usleep(100000);
		tk = time_now_ns();
		read_into(st, &r, tk);
		const struct sample *c = find(&r, u1, M_CPU, "");
		if (c && (c->flags & SAMPLE_F_LAST))
			fin = c;
		else
			ck_assert_msg(c == NULL || !(c->flags & SAMPLE_F_LAST), "a final reading without the watcher");
	}
	ck_assert_msg(fin != NULL, "no final reading 10 s after the cgroup emptied");
	ck_assert_uint_eq(fin->v.counter, cpu1 + 12345ULL * 1000);
	ck_assert_int_ge(fin->time_ns, t_empty);
	ck_assert_int_le(fin->time_ns, tk);
	const struct sample *rd = find(&r, u1, M_DISK_READ_BYTES, "254:0");
	ck_assert_ptr_nonnull(rd);
	ck_assert_uint_eq(rd->v.counter, 4096 + 8192);
	ck_assert(rd->flags & SAMPLE_F_LAST);
	ck_assert_int_eq(r.nev, 1);
	ck_assert_str_eq(r.ev[0].resource, u1);
	ck_assert_str_eq(r.ev[0].type, "stopped");
	ck_assert_str_eq(r.ev[0].reason, "cgroup-emptied");
	ck_assert_int_eq(r.ev[0].time_ns, fin->time_ns);
	ck_assert_ptr_nonnull(find(&r, "7a11e100-0000-4000-8000-000000000000", M_CPU, ""));
	/* still listed, then removed: nothing more of VM 1 */
	read_into(st, &r, tk + 1000000);
	ck_assert_ptr_null(find(&r, u1, M_CPU, ""));
	ft_remove_vm(&t, 1);
	read_into(st, &r, tk + 2000000);
	ck_assert_ptr_null(find(&r, u1, M_CPU, ""));
	ck_assert_int_eq(r.nev, 0);
	cgroup_collector.free(st);
	free(r.s);
	ft_destroy(&t);
}
END_TEST

START_TEST(test_config_refused)
{
	static const struct { const char *yaml; bool lv; const char *msg; } t[] = {
		{ "vm_meters: bill\n", true, "cg.yaml:1:12: key 'vm_meters': 'bill' beside the libvirt collector would"
		  " bill every VM twice; use 'check' (the cross-check) or 'off'" },
		{ "scopes: ['machine*/x.scope']\n", false, "cg.yaml:1:10: key 'scopes': 'machine*/x.scope' must be a"
		  " relative path whose last part only may hold wildcards (machine.slice/machine-qemu*.scope)" },
		{ "scopes: ['../etc/*']\n", false, "cg.yaml:1:10: key 'scopes': '../etc/*' must be a relative path whose"
		  " last part only may hold wildcards (machine.slice/machine-qemu*.scope)" },
		{ "version: 3\n", false, "cg.yaml:1:10: key 'version': 1, 2, hybrid or auto expected (got '3')" },
		{ "refresh: 0\n", false, NULL },
		{ "scope: []\n", false, NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct cfg_node *root;
		struct tally_err e = { 0 };
		struct collector_env env = { .agent_id = "hv1", .interval_ns = NS_PER_SEC, .with_libvirt = t[i].lv };
		void *st = NULL;
		ck_assert_int_eq(cfg_load_string("cg.yaml", t[i].yaml, strlen(t[i].yaml), &root, &e), 0);
		ck_assert_int_lt(cgroup_collector.configure(root, &env, &st, &e), 0);
		if (t[i].msg)
			ck_assert_str_eq(e.msg, t[i].msg);
		else
			ck_assert_ptr_nonnull(strstr(e.msg, "cg.yaml:1:"));
		cfg_free(root);
	}
}
END_TEST

/* ---- 1000 VMs into a ledger ---- */

static int to_agg(void *ctx, struct batch *b)
{
	struct tally_err e = { 0 };
	ck_assert_msg(agg_ingest(ctx, b, &e) >= 0, "%s", e.msg);
	return 0;
}

static uint64_t agg_next(void *ctx, const char *agent)
{
	return agg_agent_seq(ctx, agent) + 1;
}

static void cycle(void *st, struct batcher *bt, struct aggregator *a, int64_t t)
{
	struct tally_err e = { 0 };
	struct sink sk = batcher_sink(bt);
	ck_assert_msg(cgroup_collector.read(st, t, &sk, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(batcher_flush(bt, t), 0);
	ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
}

/* What the test expects of one VM: usage of cpu (ns), its tap's rx bytes
 * (network.outgoing) and its 254:0 read bytes, from its own counters. */
struct want {
	uint64_t cpu, out_bytes, rd254, rd816;
};

static void add_step(struct want *w, const struct ft_vm *o, const struct ft_vm *n, bool wrapped)
{
	w->cpu += (n->cpu_usec - o->cpu_usec) * 1000;
	w->out_bytes += wrapped ? (1ULL << 32) - o->rx_bytes + n->rx_bytes : n->rx_bytes - o->rx_bytes;
	w->rd254 += n->rbytes[0] - o->rbytes[0];
	if (o->n_io > 1)
		w->rd816 += n->rbytes[1] - o->rbytes[1];
}

START_TEST(test_tree_ledger_1000)
{
	enum { N = 1000, STEPS = 6 };
	struct ft t;
	ft_create(&t, "/tmp/tally-cgtree-XXXXXX", N + 1);  /* VM N starts later */
	ft_remove_vm(&t, N);
	ft_write_netdev(&t);
	char ledger[300];
	snprintf(ledger, sizeof(ledger), "%s/ledger.db", t.dir);
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = ledger, .max_gap_ns = 300 * NS_PER_SEC };
	struct tally_err e = { 0 };
	ck_assert_msg(agg_open(&a, &ac, &e) == 0, "%s", e.msg);
	struct batcher bt;
	batcher_init(&bt, "hv1", to_agg, agg_next, a);
	void *st = open_on(&t, NULL, false);
	struct want *w = calloc(N + 1, sizeof(*w));
	struct ft_vm *old = malloc((N + 1) * sizeof(*old));
	ck_assert(w && old);
	cycle(st, &bt, a, T0);                              /* baselines */
	for (int k = 1; k <= STEPS; k++) {
		memcpy(old, t.vm, (N + 1) * sizeof(*old));
		ft_step(&t);
		bool wrap3 = false;
		if (k == 2) {                                   /* VM N starts: counts from zero */
			ft_vm_init(&t, N);
			t.vm[N].cpu_usec = 5000000;
			t.vm[N].rx_bytes = 77777;
			memset(&old[N], 0, sizeof(old[N]));
			old[N].n_io = 1;
			old[N].present = true;
		}
		if (k == 3) {                                   /* VM 7 stops */
			ft_remove_vm(&t, 7);
			t.vm[5].n_io = 2;                           /* VM 5 reads from a second disk */
			t.vm[5].rbytes[1] = 777;
			t.vm[3].rx_bytes = 4294967000ULL;           /* VM 3's tap nears 2^32 */
		}
		if (k == 4) {
			t.vm[3].rx_bytes = 1000;                    /* ... and wraps, 32 bits wide */
			wrap3 = true;
		}
		ft_write_all(&t);
		for (int i = 0; i <= N; i++)
			if (t.vm[i].present && old[i].present)
				add_step(&w[i], &old[i], &t.vm[i], i == 3 && wrap3);
		cycle(st, &bt, a, T0 + k * 10 * NS_PER_SEC);
	}
	cgroup_collector.free(st);
	batcher_release(&bt);
	agg_close(a);

	/* the ledger, read back with SQL: every VM's usage */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *q;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT r.uuid, m.name, u.device, sum(u.quantity) FROM usage u"
					    " JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id"
					    " WHERE m.name IN ('cpu', 'network.outgoing.bytes', 'disk.device.read.bytes')"
					    " GROUP BY 1, 2, 3", -1, &q, NULL), SQLITE_OK);
	int rows = 0, checked[N + 1] = { 0 };
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *uuid = (const char *)sqlite3_column_text(q, 0), *m = (const char *)sqlite3_column_text(q, 1);
		const char *dev = (const char *)sqlite3_column_text(q, 2);
		uint64_t got = (uint64_t)sqlite3_column_int64(q, 3);
		unsigned i;
		ck_assert_int_eq(sscanf(uuid, "7a11e100-0000-4000-8000-%12x", &i), 1);
		ck_assert_uint_le(i, N);
		uint64_t want = !strcmp(m, "cpu") ? w[i].cpu : !strcmp(m, "network.outgoing.bytes") ? w[i].out_bytes :
				!strcmp(dev, "254:0") ? w[i].rd254 : w[i].rd816;
		/* a new life counts from zero: VM N's from 0 (its steps start from a
		 * zero "old"), VM 5's new disk from its first value */
		if (i == 5 && !strcmp(dev, "8:16"))
			want += 777;
		ck_assert_msg(got == want, "VM %u %s '%s': ledger %llu, want %llu", i, m, dev,
			      (unsigned long long)got, (unsigned long long)want);
		checked[i]++;
		rows++;
	}
	sqlite3_finalize(q);
	ck_assert_int_eq(rows, 3 * (N + 1) + 1);            /* + VM 5's second disk */
	for (int i = 0; i <= N; i++)
		ck_assert_int_eq(checked[i], i == 5 ? 4 : 3);
	ck_assert_uint_eq(w[3].out_bytes, (1ULL << 32) + t.vm[3].rx_bytes - 3000); /* the wrap, by hand */
	/* VM 7 ended where its last read left it: its final reading is the one flagged last */
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*), min(s.last_ns) FROM series s JOIN resources r ON"
					    " r.id = s.resource_id WHERE r.uuid = '7a11e100-0000-4000-8000-000000000007'"
					    " AND (s.flags & 1) = 1", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_int_gt(sqlite3_column_int(q, 0), 10);
	ck_assert_int_eq(sqlite3_column_int64(q, 1), T0 + 2 * 10 * NS_PER_SEC + 1);
	sqlite3_finalize(q);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT r.uuid, e.type, e.reason, e.time_ns FROM events e JOIN"
					    " resources r ON r.id = e.resource_id ORDER BY e.time_ns", -1, &q, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "7a11e100-0000-4000-8000-0000000003e8");
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 1), "started");
	ck_assert_int_eq(sqlite3_column_int64(q, 3), T0 + 10 * NS_PER_SEC);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "7a11e100-0000-4000-8000-000000000007");
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 1), "stopped");
	ck_assert_int_eq(sqlite3_column_int64(q, 3), T0 + 2 * 10 * NS_PER_SEC + 1);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);
	free(w);
	free(old);
	ft_destroy(&t);
}
END_TEST

/* ---- faults: one log line each, the other VMs read ---- */

static struct ft *hook_tree;
static char hook_dir[600];

static void remove_after_list(void)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/cpu.stat", hook_dir);
	unlink(p);
	rmdir(hook_dir);
}

/* The lines of file path holding needle. */
static int lines_with(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Runs in a child of its own (it may drop root to meet a permission
 * error): exit 0 when everything held, else 1 with the reason in why. */
static int faults_child(struct ft *t, const char *log, const char *why)
{
	FILE *w = fopen(why, "w");
#define FAIL(...) do { fprintf(w, __VA_ARGS__); fclose(w); return 1; } while (0)
	if (!w)
		return 1;
	if (!freopen(log, "w", stderr))
		FAIL("cannot log to %s", log);
	if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
		FAIL("cannot become nobody: %s", strerror(errno));
	setvbuf(stderr, NULL, _IONBF, 0);
	struct rec r = { 0 };
	void *st = open_on(t, NULL, false);
	hook_tree = t;
	cg_after_list = remove_after_list;
	for (int k = 0; k < 2; k++) {
		struct tally_err e = { 0 };
		struct sink sk = { &r, rec_sample, rec_meta, rec_event };
		r.n = r.nm = r.nev = 0;
		if (cgroup_collector.read(st, T0 + k * 10 * NS_PER_SEC, &sk, &e))
			FAIL("read failed: %s", e.msg);
		cg_after_list = NULL;
		/* the others are read in full every time: VM 0 and VM 3 */
		for (int i = 0; i < 4; i += 3) {
			char u[37];
			ft_uuid(i, u);
			const struct sample *c = find(&r, u, M_CPU, ""), *d = find(&r, u, M_DISK_READ_BYTES, "254:0");
			if (!c || c->v.counter != t->vm[i].cpu_usec * 1000 || !d)
				FAIL("cycle %d: VM %d not read in full", k, i);
		}
		/* VM 1's io.stat is malformed: its cpu is read all the same, no disk */
		if (!find(&r, "7a11e100-0000-4000-8000-000000000001", M_CPU, "") ||
		    find(&r, "7a11e100-0000-4000-8000-000000000001", M_DISK_READ_BYTES, "254:0"))
			FAIL("cycle %d: VM 1 with a malformed io.stat: cpu not read, or disk read", k);
		/* VM 2's cpu.stat cannot be read (as nobody): nothing of it */
		if (geteuid() != 0 && find(&r, "7a11e100-0000-4000-8000-000000000002", M_CPU, ""))
			FAIL("cycle %d: VM 2 read without permission", k);
	}
	cgroup_collector.free(st);
	free(r.s);
	fflush(stderr);
	char want[900];
	snprintf(want, sizeof(want), "%s/cg/machine.slice/machine-qemu\\x2d2\\x2dvm1.scope/io.stat:2:1: expected a"
		 " device MAJ:MIN, got 'sda'", t->dir);
	int n;
	if ((n = lines_with(log, want)) != 1)
		FAIL("%d lines with '%s', want 1", n, want);
	if (geteuid() != 0) {
		snprintf(want, sizeof(want), "vm2.scope/cpu.stat: Permission denied");
		if ((n = lines_with(log, want)) != 1)
			FAIL("%d lines with '%s', want 1", n, want);
	}
	if ((n = lines_with(log, "00000000000a.scope went away between the listing and the read")) != 1)
		FAIL("%d lines saying the cgroup went away, want 1", n);
	if ((n = lines_with(log, "warning")) + lines_with(log, "info") != 3 + (geteuid() != 0))
		FAIL("%d lines logged in all", n);
	fclose(w);
	return 0;
#undef FAIL
}

START_TEST(test_tree_faults)
{
	struct ft t;
	char p[700], log[700], why[700];
	ft_create(&t, "/tmp/tally-cgtree-XXXXXX", 4);
	char d[512];
	ft_scope(&t, 1, d, sizeof(d));
	snprintf(p, sizeof(p), "%s/io.stat", d);
	ft_printf(p, "254:0 rbytes=1 wbytes=2 rios=3 wios=4\nsda rbytes=5\n");
	ft_scope(&t, 2, d, sizeof(d));
	snprintf(p, sizeof(p), "%s/cpu.stat", d);
	chmod(p, 0);
	/* a new cgroup, named by its UUID (no process), gone between the
	 * listing and the read (the directory is world-writable so that
	 * nobody can remove it) */
	snprintf(hook_dir, sizeof(hook_dir), "%s/cg/machine.slice/machine-qemu-3f1e2d4c-0000-4000-8000-00000000000a.scope",
		 t.dir);
	ft_mkdir(hook_dir);
	snprintf(p, sizeof(p), "%s/cpu.stat", hook_dir);
	ft_printf(p, "usage_usec 1\n");
	snprintf(p, sizeof(p), "%s/cg/machine.slice", t.dir);
	chmod(p, 0777);
	chmod(hook_dir, 0777);
	snprintf(log, sizeof(log), "%s/log", t.dir);
	snprintf(why, sizeof(why), "%s/why", t.dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(faults_child(&t, log, why));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	FILE *f = fopen(why, "r");
	char reason[1024] = "";
	if (f) {
		size_t n = fread(reason, 1, sizeof(reason) - 1, f);
		reason[n] = '\0';
		fclose(f);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "faults: %s (status %d)", reason, status);
	ft_destroy(&t);
}
END_TEST

/* ---- this machine's /proc, between two independent reads ---- */

static uint64_t proc_cpu_busy_ns(void)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long u, n, sy, id, io, irq, sirq;
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &id, &io, &irq, &sirq), 7);
	fclose(f);
	return (uint64_t)(u + n + sy + irq + sirq) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
}

static uint64_t proc_rx(const char *ifname)
{
	FILE *f = fopen("/proc/net/dev", "r");
	char line[512], name[64];
	unsigned long long rx = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (!c || sscanf(line, " %63[^:]", name) != 1 || strcmp(name, ifname))
			continue;
		sscanf(c + 1, "%llu", &rx);
	}
	fclose(f);
	return rx;
}

START_TEST(test_real_proc)
{
	if (sysconf(_SC_CLK_TCK) <= 0 || 1000000000 % sysconf(_SC_CLK_TCK)) {
		fprintf(stderr, "skip: USER_HZ does not divide 1e9\n");
		return;
	}
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "real", .interval_ns = NS_PER_SEC };
	void *st = NULL;
	const char *yaml = "vm_meters: off\n";
	ck_assert_int_eq(cfg_load_string("cg.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_msg(cgroup_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_msg(cgroup_collector.init(st, 0, &e) == 0, "%s", e.msg);
	struct rec r = { 0 };
	uint64_t cpu0 = proc_cpu_busy_ns(), lo0 = proc_rx("lo");
	read_into(st, &r, time_now_ns());
	uint64_t cpu1 = proc_cpu_busy_ns(), lo1 = proc_rx("lo");
	uint64_t cpu = counter(&r, "real", M_HOST_CPU, "");
	ck_assert_msg(cpu0 <= cpu && cpu <= cpu1, "host.cpu %llu not between two reads of /proc/stat %llu .. %llu",
		      (unsigned long long)cpu, (unsigned long long)cpu0, (unsigned long long)cpu1);
	/* lo is the host's loopback: not a host interface we report */
	ck_assert_ptr_null(find(&r, "real", M_HOST_NET_IN_BYTES, "lo"));
	ck_assert_uint_le(lo0, lo1);
	/* MemTotal does not move: exactly /proc/meminfo's */
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long long kb;
	ck_assert_int_eq(fscanf(f, "MemTotal: %llu kB", &kb), 1);
	fclose(f);
	ck_assert(gauge(&r, "real", M_HOST_MEMORY) == (double)kb * 1024);
	/* every other interface of this host is there, between two reads; but
	 * taps, which a running VM's may be (its traffic is the VM's, not the
	 * host's: left out while the VM runs) */
	f = fopen("/proc/net/dev", "r");
	char line[512], name[64], tun[128];
	int ifaces = 0;
	while (fgets(line, sizeof(line), f))
		if (strchr(line, ':') && sscanf(line, " %63[^:]", name) == 1 && strcmp(name, "lo") &&
		    (snprintf(tun, sizeof(tun), "/sys/class/net/%s/tun_flags", name), access(tun, F_OK) != 0)) {
			uint64_t before = proc_rx(name);
			struct rec r2 = { 0 };
			read_into(st, &r2, time_now_ns() + (int64_t)++ifaces * NS_PER_SEC);
			uint64_t after = proc_rx(name), got = counter(&r2, "real", M_HOST_NET_IN_BYTES, name);
			ck_assert_msg(before <= got && got <= after, "%s rx %llu not in %llu .. %llu", name,
				      (unsigned long long)got, (unsigned long long)before, (unsigned long long)after);
			free(r2.s);
		}
	fclose(f);
	cgroup_collector.free(st);
	free(r.s);
}
END_TEST

/* ---- the cross-check of two sources ---- */

static void xs(struct batch *b, const char *res, int meter, const char *dev, int64_t t, uint64_t v, unsigned flags)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, res, sizeof(s.resource));
	str_copy(s.device, dev, sizeof(s.device));
	s.meter = (uint16_t)meter;
	s.kind = SAMPLE_CUMULATIVE;
	s.time_ns = t;
	s.flags = (uint8_t)flags;
	s.v.counter = v;
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
}

struct divs {
	double cpu, net;
	int seen;
};

static int div_of(void *ctx, const struct agg_series_view *v)
{
	struct divs *d = ctx;
	if (v->meter == M_CPU)
		d->cpu = v->divergence;
	if (v->meter == M_NET_OUT_BYTES)
		d->net = v->divergence;
	d->seen++;
	return 0;
}

/* libvirt's readings of VM U (cpu, a NIC's outgoing bytes) and the cgroup
 * collector's checks of them, over four cycles 10 s apart:
 *            billed cpu (ns)   checked cpu     billed net   checked net
 *   t0       1.00e9            1.00e9          5000         5000
 *   t1       2.00e9            1.99e9          6000         6000
 *   t2       3.00e9            2.98e9          8000         7000
 *   t3       4.00e9            3.97e9          9000         8000
 * cpu: 1e9 billed against 0.99e9 checked in every interval -> (1e9 -
 * 0.99e9) / 1e9 = 0.01; net: 0, then 2000 against 1000 -> 0.5 in t1..t2,
 * then 0. The checks come before or after the billed readings in the batch
 * (both happen: collectors run in config order); a check that comes
 * before its series' very first reading (cpu at t0) has nothing to be
 * compared with: unmatched, and the cpu pair starts at t1, compared from
 * t1..t2 on (2 intervals; net 3). A check of a VM nobody bills (V) is
 * unmatched every cycle (4), never billed. The ledger holds the billed
 * usage once: cpu 3e9, net 4000. */
START_TEST(test_crosscheck)
{
	const char *U = "7a11e100-0000-4000-8000-000000000001", *V = "7a11e100-0000-4000-8000-000000000002";
	const char *mac = "52:54:00:00:00:01";
	char dir[64], path[128];
	tu_mkdtemp(dir, sizeof(dir), "cgxc");
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path, .max_gap_ns = 300 * NS_PER_SEC };
	struct tally_err e = { 0 };
	ck_assert_msg(agg_open(&a, &ac, &e) == 0, "%s", e.msg);
	const uint64_t bc[4] = { 1000000000, 2000000000, 3000000000, 4000000000 };
	const uint64_t cc[4] = { 1000000000, 1990000000, 2980000000, 3970000000 };
	const uint64_t bn[4] = { 5000, 6000, 8000, 9000 }, cn[4] = { 5000, 6000, 7000, 8000 };
	struct batch b;
	batch_init(&b, "hv1");
	for (int k = 0; k < 4; k++) {
		int64_t t = T0 + k * 10 * NS_PER_SEC;
		batch_clear(&b);
		b.seq = (uint64_t)k + 1;
		b.time_ns = t;
		if (k != 1)   /* the check first */
			xs(&b, U, M_CPU, "", t, cc[k], SAMPLE_F_CHECK);
		xs(&b, U, M_CPU, "", t, bc[k], 0);
		xs(&b, U, M_NET_OUT_BYTES, mac, t, bn[k], 0);
		if (k == 1)
			xs(&b, U, M_CPU, "", t, cc[k], SAMPLE_F_CHECK);
		xs(&b, U, M_NET_OUT_BYTES, mac, t, cn[k], SAMPLE_F_CHECK);
		xs(&b, V, M_CPU, "", t, 123, SAMPLE_F_CHECK);
		ck_assert_msg(agg_ingest(a, &b, &e) == 0, "%s", e.msg);
		ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
		struct divs d = { -2, -2, 0 };
		agg_visit_series(a, div_of, &d);
		ck_assert(d.cpu == (k < 2 ? -1 : 10000000.0 / 1000000000.0));
		ck_assert(d.net == (k < 1 ? -1 : k == 2 ? 0.5 : 0));
	}
	batch_release(&b);
	struct divs d = { -2, -2, 0 };
	agg_visit_series(a, div_of, &d);
	ck_assert_int_eq(d.seen, 2);    /* U's two billed series; no series of the checks */
	ck_assert(d.cpu == 10000000.0 / 1000000000.0);
	ck_assert(d.net == 0);
	struct agg_stats st;
	agg_get_stats(a, &st);
	ck_assert_uint_eq(st.checks_compared, 5);
	ck_assert_uint_eq(st.checks_unmatched, 5);
	/* /metrics */
	struct live_inputs in = { .tick_ns = T0 + 30 * NS_PER_SEC, .stale_after_ns = 60 * NS_PER_SEC };
	struct live_state *ls = live_build(a, &in);
	ck_assert_ptr_nonnull(ls);
	struct sbuf out = { 0 };
	ck_assert_int_eq(prom_render(ls, PROM_TEXT, NULL, &out), 0);
	ck_assert_msg(strstr(out.p, "tally_source_divergence_ratio{uuid=\"7a11e100-0000-4000-8000-000000000001\","
				    "name=\"\",tenant=\"\",flavor=\"\",host=\"hv1\",meter=\"cpu\"} 0.01\n"), "%s", out.p);
	ck_assert_msg(strstr(out.p, "tally_source_divergence_ratio{uuid=\"7a11e100-0000-4000-8000-000000000001\","
				    "name=\"\",tenant=\"\",flavor=\"\",host=\"hv1\",meter=\"network.outgoing.bytes\","
				    "device=\"52:54:00:00:00:01\"} 0\n"), "%s", out.p);
	ck_assert_ptr_nonnull(strstr(out.p, "tally_source_checks_total{result=\"compared\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(out.p, "tally_source_checks_total{result=\"unmatched\"} 5\n"));
	ck_assert_ptr_null(strstr(out.p, "7a11e100-0000-4000-8000-000000000002"));
	sbuf_release(&out);
	live_free(ls);
	agg_close(a);
	/* the ledger: the billed usage, once */
	sqlite3 *db;
	sqlite3_stmt *q;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT m.name, sum(u.quantity), (SELECT count(*) FROM resources)"
					    " FROM usage u JOIN meters m ON m.id = u.meter_id GROUP BY 1 ORDER BY 1",
					    -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "cpu");
	ck_assert_int_eq(sqlite3_column_int64(q, 1), 3000000000LL);
	ck_assert_int_eq(sqlite3_column_int64(q, 2), 1);  /* V never became a resource */
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "network.outgoing.bytes");
	ck_assert_int_eq(sqlite3_column_int64(q, 1), 4000);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);
	tu_rmrf(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cgroup");
	TCase *p = tcase_create("parsers");
	tcase_add_test(p, test_cpu_stat);
	tcase_add_test(p, test_memory_stat);
	tcase_add_test(p, test_meminfo);
	tcase_add_test(p, test_keyed_refused);
	tcase_add_test(p, test_u64);
	tcase_add_test(p, test_psi);
	tcase_add_test(p, test_io_stat);
	tcase_add_test(p, test_blkio_v1);
	tcase_add_test(p, test_proc_stat);
	tcase_add_test(p, test_diskstats);
	tcase_add_test(p, test_net_dev);
	tcase_add_test(p, test_net_dev_wrap32);
	tcase_add_test(p, test_qemu_libvirt9);
	tcase_add_test(p, test_qemu_legacy);
	tcase_add_test(p, test_small_files);
	suite_add_tcase(s, p);
	TCase *c = tcase_create("collector");
	tcase_set_timeout(c, 120);
	tcase_add_test(c, test_tree_read);
	tcase_add_test(c, test_slow_files);
	tcase_add_test(c, test_final_reading);
	tcase_add_test(c, test_config_refused);
	tcase_add_test(c, test_tree_ledger_1000);
	tcase_add_test(c, test_tree_faults);
	tcase_add_test(c, test_real_proc);
	suite_add_tcase(s, c);
	TCase *x = tcase_create("crosscheck");
	tcase_add_test(x, test_crosscheck);
	suite_add_tcase(s, x);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
