/*
 * exact.h: exact conversions between the ledger's numbers and 128-bit
 * integers, shared by the ledger's queries (ledger/) and billing's money
 * (billing/money.c), so a usage report and an invoice turn a gauge's REAL
 * unit-seconds into the same integer.
 */
#ifndef TALLY_EXACT_H
#define TALLY_EXACT_H

#include <stddef.h>
#include <stdint.h>

/* d x scale, exactly, rounded once half to even, into *out. Returns 0, or
 * -ERANGE when d is not finite, scale <= 0, or the result needs more than
 * 126 bits. */
int exact_double_scaled(double d, int64_t scale, __int128 *out);

/* v in decimal into buf (len >= 42 holds any value); returns buf. */
char *exact_i128_text(__int128 v, char *buf, size_t len);

#endif
