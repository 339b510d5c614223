/*
 * postq.c: the listener-to-writer queue of the POST routes (postq.h).
 */
#include "postq.h"
#include "tallytime.h"

#include <errno.h>
#include <time.h>

#define TAKE_WAIT_MAX_NS (200 * 1000 * 1000LL)

int postq_init(struct postq *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->closed = q->woken = false;
	/* the wait is on CLOCK_MONOTONIC: a step of the wall clock (NTP, an
	 * operator) neither stretches nor cuts it short */
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca))
		return -ENOMEM;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ? -EINVAL : 0;
	if (!rc && pthread_mutex_init(&q->mu, NULL))
		rc = -ENOMEM;
	if (!rc && pthread_cond_init(&q->cv, &ca)) {
		pthread_mutex_destroy(&q->mu);
		rc = -ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	return rc;
}

void postq_release(struct postq *q)
{
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

int postq_push(struct postq *q, struct postq_item *it)
{
	it->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->closed) {
		pthread_mutex_unlock(&q->mu);
		return -ESHUTDOWN;
	}
	*q->tail = it;
	q->tail = &it->next;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* Everything queued, q->mu held. */
static struct postq_item *take_all(struct postq *q)
{
	struct postq_item *list = q->head;
	q->head = NULL;
	q->tail = &q->head;
	return list;
}

struct postq_item *postq_take(struct postq *q, int64_t until_mono_ns)
{
	int64_t now = time_mono_ns();
	if (until_mono_ns > now + TAKE_WAIT_MAX_NS)
		until_mono_ns = now + TAKE_WAIT_MAX_NS;
	pthread_mutex_lock(&q->mu);
	if (!q->head && until_mono_ns > now) {
		struct timespec ts = { .tv_sec = (time_t)(until_mono_ns / NS_PER_SEC),
				       .tv_nsec = (long)(until_mono_ns % NS_PER_SEC) };
		while (!q->head && !q->woken && pthread_cond_timedwait(&q->cv, &q->mu, &ts) == 0) {
		}
	}
	q->woken = false;
	struct postq_item *list = take_all(q);
	pthread_mutex_unlock(&q->mu);
	return list;
}

void postq_wake(struct postq *q)
{
	pthread_mutex_lock(&q->mu);
	q->woken = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

struct postq_item *postq_close(struct postq *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	struct postq_item *list = take_all(q);
	pthread_mutex_unlock(&q->mu);
	return list;
}
