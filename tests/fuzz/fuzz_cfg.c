/*
 * fuzz_cfg: libFuzzer target for the config parser (common/cfg.c): any
 * bytes as a YAML file must give a tree or an error, never a crash, a leak
 * or a read out of bounds. Then every typed reader runs on every node.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "err.h"

static void walk(const struct cfg_node *n, int depth)
{
	struct tally_err e;
	uint64_t u;
	double d;
	bool b;
	int64_t t;
	char s[32];
	int k;
	static const char *const any[] = { "a", "b", NULL };
	if (!n || depth > 40)
		return;
	if (n->type == CFG_MAP) {
		cfg_check_keys(n, "x", any, &e);
		for (size_t i = 0; i < n->n_kids; i++) {
			const char *key = n->kids[i]->key;
			cfg_get_uint(n, key, 0, 1000, &u, &e);
			cfg_get_double(n, key, -1, 1, &d, &e);
			cfg_get_bool(n, key, &b, &e);
			cfg_get_duration(n, key, 0, INT64_MAX, &t, &e);
			cfg_get_time(n, key, &t, &e);
			cfg_get_string(n, key, s, sizeof(s), &e);
			cfg_get_enum(n, key, any, &k, &e);
		}
	}
	for (size_t i = 0; i < n->n_kids; i++)
		walk(n->kids[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_node *root = NULL;
	struct tally_err e;
	if (cfg_load_string("fuzz.yaml", (const char *)data, size, &root, &e) == 0) {
		walk(root, 0);
		cfg_free(root);
	}
	return 0;
}
