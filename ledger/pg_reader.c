/*
 * pg_reader.c: the ledger's read interface on PostgreSQL (reader.h, through
 * backend.h): the same queries as sqlite_reader.c, in PostgreSQL's SQL,
 * on one repeatable-read read-only transaction for the reader's life (one
 * snapshot, whatever the aggregators commit meanwhile). Rows stream through
 * cursors (pg_conn.h), so a month of usage is never held at once.
 */
#include "backend.h"
#include "err.h"
#include "fault.h"
#include "pg_conn.h"
#include "str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_reader {
	struct ledger_reader base;
	struct pgc pc;
};

#define R(rb) ((struct pg_reader *)(rb))

int pg_reader_open(const char *location, struct ledger_reader **out, struct tally_err *e)
{
	struct pg_reader *r = fault_calloc(1, sizeof(*r));
	int rc;
	*out = NULL;
	if (!r)
		return err_set(e, -ENOMEM, "out of memory");
	r->base.be = &ledger_pg_backend;
	if ((rc = pgc_connect(&r->pc, location, "tally", e)) || (rc = pg_check_readable(&r->pc, e)) ||
	    (rc = pgc_exec(&r->pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot begin", e))) {
		pgc_close(&r->pc);
		free(r);
		return rc;
	}
	*out = &r->base;
	return 0;
}

void pg_reader_close(struct ledger_reader *rb)
{
	struct pg_reader *r = R(rb);
	if (!r)
		return;
	pgc_close(&r->pc);
	free(r);
}

int pg_data_until(struct ledger_reader *rb, int64_t *ns, struct tally_err *e)
{
	PGresult *res = pgc_query(&R(rb)->pc, "SELECT coalesce(max(last_time_ns), 0) FROM agents", 0, NULL,
				  "cannot read agents", e);
	*ns = 0;
	if (!res)
		return e ? e->code : -EIO;
	*ns = pgv_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

/* A callback and its context, for the row functions below. */
struct cb {
	void *fn, *ctx;
};

static int meter_row(void *ctx, const PGresult *r, int i)
{
	struct cb *c = ctx;
	return ((ledger_meter_fn)c->fn)(c->ctx, pgv_i64(r, i, 0), pgv_text(r, i, 1));
}

int pg_read_meters(struct ledger_reader *rb, ledger_meter_fn fn, void *ctx, struct tally_err *e)
{
	struct cb c = { (void *)fn, ctx };
	return pgc_each(&R(rb)->pc, "SELECT id, name FROM meters", 0, NULL, meter_row, &c, "cannot read meters", e);
}

static int agent_row(void *ctx, const PGresult *r, int i)
{
	struct cb *c = ctx;
	struct ledger_agent_row row = {
		.agent = pgv_text(r, i, 0), .last_seq = (uint64_t)pgv_i64(r, i, 1), .last_time_ns = pgv_i64(r, i, 2),
		.batches = pgv_i64(r, i, 3),
		.spool_id = PQgetlength(r, i, 4) == LEDGER_SPOOL_ID_LEN ? (const uint8_t *)PQgetvalue(r, i, 4) : NULL,
		.spool_first_seq = (uint64_t)pgv_i64(r, i, 5), .contact_ns = pgv_i64(r, i, 6),
		.spool_batches = pgv_i64(r, i, 7), .spool_bytes = pgv_i64(r, i, 8),
	};
	return ((ledger_agent_row_fn)c->fn)(c->ctx, &row);
}

int pg_read_agents(struct ledger_reader *rb, ledger_agent_row_fn fn, void *ctx, struct tally_err *e)
{
	struct cb c = { (void *)fn, ctx };
	return pgc_each(&R(rb)->pc, "SELECT agent, last_seq, last_time_ns, batches, spool_id, spool_first_seq,"
			" contact_ns, spool_batches, spool_bytes FROM agents ORDER BY agent", 0, NULL, agent_row, &c,
			"cannot read agents", e);
}

static int resource_row(void *ctx, const PGresult *r, int i)
{
	struct cb *c = ctx;
	struct ledger_resource_row row = {
		.id = pgv_i64(r, i, 0), .uuid = pgv_text(r, i, 1), .name = pgv_text(r, i, 2),
		.first_seen_ns = pgv_i64(r, i, 3), .last_seen_ns = pgv_i64(r, i, 4), .host = pgv_text(r, i, 5),
		.since_ns = pgv_i64(r, i, 6), .tenant = pgv_text(r, i, 7), .attr_name = pgv_text(r, i, 8),
		.flavor = pgv_text(r, i, 9), .project = pgv_text(r, i, 10), .user = pgv_text(r, i, 11),
		.labels = pgv_text(r, i, 12), .type = pgv_text(r, i, 13), .has_attrs = pgv_bool(r, i, 14),
	};
	return ((ledger_resource_row_fn)c->fn)(c->ctx, &row);
}

int pg_read_resources(struct ledger_reader *rb, ledger_resource_row_fn fn, void *ctx, struct tally_err *e)
{
	struct cb c = { (void *)fn, ctx };
	return pgc_each(&R(rb)->pc, "SELECT r.id, r.uuid, r.name, r.first_seen_ns, r.last_seen_ns, r.host,"
			" a.since_ns, a.tenant, a.name, a.flavor, a.project, a.user_id, a.labels, r.type,"
			" a.resource_id IS NOT NULL FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id"
			" ORDER BY r.id, a.since_ns", 0, NULL, resource_row, &c, "cannot read resources", e);
}

/* One row of COPY's binary format: its fields' bytes and lengths (-1:
 * NULL), pointing into the message. Returns the field count, 0 at the
 * trailer, -1 when the message does not parse. */
static int copy_fields(const char *msg, int len, const char **f, int32_t *fl, int max)
{
	const unsigned char *p = (const unsigned char *)msg, *end = p + len;
	if (end - p < 2)
		return -1;
	int16_t n = (int16_t)(p[0] << 8 | p[1]);
	p += 2;
	if (n == -1)
		return 0;
	if (n < 0 || n > max)
		return -1;
	for (int i = 0; i < n; i++) {
		if (end - p < 4)
			return -1;
		int32_t l = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
		p += 4;
		if (l > end - p)
			return -1;
		f[i] = (const char *)p;
		fl[i] = l;
		if (l > 0)
			p += l;
	}
	return n;
}

static int64_t be_i64(const char *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | (unsigned char)b[i];
	return (int64_t)v;
}

int pg_read_usage(struct ledger_reader *rb, int64_t from_ns, int64_t to_ns, ledger_usage_row_fn fn, void *ctx,
		  struct tally_err *e)
{
	/* the rows of series the aggregator keeps (every row it writes has
	 * one), in no particular order: one scan of the period's rows (the
	 * table, or the hour index's range when the period is a small part of
	 * it) against a hash of the series; the planner is kept from a nested
	 * loop. Not one primary-key range per series as sqlite_reader.c reads
	 * them: SQLite's table is kept in key order, PostgreSQL's in the order
	 * the rows were written, hour by hour, so a series' month is on 744
	 * pages, each page visited once per series on it (docs/ledger.md: a
	 * month of 1000 VMs took 13 - 18 s that way, 5 - 8 s by the scan). A
	 * month is millions of rows: they stream as COPY's binary format,
	 * parsed here, without a result set per batch of rows. */
	struct pg_reader *r = R(rb);
	char sql[800], dev[TALLY_DEV_MAX + 1];
	const char *f[9];
	int32_t fl[9];
	char *msg = NULL;
	int rc = 0, n, header = 1;
	snprintf(sql, sizeof(sql), "COPY (SELECT u.resource_id, u.meter_id, u.hour_ns, u.quantity, u.quantity_real,"
		 " u.covered_ns, u.spanned_ns, u.device, u.samples FROM usage u WHERE u.hour_ns >= %lld AND u.hour_ns < %lld"
		 " AND (u.resource_id, u.meter_id, u.device) IN (SELECT resource_id, meter_id, device FROM series))"
		 " TO STDOUT (FORMAT binary)", (long long)from_ns, (long long)to_ns);
	if ((rc = pgc_exec(&r->pc, "SET enable_nestloop = off; SET enable_mergejoin = off", "cannot read usage", e)))
		return rc;
	PGresult *res = PQexec(r->pc.c, sql);
	if (!res || PQresultStatus(res) != PGRES_COPY_OUT) {
		rc = pgc_fail(&r->pc, res, "cannot read usage", e);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	while ((n = PQgetCopyData(r->pc.c, &msg, 0)) > 0) {
		const char *m = msg;
		int len = n;
		if (header) {            /* "PGCOPY\n\377\r\n\0", flags, extension */
			if (len < 19 || memcmp(m, "PGCOPY\n\377\r\n", 10)) {
				rc = err_set(e, -EIO, "%s: cannot read usage: not COPY's binary format", r->pc.name);
				break;
			}
			int32_t ext = (int32_t)((uint32_t)(unsigned char)m[15] << 24 | (uint32_t)(unsigned char)m[16] << 16 |
						(uint32_t)(unsigned char)m[17] << 8 | (unsigned char)m[18]);
			m += 19 + ext;
			len -= 19 + ext;
			header = 0;
		}
		int k = rc ? 0 : copy_fields(m, len, f, fl, 9);
		if (k == 9 && fl[0] == 8 && fl[1] == 8 && fl[2] == 8 && fl[5] == 8 && fl[6] == 8 && fl[7] >= 0 &&
		    (size_t)fl[7] < sizeof(dev) && fl[8] == 8) {
			struct ledger_usage_row row = {
				.resource_id = be_i64(f[0]), .meter_id = be_i64(f[1]), .hour_ns = be_i64(f[2]),
				.covered_ns = be_i64(f[5]), .spanned_ns = be_i64(f[6]), .device = dev,
				.samples = be_i64(f[8]),
			};
			memcpy(dev, f[7], (size_t)fl[7]);
			dev[fl[7]] = '\0';
			if (fl[3] == 8 && fl[4] == -1) {
				row.qty.type = LEDGER_QTY_INT;
				row.qty.i = be_i64(f[3]);
			} else if (fl[3] == -1 && fl[4] == 8) {
				uint64_t u = (uint64_t)be_i64(f[4]);
				row.qty.type = LEDGER_QTY_REAL;
				memcpy(&row.qty.d, &u, sizeof(row.qty.d));
			} else {
				row.qty.type = LEDGER_QTY_OTHER;
			}
			row.qty.text = NULL;     /* ledger_qty_text makes it for a message */
			rc = fn(ctx, &row);
		} else if (k != 0 && !rc) {
			rc = err_set(e, -EIO, "%s: cannot read usage: a row that does not parse", r->pc.name);
		}
		PQfreemem(msg);
		msg = NULL;
		if (rc)
			break;               /* the rest is read and thrown away below */
	}
	if (rc)
		while ((n = PQgetCopyData(r->pc.c, &msg, 0)) > 0)
			PQfreemem(msg);
	if (n == -2 && !rc)
		rc = pgc_fail(&r->pc, NULL, "cannot read usage", e);
	while ((res = PQgetResult(r->pc.c))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
			rc = pgc_fail(&r->pc, res, "cannot read usage", e);
		PQclear(res);
	}
	/* the planner's settings as they were, whatever the rows did (after
	 * an error of fn's the COPY was read to its end: the connection is as
	 * good as before) */
	int reset = pgc_exec(&r->pc, "RESET enable_nestloop; RESET enable_mergejoin", "cannot read usage", rc ? NULL : e);
	return rc ? rc : reset;
}

static int instance_row(void *ctx, const PGresult *r, int i)
{
	struct cb *c = ctx;
	struct ledger_instance_row row = {
		.id = pgv_i64(r, i, 0), .uuid = pgv_text(r, i, 1), .name = pgv_text(r, i, 2),
		.first_seen_ns = pgv_i64(r, i, 3), .last_seen_ns = pgv_i64(r, i, 4), .host = pgv_text(r, i, 5),
		.tenant = pgv_text(r, i, 6), .flavor = pgv_text(r, i, 7), .labels = pgv_text(r, i, 8),
		.project = pgv_text(r, i, 9), .user = pgv_text(r, i, 10), .attr_name = pgv_text(r, i, 11),
	};
	return ((ledger_instance_fn)c->fn)(c->ctx, &row);
}

int pg_read_instances(struct ledger_reader *rb, int64_t from_ns, int64_t to_ns, ledger_instance_fn fn, void *ctx,
		      struct tally_err *e)
{
	struct cb c = { (void *)fn, ctx };
	struct pgnum a, b;
	const char *p[] = { pgn_i64(&a, from_ns), pgn_i64(&b, to_ns) };
	return pgc_each(&R(rb)->pc,
			"SELECT r.id, r.uuid, r.name, r.first_seen_ns, r.last_seen_ns, r.host,"
			" coalesce(a.tenant, r.tenant), coalesce(a.flavor, r.flavor), coalesce(a.labels, r.labels),"
			" coalesce(a.project, r.project), coalesce(a.user_id, r.user_id), coalesce(a.name, r.name)"
			" FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id AND a.since_ns = coalesce("
			"  (SELECT max(since_ns) FROM resource_attrs x WHERE x.resource_id = r.id"
			"   AND x.since_ns <= greatest(CAST($1 AS bigint), r.first_seen_ns)),"
			"  (SELECT min(since_ns) FROM resource_attrs x WHERE x.resource_id = r.id))"
			" WHERE r.type = 'instance' AND r.first_seen_ns < $2 ORDER BY r.id", 2, p, instance_row, &c,
			"cannot read", e);
}

int pg_read_events(struct ledger_reader *rb, int64_t resource_id, ledger_event_fn fn, void *ctx,
		   struct tally_err *e)
{
	/* one VM's events: few, read at once (no cursor's round trips) */
	struct pgnum a;
	const char *p[] = { pgn_i64(&a, resource_id) };
	PGresult *r = pgc_query(&R(rb)->pc, "SELECT time_ns, type, reason FROM events WHERE resource_id = $1"
				" ORDER BY time_ns, id", 1, p, "cannot read", e);
	int rc = 0;
	if (!r)
		return e ? e->code : -EIO;
	for (int i = 0; i < PQntuples(r) && !rc; i++)
		rc = fn(ctx, pgv_i64(r, i, 0), pgv_text(r, i, 1), pgv_text(r, i, 2));
	PQclear(r);
	return rc;
}
