/*
 * httpapi.c: the JSON API's handlers (httpd.h lists the routes): live
 * resources from the snapshot store, usage, SLA and invoices from the
 * ledger through billing, alerts from the alert store. Each refuses a
 * query parameter it does not know, and a tenant token sees its tenant
 * only (another tenant's resource is a 404). And the two routes that take
 * a body: POST /api/v1/ingest, handed to the aggregator role, and POST
 * /api/v1/events, handed to the writer of the ledger (below).
 */
#include "httpd_internal.h"
#include "err.h"
#include "issue.h"
#include "meter.h"
#include "plan.h"
#include "sla.h"
#include "str.h"
#include "tallytime.h"
#include "usage.h"
#include "alerts.h"
#include "log.h"
#include "ratelimit.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static json_t *iso(int64_t t_ns)
{
	char b[48];
	return t_ns ? json_string(time_format_iso(t_ns, b, sizeof(b))) : json_null();
}

static json_t *resource_json(const struct live_resource *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "uuid", json_string(r->uuid));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "tenant", json_string(r->tenant));
	json_object_set_new(o, "flavor", json_string(r->flavor));
	json_object_set_new(o, "host", json_string(r->host));
	json_object_set_new(o, "first_seen", iso(r->first_seen_ns));
	json_object_set_new(o, "last_seen", iso(r->last_seen_ns));
	json_object_set_new(o, "stale", json_boolean(r->stale));
	return o;
}

/* The envelope every live-state answer shares: when it was true. */
static json_t *live_envelope(const struct live_state *st)
{
	json_t *o = json_object();
	json_object_set_new(o, "now", iso(time_now_ns()));
	json_object_set_new(o, "data_time", iso(st ? st->tick_ns : 0));
	json_object_set_new(o, "stale_after_seconds",
			    json_real(st ? (double)st->stale_after_ns / 1e9 : 0.0));
	return o;
}

enum MHD_Result httpapi_resources(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest)
{
	static const char *const known[] = { "tenant", NULL };
	char bad[64];
	if (!httpd_args_ok(c, known, bad, sizeof(bad))) {
		char msg[128];
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (known: tenant)", bad);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	const char *tenant = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tenant");
	if (!w->admin) {
		if (tenant && strcmp(tenant, w->tenant))
			return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such tenant");
		tenant = w->tenant;
	}
	struct live_state *st = live_acquire(h->store);
	json_t *root = live_envelope(st), *arr = json_array();
	for (size_t i = 0; st && i < st->n_resources; i++) {
		const struct live_resource *r = &st->resources[i];
		if (tenant && strcmp(r->tenant, tenant))
			continue;
		json_array_append_new(arr, resource_json(r));
	}
	live_put(h->store, st);
	json_object_set_new(root, "resources", arr);
	return httpd_send_json(c, MHD_HTTP_OK, root);
}

enum MHD_Result httpapi_resource(struct httpd *h, struct MHD_Connection *c, const struct who *w,
				    const char *uuid)
{
	static const char *const known[] = { NULL };
	char bad[64];
	if (!httpd_args_ok(c, known, bad, sizeof(bad)))
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "this resource takes no query parameters");
	struct live_state *st = live_acquire(h->store);
	long i = st ? live_find_resource(st, uuid) : -1;
	if (i < 0 || (!w->admin && strcmp(st->resources[i].tenant, w->tenant))) {
		live_put(h->store, st);
		return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
	}
	const struct live_resource *r = &st->resources[i];
	json_t *root = live_envelope(st);
	json_object_set_new(root, "resource", resource_json(r));
	json_t *ser = json_array();
	for (uint32_t k = r->first_series; k < r->first_series + r->n_series; k++) {
		const struct live_series *s = &st->series[k];
		const struct meter_def *m = &meter_table[s->meter];
		json_t *o = json_object();
		json_object_set_new(o, "meter", json_string(m->name));
		json_object_set_new(o, "device", json_string(s->device));
		json_object_set_new(o, "host", json_string(s->host));
		json_object_set_new(o, "unit", json_string(m->unit));
		json_object_set_new(o, "last", iso(s->last_ns));
		json_object_set_new(o, "ended", json_boolean(s->ended));
		if (s->kind == SAMPLE_GAUGE) {
			json_object_set_new(o, "kind", json_string("gauge"));
			json_object_set_new(o, "value", json_real(s->gauge));
		} else {
			json_object_set_new(o, "kind", json_string("counter"));
			json_object_set_new(o, "total", json_integer((json_int_t)s->total));
			/* null, not 0, until a second reading gives an interval:
			 * a monitor must not read "idle" into "not measured" */
			json_object_set_new(o, "rate", s->has_rate ? json_real(s->rate) : json_null());
		}
		json_array_append_new(ser, o);
	}
	json_object_set_new(root, "series", ser);
	live_put(h->store, st);
	return httpd_send_json(c, MHD_HTTP_OK, root);
}

enum MHD_Result httpapi_usage(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest)
{
	static const char *const known[] = { "from", "to", "tenant", "resource", "meter", "by", NULL };
	char bad[64], msg[600];
	struct tally_err e = { 0 };
	int64_t x;
	if (!httpd_args_ok(c, known, bad, sizeof(bad))) {
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (known: from, to, tenant, resource,"
			 " meter, by)", bad);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
#define ARG(n) MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, n)
	const char *from = ARG("from"), *to = ARG("to"), *tenant = ARG("tenant"),
		   *resource = ARG("resource"), *meter = ARG("meter"), *by = ARG("by");
#undef ARG
	struct usage_query q = { .ledger = h->ledger_path, .meter = -1, .by = USAGE_BY_TENANT };
	if (!from || !to)
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, !from ? "'from' is required" : "'to' is required");
	if (time_parse_range(from, &q.from_ns, &x, &e)) {
		snprintf(msg, sizeof(msg), "from: %s", e.msg);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	if (time_parse_range(to, &x, &q.to_ns, &e)) {
		snprintf(msg, sizeof(msg), "to: %s", e.msg);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	if (q.from_ns % NS_PER_HOUR || q.to_ns % NS_PER_HOUR)
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "usage is kept per UTC hour: give whole hours");
	if (q.from_ns >= q.to_ns)
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "'from' is not before 'to'");
	if (meter && (q.meter = meter_lookup(meter)) < 0)
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "no such meter");
	if (by) {
		if (!strcmp(by, "tenant"))
			q.by = USAGE_BY_TENANT;
		else if (!strcmp(by, "resource"))
			q.by = USAGE_BY_RESOURCE;
		else if (!strcmp(by, "hour"))
			q.by = USAGE_BY_HOUR;
		else
			return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "'by' must be tenant, resource or hour");
	}
	if (!w->admin) {
		if (tenant && strcmp(tenant, w->tenant))
			return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such tenant");
		tenant = w->tenant;
	}
	q.tenant = tenant;
	q.resource = resource;
	struct usage_result res = { 0 };
	int rc = usage_query(&q, &res, &e);
	if (rc) {
		/* the ledger, not the request, is at fault */
		return httpd_send_error(c, rc == -EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE,
				  e.msg);
	}
	if (!w->admin && resource && res.n == 0) {
		/* another tenant's resource and one of ours without usage look alike */
		usage_result_release(&res);
		return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such resource");
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		usage_result_release(&res);
		return MHD_NO;
	}
	rc = usage_render(f, &q, &res, USAGE_JSON);
	usage_result_release(&res);
	if (fclose(f) || rc) {
		free(buf);
		return httpd_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render the usage");
	}
	return httpd_send_buf(c, MHD_HTTP_OK, "application/json", buf, len);
}

/* GET /api/v1/sla?period=2026-10 (or from/to)[&tenant=X]: the SLA report
 * (docs/sla.md) under the plan of http.plan; a tenant token sees its own. */
enum MHD_Result httpapi_sla(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest)
{
	static const char *const known[] = { "period", "from", "to", "tenant", NULL };
	char bad[64], msg[600];
	struct tally_err e = { 0 };
	int64_t x;
	if (!httpd_args_ok(c, known, bad, sizeof(bad))) {
		snprintf(msg, sizeof(msg), "unknown query parameter '%s' (known: period, from, to, tenant)", bad);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	char plan_path[PATH_MAX];
	httpd_plan_path(h, plan_path, sizeof(plan_path));
	if (!plan_path[0])
		return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no rate plan is configured (http.plan)");
#define ARG(n) MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, n)
	const char *period = ARG("period"), *from = ARG("from"), *to = ARG("to"), *tenant = ARG("tenant");
#undef ARG
	struct sla_query q = { .ledger = h->ledger_path };
	if (period ? (from || to || time_parse_range(period, &q.from_ns, &q.to_ns, &e))
		   : (!from || !to || time_parse_range(from, &q.from_ns, &x, &e) ||
		      time_parse_range(to, &x, &q.to_ns, &e))) {
		snprintf(msg, sizeof(msg), "give 'period' or 'from' and 'to'%s%s", e.msg[0] ? ": " : "", e.msg);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	if (q.from_ns >= q.to_ns)
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "the period is empty");
	if (!w->admin) {
		if (tenant && strcmp(tenant, w->tenant))
			return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such tenant");
		tenant = w->tenant;
	}
	q.tenant = tenant;
	struct plan p;
	struct plan_errors errs;
	if (plan_load(plan_path, &p, &errs))
		return httpd_send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, errs.n ? errs.msg[0] : "the plan does not load");
	if (!p.has_sla) {
		plan_release(&p);
		return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "the rate plan has no 'sla' section");
	}
	struct sla_report r;
	int rc = sla_compute(&q, &p, &r, &e);
	if (rc) {
		plan_release(&p);
		/* a tenant token's unknown tenant and another's look alike */
		return httpd_send_error(c, rc == -ESRCH ? MHD_HTTP_NOT_FOUND : MHD_HTTP_SERVICE_UNAVAILABLE, e.msg);
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	rc = f ? sla_render(f, &r, &p, SLA_JSON) : -ENOMEM;
	sla_report_release(&r);
	plan_release(&p);
	if (!f || fclose(f) || rc) {
		free(buf);
		return httpd_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render the report");
	}
	return httpd_send_buf(c, MHD_HTTP_OK, "application/json", buf, len);
}

/* GET /api/v1/invoices: the issued invoices (a tenant token: its own), and
 * /api/v1/invoices/NUMBER (or ISSUER#NUMBER, '#' as %23): one as stored,
 * its hash checked; another tenant's is a 404. */
enum MHD_Result httpapi_invoices(struct httpd *h, struct MHD_Connection *c, const struct who *w,
				    const char *which)
{
	static const char *const none[] = { NULL };
	char bad[64], msg[600];
	struct tally_err e = { 0 };
	if (!httpd_args_ok(c, none, bad, sizeof(bad))) {
		snprintf(msg, sizeof(msg), "unknown query parameter '%s'", bad);
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	if (which) {
		struct issued is;
		int rc = issue_find(h->ledger_path, which, &is, &e);
		if (rc == -ENOENT || (rc == 0 && !w->admin && strcmp(is.tenant, w->tenant))) {
			if (rc == 0) {
				free(is.plan_text);
				free(is.document);
			}
			return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such invoice");
		}
		if (rc)
			return httpd_send_error(c, rc == -EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, e.msg);
		char hex[65];
		issue_sha256_hex(is.document, strlen(is.document), hex);
		free(is.plan_text);
		if (strcmp(hex, is.sha256)) {
			free(is.document);
			return httpd_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
					  "the stored invoice does not match its hash: the ledger was altered");
		}
		return httpd_send_buf(c, MHD_HTTP_OK, "application/json", is.document, strlen(is.document));
	}
	struct issued *list = NULL;
	size_t n = 0;
	int rc = issue_list(h->ledger_path, w->admin ? NULL : w->tenant, &list, &n, &e);
	if (rc)
		return httpd_send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, e.msg);
	json_t *root = json_object(), *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "issuer", json_string(list[i].issuer));
		json_object_set_new(o, "number", json_integer(list[i].number));
		json_object_set_new(o, "tenant", json_string(list[i].tenant));
		json_object_set_new(o, "period_from", iso(list[i].from_ns));
		json_object_set_new(o, "period_to", iso(list[i].to_ns));
		json_object_set_new(o, "issued", iso(list[i].issued_ns));
		json_object_set_new(o, "currency", json_string(list[i].currency));
		json_object_set_new(o, "total", json_string(list[i].total));
		json_object_set_new(o, "sha256", json_string(list[i].sha256));
		json_array_append_new(arr, o);
	}
	free(list);
	json_object_set_new(root, "invoices", arr);
	return httpd_send_json(c, MHD_HTTP_OK, root);
}

/* Pending and firing alerts; a tenant token sees its tenant's only (alerts
 * about tallyd itself have no tenant: admin only). */
enum MHD_Result httpapi_alerts(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest)
{
	static const char *const known[] = { "tenant", NULL };
	char bad[64];
	if (!httpd_args_ok(c, known, bad, sizeof(bad)))
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "unknown query parameter (known: tenant)");
	const char *tenant = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tenant");
	if (!w->admin) {
		if (tenant && strcmp(tenant, w->tenant))
			return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such tenant");
		tenant = w->tenant;
	}
	struct alert_snap *snap = alert_acquire(h->alerts);
	uint64_t dropped = snap ? snap->dropped : 0;
	json_t *root = json_object(), *arr = json_array();
	json_object_set_new(root, "now", iso(time_now_ns()));
	json_object_set_new(root, "data_time", iso(snap ? snap->tick_ns : 0));
	for (size_t i = 0; snap && i < snap->n; i++) {
		const struct alert_view *v = &snap->v[i];
		if ((v->state != ALERT_PENDING && v->state != ALERT_FIRING) ||
		    (tenant && strcmp(v->tenant, tenant)))
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "labels", alerts_pairs_json(v->labels));
		json_object_set_new(o, "annotations", alerts_pairs_json(v->annotations));
		json_object_set_new(o, "state", json_string(alert_state_name(v->state)));
		json_object_set_new(o, "activeAt", iso(v->active_ns));
		json_object_set_new(o, "startsAt", iso(v->fired_ns));
		json_object_set_new(o, "value", json_real(v->value));
		json_array_append_new(arr, o);
	}
	alert_put(h->alerts, snap);
	if (w->admin) {
		/* the bounds and the sender's health: tallyd's own business */
		struct alert_send_stats ss;
		alert_store_send_stats(h->alerts, &ss);
		json_t *o = json_object();
		json_object_set_new(o, "posts", json_integer((json_int_t)ss.posts));
		json_object_set_new(o, "failures", json_integer((json_int_t)ss.failures));
		json_object_set_new(o, "alerts_sent", json_integer((json_int_t)ss.alerts_sent));
		json_object_set_new(o, "last_success", iso(ss.last_success_ns));
		json_object_set_new(root, "sender", o);
		json_object_set_new(root, "dropped", json_integer((json_int_t)dropped));
	}
	json_object_set_new(root, "alerts", arr);
	return httpd_send_json(c, MHD_HTTP_OK, root);
}


/* ---- POST /api/v1/ingest and /api/v1/events ----
 *
 * The body goes to the writer's side (httpd.h, struct httpd_ingest): the
 * aggregator role's ingest for an agent's batches, authenticated by the
 * agent's token (and, with http.tls_client_ca, a client certificate); the
 * events queue for a source service's usage events, authenticated by a
 * source's or an admin's token. Its Content-Length within max_request
 * (413 before a byte of it is read) and within what may be held at once
 * (max_pending, else 429 and Retry-After), its bytes whole within
 * body_timeout (else the connection is closed: the sweeper in httpd.c for a
 * body that stops, the check below for one that trickles). Then the
 * writer's side checks it and, unless it refuses it at once, the
 * connection is suspended until the writer has committed what it
 * carries. */

enum post_state { IC_BODY, IC_WAITING, IC_ANSWERED };

struct post_conn {
	struct httpd *h;
	struct httpd_post *p;
	struct MHD_Connection *c;
	struct httpd_ingest_req r;
	uint8_t *buf;
	size_t cap;                  /* Content-Length: bytes counted in p->pending */
	int64_t deadline_ns;         /* the body whole by then (monotonic) */
	enum post_state state;
};

/* One line per refusal the listener makes itself, rate-limited per client
 * and status. who: the token's agent or source, "" when unknown. */
static void post_log(struct httpd *h, const struct httpd_post *p, const char *addr, const char *who, unsigned status,
		     const char *why)
{
	char key[96];
	snprintf(key, sizeof(key), "%s|%s|%u", p->section, addr, status);
	if (ratelimit_take(h->ingest_logs, key, time_mono_ns()))
		return;
	if (p == &h->post[HTTPD_POST_INGEST])
		log_msg(LOG_WARN, "ingest: agent %s%s%s seq ? from %s refused (%u): %s", who[0] ? "'" : "",
			who[0] ? who : "unknown", who[0] ? "'" : "", addr, status, why);
	else
		log_msg(LOG_WARN, "events: a request of %s%s%s from %s refused (%u): %s", who[0] ? "source '" : "",
			who[0] ? who : "an unknown source", who[0] ? "'" : "", addr, status, why);
}

static enum MHD_Result post_refuse(struct httpd *h, const struct httpd_post *p, struct MHD_Connection *c,
				   const char *addr, const char *who, unsigned status, const char *why)
{
	post_log(h, p, addr, who, status, why);
	static const unsigned statuses[] = PROM_REFUSAL_STATUSES;
	for (int i = 0; i < PROM_N_REFUSAL; i++)
		if (statuses[i] == status) {
			pthread_mutex_lock(&h->stats_lock);
			h->post_refused[p - h->post][i]++;
			pthread_mutex_unlock(&h->stats_lock);
		}
	if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		return httpd_too_many(c, NS_PER_SEC, why);
	return httpd_send_error(c, status, why);
}

/* A client certificate that verifies against http.tls_client_ca. */
static bool client_cert_ok(struct MHD_Connection *c, char *why, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s = ci ? (gnutls_session_t)ci->tls_session : NULL;
	unsigned n = 0, status = 0;
	if (!s || !gnutls_certificate_get_peers(s, &n) || !n) {
		snprintf(why, len, "a client certificate is required (http.tls_client_ca)");
		return false;
	}
	int rc = gnutls_certificate_verify_peers2(s, &status);
	if (rc < 0 || status) {
		gnutls_datum_t d = { NULL, 0 };
		if (rc >= 0 && gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &d, 0) >= 0) {
			snprintf(why, len, "the client certificate does not verify: %s", (const char *)d.data);
			gnutls_free(d.data);
			for (size_t k = strlen(why); k && (why[k - 1] == ' ' || why[k - 1] == '.'); k--)
				why[k - 1] = '\0';
		} else {
			snprintf(why, len, "the client certificate does not verify: %s",
				 rc < 0 ? gnutls_strerror(rc) : "rejected");
		}
		return false;
	}
	return true;
}

/* Content-Length as digits only (the gate and libmicrohttpd checked the
 * head; this is the value we allocate by). */
static bool parse_length(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	if (!v || !*v)
		return false;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return true;
}

/* Tally-Spool: batches=N bytes=M (schemas/batch-wire.md); -1 when absent
 * or not of that shape. */
static void parse_spool(const char *v, int64_t *batches, int64_t *bytes)
{
	long long a, b;
	char end;
	*batches = *bytes = -1;
	if (v && sscanf(v, "batches=%lld bytes=%lld%c", &a, &b, &end) == 2 && a >= 0 && b >= 0) {
		*batches = a;
		*bytes = b;
	}
}

static void post_resume(void *arg)
{
	struct post_conn *ic = arg;
	MHD_resume_connection(ic->c);
}

static enum MHD_Result post_send(struct post_conn *ic)
{
	struct httpd_ingest_req *r = &ic->r;
	char *body = r->json;
	char secs[24];
	r->json = NULL;
	ic->state = IC_ANSWERED;
	if (!body)
		body = strdup("{\"error\":\"no answer\"}");
	if (!body)
		return MHD_NO;
	snprintf(secs, sizeof(secs), "%lld", (long long)r->retry_after_s);
	return httpd_send_buf_h(ic->c, r->status ? r->status : 500, "application/json", body, strlen(body),
				r->retry_after_s > 0 ? MHD_HTTP_HEADER_RETRY_AFTER : NULL, secs);
}

/* Who may post to p: an agent's token to ingest (with its certificate
 * when http.tls_client_ca asks for one), a source's or an admin's to post
 * events. 0, or the refusal was queued (*ret). */
static int post_who(struct httpd *h, struct httpd_post *p, struct MHD_Connection *c, const struct who *w,
		    const char *addr, enum MHD_Result *ret)
{
	char why[300];
	if (p == &h->post[HTTPD_POST_INGEST]) {
		if (!w->agent[0]) {
			*ret = w->token >= 0 ? post_refuse(h, p, c, addr, w->source, MHD_HTTP_FORBIDDEN,
							   "only an agent's token may ingest (http.tokens, 'agent')")
			       : post_refuse(h, p, c, addr, "", MHD_HTTP_UNAUTHORIZED,
					     "an agent's bearer token is required");
			return 1;
		}
		if (h->client_ca && !client_cert_ok(c, why, sizeof(why))) {
			*ret = post_refuse(h, p, c, addr, w->agent, MHD_HTTP_FORBIDDEN, why);
			return 1;
		}
		return 0;
	}
	if (w->token < 0) {
		*ret = post_refuse(h, p, c, addr, "", MHD_HTTP_UNAUTHORIZED,
				   "a source's or an admin's bearer token is required (http.tokens, 'source')");
		return 1;
	}
	if (!w->source[0] && !w->admin_token) {
		*ret = post_refuse(h, p, c, addr, w->agent, MHD_HTTP_FORBIDDEN, "only a source's or an admin's token"
				   " may post events (http.tokens, 'source'); an agent's ingests, a tenant's reads");
		return 1;
	}
	return 0;
}

/* The first call: who, how much, whether it may come. */
static enum MHD_Result post_begin(struct httpd *h, struct httpd_post *p, struct MHD_Connection *c,
				  const struct who *w, void **con_cls)
{
	const struct httpd_ingest *in = p->hooks;
	const bool events = p == &h->post[HTTPD_POST_EVENTS];
	const char *who = events ? w->source : w->agent;
	char addr[INET6_ADDRSTRLEN + 4], why[300];
	enum MHD_Result ret;
	httpd_client_key(c, addr, sizeof(addr));
	httpd_watch_set(c, 0);
	if (post_who(h, p, c, w, addr, &ret))
		return ret;
	uint64_t len;
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
	    !parse_length(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH), &len))
		return post_refuse(h, p, c, addr, who, MHD_HTTP_LENGTH_REQUIRED,
				   "a Content-Length is required (no chunked bodies)");
	if (len > in->max_request) {
		snprintf(why, sizeof(why), "the body is %llu bytes, over this tallyd's %s.max_request (%zu bytes): send"
			 " fewer %s at once", (unsigned long long)len, p->section, in->max_request,
			 events ? "events" : "frames");
		return post_refuse(h, p, c, addr, who, MHD_HTTP_CONTENT_TOO_LARGE, why);
	}
	if (!len)
		return post_refuse(h, p, c, addr, who, MHD_HTTP_BAD_REQUEST, events ? "empty body: a request carries"
				   " {\"events\": [...]}" : "empty body: a request carries 1 to 1024 frames");
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct && !events && strncasecmp(ct, "application/x-tally-batch", 25))
		return post_refuse(h, p, c, addr, who, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
				   "the body must be application/x-tally-batch (schemas/batch-wire.md)");
	if (ct && events && strncasecmp(ct, "application/json", 16))
		return post_refuse(h, p, c, addr, who, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
				   "the body must be application/json (schemas/events-api.md)");
	pthread_mutex_lock(&h->ingest_lock);
	bool room = p->pending + len <= in->max_pending;
	if (room)
		p->pending += len;
	size_t held = p->pending;
	pthread_mutex_unlock(&h->ingest_lock);
	if (!room) {
		snprintf(why, sizeof(why), "the %s is behind: %zu bytes of requests wait for it (%s.max_pending %zu)",
			 events ? "ledger's writer" : "aggregator", held, p->section, in->max_pending);
		return post_refuse(h, p, c, addr, who, MHD_HTTP_TOO_MANY_REQUESTS, why);
	}
	struct post_conn *ic = calloc(1, sizeof(*ic));
	uint8_t *buf = ic ? malloc(len) : NULL;
	if (!buf) {
		free(ic);
		pthread_mutex_lock(&h->ingest_lock);
		p->pending -= len;
		pthread_mutex_unlock(&h->ingest_lock);
		return post_refuse(h, p, c, addr, who, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	}
	ic->h = h;
	ic->p = p;
	ic->c = c;
	ic->buf = buf;
	ic->cap = len;
	ic->deadline_ns = time_mono_ns() + in->body_timeout_ns;
	ic->state = IC_BODY;
	str_copy(ic->r.agent, who, sizeof(ic->r.agent));
	str_copy(ic->r.client, addr, sizeof(ic->r.client));
	ic->r.body = buf;
	ic->r.spool_batches = ic->r.spool_bytes = -1;
	if (!events)
		parse_spool(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Tally-Spool"), &ic->r.spool_batches,
			    &ic->r.spool_bytes);
	httpd_watch_set(c, ic->deadline_ns);
	*con_cls = ic;
	return MHD_YES;
}

enum MHD_Result httpapi_post(struct httpd *h, struct httpd_post *p, struct MHD_Connection *c, const struct who *w,
			     const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct post_conn *ic = *con_cls;
	if (!ic)
		return post_begin(h, p, c, w, con_cls);
	p = ic->p;
	if (ic->state == IC_WAITING)   /* resumed: the writer answered */
		return post_send(ic);
	if (ic->state == IC_ANSWERED)
		return MHD_YES;
	if (*upload_data_size) {
		if (time_mono_ns() > ic->deadline_ns) {
			char why[160];
			snprintf(why, sizeof(why), "the body did not arrive whole within %s.body_timeout (%.0f s): %zu of"
				 " %zu bytes", p->section, (double)p->hooks->body_timeout_ns / 1e9, ic->r.len, ic->cap);
			post_log(h, p, ic->r.client, ic->r.agent, MHD_HTTP_REQUEST_TIMEOUT, why);
			return MHD_NO;   /* closed: a client this slow would not read an answer either */
		}
		size_t n = *upload_data_size;
		if (n > ic->cap - ic->r.len)
			return MHD_NO;   /* more than its Content-Length: libmicrohttpd does not pass that */
		memcpy(ic->buf + ic->r.len, upload_data, n);
		ic->r.len += n;
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole body is here */
	httpd_watch_set(c, 0);
	int rc = p->hooks->check(p->hooks->ctx, &ic->r);
	if (rc == 0)
		return post_send(ic);
	ic->state = IC_WAITING;
	MHD_suspend_connection(c);
	p->hooks->queue(p->hooks->ctx, &ic->r, post_resume, ic);
	return MHD_YES;
}

void httpapi_post_done(struct httpd *h, void *con_cls)
{
	struct post_conn *ic = con_cls;
	pthread_mutex_lock(&h->ingest_lock);
	ic->p->pending -= ic->cap;
	pthread_mutex_unlock(&h->ingest_lock);
	free(ic->r.json);
	free(ic->buf);
	free(ic);
}
