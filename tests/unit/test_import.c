/*
 * test_import.c: custom meters from the config, usage events imported
 * into the ledger's hourly rows, and one-off charges (issue 18, item 4).
 * Every mistake of an operator or a source service is refused with its
 * place; an event seen twice counts once; a key reused for another event
 * is refused; an amount spread over hours splits by cumulative floor and
 * adds up; a level's integral is exact; a late event for an issued period
 * becomes an adjustment on the next invoice; a charge is a line of its own
 * and never lands in an issued period. Expected figures worked by hand.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "charges.h"
#include "import.h"
#include "invoice.h"
#include "issue.h"
#include "ledger.h"
#include "metercfg.h"
#include "plan.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define SEP (1788220800LL * NS_PER_SEC)  /* 2026-09-01T00:00:00Z */
#define OCT (1790812800LL * NS_PER_SEC)  /* 2026-10-01T00:00:00Z */
#define NOV (1793491200LL * NS_PER_SEC)  /* 2026-11-01T00:00:00Z */
#define DEC (1796083200LL * NS_PER_SEC)  /* 2026-12-01T00:00:00Z */
#define H NS_PER_HOUR

static const char meters_yaml[] =
	"meters:\n"
	"  - {name: storage.objects.size, kind: gauge, unit: B, title: Object storage}\n"
	"  - {name: api.calls, kind: counter, unit: request, title: API calls}\n"
	"  - {name: support.minutes, kind: delta, unit: minute, title: Support}\n";

static void define_meters(void)
{
	struct cfg_node *root = NULL;
	struct tally_err e = { 0 };
	meter_custom_clear();
	ck_assert_int_eq(cfg_load_string("tally.yaml", meters_yaml, sizeof(meters_yaml) - 1, &root, &e), 0);
	ck_assert_msg(meter_config_parse(cfg_get(root, "meters"), true, &e) == 0, "%s", e.msg);
	cfg_free(root);
}

static void write_text(const char *name, const char *text)
{
	char p[200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Parse dir/name; returns the status, the events in b. */
static int parse(const char *name, struct import_batch *b, struct tally_err *e)
{
	char p[200];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	memset(b, 0, sizeof(*b));
	return import_parse_file(p, NULL, b, e);
}

/* e->msg, after the directory, starts with want. */
static void says(const struct tally_err *e, const char *want)
{
	const char *m = strstr(e->msg, dir);
	m = m ? m + strlen(dir) + 1 : e->msg;
	ck_assert_msg(!strncmp(m, want, strlen(want)), "got '%s', want '%s'", e->msg, want);
}

START_TEST(test_meter_config)
{
	static const struct { const char *yaml, *want; } bad[] = {
		{ "meters:\n  - {name: Bad Name, kind: gauge, unit: B, title: X}\n",
		  "m.yaml:2:12: key 'name': 'Bad Name' is not a meter name" },
		{ "meters:\n  - {name: cpu, kind: counter, unit: ns, title: X}\n",
		  "m.yaml:2:12: key 'name': 'cpu' is a built-in meter" },
		{ "meters:\n  - {name: a.b, kind: gauge, unit: B, title: X}\n  - {name: a.b, kind: gauge, unit: B, title: Y}\n",
		  "m.yaml:3:12: key 'name': meter 'a.b' is declared twice (first at line 2)" },
		{ "meters:\n  - {name: a.b, kind: gauge, unit: B, title: X, human: Y}\n",
		  "m.yaml:2:49: unknown key 'human' in 'meter'" },
		{ "meters:\n  - {name: a.b, kind: level, unit: B, title: X}\n", "m.yaml:2:23: key 'kind'" },
		{ "meters:\n  - {name: a.b, kind: gauge, unit: B}\n", "m.yaml:2:5: a meter needs 'title'" },
		{ "meters:\n  - {name: a.b, kind: gauge, unit: 1B, title: X}\n", "m.yaml:2:36: key 'unit': '1B' is not a base unit" },
		{ "meters: {a: b}\n", "m.yaml:1:9: key 'meters': expected a list" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfg_node *root = NULL;
		struct tally_err e = { 0 };
		meter_custom_clear();
		ck_assert_int_eq(cfg_load_string("m.yaml", bad[i].yaml, strlen(bad[i].yaml), &root, &e), 0);
		ck_assert_int_eq(meter_config_parse(cfg_get(root, "meters"), true, &e), -EINVAL);
		ck_assert_msg(strstr(e.msg, bad[i].want) == e.msg, "case %zu: '%s' lacks '%s'", i, e.msg, bad[i].want);
		ck_assert_int_eq(meter_count(), METER_COUNT);     /* nothing defined from a bad list */
		cfg_free(root);
	}
	define_meters();
	ck_assert_int_eq(meter_count(), METER_COUNT + 3);
	int m = meter_find("storage.objects.size");
	ck_assert_int_eq(m, METER_COUNT);
	ck_assert_int_eq(meter_get(m)->kind, SAMPLE_GAUGE);
	ck_assert_str_eq(meter_get(m)->title, "Object storage");
	ck_assert_str_eq(meter_get(m)->human_unit, "GiB-hours");
	ck_assert_int_eq(meter_lookup("storage.objects.size"), -1);   /* the collectors' table: built-ins only */
	ck_assert_int_eq(meter_get(meter_find("support.minutes"))->kind, SAMPLE_DELTA);
	meter_custom_clear();
}
END_TEST

START_TEST(test_parse_mistakes)
{
	define_meters();
	tu_mkdtemp(dir, sizeof(dir), "import");
	static const struct { const char *name, *text, *want; } bad[] = {
		{ "a.csv", "id,tenant,resource,meter,time,quantity,qty\n", "a.csv:1:40: unknown column 'qty'" },
		{ "b.csv", "id,tenant,resource,meter,time\n", "b.csv:1:1: no column 'quantity'" },
		{ "c.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.calls,2026-10-01T00:00:00Z\n",
		  "c.csv:2:1: 5 fields, the header has 6" },
		{ "d.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.calls,2026-10-01T00:00:00Z,1.5\n",
		  "d.csv:2:43: 'quantity': expected a whole number of request" },
		{ "e.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.calls,2026-10-01T00:00:00Z,-5\n",
		  "e.csv:2:43: 'quantity': -5 is negative: a counter's quantity never is" },
		{ "f.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.callz,2026-10-01T00:00:00Z,5\n",
		  "f.csv:2:12: 'meter': unknown meter 'api.callz'" },
		{ "g.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,storage.objects.size,2026-10-01,5\n",
		  "g.csv:2:1: meter 'storage.objects.size' is a gauge: an event needs 'end'" },
		{ "h.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,cpu,2026-10-01,5\n",
		  "h.csv:2:12: 'meter': 'cpu' is a built-in meter" },
		{ "i.csv", "id,tenant,resource,meter,time,quantity\n,acme,r1,api.calls,2026-10-01,5\n",
		  "i.csv:2:1: the event has no 'id'" },
		{ "j.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.calls,yesterday,5\n",
		  "j.csv:2:22: 'time': expected an instant" },
		{ "k.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.calls,2026-10-01,\"5\"x\n",
		  "k.csv:2:36: text after a quoted field" },
		{ "l.json", "[{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\",\n"
			    "  \"time\": \"2026-10-01T00:00:00Z\", \"quantity\": 5, \"qty\": 1}]\n",
		  "l.json:2:50: unknown key 'qty' in 'event'" },
		{ "m.json", "{\"events\": [{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\","
			    " \"time\": \"2026-10-01\", \"quantity\": [5]}]}\n",
		  "m.json:1:118: 'quantity': expected a string or a number, not a list" },
		{ "n.txt", "x\n", "n.txt: name a .csv or .json file" },
		/* found by fuzz_import: an object without "events" read an unset list */
		{ "o.json", "{}\n", "o.json:1:1: expected a list of events" },
		/* a JSON file is read as YAML: a value without quotes is a number,
		 * true, false or null, and only an integer is taken (as POST
		 * /api/v1/events takes it); null was read as the text "null", 010
		 * as 10, and an unquoted word as text */
		{ "p.json", "[{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\","
			    " \"time\": \"2026-10-01\", \"quantity\": 5, \"name\": null}]\n",
		  "p.json:1:118: 'name': expected a string, not null" },
		{ "q.json", "[{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\","
			    " \"time\": \"2026-10-01\", \"quantity\": 010}]\n",
		  "q.json:1:107: 'quantity': expected a string or an integer, not '010' (an integer has no leading zero" },
		{ "r.json", "[{\"id\": \"e1\", \"tenant\": acme, \"resource\": \"r1\", \"meter\": \"api.calls\","
			    " \"time\": \"2026-10-01\", \"quantity\": 5}]\n",
		  "r.json:1:25: 'tenant': expected a string, not 'acme'" },
		{ "u.json", "[{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\","
			    " \"time\": \"2026-10-01\", \"quantity\": true}]\n",
		  "u.json:1:107: 'quantity': expected a string or an integer, not true or false" },
		/* a month is not an instant: is 'end: 2026-11' November's start or end? */
		{ "s.csv", "id,tenant,resource,meter,time,quantity\ne1,acme,r1,api.calls,2026-10,5\n",
		  "s.csv:2:22: 'time': expected an instant like 2026-10-05T13:00:00Z, or a date" },
		{ "t.csv", "id,tenant,resource,meter,time,end,quantity\ne1,acme,r1,api.calls,2026-10-01,2026-11,5\n",
		  "t.csv:2:33: 'end': expected an instant or a date after 'time' (got '2026-11')" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct import_batch b;
		struct tally_err e = { 0 };
		write_text(bad[i].name, bad[i].text);
		ck_assert_msg(parse(bad[i].name, &b, &e) == -EINVAL, "case %zu parsed", i);
		says(&e, bad[i].want);
		import_batch_release(&b);
	}
	/* RFC 4180: a quoted field holds commas and doubled quotes */
	struct import_batch b;
	struct tally_err e = { 0 };
	write_text("ok.csv", "quantity,time,meter,resource,tenant,id,name\r\n"
			     "7,2026-10-01T00:30:00Z,api.calls,r1,acme,\"e,1\",\"the \"\"main\"\" API\"\r\n");
	ck_assert_msg(parse("ok.csv", &b, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_str_eq(b.v[0].id, "e,1");
	ck_assert_str_eq(b.v[0].name, "the \"main\" API");
	ck_assert_int_eq(b.v[0].quantity, 7);
	ck_assert_int_eq(b.v[0].time_ns, OCT + 30 * 60 * NS_PER_SEC);
	import_batch_release(&b);
	tu_rmrf(dir);
	meter_custom_clear();
}
END_TEST

static int64_t count(const char *sql)
{
	return tu_ledger_int(ledger, sql);
}

static int import_text(const char *name, const char *text, struct import_result *r, struct tally_err *e)
{
	struct import_batch b;
	write_text(name, text);
	int rc = parse(name, &b, e);
	if (rc == 0)
		rc = import_apply(ledger, "s3", &b, OCT + 40 * 24 * H, r, e);
	import_batch_release(&b);
	return rc;
}

static void write_plan(const char *yaml)
{
	FILE *f = fopen(plan_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(yaml, f);
	fclose(f);
}

static int build(int64_t from, int64_t to, int64_t issue_at, struct invoice **v, size_t *n, struct tally_err *e)
{
	struct plan p;
	struct plan_errors errs;
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to, .tenant = "acme" };
	int rc = invoice_build_all(&p, &q, v, n, e);
	if (rc == 0)
		rc = issue_adjust_all(ledger, *v, *n, &p, e);
	if (rc == 0 && issue_at)
		rc = issue_store(ledger, *v, *n, &p, issue_at, e);
	plan_release(&p);
	return rc;
}

static void release(struct invoice *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		invoice_release(&v[i]);
	free(v);
}

/* A ledger with acme's VM (so the tenant exists), then imports. */
START_TEST(test_import_and_bill)
{
	define_meters();
	lf_open();
	lf_meta("vm-a", "acme", "m1", SEP);
	lf_reading("vm-a", M_VCPUS, SEP, 1, 0, 0);
	lf_flush();
	lf_reading("vm-a", M_VCPUS, SEP + H, 1, 0, 0);
	lf_close();
	struct import_result r;
	struct tally_err e = { 0 };

	/* 10 GiB held 15 days of September: 10 x 2^30 x 15 x 86400 B-s, one
	 * row per hour (360 rows) of 10 x 2^30 x 3600 = 38654705664000 each;
	 * 1000 API calls spread over 00:30-03:00 (2.5 h) by cumulative floor:
	 * floor(1000 x 0.5/2.5) = 200, floor(1000 x 1.5/2.5) - 200 = 400,
	 * 1000 - 600 = 400 */
	ck_assert_msg(import_text("a.csv", "id,tenant,resource,meter,time,end,quantity\n"
				  "v1,acme,bucket:b,storage.objects.size,2026-09-01T00:00:00Z,2026-09-16T00:00:00Z,10737418240\n"
				  "c1,acme,api:main,api.calls,2026-09-02T00:30:00Z,2026-09-02T03:00:00Z,1000\n",
				  &r, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(r.events, 2);
	ck_assert_uint_eq(r.rows, 360 + 3);
	ck_assert_uint_eq(r.resources_new, 2);
	ck_assert_int_eq(count("SELECT count(*) FROM usage u JOIN meters m ON m.id = u.meter_id"
			       " WHERE m.name = 'storage.objects.size' AND quantity = 38654705664000"), 360);
	ck_assert_int_eq(count("SELECT quantity FROM usage u JOIN meters m"
			       " ON m.id = u.meter_id WHERE m.name = 'api.calls' ORDER BY hour_ns LIMIT 1"), 200);
	ck_assert_int_eq(count("SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id"
			       " WHERE m.name = 'api.calls' AND hour_ns > 1788307200000000000"), 800);

	/* the same file again: counted once; the same id with other values:
	 * refused, nothing booked */
	ck_assert_int_eq(import_text("a.csv", "id,tenant,resource,meter,time,end,quantity\n"
				     "v1,acme,bucket:b,storage.objects.size,2026-09-01T00:00:00Z,2026-09-16T00:00:00Z,"
				     "10737418240\n", &r, &e), 0);
	ck_assert_uint_eq(r.events, 0);
	ck_assert_uint_eq(r.duplicates, 1);
	ck_assert_int_eq(import_text("b.csv", "id,tenant,resource,meter,time,quantity\n"
				     "c9,acme,api:main,api.calls,2026-09-03T00:00:00Z,5\n"
				     "v1,acme,bucket:b,storage.objects.size,2026-09-01T00:00:00Z,10\n", &r, &e), -EINVAL);
	ck_assert_int_eq(import_text("b.csv", "id,tenant,resource,meter,time,end,quantity\n"
				     "c9,acme,api:main,api.calls,2026-09-03T00:00:00Z,,5\n"
				     "v1,acme,bucket:b,storage.objects.size,2026-09-01T00:00:00Z,2026-09-02T00:00:00Z,10\n",
				     &r, &e), -EEXIST);
	ck_assert_msg(strstr(e.msg, "event 'v1' of source 's3' was recorded"), "%s", e.msg);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE event_id = 'c9'"), 0);
	/* a resource of another tenant */
	ck_assert_int_eq(import_text("c.csv", "id,tenant,resource,meter,time,quantity\n"
				     "x1,globex,api:main,api.calls,2026-09-03T00:00:00Z,5\n", &r, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "resource 'api:main' belongs to tenant 'acme', not 'globex'"), "%s", e.msg);

	/* billed: 5 GiB-month at 0.10 = 0.50; 1000 calls per thousand at 0.40
	 * = 0.40; a charge of 150.00 and a credit of -20.00 as their own lines */
	write_plan("plan: i\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: storage.objects.size, unit: GiB-month, price: 0.10}\n"
		   "      - {meter: api.calls, unit: request-thousand, price: 0.40}\n");
	struct ledger_charge c1 = { .tenant = "acme", .from_ns = SEP, .to_ns = OCT, .description = "Onboarding",
				    .amount = "150.00", .currency = "", .added_ns = OCT };
	struct ledger_charge c2 = { .tenant = "acme", .from_ns = SEP + 20 * 24 * H, .to_ns = SEP + 21 * 24 * H,
				    .description = "Goodwill", .amount = "-20.00", .currency = "EUR", .added_ns = OCT };
	int64_t id;
	ck_assert_int_eq(ledger_charges_add(ledger, &c1, &id, &e), 0);
	ck_assert_int_eq(ledger_charges_add(ledger, &c2, &id, &e), 0);
	struct invoice *v;
	size_t n;
	ck_assert_msg(build(SEP, OCT, OCT + H, &v, &n, &e) == 0, "%s", e.msg);   /* and issued */
	ck_assert_uint_eq(n, 1);
	int64_t want[] = { 50, 40, 15000, -2000 };
	const char *groups[] = { "storage", "other", "charges", "charges" };
	ck_assert_uint_eq(v[0].n_lines, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(v[0].lines[i].amount_minor, want[i]);
		ck_assert_str_eq(v[0].lines[i].group, groups[i]);
	}
	ck_assert_int_eq(v[0].lines[2].type, INV_CHARGE);
	ck_assert_str_eq(v[0].lines[0].description, "Object storage");
	ck_assert_int_eq(v[0].total_minor, 13090);
	release(v, n);

	/* September is issued: a charge for it is refused; a late event for it
	 * (2000 more calls) is booked, and October's invoice carries 0.80 for it */
	struct ledger_charge c3 = { .tenant = "acme", .from_ns = SEP + 5 * 24 * H, .to_ns = SEP + 6 * 24 * H,
				    .description = "Late", .amount = "1.00", .currency = "", .added_ns = OCT };
	ck_assert_int_eq(ledger_charges_add(ledger, &c3, &id, &e), -EEXIST);
	ck_assert_msg(strstr(e.msg, "tenant 'acme' is invoiced for that period already (i #1)"), "%s", e.msg);
	ck_assert_int_eq(import_text("d.json", "[{\"id\": \"late-1\", \"tenant\": \"acme\", \"resource\": \"api:main\","
				     " \"meter\": \"api.calls\", \"time\": \"2026-09-20T10:00:00Z\", \"quantity\": 2000}]",
				     &r, &e), 0);
	ck_assert_msg(build(OCT, NOV, 0, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(v[0].n_lines, 1);
	ck_assert_int_eq(v[0].lines[0].type, INV_ADJUSTMENT);
	ck_assert_int_eq(v[0].lines[0].amount_minor, 80);
	release(v, n);

	/* a delta meter takes a negative amount: a correction */
	ck_assert_int_eq(import_text("e.csv", "id,tenant,resource,meter,time,quantity\n"
				     "s1,acme,support:acme,support.minutes,2026-10-02T09:00:00Z,90\n"
				     "s2,acme,support:acme,support.minutes,2026-10-02T09:30:00Z,-30\n", &r, &e), 0);
	ck_assert_int_eq(count("SELECT quantity FROM usage u JOIN meters m ON m.id = u.meter_id"
			       " WHERE m.name = 'support.minutes'"), 60);
	lf_teardown();
	meter_custom_clear();
}
END_TEST

/* An event over [time, end) says the resource existed up to end, not at
 * end: end is the first instant it no longer did. A bucket held from 1
 * September 00:00 to 16 September 00:00 existed on 15 days of September
 * (the 1st to the 15th), so a prorated fee of 30.00 is 30.00 x 15/30 =
 * 15.00 (it was billed 16 days, 16.00: the day of end counted). A bucket
 * held all of September, [1 Sep, 1 Oct), never existed in October: no
 * October invoice at all (it was given one with its fees and minimum,
 * 2.00 + 1.00 of 30 days + 5.00 true-up, for a month it was not in). */
START_TEST(test_span_end_is_not_a_sighting)
{
	define_meters();
	lf_open();
	lf_close();
	struct import_result r;
	struct tally_err e = { 0 };
	ck_assert_msg(import_text("s.csv", "id,tenant,resource,meter,time,end,quantity\n"
				  "h1,acme,bucket:half,storage.objects.size,2026-09-01T00:00:00Z,2026-09-16T00:00:00Z,1\n"
				  "w1,globex,bucket:whole,storage.objects.size,2026-09-01T00:00:00Z,2026-10-01T00:00:00Z,1\n",
				  &r, &e) == 0, "%s", e.msg);
	write_plan("plan: i\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: storage.objects.size, unit: GiB-month, price: 0.10}\n"
		   "    fees:\n      - {name: support, amount: 30.00, prorate: true}\n"
		   "      - {name: base, amount: 2.00}\n    minimum: 5.00\n");
	struct plan p;
	struct plan_errors errs;
	ck_assert_msg(plan_load(plan_path, &p, &errs) == 0, "%s", errs.msg[0]);
	struct invoice *v;
	size_t n;
	struct rate_query q = { .ledger = ledger, .from_ns = SEP, .to_ns = OCT, .tenant = "acme" };
	ck_assert_msg(invoice_build_all(&p, &q, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	const struct invoice_line *fee = NULL;
	for (size_t i = 0; i < v[0].n_lines; i++)
		if (v[0].lines[i].type == INV_FEE && !strncmp(v[0].lines[i].description, "support", 7))
			fee = &v[0].lines[i];
	ck_assert_ptr_nonnull(fee);
	ck_assert_str_eq(fee->description, "support (15 of 30 days)");
	ck_assert_int_eq(fee->amount_minor, 1500);
	release(v, n);
	/* October, every tenant: neither bucket was in it */
	q = (struct rate_query){ .ledger = ledger, .from_ns = OCT, .to_ns = NOV };
	ck_assert_msg(invoice_build_all(&p, &q, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 0);
	release(v, n);
	plan_release(&p);
	lf_teardown();
	meter_custom_clear();
}
END_TEST

/* A charge no invoice line can show (more decimals than the plan's
 * currency has, or another currency) stops the invoice, naming it and how
 * to undo it: charges are append-only, so a later one of the opposite
 * amount, same tenant, period and currency, undoes it, and the pair (they
 * net to 0) is left off. By hand, September for acme, EUR with 2 decimals,
 * usage 1000 calls at 0.40 a thousand = 0.40:
 *   #1 1.005: refused (a credit of -1.005 undoes it);
 *   #2 -1.005, the credit: #1 and #2 left off; a charge of 2.50 (#3) and
 *   a credit of -2.50 (#4), which a line can show, stay lines of their
 *   own: 0.40 + 2.50 - 2.50 = 0.40;
 *   #5 7.00 in USD: refused; #6 -7.00 in EUR does not undo it (another
 *   currency), #7 -7.00 USD does: 0.40 + 2.50 - 2.50 + 0 + (-7.00 EUR, a
 *   line) = -6.60 EUR. */
START_TEST(test_charge_undone)
{
	define_meters();
	lf_open();
	lf_close();
	struct import_result r;
	struct tally_err e = { 0 };
	ck_assert_msg(import_text("a.csv", "id,tenant,resource,meter,time,quantity\n"
				  "c1,acme,api:main,api.calls,2026-09-03T00:00:00Z,1000\n", &r, &e) == 0, "%s", e.msg);
	write_plan("plan: i\ncurrency: EUR\nversions:\n  - from: 2026-01-01\n    prices:\n"
		   "      - {meter: api.calls, unit: request-thousand, price: 0.40}\n");
	int64_t id;
	struct invoice *v;
	size_t n;
	/* a tenant no resource has had, and none of whose charges the ledger
	 * holds, is refused when added (on either engine): no invoice would
	 * carry it */
	struct ledger_charge u = { .tenant = "acmee", .from_ns = SEP, .to_ns = OCT, .description = "Misspelt",
				   .amount = "5.00", .currency = "", .added_ns = OCT };
	ck_assert_int_eq(ledger_charges_add(ledger, &u, &id, &e), -ESRCH);
	ck_assert_msg(strstr(e.msg, "tenant 'acmee' is not in the ledger"), "%s", e.msg);
	struct ledger_charge c = { .tenant = "acme", .from_ns = SEP, .to_ns = OCT, .description = "Typo",
				   .amount = "1.005", .currency = "", .added_ns = OCT };
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	ck_assert_int_eq(build(SEP, OCT, 0, &v, &n, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "charge #1 of tenant 'acme' amount '1.005' is not an amount in EUR (at most 2"
				    " decimals); charges are never edited: undo it with one of the opposite amount for"
				    " the same period (tally charge add --amount -1.005)"), "%s", e.msg);
	c.amount = "-1.005";
	c.description = "Undo the typo";
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	c.amount = "2.50";
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	c.amount = "-2.50";
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	ck_assert_msg(build(SEP, OCT, 0, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(v[0].n_lines, 3);   /* the usage, 2.50, -2.50 */
	ck_assert_int_eq(v[0].total_minor, 40);
	release(v, n);
	c.amount = "7.00";
	c.currency = "USD";
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	ck_assert_int_eq(build(SEP, OCT, 0, &v, &n, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "charge #5 of tenant 'acme' is in USD, the plan 'i' prices in EUR; charges are"
				    " never edited: undo it with one of the opposite amount for the same period (tally"
				    " charge add --amount -7.00 --currency USD)"), "%s", e.msg);
	c.amount = "-7.00";
	c.currency = "EUR";
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	ck_assert_int_eq(build(SEP, OCT, 0, &v, &n, &e), -EINVAL);
	c.currency = "USD";
	ck_assert_int_eq(ledger_charges_add(ledger, &c, &id, &e), 0);
	ck_assert_msg(build(SEP, OCT, 0, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(v[0].n_lines, 4);   /* the usage, 2.50, -2.50, -7.00 EUR */
	ck_assert_int_eq(v[0].total_minor, -660);
	release(v, n);
	lf_teardown();
	meter_custom_clear();
}
END_TEST

/* POST /api/v1/events bodies (import_parse_request): the shape is the
 * request's (400: index and key where there is one), an event's rules the
 * same as a file's (422); a quantity is exact as a JSON integer or a
 * string of digits, never a JSON real. */
START_TEST(test_request)
{
	define_meters();
#define EV(x) "{\"events\": [{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\"," \
	" \"time\": \"2026-10-01T00:00:00Z\", \"quantity\": 5}, " x "]}"
#define E2(q) EV("{\"id\": \"e2\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\"," \
	" \"time\": \"2026-10-01T00:00:00Z\", \"quantity\": " q "}")
	static const struct {
		const char *body;
		int rc;
		long index;
		const char *key;
		const char *want;
	} bad[] = {
		{ "{\"events\": [", -EBADMSG, -1, NULL, "the body is not JSON: line 1, column 12" },
		{ "[]", -EBADMSG, -1, NULL, "expected an object {\"events\": [...]}" },
		{ "{\"events\": []}", -EBADMSG, -1, "events", "'events': 0 events; a request carries 1 to 3" },
		{ "{\"events\": {}}", -EBADMSG, -1, "events", "'events': expected a list of events" },
		{ "{\"events\": [1]}", -EBADMSG, 0, NULL, "events[0]: expected an object" },
		{ "{\"evnets\": []}", -EBADMSG, -1, NULL, "unknown key 'evnets' (known: events, source)" },
		{ "{\"events\": [], \"events\": []}", -EBADMSG, -1, NULL, "the body is not JSON: line 1, column 23:"
		  " duplicate object key" },
		{ "{\"source\": \"a b\", \"events\": [{}]}", -EBADMSG, -1, "source", "'source': expected the source's name" },
		{ E2("1.5"), -EBADMSG, 1, "quantity", "events[1].quantity: a JSON real number (1.5) is refused: a"
		  " quantity is exact" },
		{ E2("1.0"), -EBADMSG, 1, "quantity", "events[1].quantity: a JSON real number (1) is refused" },
		{ E2("1e3"), -EBADMSG, 1, "quantity", "events[1].quantity: a JSON real number (1000) is refused" },
		{ E2("true"), -EBADMSG, 1, "quantity", "events[1].quantity: expected a string or an integer, not true"
		  " or false" },
		{ E2("null"), -EBADMSG, 1, "quantity", "events[1].quantity: expected a string or an integer, not null" },
		{ E2("\"5\", \"qty\": 1"), -EBADMSG, 1, NULL, "events[1]: unknown key 'qty'" },
		/* past 2^63 - 1: jansson refuses the number itself */
		{ E2("9223372036854775808"), -EBADMSG, -1, NULL, "the body is not JSON: line 1, column 265: too big"
		  " integer" },
		{ E2("\"9223372036854775808\""), -ERANGE, 1, "quantity", "events[1]: 'quantity': 9223372036854775808 is"
		  " beyond what a ledger row holds exactly" },
		{ E2("\"1.5\""), -EINVAL, 1, "quantity", "events[1]: 'quantity': expected a whole number of request" },
		{ E2("-5"), -EINVAL, 1, "quantity", "events[1]: 'quantity': -5 is negative: a counter's quantity never"
		  " is" },
		{ EV("{\"id\": \"e2\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.callz\", \"time\":"
		     " \"2026-10-01\", \"quantity\": 1}"), -EINVAL, 1, "meter", "events[1]: 'meter': unknown meter"
		  " 'api.callz'" },
		{ EV("{\"id\": \"e2\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\", \"time\":"
		     " \"yesterday\", \"quantity\": 1}"), -EINVAL, 1, "time", "events[1]: 'time': expected an instant" },
		{ EV("{\"id\": \"e2\", \"resource\": \"r1\", \"meter\": \"api.calls\", \"time\": \"2026-10-01\","
		     " \"quantity\": 1}"), -EINVAL, 1, "tenant", "events[1]: the event has no 'tenant'" },
		{ EV("{\"id\": \"e2\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"storage.objects.size\","
		     " \"time\": \"2026-10-01\", \"quantity\": 1}"), -EINVAL, 1, "end", "events[1]: meter"
		  " 'storage.objects.size' is a gauge: an event needs 'end'" },
		{ "{\"events\": [{}, {}, {}, {}]}", -EBADMSG, -1, "events", "'events': 4 events; a request carries 1 to 3" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct import_batch b = { 0 };
		struct import_fault f;
		struct tally_err e = { 0 };
		char source[64];
		int rc = import_parse_request(bad[i].body, strlen(bad[i].body), 3, source, sizeof(source), &b, &f, &e);
		ck_assert_msg(rc == bad[i].rc, "case %zu: %d, want %d (%s)", i, rc, bad[i].rc, e.msg);
		ck_assert_msg(!strncmp(e.msg, bad[i].want, strlen(bad[i].want)), "case %zu: '%s', want '%s'", i, e.msg,
			      bad[i].want);
		ck_assert_msg(f.index == bad[i].index, "case %zu: index %ld, want %ld", i, f.index, bad[i].index);
		ck_assert_msg(bad[i].key ? f.key && !strcmp(f.key, bad[i].key) : !f.key, "case %zu: key %s", i,
			      f.key ? f.key : "(none)");
		ck_assert_int_eq(f.shape, bad[i].rc == -EBADMSG);
		import_batch_release(&b);
	}
	/* exact past 2^53 (where a double would round to ...992), as a JSON
	 * integer and as a string; the body's source */
	static const char good[] = "{\"source\": \"rgw\", \"events\": ["
		"{\"id\": \"e1\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\","
		" \"time\": \"2026-10-01T00:00:00Z\", \"quantity\": 9007199254740993},"
		"{\"id\": \"e2\", \"tenant\": \"acme\", \"resource\": \"r1\", \"meter\": \"api.calls\","
		" \"time\": \"2026-10-01T01:00:00Z\", \"quantity\": \"9223372036854775807\", \"device\": \"d\"}]}";
	struct import_batch b = { 0 };
	struct import_fault f;
	struct tally_err e = { 0 };
	char source[64];
	ck_assert_msg(import_parse_request(good, sizeof(good) - 1, 3, source, sizeof(source), &b, &f, &e) == 0, "%s",
		      e.msg);
	ck_assert_str_eq(source, "rgw");
	ck_assert_uint_eq(b.n, 2);
	ck_assert_int_eq(b.v[0].quantity, 9007199254740993LL);
	ck_assert_int_eq(b.v[1].quantity, INT64_MAX);
	ck_assert_int_eq(b.v[1].time_ns, OCT + H);
	ck_assert_str_eq(b.v[1].device, "d");
	import_batch_release(&b);
	meter_custom_clear();
#undef EV
#undef E2
}
END_TEST

/* The writer's side (import.h: struct import_resources): resources as the
 * aggregator knows them. */
static int w_find(void *ctx, const char *uuid, struct ledger_resource *out, bool *in_ledger)
{
	return agg_resource_find(ctx, uuid, out, in_ledger);
}
static int64_t w_new_id(void *ctx)
{
	return agg_resource_new_id(ctx);
}
static void w_learn(void *ctx, const struct ledger_resource *r)
{
	ck_assert_int_eq(agg_resource_learn(ctx, r), 0);
}

/* Events booked on the aggregator's own ledger between its commits, as
 * tallyd books POSTed ones: a VM the aggregator has not committed yet and
 * a new bucket; one id per uuid whatever commits first; a transaction
 * that rolls back leaves the aggregator as it was; a key used twice in
 * one request counts once; a resource of another tenant is refused with
 * the index of its event. */
START_TEST(test_writer_beside_aggregator)
{
	define_meters();
	lf_open();
	lf_meta("vm-a", "acme", "m1", SEP);
	lf_reading("vm-a", M_VCPUS, SEP, 1, 0, 0);
	lf_flush();   /* vm-a known to the aggregator, not committed */
	struct ledger *l = agg_ledger(agg);
	struct import_writer *w;
	const struct import_resources res = { w_find, w_new_id, w_learn, agg };
	struct tally_err e = { 0 };
	struct import_result r;
	struct import_fault f;
	char src[64];
	size_t bad;
	ck_assert_int_eq(import_writer_new(&w, l, &res), 0);
	static const char body[] = "{\"events\": ["
		"{\"id\": \"a1\", \"tenant\": \"acme\", \"resource\": \"vm-a\", \"meter\": \"api.calls\","
		" \"time\": \"2026-09-01T00:10:00Z\", \"quantity\": 7},"
		"{\"id\": \"b1\", \"tenant\": \"acme\", \"resource\": \"bucket:x\", \"meter\": \"api.calls\","
		" \"time\": \"2026-09-01T00:20:00Z\", \"quantity\": 3},"
		"{\"id\": \"a1\", \"tenant\": \"acme\", \"resource\": \"vm-a\", \"meter\": \"api.calls\","
		" \"time\": \"2026-09-01T00:10:00Z\", \"quantity\": 7}]}";
	struct import_batch b = { 0 };
	ck_assert_int_eq(import_parse_request(body, sizeof(body) - 1, 10, src, sizeof(src), &b, &f, &e), 0);

	/* rolled back: the aggregator learns nothing */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_msg(import_writer_book(w, "api", &b, OCT, &r, &bad, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(r.events, 2);
	ck_assert_uint_eq(r.duplicates, 1);
	ck_assert(b.v[0].booked && b.v[1].booked && !b.v[2].booked);
	ledger_rollback(l);
	import_writer_end(w, false);
	struct ledger_resource lr;
	bool in;
	ck_assert_int_eq(agg_resource_find(agg, "bucket:x", &lr, &in), 0);
	ck_assert_int_eq(agg_resource_find(agg, "vm-a", &lr, &in), 1);
	ck_assert(!in);

	/* committed: both rows in the ledger, the aggregator knows them */
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_msg(import_writer_book(w, "api", &b, OCT, &r, &bad, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ledger_commit(l, &e), 0);
	import_writer_end(w, true);
	ck_assert_int_eq(agg_resource_find(agg, "vm-a", &lr, &in), 1);
	ck_assert(in);
	ck_assert_int_eq(agg_resource_find(agg, "bucket:x", &lr, &in), 1);
	ck_assert(in);
	int64_t bucket_id = lr.id;
	import_batch_release(&b);

	/* another tenant's resource: refused, the index said */
	static const char other[] = "{\"events\": ["
		"{\"id\": \"c1\", \"tenant\": \"acme\", \"resource\": \"bucket:y\", \"meter\": \"api.calls\","
		" \"time\": \"2026-09-01T00:20:00Z\", \"quantity\": 3},"
		"{\"id\": \"c2\", \"tenant\": \"globex\", \"resource\": \"vm-a\", \"meter\": \"api.calls\","
		" \"time\": \"2026-09-01T00:20:00Z\", \"quantity\": 3}]}";
	ck_assert_int_eq(import_parse_request(other, sizeof(other) - 1, 10, src, sizeof(src), &b, &f, &e), 0);
	ck_assert_int_eq(ledger_begin(l, &e), 0);
	ck_assert_int_eq(import_writer_book(w, "api", &b, OCT, &r, &bad, &e), -EINVAL);
	ck_assert_uint_eq(bad, 1);
	ck_assert_msg(strstr(e.msg, "events[1]: resource 'vm-a' belongs to tenant 'acme', not 'globex'"), "%s", e.msg);
	ledger_rollback(l);
	import_writer_end(w, false);
	import_batch_release(&b);
	import_writer_free(w);

	/* the aggregator commits vm-a and a new VM after that: every uuid one
	 * row, the new VM's id not the bucket's */
	lf_meta("vm-b", "acme", "m1", SEP + H);
	lf_reading("vm-a", M_VCPUS, SEP + H, 1, 0, 0);
	lf_reading("vm-b", M_VCPUS, SEP + H, 2, 0, 0);
	lf_close();
	ck_assert_int_eq(count("SELECT count(*) FROM resources"), 3);
	ck_assert_int_eq(count("SELECT count(DISTINCT uuid) FROM resources"), 3);
	ck_assert_int_eq(count("SELECT id FROM resources WHERE uuid = 'bucket:x'"), bucket_id);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events"), 2);
	ck_assert_int_eq(count("SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id"
			       " WHERE m.name = 'api.calls'"), 10);
	/* vm-a's span keeps the aggregator's first reading and the event */
	ck_assert_int_eq(count("SELECT first_seen_ns FROM resources WHERE uuid = 'vm-a'"), SEP);
	lf_teardown();
	meter_custom_clear();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("import");
	TCase *tc = tcase_create("import");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_meter_config);
	tcase_add_test(tc, test_parse_mistakes);
	tcase_add_test(tc, test_import_and_bill);
	tcase_add_test(tc, test_span_end_is_not_a_sighting);
	tcase_add_test(tc, test_charge_undone);
	tcase_add_test(tc, test_request);
	tcase_add_test(tc, test_writer_beside_aggregator);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
