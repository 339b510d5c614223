/*
 * test_scheduler.c: the collection loop calls each collector once per tick,
 * accounts for overruns by skipping ticks (never reading twice in a row to
 * catch up), and in fast-forward visits every tick up to and including end.
 * A fake clock stands in for the wall clock; the collector is a recording
 * stand-in (the real collectors are tested on their own).
 */
#include <check.h>
#include <string.h>

#include "batch.h"
#include "err.h"
#include "scheduler.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

#define T0 (1790812800LL * NS_PER_SEC)
#define S(x) ((int64_t)(x) * NS_PER_SEC)

static int64_t fake_now;
static int64_t read_cost;          /* how far a read moves the fake clock */
static int64_t ticks[16];
static int n_ticks;
static uint64_t seqs[16];
static int n_seqs;
static volatile sig_atomic_t stop;
static int stop_after;

static int64_t clock_fn(void) { return fake_now; }
static void sleep_fn(int64_t t) { if (t > fake_now) fake_now = t; }

static int rec_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, "vm-1", sizeof(s.resource));
	s.time_ns = now_ns;
	ck_assert_int_lt(n_ticks, 16);
	ticks[n_ticks++] = now_ns;
	fake_now += read_cost;
	return sink->sample(sink->ctx, NULL, &s);
}

static const struct collector_ops rec_ops = { .name = "rec", .read = rec_read };

static int deliver(void *ctx, struct batch *b)
{
	ck_assert_int_eq((int)b->n_samples, 1);
	ck_assert_int_eq(b->samples[0].time_ns, b->time_ns);
	seqs[n_seqs++] = b->seq;
	return 0;
}

static uint64_t first_seq(void *ctx, const char *agent) { return 41; }

static int cycle_done(void *ctx, int64_t tick, struct tally_err *e)
{
	if (n_ticks >= stop_after)
		stop = 1;
	return 0;
}

static void run(bool ff, int64_t end, int64_t cost, int until)
{
	struct batcher bt;
	struct sched_collector c;
	struct scheduler s;
	struct tally_err e = { 0 };

	n_ticks = n_seqs = 0;
	stop = 0;
	stop_after = until;
	fake_now = T0;
	read_cost = cost;
	memset(&c, 0, sizeof(c));
	c.ops = &rec_ops;
	batcher_init(&bt, "host-a", deliver, first_seq, NULL);
	memset(&s, 0, sizeof(s));
	s.coll = &c;
	s.n_coll = 1;
	s.interval_ns = S(10);
	s.fast_forward = ff;
	s.end_ns = end;
	s.batcher = &bt;
	s.cycle_done = cycle_done;
	s.stop = &stop;
	s.now_ns = clock_fn;
	s.sleep_until = sleep_fn;
	ck_assert_int_eq(sched_run(&s, T0, &e), 0);
	if (!ff) {
		/* a 25 s read on a 10 s interval: after the read at T the clock
		 * says T+25, ticks T+10 and T+20 are gone, next is T+30 */
		ck_assert_uint_eq(s.cycles, 3);
		ck_assert_uint_eq(s.overruns, 3);
		ck_assert_uint_eq(s.skipped_ticks, 6);
	}
	batcher_release(&bt);
}

START_TEST(test_overrun_skips_ticks)
{
	run(false, 0, S(25), 3);
	ck_assert_int_eq(n_ticks, 3);
	ck_assert_int_eq(ticks[0], T0);
	ck_assert_int_eq(ticks[1], T0 + S(30));
	ck_assert_int_eq(ticks[2], T0 + S(60));
	ck_assert_int_eq(n_seqs, 3);
	ck_assert_uint_eq(seqs[0], 41);
	ck_assert_uint_eq(seqs[2], 43);
}
END_TEST

START_TEST(test_fast_forward_to_end_inclusive)
{
	/* ticks T0, T0+10 ... T0+50: six cycles, end included */
	run(true, T0 + S(50), 0, 100);
	ck_assert_int_eq(n_ticks, 6);
	ck_assert_int_eq(ticks[5], T0 + S(50));
	ck_assert_uint_eq(seqs[5], 46);
}
END_TEST

START_TEST(test_next_tick)
{
	ck_assert_int_eq(sched_next_tick(T0, S(10)), T0);
	ck_assert_int_eq(sched_next_tick(T0 + 1, S(10)), T0 + S(10));
	ck_assert_int_eq(sched_next_tick(T0 + S(10) - 1, S(10)), T0 + S(10));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("scheduler");
	TCase *tc = tcase_create("loop");
	tcase_add_test(tc, test_overrun_skips_ticks);
	tcase_add_test(tc, test_fast_forward_to_end_inclusive);
	tcase_add_test(tc, test_next_tick);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
