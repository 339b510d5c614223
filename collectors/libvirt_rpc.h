/*
 * libvirt_rpc.h: libvirt's remote protocol spoken directly for three calls,
 * virDomainBlockStats and virDomainGetInfo, asked for many domains at once,
 * and virConnectGetAllDomainStats, on the read-only socket of the libvirt
 * daemon of this host.
 *
 * Why: libvirt's client library spends about 96 us of the caller's CPU on
 * one call on this project's machine (some 25 system calls: it runs each
 * call in a GLib main context of its own, woken ten times), and the
 * collector's per-disk way makes one such call per domain per cycle: most
 * of tallyd's own cost (docs/libvirt.md, "What it costs the host"). Here
 * the calls of a cycle are written in one go and the answers read as they
 * come, several per wake-up: a few us a call. What libvirtd and QEMU do is
 * the same as for the library's call (the same procedure, the same two
 * QMP queries for the block stats, none for the info). The same holds for
 * virDomainGetInfo (about 50 us through the library), which the collector
 * makes for every domain every slow cycle (the vCPU count).
 *
 * The protocol (libvirt's src/rpc/virnetprotocol.x and
 * src/remote/remote_protocol.x, stable across libvirt versions: it is what
 * every older client speaks to a newer daemon): each message is a 4-byte
 * big-endian length (itself included), a header of six XDR unsigned ints
 * (program 0x20008086, version 1, procedure, type, serial, status) and the
 * XDR-encoded arguments or answer. Used here: AUTH_LIST (66), to be let in
 * without authentication (the read-only socket's default); CONNECT_OPEN
 * (1) with the URI and VIR_CONNECT_RO; DOMAIN_BLOCK_STATS (64) with the
 * domain (name, UUID, id) and the disk's target, answered by five hypers
 * (rd_req, rd_bytes, wr_req, wr_bytes, errs); DOMAIN_GET_INFO (16) with
 * the domain, answered by the state, the maximum and current memory
 * (KiB, unsigned hypers), the vCPU count and the cpu time (ns, an
 * unsigned hyper), each narrower field in an XDR word: 32 bytes;
 * CONNECT_GET_ALL_DOMAIN_STATS (344) with an empty domain list, the stats
 * groups and the flags, answered by a list of records, each the domain
 * (name, UUID, id) and a list of typed parameters (the field's name, a
 * type word and the value: an int, an unsigned int, a hyper, an unsigned
 * hyper, a double, a boolean as an int, or a string). Any
 * call may be answered by an error whose first field is libvirt's error
 * code. Anything else on the wire (a message of
 * another program, such as keepalive; an answer to a call of an earlier
 * batch that gave up waiting for it) is skipped; a message this client
 * cannot have asked for in this form (a length below a header or above
 * LVRPC_MAX_FRAME, an answer of the wrong size, a second answer to one
 * call) makes the connection unusable (-EPROTO): the caller closes it.
 */
#ifndef TALLY_LIBVIRT_RPC_H
#define TALLY_LIBVIRT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#include <libvirt/libvirt.h>

/* bytes of one message taken at most: libvirt's own limit (32 MiB, its
 * VIR_NET_MESSAGE_MAX), which a bulk stats answer for many domains with
 * many devices can come near */
#define LVRPC_MAX_FRAME (32u << 20)

struct lvrpc;

enum lvrpc_proc {
	LVRPC_BLOCK_STATS = 0,   /* virDomainBlockStats(path) */
	LVRPC_GET_INFO,          /* virDomainGetInfo */
};

enum lvrpc_state {
	LVRPC_OK = 1,        /* answered: the counters are set */
	LVRPC_ERROR,         /* answered with an error: vir_code is libvirt's (virErrorNumber) */
	LVRPC_LATE,          /* no answer by the deadline (its answer, if it comes, is skipped) */
};

struct lvrpc_call {
	/* in: which call; the domain as libvirtd finds it (by UUID); for the
	 * block stats, the disk's target */
	enum lvrpc_proc proc;
	const char *name;
	unsigned char uuid[16];
	int id;
	const char *path;
	/* out */
	enum lvrpc_state state;
	int vir_code;
	long long rd_req, rd_bytes, wr_req, wr_bytes;        /* LVRPC_BLOCK_STATS */
	unsigned int dom_state, vcpus;                       /* LVRPC_GET_INFO */
	unsigned long long max_mem_kib, mem_kib, cpu_time_ns;
};

/* The read-only socket of the daemon that serves uri on this host, into
 * out: for qemu:///system (or qemu+unix:///system without parameters)
 * virtqemud's when it runs, else libvirtd's, under /run/libvirt (dir: NULL
 * for that, or another directory, for tests). -ENOENT for any other URI or
 * when neither socket exists: the library's call is then the way. */
int lvrpc_socket_for(const char *uri, const char *dir, char *out, size_t len);

/* Connect to the socket at path and open uri read-only on it, within
 * timeout_ns. 0, or a negative errno with e saying why (a daemon that asks
 * for authentication on its read-only socket: -EACCES). */
int lvrpc_open(struct lvrpc **out, const char *path, const char *uri, int64_t timeout_ns, struct tally_err *e);

/* Make the calls *calls[0..n) at once and wait for the answers until
 * timeout_ns has passed; each call's state says what came. The first look
 * waits seven eighths of what the last batch of the same kind (one with
 * block stats, or of info only) took to be answered whole: few wake-ups
 * where the answers come over tens of milliseconds. 0, or a negative
 * errno (the connection broke, or the daemon broke the protocol: e says
 * how) after which the connection must be closed; the calls not answered
 * then are LVRPC_LATE. */
int lvrpc_calls(struct lvrpc *c, struct lvrpc_call *const *calls, size_t n, int64_t timeout_ns,
		struct tally_err *e);

/* One domain's record of a bulk stats answer: the domain as libvirtd
 * names it and its stats as libvirt's typed parameters, as
 * virConnectGetAllDomainStats() gives them (string values and the name
 * point into the answer's own storage). */
struct lvrpc_stats {
	const char *name;
	unsigned char uuid[16];
	unsigned int id;
	virTypedParameter *params;
	int nparams;
};

struct lvrpc_answer {
	struct lvrpc_stats *recs;
	int n;
	virTypedParameter *params;   /* every record's, one after the other */
	char *strings;               /* the names and string values */
};

/* virConnectGetAllDomainStats(groups, flags) over the protocol
 * (CONNECT_GET_ALL_DOMAIN_STATS, 344, with no domain list), waiting until
 * timeout_ns has passed. The first look for the answer waits seven
 * eighths of what the last call with the same groups took. 0 with *out
 * filled (lvrpc_answer_free() frees it); -EREMOTEIO when the daemon
 * answered with an error (*vir_code its code: the connection stays
 * usable); -ETIMEDOUT when no answer came in time, or another negative
 * errno (the connection broke, or the answer is not one this client can
 * read: a field name longer than libvirt's 80 bytes, a type it does not
 * know, a length past the message): e says which, and the connection must
 * then be closed. */
int lvrpc_all_stats(struct lvrpc *c, unsigned int groups, unsigned int flags, int64_t timeout_ns,
		    struct lvrpc_answer *out, int *vir_code, struct tally_err *e);

void lvrpc_answer_free(struct lvrpc_answer *a);

void lvrpc_close(struct lvrpc *c);

#endif
