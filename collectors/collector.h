/*
 * collector.h: what every source of readings implements.
 *
 * A collector is one file exporting one const struct collector_ops and
 * nothing else. The daemon owns the per-instance state (a void * made by
 * configure() and released by free()) and calls read() once per interval
 * with the time the reading is for. read() puts copies of what it read into
 * the sink it is given; it includes common/ and nothing else, and knows
 * nothing of batches, the ledger, RRD or HTTP.
 *
 * Contract:
 * - configure(cfg, env, &state, e): cfg is the collector's own map from the
 *   config file (NULL when the key is given with no value); unknown keys are
 *   errors with file:line:col (use cfg_check_keys). Returns 0 or -errno.
 * - init(state, resume_ns, e): open connections. resume_ns is 0 on a fresh
 *   start, or the time of the last cycle the ledger committed when the
 *   daemon resumes a fast-forward run (a deterministic source continues from
 *   there; a live source ignores it).
 * - read(state, now_ns, sink, e): take one reading of everything due at
 *   now_ns. A failure of one resource is not a failure of the read: count
 *   it, complain once per back-off window, go on. Returns 0 or -errno when
 *   nothing could be read at all.
 * - free(state): release everything; state may be NULL.
 * - metrics(state, put, ctx): optional (NULL: none). The collector's own
 *   figures for /metrics (an SNMP poller's per-target timeouts, say): put()
 *   once per series, the series of one family one after another. Called on
 *   the collection thread between two reads; put() copies what it is given.
 * - reload(state, fresh, e): optional (NULL: the collector's config is
 *   taken only at a start). SIGHUP: fresh is a state configure() made
 *   from the new config file (not initialised); the collector takes from
 *   it what it can change while running (a mapping file, targets) and
 *   leaves the rest; the caller frees fresh afterwards with free(). Called
 *   on the collection thread between two reads. Returns 0 or -errno (the
 *   running config is then kept whole).
 */
#ifndef TALLY_COLLECTOR_H
#define TALLY_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "selfmetric.h"
#include "sink.h"

struct cfg_node;
struct tally_err;

struct collector_env {
	const char *agent_id;    /* this host's agent id */
	int64_t interval_ns;     /* the daemon's collection interval */
	int64_t start_ns;        /* first cycle of this run (fast-forward: virtual) */
	bool start_fixed;        /* start_ns is the same in every run (fast-forward) */
	bool with_libvirt;       /* the libvirt collector runs in this tallyd too: it bills the
				    VMs, and a second source only checks them (docs/meters.md) */
};

struct collector_ops {
	const char *name;        /* key under "collectors:" in the config */
	int (*configure)(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			 struct tally_err *e);
	int (*init)(void *state, int64_t resume_ns, struct tally_err *e);
	int (*read)(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e);
	void (*free)(void *state);
	void (*metrics)(void *state, void (*put)(void *ctx, const struct collector_metric *m), void *ctx);
	int (*reload)(void *state, void *fresh, struct tally_err *e);
};

/* The collector named name, or NULL. */
const struct collector_ops *collector_find(const char *name);
/* NULL-terminated list of all collectors built in. */
extern const struct collector_ops *const collector_all[];

#endif
