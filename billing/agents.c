/*
 * agents.c: `tally agents` (agents.h): the agents table through the
 * ledger's reader, as a text table or JSON.
 */
#include "agents.h"
#include "err.h"
#include "reader.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int put_row(void *ctx, const struct ledger_agent_row *a)
{
	struct agents_result *r = ctx;
	if (vec_reserve((void **)&r->rows, &r->cap, r->n + 1, sizeof(*r->rows), 16))
		return -ENOMEM;
	struct agents_row *x = &r->rows[r->n++];
	memset(x, 0, sizeof(*x));
	str_copy(x->agent, a->agent, sizeof(x->agent));
	x->last_seq = a->last_seq;
	x->batches = a->batches;
	x->data_until_ns = a->last_time_ns;
	x->contact_ns = a->contact_ns;
	x->spool_batches = a->spool_batches;
	x->spool_bytes = a->spool_bytes;
	x->has_spool = a->spool_id != NULL;
	if (a->spool_id)
		memcpy(x->spool_id, a->spool_id, sizeof(x->spool_id));
	x->spool_first_seq = a->spool_first_seq;
	return 0;
}

int agents_query(const char *ledger, struct agents_result *out, struct tally_err *e)
{
	struct ledger_reader *r = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = ledger_reader_open(ledger, &r, e)))
		return rc;
	rc = ledger_read_agents(r, put_row, out, e);
	if (rc == -ENOMEM && e && !e->msg[0])
		err_set(e, rc, "%s: out of memory reading the agents", ledger);
	ledger_reader_close(r);
	if (rc)
		agents_result_release(out);
	return rc;
}

void agents_result_release(struct agents_result *r)
{
	free(r->rows);
	r->rows = NULL;
	r->n = r->cap = 0;
}

/* "45 s", "12 min", "3 h 05 min", "65 d 04 h" */
static void span(int64_t ns, char *buf, size_t len)
{
	int64_t s = ns / NS_PER_SEC;
	if (s < 0)
		snprintf(buf, len, "ahead %" PRId64 " s", -s);
	else if (s < 120)
		snprintf(buf, len, "%" PRId64 " s", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRId64 " min", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, len, "%" PRId64 " h %02" PRId64 " min", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%" PRId64 " d %02" PRId64 " h", s / 86400, s / 3600 % 24);
}

/* "12 batches, 1.5 MiB", "not reported" */
static void depth(const struct agents_row *a, char *buf, size_t len)
{
	if (a->spool_batches < 0) {
		snprintf(buf, len, "not reported");
		return;
	}
	double b = (double)a->spool_bytes;
	const char *u = "B";
	if (b >= 1024 * 1024 * 1024.0)
		b /= 1024 * 1024 * 1024.0, u = "GiB";
	else if (b >= 1024 * 1024.0)
		b /= 1024 * 1024.0, u = "MiB";
	else if (b >= 1024)
		b /= 1024, u = "KiB";
	snprintf(buf, len, "%" PRId64 " batch%s, %.*f %s", a->spool_batches, a->spool_batches == 1 ? "" : "es",
		 *u == 'B' ? 0 : 1, b, u);
}

static json_t *iso(int64_t t_ns)
{
	char b[48];
	return t_ns ? json_string(time_format_iso(t_ns - t_ns % NS_PER_SEC, b, sizeof(b))) : json_null();
}

int agents_render(FILE *f, const struct agents_result *r, int64_t now_ns, enum agents_format fmt)
{
	char t1[48], t2[48], lag[48], dep[64];
	if (fmt == AGENTS_JSON) {
		json_t *root = json_object(), *arr = json_array();
		if (!root || !arr) {
			json_decref(root);
			json_decref(arr);
			return -ENOMEM;
		}
		json_object_set_new(root, "now", iso(now_ns));
		for (size_t i = 0; i < r->n; i++) {
			const struct agents_row *a = &r->rows[i];
			json_t *o = json_object();
			char hex[33] = "";
			for (int k = 0; a->has_spool && k < 16; k++)
				snprintf(hex + 2 * k, 3, "%02x", a->spool_id[k]);
			json_object_set_new(o, "agent", json_string(a->agent));
			json_object_set_new(o, "last_contact", iso(a->contact_ns));
			json_object_set_new(o, "last_seq", json_integer((json_int_t)a->last_seq));
			json_object_set_new(o, "batches", json_integer(a->batches));
			json_object_set_new(o, "data_until", iso(a->data_until_ns));
			json_object_set_new(o, "lag_seconds", a->data_until_ns ?
					    json_integer((now_ns - a->data_until_ns) / NS_PER_SEC) : json_null());
			json_object_set_new(o, "spool_batches", a->spool_batches >= 0 ?
					    json_integer(a->spool_batches) : json_null());
			json_object_set_new(o, "spool_bytes", a->spool_bytes >= 0 ? json_integer(a->spool_bytes)
					    : json_null());
			json_object_set_new(o, "spool_id", a->has_spool ? json_string(hex) : json_null());
			json_object_set_new(o, "spool_first_seq", json_integer((json_int_t)a->spool_first_seq));
			json_array_append_new(arr, o);
		}
		json_object_set_new(root, "agents", arr);
		int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(root);
		if (rc)
			return -EIO;
		fputc('\n', f);
		return ferror(f) ? -EIO : 0;
	}
	if (!r->n) {
		fprintf(f, "no agents in this ledger\n");
		return ferror(f) ? -EIO : 0;
	}
	fprintf(f, "%-24s %-20s %10s %10s  %-20s %-14s %s\n", "AGENT", "LAST CONTACT", "LAST SEQ", "BATCHES",
		"DATA UNTIL", "LAG", "SPOOL (AS REPORTED)");
	for (size_t i = 0; i < r->n; i++) {
		const struct agents_row *a = &r->rows[i];
		if (a->contact_ns)
			time_format_iso(a->contact_ns - a->contact_ns % NS_PER_SEC, t1, sizeof(t1));
		else
			str_copy(t1, "-", sizeof(t1));
		if (a->data_until_ns) {
			time_format_iso(a->data_until_ns - a->data_until_ns % NS_PER_SEC, t2, sizeof(t2));
			span(now_ns - a->data_until_ns, lag, sizeof(lag));
		} else {
			str_copy(t2, "-", sizeof(t2));
			str_copy(lag, "-", sizeof(lag));
		}
		depth(a, dep, sizeof(dep));
		fprintf(f, "%-24s %-20s %10" PRIu64 " %10" PRId64 "  %-20s %-14s %s\n", a->agent, t1, a->last_seq,
			a->batches, t2, lag, dep);
	}
	return ferror(f) ? -EIO : 0;
}
