/*
 * pg_reader.c: the ledger's read interface on PostgreSQL (reader.h, through
 * backend.h): the same queries as sqlite_reader.c, in PostgreSQL's SQL,
 * on one repeatable-read read-only transaction for the reader's life (one
 * snapshot, whatever the aggregators commit meanwhile). Rows stream through
 * cursors (pg_conn.h), so a month of usage is never held at once.
 *
 * The usage report's exact sums: SQLite sums with a C aggregate
 * (tally_msum); here pg_temp.tally_milli turns each quantity into exact
 * milli-units (a counter x 1000; a gauge's binary64 taken apart into its
 * integer mantissa and power of two, x 1000, rounded once half to even, as
 * common/exact.h does) and PostgreSQL's numeric sum() adds them exactly.
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

/* The exact milli-units of a usage quantity (see above); an error for what
 * tally never writes, with the words of sqlite_reader.c's tally_msum. */
static const char milli_sql[] =
	"CREATE FUNCTION pg_temp.tally_milli(q bigint, r double precision) RETURNS numeric"
	" LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$"
	" DECLARE b bigint; x int; m bigint; k int; n numeric; d numeric; t numeric; rem numeric;"
	" BEGIN"
	"  IF q IS NOT NULL THEN"
	"   IF r IS NOT NULL THEN RAISE EXCEPTION 'a usage quantity is not a number'; END IF;"
	"   IF q < 0 THEN RAISE EXCEPTION 'a usage quantity is negative'; END IF;"
	"   RETURN q::numeric * 1000;"
	"  END IF;"
	"  IF r IS NULL THEN RAISE EXCEPTION 'a usage quantity is not a number'; END IF;"
	"  IF r = 'NaN'::float8 OR r = 'Infinity'::float8 OR r = '-Infinity'::float8 THEN"
	"   RAISE EXCEPTION 'a usage sum does not fit'; END IF;"
	"  IF r < 0 THEN RAISE EXCEPTION 'a usage quantity is negative'; END IF;"
	"  b := ('x' || encode(float8send(r), 'hex'))::bit(64)::bigint;"
	"  x := ((b >> 52) & 2047)::int;"
	"  m := b & 4503599627370495;"
	"  IF x = 0 THEN x := 1; ELSE m := m + 4503599627370496; END IF;"
	"  k := x - 1075;"
	"  n := m::numeric * 1000;"
	"  IF k >= 0 THEN RETURN n * (2::numeric ^ k); END IF;"
	"  d := 2::numeric ^ (-k);"
	"  t := div(n, d);"
	"  rem := n - t * d;"
	"  IF rem * 2 > d OR (rem * 2 = d AND mod(t, 2) = 1) THEN t := t + 1; END IF;"
	"  RETURN t;"
	" END $f$";

int pg_reader_open(const char *location, struct ledger_reader **out, struct tally_err *e)
{
	struct pg_reader *r = fault_calloc(1, sizeof(*r));
	int rc;
	*out = NULL;
	if (!r)
		return err_set(e, -ENOMEM, "out of memory");
	r->base.be = &ledger_pg_backend;
	if ((rc = pgc_connect(&r->pc, location, "tally", e)) || (rc = pg_check_readable(&r->pc, e)) ||
	    (rc = pgc_exec(&r->pc, milli_sql, "cannot prepare the usage sums", e)) ||
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
	const char *f[8];
	int32_t fl[8];
	char *msg = NULL;
	int rc = 0, n, header = 1;
	snprintf(sql, sizeof(sql), "COPY (SELECT u.resource_id, u.meter_id, u.hour_ns, u.quantity, u.quantity_real,"
		 " u.covered_ns, u.spanned_ns, u.device FROM usage u WHERE u.hour_ns >= %lld AND u.hour_ns < %lld"
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
		int k = rc ? 0 : copy_fields(m, len, f, fl, 8);
		if (k == 8 && fl[0] == 8 && fl[1] == 8 && fl[2] == 8 && fl[5] == 8 && fl[6] == 8 && fl[7] >= 0 &&
		    (size_t)fl[7] < sizeof(dev)) {
			struct ledger_usage_row row = {
				.resource_id = be_i64(f[0]), .meter_id = be_i64(f[1]), .hour_ns = be_i64(f[2]),
				.covered_ns = be_i64(f[5]), .spanned_ns = be_i64(f[6]), .device = dev,
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

/* sqlite_reader.c's usage_sql, in PostgreSQL's words (see there). */
static const char usage_sql[] =
	"WITH iv AS (SELECT r.id AS resource_id, coalesce(a.tenant, '') AS tenant,"
	"  CASE WHEN lag(a.since_ns) OVER w IS NULL THEN -9223372036854775807 ELSE a.since_ns END AS lo,"
	"  coalesce(lead(a.since_ns) OVER w, 9223372036854775807) AS hi"
	"  FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id"
	"  WHERE CAST($3 AS text) IS NULL OR r.uuid = CAST($3 AS text)"
	"  WINDOW w AS (PARTITION BY r.id ORDER BY a.since_ns)),"
	" s AS (SELECT DISTINCT resource_id, meter_id, device FROM series"
	"  WHERE CAST($4 AS text) IS NULL OR meter_id = (SELECT id FROM meters WHERE name = CAST($4 AS text))),"
	" x AS (SELECT iv.tenant AS tenant, %s AS k, u.meter_id AS meter_id,"
	"  sum(pg_temp.tally_milli(u.quantity, u.quantity_real)) AS q,"
	"  bool_or(u.quantity_real IS NOT NULL) AS isreal, sum(u.covered_ns) AS c, sum(u.spanned_ns) AS s,"
	"  sum(u.samples) AS n"
	"  FROM s JOIN iv ON iv.resource_id = s.resource_id JOIN usage u ON u.resource_id = s.resource_id"
	"  AND u.meter_id = s.meter_id AND u.device = s.device"
	"  WHERE (CAST($5 AS text) IS NULL OR iv.tenant = CAST($5 AS text))"
	"  AND u.hour_ns >= greatest(iv.lo, CAST($1 AS bigint)) AND u.hour_ns < least(iv.hi, CAST($2 AS bigint))"
	"  GROUP BY iv.tenant, k, u.meter_id)"
	" SELECT x.tenant, %s, m.name, x.q::text, x.isreal, x.c::bigint, x.s::bigint, x.n::bigint"
	" FROM x JOIN meters m ON m.id = x.meter_id %s";

struct summing {
	const struct ledger_usage_filter *f;
	ledger_usage_sum_fn fn;
	void *ctx;
	struct tally_err *e;
	const char *name;
};

static int sum_row(void *ctx, const PGresult *r, int i)
{
	struct summing *x = ctx;
	struct ledger_usage_sum row = {
		.tenant = pgv_text(r, i, 0), .meter = pgv_text(r, i, 3), .is_real = pgv_bool(r, i, 5),
		.covered_ns = pgv_i64(r, i, 6), .spanned_ns = pgv_i64(r, i, 7), .samples = pgv_i64(r, i, 8),
		.resource = "", .name = "",
	};
	if (x->f->by == LEDGER_BY_RESOURCE) {
		row.resource = pgv_text(r, i, 1);
		row.name = pgv_text(r, i, 2);
	} else if (x->f->by == LEDGER_BY_HOUR) {
		row.hour_ns = pgv_i64(r, i, 1);
	}
	const char *d = pgv_text(r, i, 4);
	for (; *d >= '0' && *d <= '9'; d++) {
		row.milli = row.milli * 10 + (*d - '0');
		if (row.milli > ((__int128)1 << 120))
			return err_set(x->e, -EIO, "%s: query failed: a usage sum does not fit", x->name);
	}
	if (*d)
		return err_set(x->e, -EIO, "%s: query failed: a usage sum is '%s'", x->name, pgv_text(r, i, 4));
	return x->fn(x->ctx, &row);
}

int pg_sum_usage(struct ledger_reader *rb, const struct ledger_usage_filter *f, ledger_usage_sum_fn fn, void *ctx,
		 struct tally_err *e)
{
	struct pg_reader *r = R(rb);
	struct summing x = { .f = f, .fn = fn, .ctx = ctx, .e = e, .name = r->pc.name };
	char sql[3072];
	struct pgnum a, b;
	if (f->by == LEDGER_BY_RESOURCE)
		snprintf(sql, sizeof(sql), usage_sql, "u.resource_id", "r.uuid, r.name", "JOIN resources r ON r.id = x.k");
	else if (f->by == LEDGER_BY_HOUR)
		snprintf(sql, sizeof(sql), usage_sql, "u.hour_ns", "x.k, ''", "");
	else
		snprintf(sql, sizeof(sql), usage_sql, "0", "'', ''", "");
	const char *p[] = { pgn_i64(&a, f->from_ns), pgn_i64(&b, f->to_ns), f->resource, f->meter, f->tenant };
	return pgc_each(&r->pc, sql, 5, p, sum_row, &x, "query failed", e);
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
