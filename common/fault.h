/*
 * fault.h: a countdown fault injector for tests, in the style of SQLite's
 * test harness (sqlite3FaultSim and its "fail the Nth malloc" loop).
 *
 * One global countdown over the calls that pass through it: allocations
 * made with fault_malloc/calloc/realloc/strdup (the aggregator, the
 * ledger and the common toolbox allocate through them), the ledger's
 * writes (each statement that changes a row) and its commits. fault_arm(
 * kinds, n) makes the nth such call of the given kinds fail (1: the very
 * next); with persist the calls after it fail too, else only that one.
 * A failed allocation returns NULL, a failed write or commit the SQLite
 * error a full disk gives. Disarmed (the default, and always in tallyd)
 * each call costs one predictable branch.
 *
 * A test loops over n until a run completes without an injected fault
 * (fault_injected() == 0): every call site has then failed once, and the
 * test checks that each failure surfaced as an error or was retried and
 * that the ledger stayed exact (tests/unit/test_fault.c).
 */
#ifndef TALLY_FAULT_H
#define TALLY_FAULT_H

#include <stdbool.h>
#include <stddef.h>

enum fault_kind {
	FAULT_ALLOC = 1,             /* fault_malloc and friends */
	FAULT_WRITE = 2,             /* a ledger statement that writes */
	FAULT_COMMIT = 4,            /* a ledger commit */
};

/* The nth call of kinds (a mask) from now fails; n 0 disarms. */
void fault_arm(unsigned kinds, long n, bool persist);
void fault_disarm(void);
/* Calls failed since the last fault_arm. */
long fault_injected(void);

/* Whether this call of kind fails (counts it down when armed). */
bool fault_fail_slow(unsigned kind);
extern unsigned fault_armed_kinds;   /* 0 when disarmed: the fast path */
static inline bool fault_fail(unsigned kind)
{
	return __builtin_expect(fault_armed_kinds != 0, 0) && fault_fail_slow(kind);
}

void *fault_malloc(size_t n);
void *fault_calloc(size_t n, size_t size);
void *fault_realloc(void *p, size_t n);
char *fault_strdup(const char *s);

#endif
