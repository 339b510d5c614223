/*
 * pipeline.c: tallyd's pipeline (pipeline.h): collectors -> batcher ->
 * delivery -> aggregator -> ledger and RRD, with the alert engine, the
 * live snapshots and the SLA probe driven from the cycle's end.
 */
#include "pipeline.h"
#include "events.h"
#include "ingest.h"
#include "agent.h"
#include "reload.h"
#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "err.h"
#include "ledger.h"
#include "log.h"
#include "scheduler.h"
#include "state.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	const struct pipeline_outputs *out;
	struct aggregator *agg;      /* NULL in the agent role */
	struct agent *agent;         /* the agent role's spools and senders, else NULL */
	bool agent_published;        /* the agent published a snapshot already */
	int64_t last_commit_mono;
	struct complaint rrd_complaint;
	struct scheduler *sched;
	struct batcher *bt;
	int64_t tick_ns;             /* the last cycle delivered */
	int64_t commit_wall_ns;      /* wall clock of the last successful commit */
	struct complaint live_complaint;
	/* alerts (NULL al: the config has no `alerts:` section) */
	struct alerting *al;
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
	/* real time, the ledger cannot be written: commits are retried */
	int64_t fail_tick_ns;        /* data time of the first failed commit, 0: none failing */
	int64_t fail_mono_ns;        /* monotonic time of it */
	int64_t retry_mono_ns;       /* the next attempt, not before */
	int64_t backoff_ns;          /* the wait after the last failed attempt */
	struct complaint fail_complaint;
	int64_t publish_mono_ns;     /* the last live snapshot (the aggregator role: at most 1/s) */
};

/* Retrying a failed commit (real time): after 1 s, then twice as long each
 * time up to 60 s, at the cycle boundaries. */
#define RETRY_FIRST_NS (1 * NS_PER_SEC)
#define RETRY_MAX_NS (60 * NS_PER_SEC)

/* Fast-forward on a terminal: one line, drawn at the first cycle, redrawn
 * every second and at the end (final), says how far the run is (the virtual
 * time, the share of the period, samples per second). Nothing when stderr
 * is not a terminal (logs, tests, systemd). */
static void progress(struct run *r, int64_t tick_ns, bool final)
{
	if (!r->tty || !r->agg || r->c->clock != CLOCK_FAST_FORWARD || r->c->end_ns <= r->first_ns)
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

/* The aggregator role's own series: the ingest's counts, and per agent
 * (of a token) its last contact and last committed seq, so a dashboard
 * sees an agent fall behind before AgentSilent fires. */
static void aggregator_metrics(struct run *r)
{
	const struct httpd_section *h = &r->c->http;
	ingest_metrics(r->out->ingest, put_metric, r);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < h->n_tokens; i++) {
			struct agg_agent ag;
			const char *id = h->tokens[i].agent;
			if (!id[0] || strpbrk(id, ",=\"") || !agg_agent_find(r->agg, id, &ag))
				continue;
			struct collector_metric m = {
				.name = pass ? "tally_agent_last_seq" : "tally_agent_last_contact_timestamp_seconds",
				.help = pass ? "The agent's last batch committed (its seq)."
					: "When the aggregator last took or acknowledged a request of the agent.",
				.value = pass ? (double)ag.committed_seq : (double)ag.contact_ns / 1e9,
			};
			snprintf(m.labels, sizeof(m.labels), "agent=%s", id);
			put_metric(r, &m);
		}
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
	if (r->out->ingest)
		aggregator_metrics(r);
	if (r->out->events)
		events_metrics(r->out->events, put_metric, r);
	if (r->agent)
		agent_metrics(r->agent, put_metric, r);
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
		.alerts = r->out->alerts,
	};
	struct live_state *st = live_build(r->agg, &in);
	if (!st) {
		complain(&r->live_complaint, LOG_WARN, "http: out of memory building the live state;"
			 " serving the previous one");
		return;
	}
	live_publish(r->out->live, st);
}

/* ---- the delivery: where the batcher's batches go ----
 *
 * One per role. All-in-one (the only role built today): the aggregator in
 * this process ingests each batch at once, and the next sequence number
 * of an agent is the aggregator's last one plus one. The agent role
 * (network transport) will deliver into its spool, which numbers batches
 * itself; the aggregator role ingests what agents send through the same
 * agg_ingest. A delivery returns 0 or a negative errno: the batcher keeps
 * a batch it could not deliver and says so (common/batch.h). */
struct delivery {
	int (*deliver)(void *ctx, struct batch *b);
	uint64_t (*next_seq)(void *ctx, const char *agent);
};

static int local_deliver(void *ctx, struct batch *b)
{
	struct run *r = ctx;
	struct tally_err e = { 0 };
	int rc = ingest_batch(r->agg, r->al, b, &e);   /* the function the aggregator role's ingest calls */
	if (rc < 0) {
		log_msg(LOG_ERR, "%s", e.msg);
		return rc;
	}
	return 0;
}

static uint64_t local_next_seq(void *ctx, const char *agent)
{
	struct run *r = ctx;
	return agg_agent_seq(r->agg, agent) + 1;
}

static const struct delivery local_delivery = { local_deliver, local_next_seq };
static const struct delivery agent_delivery = { agent_deliver, agent_next_seq };

#define SLA_PROBE_EVERY_NS (60 * NS_PER_SEC)

/* Ask the SLA probe about the month so far, from what was just committed;
 * the engine evaluates SLABurn against it in the next cycle. */
static void probe_sla(struct run *r, bool now)
{
	const struct daemon_config *c = r->c;
	if (!r->al || !r->out->sla_probe || !c->alerts.sla_burn_ppm ||
	    (!now && r->sla_tick_ns && r->tick_ns - r->sla_tick_ns < SLA_PROBE_EVERY_NS))
		return;
	struct alert_sla_set set;
	struct tally_err e = { 0 };
	r->sla_tick_ns = r->tick_ns;
	if (r->out->sla_probe(r->out->sla_probe_ctx, r->tick_ns, c->alerts.sla_burn_ppm, &set, &e)) {
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
	if (alerting_eval(r->al, r->agg, tick_ns, (r->bt ? r->bt->dropped : 0) + st.invalid))
		complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory evaluating the rules;"
			 " alerts may be missing");
}

static int commit(struct run *r, struct tally_err *e)
{
	uint64_t pending = agg_pending(r->agg);
	struct agg_stats before, after;
	agg_get_stats(r->agg, &before);
	int rc = agg_commit(r->agg, e);
	agg_get_stats(r->agg, &after);
	if (after.resyncs > before.resyncs)
		log_msg(LOG_INFO, "%s: another aggregator had committed batches of an agent first: what this one"
			" held of it uncommitted was dropped and taken again from the ledger (the agent sends it"
			" again)", r->c->agg.ledger_path);
	if (rc == 1) {
		/* the ledger is committed; only the picture failed */
		complain(&r->rrd_complaint, LOG_WARN, "rrd: %s", e->msg);
		e->msg[0] = '\0';
		rc = 0;
	} else if (rc == 0 && r->rrd_complaint.window_ns) {
		complaint_clear(&r->rrd_complaint, "rrd: writing again");
	}
	r->last_commit_mono = time_mono_ns();
	if (rc == 0 && r->fail_tick_ns) {
		struct agg_stats st;
		agg_get_stats(r->agg, &st);
		r->fail_complaint.window_ns = 0;   /* said below, with the figures */
		log_msg(LOG_WARN, "%s: written again after %.0f s of failed commits (%llu in all): the %llu"
			" readings kept in memory meanwhile are committed", r->c->agg.ledger_path,
			(double)(r->last_commit_mono - r->fail_mono_ns) / 1e9,
			(unsigned long long)st.commit_failures, (unsigned long long)pending);
		r->fail_tick_ns = 0;
		if (r->al)
			alerting_set_ledger(r->al, 0, 0, NULL);
	}
	if (rc == 0) {
		r->commit_wall_ns = time_now_ns();
		if (r->al)
			alerting_committed(r->al);
		if (r->al && alerting_publish(r->al, r->out->alerts))
			complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory publishing the alerts;"
				 " serving the previous ones");
		/* after the alerts: /metrics counts the ones just committed; an
		 * aggregator commits for every round of requests, and publishes
		 * at most once a second */
		int64_t now = time_mono_ns();
		if (r->out->live && (r->c->role != ROLE_AGGREGATOR || now - r->publish_mono_ns >= NS_PER_SEC)) {
			publish(r);
			r->publish_mono_ns = now;
		}
		probe_sla(r, false);
	}
	return rc;
}

/* A commit failed in real time (a full disk, an I/O error): metering goes
 * on, everything ingested stays in memory (aggregator.h), and the commit is
 * tried again at the first cycle after the back-off; LedgerWriteFailing
 * fires, /metrics says tally_ledger_write_failing 1. Only a signal stops
 * tallyd (docs/ledger.md). */
static void ledger_failing(struct run *r, struct tally_err *e)
{
	struct agg_stats st;
	int64_t now = time_mono_ns();
	agg_get_stats(r->agg, &st);
	if (!r->fail_tick_ns) {
		r->fail_tick_ns = r->tick_ns;
		r->fail_mono_ns = now;
		r->backoff_ns = RETRY_FIRST_NS;
		complain(&r->fail_complaint, LOG_ERR, "%s; metering goes on: what tallyd reads is kept in"
			 " memory and committed once the ledger can be written again (retried after %d s, then"
			 " up to every %d s)", e->msg, (int)(RETRY_FIRST_NS / NS_PER_SEC),
			 (int)(RETRY_MAX_NS / NS_PER_SEC));
	} else {
		r->backoff_ns = r->backoff_ns * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : r->backoff_ns * 2;
		complain(&r->fail_complaint, LOG_ERR, "%s (for %.0f s now, %llu readings in memory)", e->msg,
			 (double)(now - r->fail_mono_ns) / 1e9, (unsigned long long)agg_pending(r->agg));
	}
	r->retry_mono_ns = now + r->backoff_ns;
	if (r->al)
		alerting_set_ledger(r->al, r->fail_tick_ns, st.commit_failures_in_row, e->msg);
	e->msg[0] = '\0';
	e->code = 0;
}

/* SIGHUP: read the config again; apply what may change (reload.h). An
 * invalid file, or a failure to apply, is one log line and the running
 * config stays whole. */
static void reload(struct run *r)
{
	struct daemon_config *c = r->c;
	struct daemon_config *n = malloc(sizeof(*n));
	struct alerting_config *before = malloc(sizeof(*before));
	struct tally_err e = { 0 };
	char restart[512];

	if (!n || !before) {
		log_msg(LOG_ERR, "reload: out of memory; the running config stays");
		goto out;
	}
	if (daemon_config_load(n, c->path, NULL, &e)) {
		log_msg(LOG_ERR, "reload: %s; the running config stays", e.msg);
		free(n);
		n = NULL;
		goto out;
	}
	reload_restart_keys(c, n, restart, sizeof(restart));
	if (r->out->http_reload && c->http.enabled && n->http.enabled &&
	    r->out->http_reload(r->out->http_reload_ctx, &n->http, &e)) {
		log_msg(LOG_ERR, "reload: %s; the running config stays", e.msg);
		goto out;
	}
	*before = c->alerts;
	reload_take(c, n);
	if (r->al && alerting_reconfigure(r->al, &c->alerts, r->tick_ns)) {
		c->alerts = *before;
		log_msg(LOG_ERR, "reload: out of memory taking the alert rules; they stay as they were");
	}
	/* the collectors, when the same ones run: each takes what it can */
	bool same = c->n_coll == n->n_coll;
	for (size_t i = 0; same && i < c->n_coll; i++)
		same = c->coll[i].ops == n->coll[i].ops;
	for (size_t i = 0; same && i < c->n_coll; i++) {
		const struct collector_ops *ops = c->coll[i].ops;
		if (ops->reload && ops->reload(c->coll[i].state, n->coll[i].state, &e)) {
			log_msg(LOG_ERR, "reload: collector %s: %s; it keeps its running config", ops->name, e.msg);
			e.msg[0] = '\0';
		}
	}
	if (restart[0])
		log_msg(LOG_WARN, "reload: %s changed in %s: not applied, that needs a restart", restart, c->path);
	log_msg(LOG_INFO, "reload: %s read again: log level, alert rules, tokens, plan and the collectors'"
		" mapping files and targets are the new ones", c->path);
	log_set_level((enum log_level)c->log_level);   /* last: the lines above at the level they came under */
out:
	if (n)
		daemon_config_release(n);
	free(n);
	free(before);
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
/* The agent role's cycle end: nothing to commit (the spool synced every
 * batch); SpoolFilling, and the exporters' snapshot every cycle in real
 * time, at the first cycle and once a second of wall time in fast-forward,
 * and when asked (now). */
static int agent_cycle_done(struct run *r, bool now)
{
	if (agent_eval_alerts(r->agent, r->tick_ns, &r->c->alerts, r->out->alerts))
		complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory publishing SpoolFilling");
	int64_t t = time_mono_ns();
	if (r->out->live && (now || r->c->clock == CLOCK_REAL || !r->agent_published ||
			     t - r->last_commit_mono >= NS_PER_SEC)) {
		publish(r);
		r->last_commit_mono = t;
		r->agent_published = true;
	}
	return 0;
}

/* Book the usage events sources posted (events.h) on the aggregator's
 * ledger, in its thread and between its commits; while its commits fail
 * and the retry is not due, they are answered 503 at once, as ingest is. */
static void run_events(struct run *r, struct events_job *list)
{
	int64_t now = time_mono_ns();
	if (!list)
		return;
	if (r->fail_tick_ns && now < r->retry_mono_ns) {
		events_refuse(r->out->events, list, 503, (r->retry_mono_ns - now + NS_PER_SEC - 1) / NS_PER_SEC,
			      "the ledger cannot be written now (a full disk, an I/O error, its server away): try again"
			      " later");
		return;
	}
	int64_t t = time_now_ns();
	if (events_run(r->out->events, list, r->agg, t - t % NS_PER_SEC))
		log_msg(LOG_ERR, "events: a failed transaction could not be rolled back; the next commit stops tallyd,"
			" which reloads the ledger when started again");
}

/* The scheduler's wait for the next cycle (all-in-one, real time): the
 * events posted meanwhile are booked as they come. */
static void wait_events(void *ctx, int64_t collect_ns)
{
	struct run *r = ctx;
	run_events(r, events_take(r->out->events, collect_ns - time_collect_anchor_ns()));
}

static int cycle_done(void *ctx, int64_t tick_ns, struct tally_err *e)
{
	struct run *r = ctx;
	r->tick_ns = tick_ns;
	if (r->out->reload && *r->out->reload) {
		*r->out->reload = 0;
		reload(r);
	}
	if (r->agent)
		return agent_cycle_done(r, false);
	if (r->out->events)
		run_events(r, events_take(r->out->events, 0));   /* fast-forward: the scheduler never waits */
	progress(r, tick_ns, false);
	if (r->al)
		eval_alerts(r, tick_ns);
	int due = time_mono_ns() - r->last_commit_mono >= r->c->agg.commit_every_ns;
	if (!due && r->c->clock == CLOCK_REAL && agg_must_commit(r->agg))
		due = 1;
	if (r->fail_tick_ns)
		due = time_mono_ns() >= r->retry_mono_ns;
	if (due) {
		int rc = commit(r, e);
		if (rc == 0)
			return 0;
		/* fast-forward stops (exit 1) and resumes from the last commit
		 * when started again; so does an aggregator that is broken */
		if (r->c->clock != CLOCK_REAL || agg_broken(r->agg))
			return rc;
		ledger_failing(r, e);
	}
	if (r->out->live && r->c->clock == CLOCK_REAL)
		publish(r);
	/* LedgerWriteFailing must be sent although nothing is committed */
	if (r->fail_tick_ns && r->al && alerting_publish(r->al, r->out->alerts))
		complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory publishing the alerts;"
			 " serving the previous ones");
	return 0;
}

/* ---- the aggregator role: what agents POST ----
 *
 * No scheduler: the loop takes every request the listener queued
 * (ingest.h), applies them, commits them in one transaction and answers
 * them (200 only once committed: rule 7). A failed commit (a full disk)
 * answers 503 with Retry-After; until the retry is due, requests are
 * answered 503 at once without being applied, so memory does not grow
 * with what cannot be written; what was applied before the failure stays
 * in memory and is committed by the first commit that works (its agents
 * are acknowledged when they send it again). Every interval (wall clock)
 * the alerts are evaluated at the newest data time committed. */
/* AgentSilent's input: the agents of the tokens (the fleet this
 * aggregator expects) and their last contact. */
static void note_agents(struct run *r, int64_t start_ns)
{
	const struct httpd_section *h = &r->c->http;
	struct alert_agent *v = calloc(h->n_tokens ? h->n_tokens : 1, sizeof(*v));
	size_t n = 0;
	if (!v) {
		complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory listing the agents");
		return;
	}
	for (size_t i = 0; i < h->n_tokens; i++) {
		struct agg_agent ag;
		if (!h->tokens[i].agent[0])
			continue;
		str_copy(v[n].id, h->tokens[i].agent, sizeof(v[n].id));
		v[n].contact_ns = agg_agent_find(r->agg, v[n].id, &ag) ? ag.contact_ns : 0;
		n++;
	}
	if (alerting_set_agents(r->al, v, n, start_ns, time_now_ns()))
		complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory listing the agents");
	free(v);
}

static int aggregate(struct run *r, volatile sig_atomic_t *stop, struct tally_err *e)
{
	struct ingest *ig = r->out->ingest;
	int64_t next_eval = time_mono_ns() + r->c->interval_ns;
	int64_t started_ns = time_now_ns();
	int rc = 0;

	while (!*stop) {
		int64_t until = next_eval;
		if (r->fail_tick_ns && r->retry_mono_ns < until)
			until = r->retry_mono_ns;
		struct ingest_job *list = ingest_take(ig, until);
		if (r->out->reload && *r->out->reload) {
			*r->out->reload = 0;
			reload(r);
		}
		int64_t now = time_mono_ns();
		if (list && r->fail_tick_ns && now < r->retry_mono_ns) {
			ingest_refuse(ig, list, 503, (r->retry_mono_ns - now + NS_PER_SEC - 1) / NS_PER_SEC,
				      "the ledger cannot be written now (a full disk, an I/O error): try again later");
			list = NULL;
		}
		bool need = false;
		for (struct ingest_job *j = list; j && rc == 0; j = ingest_next(j)) {
			int k = ingest_apply(ig, r->agg, r->al, j, time_now_ns(), e);
			if (k < 0)
				rc = k;
			need |= k > 0;
		}
		if (rc) {
			/* out of memory: the aggregator is broken; stop (started
			 * again, it reloads the committed state and the agents send
			 * again what was not acknowledged) */
			ingest_answer(ig, r->agg, list, rc, 5, "the aggregator failed");
			ingest_close(ig);
			return rc;
		}
		int crc = 0;
		int64_t retry_s = 1;
		if (need || (r->fail_tick_ns && now >= r->retry_mono_ns && agg_pending(r->agg))) {
			crc = commit(r, e);
			if (crc && agg_broken(r->agg)) {
				ingest_answer(ig, r->agg, list, crc, 5, "the aggregator failed");
				ingest_close(ig);
				return crc;
			}
			if (crc) {
				char why[600];
				snprintf(why, sizeof(why), "the ledger cannot be written now: %s", e->msg);
				ledger_failing(r, e);
				retry_s = (r->retry_mono_ns - time_mono_ns() + NS_PER_SEC - 1) / NS_PER_SEC;
				ingest_answer(ig, r->agg, list, crc, retry_s, why);
				list = NULL;
			}
		}
		ingest_answer(ig, r->agg, list, crc, retry_s, NULL);
		if (r->out->events)
			run_events(r, events_take(r->out->events, 0));
		now = time_mono_ns();
		if (now >= next_eval) {
			next_eval = now + r->c->interval_ns;
			int64_t t = agg_last_cycle_ns(r->agg);
			if (t > r->tick_ns)
				r->tick_ns = t;
			if (r->al)
				note_agents(r, started_ns);
			if (r->al)
				eval_alerts(r, r->tick_ns ? r->tick_ns : time_now_ns());
			/* what the rules and built-ins decided is committed (and
			 * then sent) even when no agent sends anything: that is
			 * when AgentSilent fires */
			if (r->al && !r->fail_tick_ns && commit(r, e)) {
				if (agg_broken(r->agg)) {
					ingest_close(ig);
					return -EIO;
				}
				ledger_failing(r, e);
			}
			if (r->out->live) {
				publish(r);
				r->publish_mono_ns = now;
			}
			if (r->fail_tick_ns && r->al && alerting_publish(r->al, r->out->alerts))
				complain(&r->alert_complaint, LOG_WARN, "alerts: out of memory publishing the alerts;"
					 " serving the previous ones");
		}
	}
	ingest_close(ig);
	return 0;
}

/* The end of a fast-forward period, in the agent role: wait until the
 * aggregator has acknowledged every batch (or a signal), so the run's
 * end means its data arrived. */
static void agent_drain(struct run *r, volatile sig_atomic_t *stop)
{
	struct agent_summary as;
	agent_get_summary(r->agent, &as);
	if (!agent_drained(r->agent))
		log_msg(LOG_INFO, "agent: the period is collected; waiting until the aggregator has acknowledged"
			" the %llu batches still in the spools", (unsigned long long)as.batches_waiting);
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	agent_cycle_done(r, true);
	while (!*stop && !agent_drained(r->agent)) {
		nanosleep(&ts, NULL);
		agent_flush(r->agent);
		agent_cycle_done(r, false);
	}
	agent_cycle_done(r, true);
	if (agent_drained(r->agent))
		log_msg(LOG_INFO, "agent: every batch is acknowledged");
}

int pipeline_run(struct daemon_config *c, const struct pipeline_outputs *out, volatile sig_atomic_t *stop,
		 struct pipeline_summary *sum, struct tally_err *e)
{
	static const struct pipeline_outputs none;
	struct run r = { .c = c, .out = out ? out : &none };
	struct batcher bt;
	struct scheduler s;
	struct sched_collector sc[DAEMON_MAX_COLLECTORS];
	struct agg_stats st;
	int rc;
	int64_t t0 = time_mono_ns();

	memset(sum, 0, sizeof(*sum));
	memset(&bt, 0, sizeof(bt));
	log_set_level((enum log_level)c->log_level);
	if ((rc = mkdirs(c->data_dir, e)))
		return rc;
	if (c->role == ROLE_AGENT) {
		/* the agent: spools and senders, no ledger (agent.h) */
		if ((rc = agent_open(&r.agent, &c->agent, c->interval_ns, e)))
			goto out;
		goto opened;
	}
	struct agg_config ac;
	agg_settings_config(&c->agg, c->clock == CLOCK_FAST_FORWARD, &ac);
	if ((rc = agg_open(&r.agg, &ac, e)))
		return rc;
	bool full;
	int64_t check_ns;
	ledger_check_info(agg_ledger(r.agg), &full, &check_ns);
	if (check_ns)
		log_msg(LOG_INFO, "%s: %s passed in %.1f s", c->agg.ledger_path, full ? "integrity_check"
			: "quick_check (the file is as its last clean stop left it)", (double)check_ns / 1e9);
	if (c->alerts.enabled) {
		if ((rc = alerting_new(&r.al, &c->alerts, c->agent_id, c->interval_ns)) ||
		    (rc = alerting_attach(r.al, r.agg, e))) {
			if (rc == -ENOMEM)
				err_set(e, rc, "alerts: out of memory");
			goto out;
		}
		/* what the ledger held is what Alertmanager is told first */
		alerting_publish(r.al, r.out->alerts);
	}
	if (c->role == ROLE_AGGREGATOR) {
		if (!r.out->ingest) {
			rc = err_set(e, -EINVAL, "the aggregator role needs the ingest queue");
			goto out;
		}
		r.last_commit_mono = time_mono_ns();
		r.tick_ns = agg_last_cycle_ns(r.agg);
		if (r.out->live)
			publish(&r);
		rc = aggregate(&r, stop, e);
		if (rc == 0 && agg_pending(r.agg))
			rc = commit(&r, e);   /* what a failed commit left, if the disk has room now */
		sum->first_tick_ns = r.tick_ns;
		goto summary;
	}
opened:;
	/* an agent resumes after what every spool has (fast-forward), and
	 * never goes back behind what any has (real time) */
	int64_t resume = r.agent ? agent_resume_ns(r.agent, c->clock == CLOCK_REAL) : agg_last_cycle_ns(r.agg);
	/* a spool made for a new agent id in the period's first cycle says it
	 * covers up to the cycle before the start: killed before that cycle's
	 * batch was spooled, the agent has collected nothing of this period
	 * yet, and its collectors start afresh (a resume point would tell the
	 * simulated fleet, for one, that its first cycle's events were sent) */
	if (r.agent && c->clock == CLOCK_FAST_FORWARD && resume < c->start_ns)
		resume = 0;
	int64_t first;
	if (c->clock == CLOCK_FAST_FORWARD) {
		first = resume >= c->start_ns ? resume + c->interval_ns : c->start_ns;
		sum->resumed = resume >= c->start_ns;
	} else {
		first = sched_next_tick(time_now_ns(), c->interval_ns);
		sum->resumed = resume > 0;
	}
	if (sum->resumed)
		log_msg(LOG_INFO, "resuming after the last %s cycle", r.agent ? "spooled" : "committed");
	for (size_t i = 0; i < c->n_coll; i++) {
		memset(&sc[i], 0, sizeof(sc[i]));
		sc[i].ops = c->coll[i].ops;
		sc[i].state = c->coll[i].state;
		if ((rc = sc[i].ops->init(sc[i].state, resume, e))) {
			err_prefix(e, "collector %s", sc[i].ops->name);
			goto out;
		}
	}
	const struct delivery *dl = r.agent ? &agent_delivery : &local_delivery;
	batcher_init(&bt, c->agent_id, dl->deliver, dl->next_seq, r.agent ? (void *)r.agent : (void *)&r);
	memset(&s, 0, sizeof(s));
	s.coll = sc;
	s.n_coll = c->n_coll;
	s.interval_ns = c->interval_ns;
	s.fast_forward = c->clock == CLOCK_FAST_FORWARD;
	s.end_ns = c->end_ns;
	s.batcher = &bt;
	s.cycle_done = cycle_done;
	s.ctx = &r;
	if (r.out->events && c->clock == CLOCK_REAL)
		s.wait = wait_events;
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
	if (r.agent) {
		if (rc == 0 && c->clock == CLOCK_FAST_FORWARD && !*stop)
			agent_drain(&r, stop);
		sum->cycles = s.cycles;
		sum->overruns = s.overruns;
		sum->agent = true;
		agent_get_summary(r.agent, &sum->spooled);
		sum->batches = sum->spooled.batches_spooled;
		sum->first_tick_ns = first;
		sum->wall_s = (double)(time_mono_ns() - t0) / 1e9;
		goto out;
	}
	if (rc == 0)
		rc = commit(&r, e); /* whatever the last cycles left, on every clean stop */
	if (rc < 0 && r.fail_tick_ns) {
		char t[48];
		log_msg(LOG_ERR, "stopping while the ledger still cannot be written: the readings since %s are"
			" lost with this process; the next start counts their counters' usage again from the last"
			" commit, but their resolution, events and metadata changes are gone",
			time_format_iso(r.fail_tick_ns, t, sizeof(t)));
	}
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
	sum->cycles = s.cycles;
	sum->overruns = s.overruns;
	sum->first_tick_ns = first;
summary:
	agg_get_stats(r.agg, &st);
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
	sum->wall_s = (double)(time_mono_ns() - t0) / 1e9;
out:
	if (r.out->events) {
		/* no aggregator from here: requests are answered 503 */
		events_close(r.out->events);
		events_detach(r.out->events);
	}
	batcher_release(&bt);
	agent_close(r.agent);
	agg_close(r.agg);
	alerting_free(r.al);
	free(r.cm);
	return rc;
}
