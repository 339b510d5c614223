/*
 * plan.c: read and check a rate plan (see plan.h, schemas/plan.md).
 */
#include "plan.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB ((__int128)1 << 30)

/* Units with a name of their own (schemas/plan.md, "Billing units"); the
 * rest are made from the meter's base unit in plan_unit_resolve(). */
static const struct named_unit {
	const char *name, *base;
	bool gauge;
	__int128 num;                /* base units (x seconds for a gauge) per unit */
	bool per_month;              /* num x the seconds of the period's month */
	int places;
} named_units[] = {
	{ "CPU-hour", "ns", false, (__int128)3600000000000LL, false, 2 },
	{ "GB", "B", false, 1000000000, false, 3 },
	{ "GiB", "B", false, GIB, false, 3 },
	{ "GB-hour", "B", true, (__int128)1000000000 * 3600, false, 2 },
	{ "GiB-hour", "B", true, GIB * 3600, false, 2 },
	{ "GB-day", "B", true, (__int128)1000000000 * 86400, false, 2 },
	{ "GiB-day", "B", true, GIB * 86400, false, 2 },
	{ "GB-month", "B", true, 1000000000, true, 4 },
	{ "GiB-month", "B", true, GIB, true, 4 },
};

/* The units made from a base unit b: a count (b, b-thousand, b-million)
 * or a level over time (b-hour, b-day, b-month). */
static const struct made_unit {
	const char *suffix;
	bool gauge;
	int64_t num;
	bool per_month;
	int places;
	const char *pre, *post;      /* how a customer reads it: pre, the base unit, post */
} made_units[] = {
	{ "", false, 1, false, 0, "", "" },
	{ "-thousand", false, 1000, false, 3, "1,000 ", "s" },
	{ "-million", false, 1000000, false, 3, "million ", "s" },
	{ "-hour", true, 3600, false, 2, "", "-hour" },
	{ "-day", true, 86400, false, 2, "", "-day" },
	{ "-month", true, 1, true, 4, "", "-month" },
};

/* Base units with named units only: bytes and nanoseconds are never
 * priced per byte or per nanosecond. */
static bool named_only(const char *base)
{
	return !strcmp(base, "B") || !strcmp(base, "ns");
}

int plan_unit_resolve(const char *name, int m, struct plan_unit *out, bool *known)
{
	const struct meter_def *md = meter_get(m);
	bool gauge = md->kind == SAMPLE_GAUGE;
	memset(out, 0, sizeof(*out));
	*known = false;
	for (size_t i = 0; i < sizeof(named_units) / sizeof(named_units[0]); i++) {
		const struct named_unit *u = &named_units[i];
		if (strcmp(u->name, name))
			continue;
		*known = true;
		if (strcmp(u->base, md->unit) || u->gauge != gauge)
			return -EINVAL;
		str_copy(out->name, u->name, sizeof(out->name));
		str_copy(out->human, u->name, sizeof(out->human));
		out->num = u->num;
		out->den = 1;
		out->per_month = u->per_month;
		out->places = u->places;
		return 0;
	}
	/* made from a base unit: the name starts with one, and what follows
	 * is one of the suffixes; the meter's own base unit must be it */
	for (size_t i = 0; i < sizeof(made_units) / sizeof(made_units[0]); i++) {
		const struct made_unit *u = &made_units[i];
		size_t nl = strlen(name), sl = strlen(u->suffix);
		if (nl <= sl || strcmp(name + nl - sl, u->suffix))
			continue;
		size_t bl = nl - sl;
		bool is_base = bl == strlen(md->unit) && !strncmp(name, md->unit, bl);
		if (!is_base)
			continue;   /* maybe another base unit's: known below */
		*known = true;
		if (u->gauge != gauge || named_only(md->unit))
			return -EINVAL;
		str_copy(out->name, name, sizeof(out->name));
		snprintf(out->human, sizeof(out->human), "%s%s%s", u->pre, md->unit, u->post);
		out->num = u->num;
		out->den = 1;
		out->per_month = u->per_month;
		out->places = u->places;
		return 0;
	}
	/* a unit of another meter's base unit (vCPU-hour for memory) is known,
	 * but does not fit */
	for (int k = 0; k < meter_count() && !*known; k++) {
		const char *b = meter_get(k)->unit;
		for (size_t i = 0; i < sizeof(made_units) / sizeof(made_units[0]) && !*known; i++) {
			char cand[96];
			snprintf(cand, sizeof(cand), "%s%s", b, made_units[i].suffix);
			*known = !named_only(b) && !strcmp(cand, name);
		}
	}
	return -EINVAL;
}

void plan_units_for(int m, char *buf, size_t len)
{
	const struct meter_def *md = meter_get(m);
	bool gauge = md->kind == SAMPLE_GAUGE;
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(named_units) / sizeof(named_units[0]) && used < len; i++)
		if (!strcmp(named_units[i].base, md->unit) && named_units[i].gauge == gauge)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", named_units[i].name);
	for (size_t i = 0; !named_only(md->unit) && i < sizeof(made_units) / sizeof(made_units[0]) && used < len; i++)
		if (made_units[i].gauge == gauge)
			used += (size_t)snprintf(buf + used, len - used, "%s%s%s", used ? ", " : "", md->unit,
						 made_units[i].suffix);
	if (!buf[0])
		snprintf(buf, len, "none");
}

static const struct {
	const char *code;
	int digits;
} currencies[] = {
	{ "EUR", 2 }, { "USD", 2 }, { "GBP", 2 }, { "CHF", 2 }, { "CAD", 2 }, { "AUD", 2 },
	{ "SEK", 2 }, { "NOK", 2 }, { "DKK", 2 }, { "PLN", 2 }, { "CZK", 2 }, { "INR", 2 },
	{ "CNY", 2 }, { "BRL", 2 }, { "JPY", 0 }, { "KRW", 0 }, { "ISK", 0 }, { "BHD", 3 },
	{ "KWD", 3 }, { "OMR", 3 }, { "TND", 3 }, { "CLF", 4 },
};

struct ctx {
	const char *path;
	struct plan_errors *errs;
	struct plan *p;
	const struct cfg_node *root;
};

/* A mistake at line:col (line 0: the file as a whole) into the list. */
static void add_err_v(struct ctx *c, int line, int col, const char *fmt, va_list ap)
{
	char what[400];
	vsnprintf(what, sizeof(what), fmt, ap);
	c->errs->total++;
	if (c->errs->n == PLAN_MAX_ERRORS)
		return;
	if (line)
		snprintf(c->errs->msg[c->errs->n++], sizeof(c->errs->msg[0]), "%s:%d:%d: %s", c->path, line, col,
			 what);
	else
		snprintf(c->errs->msg[c->errs->n++], sizeof(c->errs->msg[0]), "%s: %s", c->path, what);
}

/* A mistake at node n's value (NULL: the file). */
static void add_err(struct ctx *c, const struct cfg_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add_err(struct ctx *c, const struct cfg_node *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_err_v(c, n ? n->line : 0, n ? n->col : 0, fmt, ap);
	va_end(ap);
}

/* The same at a key's place. */
static void add_err_at(struct ctx *c, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_err_at(struct ctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_err_v(c, line, col, fmt, ap);
	va_end(ap);
}

/* A cfg reader's error goes into the list as it is (it has file:line:col). */
static int keep(struct ctx *c, int rc, struct tally_err *e)
{
	if (rc) {
		c->errs->total++;
		if (c->errs->n < PLAN_MAX_ERRORS)
			str_copy(c->errs->msg[c->errs->n++], e->msg, sizeof(c->errs->msg[0]));
	}
	return rc;
}

/* A scalar decimal at key as nanos; max_decimals limits precision. */
static int decimal(struct ctx *c, const struct cfg_node *map, const char *key, int max_decimals,
		   const char *what, int64_t *out, bool *present)
{
	const struct cfg_node *n = cfg_get(map, key);
	struct tally_err e = { 0 };
	if (present)
		*present = n != NULL;
	if (!n)
		return 0;
	if (n->type != CFG_SCALAR) {
		add_err(c, n, "'%s': expected a decimal number, not %s", key, n->type == CFG_MAP ? "a map" : "a list");
		return -EINVAL;
	}
	int64_t v;
	if (money_parse_price(n->value, &v, &e)) {
		add_err(c, n, "'%s': %s", key, e.msg);
		return -EINVAL;
	}
	if (v < 0 || n->value[0] == '-') {
		add_err(c, n, "'%s': %s is negative (prices, tier bounds, free allowances, fees and minimums are"
			" never below zero)", key, n->value);
		return -EINVAL;
	}
	int64_t quantum = 1;
	for (int i = max_decimals; i < MONEY_PRICE_DIGITS; i++)
		quantum *= 10;
	if (v % quantum) {
		add_err(c, n, "'%s': %s has more precision than %s holds (at most %d decimal places)", key,
			n->value, what, max_decimals);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* "19%" or "7.5%" -> parts per million. */
static int percent(struct ctx *c, const struct cfg_node *map, const char *key, int64_t *ppm)
{
	const struct cfg_node *n = cfg_get(map, key);
	struct tally_err e = { 0 };
	if (!n)
		return 0;
	char buf[64];
	size_t len = n->type == CFG_SCALAR ? strlen(n->value) : 0;
	if (len < 2 || len >= sizeof(buf) || n->value[len - 1] != '%') {
		add_err(c, n, "'%s': expected a percentage like 19%% or 7.5%%", key);
		return -EINVAL;
	}
	memcpy(buf, n->value, len - 1);
	buf[len - 1] = '\0';
	int64_t v;
	if (money_parse_price(buf, &v, &e) || v < 0 || v > 100 * MONEY_NANOS || v % 100000) {
		add_err(c, n, "'%s': expected a percentage 0%%-100%% with at most 4 decimals (got '%s')", key,
			n->value);
		return -EINVAL;
	}
	*ppm = v / 100000;   /* 1% is 10^9 nanos of a percent and 10^4 ppm */
	return 0;
}

/* A selector map into keys/vals: every value a plain word, at most
 * PLAN_MAX_SELECT of them, each key and value under 64 characters (a
 * longer one would be cut and match what it should not). */
static int parse_select(struct ctx *c, const struct cfg_node *map, char (*keys)[64], char (*vals)[64], int *n)
{
	struct tally_err e = { 0 };
	const struct cfg_node *sel = NULL;
	*n = 0;
	if (keep(c, cfg_get_map(map, "select", &sel, &e), &e))
		return -EINVAL;
	if (sel && sel->n_kids > PLAN_MAX_SELECT) {
		add_err(c, sel, "'select': at most %d labels (got %zu)", PLAN_MAX_SELECT, sel->n_kids);
		return -EINVAL;
	}
	for (size_t i = 0; sel && i < sel->n_kids; i++) {
		const struct cfg_node *k = sel->kids[i];
		if (k->type != CFG_SCALAR) {
			add_err(c, k, "selector '%s': expected a plain label value", k->key);
			return -EINVAL;
		}
		if (strlen(k->key) >= 64 || strlen(k->value) >= 64) {
			add_err(c, k, "selector '%s': keys and values are at most 63 characters", k->key);
			return -EINVAL;
		}
		str_copy(keys[*n], k->key, 64);
		str_copy(vals[*n], k->value, 64);
		(*n)++;
	}
	return 0;
}

static bool selectors_overlap(const struct plan_price *a, const struct plan_price *b)
{
	/* disjoint only when some label is required with different values */
	for (int i = 0; i < a->n_sel; i++)
		for (int j = 0; j < b->n_sel; j++)
			if (!strcmp(a->sel_key[i], b->sel_key[j]) && strcmp(a->sel_val[i], b->sel_val[j]))
				return false;
	return true;
}

static const char *const price_keys[] = { "meter", "unit", "select", "price", "tiers", "mode", "block",
					  "free", "prorate_free", "description", NULL };

static void parse_price(struct ctx *c, const struct cfg_node *n, struct plan_price *pp, bool *ok)
{
	struct tally_err e = { 0 };
	char meter[64] = "", unit[32] = "", mode[16] = "";
	*ok = false;
	memset(pp, 0, sizeof(*pp));
	pp->line = n->line;
	pp->col = n->col;
	pp->meter = -1;
	if (keep(c, cfg_check_keys(n, "price", price_keys, &e), &e) ||
	    keep(c, cfg_get_string(n, "meter", meter, sizeof(meter), &e), &e) ||
	    keep(c, cfg_get_string(n, "unit", unit, sizeof(unit), &e), &e) ||
	    keep(c, cfg_get_string(n, "mode", mode, sizeof(mode), &e), &e))
		return;
	if (!meter[0]) {
		add_err(c, n, "a price needs a 'meter'");
		return;
	}
	if ((pp->meter = meter_find(meter)) < 0) {
		add_err(c, cfg_get(n, "meter"), "unknown meter '%s' (meters are named as in docs/meters.md:"
			" cpu, vcpus, memory, network.outgoing.bytes, ...; a custom meter is declared in the"
			" config's meters: section, which tally reads with --config FILE or $TALLY_CONFIG)", meter);
		return;
	}
	bool known;
	if (plan_unit_resolve(unit, pp->meter, &pp->unit, &known)) {
		const struct meter_def *md = meter_get(pp->meter);
		char fits[256];
		plan_units_for(pp->meter, fits, sizeof(fits));
		if (!unit[0])
			add_err(c, n, "a price needs a 'unit' (for '%s': %s)", meter, fits);
		else if (known)
			add_err(c, cfg_get(n, "unit"), "unit '%s' does not fit meter '%s' (it measures %s, %s): its units"
				" are %s", unit, meter, md->unit, md->kind == SAMPLE_GAUGE ? "a level over time" : "a count",
				fits);
		else
			add_err(c, cfg_get(n, "unit"), "unit '%s' is not a billing unit (for '%s': %s; schemas/plan.md,"
				" \"Billing units\")", unit, meter, fits);
		return;
	}
	if (keep(c, cfg_get_string(n, "description", pp->description, sizeof(pp->description), &e), &e))
		return;
	if (parse_select(c, n, pp->sel_key, pp->sel_val, &pp->n_sel))
		return;
	bool has_price, has_block, has_free;
	const struct cfg_node *tiers = NULL;
	if (keep(c, cfg_get_seq(n, "tiers", 1, PLAN_MAX_TIERS, &tiers, &e), &e) ||
	    decimal(c, n, "price", MONEY_PRICE_DIGITS, "the money scale", &pp->price_nanos, &has_price) ||
	    decimal(c, n, "block", MONEY_PRICE_DIGITS, "a quantity", &pp->block_nanos, &has_block) ||
	    decimal(c, n, "free", MONEY_PRICE_DIGITS, "a quantity", &pp->free_nanos, &has_free))
		return;
	if (keep(c, cfg_get_bool(n, "prorate_free", &pp->prorate_free, &e), &e))
		return;
	if (pp->prorate_free && !has_free) {
		add_err(c, cfg_get(n, "prorate_free"), "'prorate_free' needs a 'free' allowance to prorate");
		return;
	}
	if (has_price == (cfg_get(n, "tiers") != NULL)) {
		add_err(c, n, "a price needs exactly one of 'price' or 'tiers'");
		return;
	}
	if (has_block && (!has_price || pp->block_nanos <= 0)) {
		add_err(c, cfg_get(n, "block"), "'block' needs a positive size and a 'price' per block");
		return;
	}
	pp->model = has_block ? PLAN_BLOCK : PLAN_PER_UNIT;
	if (tiers) {
		if (mode[0] && strcmp(mode, "graduated") && strcmp(mode, "volume")) {
			add_err(c, cfg_get(n, "mode"), "mode '%s': expected graduated or volume", mode);
			return;
		}
		pp->model = !strcmp(mode, "volume") ? PLAN_VOLUME : PLAN_GRADUATED;
		static const char *const tier_keys[] = { "up_to", "price", NULL };
		for (size_t i = 0; i < tiers->n_kids; i++) {
			const struct cfg_node *t = tiers->kids[i];
			struct plan_tier *pt = &pp->tiers[pp->n_tiers];
			bool hp, hu;
			if (keep(c, cfg_check_keys(t, "tier", tier_keys, &e), &e) ||
			    decimal(c, t, "up_to", MONEY_PRICE_DIGITS, "a quantity", &pt->up_to_nanos, &hu) ||
			    decimal(c, t, "price", MONEY_PRICE_DIGITS, "the money scale", &pt->price_nanos, &hp))
				return;
			pt->has_up_to = hu;
			if (!hp) {
				add_err(c, t, "a tier needs a 'price'");
				return;
			}
			bool last = i + 1 == tiers->n_kids;
			if (hu == last) {
				add_err(c, t, last ? "the last tier takes what is left: no 'up_to'"
						   : "every tier but the last needs an 'up_to'");
				return;
			}
			if (hu && pt->up_to_nanos == 0) {
				add_err(c, cfg_get(t, "up_to"), "tier 'up_to' must be above zero");
				return;
			}
			if (hu && pp->n_tiers > 0 && pt->up_to_nanos <= pp->tiers[pp->n_tiers - 1].up_to_nanos) {
				char a[40], b[40];
				add_err(c, cfg_get(t, "up_to"), "tier 'up_to' must increase (got %s after %s)",
					money_format_price(pt->up_to_nanos, a, sizeof(a)),
					money_format_price(pp->tiers[pp->n_tiers - 1].up_to_nanos, b, sizeof(b)));
				return;
			}
			pp->n_tiers++;
		}
	} else if (cfg_get(n, "tiers")) {
		add_err(c, cfg_get(n, "tiers"), "'tiers': expected a list of 1 to %d tiers", PLAN_MAX_TIERS);
		return;
	} else if (mode[0]) {
		add_err(c, cfg_get(n, "mode"), "'mode' applies to 'tiers' only");
		return;
	}
	*ok = true;
}

/* A list of prices, none overlapping another of the list. */
static void parse_prices(struct ctx *c, const struct cfg_node *where, struct plan_price **out, size_t *n_out)
{
	struct tally_err e = { 0 };
	const struct cfg_node *prices = NULL;
	*out = NULL;
	*n_out = 0;
	if (keep(c, cfg_get_seq(where, "prices", 0, SIZE_MAX, &prices, &e), &e) || !prices)
		return;
	struct plan_price *v = calloc(prices->n_kids, sizeof(*v));
	size_t n = 0;
	if (!v) {
		add_err(c, prices, "out of memory");
		return;
	}
	for (size_t i = 0; i < prices->n_kids; i++) {
		bool ok;
		parse_price(c, prices->kids[i], &v[n], &ok);
		if (!ok)
			continue;
		for (size_t j = 0; j < n; j++) {
			if (v[j].meter == v[n].meter && selectors_overlap(&v[j], &v[n])) {
				add_err(c, prices->kids[i], "price for '%s' overlaps the one at line %d: a"
					" resource could match both selectors (make them differ in a"
					" label's value)", meter_get(v[n].meter)->name, v[j].line);
				ok = false;
				break;
			}
		}
		if (ok)
			n++;
	}
	*out = v;
	*n_out = n;
}

/* How a precision error names the currency. */
static const char *money_what(const struct plan *p)
{
	return p->currency[0] ? p->currency : "the currency";
}

/* An amount checked to hold no more than minor_digits decimals, in minor units. */
static int64_t nanos_to_minor(int64_t nanos, int minor_digits)
{
	return nanos / money_nanos_per_minor(minor_digits);
}

static const char *const version_keys[] = { "from", "prices", "remove", "fees", "minimum", NULL };
static const char *const fee_keys[] = { "name", "amount", "prorate", NULL };

/* Version vi inherits from vi - 1 (already resolved): its own prices
 * replace, meter by meter, the inherited prices of the meters they price
 * (every selector of that meter); 'remove' ends the pricing of the meters
 * it lists; fees and minimum are inherited unless given. */
static void inherit(struct ctx *c, const struct cfg_node *n, struct plan *p, size_t vi)
{
	struct tally_err e = { 0 };
	struct plan_version *v = &p->versions[vi];
	const struct cfg_node *rm = NULL;
	/* which meters this version prices itself, and which it removes: one
	 * flag per meter of the table (it holds far more than 32) */
	const int nm = meter_count();
	bool own[METER_COUNT + METER_CUSTOM_MAX] = { false }, removed[METER_COUNT + METER_CUSTOM_MAX] = { false };
	if (keep(c, cfg_get_seq(n, "remove", 0, (size_t)nm, &rm, &e), &e))
		return;
	for (size_t i = 0; i < v->n_prices; i++) {
		if (v->prices[i].meter >= 0 && v->prices[i].meter < nm)
			own[v->prices[i].meter] = true;   /* an unknown one is an error already */
		v->prices[i].origin = (int)vi;
		v->prices[i].until_ns = INT64_MAX;
	}
	const struct plan_version *prev = vi > 0 ? &p->versions[vi - 1] : NULL;
	for (size_t i = 0; rm && i < rm->n_kids; i++) {
		const struct cfg_node *k = rm->kids[i];
		int m = k->type == CFG_SCALAR ? meter_find(k->value) : -1;
		bool priced = false;
		for (size_t j = 0; prev && m >= 0 && j < prev->n_prices; j++)
			priced |= prev->prices[j].meter == m;
		if (m < 0)
			add_err(c, k, "'remove': expected the name of a meter the version before prices");
		else if (!priced)
			add_err(c, k, "'remove': meter '%s' is not priced by the version before: nothing to remove",
				k->value);
		else if (own[m])
			add_err(c, k, "'remove': meter '%s' is also priced by this version", k->value);
		else
			removed[m] = true;
	}
	if (!prev) {
		for (size_t i = 0; i < v->n_prices; i++)
			v->prices[i].origin_index = (int)i;
		v->n_own = v->n_prices;
		return;
	}
	if (!cfg_get(n, "fees") && prev->n_fees) {
		if (!(v->fees = malloc(prev->n_fees * sizeof(*v->fees)))) {
			add_err(c, n, "out of memory");
			return;
		}
		memcpy(v->fees, prev->fees, prev->n_fees * sizeof(*v->fees));
		v->n_fees = prev->n_fees;
	}
	if (!cfg_get(n, "minimum")) {
		v->has_minimum = prev->has_minimum;
		v->minimum_minor = prev->minimum_minor;
	}
	struct plan_price *all = calloc(prev->n_prices + v->n_prices + 1, sizeof(*all));
	size_t k = 0;
	if (!all) {
		add_err(c, n, "out of memory");
		return;
	}
	for (size_t i = 0; i < prev->n_prices; i++) {
		const struct plan_price *pp = &prev->prices[i];
		if (pp->meter < 0 || pp->meter >= nm || (!own[pp->meter] && !removed[pp->meter])) {
			all[k++] = *pp;
			continue;
		}
		/* replaced or removed here: its span ends at this version (a
		 * version with mistakes may not have resolved: the plan is
		 * refused anyway) */
		if (pp->origin < 0 || (size_t)pp->origin >= vi || (size_t)pp->origin_index >= p->versions[pp->origin].n_prices)
			continue;
		struct plan_price *o = &p->versions[pp->origin].prices[pp->origin_index];
		if (o->until_ns == INT64_MAX)
			o->until_ns = v->from_ns;
	}
	for (size_t i = 0; i < v->n_prices; i++) {
		all[k] = v->prices[i];
		all[k].origin_index = (int)k;
		k++;
	}
	free(v->prices);
	v->prices = all;
	v->n_own = v->n_prices;
	v->n_prices = k;
}

static void parse_version(struct ctx *c, const struct cfg_node *n, struct plan *p, size_t vi)
{
	struct plan_version *v = &p->versions[vi];
	struct tally_err e = { 0 };
	memset(v, 0, sizeof(*v));
	if (keep(c, cfg_check_keys(n, "version", version_keys, &e), &e) ||
	    keep(c, cfg_get_time(n, "from", &v->from_ns, &e), &e))
		return;
	if (!cfg_get(n, "from"))
		add_err(c, n, "a version needs 'from' (the instant its prices start)");
	else if (v->from_ns % NS_PER_HOUR)
		add_err(c, cfg_get(n, "from"), "'from' must be a whole UTC hour (usage is kept per hour)");
	parse_prices(c, n, &v->prices, &v->n_prices);
	const struct cfg_node *fees = NULL;
	if (keep(c, cfg_get_seq(n, "fees", 0, SIZE_MAX, &fees, &e), &e) || !fees)
		goto minimum;
	if (!(v->fees = calloc(fees->n_kids, sizeof(*v->fees)))) {
		add_err(c, fees, "out of memory");
		return;
	}
	for (size_t i = 0; i < fees->n_kids; i++) {
		const struct cfg_node *f = fees->kids[i];
		struct plan_fee *pf = &v->fees[v->n_fees];
		int64_t nanos;
		bool has;
		if (keep(c, cfg_check_keys(f, "fee", fee_keys, &e), &e) ||
		    keep(c, cfg_get_string(f, "name", pf->name, sizeof(pf->name), &e), &e) ||
		    keep(c, cfg_get_bool(f, "prorate", &pf->prorate, &e), &e) ||
		    decimal(c, f, "amount", c->p->minor_digits, money_what(c->p), &nanos, &has))
			continue;
		if (!has || !pf->name[0]) {
			add_err(c, f, "a fee needs a 'name' and an 'amount'");
			continue;
		}
		pf->amount_minor = nanos_to_minor(nanos, c->p->minor_digits);
		v->n_fees++;
	}
minimum:;
	int64_t nanos;
	bool has;
	if (decimal(c, n, "minimum", c->p->minor_digits, money_what(c->p), &nanos, &has) == 0 && has) {
		v->has_minimum = true;
		v->minimum_minor = nanos_to_minor(nanos, c->p->minor_digits);
	}
	inherit(c, n, p, vi);
}

/* Published instance-level tables (availability below -> credit of the
 * monthly charges), as each provider published them; check a provider's
 * current terms before promising them. */
const struct plan_sla_preset plan_sla_presets[] = {
	{ "aws-ec2-instance", "Amazon EC2 instance-level SLA", 995000,
	  { 995000, 990000, 950000 }, { 100000, 300000, 1000000 } },
	{ "aws-ec2-region", "Amazon EC2 region-level SLA", 999900,
	  { 999900, 990000, 950000 }, { 100000, 300000, 1000000 } },
	{ "gce-instance", "Google Compute Engine single instance", 999000,
	  { 999000, 990000, 950000 }, { 100000, 250000, 1000000 } },
	{ "azure-vm-single", "Azure single VM (premium storage)", 999000,
	  { 999000, 990000, 950000 }, { 100000, 250000, 1000000 } },
	{ NULL, NULL, 0, { 0 }, { 0 } },
};

static const char *const sla_keys[] = { "grace", "classes", NULL };
static const char *const class_keys[] = { "name", "select", "preset", "target", "credits", NULL };

static void parse_sla(struct ctx *c, const struct cfg_node *n)
{
	struct plan *p = c->p;
	struct tally_err e = { 0 };
	p->has_sla = true;
	p->sla_grace_ns = 5 * 60 * NS_PER_SEC;
	if (keep(c, cfg_check_keys(n, "sla", sla_keys, &e), &e) ||
	    keep(c, cfg_get_duration(n, "grace", 0, 24 * NS_PER_HOUR, &p->sla_grace_ns, &e), &e))
		return;
	const struct cfg_node *cl = NULL;
	if (keep(c, cfg_get_seq(n, "classes", 1, PLAN_MAX_SLA_CLASSES, &cl, &e), &e))
		return;
	if (!cl) {
		add_err(c, cfg_get(n, "classes") ? cfg_get(n, "classes") : n,
			"'classes': expected a list of 1 to %d SLA classes", PLAN_MAX_SLA_CLASSES);
		return;
	}
	for (size_t i = 0; i < cl->n_kids; i++) {
		const struct cfg_node *k = cl->kids[i];
		struct plan_sla_class *s = &p->sla[p->n_sla];
		memset(s, 0, sizeof(*s));
		if (keep(c, cfg_check_keys(k, "sla class", class_keys, &e), &e) ||
		    keep(c, cfg_get_string(k, "name", s->name, sizeof(s->name), &e), &e) ||
		    keep(c, cfg_get_string(k, "preset", s->preset, sizeof(s->preset), &e), &e))
			continue;
		/* reports and credit lines say a VM's class by its name */
		if (!s->name[0]) {
			add_err(c, k, "an SLA class needs a 'name'");
			continue;
		}
		int dup = 0;
		for (int j = 0; j < p->n_sla && !dup; j++)
			dup = !strcmp(p->sla[j].name, s->name);
		if (dup) {
			add_err(c, cfg_get(k, "name"), "SLA class '%s' is named twice (each class needs a name of its own)",
				s->name);
			continue;
		}
		if (parse_select(c, k, s->sel_key, s->sel_val, &s->n_sel))
			continue;
		bool has_target = cfg_get(k, "target") != NULL;
		const struct cfg_node *cr = cfg_get(k, "credits");
		if (s->preset[0]) {
			const struct plan_sla_preset *ps = plan_sla_presets;
			for (; ps->name && strcmp(ps->name, s->preset); ps++)
				;
			if (!ps->name) {
				add_err(c, cfg_get(k, "preset"), "unknown SLA preset '%s' (known: aws-ec2-instance,"
					" aws-ec2-region, gce-instance, azure-vm-single)", s->preset);
				continue;
			}
			if (has_target || cr) {
				add_err(c, k, "an SLA class takes a 'preset' or its own 'target' and 'credits', not both");
				continue;
			}
			s->target_ppm = ps->target_ppm;
			for (int t = 0; t < 3; t++) {
				s->credits[t].below_ppm = ps->below_ppm[t];
				s->credits[t].credit_ppm = ps->credit_ppm[t];
			}
			s->n_credits = 3;
		} else {
			if (!has_target || !cr) {
				add_err(c, k, "an SLA class needs 'target' and 'credits' (or a 'preset')");
				continue;
			}
			if (percent(c, k, "target", &s->target_ppm) ||
			    keep(c, cfg_get_seq(k, "credits", 1, PLAN_MAX_CREDITS, &cr, &e), &e))
				continue;
			if (!cr) {
				add_err(c, cfg_get(k, "credits"), "'credits': expected a list of 1 to %d tiers"
					" {below: 99.9%%, credit: 10%%}", PLAN_MAX_CREDITS);
				continue;
			}
			static const char *const credit_keys[] = { "below", "credit", NULL };
			bool ok = true;
			for (size_t t = 0; t < cr->n_kids && ok; t++) {
				const struct cfg_node *ct = cr->kids[t];
				if (keep(c, cfg_check_keys(ct, "credit", credit_keys, &e), &e) ||
				    percent(c, ct, "below", &s->credits[t].below_ppm) ||
				    percent(c, ct, "credit", &s->credits[t].credit_ppm)) {
					ok = false;
					break;
				}
				if (!cfg_get(ct, "below") || !cfg_get(ct, "credit")) {
					add_err(c, ct, "a credit tier needs 'below' and 'credit'");
					ok = false;
				} else if (t > 0 && s->credits[t].below_ppm >= s->credits[t - 1].below_ppm) {
					add_err(c, cfg_get(ct, "below"), "credit tiers' 'below' must decrease");
					ok = false;
				}
			}
			if (!ok)
				continue;
			s->n_credits = (int)cr->n_kids;
		}
		p->n_sla++;
	}
}

static const char *const issuer_extra[] = { "payment", "payment_terms", "invoice_prefix", "credit_note_prefix",
					    NULL };

/* issuer: a name (the numbering series, as before), or a map of the
 * issuer's details whose name is the series (customer.h). */
static void parse_issuer(struct ctx *c, const struct cfg_node *n)
{
	struct plan *p = c->p;
	struct issuer *is = &p->issuer_info;
	struct tally_err e = { 0 };
	uint64_t days = 30;

	memset(is, 0, sizeof(*is));
	is->payment_days = 30;
	str_copy(is->credit_prefix, "CN-", sizeof(is->credit_prefix));
	if (n && n->type == CFG_SCALAR) {
		keep(c, cfg_get_string(c->root, "issuer", p->issuer, sizeof(p->issuer), &e), &e);
	} else if (n && n->type == CFG_MAP) {
		if (party_parse(n, "issuer", issuer_extra, &is->party, c->errs) == 0) {
			str_copy(p->issuer, is->party.name, sizeof(p->issuer));
			if (strlen(is->party.name) >= sizeof(p->issuer))
				add_err(c, cfg_get(n, "name"), "'issuer': the name numbers the invoices and is at most"
					" %zu characters", sizeof(p->issuer) - 1);
		}
		char pay[PARTY_MAX_LINES][128];
		const struct cfg_node *pn = cfg_get(n, "payment");
		if (pn && pn->type == CFG_SEQ && pn->n_kids <= PARTY_MAX_LINES) {
			for (size_t i = 0; i < pn->n_kids; i++) {
				const struct cfg_node *k = pn->kids[i];
				if (k->type != CFG_SCALAR || strlen(k->value) >= sizeof(pay[0])) {
					add_err(c, k, "'payment': each line is one string of at most %zu characters",
						sizeof(pay[0]) - 1);
					break;
				}
				str_copy(is->payment[is->n_payment++], k->value, sizeof(is->payment[0]));
			}
		} else if (pn) {
			add_err(c, pn, "'payment': expected a list of at most %d lines (IBAN, BIC, ...)", PARTY_MAX_LINES);
		}
		if (!keep(c, cfg_get_uint(n, "payment_terms", 0, 365, &days, &e), &e))
			is->payment_days = (int)days;
		keep(c, cfg_get_string(n, "invoice_prefix", is->invoice_prefix, sizeof(is->invoice_prefix), &e), &e);
		keep(c, cfg_get_string(n, "credit_note_prefix", is->credit_prefix, sizeof(is->credit_prefix), &e), &e);
		if (!strcmp(is->invoice_prefix, is->credit_prefix))
			add_err(c, n, "'issuer': credit notes are numbered in a series of their own: give"
				" 'credit_note_prefix' a value other than 'invoice_prefix'");
	} else if (n) {
		add_err(c, n, "'issuer': expected a name, or a map of the issuer's details (name, address, vat_id,"
			" ...)");
	}
	if (!p->issuer[0])
		str_copy(p->issuer, p->name[0] ? p->name : "tally", sizeof(p->issuer));
	str_copy(is->series, p->issuer, sizeof(is->series));
}

static const char *const top_keys[] = { "plan", "issuer", "currency", "minor_digits", "rounding", "tax", "versions",
					"tenants", "sla", NULL };

int plan_load(const char *path, struct plan *p, struct plan_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	int rc;
	FILE *f = fopen(path, "rb");
	if (!f) {
		rc = -errno;
		memset(p, 0, sizeof(*p));
		memset(errs, 0, sizeof(*errs));
		snprintf(errs->msg[0], sizeof(errs->msg[0]), "%s: cannot open: %s", path, strerror(-rc));
		errs->n = errs->total = 1;
		return rc;
	}
	FILE *m = open_memstream(&text, &len);
	char buf[8192];
	size_t got;
	while (m && (got = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, got, m);
	int bad = ferror(f) || !m;
	fclose(f);
	if (m)
		fclose(m);
	if (bad) {
		free(text);
		memset(p, 0, sizeof(*p));
		memset(errs, 0, sizeof(*errs));
		snprintf(errs->msg[0], sizeof(errs->msg[0]), "%s: cannot read", path);
		errs->n = errs->total = 1;
		return -EIO;
	}
	rc = plan_load_text(path, text, len, p, errs);
	free(text);
	return rc;
}

int plan_load_text(const char *path, const char *text, size_t len, struct plan *p, struct plan_errors *errs)
{
	struct cfg_node *root = NULL;
	struct tally_err e = { 0 };
	struct ctx c = { path, errs, p, NULL };
	int rc;

	memset(p, 0, sizeof(*p));
	memset(errs, 0, sizeof(*errs));
	if ((rc = cfg_load_string(path, text, len, &root, &e))) {
		keep(&c, rc, &e);
		return rc;
	}
	if (!(p->source = strndup(text, len))) {
		add_err(&c, NULL, "out of memory");
		goto out;
	}
	if (!root || root->type != CFG_MAP) {
		add_err(&c, root, "expected a rate plan: a map with currency and versions");
		goto out;
	}
	c.root = root;
	keep(&c, cfg_check_keys(root, "plan", top_keys, &e), &e);
	keep(&c, cfg_get_string(root, "plan", p->name, sizeof(p->name), &e), &e);
	parse_issuer(&c, cfg_get(root, "issuer"));
	const struct cfg_node *cur = cfg_get(root, "currency");
	p->minor_digits = -1;
	if (!cur) {
		add_err(&c, root, "missing 'currency' (an ISO 4217 code such as EUR)");
	} else if (cur->type != CFG_SCALAR || strlen(cur->value) != 3 || !isupper((unsigned char)cur->value[0]) ||
		   !isupper((unsigned char)cur->value[1]) || !isupper((unsigned char)cur->value[2])) {
		add_err(&c, cur, "'currency': expected an ISO 4217 code of three capital letters");
	} else {
		str_copy(p->currency, cur->value, sizeof(p->currency));
		for (size_t i = 0; i < sizeof(currencies) / sizeof(currencies[0]); i++)
			if (!strcmp(currencies[i].code, p->currency))
				p->minor_digits = currencies[i].digits;
	}
	uint64_t md = 0;
	if (cfg_get(root, "minor_digits")) {
		if (!keep(&c, cfg_get_uint(root, "minor_digits", 0, MONEY_MAX_MINOR_DIGITS, &md, &e), &e))
			p->minor_digits = (int)md;
	} else if (p->currency[0] && p->minor_digits < 0) {
		add_err(&c, cur, "currency '%s': give 'minor_digits' (this tally does not know its minor"
			" unit)", p->currency);
	}
	if (p->minor_digits < 0)
		p->minor_digits = 2;
	static const char *const modes[] = { "half-even", "half-up", "down", NULL };
	int mode = 0;
	keep(&c, cfg_get_enum(root, "rounding", modes, &mode, &e), &e);
	p->rounding = (enum money_round)mode;

	const struct cfg_node *tax = NULL;
	static const char *const tax_keys[] = { "name", "rate", NULL };
	keep(&c, cfg_get_seq(root, "tax", 0, PLAN_MAX_TAXES, &tax, &e), &e);
	for (size_t i = 0; tax && i < tax->n_kids; i++) {
		const struct cfg_node *t = tax->kids[i];
		struct plan_tax *pt = &p->taxes[p->n_taxes];
		if (keep(&c, cfg_check_keys(t, "tax", tax_keys, &e), &e) ||
		    keep(&c, cfg_get_string(t, "name", pt->name, sizeof(pt->name), &e), &e) ||
		    percent(&c, t, "rate", &pt->ppm))
			continue;
		if (!pt->name[0] || !cfg_get(t, "rate")) {
			add_err(&c, t, "a tax needs a 'name' and a 'rate'");
			continue;
		}
		p->n_taxes++;
	}

	const struct cfg_node *vs = NULL;
	keep(&c, cfg_get_seq(root, "versions", 1, SIZE_MAX, &vs, &e), &e);
	if (!vs && !cfg_get(root, "versions")) {
		add_err(&c, root, "missing 'versions': a list of at least one version with 'from' and 'prices'");
	} else if (vs && !(p->versions = calloc(vs->n_kids, sizeof(*p->versions)))) {
		add_err(&c, vs, "out of memory");
	} else if (vs) {
		for (size_t i = 0; i < vs->n_kids; i++) {
			parse_version(&c, vs->kids[i], p, p->n_versions);
			if (p->n_versions > 0 &&
			    p->versions[p->n_versions].from_ns <= p->versions[p->n_versions - 1].from_ns)
				add_err(&c, cfg_get(vs->kids[i], "from") ? cfg_get(vs->kids[i], "from") : vs->kids[i],
					"versions must be in increasing 'from' order");
			p->n_versions++;
		}
	}
	if (cfg_get(root, "sla"))
		parse_sla(&c, cfg_get(root, "sla"));
	const struct cfg_node *tn = NULL;
	keep(&c, cfg_get_map(root, "tenants", &tn, &e), &e);
	if (tn && !(p->tenants = calloc(tn->n_kids, sizeof(*p->tenants)))) {
		add_err(&c, tn, "out of memory");
	} else if (tn) {
		static const char *const tenant_keys[] = { "discount", "prices", NULL };
		for (size_t i = 0; i < tn->n_kids; i++) {
			const struct cfg_node *k = tn->kids[i];
			struct plan_tenant *t = &p->tenants[p->n_tenants];
			if (strlen(k->key) >= sizeof(t->name)) {
				add_err_at(&c, k->key_line, k->key_col, "tenant '%s': a tenant's name is at most %zu characters", k->key,
					sizeof(t->name) - 1);
				continue;
			}
			str_copy(t->name, k->key, sizeof(t->name));
			if (keep(&c, cfg_check_keys(k, "tenant", tenant_keys, &e), &e) ||
			    percent(&c, k, "discount", &t->discount_ppm))
				continue;
			parse_prices(&c, k, &t->prices, &t->n_prices);
			for (size_t j = 0; j < t->n_prices; j++) {
				t->prices[j].origin = -1;
				t->prices[j].origin_index = (int)j;
				t->prices[j].until_ns = INT64_MAX;
			}
			p->n_tenants++;
		}
	}
out:
	cfg_free(root);
	if (errs->total) {
		plan_release(p);
		return -EINVAL;
	}
	return 0;
}

void plan_release(struct plan *p)
{
	for (size_t i = 0; i < p->n_versions; i++) {
		free(p->versions[i].prices);
		free(p->versions[i].fees);
	}
	free(p->versions);
	for (size_t i = 0; i < p->n_tenants; i++)
		free(p->tenants[i].prices);
	free(p->tenants);
	free(p->source);
	p->source = NULL;
	p->versions = NULL;
	p->tenants = NULL;
	p->n_versions = p->n_tenants = 0;
}

const struct plan_tenant *plan_tenant_find(const struct plan *p, const char *tenant)
{
	for (size_t i = 0; i < p->n_tenants; i++)
		if (!strcmp(p->tenants[i].name, tenant))
			return &p->tenants[i];
	return NULL;
}

const struct plan_price *plan_price_origin(const struct plan *p, const struct plan_price *pp)
{
	return pp->origin < 0 ? pp : &p->versions[pp->origin].prices[pp->origin_index];
}

int plan_version_at(const struct plan *p, int64_t t_ns)
{
	int v = -1;
	for (size_t i = 0; i < p->n_versions && p->versions[i].from_ns <= t_ns; i++)
		v = (int)i;
	return v;
}

/* The value of label key in "k=v,k=v" into buf, or NULL when absent. */
static const char *label_value(const char *labels, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	for (const char *p = labels; p && *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = n - kl - 1;
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, p + kl + 1, vl);
			buf[vl] = '\0';
			return buf;
		}
		p += n + (end ? 1 : 0);
	}
	return NULL;
}

bool plan_select(const char (*keys)[64], const char (*vals)[64], int n, const struct plan_attrs *a)
{
	char buf[512];
	for (int i = 0; i < n; i++) {
		const char *k = keys[i], *have;
		if (!strcmp(k, "flavor"))
			have = a->flavor;
		else if (!strcmp(k, "project"))
			have = a->project;
		else if (!strcmp(k, "user"))
			have = a->user;
		else if (!strcmp(k, "name"))
			have = a->name;
		else if (!strcmp(k, "host"))
			have = a->host;
		else
			have = label_value(a->labels, k, buf, sizeof(buf));
		if (!have || strcmp(have, vals[i]))
			return false;
	}
	return true;
}
