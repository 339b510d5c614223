/*
 * sqlite_ro.c: open an SQLite ledger read-only and check what it is
 * (sqlite_ro.h).
 */
#include "sqlite_ro.h"
#include "err.h"
#include "ledger_id.h"

#include <errno.h>
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
