-- Ledger schema version 6 -> 7: what the aggregator knows of each agent
-- that ships batches to it over the network (docs/transport.md,
-- schemas/batch-wire.md "The ingest protocol").
--
-- An agent's batches come from its spool, which every frame names (a
-- random 16-byte id and the first seq the spool ever wrote). The
-- aggregator keeps, per agent, the spool its committed seqs came from, so a
-- new spool that starts at seq 1 again (a lost spool directory, two hosts
-- with one agent id) is refused (409 "spool") instead of having its
-- batches acknowledged as already committed: a silent loss. A new spool is
-- taken when the agent is new, or when its first seq is exactly the last
-- committed seq + 1 (an operator continuing the agent on purpose).
--
-- The other columns are for `tally agents`: when the aggregator last
-- committed or acknowledged a request of the agent (its wall clock) and the
-- spool depth the agent reported with it (the Tally-Spool request header).
-- They are written in the same transaction as the agent's batches, so they
-- say what the ledger holds, not what is in flight.
--
--   spool_id         16 bytes, NULL: the batches came from no spool (the
--                    all-in-one tallyd, a test client)
--   spool_first_seq  that spool's first seq; 0 with no spool
--   contact_ns       ns since the epoch (UTC, the aggregator's clock) of the
--                    last request committed or acknowledged; 0: none (the
--                    agent's rows were written by an all-in-one tallyd)
--   spool_batches    batches the agent's spool held unacknowledged when it
--                    sent that request, the request's own included; -1:
--                    not reported
--   spool_bytes      bytes of the spool's segment files then; -1: not
--                    reported

ALTER TABLE agents ADD COLUMN spool_id BLOB;
ALTER TABLE agents ADD COLUMN spool_first_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN contact_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN spool_batches INTEGER NOT NULL DEFAULT -1;
ALTER TABLE agents ADD COLUMN spool_bytes INTEGER NOT NULL DEFAULT -1;
