/*
 * cfg.c: libyaml events -> struct cfg_node tree; typed readers with
 * file:line:col errors (see cfg.h).
 *
 * The readers check the shape of a value before they convert it: strtod and
 * strtoull alone would take hex (0x10), inf, nan, leading spaces or a sign,
 * and a string could carry a CR LF into a URL or a header. Every key gets
 * these checks from its reader, so no caller has to repeat them.
 */
#include "cfg.h"
#include "err.h"
#include "tallytime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 32

struct builder {
	yaml_parser_t parser;
	const char *file;
	struct tally_err *e;
};

static void node_free(struct cfg_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_kids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n->value);
	free(n->file_owned);
	free(n);
}

void cfg_free(struct cfg_node *root)
{
	node_free(root);
}

static int add_kid(struct cfg_node *parent, struct cfg_node *kid)
{
	struct cfg_node **k = realloc(parent->kids, (parent->n_kids + 1) * sizeof(*k));
	if (!k)
		return -ENOMEM;
	parent->kids = k;
	parent->kids[parent->n_kids++] = kid;
	return 0;
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev)) {
		const yaml_mark_t *m = &b->parser.problem_mark, *c = &b->parser.context_mark;
		if (b->parser.context)
			return err_set(b->e, -EINVAL, "%s:%zu:%zu: yaml syntax error: %s %s (begun at"
				       " line %zu, column %zu)", b->file, m->line + 1, m->column + 1,
				       b->parser.problem ? b->parser.problem : "unknown", b->parser.context,
				       c->line + 1, c->column + 1);
		return err_set(b->e, -EINVAL, "%s:%zu:%zu: yaml syntax error: %s", b->file, m->line + 1,
			       m->column + 1, b->parser.problem ? b->parser.problem : "unknown");
	}
	return 0;
}

/* Build the node that starts with event ev (consumed here). */
static int build(struct builder *b, yaml_event_t *ev, int depth, struct cfg_node **out)
{
	struct cfg_node *n = calloc(1, sizeof(*n));
	int rc = 0;

	if (!n) {
		yaml_event_delete(ev);
		return -ENOMEM;
	}
	n->file = b->file;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	if (depth > MAX_DEPTH) {
		rc = err_set(b->e, -EINVAL, "%s:%d:%d: nesting deeper than %d levels", b->file, n->line,
			     n->col, MAX_DEPTH);
		goto out;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		rc = err_set(b->e, -EINVAL, "%s:%d:%d: yaml aliases are not allowed in tally files",
			     b->file, n->line, n->col);
		goto out;
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.anchor) {
			rc = err_set(b->e, -EINVAL, "%s:%d:%d: yaml anchors are not allowed in tally files",
				     b->file, n->line, n->col);
			goto out;
		}
		n->type = CFG_SCALAR;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (!n->value)
			rc = -ENOMEM;
		else if (strlen(n->value) != ev->data.scalar.length)
			rc = err_set(b->e, -EINVAL, "%s:%d:%d: NUL byte in a value", b->file, n->line, n->col);
		goto out;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int is_map = ev->type == YAML_MAPPING_START_EVENT;
		n->type = is_map ? CFG_MAP : CFG_SEQ;
		if ((is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor)) {
			rc = err_set(b->e, -EINVAL, "%s:%d:%d: yaml anchors are not allowed in tally files",
				     b->file, n->line, n->col);
			goto out;
		}
		for (;;) {
			yaml_event_t kev;
			if ((rc = next_event(b, &kev)))
				goto out;
			if (kev.type == YAML_MAPPING_END_EVENT || kev.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&kev);
				break;
			}
			char *key = NULL;
			int kl = 0, kc = 0;
			if (is_map) {
				kl = (int)kev.start_mark.line + 1;
				kc = (int)kev.start_mark.column + 1;
				if (kev.type != YAML_SCALAR_EVENT) {
					yaml_event_delete(&kev);
					rc = err_set(b->e, -EINVAL, "%s:%d:%d: a key must be a plain word",
						     b->file, kl, kc);
					goto out;
				}
				key = strndup((const char *)kev.data.scalar.value, kev.data.scalar.length);
				yaml_event_delete(&kev);
				if (!key) {
					rc = -ENOMEM;
					goto out;
				}
				for (size_t i = 0; i < n->n_kids; i++)
					if (!strcmp(n->kids[i]->key, key)) {
						rc = err_set(b->e, -EINVAL,
							     "%s:%d:%d: key '%s' given twice (first at line %d)",
							     b->file, kl, kc, key, n->kids[i]->key_line);
						free(key);
						goto out;
					}
				if ((rc = next_event(b, &kev))) {
					free(key);
					goto out;
				}
			}
			struct cfg_node *kid = NULL;
			rc = build(b, &kev, depth + 1, &kid);
			if (rc == 0 && (rc = add_kid(n, kid)) != 0)
				node_free(kid);
			if (rc) {
				free(key);
				goto out;
			}
			kid->key = key;
			kid->key_line = is_map ? kl : kid->line;
			kid->key_col = is_map ? kc : kid->col;
		}
		break;
	}
	default:
		rc = err_set(b->e, -EINVAL, "%s:%d:%d: unexpected yaml event", b->file, n->line, n->col);
		goto out;
	}
out:
	yaml_event_delete(ev);
	if (rc) {
		node_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

int cfg_load_string(const char *name, const char *text, size_t len, struct cfg_node **root,
		    struct tally_err *e)
{
	struct builder b = { .e = e };
	yaml_event_t ev;
	char *file = strdup(name);
	int rc = 0;

	*root = NULL;
	if (!file)
		return -ENOMEM;
	b.file = file;
	if (!yaml_parser_initialize(&b.parser)) {
		free(file);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
	/* stream start, document start (or stream end for an empty file) */
	for (;;) {
		if ((rc = next_event(&b, &ev)))
			goto out;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			goto out; /* empty document */
		}
		break;
	}
	if ((rc = build(&b, &ev, 0, root)))
		goto out;
	if ((rc = next_event(&b, &ev)))
		goto out;
	if (ev.type != YAML_DOCUMENT_END_EVENT) {
		rc = err_set(e, -EINVAL, "%s:%zu:%zu: more than one yaml document", file,
			     ev.start_mark.line + 1, ev.start_mark.column + 1);
		yaml_event_delete(&ev);
		goto out;
	}
	yaml_event_delete(&ev);
	if ((rc = next_event(&b, &ev)))
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = err_set(e, -EINVAL, "%s:%zu:%zu: more than one yaml document", file,
			     ev.start_mark.line + 1, ev.start_mark.column + 1);
	yaml_event_delete(&ev);
out:
	yaml_parser_delete(&b.parser);
	if (rc) {
		node_free(*root);
		*root = NULL;
		free(file);
		return rc;
	}
	if (*root)
		(*root)->file_owned = file;
	else
		free(file);
	return 0;
}

int cfg_load_file(const char *path, struct cfg_node **root, struct tally_err *e)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	*root = NULL;
	if (!f)
		return err_set(e, -errno, "%s: cannot open: %s", path, strerror(errno));
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (64u << 20)) {
				fclose(f);
				free(buf);
				return err_set(e, -EFBIG, "%s: larger than 64 MiB", path);
			}
			char *p = realloc(buf, cap);
			if (!p) {
				fclose(f);
				free(buf);
				return -ENOMEM;
			}
			buf = p;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		rc = err_set(e, -EIO, "%s: read error", path);
		fclose(f);
		free(buf);
		return rc;
	}
	fclose(f);
	rc = cfg_load_string(path, buf ? buf : "", len, root, e);
	free(buf);
	return rc;
}

const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key)
{
	if (!map || map->type != CFG_MAP)
		return NULL;
	for (size_t i = 0; i < map->n_kids; i++)
		if (!strcmp(map->kids[i]->key, key))
			return map->kids[i];
	return NULL;
}

static const char *type_name(enum cfg_type t)
{
	return t == CFG_MAP ? "a map" : t == CFG_SEQ ? "a list" : "a single value";
}

int cfg_check_keys(const struct cfg_node *map, const char *section, const char *const *allowed,
		   struct tally_err *e)
{
	if (!map)
		return 0;
	if (map->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: '%s' must be a map of keys, not %s", map->file,
			       map->line, map->col, section, type_name(map->type));
	for (size_t i = 0; i < map->n_kids; i++) {
		const struct cfg_node *k = map->kids[i];
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(*a, k->key))
				ok = 1;
		if (ok)
			continue;
		char known[256] = "";
		size_t used = 0;
		for (const char *const *a = allowed; *a && used < sizeof(known) - 1; a++)
			used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
						 a == allowed ? "" : ", ", *a);
		return err_set(e, -EINVAL, "%s:%d:%d: unknown key '%s' in '%s' (known: %s)", k->file,
			       k->key_line, k->key_col, k->key, section, known);
	}
	return 0;
}

/* The scalar at key, NULL if absent; -EINVAL in *rc if not a scalar. */
static const struct cfg_node *scalar(const struct cfg_node *map, const char *key, const char *what,
				     int *rc, struct tally_err *e)
{
	const struct cfg_node *n = cfg_get(map, key);
	*rc = 0;
	if (n && n->type != CFG_SCALAR) {
		*rc = err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected %s, not %s", n->file, n->line,
			      n->col, key, what, type_name(n->type));
		return NULL;
	}
	return n;
}

/* s past a run of decimal digits (none: s itself) */
static const char *skip_digits(const char *s)
{
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

/* A whole number in decimal: digits only, no sign, no leading zero (YAML 1.1
 * reads 017 as octal, so it would mean 15 to another reader). */
static bool whole_shape(const char *s)
{
	const char *end = skip_digits(s);
	return end != s && !*end && (s[0] != '0' || end == s + 1);
}

/* A decimal number: -?D+(.D+)?([eE][-+]?D+)? (no hex, inf, nan, space, '+'). */
static bool number_shape(const char *s)
{
	const char *p = s + (*s == '-'), *q;
	if ((q = skip_digits(p)) == p)
		return false;
	p = q;
	if (*p == '.' && (q = skip_digits(p + 1)) == p + 1)
		return false;
	if (*p == '.')
		p = q;
	if (*p == 'e' || *p == 'E') {
		p++;
		p += *p == '-' || *p == '+';
		if ((q = skip_digits(p)) == p)
			return false;
		p = q;
	}
	return !*p;
}

/* A duration: D+(.D+)? and a unit or none (duration_parse reads it). */
static bool duration_shape(const char *s)
{
	const char *p = skip_digits(s), *q;
	if (p == s)
		return false;
	if (*p == '.') {
		if ((q = skip_digits(p + 1)) == p + 1)
			return false;
		p = q;
	}
	while (*p >= 'a' && *p <= 'z')
		p++;
	return !*p;
}

/* 0 when a string value is one line of text without a space at either end;
 * else -EINVAL naming the key. A control character (CR, LF, tab, ESC, DEL,
 * C1) would end up in a URL, a header or a log line; a space at an end
 * cannot be seen in the file and makes a token that never matches. */
static int text_check(const struct cfg_node *n, const char *key, struct tally_err *e)
{
	const unsigned char *v = (const unsigned char *)n->value;
	size_t len = strlen(n->value);
	for (size_t i = 0; i < len; i++)
		if (v[i] < 0x20 || v[i] == 0x7f || (v[i] == 0xc2 && v[i + 1] >= 0x80 && v[i + 1] <= 0x9f))
			return err_set(e, -EINVAL, "%s:%d:%d: key '%s': control character 0x%02x at"
				       " character %zu of the value (a value is one line of text)", n->file,
				       n->line, n->col, key, v[i] == 0xc2 ? v[i + 1] : v[i], i + 1);
	if (len && (isspace(v[0]) || isspace(v[len - 1])))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': '%s' %s with a space (remove it: it would be"
			       " part of the value)", n->file, n->line, n->col, key, n->value,
			       isspace(v[0]) ? "begins" : "ends");
	return 0;
}

int cfg_get_map(const struct cfg_node *map, const char *key, const struct cfg_node **out,
		struct tally_err *e)
{
	const struct cfg_node *n = cfg_get(map, key);
	if (!n)
		return 0;
	if (n->type != CFG_MAP) {
		/* "key:" with nothing after it is an empty map */
		if (n->type == CFG_SCALAR && n->value[0] == '\0') {
			*out = NULL;
			return 0;
		}
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a map of keys, not %s", n->file,
			       n->line, n->col, key, type_name(n->type));
	}
	*out = n;
	return 0;
}

int cfg_get_seq(const struct cfg_node *map, const char *key, size_t min, size_t max,
		const struct cfg_node **out, struct tally_err *e)
{
	const struct cfg_node *n = cfg_get(map, key);
	size_t have = 0;
	if (!n)
		return 0;
	if (n->type == CFG_SEQ)
		have = n->n_kids;
	else if (!(n->type == CFG_SCALAR && n->value[0] == '\0'))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a list, not %s", n->file, n->line, n->col,
			       key, type_name(n->type));
	if (have < min || have > max) {
		char most[32] = "";
		if (max != SIZE_MAX)
			snprintf(most, sizeof(most), " to %zu", max);
		return err_set(e, -ERANGE, "%s:%d:%d: key '%s': expected a list of %zu%s items (got %zu)", n->file,
			       n->line, n->col, key, min, max == SIZE_MAX ? " or more" : most, have);
	}
	*out = have ? n : NULL;
	return 0;
}

int cfg_get_string(const struct cfg_node *map, const char *key, char *out, size_t len,
		   struct tally_err *e)
{
	int rc;
	const struct cfg_node *n = scalar(map, key, "a string", &rc, e);
	if (!n)
		return rc;
	if ((rc = text_check(n, key, e)))
		return rc;
	if (strlen(n->value) >= len)
		return err_set(e, -ERANGE, "%s:%d:%d: key '%s': longer than %zu characters", n->file,
			       n->line, n->col, key, len - 1);
	memcpy(out, n->value, strlen(n->value) + 1);
	return 0;
}

int cfg_get_uint(const struct cfg_node *map, const char *key, uint64_t min, uint64_t max,
		 uint64_t *out, struct tally_err *e)
{
	int rc;
	const struct cfg_node *n = scalar(map, key, "a whole number", &rc, e);
	if (!n)
		return rc;
	if (!whole_shape(n->value))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a whole number in decimal"
			       " digits (got '%s')", n->file, n->line, n->col, key, n->value);
	errno = 0;
	unsigned long long v = strtoull(n->value, NULL, 10);
	if (errno == ERANGE || v < min || v > max)
		return err_set(e, -ERANGE, "%s:%d:%d: key '%s': %s is out of range %llu..%llu", n->file,
			       n->line, n->col, key, n->value, (unsigned long long)min,
			       (unsigned long long)max);
	*out = v;
	return 0;
}

int cfg_get_double(const struct cfg_node *map, const char *key, double min, double max,
		   double *out, struct tally_err *e)
{
	int rc;
	const struct cfg_node *n = scalar(map, key, "a number", &rc, e);
	if (!n)
		return rc;
	if (!number_shape(n->value))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a decimal number like 2.5"
			       " (got '%s')", n->file, n->line, n->col, key, n->value);
	errno = 0;
	double v = strtod(n->value, NULL);
	/* -0 passes a `>= 0` check and then reads as 0, which often means "off" */
	if (v == 0 && signbit(v))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': '%s' is a negative zero (write 0 if"
			       " 0 is meant)", n->file, n->line, n->col, key, n->value);
	if (errno == ERANGE || !isfinite(v) || v < min || v > max)
		return err_set(e, -ERANGE, "%s:%d:%d: key '%s': %s is out of range %g..%g", n->file,
			       n->line, n->col, key, n->value, min, max);
	*out = v;
	return 0;
}

int cfg_get_bool(const struct cfg_node *map, const char *key, bool *out, struct tally_err *e)
{
	int rc;
	const struct cfg_node *n = scalar(map, key, "true or false", &rc, e);
	if (!n)
		return rc;
	if (!strcmp(n->value, "true") || !strcmp(n->value, "yes") || !strcmp(n->value, "on"))
		*out = true;
	else if (!strcmp(n->value, "false") || !strcmp(n->value, "no") || !strcmp(n->value, "off"))
		*out = false;
	else
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected true or false (got '%s')",
			       n->file, n->line, n->col, key, n->value);
	return 0;
}

int cfg_get_duration(const struct cfg_node *map, const char *key, int64_t min_ns, int64_t max_ns,
		     int64_t *out_ns, struct tally_err *e)
{
	int rc;
	struct tally_err sub = { 0 };
	const struct cfg_node *n = scalar(map, key, "a duration", &rc, e);
	if (!n)
		return rc;
	int64_t v;
	if (!duration_shape(n->value) || duration_parse(n->value, &v, &sub))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a duration like 10s (got '%s')",
			       n->file, n->line, n->col, key, n->value);
	if (v < min_ns || v > max_ns) {
		char lo[32], hi[32];
		snprintf(lo, sizeof(lo), "%gs", (double)min_ns / 1e9);
		snprintf(hi, sizeof(hi), "%gs", (double)max_ns / 1e9);
		return err_set(e, -ERANGE, "%s:%d:%d: key '%s': %s is out of range %s..%s", n->file,
			       n->line, n->col, key, n->value, lo, hi);
	}
	*out_ns = v;
	return 0;
}

int cfg_get_time(const struct cfg_node *map, const char *key, int64_t *out_ns, struct tally_err *e)
{
	int rc;
	struct tally_err sub = { 0 };
	const struct cfg_node *n = scalar(map, key, "a time", &rc, e);
	if (!n)
		return rc;
	int64_t s, t;
	const char *unix_s = n->value[0] == '@' ? n->value + 1 + (n->value[1] == '-') : NULL;
	if (unix_s && (!*unix_s || *skip_digits(unix_s)))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected @ and decimal Unix seconds"
			       " (got '%s')", n->file, n->line, n->col, key, n->value);
	if (time_parse_range(n->value, &s, &t, &sub))
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': %s", n->file, n->line, n->col, key,
			       sub.msg);
	*out_ns = s;
	return 0;
}

int cfg_get_enum(const struct cfg_node *map, const char *key, const char *const *choices, int *out,
		 struct tally_err *e)
{
	int rc;
	const struct cfg_node *n = scalar(map, key, "a word", &rc, e);
	if (!n)
		return rc;
	char list[256] = "";
	size_t used = 0;
	for (int i = 0; choices[i]; i++) {
		if (!strcmp(choices[i], n->value)) {
			*out = i;
			return 0;
		}
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 choices[i]);
		if (used >= sizeof(list))
			used = sizeof(list) - 1;
	}
	return err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected one of %s (got '%s')", n->file,
		       n->line, n->col, key, list, n->value);
}
