-- Ledger schema version 8 -> 9: usage imported as events (tally import).
--
-- Usage that no collector measures (object storage, a floating IP,
-- licences, a service's API calls) arrives as events: each names its
-- source service and an idempotency key, a tenant, a resource, a meter
-- (usually a custom meter, docs/meters.md), a time (and for a level, an
-- end) and a quantity. The importer books each into the same hourly
-- usage rows as collected usage, split at hour boundaries as rule 6 says,
-- in the writer's transaction (holding the writer's lock, and sealed by
-- the hash chain like any usage), and records the event here in the same
-- transaction: an event whose (source, event_id) is here already counts
-- once; one that comes again with other values is refused (a key names
-- one event). An event for a period already invoiced changes that
-- period's usage, which the next invoice carries as an adjustment.
--
-- digest: hex SHA-256 of the event's canonical values (aggregator/import.c),
-- to tell "the same event again" from "another event under a used key".

CREATE TABLE usage_events (
	source      TEXT NOT NULL,        -- the source service (tally import --source)
	event_id    TEXT NOT NULL,        -- its idempotency key
	resource_id INTEGER NOT NULL REFERENCES resources (id),
	meter_id    INTEGER NOT NULL REFERENCES meters (id),
	device      TEXT NOT NULL DEFAULT '',
	time_ns     INTEGER NOT NULL,
	end_ns      INTEGER NOT NULL,     -- = time_ns for an instant
	quantity    INTEGER NOT NULL,     -- in the meter's base unit (a level for a gauge)
	digest      TEXT NOT NULL,
	imported_ns INTEGER NOT NULL,     -- wall clock of the import
	PRIMARY KEY (source, event_id)
) WITHOUT ROWID;

CREATE TRIGGER usage_events_no_update BEFORE UPDATE ON usage_events
	BEGIN SELECT RAISE(ABORT, 'imported events never change'); END;
CREATE TRIGGER usage_events_no_delete BEFORE DELETE ON usage_events
	BEGIN SELECT RAISE(ABORT, 'imported events never change'); END;
