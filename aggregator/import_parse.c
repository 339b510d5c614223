/*
 * import_parse.c: usage events from CSV (RFC 4180, read here) or JSON
 * (read by the config reader, which keeps every value's line and column)
 * into struct import_event (import.h): every check that needs no ledger.
 * The body of POST /api/v1/events (schemas/events-api.md) is read here too,
 * by jansson (strict JSON), and each of its events goes through the same
 * check (event_of) as a file's. Pure: no I/O but reading the file, so a
 * fuzz target feeds it bytes.
 */
#include "import.h"
#include "cfg.h"
#include "err.h"
#include "meter.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The columns (CSV) and keys (JSON) of an event. */
enum col { C_ID, C_TENANT, C_RESOURCE, C_METER, C_TIME, C_END, C_QUANTITY, C_DEVICE, C_NAME, C_COUNT };
static const char *const col_names[] = { "id", "tenant", "resource", "meter", "time", "end", "quantity", "device",
					 "name", NULL };
_Static_assert(C_COUNT == IMPORT_FIELDS, "import.h's IMPORT_FIELDS counts the columns");
static const bool col_required[C_COUNT] = { true, true, true, true, true, false, true, false, false };

/* Earliest and latest instants an event may name: 2000 to 2100. */
#define T_MIN (946684800LL * NS_PER_SEC)
#define T_MAX (4102444800LL * NS_PER_SEC)

/* One event from its fields (vals[c], NULL when absent; place[c] the
 * "file:line:col" of each) into ev: every check but the ledger's. On a
 * refusal *bad is the column at fault (C_COUNT: the event as a whole). */
static int event_of(const char *const *vals, char (*place)[300], const char *where, struct import_event *ev,
		    int *bad, struct tally_err *e)
{
	static const size_t lens[C_COUNT] = { IMPORT_ID_MAX + 1, 64, TALLY_ID_MAX, 64, 64, 64, 64, 64, 128 };
	memset(ev, 0, sizeof(*ev));
	str_copy(ev->where, where, sizeof(ev->where));
	for (int c = 0; c < C_COUNT; c++) {
		*bad = c;
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
	*bad = C_METER;
	str_copy(ev->id, vals[C_ID], sizeof(ev->id));
	str_copy(ev->tenant, vals[C_TENANT], sizeof(ev->tenant));
	str_copy(ev->resource, vals[C_RESOURCE], sizeof(ev->resource));
	if (vals[C_DEVICE])
		str_copy(ev->device, vals[C_DEVICE], sizeof(ev->device));
	if (vals[C_NAME])
		str_copy(ev->name, vals[C_NAME], sizeof(ev->name));
	if ((ev->meter = meter_find(vals[C_METER])) < 0)
		return err_set(e, -EINVAL, "%s: 'meter': unknown meter '%s' (a built-in meter of docs/meters.md, or a"
			       " custom meter declared in the config's meters: section)",
			       place[C_METER], vals[C_METER]);
	const struct meter_def *md = meter_get(ev->meter);
	if (ev->meter < METER_COUNT)
		return err_set(e, -EINVAL, "%s: 'meter': '%s' is a built-in meter, measured by the collectors: events"
			       " go to a custom meter (declared in the config's meters: section)", place[C_METER],
			       vals[C_METER]);
	struct tally_err te = { 0 };
	int64_t x;
	*bad = C_TIME;
	/* an instant, or a date (its midnight); a month or a year is refused:
	 * is 'end: 2026-10' the start of October or its end? */
	if (time_parse_range(vals[C_TIME], &ev->time_ns, &x, &te) || x - ev->time_ns > 24 * NS_PER_HOUR ||
	    ev->time_ns < T_MIN || ev->time_ns >= T_MAX)
		return err_set(e, -EINVAL, "%s: 'time': expected an instant like 2026-10-05T13:00:00Z, or a date, between"
			       " 2000 and 2100 (got '%s')", place[C_TIME], vals[C_TIME]);
	ev->end_ns = ev->time_ns;
	*bad = C_END;
	if (vals[C_END] && vals[C_END][0] &&
	    (time_parse_range(vals[C_END], &ev->end_ns, &x, &te) || x - ev->end_ns > 24 * NS_PER_HOUR ||
	     ev->end_ns <= ev->time_ns || ev->end_ns >= T_MAX))
		return err_set(e, -EINVAL, "%s: 'end': expected an instant or a date after 'time' (got '%s')",
			       place[C_END], vals[C_END]);
	/* a quantity is a whole number of the meter's base unit */
	const char *q = vals[C_QUANTITY];
	*bad = C_QUANTITY;
	char *endp;
	bool neg = q[0] == '-';
	errno = 0;
	long long v = strtoll(q, &endp, 10);
	if (*endp || q[neg] < '0' || q[neg] > '9')
		return err_set(e, -EINVAL, "%s: 'quantity': expected a whole number of %s (the meter's base unit), got"
			       " '%s'", place[C_QUANTITY], md->unit, q);
	if (errno == ERANGE)
		return err_set(e, -ERANGE, "%s: 'quantity': %s is beyond what a ledger row holds exactly (a 64-bit"
			       " integer, at most %" PRId64 " %s)", place[C_QUANTITY], q, INT64_MAX, md->unit);
	ev->quantity = v;
	if (v < 0 && md->kind != SAMPLE_DELTA)
		return err_set(e, -EINVAL, "%s: 'quantity': %s is negative: a %s's quantity never is (a correction is"
			       " an event of a delta meter, or a credit note)", place[C_QUANTITY], q,
			       md->kind == SAMPLE_GAUGE ? "gauge" : "counter");
	if (md->kind == SAMPLE_GAUGE) {
		*bad = C_END;
		if (ev->end_ns == ev->time_ns)
			return err_set(e, -EINVAL, "%s: meter '%s' is a gauge: an event needs 'end', the level holds over"
				       " [time, end)", where, md->name);
		if (ev->time_ns % NS_PER_SEC || ev->end_ns % NS_PER_SEC)
			return err_set(e, -EINVAL, "%s: a gauge's 'time' and 'end' are whole seconds (its integral is"
				       " exact in unit-seconds)", where);
	}
	*bad = C_COUNT;
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
		int bad;
		rc = event_of(vals, place, where, &ev, &bad, e);
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

/* Whether t is an integer as JSON writes one: -?(0|[1-9][0-9]*). */
static bool json_integer_text(const char *t)
{
	if (*t == '-')
		t++;
	if (*t == '0')
		return !t[1];
	if (*t < '1' || *t > '9')
		return false;
	while (*t >= '0' && *t <= '9')
		t++;
	return !*t;
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
			/* read as YAML, a value without quotes is JSON's number,
			 * true, false or null (or YAML that is not JSON): only an
			 * integer is taken, as POST /api/v1/events takes it */
			if (v && v->plain && !json_integer_text(v->value)) {
				const char *t = v->value;
				bool null = !t[0] || !strcmp(t, "null") || !strcmp(t, "~");
				bool tf = !strcmp(t, "true") || !strcmp(t, "false");
				rc = err_set(e, -EINVAL, "%s: '%s': expected a string%s, not %s%s%s", place[k], col_names[k],
					     k == C_QUANTITY ? " or an integer" : "", null ? "null" : tf ? "true or false" : "'",
					     null || tf ? "" : t, null || tf ? "" : "' (an integer has no leading zero, point"
					     " or exponent; text is quoted)");
				goto out;
			}
			vals[k] = v ? v->value : NULL;
		}
		struct import_event ev;
		int bad;
		if ((rc = event_of(vals, place, where, &ev, &bad, e)) || (rc = push(b, &ev)))
			goto out;
	}
out:
	cfg_free(root);
	return rc;
}

/* ---- POST /api/v1/events: {"events": [...], "source": S}, read by jansson
 * (schemas/events-api.md). Strict JSON: a key given twice, a value of
 * another type, a real number where a count is meant, are the body's
 * shape (HTTP 400); an event of the right shape goes through event_of,
 * the same check as a file's (HTTP 422). ---- */

static int shape(struct import_fault *f, long index, const char *key, struct tally_err *e, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int shape(struct import_fault *f, long index, const char *key, struct tally_err *e, const char *fmt, ...)
{
	va_list ap;
	char msg[400];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->index = index;
	f->key = key;
	f->shape = true;
	return err_set(e, -EBADMSG, "%s", msg);
}

/* A JSON value of an event's key as the text event_of reads: a string as
 * it is, an integer in decimal (exact: jansson keeps it in 64 bits);
 * anything else is the wrong shape. */
static int value_text(const json_t *v, long i, int c, char *buf, size_t len, const char **out,
		      struct import_fault *f, struct tally_err *e)
{
	const char *key = col_names[c];
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return shape(f, i, key, e, "events[%ld].%s: holds a NUL character", i, key);
		*out = json_string_value(v);
		return 0;
	}
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = buf;
		return 0;
	}
	if (json_is_real(v))
		return shape(f, i, key, e, "events[%ld].%s: a JSON real number (%.17g) is refused: %s", i, key,
			     json_real_value(v), c == C_QUANTITY ? "a quantity is exact, a whole number of the meter's"
			     " base unit as a JSON integer or a string of digits" : "expected a string");
	return shape(f, i, key, e, "events[%ld].%s: expected a string%s, not %s", i, key,
		     c == C_QUANTITY ? " or an integer" : "", json_is_object(v) ? "an object" : json_is_array(v)
		     ? "a list" : json_is_null(v) ? "null" : "true or false");
}

int import_parse_request(const char *text, size_t len, size_t max_events, char *source, size_t source_len,
			 struct import_batch *b, struct import_fault *f, struct tally_err *e)
{
	json_error_t je;
	json_t *root = NULL;
	int rc = 0;

	memset(f, 0, sizeof(*f));
	f->index = -1;
	source[0] = '\0';
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return shape(f, -1, NULL, e, "the body is not JSON: line %d, column %d: %s", je.line, je.column,
			     je.text);
	if (!json_is_object(root)) {
		rc = shape(f, -1, NULL, e, "expected an object {\"events\": [...]}");
		goto out;
	}
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "events") && strcmp(k, "source")) {
			rc = shape(f, -1, NULL, e, "unknown key '%.64s' (known: events, source)", k);
			goto out;
		}
	}
	json_t *src = json_object_get(root, "source");
	if (src) {
		const char *s = json_is_string(src) ? json_string_value(src) : NULL;
		if (!s || strlen(s) != json_string_length(src) || !import_source_ok(s)) {
			rc = shape(f, -1, "source", e, "'source': expected the source's name, 1 to 63 printable"
				   " characters without spaces");
			goto out;
		}
		str_copy(source, s, source_len);
	}
	json_t *list = json_object_get(root, "events");
	if (!json_is_array(list)) {
		rc = shape(f, -1, "events", e, "'events': expected a list of events");
		goto out;
	}
	if (!json_array_size(list) || json_array_size(list) > max_events) {
		rc = shape(f, -1, "events", e, "'events': %zu events; a request carries 1 to %zu",
			   json_array_size(list), max_events);
		goto out;
	}
	size_t i;
	json_t *n;
	json_array_foreach(list, i, n) {
		const long ix = (long)i;
		const char *vals[C_COUNT] = { NULL };
		char place[C_COUNT][300], where[300], num[C_COUNT][32];
		if (!json_is_object(n)) {
			rc = shape(f, ix, NULL, e, "events[%ld]: expected an object", ix);
			goto out;
		}
		json_object_foreach(n, k, v) {
			int c = 0;
			while (col_names[c] && strcmp(col_names[c], k))
				c++;
			if (!col_names[c]) {
				rc = shape(f, ix, NULL, e, "events[%ld]: unknown key '%.64s' (known: id, tenant, resource,"
					   " meter, time, end, quantity, device, name)", ix, k);
				goto out;
			}
			if ((rc = value_text(v, ix, c, num[c], sizeof(num[c]), &vals[c], f, e)))
				goto out;
		}
		snprintf(where, sizeof(where), "events[%ld]", ix);
		for (int c = 0; c < C_COUNT; c++)
			snprintf(place[c], sizeof(place[c]), "events[%ld]", ix);
		struct import_event ev;
		int bad;
		if ((rc = event_of(vals, place, where, &ev, &bad, e))) {
			f->index = ix;
			f->key = bad < C_COUNT ? col_names[bad] : NULL;
			goto out;
		}
		if ((rc = push(b, &ev))) {
			err_set(e, rc, "out of memory");
			goto out;
		}
	}
out:
	json_decref(root);
	return rc;
}

bool import_source_ok(const char *s)
{
	return strlen(s) <= 63 && str_is_word(s);
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

