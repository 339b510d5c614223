/*
 * batch.c: growing arrays of samples, metadata and events; the batcher sink.
 */
#include "batch.h"
#include "vec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

void batch_init(struct batch *b, const char *agent)
{
	memset(b, 0, sizeof(*b));
	if (agent)
		str_copy(b->agent, agent, sizeof(b->agent));
}

void batch_release(struct batch *b)
{
	free(b->samples);
	free(b->metas);
	free(b->events);
	b->samples = NULL;
	b->metas = NULL;
	b->events = NULL;
	b->cap_samples = b->cap_metas = b->cap_events = 0;
	batch_clear(b);
}

void batch_clear(struct batch *b)
{
	b->n_samples = b->n_metas = b->n_events = 0;
}

int batch_add_sample(struct batch *b, const struct sample *s)
{
	if (vec_reserve((void **)&b->samples, &b->cap_samples, b->n_samples + 1, sizeof(*s), 64))
		return -ENOMEM;
	b->samples[b->n_samples++] = *s;
	return 0;
}

int batch_add_meta(struct batch *b, const struct resource_meta *m)
{
	if (vec_reserve((void **)&b->metas, &b->cap_metas, b->n_metas + 1, sizeof(*m), 64))
		return -ENOMEM;
	b->metas[b->n_metas++] = *m;
	return 0;
}

int batch_add_event(struct batch *b, const struct lifecycle_event *ev)
{
	if (vec_reserve((void **)&b->events, &b->cap_events, b->n_events + 1, sizeof(*ev), 64))
		return -ENOMEM;
	b->events[b->n_events++] = *ev;
	return 0;
}

int batch_copy(struct batch *dst, const struct batch *src)
{
	int rc = 0;
	batch_init(dst, src->agent);
	dst->seq = src->seq;
	dst->time_ns = src->time_ns;
	dst->clock_step_ns = src->clock_step_ns;
	for (size_t i = 0; !rc && i < src->n_samples; i++)
		rc = batch_add_sample(dst, &src->samples[i]);
	for (size_t i = 0; !rc && i < src->n_metas; i++)
		rc = batch_add_meta(dst, &src->metas[i]);
	for (size_t i = 0; !rc && i < src->n_events; i++)
		rc = batch_add_event(dst, &src->events[i]);
	if (rc)
		batch_release(dst);
	return rc;
}

void batcher_init(struct batcher *bt, const char *local_agent, batch_deliver_fn deliver,
		  batch_seq_fn next_seq, void *ctx)
{
	memset(bt, 0, sizeof(*bt));
	str_copy(bt->local_agent, local_agent, sizeof(bt->local_agent));
	bt->deliver = deliver;
	bt->next_seq = next_seq;
	bt->ctx = ctx;
}

void batcher_release(struct batcher *bt)
{
	for (size_t i = 0; i < bt->n_slots; i++)
		batch_release(&bt->slots[i].b);
	free(bt->slots);
	bt->slots = NULL;
	bt->n_slots = 0;
}

static struct batch *slot_for(struct batcher *bt, const char *agent)
{
	if (!agent)
		agent = bt->local_agent;
	for (size_t i = 0; i < bt->n_slots; i++)
		if (!strcmp(bt->slots[i].b.agent, agent)) {
			bt->slots[i].used = 1;
			return &bt->slots[i].b;
		}
	struct batcher_slot *p = realloc(bt->slots, (bt->n_slots + 1) * sizeof(*p));
	if (!p)
		return NULL;
	bt->slots = p;
	struct batcher_slot *s = &bt->slots[bt->n_slots++];
	memset(s, 0, sizeof(*s));
	batch_init(&s->b, agent);
	s->next_seq = bt->next_seq ? bt->next_seq(bt->ctx, s->b.agent) : 1;
	s->shift_ns = bt->shift0_ns;
	s->used = 1;
	return &s->b;
}

static int put_sample(void *ctx, const char *agent, const struct sample *smp)
{
	struct batcher *bt = ctx;
	struct batch *b = slot_for(bt, agent);
	struct sample s;
	if (bt->shift_ns) {
		s = *smp;
		s.time_ns += bt->shift_ns;
		if (s.origin_ns > 0)
			s.origin_ns += bt->shift_ns;
		smp = &s;
	}
	if (!b || batch_add_sample(b, smp)) {
		bt->dropped++;
		return -ENOMEM;
	}
	return 0;
}

static int put_meta(void *ctx, const char *agent, const struct resource_meta *m)
{
	struct batcher *bt = ctx;
	struct batch *b = slot_for(bt, agent);
	struct resource_meta mm = *m;
	mm.time_ns += bt->shift_ns;
	if (!b || batch_add_meta(b, &mm)) {
		bt->dropped++;
		return -ENOMEM;
	}
	return 0;
}

static int put_event(void *ctx, const char *agent, const struct lifecycle_event *ev)
{
	struct batcher *bt = ctx;
	struct batch *b = slot_for(bt, agent);
	struct lifecycle_event e = *ev;
	e.time_ns += bt->shift_ns;
	if (!b || batch_add_event(b, &e)) {
		bt->dropped++;
		return -ENOMEM;
	}
	return 0;
}

struct sink batcher_sink(struct batcher *bt)
{
	return (struct sink){ .ctx = bt, .sample = put_sample, .meta = put_meta, .event = put_event };
}

static int cmp_slot(const void *a, const void *b)
{
	return strcmp(((const struct batcher_slot *)a)->b.agent, ((const struct batcher_slot *)b)->b.agent);
}

int batcher_flush(struct batcher *bt, int64_t time_ns)
{
	int first_err = 0;

	/* deliver in agent order so a run is reproducible */
	if (bt->n_slots > 1)
		qsort(bt->slots, bt->n_slots, sizeof(*bt->slots), cmp_slot);
	for (size_t i = 0; i < bt->n_slots; i++) {
		struct batcher_slot *s = &bt->slots[i];
		if (!s->used)
			continue;
		s->b.seq = s->next_seq;
		s->b.time_ns = time_ns;
		s->b.clock_step_ns = bt->shift_ns - s->shift_ns;
		int rc = bt->deliver(bt->ctx, &s->b);
		if (rc < 0) {
			if (!first_err)
				first_err = rc;
			continue;
		}
		s->next_seq++;
		s->shift_ns = bt->shift_ns;
		s->used = 0;
		batch_clear(&s->b);
	}
	return first_err;
}
