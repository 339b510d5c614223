/*
 * prom.h: the Prometheus exposition of a live snapshot (aggregator/state.h).
 *
 * Text format 0.0.4, or OpenMetrics 1.0 text (ending in "# EOF") when the
 * scraper asks for it. Names carry the tally_ prefix and base units;
 * counters end in _total and expose the sum of the series' deltas since
 * tallyd started, so a counter reset on the VM never makes them go down
 * (the aggregator already turned the reset into usage). No timestamps.
 * Labels: uuid, name, tenant, flavor, host (the series' source agent) and,
 * for disk and NIC meters, device. Resources without a reading within the
 * snapshot's stale_after are left out, and so are the series a fresh
 * resource left behind (a host it migrated away from); the self-metrics (tally_ingest_*,
 * tally_collector_*, tally_ledger_*) follow the per-VM families.
 *
 * prom_render is a pure function of the snapshot: it never calls libvirt,
 * the ledger or the aggregator, and takes no lock.
 */
#ifndef TALLY_PROM_H
#define TALLY_PROM_H

#include "sbuf.h"
#include "state.h"

enum prom_format { PROM_TEXT, PROM_OPENMETRICS };

#define PROM_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PROM_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* The exposition name of meter m without the _total suffix
 * ("tally_cpu_seconds"), and whether it is a counter. */
const char *prom_family(int meter, bool *counter);

/* Append st's exposition to out; tenant NULL renders every tenant and the
 * self-metrics, a tenant renders only its own resources. Returns 0 or
 * -ENOMEM. */
int prom_render(const struct live_state *st, enum prom_format fmt, const char *tenant,
		struct sbuf *out);

/* The HTTP listener's own counts since it started (exporters/httpd.c):
 * what became of the connections it accepted before a handler saw their
 * request, and the POST routes' refusals before the aggregator saw them
 * (status: PROM_REFUSAL_STATUSES, by route: ingest, events). */
#define PROM_REFUSAL_STATUSES { 400, 401, 403, 411, 413, 415, 429, 503 }
#define PROM_N_REFUSAL 8
struct prom_listener {
	uint64_t handed_over, table_full, too_large, timed_out, evicted, client_closed, swept, accept_failures;
	uint64_t refused[2][PROM_N_REFUSAL];
	bool has_post[2];            /* the route is served */
};
/* Appends the listener's series to out (before OpenMetrics' # EOF, which
 * it moves to the end). An operator's: the admin's page only. */
void prom_render_listener(const struct prom_listener *l, enum prom_format fmt, struct sbuf *out);

/* The format an Accept header asks for (NULL: text 0.0.4). */
enum prom_format prom_negotiate(const char *accept);

#endif
