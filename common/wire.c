/*
 * wire.c: encoder and decoder of the batch wire format (see wire.h and
 * schemas/batch-wire.md for the layout).
 *
 * Speed: the encoder writes records and the string table into two reusable
 * buffers and joins them once; strings are interned through an open
 * addressing hash with a fast path for a resource, device or meter that
 * repeats the previous sample's. The decoder reads each varint with one
 * branch in the common one-byte case and copies each string from the table
 * into the fixed-size field of the sample.
 */
#include "wire.h"
#include "vec.h"
#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"
#include "str.h"

#define HDR_KIND_MASK  0x03u
#define HDR_LAST       0x04u
#define HDR_ORIGIN     0x08u
#define HDR_RESERVED   0xF0u

/* smallest encoding of one record, used to bound counts by the bytes left */
#define MIN_SAMPLE 6
#define MIN_META   9
#define MIN_EVENT  4
#define MAX_VARINT 10

void wire_buf_release(struct wire_buf *w)
{
	free(w->p);
	w->p = NULL;
	w->len = w->cap = 0;
}

int wire_buf_reserve(struct wire_buf *w, size_t n)
{
	if (n <= w->cap - w->len)
		return 0;
	if (n > SIZE_MAX / 2 - w->len)
		return -ENOMEM;
	size_t need = w->len + n, cap = w->cap ? w->cap : 4096;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(w->p, cap);
	if (!p)
		return -ENOMEM;
	w->p = p;
	w->cap = cap;
	return 0;
}

/* ---- little helpers ---------------------------------------------------- */

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint64_t zigzag(uint64_t v)
{
	return (v << 1) ^ (0 - (v >> 63));
}

static inline uint64_t unzigzag(uint64_t v)
{
	return (v >> 1) ^ (0 - (v & 1));
}

static int id_all_zero(const uint8_t *id)
{
	for (int i = 0; i < WIRE_SPOOL_ID_LEN; i++)
		if (id[i])
			return 0;
	return 1;
}

/* ---- encoder ----------------------------------------------------------- */

void wire_enc_init(struct wire_enc *w)
{
	memset(w, 0, sizeof(*w));
}

void wire_enc_release(struct wire_enc *w)
{
	free(w->str);
	free(w->slot);
	wire_buf_release(&w->strings);
	wire_buf_release(&w->records);
	memset(w, 0, sizeof(*w));
}

static uint32_t hash_str(const char *s, uint32_t len)
{
	return hash_fnv32(HASH_FNV32_INIT, s, len);
}

static int rehash(struct wire_enc *w, size_t n_slot)
{
	uint32_t *slot = calloc(n_slot, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_str; i++) {
		size_t k = w->str[i].hash & (n_slot - 1);
		while (slot[k])
			k = (k + 1) & (n_slot - 1);
		slot[k] = (uint32_t)i + 1;
	}
	free(w->slot);
	w->slot = slot;
	w->n_slot = n_slot;
	return 0;
}

/* Index of s[len] in this frame's string table, adding it when new; -1 on
 * -ENOMEM, -2 over WIRE_MAX_STRINGS. */
static int64_t intern(struct wire_enc *w, const char *s, uint32_t len)
{
	uint32_t h = hash_str(s, len);
	size_t k = h & (w->n_slot - 1);
	for (uint32_t i; (i = w->slot[k]); k = (k + 1) & (w->n_slot - 1)) {
		const struct wire_str *e = &w->str[i - 1];
		if (e->hash == h && e->len == len && !memcmp(e->s, s, len))
			return i - 1;
	}
	if (w->n_str >= WIRE_MAX_STRINGS)
		return -2;
	if (vec_reserve((void **)&w->str, &w->cap_str, w->n_str + 1, sizeof(*w->str), 256))
		return -1;
	if (wire_buf_reserve(&w->strings, (size_t)len + 5))
		return -1;
	w->strings.len = (size_t)(put_uvarint(w->strings.p + w->strings.len, len) - w->strings.p);
	memcpy(w->strings.p + w->strings.len, s, len);
	w->strings.len += len;
	w->str[w->n_str] = (struct wire_str){ s, len, h };
	w->slot[k] = (uint32_t)++w->n_str;
	if (w->n_str * 2 > w->n_slot && rehash(w, w->n_slot * 2))
		return -1;
	return (int64_t)w->n_str - 1;
}

/* strnlen that says whether the field was terminated */
static int field_len(const char *s, size_t size, uint32_t *len)
{
	const char *z = memchr(s, '\0', size);
	if (!z)
		return -1;
	*len = (uint32_t)(z - s);
	return 0;
}

int wire_sample_ok(const struct sample *s)
{
	uint32_t n;
	return s->meter < METER_COUNT && s->kind <= SAMPLE_DELTA && !(s->flags & ~SAMPLE_F_LAST) &&
	       !field_len(s->resource, sizeof(s->resource), &n) && n > 0 &&
	       !field_len(s->device, sizeof(s->device), &n);
}

/* intern a fixed-size field; *idx set; 0, -EINVAL, -E2BIG or -ENOMEM */
static int intern_field(struct wire_enc *w, const char *s, size_t size, uint64_t *idx)
{
	uint32_t len;
	if (field_len(s, size, &len))
		return -EINVAL;
	int64_t i = intern(w, s, len);
	if (i < 0)
		return i == -2 ? -E2BIG : -ENOMEM;
	*idx = (uint64_t)i;
	return 0;
}

int wire_encode(struct wire_enc *w, const struct batch *b, const struct wire_origin *o,
		struct wire_buf *out, struct tally_err *e)
{
	static const struct wire_origin none;
	uint32_t agent_len;
	int rc = 0;
	uint8_t *p;

	if (!o)
		o = &none;
	if (field_len(b->agent, sizeof(b->agent), &agent_len) || !agent_len)
		return err_set(e, -EINVAL, "batch: agent id missing or not terminated");
	if (b->seq == 0)
		return err_set(e, -EINVAL, "batch from '%s': sequence number 0", b->agent);
	if (b->clock_step_ns < 0)
		return err_set(e, -EINVAL, "batch %llu from '%s': negative clock step",
			       (unsigned long long)b->seq, b->agent);
	if (id_all_zero(o->spool_id) ? o->spool_first_seq != 0
				     : (o->spool_first_seq == 0 || o->spool_first_seq > b->seq))
		return err_set(e, -EINVAL, "batch %llu from '%s': spool first seq %llu does not fit",
			       (unsigned long long)b->seq, b->agent, (unsigned long long)o->spool_first_seq);
	if (b->n_samples > WIRE_MAX_SAMPLES || b->n_metas > WIRE_MAX_METAS || b->n_events > WIRE_MAX_EVENTS)
		return err_set(e, -E2BIG, "batch %llu from '%s': %zu samples, %zu metadata, %zu events "
			       "(at most %u, %u, %u per frame)", (unsigned long long)b->seq, b->agent,
			       b->n_samples, b->n_metas, b->n_events, WIRE_MAX_SAMPLES, WIRE_MAX_METAS,
			       WIRE_MAX_EVENTS);

	/* a fresh string table: at least twice as many slots as entries */
	w->n_str = 0;
	w->strings.len = 0;
	w->records.len = 0;
	size_t want = 1024;
	while (want < 4 * (b->n_samples + 4 * b->n_metas + 2 * b->n_events) && want < 4 * WIRE_MAX_STRINGS)
		want *= 2;
	if (w->n_slot < want) {
		if (rehash(w, want))
			return err_set(e, -ENOMEM, "out of memory");
	} else {
		memset(w->slot, 0, w->n_slot * sizeof(*w->slot));
	}

	/* records: worst case per sample 3 indexes, a header byte, time,
	 * origin, value; per meta 8 indexes and a time; per event 3 and one */
	size_t worst = b->n_samples * (3 * 5 + 1 + 3 * MAX_VARINT) + b->n_metas * (8 * 5 + MAX_VARINT) +
		       b->n_events * (3 * 5 + MAX_VARINT) + 3 * MAX_VARINT;
	if (wire_buf_reserve(&w->records, worst))
		return err_set(e, -ENOMEM, "out of memory");
	p = w->records.p;

	p = put_uvarint(p, b->n_metas);
	for (size_t i = 0; i < b->n_metas; i++) {
		const struct resource_meta *m = &b->metas[i];
		uint64_t ix[8];
		const char *f[8] = { m->resource, m->type, m->name, m->tenant, m->project, m->user,
				     m->flavor, m->labels };
		const size_t sz[8] = { sizeof(m->resource), sizeof(m->type), sizeof(m->name), sizeof(m->tenant),
				       sizeof(m->project), sizeof(m->user), sizeof(m->flavor), sizeof(m->labels) };
		p = put_uvarint(p, zigzag((uint64_t)m->time_ns - (uint64_t)b->time_ns));
		for (int k = 0; k < 8; k++) {
			if ((rc = intern_field(w, f[k], sz[k], &ix[k])))
				goto fail;
			p = put_uvarint(p, ix[k]);
		}
		if (!m->resource[0]) {
			rc = -EINVAL;
			goto fail;
		}
	}
	p = put_uvarint(p, b->n_events);
	for (size_t i = 0; i < b->n_events; i++) {
		const struct lifecycle_event *ev = &b->events[i];
		uint64_t r, t, why;
		p = put_uvarint(p, zigzag((uint64_t)ev->time_ns - (uint64_t)b->time_ns));
		if ((rc = intern_field(w, ev->resource, sizeof(ev->resource), &r)) ||
		    (rc = intern_field(w, ev->type, sizeof(ev->type), &t)) ||
		    (rc = intern_field(w, ev->reason, sizeof(ev->reason), &why)))
			goto fail;
		if (!ev->resource[0]) {
			rc = -EINVAL;
			goto fail;
		}
		p = put_uvarint(p, r);
		p = put_uvarint(p, t);
		p = put_uvarint(p, why);
	}
	p = put_uvarint(p, b->n_samples);
	{
		uint64_t prev_t = (uint64_t)b->time_ns, res = 0, dev = 0;
		const struct sample *prev = NULL;
		int64_t meter_ix[METER_COUNT];
		for (int k = 0; k < METER_COUNT; k++)
			meter_ix[k] = -1;
		for (size_t i = 0; i < b->n_samples; i++) {
			const struct sample *s = &b->samples[i];
			if (!wire_sample_ok(s)) {
				rc = -EINVAL;
				goto fail;
			}
			if (!prev || strcmp(prev->resource, s->resource))
				if ((rc = intern_field(w, s->resource, sizeof(s->resource), &res)))
					goto fail;
			if (!prev || strcmp(prev->device, s->device))
				if ((rc = intern_field(w, s->device, sizeof(s->device), &dev)))
					goto fail;
			if (meter_ix[s->meter] < 0) {
				const char *name = meter_table[s->meter].name;
				meter_ix[s->meter] = intern(w, name, (uint32_t)strlen(name));
				if (meter_ix[s->meter] < 0) {
					rc = meter_ix[s->meter] == -2 ? -E2BIG : -ENOMEM;
					goto fail;
				}
			}
			prev = s;
			p = put_uvarint(p, res);
			p = put_uvarint(p, dev);
			p = put_uvarint(p, (uint64_t)meter_ix[s->meter]);
			*p++ = (uint8_t)(s->kind | ((s->flags & SAMPLE_F_LAST) ? HDR_LAST : 0) |
					 (s->origin_ns ? HDR_ORIGIN : 0));
			p = put_uvarint(p, zigzag((uint64_t)s->time_ns - prev_t));
			prev_t = (uint64_t)s->time_ns;
			if (s->origin_ns)
				p = put_uvarint(p, zigzag((uint64_t)s->time_ns - (uint64_t)s->origin_ns));
			if (s->kind == SAMPLE_GAUGE) {
				uint64_t bits;
				memcpy(&bits, &s->v.gauge, 8);
				le_put64(p, bits);
				p += 8;
			} else {
				p = put_uvarint(p, s->v.counter);
			}
		}
	}
	w->records.len = (size_t)(p - w->records.p);

	/* head: agent, spool id, spool first seq, seq, time, clock step, strings */
	{
		uint8_t head[5 + TALLY_ID_MAX + WIRE_SPOOL_ID_LEN + 5 * MAX_VARINT];
		uint8_t *h = head;
		h = put_uvarint(h, agent_len);
		memcpy(h, b->agent, agent_len);
		h += agent_len;
		memcpy(h, o->spool_id, WIRE_SPOOL_ID_LEN);
		h += WIRE_SPOOL_ID_LEN;
		h = put_uvarint(h, o->spool_first_seq);
		h = put_uvarint(h, b->seq);
		h = put_uvarint(h, zigzag((uint64_t)b->time_ns));
		h = put_uvarint(h, (uint64_t)b->clock_step_ns);
		h = put_uvarint(h, w->n_str);
		size_t head_len = (size_t)(h - head);
		size_t body = head_len + w->strings.len + w->records.len;
		if (body > WIRE_MAX_BODY)
			return err_set(e, -E2BIG, "batch %llu from '%s': %zu bytes encoded, over the frame limit "
				       "of %u", (unsigned long long)b->seq, b->agent, body, WIRE_MAX_BODY);
		if (wire_buf_reserve(out, body + WIRE_OVERHEAD))
			return err_set(e, -ENOMEM, "out of memory");
		uint8_t *f = out->p + out->len;
		memcpy(f, WIRE_MAGIC, 4);
		f[4] = WIRE_VERSION;
		f[5] = 0;               /* flags */
		f[6] = f[7] = 0;        /* reserved */
		le_put32(f + 8, (uint32_t)body);
		memcpy(f + WIRE_PREAMBLE, head, head_len);
		memcpy(f + WIRE_PREAMBLE + head_len, w->strings.p, w->strings.len);
		memcpy(f + WIRE_PREAMBLE + head_len + w->strings.len, w->records.p, w->records.len);
		size_t n = WIRE_PREAMBLE + body;
		le_put32(f + n, crc32c(0, f, n));
		out->len += n + 4;
	}
	return 0;
fail:
	switch (rc) {
	case -E2BIG:
		return err_set(e, rc, "batch %llu from '%s': more than %u distinct strings",
			       (unsigned long long)b->seq, b->agent, WIRE_MAX_STRINGS);
	case -ENOMEM:
		return err_set(e, rc, "out of memory");
	default:
		return err_set(e, -EINVAL, "batch %llu from '%s': a sample, metadata or event the wire "
			       "format cannot carry (unknown meter, kind or flag, empty resource id or "
			       "an unterminated field)", (unsigned long long)b->seq, b->agent);
	}
}

/* ---- decoder ----------------------------------------------------------- */

/* Room for n elements of size elem in *arr (capacity *cap); 0 or -ENOMEM
 * (with the message in e). */
static int reserve_arr(void **arr, size_t *cap, size_t n, size_t elem, struct tally_err *e)
{
	if (n <= *cap)
		return 0;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return err_set(e, -ENOMEM, "out of memory");
	*arr = p;
	*cap = n;
	return 0;
}

struct rd {
	const uint8_t *p, *end, *start;
	const char *what;       /* the field being read, for the message */
};

/* Read a varint; refuses one past the end, longer than 10 bytes, over 64
 * bits or with a needless trailing zero byte (a non-canonical form). */
static inline int rd_uvarint(struct rd *r, uint64_t *v)
{
	if (r->p < r->end && *r->p < 0x80) {
		*v = *r->p++;
		return 0;
	}
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -ENODATA;
		uint8_t c = *r->p++;
		if (shift == 63 && c > 1)
			return -ERANGE;
		x |= (uint64_t)(c & 0x7f) << shift;
		if (c < 0x80) {
			if (!c && shift)
				return -EILSEQ;
			*v = x;
			return 0;
		}
	}
	return -ERANGE;
}

struct strent {
	uint32_t off;           /* from the start of the body */
	uint16_t len;
	int16_t meter;          /* meter id, -1 unknown name, -2 not looked up */
};

struct dec {
	struct rd r;
	const uint8_t *body;
	struct strent *str;
	uint64_t n_str;
	struct tally_err *e;
	const struct wire_head *h;
};

static int bad(struct dec *d, int rc, const char *fmt, const char *what)
{
	const char *why = rc == -ENODATA ? "ends inside" : rc == -ERANGE ? "out of range in"
			  : rc == -EILSEQ ? "overlong varint in" : fmt;
	return err_set(d->e, -EBADMSG, "frame %llu from '%s': %s %s at body offset %zu",
		       (unsigned long long)d->h->seq, d->h->agent, why, what,
		       (size_t)(d->r.p - d->body));
}

/* A string-table index for a field of size fsize (with its NUL). */
static inline int rd_index(struct dec *d, size_t fsize, const char *what, const struct strent **out)
{
	uint64_t i;
	int rc = rd_uvarint(&d->r, &i);
	if (rc)
		return bad(d, rc, "", what);
	if (i >= d->n_str)
		return bad(d, -1, "string index past the table in", what);
	if (d->str[i].len >= fsize)
		return bad(d, -1, "string too long for", what);
	*out = &d->str[i];
	return 0;
}

/* A record count, at most limit and at most what the bytes left can hold
 * at min_size bytes a record. 0, or -EBADMSG with e set. */
static int rd_count(struct dec *d, uint64_t limit, uint64_t min_size, const char *what, uint64_t *n)
{
	int rc = rd_uvarint(&d->r, n);
	if (rc)
		return bad(d, rc, "", what);
	if (*n > limit || *n > (uint64_t)(d->r.end - d->r.p) / min_size)
		return bad(d, -1, *n > limit ? "over the limit:" : "more than the frame holds:", what);
	return 0;
}

static inline void copy_str(char *dst, size_t size, const uint8_t *body, const struct strent *s)
{
	memcpy(dst, body + s->off, s->len);
	memset(dst + s->len, 0, size - s->len);
}

/* check the preamble, CRC and head; leaves r at the string table count */
static int check(const uint8_t *buf, size_t len, struct wire_head *h, struct rd *r, struct tally_err *e)
{
	memset(h, 0, sizeof(*h));
	if (len < WIRE_PREAMBLE) {
		if (memcmp(buf, WIRE_MAGIC, len < 4 ? len : 4))
			return err_set(e, -EBADMSG, "frame: bad magic (not a tally batch frame)");
		return err_set(e, -ENODATA, "frame: %zu bytes, shorter than its %d-byte preamble",
			       len, WIRE_PREAMBLE);
	}
	if (memcmp(buf, WIRE_MAGIC, 4))
		return err_set(e, -EBADMSG, "frame: bad magic (not a tally batch frame)");
	if (buf[4] != WIRE_VERSION)
		return err_set(e, -EBADMSG, "frame: wire version %u (this build reads version %d)",
			       buf[4], WIRE_VERSION);
	if (buf[5])
		return err_set(e, -EBADMSG, "frame: unknown flags 0x%02x", buf[5]);
	if (buf[6] || buf[7])
		return err_set(e, -EBADMSG, "frame: reserved bytes not zero");
	uint32_t body = le_get32(buf + 8);
	if (body > WIRE_MAX_BODY)
		return err_set(e, -EBADMSG, "frame: body of %u bytes, over the limit of %u",
			       body, WIRE_MAX_BODY);
	size_t n = (size_t)WIRE_PREAMBLE + body;
	h->frame_len = n + 4;
	if (len < n + 4)
		return err_set(e, -ENODATA, "frame: %zu of its %zu bytes", len, n + 4);
	uint32_t want = le_get32(buf + n), got = crc32c(0, buf, n);
	if (want != got)
		return err_set(e, -EBADMSG, "frame: checksum mismatch (CRC-32C 0x%08x, frame says 0x%08x)",
			       got, want);

	r->start = buf + WIRE_PREAMBLE;
	r->p = r->start;
	r->end = buf + n;
	uint64_t alen, v;
	int rc;
	if ((rc = rd_uvarint(r, &alen)) || alen == 0 || alen >= TALLY_ID_MAX || alen > (size_t)(r->end - r->p))
		return err_set(e, -EBADMSG, "frame: bad agent id length");
	memcpy(h->agent, r->p, alen);
	if (memchr(h->agent, '\0', alen))
		return err_set(e, -EBADMSG, "frame: NUL byte in the agent id");
	r->p += alen;
	if ((size_t)(r->end - r->p) < WIRE_SPOOL_ID_LEN)
		return err_set(e, -EBADMSG, "frame from '%s': ends inside the spool id", h->agent);
	memcpy(h->origin.spool_id, r->p, WIRE_SPOOL_ID_LEN);
	r->p += WIRE_SPOOL_ID_LEN;
	if ((rc = rd_uvarint(r, &h->origin.spool_first_seq)) || (rc = rd_uvarint(r, &h->seq)))
		return err_set(e, -EBADMSG, "frame from '%s': bad sequence number", h->agent);
	if (h->seq == 0)
		return err_set(e, -EBADMSG, "frame from '%s': sequence number 0", h->agent);
	if (id_all_zero(h->origin.spool_id) ? h->origin.spool_first_seq != 0
	    : (h->origin.spool_first_seq == 0 || h->origin.spool_first_seq > h->seq))
		return err_set(e, -EBADMSG, "frame %llu from '%s': spool first seq %llu does not fit",
			       (unsigned long long)h->seq, h->agent,
			       (unsigned long long)h->origin.spool_first_seq);
	if ((rc = rd_uvarint(r, &v)))
		return err_set(e, -EBADMSG, "frame %llu from '%s': bad batch time",
			       (unsigned long long)h->seq, h->agent);
	h->time_ns = (int64_t)unzigzag(v);
	return 0;
}

int wire_check(const uint8_t *buf, size_t len, struct wire_head *h, struct tally_err *e)
{
	struct rd r;
	return check(buf, len, h, &r, e);
}

int wire_decode(const uint8_t *buf, size_t len, struct batch *b, struct wire_info *info,
		struct tally_err *e)
{
	struct wire_info local;
	struct strent small[256];
	struct dec d = { .e = e, .str = small };
	uint64_t v, n;
	int rc;

	if (!info)
		info = &local;
	memset(info, 0, sizeof(*info));
	batch_clear(b);
	d.h = &info->head;
	if ((rc = check(buf, len, &info->head, &d.r, e)))
		return rc;
	d.body = d.r.start;
	str_copy(b->agent, info->head.agent, sizeof(b->agent));
	b->seq = info->head.seq;
	b->time_ns = info->head.time_ns;
	const uint64_t t0 = (uint64_t)b->time_ns;

	if ((rc = rd_uvarint(&d.r, &v)) || v > INT64_MAX) {
		rc = bad(&d, rc ? rc : -ERANGE, "", "the clock step");
		goto out;
	}
	b->clock_step_ns = (int64_t)v;

	/* the string table */
	if ((rc = rd_uvarint(&d.r, &d.n_str))) {
		rc = bad(&d, rc, "", "the string count");
		goto out;
	}
	if (d.n_str > WIRE_MAX_STRINGS || d.n_str > (uint64_t)(d.r.end - d.r.p)) {
		rc = bad(&d, -1, "too many strings for the frame in", "the string table");
		goto out;
	}
	if (d.n_str > sizeof(small) / sizeof(small[0]) && !(d.str = malloc(d.n_str * sizeof(*d.str)))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < d.n_str; i++) {
		if ((rc = rd_uvarint(&d.r, &v))) {
			rc = bad(&d, rc, "", "a string length");
			goto out;
		}
		if (v > WIRE_MAX_STRING || v > (uint64_t)(d.r.end - d.r.p)) {
			rc = bad(&d, -1, v > WIRE_MAX_STRING ? "string over 511 bytes in" : "ends inside",
				 "the string table");
			goto out;
		}
		if (memchr(d.r.p, '\0', v)) {
			rc = bad(&d, -1, "NUL byte in", "the string table");
			goto out;
		}
		d.str[i] = (struct strent){ (uint32_t)(d.r.p - d.body), (uint16_t)v, -2 };
		d.r.p += v;
	}

	/* metadata */
	if ((rc = rd_count(&d, WIRE_MAX_METAS, MIN_META, "the metadata count", &n)) ||
	    (rc = reserve_arr((void **)&b->metas, &b->cap_metas, n, sizeof(*b->metas), e)))
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		struct resource_meta *m = &b->metas[i];
		const struct strent *s[8];
		static const char *const what[8] = { "a metadata resource", "a metadata type", "a name",
						     "a tenant", "a project", "a user", "a flavor", "labels" };
		const size_t sz[8] = { sizeof(m->resource), sizeof(m->type), sizeof(m->name), sizeof(m->tenant),
				       sizeof(m->project), sizeof(m->user), sizeof(m->flavor), sizeof(m->labels) };
		char *dst[8] = { m->resource, m->type, m->name, m->tenant, m->project, m->user, m->flavor,
				 m->labels };
		if ((rc = rd_uvarint(&d.r, &v))) {
			rc = bad(&d, rc, "", "a metadata time");
			goto out;
		}
		m->time_ns = (int64_t)(t0 + unzigzag(v));
		for (int k = 0; k < 8; k++) {
			if ((rc = rd_index(&d, sz[k], what[k], &s[k])))
				goto out;
			copy_str(dst[k], sz[k], d.body, s[k]);
		}
		if (!s[0]->len) {
			rc = bad(&d, -1, "empty resource id in", "metadata");
			goto out;
		}
	}
	b->n_metas = n;

	/* events */
	if ((rc = rd_count(&d, WIRE_MAX_EVENTS, MIN_EVENT, "the event count", &n)) ||
	    (rc = reserve_arr((void **)&b->events, &b->cap_events, n, sizeof(*b->events), e)))
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		struct lifecycle_event *ev = &b->events[i];
		const struct strent *r, *t, *why;
		if ((rc = rd_uvarint(&d.r, &v))) {
			rc = bad(&d, rc, "", "an event time");
			goto out;
		}
		ev->time_ns = (int64_t)(t0 + unzigzag(v));
		if ((rc = rd_index(&d, sizeof(ev->resource), "an event resource", &r)) ||
		    (rc = rd_index(&d, sizeof(ev->type), "an event type", &t)) ||
		    (rc = rd_index(&d, sizeof(ev->reason), "an event reason", &why)))
			goto out;
		if (!r->len) {
			rc = bad(&d, -1, "empty resource id in", "an event");
			goto out;
		}
		copy_str(ev->resource, sizeof(ev->resource), d.body, r);
		copy_str(ev->type, sizeof(ev->type), d.body, t);
		copy_str(ev->reason, sizeof(ev->reason), d.body, why);
	}
	b->n_events = n;

	/* samples */
	if ((rc = rd_count(&d, WIRE_MAX_SAMPLES, MIN_SAMPLE, "the sample count", &n)) ||
	    (rc = reserve_arr((void **)&b->samples, &b->cap_samples, n, sizeof(*b->samples), e)))
		goto out;
	{
		uint64_t prev_t = t0;
		size_t out_n = 0;
		const struct strent *last_res = NULL, *last_dev = NULL;
		for (uint64_t i = 0; i < n; i++) {
			struct sample *s = &b->samples[out_n];
			const struct strent *res, *dev, *met;
			if ((rc = rd_index(&d, sizeof(s->resource), "a sample resource", &res)) ||
			    (rc = rd_index(&d, sizeof(s->device), "a sample device", &dev)) ||
			    (rc = rd_index(&d, TALLY_ID_MAX, "a meter name", &met)))
				goto out;
			if (!res->len) {
				rc = bad(&d, -1, "empty resource id in", "a sample");
				goto out;
			}
			if (d.r.p >= d.r.end) {
				rc = bad(&d, -ENODATA, "", "a sample header");
				goto out;
			}
			uint8_t hdr = *d.r.p++;
			if ((hdr & HDR_RESERVED) || (hdr & HDR_KIND_MASK) > SAMPLE_DELTA) {
				d.r.p--;
				rc = bad(&d, -1, "unknown kind or flag bits in", "a sample header");
				goto out;
			}
			if ((rc = rd_uvarint(&d.r, &v))) {
				rc = bad(&d, rc, "", "a sample time");
				goto out;
			}
			prev_t += unzigzag(v);
			s->time_ns = (int64_t)prev_t;
			s->origin_ns = 0;
			if (hdr & HDR_ORIGIN) {
				if ((rc = rd_uvarint(&d.r, &v))) {
					rc = bad(&d, rc, "", "a sample origin");
					goto out;
				}
				s->origin_ns = (int64_t)(prev_t - unzigzag(v));
				if (!s->origin_ns) {
					rc = bad(&d, -1, "origin flag with origin 0 in", "a sample");
					goto out;
				}
			}
			s->kind = hdr & HDR_KIND_MASK;
			s->flags = (hdr & HDR_LAST) ? SAMPLE_F_LAST : 0;
			if (s->kind == SAMPLE_GAUGE) {
				if (d.r.end - d.r.p < 8) {
					rc = bad(&d, -ENODATA, "", "a gauge value");
					goto out;
				}
				uint64_t bits = le_get64(d.r.p);
				memcpy(&s->v.gauge, &bits, 8);
				d.r.p += 8;
			} else if ((rc = rd_uvarint(&d.r, &s->v.counter))) {
				rc = bad(&d, rc, "", "a counter value");
				goto out;
			}
			struct strent *m = (struct strent *)met;
			if (m->meter == -2) {
				char name[TALLY_ID_MAX];
				copy_str(name, sizeof(name), d.body, m);
				m->meter = (int16_t)meter_lookup(name);
			}
			if (m->meter < 0) {
				char name[TALLY_ID_MAX];
				copy_str(name, sizeof(name), d.body, m);
				info->unknown_samples++;
				size_t k = 0;
				while (k < info->n_unknown && strcmp(info->unknown[k], name))
					k++;
				if (k == info->n_unknown && k < WIRE_UNKNOWN_MAX)
					memcpy(info->unknown[info->n_unknown++], name, sizeof(name));
				continue;
			}
			s->meter = (uint16_t)m->meter;
			if (res != last_res) {
				copy_str(s->resource, sizeof(s->resource), d.body, res);
				last_res = res;
			} else {
				memcpy(s->resource, s[-1].resource, sizeof(s->resource));
			}
			if (dev != last_dev) {
				copy_str(s->device, sizeof(s->device), d.body, dev);
				last_dev = dev;
			} else {
				memcpy(s->device, s[-1].device, sizeof(s->device));
			}
			out_n++;
		}
		b->n_samples = out_n;
	}
	if (d.r.p != d.r.end) {
		rc = bad(&d, -1, "bytes left over after", "the last sample");
		goto out;
	}
	rc = 0;
out:
	if (d.str != small)
		free(d.str);
	if (rc)
		batch_clear(b);
	return rc;
}
