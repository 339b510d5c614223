/*
 * sqlite_charges.c: one-off charges and credits on SQLite (charges.h,
 * through backend.h).
 */
#include "backend.h"
#include "err.h"
#include "sqlite_ro.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>

int sq_charges_add(const char *path, const struct ledger_charge *c, int64_t *id, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ledger_invoices_open(path, &db, e)))
		return rc;
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = err_set(e, -EBUSY, "%s: cannot start a transaction: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	/* never into a period already invoiced (an invoice a credit note
	 * cancels does not hold its period) */
	if (sqlite3_prepare_v2(db, "SELECT issuer, number FROM invoices i WHERE tenant = ?1 AND from_ns <= ?2"
				   " AND to_ns > ?2 AND NOT EXISTS (SELECT 1 FROM credit_notes c WHERE c.invoice_id = i.id"
				   " AND c.cancels = 1) LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read invoices: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	sqlite3_bind_text(st, 1, c->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, c->from_ns);
	if (sqlite3_step(st) == SQLITE_ROW) {
		rc = err_set(e, -EEXIST, "tenant '%s' is invoiced for that period already (%s #%lld): issued invoices"
			     " never change; add the charge to a later period", c->tenant,
			     ledger_col_text(st, 0), (long long)sqlite3_column_int64(st, 1));
		goto rollback;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* a tenant the ledger knows: one no resource has had gets no invoice
	 * (a misspelt name), and its charge would stop the period's run
	 * (docs/invoice.md); one with charges already may take one back */
	if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM resources WHERE tenant = ?1) OR EXISTS (SELECT 1"
				   " FROM resource_attrs WHERE tenant = ?1) OR EXISTS (SELECT 1 FROM charges WHERE"
				   " tenant = ?1)", -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read resources: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	sqlite3_bind_text(st, 1, c->tenant, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = err_set(e, -EIO, "%s: cannot read resources: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	if (!sqlite3_column_int(st, 0)) {
		rc = err_set(e, -ESRCH, "tenant '%s' is not in the ledger: no resource has had it, so no invoice"
			     " would carry the charge (is the name right?)", c->tenant);
		goto rollback;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO charges (tenant, from_ns, to_ns, description, amount, currency,"
				   " added_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot store the charge: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	sqlite3_bind_text(st, 1, c->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, c->from_ns);
	sqlite3_bind_int64(st, 3, c->to_ns);
	sqlite3_bind_text(st, 4, c->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->amount, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, c->currency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, c->added_ns);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = err_set(e, sqlite3_errcode(db) == SQLITE_FULL ? -ENOSPC : -EIO, "%s: cannot store the charge: %s",
			     path, sqlite3_errmsg(db));
		goto rollback;
	}
	*id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot commit the charge: %s", path, sqlite3_errmsg(db));
		goto rollback;
	}
	rc = 0;
	goto out;
rollback:
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int sq_charges_read(const char *path, const char *tenant, int64_t from_ns, int64_t to_ns, ledger_charge_fn fn,
			void *ctx, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = ledger_ro_open(path, &db, e)))
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT id, tenant, from_ns, to_ns, description, amount, currency, added_ns"
				   " FROM charges WHERE (?1 IS NULL OR tenant = ?1) AND from_ns >= ?2 AND from_ns < ?3"
				   " ORDER BY tenant, id", -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read charges: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	if (tenant)
		sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, from_ns);
	sqlite3_bind_int64(st, 3, to_ns);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_charge c = {
			.id = sqlite3_column_int64(st, 0), .tenant = ledger_col_text(st, 1),
			.from_ns = sqlite3_column_int64(st, 2), .to_ns = sqlite3_column_int64(st, 3),
			.description = ledger_col_text(st, 4), .amount = ledger_col_text(st, 5),
			.currency = ledger_col_text(st, 6), .added_ns = sqlite3_column_int64(st, 7),
		};
		if ((rc = fn(ctx, &c)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "%s: cannot read charges: %s", path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
