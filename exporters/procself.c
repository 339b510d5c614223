/*
 * procself.c: /proc/self/stat, /proc/self/fd and RLIMIT_NOFILE into the
 * process_* figures (procself.h).
 */
#include "procself.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The boot time from /proc/stat's btime line: starttime in /proc/self/stat
 * counts clock ticks since boot. */
static int boot_time(double *out)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[256];
	int rc = -ENOENT;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long bt;
		if (sscanf(line, "btime %llu", &bt) == 1) {
			*out = (double)bt;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int procself_read(struct procself *p)
{
	char buf[1024];
	memset(p, 0, sizeof(*p));
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name is in parentheses and may hold spaces: skip to the
	 * last ')' and count fields from there (field 3, state, follows) */
	char *r = strrchr(buf, ')');
	if (!r)
		return -EINVAL;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d"
		   " %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) != 5)
		return -EINVAL;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double bt = 0;
	if (tck <= 0 || page <= 0 || boot_time(&bt))
		return -EINVAL;
	p->cpu_seconds = (double)(utime + stime) / (double)tck;
	p->virtual_bytes = vsize;
	p->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	p->start_time_seconds = bt + (double)start / (double)tck;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				p->open_fds++;
		closedir(d);
		p->open_fds--;   /* the directory's own descriptor */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	return 0;
}
