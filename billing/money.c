/*
 * money.c: parsing, exact rounding and formatting of money (see money.h).
 */
#include "money.h"
#include "err.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int money_parse_price(const char *text, int64_t *nanos, struct tally_err *e)
{
	const char *p = text;
	int neg = 0, digits = 0, frac = 0;
	__int128 v = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (; isdigit((unsigned char)*p); p++, digits++) {
		v = v * 10 + (*p - '0');
		if (v > INT64_MAX)
			return err_set(e, -ERANGE, "'%s': too large for a price", text);
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++, frac++, digits++) {
			if (frac == MONEY_PRICE_DIGITS)
				return err_set(e, -EINVAL, "'%s': more precision than the money scale holds"
					       " (at most %d decimal places)", text, MONEY_PRICE_DIGITS);
			v = v * 10 + (*p - '0');
		}
	}
	if (!digits || *p)
		return err_set(e, -EINVAL, "'%s': not a decimal amount (expected e.g. 0.09 or 12)", text);
	for (; frac < MONEY_PRICE_DIGITS; frac++)
		v *= 10;
	if (v > INT64_MAX)
		return err_set(e, -ERANGE, "'%s': too large for a price", text);
	*nanos = (int64_t)(neg ? -v : v);
	return 0;
}

__int128 money_round_div(__int128 num, __int128 den, enum money_round mode)
{
	__int128 q = num / den, r = num % den;   /* truncates toward zero */
	if (r == 0 || mode == MONEY_DOWN)
		return q;
	__int128 ar = r < 0 ? -r : r, twice = 2 * ar;
	int away;
	if (twice > den)
		away = 1;
	else if (twice < den)
		away = 0;
	else
		away = mode == MONEY_HALF_UP || (q % 2 != 0);  /* half-even: to the even neighbour */
	if (away)
		q += num < 0 ? -1 : 1;
	return q;
}

static __int128 pow10i(int n)
{
	__int128 p = 1;
	while (n-- > 0)
		p *= 10;
	return p;
}

int money_line(__int128 qty_num, __int128 qty_den, int64_t price_nanos, int minor_digits,
	       enum money_round mode, int64_t *amount_minor)
{
	__int128 num, den;
	if (qty_den <= 0 || minor_digits < 0 || minor_digits > MONEY_MAX_MINOR_DIGITS)
		return -EINVAL;
	/* amount = qty_num * price / (qty_den * 10^9) currency units
	 *        = qty_num * price * 10^minor / (qty_den * 10^9) minor units */
	if (__builtin_mul_overflow(qty_num, (__int128)price_nanos, &num) ||
	    __builtin_mul_overflow(num, pow10i(minor_digits), &num) ||
	    __builtin_mul_overflow(qty_den, (__int128)MONEY_NANOS, &den))
		return -ERANGE;
	__int128 a = money_round_div(num, den, mode);
	if (a > INT64_MAX || a < INT64_MIN)
		return -ERANGE;
	*amount_minor = (int64_t)a;
	return 0;
}

int money_percent(int64_t amount_minor, int64_t ppm, enum money_round mode, int64_t *out)
{
	__int128 a = money_round_div((__int128)amount_minor * ppm, 1000000, mode);
	if (a > INT64_MAX || a < INT64_MIN)
		return -ERANGE;
	*out = (int64_t)a;
	return 0;
}

char *money_format(int64_t amount_minor, int minor_digits, char *buf, size_t len)
{
	__int128 v = amount_minor;
	int neg = v < 0;
	unsigned long long a = (unsigned long long)(neg ? -v : v);
	if (minor_digits <= 0) {
		snprintf(buf, len, "%s%llu", neg ? "-" : "", a);
		return buf;
	}
	unsigned long long p = (unsigned long long)pow10i(minor_digits);
	snprintf(buf, len, "%s%llu.%0*llu", neg ? "-" : "", a / p, minor_digits, a % p);
	return buf;
}

char *money_format_price(int64_t nanos, char *buf, size_t len)
{
	char tmp[40];
	money_format(nanos, MONEY_PRICE_DIGITS, tmp, sizeof(tmp));
	size_t n = strlen(tmp);
	while (n > 0 && tmp[n - 1] == '0')
		tmp[--n] = '\0';
	if (n > 0 && tmp[n - 1] == '.')
		tmp[--n] = '\0';
	snprintf(buf, len, "%s", tmp);
	return buf;
}

char *money_format_ratio(__int128 num, __int128 den, int places, char *buf, size_t len)
{
	int neg = (num < 0) != (den < 0) && num != 0;
	__int128 n = num < 0 ? -num : num, d = den < 0 ? -den : den;
	char digits[40];
	if (d == 0 || places < 0 || places > 36) {
		snprintf(buf, len, "-");
		return buf;
	}
	/* long division, one digit at a time, so that the remainder never
	 * grows past 10 * den; then one rounding, half to even */
	__int128 ip = n / d, r = n % d;
	for (int i = 0; i < places; i++) {
		r *= 10;
		digits[i] = (char)('0' + (int)(r / d));
		r %= d;
	}
	int last_odd = places > 0 ? (digits[places - 1] - '0') % 2 : (int)(ip % 2);
	if (2 * r > d || (2 * r == d && last_odd)) {
		int i = places - 1;
		for (; i >= 0 && digits[i] == '9'; i--)
			digits[i] = '0';
		if (i >= 0)
			digits[i]++;
		else
			ip++;
	}
	digits[places] = '\0';
	/* the integer part may exceed 64 bits: print it in two halves */
	char ib[48];
	const __int128 e18 = (__int128)1000000000000000000LL;
	if (ip >= e18)
		snprintf(ib, sizeof(ib), "%llu%018llu", (unsigned long long)(ip / e18),
			 (unsigned long long)(ip % e18));
	else
		snprintf(ib, sizeof(ib), "%llu", (unsigned long long)ip);
	bool zero = ip == 0 && strspn(digits, "0") == (size_t)places;
	snprintf(buf, len, "%s%s%s%s", neg && !zero ? "-" : "", ib, places ? "." : "", digits);
	return buf;
}
