/*
 * test_libvirt_loop: the event loop the libvirt collector gives libvirt
 * (collectors/libvirt_loop.c), driven through libvirt's own public event
 * API (virEventAddHandle ...), as libvirt's client drives it.
 *
 * What is checked: a watch's callback runs on the loop thread when its
 * pipe is readable, not while it is turned off, and again (for what was
 * left to read) when it is turned back on; turning a watch off and on with
 * nothing to read wakes the loop not once (the point of this loop: libvirt
 * does that twice per call); two watches on one descriptor both fire; a
 * removed watch or timer is not called again and its free function runs
 * once, on the loop thread, also when it removes itself from its own
 * callback; timers fire periodically, at every iteration for 0, never for
 * -1. Waits have a liveness bound of 10 s; nothing is timed.
 */
#include <check.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "libvirt_loop.h"
#include "testutil.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

struct rec {
	int calls;           /* callback calls */
	int events;          /* the last call's events */
	int frees;           /* free function calls */
	bool on_loop;        /* every call came from a thread other than the test's */
	int fd;              /* a watch reads one byte from it per call (-1: reads nothing) */
	int remove_self;     /* a callback removes its own watch (1) or timer (2) */
	int id;
};

static pthread_t test_thread;

static void on_io(int watch, int fd, int events, void *opaque)
{
	struct rec *r = opaque;
	char c;
	if (r->fd >= 0 && (events & VIR_EVENT_HANDLE_READABLE))
		ck_assert_int_eq(read(fd, &c, 1), 1);
	if (r->remove_self == 1)
		ck_assert_int_eq(virEventRemoveHandle(watch), 0);
	pthread_mutex_lock(&mu);
	r->calls++;
	r->events = events;
	r->on_loop &= !pthread_equal(pthread_self(), test_thread);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void on_timer(int timer, void *opaque)
{
	struct rec *r = opaque;
	if (r->remove_self == 2)
		ck_assert_int_eq(virEventRemoveTimeout(timer), 0);
	pthread_mutex_lock(&mu);
	r->calls++;
	r->on_loop &= !pthread_equal(pthread_self(), test_thread);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void on_free(void *opaque)
{
	struct rec *r = opaque;
	pthread_mutex_lock(&mu);
	r->frees++;
	r->on_loop &= !pthread_equal(pthread_self(), test_thread);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Wait until *v >= want (a liveness bound of 10 s). */
static void wait_at_least(const int *v, int want)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&mu);
	while (*v < want)
		if (pthread_cond_timedwait(&cv, &mu, &until)) {
			pthread_mutex_unlock(&mu);
			ck_abort_msg("waited 10 s for %d, have %d", want, *v);
		}
	pthread_mutex_unlock(&mu);
}

static int get(const int *v)
{
	pthread_mutex_lock(&mu);
	int x = *v;
	pthread_mutex_unlock(&mu);
	return x;
}

/* One whole iteration of the loop after this call: a 0 ms timer that
 * fires once (it turns itself off). Everything ready before the call has
 * been dispatched when this returns. */
static void sync_loop(void)
{
	struct rec t = { .on_loop = true, .fd = -1, .remove_self = 2 };
	ck_assert_int_ge(virEventAddTimeout(0, on_timer, &t, on_free), 0);
	wait_at_least(&t.frees, 1);
	ck_assert_int_eq(get(&t.calls), 1);
}

static void setup(void)
{
	test_thread = pthread_self();
	ck_assert_int_eq(lvloop_start(), 0);
}

START_TEST(watch_on_off)
{
	int p[2];
	struct rec r = { .on_loop = true };
	setup();
	ck_assert_int_eq(pipe(p), 0);
	r.fd = p[0];
	int w = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_io, &r, on_free);
	ck_assert_int_ge(w, 0);
	ck_assert_int_eq(write(p[1], "a", 1), 1);
	wait_at_least(&r.calls, 1);
	ck_assert_int_eq(get(&r.events), VIR_EVENT_HANDLE_READABLE);

	/* off: a byte written is not dispatched, whatever the loop does */
	virEventUpdateHandle(w, 0);
	ck_assert_int_eq(write(p[1], "b", 1), 1);
	sync_loop();
	sync_loop();
	ck_assert_int_eq(get(&r.calls), 1);
	/* on again: the byte waiting is */
	virEventUpdateHandle(w, VIR_EVENT_HANDLE_READABLE);
	wait_at_least(&r.calls, 2);

	/* off and on 200 times with nothing to read (what libvirt does around
	 * each call): the loop is not woken, not once */
	sync_loop();
	uint64_t before = lvloop_iterations();
	for (int i = 0; i < 200; i++) {
		virEventUpdateHandle(w, 0);
		virEventUpdateHandle(w, VIR_EVENT_HANDLE_READABLE);
	}
	ck_assert_uint_eq(lvloop_iterations(), before);
	ck_assert_int_eq(get(&r.calls), 2);

	/* removed: not called again (a byte waits), freed once on the loop
	 * thread */
	virEventUpdateHandle(w, 0);
	ck_assert_int_eq(write(p[1], "c", 1), 1);
	ck_assert_int_eq(virEventRemoveHandle(w), 0);
	ck_assert_int_eq(virEventRemoveHandle(w), -1);
	wait_at_least(&r.frees, 1);
	sync_loop();
	ck_assert_int_eq(get(&r.calls), 2);
	ck_assert_int_eq(get(&r.frees), 1);
	ck_assert(r.on_loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(two_watches_one_fd)
{
	int p[2];
	struct rec a = { .on_loop = true, .fd = -1 }, b = { .on_loop = true, .fd = -1 };
	setup();
	ck_assert_int_eq(pipe(p), 0);
	int wa = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_io, &a, NULL);
	int wb = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_io, &b, NULL);
	ck_assert_int_ge(wa, 0);
	ck_assert_int_ge(wb, 0);
	ck_assert_int_ne(wa, wb);
	/* nothing reads the byte: both fire, until they are removed */
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	wait_at_least(&a.calls, 1);
	wait_at_least(&b.calls, 1);
	ck_assert_int_eq(virEventRemoveHandle(wa), 0);
	ck_assert_int_eq(virEventRemoveHandle(wb), 0);
	sync_loop();
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(hangup_and_self_removal)
{
	int p[2];
	struct rec r = { .on_loop = true, .fd = -1, .remove_self = 1 };
	setup();
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_ge(virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_io, &r, on_free), 0);
	close(p[1]);   /* the writer gone: a hang-up, reported until the watch goes */
	wait_at_least(&r.frees, 1);
	sync_loop();
	ck_assert_int_eq(get(&r.calls), 1);
	ck_assert(get(&r.events) & VIR_EVENT_HANDLE_HANGUP);
	ck_assert_int_eq(get(&r.frees), 1);
	ck_assert(r.on_loop);
	close(p[0]);
}
END_TEST

START_TEST(timers)
{
	struct rec per = { .on_loop = true, .fd = -1 }, off = { .on_loop = true, .fd = -1 };
	setup();
	int tp = virEventAddTimeout(5, on_timer, &per, on_free);
	int to = virEventAddTimeout(-1, on_timer, &off, on_free);
	ck_assert_int_ge(tp, 0);
	ck_assert_int_ge(to, 0);
	wait_at_least(&per.calls, 3);            /* periodic */
	virEventUpdateTimeout(tp, -1);           /* off: at most one already running finishes */
	sync_loop();
	int n = get(&per.calls);
	sync_loop();
	ck_assert_int_eq(get(&per.calls), n);
	/* an off timer set to 0 fires at the next iteration, and every one after */
	virEventUpdateTimeout(to, 0);
	wait_at_least(&off.calls, 3);
	ck_assert_int_eq(virEventRemoveTimeout(to), 0);
	ck_assert_int_eq(virEventRemoveTimeout(tp), 0);
	ck_assert_int_eq(virEventRemoveTimeout(tp), -1);
	wait_at_least(&off.frees, 1);
	wait_at_least(&per.frees, 1);
	n = get(&off.calls);
	sync_loop();
	ck_assert_int_eq(get(&off.calls), n);
	ck_assert(per.on_loop && off.on_loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("libvirt_loop");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, watch_on_off);
	tcase_add_test(tc, two_watches_one_fd);
	tcase_add_test(tc, hangup_and_self_removal);
	tcase_add_test(tc, timers);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
