/*
 * nagios.c: check_tally's logic (see nagios.h): the monitoring-plugins
 * range syntax, the question to tallyd's JSON API (libcurl, jansson), and
 * the one status line with perfdata.
 *
 * What it measures, from GET /api/v1/resources/UUID:
 * - -m METER: a gauge's current value (summed over devices unless -d
 *   names one), or a counter's rate over the last interval in base units
 *   per second (cpu in seconds per second, i.e. cores busy);
 * - -m age: seconds from the resource's last reading to tallyd's clock
 *   (both times from tallyd, so the two hosts' clocks need not agree);
 *   without -r, the age of the newest reading of any resource the token
 *   may see (from GET /api/v1/resources);
 * - -m sla: the VM's availability in percent this month (or -P PERIOD),
 *   from GET /api/v1/sla; without -r, the fleet's;
 * - -m alerts: how many alerts are firing (for the VM with -r), from GET
 *   /api/v1/alerts, naming the first of them.
 */
#include "nagios.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "version.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_MAX 1024              /* the whole output, guidelines: keep it short */
#define BODY_MAX (8 * 1024 * 1024)   /* a bigger answer is not tallyd's */

static int parse_num(const char *s, size_t n, double *out)
{
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	/* strtod also takes "inf", "nan" and hex; a threshold is a plain decimal */
	if (strspn(buf, "0123456789.+-eE") != n)
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(buf, &end);
	if (*end || errno || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

int nagios_range_parse(const char *s, struct nagios_range *r, char *err, size_t len)
{
	const char *orig = s;
	memset(r, 0, sizeof(*r));
	if (!s || !*s)
		goto bad;
	if (*s == '@') {
		r->inside = true;
		s++;
	}
	const char *colon = strchr(s, ':');
	if (!colon) {
		/* "N": 0..N */
		if (parse_num(s, strlen(s), &r->end))
			goto bad;
	} else {
		if (colon == s + 1 && *s == '~')
			r->start_inf = true;
		else if (colon > s && parse_num(s, (size_t)(colon - s), &r->start))
			goto bad;
		/* colon == s: an empty start is 0; ":" alone says nothing */
		if (colon == s && !colon[1])
			goto bad;
		if (!colon[1])
			r->end_inf = true;
		else if (parse_num(colon + 1, strlen(colon + 1), &r->end))
			goto bad;
	}
	if (!r->start_inf && !r->end_inf && r->start > r->end) {
		snprintf(err, len, "range '%s': start is above end", orig);
		return -EINVAL;
	}
	return 0;
bad:
	snprintf(err, len, "range '%s': expected N, N:, ~:N, N:M or @N:M", orig ? orig : "");
	return -EINVAL;
}

bool nagios_range_alert(const struct nagios_range *r, double v)
{
	bool in = (r->start_inf || v >= r->start) && (r->end_inf || v <= r->end);
	return r->inside ? in : !in;
}

/* ---- the plugin ---- */

struct body {
	char *p;
	size_t n;
	bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;
	if (b->n + n > BODY_MAX) {
		b->too_big = true;
		return 0;
	}
	char *p = realloc(b->p, b->n + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, ptr, n);
	b->n += n;
	p[b->n] = '\0';
	b->p = p;
	return n;
}

struct opts {
	const char *host, *token, *resource, *meter, *device, *warn, *crit, *period;
	unsigned port;
	long timeout_s;
	int verbose;                 /* -v count: 1 adds the request and its answer */
	struct nagios_range w, c;
	bool have_w, have_c;
};

/* -v: what the last request was and how it went, printed after the status
 * line (the guidelines' "additional lines"); never the token */
static char verbose_line[1200];

static const char *const state_name[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

/* The status line: "TALLY STATE - text", then " | perf" when perf is given.
 * The text holds names from tallyd (a VM's, chosen by its tenant; an
 * alert's; an error message): the guidelines make the first '|' the start
 * of the perfdata, so one in the text becomes '/', and nothing from the
 * server may start another line either. */
static int vfinish(FILE *out, int state, const char *perf, const char *fmt, va_list ap)
{
	char line[STATUS_MAX];
	/* the whole line, perfdata and newline included, stays within STATUS_MAX
	 * (perf is under 600 bytes: a label, a number and two ranges of short
	 * numbers) */
	size_t room = sizeof(line) - (perf ? strlen(perf) + 4 : 1);
	int n = snprintf(line, sizeof(line), "TALLY %s - ", state_name[state]);
	vsnprintf(line + n, room - (size_t)n, fmt, ap);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
		else if (*p == '|')
			*p = '/';
	if (perf)
		fprintf(out, "%s | %s\n", line, perf);
	else
		fprintf(out, "%s\n", line);
	return state;
}

static int finish(FILE *out, int state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int finish(FILE *out, int state, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	state = vfinish(out, state, NULL, fmt, ap);
	va_end(ap);
	return state;
}

static int finish_perf(FILE *out, int state, const char *perf, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int finish_perf(FILE *out, int state, const char *perf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	state = vfinish(out, state, perf, fmt, ap);
	va_end(ap);
	return state;
}

static void version(FILE *f)
{
	fprintf(f, "check_tally (tally) %s (%s)\n", tally_version, tally_revision);
}

static void usage(FILE *f)
{
	version(f);
	fprintf(f, "Checks a VM's metrics or the age of its data in a running tallyd.\n\n"
		"usage: check_tally [-H HOST] [-p PORT] [-T TOKEN] [-r UUID] -m METER|age|sla|alerts\n"
		"                   [-d DEVICE] [-P PERIOD] [-w RANGE] [-c RANGE] [-t SECONDS] [-v]\n"
		"  -H, --hostname HOST   tallyd's HTTP address (default 127.0.0.1)\n"
		"  -p, --port PORT       its port (default 9464)\n"
		"  -T, --token TOKEN     bearer token (default: $TALLY_TOKEN; prefer it: a token on\n"
		"                        the command line shows in the process list)\n"
		"  -r, --resource UUID   the VM (resource id); required but for -m age\n"
		"  -m, --metric METER    a meter: a gauge's value (vcpus, memory, disk.device.capacity,\n"
		"                        ...) or a counter's rate per second (cpu in cores busy,\n"
		"                        network.incoming.bytes in bytes/s, ...), summed over devices\n"
		"                        unless -d names one;\n"
		"                        age: seconds since the VM's (or, without -r, any VM's) last\n"
		"                        reading; sla: the VM's (without -r, the fleet's) availability\n"
		"                        in percent; alerts: how many alerts are firing (of the VM with -r)\n"
		"  -P, --period PERIOD   for -m sla: the period (default this UTC month), e.g. 2026-10\n"
		"  -d, --device DEVICE   only this device (disk target, MAC)\n"
		"  -w, --warning RANGE   warning when the value is outside RANGE\n"
		"  -c, --critical RANGE  critical when the value is outside RANGE\n"
		"                        RANGE: 10 (0..10), 10: (>= 10), ~:10 (<= 10), 10:20,\n"
		"                        @10:20 (alert inside)\n"
		"  -t, --timeout SECONDS give up after this long: UNKNOWN (default 10)\n"
		"  -v, --verbose         also print the request and tallyd's answer, after the status line\n"
		"  -h, --help            this help\n"
		"  -V, --version         the version\n"
		"Exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (-h and -V exit 0).\n");
}

/* GET path: 0 and the parsed JSON in *out, or an UNKNOWN already printed. */
static int fetch(const struct opts *o, const char *path, json_t **out, FILE *f, int *state)
{
	char url[1024], auth[300];
	struct body b = { 0 };
	struct curl_slist *hdr = NULL;
	long code = 0;
	int rc = -1;
	CURL *c = curl_easy_init();

	*out = NULL;
	if (!c) {
		*state = finish(f, NAGIOS_UNKNOWN, "cannot start libcurl");
		return -1;
	}
	bool v6 = strchr(o->host, ':') != NULL;
	snprintf(url, sizeof(url), "http://%s%s%s:%u%s", v6 ? "[" : "", o->host, v6 ? "]" : "", o->port, path);
	if (o->token && *o->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
		hdr = curl_slist_append(hdr, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "check_tally");
	CURLcode cc = curl_easy_perform(c);
	double secs = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &secs);
	snprintf(verbose_line, sizeof(verbose_line), "GET %s%s: %s, HTTP %ld, %zu bytes, %.3f s", url,
		 o->token && *o->token ? " (with a bearer token)" : "", curl_easy_strerror(cc), code, b.n, secs);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		*state = finish(f, NAGIOS_UNKNOWN, "no answer from %s:%u within %ld s", o->host, o->port,
				o->timeout_s);
		goto out;
	}
	if (cc != CURLE_OK) {
		*state = finish(f, NAGIOS_UNKNOWN, "%s:%u: %s", o->host, o->port,
				b.too_big ? "answer too big" : curl_easy_strerror(cc));
		goto out;
	}
	json_error_t je;
	json_t *j = b.p ? json_loadb(b.p, b.n, 0, &je) : NULL;
	if (code != 200) {
		const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
		*state = finish(f, NAGIOS_UNKNOWN, "tallyd answered %ld: %.200s", code, msg ? msg : "(no message)");
		json_decref(j);
		goto out;
	}
	if (!j) {
		*state = finish(f, NAGIOS_UNKNOWN, "tallyd's answer is not JSON");
		goto out;
	}
	*out = j;
	rc = 0;
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(b.p);
	return rc;
}

static int64_t json_time(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	int64_t a, b;
	if (!s || time_parse_range(s, &a, &b, NULL))
		return 0;
	return a;
}

/* v as perfdata wants it: the guidelines allow only [-0-9.] in a value, so
 * never an exponent. 15 significant digits like the text's %.15g, but a
 * value %g would write as 1e-05 or 1.2e+18 gets fixed notation: all its
 * integer digits, or enough decimals for 15 significant ones (at most 340:
 * the smallest double). */
static void perf_num(char *buf, size_t len, double v)
{
	snprintf(buf, len, "%.15g", v);
	if (!strpbrk(buf, "eE") || !isfinite(v))
		return;
	if (fabs(v) >= 1) {
		snprintf(buf, len, "%.0f", v);
		return;
	}
	int dec = 14 - (int)floor(log10(fabs(v)));
	snprintf(buf, len, "%.*f", dec > 340 ? 340 : dec, v);
	char *end = buf + strlen(buf);
	while (end > buf && end[-1] == '0')
		*--end = '\0';
	if (end > buf && end[-1] == '.')
		*--end = '\0';
}

/* Judge value against -c then -w and print the line with perfdata. */
static int judge(FILE *f, const struct opts *o, const char *what, const char *label, double v,
		 const char *uom, const char *unit_text)
{
	int st = NAGIOS_OK;
	if (o->have_c && nagios_range_alert(&o->c, v))
		st = NAGIOS_CRITICAL;
	else if (o->have_w && nagios_range_alert(&o->w, v))
		st = NAGIOS_WARNING;
	char num[360], perf[600];
	perf_num(num, sizeof(num), v);
	snprintf(perf, sizeof(perf), "'%s'=%s%s;%s;%s;0;", label, num, uom, o->warn ? o->warn : "",
		 o->crit ? o->crit : "");
	return finish_perf(f, st, perf, "%.300s %s is %.15g%s", what, label, v, unit_text);
}

static int check_age_all(FILE *f, const struct opts *o)
{
	json_t *j;
	int state = NAGIOS_UNKNOWN;
	if (fetch(o, "/api/v1/resources", &j, f, &state))
		return state;
	int64_t now = json_time(j, "now"), newest = 0;
	json_t *arr = json_object_get(j, "resources"), *r;
	size_t i;
	json_array_foreach(arr, i, r) {
		int64_t t = json_time(r, "last_seen");
		if (t > newest)
			newest = t;
	}
	if (!now || !newest)
		state = finish(f, NAGIOS_UNKNOWN, "tallyd has no readings yet");
	else
		state = judge(f, o, "newest reading", "age", (double)(now - newest) / 1e9, "s", " s");
	json_decref(j);
	return state;
}

static int check_resource(FILE *f, const struct opts *o, int meter)
{
	char path[160];
	json_t *j;
	int state = NAGIOS_UNKNOWN;
	snprintf(path, sizeof(path), "/api/v1/resources/%s", o->resource);
	if (fetch(o, path, &j, f, &state))
		return state;
	json_t *res = json_object_get(j, "resource");
	const char *name = json_string_value(json_object_get(res, "name"));
	char what[200];
	snprintf(what, sizeof(what), "%s", name && *name ? name : o->resource);
	if (meter < 0) {
		int64_t now = json_time(j, "now"), last = json_time(res, "last_seen");
		state = !now || !last ? finish(f, NAGIOS_UNKNOWN, "%s: no reading time", what)
				      : judge(f, o, what, "age", (double)(now - last) / 1e9, "s", " s");
		json_decref(j);
		return state;
	}
	const struct meter_def *md = &meter_table[meter];
	double sum = 0;
	int n = 0;
	bool gauge = md->kind == SAMPLE_GAUGE;
	int unknown = 0;
	json_t *arr = json_object_get(j, "series"), *s;
	size_t i;
	json_array_foreach(arr, i, s) {
		const char *m = json_string_value(json_object_get(s, "meter"));
		const char *d = json_string_value(json_object_get(s, "device"));
		if (!m || strcmp(m, md->name) || (o->device && (!d || strcmp(d, o->device))))
			continue;
		/* a counter read once has "rate": null (no interval yet): that
		 * is not 0, and neither is a sum with it in */
		json_t *v = json_object_get(s, gauge ? "value" : "rate");
		if (!json_is_number(v))
			unknown++;
		sum += json_number_value(v);
		n++;
	}
	if (n && unknown) {
		state = finish(f, NAGIOS_UNKNOWN, gauge ? "%s: %s has no value%s%s" :
			       "%s: %s has no rate yet (one reading, no interval)%s%s", what, md->name,
			       o->device ? " for device " : "", o->device ? o->device : "");
		json_decref(j);
		return state;
	}
	if (!n) {
		state = finish(f, NAGIOS_UNKNOWN, "%s has no %s series%s%s", what, md->name,
			       o->device ? " for device " : "", o->device ? o->device : "");
		json_decref(j);
		return state;
	}
	char label[96];
	const char *uom = "", *unit_text = "";
	if (meter == M_CPU) {
		sum /= 1e9;                       /* ns/s -> cores busy */
		snprintf(label, sizeof(label), "cpu");
		unit_text = " cores";
	} else if (gauge) {
		snprintf(label, sizeof(label), "%s%s%s", md->name, o->device ? ":" : "", o->device ? o->device : "");
		if (!strcmp(md->unit, "B")) {
			uom = "B";
			unit_text = " B";
		}
	} else {
		snprintf(label, sizeof(label), "%s%s%s/s", md->name, o->device ? ":" : "",
			 o->device ? o->device : "");
		unit_text = !strcmp(md->unit, "B") ? " B/s" : "/s";
	}
	state = judge(f, o, what, label, sum, uom, unit_text);
	json_decref(j);
	return state;
}

/* -m sla: the availability in percent, of the VM or of the fleet. */
static int check_sla(FILE *f, const struct opts *o)
{
	char path[200], period[16];
	json_t *j;
	int state = NAGIOS_UNKNOWN;
	if (o->period) {
		snprintf(period, sizeof(period), "%.15s", o->period);
	} else {
		char now[48];
		time_format_iso(time_now_ns(), now, sizeof(now));
		snprintf(period, sizeof(period), "%.7s", now);   /* YYYY-MM */
	}
	if (strspn(period, "0123456789-T:Z") != strlen(period))
		return finish(f, NAGIOS_UNKNOWN, "-P '%.20s': expected a period like 2026-10", period);
	snprintf(path, sizeof(path), "/api/v1/sla?period=%s", period);
	if (fetch(o, path, &j, f, &state))
		return state;
	const char *pct = NULL, *name = NULL;
	if (!o->resource) {
		pct = json_string_value(json_object_get(json_object_get(j, "fleet"), "availability_percent"));
		name = "fleet";
	} else {
		json_t *vms = json_object_get(j, "vms"), *v;
		size_t i;
		json_array_foreach(vms, i, v) {
			if (!strcmp(json_string_value(json_object_get(v, "resource")) ?: "", o->resource)) {
				pct = json_string_value(json_object_get(v, "availability_percent"));
				name = json_string_value(json_object_get(v, "name"));
			}
		}
	}
	double av;
	if (!pct)
		state = finish(f, NAGIOS_UNKNOWN, "%s has no availability for %s", o->resource ? o->resource : "the fleet",
			       period);
	else if (parse_num(pct, strlen(pct), &av) || av < 0 || av > 100)
		/* strtod read "n/a" as 0 %: a figure that is not one is not known */
		state = finish(f, NAGIOS_UNKNOWN, "%s: availability '%.20s' for %s is not a percentage",
			       o->resource ? o->resource : "the fleet", pct, period);
	else
		state = judge(f, o, name && *name ? name : o->resource, "availability", av, "%", " %");
	json_decref(j);
	return state;
}

/* -m alerts: the number of firing alerts (of the VM). */
static int check_alerts(FILE *f, const struct opts *o)
{
	json_t *j;
	int state = NAGIOS_UNKNOWN;
	if (fetch(o, "/api/v1/alerts", &j, f, &state))
		return state;
	json_t *arr = json_object_get(j, "alerts"), *a;
	size_t i;
	int n = 0;
	/* no list is nothing counted, not "0 firing" (another service on
	 * that port, another version of the API) */
	if (!json_is_array(arr)) {
		json_decref(j);
		return finish(f, NAGIOS_UNKNOWN, "tallyd's answer has no list of alerts");
	}
	char first[160] = "";
	json_array_foreach(arr, i, a) {
		json_t *labels = json_object_get(a, "labels");
		const char *st = json_string_value(json_object_get(a, "state"));
		const char *uuid = json_string_value(json_object_get(labels, "uuid"));
		if (!st || strcmp(st, "firing") || (o->resource && (!uuid || strcmp(uuid, o->resource))))
			continue;
		if (n++ == 0)
			snprintf(first, sizeof(first), " (first: %.60s %.60s)",
				 json_string_value(json_object_get(labels, "alertname")) ?: "?",
				 json_string_value(json_object_get(labels, "name")) ?: "");
	}
	char what[200];
	snprintf(what, sizeof(what), "%s%s", o->resource ? o->resource : "tallyd", first);
	state = judge(f, o, what, "firing", n, "", " alerts");
	json_decref(j);
	return state;
}

int nagios_check_main(int argc, char **argv, FILE *out)
{
	struct opts o = { .host = "127.0.0.1", .port = 9464, .timeout_s = 10 };
	char err[160];
	int opt, meter = -1;
	const char *env = getenv("TALLY_TOKEN");
	o.token = env;

	static const struct option lopts[] = {
		{ "hostname", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "token", required_argument, NULL, 'T' },
		{ "resource", required_argument, NULL, 'r' },
		{ "metric", required_argument, NULL, 'm' },
		{ "device", required_argument, NULL, 'd' },
		{ "period", required_argument, NULL, 'P' },
		{ "warning", required_argument, NULL, 'w' },
		{ "critical", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "H:p:T:r:m:d:P:w:c:t:vhV", lopts, NULL)) != -1) {
		char *end;
		long v;
		switch (opt) {
		case 'H': o.host = optarg; break;
		case 'p':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 65535)
				return finish(out, NAGIOS_UNKNOWN, "-p '%.40s': a port is 1-65535", optarg);
			o.port = (unsigned)v;
			break;
		case 'T': o.token = optarg; break;
		case 'r': o.resource = optarg; break;
		case 'm': o.meter = optarg; break;
		case 'd': o.device = optarg; break;
		case 'P': o.period = optarg; break;
		case 'w': o.warn = optarg; break;
		case 'c': o.crit = optarg; break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 3600)
				return finish(out, NAGIOS_UNKNOWN, "-t '%.40s': seconds, 1-3600", optarg);
			o.timeout_s = v;
			break;
		case 'v': o.verbose++; break;
		case 'h': usage(out); return NAGIOS_OK;
		case 'V': version(out); return NAGIOS_OK;
		default: return finish(out, NAGIOS_UNKNOWN, "bad option (check_tally -h lists them)");
		}
	}
	if (optind != argc)
		return finish(out, NAGIOS_UNKNOWN, "unexpected argument '%.60s'", argv[optind]);
	/* the host goes into the URL as it is: a '/', '@' or '?' in it would
	 * make another URL (-H 127.0.0.1/x asked port 80 of 127.0.0.1) */
	if (!o.host[0] || o.host[0] == '-' || strlen(o.host) > 253 ||
	    strspn(o.host, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:") != strlen(o.host))
		return finish(out, NAGIOS_UNKNOWN, "-H '%.60s': a host name, an IPv4 address or an IPv6 address"
			      " (without brackets)", o.host);
	if (!o.meter)
		return finish(out, NAGIOS_UNKNOWN, "-m METER, age, sla or alerts is required");
	bool special = !strcmp(o.meter, "age") || !strcmp(o.meter, "sla") || !strcmp(o.meter, "alerts");
	if (!special && (meter = meter_lookup(o.meter)) < 0)
		return finish(out, NAGIOS_UNKNOWN, "-m '%.60s': no such meter", o.meter);
	if (meter >= 0 && !o.resource)
		return finish(out, NAGIOS_UNKNOWN, "-m %s needs -r UUID", o.meter);
	if (o.resource && (strlen(o.resource) >= 64 || strspn(o.resource, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_:.") !=
				strlen(o.resource)))
		return finish(out, NAGIOS_UNKNOWN, "-r '%.70s': not a resource id", o.resource);
	if (o.warn) {
		if (nagios_range_parse(o.warn, &o.w, err, sizeof(err)))
			return finish(out, NAGIOS_UNKNOWN, "-w %s", err);
		o.have_w = true;
	}
	if (o.crit) {
		if (nagios_range_parse(o.crit, &o.c, err, sizeof(err)))
			return finish(out, NAGIOS_UNKNOWN, "-c %s", err);
		o.have_c = true;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return finish(out, NAGIOS_UNKNOWN, "cannot start libcurl");
	int st = !strcmp(o.meter, "sla") ? check_sla(out, &o)
		 : !strcmp(o.meter, "alerts") ? check_alerts(out, &o)
		 : !o.resource ? check_age_all(out, &o) : check_resource(out, &o, meter);
	curl_global_cleanup();
	if (o.verbose && verbose_line[0]) {
		for (char *p = verbose_line; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		fprintf(out, "%s\n", verbose_line);
	}
	return st;
}
