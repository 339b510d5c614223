/*
 * test_pcap.c: the pcap collector (collectors/pcap.c) through its ops, on a
 * capture file written here and a sink that records: what read() sends at
 * each time (the file's packets up to it, cumulative, with the first
 * packet's time as origin), which series appear when, the capture's own
 * counters and the VM metadata; and every configuration mistake, refused
 * with its file:line:col and key. tests/integration/pcap_oracle.sh checks
 * the counts against tshark; pcap_live.sh captures live.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "pcap_internal.h"
#include "tallytime.h"
#include "testutil.h"

extern const struct collector_ops pcap_collector;

static char dir[128];

struct rec {
	struct sample s[512];
	int n;
	struct resource_meta m[8];
	int n_meta;
};

static int rec_sample(void *ctx, const char *agent, const struct sample *s)
{
	struct rec *r = ctx;
	ck_assert_ptr_null(agent);
	ck_assert_int_lt(r->n, 512);
	r->s[r->n++] = *s;
	return 0;
}

static int rec_meta(void *ctx, const char *agent, const struct resource_meta *m)
{
	struct rec *r = ctx;
	ck_assert_int_lt(r->n_meta, 8);
	r->m[r->n_meta++] = *m;
	return 0;
}

static int rec_event(void *ctx, const char *agent, const struct lifecycle_event *ev)
{
	ck_abort_msg("the pcap collector sends no events");
	return 0;
}

/* the value of (resource, meter name, device) in r, or -1 */
static int64_t val(const struct rec *r, const char *res, const char *meter, const char *dev)
{
	int m = meter_lookup(meter);
	ck_assert_msg(m >= 0, "no meter %s", meter);
	for (int i = 0; i < r->n; i++)
		if (r->s[i].meter == m && !strcmp(r->s[i].resource, res) && !strcmp(r->s[i].device, dev))
			return (int64_t)r->s[i].v.counter;
	return -1;
}

static void put32(FILE *f, uint32_t v)
{
	ck_assert_int_eq(fwrite(&v, 4, 1, f), 1);
}

/* a nanosecond pcap file of frames (hex, wire length) at t_s[i] seconds */
static void write_pcap(const char *path, const char *const *hex, const uint32_t *wire, const uint32_t *t_s, int n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	put32(f, 0xa1b23c4d);
	uint16_t ver[2] = { 2, 4 };
	ck_assert_int_eq(fwrite(ver, 2, 2, f), 2);
	put32(f, 0);
	put32(f, 0);
	put32(f, 262144);
	put32(f, 1);
	for (int i = 0; i < n; i++) {
		uint8_t b[1600];
		size_t len = 0;
		for (const char *h = hex[i]; h[0] && h[1]; h += 2) {
			unsigned v;
			ck_assert_int_eq(sscanf(h, "%2x", &v), 1);
			b[len++] = (uint8_t)v;
		}
		put32(f, t_s[i]);
		put32(f, 500000000u);   /* + 0.5 s */
		put32(f, (uint32_t)len);
		put32(f, wire[i]);
		ck_assert_int_eq(fwrite(b, 1, len, f), len);
	}
	fclose(f);
}

static void write_file(const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* configure from YAML text (the collector's own map); returns rc */
static int configure(const char *yaml, void **st, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	char text[4096];
	/* every path in the text is relative to the scratch directory */
	snprintf(text, sizeof(text), "%s", yaml);
	for (char *p; (p = strstr(text, "@D")) != NULL;) {
		char rest[4096];
		snprintf(rest, sizeof(rest), "%s%s", dir, p + 2);
		snprintf(p, sizeof(text) - (size_t)(p - text), "%s", rest);
	}
	ck_assert_int_eq(cfg_load_string("t.yaml", text, strlen(text), &root, e), 0);
	struct collector_env env = { .agent_id = "host-1", .interval_ns = 60 * NS_PER_SEC };
	*st = NULL;
	int rc = pcap_collector.configure(cfg_get(root, "pcap"), &env, st, e);
	cfg_free(root);
	return rc;
}

#define UA "6b0f3c2a-0000-4000-8000-00000000000a"
#define UB "6b0f3c2a-0000-4000-8000-00000000000b"
#define MA "525400000001"
#define MB "525400000002"
#define RT "02aa00000001"
/* IPv4, protocol 253, 20 + 26 bytes: src -> dst (8 hex digits each) */
#define V4(src, dst) "0800" "4500002e00010000" "40fd0000" src dst "0000000000000000000000000000000000000000000000000000"

static void setup(void)
{
	tu_mkdtemp(dir, sizeof(dir), "pcapunit");
	write_file("nics.yaml", "- {uuid: " UA ", mac: '52:54:00:00:00:01', tenant: acme, name: vm-a}\n"
				"- {uuid: " UB ", mac: '52:54:00:00:00:02', ips: [192.0.2.9]}\n");
}

static void teardown(void)
{
	tu_rmrf(dir);
}

static struct collector_metric got_m[32];
static int n_put;

static void put_metric(void *ctx, const struct collector_metric *m)
{
	ck_assert_int_lt(n_put, 32);
	got_m[n_put++] = *m;
}

START_TEST(test_offline_reads_up_to_now)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/t.pcap", dir);
	const char *hex[] = {
		RT MA V4("0a000001", "08080808"),      /* A sends to the internet, 60 bytes, t 100.5 */
		MA RT V4("0a010203", "0a000001"),      /* A receives from internal, t 101.5 */
		RT MA V4("0a000001", "0a010203"),      /* A sends internal, t 200.5 */
		"02bb00000002" RT V4("08080808", "c0000209"),   /* to B by address, t 200.5 */
		"02bb00000002" RT "88b5" "00000000000000000000000000000000000000000000000000000000"
		"00000000000000000000000000000000000000000000",   /* nobody's, t 300.5 */
	};
	uint32_t wire[] = { 60, 60, 1514, 60, 64 };   /* the third was cut by the capture at 60 */
	uint32_t t[] = { 100, 101, 200, 200, 300 };
	write_pcap(path, hex, wire, t, 5);
	void *st;
	struct tally_err e = { 0 };
	ck_assert_int_eq(configure("pcap:\n  file: @D/t.pcap\n  mapping: @D/nics.yaml\n"
				   "  classes: {internal: [10.0.0.0/8]}\n", &st, &e), 0);
	ck_assert_int_eq(pcap_collector.init(st, 0, &e), 0);
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	int64_t origin = 100 * NS_PER_SEC + 500000000;

	/* before the first packet: nothing at all */
	ck_assert_int_eq(pcap_collector.read(st, 50 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(r->n, 0);
	ck_assert_int_eq(r->n_meta, 0);

	/* at 150 s: the first two frames */
	ck_assert_int_eq(pcap_collector.read(st, 150 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(val(r, UA, "network.internet.outgoing.bytes", "52:54:00:00:00:01"), 60);
	ck_assert_int_eq(val(r, UA, "network.internet.outgoing.packets", "52:54:00:00:00:01"), 1);
	ck_assert_int_eq(val(r, UA, "network.internal.incoming.bytes", "52:54:00:00:00:01"), 60);
	ck_assert_int_eq(val(r, UA, "network.internal.outgoing.bytes", "52:54:00:00:00:01"), -1);  /* not yet */
	ck_assert_int_eq(val(r, UB, "network.internet.incoming.bytes", "52:54:00:00:00:02"), -1);
	ck_assert_int_eq(val(r, "host-1:pcap", "pcap.received.packets", "t.pcap"), 2);
	ck_assert_int_eq(val(r, "host-1:pcap", "pcap.unattributed.packets", "t.pcap"), 0);
	ck_assert_int_eq(val(r, "host-1:pcap", "pcap.dropped.packets", "t.pcap"), -1);  /* no drops offline */
	for (int i = 0; i < r->n; i++) {
		ck_assert_int_eq(r->s[i].time_ns, 150 * NS_PER_SEC);
		ck_assert_int_eq(r->s[i].origin_ns, origin);
		ck_assert_int_eq(r->s[i].kind, SAMPLE_CUMULATIVE);
	}
	/* metadata: the capture, and A (B has no tenant or name) */
	ck_assert_int_eq(r->n_meta, 2);
	ck_assert_str_eq(r->m[0].resource, "host-1:pcap");
	ck_assert_str_eq(r->m[0].type, "capture");
	ck_assert_str_eq(r->m[1].resource, UA);
	ck_assert_str_eq(r->m[1].tenant, "acme");
	ck_assert_str_eq(r->m[1].name, "vm-a");

	/* at 250 s: cumulative, the cut frame counted with its wire length */
	r->n = 0;
	ck_assert_int_eq(pcap_collector.read(st, 250 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(val(r, UA, "network.internet.outgoing.bytes", "52:54:00:00:00:01"), 60);
	ck_assert_int_eq(val(r, UA, "network.internal.outgoing.bytes", "52:54:00:00:00:01"), 1514);
	ck_assert_int_eq(val(r, UB, "network.internet.incoming.bytes", "52:54:00:00:00:02"), 60);
	ck_assert_int_eq(val(r, "host-1:pcap", "pcap.received.packets", "t.pcap"), 4);
	ck_assert_int_eq(r->n_meta, 2);   /* metadata once */

	/* at 400 s: the unattributed frame; every series again, unchanged */
	r->n = 0;
	ck_assert_int_eq(pcap_collector.read(st, 400 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(val(r, "host-1:pcap", "pcap.unattributed.packets", "t.pcap"), 1);
	ck_assert_int_eq(val(r, "host-1:pcap", "pcap.received.packets", "t.pcap"), 5);
	ck_assert_int_eq(val(r, UA, "network.internal.outgoing.bytes", "52:54:00:00:00:01"), 1514);
	/* 2 capture counters + A: 3 classes x 2 (bytes, packets) + B: 2 */
	ck_assert_int_eq(r->n, 2 + 6 + 2);
	/* /metrics: no malformed frame in this file, every reason at 0, no
	 * capture state offline */
	n_put = 0;
	pcap_collector.metrics(st, put_metric, NULL);
	ck_assert_int_eq(n_put, PKT_WHY_COUNT - 1);
	for (int i = 0; i < n_put; i++) {
		ck_assert_str_eq(got_m[i].name, "tally_pcap_malformed_frames");
		ck_assert(got_m[i].counter);
		ck_assert(got_m[i].value == 0);
	}
	pcap_collector.free(st);
	free(r);
}
END_TEST

/* /metrics counts malformed frames by reason: a runt and two frames whose
 * IPv4 header length is under 20 */
START_TEST(test_metrics_malformed)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/t.pcap", dir);
	const char *hex[] = { "0011", RT MA "0800" "4400002e00010000" "40fd0000" "0a000001" "08080808",
			      MA RT "0800" "4400002e00010000" "40fd0000" "08080808" "0a000001" };
	uint32_t wire[] = { 2, 34, 34 }, t[] = { 100, 100, 100 };
	write_pcap(path, hex, wire, t, 3);
	void *st;
	struct tally_err e = { 0 };
	ck_assert_int_eq(configure("pcap:\n  file: @D/t.pcap\n  mapping: @D/nics.yaml\n", &st, &e), 0);
	ck_assert_int_eq(pcap_collector.init(st, 0, &e), 0);
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	ck_assert_int_eq(pcap_collector.read(st, 200 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(val(r, UA, "network.malformed.outgoing.packets", "52:54:00:00:00:01"), 1);
	ck_assert_int_eq(val(r, UA, "network.malformed.incoming.bytes", "52:54:00:00:00:01"), 34);
	n_put = 0;
	pcap_collector.metrics(st, put_metric, NULL);
	int seen = 0;
	for (int i = 0; i < n_put; i++) {
		if (!strcmp(got_m[i].labels, "reason=runt")) {
			ck_assert(got_m[i].value == 1);
			seen++;
		} else if (!strcmp(got_m[i].labels, "reason=ihl")) {
			ck_assert(got_m[i].value == 2);
			seen++;
		} else {
			ck_assert_msg(got_m[i].value == 0, "%s: %g", got_m[i].labels, got_m[i].value);
		}
	}
	ck_assert_int_eq(seen, 2);
	pcap_collector.free(st);
	free(r);
}
END_TEST

/* resuming after the ledger's last cycle: the counters go on from where
 * the ledger has them, and series already sent are sent again at once */
START_TEST(test_offline_resume)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/t.pcap", dir);
	const char *hex[] = { RT MA V4("0a000001", "08080808"), RT MA V4("0a000001", "08080808") };
	uint32_t wire[] = { 60, 70 }, t[] = { 100, 300 };
	write_pcap(path, hex, wire, t, 2);
	void *st;
	struct tally_err e = { 0 };
	ck_assert_int_eq(configure("pcap:\n  file: @D/t.pcap\n  mapping: @D/nics.yaml\n", &st, &e), 0);
	ck_assert_int_eq(pcap_collector.init(st, 200 * NS_PER_SEC, &e), 0);
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	ck_assert_int_eq(pcap_collector.read(st, 260 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(val(r, UA, "network.internet.outgoing.bytes", "52:54:00:00:00:01"), 60);
	ck_assert_int_eq(r->s[0].origin_ns, 100 * NS_PER_SEC + 500000000);
	r->n = 0;
	ck_assert_int_eq(pcap_collector.read(st, 320 * NS_PER_SEC, &sk, &e), 0);
	ck_assert_int_eq(val(r, UA, "network.internet.outgoing.bytes", "52:54:00:00:00:01"), 130);
	pcap_collector.free(st);
	free(r);
}
END_TEST

/* ---- mistakes ---- */

static const struct bad {
	const char *name;
	const char *nics;      /* the mapping file's text, NULL: the good one */
	const char *yaml;
	const char *want;      /* a fragment of the message */
} bad[] = {
	{ "neither file nor interfaces", NULL, "pcap:\n  mapping: @D/nics.yaml\n",
	  "t.yaml:2:3: collectors.pcap: give either 'interfaces' (live capture) or 'file'" },
	{ "both", NULL, "pcap:\n  mapping: @D/nics.yaml\n  file: @D/nics.yaml\n  interfaces: [lo]\n", "not both" },
	{ "no mapping", NULL, "pcap:\n  interfaces: [lo]\n", "'mapping' (the file of the VMs' NICs) is required" },
	{ "unknown key", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  snaplength: 9\n",
	  "t.yaml:4:3: unknown key 'snaplength'" },
	{ "interface twice", NULL, "pcap:\n  interfaces: [lo, eth0, lo]\n  mapping: @D/nics.yaml\n",
	  "t.yaml:2:26: key 'interfaces': 'lo' is listed twice" },
	{ "interface not a name", NULL, "pcap:\n  interfaces: [\"../x\"]\n  mapping: @D/nics.yaml\n",
	  "t.yaml:2:16: key 'interfaces': expected an interface name" },
	{ "snaplen too small", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  snaplen: 20\n",
	  "t.yaml:4:12: key 'snaplen'" },
	{ "bad filter", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  filter: \"port fish\"\n",
	  "t.yaml:4:11: key 'filter': " },
	{ "no such user", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  user: no-such-user-x\n",
	  "t.yaml:4:9: key 'user': no user 'no-such-user-x'" },
	{ "file missing", NULL, "pcap:\n  file: @D/none.pcap\n  mapping: @D/nics.yaml\n", "key 'file': cannot read" },
	{ "unknown class", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  classes: {internet: [1.0.0.0/8]}\n",
	  "unknown key 'internet' in 'collectors.pcap.classes'" },
	{ "host bits", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  classes:\n"
	  "    internal: [10.0.0.0/8, 172.16.0.1/12]\n",
	  "t.yaml:5:28: classes.internal: '172.16.0.1/12' has bits set past its /12 (did you mean 172.16.0.0/12?)" },
	{ "prefix in two classes", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  classes:\n"
	  "    internal: [10.0.0.0/8]\n    peering: [192.0.2.0/24, 10.0.0.0/8]\n",
	  "t.yaml:6:29: classes: this prefix is also listed at line 5:16 (in another class)" },
	{ "class not a list", NULL, "pcap:\n  interfaces: [lo]\n  mapping: @D/nics.yaml\n  classes: {peering: 10.0.0.0/8}\n",
	  "key 'peering': expected a list of prefixes" },
	{ "mapping not a list", "uuid: x\n", "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n",
	  "bad.yaml:1:1: expected a list of NICs" },
	{ "bad mac", "- {uuid: a, mac: '52:54:00:00:00'}\n", "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n",
	  "bad.yaml:1:18: key 'mac': '52:54:00:00:00' is not a MAC address" },
	{ "mac twice", "- {uuid: a, mac: '52:54:00:00:00:01'}\n- {uuid: b, mac: '52:54:00:00:00:01'}\n",
	  "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n", "bad.yaml:2:18: MAC 52:54:00:00:00:01 is already the NIC of VM a" },
	{ "no uuid", "- {mac: '52:54:00:00:00:01'}\n", "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n",
	  "bad.yaml:1:3: an entry needs 'uuid' (the VM) and 'mac'" },
	{ "unknown mapping key", "- {uuid: a, mac: '52:54:00:00:00:01', ip: [192.0.2.1]}\n",
	  "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n", "bad.yaml:1:39: unknown key 'ip'" },
	{ "address twice", "- {uuid: a, mac: '52:54:00:00:00:01', ips: [192.0.2.1]}\n"
	  "- {uuid: b, mac: '52:54:00:00:00:02', ips: ['2001:db8::1', 192.0.2.1]}\n",
	  "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n",
	  "bad.yaml:2:60: address already given for the NIC 52:54:00:00:00:01" },
	{ "address a prefix", "- {uuid: a, mac: '52:54:00:00:00:01', ips: [192.0.2.0/24]}\n",
	  "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n", "'192.0.2.0/24' is a prefix, not one address" },
	{ "two tenants", "- {uuid: a, mac: '52:54:00:00:00:01', tenant: x}\n- {uuid: a, mac: '52:54:00:00:00:02', tenant: y}\n",
	  "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n", "bad.yaml:2:3: VM a: its NICs name different tenants" },
	{ "tap twice", "- {uuid: a, mac: '52:54:00:00:00:01', interface: vnet0}\n"
	  "- {uuid: b, mac: '52:54:00:00:00:02', interface: vnet0}\n",
	  "pcap:\n  interfaces: [lo]\n  mapping: @D/bad.yaml\n", "interface 'vnet0' is already the tap of the NIC" },
};

START_TEST(test_mistakes)
{
	const struct bad *b = &bad[_i];
	if (b->nics)
		write_file("bad.yaml", b->nics);
	void *st = NULL;
	struct tally_err e = { 0 };
	int rc = configure(b->yaml, &st, &e);
	ck_assert_msg(rc < 0, "%s: accepted", b->name);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(e.msg, b->want) != NULL, "%s: '%s' lacks '%s'", b->name, e.msg, b->want);
}
END_TEST

/* an interface that does not exist: init fails and names it */
START_TEST(test_no_such_interface)
{
	void *st;
	struct tally_err e = { 0 };
	ck_assert_int_eq(configure("pcap:\n  interfaces: [tally-none0]\n  mapping: @D/nics.yaml\n", &st, &e), 0);
	ck_assert_int_lt(pcap_collector.init(st, 0, &e), 0);
	ck_assert_msg(strstr(e.msg, "cannot capture on 'tally-none0'") != NULL, "%s", e.msg);
	pcap_collector.free(st);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pcap");
	TCase *tc = tcase_create("pcap");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_offline_reads_up_to_now);
	tcase_add_test(tc, test_offline_resume);
	tcase_add_test(tc, test_metrics_malformed);
	tcase_add_loop_test(tc, test_mistakes, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_no_such_interface);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
