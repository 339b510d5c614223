/*
 * test_lpm.c: longest-prefix match (collectors/lpm.c).
 *
 * Hand-worked cases at the edges (nested prefixes, the first and last
 * address of each, 0/0 and host routes, the top of the address space), the
 * operator's mistakes (host bits, bad lengths, a prefix in two classes),
 * then random tables checked against the definition itself: a linear scan
 * for the longest prefix that holds the address.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pcap_internal.h"
#include "testutil.h"

typedef unsigned __int128 u128;

static struct lpm_prefix P(const char *text, int value)
{
	struct lpm_prefix p;
	struct tally_err e = { 0 };
	ck_assert_msg(lpm_parse(text, &p, &e) == 0, "%s: %s", text, e.msg);
	p.value = (uint8_t)value;
	return p;
}

static uint32_t A4(const char *s)
{
	struct lpm_prefix p = P(s, 0);
	return pc_rd32(p.addr);
}

struct query {
	const char *a;            /* an IPv4 or IPv6 address */
	int v;                    /* what a lookup must give */
};

static void expect(const struct lpm *t, const struct query *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct lpm_prefix a = P(q[i].a, 0);
		int got = a.family == 4 ? lpm_lookup4(t, pc_rd32(a.addr)) : lpm_lookup6(t, pc_rd128(a.addr));
		ck_assert_msg(got == q[i].v, "%s: %d, want %d", q[i].a, got, q[i].v);
	}
}

START_TEST(test_nested_v4)
{
	struct lpm_prefix pf[] = {
		P("10.0.0.0/8", 1), P("10.1.2.0/24", 2), P("10.1.2.128/25", 1), P("10.1.2.200/32", 3),
		P("192.168.0.0/16", 1), P("255.255.255.255/32", 2),
	};
	struct lpm t;
	ck_assert_int_eq(lpm_build(&t, pf, sizeof(pf) / sizeof(pf[0]), 0, NULL, NULL), 0);
	static const struct query q[] = {
		{ "0.0.0.0", 0 }, { "9.255.255.255", 0 }, { "10.0.0.0", 1 }, { "10.1.1.255", 1 },
		{ "10.1.2.0", 2 }, { "10.1.2.127", 2 }, { "10.1.2.128", 1 }, { "10.1.2.199", 1 },
		{ "10.1.2.200", 3 }, { "10.1.2.201", 1 }, { "10.1.2.255", 1 }, { "10.1.3.0", 1 },
		{ "10.255.255.255", 1 }, { "11.0.0.0", 0 }, { "192.167.255.255", 0 }, { "192.168.0.0", 1 },
		{ "192.168.255.255", 1 }, { "192.169.0.0", 0 }, { "255.255.255.254", 0 }, { "255.255.255.255", 2 },
		{ "::1", 0 },
	};
	expect(&t, q, sizeof(q) / sizeof(q[0]));
	/* interval starts: 0.0.0.0 (0), 10.0.0.0 (1), 10.1.2.0 (2), .128 (1),
	 * .200 (3), .201 (1, on through 10.255.255.255: the /25's end and the
	 * /8's rest have one value, merged), 11.0.0.0 (0), 192.168.0.0 (1),
	 * 192.169.0.0 (0), 255.255.255.255 (2) */
	ck_assert_uint_eq(t.n4, 10);
	ck_assert_uint_eq(t.n6, 1);
	lpm_release(&t);
}
END_TEST

START_TEST(test_nested_v6)
{
	struct lpm_prefix pf[] = {
		P("fd00::/8", 1), P("fd00:1::/32", 2), P("2001:db8:100::/48", 2), P("::/0", 4),
		P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 5), P("10.0.0.0/8", 1),
	};
	struct lpm t;
	ck_assert_int_eq(lpm_build(&t, pf, sizeof(pf) / sizeof(pf[0]), 0, NULL, NULL), 0);
	static const struct query q[] = {
		{ "::", 4 }, { "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 4 }, { "fd00::", 1 }, { "fd00:0:ffff::1", 1 },
		{ "fd00:1::", 2 }, { "fd00:1:ffff:ffff:ffff:ffff:ffff:ffff", 2 }, { "fd00:2::", 1 },
		{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 }, { "fe00::", 4 }, { "2001:db8:100::", 2 },
		{ "2001:db8:100:ffff:ffff:ffff:ffff:ffff", 2 }, { "2001:db8:101::", 4 }, { "2001:db8:ff::1", 4 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 4 }, { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 5 },
		/* an IPv4-mapped address is IPv6 here: the v4 prefix does not hold it */
		{ "::ffff:10.0.0.1", 4 }, { "10.9.9.9", 1 }, { "9.9.9.9", 0 },
	};
	expect(&t, q, sizeof(q) / sizeof(q[0]));
	lpm_release(&t);
}
END_TEST

START_TEST(test_empty_and_everything)
{
	struct lpm t;
	ck_assert_int_eq(lpm_build(&t, NULL, 0, 7, NULL, NULL), 0);
	ck_assert_int_eq(lpm_lookup4(&t, 0), 7);
	ck_assert_int_eq(lpm_lookup4(&t, 0xffffffffu), 7);
	ck_assert_int_eq(lpm_lookup6(&t, ~(u128)0), 7);
	lpm_release(&t);
	struct lpm_prefix all[] = { P("0.0.0.0/0", 2), P("::/0", 3) };
	ck_assert_int_eq(lpm_build(&t, all, 2, 7, NULL, NULL), 0);
	ck_assert_int_eq(lpm_lookup4(&t, 0), 2);
	ck_assert_int_eq(lpm_lookup4(&t, 0xffffffffu), 2);
	ck_assert_int_eq(lpm_lookup6(&t, 0), 3);
	ck_assert_int_eq(lpm_lookup6(&t, ~(u128)0), 3);
	ck_assert_uint_eq(t.n4, 1);
	lpm_release(&t);
}
END_TEST

START_TEST(test_duplicates_refused)
{
	struct lpm_prefix pf[] = { P("10.0.0.0/8", 1), P("192.0.2.0/24", 1), P("10.0.0.0/8", 2) };
	struct lpm t;
	size_t a = 99, b = 99;
	ck_assert_int_eq(lpm_build(&t, pf, 3, 0, &a, &b), -EEXIST);
	ck_assert_uint_eq(a, 0);
	ck_assert_uint_eq(b, 2);
	/* 10.0.0.0/8 and 10.0.0.0/9 are not the same prefix */
	pf[2] = P("10.0.0.0/9", 2);
	ck_assert_int_eq(lpm_build(&t, pf, 3, 0, &a, &b), 0);
	ck_assert_int_eq(lpm_lookup4(&t, A4("10.127.0.1")), 2);
	ck_assert_int_eq(lpm_lookup4(&t, A4("10.128.0.1")), 1);
	lpm_release(&t);
}
END_TEST

START_TEST(test_parse_mistakes)
{
	struct lpm_prefix p;
	struct tally_err e = { 0 };
	ck_assert_int_eq(lpm_parse("10.0.0.1/8", &p, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "did you mean 10.0.0.0/8") != NULL, "%s", e.msg);
	ck_assert_int_eq(lpm_parse("2001:db8::1/32", &p, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "did you mean 2001:db8::/32") != NULL, "%s", e.msg);
	const char *bad[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/08", "10.0.0.0/-1",
			      "10.0.0.0/8x", "10.0.0/8", "10.0.0.256", "example.com", "10.0.0.0 /8",
			      "fd00::/1000", NULL };
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(lpm_parse(bad[i], &p, &e) == -EINVAL, "'%s' accepted", bad[i]);
	ck_assert_int_eq(lpm_parse("192.0.2.7", &p, &e), 0);
	ck_assert_int_eq(p.family, 4);
	ck_assert_int_eq(p.plen, 32);
	ck_assert_int_eq(lpm_parse("2001:db8::7", &p, &e), 0);
	ck_assert_int_eq(p.family, 6);
	ck_assert_int_eq(p.plen, 128);
	ck_assert_int_eq(lpm_parse("0.0.0.0/0", &p, &e), 0);
	ck_assert_int_eq(p.plen, 0);
}
END_TEST

/* ---- random tables against a linear scan ---- */

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
	return tu_xorshift(&rng);
}

static int naive(const struct lpm_prefix *pf, size_t n, int family, const uint8_t *addr, int dflt)
{
	int best = -1, v = dflt;
	for (size_t i = 0; i < n; i++) {
		if (pf[i].family != family || pf[i].plen <= best)
			continue;
		int ok = 1;
		for (unsigned bit = 0; bit < pf[i].plen && ok; bit++)
			ok = ((addr[bit / 8] ^ pf[i].addr[bit / 8]) & (0x80u >> (bit % 8))) == 0;
		if (ok) {
			best = pf[i].plen;
			v = pf[i].value;
		}
	}
	return v;
}

/* a prefix near the others (so they nest), host bits cleared */
static void rand_prefix(struct lpm_prefix *p, int family, const struct lpm_prefix *near)
{
	unsigned max = family == 4 ? 32 : 128;
	memset(p, 0, sizeof(*p));
	p->family = (uint8_t)family;
	for (int i = 0; i < 16; i++)
		p->addr[i] = (uint8_t)rnd();
	if (near && rnd() % 2)
		memcpy(p->addr, near->addr, 16);
	if (family == 6 && rnd() % 2)
		p->addr[0] = 0xfd;
	p->plen = (uint8_t)(rnd() % (max + 1));
	for (unsigned b = p->plen; b < max; b++)
		p->addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	if (family == 4)
		memset(p->addr + 4, 0, 12);
	p->value = (uint8_t)(1 + rnd() % 3);
}

START_TEST(test_random_vs_scan)
{
	for (int round = 0; round < 40; round++) {
		size_t n = 1 + rnd() % 300, m = 0;
		struct lpm_prefix *pf = calloc(n, sizeof(*pf));
		for (size_t i = 0; i < n; i++) {
			int fam = rnd() % 2 ? 4 : 6;
			struct lpm_prefix cand;
			rand_prefix(&cand, fam, m ? &pf[rnd() % m] : NULL);
			int dup = 0;
			for (size_t j = 0; j < m && !dup; j++)
				dup = pf[j].family == cand.family && pf[j].plen == cand.plen &&
				      !memcmp(pf[j].addr, cand.addr, 16);
			if (!dup)
				pf[m++] = cand;
		}
		struct lpm t;
		ck_assert_int_eq(lpm_build(&t, pf, m, 0, NULL, NULL), 0);
		for (int k = 0; k < 3000; k++) {
			uint8_t a[16];
			/* half the queries at a prefix's first or last address, or just outside */
			if (rnd() % 2) {
				const struct lpm_prefix *p = &pf[rnd() % m];
				unsigned max = p->family == 4 ? 32 : 128;
				memcpy(a, p->addr, 16);
				if (rnd() % 2)
					for (unsigned b = p->plen; b < max; b++)
						a[b / 8] |= (uint8_t)(0x80u >> (b % 8));
				int step = (int)(rnd() % 3) - 1;   /* -1, 0, +1 */
				int len = p->family == 4 ? 4 : 16;
				for (int i = len - 1; i >= 0 && step; i--) {
					int v = a[i] + step;
					a[i] = (uint8_t)v;
					if (v >= 0 && v <= 255)
						break;
				}
				int fam = p->family;
				int want = naive(pf, m, fam, a, 0);
				int got = fam == 4 ? lpm_lookup4(&t, pc_rd32(a)) : lpm_lookup6(&t, pc_rd128(a));
				ck_assert_msg(got == want, "round %d: %d, want %d", round, got, want);
			} else {
				for (int i = 0; i < 16; i++)
					a[i] = (uint8_t)rnd();
				ck_assert_int_eq(lpm_lookup4(&t, pc_rd32(a)), naive(pf, m, 4, a, 0));
				if (rnd() % 2)
					a[0] = 0xfd;
				ck_assert_int_eq(lpm_lookup6(&t, pc_rd128(a)), naive(pf, m, 6, a, 0));
			}
		}
		lpm_release(&t);
		free(pf);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lpm");
	TCase *tc = tcase_create("lpm");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_nested_v4);
	tcase_add_test(tc, test_nested_v6);
	tcase_add_test(tc, test_empty_and_everything);
	tcase_add_test(tc, test_duplicates_refused);
	tcase_add_test(tc, test_parse_mistakes);
	tcase_add_test(tc, test_random_vs_scan);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
