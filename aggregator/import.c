/*
 * import.c: booking usage events into the ledger's hourly rows (import.h),
 * in a writer's transaction through ledger.h: tally import's own, or
 * tallyd's beside its aggregator (import_writer). The events come from
 * import_parse.c.
 */
#include "import.h"
#include "err.h"
#include "ledger.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The hex SHA-256 of the values that make an event (not its id or the
 * resource's name): a key used again must name the same event. */
static void digest_of(const struct import_event *ev, char hex[65])
{
	char text[1024];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int len = snprintf(text, sizeof(text), "%s\x1f%s\x1f%s\x1f%s\x1f%lld\x1f%lld\x1f%lld", ev->tenant, ev->resource,
			   meter_get(ev->meter)->name, ev->device, (long long)ev->time_ns, (long long)ev->end_ns,
			   (long long)ev->quantity);
	EVP_Digest(text, (size_t)len, md, &n, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
}

/* ---- the booking state of one writer ----
 *
 * The resources this transaction wrote (new, or with a wider span), by
 * uuid, in front of what the writer knows (import_resources.find): the
 * later events of the transaction see them; a commit hands them to the
 * writer (learn), a rollback forgets them. The meters' ids likewise: one
 * inserted in a transaction that rolled back is no id. */

struct held {
	struct ledger_resource r;
	bool in_ledger;              /* its row is in the ledger (committed, or written in this transaction) */
	bool written;                /* written in this transaction */
};

struct import_writer {
	struct ledger *l;
	struct import_resources res;
	struct held *v;              /* sorted by uuid */
	size_t n, cap;
	int64_t *meter_ids;          /* by meter index, 0: not known */
	int n_meters;
};

int import_writer_new(struct import_writer **out, struct ledger *l, const struct import_resources *res)
{
	struct import_writer *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!w || !(w->meter_ids = calloc((size_t)meter_count(), sizeof(*w->meter_ids)))) {
		free(w);
		return -ENOMEM;
	}
	w->n_meters = meter_count();
	w->l = l;
	w->res = *res;
	*out = w;
	return 0;
}

void import_writer_free(struct import_writer *w)
{
	if (!w)
		return;
	free(w->v);
	free(w->meter_ids);
	free(w);
}

void import_writer_end(struct import_writer *w, bool committed)
{
	for (size_t i = 0; committed && i < w->n; i++)
		if (w->v[i].written && w->res.learn)
			w->res.learn(w->res.ctx, &w->v[i].r);
	w->n = 0;
	if (!committed)
		memset(w->meter_ids, 0, (size_t)w->n_meters * sizeof(*w->meter_ids));
}

/* The position of uuid in w->v (*found), or where it goes. */
static size_t held_find(const struct import_writer *w, const char *uuid, bool *found)
{
	size_t lo = 0, hi = w->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(w->v[mid].r.meta.resource, uuid);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* The resource uuid as this transaction sees it: NULL when nobody knows
 * it (*at: where it goes), else the held copy (taken from the writer the
 * first time). */
static struct held *held_get(struct import_writer *w, const char *uuid, size_t *at, struct tally_err *e, int *rc)
{
	bool found;
	*rc = 0;
	*at = held_find(w, uuid, &found);
	if (found)
		return &w->v[*at];
	struct held h = { 0 };
	if (!w->res.find(w->res.ctx, uuid, &h.r, &h.in_ledger))
		return NULL;
	if (vec_reserve((void **)&w->v, &w->cap, w->n + 1, sizeof(*w->v), 64)) {
		*rc = err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	memmove(&w->v[*at + 1], &w->v[*at], (w->n - *at) * sizeof(*w->v));
	w->n++;
	w->v[*at] = h;
	return &w->v[*at];
}

/* The resource of ev (created when new, its span widened to the event's)
 * written in this transaction as needed, its id in *id. -EINVAL when it is
 * another tenant's. */
static int resource_of(struct import_writer *w, const struct import_event *ev, int64_t *id,
		       struct import_result *r, struct tally_err *e)
{
	size_t at;
	int rc;
	struct held *h = held_get(w, ev->resource, &at, e, &rc);
	if (rc)
		return rc;
	/* its tenant: the writer's, or for a resource unknown to it the
	 * ledger's row (on PostgreSQL another aggregator may have written it) */
	char tenant[sizeof(((struct resource_meta){ 0 }).tenant)];
	bool found = h != NULL;
	/* the last instant the event saw the resource: an amount at an
	 * instant, that instant; a span [time, end), its last nanosecond, as
	 * end is the first instant it no longer was (a bucket held all of
	 * September is not in October, nor owes its fees) */
	const int64_t last = ev->end_ns > ev->time_ns ? ev->end_ns - 1 : ev->time_ns;
	if (h)
		str_copy(tenant, h->r.meta.tenant, sizeof(tenant));
	else if ((rc = ledger_resource_tenant(w->l, ev->resource, &found, tenant, sizeof(tenant), e)))
		return rc;
	if (found && strcmp(tenant, ev->tenant))
		return err_set(e, -EINVAL, "%s: resource '%s' belongs to tenant '%s', not '%s'", ev->where, ev->resource,
			       tenant[0] ? tenant : "(none)", ev->tenant);
	if (!h) {
		if (vec_reserve((void **)&w->v, &w->cap, w->n + 1, sizeof(*w->v), 64))
			return err_set(e, -ENOMEM, "out of memory");
		memmove(&w->v[at + 1], &w->v[at], (w->n - at) * sizeof(*w->v));
		w->n++;
		h = &w->v[at];
		memset(h, 0, sizeof(*h));
		struct ledger_resource *res = &h->r;
		res->id = w->res.new_id(w->res.ctx);
		str_copy(res->meta.resource, ev->resource, sizeof(res->meta.resource));
		str_copy(res->meta.type, "external", sizeof(res->meta.type));
		str_copy(res->meta.name, ev->name[0] ? ev->name : ev->resource, sizeof(res->meta.name));
		str_copy(res->meta.tenant, ev->tenant, sizeof(res->meta.tenant));
		res->meta.time_ns = res->first_seen_ns = ev->time_ns;
		res->last_seen_ns = last;
		/* its row first: the ledger says its id (PostgreSQL: the one
		 * another writer gave it, or a new one), which its attributes name */
		if ((rc = ledger_put_resource(w->l, res, false, e)) ||
		    (rc = ledger_put_attrs(w->l, res->id, &res->meta, e)))
			return rc;
		h->in_ledger = h->written = true;
		r->resources_new++;
		*id = res->id;
		return 0;
	}
	bool wider = ev->time_ns < h->r.first_seen_ns || last > h->r.last_seen_ns;
	if (ev->time_ns < h->r.first_seen_ns)
		h->r.first_seen_ns = ev->time_ns;
	if (last > h->r.last_seen_ns)
		h->r.last_seen_ns = last;
	/* a resource the writer has not committed yet is written here (its
	 * usage rows name it) as a new row: the ledger keeps or gives its id */
	if (wider || !h->in_ledger) {
		if ((rc = ledger_put_resource(w->l, &h->r, h->in_ledger, e)))
			return rc;
		h->in_ledger = h->written = true;
	}
	*id = h->r.id;
	return 0;
}

/* Book one event into its hours (l NULL: only check that every hour's
 * part fits a ledger row). */
static int book(struct ledger *l, const struct import_event *ev, int64_t rid, int64_t mid, struct import_result *r,
		struct tally_err *e)
{
	const bool gauge = meter_get(ev->meter)->kind == SAMPLE_GAUGE;
	struct ledger_usage u = { .resource_id = rid, .meter_id = mid, .device = ev->device };
	int rc;
	if (ev->end_ns == ev->time_ns) {
		/* an amount at an instant: its hour */
		u.hour_ns = hour_floor(ev->time_ns);
		u.qty = ev->quantity;
		u.samples = 1;
		if (!l)
			return 0;
		r->rows++;
		return ledger_add_usage(l, &u, e);
	}
	/* over [time, end): a counter's amount split in proportion to time by
	 * cumulative floor (the parts add up to it), a gauge's level times
	 * each hour's whole seconds */
	const __int128 span = ev->end_ns - ev->time_ns, q = ev->quantity < 0 ? -(__int128)ev->quantity : ev->quantity;
	__int128 before = 0;
	for (int64_t h = hour_floor(ev->time_ns); h < ev->end_ns; h += NS_PER_HOUR) {
		int64_t a = h > ev->time_ns ? h : ev->time_ns, b = h + NS_PER_HOUR < ev->end_ns ? h + NS_PER_HOUR : ev->end_ns;
		__int128 part;
		if (gauge) {
			part = (__int128)ev->quantity * ((b - a) / NS_PER_SEC);
		} else {
			__int128 upto = q * (b - ev->time_ns) / span;
			part = upto - before;
			before = upto;
			if (ev->quantity < 0)
				part = -part;
		}
		if (part > INT64_MAX || part < -INT64_MAX)
			return err_set(e, -ERANGE, "%s: the event's usage in the hour from %lld does not fit a ledger row"
				       " (more than 2^63)", ev->where, (long long)(h / NS_PER_SEC));
		u.hour_ns = h;
		u.qty = (int64_t)part;
		u.spanned_ns = u.covered_ns = b - a;
		u.samples = h == hour_floor(ev->time_ns) ? 1 : 0;
		if (!l)
			continue;
		r->rows++;
		if ((rc = ledger_add_usage(l, &u, e)))
			return rc;
	}
	return 0;
}

static const char *kind_name(enum sample_kind k)
{
	return k == SAMPLE_GAUGE ? "gauge" : k == SAMPLE_DELTA ? "delta" : "cumulative";
}

int import_writer_book(struct import_writer *w, const char *source, struct import_batch *b, int64_t now_ns,
		       struct import_result *r, size_t *bad, struct tally_err *e)
{
	struct ledger *l = w->l;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	*bad = SIZE_MAX;
	if (!import_source_ok(source))
		return err_set(e, -EINVAL, "the source is 1 to 63 characters, no space");
	/* the source host of imported series: never a collector's agent id,
	 * which has no ':' (docs/config.md, tallyd.agent_id) */
	char agent[80];
	snprintf(agent, sizeof(agent), "import:%s", source);
	for (size_t i = 0; i < b->n; i++)
		b->v[i].booked = false;
	for (size_t i = 0; i < b->n; i++) {
		const struct import_event *ev = &b->v[i];
		const struct meter_def *md = meter_get(ev->meter);
		char digest[65], had[65];
		bool found;
		int64_t when, rid = 0;
		if (ev->meter < 0 || ev->meter >= w->n_meters) {
			*bad = i;
			return err_set(e, -EINVAL, "%s: meter '%s' is not known to this writer", ev->where, md->name);
		}
		digest_of(ev, digest);
		if ((rc = ledger_import_seen(l, source, ev->id, &found, had, &when, e)))
			return rc;
		if (found) {
			if (strcmp(had, digest)) {
				char t[48];
				*bad = i;
				return err_set(e, -EEXIST, "%s: event '%s' of source '%s' was recorded %s with other"
					       " values: an id names one event (give a correction its own id)", ev->where,
					       ev->id, source, time_format_iso(when, t, sizeof(t)));
			}
			r->duplicates++;
			continue;
		}
		struct import_result dry;
		if ((rc = book(NULL, ev, 0, 0, &dry, e))) {
			*bad = i;
			return rc;
		}
		if (!w->meter_ids[ev->meter] &&
		    (rc = ledger_meter_id(l, md->name, kind_name(md->kind), md->unit, &w->meter_ids[ev->meter], e)))
			return rc;
		if ((rc = resource_of(w, ev, &rid, r, e))) {
			if (rc == -EINVAL)
				*bad = i;
			return rc;
		}
		if ((rc = book(l, ev, rid, w->meter_ids[ev->meter], r, e))) {
			if (rc == -ERANGE) {
				/* its hour's row would pass 2^63 - 1 (ledger.h) */
				*bad = i;
				err_prefix(e, "%s: event '%s'", ev->where, ev->id);
			}
			return rc;
		}
		/* its series row: rating and usage reports find a series' rows
		 * through it (reader.h); ended, so nothing waits for a reading */
		struct ledger_series ls = { .resource_id = rid, .meter_id = w->meter_ids[ev->meter], .device = ev->device,
					    .agent = agent, .last_ns = ev->end_ns, .kind = md->kind, .flags = 3 };
		if ((rc = ledger_put_series(l, &ls, e)))
			return rc;
		struct ledger_import_event row = { .source = source, .event_id = ev->id, .device = ev->device,
						   .digest = digest, .resource_id = rid, .meter_id = w->meter_ids[ev->meter],
						   .time_ns = ev->time_ns, .end_ns = ev->end_ns,
						   .quantity = ev->quantity, .imported_ns = now_ns };
		if ((rc = ledger_import_put(l, &row, e)))
			return rc;
		if (!r->events || ev->time_ns < r->from_ns)
			r->from_ns = ev->time_ns;
		if (!r->events || ev->end_ns > r->to_ns)
			r->to_ns = ev->end_ns;
		r->events++;
		b->v[i].booked = true;
	}
	return 0;
}

/* ---- tally import: the writer is this process, for one transaction ---- */

struct known {
	struct ledger_resource *v;   /* sorted by uuid */
	size_t n, cap;
	int64_t max_id;
};

static int cmp_res(const void *a, const void *b)
{
	return strcmp(((const struct ledger_resource *)a)->meta.resource, ((const struct ledger_resource *)b)->meta.resource);
}

static int on_resource(void *ctx, const struct ledger_resource *r)
{
	struct known *k = ctx;
	if (vec_reserve((void **)&k->v, &k->cap, k->n + 1, sizeof(*k->v), 256))
		return -ENOMEM;
	k->v[k->n++] = *r;
	if (r->id > k->max_id)
		k->max_id = r->id;
	return 0;
}

static int known_find(void *ctx, const char *uuid, struct ledger_resource *out, bool *in_ledger)
{
	struct known *k = ctx;
	struct ledger_resource key;
	if (!k->n)
		return 0;   /* a new ledger: no array to search (bsearch wants one, even empty) */
	str_copy(key.meta.resource, uuid, sizeof(key.meta.resource));
	const struct ledger_resource *r = bsearch(&key, k->v, k->n, sizeof(key), cmp_res);
	if (!r)
		return 0;
	*out = *r;
	*in_ledger = true;
	return 1;
}

static int64_t known_new_id(void *ctx)
{
	return ++((struct known *)ctx)->max_id;
}

int import_apply(const char *ledger_path, const char *source, struct import_batch *b, int64_t now_ns,
		 struct import_result *r, struct tally_err *e)
{
	struct ledger *l = NULL;
	struct known k = { .max_id = 0 };
	struct import_writer *w = NULL;
	size_t bad;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!import_source_ok(source))
		return err_set(e, -EINVAL, "the source is 1 to 63 characters, no space");
	if ((rc = ledger_open(&l, ledger_path, e)))
		return rc;
	if ((rc = ledger_load_resources(l, on_resource, &k, e)))
		goto out;
	if (k.n > 1)
		qsort(k.v, k.n, sizeof(*k.v), cmp_res);
	const struct import_resources res = { .find = known_find, .new_id = known_new_id, .ctx = &k };
	if ((rc = import_writer_new(&w, l, &res))) {
		err_set(e, rc, "out of memory");
		goto out;
	}
	if ((rc = ledger_begin(l, e)))
		goto out;
	if ((rc = import_writer_book(w, source, b, now_ns, r, &bad, e)) || (rc = ledger_commit(l, e))) {
		ledger_rollback(l);
		import_writer_end(w, false);
		memset(r, 0, sizeof(*r));
		for (size_t i = 0; i < b->n; i++)
			b->v[i].booked = false;
		goto out;
	}
	import_writer_end(w, true);
out:
	import_writer_free(w);
	ledger_close(l);
	free(k.v);
	return rc;
}
