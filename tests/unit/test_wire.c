/*
 * test_wire: the batch wire format (common/wire.c, schemas/batch-wire.md)
 * and CRC-32C (common/crc32c.c).
 *
 * The byte vector of the tiny batch is worked out by hand in the schema
 * document; its CRC comes from the bit-by-bit reference below, not from
 * common/crc32c.c. Then: random batches round-trip exactly; every
 * truncation and every single-bit flip of a valid frame is refused (the
 * checksum), and with the checksum repaired a flip is refused or decodes to
 * a batch that encodes back to itself; every limit and rule of the format
 * is refused with a message.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "testutil.h"
#include "wire.h"

/* CRC-32C one bit at a time: the oracle */
static uint32_t crc_ref(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
	}
	return ~c;
}

/* the worked example of schemas/batch-wire.md, byte for byte */
static const uint8_t tiny[] = {
	0x54, 0x4c, 0x59, 0x42, 0x01, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
	0x02, 0x68, 0x31,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0x00, 0x01, 0xd0, 0x0f, 0x00,
	0x07, 0x01, 0x72, 0x08, 0x69, 0x6e, 0x73, 0x74, 0x61, 0x6e, 0x63, 0x65, 0x00,
	0x07, 0x73, 0x74, 0x61, 0x72, 0x74, 0x65, 0x64, 0x03, 0x63, 0x70, 0x75,
	0x03, 0x76, 0x64, 0x61, 0x05, 0x76, 0x63, 0x70, 0x75, 0x73,
	0x01, 0x00, 0x00, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	0x01, 0x13, 0x00, 0x03, 0x02,
	0x02, 0x00, 0x02, 0x04, 0x08, 0x09, 0x0a, 0xac, 0x02,
	0x00, 0x05, 0x06, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40,
	0x51, 0x17, 0xe6, 0xa4,
};

static void tiny_batch(struct batch *b)
{
	batch_init(b, "h1");
	b->seq = 1;
	b->time_ns = 1000;
	struct resource_meta m = { .time_ns = 1000 };
	strcpy(m.resource, "r");
	strcpy(m.type, "instance");
	ck_assert_int_eq(batch_add_meta(b, &m), 0);
	struct lifecycle_event ev = { .time_ns = 990 };
	strcpy(ev.resource, "r");
	strcpy(ev.type, "started");
	ck_assert_int_eq(batch_add_event(b, &ev), 0);
	struct sample s = { .time_ns = 995, .origin_ns = 990, .meter = M_CPU, .kind = SAMPLE_CUMULATIVE };
	s.v.counter = 300;
	strcpy(s.resource, "r");
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
	struct sample g = { .time_ns = 995, .meter = M_VCPUS, .kind = SAMPLE_GAUGE, .flags = SAMPLE_F_LAST };
	g.v.gauge = 2.0;
	strcpy(g.resource, "r");
	strcpy(g.device, "vda");
	ck_assert_int_eq(batch_add_sample(b, &g), 0);
}

/* Wrap body[n] in a preamble and the reference CRC; returns the length. */
static size_t frame_of(const uint8_t *body, size_t n, uint8_t *out)
{
	memcpy(out, "TLYB\x01\x00\x00\x00", 8);
	out[8] = (uint8_t)n;
	out[9] = (uint8_t)(n >> 8);
	out[10] = (uint8_t)(n >> 16);
	out[11] = (uint8_t)(n >> 24);
	memcpy(out + 12, body, n);
	uint32_t c = crc_ref(out, 12 + n);
	for (int i = 0; i < 4; i++)
		out[12 + n + i] = (uint8_t)(c >> (8 * i));
	return 16 + n;
}

static void refix_crc(uint8_t *f, size_t len)
{
	uint32_t c = crc_ref(f, len - 4);
	for (int i = 0; i < 4; i++)
		f[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static int same_gauge(double a, double b)
{
	return !memcmp(&a, &b, sizeof(a));
}

static void assert_batches_equal(const struct batch *a, const struct batch *b)
{
	ck_assert_str_eq(a->agent, b->agent);
	ck_assert_uint_eq(a->seq, b->seq);
	ck_assert_int_eq(a->time_ns, b->time_ns);
	ck_assert_int_eq(a->clock_step_ns, b->clock_step_ns);
	ck_assert_uint_eq(a->n_samples, b->n_samples);
	ck_assert_uint_eq(a->n_metas, b->n_metas);
	ck_assert_uint_eq(a->n_events, b->n_events);
	for (size_t i = 0; i < a->n_samples; i++) {
		const struct sample *x = &a->samples[i], *y = &b->samples[i];
		ck_assert_int_eq(x->time_ns, y->time_ns);
		ck_assert_int_eq(x->origin_ns, y->origin_ns);
		ck_assert_uint_eq(x->meter, y->meter);
		ck_assert_uint_eq(x->kind, y->kind);
		ck_assert_uint_eq(x->flags, y->flags);
		ck_assert_str_eq(x->resource, y->resource);
		ck_assert_str_eq(x->device, y->device);
		if (x->kind == SAMPLE_GAUGE)
			ck_assert(same_gauge(x->v.gauge, y->v.gauge));
		else
			ck_assert_uint_eq(x->v.counter, y->v.counter);
	}
	for (size_t i = 0; i < a->n_metas; i++) {
		const struct resource_meta *x = &a->metas[i], *y = &b->metas[i];
		ck_assert_int_eq(x->time_ns, y->time_ns);
		ck_assert_str_eq(x->resource, y->resource);
		ck_assert_str_eq(x->type, y->type);
		ck_assert_str_eq(x->name, y->name);
		ck_assert_str_eq(x->tenant, y->tenant);
		ck_assert_str_eq(x->project, y->project);
		ck_assert_str_eq(x->user, y->user);
		ck_assert_str_eq(x->flavor, y->flavor);
		ck_assert_str_eq(x->labels, y->labels);
	}
	for (size_t i = 0; i < a->n_events; i++) {
		const struct lifecycle_event *x = &a->events[i], *y = &b->events[i];
		ck_assert_int_eq(x->time_ns, y->time_ns);
		ck_assert_str_eq(x->resource, y->resource);
		ck_assert_str_eq(x->type, y->type);
		ck_assert_str_eq(x->reason, y->reason);
	}
}

START_TEST(crc_vectors)
{
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	/* 32 zero bytes: RFC 3720 B.4 */
	uint8_t z[32] = { 0 }, ff[32];
	memset(ff, 0xff, sizeof(ff));
	ck_assert_uint_eq(crc32c(0, z, 32), 0x8A9136AAu);
	ck_assert_uint_eq(crc32c(0, ff, 32), 0x62A8AB43u);
	/* both paths, every alignment and length, and in two pieces */
	uint8_t buf[300];
	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (size_t off = 0; off < 9; off++)
		for (size_t n = 0; n + off <= sizeof(buf); n += 7) {
			uint32_t want = crc_ref(buf + off, n);
			ck_assert_uint_eq(crc32c(0, buf + off, n), want);
			ck_assert_uint_eq(crc32c_sw(0, buf + off, n), want);
			ck_assert_uint_eq(crc32c(crc32c(0, buf + off, n / 3), buf + off + n / 3, n - n / 3), want);
		}
}
END_TEST

START_TEST(tiny_by_hand)
{
	struct batch b, d;
	struct wire_enc w;
	struct wire_buf out = { 0 };
	struct wire_info info;
	struct tally_err e = { 0 };

	/* the reference CRC of the vector is the one written in it */
	ck_assert_uint_eq(crc_ref(tiny, sizeof(tiny) - 4), 0xA4E61751u);
	tiny_batch(&b);
	wire_enc_init(&w);
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), 0);
	ck_assert_uint_eq(out.len, sizeof(tiny));
	for (size_t i = 0; i < sizeof(tiny); i++)
		ck_assert_msg(out.p[i] == tiny[i], "byte %zu: 0x%02x, want 0x%02x", i, out.p[i], tiny[i]);

	batch_init(&d, NULL);
	ck_assert_int_eq(wire_decode(tiny, sizeof(tiny), &d, &info, &e), 0);
	ck_assert_uint_eq(info.head.frame_len, 112);
	ck_assert_str_eq(d.agent, "h1");
	ck_assert_uint_eq(d.seq, 1);
	ck_assert_int_eq(d.time_ns, 1000);
	ck_assert_int_eq(d.clock_step_ns, 0);
	ck_assert_uint_eq(info.head.origin.spool_first_seq, 0);
	ck_assert_uint_eq(d.n_metas, 1);
	ck_assert_int_eq(d.metas[0].time_ns, 1000);
	ck_assert_str_eq(d.metas[0].resource, "r");
	ck_assert_str_eq(d.metas[0].type, "instance");
	ck_assert_str_eq(d.metas[0].labels, "");
	ck_assert_uint_eq(d.n_events, 1);
	ck_assert_int_eq(d.events[0].time_ns, 990);
	ck_assert_str_eq(d.events[0].type, "started");
	ck_assert_uint_eq(d.n_samples, 2);
	ck_assert_int_eq(d.samples[0].time_ns, 995);
	ck_assert_int_eq(d.samples[0].origin_ns, 990);
	ck_assert_uint_eq(d.samples[0].meter, M_CPU);
	ck_assert_uint_eq(d.samples[0].kind, SAMPLE_CUMULATIVE);
	ck_assert_uint_eq(d.samples[0].flags, 0);
	ck_assert_uint_eq(d.samples[0].v.counter, 300);
	ck_assert_str_eq(d.samples[0].device, "");
	ck_assert_int_eq(d.samples[1].time_ns, 995);
	ck_assert_int_eq(d.samples[1].origin_ns, 0);
	ck_assert_uint_eq(d.samples[1].meter, M_VCPUS);
	ck_assert_uint_eq(d.samples[1].kind, SAMPLE_GAUGE);
	ck_assert_uint_eq(d.samples[1].flags, SAMPLE_F_LAST);
	ck_assert(d.samples[1].v.gauge == 2.0);
	ck_assert_str_eq(d.samples[1].resource, "r");
	ck_assert_str_eq(d.samples[1].device, "vda");
	assert_batches_equal(&b, &d);

	/* a second frame appended after the first, and found by its length */
	struct wire_origin o = { .spool_first_seq = 1 };
	o.spool_id[0] = 0xAB;
	ck_assert_int_eq(wire_encode(&w, &b, &o, &out, &e), 0);
	struct wire_head h;
	ck_assert_int_eq(wire_check(out.p + 112, out.len - 112, &h, &e), 0);
	ck_assert_uint_eq(h.origin.spool_id[0], 0xAB);
	ck_assert_uint_eq(h.origin.spool_first_seq, 1);
	ck_assert_uint_eq(h.frame_len, 112);   /* the id was 16 zero bytes; first seq 1 takes one byte as 0 did */
	wire_buf_release(&out);
	wire_enc_release(&w);
	batch_release(&b);
	batch_release(&d);
}
END_TEST

static uint64_t rnd64(void)
{
	return (uint64_t)rand() << 62 ^ (uint64_t)rand() << 31 ^ (uint64_t)rand();
}

static void rnd_str(char *dst, size_t size, int allow_empty)
{
	static const char cs[] = "abcdef0123456789-:.\xc3\xa9\x01\xff";
	size_t n = (size_t)rand() % size;
	if (!allow_empty && n == 0)
		n = 1;
	if (rand() % 4 == 0)
		n = (size_t)rand() % 3 + (allow_empty ? 0 : 1);    /* short ones repeat */
	for (size_t i = 0; i < n; i++)
		dst[i] = cs[rand() % (sizeof(cs) - 1)];
	dst[n] = '\0';
}

static int64_t rnd_time(void)
{
	switch (rand() % 6) {
	case 0: return INT64_MIN;
	case 1: return INT64_MAX;
	case 2: return 0;
	default: return 1790812800000000000LL + (int64_t)(rnd64() % 100000000000ULL);
	}
}

static void rnd_batch(struct batch *b)
{
	batch_init(b, NULL);
	rnd_str(b->agent, sizeof(b->agent), 0);
	b->seq = rand() % 3 ? (uint64_t)rand() + 1 : UINT64_MAX;
	b->time_ns = rnd_time();
	b->clock_step_ns = rand() % 4 ? 0 : (int64_t)(rnd64() >> 1);
	size_t ns = (size_t)rand() % 200, nm = (size_t)rand() % 5, ne = (size_t)rand() % 5;
	for (size_t i = 0; i < nm; i++) {
		struct resource_meta m = { .time_ns = rnd_time() };
		rnd_str(m.resource, sizeof(m.resource), 0);
		rnd_str(m.type, sizeof(m.type), 1);
		rnd_str(m.name, sizeof(m.name), 1);
		rnd_str(m.tenant, sizeof(m.tenant), 1);
		rnd_str(m.project, sizeof(m.project), 1);
		rnd_str(m.user, sizeof(m.user), 1);
		rnd_str(m.flavor, sizeof(m.flavor), 1);
		rnd_str(m.labels, sizeof(m.labels), 1);
		ck_assert_int_eq(batch_add_meta(b, &m), 0);
	}
	for (size_t i = 0; i < ne; i++) {
		struct lifecycle_event ev = { .time_ns = rnd_time() };
		rnd_str(ev.resource, sizeof(ev.resource), 0);
		rnd_str(ev.type, sizeof(ev.type), 1);
		rnd_str(ev.reason, sizeof(ev.reason), 1);
		ck_assert_int_eq(batch_add_event(b, &ev), 0);
	}
	struct sample s = { 0 };
	for (size_t i = 0; i < ns; i++) {
		if (i == 0 || rand() % 5 == 0)
			rnd_str(s.resource, sizeof(s.resource), 0);
		if (i == 0 || rand() % 3 == 0)
			rnd_str(s.device, sizeof(s.device), 1);
		s.meter = (uint16_t)(rand() % METER_COUNT);
		s.kind = (uint8_t)(rand() % 3);
		s.flags = rand() % 7 ? 0 : SAMPLE_F_LAST;
		s.time_ns = rand() % 3 ? (int64_t)((uint64_t)b->time_ns - (uint64_t)(rand() % 1000)) : rnd_time();
		s.origin_ns = rand() % 2 ? 0 : rnd_time();
		if (s.kind == SAMPLE_GAUGE) {
			static const double odd[] = { 0.0, -0.0, 1e308, -1e-308, INFINITY, -INFINITY, NAN, 0.1 };
			if (rand() % 2) {
				s.v.gauge = odd[rand() % 8];
			} else {
				uint64_t bits = rnd64();
				memcpy(&s.v.gauge, &bits, 8);
			}
		} else {
			s.v.counter = rand() % 4 ? (uint64_t)rand() : rnd64() | (1ULL << 63);
		}
		ck_assert_int_eq(batch_add_sample(b, &s), 0);
	}
}

START_TEST(random_round_trips)
{
	struct wire_enc w;
	struct wire_buf out = { 0 }, again = { 0 };
	struct tally_err e = { 0 };
	struct batch d;
	batch_init(&d, NULL);
	wire_enc_init(&w);
	srand(12345);
	for (int it = 0; it < 400; it++) {
		struct batch b;
		rnd_batch(&b);
		struct wire_origin o = { 0 };
		if (it % 2) {
			for (int k = 0; k < WIRE_SPOOL_ID_LEN; k++)
				o.spool_id[k] = (uint8_t)rand();
			o.spool_id[0] |= 1;
			o.spool_first_seq = 1 + (b.seq > 1 ? rnd64() % b.seq : 0);
		}
		out.len = again.len = 0;
		ck_assert_int_eq(wire_encode(&w, &b, &o, &out, &e), 0);
		struct wire_info info;
		ck_assert_msg(wire_decode(out.p, out.len, &d, &info, &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(info.head.frame_len, out.len);
		ck_assert_uint_eq(info.unknown_samples, 0);
		ck_assert(!memcmp(&info.head.origin, &o, sizeof(o)));
		assert_batches_equal(&b, &d);
		/* and the decoded batch encodes to the same bytes */
		ck_assert_int_eq(wire_encode(&w, &d, &o, &again, &e), 0);
		ck_assert_uint_eq(again.len, out.len);
		ck_assert(!memcmp(again.p, out.p, out.len));
		batch_release(&b);
	}
	batch_release(&d);
	wire_buf_release(&out);
	wire_buf_release(&again);
	wire_enc_release(&w);
}
END_TEST

/* A frame of a random batch with some of everything */
static void some_frame(struct wire_buf *out, unsigned seed)
{
	struct wire_enc w;
	struct tally_err e;
	struct batch b;
	srand(seed);
	for (;;) {
		rnd_batch(&b);
		if (b.n_samples >= 10 && b.n_metas && b.n_events)
			break;
		batch_release(&b);
	}
	b.n_samples = 20 < b.n_samples ? 20 : b.n_samples;
	wire_enc_init(&w);
	out->len = 0;
	ck_assert_int_eq(wire_encode(&w, &b, NULL, out, &e), 0);
	wire_enc_release(&w);
	batch_release(&b);
}

START_TEST(every_truncation_refused)
{
	struct wire_buf f = { 0 };
	struct batch d;
	struct tally_err e;
	some_frame(&f, 99);
	batch_init(&d, NULL);
	for (size_t k = 0; k < f.len; k++) {
		int rc = wire_decode(f.p, k, &d, NULL, &e);
		ck_assert_msg(rc == -ENODATA, "%zu of %zu bytes: rc %d (%s)", k, f.len, rc, e.msg);
		ck_assert_uint_eq(d.n_samples + d.n_metas + d.n_events, 0);
	}
	ck_assert_int_eq(wire_decode(f.p, f.len, &d, NULL, &e), 0);
	batch_release(&d);
	wire_buf_release(&f);
}
END_TEST

START_TEST(every_bit_flip)
{
	struct wire_buf f = { 0 }, re = { 0 };
	struct wire_enc w;
	struct batch d, d2;
	struct tally_err e;
	some_frame(&f, 4242);
	batch_init(&d, NULL);
	batch_init(&d2, NULL);
	wire_enc_init(&w);
	uint8_t *g = malloc(f.len);
	ck_assert_ptr_nonnull(g);
	size_t refused = 0, accepted = 0;
	for (size_t bit = 0; bit < f.len * 8; bit++) {
		memcpy(g, f.p, f.len);
		g[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		/* as sent: the checksum catches every single flip */
		int rc = wire_decode(g, f.len, &d, NULL, &e);
		ck_assert_msg(rc < 0, "flip of bit %zu accepted", bit);
		ck_assert_uint_eq(d.n_samples + d.n_metas + d.n_events, 0);
		/* with the checksum repaired (a hostile sender): refused, or a
		 * batch that is a fixed point of encode/decode */
		if (bit / 8 >= f.len - 4)
			continue;
		refix_crc(g, f.len);
		rc = wire_decode(g, f.len, &d, NULL, &e);
		if (rc) {
			ck_assert_uint_eq(d.n_samples + d.n_metas + d.n_events, 0);
			ck_assert(e.msg[0]);
			refused++;
			continue;
		}
		accepted++;
		re.len = 0;
		struct wire_info info;
		ck_assert_int_eq(wire_check(g, f.len, &info.head, &e), 0);
		ck_assert_int_eq(wire_encode(&w, &d, &info.head.origin, &re, &e), 0);
		ck_assert_int_eq(wire_decode(re.p, re.len, &d2, NULL, &e), 0);
		assert_batches_equal(&d, &d2);
	}
	/* both happen: the parser refuses shapes, and values flip freely */
	ck_assert_uint_gt(refused, 100);
	ck_assert_uint_gt(accepted, 100);
	free(g);
	batch_release(&d);
	batch_release(&d2);
	wire_buf_release(&f);
	wire_buf_release(&re);
	wire_enc_release(&w);
}
END_TEST

/* Body bytes of a frame with a given tail after the head of "h1" seq 1. */
static int decode_body(const uint8_t *tail, size_t n, struct batch *d, struct wire_info *info,
		       struct tally_err *e)
{
	uint8_t body[4096], f[4200];
	size_t k = 0;
	body[k++] = 2;
	body[k++] = 'h';
	body[k++] = '1';
	memset(body + k, 0, 16);
	k += 16;
	body[k++] = 0;          /* first seq */
	body[k++] = 1;          /* seq */
	body[k++] = 0xd0;       /* time 1000 */
	body[k++] = 0x0f;
	memcpy(body + k, tail, n);
	return wire_decode(f, frame_of(body, k + n, f), d, info, e);
}

#define BODY(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

START_TEST(body_rules_refused)
{
	struct batch d;
	struct tally_err e;
	struct wire_info info;
	batch_init(&d, NULL);
	/* the smallest valid body: no step, no strings, nothing */
	ck_assert_int_eq(decode_body(BODY(0, 0, 0, 0, 0), &d, &info, &e), 0);
	ck_assert_uint_eq(d.n_samples, 0);
	/* bytes left over */
	ck_assert_int_eq(decode_body(BODY(0, 0, 0, 0, 0, 0), &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "left over"));
	/* an overlong varint: 0 as 80 00 */
	ck_assert_int_eq(decode_body(BODY(0x80, 0x00, 0, 0, 0, 0), &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "overlong"));
	/* clock step over INT64_MAX: 2^63 */
	ck_assert_int_eq(decode_body(BODY(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
					  0, 0, 0, 0), &d, &info, &e), -EBADMSG);
	/* a varint over 64 bits */
	ck_assert_int_eq(decode_body(BODY(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
					  0, 0, 0, 0), &d, &info, &e), -EBADMSG);
	/* a string with a NUL */
	ck_assert_int_eq(decode_body(BODY(0, 1, 2, 'a', 0, 0, 0, 0), &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "NUL"));
	/* more strings than bytes */
	ck_assert_int_eq(decode_body(BODY(0, 9, 0, 0, 0), &d, &info, &e), -EBADMSG);
	/* a count claiming 262144 samples in a few bytes: refused before allocating */
	ck_assert_int_eq(decode_body(BODY(0, 0, 0, 0, 0x80, 0x80, 0x10), &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "sample count"));
	ck_assert_uint_eq(d.cap_samples, 0);
	/* over the limit: 262145 */
	ck_assert_int_eq(decode_body(BODY(0, 0, 0, 0, 0x81, 0x80, 0x10), &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "over the limit"));
	/* one sample r/""/cpu cumulative 5: valid */
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 0, 1, 2, 0, 0, 5),
				     &d, &info, &e), 0);
	ck_assert_uint_eq(d.n_samples, 1);
	ck_assert_uint_eq(d.samples[0].v.counter, 5);
	/* the same with an index past the table */
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 0, 1, 3, 0, 0, 5),
				     &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "past the table"));
	/* an empty resource id */
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 1, 1, 2, 0, 0, 5),
				     &d, &info, &e), -EBADMSG);
	/* kind 3, and a reserved header bit */
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 0, 1, 2, 3, 0, 5),
				     &d, &info, &e), -EBADMSG);
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 0, 1, 2, 0x10, 0, 5),
				     &d, &info, &e), -EBADMSG);
	/* the origin flag with an origin equal to the time 1000: origin 0 */
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 0, 1, 2, 0x08, 0,
					  0xd0, 0x0f, 5), &d, &info, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "origin"));
	/* a gauge cut short */
	ck_assert_int_eq(decode_body(BODY(0, 3, 1, 'r', 0, 3, 'c', 'p', 'u', 0, 0, 1, 0, 1, 2, 1, 0,
					  0, 0, 0, 0, 0, 0, 0), &d, &info, &e), -EBADMSG);
	/* a resource id of 64 bytes (one too long) as a sample's resource */
	{
		uint8_t t[200];
		size_t k = 0;
		t[k++] = 0;
		t[k++] = 2;
		t[k++] = 64;
		memset(t + k, 'x', 64);
		k += 64;
		t[k++] = 0;
		t[k++] = 0;
		t[k++] = 0;
		t[k++] = 1;
		t[k++] = 0;
		t[k++] = 1;
		t[k++] = 1;
		t[k++] = 0;
		t[k++] = 0;
		t[k++] = 5;
		ck_assert_int_eq(decode_body(t, k, &d, &info, &e), -EBADMSG);
		ck_assert_ptr_nonnull(strstr(e.msg, "too long"));
		/* 63 bytes fits, as a resource; the meter "" is unknown */
		t[2] = 63;
		memmove(t + 66, t + 67, k - 67);
		ck_assert_int_eq(decode_body(t, k - 1, &d, &info, &e), 0);
		ck_assert_uint_eq(d.n_samples, 0);
		ck_assert_uint_eq(info.unknown_samples, 1);
		ck_assert_str_eq(info.unknown[0], "");
	}
	/* a string of 512 bytes */
	{
		uint8_t t[600];
		size_t k = 0;
		t[k++] = 0;
		t[k++] = 1;
		t[k++] = 0x80;
		t[k++] = 0x04;
		memset(t + k, 'x', 512);
		k += 512;
		t[k++] = 0;
		t[k++] = 0;
		t[k++] = 0;
		ck_assert_int_eq(decode_body(t, k, &d, &info, &e), -EBADMSG);
		ck_assert_ptr_nonnull(strstr(e.msg, "511"));
	}
	batch_release(&d);
}
END_TEST

START_TEST(preamble_rules_refused)
{
	struct batch d;
	struct tally_err e;
	uint8_t f[sizeof(tiny)];
	batch_init(&d, NULL);
	memcpy(f, tiny, sizeof(f));
	f[0] = 'X';
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "magic"));
	memcpy(f, tiny, sizeof(f));
	f[4] = 2;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	ck_assert_str_eq(e.msg, "frame: wire version 2 (this build reads version 1)");
	memcpy(f, tiny, sizeof(f));
	f[5] = 1;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "flags"));
	memcpy(f, tiny, sizeof(f));
	f[7] = 1;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	/* a body length over 16 MiB is refused before waiting for it */
	memcpy(f, tiny, sizeof(f));
	f[8] = 1, f[9] = 0, f[10] = 0, f[11] = 1;
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "over the limit"));
	/* sequence 0 */
	memcpy(f, tiny, sizeof(f));
	f[32] = 0;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "sequence number 0"));
	/* a spool first seq without a spool id */
	memcpy(f, tiny, sizeof(f));
	f[31] = 1;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	/* a spool id with first seq 0, and with first seq 2 > seq 1 */
	memcpy(f, tiny, sizeof(f));
	f[15] = 9;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	f[31] = 2;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), -EBADMSG);
	f[31] = 1;
	refix_crc(f, sizeof(f));
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, NULL, &e), 0);
	/* unknown meter "vcpuz": the gauge is left out and named */
	memcpy(f, tiny, sizeof(f));
	ck_assert_int_eq(f[70], 's');
	f[70] = 'z';
	refix_crc(f, sizeof(f));
	struct wire_info info;
	ck_assert_int_eq(wire_decode(f, sizeof(f), &d, &info, &e), 0);
	ck_assert_uint_eq(d.n_samples, 1);
	ck_assert_uint_eq(d.samples[0].meter, M_CPU);
	ck_assert_uint_eq(info.unknown_samples, 1);
	ck_assert_uint_eq(info.n_unknown, 1);
	ck_assert_str_eq(info.unknown[0], "vcpuz");
	batch_release(&d);
}
END_TEST

START_TEST(encoder_refuses)
{
	struct wire_enc w;
	struct wire_buf out = { 0 };
	struct tally_err e;
	struct batch b;
	wire_enc_init(&w);
	tiny_batch(&b);
	b.seq = 0;
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), -EINVAL);
	b.seq = 1;
	b.clock_step_ns = -1;
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), -EINVAL);
	b.clock_step_ns = 0;
	b.samples[1].meter = METER_COUNT;
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), -EINVAL);
	b.samples[1].meter = M_VCPUS;
	b.samples[1].flags = 0x80;
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), -EINVAL);
	b.samples[1].flags = 0;
	memset(b.samples[1].device, 'x', sizeof(b.samples[1].device));  /* unterminated */
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), -EINVAL);
	ck_assert_uint_eq(out.len, 0);
	strcpy(b.samples[1].device, "vda");
	struct wire_origin o = { .spool_first_seq = 2 };
	o.spool_id[3] = 1;
	ck_assert_int_eq(wire_encode(&w, &b, &o, &out, &e), -EINVAL);
	ck_assert_uint_eq(out.len, 0);
	/* over the sample limit */
	struct sample s = b.samples[0];
	for (size_t i = b.n_samples; i <= WIRE_MAX_SAMPLES; i++)
		ck_assert_int_eq(batch_add_sample(&b, &s), 0);
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), -E2BIG);
	ck_assert_uint_eq(out.len, 0);
	/* at the limit it fits */
	b.n_samples = WIRE_MAX_SAMPLES;
	ck_assert_int_eq(wire_encode(&w, &b, NULL, &out, &e), 0);
	struct batch d;
	batch_init(&d, NULL);
	ck_assert_int_eq(wire_decode(out.p, out.len, &d, NULL, &e), 0);
	ck_assert_uint_eq(d.n_samples, WIRE_MAX_SAMPLES);
	batch_release(&d);
	batch_release(&b);
	wire_buf_release(&out);
	wire_enc_release(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("wire");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, crc_vectors);
	tcase_add_test(tc, tiny_by_hand);
	tcase_add_test(tc, random_round_trips);
	tcase_add_test(tc, every_truncation_refused);
	tcase_add_test(tc, every_bit_flip);
	tcase_add_test(tc, body_rules_refused);
	tcase_add_test(tc, preamble_rules_refused);
	tcase_add_test(tc, encoder_refuses);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
