/*
 * fuzz_import: libFuzzer target for usage events (aggregator/
 * import_parse.c): the first byte picks CSV, JSON or the body of POST
 * /api/v1/events (jansson), the rest is the file or body;
 * it must parse or be refused with a message, never crash, leak or read
 * out of bounds, and every event that parses must hold the promises the
 * booking relies on (a known custom meter, end >= time, no negative
 * quantity but a delta's). Custom meters as config/demo.yaml declares
 * them. Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "err.h"
#include "import.h"
#include "meter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int defined;
	if (!defined) {
		meter_define("storage.objects.size", SAMPLE_GAUGE, "B", "Object storage");
		meter_define("api.calls", SAMPLE_CUMULATIVE, "request", "API calls");
		meter_define("support.minutes", SAMPLE_DELTA, "minute", "Support");
		defined = 1;
	}
	if (size < 1)
		return 0;
	struct import_batch b = { 0 };
	struct tally_err e = { 0 };
	struct import_fault f;
	char source[64];
	int rc = data[0] & 2 ? import_parse_request((const char *)data + 1, size - 1, 1000, source, sizeof(source), &b,
						  &f, &e)
		 : import_parse_text("fuzz", (const char *)data + 1, size - 1, data[0] & 1 ? "json" : "csv", &b, &e);
	if (rc && !e.msg[0])
		abort();   /* every refusal says why */
	if (rc == 0) {
		for (size_t i = 0; i < b.n; i++) {
			const struct import_event *ev = &b.v[i];
			const struct meter_def *md = meter_get(ev->meter);
			if (!md || ev->meter < METER_COUNT || ev->end_ns < ev->time_ns ||
			    (ev->quantity < 0 && md->kind != SAMPLE_DELTA) ||
			    (md->kind == SAMPLE_GAUGE && ev->end_ns == ev->time_ns))
				abort();
		}
	}
	import_batch_release(&b);
	return 0;
}
