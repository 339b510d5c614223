/*
 * ratelimit.c: the per-client request limit (ratelimit.h): a fixed table
 * of slots, each a key and its theoretical arrival time.
 */
#include "ratelimit.h"
#include "hash.h"
#include "str.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PROBE 8                      /* slots a key may live in */

struct slot {
	char key[96];
	int64_t tat_ns;              /* theoretical arrival time; 0: free */
	bool used;
};

struct ratelimit {
	pthread_mutex_t lock;
	int64_t every_ns;            /* one request per this, sustained */
	int64_t tolerance_ns;        /* (burst - 1) x every_ns */
	struct slot *s;
	size_t mask;
};

static uint64_t hash(const char *k)
{
	return hash_fnv64_str(HASH_FNV64_INIT, k);
}

struct ratelimit *ratelimit_new(double per_s, uint32_t burst, size_t slots)
{
	if (!(per_s > 0) || per_s > 1e9 || burst < 1 || slots < 1 || slots > (1u << 24))
		return NULL;
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	size_t n = PROBE;
	while (n < slots)
		n *= 2;
	if (!rl || !(rl->s = calloc(n, sizeof(*rl->s))) || pthread_mutex_init(&rl->lock, NULL)) {
		if (rl)
			free(rl->s);
		free(rl);
		return NULL;
	}
	rl->mask = n - 1;
	rl->every_ns = (int64_t)llround(1e9 / per_s);
	if (rl->every_ns < 1)
		rl->every_ns = 1;
	rl->tolerance_ns = (int64_t)(burst - 1) * rl->every_ns;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->lock);
	free(rl->s);
	free(rl);
}

/* The slot of key k (cut), under rl->lock; with create, a new one (tat now)
 * in a free or reusable slot when k has none, else NULL. */
static struct slot *find(struct ratelimit *rl, const char *k, int64_t now_ns, bool create)
{
	size_t h = hash(k);
	struct slot *spare = NULL;
	bool spare_free = false;
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *s = &rl->s[(h + i) & rl->mask];
		if (s->used && !strcmp(s->key, k))
			return s;
		/* free, or as good as free: its whole burst is back */
		bool is_free = !s->used || s->tat_ns <= now_ns;
		if (!spare || (is_free && !spare_free) || (!is_free && !spare_free && s->tat_ns < spare->tat_ns)) {
			spare = s;
			spare_free = is_free;
		}
	}
	if (!create)
		return NULL;
	/* else the one of the PROBE nearest to being free */
	str_copy(spare->key, k, sizeof(spare->key));
	spare->used = true;
	spare->tat_ns = now_ns;
	return spare;
}

/* What key's slot s must wait at now (0: nothing). */
static int64_t wait_of(const struct ratelimit *rl, const struct slot *s, int64_t now_ns)
{
	int64_t tat = s->tat_ns > now_ns ? s->tat_ns : now_ns;
	int64_t wait = tat - rl->tolerance_ns - now_ns;
	return wait > 0 ? wait : 0;
}

enum op { OP_TAKE, OP_PEEK, OP_NOTE };

static int64_t apply(struct ratelimit *rl, const char *key, int64_t now_ns, enum op op)
{
	char k[sizeof(rl->s[0].key)];
	int64_t wait = 0;
	str_copy(k, key, sizeof(k));
	pthread_mutex_lock(&rl->lock);
	struct slot *s = find(rl, k, now_ns, op != OP_PEEK);
	switch (op) {
	case OP_TAKE:
		if (!(wait = wait_of(rl, s, now_ns)))
			s->tat_ns = (s->tat_ns > now_ns ? s->tat_ns : now_ns) + rl->every_ns;
		break;
	case OP_PEEK:
		wait = s ? wait_of(rl, s, now_ns) : 0;
		break;
	case OP_NOTE:
		if (s->tat_ns < now_ns + rl->every_ns)
			s->tat_ns = now_ns + rl->every_ns;
		break;
	}
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

int64_t ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ns)
{
	return apply(rl, key, now_ns, OP_TAKE);
}

int64_t ratelimit_peek(struct ratelimit *rl, const char *key, int64_t now_ns)
{
	return apply(rl, key, now_ns, OP_PEEK);
}

void ratelimit_note(struct ratelimit *rl, const char *key, int64_t now_ns)
{
	apply(rl, key, now_ns, OP_NOTE);
}
