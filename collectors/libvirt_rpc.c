/*
 * libvirt_rpc.c: virDomainBlockStats and virDomainGetInfo for many domains
 * at once over libvirt's remote protocol (libvirt_rpc.h has the protocol
 * and why).
 *
 * One blocking-free socket: the calls of a batch are encoded into one
 * buffer and written (poll for room until the deadline); the answers are
 * read into a buffer as they come and taken frame by frame. After each
 * read that leaves calls unanswered the thread pauses LVRPC_PAUSE_NS
 * before it looks again, so that answers arriving a few milliseconds apart
 * (libvirtd answers each when QEMU has) are taken several per wake-up: a
 * wake-up per answer would cost as much as the library's call. The first
 * look after the calls are written waits seven eighths of what the last
 * batch of the same kind took to be answered whole (the answers to a
 * cycle's block stats come over some 50 ms with 32 guests): most batches
 * are then taken in one or two wake-ups.
 */
#include "libvirt_rpc.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM 0x20008086u
#define VERSION 1u
#define PROC_CONNECT_OPEN 1u
#define PROC_DOMAIN_GET_INFO 16u
#define PROC_DOMAIN_BLOCK_STATS 64u
#define PROC_AUTH_LIST 66u
#define PROC_ALL_DOMAIN_STATS 344u
#define TYPE_CALL 0u
#define TYPE_REPLY 1u
#define STATUS_OK 0u
#define STATUS_ERROR 1u
#define HEAD 28u                       /* the length and the six header fields */
#define STATS_BODY 40u                 /* five hypers */
#define INFO_BODY 32u                  /* state, two hypers, the vCPUs, a hyper */
#define CONNECT_RO 1u                  /* VIR_CONNECT_RO */
#define AUTH_NONE 0u                   /* REMOTE_AUTH_NONE */
#define LVRPC_PAUSE_NS (10 * 1000 * 1000LL)
#define NAME_MAX_BYTES 4096u           /* a domain name or a disk target, as sent */

struct lvrpc {
	int fd;
	uint32_t serial;               /* the last serial used */
	unsigned char *out;            /* the calls being written */
	size_t out_len, out_cap;
	unsigned char *in;             /* what was read and not yet taken */
	size_t in_len, in_cap;
	bool eof;                      /* the daemon closed: what was read before is taken first */
	int64_t took_ns[2];            /* how long the last batch of each kind took to be answered
					* whole (lvrpc_calls: 1 with block stats, 0 info only) */
	struct {
		unsigned int groups;
		int64_t took_ns;
	} bulk_took[4];                /* lvrpc_all_stats: the last call's, by the groups asked */
};

/* ---- encoding ----------------------------------------------------------- */

static int grow(struct lvrpc *c, size_t more)
{
	return vec_reserve((void **)&c->out, &c->out_cap, c->out_len + more, 1, 4096);
}

static void put_u32(struct lvrpc *c, uint32_t v)
{
	unsigned char *p = c->out + c->out_len;
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	c->out_len += 4;
}

/* An XDR string: its length, its bytes, zeros to a multiple of 4. */
static void put_str(struct lvrpc *c, const char *s, size_t len)
{
	put_u32(c, (uint32_t)len);
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
	while (c->out_len % 4)
		c->out[c->out_len++] = 0;
}

static size_t str_bytes(size_t len)
{
	return 4 + (len + 3) / 4 * 4;
}

/* A call's header; its length is set by end_call(). Returns where it starts. */
static size_t begin_call(struct lvrpc *c, uint32_t proc, uint32_t serial)
{
	size_t at = c->out_len;
	put_u32(c, 0);
	put_u32(c, PROGRAM);
	put_u32(c, VERSION);
	put_u32(c, proc);
	put_u32(c, TYPE_CALL);
	put_u32(c, serial);
	put_u32(c, STATUS_OK);
	return at;
}

static void end_call(struct lvrpc *c, size_t at)
{
	uint32_t len = (uint32_t)(c->out_len - at);
	size_t keep = c->out_len;
	c->out_len = at;
	put_u32(c, len);
	c->out_len = keep;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static long long get_hyper(const unsigned char *p)
{
	return (long long)((uint64_t)get_u32(p) << 32 | get_u32(p + 4));
}

/* ---- the socket --------------------------------------------------------- */

static int wait_fd(int fd, short ev, int64_t deadline)
{
	int64_t left = deadline - time_mono_ns();
	if (left <= 0)
		return -ETIMEDOUT;
	struct pollfd p = { .fd = fd, .events = ev };
	int ms = (int)((left + 999999) / 1000000);
	int r = poll(&p, 1, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

/* Write what c->out holds. */
static int send_out(struct lvrpc *c, int64_t deadline, struct tally_err *e)
{
	size_t off = 0;
	while (off < c->out_len) {
		ssize_t w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return err_set(e, -errno, "libvirt socket: write: %s", strerror(errno));
		int rc = wait_fd(c->fd, POLLOUT, deadline);
		if (rc)
			return err_set(e, rc, "libvirt socket: write: %s", rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
	}
	c->out_len = 0;
	return 0;
}

/* Read what the socket has now (0 bytes is fine). -EPIPE at its end,
 * once what came before it has been taken (the next call). */
static int read_some(struct lvrpc *c, struct tally_err *e)
{
	if (c->eof)
		return err_set(e, -EPIPE, "libvirt socket: closed by the daemon");
	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			if (c->in_len + 4096 > 2 * (size_t)LVRPC_MAX_FRAME)
				return 0;   /* a whole frame fits: take it before reading on */
			if (vec_reserve((void **)&c->in, &c->in_cap, c->in_len + 4096, 1, 65536))
				return err_set(e, -ENOMEM, "out of memory");
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (r > 0) {
			c->in_len += (size_t)r;
			continue;
		}
		if (r == 0) {
			c->eof = true;
			return 0;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR)
			return err_set(e, -errno, "libvirt socket: read: %s", strerror(errno));
	}
}

/* The next whole frame in c->in: 1 with *at its start and *len its length,
 * 0 when none is whole yet, -EPROTO for a length no message can have. */
static int next_frame(struct lvrpc *c, size_t from, size_t *len, struct tally_err *e)
{
	if (c->in_len - from < 4)
		return 0;
	uint32_t l = get_u32(c->in + from);
	if (l < HEAD || l > LVRPC_MAX_FRAME)
		return err_set(e, -EPROTO, "libvirt socket: a message of %u bytes (a header is %u, at most %u taken)",
			       l, HEAD, LVRPC_MAX_FRAME);
	if (c->in_len - from < l)
		return 0;
	*len = l;
	return 1;
}

/* What one frame answers: *serial, *status and where its body is; 0 for
 * an answer of this program to take, 1 for a message to skip. */
static int frame_kind(const unsigned char *f, uint32_t *serial, uint32_t *status, struct tally_err *e)
{
	uint32_t prog = get_u32(f + 4), vers = get_u32(f + 8), type = get_u32(f + 16);
	*serial = get_u32(f + 20);
	*status = get_u32(f + 24);
	if (prog != PROGRAM || type != TYPE_REPLY)
		return 1;       /* keepalive, an event, a stream: not ours */
	if (vers != VERSION)
		return err_set(e, -EPROTO, "libvirt socket: an answer of protocol version %u (1 expected)", vers);
	if (*status != STATUS_OK && *status != STATUS_ERROR)
		return err_set(e, -EPROTO, "libvirt socket: an answer with status %u", *status);
	return 0;
}

/* Drop the first `used` bytes of c->in. */
static void consume(struct lvrpc *c, size_t used)
{
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
}

/* The first look for a batch's answers: after seven eighths of what the
 * last such batch took to be answered (took_ns), at most half the time
 * allowed, then what has come is read. 0, or read_some()'s error. */
static int first_look(struct lvrpc *c, int64_t took_ns, int64_t timeout_ns, struct tally_err *e)
{
	int64_t wait = took_ns / 8 * 7;
	if (wait > timeout_ns / 2)
		wait = timeout_ns / 2;
	if (wait <= 0)
		return 0;
	struct timespec ts = { .tv_sec = (time_t)(wait / 1000000000), .tv_nsec = (long)(wait % 1000000000) };
	nanosleep(&ts, NULL);
	return read_some(c, e);
}

/* ---- one call at a time (opening) --------------------------------------- */

/* Send the call c->out holds (serial c->serial) and wait for its answer:
 * its status, and its body copied into body (up to cap bytes; *blen its
 * length). */
static int exchange(struct lvrpc *c, int64_t deadline, uint32_t *status, unsigned char *body, size_t cap,
		    size_t *blen, struct tally_err *e)
{
	int rc = send_out(c, deadline, e);
	if (rc)
		return rc;
	for (;;) {
		size_t len = 0;
		while ((rc = next_frame(c, 0, &len, e)) == 1) {
			uint32_t serial;
			int k = frame_kind(c->in, &serial, status, e);
			if (k < 0)
				return k;
			if (k == 0 && serial == c->serial) {
				*blen = len - HEAD < cap ? len - HEAD : cap;
				memcpy(body, c->in + HEAD, *blen);
				consume(c, len);
				return 0;
			}
			consume(c, len);
		}
		if (rc < 0)
			return rc;
		if ((rc = wait_fd(c->fd, POLLIN, deadline)))
			return err_set(e, rc, "libvirt socket: %s", rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
		if ((rc = read_some(c, e)))
			return rc;
	}
}

int lvrpc_socket_for(const char *uri, const char *dir, char *out, size_t len)
{
	static const char *const socks[] = { "virtqemud-sock-ro", "libvirt-sock-ro" };
	if (strcmp(uri, "qemu:///system") && strcmp(uri, "qemu+unix:///system"))
		return -ENOENT;
	for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
		struct stat st;
		char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
		int n = snprintf(p, sizeof(p), "%s/%s", dir ? dir : "/run/libvirt", socks[i]);
		if (n < 0 || (size_t)n >= sizeof(p) || (size_t)n >= len)
			continue;
		if (stat(p, &st) == 0 && S_ISSOCK(st.st_mode)) {
			str_copy(out, p, len);
			return 0;
		}
	}
	return -ENOENT;
}

int lvrpc_open(struct lvrpc **out, const char *path, const char *uri, int64_t timeout_ns, struct tally_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = time_mono_ns() + timeout_ns;
	size_t ulen = strlen(uri);
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "%s: the socket's path is too long", path);
	if (ulen > NAME_MAX_BYTES)
		return err_set(e, -EINVAL, "the URI is too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct lvrpc *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, -ENOMEM, "out of memory");
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int rc;
	if (c->fd < 0) {
		rc = err_set(e, -errno, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	unsigned char body[64];
	size_t blen;
	uint32_t status;
	/* the authentication the socket wants: none, or we cannot go on */
	if ((rc = grow(c, HEAD))) {
		err_set(e, rc, "out of memory");
		goto fail;
	}
	end_call(c, begin_call(c, PROC_AUTH_LIST, ++c->serial));
	if ((rc = exchange(c, deadline, &status, body, sizeof(body), &blen, e)))
		goto fail;
	if (status != STATUS_OK || blen < 4) {
		rc = err_set(e, -EPROTO, "%s: the daemon refused to list its authentication", path);
		goto fail;
	}
	uint32_t n = get_u32(body);
	bool none = n == 0;
	for (uint32_t i = 0; i < n && 4 + 4 * (size_t)i + 4 <= blen; i++)
		none |= get_u32(body + 4 + 4 * i) == AUTH_NONE;
	if (!none) {
		rc = err_set(e, -EACCES, "%s: the daemon asks for authentication on its read-only socket", path);
		goto fail;
	}
	if ((rc = grow(c, HEAD + 4 + str_bytes(ulen) + 4))) {
		err_set(e, rc, "out of memory");
		goto fail;
	}
	size_t at = begin_call(c, PROC_CONNECT_OPEN, ++c->serial);
	put_u32(c, 1);                     /* the name is there (remote_string) */
	put_str(c, uri, ulen);
	put_u32(c, CONNECT_RO);
	end_call(c, at);
	if ((rc = exchange(c, deadline, &status, body, sizeof(body), &blen, e)))
		goto fail;
	if (status != STATUS_OK) {
		rc = err_set(e, -EACCES, "%s: the daemon refused to open %s (libvirt error %d)", path, uri,
			     blen >= 4 ? (int)get_u32(body) : -1);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	lvrpc_close(c);
	return rc;
}

/* ---- many calls at once -------------------------------------------------- */

/* Take one answer (serial in [first, first + n)) into its call. */
static int take(struct lvrpc_call *const *calls, size_t n, uint32_t first, const unsigned char *f, size_t len,
		uint32_t serial, uint32_t status, size_t *left, struct tally_err *e)
{
	uint32_t i = serial - first;
	if (i >= n)
		return 0;       /* an answer to a call of an earlier batch: given up on */
	struct lvrpc_call *k = calls[i];
	if (k->state != LVRPC_LATE)
		return err_set(e, -EPROTO, "libvirt socket: a second answer to call %u", serial);
	const unsigned char *b = f + HEAD;
	if (status == STATUS_OK) {
		int info = k->proc == LVRPC_GET_INFO;
		uint32_t want = info ? INFO_BODY : STATS_BODY;
		if (len - HEAD != want)
			return err_set(e, -EPROTO, "libvirt socket: %s answer of %zu bytes (%u expected)",
				       info ? "an info" : "a block stats", len - HEAD, want);
		if (info) {
			k->dom_state = get_u32(b);
			k->max_mem_kib = (unsigned long long)get_hyper(b + 4);
			k->mem_kib = (unsigned long long)get_hyper(b + 12);
			k->vcpus = get_u32(b + 20);
			k->cpu_time_ns = (unsigned long long)get_hyper(b + 24);
		} else {
			k->rd_req = get_hyper(b);
			k->rd_bytes = get_hyper(b + 8);
			k->wr_req = get_hyper(b + 16);
			k->wr_bytes = get_hyper(b + 24);
		}
		k->state = LVRPC_OK;
	} else {
		if (len - HEAD < 4)
			return err_set(e, -EPROTO, "libvirt socket: an error answer without its code");
		k->vir_code = (int)get_u32(b);
		k->state = LVRPC_ERROR;
	}
	(*left)--;
	return 0;
}

int lvrpc_calls(struct lvrpc *c, struct lvrpc_call *const *calls, size_t n, int64_t timeout_ns,
		struct tally_err *e)
{
	int64_t start = time_mono_ns(), deadline = start + timeout_ns;
	uint32_t first = c->serial + 1;
	int rc, kind = 0;
	for (size_t i = 0; i < n; i++) {
		calls[i]->state = LVRPC_LATE;
		calls[i]->vir_code = 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct lvrpc_call *k = calls[i];
		int stats = k->proc == LVRPC_BLOCK_STATS;
		size_t nl = strlen(k->name), pl = stats ? strlen(k->path) : 0;
		rc = nl > NAME_MAX_BYTES || pl > NAME_MAX_BYTES ? -EINVAL
		     : grow(c, HEAD + str_bytes(nl) + 16 + 4 + (stats ? str_bytes(pl) : 0));
		if (rc) {
			c->out_len = 0;   /* none of the batch is sent */
			return err_set(e, rc, rc == -EINVAL ? "a domain name or disk target longer than 4096 bytes"
				       : "out of memory");
		}
		size_t at = begin_call(c, stats ? PROC_DOMAIN_BLOCK_STATS : PROC_DOMAIN_GET_INFO, ++c->serial);
		put_str(c, k->name, nl);
		memcpy(c->out + c->out_len, k->uuid, 16);
		c->out_len += 16;
		put_u32(c, (uint32_t)k->id);
		if (stats)
			put_str(c, k->path, pl);
		end_call(c, at);
		kind |= stats;
	}
	if ((rc = send_out(c, deadline, e)))
		return rc;
	/* the first look: after seven eighths of what the last such batch
	 * took (at most half the time allowed), so that most come in one
	 * wake-up; a batch all in by then takes as long as that wait, so the
	 * wait shrinks until answers come after it again (a slow batch once
	 * does not keep the wait long) */
	if (n > 1 && (rc = first_look(c, c->took_ns[kind], timeout_ns, e)))
		return rc;
	size_t left = n;
	while (left) {
		size_t len = 0;
		while ((rc = next_frame(c, 0, &len, e)) == 1) {
			uint32_t serial, status;
			int k = frame_kind(c->in, &serial, &status, e);
			if (k < 0)
				return k;
			if (k == 0 && (rc = take(calls, n, first, c->in, len, serial, status, &left, e)))
				return rc;
			consume(c, len);
		}
		if (rc < 0)
			return rc;
		if (!left) {
			c->took_ns[kind] = time_mono_ns() - start;
			break;
		}
		if ((rc = wait_fd(c->fd, POLLIN, deadline)) == -ETIMEDOUT)
			return 0;   /* the rest are late */
		if (rc)
			return err_set(e, rc, "libvirt socket: poll: %s", strerror(-rc));
		/* let answers gather: one wake-up for several */
		int64_t now = time_mono_ns(), pause = deadline - now < LVRPC_PAUSE_NS ? deadline - now : LVRPC_PAUSE_NS;
		if (left > 1 && pause > 0) {
			struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)pause };
			nanosleep(&ts, NULL);
		}
		if ((rc = read_some(c, e)))
			return rc;
	}
	return 0;
}

/* ---- the bulk stats call ------------------------------------------------ */

/* A cursor over an answer's body. */
struct xdr {
	const unsigned char *p;
	size_t left;
};

static int x_u32(struct xdr *x, uint32_t *v)
{
	if (x->left < 4)
		return -1;
	*v = get_u32(x->p);
	x->p += 4;
	x->left -= 4;
	return 0;
}

static int x_hyper(struct xdr *x, uint64_t *v)
{
	uint32_t hi, lo;
	if (x->left < 8 || x_u32(x, &hi) || x_u32(x, &lo))
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/* An XDR string copied into *sp (NUL-terminated; the caller sized the
 * storage to the body, which holds every string with room to spare). */
static int x_str(struct xdr *x, char **sp, const char **out, size_t *len)
{
	uint32_t n;
	if (x_u32(x, &n) || n > x->left || (size_t)(n + 3) / 4 * 4 > x->left)
		return -1;
	memcpy(*sp, x->p, n);
	(*sp)[n] = '\0';
	*out = *sp;
	*len = n;
	*sp += n + 1;
	x->p += (size_t)(n + 3) / 4 * 4;
	x->left -= (size_t)(n + 3) / 4 * 4;
	return 0;
}

void lvrpc_answer_free(struct lvrpc_answer *a)
{
	if (!a)
		return;
	free(a->recs);
	free(a->params);
	free(a->strings);
	memset(a, 0, sizeof(*a));
}

/* The answer's body b (len bytes) into out. 0, or -EPROTO with e saying
 * where it stopped making sense, or -ENOMEM. */
static int decode_stats(const unsigned char *b, size_t len, struct lvrpc_answer *out, struct tally_err *e)
{
	struct xdr x = { b, len };
	uint32_t n, np;
	size_t cap_p = 0, used_p = 0, slen;
	const char *str;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	/* every string is at most its XDR bytes, each of which takes at least
	 * one more than its length: the body's size holds them all */
	char *sp = out->strings = malloc(len + 1);
	if (!sp)
		return err_set(e, -ENOMEM, "out of memory");
	if (x_u32(&x, &n) || n > x.left / 28)   /* a record is at least 28 bytes */
		goto short_;
	if (n && !(out->recs = calloc(n, sizeof(*out->recs)))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct lvrpc_stats *r = &out->recs[i];
		uint32_t id;
		if (x_str(&x, &sp, &r->name, &slen) || x.left < 16)
			goto short_;
		memcpy(r->uuid, x.p, 16);
		x.p += 16;
		x.left -= 16;
		if (x_u32(&x, &id) || x_u32(&x, &np) || np > x.left / 12)   /* a parameter: at least 12 bytes */
			goto short_;
		r->id = id;
		r->nparams = (int)np;
		if (vec_reserve((void **)&out->params, &cap_p, used_p + np, sizeof(*out->params), 256)) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto fail;
		}
		for (uint32_t k = 0; k < np; k++) {
			virTypedParameter *t = &out->params[used_p++];
			uint32_t type, w;
			uint64_t h;
			if (x_str(&x, &sp, &str, &slen))
				goto short_;
			if (slen >= VIR_TYPED_PARAM_FIELD_LENGTH) {
				rc = err_set(e, -EPROTO, "libvirt socket: a stats field name of %zu bytes (libvirt"
					     " takes at most %d)", slen, VIR_TYPED_PARAM_FIELD_LENGTH - 1);
				goto fail;
			}
			memcpy(t->field, str, slen + 1);
			if (x_u32(&x, &type))
				goto short_;
			t->type = (int)type;
			switch (type) {
			case VIR_TYPED_PARAM_INT:
			case VIR_TYPED_PARAM_BOOLEAN:
			case VIR_TYPED_PARAM_UINT:
				if (x_u32(&x, &w))
					goto short_;
				if (type == VIR_TYPED_PARAM_INT)
					t->value.i = (int)w;
				else if (type == VIR_TYPED_PARAM_BOOLEAN)
					t->value.b = w != 0;
				else
					t->value.ui = w;
				break;
			case VIR_TYPED_PARAM_LLONG:
			case VIR_TYPED_PARAM_ULLONG:
			case VIR_TYPED_PARAM_DOUBLE:
				if (x_hyper(&x, &h))
					goto short_;
				if (type == VIR_TYPED_PARAM_LLONG)
					t->value.l = (long long)h;
				else if (type == VIR_TYPED_PARAM_ULLONG)
					t->value.ul = h;
				else
					memcpy(&t->value.d, &h, sizeof(double));   /* XDR's double: IEEE 754, big-endian */
				break;
			case VIR_TYPED_PARAM_STRING:
				if (x_str(&x, &sp, &str, &slen))
					goto short_;
				t->value.s = (char *)str;
				break;
			default:
				rc = err_set(e, -EPROTO, "libvirt socket: stats field %s of type %u (1 - 7 known)",
					     t->field, type);
				goto fail;
			}
		}
	}
	if (x.left) {
		rc = err_set(e, -EPROTO, "libvirt socket: %zu bytes after the stats answer's last record", x.left);
		goto fail;
	}
	/* each record's parameters follow the one before's in out->params */
	for (uint32_t i = 0, at = 0; i < n; at += (uint32_t)out->recs[i++].nparams)
		out->recs[i].params = out->params ? out->params + at : NULL;
	out->n = (int)n;
	return 0;
short_:
	rc = err_set(e, -EPROTO, "libvirt socket: a stats answer cut short at byte %zu of %zu", len - x.left, len);
fail:
	lvrpc_answer_free(out);   /* after the message: it may name a field stored here */
	return rc;
}

int lvrpc_all_stats(struct lvrpc *c, unsigned int groups, unsigned int flags, int64_t timeout_ns,
		    struct lvrpc_answer *out, int *vir_code, struct tally_err *e)
{
	int64_t start = time_mono_ns(), deadline = start + timeout_ns;
	int rc;
	memset(out, 0, sizeof(*out));
	*vir_code = 0;
	if ((rc = grow(c, HEAD + 12)))
		return err_set(e, rc, "out of memory");
	uint32_t serial = ++c->serial;
	size_t at = begin_call(c, PROC_ALL_DOMAIN_STATS, serial);
	put_u32(c, 0);                     /* no domain list: every domain flags selects */
	put_u32(c, groups);
	put_u32(c, flags);
	end_call(c, at);
	if ((rc = send_out(c, deadline, e)))
		return rc;
	/* the first look: after seven eighths of what the last call with
	 * these groups took (a cycle's call without QEMU's groups comes in a
	 * few ms, a slow cycle's with them in hundreds), at most half the
	 * time allowed */
	size_t slot = groups % (sizeof(c->bulk_took) / sizeof(c->bulk_took[0]));
	for (size_t i = 0; i < sizeof(c->bulk_took) / sizeof(c->bulk_took[0]); i++)
		if (c->bulk_took[i].groups == groups)
			slot = i;
	if (c->bulk_took[slot].groups == groups && (rc = first_look(c, c->bulk_took[slot].took_ns, timeout_ns, e)))
		return rc;
	for (;;) {
		size_t len = 0;
		while ((rc = next_frame(c, 0, &len, e)) == 1) {
			uint32_t fserial, status;
			int k = frame_kind(c->in, &fserial, &status, e);
			if (k < 0)
				return k;
			if (k == 0 && fserial == serial) {
				c->bulk_took[slot].groups = groups;
				c->bulk_took[slot].took_ns = time_mono_ns() - start;
				if (status != STATUS_OK) {
					if (len - HEAD < 4)
						rc = err_set(e, -EPROTO, "libvirt socket: an error answer without its code");
					else {
						*vir_code = (int)get_u32(c->in + HEAD);
						rc = err_set(e, -EREMOTEIO, "libvirt error %d", *vir_code);
					}
				} else {
					rc = decode_stats(c->in + HEAD, len - HEAD, out, e);
				}
				consume(c, len);
				return rc;
			}
			consume(c, len);  /* keepalive, an event, an answer given up on */
		}
		if (rc < 0)
			return rc;
		if ((rc = wait_fd(c->fd, POLLIN, deadline)) == -ETIMEDOUT)
			return err_set(e, rc, "libvirt socket: no stats answer within %lld ms",
				       (long long)(timeout_ns / 1000000));
		if (rc)
			return err_set(e, rc, "libvirt socket: poll: %s", strerror(-rc));
		if ((rc = read_some(c, e)))
			return rc;
	}
}

void lvrpc_close(struct lvrpc *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c->in);
	free(c);
}
