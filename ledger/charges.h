/*
 * charges.h: one-off charges and credits per tenant and period
 * (schemas/migrations/010-charges.sql; `tally charge`), in the ledger
 * beside the issued invoices and written like them: append-only rows, in
 * transactions of their own, without the writer's lock. All the SQL of
 * charges is here, so another backend implements this header.
 *
 * Functions return 0, or -ENOENT/-EINVAL/-EPROTO (the file, as
 * ledger_ro.h), -EBUSY, -ENOSPC, -EIO with a message in e; a callback's
 * nonzero return is returned at once. Strings are borrowed until the
 * callback returns.
 */
#ifndef TALLY_LEDGER_CHARGES_H
#define TALLY_LEDGER_CHARGES_H

#include <stdint.h>

struct tally_err;

struct ledger_charge {
	int64_t id;
	const char *tenant, *description, *amount, *currency;
	int64_t from_ns, to_ns, added_ns;
};
typedef int (*ledger_charge_fn)(void *ctx, const struct ledger_charge *c);

/* Append c (its id ignored; the new one into *id) unless tenant's
 * from_ns is in the period of an issued invoice that no credit note
 * cancels: then -EEXIST, naming that invoice in e. One transaction. */
int ledger_charges_add(const char *path, const struct ledger_charge *c, int64_t *id, struct tally_err *e);

/* The charges (of tenant, when not NULL) whose from_ns is in [from_ns,
 * to_ns), by tenant and id. */
int ledger_charges_read(const char *path, const char *tenant, int64_t from_ns, int64_t to_ns, ledger_charge_fn fn,
			void *ctx, struct tally_err *e);

#endif
