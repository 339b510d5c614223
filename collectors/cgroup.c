/*
 * cgroup.c: every VM of a KVM host read from the kernel's cgroup files,
 * without libvirt, and the host's own figures from /proc.
 *
 * A VM is a cgroup whose path matches one of the `scopes` patterns
 * (libvirt's machine.slice/machine-qemu*.scope under systemd,
 * machine/qemu-*.libvirt-qemu without it, or any other stack's). cgroup v2
 * is read from one tree (cpu.stat, memory.stat, io.stat, cpu/memory/io
 * .pressure); cgroup v1 from the cpuacct, memory and blkio hierarchies
 * (cpuacct.usage, memory.stat, blkio.throttle.*_recursive); a hybrid host
 * from both (cpu and PSI from its v2 unified/ tree). Per cycle the
 * patterns' parent directories are listed (one getdents each) and every
 * VM's files due are read with one pread each on descriptors kept open from
 * its first read (memory.stat and PSI every slow_every cycles);
 * /proc/net/dev is read once for every tap and the host's interfaces.
 * Parsing (cgroup_parse.c) allocates nothing.
 *
 * Identity: the QEMU process in the cgroup (its cgroup.procs, or a child's:
 * libvirt puts the threads in emulator/ and vcpuN/) gives -uuid, -name
 * guest=, -smp, -m and the NICs' MACs; its /proc/PID/fdinfo gives the tap
 * names (iff:). Without a QEMU command line, a UUID inside the scope's name
 * is the resource (kata-<uuid>.scope); a cgroup with neither is not read
 * (said once). Tenants, users, flavors and labels come from a mapping file
 * in the libvirt collector's format (mapping.h).
 *
 * Lifecycle: the cgroups present at the first read started before we
 * watched (their counters are baselines, rule 3); one that appears later
 * started since the previous read, so its counters count from zero from
 * then (a tap that was already there before the VM is a baseline: an
 * unmanaged tap keeps counting across its VM's restarts). On a v2 tree a
 * thread watches each cgroup.events and reads cpu.stat and io.stat as the
 * last process leaves, before the cgroup (and its counters) is removed:
 * the final reading, at that instant (rule 4). Without that, a cgroup that
 * is gone (no longer listed, its directory replaced, or its files gone
 * between the listing and the read) stopped: its last readings are
 * repeated 1 ns after the last read with SAMPLE_F_LAST, so gauges are
 * billed up to the last read and never past it, and the usage since is
 * lost (docs/config.md says what this costs).
 *
 * vm_meters: `bill` sends the VM meters the aggregator bills; `check` (the
 * default when the libvirt collector runs too) sends cpu and the NIC
 * counters with SAMPLE_F_CHECK only, for the aggregator's cross-check, and
 * no metadata or events (libvirt's win); the PSI meters, which no other
 * collector has, are sent in both.
 */
#include "cfg.h"
#include "lifecycle.h"
#include "vec.h"
#include "hash.h"
#include "cgroup_internal.h"
#include "collector.h"
#include "err.h"
#include "mapping.h"
#include "log.h"
#include "str.h"
#include "tallytime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/inotify.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

void (*cg_after_list)(void);

enum { CG_BILL, CG_CHECK, CG_OFF };
/* a hybrid host (systemd's, or libvirt's without systemd on v1): every
 * process is also in a v2 tree without controllers (root/unified), whose
 * cpu.stat and PSI files are there; memory and blkio are v1 hierarchies */
#define CG_HYBRID 3
static const char *const modes[] = { "bill", "check", "off", NULL };

/* the files of one VM's cgroup */
enum cg_file { F_CPU, F_MEM, F_IO, F_IO2, F_PSI_CPU, F_PSI_MEM, F_PSI_IO, F_N };
/* beside descriptors and -errno: */
#define FD_NONE   (-100000)   /* not opened yet */
#define FD_ABSENT (-100001)   /* not there (controller off, no PSI) */

#define CG_MAX_PATTERNS 8
#define CG_REL_MAX 512
#define CG_MAX_DEVS 32

struct cg_nic {
	char ifname[16];
	char dev[18];                /* device label: the guest's MAC, else the tap's own */
	int hint;                    /* its index in the interface table last cycle */
	int ifindex;                 /* at first sight (0: unknown), to tell a 32-bit wrap */
	int64_t origin_ns;           /* counted from zero since (0: a baseline) */
	struct cg_ext ext[4];        /* rx bytes, rx packets, tx bytes, tx packets */
};

struct cg_seen_disk {
	uint32_t major, minor;
	char dev[24];                /* device label: "sda", or "MAJ:MIN" */
	int64_t origin_ns;
};

/* a reading sent last cycle, repeated as the final one when the VM goes */
struct cg_last {
	uint64_t bits;               /* sample.v, as sent */
	int64_t origin_ns;
	uint16_t meter;
	uint8_t kind, flags;
	char device[TALLY_DEV_MAX];
};

/* The watch on a v2 cgroup's cgroup.events: when its last process leaves
 * ("populated 0"), the watcher thread reads its counters at once, before
 * the cgroup is removed (they vanish with it), for the final reading. The
 * watcher owns its descriptors; it and read() share the struct under the
 * collector's lock. */
struct cg_watch {
	int wd;                      /* inotify watch descriptor */
	int ev_fd, cpu_fd, io_fd;    /* cgroup.events, cpu.stat, io.stat (-1: none) */
	bool fired;                  /* the final counters were taken (set last, with release:
					read() may look without the lock) */
	int64_t t_ns;                /* when: the cgroup emptied */
	uint64_t cpu_ns;
	bool have_cpu;
	struct cg_io_dev io[CG_MAX_DEVS];
	int n_io;                    /* -1: none read */
};

struct cg_vm {
	char rel[CG_REL_MAX];        /* its cgroup's path under the root */
	uint64_t ino;                /* of its directory: another inode is another cgroup */
	char uuid[37];
	char name[128];
	int ident;                   /* 0: not yet, 1: known, -1: cannot be told (not read) */
	int fd[F_N];
	struct cg_nic *nics;
	int n_nics;
	struct cg_seen_disk *disks;
	int n_disks;
	size_t cap_disks;
	struct cg_last *last;
	int n_last;
	size_t cap_last;
	uint32_t vcpus;              /* from -smp, 0: unknown */
	uint64_t memory_bytes;       /* from -m, 0: unknown */
	int64_t origin_ns;           /* its cgroup's counters count from zero since (0: baseline) */
	int64_t last_read_ns;        /* 0: never read */
	int listed;                  /* the cycle it was last listed in */
	int refreshed;               /* the cycle its identity and taps were last looked up */
	uint32_t spread;             /* spreads its slow reads and refreshes over the cycles */
	/* the slow files' last values, sent every cycle (see slow_every) */
	double mem_resident;         /* bytes; < 0: none */
	struct cg_psi psi[3];        /* cpu, memory, io */
	uint8_t have_psi;            /* bit k: psi[k] holds a reading */
	bool slow_read;              /* read the slow files at least once */
	bool meta_sent, started_sent;
	bool ended;                  /* its final reading was sent: not read again */
	struct cg_watch *w;          /* NULL: not watched */
};

struct cg_pattern {
	char parent[CG_REL_MAX];     /* "machine.slice" */
	char glob[128];              /* "machine-qemu*.scope" */
	DIR *dir;                    /* the parent, kept open; rewound every cycle */
};

/* a host disk or interface */
struct cg_hostdev {
	char name[32];
	bool iface;
	bool use;                    /* read it (not a partition, loop, lo or a VM's tap) */
	int ifindex;
	struct cg_ext ext[4];
};

struct cg {
	struct sink_status ss;       /* this read's sink refusals (sink.h) */
	char root[PATH_MAX];
	int version;                 /* 1, 2 or CG_HYBRID */
	char v2[PATH_MAX];           /* the v2 tree: root, or root/unified on a hybrid host */
	char v1[3][PATH_MAX];        /* v1: the cpuacct, memory and blkio hierarchies */
	char proc[PATH_MAX], sys[PATH_MAX];
	struct cg_pattern pat[CG_MAX_PATTERNS];
	int n_pat;
	int mode;
	bool host, pressure;
	int refresh;                 /* cycles */
	int slow_every;              /* cycles between reads of memory.stat and the PSI files */
	uint32_t added;              /* VMs ever added (their spread) */
	char mapping_path[PATH_MAX];
	struct mapping mapping;
	char agent[TALLY_ID_MAX];
	long clk_tck;
	int cycle;
	int64_t prev_read_ns;
	struct cg_vm *vm;
	size_t n_vm, cap_vm;
	uint32_t *slot;              /* open addressing by rel: index + 1 into vm */
	size_t mask;
	char *buf;                   /* one file's bytes */
	size_t cap;
	struct cg_netif *ifs, *prev_ifs; /* this cycle's /proc/net/dev, and the last one's */
	int n_ifs, n_prev_ifs, cap_ifs;
	uint8_t *claimed;            /* parallel to ifs: a VM's tap (not the host's) this cycle */
	int fd_netdev, fd_stat, fd_meminfo, fd_diskstats, fd_psi[3];
	struct cg_disk *disks;
	size_t cap_disks;
	struct cg_hostdev *hd;
	size_t n_hd, cap_hd;
	uint32_t *hd_slot;           /* open addressing by name: index + 1 into hd */
	size_t hd_mask;
	bool host_meta_sent;
	struct complaint c_list, c_read, c_parse, c_ident, c_gone, c_host, c_mem, c_watch;
	/* the watcher (v2 trees, `bill`): final readings as cgroups empty */
	int ino_fd, stop_fd[2];
	bool watching;
	pthread_t thr;
	pthread_mutex_t lock;        /* the watches */
	struct cg_watch **w;
	size_t n_w, cap_w;
	/* figures */
	uint64_t reads, vm_reads, vanished, unidentified, parse_errors, finals;
};

/* ---- small helpers ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = hash_fnv64_str(HASH_FNV64_INIT, s);
	return h ^ (h >> 31);
}

/* All of fd's bytes into s->buf (grown when a file does not fit); its
 * length, or -errno. One pread: a short read of a proc, sysfs or cgroup
 * file (seq_file) or a regular file is its end. */
static ssize_t pread_all(struct cg *s, int fd)
{
	for (;;) {
		ssize_t n = pread(fd, s->buf, s->cap, 0);
		if (n < 0)
			return -errno;
		if ((size_t)n < s->cap)
			return n;
		if (s->cap >= (64u << 20))
			return -EFBIG;
		char *b = realloc(s->buf, s->cap * 2);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap *= 2;
	}
}

/* A small file read once (open, read, close) into s->buf: its length or -errno. */
static ssize_t read_once(struct cg *s, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread_all(s, fd);
	close(fd);
	return n;
}

/* ---- the watcher: a cgroup's last counters as its last process leaves ---- */

/* Take w's final counters if its cgroup is empty (under s->lock). */
static void watch_fire(struct cg_watch *w)
{
	char b[4096];
	struct tally_err e = { 0 };
	bool populated = true;
	ssize_t n = pread(w->ev_fd, b, sizeof(b), 0);
	if (n <= 0 || cg_parse_events(b, (size_t)n, &populated, &e) || populated)
		return;
	w->t_ns = time_now_ns();
	static const char *const k[] = { "usage_usec" };
	uint64_t us;
	uint32_t found;
	if ((n = pread(w->cpu_fd, b, sizeof(b), 0)) > 0 && !cg_parse_keyed(b, (size_t)n, 0, k, 1, &us, &found, &e) &&
	    found && us <= UINT64_MAX / 1000) {
		w->cpu_ns = us * 1000;
		w->have_cpu = true;
	}
	int skipped;
	w->n_io = -1;
	if (w->io_fd >= 0 && (n = pread(w->io_fd, b, sizeof(b), 0)) >= 0 &&
	    cg_parse_io_stat(b, (size_t)n, w->io, CG_MAX_DEVS, &w->n_io, &skipped, &e))
		w->n_io = -1;
	__atomic_store_n(&w->fired, true, __ATOMIC_RELEASE);
}

static void *watch_loop(void *arg)
{
	struct cg *s = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p[2] = { { .fd = s->ino_fd, .events = POLLIN }, { .fd = s->stop_fd[0], .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		ssize_t n = read(s->ino_fd, buf, sizeof(buf));
		for (char *q = buf; n > 0 && q < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)q;
			pthread_mutex_lock(&s->lock);
			for (size_t i = 0; i < s->n_w; i++)
				if (s->w[i]->wd == ev->wd && !s->w[i]->fired)
					watch_fire(s->w[i]);
			pthread_mutex_unlock(&s->lock);
			q += sizeof(*ev) + ev->len;
		}
	}
	return NULL;
}

static void watch_start(struct cg *s)
{
	if (pthread_mutex_init(&s->lock, NULL))
		return;
	int rc = 0;
	if ((s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 || pipe2(s->stop_fd, O_CLOEXEC) ||
	    (rc = pthread_create(&s->thr, NULL, watch_loop, s))) {
		log_msg(LOG_WARN, "cgroup: cannot watch cgroups for their last readings (%s): a stopping VM's"
			" readings end at the last read", strerror(rc ? rc : errno));
		for (int i = 0; i < 2; i++)
			if (s->stop_fd[i] >= 0)
				close(s->stop_fd[i]);
		if (s->ino_fd >= 0)
			close(s->ino_fd);
		s->ino_fd = s->stop_fd[0] = s->stop_fd[1] = -1;
		pthread_mutex_destroy(&s->lock);
		return;
	}
	s->watching = true;
}

/* Watch v's cgroup.events (its cpu.stat is open). */
static void watch_add(struct cg *s, struct cg_vm *v, const char *base)
{
	char p[PATH_MAX];
	struct cg_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	w->ev_fd = w->cpu_fd = w->io_fd = -1;
	snprintf(p, sizeof(p), "%s/%s/cgroup.events", base, v->rel);
	if ((w->ev_fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || (w->cpu_fd = dup(v->fd[F_CPU])) < 0 ||
	    (w->wd = inotify_add_watch(s->ino_fd, p, IN_MODIFY)) < 0)
		goto fail;
	if (v->fd[F_IO] >= 0 && s->version == 2)
		w->io_fd = dup(v->fd[F_IO]);
	pthread_mutex_lock(&s->lock);
	if (vec_reserve((void **)&s->w, &s->cap_w, s->n_w + 1, sizeof(*s->w), 8)) {
		pthread_mutex_unlock(&s->lock);
		inotify_rm_watch(s->ino_fd, w->wd);
		goto fail;
	}
	s->w[s->n_w++] = w;
	watch_fire(w);   /* emptied before the watch began */
	pthread_mutex_unlock(&s->lock);
	v->w = w;
	return;
fail:
	complain(&s->c_watch, LOG_INFO, "cgroup: cannot watch %s: %s; its readings end at its last read", p,
		 strerror(errno));
	if (w->ev_fd >= 0)
		close(w->ev_fd);
	if (w->cpu_fd >= 0)
		close(w->cpu_fd);
	free(w);
}

static void watch_del(struct cg *s, struct cg_watch *w)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_w; i++)
		if (s->w[i] == w) {
			s->w[i] = s->w[--s->n_w];
			break;
		}
	pthread_mutex_unlock(&s->lock);
	inotify_rm_watch(s->ino_fd, w->wd); /* already gone with its cgroup: harmless */
	close(w->ev_fd);
	close(w->cpu_fd);
	if (w->io_fd >= 0)
		close(w->io_fd);
	free(w);
}

/* ---- config ---- */

static const char *const cg_keys[] = { "root", "version", "scopes", "proc", "sys", "mapping", "vm_meters",
				       "host", "pressure", "refresh", "slow_every", NULL };

static int add_pattern(struct cg *s, const struct cfg_node *n, const char *text, struct tally_err *e)
{
	const char *slash = strrchr(text, '/');
	const char *glob = slash ? slash + 1 : text;
	size_t plen = slash ? (size_t)(slash - text) : 0;
	if (s->n_pat == CG_MAX_PATTERNS)
		return err_set(e, -ERANGE, "%s:%d:%d: key 'scopes': more than %d patterns", n->file, n->line, n->col,
			       CG_MAX_PATTERNS);
	if (!*glob || plen >= sizeof(s->pat[0].parent) || strlen(glob) >= sizeof(s->pat[0].glob) ||
	    strpbrk(text, "*?[") < glob || strstr(text, "..") || text[0] == '/')
		return err_set(e, -EINVAL, "%s:%d:%d: key 'scopes': '%s' must be a relative path whose last"
			       " part only may hold wildcards (machine.slice/machine-qemu*.scope)", n->file, n->line,
			       n->col, text);
	struct cg_pattern *p = &s->pat[s->n_pat++];
	memcpy(p->parent, text, plen);
	p->parent[plen] = '\0';
	str_copy(p->glob, glob, sizeof(p->glob));
	return 0;
}

static int cg_configure(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			struct tally_err *e)
{
	struct cg *s = calloc(1, sizeof(*s));
	uint64_t v;
	int rc, mode = -1;
	char ver[8] = "auto";

	if (!s)
		return -ENOMEM;
	str_copy(s->root, "/sys/fs/cgroup", sizeof(s->root));
	str_copy(s->proc, "/proc", sizeof(s->proc));
	str_copy(s->sys, "/sys", sizeof(s->sys));
	str_copy(s->agent, env->agent_id ? env->agent_id : "localhost", sizeof(s->agent));
	s->host = s->pressure = true;
	s->refresh = 60;
	s->slow_every = 6;
	s->fd_netdev = s->fd_stat = s->fd_meminfo = s->fd_diskstats = FD_NONE;
	s->fd_psi[0] = s->fd_psi[1] = s->fd_psi[2] = FD_NONE;
	s->ino_fd = s->stop_fd[0] = s->stop_fd[1] = -1;
	if ((rc = cfg_check_keys(cfg, "collectors.cgroup", cg_keys, e)) ||
	    (rc = cfg_get_string(cfg, "root", s->root, sizeof(s->root), e)) ||
	    (rc = cfg_get_string(cfg, "version", ver, sizeof(ver), e)) ||
	    (rc = cfg_get_string(cfg, "proc", s->proc, sizeof(s->proc), e)) ||
	    (rc = cfg_get_string(cfg, "sys", s->sys, sizeof(s->sys), e)) ||
	    (rc = cfg_get_string(cfg, "mapping", s->mapping_path, sizeof(s->mapping_path), e)) ||
	    (rc = cfg_get_enum(cfg, "vm_meters", modes, &mode, e)) ||
	    (rc = cfg_get_bool(cfg, "host", &s->host, e)) ||
	    (rc = cfg_get_bool(cfg, "pressure", &s->pressure, e)))
		goto fail;
	v = (uint64_t)s->refresh;
	if ((rc = cfg_get_uint(cfg, "refresh", 1, 100000, &v, e)))
		goto fail;
	s->refresh = (int)v;
	v = (uint64_t)s->slow_every;
	if ((rc = cfg_get_uint(cfg, "slow_every", 1, 100000, &v, e)))
		goto fail;
	s->slow_every = (int)v;
	const struct cfg_node *n = cfg_get(cfg, "version");
	if (!strcmp(ver, "1") || !strcmp(ver, "2"))
		s->version = ver[0] - '0';
	else if (!strcmp(ver, "hybrid"))
		s->version = CG_HYBRID;
	else if (strcmp(ver, "auto")) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: key 'version': 1, 2, hybrid or auto expected (got '%s')", n->file,
			     n->line, n->col, ver);
		goto fail;
	}
	if (mode < 0) {
		mode = env->with_libvirt ? CG_CHECK : CG_BILL;
	} else if (mode == CG_BILL && env->with_libvirt) {
		n = cfg_get(cfg, "vm_meters");
		rc = err_set(e, -EINVAL, "%s:%d:%d: key 'vm_meters': 'bill' beside the libvirt collector would bill"
			     " every VM twice; use 'check' (the cross-check) or 'off'", n->file, n->line, n->col);
		goto fail;
	}
	s->mode = mode;
	const struct cfg_node *sc = cfg_get(cfg, "scopes");
	if (sc) {
		if (sc->type != CFG_SEQ || !sc->n_kids) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: key 'scopes': a list of patterns expected", sc->file,
				     sc->line, sc->col);
			goto fail;
		}
		for (size_t i = 0; i < sc->n_kids; i++) {
			const struct cfg_node *k = sc->kids[i];
			if (k->type != CFG_SCALAR) {
				rc = err_set(e, -EINVAL, "%s:%d:%d: key 'scopes': a pattern is a string", k->file,
					     k->line, k->col);
				goto fail;
			}
			if ((rc = add_pattern(s, k, k->value, e)))
				goto fail;
		}
	} else {
		static const struct cfg_node none = { .file = "built-in" };
		/* libvirt with systemd (v1 and v2), and without it */
		if ((rc = add_pattern(s, &none, "machine.slice/machine-qemu*.scope", e)) ||
		    (rc = add_pattern(s, &none, "machine/qemu-*.libvirt-qemu", e)))
			goto fail;
	}
	if (s->mapping_path[0] && (rc = mapping_load(s->mapping_path, &s->mapping, e)))
		goto fail;
	*state = s;
	return 0;
fail:
	free(s);
	return rc;
}

/* ---- where the files are ---- */

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* v1: the directory of the hierarchy that has controller c ("cpuacct"):
 * ROOT/cpuacct, or a combined one (ROOT/cpu,cpuacct). */
static bool v1_hier(const char *root, const char *c, char *out, size_t len)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", root, c);
	bool found = is_dir(p);
	DIR *d = found ? NULL : opendir(root);
	struct dirent *de;
	size_t cl = strlen(c);
	while (d && !found && (de = readdir(d))) {
		const char *q = strstr(de->d_name, c);
		if (q && (q == de->d_name || q[-1] == ',') && (q[cl] == '\0' || q[cl] == ',')) {
			snprintf(p, sizeof(p), "%s/%s", root, de->d_name);
			found = is_dir(p);
		}
	}
	if (d)
		closedir(d);
	if (found)
		str_copy(out, p, len);
	return found;
}

/* The directory the VMs' cgroups are listed in: the v2 tree, or v1's cpuacct. */
static const char *list_root(const struct cg *s)
{
	return s->version == 1 ? s->v1[0] : s->v2;
}

static int cg_init(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct cg *s = state;
	char p[PATH_MAX];
	(void)resume_ns;

	s->clk_tck = sysconf(_SC_CLK_TCK);
	if (s->clk_tck <= 0)
		s->clk_tck = 100;
	snprintf(p, sizeof(p), "%s/cgroup.controllers", s->root);
	char u[PATH_MAX];
	snprintf(u, sizeof(u), "%s/unified/cgroup.procs", s->root);
	if (!s->version)
		s->version = access(p, F_OK) == 0 ? 2 : access(u, F_OK) == 0 ? CG_HYBRID : 1;
	snprintf(s->v2, sizeof(s->v2), "%s%s", s->root, s->version == CG_HYBRID ? "/unified" : "");
	if (s->version != 2 && s->mode != CG_OFF) {
		static const char *const ctl[3] = { "cpuacct", "memory", "blkio" };
		for (int i = 0; i < 3; i++)
			if (!v1_hier(s->root, ctl[i], s->v1[i], sizeof(s->v1[i])))
				s->v1[i][0] = '\0';
		if (s->version == 1 && !s->v1[0][0])
			return err_set(e, -ENOENT, "cgroup: %s is neither a cgroup v2 tree (no cgroup.controllers) nor"
				       " holds a v1 cpuacct hierarchy; set collectors.cgroup.root", s->root);
	}
	s->cap = 65536;
	if (!(s->buf = malloc(s->cap)))
		return -ENOMEM;
	s->mask = 1023;
	if (!(s->slot = calloc(s->mask + 1, sizeof(*s->slot))))
		return -ENOMEM;
	if (s->mode == CG_BILL && s->version != 1)
		watch_start(s);
	/* every VM keeps up to F_N files open: make room, as far as allowed */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (s->mode == CG_OFF)
		log_msg(LOG_INFO, "cgroup: reading the host only (%s)", s->proc);
	else
		log_msg(LOG_INFO, "cgroup: reading %s (cgroup %s), VM meters: %s%s", list_root(s),
			s->version == 1 ? "v1" : s->version == 2 ? "v2" : "v2 without controllers, memory and blkio from v1",
			modes[s->mode], s->host ? ", and the host" : "");
	return 0;
}

/* ---- the VM table ---- */

static void vm_close(struct cg *s, struct cg_vm *v)
{
	if (v->w)
		watch_del(s, v->w);
	for (int f = 0; f < F_N; f++)
		if (v->fd[f] >= 0)
			close(v->fd[f]);
	free(v->nics);
	free(v->disks);
	free(v->last);
}

static struct cg_vm *vm_find(struct cg *s, const char *rel, uint32_t **slotp)
{
	size_t i = (size_t)hash_str(rel) & s->mask;
	for (;; i = (i + 1) & s->mask) {
		uint32_t *sl = &s->slot[i];
		if (!*sl || !strcmp(s->vm[*sl - 1].rel, rel)) {
			if (slotp)
				*slotp = sl;
			return *sl ? &s->vm[*sl - 1] : NULL;
		}
	}
}

static int rehash(struct cg *s)
{
	size_t size = s->mask + 1;
	while (s->n_vm * 2 >= size)
		size *= 2;
	uint32_t *sl = calloc(size, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	free(s->slot);
	s->slot = sl;
	s->mask = size - 1;
	for (size_t k = 0; k < s->n_vm; k++) {
		uint32_t *p;
		vm_find(s, s->vm[k].rel, &p);
		*p = (uint32_t)k + 1;
	}
	return 0;
}

static struct cg_vm *vm_add(struct cg *s, const char *rel, uint64_t ino)
{
	if (vec_reserve((void **)&s->vm, &s->cap_vm, s->n_vm + 1, sizeof(*s->vm), 8))
		return NULL;
	struct cg_vm *v = &s->vm[s->n_vm];
	memset(v, 0, sizeof(*v));
	str_copy(v->rel, rel, sizeof(v->rel));
	v->ino = ino;
	v->spread = s->added++;
	v->mem_resident = -1;
	for (int f = 0; f < F_N; f++)
		v->fd[f] = FD_NONE;
	s->n_vm++;
	if ((s->n_vm + 1) * 2 > s->mask + 1) {
		if (rehash(s)) {
			s->n_vm--;
			return NULL;
		}
	} else {
		uint32_t *p;
		vm_find(s, rel, &p);
		*p = (uint32_t)s->n_vm;
	}
	return v;
}

/* ---- emitting ---- */

struct emit {
	struct cg *s;
	const struct sink *sink;
	struct cg_vm *v;             /* NULL for the host */
	struct sample smp;
};

static void put(struct emit *x, int meter, const char *dev, uint8_t kind, uint64_t counter, double gauge,
		int64_t origin_ns, uint8_t flags)
{
	struct sample *m = &x->smp;
	m->meter = (uint16_t)meter;
	m->kind = kind;
	m->flags = flags;
	m->origin_ns = origin_ns;
	if (kind == SAMPLE_GAUGE)
		m->v.gauge = gauge;
	else
		m->v.counter = counter;
	str_copy(m->device, dev, sizeof(m->device));
	sink_note(&x->s->ss, x->sink->sample(x->sink->ctx, NULL, m));
	struct cg_vm *v = x->v;
	/* kept for a final reading, which only `bill` sends */
	if (!v || x->s->mode != CG_BILL || vec_reserve((void **)&v->last, &v->cap_last, (size_t)v->n_last + 1, sizeof(*v->last), 8))
		return;
	struct cg_last *l = &v->last[v->n_last++];
	memcpy(&l->bits, &m->v, sizeof(l->bits));
	l->origin_ns = origin_ns;
	l->meter = (uint16_t)meter;
	l->kind = kind;
	l->flags = flags;
	memcpy(l->device, m->device, sizeof(l->device));
}

static void put_c(struct emit *x, int meter, const char *dev, uint64_t v, int64_t origin_ns)
{
	put(x, meter, dev, SAMPLE_CUMULATIVE, v, 0, origin_ns, 0);
}

static void put_g(struct emit *x, int meter, const char *dev, double v)
{
	put(x, meter, dev, SAMPLE_GAUGE, 0, v, 0, 0);
}

/* ---- identity ---- */

/* The first PID in the cgroup at dir or in a child of it (libvirt keeps
 * the threads in emulator/ and vcpuN/), two levels down at most: 0 or -errno. */
static int find_pid(struct cg *s, const char *dir, int depth, int *pid)
{
	char p[PATH_MAX];
	struct tally_err e = { 0 };
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	ssize_t n = read_once(s, p);
	if (n < 0)
		return (int)n;
	if (cg_parse_first_pid(s->buf, (size_t)n, pid, &e) == 0)
		return 0;
	if (depth == 0)
		return -ENOENT;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int rc = -ENOENT;
	while (rc && (de = readdir(d))) {
		if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (is_dir(p))
			rc = find_pid(s, p, depth - 1, pid);
	}
	closedir(d);
	return rc;
}

static int read_sys_int(struct cg *s, const char *ifname, const char *file)
{
	char p[PATH_MAX];
	uint64_t v;
	struct tally_err e = { 0 };
	snprintf(p, sizeof(p), "%s/class/net/%s/%s", s->sys, ifname, file);
	ssize_t n = read_once(s, p);
	return n > 0 && cg_parse_u64(s->buf, (size_t)n, &v, &e) == 0 && v <= INT32_MAX ? (int)v : 0;
}

/* A tap of the VM: its device label is the guest MAC whose last five
 * bytes are the tap's (libvirt gives a tap the guest's MAC with 0xfe in
 * front), else the tap's own MAC, else its name. */
static void add_nic(struct cg *s, struct cg_vm *v, struct cg_nic *nics, int *n, const char *ifname,
		    const struct cg_qemu *q, int64_t origin_ns)
{
	char p[PATH_MAX];
	uint8_t tm[6], gm[6];
	for (int i = 0; i < *n; i++)
		if (!strcmp(nics[i].ifname, ifname))
			return;
	if (*n == CG_MAX_NICS)
		return;
	struct cg_nic *c = &nics[(*n)++];
	memset(c, 0, sizeof(*c));
	str_copy(c->ifname, ifname, sizeof(c->ifname));
	str_copy(c->dev, ifname, sizeof(c->dev));
	c->hint = -1;
	c->origin_ns = origin_ns;
	/* a NIC v had before keeps its counters (a refresh finds it again) */
	for (int i = 0; i < v->n_nics; i++)
		if (!strcmp(v->nics[i].ifname, ifname)) {
			*c = v->nics[i];
			return;
		}
	c->ifindex = read_sys_int(s, ifname, "ifindex");
	snprintf(p, sizeof(p), "%s/class/net/%s/address", s->sys, ifname);
	ssize_t len = read_once(s, p);
	if (len >= 17) {
		char a[18];
		memcpy(a, s->buf, 17);
		a[17] = '\0';
		if (cg_parse_mac(a, tm)) {
			snprintf(c->dev, sizeof(c->dev), "%02x:%02x:%02x:%02x:%02x:%02x", tm[0], tm[1], tm[2], tm[3],
				 tm[4], tm[5]);
			int match = -1, count = 0;
			for (int i = 0; q && i < q->n_macs; i++)
				if (cg_parse_mac(q->macs[i], gm) && !memcmp(gm + 1, tm + 1, 5)) {
					match = i;
					count++;
				}
			if (count == 1)
				str_copy(c->dev, q->macs[match], sizeof(c->dev));
		}
	}
}

/* out = labels ("k=v,k=v" sorted by key) with source=src in its sorted
 * place, as the libvirt collector marks where a VM's metadata came from. */
static void labels_source(char *out, size_t len, const char *labels, const char *src)
{
	size_t used = 0;
	bool put = false;
	out[0] = '\0';
	for (const char *p = labels; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (!put && strncmp(p, "source=", 7) > 0) {
			used += (size_t)snprintf(out + used, used < len ? len - used : 0, "%ssource=%s", used ? "," : "", src);
			put = true;
		}
		if (used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? "," : "", (int)n, p);
		p += n + (comma ? 1 : 0);
	}
	if (!put && used < len)
		snprintf(out + used, len - used, "%ssource=%s", used ? "," : "", src);
}

/* Was interface name in /proc/net/dev at the previous read? */
static bool was_there(const struct cg *s, const char *name)
{
	for (int i = 0; i < s->n_prev_ifs; i++)
		if (!strcmp(s->prev_ifs[i].name, name))
			return true;
	return false;
}

/* Who the VM is (once), and its taps (every refresh). Returns 0, or -1
 * when it cannot be read now (its process is not there yet, or it has no
 * identity at all: v->ident = -1). */
static int identify(struct cg *s, struct cg_vm *v, const char *dir, const struct sink *sink, int64_t now_ns)
{
	struct cg_qemu q;
	struct tally_err e = { 0 };
	char p[PATH_MAX];
	int pid = 0, rc;

	memset(&q, 0, sizeof(q));
	v->refreshed = s->cycle;
	if ((rc = find_pid(s, dir, 2, &pid)) == 0) {
		snprintf(p, sizeof(p), "%s/%d/cmdline", s->proc, pid);
		ssize_t n = read_once(s, p);
		if (n > 0 && cg_parse_qemu_cmdline(s->buf, (size_t)n, &q, &e)) {
			complain(&s->c_ident, LOG_WARN, "cgroup: %s: %s; identified by its scope's name instead", p,
				 e.msg);
			memset(&q, 0, sizeof(q));
		}
	}
	if (!v->ident) {
		const char *leaf = strrchr(v->rel, '/');
		leaf = leaf ? leaf + 1 : v->rel;
		if (q.uuid[0])
			str_copy(v->uuid, q.uuid, sizeof(v->uuid));
		else if (!cg_find_uuid(leaf, v->uuid)) {
			if (rc == -ENOENT && !pid)
				return -1; /* no process yet: a scope being set up; asked again next cycle */
			v->ident = -1;
			s->unidentified++;
			complain(&s->c_ident, LOG_WARN, "cgroup: %s/%s: no QEMU -uuid in its process and no UUID in"
				 " its name: not read (give it a mapping or a UUID in its scope name)", list_root(s),
				 v->rel);
			return -1;
		}
		str_copy(v->name, q.name[0] ? q.name : leaf, sizeof(v->name));
		v->vcpus = q.vcpus;
		v->memory_bytes = q.memory_bytes;
		v->ident = 1;
	}
	/* taps: named on the command line, or held by the process */
	struct cg_nic nics[CG_MAX_NICS];
	int nn = 0;
	int64_t org = s->cycle > 1 ? s->prev_read_ns : 0;
	for (int i = 0; i < q.n_ifnames; i++)
		add_nic(s, v, nics, &nn, q.ifnames[i], &q, was_there(s, q.ifnames[i]) ? 0 : org);
	if (pid) {
		snprintf(p, sizeof(p), "%s/%d/fdinfo", s->proc, pid);
		DIR *d = opendir(p);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			char f[PATH_MAX], name[16];
			if (de->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
			ssize_t n = read_once(s, f);
			if (n > 0 && cg_parse_fdinfo_iff(s->buf, (size_t)n, name, sizeof(name)) == 0)
				add_nic(s, v, nics, &nn, name, &q, was_there(s, name) ? 0 : org);
		}
		if (d)
			closedir(d);
	}
	if (nn || !v->n_nics) {
		struct cg_nic *c = nn ? malloc((size_t)nn * sizeof(*c)) : NULL;
		if (nn && !c)
			return 0; /* keep the old list */
		if (nn)
			memcpy(c, nics, (size_t)nn * sizeof(*c));
		free(v->nics);
		v->nics = c;
		v->n_nics = nn;
	}
	if (s->mode == CG_BILL && !v->meta_sent) {
		struct resource_meta m;
		memset(&m, 0, sizeof(m));
		m.time_ns = now_ns;
		str_copy(m.resource, v->uuid, sizeof(m.resource));
		str_copy(m.type, "instance", sizeof(m.type));
		str_copy(m.name, v->name, sizeof(m.name));
		const struct mapping_rule *r = mapping_match(&s->mapping, v->uuid, v->name);
		if (r) {
			str_copy(m.tenant, r->tenant, sizeof(m.tenant));
			str_copy(m.project, r->tenant, sizeof(m.project));
			str_copy(m.user, r->user, sizeof(m.user));
			str_copy(m.flavor, r->flavor, sizeof(m.flavor));
		}
		labels_source(m.labels, sizeof(m.labels), r ? r->labels : "", r ? "mapping" : "cgroup");
		sink_note(&s->ss, sink->meta(sink->ctx, NULL, &m));
		v->meta_sent = true;
	}
	return 0;
}

/* ---- one VM's reading ---- */

static const char *const v2_files[F_N] = { "cpu.stat", "memory.stat", "io.stat", NULL, "cpu.pressure",
					   "memory.pressure", "io.pressure" };
static const char *const v1_files[F_N] = { "cpuacct.usage", "memory.stat",
					   "blkio.throttle.io_service_bytes_recursive",
					   "blkio.throttle.io_serviced_recursive", NULL, NULL, NULL };

/* Whether file f is read from the v2 tree (in its v2 form): always on v2;
 * on a hybrid host the cpu and PSI files (memory and blkio are v1's). */
static bool in_v2(const struct cg *s, int f)
{
	return s->version == 2 || (s->version == CG_HYBRID && (f == F_CPU || f >= F_PSI_CPU));
}

static const char *file_name(const struct cg *s, int f)
{
	return in_v2(s, f) ? v2_files[f] : v1_files[f];
}

static const char *file_base(const struct cg *s, int f)
{
	return in_v2(s, f) ? s->v2 : s->v1[f == F_CPU ? 0 : f == F_MEM ? 1 : 2];
}

/* The open descriptor of file f of v; -ENOENT/-EACCES/... when it cannot
 * be opened; FD_ABSENT when the file is not there (and the cgroup is). */
static int vm_fd(struct cg *s, struct cg_vm *v, int f)
{
	if (v->fd[f] >= 0 || v->fd[f] == FD_ABSENT)
		return v->fd[f];
	const char *name = file_name(s, f), *base = file_base(s, f);
	if (!name || !base[0] || (!s->pressure && f >= F_PSI_CPU))
		return v->fd[f] = FD_ABSENT;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s/%s", base, v->rel, name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return v->fd[f] = fd;
	int err = errno;
	if (err == ENOENT && f != F_CPU) {
		/* a file missing beside a directory that is there: this
		 * controller is not on for the VM (v2 subtree_control) */
		snprintf(p, sizeof(p), "%s/%s", base, v->rel);
		if (is_dir(p))
			return v->fd[f] = FD_ABSENT;
	}
	if (err == EMFILE || err == ENFILE)
		complain(&s->c_read, LOG_WARN, "cgroup: out of file descriptors opening %s/%s/%s (raise"
			 " LimitNOFILE: each VM keeps %d open)", base, v->rel, name, F_N);
	return -err;
}

/* Read file f of v into s->buf: its length, 0 with nothing when the file
 * is absent, or -errno (-ENODEV/-ENOENT: the cgroup is gone). Any other
 * failure (a permission, an I/O error) is said once per back-off window. */
static ssize_t vm_read(struct cg *s, struct cg_vm *v, int f)
{
	int fd = vm_fd(s, v, f);
	ssize_t n = fd;
	if (fd == FD_ABSENT)
		return 0;
	if (fd >= 0 && (n = pread_all(s, fd)) < 0 && (n == -ENODEV || n == -ENOENT)) {
		close(fd);
		v->fd[f] = FD_NONE;
	}
	if (n < 0 && n != -ENODEV && n != -ENOENT)
		complain(&s->c_read, LOG_WARN, "cgroup: %s/%s/%s: %s", file_base(s, f), v->rel, file_name(s, f),
			 strerror((int)-n));
	return n;
}

/* "PATH:L:C: what" from a parser's "line L col C: what". */
static void placed(char *out, size_t len, const char *path, const char *msg)
{
	int line, col, at = 0;
	if (sscanf(msg, "line %d col %d: %n", &line, &col, &at) == 2 && at > 0)
		snprintf(out, len, "%s:%d:%d: %s", path, line, col, msg + at);
	else
		snprintf(out, len, "%s: %s", path, msg);
}

static void parse_failed(struct cg *s, struct cg_vm *v, int f, struct tally_err *pe)
{
	char path[PATH_MAX], msg[PATH_MAX + 600];
	snprintf(path, sizeof(path), "%s/%s/%s", file_base(s, f), v->rel, file_name(s, f));
	placed(msg, sizeof(msg), path, pe->msg);
	s->parse_errors++;
	complain(&s->c_parse, LOG_WARN, "cgroup: %s; that file of the VM is not read this cycle", msg);
}

/* A parse error of a /proc file, said once per back-off window. */
static void proc_failed(struct cg *s, const char *name, struct tally_err *pe)
{
	char path[PATH_MAX], msg[PATH_MAX + 600];
	snprintf(path, sizeof(path), "%s/%s", s->proc, name);
	placed(msg, sizeof(msg), path, pe->msg);
	s->parse_errors++;
	complain(&s->c_host, LOG_WARN, "cgroup: %s; not read this cycle", msg);
}

/* The device label of block device maj:min of v, and the origin of its
 * counters: a device first seen now began counting since v's previous read. */
static const struct cg_seen_disk *disk_of(struct cg *s, struct cg_vm *v, uint32_t maj, uint32_t min)
{
	for (int i = 0; i < v->n_disks; i++)
		if (v->disks[i].major == maj && v->disks[i].minor == min)
			return &v->disks[i];
	if (v->n_disks >= CG_MAX_DEVS || vec_reserve((void **)&v->disks, &v->cap_disks, (size_t)v->n_disks + 1, sizeof(*v->disks), 8))
		return NULL;
	struct cg_seen_disk *d = &v->disks[v->n_disks++];
	d->major = maj;
	d->minor = min;
	d->origin_ns = v->last_read_ns ? v->last_read_ns : v->origin_ns;
	snprintf(d->dev, sizeof(d->dev), "%u:%u", maj, min);
	char p[PATH_MAX], t[PATH_MAX];
	snprintf(p, sizeof(p), "%s/dev/block/%u:%u", s->sys, maj, min);
	ssize_t n = readlink(p, t, sizeof(t) - 1);
	if (n > 0) {
		t[n] = '\0';
		const char *b = strrchr(t, '/');
		str_copy(d->dev, b ? b + 1 : t, sizeof(d->dev));
	}
	return d;
}

/* The interface named name in this cycle's table, found from hint first. */
static const struct cg_netif *iface(struct cg *s, const char *name, int *hint)
{
	/* the order of /proc/net/dev is the order interfaces were made in:
	 * one made or removed since last cycle moves the others by one */
	for (int d = 0; d < 3; d++) {
		int i = *hint + (d == 2 ? -1 : d);
		if (i >= 0 && i < s->n_ifs && !strcmp(s->ifs[i].name, name)) {
			*hint = i;
			s->claimed[i] = 1;
			return &s->ifs[i];
		}
	}
	for (int i = 0; i < s->n_ifs; i++)
		if (!strcmp(s->ifs[i].name, name)) {
			*hint = i;
			s->claimed[i] = 1;
			return &s->ifs[i];
		}
	return NULL;
}

/* The 64-bit value of counter k of an interface, a 32-bit wrap told from
 * a new interface by its ifindex (read again only when a counter fell). */
static uint64_t extend(struct cg *s, struct cg_ext *x, int *ifindex, const char *name, uint64_t raw)
{
	bool same = false;
	if (x->have && raw < x->last_raw) {
		int now = read_sys_int(s, name, "ifindex");
		same = now && now == *ifindex;
		*ifindex = now;
	}
	return cg_counter_extend(x, raw, same);
}

/* One VM: 1 when read, 0 when it is gone (its files went between the
 * listing and now), -1 when it could not be read this cycle. */
static int read_vm(struct cg *s, struct cg_vm *v, const struct sink *sink, int64_t now_ns)
{
	struct tally_err pe = { 0 };
	ssize_t n;
	bool check = s->mode == CG_CHECK;
	struct emit x = { .s = s, .sink = sink, .v = v };
	int64_t org = v->origin_ns;

	/* cpu first: it tells whether the cgroup is still there */
	if ((n = vm_read(s, v, F_CPU)) < 0)
		return n == -ENOENT || n == -ENODEV ? 0 : -1;
	str_copy(x.smp.resource, v->uuid, sizeof(x.smp.resource));
	x.smp.time_ns = now_ns;
	v->n_last = 0;
	uint64_t cpu_ns = 0;
	bool have_cpu = false;
	if (in_v2(s, F_CPU)) {
		static const char *const k[] = { "usage_usec" };
		uint32_t found;
		uint64_t us;
		if (cg_parse_keyed(s->buf, (size_t)n, 0, k, 1, &us, &found, &pe))
			parse_failed(s, v, F_CPU, &pe);
		else if (found && us <= UINT64_MAX / 1000) {
			cpu_ns = us * 1000;
			have_cpu = true;
		}
	} else if (cg_parse_u64(s->buf, (size_t)n, &cpu_ns, &pe)) {
		parse_failed(s, v, F_CPU, &pe);
	} else {
		have_cpu = true;
	}
	if (have_cpu)
		put(&x, M_CPU, "", SAMPLE_CUMULATIVE, cpu_ns, 0, org, check ? SAMPLE_F_CHECK : 0);
	/* memory.stat (the dearest file: the kernel sums every counter of the
	 * memcg) and the PSI files change slowly or are QoS counters: read
	 * every slow_every cycles, the last values sent every cycle */
	bool slow = !v->slow_read || (s->cycle + (int)(v->spread % (uint32_t)s->slow_every)) % s->slow_every == 0;
	v->slow_read = true;
	if (!check) {
		if (slow && (n = vm_read(s, v, F_MEM)) >= 0) {
			static const char *const k2[] = { "anon", "file" }, *const k1[] = { "total_rss", "total_cache" };
			uint64_t m[2];
			uint32_t found = 0;
			v->mem_resident = -1;
			if (n > 0 && cg_parse_keyed(s->buf, (size_t)n, 0, in_v2(s, F_MEM) ? k2 : k1, 2, m, &found, &pe))
				parse_failed(s, v, F_MEM, &pe);
			else if (found == 3)
				v->mem_resident = (double)m[0] + (double)m[1];
		}
		if (v->mem_resident >= 0)
			put_g(&x, M_MEMORY_RESIDENT, "", v->mem_resident);
		struct cg_io_dev io[CG_MAX_DEVS];
		int nio = 0, skipped = 0, bad = 0;
		for (int f = F_IO; f <= F_IO2; f++) {
			if ((n = vm_read(s, v, f)) <= 0)
				continue;
			int rc = in_v2(s, F_IO) ? cg_parse_io_stat(s->buf, (size_t)n, io, CG_MAX_DEVS, &nio, &skipped, &pe)
				 : cg_parse_blkio_v1(s->buf, (size_t)n, f == F_IO, io, CG_MAX_DEVS, &nio, &skipped, &pe);
			if (rc) {
				parse_failed(s, v, f, &pe);
				bad = 1;
			}
		}
		for (int i = 0; !bad && i < nio; i++) {
			const struct cg_seen_disk *d = disk_of(s, v, io[i].major, io[i].minor);
			if (!d)
				continue;
			if (io[i].have & CG_IO_RBYTES)
				put_c(&x, M_DISK_READ_BYTES, d->dev, io[i].rbytes, d->origin_ns);
			if (io[i].have & CG_IO_WBYTES)
				put_c(&x, M_DISK_WRITE_BYTES, d->dev, io[i].wbytes, d->origin_ns);
			if (io[i].have & CG_IO_RIOS)
				put_c(&x, M_DISK_READ_REQUESTS, d->dev, io[i].rios, d->origin_ns);
			if (io[i].have & CG_IO_WIOS)
				put_c(&x, M_DISK_WRITE_REQUESTS, d->dev, io[i].wios, d->origin_ns);
		}
		put_g(&x, M_INSTANCE, "", 1);
		if (v->vcpus)
			put_g(&x, M_VCPUS, "", v->vcpus);
		if (v->memory_bytes)
			put_g(&x, M_MEMORY, "", (double)v->memory_bytes);
	}
	static const int psi_m[3][2] = { { M_PSI_CPU_SOME, M_PSI_CPU_FULL }, { M_PSI_MEMORY_SOME, M_PSI_MEMORY_FULL },
					 { M_PSI_IO_SOME, M_PSI_IO_FULL } };
	for (int k = 0; k < 3; k++) {
		if (slow && (n = vm_read(s, v, F_PSI_CPU + k)) >= 0) {
			v->have_psi &= (uint8_t)~(1u << k);
			if (n > 0 && cg_parse_psi(s->buf, (size_t)n, &v->psi[k], &pe))
				parse_failed(s, v, F_PSI_CPU + k, &pe);
			else if (n > 0)
				v->have_psi |= (uint8_t)(1u << k);
		}
		if (!(v->have_psi & (1u << k)))
			continue;
		put_c(&x, psi_m[k][0], "", v->psi[k].some_us * 1000, org);
		if (v->psi[k].have_full)
			put_c(&x, psi_m[k][1], "", v->psi[k].full_us * 1000, org);
	}
	static const int net_m[4] = { M_NET_OUT_BYTES, M_NET_OUT_PACKETS, M_NET_IN_BYTES, M_NET_IN_PACKETS };
	for (int i = 0; i < v->n_nics; i++) {
		struct cg_nic *c = &v->nics[i];
		const struct cg_netif *f = iface(s, c->ifname, &c->hint);
		if (!f)
			continue; /* the tap is gone (its VM is stopping) */
		/* the host's rx is what the guest sent: network.outgoing */
		const uint64_t raw[4] = { f->rx_bytes, f->rx_packets, f->tx_bytes, f->tx_packets };
		for (int k = 0; k < 4; k++)
			put(&x, net_m[k], c->dev, SAMPLE_CUMULATIVE, extend(s, &c->ext[k], &c->ifindex, c->ifname, raw[k]), 0,
			    c->origin_ns, check ? SAMPLE_F_CHECK : 0);
	}
	v->last_read_ns = now_ns;
	s->vm_reads++;
	return 1;
}

/* Rule 4 as far as a cgroup allows: v stopped. When the watcher caught
 * its cgroup emptying, its last readings are repeated at that instant with
 * the counters the watcher read then (cpu, and disks on v2: the tail since
 * the last read is billed); otherwise 1 ns after the last read, as they
 * were. SAMPLE_F_LAST, and a stop said at that instant. */
static void vm_gone(struct cg *s, struct cg_vm *v, const struct sink *sink, const char *why)
{
	if (v->ended)
		return;
	v->ended = true;
	s->vanished++;
	if (s->mode != CG_BILL || v->ident != 1 || !v->last_read_ns)
		return;
	int64_t t = v->last_read_ns + 1;
	struct cg_watch w = { .n_io = -1 };
	if (v->w) {
		pthread_mutex_lock(&s->lock);
		if (v->w->fired && v->w->t_ns > v->last_read_ns) {
			w = *v->w;
			t = w.t_ns;
			why = "cgroup-emptied";
			s->finals++;
		}
		pthread_mutex_unlock(&s->lock);
	}
	for (int i = 0; i < v->n_last; i++) {
		const struct cg_last *l = &v->last[i];
		struct sample f;
		memset(&f, 0, sizeof(f));
		f.time_ns = t;
		f.origin_ns = l->origin_ns;
		memcpy(&f.v, &l->bits, sizeof(f.v));
		if (l->meter == M_CPU && w.have_cpu && w.cpu_ns >= f.v.counter)
			f.v.counter = w.cpu_ns;
		for (int k = 0; k < w.n_io && l->meter >= M_DISK_READ_BYTES && l->meter <= M_DISK_WRITE_REQUESTS; k++) {
			const struct cg_seen_disk *d = NULL;
			for (int j = 0; j < v->n_disks && !d; j++)
				if (v->disks[j].major == w.io[k].major && v->disks[j].minor == w.io[k].minor &&
				    !strcmp(v->disks[j].dev, l->device))
					d = &v->disks[j];
			if (!d)
				continue;
			uint64_t x = l->meter == M_DISK_READ_BYTES ? w.io[k].rbytes : l->meter == M_DISK_WRITE_BYTES ?
				     w.io[k].wbytes : l->meter == M_DISK_READ_REQUESTS ? w.io[k].rios : w.io[k].wios;
			if (x >= f.v.counter)
				f.v.counter = x;
		}
		f.meter = l->meter;
		f.kind = l->kind;
		f.flags = l->flags | SAMPLE_F_LAST;
		str_copy(f.resource, v->uuid, sizeof(f.resource));
		memcpy(f.device, l->device, sizeof(f.device));
		sink_note(&s->ss, sink->sample(sink->ctx, NULL, &f));
	}
	struct lifecycle_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.time_ns = t;
	str_copy(ev.resource, v->uuid, sizeof(ev.resource));
	str_copy(ev.type, lifecycle_name(LIFECYCLE_STOPPED), sizeof(ev.type));
	str_copy(ev.reason, why, sizeof(ev.reason));
	sink_note(&s->ss, sink->event(sink->ctx, NULL, &ev));
}

/* ---- listing ---- */

/* Mark every cgroup matching the patterns as listed this cycle; a new one
 * (or one whose directory was replaced) gets a fresh entry. */
static int list_vms(struct cg *s, const struct sink *sink)
{
	char rel[CG_REL_MAX];
	int any = 0;
	for (int i = 0; i < s->n_pat; i++) {
		struct cg_pattern *p = &s->pat[i];
		if (!p->dir) {
			char d[PATH_MAX];
			snprintf(d, sizeof(d), "%s/%s", list_root(s), p->parent);
			if (!(p->dir = opendir(d)))
				continue; /* no such slice (yet): nothing of this pattern */
		} else {
			rewinddir(p->dir);
		}
		any++;
		struct dirent *de;
		while ((de = readdir(p->dir))) {
			if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
				continue;
			int rl = snprintf(rel, sizeof(rel), "%s%s%s", p->parent, p->parent[0] ? "/" : "", de->d_name);
			if (rl >= (int)sizeof(rel))
				continue;
			struct cg_vm *v = vm_find(s, rel, NULL);
			if (v && v->ino != (uint64_t)de->d_ino) {
				/* the same name, another cgroup: the old one stopped */
				vm_gone(s, v, sink, "cgroup-replaced");
				size_t k = (size_t)(v - s->vm);
				vm_close(s, v);
				s->vm[k] = s->vm[--s->n_vm];
				if (rehash(s))
					return -ENOMEM;
				v = NULL;
			}
			if (!v) {
				if (fnmatch(p->glob, de->d_name, 0))
					continue;
				if (!(v = vm_add(s, rel, (uint64_t)de->d_ino)))
					return -ENOMEM;
				/* a cgroup that appears after our first read started since
				 * the previous one: its counters count from zero from then */
				v->origin_ns = s->cycle > 1 ? s->prev_read_ns : 0;
			}
			v->listed = s->cycle;
		}
	}
	return any;
}

/* ---- the host ---- */

static int proc_fd(struct cg *s, int *fd, const char *name)
{
	if (*fd >= 0 || *fd == FD_ABSENT)
		return *fd;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", s->proc, name);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	return *fd >= 0 ? *fd : -errno;
}

/* Room for need interfaces in both tables and the claimed flags. */
static int grow_ifs(struct cg *s, int need)
{
	if (need <= s->cap_ifs)
		return 0;
	int cap = s->cap_ifs ? s->cap_ifs : 64;
	while (cap < need)
		cap *= 2;
	struct cg_netif *a = realloc(s->ifs, (size_t)cap * sizeof(*a));
	if (a)
		s->ifs = a;
	struct cg_netif *b = a ? realloc(s->prev_ifs, (size_t)cap * sizeof(*b)) : NULL;
	if (b)
		s->prev_ifs = b;
	uint8_t *c = b ? realloc(s->claimed, (size_t)cap) : NULL;
	if (!c)
		return -ENOMEM;
	s->claimed = c;
	s->cap_ifs = cap;
	return 0;
}

/* this cycle's /proc/net/dev into s->ifs (last cycle's kept in prev_ifs) */
static void read_netdev(struct cg *s)
{
	struct tally_err e = { 0 };
	struct cg_netif *t = s->prev_ifs;
	s->prev_ifs = s->ifs;
	s->n_prev_ifs = s->n_ifs;
	s->ifs = t;
	s->n_ifs = 0;
	int fd = proc_fd(s, &s->fd_netdev, "net/dev");
	ssize_t n = fd < 0 ? fd : pread_all(s, fd);
	if (n < 0) {
		complain(&s->c_host, LOG_WARN, "cgroup: %s/net/dev: %s; no NIC counters", s->proc, strerror((int)-n));
		return;
	}
	for (int need = 64;;) {
		int got, skipped;
		if (grow_ifs(s, need)) {
			complain(&s->c_mem, LOG_WARN, "cgroup: out of memory reading %s/net/dev", s->proc);
			return;
		}
		if (cg_parse_net_dev(s->buf, (size_t)n, s->ifs, s->cap_ifs, &got, &skipped, &e)) {
			proc_failed(s, "net/dev", &e);
			return;
		}
		if (!skipped) {
			s->n_ifs = got;
			memset(s->claimed, 0, (size_t)got);
			return;
		}
		need = got + skipped;
	}
}

static uint64_t hd_hash(const char *name, bool iface)
{
	return hash_str(name) ^ (iface ? 0x9e3779b97f4a7c15ULL : 0);
}

static uint32_t *hd_find(struct cg *s, const char *name, bool iface)
{
	for (size_t i = (size_t)hd_hash(name, iface) & s->hd_mask;; i = (i + 1) & s->hd_mask) {
		uint32_t *sl = &s->hd_slot[i];
		if (!*sl || (s->hd[*sl - 1].iface == iface && !strcmp(s->hd[*sl - 1].name, name)))
			return sl;
	}
}

static struct cg_hostdev *hostdev(struct cg *s, const char *name, bool iface)
{
	if (!s->hd_slot) {
		if (!(s->hd_slot = calloc(64, sizeof(*s->hd_slot))))
			return NULL;
		s->hd_mask = 63;
	}
	uint32_t *sl = hd_find(s, name, iface);
	if (*sl)
		return &s->hd[*sl - 1];
	if ((s->n_hd + 1) * 2 > s->hd_mask + 1) {
		size_t size = (s->hd_mask + 1) * 2;
		uint32_t *t = calloc(size, sizeof(*t));
		if (!t)
			return NULL;
		free(s->hd_slot);
		s->hd_slot = t;
		s->hd_mask = size - 1;
		for (size_t i = 0; i < s->n_hd; i++)
			*hd_find(s, s->hd[i].name, s->hd[i].iface) = (uint32_t)i + 1;
		sl = hd_find(s, name, iface);
	}
	if (vec_reserve((void **)&s->hd, &s->cap_hd, s->n_hd + 1, sizeof(*s->hd), 8))
		return NULL;
	struct cg_hostdev *h = &s->hd[s->n_hd++];
	*sl = (uint32_t)s->n_hd;
	memset(h, 0, sizeof(*h));
	str_copy(h->name, name, sizeof(h->name));
	h->iface = iface;
	char p[PATH_MAX];
	if (iface) {
		h->use = strcmp(name, "lo") != 0;
		h->ifindex = read_sys_int(s, name, "ifindex");
	} else {
		/* whole disks: not a partition, a loop device or a RAM disk */
		snprintf(p, sizeof(p), "%s/class/block/%s/partition", s->sys, name);
		h->use = strncmp(name, "loop", 4) && strncmp(name, "ram", 3) && access(p, F_OK) != 0;
	}
	return h;
}

static void read_host(struct cg *s, const struct sink *sink, int64_t now_ns)
{
	struct tally_err e = { 0 };
	struct emit x = { .s = s, .sink = sink };
	ssize_t n;
	int fd;
	str_copy(x.smp.resource, s->agent, sizeof(x.smp.resource));
	x.smp.time_ns = now_ns;
	if (!s->host_meta_sent) {
		struct resource_meta m;
		memset(&m, 0, sizeof(m));
		m.time_ns = now_ns;
		str_copy(m.resource, s->agent, sizeof(m.resource));
		str_copy(m.type, "host", sizeof(m.type));
		str_copy(m.name, s->agent, sizeof(m.name));
		sink_note(&s->ss, sink->meta(sink->ctx, NULL, &m));
		s->host_meta_sent = true;
	}
	if ((fd = proc_fd(s, &s->fd_stat, "stat")) >= 0 && (n = pread_all(s, fd)) > 0) {
		struct cg_host_cpu c;
		if (cg_parse_proc_stat(s->buf, (size_t)n, &c, &e) == 0) {
			/* ticks of 1/clk_tck s to ns, exactly when clk_tck divides 1e9 (100 does) */
			unsigned __int128 k = 1000000000u;
			long hz = s->clk_tck;
			put_c(&x, M_HOST_CPU, "", (uint64_t)((c.user + c.nice + c.system + c.irq + c.softirq) * k / hz), 0);
			put_c(&x, M_HOST_CPU_IDLE, "", (uint64_t)((c.idle + c.iowait) * k / hz), 0);
			if (c.fields >= 8)
				put_c(&x, M_HOST_CPU_STEAL, "", (uint64_t)(c.steal * k / hz), 0);
		} else {
			proc_failed(s, "stat", &e);
		}
	}
	if ((fd = proc_fd(s, &s->fd_meminfo, "meminfo")) >= 0 && (n = pread_all(s, fd)) > 0) {
		static const char *const k[] = { "MemTotal", "MemAvailable" };
		uint64_t m[2];
		uint32_t found;
		if (cg_parse_keyed(s->buf, (size_t)n, CG_KEYED_MEMINFO, k, 2, m, &found, &e) == 0) {
			if (found & 1)
				put_g(&x, M_HOST_MEMORY, "", (double)m[0]);
			if (found & 2)
				put_g(&x, M_HOST_MEMORY_AVAILABLE, "", (double)m[1]);
		} else {
			proc_failed(s, "meminfo", &e);
		}
	}
	static const char *const psi_f[3] = { "pressure/cpu", "pressure/memory", "pressure/io" };
	static const int psi_m[3][2] = { { M_PSI_CPU_SOME, M_PSI_CPU_FULL }, { M_PSI_MEMORY_SOME, M_PSI_MEMORY_FULL },
					 { M_PSI_IO_SOME, M_PSI_IO_FULL } };
	for (int i = 0; s->pressure && i < 3; i++) {
		struct cg_psi psi;
		if (s->fd_psi[i] == FD_ABSENT || (fd = proc_fd(s, &s->fd_psi[i], psi_f[i])) < 0) {
			s->fd_psi[i] = FD_ABSENT; /* a kernel without PSI (psi=0) */
			continue;
		}
		if ((n = pread_all(s, fd)) <= 0)
			continue;
		if (cg_parse_psi(s->buf, (size_t)n, &psi, &e)) {
			proc_failed(s, psi_f[i], &e);
			continue;
		}
		put_c(&x, psi_m[i][0], "", psi.some_us * 1000, 0);
		if (psi.have_full)
			put_c(&x, psi_m[i][1], "", psi.full_us * 1000, 0);
	}
	if ((fd = proc_fd(s, &s->fd_diskstats, "diskstats")) >= 0 && (n = pread_all(s, fd)) > 0) {
		int got, skipped;
		for (;;) {
			if (!s->cap_disks && vec_reserve((void **)&s->disks, &s->cap_disks, 32, sizeof(*s->disks), 8))
				break;
			if (cg_parse_diskstats(s->buf, (size_t)n, s->disks, (int)s->cap_disks, &got, &skipped, &e)) {
				proc_failed(s, "diskstats", &e);
				got = 0;
				break;
			}
			if (!skipped || vec_reserve((void **)&s->disks, &s->cap_disks, (size_t)got + (size_t)skipped, sizeof(*s->disks), 8))
				break;
		}
		for (int i = 0; i < got; i++) {
			const struct cg_disk *d = &s->disks[i];
			struct cg_hostdev *h = hostdev(s, d->name, false);
			if (!h || !h->use)
				continue;
			put_c(&x, M_HOST_DISK_READ_BYTES, d->name, d->rd_sectors * 512, 0);
			put_c(&x, M_HOST_DISK_WRITE_BYTES, d->name, d->wr_sectors * 512, 0);
			put_c(&x, M_HOST_DISK_READ_REQUESTS, d->name, d->rd_ios, 0);
			put_c(&x, M_HOST_DISK_WRITE_REQUESTS, d->name, d->wr_ios, 0);
		}
	}
	static const int net_m[4] = { M_HOST_NET_IN_BYTES, M_HOST_NET_IN_PACKETS, M_HOST_NET_OUT_BYTES,
				       M_HOST_NET_OUT_PACKETS };
	for (int i = 0; i < s->n_ifs; i++) {
		const struct cg_netif *f = &s->ifs[i];
		if (s->claimed[i])
			continue; /* a VM's tap: the VM's usage, not the host's */
		struct cg_hostdev *h = hostdev(s, f->name, true);
		if (!h || !h->use)
			continue;
		const uint64_t raw[4] = { f->rx_bytes, f->rx_packets, f->tx_bytes, f->tx_packets };
		for (int k = 0; k < 4; k++)
			put_c(&x, net_m[k], f->name, extend(s, &h->ext[k], &h->ifindex, f->name, raw[k]), 0);
	}
}

/* ---- the cycle ---- */

static int cg_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct cg *s = state;
	memset(&s->ss, 0, sizeof(s->ss));
	s->cycle++;
	read_netdev(s);
	if (s->mode != CG_OFF) {
		int rc = list_vms(s, sink);
		if (rc < 0)
			return err_set(e, rc, "cgroup: out of memory listing the VMs");
		if (rc == 0 && s->n_pat)
			complain(&s->c_list, LOG_INFO, "cgroup: none of the scopes' parent directories is there under"
				 " %s (no VMs yet?)", list_root(s));
		if (cg_after_list)
			cg_after_list();
		uint64_t gone = 0;
		for (size_t i = 0; i < s->n_vm;) {
			struct cg_vm *v = &s->vm[i];
			int r = -1;
			bool fired = v->w && __atomic_load_n(&v->w->fired, __ATOMIC_ACQUIRE);
			if (v->listed == s->cycle && (v->ended || fired)) {
				/* emptied, not removed yet: its final reading now, and
				 * nothing more of it (a cgroup is not used twice) */
				vm_gone(s, v, sink, "cgroup-emptied");
				r = -1;
			} else if (v->listed == s->cycle && v->ident >= 0) {
				if (v->ident == 0 || (s->cycle + (int)(v->spread % (uint32_t)s->refresh)) % s->refresh == 0) {
					char dir[PATH_MAX];
					snprintf(dir, sizeof(dir), "%s/%s", list_root(s), v->rel);
					identify(s, v, dir, sink, now_ns);
				}
				if (v->ident == 1)
					r = read_vm(s, v, sink, now_ns);
				if (r == 1 && !v->w && s->watching && v->fd[F_CPU] >= 0)
					watch_add(s, v, list_root(s));
				if (r == 1 && s->mode == CG_BILL && v->origin_ns && !v->started_sent) {
					struct lifecycle_event ev;
					memset(&ev, 0, sizeof(ev));
					ev.time_ns = v->origin_ns;
					str_copy(ev.resource, v->uuid, sizeof(ev.resource));
					str_copy(ev.type, lifecycle_name(LIFECYCLE_STARTED), sizeof(ev.type));
					str_copy(ev.reason, "cgroup-created", sizeof(ev.reason));
					sink_note(&s->ss, sink->event(sink->ctx, NULL, &ev));
					v->started_sent = true;
				}
			} else if (v->listed == s->cycle) {
				r = -1; /* known, not identifiable: not read */
			} else {
				r = 0;
			}
			if (r == 0) {
				if (v->listed == s->cycle)
					complain(&s->c_gone, LOG_INFO, "cgroup: %s/%s went away between the listing and the"
						 " read: taken as stopped", list_root(s), v->rel);
				vm_gone(s, v, sink, "cgroup-removed");
				vm_close(s, v);
				s->vm[i] = s->vm[--s->n_vm];
				gone++;
				continue;
			}
			i++;
		}
		if (gone && rehash(s))
			return err_set(e, -ENOMEM, "cgroup: out of memory");
	}
	if (s->host)
		read_host(s, sink, now_ns);
	s->prev_read_ns = now_ns;
	s->reads++;
	return sink_status_err(&s->ss, "cgroup", e);
}

static void cg_free(void *state)
{
	struct cg *s = state;
	if (!s)
		return;
	if (s->watching) {
		if (write(s->stop_fd[1], "x", 1) == 1)
			pthread_join(s->thr, NULL);
	}
	for (size_t i = 0; i < s->n_vm; i++)
		vm_close(s, &s->vm[i]);
	for (int i = 0; i < s->n_pat; i++)
		if (s->pat[i].dir)
			closedir(s->pat[i].dir);
	int fds[] = { s->fd_netdev, s->fd_stat, s->fd_meminfo, s->fd_diskstats, s->fd_psi[0], s->fd_psi[1], s->fd_psi[2] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	mapping_release(&s->mapping);
	if (s->watching) {
		close(s->ino_fd);
		close(s->stop_fd[0]);
		close(s->stop_fd[1]);
		pthread_mutex_destroy(&s->lock);
	}
	free(s->w);
	free(s->vm);
	free(s->slot);
	free(s->buf);
	free(s->ifs);
	free(s->prev_ifs);
	free(s->disks);
	free(s->hd);
	free(s->hd_slot);
	free(s->claimed);
	free(s);
}

/* SIGHUP (collector.h): the mapping file, read again by configure, is
 * taken; every VM is identified again at the next read and its metadata
 * sent with the new mapping. The rest of the section needs a restart. */
static int cg_reload(void *state, void *fresh, struct tally_err *e)
{
	struct cg *s = state, *f = fresh;
	struct mapping old = s->mapping;
	(void)e;
	s->mapping = f->mapping;
	f->mapping = old;            /* freed with fresh */
	memcpy(s->mapping_path, f->mapping_path, sizeof(s->mapping_path));
	for (size_t i = 0; i < s->n_vm; i++) {
		struct cg_vm *v = &s->vm[i];
		if (v->ident == 1)
			v->ident = 0;
		v->meta_sent = false;
	}
	return 0;
}

const struct collector_ops cgroup_collector = {
	.name = "cgroup",
	.configure = cg_configure,
	.init = cg_init,
	.read = cg_read,
	.free = cg_free,
	.reload = cg_reload,
};
