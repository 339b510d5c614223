/*
 * fuzz_snmp: libFuzzer target for the SNMP collector's response handling
 * (collectors/snmp_parse.c). The bytes become a walk of GETBULK answers:
 * which columns are asked, then varbinds (an OID near or inside the columns,
 * any type, any number, any string) answer by answer, until the walk ends
 * or the bytes run out. Every answer must be taken or refused, never crash,
 * leak, loop or read out of bounds; the rows then go through the port and
 * host arithmetic twice (a previous and a current poll).
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "snmp_internal.h"

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in *in, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++) {
		v = v << 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

static const uint8_t types[] = { SNMP_T_INTEGER, SNMP_T_OCTETS, SNMP_T_NULL, SNMP_T_OID, SNMP_T_IPADDR,
				 SNMP_T_COUNTER32, SNMP_T_GAUGE32, SNMP_T_TIMETICKS, SNMP_T_COUNTER64,
				 SNMP_T_NOSUCHOBJECT, SNMP_T_NOSUCHINSTANCE, SNMP_T_ENDOFMIBVIEW };

static void ports(const struct snmp_walk *w, struct snmp_port_state *st, int64_t t, uint32_t up, bool reboot)
{
	struct sample out[SNMP_PORT_SAMPLES];
	struct snmp_poll_ctx cx = { .now_ns = t, .uptime_cs = up, .rebooted = reboot,
				    .boot_ns = t - (int64_t)up * 10000000, .view = (enum snmp_view)(up & 1) };
	for (size_t i = 0; i < w->n_rows && i < 64; i++) {
		struct snmp_port_note note;
		if (w->rows[i].table == ST_IF)
			snmp_port_samples(&st[i], &w->rows[i], "t:x", &cx, out, &note);
	}
	struct sample hs[64];
	snmp_host_samples(w, "t", t, hs, 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	static struct snmp_port_state st[64];
	memset(st, 0, sizeof(st));
	for (int poll = 0; poll < 2 && in.n; poll++) {
		struct snmp_walk w;
		struct tally_err e;
		uint32_t cols = (uint32_t)take(&in, 4);
		if (snmp_walk_init(&w, cols ? cols : 1, 1 + take(&in, 1)))
			return 0;
		for (int req = 0; req < 64 && !snmp_walk_finished(&w) && in.n; req++) {
			int asked[SC_COUNT];
			size_t nc = snmp_walk_pending(&w, asked);
			bool up = !w.have_uptime;
			struct snmp_vb vb[48];
			unsigned long oids[48][SNMP_OID_MAX + 2];
			unsigned long objid[12];
			unsigned char str[80];
			size_t n = take(&in, 1) % 48;
			for (size_t k = 0; k < n; k++) {
				/* mostly near the column this varbind answers */
				int c = asked[(k + (up ? 0 : 1)) % (nc ? nc : 1)];
				size_t len = snmp_cols[c].oid_len;
				memcpy(oids[k], snmp_cols[c].oid, len * sizeof(unsigned long));
				uint8_t shape = (uint8_t)take(&in, 1);
				if (shape & 1)
					len = shape % (SNMP_OID_MAX + 2);
				for (size_t j = snmp_cols[c].oid_len; j < len; j++)
					oids[k][j] = 0;
				if (len > snmp_cols[c].oid_len)
					oids[k][snmp_cols[c].oid_len] = take(&in, 4);
				if (k == 0 && up && (shape & 2)) {
					memcpy(oids[k], snmp_sysuptime_oid, sizeof(snmp_sysuptime_oid));
					oids[k][SNMP_SYSUPTIME_LEN] = 0;
					len = SNMP_SYSUPTIME_LEN + 1;
				}
				memset(&vb[k], 0, sizeof(vb[k]));
				vb[k].oid = oids[k];
				vb[k].oid_len = len;
				vb[k].type = types[take(&in, 1) % sizeof(types)];
				vb[k].num = take(&in, 8);
				if (vb[k].type == SNMP_T_OCTETS) {
					size_t sl = take(&in, 1) % sizeof(str);
					for (size_t j = 0; j < sl; j++)
						str[j] = (unsigned char)take(&in, 1);
					vb[k].str = str;
					vb[k].len = sl;
				} else if (vb[k].type == SNMP_T_OID) {
					size_t ol = take(&in, 1) % 12;
					for (size_t j = 0; j < ol; j++)
						objid[j] = take(&in, 1);
					vb[k].objid = objid;
					vb[k].len = ol;
				}
			}
			if (snmp_walk_feed(&w, asked, nc, up, vb, n, &e))
				break;
		}
		ports(&w, st, 1000000000LL * (1 + poll), w.uptime_cs, poll && (w.uptime_cs & 2));
		snmp_walk_release(&w);
	}
	return 0;
}
