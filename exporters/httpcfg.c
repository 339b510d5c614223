/*
 * httpcfg.c: the `http:` section of tallyd's config into struct
 * httpd_section, and the listener's config made from it (httpd.h). The
 * section's keys, defaults and units are in docs/config.md. Pure: common/
 * only, no listener is started here.
 */
#include "httpd.h"
#include "cfg.h"
#include "err.h"
#include "str.h"
#include "tallytime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char *const http_keys[] = { "enabled", "address", "port", "stale_after",
					 "serve_after_end", "tokens", "plan", "rate_limit", "rate_burst",
					 "head_timeout", "max_connections", "max_connections_per_address",
					 "auth_failures_per_address", "auth_failures_total", "tls_cert", "tls_key",
					 "tls_client_ca", NULL };
static const char *const token_keys[] = { "token", "tenant", "admin", "agent", "source", NULL };

static int parse_tls(struct httpd_section *h, const struct cfg_node *hs, struct tally_err *e);

static bool loopback(const char *addr)
{
	return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1");
}

/* Tokens are a list of maps, each with a token and one of admin: true, a
 * tenant, an agent or a source. */
static int parse_tokens(struct httpd_section *h, const struct cfg_node *tk, struct tally_err *e)
{
	int rc;

	if (tk->type != CFG_SEQ)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'tokens': expected a list of {token, tenant},"
			       " {token, admin: true}, {token, agent} or {token, source}", tk->file, tk->line, tk->col);
	for (size_t i = 0; i < tk->n_kids; i++) {
		const struct cfg_node *t = tk->kids[i];
		struct httpd_token *dt = &h->tokens[h->n_tokens];
		if (h->n_tokens == HTTPD_MAX_TOKENS)
			return err_set(e, -ERANGE, "%s:%d:%d: more than %d tokens", t->file, t->line, t->col,
				       HTTPD_MAX_TOKENS);
		if (t->type != CFG_MAP)
			return err_set(e, -EINVAL, "%s:%d:%d: a token is a map with 'token' and"
				       " 'tenant', 'admin: true', 'agent' or 'source'", t->file, t->line, t->col);
		memset(dt, 0, sizeof(*dt));
		if ((rc = cfg_check_keys(t, "tokens", token_keys, e)) ||
		    (rc = cfg_get_string(t, "token", dt->token, sizeof(dt->token), e)) ||
		    (rc = cfg_get_string(t, "tenant", dt->tenant, sizeof(dt->tenant), e)) ||
		    (rc = cfg_get_bool(t, "admin", &dt->admin, e)) ||
		    (rc = cfg_get_string(t, "agent", dt->agent, sizeof(dt->agent), e)) ||
		    (rc = cfg_get_string(t, "source", dt->source, sizeof(dt->source), e)))
			return rc;
		if (strlen(dt->token) < 16)
			return err_set(e, -EINVAL, "%s:%d:%d: key 'token': at least 16 characters"
				       " (a guessable token is no access control)", t->file, t->line, t->col);
		if ((int)dt->admin + !!dt->tenant[0] + !!dt->agent[0] + !!dt->source[0] != 1)
			return err_set(e, -EINVAL, "%s:%d:%d: a token needs exactly one of 'admin: true',"
				       " a 'tenant', an 'agent' or a 'source'", t->file, t->line, t->col);
		if (dt->source[0] && !str_is_word(dt->source)) {
			const struct cfg_node *n = cfg_get(t, "source");
			return err_set(e, -EINVAL, "%s:%d:%d: key 'source': '%s' is not a source's name (no space or"
				       " control character)", n->file, n->line, n->col, dt->source);
		}
		for (size_t j = 0; dt->agent[0] && j < h->n_tokens; j++)
			if (!strcmp(h->tokens[j].agent, dt->agent)) {
				const struct cfg_node *a = cfg_get(t, "agent");
				return err_set(e, -EINVAL, "%s:%d:%d: key 'agent': '%s' has a token already (one"
					       " token per agent)", a->file, a->line, a->col, dt->agent);
			}
		for (size_t j = 0; j < h->n_tokens; j++)
			if (!strcmp(h->tokens[j].token, dt->token))
				return err_set(e, -EINVAL, "%s:%d:%d: key 'token': given twice", t->file,
					       t->line, t->col);
		h->n_tokens++;
	}
	return 0;
}

int httpd_section_parse(struct httpd_section *h, const struct cfg_node *hs, int64_t interval_ns,
			struct tally_err *e)
{
	const struct cfg_node *tk;
	uint64_t port = 9464, burst = 100;
	uint64_t max_conn = 1024, per_addr = 32, fail_addr = 10, fail_total = 100;
	int rc;

	memset(h, 0, sizeof(*h));
	str_copy(h->address, "127.0.0.1", sizeof(h->address));
	h->rate_per_s = 20;
	h->rate_burst = (uint32_t)burst;
	h->port = (uint16_t)port;
	h->stale_after_ns = 3 * interval_ns;
	h->head_timeout_ns = 5 * NS_PER_SEC;
	h->max_connections = (uint32_t)max_conn;
	h->max_connections_per_address = (uint32_t)per_addr;
	h->auth_failures_per_address = (uint32_t)fail_addr;
	h->auth_failures_total = (uint32_t)fail_total;
	if (!hs)
		return 0;
	if (hs->type != CFG_MAP)
		return err_set(e, -EINVAL, "%s:%d:%d: key 'http': expected a map", hs->file, hs->line,
			       hs->col);
	h->enabled = true;
	if ((rc = cfg_check_keys(hs, "http", http_keys, e)) ||
	    (rc = cfg_get_bool(hs, "enabled", &h->enabled, e)) ||
	    (rc = cfg_get_string(hs, "address", h->address, sizeof(h->address), e)) ||
	    (rc = cfg_get_uint(hs, "port", 0, 65535, &port, e)) ||
	    (rc = cfg_get_duration(hs, "stale_after", NS_PER_SEC, 30 * 86400 * NS_PER_SEC,
				   &h->stale_after_ns, e)) ||
	    (rc = cfg_get_bool(hs, "serve_after_end", &h->serve_after_end, e)) ||
	    (rc = cfg_get_string(hs, "plan", h->plan, sizeof(h->plan), e)) ||
	    (rc = cfg_get_double(hs, "rate_limit", 0, 1e6, &h->rate_per_s, e)) ||
	    (rc = cfg_get_uint(hs, "rate_burst", 1, 1000000, &burst, e)) ||
	    (rc = cfg_get_duration(hs, "head_timeout", NS_PER_SEC / 10, 60 * NS_PER_SEC,
				   &h->head_timeout_ns, e)) ||
	    (rc = cfg_get_uint(hs, "max_connections", 16, 65536, &max_conn, e)) ||
	    (rc = cfg_get_uint(hs, "max_connections_per_address", 1, max_conn, &per_addr, e)) ||
	    (rc = cfg_get_uint(hs, "auth_failures_per_address", 1, 1000000, &fail_addr, e)) ||
	    (rc = cfg_get_uint(hs, "auth_failures_total", 1, 1000000, &fail_total, e)))
		return rc;
	h->auth_failures_per_address = (uint32_t)fail_addr;
	h->auth_failures_total = (uint32_t)fail_total;
	h->port = (uint16_t)port;
	h->rate_burst = (uint32_t)burst;
	h->max_connections = (uint32_t)max_conn;
	h->max_connections_per_address = (uint32_t)(per_addr < max_conn ? per_addr : max_conn);
	if ((tk = cfg_get(hs, "tokens")) && (rc = parse_tokens(h, tk, e)))
		return rc;
	unsigned char a[16];
	if (inet_pton(AF_INET, h->address, a) != 1 && inet_pton(AF_INET6, h->address, a) != 1) {
		const struct cfg_node *n = cfg_get(hs, "address");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'address': '%s' is not a numeric IPv4 or IPv6"
			       " address (127.0.0.1, ::1)", n->file, n->line, n->col, h->address);
	}
	if (h->enabled && !httpd_reader_tokens(h->tokens, h->n_tokens) && !loopback(h->address)) {
		const struct cfg_node *n = cfg_get(hs, "address");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'address': '%s' is not loopback; outside"
			       " loopback the API needs 'tokens' (admin or tenant: agents' and sources' tokens"
			       " read nothing)",
			       n->file, n->line, n->col, h->address);
	}
	return parse_tls(h, hs, e);
}

/* A PEM file that can be read now; the listener reads it again at start. */
static int readable(const struct cfg_node *sec, const char *key, const char *path, struct tally_err *e)
{
	if (!path[0] || access(path, R_OK) == 0)
		return 0;
	int err = errno;
	const struct cfg_node *n = cfg_get(sec, key);
	return err_set(e, -EINVAL, "%s:%d:%d: key '%s': cannot read '%s': %s", n->file, n->line, n->col,
		       key, path, strerror(err));
}

/* tls_cert and tls_key go together; tls_client_ca needs them. */
static int parse_tls(struct httpd_section *h, const struct cfg_node *hs, struct tally_err *e)
{
	int rc;
	if ((rc = cfg_get_string(hs, "tls_cert", h->tls_cert, sizeof(h->tls_cert), e)) ||
	    (rc = cfg_get_string(hs, "tls_key", h->tls_key, sizeof(h->tls_key), e)) ||
	    (rc = cfg_get_string(hs, "tls_client_ca", h->tls_client_ca, sizeof(h->tls_client_ca), e)))
		return rc;
	if (!h->tls_cert[0] != !h->tls_key[0]) {
		const struct cfg_node *n = cfg_get(hs, h->tls_cert[0] ? "tls_cert" : "tls_key");
		return err_set(e, -EINVAL, "%s:%d:%d: key '%s': TLS needs both 'tls_cert' and 'tls_key'",
			       n->file, n->line, n->col, n->key);
	}
	if (h->tls_client_ca[0] && !h->tls_cert[0]) {
		const struct cfg_node *n = cfg_get(hs, "tls_client_ca");
		return err_set(e, -EINVAL, "%s:%d:%d: key 'tls_client_ca': client certificates need TLS"
			       " ('tls_cert' and 'tls_key')", n->file, n->line, n->col);
	}
	if ((rc = readable(hs, "tls_cert", h->tls_cert, e)) || (rc = readable(hs, "tls_key", h->tls_key, e)) ||
	    (rc = readable(hs, "tls_client_ca", h->tls_client_ca, e)))
		return rc;
	return 0;
}

size_t httpd_reader_tokens(const struct httpd_token *t, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += !t[i].agent[0] && !t[i].source[0];
	return k;
}

void httpd_section_config(const struct httpd_section *s, const char *ledger_path,
			  struct alert_store *alerts, struct httpd_config *out)
{
	memset(out, 0, sizeof(*out));
	out->address = s->address;
	out->port = s->port;
	out->tokens = s->tokens;
	out->n_tokens = s->n_tokens;
	out->ledger_path = ledger_path;
	out->plan_path = s->plan[0] ? s->plan : NULL;
	out->alerts = alerts;
	out->rate_per_s = s->rate_per_s;
	out->rate_burst = s->rate_burst;
	out->head_timeout_ns = s->head_timeout_ns;
	out->max_connections = s->max_connections;
	out->max_per_address = s->max_connections_per_address;
	out->auth_failures_per_address = s->auth_failures_per_address;
	out->auth_failures_total = s->auth_failures_total;
	out->tls_cert = s->tls_cert[0] ? s->tls_cert : NULL;
	out->tls_key = s->tls_key[0] ? s->tls_key : NULL;
	out->tls_client_ca = s->tls_client_ca[0] ? s->tls_client_ca : NULL;
}
