/*
 * pg.c: the PostgreSQL backend's writer (backend.h, ledger.h): create and
 * migrate the ledger in a schema (schemas/pg/), write a commit in bulk,
 * the hash chain's rows, `tally ledger check` and the snapshot `tally
 * ledger verify` reads. Its readers are in pg_reader.c, its invoice store
 * in pg_invoices.c, the connection in pg_conn.c; the table of all of them
 * is at the end of this file.
 *
 * A commit is one transaction, as on SQLite, written in bulk: the rows of
 * usage, series, resources, their attributes and events are kept in memory
 * in COPY's text format while the aggregator hands them over, copied into
 * temporary staging tables at commit, and merged into the ledger with one
 * INSERT ... ON CONFLICT per table (a usage row written twice in one
 * commit, by two agents' series, is merged in a second round, so each
 * addition is made once, in order, as SQLite makes them). Agents, alerts
 * and alert windows are few and written at once.
 *
 * Several writers (aggregators) may share a ledger: ledger_begin takes a
 * transaction-level advisory lock (pg_conn.h, PG_COMMIT_LOCK) that the
 * commit holds until it ends, so commits take turns: the hash chain stays
 * one line and an agent's seq is checked and moved under it
 * (ledger_put_agent). A connection that was lost is made again at the next
 * ledger_begin; until then every commit fails, is rolled back, and the
 * aggregator keeps what it read and retries (docs/ledger.md).
 */
#include "backend.h"
#include "chain.h"
#include "chain_merge.h"
#include "err.h"
#include "fault.h"
#include "hash.h"
#include "ledger_id.h"
#include "pg_conn.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"
#include "version.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char *const ledger_pg_migrations[];
extern const int ledger_pg_n_migrations;

/* Hours of a transaction whose precheck is asked for ahead (a cycle in
 * real time writes one or two). */
#define PRE_HOURS 4

/* The most rows of an hour tallyd reads to work its digests out (about
 * 450 bytes of its memory a row while a commit runs); a larger hour is
 * digested on the server. Tests lower it. */
int pg_pre_rows_max = 250000;

/* Rows waiting for COPY, in its text format. */
struct copybuf {
	char *b;
	size_t n, cap;
	int64_t rows;
	bool bad;                    /* out of memory: the commit fails */
};

/* The keys written in a transaction, and how often each: a usage key
 * written twice is merged in a second round, a series written twice (the
 * last one counts) needs the merge's DISTINCT ON. A key is its bytes. */
struct keyset {
	struct key {
		uint64_t hash;
		size_t at, len;      /* its bytes in arena */
		int times;
	} *v;
	size_t n, cap;
	uint32_t *slot;              /* index + 1, 0 = empty */
	size_t mask;
	char *arena;
	size_t used, size;
	int most;                    /* the most times one key was written */
};

struct pg_ledger {
	struct ledger base;
	struct pgc pc;
	struct pgc side;             /* the prechecks' own connection (pre_conn), or none */
	bool side_failed;            /* could not be made in this transaction */
	/* the hours' digests before and after the commit, parallel to
	 * touched (while pg_commit runs), and whether merge_early worked
	 * them all out while flush waited */
	struct chain_hour *before, *after;
	bool digested;
	bool in_tx;                  /* between ledger_begin and its commit or rollback */
	bool staged;                 /* this connection has its staging tables */
	struct copybuf usage, series, res, attrs, events;
	int64_t ord;                 /* order of the rows handed over */
	struct keyset ukeys, skeys;  /* usage and series keys of this transaction */
	int64_t ukn, skn;            /* rows staged as known (below: merge_known) */
	struct chain_touched touched;
	struct put_agent {
		char name[TALLY_ID_MAX];
		uint64_t seq;
	} *agents;                   /* the agents' seqs this transaction writes */
	size_t n_agents, cap_agents;
	int64_t head_id;             /* the chain's head, read under the lock at begin */
	unsigned char head[CHAIN_HASH_LEN];
	/* the rows of the first hours the transaction writes as the last
	 * commit left them, asked for while its own are handed over (pre_sql) */
	struct pre_hour {
		int64_t hour_ns;
		PGresult *rows;      /* the answer, or NULL */
	} pre[PRE_HOURS];
	int n_pre, pre_flight;       /* entries; the one whose answer is on its way */
	struct chain_deltas deltas;  /* the usage it adds, while it writes at most PRE_HOURS hours */
};

#define L(lb) ((struct pg_ledger *)(lb))

/* ---- COPY text format ---- */

static void cb_put(struct copybuf *c, const char *s, size_t n)
{
	if (c->bad || vec_reserve((void **)&c->b, &c->cap, c->n + n + 1, 1, 1 << 16)) {
		c->bad = true;
		return;
	}
	memcpy(c->b + c->n, s, n);
	c->n += n;
}

/* An integer in decimal, written from the right (snprintf was a third of
 * the time a commit of 100,000 series spends in this process). */
static void cb_i64(struct copybuf *c, int64_t v, char end)
{
	char t[24];
	size_t i = sizeof(t);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	t[--i] = end;
	do {
		t[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		t[--i] = '-';
	cb_put(c, t + i, sizeof(t) - i);
}

/* %.17g: the double back exactly (float8in rounds correctly). */
static void cb_f64(struct copybuf *c, double v, char end)
{
	char t[40];
	int n = snprintf(t, sizeof(t), "%.17g%c", v, end);
	cb_put(c, t, (size_t)n);
}

static void cb_null(struct copybuf *c, char end)
{
	char t[3] = { '\\', 'N', end };
	cb_put(c, t, 3);
}

static void cb_text(struct copybuf *c, const char *s, char end)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : *s == '\t' ? "\\t" : NULL;
		if (!esc)
			continue;
		cb_put(c, run, (size_t)(s - run));
		cb_put(c, esc, 2);
		run = s + 1;
	}
	cb_put(c, run, (size_t)(s - run));
	cb_put(c, &end, 1);
}

static void cb_reset(struct copybuf *c)
{
	c->n = 0;
	c->rows = 0;
	c->bad = false;
}

/* COPY c's rows into table. */
static int cb_copy(struct pg_ledger *l, struct copybuf *c, const char *table, struct tally_err *e)
{
	char sql[1400];
	PGresult *r;
	int rc = 0;
	if (!c->rows)
		return 0;
	if (c->bad)
		return err_set(e, -ENOMEM, "%s: out of memory keeping a commit", l->pc.name);
	pgc_settle(&l->pc);
	snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table);
	r = PQexec(l->pc.c, sql);
	if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
		rc = pgc_fail(&l->pc, r, "cannot write a commit", e);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	for (size_t at = 0; at < c->n && !rc;) {
		size_t n = c->n - at < (1 << 20) ? c->n - at : (1 << 20);
		if (PQputCopyData(l->pc.c, c->b + at, (int)n) != 1)
			rc = pgc_fail(&l->pc, NULL, "cannot write a commit", e);
		at += n;
	}
	if (PQputCopyEnd(l->pc.c, rc ? "aborted" : NULL) != 1 && !rc)
		rc = pgc_fail(&l->pc, NULL, "cannot write a commit", e);
	while (pgc_wait(&l->pc), (r = PQgetResult(l->pc.c))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !rc)
			rc = pgc_fail(&l->pc, r, "cannot write a commit", e);
		PQclear(r);
	}
	return rc;
}

/* ---- the keys of a transaction ---- */

/* How often key (len bytes) was written before in this transaction,
 * counting this time; -ENOMEM. */
static int key_times(struct keyset *k, const void *key, size_t len)
{
	uint64_t h = hash_mix64(hash_fnv64(HASH_FNV64_INIT, key, len));
	if (k->n + 1 > (k->mask + 1) / 2) {
		size_t cap = k->mask ? (k->mask + 1) * 2 : 4096;
		uint32_t *slot = fault_calloc(cap, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		free(k->slot);
		k->slot = slot;
		k->mask = cap - 1;
		for (size_t j = 0; j < k->n; j++) {
			size_t i = (size_t)k->v[j].hash & k->mask;
			while (k->slot[i])
				i = (i + 1) & k->mask;
			k->slot[i] = (uint32_t)j + 1;
		}
	}
	size_t i = (size_t)h & k->mask;
	for (; k->slot[i]; i = (i + 1) & k->mask) {
		struct key *x = &k->v[k->slot[i] - 1];
		if (x->hash == h && x->len == len && !memcmp(k->arena + x->at, key, len)) {
			if (++x->times > k->most)
				k->most = x->times;
			return x->times - 1;
		}
	}
	if (vec_reserve((void **)&k->arena, &k->size, k->used + len, 1, 1 << 16) ||
	    vec_reserve((void **)&k->v, &k->cap, k->n + 1, sizeof(*k->v), 1024))
		return -ENOMEM;
	memcpy(k->arena + k->used, key, len);
	k->v[k->n] = (struct key){ .hash = h, .at = k->used, .len = len, .times = 1 };
	k->used += len;
	k->slot[i] = (uint32_t)++k->n;
	if (k->most < 1)
		k->most = 1;
	return 0;
}

static void keys_reset(struct keyset *k)
{
	if (k->n)
		memset(k->slot, 0, (k->mask + 1) * sizeof(*k->slot));
	k->n = k->used = 0;
	k->most = 0;
}

static void keys_free(struct keyset *k)
{
	free(k->v);
	free(k->slot);
	free(k->arena);
}

/* A row's key as bytes: its integers, then its strings with their NULs. */
static size_t key_of(char *buf, size_t len, const int64_t *ints, int n_ints, const char *s1, const char *s2)
{
	size_t o = 0, l1 = strlen(s1) + 1, l2 = s2 ? strlen(s2) + 1 : 0;
	if ((size_t)n_ints * 8 + l1 + l2 > len)
		return 0;
	memcpy(buf, ints, (size_t)n_ints * 8);
	o = (size_t)n_ints * 8;
	memcpy(buf + o, s1, l1);
	o += l1;
	if (s2) {
		memcpy(buf + o, s2, l2);
		o += l2;
	}
	return o;
}

static void tx_reset(struct pg_ledger *l)
{
	pgc_settle(&l->pc);          /* an answer still on its way lands before the entries go */
	pgc_settle(&l->side);
	for (int i = 0; i < l->n_pre; i++)
		PQclear(l->pre[i].rows);
	l->n_pre = 0;
	chain_deltas_reset(&l->deltas);
	cb_reset(&l->usage);
	cb_reset(&l->series);
	cb_reset(&l->res);
	cb_reset(&l->attrs);
	cb_reset(&l->events);
	l->ord = 0;
	keys_reset(&l->ukeys);
	keys_reset(&l->skeys);
	l->ukn = l->skn = 0;
	l->touched.n = 0;
	l->n_agents = 0;
}

/* ---- opening: identity, migrations, privileges ---- */

static const char stage_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS tally_stage_usage (round BIGINT, known BOOLEAN, resource_id BIGINT,"
	" meter_id BIGINT, device TEXT COLLATE \"C\", hour_ns BIGINT, quantity BIGINT, quantity_real DOUBLE PRECISION,"
	" spanned_ns BIGINT, covered_ns BIGINT, samples BIGINT) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS tally_stage_series (ord BIGINT, known BOOLEAN, resource_id BIGINT,"
	" meter_id BIGINT, device TEXT COLLATE \"C\", agent TEXT COLLATE \"C\", last_ns BIGINT, origin_ns BIGINT,"
	" kind TEXT, last_value BIGINT, last_value_real DOUBLE PRECISION, flags BIGINT) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS tally_stage_resources (ord BIGINT, id BIGINT, uuid TEXT COLLATE \"C\","
	" type TEXT, name TEXT, tenant TEXT, project TEXT, user_id TEXT, flavor TEXT, labels TEXT, host TEXT,"
	" first_seen_ns BIGINT, last_seen_ns BIGINT, meta_ns BIGINT) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS tally_stage_attrs (ord BIGINT, resource_id BIGINT, since_ns BIGINT,"
	" name TEXT, tenant TEXT, project TEXT, user_id TEXT, flavor TEXT, labels TEXT) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS tally_stage_events (ord BIGINT, resource_id BIGINT, time_ns BIGINT,"
	" agent TEXT, type TEXT, reason TEXT) ON COMMIT DELETE ROWS";

/* The privileges a writer needs, checked at open so that a role without
 * them is refused with their names rather than at its first commit. */
static const char privileges_sql[] =
	"SELECT string_agg(t || ' (' || m || ')', ', ' ORDER BY o) FROM (SELECT t, min(o) AS o,"
	" string_agg(q, ', ' ORDER BY q.n) AS m FROM (VALUES"
	" (1, 'meters', 'SELECT, INSERT'), (2, 'resources', 'SELECT, INSERT, UPDATE'),"
	" (3, 'resource_attrs', 'SELECT, INSERT, UPDATE'), (4, 'usage', 'SELECT, INSERT, UPDATE'),"
	" (5, 'series', 'SELECT, INSERT, UPDATE'), (6, 'agents', 'SELECT, INSERT, UPDATE'), (7, 'events', 'SELECT, INSERT'),"
	" (8, 'alerts', 'SELECT, INSERT, UPDATE, DELETE'), (9, 'alert_windows', 'SELECT, INSERT, UPDATE, DELETE'),"
	" (10, 'chain', 'SELECT, INSERT'), (11, 'chain_hours', 'SELECT, INSERT'),"
	" (12, 'meta', 'SELECT, INSERT, UPDATE'), (13, 'usage_events', 'SELECT, INSERT')) AS need (o, t, p),"
	" unnest(string_to_array(p, ', ')) WITH ORDINALITY AS q (q, n)"
	" WHERE NOT has_table_privilege(quote_ident(current_schema()) || '.' || t, q) GROUP BY t) AS missing";

static int migrate(struct pg_ledger *l, int64_t from, struct tally_err *e);

/* Record this tally in the meta table (schemas/pg/migrations/006-meta.sql),
 * as sqlite.c does: created_by when it made the ledger, upgraded_by when it
 * migrated an older one to schema 6, written_by and written_ns every time.
 * Inside the open's transaction. */
static int meta_record(struct pg_ledger *l, int64_t from_ver, struct tally_err *e)
{
	char who[160];
	struct pgnum n;
	const char *first = from_ver == 0 ? "created_by" : from_ver < 6 ? "upgraded_by" : NULL;
	snprintf(who, sizeof(who), "%s (%s)", tally_version, tally_revision);
	const char *p[] = { first, who, pgn_i64(&n, time_now_ns()) };
	PGresult *r = pgc_query(&l->pc, "INSERT INTO meta (key, value) SELECT CAST($1 AS text), $2 WHERE $1 IS NOT NULL"
				" ON CONFLICT (key) DO NOTHING", 2, p, "cannot record this tally in the ledger", e);
	if (!r)
		return e ? e->code : -EIO;
	PQclear(r);
	if (!(r = pgc_query(&l->pc, "INSERT INTO meta (key, value) VALUES ('written_by', $1), ('written_ns', $2)"
			    " ON CONFLICT (key) DO UPDATE SET value = excluded.value", 2, p + 1,
			    "cannot record this tally in the ledger", e)))
		return e ? e->code : -EIO;
	PQclear(r);
	return 0;
}

static int pg_open(struct ledger **out, const char *location, struct tally_err *e)
{
	struct pg_ledger *l = fault_calloc(1, sizeof(*l));
	char schema[256];
	int state = 0, rc;
	int64_t app = 0, ver = 0;
	PGresult *r = NULL;

	*out = NULL;
	if (!l)
		return err_set(e, -ENOMEM, "out of memory");
	l->base.be = &ledger_pg_backend;
	if ((rc = pgc_connect(&l->pc, location, "tallyd", e)))
		goto fail;
	l->pc.bg = &l->side;         /* a precheck's rows read while the commit waits */
	/* identity and migrations under the commit lock: two writers starting
	 * on an empty schema create it once */
	if ((rc = pgc_exec(&l->pc, "BEGIN", "cannot begin a transaction", e)) ||
	    (rc = pgc_exec(&l->pc, PG_COMMIT_LOCK, "cannot take the commit lock", e)) ||
	    (rc = pg_identify(&l->pc, schema, sizeof(schema), &state, &app, &ver, e)))
		goto fail;
	if (state < 0 || (state > 0 && app != LEDGER_APP_ID)) {
		rc = err_set(e, -EINVAL, "%s: not a tally ledger (schema '%s' holds other tables); refusing to"
			     " touch it: give tally a schema of its own (options=-csearch_path=NAME)", l->pc.name,
			     schema);
		goto fail;
	}
	if (ver > LEDGER_SCHEMA_VERSION) {
		rc = err_set(e, -EPROTO, "%s: ledger schema version %lld is newer than this tally knows (%d);"
			     " upgrade tally, the ledger was not changed", l->pc.name, (long long)ver,
			     LEDGER_SCHEMA_VERSION);
		goto fail;
	}
	if (state == 0) {
		if (!(r = pgc_query(&l->pc, "SELECT has_schema_privilege(current_schema(), 'CREATE'), current_user",
				    0, NULL, "cannot read privileges", e))) {
			rc = e ? e->code : -EIO;
			goto fail;
		}
		if (!pgv_bool(r, 0, 0)) {
			rc = err_set(e, -EACCES, "%s: role '%s' may not create the ledger's tables in schema '%s'"
				     " (GRANT CREATE ON SCHEMA %s TO %s, or create the ledger as its owner once)",
				     l->pc.name, pgv_text(r, 0, 1), schema, schema, pgv_text(r, 0, 1));
			goto fail;
		}
		PQclear(r);
		r = NULL;
	}
	if (ver < LEDGER_SCHEMA_VERSION && (rc = migrate(l, ver, e)))
		goto fail;
	if (!(r = pgc_query(&l->pc, privileges_sql, 0, NULL, "cannot read privileges", e))) {
		rc = e ? e->code : -EIO;
		goto fail;
	}
	if (!pgv_null(r, 0, 0)) {
		rc = err_set(e, -EACCES, "%s: the role lacks privileges a writer needs on schema '%s': %s (GRANT"
			     " them, or give tallyd the owner's role)", l->pc.name, schema, pgv_text(r, 0, 0));
		goto fail;
	}
	PQclear(r);
	r = NULL;
	if ((rc = meta_record(l, state == 0 ? 0 : ver, e)) || (rc = pgc_exec(&l->pc, "COMMIT", "cannot commit", e)))
		goto fail;
	*out = &l->base;
	return 0;
fail:
	PQclear(r);
	ledger_pg_backend.close(&l->base);
	return rc;
}

/* The upgrade to the chain on a ledger that has usage: one commit
 * sealing every hour as found (as sqlite.c). Inside the migration. */
static int row_of(const PGresult *r, int i, struct chain_row *out);

static int seal_row(void *ctx, const PGresult *r, int i)
{
	struct chain_row row;
	row_of(r, i, &row);
	return chain_hours_add(ctx, &row);
}

static void hexs(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

#define USAGE_COLS "resource_id, meter_id, device, hour_ns, quantity, quantity_real, spanned_ns, covered_ns, samples"
/* A series row, in row_series's order. */
#define SERIES_COLS \
	"resource_id, meter_id, device, agent, last_ns, origin_ns, kind, last_value, last_value_real, flags"

static int seal_upgrade(struct pg_ledger *l, struct tally_err *e)
{
	struct chain_hours s = { 0 };
	unsigned char zero[CHAIN_HASH_LEN] = { 0 }, hash[CHAIN_HASH_LEN];
	char hx[2 * CHAIN_HASH_LEN + 1];
	struct pgnum a, b;
	int64_t now = time_now_ns();
	void *cc = NULL;
	int rc = pgc_each(&l->pc, "SELECT " USAGE_COLS " FROM usage ORDER BY resource_id, meter_id, device, hour_ns", 0,
			  NULL, seal_row, &s, "cannot read the usage to seal it", e);
	if (rc == -ENOMEM || (rc == 0 && (rc = chain_hours_finish(&s))))
		rc = err_set(e, -ENOMEM, "%s: out of memory hashing the usage", l->pc.name);
	if (rc || !s.n)
		goto out;
	if (!(cc = chain_commit_begin(zero, 1, now, 1, (int64_t)s.n))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		chain_commit_hour(cc, s.v[i].hour_ns, s.v[i].rows, 0, s.v[i].digest);
		hexs(s.v[i].digest, CHAIN_HASH_LEN, hx);
		const char *p[] = { pgn_i64(&a, s.v[i].hour_ns), pgn_i64(&b, s.v[i].rows), hx };
		PGresult *r = pgc_query(&l->pc, "INSERT INTO chain_hours (commit_id, hour_ns, rows, digest)"
					" VALUES (1, $1, $2, decode($3, 'hex'))", 3, p, "cannot seal the usage", e);
		if (!r) {
			rc = e ? e->code : -EIO;
			goto out;
		}
		PQclear(r);
	}
	rc = chain_commit_end(cc, hash);
	cc = NULL;
	if (rc)
		goto out;
	hexs(hash, CHAIN_HASH_LEN, hx);
	const char *p[] = { pgn_i64(&a, now), pgn_i64(&b, (int64_t)s.n), hx };
	PGresult *r = pgc_query(&l->pc, "INSERT INTO chain (id, time_ns, upgrade, hours, hash) VALUES (1, $1, 1, $2,"
				" decode($3, 'hex'))", 3, p, "cannot seal the usage", e);
	rc = r ? 0 : e ? e->code : -EIO;
	PQclear(r);
out:
	chain_commit_free(cc);
	chain_hours_free(&s);
	return rc;
}

/* Bring the ledger from version from to the current one, inside the open
 * transaction (PostgreSQL's DDL is transactional: all or nothing). */
static int migrate(struct pg_ledger *l, int64_t from, struct tally_err *e)
{
	char sql[96];
	int rc;
	if (ledger_pg_n_migrations != LEDGER_SCHEMA_VERSION)
		return err_set(e, -EPROTO, "built with %d PostgreSQL migrations for schema version %d",
			       ledger_pg_n_migrations, LEDGER_SCHEMA_VERSION);
	for (int64_t v = from; v < LEDGER_SCHEMA_VERSION; v++) {
		if ((rc = pgc_exec(&l->pc, ledger_pg_migrations[v], "cannot create or migrate the ledger", e)) ||
		    (v + 1 == CHAIN_VERSION && v > 0 && (rc = seal_upgrade(l, e))))
			return err_prefix(e, "migration to schema %lld", (long long)(v + 1));
		snprintf(sql, sizeof(sql), "UPDATE tally_ledger SET version = %lld", (long long)(v + 1));
		if ((rc = pgc_exec(&l->pc, sql, "cannot migrate the ledger", e)))
			return rc;
	}
	return 0;
}

static void pg_close(struct ledger *lb)
{
	struct pg_ledger *l = L(lb);
	if (!l)
		return;
	tx_reset(l);
	if (l->pc.c && PQtransactionStatus(l->pc.c) != PQTRANS_IDLE)
		PQclear(PQexec(l->pc.c, "ROLLBACK"));
	pgc_close(&l->pc);
	pgc_close(&l->side);
	free(l->usage.b);
	free(l->series.b);
	free(l->res.b);
	free(l->attrs.b);
	free(l->events.b);
	keys_free(&l->ukeys);
	keys_free(&l->skeys);
	free(l->touched.v);
	free(l->agents);
	chain_deltas_free(&l->deltas);
	free(l);
}

static void pg_check_info(const struct ledger *lb, bool *full, int64_t *ns)
{
	(void)lb;
	*full = false;               /* the server keeps its own pages: no check at open */
	*ns = 0;
}

/* ---- transactions ---- */

static void pg_rollback(struct ledger *lb);

/* The connection, made again if it was lost (a new session has no
 * temporary tables). */
static int ensure(struct pg_ledger *l, struct tally_err *e)
{
	if (PQstatus(l->pc.c) != CONNECTION_OK)
		l->staged = false;
	return pgc_ensure(&l->pc, e);
}

/* A commit whose hours are hashed on the server (digest_sql) sorts each
 * of them twice: with the server's default work_mem (4 MB) an hour of
 * 100,000 rows was sorted on disk (8 MB, external merge). 64 MB sorts an
 * hour of about 300,000 rows in memory; a larger one spills, slower, not
 * wrong. (pre_sql's sort, on the side connection, keeps the default: in
 * memory it was no faster.) */
static const char begin_sql[] = "BEGIN; SET LOCAL work_mem = '64MB'";

static int pg_begin(struct ledger *lb, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	PGresult *r;
	int rc;
	tx_reset(l);
	l->side_failed = false;
	if ((rc = ensure(l, e)))
		return rc;
	if (PQtransactionStatus(l->pc.c) != PQTRANS_IDLE)
		PQclear(PQexec(l->pc.c, "ROLLBACK"));
	if (!l->staged) {
		if ((rc = pgc_exec(&l->pc, stage_sql, "cannot make the staging tables", e)))
			return rc;
		l->staged = true;
	}
	if ((rc = pgc_exec(&l->pc, begin_sql, "cannot begin a transaction", e)))
		return rc;
	l->in_tx = true;
	if ((rc = pgc_exec(&l->pc, PG_COMMIT_LOCK, "cannot take the commit lock", e)))
		goto fail;
	if (!(r = pgc_query(&l->pc, "SELECT id, hash FROM chain ORDER BY id DESC LIMIT 1", 0, NULL,
			    "cannot read the hash chain", e))) {
		rc = e ? e->code : -EIO;
		goto fail;
	}
	l->head_id = 0;
	memset(l->head, 0, sizeof(l->head));
	if (PQntuples(r) == 1) {
		l->head_id = pgv_i64(r, 0, 0);
		if (PQgetlength(r, 0, 1) == CHAIN_HASH_LEN)
			memcpy(l->head, PQgetvalue(r, 0, 1), CHAIN_HASH_LEN);
	}
	PQclear(r);
	return 0;
fail:
	/* no transaction is left open by a begin that failed (the caller
	 * does not roll it back: it did not begin) */
	pg_rollback(lb);
	return rc;
}

static void pg_rollback(struct ledger *lb)
{
	struct pg_ledger *l = L(lb);
	tx_reset(l);                 /* settles a precheck still on its way */
	l->in_tx = false;
	if (PQstatus(l->pc.c) == CONNECTION_OK && PQtransactionStatus(l->pc.c) != PQTRANS_IDLE)
		PQclear(PQexec(l->pc.c, "ROLLBACK"));
}

static bool pg_idle(const struct ledger *lb)
{
	return !L(lb)->in_tx;
}

/* One usage row of r (columns USAGE_COLS from 0) for the chain. */
static int row_of(const PGresult *r, int i, struct chain_row *out)
{
	out->resource_id = pgv_i64(r, i, 0);
	out->meter_id = pgv_i64(r, i, 1);
	out->device = pgv_text(r, i, 2);
	out->device_len = (size_t)PQgetlength(r, i, 2);
	out->hour_ns = pgv_i64(r, i, 3);
	out->qty.text = NULL;
	out->qty_text_len = 0;
	if (!pgv_null(r, i, 4) && pgv_null(r, i, 5)) {
		out->qty.type = LEDGER_QTY_INT;
		out->qty.i = pgv_i64(r, i, 4);
	} else if (pgv_null(r, i, 4) && !pgv_null(r, i, 5)) {
		out->qty.type = LEDGER_QTY_REAL;
		out->qty.d = pgv_f64(r, i, 5);
	} else {
		out->qty.type = LEDGER_QTY_OTHER;   /* the CHECK keeps it from happening */
	}
	out->spanned_ns = pgv_i64(r, i, 6);
	out->covered_ns = pgv_i64(r, i, 7);
	out->samples = pgv_i64(r, i, 8);
	return 0;
}

/* The hours of the open transaction, digested as they are now into h[]
 * (parallel to l->touched): on the server, with the bytes of
 * schemas/migrations/005-chain.sql built in SQL (int8send and float8send
 * are big-endian, as the chain's integers; device bytewise by COLLATE "C")
 * and hashed by sha256(): for the hours tallyd does not work out itself
 * (digests_ahead, and a commit not asked ahead). The same digests as chain.c's
 * (test_ledger's chain cases check them against tally ledger verify,
 * which hashes rows in C). */
#define DIGEST_PREFIX "'\\x74616c6c7920757361676520686f757220763100'::bytea"
#define DIGEST_ROWS \
	"string_agg(int8send(resource_id) || int8send(meter_id) || int4send(octet_length(device))" \
	" || convert_to(device, 'UTF8') || int8send(hour_ns)" \
	" || CASE WHEN quantity IS NOT NULL AND quantity_real IS NULL THEN '\\x49'::bytea || int8send(quantity)" \
	"  ELSE '\\x52'::bytea || float8send(quantity_real) END" \
	" || int8send(spanned_ns) || int8send(covered_ns) || int8send(samples), ''::bytea" \
	" ORDER BY resource_id, meter_id, device)"
static const char digest_sql[] =
	"SELECT hour_ns, count(*), sha256(" DIGEST_PREFIX " || int8send(hour_ns) || " DIGEST_ROWS ")"
	" FROM usage WHERE hour_ns = ANY($1::bigint[]) GROUP BY hour_ns ORDER BY hour_ns";

/* The rows of one hour ($1) as the last commit left them, in the chain's
 * order: asked for while the commit's rows are still being handed over
 * (pg_add_usage sends it when a transaction first writes to an hour; the
 * commit lock is held from ledger_begin on, so no other writer's commit
 * comes between; this transaction's own rows reach the server only at the
 * commit). From them and the usage the commit adds, tallyd works out the
 * hour's digest before the commit (precheck) and after it (chain_append)
 * without reading the hour again (chain_merge.h). */
static const char pre_sql[] =
	"SELECT " USAGE_COLS " FROM usage WHERE hour_ns = $1::bigint ORDER BY resource_id, meter_id, device"
	" LIMIT $2::bigint";

/* The touched hours as a bigint[] parameter: "{h1,h2,...}". */
static void hours_param(struct pg_ledger *l, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, len - o, "{");
	for (size_t i = 0; i < l->touched.n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)l->touched.v[i].hour_ns);
	if (o < len)
		snprintf(buf + o, len - o, "}");
}

static int hash_hours(struct pgc *c, const struct touched *t, size_t n, const char *hours, struct chain_hour *h,
		      struct tally_err *e)
{
	const char *p[] = { hours };
	PGresult *r = pgc_query(c, digest_sql, 1, p, "cannot hash the usage", e);
	int rc = 0;
	if (!r)
		return e ? e->code : -EIO;
	for (size_t i = 0, j = 0; i < n; i++) {
		h[i].hour_ns = t[i].hour_ns;
		h[i].ctx = NULL;
		if (j < (size_t)PQntuples(r) && pgv_i64(r, (int)j, 0) == h[i].hour_ns) {
			h[i].rows = pgv_i64(r, (int)j, 1);
			if (PQgetlength(r, (int)j, 2) == CHAIN_HASH_LEN)
				memcpy(h[i].digest, PQgetvalue(r, (int)j, 2), CHAIN_HASH_LEN);
			j++;
		} else if ((rc = chain_hour_empty(h[i].hour_ns, h[i].digest))) {
			err_set(e, rc, "%s: out of memory hashing usage", c->name);
			break;
		} else {
			h[i].rows = 0;
		}
	}
	PQclear(r);
	return rc;
}

/* Every hour the transaction writes was asked for ahead. */
static bool asked_ahead(const struct pg_ledger *l)
{
	return l->touched.n <= PRE_HOURS && (size_t)l->n_pre == l->touched.n;
}

static struct pre_hour *pre_of(struct pg_ledger *l, int64_t hour_ns)
{
	for (int i = 0; i < l->n_pre; i++)
		if (l->pre[i].hour_ns == hour_ns)
			return &l->pre[i];
	return NULL;
}

static void pre_done(void *ctx, PGresult *r)
{
	struct pg_ledger *l = ctx;
	if (r && PQnfields(r) != 9) {
		PQclear(r);
		r = NULL;            /* not the answer asked for: asked again (pre_again) */
	}
	l->pre[l->pre_flight].rows = r;
}

/* The connection the rows are asked on, made when first needed: its
 * own, so that the server reads and sorts the hour on another core while
 * this transaction's rows are handed over, copied and merged on the first.
 * It sees the ledger as the last commit left it: the commit lock, held
 * from ledger_begin on, keeps every other writer out, and this
 * transaction's rows are not visible to it. NULL when it cannot be made
 * (or made again, once a transaction): the commit then hashes its hours
 * on the server, on the first connection, before it merges. */
static struct pgc *pre_conn(struct pg_ledger *l)
{
	struct tally_err ignore = { 0 };
	if (!l->side_failed)
		l->side_failed = l->side.c ? pgc_ensure(&l->side, &ignore) != 0
					   : pgc_connect(&l->side, l->pc.location, "tallyd precheck", &ignore) != 0;
	return l->side_failed ? NULL : &l->side;
}

/* pre_sql's parameters for hour_ns: the hour, and one row more than
 * tallyd reads (so that an hour too large shows as such). */
static void pre_params(int64_t hour_ns, struct pgnum n[2], const char *p[2])
{
	p[0] = pgn_i64(&n[0], hour_ns);
	p[1] = pgn_i64(&n[1], (int64_t)pg_pre_rows_max + 1);
}

/* Ask for hour's rows now; an hour not asked for (not sent) makes the
 * commit hash its hours on the server. */
static void pre_send(struct pg_ledger *l, int64_t hour_ns)
{
	struct pgnum n[2];
	const char *p[2];
	struct pgc *c = l->in_tx && l->n_pre < PRE_HOURS ? pre_conn(l) : NULL;
	pre_params(hour_ns, n, p);
	if (!c || pgc_send(c, pre_sql, 2, p, pre_done, l))
		return;
	l->pre[l->n_pre] = (struct pre_hour){ .hour_ns = hour_ns };
	l->pre_flight = l->n_pre++;
}

/* An hour's rows asked for again, when the answer asked ahead did not
 * come: on the side connection (made again if it was lost), which sees
 * the ledger without this transaction (the first one, after flush, would
 * see this commit's rows). */
static int pre_again(struct pg_ledger *l, struct pre_hour *p, struct tally_err *e)
{
	struct pgnum n[2];
	const char *q[2];
	int rc;
	pre_params(p->hour_ns, n, q);
	if ((rc = pgc_ensure(&l->side, e)))
		return rc;
	p->rows = pgc_query(&l->side, pre_sql, 2, q, "cannot read the usage", e);
	return p->rows ? 0 : e ? e->code : -EIO;
}

/* More rows than tallyd works with (pg_pre_rows_max). */
static bool too_many(const PGresult *r)
{
	return PQntuples(r) > pg_pre_rows_max;
}

/* An hour's rows hashed as they are. 0 or -ENOMEM. */
static int hash_rows(const PGresult *r, int64_t hour_ns, struct chain_hour *h)
{
	struct chain_row row;
	int rc = chain_hour_begin(h, hour_ns);
	for (int i = 0; !rc && i < PQntuples(r); i++) {
		row_of(r, i, &row);
		chain_hour_row(h, &row);
	}
	return rc ? rc : chain_hour_end(h);
}

struct res_rows {
	const PGresult *r;
	int i;
};

static int next_res_row(void *ctx, struct chain_row *out)
{
	struct res_rows *c = ctx;
	if (c->i >= PQntuples(c->r))
		return 0;
	row_of(c->r, c->i++, out);
	return 1;
}

/* Hour i of l->touched (p: its rows) before and after the commit
 * (chain_merge.h): 0, -ERANGE or -ENOMEM. */
static int merge_hour(struct pg_ledger *l, const struct pre_hour *p, size_t i, struct chain_hour *before,
		      struct chain_hour *after)
{
	struct res_rows c = { .r = p->rows };
	return chain_merge_hour(&l->deltas, p->hour_ns, next_res_row, &c, &before[i], &after[i]);
}

/* Each hour asked ahead, before the commit into before[] and after it
 * into after[] (parallel to l->touched), from its rows and the usage the
 * commit adds (chain_merge.h). When the sum is not one that works out,
 * or the hour has more rows than tallyd reads, the hours after are hashed
 * on the server: flush has merged by then. */
static int digests_ahead(struct pg_ledger *l, const char *hours, struct chain_hour *before,
			 struct chain_hour *after, struct tally_err *e)
{
	bool on_server = false;
	int rc;
	pgc_settle(&l->side);
	for (size_t i = 0; i < l->touched.n; i++) {
		struct pre_hour *p = pre_of(l, l->touched.v[i].hour_ns);
		if (!p->rows && (rc = pre_again(l, p, e)))
			return rc;
		if (too_many(p->rows)) {
			/* digested on the server: before on the side, after on the first */
			char one[32];
			snprintf(one, sizeof(one), "{%lld}", (long long)p->hour_ns);
			on_server = true;
			if ((rc = hash_hours(&l->side, &l->touched.v[i], 1, one, &before[i], e)))
				return rc;
			continue;
		}
		if ((rc = merge_hour(l, p, i, before, after)) == -ERANGE) {
			on_server = true;
			rc = hash_rows(p->rows, p->hour_ns, &before[i]);
		}
		if (rc)
			return err_set(e, rc, "%s: out of memory hashing usage", l->pc.name);
	}
	return on_server ? hash_hours(&l->pc, l->touched.v, l->touched.n, hours, after, e) : 0;
}

/* The digests of digests_ahead, worked out while flush waits for the
 * server (pgc_wait's idle: the rows asked ahead have come, the commit's
 * usage is all handed over). Anything it cannot do (an answer missing, a
 * sum for the server) is left to digests_ahead after flush. */
static void merge_early(void *ctx)
{
	struct pg_ledger *l = ctx;
	for (size_t i = 0; i < l->touched.n; i++) {
		const struct pre_hour *p = pre_of(l, l->touched.v[i].hour_ns);
		if (!p->rows || too_many(p->rows) || merge_hour(l, p, i, l->before, l->after))
			return;
	}
	l->digested = true;
}

/* Does each hour the commit writes hold what the last commit that wrote
 * it recorded (h: the hours before the commit)? As sqlite.c's
 * hour_precheck, for all of a commit's hours at once; sets each touched
 * hour's altered. */
static int precheck(struct pg_ledger *l, const char *hours, const struct chain_hour *h, struct tally_err *e)
{
	const char *p[] = { hours };
	PGresult *r = pgc_query(&l->pc, "SELECT DISTINCT ON (hour_ns) hour_ns, commit_id, rows, digest FROM chain_hours"
				" WHERE hour_ns = ANY($1::bigint[]) ORDER BY hour_ns, commit_id DESC", 1, p,
				"cannot read the hash chain", e);
	if (!r)
		return e ? e->code : -EIO;
	for (size_t i = 0, j = 0; i < l->touched.n; i++) {
		struct touched *t = &l->touched.v[i];
		t->altered = 0;
		while (j < (size_t)PQntuples(r) && pgv_i64(r, (int)j, 0) < t->hour_ns)
			j++;
		if (j < (size_t)PQntuples(r) && pgv_i64(r, (int)j, 0) == t->hour_ns) {
			if (pgv_i64(r, (int)j, 2) != h[i].rows || PQgetlength(r, (int)j, 3) != CHAIN_HASH_LEN ||
			    memcmp(PQgetvalue(r, (int)j, 3), h[i].digest, CHAIN_HASH_LEN))
				t->altered = pgv_i64(r, (int)j, 1);
		} else if (h[i].rows) {
			t->altered = -1;
		}
	}
	PQclear(r);
	return 0;
}

/* After it: this commit's link of the chain (h: each hour after the commit). */
static int chain_append(struct pg_ledger *l, const char *hours, const struct chain_hour *h, struct tally_err *e)
{
	size_t n = l->touched.n, len = n * 24 + 8;
	char *rows = fault_malloc(len), *alt = fault_malloc(len), *dig = fault_malloc(n * (2 * CHAIN_HASH_LEN + 4) + 8);
	unsigned char next[CHAIN_HASH_LEN];
	char hx[2 * CHAIN_HASH_LEN + 1];
	struct pgnum a, b, c;
	int64_t id = l->head_id + 1, now = time_now_ns();
	void *cc = NULL;
	PGresult *r = NULL;
	int rc;
	if (!rows || !alt || !dig) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (!(cc = chain_commit_begin(l->head, id, now, 0, (int64_t)n))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	size_t o1 = 0, o2 = 0, o3 = 0;
	rows[o1++] = alt[o2++] = dig[o3++] = '{';
	for (size_t i = 0; i < n; i++) {
		chain_commit_hour(cc, h[i].hour_ns, h[i].rows, l->touched.v[i].altered, h[i].digest);
		hexs(h[i].digest, CHAIN_HASH_LEN, hx);
		o1 += (size_t)sprintf(rows + o1, "%s%lld", i ? "," : "", (long long)h[i].rows);
		o2 += (size_t)sprintf(alt + o2, "%s%lld", i ? "," : "", (long long)l->touched.v[i].altered);
		o3 += (size_t)sprintf(dig + o3, "%s%s", i ? "," : "", hx);
	}
	strcpy(rows + o1, "}");
	strcpy(alt + o2, "}");
	strcpy(dig + o3, "}");
	rc = chain_commit_end(cc, next);
	cc = NULL;
	if (rc) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	hexs(next, CHAIN_HASH_LEN, hx);
	const char *p1[] = { pgn_i64(&a, id), pgn_i64(&b, now), pgn_i64(&c, (int64_t)n), hx };
	if (!(r = pgc_query(&l->pc, "INSERT INTO chain (id, time_ns, upgrade, hours, hash) VALUES ($1, $2, 0, $3,"
			    " decode($4, 'hex'))", 4, p1, "cannot write the hash chain", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	PQclear(r);
	const char *p2[] = { pgn_i64(&a, id), hours, rows, alt, dig };
	if (!(r = pgc_query(&l->pc, "INSERT INTO chain_hours (commit_id, hour_ns, rows, altered, digest)"
			    " SELECT $1, unnest($2::bigint[]), unnest($3::bigint[]), unnest($4::bigint[]),"
			    " decode(unnest($5::text[]), 'hex')", 5, p2, "cannot write the hash chain", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	memcpy(l->head, next, CHAIN_HASH_LEN);   /* the head moves only if the commit does: see pg_commit */
	l->head_id = id;
out:
	PQclear(r);
	chain_commit_free(cc);
	free(rows);
	free(alt);
	free(dig);
	return rc;
}

/* A resource's row from a writer: several writers each hold their own
 * copy of it, so the row keeps the first and last sight of all of them and
 * the host of whichever saw it last; its description (type, name, tenant,
 * ...) is the one of the newest metadata: a writer's only when its
 * metadata is at least as new as the resource's latest attributes in the
 * ledger (a writer that never received the resource's metadata, which an
 * agent sends only when it changes, has none to give). */
#define RESOURCE_SEEN \
	"host = CASE WHEN excluded.last_seen_ns >= r.last_seen_ns THEN excluded.host ELSE r.host END," \
	" first_seen_ns = least(r.first_seen_ns, excluded.first_seen_ns)," \
	" last_seen_ns = greatest(r.last_seen_ns, excluded.last_seen_ns)"
#define RESOURCE_DESC_SET \
	"type = s.type, name = s.name, tenant = s.tenant, project = s.project, user_id = s.user_id," \
	" flavor = s.flavor, labels = s.labels"
#define RESOURCE_DESC_NEWER \
	"s.meta_ns >= coalesce((SELECT max(since_ns) FROM resource_attrs a WHERE a.resource_id = r.id), -1)"

/* The merges of the staging tables into the ledger, in this order. */
static const char merge_resources[] =
	"INSERT INTO resources AS r (id, uuid, type, name, tenant, project, user_id, flavor, labels, host,"
	" first_seen_ns, last_seen_ns) SELECT DISTINCT ON (id) id, uuid, type, name, tenant, project, user_id,"
	" flavor, labels, host, first_seen_ns, last_seen_ns FROM tally_stage_resources ORDER BY id, ord DESC"
	" ON CONFLICT (id) DO UPDATE SET " RESOURCE_SEEN;
/* after the attributes: the descriptions that are the newest */
static const char merge_descriptions[] =
	"UPDATE resources r SET " RESOURCE_DESC_SET " FROM (SELECT DISTINCT ON (id) * FROM tally_stage_resources"
	" ORDER BY id, ord DESC) s WHERE r.id = s.id AND " RESOURCE_DESC_NEWER;
static const char merge_attrs[] =
	"INSERT INTO resource_attrs (resource_id, since_ns, name, tenant, project, user_id, flavor, labels)"
	" SELECT DISTINCT ON (resource_id, since_ns) resource_id, since_ns, name, tenant, project, user_id, flavor,"
	" labels FROM tally_stage_attrs ORDER BY resource_id, since_ns, ord DESC"
	" ON CONFLICT (resource_id, since_ns) DO UPDATE SET name = excluded.name, tenant = excluded.tenant,"
	" project = excluded.project, user_id = excluded.user_id, flavor = excluded.flavor,"
	" labels = excluded.labels";
static const char merge_usage[] =
	"INSERT INTO usage AS u (" USAGE_COLS ") SELECT " USAGE_COLS " FROM tally_stage_usage WHERE round = $1"
	" AND NOT known ON CONFLICT (resource_id, meter_id, device, hour_ns) DO UPDATE SET"
	" quantity = u.quantity + excluded.quantity, quantity_real = u.quantity_real + excluded.quantity_real,"
	" spanned_ns = u.spanned_ns + excluded.spanned_ns, covered_ns = u.covered_ns + excluded.covered_ns,"
	" samples = u.samples + excluded.samples";
/* with a series written twice in the commit: the last one (%s: the
 * DISTINCT ON, the WHERE and the ORDER BY, or nothing) */
static const char merge_series[] =
	"INSERT INTO series (" SERIES_COLS ") SELECT %s " SERIES_COLS " FROM tally_stage_series %s %s"
	" ON CONFLICT (resource_id, meter_id, device, agent) DO UPDATE SET last_ns = excluded.last_ns,"
	" origin_ns = excluded.origin_ns, kind = excluded.kind, last_value = excluded.last_value,"
	" last_value_real = excluded.last_value_real, flags = excluded.flags";

/* The rows the aggregator knows to be in the ledger (the exists hint of
 * ledger.h; a usage row of the first round, a series written once) are
 * merged by an UPDATE joined on the primary key, one index probe a row:
 * INSERT ... ON CONFLICT DO UPDATE also locks each row it updates, which
 * is another WAL record a row (a commit of 100,000 series: those two
 * merges 12 and 18 % faster, its COMMIT's flush half as long). The join
 * is kept to the index (no hash join over a whole table, whose size is
 * the ledger's, not the commit's). A hint that was
 * wrong (fewer rows updated than staged as known) is made good by
 * inserting the known rows that are not there; the commit lock keeps
 * every other writer out between the two, so what is missing after the
 * UPDATE is what it did not find. */
static const char join_by_index[] = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";
static const char join_any[] = "SET LOCAL enable_hashjoin = DEFAULT; SET LOCAL enable_mergejoin = DEFAULT";
static const char update_usage[] =
	"UPDATE usage u SET quantity = u.quantity + s.quantity, quantity_real = u.quantity_real + s.quantity_real,"
	" spanned_ns = u.spanned_ns + s.spanned_ns, covered_ns = u.covered_ns + s.covered_ns,"
	" samples = u.samples + s.samples FROM tally_stage_usage s WHERE s.round = 0 AND s.known"
	" AND u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device"
	" AND u.hour_ns = s.hour_ns";
static const char insert_usage_known[] =
	"INSERT INTO usage (" USAGE_COLS ") SELECT " USAGE_COLS " FROM tally_stage_usage WHERE round = 0 AND known"
	" ON CONFLICT (resource_id, meter_id, device, hour_ns) DO NOTHING";
static const char update_series[] =
	"UPDATE series d SET last_ns = s.last_ns, origin_ns = s.origin_ns, kind = s.kind, last_value = s.last_value,"
	" last_value_real = s.last_value_real, flags = s.flags FROM tally_stage_series s WHERE s.known"
	" AND d.resource_id = s.resource_id AND d.meter_id = s.meter_id AND d.device = s.device AND d.agent = s.agent";
static const char insert_series_known[] =
	"INSERT INTO series (" SERIES_COLS ") SELECT " SERIES_COLS " FROM tally_stage_series WHERE known"
	" ON CONFLICT (resource_id, meter_id, device, agent) DO NOTHING";

static const char merge_events[] =
	"INSERT INTO events (resource_id, time_ns, agent, type, reason) SELECT resource_id, time_ns, agent, type,"
	" reason FROM tally_stage_events ORDER BY ord";

/* A usage merge failed: a row past 2^63 - 1 is said as such. */
static int usage_failed(struct tally_err *e)
{
	if (e && e->code == -ERANGE)
		return err_prefix(e, "the usage of a (resource, meter, hour) row would pass 2^63 - 1 base"
				  " units: refused, the transaction rolled back");
	return e ? e->code : -EIO;
}

/* The known rows of a table by update_sql, then those the hint was
 * wrong about by insert_sql; known: how many were staged. 0 or an errno. */
static int merge_known(struct pg_ledger *l, const char *update_sql, const char *insert_sql, int64_t known,
		       const char *what, struct tally_err *e)
{
	PGresult *r = pgc_query(&l->pc, update_sql, 0, NULL, what, e);
	if (r && strtoll(PQcmdTuples(r), NULL, 10) != known) {
		PQclear(r);
		r = pgc_query(&l->pc, insert_sql, 0, NULL, what, e);
	}
	if (!r)
		return e ? e->code : -EIO;
	PQclear(r);
	return 0;
}

static int flush(struct pg_ledger *l, struct tally_err *e)
{
	int rc;
	if ((rc = cb_copy(l, &l->res, "tally_stage_resources", e)) ||
	    (rc = cb_copy(l, &l->attrs, "tally_stage_attrs", e)) ||
	    (rc = cb_copy(l, &l->usage, "tally_stage_usage", e)) ||
	    (rc = cb_copy(l, &l->series, "tally_stage_series", e)) ||
	    (rc = cb_copy(l, &l->events, "tally_stage_events", e)))
		return rc;
	if ((l->res.rows && (rc = pgc_exec(&l->pc, merge_resources, "cannot write resources", e))) ||
	    (l->attrs.rows && (rc = pgc_exec(&l->pc, merge_attrs, "cannot write resource attributes", e))) ||
	    (l->res.rows && (rc = pgc_exec(&l->pc, merge_descriptions, "cannot write resources", e))))
		return rc;
	bool series_known = l->skn && l->skeys.most == 1;
	bool by_index = l->ukn || series_known;
	if (by_index && (rc = pgc_exec(&l->pc, join_by_index, "cannot plan the merges", e)))
		return rc;
	if (l->ukn && merge_known(l, update_usage, insert_usage_known, l->ukn, "cannot write usage", e))
		return usage_failed(e);
	for (int round = 0; round < l->ukeys.most && l->usage.rows > l->ukn; round++) {
		struct pgnum n;
		const char *p[] = { pgn_i64(&n, round) };
		PGresult *r = pgc_query(&l->pc, merge_usage, 1, p, "cannot write usage", e);
		if (!r)
			return usage_failed(e);
		PQclear(r);
	}
	if ((series_known &&
	     (rc = merge_known(l, update_series, insert_series_known, l->skn, "cannot write series state", e))) ||
	    (by_index && (rc = pgc_exec(&l->pc, join_any, "cannot plan the merges", e))))
		return rc;
	char ms[sizeof(merge_series) + 160];
	bool dup = l->skeys.most > 1;
	snprintf(ms, sizeof(ms), merge_series, dup ? "DISTINCT ON (resource_id, meter_id, device, agent)" : "",
		 series_known ? "WHERE NOT known" : "",
		 dup ? "ORDER BY resource_id, meter_id, device, agent, ord DESC" : "");
	int64_t rest = l->series.rows - (series_known ? l->skn : 0);
	if ((rest && (rc = pgc_exec(&l->pc, ms, "cannot write series state", e))) ||
	    (l->events.rows && (rc = pgc_exec(&l->pc, merge_events, "cannot write events", e))))
		return rc;
	return 0;
}

/* The connection went while COMMIT was on its way: did it land? Asked on
 * a new connection: this commit's link of the chain is there (when it
 * wrote usage), or every agent it moved on stands where it put it. No
 * answer (the server is still away) is a failed commit; if it had landed
 * after all, the next commit finds its agents moved on (-ESTALE) and the
 * aggregator takes its state from the ledger (aggregator.c, resync): nothing
 * is counted twice. */
static bool landed(struct pg_ledger *l, const unsigned char hash[CHAIN_HASH_LEN])
{
	struct tally_err ignore = { 0 };
	struct pgnum n;
	PGresult *r;
	bool yes = l->touched.n || l->n_agents;
	if (!yes || pgc_ensure(&l->pc, &ignore)) {
		l->staged = false;
		return false;
	}
	l->staged = false;           /* a new session: its temporary tables are gone */
	if (l->touched.n) {
		const char *p[] = { pgn_i64(&n, l->head_id) };
		r = pgc_query(&l->pc, "SELECT hash FROM chain WHERE id = $1", 1, p, "", &ignore);
		yes = r && PQntuples(r) == 1 && PQgetlength(r, 0, 0) == CHAIN_HASH_LEN &&
		      !memcmp(PQgetvalue(r, 0, 0), hash, CHAIN_HASH_LEN);
		PQclear(r);
	}
	for (size_t i = 0; yes && i < l->n_agents; i++) {
		const char *p[] = { l->agents[i].name };
		r = pgc_query(&l->pc, "SELECT last_seq FROM agents WHERE agent = $1", 1, p, "", &ignore);
		yes = r && PQntuples(r) == 1 && (uint64_t)pgv_i64(r, 0, 0) == l->agents[i].seq;
		PQclear(r);
	}
	return yes;
}

/* After flush has merged: each hour the commit wrote after it (and before
 * it, for those asked ahead: their rows were read on the side while flush
 * ran), the precheck, and the chain's link. */
static int seal(struct pg_ledger *l, const char *hours, bool ahead, struct tally_err *e)
{
	int rc;
	if (ahead) {
		if ((!l->digested && (rc = digests_ahead(l, hours, l->before, l->after, e))) ||
		    (rc = precheck(l, hours, l->before, e)))
			return rc;
	} else if ((rc = hash_hours(&l->pc, l->touched.v, l->touched.n, hours, l->after, e))) {
		return rc;
	}
	return chain_append(l, hours, l->after, e);
}

/* The chain's checks, the merges, the chain's link, then COMMIT: all or
 * nothing, as on SQLite. */
static int pg_commit(struct ledger *lb, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	int64_t head_id = l->head_id;
	unsigned char head[CHAIN_HASH_LEN];
	char *hours = NULL;
	bool ahead = asked_ahead(l);
	int rc = 0;
	assert(l->in_tx);
	memcpy(head, l->head, CHAIN_HASH_LEN);
	if (l->touched.n) {
		size_t len = l->touched.n * 22 + 4;
		hours = fault_malloc(len);
		l->before = fault_calloc(l->touched.n, sizeof(*l->before));
		l->after = fault_calloc(l->touched.n, sizeof(*l->after));
		if (!hours || !l->before || !l->after) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		hours_param(l, hours, len);
		/* hours not asked ahead are hashed as they are now, before flush merges */
		if (!ahead && ((rc = hash_hours(&l->pc, l->touched.v, l->touched.n, hours, l->before, e)) ||
			       (rc = precheck(l, hours, l->before, e))))
			goto out;
	}
	l->digested = false;
	if (ahead && l->touched.n) {
		l->pc.idle = merge_early;
		l->pc.idle_ctx = l;
	}
	rc = flush(l, e);
	l->pc.idle = NULL;
	if (rc)
		goto out;
	if (l->touched.n && (rc = seal(l, hours, ahead, e)))
		goto out;
	if (fault_fail(FAULT_COMMIT)) {
		rc = err_set(e, -ENOSPC, "%s: cannot commit: database or disk is full (injected)", l->pc.name);
		goto out;
	}
	if ((rc = pgc_exec(&l->pc, "COMMIT", "cannot commit", e))) {
		if (rc != -ENOTCONN || !landed(l, l->head))
			goto out;
		rc = 0;              /* it did land */
		if (e)
			memset(e, 0, sizeof(*e));
	}
	l->in_tx = false;
	tx_reset(l);
out:
	free(hours);
	free(l->before);
	free(l->after);
	l->before = l->after = NULL;
	if (rc) {
		/* the head stays where the ledger has it */
		l->head_id = head_id;
		memcpy(l->head, head, CHAIN_HASH_LEN);
	}
	return rc;
}

/* ---- the rows ---- */

static int pg_meter_id(struct ledger *lb, const char *name, const char *kind, const char *unit, int64_t *id,
		       struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	const char *p[] = { name, kind, unit };
	PGresult *r = pgc_query(&l->pc, "WITH n AS (INSERT INTO meters (name, kind, unit) VALUES ($1, $2, $3)"
				" ON CONFLICT (name) DO NOTHING RETURNING id)"
				" SELECT id FROM n UNION ALL SELECT id FROM meters WHERE name = $1", 3, p,
				"cannot add meter", e);
	if (!r)
		return e ? e->code : -EIO;
	int rc = PQntuples(r) >= 1 ? 0 : err_set(e, -EIO, "%s: meter '%s' has no id", l->pc.name, name);
	if (!rc)
		*id = pgv_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

/* A resource this writer has not seen in the ledger: its row by uuid,
 * with the id the ledger has for it or a new one, at once (the commit's
 * other rows need the id). Under the commit lock: no other writer inserts
 * it meanwhile. */
static int put_new_resource(struct pg_ledger *l, struct ledger_resource *r, struct tally_err *e)
{
	const struct resource_meta *m = &r->meta;
	struct pgnum a, b, c, d;
	const char *p[] = { m->resource, m->type, m->name, m->tenant, m->project, m->user, m->flavor, m->labels,
			    r->host, pgn_i64(&a, r->first_seen_ns), pgn_i64(&b, r->last_seen_ns), pgn_i64(&c, m->time_ns) };
	PGresult *res = pgc_query(&l->pc, "INSERT INTO resources AS r (uuid, type, name, tenant, project, user_id, flavor,"
				  " labels, host, first_seen_ns, last_seen_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
				  " $10, $11) ON CONFLICT (uuid) DO UPDATE SET " RESOURCE_SEEN " RETURNING id", 11, p,
				  "cannot write resource", e);
	if (!res)
		return e ? e->code : -EIO;
	r->id = pgv_i64(res, 0, 0);
	PQclear(res);
	/* another writer's row: its description only when this one's is newer */
	const char *q[] = { pgn_i64(&d, r->id), m->type, m->name, m->tenant, m->project, m->user, m->flavor, m->labels,
			    p[11] };
	if (!(res = pgc_query(&l->pc, "UPDATE resources r SET " RESOURCE_DESC_SET " FROM (SELECT $2::text AS type,"
			      " $3::text AS name, $4::text AS tenant, $5::text AS project, $6::text AS user_id, $7::text"
			      " AS flavor, $8::text AS labels, $9::bigint AS meta_ns) s WHERE r.id = $1 AND "
			      RESOURCE_DESC_NEWER, 9, q, "cannot write resource", e)))
		return e ? e->code : -EIO;
	PQclear(res);
	return 0;
}

static int pg_put_resource(struct ledger *lb, struct ledger_resource *r, bool known, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	struct copybuf *c = &l->res;
	const struct resource_meta *m = &r->meta;
	if (!known)
		return put_new_resource(l, r, e);
	cb_i64(c, l->ord++, '\t');
	cb_i64(c, r->id, '\t');
	cb_text(c, m->resource, '\t');
	cb_text(c, m->type, '\t');
	cb_text(c, m->name, '\t');
	cb_text(c, m->tenant, '\t');
	cb_text(c, m->project, '\t');
	cb_text(c, m->user, '\t');
	cb_text(c, m->flavor, '\t');
	cb_text(c, m->labels, '\t');
	cb_text(c, r->host, '\t');
	cb_i64(c, r->first_seen_ns, '\t');
	cb_i64(c, r->last_seen_ns, '\t');
	cb_i64(c, m->time_ns, '\n');
	c->rows++;
	return c->bad ? err_set(e, -ENOMEM, "out of memory") : 0;
}

static int pg_put_attrs(struct ledger *lb, int64_t resource_id, const struct resource_meta *m, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	struct copybuf *c = &l->attrs;
	cb_i64(c, l->ord++, '\t');
	cb_i64(c, resource_id, '\t');
	cb_i64(c, m->time_ns, '\t');
	cb_text(c, m->name, '\t');
	cb_text(c, m->tenant, '\t');
	cb_text(c, m->project, '\t');
	cb_text(c, m->user, '\t');
	cb_text(c, m->flavor, '\t');
	cb_text(c, m->labels, '\n');
	c->rows++;
	return c->bad ? err_set(e, -ENOMEM, "out of memory") : 0;
}

static int pg_add_usage(struct ledger *lb, const struct ledger_usage *u, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	struct copybuf *c = &l->usage;
	size_t at;
	char key[TALLY_DEV_MAX + 32];
	int64_t ints[3] = { u->resource_id, u->meter_id, u->hour_ns };
	size_t kl = key_of(key, sizeof(key), ints, 3, u->device, NULL);
	int round = kl ? key_times(&l->ukeys, key, kl) : -EINVAL;
	if (round < 0)
		return err_set(e, round, "%s", round == -ENOMEM ? "out of memory" : "a device name too long");
	if (!chain_touched_find(&l->touched, u->hour_ns, &at)) {
		if (chain_touched_insert(&l->touched, at, u->hour_ns, 0))
			return err_set(e, -ENOMEM, "out of memory");
		pre_send(l, u->hour_ns);
	}
	/* kept for merge_ahead while it can work the hours out (it needs all) */
	if (l->touched.n <= PRE_HOURS && chain_deltas_add(&l->deltas, u))
		return err_set(e, -ENOMEM, "out of memory");
	bool known = u->exists && round == 0;
	cb_i64(c, round, '\t');
	cb_text(c, known ? "t" : "f", '\t');
	l->ukn += known;
	cb_i64(c, u->resource_id, '\t');
	cb_i64(c, u->meter_id, '\t');
	cb_text(c, u->device, '\t');
	cb_i64(c, u->hour_ns, '\t');
	if (u->is_real) {
		cb_null(c, '\t');
		cb_f64(c, u->qty_real, '\t');
	} else {
		cb_i64(c, u->qty, '\t');
		cb_null(c, '\t');
	}
	cb_i64(c, u->spanned_ns, '\t');
	cb_i64(c, u->covered_ns, '\t');
	cb_i64(c, u->samples, '\n');
	c->rows++;
	return c->bad ? err_set(e, -ENOMEM, "out of memory") : 0;
}

static const char *kind_text(int kind)
{
	return kind == SAMPLE_GAUGE ? "gauge" : kind == SAMPLE_DELTA ? "delta" : "cumulative";
}

static int pg_put_series(struct ledger *lb, const struct ledger_series *s, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	struct copybuf *c = &l->series;
	char key[TALLY_DEV_MAX + TALLY_ID_MAX + 32];
	int64_t ints[2] = { s->resource_id, s->meter_id };
	size_t kl = key_of(key, sizeof(key), ints, 2, s->device, s->agent);
	int times = kl ? key_times(&l->skeys, key, kl) : -EINVAL;
	if (times < 0)
		return err_set(e, times, "%s", times == -ENOMEM ? "out of memory" : "a device or agent name too long");
	cb_i64(c, l->ord++, '\t');
	cb_text(c, s->exists ? "t" : "f", '\t');
	l->skn += s->exists != 0;
	cb_i64(c, s->resource_id, '\t');
	cb_i64(c, s->meter_id, '\t');
	cb_text(c, s->device, '\t');
	cb_text(c, s->agent, '\t');
	cb_i64(c, s->last_ns, '\t');
	cb_i64(c, s->origin_ns, '\t');
	cb_text(c, kind_text(s->kind), '\t');
	if (s->kind == SAMPLE_GAUGE) {
		cb_null(c, '\t');
		cb_f64(c, s->last_gauge, '\t');
	} else {
		cb_i64(c, (int64_t)s->last_counter, '\t');   /* its bit pattern, as on SQLite */
		cb_null(c, '\t');
	}
	cb_i64(c, s->flags, '\n');
	c->rows++;
	return c->bad ? err_set(e, -ENOMEM, "out of memory") : 0;
}

static int pg_add_event(struct ledger *lb, int64_t resource_id, const char *agent, const struct lifecycle_event *ev,
			struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	struct copybuf *c = &l->events;
	cb_i64(c, l->ord++, '\t');
	cb_i64(c, resource_id, '\t');
	cb_i64(c, ev->time_ns, '\t');
	cb_text(c, agent, '\t');
	cb_text(c, ev->type, '\t');
	cb_text(c, ev->reason, '\n');
	c->rows++;
	return c->bad ? err_set(e, -ENOMEM, "out of memory") : 0;
}

/* Under the commit lock (taken at begin): the agent's row moves on from
 * from_seq, or the commit must not count. */
static int pg_put_agent(struct ledger *lb, const struct ledger_agent *a, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	struct pgnum s1, s2, s3, s4, s5, s6, s7, s8;
	char spool[2 * LEDGER_SPOOL_ID_LEN + 1];
	hexs(a->spool_id, LEDGER_SPOOL_ID_LEN, spool);
	const char *p[] = { a->agent, pgn_i64(&s1, (int64_t)a->last_seq), pgn_i64(&s2, a->last_time_ns),
			    pgn_i64(&s3, a->batches), a->has_spool ? spool : NULL, pgn_i64(&s5, (int64_t)a->spool_first_seq),
			    pgn_i64(&s6, a->contact_ns), pgn_i64(&s7, a->spool_batches), pgn_i64(&s8, a->spool_bytes),
			    pgn_i64(&s4, (int64_t)a->from_seq) };
	PGresult *r = pgc_query(&l->pc, "UPDATE agents SET last_seq = $2, last_time_ns = $3, batches = $4,"
				" spool_id = decode($5, 'hex'), spool_first_seq = $6, contact_ns = $7, spool_batches = $8,"
				" spool_bytes = $9 WHERE agent = $1 AND last_seq = $10", 10, p, "cannot write agent", e);
	int rc = 0;
	if (!r)
		return e ? e->code : -EIO;
	bool done = atoi(PQcmdTuples(r)) == 1;
	PQclear(r);
	if (!done && a->from_seq == 0) {
		if (!(r = pgc_query(&l->pc, "INSERT INTO agents (agent, last_seq, last_time_ns, batches, spool_id,"
				    " spool_first_seq, contact_ns, spool_batches, spool_bytes) VALUES ($1, $2, $3, $4,"
				    " decode($5, 'hex'), $6, $7, $8, $9) ON CONFLICT (agent) DO NOTHING", 9, p,
				    "cannot write agent", e)))
			return e ? e->code : -EIO;
		done = atoi(PQcmdTuples(r)) == 1;
		PQclear(r);
	}
	if (!done) {
		const char *q[] = { a->agent };
		char now[32] = "none";
		if ((r = pgc_query(&l->pc, "SELECT last_seq FROM agents WHERE agent = $1", 1, q, "cannot read agent",
				   NULL))) {
			if (PQntuples(r) == 1)
				snprintf(now, sizeof(now), "%llu", (unsigned long long)pgv_i64(r, 0, 0));
			PQclear(r);
		}
		rc = err_set(e, -ESTALE, "%s: agent '%s': its last batch in the ledger is no longer seq %llu but %s:"
			     " another writer committed batches of it meanwhile", l->pc.name, a->agent,
			     (unsigned long long)a->from_seq, now);
	} else if (vec_reserve((void **)&l->agents, &l->cap_agents, l->n_agents + 1, sizeof(*l->agents), 16)) {
		rc = err_set(e, -ENOMEM, "out of memory");
	} else {
		str_copy(l->agents[l->n_agents].name, a->agent, sizeof(l->agents[0].name));
		l->agents[l->n_agents++].seq = a->last_seq;
	}
	return rc;
}

/* Run sql with params, no rows back. */
static int run(struct pg_ledger *l, const char *sql, int n, const char *const *p, const char *what,
	       struct tally_err *e)
{
	PGresult *r;
	if (fault_fail(FAULT_WRITE))
		return err_set(e, -ENOSPC, "%s: %s: database or disk is full (injected)", l->pc.name, what);
	if (!(r = pgc_query(&l->pc, sql, n, p, what, e)))
		return e ? e->code : -EIO;
	PQclear(r);
	return 0;
}

/* usage_events: immediate, so that an import sees the events it recorded
 * earlier in the same transaction (under the commit lock: one writer at a
 * time checks and records a key). */
static int pg_import_seen(struct ledger *lb, const char *source, const char *event_id, bool *found, char digest[65],
			  int64_t *imported_ns, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	const char *p[] = { source, event_id };
	PGresult *r = pgc_query(&l->pc, "SELECT digest, imported_ns FROM usage_events WHERE source = $1 AND event_id = $2",
				2, p, "cannot read imported events", e);
	*found = false;
	if (!r)
		return e ? e->code : -EIO;
	if (PQntuples(r) == 1) {
		*found = true;
		snprintf(digest, 65, "%s", pgv_text(r, 0, 0));
		*imported_ns = pgv_i64(r, 0, 1);
	}
	PQclear(r);
	return 0;
}

static int pg_resource_tenant(struct ledger *lb, const char *uuid, bool *found, char *tenant, size_t len,
			      struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	const char *p[] = { uuid };
	PGresult *r = pgc_query(&l->pc, "SELECT tenant FROM resources WHERE uuid = $1", 1, p, "cannot read resources", e);
	*found = false;
	if (!r)
		return e ? e->code : -EIO;
	if (PQntuples(r) == 1) {
		*found = true;
		snprintf(tenant, len, "%s", pgv_text(r, 0, 0));
	}
	PQclear(r);
	return 0;
}

static int pg_import_put(struct ledger *lb, const struct ledger_import_event *ev, struct tally_err *e)
{
	struct pgnum a, b, c, d, f, g;
	const char *p[] = { ev->source, ev->event_id, pgn_i64(&a, ev->resource_id), pgn_i64(&b, ev->meter_id), ev->device,
			    pgn_i64(&c, ev->time_ns), pgn_i64(&d, ev->end_ns), pgn_i64(&f, ev->quantity), ev->digest,
			    pgn_i64(&g, ev->imported_ns) };
	return run(L(lb), "INSERT INTO usage_events (source, event_id, resource_id, meter_id, device, time_ns, end_ns,"
		   " quantity, digest, imported_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", 10, p,
		   "cannot record the imported event", e);
}

static int pg_put_alert(struct ledger *lb, const struct ledger_alert *a, struct tally_err *e)
{
	struct pgnum n1, n2, n3, n4;
	const char *p[] = { a->key, a->labels, a->annotations, a->rule, a->tenant, a->subject, a->device, a->state,
			    pgn_i64(&n1, a->active_ns), pgn_i64(&n2, a->fired_ns), pgn_i64(&n3, a->resolved_ns),
			    pgn_f64(&n4, a->value) };
	return run(L(lb), "INSERT INTO alerts (key, labels, annotations, rule, tenant, subject, device, state,"
		   " active_ns, fired_ns, resolved_ns, value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
		   " ON CONFLICT (key) DO UPDATE SET labels = excluded.labels, annotations = excluded.annotations,"
		   " rule = excluded.rule, tenant = excluded.tenant, subject = excluded.subject,"
		   " device = excluded.device, state = excluded.state, active_ns = excluded.active_ns,"
		   " fired_ns = excluded.fired_ns, resolved_ns = excluded.resolved_ns, value = excluded.value",
		   12, p, "cannot write an alert", e);
}

static int pg_del_alert(struct ledger *lb, const char *key, struct tally_err *e)
{
	const char *p[] = { key };
	return run(L(lb), "DELETE FROM alerts WHERE key = $1", 1, p, "cannot delete an alert", e);
}

static int pg_put_window_point(struct ledger *lb, const char *key, int64_t t_ns, double value, struct tally_err *e)
{
	struct pgnum n1, n2;
	const char *p[] = { key, pgn_i64(&n1, t_ns), pgn_f64(&n2, value) };
	return run(L(lb), "INSERT INTO alert_windows (key, t_ns, value) VALUES ($1, $2, $3)"
		   " ON CONFLICT (key, t_ns) DO UPDATE SET value = excluded.value", 3, p,
		   "cannot write an alert window", e);
}

static int pg_trim_window(struct ledger *lb, const char *key, int64_t before_ns, struct tally_err *e)
{
	struct pgnum n;
	const char *p[] = { key, pgn_i64(&n, before_ns) };
	if (before_ns == INT64_MAX)
		return run(L(lb), "DELETE FROM alert_windows WHERE key = $1", 1, p,
			   "cannot delete from an alert window", e);
	return run(L(lb), "DELETE FROM alert_windows WHERE key = $1 AND t_ns < $2", 2, p,
		   "cannot delete from an alert window", e);
}

static int pg_last_event(struct ledger *lb, const char *uuid, const char *agent, const char *types, char *type,
			 size_t len, int64_t *t_ns, struct tally_err *e)
{
	struct pg_ledger *l = L(lb);
	const char *p[] = { uuid, agent, types };
	PGresult *r = pgc_query(&l->pc, "SELECT type, time_ns FROM events WHERE resource_id ="
				" (SELECT id FROM resources WHERE uuid = $1) AND agent = $2"
				" AND strpos($3, ',' || type || ',') > 0 ORDER BY time_ns DESC, id DESC LIMIT 1", 3, p,
				"cannot read events", e);
	*t_ns = 0;
	type[0] = '\0';
	if (!r)
		return e ? e->code : -EIO;
	if (PQntuples(r) == 1) {
		str_copy(type, pgv_text(r, 0, 0), len);
		*t_ns = pgv_i64(r, 0, 1);
	}
	PQclear(r);
	return 0;
}

/* ---- loaders: every row, through a cursor in a read-only transaction
 * of their own (or the open one) ---- */

struct load {
	void *fn, *ctx;
};

static int load(struct pg_ledger *l, const char *sql, pgc_row_fn row, void *fn, void *ctx, const char *what,
		struct tally_err *e)
{
	struct load x = { fn, ctx };
	bool own = !l->in_tx;
	int rc;
	if (own && ((rc = ensure(l, e)) || (rc = pgc_exec(&l->pc, "BEGIN READ ONLY", what, e))))
		return rc;
	rc = pgc_each(&l->pc, sql, 0, NULL, row, &x, what, e);
	if (own)
		PQclear(PQexec(l->pc.c, rc ? "ROLLBACK" : "COMMIT"));
	return rc;
}

static void col_copy(const PGresult *r, int i, int c, char *dst, size_t len)
{
	str_copy(dst, pgv_text(r, i, c), len);
}

static int row_resource(void *ctx, const PGresult *r, int i)
{
	struct load *x = ctx;
	struct ledger_resource lr;
	memset(&lr, 0, sizeof(lr));
	lr.id = pgv_i64(r, i, 0);
	col_copy(r, i, 1, lr.meta.resource, sizeof(lr.meta.resource));
	col_copy(r, i, 2, lr.meta.type, sizeof(lr.meta.type));
	col_copy(r, i, 3, lr.meta.name, sizeof(lr.meta.name));
	col_copy(r, i, 4, lr.meta.tenant, sizeof(lr.meta.tenant));
	col_copy(r, i, 5, lr.meta.project, sizeof(lr.meta.project));
	col_copy(r, i, 6, lr.meta.user, sizeof(lr.meta.user));
	col_copy(r, i, 7, lr.meta.flavor, sizeof(lr.meta.flavor));
	col_copy(r, i, 8, lr.meta.labels, sizeof(lr.meta.labels));
	col_copy(r, i, 9, lr.host, sizeof(lr.host));
	lr.first_seen_ns = pgv_i64(r, i, 10);
	lr.last_seen_ns = pgv_i64(r, i, 11);
	return ((ledger_resource_fn)x->fn)(x->ctx, &lr);
}

static int pg_load_resources(struct ledger *lb, ledger_resource_fn fn, void *ctx, struct tally_err *e)
{
	return load(L(lb), "SELECT id, uuid, type, name, tenant, project, user_id, flavor, labels, host,"
		    " first_seen_ns, last_seen_ns FROM resources ORDER BY id", row_resource, (void *)fn, ctx,
		    "cannot read resources", e);
}

static int row_series(void *ctx, const PGresult *r, int i)
{
	struct load *x = ctx;
	struct ledger_series s;
	memset(&s, 0, sizeof(s));
	s.resource_id = pgv_i64(r, i, 0);
	s.meter_id = pgv_i64(r, i, 1);
	s.device = pgv_text(r, i, 2);
	s.agent = pgv_text(r, i, 3);
	s.last_ns = pgv_i64(r, i, 4);
	s.origin_ns = pgv_i64(r, i, 5);
	const char *kind = pgv_text(r, i, 6);
	s.kind = !strcmp(kind, "gauge") ? SAMPLE_GAUGE : !strcmp(kind, "delta") ? SAMPLE_DELTA : SAMPLE_CUMULATIVE;
	if (s.kind == SAMPLE_GAUGE)
		s.last_gauge = pgv_f64(r, i, 8);
	else
		s.last_counter = (uint64_t)pgv_i64(r, i, 7);
	s.flags = (int)pgv_i64(r, i, 9);
	return ((ledger_series_fn)x->fn)(x->ctx, &s);
}

static int pg_load_series(struct ledger *lb, ledger_series_fn fn, void *ctx, struct tally_err *e)
{
	return load(L(lb), "SELECT " SERIES_COLS " FROM series", row_series, (void *)fn, ctx, "cannot read series", e);
}

static int row_agent(void *ctx, const PGresult *r, int i)
{
	struct load *x = ctx;
	struct ledger_agent a = {
		.agent = pgv_text(r, i, 0), .last_seq = (uint64_t)pgv_i64(r, i, 1), .last_time_ns = pgv_i64(r, i, 2),
		.batches = pgv_i64(r, i, 3), .spool_first_seq = (uint64_t)pgv_i64(r, i, 5),
		.contact_ns = pgv_i64(r, i, 6), .spool_batches = pgv_i64(r, i, 7), .spool_bytes = pgv_i64(r, i, 8),
	};
	if (PQgetlength(r, i, 4) == LEDGER_SPOOL_ID_LEN) {
		a.has_spool = true;
		memcpy(a.spool_id, PQgetvalue(r, i, 4), LEDGER_SPOOL_ID_LEN);
	}
	return ((ledger_agent_fn)x->fn)(x->ctx, &a);
}

static int pg_load_agents(struct ledger *lb, ledger_agent_fn fn, void *ctx, struct tally_err *e)
{
	return load(L(lb), "SELECT agent, last_seq, last_time_ns, batches, spool_id, spool_first_seq, contact_ns,"
		    " spool_batches, spool_bytes FROM agents", row_agent, (void *)fn, ctx, "cannot read agents", e);
}

static int row_alert(void *ctx, const PGresult *r, int i)
{
	struct load *x = ctx;
	struct ledger_alert a = {
		.key = pgv_text(r, i, 0), .labels = pgv_text(r, i, 1), .annotations = pgv_text(r, i, 2),
		.rule = pgv_text(r, i, 3), .tenant = pgv_text(r, i, 4), .subject = pgv_text(r, i, 5),
		.device = pgv_text(r, i, 6), .state = pgv_text(r, i, 7), .active_ns = pgv_i64(r, i, 8),
		.fired_ns = pgv_i64(r, i, 9), .resolved_ns = pgv_i64(r, i, 10), .value = pgv_f64(r, i, 11),
	};
	return ((ledger_alert_fn)x->fn)(x->ctx, &a);
}

static int pg_load_alerts(struct ledger *lb, ledger_alert_fn fn, void *ctx, struct tally_err *e)
{
	return load(L(lb), "SELECT key, labels, annotations, rule, tenant, subject, device, state, active_ns,"
		    " fired_ns, resolved_ns, value FROM alerts ORDER BY key", row_alert, (void *)fn, ctx,
		    "cannot read alerts", e);
}

static int row_window(void *ctx, const PGresult *r, int i)
{
	struct load *x = ctx;
	return ((ledger_window_fn)x->fn)(x->ctx, pgv_text(r, i, 0), pgv_i64(r, i, 1), pgv_f64(r, i, 2));
}

static int pg_load_windows(struct ledger *lb, ledger_window_fn fn, void *ctx, struct tally_err *e)
{
	return load(L(lb), "SELECT key, t_ns, value FROM alert_windows ORDER BY key, t_ns", row_window, (void *)fn,
		    ctx, "cannot read alert windows", e);
}

/* ---- checks without the writer ---- */

struct pg_snap {
	struct ledger_snap base;
	struct pgc pc;
};

static int pg_snap_open(struct ledger_snap **out, const char *location, struct tally_err *e)
{
	struct pg_snap *s = fault_calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	s->base.be = &ledger_pg_backend;
	if ((rc = pgc_connect(&s->pc, location, "tally", e)) ||
	    (rc = pgc_exec(&s->pc, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot begin", e)) ||
	    (rc = pg_check_readable(&s->pc, e))) {
		pgc_close(&s->pc);
		free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}

static void pg_snap_close(struct ledger_snap *sb)
{
	struct pg_snap *s = (struct pg_snap *)sb;
	if (!s)
		return;
	pgc_close(&s->pc);
	free(s);
}

struct linking {
	ledger_link_fn fn;
	void *ctx;
};

static int link_row(void *ctx, const PGresult *r, int i)
{
	struct linking *x = ctx;
	struct chain_link k = {
		.id = pgv_i64(r, i, 0), .time_ns = pgv_i64(r, i, 1), .upgrade = pgv_i64(r, i, 2),
		.hours = pgv_i64(r, i, 3), .has_hour = !pgv_null(r, i, 5), .hour_ns = pgv_i64(r, i, 5),
		.rows = pgv_i64(r, i, 6), .altered = pgv_i64(r, i, 8),
	};
	if (PQgetlength(r, i, 4) == CHAIN_HASH_LEN)
		memcpy(k.hash, PQgetvalue(r, i, 4), CHAIN_HASH_LEN);
	if (PQgetlength(r, i, 7) == CHAIN_HASH_LEN)
		memcpy(k.digest, PQgetvalue(r, i, 7), CHAIN_HASH_LEN);
	return x->fn(x->ctx, &k);
}

static int pg_snap_links(struct ledger_snap *sb, ledger_link_fn fn, void *ctx, struct tally_err *e)
{
	struct pg_snap *s = (struct pg_snap *)sb;
	struct linking x = { fn, ctx };
	return pgc_each(&s->pc, "SELECT c.id, c.time_ns, c.upgrade, c.hours, c.hash, h.hour_ns, h.rows, h.digest,"
			" h.altered FROM chain c LEFT JOIN chain_hours h ON h.commit_id = c.id ORDER BY c.id, h.hour_ns",
			0, NULL, link_row, &x, "cannot read the hash chain", e);
}

struct rowing {
	ledger_row_fn fn;
	void *ctx;
};

static int usage_row(void *ctx, const PGresult *r, int i)
{
	struct rowing *x = ctx;
	struct chain_row row;
	row_of(r, i, &row);
	return x->fn(x->ctx, &row);
}

static int pg_snap_usage(struct ledger_snap *sb, ledger_row_fn fn, void *ctx, struct tally_err *e)
{
	struct pg_snap *s = (struct pg_snap *)sb;
	struct rowing x = { fn, ctx };
	return pgc_each(&s->pc, "SELECT " USAGE_COLS " FROM usage ORDER BY resource_id, meter_id, device, hour_ns", 0,
			NULL, usage_row, &x, "cannot read the usage", e);
}

static int pg_snap_orphans(struct ledger_snap *sb, int64_t *n, struct tally_err *e)
{
	struct pg_snap *s = (struct pg_snap *)sb;
	PGresult *r = pgc_query(&s->pc, "SELECT count(*) FROM chain_hours WHERE commit_id NOT IN (SELECT id FROM chain)",
				0, NULL, "cannot read the hash chain", e);
	if (!r)
		return e ? e->code : -EIO;
	*n = pgv_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* `tally ledger info` (ledger.h). */
static int pg_info(const char *location, struct ledger_info *out, struct tally_err *e)
{
	struct pgc pc;
	PGresult *r = NULL;
	int rc;
	if ((rc = pgc_connect(&pc, location, "tally", e)))
		return rc;
	if ((rc = pg_check_readable(&pc, e)))
		goto out;
	out->schema = LEDGER_SCHEMA_VERSION;
	if (!(r = pgc_query(&pc, "SELECT key, value FROM meta", 0, NULL, "cannot read its meta table", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *k = pgv_text(r, i, 0), *v = pgv_text(r, i, 1);
		if (!strcmp(k, "created_by"))
			str_copy(out->created_by, v, sizeof(out->created_by));
		else if (!strcmp(k, "upgraded_by"))
			str_copy(out->upgraded_by, v, sizeof(out->upgraded_by));
		else if (!strcmp(k, "written_by"))
			str_copy(out->written_by, v, sizeof(out->written_by));
		else if (!strcmp(k, "written_ns"))
			out->written_ns = strtoll(v, NULL, 10);
	}
	PQclear(r);
	if (!(r = pgc_query(&pc, "SELECT min(hour_ns), max(hour_ns), (SELECT coalesce(sum(pg_total_relation_size(c.oid)),"
			    " 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname ="
			    " current_schema() AND c.relkind = 'r') FROM usage", 0, NULL, "cannot read", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	out->has_usage = !pgv_null(r, 0, 0);
	out->first_hour_ns = pgv_i64(r, 0, 0);
	out->last_hour_ns = pgv_i64(r, 0, 1);
	out->bytes = pgv_i64(r, 0, 2);
out:
	PQclear(r);
	pgc_close(&pc);
	return rc;
}

/* `tally ledger check`: what the ledger is, and when the amcheck extension
 * is installed in the database, every B-tree index of the ledger checked
 * against its table (bt_index_check with heapallindexed). The server keeps
 * its own pages (and their checksums, when the cluster has them on). */
static int pg_check(const char *location, struct ledger_check *out, struct tally_err *e)
{
	struct pgc pc;
	PGresult *r = NULL;
	int64_t t0 = time_mono_ns();
	int rc;
	if ((rc = pgc_connect(&pc, location, "tally", e)))
		return rc;
	if ((rc = pg_check_readable(&pc, e)))
		goto out;
	if (!(r = pgc_query(&pc, "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint,"
			    " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck')"
			    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
			    " WHERE n.nspname = current_schema() AND c.relkind = 'r'", 0, NULL, "cannot check", e))) {
		rc = e ? e->code : -EIO;
		goto out;
	}
	out->bytes = pgv_i64(r, 0, 0);
	bool amcheck = pgv_bool(r, 0, 1);
	PQclear(r);
	r = NULL;
	str_copy(out->method, amcheck ? "amcheck of every index" : "no index check (amcheck is not installed)",
		 sizeof(out->method));
	if (amcheck) {
		PGresult *ix = pgc_query(&pc, "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON"
					 " c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a"
					 " ON a.oid = c.relam WHERE n.nspname = current_schema() AND a.amname = 'btree'"
					 " ORDER BY 1", 0, NULL, "cannot list the indexes", e);
		if (!ix) {
			rc = e ? e->code : -EIO;
			goto out;
		}
		for (int i = 0; i < PQntuples(ix); i++) {
			const char *p[] = { pgv_text(ix, i, 0) };
			struct tally_err ie = { 0 };
			PGresult *c = pgc_query(&pc, "SELECT bt_index_check($1::regclass, true)", 1, p, p[0], &ie);
			if (!c) {
				size_t used = strlen(out->first);
				if (out->problems < 3)
					snprintf(out->first + used, sizeof(out->first) - used, "%s%s", used ? "; " : "", ie.msg);
				out->problems++;
			}
			PQclear(c);
		}
		PQclear(ix);
	}
	out->ns = time_mono_ns() - t0;
out:
	PQclear(r);
	pgc_close(&pc);
	return rc;
}

/* ---- whole tables, for tally ledger copy (tables.h) ---- */

struct pg_copy {
	struct ledger_copy base;
	struct pg_ledger *w;         /* a target: the writer (its connection, commit lock) */
	struct pgc src;              /* a source */
	struct pgc *pc;
	bool committed;
	struct copybuf buf;
};

static void pg_copy_close(struct ledger_copy *cb)
{
	struct pg_copy *c = (struct pg_copy *)cb;
	if (!c)
		return;
	if (c->w) {
		if (!c->committed)
			pg_rollback(&c->w->base);
		pg_close(&c->w->base);
	} else {
		pgc_close(&c->src);
	}
	free(c->buf.b);
	free(c);
}

static int pg_copy_open(struct ledger_copy **out, const char *location, bool target, struct tally_err *e)
{
	struct pg_copy *c = fault_calloc(1, sizeof(*c));
	struct ledger *w = NULL;
	int rc;
	*out = NULL;
	if (!c)
		return err_set(e, -ENOMEM, "out of memory");
	c->base.be = &ledger_pg_backend;
	if (!target) {
		c->pc = &c->src;
		if ((rc = pgc_connect(&c->src, location, "tally", e)) || (rc = pg_check_readable(&c->src, e)) ||
		    (rc = pgc_exec(&c->src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "cannot begin", e)))
			goto fail;
		*out = &c->base;
		return 0;
	}
	if ((rc = pg_open(&w, location, e)))
		goto fail;
	c->w = L(w);
	c->pc = &c->w->pc;
	if ((rc = pg_begin(w, e)))
		goto fail;
	for (int i = 0; i < ledger_n_tables; i++) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", ledger_tables[i].name);
		PGresult *r = pgc_query(c->pc, sql, 0, NULL, "cannot read", e);
		if (!r) {
			rc = e ? e->code : -EIO;
			goto fail;
		}
		int64_t n = pgv_i64(r, 0, 0);
		PQclear(r);
		if (n) {
			rc = err_set(e, -EEXIST, "%s: not empty (%s holds %lld row%s): tally ledger copy writes only"
				     " into a new, empty ledger", c->pc->name, ledger_tables[i].name, (long long)n,
				     n == 1 ? "" : "s");
			goto fail;
		}
	}
	*out = &c->base;
	return 0;
fail:
	pg_copy_close(&c->base);
	return rc;
}

/* t's columns as PostgreSQL names them (a LCOL_NUM is two). */
static void columns(const struct ledger_table *t, char *out, size_t len)
{
	size_t o = 0;
	for (int i = 0; i < t->n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, t->col[i].type == LCOL_NUM ? "%s%s, %s_real" : "%s%s",
				      i ? ", " : "", t->col[i].name, t->col[i].name);
}

struct tupling {
	const struct ledger_table *t;
	ledger_tuple_fn fn;
	void *ctx;
};

static int tuple_row(void *ctx, const PGresult *r, int row)
{
	struct tupling *x = ctx;
	struct ledger_value v[LEDGER_MAX_COLS];
	for (int i = 0, k = 0; i < x->t->n; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		enum ledger_col type = x->t->col[i].type;
		int at = k++;
		if (type == LCOL_NUM) {
			k++;                 /* NAME and NAME_real: the one that is set */
			if (pgv_null(r, row, at)) {
				at++;
				type = LCOL_REAL;
			} else {
				type = LCOL_INT;
			}
		}
		if (pgv_null(r, row, at)) {
			v[i].type = LV_NULL;
			continue;
		}
		switch (type) {
		case LCOL_INT: v[i].type = LV_INT; v[i].i = pgv_i64(r, row, at); break;
		case LCOL_REAL: v[i].type = LV_REAL; v[i].d = pgv_f64(r, row, at); break;
		case LCOL_TEXT:
		case LCOL_BLOB:
			v[i].type = type == LCOL_TEXT ? LV_TEXT : LV_BLOB;
			v[i].p = PQgetvalue(r, row, at);
			v[i].len = (size_t)PQgetlength(r, row, at);
			break;
		default: break;
		}
	}
	return x->fn(x->ctx, v);
}

static int pg_copy_read(struct ledger_copy *cb, const struct ledger_table *t, ledger_tuple_fn fn, void *ctx,
			struct tally_err *e)
{
	struct pg_copy *c = (struct pg_copy *)cb;
	struct tupling x = { t, fn, ctx };
	char cols[1024], sql[1200];
	columns(t, cols, sizeof(cols));
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", cols, t->name, t->order);
	return pgc_each(c->pc, sql, 0, NULL, tuple_row, &x, "cannot read", e);
}

/* COPY what is buffered of t into it. */
static int pg_copy_flush_rows(struct pg_copy *c, const struct ledger_table *t, struct tally_err *e)
{
	char cols[1024], target[1200];
	columns(t, cols, sizeof(cols));
	snprintf(target, sizeof(target), "%s (%s)", t->name, cols);
	int rc = cb_copy(c->w, &c->buf, target, e);
	cb_reset(&c->buf);
	return rc;
}

static void cb_bytes_text(struct copybuf *b, const char *p, size_t len, char end)
{
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		const char *esc = p[i] == '\\' ? "\\\\" : p[i] == '\n' ? "\\n" : p[i] == '\r' ? "\\r"
				  : p[i] == '\t' ? "\\t" : NULL;
		if (!esc)
			continue;
		cb_put(b, p + run, i - run);
		cb_put(b, esc, 2);
		run = i + 1;
	}
	cb_put(b, p + run, len - run);
	cb_put(b, &end, 1);
}

static int pg_copy_write(struct ledger_copy *cb, const struct ledger_table *t, const struct ledger_value *v,
			 struct tally_err *e)
{
	struct pg_copy *c = (struct pg_copy *)cb;
	struct copybuf *b = &c->buf;
	for (int i = 0; i < t->n; i++) {
		char end = i + 1 < t->n ? '\t' : '\n';
		enum ledger_col type = t->col[i].type;
		bool ok = v[i].type == LV_NULL ? type != LCOL_NUM
			  : type == LCOL_INT ? v[i].type == LV_INT
			  : type == LCOL_REAL ? v[i].type == LV_REAL || v[i].type == LV_INT
			  : type == LCOL_TEXT ? v[i].type == LV_TEXT && !memchr(v[i].p, 0, v[i].len)
			  : type == LCOL_BLOB ? v[i].type == LV_BLOB || v[i].type == LV_TEXT
			  : v[i].type == LV_INT || v[i].type == LV_REAL;
		if (!ok)
			return err_set(e, -EINVAL, "%s: %s.%s: a value of another type than its column's (%s): the"
				       " ledger is not what tally writes; nothing was copied", c->pc->name, t->name,
				       t->col[i].name, v[i].type == LV_NULL ? "NULL" : v[i].type == LV_TEXT ? "text"
				       : v[i].type == LV_BLOB ? "bytes" : v[i].type == LV_REAL ? "a real number"
				       : "an integer");
		if (type == LCOL_NUM) {
			if (v[i].type == LV_INT) {
				cb_i64(b, v[i].i, '\t');
				cb_null(b, end);
			} else {
				cb_null(b, '\t');
				cb_f64(b, v[i].d, end);
			}
			continue;
		}
		switch (v[i].type) {
		case LV_NULL: cb_null(b, end); break;
		case LV_INT:
			if (type == LCOL_REAL)
				cb_f64(b, (double)v[i].i, end);
			else
				cb_i64(b, v[i].i, end);
			break;
		case LV_REAL: cb_f64(b, v[i].d, end); break;
		case LV_TEXT:
			if (type == LCOL_TEXT) {
				cb_bytes_text(b, v[i].p, v[i].len, end);
				break;
			}
			/* text in a bytes column: its bytes */
			/* fall through */
		case LV_BLOB: {
			char hx[3];
			cb_put(b, "\\\\x", 3);
			for (size_t k = 0; k < v[i].len; k++) {
				snprintf(hx, sizeof(hx), "%02x", (unsigned char)v[i].p[k]);
				cb_put(b, hx, 2);
			}
			cb_put(b, &end, 1);
			break;
		}
		}
	}
	b->rows++;
	if (b->n > (8u << 20))
		return pg_copy_flush_rows(c, t, e);
	return b->bad ? err_set(e, -ENOMEM, "out of memory") : 0;
}

static int pg_copy_flush(struct ledger_copy *cb, const struct ledger_table *t, struct tally_err *e)
{
	struct pg_copy *c = (struct pg_copy *)cb;
	int rc = pg_copy_flush_rows(c, t, e);
	if (rc || !t->identity)
		return rc;
	/* ids given: the identity goes on after the highest */
	char sql[200];
	snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', 'id'), coalesce(max(id), 0) + 1, false)"
		 " FROM %s", t->name, t->name);
	return pgc_exec(c->pc, sql, "cannot set the next id", e);
}

static int pg_copy_commit(struct ledger_copy *cb, struct tally_err *e)
{
	struct pg_copy *c = (struct pg_copy *)cb;
	int rc;
	if (!c->w)
		return 0;
	if ((rc = pgc_exec(c->pc, "COMMIT", "cannot commit", e)))
		return rc;
	c->w->in_tx = false;
	c->committed = true;
	/* the planner's statistics for what just arrived (best effort) */
	PQclear(PQexec(c->pc->c, "ANALYZE usage, series, resources, resource_attrs, events, chain, chain_hours"));
	return 0;
}

const struct ledger_backend ledger_pg_backend = {
	.name = "postgresql",
	.normalize = pg_location_normalize,
	.open = pg_open,
	.close = pg_close,
	.check_info = pg_check_info,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.idle = pg_idle,
	.meter_id = pg_meter_id,
	.put_resource = pg_put_resource,
	.put_attrs = pg_put_attrs,
	.load_resources = pg_load_resources,
	.add_usage = pg_add_usage,
	.put_series = pg_put_series,
	.load_series = pg_load_series,
	.put_agent = pg_put_agent,
	.load_agents = pg_load_agents,
	.add_event = pg_add_event,
	.last_event = pg_last_event,
	.put_alert = pg_put_alert,
	.del_alert = pg_del_alert,
	.load_alerts = pg_load_alerts,
	.resource_tenant = pg_resource_tenant,
	.import_seen = pg_import_seen,
	.import_put = pg_import_put,
	.put_window_point = pg_put_window_point,
	.trim_window = pg_trim_window,
	.load_windows = pg_load_windows,
	.info = pg_info,
	.check = pg_check,
	.snap_open = pg_snap_open,
	.snap_links = pg_snap_links,
	.snap_usage = pg_snap_usage,
	.snap_orphans = pg_snap_orphans,
	.snap_close = pg_snap_close,
	.reader_open = pg_reader_open,
	.reader_close = pg_reader_close,
	.data_until = pg_data_until,
	.read_meters = pg_read_meters,
	.read_agents = pg_read_agents,
	.read_resources = pg_read_resources,
	.read_usage = pg_read_usage,
	.read_instances = pg_read_instances,
	.read_events = pg_read_events,
	.invoices_before = pg_invoices_before,
	.invoices_list = pg_invoices_list,
	.invoices_find = pg_invoices_find,
	.invoices_begin = pg_invoices_begin,
	.invoices_overlap = pg_invoices_overlap,
	.invoices_next_number = pg_invoices_next_number,
	.invoices_insert = pg_invoices_insert,
	.invoices_adjust = pg_invoices_adjust,
	.invoices_commit = pg_invoices_commit,
	.invoices_abort = pg_invoices_abort,
	.credit_notes_credited = pg_credit_notes_credited,
	.credit_notes_next_number = pg_credit_notes_next_number,
	.credit_notes_insert = pg_credit_notes_insert,
	.credit_notes_find = pg_credit_notes_find,
	.credit_notes_list = pg_credit_notes_list,
	.charges_add = pg_charges_add,
	.charges_read = pg_charges_read,
	.copy_open = pg_copy_open,
	.copy_read = pg_copy_read,
	.copy_write = pg_copy_write,
	.copy_flush = pg_copy_flush,
	.copy_commit = pg_copy_commit,
	.copy_close = pg_copy_close,
};
