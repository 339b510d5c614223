/*
 * test_scheduler.c: the collection loop calls each collector once per tick,
 * accounts for overruns by skipping ticks (never reading twice in a row to
 * catch up), in fast-forward visits every tick up to and including end, and
 * in real time keeps data time right across steps of the wall clock: a
 * forward step is followed (the batches say by how much), a backward one is
 * not (data time runs on ahead of the wall clock), and a start behind the
 * ledger's last cycle starts after it. Fake clocks stand in for the real
 * ones (the collection clock, and the wall clock as an offset from it); the
 * collector is a recording stand-in (the real collectors are tested on
 * their own). Every expected value is worked out in the comments.
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

static int64_t fake_now;           /* the collection clock */
static int64_t wall_off;           /* the wall clock - the collection clock */
static int64_t read_cost;          /* how far a read moves the fake clock */
static int64_t ticks[16], reads[16], steps[16];
static int n_ticks;
static uint64_t seqs[16];
static int n_seqs;
static volatile sig_atomic_t stop;
static int stop_after;
/* the wall clock steps by step_by[i] after read i (0: none) */
static int64_t step_by[16];

/* the wall clock steps by sleep_step while the loop sleeps past sleep_step_at */
static int64_t sleep_step, sleep_step_at;

static int64_t clock_fn(void) { return fake_now; }
static int64_t wall_fn(void) { return fake_now + wall_off; }
static void sleep_fn(int64_t t)
{
	if (t > fake_now)
		fake_now = t;
	if (sleep_step && fake_now >= sleep_step_at) {
		wall_off += sleep_step;
		sleep_step = 0;
	}
}

static int rec_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, "vm-1", sizeof(s.resource));
	s.time_ns = now_ns;
	ck_assert_int_lt(n_ticks, 16);
	reads[n_ticks] = now_ns;
	wall_off += step_by[n_ticks];
	n_ticks++;
	fake_now += read_cost;
	return sink->sample(sink->ctx, NULL, &s);
}

static const struct collector_ops rec_ops = { .name = "rec", .read = rec_read };

static int deliver(void *ctx, struct batch *b)
{
	ck_assert_int_eq((int)b->n_samples, 1);
	/* the reading's stamp is data time: the batcher added the shift */
	ck_assert_int_eq(b->samples[0].time_ns, b->time_ns);
	ticks[n_seqs] = b->time_ns;
	steps[n_seqs] = b->clock_step_ns;
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

static struct scheduler s;

static void run(bool ff, int64_t end, int64_t cost, int until, int64_t not_before)
{
	struct batcher bt;
	struct sched_collector c;
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
	s.not_before_ns = not_before;
	s.now_ns = wall_fn;
	s.collect_ns = clock_fn;
	s.sleep_until = sleep_fn;
	ck_assert_int_eq(sched_run(&s, sched_next_tick(T0 + wall_off, S(10)), &e), 0);
	batcher_release(&bt);
}

/* The cycles run: their data time, the collection time they were read at
 * and the batches' clock steps, in seconds after T0 (n of them). */
static void expect_cycles(int n, const int64_t *tick_s, const int64_t *read_s, const int64_t *step_s)
{
	ck_assert_int_eq(n_seqs, n);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(ticks[i], T0 + S(tick_s[i]));
		ck_assert_int_eq(reads[i], T0 + S(read_s[i]));
		ck_assert_int_eq(steps[i], S(step_s[i]));
	}
}

START_TEST(test_overrun_skips_ticks)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	run(false, 0, S(25), 3, 0);
	/* a 25 s read on a 10 s interval: after the read at T the clock says
	 * T+25, ticks T+10 and T+20 are gone, next is T+30 */
	ck_assert_uint_eq(s.cycles, 3);
	ck_assert_uint_eq(s.overruns, 3);
	ck_assert_uint_eq(s.skipped_ticks, 6);
	ck_assert_int_eq(n_ticks, 3);
	ck_assert_int_eq(ticks[0], T0);
	ck_assert_int_eq(ticks[1], T0 + S(30));
	ck_assert_int_eq(ticks[2], T0 + S(60));
	ck_assert_int_eq(n_seqs, 3);
	ck_assert_uint_eq(seqs[0], 41);
	ck_assert_uint_eq(seqs[2], 43);
	ck_assert_uint_eq(s.clock_steps, 0);
}
END_TEST

START_TEST(test_fast_forward_to_end_inclusive)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	/* ticks T0, T0+10 ... T0+50: six cycles, end included */
	run(true, T0 + S(50), 0, 100, 0);
	ck_assert_int_eq(n_ticks, 6);
	ck_assert_int_eq(ticks[5], T0 + S(50));
	ck_assert_uint_eq(seqs[5], 46);
}
END_TEST

/* The wall clock steps forward by 1205 s during the second read (at
 * T0+10). Right after that cycle the scheduler sees it: data time follows
 * (shift 1205 s), now is T0+10+1205 = T0+1215 in data time, so the next
 * tick on the grid is T0+1220, read at collection time T0+15 (5 s after the
 * last read: that is what passed); its batch says 1205 s were skipped.
 * Then T0+1230 (collection T0+25). */
START_TEST(test_forward_step_followed)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	step_by[1] = S(1205);
	run(false, 0, 0, 4, 0);
	static const int64_t want_tick[] = { 0, 10, 1220, 1230 }, want_read[] = { 0, 10, 15, 25 },
			     want_step[] = { 0, 0, 1205, 0 };
	expect_cycles(4, want_tick, want_read, want_step);
	ck_assert_uint_eq(s.clock_steps, 1);
	ck_assert_int_eq(s.clock_skipped_ns, S(1205));
	ck_assert_int_eq(s.clock_ahead_ns, 0);
	ck_assert_uint_eq(s.overruns, 0);
}
END_TEST

/* The wall clock steps forward by 1200 s while the loop sleeps towards
 * T0+20: at the wake the scheduler sees it; the tick on the new time just
 * passed, T0+1220, is later than the last read (collection time T0+20 >
 * T0+10): that tick is read now, no tick of real time is lost. */
START_TEST(test_forward_step_while_asleep)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	sleep_step = S(1200);
	sleep_step_at = T0 + S(20);
	run(false, 0, 0, 4, 0);
	static const int64_t want_tick[] = { 0, 10, 1220, 1230 }, want_read[] = { 0, 10, 20, 30 },
			     want_step[] = { 0, 0, 1200, 0 };
	expect_cycles(4, want_tick, want_read, want_step);
	ck_assert_uint_eq(s.clock_steps, 1);
}
END_TEST

/* The wall clock steps back 600 s during the second read: data time does
 * not follow (ticks T0+20, T0+30 as if nothing happened, 600 s ahead of
 * the wall clock). Forward 300 s during the fourth read: still 300 s
 * behind data time, nothing to follow. Forward 400 s during the fifth (at
 * T0+40): now 100 s past it: data time follows by those 100 s; now is
 * T0+140 in data time, the very instant of the last read, so the next tick
 * is T0+150, read at collection time T0+50. */
START_TEST(test_backward_step_held)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	step_by[1] = -S(600);
	step_by[3] = S(300);
	step_by[4] = S(400);
	run(false, 0, 0, 6, 0);
	static const int64_t want_tick[] = { 0, 10, 20, 30, 40, 150 }, want_read[] = { 0, 10, 20, 30, 40, 50 },
			     want_step[] = { 0, 0, 0, 0, 0, 100 };
	expect_cycles(6, want_tick, want_read, want_step);
	ck_assert_uint_eq(s.clock_steps, 3);
	ck_assert_int_eq(s.clock_skipped_ns, S(100));
	ck_assert_int_eq(s.clock_ahead_ns, 0);
}
END_TEST

/* While held: after the backward step alone, data time is 600 s ahead. */
START_TEST(test_backward_step_ahead)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	step_by[1] = -S(600);
	run(false, 0, 0, 4, 0);
	ck_assert_int_eq(ticks[3], T0 + S(30));
	ck_assert_uint_eq(s.clock_steps, 1);
	ck_assert_int_eq(s.clock_ahead_ns, S(600));
	ck_assert_int_eq(s.clock_skipped_ns, 0);
}
END_TEST

/* The wall clock (T0) is behind the ledger's last cycle (T0+45, a
 * restart after a backward step): data time starts at T0+45, 45 s ahead of
 * the wall clock; the first tick is T0+50, read at collection time T0+5. */
START_TEST(test_start_behind_ledger)
{
	memset(step_by, 0, sizeof(step_by));
	wall_off = 0;
	run(false, 0, 0, 2, T0 + S(45));
	ck_assert_int_eq(ticks[0], T0 + S(50));
	ck_assert_int_eq(reads[0], T0 + S(5));
	ck_assert_int_eq(ticks[1], T0 + S(60));
	ck_assert_int_eq(steps[0], 0);
	ck_assert_int_eq(s.clock_ahead_ns, S(45));
	ck_assert_uint_eq(s.clock_steps, 0);
}
END_TEST

START_TEST(test_next_tick)
{
	ck_assert_int_eq(sched_next_tick(T0, S(10)), T0);
	ck_assert_int_eq(sched_next_tick(T0 + 1, S(10)), T0 + S(10));
	ck_assert_int_eq(sched_next_tick(T0 + S(10) - 1, S(10)), T0 + S(10));
}
END_TEST

/* The batcher turns collection-clock stamps into data time. */
static struct batch got;
static int keep(void *ctx, struct batch *b)
{
	got.clock_step_ns = b->clock_step_ns;
	got.time_ns = b->time_ns;
	ck_assert_int_eq((int)b->n_samples, 1);
	ck_assert_int_eq((int)b->n_events, 1);
	ck_assert_int_eq((int)b->n_metas, 1);
	ck_assert_int_eq(b->samples[0].time_ns, T0 + S(1210));
	ck_assert_int_eq(b->samples[0].origin_ns, T0 + S(1205));
	ck_assert_int_eq(b->events[0].time_ns, T0 + S(1207));
	ck_assert_int_eq(b->metas[0].time_ns, T0 + S(1210));
	return 0;
}

START_TEST(test_batcher_shift)
{
	struct batcher bt;
	batcher_init(&bt, "host-a", keep, NULL, NULL);
	bt.shift_ns = bt.shift0_ns = 0;
	struct sink k = batcher_sink(&bt);
	bt.shift_ns = S(1200);         /* a step of 1200 s before the agent's first batch */
	struct sample smp;
	struct lifecycle_event ev;
	struct resource_meta m;
	memset(&smp, 0, sizeof(smp));
	memset(&ev, 0, sizeof(ev));
	memset(&m, 0, sizeof(m));
	str_copy(smp.resource, "vm-1", sizeof(smp.resource));
	smp.time_ns = T0 + S(10);
	smp.origin_ns = T0 + S(5);
	ev.time_ns = T0 + S(7);
	m.time_ns = T0 + S(10);
	ck_assert_int_eq(k.sample(k.ctx, NULL, &smp), 0);
	ck_assert_int_eq(k.event(k.ctx, NULL, &ev), 0);
	ck_assert_int_eq(k.meta(k.ctx, NULL, &m), 0);
	ck_assert_int_eq(batcher_flush(&bt, T0 + S(1210)), 0);
	ck_assert_int_eq(got.clock_step_ns, S(1200));
	batcher_release(&bt);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("scheduler");
	TCase *tc = tcase_create("loop");
	tcase_add_test(tc, test_overrun_skips_ticks);
	tcase_add_test(tc, test_fast_forward_to_end_inclusive);
	tcase_add_test(tc, test_forward_step_followed);
	tcase_add_test(tc, test_forward_step_while_asleep);
	tcase_add_test(tc, test_backward_step_held);
	tcase_add_test(tc, test_backward_step_ahead);
	tcase_add_test(tc, test_start_behind_ledger);
	tcase_add_test(tc, test_next_tick);
	tcase_add_test(tc, test_batcher_shift);
	suite_add_tcase(su, tc);
	return tu_run(su);
}
