/*
 * test_sender: the agent's sender (daemon/sender.c) against a real HTTP
 * server started here with libmicrohttpd on 127.0.0.1 (a port the kernel
 * picks), which plays the aggregator's side of schemas/batch-wire.md:
 * it decodes the frames with the real decoder, counts every (agent, seq)
 * it commits, and answers what each case needs (a 409 with its last seq,
 * a 503 with Retry-After, a 413 over a frame limit, a 400 for one frame,
 * a slow answer, a wrong token). A raw listener resets connections. TLS
 * uses a test CA and certificates made here with openssl: trusted,
 * untrusted, and issued for another host name.
 *
 * The sender is driven one request at a time (sender_step), so every case
 * checks what happened and the wait it chose, not how long anything took;
 * one case runs the thread end to end.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sender.h"
#include "spool.h"
#include "testutil.h"
#include "wire.h"

#define S_NS 1000000000LL
#define T0 (1790812800LL * S_NS)
#define MAXSEQ 6000

/* ---- the test aggregator ------------------------------------------------ */

struct srv {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;
	char token[64];                 /* "" = no check */
	uint64_t last;                  /* committed */
	struct wire_origin origin;      /* of the spool last committed from */
	int commits[MAXSEQ];            /* commits per seq */
	int requests;
	int max_frames;                 /* 413 above; -1 = always 413 */
	uint64_t bad_seq;               /* 400 for a request holding it */
	int throttle;                   /* next answers: 1 = 503 Retry-After 7, 2 = 429 date +30 s, 3 = 503 bare, 4 = 500 */
	int slow_ms;                    /* commit, then answer this late (once) */
};

struct upload {
	uint8_t *p;
	size_t len, cap;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *json, const char *retry)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (retry)
		MHD_add_response_header(r, "Retry-After", retry);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* The aggregator's rules, on a whole request body. */
static enum MHD_Result ingest(struct srv *sv, struct MHD_Connection *c, const uint8_t *p, size_t len)
{
	char out[512];
	struct batch b;
	struct tally_err e = { 0 };
	struct wire_info info[64];
	size_t n = 0, off = 0;
	enum MHD_Result rc;

	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	char want[100];
	snprintf(want, sizeof(want), "Bearer %s", sv->token);
	if (sv->token[0] && (!auth || strcmp(auth, want)))
		return answer(c, 401, "{\"error\":\"no or unknown token\"}", NULL);
	if (sv->throttle == 1)
		return sv->throttle = 0, answer(c, 503, "{\"error\":\"ledger behind\"}", "7");
	if (sv->throttle == 2) {
		char date[64];
		time_t t = time(NULL) + 30;
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
		sv->throttle = 0;
		return answer(c, 429, "{\"error\":\"slow down\"}", date);
	}
	if (sv->throttle == 3)
		return sv->throttle = 0, answer(c, 503, "{\"error\":\"disk full\"}", NULL);
	if (sv->throttle == 4)
		return sv->throttle = 0, answer(c, 500, "{\"error\":\"internal\"}", NULL);
	batch_init(&b, NULL);
	while (off < len && n < 64) {
		if (wire_decode(p + off, len - off, &b, &info[n], &e)) {
			snprintf(out, sizeof(out), "{\"error\":\"frame %zu: bad\"}", n);
			batch_release(&b);
			return answer(c, 400, out, NULL);
		}
		if (info[n].head.seq == sv->bad_seq) {
			batch_release(&b);
			return answer(c, 400, "{\"error\":\"a frame this aggregator refuses\",\"seq\":4}", NULL);
		}
		off += info[n].head.frame_len;
		n++;
	}
	batch_release(&b);
	if (off != len || !n)
		return answer(c, 400, "{\"error\":\"not whole frames\"}", NULL);
	if (sv->max_frames < 0 || (sv->max_frames && (int)n > sv->max_frames))
		return answer(c, 413, "{\"error\":\"request too large\"}", NULL);
	for (size_t i = 1; i < n; i++)
		if (info[i].head.seq != info[i - 1].head.seq + 1) {
			snprintf(out, sizeof(out), "{\"error\":\"not consecutive\",\"reason\":\"order\",\"last_seq\":%llu}",
				 (unsigned long long)sv->last);
			return answer(c, 409, out, NULL);
		}
	const struct wire_origin *o = &info[0].head.origin;
	if (sv->last && memcmp(o->spool_id, sv->origin.spool_id, WIRE_SPOOL_ID_LEN) &&
	    o->spool_first_seq != sv->last + 1) {
		snprintf(out, sizeof(out), "{\"error\":\"another spool\",\"reason\":\"spool\",\"last_seq\":%llu}",
			 (unsigned long long)sv->last);
		return answer(c, 409, out, NULL);
	}
	if (info[0].head.seq > sv->last + 1) {
		snprintf(out, sizeof(out), "{\"error\":\"gap\",\"reason\":\"gap\",\"agent\":\"%s\",\"last_seq\":%llu}",
			 info[0].head.agent, (unsigned long long)sv->last);
		return answer(c, 409, out, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t q = info[i].head.seq;
		if (q <= sv->last)
			continue;       /* committed already: acknowledged again, counted once */
		ck_assert_uint_lt(q, MAXSEQ);
		sv->commits[q]++;
		sv->last = q;
		sv->origin = *o;
	}
	uint64_t acked = sv->last < info[n - 1].head.seq ? sv->last : info[n - 1].head.seq;
	snprintf(out, sizeof(out), "{\"agent\":\"%s\",\"acked\":%llu}", info[0].head.agent,
		 (unsigned long long)acked);
	if (sv->slow_ms) {
		int ms = sv->slow_ms;
		sv->slow_ms = 0;
		pthread_mutex_unlock(&sv->mu);
		usleep((useconds_t)ms * 1000);
		pthread_mutex_lock(&sv->mu);
	}
	rc = answer(c, 200, out, NULL);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *data, size_t *data_size, void **con_cls)
{
	struct srv *sv = cls;
	struct upload *u = *con_cls;
	if (!u) {
		u = calloc(1, sizeof(*u));
		*con_cls = u;
		return MHD_YES;
	}
	if (*data_size) {
		if (u->len + *data_size > u->cap) {
			u->cap = (u->len + *data_size) * 2;
			u->p = realloc(u->p, u->cap);
		}
		memcpy(u->p + u->len, data, *data_size);
		u->len += *data_size;
		*data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") || strcmp(url, "/api/v1/ingest"))
		return answer(c, 404, "{\"error\":\"not here\"}", NULL);
	pthread_mutex_lock(&sv->mu);
	sv->requests++;
	enum MHD_Result rc = ingest(sv, c, u->p, u->len);
	pthread_mutex_unlock(&sv->mu);
	return rc;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct upload *u = *con_cls;
	if (u) {
		free(u->p);
		free(u);
	}
	*con_cls = NULL;
}

static void srv_start(struct srv *sv, const char *key_pem, const char *cert_pem)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pthread_mutex_init(&sv->mu, NULL);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
	if (key_pem) {
		ck_assert_msg(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES, "libmicrohttpd without TLS");
		sv->d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handle, sv,
					 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
					 MHD_OPTION_NOTIFY_COMPLETED, done, sv,
					 MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
					 MHD_OPTION_END);
	} else {
		sv->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, sv, MHD_OPTION_SOCK_ADDR,
					 (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, done, sv, MHD_OPTION_END);
	}
	ck_assert_ptr_nonnull(sv->d);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(di);
	sv->port = di->port;
	ck_assert_int_gt(sv->port, 0);
}

static void srv_stop(struct srv *sv)
{
	MHD_stop_daemon(sv->d);
	pthread_mutex_destroy(&sv->mu);
}

/* ---- helpers ------------------------------------------------------------ */

struct logged {
	int n;
	char last[400];
};

static void rec_log(void *ctx, int level, const char *msg)
{
	struct logged *l = ctx;
	if (getenv("TALLY_TEST_LOG"))   /* to read what an operator would */
		fprintf(stderr, "log %d: %s\n", level, msg);
	l->n++;
	str_copy(l->last, msg, sizeof(l->last));
}

static struct spool *mkspool(const char *dir, const char *name, const struct spool_opts *o)
{
	char p[400];
	struct spool *sp;
	struct tally_err e = { 0 };
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	ck_assert_msg(spool_open(&sp, p, "host-a", o, NULL, &e) == 0, "%s", e.msg);
	return sp;
}

static void fill(struct spool *sp, int n)
{
	struct tally_err e = { 0 };
	for (int i = 0; i < n; i++) {
		struct batch b;
		uint64_t q = spool_next_seq(sp);
		batch_init(&b, "host-a");
		b.seq = q;
		b.time_ns = T0 + (int64_t)q * 10 * S_NS;
		struct sample s = { .time_ns = b.time_ns, .meter = M_CPU, .kind = SAMPLE_CUMULATIVE };
		strcpy(s.resource, "vm-1");
		s.v.counter = q * 100;
		ck_assert_int_eq(batch_add_sample(&b, &s), 0);
		ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
		batch_release(&b);
	}
}

static struct sender *mksender(struct spool *sp, int port, const char *scheme, struct logged *lg,
			       struct sender_opts *extra)
{
	char url[100];
	struct sender *s;
	struct tally_err e = { 0 };
	struct sender_opts o = { 0 };
	if (extra)
		o = *extra;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d/", scheme, port);
	o.url = url;
	o.log = rec_log;
	o.log_ctx = lg;
	if (!o.timeout_ns)
		o.timeout_ns = 10 * S_NS;
	ck_assert_msg(sender_new(&s, sp, &o, &e) == 0, "%s", e.msg);
	return s;
}

static int step(struct sender *s, int64_t *wait)
{
	int64_t w;
	int r = sender_step(s, wait ? wait : &w);
	return r;
}

/* Step until idle (at most limit steps); returns the steps taken. */
static int drain(struct sender *s, int limit)
{
	int64_t w;
	for (int i = 0; i < limit; i++)
		if (sender_step(s, &w) == SENDER_IDLE)
			return i;
	ck_abort_msg("not idle after %d steps", limit);
	return -1;
}

/* A TCP socket bound to 127.0.0.1 on a port the kernel picks (*port),
 * listening when asked. */
static int loopback_socket(int listening, int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void all_once(struct srv *sv, uint64_t from, uint64_t to)
{
	for (uint64_t q = from; q <= to; q++)
		ck_assert_msg(sv->commits[q] == 1, "seq %llu committed %d times", (unsigned long long)q,
			      sv->commits[q]);
}

/* ---- cases -------------------------------------------------------------- */

START_TEST(catch_up_in_few_requests)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	struct sender_stats st;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	strcpy(sv.token, "s3cret");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 40);
	struct sender_opts o = { .token = "s3cret" };
	struct sender *s = mksender(sp, sv.port, "http", &lg, &o);
	/* 40 frames, one request */
	ck_assert_int_eq(drain(s, 5), 1);
	ck_assert_int_eq(sv.requests, 1);
	all_once(&sv, 1, 40);
	sender_get_stats(s, &st);
	ck_assert_uint_eq(st.batches_acked, 40);
	ck_assert_uint_eq(st.by_result[SENDER_OK], 1);
	ck_assert_uint_eq(st.spool.acked_seq, 40);
	ck_assert_uint_eq(st.spool.batches, 0);
	ck_assert_int_gt(st.last_ack_ns, 0);
	ck_assert_int_eq(lg.n, 0);
	sender_free(s);
	/* with 8 frames per request: 5 requests for 40 more */
	fill(sp, 40);
	o.max_frames = 8;
	s = mksender(sp, sv.port, "http", &lg, &o);
	ck_assert_int_eq(drain(s, 10), 5);
	ck_assert_int_eq(sv.requests, 6);
	all_once(&sv, 41, 80);
	sender_free(s);
	spool_close(sp);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

START_TEST(wrong_token_refused)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	strcpy(sv.token, "s3cret");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 3);
	struct sender_opts o = { .token = "guess", .backoff_max_ns = 45 * S_NS };
	struct sender *s = mksender(sp, sv.port, "http", &lg, &o);
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_int_eq(w, 45 * S_NS);
	ck_assert_ptr_nonnull(strstr(lg.last, "HTTP 401"));
	ck_assert_ptr_nonnull(strstr(lg.last, "no or unknown token"));
	/* the same again is not logged again */
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_int_eq(lg.n, 1);
	ck_assert_uint_eq(sv.last, 0);
	struct sender_stats st;
	sender_get_stats(s, &st);
	ck_assert_int_eq(st.refusing, 1);
	ck_assert_uint_eq(st.spool.batches, 3);
	sender_free(s);
	/* no token at all */
	s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	sender_free(s);
	/* a token with a line break is refused before any request */
	struct sender *bad;
	struct tally_err e = { 0 };
	struct sender_opts ob = { .url = "http://127.0.0.1:1", .token = "a\r\nX-Evil: 1" };
	ck_assert_int_eq(sender_new(&bad, sp, &ob, &e), -EINVAL);
	ob.token = NULL;
	ob.url = "ftp://x";
	ck_assert_int_eq(sender_new(&bad, sp, &ob, &e), -EINVAL);
	spool_close(sp);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

START_TEST(throttled_and_backoff)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 2);
	struct sender_opts o = { .backoff_min_ns = 2 * S_NS, .backoff_max_ns = 20 * S_NS };
	struct sender *s = mksender(sp, sv.port, "http", &lg, &o);
	/* 503 with Retry-After: 7 -> exactly 7 s */
	sv.throttle = 1;
	ck_assert_int_eq(step(s, &w), SENDER_THROTTLED);
	ck_assert_int_eq(w, 7 * S_NS);
	ck_assert_ptr_nonnull(strstr(lg.last, "HTTP 503 (ledger behind): waiting 7 s"));
	/* 429 with an HTTP date 30 s ahead (whole seconds of the clock) */
	sv.throttle = 2;
	ck_assert_int_eq(step(s, &w), SENDER_THROTTLED);
	ck_assert_int_ge(w, 28 * S_NS);
	ck_assert_int_le(w, 30 * S_NS);
	/* 503 without a header: the back-off, first step 2 s, drawn in [1, 2] s */
	sv.throttle = 3;
	ck_assert_int_eq(step(s, &w), SENDER_THROTTLED);
	ck_assert_int_ge(w, 1 * S_NS);
	ck_assert_int_le(w, 2 * S_NS);
	ck_assert_uint_eq(sv.last, 0);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	ck_assert_int_eq(w, 0);
	ck_assert_ptr_nonnull(strstr(lg.last, "delivering again"));
	all_once(&sv, 1, 2);
	sender_free(s);
	srv_stop(&sv);

	/* nobody listening: the back-off doubles 2, 4, 8, 16, 20, 20 s, each
	 * wait drawn between half and all of its step */
	int port;
	close(loopback_socket(0, &port));      /* the port is now closed: connections are refused */
	fill(sp, 1);
	s = mksender(sp, port, "http", &lg, &o);
	const int64_t steps[] = { 2, 4, 8, 16, 20, 20 };
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(step(s, &w), SENDER_FAILED);
		ck_assert_int_ge(w, steps[i] * S_NS / 2);
		ck_assert_int_le(w, steps[i] * S_NS);
	}
	ck_assert_ptr_nonnull(strstr(lg.last, "onnect"));
	ck_assert_ptr_nonnull(strstr(lg.last, "seqs 3-3 stay spooled"));
	sender_free(s);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/* The aggregator's ledger was restored from a copy older than the spool's
 * acknowledgements: a 409 names its last seq and the sender goes back. */
START_TEST(conflict_gap_resolves)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	struct tally_err e = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 10);
	spool_origin(sp, &sv.origin);
	/* the aggregator has 1-5 (from this spool); the spool thinks 1-7 */
	sv.last = 5;
	for (int q = 1; q <= 5; q++)
		sv.commits[q] = 1;
	ck_assert_int_eq(spool_ack(sp, 7, &e), 0);
	struct sender *s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_RESUMED);
	ck_assert_int_eq(w, 0);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	ck_assert_int_eq(step(s, &w), SENDER_IDLE);
	all_once(&sv, 1, 10);
	struct sender_stats st;
	sender_get_stats(s, &st);
	ck_assert_uint_eq(st.spool.acked_seq, 10);
	ck_assert_uint_eq(st.aggregator_seq, 10);
	sender_free(s);
	spool_close(sp);

	/* the same, but the spool deleted 1-7 already (a segment per frame):
	 * nothing the sender can do alone, said clearly */
	struct spool_opts so = { .segment_bytes = 1 };
	sp = mkspool(dir, "b", &so);
	fill(sp, 10);
	memset(&sv.commits, 0, sizeof(sv.commits));
	spool_origin(sp, &sv.origin);
	sv.last = 5;
	ck_assert_int_eq(spool_ack(sp, 7, &e), 0);
	s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_ptr_nonnull(strstr(lg.last, "asks for seq 6, but this spool deleted seqs before 8"));
	ck_assert_uint_eq(sv.last, 5);
	sender_free(s);
	spool_close(sp);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

/* A new spool for an agent the aggregator knows: refused until the spool
 * says it continues the old one. */
START_TEST(conflict_new_spool)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	sv.last = 5000;
	sv.origin.spool_id[0] = 0x77;
	sv.origin.spool_first_seq = 1;
	struct spool *sp = mkspool(dir, "fresh", NULL);
	fill(sp, 3);
	struct sender *s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_ptr_nonnull(strstr(lg.last, "up to 5000 from another spool"));
	ck_assert_ptr_nonnull(strstr(lg.last, "first seq is 5001"));
	ck_assert_uint_eq(sv.commits[1], 0);
	sender_free(s);
	spool_close(sp);
	/* the operator starts a spool continuing after 5000 */
	struct spool_opts o = { .first_seq = 5001 };
	sp = mkspool(dir, "continued", &o);
	fill(sp, 3);
	s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	all_once(&sv, 5001, 5003);
	sender_free(s);
	spool_close(sp);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

START_TEST(too_large_and_bad_frame)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 10);
	/* at most 3 frames a request: 10 -> 413, 5 -> 413, 2 -> ok ... */
	sv.max_frames = 3;
	struct sender *s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_SMALLER);
	ck_assert_int_eq(step(s, &w), SENDER_SMALLER);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	ck_assert_uint_eq(sv.last, 2);
	drain(s, 30);
	all_once(&sv, 1, 10);
	/* a single frame over the limit: refused, retried, never skipped */
	sv.max_frames = -1;
	fill(sp, 1);
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_ptr_nonnull(strstr(lg.last, "HTTP 413 for seq 11"));
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_uint_eq(sv.last, 10);
	sender_free(s);
	spool_close(sp);

	/* frame 4 refused: 6 frames -> 400 -> one at a time: 1, then 2-3,
	 * then 4 alone, refused for good; 5 and 6 wait behind it */
	srv_stop(&sv);
	memset(&sv, 0, sizeof(sv));
	srv_start(&sv, NULL, NULL);
	sv.bad_seq = 4;
	sp = mkspool(dir, "b", NULL);
	fill(sp, 6);
	s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_SMALLER);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	ck_assert_uint_eq(sv.last, 1);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	ck_assert_uint_eq(sv.last, 3);
	ck_assert_int_eq(step(s, &w), SENDER_SMALLER);
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_ptr_nonnull(strstr(lg.last, "HTTP 400 for seq 4"));
	ck_assert_ptr_nonnull(strstr(lg.last, "a frame this aggregator refuses"));
	ck_assert_int_eq(step(s, &w), SENDER_REFUSED);
	ck_assert_uint_eq(sv.last, 3);
	ck_assert_int_eq(sv.commits[5], 0);
	sender_free(s);
	spool_close(sp);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

static atomic_int rst_stop;

static void *rst_server(void *arg)
{
	int fd = *(int *)arg;
	while (!atomic_load(&rst_stop)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		char buf[256];
		(void)!read(c, buf, sizeof(buf));
		struct linger l = { 1, 0 };     /* close with RST */
		setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(c);
	}
	return NULL;
}

START_TEST(slow_answer_and_reset)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 4);
	/* the aggregator commits, but answers after the sender gave up: the
	 * resend is acknowledged as committed, and counted once */
	sv.slow_ms = 3000;
	struct sender_opts o = { .timeout_ns = S_NS };
	struct sender *s = mksender(sp, sv.port, "http", &lg, &o);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_ptr_nonnull(strstr(lg.last, "Timeout"));
	ck_assert_uint_eq(sv.last, 4);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	ck_assert_int_eq(step(s, &w), SENDER_IDLE);
	all_once(&sv, 1, 4);
	sender_free(s);
	srv_stop(&sv);

	/* a listener that resets every connection */
	int port, fd = loopback_socket(1, &port);
	pthread_t t;
	atomic_store(&rst_stop, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, rst_server, &fd), 0);
	fill(sp, 1);
	s = mksender(sp, port, "http", &lg, NULL);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_msg(strstr(lg.last, "reset") || strstr(lg.last, "Recv failure") ||
		      strstr(lg.last, "Send failure") || strstr(lg.last, "Empty reply"), "%s", lg.last);
	struct sender_stats st;
	sender_get_stats(s, &st);
	ck_assert_uint_eq(st.spool.batches, 1);
	ck_assert_uint_eq(st.by_result[SENDER_FAILED], 1);
	ck_assert_str_eq(st.last_error, lg.last);
	sender_free(s);
	atomic_store(&rst_stop, 1);
	pthread_join(t, NULL);
	close(fd);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	static char buf[3][8192];
	static int k;
	char *p = buf[k++ % 3];
	size_t n = fread(p, 1, sizeof(buf[0]) - 1, f);
	p[n] = '\0';
	fclose(f);
	return p;
}

START_TEST(tls)
{
	char dir[256], cmd[4096], path[400], ca[400], ca2[400];
	struct logged lg = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sendertls");
	/* a test CA; a server certificate for 127.0.0.1; one for another
	 * host name; a second CA nobody trusts */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && exec >openssl.log 2>&1 && set -e && "
		 "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
		 "openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=tally-test-ca && "
		 "openssl req -x509 $ec -keyout ca2.key -out ca2.pem -days 2 -subj /CN=tally-other-ca && "
		 "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ok.ext && "
		 "printf 'subjectAltName=DNS:wrong.example\\n' > wrong.ext && "
		 "for n in ok wrong; do openssl req $ec -keyout $n.key -out $n.csr -subj /CN=$n && "
		 "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
		 "-extfile $n.ext -out $n.pem; done",
		 dir);
	ck_assert_msg(system(cmd) == 0, "openssl failed: see %s/openssl.log", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(ca2, sizeof(ca2), "%s/ca2.pem", dir);

	struct srv sv = { 0 };
	snprintf(path, sizeof(path), "%s/ok.key", dir);
	char *key = slurp(path);
	snprintf(path, sizeof(path), "%s/ok.pem", dir);
	char *cert = slurp(path);
	srv_start(&sv, key, cert);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 3);
	/* trusted: delivered */
	struct sender_opts o = { .ca_file = ca };
	struct sender *s = mksender(sp, sv.port, "https", &lg, &o);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	all_once(&sv, 1, 3);
	sender_free(s);
	/* a CA that did not sign it: refused by the agent, one clear line */
	fill(sp, 1);
	o.ca_file = ca2;
	lg.n = 0;
	s = mksender(sp, sv.port, "https", &lg, &o);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_int_eq(lg.n, 1);
	ck_assert_msg(strstr(lg.last, "certificate"), "%s", lg.last);
	ck_assert_int_eq(sv.commits[4], 0);
	sender_free(s);
	/* a client certificate that cannot be loaded */
	o.ca_file = ca;
	snprintf(path, sizeof(path), "%s/no-such.pem", dir);
	o.cert_file = path;
	o.key_file = path;
	s = mksender(sp, sv.port, "https", &lg, &o);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_msg(strstr(lg.last, "certificate"), "%s", lg.last);
	sender_free(s);
	srv_stop(&sv);

	/* a certificate from our CA, but for another host name */
	struct srv sv2 = { 0 };
	snprintf(path, sizeof(path), "%s/wrong.key", dir);
	key = slurp(path);
	snprintf(path, sizeof(path), "%s/wrong.pem", dir);
	cert = slurp(path);
	srv_start(&sv2, key, cert);
	struct sender_opts o2 = { .ca_file = ca };
	s = mksender(sp, sv2.port, "https", &lg, &o2);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_msg(strstr(lg.last, "127.0.0.1") && (strstr(lg.last, "subject") || strstr(lg.last, "host")),
		      "%s", lg.last);
	ck_assert_int_eq(sv2.last, 0);
	sender_free(s);
	srv_stop(&sv2);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/* Two URLs of one aggregator, the first dead (a port nobody listens on):
 * the first request finds no one and the next goes to the second URL;
 * a 5xx moves on again, and round robin comes back to the first. */
START_TEST(second_url_after_failure)
{
	char dir[256], dead[100], live[100];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	struct tally_err e = { 0 };
	int64_t w;
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	int dport, fd = loopback_socket(0, &dport);   /* bound, not listening: refused */
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", dport);
	snprintf(live, sizeof(live), "http://127.0.0.1:%d/", sv.port);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 3);
	struct sender *s;
	struct sender_opts o = { .urls = { dead, live }, .n_urls = 2, .log = rec_log, .log_ctx = &lg,
				 .timeout_ns = 10 * S_NS };
	ck_assert_msg(sender_new(&s, sp, &o, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_ptr_nonnull(strstr(lg.last, dead));
	struct sender_stats st;
	sender_get_stats(s, &st);
	ck_assert_uint_eq(st.url_index, 1);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	all_once(&sv, 1, 3);
	/* the same server answering 500: on to the next (the dead one) */
	fill(sp, 1);
	sv.throttle = 4;
	ck_assert_int_eq(step(s, &w), SENDER_SERVER_ERROR);
	sender_get_stats(s, &st);
	ck_assert_uint_eq(st.url_index, 0);
	ck_assert_int_eq(step(s, &w), SENDER_FAILED);
	ck_assert_int_eq(step(s, &w), SENDER_OK);
	all_once(&sv, 1, 4);
	/* more URLs than it takes, and one that is not http(s) */
	struct sender_opts bad = { .urls = { live, "ftp://x" }, .n_urls = 2 };
	struct sender *s2;
	ck_assert_int_eq(sender_new(&s2, sp, &bad, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "ftp://x"));
	sender_free(s);
	spool_close(sp);
	close(fd);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

START_TEST(thread_end_to_end)
{
	char dir[256];
	struct srv sv = { 0 };
	struct logged lg = { 0 };
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "sender");
	srv_start(&sv, NULL, NULL);
	struct spool *sp = mkspool(dir, "a", NULL);
	fill(sp, 5);
	struct sender *s = mksender(sp, sv.port, "http", &lg, NULL);
	ck_assert_int_eq(sender_start(s, &e), 0);
	for (int i = 0; i < 25; i++) {
		fill(sp, 1);
		sender_wake(s);
	}
	/* wait (bounded) for the thread to have all 30 acknowledged: the
	 * server's having taken them is not enough, the sender may not have
	 * read the last answer yet (a slow machine, a sanitizer build) */
	struct sender_stats st;
	for (int i = 0; i < 1200; i++) {
		sender_get_stats(s, &st);
		if (st.batches_acked == 30)
			break;
		usleep(50 * 1000);
	}
	sender_stop(s);
	all_once(&sv, 1, 30);
	sender_get_stats(s, &st);
	ck_assert_uint_eq(st.batches_acked, 30);
	ck_assert_uint_eq(st.spool.batches, 0);
	ck_assert_int_eq(st.oldest_unsent_age_ns, 0);
	sender_free(s);
	spool_close(sp);
	srv_stop(&sv);
	tu_rmrf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sender");
	TCase *tc = tcase_create("sender");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, catch_up_in_few_requests);
	tcase_add_test(tc, wrong_token_refused);
	tcase_add_test(tc, throttled_and_backoff);
	tcase_add_test(tc, conflict_gap_resolves);
	tcase_add_test(tc, conflict_new_spool);
	tcase_add_test(tc, too_large_and_bad_frame);
	tcase_add_test(tc, slow_answer_and_reset);
	tcase_add_test(tc, tls);
	tcase_add_test(tc, second_url_after_failure);
	tcase_add_test(tc, thread_end_to_end);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
