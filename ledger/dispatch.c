/*
 * dispatch.c: the public ledger functions (ledger.h, reader.h,
 * invoices.h) handed to the backend a location names (backend.h). A
 * function given a location picks the backend from it; one given an
 * object asks the object which backend made it. No SQL here.
 */
#include "backend.h"
#include "err.h"
#include "pg_conn.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct ledger_backend *ledger_backend_for(const char *location, const char **rest)
{
	const char *colon = strchr(location, ':');
	*rest = location;
	if (!strncmp(location, "sqlite:", 7)) {
		*rest = location + 7;
		return &ledger_sqlite_backend;
	}
	if (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11))
		return &ledger_pg_backend;
	/* any other "scheme://" is a mistake, not a file name */
	if (colon && colon > location && !strncmp(colon, "://", 3) &&
	    strspn(location, "abcdefghijklmnopqrstuvwxyz0123456789+.-") == (size_t)(colon - location))
		return NULL;
	return &ledger_sqlite_backend;
}

/* The backend of location, or NULL after saying why in e. */
static const struct ledger_backend *backend(const char *location, const char **rest, struct tally_err *e)
{
	const struct ledger_backend *be = ledger_backend_for(location, rest);
	if (!be)
		err_set(e, -EINVAL, "%.*s: not a ledger location tally knows (a file, sqlite:PATH, or"
			" postgresql://...)", (int)strcspn(location, ":"), location);
	return be;
}

#define BACKEND_OR_FAIL(loc, rest)                               \
	const char *rest;                                        \
	const struct ledger_backend *be = backend(loc, &rest, e); \
	if (!be)                                                 \
		return -EINVAL

/* ---- ledger.h ---- */

int ledger_location_normalize(const char *location, char *out, size_t len, struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	if (be->normalize)
		return be->normalize(location, out, len, e);
	if (strlen(location) >= len)
		return err_set(e, -ENAMETOOLONG, "%s: too long", location);
	strcpy(out, location);
	return 0;
}

int ledger_set_statement_timeout(int ms)
{
	int was = pg_statement_timeout_ms;
	pg_statement_timeout_ms = ms;
	return was;
}

const char *ledger_location_engine(const char *location)
{
	const char *rest;
	const struct ledger_backend *be = ledger_backend_for(location, &rest);
	return be ? be->name : NULL;
}

int ledger_open(struct ledger **out, const char *location, struct tally_err *e)
{
	*out = NULL;
	BACKEND_OR_FAIL(location, rest);
	return be->open(out, rest, e);
}

void ledger_close(struct ledger *l)
{
	if (l)
		l->be->close(l);
}

void ledger_check_info(const struct ledger *l, bool *full, int64_t *ns)
{
	l->be->check_info(l, full, ns);
}

int ledger_info(const char *location, struct ledger_info *out, struct tally_err *e)
{
	memset(out, 0, sizeof(*out));
	BACKEND_OR_FAIL(location, rest);
	return be->info(rest, out, e);
}

int ledger_check_file(const char *location, struct ledger_check *out, struct tally_err *e)
{
	memset(out, 0, sizeof(*out));
	BACKEND_OR_FAIL(location, rest);
	return be->check(rest, out, e);
}

int ledger_verify(const char *location, struct ledger_verify *out, struct tally_err *e)
{
	struct ledger_snap *s;
	int64_t t0 = time_mono_ns();
	int rc;
	memset(out, 0, sizeof(*out));
	BACKEND_OR_FAIL(location, rest);
	if ((rc = be->snap_open(&s, rest, e)) == 0) {
		rc = chain_verify(s, rest, out, e);
		be->snap_close(s);
	}
	out->ns = time_mono_ns() - t0;
	return rc;
}

int ledger_begin(struct ledger *l, struct tally_err *e)
{
	return l->be->begin(l, e);
}

int ledger_commit(struct ledger *l, struct tally_err *e)
{
	return l->be->commit(l, e);
}

void ledger_rollback(struct ledger *l)
{
	l->be->rollback(l);
}

bool ledger_idle(const struct ledger *l)
{
	return l->be->idle(l);
}

int ledger_meter_id(struct ledger *l, const char *name, const char *kind, const char *unit, int64_t *id,
		    struct tally_err *e)
{
	return l->be->meter_id(l, name, kind, unit, id, e);
}

int ledger_put_resource(struct ledger *l, struct ledger_resource *r, bool known, struct tally_err *e)
{
	return l->be->put_resource(l, r, known, e);
}

int ledger_put_attrs(struct ledger *l, int64_t resource_id, const struct resource_meta *m, struct tally_err *e)
{
	return l->be->put_attrs(l, resource_id, m, e);
}

int ledger_add_usage(struct ledger *l, const struct ledger_usage *u, struct tally_err *e)
{
	return l->be->add_usage(l, u, e);
}

int ledger_put_series(struct ledger *l, const struct ledger_series *s, struct tally_err *e)
{
	return l->be->put_series(l, s, e);
}

int ledger_put_agent(struct ledger *l, const struct ledger_agent *a, struct tally_err *e)
{
	return l->be->put_agent(l, a, e);
}

int ledger_add_event(struct ledger *l, int64_t resource_id, const char *agent, const struct lifecycle_event *ev,
		     struct tally_err *e)
{
	return l->be->add_event(l, resource_id, agent, ev, e);
}

int ledger_resource_tenant(struct ledger *l, const char *uuid, bool *found, char *tenant, size_t len,
			   struct tally_err *e)
{
	return l->be->resource_tenant(l, uuid, found, tenant, len, e);
}

int ledger_import_seen(struct ledger *l, const char *source, const char *event_id, bool *found, char digest[65],
		       int64_t *imported_ns, struct tally_err *e)
{
	return l->be->import_seen(l, source, event_id, found, digest, imported_ns, e);
}

int ledger_import_put(struct ledger *l, const struct ledger_import_event *ev, struct tally_err *e)
{
	return l->be->import_put(l, ev, e);
}

int ledger_put_alert(struct ledger *l, const struct ledger_alert *a, struct tally_err *e)
{
	return l->be->put_alert(l, a, e);
}

int ledger_del_alert(struct ledger *l, const char *key, struct tally_err *e)
{
	return l->be->del_alert(l, key, e);
}

int ledger_load_alerts(struct ledger *l, ledger_alert_fn fn, void *ctx, struct tally_err *e)
{
	return l->be->load_alerts(l, fn, ctx, e);
}

int ledger_put_window_point(struct ledger *l, const char *key, int64_t t_ns, double value, struct tally_err *e)
{
	return l->be->put_window_point(l, key, t_ns, value, e);
}

int ledger_trim_window(struct ledger *l, const char *key, int64_t before_ns, struct tally_err *e)
{
	return l->be->trim_window(l, key, before_ns, e);
}

int ledger_load_windows(struct ledger *l, ledger_window_fn fn, void *ctx, struct tally_err *e)
{
	return l->be->load_windows(l, fn, ctx, e);
}

int ledger_last_event(struct ledger *l, const char *uuid, const char *agent, const char *types, char *type,
		      size_t len, int64_t *t_ns, struct tally_err *e)
{
	return l->be->last_event(l, uuid, agent, types, type, len, t_ns, e);
}

int ledger_load_resources(struct ledger *l, ledger_resource_fn fn, void *ctx, struct tally_err *e)
{
	return l->be->load_resources(l, fn, ctx, e);
}

int ledger_load_series(struct ledger *l, ledger_series_fn fn, void *ctx, struct tally_err *e)
{
	return l->be->load_series(l, fn, ctx, e);
}

int ledger_load_agents(struct ledger *l, ledger_agent_fn fn, void *ctx, struct tally_err *e)
{
	return l->be->load_agents(l, fn, ctx, e);
}

/* ---- reader.h ---- */

const char *ledger_qty_text(const struct ledger_qty *q, char *buf, size_t len)
{
	if (q->text)
		return q->text;
	if (q->type == LEDGER_QTY_INT) {
		snprintf(buf, len, "%lld", (long long)q->i);
	} else if (q->type == LEDGER_QTY_REAL) {
		snprintf(buf, len, "%.15g", q->d);
		if (!strpbrk(buf, ".eEn"))
			snprintf(buf + strlen(buf), len - strlen(buf), ".0");
	} else if (len) {
		buf[0] = '\0';
	}
	return buf;
}

int ledger_reader_open(const char *location, struct ledger_reader **out, struct tally_err *e)
{
	*out = NULL;
	BACKEND_OR_FAIL(location, rest);
	return be->reader_open(rest, out, e);
}

void ledger_reader_close(struct ledger_reader *r)
{
	if (r)
		r->be->reader_close(r);
}

int ledger_data_until(struct ledger_reader *r, int64_t *ns, struct tally_err *e)
{
	return r->be->data_until(r, ns, e);
}

int ledger_read_agents(struct ledger_reader *r, ledger_agent_row_fn fn, void *ctx, struct tally_err *e)
{
	return r->be->read_agents(r, fn, ctx, e);
}

int ledger_read_meters(struct ledger_reader *r, ledger_meter_fn fn, void *ctx, struct tally_err *e)
{
	return r->be->read_meters(r, fn, ctx, e);
}

int ledger_read_resources(struct ledger_reader *r, ledger_resource_row_fn fn, void *ctx, struct tally_err *e)
{
	return r->be->read_resources(r, fn, ctx, e);
}

int ledger_read_usage(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn, void *ctx,
		      struct tally_err *e)
{
	return r->be->read_usage(r, from_ns, to_ns, fn, ctx, e);
}

int ledger_read_instances(struct ledger_reader *r, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn,
			  void *ctx, struct tally_err *e)
{
	return r->be->read_instances(r, from_ns, to_ns, fn, ctx, e);
}

int ledger_read_events(struct ledger_reader *r, int64_t resource_id, ledger_event_fn fn, void *ctx,
		       struct tally_err *e)
{
	return r->be->read_events(r, resource_id, fn, ctx, e);
}

/* ---- invoices.h ---- */

int ledger_invoices_before(const char *location, int64_t to_ns, ledger_invoice_fn fn, void *ctx,
			   struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->invoices_before(rest, to_ns, fn, ctx, e);
}

int ledger_invoices_list(const char *location, const char *tenant, ledger_invoice_fn fn, void *ctx,
			 struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->invoices_list(rest, tenant, fn, ctx, e);
}

int ledger_invoices_find(const char *location, int64_t number, const char *issuer, ledger_invoice_fn fn,
			 void *ctx, struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->invoices_find(rest, number, issuer, fn, ctx, e);
}

int ledger_invoices_begin(const char *location, struct ledger_invoice_tx **out, struct tally_err *e)
{
	*out = NULL;
	BACKEND_OR_FAIL(location, rest);
	return be->invoices_begin(rest, out, e);
}

int ledger_invoices_overlap(struct ledger_invoice_tx *tx, const char *tenant, int64_t from_ns, int64_t to_ns,
			    ledger_invoice_fn fn, void *ctx, struct tally_err *e)
{
	return tx->be->invoices_overlap(tx, tenant, from_ns, to_ns, fn, ctx, e);
}

int ledger_invoices_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				struct tally_err *e)
{
	return tx->be->invoices_next_number(tx, issuer, number, e);
}

int ledger_invoices_insert(struct ledger_invoice_tx *tx, const struct ledger_invoice *inv, size_t doc_len,
			   int64_t *id, struct tally_err *e)
{
	return tx->be->invoices_insert(tx, inv, doc_len, id, e);
}

int ledger_invoices_adjust(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t for_id, int64_t amount_minor,
			   struct tally_err *e)
{
	return tx->be->invoices_adjust(tx, invoice_id, for_id, amount_minor, e);
}

int ledger_invoices_commit(struct ledger_invoice_tx *tx, struct tally_err *e)
{
	return tx->be->invoices_commit(tx, e);
}

void ledger_invoices_abort(struct ledger_invoice_tx *tx)
{
	if (tx)
		tx->be->invoices_abort(tx);
}

int ledger_credit_notes_credited(struct ledger_invoice_tx *tx, int64_t invoice_id, int64_t *subtotal_minor,
				 int64_t *total_minor, bool *cancelled, struct tally_err *e)
{
	return tx->be->credit_notes_credited(tx, invoice_id, subtotal_minor, total_minor, cancelled, e);
}

int ledger_credit_notes_next_number(struct ledger_invoice_tx *tx, const char *issuer, int64_t *number,
				    struct tally_err *e)
{
	return tx->be->credit_notes_next_number(tx, issuer, number, e);
}

int ledger_credit_notes_insert(struct ledger_invoice_tx *tx, const struct ledger_credit_note *cn, size_t doc_len,
			       int64_t *id, struct tally_err *e)
{
	return tx->be->credit_notes_insert(tx, cn, doc_len, id, e);
}

int ledger_credit_notes_find(const char *location, int64_t number, const char *issuer, ledger_credit_note_fn fn,
			     void *ctx, struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->credit_notes_find(rest, number, issuer, fn, ctx, e);
}

int ledger_credit_notes_list(const char *location, const char *tenant, ledger_credit_note_fn fn, void *ctx,
			     struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->credit_notes_list(rest, tenant, fn, ctx, e);
}

/* ---- charges.h ---- */

int ledger_charges_add(const char *location, const struct ledger_charge *c, int64_t *id, struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->charges_add(rest, c, id, e);
}

int ledger_charges_read(const char *location, const char *tenant, int64_t from_ns, int64_t to_ns, ledger_charge_fn fn,
			void *ctx, struct tally_err *e)
{
	BACKEND_OR_FAIL(location, rest);
	return be->charges_read(rest, tenant, from_ns, to_ns, fn, ctx, e);
}
