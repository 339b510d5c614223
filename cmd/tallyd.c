/*
 * tallyd: the tally daemon. Wires the config, the outputs (the exporters'
 * listener, the alert store and its Alertmanager sender, the SLA probe)
 * and the pipeline together; all logic lives in daemon/.
 *
 *   tallyd -c FILE        run (SIGHUP reads FILE again: daemon/reload.h)
 *   tallyd -n -c FILE     check the config and exit (0 ok, 2 bad config)
 *   tallyd --help | --version
 *
 * Exit status: 0 stopped cleanly (signal, or the end of a fast-forward
 * period); 1 a runtime error (ledger, disk); 2 a bad command line or config.
 */
#include "alerts.h"
#include "daemoncfg.h"
#include "err.h"
#include "events.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "metercfg.h"
#include "pipeline.h"
#include "sla_probe.h"
#include "state.h"
#include "str.h"
#include "tallytime.h"
#include "version.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_flag = 1;   /* read again at the end of the running cycle */
	else
		stop_flag = 1;
}

/* SIGHUP: the listener's new tokens and plan (pipeline.h, http_reload). */
static int http_reload(void *ctx, const struct httpd_section *h, struct tally_err *e)
{
	return httpd_reload(ctx, h->tokens, h->n_tokens, h->plan[0] ? h->plan : NULL, e);
}

/* A request of events is queued: the aggregator role's writer waits on
 * the ingest queue. */
static void wake_ingest(void *ctx)
{
	ingest_wake(ctx);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tallyd [-n] [-q] -c FILE\n"
		   "The tally daemon: collects VM usage into an exact hourly ledger and RRD files,\n"
		   "serves /metrics and the JSON API, evaluates alerts (tallyd(8), tally.yaml(5)).\n"
		   "  -c, --config FILE  config file (reference: tally.yaml(5), docs/config.md)\n"
		   "  -n, --check        check the config and exit: 0 if good, 2 if not\n"
		   "  -q, --quiet        print no run summary\n"
		   "  -h, --help         this text\n"
		   "  -V, --version      the version and the commit it was built from\n"
		   "Exit: 0 stopped cleanly, 1 runtime error, 2 bad command line or config.\n");
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	int check_only = 0, quiet = 0, opt;
	struct daemon_config cfg;
	struct pipeline_summary sum = { 0 };
	struct tally_err e = { 0 };

	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	while ((opt = getopt_long(argc, argv, "c:nqhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'n': check_only = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("tallyd (tally) %s (%s)\n", tally_version, tally_revision); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!path || optind != argc) {
		fprintf(stderr, "tallyd: %s\n", path ? "unexpected argument" : "-c FILE is required");
		usage(stderr);
		return 2;
	}
	if (daemon_config_load(&cfg, path, NULL, &e)) {
		fprintf(stderr, "tallyd: %s\n", e.msg);
		return 2;
	}
	if (check_only) {
		printf("%s: ok\n", path);
		daemon_config_release(&cfg);
		return 0;
	}
	/* the custom meters the events posted to it name (daemon/events.h):
	 * defined once, before any thread reads the meter table */
	if (cfg.role != ROLE_AGENT && meter_config_load(path, &e)) {
		fprintf(stderr, "tallyd: %s\n", e.msg);
		daemon_config_release(&cfg);
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* no log file to reopen (stderr only): a SIGUSR1 or SIGUSR2 that a
	 * logrotate rule or a habit sends must not stop metering */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);

	/* The outputs, each started only when configured; everything that was
	 * started is stopped on the one way out below. */
	struct live_store live;
	struct alert_store alerts;
	bool live_ok = false, alerts_ok = false;
	struct alerts_sender *sender = NULL;
	struct httpd *http = NULL;
	struct ingest *ingest = NULL;
	struct httpd_ingest ingest_hooks, events_hooks;
	struct events *events = NULL;
	struct pipeline_outputs out = { .reload = &reload_flag };
	struct sla_probe_ctx burn = { .ledger = cfg.agg.ledger_path, .plan = cfg.http.plan };
	int rc = 0;
	bool ran = false;

	if (cfg.alerts.enabled) {
		if ((rc = alert_store_init(&alerts))) {
			err_set(&e, rc, "out of memory");
			goto out;
		}
		alerts_ok = true;
		out.alerts = &alerts;
		if (cfg.alerts.alertmanager[0] && (rc = alerts_start(&sender, &cfg.alerts, &alerts, &e)))
			goto out;
		/* SLABurn: the SLA of the plan the JSON API serves, computed by billing */
		if (cfg.http.plan[0]) {
			out.sla_probe = sla_probe_burn;
			out.sla_probe_ctx = &burn;
		}
	}
	if (cfg.http.enabled) {
		struct httpd_config hc;
		if ((rc = live_store_init(&live))) {
			err_set(&e, rc, "out of memory");
			goto out;
		}
		live_ok = true;
		/* an agent has no ledger: the JSON API's ledger reads say so */
		httpd_section_config(&cfg.http, cfg.role == ROLE_AGENT ? NULL : cfg.agg.ledger_path, out.alerts, &hc);
		if (cfg.role == ROLE_AGGREGATOR) {
			/* POST /api/v1/ingest, answered by the pipeline (daemon/ingest.h) */
			if ((rc = ingest_new(&ingest, &cfg.ingest, &e)))
				goto out;
			ingest_listener(ingest, &ingest_hooks);
			hc.ingest = &ingest_hooks;
			out.ingest = ingest;
		}
		if (cfg.role != ROLE_AGENT) {
			/* POST /api/v1/events, booked by the pipeline (daemon/events.h) */
			if ((rc = events_new(&events, &cfg.events, &e)))
				goto out;
			events_listener(events, &events_hooks);
			if (ingest)   /* the aggregator role's writer waits on the ingest queue */
				events_set_wake(events, wake_ingest, ingest);
			hc.events = &events_hooks;
			out.events = events;
		}
		if ((rc = httpd_start(&http, &hc, &live, &e))) {
			if (!e.msg[0])
				err_set(&e, rc, "cannot start the HTTP listener");
			goto out;
		}
		out.live = &live;
		out.http_reload = http_reload;
		out.http_reload_ctx = http;
		log_msg(LOG_INFO, "http: listening on %s port %u%s", cfg.http.address,
			(unsigned)httpd_port(http), cfg.http.tls_cert[0] ? " (TLS)" : "");
	}

	rc = pipeline_run(&cfg, &out, &stop_flag, &sum, &e);
	ran = true;
	if (http && rc == 0 && cfg.http.serve_after_end && !stop_flag) {
		log_msg(LOG_INFO, "http: the period is done; serving until SIGTERM");
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		while (!stop_flag)
			nanosleep(&ts, NULL);
	}
out:
	if (rc)
		log_msg(LOG_ERR, "%s", e.msg);
	if (ingest)
		ingest_close(ingest);   /* no request left waiting: the listener may stop */
	if (events)
		events_close(events);
	httpd_stop(http);
	if (events) {
		struct events_stats es;
		events_get_stats(events, &es);
		if (es.requests)
			log_msg(LOG_INFO, "events: %llu requests: %llu answered 200 (%llu events booked, %llu recorded"
				" before and counted once), %llu malformed (400), %llu forbidden (403), %llu conflicts"
				" (409), %llu refused events (422), %llu unavailable (503)",
				(unsigned long long)es.requests, (unsigned long long)es.by_status[0],
				(unsigned long long)es.booked, (unsigned long long)es.duplicates,
				(unsigned long long)es.by_status[1], (unsigned long long)es.by_status[2],
				(unsigned long long)es.by_status[3], (unsigned long long)es.by_status[4],
				(unsigned long long)es.by_status[5]);
		events_free(events);
	}
	if (ingest) {
		struct ingest_stats is;
		ingest_get_stats(ingest, &is);
		log_msg(LOG_INFO, "ingest: %llu requests: %llu answered 200 (%llu batches taken, %llu sent"
			" again and acknowledged as committed, %llu samples), %llu refused as malformed, %llu"
			" forbidden, %llu conflicts (409), %llu unknown meters (422), %llu unavailable (503)",
			(unsigned long long)is.requests, (unsigned long long)is.by_status[0],
			(unsigned long long)is.frames_applied, (unsigned long long)is.frames_replayed,
			(unsigned long long)is.samples, (unsigned long long)is.by_status[1],
			(unsigned long long)is.by_status[2], (unsigned long long)is.by_status[3],
			(unsigned long long)is.by_status[4], (unsigned long long)is.by_status[5]);
		ingest_free(ingest);
	}
	if (live_ok)
		live_store_release(&live);
	alerts_stop(sender);
	if (alerts_ok)
		alert_store_release(&alerts);
	if (rc == -ENOSPC)
		log_msg(LOG_ERR, "ingest stopped: free some space and start tallyd again; it continues"
			" after the last commit, and nothing committed was lost");
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	if (ran && !quiet && cfg.role == ROLE_AGGREGATOR) {
		fprintf(stderr, "tallyd: aggregator: %llu batches, %llu samples (%.0f/s), %llu commits, %llu"
			" resets, %llu dropped old, %llu invalid, %.2f s, peak RSS %.1f MiB\n",
			(unsigned long long)sum.batches, (unsigned long long)sum.samples,
			sum.wall_s > 0 ? (double)sum.samples / sum.wall_s : 0.0, (unsigned long long)sum.commits,
			(unsigned long long)sum.resets, (unsigned long long)sum.dropped_old,
			(unsigned long long)sum.invalid, sum.wall_s, (double)ru.ru_maxrss / 1024.0);
	} else if (ran && !quiet && sum.agent) {
		const struct agent_summary *a = &sum.spooled;
		fprintf(stderr, "tallyd: agent, %llu cycles, %llu batches (%llu samples) spooled in %llu spools (%llu"
			" collected again and skipped), %llu acknowledged, %llu waiting, %llu readings thinned, %llu"
			" dropped, %llu fsyncs, %.2f s, CPU %.2f s, peak RSS %.1f MiB\n",
			(unsigned long long)sum.cycles, (unsigned long long)a->batches_spooled,
			(unsigned long long)a->samples_spooled, (unsigned long long)a->spools,
			(unsigned long long)a->batches_skipped, (unsigned long long)a->batches_acked,
			(unsigned long long)a->batches_waiting, (unsigned long long)a->readings_thinned,
			(unsigned long long)a->readings_dropped, (unsigned long long)a->fsyncs, sum.wall_s,
			(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec +
										 ru.ru_stime.tv_usec) / 1e6,
			(double)ru.ru_maxrss / 1024.0);
	} else if (ran && !quiet) {
		char t[48];
		fprintf(stderr, "tallyd: %s%llu cycles from %s, %llu batches, %llu samples (%.0f/s), %llu commits,"
			" %llu resets, %llu duplicate batches, %llu dropped old, %llu invalid, %.2f s,"
			" peak RSS %.1f MiB\n",
			sum.resumed ? "resumed; " : "", (unsigned long long)sum.cycles,
			time_format_iso(sum.first_tick_ns, t, sizeof(t)), (unsigned long long)sum.batches,
			(unsigned long long)sum.samples, sum.wall_s > 0 ? (double)sum.samples / sum.wall_s : 0.0,
			(unsigned long long)sum.commits, (unsigned long long)sum.resets,
			(unsigned long long)sum.duplicate_batches, (unsigned long long)sum.dropped_old,
			(unsigned long long)sum.invalid, sum.wall_s, (double)ru.ru_maxrss / 1024.0);
	}
	daemon_config_release(&cfg);
	return rc ? 1 : 0;
}
