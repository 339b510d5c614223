/*
 * sender.h: the agent's sender: a thread that POSTs the oldest
 * unacknowledged frames of a spool to the aggregator's
 * /api/v1/ingest, oldest first, and acknowledges them in the spool when
 * the aggregator says they are committed (schemas/batch-wire.md, "The
 * ingest protocol", says what it does for every answer).
 *
 * - One libcurl handle per sender, kept between requests (keep-alive).
 * - TLS when the URL is https://: the peer and its host name are always
 *   verified (ca_file, or the system's CA store); cert_file and key_file
 *   give a client certificate.
 * - Several frames per request (up to max_frames and max_request_bytes),
 *   so catching up after an outage takes few round trips.
 * - Several URLs of one aggregator (an address per listener, a standby):
 *   a request that got no answer, or a 5xx other than 503, moves the
 *   sender on to the next URL, round robin, with the same back-off.
 * - On failure: back-off doubling from backoff_min to backoff_max, each
 *   wait drawn at random between half and all of it (so a fleet that lost
 *   its aggregator does not come back in step); Retry-After of a 429 or
 *   503 is honoured.
 * - Failures are reported through log(): one line when a failure starts
 *   or its reason changes, the count of repeats every 10 minutes, and one
 *   line when delivery works again.
 * - A frame leaves the spool only after a 200 naming its seq: nothing is
 *   skipped, whatever the aggregator answers.
 *
 * sender_step() does one request synchronously and returns what happened
 * and how long the thread would wait: the tests drive it directly, the
 * thread loops on it.
 */
#ifndef TALLY_SENDER_H
#define TALLY_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "spool.h"

struct sender;

typedef void (*sender_log_fn)(void *ctx, int level, const char *msg);   /* level: enum log_level */

#define SENDER_MAX_URLS 4

/* Zero fields take the defaults in brackets. Strings are copied. */
struct sender_opts {
	const char *url;                /* the aggregator, e.g. https://agg.example:8443 (required,
					 * unless urls[] is given) */
	const char *urls[SENDER_MAX_URLS];  /* several addresses of the aggregator (one ledger):
					 * after a failure without an answer, or a 5xx other
					 * than 503, the next request goes to the next one */
	size_t n_urls;
	const char *token;              /* bearer token [none] */
	const char *ca_file;            /* PEM CAs to verify the aggregator [the system's] */
	const char *cert_file;          /* PEM client certificate [none] */
	const char *key_file;           /* its PEM key [none] */
	int64_t timeout_ns;             /* [30 s] a whole request */
	int64_t connect_timeout_ns;     /* [10 s] */
	int64_t backoff_min_ns;         /* [1 s] */
	int64_t backoff_max_ns;         /* [60 s] */
	size_t max_frames;              /* [1024] frames per request */
	size_t max_request_bytes;       /* [4 MiB] (at least one frame is sent) */
	sender_log_fn log;              /* [log_msg] */
	void *log_ctx;
};

enum sender_result {
	SENDER_IDLE = 0,                /* nothing to send */
	SENDER_OK,                      /* 200: frames acknowledged */
	SENDER_RESUMED,                 /* 409 gap/order resolved: resend at once */
	SENDER_SMALLER,                 /* 413, or a 400 of several frames: fewer frames at once */
	SENDER_THROTTLED,               /* 429 or 503 */
	SENDER_REFUSED,                 /* 400, 401, 403, 409 "spool", 422, other 4xx: needs the operator */
	SENDER_SERVER_ERROR,            /* 5xx other than 503, or an answer we cannot read */
	SENDER_FAILED,                  /* no answer: connection, TLS, timeout */
	SENDER_SPOOL_ERROR,             /* the spool could not be read or acknowledged */
	SENDER_RESULTS
};

struct sender_stats {
	uint64_t requests;
	uint64_t by_result[SENDER_RESULTS];     /* requests by enum sender_result */
	uint64_t frames_sent;                   /* in requests, resends included */
	uint64_t batches_acked;                 /* acknowledged by a 200 */
	int64_t last_ack_ns;                    /* wall clock of the last 200 with progress, 0 = none */
	uint64_t aggregator_seq;                /* the aggregator's last committed seq, as last told */
	int refusing;                           /* the last answer needs the operator (SENDER_REFUSED) */
	char last_error[256];                   /* the last failure, "" after a success */
	struct spool_stats spool;
	int64_t oldest_unsent_age_ns;           /* now - batch time of the oldest unacknowledged, 0 = none */
	size_t url_index;                       /* the URL the next request goes to */
};

/* Make a sender for sp (which must outlive it); does not start a thread.
 * -EINVAL for a missing URL or a token with a line break, -ENOMEM. */
int sender_new(struct sender **out, struct spool *sp, const struct sender_opts *o, struct tally_err *e);
void sender_free(struct sender *s);

/* One request (or none when there is nothing to send): returns an enum
 * sender_result; *wait_ns is how long to wait before the next step
 * (0: at once; for SENDER_IDLE the thread waits for sender_wake()). */
int sender_step(struct sender *s, int64_t *wait_ns);

/* Start / stop the thread that loops on sender_step(). stop interrupts a
 * wait and a request in flight, and joins. */
int sender_start(struct sender *s, struct tally_err *e);
void sender_stop(struct sender *s);
/* A batch was spooled: an idle thread looks at once. */
void sender_wake(struct sender *s);

void sender_get_stats(struct sender *s, struct sender_stats *st);

#endif
