/*
 * httpgate.h: the accept loop in front of the HTTP listener. It owns the
 * listening socket and every connection until that connection's request
 * head (request line and header fields) has arrived whole, then hands it to
 * libmicrohttpd (httpd.c), which answers it at once.
 *
 * Why not let libmicrohttpd accept: in 0.9.75 its timeout is an idle
 * timeout (a client sending one byte every few seconds keeps a connection
 * for ever, and a few hundred such clients fill its table), a worker that
 * holds no connection busy-waits when accept() fails with EMFILE, and a
 * request line with a few hundred query parameters exhausts the connection's
 * memory pool and stalls without an answer. The gate enforces, before a
 * single byte reaches libmicrohttpd:
 *
 *   - a head deadline: a connection whose head is not complete within
 *     head_timeout_ns of its accept is closed, however steadily it trickles;
 *   - bounded tables: at most max_pending connections with a head still
 *     arriving, and max_per_address of them per client address (IPv4
 *     address, IPv6 /64). A new connection past either bound closes the
 *     oldest incomplete one (of that address, or of all): a slow client
 *     loses its slot to a new one, so a client that sends its head at once
 *     (a scrape) is always read, however many slow ones are open;
 *   - bounded heads, answered by the gate and closed: a target longer than
 *     max_target bytes is 414, more than max_args query parameters 400, a
 *     head longer than max_head bytes or with more than max_fields fields 431;
 *   - prompt release: a client that closes while its head is arriving is
 *     closed at once (no CLOSE-WAIT left behind);
 *   - back-off on EMFILE/ENFILE (and other accept failures): the listening
 *     socket leaves the poll set for 10 ms, doubling to 1 s while it keeps
 *     failing, and the oldest incomplete connection is closed to free a
 *     descriptor; said once per back-off window in the log.
 *
 * Nothing is read from a connection before the hand-over: the head is
 * examined with MSG_PEEK, so libmicrohttpd reads it as if it had accepted
 * the connection itself. One thread; the tables are its own.
 */
#ifndef TALLY_HTTPGATE_H
#define TALLY_HTTPGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct tally_err;
struct httpgate;

struct httpgate_limits {
	size_t max_head;             /* bytes of request line and fields, CRLFs included */
	size_t max_target;           /* bytes of the request target (path and query) */
	unsigned max_args;           /* query parameters (pieces between '&') */
	unsigned max_fields;         /* header fields */
};

struct httpgate_config {
	int listen_fd;               /* bound, listening, non-blocking; the gate closes it */
	unsigned max_pending;        /* connections with a head still arriving (>= 1) */
	unsigned max_per_address;    /* of those, per address (>= 1) */
	int64_t head_timeout_ns;     /* from accept to a complete head */
	struct httpgate_limits limits;
	/* TLS: the head is encrypted, so the gate waits for the client's first
	 * TLS record (its ClientHello) whole within the deadline and hands the
	 * connection over then; libmicrohttpd does the handshake and reads the
	 * head (httpd.c closes a connection whose head is not whole by the
	 * deadline). A connection that speaks plain HTTP is answered 400. */
	bool tls;
	/* A complete head within the limits: fd (non-blocking, nothing read
	 * from it) belongs to the callee from now on, even when it fails. */
	void (*handoff)(void *ctx, int fd, const struct sockaddr *sa, socklen_t len);
	void *ctx;
};

/* What the gate did since it started (each a count of connections). */
struct httpgate_stats {
	uint64_t accepted;
	uint64_t handed_over;
	uint64_t timed_out;          /* head not complete by the deadline */
	uint64_t evicted;            /* closed to make room for a newer one */
	uint64_t refused;            /* answered 400/414/431 by the gate */
	uint64_t client_closed;      /* the client closed before its head was complete */
	uint64_t accept_failures;    /* accept() errors other than EAGAIN (EMFILE, ...) */
};

/* Start the gate's thread on c->listen_fd (owned by the gate from now on,
 * even on failure). Returns 0, or -errno with a message in e. */
int httpgate_start(struct httpgate **out, const struct httpgate_config *c, struct tally_err *e);
/* Stop the thread, close the listening socket and every connection it still
 * holds, free everything. NULL is fine. */
void httpgate_stop(struct httpgate *g);
void httpgate_get_stats(struct httpgate *g, struct httpgate_stats *out);

/* The verdict on the first len bytes received on a connection. */
enum httpgate_verdict {
	HTTPGATE_MORE = 0,           /* no complete head yet, nothing over a limit */
	HTTPGATE_COMPLETE,           /* a head of *head_len bytes, within the limits */
	HTTPGATE_BAD_REQUEST,        /* 400: too many query parameters, or not a request line */
	HTTPGATE_URI_TOO_LONG,       /* 414 */
	HTTPGATE_HEAD_TOO_LARGE,     /* 431: head longer than max_head, or too many fields */
};

/* Pure: what buf (the bytes received so far, len of them) is. Lines end in
 * LF or CRLF; empty lines before the request line are skipped (as
 * libmicrohttpd does). Over a limit as soon as the bytes show it, even
 * before the head is complete. */
enum httpgate_verdict httpgate_scan(const char *buf, size_t len, const struct httpgate_limits *l,
				    size_t *head_len);
/* Pure, for a TLS listener: what the first len bytes a client sent are.
 * HTTPGATE_COMPLETE when they hold a whole TLS handshake record (of
 * *head_len bytes, header included; at most 5 + 18432); HTTPGATE_MORE while
 * it is arriving; HTTPGATE_BAD_REQUEST when they cannot start a TLS
 * handshake (a plain HTTP request, or anything else). */
enum httpgate_verdict httpgate_scan_tls(const unsigned char *buf, size_t len, size_t *head_len);
#define HTTPGATE_TLS_RECORD_MAX (5 + 18432)

/* The status code of a refusal verdict (400, 414, 431), 0 for the others. */
unsigned httpgate_status(enum httpgate_verdict v);

#endif
