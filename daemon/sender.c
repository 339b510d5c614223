/*
 * sender.c: POST the spool's frames to the aggregator with libcurl (see
 * sender.h; the answers and what each makes the sender do are in
 * schemas/batch-wire.md).
 */
#include "sender.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "str.h"
#include "tallytime.h"

#define REPLY_MAX      (64 * 1024)            /* bytes of an answer we read */
#define RETRY_AFTER_MAX (3600LL * NS_PER_SEC) /* the longest Retry-After honoured */
#define REPEAT_LOG_NS  (600LL * NS_PER_SEC)   /* a repeated failure is logged again after this */
#define IDLE_POLL_NS   (1LL * NS_PER_SEC)     /* an idle thread looks anyway this often */

struct sender {
	struct spool *sp;
	char urls[SENDER_MAX_URLS][1024];
	size_t n_urls, cur;             /* URLs given; the one in use */
	const char *url;                /* urls[cur] */
	char auth[600];
	char ca_file[1024], cert_file[1024], key_file[1024];
	int64_t timeout_ns, connect_timeout_ns, backoff_min_ns, backoff_max_ns;
	size_t max_frames, max_bytes;
	sender_log_fn log;
	void *log_ctx;

	CURL *h;
	struct curl_slist *hdr;
	char errbuf[CURL_ERROR_SIZE];
	struct wire_buf body;
	char *reply;
	size_t reply_len;
	int64_t retry_after_ns;         /* from the last answer's header, -1 = none */

	uint64_t next;                  /* seq of the next frame to send */
	size_t frames_now;              /* frames per request now (halved by 413) */
	int64_t backoff_ns;             /* the current back-off step, 0 = none */
	uint64_t last_conflict;         /* last_seq of the previous 409, to stop loops */
	uint64_t rng;

	/* logging: the last line said and how often it repeated since */
	char said[300];
	int64_t said_ns;
	uint64_t repeats;
	int failing;

	pthread_mutex_t mu;             /* guards st, and the wake/stop handshake */
	pthread_cond_t cv;
	int woken;
	atomic_int stop;
	pthread_t thread;
	int running;
	struct sender_stats st;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void default_log(void *ctx, int level, const char *msg)
{
	log_msg((enum log_level)level, "%s", msg);
}

/* Say msg unless it is what was said last, less than REPEAT_LOG_NS ago. */
static void say(struct sender *s, int level, const char *msg)
{
	int64_t now = mono_ns();
	if (!strcmp(msg, s->said) && now - s->said_ns < REPEAT_LOG_NS) {
		s->repeats++;
		return;
	}
	if (s->repeats && !strcmp(msg, s->said)) {
		char line[400];
		snprintf(line, sizeof(line), "%s (%" PRIu64 " more times since)", msg, s->repeats);
		s->log(s->log_ctx, level, line);
	} else {
		s->log(s->log_ctx, level, msg);
	}
	str_copy(s->said, msg, sizeof(s->said));
	s->said_ns = now;
	s->repeats = 0;
}

static void fail(struct sender *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct sender *s, int level, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->failing++;
	pthread_mutex_lock(&s->mu);
	str_copy(s->st.last_error, msg, sizeof(s->st.last_error));
	pthread_mutex_unlock(&s->mu);
	say(s, level, msg);
}

static uint64_t rnd(struct sender *s)
{
	/* xorshift64*: jitter only, not secrets */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ULL;
}

/* The next back-off wait: doubled step, drawn in [step/2, step]. */
static int64_t backoff(struct sender *s)
{
	s->backoff_ns = s->backoff_ns ? s->backoff_ns * 2 : s->backoff_min_ns;
	if (s->backoff_ns > s->backoff_max_ns)
		s->backoff_ns = s->backoff_max_ns;
	int64_t half = s->backoff_ns / 2;
	return half + (int64_t)(rnd(s) % (uint64_t)(half + 1));
}

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct sender *s = ctx;
	size_t add = sz * n, room = REPLY_MAX - s->reply_len;
	if (add > room)
		add = room;
	memcpy(s->reply + s->reply_len, p, add);
	s->reply_len += add;
	s->reply[s->reply_len] = '\0';
	return sz * n;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3) */
static size_t on_header(char *p, size_t sz, size_t n, void *ctx)
{
	struct sender *s = ctx;
	size_t len = sz * n;
	static const char name[] = "retry-after:";
	if (len > sizeof(name) - 1 && len < 200 && !strncasecmp(p, name, sizeof(name) - 1)) {
		char v[200];
		size_t k = len - (sizeof(name) - 1);
		memcpy(v, p + sizeof(name) - 1, k);
		v[k] = '\0';
		char *a = v + strspn(v, " \t"), *end;
		a[strcspn(a, "\r\n")] = '\0';
		unsigned long long secs = strtoull(a, &end, 10);
		if (end != a && *end == '\0' && a[0] != '-') {
			s->retry_after_ns = secs > 3600 ? RETRY_AFTER_MAX : (int64_t)secs * NS_PER_SEC;
		} else {
			time_t t = curl_getdate(a, NULL);
			if (t > 0) {
				int64_t d = ((int64_t)t - (int64_t)time(NULL)) * NS_PER_SEC;
				s->retry_after_ns = d < 0 ? 0 : d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d;
			}
		}
	}
	return len;
}

static int on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct sender *s = ctx;
	return atomic_load(&s->stop) ? 1 : 0;   /* non-zero aborts the transfer */
}

int sender_new(struct sender **out, struct spool *sp, const struct sender_opts *o, struct tally_err *e)
{
	struct sender *s = calloc(1, sizeof(*s));
	struct spool_stats st;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	s->sp = sp;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	const char *const *urls = o->n_urls ? o->urls : &o->url;
	size_t n_urls = o->n_urls ? o->n_urls : 1;
	if (n_urls > SENDER_MAX_URLS) {
		rc = err_set(e, -EINVAL, "sender: more than %d aggregator URLs", SENDER_MAX_URLS);
		goto fail;
	}
	for (size_t i = 0; i < n_urls; i++) {
		const char *u = urls[i];
		if (!u || !u[0]) {
			rc = err_set(e, -EINVAL, "sender: no aggregator URL");
			goto fail;
		}
		size_t ul = strlen(u);
		while (ul && u[ul - 1] == '/')
			ul--;
		if (ul + sizeof("/api/v1/ingest") > sizeof(s->urls[i]) ||
		    (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))) {
			rc = err_set(e, -EINVAL, "sender: aggregator URL '%.200s' is not an http:// or https:// URL"
				     " of at most %zu bytes", u, sizeof(s->urls[i]) - sizeof("/api/v1/ingest"));
			goto fail;
		}
		snprintf(s->urls[i], sizeof(s->urls[i]), "%.*s/api/v1/ingest", (int)ul, u);
	}
	s->n_urls = n_urls;
	s->url = s->urls[0];
	if (o->token && o->token[0]) {
		if (strpbrk(o->token, "\r\n") || strlen(o->token) > 512) {
			rc = err_set(e, -EINVAL, "sender: the token has a line break or is over 512 bytes");
			goto fail;
		}
		snprintf(s->auth, sizeof(s->auth), "Authorization: Bearer %s", o->token);
	}
	if ((o->ca_file && !str_copy(s->ca_file, o->ca_file, sizeof(s->ca_file))) ||
	    (o->cert_file && !str_copy(s->cert_file, o->cert_file, sizeof(s->cert_file))) ||
	    (o->key_file && !str_copy(s->key_file, o->key_file, sizeof(s->key_file)))) {
		rc = err_set(e, -EINVAL, "sender: a TLS file name is too long");
		goto fail;
	}
	s->timeout_ns = o->timeout_ns ? o->timeout_ns : 30 * NS_PER_SEC;
	s->connect_timeout_ns = o->connect_timeout_ns ? o->connect_timeout_ns : 10 * NS_PER_SEC;
	s->backoff_min_ns = o->backoff_min_ns ? o->backoff_min_ns : NS_PER_SEC;
	s->backoff_max_ns = o->backoff_max_ns ? o->backoff_max_ns : 60 * NS_PER_SEC;
	if (s->backoff_max_ns < s->backoff_min_ns)
		s->backoff_max_ns = s->backoff_min_ns;
	s->max_frames = o->max_frames ? o->max_frames : 1024;
	s->max_bytes = o->max_request_bytes ? o->max_request_bytes : 4u << 20;
	s->frames_now = s->max_frames;
	s->log = o->log ? o->log : default_log;
	s->log_ctx = o->log_ctx;
	if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || !s->rng)
		s->rng = (uint64_t)mono_ns() | 1;
	spool_get_stats(sp, &st);
	s->next = st.acked_seq + 1;

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		rc = err_set(e, -ENOMEM, "sender: cannot initialise libcurl");
		goto fail;
	}
	if (!(s->reply = malloc(REPLY_MAX + 1)) || !(s->h = curl_easy_init()) ||
	    !(s->hdr = curl_slist_append(NULL, "Content-Type: application/x-tally-batch")) ||
	    !(s->hdr = curl_slist_append(s->hdr, "Accept: application/json")) ||
	    !(s->hdr = curl_slist_append(s->hdr, "Expect:")) ||
	    (s->auth[0] && !(s->hdr = curl_slist_append(s->hdr, s->auth)))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	CURL *h = s->h;
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->hdr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(s->timeout_ns / 1000000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->connect_timeout_ns / 1000000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, (void *)s);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)s);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tallyd");
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
	if (s->cert_file[0])
		curl_easy_setopt(h, CURLOPT_SSLCERT, s->cert_file);
	if (s->key_file[0])
		curl_easy_setopt(h, CURLOPT_SSLKEY, s->key_file);
	*out = s;
	return 0;
fail:
	sender_free(s);
	return rc;
}

void sender_free(struct sender *s)
{
	if (!s)
		return;
	if (s->running)
		sender_stop(s);
	if (s->h)
		curl_easy_cleanup(s->h);
	curl_slist_free_all(s->hdr);
	free(s->reply);
	wire_buf_release(&s->body);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* The next request goes to the next URL (one aggregator behind them all). */
static void next_url(struct sender *s)
{
	if (s->n_urls < 2)
		return;
	s->cur = (s->cur + 1) % s->n_urls;
	s->url = s->urls[s->cur];
	pthread_mutex_lock(&s->mu);
	s->st.url_index = s->cur;
	pthread_mutex_unlock(&s->mu);
}

static void count(struct sender *s, int result, size_t frames)
{
	pthread_mutex_lock(&s->mu);
	s->st.requests++;
	s->st.by_result[result]++;
	s->st.frames_sent += frames;
	s->st.refusing = result == SENDER_REFUSED;
	pthread_mutex_unlock(&s->mu);
}

/* A JSON integer member of the reply, or -1. */
static int64_t reply_int(struct sender *s, const char *key, char *str, size_t str_size)
{
	json_error_t je;
	json_t *o = json_loadb(s->reply, s->reply_len, 0, &je);
	int64_t v = -1;
	if (o && json_is_object(o)) {
		json_t *m = json_object_get(o, key);
		if (json_is_integer(m) && json_integer_value(m) >= 0)
			v = json_integer_value(m);
		if (str) {
			json_t *r = json_object_get(o, "reason");
			str_copy(str, json_is_string(r) ? json_string_value(r) : "", str_size);
		}
	}
	json_decref(o);
	return v;
}

/* The server's "error" text, for a log line; "" when none. */
static const char *reply_error(struct sender *s, char *buf, size_t size)
{
	json_error_t je;
	json_t *o = json_loadb(s->reply, s->reply_len, 0, &je);
	json_t *m = o ? json_object_get(o, "error") : NULL;
	str_copy(buf, json_is_string(m) ? json_string_value(m) : "", size);
	json_decref(o);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return buf;
}

/* Where to go on after a 409 gap/order naming the aggregator's last. */
static int resume(struct sender *s, uint64_t last, int64_t *wait_ns)
{
	uint64_t oldest = spool_oldest_seq(s->sp), next_spool = spool_next_seq(s->sp);
	struct tally_err e = { 0 };
	pthread_mutex_lock(&s->mu);
	s->st.aggregator_seq = last;
	pthread_mutex_unlock(&s->mu);
	if (last + 1 > next_spool) {
		fail(s, LOG_ERR, "sender: %s: the aggregator has committed up to seq %" PRIu64 " for this agent, "
		     "beyond this spool's last (%" PRIu64 "): another agent uses this id, or this spool is a copy",
		     s->url, last, next_spool - 1);
		*wait_ns = s->backoff_max_ns;
		return SENDER_REFUSED;
	}
	if (last + 1 < oldest) {
		fail(s, LOG_ERR, "sender: %s: the aggregator asks for seq %" PRIu64 ", but this spool deleted "
		     "seqs before %" PRIu64 " after the aggregator acknowledged them (was its ledger restored "
		     "from an older copy?)", s->url, last + 1, oldest);
		*wait_ns = s->backoff_max_ns;
		return SENDER_REFUSED;
	}
	if (last == s->last_conflict && s->next == last + 1) {
		/* the same answer twice for the same request: do not spin */
		*wait_ns = backoff(s);
		fail(s, LOG_WARN, "sender: %s: the aggregator answers 409 for seq %" PRIu64 " again", s->url,
		     last + 1);
		return SENDER_SERVER_ERROR;
	}
	s->last_conflict = last;
	if (last >= s->next && spool_ack(s->sp, last, &e)) {
		fail(s, LOG_ERR, "sender: %s", e.msg);
		*wait_ns = backoff(s);
		return SENDER_SPOOL_ERROR;
	}
	s->next = last + 1;
	*wait_ns = 0;
	return SENDER_RESUMED;
}

int sender_step(struct sender *s, int64_t *wait_ns)
{
	struct tally_err e = { 0 };
	size_t n = 0;
	long status = 0;
	char why[200];
	int result;

	*wait_ns = 0;
	uint64_t oldest = spool_oldest_seq(s->sp);
	if (s->next < oldest) {
		/* acknowledged and deleted meanwhile (an ack from an earlier
		 * answer): go on from the oldest still there */
		struct spool_stats st;
		spool_get_stats(s->sp, &st);
		s->next = st.acked_seq + 1 > oldest ? st.acked_seq + 1 : oldest;
	}
	s->body.len = 0;
	int rc = spool_read(s->sp, s->next, s->frames_now, s->max_bytes, &s->body, &n, &e);
	if (rc) {
		fail(s, LOG_ERR, "sender: %s", e.msg);
		*wait_ns = backoff(s);
		count(s, SENDER_SPOOL_ERROR, 0);
		return SENDER_SPOOL_ERROR;
	}
	if (!n)
		return SENDER_IDLE;
	uint64_t first = s->next, last = s->next + n - 1;

	s->reply_len = 0;
	s->reply[0] = '\0';
	s->errbuf[0] = '\0';
	s->retry_after_ns = -1;
	curl_easy_setopt(s->h, CURLOPT_URL, s->url);
	curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, (const char *)s->body.p);
	curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
	/* the spool's depth now, for the aggregator's `tally agents`
	 * (schemas/batch-wire.md, Tally-Spool): one header in front of the
	 * fixed ones, for this request only */
	struct spool_stats depth;
	char spool_hdr[96];
	spool_get_stats(s->sp, &depth);
	snprintf(spool_hdr, sizeof(spool_hdr), "Tally-Spool: batches=%" PRIu64 " bytes=%" PRIu64, depth.batches,
		 depth.bytes);
	struct curl_slist spool_line = { .data = spool_hdr, .next = s->hdr };
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, &spool_line);
	CURLcode cc = curl_easy_perform(s->h);
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
	if (cc != CURLE_OK) {
		fail(s, LOG_WARN, "sender: %s: %s%s%s; seqs %" PRIu64 "-%" PRIu64 " stay spooled", s->url,
		     curl_easy_strerror(cc), s->errbuf[0] ? ": " : "", s->errbuf, first, last);
		*wait_ns = backoff(s);
		count(s, SENDER_FAILED, n);
		next_url(s);
		return SENDER_FAILED;
	}
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	switch (status) {
	case 200: {
		int64_t acked = reply_int(s, "acked", NULL, 0);
		if (acked < 0 || (uint64_t)acked + 1 < first || (uint64_t)acked > last) {
			fail(s, LOG_WARN, "sender: %s: a 200 without a usable \"acked\" for seqs %" PRIu64 "-%" PRIu64
			     " (got %.80s)", s->url, first, last, s->reply);
			*wait_ns = backoff(s);
			result = SENDER_SERVER_ERROR;
			break;
		}
		if ((uint64_t)acked >= first && spool_ack(s->sp, (uint64_t)acked, &e)) {
			fail(s, LOG_ERR, "sender: %s", e.msg);
			*wait_ns = backoff(s);
			result = SENDER_SPOOL_ERROR;
			break;
		}
		s->next = (uint64_t)acked + 1;
		s->last_conflict = 0;
		pthread_mutex_lock(&s->mu);
		if ((uint64_t)acked >= first) {
			s->st.batches_acked += (uint64_t)acked - first + 1;
			s->st.last_ack_ns = time_now_ns();
		}
		s->st.aggregator_seq = (uint64_t)acked;
		s->st.last_error[0] = '\0';
		pthread_mutex_unlock(&s->mu);
		if (s->failing) {
			char msg[300];
			snprintf(msg, sizeof(msg), "sender: %s: delivering again after %d failed attempt(s)", s->url,
				 s->failing);
			s->failing = 0;
			s->said[0] = '\0';
			say(s, LOG_INFO, msg);
		}
		s->backoff_ns = 0;
		/* after a 413 or 400, grow back step by step */
		s->frames_now = s->frames_now > s->max_frames / 2 ? s->max_frames : s->frames_now * 2;
		if ((uint64_t)acked < first)
			*wait_ns = backoff(s);  /* nothing committed: do not hammer */
		result = SENDER_OK;
		break;
	}
	case 409: {
		char reason[32];
		int64_t l = reply_int(s, "last_seq", reason, sizeof(reason));
		if (!strcmp(reason, "spool")) {
			fail(s, LOG_ERR, "sender: %s: the aggregator holds this agent's seqs up to %" PRId64 " from "
			     "another spool: two agents share an id, or the agent's spool was lost; restore it, or "
			     "start a new spool whose first seq is %" PRId64 " (docs/transport.md)", s->url, l, l + 1);
			*wait_ns = s->backoff_max_ns;
			result = SENDER_REFUSED;
		} else if (l < 0) {
			fail(s, LOG_WARN, "sender: %s: a 409 without \"last_seq\" (%.80s)", s->url, s->reply);
			*wait_ns = backoff(s);
			result = SENDER_SERVER_ERROR;
		} else {
			result = resume(s, (uint64_t)l, wait_ns);
		}
		break;
	}
	case 413:
	case 400:
		if (n > 1) {
			/* narrow down: fewer frames per request */
			s->frames_now = status == 400 ? 1 : n / 2;
			result = SENDER_SMALLER;
			break;
		}
		fail(s, LOG_ERR, "sender: %s: HTTP %ld for seq %" PRIu64 " (%zu bytes): %s; it stays spooled, "
		     "retried every %" PRId64 " s", s->url, status, first, s->body.len,
		     reply_error(s, why, sizeof(why)), (int64_t)(s->backoff_max_ns / NS_PER_SEC));
		*wait_ns = s->backoff_max_ns;
		result = SENDER_REFUSED;
		break;
	case 429:
	case 503:
		if (s->retry_after_ns >= 0) {
			*wait_ns = s->retry_after_ns < s->backoff_min_ns ? s->backoff_min_ns : s->retry_after_ns;
		} else {
			*wait_ns = backoff(s);
		}
		fail(s, LOG_WARN, "sender: %s: HTTP %ld (%s): waiting %" PRId64 " s", s->url, status,
		     reply_error(s, why, sizeof(why)), (int64_t)(*wait_ns / NS_PER_SEC));
		result = SENDER_THROTTLED;
		break;
	default:
		if (status >= 400 && status < 500) {
			fail(s, LOG_ERR, "sender: %s: HTTP %ld for seqs %" PRIu64 "-%" PRIu64 ": %s; retried every %"
			     PRId64 " s", s->url, status, first, last, reply_error(s, why, sizeof(why)),
			     (int64_t)(s->backoff_max_ns / NS_PER_SEC));
			*wait_ns = s->backoff_max_ns;
			result = SENDER_REFUSED;
		} else {
			fail(s, LOG_WARN, "sender: %s: HTTP %ld: %s", s->url, status, reply_error(s, why, sizeof(why)));
			*wait_ns = backoff(s);
			result = SENDER_SERVER_ERROR;
			if (status >= 500)
				next_url(s);
		}
		break;
	}
	count(s, result, n);
	return result;
}

static void *run(void *arg)
{
	struct sender *s = arg;
	while (!atomic_load(&s->stop)) {
		int64_t wait;
		int r = sender_step(s, &wait);
		pthread_mutex_lock(&s->mu);
		if (r == SENDER_IDLE) {
			wait = IDLE_POLL_NS;
		} else if (wait > 0) {
			s->woken = 0;   /* a new batch does not shorten a back-off */
		}
		if (wait > 0 && !atomic_load(&s->stop)) {
			struct timespec ts;
			int64_t until = mono_ns() + wait;
			ts.tv_sec = until / NS_PER_SEC;
			ts.tv_nsec = until % NS_PER_SEC;
			while (!atomic_load(&s->stop) && !(r == SENDER_IDLE && s->woken) &&
			       pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
				;
		}
		s->woken = 0;
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

int sender_start(struct sender *s, struct tally_err *e)
{
	atomic_store(&s->stop, 0);
	int rc = pthread_create(&s->thread, NULL, run, s);
	if (rc)
		return err_set(e, -rc, "sender: cannot start its thread: %s", strerror(rc));
	s->running = 1;
	return 0;
}

void sender_stop(struct sender *s)
{
	if (!s->running)
		return;
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stop, 1);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->running = 0;
}

void sender_wake(struct sender *s)
{
	pthread_mutex_lock(&s->mu);
	s->woken = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void sender_get_stats(struct sender *s, struct sender_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	pthread_mutex_unlock(&s->mu);
	spool_get_stats(s->sp, &st->spool);
	st->oldest_unsent_age_ns = st->spool.oldest_time_ns ? time_now_ns() - st->spool.oldest_time_ns : 0;
	if (st->oldest_unsent_age_ns < 0)
		st->oldest_unsent_age_ns = 0;
}
