/*
 * test_ledger.c: the ledger refuses what it must not touch, and the
 * aggregator keeps rule 7 (durable before acknowledged, idempotent ingest).
 *
 * Refusals: a ledger from a newer schema, a file that is not SQLite, an
 * SQLite file of someone else, a corrupt ledger (also one only
 * integrity_check sees), a second writer; each is refused with a clear
 * message and left byte-for-byte unchanged. The hash chain names the commit
 * whose usage was changed. Faults: a commit that fails as a full disk would
 * (a full disk forced through the fault injector, common/fault.h, as
 * SQLite's own harness forces it: a real full disk is in tests/integration/diskfull*.sh)
 * loses nothing committed before it, and keeps what it held for the next.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator.h"
#include "err.h"
#include "fault.h"
#include "ledger.h"
#include "ledger_backend.h"
#include "reader.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

#define T0 (1790812800LL * NS_PER_SEC)

static char dir[64], path[512];

static void setup(void)
{
	tu_mkdtemp(dir, sizeof(dir), "ledger");
	tu_ledger_location(path, sizeof(path), dir, "ledger.db");
}

static void teardown(void)
{
	tu_rmrf(dir);
	fault_disarm();
}

/* the file's bytes, to prove a refused file was not touched */
static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void sql(const char *p, const char *q)
{
	tu_ledger_sql(p, q);
}

static int64_t sql_int(const char *p, const char *q)
{
	return tu_ledger_int(p, q);
}

static void expect_refused(const char *why, const char *needle, int code)
{
	size_t n1, n2;
	char *before = slurp(path, &n1);
	struct ledger *l = NULL;
	struct tally_err e = { 0 };
	int rc = ledger_open(&l, path, &e);
	ck_assert_msg(rc == code, "%s: ledger_open returned %d, expected %d (%s)", why, rc, code, e.msg);
	ck_assert_ptr_null(l);
	ck_assert_msg(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", why, e.msg, needle);
	ck_assert_msg(strstr(e.msg, path) != NULL, "%s: message '%s' does not name the file", why, e.msg);
	char *after = slurp(path, &n2);
	ck_assert_msg(n1 == n2 && memcmp(before, after, n1) == 0, "%s: the file was changed", why);
	free(before);
	free(after);
}

START_TEST(test_create_and_reopen)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
	ck_assert_int_eq(sql_int(path, "PRAGMA application_id"), LEDGER_APP_ID);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'usage'"), 1);
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_close(l);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_close(l);
	sql(path, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99");
	expect_refused("newer schema", "schema version 99 is newer", -EPROTO);
}
END_TEST

/* A version 1 ledger (schemas/ledger.sql alone, as the first release
 * wrote it) with usage in it is migrated forward on open: its rows stay,
 * the invoice tables appear, and issued invoices refuse to change. */
START_TEST(test_migrates_version_1)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	sql(path, ledger_migrations[0]);
	sql(path, "PRAGMA user_version = 1;"
		  " INSERT INTO meters (id, name, kind, unit) VALUES (1, 'cpu', 'cumulative', 'ns');"
		  " INSERT INTO resources (id, uuid, first_seen_ns, last_seen_ns) VALUES (1, 'vm-1', 0, 0);"
		  " INSERT INTO usage (resource_id, meter_id, hour_ns, quantity) VALUES (1, 1, 0, 12345);");
	ck_assert_msg(ledger_open(&l, path, &e) == 0, "%s", e.msg);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 12345);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'invoices'"), 1);
	/* the meta table says who upgraded it, and does not invent a creator */
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta WHERE key = 'upgraded_by'"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta WHERE key = 'created_by'"), 0);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta WHERE key = 'written_by'"), 1);
	/* the chain starts at the upgrade, sealing the one hour as found */
	struct ledger_verify v;
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_int_eq(v.problems, 0);
	ck_assert_int_eq(v.commits, 1);
	ck_assert(v.upgraded);
	ck_assert_int_eq(v.sealed_hours, 1);
	sql(path, "UPDATE usage SET quantity = 12346");
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_int_eq(v.bad_commit, 1);
	sql(path, "UPDATE usage SET quantity = 12345");
	sql(path, "INSERT INTO invoices (issuer, number, tenant, from_ns, to_ns, issued_ns, currency, base_minor,"
		  " subtotal_minor, total_minor, plan_text, document, sha256) VALUES ('x', 1, 't', 0, 1, 0, 'EUR',"
		  " 1, 1, 1, '', '{}', '')");
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_ne(sqlite3_exec(db, "UPDATE invoices SET total_minor = 0", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_ptr_nonnull(strstr(sqlite3_errmsg(db), "issued invoices never change"));
	ck_assert_int_ne(sqlite3_exec(db, "DELETE FROM invoices", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(sql_int(path, "SELECT total_minor FROM invoices"), 1);
}
END_TEST

START_TEST(test_not_sqlite_refused)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 200; i++)
		fputs("these are somebody's notes, not a database\n", f);
	fclose(f);
	expect_refused("text file", "not a tally ledger", -EINVAL);
}
END_TEST

START_TEST(test_foreign_sqlite_refused)
{
	sql(path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount INTEGER)");
	expect_refused("foreign database", "not a tally ledger", -EINVAL);
}
END_TEST

START_TEST(test_corrupt_refused)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_close(l);
	/* fill the ledger so it spans several pages, then scribble on page 3 */
	sql(path, "PRAGMA journal_mode = DELETE;"
		  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
		  " INSERT INTO resources (uuid, first_seen_ns, last_seen_ns)"
		  " SELECT printf('uuid-%06d', i), i, i FROM n");
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	char junk[512];
	memset(junk, 0xA5, sizeof(junk));
	for (int pg = 2; pg < 6; pg++) /* page headers and cell pointers */
		ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), 4096 * pg), (ssize_t)sizeof(junk));
	close(fd);
	expect_refused("corrupt ledger", "corrupt", -EINVAL);
}
END_TEST

/* One writer per ledger: a second ledger_open (in this process: flock
 * locks belong to the open file, so a second open conflicts as another
 * process's would) is refused with the holder's pid and host and leaves the
 * ledger unchanged; a reader is not kept out; the first writer still
 * writes; once it closes, the next writer gets the lock. */
START_TEST(test_second_writer_refused)
{
	struct ledger *l, *l2 = NULL;
	struct tally_err e = { 0 };
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	int64_t id;
	ck_assert_int_eq(ledger_meter_id(l, "cpu", "cumulative", "ns", &id, &e), 0);
	ck_assert_int_eq(ledger_commit(l, &e), 0);

	char host[256] = "", pid[32], lock[160];
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	snprintf(pid, sizeof(pid), "pid %ld on host %s since ", (long)getpid(), host);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	size_t n1, n2;
	char *before = slurp(path, &n1);
	ck_assert_int_eq(ledger_open(&l2, path, &e), -EBUSY);
	ck_assert_ptr_null(l2);
	ck_assert_msg(strstr(e.msg, pid) && strstr(e.msg, lock) && strstr(e.msg, path), "%s", e.msg);
	char *after = slurp(path, &n2);
	ck_assert_msg(n1 == n2 && !memcmp(before, after, n1), "the refused writer changed the ledger");
	free(before);
	free(after);

	/* a reader is not kept out */
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meters WHERE name = 'cpu'"), 1);
	/* the holder goes on writing */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_int_eq(ledger_meter_id(l, "vcpus", "gauge", "vCPUs", &id, &e), 0);
	ck_assert_int_eq(ledger_commit(l, &e), 0);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meters"), 2);
	/* and the next writer gets it once the holder is gone */
	ck_assert_msg(ledger_open(&l2, path, &e) == 0, "%s", e.msg);
	ledger_close(l2);
}
END_TEST

/* One reading of res's meter (device dev) at t: a counter v, or a gauge g
 * when the meter is a gauge. */
static void add_reading(struct batch *b, const char *res, int meter, const char *dev, int64_t t, uint64_t v,
			double g)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, res, sizeof(s.resource));
	str_copy(s.device, dev, sizeof(s.device));
	s.meter = (uint16_t)meter;
	s.kind = (uint8_t)meter_table[meter].kind;
	s.time_ns = t;
	if (s.kind == SAMPLE_GAUGE)
		s.v.gauge = g;
	else
		s.v.counter = v;
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
}

static void add(struct batch *b, const char *res, int meter, int64_t t, uint64_t v)
{
	add_reading(b, res, meter, "", t, v, 0);
}

static int64_t cpu_total(void)
{
	return sql_int(path, "SELECT coalesce(sum(quantity), 0) FROM usage u JOIN meters m"
			     " ON m.id = u.meter_id WHERE m.name = 'cpu'");
}

/* Agents' batches reach an aggregator in any order between agents: a VM
 * that moved from host-a to host-b, whose host-b batch (later readings)
 * arrives first, is first seen at host-a's earlier reading and last seen
 * at host-b's, on host-b (before: first_seen was whichever batch came
 * first, and host whichever came last). */
START_TEST(test_resource_sightings_out_of_order)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-b");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 100 * NS_PER_SEC, 5000);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_release(&b);
	batch_init(&b, "host-a");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 1000);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	batch_release(&b);
	ck_assert_int_eq(sql_int(path, "SELECT first_seen_ns FROM resources WHERE uuid = 'vm-1'"),
			 T0 + 10 * NS_PER_SEC);
	ck_assert_int_eq(sql_int(path, "SELECT last_seen_ns FROM resources WHERE uuid = 'vm-1'"),
			 T0 + 100 * NS_PER_SEC);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM resources WHERE uuid = 'vm-1' AND host = 'host-b'"), 1);
}
END_TEST

START_TEST(test_duplicate_batch_counts_once)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 1000);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	b.seq = 2;
	add(&b, "vm-1", M_CPU, T0 + 20 * NS_PER_SEC, 1600);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 1);     /* seen before commit */
	ck_assert_int_eq(agg_commit(a, &e), 0);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 1);     /* seen after commit */
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 600);
	/* after a restart the ledger still knows seq 2 */
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	ck_assert_uint_eq(agg_agent_seq(a, "host-a"), 2);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 1);
	/* and the series continues from its stored reading: 1600 -> 2000 */
	batch_clear(&b);
	b.seq = 3;
	add(&b, "vm-1", M_CPU, T0 + 30 * NS_PER_SEC, 2000);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 1000);
	batch_release(&b);
}
END_TEST

/* A writer records an agent's batches only over the seq its state was
 * built on: a second writer that committed the agent's batches meanwhile
 * (PostgreSQL with two aggregators) makes the first one's commit fail,
 * nothing of it written, rather than count the batches twice. */
START_TEST(test_agent_seq_must_follow)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	struct ledger_agent a = { .agent = "host-a", .from_seq = 0, .last_seq = 5, .last_time_ns = T0, .batches = 5 };
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l, &a, &e), 0);
	ck_assert_int_eq(ledger_commit(l, &e), 0);
	/* built on seq 3: someone else went on to 5 */
	a.from_seq = 3;
	a.last_seq = 6;
	a.batches = 6;
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l, &a, &e), -ESTALE);
	ck_assert_msg(strstr(e.msg, "host-a") && strstr(e.msg, "seq 3"), "%s", e.msg);
	ledger_rollback(l);
	ck_assert(ledger_idle(l));
	ck_assert_int_eq(sql_int(path, "SELECT last_seq FROM agents WHERE agent = 'host-a'"), 5);
	/* built on 5: goes on */
	a.from_seq = 5;
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l, &a, &e), 0);
	ck_assert_int_eq(ledger_commit(l, &e), 0);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT last_seq FROM agents WHERE agent = 'host-a'"), 6);
}
END_TEST

/* Issue 10, finding 7: a commit that fails as on a full disk is rolled
 * back, and everything it held stays in memory: ingest goes on, a later
 * commit writes all of it (and the hash chain stays whole). A process that
 * dies before that loses only what was not committed, and the batches it
 * had not committed are counted once when they come again. */
START_TEST(test_failed_commit_loses_nothing_committed)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct agg_stats st;
	struct ledger_verify v;
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 100);
	add(&b, "vm-1", M_CPU, T0 + 20 * NS_PER_SEC, 400);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	batch_clear(&b);
	b.seq = 2;
	add(&b, "vm-1", M_CPU, T0 + 30 * NS_PER_SEC, 900);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	fault_arm(FAULT_COMMIT, 1, true);   /* every commit fails as on a full disk */
	ck_assert_int_eq(agg_commit(a, &e), -ENOSPC);
	ck_assert_msg(strstr(e.msg, path) != NULL, "message '%s' does not name the ledger", e.msg);
	ck_assert(!agg_broken(a));
	/* ingest goes on: the batch is known, the next one is taken */
	ck_assert_int_eq(agg_ingest(a, &b, &e), 1);
	batch_clear(&b);
	b.seq = 3;
	add(&b, "vm-1", M_CPU, T0 + 40 * NS_PER_SEC, 1500);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), -ENOSPC);
	agg_get_stats(a, &st);
	ck_assert_uint_eq(st.commit_failures, 2);
	ck_assert_uint_eq(st.commit_failures_in_row, 2);
	ck_assert_int_eq(cpu_total(), 300);
	/* space again: one commit writes all of it */
	fault_disarm();
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_get_stats(a, &st);
	ck_assert_uint_eq(st.commit_failures_in_row, 0);
	ck_assert_int_eq(cpu_total(), 1400);
	ck_assert_int_eq(sql_int(path, "SELECT last_seq FROM agents"), 3);
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_msg(v.problems == 0, "%s", v.first);
	ck_assert_int_eq(v.commits, 2);

	/* a failure, then the process dies: what was committed stays */
	batch_clear(&b);
	b.seq = 4;
	add(&b, "vm-1", M_CPU, T0 + 50 * NS_PER_SEC, 2000);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	fault_arm(FAULT_COMMIT, 1, true);   /* every commit fails as on a full disk */
	ck_assert_int_eq(agg_commit(a, &e), -ENOSPC);
	fault_disarm();
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 1400);
	/* reopened, it takes the unacknowledged batch again and counts it once */
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	ck_assert_uint_eq(agg_agent_seq(a, "host-a"), 3);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 1900);
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_msg(v.problems == 0, "%s", v.first);
	batch_release(&b);
}
END_TEST

START_TEST(test_metadata_history)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	struct resource_meta m;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	memset(&m, 0, sizeof(m));
	str_copy(m.resource, "vm-1", sizeof(m.resource));
	str_copy(m.tenant, "acme", sizeof(m.tenant));
	str_copy(m.flavor, "m1.small", sizeof(m.flavor));
	m.time_ns = T0;
	b.seq = 1;
	batch_add_meta(&b, &m);
	batch_add_meta(&b, &m);                 /* unchanged: no new history row */
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	m.time_ns = T0 + 15 * 86400 * NS_PER_SEC;
	str_copy(m.flavor, "m1.large", sizeof(m.flavor));  /* resized mid-month */
	b.seq = 2;
	batch_add_meta(&b, &m);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM resource_attrs"), 2);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM resources WHERE flavor = 'm1.large'"
				       " AND tenant = 'acme'"), 1);
	batch_release(&b);
}
END_TEST

/* agg_must_commit(): what a real-time tallyd commits at once rather than
 * at its next periodic commit. Each row is one batch ingested after the
 * previous one was committed; the expected answer follows from the rule
 * (aggregator.h), not from running the code: only counter progress and
 * unchanged gauges may wait. */
START_TEST(test_must_commit)
{
	static const struct {
		const char *what, *res;
		int meter, kind;         /* kind: SAMPLE_*; -1 = an event, -2 = metadata */
		int t_s;
		double v;
		int64_t origin_s;
		unsigned flags;
		bool want;
	} rows[] = {
		{ "first cpu reading: baseline", "vm-1", M_CPU, SAMPLE_CUMULATIVE, 10, 1000, 0, 0, true },
		{ "first vcpus reading", "vm-1", M_VCPUS, SAMPLE_GAUGE, 10, 2, 0, 0, true },
		{ "cpu goes on", "vm-1", M_CPU, SAMPLE_CUMULATIVE, 20, 1600, 0, 0, false },
		{ "vcpus unchanged", "vm-1", M_VCPUS, SAMPLE_GAUGE, 20, 2, 0, 0, false },
		{ "vcpus changed", "vm-1", M_VCPUS, SAMPLE_GAUGE, 30, 4, 0, 0, true },
		{ "vcpus unchanged again", "vm-1", M_VCPUS, SAMPLE_GAUGE, 40, 4, 0, 0, false },
		{ "first memory.resident reading", "vm-1", M_MEMORY_RESIDENT, SAMPLE_GAUGE, 40, 1e9, 0, 0, true },
		{ "memory.resident moved: a measured level", "vm-1", M_MEMORY_RESIDENT, SAMPLE_GAUGE, 45, 2e9, 0, 0, false },
		{ "disk capacity first", "vm-1", M_DISK_CAPACITY, SAMPLE_GAUGE, 45, 1e10, 0, 0, true },
		{ "disk capacity grown", "vm-1", M_DISK_CAPACITY, SAMPLE_GAUGE, 46, 2e10, 0, 0, true },
		{ "disk allocation first", "vm-1", M_DISK_ALLOCATION, SAMPLE_GAUGE, 45, 1e9, 0, 0, true },
		{ "disk allocation grown: a measured level", "vm-1", M_DISK_ALLOCATION, SAMPLE_GAUGE, 46, 3e9, 0, 0, false },
		{ "instance 1 first", "vm-1", M_INSTANCE, SAMPLE_GAUGE, 45, 1, 0, 0, true },
		{ "instance 0: paused", "vm-1", M_INSTANCE, SAMPLE_GAUGE, 46, 0, 0, 0, true },
		{ "cpu went down: reset", "vm-1", M_CPU, SAMPLE_CUMULATIVE, 40, 500, 0, 0, true },
		{ "cpu final reading", "vm-1", M_CPU, SAMPLE_CUMULATIVE, 50, 900, 0, SAMPLE_F_LAST, true },
		{ "cpu new life from its origin", "vm-1", M_CPU, SAMPLE_CUMULATIVE, 70, 300, 60, 0, true },
		{ "cpu goes on in the new life", "vm-1", M_CPU, SAMPLE_CUMULATIVE, 80, 800, 60, 0, false },
		{ "a delta reading", "vm-1", M_NET_IN_BYTES, SAMPLE_DELTA, 80, 10, 0, 0, true },
		{ "a lifecycle event", "vm-1", 0, -1, 85, 0, 0, 0, true },
		{ "metadata", "vm-1", 0, -2, 85, 0, 0, 0, true },
		{ "the same metadata again", "vm-1", 0, -2, 86, 0, 0, 0, false },
		{ "another vm's first reading", "vm-2", M_CPU, SAMPLE_CUMULATIVE, 90, 5, 0, 0, true },
		{ "a reading not after the last: dropped", "vm-2", M_CPU, SAMPLE_CUMULATIVE, 90, 7, 0, 0, false },
	};
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	ck_assert(!agg_must_commit(a));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		batch_clear(&b);
		b.seq = i + 1;
		int64_t t = T0 + rows[i].t_s * NS_PER_SEC;
		if (rows[i].kind == -1) {
			struct lifecycle_event ev;
			memset(&ev, 0, sizeof(ev));
			ev.time_ns = t;
			str_copy(ev.resource, rows[i].res, sizeof(ev.resource));
			str_copy(ev.type, "suspended", sizeof(ev.type));
			ck_assert_int_eq(batch_add_event(&b, &ev), 0);
		} else if (rows[i].kind == -2) {
			struct resource_meta m;
			memset(&m, 0, sizeof(m));
			m.time_ns = t;
			str_copy(m.resource, rows[i].res, sizeof(m.resource));
			str_copy(m.tenant, "acme", sizeof(m.tenant));
			ck_assert_int_eq(batch_add_meta(&b, &m), 0);
		} else {
			struct sample s;
			memset(&s, 0, sizeof(s));
			str_copy(s.resource, rows[i].res, sizeof(s.resource));
			s.meter = (uint16_t)rows[i].meter;
			s.kind = (uint8_t)rows[i].kind;
			s.time_ns = t;
			s.origin_ns = rows[i].origin_s ? T0 + rows[i].origin_s * NS_PER_SEC : 0;
			s.flags = (uint8_t)rows[i].flags;
			if (s.kind == SAMPLE_GAUGE)
				s.v.gauge = rows[i].v;
			else
				s.v.counter = (uint64_t)rows[i].v;
			ck_assert_int_eq(batch_add_sample(&b, &s), 0);
		}
		ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
		ck_assert_msg(agg_must_commit(a) == rows[i].want, "row %zu (%s): must_commit %d, want %d", i,
			      rows[i].what, agg_must_commit(a), rows[i].want);
		ck_assert_int_eq(agg_commit(a, &e), 0);
		ck_assert(!agg_must_commit(a));
	}
	agg_close(a);
	batch_release(&b);
}
END_TEST

static void add_gauge(struct batch *b, const char *res, int meter, int64_t t, double v)
{
	add_reading(b, res, meter, "", t, 0, v);
}

/* A process that dies between two commits loses the readings it had not
 * committed, and agg_must_commit() was false for them: the reopened
 * aggregator counts the same usage from the last committed reading.
 * cpu: 1000 at 10 s (committed), 1600 at 20 s (lost), 2500 at 30 s:
 * 2500 - 1000 = 1500 ns. vcpus: 2 from 10 s to 30 s = 40 vCPU-seconds,
 * as if the reading at 20 s had been committed (2 x 10 + 2 x 10). */
START_TEST(test_death_between_commits_loses_no_usage)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 1000);
	add_gauge(&b, "vm-1", M_VCPUS, T0 + 10 * NS_PER_SEC, 2);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	batch_clear(&b);
	b.seq = 2;
	add(&b, "vm-1", M_CPU, T0 + 20 * NS_PER_SEC, 1600);
	add_gauge(&b, "vm-1", M_VCPUS, T0 + 20 * NS_PER_SEC, 2);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert(!agg_must_commit(a));
	agg_close(a); /* dies: no commit */
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	ck_assert_uint_eq(agg_agent_seq(a, "host-a"), 1);
	batch_clear(&b);
	b.seq = 2;
	add(&b, "vm-1", M_CPU, T0 + 30 * NS_PER_SEC, 2500);
	add_gauge(&b, "vm-1", M_VCPUS, T0 + 30 * NS_PER_SEC, 2);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 1500);
	ck_assert_int_eq(sql_int(path, tu_pg() ? "SELECT sum(quantity_real) FROM usage u JOIN meters m"
				       " ON m.id = u.meter_id WHERE m.name = 'vcpus'" : "SELECT sum(quantity) FROM usage u"
				       " JOIN meters m ON m.id = u.meter_id WHERE m.name = 'vcpus'"), 40);
	batch_release(&b);
}
END_TEST

/* The ledger opened, a transaction begun, and resource 1 (vm-1) in it. */
static struct ledger *begin_with_vm1_at(const char *location)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	ck_assert_msg(ledger_open(&l, location, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	struct ledger_resource r = { .id = 1, .first_seen_ns = T0, .last_seen_ns = T0 };
	str_copy(r.meta.resource, "vm-1", sizeof(r.meta.resource));
	ck_assert_int_eq(ledger_put_resource(l, &r, false, &e), 0);
	ck_assert_int_eq(r.id, 1);
	return l;
}

static struct ledger *begin_with_vm1(void)
{
	return begin_with_vm1_at(path);
}

static void commit_or_fail(struct ledger *l)
{
	struct tally_err e = { 0 };
	ck_assert_msg(ledger_commit(l, &e) == 0, "%s", e.msg);
}

/* The usage and series writers take a hint that the row exists (update in
 * place); a wrong hint still writes the row. Quantities by hand: 5 + 7. */
START_TEST(test_exists_hint)
{
	struct ledger *l = begin_with_vm1();
	struct tally_err e = { 0 };
	struct ledger_usage u = { .resource_id = 1, .meter_id = 1, .device = "vda", .hour_ns = T0,
				  .qty = 5, .spanned_ns = 10, .covered_ns = 10, .samples = 1, .exists = 1 };
	ck_assert_int_eq(ledger_add_usage(l, &u, &e), 0);       /* hint wrong: inserted */
	u.qty = 7;
	u.exists = 0;
	ck_assert_int_eq(ledger_add_usage(l, &u, &e), 0);       /* hint missing: added to */
	u.qty = 0;
	u.samples = 2;
	u.exists = 1;
	ck_assert_int_eq(ledger_add_usage(l, &u, &e), 0);       /* hint right: added to */
	struct ledger_series sr = { .resource_id = 1, .meter_id = 1, .device = "vda", .agent = "h",
				    .last_ns = T0, .kind = SAMPLE_CUMULATIVE, .last_counter = 40,
				    .exists = 1 };
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);    /* hint wrong: inserted */
	sr.last_ns = T0 + NS_PER_SEC;
	sr.last_counter = 90;
	sr.flags = 3;
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);    /* updated in place */
	ck_assert_int_eq(ledger_commit(l, &e), 0);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 12);
	ck_assert_int_eq(sql_int(path, "SELECT samples FROM usage"), 4);
	ck_assert_int_eq(sql_int(path, "SELECT spanned_ns FROM usage"), 30);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM series"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT last_value FROM series WHERE kind = 'cumulative'"
				       " AND flags = 3"), 90);
	ck_assert_int_eq(sql_int(path, "SELECT last_ns FROM series"), T0 + NS_PER_SEC);

	/* A commit whose rows are each written once, hinted there, one of
	 * each right (vda) and one wrong (vdb): vda 12 + 1, vdb 3; both
	 * series with their new readings. */
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	u.qty = 1;
	u.samples = 1;
	ck_assert_int_eq(ledger_add_usage(l, &u, &e), 0);
	u.device = "vdb";
	u.qty = 3;
	ck_assert_int_eq(ledger_add_usage(l, &u, &e), 0);
	sr.last_counter = 100;
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);
	sr.device = "vdb";
	sr.last_counter = 8;
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);
	ck_assert_int_eq(ledger_commit(l, &e), 0);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE device = 'vda'"), 13);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE device = 'vdb'"), 3);
	ck_assert_int_eq(sql_int(path, "SELECT samples FROM usage WHERE device = 'vdb'"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM series"), 2);
	ck_assert_int_eq(sql_int(path, "SELECT last_value FROM series WHERE device = 'vda'"), 100);
	ck_assert_int_eq(sql_int(path, "SELECT last_value FROM series WHERE device = 'vdb'"), 8);
}
END_TEST

/* The extremes of the 64-bit integers a commit writes (on PostgreSQL in
 * COPY's text, by hand): a counter reading of 2^63 and of 2^64 - 1 kept
 * as their bit patterns (INT64_MIN, -1), a usage count of 2^63 - 1, a
 * reading of 0; read back as written, on both engines. */
START_TEST(test_extreme_integers_written_exactly)
{
	struct ledger *l = begin_with_vm1();
	struct tally_err e = { 0 };
	struct ledger_usage u = { .resource_id = 1, .meter_id = 1, .device = "a", .hour_ns = T0,
				  .qty = INT64_MAX, .spanned_ns = 10, .covered_ns = 10, .samples = 1 };
	ck_assert_int_eq(ledger_add_usage(l, &u, &e), 0);
	struct ledger_series sr = { .resource_id = 1, .meter_id = 1, .device = "a", .agent = "h",
				    .last_ns = T0, .kind = SAMPLE_CUMULATIVE, .last_counter = 1ULL << 63 };
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);
	sr.device = "b";
	sr.last_counter = UINT64_MAX;
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);
	sr.device = "c";
	sr.last_counter = 0;
	ck_assert_int_eq(ledger_put_series(l, &sr, &e), 0);
	ck_assert_msg(ledger_commit(l, &e) == 0, "%s", e.msg);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), INT64_MAX);
	ck_assert_int_eq(sql_int(path, "SELECT last_value FROM series WHERE device = 'a'"), INT64_MIN);
	ck_assert_int_eq(sql_int(path, "SELECT last_value FROM series WHERE device = 'b'"), -1);
	ck_assert_int_eq(sql_int(path, "SELECT last_value FROM series WHERE device = 'c'"), 0);
}
END_TEST

static void add_dev(struct batch *b, const char *res, int meter, const char *dev, int64_t t, uint64_t v)
{
	add_reading(b, res, meter, dev, t, v, 0);
}

/* The aggregator guesses each sample's series from the order of the last
 * batch; batches in another order, or with series added in the middle,
 * must count each series on its own. Totals by hand: vda 10 -> 30 -> 35
 * = 25, vdb 20 -> 50 -> 58 = 38, vm-2 vda 7 -> 9 = 2 (its first reading
 * is the baseline), vm-1 cpu 100 -> 400 -> 1000 = 900. */
START_TEST(test_series_in_any_order)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 100);
	add_dev(&b, "vm-1", M_DISK_READ_BYTES, "vda", T0 + 10 * NS_PER_SEC, 10);
	add_dev(&b, "vm-1", M_DISK_READ_BYTES, "vdb", T0 + 10 * NS_PER_SEC, 20);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	b.seq = 2; /* reversed */
	add_dev(&b, "vm-1", M_DISK_READ_BYTES, "vdb", T0 + 20 * NS_PER_SEC, 50);
	add_dev(&b, "vm-1", M_DISK_READ_BYTES, "vda", T0 + 20 * NS_PER_SEC, 30);
	add(&b, "vm-1", M_CPU, T0 + 20 * NS_PER_SEC, 400);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	b.seq = 3; /* the first order, another VM's series in the middle */
	add(&b, "vm-1", M_CPU, T0 + 30 * NS_PER_SEC, 1000);
	add_dev(&b, "vm-2", M_DISK_READ_BYTES, "vda", T0 + 30 * NS_PER_SEC, 7);
	add_dev(&b, "vm-1", M_DISK_READ_BYTES, "vda", T0 + 30 * NS_PER_SEC, 35);
	add_dev(&b, "vm-1", M_DISK_READ_BYTES, "vdb", T0 + 30 * NS_PER_SEC, 58);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	b.seq = 4;
	add_dev(&b, "vm-2", M_DISK_READ_BYTES, "vda", T0 + 40 * NS_PER_SEC, 9);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	batch_release(&b);
	ck_assert_int_eq(cpu_total(), 900);
	ck_assert_int_eq(sql_int(path, "SELECT sum(quantity) FROM usage u JOIN resources r ON r.id = u.resource_id"
				       " WHERE r.uuid = 'vm-1' AND u.device = 'vda'"), 25);
	ck_assert_int_eq(sql_int(path, "SELECT sum(quantity) FROM usage u JOIN resources r ON r.id = u.resource_id"
				       " WHERE r.uuid = 'vm-1' AND u.device = 'vdb'"), 38);
	ck_assert_int_eq(sql_int(path, "SELECT sum(quantity) FROM usage u JOIN resources r ON r.id = u.resource_id"
				       " WHERE r.uuid = 'vm-2' AND u.device = 'vda'"), 2);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM series"), 4);
}
END_TEST


/* A small ledger written by the aggregator: 3 VMs' cpu over two hours. */
static void small_ledger(void)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	for (int i = 0; i < 8; i++) {
		b.seq = (uint64_t)i + 1;
		for (int v = 0; v < 3; v++) {
			char vm[16];
			snprintf(vm, sizeof(vm), "vm-%d", v);
			add(&b, vm, M_CPU, T0 + i * 15 * 60 * NS_PER_SEC, (uint64_t)(i + v) * 1000000);
		}
		ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
		batch_clear(&b);
	}
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	batch_release(&b);
}

static const char *pragma_text(const char *q, char *out, size_t len)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	str_copy(out, (const char *)sqlite3_column_text(st, 0), len);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

static uint64_t varint(const unsigned char **p)
{
	uint64_t v = 0;
	for (int i = 0; i < 9; i++) {
		unsigned char c = *(*p)++;
		if (i == 8)
			return (v << 8) | c;
		v = (v << 7) | (c & 0x7f);
		if (!(c & 0x80))
			break;
	}
	return v;
}

/* Issue 10, finding 2: an index entry that no longer matches its row. The
 * last entry of usage_hour's root page (a leaf in a ledger this small) gets
 * hour_ns + 1: every page and record is still well formed, so quick_check
 * passes, but the index now points at a row that does not exist, which
 * integrity_check finds. Such a ledger was resumed and read back wrong
 * sums; now it is refused, and left byte for byte as it was. */
START_TEST(test_index_damage_refused)
{
	char r[256];
	small_ledger();
	int64_t root = sql_int(path, "SELECT rootpage FROM sqlite_master WHERE name = 'usage_hour'");
	int64_t psize = sql_int(path, "PRAGMA page_size");
	unsigned char page[65536];
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, page, (size_t)psize, (root - 1) * psize), psize);
	ck_assert_int_eq(page[0], 0x0A);                        /* a leaf of an index b-tree */
	int cells = page[3] << 8 | page[4];
	ck_assert_int_ge(cells, 6);                             /* 3 VMs x 2 hours */
	int off = page[8 + 2 * (cells - 1)] << 8 | page[9 + 2 * (cells - 1)];
	const unsigned char *p = page + off;
	varint(&p);                                             /* payload size */
	const unsigned char *hdr = p;
	uint64_t hlen = varint(&p);
	ck_assert_uint_eq(varint(&p), 6);                       /* hour_ns: an 8-byte integer */
	unsigned char *body = (unsigned char *)hdr + hlen;
	ck_assert_int_eq(body[7] & 1, 0);                       /* an hour's ns are even: this adds 1 */
	body[7] ^= 1;
	ck_assert_int_eq(pwrite(fd, page, (size_t)psize, (root - 1) * psize), psize);
	close(fd);
	ck_assert_str_eq(pragma_text("PRAGMA quick_check", r, sizeof(r)), "ok");
	ck_assert_str_ne(pragma_text("PRAGMA integrity_check", r, sizeof(r)), "ok");

	expect_refused("index damage", "corrupt ledger", -EINVAL);
	struct ledger_check lc;
	struct tally_err e = { 0 };
	ck_assert_int_eq(ledger_check_file(path, &lc, &e), 0);
	ck_assert_int_gt(lc.problems, 0);
	ck_assert_msg(strstr(lc.first, "usage_hour") != NULL, "%s", lc.first);
}
END_TEST

/* The full check is skipped only for a file exactly as a clean stop left
 * it; a write by anything else, or a writer that died, brings it back. */
START_TEST(test_full_check_unless_clean_stop)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	struct ledger_check lc;
	bool full;
	int64_t ns;
	small_ledger();                                        /* ends in a clean stop */
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_check_info(l, &full, &ns);
	ck_assert(!full);
	ledger_close(l);
	/* written by someone else: tally invoice --issue, sqlite3, ... */
	sql(path, "INSERT INTO meters (name, kind, unit) VALUES ('x', 'gauge', 'x')");
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_check_info(l, &full, &ns);
	ck_assert(full);
	ledger_close(l);
	/* a writer that dies: no clean stop */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int64_t id;
		if (ledger_open(&l, path, &e) || ledger_begin(l, &e) ||
		    ledger_meter_id(l, "y", "gauge", "y", &id, &e) || ledger_commit(l, &e))
			_exit(1);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_msg(ledger_open(&l, path, &e) == 0, "%s", e.msg);
	ledger_check_info(l, &full, &ns);
	ck_assert(full);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meters WHERE name = 'y'"), 1);
	ledger_close(l);
	ck_assert_int_eq(ledger_check_file(path, &lc, &e), 0);
	ck_assert_int_eq(lc.problems, 0);
	ck_assert_int_gt(lc.bytes, 0);
}
END_TEST

/* cpu of vm-1 read at T0 + t_s (a counter of v ns), committed alone. */
static void commit_cpu(struct aggregator *a, uint64_t seq, int64_t t_s, uint64_t v)
{
	struct batch b;
	struct tally_err e = { 0 };
	batch_init(&b, "host-a");
	b.seq = seq;
	add(&b, "vm-1", M_CPU, T0 + t_s * NS_PER_SEC, v);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
	batch_release(&b);
}

static int verify(struct ledger_verify *v)
{
	struct tally_err e = { 0 };
	int rc = ledger_verify(path, v, &e);
	ck_assert_msg(rc == 0, "%s", e.msg);
	return v->problems;
}

/* Issue 10, finding 2: a value changed in place is found, and the commit
 * that last wrote its hour named. Chain commits: 1 the baseline reading
 * (a sample in hour 0, no quantity), 2 hour 0, 3 hours 0 and 1, 4 hour 1. */
START_TEST(test_chain_names_the_batch)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct ledger_verify v;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	commit_cpu(a, 1, 600, 1000);
	commit_cpu(a, 2, 1200, 7000);        /* 6000 ns in hour 0 */
	commit_cpu(a, 3, 4200, 37000);       /* 30000 over 1200..4200 s: 24000 to hour 0, 6000 to hour 1 */
	commit_cpu(a, 4, 5400, 40000);       /* 3000 in hour 1 */
	agg_close(a);
	ck_assert_int_eq(verify(&v), 0);
	ck_assert_int_eq(v.commits, 4);
	ck_assert_int_eq(v.head_id, 4);
	ck_assert_int_eq(v.hours, 2);
	ck_assert_int_eq(v.rows, 2);
	ck_assert(!v.upgraded);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE hour_ns = 1790812800000000000"), 30000);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE hour_ns = 1790816400000000000"), 9000);

	/* hour 0 was last written by chain commit 3 */
	sql(path, "UPDATE usage SET quantity = quantity + 1 WHERE hour_ns = 1790812800000000000");
	ck_assert_int_eq(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 3);
	ck_assert_msg(strstr(v.first, "hour 2026-10-01T00:00:00Z") && strstr(v.first, "commit 3 "), "%s", v.first);
	sql(path, "UPDATE usage SET quantity = quantity - 1 WHERE hour_ns = 1790812800000000000");
	ck_assert_int_eq(verify(&v), 0);
	/* hour 1 by commit 4; a REAL where an INTEGER was is a change too */
	tu_ledger_sql2(path, "UPDATE usage SET quantity = CAST(quantity AS REAL) WHERE hour_ns = 1790816400000000000",
		       "UPDATE usage SET quantity_real = quantity, quantity = NULL WHERE hour_ns = 1790816400000000000");
	ck_assert_int_eq(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 4);
	tu_ledger_sql2(path, "UPDATE usage SET quantity = CAST(quantity AS INTEGER) WHERE hour_ns = 1790816400000000000",
		       "UPDATE usage SET quantity = quantity_real, quantity_real = NULL WHERE hour_ns = 1790816400000000000");
	ck_assert_int_eq(verify(&v), 0);
	/* a row no commit wrote */
	sql(path, "INSERT INTO usage (resource_id, meter_id, hour_ns, quantity) VALUES (1, 1, 1790820000000000000, 5)");
	ck_assert_int_eq(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 0);
	ck_assert_msg(strstr(v.first, "no commit wrote"), "%s", v.first);
	sql(path, "DELETE FROM usage WHERE hour_ns = 1790820000000000000");
	/* a commit record changed: its hash no longer follows */
	sql(path, "UPDATE chain SET time_ns = time_ns + 1 WHERE id = 2");
	ck_assert_int_eq(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 2);
	ck_assert_msg(strstr(v.first, "does not follow"), "%s", v.first);
	sql(path, "UPDATE chain SET time_ns = time_ns - 1 WHERE id = 2");
	ck_assert_int_eq(verify(&v), 0);
	/* an hour record changed to match a changed value: the commit hash
	 * covers it */
	sql(path, "UPDATE chain_hours SET rows = 2 WHERE commit_id = 4");
	ck_assert_int_ge(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 4);
	sql(path, "UPDATE chain_hours SET rows = 1 WHERE commit_id = 4");
	ck_assert_int_eq(verify(&v), 0);
	/* a commit removed */
	sql(path, "DELETE FROM chain_hours WHERE commit_id = 2; DELETE FROM chain WHERE id = 2");
	ck_assert_int_ge(verify(&v), 1);
	ck_assert_msg(strstr(v.first, "1 commit is missing"), "%s", v.first);
}
END_TEST

/* A change from outside to an hour the writer goes on writing (the
 * current hour, in real time) is not sealed away by its next commit: the
 * commit records that it found the hour altered, and verify names the
 * commit whose record was contradicted, for good. */
START_TEST(test_chain_keeps_a_change_the_writer_found)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct ledger_verify v;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	commit_cpu(a, 1, 600, 1000);         /* chain 1: hour 0 (a baseline sample) */
	commit_cpu(a, 2, 1200, 7000);        /* chain 2: hour 0 */
	agg_close(a);
	sql(path, "UPDATE usage SET quantity = 1 WHERE hour_ns = 1790812800000000000");
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	commit_cpu(a, 3, 1800, 8000);        /* chain 3: hour 0 again, sealing 1 + 1000 */
	agg_close(a);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 1001);
	ck_assert_int_eq(sql_int(path, "SELECT altered FROM chain_hours WHERE commit_id = 3"), 2);
	ck_assert_int_eq(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 2);
	ck_assert_msg(strstr(v.first, "found the usage of hour 2026-10-01T00:00:00Z altered since commit 2"),
		      "%s", v.first);
}
END_TEST

/* Device names with the bytes COPY's text format escapes (tab, newline,
 * carriage return, backslash), a multi-byte one and a long one: written,
 * added to by a second commit (on PostgreSQL: the hour's digests worked
 * out by tallyd from the rows it reads back), kept byte for byte, and the
 * chain verifies with no hour altered. Quantities by hand: i + 1, then + 100. */
START_TEST(test_hostile_device_names)
{
	static const char *const devs[] = { "a\tb", "c\nd", "e\rf", "g\\h", "\\N", "\xc3\xa9t\xc3\xa9", "" };
	char longdev[TALLY_DEV_MAX];
	struct tally_err e = { 0 };
	struct ledger_verify v;
	memset(longdev, 'x', sizeof(longdev) - 1);
	longdev[sizeof(longdev) - 1] = '\0';
	struct ledger *l = begin_with_vm1();
	for (int round = 0; round < 2; round++) {
		if (round)
			ck_assert_int_eq(ledger_begin(l, &e), 0);
		for (int i = 0; i < 8; i++) {
			struct ledger_usage u = { .resource_id = 1, .meter_id = 1, .device = i < 7 ? devs[i] : longdev,
						  .hour_ns = T0, .qty = round ? 100 : i + 1, .spanned_ns = 10,
						  .covered_ns = 10, .samples = 1, .exists = round };
			ck_assert_msg(ledger_add_usage(l, &u, &e) == 0, "%s", e.msg);
		}
		commit_or_fail(l);
	}
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM usage"), 8);
	ck_assert_int_eq(sql_int(path, "SELECT sum(quantity) FROM usage"), 36 + 800);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE device = 'g\\h'"), 104);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE device = '\\N'"), 105);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM usage WHERE length(device) = 3 AND quantity > 100"), 5);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM chain_hours WHERE altered <> 0"), 0);
	ck_assert_int_eq(verify(&v), 0);
}
END_TEST

/* ---- PostgreSQL: what it refuses, and several writers ---- */

extern const char *const ledger_pg_migrations[];

START_TEST(test_pg_create_and_reopen)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	ck_assert_msg(ledger_open(&l, path, &e) == 0, "%s", e.msg);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT version FROM tally_ledger"), LEDGER_SCHEMA_VERSION);
	ck_assert_int_eq(sql_int(path, "SELECT application_id FROM tally_ledger"), LEDGER_APP_ID);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM tally_ledger"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
				       " AND tablename IN ('usage', 'series', 'agents', 'chain', 'invoices')"), 5);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta WHERE key IN ('created_by', 'written_by')"), 2);
	ck_assert_msg(ledger_open(&l, path, &e) == 0, "%s", e.msg);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM tally_ledger"), 1);
	struct ledger_info li;
	ck_assert_msg(ledger_info(path, &li, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(li.schema, LEDGER_SCHEMA_VERSION);
	ck_assert(li.created_by[0] && li.written_by[0] && li.written_ns > 0 && !li.upgraded_by[0] && !li.has_usage);
}
END_TEST

/* A ledger from a newer tally, and a schema holding someone else's
 * tables: refused, named, and left as they were. */
START_TEST(test_pg_newer_and_foreign_refused)
{
	struct ledger *l = NULL;
	struct tally_err e = { 0 };
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ledger_close(l);
	sql(path, "UPDATE tally_ledger SET version = 99");
	ck_assert_int_eq(ledger_open(&l, path, &e), -EPROTO);
	ck_assert_ptr_null(l);
	ck_assert_msg(strstr(e.msg, "schema version 99 is newer") && strstr(e.msg, "options=-csearch_path"), "%s", e.msg);
	ck_assert_int_eq(sql_int(path, "SELECT version FROM tally_ledger"), 99);
	struct ledger_reader *r = NULL;
	ck_assert_int_eq(ledger_reader_open(path, &r, &e), -EPROTO);
	ck_assert_msg(strstr(e.msg, "upgrade tally"), "%s", e.msg);

	char other[512];
	tu_ledger_location(other, sizeof(other), dir, "x");
	sql(other, "CREATE TABLE invoices (id integer PRIMARY KEY, amount integer); INSERT INTO invoices VALUES (1, 2)");
	ck_assert_int_eq(ledger_open(&l, other, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "not a tally ledger") && strstr(e.msg, "holds other tables"), "%s", e.msg);
	ck_assert_int_eq(sql_int(other, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), 1);
	ck_assert_int_eq(sql_int(other, "SELECT amount FROM invoices"), 2);
	ck_assert_int_eq(ledger_reader_open(other, &r, &e), -EINVAL);
}
END_TEST

/* Two writers on one ledger (two aggregators): both open it; their
 * commits take turns under the commit lock (a second begin waits for the
 * first commit, here until its statement timeout); an agent's seq moves on
 * only from where its writer's state was built, whichever writer moves
 * it; the hash chain stays one line through both writers' commits. */
START_TEST(test_pg_two_writers)
{
	struct ledger *l1, *l2;
	struct tally_err e = { 0 };
	struct ledger_verify v;
	ck_assert_msg(ledger_open(&l1, path, &e) == 0, "%s", e.msg);
	ck_assert_msg(ledger_open(&l2, path, &e) == 0, "%s", e.msg);
	struct ledger_resource r = { .id = 1, .first_seen_ns = T0, .last_seen_ns = T0 };
	str_copy(r.meta.resource, "vm-1", sizeof(r.meta.resource));
	struct ledger_usage u = { .resource_id = 1, .meter_id = 1, .device = "", .hour_ns = T0, .qty = 5 };
	struct ledger_agent a = { .agent = "host-a", .from_seq = 0, .last_seq = 1, .batches = 1 };
	ck_assert_int_eq(ledger_begin(l1, &e), 0);
	ck_assert_int_eq(ledger_put_resource(l1, &r, false, &e), 0);
	ck_assert_int_eq(r.id, 1);
	ck_assert_int_eq(ledger_add_usage(l1, &u, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l1, &a, &e), 0);
	ck_assert_int_eq(ledger_commit(l1, &e), 0);
	/* l2 built on seq 0 too: refused, nothing of it written */
	ck_assert_int_eq(ledger_begin(l2, &e), 0);
	ck_assert_int_eq(ledger_add_usage(l2, &u, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l2, &a, &e), -ESTALE);
	ck_assert_msg(strstr(e.msg, "host-a") && strstr(e.msg, "no longer seq 0 but 1"), "%s", e.msg);
	ledger_rollback(l2);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 5);
	/* l2, caught up, goes on; then l1 again */
	a.from_seq = 1;
	a.last_seq = 2;
	u.qty = 7;
	ck_assert_int_eq(ledger_begin(l2, &e), 0);
	ck_assert_int_eq(ledger_add_usage(l2, &u, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l2, &a, &e), 0);
	ck_assert_int_eq(ledger_commit(l2, &e), 0);
	a.from_seq = 2;
	a.last_seq = 3;
	u.qty = 11;
	u.hour_ns = T0 + NS_PER_HOUR;
	ck_assert_int_eq(ledger_begin(l1, &e), 0);
	ck_assert_int_eq(ledger_add_usage(l1, &u, &e), 0);
	ck_assert_int_eq(ledger_put_agent(l1, &a, &e), 0);
	/* while l1's commit is open, l2's waits (500 ms, then gives up) */
	ledger_close(l2);
	int saved = ledger_set_statement_timeout(500);
	ck_assert_msg(ledger_open(&l2, path, &e) == -ETIMEDOUT, "%s", e.msg);
	ck_assert_msg(strstr(e.msg, "statement timeout"), "%s", e.msg);
	ledger_set_statement_timeout(saved);
	ck_assert_int_eq(ledger_commit(l1, &e), 0);
	ledger_close(l1);
	ck_assert_int_eq(sql_int(path, "SELECT sum(quantity) FROM usage"), 23);
	ck_assert_int_eq(sql_int(path, "SELECT last_seq FROM agents"), 3);
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_msg(v.problems == 0, "%s", v.first);
	ck_assert_int_eq(v.commits, 3);
}
END_TEST

/* Two aggregators on one ledger, one agent failing over between them. A
 * commits seq 1 (cpu 1000 at 10 s); B, opened after, commits seq 2 (1600
 * at 20 s). A, whose state of the agent is still seq 1, is sent seq 2
 * and 3 (2500 at 30 s) as well: its commit finds the agent moved on
 * (-ESTALE), drops what it built on the old reading, reloads seq 2 and its
 * reading, and commits nothing of it; seq 3 sent again is counted from
 * 1600. The ledger: 2500 - 1000 = 1500 ns, counted once. */
START_TEST(test_pg_agent_fails_over)
{
	struct aggregator *a, *b;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct agg_stats st;
	struct batch x;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&x, "host-a");
	x.seq = 1;
	add(&x, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 1000);
	ck_assert_int_eq(agg_ingest(a, &x, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	ck_assert_msg(agg_open(&b, &ac, &e) == 0, "%s", e.msg);
	batch_clear(&x);
	x.seq = 2;
	add(&x, "vm-1", M_CPU, T0 + 20 * NS_PER_SEC, 1600);
	ck_assert_int_eq(agg_ingest(b, &x, &e), 0);
	ck_assert_int_eq(agg_commit(b, &e), 0);
	ck_assert_int_eq(cpu_total(), 600);
	/* A, behind: takes 2 and 3, then finds out at its commit */
	ck_assert_int_eq(agg_ingest(a, &x, &e), 0);
	batch_clear(&x);
	x.seq = 3;
	add(&x, "vm-1", M_CPU, T0 + 30 * NS_PER_SEC, 2500);
	ck_assert_int_eq(agg_ingest(a, &x, &e), 0);
	ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
	agg_get_stats(a, &st);
	ck_assert_uint_eq(st.resyncs, 1);
	ck_assert_int_eq(cpu_total(), 600);
	ck_assert_uint_eq(agg_agent_seq(a, "host-a"), 2);
	/* the agent sends 3 again (it was not acknowledged) */
	ck_assert_int_eq(agg_ingest(a, &x, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	ck_assert_int_eq(cpu_total(), 1500);
	ck_assert_int_eq(sql_int(path, "SELECT last_seq FROM agents WHERE agent = 'host-a'"), 3);
	agg_close(a);
	agg_close(b);
	batch_release(&x);
	struct ledger_verify v;
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_msg(v.problems == 0, "%s", v.first);
}
END_TEST

/* A version 1 ledger (schemas/pg/ledger.sql alone) with usage is migrated
 * on open, in one transaction: its rows stay, the chain seals its hour as
 * found, and issued invoices refuse to change. */
START_TEST(test_pg_migrates_version_1)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	struct ledger_verify v;
	sql(path, ledger_pg_migrations[0]);
	sql(path, "INSERT INTO meters (id, name, kind, unit) VALUES (1, 'cpu', 'cumulative', 'ns');"
		  " INSERT INTO resources (id, uuid, first_seen_ns, last_seen_ns) VALUES (1, 'vm-1', 0, 0);"
		  " INSERT INTO usage (resource_id, meter_id, hour_ns, quantity) VALUES (1, 1, 0, 12345)");
	ck_assert_msg(ledger_open(&l, path, &e) == 0, "%s", e.msg);
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT version FROM tally_ledger"), LEDGER_SCHEMA_VERSION);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 12345);
	/* the meta table says who upgraded it, and does not invent a creator */
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta WHERE key = 'upgraded_by'"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM meta WHERE key = 'created_by'"), 0);
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_int_eq(v.problems, 0);
	ck_assert(v.upgraded);
	ck_assert_int_eq(v.sealed_hours, 1);
	sql(path, "UPDATE usage SET quantity = 12346");
	ck_assert_int_eq(ledger_verify(path, &v, &e), 0);
	ck_assert_int_eq(v.bad_commit, 1);
	sql(path, "INSERT INTO invoices (issuer, number, tenant, from_ns, to_ns, issued_ns, currency, base_minor,"
		  " subtotal_minor, total_minor, plan_text, document, sha256) VALUES ('x', 1, 't', 0, 1, 0, 'EUR',"
		  " 1, 1, 1, '', '{}', '')");
	PGconn *c = tu_pg_connect(path);
	PGresult *r = PQexec(c, "UPDATE invoices SET total_minor = 0");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_ptr_nonnull(strstr(PQresultErrorMessage(r), "issued invoices never change"));
	PQclear(r);
	r = PQexec(c, "DELETE FROM invoices");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	PQfinish(c);
	ck_assert_int_eq(sql_int(path, "SELECT total_minor FROM invoices"), 1);
}
END_TEST

/* What an operator gets wrong: a URI libpq cannot read (exit 2 at the
 * config), a database that does not exist, a role without the rights; and
 * a password given in the URI appears in no message. */
START_TEST(test_pg_bad_input)
{
	struct ledger *l = NULL;
	struct tally_err e = { 0 };
	char out[512], loc[700], role[64], sqlbuf[400];
	const char *base = tu_pg();
	const char *q = strchr(base, '?');
	ck_assert_ptr_nonnull(q);

	ck_assert_int_eq(ledger_location_normalize("postgresql://h:notaport/db", out, sizeof(out), &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "not a PostgreSQL connection URI") && strstr(e.msg, "notaport"), "%s", e.msg);
	ck_assert_int_eq(ledger_location_normalize("postgresql:///db?host=/x&password=p%20w&port=5", out, sizeof(out), &e),
			 0);
	ck_assert_str_eq(out, "postgresql:///db?host=/x&port=5");
	ck_assert_int_eq(ledger_location_normalize("postgresql://u:pw@h1,h2:5433/db", out, sizeof(out), &e), 0);
	ck_assert_str_eq(out, "postgresql://u@h1,h2:5433/db");
	ck_assert_int_eq(ledger_location_normalize("mysql://h/db", out, sizeof(out), &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "mysql: not a ledger location"), "%s", e.msg);

	/* a missing database, with a password in the URI */
	snprintf(loc, sizeof(loc), "postgresql://tally:s3cr%%65t@/nosuchdb_%ld%s", (long)getpid(), q);
	ck_assert_int_eq(ledger_location_normalize(loc, out, sizeof(out), &e), 0);
	ck_assert_msg(!strstr(out, "s3cr"), "%s", out);
	ck_assert_int_eq(ledger_open(&l, out, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "does not exist") && strstr(e.msg, "createdb") && !strstr(e.msg, "s3cr"), "%s", e.msg);
	ck_assert_int_eq(ledger_open(&l, loc, &e), -ENOENT);   /* not normalized: hidden all the same */
	ck_assert_msg(strstr(e.msg, "tally:***@") && !strstr(e.msg, "s3cr"), "%s", e.msg);

	/* a role that may log in and nothing more */
	snprintf(role, sizeof(role), "tally_ro_%ld", (long)getpid());
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN", role, role);
	sql(path, sqlbuf);
	snprintf(loc, sizeof(loc), "%s&user=%s", path, role);
	const char *schema = strstr(path, "%3D") + 3;
	ck_assert_int_eq(ledger_open(&l, loc, &e), -EACCES);     /* a schema it may not even use */
	ck_assert_msg(strstr(e.msg, role) && strstr(e.msg, "may not use schema") && strstr(e.msg, "GRANT USAGE"),
		      "%s", e.msg);
	snprintf(sqlbuf, sizeof(sqlbuf), "GRANT USAGE ON SCHEMA %s TO %s", schema, role);
	sql(path, sqlbuf);
	ck_assert_int_eq(ledger_open(&l, loc, &e), -EACCES);     /* an empty schema it may not create in */
	ck_assert_msg(strstr(e.msg, role) && strstr(e.msg, "may not create"), "%s", e.msg);
	ck_assert_msg(ledger_open(&l, path, &e) == 0, "%s", e.msg);   /* made by its owner */
	ledger_close(l);
	snprintf(sqlbuf, sizeof(sqlbuf), "GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s", schema, role);
	sql(path, sqlbuf);
	ck_assert_int_eq(ledger_open(&l, loc, &e), -EACCES);     /* a reader's rights only */
	ck_assert_msg(strstr(e.msg, "lacks privileges") && strstr(e.msg, "usage (INSERT, UPDATE)"), "%s", e.msg);
	struct ledger_reader *r = NULL;
	ck_assert_msg(ledger_reader_open(loc, &r, &e) == 0, "%s", e.msg);   /* but it may read */
	ledger_reader_close(r);
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP OWNED BY %s; DROP ROLE %s", role, role);
	sql(path, sqlbuf);
}
END_TEST

/* The precheck of an hour (does it hold what the last commit recorded?)
 * runs on a second connection, beside the commit's merges; a writer that
 * cannot have one (a role limited to one connection) asks it on its only
 * connection, and finds a change from outside all the same: the change
 * of test_chain_keeps_a_change_the_writer_found, made twice, once by each. */
static int64_t prechecks_open(void)
{
	return sql_int(path, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tallyd precheck'");
}

START_TEST(test_pg_precheck_connection)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
	struct ledger_verify v;
	char role[64], loc[1400], sqlbuf[600];
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	commit_cpu(a, 1, 600, 1000);
	commit_cpu(a, 2, 1200, 7000);
	ck_assert_int_eq(prechecks_open(), 1);
	agg_close(a);
	ck_assert_int_eq(prechecks_open(), 0);
	sql(path, "UPDATE usage SET quantity = 1 WHERE hour_ns = 1790812800000000000");

	snprintf(role, sizeof(role), "tally_one_%ld", (long)getpid());
	const char *schema = strstr(path, "%3D") + 3;
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN CONNECTION LIMIT 1;"
		 " GRANT USAGE ON SCHEMA %s TO %s; GRANT ALL ON ALL TABLES IN SCHEMA %s TO %s;"
		 " GRANT ALL ON ALL SEQUENCES IN SCHEMA %s TO %s", role, role, schema, role, schema, role, schema, role);
	sql(path, sqlbuf);
	snprintf(loc, sizeof(loc), "%s&user=%s", path, role);
	ac.ledger_path = loc;
	ck_assert_msg(agg_open(&a, &ac, &e) == 0, "%s", e.msg);
	commit_cpu(a, 3, 1800, 8000);        /* chain 3: hour 0 again, sealing 1 + 1000 */
	ck_assert_int_eq(prechecks_open(), 0);
	agg_close(a);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 1001);
	ck_assert_int_eq(sql_int(path, "SELECT altered FROM chain_hours WHERE commit_id = 3"), 2);

	/* and the owner's writer, with its second connection, finds the next */
	sql(path, "UPDATE usage SET quantity = 2 WHERE hour_ns = 1790812800000000000");
	ac.ledger_path = path;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	commit_cpu(a, 4, 2400, 8500);        /* chain 4: 2 + 500 */
	agg_close(a);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 502);
	ck_assert_int_eq(sql_int(path, "SELECT altered FROM chain_hours WHERE commit_id = 4"), 3);
	ck_assert_int_eq(verify(&v), 2);
	ck_assert_int_eq(v.bad_commit, 2);
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP OWNED BY %s; DROP ROLE %s", role, role);
	sql(path, sqlbuf);
}
END_TEST

/* One usage row of vm-1 in hour 0: meter 1 counts, meter 2 is a gauge. */
static void add_vm1(struct ledger *l, int meter, int64_t qty, double qty_real)
{
	struct tally_err e = { 0 };
	struct ledger_usage u = { .resource_id = 1, .meter_id = meter, .device = "", .hour_ns = T0,
				  .is_real = meter == 2, .qty = qty, .qty_real = qty_real, .spanned_ns = 10,
				  .covered_ns = 10, .samples = 1, .exists = 1 };
	ck_assert_msg(ledger_add_usage(l, &u, &e) == 0, "%s", e.msg);
}

/* The side connection's query for hour 0's rows held on a lock of the
 * usage table (X holds it), then its connection killed: the answer is
 * lost. The lock is let go afterwards. */
static void lose_the_precheck(PGconn *x)
{
	int i = 0;
	while (sql_int(path, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tallyd precheck'"
			     " AND wait_event_type = 'Lock'") != 1) {
		ck_assert_msg(++i < 1000, "the precheck never waited for the lock");
		usleep(10000);
	}
	sql(path, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tallyd precheck'");
	tu_pg_exec(x, "COMMIT");
}

/* A commit asks for the rows of each hour it writes on the second
 * connection while it is staged (the hour's digest before and after it
 * are worked out from them). When that answer is lost, the rows are asked
 * for again on a new connection and the commit lands with its chain right;
 * when no new connection can be made, the commit fails, nothing of it is
 * written, and the next one writes it all. Quantities by hand: 5, + 7, + 11. */
START_TEST(test_pg_precheck_answer_lost)
{
	char role[64], loc[1400], sqlbuf[600];
	struct tally_err e = { 0 };
	struct ledger_verify v;
	snprintf(role, sizeof(role), "tally_lost_%ld", (long)getpid());
	const char *schema = strstr(path, "%3D") + 3;
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN CONNECTION LIMIT 3;"
		 " GRANT USAGE, CREATE ON SCHEMA %s TO %s", role, role, schema, role);
	sql(path, sqlbuf);
	snprintf(loc, sizeof(loc), "%s&user=%s", path, role);
	struct ledger *l = begin_with_vm1_at(loc);
	add_vm1(l, 1, 5, 0);
	commit_or_fail(l);                   /* chain 1 */
	ck_assert_int_eq(prechecks_open(), 1);

	PGconn *x = tu_pg_connect(path);
	tu_pg_exec(x, "BEGIN; LOCK TABLE usage IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_vm1(l, 1, 7, 0);
	lose_the_precheck(x);
	commit_or_fail(l);                   /* chain 2: asked again on a new connection */
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 12);
	ck_assert_int_eq(prechecks_open(), 1);

	/* now it cannot have another: the commit fails whole */
	snprintf(sqlbuf, sizeof(sqlbuf), "ALTER ROLE %s CONNECTION LIMIT 1", role);
	sql(path, sqlbuf);
	tu_pg_exec(x, "BEGIN; LOCK TABLE usage IN ACCESS EXCLUSIVE MODE");
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_vm1(l, 1, 11, 0);
	lose_the_precheck(x);
	ck_assert_int_ne(ledger_commit(l, &e), 0);
	ck_assert_msg(strstr(e.msg, "cannot be made again"), "%s", e.msg);
	ledger_rollback(l);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 12);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM chain"), 2);

	/* the next commit asks on its only connection, before it merges */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_vm1(l, 1, 11, 0);
	commit_or_fail(l);                   /* chain 3 */
	ck_assert_int_eq(prechecks_open(), 0);
	ledger_close(l);
	PQfinish(x);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage"), 23);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM chain_hours WHERE altered <> 0"), 0);
	ck_assert_int_eq(verify(&v), 0);
	snprintf(sqlbuf, sizeof(sqlbuf), "DROP OWNED BY %s; DROP ROLE %s", role, role);
	sql(path, sqlbuf);
}
END_TEST

/* A sum the writer does not work out itself (a gauge row made infinite
 * behind tally's back: the server adds to it, chain_merge.c does not) is
 * hashed on the server after the merge: the chain records the hour as it
 * is, and the commit after finds it so. */
START_TEST(test_pg_sum_hashed_on_server)
{
	struct ledger *l = begin_with_vm1();
	struct tally_err e = { 0 };
	struct ledger_verify v;
	add_vm1(l, 2, 0, 1.5);
	add_vm1(l, 1, 5, 0);
	commit_or_fail(l);                   /* chain 1 */
	sql(path, "UPDATE usage SET quantity_real = 'Infinity' WHERE meter_id = 2");
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_vm1(l, 2, 0, 0.5);
	commit_or_fail(l);                   /* chain 2: finds the change */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_vm1(l, 2, 0, 0.25);
	add_vm1(l, 1, 7, 0);
	commit_or_fail(l);                   /* chain 3: the hour as chain 2 left it */
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM usage WHERE quantity_real = 'Infinity'"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE meter_id = 1"), 12);
	ck_assert_int_eq(sql_int(path, "SELECT altered FROM chain_hours WHERE commit_id = 2"), 1);
	ck_assert_int_eq(sql_int(path, "SELECT altered FROM chain_hours WHERE commit_id = 3"), 0);
	ck_assert_int_eq(verify(&v), 1);
	ck_assert_int_eq(v.bad_commit, 1);
}
END_TEST

/* An hour with more rows than tallyd reads to work its digests out
 * (pg_pre_rows_max, lowered here to 2) is digested on the server: before
 * the commit on the side connection, after it on the first. The chain is
 * the same either way: the commit after finds the hour as it was left.
 * Quantities by hand: meter 1 of vm-1..3 at 5, 6, 7; + 10 to vm-1 and
 * vm-3, vm-4 new at 8. */
extern int pg_pre_rows_max;

static void add_usage_of(struct ledger *l, int64_t res, int64_t qty)
{
	struct tally_err e = { 0 };
	struct ledger_usage u = { .resource_id = res, .meter_id = 1, .device = "", .hour_ns = T0, .qty = qty,
				  .spanned_ns = 10, .covered_ns = 10, .samples = 1, .exists = 1 };
	ck_assert_msg(ledger_add_usage(l, &u, &e) == 0, "%s", e.msg);
}

START_TEST(test_pg_large_hour_hashed_on_server)
{
	struct ledger *l;
	struct tally_err e = { 0 };
	struct ledger_verify v;
	int was = pg_pre_rows_max;
	pg_pre_rows_max = 2;
	ck_assert_int_eq(ledger_open(&l, path, &e), 0);
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	for (int i = 1; i <= 4; i++) {
		struct ledger_resource r = { .id = i, .first_seen_ns = T0, .last_seen_ns = T0 };
		snprintf(r.meta.resource, sizeof(r.meta.resource), "vm-%d", i);
		ck_assert_int_eq(ledger_put_resource(l, &r, false, &e), 0);
	}
	add_usage_of(l, 1, 5);
	add_usage_of(l, 2, 6);
	add_usage_of(l, 3, 7);
	commit_or_fail(l);                   /* chain 1: three rows, read ahead by nobody yet */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_usage_of(l, 3, 10);
	add_usage_of(l, 4, 8);
	add_usage_of(l, 1, 10);
	commit_or_fail(l);                   /* chain 2: three rows before, more than 2 */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_usage_of(l, 2, 1);
	commit_or_fail(l);                   /* chain 3: four rows before */
	pg_pre_rows_max = was;
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	add_usage_of(l, 4, 1);
	commit_or_fail(l);                   /* chain 4: worked out by tallyd again */
	ledger_close(l);
	ck_assert_int_eq(sql_int(path, "SELECT sum(quantity) FROM usage WHERE resource_id IN (1, 3)"), 15 + 17);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE resource_id = 2"), 7);
	ck_assert_int_eq(sql_int(path, "SELECT quantity FROM usage WHERE resource_id = 4"), 9);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM chain_hours"), 4);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM chain_hours WHERE altered <> 0"), 0);
	ck_assert_int_eq(verify(&v), 0);
}
END_TEST

/* A reader's cpu rows over [T0, T0 + 4 h): how many, and their sum. */
struct usum {
	int64_t rows, total;
};

static int usum_row(void *ctx, const struct ledger_usage_row *u)
{
	struct usum *s = ctx;
	ck_assert_int_eq(u->qty.type, LEDGER_QTY_INT);
	s->rows++;
	s->total += u->qty.i;
	return 0;
}

static struct usum read_cpu(struct ledger_reader *r)
{
	struct usum s = { 0, 0 };
	struct tally_err e = { 0 };
	ck_assert_msg(ledger_read_usage(r, T0, T0 + 4 * NS_PER_HOUR, usum_row, &s, &e) == 0, "%s", e.msg);
	return s;
}

/* A reader reads the ledger as one snapshot, read after read, whatever is
 * committed or changed meanwhile; its usage rows come in any order (on
 * PostgreSQL, hour by hour as the table holds them) and are exactly the
 * period's. Readings of vm-1's cpu counter: 1000 at 600 s, 3000 at
 * 1200 s, 10000 at 3 h 20 min: 9000 over hours 0 - 3, four rows; then
 * 13000 at 3 h 40 min: 3000 more in hour 3. */
START_TEST(test_reader_one_snapshot)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct ledger_reader *r, *later;
	struct tally_err e = { 0 };
	struct usum u;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	commit_cpu(a, 1, 600, 1000);
	commit_cpu(a, 2, 1200, 3000);
	commit_cpu(a, 3, 3 * 3600 + 1200, 10000);
	ck_assert_msg(ledger_reader_open(path, &r, &e) == 0, "%s", e.msg);
	u = read_cpu(r);
	ck_assert_int_eq(u.rows, 4);
	ck_assert_int_eq(u.total, 9000);

	/* hour 3 gains 3000; hour 0 is changed behind tally's back */
	commit_cpu(a, 4, 3 * 3600 + 2400, 13000);
	sql(path, "UPDATE usage SET quantity = quantity + 5 WHERE hour_ns = 1790812800000000000");
	u = read_cpu(r);
	ck_assert_int_eq(u.rows, 4);
	ck_assert_int_eq(u.total, 9000);
	ck_assert_msg(ledger_reader_open(path, &later, &e) == 0, "%s", e.msg);
	u = read_cpu(later);
	ck_assert_int_eq(u.rows, 4);
	ck_assert_int_eq(u.total, 12005);
	/* the hours' bounds: [T0 + 1 h, T0 + 3 h) is hours 1 and 2 only */
	struct usum mid = { 0, 0 };
	ck_assert_msg(ledger_read_usage(later, T0 + NS_PER_HOUR, T0 + 3 * NS_PER_HOUR, usum_row, &mid, &e) == 0, "%s",
		      e.msg);
	ck_assert_int_eq(mid.rows, 2);
	ledger_reader_close(later);
	ledger_reader_close(r);
	agg_close(a);                /* its clean stop's checkpoint waits for no reader */
}
END_TEST

/* An hour's usage past 2^63 - 1 fits no ledger row (SQLite would turn
 * the sum into an inexact REAL, PostgreSQL's bigint overflows): a reading
 * whose amount alone passes it, or that would take its hour's bucket past
 * it, is refused and counted invalid, the bucket as it was; a commit that
 * would take a row past it fails, naming 2^63, and the row keeps its exact
 * count. Worked out by hand, H = 3 * 2^61 = 6917529027641081856. */
START_TEST(test_usage_past_2_63_refused)
{
	const uint64_t H = 3ULL << 61;
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct agg_stats st;
	struct tally_err e = { 0 };
	struct batch b;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-a");
	b.seq = 1;
	add(&b, "vm-1", M_CPU, T0 + 10 * NS_PER_SEC, 1000);                     /* baseline */
	add(&b, "vm-1", M_CPU, T0 + 20 * NS_PER_SEC, 1000 + (1ULL << 63) + 5);  /* refused */
	add(&b, "vm-1", M_CPU, T0 + 30 * NS_PER_SEC, 1500);                     /* 500 over (10, 30] */
	add(&b, "vm-1", M_CPU, T0 + 40 * NS_PER_SEC, 1500 + H);                 /* H: 500 + H fits */
	add(&b, "vm-1", M_CPU, T0 + 50 * NS_PER_SEC, 1500 + 2 * H);             /* 500 + 2H: refused */
	add(&b, "vm-1", M_CPU, T0 + 60 * NS_PER_SEC, 1600 + H);                 /* 100 over (40, 60] */
	ck_assert_msg(agg_ingest(a, &b, &e) == 0, "%s", e.msg);
	batch_release(&b);
	agg_get_stats(a, &st);
	ck_assert_uint_eq(st.invalid, 2);
	ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(cpu_total(), (int64_t)H + 600);
	ck_assert_int_eq(sql_int(path, "SELECT sum(spanned_ns) FROM usage u JOIN meters m ON m.id = u.meter_id"
				       " WHERE m.name = 'cpu'"), 50 * NS_PER_SEC);
	/* the next commit's H would take the row to 2H + 600 */
	batch_init(&b, "host-a");
	b.seq = 2;
	add(&b, "vm-1", M_CPU, T0 + 70 * NS_PER_SEC, 1600 + 2 * H);
	ck_assert_msg(agg_ingest(a, &b, &e) == 0, "%s", e.msg);
	batch_release(&b);
	ck_assert_int_eq(agg_commit(a, &e), -ERANGE);
	ck_assert_msg(strstr(e.msg, "2^63"), "%s", e.msg);
	agg_close(a);
	ck_assert_int_eq(cpu_total(), (int64_t)H + 600);
	ck_assert_int_eq(sql_int(path, "SELECT count(*) FROM usage u JOIN meters m ON m.id = u.meter_id"
				       " WHERE m.name = 'cpu' AND quantity - 6917529027641082400 = 56"), 1);  /* a REAL is off by 88 */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ledger");
	/* on either engine */
	TCase *tc = tcase_create("ledger");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_chain_names_the_batch);
	tcase_add_test(tc, test_reader_one_snapshot);
	tcase_add_test(tc, test_chain_keeps_a_change_the_writer_found);
	tcase_add_test(tc, test_duplicate_batch_counts_once);
	tcase_add_test(tc, test_agent_seq_must_follow);
	tcase_add_test(tc, test_resource_sightings_out_of_order);
	tcase_add_test(tc, test_failed_commit_loses_nothing_committed);
	tcase_add_test(tc, test_metadata_history);
	tcase_add_test(tc, test_must_commit);
	tcase_add_test(tc, test_death_between_commits_loses_no_usage);
	tcase_add_test(tc, test_exists_hint);
	tcase_add_test(tc, test_extreme_integers_written_exactly);
	tcase_add_test(tc, test_series_in_any_order);
	tcase_add_test(tc, test_usage_past_2_63_refused);
	tcase_add_test(tc, test_hostile_device_names);
	suite_add_tcase(s, tc);
	if (tu_pg()) {
		/* what only PostgreSQL has */
		TCase *pg = tcase_create("postgresql");
		tcase_add_checked_fixture(pg, setup, teardown);
		tcase_set_timeout(pg, 30);
		tcase_add_test(pg, test_pg_create_and_reopen);
		tcase_add_test(pg, test_pg_newer_and_foreign_refused);
		tcase_add_test(pg, test_pg_two_writers);
		tcase_add_test(pg, test_pg_agent_fails_over);
		tcase_add_test(pg, test_pg_migrates_version_1);
		tcase_add_test(pg, test_pg_bad_input);
		tcase_add_test(pg, test_pg_precheck_connection);
		tcase_add_test(pg, test_pg_precheck_answer_lost);
		tcase_add_test(pg, test_pg_sum_hashed_on_server);
		tcase_add_test(pg, test_pg_large_hour_hashed_on_server);
		suite_add_tcase(s, pg);
	} else {
		/* what only an SQLite file has: its bytes, its lock file */
		TCase *f = tcase_create("sqlite file");
		tcase_add_checked_fixture(f, setup, teardown);
		tcase_add_test(f, test_create_and_reopen);
		tcase_add_test(f, test_newer_schema_refused);
		tcase_add_test(f, test_migrates_version_1);
		tcase_add_test(f, test_not_sqlite_refused);
		tcase_add_test(f, test_foreign_sqlite_refused);
		tcase_add_test(f, test_corrupt_refused);
		tcase_add_test(f, test_second_writer_refused);
		tcase_add_test(f, test_index_damage_refused);
		tcase_add_test(f, test_full_check_unless_clean_stop);
		suite_add_tcase(s, f);
	}
	return tu_run(s);
}
