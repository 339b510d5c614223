/*
 * ingest.c: the one ingest function, the `ingest:` config section, and the
 * aggregator role's queue between the listener and the writer (ingest.h
 * says what each side checks and when a request is answered).
 *
 * A request's frames are walked twice: on the listener's thread every frame
 * is checked and decoded into a scratch batch that is thrown away (so the
 * refusals that do not depend on the ledger are made in parallel, before
 * anything is applied, and a body never holds more than one decoded frame
 * in memory); on the writer's thread the frames not yet ingested are
 * decoded again, one at a time, into one reused batch and handed to
 * ingest_batch().
 */
#include "ingest.h"
#include "aggregator.h"
#include "postq.h"
#include "alerting.h"
#include "cfg.h"
#include "err.h"
#include "log.h"
#include "ratelimit.h"
#include "str.h"
#include "tallytime.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ingest_batch(struct aggregator *a, struct alerting *al, const struct batch *b, struct tally_err *e)
{
	int rc = agg_ingest(a, b, e);
	if (rc == 0 && al)
		alerting_note_batch(al, b);
	return rc;
}

/* ---- the `ingest:` section ---- */

static const char *const ingest_keys[] = { "max_request", "max_pending", "body_timeout", "max_frames", NULL };

int ingest_section_parse(struct ingest_section *s, const struct cfg_node *sec, struct tally_err *e)
{
	int rc;
	uint64_t frames = INGEST_MAX_FRAMES;
	memset(s, 0, sizeof(*s));
	s->max_request = INGEST_MAX_REQUEST;
	s->max_pending = INGEST_MAX_PENDING;
	s->body_timeout_ns = INGEST_BODY_TIMEOUT_NS;
	s->max_frames = INGEST_MAX_FRAMES;
	if (!sec)
		return 0;
	s->given = true;
	if (sec->type == CFG_SCALAR && !sec->value[0])
		return 0;   /* `ingest:` alone: the defaults */
	if (sec->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'ingest': expected a map", sec->file, sec->line,
			       sec->col);
	if ((rc = cfg_check_keys(sec, "ingest", ingest_keys, e)) ||
	    (rc = cfg_get_uint(sec, "max_request", 4096, 1u << 30, &s->max_request, e)) ||
	    (rc = cfg_get_uint(sec, "max_pending", 1u << 20, 1ull << 40, &s->max_pending, e)) ||
	    (rc = cfg_get_duration(sec, "body_timeout", NS_PER_SEC, 3600 * NS_PER_SEC, &s->body_timeout_ns, e)) ||
	    (rc = cfg_get_uint(sec, "max_frames", 1, INGEST_MAX_FRAMES, &frames, e)))
		return rc;
	s->max_frames = (uint32_t)frames;
	if (s->max_pending < s->max_request) {
		const struct cfg_node *n = cfg_get(sec, "max_pending");
		if (!n)
			n = cfg_get(sec, "max_request");
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': 'max_pending' (%" PRIu64 " bytes) must hold at"
			       " least one request of 'max_request' (%" PRIu64 " bytes)", n->file, n->line, n->col,
			       n->key, s->max_pending, s->max_request);
	}
	return 0;
}

/* ---- the queue ---- */

enum job_state { JOB_QUEUED, JOB_ANSWERED, JOB_COMMIT };

struct ingest_job {
	struct postq_item link;      /* first: the queue's */
	struct httpd_ingest_req *req;
	void (*done)(void *arg);
	void *arg;
	/* what the check found */
	size_t n_frames;
	uint64_t first_seq, last_seq;
	bool consecutive;            /* seqs +1 each */
	struct wire_origin origin;
	/* the writer's verdict */
	enum job_state state;
	uint64_t ack;                /* JOB_COMMIT: acked after the commit */
};

struct ingest {
	struct ingest_section s;
	struct postq q;
	pthread_mutex_t mu;          /* of st */
	struct batch scratch;        /* the writer's */
	struct ratelimit *logs;      /* refusal lines per agent and status */
	struct ingest_stats st;      /* under mu */
};

int ingest_new(struct ingest **out, const struct ingest_section *s, struct tally_err *e)
{
	struct ingest *ig = calloc(1, sizeof(*ig));
	*out = NULL;
	if (!ig)
		return err_set(e, -ENOMEM, "ingest: out of memory");
	ig->s = *s;
	if (!ig->s.max_request) {
		struct ingest_section d;
		ingest_section_parse(&d, NULL, NULL);
		ig->s = d;
	}
	/* five lines at once per agent and status, then one a minute */
	if (!(ig->logs = ratelimit_new(1.0 / 60, 5, 4096))) {
		free(ig);
		return err_set(e, -ENOMEM, "ingest: out of memory");
	}
	if (pthread_mutex_init(&ig->mu, NULL)) {
		ratelimit_free(ig->logs);
		free(ig);
		return err_set(e, -ENOMEM, "ingest: out of memory");
	}
	if (postq_init(&ig->q)) {
		pthread_mutex_destroy(&ig->mu);
		ratelimit_free(ig->logs);
		free(ig);
		return err_set(e, -ENOMEM, "ingest: out of memory");
	}
	batch_init(&ig->scratch, "");
	*out = ig;
	return 0;
}

void ingest_free(struct ingest *ig)
{
	if (!ig)
		return;
	postq_release(&ig->q);
	pthread_mutex_destroy(&ig->mu);
	ratelimit_free(ig->logs);
	batch_release(&ig->scratch);
	free(ig);
}

void ingest_get_stats(struct ingest *ig, struct ingest_stats *out)
{
	pthread_mutex_lock(&ig->mu);
	*out = ig->st;
	pthread_mutex_unlock(&ig->mu);
}

void ingest_metrics(struct ingest *ig, void (*put)(void *ctx, const struct collector_metric *m), void *ctx)
{
	static const char *const codes[] = { "200", "400", "403", "409", "422", "503" };
	struct ingest_stats st;
	struct collector_metric m;
	ingest_get_stats(ig, &st);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		m = (struct collector_metric){ .name = "tally_ingest_requests", .counter = true,
					       .help = "Ingest requests answered by the aggregator, by status (503"
						       " includes its other refusals; the listener's own 401, 411,"
						       " 413, 415 and 429 are not counted here).",
					       .value = (double)st.by_status[i] };
		snprintf(m.labels, sizeof(m.labels), "status=%s", codes[i]);
		put(ctx, &m);
	}
	m = (struct collector_metric){ .name = "tally_ingest_batches", .counter = true,
				       .help = "Batches in requests answered 200: taken into the ledger, or sent"
					       " again and acknowledged as committed before (counted once).",
				       .labels = "result=taken", .value = (double)st.frames_applied };
	put(ctx, &m);
	m.value = (double)st.frames_replayed;
	snprintf(m.labels, sizeof(m.labels), "result=replayed");
	put(ctx, &m);
}

static int status_index(unsigned status)
{
	switch (status) {
	case 200: return 0;
	case 400: return 1;
	case 403: return 2;
	case 409: return 3;
	case 422: return 4;
	default: return 5;
	}
}

/* One line per refusal, rate-limited per agent and status. */
static void refusal(struct ingest *ig, const struct httpd_ingest_req *r, unsigned status, const char *seqs,
		    const char *why)
{
	char key[96];
	snprintf(key, sizeof(key), "%s|%u", r->agent, status);
	if (ratelimit_take(ig->logs, key, time_mono_ns())) {
		pthread_mutex_lock(&ig->mu);
		ig->st.log_suppressed++;
		pthread_mutex_unlock(&ig->mu);
		return;
	}
	log_msg(LOG_WARN, "ingest: agent '%s' %s from %s refused (%u): %s", r->agent, seqs, r->client, status, why);
}

/* "seq 12", "seqs 12-15", "seq ?" */
static const char *seqs_text(char *buf, size_t len, uint64_t first, uint64_t last)
{
	if (!first)
		snprintf(buf, len, "seq ?");
	else if (first == last)
		snprintf(buf, len, "seq %" PRIu64, first);
	else
		snprintf(buf, len, "seqs %" PRIu64 "-%" PRIu64, first, last);
	return buf;
}

/* Fill r's answer: status and a JSON body made of j (taken). */
static void answer_json(struct ingest *ig, struct httpd_ingest_req *r, unsigned status, json_t *j,
			int64_t retry_after_s)
{
	free(r->json);
	r->json = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	r->status = r->json ? status : 503;   /* no memory for the body: the sender retries */
	r->retry_after_s = r->status == 503 && retry_after_s <= 0 ? 1 : retry_after_s;
	pthread_mutex_lock(&ig->mu);
	ig->st.by_status[status_index(r->status)]++;
	pthread_mutex_unlock(&ig->mu);
}

/* {"error": msg[, "seq": seq]}, logged. */
static void refuse_req(struct ingest *ig, struct httpd_ingest_req *r, unsigned status, uint64_t first,
		       uint64_t last, uint64_t seq, int64_t retry_after_s, const char *msg)
{
	char s[64];
	json_t *j = json_object();
	if (j) {
		json_object_set_new(j, "error", json_string(msg));
		if (seq)
			json_object_set_new(j, "seq", json_integer((json_int_t)seq));
	}
	refusal(ig, r, status, seqs_text(s, sizeof(s), first, last), msg);
	answer_json(ig, r, status, j, retry_after_s);
}

/* ---- the listener's side ---- */

static bool zero_origin(const struct wire_origin *o)
{
	static const uint8_t zero[WIRE_SPOOL_ID_LEN];
	return !memcmp(o->spool_id, zero, sizeof(zero)) && !o->spool_first_seq;
}

/* Every frame whole, checked and decodable, all of the token's agent and
 * one spool, at most max_frames: else the answer (400, 403, 422). */
static int check(void *ctx, struct httpd_ingest_req *r)
{
	struct ingest *ig = ctx;
	struct ingest_job *j = calloc(1, sizeof(*j));
	struct batch b;
	struct tally_err e = { 0 };
	char msg[600];
	size_t off = 0;
	uint64_t prev = 0;
	int rc = 0;

	batch_init(&b, "");
	pthread_mutex_lock(&ig->mu);
	ig->st.requests++;
	pthread_mutex_unlock(&ig->mu);
	if (!j) {
		refuse_req(ig, r, 503, 0, 0, 0, 1, "out of memory");
		goto out;
	}
	j->req = r;
	j->consecutive = true;
	if (!r->len) {
		refuse_req(ig, r, 400, 0, 0, 0, 0, "empty body: a request carries 1 to 1024 frames");
		goto out;
	}
	while (off < r->len) {
		struct wire_info info;
		size_t k = j->n_frames + 1;
		if (k > ig->s.max_frames) {
			snprintf(msg, sizeof(msg), "more than %u frames in one request", (unsigned)ig->s.max_frames);
			refuse_req(ig, r, 400, j->first_seq, prev, 0, 0, msg);
			goto out;
		}
		rc = wire_decode(r->body + off, r->len - off, &b, &info, &e);
		if (rc == -ENODATA) {
			snprintf(msg, sizeof(msg), "truncated: the body ends inside frame %zu (byte %zu of %zu)",
				 k, off, r->len);
			refuse_req(ig, r, 400, j->first_seq, prev, prev ? prev + 1 : 0, 0, msg);
			goto out;
		}
		if (rc == -ENOMEM) {
			refuse_req(ig, r, 503, j->first_seq, prev, 0, 1, "out of memory decoding the frames");
			goto out;
		}
		if (rc) {
			/* the head of a frame whose body is refused may still say its seq */
			struct wire_head h;
			uint64_t seq = wire_check(r->body + off, r->len - off, &h, NULL) == 0 ? h.seq
				       : prev ? prev + 1 : 0;
			snprintf(msg, sizeof(msg), "frame %zu (byte %zu): %s", k, off, e.msg);
			refuse_req(ig, r, 400, j->first_seq ? j->first_seq : seq, seq, seq, 0, msg);
			goto out;
		}
		const struct wire_head *h = &info.head;
		if (k == 1) {
			if (strcmp(h->agent, r->agent)) {
				snprintf(msg, sizeof(msg), "the frames are of agent '%s'; this token is agent '%s''s",
					 h->agent, r->agent);
				refuse_req(ig, r, 403, h->seq, h->seq, h->seq, 0, msg);
				goto out;
			}
			j->first_seq = h->seq;
			j->origin = h->origin;
		} else {
			if (strcmp(h->agent, r->agent)) {
				snprintf(msg, sizeof(msg), "frame %zu is of agent '%s', the first of '%s': one agent"
					 " per request", k, h->agent, r->agent);
				refuse_req(ig, r, 400, j->first_seq, h->seq, h->seq, 0, msg);
				goto out;
			}
			if (memcmp(&h->origin.spool_id, &j->origin.spool_id, sizeof(j->origin.spool_id)) ||
			    h->origin.spool_first_seq != j->origin.spool_first_seq) {
				snprintf(msg, sizeof(msg), "frame %zu comes from another spool than the first: one"
					 " spool per request", k);
				refuse_req(ig, r, 400, j->first_seq, h->seq, h->seq, 0, msg);
				goto out;
			}
			if (h->seq != prev + 1)
				j->consecutive = false;
		}
		if (info.unknown_samples) {
			snprintf(msg, sizeof(msg), "unknown meter '%s' (%" PRIu64 " readings of %zu unknown"
				 " meter%s in the frame): upgrade the aggregator", info.unknown[0],
				 info.unknown_samples, info.n_unknown, info.n_unknown == 1 ? "" : "s");
			refuse_req(ig, r, 422, j->first_seq, h->seq, h->seq, 0, msg);
			goto out;
		}
		prev = h->seq;
		j->n_frames = k;
		off += h->frame_len;
	}
	j->last_seq = prev;
	r->priv = j;
	j = NULL;
	rc = 1;
out:
	batch_release(&b);
	free(j);
	return rc == 1 ? 1 : 0;
}

static void queue(void *ctx, struct httpd_ingest_req *r, void (*done)(void *arg), void *arg)
{
	struct ingest *ig = ctx;
	struct ingest_job *j = r->priv;
	j->done = done;
	j->arg = arg;
	j->state = JOB_QUEUED;
	if (postq_push(&ig->q, &j->link)) {
		r->priv = NULL;
		refuse_req(ig, r, 503, j->first_seq, j->last_seq, 0, 5, "the aggregator is stopping");
		free(j);
		done(arg);
	}
}

void ingest_listener(struct ingest *ig, struct httpd_ingest *out)
{
	memset(out, 0, sizeof(*out));
	out->check = check;
	out->queue = queue;
	out->ctx = ig;
	out->max_request = ig->s.max_request;
	out->max_pending = ig->s.max_pending;
	out->body_timeout_ns = ig->s.body_timeout_ns;
}

/* ---- the writer's side ---- */

struct ingest_job *ingest_take(struct ingest *ig, int64_t until_mono_ns)
{
	return (struct ingest_job *)postq_take(&ig->q, until_mono_ns);
}

void ingest_wake(struct ingest *ig)
{
	postq_wake(&ig->q);
}

struct ingest_job *ingest_next(const struct ingest_job *j)
{
	return (struct ingest_job *)j->link.next;
}

static void conflict(struct ingest *ig, struct ingest_job *j, const char *reason, uint64_t last_seq,
		     const struct agg_agent *ag, const char *msg)
{
	struct httpd_ingest_req *r = j->req;
	char s[64], hex[2 * AGG_SPOOL_ID_LEN + 1] = "";
	json_t *o = json_object();
	if (ag && ag->has_spool)
		for (int i = 0; i < AGG_SPOOL_ID_LEN; i++)
			snprintf(hex + 2 * i, 3, "%02x", ag->spool_id[i]);
	if (o) {
		json_object_set_new(o, "error", json_string(msg));
		json_object_set_new(o, "reason", json_string(reason));
		json_object_set_new(o, "agent", json_string(r->agent));
		json_object_set_new(o, "last_seq", json_integer((json_int_t)last_seq));
		if (hex[0])
			json_object_set_new(o, "spool_id", json_string(hex));
	}
	char why[700];
	snprintf(why, sizeof(why), "%s: %s", reason, msg);
	refusal(ig, r, 409, seqs_text(s, sizeof(s), j->first_seq, j->last_seq), why);
	answer_json(ig, r, 409, o, 0);
	j->state = JOB_ANSWERED;
}

static void acked(struct ingest *ig, struct ingest_job *j, uint64_t seq)
{
	json_t *o = json_object();
	if (o) {
		json_object_set_new(o, "agent", json_string(j->req->agent));
		json_object_set_new(o, "acked", json_integer((json_int_t)seq));
	}
	answer_json(ig, j->req, 200, o, 0);
	pthread_mutex_lock(&ig->mu);
	ig->st.frames += j->n_frames;
	pthread_mutex_unlock(&ig->mu);
}

int ingest_apply(struct ingest *ig, struct aggregator *a, struct alerting *al, struct ingest_job *j,
		 int64_t now_ns, struct tally_err *e)
{
	struct httpd_ingest_req *r = j->req;
	struct agg_agent ag;
	char msg[400];
	bool has = !zero_origin(&j->origin);
	bool known = agg_agent_find(a, r->agent, &ag) && ag.seq > 0;
	/* a request that does not follow what this aggregator knows of the
	 * agent (another spool, a gap) may follow what another aggregator on
	 * the same ledger committed of it since: ask the ledger once */
	bool same_spool = known && ag.has_spool == has && (!has || !memcmp(ag.spool_id, j->origin.spool_id,
									   AGG_SPOOL_ID_LEN));
	uint64_t next = known ? ag.seq + 1 : has ? j->origin.spool_first_seq : 1;
	if ((known && !same_spool) || j->first_seq > next) {
		int rr = agg_refresh(a, e);
		if (rr < 0) {
			/* the ledger cannot be read now (its server is away): the
			 * agent tries again; only a broken aggregator stops */
			refuse_req(ig, r, 503, j->first_seq, j->last_seq, 0, 1, agg_broken(a) ? "the aggregator failed"
				   : "the ledger cannot be read now: try again later");
			j->state = JOB_ANSWERED;
			if (agg_broken(a))
				return rr;
			log_msg(LOG_WARN, "ingest: agent '%s': %s", r->agent, e->msg);
			e->msg[0] = '\0';
			return 0;
		}
		known = agg_agent_find(a, r->agent, &ag) && ag.seq > 0;
		if (rr > 0)
			log_msg(LOG_INFO, "ingest: agent '%s': another aggregator committed its batches up to seq %" PRIu64
				" meanwhile: taken again from the ledger", r->agent, known ? ag.committed_seq : 0);
	}
	uint64_t P = known ? ag.seq : 0, C = known ? ag.committed_seq : 0;
	struct agg_agent_note note = {
		.has_spool = has, .spool_first_seq = j->origin.spool_first_seq, .contact_ns = now_ns,
		.spool_batches = r->spool_batches, .spool_bytes = r->spool_bytes,
	};
	memcpy(note.spool_id, j->origin.spool_id, sizeof(note.spool_id));

	/* the spool: the one the agent's seqs came from, or a new one that
	 * says it continues them (schemas/batch-wire.md, spool identity) */
	if (known) {
		bool same = ag.has_spool == has &&
			    (!has || !memcmp(ag.spool_id, j->origin.spool_id, AGG_SPOOL_ID_LEN));
		if (!same && !(has && j->origin.spool_first_seq == P + 1)) {
			snprintf(msg, sizeof(msg), "the frames come from %s, not from the spool this agent's"
				 " seqs up to %" PRIu64 " were committed from%s; two agents share this id, or the"
				 " agent's spool was lost: restore it, or start a new one with first_seq %" PRIu64,
				 has ? "another spool" : "no spool", C, has ? " (and it does not start after them)"
				 : "", P + 1);
			conflict(ig, j, "spool", C, &ag, msg);
			return 0;
		}
		note.set_spool = !same;
	} else {
		note.set_spool = true;
	}
	if (!j->consecutive) {
		snprintf(msg, sizeof(msg), "the frames' seqs are not consecutive and ascending (from %" PRIu64
			 " to %" PRIu64 " in %zu frames)", j->first_seq, j->last_seq, j->n_frames);
		conflict(ig, j, "order", C, known ? &ag : NULL, msg);
		return 0;
	}
	uint64_t expect = known ? P + 1 : has ? j->origin.spool_first_seq : 1;
	if (j->first_seq > expect) {
		snprintf(msg, sizeof(msg), "the first frame is seq %" PRIu64 ", the aggregator has committed up"
			 " to seq %" PRIu64 "%s", j->first_seq, C, known ? "" : " (nothing yet of this agent)");
		conflict(ig, j, "gap", C, known ? &ag : NULL, msg);
		return 0;
	}
	int rc = agg_agent_note(a, r->agent, &note);
	if (rc) {
		refuse_req(ig, r, 503, j->first_seq, j->last_seq, 0, 1, "the aggregator failed");
		j->state = JOB_ANSWERED;
		return err_set(e, rc, "ingest: agent '%s': %s", r->agent,
			       rc == -ENOSPC ? "too many agents" : strerror(-rc));
	}
	/* the new frames, in order; the ones ingested already are skipped */
	size_t off = 0;
	uint64_t applied = 0, samples = 0;
	for (size_t k = 0; k < j->n_frames; k++) {
		struct wire_head h;
		if (wire_check(r->body + off, r->len - off, &h, NULL)) {
			rc = -EIO;   /* checked on the listener's thread: cannot be */
			break;
		}
		if (h.seq > P) {
			if ((rc = wire_decode(r->body + off, h.frame_len, &ig->scratch, NULL, e)))
				break;
			if ((rc = ingest_batch(a, al, &ig->scratch, e)) < 0)
				break;
			rc = 0;
			applied++;
			samples += ig->scratch.n_samples;
			P = h.seq;
		}
		off += h.frame_len;
	}
	pthread_mutex_lock(&ig->mu);
	ig->st.frames_applied += applied;
	ig->st.frames_replayed += j->n_frames - applied;
	ig->st.samples += samples;
	pthread_mutex_unlock(&ig->mu);
	if (rc) {
		/* out of memory: the aggregator is broken and will be reopened
		 * from the ledger; nothing of this request is acknowledged */
		refuse_req(ig, r, 503, j->first_seq, j->last_seq, 0, 5, "the aggregator failed");
		j->state = JOB_ANSWERED;
		if (!e->msg[0])
			err_set(e, rc, "ingest: agent '%s' seq %" PRIu64 "-%" PRIu64 ": %s", r->agent,
				j->first_seq, j->last_seq, strerror(-rc));
		return rc;
	}
	if (j->last_seq <= C) {
		acked(ig, j, j->last_seq);   /* all committed before: a replay */
		j->state = JOB_ANSWERED;
		return 0;
	}
	j->ack = j->last_seq;
	j->state = JOB_COMMIT;
	return 1;
}

static void finish(struct ingest_job *j)
{
	struct httpd_ingest_req *r = j->req;
	void (*done)(void *) = j->done;
	void *arg = j->arg;
	r->priv = NULL;
	free(j);
	done(arg);   /* r may be gone after this */
}

void ingest_answer(struct ingest *ig, const struct aggregator *a, struct ingest_job *list, int commit_rc,
		   int64_t retry_after_s, const char *why)
{
	while (list) {
		struct ingest_job *j = list;
		list = ingest_next(j);
		if (j->state == JOB_COMMIT) {
			/* what the ledger holds of the agent: the commit may have
			 * dropped this request's batches, built on an older state
			 * than another aggregator's commit of the same agent
			 * (agg_refresh); the agent sends the rest again */
			struct agg_agent ag;
			uint64_t ack = j->ack;
			if (a && agg_agent_find(a, j->req->agent, &ag) && ag.committed_seq < ack)
				ack = ag.committed_seq;
			if (commit_rc == 0 && ack + 1 >= j->first_seq)
				acked(ig, j, ack);
			else if (commit_rc == 0)
				refuse_req(ig, j->req, 503, j->first_seq, j->last_seq, 0, 1,
					   "another aggregator took this agent's batches first: send them again");
			else
				refuse_req(ig, j->req, 503, j->first_seq, j->last_seq, 0,
					   retry_after_s > 0 ? retry_after_s : 1, why && why[0] ? why
					   : "the ledger cannot be written now");
		} else if (j->state == JOB_QUEUED) {
			refuse_req(ig, j->req, 503, j->first_seq, j->last_seq, 0, 1, "not taken");
		}
		finish(j);
	}
}

void ingest_refuse(struct ingest *ig, struct ingest_job *list, unsigned status, int64_t retry_after_s,
		   const char *why)
{
	while (list) {
		struct ingest_job *j = list;
		list = ingest_next(j);
		refuse_req(ig, j->req, status, j->first_seq, j->last_seq, 0, retry_after_s > 0 ? retry_after_s : 1,
			   why);
		finish(j);
	}
}

void ingest_close(struct ingest *ig)
{
	ingest_refuse(ig, (struct ingest_job *)postq_close(&ig->q), 503, 5, "the aggregator is stopping");
}
