/*
 * simagents: a fleet of simulated agents posting to one aggregator's
 * POST /api/v1/ingest (schemas/batch-wire.md, "The ingest protocol"), for
 * the integration tests (tests/integration/ingest.sh) and the benchmark
 * (bench/ingest.sh).
 *
 * The fleet is the simulated fleet of the sim collector (collectors/sim.h):
 * VMS VMs on HOSTS hosts, read at every tick from START to END (both
 * included) exactly as an all-in-one tallyd in fast-forward reads it, so a
 * ledger fed by simagents must equal that tallyd's row for row. Each host
 * is one agent: its batches are encoded once into wire frames (with a spool
 * identity of its own, first seq 1) and sent, oldest first, up to
 * MAX_FRAMES frames or MAX_BYTES bytes per request, by one thread per
 * agent, as the agent's sender does (daemon/sender.c): a frame is dropped
 * only when a 200 acknowledges it; a 409 gap/order resumes after the
 * aggregator's last_seq; a 429 or 503 waits for Retry-After. The generator
 * keeps at most BACKLOG frames per agent waiting (its "spool", in memory).
 *
 * Faults for the tests: --replay P sends a request again after its 200
 * (the aggregator must acknowledge it and count nothing); --reorder P sends
 * the frames after a request's before it (a 409 gap, then the sender
 * resumes); --shuffle P swaps two frames inside a request (a 409 order).
 *
 * Prints one summary line: requests by status, batches, samples, wall time,
 * samples/s, and the end-to-end lag from a batch's encoding to its
 * acknowledgement (median and max). Exit 0 when every batch was
 * acknowledged, 1 on an answer no sender acts on by itself (400, 401, 403,
 * 409 spool, 413 for one frame, 422) or a failure, 2 on a bad command line.
 *
 * Several -u URL (up to 4): aggregators sharing one ledger (PostgreSQL,
 * active-active); agent i posts to the (i mod n)th.
 *
 * usage: simagents -u URL [-u URL...] [--token-prefix P] [--vms N] [--hosts H] [--seed S]
 *        [--tenants T] [--loss L] [--start TIME] [--end TIME] [--interval 10s]
 *        [--max-frames N] [--max-bytes B] [--backlog N] [--ca FILE]
 *        [--cert FILE --key FILE] [--replay P] [--reorder P] [--shuffle P]
 *        [--spool-first N] [--quiet]
 * The token of agent A is P followed by A (tests and the bench write the
 * aggregator's config the same way).
 */
#include "batch.h"
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "str.h"
#include "tallytime.h"
#include "wire.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

extern const struct collector_ops sim_collector;

#define MAX_AGENTS 4096

struct frame {
	uint64_t seq;
	size_t off, len;             /* in the agent's buffer */
	int64_t made_ns;             /* monotonic, when encoded */
	uint32_t samples;
};

struct agent {
	char id[TALLY_ID_MAX];
	const char *url;             /* the aggregator it posts to */
	struct wire_origin origin;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* frames not yet acknowledged, oldest first: f[head..n) over buf */
	struct frame *f;
	size_t head, n, cap;
	struct wire_buf buf;         /* bytes of f[head..n), from buf_off */
	size_t buf_off;
	uint64_t next_seq;           /* the generator's */
	uint64_t acked;
	bool done;                   /* the generator made its last frame */
	/* the sender */
	pthread_t th;
	unsigned seed;
	uint64_t requests, status[600], samples_acked, frames_acked, replays;
	int failed;
	char why[400];
	double *lag;                 /* seconds, one per acknowledged frame */
	size_t n_lag, cap_lag;
};

static struct opts {
	const char *url, *token_prefix, *ca, *cert, *key;
	const char *urls[4];         /* -u given more than once: agent i posts to urls[i % n_urls] */
	size_t n_urls;
	unsigned vms, hosts, tenants, seed;
	double loss, replay, reorder, shuffle;
	int64_t start_ns, end_ns, interval_ns;
	size_t max_frames, max_bytes, backlog;
	uint64_t spool_first;
	bool quiet;
} O = {
	.token_prefix = "", .vms = 100, .hosts = 2, .tenants = 3, .seed = 1, .interval_ns = 10 * NS_PER_SEC,
	.max_frames = 1024, .max_bytes = 4u << 20, .backlog = 4096, .spool_first = 1,
};

static struct agent *agents[MAX_AGENTS];
static size_t n_agents;
static atomic_bool stopping;

static struct agent *agent_of(const char *id)
{
	for (size_t i = 0; i < n_agents; i++)
		if (!strcmp(agents[i]->id, id))
			return agents[i];
	if (n_agents == MAX_AGENTS)
		return NULL;
	struct agent *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	str_copy(a->id, id, sizeof(a->id));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	/* a spool id of its own, as a spool would draw at random */
	for (size_t k = 0; k < WIRE_SPOOL_ID_LEN; k++)
		a->origin.spool_id[k] = (uint8_t)(0x5a ^ (k * 37) ^ (n_agents * 131 + k * 7));
	a->origin.spool_first_seq = O.spool_first;
	a->next_seq = O.spool_first;
	a->acked = O.spool_first - 1;
	a->seed = 12345u + (unsigned)n_agents;
	a->url = O.urls[n_agents % O.n_urls];
	agents[n_agents++] = a;
	return a;
}

/* ---- the generator: the batcher hands each closed batch here ---- */

static struct wire_enc enc;

static int deliver(void *ctx, struct batch *b)
{
	struct tally_err e = { 0 };
	struct agent *a = agent_of(b->agent);
	(void)ctx;
	if (!a)
		return -ENOMEM;
	pthread_mutex_lock(&a->mu);
	while (a->n - a->head >= O.backlog && !atomic_load(&stopping))
		pthread_cond_wait(&a->cv, &a->mu);
	b->seq = a->next_seq;
	size_t before = a->buf.len;
	int rc = wire_encode(&enc, b, &a->origin, &a->buf, &e);
	if (rc) {
		pthread_mutex_unlock(&a->mu);
		fprintf(stderr, "simagents: %s\n", e.msg);
		return rc;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		struct frame *f = realloc(a->f, cap * sizeof(*f));
		if (!f) {
			pthread_mutex_unlock(&a->mu);
			return -ENOMEM;
		}
		a->f = f;
		a->cap = cap;
	}
	a->f[a->n++] = (struct frame){ .seq = a->next_seq++, .off = before, .len = a->buf.len - before,
				       .made_ns = time_mono_ns(), .samples = (uint32_t)b->n_samples };
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static uint64_t next_seq(void *ctx, const char *agent)
{
	(void)ctx;
	(void)agent;
	return 1;   /* the seq is the agent's, set in deliver() */
}

/* Drop the frames up to seq (acknowledged); compact the buffer now and then. */
static void drop_acked(struct agent *a, uint64_t seq, int64_t now)
{
	while (a->head < a->n && a->f[a->head].seq <= seq) {
		struct frame *f = &a->f[a->head++];
		a->samples_acked += f->samples;
		a->frames_acked++;
		if (a->n_lag == a->cap_lag) {
			size_t cap = a->cap_lag ? a->cap_lag * 2 : 1024;
			double *p = realloc(a->lag, cap * sizeof(*p));
			if (p) {
				a->lag = p;
				a->cap_lag = cap;
			}
		}
		if (a->n_lag < a->cap_lag)
			a->lag[a->n_lag++] = (double)(now - f->made_ns) / 1e9;
	}
	if (seq > a->acked)
		a->acked = seq;
	if (a->head == a->n) {
		a->head = a->n = 0;
		a->buf.len = 0;
	} else if (a->head > 4096) {
		size_t cut = a->f[a->head].off;
		memmove(a->buf.p, a->buf.p + cut, a->buf.len - cut);
		a->buf.len -= cut;
		memmove(a->f, a->f + a->head, (a->n - a->head) * sizeof(*a->f));
		a->n -= a->head;
		a->head = 0;
		for (size_t i = 0; i < a->n; i++)
			a->f[i].off -= cut;
	}
	pthread_cond_broadcast(&a->cv);
}

/* ---- the senders ---- */

struct reply {
	char body[2048];
	size_t len;
	long retry_after;            /* seconds, -1: none */
};

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct reply *r = ctx;
	size_t k = sz * n, room = sizeof(r->body) - 1 - r->len;
	memcpy(r->body + r->len, p, k < room ? k : room);
	r->len += k < room ? k : room;
	r->body[r->len] = '\0';
	return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ctx)
{
	struct reply *r = ctx;
	size_t k = sz * n;
	if (k > 12 && !strncasecmp(p, "Retry-After:", 12))
		r->retry_after = strtol(p + 12, NULL, 10);
	return k;
}

static int64_t json_int(const char *body, const char *key, char *str, size_t len)
{
	json_error_t je;
	json_t *o = json_loads(body, 0, &je), *v = o ? json_object_get(o, key) : NULL;
	int64_t x = json_is_integer(v) ? json_integer_value(v) : -1;
	if (str && len) {
		json_t *r = o ? json_object_get(o, "reason") : NULL;
		str_copy(str, json_is_string(r) ? json_string_value(r) : "", len);
	}
	json_decref(o);
	return x;
}

static double frand(struct agent *a)
{
	return (double)rand_r(&a->seed) / ((double)RAND_MAX + 1);
}

static void *sender_main(void *arg)
{
	struct agent *a = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct wire_buf body = { 0 };
	char url[600], auth[300];
	uint64_t from = a->acked + 1;   /* the first frame of the next request */
	struct reply rep;

	snprintf(url, sizeof(url), "%s/api/v1/ingest", a->url);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s%s", O.token_prefix, a->id);
	hdr = curl_slist_append(hdr, "Content-Type: application/x-tally-batch");
	hdr = curl_slist_append(hdr, "Expect:");
	hdr = curl_slist_append(hdr, auth);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rep);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &rep);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (O.ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, O.ca);
	if (O.cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, O.cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, O.key);
	}
	for (;;) {
		/* the next request: frames from `from`, as many as fit */
		pthread_mutex_lock(&a->mu);
		while (a->head < a->n && a->f[a->head].seq < from)
			break;
		size_t i = a->head;
		while (i < a->n && a->f[i].seq < from)
			i++;
		while (i == a->n && !a->done && !atomic_load(&stopping)) {
			pthread_cond_wait(&a->cv, &a->mu);
			i = a->head;
			while (i < a->n && a->f[i].seq < from)
				i++;
		}
		if (i == a->n) {
			pthread_mutex_unlock(&a->mu);
			break;   /* all sent and acknowledged (or stopping) */
		}
		body.len = 0;
		size_t k = i, nf = 0;
		uint64_t first = a->f[i].seq, last = first;
		while (k < a->n && nf < O.max_frames && (nf == 0 || body.len + a->f[k].len <= O.max_bytes)) {
			if (wire_buf_reserve(&body, a->f[k].len)) {
				pthread_mutex_unlock(&a->mu);
				snprintf(a->why, sizeof(a->why), "out of memory");
				a->failed = 1;
				goto out;
			}
			memcpy(body.p + body.len, a->buf.p + a->f[k].off, a->f[k].len);
			body.len += a->f[k].len;
			last = a->f[k].seq;
			k++;
			nf++;
		}
		bool reorder = false;
		if (O.reorder > 0 && k < a->n && frand(a) < O.reorder) {
			/* the frames after these go first: a gap */
			size_t n2 = 0;
			body.len = 0;
			for (size_t q = k; q < a->n && n2 < O.max_frames; q++, n2++) {
				if (wire_buf_reserve(&body, a->f[q].len))
					break;
				memcpy(body.p + body.len, a->buf.p + a->f[q].off, a->f[q].len);
				body.len += a->f[q].len;
			}
			reorder = true;
		} else if (O.shuffle > 0 && nf >= 2 && frand(a) < O.shuffle) {
			/* the first two frames swapped: not in order */
			size_t l0 = a->f[i].len, l1 = a->f[i + 1].len;
			memcpy(body.p, a->buf.p + a->f[i + 1].off, l1);
			memcpy(body.p + l1, a->buf.p + a->f[i].off, l0);
		}
		/* the spool's depth, as the agent's sender reports it */
		char depth[96];
		snprintf(depth, sizeof(depth), "Tally-Spool: batches=%zu bytes=%zu", a->n - a->head,
			 a->buf.len - a->f[a->head].off);
		pthread_mutex_unlock(&a->mu);
		struct curl_slist *hdr2 = curl_slist_append(NULL, depth);
		for (struct curl_slist *x = hdr; x; x = x->next)
			hdr2 = curl_slist_append(hdr2, x->data);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr2);

		int sends = 1 + (O.replay > 0 && frand(a) < O.replay);
		long status = 0;
		for (int s = 0; s < sends; s++) {
			memset(&rep, 0, sizeof(rep));
			rep.retry_after = -1;
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body.p);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
			CURLcode cc = curl_easy_perform(h);
			a->requests++;
			if (cc != CURLE_OK) {
				curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
				curl_slist_free_all(hdr2);
				snprintf(a->why, sizeof(a->why), "seqs %" PRIu64 "-%" PRIu64 ": %s", first, last,
					 curl_easy_strerror(cc));
				a->failed = 1;
				goto out;
			}
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
			if (s + 1 == sends || status != 200) {
				curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
				curl_slist_free_all(hdr2);
				hdr2 = NULL;
			}
			if (status > 0 && status < 600)
				a->status[status]++;
			if (s == 1)
				a->replays++;
			if (status != 200)
				break;
		}
		int64_t now = time_mono_ns();
		char reason[32];
		int64_t v;
		switch (status) {
		case 200:
		case 409:
			/* 200: acked; 409 gap/order (only when this sender made one): the
			 * aggregator's last; either way committed up to v, go on after it */
			v = json_int(rep.body, status == 200 ? "acked" : "last_seq", reason, sizeof(reason));
			if (status == 200 ? v < 0 || (uint64_t)v < first - 1 || (uint64_t)v > last || reorder
			    : v < 0 || !strcmp(reason, "spool") || (!reorder && O.shuffle <= 0 && O.reorder <= 0)) {
				snprintf(a->why, sizeof(a->why), "seqs %" PRIu64 "-%" PRIu64 ": %ld %s", first, last,
					 status, rep.body);
				a->failed = 1;
				goto out;
			}
			pthread_mutex_lock(&a->mu);
			drop_acked(a, (uint64_t)v, now);
			pthread_mutex_unlock(&a->mu);
			from = (uint64_t)v + 1;
			break;
		case 429:
		case 503:
			usleep((useconds_t)((rep.retry_after > 0 ? rep.retry_after : 1) * 1000000L));
			break;
		default:
			snprintf(a->why, sizeof(a->why), "seqs %" PRIu64 "-%" PRIu64 ": %ld %s", first, last, status,
				 rep.body);
			a->failed = 1;
			goto out;
		}
	}
out:
	if (a->failed)
		atomic_store(&stopping, true);
	wire_buf_release(&body);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static int usage(void)
{
	fprintf(stderr, "usage: simagents -u URL [--token-prefix P] [--vms N] [--hosts H] [--seed S]"
		" [--tenants T] [--loss L] [--start TIME] [--end TIME] [--interval DUR] [--max-frames N]"
		" [--max-bytes B] [--backlog N] [--ca FILE] [--cert FILE --key FILE] [--replay P]"
		" [--reorder P] [--shuffle P] [--spool-first N] [--quiet]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "url", required_argument, NULL, 'u' }, { "token-prefix", required_argument, NULL, 't' },
		{ "vms", required_argument, NULL, 'v' }, { "hosts", required_argument, NULL, 'H' },
		{ "seed", required_argument, NULL, 's' }, { "tenants", required_argument, NULL, 'T' },
		{ "loss", required_argument, NULL, 'l' }, { "start", required_argument, NULL, 'S' },
		{ "end", required_argument, NULL, 'E' }, { "interval", required_argument, NULL, 'i' },
		{ "max-frames", required_argument, NULL, 'f' }, { "max-bytes", required_argument, NULL, 'b' },
		{ "backlog", required_argument, NULL, 'B' }, { "ca", required_argument, NULL, 'c' },
		{ "cert", required_argument, NULL, 'C' }, { "key", required_argument, NULL, 'K' },
		{ "replay", required_argument, NULL, 'r' }, { "reorder", required_argument, NULL, 'o' },
		{ "shuffle", required_argument, NULL, 'x' }, { "spool-first", required_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' }, { NULL, 0, NULL, 0 },
	};
	struct tally_err e = { 0 };
	int64_t x;
	int c;
	O.start_ns = 1790812800LL * NS_PER_SEC;   /* 2026-10-01 */
	O.end_ns = O.start_ns + 3600 * NS_PER_SEC;
	while ((c = getopt_long(argc, argv, "u:q", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (O.n_urls == sizeof(O.urls) / sizeof(O.urls[0])) {
				fprintf(stderr, "simagents: at most 4 -u\n");
				return 2;
			}
			O.url = O.urls[O.n_urls++] = optarg;
			break;
		case 't': O.token_prefix = optarg; break;
		case 'v': O.vms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'H': O.hosts = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': O.seed = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': O.tenants = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'l': O.loss = strtod(optarg, NULL); break;
		case 'S': if (time_parse_range(optarg, &O.start_ns, &x, &e)) return usage(); break;
		case 'E': if (time_parse_range(optarg, &O.end_ns, &x, &e)) return usage(); break;
		case 'i': if (duration_parse(optarg, &O.interval_ns, &e)) return usage(); break;
		case 'f': O.max_frames = strtoul(optarg, NULL, 10); break;
		case 'b': O.max_bytes = strtoul(optarg, NULL, 10); break;
		case 'B': O.backlog = strtoul(optarg, NULL, 10); break;
		case 'c': O.ca = optarg; break;
		case 'C': O.cert = optarg; break;
		case 'K': O.key = optarg; break;
		case 'r': O.replay = strtod(optarg, NULL); break;
		case 'o': O.reorder = strtod(optarg, NULL); break;
		case 'x': O.shuffle = strtod(optarg, NULL); break;
		case 'F': O.spool_first = strtoull(optarg, NULL, 10); break;
		case 'q': O.quiet = true; break;
		default: return usage();
		}
	}
	if (!O.url || optind != argc || !O.vms || !O.hosts || O.hosts > MAX_AGENTS || !O.max_frames ||
	    !O.backlog || O.end_ns < O.start_ns || O.interval_ns <= 0 || !O.spool_first)
		return usage();

	/* the fleet, configured as tallyd configures it in fast-forward */
	char text[512];
	snprintf(text, sizeof(text), "vms: %u\ntenants: %u\nhosts: %u\nseed: %u\nloss: %g\n", O.vms, O.tenants,
		 O.hosts, O.seed, O.loss);
	struct collector_env env = { .agent_id = "simagents", .interval_ns = O.interval_ns,
				     .start_ns = O.start_ns, .start_fixed = true };
	struct cfg_node *root = NULL;
	void *sim = NULL;
	if (cfg_load_string("simagents", text, strlen(text), &root, &e) ||
	    sim_collector.configure(root, &env, &sim, &e) || sim_collector.init(sim, 0, &e)) {
		fprintf(stderr, "simagents: %s\n", e.msg);
		return 2;
	}
	cfg_free(root);
	curl_global_init(CURL_GLOBAL_ALL);
	wire_enc_init(&enc);
	/* every agent exists before the first tick, so each has its sender */
	for (unsigned h = 0; h < O.hosts; h++) {
		char id[TALLY_ID_MAX];
		snprintf(id, sizeof(id), "sim-host-%u", h);
		if (!agent_of(id)) {
			fprintf(stderr, "simagents: out of memory\n");
			return 1;
		}
	}
	for (size_t i = 0; i < n_agents; i++)
		if (pthread_create(&agents[i]->th, NULL, sender_main, agents[i])) {
			fprintf(stderr, "simagents: cannot start a thread\n");
			return 1;
		}
	struct batcher bt;
	batcher_init(&bt, "simagents", deliver, next_seq, NULL);
	struct sink sk = batcher_sink(&bt);
	int64_t t0 = time_mono_ns();
	uint64_t cycles = 0;
	int rc = 0;
	for (int64_t t = O.start_ns; t <= O.end_ns && !atomic_load(&stopping); t += O.interval_ns, cycles++) {
		if (sim_collector.read(sim, t, &sk, &e) || batcher_flush(&bt, t)) {
			fprintf(stderr, "simagents: cycle %lld: %s\n", (long long)t, e.msg[0] ? e.msg : "failed");
			rc = 1;
			break;
		}
	}
	for (size_t i = 0; i < n_agents; i++) {
		pthread_mutex_lock(&agents[i]->mu);
		agents[i]->done = true;
		pthread_cond_broadcast(&agents[i]->cv);
		pthread_mutex_unlock(&agents[i]->mu);
	}
	if (rc)
		atomic_store(&stopping, true);
	for (size_t i = 0; i < n_agents; i++) {
		pthread_mutex_lock(&agents[i]->mu);
		pthread_cond_broadcast(&agents[i]->cv);
		pthread_mutex_unlock(&agents[i]->mu);
		pthread_join(agents[i]->th, NULL);
	}
	double wall = (double)(time_mono_ns() - t0) / 1e9;
	uint64_t req = 0, st[600] = { 0 }, samples = 0, frames = 0, replays = 0, left = 0;
	size_t n_lag = 0;
	for (size_t i = 0; i < n_agents; i++) {
		struct agent *a = agents[i];
		req += a->requests;
		for (int s = 0; s < 600; s++)
			st[s] += a->status[s];
		samples += a->samples_acked;
		frames += a->frames_acked;
		replays += a->replays;
		left += a->n - a->head;
		n_lag += a->n_lag;
		if (a->failed) {
			fprintf(stderr, "simagents: agent %s: %s\n", a->id, a->why);
			rc = 1;
		}
	}
	double *lag = calloc(n_lag ? n_lag : 1, sizeof(double));
	size_t k = 0;
	for (size_t i = 0; lag && i < n_agents; i++)
		for (size_t j = 0; j < agents[i]->n_lag; j++)
			lag[k++] = agents[i]->lag[j];
	if (lag && k)
		qsort(lag, k, sizeof(double), cmp_double);
	if (left && !rc) {
		fprintf(stderr, "simagents: %" PRIu64 " batches not acknowledged\n", left);
		rc = 1;
	}
	char codes[400] = "";
	size_t used = 0;
	for (int s = 100; s < 600; s++)
		if (st[s])
			used += (size_t)snprintf(codes + used, sizeof(codes) - used, "%s%d: %" PRIu64, used ? ", " : "",
						 s, st[s]);
	printf("simagents: %zu agents, %" PRIu64 " cycles, %" PRIu64 " batches and %" PRIu64 " samples"
	       " acknowledged in %.2f s: %.0f samples/s; %" PRIu64 " requests (%s), %" PRIu64 " sent twice;"
	       " lag from encoding to acknowledgement median %.3f s, max %.3f s\n", n_agents, cycles, frames,
	       samples, wall, wall > 0 ? (double)samples / wall : 0.0, req, codes, replays,
	       k ? lag[k / 2] : 0.0, k ? lag[k - 1] : 0.0);
	free(lag);
	batcher_release(&bt);
	sim_collector.free(sim);
	wire_enc_release(&enc);
	for (size_t i = 0; i < n_agents; i++) {
		free(agents[i]->f);
		free(agents[i]->lag);
		wire_buf_release(&agents[i]->buf);
		pthread_mutex_destroy(&agents[i]->mu);
		pthread_cond_destroy(&agents[i]->cv);
		free(agents[i]);
	}
	curl_global_cleanup();
	return rc;
}
