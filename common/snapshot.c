/*
 * snapshot.c: the reference-counted snapshot store (snapshot.h).
 */
#include "snapshot.h"
#include "tallytime.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <time.h>

int snapshot_store_init(struct snapshot_store *s, void (*free_fn)(struct snapshot *))
{
	s->cur = NULL;
	s->gen = 0;
	s->free_fn = free_fn;
	if (pthread_mutex_init(&s->lock, NULL))
		return -ENOMEM;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&s->changed, &ca);
	pthread_condattr_destroy(&ca);
	if (rc) {
		pthread_mutex_destroy(&s->lock);
		return -ENOMEM;
	}
	return 0;
}

void snapshot_publish(struct snapshot_store *s, struct snapshot *snap)
{
	if (snap)
		snap->refs = 1;
	pthread_mutex_lock(&s->lock);
	struct snapshot *old = s->cur;
	s->cur = snap;
	if (snap)
		snap->gen = ++s->gen;
	bool last = old && --old->refs == 0;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	if (last)
		s->free_fn(old);
}

void snapshot_store_release(struct snapshot_store *s)
{
	snapshot_publish(s, NULL);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
}

struct snapshot *snapshot_acquire(struct snapshot_store *s)
{
	pthread_mutex_lock(&s->lock);
	struct snapshot *snap = s->cur;
	if (snap)
		snap->refs++;
	pthread_mutex_unlock(&s->lock);
	return snap;
}

void snapshot_put(struct snapshot_store *s, struct snapshot *snap)
{
	if (!snap)
		return;
	pthread_mutex_lock(&s->lock);
	assert(snap->refs > 0);   /* every put matches an acquire */
	bool last = --snap->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		s->free_fn(snap);
}

uint64_t snapshot_wait(struct snapshot_store *s, uint64_t gen, int64_t timeout_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t until = (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec + timeout_ns;
	ts.tv_sec = until / NS_PER_SEC;
	ts.tv_nsec = until % NS_PER_SEC;
	pthread_mutex_lock(&s->lock);
	while (s->gen == gen && pthread_cond_timedwait(&s->changed, &s->lock, &ts) == 0)
		;
	uint64_t g = s->gen;
	pthread_mutex_unlock(&s->lock);
	return g;
}
