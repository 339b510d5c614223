/*
 * issue.c: issuing invoices (numbered, as documents, into the ledger's
 * invoice store, ledger/invoices.h) and carrying late usage as adjustments
 * (issue.h). SHA-256 comes from OpenSSL's libcrypto.
 */
#include "issue.h"
#include "vec.h"
#include "err.h"
#include "ledger.h"
#include "invoices.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void issue_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char digits[] = "0123456789abcdef";
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32) {
		hex[0] = '\0';
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

/* "2026-10" for a calendar month, else "FROM to TO": how a line names an
 * earlier period. */
static void period_text(int64_t from, int64_t to, char *buf, size_t len)
{
	char a[48], b[48];
	time_format_iso(from, a, sizeof(a));
	time_format_iso(to, b, sizeof(b));
	int64_t s, x;
	char month[8];
	memcpy(month, a, 7);
	month[7] = '\0';
	if (time_parse_range(month, &s, &x, NULL) == 0 && s == from && x == to)
		snprintf(buf, len, "%s", month);
	else
		snprintf(buf, len, "%s to %s", a, b);
}

/* One earlier period as it comes out now: every tenant's base subtotal,
 * rated again with the plan that period was issued under. Periods issued
 * with the same plan are rated once for all the tenants that need them. */
struct rerated {
	int64_t from, to;
	struct invoice *invs;
	size_t n;
	char currency[8];            /* of the plan it was issued under: the units of its amounts */
	int minor_digits;
};

static int rate_again(const char *ledger, int64_t from, int64_t to, const char *plan_text, int64_t number,
		      struct rerated *out, struct tally_err *e)
{
	struct plan p;
	struct plan_errors errs;
	struct rate_query q = { .ledger = ledger, .from_ns = from, .to_ns = to };
	char name[64];
	snprintf(name, sizeof(name), "plan of invoice #%lld", (long long)number);
	if (plan_load_text(name, plan_text, strlen(plan_text), &p, &errs))
		return err_set(e, -EINVAL, "%s", errs.n ? errs.msg[0] : name);
	str_copy(out->currency, p.currency, sizeof(out->currency));
	out->minor_digits = p.minor_digits;
	int rc = invoice_build_all(&p, &q, &out->invs, &out->n, e);
	plan_release(&p);
	return rc;
}

static int64_t base_of(const struct rerated *r, const char *tenant)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->invs[i].tenant, tenant))
			return r->invs[i].base_minor;
	return 0;
}

static void rerated_clear(struct rerated *r)
{
	for (size_t i = 0; i < r->n; i++)
		invoice_release(&r->invs[i]);
	free(r->invs);
	memset(r, 0, sizeof(*r));
}

struct adjusting {
	const char *ledger;
	struct invoice *invs;
	size_t n_invs;
	struct rerated cur;
	char *cur_plan;
	int added;
	struct tally_err *e;
};

/* One issued invoice of an earlier period: its tenant's base subtotal
 * rated again now, and the difference an adjustment line. */
static int on_issued(void *ctx, const struct ledger_invoice *is)
{
	struct adjusting *a = ctx;
	struct tally_err *e = a->e;
	struct invoice *inv = NULL;
	int rc;

	for (size_t i = 0; i < a->n_invs && !inv; i++)
		if (!strcmp(a->invs[i].tenant, is->tenant) && is->to_ns <= a->invs[i].from_ns)
			inv = &a->invs[i];
	if (!inv)
		return 0;
	if (!a->cur_plan || a->cur.from != is->from_ns || a->cur.to != is->to_ns ||
	    strcmp(a->cur_plan, is->plan_text)) {
		rerated_clear(&a->cur);
		free(a->cur_plan);
		if (!(a->cur_plan = strdup(is->plan_text)))
			return err_set(e, -ENOMEM, "out of memory");
		a->cur.from = is->from_ns;
		a->cur.to = is->to_ns;
		if ((rc = rate_again(a->ledger, is->from_ns, is->to_ns, is->plan_text, is->number, &a->cur, e)))
			return rc;
	}
	int64_t delta;
	if (__builtin_sub_overflow(base_of(&a->cur, is->tenant), is->base_minor, &delta) ||
	    __builtin_sub_overflow(delta, is->adjusted_minor, &delta))
		return err_set(e, -ERANGE, "tenant '%s': the adjustment for %s #%lld cannot be represented",
			       is->tenant, is->issuer, (long long)is->number);
	if (delta == 0)
		return 0;
	char per[96];
	period_text(is->from_ns, is->to_ns, per, sizeof(per));
	/* the difference is in minor units of the issued invoice's plan: on
	 * an invoice of another currency or scale the same integer is another
	 * amount (500 cents printed as 0.0500 EUR, or 500 yen), and tally
	 * converts neither */
	if (strcmp(a->cur.currency, inv->currency) || a->cur.minor_digits != inv->minor_digits)
		return err_set(e, -EINVAL, "tenant '%s': %s #%lld for %s was issued in %s with %d minor digits, this"
			       " invoice is in %s with %d: the usage recorded after it cannot be carried as an"
			       " adjustment (tally converts no amounts; invoice with a plan in %s with %d minor"
			       " digits)", is->tenant, is->issuer, (long long)is->number, per, a->cur.currency,
			       a->cur.minor_digits, inv->currency, inv->minor_digits, a->cur.currency,
			       a->cur.minor_digits);
	struct invoice_line *l = invoice_add_line(inv);
	if (!l)
		return err_set(e, -ENOMEM, "out of memory");
	l->type = INV_ADJUSTMENT;
	l->group = "adjustments";
	l->meter = -1;
	l->from_ns = is->from_ns;
	l->to_ns = is->to_ns;
	l->amount_minor = delta;
	l->adjusts_id = is->id;
	snprintf(l->description, sizeof(l->description), "usage for %s recorded after %s #%lld was issued",
		 per, is->issuer, (long long)is->number);
	a->added++;
	return 0;
}

int issue_adjust_all(const char *ledger, struct invoice *invs, size_t n_invs, const struct plan *p,
		     struct tally_err *e)
{
	struct adjusting a = { .ledger = ledger, .invs = invs, .n_invs = n_invs, .e = e };
	int64_t latest = INT64_MIN;
	int rc;

	if (n_invs == 0)
		return 0;
	for (size_t i = 0; i < n_invs; i++)
		if (invs[i].from_ns > latest)
			latest = invs[i].from_ns;
	rc = ledger_invoices_before(ledger, latest, on_issued, &a, e);
	for (size_t i = 0; rc == 0 && a.added && i < n_invs; i++)
		rc = invoice_total(&invs[i], p, e);
	rerated_clear(&a.cur);
	free(a.cur_plan);
	return rc;
}

int issue_adjust(const char *ledger, struct invoice *inv, const struct plan *p, struct tally_err *e)
{
	return issue_adjust_all(ledger, inv, 1, p, e);
}

/* Refuse a tenant whose period overlaps an issued invoice. */
static int on_overlap(void *ctx, const struct ledger_invoice *is)
{
	struct tally_err *e = ctx;
	char per[96], when[48];
	period_text(is->from_ns, is->to_ns, per, sizeof(per));
	time_format_iso(is->issued_ns, when, sizeof(when));
	return err_set(e, -EEXIST, "tenant '%s' is already invoiced for %s: %s #%lld, issued %s; issued"
		       " invoices never change (late usage goes on the next one as an adjustment)",
		       is->tenant, per, is->issuer, (long long)is->number, when);
}

static int store_one(struct ledger_invoice_tx *tx, struct invoice *inv, const struct plan *p, int64_t now_ns,
		     struct tally_err *e)
{
	char *doc = NULL;
	size_t len = 0;
	int64_t number, id;
	int rc;

	if ((rc = ledger_invoices_overlap(tx, inv->tenant, inv->from_ns, inv->to_ns, on_overlap, e, e)) ||
	    (rc = ledger_invoices_next_number(tx, p->issuer, &number, e)))
		return rc;
	str_copy(inv->issuer, p->issuer, sizeof(inv->issuer));
	inv->number = number;
	inv->issued_ns = now_ns;
	snprintf(inv->number_text, sizeof(inv->number_text), "%s%lld", p->issuer_info.invoice_prefix,
		 (long long)number);

	/* the document: this invoice alone, with who used what */
	struct invoice_render_opts o = { .format = INV_JSON, .detail = true };
	FILE *f = open_memstream(&doc, &len);
	if (!f || invoice_render_json(f, inv, 1, &o)) {
		if (f)
			fclose(f);
		rc = err_set(e, -ENOMEM, "cannot render the invoice");
		goto out;
	}
	fclose(f);
	issue_sha256_hex(doc, len, inv->sha256);

	struct ledger_invoice row = {
		.issuer = inv->issuer, .number = inv->number, .tenant = inv->tenant, .from_ns = inv->from_ns,
		.to_ns = inv->to_ns, .issued_ns = inv->issued_ns, .currency = inv->currency,
		.base_minor = inv->base_minor, .subtotal_minor = inv->subtotal_minor,
		.total_minor = inv->total_minor, .plan_text = p->source ? p->source : "", .document = doc,
		.sha256 = inv->sha256,
	};
	if ((rc = ledger_invoices_insert(tx, &row, len, &id, e)))
		goto out;
	for (size_t i = 0; i < inv->n_lines; i++)
		if (inv->lines[i].type == INV_ADJUSTMENT &&
		    (rc = ledger_invoices_adjust(tx, id, inv->lines[i].adjusts_id, inv->lines[i].amount_minor, e)))
			goto out;
	rc = 0;
out:
	free(doc);
	if (rc) {
		inv->number = 0;
		inv->number_text[0] = '\0';
	}
	return rc;
}

int issue_store(const char *ledger, struct invoice *invs, size_t n, const struct plan *p, int64_t now_ns,
		struct tally_err *e)
{
	struct ledger_invoice_tx *tx = NULL;
	struct ledger_verify v;
	int rc;
	/* never an invoice from usage that is not what tallyd committed */
	if ((rc = ledger_verify(ledger, &v, e)))
		return rc;
	if (v.problems)
		return err_set(e, -EBADMSG, "%s: the usage is not what was committed (%s%s); refusing to issue"
			       " (tally ledger verify, docs/ledger.md)", ledger, v.first, v.problems > 3 ? "; ..." : "");
	if ((rc = ledger_invoices_begin(ledger, &tx, e)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = store_one(tx, &invs[i], p, now_ns, e))) {
			ledger_invoices_abort(tx);
			for (size_t j = 0; j < i; j++) {
				invs[j].number = 0;
				invs[j].number_text[0] = '\0';
			}
			return rc;
		}
	}
	if ((rc = ledger_invoices_commit(tx, e))) {
		for (size_t j = 0; j < n; j++) {
			invs[j].number = 0;
			invs[j].number_text[0] = '\0';
		}
		return rc;
	}
	return 0;
}

struct finding {
	struct issued *out;
	int found;
	struct tally_err *e;
};

static int on_found(void *ctx, const struct ledger_invoice *is)
{
	struct finding *f = ctx;
	struct issued *out = f->out;
	if (f->found++)
		return -EEXIST;   /* a second one: ambiguous */
	out->id = is->id;
	out->number = is->number;
	out->from_ns = is->from_ns;
	out->to_ns = is->to_ns;
	out->issued_ns = is->issued_ns;
	str_copy(out->issuer, is->issuer, sizeof(out->issuer));
	str_copy(out->tenant, is->tenant, sizeof(out->tenant));
	str_copy(out->sha256, is->sha256, sizeof(out->sha256));
	out->plan_text = strdup(is->plan_text);
	out->document = strdup(is->document);
	return out->plan_text && out->document ? 0 : err_set(f->e, -ENOMEM, "out of memory");
}

int issue_parse_which(const char *which, const char *what, char issuer[64], int64_t *number, struct tally_err *e)
{
	const char *num = which, *hash = strrchr(which, '#');
	issuer[0] = '\0';
	if (hash) {
		size_t l = (size_t)(hash - which);
		if (l >= 64)
			return err_set(e, -EINVAL, "'%s': issuer name too long", which);
		memcpy(issuer, which, l);
		issuer[l] = '\0';
		num = hash + 1;
	}
	char *end;
	long long n = strtoll(num, &end, 10);
	if (!*num || *end || n <= 0)
		return err_set(e, -EINVAL, "'%s': expected %s number, or ISSUER#NUMBER", which, what);
	*number = n;
	return 0;
}

int issue_find(const char *ledger, const char *which, struct issued *out, struct tally_err *e)
{
	char issuer[64];
	int64_t number;
	struct finding f = { .out = out, .e = e };
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = issue_parse_which(which, "an invoice", issuer, &number, e)))
		return rc;
	rc = ledger_invoices_find(ledger, number, issuer, on_found, &f, e);
	if (rc == -EEXIST)
		rc = err_set(e, -EINVAL, "'%s': several issuers have an invoice #%lld; give ISSUER#%lld", which,
			     (long long)number, (long long)number);
	else if (rc == 0 && !f.found)
		rc = err_set(e, -ENOENT, "%s: no issued invoice '%s'", ledger, which);
	if (rc) {
		free(out->plan_text);
		free(out->document);
		out->plan_text = out->document = NULL;
	}
	return rc;
}

struct listing {
	struct issued *list;
	size_t n, cap;
	struct tally_err *e;
};

static int on_listed(void *ctx, const struct ledger_invoice *is)
{
	struct listing *l = ctx;
	if (vec_reserve((void **)&l->list, &l->cap, l->n + 1, sizeof(*l->list), 16))
		return err_set(l->e, -ENOMEM, "out of memory");
	struct issued *x = &l->list[l->n++];
	memset(x, 0, sizeof(*x));
	x->id = is->id;
	x->number = is->number;
	x->from_ns = is->from_ns;
	x->to_ns = is->to_ns;
	x->issued_ns = is->issued_ns;
	str_copy(x->issuer, is->issuer, sizeof(x->issuer));
	str_copy(x->tenant, is->tenant, sizeof(x->tenant));
	str_copy(x->sha256, is->sha256, sizeof(x->sha256));
	str_copy(x->currency, is->currency, sizeof(x->currency));
	str_copy(x->total, is->total, sizeof(x->total));
	return 0;
}

int issue_list(const char *ledger, const char *tenant, struct issued **out, size_t *n, struct tally_err *e)
{
	struct listing l = { .e = e };
	int rc = ledger_invoices_list(ledger, tenant, on_listed, &l, e);
	if (rc) {
		free(l.list);
		l.list = NULL;
		l.n = 0;
	}
	*out = l.list;
	*n = l.n;
	return rc;
}
