-- Ledger schema version 2 -> 3 on PostgreSQL: alert state, as
-- schemas/migrations/003-alerts.sql. value is not billed: a double, as there.

CREATE TABLE alerts (
	key          TEXT COLLATE "C" PRIMARY KEY,
	labels       TEXT COLLATE "C" NOT NULL,
	annotations  TEXT COLLATE "C" NOT NULL,
	rule         TEXT COLLATE "C" NOT NULL,
	tenant       TEXT COLLATE "C" NOT NULL,
	subject      TEXT COLLATE "C" NOT NULL,
	device       TEXT COLLATE "C" NOT NULL,
	state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
	active_ns    BIGINT NOT NULL,
	fired_ns     BIGINT NOT NULL,
	resolved_ns  BIGINT NOT NULL,
	value        DOUBLE PRECISION NOT NULL
);
