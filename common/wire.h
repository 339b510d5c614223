/*
 * wire.h: the batch wire format, version 1: a struct batch as one
 * self-delimiting, checksummed binary frame (schemas/batch-wire.md says
 * every byte, the limits and why).
 *
 * The same frames are the records of the agent's spool (daemon/spool.h) and
 * the body of POST /api/v1/ingest (several frames back to back), so a batch
 * is encoded once, when it is spooled, and sent as it is.
 *
 * Contract:
 * - wire_encode() appends exactly one frame to a buffer, or nothing (an
 *   error leaves the buffer as it was).
 * - wire_decode() turns one whole frame into a batch or refuses it with a
 *   reason; a refused frame leaves the batch empty (never partly filled).
 *   Every byte string of the frame format is either refused or decodes to a
 *   batch that encodes back to the same bytes, except for the string table,
 *   whose unused or repeated entries are not refused.
 * - Meters travel by name. A sample whose meter name this build does not
 *   know is left out of the batch and counted in struct wire_info, with the
 *   first few names: whether such a batch is taken or refused is the
 *   caller's (the aggregator's) decision, documented in the schema.
 * - Counts and lengths are bounded by the WIRE_MAX_* limits below, checked
 *   against the bytes present before anything is allocated, so a small
 *   hostile frame cannot make the decoder allocate much.
 */
#ifndef TALLY_WIRE_H
#define TALLY_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "err.h"

#define WIRE_VERSION      1
#define WIRE_MAGIC        "TLYB"          /* 54 4C 59 42 */
#define WIRE_PREAMBLE     12              /* magic, version, flags, reserved, body length */
#define WIRE_OVERHEAD     16              /* preamble + CRC-32C trailer */
#define WIRE_MAX_BODY     (16u << 20)     /* bytes of one frame's body */
#define WIRE_MAX_SAMPLES  262144u
#define WIRE_MAX_METAS    65536u
#define WIRE_MAX_EVENTS   65536u
#define WIRE_MAX_STRINGS  1048576u        /* string table entries */
#define WIRE_MAX_STRING   511u            /* bytes of one string (labels is the longest field) */
#define WIRE_SPOOL_ID_LEN 16
#define WIRE_UNKNOWN_MAX  8               /* unknown meter names reported per frame */

/* A growable byte buffer; owns p. */
struct wire_buf {
	uint8_t *p;
	size_t len, cap;
};

void wire_buf_release(struct wire_buf *w);
/* Make room for n more bytes: 0 or -ENOMEM. */
int wire_buf_reserve(struct wire_buf *w, size_t n);

/* Where a frame comes from besides its agent: the spool that holds it
 * (its 16-byte random id and the first seq it ever wrote). An all-zero id
 * with first_seq 0 means "not from a spool" (tests, in-process). */
struct wire_origin {
	uint8_t spool_id[WIRE_SPOOL_ID_LEN];
	uint64_t spool_first_seq;
};

/* The fixed head of a frame, read without decoding its records. */
struct wire_head {
	char agent[TALLY_ID_MAX];
	struct wire_origin origin;
	uint64_t seq;
	int64_t time_ns;
	size_t frame_len;               /* bytes of the whole frame, preamble to CRC */
};

/* What wire_decode() noticed besides the batch. */
struct wire_info {
	struct wire_head head;
	uint64_t unknown_samples;       /* samples left out: meter name unknown here */
	size_t n_unknown;               /* distinct unknown names below (at most WIRE_UNKNOWN_MAX) */
	char unknown[WIRE_UNKNOWN_MAX][TALLY_ID_MAX];
};

/* Reusable encoder state (a string table hash); owned by one thread. */
struct wire_enc {
	struct wire_str { const char *s; uint32_t len, hash; } *str;
	size_t n_str, cap_str;
	uint32_t *slot;                 /* open addressing: index + 1, 0 = empty */
	size_t n_slot;                  /* power of two */
	struct wire_buf strings, records;
};

void wire_enc_init(struct wire_enc *w);
void wire_enc_release(struct wire_enc *w);

/* Is s a sample this format can carry (known meter and kind, only known
 * flags, non-empty terminated resource, terminated device)? The encoder
 * refuses a batch holding one that is not; the spool leaves such samples
 * out first, as the aggregator's ingest would. */
int wire_sample_ok(const struct sample *s);

/* Append one frame for b (o may be NULL) to out. 0, -EINVAL (a field the
 * format cannot carry, named in e), -E2BIG (over a WIRE_MAX_* limit) or
 * -ENOMEM; on error out is unchanged. */
int wire_encode(struct wire_enc *w, const struct batch *b, const struct wire_origin *o,
		struct wire_buf *out, struct tally_err *e);

/* Check the frame at buf[len]: preamble, length, CRC, and the head fields.
 * 0 and *h filled; -ENODATA when buf holds only the start of a frame
 * (fewer than h->frame_len bytes, or a partial preamble); -EBADMSG when it
 * is no valid frame (e says why). */
int wire_check(const uint8_t *buf, size_t len, struct wire_head *h, struct tally_err *e);

/* Decode the one frame at the start of buf[len] into b (emptied first; its
 * memory is reused). 0 with info filled (info may be NULL), or -ENODATA /
 * -EBADMSG as wire_check, -E2BIG over a limit, -ENOMEM; b is empty then. */
int wire_decode(const uint8_t *buf, size_t len, struct batch *b, struct wire_info *info,
		struct tally_err *e);

#endif
