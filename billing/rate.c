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
#include "err.h"
#include "ledger_ro.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* A resource's attributes from since_ns until the next interval's. */
struct interval {
	int64_t since_ns;
	int tenant;                  /* index into tenants, after interning */
	char tenant_name[64];
	char name[128], flavor[64], project[64], user[64], labels[512];
	int32_t *price_cache;        /* [version * METER_COUNT + meter], see price_code() */
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
	int meter_by_id[256];        /* ledger meter id -> enum meter_id, -1 */
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

/* The price of (interval, version, meter), cached: -1 unpriced, else
 * (override + 1) << 16 | price index. */
static int32_t price_code(struct state *s, struct interval *iv, const struct res *r, int version, int meter)
{
	int32_t *slot = &iv->price_cache[(size_t)version * METER_COUNT + (size_t)meter];
	if (*slot != -2)
		return *slot;
	int32_t code = -1;
	int ov = s->tenant_override[iv->tenant];
	if (ov >= 0) {
		const struct plan_tenant *t = &s->plan->tenants[ov];
		for (size_t i = 0; i < t->n_prices && code < 0; i++)
			if (t->prices[i].meter == meter && selector_matches(&t->prices[i], iv, r))
				code = (int32_t)((ov + 1) << 16 | (int)i);
	}
	const struct plan_version *v = &s->plan->versions[version];
	for (size_t i = 0; i < v->n_prices && code < 0; i++)
		if (v->prices[i].meter == meter && selector_matches(&v->prices[i], iv, r))
			code = (int32_t)i;
	return *slot = code;
}

static uint64_t key_hash(const struct rate_key *k)
{
	uint64_t h = 1469598103934665603ULL;
	const int f[6] = { k->tenant, k->resource, k->version, k->override, k->price, k->meter };
	for (int i = 0; i < 6; i++) {
		h ^= (uint64_t)(uint32_t)f[i];
		h *= 1099511628211ULL;
	}
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

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
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

/* Resources, their attribute intervals and the tenants they name. */
static int load_resources(struct state *s, sqlite3 *db, struct tally_err *e)
{
	static const char sql[] =
		"SELECT r.id, r.uuid, r.name, r.first_seen_ns, r.last_seen_ns, r.host,"
		" a.since_ns, a.tenant, a.name, a.flavor, a.project, a.user_id, a.labels, r.type"
		" FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id"
		" ORDER BY r.id, a.since_ns";
	sqlite3_stmt *st = NULL;
	size_t cap_res = 0, cap_iv = 0;
	int64_t last_id = -1;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot read resources: %s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id != last_id) {
			if (s->n_res == cap_res) {
				cap_res = cap_res ? cap_res * 2 : 256;
				struct res *n = realloc(s->res, cap_res * sizeof(*n));
				if (!n)
					goto nomem;
				s->res = n;
			}
			struct res *r = &s->res[s->n_res++];
			memset(r, 0, sizeof(*r));
			r->id = id;
			str_copy(r->pub.uuid, col_text(st, 1), sizeof(r->pub.uuid));
			str_copy(r->pub.name, col_text(st, 2), sizeof(r->pub.name));
			r->pub.first_seen_ns = sqlite3_column_int64(st, 3);
			r->pub.last_seen_ns = sqlite3_column_int64(st, 4);
			str_copy(r->host, col_text(st, 5), sizeof(r->host));
			r->is_host = !strcmp(col_text(st, 13), "host");
			r->iv0 = s->n_iv;
			if (id > s->max_res_id)
				s->max_res_id = id;
			last_id = id;
		}
		/* a resource never described has one interval with tenant '' */
		struct res *r = &s->res[s->n_res - 1];
		if (s->n_iv == cap_iv) {
			cap_iv = cap_iv ? cap_iv * 2 : 256;
			struct interval *n = realloc(s->iv, cap_iv * sizeof(*n));
			if (!n)
				goto nomem;
			s->iv = n;
		}
		struct interval *iv = &s->iv[s->n_iv++];
		memset(iv, 0, sizeof(*iv));
		iv->since_ns = sqlite3_column_int64(st, 6);
		str_copy(iv->tenant_name, col_text(st, 7), sizeof(iv->tenant_name));
		str_copy(iv->name, col_text(st, 8), sizeof(iv->name));
		str_copy(iv->flavor, col_text(st, 9), sizeof(iv->flavor));
		str_copy(iv->project, col_text(st, 10), sizeof(iv->project));
		str_copy(iv->user, col_text(st, 11), sizeof(iv->user));
		str_copy(iv->labels, col_text(st, 12), sizeof(iv->labels));
		r->n_iv++;
	}
	if (rc != SQLITE_DONE) {
		rc = err_set(e, -EIO, "cannot read resources: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

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
	size_t cache = s->plan->n_versions * METER_COUNT;
	for (size_t r = 0; r < s->n_res; r++) {
		for (size_t i = s->res[r].iv0; i < s->res[r].iv0 + s->res[r].n_iv; i++) {
			struct interval *iv = &s->iv[i];
			iv->tenant = s->q->combined ? 0 : tenant_index(s, iv->tenant_name);
			iv->price_cache = malloc((cache ? cache : 1) * sizeof(int32_t));
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
	rc = 0;
	goto out;
nomem:
	rc = err_set(e, -ENOMEM, "out of memory reading resources");
out:
	sqlite3_finalize(st);
	return rc;
}

static int load_meters(struct state *s, sqlite3 *db, struct tally_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;
	for (size_t i = 0; i < sizeof(s->meter_by_id) / sizeof(s->meter_by_id[0]); i++)
		s->meter_by_id[i] = -1;
	if (sqlite3_prepare_v2(db, "SELECT id, name FROM meters", -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot read meters: %s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id >= 0 && id < 256)
			s->meter_by_id[id] = meter_lookup(col_text(st, 1));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "cannot read meters: %s", sqlite3_errmsg(db));
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

static int stream_usage(struct state *s, sqlite3 *db, struct rate_result *out, struct tally_err *e)
{
	/* Driven by the series table: one primary-key range seek per series
	 * (resource, meter, device), so exactly the period's rows are read, in
	 * key order. Every usage row has its series row (the aggregator writes
	 * both in one transaction and never deletes series); the hour index
	 * would instead cost a key lookup per row, six times slower. */
	static const char sql[] =
		"SELECT u.resource_id, u.meter_id, u.hour_ns, u.quantity, u.covered_ns, u.spanned_ns, u.device"
		" FROM (SELECT DISTINCT resource_id, meter_id, device FROM series) s CROSS JOIN usage u"
		" WHERE u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device"
		" AND u.hour_ns >= ?1 AND u.hour_ns < ?2";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot read usage: %s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, s->q->from_ns);
	sqlite3_bind_int64(st, 2, s->q->to_ns);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t rid = sqlite3_column_int64(st, 0), mid = sqlite3_column_int64(st, 1);
		int64_t hour = sqlite3_column_int64(st, 2);
		out->rows++;
		if (rid < 0 || rid > s->max_res_id || s->res_by_id[rid] < 0 || mid < 0 || mid >= 256 ||
		    s->meter_by_id[mid] < 0)
			continue; /* a meter this tally does not know: nothing to price */
		int meter = s->meter_by_id[mid];
		struct res *r = &s->res[s->res_by_id[rid]];
		struct interval *iv = interval_at(s, r, hour);
		if (s->filter_tenant >= 0 && iv->tenant != s->filter_tenant)
			continue;
		__int128 q;
		if (meter_table[meter].kind == SAMPLE_GAUGE) {
			double d = sqlite3_column_double(st, 3) * RATE_GAUGE_SCALE;
			if (!(fabs(d) < 9.2e18)) {
				rc = err_set(e, -ERANGE, "usage of %s, %s at hour %lld: %g does not fit",
					     r->pub.uuid, meter_table[meter].name, (long long)hour, d);
				goto out;
			}
			q = (__int128)llrint(d);   /* half to even in the default rounding mode */
		} else {
			q = sqlite3_column_int64(st, 3);
		}
		struct rate_key k = { .tenant = iv->tenant, .resource = s->res_by_id[rid], .meter = meter,
				      .version = plan_version_at(s->plan, hour), .override = -1, .price = -1 };
		if (k.version >= 0) {
			int32_t code = price_code(s, iv, r, k.version, meter);
			if (code >= 0) {
				k.override = (code >> 16) - 1;
				k.price = code & 0xffff;
			}
		}
		/* a tenantless host's figures (the hypervisor's: docs/meters.md)
		 * are for graphs and alerts: billed only where the plan prices them */
		if (r->is_host && !iv->tenant_name[0] && k.price < 0)
			continue;
		struct rate_acc *a = acc_get(s, &k);
		if (!a) {
			rc = err_set(e, -ENOMEM, "out of memory rating usage");
			goto out;
		}
		a->qty += q;
		a->covered_ns += sqlite3_column_int64(st, 4);
		a->spanned_ns += sqlite3_column_int64(st, 5);
		a->rows++;
		if (s->q->on_row) {
			struct rate_row row = { .k = k, .uuid = r->pub.uuid, .name = r->pub.name,
						.device = col_text(st, 6), .hour_ns = hour, .qty = q,
						.covered_ns = sqlite3_column_int64(st, 4),
						.spanned_ns = sqlite3_column_int64(st, 5) };
			if ((rc = s->q->on_row(s->q->ctx, &row)))
				goto out;
		}
		s->tenants[iv->tenant].has_usage = true;
	}
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "cannot read usage: %s", sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	return rc;
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
	struct state s = { .plan = p, .q = q, .filter_tenant = -1, .max_res_id = -1 };
	sqlite3 *db = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (q->from_ns >= q->to_ns)
		return err_set(e, -EINVAL, "the period is empty");
	if ((rc = ledger_ro_open(q->ledger, &db, e)) || (rc = load_meters(&s, db, e)) ||
	    (rc = load_resources(&s, db, e)))
		goto out;
	if (q->tenant && !q->combined) {
		if ((s.filter_tenant = tenant_index(&s, q->tenant)) < 0) {
			rc = err_set(e, -ESRCH, "tenant '%s' is not in the ledger %s", q->tenant, q->ledger);
			goto out;
		}
	}
	if ((rc = stream_usage(&s, db, out, e)))
		goto out;

	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(last_time_ns), 0) FROM agents", -1, &st, NULL) ==
		    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		out->data_until_ns = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);

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
	sqlite3_close(db);
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

void rate_unit_ratio(const struct plan_price *pp, __int128 *num, __int128 *den)
{
	const struct plan_unit_def *u = &plan_units[pp->unit];
	*num = u->num * (meter_table[pp->meter].kind == SAMPLE_GAUGE ? RATE_GAUGE_SCALE : 1);
	*den = u->den;
}

/* a*b and a+b, refusing to wrap */
static bool mul(__int128 a, __int128 b, __int128 *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

static bool add(__int128 a, __int128 b, __int128 *r)
{
	return !__builtin_add_overflow(a, b, r);
}

int rate_amount(const struct plan_price *pp, __int128 qty, int minor_digits, enum money_round mode,
		struct rate_calc *out, struct tally_err *e)
{
	__int128 num, den, k = 1, pow_minor = 1;
	memset(out, 0, sizeof(*out));
	rate_unit_ratio(pp, &num, &den);
	for (int i = 0; i < minor_digits; i++)
		pow_minor *= 10;

	/* Scaled units: S = qty * den * k, one billing unit = U = num * k of
	 * them, with k the smallest power of ten that makes every boundary
	 * (tier up_to, free allowance, block, given in units x 10^9) a whole
	 * number of scaled units. */
	int64_t bounds[PLAN_MAX_TIERS + 2];
	int nb = 0;
	for (int i = 0; i < pp->n_tiers; i++)
		if (pp->tiers[i].has_up_to)
			bounds[nb++] = pp->tiers[i].up_to_nanos;
	bounds[nb++] = pp->free_nanos;
	bounds[nb++] = pp->block_nanos;
	for (; k < MONEY_NANOS; k *= 10) {
		bool whole = true;
		for (int i = 0; i < nb && whole; i++)
			whole = ((__int128)bounds[i] * num * k) % MONEY_NANOS == 0;
		if (whole)
			break;
	}
	__int128 S, U = num * k, F = (__int128)pp->free_nanos * num * k / MONEY_NANOS;
	if (!mul(qty, den * k, &S))
		goto range;
	out->qty_num = S;
	out->qty_den = U;
	out->free_num = S < F ? S : F;
	__int128 C = S > F ? S - F : 0, anum = 0, aden;   /* amount = anum / aden currency units */
	if (!mul(U, MONEY_NANOS, &aden))
		goto range;

	switch (pp->model) {
	case PLAN_PER_UNIT:
		out->steps[0] = (struct rate_step){ C, U, pp->price_nanos, 0 };
		out->n_steps = 1;
		if (!mul(C, pp->price_nanos, &anum))
			goto range;
		break;
	case PLAN_BLOCK: {
		__int128 B = (__int128)pp->block_nanos * U / MONEY_NANOS;
		__int128 blocks = (C + B - 1) / B;
		out->steps[0] = (struct rate_step){ C, U, pp->price_nanos, blocks };
		out->n_steps = 1;
		if (!mul(blocks, pp->price_nanos, &anum))
			goto range;
		aden = MONEY_NANOS;
		break;
	}
	case PLAN_GRADUATED:
	case PLAN_VOLUME: {
		__int128 lo = 0;
		for (int i = 0; i < pp->n_tiers; i++) {
			const struct plan_tier *t = &pp->tiers[i];
			__int128 hi = t->has_up_to ? (__int128)t->up_to_nanos * U / MONEY_NANOS : C;
			if (pp->model == PLAN_VOLUME) {
				if (C <= hi || !t->has_up_to) {
					out->steps[0] = (struct rate_step){ C, U, t->price_nanos, 0 };
					out->n_steps = 1;
					if (!mul(C, t->price_nanos, &anum))
						goto range;
					break;
				}
				continue;
			}
			if (C <= lo)
				break;
			__int128 part = (C < hi ? C : hi) - lo, x;
			out->steps[out->n_steps++] = (struct rate_step){ part, U, t->price_nanos, 0 };
			if (!mul(part, t->price_nanos, &x) || !add(anum, x, &anum))
				goto range;
			lo = hi;
		}
		break;
	}
	}
	__int128 n2;
	if (!mul(anum, pow_minor, &n2))
		goto range;
	__int128 amount = money_round_div(n2, aden, mode);
	if (amount > INT64_MAX || amount < INT64_MIN)
		goto range;
	out->amount_minor = (int64_t)amount;
	return 0;
range:
	return err_set(e, -ERANGE, "meter %s: the amount is too large for exact arithmetic",
		       meter_table[pp->meter].name);
}
