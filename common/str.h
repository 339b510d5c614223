/*
 * str.h: bounded string copies for the fixed-size fields of tally's value
 * types.
 */
#ifndef TALLY_STR_H
#define TALLY_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Copy src into dst[size] (size > 0), always NUL-terminated. Returns true
 * when all of src fitted, false when it was cut. */
static inline bool str_copy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);
	bool fits = n < size;
	if (!fits)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

#endif
