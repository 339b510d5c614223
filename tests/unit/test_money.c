/*
 * test_money.c: exact money (docs/architecture.md rule 8). Every expected amount is
 * worked out by hand in the comment beside it.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "err.h"
#include "money.h"
#include "testutil.h"

static const struct {
	const char *in;
	int64_t nanos;
} prices[] = {
	{ "12", 12000000000LL },
	{ "0.09", 90000000LL },
	{ "0.000000001", 1 },                 /* the smallest price there is */
	{ "-0.5", -500000000LL },
	{ "+3.25", 3250000000LL },
	{ "9223372036.854775807", INT64_MAX },
	{ ".5", 500000000LL },
};

START_TEST(test_parse_ok)
{
	int64_t v;
	struct tally_err e = { 0 };
	ck_assert_msg(money_parse_price(prices[_i].in, &v, &e) == 0, "%s: %s", prices[_i].in, e.msg);
	ck_assert_int_eq(v, prices[_i].nanos);
}
END_TEST

START_TEST(test_parse_bad)
{
	int64_t v;
	struct tally_err e = { 0 };
	ck_assert_int_eq(money_parse_price("0.0000000001", &v, &e), -EINVAL);   /* 10 decimals */
	ck_assert_ptr_nonnull(strstr(e.msg, "more precision than the money scale holds"));
	ck_assert_int_eq(money_parse_price("1e5", &v, &e), -EINVAL);
	ck_assert_int_eq(money_parse_price("", &v, &e), -EINVAL);
	ck_assert_int_eq(money_parse_price("-", &v, &e), -EINVAL);
	ck_assert_int_eq(money_parse_price("12,50", &v, &e), -EINVAL);
	ck_assert_int_eq(money_parse_price("9223372037", &v, &e), -ERANGE);     /* > 9.2e9 units */
	/* YAML 1.1 reads 010 as 8, YAML 1.2 as 10: refused, not guessed */
	ck_assert_int_eq(money_parse_price("010", &v, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "'010': a leading zero makes it ambiguous"));
	ck_assert_int_eq(money_parse_price("-007.50", &v, &e), -EINVAL);
	ck_assert_int_eq(money_parse_price("00", &v, &e), -EINVAL);
	ck_assert_int_eq(money_parse_price("0", &v, &e), 0);                    /* a lone zero is a zero */
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(money_parse_price("0.07", &v, &e), 0);
	ck_assert_int_eq(v, 70000000);
}
END_TEST

static const struct {
	const char *what;
	__int128 num, den;
	int64_t price;
	int digits;
	int64_t even, up, down;
} lines[] = {
	/* 1.5 GB at 0.09/GB = 0.135 = 13.5 cents: even -> 14, up -> 14, down -> 13 */
	{ "1.5 GB", 1500000000, 1000000000, 90000000, 2, 14, 14, 13 },
	/* 2.5 units at 0.01 = 2.5 cents: even -> 2 (2 is even), up -> 3, down -> 2 */
	{ "2.5 x 0.01", 5, 2, 10000000, 2, 2, 3, 2 },
	/* 3.5 cents: even -> 4 */
	{ "3.5 x 0.01", 7, 2, 10000000, 2, 4, 4, 3 },
	/* a credit of -2.5 cents: even -> -2, up (away from zero) -> -3, down (to zero) -> -2 */
	{ "-2.5 x 0.01", -5, 2, 10000000, 2, -2, -3, -2 },
	/* 2^50 bytes as GB (2^50 / 10^9 = 1125899.906842624 GB) at 0.05/GB =
	 * 56294.9953421312 -> 5629499.53421312 cents -> 5629500 (all but down) */
	{ "2^50 bytes", (__int128)1 << 50, 1000000000, 50000000, 2, 5629500, 5629500, 5629499 },
	/* one unit at 0.000000001: 1e-7 cents -> 0, the smallest price rounds away */
	{ "1 x 1e-9", 1, 1, 1, 2, 0, 0, 0 },
	/* 10^9 units at 0.000000001 = 1.00 */
	{ "1e9 x 1e-9", 1000000000, 1, 1, 2, 100, 100, 100 },
	/* a VM living 1 second, at 0.036/instance-hour: 1/3600 h x 0.036 = 0.00001 = 0.001 cents -> 0 */
	{ "1 s", 1, 3600, 36000000, 2, 0, 0, 0 },
	/* 90 s of 2 vCPUs at 0.04/vCPU-h: 180/3600 x 0.04 = 0.002 -> 0.2 cents -> 0 */
	{ "90 s x 2 vCPU", 180, 3600, 40000000, 2, 0, 0, 0 },
	/* 744 h (31 days) at 0.0125/h = 9.30 exactly */
	{ "744 h", 744, 1, 12500000, 2, 930, 930, 930 },
	/* yen (0 minor digits): 10.5 units at 1 JPY = 10.5 -> 10 (even), 11 (up) */
	{ "JPY", 21, 2, 1000000000, 0, 10, 11, 10 },
	/* dinar (3 digits): 1 unit at 0.0125 = 12.5 fils -> 12 (even), 13 (up) */
	{ "BHD", 1, 1, 12500000, 3, 12, 13, 12 },
};

START_TEST(test_lines)
{
	int64_t a;
	ck_assert_int_eq(money_line(lines[_i].num, lines[_i].den, lines[_i].price, lines[_i].digits,
				    MONEY_HALF_EVEN, &a), 0);
	ck_assert_msg(a == lines[_i].even, "%s half-even: %lld", lines[_i].what, (long long)a);
	ck_assert_int_eq(money_line(lines[_i].num, lines[_i].den, lines[_i].price, lines[_i].digits,
				    MONEY_HALF_UP, &a), 0);
	ck_assert_msg(a == lines[_i].up, "%s half-up: %lld", lines[_i].what, (long long)a);
	ck_assert_int_eq(money_line(lines[_i].num, lines[_i].den, lines[_i].price, lines[_i].digits,
				    MONEY_DOWN, &a), 0);
	ck_assert_msg(a == lines[_i].down, "%s down: %lld", lines[_i].what, (long long)a);
}
END_TEST

START_TEST(test_overflow_and_args)
{
	int64_t a;
	/* 2^100 units at the largest price: the product does not fit 128 bits */
	ck_assert_int_eq(money_line((__int128)1 << 100, 1, INT64_MAX, 2, MONEY_HALF_EVEN, &a), -ERANGE);
	/* fits 128 bits but not an int64 amount: 2^62 units at 10.00 */
	ck_assert_int_eq(money_line((__int128)1 << 62, 1, 10000000000LL, 2, MONEY_HALF_EVEN, &a), -ERANGE);
	ck_assert_int_eq(money_line(1, 0, 1, 2, MONEY_HALF_EVEN, &a), -EINVAL);
	ck_assert_int_eq(money_line(1, 1, 1, 5, MONEY_HALF_EVEN, &a), -EINVAL);
}
END_TEST

START_TEST(test_tax)
{
	int64_t t;
	/* 19% of 10.05 = 1.9095 -> 191 cents */
	ck_assert_int_eq(money_percent(1005, 190000, MONEY_HALF_EVEN, &t), 0);
	ck_assert_int_eq(t, 191);
	/* 10% of 0.25 = 2.5 cents -> 2 (even) / 3 (up) */
	ck_assert_int_eq(money_percent(25, 100000, MONEY_HALF_EVEN, &t), 0);
	ck_assert_int_eq(t, 2);
	ck_assert_int_eq(money_percent(25, 100000, MONEY_HALF_UP, &t), 0);
	ck_assert_int_eq(t, 3);
}
END_TEST

START_TEST(test_format)
{
	char b[40];
	ck_assert_str_eq(money_format(1234, 2, b, sizeof(b)), "12.34");
	ck_assert_str_eq(money_format(-5, 2, b, sizeof(b)), "-0.05");
	ck_assert_str_eq(money_format(0, 2, b, sizeof(b)), "0.00");
	ck_assert_str_eq(money_format(1234, 0, b, sizeof(b)), "1234");
	ck_assert_str_eq(money_format(1234, 3, b, sizeof(b)), "1.234");
	ck_assert_str_eq(money_format(INT64_MIN, 2, b, sizeof(b)), "-92233720368547758.08");
	ck_assert_str_eq(money_format_price(90000000, b, sizeof(b)), "0.09");
	ck_assert_str_eq(money_format_price(1, b, sizeof(b)), "0.000000001");
	ck_assert_str_eq(money_format_price(12000000000LL, b, sizeof(b)), "12");
}
END_TEST

/* Quantities on invoices: num/den rounded half to even to a number of
 * places, by long division (no overflow for large denominators). */
static const struct {
	__int128 num, den;
	int places;
	const char *want;
} ratios[] = {
	{ 1, 3, 9, "0.333333333" },
	{ 2, 3, 9, "0.666666667" },
	{ 5, 2, 0, "2" },                /* 2.5 -> 2, the even neighbour */
	{ 7, 2, 0, "4" },                /* 3.5 -> 4 */
	{ 1, 8, 2, "0.12" },             /* 0.125 -> 0.12 (2 is even) */
	{ 3, 8, 2, "0.38" },             /* 0.375 -> 0.38 */
	{ 999999, 1000000, 3, "1.000" }, /* 0.999999: the carry reaches the integer */
	{ -1, 3, 3, "-0.333" },
	{ -1, 3000, 2, "0.00" },         /* rounds to zero: no sign */
	/* 2^50 B in GB: 1125899906842624 / 10^9 */
	{ 1125899906842624LL, 1000000000, 9, "1125899.906842624" },
	/* a denominator of 3.6e21 and 18 places: 2060139315954614 ns in
	 * CPU-hours x 0.001 = 2060139315954614 x 10^6 / (3.6e12 x 10^9)
	 * = 0.5722609210985038888... -> ...889 */
	{ (__int128)2060139315954614LL * 1000000, (__int128)3600000000000LL * 1000000000, 18, "0.572260921098503889" },
	/* an integer part past 2^64: 2^70 = 1180591620717411303424 */
	{ (__int128)1 << 70, 1, 1, "1180591620717411303424.0" },
};

START_TEST(test_format_ratio)
{
	char b[80];
	ck_assert_str_eq(money_format_ratio(ratios[_i].num, ratios[_i].den, ratios[_i].places, b, sizeof(b)),
			 ratios[_i].want);
}
END_TEST

/* Products past 128 bits: 256-bit intermediates, one checked narrowing. */
START_TEST(test_wide)
{
	struct money_u256 x, y;
	unsigned __int128 q, r, max = ~(unsigned __int128)0;
	/* (2^128 - 1)^2 = 2^256 - 2^129 + 1: hi = 2^128 - 2, lo = 1 */
	money_u256_mul(max, max, &x);
	ck_assert(x.hi == max - 1 && x.lo == 1);
	/* 2^64 x 2^64 = 2^128: hi 1, lo 0 */
	money_u256_mul((unsigned __int128)1 << 64, (unsigned __int128)1 << 64, &x);
	ck_assert(x.hi == 1 && x.lo == 0);
	/* 2^128 / 3 = 113427455640312821154458202477256070485 rem 1
	 * (3 x 113427455640312821154458202477256070485 = 2^128 - 1) */
	ck_assert_int_eq(money_u256_divmod(&x, 3, &q, &r), 0);
	ck_assert(q == max / 3 && r == 1);
	/* a quotient of 2^128 or more does not fit */
	ck_assert_int_eq(money_u256_divmod(&x, 1, &q, &r), -ERANGE);
	/* a remainder at or above 2^127 on the way: 2^128 / (2^127 + 1) = 1 rem 2^127 - 1 */
	unsigned __int128 big = ((unsigned __int128)1 << 127) + 1;
	ck_assert_int_eq(money_u256_divmod(&x, big, &q, &r), 0);
	ck_assert(q == 1 && r == ((unsigned __int128)1 << 127) - 1);
	/* x *= b past 2^256 */
	money_u256_mul(max, max, &y);
	ck_assert_int_eq(money_u256_mul_by(&y, 2), -ERANGE);
	ck_assert_int_eq(money_u256_add(&y, &y), -ERANGE);
	/* rounding 7/2 = 3.5 -> 4 even, 5/2 = 2.5 -> 2 even, -2.5 -> -3 half up */
	int64_t a;
	x = (struct money_u256){ 0, 7 };
	ck_assert_int_eq(money_u256_round(&x, false, 2, MONEY_HALF_EVEN, &a), 0);
	ck_assert_int_eq(a, 4);
	x = (struct money_u256){ 0, 5 };
	ck_assert_int_eq(money_u256_round(&x, false, 2, MONEY_HALF_EVEN, &a), 0);
	ck_assert_int_eq(a, 2);
	ck_assert_int_eq(money_u256_round(&x, true, 2, MONEY_HALF_UP, &a), 0);
	ck_assert_int_eq(a, -3);
	/* 2^63 does not fit an int64 amount; 2^63 - 1 does */
	x = (struct money_u256){ 0, (unsigned __int128)1 << 63 };
	ck_assert_int_eq(money_u256_round(&x, false, 1, MONEY_HALF_EVEN, &a), -ERANGE);
	x.lo--;
	ck_assert_int_eq(money_u256_round(&x, false, 1, MONEY_HALF_EVEN, &a), 0);
	ck_assert_int_eq(a, INT64_MAX);
	char b[80];
	/* 2^128 / 10^9 = 340282366920938463463374607431.768211456 */
	money_u256_mul((unsigned __int128)1 << 64, (unsigned __int128)1 << 64, &x);
	ck_assert_str_eq(money_format_u256(&x, 1000000000, 9, b, sizeof(b)), "340282366920938463463374607431.768211456");
	ck_assert_str_eq(money_format_u256(&x, 1000000000, 2, b, sizeof(b)), "340282366920938463463374607431.77");
	int64_t s;
	ck_assert_int_eq(money_add(INT64_MAX, 1, &s), -ERANGE);
	ck_assert_int_eq(money_add(INT64_MAX - 1, 1, &s), 0);
	ck_assert_int_eq(s, INT64_MAX);
}
END_TEST

/* An amount that fits an int64, whose product does not fit 128 bits: 10^30
 * units over 10^25 (10^5 units) at 900000000 per unit (9 x 10^17 nanos):
 * 9 x 10^13 currency = 9 x 10^15 cents; the numerator 10^30 x 9 x 10^17 x
 * 100 = 9 x 10^49 is past 2^127 (1.7 x 10^38). */
START_TEST(test_line_past_128_bits)
{
	int64_t a;
	__int128 e15 = 1000000000000000LL;
	ck_assert_int_eq(money_line(e15 * e15, e15 * e15 / 100000, 900000000LL * MONEY_NANOS, 2, MONEY_HALF_EVEN, &a), 0);
	ck_assert_int_eq(a, 9000000000000000LL);
}
END_TEST

/* A gauge's REAL unit-seconds to milli-units, exact at any magnitude:
 * 1125899906842624.5 (2^50 + 1/2, a double exactly) x 1000 is
 * 1125899906842624500; llrint(d * 1000.0) gives 1125899906842624512,
 * because the product is rounded to a double (ulp 256 there) first. */
START_TEST(test_double_scaled)
{
	__int128 q;
	ck_assert_int_eq(money_double_scaled(1125899906842624.5, 1000, &q), 0);
	ck_assert(q == (__int128)1125899906842624500LL);
	/* 0.0625 x 1000 = 62.5 -> 62 (even); 0.1875 x 1000 = 187.5 -> 188 */
	ck_assert_int_eq(money_double_scaled(0.0625, 1000, &q), 0);
	ck_assert(q == 62);
	ck_assert_int_eq(money_double_scaled(0.1875, 1000, &q), 0);
	ck_assert(q == 188);
	ck_assert_int_eq(money_double_scaled(-0.1875, 1000, &q), 0);
	ck_assert(q == -188);
	/* the double nearest 1e30 is 1000000000000000019884624838656 exactly */
	ck_assert_int_eq(money_double_scaled(1e30, 1000, &q), 0);
	char b[64];
	ck_assert_str_eq(money_format_ratio(q, 1, 0, b, sizeof(b)), "1000000000000000019884624838656000");
	ck_assert_int_eq(money_double_scaled(1e300, 1000, &q), -ERANGE);
	ck_assert_int_eq(money_double_scaled(0.0 / 0.0, 1000, &q), -ERANGE);
	ck_assert_int_eq(money_double_scaled(1e-300, 1000, &q), 0);
	ck_assert(q == 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("money");
	TCase *tc = tcase_create("money");
	tcase_add_loop_test(tc, test_parse_ok, 0, (int)(sizeof(prices) / sizeof(prices[0])));
	tcase_add_test(tc, test_parse_bad);
	tcase_add_loop_test(tc, test_lines, 0, (int)(sizeof(lines) / sizeof(lines[0])));
	tcase_add_test(tc, test_overflow_and_args);
	tcase_add_test(tc, test_tax);
	tcase_add_test(tc, test_wide);
	tcase_add_test(tc, test_line_past_128_bits);
	tcase_add_test(tc, test_double_scaled);
	tcase_add_test(tc, test_format);
	tcase_add_loop_test(tc, test_format_ratio, 0, (int)(sizeof(ratios) / sizeof(ratios[0])));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
