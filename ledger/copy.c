/*
 * copy.c: `tally ledger copy` (copy.h), the same for every pair of
 * backends: tables through the backends' copy operations (backend.h),
 * then the per-(resource, meter, hour) totals of both, compared.
 */
#include "copy.h"
#include "backend.h"
#include "err.h"
#include "exact.h"
#include "fault.h"
#include "hash.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the tables ---- */

struct copying {
	struct ledger_copy *to;
	const struct ledger_table *t;
	int64_t rows;
	struct tally_err *e;
};

static int copy_row(void *ctx, const struct ledger_value *v)
{
	struct copying *x = ctx;
	x->rows++;
	return x->to->be->copy_write(x->to, x->t, v, x->e);
}

/* ---- the totals ----
 *
 * Usage rows come in primary-key order (resource, meter, device, hour):
 * one (resource, meter) at a time, its devices' hours interleaved. Each
 * (resource, meter)'s hours are summed, then each hour's total is hashed
 * with the resource's uuid and the meter's name into a sum and an xor
 * that do not depend on order; per meter the totals are also summed, so
 * that a difference can be named. Memory: the ids' names and one
 * (resource, meter)'s hours. */

struct name {
	int64_t id;
	char *s;
};

struct hourtot {
	int64_t hour_ns;
	__int128 milli;
	int64_t spanned_ns, covered_ns, samples;
};

struct metertot {
	char name[64];
	__int128 milli;
	int64_t samples, covered_ns, hours;
};

struct totals {
	const char *where;
	struct name *res, *met;
	size_t n_res, cap_res, n_met, cap_met;
	int64_t cur_res, cur_met;
	struct hourtot *h;
	size_t n_h, cap_h;
	struct metertot m[64];
	int n_m;
	uint64_t sum, xor;
	int64_t count, rows;
	struct tally_err *e;
};

static int add_name(struct name **v, size_t *n, size_t *cap, int64_t id, const struct ledger_value *s)
{
	if (vec_reserve((void **)v, cap, *n + 1, sizeof(**v), 256))
		return -ENOMEM;
	char *c = fault_malloc(s->len + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, s->p, s->len);
	c[s->len] = '\0';
	(*v)[*n].id = id;
	(*v)[(*n)++].s = c;
	return 0;
}

static int res_row(void *ctx, const struct ledger_value *v)
{
	struct totals *t = ctx;
	return add_name(&t->res, &t->n_res, &t->cap_res, v[0].i, &v[1]);
}

static int met_row(void *ctx, const struct ledger_value *v)
{
	struct totals *t = ctx;
	return add_name(&t->met, &t->n_met, &t->cap_met, v[0].i, &v[1]);
}

static int name_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct name *)a)->id, y = ((const struct name *)b)->id;
	return x < y ? -1 : x > y;
}

static const char *name_of(const struct name *v, size_t n, int64_t id)
{
	struct name k = { .id = id };
	const struct name *f = bsearch(&k, v, n, sizeof(*v), name_cmp);
	return f ? f->s : NULL;
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* The (resource, meter) in hand: its hours into the digest and the
 * meter's totals. */
static int flush_group(struct totals *t)
{
	if (!t->n_h)
		return 0;
	const char *uuid = name_of(t->res, t->n_res, t->cur_res), *meter = name_of(t->met, t->n_met, t->cur_met);
	if (!uuid || !meter)
		return err_set(t->e, -EINVAL, "%s: usage of resource id %lld, meter id %lld that the ledger does not"
			       " name: the ledger is not what tally writes", t->where, (long long)t->cur_res,
			       (long long)t->cur_met);
	struct metertot *m = NULL;
	for (int i = 0; i < t->n_m && !m; i++)
		if (!strcmp(t->m[i].name, meter))
			m = &t->m[i];
	if (!m && t->n_m < (int)(sizeof(t->m) / sizeof(t->m[0]))) {
		m = &t->m[t->n_m++];
		memset(m, 0, sizeof(*m));
		str_copy(m->name, meter, sizeof(m->name));
	}
	for (size_t i = 0; i < t->n_h; i++) {
		const struct hourtot *h = &t->h[i];
		uint64_t x = hash_fnv64(HASH_FNV64_INIT, uuid, strlen(uuid) + 1);
		x = hash_fnv64(x, meter, strlen(meter) + 1);
		int64_t f[5] = { h->hour_ns, (int64_t)(h->milli >> 64), (int64_t)h->milli, h->spanned_ns, h->samples };
		x = hash_fnv64(x, f, sizeof(f));
		x = hash_fnv64(x, &h->covered_ns, sizeof(h->covered_ns));
		x = mix(x);
		t->sum += x;
		t->xor ^= x;
		t->count++;
		if (m) {
			m->milli += h->milli;
			m->samples += h->samples;
			m->covered_ns += h->covered_ns;
			m->hours++;
		}
	}
	t->n_h = 0;
	return 0;
}

static int usage_row(void *ctx, const struct ledger_value *v)
{
	struct totals *t = ctx;
	int rc;
	__int128 milli;
	t->rows++;
	if (v[0].i != t->cur_res || v[1].i != t->cur_met) {
		if ((rc = flush_group(t)))
			return rc;
		t->cur_res = v[0].i;
		t->cur_met = v[1].i;
	}
	if (v[4].type == LV_INT)
		milli = (__int128)v[4].i * 1000;
	else if (v[4].type != LV_REAL || exact_double_scaled(v[4].d, 1000, &milli))
		return err_set(t->e, -EINVAL, "%s: a usage quantity that is not a number: the ledger is not what tally"
			       " writes", t->where);
	size_t lo = 0, hi = t->n_h;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->h[mid].hour_ns < v[3].i)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == t->n_h || t->h[lo].hour_ns != v[3].i) {
		if (vec_reserve((void **)&t->h, &t->cap_h, t->n_h + 1, sizeof(*t->h), 256))
			return -ENOMEM;
		memmove(t->h + lo + 1, t->h + lo, (t->n_h - lo) * sizeof(*t->h));
		memset(&t->h[lo], 0, sizeof(t->h[lo]));
		t->h[lo].hour_ns = v[3].i;
		t->n_h++;
	}
	struct hourtot *h = &t->h[lo];
	h->milli += milli;
	h->spanned_ns += v[5].i;
	h->covered_ns += v[6].i;
	h->samples += v[7].i;
	return 0;
}

static const struct ledger_table *table(const char *name)
{
	for (int i = 0; i < ledger_n_tables; i++)
		if (!strcmp(ledger_tables[i].name, name))
			return &ledger_tables[i];
	return NULL;
}

static int totals_of(struct ledger_copy *c, const char *where, struct totals *t, struct tally_err *e)
{
	const struct ledger_backend *be = c->be;
	int rc;
	memset(t, 0, sizeof(*t));
	t->where = where;
	t->e = e;
	t->cur_res = t->cur_met = INT64_MIN;
	if ((rc = be->copy_read(c, table("resources"), res_row, t, e)) ||
	    (rc = be->copy_read(c, table("meters"), met_row, t, e)))
		goto out;
	qsort(t->res, t->n_res, sizeof(*t->res), name_cmp);
	qsort(t->met, t->n_met, sizeof(*t->met), name_cmp);
	if ((rc = be->copy_read(c, table("usage"), usage_row, t, e)) || (rc = flush_group(t)))
		goto out;
out:
	if (rc == -ENOMEM)
		err_set(e, rc, "%s: out of memory summing the usage", where);
	return rc;
}

static void totals_free(struct totals *t)
{
	for (size_t i = 0; i < t->n_res; i++)
		free(t->res[i].s);
	for (size_t i = 0; i < t->n_met; i++)
		free(t->met[i].s);
	free(t->res);
	free(t->met);
	free(t->h);
}

/* Where two totals differ, for the message. */
static void differ(const struct totals *a, const struct totals *b, char *out, size_t len)
{
	char x[48], y[48];
	if (a->count != b->count) {
		snprintf(out, len, "%lld (resource, meter, hour) totals in the source, %lld in the target",
			 (long long)a->count, (long long)b->count);
		return;
	}
	for (int i = 0; i < a->n_m; i++) {
		const struct metertot *p = &a->m[i], *q = NULL;
		for (int k = 0; k < b->n_m; k++)
			if (!strcmp(b->m[k].name, p->name))
				q = &b->m[k];
		if (!q || q->milli != p->milli || q->samples != p->samples || q->covered_ns != p->covered_ns) {
			snprintf(out, len, "meter %s: %s milli-units in the source, %s in the target", p->name,
				 exact_i128_text(p->milli, x, sizeof(x)), q ? exact_i128_text(q->milli, y, sizeof(y)) : "none");
			return;
		}
	}
	snprintf(out, len, "the same sums per meter, but not per (resource, meter, hour)");
}

int ledger_copy(const char *from, const char *to, struct ledger_copy_result *out, struct tally_err *e)
{
	const char *rf, *rt;
	const struct ledger_backend *bf = ledger_backend_for(from, &rf), *bt = ledger_backend_for(to, &rt);
	struct ledger_copy *src = NULL, *dst = NULL;
	struct totals ta = { 0 }, tb = { 0 };
	int64_t t0 = time_mono_ns();
	int rc;

	memset(out, 0, sizeof(*out));
	if (!bf || !bt)
		return err_set(e, -EINVAL, "%s: not a ledger location tally knows (a file, sqlite:PATH, or"
			       " postgresql://...)", bf ? to : from);
	if (!strcmp(rf, rt) && bf == bt)
		return err_set(e, -EINVAL, "%s: the source and the target are the same ledger", rf);
	if ((rc = bf->copy_open(&src, rf, false, e)))
		return rc;
	if ((rc = bt->copy_open(&dst, rt, true, e)))
		goto out;
	for (int i = 0; i < ledger_n_tables; i++) {
		struct copying x = { .to = dst, .t = &ledger_tables[i], .e = e };
		if ((rc = bf->copy_read(src, x.t, copy_row, &x, e)) || (rc = bt->copy_flush(dst, x.t, e))) {
			if (rc == -ENOMEM && !e->msg[0])
				err_set(e, rc, "out of memory copying %s", x.t->name);
			err_prefix(e, "copying %s (nothing was copied)", x.t->name);
			goto out;
		}
		out->rows += x.rows;
		out->tables++;
		if (!strcmp(x.t->name, "usage"))
			out->usage_rows = x.rows;
	}
	/* the same usage on both sides, read back from the target before it
	 * commits */
	if ((rc = totals_of(src, rf, &ta, e)) || (rc = totals_of(dst, rt, &tb, e)))
		goto out;
	if (ta.count != tb.count || ta.sum != tb.sum || ta.xor != tb.xor || ta.rows != out->usage_rows) {
		char why[300];
		differ(&ta, &tb, why, sizeof(why));
		rc = err_set(e, -EIO, "%s: the copy's usage is not the source's (%s); nothing was committed", rt, why);
		goto out;
	}
	out->totals = ta.count;
	rc = bt->copy_commit(dst, e);
out:
	totals_free(&ta);
	totals_free(&tb);
	if (dst)
		bt->copy_close(dst);
	if (src)
		bf->copy_close(src);
	out->ns = time_mono_ns() - t0;
	return rc;
}
