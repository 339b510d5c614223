/*
 * cgroup_tree.h: a fake cgroup v2 tree, /proc and /sys in a directory, with
 * N VM scopes whose counters the caller sets and advances: what the
 * cgroup collector's tests (tests/unit/test_cgroup.c) and its benchmark
 * (bench/bench_cgroup.c) read, instead of a host with N real VMs.
 *
 * Layout, under DIR:
 *   cg/cgroup.controllers
 *   cg/machine.slice/machine-qemu\x2d<i+1>\x2dvm<i>.scope/   (libvirt's scope name)
 *       cpu.stat memory.stat io.stat cpu.pressure memory.pressure
 *       io.pressure cgroup.procs (the pid 100000 + i) cgroup.events
 *   proc/<pid>/cmdline    qemu-system-x86_64 -name guest=vm<i> -uuid U(i)
 *                         -smp 2 -m 1024 -netdev {..fd..} -device {..mac..}
 *   proc/<pid>/fdinfo/0   a plain file; fdinfo/23: iff: vnet<i>
 *   proc/net/dev          every VM's tap (vnet<i>) and eth0, lo
 *   proc/stat meminfo diskstats pressure/{cpu,memory,io}
 *   sys/class/net/vnet<i>/address (fe:54:00:..), ifindex
 * Files are rewritten in place (O_TRUNC), never replaced: the collector
 * keeps them open, as it does cgroup files.
 *
 * Header-only (static functions): include it in one test or bench file.
 */
#ifndef TALLY_CGROUP_TREE_H
#define TALLY_CGROUP_TREE_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ft_vm {
	bool present;                /* its scope exists */
	uint64_t cpu_usec;
	uint64_t anon, file;         /* bytes */
	int n_io;                    /* devices in io.stat: 254:0, then 8:16 */
	uint64_t rbytes[2], wbytes[2], rios[2], wios[2];
	uint64_t psi_some_us[3], psi_full_us[3];   /* cpu, memory, io */
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;   /* the tap's (host's view) */
	int ifindex;
};

struct ft {
	char dir[256];
	int n;
	struct ft_vm *vm;
	uint64_t eth0_rx, eth0_tx;
	uint64_t cpu_ticks[4];       /* /proc/stat user system idle iowait */
};

static inline void ft_write(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		fprintf(stderr, "cgroup_tree: cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
	close(fd);
}

static inline void ft_printf(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void ft_printf(const char *path, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ft_write(path, buf, (size_t)n);
}

static inline void ft_mkdir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "cgroup_tree: cannot mkdir %s: %s\n", path, strerror(errno));
		abort();
	}
}

static inline void ft_uuid(int i, char *out)
{
	snprintf(out, 37, "7a11e100-0000-4000-8000-%012x", (unsigned)i);
}

static inline void ft_scope(const struct ft *t, int i, char *out, size_t len)
{
	snprintf(out, len, "%s/cg/machine.slice/machine-qemu\\x2d%d\\x2dvm%d.scope", t->dir, i + 1, i);
}

/* Write VM i's cgroup files from t->vm[i] (creating the scope and its
 * process when new). */
static inline void ft_write_vm(struct ft *t, int i)
{
	char d[512], p[640];
	const struct ft_vm *v = &t->vm[i];
	ft_scope(t, i, d, sizeof(d));
	ft_mkdir(d);
	snprintf(p, sizeof(p), "%s/cpu.stat", d);
	ft_printf(p, "usage_usec %" PRIu64 "\nuser_usec %" PRIu64 "\nsystem_usec %" PRIu64
		  "\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n", v->cpu_usec, v->cpu_usec / 2,
		  v->cpu_usec - v->cpu_usec / 2);
	snprintf(p, sizeof(p), "%s/memory.stat", d);
	ft_printf(p, "anon %" PRIu64 "\nfile %" PRIu64 "\nkernel 3145728\nkernel_stack 147456\npagetables 606208\n"
		  "percpu 1440\nsock 0\nshmem 0\nfile_mapped 4194304\nfile_dirty 0\nfile_writeback 0\n"
		  "anon_thp 0\ninactive_anon %" PRIu64 "\nactive_anon 0\ninactive_file 0\nactive_file %" PRIu64
		  "\nunevictable 0\nslab 1835008\npgfault 29346\npgmajfault 12\n", v->anon, v->file, v->anon,
		  v->file);
	char io[512];
	int k = 0;
	static const char *const dev[2] = { "254:0", "8:16" };
	for (int j = 0; j < v->n_io; j++)
		k += snprintf(io + k, sizeof(io) - (size_t)k, "%s rbytes=%" PRIu64 " wbytes=%" PRIu64 " rios=%" PRIu64
			      " wios=%" PRIu64 " dbytes=0 dios=0\n", dev[j], v->rbytes[j], v->wbytes[j], v->rios[j],
			      v->wios[j]);
	snprintf(p, sizeof(p), "%s/io.stat", d);
	ft_write(p, io, (size_t)k);
	static const char *const psi[3] = { "cpu", "memory", "io" };
	for (int j = 0; j < 3; j++) {
		snprintf(p, sizeof(p), "%s/%s.pressure", d, psi[j]);
		ft_printf(p, "some avg10=0.00 avg60=0.00 avg300=0.00 total=%" PRIu64
			  "\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=%" PRIu64 "\n", v->psi_some_us[j],
			  v->psi_full_us[j]);
	}
	snprintf(p, sizeof(p), "%s/cgroup.procs", d);
	ft_printf(p, "%d\n", 100000 + i);
	/* written once: the kernel changes it (and says so) only when it changes */
	snprintf(p, sizeof(p), "%s/cgroup.events", d);
	if (access(p, F_OK))
		ft_printf(p, "populated 1\nfrozen 0\n");
}

/* The process and the tap of VM i (once). */
static inline void ft_write_proc(struct ft *t, int i)
{
	char p[512], u[37];
	ft_uuid(i, u);
	snprintf(p, sizeof(p), "%s/proc/%d", t->dir, 100000 + i);
	ft_mkdir(p);
	snprintf(p, sizeof(p), "%s/proc/%d/cmdline", t->dir, 100000 + i);
	char cmd[1024];
	int n = snprintf(cmd, sizeof(cmd), "/usr/bin/qemu-system-x86_64%c-name%cguest=vm%d,debug-threads=on%c-uuid%c%s%c"
			 "-smp%c2%c-m%c1024%c-netdev%c{\"type\":\"tap\",\"fd\":\"23\",\"id\":\"hostnet0\"}%c-device%c"
			 "{\"driver\":\"virtio-net-pci\",\"netdev\":\"hostnet0\",\"mac\":\"52:54:00:%02x:%02x:%02x\"}%c",
			 0, 0, i, 0, 0, u, 0, 0, 0, 0, 0, 0, 0, 0, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 0);
	ft_write(p, cmd, (size_t)n);
	snprintf(p, sizeof(p), "%s/proc/%d/fdinfo", t->dir, 100000 + i);
	ft_mkdir(p);
	snprintf(p, sizeof(p), "%s/proc/%d/fdinfo/0", t->dir, 100000 + i);
	ft_printf(p, "pos:\t0\nflags:\t02\nmnt_id:\t15\n");
	snprintf(p, sizeof(p), "%s/proc/%d/fdinfo/23", t->dir, 100000 + i);
	ft_printf(p, "pos:\t0\nflags:\t0104002\nmnt_id:\t15\niff:\tvnet%d\n", i);
	snprintf(p, sizeof(p), "%s/sys/class/net/vnet%d", t->dir, i);
	ft_mkdir(p);
	snprintf(p, sizeof(p), "%s/sys/class/net/vnet%d/address", t->dir, i);
	ft_printf(p, "fe:54:00:%02x:%02x:%02x\n", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
	snprintf(p, sizeof(p), "%s/sys/class/net/vnet%d/ifindex", t->dir, i);
	ft_printf(p, "%d\n", t->vm[i].ifindex);
}

/* /proc/net/dev: lo, eth0 and every present VM's tap. */
static inline void ft_write_netdev(struct ft *t)
{
	size_t cap = 1024 + (size_t)t->n * 200, k = 0;
	char *b = malloc(cap), p[512];
	if (!b)
		abort();
	k += (size_t)snprintf(b + k, cap - k, "Inter-|   Receive                                                |  Transmit\n"
			      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
			      "    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n"
			      "  eth0: %10" PRIu64 "    4610    0    0    0     0          0         0 %10" PRIu64
			      "    2512    0    0    0     0       0          0\n", t->eth0_rx, t->eth0_tx);
	for (int i = 0; i < t->n; i++) {
		const struct ft_vm *v = &t->vm[i];
		if (!v->present)
			continue;
		k += (size_t)snprintf(b + k, cap - k, "%6s%d: %10" PRIu64 " %7" PRIu64 "    0    0    0     0          0"
				      "         0 %10" PRIu64 " %7" PRIu64 "    0    0    0     0       0          0\n",
				      "vnet", i, v->rx_bytes, v->rx_packets, v->tx_bytes, v->tx_packets);
	}
	if (k >= cap)
		abort();
	snprintf(p, sizeof(p), "%s/proc/net/dev", t->dir);
	ft_write(p, b, k);
	free(b);
}

static inline void ft_write_host(struct ft *t)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/proc/stat", t->dir);
	ft_printf(p, "cpu  %" PRIu64 " 0 %" PRIu64 " %" PRIu64 " %" PRIu64 " 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n"
		  "btime 1764888000\n", t->cpu_ticks[0], t->cpu_ticks[1], t->cpu_ticks[2], t->cpu_ticks[3]);
	snprintf(p, sizeof(p), "%s/proc/meminfo", t->dir);
	ft_printf(p, "MemTotal:       16384000 kB\nMemFree:         8192000 kB\nMemAvailable:   12288000 kB\n");
	snprintf(p, sizeof(p), "%s/proc/diskstats", t->dir);
	ft_printf(p, " 254       0 vda 100 0 800 10 200 0 1600 20 0 30 30 0 0 0 0 0 0\n"
		  "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	static const char *const psi[3] = { "cpu", "memory", "io" };
	for (int j = 0; j < 3; j++) {
		snprintf(p, sizeof(p), "%s/proc/pressure/%s", t->dir, psi[j]);
		ft_printf(p, "some avg10=0.00 avg60=0.00 avg300=0.00 total=%d\nfull avg10=0.00 avg60=0.00 avg300=0.00"
			  " total=%d\n", 1000 * (j + 1), 100 * (j + 1));
	}
}

/* VM i's starting counters, distinct per VM so a mix-up shows */
static inline void ft_vm_init(struct ft *t, int i)
{
	struct ft_vm *v = &t->vm[i];
	memset(v, 0, sizeof(*v));
	v->present = true;
	v->cpu_usec = 1000000ULL * (uint64_t)(i + 1);
	v->anon = 100ULL << 20;
	v->file = (uint64_t)i << 12;
	v->n_io = 1;
	v->rbytes[0] = 4096ULL * (uint64_t)i;
	v->wbytes[0] = 8192ULL * (uint64_t)i;
	v->rios[0] = (uint64_t)i;
	v->wios[0] = 2ULL * (uint64_t)i;
	for (int j = 0; j < 3; j++) {
		v->psi_some_us[j] = 10ULL * (uint64_t)i;
		v->psi_full_us[j] = (uint64_t)i;
	}
	v->rx_bytes = 1000ULL * (uint64_t)i;
	v->rx_packets = (uint64_t)i;
	v->tx_bytes = 2000ULL * (uint64_t)i;
	v->tx_packets = 2ULL * (uint64_t)i;
	v->ifindex = 100 + i;
}

/* Advance every present VM's counters by one step (a per-VM amount). */
static inline void ft_step(struct ft *t)
{
	for (int i = 0; i < t->n; i++) {
		struct ft_vm *v = &t->vm[i];
		if (!v->present)
			continue;
		v->cpu_usec += 10000ULL + (uint64_t)(i % 97) * 1000;
		v->file += 4096;
		for (int j = 0; j < v->n_io; j++) {
			v->rbytes[j] += 4096;
			v->wbytes[j] += 512ULL * (uint64_t)(1 + i % 7);
			v->rios[j] += 1;
			v->wios[j] += 1 + (uint64_t)(i % 7);
		}
		for (int j = 0; j < 3; j++) {
			v->psi_some_us[j] += 100;
			v->psi_full_us[j] += 10;
		}
		v->rx_bytes += 1500ULL * (uint64_t)(1 + i % 5);
		v->rx_packets += 1 + (uint64_t)(i % 5);
		v->tx_bytes += 60;
		v->tx_packets += 1;
	}
	t->eth0_rx += 123456;
	t->eth0_tx += 654;
	t->cpu_ticks[0] += 150;
	t->cpu_ticks[1] += 30;
	t->cpu_ticks[2] += 20;
	t->cpu_ticks[3] += 0;
}

/* Every file of the tree from the state in t. */
static inline void ft_write_all(struct ft *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->vm[i].present)
			ft_write_vm(t, i);
	ft_write_netdev(t);
	ft_write_host(t);
}

/* A tree of n VMs under a fresh directory DIR (made from tmpl, mkdtemp). */
static inline void ft_create(struct ft *t, const char *tmpl, int n)
{
	char p[512];
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "%s", tmpl);
	if (!mkdtemp(t->dir))
		abort();
	chmod(t->dir, 0755);
	t->n = n;
	t->vm = calloc((size_t)n + 1, sizeof(*t->vm));
	if (!t->vm)
		abort();
	static const char *const dirs[] = { "cg", "cg/machine.slice", "proc", "proc/net", "proc/pressure", "sys",
					    "sys/class", "sys/class/net", NULL };
	for (int i = 0; dirs[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", t->dir, dirs[i]);
		ft_mkdir(p);
	}
	snprintf(p, sizeof(p), "%s/cg/cgroup.controllers", t->dir);
	ft_printf(p, "cpuset cpu io memory hugetlb pids rdma misc\n");
	t->eth0_rx = 228844621;
	t->eth0_tx = 182873;
	t->cpu_ticks[0] = 23384;
	t->cpu_ticks[1] = 16414;
	t->cpu_ticks[2] = 87863;
	t->cpu_ticks[3] = 3095;
	for (int i = 0; i < n; i++) {
		ft_vm_init(t, i);
		ft_write_proc(t, i);
	}
	ft_write_all(t);
}

/* VM i goes away: its scope (files first, as the kernel has none to keep) */
static inline void ft_remove_vm(struct ft *t, int i)
{
	char d[512], p[640];
	static const char *const f[] = { "cpu.stat", "memory.stat", "io.stat", "cpu.pressure", "memory.pressure",
					 "io.pressure", "cgroup.procs", "cgroup.events", NULL };
	ft_scope(t, i, d, sizeof(d));
	for (int k = 0; f[k]; k++) {
		snprintf(p, sizeof(p), "%s/%s", d, f[k]);
		unlink(p);
	}
	rmdir(d);
	t->vm[i].present = false;
}

static inline void ft_destroy(struct ft *t)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cgroup_tree: cannot remove %s\n", t->dir);
	free(t->vm);
}

#endif
