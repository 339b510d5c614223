/*
 * fuzz_httpgate: libFuzzer target for the request-head scanner of the HTTP
 * accept loop (exporters/httpgate.c): any bytes, as the first bytes of a
 * connection, get a verdict without reading out of bounds, and a complete
 * head is a prefix of the input ending in a line feed, within the limits.
 * The same bytes are scanned again with a byte more at a time: a verdict
 * other than "more" on a prefix never turns into "complete" later (the
 * gate acts on the first one it gets). The TLS listener's scanner of a
 * ClientHello record likewise.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "httpgate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct httpgate_limits l = { .max_head = 512, .max_target = 128, .max_args = 8,
						  .max_fields = 16 };
	size_t n = size > l.max_head + 1 ? l.max_head + 1 : size, hl = 0;
	enum httpgate_verdict first = HTTPGATE_MORE;
	for (size_t k = 0; k <= n; k++) {
		enum httpgate_verdict v = httpgate_scan((const char *)data, k, &l, &hl);
		if (v == HTTPGATE_COMPLETE && (hl == 0 || hl > k || hl > l.max_head || data[hl - 1] != '\n'))
			abort();
		if (first == HTTPGATE_MORE)
			first = v;
		else if (first != HTTPGATE_COMPLETE && v == HTTPGATE_COMPLETE)
			abort();
	}
	/* the TLS scanner: a whole record is a prefix of the input, within
	 * the limit, and a refusal is never followed by a completion */
	first = HTTPGATE_MORE;
	n = size > HTTPGATE_TLS_RECORD_MAX ? HTTPGATE_TLS_RECORD_MAX : size;
	for (size_t k = 0; k <= n; k++) {
		enum httpgate_verdict v = httpgate_scan_tls(data, k, &hl);
		if (v == HTTPGATE_COMPLETE && (hl < 6 || hl > k || hl > HTTPGATE_TLS_RECORD_MAX || data[0] != 22))
			abort();
		if (first == HTTPGATE_MORE)
			first = v;
		else if (first != v)
			abort();   /* a whole record stays whole, a refusal stays one */
	}
	return 0;
}
