/*
 * import.c: booking usage events into the ledger's hourly rows (import.h),
 * in one writer's transaction through ledger.h. The events come from
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

/* ---- booking ---- */

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

/* The resource of ev, created when new; its span widened to the event's. */
static int resource_of(struct ledger *l, struct known *k, const struct import_event *ev, int64_t *id,
		       struct import_result *r, struct tally_err *e)
{
	struct ledger_resource key;
	int rc;
	str_copy(key.meta.resource, ev->resource, sizeof(key.meta.resource));
	struct ledger_resource *res = bsearch(&key, k->v, k->n, sizeof(key), cmp_res);
	if (res && strcmp(res->meta.tenant, ev->tenant))
		return err_set(e, -EINVAL, "%s: resource '%s' belongs to tenant '%s', not '%s'", ev->where, ev->resource,
			       res->meta.tenant[0] ? res->meta.tenant : "(none)", ev->tenant);
	if (!res) {
		if (vec_reserve((void **)&k->v, &k->cap, k->n + 1, sizeof(*k->v), 256))
			return err_set(e, -ENOMEM, "out of memory");
		size_t at = 0;
		while (at < k->n && strcmp(k->v[at].meta.resource, ev->resource) < 0)
			at++;
		memmove(&k->v[at + 1], &k->v[at], (k->n - at) * sizeof(*k->v));
		k->n++;
		res = &k->v[at];
		memset(res, 0, sizeof(*res));
		res->id = ++k->max_id;
		str_copy(res->meta.resource, ev->resource, sizeof(res->meta.resource));
		str_copy(res->meta.type, "external", sizeof(res->meta.type));
		str_copy(res->meta.name, ev->name[0] ? ev->name : ev->resource, sizeof(res->meta.name));
		str_copy(res->meta.tenant, ev->tenant, sizeof(res->meta.tenant));
		res->meta.time_ns = res->first_seen_ns = ev->time_ns;
		res->last_seen_ns = ev->end_ns;
		/* its row first: the ledger says its id (PostgreSQL: the one
		 * another writer gave it, or a new one), which its attributes name */
		if ((rc = ledger_put_resource(l, res, false, e)) ||
		    (rc = ledger_put_attrs(l, res->id, &res->meta, e)))
			return rc;
		r->resources_new++;
		*id = res->id;
		return 0;
	} else if (ev->time_ns >= res->first_seen_ns && ev->end_ns <= res->last_seen_ns) {
		*id = res->id;
		return 0;
	}
	if (ev->time_ns < res->first_seen_ns)
		res->first_seen_ns = ev->time_ns;
	if (ev->end_ns > res->last_seen_ns)
		res->last_seen_ns = ev->end_ns;
	*id = res->id;
	return ledger_put_resource(l, res, true, e);
}

/* Book one event into its hours. */
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
			return err_set(e, -EINVAL, "%s: the event's usage in the hour from %lld does not fit a ledger row"
				       " (more than 2^63)", ev->where, (long long)(h / NS_PER_SEC));
		u.hour_ns = h;
		u.qty = (int64_t)part;
		u.spanned_ns = u.covered_ns = b - a;
		u.samples = h == hour_floor(ev->time_ns) ? 1 : 0;
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

int import_apply(const char *ledger_path, const char *source, struct import_batch *b, int64_t now_ns,
		 struct import_result *r, struct tally_err *e)
{
	struct ledger *l = NULL;
	struct known k = { .max_id = 0 };
	int64_t *meter_ids = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!source[0] || strlen(source) > 63)
		return err_set(e, -EINVAL, "the source is 1 to 63 characters");
	/* the source host of imported series: never a collector's agent id,
	 * which has no ':' (docs/config.md, tallyd.agent_id) */
	char agent[80];
	snprintf(agent, sizeof(agent), "import:%s", source);
	if ((rc = ledger_open(&l, ledger_path, e)))
		return rc;
	if (!(meter_ids = calloc((size_t)meter_count(), sizeof(*meter_ids)))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = ledger_load_resources(l, on_resource, &k, e)))
		goto out;
	if (k.n > 1)
		qsort(k.v, k.n, sizeof(*k.v), cmp_res);
	if ((rc = ledger_begin(l, e)))
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		const struct import_event *ev = &b->v[i];
		const struct meter_def *md = meter_get(ev->meter);
		char digest[65], had[65];
		bool found;
		int64_t when, rid = 0;
		digest_of(ev, digest);
		if ((rc = ledger_import_seen(l, source, ev->id, &found, had, &when, e)))
			goto fail;
		if (found) {
			if (strcmp(had, digest)) {
				char t[48];
				rc = err_set(e, -EINVAL, "%s: event '%s' of source '%s' was imported %s with other values:"
					     " an id names one event (give a correction its own id)", ev->where, ev->id,
					     source, time_format_iso(when, t, sizeof(t)));
				goto fail;
			}
			r->duplicates++;
			continue;
		}
		if (!meter_ids[ev->meter] &&
		    (rc = ledger_meter_id(l, md->name, kind_name(md->kind), md->unit, &meter_ids[ev->meter], e)))
			goto fail;
		if ((rc = resource_of(l, &k, ev, &rid, r, e)) || (rc = book(l, ev, rid, meter_ids[ev->meter], r, e)))
			goto fail;
		/* its series row: rating and usage reports find a series' rows
		 * through it (reader.h); ended, so nothing waits for a reading */
		struct ledger_series ls = { .resource_id = rid, .meter_id = meter_ids[ev->meter], .device = ev->device,
					    .agent = agent, .last_ns = ev->end_ns, .kind = md->kind, .flags = 3 };
		if ((rc = ledger_put_series(l, &ls, e)))
			goto fail;
		struct ledger_import_event row = { .source = source, .event_id = ev->id, .device = ev->device,
						   .digest = digest, .resource_id = rid, .meter_id = meter_ids[ev->meter],
						   .time_ns = ev->time_ns, .end_ns = ev->end_ns,
						   .quantity = ev->quantity, .imported_ns = now_ns };
		if ((rc = ledger_import_put(l, &row, e)))
			goto fail;
		if (!r->events || ev->time_ns < r->from_ns)
			r->from_ns = ev->time_ns;
		if (!r->events || ev->end_ns > r->to_ns)
			r->to_ns = ev->end_ns;
		r->events++;
		b->v[i].booked = true;
	}
	if ((rc = ledger_commit(l, e)))
		goto fail;
	goto out;
fail:
	ledger_rollback(l);
	r->events = r->rows = r->resources_new = 0;
	for (size_t i = 0; i < b->n; i++)
		b->v[i].booked = false;
out:
	ledger_close(l);
	free(k.v);
	free(meter_ids);
	return rc;
}
