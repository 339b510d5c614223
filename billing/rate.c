/*
 * rate.c: one pass over the ledger's usage rows of a period, each added to
 * the price it falls under (rate.h), and the exact price of a quantity.
 *
 * Resources and their metadata history are read first (they are few); the
 * usage rows then stream through without SQL joins: per row, an array
 * lookup finds the resource, a short walk its attributes at the hour, and
 * a per-interval cache the price, so rating costs little more than reading
 * the rows.
 */
#include "rate.h"
#include "vec.h"
#include "hash.h"
#include "err.h"
#include "reader.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ledger meter ids rating maps (the ledger numbers meters from 1 as they
 * are first written: the built-in ones and at most METER_CUSTOM_MAX
 * custom ones fit with room to spare). */
#define RATE_MAX_METER_IDS 1024

/* A resource's attributes from since_ns until the next interval's. */
struct interval {
	int64_t since_ns;
	int tenant;                  /* index into tenants, after interning */
	char tenant_name[64];
	char name[128], flavor[64], project[64], user[64], labels[512];
	int64_t *price_cache;        /* [version * n_meters + meter], see price_code() */
};

struct res {
	int64_t id;                  /* resources.id */
	struct rate_resource pub;
	char host[64];
	bool is_host;                /* type 'host': without a tenant, billed only where a price matches */
	size_t iv0, n_iv;            /* its intervals */
};

struct state {
	const struct plan *plan;
	const struct rate_query *q;
	struct res *res;
	size_t n_res;
	struct interval *iv;
	size_t n_iv;
	int32_t *res_by_id;          /* ledger resource id -> index in res, -1 */
	int64_t max_res_id;
	int meter_by_id[RATE_MAX_METER_IDS]; /* ledger meter id -> enum meter_id (or a custom meter's), -1 */
	int n_meters;                /* meter_count(): built-in and custom */
	struct rate_tenant *tenants;
	size_t n_tenants;
	int *tenant_override;        /* tenant index -> plan->tenants[] index, -1 */
	int filter_tenant;           /* -1: all */
	/* accumulators: open addressing on rate_key */
	struct rate_acc *tab;
	size_t cap, used;
};

static bool selector_matches(const struct plan_price *pp, const struct interval *iv, const struct res *r)
{
	const struct plan_attrs a = { .flavor = iv->flavor, .project = iv->project, .user = iv->user,
				      .name = iv->name, .host = r->host, .labels = iv->labels };
	return plan_select(pp->sel_key, pp->sel_val, pp->n_sel, &a);
}

/* The price of (interval, version, meter), cached: -1 unpriced, -2 not
 * looked up yet, else override + 1 << 48 | version << 24 | index, where a
 * version's price is named by the entry it stands for (plan.h: origin), so
 * a price inherited unchanged by later versions is one line, and a tenant's
 * own price is version 0's in every version. */
static int64_t price_code(struct state *s, struct interval *iv, const struct res *r, int version, int meter)
{
	int64_t *slot = &iv->price_cache[(size_t)version * (size_t)s->n_meters + (size_t)meter];
	if (*slot != -2)
		return *slot;
	int64_t code = -1;
	int ov = s->tenant_override[iv->tenant];
	if (ov >= 0) {
		const struct plan_tenant *t = &s->plan->tenants[ov];
		for (size_t i = 0; i < t->n_prices && code < 0; i++)
			if (t->prices[i].meter == meter && selector_matches(&t->prices[i], iv, r))
				code = (int64_t)(ov + 1) << 48 | (int64_t)i;
	}
	const struct plan_version *v = &s->plan->versions[version];
	for (size_t i = 0; i < v->n_prices && code < 0; i++)
		if (v->prices[i].meter == meter && selector_matches(&v->prices[i], iv, r))
			code = (int64_t)v->prices[i].origin << 24 | v->prices[i].origin_index;
	return *slot = code;
}

static uint64_t key_hash(const struct rate_key *k)
{
	uint64_t h = HASH_FNV64_INIT;
	const int f[6] = { k->tenant, k->resource, k->version, k->override, k->price, k->meter };
	for (int i = 0; i < 6; i++)
		h = hash_fnv64_word(h, (uint32_t)f[i]);
	return h ^ (h >> 29);
}

static bool key_eq(const struct rate_key *a, const struct rate_key *b)
{
	return a->tenant == b->tenant && a->resource == b->resource && a->version == b->version &&
	       a->override == b->override && a->price == b->price && a->meter == b->meter;
}

/* The accumulator of k, created empty; NULL when out of memory. Empty
 * slots have rows == -1. */
static struct rate_acc *acc_get(struct state *s, const struct rate_key *k)
{
	if (s->used * 2 >= s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		struct rate_acc *nt = malloc(ncap * sizeof(*nt));
		if (!nt)
			return NULL;
		for (size_t i = 0; i < ncap; i++)
			nt[i].rows = -1;
		for (size_t i = 0; i < s->cap; i++) {
			if (s->tab[i].rows < 0)
				continue;
			size_t j = key_hash(&s->tab[i].k) & (ncap - 1);
			while (nt[j].rows >= 0)
				j = (j + 1) & (ncap - 1);
			nt[j] = s->tab[i];
		}
		free(s->tab);
		s->tab = nt;
		s->cap = ncap;
	}
	size_t j = key_hash(k) & (s->cap - 1);
	while (s->tab[j].rows >= 0) {
		if (key_eq(&s->tab[j].k, k))
			return &s->tab[j];
		j = (j + 1) & (s->cap - 1);
	}
	memset(&s->tab[j], 0, sizeof(s->tab[j]));
	s->tab[j].k = *k;
	s->used++;
	return &s->tab[j];
}

static int cmp_tenant_name(const void *a, const void *b)
{
	return strcmp(((const struct rate_tenant *)a)->name, ((const struct rate_tenant *)b)->name);
}

static int tenant_index(const struct state *s, const char *name)
{
	struct rate_tenant key;
	str_copy(key.name, name, sizeof(key.name));
	const struct rate_tenant *t = bsearch(&key, s->tenants, s->n_tenants, sizeof(key), cmp_tenant_name);
	return t ? (int)(t - s->tenants) : -1;
}

/* One row of the resources and their attribute intervals (reader.h). */
struct load {
	struct state *s;
	size_t cap_res, cap_iv;
	int64_t last_id;
};

static int on_resource(void *ctx, const struct ledger_resource_row *row)
{
	struct load *l = ctx;
	struct state *s = l->s;
	if (row->id != l->last_id) {
		if (vec_reserve((void **)&s->res, &l->cap_res, s->n_res + 1, sizeof(*s->res), 256))
			return -ENOMEM;
		struct res *r = &s->res[s->n_res++];
		memset(r, 0, sizeof(*r));
		r->id = row->id;
		str_copy(r->pub.uuid, row->uuid, sizeof(r->pub.uuid));
		str_copy(r->pub.name, row->name, sizeof(r->pub.name));
		r->pub.first_seen_ns = row->first_seen_ns;
		r->pub.last_seen_ns = row->last_seen_ns;
		str_copy(r->host, row->host, sizeof(r->host));
		r->is_host = !strcmp(row->type, "host");
		r->iv0 = s->n_iv;
		if (row->id > s->max_res_id)
			s->max_res_id = row->id;
		l->last_id = row->id;
	}
	/* a resource never described has one interval with tenant '' */
	struct res *r = &s->res[s->n_res - 1];
	if (vec_reserve((void **)&s->iv, &l->cap_iv, s->n_iv + 1, sizeof(*s->iv), 256))
		return -ENOMEM;
	struct interval *iv = &s->iv[s->n_iv++];
	memset(iv, 0, sizeof(*iv));
	iv->since_ns = row->since_ns;
	str_copy(iv->tenant_name, row->tenant, sizeof(iv->tenant_name));
	str_copy(iv->name, row->attr_name, sizeof(iv->name));
	str_copy(iv->flavor, row->flavor, sizeof(iv->flavor));
	str_copy(iv->project, row->project, sizeof(iv->project));
	str_copy(iv->user, row->user, sizeof(iv->user));
	str_copy(iv->labels, row->labels, sizeof(iv->labels));
	r->n_iv++;
	return 0;
}

/* Resources, their attribute intervals and the tenants they name. */
static int load_resources(struct state *s, struct ledger_reader *lr, struct tally_err *e)
{
	struct load l = { .s = s, .last_id = -1 };
	int rc;

	if ((rc = ledger_read_resources(lr, on_resource, &l, e)) == -ENOMEM)
		goto nomem;
	if (rc)
		return rc;

	/* resource ids are SQLite rowids: dense from 1 in practice */
	s->res_by_id = malloc((size_t)(s->max_res_id + 1) * sizeof(*s->res_by_id));
	if (!s->res_by_id)
		goto nomem;
	for (int64_t i = 0; i <= s->max_res_id; i++)
		s->res_by_id[i] = -1;
	for (size_t i = 0; i < s->n_res; i++)
		if (s->res[i].id >= 0)
			s->res_by_id[s->res[i].id] = (int32_t)i;

	/* tenants: unique names of every interval, or the one combined account */
	s->tenants = calloc(s->n_iv + 1, sizeof(*s->tenants));
	if (!s->tenants)
		goto nomem;
	if (s->q->combined) {
		str_copy(s->tenants[0].name, "*", sizeof(s->tenants[0].name));
		s->n_tenants = 1;
	} else {
		for (size_t i = 0; i < s->n_iv; i++)
			str_copy(s->tenants[i].name, s->iv[i].tenant_name, sizeof(s->tenants[0].name));
		qsort(s->tenants, s->n_iv, sizeof(*s->tenants), cmp_tenant_name);
		for (size_t i = 0; i < s->n_iv; i++)
			if (s->n_tenants == 0 || strcmp(s->tenants[s->n_tenants - 1].name, s->tenants[i].name))
				s->tenants[s->n_tenants++] = s->tenants[i];
	}
	for (size_t t = 0; t < s->n_tenants; t++) {
		s->tenants[t].first_ns = INT64_MAX;
		s->tenants[t].last_ns = INT64_MIN;
	}
	s->tenant_override = calloc(s->n_tenants + 1, sizeof(int));
	if (!s->tenant_override)
		goto nomem;
	for (size_t t = 0; t < s->n_tenants; t++) {
		const struct plan_tenant *pt = plan_tenant_find(s->plan, s->tenants[t].name);
		s->tenant_override[t] = pt ? (int)(pt - s->plan->tenants) : -1;
	}
	size_t cache = s->plan->n_versions * (size_t)s->n_meters;
	for (size_t r = 0; r < s->n_res; r++) {
		for (size_t i = s->res[r].iv0; i < s->res[r].iv0 + s->res[r].n_iv; i++) {
			struct interval *iv = &s->iv[i];
			iv->tenant = s->q->combined ? 0 : tenant_index(s, iv->tenant_name);
			iv->price_cache = malloc((cache ? cache : 1) * sizeof(int64_t));
			if (!iv->price_cache)
				goto nomem;
			for (size_t c = 0; c < cache; c++)
				iv->price_cache[c] = -2;
			struct rate_tenant *t = &s->tenants[iv->tenant];
			if (s->res[r].is_host && !iv->tenant_name[0])
				continue; /* a tenantless host's existence owes no fee: only its priced usage counts */
			if (s->res[r].pub.first_seen_ns < t->first_ns)
				t->first_ns = s->res[r].pub.first_seen_ns;
			if (s->res[r].pub.last_seen_ns > t->last_ns)
				t->last_ns = s->res[r].pub.last_seen_ns;
		}
	}
	return 0;
nomem:
	return err_set(e, -ENOMEM, "out of memory reading resources");
}

static int on_meter(void *ctx, int64_t id, const char *name)
{
	struct state *s = ctx;
	if (id >= 0 && id < RATE_MAX_METER_IDS)
		s->meter_by_id[id] = meter_find(name);
	return 0;
}

static int load_meters(struct state *s, struct ledger_reader *lr, struct tally_err *e)
{
	for (size_t i = 0; i < sizeof(s->meter_by_id) / sizeof(s->meter_by_id[0]); i++)
		s->meter_by_id[i] = -1;
	return ledger_read_meters(lr, on_meter, s, e);
}

/* The interval of resource r in force at hour_ns: the last that began at
 * or before it, or the first when the resource was described later. */
static struct interval *interval_at(struct state *s, const struct res *r, int64_t hour_ns)
{
	size_t k = r->iv0;
	for (size_t i = r->iv0 + 1; i < r->iv0 + r->n_iv && s->iv[i].since_ns <= hour_ns; i++)
		k = i;
	return &s->iv[k];
}

/* A usage row's quantity in ledger units (rate.h): a counter's INTEGER as
 * it is; a gauge's REAL unit-seconds converted exactly to milli-unit-seconds,
 * rounded once half to even (money_double_scaled: no rounding before that
 * one, at any magnitude). A negative quantity (but a delta meter's: a
 * correction, netted with the period's usage and refused by the invoice
 * where a line's net is negative), a counter that is not an integer, or a
 * quantity past RATE_MAX_QTY is not what tally writes: a clear error,
 * never a guess. */
static int row_quantity(const struct ledger_qty *lq, int meter, const struct res *r, int64_t hour, __int128 *q,
			struct tally_err *e)
{
	const char *what = NULL;
	char t[48], qt[48];
	if (lq->type == LEDGER_QTY_INT) {
		int64_t v = lq->i;
		*q = v;
		if (meter_get(meter)->kind == SAMPLE_GAUGE)
			*q *= RATE_GAUGE_SCALE;
		if (v < 0 && meter_get(meter)->kind != SAMPLE_DELTA)
			what = "is negative";
	} else if (lq->type == LEDGER_QTY_REAL && meter_get(meter)->kind == SAMPLE_GAUGE) {
		double d = lq->d;
		if (money_double_scaled(d, RATE_GAUGE_SCALE, q) || *q > RATE_MAX_QTY)
			what = "does not fit (more than 2^96 milli-unit-seconds)";
		else if (d < 0)
			what = "is negative";
	} else {
		what = meter_get(meter)->kind == SAMPLE_GAUGE ? "is not a number" : "is not an integer count";
	}
	if (!what)
		return 0;
	return err_set(e, -ERANGE, "usage of %s, %s at %s: the ledger's quantity '%s' %s", r->pub.uuid,
		       meter_get(meter)->name, time_format_iso(hour, t, sizeof(t)),
		       ledger_qty_text(lq, qt, sizeof(qt)), what);
}

struct stream {
	struct state *s;
	struct rate_result *out;
	struct tally_err *e;
};

/* One usage row of the period (reader.h): priced into its accumulator. */
static int on_usage(void *ctx, const struct ledger_usage_row *u)
{
	struct stream *x = ctx;
	struct state *s = x->s;
	struct tally_err *e = x->e;
	int64_t rid = u->resource_id, mid = u->meter_id, hour = u->hour_ns;
	int rc;

	x->out->rows++;
	if (rid < 0 || rid > s->max_res_id || s->res_by_id[rid] < 0 || mid < 0 || mid >= RATE_MAX_METER_IDS ||
	    s->meter_by_id[mid] < 0)
		return 0; /* a meter this tally does not know: nothing to price */
	int meter = s->meter_by_id[mid];
	struct res *r = &s->res[s->res_by_id[rid]];
	struct interval *iv = interval_at(s, r, hour);
	if (s->filter_tenant >= 0 && iv->tenant != s->filter_tenant)
		return 0;
	__int128 q;
	if ((rc = row_quantity(&u->qty, meter, r, hour, &q, e)))
		return rc;
	struct rate_key k = { .tenant = iv->tenant, .resource = s->res_by_id[rid], .meter = meter,
			      .version = plan_version_at(s->plan, hour), .override = -1, .price = -1 };
	if (k.version >= 0) {
		int64_t code = price_code(s, iv, r, k.version, meter);
		if (code >= 0) {
			k.override = (int)(code >> 48) - 1;
			k.version = (int)(code >> 24 & 0xffffff);
			k.price = (int)(code & 0xffffff);
		}
	}
	/* a tenantless host's figures (the hypervisor's: docs/meters.md)
	 * are for graphs and alerts: billed only where the plan prices them */
	if (r->is_host && !iv->tenant_name[0] && k.price < 0)
		return 0;
	struct rate_acc *a = acc_get(s, &k);
	if (!a)
		return err_set(e, -ENOMEM, "out of memory rating usage");
	if (__builtin_add_overflow(a->qty, q, &a->qty) || a->qty > RATE_MAX_QTY || a->qty < -RATE_MAX_QTY)
		return err_set(e, -ERANGE, "usage of %s, %s: the sum of the period's rows does not fit (more than"
			       " 2^96 ledger units)", r->pub.uuid, meter_get(meter)->name);
	a->covered_ns += u->covered_ns;
	a->spanned_ns += u->spanned_ns;
	a->rows++;
	if (s->q->on_row) {
		struct rate_row row = { .k = k, .uuid = r->pub.uuid, .name = r->pub.name,
					.device = u->device, .hour_ns = hour, .qty = q,
					.covered_ns = u->covered_ns, .spanned_ns = u->spanned_ns };
		if ((rc = s->q->on_row(s->q->ctx, &row)))
			return rc;
	}
	s->tenants[iv->tenant].has_usage = true;
	return 0;
}

static int stream_usage(struct state *s, struct ledger_reader *lr, struct rate_result *out, struct tally_err *e)
{
	struct stream x = { .s = s, .out = out, .e = e };
	return ledger_read_usage(lr, s->q->from_ns, s->q->to_ns, on_usage, &x, e);
}

static int cmp_acc(const void *a, const void *b)
{
	const struct rate_key *x = &((const struct rate_acc *)a)->k, *y = &((const struct rate_acc *)b)->k;
	const int fx[6] = { x->tenant, x->version, x->override, x->price, x->meter, x->resource };
	const int fy[6] = { y->tenant, y->version, y->override, y->price, y->meter, y->resource };
	for (int i = 0; i < 6; i++)
		if (fx[i] != fy[i])
			return fx[i] < fy[i] ? -1 : 1;
	return 0;
}

int rate_collect(const struct rate_query *q, const struct plan *p, struct rate_result *out,
		 struct tally_err *e)
{
	struct state s = { .plan = p, .q = q, .filter_tenant = -1, .max_res_id = -1, .n_meters = meter_count() };
	struct ledger_reader *lr = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (q->from_ns >= q->to_ns)
		return err_set(e, -EINVAL, "the period is empty");
	if ((rc = ledger_reader_open(q->ledger, &lr, e)) || (rc = load_meters(&s, lr, e)) ||
	    (rc = load_resources(&s, lr, e)))
		goto out;
	if (q->tenant && !q->combined) {
		if ((s.filter_tenant = tenant_index(&s, q->tenant)) < 0) {
			rc = err_set(e, -ESRCH, "tenant '%s' is not in the ledger %s", q->tenant, q->ledger);
			goto out;
		}
	}
	if ((rc = stream_usage(&s, lr, out, e)) || (rc = ledger_data_until(lr, &out->data_until_ns, e)))
		goto out;

	/* the accumulators, sorted */
	out->accs = malloc((s.used ? s.used : 1) * sizeof(*out->accs));
	if (!out->accs) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s.cap; i++)
		if (s.tab[i].rows >= 0)
			out->accs[out->n_accs++] = s.tab[i];
	qsort(out->accs, out->n_accs, sizeof(*out->accs), cmp_acc);

	/* tenants of the period: those with usage in it, or whose resources
	 * were alive in it (fees and minimums are owed without usage); the
	 * indices in the accs stay those of s.tenants */
	out->tenants = s.tenants;
	out->n_tenants = s.n_tenants;
	s.tenants = NULL;
	out->resources = malloc((s.n_res ? s.n_res : 1) * sizeof(*out->resources));
	if (!out->resources) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s.n_res; i++)
		out->resources[i] = s.res[i].pub;
	out->n_resources = s.n_res;
	rc = 0;
out:
	ledger_reader_close(lr);
	for (size_t i = 0; i < s.n_iv; i++)
		free(s.iv[i].price_cache);
	free(s.iv);
	free(s.res);
	free(s.res_by_id);
	free(s.tenants);
	free(s.tenant_override);
	free(s.tab);
	if (rc)
		rate_result_release(out);
	return rc;
}

void rate_result_release(struct rate_result *r)
{
	free(r->accs);
	free(r->tenants);
	free(r->resources);
	memset(r, 0, sizeof(*r));
}

const struct plan_price *rate_price(const struct plan *p, const struct rate_key *k)
{
	if (k->price < 0 || k->version < 0)
		return NULL;
	if (k->override >= 0)
		return &p->tenants[k->override].prices[k->price];
	return &p->versions[k->version].prices[k->price];
}

void rate_unit_ratio(const struct plan_price *pp, int64_t month_s, __int128 *num, __int128 *den)
{
	*num = pp->unit.num * (meter_get(pp->meter)->kind == SAMPLE_GAUGE ? RATE_GAUGE_SCALE : 1);
	if (pp->unit.per_month)
		*num *= month_s;
	*den = pp->unit.den;
}

int64_t rate_month_seconds(int64_t from_ns, int64_t to_ns)
{
	char a[48], month[8];
	int64_t s, e;
	time_format_iso(from_ns, a, sizeof(a));
	memcpy(month, a, 7);
	month[7] = '\0';
	if (to_ns <= from_ns || time_parse_range(month, &s, &e, NULL) || to_ns > e)
		return 0;
	return (e - s) / NS_PER_SEC;
}

/* Scaled units: X = q x den x 10^9 for q ledger units, so that a billing
 * unit is U = num x 10^9 of them and every boundary written in the plan
 * (tier up_to, free allowance, block: units x 10^9) is b x num of them, a
 * whole number. A part of the period occupies [start, start + qty) of the
 * period's usage of its price (rate.h): the free allowance is the first
 * free x num of it, tiers and blocks count from the end of the allowance. */
static bool scaled(__int128 q, __int128 den, __int128 *x)
{
	return q >= 0 && !__builtin_mul_overflow(q, den * MONEY_NANOS, x);
}

static __int128 max128(__int128 a, __int128 b)
{
	return a > b ? a : b;
}

static __int128 min128(__int128 a, __int128 b)
{
	return a < b ? a : b;
}

/* acc += part x price (price >= 0), exactly */
static bool add_product(struct money_u256 *acc, __int128 part, int64_t price)
{
	struct money_u256 t;
	money_u256_mul((unsigned __int128)part, (unsigned __int128)price, &t);
	return money_u256_add(acc, &t) == 0;
}

static void tier_bound(__int128 num, __int128 den, char *buf, size_t len)
{
	money_format_ratio(num, den, 9, buf, len);
	char *dot = strchr(buf, '.');
	if (!dot)
		return;
	char *end = buf + strlen(buf);
	while (end > dot + 1 && end[-1] == '0')
		*--end = '\0';
	if (end == dot + 1)
		*dot = '\0';
}

char *rate_tier_words(const struct rate_step *st, char *buf, size_t len)
{
	char lo[64], hi[64];
	tier_bound(st->from_num, st->qty_den, lo, sizeof(lo));
	tier_bound(st->up_to_num, st->qty_den, hi, sizeof(hi));
	if (st->from_num == 0 && st->bounded)
		snprintf(buf, len, "first %s", hi);
	else if (st->bounded)
		snprintf(buf, len, "over %s up to %s", lo, hi);
	else if (st->from_num > 0)
		snprintf(buf, len, "over %s", lo);
	else
		snprintf(buf, len, "every");
	return buf;
}

int rate_amount(const struct plan_price *pp, int64_t month_s, int64_t free_nanos, __int128 start, __int128 qty,
		__int128 total, int minor_digits, enum money_round mode, struct rate_calc *out, struct tally_err *e)
{
	__int128 num, den, A, Q, T, end;
	memset(out, 0, sizeof(*out));
	if (pp->unit.per_month && month_s <= 0)
		return err_set(e, -EINVAL, "meter %s is priced per %s: the period must lie in one calendar month"
			       " (invoice month by month)", meter_get(pp->meter)->name, pp->unit.name);
	rate_unit_ratio(pp, month_s, &num, &den);
	if (!scaled(start, den, &A) || !scaled(qty, den, &Q) || !scaled(total, den, &T) ||
	    __builtin_add_overflow(A, Q, &end))
		goto range;
	{
	const __int128 U = num * MONEY_NANOS, F = (__int128)free_nanos * num;
	out->qty_num = Q;
	out->qty_den = U;
	out->start_num = A;
	out->free_num = min128(end, F) - min128(A, F);
	/* the part's charged positions, counted from the end of the allowance */
	const __int128 p0 = max128(A, F) - F, p1 = max128(end, F) - F;
	out->amount_den = (unsigned __int128)U * MONEY_NANOS;   /* currency = amount_num / amount_den */

	switch (pp->model) {
	case PLAN_PER_UNIT:
		out->steps[0] = (struct rate_step){ .qty_num = p1 - p0, .qty_den = U, .price_nanos = pp->price_nanos };
		out->n_steps = 1;
		if (!add_product(&out->amount_num, p1 - p0, pp->price_nanos))
			goto range;
		break;
	case PLAN_BLOCK: {
		/* blocks started by the end of the part, less those started before it */
		const __int128 B = (__int128)pp->block_nanos * num;
		__int128 blocks = (p1 + B - 1) / B - (p0 + B - 1) / B;
		out->steps[0] = (struct rate_step){ .qty_num = p1 - p0, .qty_den = U, .price_nanos = pp->price_nanos, .blocks = blocks };
		out->n_steps = 1;
		if (!add_product(&out->amount_num, blocks, pp->price_nanos))
			goto range;
		out->amount_den = MONEY_NANOS;
		break;
	}
	case PLAN_VOLUME: {
		/* every unit at the price of the tier the period's usage reaches */
		const __int128 reached = max128(T, F) - F;
		for (int i = 0; i < pp->n_tiers; i++) {
			const struct plan_tier *t = &pp->tiers[i];
			if (t->has_up_to && reached > (__int128)t->up_to_nanos * num)
				continue;
			out->steps[0] = (struct rate_step){
				.qty_num = p1 - p0, .qty_den = U, .price_nanos = t->price_nanos,
				.from_num = i ? (__int128)pp->tiers[i - 1].up_to_nanos * num : 0,
				.up_to_num = t->has_up_to ? (__int128)t->up_to_nanos * num : 0, .bounded = t->has_up_to };
			out->n_steps = 1;
			if (!add_product(&out->amount_num, p1 - p0, t->price_nanos))
				goto range;
			break;
		}
		break;
	}
	case PLAN_GRADUATED: {
		__int128 lo = 0;
		for (int i = 0; i < pp->n_tiers && lo < p1; i++) {
			const struct plan_tier *t = &pp->tiers[i];
			__int128 hi = t->has_up_to ? (__int128)t->up_to_nanos * num : p1;
			__int128 part = min128(p1, hi) - max128(p0, lo);
			if (part > 0) {
				out->steps[out->n_steps++] = (struct rate_step){
					.qty_num = part, .qty_den = U, .price_nanos = t->price_nanos, .from_num = lo,
					.up_to_num = t->has_up_to ? hi : 0, .bounded = t->has_up_to };
				if (!add_product(&out->amount_num, part, t->price_nanos))
					goto range;
			}
			lo = hi;
		}
		break;
	}
	}
	struct money_u256 n2 = out->amount_num;
	__int128 pow_minor = 1;
	for (int i = 0; i < minor_digits; i++)
		pow_minor *= 10;
	if (money_u256_mul_by(&n2, (unsigned __int128)pow_minor) ||
	    money_u256_round(&n2, false, out->amount_den, mode, &out->amount_minor))
		goto range;
	return 0;
	}
range:
	{
		char most[48];
		return err_set(e, -ERANGE, "meter %s: the amount cannot be represented (an amount is at most %s)",
			       meter_get(pp->meter)->name, money_format(INT64_MAX, minor_digits, most, sizeof(most)));
	}
}
