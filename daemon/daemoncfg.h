/*
 * daemoncfg.h: tallyd's config file as typed structs (docs/config.md).
 *
 * The file is parsed once (daemon_config_load): this module reads tallyd's
 * own section and hands every other section to the module that owns it
 * (ledger: and rrd: to the aggregator, alerts: to the alert engine, http:
 * to the exporters' listener, each collector's map to that collector's
 * configure()). The collectors are configured then, so `tallyd -n` finds
 * every mistake that a start would. Every key, its default and its unit is
 * documented in docs/config.md; the two must agree.
 */
#ifndef TALLY_DAEMON_CONFIG_H
#define TALLY_DAEMON_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "aggregator.h"
#include "alerting.h"
#include "collector.h"
#include "events.h"
#include "httpd.h"
#include "ingest.h"
#include "sample.h"

struct tally_err;

/* The process's role (docs/config.md, tallyd.role): all-in-one collects
 * and aggregates; an agent collects into a spool that a sender ships
 * (agent.h); an aggregator takes what agents POST (ingest.h), with no
 * collectors of its own: deliveries of the same pipeline (pipeline.h). */
enum daemon_role { ROLE_ALL_IN_ONE, ROLE_AGENT, ROLE_AGGREGATOR };
enum daemon_clock { CLOCK_REAL, CLOCK_FAST_FORWARD };

#define DAEMON_MAX_COLLECTORS 8

struct daemon_config {
	char path[PATH_MAX];              /* the config file, for messages */
	enum daemon_role role;
	char agent_id[TALLY_ID_MAX];      /* default: the host name */
	char data_dir[PATH_MAX];          /* default: ./var */
	int64_t interval_ns;              /* default 10 s */
	int log_level;                    /* enum log_level, default info */
	enum daemon_clock clock;          /* default realtime */
	int64_t start_ns, end_ns;         /* fast-forward period */

	struct agg_settings agg;          /* `ledger:` and `rrd:` (aggregator/aggcfg.c) */
	struct daemon_collector {
		const struct collector_ops *ops;
		void *state;              /* from ops->configure, owned here */
	} coll[DAEMON_MAX_COLLECTORS];
	size_t n_coll;
	struct httpd_section http;        /* `http:` (exporters/httpcfg.c) */
	struct alerting_config alerts;    /* `alerts:` (aggregator/alertcfg.c) */
	struct ingest_section ingest;     /* `ingest:` (daemon/ingest.c), role aggregator */
	struct events_section events;     /* `events:` (daemon/events.c), roles all-in-one and aggregator */
	uint64_t meters_digest;           /* of the `meters:` section (common/metercfg.h): tallyd defines
					     its custom meters at start, so a reload that changes them
					     needs a restart */
	struct agent_settings agent;      /* `agent:` (daemon/agent.c), role agent only */
};

/* Parse and check FILE (or the text, when text is not NULL, named by path).
 * Returns 0; -EINVAL/-ERANGE/-ENOTSUP with "file:line:col: ..." in e;
 * -ENOENT. On failure nothing is left to release. */
int daemon_config_load(struct daemon_config *c, const char *path, const char *text,
		       struct tally_err *e);
/* Free the collectors' states; c may be loaded again after. */
void daemon_config_release(struct daemon_config *c);

#endif
