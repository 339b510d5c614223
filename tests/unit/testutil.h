/*
 * testutil.h: what every Check suite here needs: run a suite and turn its
 * result into an exit status, and make/remove a scratch directory.
 */
#ifndef TALLY_TESTUTIL_H
#define TALLY_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "str.h"

/* Run every test of s; 0 when all passed. */
static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/* A fresh directory /tmp/tally-NAME-XXXXXX into dir[len]. */
static inline void tu_mkdtemp(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/tally-%s-XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* The next number of the xorshift64 sequence in *state (not zero):
 * random enough for a test's cases, the same on every run. */
static inline uint64_t tu_xorshift(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

static inline void tu_rmrf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

#endif
