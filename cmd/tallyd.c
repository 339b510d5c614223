/*
 * tallyd: the tally daemon. Wires the config, the collectors and the
 * aggregator together; all logic lives in aggregator/daemon.c.
 *
 *   tallyd -c FILE        run
 *   tallyd -n -c FILE     check the config and exit (0 ok, 2 bad config)
 *   tallyd --help | --version
 *
 * Exit status: 0 stopped cleanly (signal, or the end of a fast-forward
 * period); 1 a runtime error (ledger, disk); 2 a bad command line or config.
 */
#include "alerts.h"
#include "daemon.h"
#include "err.h"
#include "httpd.h"
#include "log.h"
#include "sla_burn.h"
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

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
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
	struct daemon_summary sum;
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

	struct live_store live;
	struct alert_store alerts;
	struct alerts_sender *sender = NULL;
	bool alerting = cfg.alerts.enabled;
	if (alerting && alert_store_init(&alerts)) {
		fprintf(stderr, "tallyd: out of memory\n");
		daemon_config_release(&cfg);
		return 1;
	}
	if (alerting && cfg.alerts.alertmanager[0] && alerts_start(&sender, &cfg.alerts, &alerts, &e)) {
		fprintf(stderr, "tallyd: %s\n", e.msg);
		alert_store_release(&alerts);
		daemon_config_release(&cfg);
		return 1;
	}
	struct httpd *http = NULL;
	if (cfg.http.enabled) {
		struct httpd_token tok[DAEMON_MAX_TOKENS];
		for (size_t i = 0; i < cfg.http.n_tokens; i++) {
			str_copy(tok[i].token, cfg.http.tokens[i].token, sizeof(tok[i].token));
			str_copy(tok[i].tenant, cfg.http.tokens[i].tenant, sizeof(tok[i].tenant));
			tok[i].admin = cfg.http.tokens[i].admin;
		}
		struct httpd_config hc = { .address = cfg.http.address, .port = (uint16_t)cfg.http.port,
					   .tokens = tok, .n_tokens = cfg.http.n_tokens,
					   .ledger_path = cfg.ledger_path,
					   .plan_path = cfg.http.plan[0] ? cfg.http.plan : NULL,
					   .alerts = alerting ? &alerts : NULL,
					   .rate_per_s = cfg.http.rate_per_s, .rate_burst = cfg.http.rate_burst,
					   .head_timeout_ns = cfg.http.head_timeout_ns,
					   .max_connections = cfg.http.max_connections,
					   .max_per_address = cfg.http.max_connections_per_address,
					   .auth_failures_per_address = cfg.http.auth_failures_per_address,
					   .auth_failures_total = cfg.http.auth_failures_total };
		if (live_store_init(&live) || httpd_start(&http, &hc, &live, &e)) {
			fprintf(stderr, "tallyd: %s\n", e.msg[0] ? e.msg : "cannot start the HTTP listener");
			daemon_config_release(&cfg);
			return 1;
		}
		log_msg(LOG_INFO, "http: listening on %s port %u", cfg.http.address,
			(unsigned)httpd_port(http));
	}

	/* SLABurn: the SLA of the plan the JSON API serves, computed by billing */
	struct sla_burn_ctx burn = { .ledger = cfg.ledger_path, .plan = cfg.http.plan };
	if (alerting && cfg.http.plan[0]) {
		cfg.sla_probe = sla_burn_probe;
		cfg.sla_probe_ctx = &burn;
	}
	int rc = daemon_run_alerts(&cfg, &stop_flag, &sum, http ? &live : NULL,
				   alerting ? &alerts : NULL, &e);
	if (rc)
		log_msg(LOG_ERR, "%s", e.msg);
	if (http && rc == 0 && cfg.http.serve_after_end && !stop_flag) {
		log_msg(LOG_INFO, "http: the period is done; serving until SIGTERM");
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		while (!stop_flag)
			nanosleep(&ts, NULL);
	}
	if (http) {
		httpd_stop(http);
		live_store_release(&live);
	}
	alerts_stop(sender);
	if (alerting)
		alert_store_release(&alerts);
	if (rc == -ENOSPC)
		log_msg(LOG_ERR, "ingest stopped: free some space and start tallyd again; it continues"
			" after the last commit, and nothing committed was lost");
	if (!quiet) {
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
