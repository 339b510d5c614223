/*
 * spool.h: the agent's durable spool: batches wait here, on disk, until the
 * aggregator has committed them (docs/transport.md, rule 7 across the
 * network).
 *
 * A spool is a directory of one agent:
 *   identity        the agent id, the spool's random 128-bit id and the first
 *                   seq it ever wrote (text, written once)
 *   ack             the highest seq the aggregator acknowledged as committed
 *                   and that batch's time (text; replaced by write-temp,
 *                   fsync, rename, fsync dir)
 *   lock            flock()ed while a process has the spool open
 *   NNNNNNNNNNNNNNNNNNNN.seg
 *                   append-only segments, named by the seq of their first
 *                   frame: a 48-byte header (magic, spool id, first seq,
 *                   CRC-32C) then wire frames (common/wire.h) with
 *                   consecutive seqs, exactly the bytes the sender POSTs.
 *
 * Invariants and promises:
 * - A batch is spooled when spool_append() returns 0: its frame was written
 *   and, by default, fdatasync()ed (a new segment's file and the directory
 *   too): one fdatasync per batch; `make bench` measures what that costs.
 *   With sync_every_ns, a batch whose every reading is one a later batch
 *   covers (the routine readings thinning may leave out, below: no event,
 *   no metadata, no first or final reading, no reset, no delta, no change
 *   of an allocation gauge) is synced with a later one, at most
 *   sync_every_ns of data time after the last sync; any other batch is
 *   synced at once, with those before it. A process that dies loses none
 *   of them (the page cache has them; spool_open() syncs them); a power
 *   loss can lose those not synced, as a torn tail (below).
 * - Only synced frames are read (sent), and acknowledged: a frame the
 *   aggregator took is never one a power loss could take back, so a seq is
 *   never numbered twice.
 * - Seqs are consecutive and continue across restarts: spool_next_seq() is
 *   the seq the next batch must carry (the batcher's next_seq).
 * - Data time continues too: spool_stats.last_time_ns says up to which
 *   batch time the spool has everything of its agent, from its last frame,
 *   or the ack file when every frame was acknowledged and deleted, or the
 *   identity of a spool that never held one; a daemon that restarts
 *   resumes after it (docs/transport.md).
 * - spool_open() scans the last segment and cuts a torn tail (a partial
 *   frame, a bad checksum, a seq out of place: what a crash or power loss
 *   in the middle of an append leaves) and reports what it cut; a cut frame
 *   was never acknowledged to the caller, or was a routine one not synced
 *   (above): no usage is lost. Then the segment is synced.
 *   Sealed segments were synced before the next one was made; their frames
 *   are checked (CRC) when read.
 * - spool_ack(seq) takes the acknowledgement at once (stats, what is
 *   pending) and makes it durable (the ack file) at most every
 *   ack_every_ns, and always before a segment it completes is deleted:
 *   segments whose frames are all acknowledged are deleted only once the
 *   ack on disk covers them. So a crash can lose at most ack_every_ns of
 *   acknowledgements, never a frame whose ack was lost: a restarted agent
 *   sends those frames again and the aggregator acknowledges them as
 *   already committed (counted once, rule 7). When the spool is over its
 *   thin level or a batch would not fit, a pending ack is made durable
 *   first, so what the aggregator committed never holds room. Frames
 *   acknowledged but still in a live segment can be read again (an
 *   aggregator restored from a backup asks for them: spool_read() from an
 *   older seq). spool_close() syncs every frame and makes a pending ack
 *   durable.
 * - Identity: opening a spool with another agent id is an error; the spool
 *   id and first seq travel in every frame (struct wire_origin) so the
 *   aggregator can tell a new spool that restarted at seq 1 from the one it
 *   knew (schemas/batch-wire.md, 409 "spool").
 * - Size: past thin_at_bytes the spool thins routine readings, past
 *   max_bytes it keeps only what cannot be recomputed, past max_bytes +
 *   reserve_bytes it refuses batches (docs/transport.md, "When the spool
 *   fills", has the policy and its reasons). The spool's memory is one
 *   batch and one entry per live series, whatever the outage's length.
 * - Thread safety: one mutex; the collector thread appends while the
 *   sender thread reads and acknowledges.
 */
#ifndef TALLY_SPOOL_H
#define TALLY_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "err.h"
#include "wire.h"

struct spool;

/* Zero fields take the defaults in brackets. */
struct spool_opts {
	uint64_t max_bytes;             /* [1 GiB] segment bytes on disk before the "full" level */
	uint64_t thin_at_bytes;         /* [max_bytes / 2] the "thin" level starts here */
	uint64_t reserve_bytes;         /* [max_bytes / 8] beyond max_bytes, for what cannot be recomputed */
	uint64_t segment_bytes;         /* [8 MiB] a segment is sealed past this size */
	int64_t thin_every_ns;          /* [4 min] "thin": one routine reading per series per this */
	int64_t full_every_ns;          /* [1 h] "full": one routine counter reading per series per this */
	uint64_t first_seq;             /* [1] the first seq of a spool created now (ignored otherwise) */
	int64_t covered_ns;             /* a spool created now: its agent has no batch up to this data
					 * time that the spool lacks (the agent's last delivered cycle;
					 * 0 = unknown); kept in its identity (ignored otherwise) */
	int64_t ack_every_ns;           /* [60 s] an acknowledgement is made durable at most this often
					 * (and whenever a segment is to be deleted, or room is needed);
					 * < 0: every acknowledgement at once */
	int64_t sync_every_ns;          /* [0] a batch of routine readings only is synced with a later
					 * one, up to this much data time after the last sync (above);
					 * 0: every batch at once */
	int no_fsync;                   /* benchmarks of the CPU cost only: never in the daemon */
};

enum spool_level {
	SPOOL_KEEP = 0,                 /* below thin_at_bytes: every reading */
	SPOOL_THIN = 1,                 /* thin_at_bytes to max_bytes */
	SPOOL_FULL = 2,                 /* max_bytes and over */
};

/* What spool_open() found. */
struct spool_open_report {
	int created;                    /* the directory held no spool: a new one was made */
	uint64_t torn_bytes;            /* cut from the end of the last segment */
	char torn_reason[200];          /* why the first cut byte was not a frame */
	uint64_t removed_segments;      /* fully acknowledged segments left by a crash, deleted */
};

struct spool_stats {
	uint64_t bytes;                 /* segment files on disk */
	uint64_t batches;               /* spooled, not yet acknowledged */
	uint64_t unsynced;              /* of those, the last ones written but not synced yet: not
					 * sent before they are */
	uint64_t segments;
	uint64_t first_seq;             /* of this spool (identity) */
	uint64_t next_seq;              /* the seq the next batch gets */
	uint64_t acked_seq;             /* the aggregator has committed up to here */
	int64_t oldest_time_ns;         /* batch time of the oldest unacknowledged batch, 0 = none */
	int64_t last_time_ns;           /* the spool holds (or held, and the aggregator committed)
					 * every batch of its agent up to this data time: its last
					 * batch's, or covered_ns of a spool with none; 0 = unknown */
	int level;                      /* enum spool_level now */
	uint64_t appended;              /* batches spooled since open */
	uint64_t refused;               /* batches refused: over the ceiling or the disk full */
	uint64_t thinned;               /* readings left out that a later reading covers (usage kept) */
	uint64_t dropped;               /* measured gauge values left out for good */
	uint64_t invalid;               /* samples the wire format cannot carry, left out */
	uint64_t held_written;          /* held-back readings written before a reset or a gap */
	uint64_t fsyncs;
	uint64_t torn_bytes;            /* cut at open */
};

/* Open (or create) the spool in dir for agent. dir is made if missing (its
 * parent must exist). Errors: -EBUSY (another process has it open),
 * -EINVAL (the spool belongs to another agent, or the directory holds
 * segments but no identity, or a foreign segment), -errno of the file
 * system; e says which file and what to do. rep may be NULL. */
int spool_open(struct spool **out, const char *dir, const char *agent, const struct spool_opts *o,
	       struct spool_open_report *rep, struct tally_err *e);
/* Close files and free memory; NULL is fine. Nothing is lost: every
 * spooled batch is on disk already. */
void spool_close(struct spool *s);

uint64_t spool_next_seq(struct spool *s);
/* The spool id and first seq every frame of this spool carries. */
void spool_origin(struct spool *s, struct wire_origin *o);

/* Spool b (b->seq must be spool_next_seq(): -EINVAL otherwise). After the
 * thinning policy of the current level, b's readings are encoded into one
 * frame, written and synced (or left to a later sync: sync_every_ns).
 * 0; -ENOSPC (over the ceiling, or the file
 * system is full: nothing of the frame stays on disk), -EIO (a write or
 * sync failed: the spool refuses appends until reopened, since what the
 * disk holds is then unknown), -ENOMEM. b is not changed. */
int spool_append(struct spool *s, const struct batch *b, struct tally_err *e);

/* Sync what was written and not synced yet (a fast-forward period's end,
 * before waiting for its acknowledgements). 0, or -EIO: the spool is
 * broken (reopen it). */
int spool_sync(struct spool *s, struct tally_err *e);

/* Append to out up to max_frames whole frames (at least one, even over
 * max_bytes) starting at seq from, consecutive, synced, each checked
 * (CRC, seq); *n = how many (0 when none from there is synced yet). -ENOENT
 * when from is older than the oldest frame on disk (deleted after its
 * acknowledgement); -ERANGE when from is after spool_next_seq();
 * -EBADMSG when a frame on disk is damaged (e names the file and offset). */
int spool_read(struct spool *s, uint64_t from, size_t max_frames, size_t max_bytes, struct wire_buf *out,
	       size_t *n, struct tally_err *e);

/* The aggregator committed every seq <= seq: taken at once, made durable
 * when due (above; then the segments it completes are deleted). An ack at
 * or below the current one is a no-op; -ERANGE for one past the last
 * synced seq (none was sent); -errno when the ack was due and could not be written (the
 * ack is then not taken). */
int spool_ack(struct spool *s, uint64_t seq, struct tally_err *e);

/* The oldest seq still readable (acknowledged or not). */
uint64_t spool_oldest_seq(struct spool *s);

void spool_get_stats(struct spool *s, struct spool_stats *st);

#endif
