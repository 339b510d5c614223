/*
 * lvrpc_daemon.h: a libvirt daemon played by a test on a Unix socket, for
 * collectors/libvirt_rpc.c's client (test_libvirt_rpc, test_libvirt). A
 * mock, because the tests need a daemon that misbehaves on purpose or
 * answers what the test chooses; the real daemon is the real-QEMU tier's.
 *
 * It decodes every call from the bytes on the wire with its own reader
 * (XDR written out: a 4-byte length, six header words, strings padded to 4
 * bytes). A script (one function per test) runs on the daemon's thread
 * with the accepted connection.
 */
#ifndef TALLY_LVRPC_DAEMON_H
#define TALLY_LVRPC_DAEMON_H

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROG 0x20008086u
static inline void wr(int fd, const void *p, size_t n)
{
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
}

static inline int rd(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static inline uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

struct call {
	uint32_t proc, serial;
	unsigned char body[4096];
	size_t len;
};

/* One call off the wire, its header checked. -1 at the client's close. */
static inline int get_call(int fd, struct call *c)
{
	unsigned char h[28];
	if (rd(fd, h, 28))
		return -1;
	uint32_t len = be32(h);
	ck_assert_uint_ge(len, 28);
	ck_assert_uint_le(len - 28, sizeof(c->body));
	ck_assert_uint_eq(be32(h + 4), PROG);
	ck_assert_uint_eq(be32(h + 8), 1);      /* version */
	ck_assert_uint_eq(be32(h + 16), 0);     /* a call */
	ck_assert_uint_eq(be32(h + 24), 0);     /* status ok */
	c->proc = be32(h + 12);
	c->serial = be32(h + 20);
	c->len = len - 28;
	ck_assert_int_eq(rd(fd, c->body, c->len), 0);
	return 0;
}

/* An XDR string at *off of b: checked against want, padding zeros. */
static inline void want_str(const unsigned char *b, size_t len, size_t *off, const char *want)
{
	size_t n = strlen(want);
	ck_assert_uint_le(*off + 4, len);
	ck_assert_uint_eq(be32(b + *off), n);
	*off += 4;
	ck_assert_uint_le(*off + (n + 3) / 4 * 4, len);
	ck_assert(memcmp(b + *off, want, n) == 0);
	for (size_t i = n; i % 4; i++)
		ck_assert_int_eq(b[*off + i], 0);
	*off += (n + 3) / 4 * 4;
}

/* A message of program prog, type 1 (reply) unless said, with a body. */
static inline void send_msg(int fd, uint32_t prog, uint32_t vers, uint32_t type, uint32_t serial, uint32_t status,
		     const unsigned char *body, size_t blen)
{
	unsigned char m[28 + 256];
	ck_assert_uint_le(blen, 256);
	put32(m, (uint32_t)(28 + blen));
	put32(m + 4, prog);
	put32(m + 8, vers);
	put32(m + 12, 64);
	put32(m + 16, type);
	put32(m + 20, serial);
	put32(m + 24, status);
	if (blen)
		memcpy(m + 28, body, blen);
	wr(fd, m, 28 + blen);
}

static inline void reply(int fd, uint32_t serial, const unsigned char *body, size_t blen)
{
	send_msg(fd, PROG, 1, 1, serial, 0, body, blen);
}

static inline void reply_stats(int fd, uint32_t serial, int64_t rd_req, int64_t rd_bytes, int64_t wr_req, int64_t wr_bytes)
{
	unsigned char b[40];
	const int64_t v[5] = { rd_req, rd_bytes, wr_req, wr_bytes, 0 };
	for (int i = 0; i < 5; i++) {
		put32(b + 8 * i, (uint32_t)((uint64_t)v[i] >> 32));
		put32(b + 8 * i + 4, (uint32_t)v[i]);
	}
	reply(fd, serial, b, sizeof(b));
}

static inline void reply_error(int fd, uint32_t serial, int code)
{
	unsigned char b[16] = { 0 };
	put32(b, (uint32_t)code);
	put32(b + 4, 10);    /* the error's domain (VIR_FROM_QEMU) */
	/* message: absent; the rest of virNetMessageError is not read */
	send_msg(fd, PROG, 1, 1, serial, 1, b, sizeof(b));
}

/* The opening: AUTH_LIST answered with these types, then CONNECT_OPEN
 * checked (URI, read-only) and answered ok. */
static inline void serve_open(int fd, const char *uri, const uint32_t *types, size_t n)
{
	struct call c;
	unsigned char b[64];
	ck_assert_int_eq(get_call(fd, &c), 0);
	ck_assert_uint_eq(c.proc, 66);
	ck_assert_uint_eq(c.len, 0);
	put32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put32(b + 4 + 4 * i, types[i]);
	reply(fd, c.serial, b, 4 + 4 * n);
	if (n && types[0] != 0)
		return;          /* the client must not go on */
	ck_assert_int_eq(get_call(fd, &c), 0);
	ck_assert_uint_eq(c.proc, 1);
	size_t off = 0;
	ck_assert_uint_eq(be32(c.body), 1);  /* the name is there */
	off = 4;
	want_str(c.body, c.len, &off, uri);
	ck_assert_uint_eq(c.len, off + 4);
	ck_assert_uint_eq(be32(c.body + off), 1);   /* VIR_CONNECT_RO */
	reply(fd, c.serial, NULL, 0);
}

/* The domain a call names (name, UUID, id), checked; the offset after it. */
static inline size_t want_dom(const struct call *c, const char *name, const unsigned char *uuid, int id)
{
	size_t off = 0;
	want_str(c->body, c->len, &off, name);
	ck_assert_uint_le(off + 20, c->len);
	ck_assert(memcmp(c->body + off, uuid, 16) == 0);
	off += 16;
	ck_assert_int_eq((int)be32(c->body + off), id);
	return off + 4;
}

/* A block stats call: the domain and disk it names, checked. */
static inline void want_stats_call(const struct call *c, const char *name, const unsigned char *uuid, int id,
			    const char *path)
{
	ck_assert_uint_eq(c->proc, 64);
	size_t off = want_dom(c, name, uuid, id);
	want_str(c->body, c->len, &off, path);
	ck_assert_uint_eq(off, c->len);
}

/* An info call: the domain it names, checked (no disk: the body ends). */
static inline void want_info_call(const struct call *c, const char *name, const unsigned char *uuid, int id)
{
	ck_assert_uint_eq(c->proc, 16);
	ck_assert_uint_eq(want_dom(c, name, uuid, id), c->len);
}

/* An info answer: the state, the memory maximum and current (KiB), the
 * vCPUs and the cpu time, each narrow field in a word of its own. */
static inline void reply_info(int fd, uint32_t serial, uint32_t state, uint64_t max_kib, uint64_t kib, uint32_t vcpus,
			      uint64_t cpu_ns)
{
	unsigned char b[32];
	put32(b, state);
	put32(b + 4, (uint32_t)(max_kib >> 32));
	put32(b + 8, (uint32_t)max_kib);
	put32(b + 12, (uint32_t)(kib >> 32));
	put32(b + 16, (uint32_t)kib);
	put32(b + 20, vcpus);
	put32(b + 24, (uint32_t)(cpu_ns >> 32));
	put32(b + 28, (uint32_t)cpu_ns);
	reply(fd, serial, b, sizeof(b));
}

/* An answer's body built up word by word (XDR): the bulk stats answers. */
struct xbuf {
	unsigned char b[16384];
	size_t n;
};

static inline void xb_u32(struct xbuf *x, uint32_t v)
{
	ck_assert_uint_le(x->n + 4, sizeof(x->b));
	put32(x->b + x->n, v);
	x->n += 4;
}

static inline void xb_hyper(struct xbuf *x, uint64_t v)
{
	xb_u32(x, (uint32_t)(v >> 32));
	xb_u32(x, (uint32_t)v);
}

static inline void xb_str(struct xbuf *x, const char *s)
{
	size_t n = strlen(s), padded = (n + 3) / 4 * 4;
	xb_u32(x, (uint32_t)n);
	ck_assert_uint_le(x->n + padded, sizeof(x->b));
	memset(x->b + x->n, 0, padded);
	memcpy(x->b + x->n, s, n);
	x->n += padded;
}

/* A record's domain: name, UUID, id; then its number of parameters. */
static inline void xb_record(struct xbuf *x, const char *name, const unsigned char *uuid, int id, uint32_t nparams)
{
	xb_str(x, name);
	ck_assert_uint_le(x->n + 16, sizeof(x->b));
	memcpy(x->b + x->n, uuid, 16);
	x->n += 16;
	xb_u32(x, (uint32_t)id);
	xb_u32(x, nparams);
}

/* Typed parameters: the field's name, the type word (libvirt's
 * virTypedParameterType: 1 int, 2 uint, 3 llong, 4 ullong, 5 double,
 * 6 boolean, 7 string) and the value. */
static inline void xb_word(struct xbuf *x, const char *field, uint32_t type, uint32_t v)
{
	xb_str(x, field);
	xb_u32(x, type);
	xb_u32(x, v);
}

static inline void xb_wide(struct xbuf *x, const char *field, uint32_t type, uint64_t v)
{
	xb_str(x, field);
	xb_u32(x, type);
	xb_hyper(x, v);
}

static inline void xb_string(struct xbuf *x, const char *field, const char *v)
{
	xb_str(x, field);
	xb_u32(x, 7);
	xb_str(x, v);
}

/* A reply of any size (status 0 ok, 1 error), procedure 344. */
static inline void reply_buf(int fd, uint32_t serial, uint32_t status, const struct xbuf *x)
{
	unsigned char h[28];
	put32(h, (uint32_t)(28 + x->n));
	put32(h + 4, PROG);
	put32(h + 8, 1);
	put32(h + 12, 344);
	put32(h + 16, 1);
	put32(h + 20, serial);
	put32(h + 24, status);
	wr(fd, h, 28);
	if (x->n)
		wr(fd, x->b, x->n);
}

/* A bulk stats call: no domain list, these groups and flags, checked. */
static inline void want_all_stats_call(const struct call *c, uint32_t groups, uint32_t flags)
{
	ck_assert_uint_eq(c->proc, 344);
	ck_assert_uint_eq(c->len, 12);
	ck_assert_uint_eq(be32(c->body), 0);
	ck_assert_uint_eq(be32(c->body + 4), groups);
	ck_assert_uint_eq(be32(c->body + 8), flags);
}

typedef void (*script_fn)(int fd);

struct daemon {
	int lfd;
	script_fn script;
	pthread_t t;
};

static inline void *daemon_run(void *arg)
{
	struct daemon *d = arg;
	int fd = accept(d->lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	d->script(fd);
	close(fd);
	return NULL;
}

static inline void daemon_start(struct daemon *d, const char *sock, script_fn script)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	unlink(sock);
	d->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(d->lfd, 0);
	ck_assert_int_eq(bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(d->lfd, 1), 0);
	d->script = script;
	ck_assert_int_eq(pthread_create(&d->t, NULL, daemon_run, d), 0);
}

static inline void daemon_join(struct daemon *d)
{
	pthread_join(d->t, NULL);
	close(d->lfd);
}

#endif
