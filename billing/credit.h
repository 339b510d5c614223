/*
 * credit.h: credit notes, the one way to correct an issued invoice
 * (docs/invoice.md, "Credit notes"; docs/architecture.md rule 9).
 *
 * An issued invoice never changes. A mistake found after it was sent (a
 * wrong price, a wrong customer, a goodwill refund) is corrected by a
 * credit note: a document of its own, numbered in the issuer's credit-note
 * series (the plan's issuer.credit_note_prefix, default "CN-"), that
 * names the invoice it credits and carries negative amounts. It is made
 * from the invoice as issued (its stored JSON document, hash checked), not
 * from the ledger or the plan as they are now, so it credits exactly what
 * was invoiced:
 *
 *   whole      every line and every tax of the invoice, less what earlier
 *              credit notes of it credited; the invoice's period is then
 *              open again (issue a corrected invoice for it with --issue);
 *   line N     line N's amount, with the invoice's taxes on it;
 *   amount X   X (before tax) with a reason, with the invoice's taxes on it.
 *
 * A note never credits more than the invoice's subtotal left uncredited,
 * and a cancelled invoice takes no further note. Each tax is rounded once
 * (the plan the invoice was issued with says how). The note is stored in
 * the ledger's credit_notes table, append-only, with its SHA-256.
 */
#ifndef TALLY_CREDIT_H
#define TALLY_CREDIT_H

#include <stdint.h>
#include <stdio.h>

#include "invoice.h"

struct tally_err;

struct credit_request {
	const char *invoice;         /* "NUMBER" or "ISSUER#NUMBER" */
	const char *reason;          /* required: printed on the note */
	int line;                    /* > 0: credit this line of the invoice */
	const char *amount;          /* not NULL: credit this amount before tax ("25.00") */
	int64_t date_ns;             /* the note's date (a UTC day) */
};

/* Issue a credit note for r at now_ns; *doc gets the stored document
 * (JSON, malloc'd: free()). Returns 0; -ENOENT (no such invoice), -EINVAL
 * (a bad line or amount, no reason, more than is left to credit, an
 * invoice already cancelled), -EBADMSG (the stored invoice does not match
 * its hash), -EIO, -EBUSY; message in e. Nothing is stored on failure. */
int credit_issue(const char *ledger, const struct credit_request *r, int64_t now_ns, char **doc,
		 struct tally_err *e);

/* The stored document of credit note which ("NUMBER" or "ISSUER#NUMBER"),
 * its hash checked; *doc malloc'd. 0, -ENOENT, -EINVAL (ambiguous),
 * -EBADMSG, -EIO. */
int credit_find(const char *ledger, const char *which, char **doc, struct tally_err *e);

/* A credit note's document as text, JSON (as stored) or one printable
 * HTML page. 0, -EINVAL (not a credit note document), -EIO. */
int credit_render(FILE *f, const char *doc, enum invoice_format fmt);

#endif
