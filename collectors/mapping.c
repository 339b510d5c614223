/*
 * mapping.c: the tenant mapping file (mapping.h): a YAML list of rules,
 * parsed with the config tree (common/cfg.h), matched by uuid or by a
 * shell pattern on the name.
 */
#include "mapping.h"
#include "cfg.h"
#include "err.h"
#include "str.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int from_tree(const char *path, struct cfg_node *root, struct mapping *m, struct tally_err *e);

int mapping_load(const char *path, struct mapping *m, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = cfg_load_file(path, &root, e)))
		return rc;
	return from_tree(path, root, m, e);
}

int mapping_load_text(const char *name, const char *text, size_t len, struct mapping *m, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = cfg_load_string(name, text, len, &root, e)))
		return rc;
	return from_tree(name, root, m, e);
}

/* The rules of the parsed file root (freed here). */
static int from_tree(const char *path, struct cfg_node *root, struct mapping *m, struct tally_err *e)
{
	static const char *const keys[] = { "uuid", "name", "tenant", "user", "flavor", "labels", NULL };
	int rc;

	if (!root) {
		rc = err_set(e, -EINVAL, "%s: empty mapping file (expected a list of rules)", path);
		goto out;
	}
	if (root->type != CFG_SEQ) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: expected a list of rules ('- uuid: ...' or '- name: ...')",
			     path, root->line, root->col);
		goto out;
	}
	m->rules = calloc(root->n_kids ? root->n_kids : 1, sizeof(*m->rules));
	if (!m->rules) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < root->n_kids; i++) {
		const struct cfg_node *r = root->kids[i];
		struct mapping_rule *rule = &m->rules[m->n];
		if ((rc = cfg_check_keys(r, "mapping rule", keys, e)) ||
		    (rc = cfg_get_string(r, "uuid", rule->uuid, sizeof(rule->uuid), e)) ||
		    (rc = cfg_get_string(r, "name", rule->name, sizeof(rule->name), e)) ||
		    (rc = cfg_get_string(r, "tenant", rule->tenant, sizeof(rule->tenant), e)) ||
		    (rc = cfg_get_string(r, "user", rule->user, sizeof(rule->user), e)) ||
		    (rc = cfg_get_string(r, "flavor", rule->flavor, sizeof(rule->flavor), e)))
			goto out;
		if (!rule->uuid[0] == !rule->name[0]) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: a rule needs exactly one of 'uuid' or 'name'", path,
				     r->line, r->col);
			goto out;
		}
		if (!rule->tenant[0]) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: a rule needs a 'tenant'", path, r->line, r->col);
			goto out;
		}
		const struct cfg_node *lb = NULL;
		if ((rc = cfg_get_map(r, "labels", &lb, e)))
			goto out;
		if (lb) {
			const char *kv[64];
			char buf[64][96];
			size_t n = 0;
			for (size_t k = 0; k < lb->n_kids && n < 64; k++) {
				const struct cfg_node *l = lb->kids[k];
				if (l->type != CFG_SCALAR || strpbrk(l->key, ",=") || strpbrk(l->value, ",=")) {
					rc = err_set(e, -EINVAL, "%s:%d:%d: label '%s': a plain value without ',' or"
						     " '=' expected", path, l->line, l->col, l->key);
					goto out;
				}
				snprintf(buf[n], sizeof(buf[n]), "%s=%s", l->key, l->value);
				kv[n] = buf[n];
				n++;
			}
			qsort(kv, n, sizeof(kv[0]), cmp_str);
			size_t used = 0;
			for (size_t k = 0; k < n && used < sizeof(rule->labels); k++)
				used += (size_t)snprintf(rule->labels + used, sizeof(rule->labels) - used, "%s%s",
							 k ? "," : "", kv[k]);
		}
		m->n++;
	}
	rc = 0;
out:
	cfg_free(root);
	if (rc)
		mapping_release(m);
	return rc;
}

/* out = labels (sorted "k=v,k=v") with k=v added in its sorted place. */
void mapping_labels_with(char *out, size_t len, const char *labels, const char *k, const char *v)
{
	char copy[512], extra[160];
	const char *kv[65];
	size_t n = 0;
	str_copy(copy, labels, sizeof(copy));
	for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
		kv[n++] = t;
	snprintf(extra, sizeof(extra), "%s=%s", k, v);
	kv[n++] = extra;
	qsort(kv, n, sizeof(kv[0]), cmp_str);
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", kv[i]);
}

void mapping_release(struct mapping *m)
{
	free(m->rules);
	m->rules = NULL;
	m->n = 0;
}

const struct mapping_rule *mapping_match(const struct mapping *m, const char *uuid, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct mapping_rule *r = &m->rules[i];
		if (r->uuid[0] ? !strcasecmp(r->uuid, uuid) : fnmatch(r->name, name, 0) == 0)
			return r;
	}
	return NULL;
}

