/*
 * reload.c: the running config against a new one (reload.h).
 */
#include "reload.h"
#include "str.h"

#include <stdio.h>
#include <string.h>

static void add(char *out, size_t len, const char *key)
{
	size_t n = strlen(out);
	snprintf(out + n, len - n, "%s%s", n ? ", " : "", key);
}

void reload_restart_keys(const struct daemon_config *a, const struct daemon_config *b, char *out, size_t len)
{
	out[0] = '\0';
#define DIFF(cond, key) do { if (cond) add(out, len, key); } while (0)
	DIFF(a->role != b->role, "tallyd.role");
	DIFF(strcmp(a->agent_id, b->agent_id), "tallyd.agent_id");
	DIFF(strcmp(a->data_dir, b->data_dir), "tallyd.data_dir");
	DIFF(a->interval_ns != b->interval_ns, "tallyd.interval");
	DIFF(a->clock != b->clock || a->start_ns != b->start_ns || a->end_ns != b->end_ns,
	     "tallyd.clock/start/end");
	DIFF(strcmp(a->agg.ledger_path, b->agg.ledger_path), "ledger.path");
	DIFF(a->agg.statement_timeout_ns != b->agg.statement_timeout_ns, "ledger.statement_timeout");
	DIFF(a->agg.max_gap_ns != b->agg.max_gap_ns, "ledger.max_gap");
	DIFF(a->agg.commit_every_ns != b->agg.commit_every_ns, "ledger.commit_every");
	DIFF(a->agg.rrd_enabled != b->agg.rrd_enabled || strcmp(a->agg.rrd_dir, b->agg.rrd_dir) ||
	     a->agg.rrd_step_ns != b->agg.rrd_step_ns, "rrd");
	bool same_coll = a->n_coll == b->n_coll;
	for (size_t i = 0; same_coll && i < a->n_coll; i++)
		same_coll = a->coll[i].ops == b->coll[i].ops;
	DIFF(!same_coll, "the collectors that run");
	const struct httpd_section *h = &a->http, *k = &b->http;
	DIFF(h->enabled != k->enabled, "http.enabled");
	DIFF(strcmp(h->address, k->address), "http.address");
	DIFF(h->port != k->port, "http.port");
	DIFF(h->serve_after_end != k->serve_after_end, "http.serve_after_end");
	DIFF(h->rate_per_s != k->rate_per_s || h->rate_burst != k->rate_burst, "http.rate_limit/rate_burst");
	DIFF(h->head_timeout_ns != k->head_timeout_ns || h->max_connections != k->max_connections ||
	     h->max_connections_per_address != k->max_connections_per_address ||
	     h->auth_failures_per_address != k->auth_failures_per_address ||
	     h->auth_failures_total != k->auth_failures_total, "http's connection limits");
	DIFF(strcmp(h->tls_cert, k->tls_cert) || strcmp(h->tls_key, k->tls_key) ||
	     strcmp(h->tls_client_ca, k->tls_client_ca), "http.tls_cert/tls_key/tls_client_ca");
	DIFF(a->ingest.max_request != b->ingest.max_request || a->ingest.max_pending != b->ingest.max_pending ||
	     a->ingest.body_timeout_ns != b->ingest.body_timeout_ns || a->ingest.max_frames != b->ingest.max_frames,
	     "ingest");
	DIFF(memcmp(&a->events, &b->events, sizeof(a->events)), "events");
	DIFF(a->meters_digest != b->meters_digest, "meters");
	const struct alerting_config *x = &a->alerts, *y = &b->alerts;
	DIFF(x->enabled != y->enabled, "alerts (the section given or not)");
	DIFF(x->enabled && y->enabled &&
	     (strcmp(x->alertmanager, y->alertmanager) || x->resend_ns != y->resend_ns ||
	      x->timeout_ns != y->timeout_ns || x->resolved_keep_ns != y->resolved_keep_ns ||
	      x->backoff_max_ns != y->backoff_max_ns || strcmp(x->generator_url, y->generator_url)),
	     "alerts' Alertmanager sender");
	DIFF(memcmp(&a->agent, &b->agent, sizeof(a->agent)), "agent");
#undef DIFF
}

void reload_take(struct daemon_config *run, const struct daemon_config *fresh)
{
	run->log_level = fresh->log_level;
	/* the rules and built-ins; the sender's keys stay (reload_restart_keys) */
	struct alerting_config *x = &run->alerts;
	const struct alerting_config *y = &fresh->alerts;
	if (x->enabled && y->enabled) {
		x->stale_intervals = y->stale_intervals;
		x->vm_down = y->vm_down;
		x->samples_dropped = y->samples_dropped;
		x->agent_silent_ns = y->agent_silent_ns;
		x->spool_filling = y->spool_filling;
		x->sla_burn_ppm = y->sla_burn_ppm;
		x->max_alerts = y->max_alerts;
		memcpy(x->rules, y->rules, sizeof(x->rules));
		x->n_rules = y->n_rules;
	}
	if (run->http.enabled && fresh->http.enabled) {
		memcpy(run->http.tokens, fresh->http.tokens, sizeof(run->http.tokens));
		run->http.n_tokens = fresh->http.n_tokens;
		str_copy(run->http.plan, fresh->http.plan, sizeof(run->http.plan));
		run->http.stale_after_ns = fresh->http.stale_after_ns;
	}
}
