/*
 * ledger_backend.h: which engine a ledger suite runs on, for the suites
 * that run on both (test_ledger, test_usage, test_invoice, test_issue,
 * test_sla, test_alerting).
 *
 * By default a test's ledger is an SQLite file in its scratch directory.
 * With TALLY_TEST_PG set to a PostgreSQL URI (tests/integration/pg.sh sets
 * it to the cluster tests/lib/pg.sh started), every ledger is a fresh
 * schema of that database instead: tu_ledger_location() creates schema
 * t_<pid>_<n> and names it through the URI's search_path. tu_ledger_sql()
 * and tu_ledger_int() run a statement on whichever engine holds the
 * ledger, for the cases that change or read a ledger behind tally's back
 * (plain SQL both engines understand).
 */
#ifndef TALLY_TEST_LEDGER_BACKEND_H
#define TALLY_TEST_LEDGER_BACKEND_H

#include <check.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *tu_pg(void)
{
	const char *u = getenv("TALLY_TEST_PG");
	return u && u[0] ? u : NULL;
}

static inline void tu_pg_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* The base URI's connection, for the helpers below. */
static inline PGconn *tu_pg_connect(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s: %s", uri, PQerrorMessage(c));
	PQsetNoticeProcessor(c, tu_pg_quiet, NULL);
	return c;
}

static inline void tu_pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
		      PQresultErrorMessage(r));
	PQclear(r);
}

/* A fresh ledger location named name: dir/name, or a new schema. */
static inline void tu_ledger_location(char *out, size_t len, const char *dir, const char *name)
{
	static int n;
	const char *pg = tu_pg();
	if (!pg) {
		snprintf(out, len, "%s/%s", dir, name);
		return;
	}
	char schema[64], sql[160];
	snprintf(schema, sizeof(schema), "t_%ld_%d", (long)getpid(), n++);
	PGconn *c = tu_pg_connect(pg);
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
	tu_pg_exec(c, sql);
	PQfinish(c);
	snprintf(out, len, "%s%coptions=-csearch_path%%3D%s", pg, strchr(pg, '?') ? '&' : '?', schema);
}

/* Run sql on the ledger at location (no rows expected). */
static inline void tu_ledger_sql(const char *location, const char *sql)
{
	if (!strncmp(location, "postgresql://", 13)) {
		PGconn *c = tu_pg_connect(location);
		tu_pg_exec(c, sql);
		PQfinish(c);
		return;
	}
	sqlite3 *db;
	char *msg = NULL;
	ck_assert_int_eq(sqlite3_open(location, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
	sqlite3_close(db);
}

/* Run sql on the ledger; whether the engine took it (a refused change:
 * false). */
static inline bool tu_ledger_try(const char *location, const char *sql)
{
	if (!strncmp(location, "postgresql://", 13)) {
		PGconn *c = tu_pg_connect(location);
		PGresult *r = PQexec(c, sql);
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		PQfinish(c);
		return ok;
	}
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(location, &db), SQLITE_OK);
	bool ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(db);
	return ok;
}

/* The same change in each engine's words: SQLite keeps a quantity of
 * either type in one column, PostgreSQL in quantity or quantity_real. */
static inline void tu_ledger_sql2(const char *location, const char *sqlite_sql, const char *pg_sql)
{
	tu_ledger_sql(location, strncmp(location, "postgresql://", 13) ? sqlite_sql : pg_sql);
}

/* Run sql and return the integer in its first row and column (dflt when
 * there is no row). */
static inline int64_t tu_ledger_int_or(const char *location, const char *sql, int64_t dflt)
{
	int64_t v = dflt;
	if (!strncmp(location, "postgresql://", 13)) {
		PGconn *c = tu_pg_connect(location);
		PGresult *r = PQexec(c, sql);
		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
		if (PQntuples(r) >= 1)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(c);
		return v;
	}
	sqlite3 *db;
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_open_v2(location, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static inline int64_t tu_ledger_int(const char *location, const char *sql)
{
	return tu_ledger_int_or(location, sql, 0);
}

#endif
