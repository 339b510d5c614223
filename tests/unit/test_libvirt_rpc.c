/*
 * test_libvirt_rpc: libvirt's remote protocol as collectors/libvirt_rpc.c
 * speaks it, against a daemon played by this test on a Unix socket.
 *
 * A mock, and why: what is checked here is what a real libvirtd never
 * does on purpose (answers out of order with keepalive messages between,
 * an answer to a call given up on, lengths no message has, a second answer,
 * a close in the middle of a message, authentication asked, an info
 * answer of a block stats answer's size). The real daemon is the real-QEMU
 * tier's (tests/vm/run.sh): its guests' disk counters and vCPU counts,
 * read this way, against virsh's.
 *
 * The test's side decodes every call from the bytes on the wire with its
 * own reader (XDR written out: a 4-byte length, six header words, strings
 * padded to 4 bytes), and its answers' values are chosen to need all 64
 * bits (2^40 + 5, 2^63 - 1, -1: libvirt's "not supported").
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvirt_rpc.h"
#include "lvrpc_daemon.h"
#include "tallytime.h"
#include "testutil.h"

#define T_SEC 2000000000LL      /* generous: the daemon here answers at once */

static char dir[256], sock[300];

static const uint32_t AUTH_NONE_ONLY[] = { 0 };

static struct lvrpc *open_ok(void)
{
	struct lvrpc *c = NULL;
	struct tally_err e = { 0 };
	int rc = lvrpc_open(&c, sock, "qemu:///system", T_SEC, &e);
	ck_assert_msg(rc == 0, "open: %s", e.msg);
	return c;
}

static void setup(void)
{
	tu_mkdtemp(dir, sizeof(dir), "lvrpc");
	snprintf(sock, sizeof(sock), "%s/sock", dir);
}

static void teardown(void)
{
	tu_rmrf(dir);
}

/* ---- the calls --------------------------------------------------------------- */

static const unsigned char U1[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
				      0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00 };
static const unsigned char U2[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const unsigned char U3[16] = { 0xff, 0xfe, 0xfd, 0xfc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80 };

static void set_call(struct lvrpc_call *k, const char *name, const unsigned char *uuid, int id, const char *path)
{
	memset(k, 0, sizeof(*k));
	k->name = name;
	memcpy(k->uuid, uuid, 16);
	k->id = id;
	k->path = path;
}

/* Three calls written before any answer; answered third, (a stale
 * serial), first, with a keepalive message and an event of another
 * program between, the second with an error. */
static void script_pipelined(int fd)
{
	struct call c[3];
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get_call(fd, &c[i]), 0);
	want_stats_call(&c[0], "vm-a", U1, 7, "vda");
	want_stats_call(&c[1], "instance-0000beef", U2, 8, "sdb");   /* 17 bytes: 3 of padding */
	want_stats_call(&c[2], "vm-ccc", U3, 2147483647, "vdz");
	ck_assert_uint_eq(c[1].serial, c[0].serial + 1);
	ck_assert_uint_eq(c[2].serial, c[0].serial + 2);
	/* messages that are not answers, with the serial of a call waiting
	 * and an answer's size: taken, they would answer call 2 */
	unsigned char z[40] = { 0 };
	send_msg(fd, 0x6b656570, 1, 2, c[1].serial, 0, z, 40);       /* keepalive's program */
	reply_stats(fd, c[2].serial, 3, 4096, 0, 0);
	reply_stats(fd, c[0].serial - 1, 999, 999, 999, 999);         /* a call of no batch of this one */
	reply_stats(fd, c[0].serial, 5, (1LL << 40) + 5, INT64_MAX, -1);
	send_msg(fd, PROG, 1, 2, c[1].serial, 0, z, 40);              /* an event (type message) */
	reply_error(fd, c[1].serial, 55);                             /* VIR_ERR_OPERATION_INVALID */
	ck_assert_int_eq(get_call(fd, &c[0]), -1);                    /* the client closes */
}

START_TEST(pipelined_out_of_order)
{
	struct daemon d;
	daemon_start(&d, sock, script_pipelined);
	struct lvrpc *c = open_ok();
	struct lvrpc_call k[3], *p[3] = { &k[0], &k[1], &k[2] };
	set_call(&k[0], "vm-a", U1, 7, "vda");
	set_call(&k[1], "instance-0000beef", U2, 8, "sdb");
	set_call(&k[2], "vm-ccc", U3, 2147483647, "vdz");
	struct tally_err e = { 0 };
	ck_assert_msg(lvrpc_calls(c, p, 3, T_SEC, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(k[0].state, LVRPC_OK);
	ck_assert_int_eq(k[0].rd_req, 5);
	ck_assert(k[0].rd_bytes == 1099511627781LL);
	ck_assert(k[0].wr_req == 9223372036854775807LL);
	ck_assert(k[0].wr_bytes == -1);
	ck_assert_int_eq(k[1].state, LVRPC_ERROR);
	ck_assert_int_eq(k[1].vir_code, 55);
	ck_assert_int_eq(k[2].state, LVRPC_OK);
	ck_assert(k[2].rd_req == 3 && k[2].rd_bytes == 4096 && k[2].wr_req == 0 && k[2].wr_bytes == 0);
	lvrpc_close(c);
	daemon_join(&d);
}
END_TEST

/* Two calls, one answered: the other is late after the wait; the next
 * batch meets the late answer first and skips it. */
static void script_late(int fd)
{
	struct call a, b, n;
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	ck_assert_int_eq(get_call(fd, &a), 0);
	ck_assert_int_eq(get_call(fd, &b), 0);
	reply_stats(fd, a.serial, 1, 2, 3, 4);
	ck_assert_int_eq(get_call(fd, &n), 0);      /* the next batch's call: b was given up */
	want_stats_call(&n, "vm-next", U3, 9, "vdb");
	reply_stats(fd, b.serial, 100, 100, 100, 100);  /* too late for its batch */
	reply_stats(fd, n.serial, 6, 7, 8, 9);
	ck_assert_int_eq(get_call(fd, &n), -1);
}

START_TEST(late_answer_skipped)
{
	struct daemon d;
	daemon_start(&d, sock, script_late);
	struct lvrpc *c = open_ok();
	struct lvrpc_call k[2], *p[2] = { &k[0], &k[1] };
	set_call(&k[0], "vm-a", U1, 1, "vda");
	set_call(&k[1], "vm-b", U2, 2, "vda");
	struct tally_err e = { 0 };
	ck_assert_int_eq(lvrpc_calls(c, p, 2, 300 * 1000000LL, &e), 0);
	ck_assert_int_eq(k[0].state, LVRPC_OK);
	ck_assert(k[0].rd_req == 1 && k[0].wr_bytes == 4);
	ck_assert_int_eq(k[1].state, LVRPC_LATE);
	struct lvrpc_call nk, *np = &nk;
	set_call(&nk, "vm-next", U3, 9, "vdb");
	ck_assert_msg(lvrpc_calls(c, &np, 1, T_SEC, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(nk.state, LVRPC_OK);
	ck_assert(nk.rd_req == 6 && nk.rd_bytes == 7 && nk.wr_req == 8 && nk.wr_bytes == 9);
	lvrpc_close(c);
	daemon_join(&d);
}
END_TEST

/* virDomainGetInfo beside block stats. Batch 1: info of vm-a, stats of
 * vm-b, info of vm-c, answered last to first, vm-a's with an error
 * (VIR_ERR_NO_DOMAIN). Batch 2, of the same kind (its first look waits as
 * long as batch 1 took): both answered in reverse order. Batch 3: an info
 * answered with a block stats answer's 40 bytes: the protocol broken. */
static void script_info(int fd)
{
	struct call c[3];
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get_call(fd, &c[i]), 0);
	want_info_call(&c[0], "vm-a", U1, 7);
	want_stats_call(&c[1], "vm-b", U2, 8, "vda");
	want_info_call(&c[2], "vm-ccc", U3, 2147483647);
	usleep(20000);
	reply_info(fd, c[2].serial, 3, (1ULL << 40) + 1, 1ULL << 33, 64, UINT64_MAX);
	reply_stats(fd, c[1].serial, 10, 20, 30, 40);
	reply_error(fd, c[0].serial, 42);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(get_call(fd, &c[i]), 0);
	want_info_call(&c[0], "vm-a", U1, 7);
	want_stats_call(&c[1], "vm-b", U2, 8, "vda");
	reply_stats(fd, c[1].serial, 11, 21, 31, 41);
	reply_info(fd, c[0].serial, 1, 2097152, 1048576, 2, 123456789);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(get_call(fd, &c[i]), 0);
	reply_stats(fd, c[0].serial, 1, 1, 1, 1);
	char x;
	while (read(fd, &x, 1) > 0)
		;
}

START_TEST(info_calls)
{
	struct daemon d;
	daemon_start(&d, sock, script_info);
	struct lvrpc *c = open_ok();
	struct lvrpc_call k[3], *p[3] = { &k[0], &k[1], &k[2] };
	set_call(&k[0], "vm-a", U1, 7, "unused");
	k[0].proc = LVRPC_GET_INFO;
	set_call(&k[1], "vm-b", U2, 8, "vda");
	set_call(&k[2], "vm-ccc", U3, 2147483647, "unused");
	k[2].proc = LVRPC_GET_INFO;
	struct tally_err e = { 0 };
	ck_assert_msg(lvrpc_calls(c, p, 3, T_SEC, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(k[0].state, LVRPC_ERROR);
	ck_assert_int_eq(k[0].vir_code, 42);
	ck_assert_int_eq(k[1].state, LVRPC_OK);
	ck_assert(k[1].rd_req == 10 && k[1].rd_bytes == 20 && k[1].wr_req == 30 && k[1].wr_bytes == 40);
	ck_assert_int_eq(k[2].state, LVRPC_OK);
	ck_assert_uint_eq(k[2].dom_state, 3);
	ck_assert(k[2].max_mem_kib == 1099511627777ULL && k[2].mem_kib == 8589934592ULL);
	ck_assert_uint_eq(k[2].vcpus, 64);
	ck_assert(k[2].cpu_time_ns == UINT64_MAX);
	/* batch 2: the same kind */
	ck_assert_msg(lvrpc_calls(c, p, 2, T_SEC, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(k[0].state, LVRPC_OK);
	ck_assert(k[0].dom_state == 1 && k[0].max_mem_kib == 2097152 && k[0].mem_kib == 1048576);
	ck_assert(k[0].vcpus == 2 && k[0].cpu_time_ns == 123456789);
	ck_assert_int_eq(k[1].state, LVRPC_OK);
	ck_assert(k[1].rd_req == 11 && k[1].wr_bytes == 41);
	/* batch 3: an info answer of the wrong size */
	struct lvrpc_call *q[2] = { &k[0], &k[2] };
	ck_assert_int_eq(lvrpc_calls(c, q, 2, T_SEC, &e), -EPROTO);
	ck_assert_msg(strstr(e.msg, "an info answer of 40 bytes (32 expected)") != NULL, "%s", e.msg);
	lvrpc_close(c);
	daemon_join(&d);
}
END_TEST

/* What a daemon must never send, each on a connection of its own: the
 * client gives up on the connection (-EPROTO, or -EPIPE at a close), and
 * the calls it has no answer for are late. */
static int hostile_case;

static void script_hostile(int fd)
{
	struct call a, b;
	unsigned char m[40];
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	ck_assert_int_eq(get_call(fd, &a), 0);
	ck_assert_int_eq(get_call(fd, &b), 0);
	reply_stats(fd, a.serial, 1, 1, 1, 1);      /* one good answer first */
	switch (hostile_case) {
	case 0: /* a length below a header */
		put32(m, 3);
		wr(fd, m, 4);
		break;
	case 1: /* a length above what is taken */
		put32(m, LVRPC_MAX_FRAME + 1);
		wr(fd, m, 4);
		break;
	case 2: /* an answer of the wrong size */
		memset(m, 0, sizeof(m));
		reply(fd, b.serial, m, 8);
		break;
	case 3: /* a second answer to the first call */
		reply_stats(fd, a.serial, 2, 2, 2, 2);
		break;
	case 4: /* the daemon goes away in the middle of a message */
		put32(m, 68);
		put32(m + 4, PROG);
		wr(fd, m, 8);
		shutdown(fd, SHUT_WR);
		break;
	case 5: /* an answer of another protocol version */
		send_msg(fd, PROG, 2, 1, b.serial, 0, m, 40);
		break;
	case 6: /* a status no answer has */
		send_msg(fd, PROG, 1, 1, b.serial, 7, m, 40);
		break;
	case 7: /* an error without its code */
		send_msg(fd, PROG, 1, 1, b.serial, 1, m, 2);
		break;
	}
	/* then nothing more: wait for the client to close */
	char x;
	while (read(fd, &x, 1) > 0)
		;
}

START_TEST(hostile_daemon)
{
	static const int want[] = { -EPROTO, -EPROTO, -EPROTO, -EPROTO, -EPIPE, -EPROTO, -EPROTO, -EPROTO };
	hostile_case = _i;
	struct daemon d;
	daemon_start(&d, sock, script_hostile);
	struct lvrpc *c = open_ok();
	struct lvrpc_call k[2], *p[2] = { &k[0], &k[1] };
	set_call(&k[0], "vm-a", U1, 1, "vda");
	set_call(&k[1], "vm-b", U2, 2, "vda");
	struct tally_err e = { 0 };
	int rc = lvrpc_calls(c, p, 2, T_SEC, &e);
	ck_assert_msg(rc == want[_i], "case %d: %d (%s), want %d", _i, rc, e.msg, want[_i]);
	ck_assert_msg(strstr(e.msg, "libvirt socket") != NULL, "case %d: message '%s'", _i, e.msg);
	ck_assert_int_eq(k[0].state, LVRPC_OK);
	ck_assert_int_eq(k[1].state, LVRPC_LATE);
	lvrpc_close(c);
	daemon_join(&d);
}
END_TEST

/* ---- the bulk stats call ------------------------------------------------------ */

/* Two records, after a keepalive message and an answer to an earlier
 * serial (both skipped): vm-a with one parameter of every type, values
 * needing every bit of their width; vm-b with none. Then the same call
 * answered by an error (code 55), then again answered, on the same
 * connection. */
static void script_all_stats(int fd)
{
	struct call c;
	struct xbuf x = { .n = 0 };
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 17, 0x20000001);
	send_msg(fd, 0x6b656570, 1, 2, 0, 0, NULL, 0);   /* keepalive's program */
	reply_buf(fd, c.serial - 1, 0, &x);             /* an earlier call's: skipped */
	xb_u32(&x, 2);
	xb_record(&x, "vm-a", U1, 7, 7);
	xb_word(&x, "state.state", 1, (uint32_t)-3);
	xb_word(&x, "state.reason", 2, 4000000000u);
	xb_wide(&x, "net.0.rx.drop", 3, (uint64_t)-1);
	xb_wide(&x, "net.0.rx.bytes", 4, (1ULL << 40) + 5);
	xb_wide(&x, "balloon.ratio", 5, 0x3FE0000000000000ULL);    /* 0.5 */
	xb_word(&x, "vcpu.0.halted", 6, 1);
	xb_string(&x, "net.0.name", "vnet12345");
	xb_record(&x, "a-domain-name-of-21ch", U2, 9, 0);
	reply_buf(fd, c.serial, 0, &x);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 2, 1);
	reply_error(fd, c.serial, 55);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 2, 1);
	x.n = 0;
	xb_u32(&x, 0);
	reply_buf(fd, c.serial, 0, &x);
	ck_assert_int_eq(get_call(fd, &c), -1);
}

START_TEST(all_stats)
{
	struct daemon d;
	daemon_start(&d, sock, script_all_stats);
	struct lvrpc *c = open_ok();
	struct lvrpc_answer a;
	struct tally_err e = { 0 };
	int code = -1;
	ck_assert_msg(lvrpc_all_stats(c, 17, 0x20000001, T_SEC, &a, &code, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(code, 0);
	ck_assert_int_eq(a.n, 2);
	ck_assert_str_eq(a.recs[0].name, "vm-a");
	ck_assert(memcmp(a.recs[0].uuid, U1, 16) == 0);
	ck_assert_uint_eq(a.recs[0].id, 7);
	ck_assert_int_eq(a.recs[0].nparams, 7);
	const virTypedParameter *p = a.recs[0].params;
	ck_assert_str_eq(p[0].field, "state.state");
	ck_assert_int_eq(p[0].type, VIR_TYPED_PARAM_INT);
	ck_assert_int_eq(p[0].value.i, -3);
	ck_assert_str_eq(p[1].field, "state.reason");
	ck_assert_int_eq(p[1].type, VIR_TYPED_PARAM_UINT);
	ck_assert_uint_eq(p[1].value.ui, 4000000000u);
	ck_assert_int_eq(p[2].type, VIR_TYPED_PARAM_LLONG);
	ck_assert(p[2].value.l == -1);
	ck_assert_str_eq(p[3].field, "net.0.rx.bytes");
	ck_assert_int_eq(p[3].type, VIR_TYPED_PARAM_ULLONG);
	ck_assert(p[3].value.ul == 1099511627781ULL);
	ck_assert_int_eq(p[4].type, VIR_TYPED_PARAM_DOUBLE);
	ck_assert(p[4].value.d == 0.5);
	ck_assert_int_eq(p[5].type, VIR_TYPED_PARAM_BOOLEAN);
	ck_assert_int_eq(p[5].value.b, 1);
	ck_assert_str_eq(p[6].field, "net.0.name");
	ck_assert_int_eq(p[6].type, VIR_TYPED_PARAM_STRING);
	ck_assert_str_eq(p[6].value.s, "vnet12345");
	ck_assert_str_eq(a.recs[1].name, "a-domain-name-of-21ch");
	ck_assert(memcmp(a.recs[1].uuid, U2, 16) == 0);
	ck_assert_uint_eq(a.recs[1].id, 9);
	ck_assert_int_eq(a.recs[1].nparams, 0);
	lvrpc_answer_free(&a);
	/* the daemon's error: its code, and the connection goes on */
	ck_assert_int_eq(lvrpc_all_stats(c, 2, 1, T_SEC, &a, &code, &e), -EREMOTEIO);
	ck_assert_int_eq(code, 55);
	ck_assert_int_eq(a.n, 0);
	ck_assert_msg(lvrpc_all_stats(c, 2, 1, T_SEC, &a, &code, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(a.n, 0);
	lvrpc_answer_free(&a);
	lvrpc_close(c);
	daemon_join(&d);
}
END_TEST

/* Stats answers this client cannot read, each refused whole (-EPROTO,
 * nothing given; ASan sees nothing leak): a record cut short; more
 * records than the body could hold; more parameters than it could hold; a
 * field name of 80 bytes (libvirt's own limit is 79 and a NUL); a type
 * word libvirt does not have; a string longer than the body; bytes after
 * the last record. Case 7: no answer within the time (-ETIMEDOUT). Where
 * each stops, counted by hand: the record count is 4 bytes, a record's
 * domain "vm-a" 32 (the name 8, the UUID 16, the id and the parameter
 * count 4 each), a parameter "state.state" of a word 24 (the name 16, the
 * type and the value 4 each). */
static int stats_case;

static void script_stats_hostile(int fd)
{
	struct call c;
	struct xbuf x = { .n = 0 };
	char long_field[81];
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 1, 1);
	switch (stats_case) {
	case 0:
		xb_u32(&x, 1);
		xb_record(&x, "vm-a", U1, 7, 1);
		xb_str(&x, "state.state");
		xb_u32(&x, 1);                     /* and no value */
		break;
	case 1:
		xb_u32(&x, 0xffffffffu);
		xb_record(&x, "vm-a", U1, 7, 0);
		break;
	case 2:
		xb_u32(&x, 1);
		xb_record(&x, "vm-a", U1, 7, 0x10000000u);
		xb_word(&x, "state.state", 1, 1);
		break;
	case 3:
		memset(long_field, 'f', 80);
		long_field[80] = '\0';
		xb_u32(&x, 1);
		xb_record(&x, "vm-a", U1, 7, 1);
		xb_word(&x, long_field, 1, 1);
		break;
	case 4:
		xb_u32(&x, 1);
		xb_record(&x, "vm-a", U1, 7, 1);
		xb_word(&x, "state.state", 8, 1);
		break;
	case 5:
		xb_u32(&x, 1);
		xb_record(&x, "vm-a", U1, 7, 1);
		xb_str(&x, "net.0.name");
		xb_u32(&x, 7);
		xb_u32(&x, 4096);                  /* a string of 4096 bytes: 4 there */
		xb_u32(&x, 0x41414141);
		break;
	case 6:
		xb_u32(&x, 1);
		xb_record(&x, "vm-a", U1, 7, 1);
		xb_word(&x, "state.state", 1, 1);
		xb_u32(&x, 0);
		break;
	case 7:
		break;                                 /* no answer */
	}
	if (stats_case != 7)
		reply_buf(fd, c.serial, 0, &x);
	char b;
	while (read(fd, &b, 1) > 0)
		;
}

START_TEST(all_stats_hostile)
{
	stats_case = _i;
	struct daemon d;
	daemon_start(&d, sock, script_stats_hostile);
	struct lvrpc *c = open_ok();
	struct lvrpc_answer a;
	struct tally_err e = { 0 };
	int code = -1;
	int rc = lvrpc_all_stats(c, 1, 1, _i == 7 ? 300000000LL : T_SEC, &a, &code, &e);
	ck_assert_msg(rc == (_i == 7 ? -ETIMEDOUT : -EPROTO), "case %d: %d (%s)", _i, rc, e.msg);
	static const char *const said[] = { "cut short at byte 56 of 56", "cut short at byte 4 of 36",
					    "cut short at byte 36 of 60", "name of 80 bytes", "of type 8",
					    "cut short at byte 60 of 64", "4 bytes after", "no stats answer within 300 ms" };
	ck_assert_msg(strstr(e.msg, "libvirt socket") != NULL && strstr(e.msg, said[_i]) != NULL,
		      "case %d: message '%s'", _i, e.msg);
	ck_assert_int_eq(a.n, 0);
	ck_assert_ptr_null(a.recs);
	ck_assert_ptr_null(a.params);
	ck_assert_ptr_null(a.strings);
	lvrpc_close(c);
	daemon_join(&d);
}
END_TEST

/* A daemon that asks for polkit on its read-only socket: not opened, and
 * CONNECT_OPEN never sent (serve_open stops after AUTH_LIST; the close is
 * the next thing it reads). */
static void script_auth(int fd)
{
	static const uint32_t polkit[] = { 2 };
	struct call c;
	serve_open(fd, "qemu:///system", polkit, 1);
	ck_assert_int_eq(get_call(fd, &c), -1);
}

/* A daemon that refuses the URI. */
static void script_refuse(int fd)
{
	struct call c;
	unsigned char b[4];
	ck_assert_int_eq(get_call(fd, &c), 0);
	put32(b, 0);
	reply(fd, c.serial, b, 4);                  /* no authentication */
	ck_assert_int_eq(get_call(fd, &c), 0);
	ck_assert_uint_eq(c.proc, 1);
	reply_error(fd, c.serial, 38);              /* VIR_ERR_NO_CONNECT */
	ck_assert_int_eq(get_call(fd, &c), -1);
}

START_TEST(open_refused)
{
	struct daemon d;
	struct lvrpc *c = NULL;
	struct tally_err e = { 0 };
	daemon_start(&d, sock, script_auth);
	ck_assert_int_eq(lvrpc_open(&c, sock, "qemu:///system", T_SEC, &e), -EACCES);
	ck_assert_msg(strstr(e.msg, "authentication") != NULL, "%s", e.msg);
	daemon_join(&d);
	daemon_start(&d, sock, script_refuse);
	ck_assert_int_eq(lvrpc_open(&c, sock, "qemu:///system", T_SEC, &e), -EACCES);
	ck_assert_msg(strstr(e.msg, "libvirt error 38") != NULL, "%s", e.msg);
	daemon_join(&d);
	/* nobody listening */
	unlink(sock);
	ck_assert_int_lt(lvrpc_open(&c, sock, "qemu:///system", T_SEC, &e), 0);
}
END_TEST

/* A name longer than any libvirt gives (4096 bytes) is refused before
 * anything of its batch is written: the daemon sees only the next batch's
 * call (none of the refused one's, not even the calls before it). A socket
 * path longer than a Unix address holds is refused at open. */
static void script_no_call(int fd)
{
	struct call c;
	serve_open(fd, "qemu:///system", AUTH_NONE_ONLY, 1);
	ck_assert_int_eq(get_call(fd, &c), 0);     /* the batch after: its call alone */
	want_stats_call(&c, "vm-ok", U3, 3, "vdc");
	reply_stats(fd, c.serial, 1, 2, 3, 4);
	ck_assert_int_eq(get_call(fd, &c), -1);
}

START_TEST(hostile_names)
{
	struct daemon d;
	daemon_start(&d, sock, script_no_call);
	struct lvrpc *c = open_ok();
	char *big = malloc(4098);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', 4097);
	big[4097] = '\0';
	struct lvrpc_call k[2], *p[2] = { &k[0], &k[1] };
	set_call(&k[0], "vm-a", U1, 1, "vda");
	set_call(&k[1], big, U2, 2, "vda");
	struct tally_err e = { 0 };
	ck_assert_int_eq(lvrpc_calls(c, p, 2, T_SEC, &e), -EINVAL);
	set_call(&k[1], "vm-b", U2, 2, big);
	ck_assert_int_eq(lvrpc_calls(c, p, 2, T_SEC, &e), -EINVAL);
	struct lvrpc_call ok, *op = &ok;
	set_call(&ok, "vm-ok", U3, 3, "vdc");
	ck_assert_msg(lvrpc_calls(c, &op, 1, T_SEC, &e) == 0, "%s", e.msg);
	ck_assert(ok.state == LVRPC_OK && ok.wr_bytes == 4);
	lvrpc_close(c);
	daemon_join(&d);
	char path[200];
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(lvrpc_open(&c, path, "qemu:///system", T_SEC, &e), -ENAMETOOLONG);
	ck_assert_int_eq(lvrpc_open(&c, sock, big, T_SEC, &e), -EINVAL);
	free(big);
}
END_TEST

static void mksock(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

START_TEST(socket_for)
{
	char out[256], want[300];
	ck_assert_int_eq(lvrpc_socket_for("qemu:///system", dir, out, sizeof(out)), -ENOENT);
	mksock("libvirt-sock-ro");
	ck_assert_int_eq(lvrpc_socket_for("qemu:///system", dir, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/libvirt-sock-ro", dir);
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(lvrpc_socket_for("qemu+unix:///system", dir, out, sizeof(out)), 0);
	/* a file of that name that is not a socket is passed over */
	snprintf(want, sizeof(want), "%s/virtqemud-sock-ro", dir);
	FILE *f = fopen(want, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(lvrpc_socket_for("qemu:///system", dir, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/libvirt-sock-ro", dir);
	ck_assert_str_eq(out, want);
	/* virtqemud's, when it runs, before libvirtd's */
	snprintf(want, sizeof(want), "%s/virtqemud-sock-ro", dir);
	unlink(want);
	mksock("virtqemud-sock-ro");
	ck_assert_int_eq(lvrpc_socket_for("qemu:///system", dir, out, sizeof(out)), 0);
	ck_assert_str_eq(out, want);
	/* the library's way for anything else */
	ck_assert_int_eq(lvrpc_socket_for("qemu:///session", dir, out, sizeof(out)), -ENOENT);
	ck_assert_int_eq(lvrpc_socket_for("qemu:///system?socket=/x", dir, out, sizeof(out)), -ENOENT);
	ck_assert_int_eq(lvrpc_socket_for("qemu+ssh://host/system", dir, out, sizeof(out)), -ENOENT);
	ck_assert_int_eq(lvrpc_socket_for("test:///default", dir, out, sizeof(out)), -ENOENT);
	/* an out buffer too short for the path: not found rather than cut */
	ck_assert_int_eq(lvrpc_socket_for("qemu:///system", dir, out, 8), -ENOENT);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("libvirt_rpc");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, pipelined_out_of_order);
	tcase_add_test(tc, late_answer_skipped);
	tcase_add_test(tc, info_calls);
	tcase_add_loop_test(tc, hostile_daemon, 0, 8);
	tcase_add_test(tc, all_stats);
	tcase_add_loop_test(tc, all_stats_hostile, 0, 8);
	tcase_add_test(tc, open_refused);
	tcase_add_test(tc, hostile_names);
	tcase_add_test(tc, socket_for);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
