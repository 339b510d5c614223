/*
 * test_snmp.c: the SNMP collector's pure parts (collectors/snmp_parse.c) on
 * hand-made answers, and its config checks.
 *
 * Walks: answers as an agent would send them and as a broken or hostile
 * one might (wrong types, short answers, an early endOfMibView, OIDs that
 * go backwards, a table without end). Ports: two readings in, samples out,
 * then through the aggregator's own arithmetic (series_apply) so the usage
 * each case bills is checked against a number worked out by hand: no
 * negative, nothing counted twice across reboots, wraps and renumbering.
 * tests/integration/snmp*.sh do the same against a real snmpd.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "series.h"
#include "snmp_internal.h"
#include "tallytime.h"
#include "testutil.h"

extern const struct collector_ops snmp_collector;

/* ---- building answers ---- */

struct ans {
	struct snmp_vb vb[64];
	unsigned long oids[64][SNMP_OID_MAX];
	size_t n;
};

static void add(struct ans *a, int col, unsigned long index, uint8_t type, uint64_t num, const char *str)
{
	struct snmp_vb *v = &a->vb[a->n];
	unsigned long *o = a->oids[a->n];
	memcpy(o, snmp_cols[col].oid, snmp_cols[col].oid_len * sizeof(unsigned long));
	o[snmp_cols[col].oid_len] = index;
	memset(v, 0, sizeof(*v));
	v->oid = o;
	v->oid_len = snmp_cols[col].oid_len + 1u;
	v->type = type;
	v->num = num;
	if (str) {
		v->str = (const unsigned char *)str;
		v->len = strlen(str);
	}
	a->n++;
}

static void add_uptime(struct ans *a, uint32_t cs)
{
	struct snmp_vb *v = &a->vb[a->n];
	unsigned long *o = a->oids[a->n];
	memcpy(o, snmp_sysuptime_oid, sizeof(snmp_sysuptime_oid));
	o[SNMP_SYSUPTIME_LEN] = 0;
	memset(v, 0, sizeof(*v));
	v->oid = o;
	v->oid_len = SNMP_SYSUPTIME_LEN + 1;
	v->type = SNMP_T_TIMETICKS;
	v->num = cs;
	a->n++;
}

/* a varbind past every column we walk (the next MIB object) */
static void add_past(struct ans *a)
{
	static const unsigned long past[] = { 1, 3, 6, 1, 2, 1, 31, 1, 5, 0 };
	struct snmp_vb *v = &a->vb[a->n];
	memset(v, 0, sizeof(*v));
	v->oid = past;
	v->oid_len = 10;
	v->type = SNMP_T_INTEGER;
	a->n++;
}

START_TEST(test_walk_two_requests)
{
	/* ifName and ifHCInOctets of ifIndex 1, 2, 3 in two answers of two
	 * rows (max-repetitions 2), the second ending both columns */
	struct snmp_walk w;
	struct tally_err e = { 0 };
	int cols[SC_COUNT];
	ck_assert_int_eq(snmp_walk_init(&w, 1u << SC_IFNAME | 1u << SC_HCIN_OCT, 100), 0);
	ck_assert_uint_eq(snmp_walk_pending(&w, cols), 2);
	ck_assert_int_eq(cols[0], SC_IFNAME);
	ck_assert_int_eq(cols[1], SC_HCIN_OCT);
	struct ans a = { .n = 0 };
	add_uptime(&a, 12345);
	add(&a, SC_IFNAME, 1, SNMP_T_OCTETS, 0, "lo");
	add(&a, SC_HCIN_OCT, 1, SNMP_T_COUNTER64, 1000, NULL);
	add(&a, SC_IFNAME, 2, SNMP_T_OCTETS, 0, "eth0");
	add(&a, SC_HCIN_OCT, 2, SNMP_T_COUNTER64, 18446744073709551615ULL, NULL);
	ck_assert_int_eq(snmp_walk_feed(&w, cols, 2, true, a.vb, a.n, &e), 0);
	ck_assert(w.have_uptime);
	ck_assert_uint_eq(w.uptime_cs, 12345);
	ck_assert(!snmp_walk_finished(&w));
	/* the next request continues each column after its last OID */
	ck_assert_uint_eq(snmp_walk_pending(&w, cols), 2);
	ck_assert_uint_eq(w.last[SC_IFNAME][11], 2);
	struct ans b = { .n = 0 };
	add(&b, SC_IFNAME, 3, SNMP_T_OCTETS, 0, "eth1");
	add(&b, SC_HCIN_OCT, 3, SNMP_T_COUNTER64, 7, NULL);
	add(&b, SC_HCIN_UCAST, 1, SNMP_T_COUNTER64, 0, NULL);   /* ifName's successor: past ifName */
	add_past(&b);                                            /* past ifHCInOctets */
	ck_assert_int_eq(snmp_walk_feed(&w, cols, 2, false, b.vb, b.n, &e), 0);
	ck_assert(snmp_walk_finished(&w));
	ck_assert_uint_eq(w.n_rows, 3);
	const struct snmp_row *r = snmp_walk_row(&w, ST_IF, 2);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->name, "eth0");
	ck_assert_uint_eq(r->v[SC_HCIN_OCT], 18446744073709551615ULL);
	ck_assert_uint_eq(snmp_walk_row(&w, ST_IF, 3)->v[SC_HCIN_OCT], 7);
	ck_assert_ptr_null(snmp_walk_row(&w, ST_IF, 4));
	ck_assert_uint_eq(w.bad_type + w.bad_index + w.not_increasing, 0);
	snmp_walk_release(&w);
}
END_TEST

START_TEST(test_walk_hostile)
{
	struct snmp_walk w;
	struct tally_err e = { 0 };
	int cols[SC_COUNT];
	ck_assert_int_eq(snmp_walk_init(&w, 1u << SC_IFNAME | 1u << SC_HCIN_OCT | 1u << SC_OPER, 100), 0);
	size_t nc = snmp_walk_pending(&w, cols);
	ck_assert_uint_eq(nc, 3);
	struct ans a = { .n = 0 };
	add_uptime(&a, 5);
	add(&a, SC_IFNAME, 1, SNMP_T_OCTETS, 0, "bad\x01name");            /* unprintable */
	add(&a, SC_HCIN_OCT, 1, SNMP_T_COUNTER32, 99, NULL);              /* wrong type */
	add(&a, SC_OPER, 1, SNMP_T_INTEGER, (uint64_t)-3, NULL);          /* negative */
	add(&a, SC_IFNAME, 0, SNMP_T_OCTETS, 0, "x");                     /* backwards: ends ifName */
	add(&a, SC_HCIN_OCT, 2, SNMP_T_ENDOFMIBVIEW, 0, NULL);            /* early end */
	/* the answer stops short of the second row's third column */
	ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, true, a.vb, a.n, &e), 0);
	ck_assert_uint_eq(w.bad_string, 1);
	ck_assert_uint_eq(w.bad_type, 2);
	ck_assert_uint_eq(w.not_increasing, 1);
	ck_assert(w.done & (1u << SC_IFNAME));
	ck_assert(w.done & (1u << SC_HCIN_OCT));
	ck_assert(!(w.done & (1u << SC_OPER)));
	const struct snmp_row *r = snmp_walk_row(&w, ST_IF, 1);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->have, 0);     /* nothing of the right type and range came */
	/* an answer that moves no column still open is refused, not looped on */
	nc = snmp_walk_pending(&w, cols);
	ck_assert_uint_eq(nc, 1);
	ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, false, a.vb, 0, &e), -EPROTO);
	/* a suffix that is not one index is counted and skipped */
	struct ans b = { .n = 0 };
	add(&b, SC_OPER, 1, SNMP_T_INTEGER, 1, NULL);
	b.oids[0][10] = 1;
	b.oids[0][11] = 7;   /* .8.1.7: two sub-ids */
	b.vb[0].oid_len = 12;
	ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, false, b.vb, b.n, &e), 0);
	ck_assert_uint_eq(w.bad_index, 1);
	snmp_walk_release(&w);

	/* sysUpTime missing or of another type */
	ck_assert_int_eq(snmp_walk_init(&w, 1u << SC_IFNAME, 10), 0);
	nc = snmp_walk_pending(&w, cols);
	struct ans c = { .n = 0 };
	add(&c, SC_IFNAME, 1, SNMP_T_OCTETS, 0, "lo");
	ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, true, c.vb, c.n, &e), -EPROTO);
	ck_assert_ptr_nonnull(strstr(e.msg, "sysUpTime"));
	struct ans d = { .n = 0 };
	add_uptime(&d, 1);
	d.vb[0].type = SNMP_T_INTEGER;
	ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, true, d.vb, d.n, &e), -EPROTO);
	snmp_walk_release(&w);
}
END_TEST

START_TEST(test_walk_huge_table)
{
	/* an agent that never ends its table: the walk stops at max_rows */
	struct snmp_walk w;
	struct tally_err e = { 0 };
	int cols[SC_COUNT];
	ck_assert_int_eq(snmp_walk_init(&w, 1u << SC_HCIN_OCT, 50), 0);
	unsigned long idx = 1;
	int requests = 0;
	while (!snmp_walk_finished(&w) && requests < 1000) {
		size_t nc = snmp_walk_pending(&w, cols);
		struct ans a = { .n = 0 };
		for (int k = 0; k < 20; k++, idx++)
			add(&a, SC_HCIN_OCT, idx, SNMP_T_COUNTER64, idx, NULL);
		ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, false, a.vb, a.n, &e), 0);
		requests++;
	}
	ck_assert(snmp_walk_finished(&w));
	ck_assert(w.truncated);
	ck_assert_uint_eq(w.n_rows, 50);
	ck_assert_int_eq(requests, 3);
	snmp_walk_release(&w);
}
END_TEST

/* ---- ports ---- */

struct acc {
	uint64_t total;
	int n;
};

static int sum(void *ctx, const struct hour_add *a)
{
	((struct acc *)ctx)->total += a->qty;
	return 0;
}

/* Feed samples into per-meter series states as the aggregator would. */
struct led {
	struct series_state st[METER_COUNT];
	struct acc acc[METER_COUNT];
};

static void apply(struct led *l, const struct sample *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int m = s[i].meter;
		int out = series_apply(&l->st[m], &s[i], 3600 * NS_PER_SEC, sum, &l->acc[m], NULL, NULL);
		ck_assert_int_ne(out, SERIES_DROPPED);
		ck_assert_int_ne(out, SERIES_BAD_KIND);
	}
}

static struct snmp_row port(uint32_t index, uint64_t hcin, uint64_t hcout, uint32_t in32)
{
	struct snmp_row r;
	memset(&r, 0, sizeof(r));
	r.table = ST_IF;
	r.index = index;
	strcpy(r.name, "Gi0/1");
	r.v[SC_HCIN_OCT] = hcin;
	r.v[SC_HCOUT_OCT] = hcout;
	r.v[SC_IN_ERR] = in32;
	r.v[SC_OPER] = 1;
	r.have = 1u << SC_HCIN_OCT | 1u << SC_HCOUT_OCT | 1u << SC_IN_ERR | 1u << SC_OPER;
	return r;
}

static const struct sample *find(const struct sample *s, size_t n, int meter, bool last)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].meter == meter && !!(s[i].flags & SAMPLE_F_LAST) == last)
			return &s[i];
	return NULL;
}

#define T0 (1790000000LL * NS_PER_SEC)

static size_t step(struct snmp_port_state *st, struct snmp_row r, int64_t t, uint32_t up_cs, bool reboot,
		   enum snmp_view view, struct sample *out, struct led *l)
{
	struct snmp_poll_ctx cx = { .now_ns = t, .uptime_cs = up_cs, .rebooted = reboot,
				    .boot_ns = t - (int64_t)up_cs * 10000000, .view = view };
	struct snmp_port_note note;
	size_t n = snmp_port_samples(st, &r, "sw1:Gi0/1", &cx, out, &note);
	apply(l, out, n);
	return n;
}

START_TEST(test_port_direction_and_first_sight)
{
	struct snmp_port_state st = { 0 };
	struct sample out[SNMP_PORT_SAMPLES];
	static struct led l;
	memset(&l, 0, sizeof(l));
	/* a switch port: what the switch sent (HCOut = 500) is the tenant's incoming */
	size_t n = step(&st, port(3, 100, 500, 7), T0, 1000, false, SNMP_VIEW_SWITCH, out, &l);
	const struct sample *in = find(out, n, M_IF_IN_BYTES, false);
	ck_assert_ptr_nonnull(in);
	ck_assert_uint_eq(in->v.counter, 500);
	ck_assert_int_eq(in->origin_ns, 0);    /* first sight: a baseline */
	ck_assert_uint_eq(find(out, n, M_IF_OUT_BYTES, false)->v.counter, 100);
	ck_assert_ptr_null(find(out, n, M_IF_IN_ERRORS, false));   /* 32-bit: nothing yet */
	ck_assert_ptr_null(find(out, n, M_IF_IN_BYTES32, false)); /* 64-bit octets: no 32-bit meter */
	ck_assert_double_eq(find(out, n, M_IF_UP, false)->v.gauge, 1.0);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 0);
	/* a host's own interface: ifHCInOctets is its incoming */
	struct snmp_port_state hs = { 0 };
	static struct led l2;
	memset(&l2, 0, sizeof(l2));
	n = step(&hs, port(3, 100, 500, 7), T0, 1000, false, SNMP_VIEW_HOST, out, &l2);
	ck_assert_uint_eq(find(out, n, M_IF_IN_BYTES, false)->v.counter, 100);
}
END_TEST

START_TEST(test_port_wrap_and_reboot)
{
	struct snmp_port_state st = { 0 };
	struct sample out[SNMP_PORT_SAMPLES];
	static struct led l;
	memset(&l, 0, sizeof(l));
	int64_t t = T0;
	/* host view, so HCIn is incoming; ifInErrors is 32-bit */
	step(&st, port(3, 1000, 0, 4294967000u), t, 100000, false, SNMP_VIEW_HOST, out, &l);
	t += 10 * NS_PER_SEC;
	/* 32-bit wrap: 4294967000 -> 200 is 296 + 200 = 496 errors */
	size_t n = step(&st, port(3, 5000, 0, 200), t, 101000, false, SNMP_VIEW_HOST, out, &l);
	const struct sample *er = find(out, n, M_IF_IN_ERRORS, false);
	ck_assert_ptr_nonnull(er);
	ck_assert_int_eq(er->kind, SAMPLE_DELTA);
	ck_assert_uint_eq(er->v.counter, 496);
	ck_assert_int_eq(er->origin_ns, T0);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 4000);
	/* a reboot 3 s ago (sysUpTime 300 cs): the 64-bit counter went down
	 * to 300 and counts from zero at the reboot; the 32-bit one too */
	t += 10 * NS_PER_SEC;
	n = step(&st, port(3, 300, 0, 50), t, 300, true, SNMP_VIEW_HOST, out, &l);
	const struct sample *in = find(out, n, M_IF_IN_BYTES, false);
	ck_assert_int_eq(in->origin_ns, t - 3 * NS_PER_SEC);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 4000 + 300);
	ck_assert_uint_eq(l.acc[M_IF_IN_ERRORS].total, 496 + 50);
	/* an agent restart over counters that went on (snmpd over the kernel's):
	 * sysUpTime back, the counter not down: an ordinary delta, not 900 again */
	t += 10 * NS_PER_SEC;
	n = step(&st, port(3, 900, 0, 60), t, 200, true, SNMP_VIEW_HOST, out, &l);
	ck_assert_int_eq(find(out, n, M_IF_IN_BYTES, false)->origin_ns, 0);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 4300 + 600);
	ck_assert_uint_eq(l.acc[M_IF_IN_ERRORS].total, 546 + 10);
}
END_TEST

START_TEST(test_port_renumbered)
{
	struct snmp_port_state st = { 0 };
	struct sample out[SNMP_PORT_SAMPLES];
	static struct led l;
	memset(&l, 0, sizeof(l));
	int64_t t = T0;
	step(&st, port(3, 1000, 0, 10), t, 1000, false, SNMP_VIEW_HOST, out, &l);
	t += 10 * NS_PER_SEC;
	step(&st, port(3, 2000, 0, 20), t, 2000, false, SNMP_VIEW_HOST, out, &l);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 1000);
	/* the same name at another ifIndex, its counter higher: it cannot be
	 * told from a new counter that started high, so the old life ends with
	 * a final reading and the new value is a baseline: nothing counted */
	t += 10 * NS_PER_SEC;
	size_t n = step(&st, port(7, 2500, 0, 25), t, 3000, false, SNMP_VIEW_HOST, out, &l);
	const struct sample *fin = find(out, n, M_IF_IN_BYTES, true);
	ck_assert_ptr_nonnull(fin);
	ck_assert_uint_eq(fin->v.counter, 2000);
	ck_assert_int_lt(fin->time_ns, t);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 1000);
	ck_assert_ptr_null(find(out, n, M_IF_IN_ERRORS, false));
	/* then it counts on from there */
	t += 10 * NS_PER_SEC;
	step(&st, port(7, 2600, 0, 30), t, 4000, false, SNMP_VIEW_HOST, out, &l);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 1100);
	ck_assert_uint_eq(l.acc[M_IF_IN_ERRORS].total, 10 + 5);
	/* renumbered again, the counter lower: it started again (rule 2) */
	t += 10 * NS_PER_SEC;
	step(&st, port(2, 40, 0, 1), t, 5000, false, SNMP_VIEW_HOST, out, &l);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 1140);
	ck_assert_uint_eq(l.acc[M_IF_IN_ERRORS].total, 16);
}
END_TEST

START_TEST(test_port_discontinuity_time)
{
	struct snmp_port_state st = { 0 };
	struct sample out[SNMP_PORT_SAMPLES];
	static struct led l;
	memset(&l, 0, sizeof(l));
	int64_t t = T0;
	struct snmp_row r = port(3, 1000, 0, 0);
	r.have |= 1u << SC_DISCONT;
	r.v[SC_DISCONT] = 0;
	step(&st, r, t, 100000, false, SNMP_VIEW_HOST, out, &l);
	/* ifCounterDiscontinuityTime moved to sysUpTime 100500 (5 s after the
	 * previous poll) and the counter is lower: counted from then */
	t += 10 * NS_PER_SEC;
	r.v[SC_HCIN_OCT] = 70;
	r.v[SC_DISCONT] = 100500;
	size_t n = step(&st, r, t, 101000, false, SNMP_VIEW_HOST, out, &l);
	ck_assert_int_eq(find(out, n, M_IF_IN_BYTES, false)->origin_ns, t - 5 * NS_PER_SEC);
	ck_assert_uint_eq(l.acc[M_IF_IN_BYTES].total, 70);
}
END_TEST

START_TEST(test_port_only32)
{
	/* a device without ifXTable counters: 32-bit octets, monitoring only */
	struct snmp_port_state st = { 0 };
	struct sample out[SNMP_PORT_SAMPLES];
	static struct led l;
	memset(&l, 0, sizeof(l));
	struct snmp_row r;
	memset(&r, 0, sizeof(r));
	r.table = ST_IF;
	r.index = 1;
	strcpy(r.descr, "port1");
	r.have = 1u << SC_IN_OCT | 1u << SC_OUT_OCT;
	r.v[SC_IN_OCT] = 4294967290u;
	r.v[SC_OUT_OCT] = 10;
	struct snmp_poll_ctx cx = { .now_ns = T0, .uptime_cs = 100, .boot_ns = T0 - NS_PER_SEC,
				    .view = SNMP_VIEW_SWITCH };
	struct snmp_port_note note;
	size_t n = snmp_port_samples(&st, &r, "sw1:port1", &cx, out, &note);
	ck_assert(note.only32);
	ck_assert_uint_eq(n, 0);
	r.v[SC_IN_OCT] = 4;      /* wrapped: 6 + 4 = 10 the switch received = tenant's outgoing */
	r.v[SC_OUT_OCT] = 15;
	cx.now_ns += 10 * NS_PER_SEC;
	cx.uptime_cs += 1000;
	n = snmp_port_samples(&st, &r, "sw1:port1", &cx, out, &note);
	ck_assert_ptr_null(find(out, n, M_IF_IN_BYTES, false));
	ck_assert_uint_eq(find(out, n, M_IF_OUT_BYTES32, false)->v.counter, 10);
	ck_assert_uint_eq(find(out, n, M_IF_IN_BYTES32, false)->v.counter, 5);
}
END_TEST

START_TEST(test_rebooted)
{
	ck_assert(!snmp_rebooted(100, 200, 1 * NS_PER_SEC));
	ck_assert(snmp_rebooted(100000, 300, 10 * NS_PER_SEC));
	/* TimeTicks wrap after 497 days: 2^32 - 500 cs, 10 s later = 500 */
	ck_assert(!snmp_rebooted(4294966796u, 500, 10 * NS_PER_SEC));
	/* but a wrap that lands far from where the elapsed time says is a reboot */
	ck_assert(snmp_rebooted(4294966796u, 900000, 10 * NS_PER_SEC));
}
END_TEST

START_TEST(test_host_samples)
{
	static const unsigned long ram[] = { 1, 3, 6, 1, 2, 1, 25, 2, 1, 2 };
	static const unsigned long disk[] = { 1, 3, 6, 1, 2, 1, 25, 2, 1, 4 };
	struct snmp_walk w;
	struct tally_err e = { 0 };
	int cols[SC_COUNT];
	ck_assert_int_eq(snmp_walk_init(&w, SNMP_COLS_HR, 100), 0);
	size_t nc = snmp_walk_pending(&w, cols);
	ck_assert_uint_eq(nc, 6);
	struct ans a = { .n = 0 };
	/* row-major: processor 196608, storage 1 (RAM), storage 31 (/) */
	add(&a, SC_HRPROC_LOAD, 196608, SNMP_T_INTEGER, 37, NULL);
	add(&a, SC_HRST_TYPE, 1, SNMP_T_OID, 0, NULL);
	a.vb[a.n - 1].objid = ram;
	a.vb[a.n - 1].len = 10;
	add(&a, SC_HRST_DESCR, 1, SNMP_T_OCTETS, 0, "Physical memory");
	add(&a, SC_HRST_UNITS, 1, SNMP_T_INTEGER, 1024, NULL);
	add(&a, SC_HRST_SIZE, 1, SNMP_T_INTEGER, 16000000, NULL);
	add(&a, SC_HRST_USED, 1, SNMP_T_INTEGER, 4000000, NULL);
	add_past(&a);
	add(&a, SC_HRST_TYPE, 31, SNMP_T_OID, 0, NULL);
	a.vb[a.n - 1].objid = disk;
	a.vb[a.n - 1].len = 10;
	add(&a, SC_HRST_DESCR, 31, SNMP_T_OCTETS, 0, "/");
	add(&a, SC_HRST_UNITS, 31, SNMP_T_INTEGER, 4096, NULL);
	add(&a, SC_HRST_SIZE, 31, SNMP_T_INTEGER, 2500000, NULL);
	add(&a, SC_HRST_USED, 31, SNMP_T_INTEGER, 1000000, NULL);
	ck_assert_int_eq(snmp_walk_feed(&w, cols, nc, false, a.vb, a.n, &e), 0);
	struct sample out[16];
	size_t n = snmp_host_samples(&w, "host1", T0, out, 16);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(out[0].meter, M_HW_CPU_UTIL);
	ck_assert_double_eq(out[0].v.gauge, 0.37);
	ck_assert_str_eq(out[0].device, "cpu196608");
	/* storage rows come after the processor table in (table, index) order */
	ck_assert_int_eq(out[1].meter, M_HW_MEMORY_TOTAL);
	ck_assert_double_eq(out[1].v.gauge, 16384000000.0);
	ck_assert_int_eq(out[2].meter, M_HW_MEMORY_USED);
	ck_assert_double_eq(out[2].v.gauge, 4096000000.0);
	ck_assert_int_eq(out[3].meter, M_HW_DISK_TOTAL);
	ck_assert_double_eq(out[3].v.gauge, 10240000000.0);
	ck_assert_str_eq(out[3].device, "/");
	ck_assert_double_eq(out[4].v.gauge, 4096000000.0);
	snmp_walk_release(&w);

	char lab[TALLY_DEV_MAX];
	snmp_device_label(lab, "/var/lib/docker/overlay2/0123456789abcdef0123456789abcdef/merged");
	ck_assert_uint_eq(strlen(lab), TALLY_DEV_MAX - 1);
	char lab2[TALLY_DEV_MAX];
	snmp_device_label(lab2, "/var/lib/docker/overlay2/0123456789abcdef0123456789abcdef/mergeD");
	ck_assert_str_ne(lab, lab2);
}
END_TEST

/* ---- config ---- */

static int configure(const char *yaml, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	struct collector_env env = { .agent_id = "a", .interval_ns = 10 * NS_PER_SEC };
	void *state = NULL;
	int rc = cfg_load_string("t.yaml", yaml, strlen(yaml), &root, e);
	ck_assert_int_eq(rc, 0);
	rc = snmp_collector.configure(root, &env, &state, e);
	snmp_collector.free(state);
	cfg_free(root);
	return rc;
}

START_TEST(test_config)
{
	static const struct {
		const char *yaml, *msg;
	} bad[] = {
		{ "targets:\n  - {name: a, address: 127.0.0.1:16100}\n", "t.yaml:2:5: target 'a' (version 2c) needs a 'community'" },
		{ "targets:\n  - {name: a, address: 127.0.0.1:16100, community: c, timeout: 4s, retries: 1}\n", "(timeout, doubled at each of the 1 retries), more than 3/4 of tallyd.interval (10s)" },
		{ "targets:\n  - {name: a, address: 127.0.0.1:16100, community: c, interval: 15s}\n", "must be a multiple of tallyd.interval (10s)" },
		{ "targets:\n  - {name: a, address: '::1:161', community: c}\n", "IPv6 address is written in brackets" },
		{ "targets:\n  - {name: a, address: 'h:99999', community: c}\n", "the port must be 1 - 65535" },
		{ "targets:\n  - {name: a, address: h, community: c}\n  - {name: a, address: h, community: c}\n", "target name 'a' is given twice" },
		{ "targets:\n  - {name: a, address: h, version: '3', user: u, level: authPriv, auth_password: short, priv_password: longenough}\n", "key 'auth_password' must be at least 8 characters" },
		{ "targets:\n  - {name: a, address: h, version: '3', user: u, level: authNoPriv}\n", "authNoPriv an 'auth_password'" },
		{ "targets:\n  - {name: a, address: h, version: '3', user: u}\n", "needs a 'user' and a 'level'" },
		{ "targets:\n  - {name: a, address: h, community: c, comunity: d}\n", "unknown key 'comunity'" },
		{ "targets:\n  - {name: a, address: h, community: c}\nports:\n  - {target: b, if_name: 'x*', tenant: t}\n", "'b' matches no target" },
		{ "targets:\n  - {name: a, address: h, community: c}\nports:\n  - {target: a, tenant: t}\n", "needs a 'target' and an 'if_name' or 'if_alias'" },
		{ "targets:\n  - {name: a, address: h, community: c}\nports:\n  - {target: a, if_name: x, tenant: t, labels: {k: 'a,b'}}\n", "label 'k'" },
		{ "targets: []\n", "needs 'targets'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tally_err e = { 0 };
		ck_assert_msg(configure(bad[i].yaml, &e) < 0, "case %zu accepted", i);
		ck_assert_msg(strstr(e.msg, bad[i].msg), "case %zu: '%s' lacks '%s'", i, e.msg, bad[i].msg);
		/* no password ever appears in a message */
		ck_assert_ptr_null(strstr(e.msg, "longenough"));
	}
	struct tally_err e = { 0 };
	ck_assert_int_eq(configure("targets:\n  - {name: sw-1, address: '[::1]:16100', community: c}\n"
				   "  - {name: h.2, address: localhost, type: host, version: '3', user: u,"
				   " level: authPriv, auth_password: 12345678, priv_password: abcdefgh,"
				   " auth_protocol: SHA-256}\n"
				   "ports:\n  - {target: 'sw-*', if_alias: 'cust:*', tenant: acme, labels: {b: 2, a: 1}}\n",
				   &e), 0);
}
END_TEST

/* SIGHUP (collector_ops.reload): the targets of the new config replace the
 * running ones: a kept target keeps its figures, a removed one is gone, a
 * new one appears; the self-metrics name exactly the new set. */
static void *made(const char *yaml)
{
	struct cfg_node *root = NULL;
	struct collector_env env = { .agent_id = "a", .interval_ns = 10 * NS_PER_SEC };
	struct tally_err e = { 0 };
	void *state = NULL;
	ck_assert_int_eq(cfg_load_string("t.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_msg(snmp_collector.configure(root, &env, &state, &e) == 0, "%s", e.msg);
	cfg_free(root);
	return state;
}

struct seen {
	char targets[8][32];
	int n;
};

static void put_seen(void *ctx, const struct collector_metric *m)
{
	struct seen *s = ctx;
	const char *t = strstr(m->labels, "target=");
	if (!t || strcmp(m->name, "tally_snmp_polls"))
		return;
	ck_assert_int_lt(s->n, 8);
	snprintf(s->targets[s->n++], sizeof(s->targets[0]), "%s", t + 7);
}

START_TEST(test_reload_targets)
{
	struct tally_err e = { 0 };
	void *st = made("targets:\n  - {name: sw, address: '127.0.0.1:16100', community: c}\n"
			"  - {name: gone, address: '127.0.0.1:16101', community: c}\n");
	ck_assert_msg(snmp_collector.init(st, 0, &e) == 0, "%s", e.msg);
	void *fresh = made("targets:\n  - {name: new, address: '127.0.0.1:16102', community: c}\n"
			   "  - {name: sw, address: '127.0.0.1:16100', community: c, retries: 0}\n");
	ck_assert_msg(snmp_collector.reload(st, fresh, &e) == 0, "%s", e.msg);
	snmp_collector.free(fresh);
	struct seen seen = { 0 };
	snmp_collector.metrics(st, put_seen, &seen);
	ck_assert_int_eq(seen.n, 2);
	ck_assert_str_eq(seen.targets[0], "new");   /* in the new config's order */
	ck_assert_str_eq(seen.targets[1], "sw");
	snmp_collector.free(st);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snmp");
	TCase *tc = tcase_create("snmp");
	tcase_add_test(tc, test_walk_two_requests);
	tcase_add_test(tc, test_walk_hostile);
	tcase_add_test(tc, test_walk_huge_table);
	tcase_add_test(tc, test_port_direction_and_first_sight);
	tcase_add_test(tc, test_port_wrap_and_reboot);
	tcase_add_test(tc, test_port_renumbered);
	tcase_add_test(tc, test_port_discontinuity_time);
	tcase_add_test(tc, test_port_only32);
	tcase_add_test(tc, test_rebooted);
	tcase_add_test(tc, test_host_samples);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_reload_targets);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
