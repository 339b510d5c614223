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

static void sleep_until(int64_t t_ns)
{
	struct timespec ts = { .tv_sec = t_ns / NS_PER_SEC, .tv_nsec = t_ns % NS_PER_SEC };
	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
		return; /* a signal: let the loop look at *stop */
}

static int one_cycle(struct scheduler *s, int64_t tick, struct tally_err *e)
{
	struct sink sink = batcher_sink(s->batcher);
	int rc;

	for (size_t i = 0; i < s->n_coll; i++) {
		struct sched_collector *c = &s->coll[i];
		struct tally_err ce = { 0 };
		int64_t r0 = time_mono_ns();
		int rrc = c->ops->read(c->state, tick, &sink, &ce);
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
	int64_t (*now)(void) = s->now_ns ? s->now_ns : time_now_ns;
	int64_t (*elapsed)(void) = s->now_ns ? s->now_ns : time_mono_ns;
	void (*sleep_fn)(int64_t) = s->sleep_until ? s->sleep_until : sleep_until;
	int64_t tick = first_tick_ns;
	int rc;

	while (!(s->stop && *s->stop)) {
		if (s->fast_forward) {
			if (s->end_ns && tick > s->end_ns)
				return 0;
		} else {
			int64_t t = now();
			if (t < tick) {
				sleep_fn(tick);
				continue;
			}
		}
		int64_t t0 = elapsed();
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
		int64_t t = now();
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
