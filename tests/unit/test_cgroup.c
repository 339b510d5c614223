/*
 * test_cgroup.c: the cgroup/procfs collector.
 *
 * Parsers: every kernel file format on fixtures (tests/fixtures/cgroup/),
 * the expected values read off the fixture by hand, with the odd shapes the
 * kernel really writes (io.stat lines without some keys, iocost's decimal
 * fields, cpu.pressure without "full" before 5.13, a 32-bit counter that
 * wraps in /proc/net/dev) and malformed files, which must be refused with
 * line, column and key.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_internal.h"
#include "err.h"
#include "testutil.h"

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
	return s;
}

int main(void)
{
	return tu_run(suite());
}
