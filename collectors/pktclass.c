/*
 * pktclass.c: one frame to the counters of the NICs it belongs to, by
 * traffic class and direction (see pc_count in pcap_internal.h).
 *
 * The attribution tables are open-addressing hashes (load at most 2/3)
 * whose slots hold key and NIC together, so a lookup costs one cache line;
 * the class of an IP frame is the longest-prefix match of its remote
 * address: the destination for what the NIC sent, the source for what it
 * received. A frame counts its length on the wire (the Ethernet header
 * with its tags, no FCS: what a tap's rx/tx byte counters count), once
 * per NIC it belongs to: a frame between two VMs on one bridge is one NIC's
 * outgoing and the other's incoming, as their two taps count it.
 *
 * Counters are written with relaxed atomic stores by the one capture
 * thread that owns them, so read() may load them at any time.
 */
#include "pcap_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const pcap_class_names[PC_COUNT] = {
	[PC_INTERNET] = "internet",
	[PC_INTERNAL] = "internal",
	[PC_PEERING] = "peering",
	[PC_NONIP] = "nonip",
	[PC_MALFORMED] = "malformed",
};

#define KEY_USED (1ULL << 63)

static inline size_t mix64(uint64_t k)
{
	k *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(k ^ (k >> 29));
}

static inline size_t mix128(unsigned __int128 k)
{
	return mix64((uint64_t)k ^ mix64((uint64_t)(k >> 64)));
}

static size_t table_size(size_t n)
{
	size_t s = 16;
	while (s < n + n / 2 + 1)
		s *= 2;
	return s;
}

int pc_tables_init(struct pc_tables *t, size_t n_mac, size_t n_ip4, size_t n_ip6)
{
	memset(t, 0, sizeof(*t));
	size_t a = table_size(n_mac), b = table_size(n_ip4), c = table_size(n_ip6);
	t->mac = calloc(a, sizeof(*t->mac));
	t->ip4 = calloc(b, sizeof(*t->ip4));
	t->ip6 = calloc(c, sizeof(*t->ip6));
	if (!t->mac || !t->ip4 || !t->ip6) {
		pc_tables_release(t);
		return -ENOMEM;
	}
	t->mac_mask = a - 1;
	t->ip4_mask = b - 1;
	t->ip6_mask = c - 1;
	return 0;
}

void pc_tables_release(struct pc_tables *t)
{
	free(t->mac);
	free(t->ip4);
	free(t->ip6);
	lpm_release(&t->lpm);
	t->mac = t->ip4 = NULL;
	t->ip6 = NULL;
}

static int put64(struct pc_slot64 *tab, size_t mask, uint64_t key, uint32_t nic, uint32_t *other)
{
	key |= KEY_USED;
	size_t j = mix64(key) & mask;
	for (; tab[j].key; j = (j + 1) & mask)
		if (tab[j].key == key) {
			*other = tab[j].nic;
			return -EEXIST;
		}
	tab[j].key = key;
	tab[j].nic = nic;
	return 0;
}

static inline int find64(const struct pc_slot64 *tab, size_t mask, uint64_t key)
{
	key |= KEY_USED;
	for (size_t j = mix64(key) & mask; tab[j].key; j = (j + 1) & mask)
		if (tab[j].key == key)
			return (int)tab[j].nic;
	return -1;
}

int pc_put_mac(struct pc_tables *t, uint64_t mac, uint32_t nic, uint32_t *other)
{
	return put64(t->mac, t->mac_mask, mac, nic, other);
}

int pc_put_ip(struct pc_tables *t, const struct lpm_prefix *h, uint32_t nic, uint32_t *other)
{
	if (h->family == 4)
		return put64(t->ip4, t->ip4_mask, pc_rd32(h->addr), nic, other);
	unsigned __int128 key = pc_rd128(h->addr);
	size_t j = mix128(key) & t->ip6_mask;
	for (; t->ip6[j].used; j = (j + 1) & t->ip6_mask)
		if (t->ip6[j].key == key) {
			*other = t->ip6[j].nic;
			return -EEXIST;
		}
	t->ip6[j].key = key;
	t->ip6[j].nic = nic;
	t->ip6[j].used = 1;
	return 0;
}

int pc_find_mac(const struct pc_tables *t, uint64_t mac)
{
	return find64(t->mac, t->mac_mask, mac);
}

int pc_find_ip4(const struct pc_tables *t, uint32_t addr)
{
	return find64(t->ip4, t->ip4_mask, addr);
}

int pc_find_ip6(const struct pc_tables *t, unsigned __int128 key)
{
	for (size_t j = mix128(key) & t->ip6_mask; t->ip6[j].used; j = (j + 1) & t->ip6_mask)
		if (t->ip6[j].key == key)
			return (int)t->ip6[j].nic;
	return -1;
}

int pc_parse_mac(const char *s, uint64_t *mac)
{
	uint64_t v = 0;
	for (int i = 0; i < 6; i++) {
		int d = 0;
		for (int k = 0; k < 2; k++) {
			char c = *s++;
			int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (x < 0)
				return -EINVAL;
			d = d * 16 + x;
		}
		v = v << 8 | (uint64_t)d;
		if (i < 5 && *s++ != ':')
			return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	*mac = v;
	return 0;
}

static inline uint64_t mac48(const uint8_t *m)
{
	return (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 | (uint64_t)m[3] << 16 |
	       (uint64_t)m[4] << 8 | m[5];
}

static inline void bump(uint64_t *v, uint64_t d)
{
	__atomic_store_n(v, *v + d, __ATOMIC_RELAXED);
}

/* out: 1 the NIC sent the frame, 0 it received it */
static inline void count_nic(const struct pc_tables *t, struct pc_tally *c, const struct pkt *p, int nic,
			     int out, uint32_t len)
{
	unsigned cls;
	if (p->kind == PKT_IPV4)
		cls = lpm_lookup4(&t->lpm, pc_rd32(out ? p->dst_ip : p->src_ip));
	else if (p->kind == PKT_IPV6)
		cls = lpm_lookup6(&t->lpm, pc_rd128(out ? p->dst_ip : p->src_ip));
	else
		cls = p->kind == PKT_NONIP ? PC_NONIP : PC_MALFORMED;
	uint64_t *v = c->nic[nic].v[cls];
	bump(&v[out], len);
	bump(&v[2 + out], 1);
}

int pc_count(const struct pc_tables *t, struct pc_tally *c, int bound, const uint8_t *frame,
	     uint32_t caplen, uint32_t len)
{
	struct pkt p;
	int hits = 0, n;

	if (pkt_decode(frame, caplen, len, &p) == PKT_MALFORMED)
		bump(&c->why[p.why], 1);
	if (bound >= 0) {
		count_nic(t, c, &p, bound, p.src_mac && mac48(p.src_mac) == t->nics[bound].mac, len);
		return 1;
	}
	if (p.src_mac && (n = pc_find_mac(t, mac48(p.src_mac))) >= 0) {
		count_nic(t, c, &p, n, 1, len);
		hits++;
	}
	if (p.dst_mac && (n = pc_find_mac(t, mac48(p.dst_mac))) >= 0) {
		count_nic(t, c, &p, n, 0, len);
		hits++;
	}
	if (hits || !p.src_ip)
		return hits;
	if (p.kind == PKT_IPV4) {
		if ((n = pc_find_ip4(t, pc_rd32(p.src_ip))) >= 0) {
			count_nic(t, c, &p, n, 1, len);
			hits++;
		}
		if ((n = pc_find_ip4(t, pc_rd32(p.dst_ip))) >= 0) {
			count_nic(t, c, &p, n, 0, len);
			hits++;
		}
	} else {
		if ((n = pc_find_ip6(t, pc_rd128(p.src_ip))) >= 0) {
			count_nic(t, c, &p, n, 1, len);
			hits++;
		}
		if ((n = pc_find_ip6(t, pc_rd128(p.dst_ip))) >= 0) {
			count_nic(t, c, &p, n, 0, len);
			hits++;
		}
	}
	return hits;
}
