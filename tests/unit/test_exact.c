/*
 * test_exact.c: the whole pipeline against the simulated fleet's ground
 * truth.
 *
 * tallyd's all-in-one pipeline fast-forwards a month of a simulated fleet
 * with counter resets (reboots), stops, crashes, migrations between hosts and 5%
 * lost readings into a fresh ledger. The truth is computed here in closed
 * form from the sim's schedule (sim_lives) and rates alone: within a life,
 * counter m of device j grows by rate[m] * (j + 1) per second and gauges are
 * constant, so usage in an hour is rate * (seconds of the hour inside the
 * measured part of a life). The measured part of a life starts at its origin
 * when the sim saw it begin, else at the first tick (a baseline, rule 3),
 * and ends at its final reading (rule 4) or, for a life still going at the
 * end, at its last reading that was not lost.
 *
 * Every (VM, meter, device, hour) row of the ledger must equal the truth:
 * exactly for counters, within 1e-9 relative for gauge integrals; and the
 * per-series totals must match, so no truth row is missing from the ledger.
 */
#include <check.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline.h"
#include "err.h"
#include "meter.h"
#include "sim.h"
#include "tallytime.h"
#include "testutil.h"

#define MAX_LIVES 256

#define CONFIG_FMT \
	"tallyd:\n" \
	"  agent_id: test\n" \
	"  data_dir: %s\n" \
	"  interval: 60s\n" \
	"  clock: fast-forward\n" \
	"  start: 2026-10-01T00:00:00Z\n" \
	"  end: 2026-11-01T00:00:00Z\n" \
	"  log_level: warning\n" \
	"ledger:\n" \
	"  max_gap: 5m\n" \
	"  commit_every: 50ms\n" \
	"rrd:\n" \
	"  enabled: false\n" \
	"collectors:\n" \
	"  sim:\n" \
	"    vms: %u\n" \
	"    tenants: 2\n" \
	"    hosts: 3\n" \
	"    disks: 2\n" \
	"    nics: 1\n" \
	"    seed: %u\n" \
	"    loss: 0.05\n" \
	"    reboots_per_day: 0.5\n" \
	"    stops_per_day: 0.3\n" \
	"    migrations_per_day: 0.3\n" \
	"    crashes_per_day: 0.3\n"

struct vm_truth {
	struct sim_vm d;
	struct sim_life life[MAX_LIVES];
	int64_t ws[MAX_LIVES], we[MAX_LIVES];   /* measured window of each life */
	int n;
};

static struct sim_config sc;
static struct vm_truth *truth;
static int64_t end_ns;

static int64_t overlap_s(int64_t a, int64_t b, int64_t lo, int64_t hi)
{
	int64_t x = a > lo ? a : lo, y = b < hi ? b : hi;
	return y > x ? (y - x) / NS_PER_SEC : 0;
}

/* Is meter m of device dev a series the sim sends, and at what rate/level? */
static int series_value(const struct vm_truth *v, int m, const char *dev, double *level, uint64_t *rate)
{
	int j = -1;
	const char *group = meter_table[m].rrd_group;
	for (uint32_t d = 0; d < sc.disks; d++)
		if (!strcmp(group, "disk") && !strcmp(dev, v->d.dev[d]))
			j = (int)d;
	for (uint32_t n = 0; n < sc.nics; n++)
		if (!strcmp(group, "net") && !strcmp(dev, v->d.dev[SIM_MAX_DEVS + n]))
			j = (int)n;
	*level = 0;
	*rate = 0;
	switch (m) {
	case M_CPU: *rate = v->d.rate[m]; return dev[0] == 0;
	case M_VCPUS: *level = v->d.vcpus; return dev[0] == 0;
	case M_MEMORY: *level = (double)v->d.memory_bytes; return dev[0] == 0;
	case M_INSTANCE: *level = 1; return dev[0] == 0;
	case M_DISK_CAPACITY: *level = (double)v->d.disk_bytes; return j >= 0;
	default:
		if (j < 0 || meter_table[m].kind != SAMPLE_CUMULATIVE)
			return 0;
		*rate = v->d.rate[m] * (uint64_t)(j + 1);
		return 1;
	}
}

static void build_truth(unsigned vms)
{
	truth = calloc(vms, sizeof(*truth));
	ck_assert_ptr_nonnull(truth);
	int64_t last_k = (end_ns - sc.start_ns) / sc.interval_ns;
	for (unsigned i = 0; i < vms; i++) {
		struct vm_truth *v = &truth[i];
		sim_vm_describe(&sc, i, &v->d);
		v->n = sim_lives(&sc, i, end_ns, v->life, MAX_LIVES);
		ck_assert_int_le(v->n, MAX_LIVES);
		for (int l = 0; l < v->n; l++) {
			const struct sim_life *L = &v->life[l];
			v->ws[l] = L->origin_known ? L->start_ns : sc.start_ns;
			if (L->end_ns != INT64_MAX) {
				v->we[l] = L->end_ns;
				continue;
			}
			/* still running at the end: its last reading that was not lost */
			int64_t k = last_k;
			while (k > 0 && sim_tick_lost(&sc, i, k) &&
			       sc.start_ns + k * sc.interval_ns > L->start_ns)
				k--;
			int64_t t = sc.start_ns + k * sc.interval_ns;
			v->we[l] = t > L->start_ns ? t : v->ws[l];
		}
	}
}

static int run_pipeline(const char *dir, unsigned vms, unsigned seed)
{
	char text[2048];
	struct daemon_config cfg;
	struct pipeline_summary sum;
	struct tally_err e = { 0 };
	volatile sig_atomic_t stop = 0;

	snprintf(text, sizeof(text), CONFIG_FMT, dir, vms, seed);
	ck_assert_msg(daemon_config_load(&cfg, "test_exact.yaml", text, &e) == 0, "%s", e.msg);
	int rc = pipeline_run(&cfg, NULL, &stop, &sum, &e);
	ck_assert_msg(rc == 0, "%s", e.msg);
	ck_assert_uint_eq(sum.resets, 0);     /* every reset came with a final reading */
	ck_assert_uint_gt(sum.from_zero, 0);  /* lives that began while watched */
	daemon_config_release(&cfg);
	return rc;
}

static void check_ledger(const char *path, unsigned vms)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
		"SELECT r.uuid, m.name, u.device, u.hour_ns, u.quantity, typeof(u.quantity)"
		" FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id",
		-1, &st, NULL), SQLITE_OK);

	/* per (vm, meter, device slot) totals, to find missing rows */
	enum { SLOTS = 1 + 2 * SIM_MAX_DEVS };
	double (*tot)[METER_COUNT][SLOTS] = calloc(vms, sizeof(*tot));
	ck_assert_ptr_nonnull(tot);
	long rows = 0, counter_rows = 0, gauge_rows = 0;

	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *uuid = (const char *)sqlite3_column_text(st, 0);
		const char *mname = (const char *)sqlite3_column_text(st, 1);
		const char *dev = (const char *)sqlite3_column_text(st, 2);
		int64_t hour = sqlite3_column_int64(st, 3);
		int m = meter_lookup(mname);
		unsigned i;
		for (i = 0; i < vms; i++)
			if (!strcmp(truth[i].d.uuid, uuid))
				break;
		ck_assert_msg(i < vms, "ledger has a resource the sim never had: %s", uuid);
		const struct vm_truth *v = &truth[i];
		double level;
		uint64_t rate;
		ck_assert_msg(m >= 0 && series_value(v, m, dev, &level, &rate), "unexpected series %s %s '%s'",
			      uuid, mname, dev);
		int slot = 0;
		for (int d = 0; d < 2 * SIM_MAX_DEVS; d++)
			if (!strcmp(dev, v->d.dev[d]))
				slot = 1 + d;
		int64_t secs = 0;
		for (int l = 0; l < v->n; l++)
			secs += overlap_s(v->ws[l], v->we[l], hour, hour + NS_PER_HOUR);
		rows++;
		if (meter_table[m].kind == SAMPLE_CUMULATIVE) {
			uint64_t want = rate * (uint64_t)secs;
			uint64_t got = (uint64_t)sqlite3_column_int64(st, 4);
			ck_assert_msg(!strcmp((const char *)sqlite3_column_text(st, 5), "integer"),
				      "counter stored as %s", sqlite3_column_text(st, 5));
			ck_assert_msg(got == want, "%s %s %s hour %lld: ledger %llu, truth %llu (%lld s)", v->d.name,
				      mname, dev, (long long)(hour / NS_PER_SEC), (unsigned long long)got,
				      (unsigned long long)want, (long long)secs);
			tot[i][m][slot] += (double)got;
			counter_rows++;
		} else {
			double want = level * (double)secs;
			double got = sqlite3_column_double(st, 4);
			ck_assert_msg(!strcmp((const char *)sqlite3_column_text(st, 5), "real"),
				      "gauge integral stored as %s", sqlite3_column_text(st, 5));
			ck_assert_msg(fabs(got - want) <= 1e-9 * fabs(want), "%s %s %s hour %lld: ledger %.17g,"
				      " truth %.17g", v->d.name, mname, dev, (long long)(hour / NS_PER_SEC), got, want);
			tot[i][m][slot] += got;
			gauge_rows++;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* totals: what the truth says each series used in the whole run */
	for (unsigned i = 0; i < vms; i++) {
		const struct vm_truth *v = &truth[i];
		int64_t secs = 0;
		for (int l = 0; l < v->n; l++)
			secs += overlap_s(v->ws[l], v->we[l], INT64_MIN / 2, INT64_MAX / 2);
		for (int m = 0; m < METER_COUNT; m++)
			for (int slot = 0; slot < SLOTS; slot++) {
				const char *dev = slot ? v->d.dev[slot - 1] : "";
				double level;
				uint64_t rate;
				if (!series_value(v, m, dev, &level, &rate))
					continue;
				if (slot > 0 && slot - 1 < SIM_MAX_DEVS && (uint32_t)(slot - 1) >= sc.disks)
					continue;
				if (slot > SIM_MAX_DEVS && (uint32_t)(slot - 1 - SIM_MAX_DEVS) >= sc.nics)
					continue;
				double want = meter_table[m].kind == SAMPLE_CUMULATIVE
						      ? (double)rate * (double)secs : level * (double)secs;
				ck_assert_msg(fabs(tot[i][m][slot] - want) <= 1e-9 * want,
					      "%s %s '%s': ledger total %.17g, truth %.17g", v->d.name,
					      meter_table[m].name, dev, tot[i][m][slot], want);
			}
	}
	free(tot);
	ck_assert_int_gt(counter_rows, 0);
	ck_assert_int_gt(gauge_rows, 0);
	fprintf(stderr, "exact: %ld ledger rows compared (%ld counter, %ld gauge)\n", rows, counter_rows,
		gauge_rows);
}

START_TEST(test_month_exact)
{
	const unsigned vms = 8, seed = 7;
	char dir[64], path[512];
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "exact");

	sim_config_default(&sc);
	sc.vms = vms;
	sc.tenants = 2;
	sc.hosts = 3;
	sc.disks = 2;
	sc.nics = 1;
	sc.seed = seed;
	sc.loss = 0.05;
	sc.reboots_per_day = 0.5;
	sc.stops_per_day = 0.3;
	sc.migrations_per_day = 0.3;
	sc.crashes_per_day = 0.3;
	sc.interval_ns = 60 * NS_PER_SEC;
	int64_t x;
	ck_assert_int_eq(time_parse_range("2026-10-01T00:00:00Z", &sc.start_ns, &x, &e), 0);
	ck_assert_int_eq(time_parse_range("2026-11-01T00:00:00Z", &end_ns, &x, &e), 0);
	build_truth(vms);
	int resets = 0, migrations = 0, stops = 0, crashes = 0;
	for (unsigned i = 0; i < vms; i++)
		for (int l = 0; l < truth[i].n; l++) {
			resets += truth[i].life[l].ended_by == SIM_EV_REBOOT;
			migrations += truth[i].life[l].ended_by == SIM_EV_MIGRATE;
			stops += truth[i].life[l].ended_by == SIM_EV_STOP;
			crashes += truth[i].life[l].ended_by == SIM_EV_CRASH;
		}
	/* the month must actually exercise each kind of edge */
	ck_assert_int_gt(resets, 10);
	ck_assert_int_gt(migrations, 10);
	ck_assert_int_gt(stops, 10);
	ck_assert_int_gt(crashes, 10);

	run_pipeline(dir, vms, seed);
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	check_ledger(path, vms);
	free(truth);
	tu_rmrf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("exact");
	TCase *tc = tcase_create("month");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_month_exact);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
