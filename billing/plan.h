/*
 * plan.h: rate plans (schemas/plan.md) parsed once into typed structs.
 *
 * plan_load() reads the YAML file and checks everything that can be checked
 * without a ledger: currency, meters, units that fit their meters, tiers,
 * overlapping selectors, money precision, version order. It collects every
 * mistake (up to PLAN_MAX_ERRORS) as "file:line:col: what (expected)"
 * instead of stopping at the first, so `tally plan check` can list them all.
 * A struct plan owns its arrays; plan_release() frees them.
 */
#ifndef TALLY_PLAN_H
#define TALLY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "customer.h"
#include "money.h"

#define PLAN_MAX_ERRORS 32
#define PLAN_MAX_TIERS 16
#define PLAN_MAX_SELECT 8
#define PLAN_MAX_TAXES 8             /* taxes of a plan (schemas/plan.md) */

struct plan_errors {
	char msg[PLAN_MAX_ERRORS][512];
	int n;                       /* recorded */
	int total;                   /* found (may exceed PLAN_MAX_ERRORS) */
};

/* A billing unit (schemas/plan.md, "Billing units"): one unit is num/den
 * ledger units (a counter's base units, or a gauge's unit-seconds); a
 * per-month unit's num is further multiplied by the seconds of the
 * calendar month the rated period lies in (rate_unit_ratio). */
struct plan_unit {
	char name[48];               /* as written: "GiB-month" */
	__int128 num, den;
	bool per_month;
	int places;                  /* decimals an invoice shows its quantity with (display only) */
	char human[48];              /* how a customer reads one: "GiB-month", "1,000 requests" */
};

/* Resolve name for meter m (enum meter_id): 0, or -EINVAL when the name
 * is no billing unit (then *fits false) or does not fit the meter's base
 * unit and kind (*fits true). */
int plan_unit_resolve(const char *name, int m, struct plan_unit *out, bool *known);
/* The units that fit meter m, ", "-separated, for a message. */
void plan_units_for(int m, char *buf, size_t len);

enum plan_model { PLAN_PER_UNIT, PLAN_GRADUATED, PLAN_VOLUME, PLAN_BLOCK };

struct plan_tier {
	bool has_up_to;
	int64_t up_to_nanos;         /* units x 10^9 */
	int64_t price_nanos;
};

struct plan_price {
	int meter;                   /* enum meter_id */
	struct plan_unit unit;
	char description[128];       /* on the invoice; "" : the meter's title and the selector's values */
	enum plan_model model;
	int64_t price_nanos;         /* per unit, or per block */
	int64_t block_nanos;         /* block size in units x 10^9 */
	int64_t free_nanos;          /* free allowance per period in units x 10^9 */
	bool prorate_free;           /* the allowance x days the tenant existed / days in the period */
	struct plan_tier tiers[PLAN_MAX_TIERS];
	int n_tiers;
	char sel_key[PLAN_MAX_SELECT][64], sel_val[PLAN_MAX_SELECT][64];
	int n_sel;
	int line, col;               /* where the entry starts */
	/* versions inherit (schemas/plan.md): an entry is written in version
	 * origin, at origin_index of that version's prices, and is in force
	 * from that version's 'from' until until_ns, the 'from' of the version
	 * that replaces or removes it (INT64_MAX: never). A later version's
	 * prices hold a copy of every entry it inherits. Tenant prices: origin
	 * -1, in force in every version. */
	int origin, origin_index;
	int64_t until_ns;
};

struct plan_fee {
	char name[64];
	int64_t amount_minor;
	bool prorate;
};

struct plan_version {
	int64_t from_ns;
	struct plan_price *prices;   /* every price in force: inherited ones, then its own */
	size_t n_prices;
	size_t n_own;                /* written in this version (the last n_own of prices) */
	struct plan_fee *fees;       /* as many as the plan lists; inherited unless given */
	size_t n_fees;
	bool has_minimum;
	int64_t minimum_minor;
};

struct plan_tax {
	char name[32];
	int64_t ppm;                 /* parts per million */
};

/* Per-tenant terms. A tenant's own prices come before the version's: a
 * resource of the tenant whose meter and labels match one of them is rated
 * by it, in every version of the plan. */
struct plan_tenant {
	char name[64];
	int64_t discount_ppm;        /* on every usage line */
	struct plan_price *prices;
	size_t n_prices;
};

#define PLAN_MAX_SLA_CLASSES 8
#define PLAN_MAX_CREDITS 8

/* An SLA class (docs/sla.md): the VMs whose labels match select get target
 * availability, and a credit of credit_ppm of their charges when the
 * period's availability is below below_ppm (the lowest tier reached wins). */
struct plan_sla_class {
	char name[64];
	char sel_key[PLAN_MAX_SELECT][64], sel_val[PLAN_MAX_SELECT][64];
	int n_sel;
	int64_t target_ppm;          /* availability promised, parts per million */
	struct { int64_t below_ppm, credit_ppm; } credits[PLAN_MAX_CREDITS];
	int n_credits;               /* in decreasing below_ppm */
	char preset[32];             /* "" or the preset it came from */
};

struct plan {
	char name[64];
	char issuer[64];             /* who issues the invoices (numbering series); default: the plan's name */
	struct issuer issuer_info;   /* the issuer's details (customer.h); series = issuer */
	char *source;                /* the file's text as read (stored with issued invoices) */
	char currency[4];
	int minor_digits;
	enum money_round rounding;
	struct plan_tax taxes[PLAN_MAX_TAXES];
	int n_taxes;
	struct plan_version *versions;
	size_t n_versions;
	struct plan_tenant *tenants;
	size_t n_tenants;
	bool has_sla;
	int64_t sla_grace_ns;        /* silence shorter than this is not downtime */
	struct plan_sla_class sla[PLAN_MAX_SLA_CLASSES];
	int n_sla;
};

/* The SLA presets mirroring the public clouds' published tables, by name;
 * NULL-terminated. */
struct plan_sla_preset {
	const char *name, *what;
	int64_t target_ppm;
	int64_t below_ppm[3], credit_ppm[3];
};
extern const struct plan_sla_preset plan_sla_presets[];

/* The entry a price of version v stands for: versions[origin].prices[origin_index]. */
const struct plan_price *plan_price_origin(const struct plan *p, const struct plan_price *pp);

/* The index of the version in force at t (the last whose from <= t), or
 * -1 before the first. */
int plan_version_at(const struct plan *p, int64_t t_ns);

/* What a selector is matched against: a resource's attributes. */
struct plan_attrs {
	const char *flavor, *project, *user, *name, *host;
	const char *labels;          /* "k=v,k=v" */
};

/* Does every key=value of the selector hold for a? Keys flavor, project,
 * user, name and host name those attributes; any other key is a label. */
bool plan_select(const char (*keys)[64], const char (*vals)[64], int n, const struct plan_attrs *a);

/* The tenant's terms, or NULL. */
const struct plan_tenant *plan_tenant_find(const struct plan *p, const char *tenant);

/* 0 when the plan is good; -EINVAL with the mistakes in errs; -ENOENT and
 * others for an unreadable file (one message in errs). */
int plan_load(const char *path, struct plan *p, struct plan_errors *errs);
/* The same from text in memory (a plan stored with an issued invoice);
 * name is used in messages. */
int plan_load_text(const char *name, const char *text, size_t len, struct plan *p, struct plan_errors *errs);
void plan_release(struct plan *p);

#endif
