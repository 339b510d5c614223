-- Ledger schema version 5 -> 6: which tally made and last wrote the ledger.
--
-- A support question ("which version wrote these rows?") or a downgrade
-- after an upgrade needs to know which build touched a ledger. The writer
-- (tallyd, ledger/ledger.c) records itself here every time it opens the
-- ledger, in the same transaction that checks its schema; readers never
-- write it. `tally ledger info` shows it.
--
-- keys:
--   created_by   the tally that created the ledger: "VERSION (REVISION)";
--                absent in a ledger created before schema 6 (it was
--                migrated, see upgraded_by)
--   upgraded_by  the tally that migrated the ledger to schema 6, when it
--                was older
--   written_by   the last tally that opened the ledger for writing
--   written_ns   when that was (ns since the epoch, UTC, as text)

CREATE TABLE meta (
	key    TEXT PRIMARY KEY,
	value  TEXT NOT NULL
) WITHOUT ROWID;
