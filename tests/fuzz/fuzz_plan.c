/*
 * fuzz_plan: libFuzzer target for the rate plan parser (billing/plan.c): any
 * bytes as a plan must load or be refused with messages, never crash, leak
 * or read out of bounds; a plan that loads is then asked for every
 * version, tenant and selector the way rating asks.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plan p;
	struct plan_errors errs;
	if (plan_load_text("fuzz.yaml", (const char *)data, size, &p, &errs) == 0) {
		const struct plan_attrs a = { .flavor = "m1.small", .labels = "region=eu,flavor=m1.small" };
		for (size_t v = 0; v < p.n_versions; v++)
			for (size_t i = 0; i < p.versions[v].n_prices; i++)
				plan_select(p.versions[v].prices[i].sel_key, p.versions[v].prices[i].sel_val,
					    p.versions[v].prices[i].n_sel, &a);
		for (int i = 0; i < p.n_sla; i++)
			plan_select(p.sla[i].sel_key, p.sla[i].sel_val, p.sla[i].n_sel, &a);
		plan_version_at(&p, 0);
		plan_tenant_find(&p, "acme");
		plan_release(&p);
	}
	return 0;
}
