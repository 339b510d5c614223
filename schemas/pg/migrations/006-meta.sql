-- Ledger schema version 5 -> 6 on PostgreSQL: which tally made and last
-- wrote the ledger, as schemas/migrations/006-meta.sql (the keys are said
-- there). Every writer that opens the ledger records itself, in the
-- transaction that checks the schema; with several aggregators,
-- written_by is the last one that opened it. `tally ledger copy` does not
-- carry it: a copy records the tally that made it.

CREATE TABLE meta (
	key    TEXT COLLATE "C" PRIMARY KEY,
	value  TEXT COLLATE "C" NOT NULL
);
