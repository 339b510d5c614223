/*
 * usage.c: the usage report: one grouped SQL query over the ledger and
 * three renderers (aligned text, RFC 4180 CSV, JSON). See usage.h and
 * docs/usage.md.
 */
#include "usage.h"
#include "csv.h"
#include "err.h"
#include "ledger_ro.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* Usage summed by tenant (and resource or hour) and meter. The tenant of an
 * hour is the one the resource had at the hour's start: each resource's
 * metadata history is cut into intervals [since, next since), the first
 * reaching back to the start of time (a resource described only after its
 * first usage takes its first tenant); resources never described have one
 * interval with tenant ''. The loop is driven by the series table, as the
 * rating is (rate.c): per (resource, meter, device) and tenant interval one
 * primary-key range seek into usage over [max(from, since), min(to, next)),
 * so a day's report reads that day's rows only, however long the ledger
 * (every usage row has its series row: the aggregator writes both in one
 * transaction and never deletes series). */
static const char usage_sql[] =
	"WITH iv AS (SELECT r.id AS resource_id, coalesce(a.tenant, '') AS tenant,"
	"  CASE WHEN lag(a.since_ns) OVER w IS NULL THEN -9223372036854775807 ELSE a.since_ns END AS lo,"
	"  coalesce(lead(a.since_ns) OVER w, 9223372036854775807) AS hi"
	"  FROM resources r LEFT JOIN resource_attrs a ON a.resource_id = r.id"
	"  WHERE ?3 IS NULL OR r.uuid = ?3"
	"  WINDOW w AS (PARTITION BY r.id ORDER BY a.since_ns)),"
	" s AS (SELECT DISTINCT resource_id, meter_id, device FROM series"
	"  WHERE ?4 IS NULL OR meter_id = (SELECT id FROM meters WHERE name = ?4)),"
	" x AS (SELECT iv.tenant AS tenant, %s AS k, u.meter_id AS meter_id, sum(u.quantity) AS q,"
	"  max(typeof(u.quantity) = 'real') AS isreal, sum(u.covered_ns) AS c, sum(u.spanned_ns) AS s,"
	"  sum(u.samples) AS n"
	"  FROM s CROSS JOIN iv CROSS JOIN usage u"
	"  WHERE iv.resource_id = s.resource_id AND (?5 IS NULL OR iv.tenant = ?5)"
	"  AND u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device"
	"  AND u.hour_ns >= max(iv.lo, ?1) AND u.hour_ns < min(iv.hi, ?2)"
	"  GROUP BY iv.tenant, k, u.meter_id)"
	" SELECT x.tenant, %s, m.name, x.q, x.isreal, x.c, x.s, x.n"
	" FROM x JOIN meters m ON m.id = x.meter_id %s";

int usage_query(const struct usage_query *q, struct usage_result *out, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sql[2560];
	int rc;

	memset(out, 0, sizeof(*out));
	if (q->from_ns >= q->to_ns)
		return err_set(e, -EINVAL, "the period is empty: --from must be before --to");
	if ((rc = ledger_ro_open(q->ledger, &db, e)))
		return rc;
	if (q->by == USAGE_BY_RESOURCE)
		snprintf(sql, sizeof(sql), usage_sql, "u.resource_id", "r.uuid, r.name",
			 "JOIN resources r ON r.id = x.k");
	else if (q->by == USAGE_BY_HOUR)
		snprintf(sql, sizeof(sql), usage_sql, "u.hour_ns", "x.k, ''", "");
	else
		snprintf(sql, sizeof(sql), usage_sql, "0", "'', ''", "");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot query: %s", q->ledger, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, q->from_ns);
	sqlite3_bind_int64(st, 2, q->to_ns);
	if (q->resource)
		sqlite3_bind_text(st, 3, q->resource, -1, SQLITE_STATIC);
	if (q->meter >= 0)
		sqlite3_bind_text(st, 4, meter_table[q->meter].name, -1, SQLITE_STATIC);
	if (q->tenant)
		sqlite3_bind_text(st, 5, q->tenant, -1, SQLITE_STATIC);
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int m = meter_lookup((const char *)sqlite3_column_text(st, 3));
		if (m < 0)
			continue; /* a meter this tally does not know */
		if (out->n == cap) {
			cap = cap ? cap * 2 : 64;
			struct usage_row *p = realloc(out->rows, cap * sizeof(*p));
			if (!p) {
				rc = -ENOMEM;
				goto out;
			}
			out->rows = p;
		}
		struct usage_row *r = &out->rows[out->n++];
		memset(r, 0, sizeof(*r));
		const unsigned char *t = sqlite3_column_text(st, 0);
		str_copy(r->tenant, t ? (const char *)t : "", sizeof(r->tenant));
		if (q->by == USAGE_BY_RESOURCE) {
			t = sqlite3_column_text(st, 1);
			str_copy(r->resource, t ? (const char *)t : "", sizeof(r->resource));
			t = sqlite3_column_text(st, 2);
			str_copy(r->name, t ? (const char *)t : "", sizeof(r->name));
		} else if (q->by == USAGE_BY_HOUR) {
			r->hour_ns = sqlite3_column_int64(st, 1);
		}
		r->meter = m;
		r->is_real = sqlite3_column_int(st, 5) || meter_table[m].kind == SAMPLE_GAUGE;
		if (r->is_real)
			r->qty_real = sqlite3_column_double(st, 4);
		else
			r->qty = sqlite3_column_int64(st, 4);
		r->covered_ns = sqlite3_column_int64(st, 6);
		r->spanned_ns = sqlite3_column_int64(st, 7);
		r->samples = sqlite3_column_int64(st, 8);
	}
	if (rc != SQLITE_DONE) {
		rc = err_set(e, -EIO, "%s: query failed: %s", q->ledger, sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc) {
		usage_result_release(out);
		return rc;
	}
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	const struct usage_row *x = a, *y = b;
	int c = strcmp(x->tenant, y->tenant);
	if (c)
		return c;
	if ((c = strcmp(x->name, y->name)) || (c = strcmp(x->resource, y->resource)))
		return c;
	if (x->hour_ns != y->hour_ns)
		return x->hour_ns < y->hour_ns ? -1 : 1;
	return x->meter - y->meter;
}

void usage_result_release(struct usage_result *r)
{
	free(r->rows);
	r->rows = NULL;
	r->n = 0;
}

double usage_human(const struct usage_row *r)
{
	double base = r->is_real ? r->qty_real : (double)r->qty;
	return base / meter_table[r->meter].human_div;
}

static void completeness(const struct usage_row *r, char *buf, size_t len)
{
	if (r->spanned_ns <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)r->covered_ns / (double)r->spanned_ns);
}

static void base_text(const struct usage_row *r, char *buf, size_t len)
{
	if (r->is_real)
		snprintf(buf, len, "%.17g", r->qty_real);
	else
		snprintf(buf, len, "%lld", (long long)r->qty);
}

static const char *by_name(enum usage_by by)
{
	return by == USAGE_BY_RESOURCE ? "resource" : by == USAGE_BY_HOUR ? "hour" : "tenant";
}

int usage_render(FILE *f, const struct usage_query *q, const struct usage_result *r,
		 enum usage_format fmt)
{
	char from[48], to[48], pct[16], base[40], hour[48];
	if (r->n > 1)
		qsort(r->rows, r->n, sizeof(*r->rows), cmp_row);
	time_format_iso(q->from_ns, from, sizeof(from));
	time_format_iso(q->to_ns, to, sizeof(to));

	if (fmt == USAGE_CSV) {
		fputs("tenant,", f);
		if (q->by == USAGE_BY_RESOURCE)
			fputs("resource,name,", f);
		if (q->by == USAGE_BY_HOUR)
			fputs("hour,", f);
		fputs("meter,quantity,unit,base_quantity,base_unit,covered_seconds,spanned_seconds,"
		      "completeness_pct,samples\r\n", f);
		for (size_t i = 0; i < r->n; i++) {
			const struct usage_row *u = &r->rows[i];
			const struct meter_def *m = &meter_table[u->meter];
			csv_field(f, u->tenant);
			fputc(',', f);
			if (q->by == USAGE_BY_RESOURCE) {
				csv_field(f, u->resource);
				fputc(',', f);
				csv_field(f, u->name);
				fputc(',', f);
			}
			if (q->by == USAGE_BY_HOUR)
				fprintf(f, "%s,", time_format_iso(u->hour_ns, hour, sizeof(hour)));
			base_text(u, base, sizeof(base));
			fprintf(f, "%s,%.9f,%s,%s,%s,%.9f,%.9f,", m->name, usage_human(u), m->human_unit, base,
				m->unit, (double)u->covered_ns / 1e9, (double)u->spanned_ns / 1e9);
			if (u->spanned_ns > 0)
				fprintf(f, "%.3f", 100.0 * (double)u->covered_ns / (double)u->spanned_ns);
			fprintf(f, ",%lld\r\n", (long long)u->samples);
		}
		return ferror(f) ? -EIO : 0;
	}
	if (fmt == USAGE_JSON) {
		json_t *root = json_object(), *rows = json_array();
		json_object_set_new(root, "from", json_string(from));
		json_object_set_new(root, "to", json_string(to));
		json_object_set_new(root, "by", json_string(by_name(q->by)));
		for (size_t i = 0; i < r->n; i++) {
			const struct usage_row *u = &r->rows[i];
			const struct meter_def *m = &meter_table[u->meter];
			json_t *o = json_object();
			json_object_set_new(o, "tenant", json_string(u->tenant));
			if (q->by == USAGE_BY_RESOURCE) {
				json_object_set_new(o, "resource", json_string(u->resource));
				json_object_set_new(o, "name", json_string(u->name));
			}
			if (q->by == USAGE_BY_HOUR)
				json_object_set_new(o, "hour", json_string(time_format_iso(u->hour_ns, hour, sizeof(hour))));
			json_object_set_new(o, "meter", json_string(m->name));
			json_object_set_new(o, "quantity", json_real(usage_human(u)));
			json_object_set_new(o, "unit", json_string(m->human_unit));
			json_object_set_new(o, "base_quantity", u->is_real ? json_real(u->qty_real) : json_integer(u->qty));
			json_object_set_new(o, "base_unit", json_string(m->unit));
			json_object_set_new(o, "covered_seconds", json_real((double)u->covered_ns / 1e9));
			json_object_set_new(o, "spanned_seconds", json_real((double)u->spanned_ns / 1e9));
			json_object_set_new(o, "completeness_pct", u->spanned_ns > 0
				? json_real(100.0 * (double)u->covered_ns / (double)u->spanned_ns) : json_null());
			json_object_set_new(o, "samples", json_integer(u->samples));
			json_array_append_new(rows, o);
		}
		json_object_set_new(root, "rows", rows);
		int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
		fputc('\n', f);
		json_decref(root);
		return rc || ferror(f) ? -EIO : 0;
	}

	/* aligned text */
	int wt = 6, wr = 8, wn = 4;
	for (size_t i = 0; i < r->n; i++) {
		int l = (int)strlen(r->rows[i].tenant[0] ? r->rows[i].tenant : "-");
		wt = l > wt ? l : wt;
		l = (int)strlen(r->rows[i].resource);
		wr = l > wr ? l : wr;
		l = (int)strlen(r->rows[i].name);
		wn = l > wn ? l : wn;
	}
	fprintf(f, "%-*s  ", wt, "TENANT");
	if (q->by == USAGE_BY_RESOURCE)
		fprintf(f, "%-*s  %-*s  ", wr, "RESOURCE", wn, "NAME");
	if (q->by == USAGE_BY_HOUR)
		fprintf(f, "%-20s  ", "HOUR");
	fprintf(f, "%-26s %18s  %-14s %12s %9s %8s\n", "METER", "QUANTITY", "UNIT", "COVERED_S", "COMPLETE",
		"SAMPLES");
	for (size_t i = 0; i < r->n; i++) {
		const struct usage_row *u = &r->rows[i];
		const struct meter_def *m = &meter_table[u->meter];
		fprintf(f, "%-*s  ", wt, u->tenant[0] ? u->tenant : "-");
		if (q->by == USAGE_BY_RESOURCE)
			fprintf(f, "%-*s  %-*s  ", wr, u->resource, wn, u->name);
		if (q->by == USAGE_BY_HOUR)
			fprintf(f, "%-20s  ", time_format_iso(u->hour_ns, hour, sizeof(hour)));
		completeness(u, pct, sizeof(pct));
		if (!u->is_real && m->human_div == 1.0)   /* requests, packets: whole */
			fprintf(f, "%-26s %18lld  ", m->name, (long long)u->qty);
		else
			fprintf(f, "%-26s %18.3f  ", m->name, usage_human(u));
		fprintf(f, "%-14s %12.0f %9s %8lld\n", m->human_unit, (double)u->covered_ns / 1e9, pct,
			(long long)u->samples);
	}
	fprintf(f, "%zu row%s, usage from %s to %s (UTC hours)\n", r->n, r->n == 1 ? "" : "s", from, to);
	return ferror(f) ? -EIO : 0;
}
