/*
 * money.c: parsing, exact rounding and formatting of money (see money.h).
 */
#include "money.h"
#include "exact.h"
#include "err.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int64_t money_nanos_per_minor(int minor_digits)
{
	int64_t q = MONEY_NANOS;
	for (int i = 0; i < minor_digits; i++)
		q /= 10;
	return q;
}

int money_parse_price(const char *text, int64_t *nanos, struct tally_err *e)
{
	const char *p = text;
	int neg = 0, digits = 0, frac = 0;
	__int128 v = 0;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	/* a leading zero before another digit is refused, not read past:
	 * YAML 1.1 reads 010 as octal 8, YAML 1.2 as 10 */
	if (p[0] == '0' && isdigit((unsigned char)p[1]))
		return err_set(e, -EINVAL, "'%s': a leading zero makes it ambiguous (octal in YAML 1.1): write it"
			       " without", text);
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

#define LO64(x) ((x) & (((unsigned __int128)1 << 64) - 1))

void money_u256_mul(unsigned __int128 a, unsigned __int128 b, struct money_u256 *out)
{
	unsigned __int128 a0 = LO64(a), a1 = a >> 64, b0 = LO64(b), b1 = b >> 64;
	unsigned __int128 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	unsigned __int128 mid = (p00 >> 64) + LO64(p01) + LO64(p10);   /* < 2^66 */
	out->lo = LO64(p00) | (mid << 64);
	out->hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
}

int money_u256_mul_by(struct money_u256 *x, unsigned __int128 b)
{
	struct money_u256 l, h;
	money_u256_mul(x->lo, b, &l);
	money_u256_mul(x->hi, b, &h);
	unsigned __int128 hi;
	if (h.hi || __builtin_add_overflow(l.hi, h.lo, &hi))
		return -ERANGE;
	x->lo = l.lo;
	x->hi = hi;
	return 0;
}

int money_u256_add(struct money_u256 *x, const struct money_u256 *y)
{
	unsigned __int128 lo = x->lo + y->lo, hi;
	if (__builtin_add_overflow(x->hi, y->hi, &hi) || __builtin_add_overflow(hi, (unsigned __int128)(lo < x->lo), &hi))
		return -ERANGE;
	x->lo = lo;
	x->hi = hi;
	return 0;
}

int money_u256_cmp(const struct money_u256 *x, const struct money_u256 *y)
{
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

int money_u256_divmod(const struct money_u256 *x, unsigned __int128 den, unsigned __int128 *q,
		      unsigned __int128 *r)
{
	if (den == 0)
		return -EINVAL;
	if (x->hi >= den)
		return -ERANGE;   /* the quotient would need more than 128 bits */
	/* binary long division over the low half: the remainder starts as the
	 * high half (< den) and stays below den; top catches the bit shifted
	 * out of a remainder at or above 2^127 */
	unsigned __int128 rem = x->hi, quo = 0;
	for (int i = 127; i >= 0; i--) {
		unsigned top = (unsigned)(rem >> 127);
		rem = rem << 1 | ((x->lo >> i) & 1);
		quo <<= 1;
		if (top || rem >= den) {
			rem -= den;
			quo |= 1;
		}
	}
	*q = quo;
	if (r)
		*r = rem;
	return 0;
}

/* x / den rounded by mode (on the magnitude: the sign is the caller's). */
static int u256_round(const struct money_u256 *x, unsigned __int128 den, enum money_round mode, unsigned __int128 *out)
{
	unsigned __int128 q, r;
	int rc = money_u256_divmod(x, den, &q, &r);
	if (rc)
		return rc;
	if (r && mode != MONEY_DOWN) {
		unsigned __int128 rest = den - r;   /* r > rest: past the half */
		if (r > rest || (r == rest && (mode == MONEY_HALF_UP || (q & 1))))
			q++;
	}
	*out = q;
	return 0;
}

int money_u256_round(const struct money_u256 *x, bool neg, unsigned __int128 den, enum money_round mode,
		     int64_t *out)
{
	unsigned __int128 q;
	int rc = u256_round(x, den, mode, &q);
	if (rc)
		return rc;
	if (q > (unsigned __int128)INT64_MAX)
		return -ERANGE;
	*out = neg ? -(int64_t)q : (int64_t)q;
	return 0;
}

int money_u256_round_wide(const struct money_u256 *x, unsigned __int128 den, enum money_round mode, __int128 *out)
{
	unsigned __int128 q;
	int rc = u256_round(x, den, mode, &q);
	if (rc)
		return rc;
	if (q >> 126)
		return -ERANGE;
	*out = (__int128)q;
	return 0;
}

/* An unsigned 128-bit integer in decimal. */
static void u128_text(unsigned __int128 v, char *buf, size_t len)
{
	char t[48];
	int n = 0;
	do {
		t[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v);
	size_t i = 0;
	for (; n > 0 && i + 1 < len; i++)
		buf[i] = t[--n];
	buf[i] = '\0';
}

char *money_format_u256(const struct money_u256 *x, unsigned __int128 den, int places, char *buf, size_t len)
{
	unsigned __int128 q, r;
	char digits[24], ib[48];
	if (places < 0 || places > 18 || money_u256_divmod(x, den, &q, &r)) {
		snprintf(buf, len, "-");
		return buf;
	}
	for (int i = 0; i < places; i++) {
		struct money_u256 t;
		unsigned __int128 d;
		money_u256_mul(r, 10, &t);
		money_u256_divmod(&t, den, &d, &r);   /* r < den: d is one digit */
		digits[i] = (char)('0' + (int)d);
	}
	unsigned __int128 rest = den - r;
	int last_odd = places > 0 ? (digits[places - 1] - '0') % 2 : (int)(q % 2);
	if (r > rest || (r && r == rest && last_odd)) {
		int i = places - 1;
		for (; i >= 0 && digits[i] == '9'; i--)
			digits[i] = '0';
		if (i >= 0)
			digits[i]++;
		else
			q++;
	}
	digits[places] = '\0';
	u128_text(q, ib, sizeof(ib));
	snprintf(buf, len, "%s%s%s", ib, places ? "." : "", digits);
	return buf;
}

int money_add(int64_t a, int64_t b, int64_t *sum)
{
	int64_t s;
	if (__builtin_add_overflow(a, b, &s))
		return -ERANGE;
	*sum = s;
	return 0;
}

int money_double_scaled(double d, int64_t scale, __int128 *out)
{
	return exact_double_scaled(d, scale, out);
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
	struct money_u256 num;
	unsigned __int128 den;
	if (qty_den <= 0 || minor_digits < 0 || minor_digits > MONEY_MAX_MINOR_DIGITS)
		return -EINVAL;
	/* amount = qty_num * price / (qty_den * 10^9) currency units
	 *        = qty_num * price * 10^minor / (qty_den * 10^9) minor units,
	 * the numerator in 256 bits so that no intermediate product wraps */
	bool neg = (qty_num < 0) != (price_nanos < 0);
	unsigned __int128 aq = qty_num < 0 ? -(unsigned __int128)qty_num : (unsigned __int128)qty_num;
	unsigned __int128 ap = price_nanos < 0 ? -(unsigned __int128)price_nanos : (unsigned __int128)price_nanos;
	money_u256_mul(aq, ap, &num);
	if (money_u256_mul_by(&num, (unsigned __int128)pow10i(minor_digits)) ||
	    __builtin_mul_overflow((unsigned __int128)qty_den, (unsigned __int128)MONEY_NANOS, &den))
		return -ERANGE;
	return money_u256_round(&num, neg, den, mode, amount_minor);
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
	struct money_u256 n = { 0, (unsigned __int128)(num < 0 ? -num : num) };
	char t[80];
	if (den == 0 || places < 0 || places > 18) {
		snprintf(buf, len, "-");
		return buf;
	}
	/* long division of the magnitudes, rounded once, half to even */
	money_format_u256(&n, (unsigned __int128)(den < 0 ? -den : den), places, t, sizeof(t));
	bool zero = strspn(t, "0.") == strlen(t);
	snprintf(buf, len, "%s%s", neg && !zero ? "-" : "", t);
	return buf;
}
