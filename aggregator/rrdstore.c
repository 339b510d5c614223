/*
 * rrdstore.c: queue values per RRD file, write each file's queue with one
 * rrd_update_r() call (see rrdstore.h, schemas/rrd.md).
 */
#include "rrdstore.h"
#include "rrdname.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <limits.h>
#include <rrd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DS 8
#define MAX_GROUPS 16       /* RRD groups of the meter table */

struct group {
	const char *name;
	int n_ds;
	const char *ds[MAX_DS];
};

struct row {
	int64_t t_s;
	uint32_t present;          /* bit per data source */
	double v[MAX_DS];
};

struct rfile {
	char *path;
	const struct group *g;
	int64_t last_s;            /* last update in the file; -1 unknown */
	int exists;                /* checked on disk */
	struct row *rows;          /* grows up to RRDSTORE_MAX_ROWS */
	int n_rows, cap_rows;
};

struct rrdstore {
	char dir[PATH_MAX];
	int step_s;
	struct group groups[MAX_GROUPS];
	int n_groups;
	struct rfile **files;      /* open addressing by path */
	size_t mask, used;
	struct rfile **dirty;      /* files with queued rows */
	size_t n_dirty, cap_dirty;
	struct rrdstore_stats st;
	size_t queued;             /* rows queued in all files */
	char *argbuf;              /* reused text of one update call */
	size_t argcap;
	const char *argv[RRDSTORE_MAX_ROWS];
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

int rrdstore_open(struct rrdstore **out, const char *dir, int step_s, struct tally_err *e)
{
	struct rrdstore *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (!str_copy(s->dir, dir, sizeof(s->dir))) {
		free(s);
		return err_set(e, -ENAMETOOLONG, "%s: rrd directory name too long", dir);
	}
	s->step_s = step_s > 0 ? step_s : 60;
	for (int m = 0; m < METER_COUNT; m++) {
		const char *gname = meter_table[m].rrd_group;
		struct group *g = NULL;
		for (int i = 0; i < s->n_groups; i++)
			if (!strcmp(s->groups[i].name, gname))
				g = &s->groups[i];
		if (!g && s->n_groups == MAX_GROUPS) {
			free(s);
			return err_set(e, -E2BIG, "meter table: more than %d rrd groups", MAX_GROUPS);
		}
		if (!g) {
			g = &s->groups[s->n_groups++];
			g->name = gname;
		}
		if (g->n_ds < MAX_DS)
			g->ds[g->n_ds++] = meter_table[m].rrd_ds;
	}
	s->mask = 1023;
	s->files = calloc(s->mask + 1, sizeof(*s->files));
	if (!s->files) {
		free(s);
		return -ENOMEM;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int rc = err_set(e, -errno, "%s: cannot create rrd directory: %s", dir, strerror(errno));
		rrdstore_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void rrdstore_close(struct rrdstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; i <= s->mask; i++)
		if (s->files[i]) {
			free(s->files[i]->rows);
			free(s->files[i]->path);
			free(s->files[i]);
		}
	free(s->files);
	free(s->dirty);
	free(s->argbuf);
	free(s);
}

/* Escape a name for a path component: [A-Za-z0-9_-] stay, '.' stays except
 * in front, everything else becomes %XX, so distinct ids never share a
 * file and no id can climb out of the directory. */
int rrdstore_path(const struct rrdstore *s, const char *resource, const char *group,
		  const char *device, char *buf, size_t len)
{
	char r[256], d[256];
	if (rrd_name_escape(r, sizeof(r), resource) || (device[0] && rrd_name_escape(d, sizeof(d), device)))
		return -ENAMETOOLONG;
	int n = device[0] ? snprintf(buf, len, "%s/%s/%s-%s.rrd", s->dir, r, group, d)
			  : snprintf(buf, len, "%s/%s/%s.rrd", s->dir, r, group);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int grow_table(struct rrdstore *s)
{
	size_t n = (s->mask + 1) * 2;
	struct rfile **t = calloc(n, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i <= s->mask; i++) {
		struct rfile *f = s->files[i];
		if (!f)
			continue;
		size_t j = hash_str(f->path) & (n - 1);
		while (t[j])
			j = (j + 1) & (n - 1);
		t[j] = f;
	}
	free(s->files);
	s->files = t;
	s->mask = n - 1;
	return 0;
}

static struct rfile *file_get(struct rrdstore *s, const char *path, const struct group *g)
{
	size_t i = hash_str(path) & s->mask;
	while (s->files[i]) {
		if (!strcmp(s->files[i]->path, path))
			return s->files[i];
		i = (i + 1) & s->mask;
	}
	struct rfile *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return NULL;
	}
	f->g = g;
	f->last_s = -1;
	s->files[i] = f;
	if (++s->used * 2 > s->mask + 1 && grow_table(s))
		return NULL;
	return f;
}

static int mkdir_for(const char *path, struct tally_err *e)
{
	char d[PATH_MAX];
	str_copy(d, path, sizeof(d));
	char *slash = strrchr(d, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	if (mkdir(d, 0755) && errno != EEXIST)
		return err_set(e, -errno, "%s: cannot create directory: %s", d, strerror(errno));
	return 0;
}

/* Create the file (first sight) or learn its last update (existing file). */
static int prepare(struct rrdstore *s, struct rfile *f, struct tally_err *e)
{
	struct stat sb;
	int rc;
	if (f->exists)
		return 0;
	if (stat(f->path, &sb) == 0) {
		rrd_clear_error();
		time_t last = rrd_last_r(f->path);
		if (last < 0)
			return err_set(e, -EIO, "%s: not a readable rrd file: %s", f->path, rrd_get_error());
		f->last_s = last;
		f->exists = 1;
		return 0;
	}
	if ((rc = mkdir_for(f->path, e)))
		return rc;
	/* RRAs: 1 step for 1 day, 5 steps for 1 week, 1 hour for 100 days,
	 * 1 day for 800 days (AVERAGE), and MAX at 5 steps and 1 hour */
	char defs[MAX_DS + 6][64];
	const char *argv[MAX_DS + 6];
	int argc = 0;
	long step = s->step_s;
	long per_hour = 3600 / step > 0 ? 3600 / step : 1, per_day = 86400 / step > 0 ? 86400 / step : 1;
	for (int i = 0; i < f->g->n_ds; i++) {
		snprintf(defs[argc], sizeof(defs[argc]), "DS:%s:GAUGE:%ld:0:U", f->g->ds[i], 3 * step);
		argv[argc] = defs[argc];
		argc++;
	}
	snprintf(defs[argc], 64, "RRA:AVERAGE:0.5:1:%ld", per_day);
	argv[argc] = defs[argc]; argc++;
	snprintf(defs[argc], 64, "RRA:AVERAGE:0.5:5:%ld", per_day * 7 / 5);
	argv[argc] = defs[argc]; argc++;
	snprintf(defs[argc], 64, "RRA:AVERAGE:0.5:%ld:%d", per_hour, 24 * 100);
	argv[argc] = defs[argc]; argc++;
	snprintf(defs[argc], 64, "RRA:AVERAGE:0.5:%ld:%d", per_day, 800);
	argv[argc] = defs[argc]; argc++;
	snprintf(defs[argc], 64, "RRA:MAX:0.5:5:%ld", per_day * 7 / 5);
	argv[argc] = defs[argc]; argc++;
	snprintf(defs[argc], 64, "RRA:MAX:0.5:%ld:%d", per_hour, 24 * 100);
	argv[argc] = defs[argc]; argc++;
	/* one step before the first value, so that value fills its whole step */
	time_t start = (time_t)(f->n_rows ? f->rows[0].t_s - step : 0);
	rrd_clear_error();
	if (rrd_create_r(f->path, (unsigned long)step, start, argc, argv) != 0) {
		return err_set(e, -EIO, "%s: cannot create rrd file: %s", f->path, rrd_get_error());
	}
	s->st.files_created++;
	f->last_s = start;
	f->exists = 1;
	return 0;
}

static int write_file(struct rrdstore *s, struct rfile *f, struct tally_err *e)
{
	int rc;
	if (f->n_rows == 0)
		return 0;
	if ((rc = prepare(s, f, e))) {
		s->queued -= (size_t)f->n_rows;
		f->n_rows = 0;
		s->st.errors++;
		return rc;
	}
	/* one "t:v:v:..." argument per row after the file's last update */
	size_t need = (size_t)f->n_rows * (24 + (size_t)f->g->n_ds * 26);
	if (need > s->argcap) {
		char *p = realloc(s->argbuf, need);
		if (!p)
			return -ENOMEM;
		s->argbuf = p;
		s->argcap = need;
	}
	const char **argv = s->argv;
	int argc = 0;
	size_t off = 0;
	uint64_t values = 0;
	for (int r = 0; r < f->n_rows; r++) {
		const struct row *row = &f->rows[r];
		if (row->t_s <= f->last_s) {
			s->st.skipped_old++;
			continue;
		}
		char *p = s->argbuf + off;
		int n = snprintf(p, s->argcap - off, "%lld", (long long)row->t_s);
		for (int d = 0; d < f->g->n_ds; d++) {
			if (row->present & (1u << d)) {
				n += snprintf(p + n, s->argcap - off - (size_t)n, ":%.17g", row->v[d]);
				values++;
			} else {
				n += snprintf(p + n, s->argcap - off - (size_t)n, ":U");
			}
		}
		argv[argc++] = p;
		off += (size_t)n + 1;
	}
	int64_t last = f->rows[f->n_rows - 1].t_s;
	s->queued -= (size_t)f->n_rows;
	f->n_rows = 0;
	if (f->cap_rows > 8) {
		/* a burst (fast-forward) grew the queue: give it back, so
		 * thousands of files do not each keep their largest queue */
		free(f->rows);
		f->rows = NULL;
		f->cap_rows = 0;
	}
	if (argc == 0)
		return 0;
	rrd_clear_error();
	if (rrd_update_r(f->path, NULL, argc, argv) != 0) {
		s->st.errors++;
		f->exists = 0; /* look at it again next time */
		return err_set(e, -EIO, "%s: rrd update failed: %s", f->path, rrd_get_error());
	}
	f->last_s = last;
	s->st.updates++;
	s->st.values += values;
	return 0;
}

int rrdstore_put(struct rrdstore *s, const char *resource, const char *group, const char *device,
		 const char *ds, int64_t time_ns, double value)
{
	char path[PATH_MAX];
	const struct group *g = NULL;
	int di = -1;

	for (int i = 0; i < s->n_groups; i++)
		if (!strcmp(s->groups[i].name, group))
			g = &s->groups[i];
	if (!g)
		return -EINVAL;
	for (int i = 0; i < g->n_ds; i++)
		if (!strcmp(g->ds[i], ds))
			di = i;
	if (di < 0)
		return -EINVAL;
	if (rrdstore_path(s, resource, group, device, path, sizeof(path)))
		return -ENAMETOOLONG;
	struct rfile *f = file_get(s, path, g);
	if (!f)
		return -ENOMEM;
	int64_t t = time_ns / NS_PER_SEC;
	struct row *row = f->n_rows ? &f->rows[f->n_rows - 1] : NULL;
	if (!row || row->t_s < t) {
		if (f->n_rows == RRDSTORE_MAX_ROWS) {
			struct tally_err e = { 0 };
			int rc = write_file(s, f, &e);
			if (rc)
				return rc;
		}
		if (f->n_rows == 0) {
			if (s->n_dirty == s->cap_dirty) {
				size_t n = s->cap_dirty ? s->cap_dirty * 2 : 256;
				struct rfile **p = realloc(s->dirty, n * sizeof(*p));
				if (!p)
					return -ENOMEM;
				s->dirty = p;
				s->cap_dirty = n;
			}
			int listed = 0;
			for (size_t i = s->n_dirty; i-- > 0 && i + 8 >= s->n_dirty;)
				listed |= s->dirty[i] == f;
			if (!listed)
				s->dirty[s->n_dirty++] = f;
		}
		if (f->n_rows == f->cap_rows) {
			int n = f->cap_rows ? f->cap_rows * 2 : 4;
			struct row *p = realloc(f->rows, (size_t)n * sizeof(*p));
			if (!p)
				return -ENOMEM;
			f->rows = p;
			f->cap_rows = n;
		}
		row = &f->rows[f->n_rows++];
		s->queued++;
		row->t_s = t;
		row->present = 0;
	} else if (row->t_s > t) {
		s->st.skipped_old++;
		return 0;
	}
	row->v[di] = value;
	row->present |= 1u << di;
	if (s->queued >= RRDSTORE_BUDGET_ROWS) {
		/* bounded memory: a fast-forward burst writes early */
		struct tally_err e = { 0 };
		return rrdstore_flush(s, &e);
	}
	return 0;
}

int rrdstore_flush(struct rrdstore *s, struct tally_err *e)
{
	int first = 0;
	for (size_t i = 0; i < s->n_dirty; i++) {
		struct tally_err fe = { 0 };
		int rc = write_file(s, s->dirty[i], &fe);
		if (rc && !first) {
			first = rc;
			err_set(e, rc, "%s", fe.msg);
		}
	}
	s->n_dirty = 0;
	return first;
}

void rrdstore_get_stats(const struct rrdstore *s, struct rrdstore_stats *out)
{
	*out = s->st;
}
