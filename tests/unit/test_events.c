/*
 * test_events: the writer's side of POST /api/v1/events (daemon/events.c)
 * without the listener: requests handed to its hooks as the listener hands
 * them (check, queue), taken and booked on the ledger of a real aggregator
 * (tests/unit/ledger_fixture.h) as the pipeline does between commits.
 *
 * What each case proves, from schemas/events-api.md: requests taken
 * together are booked in one transaction, and one refused among them (a
 * key reused for another event: 409; a resource of another tenant: 422)
 * leaves the others booked and itself not at all; a write or a commit that
 * fails as a full disk does (the fault injector: SQLITE_FULL) is a 503 with
 * Retry-After, nothing of it in the ledger, the same request taken once the
 * disk has room, and the aggregator's own commits unharmed; the listener's
 * check refuses a body by its shape (400) or an event by its rules (422)
 * before anything is queued, and a source token's body naming another
 * source (403); a closed queue answers 503.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "events.h"
#include "fault.h"
#include "ledger.h"
#include "metercfg.h"
#include "testutil.h"
#include "ledger_fixture.h"

#define SEP (1788220800LL * NS_PER_SEC)  /* 2026-09-01T00:00:00Z */

static const char meters_yaml[] = "meters:\n"
				  "  - {name: api.calls, kind: counter, unit: request, title: API calls}\n";

struct req {
	struct httpd_ingest_req r;
	char *body;
	int done;
};

static void on_done(void *arg)
{
	((struct req *)arg)->done++;
}

/* Hand body to the listener's hooks as a request of source (a source's
 * token; "" for an admin's). Returns what check() said: 1 queued. */
static int hand(struct httpd_ingest *h, struct req *q, const char *source, const char *body)
{
	memset(q, 0, sizeof(*q));
	str_copy(q->r.agent, source, sizeof(q->r.agent));
	str_copy(q->r.client, "127.0.0.1", sizeof(q->r.client));
	q->body = strdup(body);
	q->r.body = (const uint8_t *)q->body;
	q->r.len = strlen(body);
	int rc = h->check(h->ctx, &q->r);
	if (rc == 1)
		h->queue(h->ctx, &q->r, on_done, q);
	else
		q->done++;
	return rc;
}

static void release(struct req *q)
{
	free(q->r.json);
	free(q->body);
}

/* The answer's field key as an integer (-1: absent). */
static long field(const struct req *q, const char *key)
{
	json_t *j = json_loads(q->r.json ? q->r.json : "{}", 0, NULL);
	json_t *v = json_object_get(j, key);
	long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
	json_decref(j);
	return n;
}

static int64_t count(const char *sql)
{
	return tu_ledger_int(ledger, sql);
}

static char *ev1(char *buf, size_t len, const char *id, const char *tenant, const char *res, long qty)
{
	snprintf(buf, len, "{\"events\": [{\"id\": \"%s\", \"tenant\": \"%s\", \"resource\": \"%s\", \"meter\":"
		 " \"api.calls\", \"time\": \"2026-09-01T00:10:00Z\", \"quantity\": %ld}]}", id, tenant, res, qty);
	return buf;
}

START_TEST(test_rounds)
{
	struct cfg_node *root = NULL;
	struct tally_err e = { 0 };
	meter_custom_clear();
	ck_assert_int_eq(cfg_load_string("t.yaml", meters_yaml, sizeof(meters_yaml) - 1, &root, &e), 0);
	ck_assert_int_eq(meter_config_parse(cfg_get(root, "meters"), true, &e), 0);
	cfg_free(root);
	lf_open();
	lf_meta("vm-a", "acme", "m1", SEP);
	lf_reading("vm-a", M_VCPUS, SEP, 1, 0, 0);
	lf_flush();

	struct events *ev;
	struct events_section s;
	struct httpd_ingest h;
	ck_assert_int_eq(events_section_parse(&s, NULL, &e), 0);
	ck_assert_int_eq(events_new(&ev, &s, &e), 0);
	events_listener(ev, &h);
	char b[4][400];
	struct req q[4];

	/* the listener's own refusals: nothing queued */
	ck_assert_int_eq(hand(&h, &q[0], "rgw", "{\"events\": [{\"id\": 1.5}]}"), 0);
	ck_assert_int_eq(q[0].r.status, 400);
	ck_assert_int_eq(hand(&h, &q[1], "rgw", ev1(b[1], sizeof(b[1]), "n1", "acme", "r", -3)), 0);
	ck_assert_int_eq(q[1].r.status, 422);
	ck_assert_int_eq(field(&q[1], "index"), 0);
	ck_assert_int_eq(hand(&h, &q[2], "rgw", "{\"source\": \"x\", \"events\": [{}]}"), 0);
	ck_assert_int_eq(q[2].r.status, 403);
	ck_assert_int_eq(hand(&h, &q[3], "", ev1(b[3], sizeof(b[3]), "n1", "acme", "r", 3)), 0);
	ck_assert_int_eq(q[3].r.status, 400);
	for (int i = 0; i < 4; i++)
		release(&q[i]);
	ck_assert_ptr_null(events_take(ev, 0));

	/* one round: a1, then a key of a1 with another quantity (409), then
	 * another tenant's resource (422), then b1: a1 and b1 booked */
	ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "a1", "acme", "bucket:x", 5)), 1);
	ck_assert_int_eq(hand(&h, &q[1], "rgw", ev1(b[1], sizeof(b[1]), "a1", "acme", "bucket:x", 6)), 1);
	ck_assert_int_eq(hand(&h, &q[2], "rgw", ev1(b[2], sizeof(b[2]), "g1", "globex", "vm-a", 1)), 1);
	ck_assert_int_eq(hand(&h, &q[3], "rgw", ev1(b[3], sizeof(b[3]), "b1", "acme", "vm-a", 7)), 1);
	struct events_job *list = events_take(ev, 0);
	ck_assert_ptr_nonnull(list);
	ck_assert_int_eq(events_run(ev, list, agg, (1790812800LL * NS_PER_SEC)), 0);
	int want[] = { 200, 409, 422, 200 };
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(q[i].done, 1);
		ck_assert_msg(q[i].r.status == (unsigned)want[i], "request %d: %u %s", i, q[i].r.status, q[i].r.json);
	}
	ck_assert_int_eq(field(&q[1], "index"), 0);
	ck_assert_msg(strstr(q[1].r.json, "\"key\":\"id\""), "%s", q[1].r.json);
	ck_assert_msg(strstr(q[2].r.json, "belongs to tenant 'acme', not 'globex'"), "%s", q[2].r.json);
	ck_assert_int_eq(field(&q[0], "booked"), 1);
	for (int i = 0; i < 4; i++)
		release(&q[i]);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events"), 2);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE event_id = 'g1'"), 0);

	/* a write fails as a full disk does: 503, Retry-After, nothing booked */
	ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "c1", "acme", "bucket:y", 9)), 1);
	fault_arm(FAULT_WRITE, 1, true);
	ck_assert_int_eq(events_run(ev, events_take(ev, 0), agg, (1790812800LL * NS_PER_SEC)), 0);
	fault_disarm();
	ck_assert_int_eq(q[0].r.status, 503);
	ck_assert_int_gt(q[0].r.retry_after_s, 0);
	ck_assert_msg(strstr(q[0].r.json, "cannot be written now"), "%s", q[0].r.json);
	release(&q[0]);
	/* the commit fails: the same */
	ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "c1", "acme", "bucket:y", 9)), 1);
	fault_arm(FAULT_COMMIT, 1, false);
	ck_assert_int_eq(events_run(ev, events_take(ev, 0), agg, (1790812800LL * NS_PER_SEC)), 0);
	fault_disarm();
	ck_assert_int_eq(q[0].r.status, 503);
	release(&q[0]);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events"), 2);
	struct ledger_resource lr;
	bool in;
	ck_assert_int_eq(agg_resource_find(agg, "bucket:y", &lr, &in), 0);   /* not learned */
	/* room again: the same request is taken */
	ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "c1", "acme", "bucket:y", 9)), 1);
	ck_assert_int_eq(events_run(ev, events_take(ev, 0), agg, (1790812800LL * NS_PER_SEC)), 0);
	ck_assert_int_eq(q[0].r.status, 200);
	release(&q[0]);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events"), 3);

	/* an hour's row past 2^63 - 1: o2 would take bucket:big's row from
	 * 2^63 - 11 to 2^63, one past what a row holds exactly: 422, its
	 * round's others booked, the row as o1 left it (the commit finds it on
	 * PostgreSQL, the write on SQLite) */
	ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "o1", "acme", "bucket:big", INT64_MAX - 10)),
			 1);
	ck_assert_int_eq(hand(&h, &q[1], "rgw", ev1(b[1], sizeof(b[1]), "o2", "acme", "bucket:big", 11)), 1);
	ck_assert_int_eq(hand(&h, &q[2], "rgw", ev1(b[2], sizeof(b[2]), "o3", "acme", "bucket:z", 4)), 1);
	ck_assert_int_eq(events_run(ev, events_take(ev, 0), agg, (1790812800LL * NS_PER_SEC)), 0);
	int want2[] = { 200, 422, 200 };
	for (int i = 0; i < 3; i++)
		ck_assert_msg(q[i].r.status == (unsigned)want2[i], "request %d: %u %s", i, q[i].r.status, q[i].r.json);
	ck_assert_msg(strstr(q[1].r.json, "2^63"), "%s", q[1].r.json);
	for (int i = 0; i < 3; i++)
		release(&q[i]);
	ck_assert_int_eq(count("SELECT quantity FROM usage u JOIN resources r ON r.id = u.resource_id"
			       " WHERE r.uuid = 'bucket:big'"), INT64_MAX - 10);
	ck_assert_int_eq(count("SELECT count(*) FROM usage_events WHERE event_id IN ('o1', 'o2', 'o3')"), 2);

	/* a resource another writer put in the ledger (another aggregator on
	 * PostgreSQL; on SQLite the writer's lock leaves no other), unknown to
	 * this one's memory: its tenant counts too */
	const int other = tu_pg() ? 1 : 0;
	if (other) {
		tu_ledger_sql(ledger, "INSERT INTO resources (id, uuid, type, name, tenant, first_seen_ns, last_seen_ns)"
				      " VALUES (900, 'vm-other', 'instance', 'vm-other', 'globex', 0, 0)");
		ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "x1", "acme", "vm-other", 1)), 1);
		ck_assert_int_eq(events_run(ev, events_take(ev, 0), agg, (1790812800LL * NS_PER_SEC)), 0);
		ck_assert_msg(q[0].r.status == 422 && strstr(q[0].r.json, "belongs to tenant 'globex', not 'acme'"), "%u %s",
			      q[0].r.status, q[0].r.json);
		release(&q[0]);
		ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "x2", "globex", "vm-other", 2)), 1);
		ck_assert_int_eq(events_run(ev, events_take(ev, 0), agg, (1790812800LL * NS_PER_SEC)), 0);
		ck_assert_msg(q[0].r.status == 200, "%u %s", q[0].r.status, q[0].r.json);
		release(&q[0]);
		ck_assert_int_eq(count("SELECT sum(quantity) FROM usage WHERE resource_id = 900"), 2);
	}

	/* the aggregator's own commits go on; every uuid one row */
	lf_reading("vm-a", M_VCPUS, SEP + NS_PER_HOUR, 1, 0, 0);
	lf_close();
	ck_assert_int_eq(count("SELECT count(*) FROM resources"), 5 + other);
	ck_assert_int_eq(count("SELECT count(DISTINCT uuid) FROM resources"), 5 + other);
	ck_assert_int_eq(count("SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id"
			       " JOIN resources r ON r.id = u.resource_id WHERE m.name = 'api.calls'"
			       " AND r.uuid <> 'bucket:big'"), 5 + 7 + 9 + 4 + 2 * other);

	struct events_stats st;
	events_get_stats(ev, &st);
	ck_assert_uint_eq(st.booked, 5 + other);
	ck_assert_uint_eq(st.by_status[0], 5 + other);   /* 200 */
	ck_assert_uint_eq(st.by_status[3], 1);   /* 409 */
	ck_assert_uint_eq(st.by_status[5], 2);   /* 503 */

	/* closed: answered 503 at once */
	events_detach(ev);
	events_close(ev);
	ck_assert_int_eq(hand(&h, &q[0], "rgw", ev1(b[0], sizeof(b[0]), "z1", "acme", "bucket:z", 1)), 1);
	ck_assert_int_eq(q[0].done, 1);
	ck_assert_int_eq(q[0].r.status, 503);
	release(&q[0]);
	events_free(ev);
	lf_teardown();
	meter_custom_clear();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("events");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_rounds);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
