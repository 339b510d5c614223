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
#include "httpd.h"
#include "log.h"
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
		httpd_section_config(&cfg.http, cfg.agg.ledger_path, out.alerts, &hc);
		if ((rc = httpd_start(&http, &hc, &live, &e))) {
			if (!e.msg[0])
				err_set(&e, rc, "cannot start the HTTP listener");
			goto out;
		}
		out.live = &live;
		out.http_reload = http_reload;
		out.http_reload_ctx = http;
		log_msg(LOG_INFO, "http: listening on %s port %u", cfg.http.address,
			(unsigned)httpd_port(http));
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
	httpd_stop(http);
	if (live_ok)
		live_store_release(&live);
	alerts_stop(sender);
	if (alerts_ok)
		alert_store_release(&alerts);
	if (rc == -ENOSPC)
		log_msg(LOG_ERR, "ingest stopped: free some space and start tallyd again; it continues"
			" after the last commit, and nothing committed was lost");
	if (ran && !quiet) {
		char t[48];
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
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
