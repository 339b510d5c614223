/*
 * fuzz_pktdecode: libFuzzer target for the frame decoder and classifier
 * (collectors/pktdecode.c, pktclass.c, lpm.c): any bytes as a captured
 * frame must decode without a read past the captured bytes (the frame is
 * a heap copy of exactly that length, so ASan sees one), and what the
 * decoder says must hold: offsets inside the wire length, addresses inside
 * the captured bytes, a reason exactly when malformed. Then the frame is
 * counted on a small table, on a bridge and on a tap, and a counted frame
 * must land in exactly one class of its NIC with its wire length.
 *
 * Input: two bytes (big-endian) of how much of the rest the capture cut,
 * then the frame. Build and run: make fuzz (tests/fuzz/README.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pcap_internal.h"

static struct pc_tables tab;
static struct pc_nic nics[2];
static int ready;

static void setup(void)
{
	static const char *const pf[] = { "10.0.0.0/8", "10.1.0.0/16", "fd00::/8", "2001:db8::/32" };
	struct lpm_prefix p[4], h;
	struct tally_err e;
	uint32_t other;
	for (int i = 0; i < 4; i++) {
		if (lpm_parse(pf[i], &p[i], &e))
			abort();
		p[i].value = (uint8_t)(i % 2 ? PC_PEERING : PC_INTERNAL);
	}
	if (pc_tables_init(&tab, 2, 1, 1) || lpm_build(&tab.lpm, p, 4, PC_INTERNET, NULL, NULL))
		abort();
	nics[0].mac = 0x525400000001ULL;
	nics[1].mac = 0x02aa00000001ULL;
	pc_put_mac(&tab, nics[0].mac, 0, &other);
	pc_put_mac(&tab, nics[1].mac, 1, &other);
	if (lpm_parse("192.0.2.1", &h, &e) || pc_put_ip(&tab, &h, 1, &other))
		abort();
	tab.nics = nics;
	tab.n_nics = 2;
	ready = 1;
}

static uint64_t total(const struct pc_counts *c, int k)
{
	uint64_t s = 0;
	for (int i = 0; i < PC_COUNT; i++)
		s += c->v[i][k] + c->v[i][k + 1];
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	if (size < 2)
		return 0;
	uint32_t len = (uint32_t)(size - 2), cut = (uint32_t)(data[0] << 8 | data[1]);
	uint32_t cap = cut > len ? 0 : len - cut;
	uint8_t *f = malloc(cap ? cap : 1);
	if (!f)
		return 0;
	memcpy(f, data + 2, cap);
	struct pkt p;
	int kind = pkt_decode(f, cap, len, &p);
	if (kind != p.kind || (kind == PKT_MALFORMED) != (p.why != PKT_OK) || p.why >= PKT_WHY_COUNT)
		abort();
	if (kind != PKT_MALFORMED && p.l3_off > len)
		abort();
	if (p.src_ip) {
		uint32_t alen = kind == PKT_IPV4 ? 4 : 16;
		if (p.src_ip < f || p.src_ip + alen > f + cap || p.dst_ip < f || p.dst_ip + alen > f + cap)
			abort();
	}
	if (p.l4_known && p.l4_off > len)
		abort();
	if ((p.src_mac != NULL) != (cap >= 12))
		abort();
	/* counted: on a bridge by MAC or address, on NIC 0's tap always */
	for (int bound = -1; bound <= 0; bound++) {
		struct pc_counts cnt[2];
		struct pc_tally t = { .nic = cnt };
		memset(cnt, 0, sizeof(cnt));
		int hits = pc_count(&tab, &t, bound, f, cap, len);
		uint64_t bytes = total(&cnt[0], 0) + total(&cnt[1], 0);
		uint64_t pkts = total(&cnt[0], 2) + total(&cnt[1], 2);
		if (hits < 0 || hits > 2 || bytes != (uint64_t)hits * len || pkts != (uint64_t)hits)
			abort();
		if (bound == 0 && (hits != 1 || total(&cnt[1], 2)))
			abort();
	}
	free(f);
	return 0;
}
