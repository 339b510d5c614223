/*
 * events.h: usage events a source service pushes to tallyd, POST
 * /api/v1/events (schemas/events-api.md), booked into the ledger by the
 * writer tallyd already owns: the same rows and rules as `tally import`
 * (aggregator/import.h), while tallyd holds the ledger's writer's lock.
 *
 *   listener threads (exporters/httpd.c)            the writer (pipeline.c)
 *   POST /api/v1/events, a source's token
 *   (or an admin's: the body names the source)
 *   check: the body's shape (400), every event
 *     by import's rules (422), the source  --queue-->  events_take: every request waiting
 *                                                     events_run: one transaction on the
 *                                                       aggregator's ledger for all of them,
 *                                                       each request all or nothing
 *   answer 200 {booked, duplicates, results} <--done--  after the commit; 409 / 422 / 503
 *
 * Rule 7: a request is answered 200 only after the transaction that holds
 * its events committed, and a refused request leaves nothing in the
 * ledger: every check that needs no ledger is made on the listener's thread
 * before the request is queued; the writer's own refusals (a key that names
 * another event, 409; a resource of another tenant, an hour too large,
 * 422) roll the transaction back, and the other requests of the round are
 * then booked one transaction each. A ledger that cannot be written (a
 * full disk, its server away) answers 503 with Retry-After, nothing
 * written. The requests that arrived while a transaction ran are taken
 * together into the next (group commit).
 *
 * The transactions are the aggregator's ledger's, between its commits, on
 * its thread: the all-in-one role runs them while the scheduler waits for
 * the next cycle, the aggregator role after each round of ingest requests.
 * The resources the events name are the aggregator's (agg_resource_*).
 *
 * Thread safety: the check runs on any listener thread; events_take,
 * events_run and events_refuse on the writer's thread only.
 */
#ifndef TALLY_DAEMON_EVENTS_H
#define TALLY_DAEMON_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "httpd.h"
#include "selfmetric.h"

struct tally_err;
struct aggregator;
struct cfg_node;

/* The `events:` section of tallyd's config (docs/config.md); the
 * all-in-one and aggregator roles take one, the agent role none. */
struct events_section {
	bool given;
	uint64_t max_request;        /* bytes of one request's body, default 1 MiB: 413 above */
	uint64_t max_pending;        /* bytes of bodies held at once, default 64 MiB: 429 above */
	uint32_t max_events;         /* events in one request, default 10000: 400 above */
	int64_t body_timeout_ns;     /* head to the whole body, default 60 s */
};
#define EVENTS_MAX_REQUEST (1u << 20)
#define EVENTS_MAX_PENDING (64u << 20)
#define EVENTS_MAX_EVENTS 10000u
#define EVENTS_BODY_TIMEOUT_NS (60 * 1000000000LL)

/* Parse sec (NULL: not given, the defaults) into s. 0 or -EINVAL/-ERANGE
 * with "file:line:col: key '...': ..." in e. */
int events_section_parse(struct events_section *s, const struct cfg_node *sec, struct tally_err *e);

struct events;
struct events_job;

/* The queue between the listener and the writer; s is copied. 0 or
 * -ENOMEM. */
int events_new(struct events **out, const struct events_section *s, struct tally_err *e);
/* After events_close() and the listener's stop. NULL is fine. */
void events_free(struct events *ev);
/* The listener's side of ev (httpd_config.events); valid while ev is. */
void events_listener(struct events *ev, struct httpd_ingest *out);
/* Call wake(ctx) (from a listener thread) whenever a request is queued:
 * the aggregator role's writer waits on the ingest queue, not on this
 * one. Set before the listener starts. */
void events_set_wake(struct events *ev, void (*wake)(void *ctx), void *ctx);

/* The writer. Wait until a request is queued or until until_mono_ns
 * (monotonic; at most 200 ms, so the caller sees its flags; a time passed
 * already: no wait), take every queued request. Returns the list (NULL:
 * none). */
struct events_job *events_take(struct events *ev, int64_t until_mono_ns);
/* Book every request of the list into a's ledger (see above) at now_ns
 * (wall clock, recorded with each event), answer each and free the list.
 * a must not be inside a commit. Returns 0, or -EIO when a rollback failed
 * and the ledger is left in a transaction (the aggregator is then broken:
 * its next commit fails, and tallyd stops). */
int events_run(struct events *ev, struct events_job *list, struct aggregator *a, int64_t now_ns);
/* Refuse every request of the list with status (503) and Retry-After,
 * without booking it; frees the list. */
void events_refuse(struct events *ev, struct events_job *list, unsigned status, int64_t retry_after_s,
		   const char *why);
/* The aggregator a is closed: its booking state goes. */
void events_detach(struct events *ev);
/* From now on requests are answered 503 at once; every queued one is
 * answered so. After it no request is left waiting (the listener may
 * stop). */
void events_close(struct events *ev);

/* What the endpoint did since tallyd started. */
struct events_stats {
	uint64_t requests;           /* whole bodies handed over */
	uint64_t by_status[6];       /* 200, 400, 403, 409, 422, 503 */
	uint64_t booked;             /* events booked (in requests answered 200) */
	uint64_t duplicates;         /* events recorded before: counted once */
	uint64_t log_suppressed;     /* refusal lines not logged (rate limit) */
};
void events_get_stats(struct events *ev, struct events_stats *out);
/* Its figures for /metrics, one put() a series
 * (tally_events_requests_total{status}, tally_events_total{result}). */
struct collector_metric;
void events_metrics(struct events *ev, void (*put)(void *ctx, const struct collector_metric *m), void *ctx);

#endif
