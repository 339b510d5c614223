/*
 * explain.h: `tally invoice explain`: which ledger rows (resource, device,
 * hour, quantity) make up one usage line of an invoice, and how its amount
 * follows from them: the exact sum, the free allowance, each tier or block
 * with its price, the exact amount and its one rounding.
 *
 * For a draft the line is found by its number in the invoice built now. For
 * an issued invoice it is the line of that number in the stored document,
 * found again in an invoice rebuilt with the stored plan by its description
 * and selector; when the ledger now gives another amount (late usage), both
 * are shown and the difference is the adjustment a later invoice carries.
 */
#ifndef TALLY_EXPLAIN_H
#define TALLY_EXPLAIN_H

#include <stdio.h>

#include "invoice.h"
#include "plan.h"

struct tally_err;

struct explain_query {
	const char *ledger;
	const char *tenant;
	int64_t from_ns, to_ns;
	int line;                    /* 1-based, as printed */
	const char *issued_doc;      /* the stored JSON of an issued invoice, or NULL for a draft */
};

/* Print the explanation to f. Returns 0; -EINVAL (no such line), -ESRCH
 * (the tenant has no invoice), ledger errors; message in e. */
int explain_line(FILE *f, const struct explain_query *q, const struct plan *p, struct tally_err *e);

#endif
