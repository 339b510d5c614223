/*
 * ratelimit.h: requests per second per client, for the HTTP listener.
 *
 * The generic cell rate algorithm: a client may make `burst` requests at
 * once and then one every 1/rate seconds; each client is one time, its
 * theoretical arrival time (tat), so the arithmetic is exact integer
 * nanoseconds. A client whose tat is not in the future has its whole burst
 * again, so its slot may be reused: the table is fixed (clients slots),
 * a new client takes a free or reusable slot among the few its key hashes
 * to, else the one of them that was limited longest ago. Memory is bounded
 * whatever the number of clients; a crowd of clients can at worst let one
 * of them start over with a full burst.
 *
 * Thread-safe (one mutex; a request holds it for a hash and a few compares).
 */
#ifndef TALLY_RATELIMIT_H
#define TALLY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* per_s requests per second (> 0), burst at once (>= 1), room for slots
 * clients (rounded up to a power of two). Returns NULL when out of memory
 * or when an argument is out of range. Free with ratelimit_free. */
struct ratelimit *ratelimit_new(double per_s, uint32_t burst, size_t slots);
void ratelimit_free(struct ratelimit *rl);

/* One request of client key (any string, cut at 95 bytes) at now_ns
 * (monotonic). Returns 0 when it may go ahead (and counts it), else the
 * nanoseconds until it may (not counted). */
int64_t ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ns);
/* The same answer without counting anything (and without taking a slot
 * for a key it does not know: 0). To ask before an attempt whose cost is
 * only known afterwards (a failed authentication), then take if it failed. */
int64_t ratelimit_peek(struct ratelimit *rl, const char *key, int64_t now_ns);
/* Remember key as seen at now, whatever its limit: its time moves to at
 * least now + 1/per_s, so with burst 1 ratelimit_peek is non-zero for
 * 1/per_s after the last note: a bounded table of recently seen keys. */
void ratelimit_note(struct ratelimit *rl, const char *key, int64_t now_ns);

#endif
