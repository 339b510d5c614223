/*
 * rate.h: rating: the usage ledger, classified by a rate plan.
 *
 * rate_collect() reads every usage row of [from, to) once and adds it to the
 * price it falls under: the tenant the resource had at the start of the
 * hour (as `tally usage` attributes it), the plan version in force in that
 * hour, and the first price of the tenant's own prices, else of the
 * version's, whose meter is the row's and whose selector matches the
 * resource's attributes then (flavor, project, user, host, name and its
 * labels). Rows no price matches are kept apart as unpriced, so an invoice
 * can say what the plan does not price instead of billing it as nothing.
 *
 * Quantities are exact integers: counters in their base unit, gauge
 * integrals in milli-unit-seconds (each hourly row's unit-seconds rounded
 * once, half to even, to 1/1000), so sums do not depend on row order.
 *
 * rate_amount() prices one such quantity: the free allowance first, then
 * per unit, graduated or volume tiers, or started blocks, as one exact
 * rational rounded once to the currency's minor unit (docs/architecture.md rule 8).
 *
 * A struct rate_result owns its arrays; rate_result_release() frees them.
 */
#ifndef TALLY_RATE_H
#define TALLY_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

struct tally_err;

/* How many ledger quantity units make one billing unit: num/den. Gauges
 * count in milli-unit-seconds, so their num carries a factor 1000. */
#define RATE_GAUGE_SCALE 1000

/* The largest quantity of one price in a period, in ledger units (2^96,
 * 7.9e28): past it the exact arithmetic would not fit, and rating refuses
 * with a clear error instead of a wrong number. */
#define RATE_MAX_QTY ((__int128)1 << 96)

struct rate_row;

struct rate_query {
	const char *ledger;
	int64_t from_ns, to_ns;      /* whole UTC hours, from < to */
	const char *tenant;          /* NULL: every tenant */
	bool combined;               /* rate all tenants as one account named "*" */
	/* invoice_build_all(): also an invoice, with carry_only set, for every
	 * tenant the ledger knows that the period would not invoice, for a
	 * late adjustment of an issued period (issue_adjust_all()) to go on;
	 * drop those left without lines (invoice_drop_carry_only()) */
	bool carry;
	/* optional: called for every row added, with the key it went to
	 * (tally invoice explain); a non-zero return stops with that error */
	int (*on_row)(void *ctx, const struct rate_row *row);
	void *ctx;
};

/* Where a price comes from: the entry versions[version].prices[price]
 * (override < 0: the version that wrote it, plan.h, so one price inherited
 * by later versions is one key), or plan->tenants[override].prices[price]
 * (version 0). Unpriced usage (price < 0) keeps the version in force and
 * its meter. */
struct rate_key {
	int tenant;                  /* index into rate_result.tenants */
	int resource;                /* index into rate_result.resources */
	int version;                 /* plan version in force, -1 before the first */
	int override;                /* plan->tenants[] index, -1: the version's prices */
	int price;                   /* index into those prices, -1: unpriced */
	int meter;                   /* enum meter_id */
};

/* One ledger row as rated, for on_row: valid during the call only. */
struct rate_row {
	struct rate_key k;
	const char *uuid, *name, *device;
	int64_t hour_ns;
	__int128 qty;                /* ledger units */
	int64_t covered_ns, spanned_ns;
};

struct rate_acc {
	struct rate_key k;
	__int128 qty;                /* ledger units (see above) */
	int64_t covered_ns, spanned_ns;
	int64_t rows;                /* ledger rows added */
};

struct rate_resource {
	char uuid[64];
	char name[128];
	int64_t first_seen_ns, last_seen_ns;
};

struct rate_tenant {
	char name[64];
	int64_t first_ns, last_ns;   /* earliest first sight, latest last sight of its resources */
	bool has_usage;
};

struct rate_result {
	struct rate_acc *accs;       /* sorted by tenant, version, override, price, meter, resource */
	size_t n_accs;
	struct rate_tenant *tenants; /* sorted by name */
	size_t n_tenants;
	struct rate_resource *resources;
	size_t n_resources;
	int64_t data_until_ns;       /* latest cycle any agent committed (0: none) */
	uint64_t rows;               /* ledger rows read */
};

/* Returns 0; -ENOENT/-EINVAL/-EPROTO/-EIO for the ledger (reader.h),
 * -ESRCH when q->tenant never appears in the ledger, -ERANGE when a
 * quantity does not fit; message in e. */
int rate_collect(const struct rate_query *q, const struct plan *p, struct rate_result *out,
		 struct tally_err *e);
void rate_result_release(struct rate_result *r);

/* The price an acc refers to, or NULL for unpriced usage. */
const struct plan_price *rate_price(const struct plan *p, const struct rate_key *k);

/* Ledger units per billing unit of pp, as num/den. month_s: the seconds
 * of the calendar month the rated period lies in (rate_month_seconds),
 * which a per-month unit (GiB-month, IP-month) divides by; ignored by the
 * others. */
void rate_unit_ratio(const struct plan_price *pp, int64_t month_s, __int128 *num, __int128 *den);

/* The seconds of the calendar month (UTC) that [from_ns, to_ns) lies in
 * (October: 31 x 86400 = 2678400), or 0 when the period crosses a month
 * boundary: a per-month unit then has no one month to divide by. */
int64_t rate_month_seconds(int64_t from_ns, int64_t to_ns);

/* One tier's share of a priced quantity, for `tally invoice explain`. */
struct rate_step {
	__int128 qty_num;            /* billing units = qty_num / qty_den */
	__int128 qty_den;
	int64_t price_nanos;         /* per unit, or per block */
	__int128 blocks;             /* block pricing: blocks started */
	/* tiers: the tier's bounds as the plan gives them (in billing units
	 * over qty_den, counted from the end of the free allowance): from
	 * from_num, up to up_to_num when bounded, else without end */
	__int128 from_num, up_to_num;
	bool bounded;
};

struct rate_calc {
	__int128 qty_num, qty_den;   /* the part's usage, in billing units */
	__int128 start_num;          /* the period's usage of the price before the part, over qty_den */
	__int128 free_num;           /* the free allowance this part used, over qty_den */
	struct rate_step steps[PLAN_MAX_TIERS];
	int n_steps;
	struct money_u256 amount_num; /* the exact amount in the currency: amount_num / amount_den */
	unsigned __int128 amount_den;
	int64_t amount_minor;        /* rounded once */
};

/* Price qty ledger units under pp, as the part [start, start + qty) of the
 * period's usage of the price, whose whole is total (>= start + qty; it
 * picks the tier of volume pricing): the free allowance (free_nanos: the
 * price's, or prorated) is the first units of the period, tiers and blocks
 * count on from there (docs/invoice.md).
 * A whole period is start 0, total qty. Returns 0 or -ERANGE (a quantity
 * past RATE_MAX_QTY, or an amount that does not fit an int64; message in
 * e). Exact: products are 256-bit, rounded once. */
/* A tier's bounds in words, as a price list gives them, for the unit to
 * follow: "first 200", "over 200 up to 1000", "over 1000", or "every"
 * (one tier without bounds). Bounds are plan numbers (at most 9
 * decimals): shown exactly, without trailing zeros. Returns buf. */
char *rate_tier_words(const struct rate_step *st, char *buf, size_t len);

int rate_amount(const struct plan_price *pp, int64_t month_s, int64_t free_nanos, __int128 start, __int128 qty,
		__int128 total, int minor_digits, enum money_round mode, struct rate_calc *out, struct tally_err *e);

#endif
