-- Ledger schema version 7 -> 8: credit notes (tally invoice credit).
--
-- An issued invoice never changes (002-invoices.sql). A mistake found
-- after issue (a wrong price, a wrong customer, a goodwill refund) is
-- corrected by a credit note: a document of its own, numbered in its own
-- series per issuer, that references the invoice it credits and carries
-- negative amounts. Like the invoices it is written only by billing's
-- store (ledger/invoices.c), append-only, in a transaction of its own.
--
-- cancels = 1: the note credits the whole invoice (every line, every
-- tax). The invoice's period is then open again: the tenant may be
-- invoiced anew for it (--issue), and late usage for that period is
-- measured against the new invoice; adjustments the cancelled invoice
-- carried for earlier periods are carried again by the next one.
-- cancels = 0: a part (a line, or an amount with a reason); the invoice
-- and its period stand.

CREATE TABLE credit_notes (
	id             INTEGER PRIMARY KEY,
	issuer         TEXT NOT NULL,
	number         INTEGER NOT NULL,     -- sequential per issuer, from 1, apart from invoice numbers
	invoice_id     INTEGER NOT NULL REFERENCES invoices (id),
	tenant         TEXT NOT NULL,
	issued_ns      INTEGER NOT NULL,
	currency       TEXT NOT NULL,
	cancels        INTEGER NOT NULL CHECK (cancels IN (0, 1)),
	subtotal_minor INTEGER NOT NULL,     -- <= 0: what is credited before tax
	total_minor    INTEGER NOT NULL,     -- <= 0: with tax
	reason         TEXT NOT NULL,
	document       TEXT NOT NULL,        -- the credit note as JSON (docs/invoice.md, "Credit notes")
	sha256         TEXT NOT NULL,        -- hex SHA-256 of document
	UNIQUE (issuer, number)
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);

CREATE TRIGGER credit_notes_no_update BEFORE UPDATE ON credit_notes
	BEGIN SELECT RAISE(ABORT, 'issued credit notes never change'); END;
CREATE TRIGGER credit_notes_no_delete BEFORE DELETE ON credit_notes
	BEGIN SELECT RAISE(ABORT, 'issued credit notes never change'); END;
