/*
 * ledger_ro.h: how billing opens the usage ledger to read it.
 *
 * The aggregator is the ledger's writer (ledger/ledger.c, on behalf of the aggregator); billing only
 * reads, but for issued invoices and credit notes (their own tables). ledger_ro_open() refuses a missing file, a file that is not a tally
 * ledger, and a ledger of another schema version (newer: upgrade tally;
 * older: let tallyd migrate it), so a report never misreads a ledger.
 */
#ifndef TALLY_LEDGER_RO_H
#define TALLY_LEDGER_RO_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

struct tally_err;

/* Open path read-only into *db (the caller closes it with sqlite3_close).
 * Returns 0; -ENOENT (no file), -EINVAL (not a ledger), -EPROTO (schema
 * version), -EIO; message in e. *db is NULL on failure. */
int ledger_ro_open(const char *path, sqlite3 **db, struct tally_err *e);

/* The same, read-write, for the one thing billing writes: issued invoices
 * (issue.h). The aggregator may be writing at the same time; SQLite's WAL
 * and the busy timeout keep the two apart. */
int ledger_invoices_open(const char *path, sqlite3 **db, struct tally_err *e);

/* What a ledger says of itself (`tally ledger info`): its schema, which
 * tally made, upgraded and last wrote it (schemas/migrations/006-meta.sql;
 * "" where the ledger does not say), the span of its usage, its size. */
struct ledger_info {
	int schema;
	char created_by[160], upgraded_by[160], written_by[160];
	int64_t written_ns;          /* 0: not recorded */
	int64_t first_hour_ns, last_hour_ns; /* of the usage rows; has_usage false: none */
	bool has_usage;
	int64_t bytes;               /* the file, without its WAL */
};

/* Fill *out from the ledger at path (opened read-only, as ledger_ro_open).
 * Returns 0 or ledger_ro_open's errors; message in e. */
int ledger_info(const char *path, struct ledger_info *out, struct tally_err *e);

/* Column i of st's current row as text, "" for NULL (never NULL): how
 * the ledger module reads a text column. */
static inline const char *ledger_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

#endif
