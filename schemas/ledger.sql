-- tally usage ledger, schema version 1 (PRAGMA user_version = 1); later
-- versions are this plus schemas/migrations/NNN-*.sql in order (the
-- current one: common/ledger_id.h).
--
-- The aggregator is the only writer. Everything that makes a bill is here:
-- usage per (resource, meter, device, UTC hour), the resources and their
-- metadata over time, lifecycle events, each series' last reading (so a
-- restart loses nothing), and the batches already ingested (so a batch sent
-- twice counts once). Billing reads it read-only.
--
-- Conventions: times are INTEGER nanoseconds since the Unix epoch, UTC
-- (columns ending in _ns); an hour is the _ns of its first instant. Strings
-- that are unknown are '' (never NULL), so they can sit in primary keys.
-- Never change this file: a change is a new schemas/migrations/NNN-*.sql
-- and a bump of LEDGER_SCHEMA_VERSION; a ledger from a newer version is
-- refused, never altered.

PRAGMA application_id = 1952541804; -- 'tall'

-- Meters by name (common/meter.c). id is stable once written.
CREATE TABLE meters (
	id        INTEGER PRIMARY KEY,
	name      TEXT NOT NULL UNIQUE,
	kind      TEXT NOT NULL CHECK (kind IN ('cumulative', 'gauge', 'delta')),
	unit      TEXT NOT NULL            -- base unit of a sample value
);

-- One row per resource ever seen. uuid is the stable id a collector gives
-- (domain UUID, "host:ifIndex"). The descriptive columns hold the latest
-- metadata; resource_attrs holds their history.
CREATE TABLE resources (
	id            INTEGER PRIMARY KEY,
	uuid          TEXT NOT NULL UNIQUE,
	type          TEXT NOT NULL DEFAULT '',
	name          TEXT NOT NULL DEFAULT '',
	tenant        TEXT NOT NULL DEFAULT '',
	project       TEXT NOT NULL DEFAULT '',
	user_id       TEXT NOT NULL DEFAULT '',
	flavor        TEXT NOT NULL DEFAULT '',
	labels        TEXT NOT NULL DEFAULT '',   -- "k=v,k=v", sorted by key
	host          TEXT NOT NULL DEFAULT '',   -- agent that last reported it
	first_seen_ns INTEGER NOT NULL,
	last_seen_ns  INTEGER NOT NULL
);
CREATE INDEX resources_tenant ON resources (tenant);

-- Metadata history: the attributes valid from since_ns until the next row's
-- since_ns. Usage for an hour belongs to the tenant valid at that hour's start
-- (or, for a resource first seen inside the hour, its first row).
CREATE TABLE resource_attrs (
	resource_id INTEGER NOT NULL REFERENCES resources (id),
	since_ns    INTEGER NOT NULL,
	name        TEXT NOT NULL DEFAULT '',
	tenant      TEXT NOT NULL DEFAULT '',
	project     TEXT NOT NULL DEFAULT '',
	user_id     TEXT NOT NULL DEFAULT '',
	flavor      TEXT NOT NULL DEFAULT '',
	labels      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (resource_id, since_ns)
) WITHOUT ROWID;

-- Usage. quantity is the sum over the hour of
--   counters (cumulative, delta): an INTEGER count in the meter's base unit;
--   gauges: a REAL time integral in unit-seconds (byte-seconds, vCPU-seconds).
-- A delta or integral spanning an hour boundary is split in proportion to
-- time (integers by cumulative floor, so the parts add up to the whole).
-- spanned_ns: nanoseconds of the hour spanned by the intervals usage was
-- attributed over (the resource existed and was watched then).
-- covered_ns: the part of spanned_ns in intervals no longer than the
-- aggregator's max_gap (usage across a longer gap is counted, its hour split
-- interpolated, but not "covered"); completeness = covered_ns / spanned_ns.
-- samples: readings whose time is in the hour.
CREATE TABLE usage (
	resource_id INTEGER NOT NULL REFERENCES resources (id),
	meter_id    INTEGER NOT NULL REFERENCES meters (id),
	device      TEXT NOT NULL DEFAULT '',
	hour_ns     INTEGER NOT NULL,
	quantity    NOT NULL DEFAULT 0,         -- no type: keeps INTEGER vs REAL as written
	spanned_ns  INTEGER NOT NULL DEFAULT 0,
	covered_ns  INTEGER NOT NULL DEFAULT 0,
	samples     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (resource_id, meter_id, device, hour_ns)
) WITHOUT ROWID;
CREATE INDEX usage_hour ON usage (hour_ns);

-- The last reading of each series: (resource, meter, device, source agent).
-- Written in the same transaction as the usage it produced (rule 7).
-- flags: bit 1 (1) = the series has a reading (set on every row); bit 2 (2)
-- = ended: its last reading had SAMPLE_F_LAST (the resource stopped), and
-- its next reading begins a new life. An ended series has flags 3.
CREATE TABLE series (
	resource_id INTEGER NOT NULL REFERENCES resources (id),
	meter_id    INTEGER NOT NULL REFERENCES meters (id),
	device      TEXT NOT NULL DEFAULT '',
	agent       TEXT NOT NULL,
	last_ns     INTEGER NOT NULL,
	origin_ns   INTEGER NOT NULL DEFAULT 0,
	kind        TEXT NOT NULL CHECK (kind IN ('cumulative', 'gauge', 'delta')),
	last_value  NOT NULL,               -- INTEGER counter (its 64-bit pattern) or REAL gauge
	flags       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (resource_id, meter_id, device, agent)
) WITHOUT ROWID;

-- Per agent, the highest batch sequence number committed and the cycle
-- time it closed. A batch with seq <= last_seq has been counted already.
CREATE TABLE agents (
	agent        TEXT PRIMARY KEY,
	last_seq     INTEGER NOT NULL,
	last_time_ns INTEGER NOT NULL,
	batches      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Lifecycle events (for SLA reports and explaining usage).
CREATE TABLE events (
	id          INTEGER PRIMARY KEY,
	resource_id INTEGER NOT NULL REFERENCES resources (id),
	time_ns     INTEGER NOT NULL,
	agent       TEXT NOT NULL,
	type        TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_resource_time ON events (resource_id, time_ns);
