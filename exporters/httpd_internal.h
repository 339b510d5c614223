/*
 * httpd_internal.h: what the listener (httpd.c: accept, authentication,
 * limits, routing, /metrics) and the JSON API's handlers (httpapi.c) share.
 * Not for use outside exporters/.
 */
#ifndef TALLY_HTTPD_INTERNAL_H
#define TALLY_HTTPD_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "alerting.h"
#include "httpd.h"
#include "prom.h"
#include "state.h"

/* A rendered admin /metrics page, shared by every scrape of the same
 * snapshot: with several Prometheus servers scraping, the snapshot is
 * rendered once and each scrape only sends the bytes. */
struct page {
	int refs;                    /* under httpd.cache_lock: the cache's and each response's */
	struct httpd *h;
	uint64_t gen;                /* live_state.snap.gen it was rendered from */
	char *text;
	size_t len;
};

/* A connection libmicrohttpd holds, with the time by which it must have
 * moved on (its head whole, or its body): past it the sweeper shuts its
 * socket down, which libmicrohttpd then closes. Under httpd.watch_lock. */
struct httpd;
struct conn_watch {
	struct conn_watch *prev, *next;
	struct httpd *h;
	int fd;
	int64_t deadline_ns;         /* monotonic; 0: none (answering, or waiting for the aggregator) */
	bool closing;                /* shut down by the sweeper */
};

struct httpd {
	struct MHD_Daemon *mhd;
	struct httpgate *gate;
	pthread_mutex_t stats_lock;
	uint64_t mhd_refused;        /* handed over but refused by libmicrohttpd (its tables full) */
	uint64_t post_refused[2][PROM_N_REFUSAL];   /* by HTTPD_POST_* and PROM_REFUSAL_STATUSES */
	pthread_mutex_t cache_lock;
	struct page *page[2];        /* by enum prom_format */
	struct live_store *store;
	/* what a reload (httpd_reload) replaces: read under conf_lock */
	pthread_rwlock_t conf_lock;
	struct httpd_token *tokens;
	size_t n_tokens;
	char *plan_path;             /* NULL: no plan, /api/v1/sla says so */
	char *ledger_path;
	uint16_t port;
	struct alert_store *alerts;
	struct ratelimit *limit;     /* NULL: no limit */
	double limit_per_s;
	uint32_t limit_burst;
	/* failed authentications: per address, all together, and the
	 * addresses that used a valid token lately (exempt from the total) */
	struct ratelimit *fail_addr, *fail_all, *trusted;
	unsigned fail_per_addr, fail_total;   /* a minute */
	size_t n_readers;            /* tokens that read (admin, tenant): with none, reads are open */
	/* POST /api/v1/ingest and /api/v1/events (HTTPD_POST_*; hooks NULL:
	 * no such route) */
	struct httpd_post {
		const char *path;            /* "/api/v1/ingest" */
		const char *section;         /* its config section, for messages: "ingest" */
		const struct httpd_ingest *hooks;   /* &hooks_copy, or NULL */
		struct httpd_ingest hooks_copy;
		size_t pending;              /* bytes of bodies held now (ingest_lock) */
	} post[2];
	pthread_mutex_t ingest_lock;
	struct ratelimit *ingest_logs;   /* refusal lines per client and status */
	/* TLS: the PEM files as read at start; client_ca: agents need a certificate */
	bool tls, client_ca;
	char *tls_cert, *tls_key, *tls_ca;
	/* the deadlines of the connections libmicrohttpd holds */
	int64_t head_timeout_ns;
	pthread_mutex_t watch_lock;
	struct conn_watch *watch;
	pthread_t sweeper;
	bool sweeper_started;
	pthread_mutex_t sweep_lock;
	pthread_cond_t sweep_cv;
	bool sweep_stop;
	uint64_t swept;              /* connections shut down past their deadline */
};

enum { HTTPD_POST_INGEST, HTTPD_POST_EVENTS };

/* who is asking: admin, or one tenant */
struct who {
	bool admin;
	const char *tenant;          /* NULL, or tenant_buf */
	char tenant_buf[64];         /* a copy: a reload may replace the tokens mid-request */
	char agent[64];              /* an agent's token: its agent id (it may only ingest), else "" */
	char source[64];             /* a source's token: its name (it may only post events), else "" */
	bool admin_token;            /* an admin's token was given (admin is also true when reads are open) */
	int token;                   /* index into tokens, -1: none or not valid */
};

/* Answers; every answer closes its connection. send_buf takes buf
 * (malloc'd: freed with the response, or now on failure); one extra
 * header when hname is not NULL; send_json takes j; errors are
 * {"error": msg}. */
enum MHD_Result httpd_send_buf_h(struct MHD_Connection *c, unsigned status, const char *type, char *buf,
				 size_t len, const char *hname, const char *hvalue);
enum MHD_Result httpd_send_buf(struct MHD_Connection *c, unsigned status, const char *type, char *buf,
			       size_t len);
enum MHD_Result httpd_send_json(struct MHD_Connection *c, unsigned status, json_t *j);
enum MHD_Result httpd_send_error(struct MHD_Connection *c, unsigned status, const char *msg);
/* false, with the first unknown query parameter in bad, when the request
 * has one that is not in known (NULL-terminated). */
bool httpd_args_ok(struct MHD_Connection *c, const char *const *known, char *bad, size_t len);
/* http.plan as it is now (a reload may change it), "" for none. */
void httpd_plan_path(struct httpd *h, char *out, size_t len);

/* A route: rest is what follows a prefix route's path (NULL for an exact
 * route). The JSON API's (httpapi.c): */
typedef enum MHD_Result (*httpd_route_fn)(struct httpd *h, struct MHD_Connection *c, const struct who *w,
					  const char *rest);
enum MHD_Result httpapi_resources(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest);
enum MHD_Result httpapi_resource(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *uuid);
enum MHD_Result httpapi_usage(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest);
enum MHD_Result httpapi_sla(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest);
enum MHD_Result httpapi_invoices(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *which);
enum MHD_Result httpapi_alerts(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest);

/* POST /api/v1/ingest and /api/v1/events, called for every callback of the
 * request (httpapi.c): at the first (*con_cls NULL) with its route p and w
 * the authenticated caller, after with both NULL. */
enum MHD_Result httpapi_post(struct httpd *h, struct httpd_post *p, struct MHD_Connection *c, const struct who *w,
			     const char *upload_data, size_t *upload_data_size, void **con_cls);
/* The end of such a request (libmicrohttpd's completion callback). */
void httpapi_post_done(struct httpd *h, void *con_cls);
/* A connection's deadline (its watch's); 0 clears it. */
void httpd_watch_set(struct MHD_Connection *c, int64_t deadline_ns);
/* 429 with Retry-After, for the request limits and the ingest's budget. */
enum MHD_Result httpd_too_many(struct MHD_Connection *c, int64_t wait_ns, const char *msg);
/* The client as the limits know it (an IPv6 client's /64). */
void httpd_client_key(struct MHD_Connection *c, char *out, size_t len);

#endif
