/*
 * postq.h: the queue between the HTTP listener's threads and the one
 * writer thread, for the routes whose bodies the writer takes
 * (POST /api/v1/ingest: ingest.h; POST /api/v1/events: events.h).
 *
 * A listener thread pushes a request once its body is whole and checked;
 * the writer takes every request queued at once (so those that arrived
 * while it committed go into its next transaction together), waiting at
 * most until a deadline; closing hands back what is queued, which the
 * owner then refuses, and refuses every later push. The items are the
 * owner's: the queue links them through their first member and never
 * frees one.
 *
 * The writer's wait is on CLOCK_MONOTONIC, as tallytime.h's time_mono_ns:
 * a step of the wall clock changes nothing (docs/clock.md).
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef TALLY_DAEMON_POSTQ_H
#define TALLY_DAEMON_POSTQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The first member of an item. */
struct postq_item {
	struct postq_item *next;
};

struct postq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct postq_item *head, **tail;
	bool closed;
	bool woken;                  /* postq_wake: the writer has other work */
};

/* 0, or -ENOMEM, -EINVAL (no monotonic condition variables; nothing to
 * release). */
int postq_init(struct postq *q);
void postq_release(struct postq *q);
/* Append it: 0, or -ESHUTDOWN when the queue is closed (it is not queued:
 * the caller answers it). */
int postq_push(struct postq *q, struct postq_item *it);
/* Wait until an item is queued, postq_wake, or until_mono_ns (monotonic;
 * at most 200 ms, so the writer sees its flags; a time passed already: no
 * wait), then take every item queued, in order (NULL: none). */
struct postq_item *postq_take(struct postq *q, int64_t until_mono_ns);
/* Make a waiting postq_take return now, with whatever is queued. */
void postq_wake(struct postq *q);
/* Close q: every later push is refused; returns what was queued. */
struct postq_item *postq_close(struct postq *q);

#endif
