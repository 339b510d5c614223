/*
 * scheduler.c: the collection loop (see scheduler.h).
 */
#include "scheduler.h"
#include "err.h"
#include "tallytime.h"

#include <errno.h>
#include <time.h>

int64_t sched_next_tick(int64_t t_ns, int64_t interval_ns)
{
	int64_t k = t_ns / interval_ns;
	if (k * interval_ns < t_ns)
		k++;
	return k * interval_ns;
}

/* Sleep until the collection clock reads t (on CLOCK_MONOTONIC, so a step
 * of the wall clock neither wakes nor delays it). */
static void sleep_until(int64_t t_ns)
{
	int64_t m = t_ns - time_collect_anchor_ns();
	struct timespec ts = { .tv_sec = m / NS_PER_SEC, .tv_nsec = m % NS_PER_SEC };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		return; /* a signal: let the loop look at *stop */
}

static int64_t (*wall_fn(const struct scheduler *s))(void)
{
	return s->now_ns ? s->now_ns : time_now_ns;
}

static int64_t (*collect_fn(const struct scheduler *s))(void)
{
	return s->collect_ns ? s->collect_ns : time_collect_ns;
}

/* wall - collection clock: the wall clock read between two readings of the
 * collection clock, against their mean (retried when the three reads were
 * far apart: preempted between them). */
static int64_t wall_offset(const struct scheduler *s)
{
	int64_t (*wall)(void) = wall_fn(s), (*coll)(void) = collect_fn(s);
	int64_t off = 0;
	for (int i = 0; i < 3; i++) {
		int64_t c1 = coll(), w = wall(), c2 = coll();
		off = w - (c1 + (c2 - c1) / 2);
		if (c2 - c1 < 1000000)
			break;
	}
	return off;
}

/* Look at the wall clock: follow a forward step, hold against a backward
 * one (scheduler.h), log a step once. Returns true when data time moved
 * forward (the next tick must be planned again). */
static bool check_clock(struct scheduler *s)
{
	int64_t off = wall_offset(s);
	int64_t moved = off - s->wall_offset_ns, skipped = 0;
	bool step = moved > SCHED_STEP_TOLERANCE_NS || moved < -SCHED_STEP_TOLERANCE_NS;

	s->wall_offset_ns = off;
	if (off > s->shift_ns + SCHED_STEP_TOLERANCE_NS) {
		int64_t shift = time_round_ms(off);
		skipped = shift - s->shift_ns;
		s->shift_ns = shift;
		s->clock_skipped_ns += skipped;
	}
	int64_t ahead = time_round_ms(s->shift_ns - off);
	s->clock_ahead_ns = ahead > SCHED_STEP_TOLERANCE_NS ? ahead : 0;
	if (!step)
		return skipped != 0;
	s->clock_steps++;
	if (skipped)
		log_msg(LOG_WARN, "clock: the wall clock stepped %s by %.3f s; data time follows it, skipping"
			" %.3f s: readings across the step count the time that really passed (no silence, no"
			" gap)", moved > 0 ? "forward" : "back", (double)(moved < 0 ? -moved : moved) / 1e9,
			(double)skipped / 1e9);
	else if (s->clock_ahead_ns)
		log_msg(LOG_WARN, "clock: the wall clock stepped %s by %.3f s; data time runs on at the real"
			" rate, %.3f s ahead of the wall clock, so that no reading is stamped before an earlier"
			" one", moved > 0 ? "forward" : "back", (double)(moved < 0 ? -moved : moved) / 1e9,
			(double)s->clock_ahead_ns / 1e9);
	else
		log_msg(LOG_WARN, "clock: the wall clock stepped %s by %.3f s; data time is on it again",
			moved > 0 ? "forward" : "back", (double)(moved < 0 ? -moved : moved) / 1e9);
	return skipped != 0;
}

/* Real time, before the first tick: data time starts on the wall clock, or
 * just after not_before_ns when the wall clock is behind the ledger. */
static void start_clock(struct scheduler *s)
{
	s->wall_offset_ns = wall_offset(s);
	s->shift_ns = time_round_ms(s->wall_offset_ns);
	int64_t now = collect_fn(s)() + s->shift_ns;
	if (s->not_before_ns && now <= s->not_before_ns) {
		s->shift_ns += time_round_ms(s->not_before_ns - now);
		s->clock_ahead_ns = time_round_ms(s->shift_ns - s->wall_offset_ns);
		log_msg(LOG_WARN, "clock: the wall clock is %.3f s behind the ledger's last cycle; data time"
			" runs on from that cycle, ahead of the wall clock, so that no reading is stamped before"
			" an earlier one", (double)s->clock_ahead_ns / 1e9);
	}
	s->batcher->shift_ns = s->batcher->shift0_ns = s->shift_ns;
}

static int one_cycle(struct scheduler *s, int64_t tick, struct tally_err *e)
{
	struct sink sink = batcher_sink(s->batcher);
	int rc;

	s->batcher->shift_ns = s->shift_ns;
	for (size_t i = 0; i < s->n_coll; i++) {
		struct sched_collector *c = &s->coll[i];
		struct tally_err ce = { 0 };
		int64_t r0 = time_mono_ns();
		int rrc = c->ops->read(c->state, tick - s->shift_ns, &sink, &ce);
		c->read_ns = time_mono_ns() - r0;
		if (rrc) {
			c->errors++;
			complain(&c->fail, LOG_WARN, "collector %s: %s", c->ops->name, ce.msg);
		} else if (c->fail.window_ns) {
			complaint_clear(&c->fail, "collector %s: reading again", c->ops->name);
		}
	}
	if ((rc = batcher_flush(s->batcher, tick)))
		return err_set(e, rc, "cannot deliver the batches of cycle %lld: %s", (long long)tick,
			       e && e->msg[0] ? e->msg : "delivery failed");
	s->cycles++;
	return s->cycle_done ? s->cycle_done(s->ctx, tick, e) : 0;
}

int sched_run(struct scheduler *s, int64_t first_tick_ns, struct tally_err *e)
{
	int64_t (*coll)(void) = collect_fn(s);
	int64_t (*elapsed)(void) = s->collect_ns ? s->collect_ns : time_mono_ns;
	void (*sleep_fn)(int64_t) = s->sleep_until ? s->sleep_until : sleep_until;
	int64_t tick = first_tick_ns;
	int64_t last_read = INT64_MIN;   /* collection time of the last cycle's read */
	int rc;

	if (!s->fast_forward) {
		start_clock(s);
		if (tick <= s->not_before_ns) {
			int64_t now = coll() + s->shift_ns;
			tick = sched_next_tick(now > s->not_before_ns ? now : s->not_before_ns + 1, s->interval_ns);
		}
	}
	while (!(s->stop && *s->stop)) {
		if (s->fast_forward) {
			if (s->end_ns && tick > s->end_ns)
				return 0;
		} else {
			/* a forward step: the ticks go on from the new time: the
			 * tick just passed on it if it is later than the last read
			 * (a wake for a tick: this is that tick, moved), else the
			 * next one */
			if (check_clock(s)) {
				int64_t now = coll() + s->shift_ns;
				int64_t floor = sched_next_tick(now, s->interval_ns);
				if (floor > now)
					floor -= s->interval_ns;
				if (last_read != INT64_MIN && floor - s->shift_ns <= last_read)
					floor = sched_next_tick(last_read + s->shift_ns + 1, s->interval_ns);
				tick = floor;
			}
			int64_t t = coll() + s->shift_ns;
			if (t < tick) {
				if (s->wait)
					s->wait(s->ctx, tick - s->shift_ns);
				else
					sleep_fn(tick - s->shift_ns);
				continue;
			}
		}
		int64_t t0 = elapsed();
		last_read = tick - s->shift_ns;
		if ((rc = one_cycle(s, tick, e)))
			return rc;
		s->last_cycle_ns = elapsed() - t0;
		if (s->last_cycle_ns > s->max_cycle_ns)
			s->max_cycle_ns = s->last_cycle_ns;
		if (s->fast_forward) {
			tick += s->interval_ns;
			continue;
		}
		int64_t next = tick + s->interval_ns;
		int64_t t = coll() + s->shift_ns;
		if (t >= next + s->interval_ns) {
			/* we are at least one whole tick late: skip to the next
			 * tick still ahead instead of reading twice in a row */
			int64_t ahead = sched_next_tick(t, s->interval_ns);
			uint64_t skipped = (uint64_t)((ahead - next) / s->interval_ns);
			s->overruns++;
			s->skipped_ticks += skipped;
			complain(&s->overrun_complaint, LOG_WARN,
				 "collection cycle took %.3f s, longer than the %.3f s interval: skipped %llu"
				 " tick(s)", (double)s->last_cycle_ns / 1e9, (double)s->interval_ns / 1e9,
				 (unsigned long long)skipped);
			next = ahead;
		}
		tick = next;
	}
	return 0;
}
