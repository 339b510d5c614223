/*
 * test_httpgate.c: the accept loop in front of the HTTP listener
 * (exporters/httpgate.h). First the pure head scanner on a table of heads
 * whose lengths are counted by hand in the comments; then a live gate on a
 * loopback port with a hand-over that records what it gets: a whole head
 * arrives intact and unread, a head over a limit is answered by the gate,
 * the oldest waiting connection of an address makes room for a new one, a
 * head that never completes is closed at its deadline, and a client that
 * goes away is let go. Waits are bounded polls, never timing assertions.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "httpgate.h"
#include "testutil.h"

/* small limits so the rows stay short */
static const struct httpgate_limits L = { .max_head = 64, .max_target = 16, .max_args = 3,
					  .max_fields = 2 };

static const struct {
	const char *in;
	enum httpgate_verdict want;
	size_t head_len;            /* COMPLETE only */
} heads[] = {
	/* "GET / HTTP/1.1\r\n" is 16 bytes, the empty line 2 more */
	{ "GET / HTTP/1.1\r\n\r\n", HTTPGATE_COMPLETE, 18 },
	/* + "Host: a\r\n" (9) */
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTPGATE_COMPLETE, 27 },
	{ "GET / HTTP/1.1\r\nHost: a\r\n", HTTPGATE_MORE, 0 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n", HTTPGATE_COMPLETE, 33 },   /* 2 fields: the limit */
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n", HTTPGATE_HEAD_TOO_LARGE, 0 },  /* a 3rd */
	/* bare LF line ends: 15 + 8 + 1 */
	{ "GET / HTTP/1.1\nHost: a\n\n", HTTPGATE_COMPLETE, 24 },
	/* empty lines before the request line are skipped and counted: 4 + 18 */
	{ "\r\n\r\nGET / HTTP/1.1\r\n\r\n", HTTPGATE_COMPLETE, 22 },
	/* the target: 16 bytes is the limit, 17 too long, seen before the line ends */
	{ "GET /abcdefghijklmno HTTP/1.1\r\n\r\n", HTTPGATE_COMPLETE, 33 },
	{ "GET /abcdefghijklmnop HTTP/1.1\r\n\r\n", HTTPGATE_URI_TOO_LONG, 0 },
	{ "GET /abcdefghijklmno", HTTPGATE_MORE, 0 },
	{ "GET /abcdefghijklmnop", HTTPGATE_URI_TOO_LONG, 0 },
	/* query parameters: 3 is the limit, a 4th is refused before the line ends */
	{ "GET /?a&b&c HTTP/1.1\r\n\r\n", HTTPGATE_COMPLETE, 24 },
	{ "GET /?a&b&c&d", HTTPGATE_BAD_REQUEST, 0 },
	{ "GET /?&&& HTTP/1.1\r\n\r\n", HTTPGATE_BAD_REQUEST, 0 },
	/* the head: 64 bytes is the limit. "GET / HTTP/1.1\r\n" 16 + "X: " 3 +
	 * 41 x "a" + "\r\n" 2 + "\r\n" 2 = 64; one "a" more is 65 */
	{ "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", HTTPGATE_COMPLETE, 64 },
	{ "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", HTTPGATE_HEAD_TOO_LARGE, 0 },
	/* 65 bytes without an end */
	{ "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", HTTPGATE_HEAD_TOO_LARGE, 0 },
	{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", HTTPGATE_HEAD_TOO_LARGE, 0 },
	{ "GARBAGE", HTTPGATE_MORE, 0 },
	{ "GARBAGE\r\n", HTTPGATE_BAD_REQUEST, 0 },
	/* libmicrohttpd's target runs to the last space of the line, spaces
	 * inside included: "/? a&b&c&d" is 4 parameters, "/abcdefgh ijklmnop"
	 * 18 bytes; before the line ends only what is sure to stay counts */
	{ "GET /? a&b&c&d HTTP/1.1\r\n\r\n", HTTPGATE_BAD_REQUEST, 0 },
	{ "GET /abcdefgh ijklmnop HTTP/1.1\r\n\r\n", HTTPGATE_URI_TOO_LONG, 0 },
	{ "GET /abcdefgh ijklmnop HTTP/1.1", HTTPGATE_MORE, 0 },
	{ "GET /? a&b&c&d", HTTPGATE_MORE, 0 },
	{ "GET /? a&b&c&d&e ", HTTPGATE_MORE, 0 },   /* "a&b&c&d&e" may end as the version */
	{ "GET /? a&b&c&d&e H", HTTPGATE_BAD_REQUEST, 0 },
	/* "GET " 4 + "/a b" 4 + " HTTP/1.1\r\n" 11 + 2 */
	{ "GET /a b HTTP/1.1\r\n\r\n", HTTPGATE_COMPLETE, 21 },
	/* spaces around the target, and no version: left to libmicrohttpd */
	{ "GET  /x  HTTP/1.1\r\n\r\n", HTTPGATE_COMPLETE, 21 },
	{ "GET /x\r\n\r\n", HTTPGATE_COMPLETE, 10 },
	{ "", HTTPGATE_MORE, 0 },
	{ "\r\n", HTTPGATE_MORE, 0 },
};

START_TEST(test_scan)
{
	size_t hl = 999;
	enum httpgate_verdict v = httpgate_scan(heads[_i].in, strlen(heads[_i].in), &L, &hl);
	ck_assert_msg(v == heads[_i].want, "row %d: verdict %d, want %d", _i, v, heads[_i].want);
	if (v == HTTPGATE_COMPLETE)
		ck_assert_msg(hl == heads[_i].head_len, "row %d: head %zu bytes, want %zu", _i, hl,
			      heads[_i].head_len);
	ck_assert_uint_eq(httpgate_status(HTTPGATE_BAD_REQUEST), 400);
	ck_assert_uint_eq(httpgate_status(HTTPGATE_URI_TOO_LONG), 414);
	ck_assert_uint_eq(httpgate_status(HTTPGATE_HEAD_TOO_LARGE), 431);
	ck_assert_uint_eq(httpgate_status(HTTPGATE_COMPLETE), 0);
}
END_TEST

/* ---- a live gate ---- */

struct got {
	pthread_mutex_t lock;
	int fds[8];
	int n;
};

static void record(void *ctx, int fd, const struct sockaddr *sa, socklen_t len)
{
	struct got *g = ctx;
	(void)sa;
	(void)len;
	pthread_mutex_lock(&g->lock);
	if (g->n < 8)
		g->fds[g->n++] = fd;
	else
		close(fd);
	pthread_mutex_unlock(&g->lock);
}

static int n_got(struct got *g)
{
	pthread_mutex_lock(&g->lock);
	int n = g->n;
	pthread_mutex_unlock(&g->lock);
	return n;
}

static int listener(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A client from source address 127.0.0.src to port. */
static int client(uint16_t port, int src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000000u | (unsigned)src) };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* What the server side did to client fd within 5 s: 0 it closed, 1 it is
 * still open; the bytes it sent in buf. */
static int outcome(int fd, char *buf, size_t len, int wait_ms)
{
	size_t have = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, wait_ms) <= 0)
			return 1;
		ssize_t r = recv(fd, buf + have, len - 1 - have, 0);
		if (r <= 0) {
			buf[have] = '\0';
			return 0;
		}
		have += (size_t)r;
	}
}

static void wait_for(struct got *g, int n)
{
	for (int i = 0; i < 500 && n_got(g) < n; i++)
		usleep(10000);
	ck_assert_int_eq(n_got(g), n);
}

START_TEST(test_live)
{
	struct got got = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct httpgate *gate = NULL;
	struct tally_err e = { 0 };
	uint16_t port;
	char buf[1024];
	struct httpgate_config c = {
		.listen_fd = listener(&port), .max_pending = 8, .max_per_address = 2,
		.head_timeout_ns = 1000 * 1000000LL, .limits = L, .handoff = record, .ctx = &got,
	};
	ck_assert_int_eq(httpgate_start(&gate, &c, &e), 0);

	/* a whole head, sent in two pieces: handed over with nothing read */
	static const char head[] = "GET /m HTTP/1.1\r\nHost: a\r\n\r\n";
	int a = client(port, 1);
	ck_assert_int_eq(send(a, head, 10, 0), 10);
	usleep(20000);
	ck_assert_int_eq(n_got(&got), 0);
	ck_assert_int_eq(send(a, head + 10, sizeof(head) - 11, 0), (ssize_t)sizeof(head) - 11);
	wait_for(&got, 1);
	ssize_t r = recv(got.fds[0], buf, sizeof(buf), 0);
	ck_assert_int_eq(r, (ssize_t)sizeof(head) - 1);
	ck_assert(!memcmp(buf, head, sizeof(head) - 1));

	/* a target over 16 bytes: 414 from the gate, then closed */
	int b = client(port, 1);
	static const char longer[] = "GET /abcdefghijklmnopqrstuvwxyz HTTP/1.1\r\n\r\n";
	ck_assert_int_eq(send(b, longer, sizeof(longer) - 1, 0), (ssize_t)sizeof(longer) - 1);
	ck_assert_int_eq(outcome(b, buf, sizeof(buf), 5000), 0);
	ck_assert_msg(!strncmp(buf, "HTTP/1.1 414 URI Too Long\r\n", 27), "got '%s'", buf);
	ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));

	/* two incomplete heads from 127.0.0.2 (its limit), then a third: the
	 * first is closed to make room, the second and third stay */
	int s1 = client(port, 2);
	ck_assert_int_eq(send(s1, "GET", 3, 0), 3);
	usleep(20000);
	int s2 = client(port, 2);
	ck_assert_int_eq(send(s2, "GET", 3, 0), 3);
	usleep(20000);
	int other = client(port, 3);   /* another address is not counted with them */
	int s3 = client(port, 2);
	ck_assert_int_eq(outcome(s1, buf, sizeof(buf), 5000), 0);
	ck_assert_int_eq(outcome(s2, buf, sizeof(buf), 0), 1);
	ck_assert_int_eq(outcome(s3, buf, sizeof(buf), 0), 1);
	ck_assert_int_eq(outcome(other, buf, sizeof(buf), 0), 1);
	/* the deadline (1 s) closes all of them without an answer, however
	 * they trickle */
	for (int i = 0; i < 15; i++) {
		send(s2, "E", 1, MSG_NOSIGNAL);
		usleep(100000);
	}
	ck_assert_int_eq(outcome(s2, buf, sizeof(buf), 5000), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(outcome(s3, buf, sizeof(buf), 5000), 0);
	ck_assert_int_eq(outcome(other, buf, sizeof(buf), 5000), 0);

	/* a client that gives up half-way is let go, and counted so */
	int q = client(port, 4);
	ck_assert_int_eq(send(q, "GET /", 5, 0), 5);
	usleep(20000);
	close(q);
	struct httpgate_stats st = { 0 };
	for (int i = 0; i < 500 && st.client_closed < 1; i++) {
		usleep(10000);
		httpgate_get_stats(gate, &st);
	}
	ck_assert_uint_eq(st.client_closed, 1);
	ck_assert_uint_eq(st.handed_over, 1);
	ck_assert_uint_eq(st.refused, 1);
	ck_assert_uint_eq(st.evicted, 1);
	ck_assert_uint_eq(st.timed_out, 3);
	ck_assert_uint_eq(st.accepted, 7);
	httpgate_stop(gate);
	close(got.fds[0]);
	close(a);
	close(b);
	close(s1);
	close(s2);
	close(s3);
	close(other);
}
END_TEST

/* The first bytes of a TLS connection (httpgate_scan_tls): a record
 * header (type 22 handshake, version 3.x, length) then the ClientHello
 * (handshake type 1); whole when all `length` bytes after the 5-byte
 * header are there. Lengths worked out by hand. */
static const struct {
	const char *name;
	unsigned char b[12];
	size_t len;
	enum httpgate_verdict want;
	size_t head;                 /* for COMPLETE */
} tls[] = {
	{ "nothing yet", { 0 }, 0, HTTPGATE_MORE, 0 },
	{ "the type only", { 22 }, 1, HTTPGATE_MORE, 0 },
	{ "header without its length", { 22, 3, 1, 0 }, 4, HTTPGATE_MORE, 0 },
	{ "header, 4 of 6 bytes", { 22, 3, 1, 0, 6, 1, 0, 0, 2 }, 9, HTTPGATE_MORE, 0 },
	{ "header and its 6 bytes", { 22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3 }, 11, HTTPGATE_COMPLETE, 11 },
	{ "a second record after it", { 22, 3, 1, 0, 2, 1, 0, 22, 3, 1 }, 10, HTTPGATE_COMPLETE, 7 },
	{ "plain HTTP", { 'P', 'O', 'S', 'T', ' ' }, 5, HTTPGATE_BAD_REQUEST, 0 },
	{ "an alert record", { 21, 3, 1, 0, 2 }, 5, HTTPGATE_BAD_REQUEST, 0 },
	{ "SSL 2 version", { 22, 2, 0, 0, 2 }, 5, HTTPGATE_BAD_REQUEST, 0 },
	{ "a zero-length record", { 22, 3, 1, 0, 0 }, 5, HTTPGATE_BAD_REQUEST, 0 },
	{ "a record over the limit", { 22, 3, 1, 0x48, 0x01 }, 5, HTTPGATE_BAD_REQUEST, 0 },
	{ "not a ClientHello", { 22, 3, 1, 0, 4, 2 }, 6, HTTPGATE_BAD_REQUEST, 0 },
};

START_TEST(test_scan_tls)
{
	size_t head = 0;
	enum httpgate_verdict v = httpgate_scan_tls(tls[_i].b, tls[_i].len, &head);
	ck_assert_msg(v == tls[_i].want, "%s: verdict %d, want %d", tls[_i].name, v, tls[_i].want);
	if (v == HTTPGATE_COMPLETE)
		ck_assert_uint_eq(head, tls[_i].head);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("httpgate");
	TCase *tc = tcase_create("httpgate");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_scan, 0, (int)(sizeof(heads) / sizeof(heads[0])));
	tcase_add_loop_test(tc, test_scan_tls, 0, (int)(sizeof(tls) / sizeof(tls[0])));
	tcase_add_test(tc, test_live);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
