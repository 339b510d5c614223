-- Ledger schema version 4 -> 5 on PostgreSQL: the hash chain over committed
-- usage, as schemas/migrations/005-chain.sql, which defines the bytes hashed.
-- They are the same on both engines (ledger/chain.c computes them for
-- both): a usage row's quantity is hashed 'I' and the BIGINT `quantity`, or
-- 'R' and the binary64 bits of `quantity_real`; rows are ordered by
-- (resource_id, meter_id, device), device bytewise (COLLATE "C").
--
-- Several aggregators may commit to one ledger: their commits take turns
-- under the advisory lock of schemas/pg/ledger.sql, so the chain stays one
-- line, each commit hashing the hours as they are after it (its own rows
-- and every earlier commit's).

CREATE TABLE chain (
	id       BIGINT PRIMARY KEY,
	time_ns  BIGINT NOT NULL,
	upgrade  BIGINT NOT NULL DEFAULT 0,
	hours    BIGINT NOT NULL,
	hash     BYTEA NOT NULL
);

CREATE TABLE chain_hours (
	commit_id BIGINT NOT NULL,           -- no foreign key: verify reports an orphan
	hour_ns   BIGINT NOT NULL,
	rows      BIGINT NOT NULL,
	altered   BIGINT NOT NULL DEFAULT 0,
	digest    BYTEA NOT NULL,
	PRIMARY KEY (commit_id, hour_ns)
);
CREATE INDEX chain_hours_hour ON chain_hours (hour_ns, commit_id);
