/*
 * hash.h: the one string hash of the tree, FNV-1a (32 and 64 bits), for
 * the open-addressing tables and the short digests that name things, and
 * the finaliser that spreads it over a table's slots (hash_mix64). The
 * values are FNV-1a's own, so a table keyed or a name made with them is
 * the same as before they were gathered here. Not for anything a hostile
 * input could aim at where it matters: tables that take outside keys bound
 * their probes (ratelimit.c) or their size.
 */
#ifndef TALLY_HASH_H
#define TALLY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV32_INIT 2166136261u
#define HASH_FNV64_INIT 0xcbf29ce484222325ULL

/* Continue the hash h over len bytes at p. */
static inline uint32_t hash_fnv32(uint32_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 16777619u;
	return h;
}

static inline uint64_t hash_fnv64(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

/* Continue h over the string s (without its NUL). */
static inline uint32_t hash_fnv32_str(uint32_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static inline uint64_t hash_fnv64_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Continue h over one 32-bit value as FNV-1a takes a byte: xor, multiply
 * (how composite keys of small integers are hashed). */
static inline uint64_t hash_fnv64_word(uint64_t h, uint32_t v)
{
	return (h ^ v) * 0x100000001b3ULL;
}

/* A 64-bit finaliser for a table's slot, taken from a hash's low bits:
 * FNV's low bits depend only on the low bits of what was hashed (ids past
 * 255 in a byte-wise key, or small integers, fall into long probe runs
 * without it). The first half of MurmurHash3's fmix64. */
static inline uint64_t hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static inline uint32_t hash_fnv32_word(uint32_t h, uint32_t v)
{
	return (h ^ v) * 16777619u;
}

#endif
