/*
 * libvirt_loop.c: the libvirt collector's event loop (libvirt_loop.h):
 * watches in an epoll set that any thread changes directly, timers in a
 * small array, one thread that waits, dispatches and frees.
 *
 * The state is one process-wide struct (libvirt takes one event loop per
 * process) under one mutex; callbacks and free functions are called with
 * it released. Entries are found by id with a linear scan: a process has a
 * few watches and timers (one socket, a keepalive timer and an event timer
 * per connection). Removed entries are marked and compacted only by the
 * loop thread, between dispatches, so an index stays valid across a
 * callback; their free functions are called after the compaction.
 */
#include "libvirt_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define WAKE_KEY UINT64_MAX          /* the eventfd's key in the epoll set */
#define MAX_READY 32                 /* events taken per wait */

struct watch {
	int id;
	int fd;                      /* libvirt's descriptor */
	int reg_fd;                  /* the one in the epoll set: fd, or a dup when fd is there already */
	int events;                  /* VIR_EVENT_HANDLE_* wanted now */
	bool registered;             /* reg_fd is in the epoll set */
	bool removed;
	virEventHandleCallback cb;
	void *opaque;
	virFreeCallback ff;
};

struct timer {
	int id;
	int interval_ms;             /* -1 off, 0 every iteration, else the period */
	int64_t due_ms;              /* monotonic; meaningful when interval_ms >= 0 */
	bool removed;
	virEventTimeoutCallback cb;
	void *opaque;
	virFreeCallback ff;
};

static struct {
	pthread_mutex_t mu;
	int epfd, wakefd;
	struct watch *w;
	size_t nw, capw;
	struct timer *t;
	size_t nt, capt;
	int next_id;
	bool sleeping;               /* the loop is (about to be) in epoll_wait */
	int64_t sleep_until_ms;      /* its deadline then, INT64_MAX: none */
	bool garbage;                /* removed entries wait for the loop to free them */
	uint64_t iterations;
} L = { .mu = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .wakefd = -1, .next_id = 1 };

static pthread_once_t start_once = PTHREAD_ONCE_INIT;
static int start_rc = -EAGAIN;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Make the loop's wait return (the lock held). */
static void wake(void)
{
	uint64_t one = 1;
	if (L.sleeping && write(L.wakefd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, a wake-up is pending anyway */
	}
}

/* Bring w's epoll registration in line with w->events (the lock held).
 * A watch wanting nothing is taken out of the set: epoll reports errors
 * and hang-ups whatever is asked, and libvirt turns a watch off precisely
 * so that another thread reads the socket meanwhile. 0 or -errno. */
static int apply(struct watch *w)
{
	struct epoll_event ev = { 0 };
	if (!(w->events & (VIR_EVENT_HANDLE_READABLE | VIR_EVENT_HANDLE_WRITABLE)) || w->removed) {
		if (w->registered && epoll_ctl(L.epfd, EPOLL_CTL_DEL, w->reg_fd, &ev) < 0 && errno != EBADF &&
		    errno != ENOENT)
			return -errno;
		w->registered = false;
		return 0;
	}
	ev.events = (w->events & VIR_EVENT_HANDLE_READABLE ? EPOLLIN : 0) |
		    (w->events & VIR_EVENT_HANDLE_WRITABLE ? EPOLLOUT : 0);
	ev.data.u64 = (uint64_t)w->id;
	if (w->registered)
		return epoll_ctl(L.epfd, EPOLL_CTL_MOD, w->reg_fd, &ev) < 0 ? -errno : 0;
	if (epoll_ctl(L.epfd, EPOLL_CTL_ADD, w->reg_fd, &ev) < 0) {
		if (errno != EEXIST || w->reg_fd != w->fd)
			return -errno;
		/* another watch has this descriptor: a duplicate of it is a
		 * registration of its own */
		int d = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
		if (d < 0)
			return -errno;
		w->reg_fd = d;
		if (epoll_ctl(L.epfd, EPOLL_CTL_ADD, w->reg_fd, &ev) < 0)
			return -errno;
	}
	w->registered = true;
	return 0;
}

static struct watch *watch_find(int id)
{
	for (size_t i = 0; i < L.nw; i++)
		if (L.w[i].id == id && !L.w[i].removed)
			return &L.w[i];
	return NULL;
}

static struct timer *timer_find(int id)
{
	for (size_t i = 0; i < L.nt; i++)
		if (L.t[i].id == id && !L.t[i].removed)
			return &L.t[i];
	return NULL;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 8;
	void *q = realloc(*p, c * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static int add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff)
{
	int id = -1;
	pthread_mutex_lock(&L.mu);
	if (fd < 0 || grow((void **)&L.w, &L.capw, L.nw, sizeof(*L.w)))
		goto out;
	struct watch *w = &L.w[L.nw];
	*w = (struct watch){ .id = L.next_id, .fd = fd, .reg_fd = fd, .events = events, .cb = cb,
			     .opaque = opaque, .ff = ff };
	if (apply(w)) {
		if (w->reg_fd != w->fd)
			close(w->reg_fd);
		goto out;
	}
	L.nw++;
	id = L.next_id++;
out:
	pthread_mutex_unlock(&L.mu);
	return id;
}

static void update_handle(int id, int events)
{
	pthread_mutex_lock(&L.mu);
	struct watch *w = watch_find(id);
	if (w && w->events != events) {
		w->events = events;
		apply(w);   /* a failure leaves the watch as it was: libvirt's calls time out on their own */
	}
	pthread_mutex_unlock(&L.mu);
}

static int remove_handle(int id)
{
	int rc = -1;
	pthread_mutex_lock(&L.mu);
	struct watch *w = watch_find(id);
	if (w) {
		w->removed = true;
		apply(w);
		if (w->reg_fd != w->fd)
			close(w->reg_fd);
		w->reg_fd = -1;
		L.garbage = true;
		wake();     /* its free function runs on the loop thread, soon */
		rc = 0;
	}
	pthread_mutex_unlock(&L.mu);
	return rc;
}

/* Timer t set to interval ms from now (the lock held). */
static void timer_set(struct timer *t, int interval_ms)
{
	t->interval_ms = interval_ms;
	if (interval_ms < 0)
		return;
	t->due_ms = now_ms() + interval_ms;
	if (t->due_ms < L.sleep_until_ms)
		wake();
}

static int add_timeout(int interval_ms, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
	int id = -1;
	pthread_mutex_lock(&L.mu);
	if (grow((void **)&L.t, &L.capt, L.nt, sizeof(*L.t)))
		goto out;
	struct timer *t = &L.t[L.nt++];
	*t = (struct timer){ .id = L.next_id, .cb = cb, .opaque = opaque, .ff = ff };
	timer_set(t, interval_ms);
	id = L.next_id++;
out:
	pthread_mutex_unlock(&L.mu);
	return id;
}

static void update_timeout(int id, int interval_ms)
{
	pthread_mutex_lock(&L.mu);
	struct timer *t = timer_find(id);
	if (t)
		timer_set(t, interval_ms);
	pthread_mutex_unlock(&L.mu);
}

static int remove_timeout(int id)
{
	int rc = -1;
	pthread_mutex_lock(&L.mu);
	struct timer *t = timer_find(id);
	if (t) {
		t->removed = true;
		L.garbage = true;
		wake();
		rc = 0;
	}
	pthread_mutex_unlock(&L.mu);
	return rc;
}

/* Drop the removed entries and call their free functions, the lock
 * released around the calls (a free function may call back in). */
struct to_free {
	virFreeCallback ff;
	void *opaque;
};

static void collect(void)
{
	struct to_free fr[64];
	size_t n = 0;
	while (L.garbage) {
		L.garbage = false;
		size_t k = 0;
		for (size_t i = 0; i < L.nw; i++) {
			if (!L.w[i].removed) {
				L.w[k++] = L.w[i];
				continue;
			}
			if (L.w[i].ff && n == sizeof(fr) / sizeof(fr[0])) {
				L.w[k++] = L.w[i];   /* freed in the next round */
				L.garbage = true;
				continue;
			}
			if (L.w[i].ff)
				fr[n++] = (struct to_free){ L.w[i].ff, L.w[i].opaque };
		}
		L.nw = k;
		k = 0;
		for (size_t i = 0; i < L.nt; i++) {
			if (!L.t[i].removed) {
				L.t[k++] = L.t[i];
				continue;
			}
			if (L.t[i].ff && n == sizeof(fr) / sizeof(fr[0])) {
				L.t[k++] = L.t[i];
				L.garbage = true;
				continue;
			}
			if (L.t[i].ff)
				fr[n++] = (struct to_free){ L.t[i].ff, L.t[i].opaque };
		}
		L.nt = k;
		pthread_mutex_unlock(&L.mu);
		for (size_t i = 0; i < n; i++)
			fr[i].ff(fr[i].opaque);
		n = 0;
		pthread_mutex_lock(&L.mu);
	}
}

/* One wait and what it brought (the lock held on entry and return). */
static void run_once(void)
{
	struct epoll_event ev[MAX_READY];
	int64_t due = INT64_MAX, now = now_ms();
	for (size_t i = 0; i < L.nt; i++)
		if (!L.t[i].removed && L.t[i].interval_ms >= 0 && L.t[i].due_ms < due)
			due = L.t[i].due_ms;
	int wait_ms = due == INT64_MAX ? -1 : due <= now ? 0 : due - now > INT32_MAX ? INT32_MAX : (int)(due - now);
	L.sleeping = true;
	L.sleep_until_ms = due;
	pthread_mutex_unlock(&L.mu);
	int n = epoll_wait(L.epfd, ev, MAX_READY, wait_ms);
	pthread_mutex_lock(&L.mu);
	L.sleeping = false;
	L.sleep_until_ms = INT64_MIN;
	L.iterations++;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == WAKE_KEY) {
			uint64_t v;
			if (read(L.wakefd, &v, sizeof(v)) < 0) {
				/* EAGAIN: read by an earlier iteration */
			}
			continue;
		}
		struct watch *w = watch_find((int)ev[i].data.u64);
		if (!w || !w->registered)
			continue;    /* removed or turned off since the wait returned */
		int got = (ev[i].events & EPOLLIN ? VIR_EVENT_HANDLE_READABLE : 0) |
			  (ev[i].events & EPOLLOUT ? VIR_EVENT_HANDLE_WRITABLE : 0) |
			  (ev[i].events & EPOLLERR ? VIR_EVENT_HANDLE_ERROR : 0) |
			  (ev[i].events & EPOLLHUP ? VIR_EVENT_HANDLE_HANGUP : 0);
		got &= w->events | VIR_EVENT_HANDLE_ERROR | VIR_EVENT_HANDLE_HANGUP;
		if (!got)
			continue;
		int id = w->id, fd = w->fd;
		virEventHandleCallback cb = w->cb;
		void *opaque = w->opaque;
		pthread_mutex_unlock(&L.mu);
		cb(id, fd, got, opaque);
		pthread_mutex_lock(&L.mu);
	}
	/* the timers due now; one added by a callback waits for the next round */
	now = now_ms();
	for (size_t i = 0, nt = L.nt; i < nt; i++) {
		struct timer *t = &L.t[i];
		if (t->removed || t->interval_ms < 0 || t->due_ms > now)
			continue;
		t->due_ms = now + t->interval_ms;
		int id = t->id;
		virEventTimeoutCallback cb = t->cb;
		void *opaque = t->opaque;
		pthread_mutex_unlock(&L.mu);
		cb(id, opaque);
		pthread_mutex_lock(&L.mu);
	}
	collect();
}

static void *loop_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&L.mu);
	for (;;)
		run_once();
	return NULL;
}

static void start(void)
{
	pthread_t th;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_KEY };
	if ((L.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (L.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    epoll_ctl(L.epfd, EPOLL_CTL_ADD, L.wakefd, &ev) < 0) {
		start_rc = -errno;
		return;
	}
	L.sleep_until_ms = INT64_MIN;
	int rc = pthread_create(&th, NULL, loop_main, NULL);
	if (rc) {
		start_rc = -rc;
		return;
	}
	pthread_detach(th);
	virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout, remove_timeout);
	start_rc = 0;
}

int lvloop_start(void)
{
	pthread_once(&start_once, start);
	return start_rc;
}

uint64_t lvloop_iterations(void)
{
	pthread_mutex_lock(&L.mu);
	uint64_t n = L.iterations;
	pthread_mutex_unlock(&L.mu);
	return n;
}
