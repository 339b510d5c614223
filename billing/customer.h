/*
 * customer.h: who an invoice is from and to.
 *
 * The issuer's details (legal name, address, VAT and tax IDs, email, how
 * to pay, default payment terms, number prefixes) are the rate plan's
 * `issuer:` map (schemas/plan.md); each tenant's billing details (legal
 * name, address, VAT ID, email, currency, tax treatment and the note the
 * law requires with it, payment terms, a purchase-order reference) are a
 * customers file keyed by tenant (schemas/customers.md). Both are parsed
 * once into the typed structs below; every mistake is reported as
 * "file:line:col: what" naming the key, all of them in one pass, as the
 * plan's are.
 *
 * invoice_apply_customers() (invoice.h) puts them on built invoices.
 *
 * A struct customers owns its array; customers_release() frees it.
 */
#ifndef TALLY_CUSTOMER_H
#define TALLY_CUSTOMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plan_errors;
struct cfg_node;
struct tally_err;

#define PARTY_MAX_LINES 6            /* address lines, payment lines */

/* One side of an invoice, as printed. */
struct party {
	char name[128];                  /* legal name */
	char address[PARTY_MAX_LINES][128];
	int n_address;
	char vat_id[32];                 /* VAT identification number */
	char tax_id[64];                 /* another tax or registration number */
	char email[128];
};

enum tax_treatment {
	TAX_DOMESTIC = 0,                /* the plan's taxes apply */
	TAX_REVERSE_CHARGE,              /* no tax: the customer accounts for it (needs its VAT ID) */
	TAX_EXEMPT,                      /* no tax: the exemption's legal basis is the note */
};

/* The issuer: the plan's `issuer:` (a name alone, or a map). */
struct issuer {
	char series[64];                 /* numbering series: the plan's issuer name */
	struct party party;              /* party.name "" when the plan gives a name only */
	char payment[PARTY_MAX_LINES][128]; /* how to pay: bank account lines */
	int n_payment;
	int payment_days;                /* default payment terms, days (30) */
	char invoice_prefix[32];         /* printed before an invoice's number ("") */
	char credit_prefix[32];          /* before a credit note's number ("CN-") */
};

struct customer {
	char tenant[64];
	struct party party;
	char currency[4];                /* "" : the plan's */
	enum tax_treatment tax;
	char tax_note[256];              /* printed on the invoice ("" for domestic without one) */
	int payment_days;                /* net days; -1: the issuer's */
	char reference[64];              /* the customer's purchase order or reference */
	int line, col;                   /* where its entry starts */
};

struct customers {
	struct customer *v;              /* sorted by tenant */
	size_t n;
	char path[256];                  /* the file, for messages */
};

/* The note a tax treatment prints when the customer gives none. */
const char *customer_tax_note_default(enum tax_treatment t);
/* "domestic", "reverse-charge", "exempt". */
const char *customer_tax_name(enum tax_treatment t);

/* The map n as a party (keys name, address, vat_id, tax_id, email, and
 * the extra keys allowed in extra, NULL-terminated, which the caller
 * reads), mistakes into errs under section (for messages). 0 or -EINVAL. */
int party_parse(const struct cfg_node *n, const char *section, const char *const *extra, struct party *out,
		struct plan_errors *errs);

/* A mistake at node n (NULL: the file, named path) into errs. */
void plan_errors_add(struct plan_errors *errs, const char *path, const struct cfg_node *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A cfg reader's message (it has its place) into errs when rc != 0; returns rc. */
int plan_errors_keep(struct plan_errors *errs, int rc, const struct tally_err *e);

/* 0 when the file is good; -EINVAL with the mistakes in errs; -ENOENT and
 * others for an unreadable file (one message in errs). */
int customers_load(const char *path, struct customers *out, struct plan_errors *errs);
/* The same from text in memory; path names it in messages. */
int customers_load_text(const char *path, const char *text, size_t len, struct customers *out,
			struct plan_errors *errs);
void customers_release(struct customers *c);
const struct customer *customers_find(const struct customers *c, const char *tenant);

#endif
