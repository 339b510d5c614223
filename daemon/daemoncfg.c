/*
 * daemoncfg.c: tallyd's config file -> struct daemon_config (daemoncfg.h). The
 * `tallyd:` section is read here; each other section goes to the module
 * that owns it, and each collector's map to that collector.
 */
#include "daemoncfg.h"
#include "cfg.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "metercfg.h"
#include "scheduler.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const top_keys[] = { "tallyd", "ledger", "rrd", "collectors", "http", "alerts",
					"ingest", "agent", "meters", "events", NULL };
static const char *const tallyd_keys[] = { "role", "agent_id", "data_dir", "interval", "log_level",
					   "clock", "start", "end", NULL };
static const char *const roles[] = { "all-in-one", "agent", "aggregator", NULL };
static const char *const clocks[] = { "realtime", "fast-forward", NULL };
static const char *const levels[] = { "error", "warning", "info", "debug", NULL };

/* The `tallyd:` section. */
static int parse_tallyd(struct daemon_config *c, const struct cfg_node *td, struct tally_err *e)
{
	int rc, role = ROLE_ALL_IN_ONE, clk = CLOCK_REAL, lvl = LOG_INFO;
	int64_t end_start = 0;

	if ((rc = cfg_check_keys(td, "tallyd", tallyd_keys, e)) ||
	    (rc = cfg_get_enum(td, "role", roles, &role, e)) ||
	    (rc = cfg_get_string(td, "agent_id", c->agent_id, sizeof(c->agent_id), e)) ||
	    (rc = cfg_get_string(td, "data_dir", c->data_dir, sizeof(c->data_dir), e)) ||
	    (rc = cfg_get_duration(td, "interval", NS_PER_SEC, 3600 * NS_PER_SEC, &c->interval_ns, e)) ||
	    (rc = cfg_get_enum(td, "log_level", levels, &lvl, e)) ||
	    (rc = cfg_get_enum(td, "clock", clocks, &clk, e)) ||
	    (rc = cfg_get_time(td, "start", &c->start_ns, e)) ||
	    (rc = cfg_get_time(td, "end", &end_start, e)))
		return rc;
	c->role = (enum daemon_role)role;
	c->clock = (enum daemon_clock)clk;
	c->log_level = lvl;
	if (end_start)
		c->end_ns = end_start;
	if (c->interval_ns % NS_PER_SEC) {
		const struct cfg_node *n = cfg_get(td, "interval");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'interval': must be whole seconds", n->file,
			       n->line, n->col);
	}
	if (c->clock == CLOCK_FAST_FORWARD) {
		const struct cfg_node *n = cfg_get(td, "clock");
		if (!c->start_ns || !c->end_ns || c->end_ns <= c->start_ns)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'clock': fast-forward needs 'start' and a"
				       " later 'end' in 'tallyd'", n->file, n->line, n->col);
		if (c->start_ns % NS_PER_SEC) {
			n = cfg_get(td, "start");
			return err_set(e, -EINVAL, "%s:%d:%d: key 'start': must be whole seconds", n->file,
				       n->line, n->col);
		}
	}
	return 0;
}

/* `collectors:`: each its own map, checked by the collector itself. */
static int parse_collectors(struct daemon_config *c, const struct cfg_node *co, struct tally_err *e)
{
	int rc;

	if (co && co->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: 'collectors' must be a map", co->file, co->line, co->col);
	struct collector_env env = { .agent_id = c->agent_id, .interval_ns = c->interval_ns,
				     .start_ns = c->clock == CLOCK_FAST_FORWARD ? c->start_ns
						 : sched_next_tick(time_collect_ns(), c->interval_ns),
				     .start_fixed = c->clock == CLOCK_FAST_FORWARD };
	for (size_t i = 0; co && i < co->n_kids; i++)
		env.with_libvirt |= !strcmp(co->kids[i]->key, "libvirt");
	for (size_t i = 0; co && i < co->n_kids; i++) {
		const struct cfg_node *k = co->kids[i];
		const struct collector_ops *ops = collector_find(k->key);
		if (!ops) {
			char known[128] = "";
			size_t used = 0;
			for (int j = 0; collector_all[j]; j++)
				used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s", j ? ", " : "",
							 collector_all[j]->name);
			return err_set(e, -EINVAL, "%s:%d:%d: unknown collector '%s' (known: %s)", k->file,
				       k->key_line, k->key_col, k->key, known);
		}
		if (c->n_coll == DAEMON_MAX_COLLECTORS)
			return err_set(e, -ERANGE, "%s:%d:%d: more than %d collectors", k->file, k->key_line,
				       k->key_col, DAEMON_MAX_COLLECTORS);
		const struct cfg_node *sub = k->type == CFG_SCALAR && !k->value[0] ? NULL : k;
		if (sub && sub->type != CFG_MAP)
			return err_set(e, -EINVAL, "%s:%d:%d: collector '%s' must be a map of keys", k->file,
				       k->line, k->col, k->key);
		void *state = NULL;
		if ((rc = ops->configure(sub, &env, &state, e)))
			return rc;
		c->coll[c->n_coll].ops = ops;
		c->coll[c->n_coll].state = state;
		c->n_coll++;
	}
	if (c->n_coll == 0)
		return err_set(e, -EINVAL, "%s: no collectors configured (add a 'collectors:' map, e.g."
			       " 'sim: {}')", c->path);
	return 0;
}

/* `alerts:`; generatorURL defaults to this tallyd's own /api/v1/alerts. */
static int parse_alerts(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	int rc = alerting_config_parse(&c->alerts, cfg_get(root, "alerts"), c->interval_ns, e);
	if (rc || c->alerts.generator_url[0])
		return rc;
	const char *a = c->http.address;
	snprintf(c->alerts.generator_url, sizeof(c->alerts.generator_url), "http://%s%s%s:%d/api/v1/alerts",
		 strchr(a, ':') ? "[" : "", a, strchr(a, ':') ? "]" : "", (int)c->http.port);
	return 0;
}

/* role: aggregator: what agents POST, through the HTTP listener; no
 * collectors of its own (a host that is also metered runs an agent beside
 * it), a real-time clock (data time is the agents'), and agents' tokens. */
static int check_aggregator(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	const struct cfg_node *td = cfg_get(root, "tallyd"), *n;
	const struct cfg_node *role = td ? cfg_get(td, "role") : NULL;
	if (c->role != ROLE_AGGREGATOR) {
		if ((n = cfg_get(root, "ingest")))
			return err_set(e, -EINVAL, "%s:%d:%d: 'ingest' is for 'role: aggregator' (this tallyd is"
				       " %s)", n->file, n->key_line, n->key_col,
				       c->role == ROLE_AGENT ? "an agent" : "all-in-one");
		return 0;
	}
	if ((n = cfg_get(root, "collectors")))
		return err_set(e, -EINVAL, "%s:%d:%d: 'collectors': an aggregator runs none (it takes what its"
			       " agents send); meter this host with a tallyd of 'role: agent' beside it", n->file,
			       n->key_line, n->key_col);
	if (c->clock != CLOCK_REAL) {
		n = cfg_get(td, "clock");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'clock': an aggregator runs in real time (its data"
			       " time is its agents'; an agent may fast-forward)", n->file, n->line, n->col);
	}
	if (!c->http.enabled)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'role': an aggregator takes its agents' batches on"
			       " its HTTP listener: give an 'http:' section", role->file, role->line, role->col);
	size_t agents = 0;
	for (size_t i = 0; i < c->http.n_tokens; i++)
		agents += c->http.tokens[i].agent[0] != '\0';
	if (!agents) {
		n = cfg_get(root, "http");
		return err_set(e, -EINVAL, "%s:%d:%d: 'http': an aggregator needs its agents' tokens in"
			       " 'tokens' ({token: ..., agent: AGENT_ID}, one per agent)", n->file, n->key_line,
			       n->key_col);
	}
	return 0;
}

/* `agent:`, and what goes with the agent role: it keeps no ledger, so no
 * `ledger:` or `rrd:` and no alert rules (they read the aggregator's
 * series); only the SpoolFilling built-in is evaluated there. */
static int parse_agent(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	const struct cfg_node *ag = NULL, *n;
	int rc;
	if ((rc = cfg_get_map(root, "agent", &ag, e)) ||
	    (rc = agent_settings_parse(&c->agent, ag, c->data_dir, e)))
		return rc;
	n = cfg_get(root, "agent");
	if (c->role != ROLE_AGENT && n)
		return err_set(e, -EINVAL, "%s:%d:%d: 'agent' is the section of 'role: agent' (this tallyd is"
			       " %s)", n->file, n->key_line, n->key_col, roles[c->role]);
	if (c->role != ROLE_AGENT)
		return 0;
	const struct cfg_node *td = cfg_get(root, "tallyd"), *role = cfg_get(td, "role");
	if (!n)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'role': an agent needs an 'agent:' section with the"
			       " aggregator's URL", role->file, role->line, role->col);
	static const char *const not_agent[] = { "ledger", "rrd", "events", NULL };
	for (int i = 0; not_agent[i]; i++)
		if ((n = cfg_get(root, not_agent[i])))
			return err_set(e, -EINVAL, "%s:%d:%d: '%s': an agent keeps no ledger and no RRD files (the"
				       " aggregator does%s): remove the section", n->file, n->key_line, n->key_col,
				       not_agent[i], i == 2 ? ", and takes the events sources post" : "");
	if (c->alerts.n_rules) {
		n = cfg_get(cfg_get(root, "alerts"), "rules");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'rules': alert rules run on the aggregator, which has"
			       " the series; an agent evaluates only SpoolFilling", n->file, n->line, n->col);
	}
	return 0;
}

/* What a custom meter is, for each one of `meters:`, hashed. */
static uint64_t meters_digest(const struct cfg_node *m)
{
	static const char *const keys[] = { "name", "kind", "unit", "title" };
	uint64_t h = HASH_FNV64_INIT;
	for (size_t i = 0; m && m->type == CFG_SEQ && i < m->n_kids; i++)
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			const struct cfg_node *v = cfg_get(m->kids[i], keys[k]);
			h = hash_fnv64_str(h, v && v->value ? v->value : "");
			h = hash_fnv64_word(h, (uint32_t)k);
		}
	return h;
}

static int parse(struct daemon_config *c, const struct cfg_node *root, struct tally_err *e)
{
	const struct cfg_node *td = NULL, *lg = NULL, *rr = NULL, *co = NULL, *hs = NULL;
	int rc;

	if ((rc = cfg_check_keys(root, "top level", top_keys, e)) ||
	    (rc = cfg_get_map(root, "tallyd", &td, e)) || (rc = cfg_get_map(root, "ledger", &lg, e)) ||
	    (rc = cfg_get_map(root, "rrd", &rr, e)) || (rc = cfg_get_map(root, "collectors", &co, e)) ||
	    (rc = parse_tallyd(c, td, e)) ||
	    (rc = agg_settings_parse(&c->agg, lg, rr, c->data_dir, c->interval_ns,
				     c->clock == CLOCK_FAST_FORWARD, e)) ||
	    (c->role != ROLE_AGGREGATOR && (rc = parse_collectors(c, co, e))) ||
	    /* custom meters: checked here; the tally commands use them (no
	     * collector sends them) */
	    (rc = meter_config_parse(cfg_get(root, "meters"), false, e)) ||
	    (rc = cfg_get_map(root, "http", &hs, e)) ||
	    (rc = httpd_section_parse(&c->http, hs, c->interval_ns, e)) ||
	    (rc = check_aggregator(c, root, e)) ||
	    (rc = ingest_section_parse(&c->ingest, cfg_get(root, "ingest"), e)) ||
	    (rc = events_section_parse(&c->events, cfg_get(root, "events"), e)))
		return rc;
	if ((rc = parse_alerts(c, root, e)))
		return rc;
	c->meters_digest = meters_digest(cfg_get(root, "meters"));
	return parse_agent(c, root, e);
}

int daemon_config_load(struct daemon_config *c, const char *path, const char *text,
		       struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	str_copy(c->path, path, sizeof(c->path));
	if (gethostname(c->agent_id, sizeof(c->agent_id) - 1) || !c->agent_id[0])
		str_copy(c->agent_id, "localhost", sizeof(c->agent_id));
	str_copy(c->data_dir, "./var", sizeof(c->data_dir));
	c->interval_ns = 10 * NS_PER_SEC;
	c->log_level = LOG_INFO;

	rc = text ? cfg_load_string(path, text, strlen(text), &root, e) : cfg_load_file(path, &root, e);
	if (rc)
		return rc;
	if (!root) {
		rc = err_set(e, -EINVAL, "%s: empty config (at least 'collectors:' is needed)", path);
		goto out;
	}
	rc = parse(c, root, e);
out:
	cfg_free(root);
	if (rc)
		daemon_config_release(c);
	return rc;
}

void daemon_config_release(struct daemon_config *c)
{
	for (size_t i = 0; i < c->n_coll; i++)
		if (c->coll[i].ops && c->coll[i].state)
			c->coll[i].ops->free(c->coll[i].state);
	c->n_coll = 0;
}
