/*
 * usage.c: the usage report: one grouped read of the ledger (reader.h) and
 * three renderers (aligned text, RFC 4180 CSV, JSON). See usage.h and
 * docs/usage.md.
 */
#include "usage.h"
#include "vec.h"
#include "csv.h"
#include "err.h"
#include "reader.h"
#include "meter.h"
#include "money.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct collect {
	const struct usage_query *q;
	struct usage_result *out;
	size_t cap;
	struct tally_err *e;
};

static int on_sum(void *ctx, const struct ledger_usage_sum *row)
{
	struct collect *c = ctx;
	struct usage_result *out = c->out;
	int m = meter_find(row->meter);
	if (m < 0)
		return 0; /* a meter this tally does not know */
	if (vec_reserve((void **)&out->rows, &c->cap, out->n + 1, sizeof(*out->rows), 64))
		return err_set(c->e, -ENOMEM, "out of memory");
	struct usage_row *r = &out->rows[out->n++];
	memset(r, 0, sizeof(*r));
	str_copy(r->tenant, row->tenant, sizeof(r->tenant));
	str_copy(r->resource, row->resource, sizeof(r->resource));
	str_copy(r->name, row->name, sizeof(r->name));
	r->hour_ns = row->hour_ns;
	r->meter = m;
	r->is_real = meter_get(m)->kind == SAMPLE_GAUGE;
	if (!r->is_real && row->milli % 1000)
		return err_set(c->e, -EIO, "%s: a %s count is not an integer: the ledger is not what tally writes",
			       c->q->ledger, meter_get(m)->name);
	r->qty = r->is_real ? row->milli : row->milli / 1000;
	r->covered_ns = row->covered_ns;
	r->spanned_ns = row->spanned_ns;
	r->samples = row->samples;
	return 0;
}

int usage_query(const struct usage_query *q, struct usage_result *out, struct tally_err *e)
{
	static const enum ledger_group group[] = { [USAGE_BY_TENANT] = LEDGER_BY_TENANT,
						   [USAGE_BY_RESOURCE] = LEDGER_BY_RESOURCE,
						   [USAGE_BY_HOUR] = LEDGER_BY_HOUR };
	struct ledger_reader *lr = NULL;
	struct collect c = { .q = q, .out = out, .e = e };
	int rc;

	memset(out, 0, sizeof(*out));
	if (q->from_ns >= q->to_ns)
		return err_set(e, -EINVAL, "the period is empty: --from must be before --to");
	struct ledger_usage_filter f = { .from_ns = q->from_ns, .to_ns = q->to_ns, .resource = q->resource,
					 .meter = q->meter >= 0 ? meter_get(q->meter)->name : NULL,
					 .tenant = q->tenant, .by = group[q->by], .where = q->ledger };
	if ((rc = ledger_reader_open(q->ledger, &lr, e)) == 0)
		rc = ledger_sum_usage(lr, &f, on_sum, &c, e);
	ledger_reader_close(lr);
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
	return (__int128)meter_get(r->meter)->human_div * (r->is_real ? 1000 : 1);
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
	/* a gauge's integral: its unit-seconds ("B·s", "IP·s"), made once */
	static char names[METER_COUNT + METER_CUSTOM_MAX][40];
	const struct meter_def *m = meter_get(meter);
	if (m->kind != SAMPLE_GAUGE)
		return m->unit;
	if (!names[meter][0])
		snprintf(names[meter], sizeof(names[meter]), "%s·s", m->unit);
	return names[meter];
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
			const struct meter_def *m = meter_get(u->meter);
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
			const struct meter_def *m = meter_get(u->meter);
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
		int lm = (int)strlen(meter_get(r->rows[i].meter)->name);
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
		const struct meter_def *m = meter_get(u->meter);
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
