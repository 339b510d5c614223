/*
 * sbuf.h: a growable byte buffer (the exporters' responses, any text built
 * piece by piece).
 *
 * Appends never fail on the spot: a failed allocation sets oom and later
 * appends do nothing, so a renderer checks once at the end (sbuf_ok). The
 * buffer owns p; sbuf_release() frees it. p is always NUL-terminated when
 * cap > 0, so a finished buffer can be handed out as a string.
 */
#ifndef TALLY_SBUF_H
#define TALLY_SBUF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static inline bool sbuf_reserve(struct sbuf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	b->p[b->len] = '\0';
	return true;
}

static inline void sbuf_add(struct sbuf *b, const void *s, size_t n)
{
	if (!sbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

static inline void sbuf_putc(struct sbuf *b, char c)
{
	sbuf_add(b, &c, 1);
}

/* Decimal digits of v, without printf (the hot path of a scrape). */
static inline void sbuf_u64(struct sbuf *b, uint64_t v)
{
	char t[24];
	int i = 24;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sbuf_add(b, t + i, (size_t)(24 - i));
}

static inline void sbuf_release(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

#endif
