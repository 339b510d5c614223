/*
 * test_agent: the agent role's module (daemon/agent.c) on its own: the
 * spool directory of an agent id (every id one file name, and back), the
 * spools an earlier run left (opened, whatever else is in the directory),
 * the restart rule (a cycle a spool has is skipped, per agent id, and the
 * resume time is the least of the spools'), a spool whose making a kill
 * cut short, and a spool at its ceiling
 * (batches held in memory, tried again, then dropped and counted). The
 * senders point at a port nobody listens on: nothing here is acknowledged.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "err.h"
#include "testutil.h"

#define S_NS 1000000000LL
#define T0 (1790812800LL * S_NS)

static const struct {
	const char *agent, *name;
} names[] = {
	{ "sim-host-0", "sim-host-0" },
	{ "a.b_c-D9", "a.b_c-D9" },
	{ "a/b", "a%2Fb" },
	{ "..", "%2E." },
	{ ".hidden", "%2Ehidden" },
	{ "a b", "a%20b" },
	{ "100%", "100%25" },
	{ "h\xc3\xa9te", "h%C3%A9te" },
};

START_TEST(spool_names)
{
	char out[256], want[256];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_int_eq(agent_spool_path("/s", names[i].agent, out, sizeof(out)), 0);
		snprintf(want, sizeof(want), "/s/%s", names[i].name);
		ck_assert_str_eq(out, want);
	}
	/* too long for the buffer: refused, never cut */
	ck_assert_int_eq(agent_spool_path("/s", "a/b/c", out, 8), -ENAMETOOLONG);
}
END_TEST

static void settings(struct agent_settings *s, const char *dir)
{
	struct tally_err e = { 0 };
	ck_assert_int_eq(agent_settings_parse(s, NULL, dir, &e), 0);
	s->given = true;
	str_copy(s->urls[0], "http://127.0.0.1:1", sizeof(s->urls[0]));
	s->n_urls = 1;
	s->backoff_min_ns = S_NS / 100;
	s->backoff_max_ns = S_NS / 10;
}

/* A cycle's batch of agent: n VMs, a cpu counter each. */
static void mkbatch(struct batch *b, const char *agent, int64_t t, int n)
{
	batch_init(b, agent);
	b->time_ns = t;
	for (int i = 0; i < n; i++) {
		struct sample s = { .time_ns = t, .meter = M_CPU, .kind = SAMPLE_CUMULATIVE };
		snprintf(s.resource, sizeof(s.resource), "vm-%d", i);
		s.v.counter = (uint64_t)(t / S_NS) * 1000 + (uint64_t)i;
		ck_assert_int_eq(batch_add_sample(b, &s), 0);
	}
}

static void deliver(struct agent *a, const char *agent, int64_t t, int n)
{
	struct batch b;
	mkbatch(&b, agent, t, n);
	ck_assert_int_eq(agent_deliver(a, &b), 0);
	batch_release(&b);
}

struct figures {
	double skipped, spooled, refused, dropped, batches;
};

static void take(void *ctx, const struct collector_metric *m)
{
	struct figures *f = ctx;
	if (strcmp(m->labels, "agent=a/b") && strcmp(m->labels, "agent=h1"))
		return;
	if (!strcmp(m->name, "tally_agent_batches_skipped"))
		f->skipped = m->value;
	else if (!strcmp(m->name, "tally_agent_batches_spooled"))
		f->spooled = m->value;
	else if (!strcmp(m->name, "tally_agent_batches_refused"))
		f->refused = m->value;
	else if (!strcmp(m->name, "tally_agent_readings_dropped"))
		f->dropped = m->value;
	else if (!strcmp(m->name, "tally_agent_spool_batches"))
		f->batches = m->value;
}

/* A kill between two agent ids' batches of one cycle: the restart resumes
 * at the least of the spools' times and skips what each has. */
START_TEST(restart_per_agent)
{
	char dir[256], path[400];
	struct agent_settings s;
	struct agent *a;
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "agent");
	settings(&s, dir);
	ck_assert_int_eq(agent_open(&a, &s, 60 * S_NS, &e), 0);
	ck_assert_int_eq(agent_resume_ns(a, false), 0);
	/* cycles 1 and 2 for both; cycle 3 for "a/b" only (then the kill) */
	for (int c = 1; c <= 2; c++) {
		deliver(a, "a/b", T0 + c * 60 * S_NS, 3);
		deliver(a, "z", T0 + c * 60 * S_NS, 2);
	}
	deliver(a, "a/b", T0 + 3 * 60 * S_NS, 3);
	agent_close(a);

	/* the spool root also holds a directory that is no spool and a file:
	 * both left alone */
	snprintf(path, sizeof(path), "%s/spool/lost+found", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/spool/README", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/spool/a%%2Fb/identity", dir);
	ck_assert_int_eq(access(path, R_OK), 0);

	ck_assert_int_eq(agent_open(&a, &s, 60 * S_NS, &e), 0);
	ck_assert_int_eq(agent_resume_ns(a, false), T0 + 2 * 60 * S_NS);
	ck_assert_int_eq(agent_resume_ns(a, true), T0 + 3 * 60 * S_NS);
	/* the resumed run collects cycle 3 again: "a/b" has it, "z" not */
	deliver(a, "a/b", T0 + 3 * 60 * S_NS, 3);
	deliver(a, "z", T0 + 3 * 60 * S_NS, 2);
	deliver(a, "a/b", T0 + 4 * 60 * S_NS, 3);
	struct figures fg = { 0 };
	agent_metrics(a, take, &fg);
	ck_assert(fg.skipped == 1);
	ck_assert(fg.spooled == 1);
	ck_assert(fg.batches == 4);   /* cycles 1-4, none acknowledged */
	struct agent_summary sum;
	agent_get_summary(a, &sum);
	ck_assert_uint_eq(sum.spools, 2);
	ck_assert_uint_eq(sum.batches_waiting, 4 + 3);
	ck_assert(!agent_drained(a));
	agent_close(a);

	/* a new agent id's spool says it has everything before its first
	 * batch's cycle: resuming never goes back before it */
	ck_assert_int_eq(agent_open(&a, &s, 60 * S_NS, &e), 0);
	deliver(a, "h1", T0 + 10 * 60 * S_NS, 1);
	agent_close(a);
	snprintf(path, sizeof(path), "%s/spool/h1/identity", dir);
	f = fopen(path, "r");
	char text[300] = "";
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_gt(fread(text, 1, sizeof(text) - 1, f), 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "\ncovered_ns 1790813340000000000\n"));   /* T0 + 9 min */
	tu_rmrf(dir);
}
END_TEST

/* A kill while a new agent id's spool was being made (its directory and
 * lock there, its identity not yet renamed into place): that agent id
 * has nothing spooled, so the restart makes its spool and a fast-forward
 * run collects from the start (resume 0), each spool skipping what it has.
 * A directory with an agent id's name holding something else (no lock; a
 * lock and a file a spool never has) is left alone. */
START_TEST(cut_short_making)
{
	char dir[256], path[400];
	struct agent_settings s;
	struct agent *a;
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "agent");
	settings(&s, dir);
	ck_assert_int_eq(agent_open(&a, &s, 60 * S_NS, &e), 0);
	for (int c = 1; c <= 2; c++)
		deliver(a, "a/b", T0 + c * 60 * S_NS, 3);
	agent_close(a);
	static const char *const files[][2] = {
		{ "z", NULL }, { "z/lock", "" }, { "z/identity.tmp", "tally spool 1\nagent z\nsp" },
		{ "x", NULL }, { "x/notes.txt", "mine" },
		{ "y", NULL }, { "y/lock", "" }, { "y/data.bin", "not a segment" },
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/spool/%s", dir, files[i][0]);
		if (!files[i][1]) {
			ck_assert_int_eq(mkdir(path, 0700), 0);
			continue;
		}
		FILE *f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(files[i][1], f);
		fclose(f);
	}
	ck_assert_msg(agent_open(&a, &s, 60 * S_NS, &e) == 0, "%s", e.msg);
	struct agent_summary sum;
	agent_get_summary(a, &sum);
	ck_assert_uint_eq(sum.spools, 2);          /* a/b, and z made now; x and y left alone */
	ck_assert_int_eq(agent_resume_ns(a, false), 0);
	ck_assert_int_eq(agent_resume_ns(a, true), T0 + 2 * 60 * S_NS);
	deliver(a, "a/b", T0 + 60 * S_NS, 3);      /* has it: skipped */
	deliver(a, "z", T0 + 60 * S_NS, 2);        /* spooled */
	agent_get_summary(a, &sum);
	ck_assert_uint_eq(sum.batches_skipped, 1);
	ck_assert_uint_eq(sum.batches_spooled, 1);
	agent_close(a);
	snprintf(path, sizeof(path), "%s/spool/x/notes.txt", dir);
	ck_assert_int_eq(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "%s/spool/x/identity", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/spool/y/identity", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	tu_rmrf(dir);
}
END_TEST

/* A spool at its ceiling: the batch is held in memory and tried again
 * with the next (delivery still succeeds); past AGENT_HOLD_MAX_SAMPLES the
 * held readings are dropped and counted; with room again (a bigger
 * ceiling after a restart here) the held readings go in one batch. */
START_TEST(ceiling_holds_then_drops)
{
	char dir[256];
	struct agent_settings s;
	struct agent *a;
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "agent");
	settings(&s, dir);
	s.spool.max_bytes = 16384;
	s.spool.thin_at_bytes = 16384;
	s.spool.reserve_bytes = 4096;
	ck_assert_int_eq(agent_open(&a, &s, 60 * S_NS, &e), 0);
	int c = 1;
	struct figures fg = { 0 };
	for (; c < 100 && fg.refused == 0; c++) {
		deliver(a, "h1", T0 + c * 60 * S_NS, 200);
		agent_metrics(a, take, &fg);
	}
	ck_assert(fg.refused == 1);
	ck_assert(!agent_drained(a));
	double spooled = fg.spooled;
	/* 20000 readings a cycle: the fourth cycle held passes 65536 */
	for (int k = 0; k < 4; k++, c++)
		deliver(a, "h1", T0 + c * 60 * S_NS, 20000);
	agent_metrics(a, take, &fg);
	ck_assert(fg.spooled == spooled);
	ck_assert(fg.dropped == 200 + 3 * 20000);
	/* nothing spooled, nothing flushed while there is no room */
	ck_assert_int_eq(agent_flush(a), 0);
	agent_metrics(a, take, &fg);
	ck_assert(fg.spooled == spooled);
	agent_close(a);
	tu_rmrf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("agent");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, spool_names);
	tcase_add_test(tc, restart_per_agent);
	tcase_add_test(tc, cut_short_making);
	tcase_add_test(tc, ceiling_holds_then_drops);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
