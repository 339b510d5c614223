/*
 * state.c: immutable snapshots of the aggregator's live state, published by
 * the ingest thread and read by the exporters (see state.h).
 *
 * Building copies every series that had a reading since tallyd started,
 * sorts them by (uuid, meter, device, host) and groups them by resource:
 * O(n log n) once per cycle in real time, once per commit (every
 * ledger.commit_every of wall time) in fast-forward, so readers get a
 * consistent, sorted view without ever holding a lock while they read it.
 */
#include "state.h"
#include "fault.h"
#include "ledger.h"
#include "str.h"
#include "tallytime.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct build {
	struct live_series *v;
	const struct ledger_resource **res;  /* the series' resource, parallel to v */
	size_t n, cap;
};

static int collect(void *ctx, const struct agg_series_view *sv)
{
	struct build *b = ctx;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct live_series *v = fault_realloc(b->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		const struct ledger_resource **r = fault_realloc(b->res, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->res = r;
		b->cap = cap;
	}
	struct live_series *s = &b->v[b->n];
	memset(s, 0, sizeof(*s));
	s->res = (uint32_t)b->n;   /* the index of its resource pointer until grouped */
	s->meter = sv->meter;
	s->kind = sv->kind;
	s->ended = sv->ended;
	str_copy(s->device, sv->device, sizeof(s->device));
	str_copy(s->host, sv->agent, sizeof(s->host));
	s->last_ns = sv->last_ns;
	s->total = sv->total;
	s->gauge = sv->gauge;
	s->rate = sv->rate;
	s->has_rate = sv->has_rate;
	s->divergence = sv->divergence;
	b->res[b->n] = sv->res;
	b->n++;
	return 0;
}

/* qsort has no context argument: the resource pointers travel through this
 * thread-local while sorting. */
static _Thread_local const struct ledger_resource *const *sort_res;

static int series_cmp(const void *x, const void *y)
{
	const struct live_series *a = x, *b = y;
	int c = strcmp(sort_res[a->res]->meta.resource, sort_res[b->res]->meta.resource);
	if (c)
		return c;
	if (a->meter != b->meter)
		return a->meter < b->meter ? -1 : 1;
	if ((c = strcmp(a->device, b->device)))
		return c;
	return strcmp(a->host, b->host);
}

void live_free(struct live_state *st)
{
	if (!st)
		return;
	free(st->resources);
	free(st->series);
	free(st->by_meter);
	free(st->cmetrics);
	free(st);
}

struct live_state *live_build(const struct aggregator *a, const struct live_inputs *in)
{
	struct build b = { 0 };
	struct live_state *st = fault_calloc(1, sizeof(*st));
	if (!st)
		goto fail;
	st->tick_ns = in->tick_ns;
	st->built_ns = time_now_ns();
	st->stale_after_ns = in->stale_after_ns;
	st->last_commit_ns = in->last_commit_ns;
	st->no_ledger = !a;
	if (a) {
		agg_get_stats(a, &st->stats);
		st->pending_samples = agg_pending(a);
	}
	st->batcher_dropped = in->batcher_dropped;
	st->cycles = in->cycles;
	st->overruns = in->overruns;
	st->clock_steps = in->clock_steps;
	st->clock_skipped_ns = in->clock_skipped_ns;
	st->clock_ahead_ns = in->clock_ahead_ns;
	st->n_coll = in->n_coll < LIVE_MAX_COLLECTORS ? in->n_coll : LIVE_MAX_COLLECTORS;
	if (st->n_coll)
		memcpy(st->coll, in->coll, st->n_coll * sizeof(st->coll[0]));
	if (in->n_cmetrics) {
		if (!(st->cmetrics = fault_malloc(in->n_cmetrics * sizeof(*st->cmetrics))))
			goto fail;
		memcpy(st->cmetrics, in->cmetrics, in->n_cmetrics * sizeof(*st->cmetrics));
		st->n_cmetrics = in->n_cmetrics;
	}
	if (in->alerts) {
		st->alerting = true;
		struct alert_snap *as = alert_acquire(in->alerts);
		for (size_t i = 0; as && i < as->n; i++) {
			st->alerts_pending += as->v[i].state == ALERT_PENDING;
			st->alerts_firing += as->v[i].state == ALERT_FIRING;
		}
		if (as)
			alert_put(in->alerts, as);
		alert_store_send_stats(in->alerts, &st->send);
	}

	if (a && agg_visit_series(a, collect, &b))
		goto fail;
	sort_res = b.res;
	if (b.n)
		qsort(b.v, b.n, sizeof(*b.v), series_cmp);
	/* group into resources: after the sort, one resource's series are adjacent */
	size_t n_res = 0;
	for (size_t i = 0; i < b.n; i++)
		if (!i || strcmp(b.res[b.v[i].res]->meta.resource, b.res[b.v[i - 1].res]->meta.resource))
			n_res++;
	st->resources = fault_calloc(n_res ? n_res : 1, sizeof(*st->resources));
	st->by_meter = fault_calloc(b.n ? b.n : 1, sizeof(*st->by_meter));
	if (!st->resources || !st->by_meter)
		goto fail;
	size_t r = 0;
	const struct ledger_resource *prev = NULL;
	for (size_t i = 0; i < b.n; i++) {
		const struct ledger_resource *lr = b.res[b.v[i].res];
		int same = prev && !strcmp(lr->meta.resource, prev->meta.resource);
		prev = lr;
		if (same) {
			b.v[i].res = (uint32_t)(r - 1);
			st->resources[r - 1].n_series++;
			continue;
		}
		struct live_resource *lv = &st->resources[r];
		str_copy(lv->uuid, lr->meta.resource, sizeof(lv->uuid));
		str_copy(lv->name, lr->meta.name, sizeof(lv->name));
		str_copy(lv->tenant, lr->meta.tenant, sizeof(lv->tenant));
		str_copy(lv->flavor, lr->meta.flavor, sizeof(lv->flavor));
		str_copy(lv->host, lr->host, sizeof(lv->host));
		lv->first_seen_ns = lr->first_seen_ns;
		lv->last_seen_ns = lr->last_seen_ns;
		lv->stale = in->stale_after_ns > 0 && lr->last_seen_ns < in->tick_ns - in->stale_after_ns;
		if (lv->stale)
			st->stale_resources++;
		lv->first_series = (uint32_t)i;
		lv->n_series = 1;
		b.v[i].res = (uint32_t)r;
		r++;
	}
	st->n_resources = n_res;
	st->series = b.v;
	st->n_series = b.n;
	b.v = NULL;
	/* counting sort by meter keeps the (uuid, device, host) order inside a family */
	uint32_t count[METER_COUNT] = { 0 };
	for (size_t i = 0; i < st->n_series; i++)
		count[st->series[i].meter]++;
	st->meter_start[0] = 0;
	for (int m = 0; m < METER_COUNT; m++)
		st->meter_start[m + 1] = st->meter_start[m] + count[m];
	uint32_t fill[METER_COUNT];
	memcpy(fill, st->meter_start, sizeof(fill));
	for (size_t i = 0; i < st->n_series; i++)
		st->by_meter[fill[st->series[i].meter]++] = (uint32_t)i;
	free(b.res);
	return st;
fail:
	free(b.v);
	free(b.res);
	live_free(st);
	return NULL;
}

static void free_state(struct snapshot *p)
{
	live_free((struct live_state *)p);   /* snap is its first member */
}

int live_store_init(struct live_store *s)
{
	return snapshot_store_init(&s->ss, free_state);
}

void live_store_release(struct live_store *s)
{
	snapshot_store_release(&s->ss);
}

void live_publish(struct live_store *s, struct live_state *st)
{
	snapshot_publish(&s->ss, st ? &st->snap : NULL);
}

struct live_state *live_acquire(struct live_store *s)
{
	return (struct live_state *)snapshot_acquire(&s->ss);
}

void live_put(struct live_store *s, struct live_state *st)
{
	snapshot_put(&s->ss, st ? &st->snap : NULL);
}

long live_find_resource(const struct live_state *st, const char *uuid)
{
	size_t lo = 0, hi = st->n_resources;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->resources[mid].uuid, uuid);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}
