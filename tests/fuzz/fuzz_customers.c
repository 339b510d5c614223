/*
 * fuzz_customers: libFuzzer target for the customers file (billing/
 * customer.c): any bytes as a customers file must load or be refused with
 * messages, never crash, leak or read out of bounds; a file that loads is
 * then searched the way invoicing searches it. Build and run: make fuzz
 * (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>

#include "customer.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct customers c;
	struct plan_errors errs;
	if (customers_load_text("fuzz.yaml", (const char *)data, size, &c, &errs) == 0) {
		for (size_t i = 0; i < c.n; i++)
			customers_find(&c, c.v[i].tenant);
		customers_find(&c, "acme");
		customers_release(&c);
	}
	return 0;
}
