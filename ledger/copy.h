/*
 * copy.h: `tally ledger copy`: a whole ledger into a new, empty one, on the
 * same engine or the other (SQLite file <-> PostgreSQL), verified.
 *
 * Every table of tables.h is read from one snapshot of the source and
 * written into the target in one transaction, ids and hash chain as they
 * are (the target's `tally ledger verify` then checks the same chain).
 * Before the target commits, the usage of both is summed per (resource,
 * meter, hour), resources and meters by name and every quantity exactly
 * (a count x 1000, a gauge's binary64 x 1000 rounded once half to even, as
 * billing takes it; with the seconds covered and spanned and the samples),
 * read back from the target inside its transaction: when any total
 * differs, nothing is committed. A target that is not empty is refused
 * (-EEXIST), so a copy never merges into or overwrites a ledger; a source
 * that is not at this tally's schema version is refused as readers refuse
 * it (let tallyd migrate it first). A running tallyd may go on writing
 * the source: the copy is of one snapshot of it.
 */
#ifndef TALLY_LEDGER_COPY_H
#define TALLY_LEDGER_COPY_H

#include <stdint.h>

struct tally_err;

struct ledger_copy_result {
	int64_t rows;                /* rows copied, all tables */
	int64_t usage_rows;
	int64_t totals;              /* (resource, meter, hour) totals compared, all equal */
	int tables;
	int64_t ns;                  /* wall time */
};

/* from, to: ledger locations (ledger.h). Returns 0 (copied and verified),
 * -EEXIST (the target is not empty), -EINVAL (a location; a source that
 * holds what tally never writes), -EPROTO, -ENOENT, -EACCES, -ECONNREFUSED
 * (as ledger_open and ledger_reader_open), -EIO (totals differ: nothing
 * committed; or an engine's error); message in e. */
int ledger_copy(const char *from, const char *to, struct ledger_copy_result *out, struct tally_err *e);

#endif
