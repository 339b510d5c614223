/*
 * agent.h: tallyd's agent role (docs/transport.md): the pipeline's batches
 * go into a durable spool per agent id, and a sender per spool ships them
 * to the aggregator; this process opens no ledger and computes nothing
 * that needs one.
 *
 *   collectors -> scheduler -> batcher --agent_deliver--> spool <agent id>
 *                                                          -> sender -> POST /api/v1/ingest
 *
 * Two halves:
 * - The `agent:` section of the config (agent_settings_parse), every key
 *   in docs/config.md. A token given in a file is read when the config
 *   is: `tallyd -n` finds a missing or malformed one. Tokens are never
 *   written into a message.
 * - The running agent (agent_open ... agent_close): one link (spool +
 *   sender thread) per agent id. At open every spool found under the
 *   spool directory is opened and its sender started, so what an earlier
 *   run left behind (an agent id the collectors no longer report, say) is
 *   still delivered; a spool for a new agent id is made when its first
 *   batch comes.
 *
 * Promises:
 * - A batch is in the spool when agent_deliver returns 0 (fdatasync'd, or
 *   with agent.send_every a batch of routine readings may wait for the
 *   sync of a later one: spool.h), or
 *   it was collected again after a restart and its spool had it already
 *   (skipped: see agent_resume_ns), or it is held in memory because the
 *   spool is at its ceiling or its disk is full, and tried again with the
 *   next one (bounded: AGENT_HOLD_MAX_SAMPLES; past it the held readings
 *   are dropped and counted). Any other failure (a spool that cannot be
 *   made or written) is returned, and stops the daemon.
 * - Restart: agent_resume_ns is the data time up to which every spool has
 *   its agent's batches (the least of them), so a fast-forward run resumes
 *   after it; a batch of a cycle its spool has already is skipped, so a
 *   kill between two agent ids' batches of one cycle neither loses nor
 *   doubles one.
 * - Threads: agent_deliver, agent_metrics, agent_eval_alerts and
 *   agent_drained run on the collection thread; each sender has its own.
 */
#ifndef TALLY_DAEMON_AGENT_H
#define TALLY_DAEMON_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "selfmetric.h"
#include "sender.h"
#include "spool.h"

struct cfg_node;
struct tally_err;
struct alert_store;

#define AGENT_TOKEN_MAX 512
#define AGENT_URL_MAX 1000
#define AGENT_HOLD_MAX_SAMPLES 65536u   /* readings held in memory while the spool refuses */
#define AGENT_MAX_TOKENS 64

/* The `agent:` section (docs/config.md). */
struct agent_settings {
	bool given;                                  /* the section is in the file */
	char urls[SENDER_MAX_URLS][AGENT_URL_MAX];   /* `aggregator`: one URL or a list */
	size_t n_urls;
	char token[AGENT_TOKEN_MAX + 1];             /* from `token` or `token_file`; "" = none */
	char token_file[PATH_MAX];
	struct agent_token {                         /* `tokens`: an agent id's own token */
		char agent[TALLY_ID_MAX];
		char token[AGENT_TOKEN_MAX + 1];
	} tokens[AGENT_MAX_TOKENS];
	size_t n_tokens;
	char ca_file[PATH_MAX], cert_file[PATH_MAX], key_file[PATH_MAX];
	int64_t timeout_ns, connect_timeout_ns;      /* 30 s, 10 s */
	int64_t backoff_min_ns, backoff_max_ns;      /* 1 s, 60 s */
	uint64_t max_frames;                         /* 1024 */
	uint64_t max_request_bytes;                  /* 4 MiB */
	char spool_dir[PATH_MAX];                    /* <data_dir>/spool */
	struct spool_opts spool;                     /* max_bytes ... first_seq, defaults filled in */
};

/* Parse `agent:` (sec may be NULL: not given). data_dir is tallyd's (the
 * spool directory's default). Returns 0 or -EINVAL/-ERANGE/-ENOENT with
 * "file:line:col: key '...': ..." in e. The caller checks that the
 * section goes with the role. */
int agent_settings_parse(struct agent_settings *s, const struct cfg_node *sec, const char *data_dir,
			 struct tally_err *e);

/* The spool directory of one agent id under dir: the id with every byte
 * other than [A-Za-z0-9_-] and a '.' not in front written %XX, so any id
 * is one file name. 0 or -ENAMETOOLONG. */
int agent_spool_path(const char *dir, const char *agent, char *out, size_t len);

struct agent;

/* Open every spool under s->spool_dir (made if missing) and start their
 * senders. interval_ns is tallyd's (a new spool's covered_ns is one
 * interval before its first batch). Returns 0 or -errno with e set: a
 * spool another process holds (-EBUSY), a directory that is not a spool of
 * the agent its name says (-EINVAL), the file system's errors. */
int agent_open(struct agent **out, const struct agent_settings *s, int64_t interval_ns, struct tally_err *e);
/* Stop the senders (a request in flight is abandoned: its batches stay
 * spooled) and close the spools. NULL is fine. */
void agent_close(struct agent *a);

/* The batcher's delivery (common/batch.h): spool b under its agent id.
 * b->seq is set to the spool's next seq. See the promises above. */
int agent_deliver(void *ctx, struct batch *b);
/* The batcher's next_seq: the spool numbers a batch when it takes it. */
uint64_t agent_next_seq(void *ctx, const char *agent);

/* The data time up to which every open spool has its agent's batches,
 * the least of them (the greatest with latest, of the spools that know);
 * 0 when no spool knows, or (the least) when one does not. */
int64_t agent_resume_ns(struct agent *a, bool latest);

/* The end of a fast-forward period, which has no next cycle to carry
 * anything: try again to spool what a full spool refused, and sync what
 * waits for agent.send_every, so it is sent. 0, or a spool's error other
 * than a lack of room (logged). */
int agent_flush(struct agent *a);

/* Every batch delivered and acknowledged by the aggregator, none held. */
bool agent_drained(struct agent *a);

/* The agent's figures for /metrics (docs/transport.md, "What the agent
 * shows"), each family's series together; put copies each. */
void agent_metrics(struct agent *a, void (*put)(void *ctx, const struct collector_metric *m), void *ctx);

/* Totals for tallyd's run summary. */
struct agent_summary {
	uint64_t spools, batches_spooled, batches_skipped, batches_acked, batches_waiting;
	uint64_t samples_spooled, readings_thinned, readings_dropped, fsyncs;
};
void agent_get_summary(struct agent *a, struct agent_summary *out);

/* The built-in SpoolFilling at data time t_ns: an alert per spool while it
 * is at the thin level or above, or refuses batches (docs/config.md,
 * alerts.spool_filling; ac NULL or not enabled: none), published into
 * store with a new version when one changes; a resolved one is kept for
 * ac->resolved_keep of wall time. Returns 0 or -ENOMEM (the previous
 * snapshot stays). */
struct alerting_config;
int agent_eval_alerts(struct agent *a, int64_t t_ns, const struct alerting_config *ac,
		      struct alert_store *store);

#endif
