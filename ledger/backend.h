/*
 * backend.h: the ledger's backend boundary. Everything that reads or
 * writes a ledger goes through one struct ledger_backend, a table of
 * function pointers with two implementations: SQLite (sqlite*.c, the
 * default, one file) and PostgreSQL (pg*.c, libpq). The public headers
 * (ledger.h for the writer, reader.h for billing and the exporters,
 * invoices.h for the issued-invoice store, copy.h) dispatch through it
 * (dispatch.c), so no SQL of either engine is outside these files.
 *
 * Which backend a ledger location names (ledger_backend_for): a
 * "postgresql://" or "postgres://" URI is PostgreSQL (libpq's own URI
 * syntax; what it leaves out comes from the PG* environment variables);
 * "sqlite:PATH" or anything else is an SQLite file.
 *
 * Adding a table: a new schema version in both schemas/migrations/ and
 * schemas/pg/migrations/ (the build refuses two counts that differ), the
 * operations on it here (one group per table, below), both
 * implementations, and its entry in tables.c so that `tally ledger copy`
 * carries it.
 *
 * Every object a backend hands out starts with the backend it came from
 * (struct ledger, ledger_reader, ledger_invoice_tx, ledger_snap): the
 * dispatcher reads it, the backend casts to its own struct.
 */
#ifndef TALLY_LEDGER_BACKEND_H
#define TALLY_LEDGER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "charges.h"
#include "invoices.h"
#include "ledger.h"
#include "reader.h"
#include "tables.h"

struct tally_err;
struct ledger_backend;

/* The head of every backend object. */
struct ledger { const struct ledger_backend *be; };
struct ledger_reader { const struct ledger_backend *be; };
struct ledger_invoice_tx { const struct ledger_backend *be; };
struct ledger_snap { const struct ledger_backend *be; };
struct ledger_copy { const struct ledger_backend *be; };

struct ledger_backend {
	const char *name;            /* "sqlite", "postgresql" */
	/* ledger_location_normalize (ledger.h); NULL: the location as given */
	int (*normalize)(const char *location, char *out, size_t len, struct tally_err *e);

	/* ---- the writer (ledger.h): one per ledger and process ---- */
	int (*open)(struct ledger **out, const char *location, struct tally_err *e);
	void (*close)(struct ledger *l);
	void (*check_info)(const struct ledger *l, bool *full, int64_t *ns);
	int (*begin)(struct ledger *l, struct tally_err *e);
	int (*commit)(struct ledger *l, struct tally_err *e);
	void (*rollback)(struct ledger *l);
	bool (*idle)(const struct ledger *l);
	/* meters */
	int (*meter_id)(struct ledger *l, const char *name, const char *kind, const char *unit, int64_t *id,
			struct tally_err *e);
	/* resources and resource_attrs */
	int (*put_resource)(struct ledger *l, struct ledger_resource *r, bool known, struct tally_err *e);
	int (*put_attrs)(struct ledger *l, int64_t resource_id, const struct resource_meta *m, struct tally_err *e);
	int (*load_resources)(struct ledger *l, ledger_resource_fn fn, void *ctx, struct tally_err *e);
	/* usage (and the hash chain, which the backend keeps with it) */
	int (*add_usage)(struct ledger *l, const struct ledger_usage *u, struct tally_err *e);
	/* series */
	int (*put_series)(struct ledger *l, const struct ledger_series *s, struct tally_err *e);
	int (*load_series)(struct ledger *l, ledger_series_fn fn, void *ctx, struct tally_err *e);
	/* agents */
	int (*put_agent)(struct ledger *l, const struct ledger_agent *a, struct tally_err *e);
	int (*load_agents)(struct ledger *l, ledger_agent_fn fn, void *ctx, struct tally_err *e);
	/* events */
	int (*add_event)(struct ledger *l, int64_t resource_id, const char *agent, const struct lifecycle_event *ev,
			 struct tally_err *e);
	int (*last_event)(struct ledger *l, const char *uuid, const char *agent, const char *types, char *type,
			  size_t len, int64_t *t_ns, struct tally_err *e);
	/* alerts */
	int (*put_alert)(struct ledger *l, const struct ledger_alert *a, struct tally_err *e);
	int (*del_alert)(struct ledger *l, const char *key, struct tally_err *e);
	int (*load_alerts)(struct ledger *l, ledger_alert_fn fn, void *ctx, struct tally_err *e);
	/* usage_events (tally import), inside the writer's transaction */
	int (*resource_tenant)(struct ledger *l, const char *uuid, bool *found, char *tenant, size_t len,
			       struct tally_err *e);
	int (*import_seen)(struct ledger *l, const char *source, const char *event_id, bool *found, char digest[65],
			   int64_t *imported_ns, struct tally_err *e);
	int (*import_put)(struct ledger *l, const struct ledger_import_event *ev, struct tally_err *e);
	/* alert_windows */
	int (*put_window_point)(struct ledger *l, const char *key, int64_t t_ns, double value, struct tally_err *e);
	int (*trim_window)(struct ledger *l, const char *key, int64_t before_ns, struct tally_err *e);
	int (*load_windows)(struct ledger *l, ledger_window_fn fn, void *ctx, struct tally_err *e);

	/* ---- checks without the writer ---- */
	int (*info)(const char *location, struct ledger_info *out, struct tally_err *e);
	int (*check)(const char *location, struct ledger_check *out, struct tally_err *e);
	/* one read-only snapshot for chain_verify: the chain in (id, hour)
	 * order, all usage in primary-key order, chain_hours rows of no
	 * commit. snap_open refuses a location that is not a ledger
	 * (-ENOENT, -EINVAL) or has no chain (-EPROTO), like ledger_verify. */
	int (*snap_open)(struct ledger_snap **out, const char *location, struct tally_err *e);
	int (*snap_links)(struct ledger_snap *s, ledger_link_fn fn, void *ctx, struct tally_err *e);
	int (*snap_usage)(struct ledger_snap *s, ledger_row_fn fn, void *ctx, struct tally_err *e);
	int (*snap_orphans)(struct ledger_snap *s, int64_t *n, struct tally_err *e);
	void (*snap_close)(struct ledger_snap *s);

	/* ---- readers (reader.h) ---- */
	int (*reader_open)(const char *location, struct ledger_reader **out, struct tally_err *e);
	void (*reader_close)(struct ledger_reader *r);
	int (*data_until)(struct ledger_reader *r, int64_t *ns, struct tally_err *e);
	int (*read_meters)(struct ledger_reader *r, ledger_meter_fn fn, void *ctx, struct tally_err *e);
	int (*read_agents)(struct ledger_reader *r, ledger_agent_row_fn fn, void *ctx, struct tally_err *e);
	int (*read_resources)(struct ledger_reader *r, ledger_resource_row_fn fn, void *ctx, struct tally_err *e);
	int (*read_usage)(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn,
			  void *ctx, struct tally_err *e);
	int (*read_instances)(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn,
			      void *ctx, struct tally_err *e);
	int (*read_events)(struct ledger_reader *r, int64_t resource_id, ledger_event_fn fn, void *ctx,
			   struct tally_err *e);

	/* ---- issued invoices (invoices.h): invoices, invoice_adjustments ---- */
	int (*invoices_before)(const char *location, int64_t to_ns, ledger_invoice_fn fn, void *ctx,
			       struct tally_err *e);
	int (*invoices_list)(const char *location, const char *tenant, ledger_invoice_fn fn, void *ctx,
			     struct tally_err *e);
	int (*invoices_find)(const char *location, int64_t number, const char *issuer, ledger_invoice_fn fn,
			     void *ctx, struct tally_err *e);
	int (*invoices_begin)(const char *location, struct ledger_invoice_tx **out, struct tally_err *e);
	int (*invoices_overlap)(struct ledger_invoice_tx *tx, const char *tenant, int64_t from_ns, int64_t to_ns,
				ledger_invoice_fn fn, void *ctx, struct tally_err *e);
	int (*invoices_next_number)(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				    struct tally_err *e);
	int (*invoices_insert)(struct ledger_invoice_tx *tx, const struct ledger_invoice *inv, size_t doc_len,
			       int64_t *id, struct tally_err *e);
	int (*invoices_adjust)(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t for_id,
			       int64_t amount_minor, struct tally_err *e);
	int (*invoices_commit)(struct ledger_invoice_tx *tx, struct tally_err *e);
	void (*invoices_abort)(struct ledger_invoice_tx *tx);
	/* credit_notes (invoices.h), in an issuing transaction or read alone */
	int (*credit_notes_credited)(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t *subtotal_minor,
				     int64_t *total_minor, bool *cancelled, struct tally_err *e);
	int (*credit_notes_next_number)(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
					struct tally_err *e);
	int (*credit_notes_insert)(struct ledger_invoice_tx *tx, const struct ledger_credit_note *cn, size_t doc_len,
				   int64_t *id, struct tally_err *e);
	int (*credit_notes_find)(const char *location, int64_t number, const char *issuer, ledger_credit_note_fn fn,
				 void *ctx, struct tally_err *e);
	int (*credit_notes_list)(const char *location, const char *tenant, ledger_credit_note_fn fn, void *ctx,
				 struct tally_err *e);

	/* ---- charges (charges.h) ---- */
	int (*charges_add)(const char *location, const struct ledger_charge *c, int64_t *id, struct tally_err *e);
	int (*charges_read)(const char *location, const char *tenant, int64_t from_ns, int64_t to_ns,
			    ledger_charge_fn fn, void *ctx, struct tally_err *e);

	/* ---- whole tables, for `tally ledger copy` (copy.h, tables.h) ---- */
	/* A source: one read-only snapshot of a ledger at the current
	 * version. A target (target true): the ledger created or migrated to
	 * the current version, its writer's lock (SQLite) or commit lock
	 * (PostgreSQL) taken, one transaction begun; -EEXIST when any of its
	 * tables holds a row. */
	int (*copy_open)(struct ledger_copy **out, const char *location, bool target, struct tally_err *e);
	/* the rows of t in t->order, one ledger_value per column */
	int (*copy_read)(struct ledger_copy *c, const struct ledger_table *t, ledger_tuple_fn fn, void *ctx,
			 struct tally_err *e);
	/* target: one row of t (written by copy_flush, or at once) */
	int (*copy_write)(struct ledger_copy *c, const struct ledger_table *t, const struct ledger_value *v,
			  struct tally_err *e);
	int (*copy_flush)(struct ledger_copy *c, const struct ledger_table *t, struct tally_err *e);
	int (*copy_commit)(struct ledger_copy *c, struct tally_err *e);
	/* rolls back what was not committed */
	void (*copy_close)(struct ledger_copy *c);

};

extern const struct ledger_backend ledger_sqlite_backend;
extern const struct ledger_backend ledger_pg_backend;

/* The backend of location, and in *rest what it takes (the path of an
 * SQLite file; a PostgreSQL URI as given). */
const struct ledger_backend *ledger_backend_for(const char *location, const char **rest);

#endif
