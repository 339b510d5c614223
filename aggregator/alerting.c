/*
 * alerting.c: the alert state machine, the engine that evaluates rules once
 * per cycle on the ingest thread, its ledger table and the snapshots the
 * exporters read (see alerting.h for the contract; the config is parsed in
 * alertcfg.c).
 *
 * Instances are kept in one vector with an open-addressing index on their
 * key (rule, subject, device, host); the vector is compacted and the index
 * rebuilt after each evaluation, so finding an instance costs O(1) and a
 * cycle costs O(series + instances).
 */
#include "alerting.h"
#include "alerting_internal.h"
#include "fault.h"
#include "lifecycle.h"
#include "vec.h"
#include "hash.h"
#include "aggregator.h"
#include "err.h"
#include "ledger.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DROPPED_WINDOW_INTERVALS 10   /* SamplesDropped stays firing this long after a drop */


/* ---- state machine ---- */

enum alert_state alert_step(struct alert_times *a, bool cond, int64_t since_ns, int64_t t_ns,
			    int64_t for_ns)
{
	int64_t at = since_ns ? since_ns : t_ns;
	switch (a->state) {
	case ALERT_INACTIVE:
	case ALERT_RESOLVED:
		if (!cond)
			return a->state;
		/* a new instance: after a resolution, the next firing is a new alert */
		a->state = ALERT_PENDING;
		a->active_ns = at;
		a->fired_ns = a->resolved_ns = 0;
		/* with for = 0 it fires now */
		/* fallthrough */
	case ALERT_PENDING:
		if (!cond) {
			a->state = ALERT_INACTIVE;
			a->active_ns = 0;
		} else if (t_ns >= a->active_ns + for_ns) {
			a->state = ALERT_FIRING;
			a->fired_ns = a->active_ns + for_ns;
		}
		return a->state;
	case ALERT_FIRING:
		if (!cond) {
			a->state = ALERT_RESOLVED;
			a->resolved_ns = at;
		}
		return a->state;
	}
	return a->state;
}

const char *alert_state_name(enum alert_state s)
{
	switch (s) {
	case ALERT_PENDING: return "pending";
	case ALERT_FIRING: return "firing";
	case ALERT_RESOLVED: return "resolved";
	default: return "inactive";
	}
}

static enum alert_state state_parse(const char *s)
{
	return !strcmp(s, "pending") ? ALERT_PENDING : !strcmp(s, "firing") ? ALERT_FIRING
	       : !strcmp(s, "resolved") ? ALERT_RESOLVED : ALERT_INACTIVE;
}

/* ---- engine ---- */

enum inst_kind { K_RULE, K_VMDOWN, K_STALE, K_DROPPED, K_SLABURN, K_LEDGER, K_AGENT };

struct inst {
	char key[KEY_MAX];
	enum inst_kind kind;
	int rule;                        /* K_RULE: index into cfg->rules */
	char rule_name[64];
	char subject[TALLY_ID_MAX];
	char device[TALLY_DEV_MAX];
	struct alert_times t;
	struct alert_view v;             /* labels, annotations, tenant, value */
	bool seen;                       /* its subject was seen this evaluation */
	bool dirty;                      /* changed since the last commit */
	bool orphan;                     /* loaded, its rule is gone: resolve it */
	char host[TALLY_ID_MAX];         /* K_RULE, K_STALE: the source host of its subject */
	int64_t resolved_wall_ns;        /* monotonic time it was resolved here */
};

struct down {
	char uuid[TALLY_ID_MAX];
	char host[TALLY_ID_MAX];
	int64_t crash_ns, up_ns;         /* up_ns 0: still down */
};

struct resagg {
	const struct ledger_resource *res;
	const char *host;
	int64_t host_time_ns;            /* host's agent's committed data time */
	int64_t last_ns;
	bool open;                       /* a series that has not ended */
	int64_t end_ns;                  /* the latest end event of its series that ended by one */
	uint32_t gen;                    /* == eval gen when filled this time */
};

/* Lives that ended by a lifecycle event (stopped, crashed, migrated out,
 * undefined, shut down) of a resource on a host: key "uuid\x1fhost". A
 * collector may miss a life's final reading (a tick inside a destroy), and
 * its series then never end; the event still says the life is over, so
 * its series raise no StaleData and its alerts resolve. end_ns 0: the
 * resource is back (a start event, or a reading after the end). Open
 * addressing; an entry is reset, never removed. */
struct ended {
	char key[KEY_MAX];
	int64_t end_ns;
};


struct alerting {
	const struct alerting_config *c;
	struct wnd *w;                   /* windows, open addressing by key */
	size_t w_cap, w_used;
	char agent_id[TALLY_ID_MAX];
	int64_t interval_ns;
	struct inst *in;
	size_t n, cap;
	uint32_t *idx;                   /* open addressing, UINT32_MAX empty */
	size_t idx_cap;
	struct keylist del;              /* instances to delete from the ledger at the next commit */
	struct keylist wdel;             /* windows to delete from the ledger at the next commit */
	struct down *dn;
	size_t n_dn, cap_dn;
	struct resagg *ra;
	size_t cap_ra;
	struct ended *end;
	size_t end_cap, end_used;
	size_t n_ended;                  /* entries with end_ns != 0 */
	struct {                         /* visit_series: the last lookup */
		const struct ledger_resource *res;
		const char *agent;
		int64_t end_ns;
	} end_cache;
	uint32_t eval_gen;
	uint64_t dropped;                /* instances refused: max_alerts */
	uint64_t prev_dropped_samples;
	int64_t last_drop_ns;            /* data time dropped samples last grew */
	int64_t tick_ns;
	int64_t last_cycle_ns;           /* from the ledger, for orphans */
	bool structure_changed;          /* an alert changed since the last publish */
	struct alert_sla_set sla;        /* what the SLA probe said last (SLABurn) */
	bool sla_new;                    /* said since the last evaluation */
	uint64_t version;                /* alert_snap.version */
	/* AgentSilent: alerting_set_agents (wall clock) */
	struct alert_agent *ag;
	size_t n_ag;
	bool ag_set;
	int64_t ag_start_ns, ag_now_ns;
	/* LedgerWriteFailing: alerting_set_ledger */
	int64_t ledger_since_ns;         /* data time of the first failed commit, 0: none failing */
	uint64_t ledger_failures;
	char ledger_error[256];
};

static uint64_t hash(const char *s)
{
	return hash_fnv64_str(HASH_FNV64_INIT, s);
}

static int reindex(struct alerting *g)
{
	size_t cap = 64;
	while (cap < 2 * (g->n + 1))
		cap *= 2;
	if (cap != g->idx_cap) {
		uint32_t *idx = fault_malloc(cap * sizeof(*idx));
		if (!idx)
			return -ENOMEM;
		free(g->idx);
		g->idx = idx;
		g->idx_cap = cap;
	}
	memset(g->idx, 0xff, g->idx_cap * sizeof(*g->idx));
	for (size_t i = 0; i < g->n; i++) {
		size_t h = hash(g->in[i].key) & (g->idx_cap - 1);
		while (g->idx[h] != UINT32_MAX)
			h = (h + 1) & (g->idx_cap - 1);
		g->idx[h] = (uint32_t)i;
	}
	return 0;
}

static struct inst *find(struct alerting *g, const char *key)
{
	if (!g->idx_cap)
		return NULL;
	size_t h = hash(key) & (g->idx_cap - 1);
	while (g->idx[h] != UINT32_MAX) {
		if (!strcmp(g->in[g->idx[h]].key, key))
			return &g->in[g->idx[h]];
		h = (h + 1) & (g->idx_cap - 1);
	}
	return NULL;
}

/* A new inactive instance for key, or NULL (out of memory, or max_alerts:
 * counted in dropped). */
static struct inst *add(struct alerting *g, const char *key)
{
	if (g->n >= g->c->max_alerts) {
		g->dropped++;
		return NULL;
	}
	if (vec_reserve((void **)&g->in, &g->cap, g->n + 1, sizeof(*g->in), 64))
		return NULL;
	struct inst *x = &g->in[g->n++];
	memset(x, 0, sizeof(*x));
	str_copy(x->key, key, sizeof(x->key));
	if (2 * (g->n + 1) > g->idx_cap) {
		if (reindex(g)) {
			g->n--;
			return NULL;
		}
	} else {
		size_t h = hash(key) & (g->idx_cap - 1);
		while (g->idx[h] != UINT32_MAX)
			h = (h + 1) & (g->idx_cap - 1);
		g->idx[h] = (uint32_t)(g->n - 1);
	}
	return x;
}

int alerting_new(struct alerting **out, const struct alerting_config *c, const char *agent_id,
		 int64_t interval_ns)
{
	struct alerting *g = fault_calloc(1, sizeof(*g));
	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->c = c;
	str_copy(g->agent_id, agent_id, sizeof(g->agent_id));
	g->interval_ns = interval_ns;
	if (reindex(g)) {
		free(g);
		return -ENOMEM;
	}
	*out = g;
	return 0;
}

static void wnd_free_all(struct wnd *w, size_t cap)
{
	for (size_t i = 0; i < cap; i++) {
		free(w[i].t);
		free(w[i].v);
	}
	free(w);
}

/* The window of key, created empty when new; NULL when out of memory.
 * cap: readings to keep; window_ns: the rule's window. */
static struct wnd *wnd_get(struct alerting *g, const char *key, uint32_t cap, int64_t window_ns)
{
	if (2 * (g->w_used + 1) > g->w_cap) {
		/* grow, and drop the windows that hold nothing within their
		 * window of the last evaluation (their series ended, or their VM
		 * went away): the next reading would leave all of it out anyway */
		size_t ncap = g->w_cap ? g->w_cap : 64;
		while (2 * (g->w_used + 1) > ncap)
			ncap *= 2;
		struct wnd *nw = fault_calloc(ncap, sizeof(*nw));
		if (!nw)
			return NULL;
		size_t used = 0;
		for (size_t i = 0; i < g->w_cap; i++) {
			struct wnd *o = &g->w[i];
			if (!o->key[0])
				continue;
			if (g->tick_ns && wnd_newest(o) < g->tick_ns - o->window_ns &&
			    !keylist_push(&g->wdel, o->key)) {
				free(o->t);
				free(o->v);
				continue;
			}
			size_t h = hash(o->key) & (ncap - 1);
			while (nw[h].key[0])
				h = (h + 1) & (ncap - 1);
			nw[h] = *o;
			used++;
		}
		free(g->w);
		g->w = nw;
		g->w_cap = ncap;
		g->w_used = used;
	}
	size_t h = hash(key) & (g->w_cap - 1);
	while (g->w[h].key[0]) {
		if (!strcmp(g->w[h].key, key))
			return &g->w[h];
		h = (h + 1) & (g->w_cap - 1);
	}
	struct wnd *w = &g->w[h];
	memset(w, 0, sizeof(*w));
	w->t = fault_malloc(cap * sizeof(*w->t));
	w->v = fault_malloc(cap * sizeof(*w->v));
	if (!w->t || !w->v) {
		free(w->t);
		free(w->v);
		w->t = NULL;
		w->v = NULL;
		return NULL;
	}
	str_copy(w->key, key, sizeof(w->key));
	w->cap = cap;
	w->window_ns = window_ns;
	g->w_used++;
	return w;
}

/* Readings a window of window_ns keeps at the interval (and two more: the
 * window's both ends), at most WND_MAX. */
static uint32_t wnd_cap(const struct alerting *g, int64_t window_ns)
{
	int64_t n = window_ns / g->interval_ns + 2;
	return (uint32_t)(n < WND_MAX ? n : WND_MAX);
}


/* Write what changed in the windows since the last commit: the readings
 * newer than what the ledger holds, and the deletion of those that left
 * the ring. */
static int wnd_save(struct alerting *g, struct ledger *l, struct tally_err *e)
{
	int rc;
	for (size_t i = 0; i < g->wdel.n; i++)
		if ((rc = ledger_trim_window(l, g->wdel.v[i], INT64_MAX, e)))
			return rc;
	for (size_t i = 0; i < g->w_cap; i++) {
		struct wnd *w = &g->w[i];
		w->saving_ns = w->saved_ns;
		w->saving_from_ns = w->saved_from_ns;
		if (!w->key[0] || !w->n)
			continue;
		if (w->moved && (rc = ledger_trim_window(l, w->key, INT64_MAX, e)))
			return rc;
		if (w->moved)
			w->saving_ns = w->saving_from_ns = 0;
		int64_t oldest = wnd_oldest(w);
		uint32_t fresh = 0;      /* readings newer than the ledger's, at the ring's end */
		while (fresh < w->n && w->t[(w->head + w->cap - fresh - 1) % w->cap] > w->saving_ns)
			fresh++;
		for (uint32_t k = fresh; k > 0; k--) {
			uint32_t j = (w->head + w->cap - k) % w->cap;
			if ((rc = ledger_put_window_point(l, w->key, w->t[j], w->v[j], e)))
				return rc;
		}
		if (w->saving_from_ns && oldest > w->saving_from_ns &&
		    (rc = ledger_trim_window(l, w->key, oldest, e)))
			return rc;
		w->saving_ns = wnd_newest(w);
		w->saving_from_ns = oldest;
	}
	return 0;
}

/* The window key: the instance's key with the meter after the rule. */
static void wnd_key(char *key, size_t len, const struct alert_rule *ar, const struct agg_series_view *sv)
{
	snprintf(key, len, "%s\x1f%s\x1f%s\x1f%s\x1f%s", ar->name, meter_table[ar->meter].name,
		 sv->res->meta.resource, sv->device, sv->agent);
}

/* One reading of the ledger's alert_windows (by key, then time): into the
 * window of a rule that is still configured with a window on the same
 * meter, else its key is deleted at the next commit. */
static int load_window_point(void *ctx, const char *key, int64_t t_ns, double value)
{
	struct alerting *g = ctx;
	const struct alerting_config *c = g->c;
	const struct alert_rule *ar = NULL;
	const char *s1 = strchr(key, '\x1f');
	const char *s2 = s1 ? strchr(s1 + 1, '\x1f') : NULL;
	if (g->wdel.n && !strcmp(g->wdel.v[g->wdel.n - 1], key))
		return 0;
	for (size_t i = 0; s2 && i < c->n_rules && !ar; i++) {
		const struct alert_rule *r = &c->rules[i];
		const char *m = meter_table[r->meter].name;
		if (r->window_ns && strlen(r->name) == (size_t)(s1 - key) && !strncmp(key, r->name, (size_t)(s1 - key)) &&
		    strlen(m) == (size_t)(s2 - s1 - 1) && !strncmp(s1 + 1, m, (size_t)(s2 - s1 - 1)))
			ar = r;
	}
	if (!ar || strlen(key) >= KEY_MAX)
		return keylist_push(&g->wdel, key);
	struct wnd *w = wnd_get(g, key, wnd_cap(g, ar->window_ns), ar->window_ns);
	if (!w)
		return -ENOMEM;
	wnd_add(w, t_ns, value);
	w->base = value;          /* the total at the series' last committed reading */
	w->saved_ns = t_ns;
	if (!w->saved_from_ns)
		w->saved_from_ns = t_ns;
	return 0;
}

void alerting_free(struct alerting *g)
{
	if (!g)
		return;
	wnd_free_all(g->w, g->w_cap);
	free(g->in);
	free(g->idx);
	free(g->del.v);
	free(g->wdel.v);
	free(g->dn);
	free(g->ra);
	free(g->end);
	free(g->ag);
	alert_sla_set_release(&g->sla);
	free(g);
}

static int hook(void *ctx, struct ledger *l, struct tally_err *e)
{
	struct alerting *g = ctx;
	int rc;
	for (size_t i = 0; i < g->del.n; i++)
		if ((rc = ledger_del_alert(l, g->del.v[i], e)))
			return rc;
	if ((rc = wnd_save(g, l, e)))
		return rc;
	for (size_t i = 0; i < g->n; i++) {
		const struct inst *x = &g->in[i];
		if (!x->dirty)
			continue;
		struct ledger_alert la = {
			.key = x->key, .labels = x->v.labels, .annotations = x->v.annotations,
			.rule = x->rule_name, .tenant = x->v.tenant, .subject = x->subject,
			.device = x->device, .state = alert_state_name(x->t.state),
			.active_ns = x->t.active_ns, .fired_ns = x->t.fired_ns,
			.resolved_ns = x->t.resolved_ns, .value = x->v.value,
		};
		if ((rc = ledger_put_alert(l, &la, e)))
			return rc;
	}
	return 0;
}

static struct down *down_find(struct alerting *g, const char *uuid)
{
	for (size_t i = 0; i < g->n_dn; i++)
		if (!strcmp(g->dn[i].uuid, uuid))
			return &g->dn[i];
	return NULL;
}

static struct down *down_add(struct alerting *g, const char *uuid)
{
	struct down *d = down_find(g, uuid);
	if (d)
		return d;
	if (vec_reserve((void **)&g->dn, &g->cap_dn, g->n_dn + 1, sizeof(*g->dn), 16))
		return NULL;
	d = &g->dn[g->n_dn++];
	memset(d, 0, sizeof(*d));
	str_copy(d->uuid, uuid, sizeof(d->uuid));
	return d;
}


static struct ended *ended_find(struct alerting *g, const char *uuid, const char *host)
{
	char key[KEY_MAX];
	if (!g->end_cap)
		return NULL;
	snprintf(key, sizeof(key), "%s\x1f%s", uuid, host);
	size_t h = hash(key) & (g->end_cap - 1);
	while (g->end[h].key[0]) {
		if (!strcmp(g->end[h].key, key))
			return &g->end[h];
		h = (h + 1) & (g->end_cap - 1);
	}
	return NULL;
}

/* The end of the life of uuid on host, 0 when it is not known to be over. */
static int64_t ended_at(struct alerting *g, const char *uuid, const char *host)
{
	const struct ended *x = g->n_ended ? ended_find(g, uuid, host) : NULL;
	return x ? x->end_ns : 0;
}

/* Record that the life of uuid on host ended at t_ns (t_ns 0: it is back).
 * Returns 0 or -ENOMEM. */
static int ended_set(struct alerting *g, const char *uuid, const char *host, int64_t t_ns)
{
	struct ended *x = ended_find(g, uuid, host);
	if (!x && !t_ns)
		return 0;
	if (!x) {
		if (2 * (g->end_used + 1) > g->end_cap) {
			size_t cap = g->end_cap ? g->end_cap * 2 : 64;
			struct ended *n = fault_calloc(cap, sizeof(*n));
			if (!n)
				return -ENOMEM;
			for (size_t i = 0; i < g->end_cap; i++) {
				if (!g->end[i].key[0])
					continue;
				size_t h = hash(g->end[i].key) & (cap - 1);
				while (n[h].key[0])
					h = (h + 1) & (cap - 1);
				n[h] = g->end[i];
			}
			free(g->end);
			g->end = n;
			g->end_cap = cap;
		}
		char key[KEY_MAX];
		snprintf(key, sizeof(key), "%s\x1f%s", uuid, host);
		size_t h = hash(key) & (g->end_cap - 1);
		while (g->end[h].key[0])
			h = (h + 1) & (g->end_cap - 1);
		x = &g->end[h];
		str_copy(x->key, key, sizeof(x->key));
		x->end_ns = 0;
		g->end_used++;
	}
	g->n_ended += (t_ns != 0) - (x->end_ns != 0);
	x->end_ns = t_ns;
	g->end_cache.res = NULL;
	return 0;
}

static int load_one(void *ctx, const struct ledger_alert *la)
{
	struct alerting *g = ctx;
	struct inst *x = add(g, la->key);
	if (!x)
		return g->n >= g->c->max_alerts ? 0 : -ENOMEM;
	str_copy(x->rule_name, la->rule, sizeof(x->rule_name));
	str_copy(x->subject, la->subject, sizeof(x->subject));
	str_copy(x->device, la->device, sizeof(x->device));
	str_copy(x->v.labels, la->labels, sizeof(x->v.labels));
	str_copy(x->v.annotations, la->annotations, sizeof(x->v.annotations));
	str_copy(x->v.tenant, la->tenant, sizeof(x->v.tenant));
	x->v.value = la->value;
	x->t.state = state_parse(la->state);
	x->t.active_ns = la->active_ns;
	x->t.fired_ns = la->fired_ns;
	x->t.resolved_ns = la->resolved_ns;
	/* resolved before the restart: keep re-sending it for resolved_keep from now */
	x->resolved_wall_ns = time_mono_ns();
	const struct alerting_config *c = g->c;
	x->rule = -1;
	if (!strcmp(la->rule, "VMDown") && c->vm_down) {
		x->kind = K_VMDOWN;
		if (x->t.state == ALERT_PENDING || x->t.state == ALERT_FIRING) {
			struct down *d = down_add(g, la->subject);
			if (!d)
				return -ENOMEM;
			d->crash_ns = la->active_ns;
			alert_label(la->labels, "host", d->host, sizeof(d->host));
		}
	} else if (!strcmp(la->rule, "StaleData") && c->stale_intervals) {
		x->kind = K_STALE;
		alert_label(la->labels, "host", x->host, sizeof(x->host));
	} else if (!strcmp(la->rule, "SamplesDropped") && c->samples_dropped) {
		x->kind = K_DROPPED;
	} else if (!strcmp(la->rule, "SLABurn") && c->sla_burn_ppm) {
		x->kind = K_SLABURN;
	} else if (!strcmp(la->rule, "LedgerWriteFailing")) {
		x->kind = K_LEDGER;
	} else if (!strcmp(la->rule, "AgentSilent") && c->agent_silent_ns) {
		x->kind = K_AGENT;
		alert_label(la->labels, "host", x->host, sizeof(x->host));
	} else {
		x->kind = K_RULE;
		alert_label(la->labels, "host", x->host, sizeof(x->host));
		for (size_t i = 0; i < c->n_rules; i++)
			if (!strcmp(c->rules[i].name, la->rule))
				x->rule = (int)i;
		x->orphan = x->rule < 0;
	}
	return 0;
}

int alerting_attach(struct alerting *g, struct aggregator *a, struct tally_err *e)
{
	int rc = ledger_load_alerts(agg_ledger(a), load_one, g, e);
	if (rc || (rc = ledger_load_windows(agg_ledger(a), load_window_point, g, e)))
		return rc;
	g->last_cycle_ns = agg_last_cycle_ns(a);
	/* a resource whose life ended by an event the engine was not running
	 * for (a restart, or an older tallyd that missed it): its alerts are
	 * resolved at the first evaluation, even if it never reads again */
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		char type[32];
		int64_t t;
		if ((x->kind != K_RULE && x->kind != K_STALE) || !x->subject[0] || !x->host[0] ||
		    (x->t.state != ALERT_PENDING && x->t.state != ALERT_FIRING))
			continue;
		if ((rc = ledger_last_event(agg_ledger(a), x->subject, x->host,
					    ",started,migrated_in,resumed,stopped,crashed,migrated_out,undefined,shutdown,",
					    type, sizeof(type), &t, e)))
			return rc;
		if (t && lifecycle_ends_life(lifecycle_type_of(type)) && (rc = ended_set(g, x->subject, x->host, t)))
			return rc;
	}
	/* an alert whose rule was removed from the config is resolved now, so
	 * Alertmanager does not keep it until it times out */
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		if (!x->orphan)
			continue;
		alert_step(&x->t, false, g->last_cycle_ns ? g->last_cycle_ns : time_now_ns(), 0, 0);
		x->dirty = true;
	}
	g->structure_changed = g->n > 0;
	agg_set_commit_hook(a, hook, g);
	return 0;
}

/* The configured rule a window's key (rule, meter, ...) belongs to, or
 * NULL. */
static const struct alert_rule *window_rule(const struct alerting_config *c, const char *key)
{
	const char *s1 = strchr(key, '\x1f');
	const char *s2 = s1 ? strchr(s1 + 1, '\x1f') : NULL;
	for (size_t i = 0; s2 && i < c->n_rules; i++) {
		const struct alert_rule *r = &c->rules[i];
		const char *m = meter_table[r->meter].name;
		if (r->window_ns && strlen(r->name) == (size_t)(s1 - key) && !strncmp(key, r->name, (size_t)(s1 - key)) &&
		    strlen(m) == (size_t)(s2 - s1 - 1) && !strncmp(s1 + 1, m, (size_t)(s2 - s1 - 1)))
			return r;
	}
	return NULL;
}

int alerting_reconfigure(struct alerting *g, const struct alerting_config *c, int64_t t_ns)
{
	/* windows: kept where their rule is still there with the same window,
	 * else dropped (and deleted from the ledger at the next commit) */
	size_t keep = 0;
	for (size_t i = 0; i < g->w_cap; i++) {
		const struct alert_rule *r = g->w[i].key[0] ? window_rule(c, g->w[i].key) : NULL;
		keep += r && r->window_ns == g->w[i].window_ns;
	}
	size_t ncap = 64;
	while (2 * (keep + 1) > ncap)
		ncap *= 2;
	struct wnd *nw = fault_calloc(ncap, sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	size_t used = 0;
	for (size_t i = 0; i < g->w_cap; i++) {
		struct wnd *o = &g->w[i];
		if (!o->key[0])
			continue;
		const struct alert_rule *r = window_rule(c, o->key);
		if (!r || r->window_ns != o->window_ns) {
			if (keylist_push(&g->wdel, o->key)) {
				free(nw);   /* the windows are as they were */
				return -ENOMEM;
			}
			continue;
		}
		size_t h = hash(o->key) & (ncap - 1);
		while (nw[h].key[0])
			h = (h + 1) & (ncap - 1);
		nw[h] = *o;
		used++;
	}
	for (size_t i = 0; i < g->w_cap; i++) {
		const struct alert_rule *r = g->w[i].key[0] ? window_rule(c, g->w[i].key) : NULL;
		if (g->w[i].key[0] && (!r || r->window_ns != g->w[i].window_ns)) {
			free(g->w[i].t);
			free(g->w[i].v);
		}
	}
	free(g->w);
	g->w = nw;
	g->w_cap = ncap;
	g->w_used = used;
	/* instances: a rule's take its index in the new list by name; those
	 * of a rule or a built-in that is gone are resolved now (as an orphan
	 * at a start), so Alertmanager does not keep them until they time out */
	g->c = c;
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		bool gone = false;
		if (x->kind == K_RULE) {
			x->rule = -1;
			for (size_t k = 0; k < c->n_rules; k++)
				if (!strcmp(c->rules[k].name, x->rule_name))
					x->rule = (int)k;
			gone = x->rule < 0;
		} else {
			gone = (x->kind == K_VMDOWN && !c->vm_down) || (x->kind == K_STALE && !c->stale_intervals) ||
			       (x->kind == K_DROPPED && !c->samples_dropped) || (x->kind == K_SLABURN && !c->sla_burn_ppm) ||
			       (x->kind == K_AGENT && !c->agent_silent_ns);
		}
		if (gone && x->t.state != ALERT_RESOLVED && x->t.state != ALERT_INACTIVE) {
			alert_step(&x->t, false, t_ns, 0, 0);
			x->dirty = true;
		}
		x->orphan = gone;
	}
	g->structure_changed = true;
	return 0;
}

static bool comes_back(enum lifecycle_type t)
{
	return lifecycle_starts_life(t) || t == LIFECYCLE_UNDEFINED;
}

/* The data time of host's readings jumped forward by step_ns without that
 * time passing (batch.h): what the engine keeps of that host in data time
 * moves with its series - the windows' readings (rewritten in the ledger),
 * the lives' ends, and the start of pending instances, so that `for:`
 * counts only time that passed. Firing and resolved instances keep their
 * instants: they are history. */
static void clock_step(struct alerting *g, const char *host, int64_t step_ns)
{
	size_t hl = strlen(host);
	for (size_t i = 0; i < g->w_cap; i++) {
		struct wnd *w = &g->w[i];
		size_t kl = strlen(w->key);
		if (!w->n || kl <= hl || w->key[kl - hl - 1] != '\x1f' || strcmp(w->key + kl - hl, host))
			continue;
		for (uint32_t k = 0; k < w->n; k++)
			w->t[(w->head + w->cap - 1 - k) % w->cap] += step_ns;
		w->moved = true;
	}
	for (size_t i = 0; i < g->end_cap; i++) {
		struct ended *x = &g->end[i];
		size_t kl = strlen(x->key);
		if (x->end_ns && kl > hl && x->key[kl - hl - 1] == '\x1f' && !strcmp(x->key + kl - hl, host))
			x->end_ns += step_ns;
	}
	g->end_cache.res = NULL;
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		if (x->t.state == ALERT_PENDING && !strcmp(x->host, host)) {
			x->t.active_ns += step_ns;
			x->dirty = true;
		}
	}
}

void alerting_note_batch(struct alerting *g, const struct batch *b)
{
	if (b->clock_step_ns > 0 && b->clock_step_ns <= AGG_CLOCK_STEP_MAX_NS)
		clock_step(g, b->agent, b->clock_step_ns);
	for (size_t i = 0; i < b->n_events; i++) {
		const struct lifecycle_event *ev = &b->events[i];
		enum lifecycle_type t = lifecycle_type_of(ev->type);
		int64_t end = ended_at(g, ev->resource, b->agent);
		/* out of memory: this end is not known, as before there was this */
		if (lifecycle_ends_life(t) && ev->time_ns >= end)
			(void)ended_set(g, ev->resource, b->agent, ev->time_ns);
		else if (lifecycle_starts_life(t) && end && ev->time_ns >= end)
			(void)ended_set(g, ev->resource, b->agent, 0);
	}
	if (!g->c->vm_down)
		return;
	for (size_t i = 0; i < b->n_events; i++) {
		const struct lifecycle_event *ev = &b->events[i];
		enum lifecycle_type t = lifecycle_type_of(ev->type);
		if (t == LIFECYCLE_CRASHED) {
			struct down *d = down_add(g, ev->resource);
			if (!d)
				continue;  /* out of memory: this crash goes unalerted */
			if (!d->crash_ns || d->up_ns) {
				d->crash_ns = ev->time_ns;
				d->up_ns = 0;
			}
			str_copy(d->host, b->agent, sizeof(d->host));
		} else if (comes_back(t)) {
			struct down *d = down_find(g, ev->resource);
			if (d && !d->up_ns && ev->time_ns >= d->crash_ns)
				d->up_ns = ev->time_ns;
		}
	}
	if (!g->n_dn)
		return;
	/* a collector without start events: the instance gauge coming back */
	for (size_t i = 0; i < b->n_samples; i++) {
		const struct sample *s = &b->samples[i];
		if (s->meter != M_INSTANCE || s->kind != SAMPLE_GAUGE || s->v.gauge <= 0 ||
		    (s->flags & SAMPLE_F_LAST))
			continue;
		struct down *d = down_find(g, s->resource);
		if (d && !d->up_ns && s->time_ns > d->crash_ns)
			d->up_ns = s->time_ns;
	}
}

static void fmt_value(char *out, size_t len, double v)
{
	snprintf(out, len, "%.6g", v);
}

static void put(struct alert_pair *p, size_t *n, const char *k, const char *v)
{
	str_copy(p[*n].k, k, sizeof(p[*n].k));
	str_copy(p[*n].v, v ? v : "", sizeof(p[*n].v));
	(*n)++;
}

/* Fill the labels and annotations of x for its subject. */
static void describe(struct alerting *g, struct inst *x, const char *alertname, const char *severity,
		     const struct ledger_resource *res, const char *host, const char *meter,
		     const char *extra_labels, const char *extra_annot, const char *summary)
{
	struct alert_pair p[48];
	size_t n = 0;
	char val[32];
#define PUT(K, V) put(p, &n, (K), (V))
	PUT("alertname", alertname);
	PUT("severity", severity);
	if (res) {
		PUT("uuid", res->meta.resource);
		PUT("name", res->meta.name);
		PUT("tenant", res->meta.tenant);
		str_copy(x->v.tenant, res->meta.tenant, sizeof(x->v.tenant));
	} else if (x->subject[0]) {
		/* not seen since tallyd started: keep what we had, with the uuid */
		char t[256];
		PUT("uuid", x->subject);
		alert_label(x->v.labels, "name", t, sizeof(t));
		PUT("name", t);
		PUT("tenant", x->v.tenant);
	}
	PUT("host", host);
	if (meter)
		PUT("meter", meter);
	PUT("device", x->device);
	/* the rule's own labels, already validated as not clashing */
	for (const char *q = extra_labels; q && *q && n < 48;) {
		const char *nl = strchr(q, '\n'), *eq = strchr(q, '=');
		if (!nl || !eq || eq > nl || (size_t)(eq - q) >= sizeof(p[n].k))
			break;
		memcpy(p[n].k, q, (size_t)(eq - q));
		p[n].k[eq - q] = '\0';
		size_t vl = (size_t)(nl - eq - 1);
		if (vl >= sizeof(p[n].v))
			vl = sizeof(p[n].v) - 1;
		memcpy(p[n].v, eq + 1, vl);
		p[n].v[vl] = '\0';
		n++;
		q = nl + 1;
	}
	char labels[ALERT_LABELS_MAX];
	if (alert_pairs_join(p, n, labels, sizeof(labels)))
		labels[sizeof(labels) - 1] = '\0';
	if (strcmp(labels, x->v.labels)) {
		/* a new name or tenant: the ledger keeps what is sent */
		memcpy(x->v.labels, labels, sizeof(labels));
		x->dirty = true;
		g->structure_changed = true;
	}
	n = 0;
	fmt_value(val, sizeof(val), x->v.value);
	PUT("summary", summary);
	PUT("value", val);
	char buf[ALERT_ANNOT_MAX];
	if (alert_pairs_join(p, n, buf, sizeof(buf)))
		buf[0] = '\0';
	/* the rule's annotations win over the generated ones */
	if (extra_annot && *extra_annot) {
		char merged[ALERT_ANNOT_MAX];
		snprintf(merged, sizeof(merged), "%s", extra_annot);
		for (const char *q = buf; *q;) {
			const char *nl = strchr(q, '\n'), *eq = strchr(q, '=');
			char k[48];
			size_t kl = (size_t)(eq - q);
			if (!nl || !eq || kl >= sizeof(k))
				break;
			memcpy(k, q, kl);
			k[kl] = '\0';
			char have[8];
			alert_label(extra_annot, k, have, sizeof(have));
			size_t ml = strlen(merged), ll = (size_t)(nl - q) + 1;
			if (!have[0] && ml + ll < sizeof(merged)) {
				memcpy(merged + ml, q, ll);
				merged[ml + ll] = '\0';
			}
			q = nl + 1;
		}
		str_copy(x->v.annotations, merged, sizeof(x->v.annotations));
	} else {
		str_copy(x->v.annotations, buf, sizeof(x->v.annotations));
	}
#undef PUT
}

/* Step x and remember whether anything changed. */
static void step(struct alerting *g, struct inst *x, bool cond, int64_t since_ns, int64_t t_ns,
		 int64_t for_ns)
{
	struct alert_times before = x->t;
	/* a condition known to have ended before the alert fired (an end event
	 * heard late) ends when it is noticed: endsAt is never before startsAt */
	if (!cond && x->t.state == ALERT_FIRING && since_ns && since_ns < x->t.fired_ns)
		since_ns = 0;
	alert_step(&x->t, cond, since_ns, t_ns, for_ns);
	if (memcmp(&before, &x->t, sizeof(before))) {
		x->dirty = true;
		g->structure_changed = true;
		if (x->t.state == ALERT_RESOLVED)
			x->resolved_wall_ns = time_mono_ns();
	}
}

struct visit {
	struct alerting *g;
	int64_t t_ns;
	int rc;
};

static int visit_series(void *ctx, const struct agg_series_view *sv)
{
	struct visit *vi = ctx;
	struct alerting *g = vi->g;
	const struct alerting_config *c = g->c;
	char key[KEY_MAX];
	int64_t end = 0;             /* its life ended by an event at end (not yet read again) */

	if (g->n_ended) {
		if (g->end_cache.res != sv->res || g->end_cache.agent != sv->agent) {
			g->end_cache.res = sv->res;
			g->end_cache.agent = sv->agent;
			g->end_cache.end_ns = ended_at(g, sv->res->meta.resource, sv->agent);
		}
		end = g->end_cache.end_ns;
		if (end && !sv->ended && sv->last_ns > end) {
			/* read after the end: a new life whose start the engine
			 * did not hear of */
			if (ended_set(g, sv->res->meta.resource, sv->agent, 0))
				return -ENOMEM;
			end = 0;
		}
	}
	/* the series' life is over: its final reading, or an end event after
	 * its last reading when the collector missed the final one */
	bool over = sv->ended || end;

	if (c->stale_intervals || g->n_dn) {
		if (sv->res_index >= g->cap_ra) {
			size_t cap = g->cap_ra ? g->cap_ra : 256;
			while (cap <= sv->res_index)
				cap *= 2;
			struct resagg *ra = fault_realloc(g->ra, cap * sizeof(*ra));
			if (!ra)
				return -ENOMEM;
			memset(ra + g->cap_ra, 0, (cap - g->cap_ra) * sizeof(*ra));
			g->ra = ra;
			g->cap_ra = cap;
		}
		struct resagg *r = &g->ra[sv->res_index];
		if (r->gen != g->eval_gen) {
			memset(r, 0, sizeof(*r));
			r->gen = g->eval_gen;
			r->res = sv->res;
		}
		if (sv->last_ns >= r->last_ns) {
			r->last_ns = sv->last_ns;
			r->host = sv->agent;
			r->host_time_ns = sv->agent_time_ns;
		}
		if (!over)
			r->open = true;
		else if (end > r->end_ns)
			r->end_ns = end;
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct alert_rule *ar = &c->rules[i];
		if (ar->meter != sv->meter)
			continue;
		bool counter = sv->kind != SAMPLE_GAUGE;
		double v = counter ? sv->rate : sv->gauge;
		bool known = !counter || sv->has_rate;
		if (ar->window_ns) {
			wnd_key(key, sizeof(key), ar, sv);
			struct wnd *w = wnd_get(g, key, wnd_cap(g, ar->window_ns), ar->window_ns);
			if (!w)
				return -ENOMEM;
			known = wnd_value(w, sv->last_ns, counter ? w->base + (double)sv->total : sv->gauge,
					  ar->window_ns, counter, &v);
		}
		if (sv->meter == M_CPU)
			v /= 1e9;      /* ns of CPU per second -> CPU-seconds per second */
		bool cond = !over && (ar->op == ALERT_ABOVE ? v > ar->threshold : v < ar->threshold);
		snprintf(key, sizeof(key), "%s\x1f%s\x1f%s\x1f%s", ar->name, sv->res->meta.resource,
			 sv->device, sv->agent);
		struct inst *x = find(g, key);
		if (!known && !over) {
			/* no value is no information: the instance keeps its state */
			if (x)
				x->seen = true;
			continue;
		}
		if (!x && !cond)
			continue;
		if (!x) {
			if (!(x = add(g, key)))
				continue;
			x->kind = K_RULE;
			x->rule = (int)i;
			str_copy(x->rule_name, ar->name, sizeof(x->rule_name));
			str_copy(x->subject, sv->res->meta.resource, sizeof(x->subject));
			str_copy(x->device, sv->device, sizeof(x->device));
			str_copy(x->host, sv->agent, sizeof(x->host));
		}
		x->seen = true;
		if (cond)
			x->v.value = v;
		step(g, x, cond, end, vi->t_ns, ar->for_ns);
		char summary[256];
		snprintf(summary, sizeof(summary), "%s %s %s %g%s", meter_table[ar->meter].name,
			 ar->rate ? "rate" : "value", ar->op == ALERT_ABOVE ? "above" : "below",
			 ar->threshold, ar->rate ? "/s" : "");
		describe(g, x, ar->name, ar->severity, sv->res, sv->agent, meter_table[ar->meter].name,
			 ar->labels, ar->annotations, summary);
	}
	return 0;
}

static int eval_builtin(struct alerting *g, enum inst_kind kind, const char *key, const char *name,
			const char *severity, bool cond, int64_t since_ns, int64_t t_ns,
			const struct ledger_resource *res, const char *subject, const char *host,
			double value, const char *summary)
{
	struct inst *x = find(g, key);
	if (!x && !cond)
		return 0;
	if (!x) {
		if (!(x = add(g, key)))
			return 0;
		x->kind = kind;
		x->rule = -1;
		str_copy(x->rule_name, name, sizeof(x->rule_name));
		str_copy(x->subject, subject, sizeof(x->subject));
	}
	str_copy(x->host, host ? host : "", sizeof(x->host));
	x->seen = true;
	x->v.value = value;
	step(g, x, cond, since_ns, t_ns, 0);
	describe(g, x, name, severity, res, host, NULL, NULL, NULL, summary);
	return 0;
}

/* AgentSilent: each expected agent silent for longer than agent_silent
 * (wall clock) since its last contact, or since this aggregator started
 * when it has not heard of it; resolved at its next contact, or when it is
 * no longer expected (its token removed). */
static void eval_agents(struct alerting *g)
{
	const struct alerting_config *c = g->c;
	char key[KEY_MAX], summary[300], t[48];
	int64_t now = g->ag_now_ns;
	for (size_t i = 0; i < g->n_ag; i++) {
		const struct alert_agent *a = &g->ag[i];
		int64_t from = a->contact_ns > g->ag_start_ns ? a->contact_ns : g->ag_start_ns;
		bool cond = now - from > c->agent_silent_ns;
		snprintf(key, sizeof(key), "AgentSilent\x1f%s", a->id);
		struct inst *x = find(g, key);
		if (!x && !cond)
			continue;
		if (cond)
			snprintf(summary, sizeof(summary), "agent '%s' sent nothing the aggregator took for %.0f s"
				 " (%s %s)", a->id, (double)(now - from) / 1e9, a->contact_ns > g->ag_start_ns
				 ? "its last contact" : "nothing since the aggregator started",
				 time_format_iso(from - from % NS_PER_SEC, t, sizeof(t)));
		else
			snprintf(summary, sizeof(summary), "agent '%s' is heard again", a->id);
		eval_builtin(g, K_AGENT, key, "AgentSilent", "critical", cond,
			     cond ? from + c->agent_silent_ns : a->contact_ns, now, NULL, "", a->id,
			     (double)(now - from) / 1e9, summary);
	}
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		if (x->kind != K_AGENT || (x->t.state != ALERT_PENDING && x->t.state != ALERT_FIRING))
			continue;
		bool listed = false;
		for (size_t k = 0; k < g->n_ag && !listed; k++)
			listed = !strcmp(g->ag[k].id, x->host);
		if (!listed)
			step(g, x, false, now, now, 0);
	}
}

void alert_sla_set_release(struct alert_sla_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void alerting_set_sla(struct alerting *g, struct alert_sla_set *s)
{
	alert_sla_set_release(&g->sla);
	g->sla = *s;
	memset(s, 0, sizeof(*s));
	g->sla_new = true;
}

/* SLABurn: one instance per VM the probe says is burning; exact times from
 * the probe (the instant the downtime passed the threshold). A VM the probe
 * no longer lists, or lists as not burning, is resolved: at the start of the
 * month when the month changed (the budget is new), else now. Evaluated
 * only when the probe said something new, so between two probes an
 * instance keeps its state. */
static void eval_sla(struct alerting *g, int64_t t_ns)
{
	char key[KEY_MAX];
	g->sla_new = false;
	for (size_t i = 0; i < g->sla.n; i++) {
		const struct alert_sla *s = &g->sla.v[i];
		snprintf(key, sizeof(key), "SLABurn\x1f%s", s->uuid);
		struct inst *x = find(g, key);
		if (!x && !s->burning)
			continue;
		if (!x) {
			if (!(x = add(g, key)))
				continue;
			x->kind = K_SLABURN;
			x->rule = -1;
			str_copy(x->rule_name, "SLABurn", sizeof(x->rule_name));
			str_copy(x->subject, s->uuid, sizeof(x->subject));
		}
		x->seen = true;
		x->v.value = s->used;
		int64_t since = s->burning ? s->since_ns : 0;
		if (!s->burning && x->t.state == ALERT_FIRING && x->t.fired_ns < g->sla.from_ns)
			since = g->sla.from_ns;
		step(g, x, s->burning, since, t_ns, 0);
		struct ledger_resource res;
		memset(&res, 0, sizeof(res));
		str_copy(res.meta.resource, s->uuid, sizeof(res.meta.resource));
		str_copy(res.meta.name, s->name, sizeof(res.meta.name));
		str_copy(res.meta.tenant, s->tenant, sizeof(res.meta.tenant));
		char cls[96];
		snprintf(cls, sizeof(cls), "sla_class=%s\n", s->cls);
		describe(g, x, "SLABurn", "critical", &res, s->host, NULL, cls, NULL, s->summary);
	}
	/* VMs the probe no longer lists: a new month, or gone from this one */
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		if (x->kind != K_SLABURN || x->seen || x->t.state == ALERT_RESOLVED)
			continue;
		step(g, x, false, x->t.fired_ns < g->sla.from_ns ? g->sla.from_ns : 0, t_ns, 0);
	}
}

int alerting_eval(struct alerting *g, const struct aggregator *a, int64_t t_ns, uint64_t dropped)
{
	const struct alerting_config *c = g->c;
	char key[KEY_MAX];
	struct visit vi = { .g = g, .t_ns = t_ns };
	int rc;

	g->tick_ns = t_ns;
	g->eval_gen++;
	if (!g->eval_gen)
		g->eval_gen = 1;
	for (size_t i = 0; i < g->n; i++)
		g->in[i].seen = false;
	if ((c->n_rules || c->stale_intervals || g->n_dn) && (rc = agg_visit_series(a, visit_series, &vi)))
		return rc;

	/* StaleData: a VM that was not stopped but sent nothing for N intervals
	 * of its own agent's data time: its agent's lag behind the newest
	 * agent's data is forgiven (another agent's newer data says nothing of
	 * this one, whose routine batches may come up to agent.send_every
	 * late; an agent that sends nothing at all raises AgentSilent) */
	if (c->stale_intervals) {
		int64_t span = (int64_t)c->stale_intervals * g->interval_ns, newest = agg_last_cycle_ns(a);
		for (size_t i = 0; i < g->cap_ra; i++) {
			const struct resagg *r = &g->ra[i];
			if (r->gen != g->eval_gen || !r->res)
				continue;
			int64_t at = r->host_time_ns;
			int64_t lag = at > 0 && at < newest ? newest - at : 0;
			bool cond = r->open && r->last_ns < t_ns - lag - span;
			snprintf(key, sizeof(key), "StaleData\x1f%s", r->res->meta.resource);
			double age = (double)(t_ns - r->last_ns) / 1e9;
			char summary[128];
			snprintf(summary, sizeof(summary), "no reading for %.0f s", age);
			eval_builtin(g, K_STALE, key, "StaleData", "warning", cond, cond ? 0 : r->end_ns, t_ns,
				     r->res, r->res->meta.resource, r->host, age, summary);
		}
	}

	/* alerts of series and resources not read in this process whose life
	 * ended (their end event came, or was in the ledger at start): no
	 * reading will ever resolve them */
	for (size_t i = 0; g->n_ended && i < g->n; i++) {
		struct inst *x = &g->in[i];
		int64_t end;
		if (x->seen || (x->kind != K_RULE && x->kind != K_STALE) ||
		    (x->t.state != ALERT_PENDING && x->t.state != ALERT_FIRING) ||
		    !(end = ended_at(g, x->subject, x->host)))
			continue;
		step(g, x, false, end, t_ns, 0);
	}

	/* VMDown: crashed and not started again; exact times from the events */
	for (size_t i = 0; i < g->n_dn; i++) {
		struct down *d = &g->dn[i];
		const struct ledger_resource *res = NULL;
		for (size_t k = 0; k < g->cap_ra && !res; k++)
			if (g->ra[k].gen == g->eval_gen && g->ra[k].res &&
			    !strcmp(g->ra[k].res->meta.resource, d->uuid))
				res = g->ra[k].res;
		snprintf(key, sizeof(key), "VMDown\x1f%s", d->uuid);
		const char *summary = "the VM crashed and has not started again";
		if (d->up_ns) {
			/* it came back: the down interval is [crash, up] exactly */
			struct inst *x = find(g, key);
			if (!x || x->t.state == ALERT_RESOLVED || x->t.state == ALERT_INACTIVE)
				eval_builtin(g, K_VMDOWN, key, "VMDown", "critical", true, d->crash_ns,
					     d->up_ns, res, d->uuid, d->host, 0, summary);
			eval_builtin(g, K_VMDOWN, key, "VMDown", "critical", false, d->up_ns, t_ns, res,
				     d->uuid, d->host, 0, "the VM crashed; it started again");
		} else {
			eval_builtin(g, K_VMDOWN, key, "VMDown", "critical", true, d->crash_ns, t_ns, res,
				     d->uuid, d->host, 1, summary);
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < g->n_dn; i++)
		if (!g->dn[i].up_ns)
			g->dn[kept++] = g->dn[i];
	g->n_dn = kept;

	/* SamplesDropped: readings dropped or refused within the last intervals */
	if (c->samples_dropped) {
		if (dropped < g->prev_dropped_samples)
			g->prev_dropped_samples = 0;
		if (dropped > g->prev_dropped_samples)
			g->last_drop_ns = t_ns;
		double grew = (double)(dropped - g->prev_dropped_samples);
		g->prev_dropped_samples = dropped;
		bool cond = g->last_drop_ns &&
			    t_ns - g->last_drop_ns < DROPPED_WINDOW_INTERVALS * g->interval_ns;
		char summary[128];
		snprintf(summary, sizeof(summary), "%llu readings dropped or refused since tallyd started",
			 (unsigned long long)dropped);
		struct inst *x = find(g, "SamplesDropped");
		eval_builtin(g, K_DROPPED, "SamplesDropped", "SamplesDropped", "warning", cond, 0, t_ns,
			     NULL, "", g->agent_id, cond ? grew : (x ? x->v.value : 0), summary);
	}

	if (c->sla_burn_ppm && g->sla_new)
		eval_sla(g, t_ns);

	if (c->agent_silent_ns && g->ag_set)
		eval_agents(g);

	/* LedgerWriteFailing: the ledger's commits fail (a full disk) */
	if (g->ledger_since_ns || find(g, "LedgerWriteFailing")) {
		bool cond = g->ledger_since_ns != 0;
		char summary[400];
		if (cond)
			snprintf(summary, sizeof(summary), "the ledger cannot be written (%s); %llu commits failed in"
				 " a row; what tallyd reads meanwhile is kept in memory", g->ledger_error,
				 (unsigned long long)g->ledger_failures);
		else
			snprintf(summary, sizeof(summary), "the ledger is written again");
		eval_builtin(g, K_LEDGER, "LedgerWriteFailing", "LedgerWriteFailing", "critical", cond,
			     cond ? g->ledger_since_ns : 0, t_ns, NULL, "", g->agent_id,
			     (double)g->ledger_failures, summary);
	}

	/* orphans (rule removed) were resolved at attach; now expire what was
	 * resolved long enough ago, and forget instances back to inactive */
	int64_t now = time_mono_ns();
	size_t w = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct inst *x = &g->in[i];
		bool gone = x->t.state == ALERT_INACTIVE ||
			    (x->t.state == ALERT_RESOLVED && now - x->resolved_wall_ns >= c->resolved_keep_ns);
		if (gone) {
			if (keylist_push(&g->del, x->key))
				return -ENOMEM;
			g->structure_changed = true;
			continue;
		}
		if (w != i)
			g->in[w] = *x;
		w++;
	}
	if (w != g->n) {
		g->n = w;
		if ((rc = reindex(g)))
			return rc;
	}
	return 0;
}

static int view_cmp(const void *x, const void *y)
{
	return strcmp(((const struct alert_view *)x)->labels, ((const struct alert_view *)y)->labels);
}

int alerting_set_agents(struct alerting *g, const struct alert_agent *v, size_t n, int64_t start_ns,
			int64_t now_ns)
{
	struct alert_agent *c = n ? fault_malloc(n * sizeof(*c)) : NULL;
	if (n && !c)
		return -ENOMEM;
	if (n)
		memcpy(c, v, n * sizeof(*c));
	free(g->ag);
	g->ag = c;
	g->n_ag = n;
	g->ag_set = true;
	g->ag_start_ns = start_ns;
	g->ag_now_ns = now_ns;
	return 0;
}

void alerting_set_ledger(struct alerting *g, int64_t since_ns, uint64_t failures, const char *error)
{
	g->ledger_since_ns = since_ns;
	g->ledger_failures = failures;
	str_copy(g->ledger_error, error ? error : "", sizeof(g->ledger_error));
}

void alerting_committed(struct alerting *g)
{
	for (size_t i = 0; i < g->n; i++)
		g->in[i].dirty = false;
	g->del.n = 0;
	g->wdel.n = 0;
	for (size_t i = 0; i < g->w_cap; i++) {
		g->w[i].saved_ns = g->w[i].saving_ns;
		g->w[i].saved_from_ns = g->w[i].saving_from_ns;
		g->w[i].moved = false;
	}
}

int alerting_publish(struct alerting *g, struct alert_store *store)
{
	if (!store)
		return 0;
	struct alert_snap *s = fault_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->v = fault_calloc(g->n ? g->n : 1, sizeof(*s->v));
	if (!s->v) {
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < g->n; i++) {
		s->v[i] = g->in[i].v;
		s->v[i].state = g->in[i].t.state;
		s->v[i].active_ns = g->in[i].t.active_ns;
		s->v[i].fired_ns = g->in[i].t.fired_ns;
		s->v[i].resolved_ns = g->in[i].t.resolved_ns;
	}
	s->n = g->n;
	qsort(s->v, s->n, sizeof(*s->v), view_cmp);
	s->tick_ns = g->tick_ns;
	s->dropped = g->dropped;
	if (g->structure_changed)
		g->version++;
	s->version = g->version;
	snapshot_publish(&store->ss, &s->snap);
	g->structure_changed = false;
	return 0;
}
