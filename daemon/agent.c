/*
 * agent.c: tallyd's agent role (agent.h): the `agent:` section, and the
 * links (a spool and its sender per agent id) the pipeline delivers into.
 */
#include "agent.h"
#include "alerting.h"
#include "cfg.h"
#include "err.h"
#include "log.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the `agent:` section ------------------------------------------------ */

static const char *const agent_keys[] = { "aggregator", "token", "token_file", "tokens", "ca_file", "cert_file",
					  "key_file", "timeout", "connect_timeout", "backoff_min",
					  "backoff_max", "max_frames", "max_request", "send_every", "spool", NULL };
static const char *const spool_keys[] = { "dir", "max_bytes", "thin_at_bytes", "reserve_bytes",
					  "segment_bytes", "thin_every", "full_every", "first_seq", NULL };

#define TOKEN_MIN 16

/* An aggregator URL: http:// or https://, one line, no space. */
static int url_check(const struct cfg_node *n, char *out, size_t len, struct tally_err *e)
{
	if (n->type != CFG_SCALAR)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'aggregator': expected a URL or a list of URLs", n->file,
			       n->line, n->col);
	const char *v = n->value;
	if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
		return err_set(e, -EINVAL, "%s:%d:%d: key 'aggregator': expected an http:// or https:// URL"
			       " (got '%.200s')", n->file, n->line, n->col, v);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'aggregator': a URL is printable ASCII without"
				       " spaces (character %zu is not)", n->file, n->line, n->col,
				       (size_t)(p - (const unsigned char *)v) + 1);
	if (strlen(v) >= len)
		return err_set(e, -ERANGE, "%s:%d:%d: key 'aggregator': longer than %zu characters", n->file,
			       n->line, n->col, len - 1);
	str_copy(out, v, len);
	return 0;
}

/* A token's form: TOKEN_MIN to AGENT_TOKEN_MAX printable ASCII characters
 * without spaces. Messages never show the token. */
static int token_check(const char *t, size_t len, const char *file, int line, int col, const char *what,
		       struct tally_err *e)
{
	if (len < TOKEN_MIN || len > AGENT_TOKEN_MAX)
		return err_set(e, -EINVAL, "%s:%d:%d: %s: a token is %d to %d characters (this one has %zu)", file,
			       line, col, what, TOKEN_MIN, AGENT_TOKEN_MAX, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return err_set(e, -EINVAL, "%s:%d:%d: %s: character %zu of the token is not printable"
				       " ASCII (or is a space)", file, line, col, what, i + 1);
	return 0;
}

/* The token in file path (one line) into out. */
static int read_token_file(const char *path, char *out, const struct cfg_node *n, struct tally_err *e)
{
	char buf[AGENT_TOKEN_MAX + 3];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "%s:%d:%d: key 'token_file': %s: %s", n->file, n->line, n->col, path,
			       strerror(errno));
	ssize_t got = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (got < 0)
		return err_set(e, -err, "%s:%d:%d: key 'token_file': %s: %s", n->file, n->line, n->col, path,
			       strerror(err));
	size_t len = (size_t)got;
	/* one line: a final newline (LF or CRLF) is not part of the token */
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "key 'token_file': %s", path);
	int rc = token_check(buf, len, n->file, n->line, n->col, what, e);
	if (!rc) {
		memcpy(out, buf, len);
		out[len] = '\0';
	}
	memset(buf, 0, sizeof(buf));
	return rc;
}

/* `token` or `token_file` of map m (neither: out stays ""). */
static int get_token(const struct cfg_node *m, char *out, struct tally_err *e)
{
	const struct cfg_node *tk = cfg_get(m, "token"), *tf = cfg_get(m, "token_file");
	char path[PATH_MAX];
	int rc;
	if (tk && tf)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'token_file': give 'token' or 'token_file', not both",
			       tf->file, tf->line, tf->col);
	if (tk) {
		if (tk->type != CFG_SCALAR)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'token': expected a string", tk->file, tk->line,
				       tk->col);
		if ((rc = token_check(tk->value, strlen(tk->value), tk->file, tk->line, tk->col, "key 'token'", e)))
			return rc;
		str_copy(out, tk->value, AGENT_TOKEN_MAX + 1);
	}
	if (tf && ((rc = cfg_get_string(m, "token_file", path, sizeof(path), e)) ||
		   (rc = read_token_file(path, out, tf, e))))
		return rc;
	return 0;
}

/* `tokens`: a list of {agent: ID, token: T} or {agent: ID, token_file: F},
 * each agent id once. */
static int parse_tokens(struct agent_settings *s, const struct cfg_node *sec, struct tally_err *e)
{
	static const char *const keys[] = { "agent", "token", "token_file", NULL };
	const struct cfg_node *list = NULL;
	int rc;
	if ((rc = cfg_get_seq(sec, "tokens", 0, AGENT_MAX_TOKENS, &list, e)) || !list)
		return rc;
	for (size_t i = 0; i < list->n_kids; i++) {
		const struct cfg_node *t = list->kids[i];
		struct agent_token *at = &s->tokens[s->n_tokens];
		if (t->type != CFG_MAP)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'tokens': expected a list of {agent, token} or"
				       " {agent, token_file}", t->file, t->line, t->col);
		if ((rc = cfg_check_keys(t, "agent.tokens", keys, e)) ||
		    (rc = cfg_get_string(t, "agent", at->agent, sizeof(at->agent), e)) ||
		    (rc = get_token(t, at->token, e)))
			return rc;
		if (!at->agent[0] || !at->token[0])
			return err_set(e, -EINVAL, "%s:%d:%d: key 'tokens': each item needs 'agent' and 'token' or"
				       " 'token_file'", t->file, t->line, t->col);
		for (size_t j = 0; j < s->n_tokens; j++)
			if (!strcmp(s->tokens[j].agent, at->agent)) {
				const struct cfg_node *n = cfg_get(t, "agent");
				return err_set(e, -EINVAL, "%s:%d:%d: key 'agent': '%s' has a token already", n->file,
					       n->line, n->col, at->agent);
			}
		s->n_tokens++;
	}
	return 0;
}

/* A file the agent reads at start (TLS): present and readable now. */
static int file_key(const struct cfg_node *sec, const char *key, char *out, size_t len, struct tally_err *e)
{
	int rc = cfg_get_string(sec, key, out, len, e);
	if (rc || !out[0])
		return rc;
	if (access(out, R_OK)) {
		const struct cfg_node *n = cfg_get(sec, key);
		return err_set(e, -errno, "%s:%d:%d: key '%s': %s: %s", n->file, n->line, n->col, key, out,
			       strerror(errno));
	}
	return 0;
}

static int parse_spool(struct agent_settings *s, const struct cfg_node *sp, struct tally_err *e)
{
	struct spool_opts *o = &s->spool;
	int rc;
	if ((rc = cfg_check_keys(sp, "agent.spool", spool_keys, e)) ||
	    (rc = cfg_get_string(sp, "dir", s->spool_dir, sizeof(s->spool_dir), e)) ||
	    (rc = cfg_get_uint(sp, "max_bytes", 1u << 20, 1ULL << 50, &o->max_bytes, e)))
		return rc;
	o->thin_at_bytes = o->max_bytes / 2;
	o->reserve_bytes = o->max_bytes / 8;
	if ((rc = cfg_get_uint(sp, "thin_at_bytes", 1, o->max_bytes, &o->thin_at_bytes, e)) ||
	    (rc = cfg_get_uint(sp, "reserve_bytes", 64u << 10, 1ULL << 50, &o->reserve_bytes, e)) ||
	    (rc = cfg_get_uint(sp, "segment_bytes", 64u << 10, 1u << 30, &o->segment_bytes, e)) ||
	    (rc = cfg_get_duration(sp, "thin_every", NS_PER_SEC, 86400 * NS_PER_SEC, &o->thin_every_ns, e)) ||
	    (rc = cfg_get_duration(sp, "full_every", NS_PER_SEC, 7 * 86400 * NS_PER_SEC, &o->full_every_ns, e)) ||
	    (rc = cfg_get_uint(sp, "first_seq", 1, INT64_MAX, &o->first_seq, e)))
		return rc;
	if (o->full_every_ns < o->thin_every_ns) {
		const struct cfg_node *n = cfg_get(sp, "full_every");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'full_every': shorter than 'thin_every' (the full"
			       " level keeps fewer readings than the thin one)", n->file, n->line, n->col);
	}
	return 0;
}

int agent_settings_parse(struct agent_settings *s, const struct cfg_node *sec, const char *data_dir,
			 struct tally_err *e)
{
	const struct cfg_node *sp = NULL, *n;
	int rc;

	memset(s, 0, sizeof(*s));
	s->timeout_ns = 30 * NS_PER_SEC;
	s->connect_timeout_ns = 10 * NS_PER_SEC;
	s->backoff_min_ns = NS_PER_SEC;
	s->backoff_max_ns = 60 * NS_PER_SEC;
	s->max_frames = 1024;
	s->max_request_bytes = 4u << 20;
	/* a batch of routine readings waits at most 10 s of data time: at the
	 * default interval every cycle is sent, at shorter ones the sync and
	 * the request are made every 10 s (docs/config.md, send_every) */
	s->spool.sync_every_ns = 10 * NS_PER_SEC;
	snprintf(s->spool_dir, sizeof(s->spool_dir), "%s/spool", data_dir);
	s->spool.max_bytes = 1ULL << 30;
	s->spool.thin_at_bytes = s->spool.max_bytes / 2;
	s->spool.reserve_bytes = s->spool.max_bytes / 8;
	s->spool.segment_bytes = 8u << 20;
	s->spool.thin_every_ns = 240 * NS_PER_SEC;
	s->spool.full_every_ns = 3600 * NS_PER_SEC;
	s->spool.first_seq = 1;
	if (!sec)
		return 0;
	s->given = true;
	if ((rc = cfg_check_keys(sec, "agent", agent_keys, e)))
		return rc;

	/* aggregator: a URL, or a list of them */
	if (!(n = cfg_get(sec, "aggregator")))
		return err_set(e, -EINVAL, "%s:%d:%d: 'agent' needs 'aggregator': the URL of the aggregator"
			       " (e.g. https://aggregator.example:9464)", sec->file, sec->line, sec->col);
	if (n->type == CFG_SEQ) {
		const struct cfg_node *list = NULL;
		if ((rc = cfg_get_seq(sec, "aggregator", 1, SENDER_MAX_URLS, &list, e)))
			return rc;
		for (size_t i = 0; i < list->n_kids; i++)
			if ((rc = url_check(list->kids[i], s->urls[i], sizeof(s->urls[i]), e)))
				return rc;
		s->n_urls = list->n_kids;
	} else {
		if ((rc = url_check(n, s->urls[0], sizeof(s->urls[0]), e)))
			return rc;
		s->n_urls = 1;
	}

	/* the tokens: inline or from a file, never both, never echoed */
	if ((rc = get_token(sec, s->token, e)) ||
	    (rc = cfg_get_string(sec, "token_file", s->token_file, sizeof(s->token_file), e)) ||
	    (rc = parse_tokens(s, sec, e)))
		return rc;

	if ((rc = file_key(sec, "ca_file", s->ca_file, sizeof(s->ca_file), e)) ||
	    (rc = file_key(sec, "cert_file", s->cert_file, sizeof(s->cert_file), e)) ||
	    (rc = file_key(sec, "key_file", s->key_file, sizeof(s->key_file), e)) ||
	    (rc = cfg_get_duration(sec, "timeout", NS_PER_SEC, 3600 * NS_PER_SEC, &s->timeout_ns, e)) ||
	    (rc = cfg_get_duration(sec, "connect_timeout", NS_PER_SEC, 3600 * NS_PER_SEC,
				   &s->connect_timeout_ns, e)) ||
	    (rc = cfg_get_duration(sec, "backoff_min", NS_PER_SEC / 100, 3600 * NS_PER_SEC, &s->backoff_min_ns,
				   e)) ||
	    (rc = cfg_get_duration(sec, "backoff_max", NS_PER_SEC / 100, 3600 * NS_PER_SEC, &s->backoff_max_ns,
				   e)) ||
	    (rc = cfg_get_uint(sec, "max_frames", 1, 1024, &s->max_frames, e)) ||
	    (rc = cfg_get_uint(sec, "max_request", 64u << 10, 256u << 20, &s->max_request_bytes, e)) ||
	    (rc = cfg_get_duration(sec, "send_every", 0, 3600 * NS_PER_SEC, &s->spool.sync_every_ns, e)) ||
	    (rc = cfg_get_map(sec, "spool", &sp, e)) ||
	    (sp && (rc = parse_spool(s, sp, e))))
		return rc;
	if (s->backoff_max_ns < s->backoff_min_ns) {
		n = cfg_get(sec, "backoff_max");
		n = n ? n : cfg_get(sec, "backoff_min");
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': backoff_max is shorter than backoff_min", n->file,
			       n->line, n->col, n->key);
	}
	if (s->key_file[0] && !s->cert_file[0]) {
		n = cfg_get(sec, "key_file");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'key_file': a client key needs its 'cert_file'", n->file,
			       n->line, n->col);
	}
	bool https = false;
	for (size_t i = 0; i < s->n_urls; i++)
		https |= !strncmp(s->urls[i], "https://", 8);
	if (!https && (s->ca_file[0] || s->cert_file[0])) {
		n = cfg_get(sec, s->ca_file[0] ? "ca_file" : "cert_file");
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': TLS files, but no https:// aggregator URL", n->file,
			       n->line, n->col, n->key);
	}
	return 0;
}

int agent_spool_path(const char *dir, const char *agent, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/", dir);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	size_t k = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)agent; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			     *p == '_' || *p == '-' || (*p == '.' && p != (const unsigned char *)agent);
		if (k + 4 > len)
			return -ENAMETOOLONG;
		if (plain)
			out[k++] = (char)*p;
		else
			k += (size_t)snprintf(out + k, len - k, "%%%02X", *p);
	}
	out[k] = '\0';
	return 0;
}

/* The agent id a spool directory's name stands for, when the name is one
 * agent_spool_path writes; -EINVAL otherwise. */
static int agent_of_name(const char *name, char *agent, size_t len)
{
	size_t k = 0;
	for (const char *p = name; *p; p++) {
		unsigned v;
		if (k + 1 >= len)
			return -EINVAL;
		if (*p == '%') {
			if (sscanf(p + 1, "%2X", &v) != 1 || !p[1] || !p[2] || v == 0)
				return -EINVAL;
			agent[k++] = (char)v;
			p += 2;
		} else {
			agent[k++] = *p;
		}
	}
	agent[k] = '\0';
	char again[PATH_MAX];
	if (!k || agent_spool_path(".", agent, again, sizeof(again)) || strcmp(again + 2, name))
		return -EINVAL;
	return 0;
}

/* ---- the running agent --------------------------------------------------- */

struct link {
	char agent[TALLY_ID_MAX];
	char label[TALLY_ID_MAX + 8];   /* "agent=<id>" with ',', '=', '"' made '_' */
	struct spool *sp;
	struct sender *snd;
	struct batch held;              /* refused by a full spool, tried again with the next batch */
	bool holding;
	uint64_t spooled, skipped;      /* batches this run */
	uint64_t samples;               /* readings in the batches spooled this run */
	uint64_t held_dropped;          /* readings dropped from memory: the spool refused too long */
	struct complaint full;
	/* SpoolFilling */
	struct alert_times alert;
	int level;                      /* its level while firing: enum spool_level, 3 = refusing */
	int64_t resolved_mono_ns;       /* when it resolved (monotonic) */
};

struct agent {
	const struct agent_settings *s;
	int64_t interval_ns;
	struct link **l;
	size_t n, cap;
	/* SpoolFilling's snapshots */
	uint64_t alert_version;
};

static void link_log(void *ctx, int level, const char *msg)
{
	struct link *k = ctx;
	log_msg((enum log_level)level, "agent %s: %s", k->agent, msg);
}

static void link_free(struct link *k)
{
	if (!k)
		return;
	sender_free(k->snd);   /* stops its thread first */
	spool_close(k->sp);
	batch_release(&k->held);
	free(k);
}

/* Open the spool of agent (making it with covered_ns when new) and start
 * its sender. */
static int link_open(struct agent *a, const char *agent, int64_t covered_ns, struct link **out,
		     struct tally_err *e)
{
	const struct agent_settings *s = a->s;
	char dir[PATH_MAX];
	struct spool_open_report rep;
	struct link *k = calloc(1, sizeof(*k));
	int rc;

	*out = NULL;
	if (!k)
		return err_set(e, -ENOMEM, "out of memory");
	str_copy(k->agent, agent, sizeof(k->agent));
	batch_init(&k->held, agent);
	snprintf(k->label, sizeof(k->label), "agent=%s", agent);
	for (char *p = k->label + 6; *p; p++)
		if (*p == ',' || *p == '=' || *p == '"' || *p == '\\')
			*p = '_';
	if (agent_spool_path(s->spool_dir, agent, dir, sizeof(dir))) {
		rc = err_set(e, -ENAMETOOLONG, "%s: the spool directory of agent '%s' would be too long",
			     s->spool_dir, agent);
		goto fail;
	}
	struct spool_opts o = s->spool;
	o.covered_ns = covered_ns;
	if ((rc = spool_open(&k->sp, dir, agent, &o, &rep, e)))
		goto fail;
	if (rep.created)
		log_msg(LOG_INFO, "agent %s: new spool %s (first seq %" PRIu64 ")", agent, dir, o.first_seq);
	if (rep.torn_bytes)
		log_msg(LOG_WARN, "agent %s: cut %" PRIu64 " bytes from the end of the spool (%s): a batch being"
			" written when the process died, never acknowledged to anyone", agent, rep.torn_bytes,
			rep.torn_reason);
	struct sender_opts so = {
		.n_urls = s->n_urls,
		.token = s->token[0] ? s->token : NULL,   /* unless it has a token of its own: */
		.ca_file = s->ca_file[0] ? s->ca_file : NULL,
		.cert_file = s->cert_file[0] ? s->cert_file : NULL,
		.key_file = s->key_file[0] ? s->key_file : NULL,
		.timeout_ns = s->timeout_ns,
		.connect_timeout_ns = s->connect_timeout_ns,
		.backoff_min_ns = s->backoff_min_ns,
		.backoff_max_ns = s->backoff_max_ns,
		.max_frames = (size_t)s->max_frames,
		.max_request_bytes = (size_t)s->max_request_bytes,
		.log = link_log,
		.log_ctx = k,
	};
	for (size_t i = 0; i < s->n_tokens; i++)
		if (!strcmp(s->tokens[i].agent, agent))
			so.token = s->tokens[i].token;
	for (size_t i = 0; i < s->n_urls; i++)
		so.urls[i] = s->urls[i];
	if ((rc = sender_new(&k->snd, k->sp, &so, e)) || (rc = sender_start(k->snd, e)))
		goto fail;
	*out = k;
	return 0;
fail:
	err_prefix(e, "agent %s", agent);
	link_free(k);
	return rc;
}

static int link_add(struct agent *a, struct link *k)
{
	if (vec_reserve((void **)&a->l, &a->cap, a->n + 1, sizeof(*a->l), 8))
		return -ENOMEM;
	a->l[a->n++] = k;
	return 0;
}

int agent_open(struct agent **out, const struct agent_settings *s, int64_t interval_ns, struct tally_err *e)
{
	struct agent *a = calloc(1, sizeof(*a));
	DIR *d = NULL;
	int rc = 0;

	*out = NULL;
	if (!a)
		return err_set(e, -ENOMEM, "out of memory");
	a->s = s;
	a->interval_ns = interval_ns;
	if (mkdir(s->spool_dir, 0700) && errno != EEXIST) {
		rc = err_set(e, -errno, "%s: cannot make the spool directory: %s", s->spool_dir, strerror(errno));
		goto fail;
	}
	if (!(d = opendir(s->spool_dir))) {
		rc = err_set(e, -errno, "%s: %s", s->spool_dir, strerror(errno));
		goto fail;
	}
	/* every spool an earlier run left, delivered whether or not its agent
	 * id still reports; anything else there is left alone, and said */
	struct dirent *de;
	while ((de = readdir(d))) {
		char agent[TALLY_ID_MAX], path[PATH_MAX];
		struct stat sb;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s/identity", s->spool_dir, de->d_name);
		if (agent_of_name(de->d_name, agent, sizeof(agent))) {
			log_msg(LOG_WARN, "%s/%s: not a spool (a name no agent id has): left alone", s->spool_dir,
				de->d_name);
			continue;
		}
		/* no identity: a spool whose making a crash cut short (its lock
		 * there, and at most an identity not yet renamed) holds nothing,
		 * and is made now with no data time known, so a fast-forward run
		 * collects its period again (agent_resume_ns); anything else is
		 * not ours */
		bool cut_short = stat(path, &sb) != 0;
		if (cut_short) {
			snprintf(path, sizeof(path), "%s/%s/lock", s->spool_dir, de->d_name);
			if (stat(path, &sb) || !S_ISREG(sb.st_mode)) {
				log_msg(LOG_WARN, "%s/%s: not a spool (no identity): left alone", s->spool_dir,
					de->d_name);
				continue;
			}
		}
		struct link *k;
		if ((rc = link_open(a, agent, 0, &k, e))) {
			if (!cut_short || rc != -EINVAL)
				goto fail;
			log_msg(LOG_WARN, "%s; left alone", e->msg);
			e->msg[0] = '\0';
			continue;
		}
		if (cut_short)
			log_msg(LOG_WARN, "agent %s: its spool's making was cut short (by a crash): made now, with"
				" nothing in it", agent);
		if ((rc = link_add(a, k))) {
			link_free(k);
			err_set(e, rc, "out of memory");
			goto fail;
		}
	}
	closedir(d);
	*out = a;
	return 0;
fail:
	if (d)
		closedir(d);
	agent_close(a);
	return rc;
}

void agent_close(struct agent *a)
{
	if (!a)
		return;
	/* stop every sender first: each may be in a request */
	for (size_t i = 0; i < a->n; i++)
		sender_stop(a->l[i]->snd);
	for (size_t i = 0; i < a->n; i++) {
		struct link *k = a->l[i];
		if (k->holding)
			log_msg(LOG_WARN, "agent %s: stopping with %zu readings the full spool had refused: they are"
				" lost (a later counter reading covers their usage)", k->agent, k->held.n_samples);
		link_free(k);
	}
	free(a->l);
	free(a);
}

static struct link *link_find(struct agent *a, const char *agent)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->l[i]->agent, agent))
			return a->l[i];
	return NULL;
}

uint64_t agent_next_seq(void *ctx, const char *agent)
{
	return 1;   /* unused: agent_deliver numbers each batch from its spool */
}

/* Append b's contents after the held batch's; the held batch takes b's
 * time (it closes the later cycle). 0 or -ENOMEM. */
static int hold(struct link *k, const struct batch *b)
{
	struct batch *h = &k->held;
	int rc = 0;
	for (size_t i = 0; !rc && i < b->n_metas; i++)
		rc = batch_add_meta(h, &b->metas[i]);
	for (size_t i = 0; !rc && i < b->n_events; i++)
		rc = batch_add_event(h, &b->events[i]);
	for (size_t i = 0; !rc && i < b->n_samples; i++)
		rc = batch_add_sample(h, &b->samples[i]);
	h->time_ns = b->time_ns;
	h->clock_step_ns += b->clock_step_ns;
	k->holding = true;
	return rc;
}

/* A batch was spooled: the sender looks at once when it can be sent (it
 * is synced: agent.send_every), else it is sent with a later one. */
static void wake_if_synced(struct link *k)
{
	struct spool_stats st;
	spool_get_stats(k->sp, &st);
	if (!st.unsynced)
		sender_wake(k->snd);
}

int agent_deliver(void *ctx, struct batch *b)
{
	struct agent *a = ctx;
	struct tally_err e = { 0 };
	struct link *k = link_find(a, b->agent);
	int rc;

	if (!k) {
		/* a new agent id: its spool has everything up to the cycle before */
		if ((rc = link_open(a, b->agent, b->time_ns - a->interval_ns, &k, &e))) {
			log_msg(LOG_ERR, "%s", e.msg);
			return rc;
		}
		if ((rc = link_add(a, k))) {
			link_free(k);
			log_msg(LOG_ERR, "agent: out of memory");
			return rc;
		}
	}
	struct spool_stats st;
	spool_get_stats(k->sp, &st);
	if (b->time_ns <= st.last_time_ns && !k->holding) {
		/* collected again after a restart: the spool has this cycle */
		k->skipped++;
		return 0;
	}
	struct batch *out = b;
	if (k->holding) {
		if (k->held.n_samples + b->n_samples > AGENT_HOLD_MAX_SAMPLES) {
			k->held_dropped += k->held.n_samples;
			log_msg(LOG_ERR, "agent %s: the spool still refuses batches: dropped the %zu readings, %zu events"
				" and %zu metadata changes held in memory since then", k->agent, k->held.n_samples,
				k->held.n_events, k->held.n_metas);
			batch_clear(&k->held);
			k->held.clock_step_ns = 0;
		}
		if (hold(k, b)) {
			log_msg(LOG_ERR, "agent %s: out of memory holding a batch the spool refused", k->agent);
			return -ENOMEM;
		}
		out = &k->held;
	}
	out->seq = spool_next_seq(k->sp);
	rc = spool_append(k->sp, out, &e);
	if (rc == 0) {
		k->samples += out->n_samples;
		if (k->holding) {
			complaint_clear(&k->full, "agent %s: spooling again; the readings held in memory are spooled",
					k->agent);
			batch_clear(&k->held);
			k->held.clock_step_ns = 0;
			k->holding = false;
		}
		k->spooled++;
		wake_if_synced(k);
		return 0;
	}
	if (rc == -ENOSPC || rc == -EDQUOT) {
		/* at the ceiling, or the disk is full: kept in memory, tried
		 * again with the next cycle (SpoolFilling says why) */
		complain(&k->full, LOG_ERR, "agent %s: %s; the readings are held in memory (up to %u) and tried"
			 " again next cycle", k->agent, e.msg, AGENT_HOLD_MAX_SAMPLES);
		if (!k->holding && hold(k, b)) {
			log_msg(LOG_ERR, "agent %s: out of memory holding a batch the spool refused", k->agent);
			return -ENOMEM;
		}
		return 0;
	}
	log_msg(LOG_ERR, "agent %s: %s", k->agent, e.msg);
	return rc;
}

int agent_flush(struct agent *a)
{
	int rc = 0;
	for (size_t i = 0; i < a->n && !rc; i++) {
		struct link *k = a->l[i];
		struct tally_err e = { 0 };
		if (!k->holding)
			continue;
		k->held.seq = spool_next_seq(k->sp);
		int r = spool_append(k->sp, &k->held, &e);
		if (r == -ENOSPC || r == -EDQUOT)
			continue;   /* still no room: the next time */
		if (r) {
			log_msg(LOG_ERR, "agent %s: %s", k->agent, e.msg);
			rc = r;
			continue;
		}
		complaint_clear(&k->full, "agent %s: spooling again; the readings held in memory are spooled", k->agent);
		k->samples += k->held.n_samples;
		batch_clear(&k->held);
		k->held.clock_step_ns = 0;
		k->holding = false;
		k->spooled++;
	}
	/* what waits for send_every is synced, and every sender looks */
	for (size_t i = 0; i < a->n; i++) {
		struct tally_err e = { 0 };
		int r = spool_sync(a->l[i]->sp, &e);
		if (r) {
			log_msg(LOG_ERR, "agent %s: %s", a->l[i]->agent, e.msg);
			rc = rc ? rc : r;
		}
		wake_if_synced(a->l[i]);
	}
	return rc;
}

int64_t agent_resume_ns(struct agent *a, bool latest)
{
	int64_t t = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct spool_stats st;
		spool_get_stats(a->l[i]->sp, &st);
		if (st.last_time_ns <= 0 && !latest)
			return 0;   /* a spool that knows nothing: from the start */
		if (st.last_time_ns <= 0)
			continue;
		if (!t || (latest ? st.last_time_ns > t : st.last_time_ns < t))
			t = st.last_time_ns;
	}
	return t;
}

bool agent_drained(struct agent *a)
{
	for (size_t i = 0; i < a->n; i++) {
		struct spool_stats st;
		if (a->l[i]->holding)
			return false;
		spool_get_stats(a->l[i]->sp, &st);
		if (st.batches)
			return false;
	}
	return true;
}

void agent_get_summary(struct agent *a, struct agent_summary *out)
{
	memset(out, 0, sizeof(*out));
	out->spools = a->n;
	for (size_t i = 0; i < a->n; i++) {
		struct sender_stats st;
		sender_get_stats(a->l[i]->snd, &st);
		out->batches_spooled += a->l[i]->spooled;
		out->batches_skipped += a->l[i]->skipped;
		out->batches_acked += st.batches_acked;
		out->batches_waiting += st.spool.batches;
		out->readings_thinned += st.spool.thinned;
		out->readings_dropped += st.spool.dropped + a->l[i]->held_dropped;
		out->samples_spooled += a->l[i]->samples;
		out->fsyncs += st.spool.fsyncs;
	}
}

/* ---- /metrics ------------------------------------------------------------ */

enum fig {
	F_BYTES, F_BATCHES, F_UNSYNCED, F_LEVEL, F_OLDEST, F_LAST_ACK, F_AGG_SEQ, F_REFUSING, F_SENDS, F_FRAMES,
	F_ACKED, F_APPENDED, F_REFUSED, F_THINNED, F_DROPPED, F_INVALID, F_FSYNCS, F_TORN, F_SKIPPED, F_COUNT
};

static const struct {
	const char *name, *help;
	bool counter;
} fig[F_COUNT] = {
	[F_BYTES] = { "tally_agent_spool_bytes", "Bytes of the agent's spool on disk (segment files).", false },
	[F_BATCHES] = { "tally_agent_spool_batches", "Batches in the spool the aggregator has not acknowledged.",
			false },
	[F_UNSYNCED] = { "tally_agent_spool_unsynced_batches", "Of those, the last ones written but not yet"
			 " synced, so not sent yet (agent.send_every).", false },
	[F_LEVEL] = { "tally_agent_spool_level", "The spool's fill level: 0 keep, 1 thin (routine readings"
		      " thinned), 2 full (only what cannot be recomputed), docs/transport.md.", false },
	[F_OLDEST] = { "tally_agent_oldest_unsent_seconds", "Age of the oldest batch not acknowledged by the"
		       " aggregator (0: none waiting).", false },
	[F_LAST_ACK] = { "tally_agent_last_ack_timestamp_seconds", "Wall-clock time of the aggregator's last"
			 " acknowledgement of new batches (0: none since tallyd started).", false },
	[F_AGG_SEQ] = { "tally_agent_aggregator_seq", "The aggregator's last committed seq of this agent, as it"
			" last said.", false },
	[F_REFUSING] = { "tally_agent_refused", "1 while the aggregator refuses this agent's batches in a way"
			 " only the operator can resolve (a token, another spool, an unknown meter).", false },
	[F_SENDS] = { "tally_agent_sends", "Requests to the aggregator, by result.", true },
	[F_FRAMES] = { "tally_agent_frames_sent", "Batches sent to the aggregator, resends included.", true },
	[F_ACKED] = { "tally_agent_batches_acked", "Batches the aggregator acknowledged as committed.", true },
	[F_APPENDED] = { "tally_agent_batches_spooled", "Batches written to the spool (synced at once, or"
			 " with a later batch: agent.send_every).", true },
	[F_REFUSED] = { "tally_agent_batches_refused", "Batches the spool refused (at its ceiling, or its disk"
			" full); their readings are held in memory and tried again.", true },
	[F_THINNED] = { "tally_agent_readings_thinned", "Readings left out by a filling spool whose usage a"
			" later reading keeps (resolution lost, not usage).", true },
	[F_DROPPED] = { "tally_agent_readings_dropped", "Readings lost for good: gauge values a full spool left"
			" out, and readings held in memory while the spool refused for too long.", true },
	[F_INVALID] = { "tally_agent_readings_invalid", "Readings the wire format cannot carry, left out.", true },
	[F_FSYNCS] = { "tally_agent_spool_fsyncs", "fsync and fdatasync calls of the spool.", true },
	[F_TORN] = { "tally_agent_spool_torn_bytes", "Bytes cut from a torn spool tail when it was opened.",
		     true },
	[F_SKIPPED] = { "tally_agent_batches_skipped", "Batches collected again after a restart that the spool"
			" had already.", true },
};

static const char *const result_name[SENDER_RESULTS] = {
	[SENDER_IDLE] = NULL, [SENDER_OK] = "ok", [SENDER_RESUMED] = "resumed", [SENDER_SMALLER] = "smaller",
	[SENDER_THROTTLED] = "throttled", [SENDER_REFUSED] = "refused", [SENDER_SERVER_ERROR] = "server_error",
	[SENDER_FAILED] = "failed", [SENDER_SPOOL_ERROR] = "spool_error",
};

static double fig_value(int f, const struct link *k, const struct sender_stats *st)
{
	const struct spool_stats *p = &st->spool;
	switch (f) {
	case F_BYTES: return (double)p->bytes;
	case F_BATCHES: return (double)p->batches;
	case F_UNSYNCED: return (double)p->unsynced;
	case F_LEVEL: return p->level;
	case F_OLDEST: return (double)st->oldest_unsent_age_ns / 1e9;
	case F_LAST_ACK: return (double)st->last_ack_ns / 1e9;
	case F_AGG_SEQ: return (double)st->aggregator_seq;
	case F_REFUSING: return st->refusing;
	case F_FRAMES: return (double)st->frames_sent;
	case F_ACKED: return (double)st->batches_acked;
	case F_APPENDED: return (double)p->appended;
	case F_REFUSED: return (double)p->refused;
	case F_THINNED: return (double)p->thinned;
	case F_DROPPED: return (double)(p->dropped + k->held_dropped);
	case F_INVALID: return (double)p->invalid;
	case F_FSYNCS: return (double)p->fsyncs;
	case F_TORN: return (double)p->torn_bytes;
	case F_SKIPPED: return (double)k->skipped;
	}
	return 0;
}

void agent_metrics(struct agent *a, void (*put)(void *ctx, const struct collector_metric *m), void *ctx)
{
	struct sender_stats *st = calloc(a->n ? a->n : 1, sizeof(*st));
	if (!st)
		return;   /* out of memory: this snapshot has none of them */
	for (size_t i = 0; i < a->n; i++)
		sender_get_stats(a->l[i]->snd, &st[i]);
	for (int f = 0; f < F_COUNT; f++)
		for (size_t i = 0; i < a->n; i++) {
			struct collector_metric m = { .name = fig[f].name, .help = fig[f].help,
						      .counter = fig[f].counter };
			if (f != F_SENDS) {
				str_copy(m.labels, a->l[i]->label, sizeof(m.labels));
				m.value = fig_value(f, a->l[i], &st[i]);
				put(ctx, &m);
				continue;
			}
			for (int r = SENDER_OK; r < SENDER_RESULTS; r++) {
				snprintf(m.labels, sizeof(m.labels), "%s,result=%s", a->l[i]->label, result_name[r]);
				m.value = (double)st[i].by_result[r];
				put(ctx, &m);
			}
		}
	free(st);
}

/* ---- SpoolFilling -------------------------------------------------------- */

static const char *const level_name[] = { "keep", "thin", "full", "at its ceiling" };

static int cmp_view(const void *x, const void *y)
{
	return strcmp(((const struct alert_view *)x)->labels, ((const struct alert_view *)y)->labels);
}

static void describe(const struct agent *a, const struct link *k, const struct spool_stats *st,
		     struct alert_view *w)
{
	struct alert_pair lp[] = { { "alertname", "SpoolFilling" }, { "agent", "" }, { "severity", "warning" } };
	struct alert_pair ap[] = { { "summary", "" }, { "description", "" } };
	str_copy(lp[1].v, k->agent, sizeof(lp[1].v));
	alert_pairs_join(lp, 3, w->labels, sizeof(w->labels));
	snprintf(ap[0].v, sizeof(ap[0].v), "the spool of agent %s is %s: %" PRIu64 " of %" PRIu64 " bytes",
		 k->agent, level_name[k->level], st->bytes, a->s->spool.max_bytes);
	str_copy(ap[1].v, k->level == 3
		 ? "the spool refuses batches: their readings wait in memory, and are dropped past a bound;"
		   " bring the aggregator back or give the spool room"
		 : k->level == SPOOL_FULL
		 ? "only what cannot be recomputed is spooled: routine counter readings once an hour, measured"
		   " gauge values dropped; bring the aggregator back"
		 : "routine readings are thinned (resolution lost, usage kept): the aggregator has not"
		   " acknowledged for a while", sizeof(ap[1].v));
	alert_pairs_join(ap, 2, w->annotations, sizeof(w->annotations));
	w->state = k->alert.state;
	w->active_ns = k->alert.active_ns;
	w->fired_ns = k->alert.fired_ns;
	w->resolved_ns = k->alert.resolved_ns;
	w->value = (double)st->bytes / (double)a->s->spool.max_bytes;
}

int agent_eval_alerts(struct agent *a, int64_t t_ns, const struct alerting_config *ac, struct alert_store *store)
{
	bool changed = false, enabled = ac && ac->enabled && ac->spool_filling;
	int64_t now = time_mono_ns();
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct link *k = a->l[i];
		struct spool_stats st;
		spool_get_stats(k->sp, &st);
		bool cond = enabled && (st.level >= SPOOL_THIN || k->holding);
		enum alert_state before = k->alert.state;
		int level = k->holding ? 3 : st.level;
		if (k->alert.state != ALERT_INACTIVE || cond)
			alert_step(&k->alert, cond, 0, t_ns, 0);
		if (k->alert.state == ALERT_RESOLVED && before != ALERT_RESOLVED)
			k->resolved_mono_ns = now;
		/* a resolved one is sent for resolved_keep, then forgotten */
		if (k->alert.state == ALERT_RESOLVED && now - k->resolved_mono_ns >= (ac ? ac->resolved_keep_ns : 0))
			k->alert.state = ALERT_INACTIVE;
		changed |= k->alert.state != before || (k->alert.state == ALERT_FIRING && level != k->level);
		if (k->alert.state == ALERT_FIRING || cond)
			k->level = level;
		n += k->alert.state != ALERT_INACTIVE;
	}
	if (!store || (!changed && a->alert_version))
		return 0;
	struct alert_snap *snap = calloc(1, sizeof(*snap));
	struct alert_view *v = calloc(n ? n : 1, sizeof(*v));
	if (!snap || !v) {
		free(snap);
		free(v);
		return -ENOMEM;
	}
	size_t j = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct spool_stats st;
		if (a->l[i]->alert.state == ALERT_INACTIVE)
			continue;
		spool_get_stats(a->l[i]->sp, &st);
		describe(a, a->l[i], &st, &v[j++]);
	}
	qsort(v, j, sizeof(*v), cmp_view);
	snap->v = v;
	snap->n = j;
	snap->tick_ns = t_ns;
	snap->version = ++a->alert_version;
	snapshot_publish(&store->ss, &snap->snap);
	return 0;
}
