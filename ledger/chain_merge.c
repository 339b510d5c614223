/*
 * chain_merge.c: an hour's digest after a commit's usage is added to it
 * (chain_merge.h).
 */
#include "chain_merge.h"
#include "fault.h"
#include "ledger.h"
#include "vec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int chain_deltas_add(struct chain_deltas *d, const struct ledger_usage *u)
{
	size_t len = strlen(u->device);
	if (vec_reserve((void **)&d->v, &d->cap, d->n + 1, sizeof(*d->v), 1024) ||
	    vec_reserve((void **)&d->arena, &d->size, d->used + len + 1, 1, 1 << 16))
		return -ENOMEM;
	memcpy(d->arena + d->used, u->device, len + 1);
	d->v[d->n++] = (struct chain_delta){
		.resource_id = u->resource_id, .meter_id = u->meter_id, .hour_ns = u->hour_ns,
		.dev_at = d->used, .dev_len = len, .is_real = u->is_real != 0, .qty = u->qty,
		.qty_real = u->qty_real, .spanned_ns = u->spanned_ns, .covered_ns = u->covered_ns,
		.samples = u->samples,
	};
	d->used += len + 1;
	return 0;
}

void chain_deltas_reset(struct chain_deltas *d)
{
	d->n = 0;
	d->used = 0;
}

void chain_deltas_free(struct chain_deltas *d)
{
	free(d->v);
	free(d->arena);
	*d = (struct chain_deltas){ 0 };
}

/* One of the hour's deltas, for sorting: its device found, and where it
 * was added (the order a key's deltas are summed in). */
struct at {
	const struct chain_delta *d;
	const char *dev;
	size_t i;
};

static int key_cmp(int64_t r1, int64_t m1, const char *d1, size_t l1, int64_t r2, int64_t m2, const char *d2,
		   size_t l2)
{
	if (r1 != r2)
		return r1 < r2 ? -1 : 1;
	if (m1 != m2)
		return m1 < m2 ? -1 : 1;
	int c = memcmp(d1, d2, l1 < l2 ? l1 : l2);
	if (c)
		return c < 0 ? -1 : 1;
	return l1 < l2 ? -1 : l1 > l2;
}

static int at_cmp(const void *x, const void *y)
{
	const struct at *a = x, *b = y;
	int c = key_cmp(a->d->resource_id, a->d->meter_id, a->dev, a->d->dev_len, b->d->resource_id,
			b->d->meter_id, b->dev, b->d->dev_len);
	return c ? c : a->i < b->i ? -1 : a->i > b->i;
}

static int row_cmp(const struct chain_row *r, const struct at *a)
{
	return key_cmp(r->resource_id, r->meter_id, r->device, r->device_len, a->d->resource_id, a->d->meter_id,
		       a->dev, a->d->dev_len);
}

/* A delta as the row it makes when the row is not there. */
static void row_of_delta(const struct at *a, struct chain_row *r)
{
	*r = (struct chain_row){
		.resource_id = a->d->resource_id, .meter_id = a->d->meter_id, .device = a->dev,
		.device_len = a->d->dev_len, .hour_ns = a->d->hour_ns, .spanned_ns = a->d->spanned_ns,
		.covered_ns = a->d->covered_ns, .samples = a->d->samples,
	};
	r->qty.type = a->d->is_real ? LEDGER_QTY_REAL : LEDGER_QTY_INT;
	if (a->d->is_real)
		r->qty.d = a->d->qty_real;
	else
		r->qty.i = a->d->qty;
}

/* r += a, as the ledger adds; -ERANGE when it would not, or not so. */
static int add(struct chain_row *r, const struct at *a)
{
	const struct chain_delta *d = a->d;
	if (r->qty.type == LEDGER_QTY_INT && !d->is_real) {
		if (__builtin_add_overflow(r->qty.i, d->qty, &r->qty.i))
			return -ERANGE;
	} else if (r->qty.type == LEDGER_QTY_REAL && d->is_real) {
		double s = r->qty.d + d->qty_real;
		if (!isfinite(r->qty.d) || !isfinite(d->qty_real) || !isfinite(s))
			return -ERANGE;
		r->qty.d = s;
	} else {
		return -ERANGE;
	}
	if (__builtin_add_overflow(r->spanned_ns, d->spanned_ns, &r->spanned_ns) ||
	    __builtin_add_overflow(r->covered_ns, d->covered_ns, &r->covered_ns) ||
	    __builtin_add_overflow(r->samples, d->samples, &r->samples))
		return -ERANGE;
	return 0;
}

int chain_merge_hour(const struct chain_deltas *d, int64_t hour_ns, chain_row_next next, void *ctx,
		     struct chain_hour *before, struct chain_hour *after)
{
	struct at *v = fault_malloc((d->n ? d->n : 1) * sizeof(*v));
	struct chain_row row, prev = { 0 }, out;
	size_t m = 0, k = 0;
	int have, rc = -ENOMEM;
	before->ctx = after->ctx = NULL;
	if (!v || chain_hour_begin(before, hour_ns) || chain_hour_begin(after, hour_ns))
		goto out;
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].hour_ns == hour_ns)
			v[m++] = (struct at){ .d = &d->v[i], .dev = d->arena + d->v[i].dev_at, .i = i };
	qsort(v, m, sizeof(*v), at_cmp);
	if ((have = next(ctx, &row)) < 0) {
		rc = have;
		goto out;
	}
	while (have > 0 || k < m) {
		int c = !have ? 1 : k == m ? -1 : row_cmp(&row, &v[k]);
		if (have) {
			/* the rows as the ledger has them: of the hour, in the chain's order */
			if (row.hour_ns != hour_ns || row.qty.type == LEDGER_QTY_OTHER ||
			    (before->rows && key_cmp(prev.resource_id, prev.meter_id, prev.device, prev.device_len,
						     row.resource_id, row.meter_id, row.device, row.device_len) >= 0)) {
				rc = -ERANGE;
				goto out;
			}
		}
		if (c <= 0) {
			chain_hour_row(before, &row);
			prev = out = row;
		} else {
			row_of_delta(&v[k++], &out);
		}
		if (c >= 0) {
			/* a row this commit writes: its deltas summed in order */
			for (; k < m && row_cmp(&out, &v[k]) == 0; k++)
				if ((rc = add(&out, &v[k])))
					goto out;
			if (out.qty.type == LEDGER_QTY_REAL && !isfinite(out.qty.d)) {
				rc = -ERANGE;
				goto out;
			}
		}
		chain_hour_row(after, &out);
		if (c <= 0 && (have = next(ctx, &row)) < 0) {
			rc = have;
			goto out;
		}
	}
	if ((rc = chain_hour_end(before)) || (rc = chain_hour_end(after)))
		goto out;
	free(v);
	return 0;
out:
	chain_commit_free(before->ctx);
	chain_commit_free(after->ctx);
	before->ctx = after->ctx = NULL;
	free(v);
	return rc;
}
