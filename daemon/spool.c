/*
 * spool.c: the agent's durable spool (see spool.h for the layout and the
 * promises, docs/transport.md for the policy when it fills).
 *
 * Files: the last segment is open for appending (wfd); frames are written
 * with pwrite at the known end and fdatasync'd; a failed write is cut off
 * again with ftruncate, so the file never keeps half a frame that the
 * caller was told failed. Reading keeps a cursor (segment, offset, seq) so
 * the sender's usual "the next frames after the last ones" costs no scan.
 *
 * Acknowledgements are taken in memory at once and written to the ack
 * file (two syncs) at most every ack_every_ns, before a segment is deleted,
 * and when room is needed (spool.h): an agent in real time is acknowledged
 * every cycle, and writing each ack, then deleting the segment it completed
 * and making a new one for the next batch, was four syncs a cycle beside
 * the batch's own (docs/transport.md).
 *
 * Thinning: one struct ser per series (resource, device, meter) remembers
 * the last reading seen and the last one written. Changes to it made while
 * a batch is filtered are logged (undo) and rolled back when the batch is
 * not spooled after all, so a refused batch, retried, is judged again as
 * if it had never been seen.
 */
#include "spool.h"
#include "vec.h"
#include "itab.h"
#include "hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "le.h"
#include "str.h"
#include "tallytime.h"

#define SEG_MAGIC   "TLYSPOOL"
#define SEG_HDR     48
#define SEG_VERSION 1

#define SER_HAS     0x01u    /* a reading was seen */
#define SER_ENDED   0x02u    /* the last one had SAMPLE_F_LAST */
#define SER_HELD    0x04u    /* held holds a reading not written */

struct seg {
	uint64_t first;         /* seq of its first frame */
	uint64_t bytes;         /* file size, header included */
};

struct ser {
	uint32_t hash;
	uint16_t meter;
	uint8_t kind, flags;
	int64_t seen_ns;        /* time of the last reading seen */
	int64_t kept_ns;        /* time of the last reading written */
	int64_t origin_ns;      /* origin of the last reading seen */
	uint64_t counter;       /* last counter value seen */
	double kept_gauge;      /* last gauge value written */
	uint64_t seen_gen;      /* append generation that last saw it */
	uint64_t undo_gen;      /* append generation that last logged it */
	struct sample held;     /* with SER_HELD: a routine counter reading not written */
	char resource[TALLY_ID_MAX];
	char device[TALLY_DEV_MAX];
};

struct undo {
	uint32_t idx;
	struct ser old;
};

struct spool {
	pthread_mutex_t mu;
	char dir[PATH_MAX];
	int dirfd, lockfd, wfd, rfd;
	char agent[TALLY_ID_MAX];
	struct wire_origin origin;
	struct spool_opts o;
	struct seg *seg;
	size_t n_seg, cap_seg;
	uint64_t next_seq, acked;
	uint64_t acked_disk;    /* the ack in the ack file (<= acked) */
	int64_t ack_mono_ns;    /* when it was written (monotonic) */
	int64_t last_time_ns;   /* spool_stats.last_time_ns */
	uint64_t bytes;
	int broken;
	int need_new_seg;       /* next_seq does not follow the last segment's frames */
	uint64_t synced_seq;    /* frames below it are synced: the only ones read (sent) */
	int64_t synced_time_ns; /* batch time of the last frame synced */
	int essential;          /* the batch being filtered holds what no later one covers */
	/* read cursor: frame r_seq starts at r_off in segment r_first (rfd) */
	uint64_t r_first, r_seq, r_off;
	int r_valid;
	/* encoding */
	struct wire_enc enc;
	struct wire_buf frame;
	struct batch out;
	/* thinning state */
	struct ser *ser;
	size_t n_ser, cap_ser;
	struct itab tab;             /* ser by (resource, meter, device) */
	struct undo *undo;
	size_t n_undo, cap_undo;
	uint64_t gen;
	struct spool_stats st;
};

/* ---- small file helpers --------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -ENOSPC;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* 0, -ENODATA at end of file before n bytes, or -errno */
static int read_all(int fd, void *buf, size_t n, off_t off)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = pread(fd, p, n, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static void seg_name(char *buf, size_t size, uint64_t first)
{
	snprintf(buf, size, "%020" PRIu64 ".seg", first);
}

static int do_fsync(struct spool *s, int fd, int data_only)
{
	if (s->o.no_fsync)
		return 0;
	s->st.fsyncs++;
	if ((data_only ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	return 0;
}

/* Replace dir/name with text, durably: temp file, fsync, rename, fsync dir. */
static int replace_file(struct spool *s, const char *name, const char *text, struct tally_err *e)
{
	char tmp[64];
	int rc = 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, -errno, "%s/%s: %s", s->dir, tmp, strerror(errno));
	if ((rc = write_all(fd, text, strlen(text), 0)) || (rc = do_fsync(s, fd, 0))) {
		close(fd);
		unlinkat(s->dirfd, tmp, 0);
		return err_set(e, rc, "%s/%s: %s", s->dir, tmp, strerror(-rc));
	}
	close(fd);
	if (renameat(s->dirfd, tmp, s->dirfd, name) < 0) {
		rc = -errno;
		unlinkat(s->dirfd, tmp, 0);
		return err_set(e, rc, "%s/%s: rename: %s", s->dir, name, strerror(-rc));
	}
	if ((rc = do_fsync(s, s->dirfd, 0)))
		return err_set(e, rc, "%s: fsync: %s", s->dir, strerror(-rc));
	return 0;
}

/* Read a small text file into buf; 0, -ENOENT or -errno. */
static int read_small(struct spool *s, const char *name, char *buf, size_t size)
{
	int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, buf, size - 1, 0);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = '\0';
	return 0;
}

/* ---- identity and ack ---------------------------------------------------- */

static void hex(char *out, const uint8_t *id)
{
	for (int i = 0; i < WIRE_SPOOL_ID_LEN; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

static int unhex(const char *in, uint8_t *id)
{
	for (int i = 0; i < WIRE_SPOOL_ID_LEN; i++) {
		unsigned v;
		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -1;
		id[i] = (uint8_t)v;
	}
	return strlen(in) == 2 * WIRE_SPOOL_ID_LEN ? 0 : -1;
}

/* The identity: four lines, and a fifth, "covered_ns T", when the spool
 * was made with spool_opts.covered_ns. */
static int parse_identity(struct spool *s, const char *text, char *agent, struct tally_err *e)
{
	char id[64], ag[TALLY_ID_MAX + 1], again[512];
	unsigned long long first;
	long long covered = 0;
	int ver, n;
	n = sscanf(text, "tally spool %d\nagent %64[^\n]\nspool %40s\nfirst_seq %llu\ncovered_ns %lld", &ver, ag, id,
		   &first, &covered);
	/* written back, the text must be what was read: no byte more or less */
	int k = snprintf(again, sizeof(again), "tally spool %d\nagent %s\nspool %s\nfirst_seq %llu\n", ver, ag, id,
			 first);
	if (n == 5)
		snprintf(again + k, sizeof(again) - (size_t)k, "covered_ns %lld\n", covered);
	if ((n != 4 && n != 5) || ver != 1 || strlen(ag) >= TALLY_ID_MAX || unhex(id, s->origin.spool_id) ||
	    first == 0 || covered < 0 || strcmp(again, text))
		return err_set(e, -EINVAL, "%s/identity: not a tally spool identity (version 1): move the "
			       "directory away or restore the file", s->dir);
	str_copy(agent, ag, TALLY_ID_MAX);
	s->origin.spool_first_seq = first;
	s->last_time_ns = covered;
	return 0;
}

static int make_identity(struct spool *s, struct tally_err *e)
{
	char text[256], id[2 * WIRE_SPOOL_ID_LEN + 1];
	uint8_t *p = s->origin.spool_id;
	size_t got = 0;
	while (got < WIRE_SPOOL_ID_LEN) {
		ssize_t n = getrandom(p + got, WIRE_SPOOL_ID_LEN - got, 0);
		if (n < 0 && errno != EINTR)
			return err_set(e, -errno, "getrandom: %s", strerror(errno));
		if (n > 0)
			got += (size_t)n;
	}
	p[0] |= 1;      /* never the all-zero "no spool" id */
	s->origin.spool_first_seq = s->o.first_seq;
	hex(id, p);
	int n = snprintf(text, sizeof(text), "tally spool 1\nagent %s\nspool %s\nfirst_seq %" PRIu64 "\n", s->agent,
			 id, s->o.first_seq);
	if (s->o.covered_ns > 0)
		snprintf(text + n, sizeof(text) - (size_t)n, "covered_ns %" PRId64 "\n", s->o.covered_ns);
	s->last_time_ns = s->o.covered_ns > 0 ? s->o.covered_ns : 0;
	return replace_file(s, "identity", text, e);
}

/* "acked N" and, when known, "time T": the batch time of N, so a spool
 * whose frames are all deleted still knows where its agent's data ends. */
static int write_ack(struct spool *s, uint64_t seq, int64_t time_ns, struct tally_err *e)
{
	char text[80];
	if (time_ns > 0)
		snprintf(text, sizeof(text), "acked %" PRIu64 "\ntime %" PRId64 "\n", seq, time_ns);
	else
		snprintf(text, sizeof(text), "acked %" PRIu64 "\n", seq);
	return replace_file(s, "ack", text, e);
}

/* ---- segments ------------------------------------------------------------ */

static int seg_push(struct spool *s, uint64_t first, uint64_t bytes)
{
	if (vec_reserve((void **)&s->seg, &s->cap_seg, s->n_seg + 1, sizeof(*s->seg), 16))
		return -ENOMEM;
	s->seg[s->n_seg++] = (struct seg){ first, bytes };
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct seg *)a)->first, y = ((const struct seg *)b)->first;
	return x < y ? -1 : x > y;
}

static void seg_header(struct spool *s, uint64_t first, uint8_t *h)
{
	memset(h, 0, SEG_HDR);
	memcpy(h, SEG_MAGIC, 8);
	le_put32(h + 8, SEG_VERSION);
	memcpy(h + 16, s->origin.spool_id, WIRE_SPOOL_ID_LEN);
	le_put64(h + 32, first);
	le_put32(h + 40, crc32c(0, h, 40));
}

/* 0 when h is this spool's header of a segment starting at first */
static int seg_header_ok(struct spool *s, const uint8_t *h, uint64_t first)
{
	return !memcmp(h, SEG_MAGIC, 8) && le_get32(h + 8) == SEG_VERSION &&
	       le_get32(h + 40) == crc32c(0, h, 40) && !memcmp(h + 16, s->origin.spool_id, WIRE_SPOOL_ID_LEN) &&
	       le_get64(h + 32) == first ? 0 : -1;
}

static void close_read(struct spool *s)
{
	if (s->rfd >= 0)
		close(s->rfd);
	s->rfd = -1;
	s->r_valid = 0;
}

/* Delete the segments whose frames are all acknowledged; the last one too
 * when everything is (the next append starts a new one). */
static void free_acked(struct spool *s, uint64_t acked)
{
	size_t k = 0;
	char name[64];
	while (k < s->n_seg && (k + 1 < s->n_seg ? s->seg[k + 1].first : s->next_seq) - 1 <= acked) {
		seg_name(name, sizeof(name), s->seg[k].first);
		if (s->r_valid && s->r_first == s->seg[k].first)
			close_read(s);
		if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
			break;
		s->bytes -= s->seg[k].bytes;
		if (k + 1 == s->n_seg && s->wfd >= 0) {
			close(s->wfd);
			s->wfd = -1;
		}
		k++;
	}
	if (k) {
		memmove(s->seg, s->seg + k, (s->n_seg - k) * sizeof(*s->seg));
		s->n_seg -= k;
	}
}

/* Make a new last segment starting at first: header written and synced,
 * and the directory entry synced. */
static int new_segment(struct spool *s, uint64_t first, struct tally_err *e)
{
	char name[64];
	uint8_t h[SEG_HDR];
	int rc;
	seg_name(name, sizeof(name), first);
	int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, -errno, "%s/%s: %s", s->dir, name, strerror(errno));
	seg_header(s, first, h);
	if ((rc = write_all(fd, h, SEG_HDR, 0)) || (rc = do_fsync(s, fd, 0)) || (rc = do_fsync(s, s->dirfd, 0)) ||
	    (rc = seg_push(s, first, SEG_HDR))) {
		close(fd);
		unlinkat(s->dirfd, name, 0);
		return err_set(e, rc, "%s/%s: %s", s->dir, name, strerror(-rc));
	}
	if (s->wfd >= 0)
		close(s->wfd);
	s->wfd = fd;
	s->bytes += SEG_HDR;
	return 0;
}

/* Scan the last segment: count its frames, cut a torn tail. */
static int recover_last(struct spool *s, struct spool_open_report *rep, struct tally_err *e)
{
	char name[64];
	struct seg *g = &s->seg[s->n_seg - 1];
	uint8_t h[SEG_HDR];
	int rc;
	seg_name(name, sizeof(name), g->first);
	int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "%s/%s: %s", s->dir, name, strerror(errno));
	rc = read_all(fd, h, SEG_HDR, 0);
	if (rc == -ENODATA || (!rc && seg_header_ok(s, h, g->first))) {
		/* a header never completed: the segment was being made */
		struct stat sb;
		if (!rc && fstat(fd, &sb) == 0 && (uint64_t)sb.st_size > SEG_HDR) {
			close(fd);
			return err_set(e, -EINVAL, "%s/%s: not a segment of this spool (bad header): move it away",
				       s->dir, name);
		}
		close(fd);
		if (unlinkat(s->dirfd, name, 0) < 0)
			return err_set(e, -errno, "%s/%s: %s", s->dir, name, strerror(errno));
		if (rep) {
			rep->torn_bytes += g->bytes;
			snprintf(rep->torn_reason, sizeof(rep->torn_reason), "%s: segment header incomplete", name);
		}
		s->st.torn_bytes += g->bytes;
		s->bytes -= g->bytes;
		s->n_seg--;
		return 1;       /* look at the one before */
	}
	if (rc) {
		close(fd);
		return err_set(e, rc, "%s/%s: %s", s->dir, name, strerror(-rc));
	}
	uint64_t off = SEG_HDR, seq = g->first;
	struct tally_err why = { 0 };
	for (;;) {
		uint8_t pre[WIRE_PREAMBLE];
		struct wire_head wh;
		if (off == g->bytes)
			break;
		rc = read_all(fd, pre, g->bytes - off < WIRE_PREAMBLE ? g->bytes - off : WIRE_PREAMBLE, (off_t)off);
		if (rc && rc != -ENODATA) {
			close(fd);
			return err_set(e, rc, "%s/%s: %s", s->dir, name, strerror(-rc));
		}
		size_t have = g->bytes - off < WIRE_PREAMBLE ? (size_t)(g->bytes - off) : WIRE_PREAMBLE;
		rc = wire_check(pre, have, &wh, &why);
		if (rc == -EBADMSG)
			break;
		if (wh.frame_len == 0 || wh.frame_len > g->bytes - off) {
			err_set(&why, -ENODATA, "frame %" PRIu64 " incomplete (%" PRIu64 " of %zu bytes)", seq,
				g->bytes - off, wh.frame_len);
			break;
		}
		s->frame.len = 0;
		if (wire_buf_reserve(&s->frame, wh.frame_len)) {
			close(fd);
			return err_set(e, -ENOMEM, "out of memory");
		}
		if ((rc = read_all(fd, s->frame.p, wh.frame_len, (off_t)off))) {
			close(fd);
			return err_set(e, rc, "%s/%s: %s", s->dir, name, strerror(-rc));
		}
		if (wire_check(s->frame.p, wh.frame_len, &wh, &why))
			break;
		if (wh.seq != seq || strcmp(wh.agent, s->agent) ||
		    memcmp(wh.origin.spool_id, s->origin.spool_id, WIRE_SPOOL_ID_LEN)) {
			err_set(&why, -EBADMSG, "frame %" PRIu64 " out of place (seq %" PRIu64 ", agent '%s')", seq,
				wh.seq, wh.agent);
			break;
		}
		off += wh.frame_len;
		seq++;
		if (wh.time_ns > s->last_time_ns)
			s->last_time_ns = wh.time_ns;
	}
	if (off < g->bytes) {
		/* a torn tail: never acknowledged to anyone, cut it */
		uint64_t cut = g->bytes - off;
		if (ftruncate(fd, (off_t)off) < 0 || do_fsync(s, fd, 0)) {
			rc = -errno;
			close(fd);
			return err_set(e, rc, "%s/%s: cannot cut the torn tail: %s", s->dir, name, strerror(-rc));
		}
		if (rep) {
			rep->torn_bytes += cut;
			snprintf(rep->torn_reason, sizeof(rep->torn_reason), "%s at byte %" PRIu64 ": %s", name, off,
				 why.msg);
		}
		s->st.torn_bytes += cut;
		s->bytes -= cut;
		g->bytes = off;
	} else if (off > SEG_HDR && (rc = do_fsync(s, fd, 1))) {
		/* synced whole: what a process that died left written but not
		 * synced (spool_opts.sync_every_ns) is in the page cache only,
		 * and is about to be sent: lost to a power loss after the
		 * aggregator took it, its seqs would be numbered again */
		close(fd);
		return err_set(e, rc, "%s/%s: fdatasync: %s", s->dir, name, strerror(-rc));
	}
	s->wfd = fd;
	s->next_seq = seq;
	return 0;
}

static int load_segments(struct spool *s, struct spool_open_report *rep, struct tally_err *e)
{
	DIR *d = fdopendir(dup(s->dirfd));
	struct dirent *de;
	int rc = 0;
	if (!d)
		return err_set(e, -errno, "%s: %s", s->dir, strerror(errno));
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		if (len > 4 && !strcmp(n + len - 4, ".tmp")) {
			unlinkat(s->dirfd, n, 0);       /* an interrupted replace_file */
			continue;
		}
		if (len != 24 || strcmp(n + 20, ".seg") || strspn(n, "0123456789") != 20)
			continue;
		struct stat sb;
		if (fstatat(s->dirfd, n, &sb, 0) < 0) {
			rc = err_set(e, -errno, "%s/%s: %s", s->dir, n, strerror(errno));
			break;
		}
		uint64_t first = strtoull(n, NULL, 10);
		if ((rc = seg_push(s, first, (uint64_t)sb.st_size))) {
			err_set(e, rc, "out of memory");
			break;
		}
		s->bytes += (uint64_t)sb.st_size;
	}
	closedir(d);
	if (rc)
		return rc;
	if (s->n_seg)
		qsort(s->seg, s->n_seg, sizeof(*s->seg), cmp_seg);
	/* sealed segments: check headers (their frames are checked when read) */
	for (size_t i = 0; i + 1 < s->n_seg; i++) {
		char name[64];
		uint8_t h[SEG_HDR];
		seg_name(name, sizeof(name), s->seg[i].first);
		int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return err_set(e, -errno, "%s/%s: %s", s->dir, name, strerror(errno));
		rc = read_all(fd, h, SEG_HDR, 0);
		close(fd);
		if (rc || seg_header_ok(s, h, s->seg[i].first))
			return err_set(e, -EINVAL, "%s/%s: not a segment of this spool (bad header): move it away",
				       s->dir, name);
	}
	while (s->n_seg && (rc = recover_last(s, rep, e)) == 1)
		;
	if (rc < 0)
		return rc;
	if (!s->n_seg)
		s->next_seq = s->acked + 1;
	if (s->next_seq <= s->acked) {
		/* acknowledged beyond what is on disk (the tail was lost after
		 * its ack): continue after the ack, in a segment of its own,
		 * as a segment's frames are numbered by their position */
		s->next_seq = s->acked + 1;
		s->need_new_seg = s->n_seg > 0;
	}
	size_t before = s->n_seg;
	free_acked(s, s->acked);
	if (rep)
		rep->removed_segments = before - s->n_seg;
	return 0;
}

/* Batch time of the frame acked + 1, for the oldest-unsent age. */
static int peek_frame(struct spool *s, uint64_t seq, struct wire_head *h);

static void update_oldest(struct spool *s)
{
	struct wire_head h;
	s->st.oldest_time_ns = 0;
	if (s->acked + 1 < s->next_seq && peek_frame(s, s->acked + 1, &h) == 0)
		s->st.oldest_time_ns = h.time_ns;
}

int spool_open(struct spool **out, const char *dir, const char *agent, const struct spool_opts *o,
	       struct spool_open_report *rep, struct tally_err *e)
{
	struct spool *s = calloc(1, sizeof(*s));
	char text[512], found[TALLY_ID_MAX];
	int rc;

	*out = NULL;
	if (rep)
		memset(rep, 0, sizeof(*rep));
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	s->dirfd = s->lockfd = s->wfd = s->rfd = -1;
	wire_enc_init(&s->enc);
	batch_init(&s->out, agent);
	if (o)
		s->o = *o;
	if (!s->o.max_bytes)
		s->o.max_bytes = 1ULL << 30;
	if (!s->o.thin_at_bytes)
		s->o.thin_at_bytes = s->o.max_bytes / 2;
	if (!s->o.reserve_bytes)
		s->o.reserve_bytes = s->o.max_bytes / 8;
	if (!s->o.segment_bytes)
		s->o.segment_bytes = 8ULL << 20;
	if (!s->o.thin_every_ns)
		s->o.thin_every_ns = 240LL * 1000000000LL;
	if (!s->o.full_every_ns)
		s->o.full_every_ns = 3600LL * 1000000000LL;
	if (!s->o.first_seq)
		s->o.first_seq = 1;
	if (!s->o.ack_every_ns)
		s->o.ack_every_ns = 60LL * 1000000000LL;
	if (!str_copy(s->dir, dir, sizeof(s->dir)) || !agent || !agent[0] ||
	    !str_copy(s->agent, agent, sizeof(s->agent))) {
		rc = err_set(e, -EINVAL, "spool: directory or agent id missing or too long");
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = err_set(e, -errno, "%s: cannot make the spool directory: %s", dir, strerror(errno));
		goto fail;
	}
	if ((s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = err_set(e, -errno, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		rc = err_set(e, -errno, "%s/lock: %s", dir, strerror(errno));
		goto fail;
	}
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? err_set(e, -EBUSY, "%s: the spool is in use by another process", dir)
					  : err_set(e, -errno, "%s/lock: %s", dir, strerror(errno));
		goto fail;
	}
	rc = read_small(s, "identity", text, sizeof(text));
	if (rc == -ENOENT) {
		/* a new spool, unless segments are here already */
		DIR *d = fdopendir(dup(s->dirfd));
		struct dirent *de;
		int other = 0;
		/* the lock, and an identity whose making a crash cut before its
		 * rename (nothing was spooled yet: it is made again) */
		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "lock") &&
			    strcmp(de->d_name, "identity.tmp"))
				other = 1;
		if (d)
			closedir(d);
		if (other) {
			rc = err_set(e, -EINVAL, "%s: holds files but no spool identity: not a spool (move it away "
				     "or restore its identity file)", dir);
			goto fail;
		}
		if ((rc = make_identity(s, e)))
			goto fail;
		if (rep)
			rep->created = 1;
	} else if (rc) {
		rc = err_set(e, rc, "%s/identity: %s", dir, strerror(-rc));
		goto fail;
	} else {
		if ((rc = parse_identity(s, text, found, e)))
			goto fail;
		if (strcmp(found, agent)) {
			rc = err_set(e, -EINVAL, "%s: spool of agent '%s', not '%s': every agent id needs a spool "
				     "directory of its own", dir, found, agent);
			goto fail;
		}
	}
	s->acked = s->origin.spool_first_seq - 1;
	rc = read_small(s, "ack", text, sizeof(text));
	if (!rc) {
		unsigned long long a;
		long long t = 0;
		char again[80];
		int n = sscanf(text, "acked %llu\ntime %lld", &a, &t);
		if (n == 2)
			snprintf(again, sizeof(again), "acked %llu\ntime %lld\n", a, t);
		else
			snprintf(again, sizeof(again), "acked %llu\n", a);
		if ((n != 1 && n != 2) || a + 1 < s->origin.spool_first_seq || t < 0 || strcmp(again, text)) {
			rc = err_set(e, -EINVAL, "%s/ack: not an acknowledgement ('acked N', 'time T')", dir);
			goto fail;
		}
		s->acked = a;
		if (t > s->last_time_ns)
			s->last_time_ns = t;
	} else if (rc != -ENOENT) {
		rc = err_set(e, rc, "%s/ack: %s", dir, strerror(-rc));
		goto fail;
	}
	s->acked_disk = s->acked;
	s->ack_mono_ns = time_mono_ns();
	if ((rc = load_segments(s, rep, e)))
		goto fail;
	s->synced_seq = s->next_seq;
	s->synced_time_ns = s->last_time_ns;
	s->st.first_seq = s->origin.spool_first_seq;
	update_oldest(s);
	*out = s;
	return 0;
fail:
	spool_close(s);
	return rc;
}

static int ack_flush(struct spool *s, struct tally_err *e);

static int sync_frames(struct spool *s, struct tally_err *e);

void spool_close(struct spool *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0) {
		/* a clean stop leaves every frame durable */
		struct tally_err e = { 0 };
		sync_frames(s, &e);
	}
	if (s->dirfd >= 0 && s->acked > s->acked_disk && !s->broken) {
		/* a clean stop keeps what was acknowledged; a failure here only
		 * means those batches are sent again after the restart */
		struct tally_err e = { 0 };
		ack_flush(s, &e);
	}
	if (s->wfd >= 0)
		close(s->wfd);
	if (s->rfd >= 0)
		close(s->rfd);
	if (s->lockfd >= 0)
		close(s->lockfd);       /* releases the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->seg);
	free(s->ser);
	itab_release(&s->tab);
	free(s->undo);
	wire_enc_release(&s->enc);
	wire_buf_release(&s->frame);
	batch_release(&s->out);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

uint64_t spool_next_seq(struct spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t v = s->next_seq;
	pthread_mutex_unlock(&s->mu);
	return v;
}

void spool_origin(struct spool *s, struct wire_origin *o)
{
	*o = s->origin;         /* set at open, never changed */
}

uint64_t spool_oldest_seq(struct spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t v = s->n_seg ? s->seg[0].first : s->next_seq;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static int level_of(const struct spool *s)
{
	return s->bytes >= s->o.max_bytes ? SPOOL_FULL : s->bytes >= s->o.thin_at_bytes ? SPOOL_THIN : SPOOL_KEEP;
}

void spool_get_stats(struct spool *s, struct spool_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->bytes = s->bytes;
	st->batches = s->next_seq - 1 - s->acked;
	st->segments = s->n_seg;
	st->next_seq = s->next_seq;
	st->acked_seq = s->acked;
	st->last_time_ns = s->last_time_ns;
	st->unsynced = s->next_seq - s->synced_seq;
	st->level = level_of(s);
	pthread_mutex_unlock(&s->mu);
}

/* ---- thinning ------------------------------------------------------------ */

static uint32_t ser_hash(const struct sample *x)
{
	uint32_t h = hash_fnv32_str(HASH_FNV32_INIT, x->resource);
	h = hash_fnv32_word(h, 0xff);
	h = hash_fnv32_str(h, x->device);
	return hash_fnv32_word(h, x->meter);
}

struct ser_key {
	uint32_t hash;
	const struct sample *x;
};

static int ser_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct spool *s = ctx;
	const struct ser_key *k = key;
	const struct ser *r = &s->ser[idx];
	return r->hash == k->hash && r->meter == k->x->meter && !strcmp(r->resource, k->x->resource) &&
	       !strcmp(r->device, k->x->device);
}

static uint64_t ser_hash_of(const void *ctx, uint32_t idx)
{
	return ((const struct spool *)ctx)->ser[idx].hash;
}

/* The table of the n_ser series again, of n slots (a power of two). */
static int ser_rehash(struct spool *s, size_t n)
{
	struct itab t;
	if (itab_init(&t, n))
		return -ENOMEM;
	for (size_t i = 0; i < s->n_ser; i++) {
		size_t j = (size_t)hash_mix64(s->ser[i].hash) & t.mask;   /* every entry differs: no eq needed */
		while (t.slot[j])
			j = (j + 1) & t.mask;
		t.slot[j] = (uint32_t)i + 1;
		t.used++;
	}
	itab_release(&s->tab);
	s->tab = t;
	return 0;
}

/* Remember ser i as it is before this append changes it. */
static int ser_log(struct spool *s, uint32_t i)
{
	if (s->ser[i].undo_gen == s->gen)
		return 0;
	if (vec_reserve((void **)&s->undo, &s->cap_undo, s->n_undo + 1, sizeof(*s->undo), 256))
		return -ENOMEM;
	s->ser[i].undo_gen = s->gen;
	s->undo[s->n_undo++] = (struct undo){ i, s->ser[i] };
	return 0;
}

/* The series of x, made (empty) when new; NULL on ENOMEM. */
static struct ser *ser_get(struct spool *s, const struct sample *x)
{
	struct ser_key k = { ser_hash(x), x };
	if (!s->tab.slot && itab_init(&s->tab, 1024))
		return NULL;
	uint32_t *slot = itab_find(s, &s->tab, k.hash, ser_eq, &k);
	if (*slot)
		return ser_log(s, *slot - 1) ? NULL : &s->ser[*slot - 1];
	if (vec_reserve((void **)&s->ser, &s->cap_ser, s->n_ser + 1, sizeof(*s->ser), 256))
		return NULL;
	/* room first, so the put below never has to grow the table */
	if ((s->tab.used + 1) * 2 > s->tab.mask + 1) {
		if (ser_rehash(s, (s->tab.mask + 1) * 2))
			return NULL;
		slot = itab_find(s, &s->tab, k.hash, ser_eq, &k);
	}
	struct ser *r = &s->ser[s->n_ser];
	memset(r, 0, sizeof(*r));
	r->hash = k.hash;
	r->meter = x->meter;
	memcpy(r->resource, x->resource, sizeof(r->resource));
	memcpy(r->device, x->device, sizeof(r->device));
	if (itab_put(s, &s->tab, slot, (uint32_t)s->n_ser, ser_hash_of))
		return NULL;
	s->n_ser++;
	/* a new entry is undone by forgetting what it saw: logged empty */
	r->undo_gen = 0;
	if (ser_log(s, (uint32_t)(s->n_ser - 1)))
		return NULL;
	return r;
}

/* Forget series not heard of for two "full" intervals (and with nothing
 * held), so the table holds live series only. */
static void ser_compact(struct spool *s, int64_t now_ns)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n_ser; i++) {
		struct ser *r = &s->ser[i];
		if (!(r->flags & SER_HELD) && now_ns - r->seen_ns > 2 * s->o.full_every_ns)
			continue;
		s->ser[k++] = *r;
	}
	if (k == s->n_ser)
		return;
	s->n_ser = k;
	size_t n = 1024;
	while (n < 2 * k + 2)
		n *= 2;
	if (ser_rehash(s, n)) {
		s->n_ser = 0;            /* forget all: safe, only costlier */
		itab_release(&s->tab);
	}
}

static int put(struct spool *s, const struct sample *x)
{
	return batch_add_sample(&s->out, x);
}

/* Filter b into s->out by the current level. 0 or -ENOMEM. */
static int thin(struct spool *s, const struct batch *b, int level)
{
	struct batch *out = &s->out;
	int rc;

	batch_clear(out);
	s->essential = b->n_metas || b->n_events || b->clock_step_ns;
	str_copy(out->agent, b->agent, sizeof(out->agent));
	out->seq = b->seq;
	out->time_ns = b->time_ns;
	out->clock_step_ns = b->clock_step_ns;
	for (size_t i = 0; i < b->n_metas; i++)
		if ((rc = batch_add_meta(out, &b->metas[i])))
			return rc;
	for (size_t i = 0; i < b->n_events; i++)
		if ((rc = batch_add_event(out, &b->events[i])))
			return rc;
	/* the agent's data time stepped: move what is remembered with it, as
	 * the aggregator moves its series (batch.h) */
	if (b->clock_step_ns > 0)
		for (size_t i = 0; i < s->n_ser; i++) {
			struct ser *r = &s->ser[i];
			if ((rc = ser_log(s, (uint32_t)i)))
				return rc;
			r->seen_ns += b->clock_step_ns;
			r->kept_ns += b->clock_step_ns;
			if (r->origin_ns)
				r->origin_ns += b->clock_step_ns;
			if (r->flags & SER_HELD) {
				r->held.time_ns += b->clock_step_ns;
				if (r->held.origin_ns > 0)
					r->held.origin_ns += b->clock_step_ns;
			}
		}
	for (size_t i = 0; i < b->n_samples; i++) {
		const struct sample *x = &b->samples[i];
		if (!wire_sample_ok(x)) {
			s->st.invalid++;
			continue;
		}
		struct ser *r = ser_get(s, x);
		if (!r)
			return -ENOMEM;
		int has = r->flags & SER_HAS;
		int counter = x->kind == SAMPLE_CUMULATIVE;
		int new_life = !has || (r->flags & SER_ENDED) || x->kind != r->kind || x->origin_ns != r->origin_ns;
		int reset = has && counter && r->kind == SAMPLE_CUMULATIVE && x->v.counter < r->counter;
		int essential = new_life || reset || (x->flags & SAMPLE_F_LAST) || x->kind == SAMPLE_DELTA ||
				(x->kind == SAMPLE_GAUGE && meter_allocation_gauge(x->meter) &&
				 memcmp(&x->v.gauge, &r->kept_gauge, sizeof(double)));
		s->essential |= essential;
		int keep = 1, lost = 0;
		if (!essential && level != SPOOL_KEEP) {
			int64_t since = x->time_ns - r->kept_ns;
			if (counter) {
				keep = since >= (level == SPOOL_THIN ? s->o.thin_every_ns : s->o.full_every_ns);
			} else if (meter_allocation_gauge(x->meter)) {
				/* unchanged: implied by the last value written; kept
				 * now and then so the data stays "covered", and the
				 * running state always so, or the SLA sees silence */
				keep = (level == SPOOL_THIN || x->meter == M_INSTANCE) && since >= s->o.thin_every_ns;
			} else {
				/* a measured level: its values are lost when left out */
				keep = level == SPOOL_THIN && since >= s->o.thin_every_ns;
				lost = memcmp(&x->v.gauge, &r->kept_gauge, sizeof(double)) != 0;
			}
		}
		if (keep) {
			if (r->flags & SER_HELD) {
				/* the held reading is the last before a reset or a
				 * new life: without it that usage is lost. Else the
				 * reading now covers it. */
				if (counter && (reset || new_life) && r->held.time_ns < x->time_ns) {
					if ((rc = put(s, &r->held)))
						return rc;
					s->essential = 1;
					s->st.held_written++;
					s->st.thinned--;
				}
				r->flags &= (uint8_t)~SER_HELD;
			}
			if ((rc = put(s, x)))
				return rc;
			r->kept_ns = x->time_ns;
			if (x->kind == SAMPLE_GAUGE)
				r->kept_gauge = x->v.gauge;
		} else if (counter) {
			s->st.thinned++;        /* a held reading it replaces stays left out */
			r->held = *x;
			r->flags |= SER_HELD;
		} else if (lost) {
			s->st.dropped++;
		} else {
			s->st.thinned++;
		}
		r->flags = (uint8_t)((r->flags & SER_HELD) | SER_HAS | ((x->flags & SAMPLE_F_LAST) ? SER_ENDED : 0));
		r->kind = x->kind;
		r->seen_ns = x->time_ns;
		r->origin_ns = x->origin_ns;
		if (x->kind != SAMPLE_GAUGE)
			r->counter = x->v.counter;
		r->seen_gen = s->gen;
	}
	/* a series with a held reading that this batch did not mention may
	 * have ended unseen: write what is held, so its tail is billed */
	for (size_t i = 0; i < s->n_ser; i++) {
		struct ser *r = &s->ser[i];
		if (!(r->flags & SER_HELD) || r->seen_gen == s->gen)
			continue;
		if ((rc = ser_log(s, (uint32_t)i)) || (rc = put(s, &r->held)))
			return rc;
		s->essential = 1;
		r->flags &= (uint8_t)~SER_HELD;
		r->kept_ns = r->held.time_ns;
		s->st.held_written++;
		s->st.thinned--;
	}
	return 0;
}

static void undo_thin(struct spool *s, const struct spool_stats *before)
{
	for (size_t i = s->n_undo; i-- > 0;)
		s->ser[s->undo[i].idx] = s->undo[i].old;
	s->st.thinned = before->thinned;
	s->st.dropped = before->dropped;
	s->st.invalid = before->invalid;
	s->st.held_written = before->held_written;
}

/* ---- append, read, ack --------------------------------------------------- */

int spool_append(struct spool *s, const struct batch *b, struct tally_err *e)
{
	int rc;
	struct spool_stats before;
	int created = 0;

	pthread_mutex_lock(&s->mu);
	if (s->broken) {
		rc = err_set(e, -EIO, "%s: an earlier write failed: reopen the spool", s->dir);
		goto out;
	}
	if (b->seq != s->next_seq || strcmp(b->agent, s->agent)) {
		rc = err_set(e, -EINVAL, "%s: batch %" PRIu64 " of '%s', the spool expects %" PRIu64 " of '%s'",
			     s->dir, b->seq, b->agent, s->next_seq, s->agent);
		goto out;
	}
	/* room held by batches the aggregator committed is given back before
	 * the level is judged: the ack taken in memory is written first */
	if (s->acked > s->acked_disk && level_of(s) != SPOOL_KEEP) {
		struct tally_err ignore = { 0 };
		ack_flush(s, &ignore);   /* failed: judged on what is on disk */
	}
again:
	s->gen++;
	s->n_undo = 0;
	before = s->st;
	if ((rc = thin(s, b, level_of(s)))) {
		undo_thin(s, &before);
		rc = err_set(e, rc, "out of memory");
		goto out;
	}
	s->frame.len = 0;
	if ((rc = wire_encode(&s->enc, &s->out, &s->origin, &s->frame, e))) {
		undo_thin(s, &before);
		goto out;
	}
	size_t len = s->frame.len;
	if (s->bytes + len + SEG_HDR > s->o.max_bytes + s->o.reserve_bytes) {
		undo_thin(s, &before);
		if (s->acked > s->acked_disk) {
			/* committed batches hold room: give it back, and judge again */
			struct tally_err ignore = { 0 };
			if (ack_flush(s, &ignore) == 0)
				goto again;
		}
		s->st.refused++;
		rc = err_set(e, -ENOSPC, "%s: spool full (%" PRIu64 " bytes on disk, limit %" PRIu64 " + reserve %"
			     PRIu64 "): batch %" PRIu64 " not spooled", s->dir, s->bytes, s->o.max_bytes,
			     s->o.reserve_bytes, b->seq);
		goto out;
	}
	struct seg *g = s->n_seg ? &s->seg[s->n_seg - 1] : NULL;
	/* a new segment when the last is full, or when seqs do not follow
	 * on from its frames (see load_segments); a segment is synced whole
	 * before the next one is made */
	if (!g || s->need_new_seg || (g->bytes > SEG_HDR && g->bytes + len > s->o.segment_bytes)) {
		if ((rc = sync_frames(s, e))) {
			undo_thin(s, &before);
			goto out;
		}
		if (g && g->bytes == SEG_HDR && g->first != s->next_seq) {
			char name[64];
			seg_name(name, sizeof(name), g->first);
			unlinkat(s->dirfd, name, 0);
			s->bytes -= g->bytes;
			s->n_seg--;
			close(s->wfd);
			s->wfd = -1;
			close_read(s);
		}
		if ((rc = new_segment(s, s->next_seq, e))) {
			undo_thin(s, &before);
			if (rc == -ENOSPC || rc == -EDQUOT) {
				s->st.refused++;
				rc = err_set(e, rc, "%s: file system full: batch %" PRIu64 " not spooled (%s)", s->dir,
					     b->seq, strerror(-rc));
			}
			goto out;
		}
		created = 1;
		s->need_new_seg = 0;
		g = &s->seg[s->n_seg - 1];
	}
	/* synced now unless every reading is one a later batch covers and
	 * the last sync is less than sync_every_ns of data time old (spool.h) */
	int sync_now = s->o.sync_every_ns <= 0 || s->essential || b->time_ns < s->synced_time_ns ||
		       b->time_ns - s->synced_time_ns >= s->o.sync_every_ns;
	int sync_failed = 0;
	rc = write_all(s->wfd, s->frame.p, len, (off_t)g->bytes);
	if (!rc && sync_now)
		sync_failed = (rc = do_fsync(s, s->wfd, 1)) != 0;
	if (rc) {
		int cut = ftruncate(s->wfd, (off_t)g->bytes);
		undo_thin(s, &before);
		if (created) {
			/* give the fresh segment's block back */
			char name[64];
			seg_name(name, sizeof(name), g->first);
			if (unlinkat(s->dirfd, name, 0) == 0) {
				s->bytes -= g->bytes;
				s->n_seg--;
				close(s->wfd);
				s->wfd = -1;
				cut = 0;
				if (s->n_seg) {
					seg_name(name, sizeof(name), s->seg[s->n_seg - 1].first);
					s->wfd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
					if (s->wfd < 0)
						s->broken = 1;
				}
			}
		}
		/* a sync that failed over earlier frames not synced: they
		 * were spooled, and what the disk holds of them is unknown */
		if ((rc == -ENOSPC || rc == -EDQUOT) && !(sync_failed && s->synced_seq < s->next_seq)) {
			s->st.refused++;
			if (cut < 0 || (s->wfd >= 0 && do_fsync(s, s->wfd, 1)))
				s->broken = 1;
			rc = err_set(e, rc, "%s: file system full: batch %" PRIu64 " not spooled (%s)", s->dir,
				     b->seq, strerror(-rc));
		} else {
			/* after a failed write or sync the page cache may
			 * not match the disk: no more appends until reopened */
			s->broken = 1;
			rc = err_set(e, -EIO, "%s: write of batch %" PRIu64 " failed: %s; reopen the spool", s->dir,
				     b->seq, strerror(-rc));
		}
		goto out;
	}
	g->bytes += len;
	s->bytes += len;
	s->last_time_ns = b->time_ns;
	if (s->next_seq == s->acked + 1)
		s->st.oldest_time_ns = b->time_ns;
	s->next_seq++;
	if (sync_now) {
		s->synced_seq = s->next_seq;
		s->synced_time_ns = b->time_ns;
	}
	s->st.appended++;
	if ((s->st.appended & 1023) == 0)
		ser_compact(s, b->time_ns);
	rc = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Sync the frames written but not synced yet (they are all in the last
 * segment: one is synced whole before the next is made). A failure
 * leaves what the disk holds of them unknown: the spool is broken. */
static int sync_frames(struct spool *s, struct tally_err *e)
{
	if (s->synced_seq == s->next_seq)
		return 0;
	if (s->broken || s->wfd < 0)
		return err_set(e, -EIO, "%s: an earlier write failed: reopen the spool", s->dir);
	int rc = do_fsync(s, s->wfd, 1);
	if (rc) {
		s->broken = 1;
		return err_set(e, -EIO, "%s: fdatasync of batches %" PRIu64 "-%" PRIu64 " failed: %s; reopen the"
			       " spool", s->dir, s->synced_seq, s->next_seq - 1, strerror(-rc));
	}
	s->synced_seq = s->next_seq;
	s->synced_time_ns = s->last_time_ns;
	return 0;
}

int spool_sync(struct spool *s, struct tally_err *e)
{
	pthread_mutex_lock(&s->mu);
	int rc = sync_frames(s, e);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Open segment index i for reading at the cursor. */
static int open_read(struct spool *s, size_t i, struct tally_err *e)
{
	char name[64];
	if (s->rfd >= 0 && s->r_first == s->seg[i].first)
		return 0;
	close_read(s);
	seg_name(name, sizeof(name), s->seg[i].first);
	s->rfd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (s->rfd < 0)
		return err_set(e, -errno, "%s/%s: %s", s->dir, name, strerror(errno));
	s->r_first = s->seg[i].first;
	return 0;
}

static size_t seg_index(struct spool *s, uint64_t seq)
{
	size_t i = s->n_seg - 1;
	while (i > 0 && s->seg[i].first > seq)
		i--;
	return i;
}

/* Position the cursor at frame seq (which exists). */
static int seek_frame(struct spool *s, uint64_t seq, size_t *segi, struct tally_err *e)
{
	size_t i = seg_index(s, seq);
	int rc;
	*segi = i;
	if ((rc = open_read(s, i, e)))
		return rc;
	if (s->r_valid && s->r_first == s->seg[i].first && s->r_seq == seq)
		return 0;
	uint64_t off = SEG_HDR, k = s->seg[i].first;
	if (s->r_valid && s->r_first == s->seg[i].first && s->r_seq < seq)
		off = s->r_off, k = s->r_seq;
	while (k < seq) {
		uint8_t pre[WIRE_PREAMBLE];
		if ((rc = read_all(s->rfd, pre, WIRE_PREAMBLE, (off_t)off)))
			return err_set(e, -EBADMSG, "%s: segment %" PRIu64 " ends before frame %" PRIu64 " (offset %"
				       PRIu64 ")", s->dir, s->seg[i].first, seq, off);
		off += WIRE_OVERHEAD + le_get32(pre + 8);
		k++;
	}
	s->r_off = off;
	s->r_seq = seq;
	s->r_valid = 1;
	return 0;
}

static int peek_frame(struct spool *s, uint64_t seq, struct wire_head *h)
{
	size_t i;
	uint8_t pre[WIRE_PREAMBLE];
	if (!s->n_seg || seq < s->seg[0].first || seq >= s->next_seq || seek_frame(s, seq, &i, NULL))
		return -ENOENT;
	if (read_all(s->rfd, pre, WIRE_PREAMBLE, (off_t)s->r_off))
		return -EIO;
	size_t flen = (size_t)WIRE_OVERHEAD + le_get32(pre + 8);
	if (flen > WIRE_OVERHEAD + WIRE_MAX_BODY)
		return -EIO;
	s->frame.len = 0;
	if (wire_buf_reserve(&s->frame, flen) || read_all(s->rfd, s->frame.p, flen, (off_t)s->r_off))
		return -EIO;
	return wire_check(s->frame.p, flen, h, NULL) ? -EIO : 0;
}

int spool_read(struct spool *s, uint64_t from, size_t max_frames, size_t max_bytes, struct wire_buf *out,
	       size_t *n, struct tally_err *e)
{
	int rc = 0;
	size_t i, start = out->len;
	*n = 0;
	pthread_mutex_lock(&s->mu);
	if (from > s->next_seq) {
		rc = err_set(e, -ERANGE, "%s: seq %" PRIu64 " not spooled yet (next is %" PRIu64 ")", s->dir, from,
			     s->next_seq);
		goto out;
	}
	if (from >= s->synced_seq)
		goto out;       /* nothing synced yet from there */
	if (!s->n_seg || from < s->seg[0].first) {
		rc = err_set(e, -ENOENT, "%s: seq %" PRIu64 " is no longer in the spool (oldest %" PRIu64 ")", s->dir,
			     from, s->n_seg ? s->seg[0].first : s->next_seq);
		goto out;
	}
	if ((rc = seek_frame(s, from, &i, e)))
		goto out;
	uint64_t seq = from;
	while (seq < s->synced_seq && *n < max_frames) {
		if (i + 1 < s->n_seg && seq >= s->seg[i + 1].first) {
			i++;
			if ((rc = open_read(s, i, e)))
				goto fail;
			s->r_off = SEG_HDR;
			s->r_seq = seq;
			s->r_valid = 1;
			if (s->seg[i].first != seq) {
				rc = err_set(e, -EBADMSG, "%s: frames %" PRIu64 "-%" PRIu64 " missing", s->dir, seq,
					     s->seg[i].first - 1);
				goto fail;
			}
		}
		uint8_t pre[WIRE_PREAMBLE];
		if (read_all(s->rfd, pre, WIRE_PREAMBLE, (off_t)s->r_off)) {
			rc = err_set(e, -EBADMSG, "%s: segment %" PRIu64 " ends before frame %" PRIu64, s->dir,
				     s->seg[i].first, seq);
			goto fail;
		}
		size_t flen = (size_t)WIRE_OVERHEAD + le_get32(pre + 8);
		if (*n && out->len - start + flen > max_bytes)
			break;
		if (flen > WIRE_OVERHEAD + WIRE_MAX_BODY || wire_buf_reserve(out, flen)) {
			rc = err_set(e, -EBADMSG, "%s: segment %" PRIu64 " offset %" PRIu64 ": bad frame length",
				     s->dir, s->seg[i].first, s->r_off);
			goto fail;
		}
		struct wire_head h;
		struct tally_err why;
		if (read_all(s->rfd, out->p + out->len, flen, (off_t)s->r_off) ||
		    wire_check(out->p + out->len, flen, &h, &why) || h.seq != seq) {
			rc = err_set(e, -EBADMSG, "%s: segment %" PRIu64 " offset %" PRIu64 ": frame %" PRIu64
				     " damaged on disk", s->dir, s->seg[i].first, s->r_off, seq);
			goto fail;
		}
		out->len += flen;
		s->r_off += flen;
		s->r_seq = ++seq;
		(*n)++;
	}
	goto out;
fail:
	out->len = start;
	*n = 0;
	s->r_valid = 0;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Write the ack taken in memory (s->acked) to the ack file, then delete
 * the segments it completes. 0 or -errno (nothing deleted). */
static int ack_flush(struct spool *s, struct tally_err *e)
{
	uint64_t seq = s->acked;
	/* the time of batch seq: the last one's is known, an earlier one's is
	 * on disk (its segment is not deleted before this ack is written) */
	struct wire_head h;
	int64_t t = seq + 1 == s->next_seq ? s->last_time_ns : peek_frame(s, seq, &h) == 0 ? h.time_ns : 0;
	int rc = write_ack(s, seq, t, e);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		/* a full disk: the segments this ack completes were committed
		 * by the aggregator, so they may go first to make room */
		free_acked(s, seq);
		rc = write_ack(s, seq, t, e);
	}
	if (rc)
		return rc;
	s->acked_disk = seq;
	s->ack_mono_ns = time_mono_ns();
	free_acked(s, seq);
	return 0;
}

int spool_ack(struct spool *s, uint64_t seq, struct tally_err *e)
{
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (seq <= s->acked)
		goto out;
	if (seq >= s->synced_seq) {
		rc = err_set(e, -ERANGE, "%s: ack of %" PRIu64 ", but the spool has sent at most %" PRIu64, s->dir,
			     seq, s->synced_seq - 1);
		goto out;
	}
	uint64_t before = s->acked;
	s->acked = seq;
	/* durable now when a sealed segment is complete (it is deleted), or
	 * when the last write is ack_every_ns old */
	if (s->o.ack_every_ns < 0 || (s->n_seg > 1 && s->seg[1].first - 1 <= seq) ||
	    time_mono_ns() - s->ack_mono_ns >= s->o.ack_every_ns) {
		if ((rc = ack_flush(s, e))) {
			s->acked = before;
			goto out;
		}
	}
	update_oldest(s);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}
