/*
 * str.h: bounded string copies for the fixed-size fields of tally's value
 * types, and the shape of a name.
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

/* A name an operator gives (a source service's): at least one byte, none
 * of them a space or a control character. */
static inline bool str_is_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

#endif
