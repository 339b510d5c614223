/*
 * alertcfg.c: the `alerts:` section of tallyd's config into struct
 * alerting_config, and the "name=value\n" label lists alerts carry (see
 * alerting.h). Pure: it uses common/ only, so the fuzz target
 * (tests/fuzz/fuzz_alerts.c) builds it without the aggregator.
 */
#include "alerting.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const alerts_keys[] = { "alertmanager", "resend", "timeout", "resolved_keep",
					   "backoff_max", "generator_url", "stale_intervals", "vm_down",
					   "samples_dropped", "spool_filling", "sla_burn", "max_alerts", "rules", "agent_silent",
					   NULL };
static const char *const rule_keys[] = { "name", "meter", "rate_above", "rate_below", "above", "below",
					 "window", "for", "severity", "labels", "annotations", NULL };
static const char *const severities[] = { "critical", "warning", "info", NULL };
/* labels tally sets itself; a rule may not override them */
static const char *const reserved[] = { "alertname", "severity", "uuid", "name", "tenant", "host",
					"meter", "device", NULL };
static const char *const builtin_names[] = { "VMDown", "StaleData", "SamplesDropped", "SLABurn",
					     "LedgerWriteFailing", "AgentSilent", NULL };

static bool label_name_ok(const char *s)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static bool in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (!strcmp(*l, s))
			return true;
	return false;
}


static int pair_cmp(const void *x, const void *y)
{
	return strcmp(((const struct alert_pair *)x)->k, ((const struct alert_pair *)y)->k);
}

int alert_pairs_join(struct alert_pair *p, size_t n, char *out, size_t len)
{
	size_t used = 0;
	qsort(p, n, sizeof(*p), pair_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!p[i].v[0])
			continue;   /* Alertmanager treats an empty label as absent */
		for (char *c = p[i].v; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		int w = snprintf(out + used, len - used, "%s=%s\n", p[i].k, p[i].v);
		if (w < 0 || (size_t)w >= len - used)
			return -ERANGE;
		used += (size_t)w;
	}
	return 0;
}

/* A map of plain names to plain values (a rule's labels or annotations). */
static int parse_pairs(const struct cfg_node *m, const char *what, bool check_reserved, char *out,
		       size_t len, struct tally_err *e)
{
	struct alert_pair p[32];
	size_t n = 0;
	if (!m)
		return 0;
	if (m->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a map of name: value", m->file,
			       m->line, m->col, what);
	for (size_t i = 0; i < m->n_kids; i++) {
		const struct cfg_node *k = m->kids[i];
		if (n == 32)
			return err_set(e, -ERANGE, "%s:%d:%d: key '%s': more than 32 entries", k->file,
				       k->key_line, k->key_col, what);
		if (!label_name_ok(k->key))
			return err_set(e, -EINVAL, "%s:%d:%d: key '%s': '%s' is not a label name"
				       " ([A-Za-z_][A-Za-z0-9_]*)", k->file, k->key_line, k->key_col, what, k->key);
		if (check_reserved && in_list(reserved, k->key))
			return err_set(e, -EINVAL, "%s:%d:%d: key '%s': '%s' is set by tally itself", k->file,
				       k->key_line, k->key_col, what, k->key);
		if (k->type != CFG_SCALAR)
			return err_set(e, -EINVAL, "%s:%d:%d: key '%s.%s': expected a plain value", k->file,
				       k->line, k->col, what, k->key);
		if (strlen(k->value) >= sizeof(p[n].v))
			return err_set(e, -ERANGE, "%s:%d:%d: key '%s.%s': longer than %zu characters",
				       k->file, k->line, k->col, what, k->key, sizeof(p[n].v) - 1);
		if (strlen(k->key) >= sizeof(p[n].k))
			return err_set(e, -ERANGE, "%s:%d:%d: key '%s': name '%s' longer than %zu characters",
				       k->file, k->key_line, k->key_col, what, k->key, sizeof(p[n].k) - 1);
		str_copy(p[n].k, k->key, sizeof(p[n].k));
		str_copy(p[n].v, k->value, sizeof(p[n].v));
		n++;
	}
	if (alert_pairs_join(p, n, out, len))
		return err_set(e, -ERANGE, "%s:%d:%d: key '%s': longer than %zu characters in all", m->file,
			       m->line, m->col, what, len - 1);
	return 0;
}

/* sla_burn: a share of the error budget as a percentage, "100%", "50%",
 * "12.5%" (at most 4 decimals), 0% to 1000%; "0%" turns SLABurn off. */
static int parse_burn(const struct cfg_node *sec, int64_t *ppm, struct tally_err *e)
{
	const struct cfg_node *n = cfg_get(sec, "sla_burn");
	if (!n)
		return 0;
	const char *s = n->type == CFG_SCALAR ? n->value : "";
	int64_t whole = 0, frac = 0;
	int digits = 0, fd = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9' && digits < 5; p++, digits++)
		whole = whole * 10 + (*p - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9' && fd < 4; p++, fd++)
			frac = frac * 10 + (*p - '0');
	for (int i = fd; i < 4; i++)
		frac *= 10;
	if (!digits || *p != '%' || p[1] || whole * 10000 + frac > 10000000)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'sla_burn': expected a share of the error budget"
			       " from 0%% to 1000%% with at most 4 decimals, like 100%% or 50%% (got '%s')",
			       n->file, n->line, n->col, s);
	*ppm = whole * 10000 + frac;  /* 1 % = 10^4 ppm; the 4th decimal of a % is 1 ppm */
	return 0;
}

static int parse_rule(struct alerting_config *c, const struct cfg_node *r, struct tally_err *e)
{
	struct alert_rule *ar = &c->rules[c->n_rules];
	char meter[64] = "";
	int sev = 1, rc, conds = 0;
	const char *cond_key = NULL;
	static const char *const cond_keys[] = { "rate_above", "rate_below", "above", "below" };

	if (r->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: a rule is a map with name, meter, a condition, ...",
			       r->file, r->line, r->col);
	memset(ar, 0, sizeof(*ar));
	if ((rc = cfg_check_keys(r, "rules", rule_keys, e)) ||
	    (rc = cfg_get_string(r, "name", ar->name, sizeof(ar->name), e)) ||
	    (rc = cfg_get_string(r, "meter", meter, sizeof(meter), e)) ||
	    (rc = cfg_get_duration(r, "for", 0, 30 * 86400 * NS_PER_SEC, &ar->for_ns, e)) ||
	    (rc = cfg_get_duration(r, "window", 0, 86400 * NS_PER_SEC, &ar->window_ns, e)) ||
	    (rc = cfg_get_enum(r, "severity", severities, &sev, e)))
		return rc;
	if (!ar->name[0])
		return err_set(e, -EINVAL, "%s:%d:%d: a rule needs a 'name'", r->file, r->line, r->col);
	const struct cfg_node *nn = cfg_get(r, "name");
	if (!label_name_ok(ar->name))
		return err_set(e, -EINVAL, "%s:%d:%d: key 'name': '%s' is not a label value tally accepts"
			       " as an alert name ([A-Za-z_][A-Za-z0-9_]*)", nn->file, nn->line, nn->col, ar->name);
	if (in_list(builtin_names, ar->name))
		return err_set(e, -EINVAL, "%s:%d:%d: key 'name': '%s' is a built-in alert", nn->file,
			       nn->line, nn->col, ar->name);
	for (size_t i = 0; i < c->n_rules; i++)
		if (!strcmp(c->rules[i].name, ar->name))
			return err_set(e, -EINVAL, "%s:%d:%d: key 'name': rule '%s' is given twice", nn->file,
				       nn->line, nn->col, ar->name);
	if (!meter[0])
		return err_set(e, -EINVAL, "%s:%d:%d: rule '%s' needs a 'meter'", r->file, r->line, r->col,
			       ar->name);
	const struct cfg_node *mn = cfg_get(r, "meter");
	if ((ar->meter = meter_lookup(meter)) < 0)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'meter': unknown meter '%s' (the meter table is in"
			       " docs/meters.md: cpu, memory, network.incoming.bytes, ...)", mn->file, mn->line,
			       mn->col, meter);
	for (int i = 0; i < 4; i++) {
		if (!cfg_get(r, cond_keys[i]))
			continue;
		conds++;
		cond_key = cond_keys[i];
		if ((rc = cfg_get_double(r, cond_keys[i], -1e300, 1e300, &ar->threshold, e)))
			return rc;
		ar->rate = i < 2;
		ar->op = i % 2 ? ALERT_BELOW : ALERT_ABOVE;
	}
	if (conds != 1)
		return err_set(e, -EINVAL, "%s:%d:%d: rule '%s' needs exactly one of rate_above, rate_below"
			       " (counters), above, below (gauges)", r->file, r->line, r->col, ar->name);
	bool counter = meter_table[ar->meter].kind != SAMPLE_GAUGE;
	if (ar->rate != counter) {
		const struct cfg_node *cn = cfg_get(r, cond_key);
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': meter '%s' is a %s; use %s", cn->file,
			       cn->key_line, cn->key_col, cond_key, meter, counter ? "counter" : "gauge",
			       counter ? "rate_above or rate_below" : "above or below");
	}
	str_copy(ar->severity, severities[sev], sizeof(ar->severity));
	if ((rc = parse_pairs(cfg_get(r, "labels"), "labels", true, ar->labels, sizeof(ar->labels), e)) ||
	    (rc = parse_pairs(cfg_get(r, "annotations"), "annotations", false, ar->annotations,
			      sizeof(ar->annotations), e)))
		return rc;
	c->n_rules++;
	return 0;
}

int alerting_config_parse(struct alerting_config *c, const struct cfg_node *sec, int64_t interval_ns,
			  struct tally_err *e)
{
	int rc;
	memset(c, 0, sizeof(*c));
	c->resend_ns = 60 * NS_PER_SEC;
	c->timeout_ns = 10 * NS_PER_SEC;
	c->resolved_keep_ns = 15 * 60 * NS_PER_SEC;
	c->backoff_max_ns = 5 * 60 * NS_PER_SEC;
	c->stale_intervals = 3;
	c->vm_down = true;
	c->samples_dropped = true;
	c->agent_silent_ns = 5 * 60 * NS_PER_SEC;
	c->spool_filling = true;
	c->sla_burn_ppm = 1000000;
	c->max_alerts = 10000;
	(void)interval_ns;
	if (!sec)
		return 0;
	if (sec->type == CFG_SCALAR && !sec->value[0]) {
		c->enabled = true;   /* `alerts:` alone: the built-ins, nothing sent */
		return 0;
	}
	c->enabled = true;
	if ((rc = cfg_check_keys(sec, "alerts", alerts_keys, e)) ||
	    (rc = cfg_get_string(sec, "alertmanager", c->alertmanager, sizeof(c->alertmanager), e)) ||
	    (rc = cfg_get_duration(sec, "resend", NS_PER_SEC, 3600 * NS_PER_SEC, &c->resend_ns, e)) ||
	    (rc = cfg_get_duration(sec, "timeout", 100 * 1000 * 1000, 300 * NS_PER_SEC, &c->timeout_ns, e)) ||
	    (rc = cfg_get_duration(sec, "resolved_keep", 0, 86400 * NS_PER_SEC, &c->resolved_keep_ns, e)) ||
	    (rc = cfg_get_duration(sec, "backoff_max", NS_PER_SEC, 3600 * NS_PER_SEC, &c->backoff_max_ns, e)) ||
	    (rc = cfg_get_string(sec, "generator_url", c->generator_url, sizeof(c->generator_url), e)) ||
	    (rc = cfg_get_uint(sec, "stale_intervals", 0, 100000, &c->stale_intervals, e)) ||
	    (rc = cfg_get_bool(sec, "vm_down", &c->vm_down, e)) ||
	    (rc = cfg_get_bool(sec, "samples_dropped", &c->samples_dropped, e)) ||
	    (rc = cfg_get_duration(sec, "agent_silent", 0, 7 * 86400 * NS_PER_SEC, &c->agent_silent_ns, e)) ||
	    (rc = cfg_get_bool(sec, "spool_filling", &c->spool_filling, e)) ||
	    (rc = cfg_get_uint(sec, "max_alerts", 1, 1000000, &c->max_alerts, e)) ||
	    (rc = parse_burn(sec, &c->sla_burn_ppm, e)))
		return rc;
	const struct cfg_node *am = cfg_get(sec, "alertmanager");
	if (c->alertmanager[0] && strncmp(c->alertmanager, "http://", 7) &&
	    strncmp(c->alertmanager, "https://", 8))
		return err_set(e, -EINVAL, "%s:%d:%d: key 'alertmanager': expected an http:// or https:// URL"
			       " (got '%s')", am->file, am->line, am->col, c->alertmanager);
	size_t ul = strlen(c->alertmanager);
	while (ul && c->alertmanager[ul - 1] == '/')
		c->alertmanager[--ul] = '\0';
	const struct cfg_node *rules = cfg_get(sec, "rules");
	if (rules) {
		if (rules->type != CFG_SEQ)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'rules': expected a list of rules", rules->file,
				       rules->line, rules->col);
		for (size_t i = 0; i < rules->n_kids; i++) {
			if (c->n_rules == ALERT_MAX_RULES)
				return err_set(e, -ERANGE, "%s:%d:%d: more than %d rules", rules->kids[i]->file,
					       rules->kids[i]->line, rules->kids[i]->col, ALERT_MAX_RULES);
			if ((rc = parse_rule(c, rules->kids[i], e)))
				return rc;
		}
	}
	return 0;
}

void alert_label(const char *labels, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = labels; p && *p;) {
		const char *end = strchr(p, '\n');
		size_t ll = end ? (size_t)(end - p) : strlen(p);
		if (ll > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			size_t vl = ll - nl - 1;
			if (vl >= len)
				vl = len - 1;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return;
		}
		p = end ? end + 1 : NULL;
	}
}
