/*
 * import.c: usage events from a file into the ledger's hourly rows
 * (import.h). Parsing is pure (CSV by hand, RFC 4180; JSON through the
 * config reader, which keeps every value's line and column); booking runs
 * in one writer's transaction through ledger.h.
 */
#include "import.h"
#include "cfg.h"
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

/* The columns (CSV) and keys (JSON) of an event. */
enum col { C_ID, C_TENANT, C_RESOURCE, C_METER, C_TIME, C_END, C_QUANTITY, C_DEVICE, C_NAME, C_COUNT };
static const char *const col_names[] = { "id", "tenant", "resource", "meter", "time", "end", "quantity", "device",
					 "name", NULL };
static const bool col_required[C_COUNT] = { true, true, true, true, true, false, true, false, false };

/* Earliest and latest instants an event may name: 2000 to 2100. */
#define T_MIN (946684800LL * NS_PER_SEC)
#define T_MAX (4102444800LL * NS_PER_SEC)

/* One event from its fields (vals[c], NULL when absent; place[c] the
 * "file:line:col" of each) into ev: every check but the ledger's. */
static int event_of(const char *const *vals, char (*place)[300], const char *where, struct import_event *ev,
		    struct tally_err *e)
{
	static const size_t lens[C_COUNT] = { IMPORT_ID_MAX + 1, 64, TALLY_ID_MAX, 64, 64, 64, 64, 64, 128 };
	memset(ev, 0, sizeof(*ev));
	str_copy(ev->where, where, sizeof(ev->where));
	for (int c = 0; c < C_COUNT; c++) {
		if (!vals[c] || !vals[c][0]) {
			if (col_required[c])
				return err_set(e, -EINVAL, "%s: the event has no '%s' (an event needs id, tenant, resource,"
					       " meter, time and quantity)", where, col_names[c]);
			continue;
		}
		if (strlen(vals[c]) >= lens[c])
			return err_set(e, -EINVAL, "%s: '%s' is longer than %zu characters", place[c], col_names[c],
				       lens[c] - 1);
		for (const char *p = vals[c]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return err_set(e, -EINVAL, "%s: '%s' holds a control character", place[c], col_names[c]);
	}
	str_copy(ev->id, vals[C_ID], sizeof(ev->id));
	str_copy(ev->tenant, vals[C_TENANT], sizeof(ev->tenant));
	str_copy(ev->resource, vals[C_RESOURCE], sizeof(ev->resource));
	if (vals[C_DEVICE])
		str_copy(ev->device, vals[C_DEVICE], sizeof(ev->device));
	if (vals[C_NAME])
		str_copy(ev->name, vals[C_NAME], sizeof(ev->name));
	if ((ev->meter = meter_find(vals[C_METER])) < 0)
		return err_set(e, -EINVAL, "%s: 'meter': unknown meter '%s' (a built-in meter of docs/meters.md, or a"
			       " custom meter declared in the config's meters: section, read with --config FILE)",
			       place[C_METER], vals[C_METER]);
	const struct meter_def *md = meter_get(ev->meter);
	if (ev->meter < METER_COUNT)
		return err_set(e, -EINVAL, "%s: 'meter': '%s' is a built-in meter, measured by the collectors: events"
			       " go to a custom meter (declared in the config's meters: section)", place[C_METER],
			       vals[C_METER]);
	struct tally_err te = { 0 };
	int64_t x;
	if (time_parse_range(vals[C_TIME], &ev->time_ns, &x, &te) || ev->time_ns < T_MIN || ev->time_ns >= T_MAX)
		return err_set(e, -EINVAL, "%s: 'time': expected an instant like 2026-10-05T13:00:00Z between 2000 and"
			       " 2100 (got '%s')", place[C_TIME], vals[C_TIME]);
	ev->end_ns = ev->time_ns;
	if (vals[C_END] && vals[C_END][0] &&
	    (time_parse_range(vals[C_END], &ev->end_ns, &x, &te) || ev->end_ns <= ev->time_ns || ev->end_ns >= T_MAX))
		return err_set(e, -EINVAL, "%s: 'end': expected an instant after 'time' (got '%s')", place[C_END],
			       vals[C_END]);
	/* a quantity is a whole number of the meter's base unit */
	const char *q = vals[C_QUANTITY];
	char *endp;
	bool neg = q[0] == '-';
	errno = 0;
	long long v = strtoll(q, &endp, 10);
	if (*endp || q[neg] < '0' || q[neg] > '9' || errno == ERANGE)
		return err_set(e, -EINVAL, "%s: 'quantity': expected a whole number of %s (the meter's base unit), got"
			       " '%s'", place[C_QUANTITY], md->unit, q);
	ev->quantity = v;
	if (v < 0 && md->kind != SAMPLE_DELTA)
		return err_set(e, -EINVAL, "%s: 'quantity': %s is negative: a %s's quantity never is (a correction is"
			       " an event of a delta meter, or a credit note)", place[C_QUANTITY], q,
			       md->kind == SAMPLE_GAUGE ? "gauge" : "counter");
	if (md->kind == SAMPLE_GAUGE) {
		if (ev->end_ns == ev->time_ns)
			return err_set(e, -EINVAL, "%s: meter '%s' is a gauge: an event needs 'end', the level holds over"
				       " [time, end)", where, md->name);
		if (ev->time_ns % NS_PER_SEC || ev->end_ns % NS_PER_SEC)
			return err_set(e, -EINVAL, "%s: a gauge's 'time' and 'end' are whole seconds (its integral is"
				       " exact in unit-seconds)", where);
	}
	return 0;
}

static int push(struct import_batch *b, const struct import_event *ev)
{
	if (vec_reserve((void **)&b->v, &b->cap, b->n + 1, sizeof(*b->v), 64))
		return -ENOMEM;
	b->v[b->n++] = *ev;
	return 0;
}

/* ---- CSV (RFC 4180: fields separated by ',', CRLF or LF line ends, a
 * field in double quotes may hold ',', quotes doubled and line breaks) ---- */

struct csv {
	const char *s, *end;
	int line, col;
};

/* The next record's fields into f (malloc'd copies, *n of them, at most
 * max), with each field's line and column. 0, 1 at the end of the file,
 * -EINVAL for a quote in the wrong place. */
static int csv_record(struct csv *c, char **f, int *fl, int *fc, int max, int *n, const char *path, struct tally_err *e)
{
	*n = 0;
	if (c->s >= c->end)
		return 1;
	for (;;) {
		char buf[1024];
		size_t k = 0;
		if (*n == max)
			return err_set(e, -EINVAL, "%s:%d:%d: more than %d fields", path, c->line, c->col, max);
		fl[*n] = c->line;
		fc[*n] = c->col;
		if (c->s < c->end && *c->s == '"') {
			c->s++, c->col++;
			for (;;) {
				if (c->s >= c->end)
					return err_set(e, -EINVAL, "%s:%d:%d: a quoted field is not closed", path, fl[*n],
						       fc[*n]);
				if (*c->s == '"' && c->s + 1 < c->end && c->s[1] == '"') {
					if (k + 1 < sizeof(buf))
						buf[k++] = '"';
					c->s += 2, c->col += 2;
					continue;
				}
				if (*c->s == '"') {
					c->s++, c->col++;
					break;
				}
				if (*c->s == '\n')
					c->line++, c->col = 0;
				if (k + 1 < sizeof(buf))
					buf[k++] = *c->s;
				c->s++, c->col++;
			}
			if (c->s < c->end && *c->s != ',' && *c->s != '\r' && *c->s != '\n')
				return err_set(e, -EINVAL, "%s:%d:%d: text after a quoted field", path, c->line, c->col);
		} else {
			while (c->s < c->end && *c->s != ',' && *c->s != '\r' && *c->s != '\n') {
				if (*c->s == '"')
					return err_set(e, -EINVAL, "%s:%d:%d: a quote inside an unquoted field", path,
						       c->line, c->col);
				if (k + 1 < sizeof(buf))
					buf[k++] = *c->s;
				c->s++, c->col++;
			}
		}
		buf[k] = '\0';
		if (!(f[(*n)++] = strdup(buf)))
			return -ENOMEM;
		if (c->s < c->end && *c->s == ',') {
			c->s++, c->col++;
			continue;
		}
		if (c->s < c->end && *c->s == '\r')
			c->s++;
		if (c->s < c->end && *c->s == '\n')
			c->s++;
		c->line++;
		c->col = 1;
		return 0;
	}
}

static void free_fields(char **f, int n)
{
	for (int i = 0; i < n; i++)
		free(f[i]);
}

static int parse_csv(const char *path, const char *text, size_t len, struct import_batch *b, struct tally_err *e)
{
	struct csv c = { .s = text, .end = text + len, .line = 1, .col = 1 };
	char *head[C_COUNT + 1], *f[C_COUNT + 1];
	int hl[C_COUNT + 1], hc[C_COUNT + 1], fl[C_COUNT + 1], fc[C_COUNT + 1], nh = 0, nf = 0;
	int pos[C_COUNT];   /* column index of each field, -1 */
	int rc;

	if ((rc = csv_record(&c, head, hl, hc, C_COUNT, &nh, path, e))) {
		free_fields(head, nh);
		return rc == 1 ? err_set(e, -EINVAL, "%s: empty: a header row naming the columns is needed (id,"
					 " tenant, resource, meter, time, quantity; end, device, name)", path) : rc;
	}
	for (int k = 0; k < C_COUNT; k++)
		pos[k] = -1;
	for (int i = 0; i < nh; i++) {
		int k = 0;
		while (col_names[k] && strcmp(col_names[k], head[i]))
			k++;
		if (!col_names[k] || pos[k] >= 0) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: %s column '%s' (known: id, tenant, resource, meter, time, end,"
				     " quantity, device, name)", path, hl[i], hc[i], col_names[k] ? "a second" : "unknown",
				     head[i]);
			goto out;
		}
		pos[k] = i;
	}
	for (int k = 0; k < C_COUNT; k++)
		if (col_required[k] && pos[k] < 0) {
			rc = err_set(e, -EINVAL, "%s:1:1: no column '%s' (an event needs id, tenant, resource, meter, time"
				     " and quantity)", path, col_names[k]);
			goto out;
		}
	for (;;) {
		int line = c.line;
		rc = csv_record(&c, f, fl, fc, C_COUNT + 1, &nf, path, e);
		if (rc == 1) {
			rc = 0;
			break;
		}
		if (rc)
			goto out;
		if (nf == 1 && !f[0][0]) {   /* an empty line */
			free_fields(f, nf);
			continue;
		}
		if (nf != nh) {
			rc = err_set(e, -EINVAL, "%s:%d:1: %d fields, the header has %d", path, line, nf, nh);
			free_fields(f, nf);
			goto out;
		}
		const char *vals[C_COUNT] = { NULL };
		char place[C_COUNT][300], where[300];
		snprintf(where, sizeof(where), "%s:%d:1", path, line);
		for (int k = 0; k < C_COUNT; k++) {
			vals[k] = pos[k] >= 0 ? f[pos[k]] : NULL;
			snprintf(place[k], sizeof(place[k]), "%s:%d:%d", path, pos[k] >= 0 ? fl[pos[k]] : line,
				 pos[k] >= 0 ? fc[pos[k]] : 1);
		}
		struct import_event ev;
		rc = event_of(vals, place, where, &ev, e);
		free_fields(f, nf);
		if (rc)
			goto out;
		if ((rc = push(b, &ev)))
			goto out;
	}
out:
	free_fields(head, nh);
	return rc;
}

/* ---- JSON: a list of events or {"events": [...]}, read by the config
 * reader (JSON is YAML's flow style), so every key keeps its place ---- */

static int parse_json(const char *path, const char *text, size_t len, struct import_batch *b, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	const struct cfg_node *list;
	int rc;

	if ((rc = cfg_load_string(path, text, len, &root, e)))
		return rc;
	static const char *const top[] = { "events", NULL };
	if (!root) {
		rc = err_set(e, -EINVAL, "%s: empty: expected a list of events, or {\"events\": [...]}", path);
		goto out;
	}
	if (root->type == CFG_MAP) {
		if ((rc = cfg_check_keys(root, "events file", top, e)) || (rc = cfg_get_seq(root, "events", 0, SIZE_MAX,
											 &list, e)))
			goto out;
	} else {
		list = root;
	}
	if (!list || list->type != CFG_SEQ) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: expected a list of events", path, root->line, root->col);
		goto out;
	}
	for (size_t i = 0; i < list->n_kids; i++) {
		const struct cfg_node *n = list->kids[i];
		const char *vals[C_COUNT] = { NULL };
		char place[C_COUNT][300], where[300];
		snprintf(where, sizeof(where), "%s:%d:%d", path, n->line, n->col);
		if ((rc = cfg_check_keys(n, "event", col_names, e)))
			goto out;
		for (int k = 0; k < C_COUNT; k++) {
			const struct cfg_node *v = cfg_get(n, col_names[k]);
			snprintf(place[k], sizeof(place[k]), "%s:%d:%d", path, v ? v->line : n->line, v ? v->col : n->col);
			if (v && v->type != CFG_SCALAR) {
				rc = err_set(e, -EINVAL, "%s: '%s': expected a string or a number, not %s", place[k],
					     col_names[k], v->type == CFG_MAP ? "an object" : "a list");
				goto out;
			}
			vals[k] = v ? v->value : NULL;
		}
		struct import_event ev;
		if ((rc = event_of(vals, place, where, &ev, e)) || (rc = push(b, &ev)))
			goto out;
	}
out:
	cfg_free(root);
	return rc;
}

int import_parse_file(const char *path, const char *format, struct import_batch *b, struct tally_err *e)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t len = 0;
	int rc;
	if (!f)
		return err_set(e, -errno, "%s: cannot open: %s", path, strerror(errno));
	FILE *m = open_memstream(&text, &len);
	char buf[65536];
	size_t got;
	while (m && (got = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, got, m);
	bool bad = ferror(f) || !m;
	fclose(f);
	if (m)
		fclose(m);
	if (bad) {
		free(text);
		return err_set(e, -EIO, "%s: cannot read", path);
	}
	const char *dot = strrchr(path, '.');
	if (!format)
		format = dot && !strcmp(dot, ".csv") ? "csv" : dot && !strcmp(dot, ".json") ? "json" : NULL;
	if (!format)
		rc = err_set(e, -EINVAL, "%s: name a .csv or .json file, or give --format csv|json", path);
	else if (memchr(text, '\0', len))
		rc = err_set(e, -EINVAL, "%s: holds a NUL byte: not a text file", path);
	else
		rc = !strcmp(format, "csv") ? parse_csv(path, text, len, b, e) : parse_json(path, text, len, b, e);
	free(text);
	return rc;
}

void import_batch_release(struct import_batch *b)
{
	free(b->v);
	memset(b, 0, sizeof(*b));
}

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
		if ((rc = ledger_put_attrs(l, res->id, &res->meta, e)))
			return rc;
		r->resources_new++;
	} else if (ev->time_ns >= res->first_seen_ns && ev->end_ns <= res->last_seen_ns) {
		*id = res->id;
		return 0;
	}
	if (ev->time_ns < res->first_seen_ns)
		res->first_seen_ns = ev->time_ns;
	if (ev->end_ns > res->last_seen_ns)
		res->last_seen_ns = ev->end_ns;
	*id = res->id;
	return ledger_put_resource(l, res, e);
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
