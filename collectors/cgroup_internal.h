/*
 * cgroup_internal.h: the pure parts of the cgroup/procfs collector
 * (collectors/cgroup.c), exposed for tests and the fuzz target: one parser
 * per kernel file format, and the 32-bit counter extension.
 *
 * Every parser takes the file's bytes (buf, len; not NUL-terminated, never
 * written to) and fills a caller-owned struct: no allocation, no I/O. A
 * file the kernel writes grows keys over the years (cpu.stat gained
 * nr_bursts, memory.stat gains a field every release), so keys a parser
 * does not ask for are skipped; but a line it cannot read at all (no value,
 * a value that is not an unsigned decimal, a number past 2^64 - 1, a
 * device that is not MAJ:MIN) is refused: -EINVAL (-ERANGE for overflow)
 * with "line L col C: ..." naming the key in e, so the caller can prefix
 * the file's path and say file:line:col once.
 */
#ifndef TALLY_CGROUP_INTERNAL_H
#define TALLY_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tally_err;

/* ---- keyed files: "key value" per line ---- */

/* Lines of "key value" (cpu.stat, memory.stat, v1 memory.stat), or, with
 * CG_KEYED_MEMINFO, "Key:   value kB" (/proc/meminfo: the value is turned
 * into bytes when the line says kB). keys[0..n_keys) are the keys wanted;
 * out[i] gets key i's value and bit i of *found is set. A wanted key given
 * twice is refused (a file that says two things is not believed). */
#define CG_KEYED_MEMINFO 0x1
int cg_parse_keyed(const char *buf, size_t len, unsigned flags, const char *const *keys, int n_keys,
		   uint64_t *out, uint32_t *found, struct tally_err *e);

/* One unsigned decimal and a newline (cpuacct.usage, a sysfs counter). */
int cg_parse_u64(const char *buf, size_t len, uint64_t *out, struct tally_err *e);

/* ---- pressure stall information: cpu.pressure, /proc/pressure/io ... ---- */

struct cg_psi {
	uint64_t some_us, full_us;   /* "total=" of each line: stall time, microseconds */
	bool have_some, have_full;   /* cpu.pressure had no "full" line before Linux 5.13 */
};
int cg_parse_psi(const char *buf, size_t len, struct cg_psi *out, struct tally_err *e);

/* ---- block I/O per device ---- */

#define CG_IO_RBYTES 0x1u
#define CG_IO_WBYTES 0x2u
#define CG_IO_RIOS   0x4u
#define CG_IO_WIOS   0x8u
struct cg_io_dev {
	uint32_t major, minor;
	uint64_t rbytes, wbytes;     /* bytes */
	uint64_t rios, wios;         /* requests */
	uint32_t have;               /* CG_IO_* of the fields the file gave */
};

/* cgroup v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N
 * dios=N" per device; a line may lack some keys (a device with no I/O of
 * a kind yet, older kernels without d*): those fields are left out of
 * `have`. At most max devices are kept; *skipped counts the others. */
int cg_parse_io_stat(const char *buf, size_t len, struct cg_io_dev *devs, int max, int *n, int *skipped,
		     struct tally_err *e);

/* cgroup v1 blkio.throttle.io_service_bytes(_recursive) (bytes = true) or
 * .io_serviced(_recursive) (requests): "MAJ:MIN Read N", "... Write N",
 * Sync/Async/Discard/Total lines, and a last "Total N". Merges into devs
 * (a device already there, from the other file, is filled in). */
int cg_parse_blkio_v1(const char *buf, size_t len, bool bytes, struct cg_io_dev *devs, int max, int *n,
		      int *skipped, struct tally_err *e);

/* ---- the host: /proc/stat, /proc/diskstats, /proc/net/dev ---- */

struct cg_host_cpu {
	/* the "cpu" line of /proc/stat, in USER_HZ ticks (user includes guest
	 * time, nice includes guest_nice: /proc/stat counts them in both) */
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
	int fields;                  /* how many the line had (4 on very old kernels) */
};
int cg_parse_proc_stat(const char *buf, size_t len, struct cg_host_cpu *out, struct tally_err *e);

struct cg_disk {
	char name[32];               /* "sda", "nvme0n1", "dm-0" */
	uint32_t major, minor;
	uint64_t rd_ios, rd_sectors; /* sectors of 512 bytes, whatever the device's */
	uint64_t wr_ios, wr_sectors;
};
int cg_parse_diskstats(const char *buf, size_t len, struct cg_disk *disks, int max, int *n, int *skipped,
		       struct tally_err *e);

struct cg_netif {
	char name[16];               /* IFNAMSIZ */
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};
/* /proc/net/dev: two header lines, then "name: 16 numbers" per interface
 * (old kernels wrote "eth0:123" with no space when the number was wide). */
int cg_parse_net_dev(const char *buf, size_t len, struct cg_netif *ifs, int max, int *n, int *skipped,
		     struct tally_err *e);

/* ---- counters narrower than 64 bits ---- */

/* A counter as the kernel shows it may be 32 bits wide (/proc/net/dev of a
 * 32-bit kernel or driver) and wrap at 2^32. cg_counter_extend() turns
 * the raw values of one counter into a 64-bit one that never wraps: a raw
 * value below the previous one, on the same device (same_life: the
 * interface was there all along, same ifindex), from a previous value
 * that fitted in 32 bits, is a 32-bit wrap (2^32 is added); any other
 * decrease is a new life (the extension starts over, and the aggregator
 * sees a reset). */
struct cg_ext {
	uint64_t last_raw;
	uint64_t offset;             /* added to raw: a multiple of 2^32 */
	bool have;
};
uint64_t cg_counter_extend(struct cg_ext *x, uint64_t raw, bool same_life);

/* ---- who a cgroup is: QEMU's command line, its taps ---- */

#define CG_MAX_NICS 16
struct cg_qemu {
	char uuid[37];               /* -uuid, lower-case; "" when absent */
	char name[128];              /* -name guest=X or -name X; "" when absent */
	uint32_t vcpus;              /* -smp N / cpus=N; 0 when absent */
	uint64_t memory_bytes;       /* -m N (MiB) / size=N[KMGT]; 0 when absent */
	char macs[CG_MAX_NICS][18];  /* mac= of each -device (or -net nic), in order */
	int n_macs;
	char ifnames[CG_MAX_NICS][16]; /* ifname= of each -netdev tap */
	int n_ifnames;
	bool is_qemu;                /* argv[0] names a qemu binary, or -uuid/-name was given */
};
/* /proc/PID/cmdline (NUL-separated). Understands the legacy key=value form
 * and the JSON form libvirt writes since 7.x ('{"driver":..,"mac":..}').
 * A -uuid that is not a UUID is refused (-EINVAL). */
int cg_parse_qemu_cmdline(const char *buf, size_t len, struct cg_qemu *out, struct tally_err *e);

/* True when s (NUL-terminated) is a UUID in its 8-4-4-4-12 text form. */
bool cg_is_uuid(const char *s);
/* The first UUID inside a name (a scope "kata-<uuid>.scope"), copied
 * lower-case into out[37]; false when there is none. */
bool cg_find_uuid(const char *s, char *out);

/* /proc/PID/fdinfo/FD of a tun/tap descriptor has "iff:\tNAME": the
 * interface name into name[16]; 0, or -ENOENT when the fd is not a tap. */
int cg_parse_fdinfo_iff(const char *buf, size_t len, char *name, size_t size);

/* The first PID of a cgroup.procs file: 0, or -ENOENT when it is empty. */
int cg_parse_first_pid(const char *buf, size_t len, int *pid, struct tally_err *e);

/* cgroup v2 cgroup.events: "populated 0|1" (and "frozen 0|1"). */
int cg_parse_events(const char *buf, size_t len, bool *populated, struct tally_err *e);

/* A MAC written "fe:54:00:7a:12:01" (any case): its bytes. false when not. */
bool cg_parse_mac(const char *s, uint8_t mac[6]);

/* Fault-injection seam for tests: called by the collector after it listed
 * the cgroups and before it reads them (a test removes one there). NULL
 * in production. */
extern void (*cg_after_list)(void);

#endif
