/*
 * vec.c: the growable array (vec.h).
 */
#include "vec.h"
#include "fault.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int vec_reserve(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
	assert(elem > 0 && (*p != NULL || *cap == 0));   /* an array's capacity is what it has */
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : (first ? first : 1);
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (elem && n > SIZE_MAX / elem)
		return -ENOMEM;
	void *q = fault_realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}
