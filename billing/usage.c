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
#include "money.h"
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
	" x AS (SELECT iv.tenant AS tenant, %s AS k, u.meter_id AS meter_id, tally_msum(u.quantity) AS q,"
	"  max(typeof(u.quantity) = 'real') AS isreal, sum(u.covered_ns) AS c, sum(u.spanned_ns) AS s,"
	"  sum(u.samples) AS n"
	"  FROM s CROSS JOIN iv CROSS JOIN usage u"
	"  WHERE iv.resource_id = s.resource_id AND (?5 IS NULL OR iv.tenant = ?5)"
	"  AND u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device"
	"  AND u.hour_ns >= max(iv.lo, ?1) AND u.hour_ns < min(iv.hi, ?2)"
	"  GROUP BY iv.tenant, k, u.meter_id)"
	" SELECT x.tenant, %s, m.name, x.q, x.isreal, x.c, x.s, x.n"
	" FROM x JOIN meters m ON m.id = x.meter_id %s";

/* tally_msum(quantity): the exact sum of a group's rows in milli-units,
 * as decimal TEXT (it may pass 2^63): an INTEGER row is v x 1000, a REAL
 * one (a gauge's unit-seconds) its exact value x 1000 rounded once half to
 * even (money_double_scaled), as rating takes them (rate.c), so a report
 * and an invoice agree to the last digit. SQLite's sum() adds doubles. */
struct msum {
	unsigned char milli[16];     /* an __int128; SQLite aligns the context to 8 bytes only */
	int bad;                     /* 1: not a number, 2: does not fit, 3: negative */
};

static void msum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct msum *m = sqlite3_aggregate_context(ctx, sizeof(*m));
	__int128 v;
	if (!m || m->bad)
		return;
	switch (sqlite3_value_type(argv[0])) {
	case SQLITE_INTEGER:
		v = (__int128)sqlite3_value_int64(argv[0]) * 1000;
		break;
	case SQLITE_FLOAT:
		if (money_double_scaled(sqlite3_value_double(argv[0]), 1000, &v)) {
			m->bad = 2;
			return;
		}
		break;
	default:
		m->bad = 1;
		return;
	}
	__int128 sum;
	memcpy(&sum, m->milli, sizeof(sum));
	if (v < 0)
		m->bad = 3;
	else if (__builtin_add_overflow(sum, v, &sum) || sum > ((__int128)1 << 120))
		m->bad = 2;
	memcpy(m->milli, &sum, sizeof(sum));
}

static void msum_final(sqlite3_context *ctx)
{
	struct msum *m = sqlite3_aggregate_context(ctx, 0);
	char buf[64];
	static const char *const why[] = { "", "a usage quantity is not a number", "a usage sum does not fit",
					   "a usage quantity is negative" };
	if (m && m->bad) {
		sqlite3_result_error(ctx, why[m->bad], -1);
		return;
	}
	__int128 sum = 0;
	if (m)
		memcpy(&sum, m->milli, sizeof(sum));
	money_format_ratio(sum, 1, 0, buf, sizeof(buf));
	sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
}

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
	if (sqlite3_create_function(db, "tally_msum", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL, msum_step,
				    msum_final) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot query: %s", q->ledger, sqlite3_errmsg(db));
		goto out;
	}
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
		r->is_real = meter_table[m].kind == SAMPLE_GAUGE;
		__int128 milli = 0;
		for (const unsigned char *d = sqlite3_column_text(st, 4); d && *d >= '0' && *d <= '9'; d++)
			milli = milli * 10 + (*d - '0');   /* < 2^120: tally_msum's bound */
		if (!r->is_real && milli % 1000) {
			rc = err_set(e, -EIO, "%s: a %s count is not an integer: the ledger is not what tally writes",
				     q->ledger, meter_table[m].name);
			goto out;
		}
		r->qty = r->is_real ? milli : milli / 1000;
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

/* One human unit in ledger units (rate.h: gauges in milli-unit-seconds). */
static __int128 human_den(const struct usage_row *r)
{
	return (__int128)meter_table[r->meter].human_div * (r->is_real ? 1000 : 1);
}

double usage_human(const struct usage_row *r)
{
	return (double)r->qty / (double)human_den(r);
}

char *usage_quantity_text(const struct usage_row *r, int places, char *buf, size_t len)
{
	return money_format_ratio(r->qty, human_den(r), places, buf, len);
}

const char *usage_base_unit(int meter)
{
	const struct meter_def *m = &meter_table[meter];
	if (m->kind != SAMPLE_GAUGE)
		return m->unit;
	if (!strcmp(m->unit, "B"))
		return "B·s";
	if (!strcmp(m->unit, "vCPU"))
		return "vCPU·s";
	return "instance·s";
}

static void completeness(const struct usage_row *r, char *buf, size_t len)
{
	if (r->spanned_ns <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)r->covered_ns / (double)r->spanned_ns);
}

/* The exact ledger sum in base units: a count, or unit-seconds to the
 * milli-unit-second the ledger's rows are taken to (3 places). */
static void base_text(const struct usage_row *r, char *buf, size_t len)
{
	money_format_ratio(r->qty, r->is_real ? 1000 : 1, r->is_real ? 3 : 0, buf, len);
}

/* ns as seconds, exactly: 9 places. */
static char *seconds_text(int64_t ns, char *buf, size_t len)
{
	return money_format_ratio(ns, 1000000000, 9, buf, len);
}

/* covered / spanned in percent, exact to 3 places ("" when nothing was spanned). */
static char *pct_exact(const struct usage_row *r, char *buf, size_t len)
{
	if (r->spanned_ns <= 0)
		buf[0] = '\0';
	else
		money_format_ratio((__int128)r->covered_ns * 100, r->spanned_ns, 3, buf, len);
	return buf;
}

static const char *by_name(enum usage_by by)
{
	return by == USAGE_BY_RESOURCE ? "resource" : by == USAGE_BY_HOUR ? "hour" : "tenant";
}

int usage_render(FILE *f, const struct usage_query *q, const struct usage_result *r,
		 enum usage_format fmt)
{
	char from[48], to[48], pct[64], base[64], hour[48], qt[64], cs[64], ss[64];
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
			fprintf(f, "%s,%s,%s,%s,%s,", m->name, usage_quantity_text(u, 9, qt, sizeof(qt)), m->human_unit,
				base, usage_base_unit(u->meter));
			fprintf(f, "%s,%s,%s,%lld\r\n", seconds_text(u->covered_ns, cs, sizeof(cs)),
				seconds_text(u->spanned_ns, ss, sizeof(ss)), pct_exact(u, pct, sizeof(pct)),
				(long long)u->samples);
		}
		return ferror(f) ? -EIO : 0;
	}
	if (fmt == USAGE_JSON) {
		json_t *root = json_object(), *rows = json_array();
		json_object_set_new(root, "from", json_string(from));
		json_object_set_new(root, "to", json_string(to));
		json_object_set_new(root, "format", json_string("tally-usage/2"));
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
			/* exact decimals as strings: a JSON number is a double to
			 * most readers (2^53 and 0.1 are where they go wrong) */
			base_text(u, base, sizeof(base));
			json_object_set_new(o, "quantity", json_string(usage_quantity_text(u, 9, qt, sizeof(qt))));
			json_object_set_new(o, "unit", json_string(m->human_unit));
			json_object_set_new(o, "base_quantity", json_string(base));
			json_object_set_new(o, "base_unit", json_string(usage_base_unit(u->meter)));
			json_object_set_new(o, "covered_seconds", json_string(seconds_text(u->covered_ns, cs, sizeof(cs))));
			json_object_set_new(o, "spanned_seconds", json_string(seconds_text(u->spanned_ns, ss, sizeof(ss))));
			json_object_set_new(o, "completeness_pct", u->spanned_ns > 0
				? json_string(pct_exact(u, pct, sizeof(pct))) : json_null());
			json_object_set_new(o, "samples", json_integer(u->samples));
			json_array_append_new(rows, o);
		}
		json_object_set_new(root, "rows", rows);
		int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', f);
		json_decref(root);
		return rc || ferror(f) ? -EIO : 0;
	}

	/* aligned text: columns as wide as their longest cell (traffic-class
	 * meters are longer than the others) */
	int wt = 6, wr = 8, wn = 4, wm = 26;
	for (size_t i = 0; i < r->n; i++) {
		int lm = (int)strlen(meter_table[r->rows[i].meter].name);
		wm = lm > wm ? lm : wm;
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
	fprintf(f, "%-*s %18s  %-14s %12s %9s %8s\n", wm, "METER", "QUANTITY", "UNIT", "COVERED_S", "COMPLETE",
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
		/* requests, packets: whole; the rest to 3 places, exact */
		fprintf(f, "%-*s %18s  ", wm, m->name,
			usage_quantity_text(u, !u->is_real && m->human_div == 1.0 ? 0 : 3, qt, sizeof(qt)));
		fprintf(f, "%-14s %12s %9s %8lld\n", m->human_unit, money_format_ratio(u->covered_ns, 1000000000, 0, cs,
											 sizeof(cs)), pct, (long long)u->samples);
	}
	fprintf(f, "%zu row%s, usage from %s to %s (UTC hours)\n", r->n, r->n == 1 ? "" : "s", from, to);
	return ferror(f) ? -EIO : 0;
}
