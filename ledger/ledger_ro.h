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

struct tally_err;

/* Open path read-only into *db (the caller closes it with sqlite3_close).
 * Returns 0; -ENOENT (no file), -EINVAL (not a ledger), -EPROTO (schema
 * version), -EIO; message in e. *db is NULL on failure. */
int ledger_ro_open(const char *path, sqlite3 **db, struct tally_err *e);

/* The same, read-write, for the one thing billing writes: issued invoices
 * (issue.h). The aggregator may be writing at the same time; SQLite's WAL
 * and the busy timeout keep the two apart. */
int ledger_invoices_open(const char *path, sqlite3 **db, struct tally_err *e);

/* Column i of st's current row as text, "" for NULL (never NULL): how
 * the ledger module reads a text column. */
static inline const char *ledger_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

#endif
