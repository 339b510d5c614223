/*
 * exact.c: exact double -> scaled integer, and 128-bit integers in decimal
 * (exact.h).
 */
#include "exact.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int exact_double_scaled(double d, int64_t scale, __int128 *out)
{
	if (!isfinite(d) || scale <= 0)
		return -ERANGE;
	if (d == 0) {
		*out = 0;
		return 0;
	}
	/* d = mant x 2^exp with mant a 53-bit integer: exact */
	int exp;
	double frac = frexp(fabs(d), &exp);
	unsigned __int128 mant = (unsigned __int128)(uint64_t)ldexp(frac, 53);
	unsigned __int128 v = mant * (unsigned __int128)scale, q;   /* < 2^116 */
	exp -= 53;
	if (exp >= 0) {
		if (exp >= 126 || (v >> (126 - exp)) != 0)
			return -ERANGE;
		q = v << exp;
	} else if (-exp >= 128) {
		q = 0;   /* below 2^-12: nearer zero than one */
	} else {
		int sh = -exp;
		unsigned __int128 half = (unsigned __int128)1 << (sh - 1), r = v & ((half << 1) - 1);
		q = v >> sh;
		if (r > half || (r == half && (q & 1)))
			q++;
	}
	*out = d < 0 ? -(__int128)q : (__int128)q;
	return 0;
}

char *exact_i128_text(__int128 v, char *buf, size_t len)
{
	char tmp[48];
	size_t n = 0;
	unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[n++] = '-';
	if (!len)
		return buf;
	size_t i = 0;
	for (; i < n && i + 1 < len; i++)
		buf[i] = tmp[n - 1 - i];
	buf[i] = '\0';
	return buf;
}
