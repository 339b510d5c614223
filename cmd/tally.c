/*
 * tally: the operator's command line. Subcommands wire library modules
 * together; the logic lives in billing/ (and later exporters/).
 *
 *   tally usage --period 2026-10 | --from T --to T [--tenant X] [--resource UUID] [--meter M]
 *               [--by tenant|resource|hour] [--format table|csv|json]
 *               [--ledger PATH]
 *
 *   tally invoice --period 2026-10 | --from T --to T [--tenant X] [--plan FILE]
 *               [--format text|csv|json|html] [--detail] [--combined] [--ledger PATH]
 *               [--issue [--allow-incomplete]]
 *   tally invoice explain NUMBER LINE | --period P --tenant X [--plan FILE] LINE
 *   tally invoice show NUMBER
 *   tally sla --period 2026-10 | --from T --to T [--tenant X] [--plan FILE]
 *               [--format text|csv|json|html] [--ledger PATH]
 *   tally plan check FILE
 *   tally ledger check|verify [--ledger LEDGER]
 *   tally ledger copy --from LEDGER --to LEDGER
 *   tally agents [--format text|json] [--ledger LEDGER]
 *   tally import FILE [--source NAME] [--format csv|json] [--ledger LEDGER]
 *   tally charge add --tenant X --period P --amount A --description TEXT
 *   tally charge list [--tenant X]
 *   (every command: --config FILE, the config's custom meters)
 *
 * Exit status: 0 ok; 1 runtime error (ledger missing or unreadable);
 * 2 bad command line, plan or input (the message names the flag and the
 * value, or file:line:col).
 */
#include "agents.h"
#include "charges.h"
#include "credit.h"
#include "customer.h"
#include "err.h"
#include "explain.h"
#include "invoice.h"
#include "copy.h"
#include "import.h"
#include "issue.h"
#include "ledger.h"
#include "meter.h"
#include "metercfg.h"
#include "plan.h"
#include "sla.h"
#include "tallytime.h"
#include "usage.h"
#include "version.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage_help(FILE *f)
{
	fprintf(f,
		"usage: tally usage --period 2026-10 | --from T --to T [options]\n"
		"  --period P           a calendar month (2026-10) or day, in UTC, as for tally invoice\n"
		"  --from T, --to T     or: 2026-10 (a month), 2026-10-05 (a day) or\n"
		"                       2026-10-05T13:00:00Z; --to takes the end of what it names,\n"
		"                       so --from 2026-10 --to 2026-10 is all of October (UTC)\n"
		"  --tenant X           only tenant X\n"
		"  --resource UUID      only this resource\n"
		"  --meter M            only meter M (cpu, memory, network.incoming.bytes, ...)\n"
		"  --by tenant|resource|hour   rows per tenant (default), resource, or hour\n"
		"  --format table|csv|json     output format (default table)\n"
		"  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db)\n");
	return 0;
}

static const char *cmd_name = "usage";

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tally %s: ", cmd_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(tally %s --help for the options)\n", cmd_name);
	return 2;
}

/* --ledger, taken once: a command reads one ledger, so a second --ledger
 * is a mistake (exit 2), never silently the last one. */
static int ledger_once(const char **dst, bool *seen, const char *arg)
{
	if (*seen)
		return bad("--ledger given twice ('%s', then '%s'): a command reads one ledger; run it once per"
			   " ledger", *dst, arg);
	*seen = true;
	*dst = arg;
	return 0;
}

/* The index of arg among names (NULL-terminated), or -1 after saying what
 * the flag expects ("--format 'xml': expected text, csv or json"). */
static int choice(const char *flag, const char *arg, const char *const *names)
{
	char want[160] = "";
	size_t used = 0;
	for (int i = 0; names[i]; i++)
		if (!strcmp(arg, names[i]))
			return i;
	for (int i = 0; names[i] && used < sizeof(want); i++)
		used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%s",
					 i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
	bad("%s '%s': expected %s", flag, arg, want);
	return -1;
}

/* The ledger location: $TALLY_LEDGER, else ./var/ledger.db. */
static const char *default_ledger(void)
{
	const char *l = getenv("TALLY_LEDGER");
	return l && l[0] ? l : "./var/ledger.db";
}

/* A ledger location as given (--ledger, $TALLY_LEDGER) checked and
 * without its password (ledger.h), into buf; NULL after saying what is
 * wrong (exit 2). */
static const char *ledger_loc(const char *given, char *buf, size_t len)
{
	struct tally_err e = { 0 };
	if (ledger_location_normalize(given, buf, len, &e)) {
		bad("--ledger: %s", e.msg);
		return NULL;
	}
	return buf;
}

/* --from/--to or --period into whole UTC hours [from, to). Returns 0 or
 * the exit status 2 after saying what is wrong. */
static int parse_period(const char *period, const char *from, const char *to, int64_t *from_ns, int64_t *to_ns)
{
	struct tally_err e = { 0 };
	int64_t s, x;
	if (period && (from || to))
		return bad("give --period or --from/--to, not both");
	if (period) {
		if (time_parse_range(period, from_ns, to_ns, &e))
			return bad("--period %s", e.msg);
	} else {
		if (!from || !to)
			return bad("%s is required", !from ? "--from" : "--to");
		if (time_parse_range(from, from_ns, &x, &e))
			return bad("--from %s", e.msg);
		if (time_parse_range(to, &s, to_ns, &e))
			return bad("--to %s", e.msg);
	}
	if (*from_ns % NS_PER_HOUR || *to_ns % NS_PER_HOUR)
		return bad("%s: usage is kept per UTC hour; give whole hours", period ? period : from);
	if (*from_ns >= *to_ns)
		return bad("the period is empty: its start is not before its end");
	return 0;
}

static int cmd_usage(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "period", required_argument, NULL, 'p' }, { "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },     { "tenant", required_argument, NULL, 'T' },
		{ "resource", required_argument, NULL, 'r' },
		{ "meter", required_argument, NULL, 'm' },  { "by", required_argument, NULL, 'b' },
		{ "format", required_argument, NULL, 'F' }, { "ledger", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	struct usage_query q = { .meter = -1, .by = USAGE_BY_TENANT };
	enum usage_format fmt = USAGE_TABLE;
	const char *period = NULL, *from = NULL, *to = NULL;
	struct tally_err e = { 0 };
	int opt;

	cmd_name = "usage";
	q.ledger = default_ledger();
	optind = 1;
	bool ledger_seen = false;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': period = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'T': q.tenant = optarg; break;
		case 'r': q.resource = optarg; break;
		case 'l': if (ledger_once(&q.ledger, &ledger_seen, optarg)) return 2; break;
		case 'm':
			if ((q.meter = meter_find(optarg)) < 0) {
				char known[2048] = "";
				size_t used = 0;
				for (int i = 0; i < meter_count() && used < sizeof(known); i++)
					used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
								 i ? ", " : "", meter_get(i)->name);
				return bad("--meter '%s': no such meter (known: %s)", optarg, known);
			}
			break;
		case 'b': {
			static const char *const bys[] = { "tenant", "resource", "hour", NULL };
			int x = choice("--by", optarg, bys);   /* enum usage_by order */
			if (x < 0)
				return 2;
			q.by = (enum usage_by)x;
			break;
		}
		case 'F': {
			static const char *const fmts[] = { "table", "csv", "json", NULL };
			int x = choice("--format", optarg, fmts);   /* enum usage_format order */
			if (x < 0)
				return 2;
			fmt = (enum usage_format)x;
			break;
		}
		case 'h': return usage_help(stdout);
		default: usage_help(stderr); return 2;
		}
	}
	char loc[4096];
	if (!(q.ledger = ledger_loc(q.ledger, loc, sizeof(loc))))
		return 2;
	if (optind != argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (parse_period(period, from, to, &q.from_ns, &q.to_ns))
		return 2;

	struct usage_result r;
	int rc = usage_query(&q, &r, &e);
	if (rc) {
		fprintf(stderr, "tally usage: %s\n", e.msg);
		return 1;
	}
	rc = usage_render(stdout, &q, &r, fmt);
	usage_result_release(&r);
	if (rc || fflush(stdout)) {
		fprintf(stderr, "tally usage: cannot write the output\n");
		return 1;
	}
	return 0;
}


static int invoice_help(FILE *f)
{
	fprintf(f,
		"usage: tally invoice --period 2026-10 [options]\n"
		"  --period P           a calendar month (2026-10) or day, in UTC\n"
		"  --from T, --to T     or any whole hours, as for tally usage\n"
		"  --tenant X           only tenant X (exit 2 when the ledger has no such tenant)\n"
		"  --plan FILE          the rate plan (default $TALLY_PLAN, else ./plan.yaml)\n"
		"  --format text|csv|json|html   output format (default text; JSON: schemas/invoice.schema.json;\n"
		"                       HTML: one printable page with a usage chart per meter)\n"
		"  --rrd DIR            the RRD files for the HTML charts (default: rrd/ beside the ledger)\n"
		"  --detail             which resource used what, under each usage line\n"
		"  --combined           rate all tenants as one account '*'\n"
		"  --issue              number the invoices and store them in the ledger, never to change\n"
		"  --allow-incomplete   issue although the ledger's data end before the period does\n"
		"  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db)\n"
		"  --customers FILE     the customers' billing details (default $TALLY_CUSTOMERS;\n"
		"                       schemas/customers.md); with --issue every tenant must be in it\n"
		"  --date YYYY-MM-DD    the invoice date (default: today with --issue, else the day\n"
		"                       the period ends); the due date follows the payment terms\n"
		"       tally invoice explain NUMBER LINE      the ledger rows and arithmetic behind a line\n"
		"       tally invoice explain --period P --tenant X [--plan FILE] LINE   (of a draft)\n"
		"       tally invoice show NUMBER              an issued invoice as stored (JSON), hash checked\n"
		"       tally invoice credit NUMBER --reason TEXT [--line N | --amount X]   a credit note for it\n");
	return 0;
}

static int load_plan(const char *path, struct plan *p)
{
	struct plan_errors errs;
	if (plan_load(path, p, &errs) == 0)
		return 0;
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	fprintf(stderr, "tally %s: the plan %s has mistakes (tally plan check %s): nothing made\n", cmd_name, path,
		path);
	return 2;
}

static int load_customers(const char *path, struct customers *c)
{
	struct plan_errors errs;
	if (customers_load(path, c, &errs) == 0)
		return 0;
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	if (errs.total > errs.n)
		fprintf(stderr, "... and %d more\n", errs.total - errs.n);
	fprintf(stderr, "tally %s: the customers file %s has mistakes: nothing made\n", cmd_name, path);
	return 2;
}

static const char *default_plan(void)
{
	const char *p = getenv("TALLY_PLAN");
	return p && p[0] ? p : "./plan.yaml";
}

/* tally invoice show NUMBER: the stored document, after checking its hash. */
static int cmd_invoice_show(int argc, char **argv, const char *ledger)
{
	struct issued is;
	struct tally_err e = { 0 };
	char hex[65];
	if (argc != 1)
		return bad("show takes one invoice number");
	if (issue_find(ledger, argv[0], &is, &e)) {
		fprintf(stderr, "tally invoice: %s\n", e.msg);
		return e.code == -ENOENT || e.code == -EINVAL ? 2 : 1;
	}
	issue_sha256_hex(is.document, strlen(is.document), hex);
	int rc = 0;
	if (strcmp(hex, is.sha256)) {
		fprintf(stderr, "tally invoice: %s #%lld: the stored document does not match its hash (%s, stored %s):"
			" the ledger was altered outside tally\n", is.issuer, (long long)is.number, hex, is.sha256);
		rc = 1;
	} else {
		fputs(is.document, stdout);
	}
	free(is.plan_text);
	free(is.document);
	return rc;
}

/* tally invoice explain NUMBER LINE, or --period/--tenant/--plan LINE. */
static int cmd_invoice_explain(int argc, char **argv, const char *ledger, const char *period, const char *from,
			       const char *to, const char *tenant, const char *plan_path)
{
	struct explain_query q = { .ledger = ledger, .tenant = tenant };
	struct issued is = { 0 };
	struct tally_err e = { 0 };
	struct plan p;
	struct plan_errors errs;
	char *end;
	int rc;

	if (argc != (period || from ? 1 : 2))
		return bad("explain takes an issued invoice's NUMBER and a LINE, or --period, --tenant and a LINE");
	q.line = (int)strtol(argv[argc - 1], &end, 10);
	if (*end || q.line < 1)
		return bad("'%s': expected a line number (the # column)", argv[argc - 1]);
	if (argc == 2) {
		if (issue_find(ledger, argv[0], &is, &e)) {
			fprintf(stderr, "tally invoice: %s\n", e.msg);
			return e.code == -ENOENT || e.code == -EINVAL ? 2 : 1;
		}
		q.tenant = is.tenant;
		q.from_ns = is.from_ns;
		q.to_ns = is.to_ns;
		q.issued_doc = is.document;
		rc = plan_load_text("stored plan", is.plan_text, strlen(is.plan_text), &p, &errs);
		if (rc) {
			fprintf(stderr, "tally invoice: the plan stored with %s #%lld does not load: %s\n", is.issuer,
				(long long)is.number, errs.msg[0]);
			rc = 1;
			goto out;
		}
	} else {
		if (!tenant)
			return bad("explain of a draft needs --tenant");
		if (parse_period(period, from, to, &q.from_ns, &q.to_ns))
			return 2;
		if ((rc = load_plan(plan_path, &p)))
			return rc;
	}
	rc = explain_line(stdout, &q, &p, &e);
	plan_release(&p);
	if (rc) {
		fprintf(stderr, "tally invoice: %s\n", e.msg);
		rc = rc == -EINVAL || rc == -ESRCH ? 2 : 1;
	}
out:
	free(is.plan_text);
	free(is.document);
	return rc;
}

static int credit_help(FILE *f)
{
	fprintf(f,
		"usage: tally invoice credit INVOICE --reason TEXT [--line N | --amount X] [options]\n"
		"       tally invoice credit show NOTE [--format text|json|html]\n"
		"A credit note corrects an issued invoice, which never changes: without --line or\n"
		"--amount it credits (cancels) the whole invoice, whose period may then be issued\n"
		"again; --line N credits that line, --amount X that amount before tax, each with\n"
		"the invoice's taxes. Numbered in the issuer's credit-note series.\n"
		"  --reason TEXT        why (printed on the note; required)\n"
		"  --date YYYY-MM-DD    the note's date (default today)\n"
		"  --format text|json|html   how to print it (default text)\n"
		"  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db)\n");
	return 0;
}

/* tally invoice credit ...: issue a credit note, or show one. */
static int cmd_invoice_credit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' }, { "line", required_argument, NULL, 'n' },
		{ "amount", required_argument, NULL, 'a' }, { "date", required_argument, NULL, 'D' },
		{ "format", required_argument, NULL, 'F' }, { "ledger", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	struct credit_request r = { 0 };
	const char *ledger = default_ledger(), *date = NULL;
	enum invoice_format fmt = INV_TEXT;
	struct tally_err e = { 0 };
	char *doc = NULL, *end;
	int opt, rc;

	cmd_name = "invoice credit";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': r.reason = optarg; break;
		case 'a': r.amount = optarg; break;
		case 'D': date = optarg; break;
		case 'l': ledger = optarg; break;
		case 'n':
			r.line = (int)strtol(optarg, &end, 10);
			if (*end || r.line < 1)
				return bad("--line '%s': expected a line number of the invoice", optarg);
			break;
		case 'F': {
			static const char *const fmts[] = { "text", "csv", "json", "html", NULL };
			int x = choice("--format", optarg, fmts);
			if (x < 0 || x == INV_CSV)
				return x < 0 ? 2 : bad("--format csv: a credit note is text, json or html");
			fmt = (enum invoice_format)x;
			break;
		}
		case 'h': return credit_help(stdout);
		default: credit_help(stderr); return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "show")) {
		if (optind + 2 != argc)
			return bad("show takes one credit note's number");
		rc = credit_find(ledger, argv[optind + 1], &doc, &e);
	} else {
		if (optind + 1 != argc)
			return bad("give the invoice to credit: its NUMBER or ISSUER#NUMBER");
		r.invoice = argv[optind];
		int64_t now = time_now_ns(), x;
		r.date_ns = now;
		if (date && (time_parse_range(date, &r.date_ns, &x, &e) || x - r.date_ns != 24 * NS_PER_HOUR))
			return bad("--date '%s': expected a day like 2026-11-01", date);
		rc = credit_issue(ledger, &r, now - now % NS_PER_SEC, &doc, &e);
	}
	if (rc) {
		fprintf(stderr, "tally invoice credit: %s\n", e.msg);
		return rc == -EINVAL || rc == -ENOENT ? 2 : 1;
	}
	rc = credit_render(stdout, doc, fmt);
	free(doc);
	if (rc || fflush(stdout)) {
		fprintf(stderr, "tally invoice credit: cannot write the output (the note is stored: tally invoice"
			" credit show NUMBER prints it)\n");
		return 1;
	}
	return 0;
}

static int cmd_invoice(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "period", required_argument, NULL, 'p' }, { "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },     { "tenant", required_argument, NULL, 'T' },
		{ "plan", required_argument, NULL, 'P' },   { "format", required_argument, NULL, 'F' },
		{ "detail", no_argument, NULL, 'd' },       { "combined", no_argument, NULL, 'c' },
		{ "ledger", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ "issue", no_argument, NULL, 'i' },        { "allow-incomplete", no_argument, NULL, 'a' },
		{ "rrd", required_argument, NULL, 'R' },    { "customers", required_argument, NULL, 'C' },
		{ "date", required_argument, NULL, 'D' },   { NULL, 0, NULL, 0 },
	};
	struct rate_query q = { 0 };
	const char *customers_path = getenv("TALLY_CUSTOMERS"), *date = NULL;
	bool issue = false, incomplete = false;
	const char *rrd_dir = NULL;
	struct invoice_render_opts ro = { .format = INV_TEXT };
	const char *period = NULL, *from = NULL, *to = NULL, *plan_path = default_plan();
	struct tally_err e = { 0 };
	int opt;

	cmd_name = "invoice";
	/* "credit" where a subcommand may stand (not an option's value): its
	 * own options, with those written before it (tally invoice --ledger L
	 * credit 12 ...) */
	static const char *const with_value[] = { "--period", "--from", "--to", "--tenant", "--plan", "--format",
						  "--ledger", "--rrd", "--customers", "--date", NULL };
	for (int i = 1; i < argc; i++) {
		bool value = false;
		for (int k = 0; with_value[k] && i > 1; k++)
			value |= !strcmp(argv[i - 1], with_value[k]);
		if (value || argv[i][0] == '-')
			continue;
		if (strcmp(argv[i], "credit"))
			break;
		char *cargv[64];
		int cargc = 0;
		if (argc > (int)(sizeof(cargv) / sizeof(cargv[0])) - 1)
			return bad("too many arguments");
		cargv[cargc++] = argv[i];
		for (int k = 1; k < argc; k++)
			if (k != i)
				cargv[cargc++] = argv[k];
		cargv[cargc] = NULL;
		return cmd_invoice_credit(cargc, cargv);
	}
	q.ledger = default_ledger();
	optind = 1;
	bool ledger_seen = false;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': period = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'T': q.tenant = optarg; break;
		case 'P': plan_path = optarg; break;
		case 'l': if (ledger_once(&q.ledger, &ledger_seen, optarg)) return 2; break;
		case 'd': ro.detail = true; break;
		case 'c': q.combined = true; break;
		case 'i': issue = true; break;
		case 'a': incomplete = true; break;
		case 'R': rrd_dir = optarg; break;
		case 'C': customers_path = optarg; break;
		case 'D': date = optarg; break;
		case 'F': {
			static const char *const fmts[] = { "text", "csv", "json", "html", NULL };
			int x = choice("--format", optarg, fmts);   /* enum invoice_format order */
			if (x < 0)
				return 2;
			ro.format = (enum invoice_format)x;
			break;
		}
		case 'h': return invoice_help(stdout);
		default: invoice_help(stderr); return 2;
		}
	}
	char loc[4096];
	if (!(q.ledger = ledger_loc(q.ledger, loc, sizeof(loc))))
		return 2;
	if (optind < argc && !strcmp(argv[optind], "show"))
		return cmd_invoice_show(argc - optind - 1, argv + optind + 1, q.ledger);
	if (optind < argc && !strcmp(argv[optind], "explain"))
		return cmd_invoice_explain(argc - optind - 1, argv + optind + 1, q.ledger, period, from, to, q.tenant,
					   plan_path);
	if (optind != argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (q.tenant && q.combined)
		return bad("--tenant and --combined exclude each other");
	if (issue && q.combined)
		return bad("--combined is a fleet view, not an invoice to issue");
	if (parse_period(period, from, to, &q.from_ns, &q.to_ns))
		return 2;

	int64_t date_ns;
	if (date) {
		int64_t x;
		if (time_parse_range(date, &date_ns, &x, &e) || x - date_ns != 24 * NS_PER_HOUR)
			return bad("--date '%s': expected a day like 2026-11-01", date);
	} else if (issue) {
		date_ns = time_now_ns();
	} else {
		date_ns = q.to_ns;   /* a draft: the day its period ends, so two runs agree */
	}

	struct plan p;
	struct customers cust = { 0 };
	int rc;
	if ((rc = load_plan(plan_path, &p)))
		return rc;
	if (customers_path && customers_path[0] && (rc = load_customers(customers_path, &cust))) {
		plan_release(&p);
		return rc;
	}
	struct invoice *invs;
	size_t n;
	/* a tenant that left still gets the adjustment of an issued period
	 * (usage recorded after it was issued): every known tenant is a
	 * candidate, and those left without a line are dropped before the
	 * customers file is asked for them */
	q.carry = !q.combined;
	rc = invoice_build_all(&p, &q, &invs, &n, &e);
	if (rc == 0 && !q.combined)
		rc = issue_adjust_all(q.ledger, invs, n, &p, &e);
	if (rc == 0)
		invoice_drop_carry_only(invs, &n);
	if (rc == 0 && !q.combined)
		rc = invoice_apply_customers(invs, n, &p, customers_path && customers_path[0] ? &cust : NULL, date_ns, issue, &e);
	customers_release(&cust);
	for (size_t i = 0; rc == 0 && issue && !incomplete && i < n; i++)
		if (invs[i].data_until_ns < invs[i].to_ns) {
			char t[48];
			rc = err_set(&e, -EAGAIN, "usage is recorded only up to %s, before the period ends: issue once"
				     " every agent has reported the whole period, or give --allow-incomplete (usage"
				     " recorded later then goes on the next invoice as an adjustment)",
				     invs[i].data_until_ns ? time_format_iso(invs[i].data_until_ns, t, sizeof(t))
							   : "(nothing)");
		}
	if (rc == 0 && issue) {
		int64_t now = time_now_ns();
		rc = issue_store(q.ledger, invs, n, &p, now - now % NS_PER_SEC, &e);
	}
	plan_release(&p);
	if (rc) {
		fprintf(stderr, "tally invoice: %s%s\n", e.msg, issue ? " (nothing was issued)" : "");
		if (invs) {
			for (size_t i = 0; i < n; i++)
				invoice_release(&invs[i]);
			free(invs);
		}
		return rc == -ESRCH || rc == -EINVAL || rc == -EEXIST || rc == -EAGAIN ? 2 : 1;
	}
	char rrd_default[4096];
	if (!rrd_dir) {
		const char *slash = strrchr(q.ledger, '/');
		if (strcmp(ledger_location_engine(q.ledger), "sqlite"))
			slash = NULL;        /* a database server's ledger has no folder: ./rrd */
		snprintf(rrd_default, sizeof(rrd_default), "%.*s%srrd", slash ? (int)(slash - q.ledger) : 0, q.ledger,
			 slash ? "/" : "");
		rrd_dir = rrd_default;
	}
	if (q.tenant && n == 0)
		fprintf(stderr, "tally invoice: tenant '%s' had no usage, no resource alive, no charge and no late"
			" usage of an issued period to carry in the period: no invoice\n", q.tenant);
	if (ro.format == INV_JSON)
		rc = invoice_render_json(stdout, invs, n, &ro);
	else if (ro.format == INV_HTML)
		rc = invoice_render_html(stdout, invs, n, rrd_dir, &ro);
	for (size_t i = 0; i < n; i++) {
		if (ro.format != INV_JSON && ro.format != INV_HTML && !rc)
			rc = invoice_render(stdout, &invs[i], &ro, i == 0);
		invoice_release(&invs[i]);
	}
	free(invs);
	if (rc || fflush(stdout)) {
		fprintf(stderr, "tally invoice: cannot write the output%s\n", issue ? " (the invoices were issued:"
			" tally invoice show NUMBER prints them)" : "");
		return 1;
	}
	return 0;
}

static int sla_help(FILE *f)
{
	fprintf(f, "usage: tally sla --period 2026-10 [options]\n"
		   "  --period P, --from T --to T   the period, as for tally invoice\n"
		   "  --tenant X           only tenant X's VMs\n"
		   "  --plan FILE          the rate plan with the 'sla' section (default $TALLY_PLAN, else ./plan.yaml)\n"
		   "  --format text|csv|json|html   output format (default text; html: one printable page)\n"
		   "  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db)\n"
		   "Availability per VM, its incidents and credit; definition: docs/sla.md\n");
	return 0;
}

static int cmd_sla(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "period", required_argument, NULL, 'p' }, { "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },     { "tenant", required_argument, NULL, 'T' },
		{ "plan", required_argument, NULL, 'P' },   { "format", required_argument, NULL, 'F' },
		{ "ledger", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sla_query q = { .ledger = default_ledger() };
	const char *period = NULL, *from = NULL, *to = NULL, *plan_path = default_plan();
	enum sla_format fmt = SLA_TEXT;
	struct tally_err e = { 0 };
	int opt, rc;

	cmd_name = "sla";
	optind = 1;
	bool ledger_seen = false;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': period = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'T': q.tenant = optarg; break;
		case 'P': plan_path = optarg; break;
		case 'l': if (ledger_once(&q.ledger, &ledger_seen, optarg)) return 2; break;
		case 'F': {
			static const char *const fmts[] = { "text", "csv", "json", "html", NULL };
			int x = choice("--format", optarg, fmts);   /* enum sla_format order */
			if (x < 0)
				return 2;
			fmt = (enum sla_format)x;
			break;
		}
		case 'h': return sla_help(stdout);
		default: sla_help(stderr); return 2;
		}
	}
	char loc[4096];
	if (!(q.ledger = ledger_loc(q.ledger, loc, sizeof(loc))))
		return 2;
	if (optind != argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (parse_period(period, from, to, &q.from_ns, &q.to_ns))
		return 2;
	struct plan p;
	if ((rc = load_plan(plan_path, &p)))
		return rc;
	if (!p.has_sla) {
		plan_release(&p);
		return bad("the plan %s has no 'sla' section (schemas/plan.md)", plan_path);
	}
	struct sla_report r;
	if ((rc = sla_compute(&q, &p, &r, &e))) {
		plan_release(&p);
		fprintf(stderr, "tally sla: %s\n", e.msg);
		return rc == -ESRCH ? 2 : 1;
	}
	rc = sla_render(stdout, &r, &p, fmt);
	sla_report_release(&r);
	plan_release(&p);
	if (rc || fflush(stdout)) {
		fprintf(stderr, "tally sla: cannot write the output\n");
		return 1;
	}
	return 0;
}

/* tally plan check FILE: every mistake with file:line:col; exit 2 if any. */
static int cmd_plan(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: tally plan check FILE   (the format: schemas/plan.md)\n");
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "check")) {
		fprintf(stderr, "usage: tally plan check FILE\n");
		return 2;
	}
	struct plan p;
	struct plan_errors errs;
	if (plan_load(argv[2], &p, &errs)) {
		for (int i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		if (errs.total > errs.n)
			fprintf(stderr, "%s: %d more mistakes not shown\n", argv[2], errs.total - errs.n);
		return 2;
	}
	size_t prices = 0;
	for (size_t i = 0; i < p.n_versions; i++)
		prices += p.versions[i].n_own;   /* as written: inherited ones once */
	printf("%s: ok (plan '%s', %s, %zu version%s, %zu price%s)\n", argv[2], p.name, p.currency,
	       p.n_versions, p.n_versions == 1 ? "" : "s", prices, prices == 1 ? "" : "s");
	plan_release(&p);
	return 0;
}

static int ledger_help(FILE *f)
{
	fprintf(f, "usage: tally ledger info|check|verify [--ledger LEDGER]\n"
		   "       tally ledger copy --from LEDGER --to LEDGER\n"
		   "  info            the schema version, which tally created, upgraded and last wrote\n"
		   "                  the ledger, the hours its usage spans and its size\n"
		   "  check           the ledger's integrity: SQLite's full check (every page, record and\n"
		   "                  index against its table); on PostgreSQL amcheck's, when installed\n"
		   "  verify          the hash chain over committed usage: every commit's hash, and every\n"
		   "                  hour's usage against what the last commit that wrote it recorded;\n"
		   "                  names the first bad commit\n"
		   "  copy            every table into a new, empty ledger (either engine), in one\n"
		   "                  transaction, committed only when its usage totals per (resource,\n"
		   "                  meter, hour) equal the source's; a target that is not empty is refused\n"
		   "  --ledger LEDGER the ledger: a file, sqlite:PATH or postgresql://... (default\n"
		   "                  $TALLY_LEDGER, else ./var/ledger.db)\n"
		   "All read one snapshot and take no lock: a running tallyd goes on.\n"
		   "Exit 0 when the ledger is sound (copied), 1 when it is damaged, altered or cannot be\n"
		   "read (or the copy failed, nothing written), 2 for a bad command line.\n"
		   "Reference: docs/ledger.md\n");
	return 0;
}

static int cmd_ledger_copy(const char *from, const char *to)
{
	char a[4096], b[4096];
	struct ledger_copy_result r;
	struct tally_err e = { 0 };
	if (!from || !to)
		return bad("copy needs --from LEDGER and --to LEDGER");
	if (!(from = ledger_loc(from, a, sizeof(a))) || !(to = ledger_loc(to, b, sizeof(b))))
		return 2;
	if (ledger_copy(from, to, &r, &e)) {
		fprintf(stderr, "tally ledger: %s\n", e.msg);
		return e.code == -EINVAL && strstr(e.msg, "same ledger") ? 2 : 1;
	}
	printf("%s -> %s: %lld rows of %d tables copied (%lld usage rows); the usage totals of all %lld (resource,"
	       " meter, hour) are the same in both; %.1f s\n", from, to, (long long)r.rows, r.tables,
	       (long long)r.usage_rows, (long long)r.totals, (double)r.ns / 1e9);
	return 0;
}

static int cmd_ledger(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ledger", required_argument, NULL, 'l' }, { "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ledger = default_ledger(), *from = NULL, *to = NULL;
	struct tally_err e = { 0 };
	int opt;

	cmd_name = "ledger";
	optind = 1;
	bool ledger_seen = false;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': if (ledger_once(&ledger, &ledger_seen, optarg)) return 2; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'h': return ledger_help(stdout);
		default: ledger_help(stderr); return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "copy")) {
		if (optind + 1 < argc)
			return bad("unexpected argument '%s'", argv[optind + 1]);
		return cmd_ledger_copy(from, to);
	}
	if (from || to)
		return bad("--from and --to are for copy");
	char loc[4096];
	if (!(ledger = ledger_loc(ledger, loc, sizeof(loc))))
		return 2;
	if (optind >= argc)
		return bad("a subcommand is needed: info, check, verify or copy");
	if (optind + 1 < argc)
		return bad("unexpected argument '%s'", argv[optind + 1]);
	if (!strcmp(argv[optind], "info")) {
		struct ledger_info li;
		char t[48];
		if (ledger_info(ledger, &li, &e)) {
			fprintf(stderr, "tally ledger: %s\n", e.msg);
			return 1;
		}
		printf("ledger:       %s\nschema:       %d\n", ledger, li.schema);
		printf("created by:   tally %s\n", li.created_by[0] ? li.created_by : "(before 0.9.0: not recorded)");
		if (li.upgraded_by[0])
			printf("upgraded by:  tally %s\n", li.upgraded_by);
		printf("written by:   tally %s", li.written_by[0] ? li.written_by : "(not recorded)");
		if (li.written_ns)
			printf(", opened %s", time_format_iso(li.written_ns - li.written_ns % NS_PER_SEC, t, sizeof(t)));
		printf("\n");
		if (li.has_usage) {
			printf("usage:        hours from %s", time_format_iso(li.first_hour_ns, t, sizeof(t)));
			printf(" to %s\n", time_format_iso(li.last_hour_ns, t, sizeof(t)));
		} else {
			printf("usage:        none yet\n");
		}
		printf("size:         %.1f MB (%s)\n", (double)li.bytes / 1e6,
		       strcmp(ledger_location_engine(ledger), "sqlite") ? "its tables and indexes on the server"
		       : "without its WAL");
		return 0;
	}
	if (!strcmp(argv[optind], "check")) {
		struct ledger_check lc;
		if (ledger_check_file(ledger, &lc, &e)) {
			fprintf(stderr, "tally ledger: %s\n", e.msg);
			return 1;
		}
		if (lc.problems) {
			fprintf(stderr, "tally ledger: %s: damaged: %d problem%s found by %s: %s%s;"
				" restore it from a backup (docs/ledger.md)\n", ledger, lc.problems,
				lc.problems == 1 ? "" : "s", lc.method, lc.first, lc.problems > 3 ? "; ..." : "");
			return 1;
		}
		printf("%s: ok (%s of %.1f MB in %.1f s)\n", ledger, lc.method, (double)lc.bytes / 1e6,
		       (double)lc.ns / 1e9);
		return 0;
	}
	if (!strcmp(argv[optind], "verify")) {
		struct ledger_verify v;
		char t[48];
		if (ledger_verify(ledger, &v, &e)) {
			fprintf(stderr, "tally ledger: %s\n", e.msg);
			return 1;
		}
		if (v.problems) {
			fprintf(stderr, "tally ledger: %s: the usage is not what was committed: ", ledger);
			if (v.bad_commit)
				fprintf(stderr, "first bad commit %lld; ", (long long)v.bad_commit);
			fprintf(stderr, "%s%s (%d problem%s)\n", v.first, v.problems > 3 ? "; ..." : "", v.problems,
				v.problems == 1 ? "" : "s");
			return 1;
		}
		printf("%s: ok: %lld commits", ledger, (long long)v.commits);
		if (v.commits)
			printf(" since %s", time_format_iso(v.first_ns - v.first_ns % NS_PER_SEC, t, sizeof(t)));
		if (v.upgraded)
			printf(" (the first sealed the %lld hours the ledger held when it was upgraded, as found)",
			       (long long)v.sealed_hours);
		printf(", %lld hours and %lld usage rows hashed in %.1f s", (long long)v.hours, (long long)v.rows,
		       (double)v.ns / 1e9);
		if (v.commits)
			printf("; head: commit %lld, sha256 %s", (long long)v.head_id, v.head);
		printf("\n");
		return 0;
	}
	return bad("'%s': expected info, check, verify or copy", argv[optind]);
}

static int agents_help(FILE *f)
{
	fprintf(f, "usage: tally agents [--format text|json] [--ledger PATH]\n"
		   "The agents whose batches the ledger holds: last contact with the aggregator, last\n"
		   "committed seq and its data time, the lag behind now, the spool's depth as the agent\n"
		   "last reported it (docs/transport.md).\n"
		   "  --format text|json   output format (default text)\n"
		   "  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db)\n"
		   "Exit 0 ok, 1 the ledger cannot be read, 2 bad command line.\n");
	return 0;
}

static int cmd_agents(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'F' }, { "ledger", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	static const char *const formats[] = { "text", "json", NULL };
	const char *ledger = default_ledger();
	enum agents_format fmt = AGENTS_TEXT;
	struct agents_result r;
	struct tally_err e = { 0 };
	int opt;

	cmd_name = "agents";
	optind = 1;
	bool ledger_seen = false;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': if (ledger_once(&ledger, &ledger_seen, optarg)) return 2; break;
		case 'F': {
			int k = choice("--format", optarg, formats);
			if (k < 0)
				return 2;
			fmt = (enum agents_format)k;
			break;
		}
		case 'h': return agents_help(stdout);
		default: agents_help(stderr); return 2;
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	char loc[4096];
	if (!(ledger = ledger_loc(ledger, loc, sizeof(loc))))
		return 2;
	if (agents_query(ledger, &r, &e)) {
		fprintf(stderr, "tally agents: %s\n", e.msg);
		return 1;
	}
	int rc = agents_render(stdout, &r, time_now_ns(), fmt);
	agents_result_release(&r);
	if (rc || fflush(stdout)) {
		fprintf(stderr, "tally agents: cannot write the report\n");
		return 1;
	}
	return 0;
}

static void help(FILE *f)
{
	fprintf(f, "usage: tally COMMAND [options]\n"
		   "commands:\n"
		   "  usage    usage from the ledger per tenant, resource or hour (docs/usage.md)\n"
		   "  invoice  invoices of a period from the ledger and a rate plan (docs/invoice.md)\n"
		   "  sla      availability per VM, incidents and credits (docs/sla.md)\n"
		   "  plan check FILE   check a rate plan (schemas/plan.md)\n"
		   "  agents   the agents shipping to this ledger: contact, seq, lag, spool (docs/transport.md)\n"
		   "  ledger info|check|verify|copy   what made the ledger, its integrity, its hash\n"
		   "           chain; a copy into another engine (docs/ledger.md)\n"
		   "  import FILE   usage events (CSV, JSON) into the ledger (docs/meters.md)\n"
		   "  charge add|list   one-off charges and credits per tenant and period (docs/invoice.md)\n"
		   "  help     this text (also -h, --help)\n"
		   "  version  the version and the commit it was built from (also -V, --version)\n"
		   "Run 'tally COMMAND --help' for the options of a command; tally(1) has them all.\n"
		   "Every command takes --config FILE (default $TALLY_CONFIG): the config's meters: section\n"
		   "declares custom meters (docs/meters.md).\n"
		   "Exit: 0 ok, 1 runtime error, 2 bad command line, plan or input.\n");
}

static int import_help(FILE *f)
{
	fprintf(f,
		"usage: tally import FILE [options]\n"
		"Books usage events (CSV with a header row, or JSON) into the ledger's hourly usage:\n"
		"columns/keys id, tenant, resource, meter, time, quantity; end, device, name optional\n"
		"(docs/meters.md, \"Imported usage\"). An event seen before counts once.\n"
		"  --source NAME        the service the events come from: ids are unique per source\n"
		"                       (default: import)\n"
		"  --format csv|json    the file's format (default: from its extension)\n"
		"  --config FILE        the config whose meters: section declares custom meters\n"
		"                       (default $TALLY_CONFIG)\n"
		"  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db); tally import\n"
		"                       takes the writer's lock for one transaction: not while tallyd runs\n"
		"                       (a running tallyd takes the same events: POST /api/v1/events)\n");
	return 0;
}

/* Issued invoices of the tenants of b whose periods hold an event of b:
 * that usage goes on each tenant's next invoice as an adjustment. */
static size_t late_events(const char *ledger, const struct import_batch *b)
{
	struct issued *list = NULL;
	size_t n = 0, late = 0;
	struct tally_err e = { 0 };
	if (issue_list(ledger, NULL, &list, &n, &e))
		return 0;
	for (size_t i = 0; i < b->n; i++)
		for (size_t k = 0; b->v[i].booked && k < n; k++)
			if (!strcmp(list[k].tenant, b->v[i].tenant) && b->v[i].time_ns < list[k].to_ns &&
			    b->v[i].end_ns >= list[k].from_ns) {
				late++;
				break;
			}
	free(list);
	return late;
}

static int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "source", required_argument, NULL, 's' }, { "format", required_argument, NULL, 'F' },
		{ "ledger", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ledger = default_ledger(), *source = "import", *format = NULL;
	struct import_batch b = { 0 };
	struct import_result r;
	struct tally_err e = { 0 };
	int opt, rc;

	cmd_name = "import";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's': source = optarg; break;
		case 'l': ledger = optarg; break;
		case 'F': {
			static const char *const fmts[] = { "csv", "json", NULL };
			int x = choice("--format", optarg, fmts);
			if (x < 0)
				return 2;
			format = fmts[x];
			break;
		}
		case 'h': return import_help(stdout);
		default: import_help(stderr); return 2;
		}
	}
	if (optind + 1 != argc)
		return bad("give one file of events");
	if ((rc = import_parse_file(argv[optind], format, &b, &e))) {
		fprintf(stderr, "tally import: %s (nothing imported)\n", e.msg);
		import_batch_release(&b);
		return rc == -ENOMEM || rc == -EIO ? 1 : 2;
	}
	int64_t now = time_now_ns();
	rc = import_apply(ledger, source, &b, now - now % NS_PER_SEC, &r, &e);
	if (rc) {
		fprintf(stderr, "tally import: %s (nothing imported)\n", e.msg);
		import_batch_release(&b);
		return rc == -EINVAL || rc == -EEXIST || rc == -ERANGE ? 2 : 1;
	}
	char a[48], z[48];
	printf("imported %zu event%s from %s (source %s) into %zu hourly usage row%s, %zu new resource%s",
	       r.events, r.events == 1 ? "" : "s", argv[optind], source, r.rows, r.rows == 1 ? "" : "s",
	       r.resources_new, r.resources_new == 1 ? "" : "s");
	if (r.events)
		printf(", %s to %s", time_format_iso(r.from_ns, a, sizeof(a)), time_format_iso(r.to_ns, z, sizeof(z)));
	printf("\n");
	if (r.duplicates)
		printf("%zu event%s imported before: counted once\n", r.duplicates, r.duplicates == 1 ? " was" : "s were");
	size_t late = late_events(ledger, &b);
	if (late)
		printf("%zu event%s in periods already invoiced: the next invoice of each tenant carries the difference"
		       " as an adjustment\n", late, late == 1 ? " falls" : "s fall");
	import_batch_release(&b);
	return 0;
}

static int charge_help(FILE *f)
{
	fprintf(f,
		"usage: tally charge add --tenant X --period P --amount A --description TEXT [options]\n"
		"       tally charge list [--tenant X] [--period P]\n"
		"A one-off charge (or, with a negative amount, a credit) on the tenant's invoice of the\n"
		"period: a line of its own, taxed with the rest (docs/invoice.md, \"One-off charges\").\n"
		"  --tenant X           the tenant\n"
		"  --period P           what it is for: a month (2026-10) or a day; it goes on the invoice\n"
		"                       of the period that holds its start (refused once that is issued)\n"
		"  --amount A           a decimal in the plan's currency (-25.00: a credit)\n"
		"  --currency C         the currency A is in (checked against the plan at invoice time)\n"
		"  --description TEXT   the line's text on the invoice\n"
		"  --ledger PATH        the ledger (default $TALLY_LEDGER, else ./var/ledger.db)\n");
	return 0;
}

struct charge_listing {
	size_t n;
};

static int print_charge(void *ctx, const struct ledger_charge *c)
{
	struct charge_listing *l = ctx;
	char a[48], b[48];
	if (!l->n++)
		printf("%-6s %-20s %-21s %-21s %14s %-4s %s\n", "ID", "TENANT", "FROM", "TO", "AMOUNT", "CUR",
		       "DESCRIPTION");
	printf("%-6lld %-20s %-21s %-21s %14s %-4s %s\n", (long long)c->id, c->tenant,
	       time_format_iso(c->from_ns, a, sizeof(a)), time_format_iso(c->to_ns, b, sizeof(b)), c->amount,
	       c->currency[0] ? c->currency : "-", c->description);
	return 0;
}

static int cmd_charge(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 'T' },      { "period", required_argument, NULL, 'p' },
		{ "amount", required_argument, NULL, 'a' },      { "currency", required_argument, NULL, 'c' },
		{ "description", required_argument, NULL, 'd' }, { "ledger", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },              { NULL, 0, NULL, 0 },
	};
	struct ledger_charge c = { .currency = "" };
	const char *ledger = default_ledger(), *period = NULL;
	struct tally_err e = { 0 };
	int opt, rc;

	cmd_name = "charge";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'T': c.tenant = optarg; break;
		case 'p': period = optarg; break;
		case 'a': c.amount = optarg; break;
		case 'c': c.currency = optarg; break;
		case 'd': c.description = optarg; break;
		case 'l': ledger = optarg; break;
		case 'h': return charge_help(stdout);
		default: charge_help(stderr); return 2;
		}
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "add") && strcmp(argv[optind], "list")))
		return bad("expected 'add' or 'list'");
	if (period && time_parse_range(period, &c.from_ns, &c.to_ns, &e))
		return bad("--period %s", e.msg);
	if (!strcmp(argv[optind], "list")) {
		struct charge_listing l = { 0 };
		rc = ledger_charges_read(ledger, c.tenant, period ? c.from_ns : INT64_MIN, period ? c.to_ns : INT64_MAX,
					 print_charge, &l, &e);
		if (rc) {
			fprintf(stderr, "tally charge: %s\n", e.msg);
			return 1;
		}
		if (!l.n)
			printf("no charges\n");
		return 0;
	}
	if (!c.tenant || !c.tenant[0] || strlen(c.tenant) > 63)
		return bad("--tenant: the tenant the charge is for (1 to 63 characters)");
	if (!period)
		return bad("--period: the month or day the charge is for");
	if (c.from_ns == c.to_ns || c.from_ns % NS_PER_HOUR)
		return bad("--period '%s': a month or a day", period);
	if (!c.description || !c.description[0] || strlen(c.description) > 191 || strpbrk(c.description, "\r\n\t"))
		return bad("--description: the line's text, one line of 1 to 191 characters");
	if (c.currency[0] && (strlen(c.currency) != 3 || strspn(c.currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3))
		return bad("--currency '%s': an ISO 4217 code such as EUR", c.currency);
	int64_t nanos;
	if (!c.amount || money_parse_price(c.amount, &nanos, &e) || nanos % 100000 || nanos == 0)
		return bad("--amount '%s': a decimal amount other than 0 with at most 4 decimals (%s)",
			   c.amount ? c.amount : "", e.msg[0] ? e.msg : "-25.00 is a credit");
	int64_t now = time_now_ns(), id;
	c.added_ns = now - now % NS_PER_SEC;
	if ((rc = ledger_charges_add(ledger, &c, &id, &e))) {
		fprintf(stderr, "tally charge: %s (nothing added)\n", e.msg);
		return rc == -EEXIST || rc == -ESRCH ? 2 : 1;
	}
	printf("charge #%lld: %s %s%s%s for tenant %s, %s: on the invoice of the period that holds %s\n",
	       (long long)id, c.amount, c.currency, c.currency[0] ? " " : "", c.description, c.tenant, period, period);
	return 0;
}

/* --config FILE anywhere on the command line (else $TALLY_CONFIG): the
 * config whose meters: section declares the custom meters (docs/meters.md)
 * every command then knows. Taken out of argv. Returns 0 or exit 2. */
static int load_config(int *argc, char **argv)
{
	const char *path = getenv("TALLY_CONFIG");
	struct tally_err e = { 0 };
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--config") && strncmp(argv[i], "--config=", 9))
			continue;
		int take = argv[i][8] == '=' ? 1 : 2;
		if (take == 2 && i + 1 >= *argc) {
			fprintf(stderr, "tally: --config needs a file\n");
			return 2;
		}
		path = take == 1 ? argv[i] + 9 : argv[i + 1];
		for (int k = i; k + take <= *argc; k++)
			argv[k] = argv[k + take];
		*argc -= take;
		break;
	}
	if (!path || !path[0])
		return 0;
	if (meter_config_load(path, &e)) {
		fprintf(stderr, "tally: %s\n", e.msg);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (load_config(&argc, argv))
		return 2;
	if (argc < 2) {
		help(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "usage"))
		return cmd_usage(argc - 1, argv + 1);
	if (!strcmp(argv[1], "invoice"))
		return cmd_invoice(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sla"))
		return cmd_sla(argc - 1, argv + 1);
	if (!strcmp(argv[1], "plan"))
		return cmd_plan(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ledger"))
		return cmd_ledger(argc - 1, argv + 1);
	if (!strcmp(argv[1], "agents"))
		return cmd_agents(argc - 1, argv + 1);
	if (!strcmp(argv[1], "import"))
		return cmd_import(argc - 1, argv + 1);
	if (!strcmp(argv[1], "charge"))
		return cmd_charge(argc - 1, argv + 1);
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("tally %s (%s)\n", tally_version, tally_revision);
		return 0;
	}
	fprintf(stderr, "tally: unknown command '%s'\n", argv[1]);
	help(stderr);
	return 2;
}
