-- Ledger schema version 9 -> 10: one-off charges and credits (tally charge).
--
-- What is owed beside measured usage and the plan's recurring fees: a
-- setup fee, an hour of consulting, a goodwill credit, a licence bought
-- once. Each belongs to a tenant and to the invoice period that holds its
-- start (from_ns); the invoice of that period shows it as a line of its
-- own (group "charges"), taxed with the rest. A charge is never added to
-- a period already invoiced (the store refuses, naming the invoice): an
-- issued invoice never changes. Written only by billing's store
-- (ledger/charges.c), append-only, in transactions of its own.

CREATE TABLE charges (
	id          INTEGER PRIMARY KEY,
	tenant      TEXT NOT NULL,
	from_ns     INTEGER NOT NULL,     -- the span it is for: [from_ns, to_ns)
	to_ns       INTEGER NOT NULL,
	description TEXT NOT NULL,
	amount      TEXT NOT NULL,        -- a decimal as given; negative: a credit
	currency    TEXT NOT NULL,        -- '' : the plan's
	added_ns    INTEGER NOT NULL      -- wall clock
);
CREATE INDEX charges_tenant ON charges (tenant, from_ns);

CREATE TRIGGER charges_no_update BEFORE UPDATE ON charges
	BEGIN SELECT RAISE(ABORT, 'charges never change: add a credit'); END;
CREATE TRIGGER charges_no_delete BEFORE DELETE ON charges
	BEGIN SELECT RAISE(ABORT, 'charges never change: add a credit'); END;
