/*
 * libvirt_cgroup.c: the libvirt collector's cpu time from the domains'
 * cgroups. libvirt 9's cpu-total group also asks QEMU for halt-poll times
 * (QMP query-stats), which costs more than the rest of a cycle's counters;
 * on a hypervisor on this host the file libvirt takes cpu.time from is
 * read instead, once checked against libvirt's value for each QEMU
 * process (docs/libvirt.md, "cpu time").
 */
#include "libvirt_state.h"
#include "log.h"
#include "tallytime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where libvirt puts a domain's cgroup: machine/qemu-ID-NAME.libvirt-qemu
 * without systemd, machine.slice/machine-qemu\x2dID\x2dNAME.scope with it;
 * the cpu time in the cgroup v2 tree (at the root, or at unified/ on a
 * hybrid host) or in cgroup v1's cpuacct hierarchy, the file libvirt's
 * cpu.time comes from. The domain id names one process, so the directory
 * is looked for once per process. */
static const struct { const char *dir, *file; uint8_t v1; } cg_where[] = {
	{ "unified/machine", "cpu.stat", 0 }, { "unified/machine.slice", "cpu.stat", 0 },
	{ "machine", "cpu.stat", 0 }, { "machine.slice", "cpu.stat", 0 },
	{ "cpuacct/machine", "cpuacct.usage", 1 }, { "cpuacct/machine.slice", "cpuacct.usage", 1 },
	{ "cpu,cpuacct/machine", "cpuacct.usage", 1 }, { "cpu,cpuacct/machine.slice", "cpuacct.usage", 1 },
};

void lv_cg_close(struct lv_dom *d)
{
	if (d->cg_fd >= 0)
		close(d->cg_fd);
	d->cg_fd = -1;
}

/* Open domain d's cpu time file for process id. 0, or -ENOENT. */
static int cg_open(struct lv *s, struct lv_dom *d, unsigned int id)
{
	char pre[2][48], path[PATH_MAX];
	lv_cg_close(d);
	d->cg_id = id;
	snprintf(pre[0], sizeof(pre[0]), "qemu-%u-", id);
	snprintf(pre[1], sizeof(pre[1]), "machine-qemu\\x2d%u\\x2d", id);
	for (size_t w = 0; w < sizeof(cg_where) / sizeof(cg_where[0]); w++) {
		snprintf(path, sizeof(path), "%s/%s", s->sysfs_cgroup, cg_where[w].dir);
		DIR *dir = opendir(path);
		struct dirent *de;
		if (!dir)
			continue;
		while ((de = readdir(dir))) {
			const char *p = strchr(cg_where[w].dir, '.') ? pre[1] : pre[0];
			if (strncmp(de->d_name, p, strlen(p)))
				continue;
			/* under systemd, libvirt (7.1 on) makes a libvirt/ group
			 * in the scope and reads that */
			snprintf(path, sizeof(path), "%s/%s/%s/libvirt/%s", s->sysfs_cgroup, cg_where[w].dir,
				 de->d_name, cg_where[w].file);
			d->cg_fd = open(path, O_RDONLY | O_CLOEXEC);
			if (d->cg_fd < 0) {
				snprintf(path, sizeof(path), "%s/%s/%s/%s", s->sysfs_cgroup, cg_where[w].dir,
					 de->d_name, cg_where[w].file);
				d->cg_fd = open(path, O_RDONLY | O_CLOEXEC);
			}
			if (d->cg_fd >= 0) {
				d->cg_v1 = cg_where[w].v1;
				closedir(dir);
				return 0;
			}
		}
		closedir(dir);
	}
	return -ENOENT;
}

/* Domain d's cpu time in ns, as process id, from its cgroup. 0, or -errno
 * (no cgroup found for this process, or it is gone). */
int lv_cg_cpu(struct lv *s, struct lv_dom *d, unsigned int id, uint64_t *ns)
{
	char buf[512], *end;
	if (!s->local || s->cg_off || id == 0 || id == (unsigned int)-1)
		return -ENOENT;
	if (d->cg_id != id && cg_open(s, d, id))
		return -ENOENT;
	if (d->cg_fd < 0)
		return -ENOENT; /* looked for, for this process, and not found */
	ssize_t n = pread(d->cg_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		lv_cg_close(d); /* the cgroup went with its process */
		return -ENODEV;
	}
	buf[n] = '\0';
	const char *v = buf;
	if (!d->cg_v1) {
		v = strstr(buf, "usage_usec ");
		if (!v || (v != buf && v[-1] != '\n'))
			return -EINVAL;
		v += strlen("usage_usec ");
	}
	errno = 0;
	unsigned long long u = strtoull(v, &end, 10);
	if (end == v || errno || (*end && *end != '\n') || (!d->cg_v1 && u > UINT64_MAX / 1000))
		return -EINVAL;
	*ns = d->cg_v1 ? u : u * 1000;
	return 0;
}

/* A domain whose cpu-total libvirt answered this cycle (the process's
 * first cycle, or every cycle where the cgroups are not read): libvirt's
 * cpu time *cpu, read during the call, against the cgroup's, read after
 * it. The same counter can only have gone on since (by at most the call's
 * duration times the host's CPUs; 5 s is far above that and far below a
 * wrong file's difference, the cpu time of a whole other group of
 * threads); it cannot be below libvirt's, up to the microsecond cpu.stat
 * counts in. When they agree, *cpu becomes the cgroup's (a domain's cpu
 * series keeps one source) and the process's cgroup is checked: it is
 * read alone from then on. One that disagrees turns the cgroup reading off
 * for the connection. A domain whose cgroup was not found is looked for
 * again (and libvirt asked again) at the next cycle. */
void lv_cg_check(struct lv *s, struct lv_dom *d, unsigned int id, unsigned long long *cpu)
{
	uint64_t c, l = *cpu;
	if (d->cg_fd < 0)
		d->cg_id = 0;
	if (lv_cg_cpu(s, d, id, &c))
		return;
	if (c + 1000 >= l && (c <= l || c - l <= 5 * (uint64_t)NS_PER_SEC)) {
		s->cg_ok = 1;
		d->cg_ok_id = id;
		*cpu = c;
		return;
	}
	s->cg_off = 1;
	complain(&s->cg_note, LOG_WARN, "libvirt %s: domain %s: its cgroup says %llu ns of cpu time, libvirt"
		 " %llu: reading libvirt's cpu-total every cycle", s->uri, d->uuid, (unsigned long long)c,
		 (unsigned long long)l);
}
