/*
 * chain_merge.c: an hour's digest after a commit's usage is added to it
 * (chain_merge.h).
 */
#include "chain_merge.h"
#include "fault.h"
#include "hash.h"
#include "itab.h"
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

/* A row's key, as the chain orders it. */
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

static int row_cmp(const struct chain_row *a, const struct chain_row *b)
{
	return key_cmp(a->resource_id, a->meter_id, a->device, a->device_len, b->resource_id, b->meter_id,
		       b->device, b->device_len);
}

static int row_qcmp(const void *a, const void *b)
{
	return row_cmp(a, b);
}

static uint64_t row_hash(const struct chain_row *r)
{
	uint64_t h = hash_fnv64(HASH_FNV64_INIT, &r->resource_id, sizeof(r->resource_id));
	h = hash_fnv64(h, &r->meter_id, sizeof(r->meter_id));
	return hash_fnv64(h, r->device, r->device_len);
}

/* Rows found by their key (itab.h over an array of them). */
struct rowset {
	struct chain_row *v;
	size_t n, cap;
	struct itab t;
};

static int rs_eq(const void *ctx, uint32_t i, const void *key)
{
	return row_cmp(&((const struct rowset *)ctx)->v[i], key) == 0;
}

static uint64_t rs_hash(const void *ctx, uint32_t i)
{
	return row_hash(&((const struct rowset *)ctx)->v[i]);
}

/* The row of s with r's key, or NULL; *slot: where it goes when not. */
static struct chain_row *rs_find(struct rowset *s, const struct chain_row *r, uint32_t **slot)
{
	*slot = itab_find(s, &s->t, row_hash(r), rs_eq, r);
	return **slot ? &s->v[**slot - 1] : NULL;
}

/* Index every row of s (keys unique). 0 or -ENOMEM. */
static int rs_index(struct rowset *s)
{
	size_t size = 64;
	while (size < 2 * s->n + 2)
		size *= 2;
	if (itab_init(&s->t, size))
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		uint32_t *slot = itab_find(s, &s->t, row_hash(&s->v[i]), rs_eq, &s->v[i]);
		if (itab_put(s, &s->t, slot, (uint32_t)i, rs_hash))
			return -ENOMEM;
	}
	return 0;
}

static void rs_free(struct rowset *s)
{
	free(s->v);
	itab_release(&s->t);
}

/* A delta as the row it makes when the row is not there. */
static struct chain_row row_of_delta(const struct chain_deltas *ds, const struct chain_delta *d)
{
	struct chain_row r = {
		.resource_id = d->resource_id, .meter_id = d->meter_id, .device = ds->arena + d->dev_at,
		.device_len = d->dev_len, .hour_ns = d->hour_ns, .spanned_ns = d->spanned_ns,
		.covered_ns = d->covered_ns, .samples = d->samples,
	};
	r.qty.type = d->is_real ? LEDGER_QTY_REAL : LEDGER_QTY_INT;
	if (d->is_real)
		r.qty.d = d->qty_real;
	else
		r.qty.i = d->qty;
	return r;
}

/* r += d, as the ledger adds; -ERANGE when it would not, or not so. */
static int add(struct chain_row *r, const struct chain_delta *d)
{
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

/* The hour's rows from next into old (hashed into before as they come),
 * checked to be of the hour, in the chain's order and each an integer or
 * a real. */
static int read_rows(int64_t hour_ns, chain_row_next next, void *ctx, struct rowset *old, struct chain_hour *before)
{
	struct chain_row r;
	int have;
	while ((have = next(ctx, &r)) > 0) {
		if (r.hour_ns != hour_ns || r.qty.type == LEDGER_QTY_OTHER || (old->n && row_cmp(&old->v[old->n - 1], &r) >= 0))
			return -ERANGE;
		if (vec_reserve((void **)&old->v, &old->cap, old->n + 1, sizeof(*old->v), 1024))
			return -ENOMEM;
		old->v[old->n++] = r;
		chain_hour_row(before, &r);
	}
	return have;
}

/* Each delta of the hour added, in the order they came, to its row: one
 * of old's, or a new one (into new, unordered). */
static int add_deltas(const struct chain_deltas *d, int64_t hour_ns, struct rowset *old, struct rowset *new)
{
	int rc;
	if ((rc = rs_index(old)) || (rc = itab_init(&new->t, 64)))
		return rc;
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].hour_ns != hour_ns)
			continue;
		struct chain_row k = row_of_delta(d, &d->v[i]), *r;
		uint32_t *slot;
		if ((r = rs_find(old, &k, &slot)) || (r = rs_find(new, &k, &slot))) {
			if ((rc = add(r, &d->v[i])))
				return rc;
			continue;
		}
		if (k.qty.type == LEDGER_QTY_REAL && !isfinite(k.qty.d))
			return -ERANGE;
		if (vec_reserve((void **)&new->v, &new->cap, new->n + 1, sizeof(*new->v), 1024))
			return -ENOMEM;
		new->v[new->n] = k;
		if (itab_put(new, &new->t, slot, (uint32_t)new->n++, rs_hash))
			return -ENOMEM;
	}
	return 0;
}

int chain_merge_hour(const struct chain_deltas *d, int64_t hour_ns, chain_row_next next, void *ctx,
		     struct chain_hour *before, struct chain_hour *after)
{
	struct rowset old = { 0 }, new = { 0 };
	int rc = -ENOMEM;
	before->ctx = after->ctx = NULL;
	if (chain_hour_begin(before, hour_ns) || chain_hour_begin(after, hour_ns))
		goto out;
	if ((rc = read_rows(hour_ns, next, ctx, &old, before)) || (rc = add_deltas(d, hour_ns, &old, &new)))
		goto out;
	/* the rows after: old's (in order) and the new ones sorted in among them */
	if (new.n)
		qsort(new.v, new.n, sizeof(*new.v), row_qcmp);
	for (size_t i = 0, j = 0; i < old.n || j < new.n;)
		chain_hour_row(after, j == new.n || (i < old.n && row_cmp(&old.v[i], &new.v[j]) < 0) ? &old.v[i++]
											: &new.v[j++]);
	if ((rc = chain_hour_end(before)) || (rc = chain_hour_end(after)))
		goto out;
	rs_free(&old);
	rs_free(&new);
	return 0;
out:
	chain_commit_free(before->ctx);
	chain_commit_free(after->ctx);
	before->ctx = after->ctx = NULL;
	rs_free(&old);
	rs_free(&new);
	return rc;
}
