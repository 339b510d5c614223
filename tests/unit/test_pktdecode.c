/*
 * test_pktdecode.c: the frame decoder (collectors/pktdecode.c) on frames
 * built byte by byte, each row's expectation worked out by hand from the
 * header layouts (RFC 791, 8200, 826; IEEE 802.1Q/ad), and the classifier
 * (collectors/pktclass.c) on top of it: which NIC, class and direction a
 * frame counts for, and with how many bytes.
 *
 * The frame builder writes: dst MAC, src MAC, tags, EtherType, then the
 * row's hex payload; every row says the wire length (len) and how much of
 * it was captured (caplen).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pcap_internal.h"
#include "testutil.h"

static size_t unhex(const char *h, uint8_t *out, size_t max)
{
	size_t n = 0;
	while (*h) {
		if (*h == ' ') {
			h++;
			continue;
		}
		unsigned v;
		ck_assert_msg(sscanf(h, "%2x", &v) == 1, "bad hex at '%s'", h);
		ck_assert(n < max);
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

#define DST "02aa00000001"
#define SRC "525400000001"
/* IPv4 header, 20 bytes: version/IHL, TOS, total length, id, flags+offset,
 * TTL, protocol 253, checksum, 10.0.0.5 -> 8.8.8.8 */
#define V4(vihl, tot, frag, proto) vihl "00" tot "0001" frag "40" proto "0000" "0a000005" "08080808"
/* IPv6 header, 40 bytes: version 6, payload length, next header, hop limit,
 * fd00::1 -> 2001:db8::2 */
#define V6(ver, plen, nh) ver "0000000" plen nh "40" "fd000000000000000000000000000001" \
	"20010db8000000000000000000000002"

static const struct drow {
	const char *name;
	const char *hex;        /* the whole frame */
	int extra;              /* zero bytes after hex on the wire (payload, padding) */
	int cut;                /* captured: hex length + extra - cut */
	int kind, why, tags, l3_off, frag, l4_known, proto, l4_off;
} rows[] = {
	/* plain IPv4, 30 bytes of payload: total length 50 = 0x32 */
	{ "ipv4", DST SRC "0800" V4("45", "0032", "0000", "fd"), 30, 0, PKT_IPV4, PKT_OK, 0, 14, 0, 1, 253, 34 },
	/* Ethernet padding after a short datagram is fine: total 20, frame 60 */
	{ "ipv4 padded", DST SRC "0800" V4("45", "0014", "0000", "fd"), 26, 0, PKT_IPV4, PKT_OK, 0, 14, 0, 1, 253, 34 },
	/* options: IHL 6 = 24 bytes, total 24 + 10 */
	{ "ipv4 options", DST SRC "0800" V4("46", "0022", "0000", "06") "01010100", 10, 0, PKT_IPV4, PKT_OK, 0, 14,
	  0, 1, 6, 38 },
	/* first fragment: MF set, offset 0: the upper layer is there */
	{ "ipv4 first fragment", DST SRC "0800" V4("45", "001c", "2000", "11"), 8, 0, PKT_IPV4, PKT_OK, 0, 14, 1, 1,
	  17, 34 },
	/* a later fragment: offset 185 (x8 = 1480), no upper layer header */
	{ "ipv4 later fragment", DST SRC "0800" V4("45", "001c", "00b9", "11"), 8, 0, PKT_IPV4, PKT_OK, 0, 14, 1, 0,
	  0, 0 },
	/* DF alone is not a fragment */
	{ "ipv4 don't fragment", DST SRC "0800" V4("45", "001c", "4000", "11"), 8, 0, PKT_IPV4, PKT_OK, 0, 14, 0, 1,
	  17, 34 },
	{ "802.1Q", DST SRC "8100" "0064" "0800" V4("45", "0014", "0000", "fd"), 0, 0, PKT_IPV4, PKT_OK, 1, 18, 0, 1,
	  253, 38 },
	{ "QinQ 88a8", DST SRC "88a8" "0064" "8100" "00c8" "0800" V4("45", "0014", "0000", "fd"), 0, 0, PKT_IPV4,
	  PKT_OK, 2, 22, 0, 1, 253, 42 },
	{ "QinQ 9100", DST SRC "9100" "0064" "8100" "00c8" "86dd" V6("6", "0000", "3b"), 0, 0, PKT_IPV6, PKT_OK, 2, 22,
	  0, 1, 59, 62 },
	/* IPv6, hop-by-hop (PadN, 8 bytes) then UDP */
	{ "ipv6 hbh", DST SRC "86dd" V6("6", "0010", "00") "1100" "0104" "00000000" "0000000000000000", 0, 0, PKT_IPV6,
	  PKT_OK, 0, 14, 0, 1, 17, 62 },
	/* routing (8) -> destination options (16: len 1) -> TCP */
	{ "ipv6 routing, dstopts", DST SRC "86dd" V6("6", "0018", "2b") "3c00000000000000"
	  "0601" "010c" "000000000000000000000000", 0, 0, PKT_IPV6, PKT_OK, 0, 14, 0, 1, 6, 78 },
	/* AH: (len 1 + 2) x 4 = 12 bytes, then proto 253 */
	{ "ipv6 ah", DST SRC "86dd" V6("6", "000c", "33") "fd01" "0000" "0000000000000000", 0, 0, PKT_IPV6, PKT_OK, 0, 14,
	  0, 1, 253, 66 },
	/* fragment header, offset 0, M set: the walk goes on to UDP */
	{ "ipv6 first fragment", DST SRC "86dd" V6("6", "0008", "2c") "11000001" "00000007", 0, 0, PKT_IPV6, PKT_OK, 0,
	  14, 1, 1, 17, 62 },
	/* offset 8 x 1: a later fragment, no upper layer */
	{ "ipv6 later fragment", DST SRC "86dd" V6("6", "0010", "2c") "11000008" "00000007", 8, 0, PKT_IPV6, PKT_OK, 0,
	  14, 1, 0, 0, 0 },
	{ "arp", DST SRC "0806" "0001" "0800" "06" "04" "0001" SRC "c0000201" "000000000000" "c0000202", 18, 0,
	  PKT_NONIP, PKT_OK, 0, 14, 0, 0, 0, 0 },
	{ "lldp", DST SRC "88cc" "0000", 44, 0, PKT_NONIP, PKT_OK, 0, 14, 0, 0, 0, 0 },
	/* 802.3 with a length field, LLC */
	{ "802.3 llc", DST SRC "0026" "424203", 43, 0, PKT_NONIP, PKT_OK, 0, 14, 0, 0, 0, 0 },
	/* snap length: headers whole, payload cut: still classified */
	{ "ipv4 snapped payload", DST SRC "0800" V4("45", "05dc", "0000", "fd"), 1480, 1400, PKT_IPV4, PKT_OK, 0, 14,
	  0, 1, 253, 34 },
	/* the capture holds the IPv6 header and no byte of the hop-by-hop
	 * header after it: classified, upper layer unknown */
	{ "ipv6 snapped in ext", DST SRC "86dd" V6("6", "0100", "00") "1100" "0104" "00000000", 250, 258, PKT_IPV6,
	  PKT_OK, 0, 14, 0, 0, 0, 0 },

	/* malformed */
	{ "runt 13", DST SRC "08", 0, 0, PKT_MALFORMED, PKT_RUNT, 0, 0, 0, 0, 0, 0 },
	{ "runt 5", "0011223344", 0, 0, PKT_MALFORMED, PKT_RUNT, 0, 0, 0, 0, 0, 0 },
	{ "tag cut", DST SRC "8100" "00", 0, 0, PKT_MALFORMED, PKT_TAG_CUT, 0, 0, 0, 0, 0, 0 },
	{ "second tag cut", DST SRC "88a8" "0064" "8100", 0, 0, PKT_MALFORMED, PKT_TAG_CUT, 1, 0, 0, 0, 0, 0 },
	{ "ipv4 cut", DST SRC "0800" "4500001400", 0, 0, PKT_MALFORMED, PKT_L3_CUT, 0, 14, 0, 0, 0, 0 },
	{ "ipv4 version 6", DST SRC "0800" V4("65", "0014", "0000", "fd"), 0, 0, PKT_MALFORMED, PKT_BAD_VERSION, 0, 14,
	  0, 0, 0, 0 },
	{ "ipv4 ihl 4", DST SRC "0800" V4("44", "0014", "0000", "fd"), 0, 0, PKT_MALFORMED, PKT_BAD_IHL, 0, 14, 0, 0,
	  0, 0 },
	{ "ipv4 total < ihl", DST SRC "0800" V4("46", "0014", "0000", "fd") "00000000", 0, 0, PKT_MALFORMED,
	  PKT_BAD_LENGTH, 0, 14, 0, 0, 0, 0 },
	/* total 100, but only 20 + 30 on the wire */
	{ "ipv4 total > frame", DST SRC "0800" V4("45", "0064", "0000", "fd"), 30, 0, PKT_MALFORMED, PKT_BAD_LENGTH, 0,
	  14, 0, 0, 0, 0 },
	{ "ipv6 cut", DST SRC "86dd" "60000000000000", 20, 0, PKT_MALFORMED, PKT_L3_CUT, 0, 14, 0, 0, 0, 0 },
	{ "ipv6 version 4", DST SRC "86dd" V6("4", "0000", "3b"), 0, 0, PKT_MALFORMED, PKT_BAD_VERSION, 0, 14, 0, 0, 0,
	  0 },
	{ "ipv6 payload > frame", DST SRC "86dd" V6("6", "0020", "fd"), 31, 0, PKT_MALFORMED, PKT_BAD_LENGTH, 0, 14, 0,
	  0, 0, 0 },
	/* hop-by-hop says 16 bytes (len 1), payload length 8 */
	{ "ipv6 ext past payload", DST SRC "86dd" V6("6", "0008", "00") "3b01" "0104" "00000000", 8, 0, PKT_MALFORMED,
	  PKT_EXT_CUT, 0, 14, 0, 0, 0, 0 },
	/* a fragment header needs 8 bytes, payload length 4 */
	{ "ipv6 fragment cut", DST SRC "86dd" V6("6", "0004", "2c") "11000000", 0, 0, PKT_MALFORMED, PKT_EXT_CUT, 0,
	  14, 0, 0, 0, 0 },
	/* hln 6 + pln 4: 28 bytes needed, 20 there */
	{ "arp cut", DST SRC "0806" "0001" "0800" "06" "04" "0001" SRC "c0000201" "0000", 0, 0, PKT_MALFORMED,
	  PKT_ARP_CUT, 0, 14, 0, 0, 0, 0 },
	/* the capture cut the IPv4 header: cannot classify */
	{ "ipv4 snapped header", DST SRC "0800" V4("45", "05dc", "0000", "fd"), 1480, 1490, PKT_MALFORMED, PKT_SNAPPED,
	  0, 14, 0, 0, 0, 0 },
	{ "tag snapped", DST SRC "8100" "0064" "0800" V4("45", "05dc", "0000", "fd"), 1480, 1501, PKT_MALFORMED,
	  PKT_SNAPPED, 0, 0, 0, 0, 0, 0 },
};

START_TEST(test_decode_rows)
{
	const struct drow *r = &rows[_i];
	uint8_t buf[2048];
	memset(buf, 0, sizeof(buf));
	size_t n = unhex(r->hex, buf, sizeof(buf));
	uint32_t len = (uint32_t)n + (uint32_t)r->extra, cap = len - (uint32_t)r->cut;
	/* what was not captured must not be read: give the decoder a heap copy
	 * of exactly cap bytes (ASan catches a read past it) */
	uint8_t *f = malloc(cap ? cap : 1);
	memcpy(f, buf, cap);
	struct pkt p;
	int kind = pkt_decode(f, cap, len, &p);
	ck_assert_msg(kind == r->kind && p.kind == r->kind, "%s: kind %d, want %d (why %s)", r->name, kind, r->kind,
		      pkt_why_names[p.why]);
	ck_assert_msg(p.why == r->why, "%s: why %s, want %s", r->name, pkt_why_names[p.why], pkt_why_names[r->why]);
	ck_assert_msg(p.n_tags == r->tags, "%s: %d tags, want %d", r->name, p.n_tags, r->tags);
	if (r->l3_off)
		ck_assert_msg(p.l3_off == (uint32_t)r->l3_off, "%s: l3 at %u, want %d", r->name, p.l3_off, r->l3_off);
	ck_assert_msg(p.fragment == (r->frag != 0), "%s: fragment %d", r->name, p.fragment);
	ck_assert_msg(p.l4_known == (r->l4_known != 0), "%s: l4_known %d", r->name, p.l4_known);
	if (r->l4_known) {
		ck_assert_msg(p.proto == r->proto, "%s: proto %d, want %d", r->name, p.proto, r->proto);
		ck_assert_msg(p.l4_off == (uint32_t)r->l4_off, "%s: l4 at %u, want %d", r->name, p.l4_off, r->l4_off);
	}
	if (kind == PKT_IPV4) {
		ck_assert(p.src_ip == f + p.l3_off + 12 && p.dst_ip == f + p.l3_off + 16);
		ck_assert_int_eq(pc_rd32(p.dst_ip), 0x08080808);
	}
	if (kind == PKT_IPV6) {
		ck_assert(p.src_ip == f + p.l3_off + 8 && p.dst_ip == f + p.l3_off + 24);
		ck_assert_int_eq(p.dst_ip[15], 2);
	}
	if (cap >= 12)
		ck_assert(p.dst_mac == f && p.src_mac == f + 6);
	else
		ck_assert(p.dst_mac == NULL && p.src_mac == NULL);
	free(f);
}
END_TEST

/* caplen larger than len (a bad file) is taken as len: nothing past len */
START_TEST(test_caplen_over_len)
{
	uint8_t buf[64];
	size_t n = unhex(DST SRC "0800" V4("45", "0064", "0000", "fd"), buf, sizeof(buf));
	struct pkt p;
	ck_assert_int_eq(pkt_decode(buf, (uint32_t)n + 20, (uint32_t)n, &p), PKT_MALFORMED);
	ck_assert_int_eq(p.why, PKT_BAD_LENGTH);
	ck_assert_int_eq(pkt_decode(buf, 0, 0, &p), PKT_MALFORMED);
	ck_assert_int_eq(p.why, PKT_RUNT);
}
END_TEST

/* ---- the classifier ---- */

#define MAC_A 0x525400000001ULL
#define MAC_B 0x525400000002ULL

struct fixture {
	struct pc_nic nics[3];
	struct pc_tables t;
	struct pc_counts cnt[3];
	struct pc_tally tally;
};

static void fixture_init(struct fixture *x)
{
	struct tally_err e = { 0 };
	struct lpm_prefix pf[3];
	memset(x, 0, sizeof(*x));
	ck_assert_int_eq(lpm_parse("10.0.0.0/8", &pf[0], &e), 0);
	pf[0].value = PC_INTERNAL;
	ck_assert_int_eq(lpm_parse("10.1.0.0/16", &pf[1], &e), 0);
	pf[1].value = PC_PEERING;
	ck_assert_int_eq(lpm_parse("fd00::/8", &pf[2], &e), 0);
	pf[2].value = PC_INTERNAL;
	ck_assert_int_eq(pc_tables_init(&x->t, 3, 1, 1), 0);
	ck_assert_int_eq(lpm_build(&x->t.lpm, pf, 3, PC_INTERNET, NULL, NULL), 0);
	x->nics[0].mac = MAC_A;
	x->nics[1].mac = MAC_B;
	x->nics[2].mac = 0x525400000003ULL;   /* C: seen by address only */
	uint32_t other;
	for (uint32_t i = 0; i < 3; i++)
		ck_assert_int_eq(pc_put_mac(&x->t, x->nics[i].mac, i, &other), 0);
	struct lpm_prefix c4, c6;
	ck_assert_int_eq(lpm_parse("192.0.2.50", &c4, &e), 0);
	ck_assert_int_eq(lpm_parse("2001:db8::50", &c6, &e), 0);
	ck_assert_int_eq(pc_put_ip(&x->t, &c4, 2, &other), 0);
	ck_assert_int_eq(pc_put_ip(&x->t, &c6, 2, &other), 0);
	ck_assert_int_eq(pc_put_ip(&x->t, &c6, 1, &other), -EEXIST);
	ck_assert_uint_eq(other, 2);
	ck_assert_int_eq(pc_put_mac(&x->t, MAC_B, 0, &other), -EEXIST);
	ck_assert_uint_eq(other, 1);
	x->t.nics = x->nics;
	x->t.n_nics = 3;
	x->tally.nic = x->cnt;
}

static int count_hex(struct fixture *x, int bound, const char *hex, int extra)
{
	uint8_t buf[2048];
	memset(buf, 0, sizeof(buf));
	size_t n = unhex(hex, buf, sizeof(buf)) + (size_t)extra;
	return pc_count(&x->t, &x->tally, bound, buf, (uint32_t)n, (uint32_t)n);
}

#define IN_B 0
#define OUT_B 1
#define IN_P 2
#define OUT_P 3
#define MA "525400000001"
#define MB "525400000002"
#define RT "02aa00000001"

START_TEST(test_classify)
{
	struct fixture x;
	fixture_init(&x);
	/* A -> router, to 10.1.2.3 (peering inside internal): 14 + 20 + 30 */
	ck_assert_int_eq(count_hex(&x, -1, RT MA "0800" "45000032000100004011000"
				   "00a0000050a010203", 30), 1);
	ck_assert_uint_eq(x.cnt[0].v[PC_PEERING][OUT_B], 64);
	ck_assert_uint_eq(x.cnt[0].v[PC_PEERING][OUT_P], 1);
	/* router -> A from 10.2.0.1 (internal), 802.1Q tagged: 18 + 20 + 22 */
	ck_assert_int_eq(count_hex(&x, -1, MA RT "8100" "0005" "0800" "4500002a00010000401100000a0200010a000005",
				   22), 1);
	ck_assert_uint_eq(x.cnt[0].v[PC_INTERNAL][IN_B], 60);
	/* A -> B, 10.0.0.5 -> 8.8.8.8: A's outgoing by its remote (the
	 * destination, internet) and B's incoming by its remote (the source,
	 * internal) */
	ck_assert_int_eq(count_hex(&x, -1, MB MA "0800" "450000140001000040fd00000a00000508080808", 26), 2);
	ck_assert_uint_eq(x.cnt[0].v[PC_INTERNET][OUT_B], 60);
	ck_assert_uint_eq(x.cnt[1].v[PC_INTERNAL][IN_B], 60);
	ck_assert_uint_eq(x.cnt[1].v[PC_INTERNET][IN_B], 0);
	/* B sends ARP (broadcast): B's non-IP outgoing; nobody's incoming */
	ck_assert_int_eq(count_hex(&x, -1, "ffffffffffff" MB "0806" "0001080006040001" MB "c0000201000000000000c0000202",
				   18), 1);
	ck_assert_uint_eq(x.cnt[1].v[PC_NONIP][OUT_B], 60);
	/* router -> somebody, IPv6 to C's address from fd00::1: C's internal incoming */
	ck_assert_int_eq(count_hex(&x, -1, "02bb00000002" RT "86dd" "6000000000003b40"
				   "fd000000000000000000000000000001" "20010db8000000000000000000000050", 6), 1);
	ck_assert_uint_eq(x.cnt[2].v[PC_INTERNAL][IN_B], 60);
	/* frames of nobody */
	ck_assert_int_eq(count_hex(&x, -1, "02bb00000002" RT "0800" "450000140001000040fd00000a00000508080808", 26), 0);
	ck_assert_int_eq(count_hex(&x, -1, "02bb00000002" RT "88b5", 46), 0);
	/* a malformed frame from A (IHL 4): A's malformed outgoing, its reason counted */
	ck_assert_int_eq(count_hex(&x, -1, RT MA "0800" "440000140001000040fd00000a00000508080808", 26), 1);
	ck_assert_uint_eq(x.cnt[0].v[PC_MALFORMED][OUT_B], 60);
	ck_assert_uint_eq(x.tally.why[PKT_BAD_IHL], 1);
	/* a runt with no MACs: nobody's, but counted as malformed */
	ck_assert_int_eq(count_hex(&x, -1, "0011223344", 0), 0);
	ck_assert_uint_eq(x.tally.why[PKT_RUNT], 1);
	/* on A's tap (bound): everything is A's; the source MAC tells the
	 * direction, even for a frame between two other MACs */
	ck_assert_int_eq(count_hex(&x, 0, MB RT "0800" "450000140001000040fd00000808080808080808", 26), 1);
	ck_assert_uint_eq(x.cnt[0].v[PC_INTERNET][IN_B], 60);
	ck_assert_uint_eq(x.cnt[1].v[PC_INTERNET][OUT_B], 0);
	ck_assert_int_eq(count_hex(&x, 0, "0011223344", 0), 1);   /* a runt on a tap: incoming */
	ck_assert_uint_eq(x.cnt[0].v[PC_MALFORMED][IN_B], 5);
	ck_assert_uint_eq(x.cnt[0].v[PC_MALFORMED][IN_P], 1);
	pc_tables_release(&x.t);
}
END_TEST

START_TEST(test_parse_mac)
{
	uint64_t m = 0;
	ck_assert_int_eq(pc_parse_mac("52:54:00:AB:cd:0f", &m), 0);
	ck_assert_uint_eq(m, 0x525400abcd0fULL);
	const char *bad[] = { "", "52:54:00:ab:cd", "52:54:00:ab:cd:0f:11", "52-54-00-ab-cd-0f", "5:54:00:ab:cd:0f",
			      "52:54:00:ab:cd:0g", "52:54:00:ab:cd:0f ", NULL };
	for (int i = 0; bad[i]; i++)
		ck_assert_msg(pc_parse_mac(bad[i], &m) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pktdecode");
	TCase *tc = tcase_create("pktdecode");
	tcase_add_loop_test(tc, test_decode_rows, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_caplen_over_len);
	tcase_add_test(tc, test_classify);
	tcase_add_test(tc, test_parse_mac);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
