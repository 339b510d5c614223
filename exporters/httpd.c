/*
 * httpd.c: the HTTP listener of tallyd: /metrics and the read-only JSON
 * API (see httpd.h for the routes and the access rules).
 *
 * The accept loop in front (httpgate.h) owns the listening socket and
 * every connection until its request head is whole, then hands it to
 * libmicrohttpd, which runs without a listening socket of its own
 * (MHD_USE_NO_LISTEN_SOCKET, connections come through MHD_add_connection)
 * in a small pool of threads with epoll. Every request is answered from
 * its first callback (a GET has no body to wait for), and every answer
 * closes its connection, so each request's head is read under the gate's
 * deadline and libmicrohttpd holds a connection only while it sends.
 * A request takes a reference to the current live snapshot, renders from
 * it without any lock and gives it back, so ingest is never held up by a
 * scrape.
 */
#include "httpd.h"
#include "httpd_internal.h"
#include "alerting.h"
#include "alerts.h"
#include "err.h"
#include "httpgate.h"
#include "log.h"
#include "meter.h"
#include "prom.h"
#include "ratelimit.h"
#include "sbuf.h"
#include "str.h"
#include "tallytime.h"
#include "usage.h"
#include "issue.h"
#include "plan.h"
#include "sla.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPD_MAX_URL 2048              /* bytes of the request target (path and query) */
#define HTTPD_MAX_HEAD (8 * 1024)       /* bytes of request line and header fields */
#define HTTPD_MAX_ARGS 32               /* query parameters: no route knows more than 6 */
#define HTTPD_MAX_FIELDS 64             /* header fields */
/* libmicrohttpd's pool per connection: the head (8 KiB), a record of ~56
 * bytes for each field and parameter (96: 5.3 KiB) and the answer's header
 * lines fit with room to spare. In 0.9.75 a request that overflows it is
 * left without an answer, which the gate's limits above rule out. */
#define HTTPD_CONN_MEMORY (32 * 1024)
#define HTTPD_SEND_TIMEOUT_S 10u        /* libmicrohttpd: a client that reads nothing for this long */
#define HTTPD_LIMIT_CLIENTS 4096      /* clients the request limit tells apart at once */
#define HTTPD_TRUSTED_NS (600 * NS_PER_SEC)  /* a valid token lately: 10 minutes */

/* The response, with one extra header when hname is not NULL. */
enum MHD_Result httpd_send_buf_h(struct MHD_Connection *c, unsigned status, const char *type,
				  char *body, size_t len, const char *hname, const char *hval)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"tally\"");
	if (hname)
		MHD_add_response_header(r, hname, hval);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result httpd_send_buf(struct MHD_Connection *c, unsigned status, const char *type,
				char *body, size_t len)
{
	return httpd_send_buf_h(c, status, type, body, len, NULL, NULL);
}

enum MHD_Result httpd_send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	json_decref(j);
	if (!s)
		return MHD_NO;
	size_t n = strlen(s);
	/* jansson allocates with malloc by default, so MHD may free() it */
	return httpd_send_buf(c, status, "application/json", s, n);
}

enum MHD_Result httpd_send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	json_t *j = json_object();
	json_object_set_new(j, "error", json_string(msg));
	return httpd_send_json(c, status, j);
}

/* Constant-time comparison, so a token cannot be guessed byte by byte from
 * response times. */
static bool token_eq(const char *given, const char *want)
{
	size_t a = strlen(given), b = strlen(want);
	unsigned char d = a != b;
	for (size_t i = 0; i < b; i++)
		d |= (unsigned char)(given[i < a ? i : 0] ^ want[i]);
	return d == 0;
}

/* Who the caller is: *w filled from the token it presented (*presented:
 * it gave one; a wrong one is a failed authentication, no token at all is
 * not a guess). Returns whether the token is one of ours. Reads are open
 * (w->admin) when no reader's token is configured, whatever was presented. */
static bool authenticate_locked(const struct httpd *h, struct MHD_Connection *c, struct who *w,
				bool *presented);

static bool authenticate(struct httpd *h, struct MHD_Connection *c, struct who *w, bool *presented)
{
	pthread_rwlock_rdlock(&h->conf_lock);
	bool found = authenticate_locked(h, c, w, presented);
	pthread_rwlock_unlock(&h->conf_lock);
	return found;
}

static bool authenticate_locked(const struct httpd *h, struct MHD_Connection *c, struct who *w,
				bool *presented)
{
	w->admin = !h->n_readers;
	w->admin_token = false;
	w->tenant = NULL;
	w->agent[0] = w->source[0] = '\0';
	w->token = -1;
	*presented = false;
	if (!h->n_tokens)
		return false;
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!a || strncasecmp(a, "Bearer ", 7))
		return false;
	a += 7;
	while (*a == ' ')
		a++;
	if (!*a)
		return false;
	*presented = true;
	if (strlen(a) >= sizeof(h->tokens[0].token))
		return false;
	const struct httpd_token *found = NULL;
	for (size_t i = 0; i < h->n_tokens; i++)
		if (token_eq(a, h->tokens[i].token) && !found)
			found = &h->tokens[i];
	if (!found)
		return false;
	w->token = (int)(found - h->tokens);
	if (found->agent[0] || found->source[0]) {
		str_copy(w->agent, found->agent, sizeof(w->agent));
		str_copy(w->source, found->source, sizeof(w->source));
		return true;
	}
	w->admin = w->admin_token = found->admin;
	if (!found->admin) {
		str_copy(w->tenant_buf, found->tenant, sizeof(w->tenant_buf));
		w->tenant = w->tenant_buf;
	}
	return true;
}

/* The client as the limits know it: an IPv4 address, an IPv6 client's /64
 * ("2001:db8:1:2::/64": one site can have all of it), IPv4-mapped IPv6 as
 * IPv4; "?" when unknown. */
void httpd_client_key(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char a[INET6_ADDRSTRLEN] = "?";
	str_copy(out, "?", len);
	if (sa && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
	} else if (sa && sa->sa_family == AF_INET6) {
		struct in6_addr v6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&v6)) {
			inet_ntop(AF_INET, &v6.s6_addr[12], out, (socklen_t)len);
			return;
		}
		memset(&v6.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &v6, a, sizeof(a));
		snprintf(out, len, "%s/64", a);
	}
}

/* Queue a 429 saying msg and when to come back (wait_ns, rounded up to
 * whole seconds, also as Retry-After). */
enum MHD_Result httpd_too_many(struct MHD_Connection *c, int64_t wait_ns, const char *msg)
{
	char secs[24], text[256];
	snprintf(secs, sizeof(secs), "%lld", (long long)((wait_ns + NS_PER_SEC - 1) / NS_PER_SEC));
	snprintf(text, sizeof(text), "%s; retry after %s s", msg, secs);
	json_t *j = json_object();
	json_object_set_new(j, "error", json_string(text));
	char *body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return body ? httpd_send_buf_h(c, MHD_HTTP_TOO_MANY_REQUESTS, "application/json", body, strlen(body),
				 MHD_HTTP_HEADER_RETRY_AFTER, secs)
		    : MHD_NO;
}

/* The request limit (http.rate_limit): per client address and token, so
 * one client cannot crowd out the others. false: go on; else the 429 was
 * queued (its result in *ret). */
static bool limited(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *addr,
		    int64_t now, enum MHD_Result *ret)
{
	if (!h->limit)
		return false;
	char key[96], msg[160];
	snprintf(key, sizeof(key), "%s|%d", addr, w->token);
	int64_t wait = ratelimit_take(h->limit, key, now);
	if (!wait)
		return false;
	snprintf(msg, sizeof(msg), "too many requests: at most %g per second (%u at once) per client",
		 h->limit_per_s, (unsigned)h->limit_burst);
	*ret = httpd_too_many(c, wait, msg);
	return true;
}

/* Failed authentications (http.auth_failures_per_address, _total): before
 * a token is even compared, the address must have some of its budget left,
 * and so must all addresses together unless this one used a valid token in
 * the last HTTPD_TRUSTED_NS (so guessing from many addresses does not lock
 * out a scraper that has been authenticating all along). A refusal here
 * says nothing about the token: it was not looked at. false: go on. */
static bool auth_limited(struct httpd *h, struct MHD_Connection *c, const char *addr, int64_t now,
			 enum MHD_Result *ret)
{
	char msg[200];
	int64_t wait = ratelimit_peek(h->fail_addr, addr, now);
	if (wait) {
		snprintf(msg, sizeof(msg), "too many failed authentications from this address: at most"
			 " %u a minute", h->fail_per_addr);
	} else if (!ratelimit_peek(h->trusted, addr, now) &&
		   (wait = ratelimit_peek(h->fail_all, "all", now))) {
		snprintf(msg, sizeof(msg), "too many failed authentications: at most %u a minute from"
			 " all addresses together", h->fail_total);
	} else {
		return false;
	}
	*ret = httpd_too_many(c, wait, msg);
	return true;
}

/* Refuse query parameters a route does not know: a typo must not silently
 * widen or narrow an answer. */
struct argcheck {
	const char *const *known;
	char bad[64];
};

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct argcheck *ac = cls;
	(void)kind;
	(void)value;
	for (size_t i = 0; ac->known[i]; i++)
		if (!strcmp(key, ac->known[i]))
			return MHD_YES;
	str_copy(ac->bad, key, sizeof(ac->bad));
	return MHD_NO;
}

bool httpd_args_ok(struct MHD_Connection *c, const char *const *known, char *bad, size_t len)
{
	struct argcheck ac = { .known = known };
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, arg_iter, &ac);
	if (ac.bad[0]) {
		str_copy(bad, ac.bad, len);
		return false;
	}
	return true;
}

static void page_put(void *cls)
{
	struct page *p = cls;
	struct httpd *h = p->h;
	pthread_mutex_lock(&h->cache_lock);
	int last = --p->refs == 0;
	pthread_mutex_unlock(&h->cache_lock);
	if (last) {
		free(p->text);
		free(p);
	}
}

static void listener_counts(struct httpd *h, struct prom_listener *l)
{
	struct httpgate_stats gs = { 0 };
	if (h->gate)
		httpgate_get_stats(h->gate, &gs);
	pthread_mutex_lock(&h->stats_lock);
	l->table_full = h->mhd_refused;
	memcpy(l->refused, h->post_refused, sizeof(l->refused));
	pthread_mutex_unlock(&h->stats_lock);
	pthread_mutex_lock(&h->watch_lock);
	l->swept = h->swept;
	pthread_mutex_unlock(&h->watch_lock);
	l->handed_over = gs.handed_over - (l->table_full < gs.handed_over ? l->table_full : gs.handed_over);
	l->too_large = gs.refused;
	l->timed_out = gs.timed_out;
	l->evicted = gs.evicted;
	l->client_closed = gs.client_closed;
	l->accept_failures = gs.accept_failures;
	for (int r = 0; r < 2; r++)
		l->has_post[r] = h->post[r].hooks != NULL;
}

/* The admin page of st in format fmt with a reference for the caller:
 * the cached one when it was rendered from st, else a new one, cached
 * unless a newer one got there first. NULL when out of memory. */
static struct page *admin_page(struct httpd *h, const struct live_state *st, enum prom_format fmt)
{
	pthread_mutex_lock(&h->cache_lock);
	struct page *p = h->page[fmt];
	if (p && p->gen == st->snap.gen) {
		p->refs++;
		pthread_mutex_unlock(&h->cache_lock);
		return p;
	}
	pthread_mutex_unlock(&h->cache_lock);

	struct sbuf b = { 0 };
	if (!(p = calloc(1, sizeof(*p))) || prom_render(st, fmt, NULL, &b)) {
		free(p);
		sbuf_release(&b);
		return NULL;
	}
	p->h = h;
	p->gen = st->snap.gen;
	p->text = b.p;
	p->len = b.len;
	p->refs = 1;
	struct page *old = NULL;
	pthread_mutex_lock(&h->cache_lock);
	if (!h->page[fmt] || h->page[fmt]->gen < p->gen) {
		old = h->page[fmt];
		h->page[fmt] = p;
		p->refs++;
	}
	pthread_mutex_unlock(&h->cache_lock);
	if (old)
		page_put(old);
	return p;
}

static enum MHD_Result get_metrics(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *rest)
{
	static const char *const known[] = { NULL };
	char bad[64];
	if (!httpd_args_ok(c, known, bad, sizeof(bad)))
		return httpd_send_error(c, MHD_HTTP_BAD_REQUEST, "/metrics takes no query parameters");
	enum prom_format fmt = prom_negotiate(
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
	struct live_state *st = live_acquire(h->store);
	if (!st)
		return httpd_send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no data yet: the first cycle is not committed");
	if (w->admin) {
		/* the snapshot's page, rendered once, and the listener's own
		 * counts as of now */
		struct page *p = admin_page(h, st, fmt);
		live_put(h->store, st);
		if (!p)
			return httpd_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		struct sbuf b = { 0 };
		struct prom_listener ls = { 0 };
		sbuf_add(&b, p->text, p->len);
		page_put(p);
		listener_counts(h, &ls);
		prom_render_listener(&ls, fmt, &b);
		if (b.oom) {
			sbuf_release(&b);
			return httpd_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		}
		return httpd_send_buf(c, MHD_HTTP_OK, fmt == PROM_OPENMETRICS ? PROM_OPENMETRICS_TYPE : PROM_TEXT_TYPE,
				      b.p, b.len);
	}
	struct sbuf b = { 0 };
	int rc = prom_render(st, fmt, w->tenant, &b);
	live_put(h->store, st);
	if (rc) {
		sbuf_release(&b);
		return httpd_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	return httpd_send_buf(c, MHD_HTTP_OK, fmt == PROM_OPENMETRICS ? PROM_OPENMETRICS_TYPE : PROM_TEXT_TYPE,
			b.p, b.len);
}

static enum MHD_Result route(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *url);

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_data_size,
			      void **con_cls)
{
	struct httpd *h = cls;
	struct who w;
	(void)version;
	if (*con_cls)   /* a POST request's body, or its answer */
		return httpapi_post(h, NULL, c, NULL, upload_data, upload_data_size, con_cls);
	struct httpd_post *post = NULL;
	for (size_t i = 0; i < sizeof(h->post) / sizeof(h->post[0]); i++)
		if (h->post[i].hooks && !strcmp(url, h->post[i].path))
			post = &h->post[i];
	if (post && strcmp(method, MHD_HTTP_METHOD_POST)) {
		char msg[64];
		snprintf(msg, sizeof(msg), "%s takes POST only", post->path);
		return httpd_send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, msg);
	}
	if (!post) {
		httpd_watch_set(c, 0);   /* the head is whole: answered at once */
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return httpd_send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: only GET and HEAD");
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if ((cl && strcmp(cl, "0")) || *upload_data_size ||
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
			return httpd_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "a GET takes no body");
	}
	if (strlen(url) > HTTPD_MAX_URL)
		return httpd_send_error(c, MHD_HTTP_URI_TOO_LONG, "URL too long");
	char addr[INET6_ADDRSTRLEN + 4];
	enum MHD_Result ret;
	bool presented;
	int64_t now = time_mono_ns();
	httpd_client_key(c, addr, sizeof(addr));
	pthread_rwlock_rdlock(&h->conf_lock);
	bool closed = h->n_tokens > 0;
	pthread_rwlock_unlock(&h->conf_lock);
	if (closed && MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION) &&
	    auth_limited(h, c, addr, now, &ret))
		return ret;
	bool found = authenticate(h, c, &w, &presented);
	if (presented && !found) {
		ratelimit_take(h->fail_addr, addr, now);
		ratelimit_take(h->fail_all, "all", now);
	} else if (presented) {
		ratelimit_note(h->trusted, addr, now);
	}
	if (post)   /* its own limits: the writer's back-pressure (httpapi.c) */
		return httpapi_post(h, post, c, &w, upload_data, upload_data_size, con_cls);
	if (limited(h, c, &w, addr, now, &ret))
		return ret;
	if (w.agent[0])
		return httpd_send_error(c, MHD_HTTP_FORBIDDEN, "an agent's token may only POST /api/v1/ingest");
	if (w.source[0])
		return httpd_send_error(c, MHD_HTTP_FORBIDDEN, "a source's token may only POST /api/v1/events");
	if (!w.admin && !w.tenant)
		return httpd_send_error(c, MHD_HTTP_UNAUTHORIZED, "a valid bearer token is required");
	return route(h, c, &w, url);
}

/* The routes: an exact path, or a prefix followed by one path segment of
 * 1 to max_rest bytes (no '/'). Everything else is a 404. */
static const struct httpd_route {
	const char *path;
	bool prefix;
	size_t max_rest;
	httpd_route_fn fn;
} routes[] = {
	{ "/metrics", false, 0, get_metrics },
	{ "/api/v1/resources", false, 0, httpapi_resources },
	{ "/api/v1/resources/", true, TALLY_ID_MAX - 1, httpapi_resource },
	{ "/api/v1/usage", false, 0, httpapi_usage },
	{ "/api/v1/sla", false, 0, httpapi_sla },
	{ "/api/v1/invoices", false, 0, httpapi_invoices },
	{ "/api/v1/invoices/", true, 95, httpapi_invoices },
	{ "/api/v1/alerts", false, 0, httpapi_alerts },   /* 404 when no alert store */
};

static enum MHD_Result route(struct httpd *h, struct MHD_Connection *c, const struct who *w, const char *url)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct httpd_route *r = &routes[i];
		size_t n = strlen(r->path);
		if (!r->prefix && !strcmp(url, r->path)) {
			if (r->fn == httpapi_alerts && !h->alerts)
				break;
			return r->fn(h, c, w, NULL);
		}
		if (r->prefix && !strncmp(url, r->path, n) && url[n] && !strchr(url + n, '/') &&
		    strlen(url + n) <= r->max_rest)
			return r->fn(h, c, w, url + n);
	}
	return httpd_send_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
}

/* ---- the connections libmicrohttpd holds, and their deadlines ----
 *
 * The gate reads a plain HTTP head before the hand-over; libmicrohttpd
 * then holds the connection while the body arrives (ingest) and while a
 * TLS connection's handshake and head arrive. Its own timeout is an idle
 * timeout (a client trickling a byte every few seconds is never closed), so
 * each connection has a deadline here: its head within head_timeout of the
 * hand-over, an ingest body within the ingest's body_timeout of its head.
 * The sweeper shuts down the socket of a connection past its deadline;
 * libmicrohttpd then sees the end and closes it. libmicrohttpd tells us of
 * a closed connection before it closes the socket, and the entry leaves the
 * list under watch_lock, so the sweeper never touches a reused descriptor. */

static void watch_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			 enum MHD_ConnectionNotificationCode code)
{
	struct httpd *h = cls;
	struct conn_watch *w = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !(w = calloc(1, sizeof(*w))))
			return;   /* out of memory: this one has libmicrohttpd's idle timeout only */
		w->fd = ci->connect_fd;
		w->h = h;
		w->deadline_ns = time_mono_ns() + h->head_timeout_ns;
		pthread_mutex_lock(&h->watch_lock);
		w->next = h->watch;
		if (h->watch)
			h->watch->prev = w;
		h->watch = w;
		pthread_mutex_unlock(&h->watch_lock);
		*socket_context = w;
		return;
	}
	if (!w)
		return;
	pthread_mutex_lock(&h->watch_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		h->watch = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&h->watch_lock);
	free(w);
	*socket_context = NULL;
}

void httpd_watch_set(struct MHD_Connection *c, int64_t deadline_ns)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_watch *w = ci ? ci->socket_context : NULL;
	if (!w)
		return;
	pthread_mutex_lock(&w->h->watch_lock);
	w->deadline_ns = deadline_ns;
	pthread_mutex_unlock(&w->h->watch_lock);
}

static void *sweep_main(void *arg)
{
	struct httpd *h = arg;
	pthread_mutex_lock(&h->sweep_lock);
	while (!h->sweep_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->sweep_cv, &h->sweep_lock, &ts);
		if (h->sweep_stop)
			break;
		int64_t now = time_mono_ns();
		pthread_mutex_lock(&h->watch_lock);
		for (struct conn_watch *w = h->watch; w; w = w->next)
			if (w->deadline_ns && now >= w->deadline_ns && !w->closing) {
				shutdown(w->fd, SHUT_RDWR);
				w->closing = true;
				h->swept++;
			}
		pthread_mutex_unlock(&h->watch_lock);
	}
	pthread_mutex_unlock(&h->sweep_lock);
	return NULL;
}

/* libmicrohttpd is done with a request: an ingest request's state goes. */
static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)c;
	(void)toe;
	if (*con_cls)
		httpapi_post_done(cls, *con_cls);
	*con_cls = NULL;
}

/* A whole PEM file, NUL-terminated, in *out (malloc'd). */
static int read_pem(const char *path, char **out, struct tally_err *e)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	*out = NULL;
	if (!f)
		return err_set(e, -errno, "http: cannot read '%s': %s", path, strerror(errno));
	for (;;) {
		if (cap - len < 4096) {
			if (cap > (1u << 20)) {
				free(buf);
				fclose(f);
				return err_set(e, -EFBIG, "http: '%s' is larger than 1 MiB: not a PEM file", path);
			}
			char *p = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!p) {
				free(buf);
				fclose(f);
				return err_set(e, -ENOMEM, "http: out of memory reading '%s'", path);
			}
			buf = p;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return err_set(e, -EIO, "http: cannot read '%s'", path);
	}
	buf[len] = '\0';
	if (!strstr(buf, "-----BEGIN ")) {
		free(buf);
		return err_set(e, -EINVAL, "http: '%s' holds no PEM block (-----BEGIN ...)", path);
	}
	*out = buf;
	return 0;
}

/* The gate's hand-over: libmicrohttpd owns fd from here, and closes it
 * itself when its tables are full. */
static void handoff(void *ctx, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct httpd *h = ctx;
	if (MHD_add_connection(h->mhd, fd, sa, len) != MHD_YES) {
		pthread_mutex_lock(&h->stats_lock);
		h->mhd_refused++;
		pthread_mutex_unlock(&h->stats_lock);
	}
}

/* A non-blocking socket listening on address:port in *fd, the port in *port. */
static int listen_on(const struct httpd_config *cfg, int *fd, uint16_t *port, struct tally_err *e)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(cfg->port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, cfg->address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(cfg->port);
		len = sizeof(*s6);
	} else {
		return err_set(e, -EINVAL, "http: address '%s' is not a numeric IPv4 or IPv6 address",
			       cfg->address);
	}
	*fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return err_set(e, -errno, "http: cannot make a socket: %s", strerror(errno));
	setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(*fd, (struct sockaddr *)&ss, len) || listen(*fd, SOMAXCONN)) {
		int err = errno;
		close(*fd);
		*fd = -1;
		return err_set(e, -err, "http: cannot listen on %s port %u: %s (in use, or not an address"
			       " of this host)", cfg->address, (unsigned)cfg->port, strerror(err));
	}
	len = sizeof(ss);
	*port = getsockname(*fd, (struct sockaddr *)&ss, &len) ? cfg->port
		: ntohs(ss.ss_family == AF_INET6 ? s6->sin6_port : s4->sin_port);
	return 0;
}

/* The listener's locks, all or none: 0, or -ENOMEM with none left made. */
static void locks_destroy(struct httpd *h, int n);

static int locks_init(struct httpd *h)
{
	int n = 0;
	if (!pthread_mutex_init(&h->cache_lock, NULL) && ++n && !pthread_mutex_init(&h->stats_lock, NULL) && ++n &&
	    !pthread_rwlock_init(&h->conf_lock, NULL) && ++n && !pthread_mutex_init(&h->ingest_lock, NULL) && ++n &&
	    !pthread_mutex_init(&h->watch_lock, NULL) && ++n && !pthread_mutex_init(&h->sweep_lock, NULL) && ++n &&
	    !pthread_cond_init(&h->sweep_cv, NULL))
		return 0;
	locks_destroy(h, n);
	return -ENOMEM;
}

/* The first n locks locks_init() makes. */
static void locks_destroy(struct httpd *h, int n)
{
	if (n > 6)
		pthread_cond_destroy(&h->sweep_cv);
	if (n > 5)
		pthread_mutex_destroy(&h->sweep_lock);
	if (n > 4)
		pthread_mutex_destroy(&h->watch_lock);
	if (n > 3)
		pthread_mutex_destroy(&h->ingest_lock);
	if (n > 2)
		pthread_rwlock_destroy(&h->conf_lock);
	if (n > 1)
		pthread_mutex_destroy(&h->stats_lock);
	if (n > 0)
		pthread_mutex_destroy(&h->cache_lock);
}

int httpd_start(struct httpd **out, const struct httpd_config *cfg, struct live_store *store,
		struct tally_err *e)
{
	struct httpd *h = calloc(1, sizeof(*h));
	int rc, lfd = -1;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	if (locks_init(h)) {
		free(h);
		return -ENOMEM;
	}
	unsigned max_conn = cfg->max_connections ? cfg->max_connections : HTTPD_MAX_CONNECTIONS;
	unsigned per_addr = cfg->max_per_address ? cfg->max_per_address : HTTPD_MAX_PER_ADDRESS;
	int64_t head_timeout = cfg->head_timeout_ns > 0 ? cfg->head_timeout_ns : HTTPD_HEAD_TIMEOUT_NS;
	h->store = store;
	h->alerts = cfg->alerts;
	h->head_timeout_ns = head_timeout;
	h->post[HTTPD_POST_INGEST].path = "/api/v1/ingest";
	h->post[HTTPD_POST_INGEST].section = "ingest";
	h->post[HTTPD_POST_EVENTS].path = "/api/v1/events";
	h->post[HTTPD_POST_EVENTS].section = "events";
	if (cfg->ingest) {
		h->post[HTTPD_POST_INGEST].hooks_copy = *cfg->ingest;
		h->post[HTTPD_POST_INGEST].hooks = &h->post[HTTPD_POST_INGEST].hooks_copy;
	}
	if (cfg->events) {
		h->post[HTTPD_POST_EVENTS].hooks_copy = *cfg->events;
		h->post[HTTPD_POST_EVENTS].hooks = &h->post[HTTPD_POST_EVENTS].hooks_copy;
	}
	if (cfg->ingest || cfg->events) {
		/* five lines at once per client and status, then one a minute */
		if (!(h->ingest_logs = ratelimit_new(1.0 / 60, 5, HTTPD_LIMIT_CLIENTS))) {
			rc = err_set(e, -ENOMEM, "http: out of memory");
			goto fail;
		}
	}
	if (cfg->tls_cert) {
		if ((rc = read_pem(cfg->tls_cert, &h->tls_cert, e)) || (rc = read_pem(cfg->tls_key, &h->tls_key, e)) ||
		    (cfg->tls_client_ca && (rc = read_pem(cfg->tls_client_ca, &h->tls_ca, e))))
			goto fail;
		h->tls = true;
		h->client_ca = cfg->tls_client_ca != NULL;
	}
	if (cfg->rate_per_s > 0) {
		h->limit_per_s = cfg->rate_per_s;
		h->limit_burst = cfg->rate_burst ? cfg->rate_burst : 1;
		if (!(h->limit = ratelimit_new(h->limit_per_s, h->limit_burst, HTTPD_LIMIT_CLIENTS))) {
			rc = err_set(e, -ENOMEM, "http: out of memory");
			goto fail;
		}
	}
	h->fail_per_addr = cfg->auth_failures_per_address ? cfg->auth_failures_per_address
			   : HTTPD_AUTH_FAILURES_PER_ADDRESS;
	h->fail_total = cfg->auth_failures_total ? cfg->auth_failures_total : HTTPD_AUTH_FAILURES_TOTAL;
	/* N a minute: N at once, then one every 60/N s */
	if (!(h->fail_addr = ratelimit_new(h->fail_per_addr / 60.0, h->fail_per_addr, HTTPD_LIMIT_CLIENTS)) ||
	    !(h->fail_all = ratelimit_new(h->fail_total / 60.0, h->fail_total, 1)) ||
	    !(h->trusted = ratelimit_new((double)NS_PER_SEC / HTTPD_TRUSTED_NS, 1, HTTPD_LIMIT_CLIENTS))) {
		rc = err_set(e, -ENOMEM, "http: out of memory");
		goto fail;
	}
	h->n_tokens = cfg->n_tokens;
	h->n_readers = httpd_reader_tokens(cfg->tokens, cfg->n_tokens);
	if (cfg->n_tokens) {
		h->tokens = malloc(cfg->n_tokens * sizeof(*h->tokens));
		if (!h->tokens) {
			rc = -ENOMEM;
			goto fail;
		}
		memcpy(h->tokens, cfg->tokens, cfg->n_tokens * sizeof(*h->tokens));
	}
	if (!(h->ledger_path = strdup(cfg->ledger_path ? cfg->ledger_path : "")) ||
	    (cfg->plan_path && !(h->plan_path = strdup(cfg->plan_path)))) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = listen_on(cfg, &lfd, &h->port, e)))
		goto fail;
	/* No listening socket of its own: the gate accepts. ITC so that a
	 * connection added from the gate's thread is served at once; an ingest
	 * request waiting for the aggregator's commit is suspended (it holds
	 * no thread) and resumed by the aggregator's thread. */
	struct MHD_OptionItem opt[16];
	size_t no = 0;
#define OPT(o, v, p) (opt[no++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) })
	OPT(MHD_OPTION_THREAD_POOL_SIZE, cfg->threads ? cfg->threads : 2, NULL);
	OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONN_MEMORY, NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, max_conn, NULL);
	OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_addr, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_SEND_TIMEOUT_S, NULL);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)watch_notify, h);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_done, h);
	if (h->tls) {
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key);
		if (h->tls_ca)
			OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, h->tls_ca);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET;
	if (cfg->ingest || cfg->events)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	if (h->tls)
		flags |= MHD_USE_TLS;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_ARRAY, opt, MHD_OPTION_END);
	if (!h->mhd) {
		close(lfd);
		rc = err_set(e, -EINVAL, "http: libmicrohttpd did not start%s", h->tls ? " (is the TLS"
			     " certificate a PEM certificate chain and the key its PEM private key?)" : "");
		goto fail;
	}
	if ((rc = pthread_create(&h->sweeper, NULL, sweep_main, h))) {
		close(lfd);
		rc = err_set(e, -rc, "http: cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	h->sweeper_started = true;
	struct httpgate_config gc = {
		.listen_fd = lfd, .max_pending = max_conn, .max_per_address = per_addr,
		.head_timeout_ns = head_timeout,
		.limits = { .max_head = HTTPD_MAX_HEAD, .max_target = HTTPD_MAX_URL,
			    .max_args = HTTPD_MAX_ARGS, .max_fields = HTTPD_MAX_FIELDS },
		.tls = h->tls,
		.handoff = handoff, .ctx = h,
	};
	if ((rc = httpgate_start(&h->gate, &gc, e)))   /* closes lfd when it fails */
		goto fail;
	*out = h;
	return 0;
fail:
	httpd_stop(h);
	return rc;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	if (h->gate) {
		struct httpgate_stats st;
		httpgate_get_stats(h->gate, &st);
		httpgate_stop(h->gate);   /* no more hand-overs */
		log_msg(LOG_INFO, "http: %llu connections accepted: %llu handed over (%llu of them refused"
			" by full tables), %llu refused as too large, %llu timed out before their request"
			" was whole, %llu closed for newer ones, %llu closed by the client; %llu accept"
			" failures", (unsigned long long)st.accepted, (unsigned long long)st.handed_over,
			(unsigned long long)h->mhd_refused, (unsigned long long)st.refused,
			(unsigned long long)st.timed_out, (unsigned long long)st.evicted,
			(unsigned long long)st.client_closed, (unsigned long long)st.accept_failures);
	}
	if (h->mhd)
		MHD_stop_daemon(h->mhd);   /* every response, and so every page reference, is gone */
	if (h->sweeper_started) {
		pthread_mutex_lock(&h->sweep_lock);
		h->sweep_stop = true;
		pthread_cond_signal(&h->sweep_cv);
		pthread_mutex_unlock(&h->sweep_lock);
		pthread_join(h->sweeper, NULL);
	}
	if (h->swept)
		log_msg(LOG_INFO, "http: %llu connections closed past their deadline (head or body too slow)",
			(unsigned long long)h->swept);
	ratelimit_free(h->ingest_logs);
	if (h->tls_key)
		explicit_bzero(h->tls_key, strlen(h->tls_key));
	free(h->tls_key);
	free(h->tls_cert);
	free(h->tls_ca);
	for (int i = 0; i < 2; i++)
		if (h->page[i])
			page_put(h->page[i]);
	locks_destroy(h, 7);
	if (h->tokens)
		memset(h->tokens, 0, h->n_tokens * sizeof(*h->tokens));
	free(h->tokens);
	free(h->ledger_path);
	free(h->plan_path);
	ratelimit_free(h->limit);
	ratelimit_free(h->fail_addr);
	ratelimit_free(h->fail_all);
	ratelimit_free(h->trusted);
	free(h);
}

void httpd_plan_path(struct httpd *h, char *out, size_t len)
{
	pthread_rwlock_rdlock(&h->conf_lock);
	str_copy(out, h->plan_path ? h->plan_path : "", len);
	pthread_rwlock_unlock(&h->conf_lock);
}

uint16_t httpd_port(const struct httpd *h)
{
	return h->port;
}

int httpd_reload(struct httpd *h, const struct httpd_token *tokens, size_t n_tokens, const char *plan_path,
		 struct tally_err *e)
{
	struct httpd_token *t = NULL;
	char *plan = NULL;
	if ((n_tokens && !(t = malloc(n_tokens * sizeof(*t)))) || (plan_path && !(plan = strdup(plan_path)))) {
		free(t);
		return err_set(e, -ENOMEM, "http: out of memory reloading the tokens");
	}
	if (n_tokens)
		memcpy(t, tokens, n_tokens * sizeof(*t));
	pthread_rwlock_wrlock(&h->conf_lock);
	struct httpd_token *old = h->tokens;
	size_t n_old = h->n_tokens;
	char *old_plan = h->plan_path;
	h->tokens = t;
	h->n_tokens = n_tokens;
	h->n_readers = httpd_reader_tokens(t, n_tokens);
	h->plan_path = plan;
	pthread_rwlock_unlock(&h->conf_lock);
	if (old)
		explicit_bzero(old, n_old * sizeof(*old));
	free(old);
	free(old_plan);
	return 0;
}
