/*
 * daemon.h: tallyd's configuration as typed structs, and the all-in-one
 * pipeline (collectors -> batches -> aggregator -> ledger and RRD).
 *
 * The config file is parsed once (daemon_config_load) into struct
 * daemon_config and its collectors are configured then, so `tallyd -n`
 * finds every mistake that a start would. Every key, its default and its
 * unit is documented in docs/config.md; the two must agree.
 */
#ifndef TALLY_DAEMON_H
#define TALLY_DAEMON_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "alerting.h"
#include "collector.h"
#include "sample.h"

struct tally_err;
struct cfg_node;

enum daemon_role { ROLE_ALL_IN_ONE, ROLE_AGENT, ROLE_AGGREGATOR };
enum daemon_clock { CLOCK_REAL, CLOCK_FAST_FORWARD };

#define DAEMON_MAX_COLLECTORS 8
#define DAEMON_MAX_TOKENS 64
/* ledger.commit_every when not given: fast-forward commits every second of
 * wall time; real time every 10 s, and at once when agg_must_commit() */
#define DAEMON_COMMIT_EVERY_FF (1 * NS_PER_SEC)
#define DAEMON_COMMIT_EVERY_RT (10 * NS_PER_SEC)

/* The `http:` section: the exporters' listener (cmd/tallyd.c starts it). */
struct daemon_http {
	bool enabled;                     /* default: true when the section is given */
	char address[64];                 /* numeric, default 127.0.0.1 */
	int port;                         /* default 9464 */
	int64_t stale_after_ns;           /* default 3 intervals */
	bool serve_after_end;             /* fast-forward: keep serving until a signal */
	char plan[PATH_MAX];              /* rate plan for /api/v1/sla; "" for none */
	double rate_per_s;                /* requests per second per client, 0: no limit; default 20 */
	uint32_t rate_burst;              /* at once per client, default 100 */
	int64_t head_timeout_ns;          /* accept to a whole request head, default 5 s */
	uint32_t max_connections;         /* waiting for their request head, default 1024 */
	uint32_t max_connections_per_address; /* the same per client address, default 32 */
	uint32_t auth_failures_per_address;   /* wrong tokens a minute per address, default 10 */
	uint32_t auth_failures_total;         /* the same, all addresses together, default 100 */
	struct daemon_token {
		char token[128];
		char tenant[64];          /* "" for admin */
		bool admin;
	} tokens[DAEMON_MAX_TOKENS];
	size_t n_tokens;
};

struct daemon_config {
	char path[PATH_MAX];              /* the config file, for messages */
	enum daemon_role role;
	char agent_id[TALLY_ID_MAX];      /* default: the host name */
	char data_dir[PATH_MAX];          /* default: ./var */
	int64_t interval_ns;              /* default 10 s */
	int log_level;                    /* enum log_level, default info */
	enum daemon_clock clock;          /* default realtime */
	int64_t start_ns, end_ns;         /* fast-forward period */

	char ledger_path[PATH_MAX];       /* default: data_dir/ledger.db */
	int64_t max_gap_ns;               /* default 5 min */
	int64_t commit_every_ns;          /* commit period (wall): DAEMON_COMMIT_EVERY_FF in
					     fast-forward, _RT in real time, unless given */

	bool rrd_enabled;                 /* default true */
	char rrd_dir[PATH_MAX];           /* default: data_dir/rrd */
	int64_t rrd_step_ns;              /* default 60 s */

	struct daemon_collector {
		const struct collector_ops *ops;
		void *state;              /* from ops->configure, owned here */
	} coll[DAEMON_MAX_COLLECTORS];
	size_t n_coll;

	struct daemon_http http;
	struct alerting_config alerts;    /* the `alerts:` section (aggregator/alerting.h) */

	/* Not parsed: wired by the caller (cmd/tallyd.c). The input of the
	 * built-in SLABurn, asked after a commit at most once a minute of data
	 * time; NULL: no SLABurn. */
	alert_sla_probe sla_probe;
	void *sla_probe_ctx;
};

/* Parse and check FILE (or the text, when text is not NULL, named by path).
 * Returns 0; -EINVAL/-ERANGE with "file:line:col: ..." in e; -ENOENT. */
int daemon_config_load(struct daemon_config *c, const char *path, const char *text,
		       struct tally_err *e);
void daemon_config_release(struct daemon_config *c);

struct daemon_summary {
	uint64_t cycles, batches, samples, commits, duplicate_batches, overruns;
	uint64_t resets, baselines, from_zero, dropped_old, invalid, rrd_errors;
	int64_t first_tick_ns, last_tick_ns;
	double wall_s;
	bool resumed;
};

/* Run the all-in-one pipeline until *stop, the end of a fast-forward
 * period, or an error. Returns 0 or the error (message in e). */
int daemon_run(struct daemon_config *c, volatile sig_atomic_t *stop, struct daemon_summary *sum,
	       struct tally_err *e);

/* daemon_run that also publishes a snapshot of the live state into live
 * (aggregator/state.h) for the exporters: after every successful commit
 * and, in real time, after every cycle. live may be NULL. */
struct live_store;
int daemon_run_live(struct daemon_config *c, volatile sig_atomic_t *stop, struct daemon_summary *sum,
		    struct live_store *live, struct tally_err *e);

/* daemon_run_live that also evaluates the alert rules every cycle, keeps
 * their state in the ledger and publishes the committed alerts into
 * alerts (aggregator/alerting.h) after every commit. alerts may be NULL
 * (alerts are still evaluated and kept when c->alerts.enabled). */
struct alert_store;
int daemon_run_alerts(struct daemon_config *c, volatile sig_atomic_t *stop, struct daemon_summary *sum,
		      struct live_store *live, struct alert_store *alerts, struct tally_err *e);

#endif
