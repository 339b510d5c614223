/*
 * import_parse.c: usage events from CSV (RFC 4180, read here) or JSON
 * (read by the config reader, which keeps every value's line and column)
 * into struct import_event (import.h): every check that needs no ledger.
 * Pure: no I/O but reading the file, so a fuzz target feeds it bytes.
 */
#include "import.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
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
		if (rc) {
			free_fields(f, nf);   /* the fields read before the mistake */
			goto out;
		}
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
	const struct cfg_node *list = NULL;
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

int import_parse_text(const char *path, const char *text, size_t len, const char *format, struct import_batch *b,
		      struct tally_err *e)
{
	const char *dot = strrchr(path, '.');
	if (!format)
		format = dot && !strcmp(dot, ".csv") ? "csv" : dot && !strcmp(dot, ".json") ? "json" : NULL;
	if (!format)
		return err_set(e, -EINVAL, "%s: name a .csv or .json file, or give --format csv|json", path);
	if (memchr(text, '\0', len))
		return err_set(e, -EINVAL, "%s: holds a NUL byte: not a text file", path);
	return !strcmp(format, "csv") ? parse_csv(path, text, len, b, e) : parse_json(path, text, len, b, e);
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
	rc = import_parse_text(path, text ? text : "", len, format, b, e);
	free(text);
	return rc;
}

void import_batch_release(struct import_batch *b)
{
	free(b->v);
	memset(b, 0, sizeof(*b));
}

