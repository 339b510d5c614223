/*
 * pcap_internal.h: the pure parts of the pcap collector, exposed for tests,
 * the fuzz target and the benchmark: the frame decoder (pktdecode.c), the
 * longest-prefix-match table (lpm.c) and the classifier that turns one frame
 * into counts of a NIC (pktclass.c). None of them touches libpcap.
 *
 * Invariants:
 * - the decoder reads only the captured bytes (caplen) and judges a frame
 *   by its length on the wire (len): a header that the wire length cannot
 *   hold is malformed; one the capture cut (caplen < len) is "snapped",
 *   which counts as malformed too, since it cannot be classified;
 * - an LPM table is built once and then only read, from any thread;
 * - a NIC's counters are written by one capture thread only (relaxed
 *   atomic stores) and read by the collector's read() (relaxed loads).
 */
#ifndef TALLY_PCAP_INTERNAL_H
#define TALLY_PCAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

struct tally_err;

/* ---- traffic classes (meters network.<class>.*, common/meter.h) ---- */

enum pcap_class {
	PC_INTERNET = 0,   /* an IP remote address in no configured list (the default) */
	PC_INTERNAL,       /* classes.internal */
	PC_PEERING,        /* classes.peering */
	PC_NONIP,          /* ARP, LLDP, 802.3/LLC, MPLS, ...: no IP header to classify */
	PC_MALFORMED,      /* a header the frame cannot hold (pkt_decode) */
	PC_COUNT
};
extern const char *const pcap_class_names[PC_COUNT];
/* The meter of (class, counter); counter 0..3 = in bytes, out bytes, in
 * packets, out packets (the order of the network.* meters). */
#define PCAP_METER(cls, ctr) (M_NETC_FIRST + 4 * (cls) + (ctr))

/* ---- the decoder (pktdecode.c) ---- */

enum pkt_kind { PKT_IPV4 = 0, PKT_IPV6, PKT_NONIP, PKT_MALFORMED };

enum pkt_why {
	PKT_OK = 0,
	PKT_RUNT,          /* shorter than an Ethernet header (14 bytes) */
	PKT_TAG_CUT,       /* a VLAN tag or the EtherType after it past the frame's end */
	PKT_L3_CUT,        /* an IPv4 (20) or IPv6 (40) header past the frame's end */
	PKT_BAD_VERSION,   /* IP version field not the EtherType's */
	PKT_BAD_IHL,       /* IPv4 header length under 20 bytes */
	PKT_BAD_LENGTH,    /* IPv4 total length under the header or past the frame;
			      IPv6 payload length past the frame */
	PKT_EXT_CUT,       /* an IPv6 extension header past the payload length */
	PKT_ARP_CUT,       /* an ARP message past the frame's end */
	PKT_SNAPPED,       /* the capture cut a header needed to classify */
	PKT_WHY_COUNT
};
extern const char *const pkt_why_names[PKT_WHY_COUNT];

struct pkt {
	const uint8_t *dst_mac, *src_mac;   /* into the frame; NULL when not captured */
	const uint8_t *src_ip, *dst_ip;     /* 4 or 16 bytes into the frame (IPv4/IPv6) */
	uint32_t l3_off;                    /* Ethernet header and tags, bytes */
	uint32_t l4_off;                    /* upper-layer header, when l4_known */
	uint16_t ethertype;                 /* the innermost */
	uint8_t kind;                       /* enum pkt_kind */
	uint8_t why;                        /* enum pkt_why (PKT_OK unless malformed) */
	uint8_t n_tags;                     /* 802.1Q / 802.1ad tags */
	uint8_t proto;                      /* IPv4 protocol, IPv6 last next header */
	bool fragment;                      /* an IPv4 or IPv6 fragment */
	bool l4_known;                      /* proto and l4_off are the upper layer's */
};

/* Decode the frame's headers: frame[0..caplen) captured of len bytes on the
 * wire (caplen > len is taken as len). Never reads past caplen. Returns
 * p->kind. */
int pkt_decode(const uint8_t *frame, uint32_t caplen, uint32_t len, struct pkt *p);

/* ---- longest-prefix match (lpm.c) ---- */

struct lpm_prefix {
	uint8_t family;          /* 4 or 6 */
	uint8_t plen;            /* prefix length, bits */
	uint8_t value;           /* what a lookup inside it returns */
	uint8_t addr[16];        /* network byte order; IPv4 in the first 4 */
};

/* Parse "10.0.0.0/8", "2001:db8::/32" or a bare address (a host prefix).
 * Refuses host bits set under the mask ("10.0.0.1/8"). 0 or -EINVAL with
 * the reason in e. */
int lpm_parse(const char *text, struct lpm_prefix *out, struct tally_err *e);

/* Sorted interval starts; entry i covers [start[i], start[i + 1]). */
struct lpm {
	uint32_t *v4_start;
	uint8_t *v4_val;
	size_t n4;
	unsigned __int128 *v6_start;
	uint8_t *v6_val;
	size_t n6;
};

/* Build from n prefixes; an address in none gets dflt. Two prefixes the
 * same (address and length) are refused: -EEXIST with *dup_a, *dup_b the
 * indexes of the two. 0, -EEXIST or -ENOMEM. */
int lpm_build(struct lpm *t, const struct lpm_prefix *p, size_t n, uint8_t dflt, size_t *dup_a,
	      size_t *dup_b);
void lpm_release(struct lpm *t);

/* addr in host byte order */
static inline uint8_t lpm_lookup4(const struct lpm *t, uint32_t addr)
{
	const uint32_t *s = t->v4_start;
	size_t base = 0, n = t->n4;
	while (n > 1) {
		size_t half = n / 2;
		base = s[base + half] <= addr ? base + half : base;
		n -= half;
	}
	return t->v4_val[base];
}

static inline uint8_t lpm_lookup6(const struct lpm *t, unsigned __int128 addr)
{
	const unsigned __int128 *s = t->v6_start;
	size_t base = 0, n = t->n6;
	while (n > 1) {
		size_t half = n / 2;
		base = s[base + half] <= addr ? base + half : base;
		n -= half;
	}
	return t->v6_val[base];
}

static inline uint32_t pc_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline unsigned __int128 pc_rd128(const uint8_t *p)
{
	unsigned __int128 v = 0;
	for (int i = 0; i < 16; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- the classifier (pktclass.c) ---- */

/* A NIC of the mapping file. */
struct pc_nic {
	char resource[TALLY_ID_MAX];   /* the VM's uuid */
	char mac_text[18];             /* device label: "52:54:00:12:34:56" */
	uint64_t mac;                  /* 48 bits, big-endian order */
	char iface[32];                /* its tap when captured on, "" */
	char tenant[64], name[128];    /* metadata to send, "" = none */
	bool first_of_vm;              /* the VM's first NIC: it sends the metadata */
	bool emitted[PC_COUNT * 4];    /* series sent at least once */
};

/* Per NIC counters, [class][in bytes, out bytes, in packets, out packets]. */
struct pc_counts {
	uint64_t v[PC_COUNT][4];
};

/* Open-addressing slots of the attribution tables; key 0 = empty. */
struct pc_slot64 {
	uint64_t key;                  /* MAC or IPv4 address | 1 << 63 */
	uint32_t nic;
};
struct pc_slot128 {
	unsigned __int128 key;
	uint32_t nic;
	uint32_t used;
};

/* What a capture thread needs to count a frame; read-only once built. */
struct pc_tables {
	struct lpm lpm;
	struct pc_slot64 *mac, *ip4;
	struct pc_slot128 *ip6;
	size_t mac_mask, ip4_mask, ip6_mask;
	const struct pc_nic *nics;
	size_t n_nics;
};

/* Room for n_mac MACs and n_ip4, n_ip6 addresses. 0 or -ENOMEM. */
int pc_tables_init(struct pc_tables *t, size_t n_mac, size_t n_ip4, size_t n_ip6);
void pc_tables_release(struct pc_tables *t);
/* Add a key of NIC nic. 0, or -EEXIST with *other the NIC that has it. */
int pc_put_mac(struct pc_tables *t, uint64_t mac, uint32_t nic, uint32_t *other);
int pc_put_ip(struct pc_tables *t, const struct lpm_prefix *host, uint32_t nic, uint32_t *other);

/* Counters of one capture thread. */
struct pc_tally {
	struct pc_counts *nic;         /* n_nics */
	uint64_t why[PKT_WHY_COUNT];   /* malformed frames by reason, attributed or not */
};

/* Count one frame of len bytes on the wire (caplen captured) for every NIC
 * it belongs to; returns how many (0: unattributed). bound: the NIC whose
 * tap it was captured on (the frame is that NIC's: outgoing when its source
 * MAC is the NIC's, else incoming), or -1 for a bridge or mirror port: the
 * NIC with the source MAC sent it, the NIC with the destination MAC
 * received it; when neither MAC is a NIC's, the same by IP address. */
int pc_count(const struct pc_tables *t, struct pc_tally *c, int bound, const uint8_t *frame,
	     uint32_t caplen, uint32_t len);

/* The NIC with this MAC or address, or -1. */
int pc_find_mac(const struct pc_tables *t, uint64_t mac);
int pc_find_ip4(const struct pc_tables *t, uint32_t addr);
int pc_find_ip6(const struct pc_tables *t, unsigned __int128 addr);

/* Parse "52:54:00:12:34:56" (any case). 0 or -EINVAL. */
int pc_parse_mac(const char *s, uint64_t *mac);

#endif
