-- Ledger schema version 8 -> 9 on PostgreSQL: usage imported as events, as
-- schemas/migrations/009-usage-events.sql. Recorded in the writer's
-- transaction, under the commit lock (several writers: an event's key is
-- checked and recorded in turn, so it counts once whichever imports it).

CREATE TABLE usage_events (
	source      TEXT COLLATE "C" NOT NULL,
	event_id    TEXT COLLATE "C" NOT NULL,
	resource_id BIGINT NOT NULL,
	meter_id    BIGINT NOT NULL,
	device      TEXT COLLATE "C" NOT NULL DEFAULT '',
	time_ns     BIGINT NOT NULL,
	end_ns      BIGINT NOT NULL,
	quantity    BIGINT NOT NULL,
	digest      TEXT COLLATE "C" NOT NULL,
	imported_ns BIGINT NOT NULL,
	PRIMARY KEY (source, event_id)
);

CREATE FUNCTION tally_imported_never_change() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN RAISE EXCEPTION 'imported events never change'; END $$;
CREATE TRIGGER usage_events_no_update BEFORE UPDATE OR DELETE ON usage_events
	FOR EACH ROW EXECUTE FUNCTION tally_imported_never_change();
