/*
 * pg_conn.h: inside the PostgreSQL backend (backend.h): one libpq
 * connection and what every part of the backend does with it.
 *
 * A location is a libpq URI ("postgresql://[user@][host][:port][/db]
 * [?param=value&...]"); what it leaves out comes from the PG* environment
 * variables and ~/.pgpass as libpq does it (sslmode too). The ledger is
 * the set of tally's tables in the connection's current schema (the first
 * of search_path that exists: "public" unless options=-csearch_path=...
 * says another), so one database can hold several ledgers.
 *
 * A password never appears in a message: pgc_connect names the connection
 * by its location with the password replaced by "***", and
 * pg_location_normalize takes a password out of a location for good (kept
 * in this process only, handed to libpq at connect).
 *
 * Errors become negative errnos with a message naming the ledger:
 * -ECONNREFUSED (no server answered, or no such database), -EACCES (the
 * role may not log in or lacks a privilege), -ETIMEDOUT (the statement
 * timeout), -ENOSPC (the server's disk is full), -EAGAIN (a deadlock or a
 * serialization failure: try again), -ENOTCONN (the connection was lost),
 * -EIO (anything else).
 */
#ifndef TALLY_LEDGER_PG_CONN_H
#define TALLY_LEDGER_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct tally_err;

struct pgc {
	PGconn *c;
	char *location;              /* as given, owned */
	char name[512];              /* the location with any password hidden: for messages */
	int cursors;                 /* cursors declared, for unique names */
	void (*done)(void *ctx, PGresult *r);   /* a query sent by pgc_send, not yet settled */
	void *done_ctx;
	struct pgc *bg;              /* its answer read while this one waits (pgc_wait), or NULL */
	void (*idle)(void *ctx);     /* run once while this one waits, bg settled (pgc_wait), or NULL */
	void *idle_ctx;
};

/* Connect to location as app (application_name unless the location sets
 * one). Returns 0 or an errno as above; p->c is NULL on failure. */
int pgc_connect(struct pgc *p, const char *location, const char *app, struct tally_err *e);
void pgc_close(struct pgc *p);
/* Reconnect a connection that was lost (PQreset); 0 or -ENOTCONN. */
int pgc_ensure(struct pgc *p, struct tally_err *e);

/* The errno for a failed result (or the connection when r is NULL), with
 * "name: what: server's message" in e. */
int pgc_fail(struct pgc *p, const PGresult *r, const char *what, struct tally_err *e);

/* Run sql (no rows expected). */
int pgc_exec(struct pgc *p, const char *sql, const char *what, struct tally_err *e);
/* Run sql with n text parameters (NULL for SQL NULL); rows in binary
 * format. Returns the result (PQclear it) or NULL after pgc_fail. */
PGresult *pgc_query(struct pgc *p, const char *sql, int n, const char *const *params, const char *what,
		    struct tally_err *e);

/* Send sql (n text parameters; rows in binary format) without waiting
 * for it, so the server works on it while this process goes on. Its
 * result goes to done(ctx, r) (done owns r; NULL when the query failed)
 * at the next use of the connection: every pgc_ call settles it first, and
 * pgc_settle does before a call of libpq itself. At most one is in flight:
 * a second send settles the first. Returns 0, or -ENOTCONN (nothing sent,
 * done is not called). */
typedef void (*pgc_done_fn)(void *ctx, PGresult *r);
int pgc_send(struct pgc *p, const char *sql, int n, const char *const *params, pgc_done_fn done, void *ctx);
void pgc_settle(struct pgc *p);

/* Wait until p's answer can be read without blocking. Meanwhile the
 * answer on its way on p->bg (a pgc_send there) is read as it comes and
 * settled once whole: a large one would otherwise stop its server at a
 * full socket until this process asked for it. Then, if p's server is
 * still at work, p->idle runs (once: it is cleared first), so that this
 * process's own work on that answer overlaps the server's. pgc_exec and
 * pgc_query wait so; call it before PQgetResult on p. */
void pgc_wait(struct pgc *p);

/* Every row of sql (n text parameters) to fn, fetched through a cursor
 * 50000 rows at a time in binary format, so a result of any size streams
 * and fn may run other queries (other cursors) meanwhile. Needs an open
 * transaction. Returns 0, fn's non-zero return, or an errno. */
typedef int (*pgc_row_fn)(void *ctx, const PGresult *r, int row);
int pgc_each(struct pgc *p, const char *sql, int n, const char *const *params, pgc_row_fn fn, void *ctx,
	     const char *what, struct tally_err *e);

/* Binary column values (SQL types: bigint, double precision, text,
 * bytea, boolean). A text value is NUL-terminated ("" for NULL). */
int64_t pgv_i64(const PGresult *r, int row, int col);
double pgv_f64(const PGresult *r, int row, int col);
const char *pgv_text(const PGresult *r, int row, int col);
bool pgv_null(const PGresult *r, int row, int col);
bool pgv_bool(const PGresult *r, int row, int col);

/* A decimal parameter. */
struct pgnum {
	char s[32];
};
const char *pgn_i64(struct pgnum *b, int64_t v);
const char *pgn_f64(struct pgnum *b, double v);   /* exact: %.17g */

/* The ledger's identity in the connection's current schema: *schema its
 * name; *state 0: no tables at all (a new ledger), 1: tally's (app and
 * version read), -1: tables of someone else. Returns 0 or an errno. */
int pg_identify(struct pgc *p, char *schema, size_t len, int *state, int64_t *app, int64_t *version,
		struct tally_err *e);
/* Refuse (-ENOENT, -EINVAL, -EPROTO with a message) a ledger readers
 * cannot read: none there, someone else's tables, another version. */
int pg_check_readable(struct pgc *p, struct tally_err *e);

/* The advisory lock every writer's commit takes (per schema). */
#define PG_COMMIT_LOCK "SELECT pg_advisory_xact_lock(1952541804, hashtext(current_schema()))"

/* How long one statement may run (ms, 0: no limit) on the connections
 * this process makes from now on; tallyd sets ledger.statement_timeout. */
extern int pg_statement_timeout_ms;

/* backend.h's normalize on PostgreSQL. */
int pg_location_normalize(const char *location, char *out, size_t len, struct tally_err *e);

/* pg_reader.c and pg_invoices.c: reader.h and invoices.h on PostgreSQL */
int pg_reader_open(const char *location, struct ledger_reader **out, struct tally_err *e);
void pg_reader_close(struct ledger_reader *r);
int pg_data_until(struct ledger_reader *r, int64_t *ns, struct tally_err *e);
int pg_read_meters(struct ledger_reader *r, ledger_meter_fn fn, void *ctx, struct tally_err *e);
int pg_read_agents(struct ledger_reader *r, ledger_agent_row_fn fn, void *ctx, struct tally_err *e);
int pg_read_resources(struct ledger_reader *r, ledger_resource_row_fn fn, void *ctx, struct tally_err *e);
int pg_read_usage(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn, void *ctx,
		  struct tally_err *e);
int pg_read_instances(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn, void *ctx,
		      struct tally_err *e);
int pg_read_events(struct ledger_reader *r, int64_t resource_id, ledger_event_fn fn, void *ctx,
		   struct tally_err *e);
int pg_invoices_before(const char *location, int64_t to_ns, ledger_invoice_fn fn, void *ctx, struct tally_err *e);
int pg_invoices_list(const char *location, const char *tenant, ledger_invoice_fn fn, void *ctx,
		     struct tally_err *e);
int pg_invoices_find(const char *location, int64_t number, const char *issuer, ledger_invoice_fn fn, void *ctx,
		     struct tally_err *e);
int pg_invoices_begin(const char *location, struct ledger_invoice_tx **out, struct tally_err *e);
int pg_invoices_overlap(struct ledger_invoice_tx *tx, const char *tenant, int64_t from_ns, int64_t to_ns,
			ledger_invoice_fn fn, void *ctx, struct tally_err *e);
int pg_invoices_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
			    struct tally_err *e);
int pg_invoices_insert(struct ledger_invoice_tx *tx, const struct ledger_invoice *inv, size_t doc_len, int64_t *id,
		       struct tally_err *e);
int pg_invoices_adjust(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t for_id, int64_t amount_minor,
		       struct tally_err *e);
int pg_invoices_commit(struct ledger_invoice_tx *tx, struct tally_err *e);
void pg_invoices_abort(struct ledger_invoice_tx *tx);
int pg_credit_notes_credited(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t *subtotal_minor,
			     int64_t *total_minor, bool *cancelled, struct tally_err *e);
int pg_credit_notes_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				struct tally_err *e);
int pg_credit_notes_insert(struct ledger_invoice_tx *tx, const struct ledger_credit_note *cn, size_t doc_len,
			   int64_t *id, struct tally_err *e);
int pg_credit_notes_find(const char *location, int64_t number, const char *issuer, ledger_credit_note_fn fn,
			 void *ctx, struct tally_err *e);
int pg_credit_notes_list(const char *location, const char *tenant, ledger_credit_note_fn fn, void *ctx,
			 struct tally_err *e);
int pg_charges_add(const char *location, const struct ledger_charge *c, int64_t *id, struct tally_err *e);
int pg_charges_read(const char *location, const char *tenant, int64_t from_ns, int64_t to_ns, ledger_charge_fn fn,
		    void *ctx, struct tally_err *e);

#endif
