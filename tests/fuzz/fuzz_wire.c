/*
 * fuzz_wire: libFuzzer target for the batch wire decoder (common/wire.c,
 * schemas/batch-wire.md). Any bytes are decoded twice: as they are (a
 * stream of frames, split by wire_check as the ingest endpoint will), and
 * as the body of a frame whose preamble and CRC-32C the target writes, so
 * the fuzzer reaches the body parser instead of bouncing off the checksum.
 * A frame that decodes must encode again, and that encoding must decode
 * to the same batch and encode to the same bytes (a fixed point): no
 * crash, leak, read out of bounds, or batch the encoder cannot carry.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crc32c.h"
#include "err.h"
#include "wire.h"

static struct wire_enc enc;
static struct batch b1, b2;
static struct wire_buf f1, f2, framed;

static void round_trip(const uint8_t *p, size_t n)
{
	struct tally_err e;
	struct wire_info info;
	if (wire_decode(p, n, &b1, &info, &e)) {
		if (b1.n_samples || b1.n_metas || b1.n_events)
			abort();        /* a refused frame leaves no partial batch */
		return;
	}
	f1.len = f2.len = 0;
	if (wire_encode(&enc, &b1, &info.head.origin, &f1, &e))
		abort();
	if (wire_decode(f1.p, f1.len, &b2, NULL, &e))
		abort();
	if (b1.n_samples != b2.n_samples || b1.n_metas != b2.n_metas || b1.n_events != b2.n_events ||
	    b1.seq != b2.seq || b1.time_ns != b2.time_ns || strcmp(b1.agent, b2.agent))
		abort();
	if (wire_encode(&enc, &b2, &info.head.origin, &f2, &e) || f1.len != f2.len ||
	    memcmp(f1.p, f2.p, f1.len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tally_err e;
	struct wire_head h;

	/* as a stream of frames */
	size_t off = 0;
	while (off < size) {
		int rc = wire_check(data + off, size - off, &h, &e);
		if (rc)
			break;
		if (h.frame_len < WIRE_OVERHEAD || h.frame_len > size - off)
			abort();
		round_trip(data + off, h.frame_len);
		off += h.frame_len;
	}
	round_trip(data, size);

	/* as the body of a well-formed frame */
	if (size <= WIRE_MAX_BODY) {
		framed.len = 0;
		if (wire_buf_reserve(&framed, size + WIRE_OVERHEAD))
			return 0;
		uint8_t *f = framed.p;
		memcpy(f, "TLYB\x01\x00\x00\x00", 8);
		for (int i = 0; i < 4; i++)
			f[8 + i] = (uint8_t)(size >> (8 * i));
		memcpy(f + 12, data, size);
		uint32_t c = crc32c(0, f, 12 + size);
		for (int i = 0; i < 4; i++)
			f[12 + size + i] = (uint8_t)(c >> (8 * i));
		round_trip(f, size + WIRE_OVERHEAD);
	}
	return 0;
}
