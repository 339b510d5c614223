/*
 * pg_invoices.c: the issued-invoice store on PostgreSQL (invoices.h,
 * through backend.h), as sqlite_invoices.c: reading issued invoices, and
 * appending new ones and their adjustments in one transaction of their own.
 * Issuing locks the invoices table against other issuers (SHARE ROW
 * EXCLUSIVE: readers go on, a second `tally invoice --issue` waits) so
 * numbers stay sequential; the aggregators' commits never touch it.
 * Credit notes are issued the same way; a charge takes the same lock so
 * that no invoice is issued for its period while it is added.
 */
#include "backend.h"
#include "err.h"
#include "fault.h"
#include "pg_conn.h"
#include "str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pg_invoice_tx {
	struct ledger_invoice_tx base;
	struct pgc pc;
};

#define TX(t) ((struct pg_invoice_tx *)(t))

/* An invoice no credit note cancels (sqlite_invoices.c's words). */
#define NOT_CANCELLED(col) "NOT EXISTS (SELECT 1 FROM credit_notes c WHERE c.invoice_id = " col " AND c.cancels = 1)"

typedef void (*inv_row_fn)(const PGresult *r, int i, struct ledger_invoice *inv);

struct reading {
	inv_row_fn row;
	ledger_invoice_fn fn;
	void *ctx;
};

static int each_invoice(void *ctx, const PGresult *r, int i)
{
	struct reading *x = ctx;
	struct ledger_invoice inv = { .issuer = "", .tenant = "", .sha256 = "", .currency = "", .plan_text = "",
				      .document = "", .total = "" };
	x->row(r, i, &inv);
	return x->fn(x->ctx, &inv);
}

/* Run sql (n parameters) on a read-only connection to location and hand
 * each row, decoded by row, to fn. */
static int read_rows(const char *location, const char *sql, int n, const char *const *p, inv_row_fn row,
		     ledger_invoice_fn fn, void *ctx, struct tally_err *e)
{
	struct pgc pc;
	struct reading x = { row, fn, ctx };
	int rc;
	if ((rc = pgc_connect(&pc, location, "tally", e)))
		return rc;
	if (!(rc = pg_check_readable(&pc, e)) &&
	    !(rc = pgc_exec(&pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot begin", e)))
		rc = pgc_each(&pc, sql, n, p, each_invoice, &x, "cannot read invoices", e);
	pgc_close(&pc);
	return rc;
}

static void row_before(const PGresult *r, int i, struct ledger_invoice *inv)
{
	inv->id = pgv_i64(r, i, 0);
	inv->issuer = pgv_text(r, i, 1);
	inv->number = pgv_i64(r, i, 2);
	inv->from_ns = pgv_i64(r, i, 3);
	inv->to_ns = pgv_i64(r, i, 4);
	inv->base_minor = pgv_i64(r, i, 5);
	inv->plan_text = pgv_text(r, i, 6);
	inv->tenant = pgv_text(r, i, 7);
	inv->adjusted_minor = pgv_i64(r, i, 8);
}

int pg_invoices_before(const char *location, int64_t to_ns, ledger_invoice_fn fn, void *ctx, struct tally_err *e)
{
	struct pgnum a;
	const char *p[] = { pgn_i64(&a, to_ns) };
	return read_rows(location,
			 "SELECT i.id, i.issuer, i.number, i.from_ns, i.to_ns, i.base_minor, i.plan_text, i.tenant,"
			 " (SELECT coalesce(sum(a.amount_minor), 0)::bigint FROM invoice_adjustments a WHERE a.for_id = i.id"
			 "  AND " NOT_CANCELLED("a.invoice_id") ")"
			 " FROM invoices i WHERE i.to_ns <= $1 AND " NOT_CANCELLED("i.id")
			 " ORDER BY i.from_ns, i.to_ns, i.plan_text, i.id",
			 1, p, row_before, fn, ctx, e);
}

static void row_list(const PGresult *r, int i, struct ledger_invoice *inv)
{
	inv->id = pgv_i64(r, i, 0);
	inv->number = pgv_i64(r, i, 1);
	inv->from_ns = pgv_i64(r, i, 2);
	inv->to_ns = pgv_i64(r, i, 3);
	inv->issued_ns = pgv_i64(r, i, 4);
	inv->issuer = pgv_text(r, i, 5);
	inv->tenant = pgv_text(r, i, 6);
	inv->sha256 = pgv_text(r, i, 7);
	inv->currency = pgv_text(r, i, 8);
	inv->total = pgv_text(r, i, 9);
}

int pg_invoices_list(const char *location, const char *tenant, ledger_invoice_fn fn, void *ctx,
		     struct tally_err *e)
{
	const char *p[] = { tenant };
	return read_rows(location,
			 "SELECT id, number, from_ns, to_ns, issued_ns, issuer, tenant, sha256, currency,"
			 " document::json #>> '{invoices,0,total}' FROM invoices"
			 " WHERE CAST($1 AS text) IS NULL OR tenant = CAST($1 AS text) ORDER BY issuer, number",
			 1, p, row_list, fn, ctx, e);
}

static void row_find(const PGresult *r, int i, struct ledger_invoice *inv)
{
	inv->id = pgv_i64(r, i, 0);
	inv->number = pgv_i64(r, i, 1);
	inv->from_ns = pgv_i64(r, i, 2);
	inv->to_ns = pgv_i64(r, i, 3);
	inv->issued_ns = pgv_i64(r, i, 4);
	inv->issuer = pgv_text(r, i, 5);
	inv->tenant = pgv_text(r, i, 6);
	inv->sha256 = pgv_text(r, i, 7);
	inv->plan_text = pgv_text(r, i, 8);
	inv->document = pgv_text(r, i, 9);
}

int pg_invoices_find(const char *location, int64_t number, const char *issuer, ledger_invoice_fn fn, void *ctx,
		     struct tally_err *e)
{
	struct pgnum a;
	const char *p[] = { pgn_i64(&a, number), issuer ? issuer : "" };
	return read_rows(location,
			 "SELECT id, number, from_ns, to_ns, issued_ns, issuer, tenant, sha256, plan_text, document"
			 " FROM invoices WHERE number = $1 AND ($2 = '' OR issuer = $2) ORDER BY id LIMIT 2",
			 2, p, row_find, fn, ctx, e);
}

int pg_invoices_begin(const char *location, struct ledger_invoice_tx **out, struct tally_err *e)
{
	struct pg_invoice_tx *tx = fault_calloc(1, sizeof(*tx));
	int rc;
	*out = NULL;
	if (!tx)
		return err_set(e, -ENOMEM, "out of memory");
	tx->base.be = &ledger_pg_backend;
	if ((rc = pgc_connect(&tx->pc, location, "tally", e)) || (rc = pg_check_readable(&tx->pc, e)) ||
	    (rc = pgc_exec(&tx->pc, "BEGIN", "cannot start a transaction", e)) ||
	    (rc = pgc_exec(&tx->pc, "LOCK TABLE invoices IN SHARE ROW EXCLUSIVE MODE",
			   "cannot start a transaction", e))) {
		pgc_close(&tx->pc);
		free(tx);
		return rc;
	}
	*out = &tx->base;
	return 0;
}

int pg_invoices_overlap(struct ledger_invoice_tx *txb, const char *tenant, int64_t from_ns, int64_t to_ns,
			ledger_invoice_fn fn, void *ctx, struct tally_err *e)
{
	struct pgnum a, b;
	const char *p[] = { tenant, pgn_i64(&a, from_ns), pgn_i64(&b, to_ns) };
	PGresult *r = pgc_query(&TX(txb)->pc, "SELECT issuer, number, from_ns, to_ns, issued_ns FROM invoices"
				" WHERE tenant = $1 AND from_ns < $3 AND to_ns > $2 AND " NOT_CANCELLED("invoices.id")
				" ORDER BY from_ns LIMIT 1", 3, p,
				"cannot read invoices", e);
	int rc = 0;
	if (!r)
		return e ? e->code : -EIO;
	if (PQntuples(r) == 1) {
		struct ledger_invoice inv = { .issuer = pgv_text(r, 0, 0), .number = pgv_i64(r, 0, 1),
					      .from_ns = pgv_i64(r, 0, 2), .to_ns = pgv_i64(r, 0, 3),
					      .issued_ns = pgv_i64(r, 0, 4), .tenant = tenant, .sha256 = "",
					      .currency = "", .plan_text = "", .document = "", .total = "" };
		rc = fn(ctx, &inv);
	}
	PQclear(r);
	return rc;
}

/* The next number of issuer's series by sql. */
static int next_number(struct ledger_invoice_tx *txb, const char *sql, const char *issuer, const char *what,
		       int64_t *number, struct tally_err *e)
{
	const char *p[] = { issuer };
	PGresult *r = pgc_query(&TX(txb)->pc, sql, 1, p, what, e);
	if (!r)
		return e ? e->code : -EIO;
	*number = pgv_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int pg_invoices_next_number(struct ledger_invoice_tx *txb, const char *issuer, int64_t *number,
			    struct tally_err *e)
{
	return next_number(txb, "SELECT coalesce(max(number), 0) + 1 FROM invoices WHERE issuer = $1", issuer,
			   "cannot number the invoice", number, e);
}

int pg_invoices_insert(struct ledger_invoice_tx *txb, const struct ledger_invoice *inv, size_t doc_len, int64_t *id,
		       struct tally_err *e)
{
	struct pgnum n1, n2, n3, n4, n5, n6, n7;
	char *doc = fault_malloc(doc_len + 1);
	if (!doc)
		return err_set(e, -ENOMEM, "out of memory");
	memcpy(doc, inv->document, doc_len);
	doc[doc_len] = '\0';
	const char *p[] = { inv->issuer, pgn_i64(&n1, inv->number), inv->tenant, pgn_i64(&n2, inv->from_ns),
			    pgn_i64(&n3, inv->to_ns), pgn_i64(&n4, inv->issued_ns), inv->currency,
			    pgn_i64(&n5, inv->base_minor), pgn_i64(&n6, inv->subtotal_minor),
			    pgn_i64(&n7, inv->total_minor), inv->plan_text, doc, inv->sha256 };
	PGresult *r = pgc_query(&TX(txb)->pc, "INSERT INTO invoices (issuer, number, tenant, from_ns, to_ns, issued_ns,"
				" currency, base_minor, subtotal_minor, total_minor, plan_text, document, sha256)"
				" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id", 13, p,
				"cannot store the invoice", e);
	free(doc);
	if (!r)
		return e ? e->code : -EIO;
	*id = pgv_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int pg_invoices_adjust(struct ledger_invoice_tx *txb, int64_t invoice_id, int64_t for_id, int64_t amount_minor,
		       struct tally_err *e)
{
	struct pgnum a, b, c;
	const char *p[] = { pgn_i64(&a, invoice_id), pgn_i64(&b, for_id), pgn_i64(&c, amount_minor) };
	PGresult *r = pgc_query(&TX(txb)->pc, "INSERT INTO invoice_adjustments (invoice_id, for_id, amount_minor)"
				" VALUES ($1, $2, $3)", 3, p, "cannot store the adjustment", e);
	if (!r)
		return e ? e->code : -EIO;
	PQclear(r);
	return 0;
}

int pg_invoices_commit(struct ledger_invoice_tx *txb, struct tally_err *e)
{
	struct pg_invoice_tx *tx = TX(txb);
	int rc = pgc_exec(&tx->pc, "COMMIT", "cannot commit the invoices", e);
	pgc_close(&tx->pc);
	free(tx);
	return rc;
}

void pg_invoices_abort(struct ledger_invoice_tx *txb)
{
	struct pg_invoice_tx *tx = TX(txb);
	if (!tx)
		return;
	pgc_close(&tx->pc);          /* the server rolls back what the closed connection began */
	free(tx);
}

/* ---- credit notes (schemas/pg/migrations/008-credit-notes.sql) ---- */

int pg_credit_notes_credited(struct ledger_invoice_tx *txb, int64_t invoice_id, int64_t *subtotal_minor,
			     int64_t *total_minor, bool *cancelled, struct tally_err *e)
{
	struct pgnum a;
	const char *p[] = { pgn_i64(&a, invoice_id) };
	PGresult *r = pgc_query(&TX(txb)->pc, "SELECT coalesce(sum(subtotal_minor), 0)::bigint,"
				" coalesce(sum(total_minor), 0)::bigint, coalesce(max(cancels), 0)::bigint"
				" FROM credit_notes WHERE invoice_id = $1", 1, p, "cannot read credit notes", e);
	if (!r)
		return e ? e->code : -EIO;
	*subtotal_minor = pgv_i64(r, 0, 0);
	*total_minor = pgv_i64(r, 0, 1);
	*cancelled = pgv_i64(r, 0, 2) != 0;
	PQclear(r);
	return 0;
}

int pg_credit_notes_next_number(struct ledger_invoice_tx *txb, const char *issuer, int64_t *number,
				struct tally_err *e)
{
	return next_number(txb, "SELECT coalesce(max(number), 0) + 1 FROM credit_notes WHERE issuer = $1", issuer,
			   "cannot number the credit note", number, e);
}

int pg_credit_notes_insert(struct ledger_invoice_tx *txb, const struct ledger_credit_note *cn, size_t doc_len,
			   int64_t *id, struct tally_err *e)
{
	struct pgnum n1, n2, n3, n4, n5, n6;
	char *doc = fault_malloc(doc_len + 1);
	if (!doc)
		return err_set(e, -ENOMEM, "out of memory");
	memcpy(doc, cn->document, doc_len);
	doc[doc_len] = '\0';
	const char *p[] = { cn->issuer, pgn_i64(&n1, cn->number), pgn_i64(&n2, cn->invoice_id), cn->tenant,
			    pgn_i64(&n3, cn->issued_ns), cn->currency, cn->cancels ? "1" : "0",
			    pgn_i64(&n4, cn->subtotal_minor), pgn_i64(&n5, cn->total_minor), cn->reason, doc, cn->sha256 };
	(void)n6;
	PGresult *r = pgc_query(&TX(txb)->pc, "INSERT INTO credit_notes (issuer, number, invoice_id, tenant, issued_ns,"
				" currency, cancels, subtotal_minor, total_minor, reason, document, sha256)"
				" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id", 12, p,
				"cannot store the credit note", e);
	free(doc);
	if (!r)
		return e ? e->code : -EIO;
	*id = pgv_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

struct noting {
	ledger_credit_note_fn fn;
	void *ctx;
};

static int each_note(void *ctx, const PGresult *r, int i)
{
	struct noting *x = ctx;
	struct ledger_credit_note cn = {
		.id = pgv_i64(r, i, 0), .issuer = pgv_text(r, i, 1), .number = pgv_i64(r, i, 2),
		.invoice_id = pgv_i64(r, i, 3), .tenant = pgv_text(r, i, 4), .issued_ns = pgv_i64(r, i, 5),
		.currency = pgv_text(r, i, 6), .cancels = pgv_i64(r, i, 7) != 0, .subtotal_minor = pgv_i64(r, i, 8),
		.total_minor = pgv_i64(r, i, 9), .reason = pgv_text(r, i, 10), .document = pgv_text(r, i, 11),
		.sha256 = pgv_text(r, i, 12), .invoice_number = pgv_i64(r, i, 13),
	};
	return x->fn(x->ctx, &cn);
}

/* Credit notes by sql (n parameters) on a read-only connection. */
static int read_notes(const char *location, const char *sql, int n, const char *const *p, ledger_credit_note_fn fn,
		      void *ctx, struct tally_err *e)
{
	struct pgc pc;
	struct noting x = { fn, ctx };
	int rc;
	if ((rc = pgc_connect(&pc, location, "tally", e)))
		return rc;
	if (!(rc = pg_check_readable(&pc, e)) &&
	    !(rc = pgc_exec(&pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot begin", e)))
		rc = pgc_each(&pc, sql, n, p, each_note, &x, "cannot read credit notes", e);
	pgc_close(&pc);
	return rc;
}

#define NOTE_COLS "c.id, c.issuer, c.number, c.invoice_id, c.tenant, c.issued_ns, c.currency, c.cancels," \
		  " c.subtotal_minor, c.total_minor, c.reason, c.document, c.sha256, i.number"

int pg_credit_notes_find(const char *location, int64_t number, const char *issuer, ledger_credit_note_fn fn,
			 void *ctx, struct tally_err *e)
{
	struct pgnum a;
	const char *p[] = { pgn_i64(&a, number), issuer ? issuer : "" };
	return read_notes(location, "SELECT " NOTE_COLS " FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id"
			  " WHERE c.number = $1 AND ($2 = '' OR c.issuer = $2) ORDER BY c.id LIMIT 2", 2, p, fn, ctx, e);
}

int pg_credit_notes_list(const char *location, const char *tenant, ledger_credit_note_fn fn, void *ctx,
			 struct tally_err *e)
{
	const char *p[] = { tenant };
	return read_notes(location, "SELECT " NOTE_COLS " FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id"
			  " WHERE CAST($1 AS text) IS NULL OR c.tenant = CAST($1 AS text) ORDER BY c.issuer, c.number", 1, p,
			  fn, ctx, e);
}

/* ---- charges (schemas/pg/migrations/010-charges.sql) ---- */

int pg_charges_add(const char *location, const struct ledger_charge *c, int64_t *id, struct tally_err *e)
{
	struct pgc pc;
	struct pgnum a, b, d;
	PGresult *r = NULL;
	int rc;
	if ((rc = pgc_connect(&pc, location, "tally", e)))
		return rc;
	if ((rc = pg_check_readable(&pc, e)) || (rc = pgc_exec(&pc, "BEGIN", "cannot start a transaction", e)) ||
	    (rc = pgc_exec(&pc, "LOCK TABLE invoices IN SHARE ROW EXCLUSIVE MODE", "cannot start a transaction", e)))
		goto out;
	/* never into a period already invoiced (an invoice a credit note
	 * cancels does not hold its period) */
	const char *q[] = { c->tenant, pgn_i64(&a, c->from_ns) };
	if (!(r = pgc_query(&pc, "SELECT issuer, number FROM invoices i WHERE tenant = $1 AND from_ns <= $2"
			    " AND to_ns > $2 AND " NOT_CANCELLED("i.id") " LIMIT 1", 2, q, "cannot read invoices", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	if (PQntuples(r) == 1) {
		rc = err_set(e, -EEXIST, "tenant '%s' is invoiced for that period already (%s #%lld): issued invoices"
			     " never change; add the charge to a later period", c->tenant, pgv_text(r, 0, 0),
			     (long long)pgv_i64(r, 0, 1));
		goto out;
	}
	PQclear(r);
	/* a tenant the ledger knows (ledger/sqlite_charges.c says why) */
	const char *t[] = { c->tenant };
	if (!(r = pgc_query(&pc, "SELECT EXISTS (SELECT 1 FROM resources WHERE tenant = $1) OR EXISTS (SELECT 1 FROM"
			    " resource_attrs WHERE tenant = $1) OR EXISTS (SELECT 1 FROM charges WHERE tenant = $1)", 1, t,
			    "cannot read resources", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	if (!pgv_bool(r, 0, 0)) {
		rc = err_set(e, -ESRCH, "tenant '%s' is not in the ledger: no resource has had it, so no invoice"
			     " would carry the charge (is the name right?)", c->tenant);
		goto out;
	}
	PQclear(r);
	const char *p[] = { c->tenant, pgn_i64(&a, c->from_ns), pgn_i64(&b, c->to_ns), c->description, c->amount,
			    c->currency, pgn_i64(&d, c->added_ns) };
	if (!(r = pgc_query(&pc, "INSERT INTO charges (tenant, from_ns, to_ns, description, amount, currency, added_ns)"
			    " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id", 7, p, "cannot store the charge", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	*id = pgv_i64(r, 0, 0);
	rc = pgc_exec(&pc, "COMMIT", "cannot commit the charge", e);
out:
	PQclear(r);
	pgc_close(&pc);              /* what was not committed is rolled back */
	return rc;
}

struct charging {
	ledger_charge_fn fn;
	void *ctx;
};

static int each_charge(void *ctx, const PGresult *r, int i)
{
	struct charging *x = ctx;
	struct ledger_charge c = {
		.id = pgv_i64(r, i, 0), .tenant = pgv_text(r, i, 1), .from_ns = pgv_i64(r, i, 2),
		.to_ns = pgv_i64(r, i, 3), .description = pgv_text(r, i, 4), .amount = pgv_text(r, i, 5),
		.currency = pgv_text(r, i, 6), .added_ns = pgv_i64(r, i, 7),
	};
	return x->fn(x->ctx, &c);
}

int pg_charges_read(const char *location, const char *tenant, int64_t from_ns, int64_t to_ns, ledger_charge_fn fn,
		    void *ctx, struct tally_err *e)
{
	struct pgc pc;
	struct charging x = { fn, ctx };
	struct pgnum a, b;
	const char *p[] = { tenant, pgn_i64(&a, from_ns), pgn_i64(&b, to_ns) };
	int rc;
	if ((rc = pgc_connect(&pc, location, "tally", e)))
		return rc;
	if (!(rc = pg_check_readable(&pc, e)) &&
	    !(rc = pgc_exec(&pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot begin", e)))
		rc = pgc_each(&pc, "SELECT id, tenant, from_ns, to_ns, description, amount, currency, added_ns FROM charges"
			      " WHERE (CAST($1 AS text) IS NULL OR tenant = CAST($1 AS text)) AND from_ns >= $2 AND"
			      " from_ns < $3 ORDER BY tenant, id", 3, p, each_charge, &x, "cannot read charges", e);
	pgc_close(&pc);
	return rc;
}
