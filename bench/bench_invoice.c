/*
 * bench_invoice: the invoice figures issue 4 names.
 *
 * A ledger of VMS VMs in TENANTS tenants with 10 meters and one row per
 * (VM, meter, hour) for October 2026 (1000 VMs: 7,440,000 rows) is written
 * straight into a fresh ledger (schema from ledger_open). Then, each in a
 * child process so that its peak RSS is its own, RUNS times:
 *   - the bare SQL: SELECT tenant, meter, sum(quantity) ... GROUP BY over
 *     the same rows (the floor: reading the rows at all), once as SQLite
 *     plans it and once through the series table as tally reads;
 *   - tally's invoices for every tenant of the month under
 *     config/plan-example.yaml (rating, lines, fees, discounts, taxes);
 *   - the same for the first half of the month, to show that memory does
 *     not grow with the number of hours;
 *   - tally usage's report of the month per tenant (no target: measured).
 * Medians are printed, and the ratio invoice / bare SQL (target <= 1.5).
 * With a PostgreSQL ledger location in BENCH_PG (an empty schema), the
 * ledger is also copied there (tally ledger copy, verified) and the month's
 * invoices timed on it, then again with its usage table in hour order, as
 * tallyd's commits leave it: issue 13's target, within 2x of SQLite.
 *
 * usage: bench_invoice [VMS [RUNS]]   (defaults 1000 3)
 */
#include "copy.h"
#include "invoice.h"
#include "ledger.h"
#include "err.h"
#include "meter.h"
#include "plan.h"
#include "tallytime.h"
#include "usage.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 (1790812800LL * NS_PER_SEC)   /* 2026-10-01T00:00:00Z */
#define HOURS 744

static const int meters[10] = { M_CPU, M_VCPUS, M_MEMORY, M_INSTANCE, M_DISK_READ_BYTES, M_DISK_WRITE_BYTES,
				M_DISK_READ_REQUESTS, M_DISK_CAPACITY, M_NET_IN_BYTES, M_NET_OUT_BYTES };
static const char *const flavors[3] = { "m1.small", "m1.medium", "m1.large" };

static int fill(const char *path, int vms, int tenants)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	sqlite3 *db;
	sqlite3_stmt *st;
	if (ledger_open(&l, path, &e)) {
		fprintf(stderr, "bench_invoice: %s\n", e.msg);
		return -1;
	}
	ledger_close(l);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", NULL, NULL, NULL);
	for (int m = 0; m < 10; m++) {
		char sql[256];
		const struct meter_def *md = &meter_table[meters[m]];
		snprintf(sql, sizeof(sql), "INSERT INTO meters (id, name, kind, unit) VALUES (%d, '%s', '%s', '%s')",
			 m + 1, md->name, md->kind == SAMPLE_GAUGE ? "gauge" : "cumulative", md->unit);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	sqlite3_prepare_v2(db, "INSERT INTO resources (id, uuid, name, tenant, flavor, labels, first_seen_ns,"
			       " last_seen_ns) VALUES (?1, ?2, ?2, ?3, ?4, 'flavor=' || ?4, ?5, ?6)", -1, &st, NULL);
	sqlite3_stmt *at;
	sqlite3_prepare_v2(db, "INSERT INTO resource_attrs (resource_id, since_ns, name, tenant, flavor, labels)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, 'flavor=' || ?5)", -1, &at, NULL);
	for (int v = 1; v <= vms; v++) {
		char uuid[48], tenant[32];
		snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012d", v);
		snprintf(tenant, sizeof(tenant), "tenant-%02d", v % tenants);
		sqlite3_bind_int(st, 1, v);
		sqlite3_bind_text(st, 2, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, tenant, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, flavors[v % 3], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, T0);
		sqlite3_bind_int64(st, 6, T0 + HOURS * NS_PER_HOUR);
		sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_bind_int(at, 1, v);
		sqlite3_bind_int64(at, 2, T0);
		sqlite3_bind_text(at, 3, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(at, 4, tenant, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(at, 5, flavors[v % 3], -1, SQLITE_STATIC);
		sqlite3_step(at);
		sqlite3_reset(at);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(at);
	sqlite3_prepare_v2(db, "INSERT INTO usage (resource_id, meter_id, hour_ns, quantity, spanned_ns, covered_ns,"
			       " samples) VALUES (?1, ?2, ?3, ?4, 3600000000000, 3600000000000, 6)", -1, &st, NULL);
	for (int v = 1; v <= vms; v++)
		for (int m = 0; m < 10; m++)
			for (int h = 0; h < HOURS; h++) {
				sqlite3_bind_int(st, 1, v);
				sqlite3_bind_int(st, 2, m + 1);
				sqlite3_bind_int64(st, 3, T0 + h * NS_PER_HOUR);
				if (meter_table[meters[m]].kind == SAMPLE_GAUGE)
					sqlite3_bind_double(st, 4, 3600.0 * (1 + v % 4) * (meters[m] == M_MEMORY ? 1073741824.0 : 1));
				else
					sqlite3_bind_int64(st, 4, (int64_t)(v * 7919 + h * 104729 + m) * 1000);
				if (sqlite3_step(st) != SQLITE_DONE) {
					fprintf(stderr, "bench_invoice: insert: %s\n", sqlite3_errmsg(db));
					return -1;
				}
				sqlite3_reset(st);
			}
	sqlite3_finalize(st);
	/* each series' state, as the aggregator keeps it beside its usage */
	sqlite3_exec(db, "INSERT INTO series (resource_id, meter_id, device, agent, last_ns, kind, last_value)"
			 " SELECT r.id, m.id, '', 'bench', r.last_seen_ns, m.kind, 0 FROM resources r, meters m",
		     NULL, NULL, NULL);
	sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	return 0;
}

/* The bare floor: one grouped sum over the same rows, as SQLite plans it
 * (through the hour index), or through the series table as tally reads. */
static const char *const bare[2] = {
	"SELECT r.tenant, u.meter_id, sum(u.quantity) FROM usage u JOIN resources r ON r.id = u.resource_id"
	" WHERE u.hour_ns >= ?1 AND u.hour_ns < ?2 GROUP BY r.tenant, u.meter_id",
	"SELECT r.tenant, u.meter_id, sum(u.quantity) FROM (SELECT DISTINCT resource_id, meter_id, device FROM"
	" series) s CROSS JOIN usage u JOIN resources r ON r.id = u.resource_id WHERE u.resource_id = s.resource_id"
	" AND u.meter_id = s.meter_id AND u.device = s.device AND u.hour_ns >= ?1 AND u.hour_ns < ?2"
	" GROUP BY r.tenant, u.meter_id",
};

static int bare_sql(const char *path, int which, int64_t from, int64_t to)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = 0;
	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_prepare_v2(db, bare[which], -1, &st, NULL);
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	while (sqlite3_step(st) == SQLITE_ROW)
		n++;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n > 0 ? 0 : 1;
}

static int invoices(const char *path, int64_t from, int64_t to, size_t *count)
{
	struct plan p;
	struct plan_errors errs;
	struct tally_err e = { 0 };
	struct invoice *v;
	size_t n;
	if (plan_load("config/plan-example.yaml", &p, &errs)) {
		fprintf(stderr, "bench_invoice: %s\n", errs.msg[0]);
		return 1;
	}
	struct rate_query q = { .ledger = path, .from_ns = from, .to_ns = to };
	if (invoice_build_all(&p, &q, &v, &n, &e)) {
		fprintf(stderr, "bench_invoice: %s\n", e.msg);
		return 1;
	}
	*count = n;
	for (size_t i = 0; i < n; i++)
		invoice_release(&v[i]);
	free(v);
	plan_release(&p);
	return 0;
}

/* The usage report of the period per tenant (tally usage --period). */
static int usage_report(const char *path, int64_t from, int64_t to)
{
	struct usage_query q = { .ledger = path, .from_ns = from, .to_ns = to, .meter = -1, .by = USAGE_BY_TENANT };
	struct usage_result r;
	struct tally_err e = { 0 };
	if (usage_query(&q, &r, &e)) {
		fprintf(stderr, "bench_invoice: %s\n", e.msg);
		return 1;
	}
	int rc = r.n > 0 ? 0 : 1;
	usage_result_release(&r);
	return rc;
}

/* Rewrite the PostgreSQL ledger's usage table in hour order, the order
 * tallyd's commits leave it in (tally ledger copy writes it series by
 * series), and refresh the planner's statistics. */
static int cluster_by_hour(const char *location)
{
	PGconn *c = PQconnectdb(location);
	int rc = 0;
	const char *const sql[2] = { "CLUSTER usage USING usage_hour", "ANALYZE usage" };
	for (int i = 0; i < 2 && !rc; i++) {
		PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql[i]) : NULL;
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "bench_invoice: %s: %s", sql[i], PQerrorMessage(c));
			rc = -1;
		}
		PQclear(r);
	}
	PQfinish(c);
	return rc;
}

/* Run what in a child; its wall seconds and peak RSS (KiB). */
static int timed(int what, const char *path, int64_t from, int64_t to, double *secs, long *rss_kib)
{
	int64_t t = time_mono_ns();
	pid_t pid = fork();
	if (pid == 0) {
		size_t n = 0;
		_exit(what < 2 ? bare_sql(path, what, from, to)
			       : what == 2 ? invoices(path, from, to, &n) : usage_report(path, from, to));
	}
	int status;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	*secs = (double)(time_mono_ns() - t) / 1e9;
	*rss_kib = ru.ru_maxrss;
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int vms = argc > 1 ? atoi(argv[1]) : 1000, runs = argc > 2 ? atoi(argv[2]) : 3;
	char dir[] = "/tmp/tally-bench-invoice-XXXXXX", path[128];
	if (vms < 1 || runs < 1 || runs > 15 || !mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	int64_t t = time_mono_ns();
	if (fill(path, vms, 50))
		return 1;
	printf("ledger: %d VMs, 50 tenants, 10 meters, %d hours = %lld rows (written in %.1f s)\n", vms, HOURS,
	       (long long)vms * 10 * HOURS, (double)(time_mono_ns() - t) / 1e9);
	static const char *const names[5] = { "bare SQL GROUP BY, hour index (month)",
					      "bare SQL GROUP BY, by series (month)",
					      "tally invoices, all tenants (month)",
					      "tally invoices, all tenants (half month)",
					      "tally usage, per tenant (month)" };
	double med[5];
	long rss[5] = { 0, 0, 0, 0, 0 };
	for (int w = 0; w < 5; w++) {
		double s[15];
		int64_t to = T0 + (w == 3 ? HOURS / 2 : HOURS) * NS_PER_HOUR;
		for (int r = 0; r < runs; r++) {
			long k;
			if (timed(w < 3 ? w : w == 3 ? 2 : 3, path, T0, to, &s[r], &k)) {
				fprintf(stderr, "bench_invoice: run failed\n");
				return 1;
			}
			rss[w] = k > rss[w] ? k : rss[w];
		}
		qsort(s, (size_t)runs, sizeof(double), cmp_d);
		med[w] = s[runs / 2];
		printf("%-42s median %7.3f s of %d (min %.3f, max %.3f), peak RSS %.1f MiB\n", names[w], med[w], runs, s[0],
		       s[runs - 1], (double)rss[w] / 1024);
	}
	printf("ratio invoices / bare SQL: %.2f against the series plan, %.2f against SQLite's own plan (target <= 1.5);"
	       " %.0f rows/s rated\n", med[2] / med[1], med[2] / med[0], (double)vms * 10 * HOURS / med[2]);
	const char *pg = getenv("BENCH_PG");
	if (pg && pg[0]) {
		struct ledger_copy_result cr;
		struct tally_err e = { 0 };
		if (ledger_copy(path, pg, &cr, &e)) {
			fprintf(stderr, "bench_invoice: %s\n", e.msg);
			return 1;
		}
		printf("copied to PostgreSQL: %lld rows, %lld totals verified, in %.1f s\n", (long long)cr.rows,
		       (long long)cr.totals, (double)cr.ns / 1e9);
		/* as copied (each series' rows together: the order SQLite keeps),
		 * then as tallyd writes them (hour by hour: CLUSTER by the hour
		 * index gives the table that order) */
		for (int layout = 0; layout < 2; layout++) {
			if (layout == 1 && cluster_by_hour(pg))
				return 1;
			for (int what = 2; what <= 3; what++) {
				double s[15];
				long k, r = 0;
				for (int i = 0; i < runs; i++) {
					if (timed(what, pg, T0, T0 + HOURS * NS_PER_HOUR, &s[i], &k)) {
						fprintf(stderr, "bench_invoice: run failed\n");
						return 1;
					}
					r = k > r ? k : r;
				}
				qsort(s, (size_t)runs, sizeof(double), cmp_d);
				printf("tally %s on PostgreSQL (month%s) median %7.3f s of %d (min %.3f, max %.3f), peak RSS"
				       " %.1f MiB\n", what == 2 ? "invoices" : "usage", layout ? ", hourly" : "", s[runs / 2],
				       runs, s[0], s[runs - 1], (double)r / 1024);
				printf("ratio PostgreSQL / SQLite, the month's %s, %s: %.2f%s\n",
				       what == 2 ? "invoices" : "usage report",
				       layout ? "rows hour by hour as tallyd writes them" : "rows in key order as copied",
				       s[runs / 2] / med[what == 2 ? 2 : 4], what == 2 ? " (target <= 2)" : "");
			}
		}
	}
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
