/*
 * cfg.h: a YAML document as a tree of nodes that remember where they were
 * written, and typed readers whose errors name that place.
 *
 * The whole file is parsed once (libyaml) into struct cfg_node; the program
 * then reads it into its own typed structs with the cfg_get_* functions,
 * calling cfg_check_keys() first on every map so unknown keys are errors.
 * Every error message starts with "FILE:LINE:COL: " (1-based) and names the
 * key, for example
 *   tally.yaml:4:13: key 'interval': expected a duration like 10s (got 'fast')
 * Anchors, aliases and tags are refused: a config is plain data.
 *
 * The tree owns all its strings; cfg_free() releases it. Nodes are valid
 * until then. This is the one file in common/ that uses a library (libyaml).
 */
#ifndef TALLY_CFG_H
#define TALLY_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tally_err;

enum cfg_type { CFG_SCALAR, CFG_MAP, CFG_SEQ };

struct cfg_node {
	enum cfg_type type;
	const char *file;          /* shared, owned by the root */
	int line, col;             /* where the value starts, 1-based */
	int key_line, key_col;     /* where the key starts (map members) */
	char *key;                 /* for a member of a map, else NULL */
	char *value;               /* for a scalar, else NULL */
	bool plain;                /* a scalar written without quotes (in JSON: a number, true, false or null) */
	struct cfg_node **kids;    /* members of a map or items of a sequence */
	size_t n_kids;
	char *file_owned;          /* root only */
};

/* Parse; *root is NULL for an empty document. Returns 0, -ENOENT/-EACCES
 * (file), -EINVAL (syntax, with file:line:col in e) or -ENOMEM. */
int cfg_load_file(const char *path, struct cfg_node **root, struct tally_err *e);
int cfg_load_string(const char *name, const char *text, size_t len,
		    struct cfg_node **root, struct tally_err *e);
void cfg_free(struct cfg_node *root);

/* The member of a map with this key, or NULL. */
const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key);

/* -EINVAL if map is not a map or has a key not in allowed (NULL-terminated):
 * "f:3:5: unknown key 'intervall' in 'tallyd' (known: role, interval, ...)". */
int cfg_check_keys(const struct cfg_node *map, const char *section,
		   const char *const *allowed, struct tally_err *e);

/* Typed readers. Each looks up key in map; when the key is absent they
 * return 0 and leave *out alone (so callers preset the default). A present
 * value of the wrong type or out of range is -EINVAL / -ERANGE. The shapes
 * they take, and nothing else (no hex, octal, inf, nan, sign or space
 * where these do not show one):
 *   uint      decimal digits without a leading zero: 0, 17, 65535
 *   double    -?D+(.D+)?(e[-+]?D+)?, never -0: 2.5, -1, 1e-3
 *   duration  D+(.D+)? and a unit ns us ms s m h d, or none (seconds)
 *   time      a date or date-time of tallytime.h, or @ and Unix seconds
 *   string    one line: no control character (CR, LF, tab, DEL, C1) and
 *             no space at either end */
int cfg_get_map(const struct cfg_node *map, const char *key, const struct cfg_node **out,
		struct tally_err *e);
/* A list of min..max items (*out NULL and *n 0 for "key:" with nothing
 * after it, when min is 0): anything else at key is -EINVAL naming it. */
int cfg_get_seq(const struct cfg_node *map, const char *key, size_t min, size_t max,
		const struct cfg_node **out, struct tally_err *e);
int cfg_get_string(const struct cfg_node *map, const char *key, char *out, size_t len,
		   struct tally_err *e);
int cfg_get_uint(const struct cfg_node *map, const char *key, uint64_t min, uint64_t max,
		 uint64_t *out, struct tally_err *e);
int cfg_get_double(const struct cfg_node *map, const char *key, double min, double max,
		   double *out, struct tally_err *e);
int cfg_get_bool(const struct cfg_node *map, const char *key, bool *out, struct tally_err *e);
int cfg_get_duration(const struct cfg_node *map, const char *key, int64_t min_ns, int64_t max_ns,
		     int64_t *out_ns, struct tally_err *e);
/* A time (the start of the span it names, see tallytime.h). */
int cfg_get_time(const struct cfg_node *map, const char *key, int64_t *out_ns, struct tally_err *e);
/* One of choices (NULL-terminated); *out is its index. */
int cfg_get_enum(const struct cfg_node *map, const char *key, const char *const *choices,
		 int *out, struct tally_err *e);

#endif
