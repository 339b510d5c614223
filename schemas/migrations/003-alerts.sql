-- Ledger schema version 2 -> 3: alert state (aggregator/alerting.h).
--
-- One row per alert instance that is pending, firing, or resolved and still
-- being re-sent to Alertmanager. The aggregator writes it in the same
-- transaction as the usage and events the alert was computed from, so after
-- a restart (or a crash) the alerts agree with the data tallyd resumes
-- from: a firing alert keeps its startsAt (no second page) and is still
-- resolved when its condition ends (no forgotten alert).
--
-- key is the instance's identity (rule, subject, device, host: labels such
-- as a VM's name may change under it); labels is the label set sent to
-- Alertmanager, "name=value" lines sorted by name. Times are ns since the epoch (data time:
-- virtual in fast-forward), 0 = not yet.

CREATE TABLE alerts (
	key          TEXT PRIMARY KEY,
	labels       TEXT NOT NULL,
	annotations  TEXT NOT NULL,       -- "name=value" lines
	rule         TEXT NOT NULL,       -- the rule's name (alertname)
	tenant       TEXT NOT NULL,       -- "" for alerts about tallyd itself
	subject      TEXT NOT NULL,       -- resource uuid, or "" for tallyd itself
	device       TEXT NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
	active_ns    INTEGER NOT NULL,    -- the condition became true
	fired_ns     INTEGER NOT NULL,    -- active_ns + for: startsAt
	resolved_ns  INTEGER NOT NULL,    -- the condition ended: endsAt
	value        REAL NOT NULL        -- the value that made it true, last seen
) WITHOUT ROWID;
