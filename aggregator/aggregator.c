/*
 * aggregator.c: batches -> series state and hourly buckets in memory ->
 * one ledger transaction per commit (see aggregator.h).
 *
 * Memory: one entry per resource and per series (loaded from the ledger at
 * open, so a restart continues every series exactly), one bucket per
 * (series, hour) touched since the last commit. Lookups are open-addressing
 * hash tables of indices into growing arrays; a series remembers the bucket
 * of its current hour, so the common case (next reading, same hour) costs
 * one series lookup and no bucket lookup.
 */
#include "aggregator.h"
#include "fault.h"
#include "lifecycle.h"
#include "vec.h"
#include "itab.h"
#include "hash.h"
#include "err.h"
#include "ledger.h"
#include "rrdstore.h"
#include "series.h"
#include "str.h"
#include "tallytime.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct res_entry {
	struct ledger_resource r;
	int64_t ended_ns;            /* the latest event that ended a life of it, ingested by this process */
	uint8_t dirty;
	uint8_t known;               /* in the ledger with r.id (loaded, or committed by us) */
};

struct ser_entry {
	uint32_t res;                /* index into resources */
	uint16_t meter;              /* enum meter_id */
	uint16_t agent;              /* index into agents */
	uint8_t dirty;
	uint8_t in_ledger;           /* its series row was committed: update it in place */
	int64_t ledger_hour;         /* the last hour a usage row was written for (hint) */
	uint32_t gen;                /* commit generation cur_bucket belongs to */
	uint32_t cur_bucket;         /* bucket of cur_hour in this generation */
	uint32_t next;               /* index + 1 of the series read after it last time (0: none) */
	int64_t cur_hour;
	char device[TALLY_DEV_MAX];
	struct series_state st;
	/* live view for the exporters (agg_visit_series) */
	uint8_t live;                /* a reading was applied by this process */
	uint8_t has_rate;            /* rate is measured (not after a baseline) */
	uint32_t xc;                 /* index + 1 into xc: a second source checks this series */
	uint64_t total;              /* counters: usage since agg_open, base units */
	double rate;                 /* counters: base units/s over the last interval */
};

struct bucket {
	uint32_t ser;
	int64_t hour_ns;
	uint64_t qty;
	double qty_real;
	int64_t spanned_ns, covered_ns;
	uint32_t samples;
};

struct agent_entry {
	char name[TALLY_ID_MAX];
	uint64_t committed_seq, seq;
	int64_t committed_time_ns, time_ns;
	int64_t batches;
	uint8_t dirty;
	/* network agents (agg_agent_note): written with the agent's row */
	uint8_t has_spool;
	uint8_t spool_id[AGG_SPOOL_ID_LEN];
	uint64_t spool_first_seq;
	int64_t contact_ns, spool_batches, spool_bytes;
};

/* The cross-check of one billed counter by a second source
 * (SAMPLE_F_CHECK): the last two readings of each, and how far apart
 * their usage was over the last interval both read. */
struct xcheck {
	int64_t b_ns[2], c_ns[2];    /* [0] the previous reading, [1] the last */
	uint64_t b_v[2], c_v[2];
	uint8_t nb, nc;              /* readings held, up to 2 */
	int64_t done_ns;             /* the interval end last compared */
	double ratio;                /* |checked - billed| / the larger; < 0: none yet */
};

struct pending_attrs {
	uint32_t res;
	struct resource_meta meta;
};

struct pending_event {
	uint32_t res;
	uint16_t agent;
	struct lifecycle_event ev;
};

/* An open-addressing table of uint32 indices (stored + 1; 0 = empty). */
#define VEC(T) struct { T *v; size_t n, cap; }

struct aggregator {
	struct ledger *ledger;
	struct rrdstore *rrd;
	int64_t max_gap_ns;
	int broken;                  /* out of memory, or a failed commit left its transaction open:
				      * reopen */
	int64_t meter_db_id[METER_COUNT];
	uint32_t gen;

	VEC(struct res_entry) res;
	VEC(struct ser_entry) ser;
	VEC(struct bucket) bkt;
	VEC(struct agent_entry) agents;
	VEC(struct pending_attrs) attrs;
	VEC(struct pending_event) events;
	VEC(struct xcheck) xc;
	struct itab res_tab, ser_tab, bkt_tab;
	int64_t next_res_id;
	uint64_t pending;
	int must_commit;             /* pending holds what a restart cannot recompute */
	struct agg_stats stats;
	/* emit context */
	uint32_t cur_ser;
	uint32_t emitted;            /* hour parts the current reading has added */
	agg_commit_hook hook;        /* agg_set_commit_hook */
	void *hook_ctx;
};

#define VEC_PUSH(vec) VEC_PUSH_FIRST(vec, 256)

/* resources, by uuid */
static uint64_t res_hash_key(const char *uuid)
{
	return hash_fnv64(HASH_FNV64_INIT, uuid, strlen(uuid));
}
static uint64_t res_hash(const void *ctx, uint32_t idx)
{
	const struct aggregator *a = ctx;
	return res_hash_key(a->res.v[idx].r.meta.resource);
}
static int res_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct aggregator *a = ctx;
	return !strcmp(a->res.v[idx].r.meta.resource, key);
}

/* series, by (resource, meter, agent, device) */
struct ser_key {
	uint32_t res;
	uint16_t meter, agent;
	const char *device;
};
static uint64_t ser_hash_key(const struct ser_key *k)
{
	uint64_t h = HASH_FNV64_INIT ^ ((uint64_t)k->res << 32 | (uint64_t)k->meter << 16 | k->agent);
	return hash_fnv64(h * 0x100000001b3ULL, k->device, strlen(k->device));
}
static uint64_t ser_hash(const void *ctx, uint32_t idx)
{
	const struct aggregator *a = ctx;
	const struct ser_entry *s = &a->ser.v[idx];
	struct ser_key k = { s->res, s->meter, s->agent, s->device };
	return ser_hash_key(&k);
}
static int ser_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct aggregator *a = ctx;
	const struct ser_entry *s = &a->ser.v[idx];
	const struct ser_key *k = key;
	return s->res == k->res && s->meter == k->meter && s->agent == k->agent &&
	       !strcmp(s->device, k->device);
}

/* buckets, by (series, hour) */
struct bkt_key {
	uint32_t ser;
	int64_t hour_ns;
};
static uint64_t bkt_hash_key(const struct bkt_key *k)
{
	return (uint64_t)k->ser * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(k->hour_ns / NS_PER_HOUR);
}
static uint64_t bkt_hash(const void *ctx, uint32_t idx)
{
	const struct aggregator *a = ctx;
	struct bkt_key k = { a->bkt.v[idx].ser, a->bkt.v[idx].hour_ns };
	return bkt_hash_key(&k);
}
static int bkt_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct aggregator *a = ctx;
	const struct bkt_key *k = key;
	return a->bkt.v[idx].ser == k->ser && a->bkt.v[idx].hour_ns == k->hour_ns;
}

static int agent_index(struct aggregator *a, const char *name)
{
	for (size_t i = 0; i < a->agents.n; i++)
		if (!strcmp(a->agents.v[i].name, name))
			return (int)i;
	if (a->agents.n >= UINT16_MAX)
		return -ENOSPC;
	struct agent_entry *ag = VEC_PUSH(a->agents);
	if (!ag)
		return -ENOMEM;
	memset(ag, 0, sizeof(*ag));
	str_copy(ag->name, name, sizeof(ag->name));
	ag->spool_batches = ag->spool_bytes = -1;
	return (int)(a->agents.n - 1);
}

/* The resource for uuid, created (with empty metadata) if new. */
static int res_get(struct aggregator *a, const char *uuid, int64_t t_ns, const char *agent,
		   uint32_t *out)
{
	uint32_t *slot = itab_find(a, &a->res_tab, res_hash_key(uuid), res_eq, uuid);
	if (*slot) {
		struct res_entry *r = &a->res.v[*slot - 1];
		/* agents' batches arrive in any order between agents: the first
		 * and last sight are the extremes of the readings, and the host
		 * is the agent of the latest one, whatever came first */
		if (t_ns < r->r.first_seen_ns) {
			r->r.first_seen_ns = t_ns;
			r->dirty = 1;
		}
		if (t_ns >= r->r.last_seen_ns) {
			r->r.last_seen_ns = t_ns;
			r->dirty = 1;
			if (strcmp(r->r.host, agent))
				str_copy(r->r.host, agent, sizeof(r->r.host));
		}
		*out = *slot - 1;
		return 0;
	}
	struct res_entry *r = VEC_PUSH(a->res);
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->r.id = a->next_res_id++;
	str_copy(r->r.meta.resource, uuid, sizeof(r->r.meta.resource));
	str_copy(r->r.host, agent, sizeof(r->r.host));
	r->r.first_seen_ns = r->r.last_seen_ns = t_ns;
	r->dirty = 1;
	*out = (uint32_t)(a->res.n - 1);
	a->stats.resources = a->res.n;
	return itab_put(a, &a->res_tab, slot, *out, res_hash);
}

static int ser_get(struct aggregator *a, uint32_t res, uint16_t meter, uint16_t agent,
		   const char *device, uint32_t *out)
{
	struct ser_key k = { res, meter, agent, device };
	uint32_t *slot = itab_find(a, &a->ser_tab, ser_hash_key(&k), ser_eq, &k);
	if (*slot) {
		*out = *slot - 1;
		return 0;
	}
	struct ser_entry *s = VEC_PUSH(a->ser);
	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->res = res;
	s->meter = meter;
	s->agent = agent;
	s->gen = UINT32_MAX;
	str_copy(s->device, device, sizeof(s->device));
	*out = (uint32_t)(a->ser.n - 1);
	a->stats.series = a->ser.n;
	return itab_put(a, &a->ser_tab, slot, *out, ser_hash);
}

static struct bucket *bucket_get(struct aggregator *a, uint32_t ser, int64_t hour_ns)
{
	struct ser_entry *s = &a->ser.v[ser];
	if (s->gen == a->gen && s->cur_hour == hour_ns)
		return &a->bkt.v[s->cur_bucket];
	struct bkt_key k = { ser, hour_ns };
	uint32_t *slot = itab_find(a, &a->bkt_tab, bkt_hash_key(&k), bkt_eq, &k);
	uint32_t idx;
	if (*slot) {
		idx = *slot - 1;
	} else {
		struct bucket *b = VEC_PUSH(a->bkt);
		if (!b)
			return NULL;
		memset(b, 0, sizeof(*b));
		b->ser = ser;
		b->hour_ns = hour_ns;
		idx = (uint32_t)(a->bkt.n - 1);
		if (itab_put(a, &a->bkt_tab, slot, idx, bkt_hash))
			return NULL;
	}
	s->gen = a->gen;
	s->cur_hour = hour_ns;
	s->cur_bucket = idx;
	return &a->bkt.v[idx];
}

static int emit(void *ctx, const struct hour_add *ad)
{
	struct aggregator *a = ctx;
	struct bucket *b = bucket_get(a, a->cur_ser, ad->hour_ns);
	if (!b)
		return -ENOMEM; /* mid-sample: the caller stops as broken */
	/* an hour's usage past 2^63 - 1 fits no ledger row: the reading is
	 * taken back (unemit) and refused. A part is at most 2^63 - 1
	 * (series.h), so the sum cannot wrap. Only a sum this size has an
	 * existing bucket behind it: a new one is never left empty here. */
	if (b->qty + ad->qty > INT64_MAX)
		return -ERANGE;
	a->emitted++;
	b->qty += ad->qty;
	b->qty_real += ad->qty_real;
	b->spanned_ns += ad->spanned_ns;
	b->covered_ns += ad->covered_ns;
	b->samples += ad->samples;
	a->ser.v[a->cur_ser].total += ad->qty;
	return 0;
}

/* Takes back the first a->emitted parts of a reading whose next part did
 * not fit (emit's -ERANGE): series_apply run again on the same state
 * emits the same parts in the same order; it stops when they are undone. */
static int unemit(void *ctx, const struct hour_add *ad)
{
	struct aggregator *a = ctx;
	if (!a->emitted)
		return -ECANCELED;
	struct bucket *b = bucket_get(a, a->cur_ser, ad->hour_ns);
	if (!b)
		return -ENOMEM;
	a->emitted--;
	b->qty -= ad->qty;
	b->qty_real -= ad->qty_real;
	b->spanned_ns -= ad->spanned_ns;
	b->covered_ns -= ad->covered_ns;
	b->samples -= ad->samples;
	a->ser.v[a->cur_ser].total -= ad->qty;
	return 0;
}

static int load_resource(void *ctx, const struct ledger_resource *lr)
{
	struct aggregator *a = ctx;
	struct res_entry *r = VEC_PUSH(a->res);
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->r = *lr;
	r->known = 1;
	if (lr->id >= a->next_res_id)
		a->next_res_id = lr->id + 1;
	uint32_t idx = (uint32_t)(a->res.n - 1);
	uint32_t *slot = itab_find(a, &a->res_tab, res_hash_key(lr->meta.resource), res_eq, lr->meta.resource);
	return itab_put(a, &a->res_tab, slot, idx, res_hash);
}

/* The resource the ledger knows by id (not one whose id is this writer's
 * own until it is committed: on PostgreSQL the ledger may give it another). */
static int find_res_by_id(struct aggregator *a, int64_t id, uint32_t *out)
{
	/* ids are assigned in order, so the index is usually id - 1 */
	if (id >= 1 && (size_t)(id - 1) < a->res.n && a->res.v[id - 1].r.id == id && a->res.v[id - 1].known) {
		*out = (uint32_t)(id - 1);
		return 0;
	}
	for (size_t i = 0; i < a->res.n; i++)
		if (a->res.v[i].r.id == id && a->res.v[i].known) {
			*out = (uint32_t)i;
			return 0;
		}
	return -ENOENT;
}

static int load_series(void *ctx, const struct ledger_series *ls)
{
	struct aggregator *a = ctx;
	uint32_t res, idx;
	int meter = -1, ag;
	for (int m = 0; m < METER_COUNT; m++)
		if (a->meter_db_id[m] == ls->meter_id)
			meter = m;
	if (meter < 0 || find_res_by_id(a, ls->resource_id, &res))
		return 0; /* a meter this build does not know: leave it alone */
	if ((ag = agent_index(a, ls->agent)) < 0)
		return ag;
	int rc = ser_get(a, res, (uint16_t)meter, (uint16_t)ag, ls->device, &idx);
	if (rc)
		return rc;
	struct series_state *st = &a->ser.v[idx].st;
	st->last_ns = ls->last_ns;
	st->origin_ns = ls->origin_ns;
	st->kind = (uint8_t)ls->kind;
	if (ls->kind == SAMPLE_GAUGE)
		st->last.gauge = ls->last_gauge;
	else
		st->last.counter = ls->last_counter;
	st->flags = (uint8_t)ls->flags;
	/* the reading's own hour has its row (its sample was counted there) */
	a->ser.v[idx].in_ledger = 1;
	a->ser.v[idx].ledger_hour = hour_floor(ls->last_ns);
	return 0;
}

static int load_agent(void *ctx, const struct ledger_agent *la)
{
	struct aggregator *a = ctx;
	int i = agent_index(a, la->agent);
	if (i < 0)
		return i;
	struct agent_entry *ag = &a->agents.v[i];
	ag->committed_seq = ag->seq = la->last_seq;
	ag->committed_time_ns = ag->time_ns = la->last_time_ns;
	ag->batches = la->batches;
	ag->has_spool = la->has_spool;
	memcpy(ag->spool_id, la->spool_id, sizeof(ag->spool_id));
	ag->spool_first_seq = la->spool_first_seq;
	ag->contact_ns = la->contact_ns;
	ag->spool_batches = la->spool_batches;
	ag->spool_bytes = la->spool_bytes;
	return 0;
}

static const char *kind_name(enum sample_kind k)
{
	return k == SAMPLE_GAUGE ? "gauge" : k == SAMPLE_DELTA ? "delta" : "cumulative";
}

int agg_open(struct aggregator **out, const struct agg_config *cfg, struct tally_err *e)
{
	struct aggregator *a = fault_calloc(1, sizeof(*a));
	int rc;

	*out = NULL;
	if (!a)
		return err_set(e, -ENOMEM, "%s: out of memory opening the ledger", cfg->ledger_path);
	a->max_gap_ns = cfg->max_gap_ns > 0 ? cfg->max_gap_ns : 300 * NS_PER_SEC;
	a->next_res_id = 1;
	if ((rc = itab_init(&a->res_tab, 1024)) || (rc = itab_init(&a->ser_tab, 4096)) ||
	    (rc = itab_init(&a->bkt_tab, 4096)))
		goto fail;
	ledger_set_statement_timeout(cfg->statement_timeout_ms);
	if ((rc = ledger_open(&a->ledger, cfg->ledger_path, e)))
		goto fail;
	if ((rc = ledger_begin(a->ledger, e)))
		goto fail;
	for (int m = 0; m < METER_COUNT; m++)
		if ((rc = ledger_meter_id(a->ledger, meter_table[m].name, kind_name(meter_table[m].kind),
					  meter_table[m].unit, &a->meter_db_id[m], e))) {
			ledger_rollback(a->ledger);
			goto fail;
		}
	if ((rc = ledger_commit(a->ledger, e))) {
		ledger_rollback(a->ledger);
		goto fail;
	}
	if ((rc = ledger_load_resources(a->ledger, load_resource, a, e)) ||
	    (rc = ledger_load_agents(a->ledger, load_agent, a, e)) ||
	    (rc = ledger_load_series(a->ledger, load_series, a, e)))
		goto fail;
	for (size_t i = 0; i < a->ser.n; i++)
		a->ser.v[i].dirty = 0;
	for (size_t i = 0; i < a->res.n; i++)
		a->res.v[i].dirty = 0;
	a->stats.resources = a->res.n;
	a->stats.series = a->ser.n;
	if (cfg->rrd_dir && (rc = rrdstore_open(&a->rrd, cfg->rrd_dir, cfg->rrd_step_s > 0 ? cfg->rrd_step_s : 60,
					      cfg->rrd_lossless, e)))
		goto fail;
	*out = a;
	return 0;
fail:
	/* a loader's callback or a table ran out of memory: say so */
	if (e && !e->msg[0])
		err_set(e, rc, "%s: %s loading the ledger", cfg->ledger_path,
			rc == -ENOMEM ? "out of memory" : strerror(-rc));
	agg_close(a);
	return rc;
}

void agg_close(struct aggregator *a)
{
	if (!a)
		return;
	if (a->rrd)
		rrdstore_close(a->rrd);
	ledger_close(a->ledger);
	free(a->res.v);
	free(a->ser.v);
	free(a->bkt.v);
	free(a->agents.v);
	free(a->attrs.v);
	free(a->events.v);
	free(a->xc.v);
	itab_release(&a->res_tab);
	itab_release(&a->ser_tab);
	itab_release(&a->bkt_tab);
	free(a);
}

static int terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

static int meta_differs(const struct resource_meta *x, const struct resource_meta *y)
{
	return strcmp(x->type, y->type) || strcmp(x->name, y->name) || strcmp(x->tenant, y->tenant) ||
	       strcmp(x->project, y->project) || strcmp(x->user, y->user) ||
	       strcmp(x->flavor, y->flavor) || strcmp(x->labels, y->labels);
}

static int ingest_meta(struct aggregator *a, const char *agent, const struct resource_meta *m)
{
	uint32_t ri;
	int rc;
	if (!terminated(m->resource, sizeof(m->resource)) || !m->resource[0] ||
	    !terminated(m->type, sizeof(m->type)) || !terminated(m->name, sizeof(m->name)) ||
	    !terminated(m->tenant, sizeof(m->tenant)) || !terminated(m->project, sizeof(m->project)) ||
	    !terminated(m->user, sizeof(m->user)) || !terminated(m->flavor, sizeof(m->flavor)) ||
	    !terminated(m->labels, sizeof(m->labels))) {
		a->stats.invalid++;
		return 0;
	}
	if ((rc = res_get(a, m->resource, m->time_ns, agent, &ri)))
		return rc;
	struct res_entry *r = &a->res.v[ri];
	if (r->r.meta.time_ns && m->time_ns < r->r.meta.time_ns)
		return 0; /* older than what we have: history is append-only */
	if (r->r.meta.time_ns && !meta_differs(&r->r.meta, m))
		return 0;
	r->r.meta = *m;
	r->dirty = 1;
	a->must_commit = 1;
	struct pending_attrs *p = VEC_PUSH(a->attrs);
	if (!p)
		return -ENOMEM;
	p->res = ri;
	p->meta = *m;
	return 0;
}

static void rrd_put(struct aggregator *a, const struct ser_entry *s, const struct sample *smp,
		    int outcome, double usage, int64_t ival)
{
	const struct meter_def *md = &meter_table[s->meter];
	double v;
	if (smp->kind == SAMPLE_GAUGE)
		v = smp->v.gauge;
	else if (outcome == SERIES_BASELINE || ival <= 0)
		return;
	else
		v = usage / ((double)ival / 1e9);
	if (rrdstore_put(a->rrd, a->res.v[s->res].r.meta.resource, md->rrd_group, s->device,
			 md->rrd_ds, smp->time_ns, v))
		a->stats.rrd_errors++;
}

/* Gauges of what a tenant was given, billed by time (docs/architecture.md rule 5),
 * and whether it ran (SLA): a change of one is committed at once in real
 * time (agg_must_commit). The list is common/meter.c's, shared with the spool. */
static bool allocation_gauge(uint16_t meter)
{
	return meter_allocation_gauge(meter);
}

/* Keep reading (t, v) as the last of a pair; an older one changes nothing. */
static void xc_push(int64_t ns[2], uint64_t v[2], uint8_t *n, int64_t t, uint64_t x)
{
	if (*n && t <= ns[1])
		return;
	ns[0] = ns[1];
	v[0] = v[1];
	ns[1] = t;
	v[1] = x;
	if (*n < 2)
		(*n)++;
}

/* Once both sources have read the same interval (the collectors of one
 * agent read at the same tick), how far apart their usage was. An
 * interval in which either counter went down (a restart seen by one of
 * them first) is not compared. */
static void xc_compare(struct aggregator *a, struct xcheck *x)
{
	if (x->nb < 2 || x->nc < 2 || x->b_ns[1] != x->c_ns[1] || x->b_ns[0] != x->c_ns[0] ||
	    x->done_ns == x->b_ns[1] || x->b_v[1] < x->b_v[0] || x->c_v[1] < x->c_v[0])
		return;
	uint64_t db = x->b_v[1] - x->b_v[0], dc = x->c_v[1] - x->c_v[0];
	uint64_t hi = db > dc ? db : dc, lo = db > dc ? dc : db;
	x->ratio = hi ? (double)(hi - lo) / (double)hi : 0;
	x->done_ns = x->b_ns[1];
	a->stats.checks_compared++;
}

/* A second source's reading of a billed counter (SAMPLE_F_CHECK): held
 * beside the billed series and compared with it, never applied. One with
 * no billed series (its VM unknown to the billing source, or read before
 * the billed series' first reading) is counted as unmatched. */
static int ingest_check(struct aggregator *a, const struct sample *s, uint16_t ag)
{
	if (s->kind != SAMPLE_CUMULATIVE) {
		a->stats.invalid++;
		return 0;
	}
	uint32_t *rs = itab_find(a, &a->res_tab, res_hash_key(s->resource), res_eq, s->resource);
	struct ser_key k = { rs && *rs ? *rs - 1 : 0, s->meter, ag, s->device };
	uint32_t *ss = rs && *rs ? itab_find(a, &a->ser_tab, ser_hash_key(&k), ser_eq, &k) : NULL;
	if (!ss || !*ss || a->ser.v[*ss - 1].st.kind != SAMPLE_CUMULATIVE) {
		a->stats.checks_unmatched++;
		return 0;
	}
	struct ser_entry *se = &a->ser.v[*ss - 1];
	if (!se->xc) {
		struct xcheck *x = VEC_PUSH(a->xc);
		if (!x)
			return -ENOMEM;
		memset(x, 0, sizeof(*x));
		x->ratio = -1;
		se->xc = (uint32_t)a->xc.n;
		/* the billed series' last reading starts its pair: the check
		 * of the next interval can then be compared at once */
		if (se->st.flags & SERIES_HAS)
			xc_push(x->b_ns, x->b_v, &x->nb, se->st.last_ns, se->st.last.counter);
	}
	struct xcheck *x = &a->xc.v[se->xc - 1];
	xc_push(x->c_ns, x->c_v, &x->nc, s->time_ns, s->v.counter);
	xc_compare(a, x);
	return 0;
}

/* Whether a life of resource ri (reported by agent) was ended by an event
 * (stopped, shutdown, crashed, migrated out, undefined) at or after t_ns:
 * one ingested by this process, or one in the ledger (committed before a
 * restart). 1, 0, or the ledger's error (in e). A final reading that
 * was lost while its event came is no silence. */
static int ended_since(struct aggregator *a, uint32_t ri, const char *agent, int64_t t_ns, struct tally_err *e)
{
	const struct res_entry *re = &a->res.v[ri];
	if (re->ended_ns >= t_ns)
		return 1;
	char type[32];
	int64_t at = 0;
	int rc = ledger_last_event(a->ledger, re->r.meta.resource, agent,
				   ",stopped,crashed,migrated_out,undefined,shutdown,", type, sizeof(type), &at, e);
	return rc ? rc : at >= t_ns;
}

/* "silent" at the last reading before a gap, "heard" at the first after
 * (or at the start of the life that came after it, heard_ns). */
static int silence_events(struct aggregator *a, uint32_t ri, uint16_t ag, const struct sample *s, int64_t silent_ns,
			  int64_t heard_ns)
{
	int64_t gap_ns = heard_ns - silent_ns;
	for (int i = 0; i < 2; i++) {
		struct pending_event *p = VEC_PUSH(a->events);
		if (!p)
			return -ENOMEM;
		memset(p, 0, sizeof(*p));
		p->res = ri;
		p->agent = ag;
		p->ev.time_ns = i ? heard_ns : silent_ns;
		str_copy(p->ev.resource, s->resource, sizeof(p->ev.resource));
		str_copy(p->ev.type, lifecycle_name(i ? LIFECYCLE_HEARD : LIFECYCLE_SILENT), sizeof(p->ev.type));
		snprintf(p->ev.reason, sizeof(p->ev.reason), "%s %lld s without readings", i ? "after" : "then",
			 (long long)(gap_ns / NS_PER_SEC));
	}
	a->must_commit = 1;
	return 0;
}

/* The agent's data time jumped forward by step_ns without that time passing
 * (batch.h): its series' last readings, and the origins of their lives,
 * move forward by as much, so the next reading counts the time that really
 * passed since the last one and the skipped span is no gap. Committed at
 * once: after a crash the next reading would otherwise span the step. */
static void clock_step(struct aggregator *a, uint16_t ag, int64_t step_ns)
{
	for (size_t i = 0; i < a->ser.n; i++) {
		struct ser_entry *s = &a->ser.v[i];
		if (s->agent != ag || !(s->st.flags & SERIES_HAS))
			continue;
		s->st.last_ns += step_ns;
		if (s->st.origin_ns)
			s->st.origin_ns += step_ns;
		s->dirty = 1;
	}
	a->stats.clock_steps++;
	a->must_commit = 1;
}

int agg_ingest(struct aggregator *a, const struct batch *b, struct tally_err *e)
{
	int rc, ag;

	if (a->broken)
		return err_set(e, -EIO, "aggregator: a commit failed earlier; restart to reload the ledger");
	if (!terminated(b->agent, sizeof(b->agent)) || !b->agent[0])
		return err_set(e, -EINVAL, "batch: agent id missing or not terminated");
	if ((ag = agent_index(a, b->agent)) < 0)
		return err_set(e, ag, "batch from '%s': too many agents", b->agent);
	struct agent_entry *agent = &a->agents.v[ag];
	if (b->seq <= agent->seq) {
		a->stats.duplicate_batches++;
		return 1;
	}
	if (b->clock_step_ns < 0 || b->clock_step_ns > AGG_CLOCK_STEP_MAX_NS)
		a->stats.invalid++;     /* data time never goes back; a century is not a step */
	else if (b->clock_step_ns)
		clock_step(a, (uint16_t)ag, b->clock_step_ns);
	for (size_t i = 0; i < b->n_metas; i++)
		if ((rc = ingest_meta(a, b->agent, &b->metas[i])))
			goto nomem;
	for (size_t i = 0; i < b->n_events; i++) {
		const struct lifecycle_event *ev = &b->events[i];
		uint32_t ri;
		if (!terminated(ev->resource, sizeof(ev->resource)) || !ev->resource[0] ||
		    !terminated(ev->type, sizeof(ev->type)) || !terminated(ev->reason, sizeof(ev->reason))) {
			a->stats.invalid++;
			continue;
		}
		if ((rc = res_get(a, ev->resource, ev->time_ns, b->agent, &ri)))
			goto nomem;
		struct pending_event *p = VEC_PUSH(a->events);
		if (!p)
			goto nomem;
		p->res = ri;
		p->agent = (uint16_t)ag;
		p->ev = *ev;
		a->must_commit = 1;
		struct res_entry *re = &a->res.v[ri];
		if (lifecycle_ends_life(lifecycle_type_of(ev->type)) && ev->time_ns > re->ended_ns)
			re->ended_ns = ev->time_ns;
	}
	uint32_t last_res = UINT32_MAX;
	uint32_t prev = 0;           /* index + 1 of the previous sample's series */
	const char *last_uuid = NULL;
	for (size_t i = 0; i < b->n_samples; i++) {
		const struct sample *s = &b->samples[i];
		uint32_t ri, si;
		if (s->meter >= METER_COUNT || s->kind > SAMPLE_DELTA ||
		    !terminated(s->resource, sizeof(s->resource)) || !s->resource[0] ||
		    !terminated(s->device, sizeof(s->device)) ||
		    (s->kind == SAMPLE_GAUGE && !(s->v.gauge >= 0 && s->v.gauge < 1e300))) {
			a->stats.invalid++;
			continue;
		}
		if (s->flags & SAMPLE_F_CHECK) {
			/* a second source's reading: compared, never billed */
			if ((rc = ingest_check(a, s, (uint16_t)ag)))
				goto nomem;
			continue;
		}
		if (last_uuid && !strcmp(last_uuid, s->resource)) {
			ri = last_res;
			struct res_entry *r = &a->res.v[ri];
			if (s->time_ns > r->r.last_seen_ns) {
				r->r.last_seen_ns = s->time_ns;
				r->dirty = 1;
			}
		} else {
			if ((rc = res_get(a, s->resource, s->time_ns, b->agent, &ri)))
				goto nomem;
			last_res = ri;
			last_uuid = a->res.v[ri].r.meta.resource;
		}
		/* a collector sends its series in the same order every cycle:
		 * the series that followed the previous one last time is most
		 * likely this one, found without hashing its key */
		const struct ser_entry *guess = prev && a->ser.v[prev - 1].next ?
						&a->ser.v[a->ser.v[prev - 1].next - 1] : NULL;
		if (guess && guess->res == ri && guess->meter == s->meter && guess->agent == ag &&
		    !strcmp(guess->device, s->device))
			si = a->ser.v[prev - 1].next - 1;
		else if ((rc = ser_get(a, ri, s->meter, (uint16_t)ag, s->device, &si)))
			goto nomem;
		if (prev)
			a->ser.v[prev - 1].next = si + 1;
		prev = si + 1;
		a->cur_ser = si;
		double usage = 0;
		int64_t ival = 0;
		struct ser_entry *se = &a->ser.v[si];
		/* an allocation gauge that keeps its value is recomputed after a
		 * crash (the committed value holds across the gap); a new value
		 * (a resize, a stop) is not. A measured level (memory used, disk
		 * allocation) moves every cycle: like any lost reading, one lost
		 * with the process leaves the last value held (rule 5) */
		int same_gauge = s->kind == SAMPLE_GAUGE && (!allocation_gauge(s->meter) ||
				 ((se->st.flags & SERIES_HAS) && se->st.kind == SAMPLE_GAUGE &&
				  se->st.last.gauge == s->v.gauge));
		/* A new life of a VM whose last one ended unseen while it ran (no
		 * final reading, no stop: its host or its agent died with it,
		 * and it was started again): from that life's last reading to
		 * the new start nothing was heard of it, a silence as one inside
		 * a life is (docs/sla.md), not time in which nothing happened */
		int64_t unseen_end = 0;
		if (s->meter == M_INSTANCE && s->origin_ns && (se->st.flags & SERIES_HAS) &&
		    !(se->st.flags & SERIES_ENDED) && se->st.kind == SAMPLE_GAUGE && se->st.last.gauge > 0 &&
		    s->origin_ns > se->st.origin_ns && s->origin_ns - se->st.last_ns > a->max_gap_ns) {
			int ended = ended_since(a, ri, b->agent, se->st.last_ns, e);
			if (ended < 0) {
				a->broken = 1;   /* the batch is half applied, as below */
				return ended;
			}
			if (!ended)
				unseen_end = se->st.last_ns;
		}
		a->emitted = 0;
		int out = series_apply(&se->st, s, a->max_gap_ns, emit, a, &usage, &ival);
		if (out == -ERANGE) {
			/* the hour's usage would pass 2^63 - 1: the parts added
			 * are taken back and the reading refused, as one too large
			 * by itself (SERIES_TOO_LARGE) */
			struct series_state st = se->st;
			if (series_apply(&st, s, a->max_gap_ns, unemit, a, NULL, NULL) != -ECANCELED || a->emitted)
				goto nomem;
			out = SERIES_TOO_LARGE;
		}
		if (out < 0)
			goto nomem;   /* some hours have this reading's parts: broken (below) */
		switch (out) {
		case SERIES_DROPPED:
			a->stats.dropped_old++;
			continue;
		case SERIES_BAD_KIND:
		case SERIES_TOO_LARGE:
			a->stats.invalid++;
			continue;
		case SERIES_BASELINE: a->stats.baselines++; break;
		case SERIES_FROM_ZERO: a->stats.from_zero++; break;
		case SERIES_RESET: a->stats.resets++; break;
		case SERIES_WRAP: a->stats.wraps++; break;
		default: break;
		}
		/* Silence inside one life: the VM ran on, but nothing was heard of
		 * it for longer than max_gap (its host, the network or tally was
		 * down). Recorded as two events, for the SLA reports. */
		if (out == SERIES_DELTA && s->meter == M_INSTANCE && ival > a->max_gap_ns &&
		    (rc = silence_events(a, ri, (uint16_t)ag, s, s->time_ns - ival, s->time_ns)))
			goto nomem;
		if (unseen_end && (rc = silence_events(a, ri, (uint16_t)ag, s, unseen_end, s->origin_ns)))
			goto nomem;
		/* only plain counter progress and unchanged gauges may wait for
		 * a later commit (agg_must_commit) */
		if (out != SERIES_DELTA || (s->flags & SAMPLE_F_LAST) || s->kind == SAMPLE_DELTA ||
		    (s->kind == SAMPLE_GAUGE && !same_gauge))
			a->must_commit = 1;
		se = &a->ser.v[si];
		se->dirty = 1;
		se->live = 1;
		if (se->xc && s->kind == SAMPLE_CUMULATIVE) {
			struct xcheck *x = &a->xc.v[se->xc - 1];
			xc_push(x->b_ns, x->b_v, &x->nb, s->time_ns, s->v.counter);
			xc_compare(a, x);
		}
		if (se->st.kind != SAMPLE_GAUGE) {
			se->has_rate = ival > 0 && out != SERIES_BASELINE;
			se->rate = se->has_rate ? usage / ((double)ival / 1e9) : 0;
		}
		a->stats.samples++;
		a->pending++;
		if (a->rrd)
			rrd_put(a, se, s, out, usage, ival);
	}
	if (a->broken)
		goto nomem;
	agent = &a->agents.v[ag];
	assert(b->seq > agent->seq);   /* a batch counts once (duplicates returned above) */
	agent->seq = b->seq;
	agent->time_ns = b->time_ns;
	agent->batches++;
	agent->dirty = 1;
	a->stats.batches++;
	return 0;
nomem:
	a->broken = 1;
	return err_set(e, -ENOMEM, "aggregator: out of memory ingesting batch %llu from '%s'",
		       (unsigned long long)b->seq, b->agent);
}

static int write_all(struct aggregator *a, struct tally_err *e)
{
	int rc;
	for (size_t i = 0; i < a->res.n; i++)
		if (a->res.v[i].dirty && (rc = ledger_put_resource(a->ledger, &a->res.v[i].r, a->res.v[i].known, e)))
			return rc;
	for (size_t i = 0; i < a->attrs.n; i++)
		if ((rc = ledger_put_attrs(a->ledger, a->res.v[a->attrs.v[i].res].r.id, &a->attrs.v[i].meta, e)))
			return rc;
	for (size_t i = 0; i < a->bkt.n; i++) {
		const struct bucket *b = &a->bkt.v[i];
		struct ser_entry *s = &a->ser.v[b->ser];
		struct ledger_usage u = {
			.resource_id = a->res.v[s->res].r.id,
			.meter_id = a->meter_db_id[s->meter],
			.device = s->device,
			.hour_ns = b->hour_ns,
			.is_real = s->st.kind == SAMPLE_GAUGE,
			.qty = (int64_t)b->qty,
			.qty_real = b->qty_real,
			.spanned_ns = b->spanned_ns,
			.covered_ns = b->covered_ns,
			.samples = b->samples,
			.exists = s->in_ledger && s->ledger_hour == b->hour_ns,
		};
		if ((rc = ledger_add_usage(a->ledger, &u, e)))
			return rc;
		/* a failed commit marks the aggregator broken: it is reopened,
		 * and these hints reloaded, before anything is written again */
		if (b->hour_ns > s->ledger_hour)
			s->ledger_hour = b->hour_ns;
	}
	for (size_t i = 0; i < a->ser.n; i++) {
		struct ser_entry *s = &a->ser.v[i];
		if (!s->dirty)
			continue;
		struct ledger_series ls = {
			.resource_id = a->res.v[s->res].r.id,
			.meter_id = a->meter_db_id[s->meter],
			.device = s->device,
			.agent = a->agents.v[s->agent].name,
			.last_ns = s->st.last_ns,
			.origin_ns = s->st.origin_ns,
			.kind = s->st.kind,
			.last_counter = s->st.last.counter,
			.last_gauge = s->st.kind == SAMPLE_GAUGE ? s->st.last.gauge : 0,
			.flags = s->st.flags,
			.exists = s->in_ledger,
		};
		if ((rc = ledger_put_series(a->ledger, &ls, e)))
			return rc;
		s->in_ledger = 1;
	}
	for (size_t i = 0; i < a->agents.n; i++) {
		const struct agent_entry *ag = &a->agents.v[i];
		if (!ag->dirty)
			continue;
		struct ledger_agent la = {
			.agent = ag->name, .from_seq = ag->committed_seq, .last_seq = ag->seq, .last_time_ns = ag->time_ns,
			.batches = ag->batches, .has_spool = ag->has_spool,
			.spool_first_seq = ag->spool_first_seq, .contact_ns = ag->contact_ns,
			.spool_batches = ag->spool_batches, .spool_bytes = ag->spool_bytes,
		};
		memcpy(la.spool_id, ag->spool_id, sizeof(la.spool_id));
		if ((rc = ledger_put_agent(a->ledger, &la, e)))
			return rc;
	}
	for (size_t i = 0; i < a->events.n; i++) {
		const struct pending_event *p = &a->events.v[i];
		if ((rc = ledger_add_event(a->ledger, a->res.v[p->res].r.id, a->agents.v[p->agent].name,
					   &p->ev, e)))
			return rc;
	}
	return 0;
}

/* ---- another writer moved an agent on (ledger_put_agent's -ESTALE) ----
 *
 * Several aggregators on one PostgreSQL ledger: another one committed
 * batches of an agent since this one loaded that agent's state, so what
 * this one holds of the agent since was computed from an old reading and
 * must not count. resync() drops it (the agent's buckets, events and
 * series state) and takes the agent's seq and series from the ledger
 * again. Those batches were not acknowledged: a remote agent sends them
 * again, and their usage is counted from the reloaded readings. (The same
 * happens, on one aggregator, when a commit's outcome was lost with its
 * connection and it had landed: then nothing of it is counted twice.) */

struct resync {
	struct aggregator *a;
	uint8_t *stale;              /* per agent index */
};

static int resync_agent(void *ctx, const struct ledger_agent *la)
{
	struct resync *x = ctx;
	struct aggregator *a = x->a;
	int i = agent_index(a, la->agent);
	if (i < 0)
		return i;
	if (a->agents.v[i].committed_seq == la->last_seq)
		return 0;
	x->stale[i] = 1;
	a->agents.v[i].dirty = 0;
	return load_agent(a, la);    /* its seq, time, batches and spool as the ledger has them */
}

static int resync_resource(void *ctx, const struct ledger_resource *lr)
{
	struct resync *x = ctx;
	struct aggregator *a = x->a;
	uint32_t *slot = itab_find(a, &a->res_tab, res_hash_key(lr->meta.resource), res_eq, lr->meta.resource);
	if (!*slot)
		return load_resource(a, lr);
	struct res_entry *r = &a->res.v[*slot - 1];
	if (!r->known) {
		/* another writer committed it first: its id is the ledger's */
		r->r.id = lr->id;
		r->known = 1;
		if (!r->dirty)
			r->r = *lr;
		return 0;
	}
	if (r->r.id != lr->id)
		return -EEXIST;              /* the ledger gave it another id: not what a writer does */
	if (!r->dirty)
		r->r = *lr;
	return 0;
}

static int resync_series(void *ctx, const struct ledger_series *ls)
{
	struct resync *x = ctx;
	for (size_t i = 0; i < x->a->agents.n; i++)
		if (x->stale[i] && !strcmp(x->a->agents.v[i].name, ls->agent))
			return load_series(x->a, ls);
	return 0;
}

static int resync(struct aggregator *a, struct tally_err *e)
{
	struct resync x = { .a = a };
	size_t k;
	int rc = 0, any = 0;
	if (!(x.stale = fault_calloc(UINT16_MAX + 1, 1)))   /* agent indices are 16-bit */
		return err_set(e, -ENOMEM, "aggregator: out of memory");
	rc = ledger_load_agents(a->ledger, resync_agent, &x, e);
	for (size_t i = 0; i < a->agents.n; i++)
		any |= x.stale[i];
	if (rc) {
		if (any)
			a->broken = 1;       /* some agents taken again, their data not yet dropped */
		goto out;
	}
	if (!any)
		goto out;
	/* their pending buckets and events go; the series caches with them */
	for (size_t i = k = 0; i < a->bkt.n; i++)
		if (!x.stale[a->ser.v[a->bkt.v[i].ser].agent])
			a->bkt.v[k++] = a->bkt.v[i];
	a->bkt.n = k;
	itab_reset(&a->bkt_tab);
	for (size_t i = 0; i < a->bkt.n; i++) {
		struct bkt_key bk = { a->bkt.v[i].ser, a->bkt.v[i].hour_ns };
		uint32_t *slot = itab_find(a, &a->bkt_tab, bkt_hash_key(&bk), bkt_eq, &bk);
		if ((rc = itab_put(a, &a->bkt_tab, slot, (uint32_t)i, bkt_hash))) {
			a->broken = 1;
			rc = err_set(e, rc, "aggregator: out of memory");
			goto out;
		}
	}
	a->gen++;
	for (size_t i = k = 0; i < a->events.n; i++)
		if (!x.stale[a->events.v[i].agent])
			a->events.v[k++] = a->events.v[i];
	a->events.n = k;
	/* the resources the other writer described or first saw */
	if ((rc = ledger_load_resources(a->ledger, resync_resource, &x, e))) {
		a->broken = 1;
		goto out;
	}
	/* their series: as the ledger has them, or without a reading */
	for (size_t i = 0; i < a->ser.n; i++) {
		struct ser_entry *s = &a->ser.v[i];
		if (!x.stale[s->agent])
			continue;
		memset(&s->st, 0, sizeof(s->st));
		s->dirty = 0;
		s->in_ledger = 0;
	}
	if ((rc = ledger_load_series(a->ledger, resync_series, &x, e))) {
		a->broken = 1;               /* half reloaded: reopen */
		goto out;
	}
	for (size_t i = 0; i < a->ser.n; i++)
		if (x.stale[a->ser.v[i].agent])
			a->ser.v[i].dirty = 0;
	a->stats.resyncs++;
	rc = 1;
out:
	free(x.stale);
	return rc;
}

int agg_refresh(struct aggregator *a, struct tally_err *e)
{
	if (a->broken)
		return err_set(e, -EIO, "aggregator: a commit failed earlier; restart to reload the ledger");
	return resync(a, e);
}

/* begin, everything, the hook, commit: one transaction or nothing. */
static int commit_once(struct aggregator *a, struct tally_err *e)
{
	int rc;
	if ((rc = ledger_begin(a->ledger, e)))
		return rc;
	if ((rc = write_all(a, e)) || (a->hook && (rc = a->hook(a->hook_ctx, a->ledger, e))) ||
	    (rc = ledger_commit(a->ledger, e)))
		ledger_rollback(a->ledger);
	return rc;
}

int agg_commit(struct aggregator *a, struct tally_err *e)
{
	int rc;
	if (a->broken)
		return err_set(e, -EIO, "aggregator: a commit failed earlier; restart to reload the ledger");
	rc = commit_once(a, e);
	if (rc == -ESTALE && ledger_idle(a->ledger)) {
		/* another writer moved an agent on: drop what is built on its
		 * old state and commit the rest */
		struct tally_err re = { 0 };
		int r = resync(a, &re);
		if (r < 0) {
			err_set(e, r, "%s", re.msg);
			rc = r;
		} else if (r > 0) {
			rc = commit_once(a, e);
		}
	}
	if (rc)
		goto fail;
	a->stats.commit_failures_in_row = 0;
	a->stats.commits++;
	a->stats.rows_written += a->bkt.n;
	for (size_t i = 0; i < a->res.n; i++) {
		if (a->res.v[i].dirty)
			a->res.v[i].known = 1;
		a->res.v[i].dirty = 0;
	}
	for (size_t i = 0; i < a->ser.n; i++)
		a->ser.v[i].dirty = 0;
	for (size_t i = 0; i < a->agents.n; i++) {
		struct agent_entry *ag = &a->agents.v[i];
		ag->dirty = 0;
		ag->committed_seq = ag->seq;
		ag->committed_time_ns = ag->time_ns;
	}
	a->attrs.n = a->events.n = a->bkt.n = 0;
	itab_reset(&a->bkt_tab);
	a->gen++;
	a->pending = 0;
	a->must_commit = 0;
	if (a->rrd) {
		struct tally_err re = { 0 };
		struct rrdstore_stats rs;
		int rrc = rrdstore_handoff(a->rrd, &re);
		rrdstore_get_stats(a->rrd, &rs);
		a->stats.rrd_dropped = rs.dropped;
		a->stats.rrd_backlog = rs.backlog_rows;
		a->stats.rrd_files = rs.files;
		if (rrc) {
			a->stats.rrd_errors++;
			/* RRD is for graphs: the ledger is committed, so this is
			 * reported, not fatal */
			err_set(e, 1, "%s", re.msg);
			return 1;
		}
	}
	return 0;
fail:
	/* Nothing of this commit is in the ledger, and nothing in memory was
	 * marked written: the next agg_commit writes it all again. What
	 * write_all changed are hints (a usage row or series row "most likely
	 * there"), which fall back to an insert when wrong. Only a transaction
	 * still open after the rollback leaves the two out of step. */
	a->stats.commit_failures++;
	a->stats.commit_failures_in_row++;
	if (!ledger_idle(a->ledger))
		a->broken = 1;
	return rc;
}

bool agg_broken(const struct aggregator *a)
{
	return a->broken;
}

uint64_t agg_pending(const struct aggregator *a)
{
	return a->pending;
}

bool agg_must_commit(const struct aggregator *a)
{
	return a->must_commit;
}

uint64_t agg_agent_seq(const struct aggregator *a, const char *agent)
{
	for (size_t i = 0; i < a->agents.n; i++)
		if (!strcmp(a->agents.v[i].name, agent))
			return a->agents.v[i].seq;
	return 0;
}

bool agg_agent_find(const struct aggregator *a, const char *agent, struct agg_agent *out)
{
	for (size_t i = 0; i < a->agents.n; i++) {
		const struct agent_entry *ag = &a->agents.v[i];
		if (strcmp(ag->name, agent))
			continue;
		memset(out, 0, sizeof(*out));
		str_copy(out->name, ag->name, sizeof(out->name));
		out->seq = ag->seq;
		out->committed_seq = ag->committed_seq;
		out->time_ns = ag->committed_time_ns;
		out->batches = ag->batches;
		out->has_spool = ag->has_spool;
		memcpy(out->spool_id, ag->spool_id, sizeof(out->spool_id));
		out->spool_first_seq = ag->spool_first_seq;
		out->contact_ns = ag->contact_ns;
		out->spool_batches = ag->spool_batches;
		out->spool_bytes = ag->spool_bytes;
		return true;
	}
	return false;
}

int agg_agent_note(struct aggregator *a, const char *agent, const struct agg_agent_note *n)
{
	if (a->broken)
		return -EIO;
	int i = agent_index(a, agent);
	if (i < 0)
		return i;
	struct agent_entry *ag = &a->agents.v[i];
	if (n->set_spool) {
		ag->has_spool = n->has_spool;
		memcpy(ag->spool_id, n->spool_id, sizeof(ag->spool_id));
		ag->spool_first_seq = n->spool_first_seq;
	}
	ag->contact_ns = n->contact_ns;
	ag->spool_batches = n->spool_batches;
	ag->spool_bytes = n->spool_bytes;
	ag->dirty = 1;
	return 0;
}

int64_t agg_agent_time(const struct aggregator *a, const char *agent)
{
	for (size_t i = 0; i < a->agents.n; i++)
		if (!strcmp(a->agents.v[i].name, agent))
			return a->agents.v[i].committed_time_ns;
	return 0;
}

int64_t agg_last_cycle_ns(const struct aggregator *a)
{
	int64_t t = 0;
	for (size_t i = 0; i < a->agents.n; i++)
		if (a->agents.v[i].committed_time_ns > t)
			t = a->agents.v[i].committed_time_ns;
	return t;
}

void agg_get_stats(const struct aggregator *a, struct agg_stats *out)
{
	*out = a->stats;
}

int agg_visit_series(const struct aggregator *a, agg_series_fn fn, void *ctx)
{
	for (size_t i = 0; i < a->ser.n; i++) {
		const struct ser_entry *s = &a->ser.v[i];
		if (!s->live)
			continue;
		struct agg_series_view v = {
			.res = &a->res.v[s->res].r,
			.res_index = s->res,
			.agent = a->agents.v[s->agent].name,
			.agent_time_ns = a->agents.v[s->agent].committed_time_ns,
			.meter = s->meter,
			.device = s->device,
			.kind = s->st.kind,
			.ended = !!(s->st.flags & SERIES_ENDED),
			.last_ns = s->st.last_ns,
			.total = s->total,
			.gauge = s->st.kind == SAMPLE_GAUGE ? s->st.last.gauge : 0,
			.rate = s->rate,
			.has_rate = s->has_rate,
			.divergence = s->xc ? a->xc.v[s->xc - 1].ratio : -1,
		};
		int rc = fn(ctx, &v);
		if (rc)
			return rc;
	}
	return 0;
}

int agg_resource_find(const struct aggregator *a, const char *uuid, struct ledger_resource *out, bool *in_ledger)
{
	uint32_t *slot = itab_find((struct aggregator *)a, (struct itab *)&a->res_tab, res_hash_key(uuid), res_eq, uuid);
	if (!slot || !*slot)
		return 0;
	const struct res_entry *r = &a->res.v[*slot - 1];
	*out = r->r;
	*in_ledger = r->known;
	return 1;
}

int64_t agg_resource_new_id(struct aggregator *a)
{
	return a->next_res_id++;
}

int agg_resource_learn(struct aggregator *a, const struct ledger_resource *lr)
{
	uint32_t *slot = itab_find(a, &a->res_tab, res_hash_key(lr->meta.resource), res_eq, lr->meta.resource);
	if (!*slot) {
		if (lr->id >= a->next_res_id)
			a->next_res_id = lr->id + 1;
		int rc = load_resource(a, lr);
		a->stats.resources = a->res.n;
		if (rc)
			a->broken = 1;
		return rc;
	}
	struct res_entry *r = &a->res.v[*slot - 1];
	/* its row is committed with this id (on PostgreSQL the ledger's) */
	r->r.id = lr->id;
	r->known = 1;
	if (lr->first_seen_ns < r->r.first_seen_ns)
		r->r.first_seen_ns = lr->first_seen_ns;
	if (lr->last_seen_ns > r->r.last_seen_ns)
		r->r.last_seen_ns = lr->last_seen_ns;
	return 0;
}

void agg_set_commit_hook(struct aggregator *a, agg_commit_hook fn, void *ctx)
{
	a->hook = fn;
	a->hook_ctx = ctx;
}

struct ledger *agg_ledger(struct aggregator *a)
{
	return a->ledger;
}
