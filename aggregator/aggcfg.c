/*
 * aggcfg.c: the `ledger:` and `rrd:` sections of tallyd's config into
 * struct agg_settings (aggregator.h), and the aggregator's config made from
 * them. Keys, defaults and units: docs/config.md. Pure: common/ only.
 */
#include "aggregator.h"
#include "cfg.h"
#include "ledger.h"
#include "err.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const ledger_keys[] = { "path", "url", "statement_timeout", "max_gap", "commit_every", NULL };
static const char *const rrd_keys[] = { "enabled", "dir", "step", NULL };

static int join(char *out, size_t len, const char *dir, const char *name, struct tally_err *e)
{
	if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
		return err_set(e, -ENAMETOOLONG, "path too long: %s/%s", dir, name);
	return 0;
}

int agg_settings_parse(struct agg_settings *s, const struct cfg_node *lg, const struct cfg_node *rr,
		       const char *data_dir, int64_t interval_ns, bool fast_forward, struct tally_err *e)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->max_gap_ns = 300 * NS_PER_SEC;
	s->commit_every_ns = -1;   /* not given: the clock's default, below */
	s->rrd_enabled = true;
	s->rrd_step_ns = 60 * NS_PER_SEC;
	char url[sizeof(s->ledger_path)] = "";
	s->statement_timeout_ns = 30 * NS_PER_SEC;
	if ((rc = cfg_check_keys(lg, "ledger", ledger_keys, e)) ||
	    (rc = cfg_get_string(lg, "path", s->ledger_path, sizeof(s->ledger_path), e)) ||
	    (rc = cfg_get_string(lg, "url", url, sizeof(url), e)) ||
	    (rc = cfg_get_duration(lg, "statement_timeout", 0, 3600 * NS_PER_SEC, &s->statement_timeout_ns, e)) ||
	    (rc = cfg_get_duration(lg, "max_gap", NS_PER_SEC, 86400 * NS_PER_SEC, &s->max_gap_ns, e)) ||
	    (rc = cfg_get_duration(lg, "commit_every", 0, 3600 * NS_PER_SEC, &s->commit_every_ns, e)))
		return rc;
	if (s->commit_every_ns < 0)
		s->commit_every_ns = fast_forward ? AGG_COMMIT_EVERY_FF : AGG_COMMIT_EVERY_RT;
	/* a gap is a missed reading: with max_gap not longer than the interval
	 * every reading would be one, the usage never "covered" and every
	 * running VM recorded silent in every interval (downtime to the SLA) */
	const struct cfg_node *mg = cfg_get(lg, "max_gap");
	if (!mg && s->max_gap_ns < 3 * interval_ns)
		s->max_gap_ns = 3 * interval_ns;
	if (mg && s->max_gap_ns <= interval_ns)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'max_gap': must be longer than tallyd.interval (%llds):"
			       " each interval would be a gap, and a silence of every VM to the SLA", mg->file,
			       mg->line, mg->col, (long long)(interval_ns / NS_PER_SEC));
	int64_t step = s->rrd_step_ns;
	if ((rc = cfg_check_keys(rr, "rrd", rrd_keys, e)) ||
	    (rc = cfg_get_bool(rr, "enabled", &s->rrd_enabled, e)) ||
	    (rc = cfg_get_string(rr, "dir", s->rrd_dir, sizeof(s->rrd_dir), e)) ||
	    (rc = cfg_get_duration(rr, "step", NS_PER_SEC, 86400 * NS_PER_SEC, &step, e)))
		return rc;
	if (step % NS_PER_SEC) {
		const struct cfg_node *n = cfg_get(rr, "step");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'step': must be whole seconds", n->file, n->line,
			       n->col);
	}
	s->rrd_step_ns = step;
	/* url: the ledger anywhere (a file, sqlite:PATH, postgresql://...),
	 * checked here and without its password from here on (ledger.h) */
	if (url[0]) {
		const struct cfg_node *n = cfg_get(lg, "url");
		if (s->ledger_path[0])
			return err_set(e, -EINVAL, "%s:%d:%d: key 'url': give ledger.path or ledger.url, not both",
				       n->file, n->line, n->col);
		struct tally_err le = { 0 };
		if ((rc = ledger_location_normalize(url, s->ledger_path, sizeof(s->ledger_path), &le)))
			return err_set(e, rc, "%s:%d:%d: key 'url': %s", n->file, n->line, n->col, le.msg);
	}
	if (!s->ledger_path[0] && (rc = join(s->ledger_path, sizeof(s->ledger_path), data_dir, "ledger.db", e)))
		return rc;
	if (!s->rrd_dir[0] && (rc = join(s->rrd_dir, sizeof(s->rrd_dir), data_dir, "rrd", e)))
		return rc;
	return 0;
}

void agg_settings_config(const struct agg_settings *s, bool lossless, struct agg_config *out)
{
	memset(out, 0, sizeof(*out));
	out->ledger_path = s->ledger_path;
	out->statement_timeout_ms = (int)(s->statement_timeout_ns / 1000000);
	out->rrd_dir = s->rrd_enabled ? s->rrd_dir : NULL;
	out->rrd_step_s = (int)(s->rrd_step_ns / NS_PER_SEC);
	out->rrd_lossless = lossless;
	out->max_gap_ns = s->max_gap_ns;
}
