/*
 * test_cfg.c: the YAML config tree and its typed readers. Every mistake gives
 * its own message starting with file:line:column (1-based, counted by hand
 * from the YAML text in each case) and naming the key.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
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
	ck_assert_str_eq(e.msg, "t.yaml:2:6: key 'n': expected a whole number in decimal digits (got '-3')");
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

/* What each reader takes and refuses, the value as written in YAML after
 * "k: " (so the value starts at column 4 of line 1). Accepted values carry
 * the number they must read as, worked out by hand. */
enum reader { R_UINT, R_DOUBLE, R_DURATION, R_STRING, R_TIME };
static const struct {
	enum reader r;
	const char *yaml, *msg;   /* msg: a fragment of the error, NULL: accepted */
	double want;              /* uint, double; duration in ns; time in s */
} shapes[] = {
	{ R_UINT, "0", NULL, 0 },
	{ R_UINT, "65535", NULL, 65535 },
	{ R_UINT, "18446744073709551615", NULL, 18446744073709551615.0 },
	{ R_UINT, "0x10", "t.yaml:1:4: key 'k': expected a whole number in decimal digits (got '0x10')", 0 },
	{ R_UINT, "017", "expected a whole number in decimal digits (got '017')", 0 },
	{ R_UINT, "0o17", "expected a whole number", 0 },
	{ R_UINT, "+5", "expected a whole number", 0 },
	{ R_UINT, "\" 5\"", "expected a whole number", 0 },
	{ R_UINT, "\"5 \"", "expected a whole number", 0 },
	{ R_UINT, "\" -1\"", "expected a whole number", 0 },
	{ R_UINT, "1_000", "expected a whole number", 0 },
	{ R_UINT, "5.0", "expected a whole number", 0 },
	{ R_UINT, "1e3", "expected a whole number", 0 },
	{ R_UINT, "18446744073709551616", "t.yaml:1:4: key 'k': 18446744073709551616 is out of range", 0 },
	{ R_UINT, "\"\"", "expected a whole number", 0 },
	{ R_DOUBLE, "2.5", NULL, 2.5 },
	{ R_DOUBLE, "-1", NULL, -1 },
	{ R_DOUBLE, "0", NULL, 0 },
	{ R_DOUBLE, "1e-3", NULL, 0.001 },
	{ R_DOUBLE, "1.5E+2", NULL, 150 },
	{ R_DOUBLE, "-0.0", "t.yaml:1:4: key 'k': '-0.0' is a negative zero (write 0 if 0 is meant)", 0 },
	{ R_DOUBLE, "-0", "negative zero", 0 },
	{ R_DOUBLE, "-0e7", "negative zero", 0 },
	{ R_DOUBLE, "0x10", "t.yaml:1:4: key 'k': expected a decimal number like 2.5 (got '0x10')", 0 },
	{ R_DOUBLE, "0x1p3", "expected a decimal number", 0 },
	{ R_DOUBLE, "nan", "expected a decimal number", 0 },
	{ R_DOUBLE, "NaN", "expected a decimal number", 0 },
	{ R_DOUBLE, "inf", "expected a decimal number", 0 },
	{ R_DOUBLE, "-infinity", "expected a decimal number", 0 },
	{ R_DOUBLE, ".inf", "expected a decimal number", 0 },
	{ R_DOUBLE, "\" 1\"", "expected a decimal number", 0 },
	{ R_DOUBLE, "+1", "expected a decimal number", 0 },
	{ R_DOUBLE, ".5", "expected a decimal number", 0 },
	{ R_DOUBLE, "5.", "expected a decimal number", 0 },
	{ R_DOUBLE, "1e", "expected a decimal number", 0 },
	{ R_DOUBLE, "1,5", "expected a decimal number", 0 },
	{ R_DOUBLE, "1e999", "t.yaml:1:4: key 'k': 1e999 is out of range", 0 },
	{ R_DOUBLE, "1e-999", "1e-999 is out of range", 0 },
	{ R_DOUBLE, "2e6", "2e6 is out of range", 0 },
	{ R_DURATION, "10s", NULL, 10e9 },
	{ R_DURATION, "16", NULL, 16e9 },
	{ R_DURATION, "1.5m", NULL, 90e9 },
	{ R_DURATION, "250ms", NULL, 250e6 },
	{ R_DURATION, "0x10", "t.yaml:1:4: key 'k': expected a duration like 10s (got '0x10')", 0 },
	{ R_DURATION, "0x10s", "expected a duration like 10s", 0 },
	{ R_DURATION, "1e1s", "expected a duration like 10s", 0 },
	{ R_DURATION, "inf", "expected a duration like 10s", 0 },
	{ R_DURATION, "nan", "expected a duration like 10s", 0 },
	{ R_DURATION, "\" 10s\"", "expected a duration like 10s", 0 },
	{ R_DURATION, "\"10 s\"", "expected a duration like 10s", 0 },
	{ R_DURATION, "+10s", "expected a duration like 10s", 0 },
	{ R_DURATION, "-0s", "expected a duration like 10s", 0 },
	{ R_DURATION, ".5s", "expected a duration like 10s", 0 },
	{ R_DURATION, "10parsecs", "expected a duration like 10s", 0 },
	{ R_STRING, "hello world", NULL, 0 },
	{ R_STRING, "\"\"", NULL, 0 },
	{ R_STRING, "\"http://a:9093\\r\\nX-Evil: 1\"",
	  "t.yaml:1:4: key 'k': control character 0x0d at character 14 of the value", 0 },
	{ R_STRING, "\"a\\nb\"", "control character 0x0a at character 2", 0 },
	{ R_STRING, "\"a\\tb\"", "control character 0x09", 0 },
	{ R_STRING, "\"a\\x7fb\"", "control character 0x7f", 0 },
	{ R_STRING, "\"a\\x85b\"", "control character 0x85", 0 },
	{ R_STRING, "\"a\\0b\"", "NUL byte in a value", 0 },
	{ R_STRING, "\"                \"", "t.yaml:1:4: key 'k': '                ' begins with a space", 0 },
	{ R_STRING, "\" 0123456789abcdef\"", "begins with a space", 0 },
	{ R_STRING, "\"0123456789abcdef \"", "ends with a space", 0 },
	{ R_STRING, "|\n  two\n  lines\n", "control character 0x0a at character 4", 0 },
	{ R_TIME, "2026-10", NULL, 1790812800 },
	{ R_TIME, "\"@1790812800\"", NULL, 1790812800 },
	{ R_TIME, "\"@-1\"", NULL, -1 },
	{ R_TIME, "\"@ 1790812800\"", "t.yaml:1:4: key 'k': expected @ and decimal Unix seconds", 0 },
	{ R_TIME, "\"@+1790812800\"", "expected @ and decimal Unix seconds", 0 },
	{ R_TIME, "\"@\"", "expected @ and decimal Unix seconds", 0 },
};

START_TEST(test_shapes)
{
	struct tally_err e = { 0 };
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "k: %s\n", shapes[_i].yaml);
	struct cfg_node *r = NULL;
	int rc = cfg_load_string("t.yaml", yaml, strlen(yaml), &r, &e);
	if (rc) {   /* the NUL byte is refused by the parser itself */
		ck_assert_ptr_nonnull(shapes[_i].msg);
		ck_assert_msg(strstr(e.msg, shapes[_i].msg) != NULL, "'%s': '%s' lacks '%s'", shapes[_i].yaml,
			      e.msg, shapes[_i].msg);
		return;
	}
	uint64_t u = 7;
	double d = 7;
	int64_t ns = 7;
	char str[64] = "unset";
	switch (shapes[_i].r) {
	case R_UINT: rc = cfg_get_uint(r, "k", 0, UINT64_MAX, &u, &e); break;
	case R_DOUBLE: rc = cfg_get_double(r, "k", -10, 1e6, &d, &e); break;
	case R_DURATION: rc = cfg_get_duration(r, "k", 0, NS_PER_HOUR, &ns, &e); break;
	case R_STRING: rc = cfg_get_string(r, "k", str, sizeof(str), &e); break;
	case R_TIME: rc = cfg_get_time(r, "k", &ns, &e); break;
	}
	if (shapes[_i].msg) {
		ck_assert_msg(rc == -EINVAL || rc == -ERANGE, "'%s' accepted", shapes[_i].yaml);
		ck_assert_msg(strstr(e.msg, shapes[_i].msg) != NULL, "'%s': '%s' lacks '%s'", shapes[_i].yaml,
			      e.msg, shapes[_i].msg);
		/* a refused value leaves the default alone */
		ck_assert(u == 7 && d == 7 && ns == 7 && !strcmp(str, "unset"));
	} else {
		ck_assert_msg(rc == 0, "'%s' refused: %s", shapes[_i].yaml, e.msg);
		switch (shapes[_i].r) {
		case R_UINT: ck_assert_double_eq((double)u, shapes[_i].want); break;
		case R_DOUBLE: ck_assert_double_eq(d, shapes[_i].want); break;
		case R_DURATION: ck_assert_int_eq(ns, (int64_t)shapes[_i].want); break;
		case R_STRING: ck_assert_str_eq(str, !strcmp(shapes[_i].yaml, "\"\"") ? "" : shapes[_i].yaml); break;
		case R_TIME: ck_assert_int_eq(ns, (int64_t)shapes[_i].want * NS_PER_SEC); break;
		}
	}
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
	tcase_add_loop_test(tc, test_shapes, 0, (int)(sizeof(shapes) / sizeof(shapes[0])));
	tcase_add_test(tc, test_empty_and_missing);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
