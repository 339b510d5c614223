/*
 * issue.h: issued invoices (docs/architecture.md rule 9).
 *
 * issue_store() gives each invoice the next number of its issuer, renders
 * it as JSON (schemas/invoice.schema.json), hashes that document (SHA-256)
 * and stores plan text, document and hash in the ledger's invoices table,
 * all invoices in ONE transaction: either every one is issued or none. An
 * issued invoice never changes (the ledger's triggers refuse it). A tenant
 * whose period overlaps one already issued is refused, naming that invoice.
 *
 * issue_adjust() brings late usage to account: for every invoice already
 * issued to inv's tenant for a period that ended by inv's start, it rates
 * that period again, with the plan stored with it, against the ledger as it
 * is now; the difference from what was issued, less what later invoices
 * already carried, becomes an adjustment line on inv that names the period
 * and the invoice it corrects. Then inv's totals are recomputed.
 */
#ifndef TALLY_ISSUE_H
#define TALLY_ISSUE_H

#include <stddef.h>
#include <stdint.h>

#include "invoice.h"
#include "plan.h"

struct tally_err;

/* Returns 0; ledger errors as reader.h; -EINVAL when a stored plan no
 * longer parses; message in e. */
int issue_adjust(const char *ledger, struct invoice *inv, const struct plan *p, struct tally_err *e);
/* The same for several invoices at once: each earlier period (and plan) is
 * rated again once, for all of them. */
int issue_adjust_all(const char *ledger, struct invoice *invs, size_t n, const struct plan *p,
		     struct tally_err *e);

/* Issue invs[0..n) under p->issuer at now_ns. Fills each invoice's issuer,
 * number, issued_ns and sha256. The ledger's hash chain is verified first
 * (ledger_verify, ledger/ledger.h). Returns 0; -EBADMSG when the usage
 * is not what was committed, -EEXIST when a tenant's period overlaps an
 * issued invoice (nothing is stored either way); -EIO, -EBUSY; message in
 * e. */
int issue_store(const char *ledger, struct invoice *invs, size_t n, const struct plan *p, int64_t now_ns,
		struct tally_err *e);

/* An issued invoice as stored. */
struct issued {
	int64_t id, number, from_ns, to_ns, issued_ns;
	char issuer[64], tenant[64], sha256[65];
	char currency[4], total[32]; /* issue_list() only: the total as printed */
	char *plan_text;             /* owned: free() */
	char *document;              /* owned: free() */
};

/* Every issued invoice (of tenant, when not NULL), by issuer and number,
 * without plan or document. *out is malloc'd (free() it). 0 or errors as
 * reader.h. */
int issue_list(const char *ledger, const char *tenant, struct issued **out, size_t *n, struct tally_err *e);

/* Find an issued invoice by "NUMBER" (when one issuer) or "ISSUER#NUMBER".
 * Returns 0; -ENOENT (no such invoice), -EINVAL (ambiguous); message in e.
 * The caller frees plan_text and document. */
int issue_find(const char *ledger, const char *which, struct issued *out, struct tally_err *e);

/* "NUMBER" or "ISSUER#NUMBER" (of an invoice or a credit note: what, for
 * the message) into issuer ("" when not given) and *number. 0 or -EINVAL. */
int issue_parse_which(const char *which, const char *what, char issuer[64], int64_t *number, struct tally_err *e);

/* The lowercase hex SHA-256 of len bytes into hex[65]. */
void issue_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
