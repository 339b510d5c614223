/*
 * alerting.h: alert rules (the `alerts:` section of tallyd's config), the
 * state machine that turns them into alerts, and the immutable snapshots of
 * those alerts that the exporters read (the Alertmanager client in
 * exporters/alerts.h, /api/v1/alerts in exporters/httpd.c).
 *
 * A rule is a condition on a subject, evaluated once per collection cycle at
 * the cycle's data time t (virtual in fast-forward):
 *   - a threshold rule: a meter's rate (counters, per second) or value
 *     (gauges) of one series above or below a threshold; with a window,
 *     the rate between the readings that window spans, or the mean of the
 *     gauge's readings in it (kept in the ledger with the series, so a
 *     restart continues it). A counter without two readings to take a
 *     rate between (a baseline, a window emptied by a long gap) has no
 *     value: unknown is not 0, and an instance without a value keeps its
 *     state;
 *   - built-in VMDown: a VM that crashed and has not started again (from
 *     the lifecycle events, and the instance gauge coming back);
 *   - built-in StaleData: a VM whose series have not ended (it was not
 *     stopped) but which sent no reading for stale_intervals intervals;
 *   - built-in SamplesDropped: readings dropped (batcher out of memory) or
 *     refused as invalid during the last 10 intervals;
 *   - built-in LedgerWriteFailing: the ledger cannot be written (its
 *     commits fail: a full disk, an I/O error) since the data time the
 *     daemon says (alerting_set_ledger); what tallyd ingests meanwhile is
 *     kept in memory and committed when a retry succeeds;
 *   - built-in AgentSilent (an aggregator): an agent with a token that
 *     nothing was taken or acknowledged from for longer than agent_silent
 *     (wall clock, alerting_set_agents): its host, its network or its
 *     sender is down, or the aggregator refuses what it sends;
 *   - built-in SLABurn: a VM whose downtime this month has used more than
 *     sla_burn of its error budget. The engine does not compute
 *     availability: what the SLA says of each VM comes from outside
 *     (alerting_set_sla), computed by billing/sla.c, the code behind
 *     `tally sla` and the invoices' credits, so pager and invoice agree.
 *
 * The state machine of one alert instance (alert_step; docs/config.md):
 *
 *   inactive --cond--> pending --cond held `for`--> firing --!cond--> resolved
 *      ^                  |                                              |
 *      +-----!cond--------+         (resolved_keep later, or cond again) +
 *
 * With for = 0 an instance goes straight to firing. A firing instance's
 * startsAt is the instant it had held for `for`: active + for, not the
 * evaluation that noticed; its endsAt is the instant the condition ended.
 * Event rules (VMDown) know those instants exactly (the crash and the start
 * events' times); threshold rules know them to one cycle. An instance whose
 * subject was not seen in a cycle (its VM sent nothing) keeps its state: no
 * information is not a resolution. An end is: a life's final reading, or
 * an end event (stopped, shutdown, crashed, migrated_out, undefined) after
 * its last reading on that host, for when the collector missed the final
 * reading; a series over by either meets no condition, raises no
 * StaleData, and its pending or firing instances resolve at the end, read
 * again or not (at start the ledger's events say which lives ended).
 *
 * Durability: the instances live in the ledger's alerts table and the
 * windows' readings in its alert_windows table, written in the ledger
 * transaction of the cycles they were computed from (alerting_attach
 * installs the commit hook), and loaded back by alerting_attach. A restart
 * therefore resumes every pending, firing and resolved-being-re-sent alert
 * with its original times and every window where its series resumes: no
 * resolution by the restart, no duplicate page, nothing forgotten.
 *
 * Threads: the engine belongs to the ingest thread. Readers only see
 * snapshots (alert_store), published after each successful commit, so what
 * is sent or served is always committed; except while the ledger cannot be
 * written, when the daemon publishes after every evaluation so that
 * LedgerWriteFailing is sent at all (what is sent then may not survive a
 * crash of tallyd before the ledger is written again).
 */
#ifndef TALLY_ALERTING_H
#define TALLY_ALERTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "snapshot.h"

struct tally_err;
struct cfg_node;
struct aggregator;

#define ALERT_MAX_RULES 64
#define ALERT_LABELS_MAX 1024          /* "name=value\n" lines, with the NUL */
#define ALERT_ANNOT_MAX 1024

enum alert_op { ALERT_ABOVE, ALERT_BELOW };

struct alert_rule {
	char name[64];                   /* alertname, [A-Za-z_][A-Za-z0-9_]* */
	int meter;                       /* enum meter_id */
	bool rate;                       /* rate_above/rate_below (counters) */
	enum alert_op op;
	double threshold;                /* counters: meter unit per second (cpu: seconds per second) */
	int64_t for_ns;
	int64_t window_ns;               /* 0: the last interval (rate) or the last value (gauge) */
	char severity[16];               /* critical, warning, info */
	char labels[512];                /* extra labels, "name=value\n" sorted */
	char annotations[512];           /* extra annotations, same form */
};

/* The `alerts:` section, every key in docs/config.md. */
struct alerting_config {
	bool enabled;                    /* true when the section is given */
	char alertmanager[256];          /* base URL, "" = do not send */
	int64_t resend_ns;               /* default 1 min */
	int64_t timeout_ns;              /* one POST, default 10 s */
	int64_t resolved_keep_ns;        /* re-send resolved alerts this long, default 15 min */
	int64_t backoff_max_ns;          /* retry back-off ceiling, default 5 min */
	char generator_url[256];         /* default: this tallyd's /api/v1/alerts */
	uint64_t stale_intervals;        /* StaleData after this many intervals, 0 = off; default 3 */
	bool vm_down;                    /* built-in VMDown, default true */
	bool samples_dropped;            /* built-in SamplesDropped, default true */
	int64_t agent_silent_ns;         /* built-in AgentSilent after this silence, 0 = off; default 5 min */
	bool spool_filling;              /* built-in SpoolFilling (agent role, daemon/agent.h), default true */
	int64_t sla_burn_ppm;            /* built-in SLABurn: share of the error budget, 0 = off;
					  * default 1000000 (100 %) */
	uint64_t max_alerts;             /* instances kept at most; more are dropped and counted */
	struct alert_rule rules[ALERT_MAX_RULES];
	size_t n_rules;
};

/* Parse the `alerts:` map (sec may be NULL: no section, alerting off).
 * interval_ns is tallyd's interval. Returns 0 or -EINVAL/-ERANGE with
 * "file:line:col: ..." in e. */
int alerting_config_parse(struct alerting_config *c, const struct cfg_node *sec,
			  int64_t interval_ns, struct tally_err *e);

/* ---- the state machine of one instance (pure: unit-tested on its own) ---- */

enum alert_state { ALERT_INACTIVE = 0, ALERT_PENDING, ALERT_FIRING, ALERT_RESOLVED };

struct alert_times {
	enum alert_state state;
	int64_t active_ns;               /* the condition became true */
	int64_t fired_ns;                /* active_ns + for: startsAt */
	int64_t resolved_ns;             /* the condition ended: endsAt */
};

/* One evaluation at data time t_ns: cond is the condition now, since_ns
 * when it took that value if known (an event's time), else 0 (= t_ns).
 * Returns the new state; an instance back to ALERT_INACTIVE is forgotten.
 * A resolved instance stays resolved (the engine forgets it resolved_keep
 * later, in wall time, once it has been re-sent) unless cond is true again:
 * then it is a new instance, pending from since_ns. */
enum alert_state alert_step(struct alert_times *a, bool cond, int64_t since_ns, int64_t t_ns,
			    int64_t for_ns);

const char *alert_state_name(enum alert_state s);

/* ---- snapshots for the exporters ---- */

struct alert_view {
	char labels[ALERT_LABELS_MAX];   /* "name=value\n" sorted by name; the identity */
	char annotations[ALERT_ANNOT_MAX];
	char tenant[64];                 /* "" = about tallyd itself: admin only */
	enum alert_state state;          /* pending, firing or resolved */
	int64_t active_ns, fired_ns, resolved_ns;
	double value;
};

struct alert_snap {
	struct snapshot snap;            /* first: the store's reference count (common/snapshot.h) */
	uint64_t version;                /* grows when an alert changes (state, labels, a new or
					  * forgotten one), not with every publish: the sender
					  * sends at once on a change, else every resend */
	int64_t tick_ns;                 /* data time of the last evaluation */
	uint64_t dropped;                /* instances refused: max_alerts reached */
	struct alert_view *v;            /* sorted by labels */
	size_t n;
};

/* What the sender (exporters/alerts.h) reports back, for /api/v1/alerts. */
struct alert_send_stats {
	uint64_t posts;                  /* successful POSTs */
	uint64_t failures;               /* failed POSTs, each retried */
	uint64_t alerts_sent;            /* alerts in successful POSTs */
	int64_t last_success_ns;         /* wall clock, 0 = never */
};

/* The committed alerts, published by the engine (aggregator/alertstore.c). */
struct alert_store {
	struct snapshot_store ss;        /* of struct alert_snap */
	struct alert_send_stats send;    /* under ss.lock */
};

int alert_store_init(struct alert_store *s);
void alert_store_release(struct alert_store *s);
/* A reference to the current snapshot or NULL; give it back with alert_put. */
struct alert_snap *alert_acquire(struct alert_store *s);
void alert_put(struct alert_store *s, struct alert_snap *snap);
/* Wait until a snapshot newer than gen is published or timeout_ns passes.
 * Returns the current gen. */
uint64_t alert_wait(struct alert_store *s, uint64_t gen, int64_t timeout_ns);

/* The sender counts a POST (ok or not, n alerts in it); readers copy the
 * counts. */
void alert_store_count_post(struct alert_store *s, bool ok, size_t n, int64_t now_ns);
void alert_store_send_stats(struct alert_store *s, struct alert_send_stats *out);

/* Label lists: "name=value\n" lines sorted by name (the form of labels and
 * annotations everywhere in tally's alerting). */
struct alert_pair {
	char k[48];
	char v[256];
};
/* Sort p[0..n) by name and join them into out; empty values are left out
 * (Alertmanager treats them as absent), newlines in values become spaces.
 * Returns 0 or -ERANGE (longer than len). */
int alert_pairs_join(struct alert_pair *p, size_t n, char *out, size_t len);
/* Value of label name in a "name=value\n" list, copied to out ("" if absent). */
void alert_label(const char *labels, const char *name, char *out, size_t len);

/* ---- what the SLA says (built-in SLABurn) ---- */

/* One VM of the month so far, as billing/sla.c measured it from the
 * committed ledger (daemon/sla_probe.c fills these). */
struct alert_sla {
	char uuid[64], name[128], tenant[64], host[64];
	char cls[64];                    /* the VM's SLA class */
	bool burning;                    /* downtime > sla_burn x budget */
	int64_t since_ns;                /* burning: the instant it passed that */
	double used;                     /* downtime / budget (1 = all of it) */
	char summary[256];
};

/* What the probe says of a month [from_ns, to_ns): v[0..n) malloc'd, freed
 * by alert_sla_set_release. */
struct alert_sla_set {
	int64_t from_ns, to_ns;
	struct alert_sla *v;
	size_t n;
};
void alert_sla_set_release(struct alert_sla_set *s);

/* Fills out for every VM with an SLA class in the month (UTC) that holds
 * t_ns, from the committed ledger. Returns 0 or a negative errno with a
 * message in e (the engine then keeps what it had). Wired by cmd/tallyd.c
 * (daemon/sla_probe.h): the aggregator does not know billing. */
typedef int (*alert_sla_probe)(void *ctx, int64_t t_ns, int64_t burn_ppm, struct alert_sla_set *out,
			       struct tally_err *e);

/* ---- the engine (ingest thread) ---- */

struct alerting;

/* Create an engine for c (borrowed, must outlive it). agent_id names tallyd
 * itself in the SamplesDropped alert. Returns 0 or -ENOMEM. */
int alerting_new(struct alerting **out, const struct alerting_config *c, const char *agent_id,
		 int64_t interval_ns);
/* Free g; after agg_close of the aggregator it is attached to (its commit
 * hook points at g). */
void alerting_free(struct alerting *g);

/* Load the alerts table and install the commit hook on a. Call before the
 * first ingest. Returns 0 or the ledger's error. */
int alerting_attach(struct alerting *g, struct aggregator *a, struct tally_err *e);

/* SIGHUP: from now on g evaluates the rules and built-ins of c (which
 * must outlive g, as the first config did). The alerts of a rule or
 * built-in that is no longer configured are resolved at t_ns; a windowed
 * rule keeps its window when its window length is unchanged, else starts
 * it anew. Returns 0 or -ENOMEM (then g is as it was, c not taken). */
int alerting_reconfigure(struct alerting *g, const struct alerting_config *c, int64_t t_ns);

/* Note a batch's lifecycle events and instance readings: call after
 * agg_ingest accepted it (returned 0), so a duplicate batch is not noted
 * twice. */
void alerting_note_batch(struct alerting *g, const struct batch *b);

/* Evaluate every rule at data time t_ns. dropped is the count of readings
 * dropped or refused so far by this process. */
int alerting_eval(struct alerting *g, const struct aggregator *a, int64_t t_ns, uint64_t dropped);

/* Hand the engine what the SLA probe said (s is taken over and emptied;
 * the previous set is freed). SLABurn is evaluated against it at the next
 * alerting_eval; instances of VMs not in it (a new month, a VM gone from
 * it) are resolved then. */
void alerting_set_sla(struct alerting *g, struct alert_sla_set *s);

/* The ledger's commits fail since data time since_ns (0: they do not, or
 * no longer), failures attempts in a row, the last saying error: the input
 * of the built-in LedgerWriteFailing at the next alerting_eval. */
void alerting_set_ledger(struct alerting *g, int64_t since_ns, uint64_t failures, const char *error);

/* The agents an aggregator expects (one per agent token) and, for each,
 * the wall clock of its last request taken or acknowledged (0: none since
 * start_ns, when this aggregator started): the input of the built-in
 * AgentSilent at the next alerting_eval, evaluated at now_ns (wall clock).
 * v is copied; an agent no longer listed has its alert resolved. Returns 0
 * or -ENOMEM (the previous list stays). */
struct alert_agent {
	char id[TALLY_ID_MAX];
	int64_t contact_ns;
};
int alerting_set_agents(struct alerting *g, const struct alert_agent *v, size_t n, int64_t start_ns,
			int64_t now_ns);

/* The ledger committed what the hook wrote: forget what was written. */
void alerting_committed(struct alerting *g);
/* Publish the state to store (store may be NULL): call after a successful
 * commit (alerting_committed), so only committed alerts are ever sent.
 * Returns 0 or -ENOMEM (the previous snapshot stays). */
int alerting_publish(struct alerting *g, struct alert_store *store);

#endif
