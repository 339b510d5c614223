/*
 * test_usage.c: `tally usage` sums the right hourly rows, attributes each
 * hour to the tenant the resource had then, and renders CSV and JSON as
 * documented. The ledger is written by the real aggregator from readings
 * chosen so every expected figure is worked out by hand below.
 *
 * T0 = 2026-10-01T00:00:00Z. vm-a (tenant acme) holds 2 vCPUs, read at T0,
 * T0+1h, T0+2h; it moves to tenant initech at T0+1h. vm-b (globex) burns
 * one CPU: cpu counter 0 at T0, 3.6e12 ns at T0+1h.
 *   acme:    hour 0: 2 vCPU * 3600 s = 7200 vCPU-s = 2 vCPU-hours, 1 sample
 *   initech: hour 1: 2 vCPU-hours, 1 sample (the T0+1h reading)
 *   globex:  hour 0: 3.6e12 ns = 1 CPU-hour; 2 samples (T0 in hour 0, T0+1h in
 *            hour 1, whose row holds no usage but counts the reading)
 * max_gap is 2 h here, so the hour-long intervals count as covered.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "csv.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "usage.h"
#include "ledger_backend.h"
#include "testutil.h"

#define T0 (1790812800LL * NS_PER_SEC)
#define H NS_PER_HOUR

static char dir[64], path[512];

static void meta(struct batch *b, const char *res, const char *tenant, int64_t t)
{
	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	str_copy(m.resource, res, sizeof(m.resource));
	str_copy(m.name, res, sizeof(m.name));
	str_copy(m.tenant, tenant, sizeof(m.tenant));
	m.time_ns = t;
	ck_assert_int_eq(batch_add_meta(b, &m), 0);
}

static void reading(struct batch *b, const char *res, int meter, int64_t t, double g, uint64_t c)
{
	struct sample s;
	memset(&s, 0, sizeof(s));
	str_copy(s.resource, res, sizeof(s.resource));
	s.meter = (uint16_t)meter;
	s.kind = meter_table[meter].kind;
	s.time_ns = t;
	if (s.kind == SAMPLE_GAUGE)
		s.v.gauge = g;
	else
		s.v.counter = c;
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
}

static void setup(void)
{
	struct aggregator *a;
	struct agg_config ac = { 0 };
	struct tally_err e = { 0 };
	struct batch b;

	tu_mkdtemp(dir, sizeof(dir), "usage");
	tu_ledger_location(path, sizeof(path), dir, "ledger.db");
	ac.ledger_path = path;
	ac.max_gap_ns = 2 * H;
	ck_assert_int_eq(agg_open(&a, &ac, &e), 0);
	batch_init(&b, "host-1");
	b.seq = 1;
	meta(&b, "vm-a", "acme", T0);
	meta(&b, "vm-b", "globex", T0);
	reading(&b, "vm-a", M_VCPUS, T0, 2, 0);
	reading(&b, "vm-b", M_CPU, T0, 0, 0);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	b.seq = 2;
	meta(&b, "vm-a", "initech", T0 + H);
	reading(&b, "vm-a", M_VCPUS, T0 + H, 2, 0);
	reading(&b, "vm-b", M_CPU, T0 + H, 0, 3600000000000ULL);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	batch_clear(&b);
	b.seq = 3;
	reading(&b, "vm-a", M_VCPUS, T0 + 2 * H, 2, 0);
	ck_assert_int_eq(agg_ingest(a, &b, &e), 0);
	ck_assert_int_eq(agg_commit(a, &e), 0);
	agg_close(a);
	batch_release(&b);
}

static void teardown(void)
{
	tu_rmrf(dir);
}

static const struct usage_row *find(const struct usage_result *r, const char *tenant, int meter)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->rows[i].tenant, tenant) && r->rows[i].meter == meter)
			return &r->rows[i];
	return NULL;
}

START_TEST(test_by_tenant)
{
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + 2 * H, .meter = -1 };
	struct usage_result r;
	struct tally_err e = { 0 };
	ck_assert_msg(usage_query(&q, &r, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(r.n, 3);
	const struct usage_row *acme = find(&r, "acme", M_VCPUS), *ini = find(&r, "initech", M_VCPUS),
			       *glo = find(&r, "globex", M_CPU);
	ck_assert_ptr_nonnull(acme);
	ck_assert_ptr_nonnull(ini);
	ck_assert_ptr_nonnull(glo);
	ck_assert_double_eq(usage_human(acme), 2.0);
	ck_assert_double_eq(usage_human(ini), 2.0);
	ck_assert_double_eq(usage_human(glo), 1.0);
	ck_assert_int_eq(glo->qty, 3600000000000LL);
	ck_assert_int_eq(acme->covered_ns, 3600 * NS_PER_SEC);
	ck_assert_int_eq(acme->spanned_ns, 3600 * NS_PER_SEC);
	ck_assert_int_eq(acme->samples, 1);
	ck_assert_int_eq(ini->samples, 1);
	usage_result_release(&r);
}
END_TEST

START_TEST(test_filters)
{
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + 2 * H, .meter = -1,
				 .tenant = "initech" };
	struct usage_result r;
	struct tally_err e = { 0 };
	ck_assert_int_eq(usage_query(&q, &r, &e), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.rows[0].tenant, "initech");
	usage_result_release(&r);
	/* one hour only: acme's 2 vCPU-hours and globex's CPU-hour, not initech */
	q.tenant = NULL;
	q.to_ns = T0 + H;
	ck_assert_int_eq(usage_query(&q, &r, &e), 0);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_ptr_null(find(&r, "initech", M_VCPUS));
	usage_result_release(&r);
	/* per hour for vm-a, cpu meter: nothing (vm-a has no cpu readings) */
	q.to_ns = T0 + 2 * H;
	q.resource = "vm-a";
	q.meter = M_CPU;
	q.by = USAGE_BY_HOUR;
	ck_assert_int_eq(usage_query(&q, &r, &e), 0);
	ck_assert_uint_eq(r.n, 0);
	usage_result_release(&r);
	q.meter = M_VCPUS;
	ck_assert_int_eq(usage_query(&q, &r, &e), 0);
	ck_assert_uint_eq(r.n, 2);
	usage_result_release(&r);
}
END_TEST

static char *render(const struct usage_query *q, enum usage_format fmt)
{
	struct usage_result r;
	struct tally_err e = { 0 };
	char *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(usage_query(q, &r, &e), 0);
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(usage_render(f, q, &r, fmt), 0);
	fclose(f);
	usage_result_release(&r);
	return buf;
}

START_TEST(test_csv)
{
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + 2 * H, .meter = -1 };
	char *out = render(&q, USAGE_CSV);
	const char *want =
		"tenant,meter,quantity,unit,base_quantity,base_unit,covered_seconds,spanned_seconds,"
		"completeness_pct,samples\r\n"
		"acme,vcpus,2.000000000,vCPU-hours,7200.000,vCPU\xc2\xb7" "s,3600.000000000,3600.000000000,100.000,1\r\n"
		"globex,cpu,1.000000000,CPU-hours,3600000000000,ns,3600.000000000,3600.000000000,100.000,2\r\n"
		"initech,vcpus,2.000000000,vCPU-hours,7200.000,vCPU\xc2\xb7" "s,3600.000000000,3600.000000000,100.000,1\r\n";
	ck_assert_str_eq(out, want);
	free(out);
}
END_TEST

START_TEST(test_json)
{
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + 2 * H, .meter = -1,
				 .by = USAGE_BY_RESOURCE };
	char *out = render(&q, USAGE_JSON);
	json_error_t je;
	json_t *root = json_loads(out, 0, &je);
	ck_assert_msg(root != NULL, "not JSON: %s", je.text);
	ck_assert_str_eq(json_string_value(json_object_get(root, "from")), "2026-10-01T00:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(root, "to")), "2026-10-01T02:00:00Z");
	json_t *rows = json_object_get(root, "rows");
	ck_assert_uint_eq(json_array_size(rows), 3);
	json_t *g = json_array_get(rows, 1);   /* sorted: acme, globex, initech */
	ck_assert_str_eq(json_string_value(json_object_get(g, "tenant")), "globex");
	ck_assert_str_eq(json_string_value(json_object_get(g, "resource")), "vm-b");
	ck_assert_str_eq(json_string_value(json_object_get(g, "base_quantity")), "3600000000000");
	ck_assert_str_eq(json_string_value(json_object_get(g, "base_unit")), "ns");
	ck_assert_str_eq(json_string_value(json_object_get(g, "quantity")), "1.000000000");
	ck_assert_str_eq(json_string_value(json_object_get(g, "covered_seconds")), "3600.000000000");
	json_t *a = json_array_get(rows, 0);   /* acme's vcpus: an integral, in vCPU-seconds */
	ck_assert_str_eq(json_string_value(json_object_get(a, "base_quantity")), "7200.000");
	ck_assert_str_eq(json_string_value(json_object_get(a, "base_unit")), "vCPU\xc2\xb7" "s");
	ck_assert_str_eq(json_string_value(json_object_get(a, "completeness_pct")), "100.000");
	ck_assert_str_eq(json_string_value(json_object_get(g, "unit")), "CPU-hours");
	json_decref(root);
	free(out);
}
END_TEST

START_TEST(test_refusals)
{
	struct usage_query q = { .from_ns = T0, .to_ns = T0 + H, .meter = -1 };
	struct usage_result r;
	struct tally_err e = { 0 };
	char other[160];
	snprintf(other, sizeof(other), "%s/missing.db", dir);
	q.ledger = other;
	ck_assert_int_eq(usage_query(&q, &r, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, other));
	snprintf(other, sizeof(other), "%s/notes.txt", dir);
	FILE *f = fopen(other, "w");
	fputs("not a ledger\n", f);
	fclose(f);
	ck_assert_int_eq(usage_query(&q, &r, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a tally ledger"));
}
END_TEST

/* The aligned text keeps its columns when a meter name is longer than the
 * usual 26 characters (network.internet.outgoing.packets: 33): the
 * quantities of every row end in the same column as the header's
 * QUANTITY, which ends at 6 (TENANT, as wide as "globex") + 2 + 33 + 1 + 18
 * = column 60. */
START_TEST(test_text_long_meter_names)
{
	struct usage_query q = { .from_ns = T0, .to_ns = T0 + H, .meter = -1 };
	struct usage_row rows[2];
	struct usage_result r = { rows, 2 };
	memset(rows, 0, sizeof(rows));
	str_copy(rows[0].tenant, "acme", sizeof(rows[0].tenant));
	rows[0].meter = M_CPU;
	rows[0].qty = 3600000000000;                          /* 1.000 CPU-hours */
	str_copy(rows[1].tenant, "globex", sizeof(rows[1].tenant));
	rows[1].meter = meter_lookup("network.internet.outgoing.packets");
	ck_assert_int_ge(rows[1].meter, 0);
	rows[1].qty = 12345;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(usage_render(f, &q, &r, USAGE_TABLE), 0);
	fclose(f);
	const char *want_ends[3] = { "QUANTITY", "1.000", "12345" };
	char *line = buf;
	for (int i = 0; i < 3; i++) {
		char *nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		char *at = strstr(line, want_ends[i]);
		ck_assert_msg(at && at < nl, "line %d lacks %s: %.*s", i, want_ends[i], (int)(nl - line), line);
		ck_assert_msg(at + strlen(want_ends[i]) - line == 60, "line %d: %s ends at column %d, not 60: %.*s", i,
			      want_ends[i], (int)(at + strlen(want_ends[i]) - line), (int)(nl - line), line);
		line = nl + 1;
	}
	free(buf);
}
END_TEST

/* The CSV rule cell by cell (OWASP): a text cell that begins with =, +, -,
 * @, TAB or CR gets a quote in front and is quoted; other text is RFC 4180
 * as before; numbers tally formats are never touched. */
static const struct {
	const char *in, *text, *number;
} cells[] = {
	{ "=HYPERLINK(\"http://x/\",\"y\")", "\"'=HYPERLINK(\"\"http://x/\"\",\"\"y\"\")\"", NULL },
	{ "@SUM(1+1)", "\"'@SUM(1+1)\"", NULL },
	{ "+cmd|' /C calc'!A0", "\"'+cmd|' /C calc'!A0\"", NULL },
	{ "-2+3", "\"'-2+3\"", "-2+3" },
	{ "\tx", "\"'\tx\"", NULL },
	{ "\rx", "\"'\rx\"", NULL },
	{ "vm-1", "vm-1", NULL },
	{ "a,b", "\"a,b\"", NULL },
	{ "say \"hi\"", "\"say \"\"hi\"\"\"", NULL },
	{ "", "", "" },
	{ "-0.05", "\"'-0.05\"", "-0.05" },   /* as a name it is text; our amount stays a number */
	{ "12.500000000", "12.500000000", "12.500000000" },
};

START_TEST(test_csv_cells)
{
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	csv_field(f, cells[_i].in);
	fclose(f);
	ck_assert_str_eq(buf, cells[_i].text);
	free(buf);
	if (cells[_i].number) {
		f = open_memstream(&buf, &len);
		csv_number(f, cells[_i].in);
		fclose(f);
		ck_assert_str_eq(buf, cells[_i].number);
		free(buf);
	}
}
END_TEST

/* Exact quantities at any size (issue 9): the JSON gave binary floats
 * (0.022222120000000001) and integers past 2^53 that readers round
 * (20271077326260237 read back as ...236). Rows changed behind the
 * aggregator: globex's cpu hour holds 20271077326260237 ns (odd, past
 * 2^53), acme's vcpus hour 80.000432 vCPU-s, which is 80000.432
 * milli-vCPU-s, rounded once to 80000 (the ledger's unit, rate.h). So:
 *   globex cpu: base "20271077326260237" ns; 20271077326260237 / 3.6e12 =
 *     5630.8548128500658333... CPU-hours -> "5630.854812850"
 *   acme vcpus: base "80.000" vCPU-s; 80 / 3600 = 0.0222... -> "0.022222222" */
START_TEST(test_json_exact)
{
	tu_ledger_sql2(path, "UPDATE usage SET quantity = 20271077326260237 WHERE quantity = 3600000000000;"
			     "UPDATE usage SET quantity = 80.000432 WHERE hour_ns = 1790812800000000000"
			     " AND meter_id = (SELECT id FROM meters WHERE name = 'vcpus')",
		       "UPDATE usage SET quantity = 20271077326260237 WHERE quantity = 3600000000000;"
		       "UPDATE usage SET quantity_real = 80.000432 WHERE hour_ns = 1790812800000000000"
		       " AND meter_id = (SELECT id FROM meters WHERE name = 'vcpus')");
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + H, .meter = -1 };
	char *out = render(&q, USAGE_JSON);
	json_t *root = json_loads(out, 0, NULL);
	ck_assert_ptr_nonnull(root);
	json_t *rows = json_object_get(root, "rows");
	json_t *a = json_array_get(rows, 0), *g = json_array_get(rows, 1);
	ck_assert_str_eq(json_string_value(json_object_get(g, "base_quantity")), "20271077326260237");
	ck_assert_str_eq(json_string_value(json_object_get(g, "quantity")), "5630.854812850");
	ck_assert_str_eq(json_string_value(json_object_get(a, "base_quantity")), "80.000");
	ck_assert_str_eq(json_string_value(json_object_get(a, "quantity")), "0.022222222");
	json_decref(root);
	free(out);
}
END_TEST

/* A quantity tally never writes is refused, naming the row, never summed
 * into a wrong figure: a negative count, and a gauge's REAL too large to
 * be a count of milli-units (1e300), on either engine. */
START_TEST(test_bad_quantity_refused)
{
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + 3 * H, .meter = -1 };
	struct usage_result r;
	struct tally_err e = { 0 };
	tu_ledger_sql(path, "UPDATE usage SET quantity = -5 WHERE quantity = 3600000000000");
	ck_assert_int_ne(usage_query(&q, &r, &e), 0);
	ck_assert_msg(strstr(e.msg, "resource vm-b") && strstr(e.msg, "hour 2026-10-01T00:00:00Z") &&
		      strstr(e.msg, "'-5' is negative"), "%s", e.msg);
	tu_ledger_sql(path, "UPDATE usage SET quantity = 0 WHERE quantity = -5");
	tu_ledger_sql2(path, "UPDATE usage SET quantity = 1e300 WHERE hour_ns = 1790816400000000000"
			     " AND meter_id = (SELECT id FROM meters WHERE name = 'vcpus')",
		       "UPDATE usage SET quantity_real = 1e300 WHERE hour_ns = 1790816400000000000"
		       " AND meter_id = (SELECT id FROM meters WHERE name = 'vcpus')");
	memset(&e, 0, sizeof(e));
	ck_assert_int_ne(usage_query(&q, &r, &e), 0);
	ck_assert_msg(strstr(e.msg, "resource vm-a") && strstr(e.msg, "hour 2026-10-01T01:00:00Z") &&
		      strstr(e.msg, "does not fit"), "%s", e.msg);
	q.meter = M_CPU;             /* the row is not in what is asked for */
	ck_assert_msg(usage_query(&q, &r, &e) == 0, "%s", e.msg);
	usage_result_release(&r);
}
END_TEST

/* Two rows that each fit but whose sum passes 2^120 milli-units (what a
 * report holds, reader.h) are refused, never wrapped or rounded: vm-a's
 * vcpus in hours 0 and 1, both acme's (its move to initech taken out),
 * 7e32 vCPU-s each: 7e35 milli-units a row, 1.4e36 > 2^120 = 1.33e36. */
START_TEST(test_sum_past_2_120_refused)
{
	struct usage_query q = { .ledger = path, .from_ns = T0, .to_ns = T0 + 3 * H, .meter = M_VCPUS };
	struct usage_result r;
	struct tally_err e = { 0 };
	tu_ledger_sql(path, "DELETE FROM resource_attrs WHERE since_ns = 1790816400000000000");
	tu_ledger_sql2(path, "UPDATE usage SET quantity = 7e32 WHERE meter_id = (SELECT id FROM meters WHERE name = 'vcpus')",
		       "UPDATE usage SET quantity_real = 7e32 WHERE meter_id = (SELECT id FROM meters WHERE name = 'vcpus')");
	ck_assert_int_ne(usage_query(&q, &r, &e), 0);
	ck_assert_msg(strstr(e.msg, "resource vm-a") && strstr(e.msg, "takes its sum past"), "%s", e.msg);
	q.to_ns = T0 + H;            /* one row alone fits */
	ck_assert_msg(usage_query(&q, &r, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(r.n, 1);
	usage_result_release(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("usage");
	TCase *tc = tcase_create("usage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_by_tenant);
	tcase_add_test(tc, test_filters);
	tcase_add_test(tc, test_csv);
	tcase_add_test(tc, test_text_long_meter_names);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_json_exact);
	tcase_add_test(tc, test_bad_quantity_refused);
	tcase_add_test(tc, test_sum_past_2_120_refused);
	tcase_add_loop_test(tc, test_csv_cells, 0, (int)(sizeof(cells) / sizeof(cells[0])));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
