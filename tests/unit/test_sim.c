/*
 * test_sim.c: the simulated fleet is the ground truth of the exactness
 * tests, so it is tested on its own: its readings are the closed-form
 * functions sim.h promises, its schedule is consistent, and a run resumed
 * at any committed cycle continues with exactly the readings an unbroken
 * run sends (what crash recovery in fast-forward relies on).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "sim.h"
#include "tallytime.h"
#include "testutil.h"

#define T0 (1790812800LL * NS_PER_SEC)
#define S(x) ((int64_t)(x) * NS_PER_SEC)

extern const struct collector_ops sim_collector;

struct rec {
	struct sample *s;
	size_t n, cap;
	size_t events, metas;
};

static int rec_sample(void *ctx, const char *agent, const struct sample *s)
{
	struct rec *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 4096;
		r->s = realloc(r->s, r->cap * sizeof(*r->s));
		ck_assert_ptr_nonnull(r->s);
	}
	r->s[r->n++] = *s;
	return 0;
}
static int rec_meta(void *ctx, const char *agent, const struct resource_meta *m)
{
	((struct rec *)ctx)->metas++;
	return 0;
}
static int rec_event(void *ctx, const char *agent, const struct lifecycle_event *ev)
{
	((struct rec *)ctx)->events++;
	return 0;
}

static const char *yaml = "vms: 6\ntenants: 2\nhosts: 3\ndisks: 2\nnics: 1\nseed: 42\nloss: 0.05\n"
			  "reboots_per_day: 2\nstops_per_day: 1\nmigrations_per_day: 1\n";

static void *make_sim(int64_t resume)
{
	struct collector_env env = { .agent_id = "t", .interval_ns = S(60), .start_ns = T0,
				     .start_fixed = true };
	struct cfg_node *root;
	struct tally_err e = { 0 };
	void *st = NULL;
	ck_assert_int_eq(cfg_load_string("sim.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_msg(sim_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_int_eq(sim_collector.init(st, resume, &e), 0);
	return st;
}

static void read_ticks(void *st, int from, int to, struct rec *r)
{
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	struct tally_err e = { 0 };
	for (int k = from; k <= to; k++)
		ck_assert_int_eq(sim_collector.read(st, T0 + (int64_t)k * S(60), &sk, &e), 0);
}

/* A sink that refuses every third sample with -ENOSPC (a full queue) and
 * every event with -ENOMEM. */
struct picky {
	size_t calls, refused_samples, events;
};
static int picky_sample(void *ctx, const char *agent, const struct sample *s)
{
	struct picky *p = ctx;
	if (++p->calls % 3 == 0) {
		p->refused_samples++;
		return -ENOSPC;
	}
	return 0;
}
static int picky_meta(void *ctx, const char *agent, const struct resource_meta *m)
{
	return 0;
}
static int picky_event(void *ctx, const char *agent, const struct lifecycle_event *ev)
{
	((struct picky *)ctx)->events++;
	return -ENOMEM;
}

/* A refused reading is never silent: read() returns the first refusal
 * (not several errnos ORed into a number that is none of them) and says
 * how many there were; the other readings still go to the sink. */
START_TEST(test_refusals_surface)
{
	void *st = make_sim(0);
	struct picky p = { 0 };
	struct sink sk = { &p, picky_sample, picky_meta, picky_event };
	struct tally_err e = { 0 };
	int rc = 0;
	for (int k = 0; k <= 3000 && p.events == 0; k++) {
		p.calls = p.refused_samples = 0;
		memset(&e, 0, sizeof(e));
		rc = sim_collector.read(st, T0 + (int64_t)k * S(60), &sk, &e);
		ck_assert_int_ne(rc, 0);      /* every read has a third sample */
	}
	ck_assert_uint_gt(p.events, 0);   /* a reboot, stop or migration came */
	/* the first refusal of the read was a sample's (-ENOSPC) or, when the
	 * event came first, the event's (-ENOMEM): never an OR of the two */
	ck_assert(rc == -ENOSPC || rc == -ENOMEM);
	char want[64];
	snprintf(want, sizeof(want), "sim: %zu readings refused by the sink", p.refused_samples + p.events);
	ck_assert_msg(strstr(e.msg, want) != NULL, "%s (want %s)", e.msg, want);
	sim_collector.free(st);
}
END_TEST

START_TEST(test_resume_continues_exactly)
{
	/* two days of ticks; resume at a few cycles, compare what follows */
	const int last = 2880;
	struct rec full = { 0 };
	void *st = make_sim(0);
	read_ticks(st, 0, last, &full);
	sim_collector.free(st);
	ck_assert_uint_gt(full.events, 10);
	const int resume_at[] = { 1, 17, 700, 2000 };
	for (size_t i = 0; i < sizeof(resume_at) / sizeof(resume_at[0]); i++) {
		int k = resume_at[i];
		int64_t t = T0 + (int64_t)k * S(60);
		struct rec part = { 0 };
		st = make_sim(t);
		read_ticks(st, k + 1, last, &part);
		sim_collector.free(st);
		size_t j = 0;
		while (j < full.n && full.s[j].time_ns <= t)
			j++;
		ck_assert_uint_eq(full.n - j, part.n);
		ck_assert_msg(memcmp(&full.s[j], part.s, part.n * sizeof(*part.s)) == 0,
			      "readings after a resume at tick %d differ", k);
		free(part.s);
	}
	free(full.s);
}
END_TEST

START_TEST(test_readings_are_the_closed_form)
{
	struct sim_config c;
	struct sim_vm v;
	struct sim_life L[64];
	struct rec r = { 0 };
	void *st = make_sim(0);
	read_ticks(st, 0, 1440, &r);
	sim_collector.free(st);

	sim_config_default(&c);
	c.vms = 6; c.tenants = 2; c.hosts = 3; c.disks = 2; c.nics = 1; c.seed = 42; c.loss = 0.05;
	c.reboots_per_day = 2; c.stops_per_day = 1; c.migrations_per_day = 1;
	c.start_ns = T0;
	c.interval_ns = S(60);
	int checked = 0, lost = 0;
	for (uint32_t vm = 0; vm < c.vms; vm++) {
		sim_vm_describe(&c, vm, &v);
		int n = sim_lives(&c, vm, T0 + S(86400), L, 64);
		ck_assert_int_le(n, 64);
		for (int l = 1; l < n; l++)
			ck_assert_int_le(L[l - 1].end_ns, L[l].start_ns);  /* lives never overlap */
		for (size_t i = 0; i < r.n; i++) {
			const struct sample *s = &r.s[i];
			if (strcmp(s->resource, v.uuid) || s->meter != M_CPU)
				continue;
			/* the life this reading belongs to: the final reading of a life
			 * is at its end, the others inside it */
			int l;
			for (l = 0; l < n; l++)
				if (s->time_ns > L[l].start_ns && s->time_ns <= L[l].end_ns &&
				    ((s->flags & SAMPLE_F_LAST) ? s->time_ns == L[l].end_ns : s->time_ns < L[l].end_ns))
					break;
			ck_assert_msg(l < n, "%s: cpu reading at %lld in no life", v.name, (long long)s->time_ns);
			uint64_t want = v.rate[M_CPU] * (uint64_t)((s->time_ns - L[l].start_ns) / NS_PER_SEC);
			ck_assert_uint_eq(s->v.counter, want);
			ck_assert_int_eq(s->origin_ns, L[l].origin_known ? L[l].start_ns : 0);
			checked++;
		}
		for (int k = 1; k <= 1440; k++)
			lost += sim_tick_lost(&c, vm, k);
	}
	ck_assert_int_gt(checked, 6 * 1000);
	/* 5% of 6 * 1440 ticks is 432; the draw is fixed by the seed */
	ck_assert_int_gt(lost, 300);
	ck_assert_int_lt(lost, 560);
	ck_assert_uint_eq(r.metas, 6);
	free(r.s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sim");
	TCase *tc = tcase_create("sim");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_resume_continues_exactly);
	tcase_add_test(tc, test_refusals_surface);
	tcase_add_test(tc, test_readings_are_the_closed_form);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
