/*
 * snmp.c: switch ports and hosts polled over SNMP (net-snmp), each port's
 * traffic billed to the tenant the config maps it to.
 *
 * Polling. Every target has a session opened once (net-snmp's traditional
 * asynchronous API); read() starts a poll of every target due this cycle
 * (a target's `interval` is a multiple of tallyd's: it is due on the
 * cycles that begin a new one of its intervals) and drives them all in one
 * select loop until each has finished, failed or timed out. A dead target
 * costs its own timeout × (retries + 1) and nobody else's; the config
 * refuses timeouts that would not fit in tallyd's interval, and the loop
 * gives up on whatever is still running at 3/4 of it.
 *
 * A poll is one GETBULK walk of the columns we need, all columns side by
 * side in each request (snmp_parse.c checks every answer), with sysUpTime
 * as the non-repeater of the first request. A poll stores nothing until it
 * has finished: a target that times out, refuses our credentials or
 * answers nonsense halfway leaves no partial reading. Each failing target
 * is one log line per back-off window, naming it and the error (timeout,
 * authentication failure, unknown user, noSuchObject, ...); credentials
 * are never logged, and passwords are not kept once their keys are made.
 *
 * SNMPv3: the agent's engine id is discovered asynchronously (a probe on a
 * session of its own, as RFC 3414 describes), so a v3 target that does not
 * answer never blocks the loop either; the poll session is opened once the
 * id is known, with keys localized to it.
 *
 * v3 keys are net-snmp's, not a session's: its user table holds one entry
 * per (engine id, user name), and every request of every session is signed
 * and every answer checked with that entry's keys. Two targets that name
 * the same user of the same engine id with other passwords or protocols
 * (the same agent given a wrong password in one target, or cloned devices
 * that kept one engine id) would share whichever entry was made last. So
 * each target makes its own entry when its session opens and keeps it out
 * of the table; the entry is put in the table when the target's walk
 * begins. A target whose entry would push out that of another target
 * walking at that moment waits (P_WAIT) until that walk has ended: such
 * targets walk one after the other, all others at once.
 *
 * Identity and tenants: a port is `<target>:<ifName>` (ifDescr when the
 * agent has no ifName), so it keeps its series when a reboot renumbers
 * ifIndex. The config's `ports` rules (target and ifName or ifAlias
 * patterns) give a port its tenant, display name and labels. Readings go to
 * the sink with the target's name as their agent: the target is the host
 * they come from. A host's HOST-RESOURCES readings are resource `<target>`.
 *
 * Counters (snmp_parse.c has the arithmetic, tests/unit/test_snmp.c the
 * cases): 64-bit counters are sent raw and the aggregator takes deltas.
 * When sysUpTime went back (a reboot), a counter that went down started
 * again at the agent's start (rule 2: counted from zero then); one that did
 * not go down is taken as going on (an agent restarted over the kernel's
 * counters), never as a new life counted twice. A moved
 * ifCounterDiscontinuityTime or a new ifIndex for a name ends the series'
 * life with a final reading; the next value is a baseline, or counted from
 * zero if it went down. 32-bit counters (ifTable: errors, discards, and
 * octets where a device has nothing better) are turned into deltas here,
 * where a wrap can be told from a reset: monitoring meters only, never the
 * billed if.*.bytes. A port's first reading is a baseline (rule 3).
 *
 * Direction (docs/meters.md): from the tenant's side. On a switch
 * (`type: switch`) what the switch sent out of the port (ifHCOutOctets) is
 * the tenant's incoming; on a host (`type: host`) its own ifHCInOctets is.
 */
#include "cfg.h"
#include "vec.h"
#include "collector.h"
#include "err.h"
#include "log.h"
#include "snmp_internal.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>
/* net-snmp pulls in <syslog.h>, whose LOG_* macros hide log.h's levels */
#undef LOG_ERR
#undef LOG_INFO
#undef LOG_DEBUG

#define SNMP_MAX_TARGETS 4096
#define SNMP_VB_MAX 4096             /* varbinds we take from one answer */

struct snmp_rule {
	char target[32];             /* fnmatch pattern on the target name */
	char if_name[64];            /* fnmatch pattern on ifName, "" = any */
	char if_alias[128];          /* fnmatch pattern on ifAlias, "" = any */
	char name[128];              /* display name, "" = ifName (ifAlias) */
	char tenant[64];
	char labels[400];            /* "k=v,k=v", sorted by key */
};

struct port {
	char name[SNMP_NAME_MAX];    /* ifName: the identity */
	struct snmp_port_state st;
	struct resource_meta sent;   /* the metadata last sent */
};

enum phase { P_IDLE = 0, P_DISCOVER, P_WAIT, P_WALK };

struct snmp;

struct target {
	/* config */
	char name[32];
	char peer[160];              /* net-snmp peername: "udp:HOST:PORT" */
	char address[128];           /* as written, for messages */
	long version;                /* SNMP_VERSION_2c or _3 */
	enum snmp_view view;
	bool hr;                     /* walk HOST-RESOURCES too */
	int64_t interval_ns, timeout_ns;
	int retries, max_rep;
	size_t max_rows;
	char community[128];
	char user[64];
	int level;                   /* SNMP_SEC_LEVEL_* */
	const oid *auth_proto, *priv_proto;
	size_t auth_proto_len, priv_proto_len;
	u_char auth_ku[USM_AUTH_KU_LEN], priv_ku[USM_PRIV_KU_LEN];
	size_t auth_ku_len, priv_ku_len;
	char context[64];

	struct snmp *owner;          /* the collector t belongs to: begin_walk looks at its other targets */

	/* sessions */
	netsnmp_session *ss;         /* polls (v3: opened once the engine id is known) */
	struct usmUser *usr;         /* v3: our user entry, keys localized to engine[]; owned here,
				      * in net-snmp's user table only while installed (begin_walk) */
	char waits_for[32];          /* P_WAIT: the target whose walk holds the user entry */
	netsnmp_session *disc;       /* v3: engine id discovery */
	u_char engine[32];
	size_t engine_len;

	/* the poll in flight */
	enum phase phase;
	bool active, ok;
	int reqid;
	struct snmp_walk walk;
	bool walk_ready;
	int asked[SC_COUNT];
	size_t n_asked;
	bool asked_uptime;
	int rep;                     /* max-repetitions now (halved on tooBig) */
	int requests;                /* of this poll */
	int64_t deadline_mono;       /* the request in flight is given up then */
	int64_t t0_mono;
	int64_t read_ns;             /* wall clock of the answer with sysUpTime */
	char err[200];
	bool err_timeout;
	bool rediscover;             /* the agent said unknown engine id or not in time window */
	char said[200];              /* the error last logged */
	struct snmp_vb *vb;
	size_t cap_vb;

	/* across polls */
	int64_t last_due;            /* the interval number last polled, -1 none */
	bool have_prev;
	uint32_t prev_uptime;
	int64_t prev_ns;
	struct port *ports;          /* sorted by name */
	size_t n_ports, cap_ports;
	struct resource_meta host_sent;
	bool warned32;

	/* figures (/metrics) */
	uint64_t polls, timeouts, errors, discontinuities, skipped_ports;
	int64_t last_success_ns;
	double response_s;           /* wall time of the last finished poll */
	bool up;
	struct complaint fail, note;
};

struct snmp {
	struct sink_status ss;       /* this read's sink refusals (sink.h) */
	struct target *t;
	size_t n_t;
	struct snmp_rule *rules;
	size_t n_rules;
	int64_t cycle_ns;            /* tallyd's interval */
	struct sample *buf;          /* SNMP_PORT_SAMPLES, or the host samples */
	size_t cap_buf;
};

/* ---- the library, once per process ---- */

static bool lib_ready;

static void lib_init(void)
{
	if (lib_ready)
		return;
	/* numeric OIDs only: no MIB files, no snmp.conf of the machine's or the
	 * user's, no persistent state written under /var/lib/snmp */
	setenv("MIBS", "", 1);
	setenv("MIBDIRS", "", 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
	netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
	/* errors reach us through the callbacks and we log them once; with no
	 * log handler at all net-snmp would write its own to stderr instead
	 * ("Authentication failed for USER"), so it gets one that drops them */
	snmp_disable_log();
	netsnmp_register_loghandler(NETSNMP_LOGHANDLER_NONE, 7 /* syslog LOG_DEBUG: all priorities */);
	init_snmp("tally");
	lib_ready = true;
}

/* ---- config ---- */

static const char *const top_keys[] = { "targets", "ports", NULL };
static const char *const target_keys[] = {
	"name", "address", "type", "version", "community", "user", "level", "auth_protocol",
	"auth_password", "priv_protocol", "priv_password", "context", "interval", "timeout", "retries",
	"max_repetitions", "max_rows", "host_resources", NULL
};
static const char *const rule_keys[] = { "target", "if_name", "if_alias", "name", "tenant", "labels", NULL };
static const char *const types[] = { "switch", "host", NULL };
static const char *const versions[] = { "2c", "3", NULL };
static const char *const levels[] = { "noAuthNoPriv", "authNoPriv", "authPriv", NULL };
static const char *const auths[] = { "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512", NULL };
static const char *const privs[] = { "AES", "DES", NULL };

/* "FILE:LINE:COL: <what><name><rest>" at node n; -EINVAL. */
static int at(struct tally_err *e, const struct cfg_node *n, const char *rest, const char *what, const char *name)
{
	return err_set(e, -EINVAL, "%s:%d:%d: %s%s%s", n->file, n->line, n->col, what, name, rest);
}

/* "host", "host:port", "[v6]" or "[v6]:port" -> net-snmp's peername. */
static int parse_address(struct target *t, const struct cfg_node *n, struct tally_err *e)
{
	char host[128];
	const char *a = t->address, *port = NULL;
	bool v6 = a[0] == '[';
	if (v6) {
		const char *end = strchr(a, ']');
		if (!end || end == a + 1 || (size_t)(end - a - 1) >= sizeof(host))
			return at(e, n, "': '[' without ']' (IPv6 is written [::1]:161)", "key 'address' of '", t->name);
		memcpy(host, a + 1, (size_t)(end - a - 1));
		host[end - a - 1] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return at(e, n, "': expected ':PORT' after ']'", "key 'address' of '", t->name);
	} else {
		const char *c = strchr(a, ':');
		if (c && strchr(c + 1, ':'))
			return at(e, n, "': an IPv6 address is written in brackets: [::1]:161",
				  "key 'address' of '", t->name);
		size_t hl = c ? (size_t)(c - a) : strlen(a);
		if (hl >= sizeof(host))
			return at(e, n, "': host name too long", "key 'address' of '", t->name);
		memcpy(host, a, hl);
		host[hl] = '\0';
		port = c ? c + 1 : NULL;
	}
	if (!host[0] || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:%") != strlen(host))
		return at(e, n, "': not a host name or address", "key 'address' of '", t->name);
	unsigned long p = 161;
	if (port) {
		char *end;
		p = strtoul(port, &end, 10);
		if (!*port || *end || p < 1 || p > 65535)
			return at(e, n, "': the port must be 1 - 65535", "key 'address' of '", t->name);
	}
	snprintf(t->peer, sizeof(t->peer), v6 ? "udp6:[%s]:%lu" : "udp:%s:%lu", host, p);
	return 0;
}

/* How long net-snmp may wait for one request: it doubles the timeout at
 * each retry (timeout, 2 timeout, 4 timeout, ...). */
static int64_t tries_ns(int64_t timeout_ns, int retries)
{
	return timeout_ns * ((INT64_C(1) << (retries + 1)) - 1);
}

/* A v3 password into a key (Ku, RFC 3414 A.2); the password itself is
 * wiped. */
static int make_key(struct target *t, const struct cfg_node *n, const char *key, char *pass, u_char *ku,
		    size_t *ku_len, struct tally_err *e)
{
	size_t len = strlen(pass);
	int rc = 0;
	if (len < 8)
		rc = at(e, n, "' must be at least 8 characters (RFC 3414)", "key '", key);
	else {
		*ku_len = USM_AUTH_KU_LEN;
		if (generate_Ku(t->auth_proto, (u_int)t->auth_proto_len, (u_char *)pass, len, ku, ku_len) !=
		    SNMPERR_SUCCESS)
			rc = err_set(e, -EINVAL, "%s:%d:%d: key '%s' of target '%s': cannot make a key of it",
				     n->file, n->line, n->col, key, t->name);
	}
	explicit_bzero(pass, len);
	return rc;
}

static int parse_target(struct snmp *s, struct target *t, const struct cfg_node *n, const struct collector_env *env,
			struct tally_err *e)
{
	int type = 0, ver = 0, level = -1, auth = 1, priv = 0, rc;
	uint64_t retries = 1, rep = 25, rows = 10000;
	bool hr_given = false;
	char apass[256] = "", ppass[256] = "";

	t->interval_ns = env->interval_ns;
	t->timeout_ns = NS_PER_SEC;
	if (n->type != CFG_MAP)
		return at(e, n, "", "a target is a map with 'name' and 'address'", "");
	if ((rc = cfg_check_keys(n, "collectors.snmp.targets", target_keys, e)) ||
	    (rc = cfg_get_string(n, "name", t->name, sizeof(t->name), e)) ||
	    (rc = cfg_get_string(n, "address", t->address, sizeof(t->address), e)) ||
	    (rc = cfg_get_enum(n, "type", types, &type, e)) ||
	    (rc = cfg_get_enum(n, "version", versions, &ver, e)) ||
	    (rc = cfg_get_string(n, "community", t->community, sizeof(t->community), e)) ||
	    (rc = cfg_get_string(n, "user", t->user, sizeof(t->user), e)) ||
	    (rc = cfg_get_enum(n, "level", levels, &level, e)) ||
	    (rc = cfg_get_enum(n, "auth_protocol", auths, &auth, e)) ||
	    (rc = cfg_get_string(n, "auth_password", apass, sizeof(apass), e)) ||
	    (rc = cfg_get_enum(n, "priv_protocol", privs, &priv, e)) ||
	    (rc = cfg_get_string(n, "priv_password", ppass, sizeof(ppass), e)) ||
	    (rc = cfg_get_string(n, "context", t->context, sizeof(t->context), e)) ||
	    (rc = cfg_get_duration(n, "interval", NS_PER_SEC, 86400 * NS_PER_SEC, &t->interval_ns, e)) ||
	    (rc = cfg_get_duration(n, "timeout", 10 * (NS_PER_SEC / 1000), 60 * NS_PER_SEC, &t->timeout_ns, e)) ||
	    (rc = cfg_get_uint(n, "retries", 0, 10, &retries, e)) ||
	    (rc = cfg_get_uint(n, "max_repetitions", 1, 1000, &rep, e)) ||
	    (rc = cfg_get_uint(n, "max_rows", 1, 1000000, &rows, e)))
		goto out;
	t->view = type == 1 ? SNMP_VIEW_HOST : SNMP_VIEW_SWITCH;
	t->hr = t->view == SNMP_VIEW_HOST;
	hr_given = cfg_get(n, "host_resources") != NULL;
	if (hr_given && (rc = cfg_get_bool(n, "host_resources", &t->hr, e)))
		goto out;
	t->retries = (int)retries;
	t->max_rep = (int)rep;
	t->max_rows = rows;
	if (!t->name[0] || strspn(t->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
	    strlen(t->name)) {
		rc = at(e, n, "", "a target needs a 'name' of letters, digits, '.', '_' and '-' (at most 31)", "");
		goto out;
	}
	for (struct target *o = s->t; o < t; o++)
		if (!strcmp(o->name, t->name)) {
			rc = at(e, n, "' is given twice", "target name '", t->name);
			goto out;
		}
	if (!t->address[0]) {
		rc = at(e, n, "' needs an 'address' (host or host:port)", "target '", t->name);
		goto out;
	}
	if ((rc = parse_address(t, cfg_get(n, "address"), e)))
		goto out;
	if (t->interval_ns % env->interval_ns) {
		const struct cfg_node *k = cfg_get(n, "interval");
		rc = err_set(e, -EINVAL, "%s:%d:%d: key 'interval' of target '%s': must be a multiple of"
			     " tallyd.interval (%llds)", k->file, k->line, k->col, t->name,
			     (long long)(env->interval_ns / NS_PER_SEC));
		goto out;
	}
	/* a dead target must not hold up a cycle: all its tries fit in 3/4 of it */
	if (tries_ns(t->timeout_ns, t->retries) > env->interval_ns * 3 / 4) {
		const struct cfg_node *k = cfg_get(n, "timeout") ? cfg_get(n, "timeout") : n;
		rc = err_set(e, -EINVAL, "%s:%d:%d: target '%s': its tries take up to %.3f s (timeout, doubled at"
			     " each of the %d retries), more than 3/4 of tallyd.interval (%llds): a dead target"
			     " would hold up every cycle", k->file, k->line, k->col, t->name,
			     (double)tries_ns(t->timeout_ns, t->retries) / 1e9, t->retries,
			     (long long)(env->interval_ns / NS_PER_SEC));
		goto out;
	}
	if (ver == 0) {
		t->version = SNMP_VERSION_2c;
		if (!t->community[0]) {
			rc = at(e, n, "' (version 2c) needs a 'community'", "target '", t->name);
			goto out;
		}
		if (t->user[0] || level >= 0 || apass[0] || ppass[0]) {
			rc = at(e, n, "' (version 2c): 'user', 'level' and passwords are for version 3",
				"target '", t->name);
			goto out;
		}
		goto out;
	}
	t->version = SNMP_VERSION_3;
	if (t->community[0]) {
		rc = at(e, n, "' (version 3): 'community' is for version 2c", "target '", t->name);
		goto out;
	}
	if (!t->user[0] || level < 0) {
		rc = at(e, n, "' (version 3) needs a 'user' and a 'level' (noAuthNoPriv, authNoPriv,"
			" authPriv)", "target '", t->name);
		goto out;
	}
	static const oid *const auth_oids[] = { usmHMACMD5AuthProtocol, usmHMACSHA1AuthProtocol,
		usmHMAC128SHA224AuthProtocol, usmHMAC192SHA256AuthProtocol, usmHMAC256SHA384AuthProtocol,
		usmHMAC384SHA512AuthProtocol };
	t->level = level == 0 ? SNMP_SEC_LEVEL_NOAUTH : level == 1 ? SNMP_SEC_LEVEL_AUTHNOPRIV
		   : SNMP_SEC_LEVEL_AUTHPRIV;
	t->auth_proto = auth_oids[auth];
	t->auth_proto_len = 10;
	t->priv_proto = priv == 0 ? usmAESPrivProtocol : usmDESPrivProtocol;
	t->priv_proto_len = 10;
	if ((level >= 1) != !!apass[0] || (level == 2) != !!ppass[0]) {
		rc = at(e, n, "': level noAuthNoPriv takes no password, authNoPriv an 'auth_password',"
			" authPriv both 'auth_password' and 'priv_password'", "target '", t->name);
		goto out;
	}
	lib_init();
	if (level >= 1 && (rc = make_key(t, cfg_get(n, "auth_password"), "auth_password", apass, t->auth_ku,
					 &t->auth_ku_len, e)))
		goto out;
	if (level == 2 && (rc = make_key(t, cfg_get(n, "priv_password"), "priv_password", ppass, t->priv_ku,
					 &t->priv_ku_len, e)))
		goto out;
out:
	explicit_bzero(apass, sizeof(apass));
	explicit_bzero(ppass, sizeof(ppass));
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* labels: a map of plain values -> "k=v,k=v" sorted by key */
static int parse_labels(const struct cfg_node *lb, char *out, size_t len, struct tally_err *e)
{
	const char *kv[64];
	char buf[64][96];
	size_t n = 0, used = 0;
	if (lb->type != CFG_MAP)
		return at(e, lb, "", "key 'labels': a map of plain values expected", "");
	for (size_t k = 0; k < lb->n_kids; k++) {
		const struct cfg_node *l = lb->kids[k];
		if (n == 64 || l->type != CFG_SCALAR || strpbrk(l->key, ",=\"") || strpbrk(l->value, ",=\"") ||
		    (size_t)snprintf(buf[n], sizeof(buf[n]), "%s=%s", l->key, l->value) >= sizeof(buf[n]))
			return at(e, l, "': a plain value without ',', '=' or '\"' (at most 64 labels)",
				  "label '", l->key);
		kv[n] = buf[n];
		n++;
	}
	qsort(kv, n, sizeof(kv[0]), cmp_str);
	out[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		size_t w = (size_t)snprintf(out + used, len - used, "%s%s", k ? "," : "", kv[k]);
		if (w >= len - used)
			return at(e, lb, "", "key 'labels': too long together", "");
		used += w;
	}
	return 0;
}

static int parse_rules(struct snmp *s, const struct cfg_node *seq, struct tally_err *e)
{
	int rc;
	if (seq->type != CFG_SEQ)
		return at(e, seq, "", "key 'ports': a list of {target, if_name or if_alias, tenant} expected", "");
	s->rules = calloc(seq->n_kids ? seq->n_kids : 1, sizeof(*s->rules));
	if (!s->rules)
		return -ENOMEM;
	for (size_t i = 0; i < seq->n_kids; i++) {
		const struct cfg_node *r = seq->kids[i];
		struct snmp_rule *u = &s->rules[s->n_rules];
		const struct cfg_node *lb = NULL;
		if (r->type != CFG_MAP)
			return at(e, r, "", "a port rule is a map with 'target' and 'if_name' or 'if_alias'", "");
		if ((rc = cfg_check_keys(r, "collectors.snmp.ports", rule_keys, e)) ||
		    (rc = cfg_get_string(r, "target", u->target, sizeof(u->target), e)) ||
		    (rc = cfg_get_string(r, "if_name", u->if_name, sizeof(u->if_name), e)) ||
		    (rc = cfg_get_string(r, "if_alias", u->if_alias, sizeof(u->if_alias), e)) ||
		    (rc = cfg_get_string(r, "name", u->name, sizeof(u->name), e)) ||
		    (rc = cfg_get_string(r, "tenant", u->tenant, sizeof(u->tenant), e)) ||
		    (lb = cfg_get(r, "labels"), lb && (rc = parse_labels(lb, u->labels, sizeof(u->labels), e))))
			return rc;
		if (!u->target[0] || (!u->if_name[0] && !u->if_alias[0]))
			return at(e, r, "", "a port rule needs a 'target' and an 'if_name' or 'if_alias' pattern", "");
		if (!u->tenant[0])
			return at(e, r, "", "a port rule needs a 'tenant'", "");
		bool any = false;
		for (size_t k = 0; k < s->n_t; k++)
			any |= fnmatch(u->target, s->t[k].name, 0) == 0;
		if (!any)
			return at(e, cfg_get(r, "target"), "' matches no target", "key 'target': '", u->target);
		s->n_rules++;
	}
	return 0;
}

static void snmpc_free(void *state);
static void target_release(struct target *t);

static int snmpc_configure(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			  struct tally_err *e)
{
	struct snmp *s = calloc(1, sizeof(*s));
	const struct cfg_node *tg, *pr;
	int rc;
	if (!s)
		return -ENOMEM;
	s->cycle_ns = env->interval_ns;
	if ((rc = cfg_check_keys(cfg, "collectors.snmp", top_keys, e)))
		goto fail;
	tg = cfg_get(cfg, "targets");
	if (!tg || tg->type != CFG_SEQ || tg->n_kids == 0) {
		rc = err_set(e, -EINVAL, "%s: collectors.snmp needs 'targets': a list of {name, address, ...}",
			     cfg ? cfg->file : "config");
		if (tg)
			at(e, tg, "", "collectors.snmp needs 'targets': a list of {name, address, ...}", "");
		goto fail;
	}
	if (tg->n_kids > SNMP_MAX_TARGETS) {
		rc = at(e, tg, "", "more than 4096 targets", "");
		goto fail;
	}
	if (!(s->t = calloc(tg->n_kids, sizeof(*s->t)))) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < tg->n_kids; i++) {
		struct target *t = &s->t[i];
		t->last_due = -1;
		t->owner = s;
		s->n_t = i + 1;
		if ((rc = parse_target(s, t, tg->kids[i], env, e)))
			goto fail;
	}
	if ((pr = cfg_get(cfg, "ports")) && (rc = parse_rules(s, pr, e)))
		goto fail;
	*state = s;
	return 0;
fail:
	snmpc_free(s);
	return rc;
}

/* ---- sessions ---- */

static int on_answer(int op, netsnmp_session *ss, int reqid, netsnmp_pdu *pdu, void *magic);

static void session_base(netsnmp_session *b, struct target *t)
{
	snmp_sess_init(b);
	b->peername = (char *)t->peer;
	b->timeout = (long)(t->timeout_ns / 1000);
	b->retries = t->retries;
	b->callback = on_answer;
	/* net-snmp tells an authentication failure through the session's
	 * callback and magic, not the request's */
	b->callback_magic = (void *)t;
}

/* Take u out of net-snmp's user table (if it is there). usm_remove_user
 * leaves u's links as they were, and usm_free_user and usm_add_user would
 * follow them into the table: cleared. */
static void user_detach(struct usmUser *u)
{
	usm_remove_user(u);
	u->next = u->prev = NULL;
}

/* Free t's own user entry, out of the table first if it is installed. */
static void user_drop(struct target *t)
{
	if (!t->usr)
		return;
	if (usm_get_user(t->engine, t->engine_len, t->user) == t->usr)
		user_detach(t->usr);
	usm_free_user(t->usr);
	t->usr = NULL;
}

/* Open the poll session (v2c at once; v3 once the engine id is known, with
 * t->usr made, out of the table). Returns 0 or -EIO with the library's
 * reason in t->err. */
static int open_poll(struct target *t)
{
	netsnmp_session b;
	struct usmUser *held = NULL;
	int rc = 0;
	session_base(&b, t);
	b.version = t->version;
	if (t->version == SNMP_VERSION_2c) {
		b.community = (u_char *)t->community;
		b.community_len = strlen(t->community);
	} else {
		b.securityModel = SNMP_SEC_MODEL_USM;
		b.securityName = t->user;
		b.securityNameLen = strlen(t->user);
		b.securityLevel = t->level;
		b.securityEngineID = t->engine;
		b.securityEngineIDLen = t->engine_len;
		b.contextEngineID = t->engine;
		b.contextEngineIDLen = t->engine_len;
		b.contextName = t->context;
		b.contextNameLen = strlen(t->context);
		b.flags |= SNMP_FLAGS_DONT_PROBE; /* we know the engine: no blocking probe */
		if (t->level != SNMP_SEC_LEVEL_NOAUTH) {
			b.securityAuthProto = (oid *)t->auth_proto;
			b.securityAuthProtoLen = t->auth_proto_len;
			memcpy(b.securityAuthKey, t->auth_ku, t->auth_ku_len);
			b.securityAuthKeyLen = t->auth_ku_len;
		}
		if (t->level == SNMP_SEC_LEVEL_AUTHPRIV) {
			b.securityPrivProto = (oid *)t->priv_proto;
			b.securityPrivProtoLen = t->priv_proto_len;
			memcpy(b.securityPrivKey, t->priv_ku, t->priv_ku_len);
			b.securityPrivKeyLen = t->priv_ku_len;
		}
		/* net-snmp makes the session's user entry (as it opens it) only
		 * where the table has none for this engine and user: whatever
		 * holds the place now is set aside while ours is made */
		held = usm_get_user(t->engine, t->engine_len, t->user);
		if (held)
			user_detach(held);
	}
	t->ss = snmp_open(&b);
	explicit_bzero(b.securityAuthKey, sizeof(b.securityAuthKey));
	explicit_bzero(b.securityPrivKey, sizeof(b.securityPrivKey));
	if (!t->ss) {
		snprintf(t->err, sizeof(t->err), "cannot open a session: %s", snmp_api_errstring(b.s_snmp_errno));
		rc = -EIO;
		goto out;
	}
	/* net-snmp clears the flag once a session is open, and would then
	 * probe the agent synchronously before a send: the loop would stall.
	 * The agent's notInTimeWindow report gives its time instead, and
	 * net-snmp sends again with it. */
	t->ss->flags |= SNMP_FLAGS_DONT_PROBE;
	if (t->version == SNMP_VERSION_3) {
		if (create_user_from_session(t->ss) == SNMPERR_SUCCESS)
			t->usr = usm_get_user(t->engine, t->engine_len, t->user);
		if (!t->usr || t->usr == held) {
			t->usr = NULL;
			snprintf(t->err, sizeof(t->err), "cannot set up user '%s' for the agent's engine id", t->user);
			snmp_close(t->ss);
			t->ss = NULL;
			rc = -EIO;
			goto out;
		}
		user_detach(t->usr); /* installed when its walk begins */
	}
out:
	if (held)
		usm_add_user(held);
	return rc;
}

static int open_discovery(struct target *t)
{
	netsnmp_session b;
	session_base(&b, t);
	b.version = SNMP_VERSION_3;
	b.securityModel = SNMP_SEC_MODEL_USM;
	b.securityLevel = SNMP_SEC_LEVEL_NOAUTH;
	/* the agent reports its engine id before it looks at the user */
	b.securityName = t->user;
	b.securityNameLen = strlen(t->user);
	b.flags |= SNMP_FLAGS_DONT_PROBE;
	t->disc = snmp_open(&b);
	if (!t->disc) {
		snprintf(t->err, sizeof(t->err), "cannot open a session: %s", snmp_api_errstring(b.s_snmp_errno));
		return -EIO;
	}
	t->disc->flags |= SNMP_FLAGS_DONT_PROBE; /* see open_poll */
	return 0;
}

static int snmpc_open_all(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct snmp *s = state;
	lib_init();
	for (size_t i = 0; i < s->n_t; i++) {
		struct target *t = &s->t[i];
		int rc = t->version == SNMP_VERSION_3 ? 0 : open_poll(t);
		if (rc)
			return err_set(e, rc, "snmp target '%s' (%s): %s", t->name, t->address, t->err);
	}
	return 0;
}

/* ---- one poll ---- */

static void fail(struct target *t, bool timeout, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct target *t, bool timeout, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	t->err_timeout = timeout;
	t->active = false;
	t->ok = false;
}

static int64_t try_budget_ns(const struct target *t)
{
	/* and a little for the answer to be read */
	return tries_ns(t->timeout_ns, t->retries) + 200 * (NS_PER_SEC / 1000);
}

static void send_walk(struct target *t)
{
	netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
	if (!pdu) {
		fail(t, false, "out of memory");
		return;
	}
	t->n_asked = snmp_walk_pending(&t->walk, t->asked);
	t->asked_uptime = !t->walk.have_uptime;
	pdu->non_repeaters = t->asked_uptime ? 1 : 0;
	/* at least one row per request, at most what fits a reasonable answer */
	int rep = t->rep;
	if ((size_t)rep * t->n_asked > SNMP_VB_MAX - 1)
		rep = (int)((SNMP_VB_MAX - 1) / t->n_asked);
	pdu->max_repetitions = rep > 0 ? rep : 1;
	if (t->asked_uptime)
		snmp_add_null_var(pdu, (oid *)snmp_sysuptime_oid, SNMP_SYSUPTIME_LEN);
	for (size_t i = 0; i < t->n_asked; i++) {
		int c = t->asked[i];
		snmp_add_null_var(pdu, t->walk.last[c], t->walk.last_len[c]);
	}
	t->requests++;
	t->deadline_mono = time_mono_ns() + try_budget_ns(t);
	t->reqid = pdu->reqid;
	if (!snmp_async_send(t->ss, pdu, on_answer, t)) {
		fail(t, false, "cannot send: %s", snmp_api_errstring(t->ss->s_snmp_errno));
		t->rediscover = t->version == SNMP_VERSION_3;
		snmp_free_pdu(pdu);
	}
}

static void send_probe(struct target *t)
{
	netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
	if (!pdu || !(pdu->securityName = strdup(""))) {
		snmp_free_pdu(pdu);
		fail(t, false, "out of memory");
		return;
	}
	/* RFC 3414 4: no user, no authentication, reportable */
	pdu->version = SNMP_VERSION_3;
	pdu->securityNameLen = 0;
	pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
	pdu->securityModel = SNMP_SEC_MODEL_USM;
	t->requests++;
	t->deadline_mono = time_mono_ns() + try_budget_ns(t);
	t->reqid = pdu->reqid;
	if (!snmp_async_send(t->disc, pdu, on_answer, t)) {
		fail(t, false, "cannot send: %s", snmp_api_errstring(t->disc->s_snmp_errno));
		snmp_free_pdu(pdu);
	}
}

static const char *report_text(int type)
{
	switch (type) {
	case SNMPERR_UNKNOWN_USER_NAME: return "unknown user (usmStatsUnknownUserNames)";
	case SNMPERR_AUTHENTICATION_FAILURE: return "authentication failure: wrong auth_password or"
						    " auth_protocol (usmStatsWrongDigests)";
	case SNMPERR_DECRYPTION_ERR: return "decryption error: wrong priv_password or priv_protocol"
					    " (usmStatsDecryptionErrors)";
	case SNMPERR_UNSUPPORTED_SEC_LEVEL: return "the user does not have this security level"
						   " (usmStatsUnsupportedSecLevels)";
	case SNMPERR_UNKNOWN_ENG_ID: return "unknown engine id (usmStatsUnknownEngineIDs)";
	case SNMPERR_NOT_IN_TIME_WINDOW: return "not in time window (usmStatsNotInTimeWindows)";
	default: return "the agent refused the request (a report)";
	}
}

/* Do a and b (v3, engine ids known) name the same user of the same engine:
 * one entry of net-snmp's user table? */
static bool same_user(const struct target *a, const struct target *b)
{
	return a->version == SNMP_VERSION_3 && b->version == SNMP_VERSION_3 && a->engine_len &&
	       a->engine_len == b->engine_len && !memcmp(a->engine, b->engine, a->engine_len) &&
	       !strcmp(a->user, b->user);
}

/* Would a's entry serve b's requests and answers as well as b's own? */
static bool same_keys(const struct target *a, const struct target *b)
{
	return a->level == b->level && a->auth_proto == b->auth_proto && a->auth_ku_len == b->auth_ku_len &&
	       !memcmp(a->auth_ku, b->auth_ku, a->auth_ku_len) &&
	       (a->level != SNMP_SEC_LEVEL_AUTHPRIV ||
		(a->priv_proto == b->priv_proto && a->priv_ku_len == b->priv_ku_len &&
		 !memcmp(a->priv_ku, b->priv_ku, a->priv_ku_len)));
}

/* Begin t's walk (its session open), with its own user entry installed in
 * net-snmp's table when t authenticates. A target that is walking now
 * with the same user and engine but other keys holds the entry: t waits
 * (P_WAIT) and snmpc_read calls this again once that walk has ended. A
 * noAuthNoPriv target signs nothing: any entry of its user serves it, and
 * it installs its own only where there is none. */
static void begin_walk(struct target *t)
{
	if (t->version == SNMP_VERSION_3 && t->usr) {
		bool auth = t->level != SNMP_SEC_LEVEL_NOAUTH;
		struct usmUser *cur = usm_get_user(t->engine, t->engine_len, t->user);
		const struct snmp *s = t->owner;
		for (size_t i = 0; auth && i < s->n_t; i++) {
			const struct target *o = &s->t[i];
			if (o != t && o->active && o->phase == P_WALK && o->level != SNMP_SEC_LEVEL_NOAUTH &&
			    same_user(o, t) && !same_keys(o, t)) {
				t->phase = P_WAIT;
				str_copy(t->waits_for, o->name, sizeof(t->waits_for));
				t->deadline_mono = INT64_MAX; /* the cycle's own limit applies */
				return;
			}
		}
		if (cur != t->usr && (auth || !cur)) {
			if (cur)
				user_detach(cur); /* its owner installs it again for its next walk */
			usm_add_user(t->usr);
		}
	}
	t->phase = P_WALK;
	send_walk(t);
}

/* The engine id a v3 agent reported: open the poll session with it. */
static void discovered(struct target *t, const netsnmp_pdu *pdu)
{
	if (!pdu->securityEngineID || pdu->securityEngineIDLen == 0 ||
	    pdu->securityEngineIDLen > sizeof(t->engine)) {
		fail(t, false, "engine id discovery: the answer carried no usable engine id");
		return;
	}
	memcpy(t->engine, pdu->securityEngineID, pdu->securityEngineIDLen);
	t->engine_len = pdu->securityEngineIDLen;
	if (open_poll(t)) {
		fail(t, false, "%s", t->err);
		return;
	}
	begin_walk(t);
}

static int on_answer(int op, netsnmp_session *ss, int reqid, netsnmp_pdu *pdu, void *magic)
{
	struct target *t = magic;
	struct tally_err e = { 0 };
	(void)ss;
	/* a security error (a report of wrong digests) comes through the
	 * session without a request id: the session's one request it is */
	bool sec = op == NETSNMP_CALLBACK_OP_SEC_ERROR && reqid == 0;
	if (!t || !t->active || t->phase == P_WAIT || (reqid != t->reqid && !sec))
		return 1; /* the answer to a request given up on */
	if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) {
		fail(t, true, "timeout: no answer in %d tr%s (%.3f s)%s", t->retries + 1,
		     t->retries ? "ies" : "y", (double)tries_ns(t->timeout_ns, t->retries) / 1e9,
		     t->version == SNMP_VERSION_2c ? " (target down, or wrong community)"
		     : t->level == SNMP_SEC_LEVEL_AUTHPRIV ? " (target down, or wrong priv_password: the agent"
		       " drops what it cannot decrypt)" : " (target down)");
		return 1;
	}
	if (op == NETSNMP_CALLBACK_OP_RESEND)
		return 1; /* a retry went out: still waiting */
	/* the answer to a discovery probe is a report (usmStatsUnknownEngineIDs)
	 * that carries the engine id, whichever way net-snmp hands it over */
	if (t->phase == P_DISCOVER && pdu &&
	    (op == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || op == NETSNMP_CALLBACK_OP_SEC_ERROR)) {
		discovered(t, pdu);
		return 1;
	}
	if (op == NETSNMP_CALLBACK_OP_SEC_ERROR) {
		int type = pdu && pdu->command == SNMP_MSG_REPORT ? snmpv3_get_report_type(pdu)
			   : ss ? ss->s_snmp_errno : 0;
		if (type == SNMPERR_NOT_IN_TIME_WINDOW)
			return 1;
		fail(t, false, "%s", report_text(type));
		return 1;
	}
	if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !pdu) {
		fail(t, false, "the request failed (callback op %d: %s)", op,
		     snmp_api_errstring(ss ? ss->s_snmp_errno : 0));
		return 1;
	}
	if (t->phase == P_DISCOVER) {
		discovered(t, pdu);
		return 1;
	}
	if (pdu->command == SNMP_MSG_REPORT) {
		int type = snmpv3_get_report_type(pdu);
		if (type == SNMPERR_NOT_IN_TIME_WINDOW)
			return 1; /* net-snmp sends again with the agent's time */
		t->rediscover = type == SNMPERR_UNKNOWN_ENG_ID;
		fail(t, false, "%s", report_text(type));
		return 1;
	}
	if (pdu->command != SNMP_MSG_RESPONSE) {
		fail(t, false, "an answer of the wrong kind (PDU type 0x%02x)", (unsigned)pdu->command);
		return 1;
	}
	if (pdu->errstat == SNMP_ERR_TOOBIG && t->rep > 1) {
		t->rep /= 2; /* the agent cannot fit that many rows: ask fewer */
		send_walk(t);
		return 1;
	}
	if (pdu->errstat != SNMP_ERR_NOERROR) {
		fail(t, false, "the agent answered %s", snmp_errstring(pdu->errstat));
		return 1;
	}
	size_t n = 0;
	for (netsnmp_variable_list *v = pdu->variables; v && n < SNMP_VB_MAX; v = v->next_variable)
		n++;
	if (n > t->cap_vb) {
		struct snmp_vb *p = realloc(t->vb, n * sizeof(*p));
		if (!p) {
			fail(t, false, "out of memory");
			return 1;
		}
		t->vb = p;
		t->cap_vb = n;
	}
	size_t k = 0;
	for (netsnmp_variable_list *v = pdu->variables; v && k < n; v = v->next_variable, k++) {
		struct snmp_vb *b = &t->vb[k];
		memset(b, 0, sizeof(*b));
		b->oid = v->name;
		b->oid_len = v->name_length;
		b->type = v->type;
		switch (v->type) {
		case ASN_INTEGER:
			if (v->val.integer && v->val_len >= sizeof(long))
				b->num = (uint64_t)(int64_t)*v->val.integer;
			else
				b->type = SNMP_T_NULL;
			break;
		case ASN_COUNTER:
		case ASN_GAUGE:
		case ASN_TIMETICKS:
			if (v->val.integer && v->val_len >= sizeof(long))
				b->num = (uint64_t)(unsigned long)*v->val.integer;
			else
				b->type = SNMP_T_NULL;
			break;
		case ASN_COUNTER64:
			if (v->val.counter64 && v->val_len >= sizeof(struct counter64))
				b->num = (uint64_t)(v->val.counter64->high & 0xffffffffUL) << 32 |
					 (v->val.counter64->low & 0xffffffffUL);
			else
				b->type = SNMP_T_NULL;
			break;
		case ASN_OCTET_STR:
			b->str = v->val.string;
			b->len = v->val_len;
			break;
		case ASN_OBJECT_ID:
			b->objid = v->val.objid;
			b->len = v->val_len / sizeof(oid);
			break;
		default:
			break;
		}
	}
	if (t->asked_uptime)
		t->read_ns = time_now_ns();
	if (snmp_walk_feed(&t->walk, t->asked, t->n_asked, t->asked_uptime, t->vb, k, &e)) {
		fail(t, false, "%s", e.msg);
		return 1;
	}
	if (snmp_walk_finished(&t->walk)) {
		t->active = false;
		t->ok = true;
		return 1;
	}
	/* a table we keep at most max_rows of takes at most this many requests */
	if ((size_t)t->requests > t->max_rows + 8) {
		fail(t, false, "the walk did not end after %d requests", t->requests);
		return 1;
	}
	send_walk(t);
	return 1;
}

static void start(struct target *t)
{
	uint32_t cols = SNMP_COLS_IF | (t->hr ? SNMP_COLS_HR : 0u);
	t->err[0] = '\0';
	t->err_timeout = t->rediscover = false;
	t->ok = false;
	t->requests = 0;
	t->rep = t->max_rep;
	t->polls++;
	t->t0_mono = time_mono_ns();
	if (t->walk_ready)
		snmp_walk_release(&t->walk);
	t->walk_ready = false;
	if (snmp_walk_init(&t->walk, cols, t->max_rows)) {
		fail(t, false, "out of memory");
		return;
	}
	t->walk_ready = true;
	t->active = true;
	if (t->version == SNMP_VERSION_3 && !t->ss) {
		/* a fresh discovery session each time: net-snmp keeps what the
		 * last answer said on a session, and an agent that restarted
		 * with a new engine id would not answer a probe naming the old */
		if (t->disc)
			snmp_close(t->disc);
		t->disc = NULL;
		if (open_discovery(t)) {
			fail(t, false, "%s", t->err);
			return;
		}
		t->phase = P_DISCOVER;
		send_probe(t);
	} else {
		begin_walk(t);
	}
}

/* ---- readings -> sink ---- */

static struct port *port_get(struct target *t, const char *name)
{
	size_t lo = 0, hi = t->n_ports;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->ports[mid].name, name);
		if (!c)
			return &t->ports[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (vec_reserve((void **)&t->ports, &t->cap_ports, t->n_ports + 1, sizeof(*t->ports), 16))
		return NULL;
	memmove(&t->ports[lo + 1], &t->ports[lo], (t->n_ports - lo) * sizeof(*t->ports));
	memset(&t->ports[lo], 0, sizeof(*t->ports));
	str_copy(t->ports[lo].name, name, sizeof(t->ports[lo].name));
	t->n_ports++;
	return &t->ports[lo];
}

static const struct snmp_rule *match(const struct snmp *s, const struct target *t, const struct snmp_row *r,
				     const char *name)
{
	for (size_t i = 0; i < s->n_rules; i++) {
		const struct snmp_rule *u = &s->rules[i];
		if (fnmatch(u->target, t->name, 0) == 0 &&
		    (!u->if_name[0] || fnmatch(u->if_name, name, 0) == 0) &&
		    (!u->if_alias[0] || fnmatch(u->if_alias, r->alias, 0) == 0))
			return u;
	}
	return NULL;
}

static const char *row_name(const struct snmp_row *r)
{
	return r->name[0] ? r->name : r->descr;
}

static int cmp_row_name(const void *a, const void *b)
{
	return strcmp(row_name(*(const struct snmp_row *const *)a), row_name(*(const struct snmp_row *const *)b));
}

static void put_samples(struct target *t, const struct sink *sink, const struct sample *smp, size_t n,
			struct sink_status *ss)
{
	for (size_t i = 0; i < n; i++)
		sink_note(ss, sink->sample(sink->ctx, t->name, &smp[i]));
}

/* Send m when it differs from what was last sent (its time aside). */
static void send_meta(const struct target *t, const struct sink *sink, const struct resource_meta *m,
		      struct resource_meta *sent, struct sink_status *ss)
{
	struct resource_meta cmp = *sent;
	cmp.time_ns = m->time_ns;
	if (memcmp(&cmp, m, sizeof(*m)) && sink_note(ss, sink->meta(sink->ctx, t->name, m)) == 0)
		*sent = *m;
}

/* A finished walk into samples and metadata. */
static void deliver(struct snmp *s, struct target *t, const struct sink *sink)
{
	const struct snmp_walk *w = &t->walk;
	struct snmp_poll_ctx cx = { .now_ns = t->read_ns, .uptime_cs = w->uptime_cs, .view = t->view };
	cx.boot_ns = cx.now_ns - (int64_t)w->uptime_cs * 10000000;
	cx.rebooted = t->have_prev && snmp_rebooted(t->prev_uptime, w->uptime_cs, cx.now_ns - t->prev_ns);
	if (cx.rebooted)
		complain(&t->note, LOG_INFO, "snmp %s: sysUpTime went back (the agent restarted): counters that"
			 " went down count from its start", t->name);

	/* ports by name: a name given to two rows identifies neither */
	size_t n_if = 0;
	const struct snmp_row **by = malloc((w->n_rows ? w->n_rows : 1) * sizeof(*by));
	if (!by) {
		complain(&t->fail, LOG_WARN, "snmp %s: out of memory", t->name);
		return;
	}
	for (size_t i = 0; i < w->n_rows; i++)
		if (w->rows[i].table == ST_IF)
			by[n_if++] = &w->rows[i];
	qsort(by, n_if, sizeof(*by), cmp_row_name);
	uint64_t skipped = 0, dup = 0, only32 = 0;
	for (size_t i = 0; i < n_if; i++) {
		const struct snmp_row *r = by[i];
		const char *name = row_name(r);
		char res[TALLY_ID_MAX];
		if ((i + 1 < n_if && !strcmp(name, row_name(by[i + 1]))) ||
		    (i > 0 && !strcmp(name, row_name(by[i - 1])))) {
			dup++;
			continue;
		}
		if (!name[0] || (size_t)snprintf(res, sizeof(res), "%s:%s", t->name, name) >= sizeof(res)) {
			skipped++;
			continue;
		}
		struct port *p = port_get(t, name);
		if (!p) {
			skipped++;
			continue;
		}
		const struct snmp_rule *u = match(s, t, r, name);
		struct resource_meta m;
		memset(&m, 0, sizeof(m));
		str_copy(m.resource, res, sizeof(m.resource));
		str_copy(m.type, "interface", sizeof(m.type));
		if (u && u->name[0])
			str_copy(m.name, u->name, sizeof(m.name));
		else if (r->alias[0])
			snprintf(m.name, sizeof(m.name), "%s (%s)", name, r->alias);
		else
			str_copy(m.name, name, sizeof(m.name));
		if (u) {
			str_copy(m.tenant, u->tenant, sizeof(m.tenant));
			str_copy(m.labels, u->labels, sizeof(m.labels));
		}
		m.time_ns = cx.now_ns;
		send_meta(t, sink, &m, &p->sent, &s->ss);
		struct snmp_port_note note;
		size_t n = snmp_port_samples(&p->st, r, res, &cx, s->buf, &note);
		put_samples(t, sink, s->buf, n, &s->ss);
		if (note.discontinuity)
			t->discontinuities++;
		only32 += note.only32;
	}
	free(by);
	if (dup || skipped)
		complain(&t->note, LOG_WARN, "snmp %s: %llu port(s) left out: %llu with a name another port"
			 " has too, %llu without a printable ifName/ifDescr or too long for an id", t->name,
			 (unsigned long long)(dup + skipped), (unsigned long long)dup,
			 (unsigned long long)skipped);
	t->skipped_ports = dup + skipped;
	if (only32 && !t->warned32) {
		t->warned32 = true;
		log_msg(LOG_WARN, "snmp %s: %llu port(s) have no 64-bit counters (ifHCInOctets): their 32-bit"
			" octets go to if.*.bytes32 for monitoring (a wrap every 34 s at 1 Gbit/s if polled"
			" slower), never to the billed if.*.bytes", t->name, (unsigned long long)only32);
	}
	if (w->truncated || w->bad_type || w->bad_index || w->not_increasing || w->bad_string)
		complain(&t->note, LOG_WARN, "snmp %s: answers with %s%u value(s) of the wrong type, %u bad"
			 " index(es), %u OID(s) out of order, %u unprintable string(s): left out", t->name,
			 w->truncated ? "more rows than max_rows (the rest left out), " : "", w->bad_type,
			 w->bad_index, w->not_increasing, w->bad_string);
	if (t->hr) {
		struct resource_meta m;
		memset(&m, 0, sizeof(m));
		str_copy(m.resource, t->name, sizeof(m.resource));
		str_copy(m.type, "host", sizeof(m.type));
		str_copy(m.name, t->name, sizeof(m.name));
		m.time_ns = cx.now_ns;
		send_meta(t, sink, &m, &t->host_sent, &s->ss);
		size_t n = snmp_host_samples(w, t->name, cx.now_ns, s->buf, s->cap_buf);
		put_samples(t, sink, s->buf, n, &s->ss);
	}
	t->have_prev = true;
	t->prev_uptime = w->uptime_cs;
	t->prev_ns = cx.now_ns;
}

static bool due(const struct target *t, int64_t now_ns)
{
	return now_ns / t->interval_ns != t->last_due;
}

static int snmpc_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct snmp *s = state;
	size_t polled = 0, ok = 0, active = 0;
	netsnmp_large_fd_set fds;

	memset(&s->ss, 0, sizeof(s->ss));
	int64_t give_up = time_mono_ns() + s->cycle_ns * 3 / 4;

	for (size_t i = 0; i < s->n_t; i++) {
		struct target *t = &s->t[i];
		t->active = t->ok = false;
		if (!due(t, now_ns))
			continue;
		t->last_due = now_ns / t->interval_ns;
		polled++;
		start(t);
		active += t->active;
	}
	netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
	while (active) {
		int maxfd = 0, block = 0;
		struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };
		NETSNMP_LARGE_FD_ZERO(&fds);
		snmp_select_info2(&maxfd, &fds, &tv, &block);
		/* wake for our own deadlines too */
		int64_t now = time_mono_ns(), next = give_up;
		for (size_t i = 0; i < s->n_t; i++)
			if (s->t[i].active && s->t[i].deadline_mono < next)
				next = s->t[i].deadline_mono;
		int64_t wait = next - now;
		if (wait < 0)
			wait = 0;
		if (block || (int64_t)tv.tv_sec * NS_PER_SEC + tv.tv_usec * 1000 > wait) {
			tv.tv_sec = wait / NS_PER_SEC;
			tv.tv_usec = (wait % NS_PER_SEC) / 1000;
		}
		int n = netsnmp_large_fd_set_select(maxfd, &fds, NULL, NULL, &tv);
		if (n > 0)
			snmp_read2(&fds);
		else if (n == 0)
			snmp_timeout();
		else if (errno != EINTR)
			break;
		/* targets waiting for a user entry another walk held */
		for (size_t i = 0; i < s->n_t; i++)
			if (s->t[i].active && s->t[i].phase == P_WAIT)
				begin_walk(&s->t[i]);
		now = time_mono_ns();
		active = 0;
		for (size_t i = 0; i < s->n_t; i++) {
			struct target *t = &s->t[i];
			if (!t->active)
				continue;
			if (now >= give_up && t->phase == P_WAIT)
				fail(t, true, "timeout: waited until 3/4 of tallyd's interval for target '%s' to end"
				     " its walk (user '%s' of the same engine id with other keys: net-snmp keeps one"
				     " key per user and engine, so the two walk one after the other)",
				     t->waits_for, t->user);
			else if (now >= give_up)
				fail(t, true, "timeout: the poll did not finish within 3/4 of tallyd's interval");
			else if (now >= t->deadline_mono)
				fail(t, true, "timeout: no answer in %d tr%s (%.3f s)", t->retries + 1,
				     t->retries ? "ies" : "y", (double)tries_ns(t->timeout_ns, t->retries) / 1e9);
			active += t->active;
		}
	}
	netsnmp_large_fd_set_cleanup(&fds);

	for (size_t i = 0; i < s->n_t; i++) {
		struct target *t = &s->t[i];
		if (t->last_due != now_ns / t->interval_ns || t->active)
			continue;
		if (!t->walk_ready)
			continue;
		t->response_s = (double)(time_mono_ns() - t->t0_mono) / 1e9;
		if (t->ok) {
			ok++;
			t->up = true;
			t->last_success_ns = t->read_ns;
			deliver(s, t, sink);
			if (t->fail.window_ns)
				complaint_clear(&t->fail, "snmp %s (%s): answering again", t->name, t->address);
			t->said[0] = '\0';
		} else {
			t->up = false;
			if (t->err_timeout)
				t->timeouts++;
			else
				t->errors++;
			/* said once per window; but an error that says more than a
			 * timeout (an agent that answers after all, to refuse us) is
			 * said at once, and a timeout never hides it again */
			if (strcmp(t->err, t->said) && !t->err_timeout &&
			    (!t->said[0] || !strncmp(t->said, "timeout", 7))) {
				t->fail.next_ns = 0;
			}
			if (!t->said[0] || !t->err_timeout)
				str_copy(t->said, t->err, sizeof(t->said));
			complain(&t->fail, LOG_WARN, "snmp %s (%s): %s", t->name, t->address, t->err);
			/* a v3 agent that restarted may have a new engine id, or
			 * boots we do not know: discover it again next time */
			if (t->version == SNMP_VERSION_3 && t->ss && (t->err_timeout || t->rediscover)) {
				snmp_close(t->ss);
				t->ss = NULL;
				user_drop(t);
				t->engine_len = 0;
			}
		}
		snmp_walk_release(&t->walk);
		t->walk_ready = false;
	}
	if (polled && !ok)
		return err_set(e, -EIO, "none of the %zu target(s) polled answered", polled);
	return sink_status_err(&s->ss, "snmp", e);
}

/* ---- self-metrics ---- */

static void snmpc_metrics(void *state, void (*put)(void *ctx, const struct collector_metric *m), void *ctx)
{
	struct snmp *s = state;
	static const struct {
		const char *name, *help;
		bool counter;
	} fam[] = {
		{ "tally_snmp_up", "1 when the target's last poll succeeded.", false },
		{ "tally_snmp_last_success_timestamp_seconds", "Wall-clock time of the target's last successful poll (0: none yet).", false },
		{ "tally_snmp_response_seconds", "Wall time the target's last poll took.", false },
		{ "tally_snmp_polls", "Polls of the target started.", true },
		{ "tally_snmp_timeouts", "Polls of the target that timed out.", true },
		{ "tally_snmp_errors", "Polls of the target that failed otherwise (authentication, protocol).", true },
		{ "tally_snmp_discontinuities", "Port counters the target said were discontinuous (ifIndex or ifCounterDiscontinuityTime changed).", true },
	};
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++)
		for (size_t i = 0; i < s->n_t; i++) {
			const struct target *t = &s->t[i];
			struct collector_metric m = { .name = fam[f].name, .help = fam[f].help, .counter = fam[f].counter };
			snprintf(m.labels, sizeof(m.labels), "target=%s", t->name);
			switch (f) {
			case 0: m.value = t->up; break;
			case 1: m.value = (double)t->last_success_ns / 1e9; break;
			case 2: m.value = t->response_s; break;
			case 3: m.value = (double)t->polls; break;
			case 4: m.value = (double)t->timeouts; break;
			case 5: m.value = (double)t->errors; break;
			default: m.value = (double)t->discontinuities; break;
			}
			put(ctx, &m);
		}
}

static void snmpc_free(void *state)
{
	struct snmp *s = state;
	if (!s)
		return;
	for (size_t i = 0; i < s->n_t; i++)
		target_release(&s->t[i]);
	free(s->t);
	free(s->rules);
	free(s->buf);
	free(s);
}

/* Release what one target holds (its sessions, buffers, keys). */
static void target_release(struct target *t)
{
	t->active = false;
	if (t->ss)
		snmp_close(t->ss);
	if (t->disc)
		snmp_close(t->disc);
	user_drop(t);
	if (t->walk_ready)
		snmp_walk_release(&t->walk);
	free(t->vb);
	free(t->ports);
	explicit_bzero(t->auth_ku, sizeof(t->auth_ku));
	explicit_bzero(t->priv_ku, sizeof(t->priv_ku));
	explicit_bzero(t->community, sizeof(t->community));
	memset(t, 0, sizeof(*t));
}

/* Whether a and b are the same agent asked the same way: what a running
 * target keeps across a reload (its sessions, engine id, last counters). */
static bool same_agent(const struct target *a, const struct target *b)
{
	return !strcmp(a->peer, b->peer) && a->version == b->version && a->view == b->view &&
	       !strcmp(a->community, b->community) && !strcmp(a->user, b->user) && a->level == b->level &&
	       a->auth_proto == b->auth_proto && a->priv_proto == b->priv_proto &&
	       a->auth_ku_len == b->auth_ku_len && a->priv_ku_len == b->priv_ku_len &&
	       !memcmp(a->auth_ku, b->auth_ku, a->auth_ku_len) && !memcmp(a->priv_ku, b->priv_ku, a->priv_ku_len) &&
	       !strcmp(a->context, b->context);
}

/* SIGHUP (collector.h): the targets and the port rules of the new config.
 * A target of the same name asking the same agent the same way keeps its
 * sessions and last readings and takes the new interval, timeout,
 * retries, max_repetitions, max_rows and host_resources; any other target
 * of the new config starts as at a start of tallyd (its first poll a
 * baseline, as after a restart: the ledger holds the last readings), and
 * a target no longer configured is closed. Between two reads no poll is
 * in flight; the sessions of a kept target are opened again (v3: its
 * engine id is discovered again at its next poll). */
static int snmpc_reload(void *state, void *fresh, struct tally_err *e)
{
	struct snmp *s = state, *f = fresh;
	struct target *t = calloc(f->n_t ? f->n_t : 1, sizeof(*t));
	bool *kept = calloc(s->n_t ? s->n_t : 1, sizeof(*kept));
	if (!t || !kept) {
		free(t);
		free(kept);
		return err_set(e, -ENOMEM, "snmp: out of memory reloading the targets");
	}
	for (size_t i = 0; i < f->n_t; i++) {
		struct target *nt = &f->t[i];
		size_t j = 0;
		while (j < s->n_t && (kept[j] || strcmp(s->t[j].name, nt->name) || !same_agent(&s->t[j], nt)))
			j++;
		if (j < s->n_t) {
			/* its sessions carry its address (callback_magic): closed
			 * here, opened again at its new place below */
			struct target *ot = &s->t[j];
			if (ot->ss)
				snmp_close(ot->ss);
			if (ot->disc)
				snmp_close(ot->disc);
			ot->ss = ot->disc = NULL;
			t[i] = *ot;
			kept[j] = true;
			t[i].interval_ns = nt->interval_ns;
			t[i].timeout_ns = nt->timeout_ns;
			t[i].retries = nt->retries;
			t[i].max_rep = nt->max_rep;
			t[i].max_rows = nt->max_rows;
			t[i].hr = nt->hr;
			target_release(nt);
		} else {
			t[i] = *nt;          /* moved: fresh gives it up below */
			memset(nt, 0, sizeof(*nt));
		}
		/* v2c polls on one session; v3 discovers its engine at the poll */
		if (t[i].version != SNMP_VERSION_3)
			(void)open_poll(&t[i]);   /* a failure is said at its first poll */
	}
	for (size_t j = 0; j < s->n_t; j++)
		if (!kept[j])
			target_release(&s->t[j]);
	free(kept);
	free(s->t);
	s->t = t;
	s->n_t = f->n_t;
	f->n_t = 0;                  /* every target of fresh was moved or released */
	struct snmp_rule *r = s->rules;
	size_t nr = s->n_rules;
	s->rules = f->rules;
	s->n_rules = f->n_rules;
	f->rules = r;                /* freed with fresh */
	f->n_rules = nr;
	return 0;
}

static int snmpc_init(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct snmp *s = state;
	s->cap_buf = 4096;
	if (!(s->buf = calloc(s->cap_buf, sizeof(*s->buf))))
		return -ENOMEM;
	return snmpc_open_all(state, resume_ns, e);
}

const struct collector_ops snmp_collector = {
	.name = "snmp",
	.configure = snmpc_configure,
	.init = snmpc_init,
	.read = snmpc_read,
	.free = snmpc_free,
	.metrics = snmpc_metrics,
	.reload = snmpc_reload,
};
