/*
 * invoice.c: the lines of an invoice from rated usage (invoice.h). The
 * renderers are in invoice_render.c.
 */
#include "invoice.h"
#include "charges.h"
#include "err.h"
#include "meter.h"
#include "sla.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_DAY (24 * NS_PER_HOUR)

static const char *const groups[] = { "compute", "storage", "network", "other", "fees", "charges", "credits",
				      "adjustments",
				      NULL };

static const char *meter_group(int m)
{
	const char *n = meter_get(m)->name;
	if (!strncmp(n, "disk.", 5) || !strncmp(n, "storage.", 8))
		return groups[1];
	if (!strncmp(n, "network.", 8) || !strncmp(n, "if.", 3))
		return groups[2];
	if (m == M_CPU || m == M_VCPUS || m == M_INSTANCE || !strncmp(n, "memory", 6))
		return groups[0];
	return groups[3];
}

static int group_rank(const char *g)
{
	for (int i = 0; groups[i]; i++)
		if (groups[i] == g)
			return i;
	return 99;
}

bool invoice_tenant_in_period(const struct rate_result *r, int t, int64_t from_ns, int64_t to_ns)
{
	const struct rate_tenant *rt = &r->tenants[t];
	return rt->has_usage || (rt->first_ns < to_ns && rt->last_ns >= from_ns);
}

/* Does the plan price meter m for this tenant anywhere (any version, or
 * its own prices)? Usage of such a meter that no price matched is noted on
 * the invoice with its quantity, never left off without a word. */
static bool plan_prices_meter(const struct plan *p, const struct plan_tenant *pt, int m)
{
	for (size_t i = 0; pt && i < pt->n_prices; i++)
		if (pt->prices[i].meter == m)
			return true;
	for (size_t v = 0; v < p->n_versions; v++)
		for (size_t i = 0; i < p->versions[v].n_prices; i++)
			if (p->versions[v].prices[i].meter == m)
				return true;
	return false;
}

/* A usage line's description: the price's own, else the meter's title
 * and the values its selector requires ("vCPUs (m1.small)"): what the
 * customer reads, where the meter and selector are for machines. */
static void describe(const struct plan_price *pp, bool own_price, char *buf, size_t len)
{
	size_t used;
	if (pp->description[0]) {
		snprintf(buf, len, "%s", pp->description);
		return;
	}
	used = (size_t)snprintf(buf, len, "%s", meter_get(pp->meter)->title);
	for (int i = 0; i < pp->n_sel && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : " (", pp->sel_val[i]);
	if (pp->n_sel && used < len)
		used += (size_t)snprintf(buf + used, len - used, ")");
	if (own_price && used < len)
		snprintf(buf + used, len - used, ", contract price");
}

static void selector_text(const struct plan_price *pp, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; i < pp->n_sel && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", i ? "," : "", pp->sel_key[i],
					 pp->sel_val[i]);
}

/* *out = v, or a clear error naming the tenant and the sum: sums of lines
 * are taken in 128 bits (no partial sum can wrap) and narrowed once here,
 * so money never wraps around (an int64 of minor units holds 9.2e18). */
static int narrow(__int128 v, int64_t *out, const struct invoice *inv, const char *what, struct tally_err *e)
{
	char most[48];
	if (v <= INT64_MAX && v >= -INT64_MAX) {
		*out = (int64_t)v;
		return 0;
	}
	return err_set(e, -ERANGE, "tenant '%s': %s cannot be represented (an amount is at most %s %s)", inv->tenant,
		       what, money_format(INT64_MAX, inv->minor_digits, most, sizeof(most)), inv->currency);
}

static int push(void **arr, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void *p = realloc(*arr, nc * size);
		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = nc;
	}
	memset((char *)*arr + *n * size, 0, size);
	(*n)++;
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	const struct invoice_line *x = a, *y = b;
	int gx = group_rank(x->group), gy = group_rank(y->group);
	if (gx != gy)
		return gx < gy ? -1 : 1;
	const int fx[4] = { x->key.version, x->key.override, x->key.price, x->key.meter };
	const int fy[4] = { y->key.version, y->key.override, y->key.price, y->key.meter };
	for (int i = 0; i < 4; i++)
		if (fx[i] != fy[i])
			return fx[i] < fy[i] ? -1 : 1;
	return 0;
}

/* The usage lines (and notes) of tenant t: accs [lo, hi) are its own,
 * sorted by version, override, price, meter, resource. */
static int usage_lines(const struct plan *p, const struct rate_result *r, size_t lo, size_t hi,
		       struct invoice *inv, const struct plan_tenant *pt, struct tally_err *e)
{
	size_t cap_d = 0, cap_n = 0;
	for (size_t i = lo; i < hi;) {
		const struct rate_key *k = &r->accs[i].k;
		size_t j = i;
		__int128 qty = 0;
		int64_t cov = 0, span = 0, rows = 0;
		while (j < hi && r->accs[j].k.version == k->version && r->accs[j].k.override == k->override &&
		       r->accs[j].k.price == k->price && (k->price >= 0 || r->accs[j].k.meter == k->meter)) {
			if (__builtin_add_overflow(qty, r->accs[j].qty, &qty))
				return err_set(e, -ERANGE, "tenant '%s': usage of %s does not fit", inv->tenant,
					       meter_get(r->accs[j].k.meter)->name);
			cov += r->accs[j].covered_ns;
			span += r->accs[j].spanned_ns;
			rows += r->accs[j].rows;
			j++;
		}
		const struct plan_price *pp = rate_price(p, k);
		if (!pp) {
			/* usage of a meter the plan prices, but no selector matched */
			if (qty != 0 && plan_prices_meter(p, pt, k->meter)) {
				if (push((void **)&inv->notes, &inv->n_notes, &cap_n, sizeof(*inv->notes)))
					return err_set(e, -ENOMEM, "out of memory");
				struct invoice_note *nt = &inv->notes[inv->n_notes - 1];
				nt->meter = k->meter;
				nt->qty = qty;
				nt->rows = rows;
			}
			i = j;
			continue;
		}
		struct invoice_line *l = invoice_add_line(inv);
		if (!l)
			return err_set(e, -ENOMEM, "out of memory");
		l->type = INV_USAGE;
		l->key = *k;
		l->key.resource = -1;
		l->meter = pp->meter;
		l->group = meter_group(pp->meter);
		str_copy(l->unit, pp->unit.name, sizeof(l->unit));
		str_copy(l->unit_human, pp->unit.human, sizeof(l->unit_human));
		l->places = pp->unit.places;
		selector_text(pp, l->selector, sizeof(l->selector));
		l->tiered = pp->n_tiers > 0;
		l->model = pp->model;
		l->block_nanos = pp->block_nanos;
		l->price_nanos = l->tiered ? 0 : pp->price_nanos;
		l->covered_ns = cov;
		l->spanned_ns = span;
		l->rows = rows;
		l->qty = qty;
		/* the span the price is in force: from the version that wrote it
		 * until one replaces or removes it (a tenant's own: always) */
		int64_t vfrom = p->versions[k->override >= 0 ? 0 : k->version].from_ns;
		int64_t vto = pp->until_ns;
		l->from_ns = vfrom > inv->from_ns ? vfrom : inv->from_ns;
		l->to_ns = vto < inv->to_ns ? vto : inv->to_ns;
		describe(pp, k->override >= 0, l->description, sizeof(l->description));
		if (l->from_ns > inv->from_ns || l->to_ns < inv->to_ns) {
			/* the plan changed inside the period: say which part this is */
			char a[48];
			size_t n = strlen(l->description);
			bool from = l->from_ns > inv->from_ns;
			int64_t t = from ? l->from_ns : l->to_ns;
			time_format_iso(t, a, sizeof(a));
			if (t % NS_PER_DAY == 0)
				a[10] = '\0';   /* a whole day: the date says it */
			snprintf(l->description + n, sizeof(l->description) - n, " %s %s", from ? "from" : "until", a);
			if (from && l->to_ns < inv->to_ns) {
				n = strlen(l->description);
				time_format_iso(l->to_ns, a, sizeof(a));
				if (l->to_ns % NS_PER_DAY == 0)
					a[10] = '\0';
				snprintf(l->description + n, sizeof(l->description) - n, " until %s", a);
			}
		}
		/* the line's amount: rate_lines(), once every part of the period is known */
		/* per-resource detail: a priced line has one meter, so each
		 * resource has one acc in it */
		__int128 num, den;
		rate_unit_ratio(pp, inv->month_s ? inv->month_s : 1, &num, &den);
		for (size_t x = i; x < j; x++) {
			const struct rate_acc *a = &r->accs[x];
			if (push((void **)&inv->details, &inv->n_details, &cap_d, sizeof(*inv->details)))
				return err_set(e, -ENOMEM, "out of memory");
			struct invoice_detail *d = &inv->details[inv->n_details - 1];
			d->line = inv->n_lines - 1;
			d->qty_num = a->qty * den;
			d->qty_den = num;
			d->qty = a->qty;
			d->covered_ns = a->covered_ns;
			d->spanned_ns = a->spanned_ns;
			str_copy(d->resource, r->resources[a->k.resource].uuid, sizeof(d->resource));
			str_copy(d->name, r->resources[a->k.resource].name, sizeof(d->name));
		}
		i = j;
	}
	return 0;
}

/* Does selector a require every label b does, with its value? */
static bool selector_within(const struct plan_price *a, const struct plan_price *b)
{
	for (int i = 0; i < b->n_sel; i++) {
		int j = 0;
		while (j < a->n_sel && strcmp(a->sel_key[j], b->sel_key[i]))
			j++;
		if (j == a->n_sel || strcmp(a->sel_val[j], b->sel_val[i]))
			return false;
	}
	return true;
}

/* Do two usage lines price the same thing, so that one continues the
 * other's allowance, tiers and blocks? The same meter, the same selector,
 * both the tenant's own price or both the plan's. A selector is a set of
 * labels (a plan's map has each key once): {flavor: x, name: y} and
 * {name: y, flavor: x} select the same resources, so they are compared
 * as sets, not as the text that lists them in the plan's order. */
static bool same_chain(const struct plan *p, const struct invoice_line *a, const struct invoice_line *b)
{
	if (a->meter != b->meter || (a->key.override >= 0) != (b->key.override >= 0))
		return false;
	const struct plan_price *pa = rate_price(p, &a->key), *pb = rate_price(p, &b->key);
	return pa->n_sel == pb->n_sel && selector_within(pa, pb) && selector_within(pb, pa);
}

/* The amount of every usage line. One period has one free allowance and
 * one count for tiers and blocks per price (docs/invoice.md): when the plan
 * changes inside the period, each part is priced by its own version at the
 * positions its usage takes in the period's usage of that price, so the
 * part after the change starts where the part before it ended (start), and
 * volume pricing takes the tier the whole period reaches (total). */
static int rate_lines(const struct plan *p, struct invoice *inv, struct tally_err *e)
{
	for (size_t i = 0; i < inv->n_lines; i++) {
		struct invoice_line *l = &inv->lines[i];
		if (l->type != INV_USAGE)
			continue;
		if (l->qty < 0) {
			/* a delta meter's corrections netted below zero: no price
			 * (an allowance, a tier, a block) has a meaning there, and
			 * a credit is said with an amount, not with usage */
			char q[64];
			money_format_ratio(l->qty, 1, 0, q, sizeof(q));
			return err_set(e, -EINVAL, "tenant '%s', usage line %s%s%s%s: the period's usage nets to %s %s:"
				       " corrections of %s take back more than the period holds (book a correction"
				       " at the time of the usage it corrects; a credit is a charge with a negative"
				       " amount, tally charge add)", inv->tenant, l->description,
				       l->selector[0] ? " [" : "", l->selector, l->selector[0] ? "]" : "", q,
				       meter_get(l->meter)->unit, meter_get(l->meter)->name);
		}
		__int128 start = 0, total = 0;
		for (size_t j = 0; j < inv->n_lines; j++) {
			const struct invoice_line *o = &inv->lines[j];
			if (o->type != INV_USAGE || !same_chain(p, l, o))
				continue;
			total += o->qty;   /* each <= 2^96 (rate.h): no wrap */
			if (o->from_ns < l->from_ns)
				start += o->qty;
		}
		/* the allowance, prorated by the days the tenant existed when the
		 * price says so (rounded down to 10^-9 of a unit) */
		const struct plan_price *pp = rate_price(p, &l->key);
		int64_t free_nanos = pp->free_nanos;
		if (pp->prorate_free && inv->days_in_period > 0)
			free_nanos = (int64_t)((__int128)pp->free_nanos * inv->days_existed / inv->days_in_period);
		int rc = rate_amount(pp, inv->month_s, free_nanos, start, l->qty, total, p->minor_digits, p->rounding,
				     &l->calc, e);
		if (rc)
			return err_prefix(e, "tenant '%s', usage line %s%s%s%s", inv->tenant, l->description,
					  l->selector[0] ? " [" : "", l->selector, l->selector[0] ? "]" : ""), rc;
		l->amount_minor = l->calc.amount_minor;
	}
	return 0;
}

static int cmp_detail(const void *a, const void *b)
{
	const struct invoice_detail *x = a, *y = b;
	int c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if ((c = strcmp(x->name, y->name)))
		return c;
	return strcmp(x->resource, y->resource);
}

static int cmp_line_at(const void *a, const void *b, void *lines)
{
	const struct invoice_line *l = lines;
	return cmp_line(&l[*(const size_t *)a], &l[*(const size_t *)b]);
}

/* Lines into their printed order (group, version, price), and the details
 * re-pointed at their lines and sorted by resource name. */
static int sort_lines(struct invoice *inv, struct tally_err *e)
{
	size_t n = inv->n_lines, m = n ? n : 1;
	size_t *order = malloc(m * sizeof(*order)), *where = malloc(m * sizeof(*where));
	struct invoice_line *sorted = malloc(m * sizeof(*sorted));
	if (!order || !where || !sorted) {
		free(order);
		free(where);
		free(sorted);
		return err_set(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (n > 1)
		qsort_r(order, n, sizeof(*order), cmp_line_at, inv->lines);
	for (size_t i = 0; i < n; i++) {
		sorted[i] = inv->lines[order[i]];
		where[order[i]] = i;
	}
	free(inv->lines);
	inv->lines = sorted;
	for (size_t d = 0; d < inv->n_details; d++)
		inv->details[d].line = where[inv->details[d].line];
	if (inv->n_details > 1)
		qsort(inv->details, inv->n_details, sizeof(*inv->details), cmp_detail);
	free(order);
	free(where);
	return 0;
}

int invoice_build(const struct plan *p, const struct rate_result *r, int tenant, int64_t from_ns,
		  int64_t to_ns, struct invoice *inv, struct tally_err *e)
{
	const struct rate_tenant *rt = &r->tenants[tenant];
	const struct plan_tenant *pt = plan_tenant_find(p, rt->name);
	size_t lo = 0, hi;
	int rc;

	memset(inv, 0, sizeof(*inv));
	str_copy(inv->tenant, rt->name, sizeof(inv->tenant));
	str_copy(inv->plan, p->name, sizeof(inv->plan));
	str_copy(inv->currency, p->currency, sizeof(inv->currency));
	inv->minor_digits = p->minor_digits;
	inv->from_ns = from_ns;
	inv->to_ns = to_ns;
	inv->data_until_ns = r->data_until_ns;

	while (lo < r->n_accs && r->accs[lo].k.tenant < tenant)
		lo++;
	for (hi = lo; hi < r->n_accs && r->accs[hi].k.tenant == tenant; hi++)
		;
	/* days the tenant existed in the period, for prorated fees and
	 * allowances */
	inv->days_in_period = (to_ns - from_ns + NS_PER_DAY - 1) / NS_PER_DAY;
	inv->month_s = rate_month_seconds(from_ns, to_ns);
	int64_t s = rt->first_ns > from_ns ? rt->first_ns : from_ns;
	int64_t t = rt->last_ns < to_ns - 1 ? rt->last_ns : to_ns - 1;
	if (rt->first_ns == INT64_MAX || t < s)
		inv->days_existed = rt->has_usage ? inv->days_in_period : 0;
	else
		inv->days_existed = t / NS_PER_DAY - s / NS_PER_DAY + 1;
	if (inv->days_existed > inv->days_in_period)
		inv->days_existed = inv->days_in_period;

	if ((rc = usage_lines(p, r, lo, hi, inv, pt, e)))
		goto fail;
	if ((rc = rate_lines(p, inv, e)) || (rc = sort_lines(inv, e)))
		goto fail;
	for (size_t i = 0; i < inv->n_lines; i++) {
		inv->usage_minor += inv->lines[i].amount_minor;
		inv->covered_ns += inv->lines[i].covered_ns;
		inv->spanned_ns += inv->lines[i].spanned_ns;
	}

	int v = plan_version_at(p, s);
	if (v < 0)
		v = plan_version_at(p, to_ns - 1);
	const struct plan_version *pv = v >= 0 ? &p->versions[v] : NULL;
	/* fees and the minimum are owed for a period the tenant was in (usage
	 * or a resource alive), not for one it is invoiced for only because a
	 * charge or a late adjustment falls in it */
	const bool present = invoice_tenant_in_period(r, tenant, from_ns, to_ns);
	for (size_t f = 0; pv && present && f < pv->n_fees; f++) {
		struct invoice_line *l = invoice_add_line(inv);
		if (!l) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto fail;
		}
		l->type = INV_FEE;
		l->group = groups[4];
		l->meter = -1;
		l->key.version = v;
		l->from_ns = from_ns;
		l->to_ns = to_ns;
		l->price_nanos = 0;
		if (pv->fees[f].prorate) {
			l->amount_minor = (int64_t)money_round_div((__int128)pv->fees[f].amount_minor * inv->days_existed,
								   inv->days_in_period, p->rounding);
			snprintf(l->description, sizeof(l->description), "%s (%lld of %lld days)", pv->fees[f].name,
				 (long long)inv->days_existed, (long long)inv->days_in_period);
		} else {
			l->amount_minor = pv->fees[f].amount_minor;
			snprintf(l->description, sizeof(l->description), "%s", pv->fees[f].name);
		}
	}
	__int128 after_discount = inv->usage_minor;
	if (pt && pt->discount_ppm > 0 && inv->usage_minor != 0) {
		int64_t d;
		struct money_u256 dn;
		/* ppm of the sum, rounded once; 256 bits hold the product */
		bool neg = inv->usage_minor < 0;
		money_u256_mul((unsigned __int128)(neg ? -inv->usage_minor : inv->usage_minor),
			       (unsigned __int128)pt->discount_ppm, &dn);
		if (money_u256_round(&dn, neg, 1000000, p->rounding, &d)) {
			char most[48];
			rc = err_set(e, -ERANGE, "tenant '%s': the discount cannot be represented (an amount is at most"
				     " %s %s)", inv->tenant, money_format(INT64_MAX, p->minor_digits, most, sizeof(most)),
				     p->currency);
			goto fail;
		}
		struct invoice_line *l = invoice_add_line(inv);
		if (!l) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto fail;
		}
		l->type = INV_DISCOUNT;
		l->group = groups[4];
		l->meter = -1;
		l->amount_minor = -d;
		l->from_ns = from_ns;
		l->to_ns = to_ns;
		char pct[40];
		/* 1 % = 10^4 ppm, and a percentage as nanos is ppm * 10^9 / 10^4 */
		money_format_price(pt->discount_ppm * 100000, pct, sizeof(pct));
		snprintf(l->description, sizeof(l->description), "discount %s%% of usage", pct);
		after_discount -= d;
	}
	if (pv && present && pv->has_minimum && after_discount < pv->minimum_minor) {
		struct invoice_line *l = invoice_add_line(inv);
		if (!l) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto fail;
		}
		char m[40];
		l->type = INV_MINIMUM;
		l->group = groups[4];
		l->meter = -1;
		if ((rc = narrow(pv->minimum_minor - after_discount, &l->amount_minor, inv,
				 "the minimum's true-up", e)))
			goto fail;
		l->from_ns = from_ns;
		l->to_ns = to_ns;
		snprintf(l->description, sizeof(l->description), "minimum commitment %s: true-up",
			 money_format(pv->minimum_minor, p->minor_digits, m, sizeof(m)));
	}
	if ((rc = invoice_total(inv, p, e)))
		goto fail;
	return 0;
fail:
	invoice_release(inv);
	return rc;
}

int invoice_total(struct invoice *inv, const struct plan *p, struct tally_err *e)
{
	__int128 sub = 0, base = 0, total;
	int rc;
	for (size_t i = 0; i < inv->n_lines; i++) {
		sub += inv->lines[i].amount_minor;
		if (inv->lines[i].type != INV_ADJUSTMENT)
			base += inv->lines[i].amount_minor;
	}
	if ((rc = narrow(sub, &inv->subtotal_minor, inv, "the subtotal", e)) ||
	    (rc = narrow(base, &inv->base_minor, inv, "the subtotal of the period", e)))
		return rc;
	total = inv->subtotal_minor;
	inv->n_taxes = 0;
	/* reverse charge and exempt invoices carry no tax, only their note */
	for (int i = 0; inv->tax == TAX_DOMESTIC && i < p->n_taxes; i++) {
		struct invoice_tax *tx = &inv->taxes[inv->n_taxes++];
		str_copy(tx->name, p->taxes[i].name, sizeof(tx->name));
		tx->ppm = p->taxes[i].ppm;
		/* a rate of at most 100 % of an int64: the tax fits */
		if (money_percent(inv->subtotal_minor, tx->ppm, p->rounding, &tx->amount_minor))
			return err_set(e, -ERANGE, "tenant '%s': the tax '%s' cannot be represented", inv->tenant,
				       tx->name);
		total += tx->amount_minor;
	}
	return narrow(total, &inv->total_minor, inv, "the total", e);
}

struct invoice_line *invoice_add_line(struct invoice *inv)
{
	/* lines grow one at a time after the build: realloc to the exact size */
	struct invoice_line *n = realloc(inv->lines, (inv->n_lines + 1) * sizeof(*n));
	if (!n)
		return NULL;
	inv->lines = n;
	memset(&n[inv->n_lines], 0, sizeof(*n));
	return &n[inv->n_lines++];
}

void invoice_release(struct invoice *inv)
{
	free(inv->lines);
	free(inv->details);
	free(inv->notes);
	inv->lines = NULL;
	inv->details = NULL;
	inv->notes = NULL;
	inv->n_lines = inv->n_details = inv->n_notes = 0;
}

/* SLA credit lines (invoice.h): the credit belongs to the invoice, what
 * earned it to the SLA report (sla.h). */
int invoice_sla_credits(struct invoice *inv, const struct sla_report *r, const struct plan *p, struct tally_err *e)
{
	/* the tenant's discount takes its share of every usage line: what a
	 * VM is charged on the invoice is the rest, (10^6 - discount) ppm of
	 * its shares. A credit of more would pay the tenant back more than it
	 * paid, and a 100 % credit could turn the invoice negative. */
	const struct plan_tenant *pt = plan_tenant_find(p, inv->tenant);
	const int64_t kept_ppm = 1000000 - (pt && pt->discount_ppm > 0 ? pt->discount_ppm : 0);
	for (size_t i = 0; i < r->n_vms; i++) {
		const struct sla_vm *v = &r->vms[i];
		if (v->credit_ppm <= 0 || strcmp(v->tenant, inv->tenant))
			continue;
		/* the VM's charges, in millionths of a minor unit: its share of
		 * each usage line (amount x its quantity / the line's), exact */
		__int128 charges = 0, share;
		int64_t credit = 0;
		for (size_t d = 0; d < inv->n_details; d++) {
			const struct invoice_detail *x = &inv->details[d];
			const struct invoice_line *l = &inv->lines[x->line];
			if (strcmp(x->resource, v->uuid) || l->qty <= 0 || l->amount_minor < 0 || x->qty < 0)
				continue;
			struct money_u256 num;
			money_u256_mul((unsigned __int128)l->amount_minor * 1000000, (unsigned __int128)x->qty, &num);
			if (money_u256_round_wide(&num, (unsigned __int128)l->qty, MONEY_HALF_EVEN, &share) ||
			    __builtin_add_overflow(charges, share, &charges))
				return err_set(e, -ERANGE, "tenant '%s': the charges of %s cannot be represented",
					       inv->tenant, v->uuid);
		}
		/* charges after the discount, in 10^-12 of a minor unit: exact
		 * (charges < 2^100, kept_ppm <= 10^6 < 2^20) */
		unsigned __int128 net;
		struct money_u256 cn;
		if (__builtin_mul_overflow((unsigned __int128)charges, (unsigned __int128)kept_ppm, &net))
			return err_set(e, -ERANGE, "tenant '%s': the charges of %s cannot be represented",
				       inv->tenant, v->uuid);
		money_u256_mul(net, (unsigned __int128)v->credit_ppm, &cn);
		if (money_u256_round(&cn, false, (unsigned __int128)1000000 * 1000000 * 1000000, p->rounding, &credit))
			return err_set(e, -ERANGE, "tenant '%s': the SLA credit of %s cannot be represented", inv->tenant,
				       v->uuid);
		if (credit == 0)
			continue;
		struct invoice_line *l = invoice_add_line(inv);
		if (!l)
			return err_set(e, -ENOMEM, "out of memory");
		char av[24], pct[24], ch[48], a[48], d[32];
		int64_t chm = (int64_t)money_round_div((__int128)net, (__int128)1000000 * 1000000, MONEY_HALF_EVEN);
		l->type = INV_CREDIT;
		l->group = "credits";
		l->meter = -1;
		l->from_ns = v->from_ns;
		l->to_ns = v->to_ns;
		l->amount_minor = -credit;
		money_format_price(v->credit_ppm * 100000, pct, sizeof(pct));   /* ppm -> % as nanos */
		int n = snprintf(l->description, sizeof(l->description), "SLA credit %s: %s%% of %s (%s%% available",
				 v->name[0] ? v->name : v->uuid, pct, money_format(chm, inv->minor_digits, ch, sizeof(ch)),
				 sla_availability_text(v, av, sizeof(av)));
		if (v->n_incidents && n > 0 && (size_t)n < sizeof(l->description))
		{
			char more[48] = "";
			if (v->n_incidents > 1)
				snprintf(more, sizeof(more), "; and %zu more incident%s", (size_t)v->n_incidents - 1,
					 v->n_incidents > 2 ? "s" : "");
			snprintf(l->description + n, sizeof(l->description) - (size_t)n, "; %s %s, %s%s)",
				 v->incidents[0].cause, time_format_iso(v->incidents[0].start_ns, a, sizeof(a)),
				 sla_duration_text(v->incidents[0].counted_ns, d, sizeof(d)), more);
		}
		else if (n > 0 && (size_t)n < sizeof(l->description))
			snprintf(l->description + n, sizeof(l->description) - (size_t)n, ")");
	}
	return 0;
}

/* One-off charges of the period (ledger/charges.h), to put on invoices. */
struct charge {
	char tenant[64], description[192], amount[48], currency[8];
	int64_t id, from_ns, to_ns, amount_minor;
	int64_t nanos;               /* the amount in 10^-9 of the currency unit; parse failed: INT64_MIN */
	bool undone;                 /* left off: it and a later credit of the same amount (charges_check()) */
};

struct charges {
	const struct plan *p;
	struct charge *v;
	size_t n, cap;
	struct tally_err *e;
};

static int on_charge(void *ctx, const struct ledger_charge *c)
{
	struct charges *cs = ctx;
	struct tally_err pe = { 0 };
	if (push((void **)&cs->v, &cs->n, &cs->cap, sizeof(*cs->v)))
		return err_set(cs->e, -ENOMEM, "out of memory");
	struct charge *x = &cs->v[cs->n - 1];
	memset(x, 0, sizeof(*x));
	str_copy(x->tenant, c->tenant, sizeof(x->tenant));
	str_copy(x->description, c->description, sizeof(x->description));
	str_copy(x->amount, c->amount, sizeof(x->amount));
	str_copy(x->currency, c->currency, sizeof(x->currency));
	x->id = c->id;
	x->from_ns = c->from_ns;
	x->to_ns = c->to_ns;
	if (money_parse_price(c->amount, &x->nanos, &pe))
		x->nanos = INT64_MIN;
	return 0;
}

/* Whether charge c can be a line of an invoice in the plan's currency and
 * minor units (q: 10^-9 units a minor unit). */
static bool charge_fits(const struct charge *c, const struct plan *p, int64_t q)
{
	return (!c->currency[0] || !strcmp(c->currency, p->currency)) && c->nanos != INT64_MIN && c->nanos % q == 0;
}

/* Whether r knows tenant (its resources have had it). */
static bool tenant_known(const struct rate_result *r, const char *tenant)
{
	for (size_t t = 0; t < r->n_tenants; t++)
		if (!strcmp(r->tenants[t].name, tenant))
			return true;
	return false;
}

/* Every charge read is an amount of the plan's currency and minor units
 * for a tenant the ledger knows (an invoice can carry it), or is undone by
 * a later credit of the same amount (the same tenant, period and
 * currency): the ledger's charges are append-only, so that credit is how
 * a mistake is taken back (docs/invoice.md), and a pair that no line can
 * show (1.005 in EUR of 2 decimals, another currency, a tenant no invoice
 * is made for) nets to nothing and is left off. One that is neither stops
 * the invoice, naming it and how to undo it: never a charge left off
 * without a word. r is NULL for the combined account (every charge on
 * it). */
static int charges_check(struct charges *cs, const struct rate_result *r)
{
	const struct plan *p = cs->p;
	const int64_t q = money_nanos_per_minor(p->minor_digits);
	for (size_t i = 0; i < cs->n; i++) {
		struct charge *c = &cs->v[i];
		bool known = !r || tenant_known(r, c->tenant);
		if (c->undone || (known && charge_fits(c, p, q)))
			continue;
		for (size_t j = i + 1; j < cs->n && !c->undone; j++) {
			struct charge *d = &cs->v[j];
			if (!d->undone && c->nanos != INT64_MIN && d->nanos == -c->nanos && d->id > c->id &&
			    !strcmp(d->tenant, c->tenant) && !strcmp(d->currency, c->currency) &&
			    d->from_ns == c->from_ns && d->to_ns == c->to_ns)
				c->undone = d->undone = true;
		}
		if (c->undone)
			continue;
		char what[160];
		if (!known)
			snprintf(what, sizeof(what), "is for a tenant no resource of the ledger has had, so no invoice"
				 " can carry it");
		else if (c->currency[0] && strcmp(c->currency, p->currency))
			snprintf(what, sizeof(what), "is in %s, the plan '%s' prices in %s", c->currency, p->name,
				 p->currency);
		else
			snprintf(what, sizeof(what), "amount '%s' is not an amount in %s (at most %d decimals)", c->amount,
				 p->currency, p->minor_digits);
		/* the opposite amount: its sign turned, whichever it was written with */
		bool neg = c->amount[0] == '-';
		const char *magnitude = c->amount + (neg || c->amount[0] == '+');
		return err_set(cs->e, -EINVAL, "charge #%lld of tenant '%s' %s; charges are never edited: undo it with"
			       " one of the opposite amount for the same period (tally charge add --amount %s%s%s%s)",
			       (long long)c->id, c->tenant, what, neg ? "" : "-", magnitude,
			       c->currency[0] ? " --currency " : "", c->currency);
	}
	for (size_t i = 0; i < cs->n; i++)
		if (!cs->v[i].undone)
			cs->v[i].amount_minor = cs->v[i].nanos / q;
	return 0;
}

/* Whether tenant has a charge on its invoice of the period. */
static bool has_charge(const struct charges *cs, const char *tenant)
{
	for (size_t i = 0; i < cs->n; i++)
		if (!cs->v[i].undone && !strcmp(cs->v[i].tenant, tenant))
			return true;
	return false;
}

/* The charges of inv's tenant (every tenant's for the combined account)
 * as lines of their own. */
static int charge_lines(struct invoice *inv, const struct charges *cs, bool combined, struct tally_err *e)
{
	for (size_t i = 0; i < cs->n; i++) {
		const struct charge *c = &cs->v[i];
		if (c->undone || (!combined && strcmp(c->tenant, inv->tenant)))
			continue;
		struct invoice_line *l = invoice_add_line(inv);
		if (!l)
			return err_set(e, -ENOMEM, "out of memory");
		l->type = INV_CHARGE;
		l->group = groups[5];
		l->meter = -1;
		l->from_ns = c->from_ns;
		l->to_ns = c->to_ns;
		l->amount_minor = c->amount_minor;
		str_copy(l->description, c->description, sizeof(l->description));
	}
	return 0;
}

int invoice_build_all(const struct plan *p, const struct rate_query *q, struct invoice **out, size_t *n,
		      struct tally_err *e)
{
	struct charges cs = { .p = p, .e = e };
	struct rate_result r;
	struct invoice *invs = NULL;
	size_t k = 0;
	int rc;

	struct sla_report sr = { 0 };
	*out = NULL;
	*n = 0;
	if ((rc = rate_collect(q, p, &r, e)))
		return rc;
	if ((rc = ledger_charges_read(q->ledger, q->combined ? NULL : q->tenant, q->from_ns, q->to_ns, on_charge, &cs,
				      e)) ||
	    (rc = charges_check(&cs, q->combined ? NULL : &r)))
		goto out;
	if (p->has_sla && !q->combined) {
		struct sla_query sq = { .ledger = q->ledger, .from_ns = q->from_ns, .to_ns = q->to_ns,
					.tenant = q->tenant };
		if ((rc = sla_compute(&sq, p, &sr, e)) == -ESRCH)
			rc = 0;   /* a tenant without VMs has no SLA */
		if (rc)
			goto out;
	}
	invs = calloc(r.n_tenants ? r.n_tenants : 1, sizeof(*invs));
	if (!invs) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t t = 0; t < r.n_tenants; t++) {
		if (q->tenant && !q->combined && strcmp(r.tenants[t].name, q->tenant))
			continue;
		/* a tenant with usage, a resource alive or a charge in the
		 * period; the one asked for, or with q->carry every other, as
		 * carry_only: a late adjustment of an issued period may be owed
		 * by a tenant that has left (issue_adjust_all()) */
		bool in = invoice_tenant_in_period(&r, (int)t, q->from_ns, q->to_ns) || has_charge(&cs, r.tenants[t].name);
		if (!in && !q->carry && !(q->tenant && !q->combined))
			continue;
		if ((rc = invoice_build(p, &r, (int)t, q->from_ns, q->to_ns, &invs[k], e)))
			goto out;
		invs[k].carry_only = !in;
		k++;
		if (cs.n && ((rc = charge_lines(&invs[k - 1], &cs, q->combined, e)) ||
			     (rc = invoice_total(&invs[k - 1], p, e))))
			goto out;
		if (sr.n_vms && ((rc = invoice_sla_credits(&invs[k - 1], &sr, p, e)) ||
				 (rc = invoice_total(&invs[k - 1], p, e))))
			goto out;
	}
	rc = 0;
out:
	rate_result_release(&r);
	sla_report_release(&sr);
	free(cs.v);
	if (rc) {
		for (size_t i = 0; i < k; i++)
			invoice_release(&invs[i]);
		free(invs);
		return rc;
	}
	*out = invs;
	*n = k;
	return 0;
}

void invoice_drop_carry_only(struct invoice *invs, size_t *n)
{
	size_t m = 0;
	for (size_t i = 0; i < *n; i++) {
		if (invs[i].carry_only && invs[i].n_lines == 0)
			invoice_release(&invs[i]);
		else
			invs[m++] = invs[i];
	}
	*n = m;
}

/* The parties, dates and tax treatment of invoices (invoice.h). */
int invoice_apply_customers(struct invoice *invs, size_t n, const struct plan *p, const struct customers *c,
			    int64_t date_ns, bool require, struct tally_err *e)
{
	int rc;
	for (size_t i = 0; i < n; i++) {
		struct invoice *inv = &invs[i];
		const struct customer *cu = customers_find(c, inv->tenant);
		if (!cu && require && c)
			return err_set(e, -EINVAL, "tenant '%s' has no entry in %s: an issued invoice needs the"
				       " customer's legal name and address", inv->tenant, c->path);
		if (cu && cu->currency[0] && strcmp(cu->currency, p->currency))
			return err_set(e, -EINVAL, "tenant '%s' is billed in %s (%s:%d:%d) but the plan '%s' prices in"
				       " %s: tally does not convert currencies; rate the tenant with a plan in %s",
				       inv->tenant, cu->currency, c->path, cu->line, cu->col, p->name, p->currency,
				       cu->currency);
		inv->issuer_info = p->issuer_info;
		inv->has_customer = cu != NULL;
		if (cu) {
			inv->customer = cu->party;
			str_copy(inv->customer_ref, cu->reference, sizeof(inv->customer_ref));
			inv->tax = cu->tax;
			str_copy(inv->tax_note, cu->tax_note, sizeof(inv->tax_note));
		}
		int days = cu && cu->payment_days >= 0 ? cu->payment_days : p->issuer_info.payment_days;
		inv->date_ns = date_ns - date_ns % NS_PER_DAY;
		inv->due_ns = inv->date_ns + (int64_t)days * NS_PER_DAY;
		inv->payment_days = days;
		if ((rc = invoice_total(inv, p, e)))
			return rc;
	}
	return 0;
}
