-- Ledger schema version 1 -> 2: issued invoices (tally invoice --issue).
--
-- These two tables are the only ones billing writes; the aggregator never
-- touches them. An issued invoice never changes: the triggers refuse any
-- UPDATE or DELETE. Usage that arrives after a period was issued is billed
-- as an adjustment on a later invoice of the same tenant, recorded in
-- invoice_adjustments, so each correction is carried exactly once.

CREATE TABLE invoices (
	id             INTEGER PRIMARY KEY,
	issuer         TEXT NOT NULL,
	number         INTEGER NOT NULL,     -- sequential per issuer, from 1
	tenant         TEXT NOT NULL,
	from_ns        INTEGER NOT NULL,     -- the period [from_ns, to_ns)
	to_ns          INTEGER NOT NULL,
	issued_ns      INTEGER NOT NULL,
	currency       TEXT NOT NULL,
	base_minor     INTEGER NOT NULL,     -- subtotal of the period's own lines (no adjustments)
	subtotal_minor INTEGER NOT NULL,
	total_minor    INTEGER NOT NULL,
	plan_text      TEXT NOT NULL,        -- the rate plan as issued: re-rating and explain use it
	document       TEXT NOT NULL,        -- the invoice as JSON (schemas/invoice.schema.json)
	sha256         TEXT NOT NULL,        -- hex SHA-256 of document
	UNIQUE (issuer, number)
);
CREATE INDEX invoices_tenant ON invoices (tenant, from_ns);

-- An adjustment line: invoice_id carries amount_minor for the period of
-- the earlier invoice for_id.
CREATE TABLE invoice_adjustments (
	invoice_id   INTEGER NOT NULL REFERENCES invoices (id),
	for_id       INTEGER NOT NULL REFERENCES invoices (id),
	amount_minor INTEGER NOT NULL,
	PRIMARY KEY (invoice_id, for_id)
) WITHOUT ROWID;

CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices
	BEGIN SELECT RAISE(ABORT, 'issued invoices never change'); END;
CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
	BEGIN SELECT RAISE(ABORT, 'issued invoices never change'); END;
CREATE TRIGGER invoice_adjustments_no_update BEFORE UPDATE ON invoice_adjustments
	BEGIN SELECT RAISE(ABORT, 'issued invoices never change'); END;
CREATE TRIGGER invoice_adjustments_no_delete BEFORE DELETE ON invoice_adjustments
	BEGIN SELECT RAISE(ABORT, 'issued invoices never change'); END;
