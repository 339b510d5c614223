/*
 * chain.h: the hash chain over committed usage (schemas/migrations/
 * 005-chain.sql defines the bytes hashed), written once for every backend.
 *
 * The byte strings are defined without reference to an engine: a backend
 * hands its rows over as struct chain_row and its chain records as struct
 * chain_link, and gets the same digests, hashes and verdicts as any other.
 * What stays in a backend is only how it reads and writes its tables:
 * SQLite checks an hour when a transaction first writes to it, PostgreSQL
 * checks all of a commit's hours at once before it writes them.
 *
 * chain_verify() is `tally ledger verify` on any backend: it walks the
 * chain and the usage of one read-only snapshot (backend.h, snap_*).
 */
#ifndef TALLY_LEDGER_CHAIN_H
#define TALLY_LEDGER_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reader.h"

struct tally_err;
struct ledger_verify;
struct ledger_snap;

#define CHAIN_HASH_LEN 32            /* SHA-256 */
#define CHAIN_VERSION 5              /* the schema version that brought the chain */

/* One usage row as the chain hashes it. device is device_len bytes (not
 * necessarily NUL-terminated); qty.text is used for LEDGER_QTY_OTHER only,
 * qty_text_len bytes of it. */
struct chain_row {
	int64_t resource_id, meter_id;
	const char *device;
	size_t device_len;
	int64_t hour_ns;
	struct ledger_qty qty;
	size_t qty_text_len;
	int64_t spanned_ns, covered_ns, samples;
};

/* One hour being hashed: chain_hour_begin, chain_hour_row per row in the
 * chain's order (resource_id, meter_id, device bytewise), chain_hour_end
 * (digest set, ctx freed). begin and end return 0 or -ENOMEM. */
struct chain_hour {
	int64_t hour_ns;
	int64_t rows;
	void *ctx;                   /* the running digest (EVP_MD_CTX), NULL when done */
	unsigned char digest[CHAIN_HASH_LEN];
};
int chain_hour_begin(struct chain_hour *h, int64_t hour_ns);
void chain_hour_row(struct chain_hour *h, const struct chain_row *r);
int chain_hour_end(struct chain_hour *h);
/* The digest of an hour without rows. */
int chain_hour_empty(int64_t hour_ns, unsigned char digest[CHAIN_HASH_LEN]);

/* A commit's hash: chain_commit_begin, chain_commit_hour per hour in
 * ascending order, chain_commit_end. NULL / -ENOMEM when out of memory. */
void *chain_commit_begin(const unsigned char prev[CHAIN_HASH_LEN], int64_t id, int64_t time_ns,
			 int64_t upgrade, int64_t hours);
void chain_commit_hour(void *c, int64_t hour_ns, int64_t rows, int64_t altered,
		       const unsigned char digest[CHAIN_HASH_LEN]);
int chain_commit_end(void *c, unsigned char out[CHAIN_HASH_LEN]);
void chain_commit_free(void *c);

/* Many hours hashed at once (a scan of all usage in primary-key order
 * meets each hour's rows in the chain's order, interleaved): add every row
 * with chain_hours_add (a ledger_row_fn: returns 0 or -ENOMEM), then
 * chain_hours_finish sorts the hours by hour_ns into v[0..n). */
struct chain_hours {
	struct chain_hour *v;
	size_t n, cap;
	uint32_t *slot;              /* index + 1, 0 = empty; open addressing */
	size_t mask;
	int64_t rows;                /* rows added */
};
int chain_hours_add(void *hours, const struct chain_row *r);
int chain_hours_finish(struct chain_hours *s);
void chain_hours_free(struct chain_hours *s);

/* The hours a transaction wrote usage to, sorted and unique, each with
 * what the hour held before it (chain_hours.altered). */
struct chain_touched {
	struct touched {
		int64_t hour_ns;
		int64_t altered;
	} *v;
	size_t n, cap;
};
/* *at: where hour_ns is or goes; returns true when it is there. */
bool chain_touched_find(const struct chain_touched *t, int64_t hour_ns, size_t *at);
/* Insert hour_ns at at (from chain_touched_find). 0 or -ENOMEM. */
int chain_touched_insert(struct chain_touched *t, size_t at, int64_t hour_ns, int64_t altered);

/* One row of the chain as stored: a commit and one of its hours (has_hour
 * false: a commit without hours), in the order (commit id, hour_ns). */
struct chain_link {
	int64_t id, time_ns, upgrade, hours;
	unsigned char hash[CHAIN_HASH_LEN];   /* zeros when the stored one is not 32 bytes */
	bool has_hour;
	int64_t hour_ns, rows, altered;
	unsigned char digest[CHAIN_HASH_LEN];
};
typedef int (*ledger_link_fn)(void *ctx, const struct chain_link *k);
typedef int (*ledger_row_fn)(void *ctx, const struct chain_row *r);

/* `tally ledger verify` on the snapshot s (backend.h); fills out as
 * ledger.h says. Returns 0 when it ran, or the snapshot's error. */
int chain_verify(struct ledger_snap *s, const char *name, struct ledger_verify *out, struct tally_err *e);

/* "2026-11-02T08:00:00Z": an instant to the second, for messages. */
char *chain_iso_s(int64_t t_ns, char *buf, size_t len);

#endif
