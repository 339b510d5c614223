/*
 * test_chain_merge.c: an hour's digest after a commit's usage is added,
 * worked out from the rows before and the usage (ledger/chain_merge.c).
 *
 * The oracle is chain.c's digest of the rows the hour must hold after the
 * commit, written out by hand (or, for the random case, by a plain list
 * that adds each usage to its row in turn, then sorted): the merge must
 * give that digest, and say -ERANGE for every sum the ledger would refuse
 * or make differently. The PostgreSQL writer's use of it is checked by
 * test_ledger's chain cases against `tally ledger verify`, which hashes the
 * rows the server holds.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain_merge.h"
#include "ledger.h"
#include "testutil.h"

#define H 3600000000000LL     /* the hour hashed: 01:00 on 1970-01-01 */

static struct chain_row I(int64_t res, int64_t met, const char *dev, int64_t q, int64_t sp, int64_t cov, int64_t n)
{
	struct chain_row r = { .resource_id = res, .meter_id = met, .device = dev, .device_len = strlen(dev),
			       .hour_ns = H, .spanned_ns = sp, .covered_ns = cov, .samples = n };
	r.qty.type = LEDGER_QTY_INT;
	r.qty.i = q;
	return r;
}

static struct chain_row R(int64_t res, int64_t met, const char *dev, double q, int64_t sp, int64_t cov, int64_t n)
{
	struct chain_row r = I(res, met, dev, 0, sp, cov, n);
	r.qty.type = LEDGER_QTY_REAL;
	r.qty.d = q;
	return r;
}

/* the usage a commit adds */
static void add(struct chain_deltas *d, struct chain_row r)
{
	struct ledger_usage u = { .resource_id = r.resource_id, .meter_id = r.meter_id, .device = r.device,
				  .hour_ns = r.hour_ns, .is_real = r.qty.type == LEDGER_QTY_REAL, .qty = r.qty.i,
				  .qty_real = r.qty.d, .spanned_ns = r.spanned_ns, .covered_ns = r.covered_ns,
				  .samples = r.samples };
	if (!u.is_real)
		u.qty_real = 0;
	else
		u.qty = 0;
	ck_assert_int_eq(chain_deltas_add(d, &u), 0);
}

struct rows {
	const struct chain_row *v;
	size_t n, i;
	int fail_at;                 /* next fails (-EIO) at this row + 1, or 0 */
};

static int next(void *ctx, struct chain_row *r)
{
	struct rows *c = ctx;
	if (c->fail_at && c->i + 1 == (size_t)c->fail_at)
		return -EIO;
	if (c->i >= c->n)
		return 0;
	*r = c->v[c->i++];
	return 1;
}

/* chain.c's digest of rows v[0..n), as given */
static void digest_of(const struct chain_row *v, size_t n, struct chain_hour *h)
{
	ck_assert_int_eq(chain_hour_begin(h, H), 0);
	for (size_t i = 0; i < n; i++)
		chain_hour_row(h, &v[i]);
	ck_assert_int_eq(chain_hour_end(h), 0);
}

static int merge(const struct chain_deltas *d, const struct chain_row *v, size_t n, struct chain_hour *b,
		 struct chain_hour *a)
{
	struct rows c = { .v = v, .n = n };
	return chain_merge_hour(d, H, next, &c, b, a);
}

static void expect(const struct chain_hour *got, const struct chain_row *v, size_t n)
{
	struct chain_hour want;
	digest_of(v, n, &want);
	ck_assert_int_eq(got->rows, (int64_t)n);
	ck_assert_mem_eq(got->digest, want.digest, CHAIN_HASH_LEN);
}

START_TEST(test_worked_by_hand)
{
	struct chain_row before[] = {
		I(1, 1, "", 10, 100, 90, 1),
		R(1, 2, "vda", 1.5, 200, 200, 2),
		I(2, 1, "", 4, 10, 10, 1),
	};
	struct chain_deltas d = { 0 };
	add(&d, R(1, 2, "vda", 0.25, 10, 10, 1));
	add(&d, I(1, 1, "", 5, 20, 20, 1));
	add(&d, I(1, 1, "b", 7, 30, 30, 1));            /* a new row */
	add(&d, R(1, 2, "vda", 0.125, 10, 10, 1));
	add(&d, I(0, 9, "", 1, 1, 1, 1));               /* a new row, first in the hour */
	struct chain_row other = I(1, 1, "", 3, 5, 5, 1);
	other.hour_ns = H + 3600000000000LL;            /* another hour's: not this one's */
	add(&d, other);
	struct chain_row after[] = {
		I(0, 9, "", 1, 1, 1, 1),
		I(1, 1, "", 15, 120, 110, 2),
		I(1, 1, "b", 7, 30, 30, 1),
		R(1, 2, "vda", 1.875, 220, 220, 4),
		I(2, 1, "", 4, 10, 10, 1),
	};
	struct chain_hour b, a;
	ck_assert_int_eq(merge(&d, before, 3, &b, &a), 0);
	expect(&b, before, 3);
	expect(&a, after, 5);
	ck_assert_ptr_null(a.ctx);
	ck_assert_ptr_null(b.ctx);
	chain_deltas_free(&d);
}
END_TEST

/* 1e16 + 1 is a tie between 1e16 and 1e16 + 2 and rounds to the even one,
 * 1e16: the ledger adds each usage to the row in turn, so two additions
 * of 1 leave 1e16 where their sum (2) added once would make 1e16 + 2. */
START_TEST(test_reals_added_in_turn)
{
	struct chain_row before[] = { R(1, 1, "", 1e16, 10, 10, 1) };
	struct chain_deltas d = { 0 };
	add(&d, R(1, 1, "", 1.0, 10, 10, 1));
	add(&d, R(1, 1, "", 1.0, 10, 10, 1));
	add(&d, R(2, 1, "", 1e16, 10, 10, 1));          /* new: 1e16, then + 1, + 1 */
	add(&d, R(2, 1, "", 1.0, 10, 10, 1));
	add(&d, R(2, 1, "", 1.0, 10, 10, 1));
	struct chain_row after[] = { R(1, 1, "", 1e16, 30, 30, 3), R(2, 1, "", 1e16, 30, 30, 3) };
	struct chain_row summed_first[] = { R(1, 1, "", 1e16 + 2, 30, 30, 3), R(2, 1, "", 1e16 + 2, 30, 30, 3) };
	struct chain_hour b, a, wrong;
	ck_assert(1e16 + 1.0 == 1e16 && 1e16 + 2.0 != 1e16);
	ck_assert_int_eq(merge(&d, before, 1, &b, &a), 0);
	expect(&a, after, 2);
	digest_of(summed_first, 2, &wrong);
	ck_assert(memcmp(a.digest, wrong.digest, CHAIN_HASH_LEN));
	chain_deltas_free(&d);
}
END_TEST

/* Devices compare bytewise, a prefix first: "vd" < "vda" < "vda1" <
 * "vdb" < "z" < "\xc3\xa9" (é, whose first byte is above every ASCII one). */
START_TEST(test_devices_bytewise)
{
	struct chain_row before[] = {
		I(1, 1, "vda", 1, 1, 1, 1), I(1, 1, "vdb", 1, 1, 1, 1), I(1, 1, "\xc3\xa9", 1, 1, 1, 1),
	};
	struct chain_deltas d = { 0 };
	add(&d, I(1, 1, "z", 1, 1, 1, 1));
	add(&d, I(1, 1, "vda1", 1, 1, 1, 1));
	add(&d, I(1, 1, "vd", 1, 1, 1, 1));
	add(&d, I(1, 1, "vdb", 2, 1, 1, 1));
	struct chain_row after[] = {
		I(1, 1, "vd", 1, 1, 1, 1),   I(1, 1, "vda", 1, 1, 1, 1), I(1, 1, "vda1", 1, 1, 1, 1),
		I(1, 1, "vdb", 3, 2, 2, 2),  I(1, 1, "z", 1, 1, 1, 1),   I(1, 1, "\xc3\xa9", 1, 1, 1, 1),
	};
	struct chain_hour b, a;
	ck_assert_int_eq(merge(&d, before, 3, &b, &a), 0);
	expect(&b, before, 3);
	expect(&a, after, 6);
	chain_deltas_free(&d);
}
END_TEST

START_TEST(test_empty_hour)
{
	struct chain_deltas d = { 0 };
	struct chain_hour b, a;
	unsigned char empty[CHAIN_HASH_LEN];
	ck_assert_int_eq(chain_hour_empty(H, empty), 0);
	ck_assert_int_eq(merge(&d, NULL, 0, &b, &a), 0);
	ck_assert_int_eq(b.rows, 0);
	ck_assert_int_eq(a.rows, 0);
	ck_assert_mem_eq(b.digest, empty, CHAIN_HASH_LEN);
	ck_assert_mem_eq(a.digest, empty, CHAIN_HASH_LEN);
	/* rows, no usage: the hour stays as it was */
	struct chain_row before[] = { I(1, 1, "", 5, 1, 1, 1), R(1, 2, "", 0.5, 1, 1, 1) };
	ck_assert_int_eq(merge(&d, before, 2, &b, &a), 0);
	expect(&b, before, 2);
	expect(&a, before, 2);
}
END_TEST

/* Each sum the ledger would refuse (or make in a way not worked out
 * here) is -ERANGE: the writer then hashes the hour on the server. */
START_TEST(test_refused)
{
	struct {
		const char *what;
		struct chain_row before[2];
		size_t n;
		struct chain_row usage;
	} c[] = {
		{ "an integer row given a real", { I(1, 1, "", 5, 1, 1, 1) }, 1, R(1, 1, "", 0.5, 1, 1, 1) },
		{ "a real row given an integer", { R(1, 1, "", 0.5, 1, 1, 1) }, 1, I(1, 1, "", 5, 1, 1, 1) },
		{ "a quantity past 2^63 - 1", { I(1, 1, "", INT64_MAX, 1, 1, 1) }, 1, I(1, 1, "", 1, 1, 1, 1) },
		{ "a quantity below -2^63", { I(1, 1, "", INT64_MIN, 1, 1, 1) }, 1, I(1, 1, "", -1, 1, 1, 1) },
		{ "spanned past 2^63 - 1", { I(1, 1, "", 1, INT64_MAX, 1, 1) }, 1, I(1, 1, "", 1, 1, 1, 1) },
		{ "covered past 2^63 - 1", { I(1, 1, "", 1, 1, INT64_MAX, 1) }, 1, I(1, 1, "", 1, 1, 1, 1) },
		{ "samples past 2^63 - 1", { I(1, 1, "", 1, 1, 1, INT64_MAX) }, 1, I(1, 1, "", 1, 1, 1, 1) },
		{ "a real sum past DBL_MAX", { R(1, 1, "", DBL_MAX, 1, 1, 1) }, 1, R(1, 1, "", DBL_MAX, 1, 1, 1) },
		{ "an infinite row added to", { R(1, 1, "", INFINITY, 1, 1, 1) }, 1, R(1, 1, "", 1, 1, 1, 1) },
		{ "a new row of NaN", { I(0, 1, "", 1, 1, 1, 1) }, 1, R(1, 1, "", NAN, 1, 1, 1) },
		{ "rows out of order", { I(2, 1, "", 1, 1, 1, 1), I(1, 1, "", 1, 1, 1, 1) }, 2, I(3, 1, "", 1, 1, 1, 1) },
		{ "a row twice", { I(1, 1, "a", 1, 1, 1, 1), I(1, 1, "a", 1, 1, 1, 1) }, 2, I(3, 1, "", 1, 1, 1, 1) },
		{ "devices out of order", { I(1, 1, "vdb", 1, 1, 1, 1), I(1, 1, "vda", 1, 1, 1, 1) }, 2,
		  I(3, 1, "", 1, 1, 1, 1) },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct chain_deltas d = { 0 };
		struct chain_hour b, a;
		add(&d, c[i].usage);
		ck_assert_msg(merge(&d, c[i].before, c[i].n, &b, &a) == -ERANGE, "%s: not refused", c[i].what);
		ck_assert_ptr_null(b.ctx);
		ck_assert_ptr_null(a.ctx);
		chain_deltas_free(&d);
	}
	/* a row of another hour, a row that is neither integer nor real */
	struct chain_row stray[] = { I(1, 1, "", 1, 1, 1, 1) }, other[] = { I(1, 1, "", 1, 1, 1, 1) };
	stray[0].hour_ns = H + 1;
	other[0].qty.type = LEDGER_QTY_OTHER;
	struct chain_deltas d = { 0 };
	struct chain_hour b, a;
	add(&d, I(2, 1, "", 1, 1, 1, 1));
	ck_assert_int_eq(merge(&d, stray, 1, &b, &a), -ERANGE);
	ck_assert_int_eq(merge(&d, other, 1, &b, &a), -ERANGE);
	/* the same sums the other way round are made: the refusals above are the edges */
	struct chain_row fits[] = { I(1, 1, "", INT64_MAX - 1, 1, 1, 1) }, fitted[] = { I(1, 1, "", INT64_MAX, 2, 2, 2) };
	chain_deltas_reset(&d);
	add(&d, I(1, 1, "", 1, 1, 1, 1));
	ck_assert_int_eq(merge(&d, fits, 1, &b, &a), 0);
	expect(&a, fitted, 1);
	chain_deltas_free(&d);
}
END_TEST

START_TEST(test_reader_error_returned)
{
	struct chain_row before[] = { I(1, 1, "", 1, 1, 1, 1), I(2, 1, "", 1, 1, 1, 1) };
	struct chain_deltas d = { 0 };
	struct chain_hour b, a;
	add(&d, I(3, 1, "", 1, 1, 1, 1));
	for (int at = 1; at <= 3; at++) {
		struct rows c = { .v = before, .n = 2, .fail_at = at };
		ck_assert_int_eq(chain_merge_hour(&d, H, next, &c, &b, &a), -EIO);
		ck_assert_ptr_null(b.ctx);
		ck_assert_ptr_null(a.ctx);
	}
	chain_deltas_free(&d);
}
END_TEST

/* ---- random hours against a plain list ---- */

static uint64_t seed = 88172645463325252ULL;
static uint64_t rnd(void)
{
	return tu_xorshift(&seed);
}

static const char *const devs[] = { "", "a", "ab", "b", "vda", "vdb", "\xc3\xa9" };

static int chain_order(const void *x, const void *y)
{
	const struct chain_row *a = x, *b = y;
	if (a->resource_id != b->resource_id)
		return a->resource_id < b->resource_id ? -1 : 1;
	if (a->meter_id != b->meter_id)
		return a->meter_id < b->meter_id ? -1 : 1;
	return strcmp(a->device, b->device);     /* no NUL inside: bytewise, a prefix first */
}

static bool same_key(const struct chain_row *a, const struct chain_row *b)
{
	return a->resource_id == b->resource_id && a->meter_id == b->meter_id && !strcmp(a->device, b->device);
}

/* meter 1 counts (integers), meter 2 is a gauge (reals) */
static struct chain_row random_row(void)
{
	int64_t res = (int64_t)(rnd() % 6), met = 1 + (int64_t)(rnd() % 2);
	const char *dev = devs[rnd() % (sizeof(devs) / sizeof(devs[0]))];
	if (met == 1)
		return I(res, 1, dev, (int64_t)(rnd() % 1000000), (int64_t)(rnd() % 1000), 7, 1);
	return R(res, 2, dev, (double)(rnd() % 1000000) / 7.0, (int64_t)(rnd() % 1000), 7, 1);
}

START_TEST(test_random_against_list)
{
	for (int round = 0; round < 300; round++) {
		struct chain_row before[64], list[64 + 40];
		size_t nb = 0, nl;
		for (int i = 0, want = (int)(rnd() % 40); i < want; i++) {
			struct chain_row r = random_row();
			bool dup = false;
			for (size_t j = 0; j < nb; j++)
				dup |= same_key(&before[j], &r);
			if (!dup)
				before[nb++] = r;
		}
		qsort(before, nb, sizeof(before[0]), chain_order);
		memcpy(list, before, nb * sizeof(before[0]));
		nl = nb;
		struct chain_deltas d = { 0 };
		for (int i = 0, n = (int)(rnd() % 40); i < n; i++) {
			struct chain_row u = random_row();
			add(&d, u);
			size_t j = 0;
			while (j < nl && !same_key(&list[j], &u))
				j++;
			if (j == nl) {
				list[nl++] = u;
			} else {
				if (u.qty.type == LEDGER_QTY_INT)
					list[j].qty.i += u.qty.i;
				else
					list[j].qty.d += u.qty.d;
				list[j].spanned_ns += u.spanned_ns;
				list[j].covered_ns += u.covered_ns;
				list[j].samples += u.samples;
			}
		}
		qsort(list, nl, sizeof(list[0]), chain_order);
		struct chain_hour b, a;
		ck_assert_int_eq(merge(&d, before, nb, &b, &a), 0);
		expect(&b, before, nb);
		expect(&a, list, nl);
		chain_deltas_free(&d);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chain_merge");
	TCase *tc = tcase_create("chain_merge");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_worked_by_hand);
	tcase_add_test(tc, test_reals_added_in_turn);
	tcase_add_test(tc, test_devices_bytewise);
	tcase_add_test(tc, test_empty_hour);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_reader_error_returned);
	tcase_add_test(tc, test_random_against_list);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
