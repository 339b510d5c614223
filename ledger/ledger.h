/*
 * ledger.h: the usage ledger as the aggregator writes it, on SQLite
 * (schemas/ledger.sql, the default) or PostgreSQL (schemas/pg/ledger.sql);
 * backend.h says how a location picks one, docs/ledger.md what each does.
 *
 * ledger_open() creates a new ledger or opens an existing one and brings it
 * to the current schema version by forward migrations. It refuses, and never
 * touches, a ledger that is not a tally ledger, is corrupt, or was written
 * by a newer tally. On SQLite, corrupt: PRAGMA integrity_check finds a
 * problem (an index that disagrees with its table too); only when the file
 * is exactly as the last clean ledger_close() left it (recorded in the lock
 * file) does the cheaper quick_check stand in for it (docs/ledger.md). The
 * SQLite ledger runs in WAL mode with synchronous=FULL, PostgreSQL as its
 * server is configured (synchronous_commit on by default): a transaction
 * that ledger_commit() returned 0 for survives a crash of the process or
 * the machine.
 *
 * Writes happen only between ledger_begin() and ledger_commit() (or
 * ledger_rollback()), through prepared statements. On SQLite one writer per
 * file, the aggregator: ledger_open() takes an exclusive lock on
 * <path>.lock before it reads the ledger and holds it until
 * ledger_close(); a second writer, in this process or another, is refused
 * (-EBUSY) with the holder's pid and host in the message. On PostgreSQL
 * several aggregators write at once: their commits take turns (an
 * advisory lock for the length of the commit), and the batches of one
 * agent are applied in sequence order whichever aggregator received them
 * (ledger_put_agent's from_seq). Readers (billing, the JSON API) and the
 * issuing of invoices never take the writer's lock. The ledger owns its
 * statements; ledger_close() frees them and drops the lock.
 */
#ifndef TALLY_LEDGER_H
#define TALLY_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger_id.h"
#include "sample.h"

struct tally_err;
struct ledger;


/* ledger_migrations[v] takes a ledger from schema version v to v + 1:
 * [0] is schemas/ledger.sql, the rest schemas/migrations/NNN-*.sql. */
extern const char *const ledger_migrations[];
extern const int ledger_n_migrations;

/* The writer's lock file is the ledger's path with this appended. */
#define LEDGER_LOCK_SUFFIX ".lock"

/* A ledger location as an operator gives it (config, --ledger,
 * $TALLY_LEDGER) into out: checked (a PostgreSQL URI that libpq cannot
 * parse, an unknown scheme: -EINVAL, with what is wrong in e), and with a
 * password it holds taken out and kept in this process for the backend,
 * so that no message, log line or /metrics label made from the location
 * shows it. Every caller that shows a location uses the normalized one. */
int ledger_location_normalize(const char *location, char *out, size_t len, struct tally_err *e);
/* How long one statement may run on a database server's ledger (ms; 0:
 * no limit, the default) for the connections this process makes from now
 * on: tallyd sets ledger.statement_timeout. Returns the previous value. */
int ledger_set_statement_timeout(int ms);

/* Which engine a location names: "sqlite" or "postgresql" (NULL: none). */
const char *ledger_location_engine(const char *location);

/* location: a file, "sqlite:PATH" or a "postgresql://" URI (backend.h).
 * Returns 0; -EBUSY (another writer holds the lock), -EINVAL (not a tally
 * ledger, or corrupt), -EPROTO (a newer schema), -ENOSPC, -EIO, and on
 * PostgreSQL -ECONNREFUSED (no server, no such database), -EACCES (the
 * role may not log in or lacks rights); message in e. *out is NULL on
 * failure. */
int ledger_open(struct ledger **out, const char *location, struct tally_err *e);
/* Close l, drop the lock. The close of an opened ledger is a clean stop:
 * its WAL is folded into the file and the file's identity recorded. */
void ledger_close(struct ledger *l);

/* How ledger_open checked l: *full when by integrity_check (else the file
 * was as a clean stop left it, and quick_check ran), in *ns. */
void ledger_check_info(const struct ledger *l, bool *full, int64_t *ns);

/* `tally ledger check`: on SQLite, PRAGMA integrity_check of the ledger at
 * path on a read-only connection, without the writer's lock (a running
 * tallyd goes on; the check reads one snapshot); on PostgreSQL, amcheck's
 * check of every index against its table when the extension is installed
 * (out->method says which). Returns 0 when the check ran, with
 * out->problems 0 (ok) or the number SQLite listed and the first ones in
 * out->first; -ENOENT, -EINVAL (not a tally ledger), -EIO when it could
 * not run; message in e. */
struct ledger_check {
	int problems;
	char first[400];
	char method[64];             /* what was checked: "integrity_check", "amcheck of every index", ... */
	int64_t bytes;               /* the file's size */
	int64_t ns;                  /* the check's wall time */
};
int ledger_check_file(const char *location, struct ledger_check *out, struct tally_err *e);

/* What a ledger says of itself (`tally ledger info`): its schema, which
 * tally made, upgraded and last wrote it (schemas/migrations/006-meta.sql;
 * "" where the ledger does not say), the span of its usage, its size.
 * Read-only, as a reader opens it; returns 0 or ledger_reader_open's
 * errors, message in e. */
struct ledger_info {
	int schema;
	char created_by[160], upgraded_by[160], written_by[160];
	int64_t written_ns;          /* 0: not recorded */
	int64_t first_hour_ns, last_hour_ns; /* of the usage rows; has_usage false: none */
	bool has_usage;
	int64_t bytes;               /* SQLite: the file, without its WAL; PostgreSQL: the tables and indexes */
};
int ledger_info(const char *location, struct ledger_info *out, struct tally_err *e);

/* `tally ledger verify`, and before invoices are issued: the hash chain
 * over committed usage (schemas/migrations/005-chain.sql). Every commit's
 * hash is recomputed from the one before and the hour digests it
 * recorded, and every hour's usage rows as they are now are hashed and
 * compared with what the last commit that wrote the hour recorded. One
 * read-only snapshot, without the writer's lock. Returns 0 when it ran,
 * with out->problems 0 (the usage is what was committed) or the number of
 * problems, the first bad batch (the lowest commit a problem names) in
 * out->bad_commit and the first problems in out->first; -ENOENT, -EINVAL
 * (not a ledger), -EPROTO (no chain yet: an older schema; or a newer one),
 * -ENOMEM, -EIO when it could not run; message in e. */
struct ledger_verify {
	int64_t commits;             /* in the chain */
	int64_t first_ns;            /* the first commit's wall time, 0: no chain */
	bool upgraded;               /* the first commit sealed an upgraded ledger's hours as found */
	int64_t sealed_hours;        /* how many hours it sealed */
	int64_t hours, rows;         /* usage hours and rows hashed */
	int64_t head_id;             /* the last commit */
	char head[2 * 32 + 1];       /* its hash, hex */
	int problems;                /* 0: the usage is what the chain says */
	int64_t bad_commit;          /* the first bad batch; 0 when no problem names a commit */
	char first[760];             /* the first problems, "; " between them */
	int64_t ns;                  /* wall time of the verification */
};
int ledger_verify(const char *location, struct ledger_verify *out, struct tally_err *e);

int ledger_begin(struct ledger *l, struct tally_err *e);
int ledger_commit(struct ledger *l, struct tally_err *e);
void ledger_rollback(struct ledger *l);
/* No transaction open (a rollback after a failed commit worked). */
bool ledger_idle(const struct ledger *l);

/* meters: id for name, inserting it if new. */
int ledger_meter_id(struct ledger *l, const char *name, const char *kind, const char *unit,
		    int64_t *id, struct tally_err *e);

struct ledger_resource {
	int64_t id;
	int64_t first_seen_ns, last_seen_ns;
	char host[TALLY_ID_MAX];
	struct resource_meta meta;   /* current attributes; meta.time_ns = since */
};
/* Insert or replace the resources row. known: the row is in the ledger
 * with r->id (it was loaded, or committed by this writer): replaced by id.
 * Otherwise it is the resource uuid's row, whichever id the ledger has for
 * it: SQLite, one writer, takes r->id; PostgreSQL, where several writers
 * may have seen the same resource first, keeps the id the resource
 * already has there or gives it a new one, and sets r->id to it. The rows
 * of this transaction that name the resource must use r->id as it is
 * after the call. */
int ledger_put_resource(struct ledger *l, struct ledger_resource *r, bool known, struct tally_err *e);
int ledger_put_attrs(struct ledger *l, int64_t resource_id, const struct resource_meta *m,
		     struct tally_err *e);

struct ledger_usage {
	int64_t resource_id, meter_id;
	const char *device;
	int64_t hour_ns;
	int is_real;                 /* quantity is qty_real (gauge) */
	int64_t qty;
	double qty_real;
	int64_t spanned_ns, covered_ns, samples;
	int exists;                  /* the row is most likely there: update it first */
};
/* Add to the usage row (creating it). exists is a hint: when set the row
 * is updated in place, and inserted only if it was not there. */
int ledger_add_usage(struct ledger *l, const struct ledger_usage *u, struct tally_err *e);

struct ledger_series {
	int64_t resource_id, meter_id;
	const char *device, *agent;
	int64_t last_ns, origin_ns;
	int kind;                    /* enum sample_kind of the series */
	uint64_t last_counter;
	double last_gauge;
	int flags;
	int exists;                  /* the row is most likely there (hint, as for usage) */
};
/* Insert or replace the series row; with exists, update its reading in
 * place (kind stays: a series never changes kind). */
int ledger_put_series(struct ledger *l, const struct ledger_series *s, struct tally_err *e);
/* An agent's row (schemas/ledger.sql, schemas/migrations/007-agents.sql):
 * the last batch committed from it and, when it ships over the network,
 * the spool its batches come from, its last contact and its spool's depth
 * as it reported it.
 *
 * ledger_put_agent: the agent's batches after from_seq up to last_seq are
 * in this transaction. The commit fails with -ESTALE, nothing of it
 * written, when the ledger's last_seq for the agent is no longer from_seq:
 * another writer committed batches of that agent meanwhile (PostgreSQL,
 * several aggregators), so what this one computed from its older series
 * state must not count. (Loaders leave from_seq 0.) */
#define LEDGER_SPOOL_ID_LEN 16
struct ledger_agent {
	const char *agent;
	uint64_t from_seq;           /* put: the seq the writer's state was built on */
	uint64_t last_seq;           /* the highest seq committed */
	int64_t last_time_ns;        /* the cycle time of that batch (data time) */
	int64_t batches;             /* batches committed in all */
	bool has_spool;              /* spool_id is known (else NULL in the row) */
	uint8_t spool_id[LEDGER_SPOOL_ID_LEN];
	uint64_t spool_first_seq;    /* 0 without a spool */
	int64_t contact_ns;          /* wall clock of the last request committed or acknowledged, 0: none */
	int64_t spool_batches;       /* as reported with it, -1: not reported */
	int64_t spool_bytes;         /* as reported with it, -1: not reported */
};
int ledger_put_agent(struct ledger *l, const struct ledger_agent *a, struct tally_err *e);
int ledger_add_event(struct ledger *l, int64_t resource_id, const char *agent,
		     const struct lifecycle_event *ev, struct tally_err *e);

/* Alert state (schemas/migrations/003-alerts.sql; aggregator/alerting.h
 * writes it through agg_set_commit_hook, inside the commit transaction).
 * state is "pending", "firing" or "resolved". Strings are borrowed. */
struct ledger_alert {
	const char *key, *labels, *annotations, *rule, *tenant, *subject, *device, *state;
	int64_t active_ns, fired_ns, resolved_ns;
	double value;
};
int ledger_put_alert(struct ledger *l, const struct ledger_alert *a, struct tally_err *e);
int ledger_del_alert(struct ledger *l, const char *key, struct tally_err *e);
typedef int (*ledger_alert_fn)(void *ctx, const struct ledger_alert *a);
int ledger_load_alerts(struct ledger *l, ledger_alert_fn fn, void *ctx, struct tally_err *e);

/* The readings behind windowed alert rules (schemas/migrations/
 * 004-alert-windows.sql), written by the same commit hook: a point (t, value)
 * of the window key; trim deletes the key's points before before_ns
 * (INT64_MAX: all of them); load calls fn for every point, by key then
 * time. key is borrowed. */
int ledger_put_window_point(struct ledger *l, const char *key, int64_t t_ns, double value,
			    struct tally_err *e);
int ledger_trim_window(struct ledger *l, const char *key, int64_t before_ns, struct tally_err *e);
typedef int (*ledger_window_fn)(void *ctx, const char *key, int64_t t_ns, double value);
int ledger_load_windows(struct ledger *l, ledger_window_fn fn, void *ctx, struct tally_err *e);

/* The latest lifecycle event of resource uuid reported by agent whose type
 * is one of types (",started,stopped,": commas around each): its type
 * into type (len bytes) and its time into *t_ns; *t_ns = 0 when there is
 * none. Returns 0 or the ledger's error. */
int ledger_last_event(struct ledger *l, const char *uuid, const char *agent, const char *types,
		      char *type, size_t len, int64_t *t_ns, struct tally_err *e);

/* Loaders for start-up: call fn for every row. Return 0 or the error. */
typedef int (*ledger_resource_fn)(void *ctx, const struct ledger_resource *r);
typedef int (*ledger_series_fn)(void *ctx, const struct ledger_series *s);
typedef int (*ledger_agent_fn)(void *ctx, const struct ledger_agent *a);
int ledger_load_resources(struct ledger *l, ledger_resource_fn fn, void *ctx, struct tally_err *e);
int ledger_load_series(struct ledger *l, ledger_series_fn fn, void *ctx, struct tally_err *e);
int ledger_load_agents(struct ledger *l, ledger_agent_fn fn, void *ctx, struct tally_err *e);

/* Usage imported as events (schemas/migrations/009-usage-events.sql),
 * inside the writer's transaction: whether (source, event_id) was
 * recorded, with its digest (hex, 64) and import time; and recording
 * one. Strings are borrowed. */
struct ledger_import_event {
	const char *source, *event_id, *device, *digest;
	int64_t resource_id, meter_id, time_ns, end_ns, quantity, imported_ns;
};
/* The tenant the ledger's row of resource uuid names now (*found false:
 * no row), read in the writer's transaction: on PostgreSQL another
 * aggregator may have written a resource this writer has not loaded. */
int ledger_resource_tenant(struct ledger *l, const char *uuid, bool *found, char *tenant, size_t len,
			   struct tally_err *e);
int ledger_import_seen(struct ledger *l, const char *source, const char *event_id, bool *found, char digest[65],
		       int64_t *imported_ns, struct tally_err *e);
int ledger_import_put(struct ledger *l, const struct ledger_import_event *ev, struct tally_err *e);

/* Tests reach the paths real faults take through common/fault.h: armed
 * for FAULT_WRITE or FAULT_COMMIT, a statement that writes or the commit
 * fails with SQLITE_FULL (-ENOSPC), as a full disk would. */

#endif
