/*
 * rrdstore.c: queue values per RRD file in the aggregator's thread; a writer
 * thread creates the files and writes each file's queue with one
 * rrd_update_r() call (see rrdstore.h, schemas/rrd.md).
 *
 * Ownership between the threads: the file table, each file's queue (rows)
 * and the dirty list belong to the aggregator's thread. A queue handed over
 * becomes a job, owned by the job list under mu until the writer takes it.
 * An rfile's path and group never change; exists and last_s are the
 * writer's alone once the store is open. rfiles are freed only after the
 * writer has stopped.
 */
#include "rrdstore.h"
#include "fault.h"
#include "vec.h"
#include "hash.h"
#include "rrdname.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <rrd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DS 16
#define RRD_MAX_GROUPS 32   /* files per resource kind: instance, disk, net, if, pressure, host, net_<class>, ... */

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
	int64_t last_s;            /* writer: last update in the file; -1 unknown */
	int exists;                /* writer: checked on disk */
	struct row *rows;          /* aggregator: grows up to RRDSTORE_MAX_ROWS */
	int n_rows, cap_rows;
};

/* A file's queue handed to the writer. */
struct job {
	struct rfile *f;
	struct row *rows;          /* owned by the job */
	int n_rows;
};

/* What the writer thread owns while it writes. */
struct writer_buf {
	char *arg;                 /* text of one update call */
	size_t cap;
	const char *argv[RRDSTORE_MAX_ROWS];
};

struct rrdstore {
	char dir[PATH_MAX];
	int step_s;
	struct group groups[RRD_MAX_GROUPS];
	int n_groups;
	struct rfile **files;      /* open addressing by path */
	size_t mask, used;
	struct rfile **dirty;      /* files with queued rows */
	size_t n_dirty, cap_dirty;
	size_t queued;             /* rows queued in all files */
	bool lossless;

	/* shared with the writer, under mu */
	pthread_mutex_t mu;
	pthread_cond_t work;       /* jobs arrived, or stop */
	pthread_cond_t done;       /* the writer finished a round */
	pthread_t writer;
	bool started, stop, busy;
	bool hold;                 /* tests: the writer takes no job */
	size_t test_budget;        /* tests: the backlog budget, 0 = default */
	struct job *jobs;          /* handed over, not yet taken */
	size_t n_jobs, cap_jobs;
	size_t backlog;            /* rows in jobs and in the round being written */
	struct rrdstore_stats st;
	int err_rc;                /* first writer error since the last report */
	char err_msg[256];
	struct writer_buf wb;      /* the writer's alone */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = hash_fnv64_str(HASH_FNV64_INIT, s);
	return h ^ (h >> 29);
}

static void *writer_main(void *arg);

int rrdstore_open(struct rrdstore **out, const char *dir, int step_s, bool lossless,
		  struct tally_err *e)
{
	struct rrdstore *s = fault_calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (pthread_mutex_init(&s->mu, NULL)) {
		free(s);
		return -ENOMEM;
	}
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	if (!str_copy(s->dir, dir, sizeof(s->dir))) {
		rrdstore_close(s);
		return err_set(e, -ENAMETOOLONG, "%s: rrd directory name too long", dir);
	}
	s->step_s = step_s > 0 ? step_s : 60;
	s->lossless = lossless;
	for (int m = 0; m < METER_COUNT; m++) {
		const char *gname = meter_table[m].rrd_group;
		struct group *g = NULL;
		for (int i = 0; i < s->n_groups; i++)
			if (!strcmp(s->groups[i].name, gname))
				g = &s->groups[i];
		if (!g && s->n_groups == RRD_MAX_GROUPS) {
			rrdstore_close(s);
			return err_set(e, -E2BIG, "meter table: more than %d rrd groups", RRD_MAX_GROUPS);
		}
		if (!g) {
			g = &s->groups[s->n_groups++];
			g->name = gname;
		}
		if (g->n_ds < MAX_DS)
			g->ds[g->n_ds++] = meter_table[m].rrd_ds;
	}
	s->mask = 1023;
	s->files = fault_calloc(s->mask + 1, sizeof(*s->files));
	if (!s->files) {
		rrdstore_close(s);
		return -ENOMEM;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int rc = err_set(e, -errno, "%s: cannot create rrd directory: %s", dir, strerror(errno));
		rrdstore_close(s);
		return rc;
	}
	int rc = pthread_create(&s->writer, NULL, writer_main, s);
	if (rc) {
		rrdstore_close(s);
		return err_set(e, -rc, "rrd: cannot start the writer thread: %s", strerror(rc));
	}
	s->started = true;
	*out = s;
	return 0;
}

void rrdstore_close(struct rrdstore *s)
{
	if (!s)
		return;
	if (s->started) {
		struct tally_err e = { 0 };
		rrdstore_flush(s, &e);    /* counted in the stats; nobody is left to tell */
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		s->hold = false;
		pthread_cond_signal(&s->work);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL);
	}
	for (size_t i = 0; s->files && i <= s->mask; i++)
		if (s->files[i]) {
			free(s->files[i]->rows);
			free(s->files[i]->path);
			free(s->files[i]);
		}
	for (size_t i = 0; i < s->n_jobs; i++)
		free(s->jobs[i].rows);
	free(s->jobs);
	free(s->files);
	free(s->dirty);
	free(s->wb.arg);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->mu);
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
	struct rfile **t = fault_calloc(n, sizeof(*t));
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
	struct rfile *f = fault_calloc(1, sizeof(*f));
	if (!f || !(f->path = fault_strdup(path))) {
		free(f);
		return NULL;
	}
	f->g = g;
	f->last_s = -1;
	s->files[i] = f;
	pthread_mutex_lock(&s->mu);
	s->st.files++;
	pthread_mutex_unlock(&s->mu);
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

/* Writer: create the file (first sight; its first value is at first_s) or
 * learn its last update (an existing file). */
static int prepare(struct rrdstore *s, struct rfile *f, int64_t first_s, struct tally_err *e)
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
	time_t start = (time_t)(first_s - step);
	rrd_clear_error();
	if (rrd_create_r(f->path, (unsigned long)step, start, argc, argv) != 0) {
		return err_set(e, -EIO, "%s: cannot create rrd file: %s", f->path, rrd_get_error());
	}
	pthread_mutex_lock(&s->mu);
	s->st.files_created++;
	pthread_mutex_unlock(&s->mu);
	f->last_s = start;
	f->exists = 1;
	return 0;
}

/* Writer: write one job's rows into its file. The counts go into *st (the
 * caller adds them to the store's under mu). */
static int write_job(struct rrdstore *s, const struct job *j, struct rrdstore_stats *st,
		     struct tally_err *e)
{
	struct rfile *f = j->f;
	struct writer_buf *wb = &s->wb;
	int rc;
	if (j->n_rows == 0)
		return 0;
	if ((rc = prepare(s, f, j->rows[0].t_s, e))) {
		st->errors++;
		return rc;
	}
	/* one "t:v:v:..." argument per row after the file's last update */
	size_t need = (size_t)j->n_rows * (24 + (size_t)f->g->n_ds * 26);
	if (need > wb->cap) {
		char *p = fault_realloc(wb->arg, need);
		if (!p) {
			st->errors++;
			return err_set(e, -ENOMEM, "%s: no memory for an rrd update", f->path);
		}
		wb->arg = p;
		wb->cap = need;
	}
	int argc = 0;
	size_t off = 0;
	uint64_t values = 0;
	for (int r = 0; r < j->n_rows; r++) {
		const struct row *row = &j->rows[r];
		if (row->t_s <= f->last_s) {
			st->skipped_old++;
			continue;
		}
		char *p = wb->arg + off;
		int n = snprintf(p, wb->cap - off, "%lld", (long long)row->t_s);
		for (int d = 0; d < f->g->n_ds; d++) {
			if (row->present & (1u << d)) {
				n += snprintf(p + n, wb->cap - off - (size_t)n, ":%.17g", row->v[d]);
				values++;
			} else {
				n += snprintf(p + n, wb->cap - off - (size_t)n, ":U");
			}
		}
		wb->argv[argc++] = p;
		off += (size_t)n + 1;
	}
	if (argc == 0)
		return 0;
	rrd_clear_error();
	if (rrd_update_r(f->path, NULL, argc, wb->argv) != 0) {
		st->errors++;
		f->exists = 0; /* look at it again next time */
		return err_set(e, -EIO, "%s: rrd update failed: %s", f->path, rrd_get_error());
	}
	f->last_s = j->rows[j->n_rows - 1].t_s;
	st->updates++;
	st->values += values;
	return 0;
}

static void *writer_main(void *arg)
{
	struct rrdstore *s = arg;
	struct job *mine = NULL;
	size_t cap_mine = 0;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while ((!s->n_jobs || s->hold) && !s->stop)
			pthread_cond_wait(&s->work, &s->mu);
		if (!s->n_jobs && s->stop)
			break;
		/* take the whole list: swap it with the writer's empty one */
		struct job *t = s->jobs;
		size_t n = s->n_jobs, cap = s->cap_jobs;
		s->jobs = mine;
		s->cap_jobs = cap_mine;
		s->n_jobs = 0;
		mine = t;
		cap_mine = cap;
		s->busy = true;
		pthread_mutex_unlock(&s->mu);

		for (size_t i = 0; i < n; i++) {
			struct rrdstore_stats st = { 0 };
			struct tally_err e = { 0 };
			int rc = write_job(s, &mine[i], &st, &e);
			free(mine[i].rows);
			pthread_mutex_lock(&s->mu);
			s->backlog -= (size_t)mine[i].n_rows;
			s->st.updates += st.updates;
			s->st.values += st.values;
			s->st.skipped_old += st.skipped_old;
			s->st.errors += st.errors;
			if (rc && !s->err_rc) {
				s->err_rc = rc;
				str_copy(s->err_msg, e.msg, sizeof(s->err_msg));
			}
			pthread_cond_broadcast(&s->done);
			pthread_mutex_unlock(&s->mu);
		}
		pthread_mutex_lock(&s->mu);
		s->busy = false;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	free(mine);
	return NULL;
}

/* The writer's backlog budget: enough for a few cycles of every known file,
 * so the first minute's file creation at 10,000 VMs does not drop rows. */
static size_t budget_rows(const struct rrdstore *s)
{
	if (s->test_budget)
		return s->test_budget;
	size_t b = 8 * s->used;
	return b > RRDSTORE_BUDGET_ROWS ? b : RRDSTORE_BUDGET_ROWS;
}

/* Hand f's queue to the writer (aggregator thread). Past the budget a
 * lossless store waits, a lossy one drops the rows. 0 or -ENOMEM (the rows
 * are then dropped and counted). */
static int handoff_file(struct rrdstore *s, struct rfile *f)
{
	int rc = 0;
	if (f->n_rows == 0)
		return 0;
	size_t n = (size_t)f->n_rows;
	struct row *rows = f->rows;
	s->queued -= n;
	f->rows = NULL;
	f->n_rows = f->cap_rows = 0;

	pthread_mutex_lock(&s->mu);
	size_t budget = budget_rows(s);
	if (s->backlog + n > budget && s->lossless) {
		s->st.waits++;
		while (s->backlog + n > budget && s->backlog > 0)
			pthread_cond_wait(&s->done, &s->mu);
	}
	if (s->backlog + n > budget && s->backlog > 0) {
		s->st.dropped += n;
		goto drop;
	}
	if (vec_reserve((void **)&s->jobs, &s->cap_jobs, s->n_jobs + 1, sizeof(*s->jobs), 256)) {
		s->st.dropped += n;
		rc = -ENOMEM;
		goto drop;
	}
	s->jobs[s->n_jobs++] = (struct job){ .f = f, .rows = rows, .n_rows = (int)n };
	s->backlog += n;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	return 0;
drop:
	pthread_mutex_unlock(&s->mu);
	free(rows);
	return rc;
}

/* A file's queue is due once it spans a whole step. */
static bool due(const struct rrdstore *s, const struct rfile *f)
{
	return f->n_rows > 0 && f->rows[f->n_rows - 1].t_s - f->rows[0].t_s >= s->step_s;
}

/* Hand over the queues of the dirty files (all, or only those due), keeping
 * the others listed. Returns 0 or -ENOMEM. */
static int handoff(struct rrdstore *s, bool all)
{
	size_t kept = 0;
	int first = 0;
	for (size_t i = 0; i < s->n_dirty; i++) {
		struct rfile *f = s->dirty[i];
		if (f->n_rows == 0)
			continue;
		if (!all && !due(s, f)) {
			s->dirty[kept++] = f;
			continue;
		}
		int rc = handoff_file(s, f);
		if (rc && !first)
			first = rc;
	}
	s->n_dirty = kept;
	return first;
}

/* The writer's first error since the last report, into e. */
static int take_error(struct rrdstore *s, int rc, struct tally_err *e)
{
	pthread_mutex_lock(&s->mu);
	if (s->err_rc) {
		rc = err_set(e, s->err_rc, "%s", s->err_msg);
		s->err_rc = 0;
	} else if (rc) {
		err_set(e, rc, "rrd: no memory to queue a write (rows dropped)");
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
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
			int rc = handoff_file(s, f);
			if (rc)
				return rc;
		}
		if (f->n_rows == 0) {
			if (s->n_dirty == s->cap_dirty) {
				size_t n = s->cap_dirty ? s->cap_dirty * 2 : 256;
				struct rfile **p = fault_realloc(s->dirty, n * sizeof(*p));
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
			struct row *p = fault_realloc(f->rows, (size_t)n * sizeof(*p));
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
		pthread_mutex_lock(&s->mu);
		s->st.skipped_old++;
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	row->v[di] = value;
	row->present |= 1u << di;
	if (s->queued >= RRDSTORE_BUDGET_ROWS)
		return handoff(s, true);   /* bounded memory: a fast-forward burst goes early */
	return 0;
}

int rrdstore_handoff(struct rrdstore *s, struct tally_err *e)
{
	return take_error(s, handoff(s, false), e);
}

int rrdstore_flush(struct rrdstore *s, struct tally_err *e)
{
	int rc = handoff(s, true);
	pthread_mutex_lock(&s->mu);
	while (s->n_jobs || s->busy)
		pthread_cond_wait(&s->done, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return take_error(s, rc, e);
}

void rrdstore_test_hold(struct rrdstore *s, bool hold, size_t budget_rows)
{
	pthread_mutex_lock(&s->mu);
	s->hold = hold;
	s->test_budget = budget_rows;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
}

void rrdstore_get_stats(const struct rrdstore *s, struct rrdstore_stats *out)
{
	struct rrdstore *m = (struct rrdstore *)s;   /* the lock, not the data */
	pthread_mutex_lock(&m->mu);
	*out = s->st;
	out->backlog_rows = s->backlog;
	pthread_mutex_unlock(&m->mu);
}
