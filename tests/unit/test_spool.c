/*
 * test_spool: the agent's durable spool (daemon/spool.c).
 *
 * Crashes: the last segment cut at every byte offset of its last frames,
 * and garbage or a flipped bit after them, must reopen to exactly the whole
 * frames before the damage; a child process appending in a loop is killed
 * with SIGKILL 20 times and every batch it was told was spooled is there,
 * intact. A real full file system (a 256 KiB tmpfs mounted for the test)
 * gives a clear error and leaves nothing half-written. Identity, locking,
 * acknowledgements and the thinning policy have their counts worked out by
 * hand in the comments.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"
#include "str.h"
#include "testutil.h"
#include "wire.h"

#define S_NS 1000000000LL
#define T0 (1790812800LL * S_NS)

/* A batch whose content is a function of seq: n VMs with a counter and
 * a gauge each. */
static void mkbatch(struct batch *b, const char *agent, uint64_t seq, int n)
{
	batch_init(b, agent);
	b->seq = seq;
	b->time_ns = T0 + (int64_t)seq * 10 * S_NS;
	for (int i = 0; i < n; i++) {
		struct sample s = { .time_ns = b->time_ns - 1000, .meter = M_CPU, .kind = SAMPLE_CUMULATIVE };
		snprintf(s.resource, sizeof(s.resource), "vm-%d", i);
		s.v.counter = seq * 1000 + (uint64_t)i;
		ck_assert_int_eq(batch_add_sample(b, &s), 0);
		s.meter = M_MEMORY;
		s.kind = SAMPLE_GAUGE;
		s.v.gauge = 1024.0 * (double)(i + 1);
		ck_assert_int_eq(batch_add_sample(b, &s), 0);
	}
}

static void check_batch(const struct batch *d, const char *agent, uint64_t seq, int n)
{
	struct batch w;
	mkbatch(&w, agent, seq, n);
	ck_assert_str_eq(d->agent, w.agent);
	ck_assert_uint_eq(d->seq, w.seq);
	ck_assert_int_eq(d->time_ns, w.time_ns);
	ck_assert_uint_eq(d->n_samples, w.n_samples);
	for (size_t i = 0; i < w.n_samples; i++) {
		ck_assert_str_eq(d->samples[i].resource, w.samples[i].resource);
		ck_assert_uint_eq(d->samples[i].meter, w.samples[i].meter);
		ck_assert_uint_eq(d->samples[i].v.counter, w.samples[i].v.counter);
	}
	batch_release(&w);
}

/* A fresh directory (dir, char[256]) and the spool's path in it (sd,
 * char[300]). */
static void spool_dirs(char dir[256], char sd[300])
{
	tu_mkdtemp(dir, 256, "spool");
	snprintf(sd, 300, "%s/a", dir);
}

/* Read every frame from seq from; check each is mkbatch(seq, n). Returns
 * how many. */
static size_t read_all_check(struct spool *sp, uint64_t from, const char *agent, int n)
{
	struct wire_buf buf = { 0 };
	struct tally_err e = { 0 };
	struct batch d;
	size_t got = 0, k;
	batch_init(&d, NULL);
	for (;;) {
		buf.len = 0;
		ck_assert_msg(spool_read(sp, from, 3, 1 << 20, &buf, &k, &e) == 0, "%s", e.msg);
		if (!k)
			break;
		size_t off = 0;
		for (size_t i = 0; i < k; i++) {
			struct wire_info info;
			ck_assert_msg(wire_decode(buf.p + off, buf.len - off, &d, &info, &e) == 0, "%s", e.msg);
			check_batch(&d, agent, from, n);
			off += info.head.frame_len;
			from++;
			got++;
		}
		ck_assert_uint_eq(off, buf.len);
	}
	batch_release(&d);
	wire_buf_release(&buf);
	return got;
}

static void append_ok(struct spool *sp, const char *agent, uint64_t seq, int n)
{
	struct batch b;
	struct tally_err e = { 0 };
	mkbatch(&b, agent, seq, n);
	ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
	batch_release(&b);
}

static int count_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += strlen(de->d_name) == 24 && strstr(de->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc(*len + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, *len, f), *len);
	p[*len] = '\0';
	fclose(f);
	return p;
}

static void spit(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, len, f), len);
	fclose(f);
}

START_TEST(basic_life)
{
	char dir[256], sd[300], path[400];
	struct spool *sp;
	struct spool_open_report rep;
	struct spool_stats st;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);

	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, &rep, &e), 0);
	ck_assert_int_eq(rep.created, 1);
	ck_assert_uint_eq(spool_next_seq(sp), 1);
	/* the identity file says what it is, in text */
	size_t len;
	snprintf(path, sizeof(path), "%s/identity", sd);
	char *id = slurp(path, &len);
	ck_assert(!strncmp(id, "tally spool 1\nagent host-a\nspool ", 33));
	ck_assert_ptr_nonnull(strstr(id, "\nfirst_seq 1\n"));
	free(id);
	/* a seq other than the next is refused */
	struct batch b;
	mkbatch(&b, "host-a", 2, 3);
	ck_assert_int_eq(spool_append(sp, &b, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "expects 1"));
	batch_release(&b);
	for (uint64_t q = 1; q <= 5; q++)
		append_ok(sp, "host-a", q, 3);
	ck_assert_uint_eq(read_all_check(sp, 1, "host-a", 3), 5);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.batches, 5);
	ck_assert_uint_eq(st.next_seq, 6);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.segments, 1);
	ck_assert_uint_eq(st.appended, 5);
	ck_assert_int_eq(st.oldest_time_ns, T0 + 10 * S_NS);
	/* one fdatasync per batch, plus identity (file + dir) and the
	 * segment (file + dir) */
	ck_assert_uint_eq(st.fsyncs, 5 + 2 + 2);
	/* every frame carries the spool's id and first seq */
	struct wire_origin o;
	struct wire_buf buf = { 0 };
	size_t n;
	spool_origin(sp, &o);
	ck_assert_uint_eq(o.spool_first_seq, 1);
	ck_assert_int_eq(spool_read(sp, 4, 10, 1 << 20, &buf, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	struct wire_head h;
	ck_assert_int_eq(wire_check(buf.p, buf.len, &h, &e), 0);
	ck_assert(!memcmp(&h.origin, &o, sizeof(o)));
	ck_assert_uint_eq(h.seq, 4);
	/* max_bytes stops after whole frames, but gives at least one */
	buf.len = 0;
	ck_assert_int_eq(spool_read(sp, 1, 10, 1, &buf, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	/* nothing after the last, and nothing beyond */
	buf.len = 0;
	ck_assert_int_eq(spool_read(sp, 6, 10, 1 << 20, &buf, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(spool_read(sp, 7, 10, 1 << 20, &buf, &n, &e), -ERANGE);
	ck_assert_int_eq(spool_ack(sp, 6, &e), -ERANGE);
	ck_assert_int_eq(spool_ack(sp, 3, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.batches, 2);
	ck_assert_int_eq(st.oldest_time_ns, T0 + 40 * S_NS);
	/* acknowledged frames still in a live segment can be read again */
	ck_assert_uint_eq(read_all_check(sp, 2, "host-a", 3), 4);
	spool_close(sp);

	/* reopened: the seqs continue, the ack held */
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, &rep, &e), 0);
	ck_assert_int_eq(rep.created, 0);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_uint_eq(spool_next_seq(sp), 6);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.acked_seq, 3);
	ck_assert_uint_eq(st.batches, 2);
	/* the data time it holds up to: its last frame's (batch q at q x 10 s) */
	ck_assert_int_eq(st.last_time_ns, T0 + 50 * S_NS);
	snprintf(path, sizeof(path), "%s/ack", sd);
	char *ack = slurp(path, &len);
	/* the ack names batch 3 and its time, T0 + 30 s in ns */
	ck_assert_str_eq(ack, "acked 3\ntime 1790812830000000000\n");
	free(ack);
	append_ok(sp, "host-a", 6, 3);
	ck_assert_uint_eq(read_all_check(sp, 4, "host-a", 3), 3);
	/* everything acknowledged: taken at once, but the ack was written
	 * less than ack_every_ns (60 s) ago, at the open: no sync, the ack
	 * file and the segment stay until the close */
	spool_get_stats(sp, &st);
	uint64_t syncs = st.fsyncs, bytes = st.bytes;
	ck_assert_int_eq(spool_ack(sp, 6, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.acked_seq, 6);
	ck_assert_uint_eq(st.batches, 0);
	ck_assert_int_eq(st.oldest_time_ns, 0);
	ck_assert_uint_eq(st.fsyncs, syncs);
	ck_assert_uint_eq(st.segments, 1);
	ck_assert_uint_eq(st.bytes, bytes);
	ack = slurp(path, &len);
	ck_assert_str_eq(ack, "acked 3\ntime 1790812830000000000\n");
	free(ack);
	/* the close writes it (file and directory synced) and the segment
	 * it completes goes; the seqs go on */
	spool_close(sp);
	ack = slurp(path, &len);
	ck_assert_str_eq(ack, "acked 6\ntime 1790812860000000000\n");
	free(ack);
	ck_assert_int_eq(count_segments(sd), 0);
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, &rep, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.segments, 0);
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_int_eq(spool_read(sp, 5, 10, 1 << 20, &buf, &n, &e), -ENOENT);
	ck_assert_uint_eq(spool_next_seq(sp), 7);
	/* no frame left on disk: the ack still says where the data ends */
	spool_get_stats(sp, &st);
	ck_assert_int_eq(st.last_time_ns, T0 + 60 * S_NS);
	append_ok(sp, "host-a", 7, 1);
	ck_assert_uint_eq(read_all_check(sp, 7, "host-a", 1), 1);
	spool_close(sp);
	wire_buf_release(&buf);
	tu_rmrf(dir);
}
END_TEST

START_TEST(identity_and_lock)
{
	char dir[256], sd[300], path[400];
	struct spool *sp, *sp2;
	struct spool_open_report rep;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	struct spool_opts o = { .first_seq = 5001 };
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", &o, &rep, &e), 0);
	/* a new spool continuing after an aggregator's seq 5000 */
	ck_assert_uint_eq(spool_next_seq(sp), 5001);
	append_ok(sp, "host-a", 5001, 2);
	/* a second opener, even in this process, is refused */
	ck_assert_int_eq(spool_open(&sp2, sd, "host-a", NULL, NULL, &e), -EBUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, "in use by another process"));
	spool_close(sp);
	/* another agent id */
	ck_assert_int_eq(spool_open(&sp, sd, "host-b", NULL, NULL, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "spool of agent 'host-a', not 'host-b'"));
	/* first_seq for an existing spool changes nothing */
	o.first_seq = 1;
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", &o, &rep, &e), 0);
	ck_assert_uint_eq(spool_next_seq(sp), 5002);
	struct wire_origin wo;
	spool_origin(sp, &wo);
	ck_assert_uint_eq(wo.spool_first_seq, 5001);
	spool_close(sp);
	/* the identity lost but segments still there: refused, not reset */
	snprintf(path, sizeof(path), "%s/identity", sd);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, NULL, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "no spool identity"));
	/* a damaged identity */
	spit(path, "tally spool 1\nagent host-a\n", 27);
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, NULL, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "identity"));
	/* a crash while the spool was made: its lock and a half-written
	 * identity.tmp, nothing spooled: made again, not refused for ever */
	snprintf(path, sizeof(path), "%s/torn", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(sd, sizeof(sd), "%s/torn/lock", dir);
	spit(sd, "", 0);
	snprintf(sd, sizeof(sd), "%s/torn/identity.tmp", dir);
	spit(sd, "tally spo", 9);
	ck_assert_msg(spool_open(&sp, path, "host-a", NULL, &rep, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(rep.created, 1);
	spool_close(sp);
	/* a parent that does not exist */
	snprintf(path, sizeof(path), "%s/no/such", dir);
	ck_assert_int_eq(spool_open(&sp, path, "host-a", NULL, NULL, &e), -ENOENT);
	/* two spools have different ids */
	snprintf(path, sizeof(path), "%s/b", dir);
	ck_assert_int_eq(spool_open(&sp, path, "host-a", NULL, NULL, &e), 0);
	snprintf(path, sizeof(path), "%s/c", dir);
	ck_assert_int_eq(spool_open(&sp2, path, "host-a", NULL, NULL, &e), 0);
	struct wire_origin o1, o2;
	spool_origin(sp, &o1);
	spool_origin(sp2, &o2);
	ck_assert(memcmp(o1.spool_id, o2.spool_id, WIRE_SPOOL_ID_LEN));
	spool_close(sp);
	spool_close(sp2);
	tu_rmrf(dir);
}
END_TEST

/* Where an agent's data ends survives every state of the spool: a new
 * spool says the cycle it was made after (covered_ns), a spool with frames
 * its last frame, a spool whose frames were all acknowledged and deleted
 * its ack. A text of identity or ack with a byte more than its form is
 * refused, not half read. */
START_TEST(data_time_survives)
{
	char dir[256], sd[300], path[400], text[300];
	struct spool *sp;
	struct spool_stats st;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	struct spool_opts o = { .covered_ns = T0 };
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", &o, NULL, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_int_eq(st.last_time_ns, T0);
	spool_close(sp);
	/* reopened empty: from the identity, which says it in a fifth line */
	snprintf(path, sizeof(path), "%s/identity", sd);
	size_t len;
	char *id = slurp(path, &len);
	ck_assert_ptr_nonnull(strstr(id, "\nfirst_seq 1\ncovered_ns 1790812800000000000\n"));
	str_copy(text, id, sizeof(text));
	free(id);
	o.covered_ns = T0 + 999 * S_NS;   /* ignored for a spool that exists */
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", &o, NULL, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_int_eq(st.last_time_ns, T0);
	append_ok(sp, "host-a", 1, 2);
	append_ok(sp, "host-a", 2, 2);
	spool_get_stats(sp, &st);
	ck_assert_int_eq(st.last_time_ns, T0 + 20 * S_NS);
	ck_assert_int_eq(spool_ack(sp, 2, &e), 0);
	spool_close(sp);
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, NULL, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.segments, 0);
	ck_assert_int_eq(st.last_time_ns, T0 + 20 * S_NS);
	spool_close(sp);
	/* a line too many, a time that is not a number, a stray byte */
	static const char *const bad_ack[] = { "acked 2\ntime 5\nmore\n", "acked 2\ntime x\n",
					       "acked 2\ntime 5", "acked 2 \n", "acked 2\ntime -5\n" };
	snprintf(path, sizeof(path), "%s/ack", sd);
	for (size_t i = 0; i < sizeof(bad_ack) / sizeof(bad_ack[0]); i++) {
		spit(path, bad_ack[i], strlen(bad_ack[i]));
		ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, NULL, &e), -EINVAL);
		ck_assert_ptr_nonnull(strstr(e.msg, "not an acknowledgement"));
	}
	spit(path, "acked 2\n", 8);   /* the form without a time is still read */
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, NULL, &e), 0);
	spool_close(sp);
	snprintf(path, sizeof(path), "%s/identity", sd);
	strcat(text, "x\n");
	spit(path, text, strlen(text));
	ck_assert_int_eq(spool_open(&sp, sd, "host-a", NULL, NULL, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a tally spool identity"));
	tu_rmrf(dir);
}
END_TEST

START_TEST(segments_freed_by_ack)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	/* segment_bytes 1: every frame starts a segment of its own */
	struct spool_opts o = { .segment_bytes = 1 };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	for (uint64_t q = 1; q <= 6; q++)
		append_ok(sp, "h", q, 2);
	ck_assert_int_eq(count_segments(sd), 6);
	ck_assert_uint_eq(read_all_check(sp, 1, "h", 2), 6);
	/* ack 4: segments 1-4 go, 5 and 6 stay; the ack is on disk first,
	 * although the last was written less than ack_every_ns ago */
	ck_assert_int_eq(spool_ack(sp, 4, &e), 0);
	ck_assert_int_eq(count_segments(sd), 2);
	char path[400];
	size_t len;
	snprintf(path, sizeof(path), "%s/ack", sd);
	char *ack = slurp(path, &len);
	ck_assert_str_eq(ack, "acked 4\ntime 1790812840000000000\n");
	free(ack);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.segments, 2);
	ck_assert_uint_eq(spool_oldest_seq(sp), 5);
	ck_assert_int_eq(spool_read(sp, 4, 1, 1, &(struct wire_buf){ 0 }, &(size_t){ 0 }, &e), -ENOENT);
	ck_assert_uint_eq(read_all_check(sp, 5, "h", 2), 2);
	spool_close(sp);
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	ck_assert_uint_eq(spool_next_seq(sp), 7);
	ck_assert_uint_eq(read_all_check(sp, 5, "h", 2), 2);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/* An acknowledgement taken in memory and lost with the process (a kill -9
 * before it was due on disk): the frames it covered are all still there,
 * so the restarted agent sends them again (the aggregator acknowledges
 * them as committed); with ack_every_ns < 0 every ack is written at once
 * (two syncs: the file and the directory). */
START_TEST(ack_lost_with_the_process)
{
	char dir[256], sd[300], path[400];
	struct tally_err e = { 0 };
	struct spool *sp;
	struct spool_stats st;
	size_t len;
	spool_dirs(dir, sd);
	snprintf(path, sizeof(path), "%s/ack", sd);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (spool_open(&sp, sd, "h", NULL, NULL, &e))
			_exit(3);
		for (uint64_t q = 1; q <= 5; q++) {
			struct batch b;
			mkbatch(&b, "h", q, 2);
			if (spool_append(sp, &b, &e))
				_exit(4);
			batch_release(&b);
		}
		if (spool_ack(sp, 2, &e) || spool_ack(sp, 5, &e) || access(path, F_OK) == 0)
			_exit(5);
		_exit(0);   /* no spool_close: what a kill -9 leaves */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct spool_opts o = { .ack_every_ns = -1 };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.acked_seq, 0);
	ck_assert_uint_eq(st.batches, 5);
	ck_assert_uint_eq(spool_next_seq(sp), 6);
	ck_assert_uint_eq(read_all_check(sp, 1, "h", 2), 5);
	uint64_t syncs = st.fsyncs;
	ck_assert_int_eq(spool_ack(sp, 2, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.fsyncs, syncs + 2);
	char *ack = slurp(path, &len);
	ck_assert_str_eq(ack, "acked 2\ntime 1790812820000000000\n");
	free(ack);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/* Cut the only segment at every offset from the start of frame `from`
 * to its end, and at a few inside the header: reopen, check. */
START_TEST(torn_tail_every_offset)
{
	char dir[256], sd[300], seg[400];
	struct spool *sp;
	struct spool_open_report rep;
	struct spool_stats st;
	struct tally_err e = { 0 };
	uint64_t ends[6];
	spool_dirs(dir, sd);
	ck_assert_int_eq(spool_open(&sp, sd, "h", NULL, NULL, &e), 0);
	for (uint64_t q = 1; q <= 5; q++) {
		append_ok(sp, "h", q, 2 + (int)q);
		spool_get_stats(sp, &st);
		ends[q] = st.bytes;
	}
	ends[0] = 48;   /* the segment header */
	spool_close(sp);
	snprintf(seg, sizeof(seg), "%s/%020d.seg", sd, 1);
	size_t len;
	char *orig = slurp(seg, &len);
	ck_assert_uint_eq(len, ends[5]);

	for (uint64_t cut = ends[3]; cut <= ends[5]; cut++) {
		spit(seg, orig, cut);
		ck_assert_msg(spool_open(&sp, sd, "h", NULL, &rep, &e) == 0, "%s", e.msg);
		/* whole frames below the cut */
		uint64_t whole = cut >= ends[5] ? 5 : cut >= ends[4] ? 4 : 3;
		ck_assert_uint_eq(spool_next_seq(sp), whole + 1);
		ck_assert_uint_eq(rep.torn_bytes, cut - ends[whole]);
		if (rep.torn_bytes)
			ck_assert(rep.torn_reason[0]);
		spool_close(sp);
		/* the file was cut to the whole frames, durably */
		struct stat sb;
		ck_assert_int_eq(stat(seg, &sb), 0);
		ck_assert_uint_eq((uint64_t)sb.st_size, ends[whole]);
		ck_assert_int_eq(spool_open(&sp, sd, "h", NULL, &rep, &e), 0);
		ck_assert_uint_eq(rep.torn_bytes, 0);
		/* each whole frame reads back as what was appended */
		struct wire_buf buf = { 0 };
		struct batch d;
		size_t n;
		batch_init(&d, NULL);
		ck_assert_int_eq(spool_read(sp, 1, 100, 1 << 20, &buf, &n, &e), 0);
		ck_assert_uint_eq(n, whole);
		size_t off = 0;
		for (uint64_t q = 1; q <= whole; q++) {
			struct wire_info info;
			ck_assert_int_eq(wire_decode(buf.p + off, buf.len - off, &d, &info, &e), 0);
			check_batch(&d, "h", q, 2 + (int)q);
			off += info.head.frame_len;
		}
		/* and appending goes on from there */
		append_ok(sp, "h", whole + 1, 1);
		spool_close(sp);
		batch_release(&d);
		wire_buf_release(&buf);
	}
	/* a header cut short: the segment is dropped, the spool is empty */
	for (uint64_t cut = 0; cut < 48; cut += 7) {
		spit(seg, orig, cut);
		ck_assert_int_eq(spool_open(&sp, sd, "h", NULL, &rep, &e), 0);
		ck_assert_uint_eq(spool_next_seq(sp), 1);
		ck_assert_uint_eq(rep.torn_bytes, cut);
		spool_close(sp);
		ck_assert_int_eq(access(seg, F_OK), -1);
	}
	/* power loss: zeros after the last frame; garbage; a flipped bit in
	 * the last frame */
	char *z = calloc(1, len + 4096);
	memcpy(z, orig, len);
	spit(seg, z, len + 4096);
	ck_assert_int_eq(spool_open(&sp, sd, "h", NULL, &rep, &e), 0);
	ck_assert_uint_eq(spool_next_seq(sp), 6);
	ck_assert_uint_eq(rep.torn_bytes, 4096);
	spool_close(sp);
	memcpy(z + len, "TLYB\x01\x00\x00\x00\x10\x00\x00\x00garbagegarbage!!XXXX", 32);
	spit(seg, z, len + 32);
	ck_assert_int_eq(spool_open(&sp, sd, "h", NULL, &rep, &e), 0);
	ck_assert_uint_eq(spool_next_seq(sp), 6);
	ck_assert_uint_eq(rep.torn_bytes, 32);
	ck_assert_ptr_nonnull(strstr(rep.torn_reason, "checksum"));
	spool_close(sp);
	memcpy(z, orig, len);
	z[ends[4] + 30] ^= 0x10;
	spit(seg, z, len);
	ck_assert_int_eq(spool_open(&sp, sd, "h", NULL, &rep, &e), 0);
	ck_assert_uint_eq(spool_next_seq(sp), 5);
	ck_assert_uint_eq(rep.torn_bytes, ends[5] - ends[4]);
	spool_close(sp);
	free(z);
	free(orig);
	tu_rmrf(dir);
}
END_TEST

/* A child appends in a loop and reports each spooled seq on a pipe; the
 * parent kills it with SIGKILL at a random moment, 20 times. */
START_TEST(kill_9_while_appending)
{
	char dir[256], sd[300];
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	srand(2026);
	uint64_t confirmed = 0;
	for (int round = 0; round < 20; round++) {
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(p[0]);
			struct spool *sp;
			struct spool_opts o = { .segment_bytes = 4096 };
			if (spool_open(&sp, sd, "h", &o, NULL, &e))
				_exit(3);
			for (;;) {
				uint64_t q = spool_next_seq(sp);
				struct batch b;
				mkbatch(&b, "h", q, 1 + (int)(q % 7));
				if (spool_append(sp, &b, &e))
					_exit(4);
				batch_release(&b);
				if (write(p[1], &q, sizeof(q)) != sizeof(q))
					_exit(5);
			}
		}
		close(p[1]);
		int want = 3 + rand() % 25;
		uint64_t q = 0;
		for (int i = 0; i < want; i++)
			ck_assert_int_eq(read(p[0], &q, sizeof(q)), (ssize_t)sizeof(q));
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* whatever else was confirmed before the kill counts too */
		while (read(p[0], &q, sizeof(q)) == (ssize_t)sizeof(q))
			;
		close(p[0]);
		ck_assert_uint_gt(q, confirmed);
		confirmed = q;
		struct spool *sp;
		struct spool_open_report rep;
		struct spool_opts o = { .segment_bytes = 4096 };
		ck_assert_msg(spool_open(&sp, sd, "h", &o, &rep, &e) == 0, "%s", e.msg);
		uint64_t next = spool_next_seq(sp);
		ck_assert_uint_ge(next, confirmed + 1);
		/* every batch, confirmed or not, is whole and right */
		struct wire_buf buf = { 0 };
		struct batch d;
		size_t n;
		batch_init(&d, NULL);
		for (uint64_t s = 1; s < next; s++) {
			buf.len = 0;
			ck_assert_msg(spool_read(sp, s, 1, 1, &buf, &n, &e) == 0, "%s", e.msg);
			ck_assert_uint_eq(n, 1);
			ck_assert_int_eq(wire_decode(buf.p, buf.len, &d, NULL, &e), 0);
			check_batch(&d, "h", s, 1 + (int)(s % 7));
		}
		batch_release(&d);
		wire_buf_release(&buf);
		spool_close(sp);
	}
	ck_assert_uint_ge(confirmed, 60);
	tu_rmrf(dir);
}
END_TEST

/* A real full file system: a tmpfs of 256 KiB mounted for this test. */
START_TEST(disk_full)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st;
	struct spool_open_report rep;
	struct tally_err e = { 0 };
	tu_mkdtemp(dir, sizeof(dir), "spoolfull");
	ck_assert_msg(mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700") == 0,
		      "mounting a tmpfs at %s needs root: %s", dir, strerror(errno));
	snprintf(sd, sizeof(sd), "%s/a", dir);
	struct spool_opts o = { .segment_bytes = 64 << 10 };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	uint64_t q = 1;
	int rc;
	for (;; q++) {
		struct batch b;
		mkbatch(&b, "h", q, 150);
		rc = spool_append(sp, &b, &e);
		batch_release(&b);
		if (rc)
			break;
		ck_assert_uint_lt(q, 1000);
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_ptr_nonnull(strstr(e.msg, "file system full"));
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.refused, 1);
	ck_assert_uint_eq(st.next_seq, q);
	/* nothing half-written: the files hold exactly the spooled frames */
	uint64_t on_disk = 0;
	DIR *d = opendir(sd);
	struct dirent *de;
	while ((de = readdir(d))) {
		char p[600];
		struct stat sb;
		if (!strstr(de->d_name, ".seg"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", sd, de->d_name);
		ck_assert_int_eq(stat(p, &sb), 0);
		on_disk += (uint64_t)sb.st_size;
	}
	closedir(d);
	ck_assert_uint_eq(on_disk, st.bytes);
	/* the next try fails the same way, without damage */
	struct batch b;
	mkbatch(&b, "h", q, 150);
	ck_assert_int_eq(spool_append(sp, &b, &e), -ENOSPC);
	spool_close(sp);
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, &rep, &e), 0);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	ck_assert_uint_eq(spool_next_seq(sp), q);
	ck_assert_uint_eq(read_all_check(sp, 1, "h", 150), q - 1);
	/* the aggregator commits most: whole segments go, room comes back */
	ck_assert_msg(spool_ack(sp, q - 2, &e) == 0, "%s", e.msg);
	ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(read_all_check(sp, q - 1, "h", 150), 2);
	batch_release(&b);
	spool_close(sp);
	ck_assert_int_eq(umount2(dir, MNT_DETACH), 0);
	tu_rmrf(dir);
}
END_TEST

/* --- the policy when the spool fills (docs/transport.md) --- */

struct seen {
	int n[METER_COUNT];
	struct sample s[200];
	size_t ns;
};

static void read_samples(struct spool *sp, uint64_t from, struct seen *out)
{
	struct wire_buf buf = { 0 };
	struct tally_err e = { 0 };
	struct batch d;
	size_t n;
	memset(out, 0, sizeof(*out));
	batch_init(&d, NULL);
	ck_assert_int_eq(spool_read(sp, from, 1000, 1 << 30, &buf, &n, &e), 0);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		struct wire_info info;
		ck_assert_int_eq(wire_decode(buf.p + off, buf.len - off, &d, &info, &e), 0);
		off += info.head.frame_len;
		for (size_t k = 0; k < d.n_samples; k++) {
			out->n[d.samples[k].meter]++;
			ck_assert_uint_lt(out->ns, 200);
			out->s[out->ns++] = d.samples[k];
		}
	}
	batch_release(&d);
	wire_buf_release(&buf);
}

static void add(struct batch *b, int64_t t, int meter, int kind, uint64_t c, double g)
{
	struct sample s = { .time_ns = t, .meter = (uint16_t)meter, .kind = (uint8_t)kind };
	strcpy(s.resource, "vm");
	if (kind == SAMPLE_GAUGE)
		s.v.gauge = g;
	else
		s.v.counter = c;
	ck_assert_int_eq(batch_add_sample(b, &s), 0);
}

static int64_t sample_time(const struct seen *sn, int meter, int nth)
{
	for (size_t i = 0; i < sn->ns; i++)
		if (sn->s[i].meter == meter && nth-- == 0)
			return sn->s[i].time_ns;
	return -1;
}

/*
 * Level "thin" from the second batch on (thin_at 1 byte), one routine
 * reading per series per 60 s; cycles k = 0..12 every 10 s, t_k = T0 + 10k s.
 *   cpu (counter): 100k, but 50 at k = 8 (a reset), then 150, 250, ...
 *     k0 kept (level keep); k1-5 held (since < 60 s), k6 kept (60 s) and
 *     k5 left out; k7 held; k8 is a reset: k7 written first, then k8;
 *     k9-12 held. Written: k0, k6, k7, k8. Left out: k1-5, k9-12.
 *   vcpus (allocation gauge): 2, 4 from k9. Written: k0, k6 (60 s),
 *     k9 (a change). Left out (unchanged, "thinned"): k1-5, k7, k8, k10-12.
 *   memory.usage (measured gauge): 1000 + k. Written: k0, k6, k12 (every
 *     60 s); k1-5 and k7-11 are "dropped" (their values are gone).
 *   thinned = cpu 9 (k1-5, k9-12; k7 counted, then written back) + vcpus 10 = 19;
 *   dropped = 10; held_written = 1.
 * Then k13 without cpu: the held k12 reading is written (the series may
 * have ended unseen): held_written 2, thinned 18 + vcpus k13 = 19, dropped
 * 11 (memory.usage k13, 10 s after k12).
 */
START_TEST(policy_thin_by_hand)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st;
	struct tally_err e = { 0 };
	struct seen sn;
	spool_dirs(dir, sd);
	struct spool_opts o = { .thin_at_bytes = 1, .thin_every_ns = 60 * S_NS, .full_every_ns = 600 * S_NS };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	for (int k = 0; k <= 12; k++) {
		struct batch b;
		int64_t t = T0 + k * 10 * S_NS;
		batch_init(&b, "h");
		b.seq = (uint64_t)k + 1;
		b.time_ns = t;
		add(&b, t, M_CPU, SAMPLE_CUMULATIVE, k < 8 ? 100u * (unsigned)k : 50u + 100u * (unsigned)(k - 8), 0);
		add(&b, t, M_VCPUS, SAMPLE_GAUGE, 0, k < 9 ? 2 : 4);
		add(&b, t, M_MEMORY_USAGE, SAMPLE_GAUGE, 0, 1000 + k);
		ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
		batch_release(&b);
	}
	spool_get_stats(sp, &st);
	ck_assert_int_eq(st.level, SPOOL_THIN);
	ck_assert_uint_eq(st.thinned, 19);
	ck_assert_uint_eq(st.dropped, 10);
	ck_assert_uint_eq(st.held_written, 1);
	read_samples(sp, 1, &sn);
	ck_assert_int_eq(sn.n[M_CPU], 4);
	ck_assert_int_eq(sn.n[M_VCPUS], 3);
	ck_assert_int_eq(sn.n[M_MEMORY_USAGE], 3);
	int64_t tk[] = { 0, 6, 7, 8 };
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sample_time(&sn, M_CPU, i), T0 + tk[i] * 10 * S_NS);
	ck_assert_int_eq(sample_time(&sn, M_VCPUS, 2), T0 + 90 * S_NS);
	ck_assert_int_eq(sample_time(&sn, M_MEMORY_USAGE, 2), T0 + 120 * S_NS);
	/* the reset's usage survives: 700 (k7) then 50 (k8) */
	for (size_t i = 0; i < sn.ns; i++)
		if (sn.s[i].meter == M_CPU && sn.s[i].time_ns == T0 + 70 * S_NS)
			ck_assert_uint_eq(sn.s[i].v.counter, 700);

	struct batch b;
	int64_t t = T0 + 130 * S_NS;
	batch_init(&b, "h");
	b.seq = 14;
	b.time_ns = t;
	add(&b, t, M_VCPUS, SAMPLE_GAUGE, 0, 4);
	add(&b, t, M_MEMORY_USAGE, SAMPLE_GAUGE, 0, 1013);
	ck_assert_int_eq(spool_append(sp, &b, &e), 0);
	batch_release(&b);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.held_written, 2);
	ck_assert_uint_eq(st.thinned, 19);
	ck_assert_uint_eq(st.dropped, 11);
	read_samples(sp, 14, &sn);
	ck_assert_uint_eq(sn.ns, 1);
	ck_assert_uint_eq(sn.s[0].meter, M_CPU);
	ck_assert_uint_eq(sn.s[0].v.counter, 450);
	ck_assert_int_eq(sn.s[0].time_ns, T0 + 120 * S_NS);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/*
 * sync_every_ns (agent.send_every) of 30 s, batches every 10 s of one VM:
 * cpu counter 100 k (a reset at k = 8), vcpus 2 (4 from k = 6), memory
 * usage 1000 + k; an event at k = 4. By hand, what is synced when (the
 * last sync's batch time s, the batch's time t):
 *   k0 first readings: at once             s = 0     fsyncs 5 (identity
 *                                                    2, segment 2, frame)
 *   k1 routine, t - s = 10 < 30: waits
 *   k2 routine, 20: waits
 *   k3 routine, 30: synced with k1, k2     s = 30    fsyncs 6
 *   k4 an event: at once                   s = 40    7
 *   k5 routine, 10: waits
 *   k6 vcpus 2 -> 4: at once, with k5      s = 60    8
 *   k7 routine: waits
 *   k8 cpu reset (700 -> 50): at once      s = 80    9
 *   k9 routine: waits; spool_sync() syncs it            10
 * Only what is synced is read (sent) or acknowledged.
 */
static void sync_batch(struct batch *b, int k)
{
	int64_t t = T0 + k * 10 * S_NS;
	batch_init(b, "h");
	b->seq = (uint64_t)k + 1;
	b->time_ns = t;
	add(b, t, M_CPU, SAMPLE_CUMULATIVE, k < 8 ? 100u * (unsigned)k : 50u + 100u * (unsigned)(k - 8), 0);
	add(b, t, M_VCPUS, SAMPLE_GAUGE, 0, k < 6 ? 2 : 4);
	add(b, t, M_MEMORY_USAGE, SAMPLE_GAUGE, 0, 1000 + k);
	if (k == 4) {
		struct lifecycle_event ev = { .time_ns = t - S_NS, .type = "suspended", .reason = "paused" };
		strcpy(ev.resource, "vm");
		ck_assert_int_eq(batch_add_event(b, &ev), 0);
	}
}

/* How many frames spool_read gives from seq from (all of them asked). */
static size_t readable(struct spool *sp, uint64_t from)
{
	struct wire_buf buf = { 0 };
	struct tally_err e = { 0 };
	size_t n;
	ck_assert_msg(spool_read(sp, from, 1000, 1 << 30, &buf, &n, &e) == 0, "%s", e.msg);
	wire_buf_release(&buf);
	return n;
}

START_TEST(sync_every_by_hand)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	struct spool_opts o = { .sync_every_ns = 30 * S_NS };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	/* after batch k: fsyncs so far, batches written not synced */
	static const uint64_t fsyncs[10] = { 5, 5, 5, 6, 7, 7, 8, 8, 9, 9 };
	static const uint64_t unsynced[10] = { 0, 1, 2, 0, 0, 1, 0, 1, 0, 1 };
	for (int k = 0; k < 10; k++) {
		struct batch b;
		sync_batch(&b, k);
		ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
		batch_release(&b);
		spool_get_stats(sp, &st);
		ck_assert_msg(st.fsyncs == fsyncs[k] && st.unsynced == unsynced[k],
			      "k%d: %llu fsyncs, %llu unsynced", k, (unsigned long long)st.fsyncs,
			      (unsigned long long)st.unsynced);
		/* every batch is there, unthinned; only the synced ones read */
		ck_assert_uint_eq(st.next_seq, (uint64_t)k + 2);
		ck_assert_uint_eq(readable(sp, 1), (size_t)(k + 1) - unsynced[k]);
		if (unsynced[k]) {
			struct wire_buf buf = { 0 };
			size_t n = 1;
			ck_assert_int_eq(spool_read(sp, st.next_seq - 1, 5, 1 << 20, &buf, &n, &e), 0);
			ck_assert_uint_eq(n, 0);
			ck_assert_int_eq(spool_ack(sp, st.next_seq - 1, &e), -ERANGE);
			wire_buf_release(&buf);
		}
	}
	/* the aggregator can acknowledge what it was sent */
	ck_assert_int_eq(spool_ack(sp, 9, &e), 0);
	ck_assert_int_eq(spool_sync(sp, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.fsyncs, 10);
	ck_assert_uint_eq(st.unsynced, 0);
	ck_assert_uint_eq(readable(sp, 10), 1);
	ck_assert_int_eq(spool_sync(sp, &e), 0);   /* nothing to sync: no fsync */
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.fsyncs, 10);
	ck_assert_uint_eq(st.thinned, 0);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/*
 * A process that dies with batches written but not synced: they are in the
 * page cache; the next open syncs them (one fdatasync) and sends them. A
 * power loss can take them back instead (modelled by cutting the segment
 * where the last sync left it): the spool then numbers the next batch as
 * the first one lost, which the aggregator never saw, since only synced
 * frames are read. A process's first batch is synced at once (its
 * readings are the first its spool has seen), the next ones wait.
 */
START_TEST(sync_every_crash_and_power_loss)
{
	char dir[256], sd[300], seg[400];
	struct spool *sp;
	struct spool_stats st;
	struct spool_open_report rep;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	snprintf(seg, sizeof(seg), "%s/00000000000000000001.seg", sd);
	struct spool_opts o = { .sync_every_ns = 3600 * S_NS };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	append_ok(sp, "h", 1, 2);   /* first readings: synced */
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.unsynced, 0);
	struct stat sb;
	ck_assert_int_eq(stat(seg, &sb), 0);
	off_t synced_len = sb.st_size;
	spool_close(sp);

	/* a child appends 2 (synced), 3 and 4 (not synced) and dies */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct spool *c;
		struct tally_err ce = { 0 };
		struct spool_stats cs;
		if (spool_open(&c, sd, "h", &o, NULL, &ce))
			_exit(2);
		for (uint64_t q = 2; q <= 4; q++) {
			struct batch b;
			mkbatch(&b, "h", q, 2);
			if (spool_append(c, &b, &ce))
				_exit(3);
		}
		spool_get_stats(c, &cs);
		_exit(cs.unsynced == 2 && cs.fsyncs == 2 ? 0 : 4);   /* the open's, 2's */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* reopened: nothing lost, the segment synced, all readable */
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, &rep, &e), 0);
	ck_assert_uint_eq(rep.torn_bytes, 0);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.fsyncs, 1);
	ck_assert_uint_eq(st.unsynced, 0);
	ck_assert_uint_eq(st.next_seq, 5);
	ck_assert_uint_eq(read_all_check(sp, 1, "h", 2), 4);
	/* 5 is synced (this process's first), 6 waits; a power loss now
	 * leaves the file as the last sync did */
	append_ok(sp, "h", 5, 2);
	ck_assert_int_eq(stat(seg, &sb), 0);
	off_t before6 = sb.st_size;
	append_ok(sp, "h", 6, 2);
	spool_get_stats(sp, &st);
	ck_assert_uint_eq(st.unsynced, 1);
	ck_assert_uint_eq(readable(sp, 6), 0);
	spool_close(sp);            /* a clean stop syncs 6 */
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	ck_assert_uint_eq(readable(sp, 6), 1);
	spool_close(sp);
	ck_assert_int_eq(truncate(seg, before6), 0);   /* the power loss */
	ck_assert_int_gt(before6, synced_len);
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, &rep, &e), 0);
	ck_assert_uint_eq(spool_next_seq(sp), 6);
	append_ok(sp, "h", 6, 2);   /* numbered again: the lost 6 was never read */
	ck_assert_uint_eq(read_all_check(sp, 1, "h", 2), 6);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/*
 * A segment is synced whole before the next is made: with 64 KiB segments
 * and routine batches that never reach sync_every_ns, the append that
 * makes the second segment syncs the first (1), makes the new one (file
 * and directory, 2) and leaves its own frame waiting; every frame of the
 * first segment is then readable.
 */
START_TEST(sync_every_seals_segments)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st;
	struct tally_err e = { 0 };
	spool_dirs(dir, sd);
	struct spool_opts o = { .sync_every_ns = 3600 * S_NS, .segment_bytes = 64 << 10 };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	uint64_t q = 1, syncs = 0;
	for (;; q++) {
		spool_get_stats(sp, &st);
		syncs = st.fsyncs;
		append_ok(sp, "h", q, 50);
		spool_get_stats(sp, &st);
		if (st.segments == 2)
			break;
		ck_assert_uint_lt(q, 1000);
	}
	ck_assert_uint_gt(q, 2);
	ck_assert_uint_eq(st.fsyncs, syncs + 3);
	ck_assert_uint_eq(st.unsynced, 1);
	ck_assert_uint_eq(read_all_check(sp, 1, "h", 50), q - 1);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/*
 * Level "full" from the second batch on (max_bytes 1), thin_every 60 s,
 * full_every 600 s, cycles k = 0..65 every 10 s:
 *   cpu counter 100k: written k0 and k60 (600 s); 64 left out (k1-59, k61-65).
 *   instance gauge 1: written k0 and every 60 s (k6, k12, ... k60: 10),
 *     so the SLA sees no silence; 55 left out.
 *   vcpus gauge 2: written k0 only (unchanged); 65 left out.
 *   memory.usage 1000 + k: written k0 only; 65 dropped.
 *   thinned = 64 + 55 + 65 = 184, dropped = 65.
 * Then cpu with SAMPLE_F_LAST at k66: written (the held k65 is covered).
 */
START_TEST(policy_full_by_hand)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st;
	struct tally_err e = { 0 };
	struct seen sn;
	spool_dirs(dir, sd);
	struct spool_opts o = { .max_bytes = 1, .thin_at_bytes = 1, .reserve_bytes = 1 << 20,
				.thin_every_ns = 60 * S_NS, .full_every_ns = 600 * S_NS };
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	for (int k = 0; k <= 66; k++) {
		struct batch b;
		int64_t t = T0 + k * 10 * S_NS;
		batch_init(&b, "h");
		b.seq = (uint64_t)k + 1;
		b.time_ns = t;
		add(&b, t, M_CPU, SAMPLE_CUMULATIVE, 100u * (unsigned)k, 0);
		if (k == 66) {
			b.samples[0].flags = SAMPLE_F_LAST;
		} else {
			add(&b, t, M_INSTANCE, SAMPLE_GAUGE, 0, 1);
			add(&b, t, M_VCPUS, SAMPLE_GAUGE, 0, 2);
			add(&b, t, M_MEMORY_USAGE, SAMPLE_GAUGE, 0, 1000 + k);
		}
		ck_assert_msg(spool_append(sp, &b, &e) == 0, "%s", e.msg);
		batch_release(&b);
	}
	spool_get_stats(sp, &st);
	ck_assert_int_eq(st.level, SPOOL_FULL);
	ck_assert_uint_eq(st.thinned, 184);
	ck_assert_uint_eq(st.dropped, 65);
	ck_assert_uint_eq(st.held_written, 0);
	read_samples(sp, 1, &sn);
	ck_assert_int_eq(sn.n[M_CPU], 3);
	ck_assert_int_eq(sample_time(&sn, M_CPU, 1), T0 + 600 * S_NS);
	ck_assert_int_eq(sample_time(&sn, M_CPU, 2), T0 + 660 * S_NS);
	ck_assert_int_eq(sn.n[M_INSTANCE], 11);
	for (int j = 0; j <= 10; j++)
		ck_assert_int_eq(sample_time(&sn, M_INSTANCE, j), T0 + j * 60 * S_NS);
	ck_assert_int_eq(sn.n[M_VCPUS], 1);
	ck_assert_int_eq(sn.n[M_MEMORY_USAGE], 1);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

/* Over the ceiling a batch is refused, and what filtering it changed is
 * undone: retried later, it is judged as if never seen. */
START_TEST(ceiling_refuses_and_undoes)
{
	char dir[256], sd[300];
	struct spool *sp;
	struct spool_stats st, st2;
	struct tally_err e = { 0 };
	struct seen sn;
	spool_dirs(dir, sd);
	/* first learn the size of frame 1 */
	struct spool_opts o = { .thin_at_bytes = 1, .thin_every_ns = 60 * S_NS };
	struct batch b1, b2;
	batch_init(&b1, "h");
	b1.seq = 1;
	b1.time_ns = T0;
	add(&b1, T0, M_CPU, SAMPLE_CUMULATIVE, 100, 0);
	batch_init(&b2, "h");
	b2.seq = 2;
	b2.time_ns = T0 + 10 * S_NS;
	add(&b2, T0 + 10 * S_NS, M_CPU, SAMPLE_CUMULATIVE, 200, 0);
	add(&b2, T0 + 10 * S_NS, M_VCPUS, SAMPLE_GAUGE, 0, 2);
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	ck_assert_int_eq(spool_append(sp, &b1, &e), 0);
	spool_get_stats(sp, &st);
	spool_close(sp);
	tu_rmrf(dir);
	/* the ceiling (max 1 + reserve) lets frame 1 in, not frame 2 */
	spool_dirs(dir, sd);
	o.max_bytes = 1;
	o.reserve_bytes = st.bytes + 40;      /* frame 2 (about 20 bytes more than frame 1) fits alone */
	ck_assert_int_eq(spool_open(&sp, sd, "h", &o, NULL, &e), 0);
	ck_assert_int_eq(spool_append(sp, &b1, &e), 0);
	spool_get_stats(sp, &st);
	ck_assert_int_eq(spool_append(sp, &b2, &e), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(e.msg, "spool full"));
	spool_get_stats(sp, &st2);
	ck_assert_uint_eq(st2.refused, 1);
	ck_assert_uint_eq(st2.thinned, st.thinned);
	ck_assert_uint_eq(st2.bytes, st.bytes);
	ck_assert_uint_eq(st2.next_seq, 2);
	/* acknowledged, the spool is empty (level "keep"), and b2 in full */
	ck_assert_int_eq(spool_ack(sp, 1, &e), 0);
	ck_assert_int_eq(spool_append(sp, &b2, &e), 0);
	read_samples(sp, 2, &sn);
	ck_assert_uint_eq(sn.ns, 2);
	spool_get_stats(sp, &st2);
	ck_assert_uint_eq(st2.thinned, 0);
	batch_release(&b1);
	batch_release(&b2);
	spool_close(sp);
	tu_rmrf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("spool");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, basic_life);
	tcase_add_test(tc, identity_and_lock);
	tcase_add_test(tc, data_time_survives);
	tcase_add_test(tc, segments_freed_by_ack);
	tcase_add_test(tc, ack_lost_with_the_process);
	tcase_add_test(tc, torn_tail_every_offset);
	tcase_add_test(tc, kill_9_while_appending);
	tcase_add_test(tc, disk_full);
	tcase_add_test(tc, policy_thin_by_hand);
	tcase_add_test(tc, policy_full_by_hand);
	tcase_add_test(tc, ceiling_refuses_and_undoes);
	tcase_add_test(tc, sync_every_by_hand);
	tcase_add_test(tc, sync_every_crash_and_power_loss);
	tcase_add_test(tc, sync_every_seals_segments);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
