/*
 * test_ledger.c: the ledger refuses what it must not touch, and the
 * aggregator keeps rule 7 (durable before acknowledged, idempotent ingest).
 *
 * Refusals: a ledger from a newer schema, a file that is not SQLite, an
 * SQLite file of someone else, a corrupt ledger; each is refused with a
 * clear message and left byte-for-byte unchanged. Faults: a commit that
 * fails as a full disk would (SQLite's result code forced through
 * ledger_fault_commit, the seam SQLite itself uses: a real full disk is in
 * tests/integration/diskfull.sh) loses nothing committed before it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator.h"
#include "err.h"
#include "ledger.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

#define T0 (1790812800LL * NS_PER_SEC)

static char dir[64], path[128];

static void setup(void)
{
	tu_mkdtemp(dir, sizeof(dir), "ledger");
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
}

static void teardown(void)
{
	tu_rmrf(dir);
	ledger_fault_commit = 0;
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
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
	char *msg = NULL;
	ck_assert_msg(sqlite3_exec(db, q, NULL, NULL, &msg) == SQLITE_OK, "%s", msg ? msg : "");
	sqlite3_close(db);
}

static int64_t sql_int(const char *p, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
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

static void add(struct batch *b, const char *res, int meter, int64_t t, uint64_t v)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, res, sizeof(s.resource));
	s.meter = (uint16_t)meter;
	s.kind = SAMPLE_CUMULATIVE;
	s.time_ns = t;
	s.v.counter = v;
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
}

static int64_t cpu_total(void)
{
	return sql_int(path, "SELECT coalesce(sum(quantity), 0) FROM usage u JOIN meters m"
			     " ON m.id = u.meter_id WHERE m.name = 'cpu'");
}

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

START_TEST(test_failed_commit_loses_nothing_committed)
{
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path };
	struct tally_err e = { 0 };
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
	ledger_fault_commit = SQLITE_FULL;
	ck_assert_int_eq(agg_commit(a, &e), -ENOSPC);
	ck_assert_msg(strstr(e.msg, path) != NULL, "message '%s' does not name the ledger", e.msg);
	ledger_fault_commit = 0;
	/* the aggregator is ahead of its ledger now: it refuses to go on */
	ck_assert_int_eq(agg_ingest(a, &b, &e), -EIO);
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 300);
	/* reopened, it takes the unacknowledged batch again and counts it once */
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	ck_assert_uint_eq(agg_agent_seq(a, "host-a"), 1);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	ck_assert_int_eq(cpu_total(), 800);
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

int main(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("ledger");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_and_reopen);
	tcase_add_test(tc, test_newer_schema_refused);
	tcase_add_test(tc, test_migrates_version_1);
	tcase_add_test(tc, test_not_sqlite_refused);
	tcase_add_test(tc, test_foreign_sqlite_refused);
	tcase_add_test(tc, test_corrupt_refused);
	tcase_add_test(tc, test_duplicate_batch_counts_once);
	tcase_add_test(tc, test_failed_commit_loses_nothing_committed);
	tcase_add_test(tc, test_metadata_history);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
