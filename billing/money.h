/*
 * money.h: exact money. No double ever touches an amount (docs/architecture.md rule 8).
 *
 * Prices are int64 nanos: 10^-9 of the currency unit, so 0.000000001 per
 * unit is representable and a price is at most 9.2e9 currency units.
 * Amounts are int64 minor units of the currency (cents for EUR/USD, yen for
 * JPY, fils for BHD: 0 to 4 digits). A line's amount is
 *     quantity * price, rounded ONCE to the minor unit
 * where the quantity is an exact rational of billing units (e.g. bytes /
 * 10^9 for GB). Intermediate products are 128-bit; a result that does not
 * fit is -ERANGE, never wrapped.
 */
#ifndef TALLY_MONEY_H
#define TALLY_MONEY_H

#include <stddef.h>
#include <stdint.h>

struct tally_err;

#define MONEY_PRICE_DIGITS 9                 /* fractional digits of a price */
#define MONEY_NANOS 1000000000LL
#define MONEY_MAX_MINOR_DIGITS 4

enum money_round {
	MONEY_HALF_EVEN = 0,   /* banker's rounding: the default */
	MONEY_HALF_UP,         /* halves away from zero */
	MONEY_DOWN,            /* toward zero (truncate) */
};

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
 * rounded half to even: quantities on invoices. len >= 64 suffices. */
char *money_format_ratio(__int128 num, __int128 den, int places, char *buf, size_t len);

#endif
