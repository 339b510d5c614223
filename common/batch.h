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
 * clock_step_ns (>= 0) says that the agent's data time jumped forward by
 * that much since its previous batch without that time passing: the wall
 * clock stepped forward and data time followed (collectors/scheduler.h).
 * Every earlier stamp of the agent is that much behind the ones in this
 * batch; the aggregator moves its series' last readings forward by it, so
 * the first reading after the step counts only the time that passed.
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
	int64_t clock_step_ns;           /* data time skipped since the previous batch */
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
/* dst (not initialised) becomes a copy of src, with memory of its own: 0,
 * or -ENOMEM with dst empty (released). */
int batch_copy(struct batch *dst, const struct batch *src);

/*
 * batcher: a sink that gathers one collection cycle into one batch per agent
 * and hands each closed batch to deliver(). Sequence numbers come from
 * next_seq(agent) the first time an agent is seen (the ledger's or the
 * spool's last seq + 1) and then count up.
 *
 * Time: collectors stamp in collection time; the batcher adds shift_ns to
 * every stamp it is given (a reading's time and origin, an event's time, a
 * metadata change's time), making them data time. When shift_ns has grown
 * since an agent's previous batch, its next batch carries the growth in
 * clock_step_ns. shift0_ns is the shift of this process's start (an
 * agent's first batch carries what shift_ns grew since then). The
 * scheduler sets both; they stay 0 in fast-forward.
 */
typedef int (*batch_deliver_fn)(void *ctx, struct batch *b);
typedef uint64_t (*batch_seq_fn)(void *ctx, const char *agent);

struct batcher {
	char local_agent[TALLY_ID_MAX];
	struct batcher_slot {
		struct batch b;
		uint64_t next_seq;
		int used;               /* has data this cycle */
		int64_t shift_ns;       /* the batcher's shift_ns at its last delivered batch */
	} *slots;
	size_t n_slots;
	batch_deliver_fn deliver;
	batch_seq_fn next_seq;
	void *ctx;
	uint64_t dropped;               /* readings refused for lack of memory */
	int64_t shift_ns, shift0_ns;    /* data time - collection time: now, at the start */
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
