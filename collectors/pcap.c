/*
 * pcap.c: per-VM traffic by class from packet captures (libpcap).
 *
 * Live: every configured interface (VM taps, a bridge, a mirror port) is
 * opened with libpcap's defaults, which on Linux are TPACKET_V3: a ring of
 * buffer_size bytes the kernel fills block by block, read without copies.
 * The snap length is just the headers (snaplen), immediate mode is off (a
 * block is handed over when it is full or `timeout` old), an optional BPF
 * filter runs in the kernel. Capture threads (`threads`, one by default)
 * poll their interfaces and count every frame as it comes (pktclass.c)
 * into per-NIC cumulative counters; read(), once per interval, sends the
 * counters as they are. A ring that must hold a whole interval would need a
 * gigabyte at a million packets per second, so the counting never waits for
 * read(). A capture whose interface went away (a tap of a stopped VM) is
 * closed by its thread and opened again by read() when the interface is
 * back (that needs CAP_NET_RAW, kept for it when tallyd drops root).
 *
 * Offline (`file`): a pcap or pcapng file, read by read() up to the time it
 * is asked for, so a fast-forward run bills each packet at its own time;
 * the bench and the oracle tests use it.
 *
 * What read() sends (docs/meters.md):
 * - per NIC of the mapping file (resource = the VM's uuid, device = the
 *   NIC's MAC), per class and direction, network.<class>.incoming/outgoing
 *   .bytes/.packets once the series has counted anything, then every read;
 * - per capture (resource "<agent_id>:pcap", device = interface or file
 *   name): pcap.received.packets (frames read), pcap.unattributed.packets
 *   (frames of no NIC), pcap.dropped.packets (the kernel's drops, the ring
 *   was full) and pcap.ifdropped.packets (the interface's), from
 *   pcap_stats(); a drop is also said once per back-off window.
 * Counters start at zero when the capture opens, which is their origin
 * (rule 3: the first reading counts from there); offline, the first
 * packet's time. A restart of tallyd starts them again (a new life), and
 * what passed while tallyd was down was not seen.
 *
 * Privileges: opening a capture needs CAP_NET_RAW. Run as root with
 * `user`, tallyd becomes that user (and its groups) once the captures are
 * open, keeping CAP_NET_RAW only, in the thread that reopens captures
 * (every other thread loses every capability); or run it as an unprivileged
 * user with CAP_NET_RAW (systemd AmbientCapabilities=CAP_NET_RAW).
 */
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "log.h"
#include "pcap_internal.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PCAP_MAX_IFS 256
#define PCAP_MAX_THREADS 16
#define PCAP_STATS_EVERY_NS (100 * 1000000LL)

enum if_state { IF_CLOSED = 0, IF_OPEN, IF_DEAD };

struct pcs;

/* One capture: an interface, or the file. */
struct cap {
	char name[64];               /* interface name, or the file's base name */
	int bound;                   /* the NIC whose tap it is, -1 */
	int state;                   /* enum if_state, atomic: IF_OPEN hands h to the thread */
	pcap_t *h;                   /* the thread's while IF_OPEN, read()'s otherwise */
	struct pcs *s;
	struct pc_tally *tally;      /* its thread's counters */
	uint64_t received;           /* frames read, packets (atomic) */
	uint64_t unattributed;       /* of which no NIC's, packets (atomic) */
	uint64_t drop, ifdrop;       /* packets, over every handle of it (atomic) */
	uint64_t drop_base, ifdrop_base;   /* thread: of the handles closed before */
	int64_t stats_mono_ns;       /* thread: last pcap_stats() */
	char why[PCAP_ERRBUF_SIZE];  /* why it closed, set before IF_DEAD */
	uint64_t drop_said;          /* read(): drops already complained of */
	struct complaint fail, drops;
};

struct pcap_thr {
	pthread_t t;
	int started;
	int k;                       /* its interfaces are those with index % n_thr == k */
	struct pcs *s;
	struct pc_tally tally;
};

/* The pcap_pkthdr and bytes of a packet read past the time asked for. */
struct pending {
	struct pcap_pkthdr h;
	uint8_t *data;
	size_t cap;
	int have;
};

struct pcs {
	/* config */
	char ifnames[PCAP_MAX_IFS][64];
	size_t n_names;
	char file[4096];
	char filter[1024];
	char mapping[4096];
	char user[64];
	uint64_t snaplen;            /* bytes */
	uint64_t buffer_size;        /* bytes */
	int64_t timeout_ns;
	bool promisc;
	uint64_t n_thr;
	char capture_id[TALLY_ID_MAX];   /* resource of the capture meters */
	char agent_id[TALLY_ID_MAX];
	struct lpm_prefix *pfx;      /* the classes' prefixes, for the build */
	size_t n_pfx;
	/* the NICs */
	struct pc_nic *nics;
	size_t n_nics;
	struct pc_tables tab;
	/* captures */
	struct cap *ifs;
	size_t n_ifs;
	struct pcap_thr thr[PCAP_MAX_THREADS];
	int stop;                    /* atomic */
	int64_t origin_ns;
	bool meta_sent;
	/* offline */
	struct pc_tally off;
	struct pending pend;
	int64_t until_ns;            /* read_file(): count up to this */
	bool eof, oom;
};

static const char *const pcap_keys[] = { "interfaces", "file", "filter", "snaplen", "buffer_size", "timeout",
					 "promisc", "threads", "mapping", "classes", "user", NULL };

/* ---- the mapping file ---- */

struct pc_ip {
	struct lpm_prefix a;
	uint32_t nic;
	int line, col;
};

static int nic_err(struct tally_err *e, const char *path, const struct cfg_node *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int nic_err(struct tally_err *e, const char *path, const struct cfg_node *n, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(e, -EINVAL, "%s:%d:%d: %s", path, n->line, n->col, what);
}

/* Sort order of NIC indexes by one of their strings, then by index (so
 * the later of two equal entries in the file comes second). */
static const struct pc_nic *sort_nics;
static size_t sort_off;

static int by_field(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int d = strcmp((const char *)&sort_nics[x] + sort_off, (const char *)&sort_nics[y] + sort_off);
	return d ? d : x < y ? -1 : x > y;
}

/* The whole-file checks, in n log n: an interface is the tap of one NIC,
 * and one VM has one tenant and one name (given on any of its NICs, then
 * copied to the others); the first NIC of each VM sends its metadata. */
static int check_vms(struct pcs *s, const struct cfg_node *root, struct tally_err *e)
{
	const char *path = s->mapping;
	uint32_t *ix = malloc((s->n_nics ? s->n_nics : 1) * sizeof(*ix));
	int rc = 0;
	if (!ix)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_nics; i++)
		ix[i] = (uint32_t)i;
	sort_nics = s->nics;
	sort_off = offsetof(struct pc_nic, iface);
	qsort(ix, s->n_nics, sizeof(*ix), by_field);
	for (size_t i = 1; i < s->n_nics; i++) {
		const struct pc_nic *a = &s->nics[ix[i - 1]], *b = &s->nics[ix[i]];
		if (b->iface[0] && !strcmp(a->iface, b->iface)) {
			rc = nic_err(e, path, cfg_get(root->kids[ix[i]], "interface"),
				     "interface '%s' is already the tap of the NIC %s", b->iface, a->mac_text);
			goto out;
		}
	}
	sort_off = offsetof(struct pc_nic, resource);
	qsort(ix, s->n_nics, sizeof(*ix), by_field);
	for (size_t g = 0, end; g < s->n_nics; g = end) {
		const char *tenant = "", *name = "";
		for (end = g; end < s->n_nics && !strcmp(s->nics[ix[end]].resource, s->nics[ix[g]].resource); end++) {
			struct pc_nic *n = &s->nics[ix[end]];
			const struct cfg_node *r = root->kids[ix[end]];
			if (n->tenant[0] && tenant[0] && strcmp(n->tenant, tenant)) {
				rc = nic_err(e, path, r, "VM %s: its NICs name different tenants ('%s' and '%s')",
					     n->resource, tenant, n->tenant);
				goto out;
			}
			if (n->name[0] && name[0] && strcmp(n->name, name)) {
				rc = nic_err(e, path, r, "VM %s: its NICs name different names ('%s' and '%s')",
					     n->resource, name, n->name);
				goto out;
			}
			if (n->tenant[0])
				tenant = n->tenant;
			if (n->name[0])
				name = n->name;
		}
		for (size_t k = g; k < end; k++) {
			struct pc_nic *n = &s->nics[ix[k]];
			if (n->tenant != tenant)
				str_copy(n->tenant, tenant, sizeof(n->tenant));
			if (n->name != name)
				str_copy(n->name, name, sizeof(n->name));
			n->first_of_vm = k == g;
		}
	}
out:
	free(ix);
	return rc;
}

/* Load the mapping file into s->nics and the attribution tables. */
static int load_mapping(struct pcs *s, struct tally_err *e)
{
	static const char *const keys[] = { "uuid", "mac", "interface", "ips", "tenant", "name", NULL };
	const char *path = s->mapping;
	struct cfg_node *root = NULL;
	struct pc_ip *ips = NULL;
	size_t n_ips = 0, cap_ips = 0, n4 = 0, n6 = 0;
	int rc;

	if ((rc = cfg_load_file(path, &root, e)))
		return rc;
	if (!root || root->type != CFG_SEQ) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: expected a list of NICs ('- uuid: ...' with 'mac: ...')", path,
			     root ? root->line : 1, root ? root->col : 1);
		goto out;
	}
	s->nics = calloc(root->n_kids ? root->n_kids : 1, sizeof(*s->nics));
	if (!s->nics) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < root->n_kids; i++) {
		const struct cfg_node *r = root->kids[i];
		struct pc_nic *nic = &s->nics[s->n_nics];
		char mac[32] = "";
		if ((rc = cfg_check_keys(r, "mapping entry", keys, e)) ||
		    (rc = cfg_get_string(r, "uuid", nic->resource, sizeof(nic->resource), e)) ||
		    (rc = cfg_get_string(r, "mac", mac, sizeof(mac), e)) ||
		    (rc = cfg_get_string(r, "interface", nic->iface, sizeof(nic->iface), e)) ||
		    (rc = cfg_get_string(r, "tenant", nic->tenant, sizeof(nic->tenant), e)) ||
		    (rc = cfg_get_string(r, "name", nic->name, sizeof(nic->name), e)))
			goto out;
		if (!nic->resource[0] || !mac[0]) {
			rc = nic_err(e, path, r, "an entry needs 'uuid' (the VM) and 'mac' (its NIC)");
			goto out;
		}
		const struct cfg_node *mn = cfg_get(r, "mac");
		if (pc_parse_mac(mac, &nic->mac)) {
			rc = nic_err(e, path, mn, "key 'mac': '%s' is not a MAC address like 52:54:00:12:34:56", mac);
			goto out;
		}
		snprintf(nic->mac_text, sizeof(nic->mac_text), "%02x:%02x:%02x:%02x:%02x:%02x",
			 (unsigned)(nic->mac >> 40) & 255, (unsigned)(nic->mac >> 32) & 255,
			 (unsigned)(nic->mac >> 24) & 255, (unsigned)(nic->mac >> 16) & 255,
			 (unsigned)(nic->mac >> 8) & 255, (unsigned)nic->mac & 255);
		const struct cfg_node *il = cfg_get(r, "ips");
		if (il && il->type != CFG_SEQ) {
			rc = nic_err(e, path, il, "key 'ips': expected a list of addresses");
			goto out;
		}
		for (size_t k = 0; il && k < il->n_kids; k++) {
			const struct cfg_node *a = il->kids[k];
			struct tally_err pe = { 0 };
			if (a->type != CFG_SCALAR) {
				rc = nic_err(e, path, a, "key 'ips': expected an address");
				goto out;
			}
			if (n_ips == cap_ips) {
				size_t nc = cap_ips ? cap_ips * 2 : 64;
				struct pc_ip *p = realloc(ips, nc * sizeof(*p));
				if (!p) {
					rc = -ENOMEM;
					goto out;
				}
				ips = p;
				cap_ips = nc;
			}
			struct pc_ip *ip = &ips[n_ips];
			if (lpm_parse(a->value, &ip->a, &pe)) {
				rc = nic_err(e, path, a, "key 'ips': %s", pe.msg);
				goto out;
			}
			if (ip->a.plen != (ip->a.family == 4 ? 32 : 128)) {
				rc = nic_err(e, path, a, "key 'ips': '%s' is a prefix, not one address", a->value);
				goto out;
			}
			ip->nic = (uint32_t)s->n_nics;
			ip->line = a->line;
			ip->col = a->col;
			n_ips++;
			if (ip->a.family == 4)
				n4++;
			else
				n6++;
		}
		s->n_nics++;
	}
	if ((rc = pc_tables_init(&s->tab, s->n_nics, n4, n6)))
		goto out;
	for (size_t i = 0; i < s->n_nics; i++) {
		uint32_t other;
		if (pc_put_mac(&s->tab, s->nics[i].mac, (uint32_t)i, &other)) {
			const struct cfg_node *mn = cfg_get(root->kids[i], "mac");
			rc = nic_err(e, path, mn, "MAC %s is already the NIC of VM %s", s->nics[i].mac_text,
				     s->nics[other].resource);
			goto out;
		}
	}
	for (size_t i = 0; i < n_ips; i++) {
		uint32_t other;
		if (pc_put_ip(&s->tab, &ips[i].a, ips[i].nic, &other)) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: address already given for the NIC %s", path, ips[i].line,
				     ips[i].col, s->nics[other].mac_text);
			goto out;
		}
	}
	if ((rc = check_vms(s, root, e)))
		goto out;
	s->tab.nics = s->nics;
	s->tab.n_nics = s->n_nics;
	rc = 0;
out:
	free(ips);
	cfg_free(root);
	return rc;
}

/* ---- configure ---- */

static int parse_classes(struct pcs *s, const struct cfg_node *cl, struct tally_err *e)
{
	static const char *const names[] = { "internal", "peering", NULL };
	static const uint8_t value[] = { PC_INTERNAL, PC_PEERING };
	int rc;

	if (!cl)
		return 0;
	if ((rc = cfg_check_keys(cl, "collectors.pcap.classes", names, e)))
		return rc;
	size_t total = 0;
	for (size_t i = 0; i < cl->n_kids; i++)
		total += cl->kids[i]->n_kids;
	s->pfx = calloc(total ? total : 1, sizeof(*s->pfx));
	if (!s->pfx)
		return -ENOMEM;
	struct { int line, col; } *where = calloc(total ? total : 1, sizeof(*where));
	if (!where)
		return -ENOMEM;
	for (size_t i = 0; i < cl->n_kids; i++) {
		const struct cfg_node *k = cl->kids[i];
		int cls = !strcmp(k->key, "internal") ? 0 : 1;
		if (k->type != CFG_SEQ) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: key '%s': expected a list of prefixes like [10.0.0.0/8]",
				     k->file, k->line, k->col, k->key);
			goto out;
		}
		for (size_t j = 0; j < k->n_kids; j++) {
			const struct cfg_node *a = k->kids[j];
			struct tally_err pe = { 0 };
			if (a->type != CFG_SCALAR || lpm_parse(a->value, &s->pfx[s->n_pfx], &pe)) {
				rc = err_set(e, -EINVAL, "%s:%d:%d: classes.%s: %s", a->file, a->line, a->col, k->key,
					     a->type != CFG_SCALAR ? "expected a prefix like 10.0.0.0/8" : pe.msg);
				goto out;
			}
			s->pfx[s->n_pfx].value = value[cls];
			where[s->n_pfx].line = a->line;
			where[s->n_pfx].col = a->col;
			s->n_pfx++;
		}
	}
	/* a prefix in two lists (or twice in one) is a mistake: which class? */
	struct lpm probe;
	size_t a = 0, b = 0;
	rc = lpm_build(&probe, s->pfx, s->n_pfx, PC_INTERNET, &a, &b);
	if (rc == -EEXIST) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: classes: this prefix is also listed at line %d:%d (%s)",
			     cl->file, where[b].line, where[b].col, where[a].line, where[a].col,
			     s->pfx[a].value == s->pfx[b].value ? "twice in one class" : "in another class");
		goto out;
	}
	if (rc == 0)
		lpm_release(&probe);
out:
	free(where);
	return rc;
}

static void pcs_free(void *state);

static int pc_configure(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			  struct tally_err *e)
{
	struct pcs *s = calloc(1, sizeof(*s));
	const struct cfg_node *n;
	int64_t timeout = 100 * 1000000LL;
	int rc;

	if (!s)
		return -ENOMEM;
	s->snaplen = 128;
	s->buffer_size = 32ULL << 20;
	s->promisc = true;
	s->n_thr = 1;
	if ((rc = cfg_check_keys(cfg, "collectors.pcap", pcap_keys, e)) ||
	    (rc = cfg_get_string(cfg, "file", s->file, sizeof(s->file), e)) ||
	    (rc = cfg_get_string(cfg, "filter", s->filter, sizeof(s->filter), e)) ||
	    (rc = cfg_get_uint(cfg, "snaplen", 64, 262144, &s->snaplen, e)) ||
	    (rc = cfg_get_uint(cfg, "buffer_size", 1ULL << 16, 1ULL << 31, &s->buffer_size, e)) ||
	    (rc = cfg_get_duration(cfg, "timeout", 1000000LL, NS_PER_SEC, &timeout, e)) ||
	    (rc = cfg_get_bool(cfg, "promisc", &s->promisc, e)) ||
	    (rc = cfg_get_uint(cfg, "threads", 1, PCAP_MAX_THREADS, &s->n_thr, e)) ||
	    (rc = cfg_get_string(cfg, "mapping", s->mapping, sizeof(s->mapping), e)) ||
	    (rc = cfg_get_string(cfg, "user", s->user, sizeof(s->user), e)))
		goto fail;
	s->timeout_ns = timeout;
	n = cfg_get(cfg, "interfaces");
	if (n && n->type != CFG_SEQ) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: key 'interfaces': expected a list of interface names", n->file,
			     n->line, n->col);
		goto fail;
	}
	for (size_t i = 0; n && i < n->n_kids; i++) {
		const struct cfg_node *k = n->kids[i];
		if (k->type != CFG_SCALAR || !k->value[0] || strlen(k->value) >= 16 || strchr(k->value, '/')) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: key 'interfaces': expected an interface name", k->file,
				     k->line, k->col);
			goto fail;
		}
		if (s->n_names == PCAP_MAX_IFS) {
			rc = err_set(e, -ERANGE, "%s:%d:%d: key 'interfaces': more than %d", k->file, k->line, k->col,
				     PCAP_MAX_IFS);
			goto fail;
		}
		for (size_t j = 0; j < s->n_names; j++)
			if (!strcmp(s->ifnames[j], k->value)) {
				rc = err_set(e, -EINVAL, "%s:%d:%d: key 'interfaces': '%s' is listed twice (its frames"
					     " would count twice)", k->file, k->line, k->col, k->value);
				goto fail;
			}
		str_copy(s->ifnames[s->n_names++], k->value, sizeof(s->ifnames[0]));
	}
	const char *where = cfg ? cfg->file : "config";
	int line = cfg ? cfg->line : 0, col = cfg ? cfg->col : 0;
	if (!s->n_names == !s->file[0]) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: collectors.pcap: give either 'interfaces' (live capture) or"
			     " 'file' (a pcap or pcapng file), not %s", where, line, col,
			     s->n_names ? "both" : "neither");
		goto fail;
	}
	if (s->file[0] && access(s->file, R_OK)) {
		n = cfg_get(cfg, "file");
		rc = err_set(e, -ENOENT, "%s:%d:%d: key 'file': cannot read '%s': %s", n->file, n->line, n->col,
			     s->file, strerror(errno));
		goto fail;
	}
	if (!s->mapping[0]) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: collectors.pcap: 'mapping' (the file of the VMs' NICs) is"
			     " required", where, line, col);
		goto fail;
	}
	if (s->filter[0]) {
		pcap_t *dead = pcap_open_dead(DLT_EN10MB, (int)s->snaplen);
		struct bpf_program prog;
		if (!dead) {
			rc = -ENOMEM;
			goto fail;
		}
		if (pcap_compile(dead, &prog, s->filter, 1, PCAP_NETMASK_UNKNOWN)) {
			n = cfg_get(cfg, "filter");
			rc = err_set(e, -EINVAL, "%s:%d:%d: key 'filter': %s", n->file, n->line, n->col, pcap_geterr(dead));
			pcap_close(dead);
			goto fail;
		}
		pcap_freecode(&prog);
		pcap_close(dead);
	}
	if (s->user[0] && !getpwnam(s->user)) {
		n = cfg_get(cfg, "user");
		rc = err_set(e, -EINVAL, "%s:%d:%d: key 'user': no user '%s' on this host", n->file, n->line, n->col,
			     s->user);
		goto fail;
	}
	const struct cfg_node *cl = NULL;
	if ((rc = cfg_get_map(cfg, "classes", &cl, e)) || (rc = parse_classes(s, cl, e)) ||
	    (rc = load_mapping(s, e)))
		goto fail;
	snprintf(s->capture_id, sizeof(s->capture_id), "%.57s:pcap", env->agent_id);
	str_copy(s->agent_id, env->agent_id, sizeof(s->agent_id));
	*state = s;
	return 0;
fail:
	pcs_free(s);
	return rc;
}

/* ---- captures ---- */

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct cap *f = (struct cap *)user;
	if (!pc_count(&f->s->tab, f->tally, f->bound, data, h->caplen, h->len))
		__atomic_store_n(&f->unattributed, f->unattributed + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&f->received, f->received + 1, __ATOMIC_RELAXED);
}

static int set_filter(struct pcs *s, pcap_t *h, char *why, size_t len)
{
	struct bpf_program prog;
	if (!s->filter[0])
		return 0;
	if (pcap_compile(h, &prog, s->filter, 1, PCAP_NETMASK_UNKNOWN) || pcap_setfilter(h, &prog)) {
		snprintf(why, len, "filter: %s", pcap_geterr(h));
		return -EINVAL;
	}
	pcap_freecode(&prog);
	return 0;
}

/* Open interface f->name into f->h. 0, or -errno with the reason in why. */
static int open_live(struct pcs *s, struct cap *f, char *why, size_t len)
{
	char eb[PCAP_ERRBUF_SIZE] = "";
	pcap_t *h = pcap_create(f->name, eb);
	int rc;
	if (!h) {
		snprintf(why, len, "%s", eb);
		return -ENODEV;
	}
	pcap_set_snaplen(h, (int)s->snaplen);
	pcap_set_promisc(h, s->promisc);
	pcap_set_timeout(h, (int)(s->timeout_ns / 1000000));
	pcap_set_immediate_mode(h, 0);
	pcap_set_buffer_size(h, (int)s->buffer_size);
	if ((rc = pcap_activate(h)) < 0) {
		snprintf(why, len, "%s", rc == PCAP_ERROR_PERM_DENIED ? "permission denied (capturing needs"
			 " CAP_NET_RAW: run tallyd as root, or give it that capability)" : pcap_geterr(h)[0] ?
			 pcap_geterr(h) : pcap_statustostr(rc));
		pcap_close(h);
		return rc == PCAP_ERROR_PERM_DENIED ? -EPERM : -ENODEV;
	}
	if (pcap_datalink(h) != DLT_EN10MB) {
		snprintf(why, len, "not an Ethernet interface (link type %s)",
			 pcap_datalink_val_to_name(pcap_datalink(h)) ?: "unknown");
		pcap_close(h);
		return -EINVAL;
	}
	if ((rc = set_filter(s, h, why, len)) || pcap_setnonblock(h, 1, eb)) {
		if (!rc)
			snprintf(why, len, "%s", eb);
		pcap_close(h);
		return rc ? rc : -EIO;
	}
	f->h = h;
	return 0;
}

/* Thread: pcap_stats() at most every PCAP_STATS_EVERY_NS, published. */
static void take_stats(struct cap *f, bool now)
{
	struct pcap_stat st;
	int64_t t = time_mono_ns();
	if (!now && t - f->stats_mono_ns < PCAP_STATS_EVERY_NS)
		return;
	f->stats_mono_ns = t;
	if (pcap_stats(f->h, &st))
		return;
	__atomic_store_n(&f->drop, f->drop_base + st.ps_drop, __ATOMIC_RELAXED);
	__atomic_store_n(&f->ifdrop, f->ifdrop_base + st.ps_ifdrop, __ATOMIC_RELAXED);
}

/* Thread: the capture failed (the interface went away): close it and
 * hand it back to read(). */
static void capture_died(struct cap *f)
{
	str_copy(f->why, pcap_geterr(f->h), sizeof(f->why));
	take_stats(f, true);
	f->drop_base = f->drop;
	f->ifdrop_base = f->ifdrop;
	pcap_close(f->h);
	f->h = NULL;
	__atomic_store_n(&f->state, IF_DEAD, __ATOMIC_RELEASE);
}

static void *thr_main(void *arg)
{
	struct pcap_thr *th = arg;
	struct pcs *s = th->s;
	struct pollfd pfd[PCAP_MAX_IFS];
	struct cap *pif[PCAP_MAX_IFS];
	int timeout_ms = (int)(s->timeout_ns / 1000000);

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		int n = 0;
		for (size_t i = (size_t)th->k; i < s->n_ifs; i += s->n_thr) {
			struct cap *f = &s->ifs[i];
			if (__atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != IF_OPEN)
				continue;
			pfd[n].fd = pcap_get_selectable_fd(f->h);
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			pif[n++] = f;
		}
		if (n == 0) {
			struct timespec ts = { s->timeout_ns / NS_PER_SEC, (long)(s->timeout_ns % NS_PER_SEC) };
			nanosleep(&ts, NULL);
			continue;
		}
		poll(pfd, (nfds_t)n, timeout_ms);
		for (int i = 0; i < n; i++) {
			struct cap *f = pif[i];
			int r = pcap_dispatch(f->h, -1, on_packet, (u_char *)f);
			if (r < 0 && r != PCAP_ERROR_BREAK) {
				capture_died(f);
				continue;
			}
			take_stats(f, false);
		}
	}
	return NULL;
}

/* Become s->user, keeping CAP_NET_RAW in this thread (which reopens
 * captures); the other threads lose every capability. */
static int drop_privileges(struct pcs *s, struct tally_err *e)
{
	struct passwd *pw = getpwnam(s->user);
	if (!pw)
		return err_set(e, -EINVAL, "user: no user '%s'", s->user);
	if (geteuid() != 0)
		return err_set(e, -EPERM, "user: tallyd runs as uid %u, not root: it cannot become '%s' (run it as"
			       " root, or as '%s' with CAP_NET_RAW and without 'user')", (unsigned)geteuid(), s->user,
			       s->user);
	if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) || initgroups(pw->pw_name, pw->pw_gid) ||
	    setgid(pw->pw_gid) || setuid(pw->pw_uid))
		return err_set(e, -errno, "cannot become user '%s': %s", s->user, strerror(errno));
	prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	d[CAP_TO_INDEX(CAP_NET_RAW)].effective = CAP_TO_MASK(CAP_NET_RAW);
	d[CAP_TO_INDEX(CAP_NET_RAW)].permitted = CAP_TO_MASK(CAP_NET_RAW);
	if (syscall(SYS_capset, &hdr, d))
		return err_set(e, -errno, "became '%s' but cannot keep CAP_NET_RAW: %s", s->user, strerror(errno));
	if (setuid(0) == 0)
		return err_set(e, -EPERM, "became '%s' but could become root again", s->user);
	log_msg(LOG_INFO, "pcap: captures open; running as %s (uid %u) with CAP_NET_RAW only", s->user,
		(unsigned)pw->pw_uid);
	return 0;
}

static int open_file(struct pcs *s, struct tally_err *e)
{
	char eb[PCAP_ERRBUF_SIZE] = "";
	struct cap *f = &s->ifs[0];
	const char *base = strrchr(s->file, '/');
	str_copy(f->name, base ? base + 1 : s->file, sizeof(f->name));
	f->h = pcap_open_offline_with_tstamp_precision(s->file, PCAP_TSTAMP_PRECISION_NANO, eb);
	if (!f->h)
		return err_set(e, -EINVAL, "%s: %s", s->file, eb);
	if (pcap_datalink(f->h) != DLT_EN10MB)
		return err_set(e, -EINVAL, "%s: not an Ethernet capture (link type %s)", s->file,
			       pcap_datalink_val_to_name(pcap_datalink(f->h)) ?: "unknown");
	if (set_filter(s, f->h, eb, sizeof(eb)))
		return err_set(e, -EINVAL, "%s: %s", s->file, eb);
	return 0;
}

static int64_t ts_ns(const struct pcap_pkthdr *h)
{
	/* nanosecond precision was asked for: tv_usec holds nanoseconds */
	return (int64_t)h->ts.tv_sec * NS_PER_SEC + h->ts.tv_usec;
}

/* Offline, pcap_dispatch's callback: count a packet up to s->until_ns;
 * keep the first one past it for the next read and stop. */
static void on_file_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
	struct pcs *s = (struct pcs *)user;
	struct pending *p = &s->pend;
	int64_t t = ts_ns(h);
	if (p->have)
		return;
	if (t > s->until_ns) {
		if (p->cap < h->caplen) {
			uint8_t *b = realloc(p->data, h->caplen);
			if (!b) {
				s->oom = true;
				pcap_breakloop(s->ifs[0].h);
				return;
			}
			p->data = b;
			p->cap = h->caplen;
		}
		p->h = *h;
		memcpy(p->data, data, h->caplen);
		p->have = 1;
		pcap_breakloop(s->ifs[0].h);
		return;
	}
	if (!s->origin_ns)
		s->origin_ns = t;   /* the counters were zero until the first packet */
	on_packet((u_char *)&s->ifs[0], h, data);
}

/* Offline: count the file's packets up to until_ns. */
static int read_file(struct pcs *s, int64_t until_ns, struct tally_err *e)
{
	struct cap *f = &s->ifs[0];
	struct pending *p = &s->pend;
	if (p->have) {
		if (ts_ns(&p->h) > until_ns)
			return 0;
		if (!s->origin_ns)
			s->origin_ns = ts_ns(&p->h);
		on_packet((u_char *)f, &p->h, p->data);
		p->have = 0;
	}
	s->until_ns = until_ns;
	while (!s->eof && !p->have) {
		int r = pcap_dispatch(f->h, -1, on_file_packet, (u_char *)s);
		if (s->oom)
			return -ENOMEM;
		if (r == 0)
			s->eof = true;
		else if (r < 0 && r != PCAP_ERROR_BREAK) {
			s->eof = true;
			return err_set(e, -EIO, "%s: %s", s->file, pcap_geterr(f->h));
		}
	}
	return 0;
}

static int pc_init(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct pcs *s = state;
	size_t dup_a, dup_b;
	int rc;

	if ((rc = lpm_build(&s->tab.lpm, s->pfx, s->n_pfx, PC_INTERNET, &dup_a, &dup_b)))
		return err_set(e, rc, "classes: cannot build the prefix table");
	s->n_ifs = s->file[0] ? 1 : s->n_names;
	if (s->n_thr > s->n_ifs)
		s->n_thr = s->n_ifs;
	s->ifs = calloc(s->n_ifs, sizeof(*s->ifs));
	if (!s->ifs)
		return -ENOMEM;
	for (size_t k = 0; k < s->n_thr; k++) {
		s->thr[k].tally.nic = calloc(s->n_nics ? s->n_nics : 1, sizeof(struct pc_counts));
		s->thr[k].k = (int)k;
		s->thr[k].s = s;
		if (!s->thr[k].tally.nic)
			return -ENOMEM;
	}
	s->off.nic = calloc(s->n_nics ? s->n_nics : 1, sizeof(struct pc_counts));
	if (!s->off.nic)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_ifs; i++) {
		struct cap *f = &s->ifs[i];
		f->s = s;
		f->bound = -1;
		f->tally = s->file[0] ? &s->off : &s->thr[i % s->n_thr].tally;
		if (!s->file[0])
			str_copy(f->name, s->ifnames[i], sizeof(f->name));
		for (size_t j = 0; j < s->n_nics; j++)
			if (s->nics[j].iface[0] && !strcmp(s->nics[j].iface, f->name))
				f->bound = (int)j;
	}
	if (s->file[0]) {
		if ((rc = open_file(s, e)))
			return rc;
		/* resuming: what the ledger has is counted again, silently, so
		 * the counters go on from the values it holds */
		if (resume_ns > 0) {
			if ((rc = read_file(s, resume_ns, e)))
				return rc;
			for (size_t i = 0; i < s->n_nics; i++)
				for (int c = 0; c < PC_COUNT * 4; c++)
					s->nics[i].emitted[c] = s->off.nic[i].v[c / 4][c % 4] != 0;
		}
		return 0;
	}
	for (size_t i = 0; i < s->n_ifs; i++) {
		char why[PCAP_ERRBUF_SIZE + 128];
		if ((rc = open_live(s, &s->ifs[i], why, sizeof(why))))
			return err_set(e, rc, "cannot capture on '%s': %s", s->ifs[i].name, why);
		s->ifs[i].state = IF_OPEN;
	}
	s->origin_ns = time_now_ns();
	if (s->user[0] && (rc = drop_privileges(s, e)))
		return rc;
	for (size_t k = 0; k < s->n_thr; k++) {
		if ((rc = pthread_create(&s->thr[k].t, NULL, thr_main, &s->thr[k])))
			return err_set(e, -rc, "cannot start a capture thread: %s", strerror(rc));
		s->thr[k].started = 1;
	}
	return 0;
}

/* ---- read ---- */

static int put(const struct sink *sink, const char *resource, const char *device, int meter, uint64_t v,
	       int64_t t, int64_t origin)
{
	struct sample smp;
	memset(&smp, 0, sizeof(smp));
	smp.time_ns = t;
	smp.origin_ns = origin;
	smp.meter = (uint16_t)meter;
	smp.kind = SAMPLE_CUMULATIVE;
	smp.v.counter = v;
	str_copy(smp.resource, resource, sizeof(smp.resource));
	str_copy(smp.device, device, sizeof(smp.device));
	return sink->sample(sink->ctx, NULL, &smp);
}

static void send_meta(struct pcs *s, int64_t now_ns, const struct sink *sink, struct sink_status *ss)
{
	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	m.time_ns = now_ns;
	str_copy(m.resource, s->capture_id, sizeof(m.resource));
	str_copy(m.type, "capture", sizeof(m.type));
	snprintf(m.name, sizeof(m.name), "pcap on %s", s->agent_id);
	sink_note(ss, sink->meta(sink->ctx, NULL, &m));
	for (size_t i = 0; i < s->n_nics; i++) {
		const struct pc_nic *nic = &s->nics[i];
		if (!nic->first_of_vm || (!nic->tenant[0] && !nic->name[0]))
			continue;
		memset(&m, 0, sizeof(m));
		m.time_ns = now_ns;
		str_copy(m.resource, nic->resource, sizeof(m.resource));
		str_copy(m.type, "instance", sizeof(m.type));
		str_copy(m.name, nic->name, sizeof(m.name));
		str_copy(m.tenant, nic->tenant, sizeof(m.tenant));
		str_copy(m.project, nic->tenant, sizeof(m.project));
		sink_note(ss, sink->meta(sink->ctx, NULL, &m));
	}
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* read(): a capture that died is opened again when its interface is back */
static void reopen(struct pcs *s, struct cap *f)
{
	char why[PCAP_ERRBUF_SIZE + 128];
	int st = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
	if (st == IF_OPEN)
		return;
	if (open_live(s, f, why, sizeof(why))) {
		complain(&f->fail, LOG_WARN, "pcap: capture on %s ended (%s) and cannot be opened again: %s; its"
			 " frames are not counted until it can", f->name, f->why, why);
		return;
	}
	if (f->fail.window_ns)
		complaint_clear(&f->fail, "pcap: capturing on %s again", f->name);
	else
		log_msg(LOG_INFO, "pcap: capture on %s ended (%s); capturing again", f->name, f->why);
	__atomic_store_n(&f->state, IF_OPEN, __ATOMIC_RELEASE);
}

static int pc_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct pcs *s = state;
	int rc = 0;
	struct sink_status ss = { 0 };

	if (s->file[0]) {
		if ((rc = read_file(s, now_ns, e)))
			return rc;
		if (!s->origin_ns)
			return 0; /* no packet yet */
	}
	if (!s->meta_sent) {
		send_meta(s, now_ns, sink, &ss);
		s->meta_sent = true;
	}
	for (size_t i = 0; i < s->n_ifs; i++) {
		struct cap *f = &s->ifs[i];
		if (!s->file[0])
			reopen(s, f);
		sink_note(&ss, put(sink, s->capture_id, f->name, M_PCAP_RECEIVED, ld(&f->received), now_ns, s->origin_ns));
		sink_note(&ss, put(sink, s->capture_id, f->name, M_PCAP_UNATTRIBUTED, ld(&f->unattributed), now_ns,
			  s->origin_ns));
		if (s->file[0])
			continue;
		uint64_t drop = ld(&f->drop), ifdrop = ld(&f->ifdrop);
		sink_note(&ss, put(sink, s->capture_id, f->name, M_PCAP_DROPPED, drop, now_ns, s->origin_ns));
		sink_note(&ss, put(sink, s->capture_id, f->name, M_PCAP_IFDROPPED, ifdrop, now_ns, s->origin_ns));
		if (drop > f->drop_said) {
			complain(&f->drops, LOG_WARN, "pcap: capture on %s: the kernel dropped %llu packet(s) so far"
				 " (its buffer was full): traffic is undercounted; raise buffer_size or add threads",
				 f->name, (unsigned long long)drop);
			f->drop_said = drop;
		}
	}
	size_t n_tally = s->file[0] ? 1 : s->n_thr;
	for (size_t i = 0; i < s->n_nics; i++) {
		struct pc_nic *nic = &s->nics[i];
		for (int c = 0; c < PC_COUNT; c++)
			for (int k = 0; k < 4; k++) {
				uint64_t v = 0;
				for (size_t t = 0; t < n_tally; t++) {
					const struct pc_tally *ta = s->file[0] ? &s->off : &s->thr[t].tally;
					v += ld(&ta->nic[i].v[c][k]);
				}
				if (!v && !nic->emitted[c * 4 + k])
					continue;
				nic->emitted[c * 4 + k] = true;
				sink_note(&ss, put(sink, nic->resource, nic->mac_text, PCAP_METER(c, k), v, now_ns, s->origin_ns));
			}
	}
	return sink_status_err(&ss, "pcap", e);
}

/* /metrics: each live capture's state, and the malformed frames by reason
 * (which the network.malformed.* meters count per NIC without saying why) */
static void pc_metrics(void *state, void (*emit)(void *ctx, const struct collector_metric *m), void *ctx)
{
	const struct pcs *s = state;
	struct collector_metric m;
	for (size_t i = 0; !s->file[0] && i < s->n_ifs; i++) {
		memset(&m, 0, sizeof(m));
		m.name = "tally_pcap_capture_up";
		m.help = "1 while the capture on the interface is open, 0 while its interface is gone.";
		snprintf(m.labels, sizeof(m.labels), "interface=%s", s->ifs[i].name);
		m.value = __atomic_load_n(&s->ifs[i].state, __ATOMIC_ACQUIRE) == IF_OPEN;
		emit(ctx, &m);
	}
	for (int w = PKT_OK + 1; w < PKT_WHY_COUNT; w++) {
		uint64_t n = 0;
		if (s->file[0])
			n = ld(&s->off.why[w]);
		for (size_t k = 0; !s->file[0] && k < s->n_thr; k++)
			n += ld(&s->thr[k].tally.why[w]);
		memset(&m, 0, sizeof(m));
		m.name = "tally_pcap_malformed_frames";
		m.help = "Malformed frames captured since tallyd started, by what was wrong (collectors/pktdecode.c).";
		m.counter = true;
		snprintf(m.labels, sizeof(m.labels), "reason=%s", pkt_why_names[w]);
		m.value = (double)n;
		emit(ctx, &m);
	}
}

static void pcs_free(void *state)
{
	struct pcs *s = state;
	if (!s)
		return;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (size_t k = 0; k < PCAP_MAX_THREADS; k++)
		if (s->thr[k].started)
			pthread_join(s->thr[k].t, NULL);
	for (size_t i = 0; s->ifs && i < s->n_ifs; i++)
		if (s->ifs[i].h)
			pcap_close(s->ifs[i].h);
	for (size_t k = 0; k < PCAP_MAX_THREADS; k++)
		free(s->thr[k].tally.nic);
	free(s->off.nic);
	free(s->pend.data);
	free(s->ifs);
	free(s->pfx);
	free(s->nics);
	pc_tables_release(&s->tab);
	free(s);
}

const struct collector_ops pcap_collector = {
	.name = "pcap",
	.configure = pc_configure,
	.init = pc_init,
	.read = pc_read,
	.free = pcs_free,
	.metrics = pc_metrics,
};
