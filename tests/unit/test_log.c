/*
 * test_log.c: a repeated failure is said once per back-off window: at once
 * the first time, then after 60 s with the number of repeats, the window
 * doubling up to one hour; the end of the condition is said once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tallytime.h"
#include "testutil.h"

static int64_t now;
static int64_t fake_clock(void) { return now; }

/* Run the calls with stderr going to a temp file; return what was written. */
static char *captured;
static int saved_fd = -1;
static FILE *cap;

static void capture_begin(void)
{
	fflush(stderr);
	cap = tmpfile();
	saved_fd = dup(2);
	dup2(fileno(cap), 2);
}

static void capture_end(void)
{
	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	long n = ftell(cap);
	rewind(cap);
	free(captured);
	captured = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(captured, 1, (size_t)n, cap), (size_t)n);
	fclose(cap);
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_backoff)
{
	struct complaint c = { 0 };
	log_set_clock(fake_clock);
	log_set_level(LOG_INFO);
	now = 1000 * NS_PER_SEC;
	capture_begin();
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 1);     /* t=0: said */
	now += 30 * NS_PER_SEC;
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 0);     /* t=30: quiet */
	now += 29 * NS_PER_SEC;
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 0);     /* t=59: quiet */
	now += 1 * NS_PER_SEC;
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 1);     /* t=60: said, 2 repeats */
	now += 119 * NS_PER_SEC;
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 0);     /* window now 120 s */
	now += 1 * NS_PER_SEC;
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 1);     /* t=180 */
	complaint_clear(&c, "libvirt: connected again");
	ck_assert_int_eq(complain(&c, LOG_WARN, "libvirt: connection refused"), 1);     /* fresh window */
	capture_end();
	ck_assert_int_eq(lines(captured), 5);
	ck_assert_ptr_nonnull(strstr(captured, "warning: libvirt: connection refused\n"));
	ck_assert_ptr_nonnull(strstr(captured, "libvirt: connection refused (repeated 2 times since the last report)"));
	ck_assert_ptr_nonnull(strstr(captured, "(repeated 1 times since the last report)"));
	ck_assert_ptr_nonnull(strstr(captured, "info: libvirt: connected again"));
	log_set_clock(NULL);
}
END_TEST

START_TEST(test_ceiling)
{
	struct complaint c = { 0 };
	log_set_clock(fake_clock);
	now = 0;
	capture_begin();
	/* windows 60, 120, 240, ... 3840 -> capped at 3600 */
	for (int i = 0; i < 12; i++) {
		ck_assert_int_eq(complain(&c, LOG_ERR, "disk full"), 1);
		now += c.window_ns;
	}
	capture_end();
	ck_assert_int_eq(c.window_ns, COMPLAINT_MAX_NS);
	ck_assert_int_eq(lines(captured), 12);
	log_set_clock(NULL);
	free(captured);
	captured = NULL;
}
END_TEST

START_TEST(test_levels)
{
	enum log_level l;
	ck_assert_int_eq(log_level_parse("debug", &l), 0);
	ck_assert_int_eq(l, LOG_DEBUG);
	ck_assert_int_lt(log_level_parse("loud", &l), 0);
	log_set_level(LOG_ERR);
	capture_begin();
	log_msg(LOG_WARN, "not shown");
	log_msg(LOG_ERR, "shown");
	capture_end();
	ck_assert_ptr_null(strstr(captured, "not shown"));
	ck_assert_ptr_nonnull(strstr(captured, "error: shown"));
	log_set_level(LOG_INFO);
}
END_TEST

/* Under systemd, stderr is the journal (JOURNAL_STREAM names its device and
 * inode): records carry a syslog priority prefix and no time of their own.
 * Anywhere else, or when the variable names another stream, the time. */
START_TEST(test_journal_format)
{
	struct stat st;
	char js[64];
	log_set_clock(fake_clock);
	log_set_level(LOG_DEBUG);
	now = 1790812800LL * NS_PER_SEC;   /* 2026-10-01T00:00:00Z */
	capture_begin();
	ck_assert_int_eq(fstat(2, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_detect_journal();
	log_msg(LOG_ERR, "a");
	log_msg(LOG_WARN, "b");
	log_msg(LOG_INFO, "c");
	log_msg(LOG_DEBUG, "d");
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_detect_journal();
	log_msg(LOG_WARN, "e");
	unsetenv("JOURNAL_STREAM");
	log_detect_journal();
	capture_end();
	ck_assert_str_eq(captured, "<3>tally error: a\n<4>tally warning: b\n<6>tally info: c\n"
			 "<7>tally debug: d\n2026-10-01T00:00:00Z tally warning: e\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_ceiling);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_journal_format);
	suite_add_tcase(s, tc);
	int rc = tu_run(s);
	free(captured);
	return rc;
}
