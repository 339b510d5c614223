/*
 * httpgate.c: the accept loop in front of libmicrohttpd (see httpgate.h for
 * what it enforces and why).
 *
 * One thread, one epoll set: the listening socket (level-triggered, taken
 * out while accept() is backing off), an eventfd that stops the thread, and
 * every pending connection (edge-triggered: its bytes stay in the kernel
 * until libmicrohttpd reads them, so only new bytes make a new event). The
 * pending connections live in a fixed table of max_pending slots; the
 * searches over it (an address's count, the oldest, the next deadline) are
 * linear, which at 1024 slots costs microseconds and keeps the table one
 * plain array.
 */
#include "httpgate.h"
#include "err.h"
#include "log.h"
#include "tallytime.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EV_LISTEN 0u
#define EV_WAKE 1u
#define EV_SLOT0 2u                           /* slot i is EV_SLOT0 + i */
#define BACKOFF_FIRST_NS (10 * 1000 * 1000LL) /* accept() failing: pause 10 ms, */
#define BACKOFF_MAX_NS NS_PER_SEC             /* doubling up to 1 s */
#define RECOVERED_NS (10 * NS_PER_SEC)        /* accepting this long after a failure: recovered */
#define DRAIN_NS (NS_PER_SEC / 2)             /* after a refusal: read what comes, then close */
#define ACCEPT_BATCH 16                       /* accepts per wake-up, so slots get their turn */

struct slot {
	int fd;                      /* -1: free */
	bool draining;               /* answered by the gate: discard input until EOF or deadline */
	unsigned char key[17];       /* address family + address (IPv6: its /64) */
	int64_t accepted_ns;         /* monotonic */
	int64_t deadline_ns;         /* head deadline, or the end of draining */
	struct sockaddr_storage sa;
	socklen_t sa_len;
};

struct httpgate {
	struct httpgate_config c;
	int epfd, wakefd;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	struct slot *s;
	unsigned n_used;
	bool listening;              /* the listening socket is in the epoll set */
	int64_t backoff_ns;          /* the current pause after a failed accept() */
	int64_t resume_ns;           /* while paused: listen again at this time */
	int64_t last_fail_ns;        /* the last failed accept(), 0: none lately */
	struct complaint accept_complaint;
	char *peek;                  /* peek_len bytes */
	size_t peek_len;             /* max_head + 1, or a whole TLS record with tls */
	pthread_mutex_t stats_lock;
	struct httpgate_stats st;
};

/* ---- the head ---- */

unsigned httpgate_status(enum httpgate_verdict v)
{
	switch (v) {
	case HTTPGATE_BAD_REQUEST: return 400;
	case HTTPGATE_URI_TOO_LONG: return 414;
	case HTTPGATE_HEAD_TOO_LARGE: return 431;
	default: return 0;
	}
}

/* The query parameters in target[0, len): the pieces after the first '?',
 * cut at '&' (libmicrohttpd makes a record of each, empty ones included). */
static unsigned count_args(const char *t, size_t len)
{
	const char *q = memchr(t, '?', len);
	unsigned n = q ? 1 : 0;
	for (const char *x = q ? q + 1 : t + len; x < t + len; x++)
		n += *x == '&';
	return n;
}

enum httpgate_verdict httpgate_scan(const char *buf, size_t len, const struct httpgate_limits *l,
				    size_t *head_len)
{
	size_t start = 0;
	while (start < len && (buf[start] == '\r' || buf[start] == '\n'))
		start++;
	const char *nl = memchr(buf + start, '\n', len - start);
	size_t line_end = nl ? (size_t)(nl - buf) : len;
	const char *sp = memchr(buf + start, ' ', line_end - start);
	if (!sp) {
		if (nl)
			return HTTPGATE_BAD_REQUEST;     /* a line that is no request line */
		return len > l->max_head ? HTTPGATE_HEAD_TOO_LARGE : HTTPGATE_MORE;
	}
	/* The target as libmicrohttpd takes it: after the method's spaces, up
	 * to the last space of the line (trailing spaces skipped; it allows
	 * spaces inside), or to the end of a line without a version. */
	size_t t0 = (size_t)(sp - buf) + 1;
	while (t0 < line_end && buf[t0] == ' ')
		t0++;
	size_t end = line_end;
	if (end > t0 && buf[end - 1] == '\r')  /* CR of a CRLF, or (so far) maybe one */
		end--;
	size_t t1 = end;
	while (t1 > t0 && buf[t1 - 1] == ' ')
		t1--;
	while (t1 > t0 && buf[t1 - 1] != ' ')
		t1--;
	if (t1 > t0)
		t1--;                            /* at the space before the version */
	else
		t1 = end;                        /* no space: no version (so far) */
	if (!nl) {
		/* Before the line ends, only what is sure to stay in the target:
		 * up to its last space so far (a later one only moves the end
		 * further), or all of it while there is none. */
		if (t1 - t0 > l->max_target && !memchr(buf + t0, ' ', end - t0))
			return HTTPGATE_URI_TOO_LONG;
		if (count_args(buf + t0, t1 - t0) > l->max_args)
			return HTTPGATE_BAD_REQUEST;
		return len > l->max_head ? HTTPGATE_HEAD_TOO_LARGE : HTTPGATE_MORE;
	}
	if (t1 - t0 > l->max_target)
		return HTTPGATE_URI_TOO_LONG;
	if (count_args(buf + t0, t1 - t0) > l->max_args)
		return HTTPGATE_BAD_REQUEST;
	unsigned fields = 0;
	for (size_t p = line_end + 1; (nl = memchr(buf + p, '\n', len - p)); ) {
		size_t e = (size_t)(nl - buf);
		if (e == p || (e == p + 1 && buf[p] == '\r')) {
			if (e + 1 > l->max_head)
				return HTTPGATE_HEAD_TOO_LARGE;
			*head_len = e + 1;
			return HTTPGATE_COMPLETE;
		}
		if (++fields > l->max_fields)
			return HTTPGATE_HEAD_TOO_LARGE;
		p = e + 1;
	}
	return len > l->max_head ? HTTPGATE_HEAD_TOO_LARGE : HTTPGATE_MORE;
}

enum httpgate_verdict httpgate_scan_tls(const unsigned char *buf, size_t len, size_t *head_len)
{
	/* a record: content type 22 (handshake), version 3.x, length; the
	 * first handshake message a client sends is its ClientHello (1) */
	if (len >= 1 && buf[0] != 22)
		return HTTPGATE_BAD_REQUEST;
	if (len >= 2 && buf[1] != 3)
		return HTTPGATE_BAD_REQUEST;
	if (len < 5)
		return HTTPGATE_MORE;
	size_t rec = ((size_t)buf[3] << 8) | buf[4];
	if (rec == 0 || 5 + rec > HTTPGATE_TLS_RECORD_MAX)
		return HTTPGATE_BAD_REQUEST;
	if (len >= 6 && buf[5] != 1)
		return HTTPGATE_BAD_REQUEST;
	if (len < 5 + rec)
		return HTTPGATE_MORE;
	*head_len = 5 + rec;
	return HTTPGATE_COMPLETE;
}

/* ---- the table ---- */

static void addr_key(const struct sockaddr_storage *sa, unsigned char key[17])
{
	memset(key, 0, 17);
	key[0] = (unsigned char)sa->ss_family;
	if (sa->ss_family == AF_INET) {
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->ss_family == AF_INET6) {
		const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (!memcmp(a, mapped, 12)) {      /* ::ffff:a.b.c.d is a.b.c.d */
			key[0] = AF_INET;
			memcpy(key + 1, a + 12, 4);
		} else {
			memcpy(key + 1, a, 8);     /* one /64 is one client */
		}
	}
}

static void count(struct httpgate *g, uint64_t *field)
{
	pthread_mutex_lock(&g->stats_lock);
	(*field)++;
	pthread_mutex_unlock(&g->stats_lock);
}

static void slot_close(struct httpgate *g, struct slot *s)
{
	epoll_ctl(g->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	g->n_used--;
}

/* The oldest pending (not draining) slot, of key when key is not NULL. */
static struct slot *oldest(struct httpgate *g, const unsigned char *key, unsigned *n_key)
{
	struct slot *o = NULL;
	*n_key = 0;
	for (unsigned i = 0; i < g->c.max_pending; i++) {
		struct slot *s = &g->s[i];
		if (s->fd < 0 || s->draining || (key && memcmp(s->key, key, sizeof(s->key))))
			continue;
		(*n_key)++;
		if (!o || s->accepted_ns < o->accepted_ns)
			o = s;
	}
	return o;
}

/* Answer a refused head with status and close after a short drain: the
 * head is read off first, so the close is a FIN and the client sees the
 * answer rather than a reset. */
static void refuse(struct httpgate *g, struct slot *s, enum httpgate_verdict v, size_t have, int64_t now)
{
	static const struct { unsigned status; const char *reason, *msg; } ans[] = {
		{ 400, "Bad Request", "too many query parameters, or not an HTTP request line" },
		{ 414, "URI Too Long", "the request target is too long" },
		{ 431, "Request Header Fields Too Large", "the request head is too large" },
	};
	unsigned status = httpgate_status(v);
	size_t k = status == 400 ? 0 : status == 414 ? 1 : 2;
	char body[200], out[512];
	int bl = g->c.tls ? snprintf(body, sizeof(body), "{\"error\":\"this listener speaks HTTPS (TLS):"
				     " use https://\"}")
		 : snprintf(body, sizeof(body), "{\"error\":\"%s (limits: target %zu bytes, %u query"
			    " parameters, head %zu bytes, %u fields)\"}", ans[k].msg, g->c.limits.max_target,
			    g->c.limits.max_args, g->c.limits.max_head, g->c.limits.max_fields);
	int ol = snprintf(out, sizeof(out), "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
			  "Content-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s",
			  status, ans[k].reason, bl, body);
	while (have > 0) {
		ssize_t r = recv(s->fd, g->peek, have, MSG_DONTWAIT);
		if (r <= 0)
			break;
		have -= (size_t)r;
	}
	if (send(s->fd, out, (size_t)ol, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		slot_close(g, s);
		return;
	}
	shutdown(s->fd, SHUT_WR);
	s->draining = true;
	s->deadline_ns = now + DRAIN_NS;
	count(g, &g->st.refused);
}

/* New bytes (or an end: ended) on slot s. */
static void examine(struct httpgate *g, struct slot *s, bool ended, int64_t now)
{
	if (s->draining) {
		for (;;) {
			ssize_t r = recv(s->fd, g->peek, g->peek_len, MSG_DONTWAIT);
			if (r > 0)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			slot_close(g, s);
			return;
		}
	}
	ssize_t n = recv(s->fd, g->peek, g->peek_len, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		count(g, &g->st.client_closed);
		slot_close(g, s);
		return;
	}
	size_t head_len = 0;
	enum httpgate_verdict v = g->c.tls ? httpgate_scan_tls((const unsigned char *)g->peek, (size_t)n, &head_len)
			       : httpgate_scan(g->peek, (size_t)n, &g->c.limits, &head_len);
	if (v == HTTPGATE_MORE) {
		if (ended) {   /* the client stopped sending: this head will never be whole */
			count(g, &g->st.client_closed);
			slot_close(g, s);
		}
		return;
	}
	if (v != HTTPGATE_COMPLETE) {
		if (g->c.tls && !(g->peek[0] >= 'A' && g->peek[0] <= 'Z')) {
			count(g, &g->st.refused);   /* neither TLS nor HTTP: nothing to answer */
			slot_close(g, s);
			return;
		}
		refuse(g, s, v, (size_t)n, now);
		return;
	}
	epoll_ctl(g->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	int fd = s->fd;
	s->fd = -1;
	g->n_used--;
	count(g, &g->st.handed_over);
	g->c.handoff(g->c.ctx, fd, (const struct sockaddr *)&s->sa, s->sa_len);
}

static void evict(struct httpgate *g, struct slot *s)
{
	count(g, &g->st.evicted);
	slot_close(g, s);
}

static void listen_set(struct httpgate *g, bool on)
{
	if (on == g->listening)
		return;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_LISTEN };
	if (!epoll_ctl(g->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, g->c.listen_fd, on ? &ev : NULL))
		g->listening = on;
}

static void accept_some(struct httpgate *g, int64_t now)
{
	for (int k = 0; k < ACCEPT_BATCH; k++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(g->c.listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			if (err == EINTR || err == ECONNABORTED || err == EPROTO)
				continue;   /* that client is gone, not the listener */
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM... */
			count(g, &g->st.accept_failures);
			complain(&g->accept_complaint, LOG_WARN, "http: cannot accept a connection: %s"
				 " (%u connections waiting for their request; the oldest make room, or"
				 " accept pauses)", strerror(err), g->n_used);
			unsigned n;
			struct slot *o = oldest(g, NULL, &n);
			if (o) {
				/* the descriptors are the table's bound now: the oldest waiting
				 * connection makes room, as at max_pending */
				evict(g, o);
				continue;
			}
			/* nothing of ours to free: pause, longer when failing again soon */
			if (g->last_fail_ns && now - g->last_fail_ns <= 2 * BACKOFF_MAX_NS)
				g->backoff_ns = g->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS
						: g->backoff_ns * 2;
			else
				g->backoff_ns = BACKOFF_FIRST_NS;
			g->last_fail_ns = now;
			g->resume_ns = now + g->backoff_ns;
			listen_set(g, false);
			return;
		}
		if (g->last_fail_ns && now - g->last_fail_ns > RECOVERED_NS) {
			g->last_fail_ns = 0;
			complaint_clear(&g->accept_complaint, "http: accepting connections again");
		}
		count(g, &g->st.accepted);
		unsigned char key[17];
		addr_key(&sa, key);
		unsigned n_addr, n_all;
		struct slot *o = oldest(g, key, &n_addr);
		if (n_addr >= g->c.max_per_address)
			evict(g, o);
		if (g->n_used >= g->c.max_pending) {
			/* a draining slot is as old as any: take the oldest of all */
			struct slot *victim = oldest(g, NULL, &n_all);
			for (unsigned i = 0; i < g->c.max_pending; i++)
				if (g->s[i].draining && (!victim || g->s[i].accepted_ns < victim->accepted_ns))
					victim = &g->s[i];
			if (!victim) {   /* cannot be: n_used counts used slots */
				close(fd);
				continue;
			}
			if (victim->draining)
				slot_close(g, victim);
			else
				evict(g, victim);
		}
		struct slot *s = NULL;
		for (unsigned i = 0; i < g->c.max_pending && !s; i++)
			if (g->s[i].fd < 0)
				s = &g->s[i];
		s->fd = fd;
		s->draining = false;
		memcpy(s->key, key, sizeof(s->key));
		s->accepted_ns = now;
		s->deadline_ns = now + g->c.head_timeout_ns;
		s->sa = sa;
		s->sa_len = len;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
					  .data.u32 = EV_SLOT0 + (uint32_t)(s - g->s) };
		if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			s->fd = -1;
			continue;
		}
		g->n_used++;
		/* a client that sent its head with the handshake is served before
		 * the next accepts can push it out */
		examine(g, s, false, now);
	}
}

static void *gate_main(void *arg)
{
	struct httpgate *g = arg;
	struct epoll_event ev[64];
	while (!atomic_load(&g->stop)) {
		int64_t now = time_mono_ns(), next = INT64_MAX;
		for (unsigned i = 0; i < g->c.max_pending; i++)
			if (g->s[i].fd >= 0 && g->s[i].deadline_ns < next)
				next = g->s[i].deadline_ns;
		if (!g->listening && g->resume_ns < next)
			next = g->resume_ns;
		int timeout_ms = next == INT64_MAX ? -1
				 : next <= now ? 0 : (int)((next - now + 999999) / 1000000);
		int n = epoll_wait(g->epfd, ev, 64, timeout_ms);
		bool can_accept = false;
		now = time_mono_ns();
		/* heads that arrived first, then new connections (which may push
		 * out the oldest waiting ones) */
		for (int k = 0; k < n; k++) {
			uint32_t id = ev[k].data.u32;
			if (id == EV_LISTEN)
				can_accept = true;
			else if (id != EV_WAKE && g->s[id - EV_SLOT0].fd >= 0)
				examine(g, &g->s[id - EV_SLOT0],
					(ev[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0, now);
		}
		if (can_accept)
			accept_some(g, now);
		for (unsigned i = 0; i < g->c.max_pending; i++) {
			struct slot *s = &g->s[i];
			if (s->fd < 0 || s->deadline_ns > now)
				continue;
			if (!s->draining)
				count(g, &g->st.timed_out);
			slot_close(g, s);
		}
		if (!g->listening && now >= g->resume_ns)
			listen_set(g, true);
	}
	return NULL;
}

int httpgate_start(struct httpgate **out, const struct httpgate_config *c, struct tally_err *e)
{
	struct httpgate *g = calloc(1, sizeof(*g));
	int rc;
	*out = NULL;
	if (!g) {
		close(c->listen_fd);
		return err_set(e, -ENOMEM, "http: out of memory");
	}
	g->c = *c;
	g->epfd = g->wakefd = -1;
	if (pthread_mutex_init(&g->stats_lock, NULL)) {
		close(c->listen_fd);
		free(g);
		return err_set(e, -ENOMEM, "http: out of memory");
	}
	if (!c->max_pending || !c->max_per_address || c->head_timeout_ns <= 0 || !c->handoff) {
		rc = err_set(e, -EINVAL, "http: bad gate limits");
		goto fail;
	}
	if (!(g->s = calloc(c->max_pending, sizeof(*g->s))) ||
	    !(g->peek = malloc(g->peek_len = c->tls && c->limits.max_head < HTTPGATE_TLS_RECORD_MAX
					     ? HTTPGATE_TLS_RECORD_MAX : c->limits.max_head + 1))) {
		rc = err_set(e, -ENOMEM, "http: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < c->max_pending; i++)
		g->s[i].fd = -1;
	if ((g->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (g->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = err_set(e, -errno, "http: cannot create the accept loop's poll set: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_WAKE };
	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->wakefd, &ev)) {
		rc = err_set(e, -errno, "http: epoll: %s", strerror(errno));
		goto fail;
	}
	listen_set(g, true);
	if (!g->listening) {
		rc = err_set(e, -errno, "http: epoll: %s", strerror(errno));
		goto fail;
	}
	if ((rc = pthread_create(&g->thread, NULL, gate_main, g))) {
		rc = err_set(e, -rc, "http: cannot start the accept thread: %s", strerror(rc));
		goto fail;
	}
	g->thread_started = true;
	*out = g;
	return 0;
fail:
	httpgate_stop(g);
	return rc;
}

void httpgate_stop(struct httpgate *g)
{
	if (!g)
		return;
	if (g->thread_started) {
		uint64_t one = 1;
		atomic_store(&g->stop, true);
		if (write(g->wakefd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow from one write: ignore */
		}
		pthread_join(g->thread, NULL);
	}
	for (unsigned i = 0; g->s && i < g->c.max_pending; i++)
		if (g->s[i].fd >= 0)
			close(g->s[i].fd);
	if (g->c.listen_fd >= 0)
		close(g->c.listen_fd);
	if (g->epfd >= 0)
		close(g->epfd);
	if (g->wakefd >= 0)
		close(g->wakefd);
	pthread_mutex_destroy(&g->stats_lock);
	free(g->s);
	free(g->peek);
	free(g);
}

void httpgate_get_stats(struct httpgate *g, struct httpgate_stats *out)
{
	pthread_mutex_lock(&g->stats_lock);
	*out = g->st;
	pthread_mutex_unlock(&g->stats_lock);
}
