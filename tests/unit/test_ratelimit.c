/*
 * test_ratelimit.c: the per-client request limit (exporters/ratelimit.h),
 * with times given by hand. Every expected value is worked out in the
 * comments: 2 per second sustained is one every 500 ms; a burst of 3 is a
 * tolerance of (3 - 1) x 500 ms = 1000 ms.
 */
#include <check.h>
#include <stdio.h>

#include "ratelimit.h"
#include "testutil.h"

#define MS 1000000LL

/* One client, 2/s, burst 3: each row is a request at t, and what comes back
 * (0: go ahead; else the ns until it may). */
static const struct { int64_t t_ms; int64_t want_ms; } one[] = {
	{ 1000, 0 }, { 1000, 0 }, { 1000, 0 },   /* the burst: tat 1500, 2000, 2500 */
	{ 1000, 500 },                           /* tat 2500 - 1000 - 1000 = 500 */
	{ 1499, 1 },                             /* still 1 ms short */
	{ 1500, 0 },                             /* one more: tat 3000 */
	{ 1500, 500 },                           /* 3000 - 1000 - 1500 */
	{ 1999, 1 }, { 2000, 0 },                /* tat 3500 */
	{ 9000, 0 }, { 9000, 0 }, { 9000, 0 },   /* idle long enough: the whole burst again */
	{ 9000, 500 },
};

START_TEST(one_client)
{
	struct ratelimit *rl = ratelimit_new(2, 3, 64);
	ck_assert_ptr_nonnull(rl);
	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		int64_t got = ratelimit_take(rl, "10.0.0.1|0", one[i].t_ms * MS);
		ck_assert_msg(got == one[i].want_ms * MS, "row %zu (t %lld ms): %lld ns, want %lld ms", i,
			      (long long)one[i].t_ms, (long long)got, (long long)one[i].want_ms);
	}
	/* another client is not affected by the first one's limit */
	ck_assert_int_eq(ratelimit_take(rl, "10.0.0.2|0", 9000 * MS), 0);
	ck_assert_int_eq(ratelimit_take(rl, "10.0.0.1|1", 9000 * MS), 0);
	ratelimit_free(rl);
}
END_TEST

/* A table of 8 slots (the fewest), 8 clients each limited (burst 1, 1/s:
 * client i at i ms has tat 1000 + i ms). A 9th client takes the slot of the
 * one nearest to being free, client 0 (tat 1000), and goes ahead; client 1
 * is still known and still limited (1001 - 0 - 10 = 991 ms to wait); client
 * 0 comes back as new and goes ahead (it takes client 1's slot, the nearest
 * to free now, tat 1001). Memory stays 8 slots whatever the crowd. */
START_TEST(crowd)
{
	char key[16];
	struct ratelimit *rl = ratelimit_new(1, 1, 8);
	ck_assert_ptr_nonnull(rl);
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		ck_assert_int_eq(ratelimit_take(rl, key, i * MS), 0);
		ck_assert_int_eq(ratelimit_take(rl, key, i * MS), 1000 * MS);
	}
	ck_assert_int_eq(ratelimit_take(rl, "c8", 10 * MS), 0);
	ck_assert_int_eq(ratelimit_take(rl, "c1", 10 * MS), 991 * MS);
	ck_assert_int_eq(ratelimit_take(rl, "c0", 11 * MS), 0);
	ck_assert_int_eq(ratelimit_take(rl, "c2", 12 * MS), 990 * MS);
	ratelimit_free(rl);
}
END_TEST

/* peek answers as take would and counts nothing; note remembers a key for
 * one interval from its last note, however often it comes. 1 per 10 s,
 * burst 2: tolerance 10 s. */
START_TEST(peek_and_note)
{
	struct ratelimit *rl = ratelimit_new(0.1, 2, 64);
	ck_assert_ptr_nonnull(rl);
	ck_assert_int_eq(ratelimit_peek(rl, "a", 1000 * MS), 0);         /* unknown: may go */
	ck_assert_int_eq(ratelimit_peek(rl, "a", 1000 * MS), 0);         /* and still nothing counted */
	ck_assert_int_eq(ratelimit_take(rl, "a", 1000 * MS), 0);         /* tat 11 s */
	ck_assert_int_eq(ratelimit_peek(rl, "a", 1000 * MS), 0);         /* 11 - 10 - 1 < 0 */
	ck_assert_int_eq(ratelimit_take(rl, "a", 1000 * MS), 0);         /* tat 21 s */
	ck_assert_int_eq(ratelimit_peek(rl, "a", 1000 * MS), 10000 * MS); /* 21 - 10 - 1 = 10 s */
	ck_assert_int_eq(ratelimit_peek(rl, "a", 6000 * MS), 5000 * MS);  /* 21 - 10 - 6 */
	ck_assert_int_eq(ratelimit_take(rl, "a", 6000 * MS), 5000 * MS);  /* refused: tat stays 21 */
	ck_assert_int_eq(ratelimit_peek(rl, "a", 11000 * MS), 0);
	ratelimit_free(rl);

	/* burst 1, 1 per 600 s: "seen in the last 10 minutes" */
	struct ratelimit *seen = ratelimit_new(1.0 / 600, 1, 64);
	ck_assert_ptr_nonnull(seen);
	ck_assert_int_eq(ratelimit_peek(seen, "10.0.0.1", 0), 0);
	ratelimit_note(seen, "10.0.0.1", 100 * 1000 * MS);               /* tat 700 s */
	ck_assert_int_eq(ratelimit_peek(seen, "10.0.0.1", 100 * 1000 * MS), 600 * 1000 * MS);
	ratelimit_note(seen, "10.0.0.1", 115 * 1000 * MS);               /* tat 715 s, not 1300 */
	ratelimit_note(seen, "10.0.0.1", 115 * 1000 * MS);
	ck_assert_int_eq(ratelimit_peek(seen, "10.0.0.1", 700 * 1000 * MS), 15 * 1000 * MS);
	ck_assert_int_eq(ratelimit_peek(seen, "10.0.0.1", 715 * 1000 * MS), 0);
	ck_assert_int_eq(ratelimit_peek(seen, "10.0.0.2", 115 * 1000 * MS), 0);
	ratelimit_free(seen);
}
END_TEST

START_TEST(bad_arguments)
{
	ck_assert_ptr_null(ratelimit_new(0, 3, 64));
	ck_assert_ptr_null(ratelimit_new(-1, 3, 64));
	ck_assert_ptr_null(ratelimit_new(1, 0, 64));
	ck_assert_ptr_null(ratelimit_new(1, 1, 0));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");
	tcase_add_test(tc, one_client);
	tcase_add_test(tc, crowd);
	tcase_add_test(tc, peek_and_note);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
