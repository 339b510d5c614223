/*
 * ledger_ro.c: open the ledger read-only and check what it is (ledger_ro.h).
 */
#include "ledger_ro.h"
#include "err.h"
#include "ledger_id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

static int open_checked(const char *path, int flags, sqlite3 **db, struct tally_err *e)
{
	struct stat sb;
	sqlite3_stmt *st = NULL;
	int rc;

	*db = NULL;
	if (stat(path, &sb) != 0)
		return err_set(e, -ENOENT, "%s: no ledger here (tallyd writes it; see ledger.path)", path);
	if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot open: %s", path, sqlite3_errmsg(*db));
		goto fail;
	}
	sqlite3_busy_timeout(*db, 5000);
	if (sqlite3_prepare_v2(*db, "SELECT (SELECT application_id FROM pragma_application_id),"
				    " (SELECT user_version FROM pragma_user_version)", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = err_set(e, -EINVAL, "%s: not a tally ledger (%s)", path, sqlite3_errmsg(*db));
		goto fail;
	}
	int64_t app = sqlite3_column_int64(st, 0), ver = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	st = NULL;
	if (app != LEDGER_APP_ID) {
		rc = err_set(e, -EINVAL, "%s: not a tally ledger", path);
		goto fail;
	}
	if (ver != LEDGER_SCHEMA_VERSION) {
		rc = err_set(e, -EPROTO, "%s: ledger schema version %lld, this tally reads version %d%s", path,
			     (long long)ver, LEDGER_SCHEMA_VERSION,
			     ver > LEDGER_SCHEMA_VERSION ? ": upgrade tally" : ": let tallyd migrate it first");
		goto fail;
	}
	return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_close(*db);
	*db = NULL;
	return rc;
}

int ledger_ro_open(const char *path, sqlite3 **db, struct tally_err *e)
{
	return open_checked(path, SQLITE_OPEN_READONLY, db, e);
}

int ledger_invoices_open(const char *path, sqlite3 **db, struct tally_err *e)
{
	return open_checked(path, SQLITE_OPEN_READWRITE, db, e);
}

int ledger_info(const char *path, struct ledger_info *out, struct tally_err *e)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ledger_ro_open(path, &db, e)))
		return rc;
	out->schema = LEDGER_SCHEMA_VERSION;
	if (stat(path, &sb) == 0)
		out->bytes = (int64_t)sb.st_size;
	if (sqlite3_prepare_v2(db, "SELECT key, value FROM meta", -1, &st, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, "%s: cannot read its meta table: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = ledger_col_text(st, 0), *v = ledger_col_text(st, 1);
		if (!strcmp(k, "created_by"))
			snprintf(out->created_by, sizeof(out->created_by), "%s", v);
		else if (!strcmp(k, "upgraded_by"))
			snprintf(out->upgraded_by, sizeof(out->upgraded_by), "%s", v);
		else if (!strcmp(k, "written_by"))
			snprintf(out->written_by, sizeof(out->written_by), "%s", v);
		else if (!strcmp(k, "written_ns"))
			out->written_ns = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE ||
	    sqlite3_prepare_v2(db, "SELECT min(hour_ns), max(hour_ns) FROM usage", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = err_set(e, -EIO, "%s: cannot read: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		out->has_usage = true;
		out->first_hour_ns = sqlite3_column_int64(st, 0);
		out->last_hour_ns = sqlite3_column_int64(st, 1);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
