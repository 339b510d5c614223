/*
 * vec.h: the growable array, written once.
 *
 * An array is a pointer, a count and a capacity that its owner keeps
 * (usually beside each other in a struct). vec_reserve makes room for
 * need elements: when need passes the capacity it doubles it (starting at
 * first), reallocs and updates both; the elements already there are kept.
 * On failure nothing changes: the old array is still the owner's.
 *
 *   if (vec_reserve((void **)&t->ports, &t->cap_ports, t->n_ports + 1, sizeof(*t->ports), 16))
 *           return -ENOMEM;
 *   t->ports[t->n_ports++] = p;
 */
#ifndef TALLY_VEC_H
#define TALLY_VEC_H

#include <stddef.h>

/* Returns 0, or -ENOMEM (also when the size would overflow). */
int vec_reserve(void **p, size_t *cap, size_t need, size_t elem, size_t first);

/* Append one element to a struct { T *v; size_t n, cap; }: its address
 * (uninitialised), or NULL when out of memory (vec unchanged). */
#define VEC_PUSH_FIRST(vec, first) \
	(vec_reserve((void **)&(vec).v, &(vec).cap, (vec).n + 1, sizeof(*(vec).v), (first)) ? NULL \
	 : &(vec).v[(vec).n++])

#endif
