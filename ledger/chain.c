/*
 * chain.c: the hash chain's bytes, digests and verification, the same for
 * every backend (chain.h; the byte strings: schemas/migrations/005-chain.sql).
 */
#include "chain.h"
#include "backend.h"
#include "err.h"
#include "fault.h"
#include "ledger.h"
#include "tallytime.h"
#include "vec.h"

#include <openssl/evp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *chain_iso_s(int64_t t_ns, char *buf, size_t len)
{
	return time_format_iso(t_ns - t_ns % NS_PER_SEC, buf, len);
}

static void put64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--, u >>= 8)
		p[i] = (unsigned char)u;
}

static EVP_MD_CTX *sha_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (c && !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	return c;
}

static int sha_end(EVP_MD_CTX *c, unsigned char out[CHAIN_HASH_LEN])
{
	unsigned int n = 0;
	int ok = EVP_DigestFinal_ex(c, out, &n) && n == CHAIN_HASH_LEN;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -ENOMEM;
}

int chain_hour_begin(struct chain_hour *h, int64_t hour_ns)
{
	static const char tag[] = "tally usage hour v1";  /* with its NUL */
	unsigned char b[sizeof(tag) + 8];
	h->hour_ns = hour_ns;
	h->rows = 0;
	if (!(h->ctx = sha_new()))
		return -ENOMEM;
	memcpy(b, tag, sizeof(tag));
	put64(b + sizeof(tag), hour_ns);
	EVP_DigestUpdate(h->ctx, b, sizeof(b));
	return 0;
}

void chain_hour_row(struct chain_hour *h, const struct chain_row *r)
{
	unsigned char b[64];
	size_t n = 0;
	uint32_t dl = (uint32_t)r->device_len;
	put64(b, r->resource_id);
	put64(b + 8, r->meter_id);
	for (int i = 0; i < 4; i++)
		b[16 + i] = (unsigned char)(dl >> (24 - 8 * i));
	EVP_DigestUpdate(h->ctx, b, 20);
	if (dl)
		EVP_DigestUpdate(h->ctx, r->device, dl);
	put64(b, r->hour_ns);
	n = 8;
	switch (r->qty.type) {
	case LEDGER_QTY_INT:
		b[n++] = 'I';
		put64(b + n, r->qty.i);
		n += 8;
		break;
	case LEDGER_QTY_REAL: {
		int64_t bits;
		memcpy(&bits, &r->qty.d, sizeof(bits));
		b[n++] = 'R';
		put64(b + n, bits);
		n += 8;
		break;
	}
	default:
		/* never written by tally: hashed so that it shows, as its text */
		b[n++] = 'X';
		EVP_DigestUpdate(h->ctx, b, n);
		if (r->qty.text && r->qty_text_len)
			EVP_DigestUpdate(h->ctx, r->qty.text, r->qty_text_len);
		n = 0;
	}
	put64(b + n, r->spanned_ns);
	put64(b + n + 8, r->covered_ns);
	put64(b + n + 16, r->samples);
	EVP_DigestUpdate(h->ctx, b, n + 24);
	h->rows++;
}

int chain_hour_end(struct chain_hour *h)
{
	int rc = sha_end(h->ctx, h->digest);
	h->ctx = NULL;
	return rc;
}

int chain_hour_empty(int64_t hour_ns, unsigned char digest[CHAIN_HASH_LEN])
{
	struct chain_hour h;
	int rc = chain_hour_begin(&h, hour_ns);
	if (rc || (rc = chain_hour_end(&h)))
		return rc;
	memcpy(digest, h.digest, CHAIN_HASH_LEN);
	return 0;
}

void *chain_commit_begin(const unsigned char prev[CHAIN_HASH_LEN], int64_t id, int64_t time_ns, int64_t upgrade,
			 int64_t hours)
{
	static const char tag[] = "tally chain v1";
	unsigned char b[sizeof(tag) + CHAIN_HASH_LEN + 32];
	EVP_MD_CTX *c = sha_new();
	if (!c)
		return NULL;
	memcpy(b, tag, sizeof(tag));
	memcpy(b + sizeof(tag), prev, CHAIN_HASH_LEN);
	put64(b + sizeof(tag) + CHAIN_HASH_LEN, id);
	put64(b + sizeof(tag) + CHAIN_HASH_LEN + 8, time_ns);
	put64(b + sizeof(tag) + CHAIN_HASH_LEN + 16, upgrade);
	put64(b + sizeof(tag) + CHAIN_HASH_LEN + 24, hours);
	EVP_DigestUpdate(c, b, sizeof(b));
	return c;
}

void chain_commit_hour(void *c, int64_t hour_ns, int64_t rows, int64_t altered,
		       const unsigned char digest[CHAIN_HASH_LEN])
{
	unsigned char b[24 + CHAIN_HASH_LEN];
	put64(b, hour_ns);
	put64(b + 8, rows);
	put64(b + 16, altered);
	memcpy(b + 24, digest, CHAIN_HASH_LEN);
	EVP_DigestUpdate(c, b, sizeof(b));
}

int chain_commit_end(void *c, unsigned char out[CHAIN_HASH_LEN])
{
	return sha_end(c, out);
}

void chain_commit_free(void *c)
{
	EVP_MD_CTX_free(c);
}

/* ---- many hours at once ---- */

static size_t hour_slot(const struct chain_hours *s, int64_t hour_ns)
{
	uint64_t x = (uint64_t)hour_ns * 0x9E3779B97F4A7C15ULL;
	size_t i = (size_t)(x >> 32) & s->mask;
	while (s->slot[i] && s->v[s->slot[i] - 1].hour_ns != hour_ns)
		i = (i + 1) & s->mask;
	return i;
}

/* The entry of hour_ns, added (not begun) if new; NULL: no memory. */
static struct chain_hour *hours_get(struct chain_hours *s, int64_t hour_ns)
{
	if (s->n + 1 > (s->mask + 1) / 2) {
		size_t cap = s->mask ? (s->mask + 1) * 2 : 1024;
		uint32_t *slot = fault_calloc(cap, sizeof(*slot));
		if (!slot)
			return NULL;
		free(s->slot);
		s->slot = slot;
		s->mask = cap - 1;
		for (size_t k = 0; k < s->n; k++)
			s->slot[hour_slot(s, s->v[k].hour_ns)] = (uint32_t)k + 1;
	}
	size_t i = hour_slot(s, hour_ns);
	if (s->slot[i])
		return &s->v[s->slot[i] - 1];
	if (vec_reserve((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v), 256))
		return NULL;
	struct chain_hour *h = &s->v[s->n];
	memset(h, 0, sizeof(*h));
	h->hour_ns = hour_ns;
	s->slot[i] = (uint32_t)++s->n;
	return h;
}

int chain_hours_add(void *hours, const struct chain_row *r)
{
	struct chain_hours *s = hours;
	struct chain_hour *h = hours_get(s, r->hour_ns);
	if (!h || (!h->ctx && chain_hour_begin(h, h->hour_ns)))
		return -ENOMEM;
	chain_hour_row(h, r);
	s->rows++;
	return 0;
}

static int hour_cmp(const void *x, const void *y)
{
	int64_t a = ((const struct chain_hour *)x)->hour_ns, b = ((const struct chain_hour *)y)->hour_ns;
	return a < b ? -1 : a > b;
}

int chain_hours_finish(struct chain_hours *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (chain_hour_end(&s->v[i]))
			return -ENOMEM;
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), hour_cmp);
	free(s->slot);
	s->slot = NULL;
	s->mask = 0;
	return 0;
}

void chain_hours_free(struct chain_hours *s)
{
	for (size_t i = 0; i < s->n; i++)
		EVP_MD_CTX_free(s->v[i].ctx);
	free(s->v);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* ---- a transaction's hours ---- */

bool chain_touched_find(const struct chain_touched *t, int64_t hour_ns, size_t *at)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->v[mid].hour_ns < hour_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < t->n && t->v[lo].hour_ns == hour_ns;
}

int chain_touched_insert(struct chain_touched *t, size_t at, int64_t hour_ns, int64_t altered)
{
	if (vec_reserve((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v), 16))
		return -ENOMEM;
	memmove(t->v + at + 1, t->v + at, (t->n - at) * sizeof(*t->v));
	t->v[at].hour_ns = hour_ns;
	t->v[at].altered = altered;
	t->n++;
	return 0;
}

/* ---- verification (tally ledger verify) ---- */

struct problems {
	int n;
	struct problem {
		int64_t commit;          /* INT64_MAX: names no commit */
		int64_t hour_ns;
		char text[240];
	} first[3];                  /* the lowest (commit, hour) of all */
};

static void problem(struct problems *p, int64_t commit, int64_t hour_ns, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct problems *p, int64_t commit, int64_t hour_ns, const char *fmt, ...)
{
	int keep = p->n < 3 ? p->n : 3, at = keep;
	p->n++;
	while (at > 0 && (p->first[at - 1].commit > commit ||
			  (p->first[at - 1].commit == commit && p->first[at - 1].hour_ns > hour_ns)))
		at--;
	if (at == 3)
		return;
	if (keep == 3)
		keep = 2;            /* the last one falls off */
	memmove(&p->first[at + 1], &p->first[at], (size_t)(keep - at) * sizeof(p->first[0]));
	p->first[at].commit = commit;
	p->first[at].hour_ns = hour_ns;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->first[at].text, sizeof(p->first[at].text), fmt, ap);
	va_end(ap);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* Each hour's record of the last commit that wrote it. */
struct chainrec {
	int64_t hour_ns, rows, commit, commit_ns;
	unsigned char digest[CHAIN_HASH_LEN];
};

static int rec_cmp(const void *x, const void *y)
{
	int64_t a = ((const struct chainrec *)x)->hour_ns, b = ((const struct chainrec *)y)->hour_ns;
	return a < b ? -1 : a > b;
}

/* The walk over the chain's links: every commit's hash recomputed from the
 * previous one's and its hours; in v, each hour's last record. */
struct walk {
	struct ledger_verify *out;
	struct problems *p;
	struct chain_hours idx;      /* hour -> index + 1 into v, kept in the entry's rows */
	struct chainrec *v;
	size_t n, cap;
	unsigned char prev[CHAIN_HASH_LEN], stored[CHAIN_HASH_LEN];
	int64_t id, time_ns, hours, seen;
	EVP_MD_CTX *c;
};

/* The end of commit w->id: its hash. */
static int walk_end_commit(struct walk *w)
{
	unsigned char got[CHAIN_HASH_LEN];
	char t[48];
	int rc = sha_end(w->c, got);
	w->c = NULL;
	if (rc)
		return rc;
	if (w->seen != w->hours)
		problem(w->p, w->id, 0, "commit %lld (%s): says it wrote %lld hours, the chain holds %lld",
			(long long)w->id, chain_iso_s(w->time_ns, t, sizeof(t)), (long long)w->hours,
			(long long)w->seen);
	else if (memcmp(got, w->stored, CHAIN_HASH_LEN))
		problem(w->p, w->id, 0, "commit %lld (%s): its hash does not follow from the commit before"
			" and the hours it wrote: the chain was altered", (long long)w->id,
			chain_iso_s(w->time_ns, t, sizeof(t)));
	memcpy(w->prev, w->stored, CHAIN_HASH_LEN);  /* one altered record is one problem */
	w->out->head_id = w->id;
	hex(w->stored, CHAIN_HASH_LEN, w->out->head);
	return 0;
}

static int walk_link(void *ctx, const struct chain_link *k)
{
	struct walk *w = ctx;
	int rc;
	if (k->id != w->id) {
		char t[48];
		if (w->id && (rc = walk_end_commit(w)))
			return rc;
		if (k->id != w->id + 1)
			problem(w->p, k->id, 0, "commit %lld (%s) follows commit %lld: %lld commit%s missing",
				(long long)k->id, chain_iso_s(k->time_ns, t, sizeof(t)), (long long)w->id,
				(long long)(k->id - w->id - 1), k->id - w->id - 1 == 1 ? " is" : "s are");
		w->id = k->id;
		w->time_ns = k->time_ns;
		w->hours = k->hours;
		w->seen = 0;
		memcpy(w->stored, k->hash, CHAIN_HASH_LEN);
		if (!w->out->commits++) {
			w->out->first_ns = k->time_ns;
			w->out->upgraded = k->upgrade != 0;
			w->out->sealed_hours = k->upgrade ? k->hours : 0;
		}
		if (!(w->c = chain_commit_begin(w->prev, k->id, k->time_ns, k->upgrade, k->hours)))
			return -ENOMEM;
	}
	if (!k->has_hour)
		return 0;                    /* a commit without hours */
	chain_commit_hour(w->c, k->hour_ns, k->rows, k->altered, k->digest);
	w->seen++;
	if (k->altered) {
		/* the writer found the hour changed before it wrote to it */
		char t[48], th[48];
		if (k->altered > 0)
			problem(w->p, k->altered, k->hour_ns, "commit %lld (%s) found the usage of hour %s altered"
				" since commit %lld wrote it", (long long)k->id, chain_iso_s(k->time_ns, t, sizeof(t)),
				time_format_iso(k->hour_ns, th, sizeof(th)), (long long)k->altered);
		else
			problem(w->p, INT64_MAX, k->hour_ns, "commit %lld (%s) found usage rows in hour %s that no"
				" commit wrote", (long long)k->id, chain_iso_s(k->time_ns, t, sizeof(t)),
				time_format_iso(k->hour_ns, th, sizeof(th)));
	}
	struct chain_hour *h = hours_get(&w->idx, k->hour_ns);
	if (!h)
		return -ENOMEM;
	if (!h->rows) {                      /* new hour: its record's index + 1 */
		if (vec_reserve((void **)&w->v, &w->cap, w->n + 1, sizeof(*w->v), 1024))
			return -ENOMEM;
		h->rows = (int64_t)++w->n;
	}
	struct chainrec *r = &w->v[h->rows - 1];
	r->hour_ns = k->hour_ns;
	r->rows = k->rows;
	r->commit = k->id;
	r->commit_ns = k->time_ns;
	memcpy(r->digest, k->digest, CHAIN_HASH_LEN);
	return 0;
}

int chain_verify(struct ledger_snap *s, const char *name, struct ledger_verify *out, struct tally_err *e)
{
	const struct ledger_backend *be = s->be;
	struct walk w = { .out = out };
	struct chain_hours now = { 0 };
	struct problems p = { 0 };
	int64_t orphans = 0;
	int rc;

	w.p = &p;
	rc = be->snap_links(s, walk_link, &w, e);
	if (rc == 0 && w.id)
		rc = walk_end_commit(&w);
	if (rc == -ENOMEM) {
		rc = err_set(e, rc, "%s: out of memory verifying the chain", name);
		goto out;
	}
	if (rc || (rc = be->snap_orphans(s, &orphans, e)))
		goto out;
	if (orphans)
		problem(&p, INT64_MAX, 0, "%lld chain_hours rows belong to no commit", (long long)orphans);
	if ((rc = be->snap_usage(s, chain_hours_add, &now, e)) || (rc = chain_hours_finish(&now))) {
		if (rc == -ENOMEM)
			rc = err_set(e, rc, "%s: out of memory hashing the usage", name);
		goto out;
	}
	if (w.n)
		qsort(w.v, w.n, sizeof(*w.v), rec_cmp);
	out->rows = now.rows;
	out->hours = (int64_t)now.n;
	/* both sorted by hour: merge */
	for (size_t i = 0, j = 0; i < now.n || j < w.n;) {
		char t[48], tc[48];
		if (j == w.n || (i < now.n && now.v[i].hour_ns < w.v[j].hour_ns)) {
			problem(&p, INT64_MAX, now.v[i].hour_ns, "hour %s: %lld usage row%s that no commit wrote",
				time_format_iso(now.v[i].hour_ns, t, sizeof(t)), (long long)now.v[i].rows,
				now.v[i].rows == 1 ? "" : "s");
			i++;
			continue;
		}
		const struct chainrec *r = &w.v[j++];
		int64_t rows = 0;
		unsigned char empty[CHAIN_HASH_LEN];
		const unsigned char *dg = empty;
		if (i < now.n && now.v[i].hour_ns == r->hour_ns) {
			rows = now.v[i].rows;
			dg = now.v[i++].digest;
		} else if (chain_hour_empty(r->hour_ns, empty)) {   /* all its rows are gone */
			rc = err_set(e, -ENOMEM, "%s: out of memory", name);
			goto out;
		}
		if (rows != r->rows || memcmp(dg, r->digest, CHAIN_HASH_LEN))
			problem(&p, r->commit, r->hour_ns, "commit %lld (%s): the usage of hour %s is not what it"
				" committed (%lld row%s now, %lld then)", (long long)r->commit,
				chain_iso_s(r->commit_ns, tc, sizeof(tc)), time_format_iso(r->hour_ns, t, sizeof(t)),
				(long long)rows, rows == 1 ? "" : "s", (long long)r->rows);
	}
	out->problems = p.n;
	out->bad_commit = p.n && p.first[0].commit != INT64_MAX ? p.first[0].commit : 0;
	for (int k = 0, used = 0; k < p.n && k < 3; k++)
		used += snprintf(out->first + used, sizeof(out->first) - (size_t)used, "%s%s", k ? "; " : "",
				 p.first[k].text);
	rc = 0;
out:
	EVP_MD_CTX_free(w.c);
	free(w.v);
	chain_hours_free(&w.idx);
	chain_hours_free(&now);
	return rc;
}
