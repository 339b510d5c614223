/*
 * sqlite_reader.c: the ledger's read interface on SQLite (reader.h,
 * through backend.h): the queries behind the rating, the usage report
 * (usage_sum.c), the SLA and the data's age, in one read transaction for
 * the reader's life (one snapshot from its first read, as pg_reader.c's:
 * a rating reads the resources, then the usage, and must not find usage
 * of a resource that was committed in between). The ledger is in WAL
 * mode: tallyd goes on committing meanwhile; a checkpoint cannot pass the
 * reader's snapshot until it closes.
 */
#include "backend.h"
#include "fault.h"
#include "err.h"
#include "sqlite_ro.h"
#include "str.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_reader {
	struct ledger_reader base;
	sqlite3 *db;
	sqlite3_stmt *events;        /* ledger_read_events', prepared on first use */
	char path[4096];
};

static int failed(struct sq_reader *r, const char *what, struct tally_err *e)
{
	return err_set(e, -EIO, "%s: cannot read %s: %s", r->path, what, sqlite3_errmsg(r->db));
}

int sq_reader_open(const char *path, struct ledger_reader **out, struct tally_err *e)
{
	struct sq_reader *r = fault_calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return err_set(e, -ENOMEM, "out of memory");
	r->base.be = &ledger_sqlite_backend;
	str_copy(r->path, path, sizeof(r->path));
	if ((rc = ledger_ro_open(path, &r->db, e))) {
		free(r);
		return rc;
	}
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		rc = failed(r, "(cannot begin)", e);
		sqlite3_close(r->db);
		free(r);
		return rc;
	}
	*out = &r->base;
	return 0;
}

void sq_reader_close(struct ledger_reader *rb)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	if (!r)
		return;
	sqlite3_finalize(r->events);
	sqlite3_close(r->db);
	free(r);
}

int sq_data_until(struct ledger_reader *rb, int64_t *ns, struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	sqlite3_stmt *st = NULL;
	int rc = 0;

	*ns = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT coalesce(max(last_time_ns), 0) FROM agents", -1, &st, NULL) !=
	    SQLITE_OK)
		return failed(r, "agents", e);
	if (sqlite3_step(st) == SQLITE_ROW)
		*ns = sqlite3_column_int64(st, 0);
	else
		rc = failed(r, "agents", e);
	sqlite3_finalize(st);
	return rc;
}

int sq_read_agents(struct ledger_reader *rb, ledger_agent_row_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT agent, last_seq, last_time_ns, batches, spool_id, spool_first_seq,"
			       " contact_ns, spool_batches, spool_bytes FROM agents ORDER BY agent", -1, &st,
			       NULL) != SQLITE_OK)
		return failed(r, "agents", e);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *id = sqlite3_column_blob(st, 4);
		struct ledger_agent_row row = {
			.agent = ledger_col_text(st, 0),
			.last_seq = (uint64_t)sqlite3_column_int64(st, 1),
			.last_time_ns = sqlite3_column_int64(st, 2),
			.batches = sqlite3_column_int64(st, 3),
			.spool_id = id && sqlite3_column_bytes(st, 4) == 16 ? id : NULL,
			.spool_first_seq = (uint64_t)sqlite3_column_int64(st, 5),
			.contact_ns = sqlite3_column_int64(st, 6),
			.spool_batches = sqlite3_column_int64(st, 7),
			.spool_bytes = sqlite3_column_int64(st, 8),
		};
		if ((rc = fn(ctx, &row))) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = failed(r, "agents", e);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	return 0;
}

int sq_read_meters(struct ledger_reader *rb, ledger_meter_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT id, name FROM meters", -1, &st, NULL) != SQLITE_OK)
		return failed(r, "meters", e);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((rc = fn(ctx, sqlite3_column_int64(st, 0), ledger_col_text(st, 1))))
			goto out;
	rc = rc == SQLITE_DONE ? 0 : failed(r, "meters", e);
out:
	sqlite3_finalize(st);
	return rc;
}

int sq_read_resources(struct ledger_reader *rb, ledger_resource_row_fn fn, void *ctx,
			  struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	static const char sql[] =
		"SELECT r.id, r.uuid, r.name, r.first_seen_ns, r.last_seen_ns, r.host,"
		" a.since_ns, a.tenant, a.name, a.flavor, a.project, a.user_id, a.labels, r.type,"
		" a.resource_id IS NOT NULL"
		" FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id"
		" ORDER BY r.id, a.since_ns";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return failed(r, "resources", e);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_resource_row row = {
			.id = sqlite3_column_int64(st, 0), .uuid = ledger_col_text(st, 1), .name = ledger_col_text(st, 2),
			.first_seen_ns = sqlite3_column_int64(st, 3), .last_seen_ns = sqlite3_column_int64(st, 4),
			.host = ledger_col_text(st, 5), .since_ns = sqlite3_column_int64(st, 6),
			.tenant = ledger_col_text(st, 7), .attr_name = ledger_col_text(st, 8), .flavor = ledger_col_text(st, 9),
			.project = ledger_col_text(st, 10), .user = ledger_col_text(st, 11), .labels = ledger_col_text(st, 12),
			.type = ledger_col_text(st, 13), .has_attrs = sqlite3_column_int(st, 14) != 0,
		};
		if ((rc = fn(ctx, &row)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : failed(r, "resources", e);
out:
	sqlite3_finalize(st);
	return rc;
}

int sq_read_usage(struct ledger_reader *rb, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn,
		      void *ctx, struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	/* Driven by the series table: one primary-key range seek per series
	 * (resource, meter, device), so exactly the period's rows are read, in
	 * key order. Every usage row has its series row (the aggregator writes
	 * both in one transaction and never deletes series); the hour index
	 * would instead cost a key lookup per row, six times slower. */
	static const char sql[] =
		"SELECT u.resource_id, u.meter_id, u.hour_ns, u.quantity, u.covered_ns, u.spanned_ns, u.device,"
		" u.samples"
		" FROM (SELECT DISTINCT resource_id, meter_id, device FROM series) s CROSS JOIN usage u"
		" WHERE u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device"
		" AND u.hour_ns >= ?1 AND u.hour_ns < ?2";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return failed(r, "usage", e);
	sqlite3_bind_int64(st, 1, from_ns);
	sqlite3_bind_int64(st, 2, to_ns);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_usage_row row = {
			.resource_id = sqlite3_column_int64(st, 0), .meter_id = sqlite3_column_int64(st, 1),
			.hour_ns = sqlite3_column_int64(st, 2), .covered_ns = sqlite3_column_int64(st, 4),
			.spanned_ns = sqlite3_column_int64(st, 5), .device = ledger_col_text(st, 6),
			.samples = sqlite3_column_int64(st, 7),
		};
		switch (sqlite3_column_type(st, 3)) {
		case SQLITE_INTEGER:
			row.qty.type = LEDGER_QTY_INT;
			row.qty.i = sqlite3_column_int64(st, 3);
			break;
		case SQLITE_FLOAT:
			row.qty.type = LEDGER_QTY_REAL;
			row.qty.d = sqlite3_column_double(st, 3);
			break;
		default:
			row.qty.type = LEDGER_QTY_OTHER;
			break;
		}
		row.qty.text = ledger_col_text(st, 3);
		if ((rc = fn(ctx, &row)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : failed(r, "usage", e);
out:
	sqlite3_finalize(st);
	return rc;
}

int sq_read_instances(struct ledger_reader *rb, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn,
			  void *ctx, struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	static const char sql[] =
		"SELECT r.id, r.uuid, r.name, r.first_seen_ns, r.last_seen_ns, r.host,"
		" coalesce(a.tenant, r.tenant), coalesce(a.flavor, r.flavor), coalesce(a.labels, r.labels),"
		" coalesce(a.project, r.project), coalesce(a.user_id, r.user_id), coalesce(a.name, r.name)"
		" FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id AND a.since_ns = coalesce("
		"  (SELECT max(since_ns) FROM resource_attrs x WHERE x.resource_id = r.id"
		"   AND x.since_ns <= max(?1, r.first_seen_ns)),"
		"  (SELECT min(since_ns) FROM resource_attrs x WHERE x.resource_id = r.id))"
		" WHERE r.type = 'instance' AND r.first_seen_ns < ?2 ORDER BY r.id";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "%s: cannot read: %s", r->path, sqlite3_errmsg(r->db));
	sqlite3_bind_int64(st, 1, from_ns);
	sqlite3_bind_int64(st, 2, to_ns);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_instance_row row = {
			.id = sqlite3_column_int64(st, 0), .uuid = ledger_col_text(st, 1), .name = ledger_col_text(st, 2),
			.first_seen_ns = sqlite3_column_int64(st, 3), .last_seen_ns = sqlite3_column_int64(st, 4),
			.host = ledger_col_text(st, 5), .tenant = ledger_col_text(st, 6), .flavor = ledger_col_text(st, 7),
			.labels = ledger_col_text(st, 8), .project = ledger_col_text(st, 9), .user = ledger_col_text(st, 10),
			.attr_name = ledger_col_text(st, 11),
		};
		if ((rc = fn(ctx, &row)))
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "%s: cannot read: %s", r->path, sqlite3_errmsg(r->db));
out:
	sqlite3_finalize(st);
	return rc;
}

int sq_read_events(struct ledger_reader *rb, int64_t resource_id, ledger_event_fn fn, void *ctx,
		       struct tally_err *e)
{
	struct sq_reader *r = (struct sq_reader *)rb;
	static const char sql[] = "SELECT time_ns, type, reason FROM events WHERE resource_id = ?1"
				  " ORDER BY time_ns, id";
	int rc;

	if (!r->events && sqlite3_prepare_v2(r->db, sql, -1, &r->events, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "%s: cannot read: %s", r->path, sqlite3_errmsg(r->db));
	sqlite3_bind_int64(r->events, 1, resource_id);
	while ((rc = sqlite3_step(r->events)) == SQLITE_ROW)
		if ((rc = fn(ctx, sqlite3_column_int64(r->events, 0), ledger_col_text(r->events, 1),
			     ledger_col_text(r->events, 2))))
			goto out;
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "%s: cannot read: %s", r->path, sqlite3_errmsg(r->db));
out:
	sqlite3_reset(r->events);
	return rc;
}
