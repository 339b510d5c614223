/*
 * fuzz_mapping: libFuzzer target for the tenant mapping file
 * (collectors/mapping.c). The bytes are the file: it loads, or is refused
 * with a message naming file:line:col; a file that loads is matched
 * against a few uuids and names (shell patterns from the input go to
 * fnmatch), and its labels go through mapping_labels_with. Never a crash,
 * a leak or a read outside the buffer.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mapping.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const uuids[] = { "6b0f3c2a-0000-4000-8000-000000000001", "", "*" };
	static const char *const names[] = { "web-1", "", "[a-z]*", "db-primary" };
	struct mapping m;
	struct tally_err e = { 0 };

	if (mapping_load_text("fuzz.yaml", (const char *)data, size, &m, &e)) {
		if (!e.msg[0])
			abort();   /* a refusal always says why */
		return 0;
	}
	for (size_t u = 0; u < sizeof(uuids) / sizeof(uuids[0]); u++)
		for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
			const struct mapping_rule *r = mapping_match(&m, uuids[u], names[n]);
			if (r) {
				char out[512];
				mapping_labels_with(out, sizeof(out), r->labels, "source", "mapping");
				if (!memchr(out, '\0', sizeof(out)))
					abort();
			}
		}
	mapping_release(&m);
	return 0;
}
