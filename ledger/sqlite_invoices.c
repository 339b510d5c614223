/*
 * sqlite_invoices.c: the issued-invoice store on SQLite (invoices.h,
 * through backend.h): reading
 * issued invoices, and appending new ones and their adjustments in one
 * transaction of their own.
 */
#include "backend.h"
#include "fault.h"
#include "err.h"
#include "sqlite_ro.h"
#include "str.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct sq_invoice_tx {
	struct ledger_invoice_tx base;
	sqlite3 *db;
	char path[4096];
};

/* Run sql (bound by bind) on a read-only connection to path and hand each
 * row, decoded by row, to fn. */
typedef void (*bind_fn)(sqlite3_stmt *st, const void *args);
typedef void (*row_fn)(sqlite3_stmt *st, struct ledger_invoice *inv);

static int read_rows(const char *path, const char *sql, bind_fn bind, const void *args, row_fn row,
		     ledger_invoice_fn fn, void *ctx, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ledger_ro_open(path, &db, e)))
		return rc;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read invoices: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	bind(st, args);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_invoice inv = { .issuer = "", .tenant = "", .sha256 = "", .currency = "",
					      .plan_text = "", .document = "", .total = "" };
		row(st, &inv);
		if ((rc = fn(ctx, &inv)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "%s: cannot read invoices: %s", path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* SQL: the invoice whose id is col has no credit note that cancels it
 * (schemas/migrations/008-credit-notes.sql): a cancelled invoice neither
 * holds its period nor carries adjustments. */
#define NOT_CANCELLED(col) "NOT EXISTS (SELECT 1 FROM credit_notes c WHERE c.invoice_id = " col " AND c.cancels = 1)"

static void bind_before(sqlite3_stmt *st, const void *args)
{
	sqlite3_bind_int64(st, 1, *(const int64_t *)args);
}

static void row_before(sqlite3_stmt *st, struct ledger_invoice *inv)
{
	inv->id = sqlite3_column_int64(st, 0);
	inv->issuer = ledger_col_text(st, 1);
	inv->number = sqlite3_column_int64(st, 2);
	inv->from_ns = sqlite3_column_int64(st, 3);
	inv->to_ns = sqlite3_column_int64(st, 4);
	inv->base_minor = sqlite3_column_int64(st, 5);
	inv->plan_text = ledger_col_text(st, 6);
	inv->tenant = ledger_col_text(st, 7);
	inv->adjusted_minor = sqlite3_column_int64(st, 8);
}

int sq_invoices_before(const char *path, int64_t to_ns, ledger_invoice_fn fn, void *ctx,
			   struct tally_err *e)
{
	static const char sql[] =
		"SELECT i.id, i.issuer, i.number, i.from_ns, i.to_ns, i.base_minor, i.plan_text, i.tenant,"
		" (SELECT coalesce(sum(a.amount_minor), 0) FROM invoice_adjustments a WHERE a.for_id = i.id"
		"  AND " NOT_CANCELLED("a.invoice_id") ")"
		" FROM invoices i WHERE i.to_ns <= ?1 AND " NOT_CANCELLED("i.id")
		" ORDER BY i.from_ns, i.to_ns, i.plan_text, i.id";
	return read_rows(path, sql, bind_before, &to_ns, row_before, fn, ctx, e);
}

static void bind_list(sqlite3_stmt *st, const void *args)
{
	if (args)
		sqlite3_bind_text(st, 1, args, -1, SQLITE_STATIC);
}

static void row_list(sqlite3_stmt *st, struct ledger_invoice *inv)
{
	inv->id = sqlite3_column_int64(st, 0);
	inv->number = sqlite3_column_int64(st, 1);
	inv->from_ns = sqlite3_column_int64(st, 2);
	inv->to_ns = sqlite3_column_int64(st, 3);
	inv->issued_ns = sqlite3_column_int64(st, 4);
	inv->issuer = ledger_col_text(st, 5);
	inv->tenant = ledger_col_text(st, 6);
	inv->sha256 = ledger_col_text(st, 7);
	inv->currency = ledger_col_text(st, 8);
	inv->total = ledger_col_text(st, 9);
}

int sq_invoices_list(const char *path, const char *tenant, ledger_invoice_fn fn, void *ctx,
			 struct tally_err *e)
{
	static const char sql[] =
		"SELECT id, number, from_ns, to_ns, issued_ns, issuer, tenant, sha256, currency,"
		" json_extract(document, '$.invoices[0].total') FROM invoices"
		" WHERE ?1 IS NULL OR tenant = ?1 ORDER BY issuer, number";
	return read_rows(path, sql, bind_list, tenant, row_list, fn, ctx, e);
}

struct find_args {
	int64_t number;
	const char *issuer;
};

static void bind_find(sqlite3_stmt *st, const void *args)
{
	const struct find_args *a = args;
	sqlite3_bind_int64(st, 1, a->number);
	sqlite3_bind_text(st, 2, a->issuer, -1, SQLITE_STATIC);
}

static void row_find(sqlite3_stmt *st, struct ledger_invoice *inv)
{
	inv->id = sqlite3_column_int64(st, 0);
	inv->number = sqlite3_column_int64(st, 1);
	inv->from_ns = sqlite3_column_int64(st, 2);
	inv->to_ns = sqlite3_column_int64(st, 3);
	inv->issued_ns = sqlite3_column_int64(st, 4);
	inv->issuer = ledger_col_text(st, 5);
	inv->tenant = ledger_col_text(st, 6);
	inv->sha256 = ledger_col_text(st, 7);
	inv->plan_text = ledger_col_text(st, 8);
	inv->document = ledger_col_text(st, 9);
}

int sq_invoices_find(const char *path, int64_t number, const char *issuer, ledger_invoice_fn fn,
			 void *ctx, struct tally_err *e)
{
	static const char sql[] =
		"SELECT id, number, from_ns, to_ns, issued_ns, issuer, tenant, sha256, plan_text,"
		" document FROM invoices WHERE number = ?1 AND (?2 = '' OR issuer = ?2) LIMIT 2";
	struct find_args a = { .number = number, .issuer = issuer ? issuer : "" };
	return read_rows(path, sql, bind_find, &a, row_find, fn, ctx, e);
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int sq_invoices_begin(const char *path, struct ledger_invoice_tx **out, struct tally_err *e)
{
	struct sq_invoice_tx *tx = fault_calloc(1, sizeof(*tx));
	int rc;

	*out = NULL;
	if (!tx)
		return err_set(e, -ENOMEM, "out of memory");
	tx->base.be = &ledger_sqlite_backend;
	str_copy(tx->path, path, sizeof(tx->path));
	if ((rc = ledger_invoices_open(path, &tx->db, e))) {
		free(tx);
		return rc;
	}
	sqlite3_busy_timeout(tx->db, 10000);
	if (exec(tx->db, "BEGIN IMMEDIATE")) {
		rc = err_set(e, -EBUSY, "%s: cannot start a transaction: %s", path, sqlite3_errmsg(tx->db));
		sqlite3_close(tx->db);
		free(tx);
		return rc;
	}
	*out = &tx->base;
	return 0;
}

int sq_invoices_overlap(struct ledger_invoice_tx *txb, const char *tenant, int64_t from_ns, int64_t to_ns,
			    ledger_invoice_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	sqlite3_stmt *st;
	int rc = 0;
	if (sqlite3_prepare_v2(tx->db, "SELECT issuer, number, from_ns, to_ns, issued_ns FROM invoices"
				       " WHERE tenant = ?1 AND from_ns < ?3 AND to_ns > ?2 AND " NOT_CANCELLED("invoices.id")
				       " ORDER BY from_ns LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot read invoices: %s", sqlite3_errmsg(tx->db));
	sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from_ns);
	sqlite3_bind_int64(st, 3, to_ns);
	if (sqlite3_step(st) == SQLITE_ROW) {
		struct ledger_invoice inv = { .issuer = ledger_col_text(st, 0), .number = sqlite3_column_int64(st, 1),
					      .from_ns = sqlite3_column_int64(st, 2),
					      .to_ns = sqlite3_column_int64(st, 3),
					      .issued_ns = sqlite3_column_int64(st, 4), .tenant = tenant,
					      .sha256 = "", .currency = "", .plan_text = "", .document = "",
					      .total = "" };
		rc = fn(ctx, &inv);
	}
	sqlite3_finalize(st);
	return rc;
}

/* The next number of issuer's series by sql (what: for messages). */
static int next_number(struct sq_invoice_tx *tx, const char *sql, const char *issuer, const char *what,
		       int64_t *number, struct tally_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(tx->db, sql, -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot number the %s: %s", what, sqlite3_errmsg(tx->db));
	sqlite3_bind_text(st, 1, issuer, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*number = sqlite3_column_int64(st, 0);
	else
		rc = err_set(e, -EIO, "cannot number the %s: %s", what, sqlite3_errmsg(tx->db));
	sqlite3_finalize(st);
	return rc;
}

int sq_invoices_next_number(struct ledger_invoice_tx *txb, const char *issuer, int64_t *number,
				struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	return next_number(tx, "SELECT coalesce(max(number), 0) + 1 FROM invoices WHERE issuer = ?1", issuer,
			   "invoice", number, e);
}

int sq_invoices_insert(struct ledger_invoice_tx *txb, const struct ledger_invoice *inv, size_t doc_len,
			   int64_t *id, struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(tx->db, "INSERT INTO invoices (issuer, number, tenant, from_ns, to_ns, issued_ns,"
				       " currency, base_minor, subtotal_minor, total_minor, plan_text, document, sha256)"
				       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
			       -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot store the invoice: %s", sqlite3_errmsg(tx->db));
	sqlite3_bind_text(st, 1, inv->issuer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, inv->number);
	sqlite3_bind_text(st, 3, inv->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, inv->from_ns);
	sqlite3_bind_int64(st, 5, inv->to_ns);
	sqlite3_bind_int64(st, 6, inv->issued_ns);
	sqlite3_bind_text(st, 7, inv->currency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, inv->base_minor);
	sqlite3_bind_int64(st, 9, inv->subtotal_minor);
	sqlite3_bind_int64(st, 10, inv->total_minor);
	sqlite3_bind_text(st, 11, inv->plan_text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, inv->document, (int)doc_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, inv->sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = err_set(e, sqlite3_errcode(tx->db) == SQLITE_FULL ? -ENOSPC : -EIO,
			     "cannot store the invoice: %s", sqlite3_errmsg(tx->db));
	else
		*id = sqlite3_last_insert_rowid(tx->db);
	sqlite3_finalize(st);
	return rc;
}

int sq_invoices_adjust(struct ledger_invoice_tx *txb, int64_t invoice_id, int64_t for_id,
			   int64_t amount_minor, struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(tx->db, "INSERT INTO invoice_adjustments (invoice_id, for_id, amount_minor)"
				       " VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot store the invoice: %s", sqlite3_errmsg(tx->db));
	sqlite3_bind_int64(st, 1, invoice_id);
	sqlite3_bind_int64(st, 2, for_id);
	sqlite3_bind_int64(st, 3, amount_minor);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = err_set(e, -EIO, "cannot store the adjustment: %s", sqlite3_errmsg(tx->db));
	sqlite3_finalize(st);
	return rc;
}

int sq_invoices_commit(struct ledger_invoice_tx *txb, struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	int rc = 0;
	if (exec(tx->db, "COMMIT")) {
		rc = err_set(e, -EIO, "%s: cannot commit the invoices: %s", tx->path,
			     sqlite3_errmsg(tx->db));
		exec(tx->db, "ROLLBACK");
	}
	sqlite3_close(tx->db);
	free(tx);
	return rc;
}

void sq_invoices_abort(struct ledger_invoice_tx *txb)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	if (!tx)
		return;
	exec(tx->db, "ROLLBACK");
	sqlite3_close(tx->db);
	free(tx);
}

/* ---- credit notes (schemas/migrations/008-credit-notes.sql) ---- */

int sq_credit_notes_credited(struct ledger_invoice_tx *txb, int64_t invoice_id, int64_t *subtotal_minor,
				 int64_t *total_minor, bool *cancelled, struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(tx->db, "SELECT coalesce(sum(subtotal_minor), 0), coalesce(sum(total_minor), 0),"
				       " coalesce(max(cancels), 0) FROM credit_notes WHERE invoice_id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot read credit notes: %s", sqlite3_errmsg(tx->db));
	sqlite3_bind_int64(st, 1, invoice_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*subtotal_minor = sqlite3_column_int64(st, 0);
		*total_minor = sqlite3_column_int64(st, 1);
		*cancelled = sqlite3_column_int64(st, 2) != 0;
	} else {
		rc = err_set(e, -EIO, "cannot read credit notes: %s", sqlite3_errmsg(tx->db));
	}
	sqlite3_finalize(st);
	return rc;
}

int sq_credit_notes_next_number(struct ledger_invoice_tx *txb, const char *issuer, int64_t *number,
				    struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	return next_number(tx, "SELECT coalesce(max(number), 0) + 1 FROM credit_notes WHERE issuer = ?1", issuer,
			   "credit note", number, e);
}

int sq_credit_notes_insert(struct ledger_invoice_tx *txb, const struct ledger_credit_note *cn, size_t doc_len,
			       int64_t *id, struct tally_err *e)
{
	struct sq_invoice_tx *tx = (struct sq_invoice_tx *)txb;
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(tx->db, "INSERT INTO credit_notes (issuer, number, invoice_id, tenant, issued_ns,"
				       " currency, cancels, subtotal_minor, total_minor, reason, document, sha256)"
				       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
			       -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot store the credit note: %s", sqlite3_errmsg(tx->db));
	sqlite3_bind_text(st, 1, cn->issuer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cn->number);
	sqlite3_bind_int64(st, 3, cn->invoice_id);
	sqlite3_bind_text(st, 4, cn->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, cn->issued_ns);
	sqlite3_bind_text(st, 6, cn->currency, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, cn->cancels ? 1 : 0);
	sqlite3_bind_int64(st, 8, cn->subtotal_minor);
	sqlite3_bind_int64(st, 9, cn->total_minor);
	sqlite3_bind_text(st, 10, cn->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, cn->document, (int)doc_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, cn->sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = err_set(e, sqlite3_errcode(tx->db) == SQLITE_FULL ? -ENOSPC : -EIO,
			     "cannot store the credit note: %s", sqlite3_errmsg(tx->db));
	else
		*id = sqlite3_last_insert_rowid(tx->db);
	sqlite3_finalize(st);
	return rc;
}

/* Credit notes by the query sql (bound: ?1 number or tenant, ?2 issuer). */
static int read_notes(const char *path, const char *sql, int64_t number, const char *text,
		      ledger_credit_note_fn fn, void *ctx, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ledger_ro_open(path, &db, e)))
		return rc;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read credit notes: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	if (number > 0) {
		sqlite3_bind_int64(st, 1, number);
		sqlite3_bind_text(st, 2, text ? text : "", -1, SQLITE_STATIC);
	} else if (text) {
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_credit_note cn = {
			.id = sqlite3_column_int64(st, 0), .issuer = ledger_col_text(st, 1),
			.number = sqlite3_column_int64(st, 2), .invoice_id = sqlite3_column_int64(st, 3),
			.tenant = ledger_col_text(st, 4), .issued_ns = sqlite3_column_int64(st, 5),
			.currency = ledger_col_text(st, 6), .cancels = sqlite3_column_int64(st, 7) != 0,
			.subtotal_minor = sqlite3_column_int64(st, 8), .total_minor = sqlite3_column_int64(st, 9),
			.reason = ledger_col_text(st, 10), .document = ledger_col_text(st, 11),
			.sha256 = ledger_col_text(st, 12), .invoice_number = sqlite3_column_int64(st, 13),
		};
		if ((rc = fn(ctx, &cn)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "%s: cannot read credit notes: %s", path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

#define NOTE_COLS "c.id, c.issuer, c.number, c.invoice_id, c.tenant, c.issued_ns, c.currency, c.cancels," \
		  " c.subtotal_minor, c.total_minor, c.reason, c.document, c.sha256, i.number"

int sq_credit_notes_find(const char *path, int64_t number, const char *issuer, ledger_credit_note_fn fn,
			     void *ctx, struct tally_err *e)
{
	return read_notes(path, "SELECT " NOTE_COLS " FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id"
			  " WHERE c.number = ?1 AND (?2 = '' OR c.issuer = ?2) LIMIT 2", number, issuer ? issuer : "",
			  fn, ctx, e);
}

int sq_credit_notes_list(const char *path, const char *tenant, ledger_credit_note_fn fn, void *ctx,
			     struct tally_err *e)
{
	return read_notes(path, "SELECT " NOTE_COLS " FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id"
			  " WHERE ?1 IS NULL OR c.tenant = ?1 ORDER BY c.issuer, c.number", 0, tenant, fn, ctx, e);
}
