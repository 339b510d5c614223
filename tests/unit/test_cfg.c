/*
 * test_cfg.c: the YAML config tree and its typed readers. Every mistake gives
 * its own message starting with file:line:column (1-based, counted by hand
 * from the YAML text in each case) and naming the key.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "err.h"
#include "tallytime.h"
#include "testutil.h"

static struct cfg_node *load(const char *text, int want_rc, struct tally_err *e)
{
	struct cfg_node *root = NULL;
	int rc = cfg_load_string("t.yaml", text, strlen(text), &root, e);
	ck_assert_msg(rc == want_rc, "load returned %d (%s)", rc, e->msg);
	return root;
}

START_TEST(test_values)
{
	struct tally_err e = { 0 };
	struct cfg_node *r = load("a:\n  n: 42\n  d: 1.5\n  b: yes\n  dur: 250ms\n  t: 2026-10\n"
				  "  s: hello\n  mode: fast\n", 0, &e);
	const struct cfg_node *a = NULL;
	ck_assert_int_eq(cfg_get_map(r, "a", &a, &e), 0);
	ck_assert_ptr_nonnull(a);
	static const char *const keys[] = { "n", "d", "b", "dur", "t", "s", "mode", NULL };
	ck_assert_int_eq(cfg_check_keys(a, "a", keys, &e), 0);
	uint64_t n = 0;
	double d = 0;
	bool b = false;
	int64_t dur = 0, t = 0;
	char s[16];
	int mode = -1;
	static const char *const modes[] = { "slow", "fast", NULL };
	ck_assert_int_eq(cfg_get_uint(a, "n", 0, 100, &n, &e), 0);
	ck_assert_uint_eq(n, 42);
	ck_assert_int_eq(cfg_get_double(a, "d", 0, 2, &d, &e), 0);
	ck_assert_double_eq(d, 1.5);
	ck_assert_int_eq(cfg_get_bool(a, "b", &b, &e), 0);
	ck_assert(b);
	ck_assert_int_eq(cfg_get_duration(a, "dur", 0, NS_PER_SEC, &dur, &e), 0);
	ck_assert_int_eq(dur, 250000000);
	ck_assert_int_eq(cfg_get_time(a, "t", &t, &e), 0);
	ck_assert_int_eq(t, 1790812800LL * NS_PER_SEC);
	ck_assert_int_eq(cfg_get_string(a, "s", s, sizeof(s), &e), 0);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(cfg_get_enum(a, "mode", modes, &mode, &e), 0);
	ck_assert_int_eq(mode, 1);
	/* an absent key leaves the default alone */
	n = 7;
	ck_assert_int_eq(cfg_get_uint(a, "missing", 0, 100, &n, &e), 0);
	ck_assert_uint_eq(n, 7);
	cfg_free(r);
}
END_TEST

static const struct {
	const char *name, *yaml, *msg;
	int rc;
} errors[] = {
	/* syntax: the flow sequence opened at 1:4 never closes; libyaml notices at 2:1 */
	{ "syntax", "a: [1, 2\nb: 3\n", "t.yaml:2:", -EINVAL },
	{ "duplicate key", "a: 1\nb: 2\na: 3\n", "t.yaml:3:1: key 'a' given twice (first at line 1)", -EINVAL },
	{ "alias", "a: &x 1\nb: *x\n", "t.yaml:1:4: yaml anchors are not allowed", -EINVAL },
	{ "two documents", "a: 1\n---\nb: 2\n", "more than one yaml document", -EINVAL },
	{ "map key", "? [1, 2]\n: 3\n", "t.yaml:1:3: a key must be a plain word", -EINVAL },
};

START_TEST(test_parse_errors)
{
	struct tally_err e = { 0 };
	struct cfg_node *r = load(errors[_i].yaml, errors[_i].rc, &e);
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(e.msg, errors[_i].msg) != NULL, "%s: message '%s' lacks '%s'", errors[_i].name,
		      e.msg, errors[_i].msg);
}
END_TEST

START_TEST(test_reader_errors)
{
	struct tally_err e = { 0 };
	/*                     col: 123456789 */
	struct cfg_node *r = load("sec:\n  n: -3\n  big: 500\n  m: {x: 1}\n  d: soon\n  b: maybe\n"
				  "  e: warp\n  t: 2026-13\n  typo: 1\n  s: toolongvalue\n", 0, &e);
	const struct cfg_node *sec = NULL;
	uint64_t n;
	int64_t d;
	bool b;
	int en;
	char s[4];
	static const char *const choices[] = { "realtime", "fast-forward", NULL };
	static const char *const keys[] = { "n", "big", "m", "d", "b", "e", "t", "s", NULL };
	ck_assert_int_eq(cfg_get_map(r, "sec", &sec, &e), 0);

	ck_assert_int_eq(cfg_check_keys(sec, "sec", keys, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "t.yaml:9:3: unknown key 'typo' in 'sec' (known: n, big, m, d, b, e, t, s)");
	ck_assert_int_eq(cfg_get_uint(sec, "n", 0, 10, &n, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "t.yaml:2:6: key 'n': expected a whole number (got '-3')");
	ck_assert_int_eq(cfg_get_uint(sec, "big", 0, 100, &n, &e), -ERANGE);
	ck_assert_str_eq(e.msg, "t.yaml:3:8: key 'big': 500 is out of range 0..100");
	ck_assert_int_eq(cfg_get_uint(sec, "m", 0, 100, &n, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "t.yaml:4:6: key 'm': expected a whole number, not a map");
	ck_assert_int_eq(cfg_get_duration(sec, "d", 0, NS_PER_HOUR, &d, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "t.yaml:5:6: key 'd': expected a duration like 10s (got 'soon')");
	ck_assert_int_eq(cfg_get_bool(sec, "b", &b, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "t.yaml:6:6: key 'b': expected true or false (got 'maybe')");
	ck_assert_int_eq(cfg_get_enum(sec, "e", choices, &en, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "t.yaml:7:6: key 'e': expected one of realtime, fast-forward (got 'warp')");
	ck_assert_int_eq(cfg_get_time(sec, "t", &d, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "t.yaml:8:6: key 't': '2026-13': month must be 01-12"));
	ck_assert_int_eq(cfg_get_string(sec, "s", s, sizeof(s), &e), -ERANGE);
	ck_assert_str_eq(e.msg, "t.yaml:10:6: key 's': longer than 3 characters");
	cfg_free(r);
}
END_TEST

START_TEST(test_empty_and_missing)
{
	struct tally_err e = { 0 };
	struct cfg_node *r = load("", 0, &e);
	ck_assert_ptr_null(r);
	r = load("# only a comment\n", 0, &e);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(cfg_load_file("/nonexistent/tally.yaml", &r, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/tally.yaml: cannot open"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc = tcase_create("cfg");
	tcase_add_test(tc, test_values);
	tcase_add_loop_test(tc, test_parse_errors, 0, (int)(sizeof(errors) / sizeof(errors[0])));
	tcase_add_test(tc, test_reader_errors);
	tcase_add_test(tc, test_empty_and_missing);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
