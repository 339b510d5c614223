/*
 * snmp_parse.c: the SNMP collector's response handling, with no net-snmp
 * and no I/O (see snmp_internal.h): GETBULK answers into table rows, and a
 * port's two readings into samples by DESIGN.md's rules.
 *
 * Everything here is fed by a device on the network, so it trusts nothing:
 * every OID is checked against the column it answers, every value's type
 * against the column's, every index for range, every string for length and
 * printable bytes. What is wrong is counted and left out; nothing is
 * guessed.
 */
#include "snmp_internal.h"
#include "hash.h"
#include "err.h"
#include "str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IFX(n) { 1, 3, 6, 1, 2, 1, 31, 1, 1, 1, n }
#define IFT(n) { 1, 3, 6, 1, 2, 1, 2, 2, 1, n }
#define HRP(n) { 1, 3, 6, 1, 2, 1, 25, 3, 3, 1, n }
#define HRS(n) { 1, 3, 6, 1, 2, 1, 25, 2, 3, 1, n }

const struct snmp_coldef snmp_cols[SC_COUNT] = {
	[SC_IFNAME] = { "ifName", ST_IF, SNMP_T_OCTETS, 11, IFX(1) },
	[SC_HCIN_OCT] = { "ifHCInOctets", ST_IF, SNMP_T_COUNTER64, 11, IFX(6) },
	[SC_HCIN_UCAST] = { "ifHCInUcastPkts", ST_IF, SNMP_T_COUNTER64, 11, IFX(7) },
	[SC_HCIN_MCAST] = { "ifHCInMulticastPkts", ST_IF, SNMP_T_COUNTER64, 11, IFX(8) },
	[SC_HCIN_BCAST] = { "ifHCInBroadcastPkts", ST_IF, SNMP_T_COUNTER64, 11, IFX(9) },
	[SC_HCOUT_OCT] = { "ifHCOutOctets", ST_IF, SNMP_T_COUNTER64, 11, IFX(10) },
	[SC_HCOUT_UCAST] = { "ifHCOutUcastPkts", ST_IF, SNMP_T_COUNTER64, 11, IFX(11) },
	[SC_HCOUT_MCAST] = { "ifHCOutMulticastPkts", ST_IF, SNMP_T_COUNTER64, 11, IFX(12) },
	[SC_HCOUT_BCAST] = { "ifHCOutBroadcastPkts", ST_IF, SNMP_T_COUNTER64, 11, IFX(13) },
	[SC_HIGHSPEED] = { "ifHighSpeed", ST_IF, SNMP_T_GAUGE32, 11, IFX(15) },
	[SC_IFALIAS] = { "ifAlias", ST_IF, SNMP_T_OCTETS, 11, IFX(18) },
	[SC_DISCONT] = { "ifCounterDiscontinuityTime", ST_IF, SNMP_T_TIMETICKS, 11, IFX(19) },
	[SC_IFDESCR] = { "ifDescr", ST_IF, SNMP_T_OCTETS, 10, IFT(2) },
	[SC_OPER] = { "ifOperStatus", ST_IF, SNMP_T_INTEGER, 10, IFT(8) },
	[SC_IN_OCT] = { "ifInOctets", ST_IF, SNMP_T_COUNTER32, 10, IFT(10) },
	[SC_IN_DISC] = { "ifInDiscards", ST_IF, SNMP_T_COUNTER32, 10, IFT(13) },
	[SC_IN_ERR] = { "ifInErrors", ST_IF, SNMP_T_COUNTER32, 10, IFT(14) },
	[SC_OUT_OCT] = { "ifOutOctets", ST_IF, SNMP_T_COUNTER32, 10, IFT(16) },
	[SC_OUT_DISC] = { "ifOutDiscards", ST_IF, SNMP_T_COUNTER32, 10, IFT(19) },
	[SC_OUT_ERR] = { "ifOutErrors", ST_IF, SNMP_T_COUNTER32, 10, IFT(20) },
	[SC_HRPROC_LOAD] = { "hrProcessorLoad", ST_HRPROC, SNMP_T_INTEGER, 11, HRP(2) },
	[SC_HRST_TYPE] = { "hrStorageType", ST_HRSTORAGE, SNMP_T_OID, 11, HRS(2) },
	[SC_HRST_DESCR] = { "hrStorageDescr", ST_HRSTORAGE, SNMP_T_OCTETS, 11, HRS(3) },
	[SC_HRST_UNITS] = { "hrStorageAllocationUnits", ST_HRSTORAGE, SNMP_T_INTEGER, 11, HRS(4) },
	[SC_HRST_SIZE] = { "hrStorageSize", ST_HRSTORAGE, SNMP_T_INTEGER, 11, HRS(5) },
	[SC_HRST_USED] = { "hrStorageUsed", ST_HRSTORAGE, SNMP_T_INTEGER, 11, HRS(6) },
};

const unsigned long snmp_sysuptime_oid[SNMP_SYSUPTIME_LEN] = { 1, 3, 6, 1, 2, 1, 1, 3 };
static const unsigned long hrst_types[9] = { 1, 3, 6, 1, 2, 1, 25, 2, 1 };

int snmp_walk_init(struct snmp_walk *w, uint32_t cols, size_t max_rows)
{
	memset(w, 0, sizeof(*w));
	w->cols = cols & ((1u << SC_COUNT) - 1u);
	w->max_rows = max_rows ? max_rows : 1;
	for (int c = 0; c < SC_COUNT; c++) {
		memcpy(w->last[c], snmp_cols[c].oid, snmp_cols[c].oid_len * sizeof(unsigned long));
		w->last_len[c] = snmp_cols[c].oid_len;
	}
	w->cap_rows = 16;
	w->rows = calloc(w->cap_rows, sizeof(*w->rows));
	return w->rows ? 0 : -ENOMEM;
}

void snmp_walk_release(struct snmp_walk *w)
{
	free(w->rows);
	w->rows = NULL;
	w->n_rows = w->cap_rows = 0;
}

bool snmp_walk_finished(const struct snmp_walk *w)
{
	return (w->done & w->cols) == w->cols;
}

size_t snmp_walk_pending(const struct snmp_walk *w, int *cols)
{
	size_t n = 0;
	for (int c = 0; c < SC_COUNT; c++)
		if ((w->cols & (1u << c)) && !(w->done & (1u << c)))
			cols[n++] = c;
	return n;
}

static int oid_cmp(const unsigned long *a, size_t alen, const unsigned long *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static uint64_t row_key(uint8_t table, uint32_t index)
{
	return (uint64_t)table << 32 | index;
}

/* Binary search: the position of (table, index), or where it would go. */
static size_t row_pos(const struct snmp_walk *w, uint64_t key, bool *found)
{
	size_t lo = 0, hi = w->n_rows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t k = row_key(w->rows[mid].table, w->rows[mid].index);
		if (k == key) {
			*found = true;
			return mid;
		}
		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

const struct snmp_row *snmp_walk_row(const struct snmp_walk *w, uint8_t table, uint32_t index)
{
	bool found;
	size_t p = row_pos(w, row_key(table, index), &found);
	return found ? &w->rows[p] : NULL;
}

/* The row for (table, index), added if new; NULL when the table is full
 * (w->truncated is set) or out of memory (*nomem). */
static struct snmp_row *row_get(struct snmp_walk *w, uint8_t table, uint32_t index, bool *nomem)
{
	bool found;
	uint64_t key = row_key(table, index);
	/* columns arrive in index order: the new row is usually the last */
	size_t p = w->n_rows && row_key(w->rows[w->n_rows - 1].table, w->rows[w->n_rows - 1].index) < key
		   ? w->n_rows : row_pos(w, key, &found);
	if (p < w->n_rows && row_key(w->rows[p].table, w->rows[p].index) == key)
		return &w->rows[p];
	if (w->n_rows >= w->max_rows) {
		w->truncated = true;
		return NULL;
	}
	if (w->n_rows == w->cap_rows) {
		size_t cap = w->cap_rows * 2;
		struct snmp_row *r = realloc(w->rows, cap * sizeof(*r));
		if (!r) {
			*nomem = true;
			return NULL;
		}
		w->rows = r;
		w->cap_rows = cap;
	}
	memmove(&w->rows[p + 1], &w->rows[p], (w->n_rows - p) * sizeof(*w->rows));
	memset(&w->rows[p], 0, sizeof(*w->rows));
	w->rows[p].table = table;
	w->rows[p].index = index;
	w->n_rows++;
	return &w->rows[p];
}

/* A DisplayString into out: printable ASCII only (0x20 - 0x7e), trailing
 * NULs (some agents send them) dropped. Returns false when it is empty,
 * too long or holds any other byte. */
static bool display_string(char out[SNMP_NAME_MAX], const unsigned char *s, size_t len)
{
	while (len && s[len - 1] == '\0')
		len--;
	if (!s || len == 0 || len >= SNMP_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

/* Store one varbind answering column c; ends the column when it must. */
static int take(struct snmp_walk *w, int c, const struct snmp_vb *v, bool *advanced)
{
	const struct snmp_coldef *d = &snmp_cols[c];
	uint32_t bit = 1u << c;
	bool nomem = false;

	if (v->type == SNMP_T_ENDOFMIBVIEW || v->type == SNMP_T_NOSUCHOBJECT ||
	    v->type == SNMP_T_NOSUCHINSTANCE || !v->oid || v->oid_len > SNMP_OID_MAX) {
		w->done |= bit;
		*advanced = true;
		return 0;
	}
	/* past the column: it is finished */
	if (v->oid_len <= d->oid_len || oid_cmp(v->oid, d->oid_len, d->oid, d->oid_len) != 0) {
		w->done |= bit;
		*advanced = true;
		return 0;
	}
	/* an agent that answers with an OID not after the one asked would
	 * have us ask forever */
	if (oid_cmp(v->oid, v->oid_len, w->last[c], w->last_len[c]) <= 0) {
		w->not_increasing++;
		w->done |= bit;
		*advanced = true;
		return 0;
	}
	memcpy(w->last[c], v->oid, v->oid_len * sizeof(unsigned long));
	w->last_len[c] = (uint8_t)v->oid_len;
	*advanced = true;
	/* our tables have one integer index, 1 - 2^31-1 */
	unsigned long index = v->oid[d->oid_len];
	if (v->oid_len != (size_t)d->oid_len + 1 || index < 1 || index > 0x7fffffffUL) {
		w->bad_index++;
		return 0;
	}
	if (v->type != d->type) {
		w->bad_type++;
		return 0;
	}
	struct snmp_row *r = row_get(w, d->table, (uint32_t)index, &nomem);
	if (!r) {
		if (nomem)
			return -ENOMEM;
		w->done = w->cols; /* a table past max_rows: stop, the rest is unknown */
		return 0;
	}
	switch (d->type) {
	case SNMP_T_OCTETS: {
		char *dst = c == SC_IFNAME ? r->name : c == SC_IFALIAS ? r->alias : r->descr;
		if (!display_string(dst, v->str, v->len)) {
			dst[0] = '\0';
			/* an empty ifAlias is normal; anything else unprintable is not */
			if (!(c == SC_IFALIAS && v->len == 0))
				w->bad_string++;
			return 0;
		}
		break;
	}
	case SNMP_T_OID:
		/* hrStorageType: the last sub-id under hrStorageTypes, else 0 */
		r->v[c] = v->objid && v->len == 10 && !oid_cmp(v->objid, 9, hrst_types, 9) ? v->objid[9] : 0;
		break;
	case SNMP_T_INTEGER:
		/* all our INTEGER columns are non-negative */
		if ((int64_t)v->num < 0 || v->num > INT32_MAX) {
			w->bad_type++;
			return 0;
		}
		r->v[c] = v->num;
		break;
	case SNMP_T_COUNTER32:
	case SNMP_T_GAUGE32:
	case SNMP_T_TIMETICKS:
		if (v->num > UINT32_MAX) {
			w->bad_type++;
			return 0;
		}
		r->v[c] = v->num;
		break;
	default:
		r->v[c] = v->num;
		break;
	}
	r->have |= bit;
	return 0;
}

int snmp_walk_feed(struct snmp_walk *w, const int *cols, size_t ncols, bool uptime,
		   const struct snmp_vb *vb, size_t n, struct tally_err *e)
{
	size_t k = 0;
	bool any = false;
	int rc;

	if (uptime) {
		if (n < 1 || !vb[0].oid || vb[0].oid_len != SNMP_SYSUPTIME_LEN + 1 ||
		    oid_cmp(vb[0].oid, SNMP_SYSUPTIME_LEN, snmp_sysuptime_oid, SNMP_SYSUPTIME_LEN) ||
		    vb[0].oid[SNMP_SYSUPTIME_LEN] != 0)
			return err_set(e, -EPROTO, "sysUpTime.0 missing from the answer (noSuchObject)");
		if (vb[0].type != SNMP_T_TIMETICKS || vb[0].num > UINT32_MAX)
			return err_set(e, -EPROTO, "sysUpTime.0 is not TimeTicks (type 0x%02x)", vb[0].type);
		w->uptime_cs = (uint32_t)vb[0].num;
		w->have_uptime = true;
		k = 1;
	}
	if (ncols == 0)
		return 0;
	for (size_t i = 0; k < n; k++, i++) {
		int c = cols[i % ncols];
		bool adv = false;
		if (c < 0 || c >= SC_COUNT)
			return err_set(e, -EINVAL, "column %d out of range", c);
		if (w->done & (1u << c))
			continue; /* ended earlier in this answer: the rest of it is past the column */
		if ((rc = take(w, c, &vb[k], &adv)))
			return err_set(e, rc, "out of memory");
		any |= adv;
	}
	if (!any && !snmp_walk_finished(w))
		return err_set(e, -EPROTO, "an answer without a value for any column asked (%zu varbind(s))", n);
	return 0;
}

/* ---- ports ---- */

bool snmp_rebooted(uint32_t prev_cs, uint32_t cs, int64_t elapsed_ns)
{
	if (cs >= prev_cs)
		return false;
	/* a wrap: prev + elapsed crossed 2^32 and landed near cs (within a
	 * minute, allowing for the agent's and our clocks) */
	int64_t el_cs = elapsed_ns / 10000000;
	int64_t expect = (int64_t)prev_cs + el_cs - 4294967296LL;
	int64_t diff = expect - (int64_t)cs;
	return !(expect >= 0 && diff > -6000 && diff < 6000);
}

/* c64[] and c32[] slots */
enum { K_IN_OCT, K_OUT_OCT, K_IN_PKT, K_OUT_PKT };
enum { K32_IN_OCT, K32_OUT_OCT, K32_IN_ERR, K32_OUT_ERR, K32_IN_DISC, K32_OUT_DISC };

struct emit {
	struct sample *out;
	size_t n;
	const char *resource;
	int64_t now_ns;
};

static void put(struct emit *x, uint16_t meter, uint8_t kind, int64_t t, int64_t origin, uint64_t counter,
		double gauge, uint8_t flags)
{
	if (x->n >= SNMP_PORT_SAMPLES)
		return;
	struct sample *s = &x->out[x->n++];
	memset(s, 0, sizeof(*s));
	s->time_ns = t;
	s->origin_ns = origin;
	s->meter = meter;
	s->kind = kind;
	s->flags = flags;
	if (kind == SAMPLE_GAUGE)
		s->v.gauge = gauge;
	else
		s->v.counter = counter;
	str_copy(s->resource, x->resource, sizeof(s->resource));
}

/*
 * A 64-bit counter (sent raw, SAMPLE_CUMULATIVE: the aggregator takes the
 * delta). `jump` says the counter may have jumped since the last reading,
 * at t_jump (reboot: the agent's start; discontinuity: its time):
 * - gone down: it started again (rule 2): counted from zero at t_jump.
 * - not down after a reboot: the agent restarted over counters that went
 *   on (net-snmp over the Linux kernel's): an ordinary delta.
 * - not down after a discontinuity or a new ifIndex: the value says
 *   nothing of the time between; a final reading of the old value ends
 *   that life and the new value is a baseline (never counted twice).
 */
static void c64(struct emit *x, const struct snmp_port_state *st, int slot, uint16_t meter, uint64_t v,
		bool jump, bool reboot, int64_t t_jump)
{
	int64_t origin = 0;
	bool had = st->last_ns && (st->have64 & (1u << slot));
	if (had && jump) {
		uint64_t prev = st->c64[slot];
		if (v < prev)
			origin = t_jump;
		else if (!reboot && t_jump < x->now_ns)
			put(x, meter, SAMPLE_CUMULATIVE, t_jump, 0, prev, 0, SAMPLE_F_LAST);
	}
	put(x, meter, SAMPLE_CUMULATIVE, x->now_ns, origin, v, 0, 0);
}

/* A 32-bit counter: the collector takes the delta (SAMPLE_DELTA) because
 * only it can tell a wrap (the usual case: 2^32 bytes pass in 3.4 s at
 * 10 Gbit/s) from a reset. Nothing on first sight (rule 3: a baseline). */
static void c32(struct emit *x, const struct snmp_port_state *st, int slot, uint16_t meter, uint32_t v,
		bool jump, bool reboot, int64_t t_jump)
{
	if (!st->last_ns || !(st->have32 & (1u << slot)))
		return;
	uint32_t prev = st->c32[slot];
	if (jump && v < prev) {
		put(x, meter, SAMPLE_DELTA, x->now_ns, t_jump, v, 0, 0);
		return;
	}
	if (jump && !reboot)
		return; /* baseline: what happened across the discontinuity is unknown */
	put(x, meter, SAMPLE_DELTA, x->now_ns, st->last_ns, (uint32_t)(v - prev), 0, 0);
}

static bool has(const struct snmp_row *r, int c)
{
	return (r->have >> c) & 1u;
}

size_t snmp_port_samples(struct snmp_port_state *st, const struct snmp_row *row, const char *resource,
			 const struct snmp_poll_ctx *cx, struct sample *out, struct snmp_port_note *note)
{
	struct emit x = { .out = out, .resource = resource, .now_ns = cx->now_ns };
	bool sw = cx->view == SNMP_VIEW_SWITCH;
	memset(note, 0, sizeof(*note));

	/* did the counters jump since the last reading, and when? */
	bool reboot = st->last_ns && cx->rebooted;
	bool renumbered = st->last_ns && st->ifindex != row->index;
	bool moved = st->last_ns && st->have_discont && has(row, SC_DISCONT) &&
		     (uint32_t)row->v[SC_DISCONT] != st->discont_cs;
	bool jump = reboot || renumbered || moved;
	int64_t t_jump = st->last_ns + 1;
	if (reboot)
		t_jump = cx->boot_ns;
	else if (moved && row->v[SC_DISCONT] <= cx->uptime_cs)
		t_jump = cx->boot_ns + (int64_t)row->v[SC_DISCONT] * 10000000;
	if (t_jump <= st->last_ns)
		t_jump = st->last_ns + 1;
	if (t_jump >= cx->now_ns)
		t_jump = cx->now_ns - 1;
	note->discontinuity = renumbered || moved;

	/* the tenant's incoming is what the switch sent out of the port */
	int in_oct = sw ? SC_HCOUT_OCT : SC_HCIN_OCT, out_oct = sw ? SC_HCIN_OCT : SC_HCOUT_OCT;
	uint8_t have64 = 0, have32 = 0;
	uint64_t v64[SNMP_C64] = { 0 };
	uint32_t v32[SNMP_C32] = { 0 };
	if (has(row, in_oct) && has(row, out_oct)) {
		v64[K_IN_OCT] = row->v[in_oct];
		v64[K_OUT_OCT] = row->v[out_oct];
		have64 |= 1u << K_IN_OCT | 1u << K_OUT_OCT;
	}
	static const int pin[3] = { SC_HCIN_UCAST, SC_HCIN_MCAST, SC_HCIN_BCAST };
	static const int pout[3] = { SC_HCOUT_UCAST, SC_HCOUT_MCAST, SC_HCOUT_BCAST };
	bool pk = true;
	uint64_t rx = 0, tx = 0;
	for (int i = 0; i < 3; i++) {
		pk = pk && has(row, pin[i]) && has(row, pout[i]);
		if (pk) {
			rx += row->v[pin[i]];
			tx += row->v[pout[i]];
		}
	}
	if (pk) {
		v64[K_IN_PKT] = sw ? tx : rx;
		v64[K_OUT_PKT] = sw ? rx : tx;
		have64 |= 1u << K_IN_PKT | 1u << K_OUT_PKT;
	}
	static const int c32src[SNMP_C32][2] = {
		/* [slot] = { host view, switch view } */
		[K32_IN_OCT] = { SC_IN_OCT, SC_OUT_OCT },
		[K32_OUT_OCT] = { SC_OUT_OCT, SC_IN_OCT },
		[K32_IN_ERR] = { SC_IN_ERR, SC_OUT_ERR },
		[K32_OUT_ERR] = { SC_OUT_ERR, SC_IN_ERR },
		[K32_IN_DISC] = { SC_IN_DISC, SC_OUT_DISC },
		[K32_OUT_DISC] = { SC_OUT_DISC, SC_IN_DISC },
	};
	for (int k = 0; k < SNMP_C32; k++) {
		int c = c32src[k][sw];
		if (has(row, c)) {
			v32[k] = (uint32_t)row->v[c];
			have32 |= (uint8_t)(1u << k);
		}
	}
	/* 64-bit octets bill; without them the 32-bit ones are monitoring
	 * only, in meters of their own */
	bool hc = have64 & (1u << K_IN_OCT);
	note->only32 = !hc && (have32 & 3u) == 3u;
	if (hc) {
		c64(&x, st, K_IN_OCT, M_IF_IN_BYTES, v64[K_IN_OCT], jump, reboot, t_jump);
		c64(&x, st, K_OUT_OCT, M_IF_OUT_BYTES, v64[K_OUT_OCT], jump, reboot, t_jump);
	}
	if (have64 & (1u << K_IN_PKT)) {
		c64(&x, st, K_IN_PKT, M_IF_IN_PACKETS, v64[K_IN_PKT], jump, reboot, t_jump);
		c64(&x, st, K_OUT_PKT, M_IF_OUT_PACKETS, v64[K_OUT_PKT], jump, reboot, t_jump);
	}
	static const uint16_t m32[SNMP_C32] = { M_IF_IN_BYTES32, M_IF_OUT_BYTES32, M_IF_IN_ERRORS,
						M_IF_OUT_ERRORS, M_IF_IN_DISCARDS, M_IF_OUT_DISCARDS };
	for (int k = 0; k < SNMP_C32; k++) {
		if (!(have32 & (1u << k)) || (k < 2 && hc))
			continue;
		c32(&x, st, k, m32[k], v32[k], jump, reboot, t_jump);
	}
	if (has(row, SC_OPER))
		put(&x, M_IF_UP, SAMPLE_GAUGE, cx->now_ns, 0, 0, row->v[SC_OPER] == 1 ? 1.0 : 0.0, 0);
	if (has(row, SC_HIGHSPEED))
		put(&x, M_IF_SPEED, SAMPLE_GAUGE, cx->now_ns, 0, 0, (double)row->v[SC_HIGHSPEED] * 125000.0, 0); /* Mbit/s -> B/s */

	st->last_ns = cx->now_ns;
	st->ifindex = row->index;
	st->have_discont = has(row, SC_DISCONT);
	st->discont_cs = (uint32_t)row->v[SC_DISCONT];
	st->have64 = have64;
	st->have32 = have32;
	memcpy(st->c64, v64, sizeof(v64));
	memcpy(st->c32, v32, sizeof(v32));
	return x.n;
}

/* ---- hosts ---- */

void snmp_device_label(char *out, const char *s)
{
	size_t n = strlen(s);
	if (n < TALLY_DEV_MAX) {
		memcpy(out, s, n + 1);
		return;
	}
	uint32_t h = hash_fnv32_str(HASH_FNV32_INIT, s);
	snprintf(out, TALLY_DEV_MAX, "%.38s~%08x", s, h);
}

size_t snmp_host_samples(const struct snmp_walk *w, const char *resource, int64_t now_ns,
			 struct sample *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < w->n_rows && n < max; i++) {
		const struct snmp_row *r = &w->rows[i];
		struct sample *s = &out[n];
		memset(s, 0, sizeof(*s));
		s->time_ns = now_ns;
		s->kind = SAMPLE_GAUGE;
		str_copy(s->resource, resource, sizeof(s->resource));
		if (r->table == ST_HRPROC && has(r, SC_HRPROC_LOAD) && r->v[SC_HRPROC_LOAD] <= 100) {
			s->meter = M_HW_CPU_UTIL;
			s->v.gauge = (double)r->v[SC_HRPROC_LOAD] / 100.0;
			snprintf(s->device, sizeof(s->device), "cpu%u", r->index);
			n++;
			continue;
		}
		if (r->table != ST_HRSTORAGE || !has(r, SC_HRST_TYPE) || !has(r, SC_HRST_UNITS) ||
		    !has(r, SC_HRST_SIZE) || !has(r, SC_HRST_USED) || !r->descr[0] ||
		    r->v[SC_HRST_USED] > r->v[SC_HRST_SIZE])
			continue;
		bool ram = r->v[SC_HRST_TYPE] == SNMP_HRST_RAM;
		bool disk = r->v[SC_HRST_TYPE] == SNMP_HRST_FIXEDDISK || r->v[SC_HRST_TYPE] == SNMP_HRST_NETDISK;
		if ((!ram && !disk) || n + 2 > max)
			continue;
		/* units and sizes are below 2^31 each: the product fits exactly in a double */
		double unit = (double)r->v[SC_HRST_UNITS];
		snmp_device_label(s->device, r->descr);
		s->meter = ram ? M_HW_MEMORY_TOTAL : M_HW_DISK_TOTAL;
		s->v.gauge = unit * (double)r->v[SC_HRST_SIZE];
		out[n + 1] = *s;
		out[n + 1].meter = ram ? M_HW_MEMORY_USED : M_HW_DISK_USED;
		out[n + 1].v.gauge = unit * (double)r->v[SC_HRST_USED];
		n += 2;
	}
	return n;
}
