/*
 * invoices.h: the issued-invoice store, in the ledger file beside usage
 * (schemas/ledger.sql: tables invoices and invoice_adjustments).
 *
 * The rule (docs/architecture.md): the aggregator is the only writer of
 * usage and holds the writer's lock; issued invoices and the credit notes
 * that correct them are the one other thing written into a ledger, and
 * only through this store: append-only rows in their own tables
 * (invoices, invoice_adjustments, credit_notes), in their own
 * transactions, never touching
 * usage, series or the hash chain, and without the writer's lock (a
 * running tallyd goes on; SQLite's WAL and a busy timeout keep the two
 * transactions apart). Billing decides what an invoice is; this store
 * only keeps it, numbers it and finds it again. All the store's SQL is
 * here, so another backend implements this header.
 *
 * Functions return 0, or -ENOENT/-EINVAL/-EPROTO (the file, as
 * ledger_ro.h), -EBUSY (no transaction could be started), -ENOSPC (a full
 * disk), -EIO, with a message in e; a callback's nonzero return is
 * returned at once. Strings in a row are borrowed until the callback
 * returns, never NULL.
 */
#ifndef TALLY_LEDGER_INVOICES_H
#define TALLY_LEDGER_INVOICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tally_err;

/* One issued invoice as stored. */
struct ledger_invoice {
	int64_t id, number, from_ns, to_ns, issued_ns;
	const char *issuer, *tenant, *sha256, *currency;
	int64_t base_minor, subtotal_minor, total_minor;
	const char *plan_text;       /* the plan it was rated with (YAML) */
	const char *document;        /* the invoice as issued (JSON) */
	const char *total;           /* as printed in the document (lists only) */
	int64_t adjusted_minor;      /* sum of later adjustments for it (ledger_invoices_before only) */
};
typedef int (*ledger_invoice_fn)(void *ctx, const struct ledger_invoice *inv);

/* Every issued invoice whose period ended by to_ns, by period, plan and
 * id, with the adjustments made for it since; invoices a credit note
 * cancels count neither as these nor as carriers of adjustments. */
int ledger_invoices_before(const char *path, int64_t to_ns, ledger_invoice_fn fn, void *ctx,
			   struct tally_err *e);
/* Every issued invoice (of tenant, when not NULL), by issuer and number,
 * without plan and document. */
int ledger_invoices_list(const char *path, const char *tenant, ledger_invoice_fn fn, void *ctx,
			 struct tally_err *e);
/* The invoices numbered number (of issuer, when not ""), at most two (two
 * means the number alone is ambiguous), with plan and document. */
int ledger_invoices_find(const char *path, int64_t number, const char *issuer, ledger_invoice_fn fn,
			 void *ctx, struct tally_err *e);

/* Issuing: one transaction (BEGIN IMMEDIATE) for a set of invoices,
 * committed whole or not at all. */
struct ledger_invoice_tx;
int ledger_invoices_begin(const char *path, struct ledger_invoice_tx **out, struct tally_err *e);
/* The issued invoice of tenant whose period overlaps [from_ns, to_ns), if
 * any (one a credit note cancels does not count): fn is called with it
 * (and its nonzero return given back). */
int ledger_invoices_overlap(struct ledger_invoice_tx *tx, const char *tenant, int64_t from_ns, int64_t to_ns,
			    ledger_invoice_fn fn, void *ctx, struct tally_err *e);
/* The next number of issuer (1 for the first). */
int ledger_invoices_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				struct tally_err *e);
/* Append inv (its id is ignored; the new one into *id). doc_len: the
 * document's length in bytes. */
int ledger_invoices_insert(struct ledger_invoice_tx *tx, const struct ledger_invoice *inv, size_t doc_len,
			   int64_t *id, struct tally_err *e);
/* Append the adjustment invoice_id makes for the earlier invoice for_id. */
int ledger_invoices_adjust(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t for_id,
			   int64_t amount_minor, struct tally_err *e);
/* Commit and close tx; on failure nothing of it was stored. */
int ledger_invoices_commit(struct ledger_invoice_tx *tx, struct tally_err *e);
/* Roll back and close tx (NULL: nothing). */
void ledger_invoices_abort(struct ledger_invoice_tx *tx);

/* Credit notes (schemas/migrations/008-credit-notes.sql): a correction of
 * an issued invoice, a document of its own in its own series per issuer,
 * appended in an issuing transaction like an invoice. */
struct ledger_credit_note {
	int64_t id, number, invoice_id, issued_ns;
	const char *issuer, *tenant, *currency, *reason, *document, *sha256;
	bool cancels;                /* credits the whole invoice: its period is open again */
	int64_t subtotal_minor, total_minor;   /* <= 0 */
	int64_t invoice_number;      /* the credited invoice's number (reads only) */
};
typedef int (*ledger_credit_note_fn)(void *ctx, const struct ledger_credit_note *cn);

/* What the credit notes of invoice_id credit so far (sums <= 0), and
 * whether one of them cancels it. */
int ledger_credit_notes_credited(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t *subtotal_minor,
				 int64_t *total_minor, bool *cancelled, struct tally_err *e);
/* The next credit-note number of issuer (1 for the first). */
int ledger_credit_notes_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				    struct tally_err *e);
/* Append cn (its id and invoice_number are ignored; the new id into *id). */
int ledger_credit_notes_insert(struct ledger_invoice_tx *tx, const struct ledger_credit_note *cn, size_t doc_len,
			       int64_t *id, struct tally_err *e);
/* The credit notes numbered number (of issuer when not ""), at most two. */
int ledger_credit_notes_find(const char *path, int64_t number, const char *issuer, ledger_credit_note_fn fn,
			     void *ctx, struct tally_err *e);
/* Every credit note (of tenant, when not NULL), by issuer and number. */
int ledger_credit_notes_list(const char *path, const char *tenant, ledger_credit_note_fn fn, void *ctx,
			     struct tally_err *e);

#endif
