/*
 * itab.h: an index table, written once: open addressing (linear probing)
 * over uint32_t indices into an array its owner keeps, for lookups by a
 * key the array's elements hold. The table stores idx + 1 (0 is an empty
 * slot) and never the keys: eq and hash_of read them from the owner's
 * array through ctx. Its load stays at one half or below; it grows by
 * doubling. Nothing is ever removed but by itab_reset (all of it).
 *
 * Static inline: the aggregator looks up a series and a bucket per
 * sample, and the calls must cost what they cost when this code was its.
 */
#ifndef TALLY_ITAB_H
#define TALLY_ITAB_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "hash.h"

struct itab {
	uint32_t *slot;              /* idx + 1, 0: empty */
	size_t mask;                 /* size - 1, size a power of two */
	size_t used;
};

typedef int (*itab_eq_fn)(const void *ctx, uint32_t idx, const void *key);
typedef uint64_t (*itab_hash_fn)(const void *ctx, uint32_t idx);

/* size: a power of two. Returns 0 or -ENOMEM. */
static inline int itab_init(struct itab *t, size_t size)
{
	t->slot = fault_calloc(size, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	t->mask = size - 1;
	t->used = 0;
	return 0;
}

static inline void itab_reset(struct itab *t)
{
	memset(t->slot, 0, (t->mask + 1) * sizeof(*t->slot));
	t->used = 0;
}

static inline void itab_release(struct itab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->mask = t->used = 0;
}

/* The slot for hash h: the one holding an index for which eq() is true,
 * or the empty one where it belongs (then *slot is 0). */
static inline uint32_t *itab_find(const void *ctx, struct itab *t, uint64_t h, itab_eq_fn eq, const void *key)
{
	size_t i = (size_t)hash_mix64(h) & t->mask;
	for (;;) {
		uint32_t *s = &t->slot[i];
		if (*s == 0 || eq(ctx, *s - 1, key))
			return s;
		i = (i + 1) & t->mask;
	}
}

/* Put idx into the empty slot itab_find gave; grows the table (hashing
 * every index again with hash_of). Returns 0 or -ENOMEM (idx is in
 * then, the table not grown: it still works, only fuller). */
static inline int itab_put(const void *ctx, struct itab *t, uint32_t *slot, uint32_t idx, itab_hash_fn hash_of)
{
	*slot = idx + 1;
	if (++t->used * 2 <= t->mask + 1)
		return 0;
	struct itab nt;
	if (itab_init(&nt, (t->mask + 1) * 2))
		return -ENOMEM;
	for (size_t i = 0; i <= t->mask; i++) {
		if (!t->slot[i])
			continue;
		size_t j = (size_t)hash_mix64(hash_of(ctx, t->slot[i] - 1)) & nt.mask;
		while (nt.slot[j])
			j = (j + 1) & nt.mask;
		nt.slot[j] = t->slot[i];
	}
	nt.used = t->used;
	free(t->slot);
	*t = nt;
	return 0;
}

#endif
