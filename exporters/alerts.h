/*
 * alerts.h: the Alertmanager client of tallyd. A thread of its own reads
 * the committed alerts (aggregator/alerting.h snapshots) and POSTs them to
 * Alertmanager's API v2 (`POST /api/v2/alerts`): firing alerts with their
 * startsAt and an endsAt a few re-send intervals ahead (so Alertmanager
 * resolves them by itself if tallyd dies), resolved ones with endsAt = the
 * resolution time. It sends when a new snapshot changes something and
 * re-sends everything every `resend` while alerts are active.
 *
 * Collection and ingest never wait for it: the ingest thread only publishes
 * a snapshot (a pointer swap); the snapshot is bounded (alerts.max_alerts)
 * and replaced, never queued, so a dead Alertmanager costs no memory. A
 * failed POST is retried with a doubling back-off (1 s up to backoff_max),
 * said once per back-off window, and counted in the store
 * (alert_store_send_stats: shown at /api/v1/alerts).
 */
#ifndef TALLY_ALERTS_H
#define TALLY_ALERTS_H

#include <stdint.h>

#include <jansson.h>

#include "alerting.h"

struct tally_err;
struct alerts_sender;


/* Start the sender thread for c (borrowed: must outlive the sender).
 * Returns 0, or -errno with a message in e. */
int alerts_start(struct alerts_sender **out, const struct alerting_config *c,
		 struct alert_store *store, struct tally_err *e);
/* Try once more to deliver what was not delivered (bounded by the POST
 * timeout), stop the thread and free it. */
void alerts_stop(struct alerts_sender *s);

/* The POST body for snap: the firing and resolved alerts as Alertmanager v2
 * postable alerts. now_ns is the wall clock (firing endsAt = now + 4 x
 * resend). Returns a malloc'd string the caller frees, *n_alerts set, or
 * NULL when out of memory. Pure, for tests. */
char *alerts_render(const struct alert_snap *snap, int64_t now_ns, int64_t resend_ns,
		    const char *generator_url, size_t *n_alerts);

/* "k=v\n" lines (aggregator/alerting.h's labels and annotations) as a
 * new JSON object; the last line may lack its newline. A key of 64 bytes
 * or more is left out; parsing stops at a line without '='. */
json_t *alerts_pairs_json(const char *s);

#endif
