/*
 * lpm.c: longest-prefix match for IPv4 and IPv6, as sorted intervals.
 *
 * Prefixes either nest or are disjoint, so together they cut the address
 * space into intervals on each of which one prefix is the longest match
 * (or none). lpm_build() sorts the prefixes by (start, length) and sweeps
 * them with a stack of the prefixes open at the sweep point, writing an
 * interval start wherever the longest match changes; lookups are a
 * branchless binary search for the last start <= the address (lpm.h's
 * inline lpm_lookup4/6). 1000 prefixes per class make at most 6001
 * intervals: 24 KB of IPv4 starts, which stay in the cache, about 13
 * steps a lookup, and no allocation after the build.
 */
#include "pcap_internal.h"
#include "err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

int lpm_parse(const char *text, struct lpm_prefix *out, struct tally_err *e)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(buf))
		return err_set(e, -EINVAL, "'%s' is not an address or prefix", text);
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = 4;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = 6;
	else
		return err_set(e, -EINVAL, "'%s' is not an IPv4 or IPv6 address", buf);
	unsigned max = out->family == 4 ? 32 : 128;
	unsigned plen = max;
	if (slash) {
		const char *d = slash + 1;
		if (!*d || strlen(d) > 3 || strspn(d, "0123456789") != strlen(d) || (d[0] == '0' && d[1]))
			return err_set(e, -EINVAL, "'%s': the prefix length must be a number 0-%u", text, max);
		plen = (unsigned)atoi(d);
		if (plen > max)
			return err_set(e, -EINVAL, "'%s': the prefix length must be 0-%u", text, max);
	}
	out->plen = (uint8_t)plen;
	for (unsigned bit = plen; bit < max; bit++)
		if (out->addr[bit / 8] & (0x80u >> (bit % 8))) {
			char net[64];
			uint8_t a[16];
			memcpy(a, out->addr, sizeof(a));
			for (unsigned b = plen; b < max; b++)
				a[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
			inet_ntop(out->family == 4 ? AF_INET : AF_INET6, a, net, sizeof(net));
			return err_set(e, -EINVAL, "'%s' has bits set past its /%u (did you mean %s/%u?)", text, plen,
				       net, plen);
		}
	return 0;
}

struct iv {
	u128 start, end;             /* inclusive */
	uint8_t plen, value;
	size_t idx;                  /* in the caller's list */
};

static int iv_cmp(const void *a, const void *b)
{
	const struct iv *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

struct out {
	u128 *start;
	uint8_t *val;
	size_t n;
};

static void put(struct out *o, u128 start, uint8_t val)
{
	if (o->n && o->start[o->n - 1] == start) {
		o->val[o->n - 1] = val;   /* a later change at the same point wins */
		return;
	}
	o->start[o->n] = start;
	o->val[o->n] = val;
	o->n++;
}

/* One family: v[0..n) sorted; writes intervals into o (room for 2n + 1). */
static int sweep(struct iv *v, size_t n, u128 max, uint8_t dflt, struct out *o, size_t *dup_a,
		 size_t *dup_b)
{
	struct iv **stack = malloc((n ? n : 1) * sizeof(*stack));
	size_t top = 0;
	if (!stack)
		return -ENOMEM;
	o->n = 0;
	put(o, 0, dflt);
	for (size_t i = 0; i < n; i++) {
		if (i && v[i].start == v[i - 1].start && v[i].plen == v[i - 1].plen) {
			*dup_a = v[i - 1].idx;
			*dup_b = v[i].idx;
			free(stack);
			return -EEXIST;
		}
		while (top && stack[top - 1]->end < v[i].start) {
			u128 next = stack[top - 1]->end + 1;
			top--;
			put(o, next, top ? stack[top - 1]->value : dflt);
		}
		stack[top++] = &v[i];
		put(o, v[i].start, v[i].value);
	}
	while (top) {
		u128 end = stack[top - 1]->end;
		top--;
		if (end != max)
			put(o, end + 1, top ? stack[top - 1]->value : dflt);
	}
	free(stack);
	/* merge neighbours of one value */
	size_t w = 1;
	for (size_t r = 1; r < o->n; r++)
		if (o->val[r] != o->val[w - 1]) {
			o->start[w] = o->start[r];
			o->val[w] = o->val[r];
			w++;
		}
	o->n = w;
	return 0;
}

void lpm_release(struct lpm *t)
{
	free(t->v4_start);
	free(t->v4_val);
	free(t->v6_start);
	free(t->v6_val);
	memset(t, 0, sizeof(*t));
}

int lpm_build(struct lpm *t, const struct lpm_prefix *p, size_t n, uint8_t dflt, size_t *dup_a,
	      size_t *dup_b)
{
	struct iv *v4 = calloc(n ? n : 1, sizeof(*v4)), *v6 = calloc(n ? n : 1, sizeof(*v6));
	struct out o4 = { 0 }, o6 = { 0 };
	size_t n4 = 0, n6 = 0, dummy;
	int rc = -ENOMEM;

	memset(t, 0, sizeof(*t));
	if (!dup_a)
		dup_a = &dummy;
	if (!dup_b)
		dup_b = &dummy;
	if (!v4 || !v6)
		goto out;
	for (size_t i = 0; i < n; i++) {
		unsigned bits = p[i].family == 4 ? 32 : 128;
		u128 a = 0;
		for (unsigned k = 0; k < bits / 8; k++)
			a = a << 8 | p[i].addr[k];
		u128 host = p[i].plen >= bits ? 0 : bits - p[i].plen == 128 ? ~(u128)0
			    : ((u128)1 << (bits - p[i].plen)) - 1;
		struct iv *x = p[i].family == 4 ? &v4[n4++] : &v6[n6++];
		x->start = a & ~host;
		x->end = x->start | host;
		x->plen = p[i].plen;
		x->value = p[i].value;
		x->idx = i;
	}
	qsort(v4, n4, sizeof(*v4), iv_cmp);
	qsort(v6, n6, sizeof(*v6), iv_cmp);
	o4.start = malloc((2 * n4 + 1) * sizeof(*o4.start));
	o4.val = malloc(2 * n4 + 1);
	o6.start = malloc((2 * n6 + 1) * sizeof(*o6.start));
	o6.val = malloc(2 * n6 + 1);
	if (!o4.start || !o4.val || !o6.start || !o6.val)
		goto out;
	if ((rc = sweep(v4, n4, 0xffffffffu, dflt, &o4, dup_a, dup_b)) ||
	    (rc = sweep(v6, n6, ~(u128)0, dflt, &o6, dup_a, dup_b)))
		goto out;
	t->v4_start = malloc(o4.n * sizeof(*t->v4_start));
	t->v4_val = malloc(o4.n);
	t->v6_start = malloc(o6.n * sizeof(*t->v6_start));
	t->v6_val = malloc(o6.n);
	if (!t->v4_start || !t->v4_val || !t->v6_start || !t->v6_val) {
		lpm_release(t);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < o4.n; i++)
		t->v4_start[i] = (uint32_t)o4.start[i];
	memcpy(t->v4_val, o4.val, o4.n);
	memcpy(t->v6_start, o6.start, o6.n * sizeof(*t->v6_start));
	memcpy(t->v6_val, o6.val, o6.n);
	t->n4 = o4.n;
	t->n6 = o6.n;
	rc = 0;
out:
	free(v4);
	free(v6);
	free(o4.start);
	free(o4.val);
	free(o6.start);
	free(o6.val);
	return rc;
}
