/*
 * snapshot.h: the reference-counted snapshot store, written once.
 *
 * One writer builds an immutable object and publishes it; any number of
 * readers (HTTP threads, the Alertmanager sender) take a reference to the
 * current one, read it without a lock, and give it back. The store holds
 * one reference to the current object; the last reference to go frees it
 * (outside the lock: freeing a big snapshot takes a while). An object
 * begins with a struct snapshot, which the store owns.
 *
 * Invariants: refs > 0 while anyone holds the object; gen grows by one at
 * each publish (1, 2, ...), so a reader can tell a new snapshot from the
 * one it rendered before.
 */
#ifndef TALLY_SNAPSHOT_H
#define TALLY_SNAPSHOT_H

#include <pthread.h>
#include <stdint.h>

struct snapshot {
	int refs;                    /* under the store's lock */
	uint64_t gen;                /* 1, 2, ... in the order published */
};

struct snapshot_store {
	pthread_mutex_t lock;
	pthread_cond_t changed;      /* broadcast on every publish */
	struct snapshot *cur;        /* NULL until the first publish */
	uint64_t gen;                /* of the last publish */
	void (*free_fn)(struct snapshot *s);
};

/* Returns 0 or -ENOMEM. free_fn frees an object the last reference left. */
int snapshot_store_init(struct snapshot_store *s, void (*free_fn)(struct snapshot *));
/* Drops the store's reference; readers' references stay valid. */
void snapshot_store_release(struct snapshot_store *s);
/* Make snap (NULL: none) the current one; the store takes its reference. */
void snapshot_publish(struct snapshot_store *s, struct snapshot *snap);
/* A reference to the current one, or NULL; give it back with snapshot_put. */
struct snapshot *snapshot_acquire(struct snapshot_store *s);
void snapshot_put(struct snapshot_store *s, struct snapshot *snap);
/* Wait up to timeout_ns for a publish after generation gen; the store's
 * generation then. */
uint64_t snapshot_wait(struct snapshot_store *s, uint64_t gen, int64_t timeout_ns);

#endif
