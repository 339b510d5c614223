/*
 * sqlite.c: the SQLite backend's writer (backend.h, ledger.h): open,
 * check, create and migrate the ledger file; the writer's lock beside it;
 * the prepared statements the aggregator writes it with; the hash chain's
 * rows (chain.c computes them); the snapshot `tally ledger verify` reads.
 * Its readers are in sqlite_reader.c, its invoice store in
 * sqlite_invoices.c; the table of all three is at the end of this file.
 */
#include "backend.h"
#include "chain.h"
#include "fault.h"
#include "err.h"
#include "sqlite_ro.h"
#include "str.h"
#include "tallytime.h"
#include "version.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* The usage columns the chain hashes, in the order hour_row reads them. */
#define CHAIN_ROW_COLS "resource_id, meter_id, device, hour_ns, quantity, spanned_ns, covered_ns, samples"

enum {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_METER_GET, S_METER_PUT, S_RES_PUT, S_ATTRS_PUT,
	S_USAGE_ADD, S_USAGE_UPD, S_SERIES_PUT, S_SERIES_UPD, S_AGENT_PUT, S_EVENT_ADD, S_ALERT_PUT,
	S_ALERT_DEL, S_WND_PUT, S_WND_TRIM, S_WND_DEL, S_LAST_EVENT, S_HOUR_ROWS, S_HOUR_LAST, S_CHAIN_PUT,
	S_CHAIN_HOUR_PUT, S_IMPORT_GET, S_IMPORT_PUT, S_RES_TENANT, S_COUNT
};

/* A row's quantity plus an integer amount, or NULL where the sum would pass
 * 2^63 - 1 (SQLite would make it a REAL, losing the exact count): the NOT
 * NULL on usage.quantity then refuses the write, and sq_add_usage says why.
 * A gauge's REAL amount adds as before. */
#define USAGE_SUM(x) "CASE WHEN typeof(" x ") = 'integer' AND typeof(quantity + " x ") <> 'integer'" \
		     " THEN NULL ELSE quantity + " x " END"

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
			" quantity = " USAGE_SUM("excluded.quantity") ","
			" spanned_ns = spanned_ns + excluded.spanned_ns,"
			" covered_ns = covered_ns + excluded.covered_ns,"
			" samples = samples + excluded.samples",
	/* an existing row's hour: one seek, no insert attempt first */
	[S_USAGE_UPD] = "UPDATE usage SET quantity = " USAGE_SUM("?5") ", spanned_ns = spanned_ns + ?6,"
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
	/* only over the seq the writer's state was built on (ledger.h) */
	[S_AGENT_PUT] = "INSERT INTO agents (agent, last_seq, last_time_ns, batches, spool_id, spool_first_seq,"
			" contact_ns, spool_batches, spool_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
			" ON CONFLICT (agent) DO UPDATE SET last_seq = excluded.last_seq,"
			" last_time_ns = excluded.last_time_ns, batches = excluded.batches,"
			" spool_id = excluded.spool_id, spool_first_seq = excluded.spool_first_seq,"
			" contact_ns = excluded.contact_ns, spool_batches = excluded.spool_batches,"
			" spool_bytes = excluded.spool_bytes WHERE agents.last_seq = ?10",
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
	/* one hour's rows in the chain's order: the usage_hour index holds
	 * (hour_ns, resource_id, meter_id, device), so no sort */
	[S_HOUR_ROWS] = "SELECT " CHAIN_ROW_COLS " FROM usage WHERE hour_ns = ?1"
			" ORDER BY resource_id, meter_id, device",
	/* what the last commit that wrote an hour recorded */
	[S_HOUR_LAST] = "SELECT commit_id, rows, digest FROM chain_hours WHERE hour_ns = ?1"
			" ORDER BY commit_id DESC LIMIT 1",
	[S_CHAIN_PUT] = "INSERT INTO chain (id, time_ns, upgrade, hours, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_CHAIN_HOUR_PUT] = "INSERT INTO chain_hours (commit_id, hour_ns, rows, altered, digest)"
			     " VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_IMPORT_GET] = "SELECT digest, imported_ns FROM usage_events WHERE source = ?1 AND event_id = ?2",
	[S_RES_TENANT] = "SELECT tenant FROM resources WHERE uuid = ?1",
	[S_IMPORT_PUT] = "INSERT INTO usage_events (source, event_id, resource_id, meter_id, device, time_ns,"
			 " end_ns, quantity, digest, imported_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

struct sq_ledger {
	struct ledger base;          /* the backend (backend.h) */
	sqlite3 *db;
	char *path;
	char *lock_path;             /* path + LEDGER_LOCK_SUFFIX */
	int lock_fd;                 /* holds the writer's lock (flock) until ledger_close; -1: none */
	char clean_mark[160];        /* the "clean=" line the last clean stop left, "" if none */
	bool open;                   /* ledger_open succeeded: a close is a clean stop */
	bool check_full;             /* the check at open was integrity_check, not quick_check */
	int64_t check_ns;            /* how long it took */
	/* the hash chain: its head as committed, the hours the open
	 * transaction wrote usage to (sorted, unique), and the head that
	 * transaction will make when it commits */
	int64_t head_id;
	unsigned char head[CHAIN_HASH_LEN];
	struct chain_touched touched;
	int64_t next_id;
	unsigned char next[CHAIN_HASH_LEN];
	sqlite3_stmt *st[S_COUNT];
};


static int step_done(struct sq_ledger *l, int which, const char *what, struct tally_err *e);
static void sq_close(struct ledger *lb);
static bool sq_idle(const struct ledger *lb);

#define iso_s chain_iso_s

static int db_err(struct sq_ledger *l, struct tally_err *e, int rc, const char *what)
{
	int code = rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_NOMEM ? -ENOMEM
		 : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY
		 : rc == SQLITE_READONLY || rc == SQLITE_PERM ? -EACCES : -EIO;
	/* the connection's message when it is about rc (an injected fault
	 * never reached SQLite: its message would say "not an error") */
	return err_set(e, code, "%s: %s: %s", l->path, what,
		       l->db && (sqlite3_errcode(l->db) & 0xff) == (rc & 0xff) ? sqlite3_errmsg(l->db)
		       : sqlite3_errstr(rc));
}

static int exec(struct sq_ledger *l, const char *sql, struct tally_err *e)
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

static int pragma_int(struct sq_ledger *l, const char *sql, int64_t *out, struct tally_err *e)
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

/* ---- integrity ----
 *
 * A writer checks the ledger before it resumes it (docs/ledger.md).
 * PRAGMA quick_check verifies every page and record but does not compare
 * an index with its table: a ledger whose index disagrees with its rows
 * passes it, is written to, and reads back wrong sums. PRAGMA
 * integrity_check does compare them, at about ten times the cost (10 s on
 * a month of 1000 VMs, 527 MB). So the full check runs unless the file is
 * exactly as a writer left it at a clean stop: ledger_close then records
 * the file's identity (device, inode, size, mtime, ctime, no WAL left) in
 * the lock file, and the next writer runs only quick_check when all of it
 * still holds. A crash, a write by anything else (tally invoice --issue,
 * an editor, a byte flipped by dd), a restore from a backup, a copy: each
 * changes one of them, and the full check runs. */

/* Run "PRAGMA <what>" on db: 0 and *bad = 0 when it says "ok", else the
 * number of problems it listed in *bad and the first ones in msg. A
 * non-zero return is an SQLite result code (the check could not run). */
static int run_check(sqlite3 *db, const char *what, int *bad, char *msg, size_t len)
{
	char sql[64];
	sqlite3_stmt *st;
	size_t used = 0;
	snprintf(sql, sizeof(sql), "PRAGMA %s", what);
	*bad = 0;
	msg[0] = '\0';
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		if (r && !strcmp(r, "ok"))
			continue;
		if (used < len && *bad < 3)
			used += (size_t)snprintf(msg + used, len - used, "%s%s", *bad ? "; " : "", r ? r : "?");
		(*bad)++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int check_integrity(struct sq_ledger *l, bool full, struct tally_err *e)
{
	char msg[400];
	int bad;
	int64_t t0 = time_mono_ns();
	int rc = run_check(l->db, full ? "integrity_check(100)" : "quick_check(100)", &bad, msg, sizeof(msg));
	l->check_full = full;
	l->check_ns = time_mono_ns() - t0;
	if (rc != SQLITE_OK)
		return err_set(e, -EINVAL, "%s: corrupt ledger (%s); refusing to touch it; restore it from a"
			       " backup", l->path, sqlite3_errmsg(l->db));
	if (bad)
		return err_set(e, -EINVAL, "%s: corrupt ledger (%s%s: %d problem%s found by %s); refusing to"
			       " touch it; restore it from a backup", l->path, msg, bad > 3 ? "; ..." : "", bad,
			       bad == 1 ? "" : "s", full ? "integrity_check" : "quick_check");
	return 0;
}

/* The identity of the ledger file that a clean stop records, as the line
 * "clean=DEV INO SIZE MTIME_S MTIME_NS CTIME_S CTIME_NS". */
static void identity(const struct stat *sb, char *out, size_t len)
{
	snprintf(out, len, "clean=%llu %llu %lld %lld %ld %lld %ld", (unsigned long long)sb->st_dev,
		 (unsigned long long)sb->st_ino, (long long)sb->st_size, (long long)sb->st_mtim.tv_sec,
		 sb->st_mtim.tv_nsec, (long long)sb->st_ctim.tv_sec, sb->st_ctim.tv_nsec);
}

/* True when the ledger has no write-ahead log with frames in it. */
static bool wal_empty(const char *path)
{
	char wal[PATH_MAX];
	struct stat sb;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal))
		return false;
	return stat(wal, &sb) ? errno == ENOENT : sb.st_size == 0;
}

/* Whether the file is still as the last clean stop recorded it (the
 * "clean=" line of the lock file as it was found, in l->clean_mark). */
static bool unchanged_since_clean_stop(const struct sq_ledger *l)
{
	struct stat sb;
	char now[sizeof(l->clean_mark)];
	if (!l->clean_mark[0] || stat(l->path, &sb) || !wal_empty(l->path))
		return false;
	identity(&sb, now, sizeof(now));
	return !strcmp(now, l->clean_mark);
}

/* After a clean close: record the file's identity in the lock file (still
 * held). A file system stamps mtime from a clock that ticks every few
 * milliseconds, so a write just after ours could leave the same stamp: wait
 * until that clock has passed our last write first, so that any later
 * write shows. Best effort: without the record the next start runs the
 * full check. */
static void mark_clean(struct sq_ledger *l)
{
	struct stat sb;
	struct timespec now;
	char line[160];
	if (l->lock_fd < 0 || stat(l->path, &sb) || !wal_empty(l->path))
		return;
	for (int i = 0; i < 100; i++) {
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (now.tv_sec > sb.st_mtim.tv_sec ||
		    (now.tv_sec == sb.st_mtim.tv_sec && now.tv_nsec > sb.st_mtim.tv_nsec))
			break;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (stat(l->path, &sb))
		return;
	identity(&sb, line, sizeof(line));
	size_t n = strlen(line);
	line[n++] = '\n';
	off_t end = lseek(l->lock_fd, 0, SEEK_END);
	if (end >= 0 && pwrite(l->lock_fd, line, n, end) != (ssize_t)n)
		(void)ftruncate(l->lock_fd, end);
}

static void sq_check_info(const struct ledger *lb, bool *full, int64_t *ns)
{
	const struct sq_ledger *l = (const struct sq_ledger *)lb;
	*full = l->check_full;
	*ns = l->check_ns;
}

static int sq_check_file(const char *path, struct ledger_check *out, struct tally_err *e)
{
	struct sq_ledger l = { .path = (char *)path, .lock_fd = -1 };
	struct stat sb;
	int64_t app = 0;
	int rc;
	if (stat(path, &sb))
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	out->bytes = sb.st_size;
	if ((rc = sqlite3_open_v2(path, &l.db, SQLITE_OPEN_READONLY, NULL)) != SQLITE_OK) {
		rc = db_err(&l, e, rc, "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(l.db, 5000);
	if ((rc = pragma_int(&l, "PRAGMA application_id", &app, e)))
		goto out;
	if (app != LEDGER_APP_ID) {
		rc = err_set(e, -EINVAL, "%s: not a tally ledger (application_id %lld)", path, (long long)app);
		goto out;
	}
	int64_t t0 = time_mono_ns();
	str_copy(out->method, "integrity_check", sizeof(out->method));
	if ((rc = run_check(l.db, "integrity_check(100)", &out->problems, out->first, sizeof(out->first)))) {
		/* SQLite could not even walk it: that is a finding too */
		out->problems = 1;
		snprintf(out->first, sizeof(out->first), "%s", sqlite3_errmsg(l.db));
		rc = 0;
	}
	out->ns = time_mono_ns() - t0;
out:
	sqlite3_close(l.db);
	return rc;
}

/* ---- the writer's lock ----
 *
 * One writer per ledger (DESIGN.md): an exclusive flock(2) on the file
 * <ledger>.lock, taken before SQLite opens the ledger and held until
 * ledger_close, so the kernel drops it when the process ends, however it
 * ends. A lock file rather than the ledger itself: it can say who holds it
 * (the holder writes "pid=", "host=" and "since=" lines into it), and no
 * descriptor of ours is ever opened and closed on the ledger beside
 * SQLite's (closing one would drop SQLite's own POSIX locks). Readers and
 * `tally invoice --issue` never take it: SQLite's locking and WAL keep them
 * apart from the writer. The file stays after the writer ends: removing it
 * would let a third process lock a new file while a second waits on the
 * old one. */

/* What the lock file says of its holder, as "pid N on host H since T". */
static void lock_holder(int fd, char *out, size_t len)
{
	char buf[512], host[256] = "", since[64] = "";
	long pid = 0;
	/* the holder writes its lines just after taking the lock: a reader that
	 * came in between waits a little for them */
	for (int i = 0; i < 10 && !pid; i++) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		char *save = NULL;
		for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (!strncmp(line, "pid=", 4))
				pid = strtol(line + 4, NULL, 10);
			else if (!strncmp(line, "host=", 5))
				str_copy(host, line + 5, sizeof(host));
			else if (!strncmp(line, "since=", 6))
				str_copy(since, line + 6, sizeof(since));
		}
		if (!pid) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (pid > 0)
		snprintf(out, len, "pid %ld on host %s%s%s", pid, host[0] ? host : "(unknown)",
			 since[0] ? " since " : "", since);
	else
		snprintf(out, len, "a process that did not say who it is");
}

static int lock_take(struct sq_ledger *l, struct tally_err *e)
{
	size_t n = strlen(l->path) + sizeof(LEDGER_LOCK_SUFFIX);
	if (!(l->lock_path = fault_malloc(n)))
		return -ENOMEM;
	snprintf(l->lock_path, n, "%s%s", l->path, LEDGER_LOCK_SUFFIX);
	int fd = open(l->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(e, errno == ENOSPC ? -ENOSPC : -errno, "%s: cannot open the writer's lock file: %s",
			       l->lock_path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno;
		char who[400];
		if (err != EWOULDBLOCK) {
			close(fd);
			return err_set(e, -err, "%s: cannot lock: %s", l->lock_path, strerror(err));
		}
		lock_holder(fd, who, sizeof(who));
		close(fd);
		return err_set(e, -EBUSY, "%s: the ledger has a writer already: %s (lock %s); one tallyd"
			       " per ledger: stop that one, or give this one another ledger.path", l->path, who,
			       l->lock_path);
	}
	l->lock_fd = fd;
	/* what the last writer left: its clean stop, if it had one */
	char old[512];
	ssize_t got = pread(fd, old, sizeof(old) - 1, 0);
	old[got > 0 ? got : 0] = '\0';
	const char *mark = strstr(old, "\nclean=");
	if (mark) {
		size_t ml = strcspn(mark + 1, "\n");
		if (ml < sizeof(l->clean_mark)) {
			memcpy(l->clean_mark, mark + 1, ml);
			l->clean_mark[ml] = '\0';
		}
	}
	char host[256] = "", since[48], text[400];
	if (gethostname(host, sizeof(host) - 1))
		str_copy(host, "(unknown)", sizeof(host));
	int len = snprintf(text, sizeof(text), "pid=%ld\nhost=%s\nsince=%s\n", (long)getpid(), host,
			   iso_s(time_now_ns(), since, sizeof(since)));
	/* who holds it is for the message of a refused writer: a full disk
	 * that keeps it from being written does not stop this one. The
	 * clean-stop record goes: it is written again at the next clean stop */
	if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) != len)
		(void)ftruncate(fd, 0);
	return 0;
}

static void lock_release(struct sq_ledger *l)
{
	if (l->lock_fd >= 0)
		close(l->lock_fd);  /* drops the flock */
	l->lock_fd = -1;
}

/* ---- the hash chain (schemas/migrations/005-chain.sql, chain.c) ----
 *
 * Each transaction that writes usage appends one commit to the chain: for
 * every hour it wrote to, the digest of all of that hour's rows as they
 * are after it, and a hash over the previous commit's hash and those
 * digests. SQLite checks an hour when the transaction first writes to it. */

/* The row at st's current step, columns CHAIN_ROW_COLS from 0. */
static void chain_row_of(sqlite3_stmt *st, struct chain_row *r)
{
	r->resource_id = sqlite3_column_int64(st, 0);
	r->meter_id = sqlite3_column_int64(st, 1);
	r->device = (const char *)sqlite3_column_text(st, 2);
	r->device_len = (size_t)sqlite3_column_bytes(st, 2);
	r->hour_ns = sqlite3_column_int64(st, 3);
	r->qty.text = NULL;
	r->qty_text_len = 0;
	switch (sqlite3_column_type(st, 4)) {
	case SQLITE_INTEGER:
		r->qty.type = LEDGER_QTY_INT;
		r->qty.i = sqlite3_column_int64(st, 4);
		break;
	case SQLITE_FLOAT:
		r->qty.type = LEDGER_QTY_REAL;
		r->qty.d = sqlite3_column_double(st, 4);
		break;
	default:
		r->qty.type = LEDGER_QTY_OTHER;
		r->qty.text = (const char *)sqlite3_column_text(st, 4);
		r->qty_text_len = (size_t)sqlite3_column_bytes(st, 4);
	}
	r->spanned_ns = sqlite3_column_int64(st, 5);
	r->covered_ns = sqlite3_column_int64(st, 6);
	r->samples = sqlite3_column_int64(st, 7);
}

/* Every usage row of db in primary-key order to fn. Returns 0, fn's
 * non-zero return, or an SQLite result code as a positive number. */
static int usage_rows(sqlite3 *db, ledger_row_fn fn, void *ctx)
{
	sqlite3_stmt *st;
	struct chain_row r;
	int rc = sqlite3_prepare_v2(db, "SELECT " CHAIN_ROW_COLS " FROM usage"
				    " ORDER BY resource_id, meter_id, device, hour_ns", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		chain_row_of(st, &r);
		if ((rc = fn(ctx, &r))) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/* The upgrade to the chain: one commit sealing every hour the ledger holds,
 * as found. Inside the migration's transaction. */
static int chain_seal_upgrade(struct sq_ledger *l, struct tally_err *e)
{
	struct chain_hours s = { 0 };
	sqlite3_stmt *ch = NULL, *cc = NULL;
	unsigned char zero[CHAIN_HASH_LEN] = { 0 }, hash[CHAIN_HASH_LEN];
	int64_t now = time_now_ns();
	void *c = NULL;
	int rc = usage_rows(l->db, chain_hours_add, &s);
	if (rc == 0)
		rc = chain_hours_finish(&s);
	if (rc) {
		rc = rc < 0 ? err_set(e, rc, "%s: out of memory hashing the usage", l->path)
		     : db_err(l, e, rc, "cannot read the usage to seal it");
		goto out;
	}
	if (!s.n)
		goto out;   /* no usage (a new ledger): the chain starts with the first commit */
	if (!(c = chain_commit_begin(zero, 1, now, 1, (int64_t)s.n))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = sqlite3_prepare_v2(l->db, "INSERT INTO chain_hours (commit_id, hour_ns, rows, digest)"
				     " VALUES (1, ?1, ?2, ?3)", -1, &ch, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(l->db, "INSERT INTO chain (id, time_ns, upgrade, hours, hash)"
				     " VALUES (1, ?1, 1, ?2, ?3)", -1, &cc, NULL)) != SQLITE_OK) {
		rc = db_err(l, e, rc, "cannot seal the usage");
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		chain_commit_hour(c, s.v[i].hour_ns, s.v[i].rows, 0, s.v[i].digest);
		sqlite3_bind_int64(ch, 1, s.v[i].hour_ns);
		sqlite3_bind_int64(ch, 2, s.v[i].rows);
		sqlite3_bind_blob(ch, 3, s.v[i].digest, CHAIN_HASH_LEN, SQLITE_STATIC);
		if ((rc = sqlite3_step(ch)) != SQLITE_DONE) {
			rc = db_err(l, e, rc, "cannot seal the usage");
			goto out;
		}
		sqlite3_reset(ch);
	}
	rc = chain_commit_end(c, hash);
	c = NULL;
	if (rc)
		goto out;
	sqlite3_bind_int64(cc, 1, now);
	sqlite3_bind_int64(cc, 2, (int64_t)s.n);
	sqlite3_bind_blob(cc, 3, hash, CHAIN_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(cc) == SQLITE_DONE ? 0 : db_err(l, e, sqlite3_errcode(l->db), "cannot seal the usage");
out:
	chain_commit_free(c);
	sqlite3_finalize(ch);
	sqlite3_finalize(cc);
	chain_hours_free(&s);
	return rc;
}

/* The chain's head as committed: its last commit (id 0 and zeros: none). */
static int chain_load_head(struct sq_ledger *l, struct tally_err *e)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(l->db, "SELECT id, hash FROM chain ORDER BY id DESC LIMIT 1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(l, e, rc, "cannot read the hash chain");
	l->head_id = 0;
	memset(l->head, 0, sizeof(l->head));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		l->head_id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == CHAIN_HASH_LEN)
			memcpy(l->head, sqlite3_column_blob(st, 1), CHAIN_HASH_LEN);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(l, e, rc, "cannot read the hash chain");
}

/* Digest hour_ns's rows as they are now, through S_HOUR_ROWS. */
static int hash_hour(struct sq_ledger *l, int64_t hour_ns, struct chain_hour *h, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[S_HOUR_ROWS];
	struct chain_row r;
	int rc;
	if (chain_hour_begin(h, hour_ns))
		return err_set(e, -ENOMEM, "%s: out of memory hashing usage", l->path);
	sqlite3_bind_int64(st, 1, hour_ns);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		chain_row_of(st, &r);
		chain_hour_row(h, &r);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		chain_commit_free(h->ctx);
		h->ctx = NULL;
		return db_err(l, e, rc, "cannot read usage to hash it");
	}
	if (chain_hour_end(h))
		return err_set(e, -ENOMEM, "%s: out of memory hashing usage", l->path);
	return 0;
}

/* Before the open transaction first writes to hour_ns: does the hour hold
 * what the last commit that wrote it recorded? Nothing but the writer
 * changes usage, so a difference is a change from outside (sqlite3, a
 * flipped byte that kept the page valid). The commit then records in
 * *altered whose record it contradicted (-1: rows where no commit wrote),
 * so that sealing the hour again does not hide the change: tally ledger
 * verify reports it for good. 0: as recorded. */
static int hour_precheck(struct sq_ledger *l, int64_t hour_ns, int64_t *altered, struct tally_err *e)
{
	struct chain_hour h = { 0 };
	sqlite3_stmt *st = l->st[S_HOUR_LAST];
	int rc = hash_hour(l, hour_ns, &h, e);
	if (rc)
		return rc;
	*altered = 0;
	sqlite3_bind_int64(st, 1, hour_ns);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t commit = sqlite3_column_int64(st, 0), rows = sqlite3_column_int64(st, 1);
		if (rows != h.rows || sqlite3_column_bytes(st, 2) != CHAIN_HASH_LEN ||
		    memcmp(sqlite3_column_blob(st, 2), h.digest, CHAIN_HASH_LEN))
			*altered = commit;
		rc = SQLITE_DONE;
	} else if (rc == SQLITE_DONE && h.rows) {
		*altered = -1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_err(l, e, rc, "cannot read the hash chain");
}

/* Remember that the open transaction writes usage to hour_ns (the first
 * time: check the hour first). */
static int chain_touch(struct sq_ledger *l, int64_t hour_ns, struct tally_err *e)
{
	size_t at;
	int64_t altered;
	int rc;
	if (chain_touched_find(&l->touched, hour_ns, &at))
		return 0;
	if ((rc = hour_precheck(l, hour_ns, &altered, e)))
		return rc;
	if (chain_touched_insert(&l->touched, at, hour_ns, altered))
		return err_set(e, -ENOMEM, "%s: out of memory", l->path);
	return 0;
}

/* Append the open transaction's commit to the chain (inside it). */
static int chain_append(struct sq_ledger *l, struct tally_err *e)
{
	int64_t id = l->head_id + 1, now = time_now_ns();
	void *c = chain_commit_begin(l->head, id, now, 0, (int64_t)l->touched.n);
	struct chain_hour h = { 0 };
	int rc = 0;
	if (!c)
		return err_set(e, -ENOMEM, "%s: out of memory hashing a commit", l->path);
	for (size_t i = 0; i < l->touched.n; i++) {
		const struct touched *t = &l->touched.v[i];
		if ((rc = hash_hour(l, t->hour_ns, &h, e)))
			goto out;
		chain_commit_hour(c, h.hour_ns, h.rows, t->altered, h.digest);
		sqlite3_stmt *st = l->st[S_CHAIN_HOUR_PUT];
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, h.hour_ns);
		sqlite3_bind_int64(st, 3, h.rows);
		sqlite3_bind_int64(st, 4, t->altered);
		sqlite3_bind_blob(st, 5, h.digest, CHAIN_HASH_LEN, SQLITE_STATIC);
		if ((rc = step_done(l, S_CHAIN_HOUR_PUT, "cannot write the hash chain", e)))
			goto out;
	}
	rc = chain_commit_end(c, l->next);
	c = NULL;
	if (rc) {
		rc = err_set(e, -ENOMEM, "%s: out of memory hashing a commit", l->path);
		goto out;
	}
	sqlite3_stmt *st = l->st[S_CHAIN_PUT];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, 0);
	sqlite3_bind_int64(st, 4, (int64_t)l->touched.n);
	sqlite3_bind_blob(st, 5, l->next, CHAIN_HASH_LEN, SQLITE_STATIC);
	if ((rc = step_done(l, S_CHAIN_PUT, "cannot write the hash chain", e)))
		goto out;
	l->next_id = id;
out:
	chain_commit_free(c);
	return rc;
}

/* ---- the snapshot tally ledger verify reads (chain.c walks it) ---- */

struct sq_snap {
	struct ledger_snap base;
	struct sq_ledger l;          /* db and path only */
};

static int sq_snap_open(struct ledger_snap **out, const char *path, struct tally_err *e)
{
	struct sq_snap *s = fault_calloc(1, sizeof(*s));
	struct stat sb;
	int64_t app = 0, ver = 0;
	int rc;

	*out = NULL;
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	s->base.be = &ledger_sqlite_backend;
	s->l.lock_fd = -1;
	if (!(s->l.path = fault_strdup(path))) {
		free(s);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (stat(path, &sb)) {
		rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((rc = sqlite3_open_v2(path, &s->l.db, SQLITE_OPEN_READONLY, NULL)) != SQLITE_OK) {
		rc = db_err(&s->l, e, rc, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->l.db, 5000);
	if ((rc = pragma_int(&s->l, "PRAGMA application_id", &app, e)) ||
	    (rc = pragma_int(&s->l, "PRAGMA user_version", &ver, e)))
		goto fail;
	if (app != LEDGER_APP_ID) {
		rc = err_set(e, -EINVAL, "%s: not a tally ledger (application_id %lld)", path, (long long)app);
		goto fail;
	}
	if (ver > LEDGER_SCHEMA_VERSION || ver < CHAIN_VERSION) {
		rc = err_set(e, -EPROTO, "%s: ledger schema version %lld: %s", path, (long long)ver,
			     ver > LEDGER_SCHEMA_VERSION ? "newer than this tally knows; upgrade tally"
			     : "no hash chain yet; it starts when tallyd next opens the ledger");
		goto fail;
	}
	/* one snapshot: a running tallyd goes on committing meanwhile */
	if ((rc = exec(&s->l, "BEGIN", e)))
		goto fail;
	*out = &s->base;
	return 0;
fail:
	sqlite3_close(s->l.db);
	free(s->l.path);
	free(s);
	return rc;
}

static void sq_snap_close(struct ledger_snap *sb)
{
	struct sq_snap *s = (struct sq_snap *)sb;
	if (!s)
		return;
	exec(&s->l, "COMMIT", NULL);
	sqlite3_close(s->l.db);
	free(s->l.path);
	free(s);
}

static int sq_snap_links(struct ledger_snap *sb, ledger_link_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_snap *s = (struct sq_snap *)sb;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->l.db, "SELECT c.id, c.time_ns, c.upgrade, c.hours, c.hash, h.hour_ns, h.rows,"
				    " h.digest, h.altered FROM chain c LEFT JOIN chain_hours h ON h.commit_id = c.id"
				    " ORDER BY c.id, h.hour_ns", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(&s->l, e, rc, "cannot read the hash chain");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct chain_link k = {
			.id = sqlite3_column_int64(st, 0), .time_ns = sqlite3_column_int64(st, 1),
			.upgrade = sqlite3_column_int64(st, 2), .hours = sqlite3_column_int64(st, 3),
			.has_hour = sqlite3_column_type(st, 5) != SQLITE_NULL,
			.hour_ns = sqlite3_column_int64(st, 5), .rows = sqlite3_column_int64(st, 6),
			.altered = sqlite3_column_int64(st, 8),
		};
		if (sqlite3_column_bytes(st, 4) == CHAIN_HASH_LEN)
			memcpy(k.hash, sqlite3_column_blob(st, 4), CHAIN_HASH_LEN);
		if (sqlite3_column_bytes(st, 7) == CHAIN_HASH_LEN)
			memcpy(k.digest, sqlite3_column_blob(st, 7), CHAIN_HASH_LEN);
		if ((rc = fn(ctx, &k))) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_err(&s->l, e, rc, "cannot read the hash chain");
}

static int sq_snap_usage(struct ledger_snap *sb, ledger_row_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_snap *s = (struct sq_snap *)sb;
	int rc = usage_rows(s->l.db, fn, ctx);
	return rc > 0 ? db_err(&s->l, e, rc, "cannot read the usage") : rc;
}

static int sq_snap_orphans(struct ledger_snap *sb, int64_t *n, struct tally_err *e)
{
	struct sq_snap *s = (struct sq_snap *)sb;
	return pragma_int(&s->l, "SELECT count(*) FROM chain_hours WHERE commit_id NOT IN (SELECT id FROM chain)",
			  n, e);
}

static int migrate(struct sq_ledger *l, int64_t from, struct tally_err *e)
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
		if ((rc = exec(l, m[v], e)) || (v + 1 == CHAIN_VERSION && (rc = chain_seal_upgrade(l, e)))) {
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

/* Record this tally in the ledger's meta table (schemas/migrations/
 * 006-meta.sql): created_by when it made the ledger (from_ver 0),
 * upgraded_by when it migrated an older one to the meta table's schema,
 * written_by and written_ns every time. One transaction. */
static int meta_record(struct sq_ledger *l, int64_t from_ver, struct tally_err *e)
{
	const char *first = from_ver == 0 ? "created_by" : from_ver < 6 ? "upgraded_by" : NULL;
	char who[160], *sql;
	int rc;

	snprintf(who, sizeof(who), "%s (%s)", tally_version, tally_revision);
	sql = sqlite3_mprintf("BEGIN IMMEDIATE;"
			      "INSERT INTO meta (key, value) SELECT %Q, %Q WHERE %Q IS NOT NULL;"
			      "INSERT INTO meta (key, value) VALUES ('written_by', %Q), ('written_ns', '%lld')"
			      " ON CONFLICT (key) DO UPDATE SET value = excluded.value;"
			      "COMMIT",
			      first ? first : "", who, first, who, (long long)time_now_ns());
	if (!sql)
		return -ENOMEM;
	if ((rc = exec(l, sql, e)))
		exec(l, "ROLLBACK", NULL);
	sqlite3_free(sql);
	return rc;
}

static int sq_open(struct ledger **out, const char *path, struct tally_err *e)
{
	struct sq_ledger *l = fault_calloc(1, sizeof(*l));
	struct stat sb;
	int64_t app = 0, ver = 0, objects = 0;
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->base.be = &ledger_sqlite_backend;
	l->lock_fd = -1;
	if (!(l->path = fault_strdup(path))) {
		free(l);
		return -ENOMEM;
	}
	if ((rc = lock_take(l, e)))
		goto fail;
	int exists = stat(path, &sb) == 0;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (exists ? 0 : SQLITE_OPEN_CREATE);
	if ((rc = sqlite3_open_v2(path, &l->db, flags, NULL)) != SQLITE_OK) {
		rc = db_err(l, e, rc, "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(l->db, 5000);
	sqlite3_extended_result_codes(l->db, 0);
	/* a refused ledger is closed without a checkpoint: its file stays as it
	 * was, byte for byte, whatever its WAL holds */
	sqlite3_db_config(l->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
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
	} else if ((rc = check_integrity(l, !unchanged_since_clean_stop(l), e))) {
		goto fail;
	}
	sqlite3_db_config(l->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
	if ((rc = exec(l, "PRAGMA journal_mode = WAL", e)) ||
	    (rc = exec(l, "PRAGMA synchronous = FULL", e)) ||
	    (rc = exec(l, "PRAGMA foreign_keys = OFF", e)))
		goto fail;
	if (ver < LEDGER_SCHEMA_VERSION && (rc = migrate(l, ver, e)))
		goto fail;
	if ((rc = meta_record(l, ver, e)))
		goto fail;
	for (int i = 0; i < S_COUNT; i++)
		if ((rc = sqlite3_prepare_v3(l->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i],
					     NULL)) != SQLITE_OK) {
			rc = db_err(l, e, rc, "cannot prepare statement");
			goto fail;
		}
	if ((rc = chain_load_head(l, e)))
		goto fail;
	l->open = true;
	*out = &l->base;
	return 0;
fail:
	sq_close(&l->base);
	return rc;
}

static void sq_close(struct ledger *lb)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	if (!l)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(l->st[i]);
	/* a clean stop: the WAL folded into the file, and the file's identity
	 * recorded, so the next start may skip the full check */
	if (l->open && sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	if (sqlite3_close(l->db) == SQLITE_OK && l->open)
		mark_clean(l);
	lock_release(l);
	free(l->touched.v);
	free(l->lock_path);
	free(l->path);
	free(l);
}

/* Run a statement that returns no rows; reset it either way. */
static int step_done(struct sq_ledger *l, int which, const char *what, struct tally_err *e)
{
	sqlite3_stmt *st = l->st[which];
	/* the fault injector (fault.h): a write or a commit fails as a full
	 * disk would; BEGIN and ROLLBACK are never made to fail */
	int rc = which == S_COMMIT && fault_fail(FAULT_COMMIT) ? SQLITE_FULL
		 : which != S_COMMIT && which != S_BEGIN && which != S_ROLLBACK && fault_fail(FAULT_WRITE)
		 ? SQLITE_FULL : sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return db_err(l, e, rc, what);
	return 0;
}

static int sq_begin(struct ledger *lb, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	l->touched.n = 0;
	return step_done(l, S_BEGIN, "cannot begin a transaction", e);
}

/* A transaction that wrote usage appends its commit to the hash chain
 * first; the head moves once it is committed. */
static int sq_commit(struct ledger *lb, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	int rc;
	assert(!sq_idle(lb));   /* writes only between ledger_begin and ledger_commit */
	if (l->touched.n && (rc = chain_append(l, e)))
		return rc;
	if ((rc = step_done(l, S_COMMIT, "cannot commit", e)))
		return rc;
	if (l->touched.n) {
		l->head_id = l->next_id;
		memcpy(l->head, l->next, CHAIN_HASH_LEN);
	}
	l->touched.n = 0;
	return 0;
}

static void sq_rollback(struct ledger *lb)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	l->touched.n = 0;
	if (sqlite3_get_autocommit(l->db) == 0)
		step_done(l, S_ROLLBACK, "rollback", NULL);
}

static bool sq_idle(const struct ledger *lb)
{
	const struct sq_ledger *l = (const struct sq_ledger *)lb;
	return sqlite3_get_autocommit(l->db) != 0;
}

static int sq_meter_id(struct ledger *lb, const char *name, const char *kind, const char *unit,
		    int64_t *id, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int sq_put_resource(struct ledger *lb, struct ledger_resource *r, bool known, struct tally_err *e)
{
	(void)known;                 /* one writer: its ids are the ledger's */
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int sq_put_attrs(struct ledger *lb, int64_t resource_id, const struct resource_meta *m,
		     struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

/* A usage write refused by USAGE_SUM's NULL: said as what it is. */
static int usage_range_err(struct sq_ledger *l, const struct ledger_usage *u, int rc, struct tally_err *e)
{
	if (sqlite3_extended_errcode(l->db) != SQLITE_CONSTRAINT_NOTNULL)
		return rc;
	char t[32];
	return err_set(e, -ERANGE, "%s: the usage of resource %lld, meter %lld%s%s in the hour from %s would pass"
		       " 2^63 - 1 base units with %lld more: refused (the row keeps its exact count)", l->path,
		       (long long)u->resource_id, (long long)u->meter_id, u->device[0] ? ", device " : "",
		       u->device, iso_s(u->hour_ns, t, sizeof(t)), (long long)u->qty);
}

static int sq_add_usage(struct ledger *lb, const struct ledger_usage *u, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	int rc;
	if ((rc = chain_touch(l, u->hour_ns, e)))
		return rc;
	if (u->exists) {
		bind_usage(l->st[S_USAGE_UPD], u);
		if ((rc = step_done(l, S_USAGE_UPD, "cannot write usage", e)))
			return usage_range_err(l, u, rc, e);
		if (sqlite3_changes(l->db) == 1)
			return 0;
		/* not there after all: inserted below */
	}
	bind_usage(l->st[S_USAGE_ADD], u);
	if ((rc = step_done(l, S_USAGE_ADD, "cannot write usage", e)))
		return usage_range_err(l, u, rc, e);
	return 0;
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

static int sq_put_series(struct ledger *lb, const struct ledger_series *s, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int sq_put_agent(struct ledger *lb, const struct ledger_agent *a, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[S_AGENT_PUT];
	int rc;
	sqlite3_bind_text(st, 1, a->agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)a->last_seq);
	sqlite3_bind_int64(st, 3, a->last_time_ns);
	sqlite3_bind_int64(st, 4, a->batches);
	if (a->has_spool)
		sqlite3_bind_blob(st, 5, a->spool_id, LEDGER_SPOOL_ID_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, (int64_t)a->spool_first_seq);
	sqlite3_bind_int64(st, 7, a->contact_ns);
	sqlite3_bind_int64(st, 8, a->spool_batches);
	sqlite3_bind_int64(st, 9, a->spool_bytes);
	sqlite3_bind_int64(st, 10, (int64_t)a->from_seq);
	if ((rc = step_done(l, S_AGENT_PUT, "cannot write agent", e)))
		return rc;
	if (sqlite3_changes(l->db) != 1)
		return err_set(e, -ESTALE, "%s: agent '%s': its last batch in the ledger is no longer seq %llu:"
			       " another writer committed batches of it meanwhile", l->path, a->agent,
			       (unsigned long long)a->from_seq);
	return 0;
}

static int sq_add_event(struct ledger *lb, int64_t resource_id, const char *agent,
		     const struct lifecycle_event *ev, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int load(struct sq_ledger *l, const char *sql, int (*row)(sqlite3_stmt *, void *, void *),
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

static int sq_load_resources(struct ledger *lb, ledger_resource_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int sq_load_series(struct ledger *lb, ledger_series_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	return load(l, "SELECT resource_id, meter_id, device, agent, last_ns, origin_ns, kind,"
		    " last_value, flags FROM series", row_series, (void *)fn, ctx, e);
}

static int row_agent(sqlite3_stmt *st, void *fn, void *ctx)
{
	const unsigned char *name = sqlite3_column_text(st, 0);
	struct ledger_agent a = {
		.agent = name ? (const char *)name : "",
		.last_seq = (uint64_t)sqlite3_column_int64(st, 1),
		.last_time_ns = sqlite3_column_int64(st, 2),
		.batches = sqlite3_column_int64(st, 3),
		.spool_first_seq = (uint64_t)sqlite3_column_int64(st, 5),
		.contact_ns = sqlite3_column_int64(st, 6),
		.spool_batches = sqlite3_column_int64(st, 7),
		.spool_bytes = sqlite3_column_int64(st, 8),
	};
	const void *id = sqlite3_column_blob(st, 4);
	if (id && sqlite3_column_bytes(st, 4) == LEDGER_SPOOL_ID_LEN) {
		a.has_spool = true;
		memcpy(a.spool_id, id, LEDGER_SPOOL_ID_LEN);
	}
	return ((ledger_agent_fn)fn)(ctx, &a);
}

static int sq_load_agents(struct ledger *lb, ledger_agent_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	return load(l, "SELECT agent, last_seq, last_time_ns, batches, spool_id, spool_first_seq,"
		    " contact_ns, spool_batches, spool_bytes FROM agents", row_agent, (void *)fn, ctx, e);
}

static int sq_put_alert(struct ledger *lb, const struct ledger_alert *a, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int sq_del_alert(struct ledger *lb, const char *key, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[S_ALERT_DEL];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	return step_done(l, S_ALERT_DEL, "cannot delete an alert", e);
}

static int row_alert(sqlite3_stmt *st, void *fn, void *ctx)
{
	struct ledger_alert a = {
		.key = ledger_col_text(st, 0), .labels = ledger_col_text(st, 1), .annotations = ledger_col_text(st, 2),
		.rule = ledger_col_text(st, 3), .tenant = ledger_col_text(st, 4), .subject = ledger_col_text(st, 5),
		.device = ledger_col_text(st, 6), .state = ledger_col_text(st, 7),
		.active_ns = sqlite3_column_int64(st, 8), .fired_ns = sqlite3_column_int64(st, 9),
		.resolved_ns = sqlite3_column_int64(st, 10), .value = sqlite3_column_double(st, 11),
	};
	return ((ledger_alert_fn)fn)(ctx, &a);
}

static int sq_load_alerts(struct ledger *lb, ledger_alert_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	return load(l, "SELECT key, labels, annotations, rule, tenant, subject, device, state,"
		    " active_ns, fired_ns, resolved_ns, value FROM alerts ORDER BY key", row_alert, (void *)fn,
		    ctx, e);
}

static int sq_put_window_point(struct ledger *lb, const char *key, int64_t t_ns, double value,
			    struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[S_WND_PUT];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t_ns);
	sqlite3_bind_double(st, 3, value);
	return step_done(l, S_WND_PUT, "cannot write an alert window", e);
}

static int sq_trim_window(struct ledger *lb, const char *key, int64_t before_ns, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[before_ns == INT64_MAX ? S_WND_DEL : S_WND_TRIM];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (before_ns != INT64_MAX)
		sqlite3_bind_int64(st, 2, before_ns);
	return step_done(l, before_ns == INT64_MAX ? S_WND_DEL : S_WND_TRIM,
			 "cannot delete from an alert window", e);
}

static int row_window(sqlite3_stmt *st, void *fn, void *ctx)
{
	return ((ledger_window_fn)fn)(ctx, ledger_col_text(st, 0), sqlite3_column_int64(st, 1),
				      sqlite3_column_double(st, 2));
}

static int sq_load_windows(struct ledger *lb, ledger_window_fn fn, void *ctx, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	return load(l, "SELECT key, t_ns, value FROM alert_windows ORDER BY key, t_ns", row_window,
		    (void *)fn, ctx, e);
}

static int sq_last_event(struct ledger *lb, const char *uuid, const char *agent, const char *types,
		      char *type, size_t len, int64_t *t_ns, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
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

static int sq_import_seen(struct ledger *lb, const char *source, const char *event_id, bool *found,
			  char digest[65], int64_t *imported_ns, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[S_IMPORT_GET];
	int rc;
	*found = false;
	sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, event_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found = true;
		const unsigned char *d = sqlite3_column_text(st, 0);
		snprintf(digest, 65, "%s", d ? (const char *)d : "");
		*imported_ns = sqlite3_column_int64(st, 1);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : db_err(l, e, rc, "cannot read imported events");
}

static int sq_resource_tenant(struct ledger *lb, const char *uuid, bool *found, char *tenant, size_t len,
			      struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[S_RES_TENANT];
	*found = false;
	sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*found = true;
		const unsigned char *t = sqlite3_column_text(st, 0);
		snprintf(tenant, len, "%s", t ? (const char *)t : "");
		rc = SQLITE_DONE;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : db_err(l, e, rc, "cannot read resources");
}

static int sq_import_put(struct ledger *lb, const struct ledger_import_event *ev, struct tally_err *e)
{
	struct sq_ledger *l = (struct sq_ledger *)lb;
	sqlite3_stmt *st = l->st[S_IMPORT_PUT];
	sqlite3_bind_text(st, 1, ev->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->event_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, ev->resource_id);
	sqlite3_bind_int64(st, 4, ev->meter_id);
	sqlite3_bind_text(st, 5, ev->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, ev->time_ns);
	sqlite3_bind_int64(st, 7, ev->end_ns);
	sqlite3_bind_int64(st, 8, ev->quantity);
	sqlite3_bind_text(st, 9, ev->digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, ev->imported_ns);
	return step_done(l, S_IMPORT_PUT, "cannot record the imported event", e);
}

/* ---- whole tables, for tally ledger copy (tables.h) ---- */

struct sq_copy {
	struct ledger_copy base;
	struct sq_ledger *w;         /* a target: the writer (its lock and connection) */
	sqlite3 *db;
	char *path;
	bool committed;
	sqlite3_stmt *ins;           /* the target's INSERT of ins_t */
	const struct ledger_table *ins_t;
};

static int copy_err(struct sq_copy *c, int rc, const char *what, const char *table, struct tally_err *e)
{
	return err_set(e, rc == SQLITE_FULL ? -ENOSPC : -EIO, "%s: %s %s: %s", c->path, what, table,
		       sqlite3_errmsg(c->db));
}

static void sq_copy_close(struct ledger_copy *cb)
{
	struct sq_copy *c = (struct sq_copy *)cb;
	if (!c)
		return;
	sqlite3_finalize(c->ins);
	if (c->w) {
		if (!c->committed)
			sq_rollback(&c->w->base);
		sq_close(&c->w->base);
	} else {
		sqlite3_close(c->db);
	}
	free(c->path);
	free(c);
}

static int sq_copy_open(struct ledger_copy **out, const char *path, bool target, struct tally_err *e)
{
	struct sq_copy *c = fault_calloc(1, sizeof(*c));
	struct ledger *w = NULL;
	int rc;
	*out = NULL;
	if (!c || !(c->path = fault_strdup(path))) {
		free(c);
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->base.be = &ledger_sqlite_backend;
	if (!target) {
		if ((rc = ledger_ro_open(path, &c->db, e)))
			goto fail;
		if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			rc = copy_err(c, SQLITE_ERROR, "cannot read", "", e);
			goto fail;
		}
		*out = &c->base;
		return 0;
	}
	if ((rc = sq_open(&w, path, e)))
		goto fail;
	c->w = (struct sq_ledger *)w;
	c->db = c->w->db;
	if ((rc = sq_begin(w, e)))
		goto fail;
	for (int i = 0; i < ledger_n_tables; i++) {
		char sql[96];
		int64_t n = 0;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", ledger_tables[i].name);
		if ((rc = pragma_int(c->w, sql, &n, e)))
			goto fail;
		if (n) {
			rc = err_set(e, -EEXIST, "%s: not empty (%s holds %lld row%s): tally ledger copy writes only"
				     " into a new, empty ledger", path, ledger_tables[i].name, (long long)n, n == 1 ? "" : "s");
			goto fail;
		}
	}
	*out = &c->base;
	return 0;
fail:
	sq_copy_close(&c->base);
	return rc;
}

static int sq_copy_read(struct ledger_copy *cb, const struct ledger_table *t, ledger_tuple_fn fn, void *ctx,
			struct tally_err *e)
{
	struct sq_copy *c = (struct sq_copy *)cb;
	char sql[1024];
	size_t o = (size_t)snprintf(sql, sizeof(sql), "SELECT ");
	struct ledger_value v[LEDGER_MAX_COLS];
	sqlite3_stmt *st;
	int rc;
	for (int i = 0; i < t->n; i++)
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%s%s", i ? ", " : "", t->col[i].name);
	snprintf(sql + o, sizeof(sql) - o, " FROM %s ORDER BY %s", t->name, t->order);
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return copy_err(c, SQLITE_ERROR, "cannot read", t->name, e);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < t->n; i++) {
			memset(&v[i], 0, sizeof(v[i]));
			switch (sqlite3_column_type(st, i)) {
			case SQLITE_INTEGER:
				v[i].type = LV_INT;
				v[i].i = sqlite3_column_int64(st, i);
				break;
			case SQLITE_FLOAT:
				v[i].type = LV_REAL;
				v[i].d = sqlite3_column_double(st, i);
				break;
			case SQLITE_TEXT:
				v[i].type = LV_TEXT;
				v[i].p = (const char *)sqlite3_column_text(st, i);
				v[i].len = (size_t)sqlite3_column_bytes(st, i);
				break;
			case SQLITE_BLOB:
				v[i].type = LV_BLOB;
				v[i].p = sqlite3_column_blob(st, i);
				v[i].len = (size_t)sqlite3_column_bytes(st, i);
				break;
			default:
				v[i].type = LV_NULL;
			}
		}
		if ((rc = fn(ctx, v))) {
			sqlite3_finalize(st);
			return rc;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : copy_err(c, rc, "cannot read", t->name, e);
}

static int sq_copy_write(struct ledger_copy *cb, const struct ledger_table *t, const struct ledger_value *v,
			 struct tally_err *e)
{
	struct sq_copy *c = (struct sq_copy *)cb;
	int rc;
	if (c->ins_t != t) {
		char sql[1024];
		size_t o = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (", t->name);
		for (int i = 0; i < t->n; i++)
			o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%s%s", i ? ", " : "", t->col[i].name);
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, ") VALUES (");
		for (int i = 0; i < t->n; i++)
			o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%s?%d", i ? ", " : "", i + 1);
		snprintf(sql + o, sizeof(sql) - o, ")");
		sqlite3_finalize(c->ins);
		c->ins = NULL;
		c->ins_t = NULL;
		if (sqlite3_prepare_v2(c->db, sql, -1, &c->ins, NULL) != SQLITE_OK)
			return copy_err(c, SQLITE_ERROR, "cannot write", t->name, e);
		c->ins_t = t;
	}
	for (int i = 0; i < t->n; i++) {
		switch (v[i].type) {
		case LV_INT: sqlite3_bind_int64(c->ins, i + 1, v[i].i); break;
		case LV_REAL: sqlite3_bind_double(c->ins, i + 1, v[i].d); break;
		case LV_TEXT: sqlite3_bind_text(c->ins, i + 1, v[i].p, (int)v[i].len, SQLITE_STATIC); break;
		case LV_BLOB: sqlite3_bind_blob(c->ins, i + 1, v[i].p, (int)v[i].len, SQLITE_STATIC); break;
		default: sqlite3_bind_null(c->ins, i + 1);
		}
	}
	rc = sqlite3_step(c->ins);
	sqlite3_reset(c->ins);
	sqlite3_clear_bindings(c->ins);
	return rc == SQLITE_DONE ? 0 : copy_err(c, rc, "cannot write", t->name, e);
}

static int sq_copy_flush(struct ledger_copy *cb, const struct ledger_table *t, struct tally_err *e)
{
	(void)cb;
	(void)t;
	(void)e;
	return 0;                    /* written row by row */
}

static int sq_copy_commit(struct ledger_copy *cb, struct tally_err *e)
{
	struct sq_copy *c = (struct sq_copy *)cb;
	int rc;
	sqlite3_finalize(c->ins);
	c->ins = NULL;
	c->ins_t = NULL;
	if (!c->w)
		return 0;
	if ((rc = step_done(c->w, S_COMMIT, "cannot commit", e)))
		return rc;
	c->committed = true;
	return 0;
}

const struct ledger_backend ledger_sqlite_backend = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.check_info = sq_check_info,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.idle = sq_idle,
	.meter_id = sq_meter_id,
	.put_resource = sq_put_resource,
	.put_attrs = sq_put_attrs,
	.load_resources = sq_load_resources,
	.add_usage = sq_add_usage,
	.put_series = sq_put_series,
	.load_series = sq_load_series,
	.put_agent = sq_put_agent,
	.load_agents = sq_load_agents,
	.add_event = sq_add_event,
	.last_event = sq_last_event,
	.put_alert = sq_put_alert,
	.del_alert = sq_del_alert,
	.load_alerts = sq_load_alerts,
	.resource_tenant = sq_resource_tenant,
	.import_seen = sq_import_seen,
	.import_put = sq_import_put,
	.put_window_point = sq_put_window_point,
	.trim_window = sq_trim_window,
	.load_windows = sq_load_windows,
	.info = sq_info,
	.check = sq_check_file,
	.snap_open = sq_snap_open,
	.snap_links = sq_snap_links,
	.snap_usage = sq_snap_usage,
	.snap_orphans = sq_snap_orphans,
	.snap_close = sq_snap_close,
	.reader_open = sq_reader_open,
	.reader_close = sq_reader_close,
	.data_until = sq_data_until,
	.read_meters = sq_read_meters,
	.read_agents = sq_read_agents,
	.read_resources = sq_read_resources,
	.read_usage = sq_read_usage,
	.read_instances = sq_read_instances,
	.read_events = sq_read_events,
	.invoices_before = sq_invoices_before,
	.invoices_list = sq_invoices_list,
	.invoices_find = sq_invoices_find,
	.invoices_begin = sq_invoices_begin,
	.invoices_overlap = sq_invoices_overlap,
	.invoices_next_number = sq_invoices_next_number,
	.invoices_insert = sq_invoices_insert,
	.invoices_adjust = sq_invoices_adjust,
	.invoices_commit = sq_invoices_commit,
	.invoices_abort = sq_invoices_abort,
	.credit_notes_credited = sq_credit_notes_credited,
	.credit_notes_next_number = sq_credit_notes_next_number,
	.credit_notes_insert = sq_credit_notes_insert,
	.credit_notes_find = sq_credit_notes_find,
	.credit_notes_list = sq_credit_notes_list,
	.charges_add = sq_charges_add,
	.charges_read = sq_charges_read,
	.copy_open = sq_copy_open,
	.copy_read = sq_copy_read,
	.copy_write = sq_copy_write,
	.copy_flush = sq_copy_flush,
	.copy_commit = sq_copy_commit,
	.copy_close = sq_copy_close,
};
