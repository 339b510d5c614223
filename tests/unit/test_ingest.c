/*
 * test_ingest: the aggregator role end to end in one process: the real
 * pipeline (daemon/pipeline.c, role aggregator) on a thread, the real
 * listener (exporters/httpd.c) on 127.0.0.1 at a port the kernel picks, a
 * ledger in a fresh directory, and a client made here of the real encoder
 * (common/wire.c) and libcurl, or a raw socket where curl would not send
 * what the case needs.
 *
 * What each case proves is worked out from the protocol
 * (schemas/batch-wire.md), not from our output: replayed and reordered
 * batches counted once and the ledger equal to a direct in-process run of
 * the same simulated fleet (agg_ingest of the same batches, in order); a
 * token of another agent, no token, a wrong token, an oversize,
 * malformed, truncated, unknown-meter or slow body: refused with its 4xx,
 * nothing written, the aggregator still answering; a spool that does not
 * continue the committed seqs: 409 spool; a commit that fails as a full
 * disk does (the fault injector: SQLITE_FULL at the commit; the integration
 * test fills a real tmpfs): 503 with Retry-After, then everything once the
 * disk has room; TLS with a test CA made here by openssl, checked by the
 * agent's real sender (daemon/sender.c): accepted, an untrusted certificate
 * and a wrong host name refused with a clear line, client certificates.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "collector.h"
#include "crc32c.h"
#include "daemoncfg.h"
#include "fault.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "pipeline.h"
#include "sender.h"
#include "spool.h"
#include "state.h"
#include "tallytime.h"
#include "testutil.h"
#include "wire.h"

extern const struct collector_ops sim_collector;

#define T0 (1790812800LL * NS_PER_SEC)   /* 2026-10-01T00:00:00Z */
#define TOK_H1 "token-of-h1-0123456789"
#define TOK_H2 "token-of-h2-0123456789"
#define TOK_S0 "token-of-sim-host-0-0123456789"
#define TOK_S1 "token-of-sim-host-1-0123456789"
#define TOK_ADMIN "token-of-the-admin-0123456789"

/* ---- an aggregator: the pipeline of tallyd, role aggregator ---- */

struct agg {
	char dir[64], ledger[128];
	struct daemon_config cfg;
	struct ingest *ig;
	struct httpd_ingest hooks;
	struct live_store live;
	struct httpd *http;
	struct pipeline_outputs out;
	struct pipeline_summary sum;
	pthread_t th;
	volatile sig_atomic_t stop;
	int rc;
	struct tally_err e;
	int port;
	char scheme[8];
};

static void *agg_main(void *arg)
{
	struct agg *g = arg;
	g->rc = pipeline_run(&g->cfg, &g->out, &g->stop, &g->sum, &g->e);
	return NULL;
}

/* Start an aggregator in a fresh directory; extra is appended to its
 * config (an ingest: section, http keys after "  "). */
static void agg_start(struct agg *g, const char *http_extra, const char *extra)
{
	char text[4096];
	struct tally_err e = { 0 };
	memset(g, 0, sizeof(*g));
	tu_mkdtemp(g->dir, sizeof(g->dir), "ingest");
	snprintf(g->ledger, sizeof(g->ledger), "%s/ledger.db", g->dir);
	snprintf(text, sizeof(text),
		 "tallyd:\n  role: aggregator\n  agent_id: agg\n  data_dir: %s\n  interval: 10s\n"
		 "  log_level: %s\nrrd:\n  enabled: false\n"
		 "http:\n  port: 0\n  tokens:\n"
		 "    - {token: %s, agent: h1}\n    - {token: %s, agent: h2}\n"
		 "    - {token: %s, agent: sim-host-0}\n    - {token: %s, agent: sim-host-1}\n"
		 "    - {token: %s, admin: true}\n%s%s",
		 g->dir, getenv("TALLY_TEST_LOG") ? "info" : "error", TOK_H1, TOK_H2, TOK_S0, TOK_S1, TOK_ADMIN,
		 http_extra ? http_extra : "", extra ? extra : "");
	ck_assert_msg(daemon_config_load(&g->cfg, "test.yaml", text, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ingest_new(&g->ig, &g->cfg.ingest, &e), 0);
	ingest_listener(g->ig, &g->hooks);
	ck_assert_int_eq(live_store_init(&g->live), 0);
	struct httpd_config hc;
	httpd_section_config(&g->cfg.http, g->cfg.agg.ledger_path, NULL, &hc);
	hc.ingest = &g->hooks;
	ck_assert_msg(httpd_start(&g->http, &hc, &g->live, &e) == 0, "%s", e.msg);
	g->port = httpd_port(g->http);
	str_copy(g->scheme, g->cfg.http.tls_cert[0] ? "https" : "http", sizeof(g->scheme));
	g->out.live = &g->live;
	g->out.ingest = g->ig;
	ck_assert_int_eq(pthread_create(&g->th, NULL, agg_main, g), 0);
	/* the ledger is open once the first live snapshot is out */
	struct live_state *st = NULL;
	for (int i = 0; i < 3000 && !(st = live_acquire(&g->live)); i++)
		usleep(10 * 1000);
	ck_assert_msg(st, "the aggregator did not start: %s", g->e.msg);
	live_put(&g->live, st);
}

static void agg_stop(struct agg *g)
{
	g->stop = 1;
	pthread_join(g->th, NULL);
	ck_assert_msg(g->rc == 0, "the aggregator stopped with %d: %s", g->rc, g->e.msg);
	ingest_close(g->ig);
	httpd_stop(g->http);
	ingest_free(g->ig);
	live_store_release(&g->live);
	daemon_config_release(&g->cfg);
}

/* ---- the ledger, read as a reader would ---- */

static int64_t sql_int(const char *path, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Every row of q, one line each, in *out (malloc'd). */
static char *sql_rows(const char *path, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t len = 0, cap = 1 << 16;
	char *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	out[0] = '\0';
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q, sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			const char *t = (const char *)sqlite3_column_text(st, c);
			size_t n = strlen(t ? t : "") + 2;
			if (len + n + 1 > cap) {
				out = realloc(out, cap = (len + n + 1) * 2);
				ck_assert_ptr_nonnull(out);
			}
			len += (size_t)sprintf(out + len, "%s%c", t ? t : "", c + 1 < sqlite3_column_count(st) ? '|' : '\n');
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

#define Q_USAGE "SELECT r.uuid, m.name, u.device, u.hour_ns, u.quantity, u.spanned_ns, u.covered_ns, u.samples" \
		" FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id" \
		" ORDER BY 1, 2, 3, 4"
#define Q_SERIES "SELECT r.uuid, m.name, s.device, s.agent, s.last_ns, s.origin_ns, s.kind, s.last_value, s.flags" \
		 " FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id" \
		 " ORDER BY 1, 2, 3, 4"
#define Q_EVENTS "SELECT r.uuid, e.time_ns, e.agent, e.type, e.reason FROM events e JOIN resources r" \
		 " ON r.id = e.resource_id ORDER BY 1, 2, 4, 5"
#define Q_RES "SELECT uuid, type, name, tenant, flavor, host, first_seen_ns, last_seen_ns FROM resources ORDER BY 1"

/* ---- frames ---- */

struct fleet {
	struct batch *b;
	size_t n, cap;
};

static int keep(void *ctx, struct batch *b)
{
	struct fleet *f = ctx;
	if (f->n == f->cap) {
		f->b = realloc(f->b, (f->cap = f->cap ? f->cap * 2 : 64) * sizeof(*f->b));
		ck_assert_ptr_nonnull(f->b);
	}
	ck_assert_int_eq(batch_copy(&f->b[f->n++], b), 0);
	return 0;
}

static uint64_t seq_one(void *ctx, const char *agent)
{
	(void)ctx;
	(void)agent;
	return 1;
}

/* The simulated fleet (2 hosts, so agents sim-host-0 and -1), read at
 * `cycles` ticks 10 s apart: the batches in the order a batcher delivers
 * them, each agent's seqs from 1. Reboots, stops and migrations are
 * frequent, so events, resets and final readings are in it. */
static void sim_fleet(struct fleet *f, unsigned cycles)
{
	struct tally_err e = { 0 };
	const char *text = "vms: 6\ntenants: 2\nhosts: 2\nseed: 7\nloss: 0.1\nreboots_per_day: 10\n"
			   "stops_per_day: 6\nmigrations_per_day: 8\n";
	struct collector_env env = { .agent_id = "test", .interval_ns = 10 * NS_PER_SEC, .start_ns = T0,
				     .start_fixed = true };
	struct cfg_node *root = NULL;
	void *sim = NULL;
	ck_assert_int_eq(cfg_load_string("sim", text, strlen(text), &root, &e), 0);
	ck_assert_msg(sim_collector.configure(root, &env, &sim, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_int_eq(sim_collector.init(sim, 0, &e), 0);
	struct batcher bt;
	batcher_init(&bt, "test", keep, seq_one, f);
	struct sink sk = batcher_sink(&bt);
	for (unsigned c = 0; c < cycles; c++) {
		int64_t t = T0 + (int64_t)c * 10 * NS_PER_SEC;
		ck_assert_int_eq(sim_collector.read(sim, t, &sk, &e), 0);
		ck_assert_int_eq(batcher_flush(&bt, t), 0);
	}
	batcher_release(&bt);
	sim_collector.free(sim);
}

static void fleet_free(struct fleet *f)
{
	for (size_t i = 0; i < f->n; i++)
		batch_release(&f->b[i]);
	free(f->b);
}

static const struct wire_origin SPOOL_A = { { 0xa1, 0xa2, 0xa3, 0xa4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, 1 };

/* Append one frame of b to out. */
static void put_frame(struct wire_buf *out, const struct batch *b, const struct wire_origin *o)
{
	struct wire_enc enc;
	struct tally_err e = { 0 };
	wire_enc_init(&enc);
	ck_assert_msg(wire_encode(&enc, b, o, out, &e) == 0, "%s", e.msg);
	wire_enc_release(&enc);
}

/* A small batch of agent: one cpu reading of vm-<agent> at seq's tick. */
static void put_small(struct wire_buf *out, const char *agent, uint64_t seq, const struct wire_origin *o)
{
	struct batch b;
	batch_init(&b, agent);
	b.seq = seq;
	b.time_ns = T0 + (int64_t)seq * 10 * NS_PER_SEC;
	struct sample s = { .time_ns = b.time_ns, .meter = M_CPU, .kind = SAMPLE_CUMULATIVE };
	snprintf(s.resource, sizeof(s.resource), "vm-%s", agent);
	s.v.counter = seq * 1000;
	ck_assert_int_eq(batch_add_sample(&b, &s), 0);
	put_frame(out, &b, o);
	batch_release(&b);
}

/* Append the frame f to body. */
static void add_frame(struct wire_buf *body, const struct wire_buf *f)
{
	ck_assert_int_eq(wire_buf_reserve(body, f->len), 0);
	memcpy(body->p + body->len, f->p, f->len);
	body->len += f->len;
}

/* ---- the client ---- */

struct ans {
	long status;
	char body[2048];
	size_t len;
	long retry_after;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct ans *a = ctx;
	size_t k = sz * n, room = sizeof(a->body) - 1 - a->len;
	memcpy(a->body + a->len, p, k < room ? k : room);
	a->len += k < room ? k : room;
	a->body[a->len] = '\0';
	return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ctx)
{
	struct ans *a = ctx;
	if (sz * n > 12 && !strncasecmp(p, "Retry-After:", 12))
		a->retry_after = strtol(p + 12, NULL, 10);
	return sz * n;
}

/* POST body to /api/v1/ingest; token NULL: none. extra: one more header
 * line or NULL. method NULL: POST. */
static long request(struct agg *g, const char *method, const char *token, const void *body, size_t len,
		    const char *extra, struct ans *a)
{
	char url[128], auth[160];
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();
	memset(a, 0, sizeof(*a));
	a->retry_after = -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/ingest", g->port);
	if (!extra || strncasecmp(extra, "Content-Type:", 13))
		h = curl_slist_append(h, "Content-Type: application/x-tally-batch");
	h = curl_slist_append(h, "Expect:");
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	if (extra)
		h = curl_slist_append(h, extra);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (method) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	CURLcode cc = curl_easy_perform(c);
	ck_assert_msg(cc == CURLE_OK, "curl: %s", curl_easy_strerror(cc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return a->status;
}

static long post(struct agg *g, const char *token, const struct wire_buf *w, struct ans *a)
{
	return request(g, NULL, token, w->p, w->len, NULL, a);
}

/* The integer at key of a JSON body (-1: none); the string at key in str. */
static long long jint(const char *body, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(body, pat);
	return p ? atoll(p + strlen(pat)) : -1;
}

static void expect(long got, struct ans *a, long want, const char *what)
{
	ck_assert_msg(got == want, "%s: %ld (want %ld): %s", what, got, want, a->body);
}

/* ---- cases ---- */

/* Two agents' batches through replays, reordered requests, overlaps and
 * interleaving: each answer as the protocol says, and the ledger equal to
 * a direct in-process run of the same batches, row for row. */
START_TEST(t_exact)
{
	struct fleet f = { 0 };
	struct agg g;
	struct ans a;
	sim_fleet(&f, 240);
	/* each agent's frames, in seq order */
	struct wire_buf fr[2][300];
	size_t nf[2] = { 0, 0 };
	memset(fr, 0, sizeof(fr));
	for (size_t i = 0; i < f.n; i++) {
		int k = !strcmp(f.b[i].agent, "sim-host-1");
		ck_assert(k || !strcmp(f.b[i].agent, "sim-host-0"));
		ck_assert_uint_eq(f.b[i].seq, nf[k] + 1);
		struct wire_origin o = SPOOL_A;
		o.spool_id[0] = (uint8_t)k;
		put_frame(&fr[k][nf[k]++], &f.b[i], &o);
	}
	/* a host may have no VM at some tick (they migrate): nearly every tick */
	ck_assert_uint_gt(nf[0], 200);
	ck_assert_uint_gt(nf[1], 200);
	agg_start(&g, NULL, NULL);
	const char *tok[2] = { TOK_S0, TOK_S1 };
	uint64_t done[2] = { 0, 0 };   /* committed, as the answers said */
	unsigned step = 0;
	while (done[0] < nf[0] || done[1] < nf[1]) {
		for (int k = 0; k < 2; k++) {
			if (done[k] == nf[k])
				continue;
			step++;
			size_t n = 1 + (step * 7 + (unsigned)k) % 5;   /* 1..5 frames */
			if (done[k] + n > nf[k])
				n = nf[k] - done[k];
			struct wire_buf body = { 0 };
			if (step % 11 == 3 && done[k] + n + 2 <= nf[k]) {
				/* the frames after the next ones first: a gap */
				for (size_t i = done[k] + 2; i < done[k] + n + 2; i++)
					add_frame(&body, &fr[k][i]);
				expect(post(&g, tok[k], &body, &a), &a, 409, "a gap");
				ck_assert_msg(strstr(a.body, "\"reason\":\"gap\""), "%s", a.body);
				ck_assert_int_eq(jint(a.body, "last_seq"), (long long)done[k]);
				wire_buf_release(&body);
				continue;
			}
			if (step % 13 == 5 && n >= 2) {
				/* two frames swapped: not in order */
				for (size_t i = 0; i < n; i++)
					add_frame(&body, &fr[k][i == 0 ? done[k] + 1 : i == 1 ? done[k] : done[k] + i]);
				expect(post(&g, tok[k], &body, &a), &a, 409, "frames out of order");
				ck_assert_msg(strstr(a.body, "\"reason\":\"order\""), "%s", a.body);
				ck_assert_int_eq(jint(a.body, "last_seq"), (long long)done[k]);
				wire_buf_release(&body);
				continue;
			}
			/* some requests start a few frames back: committed ones again */
			size_t from = step % 7 == 2 && done[k] >= 3 ? done[k] - 3 : done[k];
			for (size_t i = from; i < done[k] + n; i++)
				add_frame(&body, &fr[k][i]);
			expect(post(&g, tok[k], &body, &a), &a, 200, "frames in order");
			ck_assert_int_eq(jint(a.body, "acked"), (long long)(done[k] + n));
			if (step % 3 == 0) {   /* the answer "lost": the same again */
				expect(post(&g, tok[k], &body, &a), &a, 200, "a replay");
				ck_assert_int_eq(jint(a.body, "acked"), (long long)(done[k] + n));
			}
			done[k] += n;
			wire_buf_release(&body);
		}
	}
	/* all of it once more, in one request per agent: nothing changes */
	for (int k = 0; k < 2; k++) {
		struct wire_buf body = { 0 };
		for (size_t i = 0; i < nf[k]; i++)
			add_frame(&body, &fr[k][i]);
		expect(post(&g, tok[k], &body, &a), &a, 200, "everything again");
		ck_assert_int_eq(jint(a.body, "acked"), (long long)nf[k]);
		wire_buf_release(&body);
	}
	agg_stop(&g);

	/* the same batches straight into an aggregator of this process */
	char rdir[64], rpath[128];
	struct tally_err e = { 0 };
	struct aggregator *ag;
	tu_mkdtemp(rdir, sizeof(rdir), "ingest-ref");
	snprintf(rpath, sizeof(rpath), "%s/ledger.db", rdir);
	struct agg_config ac = { .ledger_path = rpath, .max_gap_ns = 300 * NS_PER_SEC };
	ck_assert_int_eq(agg_open(&ag, &ac, &e), 0);
	for (size_t i = 0; i < f.n; i++)
		ck_assert_int_eq(agg_ingest(ag, &f.b[i], &e), 0);
	ck_assert_int_eq(agg_commit(ag, &e), 0);
	agg_close(ag);
	const char *qs[] = { Q_USAGE, Q_SERIES, Q_EVENTS, Q_RES };
	for (size_t q = 0; q < 4; q++) {
		char *want = sql_rows(rpath, qs[q]), *got = sql_rows(g.ledger, qs[q]);
		ck_assert_msg(strlen(want) > 0, "no rows for %s", qs[q]);
		ck_assert_msg(!strcmp(want, got), "the ledgers differ for %s", qs[q]);
		free(want);
		free(got);
	}
	ck_assert_int_gt(sql_int(g.ledger, "SELECT count(*) FROM events"), 5);
	ck_assert_int_gt(sql_int(g.ledger, "SELECT count(*) FROM usage"), 50);
	/* each batch counted once */
	ck_assert_int_eq(sql_int(g.ledger, "SELECT sum(batches) FROM agents"), (int64_t)(nf[0] + nf[1]));
	ck_assert_int_eq(sql_int(g.ledger, "SELECT last_seq FROM agents WHERE agent = 'sim-host-1'"),
			 (int64_t)nf[1]);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT spool_first_seq FROM agents WHERE agent = 'sim-host-0'"), 1);
	tu_rmrf(rdir);
	tu_rmrf(g.dir);
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < nf[k]; i++)
			wire_buf_release(&fr[k][i]);
	fleet_free(&f);
}
END_TEST

static void nothing_written(struct agg *g)
{
	ck_assert_int_eq(sql_int(g->ledger, "SELECT count(*) FROM usage"), 0);
	ck_assert_int_eq(sql_int(g->ledger, "SELECT count(*) FROM agents"), 0);
	ck_assert_int_eq(sql_int(g->ledger, "SELECT count(*) FROM resources"), 0);
}

/* A valid token of h1 with h2's batch: 403, nothing written. */
START_TEST(t_other_agent)
{
	struct agg g;
	struct ans a;
	struct wire_buf w = { 0 };
	agg_start(&g, NULL, NULL);
	put_small(&w, "h2", 1, &SPOOL_A);
	expect(post(&g, TOK_H1, &w, &a), &a, 403, "h2's batch with h1's token");
	ck_assert_msg(strstr(a.body, "'h2'") && strstr(a.body, "'h1'"), "%s", a.body);
	/* and a request of h1's batch followed by h2's: one agent per request */
	w.len = 0;
	put_small(&w, "h1", 1, &SPOOL_A);
	put_small(&w, "h2", 2, &SPOOL_A);
	expect(post(&g, TOK_H1, &w, &a), &a, 400, "two agents in one request");
	nothing_written(&g);
	/* h2's own token takes it */
	w.len = 0;
	put_small(&w, "h2", 1, &SPOOL_A);
	expect(post(&g, TOK_H2, &w, &a), &a, 200, "h2's batch with h2's token");
	ck_assert_int_eq(jint(a.body, "acked"), 1);
	agg_stop(&g);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT count(*) FROM agents WHERE agent = 'h1'"), 0);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT last_seq FROM agents WHERE agent = 'h2'"), 1);
	wire_buf_release(&w);
	tu_rmrf(g.dir);
}
END_TEST

/* Recompute a frame's CRC after a change to its body. */
static void reseal(uint8_t *frame, size_t len)
{
	uint32_t c = crc32c(0, frame, len - 4);
	frame[len - 4] = (uint8_t)c;
	frame[len - 3] = (uint8_t)(c >> 8);
	frame[len - 2] = (uint8_t)(c >> 16);
	frame[len - 1] = (uint8_t)(c >> 24);
}

/* Hostile and broken requests: each its 4xx, nothing written, and the
 * aggregator takes a good request afterwards. */
START_TEST(t_hostile)
{
	struct agg g;
	struct ans a;
	struct wire_buf w = { 0 };
	agg_start(&g, NULL, "ingest:\n  max_request: 4096\n");
	put_small(&w, "h1", 1, &SPOOL_A);
	expect(post(&g, NULL, &w, &a), &a, 401, "no token");
	expect(post(&g, "token-of-nobody-0123456789", &w, &a), &a, 401, "a wrong token");
	expect(post(&g, TOK_ADMIN, &w, &a), &a, 403, "an admin's token");
	expect(request(&g, "GET", TOK_H1, NULL, 0, NULL, &a), &a, 405, "a GET");
	expect(request(&g, NULL, TOK_H1, w.p, w.len, "Content-Type: application/json", &a), &a, 415,
	       "another content type");
	expect(request(&g, NULL, TOK_H1, w.p, w.len, "Transfer-Encoding: chunked", &a), &a, 411, "a chunked body");
	expect(request(&g, NULL, TOK_H1, "", 0, NULL, &a), &a, 400, "an empty body");
	/* oversize: refused from Content-Length, before the body */
	uint8_t *big = calloc(1, 5000);
	ck_assert_ptr_nonnull(big);
	expect(request(&g, NULL, TOK_H1, big, 5000, NULL, &a), &a, 413, "5000 bytes over max_request 4096");
	ck_assert_msg(strstr(a.body, "4096"), "%s", a.body);
	/* malformed: not a frame */
	expect(request(&g, NULL, TOK_H1, "GET / HTTP/1.1\r\n\r\nnot a frame at all", 36, NULL, &a), &a, 400,
	       "garbage");
	/* truncated: a frame without its last bytes, and a whole frame and a half */
	expect(request(&g, NULL, TOK_H1, w.p, w.len - 5, NULL, &a), &a, 400, "a truncated frame");
	ck_assert_msg(strstr(a.body, "truncated"), "%s", a.body);
	struct wire_buf two = { 0 };
	put_small(&two, "h1", 1, &SPOOL_A);
	put_small(&two, "h1", 2, &SPOOL_A);
	expect(request(&g, NULL, TOK_H1, two.p, two.len - 1, NULL, &a), &a, 400, "one frame and a truncated one");
	ck_assert_int_eq(jint(a.body, "seq"), 2);
	/* a flipped bit: the checksum */
	uint8_t *bad = malloc(w.len);
	memcpy(bad, w.p, w.len);
	bad[20] ^= 0x10;
	expect(request(&g, NULL, TOK_H1, bad, w.len, NULL, &a), &a, 400, "a flipped bit");
	/* a well-formed frame with a meter this aggregator does not know: "cpu"
	 * becomes "cpx" in its string table */
	memcpy(bad, w.p, w.len);
	uint8_t *m = memmem(bad, w.len, "\x03" "cpu", 4);
	ck_assert_ptr_nonnull(m);
	m[3] = 'x';
	reseal(bad, w.len);
	expect(request(&g, NULL, TOK_H1, bad, w.len, NULL, &a), &a, 422, "an unknown meter");
	ck_assert_msg(strstr(a.body, "unknown meter 'cpx'") && jint(a.body, "seq") == 1, "%s", a.body);
	nothing_written(&g);
	/* still alive: a good request */
	expect(post(&g, TOK_H1, &w, &a), &a, 200, "a good request after all that");
	agg_stop(&g);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT batches FROM agents WHERE agent = 'h1'"), 1);
	free(bad);
	free(big);
	wire_buf_release(&w);
	wire_buf_release(&two);
	tu_rmrf(g.dir);
}
END_TEST

/* A raw connection to the aggregator. */
static int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Whether the peer closed fd (EOF or reset) within limit_ms; anything it
 * sent first is read and dropped. */
static bool closed_within(int fd, int limit_ms)
{
	char b[512];
	for (int waited = 0; waited < limit_ms; waited += 50) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 50) > 0) {
			ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				return true;
		}
	}
	return false;
}

/* Slow bodies: one that trickles a byte now and then, one that stops
 * halfway: both closed at body_timeout (1 s here), not kept for ever,
 * nothing written, and the aggregator answers others meanwhile. */
START_TEST(t_slow_body)
{
	struct agg g;
	struct ans a;
	struct wire_buf w = { 0 };
	char head[400];
	agg_start(&g, NULL, "ingest:\n  body_timeout: 1s\n");
	put_small(&w, "h1", 1, &SPOOL_A);
	int n = snprintf(head, sizeof(head), "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
			 "Content-Length: %zu\r\n\r\n", TOK_H1, w.len);
	int stalled = raw_connect(g.port), trickle = raw_connect(g.port);
	ck_assert_int_eq(send(stalled, head, (size_t)n, 0), n);
	ck_assert_int_eq(send(stalled, w.p, 10, 0), 10);
	ck_assert_int_eq(send(trickle, head, (size_t)n, 0), n);
	size_t sent = 0;
	bool closed = false;
	/* a byte every 200 ms: at most 2 s of bytes, the frame is longer */
	for (int i = 0; i < 100 && !closed; i++) {
		if (send(trickle, w.p + sent, 1, MSG_NOSIGNAL) != 1)
			closed = true;
		else
			sent++;
		ck_assert_uint_lt(sent, w.len);
		closed = closed || closed_within(trickle, 200);
	}
	ck_assert_msg(closed, "a trickling body was kept after %zu bytes", sent);
	ck_assert_msg(closed_within(stalled, 15000), "a body that stopped halfway was kept");
	close(stalled);
	close(trickle);
	nothing_written(&g);
	expect(post(&g, TOK_H1, &w, &a), &a, 200, "a good request after the slow ones");
	agg_stop(&g);
	wire_buf_release(&w);
	tu_rmrf(g.dir);
}
END_TEST

/* A new spool must continue the committed seqs, or it is refused (409
 * spool) and nothing of it is taken. */
START_TEST(t_spool_identity)
{
	struct agg g;
	struct ans a;
	struct wire_buf w = { 0 };
	struct wire_origin b = SPOOL_A;
	b.spool_id[0] = 0xbb;
	agg_start(&g, NULL, NULL);
	for (uint64_t q = 1; q <= 3; q++)
		put_small(&w, "h1", q, &SPOOL_A);
	expect(post(&g, TOK_H1, &w, &a), &a, 200, "spool A, seqs 1-3");
	/* spool B from 1 again: a lost spool, or another host with this id */
	w.len = 0;
	put_small(&w, "h1", 1, &b);
	put_small(&w, "h1", 2, &b);
	expect(post(&g, TOK_H1, &w, &a), &a, 409, "a new spool from seq 1");
	ck_assert_msg(strstr(a.body, "\"reason\":\"spool\"") && jint(a.body, "last_seq") == 3 &&
		      strstr(a.body, "\"spool_id\":\"a1a2a3a4"), "%s", a.body);
	/* spool B started after 3 on purpose: taken */
	b.spool_first_seq = 4;
	w.len = 0;
	put_small(&w, "h1", 4, &b);
	expect(post(&g, TOK_H1, &w, &a), &a, 200, "a new spool continuing at 4");
	ck_assert_int_eq(jint(a.body, "acked"), 4);
	/* and A is now the other one */
	w.len = 0;
	put_small(&w, "h1", 5, &SPOOL_A);
	expect(post(&g, TOK_H1, &w, &a), &a, 409, "the old spool after the new one");
	/* frames of no spool, for an agent whose seqs came from one */
	w.len = 0;
	put_small(&w, "h1", 5, NULL);
	expect(post(&g, TOK_H1, &w, &a), &a, 409, "frames of no spool");
	/* a new agent whose spool starts at 5001: its first frame is 5001 */
	struct wire_origin c = b;
	c.spool_id[0] = 0xcc;
	c.spool_first_seq = 5001;
	w.len = 0;
	put_small(&w, "h2", 5002, &c);
	expect(post(&g, TOK_H2, &w, &a), &a, 409, "a new agent's spool, its first frame missing");
	ck_assert_int_eq(jint(a.body, "last_seq"), 0);
	w.len = 0;
	put_small(&w, "h2", 5001, &c);
	expect(post(&g, TOK_H2, &w, &a), &a, 200, "a new agent's spool from its first seq");
	agg_stop(&g);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT last_seq FROM agents WHERE agent = 'h1'"), 4);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT spool_first_seq FROM agents WHERE agent = 'h1'"), 4);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT batches FROM agents WHERE agent = 'h1'"), 4);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT last_seq FROM agents WHERE agent = 'h2'"), 5001);
	wire_buf_release(&w);
	tu_rmrf(g.dir);
}
END_TEST

/* The ledger's commit fails as on a full disk (SQLITE_FULL, through the
 * fault injector): 503 with Retry-After, nothing committed, later requests
 * 503 at once; once commits work again, the batches are taken once. */
START_TEST(t_commit_fails)
{
	struct agg g;
	struct ans a;
	struct wire_buf w = { 0 };
	agg_start(&g, NULL, NULL);
	put_small(&w, "h1", 1, &SPOOL_A);
	put_small(&w, "h1", 2, &SPOOL_A);
	fault_arm(FAULT_COMMIT, 1, true);
	expect(post(&g, TOK_H1, &w, &a), &a, 503, "a commit that fails");
	ck_assert_int_ge(a.retry_after, 1);
	expect(post(&g, TOK_H1, &w, &a), &a, 503, "while the ledger cannot be written");
	ck_assert_int_ge(a.retry_after, 1);
	fault_disarm();
	nothing_written(&g);
	/* after the back-off the next request commits what waited */
	int tries = 0;
	while (post(&g, TOK_H1, &w, &a) == 503 && tries++ < 200)
		usleep(100 * 1000);
	expect(a.status, &a, 200, "after the disk has room");
	ck_assert_int_eq(jint(a.body, "acked"), 2);
	agg_stop(&g);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT batches FROM agents WHERE agent = 'h1'"), 2);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT sum(samples) FROM usage"), 2);
	wire_buf_release(&w);
	tu_rmrf(g.dir);
}
END_TEST

/* ---- TLS: certificates made here ---- */

static char tdir[64];

static void make_certs(void)
{
	char cmd[2048];
	tu_mkdtemp(tdir, sizeof(tdir), "ingest-tls");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && exec >openssl.log 2>&1 && set -e && "
		 "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
		 "openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=tally-test-ca && "
		 "openssl req -x509 $ec -keyout ca2.key -out ca2.pem -days 2 -subj /CN=tally-other-ca && "
		 "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ok.ext && "
		 "printf 'subjectAltName=DNS:wrong.example\\n' > wrong.ext && "
		 "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
		 "for n in ok wrong client; do openssl req $ec -keyout $n.key -out $n.csr -subj /CN=$n && "
		 "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
		 "-extfile $n.ext -out $n.pem; done && "
		 "openssl req $ec -keyout rogue.key -out rogue.csr -subj /CN=rogue && "
		 "openssl x509 -req -in rogue.csr -CA ca2.pem -CAkey ca2.key -CAcreateserial -days 2 "
		 "-extfile client.ext -out rogue.pem",
		 tdir);
	ck_assert_msg(system(cmd) == 0, "openssl failed: see %s/openssl.log", tdir);
}

struct lines {
	int n;
	char last[600];
};

static void on_log(void *ctx, int level, const char *msg)
{
	struct lines *l = ctx;
	(void)level;
	if (getenv("TALLY_TEST_LOG"))
		fprintf(stderr, "sender: %s\n", msg);
	l->n++;
	str_copy(l->last, msg, sizeof(l->last));
}

/* The agent's real sender, for spool sp, against g, trusting ca. */
static struct sender *sender_for(struct agg *g, struct spool *sp, const char *host, const char *ca,
				 const char *cert, const char *key, const char *token, struct lines *lg)
{
	char url[128];
	struct sender *s;
	struct tally_err e = { 0 };
	snprintf(url, sizeof(url), "https://%s:%d", host, g->port);
	struct sender_opts o = { .url = url, .token = token, .ca_file = ca, .cert_file = cert, .key_file = key,
				 .timeout_ns = 10 * NS_PER_SEC, .log = on_log, .log_ctx = lg };
	ck_assert_msg(sender_new(&s, sp, &o, &e) == 0, "%s", e.msg);
	return s;
}

static struct spool *spool_with(const char *name, int batches)
{
	char p[200];
	struct spool *sp;
	struct tally_err e = { 0 };
	snprintf(p, sizeof(p), "%s/%s", tdir, name);
	ck_assert_msg(spool_open(&sp, p, "h1", NULL, NULL, &e) == 0, "%s", e.msg);
	for (int i = 0; i < batches; i++) {
		struct batch b;
		batch_init(&b, "h1");
		b.seq = spool_next_seq(sp);
		b.time_ns = T0 + (int64_t)b.seq * 10 * NS_PER_SEC;
		struct sample s = { .time_ns = b.time_ns, .meter = M_CPU, .kind = SAMPLE_CUMULATIVE };
		strcpy(s.resource, "vm-h1");
		s.v.counter = b.seq * 100;
		ck_assert_int_eq(batch_add_sample(&b, &s), 0);
		ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
		batch_release(&b);
	}
	return sp;
}

START_TEST(t_tls)
{
	char extra[1024], ca[128], ca2[128];
	struct agg g;
	struct lines lg = { 0 };
	int64_t w;
	make_certs();
	snprintf(ca, sizeof(ca), "%s/ca.pem", tdir);
	snprintf(ca2, sizeof(ca2), "%s/ca2.pem", tdir);
	snprintf(extra, sizeof(extra), "  tls_cert: %s/ok.pem\n  tls_key: %s/ok.key\n", tdir, tdir);
	agg_start(&g, extra, NULL);
	struct spool *sp = spool_with("spool", 3);
	/* trusted: taken */
	struct sender *s = sender_for(&g, sp, "127.0.0.1", ca, NULL, NULL, TOK_H1, &lg);
	ck_assert_int_eq(sender_step(s, &w), SENDER_OK);
	sender_free(s);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT last_seq FROM agents WHERE agent = 'h1'"), 3);
	/* the sender said its spool's depth: the 3 batches it sent, in one segment */
	ck_assert_int_eq(sql_int(g.ledger, "SELECT spool_batches FROM agents WHERE agent = 'h1'"), 3);
	ck_assert_int_gt(sql_int(g.ledger, "SELECT spool_bytes FROM agents WHERE agent = 'h1'"), 48);
	/* a CA that did not sign the aggregator's certificate: refused by the
	 * agent, one line saying why */
	struct spool_stats st;
	spool_close(sp);
	sp = spool_with("spool", 1);
	lg.n = 0;
	s = sender_for(&g, sp, "127.0.0.1", ca2, NULL, NULL, TOK_H1, &lg);
	ck_assert_int_eq(sender_step(s, &w), SENDER_FAILED);
	ck_assert_msg(lg.n == 1 && strstr(lg.last, "certificate"), "%d: %s", lg.n, lg.last);
	sender_free(s);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.acked_seq, 3);
	/* the right CA, a name the certificate does not have */
	lg.n = 0;
	s = sender_for(&g, sp, "localhost", ca, NULL, NULL, TOK_H1, &lg);
	ck_assert_int_eq(sender_step(s, &w), SENDER_OK);   /* localhost is in its names */
	sender_free(s);
	agg_stop(&g);
	/* an aggregator whose certificate names another host */
	snprintf(extra, sizeof(extra), "  tls_cert: %s/wrong.pem\n  tls_key: %s/wrong.key\n", tdir, tdir);
	agg_start(&g, extra, NULL);
	spool_close(sp);
	sp = spool_with("spool2", 1);
	lg.n = 0;
	s = sender_for(&g, sp, "127.0.0.1", ca, NULL, NULL, TOK_H1, &lg);
	ck_assert_int_eq(sender_step(s, &w), SENDER_FAILED);
	ck_assert_msg(lg.n == 1 && (strstr(lg.last, "subject name") || strstr(lg.last, "host name")),
		      "%d: %s", lg.n, lg.last);
	sender_free(s);
	/* plain HTTP to the TLS listener: a 400 saying so */
	struct ans a;
	struct wire_buf body = { 0 };
	put_small(&body, "h1", 1, &SPOOL_A);
	expect(post(&g, TOK_H1, &body, &a), &a, 400, "plain HTTP to a TLS listener");
	ck_assert_msg(strstr(a.body, "HTTPS"), "%s", a.body);
	wire_buf_release(&body);
	nothing_written(&g);
	agg_stop(&g);
	tu_rmrf(g.dir);
	/* client certificates: none, one of another CA, one of ours */
	snprintf(extra, sizeof(extra), "  tls_cert: %s/ok.pem\n  tls_key: %s/ok.key\n  tls_client_ca: %s/ca.pem\n",
		 tdir, tdir, tdir);
	agg_start(&g, extra, NULL);
	char cert[128], key[128];
	lg.n = 0;
	s = sender_for(&g, sp, "127.0.0.1", ca, NULL, NULL, TOK_H1, &lg);
	ck_assert_int_eq(sender_step(s, &w), SENDER_REFUSED);
	ck_assert_msg(strstr(lg.last, "403") || strstr(lg.last, "client certificate"), "%s", lg.last);
	sender_free(s);
	snprintf(cert, sizeof(cert), "%s/rogue.pem", tdir);
	snprintf(key, sizeof(key), "%s/rogue.key", tdir);
	s = sender_for(&g, sp, "127.0.0.1", ca, cert, key, TOK_H1, &lg);
	int r = sender_step(s, &w);
	ck_assert_msg(r == SENDER_REFUSED || r == SENDER_FAILED, "a client certificate of another CA: %d", r);
	sender_free(s);
	nothing_written(&g);
	snprintf(cert, sizeof(cert), "%s/client.pem", tdir);
	snprintf(key, sizeof(key), "%s/client.key", tdir);
	s = sender_for(&g, sp, "127.0.0.1", ca, cert, key, TOK_H1, &lg);
	ck_assert_int_eq(sender_step(s, &w), SENDER_OK);
	sender_free(s);
	agg_stop(&g);
	ck_assert_int_eq(sql_int(g.ledger, "SELECT last_seq FROM agents WHERE agent = 'h1'"), 1);
	spool_close(sp);
	tu_rmrf(g.dir);
	tu_rmrf(tdir);
}
END_TEST

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_ALL);
	Suite *s = suite_create("ingest");
	TCase *tc = tcase_create("ingest");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_exact);
	tcase_add_test(tc, t_other_agent);
	tcase_add_test(tc, t_hostile);
	tcase_add_test(tc, t_slow_body);
	tcase_add_test(tc, t_spool_identity);
	tcase_add_test(tc, t_commit_fails);
	tcase_add_test(tc, t_tls);
	suite_add_tcase(s, tc);
	int rc = tu_run(s);
	curl_global_cleanup();
	return rc;
}
