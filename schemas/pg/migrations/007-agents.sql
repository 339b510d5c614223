-- Ledger schema version 6 -> 7 on PostgreSQL: what the aggregators know of
-- each agent that ships batches over the network, as
-- schemas/migrations/007-agents.sql (the columns are said there). With
-- several aggregators on one ledger the row is the agent's, whichever
-- aggregator committed its last batch: the spool its seqs came from is
-- checked and moved under the commit lock with its seq.

ALTER TABLE agents ADD COLUMN spool_id BYTEA;
ALTER TABLE agents ADD COLUMN spool_first_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN contact_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN spool_batches BIGINT NOT NULL DEFAULT -1;
ALTER TABLE agents ADD COLUMN spool_bytes BIGINT NOT NULL DEFAULT -1;
