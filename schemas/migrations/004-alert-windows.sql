-- Ledger schema version 3 -> 4: the readings behind windowed alert rules
-- (aggregator/alerting.h, a rule's `window:` in docs/config.md).
--
-- A windowed rule (rate_above: 0.9 over window: 5m) needs the series'
-- recent readings. Kept only in memory, a restart emptied the window, the
-- empty window read 0 and every firing rule resolved, to fire again `for:`
-- later as a new alert (a second page). The aggregator now writes each
-- window's new readings here in the same transaction as the series state
-- and the alert state computed from them, and drops the readings that left
-- the window, so a restarted tallyd continues every window where the
-- ledger's series continue: after a crash the readings lost with the
-- process are lost from both, and the first reading after the restart is
-- counted from the last committed one (rule 1) in both.
--
-- key: the rule's name, the meter, the resource, the device and the source
-- host, joined by U+001F (the alert instance's key plus the meter, so a
-- rule whose meter changed across a restart does not continue another
-- meter's readings). value: a gauge's reading, or a counter's usage since
-- an arbitrary origin of this window (only differences are used: the rate
-- between two readings is their difference over their time apart).
-- Rows of rules that are gone or no longer windowed are deleted at start.

CREATE TABLE alert_windows (
	key    TEXT NOT NULL,
	t_ns   INTEGER NOT NULL,          -- the reading's time (data time)
	value  REAL NOT NULL,
	PRIMARY KEY (key, t_ns)
) WITHOUT ROWID;
