/*
 * daemon.c: tallyd's config file -> struct daemon_config, and the
 * all-in-one pipeline that runs it (see daemon.h, docs/config.md).
 */
#include "daemon.h"
#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "err.h"
#include "log.h"
#include "scheduler.h"
#include "state.h"
#include "str.h"
#include "tallytime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const top_keys[] = { "tallyd", "ledger", "rrd", "collectors", "http", "alerts",
					NULL };
static const char *const tallyd_keys[] = { "role", "agent_id", "data_dir", "interval", "log_level",
					   "clock", "start", "end", NULL };
static const char *const ledger_keys[] = { "path", "max_gap", "commit_every", NULL };
static const char *const rrd_keys[] = { "enabled", "dir", "step", NULL };
static const char *const roles[] = { "all-in-one", "agent", "aggregator", NULL };
static const char *const clocks[] = { "realtime", "fast-forward", NULL };
static const char *const levels[] = { "error", "warning", "info", "debug", NULL };

static int join(char *out, size_t len, const char *dir, const char *name, struct tally_err *e)
{
	if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
		return err_set(e, -ENAMETOOLONG, "path too long: %s/%s", dir, name);
	return 0;
}

static const char *const http_keys[] = { "enabled", "address", "port", "stale_after",
					 "serve_after_end", "tokens", "plan", "rate_limit", "rate_burst",
					 "head_timeout", "max_connections", "max_connections_per_address",
					 "auth_failures_per_address", "auth_failures_total", NULL };
static const char *const token_keys[] = { "token", "tenant", "admin", NULL };

static bool loopback(const char *addr)
{
	return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1");
}

/* The `http:` section (docs/config.md). Tokens are a list of maps, each
 * with a token and either admin: true or a tenant. */
static int parse_http(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	const struct cfg_node *hs = NULL, *tk;
	struct daemon_http *h = &c->http;
	uint64_t port = 9464, burst = 100;  /* rate_burst's default */
	uint64_t max_conn = 1024, per_addr = 32, fail_addr = 10, fail_total = 100;
	int rc;

	str_copy(h->address, "127.0.0.1", sizeof(h->address));
	h->rate_per_s = 20;
	h->rate_burst = (uint32_t)burst;
	h->port = 9464;
	h->stale_after_ns = 3 * c->interval_ns;
	h->head_timeout_ns = 5 * NS_PER_SEC;
	if ((rc = cfg_get_map(root, "http", &hs, e)))
		return rc;
	if (!hs)
		return 0;
	h->enabled = true;
	if ((rc = cfg_check_keys(hs, "http", http_keys, e)) ||
	    (rc = cfg_get_bool(hs, "enabled", &h->enabled, e)) ||
	    (rc = cfg_get_string(hs, "address", h->address, sizeof(h->address), e)) ||
	    (rc = cfg_get_uint(hs, "port", 0, 65535, &port, e)) ||
	    (rc = cfg_get_duration(hs, "stale_after", NS_PER_SEC, 30 * 86400 * NS_PER_SEC,
				   &h->stale_after_ns, e)) ||
	    (rc = cfg_get_bool(hs, "serve_after_end", &h->serve_after_end, e)) ||
	    (rc = cfg_get_string(hs, "plan", h->plan, sizeof(h->plan), e)) ||
	    (rc = cfg_get_double(hs, "rate_limit", 0, 1e6, &h->rate_per_s, e)) ||
	    (rc = cfg_get_uint(hs, "rate_burst", 1, 1000000, &burst, e)) ||
	    (rc = cfg_get_duration(hs, "head_timeout", NS_PER_SEC / 10, 60 * NS_PER_SEC,
				   &h->head_timeout_ns, e)) ||
	    (rc = cfg_get_uint(hs, "max_connections", 16, 65536, &max_conn, e)) ||
	    (rc = cfg_get_uint(hs, "max_connections_per_address", 1, max_conn, &per_addr, e)) ||
	    (rc = cfg_get_uint(hs, "auth_failures_per_address", 1, 1000000, &fail_addr, e)) ||
	    (rc = cfg_get_uint(hs, "auth_failures_total", 1, 1000000, &fail_total, e)))
		return rc;
	h->auth_failures_per_address = (uint32_t)fail_addr;
	h->auth_failures_total = (uint32_t)fail_total;
	h->port = (int)port;
	h->rate_burst = (uint32_t)burst;
	h->max_connections = (uint32_t)max_conn;
	h->max_connections_per_address = (uint32_t)(per_addr < max_conn ? per_addr : max_conn);
	if ((tk = cfg_get(hs, "tokens"))) {
		if (tk->type != CFG_SEQ)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'tokens': expected a list of {token, tenant}"
				       " or {token, admin: true}", tk->file, tk->line, tk->col);
		for (size_t i = 0; i < tk->n_kids; i++) {
			const struct cfg_node *t = tk->kids[i];
			struct daemon_token *dt = &h->tokens[h->n_tokens];
			if (h->n_tokens == DAEMON_MAX_TOKENS)
				return err_set(e, -ERANGE, "%s:%d:%d: more than %d tokens", t->file, t->line,
					       t->col, DAEMON_MAX_TOKENS);
			if (t->type != CFG_MAP)
				return err_set(e, -EINVAL, "%s:%d:%d: a token is a map with 'token' and"
					       " 'tenant' or 'admin: true'", t->file, t->line, t->col);
			if ((rc = cfg_check_keys(t, "tokens", token_keys, e)) ||
			    (rc = cfg_get_string(t, "token", dt->token, sizeof(dt->token), e)) ||
			    (rc = cfg_get_string(t, "tenant", dt->tenant, sizeof(dt->tenant), e)) ||
			    (rc = cfg_get_bool(t, "admin", &dt->admin, e)))
				return rc;
			if (strlen(dt->token) < 16)
				return err_set(e, -EINVAL, "%s:%d:%d: key 'token': at least 16 characters"
					       " (a guessable token is no access control)", t->file, t->line, t->col);
			if (dt->admin == !!dt->tenant[0])
				return err_set(e, -EINVAL, "%s:%d:%d: a token needs %s", t->file, t->line,
					       t->col, dt->admin ? "'admin: true' or a 'tenant', not both"
					       : "'admin: true' or a 'tenant'");
			for (size_t j = 0; j < h->n_tokens; j++)
				if (!strcmp(h->tokens[j].token, dt->token))
					return err_set(e, -EINVAL, "%s:%d:%d: key 'token': given twice", t->file,
						       t->line, t->col);
			h->n_tokens++;
		}
	}
	unsigned char a[16];
	if (inet_pton(AF_INET, h->address, a) != 1 && inet_pton(AF_INET6, h->address, a) != 1) {
		const struct cfg_node *n = cfg_get(hs, "address");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'address': '%s' is not a numeric IPv4 or IPv6"
			       " address (127.0.0.1, ::1)", n->file, n->line, n->col, h->address);
	}
	if (h->enabled && !h->n_tokens && !loopback(h->address)) {
		const struct cfg_node *n = cfg_get(hs, "address");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'address': '%s' is not loopback; outside"
			       " loopback the API needs 'tokens'", n->file, n->line, n->col, h->address);
	}
	return 0;
}

/* The `alerts:` section (aggregator/alerting.c); generatorURL defaults to
 * this tallyd's own /api/v1/alerts. */
static int parse_alerts(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	int rc = alerting_config_parse(&c->alerts, cfg_get(root, "alerts"), c->interval_ns, e);
	if (rc || c->alerts.generator_url[0])
		return rc;
	const char *a = c->http.address;
	snprintf(c->alerts.generator_url, sizeof(c->alerts.generator_url), "http://%s%s%s:%d/api/v1/alerts",
		 strchr(a, ':') ? "[" : "", a, strchr(a, ':') ? "]" : "", c->http.port);
	return 0;
}

static int parse(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	const struct cfg_node *td = NULL, *lg = NULL, *rr = NULL, *co = NULL;
	int rc, role = ROLE_ALL_IN_ONE, clk = CLOCK_REAL, lvl = LOG_INFO;
	int64_t end_start = 0;

	if ((rc = cfg_check_keys(root, "top level", top_keys, e)) ||
	    (rc = cfg_get_map(root, "tallyd", &td, e)) || (rc = cfg_get_map(root, "ledger", &lg, e)) ||
	    (rc = cfg_get_map(root, "rrd", &rr, e)) || (rc = cfg_get_map(root, "collectors", &co, e)))
		return rc;
	if ((rc = cfg_check_keys(td, "tallyd", tallyd_keys, e)) ||
	    (rc = cfg_get_enum(td, "role", roles, &role, e)) ||
	    (rc = cfg_get_string(td, "agent_id", c->agent_id, sizeof(c->agent_id), e)) ||
	    (rc = cfg_get_string(td, "data_dir", c->data_dir, sizeof(c->data_dir), e)) ||
	    (rc = cfg_get_duration(td, "interval", NS_PER_SEC, 3600 * NS_PER_SEC, &c->interval_ns, e)) ||
	    (rc = cfg_get_enum(td, "log_level", levels, &lvl, e)) ||
	    (rc = cfg_get_enum(td, "clock", clocks, &clk, e)) ||
	    (rc = cfg_get_time(td, "start", &c->start_ns, e)) ||
	    (rc = cfg_get_time(td, "end", &end_start, e)))
		return rc;
	c->role = (enum daemon_role)role;
	c->clock = (enum daemon_clock)clk;
	c->log_level = lvl;
	if (end_start)
		c->end_ns = end_start;
	if (c->role != ROLE_ALL_IN_ONE) {
		const struct cfg_node *n = cfg_get(td, "role");
		return err_set(e, -ENOTSUP, "%s:%d:%d: key 'role': '%s' needs the network transport, which"
			       " this build does not have yet (use all-in-one)", n->file, n->line, n->col,
			       roles[role]);
	}
	if (c->interval_ns % NS_PER_SEC) {
		const struct cfg_node *n = cfg_get(td, "interval");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'interval': must be whole seconds", n->file,
			       n->line, n->col);
	}
	if (c->clock == CLOCK_FAST_FORWARD) {
		const struct cfg_node *n = cfg_get(td, "clock");
		if (!c->start_ns || !c->end_ns || c->end_ns <= c->start_ns)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'clock': fast-forward needs 'start' and a"
				       " later 'end' in 'tallyd'", n->file, n->line, n->col);
		if (c->start_ns % NS_PER_SEC) {
			n = cfg_get(td, "start");
			return err_set(e, -EINVAL, "%s:%d:%d: key 'start': must be whole seconds", n->file,
				       n->line, n->col);
		}
	}
	if ((rc = cfg_check_keys(lg, "ledger", ledger_keys, e)) ||
	    (rc = cfg_get_string(lg, "path", c->ledger_path, sizeof(c->ledger_path), e)) ||
	    (rc = cfg_get_duration(lg, "max_gap", NS_PER_SEC, 86400 * NS_PER_SEC, &c->max_gap_ns, e)) ||
	    (rc = cfg_get_duration(lg, "commit_every", 0, 3600 * NS_PER_SEC, &c->commit_every_ns, e)))
		return rc;
	if (c->commit_every_ns < 0)
		c->commit_every_ns = c->clock == CLOCK_FAST_FORWARD ? DAEMON_COMMIT_EVERY_FF
				     : DAEMON_COMMIT_EVERY_RT;
	/* a gap is a missed reading: with max_gap not longer than the interval
	 * every reading would be one, the usage never "covered" and every
	 * running VM recorded silent in every interval (downtime to the SLA) */
	const struct cfg_node *mg = cfg_get(lg, "max_gap");
	if (!mg && c->max_gap_ns < 3 * c->interval_ns)
		c->max_gap_ns = 3 * c->interval_ns;
	if (mg && c->max_gap_ns <= c->interval_ns)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'max_gap': must be longer than tallyd.interval (%llds):"
			       " each interval would be a gap, and a silence of every VM to the SLA", mg->file,
			       mg->line, mg->col, (long long)(c->interval_ns / NS_PER_SEC));
	int64_t step = c->rrd_step_ns;
	if ((rc = cfg_check_keys(rr, "rrd", rrd_keys, e)) ||
	    (rc = cfg_get_bool(rr, "enabled", &c->rrd_enabled, e)) ||
	    (rc = cfg_get_string(rr, "dir", c->rrd_dir, sizeof(c->rrd_dir), e)) ||
	    (rc = cfg_get_duration(rr, "step", NS_PER_SEC, 86400 * NS_PER_SEC, &step, e)))
		return rc;
	if (step % NS_PER_SEC) {
		const struct cfg_node *n = cfg_get(rr, "step");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'step': must be whole seconds", n->file, n->line,
			       n->col);
	}
	c->rrd_step_ns = step;
	if (!c->ledger_path[0] && (rc = join(c->ledger_path, sizeof(c->ledger_path), c->data_dir, "ledger.db", e)))
		return rc;
	if (!c->rrd_dir[0] && (rc = join(c->rrd_dir, sizeof(c->rrd_dir), c->data_dir, "rrd", e)))
		return rc;

	/* collectors: each its own map, checked by the collector itself */
	if (co && co->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: 'collectors' must be a map", co->file, co->line, co->col);
	struct collector_env env = { .agent_id = c->agent_id, .interval_ns = c->interval_ns,
				     .start_ns = c->clock == CLOCK_FAST_FORWARD ? c->start_ns
						 : sched_next_tick(time_collect_ns(), c->interval_ns),
				     .start_fixed = c->clock == CLOCK_FAST_FORWARD };
	for (size_t i = 0; co && i < co->n_kids; i++) {
		const struct cfg_node *k = co->kids[i];
		const struct collector_ops *ops = collector_find(k->key);
		if (!ops) {
			char known[128] = "";
			size_t used = 0;
			for (int j = 0; collector_all[j]; j++)
				used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", j ? ", " : "",
							 collector_all[j]->name);
			return err_set(e, -EINVAL, "%s:%d:%d: unknown collector '%s' (known: %s)", k->file,
				       k->key_line, k->key_col, k->key, known);
		}
		if (c->n_coll == DAEMON_MAX_COLLECTORS)
			return err_set(e, -ERANGE, "%s:%d:%d: more than %d collectors", k->file, k->key_line,
				       k->key_col, DAEMON_MAX_COLLECTORS);
		const struct cfg_node *sub = k->type == CFG_SCALAR && !k->value[0] ? NULL : k;
		if (sub && sub->type != CFG_MAP)
			return err_set(e, -EINVAL, "%s:%d:%d: collector '%s' must be a map of keys", k->file,
				       k->line, k->col, k->key);
		void *state = NULL;
		if ((rc = ops->configure(sub, &env, &state, e)))
			return rc;
		c->coll[c->n_coll].ops = ops;
		c->coll[c->n_coll].state = state;
		c->n_coll++;
	}
	if (c->n_coll == 0)
		return err_set(e, -EINVAL, "%s: no collectors configured (add a 'collectors:' map, e.g."
			       " 'sim: {}')", c->path);
	if ((rc = parse_http(c, root, e)))
		return rc;
	return parse_alerts(c, root, e);
}

int daemon_config_load(struct daemon_config *c, const char *path, const char *text,
		       struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	str_copy(c->path, path, sizeof(c->path));
	if (gethostname(c->agent_id, sizeof(c->agent_id) - 1) || !c->agent_id[0])
		str_copy(c->agent_id, "localhost", sizeof(c->agent_id));
	str_copy(c->data_dir, "./var", sizeof(c->data_dir));
	c->interval_ns = 10 * NS_PER_SEC;
	c->log_level = LOG_INFO;
	c->max_gap_ns = 300 * NS_PER_SEC;
	c->commit_every_ns = -1; /* not given: the clock's default, after parsing */
	c->rrd_enabled = true;
	c->rrd_step_ns = 60 * NS_PER_SEC;

	rc = text ? cfg_load_string(path, text, strlen(text), &root, e) : cfg_load_file(path, &root, e);
	if (rc)
		return rc;
	if (!root) {
		rc = err_set(e, -EINVAL, "%s: empty config (at least 'collectors:' is needed)", path);
		goto out;
	}
	rc = parse(c, root, e);
out:
	cfg_free(root);
	if (rc)
		daemon_config_release(c);
	return rc;
}

void daemon_config_release(struct daemon_config *c)
{
	for (size_t i = 0; i < c->n_coll; i++)
		if (c->coll[i].ops && c->coll[i].state)
			c->coll[i].ops->free(c->coll[i].state);
	c->n_coll = 0;
}

static int mkdirs(const char *path, struct tally_err *e)
{
	char buf[PATH_MAX];
	str_copy(buf, path, sizeof(buf));
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return err_set(e, -errno, "%s: cannot create directory: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return err_set(e, -errno, "%s: cannot create directory: %s", buf, strerror(errno));
	return 0;
}

struct run {
	struct daemon_config *c;
	struct aggregator *agg;
	int64_t last_commit_mono;
	struct complaint rrd_complaint;
	/* for the live snapshots (NULL live: none) */
	struct live_store *live;
	struct scheduler *sched;
	struct batcher *bt;
	int64_t tick_ns;             /* the last cycle delivered */
	int64_t commit_wall_ns;      /* wall clock of the last successful commit */
	struct complaint live_complaint;
	/* alerts (NULL al: the config has no `alerts:` section) */
	struct alerting *al;
	struct alert_store *astore;
	struct complaint alert_complaint;
	int64_t sla_tick_ns;         /* data time of the last SLA probe, 0: none yet */
	bool sla_fresh;              /* the probe said something not yet evaluated */
	struct complaint sla_complaint;
	/* fast-forward progress on a terminal */
	bool tty;                    /* stderr is a terminal */
	bool progress_shown;
	int64_t first_ns;            /* the run's first tick */
	int64_t progress_mono;       /* when the line was last drawn */
	uint64_t progress_samples;   /* samples ingested then */
	/* the collectors' self-metrics, gathered for each snapshot */
	struct collector_metric *cm;
	size_t n_cm, cap_cm;
};

/* Fast-forward on a terminal: one line, drawn at the first cycle, redrawn
 * every second and at the end (final), says how far the run is (the virtual
 * time, the share of the period, samples per second). Nothing when stderr
 * is not a terminal (logs, tests, systemd). */
static void progress(struct run *r, int64_t tick_ns, bool final)
{
	if (!r->tty || r->c->clock != CLOCK_FAST_FORWARD || r->c->end_ns <= r->first_ns)
		return;
	int64_t now = time_mono_ns();
	if (r->progress_shown && !final && now - r->progress_mono < NS_PER_SEC)
		return;
	if (now <= r->progress_mono)
		now = r->progress_mono + 1;
	struct agg_stats st;
	char when[48];
	agg_get_stats(r->agg, &st);
	double pct = 100.0 * (double)(tick_ns - r->first_ns) / (double)(r->c->end_ns - r->first_ns);
	double rate = (double)(st.samples - r->progress_samples) / ((double)(now - r->progress_mono) / 1e9);
	fprintf(stderr, "\rtallyd: fast-forward at %s, %5.1f %% of the period, %.0f samples/s   ",
		time_format_iso(tick_ns, when, sizeof(when)), pct, rate);
	r->progress_mono = now;
	r->progress_samples = st.samples;
	r->progress_shown = true;
}

static void put_metric(void *ctx, const struct collector_metric *m)
{
	struct run *r = ctx;
	if (r->n_cm == r->cap_cm) {
		size_t cap = r->cap_cm ? r->cap_cm * 2 : 64;
		struct collector_metric *p = realloc(r->cm, cap * sizeof(*p));
		if (!p)
			return; /* out of memory: this snapshot has fewer of them */
		r->cm = p;
		r->cap_cm = cap;
	}
	r->cm[r->n_cm++] = *m;
}

/* Publish what the exporters see; a failure (out of memory) keeps the
 * previous snapshot and is said once per back-off window. */
static void publish(struct run *r)
{
	struct live_collector lc[LIVE_MAX_COLLECTORS];
	size_t n = 0;
	memset(lc, 0, sizeof(lc));
	for (size_t i = 0; r->sched && i < r->sched->n_coll && n < LIVE_MAX_COLLECTORS; i++, n++) {
		str_copy(lc[n].name, r->sched->coll[i].ops->name, sizeof(lc[n].name));
		lc[n].read_s = (double)r->sched->coll[i].read_ns / 1e9;
		lc[n].errors = r->sched->coll[i].errors;
	}
	r->n_cm = 0;
	for (size_t i = 0; r->sched && i < r->sched->n_coll; i++)
		if (r->sched->coll[i].ops->metrics)
			r->sched->coll[i].ops->metrics(r->sched->coll[i].state, put_metric, r);
	struct live_inputs in = {
		.tick_ns = r->tick_ns,
		.stale_after_ns = r->c->http.stale_after_ns,
		.last_commit_ns = r->commit_wall_ns,
		.batcher_dropped = r->bt ? r->bt->dropped : 0,
		.cycles = r->sched ? r->sched->cycles : 0,
		.overruns = r->sched ? r->sched->overruns : 0,
		.clock_steps = r->sched ? r->sched->clock_steps : 0,
		.clock_skipped_ns = r->sched ? r->sched->clock_skipped_ns : 0,
		.clock_ahead_ns = r->sched ? r->sched->clock_ahead_ns : 0,
		.coll = lc,
		.n_coll = n,
		.cmetrics = r->cm,
		.n_cmetrics = r->n_cm,
		.alerts = r->astore,
	};
	struct live_state *st = live_build(r->agg, &in);
	if (!st) {
		complain(&r->live_complaint, LOG_WARN, "http: out of memory building the live state;"
			 " serving the previous one");
		return;
	}
	live_publish(r->live, st);
}

static int deliver(void *ctx, struct batch *b)
{
	struct run *r = ctx;
	struct tally_err e = { 0 };
	int rc = agg_ingest(r->agg, b, &e);
	if (rc == 0 && r->al)
		alerting_note_batch(r->al, b);
	if (rc < 0) {
		log_msg(LOG_ERR, "%s", e.msg);
		return rc;
	}
	return 0;
}

static uint64_t next_seq(void *ctx, const char *agent)
{
	struct run *r = ctx;
	return agg_agent_seq(r->agg, agent) + 1;
}

#define SLA_PROBE_EVERY_NS (60 * NS_PER_SEC)

/* Ask the SLA probe about the month so far, from what was just committed;
 * the engine evaluates SLABurn against it in the next cycle. */
static void probe_sla(struct run *r, bool now)
{
	const struct daemon_config *c = r->c;
	if (!r->al || !c->sla_probe || !c->alerts.sla_burn_ppm ||
	    (!now && r->sla_tick_ns && r->tick_ns - r->sla_tick_ns < SLA_PROBE_EVERY_NS))
		return;
	struct alert_sla_set set;
	struct tally_err e = { 0 };
	r->sla_tick_ns = r->tick_ns;
	if (c->sla_probe(c->sla_probe_ctx, r->tick_ns, c->alerts.sla_burn_ppm, &set, &e)) {
		complain(&r->sla_complaint, LOG_WARN, "alerts: SLABurn: %s; its alerts stay as they are",
			 e.msg);
		return;
	}
	if (r->sla_complaint.window_ns)
		complaint_clear(&r->sla_complaint, "alerts: SLABurn: the SLA is computed again");
	alerting_set_sla(r->al, &set);
	r->sla_fresh = true;
}

/* Evaluate the alert rules at tick_ns (what the SLA probe said included). */
static void eval_alerts(struct run *r, int64_t tick_ns)
{
	struct agg_stats st;
	agg_get_stats(r->agg, &st);
	r->sla_fresh = false;
	if (alerting_eval(r->al, r->agg, tick_ns, r->bt->dropped + st.invalid))
		complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory evaluating the rules;"
			 " alerts may be missing");
}

static int commit(struct run *r, struct tally_err *e)
{
	int rc = agg_commit(r->agg, e);
	if (rc == 1) {
		/* the ledger is committed; only the picture failed */
		complain(&r->rrd_complaint, LOG_WARN, "rrd: %s", e->msg);
		e->msg[0] = '\0';
		rc = 0;
	} else if (rc == 0 && r->rrd_complaint.window_ns) {
		complaint_clear(&r->rrd_complaint, "rrd: writing again");
	}
	r->last_commit_mono = time_mono_ns();
	if (rc == 0) {
		r->commit_wall_ns = time_now_ns();
		if (r->al)
			alerting_committed(r->al);
		if (r->al && alerting_publish(r->al, r->astore))
			complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory publishing the alerts;"
				 " serving the previous ones");
		if (r->live)
			publish(r);   /* after the alerts: /metrics counts the ones just committed */
		probe_sla(r, false);
	}
	return rc;
}

/* When to commit (docs/config.md, ledger.commit_every).
 *
 * Fast-forward: every commit_every of wall time; a killed run resumes
 * after the last committed cycle and the simulated fleet reads the same
 * values again, so nothing is lost.
 *
 * Real time: every commit_every too, but at once whenever what is pending
 * could not be recomputed after a crash (agg_must_commit() in
 * aggregator.h lists what that is, and why the rest may wait: a death
 * between commits loses resolution, never usage). A clean stop commits
 * everything.
 *
 * The live state the exporters serve is published at every commit and, in
 * real time, after every cycle. */
static int cycle_done(void *ctx, int64_t tick_ns, struct tally_err *e)
{
	struct run *r = ctx;
	r->tick_ns = tick_ns;
	progress(r, tick_ns, false);
	if (r->al)
		eval_alerts(r, tick_ns);
	int due = time_mono_ns() - r->last_commit_mono >= r->c->commit_every_ns;
	if (!due && r->c->clock == CLOCK_REAL && agg_must_commit(r->agg))
		due = 1;
	if (due)
		return commit(r, e);
	if (r->live && r->c->clock == CLOCK_REAL)
		publish(r);
	return 0;
}

int daemon_run(struct daemon_config *c, volatile sig_atomic_t *stop, struct daemon_summary *sum,
	       struct tally_err *e)
{
	return daemon_run_live(c, stop, sum, NULL, e);
}

int daemon_run_live(struct daemon_config *c, volatile sig_atomic_t *stop, struct daemon_summary *sum,
		    struct live_store *live, struct tally_err *e)
{
	return daemon_run_alerts(c, stop, sum, live, NULL, e);
}

int daemon_run_alerts(struct daemon_config *c, volatile sig_atomic_t *stop, struct daemon_summary *sum,
		      struct live_store *live, struct alert_store *alerts, struct tally_err *e)
{
	struct run r = { .c = c, .live = live, .astore = alerts };
	struct batcher bt;
	struct scheduler s;
	struct sched_collector sc[DAEMON_MAX_COLLECTORS];
	struct agg_stats st;
	int rc;
	int64_t t0 = time_mono_ns();

	memset(sum, 0, sizeof(*sum));
	log_set_level((enum log_level)c->log_level);
	if ((rc = mkdirs(c->data_dir, e)))
		return rc;
	struct agg_config ac = {
		.ledger_path = c->ledger_path,
		.rrd_dir = c->rrd_enabled ? c->rrd_dir : NULL,
		.rrd_step_s = (int)(c->rrd_step_ns / NS_PER_SEC),
		.rrd_lossless = c->clock == CLOCK_FAST_FORWARD,
		.max_gap_ns = c->max_gap_ns,
	};
	if ((rc = agg_open(&r.agg, &ac, e)))
		return rc;
	if (c->alerts.enabled) {
		if ((rc = alerting_new(&r.al, &c->alerts, c->agent_id, c->interval_ns)) ||
		    (rc = alerting_attach(r.al, r.agg, e))) {
			if (rc == -ENOMEM)
				err_set(e, rc, "alerts: out of memory");
			agg_close(r.agg);
			alerting_free(r.al);
			return rc;
		}
		/* what the ledger held is what Alertmanager is told first */
		alerting_publish(r.al, r.astore);
	}
	int64_t resume = agg_last_cycle_ns(r.agg);
	int64_t first;
	if (c->clock == CLOCK_FAST_FORWARD) {
		first = resume >= c->start_ns ? resume + c->interval_ns : c->start_ns;
		sum->resumed = resume >= c->start_ns;
	} else {
		first = sched_next_tick(time_now_ns(), c->interval_ns);
		sum->resumed = resume > 0;
	}
	if (sum->resumed)
		log_msg(LOG_INFO, "resuming after the last committed cycle");
	for (size_t i = 0; i < c->n_coll; i++) {
		memset(&sc[i], 0, sizeof(sc[i]));
		sc[i].ops = c->coll[i].ops;
		sc[i].state = c->coll[i].state;
		if ((rc = sc[i].ops->init(sc[i].state, resume, e))) {
			err_prefix(e, "collector %s", sc[i].ops->name);
			agg_close(r.agg);
			alerting_free(r.al);
			return rc;
		}
	}
	batcher_init(&bt, c->agent_id, deliver, next_seq, &r);
	memset(&s, 0, sizeof(s));
	s.coll = sc;
	s.n_coll = c->n_coll;
	s.interval_ns = c->interval_ns;
	s.fast_forward = c->clock == CLOCK_FAST_FORWARD;
	s.end_ns = c->end_ns;
	s.batcher = &bt;
	s.cycle_done = cycle_done;
	s.ctx = &r;
	s.stop = stop;
	if (c->clock == CLOCK_REAL)
		s.not_before_ns = resume;   /* data time never goes back across a restart */
	r.last_commit_mono = time_mono_ns();
	r.sched = &s;
	r.bt = &bt;
	r.tty = isatty(2);
	r.first_ns = first;
	r.progress_mono = t0;

	rc = sched_run(&s, first, e);
	if (r.progress_shown) {
		progress(&r, r.tick_ns, true);
		fputc('\n', stderr);
	}
	if (rc == 0)
		rc = commit(&r, e); /* whatever the last cycles left, on every clean stop */
	if (rc == 0 && r.al && r.tick_ns) {
		/* what the SLA says of the last data is evaluated and kept too (in
		 * fast-forward a whole period may fit between two commits) */
		if (!r.sla_fresh)
			probe_sla(&r, true);
		if (r.sla_fresh) {
			eval_alerts(&r, r.tick_ns);
			rc = commit(&r, e);
		}
	}
	agg_get_stats(r.agg, &st);
	sum->cycles = s.cycles;
	sum->overruns = s.overruns;
	sum->batches = st.batches;
	sum->samples = st.samples;
	sum->commits = st.commits;
	sum->duplicate_batches = st.duplicate_batches;
	sum->resets = st.resets;
	sum->baselines = st.baselines;
	sum->from_zero = st.from_zero;
	sum->dropped_old = st.dropped_old;
	sum->invalid = st.invalid;
	sum->rrd_errors = st.rrd_errors;
	sum->first_tick_ns = first;
	sum->wall_s = (double)(time_mono_ns() - t0) / 1e9;
	batcher_release(&bt);
	agg_close(r.agg);
	alerting_free(r.al);
	free(r.cm);
	return rc;
}
