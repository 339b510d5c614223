/*
 * chain_merge.h: an hour's chain digest after a commit's usage is added to
 * it, worked out by the writer from the hour's rows before the commit and
 * the usage the commit adds, instead of hashing the hour again after the
 * merge (the PostgreSQL writer: the server hashing an hour of 100,000 rows
 * after the merge was a fifth of the commit, on its critical path).
 *
 * The sums are the ledger's, as both engines make them: a row that is not
 * there is the first usage added to it; each later one adds its quantity
 * (BIGINT: int64, overflow refused; DOUBLE PRECISION: one IEEE double
 * addition, the server's float8pl), spanned, covered and samples, in the
 * order the commit added them. What the ledger would do otherwise is not
 * guessed here: an integer row given a real quantity (the ledger's CHECK
 * refuses it), a sum past 2^63 - 1 (refused), a double that is not finite,
 * rows not in the chain's order or not of the hour: chain_merge_hour says
 * -ERANGE and the caller hashes the hour as the ledger has it instead.
 */
#ifndef TALLY_LEDGER_CHAIN_MERGE_H
#define TALLY_LEDGER_CHAIN_MERGE_H

#include "chain.h"

struct ledger_usage;

/* The usage a commit adds, in the order it added it. */
struct chain_deltas {
	struct chain_delta {
		int64_t resource_id, meter_id, hour_ns;
		size_t dev_at, dev_len;      /* its device in arena */
		bool is_real;
		int64_t qty;
		double qty_real;
		int64_t spanned_ns, covered_ns, samples;
	} *v;
	size_t n, cap;
	char *arena;
	size_t used, size;
};
/* 0 or -ENOMEM (d unchanged). */
int chain_deltas_add(struct chain_deltas *d, const struct ledger_usage *u);
void chain_deltas_reset(struct chain_deltas *d);
void chain_deltas_free(struct chain_deltas *d);

/* The hour's rows as the ledger has them, one per call into *r, in the
 * chain's order (resource_id, meter_id, device bytewise): 1 a row, 0 no
 * more, < 0 an error (returned as it is). A row's device stays valid until
 * chain_merge_hour returns. */
typedef int (*chain_row_next)(void *ctx, struct chain_row *r);

/* Hashes the hour hour_ns before (its rows from next) and after d's usage
 * of that hour is added to it. 0; -ERANGE when the sum is not one this
 * works out (above); -ENOMEM; or next's error. */
int chain_merge_hour(const struct chain_deltas *d, int64_t hour_ns, chain_row_next next, void *ctx,
		     struct chain_hour *before, struct chain_hour *after);

#endif
