/*
 * pktdecode.c: bounds-checked decoding of the headers of an Ethernet frame,
 * as far as the pcap collector needs them: MAC addresses, 802.1Q and
 * 802.1ad (QinQ) tags, the IPv4 header (options, fragments), the IPv6
 * header and its extension headers, ARP; everything else is non-IP.
 *
 * Two lengths bound every read: caplen (what the capture holds: never read
 * beyond it) and len (the frame on the wire). A header that len cannot hold
 * makes the frame malformed; a header len holds but the capture cut
 * (caplen < len, a small snap length) is "snapped": the frame cannot be
 * classified and counts as malformed too, with its own reason. Checksums
 * are not checked (a tap's counters count bad ones all the same).
 *
 * What is malformed, by reason (enum pkt_why):
 *   runt       under 14 bytes (no Ethernet header)
 *   tag-cut    a VLAN tag (TPID 0x8100, 0x88a8 or 0x9100) past the end
 *   l3-cut     fewer bytes after the link header than an IPv4 (20) or IPv6
 *              (40) header
 *   version    the IP version field is not the EtherType's
 *   ihl        an IPv4 header length under 20 bytes
 *   length     IPv4 total length under the header length or past the
 *              frame; IPv6 payload length past the frame (trailing bytes,
 *              Ethernet padding, are fine)
 *   ext-cut    an IPv6 extension header past the payload length
 *   arp-cut    an ARP message longer than the frame
 * The IPv6 extension headers walked: hop-by-hop (0), routing (43),
 * fragment (44), AH (51), destination options (60), mobility (135), HIP
 * (139), shim6 (140); a fragment with a non-zero offset ends the walk (what
 * follows is data), so does no-next-header (59) and any other value (the
 * upper layer). A walk that leaves the captured bytes stops there
 * (l4_known false) without judging the rest.
 */
#include "pcap_internal.h"

#include <string.h>

const char *const pkt_why_names[PKT_WHY_COUNT] = {
	[PKT_OK] = "ok",
	[PKT_RUNT] = "runt",
	[PKT_TAG_CUT] = "tag-cut",
	[PKT_L3_CUT] = "l3-cut",
	[PKT_BAD_VERSION] = "version",
	[PKT_BAD_IHL] = "ihl",
	[PKT_BAD_LENGTH] = "length",
	[PKT_EXT_CUT] = "ext-cut",
	[PKT_ARP_CUT] = "arp-cut",
	[PKT_SNAPPED] = "snapped",
};

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int bad(struct pkt *p, enum pkt_why why)
{
	p->kind = PKT_MALFORMED;
	p->why = (uint8_t)why;
	return PKT_MALFORMED;
}

/* The IPv6 extension headers from off (the fixed header's next header nh),
 * within end (40 + payload length, relative to the IPv6 header) and the
 * captured cap bytes of it. */
static int ipv6_walk(const uint8_t *ip, uint32_t cap, uint32_t end, uint8_t nh, struct pkt *p)
{
	uint32_t off = 40;
	for (;;) {
		uint32_t hl;
		switch (nh) {
		case 0: case 43: case 60: case 135: case 139: case 140:
		case 51:
			if (end - off < 2)
				return bad(p, PKT_EXT_CUT);
			if (cap < off + 2)
				return p->kind; /* the rest was not captured */
			hl = nh == 51 ? ((uint32_t)ip[off + 1] + 2) * 4 : ((uint32_t)ip[off + 1] + 1) * 8;
			if (end - off < hl)
				return bad(p, PKT_EXT_CUT);
			nh = ip[off];
			off += hl;
			break;
		case 44:
			if (end - off < 8)
				return bad(p, PKT_EXT_CUT);
			if (cap < off + 8)
				return p->kind;
			p->fragment = true;
			hl = rd16(ip + off + 2) & 0xfff8u;   /* fragment offset, in bytes */
			nh = ip[off];
			off += 8;
			if (hl)
				return p->kind;             /* a later fragment: data follows */
			break;
		default:
			p->proto = nh;
			p->l4_off = p->l3_off + off;
			p->l4_known = true;
			return p->kind;
		}
	}
}

int pkt_decode(const uint8_t *f, uint32_t caplen, uint32_t len, struct pkt *p)
{
	uint32_t cap = caplen < len ? caplen : len;
	uint32_t off = 12;

	memset(p, 0, sizeof(*p));
	if (cap >= 12) {
		p->dst_mac = f;
		p->src_mac = f + 6;
	}
	if (len < 14)
		return bad(p, PKT_RUNT);
	if (cap < 14)
		return bad(p, PKT_SNAPPED);
	uint16_t et = rd16(f + 12);
	while (et == 0x8100 || et == 0x88a8 || et == 0x9100) {
		if (len - off < 6)
			return bad(p, PKT_TAG_CUT);
		if (cap - off < 6)
			return bad(p, PKT_SNAPPED);
		p->n_tags++;
		off += 4;
		et = rd16(f + off);
	}
	off += 2;
	p->ethertype = et;
	p->l3_off = off;
	uint32_t rem = len - off, got = cap - off;   /* after the link header: on the wire, captured */
	const uint8_t *ip = f + off;
	if (et == 0x0800) {
		p->kind = PKT_IPV4;
		if (rem < 20)
			return bad(p, PKT_L3_CUT);
		if (got < 20)
			return bad(p, PKT_SNAPPED);
		if (ip[0] >> 4 != 4)
			return bad(p, PKT_BAD_VERSION);
		uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
		if (ihl < 20)
			return bad(p, PKT_BAD_IHL);
		uint32_t tot = rd16(ip + 2);
		if (tot < ihl || tot > rem)
			return bad(p, PKT_BAD_LENGTH);
		p->src_ip = ip + 12;
		p->dst_ip = ip + 16;
		uint16_t fo = rd16(ip + 6);
		p->fragment = (fo & 0x3fffu) != 0;   /* more fragments, or an offset */
		if ((fo & 0x1fffu) == 0 && got >= ihl) {
			p->proto = ip[9];
			p->l4_off = off + ihl;
			p->l4_known = true;
		}
		return p->kind;
	}
	if (et == 0x86dd) {
		p->kind = PKT_IPV6;
		if (rem < 40)
			return bad(p, PKT_L3_CUT);
		if (got < 40)
			return bad(p, PKT_SNAPPED);
		if (ip[0] >> 4 != 6)
			return bad(p, PKT_BAD_VERSION);
		uint32_t end = 40 + (uint32_t)rd16(ip + 4);
		if (end > rem)
			return bad(p, PKT_BAD_LENGTH);
		p->src_ip = ip + 8;
		p->dst_ip = ip + 24;
		return ipv6_walk(ip, got, end, ip[6], p);
	}
	p->kind = PKT_NONIP;
	if (et == 0x0806) {
		/* hardware type, protocol type, their lengths, operation, then
		 * two (hardware, protocol) address pairs */
		if (rem < 8)
			return bad(p, PKT_ARP_CUT);
		if (got >= 6 && 8 + 2 * ((uint32_t)ip[4] + ip[5]) > rem)
			return bad(p, PKT_ARP_CUT);
	}
	return p->kind;
}
