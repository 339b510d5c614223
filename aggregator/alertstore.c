/*
 * alertstore.c: the published alerts (alerting.h's alert_store): a
 * snapshot store (common/snapshot.h) of struct alert_snap, and the
 * Alertmanager sender's counts beside it, under the same lock.
 */
#include "alerting.h"

#include <stdlib.h>
#include <string.h>

static void snap_free(struct snapshot *p)
{
	struct alert_snap *s = (struct alert_snap *)p;   /* snap is its first member */
	free(s->v);
	free(s);
}

int alert_store_init(struct alert_store *s)
{
	memset(&s->send, 0, sizeof(s->send));
	return snapshot_store_init(&s->ss, snap_free);
}

void alert_store_release(struct alert_store *s)
{
	snapshot_store_release(&s->ss);
}

struct alert_snap *alert_acquire(struct alert_store *s)
{
	return (struct alert_snap *)snapshot_acquire(&s->ss);
}

void alert_put(struct alert_store *s, struct alert_snap *snap)
{
	snapshot_put(&s->ss, snap ? &snap->snap : NULL);
}

uint64_t alert_wait(struct alert_store *s, uint64_t gen, int64_t timeout_ns)
{
	return snapshot_wait(&s->ss, gen, timeout_ns);
}

void alert_store_count_post(struct alert_store *s, bool ok, size_t n, int64_t now_ns)
{
	pthread_mutex_lock(&s->ss.lock);
	if (ok) {
		s->send.posts++;
		s->send.alerts_sent += n;
		s->send.last_success_ns = now_ns;
	} else {
		s->send.failures++;
	}
	pthread_mutex_unlock(&s->ss.lock);
}

void alert_store_send_stats(struct alert_store *s, struct alert_send_stats *out)
{
	pthread_mutex_lock(&s->ss.lock);
	*out = s->send;
	pthread_mutex_unlock(&s->ss.lock);
}
