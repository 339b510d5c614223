/*
 * pg_conn.c: the PostgreSQL backend's connection: connecting (the
 * location, the PG* environment, a password kept out of every message),
 * errors as errnos, streaming a result through a cursor, reading binary
 * columns, and what a ledger in a schema is (pg_conn.h).
 */
#include "pg_conn.h"
#include "err.h"
#include "fault.h"
#include "ledger_id.h"
#include "str.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pg_statement_timeout_ms;

/* ---- the location and its password ---- */

/* Passwords taken out of locations by pg_location_normalize, by the
 * location that remains. */
static struct stash {
	char *location, *password;
	struct stash *next;
} *stash;
static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_uri(const char *s)
{
	return !strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11);
}

/* location with its password (the URI's user:password@ and a password=
 * parameter) replaced by mask, or removed when mask is NULL, into out. */
static void strip_password(const char *location, const char *mask, char *out, size_t len)
{
	char buf[4096];
	size_t o = 0;
	const char *p = location, *auth = strstr(location, "://");
#define PUT(s, n) do { size_t n_ = (n); if (o + n_ < sizeof(buf)) { memcpy(buf + o, (s), n_); o += n_; } } while (0)
	if (!auth) {
		str_copy(out, location, len);
		return;
	}
	auth += 3;
	PUT(p, (size_t)(auth - p));
	size_t alen = strcspn(auth, "/?");
	const char *at = memchr(auth, '@', alen);
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		PUT(auth, (size_t)((colon ? colon : at) - auth));
		if (colon && mask) {
			PUT(":", 1);
			PUT(mask, strlen(mask));
		}
		PUT(at, alen - (size_t)(at - auth));
	} else {
		PUT(auth, alen);
	}
	p = auth + alen;
	const char *q = strchr(p, '?');
	if (!q) {
		PUT(p, strlen(p));
	} else {
		PUT(p, (size_t)(q - p));
		bool first = true;
		for (const char *s = q + 1; *s;) {
			size_t n = strcspn(s, "&");
			bool pw = n >= 9 && !strncmp(s, "password=", 9);
			if (!pw || mask) {
				PUT(first ? "?" : "&", 1);
				if (pw) {
					PUT("password=", 9);
					PUT(mask, strlen(mask));
				} else {
					PUT(s, n);
				}
				first = false;
			}
			s += n;
			if (*s == '&')
				s++;
		}
	}
#undef PUT
	buf[o] = '\0';
	str_copy(out, buf, len);
}

int pg_location_normalize(const char *location, char *out, size_t len, struct tally_err *e)
{
	char *msg = NULL, *password = NULL, name[512];
	PQconninfoOption *opts = PQconninfoParse(location, &msg);
	int rc = 0;

	strip_password(location, "***", name, sizeof(name));
	if (!is_uri(location) || !opts) {
		rc = err_set(e, -EINVAL, "%s: not a PostgreSQL connection URI%s%s (postgresql://[user@][host][:port]"
			     "[/database][?param=value...], libpq's syntax)", name, msg ? ": " : "",
			     msg ? strtok(msg, "\n") : "");
		goto out;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		/* what libpq parses but checks only when it connects */
		bool numeric = !strcmp(o->keyword, "port") || !strcmp(o->keyword, "connect_timeout");
		if ((numeric && o->val[strspn(o->val, "0123456789,")]) ||
		    (!strcmp(o->keyword, "sslmode") && !strstr(",disable,allow,prefer,require,verify-ca,verify-full,",
							       o->val)) ||
		    (!strcmp(o->keyword, "sslmode") && (strchr(o->val, ',') || strlen(o->val) < 4))) {
			rc = err_set(e, -EINVAL, "%s: not a PostgreSQL connection URI: %s '%s' is not %s", name, o->keyword,
				     o->val, numeric ? "a number" : "one of disable, allow, prefer, require, verify-ca,"
				     " verify-full");
			goto out;
		}
		if (!strcmp(o->keyword, "password") && !(password = strdup(o->val))) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
	}
	strip_password(location, NULL, out, len);
	if (strlen(out) + 1 >= len) {
		rc = err_set(e, -ENAMETOOLONG, "%s: too long", name);
		goto out;
	}
	if (password) {
		struct stash *s = calloc(1, sizeof(*s));
		if (!s || !(s->location = strdup(out))) {
			free(s);
			rc = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		s->password = password;
		password = NULL;
		pthread_mutex_lock(&stash_lock);
		s->next = stash;
		stash = s;
		pthread_mutex_unlock(&stash_lock);
	}
out:
	if (password) {
		memset(password, 0, strlen(password));
		free(password);
	}
	PQconninfoFree(opts);
	PQfreemem(msg);
	return rc;
}

/* The password pg_location_normalize took out of location, or NULL. */
static const char *stashed_password(const char *location)
{
	const char *pw = NULL;
	pthread_mutex_lock(&stash_lock);
	for (struct stash *s = stash; s && !pw; s = s->next)
		if (!strcmp(s->location, location))
			pw = s->password;
	pthread_mutex_unlock(&stash_lock);
	return pw;
}

/* ---- connecting ---- */

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;   /* NOTICEs ("already exists, skipping") are not for the operator */
}

/* libpq's message on one line, without its trailing newline. */
static void one_line(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (const char *s = in ? in : ""; *s && o + 1 < len; s++) {
		if (*s == '\n' || *s == '\t') {
			if (s[1] && o && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		if (*s == ' ' && o && out[o - 1] == ' ')
			continue;
		out[o++] = *s;
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static int set_session(struct pgc *p, struct tally_err *e)
{
	char sql[96];
	PQsetNoticeProcessor(p->c, quiet, NULL);
	if (PQsetClientEncoding(p->c, "UTF8"))
		return pgc_fail(p, NULL, "cannot set the client encoding", e);
	snprintf(sql, sizeof(sql), "SET statement_timeout = %d", pg_statement_timeout_ms);
	return pgc_exec(p, sql, "cannot set the statement timeout", e);
}

int pgc_connect(struct pgc *p, const char *location, const char *app, struct tally_err *e)
{
	const char *kw[6], *val[6];
	int n = 0;
	char msg[400];

	memset(p, 0, sizeof(*p));
	strip_password(location, "***", p->name, sizeof(p->name));
	if (!(p->location = fault_strdup(location)))
		return err_set(e, -ENOMEM, "out of memory");
	/* array entries before dbname: the URI may override them; after it:
	 * they override the URI (libpq's PQconnectdbParams) */
	if (!getenv("PGCONNECT_TIMEOUT")) {
		kw[n] = "connect_timeout";
		val[n++] = "10";
	}
	kw[n] = "fallback_application_name";
	val[n++] = app;
	kw[n] = "dbname";
	val[n++] = location;
	const char *pw = stashed_password(location);
	if (pw) {
		kw[n] = "password";
		val[n++] = pw;
	}
	kw[n] = NULL;
	val[n] = NULL;
	p->c = PQconnectdbParams(kw, val, 1);
	if (!p->c)
		return err_set(e, -ENOMEM, "%s: out of memory connecting", p->name);
	if (PQstatus(p->c) != CONNECTION_OK) {
		const char *m = PQerrorMessage(p->c);
		int code = -ECONNREFUSED;
		const char *hint = "is the server running, and are host and port right?";
		one_line(m, msg, sizeof(msg));
		if (strstr(m, "database \"") && strstr(m, "does not exist")) {
			code = -ENOENT;
			hint = "create it (createdb), or name another database in the URI";
		} else if (strstr(m, "role \"") && strstr(m, "does not exist")) {
			code = -EACCES;
			hint = "create the role, or name another user in the URI";
		} else if (strstr(m, "password authentication failed") || strstr(m, "no password supplied") ||
			   strstr(m, "not permitted to log in") || strstr(m, "permission denied") ||
			   strstr(m, "no pg_hba.conf entry")) {
			code = -EACCES;
			hint = "check the user, its password (~/.pgpass or PGPASSWORD) and pg_hba.conf";
		} else if (strstr(m, "invalid") || strstr(m, "missing \"=\"")) {
			code = -EINVAL;
			hint = "check the URI (libpq's syntax)";
		}
		int rc = err_set(e, code, "%s: cannot connect to the ledger: %s (%s)", p->name, msg, hint);
		pgc_close(p);
		return rc;
	}
	int rc = set_session(p, e);
	if (rc)
		pgc_close(p);
	return rc;
}

int pgc_send(struct pgc *p, const char *sql, int n, const char *const *params, pgc_done_fn done, void *ctx)
{
	pgc_settle(p);
	if (!p->c || !PQsendQueryParams(p->c, sql, n, NULL, params, NULL, NULL, 1))
		return -ENOTCONN;
	p->done = done;
	p->done_ctx = ctx;
	return 0;
}

void pgc_settle(struct pgc *p)
{
	pgc_done_fn done = p->done;
	PGresult *r, *first = NULL;
	if (!done)
		return;
	p->done = NULL;
	while ((r = PQgetResult(p->c))) {
		if (!first && PQresultStatus(r) == PGRES_TUPLES_OK)
			first = r;
		else
			PQclear(r);
	}
	done(p->done_ctx, first);
}

void pgc_close(struct pgc *p)
{
	pgc_settle(p);
	if (p->c)
		PQfinish(p->c);
	p->c = NULL;
	free(p->location);
	p->location = NULL;
}

int pgc_ensure(struct pgc *p, struct tally_err *e)
{
	char msg[400];
	pgc_settle(p);
	if (PQstatus(p->c) == CONNECTION_OK)
		return 0;
	PQreset(p->c);
	if (PQstatus(p->c) != CONNECTION_OK) {
		one_line(PQerrorMessage(p->c), msg, sizeof(msg));
		return err_set(e, -ENOTCONN, "%s: the connection to the ledger is lost and cannot be made again:"
			       " %s", p->name, msg);
	}
	p->cursors = 0;
	return set_session(p, e);
}

int pgc_fail(struct pgc *p, const PGresult *r, const char *what, struct tally_err *e)
{
	char msg[400];
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	int code = -EIO;
	one_line(r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(p->c), msg, sizeof(msg));
	if (PQstatus(p->c) != CONNECTION_OK || (state && !strncmp(state, "08", 2)))
		code = -ENOTCONN;
	else if (state && (!strcmp(state, "42501") || !strncmp(state, "28", 2)))
		code = -EACCES;
	else if (state && !strcmp(state, "57014"))
		code = -ETIMEDOUT;
	else if (state && (!strcmp(state, "53100") || !strcmp(state, "53200")))
		code = !strcmp(state, "53100") ? -ENOSPC : -ENOMEM;
	else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03")))
		code = -EAGAIN;
	else if (state && (!strcmp(state, "57P01") || !strcmp(state, "57P02") || !strcmp(state, "57P03")))
		code = -ENOTCONN;            /* the server shuts down or is starting */
	else if (state && !strcmp(state, "23505"))
		code = -EEXIST;
	else if (state && !strcmp(state, "22003"))
		code = -ERANGE;              /* numeric value out of range */
	return err_set(e, code, "%s: %s: %s", p->name, what, msg);
}

void pgc_wait(struct pgc *p)
{
	struct pgc *bg = p->bg;
	while (bg && bg->done && bg->c && p->c && PQisBusy(p->c)) {
		struct pollfd f[2] = { { .fd = PQsocket(p->c), .events = POLLIN },
				       { .fd = PQsocket(bg->c), .events = POLLIN } };
		if (poll(f, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		/* a connection that failed is left to PQgetResult to say */
		if (f[1].revents && !PQconsumeInput(bg->c))
			return;
		if (!PQisBusy(bg->c))
			pgc_settle(bg);
		if (f[0].revents && !PQconsumeInput(p->c))
			return;
	}
	if (p->idle && !(bg && bg->done) && p->c && PQisBusy(p->c)) {
		void (*idle)(void *) = p->idle;
		p->idle = NULL;
		idle(p->idle_ctx);
	}
}

/* What was sent on p, as PQexec answers it: the last result, or the
 * first error, or the COPY that started. NULL when none came. */
static PGresult *answer(struct pgc *p)
{
	PGresult *r, *last = NULL;
	for (;;) {
		pgc_wait(p);
		if (!(r = PQgetResult(p->c)))
			break;
		ExecStatusType st = PQresultStatus(r);
		if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(last);
			last = r;
		}
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
			break;
	}
	return last;
}

int pgc_exec(struct pgc *p, const char *sql, const char *what, struct tally_err *e)
{
	pgc_settle(p);
	PGresult *r = PQsendQuery(p->c, sql) ? answer(p) : NULL;
	int rc = 0;
	if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK))
		rc = pgc_fail(p, r, what, e);
	PQclear(r);
	return rc;
}

PGresult *pgc_query(struct pgc *p, const char *sql, int n, const char *const *params, const char *what,
		    struct tally_err *e)
{
	pgc_settle(p);
	PGresult *r = PQsendQueryParams(p->c, sql, n, NULL, params, NULL, NULL, 1) ? answer(p) : NULL;
	if (!r || (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)) {
		pgc_fail(p, r, what, e);
		PQclear(r);
		return NULL;
	}
	return r;
}

#define FETCH_ROWS 50000

int pgc_each(struct pgc *p, const char *sql, int n, const char *const *params, pgc_row_fn fn, void *ctx,
	     const char *what, struct tally_err *e)
{
	char name[32], cmd[96];
	size_t len = strlen(sql) + 64;
	char *decl = fault_malloc(len);
	PGresult *r = NULL;
	int rc = 0;

	if (!decl)
		return err_set(e, -ENOMEM, "out of memory");
	pgc_settle(p);
	snprintf(name, sizeof(name), "tally_c%d", p->cursors++);
	snprintf(decl, len, "DECLARE %s NO SCROLL CURSOR FOR %s", name, sql);
	r = PQexecParams(p->c, decl, n, NULL, params, NULL, NULL, 1);
	free(decl);
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = pgc_fail(p, r, what, e);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	snprintf(cmd, sizeof(cmd), "FETCH %d FROM %s", FETCH_ROWS, name);
	for (;;) {
		r = PQexecParams(p->c, cmd, 0, NULL, NULL, NULL, NULL, 1);
		if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
			rc = pgc_fail(p, r, what, e);
			break;
		}
		int rows = PQntuples(r);
		for (int i = 0; i < rows && !rc; i++)
			rc = fn(ctx, r, i);
		PQclear(r);
		r = NULL;
		if (rc || rows < FETCH_ROWS)
			break;
	}
	PQclear(r);
	snprintf(cmd, sizeof(cmd), "CLOSE %s", name);
	r = PQexec(p->c, cmd);   /* fails in an aborted transaction: nothing to do then */
	PQclear(r);
	return rc;
}

/* ---- binary values ---- */

static uint64_t be64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

int64_t pgv_i64(const PGresult *r, int row, int col)
{
	const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);
	switch (PQgetlength(r, row, col)) {
	case 8:
		return (int64_t)be64(b);
	case 4:
		return (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
	case 2:
		return (int16_t)((uint16_t)b[0] << 8 | b[1]);
	default:
		return 0;            /* NULL */
	}
}

double pgv_f64(const PGresult *r, int row, int col)
{
	double d = 0;
	if (PQgetlength(r, row, col) == 8) {
		uint64_t u = be64((const unsigned char *)PQgetvalue(r, row, col));
		memcpy(&d, &u, sizeof(d));
	}
	return d;
}

const char *pgv_text(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col);   /* NUL-terminated in binary format too; "" for NULL */
}

bool pgv_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col);
}

bool pgv_bool(const PGresult *r, int row, int col)
{
	return PQgetlength(r, row, col) == 1 && PQgetvalue(r, row, col)[0];
}

const char *pgn_i64(struct pgnum *b, int64_t v)
{
	snprintf(b->s, sizeof(b->s), "%lld", (long long)v);
	return b->s;
}

const char *pgn_f64(struct pgnum *b, double v)
{
	snprintf(b->s, sizeof(b->s), "%.17g", v);
	return b->s;
}

/* ---- what is in the schema ---- */

int pg_identify(struct pgc *p, char *schema, size_t len, int *state, int64_t *app, int64_t *version,
		struct tally_err *e)
{
	PGresult *r = pgc_query(p, "SELECT current_schema(), (SELECT count(*) FROM pg_catalog.pg_class c"
				   " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname ="
				   " current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')),"
				   " to_regclass(quote_ident(current_schema()) || '.tally_ledger') IS NOT NULL",
				0, NULL, "cannot read what the database holds", e);
	int rc = 0;
	*state = 0;
	*app = *version = 0;
	if (!r)
		return e ? e->code : -EIO;
	if (pgv_null(r, 0, 0)) {
		/* none of search_path is there for this role: missing, or no USAGE */
		PQclear(r);
		if (!(r = pgc_query(p, "SELECT current_setting('search_path'), current_user, (SELECT string_agg(nspname, ', ')"
				       " FROM pg_catalog.pg_namespace WHERE nspname = ANY(current_schemas(false)) IS NOT TRUE"
				       " AND quote_ident(nspname) = ANY(string_to_array(replace(current_setting('search_path'),"
				       " ' ', ''), ',')))", 0, NULL, "cannot read search_path", e)))
			return e ? e->code : -EIO;
		int rc2 = pgv_null(r, 0, 2)
			? err_set(e, -EINVAL, "%s: no schema to keep the ledger in: none of search_path (%s) exists"
				  " (create the schema, or set options=-csearch_path=NAME in the URI)", p->name,
				  pgv_text(r, 0, 0))
			: err_set(e, -EACCES, "%s: role '%s' may not use schema %s (GRANT USAGE ON SCHEMA %s TO %s)",
				  p->name, pgv_text(r, 0, 1), pgv_text(r, 0, 2), pgv_text(r, 0, 2), pgv_text(r, 0, 1));
		PQclear(r);
		return rc2;
	}
	str_copy(schema, pgv_text(r, 0, 0), len);
	int64_t objects = pgv_i64(r, 0, 1);
	bool ours = pgv_bool(r, 0, 2);
	PQclear(r);
	if (!objects)
		return 0;
	*state = -1;
	if (!ours)
		return 0;
	if (!(r = pgc_query(p, "SELECT application_id, version FROM tally_ledger", 0, NULL,
			    "cannot read the ledger's identity", e)))
		return e ? e->code : -EIO;
	if (PQntuples(r) == 1) {
		*state = 1;
		*app = pgv_i64(r, 0, 0);
		*version = pgv_i64(r, 0, 1);
	}
	PQclear(r);
	return rc;
}

int pg_check_readable(struct pgc *p, struct tally_err *e)
{
	char schema[256];
	int state, rc;
	int64_t app, ver;
	if ((rc = pg_identify(p, schema, sizeof(schema), &state, &app, &ver, e)))
		return rc;
	if (state == 0)
		return err_set(e, -ENOENT, "%s: no ledger here (schema '%s' is empty; tallyd creates the ledger:"
			       " see ledger.path)", p->name, schema);
	if (state < 0 || app != LEDGER_APP_ID)
		return err_set(e, -EINVAL, "%s: not a tally ledger (schema '%s' holds other tables)", p->name, schema);
	if (ver != LEDGER_SCHEMA_VERSION)
		return err_set(e, -EPROTO, "%s: ledger schema version %lld, this tally reads version %d%s", p->name,
			       (long long)ver, LEDGER_SCHEMA_VERSION,
			       ver > LEDGER_SCHEMA_VERSION ? ": upgrade tally" : ": let tallyd migrate it first");
	return 0;
}
