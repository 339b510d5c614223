-- Ledger schema version 4 -> 5: a hash chain over the committed usage,
-- so that a changed value is found, not only a broken page (`tally ledger
-- verify`, and before `tally invoice --issue`; docs/ledger.md).
--
-- Usage rows are updated in place (quantity accumulates), so a commit's
-- changes cannot be read back later. What a commit seals instead is the
-- state it left: for every UTC hour it wrote usage to, a digest of all
-- usage rows of that hour as they were after it. The last commit that
-- wrote an hour says what the hour must hold now; every commit's hash
-- covers the previous commit's hash and its own hour digests, so a commit
-- record changed, removed or inserted breaks every hash after it.
--
-- The aggregator (aggregator/ledger.c) writes both tables in the same
-- transaction as the usage, one chain row per transaction that wrote usage;
-- nothing else writes them. Before it writes to an hour it checks that the
-- hour still holds what the last commit recorded; if not (a change from
-- outside), the new commit says so in `altered`, so sealing the hour again
-- does not hide the change. A ledger upgraded from version 4 gets a first
-- commit (upgrade = 1) sealing every hour it held at the upgrade, as found:
-- the chain vouches for those hours from the upgrade on, not before.
--
-- The hashes are SHA-256 over byte strings defined without reference to
-- SQLite (all integers big-endian, two's complement):
--
--   row    = int64 resource_id, int64 meter_id, uint32 len(device),
--            device (UTF-8), int64 hour_ns, quantity, int64 spanned_ns,
--            int64 covered_ns, int64 samples
--            where quantity = 'I' int64 (an INTEGER) or 'R' the 8 bytes of
--            the IEEE 754 binary64 (a REAL)
--   digest = SHA-256("tally usage hour v1" 0x00, int64 hour_ns, row...)
--            over the hour's rows ordered by (resource_id, meter_id,
--            device compared bytewise)
--   hash   = SHA-256("tally chain v1" 0x00, previous hash (32 zero bytes
--            before the first commit), int64 id, int64 time_ns, int64
--            upgrade, int64 hours, then per hour in ascending order:
--            int64 hour_ns, int64 rows, int64 altered, digest)
--
-- On PostgreSQL the same definitions hold (device ordered COLLATE "C").

CREATE TABLE chain (
	id       INTEGER PRIMARY KEY,       -- 1, 2, ... in commit order, no gaps
	time_ns  INTEGER NOT NULL,          -- wall clock of the commit
	upgrade  INTEGER NOT NULL DEFAULT 0,  -- 1: the commit that sealed an upgraded ledger as found
	hours    INTEGER NOT NULL,          -- chain_hours rows of this commit
	hash     BLOB NOT NULL              -- 32 bytes
);

-- The hours a commit wrote usage to, and what each held after it.
CREATE TABLE chain_hours (
	commit_id INTEGER NOT NULL REFERENCES chain (id),
	hour_ns   INTEGER NOT NULL,
	rows      INTEGER NOT NULL,         -- usage rows of the hour
	altered   INTEGER NOT NULL DEFAULT 0, -- 0; or before this commit the hour did not hold what
	                                    -- commit `altered` recorded (-1: rows no commit wrote)
	digest    BLOB NOT NULL,            -- 32 bytes
	PRIMARY KEY (commit_id, hour_ns)
) WITHOUT ROWID;
CREATE INDEX chain_hours_hour ON chain_hours (hour_ns, commit_id);
