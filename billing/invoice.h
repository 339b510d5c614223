/*
 * invoice.h: invoices from rated usage (rate.h) and a rate plan.
 *
 * invoice_build() turns the accumulators of one tenant into lines, each
 * rounded once to the currency's minor unit (docs/architecture.md rule 8):
 *   usage     one per (plan version in force, price): the quantity in the
 *             billing unit, the price or tiers, the amount, and how complete
 *             the data behind it is (covered / spanned seconds);
 *   fee       each recurring fee of the version in force at the start of the
 *             tenant's part of the period, prorated by days when the plan
 *             says so;
 *   discount  the tenant's percentage of the sum of its usage lines;
 *   minimum   a true-up to the minimum commitment when usage (after the
 *             discount) is below it;
 *   charge    each one-off charge or credit of the tenant for the period
 *             (tally charge, ledger/charges.h), as given;
 *   credit    when the plan has an SLA (sla.h): per VM below its target
 *             with a credit, that share of the VM's charges (its part of
 *             each usage line, by quantity), naming its incidents.
 * subtotal = the sum of the lines; each tax is computed on the subtotal and
 * rounded once; total = subtotal + taxes. Usage no price of the plan
 * matched, for a meter the plan does price, is listed as a note rather
 * than billed as nothing without a word.
 *
 * The same ledger and plan always give the same invoice: lines come in a
 * fixed order (group, version, the plan's order of prices) and nothing
 * depends on the order rows were read.
 *
 * A struct invoice owns its arrays; invoice_release() frees them.
 */
#ifndef TALLY_INVOICE_H
#define TALLY_INVOICE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "customer.h"
#include "plan.h"
#include "rate.h"

struct tally_err;

enum invoice_line_type { INV_USAGE, INV_FEE, INV_DISCOUNT, INV_MINIMUM, INV_ADJUSTMENT, INV_CREDIT, INV_CHARGE };

struct invoice_line {
	enum invoice_line_type type;
	const char *group;           /* "compute", "storage", "network", "other", "fees", "charges", "credits",
				      * "adjustments" */
	char description[192];
	int meter;                   /* enum meter_id; -1 for fees and adjustments */
	char selector[192];          /* "flavor=m1.small", "" */
	char unit[48];               /* billing unit, "" when the line has no quantity */
	char unit_human[48];         /* how a customer reads it ("1,000 requests") */
	int places;                  /* decimals the quantity is shown with (display only) */
	int64_t from_ns, to_ns;      /* the part of the period the line prices */
	struct rate_calc calc;       /* quantity, tiers, amount (usage lines) */
	int64_t price_nanos;         /* per unit or block; 0 for tiers */
	bool tiered;
	enum plan_model model;       /* usage lines: how the price makes the amount */
	int64_t block_nanos;         /* block pricing: units per block x 10^9 */
	int64_t amount_minor;
	int64_t covered_ns, spanned_ns;
	int64_t rows;                /* ledger rows behind the line */
	__int128 qty;                /* usage: the ledger quantity (rate.h units) */
	struct rate_key key;         /* version, override, price of a usage line */
	int64_t adjusts_id;          /* adjustment: the ledger id of the invoice it corrects */
};

/* Which resource used what of a usage line. */
struct invoice_detail {
	size_t line;                 /* index into lines */
	char resource[64], name[128];
	__int128 qty_num, qty_den;   /* billing units */
	__int128 qty;                /* ledger units, for apportioning the line's amount */
	int64_t covered_ns, spanned_ns;
};

struct invoice_note {
	int meter;
	__int128 qty;                /* ledger units (rate.h) */
	int64_t rows;
};

struct invoice_tax {
	char name[32];
	int64_t ppm;
	int64_t amount_minor;
};

struct invoice {
	bool carry_only;             /* the tenant had no usage, resource or charge in the period: only an
					adjustment of an issued period can give it lines (rate_query.carry) */
	char issuer[64];             /* issued invoices (issue.h): who, which number, when */
	int64_t number;              /* 0: a draft */
	int64_t issued_ns;
	char sha256[65];             /* of the stored JSON document */
	char number_text[96];        /* as printed: the issuer's prefix and the number ("" for a draft) */
	struct issuer issuer_info;   /* who it is from (customer.h: the plan's issuer) */
	bool has_customer;           /* customer is filled (customers file) */
	struct party customer;       /* who it is to */
	char customer_ref[64];       /* the customer's purchase order or reference */
	enum tax_treatment tax;      /* domestic: the plan's taxes; otherwise none, and tax_note says why */
	char tax_note[256];
	int64_t date_ns, due_ns;     /* invoice date and payment due date (UTC midnight; 0: not set) */
	int payment_days;            /* the terms behind due_ns */
	char tenant[64];
	char plan[64];
	char currency[4];
	int minor_digits;
	int64_t from_ns, to_ns;
	int64_t data_until_ns;       /* usage recorded up to here (0: none) */
	int64_t days_in_period, days_existed;
	int64_t month_s;             /* seconds of the period's calendar month (per-month units), 0: it crosses one */
	struct invoice_line *lines;
	size_t n_lines;
	struct invoice_detail *details;
	size_t n_details;
	struct invoice_note *notes;
	size_t n_notes;
	__int128 usage_minor;        /* sum of usage lines (128 bits: only printed lines must fit an int64) */
	int64_t base_minor;          /* sum of the lines of the period itself (all but adjustments) */
	int64_t subtotal_minor;
	struct invoice_tax taxes[PLAN_MAX_TAXES];
	int n_taxes;
	int64_t total_minor;
	int64_t covered_ns, spanned_ns; /* over all usage lines */
};

/* The invoice of r->tenants[tenant]. Returns 0, -ERANGE (an amount too
 * large), -ENOMEM; message in e. */
int invoice_build(const struct plan *p, const struct rate_result *r, int tenant, int64_t from_ns,
		  int64_t to_ns, struct invoice *inv, struct tally_err *e);
void invoice_release(struct invoice *inv);

/* Append a line (zeroed, to be filled) to inv; NULL when out of memory. */
struct invoice_line *invoice_add_line(struct invoice *inv);

/* Recompute base, subtotal, taxes and total from the lines (after lines
 * were added). 0 or -ERANGE. */
int invoice_total(struct invoice *inv, const struct plan *p, struct tally_err *e);

/* Whether tenant t of r had usage in the period, or resources alive in it
 * (a charge in it also makes an invoice: invoice_build_all()). */
bool invoice_tenant_in_period(const struct rate_result *r, int t, int64_t from_ns, int64_t to_ns);

/* The invoices of the period: every tenant's (or q->tenant's alone) that
 * invoice_tenant_in_period() (fees and minimums are owed, even without
 * usage) or that has a charge in it (then without fees or minimum), in
 * tenant order; q->tenant's, and with q->carry every other known tenant's,
 * also when neither, as carry_only (no line until an adjustment). A charge no invoice
 * can carry (a tenant the ledger does not know, more decimals than the
 * currency, another currency) stops it unless a later one of the opposite
 * amount undoes it (-EINVAL). All are built before any is returned, so an error
 * leaves no partial set. *out is an array of *n; free each with
 * invoice_release() and the array with free(). Errors as rate_collect()
 * and invoice_build(). */
int invoice_build_all(const struct plan *p, const struct rate_query *q, struct invoice **out, size_t *n,
		      struct tally_err *e);

/* Drop (and release) the carry_only invoices that got no line, keeping
 * the others' order; *n becomes their number. */
void invoice_drop_carry_only(struct invoice *invs, size_t *n);

/* "usage", "fee", "discount", "minimum", "adjustment", "credit", "charge". */
const char *invoice_line_type_name(enum invoice_line_type t);

enum invoice_format { INV_TEXT, INV_CSV, INV_JSON, INV_HTML };

struct invoice_render_opts {
	enum invoice_format format;
	bool detail;                 /* per-resource detail section */
};

/* Render one invoice; several in a row for text and CSV (CSV writes its
 * header only when first is true). JSON: invoice_render_json() writes an
 * array of all of them. Return 0 or -EIO. */
int invoice_render(FILE *f, const struct invoice *inv, const struct invoice_render_opts *o, bool first);
int invoice_render_json(FILE *f, const struct invoice *invs, size_t n, const struct invoice_render_opts *o);

/* All invoices as one self-contained, printable HTML page (a page each,
 * A4 when printed) for the customer: both parties, the dates, readable
 * lines with quantities rounded for display, how free allowances, tiers
 * and blocks make each amount, SLA credits in a section of their own, the
 * totals, the tax note and how to pay; and one chart per group billed,
 * drawn from the RRD files under rrd_dir (NULL: no charts). Internal
 * columns (meter, selector, data coverage) and the per-resource detail
 * only with o->detail. 0 or -EIO. */
int invoice_render_html(FILE *f, const struct invoice *invs, size_t n, const char *rrd_dir,
			const struct invoice_render_opts *o);

/* Put the issuer (p) and each invoice's customer (c may be NULL: none;
 * customer.h) on invs[0..n), with the invoice date date_ns (its UTC day)
 * and the due date after the customer's (else the issuer's) payment
 * terms; apply the customer's tax treatment (reverse charge and exempt:
 * no tax, only the note) and recompute the totals. With require, a tenant
 * that c does not list is refused (an invoice to be issued needs someone
 * to send it to). Returns 0; -EINVAL (a tenant missing, a currency other
 * than the plan's), -ERANGE; message in e. */
int invoice_apply_customers(struct invoice *invs, size_t n, const struct plan *p, const struct customers *c,
			    int64_t date_ns, bool require, struct tally_err *e);

struct sla_report;
/* Credit lines on inv for its tenant's VMs in r that earned a credit: the
 * VM's charges are its share of each usage line (its ledger quantity over
 * the line's, to a millionth of a minor unit), the credit that percentage
 * of them rounded once; the line names the VM, its availability and its
 * incidents. The caller recomputes the totals (invoice_total). 0, -ENOMEM. */
int invoice_sla_credits(struct invoice *inv, const struct sla_report *r, const struct plan *p, struct tally_err *e);

#endif
