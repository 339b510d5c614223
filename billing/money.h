/*
 * money.h: exact money. No double ever touches an amount (docs/architecture.md rule 8).
 *
 * Prices are int64 nanos: 10^-9 of the currency unit, so 0.000000001 per
 * unit is representable and a price is at most 9.2e9 currency units.
 * Amounts are int64 minor units of the currency (cents for EUR/USD, yen for
 * JPY, fils for BHD: 0 to 4 digits). A line's amount is
 *     quantity * price, rounded ONCE to the minor unit
 * where the quantity is an exact rational of billing units (e.g. bytes /
 * 10^9 for GB). Intermediate products are 256-bit (struct money_u256), so
 * an amount that fits an int64 is always computed exactly; one that does
 * not is -ERANGE, never wrapped. Sums of amounts go through money_add(),
 * which refuses to wrap.
 */
#ifndef TALLY_MONEY_H
#define TALLY_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tally_err;

#define MONEY_PRICE_DIGITS 9                 /* fractional digits of a price */
#define MONEY_NANOS 1000000000LL
#define MONEY_MAX_MINOR_DIGITS 4

/* How many 10^-9 of the currency unit (a price's scale) one minor unit
 * is: 10^(9 - minor_digits). An amount in nanos is a whole number of minor
 * units when it divides by it. */
int64_t money_nanos_per_minor(int minor_digits);

enum money_round {
	MONEY_HALF_EVEN = 0,   /* banker's rounding: the default */
	MONEY_HALF_UP,         /* halves away from zero */
	MONEY_DOWN,            /* toward zero (truncate) */
};

/* A non-negative 256-bit integer: the exact product of a quantity and a
 * price before the one rounding. */
struct money_u256 {
	unsigned __int128 hi, lo;
};

/* *out = a * b, exactly. */
void money_u256_mul(unsigned __int128 a, unsigned __int128 b, struct money_u256 *out);
/* x *= b; -ERANGE (x unchanged) when the product needs more than 256 bits. */
int money_u256_mul_by(struct money_u256 *x, unsigned __int128 b);
/* x += y; -ERANGE on a carry out of 256 bits. */
int money_u256_add(struct money_u256 *x, const struct money_u256 *y);
/* -1, 0, 1 as x <, ==, > y. */
int money_u256_cmp(const struct money_u256 *x, const struct money_u256 *y);
/* x / den and x % den (den > 0); the quotient is -ERANGE when it needs
 * more than 128 bits. */
int money_u256_divmod(const struct money_u256 *x, unsigned __int128 den, unsigned __int128 *q,
		      unsigned __int128 *r);
/* (neg ? -x : x) / den rounded by mode, as an int64: 0, or -ERANGE when
 * the rounded value does not fit. */
int money_u256_round(const struct money_u256 *x, bool neg, unsigned __int128 den, enum money_round mode,
		     int64_t *out);
/* The same for a non-negative result of up to 126 bits. */
int money_u256_round_wide(const struct money_u256 *x, unsigned __int128 den, enum money_round mode, __int128 *out);
/* x / den as a decimal with places (0..18) fractional digits, half to
 * even, for display; "-" when the integer part needs more than 128 bits.
 * len >= 64 suffices. */
char *money_format_u256(const struct money_u256 *x, unsigned __int128 den, int places, char *buf, size_t len);

/* *sum = a + b; -ERANGE (sum unchanged) when it does not fit an int64. */
int money_add(int64_t a, int64_t b, int64_t *sum);

/* The exact value of the double d times scale (> 0), rounded once half to
 * even to an integer: every finite double is m x 2^e with an integer
 * mantissa, so this is exact at any magnitude, with no rounding before the
 * documented one (llrint(d * scale) rounds twice above 2^53). -ERANGE when
 * d is not finite or the result needs more than 126 bits. */
int money_double_scaled(double d, int64_t scale, __int128 *out);

/* Parse a decimal price "12", "0.09", "-0.5", "0.000000001" into nanos.
 * Refused with a message: no digits, exponents, more than 9 fractional
 * digits ("more precision than the money scale holds"), out of range. */
int money_parse_price(const char *text, int64_t *nanos, struct tally_err *e);

/* Round num/den (den > 0) to an integer by mode. Exact. */
__int128 money_round_div(__int128 num, __int128 den, enum money_round mode);

/* The amount in minor units of qty_num/qty_den billing units at price_nanos
 * per unit, rounded once. 0, or -ERANGE on overflow, -EINVAL on a bad
 * argument (den <= 0, minor digits out of 0..4). */
int money_line(__int128 qty_num, __int128 qty_den, int64_t price_nanos, int minor_digits,
	       enum money_round mode, int64_t *amount_minor);

/* Apply a rate in parts per million (tax 190000 = 19%) to an amount, rounded
 * once: amount * ppm / 10^6. 0 or -ERANGE. */
int money_percent(int64_t amount_minor, int64_t ppm, enum money_round mode, int64_t *out);

/* "12.34" for 1234 with 2 minor digits; "-0.05"; "1234" with 0 digits.
 * Returns buf. len >= 32 always suffices. */
char *money_format(int64_t amount_minor, int minor_digits, char *buf, size_t len);

/* A price in nanos as the shortest exact decimal: 90000000 -> "0.09". */
char *money_format_price(int64_t nanos, char *buf, size_t len);

/* num/den as a decimal with exactly places (0..18) fractional digits,
 * rounded half to even: quantities on invoices ("-" for den 0 or places out
 * of range). len >= 64 suffices. */
char *money_format_ratio(__int128 num, __int128 den, int places, char *buf, size_t len);

#endif
