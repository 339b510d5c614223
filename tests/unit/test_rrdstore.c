/*
 * test_rrdstore.c: the RRD files tally writes are what schemas/rrd.md says,
 * and the rrdtool CLI (an independent reader) reads back exactly the values
 * written.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "rrdstore.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

#define T0 1790812800LL   /* 2026-10-01T00:00:00Z, a multiple of 60 */
#define NS(s) ((int64_t)(s) * NS_PER_SEC)

static char dir[64];

static void setup(void)
{
	tu_mkdtemp(dir, sizeof(dir), "rrd");
}

static void teardown(void)
{
	tu_rmrf(dir);
}

/* Run a shell command, return its output (caller frees). */
static char *run(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	ck_assert_int_eq(pclose(p), 0);
	return buf;
}

/* The value rrdtool fetch prints for ds at time t (NAN if unknown). */
static double fetched(const char *file, const char *ds, int64_t t)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rrdtool fetch '%s' AVERAGE -r 60 -s %lld -e %lld", file,
		 (long long)(t - 60), (long long)t);
	char *out = run(cmd);
	/* header line: the DS names; then "t: v v v" lines */
	char *nl = strchr(out, '\n');
	ck_assert_ptr_nonnull(nl);
	*nl = '\0';
	char *rest = nl + 1, *save = NULL;
	int col = -1, i = 0;
	for (char *w = strtok_r(out, " ", &save); w; w = strtok_r(NULL, " ", &save), i++)
		if (!strcmp(w, ds))
			col = i;
	ck_assert_msg(col >= 0, "no data source %s in %s", ds, file);
	double v = NAN;
	int found = 0;
	char key[32];
	snprintf(key, sizeof(key), "%lld:", (long long)t);
	for (char *l = strtok_r(rest, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, key, strlen(key)))
			continue;
		char *p = l + strlen(key);
		for (int c = 0; c <= col; c++)
			v = strtod(p, &p);
		found = 1;
	}
	ck_assert_msg(found, "rrdtool fetch printed no row for %lld", (long long)t);
	free(out);
	return v;
}

START_TEST(test_layout_matches_schema)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char path[512], cmd[600];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "disk", "vda", "read_bytes", NS(T0 + 60), 4096), 0);
	ck_assert_int_eq(rrdstore_flush(s, &e), 0);
	ck_assert_int_eq(rrdstore_path(s, "vm-1", "disk", "vda", path, sizeof(path)), 0);
	char want[256];
	snprintf(want, sizeof(want), "%s/vm-1/disk-vda.rrd", dir);
	ck_assert_str_eq(path, want);
	snprintf(cmd, sizeof(cmd), "rrdtool info '%s'", path);
	char *info = run(cmd);
	/* schemas/rrd.md: step 60, GAUGE data sources of the disk group in
	 * meter-table order, heartbeat 3 steps, min 0, six RRAs */
	ck_assert_ptr_nonnull(strstr(info, "step = 60\n"));
	const char *ds[] = { "read_bytes", "write_bytes", "read_requests", "write_requests", "capacity",
			     "allocation" };
	for (size_t i = 0; i < 6; i++) {
		char k[128];
		snprintf(k, sizeof(k), "ds[%s].type = \"GAUGE\"", ds[i]);
		ck_assert_msg(strstr(info, k) != NULL, "missing %s", k);
		snprintf(k, sizeof(k), "ds[%s].minimal_heartbeat = 180", ds[i]);
		ck_assert_msg(strstr(info, k) != NULL, "missing %s", k);
		snprintf(k, sizeof(k), "ds[%s].index = %zu", ds[i], i);
		ck_assert_msg(strstr(info, k) != NULL, "missing %s", k);
	}
	const char *rra[] = { "rra[0].cf = \"AVERAGE\"", "rra[0].pdp_per_row = 1", "rra[0].rows = 1440",
			      "rra[1].pdp_per_row = 5", "rra[1].rows = 2016",
			      "rra[2].pdp_per_row = 60", "rra[2].rows = 2400",
			      "rra[3].pdp_per_row = 1440", "rra[3].rows = 800",
			      "rra[4].cf = \"MAX\"", "rra[4].pdp_per_row = 5",
			      "rra[5].cf = \"MAX\"", "rra[5].pdp_per_row = 60" };
	for (size_t i = 0; i < sizeof(rra) / sizeof(rra[0]); i++)
		ck_assert_msg(strstr(info, rra[i]) != NULL, "missing %s", rra[i]);
	ck_assert_ptr_null(strstr(info, "rra[6]"));
	free(info);
	rrdstore_close(s);
}
END_TEST

START_TEST(test_fetch_returns_values_written)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char path[512];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	/* three step-aligned timestamps, several data sources, one call */
	const double cpu[] = { 1.5, 2, 1000 }, mem[] = { 2147483648.0, 2147483648.0, 4294967296.0 };
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(rrdstore_put(s, "vm-1", "instance", "", "cpu", NS(T0 + 60 * (i + 1)), cpu[i]), 0);
		ck_assert_int_eq(rrdstore_put(s, "vm-1", "instance", "", "memory", NS(T0 + 60 * (i + 1)), mem[i]), 0);
	}
	ck_assert_int_eq(rrdstore_flush(s, &e), 0);
	struct rrdstore_stats st;
	rrdstore_get_stats(s, &st);
	ck_assert_uint_eq(st.updates, 1);         /* one rrd_update_r for the file */
	ck_assert_uint_eq(st.values, 6);
	ck_assert_uint_eq(st.files_created, 1);
	rrdstore_path(s, "vm-1", "instance", "", path, sizeof(path));
	for (int i = 0; i < 3; i++) {
		ck_assert_double_eq(fetched(path, "cpu", T0 + 60 * (i + 1)), cpu[i]);
		ck_assert_double_eq(fetched(path, "memory", T0 + 60 * (i + 1)), mem[i]);
		/* a data source never written is unknown, not zero */
		ck_assert(isnan(fetched(path, "vcpus", T0 + 60 * (i + 1))));
	}
	rrdstore_close(s);
}
END_TEST

START_TEST(test_reopen_skips_old_keeps_new)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char path[512];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "net", "52:54:00:00:00:01", "in_bytes", NS(T0 + 60), 10), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "net", "52:54:00:00:00:01", "in_bytes", NS(T0 + 120), 20), 0);
	ck_assert_int_eq(rrdstore_flush(s, &e), 0);
	rrdstore_close(s);
	/* a restarted aggregator replays T0+120 (already written) and adds T0+180 */
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "net", "52:54:00:00:00:01", "in_bytes", NS(T0 + 120), 99), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "net", "52:54:00:00:00:01", "in_bytes", NS(T0 + 180), 30), 0);
	ck_assert_msg(rrdstore_flush(s, &e) == 0, "%s", e.msg);
	struct rrdstore_stats st;
	rrdstore_get_stats(s, &st);
	ck_assert_uint_eq(st.skipped_old, 1);
	rrdstore_path(s, "vm-1", "net", "52:54:00:00:00:01", path, sizeof(path));
	ck_assert_double_eq(fetched(path, "in_bytes", T0 + 120), 20);
	ck_assert_double_eq(fetched(path, "in_bytes", T0 + 180), 30);
	rrdstore_close(s);
}
END_TEST

START_TEST(test_names_cannot_escape)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char path[512], want[512];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	ck_assert_int_eq(rrdstore_path(s, "../../etc/x", "disk", "a/b", path, sizeof(path)), 0);
	snprintf(want, sizeof(want), "%s/%%2E.%%2F..%%2Fetc%%2Fx/disk-a%%2Fb.rrd", dir);
	ck_assert_str_eq(path, want);
	/* host:3 and host_3 are different resources: different files */
	char p1[512], p2[512];
	rrdstore_path(s, "host:3", "if", "", p1, sizeof(p1));
	rrdstore_path(s, "host_3", "if", "", p2, sizeof(p2));
	ck_assert_str_ne(p1, p2);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "disk", "", "no_such_ds", NS(T0 + 60), 1), -EINVAL);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "nogroup", "", "cpu", NS(T0 + 60), 1), -EINVAL);
	rrdstore_close(s);
}
END_TEST

START_TEST(test_unwritable_dir_names_file)
{
	/* the resource's directory cannot be made (a plain file is in the way,
	 * which stops root too): flush fails and the message names the place */
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char blocker[160];
	snprintf(blocker, sizeof(blocker), "%s/vm-1", dir);
	FILE *fp = fopen(blocker, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "instance", "", "cpu", NS(T0 + 60), 1), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-2", "instance", "", "cpu", NS(T0 + 60), 1), 0);
	int rc = rrdstore_flush(s, &e);
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(e.msg, blocker) != NULL, "message '%s' does not name %s", e.msg, blocker);
	/* the other file was still written */
	char path[512];
	rrdstore_path(s, "vm-2", "instance", "", path, sizeof(path));
	ck_assert_int_eq(access(path, R_OK), 0);
	rrdstore_close(s);
}
END_TEST


/* A real-time (lossy) store whose writer is behind drops rows past its
 * budget and counts them; it never waits. Budget 10 rows, writer held:
 * 15 files of one row each are handed over, the first 10 fit, 5 are
 * dropped. Released, the 10 are written and the 5 files never exist. */
START_TEST(test_lossy_drops_past_budget)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char res[32], path[512];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, false, &e), 0);
	rrdstore_test_hold(s, true, 10);
	for (int i = 0; i < 15; i++) {
		snprintf(res, sizeof(res), "vm-%02d", i);
		ck_assert_int_eq(rrdstore_put(s, res, "instance", "", "cpu", NS(T0 + 60), i), 0);
	}
	/* one row per file spans no step: handoff keeps them all queued */
	ck_assert_int_eq(rrdstore_handoff(s, &e), 0);
	struct rrdstore_stats st;
	rrdstore_get_stats(s, &st);
	ck_assert_uint_eq(st.backlog_rows, 0);
	ck_assert_uint_eq(st.dropped, 0);
	/* a second row a step later makes every queue due */
	for (int i = 0; i < 15; i++) {
		snprintf(res, sizeof(res), "vm-%02d", i);
		ck_assert_int_eq(rrdstore_put(s, res, "instance", "", "cpu", NS(T0 + 120), i), 0);
	}
	ck_assert_int_eq(rrdstore_handoff(s, &e), 0);
	rrdstore_get_stats(s, &st);
	ck_assert_uint_eq(st.backlog_rows, 10);   /* 5 files of 2 rows */
	ck_assert_uint_eq(st.dropped, 20);        /* 10 files of 2 rows */
	rrdstore_test_hold(s, false, 10);
	ck_assert_int_eq(rrdstore_flush(s, &e), 0);
	rrdstore_get_stats(s, &st);
	ck_assert_uint_eq(st.backlog_rows, 0);
	ck_assert_uint_eq(st.files_created, 5);
	ck_assert_uint_eq(st.values, 10);
	for (int i = 0; i < 15; i++) {
		snprintf(res, sizeof(res), "vm-%02d", i);
		rrdstore_path(s, res, "instance", "", path, sizeof(path));
		ck_assert_int_eq(access(path, F_OK) == 0, i < 5);
	}
	rrdstore_close(s);
}
END_TEST

/* A fast-forward (lossless) store waits for its writer instead: with a
 * budget of 3 rows, 40 files x 4 rows all land, none dropped, and rrdtool
 * reads back each file's last value. */
START_TEST(test_lossless_waits)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char res[32], path[512];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, true, &e), 0);
	rrdstore_test_hold(s, false, 3);
	for (int r = 1; r <= 4; r++) {
		for (int i = 0; i < 40; i++) {
			snprintf(res, sizeof(res), "vm-%02d", i);
			ck_assert_int_eq(rrdstore_put(s, res, "instance", "", "vcpus", NS(T0 + 60 * r),
						      i + r), 0);
		}
		ck_assert_int_eq(rrdstore_handoff(s, &e), 0);
	}
	ck_assert_int_eq(rrdstore_flush(s, &e), 0);
	struct rrdstore_stats st;
	rrdstore_get_stats(s, &st);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.values, 160);
	ck_assert_uint_eq(st.files_created, 40);
	for (int i = 0; i < 40; i += 13) {
		snprintf(res, sizeof(res), "vm-%02d", i);
		rrdstore_path(s, res, "instance", "", path, sizeof(path));
		ck_assert_double_eq(fetched(path, "vcpus", T0 + 240), i + 4);
	}
	rrdstore_close(s);
}
END_TEST

/* close writes what is still queued: the last rows of a run are not lost. */
START_TEST(test_close_writes_queued)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char path[512];
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, false, &e), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "instance", "", "memory", NS(T0 + 60), 1024), 0);
	ck_assert_int_eq(rrdstore_handoff(s, &e), 0);   /* not due: stays queued */
	rrdstore_path(s, "vm-1", "instance", "", path, sizeof(path));
	rrdstore_close(s);
	ck_assert_double_eq(fetched(path, "memory", T0 + 60), 1024);
}
END_TEST

/* An error met by the writer thread reaches the next call, once. */
START_TEST(test_writer_error_reported_once)
{
	struct rrdstore *s;
	struct tally_err e = { 0 };
	char blocker[160];
	snprintf(blocker, sizeof(blocker), "%s/vm-1", dir);
	FILE *fp = fopen(blocker, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	ck_assert_int_eq(rrdstore_open(&s, dir, 60, false, &e), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "instance", "", "cpu", NS(T0 + 60), 1), 0);
	ck_assert_int_eq(rrdstore_put(s, "vm-1", "instance", "", "cpu", NS(T0 + 120), 1), 0);
	/* due (spans a step): handed over; the writer fails in the background */
	int rc = rrdstore_handoff(s, &e);
	if (rc == 0) {
		struct tally_err e2 = { 0 };
		rc = rrdstore_flush(s, &e2);
		e = e2;
	}
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(e.msg, blocker) != NULL, "message '%s' does not name %s", e.msg, blocker);
	struct tally_err e3 = { 0 };
	ck_assert_int_eq(rrdstore_flush(s, &e3), 0);
	rrdstore_close(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rrdstore");
	TCase *tc = tcase_create("rrd");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_layout_matches_schema);
	tcase_add_test(tc, test_fetch_returns_values_written);
	tcase_add_test(tc, test_reopen_skips_old_keeps_new);
	tcase_add_test(tc, test_names_cannot_escape);
	tcase_add_test(tc, test_unwritable_dir_names_file);
	tcase_add_test(tc, test_lossy_drops_past_budget);
	tcase_add_test(tc, test_lossless_waits);
	tcase_add_test(tc, test_close_writes_queued);
	tcase_add_test(tc, test_writer_error_reported_once);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
