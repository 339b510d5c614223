/*
 * sqlite_ro.h: inside the SQLite backend (backend.h): how its readers open
 * the ledger file, and the functions of sqlite_reader.c and
 * sqlite_invoices.c that the backend's table in sqlite.c names.
 *
 * The aggregator is the ledger's writer (sqlite.c, on behalf of the
 * aggregator); billing only reads, but for issued invoices (their own two
 * tables). ledger_ro_open() refuses a missing file, a file that is not a
 * tally ledger, and a ledger of another schema version (newer: upgrade
 * tally; older: let tallyd migrate it), so a report never misreads a ledger.
 */
#ifndef TALLY_LEDGER_SQLITE_RO_H
#define TALLY_LEDGER_SQLITE_RO_H

#include <sqlite3.h>

#include "backend.h"

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

/* sqlite_ro.c: ledger_info on SQLite */
int sq_info(const char *path, struct ledger_info *out, struct tally_err *e);

/* sqlite_reader.c: reader.h on SQLite */
int sq_reader_open(const char *path, struct ledger_reader **out, struct tally_err *e);
void sq_reader_close(struct ledger_reader *r);
int sq_data_until(struct ledger_reader *r, int64_t *ns, struct tally_err *e);
int sq_read_meters(struct ledger_reader *r, ledger_meter_fn fn, void *ctx, struct tally_err *e);
int sq_read_agents(struct ledger_reader *r, ledger_agent_row_fn fn, void *ctx, struct tally_err *e);
int sq_read_resources(struct ledger_reader *r, ledger_resource_row_fn fn, void *ctx, struct tally_err *e);
int sq_read_usage(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn, void *ctx,
		  struct tally_err *e);
int sq_read_instances(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn, void *ctx,
		      struct tally_err *e);
int sq_read_events(struct ledger_reader *r, int64_t resource_id, ledger_event_fn fn, void *ctx,
		   struct tally_err *e);

/* sqlite_invoices.c: invoices.h on SQLite */
int sq_invoices_before(const char *path, int64_t to_ns, ledger_invoice_fn fn, void *ctx, struct tally_err *e);
int sq_invoices_list(const char *path, const char *tenant, ledger_invoice_fn fn, void *ctx, struct tally_err *e);
int sq_invoices_find(const char *path, int64_t number, const char *issuer, ledger_invoice_fn fn, void *ctx,
		     struct tally_err *e);
int sq_invoices_begin(const char *path, struct ledger_invoice_tx **out, struct tally_err *e);
int sq_invoices_overlap(struct ledger_invoice_tx *tx, const char *tenant, int64_t from_ns, int64_t to_ns,
			ledger_invoice_fn fn, void *ctx, struct tally_err *e);
int sq_invoices_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
			    struct tally_err *e);
int sq_invoices_insert(struct ledger_invoice_tx *tx, const struct ledger_invoice *inv, size_t doc_len, int64_t *id,
		       struct tally_err *e);
int sq_invoices_adjust(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t for_id, int64_t amount_minor,
		       struct tally_err *e);
int sq_invoices_commit(struct ledger_invoice_tx *tx, struct tally_err *e);
void sq_invoices_abort(struct ledger_invoice_tx *tx);

int sq_credit_notes_credited(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t *subtotal_minor,
			     int64_t *total_minor, bool *cancelled, struct tally_err *e);
int sq_credit_notes_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				struct tally_err *e);
int sq_credit_notes_insert(struct ledger_invoice_tx *tx, const struct ledger_credit_note *cn, size_t doc_len,
			   int64_t *id, struct tally_err *e);
int sq_credit_notes_find(const char *path, int64_t number, const char *issuer, ledger_credit_note_fn fn, void *ctx,
			 struct tally_err *e);
int sq_credit_notes_list(const char *path, const char *tenant, ledger_credit_note_fn fn, void *ctx,
			 struct tally_err *e);

/* sqlite_charges.c: charges.h on SQLite */
int sq_charges_add(const char *path, const struct ledger_charge *c, int64_t *id, struct tally_err *e);
int sq_charges_read(const char *path, const char *tenant, int64_t from_ns, int64_t to_ns, ledger_charge_fn fn,
		    void *ctx, struct tally_err *e);

#endif
