/*
 * crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every batch wire frame and spool segment header.
 *
 * It detects every single-bit error and every burst of up to 32 bits, and
 * lets other random damage through with a probability of 2^-32; x86-64
 * (SSE 4.2) and ARMv8 compute it in hardware, which is why it was chosen
 * over zlib's CRC-32 (schemas/batch-wire.md). The software path is
 * slicing-by-8; both give the same result.
 * Check value: crc32c("123456789") = 0xE3069283.
 */
#ifndef TALLY_CRC32C_H
#define TALLY_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[len], continuing from crc (0 for a fresh checksum):
 * crc32c(crc32c(0, a, n), b, m) == crc32c of a followed by b. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The same by tables only, whatever the CPU (tests compare the two). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
