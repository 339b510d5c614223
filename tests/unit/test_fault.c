/*
 * test_fault.c: the aggregator and the ledger under the countdown fault
 * injector (common/fault.h), in the style of SQLite's malloc tests.
 *
 * One stream of batches (the simulated fleet: three VMs that reboot, stop,
 * crash and migrate over half an hour) is ingested into a fresh ledger the
 * way tallyd does it: a commit every fifteen batches; an aggregator that
 * reports itself broken is closed and opened again (it resumes after what
 * the ledger committed, and batches it already has are skipped by their
 * sequence numbers); a commit that fails on a sound aggregator is tried
 * again at the next one. For N = 1, 2, ... the Nth allocation, ledger
 * write or commit fails (once), until a run completes without reaching
 * the Nth call: by then every call site on the path has failed once.
 *
 * For every N: each injected failure either surfaced as an error with a
 * message or was absorbed (retried, or a degradation that changes no
 * usage), nothing crashed or leaked (ASan, LSan), and the ledger's usage,
 * events and series are exactly those of a run without faults.
 */
#include <check.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "fault.h"
#include "tallytime.h"
#include "testutil.h"

extern const struct collector_ops sim_collector;

#define T0 1790812800000000000LL   /* 2026-10-01T00:00:00Z */
#define STEP (60 * NS_PER_SEC)
#define CYCLES 30
#define COMMIT_EVERY 15

static const char *sim_yaml = "vms: 3\ntenants: 2\nhosts: 2\ndisks: 1\nnics: 1\nseed: 11\n"
			      "reboots_per_day: 8\nstops_per_day: 6\ncrashes_per_day: 4\nmigrations_per_day: 6\n";

/* The recorded stream: deep copies of what the batcher delivered. */
static struct batch *stream;
static size_t n_stream;

static int record(void *ctx, struct batch *b)
{
	(void)ctx;
	struct batch *c;
	stream = realloc(stream, (n_stream + 1) * sizeof(*stream));
	ck_assert_ptr_nonnull(stream);
	c = &stream[n_stream++];
	batch_init(c, b->agent);
	c->seq = n_stream;           /* increasing for every agent */
	c->time_ns = b->time_ns;
	c->clock_step_ns = b->clock_step_ns;
	for (size_t i = 0; i < b->n_samples; i++)
		ck_assert_int_eq(batch_add_sample(c, &b->samples[i]), 0);
	for (size_t i = 0; i < b->n_metas; i++)
		ck_assert_int_eq(batch_add_meta(c, &b->metas[i]), 0);
	for (size_t i = 0; i < b->n_events; i++)
		ck_assert_int_eq(batch_add_event(c, &b->events[i]), 0);
	return 0;
}

static uint64_t any_seq(void *ctx, const char *agent)
{
	(void)ctx;
	(void)agent;
	return 1;
}

static void make_stream(void)
{
	struct collector_env env = { .agent_id = "host-0", .interval_ns = STEP, .start_ns = T0,
				     .start_fixed = true };
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct batcher bt;
	void *st = NULL;

	ck_assert_int_eq(cfg_load_string("sim.yaml", sim_yaml, strlen(sim_yaml), &root, &e), 0);
	ck_assert_msg(sim_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_int_eq(sim_collector.init(st, 0, &e), 0);
	batcher_init(&bt, "host-0", record, any_seq, NULL);
	struct sink sk = batcher_sink(&bt);
	for (int k = 0; k < CYCLES; k++) {
		ck_assert_msg(sim_collector.read(st, T0 + k * STEP, &sk, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(batcher_flush(&bt, T0 + k * STEP), 0);
	}
	batcher_release(&bt);
	sim_collector.free(st);
}

/* What a run left in the ledger: usage, events and series as text. */
static char *dump(const char *path)
{
	static const char *const q[] = {
		"SELECT r.uuid, m.name, u.device, u.hour_ns, u.quantity, u.spanned_ns, u.covered_ns, u.samples"
		" FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id"
		" ORDER BY 1, 2, 3, 4, 5",
		"SELECT r.uuid, e.time_ns, e.agent, e.type, e.reason FROM events e JOIN resources r ON r.id = e.resource_id"
		" ORDER BY 1, 2, 3, 4, 5",
		"SELECT r.uuid, m.name, s.device, s.agent, s.last_ns, s.origin_ns, s.kind, s.last_value, s.flags"
		" FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id"
		" ORDER BY 1, 2, 3, 4, 5",
		"SELECT agent, last_seq FROM agents ORDER BY 1",
	};
	sqlite3 *db;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		sqlite3_stmt *st;
		ck_assert_int_eq(sqlite3_prepare_v2(db, q[i], -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++)
				fprintf(f, "%s|", sqlite3_column_text(st, c) ? (const char *)sqlite3_column_text(st, c)
									    : "NULL");
			fputc('\n', f);
		}
		sqlite3_finalize(st);
		fputs("--\n", f);
	}
	sqlite3_close(db);
	fclose(f);
	return out;
}

struct outcome {
	unsigned errors;             /* failures that surfaced */
	unsigned reopens;            /* broken aggregators closed and opened again */
	long injected;               /* faults the injector made */
};

/* Ingest the stream into the ledger at path as tallyd does (see top). */
static struct outcome run(const char *path, unsigned kinds, long n)
{
	struct agg_config ac = { .ledger_path = path, .max_gap_ns = 3 * STEP };
	struct aggregator *a = NULL;
	struct outcome o = { 0 };
	struct tally_err e;
	size_t i = 0;
	int since_commit = 0, rc;

	fault_arm(kinds, n, false);
	for (int guard = 0;; guard++) {
		ck_assert_msg(guard < 100000, "N=%ld: no progress", n);
		memset(&e, 0, sizeof(e));
		if (!a) {
			if ((rc = agg_open(&a, &ac, &e))) {
				ck_assert_msg(e.msg[0], "N=%ld: agg_open failed (%d) without a message", n, rc);
				ck_assert_ptr_null(a);
				o.errors++;
				continue;
			}
			i = 0;
		}
		if (i == n_stream) {
			if ((rc = agg_commit(a, &e)) == 0)
				break;
			ck_assert_msg(rc < 0 && e.msg[0], "N=%ld: final commit: %d '%s'", n, rc, e.msg);
			o.errors++;
			if (agg_broken(a)) {
				agg_close(a);
				a = NULL;
				o.reopens++;
			}
			continue;
		}
		const struct batch *b = &stream[i];
		if (b->seq <= agg_agent_seq(a, b->agent)) {
			i++;        /* committed before a reopen */
			continue;
		}
		if ((rc = agg_ingest(a, b, &e)) < 0) {
			ck_assert_msg(e.msg[0], "N=%ld: agg_ingest failed (%d) without a message", n, rc);
			o.errors++;
			if (agg_broken(a)) {
				agg_close(a);
				a = NULL;
				o.reopens++;
			}
			continue;   /* the same batch again */
		}
		i++;
		if (++since_commit < COMMIT_EVERY)
			continue;
		since_commit = 0;
		if ((rc = agg_commit(a, &e)) < 0) {
			ck_assert_msg(e.msg[0], "N=%ld: agg_commit failed (%d) without a message", n, rc);
			o.errors++;
			if (agg_broken(a)) {
				agg_close(a);
				a = NULL;
				o.reopens++;
			}   /* else: everything stays pending, the next commit writes it */
		}
	}
	agg_close(a);
	o.injected = fault_injected();
	fault_disarm();
	return o;
}

static void sweep(unsigned kinds, const char *name)
{
	char dir[64], path[128], cmd[200];
	struct outcome o;
	long n;
	unsigned surfaced = 0, absorbed = 0;

	if (!stream)
		make_stream();
	/* on tmpfs when there is one: a thousand ledgers, each synced */
	snprintf(dir, sizeof(dir), "%s/tally-fault-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ref.db", dir);
	o = run(path, 0, 0);
	ck_assert_uint_eq(o.errors, 0);
	char *ref = dump(path);
	/* the stream has lifecycle events (their rows are written too) */
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM events", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_gt(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (n = 1;; n++) {
		snprintf(path, sizeof(path), "%s/n%ld.db", dir, n);
		o = run(path, kinds, n);
		if (o.injected == 0)
			break;   /* the run made fewer than n calls: every one has failed once */
		char *got = dump(path);
		ck_assert_msg(!strcmp(ref, got), "%s N=%ld: the ledger differs from the run without faults", name, n);
		free(got);
		if (o.errors)
			surfaced++;
		else
			absorbed++;
		snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm' '%s.lock'", path, path, path, path);
		ck_assert_int_eq(system(cmd), 0);
	}
	free(ref);
	fprintf(stderr, "fault %s: %ld call sites failed in turn: %u surfaced as errors, %u absorbed;"
		" every ledger exact\n", name, n - 1, surfaced, absorbed);
	ck_assert_int_gt(n, 3);    /* the sweep did reach the code */
	ck_assert_uint_gt(surfaced, 0);
	tu_rmrf(dir);
}

START_TEST(test_commit_faults)
{
	sweep(FAULT_COMMIT, "commit");
}
END_TEST

START_TEST(test_write_faults)
{
	sweep(FAULT_WRITE, "write");
}
END_TEST

START_TEST(test_alloc_faults)
{
	sweep(FAULT_ALLOC, "alloc");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("fault");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_commit_faults);
	tcase_add_test(tc, test_write_faults);
	tcase_add_test(tc, test_alloc_faults);
	suite_add_tcase(s, tc);
	int rc = tu_run(s);
	for (size_t i = 0; i < n_stream; i++)
		batch_release(&stream[i]);
	free(stream);
	return rc;
}
