/*
 * reader.h: the ledger's read interface, for billing and the exporters.
 *
 * Everything that reads usage, resources, events or meters out of the
 * ledger goes through these functions; each backend (backend.h) implements
 * them, so the callers do not know which engine holds the ledger. A reader
 * is one read-only connection (a missing ledger, not a ledger, another
 * schema version: refused); it never takes the writer's lock and reads
 * beside a running tallyd (SQLite's WAL; on PostgreSQL one repeatable-read
 * snapshot for the reader's life).
 *
 * Rows are handed to a callback one at a time; strings in a row are
 * borrowed until the callback returns (never NULL: "" when the ledger has
 * none). A callback returns 0 to go on or a negative errno, which the
 * reading function returns at once. The functions return 0, that errno,
 * or -EIO / -ENOMEM with a message in e.
 */
#ifndef TALLY_LEDGER_READER_H
#define TALLY_LEDGER_READER_H

#include <stdbool.h>
#include <stdint.h>

struct tally_err;
struct ledger_reader;

/* location: as ledger_open's. Returns 0; -ENOENT (no ledger), -EINVAL
 * (not a ledger), -EPROTO (another schema version), -EIO, and on
 * PostgreSQL -ECONNREFUSED / -EACCES; message in e. */
int ledger_reader_open(const char *location, struct ledger_reader **out, struct tally_err *e);
void ledger_reader_close(struct ledger_reader *r);

/* The data time of the newest batch any agent committed (0: none). */
int ledger_data_until(struct ledger_reader *r, int64_t *ns, struct tally_err *e);

/* Every agent whose batches the ledger holds (the `agents` table,
 * schemas/migrations/007-agents.sql), by agent id: the last seq committed
 * and its data time, and what an aggregator knew of it (`tally agents`).
 * spool_id is NULL when the batches came from no spool. */
struct ledger_agent_row {
	const char *agent;
	uint64_t last_seq;
	int64_t last_time_ns;        /* data time of the last committed batch */
	int64_t batches;
	const uint8_t *spool_id;     /* 16 bytes, or NULL */
	uint64_t spool_first_seq;
	int64_t contact_ns;          /* the aggregator's wall clock, 0: none recorded */
	int64_t spool_batches, spool_bytes;   /* -1: not reported */
};
typedef int (*ledger_agent_row_fn)(void *ctx, const struct ledger_agent_row *row);
int ledger_read_agents(struct ledger_reader *r, ledger_agent_row_fn fn, void *ctx, struct tally_err *e);

/* Every meter the ledger knows: its id and name. */
typedef int (*ledger_meter_fn)(void *ctx, int64_t id, const char *name);
int ledger_read_meters(struct ledger_reader *r, ledger_meter_fn fn, void *ctx, struct tally_err *e);

/* Every resource with each of its attribute intervals, by resource id then
 * since_ns; a resource never described comes once with has_attrs false. */
struct ledger_resource_row {
	int64_t id;
	const char *uuid, *name, *host, *type;
	int64_t first_seen_ns, last_seen_ns;
	bool has_attrs;
	int64_t since_ns;
	const char *tenant, *attr_name, *flavor, *project, *user, *labels;
};
typedef int (*ledger_resource_row_fn)(void *ctx, const struct ledger_resource_row *row);
int ledger_read_resources(struct ledger_reader *r, ledger_resource_row_fn fn, void *ctx,
			  struct tally_err *e);

/* A usage quantity as stored: a counter's INTEGER, a gauge's REAL
 * unit-seconds, or something tally never writes (text: its text). */
enum ledger_qty_type { LEDGER_QTY_INT, LEDGER_QTY_REAL, LEDGER_QTY_OTHER };
struct ledger_qty {
	enum ledger_qty_type type;
	int64_t i;
	double d;
	const char *text;            /* the value as text, for messages; NULL: ledger_qty_text makes it */
};

/* The quantity as text, as SQLite prints it ("12345", "-7200.0"): q->text
 * when the backend gave one, else formatted into buf. Only for messages:
 * a backend reading millions of rows need not format each. */
const char *ledger_qty_text(const struct ledger_qty *q, char *buf, size_t len);

/* Every usage row with hour_ns in [from_ns, to_ns) of a series the
 * ledger keeps, in the order the backend reads them fastest: SQLite's
 * series by series in key order (its table is kept in key order),
 * PostgreSQL's in the order its table holds them (hour by hour, as they
 * were written). A caller must not depend on the order. */
struct ledger_usage_row {
	int64_t resource_id, meter_id, hour_ns;
	struct ledger_qty qty;
	int64_t covered_ns, spanned_ns, samples;
	const char *device;
};
typedef int (*ledger_usage_row_fn)(void *ctx, const struct ledger_usage_row *row);
int ledger_read_usage(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn,
		      void *ctx, struct tally_err *e);

/* Usage summed per tenant (and resource or hour) and meter over
 * [from_ns, to_ns): the usage report (docs/usage.md). The tenant of an
 * hour is the one the resource had at the hour's start. The sum is exact:
 * milli-units in a 128-bit integer, an INTEGER row v x 1000, a REAL one
 * its exact value x 1000 rounded once half to even (exact.h), as rating
 * takes them. */
enum ledger_group { LEDGER_BY_TENANT, LEDGER_BY_RESOURCE, LEDGER_BY_HOUR };
struct ledger_usage_filter {
	int64_t from_ns, to_ns;
	const char *resource;        /* uuid, or NULL: all */
	const char *meter;           /* name, or NULL: all */
	const char *tenant;          /* or NULL: all */
	enum ledger_group by;
	const char *where;           /* the ledger's location, for messages (NULL: "the ledger") */
};
struct ledger_usage_sum {
	const char *tenant;
	const char *resource, *name; /* LEDGER_BY_RESOURCE */
	int64_t hour_ns;             /* LEDGER_BY_HOUR */
	const char *meter;
	__int128 milli;              /* the sum x 1000, < 2^120 */
	bool is_real;                /* some row was REAL */
	int64_t covered_ns, spanned_ns, samples;
};
typedef int (*ledger_usage_sum_fn)(void *ctx, const struct ledger_usage_sum *row);
int ledger_sum_usage(struct ledger_reader *r, const struct ledger_usage_filter *f, ledger_usage_sum_fn fn,
		     void *ctx, struct tally_err *e);

/* Every VM (resource type 'instance') seen before to_ns, by id, with the
 * attributes it had at max(from_ns, its first sight) (or its first ones
 * when described later). */
struct ledger_instance_row {
	int64_t id;
	const char *uuid, *name, *host;
	int64_t first_seen_ns, last_seen_ns;
	const char *tenant, *flavor, *labels, *project, *user, *attr_name;
};
typedef int (*ledger_instance_fn)(void *ctx, const struct ledger_instance_row *row);
int ledger_read_instances(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn,
			  void *ctx, struct tally_err *e);

/* Every lifecycle event of resource id, by time (all of them: an incident
 * that runs past a period is shown with the end it really had). May be
 * called from inside ledger_read_instances' callback. */
typedef int (*ledger_event_fn)(void *ctx, int64_t t_ns, const char *type, const char *reason);
int ledger_read_events(struct ledger_reader *r, int64_t resource_id, ledger_event_fn fn, void *ctx,
		       struct tally_err *e);

#endif
