/*
 * fault.c: the countdown fault injector (fault.h). The counters are
 * atomics: the aggregator's RRD writer thread allocates too.
 */
#include "fault.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

unsigned fault_armed_kinds;
static atomic_long countdown;
static atomic_long injected;
static bool persistent;

void fault_arm(unsigned kinds, long n, bool persist)
{
	atomic_store(&countdown, n);
	atomic_store(&injected, 0);
	persistent = persist;
	__atomic_store_n(&fault_armed_kinds, n > 0 ? kinds : 0, __ATOMIC_SEQ_CST);
}

void fault_disarm(void)
{
	__atomic_store_n(&fault_armed_kinds, 0, __ATOMIC_SEQ_CST);
}

long fault_injected(void)
{
	return atomic_load(&injected);
}

bool fault_fail_slow(unsigned kind)
{
	if (!(__atomic_load_n(&fault_armed_kinds, __ATOMIC_SEQ_CST) & kind))
		return false;
	long left = atomic_fetch_sub(&countdown, 1) - 1;
	if (left > 0)
		return false;
	if (left < 0 && !persistent)
		return false;
	atomic_fetch_add(&injected, 1);
	return true;
}

void *fault_malloc(size_t n)
{
	return fault_fail(FAULT_ALLOC) ? NULL : malloc(n);
}

void *fault_calloc(size_t n, size_t size)
{
	return fault_fail(FAULT_ALLOC) ? NULL : calloc(n, size);
}

void *fault_realloc(void *p, size_t n)
{
	return fault_fail(FAULT_ALLOC) ? NULL : realloc(p, n);
}

char *fault_strdup(const char *s)
{
	return fault_fail(FAULT_ALLOC) ? NULL : strdup(s);
}
