/*
 * ledger.c: open, check, create and migrate the SQLite ledger; the prepared
 * statements the aggregator writes it with (see ledger.h).
 */
#include "ledger.h"
#include "err.h"
#include "str.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ledger_fault_commit;

enum {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_METER_GET, S_METER_PUT, S_RES_PUT, S_ATTRS_PUT,
	S_USAGE_ADD, S_USAGE_UPD, S_SERIES_PUT, S_SERIES_UPD, S_AGENT_PUT, S_EVENT_ADD, S_ALERT_PUT,
	S_ALERT_DEL, S_WND_PUT, S_WND_TRIM, S_WND_DEL, S_LAST_EVENT, S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_METER_GET] = "SELECT id FROM meters WHERE name = ?1",
	[S_METER_PUT] = "INSERT INTO meters (name, kind, unit) VALUES (?1, ?2, ?3)",
	[S_RES_PUT] = "INSERT INTO resources (id, uuid, type, name, tenant, project, user_id, flavor,"
		      " labels, host, first_seen_ns, last_seen_ns)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
		      " ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,"
		      " tenant = excluded.tenant, project = excluded.project, user_id = excluded.user_id,"
		      " flavor = excluded.flavor, labels = excluded.labels, host = excluded.host,"
		      " first_seen_ns = excluded.first_seen_ns, last_seen_ns = excluded.last_seen_ns",
	[S_ATTRS_PUT] = "INSERT OR REPLACE INTO resource_attrs (resource_id, since_ns, name, tenant,"
			" project, user_id, flavor, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_USAGE_ADD] = "INSERT INTO usage (resource_id, meter_id, device, hour_ns, quantity,"
			" spanned_ns, covered_ns, samples) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
			" ON CONFLICT (resource_id, meter_id, device, hour_ns) DO UPDATE SET"
			" quantity = quantity + excluded.quantity,"
			" spanned_ns = spanned_ns + excluded.spanned_ns,"
			" covered_ns = covered_ns + excluded.covered_ns,"
			" samples = samples + excluded.samples",
	/* an existing row's hour: one seek, no insert attempt first */
	[S_USAGE_UPD] = "UPDATE usage SET quantity = quantity + ?5, spanned_ns = spanned_ns + ?6,"
			" covered_ns = covered_ns + ?7, samples = samples + ?8"
			" WHERE resource_id = ?1 AND meter_id = ?2 AND device = ?3 AND hour_ns = ?4",
	[S_SERIES_PUT] = "INSERT OR REPLACE INTO series (resource_id, meter_id, device, agent,"
			 " last_ns, origin_ns, kind, last_value, flags)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	/* an existing series: updated in place. kind is left alone (a series
	 * never changes kind), which also spares the CHECK on it: SQLite
	 * evaluates `kind IN (...)` through a temporary b-tree per row */
	[S_SERIES_UPD] = "UPDATE series SET last_ns = ?5, origin_ns = ?6, last_value = ?8, flags = ?9"
			 " WHERE resource_id = ?1 AND meter_id = ?2 AND device = ?3 AND agent = ?4",
	[S_AGENT_PUT] = "INSERT OR REPLACE INTO agents (agent, last_seq, last_time_ns, batches)"
			" VALUES (?1, ?2, ?3, ?4)",
	[S_EVENT_ADD] = "INSERT INTO events (resource_id, time_ns, agent, type, reason)"
			" VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_ALERT_PUT] = "INSERT OR REPLACE INTO alerts (key, labels, annotations, rule, tenant, subject,"
			" device, state, active_ns, fired_ns, resolved_ns, value)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[S_ALERT_DEL] = "DELETE FROM alerts WHERE key = ?1",
	[S_WND_PUT] = "INSERT OR REPLACE INTO alert_windows (key, t_ns, value) VALUES (?1, ?2, ?3)",
	[S_WND_TRIM] = "DELETE FROM alert_windows WHERE key = ?1 AND t_ns < ?2",
	[S_WND_DEL] = "DELETE FROM alert_windows WHERE key = ?1",
	[S_LAST_EVENT] = "SELECT type, time_ns FROM events WHERE resource_id ="
			 " (SELECT id FROM resources WHERE uuid = ?1) AND agent = ?2"
			 " AND instr(?3, ',' || type || ',') > 0 ORDER BY time_ns DESC, id DESC LIMIT 1",
};

struct ledger {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st[S_COUNT];
};


static int db_err(struct ledger *l, struct tally_err *e, int rc, const char *what)
{
	int code = rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_NOMEM ? -ENOMEM
		 : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY
		 : rc == SQLITE_READONLY || rc == SQLITE_PERM ? -EACCES : -EIO;
	return err_set(e, code, "%s: %s: %s", l->path, what,
		       l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
}

static int exec(struct ledger *l, const char *sql, struct tally_err *e)
{
	char *msg = NULL;
	int rc = sqlite3_exec(l->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int r = err_set(e, rc == SQLITE_FULL ? -ENOSPC : -EIO, "%s: %s", l->path,
				msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static int pragma_int(struct ledger *l, const char *sql, int64_t *out, struct tally_err *e)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			*out = 0;
			rc = SQLITE_OK;
		}
	}
	if (rc != SQLITE_OK) {
		int r;
		if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
			r = err_set(e, -EINVAL, "%s: not a tally ledger (not an SQLite database, or corrupt);"
				    " refusing to touch it", l->path);
		else
			r = db_err(l, e, rc, "cannot read the ledger");
		sqlite3_finalize(st);
		return r;
	}
	sqlite3_finalize(st);
	return 0;
}

static int check_integrity(struct ledger *l, struct tally_err *e)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(l->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return err_set(e, -EINVAL, "%s: corrupt ledger (%s); refusing to touch it", l->path,
			       sqlite3_errmsg(l->db));
	rc = sqlite3_step(st);
	const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	int ok = res && !strcmp(res, "ok");
	if (!ok) {
		err_set(e, -EINVAL, "%s: corrupt ledger (%s); refusing to touch it; restore it from a"
			" backup", l->path, res ? res : sqlite3_errmsg(l->db));
		sqlite3_finalize(st);
		return -EINVAL;
	}
	sqlite3_finalize(st);
	return 0;
}

static int migrate(struct ledger *l, int64_t from, struct tally_err *e)
{
	const char *const *m = ledger_migrations;
	char sql[96];
	int rc;

	if (ledger_n_migrations != LEDGER_SCHEMA_VERSION)
		return err_set(e, -EPROTO, "built with %d migrations for schema version %d", ledger_n_migrations,
			       LEDGER_SCHEMA_VERSION);
	for (int64_t v = from; v < LEDGER_SCHEMA_VERSION; v++) {
		if ((rc = exec(l, "BEGIN IMMEDIATE", e)))
			return rc;
		if ((rc = exec(l, m[v], e))) {
			exec(l, "ROLLBACK", NULL);
			return err_prefix(e, "migration to schema %lld", (long long)(v + 1));
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld", (long long)(v + 1));
		if ((rc = exec(l, sql, e)) || (rc = exec(l, "COMMIT", e))) {
			exec(l, "ROLLBACK", NULL);
			return rc;
		}
	}
	return 0;
}

int ledger_open(struct ledger **out, const char *path, struct tally_err *e)
{
	struct ledger *l = calloc(1, sizeof(*l));
	struct stat sb;
	int64_t app = 0, ver = 0, objects = 0;
	int rc;

	*out = NULL;
	if (!l || !(l->path = strdup(path))) {
		free(l);
		return -ENOMEM;
	}
	int exists = stat(path, &sb) == 0;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (exists ? 0 : SQLITE_OPEN_CREATE);
	if ((rc = sqlite3_open_v2(path, &l->db, flags, NULL)) != SQLITE_OK) {
		rc = db_err(l, e, rc, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(l->db, 5000);
	sqlite3_extended_result_codes(l->db, 0);
	if ((rc = pragma_int(l, "PRAGMA application_id", &app, e)) ||
	    (rc = pragma_int(l, "PRAGMA user_version", &ver, e)) ||
	    (rc = pragma_int(l, "SELECT count(*) FROM sqlite_master", &objects, e)))
		goto fail;
	if (app == 0 && ver == 0 && objects == 0) {
		/* new, empty file: ours to create */
	} else if (app != LEDGER_APP_ID) {
		rc = err_set(e, -EINVAL, "%s: not a tally ledger (application_id %lld); refusing to touch"
			     " it", path, (long long)app);
		goto fail;
	} else if (ver > LEDGER_SCHEMA_VERSION) {
		rc = err_set(e, -EPROTO, "%s: ledger schema version %lld is newer than this tally knows"
			     " (%d); upgrade tally, the ledger was not changed", path, (long long)ver,
			     LEDGER_SCHEMA_VERSION);
		goto fail;
	} else if ((rc = check_integrity(l, e))) {
		goto fail;
	}
	if ((rc = exec(l, "PRAGMA journal_mode = WAL", e)) ||
	    (rc = exec(l, "PRAGMA synchronous = FULL", e)) ||
	    (rc = exec(l, "PRAGMA foreign_keys = OFF", e)))
		goto fail;
	if (ver < LEDGER_SCHEMA_VERSION && (rc = migrate(l, ver, e)))
		goto fail;
	for (int i = 0; i < S_COUNT; i++)
		if ((rc = sqlite3_prepare_v3(l->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i],
					     NULL)) != SQLITE_OK) {
			rc = db_err(l, e, rc, "cannot prepare statement");
			goto fail;
		}
	*out = l;
	return 0;
fail:
	ledger_close(l);
	return rc;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(l->st[i]);
	sqlite3_close(l->db);
	free(l->path);
	free(l);
}

/* Run a statement that returns no rows; reset it either way. */
static int step_done(struct ledger *l, int which, const char *what, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return db_err(l, e, rc, what);
	return 0;
}

int ledger_begin(struct ledger *l, struct tally_err *e)
{
	return step_done(l, S_BEGIN, "cannot begin a transaction", e);
}

int ledger_commit(struct ledger *l, struct tally_err *e)
{
	if (ledger_fault_commit) {
		int rc = ledger_fault_commit;
		return db_err(l, e, rc, "cannot commit (simulated fault)");
	}
	return step_done(l, S_COMMIT, "cannot commit", e);
}

void ledger_rollback(struct ledger *l)
{
	if (sqlite3_get_autocommit(l->db) == 0)
		step_done(l, S_ROLLBACK, "rollback", NULL);
}

int ledger_meter_id(struct ledger *l, const char *name, const char *kind, const char *unit,
		    int64_t *id, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_METER_GET];
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_err(l, e, rc, "cannot read meters");
	st = l->st[S_METER_PUT];
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, unit, -1, SQLITE_STATIC);
	if ((rc = step_done(l, S_METER_PUT, "cannot add meter", e)))
		return rc;
	*id = sqlite3_last_insert_rowid(l->db);
	return 0;
}

int ledger_put_resource(struct ledger *l, const struct ledger_resource *r, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_RES_PUT];
	const struct resource_meta *m = &r->meta;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_text(st, 2, m->resource, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, m->project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, m->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, m->flavor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, m->labels, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, r->first_seen_ns);
	sqlite3_bind_int64(st, 12, r->last_seen_ns);
	return step_done(l, S_RES_PUT, "cannot write resource", e);
}

int ledger_put_attrs(struct ledger *l, int64_t resource_id, const struct resource_meta *m,
		     struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_ATTRS_PUT];
	sqlite3_bind_int64(st, 1, resource_id);
	sqlite3_bind_int64(st, 2, m->time_ns);
	sqlite3_bind_text(st, 3, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->project, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, m->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, m->flavor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, m->labels, -1, SQLITE_STATIC);
	return step_done(l, S_ATTRS_PUT, "cannot write resource attributes", e);
}

/* Bind the columns of u to st (the same numbers in S_USAGE_ADD and _UPD). */
static void bind_usage(sqlite3_stmt *st, const struct ledger_usage *u)
{
	sqlite3_bind_int64(st, 1, u->resource_id);
	sqlite3_bind_int64(st, 2, u->meter_id);
	sqlite3_bind_text(st, 3, u->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, u->hour_ns);
	if (u->is_real)
		sqlite3_bind_double(st, 5, u->qty_real);
	else
		sqlite3_bind_int64(st, 5, u->qty);
	sqlite3_bind_int64(st, 6, u->spanned_ns);
	sqlite3_bind_int64(st, 7, u->covered_ns);
	sqlite3_bind_int64(st, 8, u->samples);
}

int ledger_add_usage(struct ledger *l, const struct ledger_usage *u, struct tally_err *e)
{
	int rc;
	if (u->exists) {
		bind_usage(l->st[S_USAGE_UPD], u);
		if ((rc = step_done(l, S_USAGE_UPD, "cannot write usage", e)))
			return rc;
		if (sqlite3_changes(l->db) == 1)
			return 0;
		/* not there after all: inserted below */
	}
	bind_usage(l->st[S_USAGE_ADD], u);
	return step_done(l, S_USAGE_ADD, "cannot write usage", e);
}

static void bind_series(sqlite3_stmt *st, const struct ledger_series *s)
{
	sqlite3_bind_int64(st, 1, s->resource_id);
	sqlite3_bind_int64(st, 2, s->meter_id);
	sqlite3_bind_text(st, 3, s->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, s->agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, s->last_ns);
	sqlite3_bind_int64(st, 6, s->origin_ns);
	if (s->kind == SAMPLE_GAUGE)
		sqlite3_bind_double(st, 8, s->last_gauge);
	else
		sqlite3_bind_int64(st, 8, (int64_t)s->last_counter); /* stored as its bit pattern */
	sqlite3_bind_int(st, 9, s->flags);
}

int ledger_put_series(struct ledger *l, const struct ledger_series *s, struct tally_err *e)
{
	int rc;
	if (s->exists) {
		bind_series(l->st[S_SERIES_UPD], s);
		if ((rc = step_done(l, S_SERIES_UPD, "cannot write series state", e)))
			return rc;
		if (sqlite3_changes(l->db) == 1)
			return 0;
	}
	sqlite3_stmt *st = l->st[S_SERIES_PUT];
	bind_series(st, s);
	sqlite3_bind_text(st, 7, s->kind == SAMPLE_GAUGE ? "gauge" : s->kind == SAMPLE_DELTA ? "delta"
				 : "cumulative", -1, SQLITE_STATIC);
	return step_done(l, S_SERIES_PUT, "cannot write series state", e);
}

int ledger_put_agent(struct ledger *l, const char *agent, uint64_t last_seq, int64_t last_time_ns,
		     int64_t batches, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_AGENT_PUT];
	sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)last_seq);
	sqlite3_bind_int64(st, 3, last_time_ns);
	sqlite3_bind_int64(st, 4, batches);
	return step_done(l, S_AGENT_PUT, "cannot write agent", e);
}

int ledger_add_event(struct ledger *l, int64_t resource_id, const char *agent,
		     const struct lifecycle_event *ev, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_EVENT_ADD];
	sqlite3_bind_int64(st, 1, resource_id);
	sqlite3_bind_int64(st, 2, ev->time_ns);
	sqlite3_bind_text(st, 3, agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ev->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ev->reason, -1, SQLITE_STATIC);
	return step_done(l, S_EVENT_ADD, "cannot write event", e);
}

static void col_str(sqlite3_stmt *st, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	str_copy(dst, t ? (const char *)t : "", len);
}

static int load(struct ledger *l, const char *sql, int (*row)(sqlite3_stmt *, void *, void *),
		void *fn, void *ctx, struct tally_err *e)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(l, e, rc, "cannot read");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int r = row(st, fn, ctx);
		if (r) {
			sqlite3_finalize(st);
			return r;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(l, e, rc, "cannot read");
}

static int row_resource(sqlite3_stmt *st, void *fn, void *ctx)
{
	struct ledger_resource r;
	memset(&r, 0, sizeof(r));
	r.id = sqlite3_column_int64(st, 0);
	col_str(st, 1, r.meta.resource, sizeof(r.meta.resource));
	col_str(st, 2, r.meta.type, sizeof(r.meta.type));
	col_str(st, 3, r.meta.name, sizeof(r.meta.name));
	col_str(st, 4, r.meta.tenant, sizeof(r.meta.tenant));
	col_str(st, 5, r.meta.project, sizeof(r.meta.project));
	col_str(st, 6, r.meta.user, sizeof(r.meta.user));
	col_str(st, 7, r.meta.flavor, sizeof(r.meta.flavor));
	col_str(st, 8, r.meta.labels, sizeof(r.meta.labels));
	col_str(st, 9, r.host, sizeof(r.host));
	r.first_seen_ns = sqlite3_column_int64(st, 10);
	r.last_seen_ns = sqlite3_column_int64(st, 11);
	return ((ledger_resource_fn)fn)(ctx, &r);
}

int ledger_load_resources(struct ledger *l, ledger_resource_fn fn, void *ctx, struct tally_err *e)
{
	return load(l, "SELECT id, uuid, type, name, tenant, project, user_id, flavor, labels, host,"
		    " first_seen_ns, last_seen_ns FROM resources ORDER BY id", row_resource, (void *)fn,
		    ctx, e);
}

static int row_series(sqlite3_stmt *st, void *fn, void *ctx)
{
	struct ledger_series s;
	memset(&s, 0, sizeof(s));
	s.resource_id = sqlite3_column_int64(st, 0);
	s.meter_id = sqlite3_column_int64(st, 1);
	s.device = (const char *)sqlite3_column_text(st, 2);
	s.agent = (const char *)sqlite3_column_text(st, 3);
	s.last_ns = sqlite3_column_int64(st, 4);
	s.origin_ns = sqlite3_column_int64(st, 5);
	const char *kind = (const char *)sqlite3_column_text(st, 6);
	s.kind = kind && !strcmp(kind, "gauge") ? SAMPLE_GAUGE
		 : kind && !strcmp(kind, "delta") ? SAMPLE_DELTA : SAMPLE_CUMULATIVE;
	if (s.kind == SAMPLE_GAUGE)
		s.last_gauge = sqlite3_column_double(st, 7);
	else
		s.last_counter = (uint64_t)sqlite3_column_int64(st, 7);
	s.flags = sqlite3_column_int(st, 8);
	if (!s.device)
		s.device = "";
	if (!s.agent)
		s.agent = "";
	return ((ledger_series_fn)fn)(ctx, &s);
}

int ledger_load_series(struct ledger *l, ledger_series_fn fn, void *ctx, struct tally_err *e)
{
	return load(l, "SELECT resource_id, meter_id, device, agent, last_ns, origin_ns, kind,"
		    " last_value, flags FROM series", row_series, (void *)fn, ctx, e);
}

static int row_agent(sqlite3_stmt *st, void *fn, void *ctx)
{
	const unsigned char *a = sqlite3_column_text(st, 0);
	return ((ledger_agent_fn)fn)(ctx, a ? (const char *)a : "", (uint64_t)sqlite3_column_int64(st, 1),
				     sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
}

int ledger_load_agents(struct ledger *l, ledger_agent_fn fn, void *ctx, struct tally_err *e)
{
	return load(l, "SELECT agent, last_seq, last_time_ns, batches FROM agents", row_agent,
		    (void *)fn, ctx, e);
}

int ledger_put_alert(struct ledger *l, const struct ledger_alert *a, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_ALERT_PUT];
	sqlite3_bind_text(st, 1, a->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->labels, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->annotations, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, a->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, a->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, a->active_ns);
	sqlite3_bind_int64(st, 10, a->fired_ns);
	sqlite3_bind_int64(st, 11, a->resolved_ns);
	sqlite3_bind_double(st, 12, a->value);
	return step_done(l, S_ALERT_PUT, "cannot write an alert", e);
}

int ledger_del_alert(struct ledger *l, const char *key, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_ALERT_DEL];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	return step_done(l, S_ALERT_DEL, "cannot delete an alert", e);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static int row_alert(sqlite3_stmt *st, void *fn, void *ctx)
{
	struct ledger_alert a = {
		.key = col_text(st, 0), .labels = col_text(st, 1), .annotations = col_text(st, 2),
		.rule = col_text(st, 3), .tenant = col_text(st, 4), .subject = col_text(st, 5),
		.device = col_text(st, 6), .state = col_text(st, 7),
		.active_ns = sqlite3_column_int64(st, 8), .fired_ns = sqlite3_column_int64(st, 9),
		.resolved_ns = sqlite3_column_int64(st, 10), .value = sqlite3_column_double(st, 11),
	};
	return ((ledger_alert_fn)fn)(ctx, &a);
}

int ledger_load_alerts(struct ledger *l, ledger_alert_fn fn, void *ctx, struct tally_err *e)
{
	return load(l, "SELECT key, labels, annotations, rule, tenant, subject, device, state,"
		    " active_ns, fired_ns, resolved_ns, value FROM alerts ORDER BY key", row_alert, (void *)fn,
		    ctx, e);
}

int ledger_put_window_point(struct ledger *l, const char *key, int64_t t_ns, double value,
			    struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_WND_PUT];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t_ns);
	sqlite3_bind_double(st, 3, value);
	return step_done(l, S_WND_PUT, "cannot write an alert window", e);
}

int ledger_trim_window(struct ledger *l, const char *key, int64_t before_ns, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[before_ns == INT64_MAX ? S_WND_DEL : S_WND_TRIM];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (before_ns != INT64_MAX)
		sqlite3_bind_int64(st, 2, before_ns);
	return step_done(l, before_ns == INT64_MAX ? S_WND_DEL : S_WND_TRIM,
			 "cannot delete from an alert window", e);
}

static int row_window(sqlite3_stmt *st, void *fn, void *ctx)
{
	return ((ledger_window_fn)fn)(ctx, col_text(st, 0), sqlite3_column_int64(st, 1),
				      sqlite3_column_double(st, 2));
}

int ledger_load_windows(struct ledger *l, ledger_window_fn fn, void *ctx, struct tally_err *e)
{
	return load(l, "SELECT key, t_ns, value FROM alert_windows ORDER BY key, t_ns", row_window,
		    (void *)fn, ctx, e);
}

int ledger_last_event(struct ledger *l, const char *uuid, const char *agent, const char *types,
		      char *type, size_t len, int64_t *t_ns, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_LAST_EVENT];
	sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, types, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*t_ns = 0;
	type[0] = '\0';
	if (rc == SQLITE_ROW) {
		col_str(st, 0, type, len);
		*t_ns = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(l, e, rc, "cannot read events");
	return 0;
}
