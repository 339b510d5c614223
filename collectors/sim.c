/*
 * sim.c: the simulated fleet collector (see sim.h for what it models and
 * guarantees).
 *
 * All randomness is a hash of (seed, vm, hour or tick), never a sequential
 * generator, so any instant of the schedule can be computed without running
 * the ones before it, and the exactness tests can compute the truth from
 * sim_lives() and the rates alone.
 */
#include "sim.h"
#include "lifecycle.h"
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t h4(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	return splitmix(splitmix(splitmix(splitmix(seed) ^ a) ^ b) ^ c);
}

static double unit01(uint64_t h)
{
	return (double)(h >> 11) * 0x1p-53;
}

void sim_config_default(struct sim_config *c)
{
	memset(c, 0, sizeof(*c));
	c->vms = 10;
	c->tenants = 3;
	c->hosts = 2;
	memcpy(c->host_prefix, "sim-host-", sizeof("sim-host-"));
	c->disks = 1;
	c->nics = 1;
	c->seed = 1;
	c->loss = 0.0;
	c->reboots_per_day = 0.1;
	c->stops_per_day = 0.05;
	c->migrations_per_day = 0.05;
	c->interval_ns = 10 * NS_PER_SEC;
}

static const struct flavor {
	const char *name;
	uint32_t vcpus;
	uint64_t mem_mib, disk_gb;
} flavors[] = {
	{ "m1.small", 1, 2048, 20 },
	{ "m1.medium", 2, 4096, 40 },
	{ "m1.large", 4, 8192, 80 },
};

void sim_vm_describe(const struct sim_config *c, uint32_t vm, struct sim_vm *v)
{
	uint64_t h = h4(c->seed, vm, 0, 0xd1);
	const struct flavor *f = &flavors[h % 3];

	memset(v, 0, sizeof(*v));
	snprintf(v->uuid, sizeof(v->uuid), "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-8%03" PRIx64 "-%012" PRIx64,
		 h >> 32, (h >> 16) & 0xffff, h & 0xfff, (uint64_t)vm & 0xfff,
		 (uint64_t)(splitmix(h) & 0xffffffffffffULL));
	snprintf(v->name, sizeof(v->name), "vm-%04u", vm);
	snprintf(v->tenant, sizeof(v->tenant), "tenant-%02u", c->tenants ? vm % c->tenants : 0);
	v->flavor = f->name;
	v->vcpus = f->vcpus;
	v->memory_bytes = f->mem_mib << 20;
	v->disk_bytes = f->disk_gb * 1000000000ULL;
	/* busy 5%..95% of its vCPUs, in whole ns per second */
	uint64_t r = h4(c->seed, vm, 1, 0xd2);
	v->rate[M_CPU] = f->vcpus * (50000000ULL + r % 900000001ULL);
	v->rate[M_DISK_READ_BYTES] = 4096 * (r >> 8 & 0x3ff);
	v->rate[M_DISK_WRITE_BYTES] = 4096 * (r >> 20 & 0x1ff);
	v->rate[M_DISK_READ_REQUESTS] = 1 + (r >> 30 & 0x3f);
	v->rate[M_DISK_WRITE_REQUESTS] = 1 + (r >> 36 & 0x1f);
	v->rate[M_NET_IN_BYTES] = 1000 * (1 + (r >> 42 & 0x3ff));
	v->rate[M_NET_OUT_BYTES] = 1000 * (1 + (r >> 52 & 0x7ff));
	v->rate[M_NET_IN_PACKETS] = 1 + v->rate[M_NET_IN_BYTES] / 1000;
	v->rate[M_NET_OUT_PACKETS] = 1 + v->rate[M_NET_OUT_BYTES] / 1000;
	for (uint32_t d = 0; d < SIM_MAX_DEVS; d++)
		snprintf(v->dev[d], sizeof(v->dev[d]), "vd%c", 'a' + d);
	for (uint32_t n = 0; n < SIM_MAX_DEVS; n++)
		snprintf(v->dev[SIM_MAX_DEVS + n], sizeof(v->dev[0]), "52:54:00:%02x:%02x:%02x",
			 (vm >> 8) & 0xff, vm & 0xff, n);
}

/* The state of one VM as the schedule unfolds. */
struct vm_state {
	bool running;
	uint32_t host;
	int64_t life_start_ns;
	bool origin_known;
	int64_t resume_ns;            /* when stopped: restart time */
	int64_t next_ns;              /* next change, INT64_MAX for none */
	enum sim_event next_ev;
	uint64_t next_arg;
};

static void vm_initial(const struct sim_config *c, uint32_t vm, struct vm_state *s)
{
	memset(s, 0, sizeof(*s));
	s->running = true;
	s->host = c->hosts ? (uint32_t)(h4(c->seed, vm, 2, 0xd3) % c->hosts) : 0;
	s->life_start_ns = c->start_ns - (int64_t)(1 + h4(c->seed, vm, 3, 0xd4) % 86400) * NS_PER_SEC;
	s->origin_known = false;
}

/* The event drawn for vm in absolute hour k, or SIM_EV_NONE. */
static enum sim_event hour_event(const struct sim_config *c, uint32_t vm, int64_t k, int64_t *at,
				 uint64_t *arg)
{
	double pr = c->reboots_per_day / 24, ps = c->stops_per_day / 24, pm = c->migrations_per_day / 24;
	double pc = c->crashes_per_day / 24;
	double u = unit01(h4(c->seed, vm, (uint64_t)k, 0xe1));
	enum sim_event ev;

	if (u < pr)
		ev = SIM_EV_REBOOT;
	else if (u < pr + ps)
		ev = SIM_EV_STOP;
	else if (u < pr + ps + pm)
		ev = c->hosts > 1 ? SIM_EV_MIGRATE : SIM_EV_REBOOT;
	else if (u < pr + ps + pm + pc)
		ev = SIM_EV_CRASH;
	else
		return SIM_EV_NONE;
	uint64_t h = h4(c->seed, vm, (uint64_t)k, 0xe2);
	*at = k * NS_PER_HOUR + (int64_t)(1 + h % 3599) * NS_PER_SEC;
	if (ev == SIM_EV_STOP || ev == SIM_EV_CRASH)
		*arg = 60 + (h >> 20) % 7141;         /* seconds down */
	else if (ev == SIM_EV_MIGRATE)
		*arg = 1 + (h >> 20) % (c->hosts - 1); /* host offset */
	else
		*arg = 0;
	return ev;
}

/* Find the first change after after_ns. */
static void vm_next(const struct sim_config *c, uint32_t vm, struct vm_state *s, int64_t after_ns)
{
	s->next_ns = INT64_MAX;
	s->next_ev = SIM_EV_NONE;
	if (!s->running) {
		s->next_ns = s->resume_ns;
		s->next_ev = SIM_EV_START;
		return;
	}
	if (c->reboots_per_day + c->stops_per_day + c->migrations_per_day + c->crashes_per_day <= 0)
		return;
	int64_t horizon = after_ns + 400LL * 24 * NS_PER_HOUR;
	for (int64_t k = hour_floor(after_ns) / NS_PER_HOUR; k * NS_PER_HOUR < horizon; k++) {
		int64_t at;
		uint64_t arg;
		enum sim_event ev = hour_event(c, vm, k, &at, &arg);
		if (ev != SIM_EV_NONE && at > after_ns) {
			s->next_ns = at;
			s->next_ev = ev;
			s->next_arg = arg;
			return;
		}
	}
}

/* Apply the pending change (at s->next_ns); then find the next one. */
static void vm_apply(const struct sim_config *c, uint32_t vm, struct vm_state *s)
{
	int64_t at = s->next_ns;
	switch (s->next_ev) {
	case SIM_EV_REBOOT:
		s->life_start_ns = at;
		s->origin_known = true;
		break;
	case SIM_EV_STOP:
	case SIM_EV_CRASH:
		s->running = false;
		s->resume_ns = at + (int64_t)s->next_arg * NS_PER_SEC;
		break;
	case SIM_EV_START:
		s->running = true;
		s->life_start_ns = at;
		s->origin_known = true;
		break;
	case SIM_EV_MIGRATE:
		s->host = (uint32_t)((s->host + s->next_arg) % c->hosts);
		s->life_start_ns = at;
		s->origin_known = true;
		break;
	default:
		break;
	}
	vm_next(c, vm, s, at);
}

int sim_lives(const struct sim_config *c, uint32_t vm, int64_t until_ns, struct sim_life *out, int max)
{
	struct vm_state s;
	int n = 0;

	vm_initial(c, vm, &s);
	vm_next(c, vm, &s, c->start_ns);
	for (;;) {
		if (s.running) {
			if (n < max) {
				out[n].start_ns = s.life_start_ns;
				out[n].end_ns = s.next_ns > until_ns ? INT64_MAX : s.next_ns;
				out[n].host = s.host;
				out[n].origin_known = s.origin_known;
				out[n].ended_by = s.next_ns > until_ns ? SIM_EV_NONE : s.next_ev;
			}
			n++;
		}
		if (s.next_ns > until_ns)
			return n;
		vm_apply(c, vm, &s);
	}
}

bool sim_tick_lost(const struct sim_config *c, uint32_t vm, int64_t k)
{
	if (k <= 0 || c->loss <= 0)
		return false;
	return unit01(h4(c->seed, vm, (uint64_t)k, 0xf1)) < c->loss;
}

bool sim_final_lost(const struct sim_config *c, uint32_t vm, int64_t t_ns)
{
	if (c->final_loss <= 0)
		return false;
	return unit01(h4(c->seed, vm, (uint64_t)(t_ns / NS_PER_SEC), 0xf2)) < c->final_loss;
}

void sim_class_split(const struct sim_config *c, uint64_t rate, uint64_t counter,
		     uint64_t out[SIM_MAX_CLASSES])
{
	uint64_t crate[SIM_MAX_CLASSES], given = 0;
	uint32_t n = c->n_classes;

	if (!n)
		return;
	for (uint32_t i = 0; i + 1 < n; i++) {
		crate[i] = (uint64_t)((unsigned __int128)rate * c->class_ppm[i] / SIM_SHARE_ONE);
		given += crate[i];
	}
	crate[n - 1] = rate - given;   /* shares add up to 1: given <= rate */
	uint64_t q = rate ? counter / rate : 0, p = rate ? counter % rate : 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t part = p < crate[i] ? p : crate[i];
		out[i] = q * crate[i] + part;
		p -= part;
	}
}

/* ---- the collector ---- */

struct sim {
	struct sim_config c;
	bool start_fixed;            /* the schedule anchor survives a restart */
	int64_t first_tick_ns;       /* this run's first tick */
	struct sim_vm *vm;
	struct vm_state *st;
	char (*agent)[TALLY_ID_MAX];
	bool first_read_done;
	int64_t last_read_ns;
};

static const char *const sim_keys[] = {
	"vms", "tenants", "hosts", "host_prefix", "disks", "nics", "seed", "loss", "final_loss", "reboots_per_day",
	"stops_per_day", "migrations_per_day", "crashes_per_day", "start", "classes", NULL
};

/* A class share: a decimal from 0 to 1 with at most 6 places ("0.3", "1",
 * "0.000001"), read exactly (no binary floating point) into parts per
 * million. */
static int share_ppm(const struct cfg_node *n, uint32_t *ppm, struct tally_err *e)
{
	const char *p = n->value;
	uint32_t v, scale = SIM_SHARE_ONE;

	if (n->type != CFG_SCALAR || (*p != '0' && *p != '1'))
		goto bad;
	v = (uint32_t)(*p++ - '0') * SIM_SHARE_ONE;
	if (*p == '.') {
		if (!(p[1] >= '0' && p[1] <= '9'))
			goto bad;
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale == 1)
				return err_set(e, -EINVAL, "%s:%d:%d: key 'collectors.sim.classes.%s': '%s' has"
					       " more than 6 decimal places (a share is counted in millionths)",
					       n->file, n->line, n->col, n->key, n->value);
			scale /= 10;
			v += (uint32_t)(*p - '0') * scale;
		}
	}
	if (*p)
		goto bad;
	if (v > SIM_SHARE_ONE)
		return err_set(e, -ERANGE, "%s:%d:%d: key 'collectors.sim.classes.%s': %s is more than 1"
			       " (a share of the NIC's traffic is 0 to 1)", n->file, n->line, n->col, n->key,
			       n->value);
	*ppm = v;
	return 0;
bad:
	return err_set(e, -EINVAL, "%s:%d:%d: key 'collectors.sim.classes.%s': expected a share of the NIC's"
		       " traffic, a decimal from 0 to 1 like 0.3 (got %s%s%s)", n->file, n->line, n->col,
		       n->key, n->type == CFG_SCALAR ? "'" : "a ",
		       n->type == CFG_SCALAR ? n->value : n->type == CFG_MAP ? "map" : "list",
		       n->type == CFG_SCALAR ? "'" : "");
}

/* classes: {internet: 0.3, internal: 0.65, peering: 0.05}: each key a
 * traffic class of the meter table, each value its share, the shares
 * adding up to exactly 1. */
static int sim_classes(const struct cfg_node *cfg, struct sim_config *c, struct tally_err *e)
{
	const struct cfg_node *map = NULL, *given = cfg_get(cfg, "classes");
	uint32_t sum = 0;
	int rc;

	if (!given)
		return 0;
	if ((rc = cfg_get_map(cfg, "classes", &map, e)))
		return rc;
	/* "classes:" or "classes: {}": more likely a half-written config than
	 * a wish for no classes, which is leaving the key out */
	if (!map || !map->n_kids)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'collectors.sim.classes': name at least one"
			       " traffic class and its share (internet: 1), or leave the key out",
			       given->file, given->line, given->col);
	for (size_t i = 0; i < map->n_kids; i++) {
		const struct cfg_node *k = map->kids[i];
		char name[64];
		int m;
		snprintf(name, sizeof(name), "network.%s.incoming.bytes", k->key);
		m = meter_lookup(name);
		if (m < M_NETC_FIRST || m > M_NETC_LAST || (m - M_NETC_FIRST) % 4) {
			char known[128] = "";
			for (int j = M_NETC_FIRST; j <= M_NETC_LAST; j += 4) {
				const char *cls = meter_table[j].name + strlen("network.");
				size_t len = strlen(known);
				snprintf(known + len, sizeof(known) - len, "%s%.*s", len ? ", " : "",
					 (int)(strchr(cls, '.') - cls), cls);
			}
			return err_set(e, -EINVAL, "%s:%d:%d: key 'collectors.sim.classes': unknown traffic"
				       " class '%s' (known: %s)", k->file, k->key_line, k->key_col, k->key, known);
		}
		/* five names, none twice (the parser refuses a key given twice) */
		c->class_meter[i] = (uint16_t)m;
		if ((rc = share_ppm(k, &c->class_ppm[i], e)))
			return rc;
		sum += c->class_ppm[i];
	}
	if (sum != SIM_SHARE_ONE) {
		char dec[16];
		int len = snprintf(dec, sizeof(dec), "%u.%06u", sum / SIM_SHARE_ONE, sum % SIM_SHARE_ONE);
		while (dec[len - 1] == '0')     /* 0.950000 -> 0.95, 2.000000 -> 2 */
			dec[--len] = '\0';
		if (dec[len - 1] == '.')
			dec[--len] = '\0';
		return err_set(e, -EINVAL, "%s:%d:%d: key 'collectors.sim.classes': the shares add up to"
			       " %s, not 1 (every byte and packet of a NIC is in exactly one class)",
			       map->file, map->line, map->col, dec);
	}
	c->n_classes = (uint32_t)map->n_kids;
	return 0;
}

static int sim_configure(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			 struct tally_err *e)
{
	struct sim *s = calloc(1, sizeof(*s));
	struct sim_config *c;
	uint64_t v;
	int rc = 0;

	if (!s)
		return -ENOMEM;
	c = &s->c;
	sim_config_default(c);
	c->interval_ns = env->interval_ns;
	c->start_ns = env->start_ns / NS_PER_SEC * NS_PER_SEC;
	s->first_tick_ns = c->start_ns;
	s->start_fixed = env->start_fixed || cfg_get(cfg, "start") != NULL;
	if ((rc = cfg_check_keys(cfg, "collectors.sim", sim_keys, e)))
		goto fail;
	v = c->vms;
	if ((rc = cfg_get_uint(cfg, "vms", 1, 1000000, &v, e)))
		goto fail;
	c->vms = (uint32_t)v;
	v = c->tenants;
	if ((rc = cfg_get_uint(cfg, "tenants", 1, 100000, &v, e)))
		goto fail;
	c->tenants = (uint32_t)v;
	v = c->hosts;
	if ((rc = cfg_get_uint(cfg, "hosts", 1, 10000, &v, e)))
		goto fail;
	c->hosts = (uint32_t)v;
	if ((rc = cfg_get_string(cfg, "host_prefix", c->host_prefix, sizeof(c->host_prefix), e)))
		goto fail;
	if (!c->host_prefix[0]) {
		const struct cfg_node *n = cfg_get(cfg, "host_prefix");
		rc = err_set(e, -EINVAL, "%s:%d:%d: key 'host_prefix': empty (the hosts would be named 0, 1, ...)",
			     n->file, n->line, n->col);
		goto fail;
	}
	v = c->disks;
	if ((rc = cfg_get_uint(cfg, "disks", 0, SIM_MAX_DEVS, &v, e)))
		goto fail;
	c->disks = (uint32_t)v;
	v = c->nics;
	if ((rc = cfg_get_uint(cfg, "nics", 0, SIM_MAX_DEVS, &v, e)))
		goto fail;
	c->nics = (uint32_t)v;
	if ((rc = cfg_get_uint(cfg, "seed", 0, UINT64_MAX, &c->seed, e)) ||
	    (rc = cfg_get_double(cfg, "loss", 0, 0.99, &c->loss, e)) ||
	    (rc = cfg_get_double(cfg, "final_loss", 0, 1, &c->final_loss, e)) ||
	    (rc = cfg_get_double(cfg, "reboots_per_day", 0, 24, &c->reboots_per_day, e)) ||
	    (rc = cfg_get_double(cfg, "stops_per_day", 0, 24, &c->stops_per_day, e)) ||
	    (rc = cfg_get_double(cfg, "migrations_per_day", 0, 24, &c->migrations_per_day, e)) ||
	    (rc = cfg_get_double(cfg, "crashes_per_day", 0, 24, &c->crashes_per_day, e)) ||
	    (rc = cfg_get_time(cfg, "start", &c->start_ns, e)) ||
	    (rc = sim_classes(cfg, c, e)))
		goto fail;
	if (c->reboots_per_day + c->stops_per_day + c->migrations_per_day + c->crashes_per_day > 24) {
		const struct cfg_node *n = cfg_get(cfg, "reboots_per_day");
		rc = err_set(e, -ERANGE, "%s:%d: collectors.sim: reboots, stops, migrations and crashes per day"
			     " add up to more than 24 (one event per VM per hour at most)",
			     n ? n->file : "config", n ? n->line : 0);
		goto fail;
	}
	if (c->start_ns % NS_PER_SEC || c->interval_ns % NS_PER_SEC) {
		rc = err_set(e, -EINVAL, "collectors.sim: start and interval must be whole seconds");
		goto fail;
	}
	*state = s;
	return 0;
fail:
	free(s);
	return rc;
}

static int sim_init(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct sim *s = state;
	const struct sim_config *c = &s->c;

	s->vm = calloc(c->vms, sizeof(*s->vm));
	s->st = calloc(c->vms, sizeof(*s->st));
	s->agent = calloc(c->hosts, sizeof(*s->agent));
	if (!s->vm || !s->st || !s->agent)
		return err_set(e, -ENOMEM, "sim: out of memory for %u VMs", c->vms);
	if (resume_ns > 0 && !s->start_fixed)
		return err_set(e, -EINVAL, "the ledger already has readings from an earlier"
			       " run; set collectors.sim.start (the instant that run began) so the fleet's schedule"
			       " continues instead of starting anew");
	for (uint32_t h = 0; h < c->hosts; h++)
		snprintf(s->agent[h], sizeof(s->agent[h]), "%s%u", c->host_prefix, h);
	for (uint32_t i = 0; i < c->vms; i++) {
		sim_vm_describe(c, i, &s->vm[i]);
		vm_initial(c, i, &s->st[i]);
		vm_next(c, i, &s->st[i], c->start_ns);
		/* resuming: replay the schedule silently up to the last
		 * committed cycle; its readings are in the ledger already */
		while (resume_ns > 0 && s->st[i].next_ns <= resume_ns)
			vm_apply(c, i, &s->st[i]);
		/* a first run that starts after the anchor: what happened before
		 * its first tick was not watched, so the lives then running are
		 * "before we watched" (their first reading is a baseline) */
		if (resume_ns == 0 && s->first_tick_ns > c->start_ns) {
			while (s->st[i].next_ns < s->first_tick_ns)
				vm_apply(c, i, &s->st[i]);
			s->st[i].origin_known = false;
		}
	}
	if (resume_ns > 0) {
		s->first_read_done = true;
		s->last_read_ns = resume_ns;
	}
	return 0;
}

static uint64_t counter_at(uint64_t rate, int64_t life_start_ns, int64_t t_ns)
{
	return (uint64_t)((unsigned __int128)rate * (unsigned __int128)(t_ns - life_start_ns) / NS_PER_SEC);
}

static const enum meter_id disk_counters[] = { M_DISK_READ_BYTES, M_DISK_WRITE_BYTES,
					       M_DISK_READ_REQUESTS, M_DISK_WRITE_REQUESTS };
static const enum meter_id net_counters[] = { M_NET_IN_BYTES, M_NET_OUT_BYTES, M_NET_IN_PACKETS,
					      M_NET_OUT_PACKETS };

/* Every reading of vm at t for its current life. */
static void emit_vm(const struct sim *s, uint32_t i, int64_t t, uint8_t flags, const struct sink *sink,
		    struct sink_status *ss)
{
	const struct sim_vm *v = &s->vm[i];
	const struct vm_state *st = &s->st[i];
	const char *agent = s->agent[st->host];
	struct sample smp;

	memset(&smp, 0, sizeof(smp));
	str_copy(smp.resource, v->uuid, sizeof(smp.resource));
	smp.time_ns = t;
	smp.origin_ns = st->origin_known ? st->life_start_ns : 0;
	smp.flags = flags;

#define PUT_C(m, dev, mult) do { \
		smp.meter = (m); smp.kind = SAMPLE_CUMULATIVE; \
		str_copy(smp.device, (dev), sizeof(smp.device)); \
		smp.v.counter = counter_at(v->rate[m] * (mult), st->life_start_ns, t); \
		sink_note(ss, sink->sample(sink->ctx, agent, &smp)); } while (0)
#define PUT_G(m, dev, val) do { \
		smp.meter = (m); smp.kind = SAMPLE_GAUGE; \
		str_copy(smp.device, (dev), sizeof(smp.device)); \
		smp.v.gauge = (double)(val); \
		sink_note(ss, sink->sample(sink->ctx, agent, &smp)); } while (0)

	PUT_C(M_CPU, "", 1);
	PUT_G(M_VCPUS, "", v->vcpus);
	PUT_G(M_MEMORY, "", v->memory_bytes);
	PUT_G(M_INSTANCE, "", 1);
	for (uint32_t d = 0; d < s->c.disks; d++) {
		for (size_t k = 0; k < 4; k++)
			PUT_C(disk_counters[k], v->dev[d], d + 1);
		PUT_G(M_DISK_CAPACITY, v->dev[d], v->disk_bytes);
	}
	for (uint32_t n = 0; n < s->c.nics; n++) {
		for (size_t k = 0; k < 4; k++)
			PUT_C(net_counters[k], v->dev[SIM_MAX_DEVS + n], n + 1);
		/* the same NIC counters split by traffic class (sim.h) */
		for (size_t k = 0; k < 4 && s->c.n_classes; k++) {
			uint64_t rate = v->rate[net_counters[k]] * (n + 1), cls[SIM_MAX_CLASSES];
			sim_class_split(&s->c, rate, counter_at(rate, st->life_start_ns, t), cls);
			smp.kind = SAMPLE_CUMULATIVE;
			str_copy(smp.device, v->dev[SIM_MAX_DEVS + n], sizeof(smp.device));
			for (uint32_t j = 0; j < s->c.n_classes; j++) {
				smp.meter = (uint16_t)(s->c.class_meter[j] + k);
				smp.v.counter = cls[j];
				sink_note(ss, sink->sample(sink->ctx, agent, &smp));
			}
		}
	}
#undef PUT_C
#undef PUT_G
}

static void emit_event(const struct sim *s, uint32_t i, uint32_t host, int64_t t, enum lifecycle_type type,
		       const char *reason, const struct sink *sink, struct sink_status *ss)
{
	struct lifecycle_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.time_ns = t;
	str_copy(ev.resource, s->vm[i].uuid, sizeof(ev.resource));
	str_copy(ev.type, lifecycle_name(type), sizeof(ev.type));
	str_copy(ev.reason, reason, sizeof(ev.reason));
	sink_note(ss, sink->event(sink->ctx, s->agent[host], &ev));
}

static void emit_meta(const struct sim *s, uint32_t i, int64_t t, const struct sink *sink, struct sink_status *ss)
{
	const struct sim_vm *v = &s->vm[i];
	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	m.time_ns = t;
	str_copy(m.resource, v->uuid, sizeof(m.resource));
	str_copy(m.type, "instance", sizeof(m.type));
	str_copy(m.name, v->name, sizeof(m.name));
	str_copy(m.tenant, v->tenant, sizeof(m.tenant));
	str_copy(m.project, v->tenant, sizeof(m.project));
	str_copy(m.flavor, v->flavor, sizeof(m.flavor));
	snprintf(m.labels, sizeof(m.labels), "flavor=%s,source=sim", v->flavor);
	sink_note(ss, sink->meta(sink->ctx, s->agent[s->st[i].host], &m));
}

static int sim_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct sim *s = state;
	const struct sim_config *c = &s->c;
	int64_t k = c->interval_ns ? (now_ns - c->start_ns) / c->interval_ns : 0;
	struct sink_status ss = { 0 };

	if (now_ns <= s->last_read_ns)
		return 0;
	for (uint32_t i = 0; i < c->vms; i++) {
		struct vm_state *st = &s->st[i];
		if (!s->first_read_done)
			emit_meta(s, i, now_ns, sink, &ss);
		while (st->next_ns <= now_ns) {
			int64_t at = st->next_ns;
			uint32_t old_host = st->host;
			/* rule 4: the final reading before the counters vanish */
			if (st->running && st->next_ev != SIM_EV_START && !sim_final_lost(c, i, at))
				emit_vm(s, i, at, SAMPLE_F_LAST, sink, &ss);
			enum sim_event ev = st->next_ev;
			vm_apply(c, i, st);
			switch (ev) {
			case SIM_EV_REBOOT:
				emit_event(s, i, old_host, at, LIFECYCLE_REBOOTED, "reset", sink, &ss);
				break;
			case SIM_EV_STOP:
				emit_event(s, i, old_host, at, LIFECYCLE_STOPPED, "shutdown", sink, &ss);
				break;
			case SIM_EV_CRASH:
				emit_event(s, i, old_host, at, LIFECYCLE_CRASHED, "panicked", sink, &ss);
				break;
			case SIM_EV_START:
				emit_event(s, i, st->host, at, LIFECYCLE_STARTED, "booted", sink, &ss);
				break;
			case SIM_EV_MIGRATE:
				emit_event(s, i, old_host, at, LIFECYCLE_MIGRATED_OUT, "migrated", sink, &ss);
				emit_event(s, i, st->host, at, LIFECYCLE_MIGRATED_IN, "migrated", sink, &ss);
				break;
			default:
				break;
			}
		}
		if (!st->running || now_ns <= st->life_start_ns)
			continue;
		if (s->first_read_done && sim_tick_lost(c, i, k))
			continue;
		emit_vm(s, i, now_ns, 0, sink, &ss);
	}
	s->first_read_done = true;
	s->last_read_ns = now_ns;
	return sink_status_err(&ss, "sim", e);
}

static void sim_free(void *state)
{
	struct sim *s = state;
	if (!s)
		return;
	free(s->vm);
	free(s->st);
	free(s->agent);
	free(s);
}

const struct collector_ops sim_collector = {
	.name = "sim",
	.configure = sim_configure,
	.init = sim_init,
	.read = sim_read,
	.free = sim_free,
};
