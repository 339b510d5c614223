/*
 * pg_invoices.c: the issued-invoice store on PostgreSQL (invoices.h,
 * through backend.h), as sqlite_invoices.c: reading issued invoices, and
 * appending new ones and their adjustments in one transaction of their own.
 * Issuing locks the invoices table against other issuers (SHARE ROW
 * EXCLUSIVE: readers go on, a second `tally invoice --issue` waits) so
 * numbers stay sequential; the aggregators' commits never touch it.
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
			 " (SELECT coalesce(sum(a.amount_minor), 0)::bigint FROM invoice_adjustments a WHERE a.for_id = i.id)"
			 " FROM invoices i WHERE i.to_ns <= $1 ORDER BY i.from_ns, i.to_ns, i.plan_text, i.id",
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
				" WHERE tenant = $1 AND from_ns < $3 AND to_ns > $2 ORDER BY from_ns LIMIT 1", 3, p,
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

int pg_invoices_next_number(struct ledger_invoice_tx *txb, const char *issuer, int64_t *number,
			    struct tally_err *e)
{
	const char *p[] = { issuer };
	PGresult *r = pgc_query(&TX(txb)->pc, "SELECT coalesce(max(number), 0) + 1 FROM invoices WHERE issuer = $1",
				1, p, "cannot number the invoice", e);
	if (!r)
		return e ? e->code : -EIO;
	*number = pgv_i64(r, 0, 0);
	PQclear(r);
	return 0;
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
