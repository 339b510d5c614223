-- Ledger schema version 3 -> 4 on PostgreSQL: the readings behind windowed
-- alert rules, as schemas/migrations/004-alert-windows.sql.

CREATE TABLE alert_windows (
	key    TEXT COLLATE "C" NOT NULL,
	t_ns   BIGINT NOT NULL,
	value  DOUBLE PRECISION NOT NULL,
	PRIMARY KEY (key, t_ns)
);
