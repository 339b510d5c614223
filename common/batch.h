/*
 * batch.h: the unit of delivery from an agent to the aggregator.
 *
 * The same struct batch travels in-process (all-in-one tallyd) and over the
 * network (agent role), and both end in the same ingest function, so the two
 * deployment modes are one code path.
 *
 * A batch carries (agent, seq): seq numbers of one agent increase by one per
 * batch and never repeat, and the aggregator counts a batch whose seq is not
 * above the agent's last committed seq as already ingested (docs/architecture.md rule 7).
 * time_ns is the collection cycle the batch closes.
 *
 * A struct batch owns its three arrays; batch_release() frees them and
 * leaves an empty batch that can be filled again.
 */
#ifndef TALLY_BATCH_H
#define TALLY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sample.h"
#include "sink.h"

struct batch {
	char agent[TALLY_ID_MAX];
	uint64_t seq;
	int64_t time_ns;
	struct sample *samples;
	size_t n_samples, cap_samples;
	struct resource_meta *metas;
	size_t n_metas, cap_metas;
	struct lifecycle_event *events;
	size_t n_events, cap_events;
};

void batch_init(struct batch *b, const char *agent);
void batch_release(struct batch *b);
/* Forget the contents but keep the memory, for the next cycle. */
void batch_clear(struct batch *b);
int batch_add_sample(struct batch *b, const struct sample *s);     /* 0 or -ENOMEM */
int batch_add_meta(struct batch *b, const struct resource_meta *m);
int batch_add_event(struct batch *b, const struct lifecycle_event *ev);

/*
 * batcher: a sink that gathers one collection cycle into one batch per agent
 * and hands each closed batch to deliver(). Sequence numbers come from
 * next_seq(agent) the first time an agent is seen (the ledger's or the
 * spool's last seq + 1) and then count up.
 */
typedef int (*batch_deliver_fn)(void *ctx, struct batch *b);
typedef uint64_t (*batch_seq_fn)(void *ctx, const char *agent);

struct batcher {
	char local_agent[TALLY_ID_MAX];
	struct batcher_slot {
		struct batch b;
		uint64_t next_seq;
		int used;               /* has data this cycle */
	} *slots;
	size_t n_slots;
	batch_deliver_fn deliver;
	batch_seq_fn next_seq;
	void *ctx;
	uint64_t dropped;               /* readings refused for lack of memory */
};

void batcher_init(struct batcher *bt, const char *local_agent, batch_deliver_fn deliver,
		  batch_seq_fn next_seq, void *ctx);
void batcher_release(struct batcher *bt);
/* The sink that feeds this batcher; valid while bt lives. */
struct sink batcher_sink(struct batcher *bt);
/* Close the cycle ending at time_ns: deliver every non-empty batch in agent
 * order. Returns 0 or the first error deliver() returned (the batches that
 * failed keep their seq and contents, to be delivered by the next flush). */
int batcher_flush(struct batcher *bt, int64_t time_ns);

#endif
