/*
 * httpd.h: tallyd's read-only HTTP listener (libmicrohttpd): Prometheus
 * /metrics and the JSON API.
 *
 *   GET /metrics                          exposition of the live state (prom.h)
 *   GET /api/v1/resources[?tenant=T]      resources seen since tallyd started
 *   GET /api/v1/resources/UUID            one resource and its series
 *   GET /api/v1/usage?from=&to=[&tenant=&resource=&meter=&by=]
 *                                         hourly usage from the ledger (billing/usage.h)
 *   GET /api/v1/alerts[?tenant=T]         pending and firing alerts (aggregator/alerting.h)
 *   POST /api/v1/ingest                   an agent's batches (the aggregator role, below)
 *   POST /api/v1/events                   a source service's usage events (schemas/events-api.md)
 *
 * Everything else is a 404. Only GET and HEAD are served, with no body,
 * but for the two POST routes, which are served when the listener is given
 * their hooks.
 * Connections go through the accept loop of httpgate.h first: a request
 * head must be whole within head_timeout_ns of the accept (else the
 * connection is closed), at most max_connections connections may be
 * waiting for theirs and max_per_address of them from one address (past
 * that the oldest waiting one is closed), and a head over the limits is
 * answered by the gate: a target over 2 KiB 414, more than 32 query
 * parameters 400, a head over 8 KiB or 64 fields 431. Every answer closes
 * its connection (no keep-alive: each request's head is read under the
 * deadline). Errors are JSON {"error": "..."} with a 4xx status. Requests
 * are limited per client (its address and its token, or none): past
 * rate_burst at once and rate_per_s sustained, 429 with Retry-After
 * (exporters/ratelimit.h). Wrong tokens have budgets of their own, per
 * address (IPv6: /64) and for all addresses together, each N a minute:
 * past either a token is not even compared, the answer is 429 (an address
 * that used a valid token in the last 10 minutes is exempt from the total,
 * so guessing from many addresses cannot lock out a working scraper).
 *
 * Access: with tokens configured every request needs "Authorization: Bearer
 * TOKEN". An admin token sees everything; a tenant token sees its tenant
 * only: another tenant's resource, or a tenant= naming another tenant, is a
 * 404 (never a 403: the answer must not tell that it exists), and /metrics
 * shows only its resources and no self-metrics. Without tokens everything
 * is open, which tallyd allows on a loopback address only.
 *
 * Reads never touch the aggregator or a collector: the live state comes
 * from the snapshot store, usage from the ledger opened read-only per
 * request (SQLite WAL lets it read beside the writer).
 */
#ifndef TALLY_HTTPD_H
#define TALLY_HTTPD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "state.h"

struct tally_err;
struct httpd;

#define HTTPD_MAX_TOKENS 1024

/* A bearer token: exactly one of admin, tenant, agent, source. An agent's
 * token may only POST /api/v1/ingest, with frames of that agent; a
 * source's only POST /api/v1/events, recorded as that source's. */
struct httpd_token {
	char token[128];
	char tenant[64];             /* "" with admin, agent and source */
	char agent[64];              /* an agent's token: its agent id, else "" */
	char source[64];             /* a source service's token: its name, else "" */
	bool admin;
};

/* A POST route whose body a writer takes: /api/v1/ingest (the aggregator
 * role, daemon/ingest.h; schemas/batch-wire.md, "The ingest protocol") and
 * /api/v1/events (daemon/events.h; schemas/events-api.md), each served when
 * the listener is given its hooks. The listener authenticates the caller
 * by its token (an agent's for ingest; a source's or an admin's for
 * events), reads the body within the limits below and hands it to check();
 * the other side answers, at once or once what the body carries is
 * committed. */
struct httpd_ingest_req {
	/* set by the listener */
	char agent[64];                  /* ingest: the agent of the token; events: the source of
					    the token, "" for an admin's */
	char client[64];                 /* the client's address, for messages */
	const uint8_t *body;
	size_t len;
	int64_t spool_batches, spool_bytes;   /* the Tally-Spool header, -1: not sent */
	/* set by the ingest side */
	unsigned status;                 /* the answer's HTTP status */
	int64_t retry_after_s;           /* > 0: sent as Retry-After */
	char *json;                      /* the answer's body, malloc'd (the listener frees it) */
	void *priv;                      /* the ingest side's, while it holds r */
};
struct httpd_ingest {
	/* On a listener thread once the body is whole: 0 when r is answered
	 * now, 1 when it must wait: the listener then parks the connection and
	 * calls queue(), and done(arg) is called (from any thread) once r is
	 * answered. r stays valid until then. */
	int (*check)(void *ctx, struct httpd_ingest_req *r);
	void (*queue)(void *ctx, struct httpd_ingest_req *r, void (*done)(void *arg), void *arg);
	void *ctx;
	size_t max_request;              /* bytes of one body: 413 above */
	size_t max_pending;              /* bytes of bodies held at once: 429 above */
	int64_t body_timeout_ns;         /* from the head to the whole body */
};

struct httpd_config {
	const char *address;         /* numeric IPv4 or IPv6 */
	uint16_t port;               /* 0: any free port (httpd_port tells which) */
	const struct httpd_token *tokens;  /* copied */
	size_t n_tokens;
	const char *ledger_path;     /* for /api/v1/usage, /api/v1/invoices */
	const char *plan_path;       /* for /api/v1/sla; NULL: that endpoint says none is set */
	unsigned threads;            /* worker threads, default 2 */
	struct alert_store *alerts;  /* for /api/v1/alerts; NULL: no alerting (404) */
	double rate_per_s;           /* requests per second per client; 0: no limit */
	uint32_t rate_burst;         /* at once, per client (>= 1) */
	int64_t head_timeout_ns;     /* accept to a whole request head; 0: HTTPD_HEAD_TIMEOUT_NS */
	unsigned max_connections;    /* waiting for their head, and being answered; 0: the default */
	unsigned max_per_address;    /* the same per client address (IPv6: /64); 0: the default */
	unsigned auth_failures_per_address;  /* wrong tokens a minute per address; 0: the default */
	unsigned auth_failures_total;        /* the same, all addresses together; 0: the default */
	const struct httpd_ingest *ingest;   /* POST /api/v1/ingest; NULL: no such route (404) */
	const struct httpd_ingest *events;   /* POST /api/v1/events; NULL: no such route (404) */
	/* TLS (PEM files, read at start): with tls_cert every connection is
	 * HTTPS; with tls_client_ca an agent must also present a client
	 * certificate signed by one of those CAs to ingest */
	const char *tls_cert, *tls_key, *tls_client_ca;
};

/* The `http:` section of tallyd's config (docs/config.md), as parsed by
 * httpd_section_parse (exporters/httpcfg.c): values, owned here. */
struct httpd_section {
	bool enabled;                     /* default: true when the section is given */
	char address[64];                 /* numeric, default 127.0.0.1 */
	uint16_t port;                    /* default 9464 */
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
	struct httpd_token tokens[HTTPD_MAX_TOKENS];
	size_t n_tokens;
	char tls_cert[PATH_MAX];          /* PEM certificate chain, "" for plain HTTP */
	char tls_key[PATH_MAX];           /* its PEM key */
	char tls_client_ca[PATH_MAX];     /* PEM CAs of agents' client certificates, "" for none */
};

/* Parse the `http:` section sec (NULL: not given, the listener is off) into
 * s; interval_ns is tallyd's, for stale_after's default. Returns 0 or
 * -EINVAL/-ERANGE with "file:line:col: key '...': ..." in e. */
struct cfg_node;
int httpd_section_parse(struct httpd_section *s, const struct cfg_node *sec, int64_t interval_ns,
			struct tally_err *e);

/* How many of tokens t[n] are readers' (admin or tenant), not agents' or
 * sources'. */
size_t httpd_reader_tokens(const struct httpd_token *t, size_t n);

/* The listener's config for section s, pointing into s (which must
 * outlive the start): ledger_path and alerts are what the daemon wires. */
void httpd_section_config(const struct httpd_section *s, const char *ledger_path,
			  struct alert_store *alerts, struct httpd_config *out);

#define HTTPD_HEAD_TIMEOUT_NS (5 * 1000000000LL)
#define HTTPD_MAX_CONNECTIONS 1024u
#define HTTPD_MAX_PER_ADDRESS 32u
#define HTTPD_AUTH_FAILURES_PER_ADDRESS 10u
#define HTTPD_AUTH_FAILURES_TOTAL 100u

/* Start listening. Returns 0, or -errno with a message in e (address in
 * use, bad address). The server reads store until httpd_stop. */
int httpd_start(struct httpd **out, const struct httpd_config *c, struct live_store *store,
		struct tally_err *e);
/* Stop listening, wait for the requests in flight, free everything. */
void httpd_stop(struct httpd *h);
uint16_t httpd_port(const struct httpd *h);

/* SIGHUP: from now on the listener takes these tokens (copied; n_tokens 0:
 * open, which the config allows on loopback only) and serves /api/v1/sla
 * with this plan (NULL: none). Requests under way finish with the ones
 * they started with. Returns 0 or -ENOMEM (nothing changed). */
int httpd_reload(struct httpd *h, const struct httpd_token *tokens, size_t n_tokens, const char *plan_path,
		 struct tally_err *e);

#endif
