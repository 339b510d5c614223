/*
 * agents.h: `tally agents`, what the ledger says of the agents that ship
 * batches to it (docs/transport.md): for each, when the aggregator last
 * took or acknowledged a request of it (its last contact), the last seq it
 * committed and that batch's data time, how far behind now that is (the
 * lag), and its spool's depth as the agent last reported it (the
 * Tally-Spool header, schemas/batch-wire.md).
 *
 * Read-only, beside a running tallyd (ledger/reader.h). The result owns
 * its rows; agents_result_release() frees them.
 */
#ifndef TALLY_AGENTS_H
#define TALLY_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tally_err;

struct agents_row {
	char agent[64];
	uint64_t last_seq;
	int64_t batches;
	int64_t data_until_ns;       /* data time of the last committed batch, 0: none */
	int64_t contact_ns;          /* 0: none recorded (an all-in-one tallyd's own batches) */
	int64_t spool_batches, spool_bytes;   /* -1: not reported */
	bool has_spool;
	uint8_t spool_id[16];
	uint64_t spool_first_seq;
};

struct agents_result {
	struct agents_row *rows;
	size_t n, cap;
};

enum agents_format { AGENTS_TEXT, AGENTS_JSON };

/* Returns 0; -ENOENT, -EINVAL, -EPROTO, -EIO, -ENOMEM with a message in e. */
int agents_query(const char *ledger, struct agents_result *out, struct tally_err *e);
void agents_result_release(struct agents_result *r);

/* Print r as of now_ns (the lag is now - data_until). Returns 0 or -EIO
 * (a write failed) / -ENOMEM. */
int agents_render(FILE *f, const struct agents_result *r, int64_t now_ns, enum agents_format fmt);

#endif
