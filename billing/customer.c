/*
 * customer.c: the issuer's and the customers' billing details (customer.h,
 * schemas/customers.md), and putting them on invoices.
 */
#include "customer.h"
#include "cfg.h"
#include "err.h"
#include "plan.h"
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const char *customer_tax_name(enum tax_treatment t)
{
	switch (t) {
	case TAX_DOMESTIC: return "domestic";
	case TAX_REVERSE_CHARGE: return "reverse-charge";
	case TAX_EXEMPT: return "exempt";
	}
	return "?";
}

const char *customer_tax_note_default(enum tax_treatment t)
{
	/* the EU's wording (Council Directive 2006/112/EC, Article 226(11a)
	 * asks for "Reverse charge"); an exemption's basis depends on the
	 * case, so the customers file must state it (customers_load) */
	return t == TAX_REVERSE_CHARGE ? "Reverse charge: VAT is to be accounted for by the recipient"
					 " (Article 196, Council Directive 2006/112/EC)." : "";
}

void plan_errors_add(struct plan_errors *errs, const char *path, const struct cfg_node *n, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	errs->total++;
	if (errs->n == PLAN_MAX_ERRORS)
		return;
	if (n)
		snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]), "%s:%d:%d: %s", n->file ? n->file : path,
			 n->line, n->col, what);
	else
		snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]), "%s: %s", path, what);
}

int plan_errors_keep(struct plan_errors *errs, int rc, const struct tally_err *e)
{
	if (rc) {
		errs->total++;
		if (errs->n < PLAN_MAX_ERRORS)
			str_copy(errs->msg[errs->n++], e->msg, sizeof(errs->msg[0]));
	}
	return rc;
}

/* A list of one-line strings (or one string) at key into lines. */
static int lines_of(const struct cfg_node *map, const char *key, char (*lines)[128], int *n,
		    struct plan_errors *errs)
{
	struct tally_err e = { 0 };
	const struct cfg_node *v = cfg_get(map, key);
	*n = 0;
	if (!v)
		return 0;
	if (v->type == CFG_SCALAR) {
		if (plan_errors_keep(errs, cfg_get_string(map, key, lines[0], 128, &e), &e))
			return -EINVAL;
		*n = lines[0][0] ? 1 : 0;
		return 0;
	}
	if (v->type != CFG_SEQ || v->n_kids > PARTY_MAX_LINES) {
		plan_errors_add(errs, NULL, v, "'%s': expected a list of at most %d lines", key, PARTY_MAX_LINES);
		return -EINVAL;
	}
	for (size_t i = 0; i < v->n_kids; i++) {
		const struct cfg_node *k = v->kids[i];
		if (k->type != CFG_SCALAR) {
			plan_errors_add(errs, NULL, k, "'%s': each line is one string, not %s", key,
					k->type == CFG_MAP ? "a map" : "a list");
			return -EINVAL;
		}
		if (strlen(k->value) >= 128 || strpbrk(k->value, "\r\n\t")) {
			plan_errors_add(errs, NULL, k, "'%s': a line is at most 127 characters, without line breaks",
					key);
			return -EINVAL;
		}
		str_copy(lines[(*n)++], k->value, 128);
	}
	return 0;
}

/* An email address as printed: one @ with something on both sides, no
 * space. Deliverability is not ours to judge. */
static bool email_shape(const char *s)
{
	const char *at = strchr(s, '@');
	return at && at > s && at[1] && !strchr(at + 1, '@') && !strpbrk(s, " \t<>,;\"");
}

int party_parse(const struct cfg_node *n, const char *section, const char *const *extra, struct party *out,
		struct plan_errors *errs)
{
	static const char *const base[] = { "name", "address", "vat_id", "tax_id", "email" };
	const char *allowed[24];
	struct tally_err e = { 0 };
	size_t k = 0;
	int before = errs->total;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		allowed[k++] = base[i];
	for (size_t i = 0; extra && extra[i] && k + 1 < sizeof(allowed) / sizeof(allowed[0]); i++)
		allowed[k++] = extra[i];
	allowed[k] = NULL;
	if (plan_errors_keep(errs, cfg_check_keys(n, section, allowed, &e), &e))
		return -EINVAL;
	plan_errors_keep(errs, cfg_get_string(n, "name", out->name, sizeof(out->name), &e), &e);
	plan_errors_keep(errs, cfg_get_string(n, "vat_id", out->vat_id, sizeof(out->vat_id), &e), &e);
	plan_errors_keep(errs, cfg_get_string(n, "tax_id", out->tax_id, sizeof(out->tax_id), &e), &e);
	plan_errors_keep(errs, cfg_get_string(n, "email", out->email, sizeof(out->email), &e), &e);
	lines_of(n, "address", out->address, &out->n_address, errs);
	if (!out->name[0] && errs->total == before)
		plan_errors_add(errs, NULL, n, "'%s' needs a 'name' (the legal name printed on the invoice)", section);
	if (out->email[0] && !email_shape(out->email))
		plan_errors_add(errs, NULL, cfg_get(n, "email"), "'email': '%s' is not an address like"
				" billing@example.com", out->email);
	for (const char *p = out->vat_id; *p; p++)
		if (!isalnum((unsigned char)*p)) {
			plan_errors_add(errs, NULL, cfg_get(n, "vat_id"), "'vat_id': '%s' holds '%c': a VAT ID is"
					" written as letters and digits only, as VIES knows it (DE123456789)",
					out->vat_id, *p);
			break;
		}
	return errs->total == before ? 0 : -EINVAL;
}

static int cmp_customer(const void *a, const void *b)
{
	return strcmp(((const struct customer *)a)->tenant, ((const struct customer *)b)->tenant);
}

static const char *const customer_extra[] = { "currency", "tax", "tax_note", "payment_terms", "reference", NULL };

static void parse_customer(const char *path, const struct cfg_node *k, struct customer *c, struct plan_errors *errs,
			   bool *ok)
{
	struct tally_err e = { 0 };
	int before = errs->total;
	static const char *const taxes[] = { "domestic", "reverse-charge", "exempt", NULL };
	int tax = TAX_DOMESTIC;
	uint64_t days = 0;

	*ok = false;
	memset(c, 0, sizeof(*c));
	c->line = k->key_line;
	c->col = k->key_col;
	c->payment_days = -1;
	if (strlen(k->key) >= sizeof(c->tenant)) {
		errs->total++;
		if (errs->n < PLAN_MAX_ERRORS)
			snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]), "%s:%d:%d: tenant '%s': a tenant's name is"
				 " at most %zu characters", path, k->key_line, k->key_col, k->key, sizeof(c->tenant) - 1);
		return;
	}
	str_copy(c->tenant, k->key, sizeof(c->tenant));
	if (k->type != CFG_MAP) {
		plan_errors_add(errs, path, k, "customer '%s': expected a map of billing details (name, address,"
				" vat_id, ...)", k->key);
		return;
	}
	char section[96];
	snprintf(section, sizeof(section), "customer '%s'", c->tenant);
	party_parse(k, section, customer_extra, &c->party, errs);   /* and on: every mistake in one pass */
	char cur[64] = "";
	if (!plan_errors_keep(errs, cfg_get_string(k, "currency", cur, sizeof(cur), &e), &e) && cur[0]) {
		if (strlen(cur) != 3 || !isupper((unsigned char)cur[0]) || !isupper((unsigned char)cur[1]) ||
		    !isupper((unsigned char)cur[2]))
			plan_errors_add(errs, path, cfg_get(k, "currency"), "'currency': expected an ISO 4217 code of"
					" three capital letters (got '%s')", cur);
		else
			str_copy(c->currency, cur, sizeof(c->currency));
	}
	plan_errors_keep(errs, cfg_get_enum(k, "tax", taxes, &tax, &e), &e);
	c->tax = (enum tax_treatment)tax;
	plan_errors_keep(errs, cfg_get_string(k, "tax_note", c->tax_note, sizeof(c->tax_note), &e), &e);
	plan_errors_keep(errs, cfg_get_string(k, "reference", c->reference, sizeof(c->reference), &e), &e);
	if (cfg_get(k, "payment_terms") &&
	    !plan_errors_keep(errs, cfg_get_uint(k, "payment_terms", 0, 365, &days, &e), &e))
		c->payment_days = (int)days;
	if (c->tax == TAX_REVERSE_CHARGE && !c->party.vat_id[0])
		plan_errors_add(errs, path, cfg_get(k, "tax"), "customer '%s': 'tax: reverse-charge' needs the"
				" customer's 'vat_id' (the invoice must show it)", c->tenant);
	if (c->tax == TAX_EXEMPT && !c->tax_note[0])
		plan_errors_add(errs, path, cfg_get(k, "tax"), "customer '%s': 'tax: exempt' needs a 'tax_note'"
				" stating the exemption's legal basis (it is printed on every invoice)", c->tenant);
	if (!c->tax_note[0])
		str_copy(c->tax_note, customer_tax_note_default(c->tax), sizeof(c->tax_note));
	*ok = errs->total == before;
}

int customers_load(const char *path, struct customers *out, struct plan_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "rb");
	memset(out, 0, sizeof(*out));
	memset(errs, 0, sizeof(*errs));
	if (!f) {
		int rc = -errno;
		plan_errors_add(errs, path, NULL, "cannot open: %s", strerror(-rc));
		return rc;
	}
	FILE *m = open_memstream(&text, &len);
	char buf[8192];
	size_t got;
	while (m && (got = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, got, m);
	bool bad = ferror(f) || !m;
	fclose(f);
	if (m)
		fclose(m);
	if (bad) {
		free(text);
		plan_errors_add(errs, path, NULL, "cannot read");
		return -EIO;
	}
	int rc = customers_load_text(path, text, len, out, errs);
	free(text);
	return rc;
}

int customers_load_text(const char *path, const char *text, size_t len, struct customers *out,
			struct plan_errors *errs)
{
	struct cfg_node *root = NULL;
	struct tally_err e = { 0 };
	static const char *const top[] = { "customers", NULL };
	const struct cfg_node *cs = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(errs, 0, sizeof(*errs));
	str_copy(out->path, path, sizeof(out->path));
	if ((rc = cfg_load_string(path, text, len, &root, &e))) {
		plan_errors_keep(errs, rc, &e);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	if (!root || root->type != CFG_MAP) {
		plan_errors_add(errs, path, root, "expected a customers file: a map with 'customers', keyed by tenant");
		goto out;
	}
	if (plan_errors_keep(errs, cfg_check_keys(root, "customers file", top, &e), &e) ||
	    plan_errors_keep(errs, cfg_get_map(root, "customers", &cs, &e), &e))
		goto out;
	if (!cs) {
		plan_errors_add(errs, path, root, "missing 'customers': a map from tenant to billing details");
		goto out;
	}
	if (!(out->v = calloc(cs->n_kids ? cs->n_kids : 1, sizeof(*out->v)))) {
		plan_errors_add(errs, path, cs, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cs->n_kids; i++) {
		bool ok;
		parse_customer(path, cs->kids[i], &out->v[out->n], errs, &ok);
		if (ok)
			out->n++;
	}
	qsort(out->v, out->n, sizeof(*out->v), cmp_customer);
out:
	cfg_free(root);
	if (errs->total) {
		customers_release(out);
		return -EINVAL;
	}
	return 0;
}

void customers_release(struct customers *c)
{
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

const struct customer *customers_find(const struct customers *c, const char *tenant)
{
	struct customer key;
	if (!c || !c->n)
		return NULL;
	str_copy(key.tenant, tenant, sizeof(key.tenant));
	return bsearch(&key, c->v, c->n, sizeof(key), cmp_customer);
}
