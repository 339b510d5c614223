/*
 * issue.c: storing issued invoices and carrying late usage as adjustments
 * (issue.h). SHA-256 comes from OpenSSL's libcrypto.
 */
#include "issue.h"
#include "err.h"
#include "ledger_ro.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
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

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
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

int issue_adjust_all(const char *ledger, struct invoice *invs, size_t n_invs, const struct plan *p,
		     struct tally_err *e)
{
	static const char sql[] =
		"SELECT i.id, i.issuer, i.number, i.from_ns, i.to_ns, i.base_minor, i.plan_text, i.tenant,"
		" (SELECT coalesce(sum(a.amount_minor), 0) FROM invoice_adjustments a WHERE a.for_id = i.id)"
		" FROM invoices i WHERE i.to_ns <= ?1 ORDER BY i.from_ns, i.to_ns, i.plan_text, i.id";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct rerated cur = { 0 };
	char *cur_plan = NULL;
	int64_t latest = INT64_MIN;
	int rc, added = 0;

	if (n_invs == 0)
		return 0;
	for (size_t i = 0; i < n_invs; i++)
		if (invs[i].from_ns > latest)
			latest = invs[i].from_ns;
	if ((rc = ledger_ro_open(ledger, &db, e)))
		return rc;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read invoices: %s", ledger, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, latest);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tenant = col_text(st, 7), *plan_text = col_text(st, 6);
		int64_t from = sqlite3_column_int64(st, 3), to = sqlite3_column_int64(st, 4);
		struct invoice *inv = NULL;
		for (size_t i = 0; i < n_invs && !inv; i++)
			if (!strcmp(invs[i].tenant, tenant) && to <= invs[i].from_ns)
				inv = &invs[i];
		if (!inv)
			continue;
		int64_t id = sqlite3_column_int64(st, 0), number = sqlite3_column_int64(st, 2);
		if (!cur_plan || cur.from != from || cur.to != to || strcmp(cur_plan, plan_text)) {
			rerated_clear(&cur);
			free(cur_plan);
			if (!(cur_plan = strdup(plan_text))) {
				rc = err_set(e, -ENOMEM, "out of memory");
				goto out;
			}
			cur.from = from;
			cur.to = to;
			if ((rc = rate_again(ledger, from, to, plan_text, number, &cur, e)))
				goto out;
		}
		int64_t delta;
		if (__builtin_sub_overflow(base_of(&cur, tenant), sqlite3_column_int64(st, 5), &delta) ||
		    __builtin_sub_overflow(delta, sqlite3_column_int64(st, 8), &delta)) {
			rc = err_set(e, -ERANGE, "tenant '%s': the adjustment for %s #%lld cannot be represented", tenant,
				     col_text(st, 1), (long long)number);
			goto out;
		}
		if (delta == 0)
			continue;
		struct invoice_line *l = invoice_add_line(inv);
		if (!l) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		char per[96], issuer[64];
		str_copy(issuer, col_text(st, 1), sizeof(issuer));
		period_text(from, to, per, sizeof(per));
		l->type = INV_ADJUSTMENT;
		l->group = "adjustments";
		l->meter = -1;
		l->from_ns = from;
		l->to_ns = to;
		l->amount_minor = delta;
		l->adjusts_id = id;
		snprintf(l->description, sizeof(l->description), "usage for %s recorded after %s #%lld was issued",
			 per, issuer, (long long)number);
		added++;
	}
	if (rc != SQLITE_DONE) {
		rc = err_set(e, -EIO, "%s: cannot read invoices: %s", ledger, sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
	for (size_t i = 0; added && i < n_invs && rc == 0; i++)
		rc = invoice_total(&invs[i], p, e);
out:
	rerated_clear(&cur);
	free(cur_plan);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int issue_adjust(const char *ledger, struct invoice *inv, const struct plan *p, struct tally_err *e)
{
	return issue_adjust_all(ledger, inv, 1, p, e);
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* Refuse a tenant whose period overlaps an issued invoice. */
static int check_overlap(sqlite3 *db, const struct invoice *inv, struct tally_err *e)
{
	sqlite3_stmt *st;
	int rc = 0;
	if (sqlite3_prepare_v2(db, "SELECT issuer, number, from_ns, to_ns, issued_ns FROM invoices"
				   " WHERE tenant = ?1 AND from_ns < ?3 AND to_ns > ?2 ORDER BY from_ns LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot read invoices: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, inv->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, inv->from_ns);
	sqlite3_bind_int64(st, 3, inv->to_ns);
	if (sqlite3_step(st) == SQLITE_ROW) {
		char per[96], when[48];
		period_text(sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), per, sizeof(per));
		time_format_iso(sqlite3_column_int64(st, 4), when, sizeof(when));
		rc = err_set(e, -EEXIST, "tenant '%s' is already invoiced for %s: %s #%lld, issued %s; issued"
			     " invoices never change (late usage goes on the next one as an adjustment)",
			     inv->tenant, per, col_text(st, 0), (long long)sqlite3_column_int64(st, 1), when);
	}
	sqlite3_finalize(st);
	return rc;
}

static int store_one(sqlite3 *db, struct invoice *inv, const struct plan *p, int64_t now_ns, struct tally_err *e)
{
	sqlite3_stmt *st = NULL;
	char *doc = NULL;
	size_t len = 0;
	int rc;

	if ((rc = check_overlap(db, inv, e)))
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(number), 0) + 1 FROM invoices WHERE issuer = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return err_set(e, -EIO, "cannot number the invoice: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, p->issuer, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = err_set(e, -EIO, "cannot number the invoice: %s", sqlite3_errmsg(db));
		goto out;
	}
	str_copy(inv->issuer, p->issuer, sizeof(inv->issuer));
	inv->number = sqlite3_column_int64(st, 0);
	inv->issued_ns = now_ns;
	sqlite3_finalize(st);
	st = NULL;

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

	if (sqlite3_prepare_v2(db, "INSERT INTO invoices (issuer, number, tenant, from_ns, to_ns, issued_ns, currency,"
				   " base_minor, subtotal_minor, total_minor, plan_text, document, sha256)"
				   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "cannot store the invoice: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, inv->issuer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, inv->number);
	sqlite3_bind_text(st, 3, inv->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, inv->from_ns);
	sqlite3_bind_int64(st, 5, inv->to_ns);
	sqlite3_bind_int64(st, 6, inv->issued_ns);
	sqlite3_bind_text(st, 7, inv->currency, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, inv->base_minor);
	sqlite3_bind_int64(st, 9, inv->subtotal_minor);
	sqlite3_bind_int64(st, 10, inv->total_minor);
	sqlite3_bind_text(st, 11, p->source ? p->source : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, doc, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, inv->sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = err_set(e, sqlite3_errcode(db) == SQLITE_FULL ? -ENOSPC : -EIO, "cannot store the invoice: %s",
			     sqlite3_errmsg(db));
		goto out;
	}
	int64_t id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	st = NULL;
	for (size_t i = 0; i < inv->n_lines; i++) {
		if (inv->lines[i].type != INV_ADJUSTMENT)
			continue;
		if (sqlite3_prepare_v2(db, "INSERT INTO invoice_adjustments (invoice_id, for_id, amount_minor)"
					   " VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK) {
			rc = err_set(e, -EIO, "cannot store the invoice: %s", sqlite3_errmsg(db));
			goto out;
		}
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, inv->lines[i].adjusts_id);
		sqlite3_bind_int64(st, 3, inv->lines[i].amount_minor);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = err_set(e, -EIO, "cannot store the adjustment: %s", sqlite3_errmsg(db));
			goto out;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	free(doc);
	if (rc)
		inv->number = 0;
	return rc;
}

int issue_store(const char *ledger, struct invoice *invs, size_t n, const struct plan *p, int64_t now_ns,
		struct tally_err *e)
{
	sqlite3 *db = NULL;
	int rc;
	if ((rc = ledger_invoices_open(ledger, &db, e)))
		return rc;
	sqlite3_busy_timeout(db, 10000);
	if (exec(db, "BEGIN IMMEDIATE")) {
		rc = err_set(e, -EBUSY, "%s: cannot start a transaction: %s", ledger, sqlite3_errmsg(db));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = store_one(db, &invs[i], p, now_ns, e))) {
			exec(db, "ROLLBACK");
			for (size_t j = 0; j < i; j++)
				invs[j].number = 0;
			goto out;
		}
	}
	if (exec(db, "COMMIT")) {
		rc = err_set(e, -EIO, "%s: cannot commit the invoices: %s", ledger, sqlite3_errmsg(db));
		exec(db, "ROLLBACK");
		for (size_t j = 0; j < n; j++)
			invs[j].number = 0;
		goto out;
	}
	rc = 0;
out:
	sqlite3_close(db);
	return rc;
}

int issue_find(const char *ledger, const char *which, struct issued *out, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char issuer[64] = "";
	const char *num = which, *hash = strrchr(which, '#');
	int rc;

	memset(out, 0, sizeof(*out));
	if (hash) {
		size_t l = (size_t)(hash - which);
		if (l >= sizeof(issuer))
			return err_set(e, -EINVAL, "'%s': issuer name too long", which);
		memcpy(issuer, which, l);
		issuer[l] = '\0';
		num = hash + 1;
	}
	char *end;
	long long number = strtoll(num, &end, 10);
	if (!*num || *end || number <= 0)
		return err_set(e, -EINVAL, "'%s': expected an invoice number, or ISSUER#NUMBER", which);
	if ((rc = ledger_ro_open(ledger, &db, e)))
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT id, number, from_ns, to_ns, issued_ns, issuer, tenant, sha256, plan_text,"
				   " document FROM invoices WHERE number = ?1 AND (?2 = '' OR issuer = ?2) LIMIT 2",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read invoices: %s", ledger, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, number);
	sqlite3_bind_text(st, 2, issuer, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = err_set(e, -ENOENT, "%s: no issued invoice '%s'", ledger, which);
		goto out;
	}
	out->id = sqlite3_column_int64(st, 0);
	out->number = sqlite3_column_int64(st, 1);
	out->from_ns = sqlite3_column_int64(st, 2);
	out->to_ns = sqlite3_column_int64(st, 3);
	out->issued_ns = sqlite3_column_int64(st, 4);
	str_copy(out->issuer, col_text(st, 5), sizeof(out->issuer));
	str_copy(out->tenant, col_text(st, 6), sizeof(out->tenant));
	str_copy(out->sha256, col_text(st, 7), sizeof(out->sha256));
	out->plan_text = strdup(col_text(st, 8));
	out->document = strdup(col_text(st, 9));
	if (sqlite3_step(st) == SQLITE_ROW) {
		rc = err_set(e, -EINVAL, "'%s': several issuers have an invoice #%lld; give ISSUER#%lld", which, number,
			     number);
		goto out;
	}
	rc = out->plan_text && out->document ? 0 : err_set(e, -ENOMEM, "out of memory");
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc) {
		free(out->plan_text);
		free(out->document);
		out->plan_text = out->document = NULL;
	}
	return rc;
}

int issue_list(const char *ledger, const char *tenant, struct issued **out, size_t *n, struct tally_err *e)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = ledger_ro_open(ledger, &db, e)))
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT id, number, from_ns, to_ns, issued_ns, issuer, tenant, sha256, currency,"
				   " json_extract(document, '$.invoices[0].total') FROM invoices"
				   " WHERE ?1 IS NULL OR tenant = ?1 ORDER BY issuer, number", -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read invoices: %s", ledger, sqlite3_errmsg(db));
		goto out;
	}
	if (tenant)
		sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct issued *p = realloc(*out, cap * sizeof(*p));
			if (!p) {
				rc = err_set(e, -ENOMEM, "out of memory");
				goto out;
			}
			*out = p;
		}
		struct issued *x = &(*out)[(*n)++];
		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		x->number = sqlite3_column_int64(st, 1);
		x->from_ns = sqlite3_column_int64(st, 2);
		x->to_ns = sqlite3_column_int64(st, 3);
		x->issued_ns = sqlite3_column_int64(st, 4);
		str_copy(x->issuer, col_text(st, 5), sizeof(x->issuer));
		str_copy(x->tenant, col_text(st, 6), sizeof(x->tenant));
		str_copy(x->sha256, col_text(st, 7), sizeof(x->sha256));
		str_copy(x->currency, col_text(st, 8), sizeof(x->currency));
		str_copy(x->total, col_text(st, 9), sizeof(x->total));
	}
	rc = rc == SQLITE_DONE ? 0 : err_set(e, -EIO, "%s: cannot read invoices: %s", ledger, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
