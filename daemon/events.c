/*
 * events.c: POST /api/v1/events (events.h): the `events:` config section,
 * the queue between the listener and the writer, and the writer's round:
 * every request taken booked in one transaction on the aggregator's ledger
 * through aggregator/import.h, each request all or nothing.
 */
#include "events.h"
#include "aggregator.h"
#include "cfg.h"
#include "err.h"
#include "import.h"
#include "ledger.h"
#include "log.h"
#include "postq.h"
#include "ratelimit.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the `events:` section ---- */

static const char *const events_keys[] = { "max_request", "max_pending", "max_events", "body_timeout", NULL };

int events_section_parse(struct events_section *s, const struct cfg_node *sec, struct tally_err *e)
{
	int rc;
	uint64_t n = EVENTS_MAX_EVENTS;
	memset(s, 0, sizeof(*s));
	s->max_request = EVENTS_MAX_REQUEST;
	s->max_pending = EVENTS_MAX_PENDING;
	s->max_events = EVENTS_MAX_EVENTS;
	s->body_timeout_ns = EVENTS_BODY_TIMEOUT_NS;
	if (!sec)
		return 0;
	s->given = true;
	if (sec->type == CFG_SCALAR && !sec->value[0])
		return 0;   /* `events:` alone: the defaults */
	if (sec->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'events': expected a map", sec->file, sec->line, sec->col);
	if ((rc = cfg_check_keys(sec, "events", events_keys, e)) ||
	    (rc = cfg_get_uint(sec, "max_request", 1024, 1u << 30, &s->max_request, e)) ||
	    (rc = cfg_get_uint(sec, "max_pending", 1024, 1ull << 40, &s->max_pending, e)) ||
	    (rc = cfg_get_uint(sec, "max_events", 1, 1000000, &n, e)) ||
	    (rc = cfg_get_duration(sec, "body_timeout", NS_PER_SEC, 3600 * NS_PER_SEC, &s->body_timeout_ns, e)))
		return rc;
	s->max_events = (uint32_t)n;
	if (s->max_pending < s->max_request) {
		const struct cfg_node *k = cfg_get(sec, "max_pending");
		if (!k)
			k = cfg_get(sec, "max_request");
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': 'max_pending' (%" PRIu64 " bytes) must hold at"
			       " least one request of 'max_request' (%" PRIu64 " bytes)", k->file, k->line, k->col,
			       k->key, s->max_pending, s->max_request);
	}
	return 0;
}

/* ---- the queue ---- */

struct events_job {
	struct postq_item link;      /* first: the queue's */
	struct httpd_ingest_req *req;
	void (*done)(void *arg);
	void *arg;
	char source[64];
	struct import_batch b;
	struct import_result res;    /* the writer's, when booked */
	bool answered;
};

struct events {
	struct events_section s;
	struct postq q;
	pthread_mutex_t mu;          /* of st */
	void (*wake)(void *ctx);
	void *wake_ctx;
	struct ratelimit *logs;      /* refusal lines per source and status */
	struct events_stats st;      /* under mu */
	/* the writer's */
	struct aggregator *a;        /* w books on its ledger */
	struct import_writer *w;
	struct complaint fail;       /* the ledger cannot be written */
};

int events_new(struct events **out, const struct events_section *s, struct tally_err *e)
{
	struct events *ev = calloc(1, sizeof(*ev));
	*out = NULL;
	if (!ev)
		return err_set(e, -ENOMEM, "events: out of memory");
	ev->s = *s;
	if (!ev->s.max_request)
		events_section_parse(&ev->s, NULL, NULL);
	/* five lines at once per source and status, then one a minute */
	if (!(ev->logs = ratelimit_new(1.0 / 60, 5, 4096))) {
		free(ev);
		return err_set(e, -ENOMEM, "events: out of memory");
	}
	if (pthread_mutex_init(&ev->mu, NULL)) {
		ratelimit_free(ev->logs);
		free(ev);
		return err_set(e, -ENOMEM, "events: out of memory");
	}
	if (postq_init(&ev->q)) {
		pthread_mutex_destroy(&ev->mu);
		ratelimit_free(ev->logs);
		free(ev);
		return err_set(e, -ENOMEM, "events: out of memory");
	}
	*out = ev;
	return 0;
}

void events_detach(struct events *ev)
{
	import_writer_free(ev->w);
	ev->w = NULL;
	ev->a = NULL;
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	events_detach(ev);
	postq_release(&ev->q);
	pthread_mutex_destroy(&ev->mu);
	ratelimit_free(ev->logs);
	free(ev);
}

void events_set_wake(struct events *ev, void (*wake)(void *ctx), void *ctx)
{
	ev->wake = wake;
	ev->wake_ctx = ctx;
}

void events_get_stats(struct events *ev, struct events_stats *out)
{
	pthread_mutex_lock(&ev->mu);
	*out = ev->st;
	pthread_mutex_unlock(&ev->mu);
}

static const unsigned codes[] = { 200, 400, 403, 409, 422, 503 };

void events_metrics(struct events *ev, void (*put)(void *ctx, const struct collector_metric *m), void *ctx)
{
	struct events_stats st;
	struct collector_metric m;
	events_get_stats(ev, &st);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		m = (struct collector_metric){ .name = "tally_events_requests", .counter = true,
					       .help = "POST /api/v1/events requests answered, by status (503 includes"
						       " its other refusals; the listener's own 401, 411, 413, 415 and"
						       " 429 are not counted here).",
					       .value = (double)st.by_status[i] };
		snprintf(m.labels, sizeof(m.labels), "status=%u", codes[i]);
		put(ctx, &m);
	}
	m = (struct collector_metric){ .name = "tally_events", .counter = true,
				       .help = "Usage events in requests answered 200: booked into the ledger, or"
					       " recorded before and counted once.",
				       .labels = "result=booked", .value = (double)st.booked };
	put(ctx, &m);
	m.value = (double)st.duplicates;
	snprintf(m.labels, sizeof(m.labels), "result=duplicate");
	put(ctx, &m);
}

static int status_index(unsigned status)
{
	for (int i = 0; i < 5; i++)
		if (codes[i] == status)
			return i;
	return 5;
}

/* Fill r's answer: status and a JSON body made of j (taken). */
static void answer_json(struct events *ev, struct httpd_ingest_req *r, unsigned status, json_t *j,
			int64_t retry_after_s)
{
	free(r->json);
	r->json = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	r->status = r->json ? status : 503;   /* no memory for the body: the source retries */
	r->retry_after_s = r->status == 503 && retry_after_s <= 0 ? 1 : r->status == 503 ? retry_after_s : 0;
	pthread_mutex_lock(&ev->mu);
	ev->st.by_status[status_index(r->status)]++;
	pthread_mutex_unlock(&ev->mu);
}

/* {"error": msg[, "index": i, "id": ID, "key": K]}, logged (rate-limited
 * per source and status). index < 0: no event named. */
static void refuse_req(struct events *ev, struct httpd_ingest_req *r, const char *source, unsigned status,
		       long index, const char *id, const char *key, int64_t retry_after_s, const char *msg)
{
	json_t *j = json_object();
	if (j) {
		json_object_set_new(j, "error", json_string(msg));
		if (index >= 0)
			json_object_set_new(j, "index", json_integer(index));
		if (id)
			json_object_set_new(j, "id", json_string(id));
		if (key)
			json_object_set_new(j, "key", json_string(key));
	}
	char lk[96];
	snprintf(lk, sizeof(lk), "%s|%u", source, status);
	if (ratelimit_take(ev->logs, lk, time_mono_ns())) {
		pthread_mutex_lock(&ev->mu);
		ev->st.log_suppressed++;
		pthread_mutex_unlock(&ev->mu);
	} else {
		log_msg(LOG_WARN, "events: a request of source '%s' from %s refused (%u): %s", source[0] ? source : "?",
			r->client, status, msg);
	}
	answer_json(ev, r, status, j, retry_after_s);
}

/* ---- the listener's side ---- */

/* The body whole: its shape and every event by import's rules, and whose
 * events they are; else the answer (400, 403, 422, 503). */
static int check(void *ctx, struct httpd_ingest_req *r)
{
	struct events *ev = ctx;
	struct events_job *j = calloc(1, sizeof(*j));
	struct import_fault f;
	struct tally_err e = { 0 };
	char src[64], msg[700];

	pthread_mutex_lock(&ev->mu);
	ev->st.requests++;
	pthread_mutex_unlock(&ev->mu);
	if (!j) {
		refuse_req(ev, r, r->agent, 503, -1, NULL, NULL, 1, "out of memory");
		return 0;
	}
	j->req = r;
	int rc = import_parse_request((const char *)r->body, r->len, ev->s.max_events, src, sizeof(src), &j->b, &f, &e);
	if (rc == -ENOMEM) {
		refuse_req(ev, r, r->agent, 503, -1, NULL, NULL, 1, "out of memory reading the events");
		goto refused;
	}
	/* a source's token: its source, which the body may repeat but not
	 * change (said first: it is who may post, not what); an admin's: the
	 * source the body names */
	if (r->agent[0] && src[0] && strcmp(src, r->agent)) {
		snprintf(msg, sizeof(msg), "'source': this token is source '%s''s: the body may not name another"
			 " ('%s')", r->agent, src);
		refuse_req(ev, r, r->agent, 403, -1, NULL, "source", 0, msg);
		goto refused;
	}
	if (rc) {
		refuse_req(ev, r, r->agent, f.shape ? 400 : 422, f.index, NULL, f.key, 0, e.msg);
		goto refused;
	}
	if (!r->agent[0] && !src[0]) {
		refuse_req(ev, r, "", 400, -1, NULL, "source", 0, "'source': an admin's token names the source the"
			   " events come from: {\"source\": \"NAME\", \"events\": [...]}");
		goto refused;
	}
	str_copy(j->source, r->agent[0] ? r->agent : src, sizeof(j->source));
	r->priv = j;
	return 1;
refused:
	import_batch_release(&j->b);
	free(j);
	return 0;
}

static void queue(void *ctx, struct httpd_ingest_req *r, void (*done)(void *arg), void *arg)
{
	struct events *ev = ctx;
	struct events_job *j = r->priv;
	j->done = done;
	j->arg = arg;
	if (postq_push(&ev->q, &j->link)) {
		r->priv = NULL;
		refuse_req(ev, r, j->source, 503, -1, NULL, NULL, 5, "tallyd takes no events now: it is stopping, or its"
			   " fast-forward period has ended");
		import_batch_release(&j->b);
		free(j);
		done(arg);
		return;
	}
	if (ev->wake)
		ev->wake(ev->wake_ctx);
}

void events_listener(struct events *ev, struct httpd_ingest *out)
{
	memset(out, 0, sizeof(*out));
	out->check = check;
	out->queue = queue;
	out->ctx = ev;
	out->max_request = ev->s.max_request;
	out->max_pending = ev->s.max_pending;
	out->body_timeout_ns = ev->s.body_timeout_ns;
}

/* ---- the writer's side ---- */

struct events_job *events_take(struct events *ev, int64_t until_mono_ns)
{
	return (struct events_job *)postq_take(&ev->q, until_mono_ns);
}

static struct events_job *next_of(const struct events_job *j)
{
	return (struct events_job *)j->link.next;
}

static void finish(struct events_job *j)
{
	void (*done)(void *) = j->done;
	void *arg = j->arg;
	j->req->priv = NULL;
	import_batch_release(&j->b);
	free(j);
	done(arg);   /* the request may be gone after this */
}

/* 200: what became of each event. */
static void booked(struct events *ev, struct events_job *j)
{
	json_t *o = json_object(), *list = json_array();
	if (o && list) {
		json_object_set_new(o, "source", json_string(j->source));
		json_object_set_new(o, "events", json_integer((json_int_t)j->b.n));
		json_object_set_new(o, "booked", json_integer((json_int_t)j->res.events));
		json_object_set_new(o, "duplicates", json_integer((json_int_t)j->res.duplicates));
		for (size_t i = 0; i < j->b.n; i++) {
			json_t *x = json_object();
			if (!x)
				break;
			json_object_set_new(x, "id", json_string(j->b.v[i].id));
			json_object_set_new(x, "result", json_string(j->b.v[i].booked ? "booked" : "duplicate"));
			json_array_append_new(list, x);
		}
		json_object_set_new(o, "results", list);
		list = NULL;
	}
	json_decref(list);
	answer_json(ev, j->req, 200, o, 0);
	pthread_mutex_lock(&ev->mu);
	ev->st.booked += j->res.events;
	ev->st.duplicates += j->res.duplicates;
	pthread_mutex_unlock(&ev->mu);
	j->answered = true;
}

/* A refusal of the writer's (import_writer_book's rc, the event bad). */
static void refused(struct events *ev, struct events_job *j, int rc, size_t bad, const char *msg)
{
	const struct import_event *x = &j->b.v[bad];
	refuse_req(ev, j->req, j->source, rc == -EEXIST ? 409 : 422, (long)bad, x->id,
		   rc == -EEXIST ? "id" : rc == -EINVAL ? "resource" : "quantity", 0, msg);
	j->answered = true;
}

static int res_find(void *ctx, const char *uuid, struct ledger_resource *out, bool *in_ledger)
{
	return agg_resource_find(ctx, uuid, out, in_ledger);
}

static int64_t res_new_id(void *ctx)
{
	return agg_resource_new_id(ctx);
}

static void res_learn(void *ctx, const struct ledger_resource *r)
{
	agg_resource_learn(ctx, r);   /* out of memory: the aggregator is broken, and says so */
}

/* One transaction for the requests of list not answered yet (one: only
 * the first of them): 0 when it committed (every one answered 200); 1 when
 * one of them was refused (it is answered, nothing committed, the others
 * wait) or when the commit found a row past 2^63 - 1 (PostgreSQL adds the
 * rows at the commit: nothing committed, and then one request a
 * transaction finds whose it was); else the ledger's error (nothing
 * committed, nobody answered; message in e). */
static int book_round(struct events *ev, struct events_job *list, bool one, int64_t now_ns, struct tally_err *e)
{
	struct ledger *l = agg_ledger(ev->a);
	size_t bad;
	int rc;
	if ((rc = ledger_begin(l, e)))
		return rc;
	for (struct events_job *j = list; j; j = next_of(j)) {
		if (j->answered)
			continue;
		rc = import_writer_book(ev->w, j->source, &j->b, now_ns, &j->res, &bad, e);
		if (rc && bad != SIZE_MAX) {
			ledger_rollback(l);
			import_writer_end(ev->w, false);
			refused(ev, j, rc, bad, e->msg);
			e->msg[0] = '\0';
			return 1;
		}
		if (rc)
			goto fail;
		if (one)
			break;
	}
	if ((rc = ledger_commit(l, e)) == -ERANGE) {
		ledger_rollback(l);
		import_writer_end(ev->w, false);
		for (struct events_job *j = list; one && j; j = next_of(j))
			if (!j->answered) {
				refuse_req(ev, j->req, j->source, 422, -1, NULL, "quantity", 0, e->msg);
				j->answered = true;
				break;
			}
		e->msg[0] = '\0';
		return 1;
	}
	if (rc)
		goto fail;
	import_writer_end(ev->w, true);
	for (struct events_job *j = list; j; j = next_of(j))
		if (!j->answered) {
			booked(ev, j);
			if (one)
				break;
		}
	return 0;
fail:
	ledger_rollback(l);
	import_writer_end(ev->w, false);
	return rc;
}

int events_run(struct events *ev, struct events_job *list, struct aggregator *a, int64_t now_ns)
{
	struct tally_err e = { 0 };
	int rc = 0;

	if (!list)
		return 0;
	if (agg_broken(a)) {
		events_refuse(ev, list, 503, 5, "the aggregator failed: tallyd restarts it");
		return 0;
	}
	if (ev->a != a || !ev->w) {
		events_detach(ev);
		const struct import_resources res = { res_find, res_new_id, res_learn, a };
		if (import_writer_new(&ev->w, agg_ledger(a), &res)) {
			events_refuse(ev, list, 503, 1, "out of memory");
			return 0;
		}
		ev->a = a;
	}
	/* all at once; after a refusal, the others one transaction each */
	rc = book_round(ev, list, false, now_ns, &e);
	while (rc >= 0) {
		bool left = false;
		for (struct events_job *j = list; j; j = next_of(j))
			left |= !j->answered;
		if (!left) {
			rc = 0;
			break;
		}
		rc = book_round(ev, list, true, now_ns, &e);
	}
	if (rc < 0) {
		char why[600];
		complain(&ev->fail, LOG_ERR, "events: %s; requests are answered 503 until it can be written", e.msg);
		snprintf(why, sizeof(why), "the ledger cannot be written now: %s", e.msg);
		for (struct events_job *j = list; j; j = next_of(j))
			if (!j->answered) {
				refuse_req(ev, j->req, j->source, 503, -1, NULL, NULL, 5, why);
				j->answered = true;
			}
	} else if (ev->fail.window_ns) {
		complaint_clear(&ev->fail, "events: the ledger is written again");
	}
	while (list) {
		struct events_job *j = list;
		list = next_of(j);
		finish(j);
	}
	if (rc < 0 && !ledger_idle(agg_ledger(a)))
		return -EIO;
	return 0;
}

void events_refuse(struct events *ev, struct events_job *list, unsigned status, int64_t retry_after_s,
		   const char *why)
{
	while (list) {
		struct events_job *j = list;
		list = next_of(j);
		refuse_req(ev, j->req, j->source, status, -1, NULL, NULL, retry_after_s > 0 ? retry_after_s : 1, why);
		finish(j);
	}
}

void events_close(struct events *ev)
{
	events_refuse(ev, (struct events_job *)postq_close(&ev->q), 503, 5, "tallyd takes no events now: it is stopping, or its fast-forward period has"
		      " ended");
}
