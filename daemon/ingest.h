/*
 * ingest.h: batches into the aggregator, from this process or from agents
 * over the network (schemas/batch-wire.md, "The ingest protocol";
 * docs/transport.md).
 *
 * One function, ingest_batch(), takes a batch into the aggregator and the
 * alert engine: the all-in-one pipeline calls it for every batch its
 * collectors fill, the aggregator role for every frame an agent POSTs.
 *
 * The aggregator role (tallyd.role: aggregator):
 *
 *   listener threads (exporters/httpd.c)          the writer (pipeline.c)
 *   POST /api/v1/ingest, token -> agent id
 *   ingest check: frames whole, checksums,
 *     one agent (the token's), one spool,
 *     every frame decodes, meters known  --queue-->  ingest_take: every request waiting
 *                                                   ingest_apply: spool, order, gap;
 *                                                     new frames decoded into ingest_batch
 *                                                   agg_commit: one transaction for all
 *   answer 200 {agent, acked} / 409 / 503 <--done--  ingest_answer
 *
 * Rule 7 across the network: a request is answered 200 only after the
 * transaction that holds its batches (usage, series state and the agent's
 * seq, docs/architecture.md) committed; the requests that arrived while a
 * commit ran are taken together and committed in the next one (group
 * commit). A refused request changes nothing: every check that can refuse
 * a frame (malformed, another agent, an unknown meter) is made on the
 * listener's thread before anything is applied, and the writer's checks
 * (spool, order, gap) before it applies the first frame. A frame whose
 * (agent, seq) is committed is acknowledged again and not counted; one that
 * was ingested but whose commit failed (a full disk) waits in memory and is
 * acknowledged when a later commit takes it.
 *
 * Thread safety: the check runs on any listener thread; everything else on
 * the writer's thread, which alone touches the aggregator.
 */
#ifndef TALLY_DAEMON_INGEST_H
#define TALLY_DAEMON_INGEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "httpd.h"
#include "selfmetric.h"

struct tally_err;
struct aggregator;
struct alerting;
struct cfg_node;

/* The one ingest function (see above): agg_ingest(), then the alert
 * engine notes the batch. Returns agg_ingest's result: 0, 1 (a duplicate:
 * nothing changed), or a negative errno (message in e). al may be NULL. */
int ingest_batch(struct aggregator *a, struct alerting *al, const struct batch *b, struct tally_err *e);

/* The `ingest:` section of tallyd's config (docs/config.md); only the
 * aggregator role takes one. */
struct ingest_section {
	bool given;
	uint64_t max_request;        /* bytes of one request's body, default 16 MiB: 413 above */
	uint64_t max_pending;        /* bytes of bodies held at once, default 256 MiB: 429 above */
	int64_t body_timeout_ns;     /* head to the whole body, default 60 s */
	uint32_t max_frames;         /* frames in one request, default 1024 (the protocol's) */
};
#define INGEST_MAX_REQUEST (16u << 20)
#define INGEST_MAX_PENDING (256u << 20)
#define INGEST_BODY_TIMEOUT_NS (60 * 1000000000LL)
#define INGEST_MAX_FRAMES 1024u

/* Parse sec (NULL: not given, the defaults) into s. 0 or -EINVAL/-ERANGE
 * with "file:line:col: key '...': ..." in e. */
int ingest_section_parse(struct ingest_section *s, const struct cfg_node *sec, struct tally_err *e);

struct ingest;
struct ingest_job;

/* The queue between the listener and the writer; s is copied. 0 or
 * -ENOMEM. */
int ingest_new(struct ingest **out, const struct ingest_section *s, struct tally_err *e);
/* After ingest_close() and the listener's stop. NULL is fine. */
void ingest_free(struct ingest *ig);
/* The listener's side of ig (httpd_config.ingest); valid while ig is. */
void ingest_listener(struct ingest *ig, struct httpd_ingest *out);

/* The writer. Wait until a request is queued, until_mono_ns (monotonic),
 * or at most 200 ms (so the caller sees *stop and other flags); take every
 * queued request. Returns the list (NULL: none). */
struct ingest_job *ingest_take(struct ingest *ig, int64_t until_mono_ns);
/* Make a waiting ingest_take() return now (with what is queued, maybe
 * nothing): another queue the same writer serves has work (events.h).
 * Any thread. */
void ingest_wake(struct ingest *ig);
/* The request after j in a taken list, NULL at its end. */
struct ingest_job *ingest_next(const struct ingest_job *j);
/* Decide one taken request against what a holds and take its new frames
 * into a (ingest_batch); now_ns is the wall clock (the agent's contact).
 * Returns 1 when the request waits for the next commit (it holds frames not
 * committed yet), 0 when it is answered already (a replay of committed
 * frames, or a refusal), or a negative errno when the aggregator failed
 * while applying it (message in e; the aggregator is broken then, the
 * request answered 503). */
int ingest_apply(struct ingest *ig, struct aggregator *a, struct alerting *al, struct ingest_job *j,
		 int64_t now_ns, struct tally_err *e);
/* Answer every request of the list and free the list: those waiting for a
 * commit with 200 when commit_rc is 0, acknowledging up to what a (when
 * not NULL) has committed of the agent: with several aggregators on one
 * ledger a commit may have dropped a request's batches that another
 * aggregator had committed the agent past (agg_refresh), and the agent
 * sends them again (503 when nothing of the request is acknowledged);
 * else 503 and Retry-After retry_after_s (at least 1); the others as
 * ingest_apply decided. */
void ingest_answer(struct ingest *ig, const struct aggregator *a, struct ingest_job *list, int commit_rc,
		   int64_t retry_after_s, const char *why);
/* Refuse every request of the list with status (429 or 503) and
 * Retry-After, without applying it; frees the list. */
void ingest_refuse(struct ingest *ig, struct ingest_job *list, unsigned status, int64_t retry_after_s,
		   const char *why);
/* From now on requests are answered 503 at once; every queued one is
 * answered so. After it no request is left waiting (the listener may
 * stop). */
void ingest_close(struct ingest *ig);

/* What the ingest did since it started. */
struct ingest_stats {
	uint64_t requests;           /* whole bodies handed over */
	uint64_t by_status[6];       /* 200, 400, 403, 409, 422, 503 (index: ingest_status_index) */
	uint64_t frames;             /* in requests answered 200 */
	uint64_t frames_applied;     /* new batches ingested */
	uint64_t frames_replayed;    /* committed before: acknowledged again, not counted */
	uint64_t samples;            /* in the batches ingested */
	uint64_t log_suppressed;     /* refusal lines not logged (rate limit) */
};
void ingest_get_stats(struct ingest *ig, struct ingest_stats *out);

/* The ingest's figures for /metrics, one put() a series
 * (tally_ingest_requests_total{status}, tally_ingest_batches_total{result}). */
struct collector_metric;
void ingest_metrics(struct ingest *ig, void (*put)(void *ctx, const struct collector_metric *m), void *ctx);

#endif
