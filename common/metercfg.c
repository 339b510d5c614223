/*
 * metercfg.c: custom meters from the config's `meters:` section
 * (metercfg.h).
 */
#include "metercfg.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"

#include <errno.h>
#include <string.h>

static bool name_shape(const char *s)
{
	if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

static bool unit_shape(const char *s)
{
	if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '/'))
			return false;
	return true;
}

int meter_config_parse(const struct cfg_node *seq, bool define, struct tally_err *e)
{
	static const char *const keys[] = { "name", "kind", "unit", "title", NULL };
	static const char *const kinds[] = { "counter", "gauge", "delta", NULL };
	/* enum sample_kind of each, in the order of kinds */
	static const enum sample_kind kind_of[] = { SAMPLE_CUMULATIVE, SAMPLE_GAUGE, SAMPLE_DELTA };
	int rc;

	if (!seq)
		return 0;
	if (seq->type != CFG_SEQ)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'meters': expected a list of meters (name, kind, unit, title)",
			       seq->file, seq->line, seq->col);
	if (seq->n_kids > METER_CUSTOM_MAX)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'meters': at most %d custom meters (got %zu)", seq->file,
			       seq->line, seq->col, METER_CUSTOM_MAX, seq->n_kids);
	for (int pass = 0; pass < (define ? 2 : 1); pass++) {
		for (size_t i = 0; i < seq->n_kids; i++) {
			const struct cfg_node *m = seq->kids[i];
			char name[64] = "", unit[16] = "", title[64] = "";
			int kind = -1;
			if ((rc = cfg_check_keys(m, "meter", keys, e)) ||
			    (rc = cfg_get_string(m, "name", name, sizeof(name), e)) ||
			    (rc = cfg_get_string(m, "unit", unit, sizeof(unit), e)) ||
			    (rc = cfg_get_string(m, "title", title, sizeof(title), e)) ||
			    (rc = cfg_get_enum(m, "kind", kinds, &kind, e)))
				return rc;
			const char *missing = !name[0] ? "name" : !cfg_get(m, "kind") ? "kind" : !unit[0] ? "unit"
					      : !title[0] ? "title" : NULL;
			if (missing)
				return err_set(e, -EINVAL, "%s:%d:%d: a meter needs '%s' (name, kind, unit, title)", m->file,
					       m->line, m->col, missing);
			const struct cfg_node *nn = cfg_get(m, "name"), *un = cfg_get(m, "unit");
			if (!name_shape(name))
				return err_set(e, -EINVAL, "%s:%d:%d: key 'name': '%s' is not a meter name (lower-case"
					       " letters, digits, '.', '_' and '-', starting with a letter or digit)",
					       nn->file, nn->line, nn->col, name);
			if (!unit_shape(unit))
				return err_set(e, -EINVAL, "%s:%d:%d: key 'unit': '%s' is not a base unit (letters,"
					       " digits and '/', starting with a letter: B, request, IP)", un->file,
					       un->line, un->col, unit);
			if (pass == 0) {
				if (meter_lookup(name) >= 0)
					return err_set(e, -EINVAL, "%s:%d:%d: key 'name':"
						       " '%s' is a built-in meter (docs/meters.md); a custom meter needs a"
						       " name of its own", nn->file, nn->line, nn->col, name);
				for (size_t j = 0; j < i; j++) {
					const struct cfg_node *o = cfg_get(seq->kids[j], "name");
					if (o && o->type == CFG_SCALAR && !strcmp(o->value, name))
						return err_set(e, -EINVAL, "%s:%d:%d: key 'name': meter '%s' is declared"
							       " twice (first at line %d)", nn->file, nn->line, nn->col,
							       name, o->line);
				}
				continue;
			}
			rc = meter_define(name, kind_of[kind], unit, title);
			if (rc == -EEXIST)
				continue;   /* declared already by an earlier load of this config */
			if (rc < 0)
				return err_set(e, rc, "%s:%d:%d: meter '%s': %s", nn->file, nn->line, nn->col, name,
					       rc == -ENOSPC ? "too many custom meters" : "out of memory");
		}
	}
	return 0;
}

int meter_config_load(const char *path, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc = cfg_load_file(path, &root, e);
	if (rc)
		return rc;
	if (root && root->type != CFG_MAP)
		rc = err_set(e, -EINVAL, "%s:%d:%d: expected the config: a map of sections", path, root->line, root->col);
	else
		rc = meter_config_parse(root ? cfg_get(root, "meters") : NULL, true, e);
	cfg_free(root);
	return rc;
}
