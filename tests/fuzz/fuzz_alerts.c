/*
 * fuzz_alerts: libFuzzer target for the `alerts:` section of tallyd's config
 * (aggregator/alertcfg.c): any bytes as a config must parse into rules or
 * be refused with a message, never crash, leak or read out of bounds; the
 * label lists of a config that parses are then read back the way the
 * engine reads them.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>

#include "alerting.h"
#include "cfg.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct alerting_config c;   /* 80 KiB: not on the stack */
	struct cfg_node *root = NULL;
	struct tally_err e = { 0 };
	if (cfg_load_string("fuzz.yaml", (const char *)data, size, &root, &e) || !root)
		return 0;
	if (alerting_config_parse(&c, cfg_get(root, "alerts"), 10000000000LL, &e) == 0) {
		char v[64];
		for (size_t i = 0; i < c.n_rules; i++) {
			alert_label(c.rules[i].labels, "team", v, sizeof(v));
			alert_label(c.rules[i].annotations, "summary", v, sizeof(v));
		}
	}
	cfg_free(root);
	return 0;
}
