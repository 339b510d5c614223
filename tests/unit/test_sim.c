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

static void *make_sim_from(const char *text, int64_t resume)
{
	struct collector_env env = { .agent_id = "t", .interval_ns = S(60), .start_ns = T0,
				     .start_fixed = true };
	struct cfg_node *root;
	struct tally_err e = { 0 };
	void *st = NULL;
	ck_assert_int_eq(cfg_load_string("sim.yaml", text, strlen(text), &root, &e), 0);
	ck_assert_msg(sim_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_int_eq(sim_collector.init(st, resume, &e), 0);
	return st;
}

static void *make_sim(int64_t resume)
{
	return make_sim_from(yaml, resume);
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

/* host_prefix names the hosts' agent ids: "rack-a-0" .. "rack-a-2" and
 * nothing else; every other reading is the same as with the default. */
struct agents_seen {
	char names[8][64];
	size_t n;
	size_t samples;
};
static int agent_sample(void *ctx, const char *agent, const struct sample *s)
{
	struct agents_seen *a = ctx;
	a->samples++;
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->names[i], agent))
			return 0;
	ck_assert_uint_lt(a->n, 8);
	str_copy(a->names[a->n++], agent, sizeof(a->names[0]));
	return 0;
}

START_TEST(test_host_prefix)
{
	char text[400];
	snprintf(text, sizeof(text), "%shost_prefix: rack-a-\n", yaml);
	void *st = make_sim_from(text, 0), *plain = make_sim(0);
	struct agents_seen a = { 0 }, b = { 0 };
	struct sink sa = { &a, agent_sample, picky_meta, picky_event }, sb = { &b, agent_sample, picky_meta, picky_event };
	struct tally_err e = { 0 };
	for (int k = 0; k <= 600; k++) {
		sim_collector.read(st, T0 + (int64_t)k * S(60), &sa, &e);
		sim_collector.read(plain, T0 + (int64_t)k * S(60), &sb, &e);
	}
	ck_assert_uint_eq(a.n, 3);
	ck_assert_uint_eq(a.samples, b.samples);
	for (size_t i = 0; i < a.n; i++) {
		ck_assert(!strncmp(a.names[i], "rack-a-", 7));
		ck_assert(a.names[i][7] >= '0' && a.names[i][7] <= '2' && !a.names[i][8]);
	}
	sim_collector.free(st);
	sim_collector.free(plain);
	/* empty: refused, named */
	struct collector_env env = { .agent_id = "t", .interval_ns = S(60), .start_ns = T0, .start_fixed = true };
	struct cfg_node *root;
	void *x = NULL;
	ck_assert_int_eq(cfg_load_string("sim.yaml", "host_prefix: ''\n", 15, &root, &e), 0);
	ck_assert_int_eq(sim_collector.configure(root, &env, &x, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "sim.yaml:1:14: key 'host_prefix': empty"));
	cfg_free(root);
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

/* The split rule of sim.h / docs/config.md applied by hand. Shares as
 * written: internet 0.3, peering 0.05, internal 0.65 (the last takes what
 * is left of each second's units). */
START_TEST(test_class_split_by_hand)
{
	struct sim_config c;
	uint64_t out[SIM_MAX_CLASSES];
	sim_config_default(&c);
	c.n_classes = 3;
	c.class_ppm[0] = 300000;
	c.class_ppm[1] = 50000;
	c.class_ppm[2] = 650000;
	static const struct {
		uint64_t rate, counter, want[3];
	} rows[] = {
		/* 7000 B/s: class rates floor(2100) 2100, floor(350) 350, and
		 * 7000 - 2450 = 4550. At 60 s the NIC reads 420000: 60 x each */
		{ 7000, 420000, { 126000, 21000, 273000 } },
		/* at 61.5 s (a reading off whole seconds) it reads 430500 = 61 x
		 * 7000 + 3500: 61 x each rate, and the 3500 of the second begun
		 * in the order written: internet its 2100, peering its 350,
		 * internal the 1050 left */
		{ 7000, 430500, { 128100 + 2100, 21350 + 350, 277550 + 1050 } },
		/* 8 packets/s: floor(2.4) 2, floor(0.4) 0, internal 8 - 2 = 6;
		 * at 60 s 480 packets */
		{ 8, 480, { 120, 0, 360 } },
		/* at 61.5 s 492 = 61 x 8 + 4: internet 122 + 2, peering 0,
		 * internal 366 + the 2 left */
		{ 8, 492, { 124, 0, 368 } },
		/* a counter from zero: a life's start */
		{ 7000, 0, { 0, 0, 0 } },
		/* 1 unit of a begun second goes to the first class */
		{ 7000, 1, { 1, 0, 0 } },
		/* 1 packet/s: every class but the last gets floor(< 1) = 0 */
		{ 1, 86400, { 0, 0, 86400 } },
		/* huge: 8e12 units/s, 2^40 + 5 units past 10^6 s; internet
		 * 2.4e12/s, peering 4e11/s, internal 5.2e12/s; the 1099511627781
		 * units of the second begun all go to internet (below 2.4e12) */
		{ 8000000000000ULL, 8000000000000ULL * 1000000 + 1099511627781ULL,
		  { 2400000000000ULL * 1000000 + 1099511627781ULL, 400000000000ULL * 1000000,
		    5200000000000ULL * 1000000 } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		sim_class_split(&c, rows[i].rate, rows[i].counter, out);
		for (int k = 0; k < 3; k++)
			ck_assert_msg(out[k] == rows[i].want[k], "row %zu class %d: %llu, want %llu", i, k,
				      (unsigned long long)out[k], (unsigned long long)rows[i].want[k]);
	}
	/* one class: everything in it */
	c.n_classes = 1;
	c.class_ppm[0] = 1000000;
	sim_class_split(&c, 7000, 430500, out);
	ck_assert_uint_eq(out[0], 430500);
	/* the last class at share 0 gets nothing: internet 1, internal 0 */
	c.n_classes = 2;
	c.class_ppm[1] = 0;
	sim_class_split(&c, 7000, 430500, out);
	ck_assert_uint_eq(out[0], 430500);
	ck_assert_uint_eq(out[1], 0);
}
END_TEST

/* Operator mistakes in collectors.sim.classes: each refused with its place
 * (line:col counted by hand in the text) and the key named. */
START_TEST(test_classes_config_mistakes)
{
	static const struct {
		const char *text;
		int rc;
		const char *msg;
	} rows[] = {
		{ "vms: 1\nclasses: {internet: 0.3, internal: 0.65}\n", -EINVAL,
		  "sim.yaml:2:10: key 'collectors.sim.classes': the shares add up to 0.95, not 1" },
		{ "vms: 1\nclasses: {internet: 0.5, internal: 0.500001}\n", -EINVAL,
		  "sim.yaml:2:10: key 'collectors.sim.classes': the shares add up to 1.000001, not 1" },
		{ "classes: {internet: 1, internal: 1}\n", -EINVAL, "the shares add up to 2, not 1" },
		{ "classes: {internet: 0}\n", -EINVAL, "the shares add up to 0, not 1" },
		{ "classes: {intranet: 1}\n", -EINVAL,
		  "sim.yaml:1:11: key 'collectors.sim.classes': unknown traffic class 'intranet' (known:"
		  " internet, internal, peering, nonip, malformed)" },
		/* a meter name that is not a class's */
		{ "classes: {incoming: 1}\n", -EINVAL, "sim.yaml:1:11: key 'collectors.sim.classes': unknown" },
		{ "classes: {internet: 1.5}\n", -ERANGE,
		  "sim.yaml:1:21: key 'collectors.sim.classes.internet': 1.5 is more than 1" },
		{ "classes: {internet: 0.1234567, internal: 0.8765433}\n", -EINVAL,
		  "sim.yaml:1:21: key 'collectors.sim.classes.internet': '0.1234567' has more than 6 decimal places" },
		{ "classes: {internet: -0.5, internal: 1.5}\n", -EINVAL,
		  "sim.yaml:1:21: key 'collectors.sim.classes.internet': expected a share of the NIC's traffic,"
		  " a decimal from 0 to 1 like 0.3 (got '-0.5')" },
		{ "classes:\n  internet: 30%\n", -EINVAL,
		  "sim.yaml:2:13: key 'collectors.sim.classes.internet': expected a share" },
		{ "classes: {internet: .5, internal: .5}\n", -EINVAL, "(got '.5')" },
		{ "classes: {internet: 0., internal: 1}\n", -EINVAL, "(got '0.')" },
		{ "classes: {internet: 01, internal: 0}\n", -EINVAL, "(got '01')" },
		{ "classes: {internet: {a: 1}}\n", -EINVAL, "(got a map)" },
		{ "classes: [internet]\n", -EINVAL, "sim.yaml:1:10: key 'classes': expected a map of keys, not a list" },
		{ "classes: {}\n", -EINVAL, "sim.yaml:1:10: key 'collectors.sim.classes': name at least one" },
		{ "classes:\n", -EINVAL, "key 'collectors.sim.classes': name at least one" },
		{ "classes: {internet: 0.5, internet: 0.5}\n", -EINVAL, "key 'internet' given twice" },
		{ "class: {internet: 1}\n", -EINVAL, "unknown key 'class'" },
	};
	struct collector_env env = { .agent_id = "t", .interval_ns = S(60), .start_ns = T0 };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct cfg_node *root = NULL;
		struct tally_err e = { 0 };
		void *st = NULL;
		int rc = cfg_load_string("sim.yaml", rows[i].text, strlen(rows[i].text), &root, &e);
		if (rc == 0) {
			rc = sim_collector.configure(root, &env, &st, &e);
			cfg_free(root);
		}
		ck_assert_msg(rc == rows[i].rc, "row %zu: rc %d, want %d (%s)", i, rc, rows[i].rc, e.msg);
		ck_assert_ptr_null(st);
		ck_assert_msg(strstr(e.msg, rows[i].msg) != NULL, "row %zu: '%s' lacks '%s'", i, e.msg, rows[i].msg);
	}
}
END_TEST

static bool is_class_meter(int m)
{
	return m >= M_NETC_FIRST && m <= M_NETC_LAST;
}

/* A day of the collector with classes, through reboots, stops, migrations,
 * crashes and lost ticks: after every NIC counter's four readings come its
 * class readings, which are exactly the split of that reading, add up to
 * it, and never go down within one life; everything else is what a run
 * without classes sends, byte for byte. */
START_TEST(test_classes_add_up_at_every_reading)
{
	static const char *with = "vms: 6\ntenants: 2\nhosts: 3\ndisks: 2\nnics: 2\nseed: 42\nloss: 0.05\n"
				  "reboots_per_day: 2\nstops_per_day: 1\nmigrations_per_day: 1\ncrashes_per_day: 1\n"
				  "classes: {internet: 0.3, peering: 0.05, internal: 0.65}\n";
	static const char *without = "vms: 6\ntenants: 2\nhosts: 3\ndisks: 2\nnics: 2\nseed: 42\nloss: 0.05\n"
				     "reboots_per_day: 2\nstops_per_day: 1\nmigrations_per_day: 1\n"
				     "crashes_per_day: 1\n";
	const int cls[3] = { meter_lookup("network.internet.incoming.bytes"),
			     meter_lookup("network.peering.incoming.bytes"),
			     meter_lookup("network.internal.incoming.bytes") };
	struct rec a = { 0 }, b = { 0 };
	void *st = make_sim_from(with, 0);
	read_ticks(st, 0, 1440, &a);
	sim_collector.free(st);
	st = make_sim_from(without, 0);
	read_ticks(st, 0, 1440, &b);
	sim_collector.free(st);

	struct sim_config c;
	struct sim_vm v[6];
	sim_config_default(&c);
	c.vms = 6; c.tenants = 2; c.seed = 42;
	c.n_classes = 3;
	c.class_ppm[0] = 300000;
	c.class_ppm[1] = 50000;
	c.class_ppm[2] = 650000;
	for (uint32_t vm = 0; vm < 6; vm++)
		sim_vm_describe(&c, vm, &v[vm]);
	size_t nb = 0, nic_readings = 0, finals = 0;
	for (size_t i = 0; i < a.n; i++, nb++) {
		const struct sample *s = &a.s[i];
		ck_assert_msg(!is_class_meter(s->meter), "class reading %zu not after its NIC's counters", i);
		/* the run without classes, sample for sample */
		ck_assert_uint_lt(nb, b.n);
		ck_assert_msg(memcmp(s, &b.s[nb], sizeof(*s)) == 0, "reading %zu differs from the run without"
			      " classes", i);
		if (s->meter != M_NET_IN_BYTES)
			continue;
		/* the NIC's four counters (as without classes), then 4 x 3 class
		 * readings */
		ck_assert_uint_le(i + 4 + 12, a.n);
		ck_assert_uint_le(nb + 4, b.n);
		ck_assert(memcmp(s, &b.s[nb], 4 * sizeof(*s)) == 0);
		uint32_t vm = 0;
		while (vm < 6 && strcmp(v[vm].uuid, s->resource))
			vm++;
		ck_assert_uint_lt(vm, 6);
		uint64_t mult = strcmp(s->device, v[vm].dev[SIM_MAX_DEVS]) ? 2 : 1;   /* NIC 1 runs at 2 x */
		for (int k = 0; k < 4; k++) {
			const struct sample *nic = &a.s[i + k];
			uint64_t sum = 0, want[SIM_MAX_CLASSES];
			ck_assert_int_eq(nic->meter, M_NET_IN_BYTES + k);
			sim_class_split(&c, v[vm].rate[M_NET_IN_BYTES + k] * mult, nic->v.counter, want);
			for (int j = 0; j < 3; j++) {
				const struct sample *x = &a.s[i + 4 + 3 * k + j];
				ck_assert_int_eq(x->meter, cls[j] + k);
				ck_assert_str_eq(x->resource, nic->resource);
				ck_assert_str_eq(x->device, nic->device);
				ck_assert_int_eq(x->time_ns, nic->time_ns);
				ck_assert_int_eq(x->origin_ns, nic->origin_ns);
				ck_assert_int_eq(x->flags, nic->flags);
				ck_assert_int_eq(x->kind, SAMPLE_CUMULATIVE);
				ck_assert_uint_eq(x->v.counter, want[j]);
				sum += x->v.counter;
				/* within one life (one origin) a class never goes down:
				 * the series' reading before this one */
				for (size_t p = i; p-- > 0;)
					if (a.s[p].meter == x->meter && !strcmp(a.s[p].resource, x->resource) &&
					    !strcmp(a.s[p].device, x->device)) {
						if (a.s[p].origin_ns == x->origin_ns)
							ck_assert_uint_ge(x->v.counter, a.s[p].v.counter);
						break;
					}
			}
			ck_assert_uint_eq(sum, nic->v.counter);
			nic_readings++;
			finals += (nic->flags & SAMPLE_F_LAST) != 0;
		}
		i += 4 + 12 - 1;
		nb += 4 - 1;
	}
	ck_assert_uint_eq(nb, b.n);
	ck_assert_uint_gt(nic_readings, 6 * 2 * 4 * 1000);
	ck_assert_uint_gt(finals, 10);
	free(a.s);
	free(b.s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sim");
	TCase *tc = tcase_create("sim");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_resume_continues_exactly);
	tcase_add_test(tc, test_refusals_surface);
	tcase_add_test(tc, test_host_prefix);
	tcase_add_test(tc, test_readings_are_the_closed_form);
	tcase_add_test(tc, test_class_split_by_hand);
	tcase_add_test(tc, test_classes_config_mistakes);
	tcase_add_test(tc, test_classes_add_up_at_every_reading);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
