/*
 * libvirt.c: every VM on a KVM host through libvirt.
 *
 * Per interval one virConnectGetAllDomainStats() call for all active
 * domains (state, cpu, balloon, vcpu, interface, block) with NOWAIT, so a
 * domain stuck in a job never stalls the others. A driver that answers the
 * bulk call without the groups we asked for (libvirt's test driver in
 * Debian 12 returns `state` alone) is read per domain instead:
 * virDomainGetInfo, virDomainBlockStats, virDomainGetBlockInfo,
 * virDomainInterfaceStats, virDomainMemoryStats. Which path ran is counted
 * (lv_stats) and said once in the log.
 *
 * Identity: resource = domain UUID; disks by target plus serial (or a hash
 * of the source path), NICs by MAC; never vnetN or the domain name. The
 * domain XML (devices, Nova metadata) is read when a domain is first seen
 * and again every xml_refresh cycles; metadata is sent when it changes.
 * Tenant, user and flavor come from Nova's <nova:instance> metadata
 * (namespace 1.0, or 1.1 as Nova writes it since Zed).
 *
 * Meters (docs/meters.md): cpu (cpu.time ns), vcpus, memory (balloon.current KiB
 * -> bytes), memory.usage (available - unused), memory.resident (rss),
 * instance (1 while running or blocked, 0 when paused), per disk read/write
 * bytes and requests, capacity and allocation, per NIC incoming/outgoing
 * bytes and packets. Network direction is the guest's view: libvirt's
 * net.N.rx is what the guest received = network.incoming (for the bridge
 * and ethernet types libvirt 9.0 reports, it swaps the tap's counters).
 *
 * First sight: a domain present at the first read started before we
 * watched (baseline, rule 3). A domain never seen before that appears later
 * started while we watched: its counters count from zero, attributed from
 * the previous cycle (the exact start comes with lifecycle events).
 */
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "libvirt_internal.h"
#include "log.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <fnmatch.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- domain XML ---- */

static void xstr(xmlXPathContextPtr ctx, const char *expr, char *out, size_t len)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	out[0] = '\0';
	if (o && o->type == XPATH_STRING && o->stringval)
		str_copy(out, (const char *)o->stringval, len);
	else if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
		xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
		if (v)
			str_copy(out, (const char *)v, len);
		xmlFree(v);
	}
	xmlXPathFreeObject(o);
}

static uint32_t fnv32(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void disk_label(struct lv_disk *d)
{
	if (d->serial[0])
		snprintf(d->label, sizeof(d->label), "%.24s:%.20s", d->target, d->serial);
	else if (d->source[0])
		snprintf(d->label, sizeof(d->label), "%.24s:%08x", d->target, fnv32(d->source));
	else
		str_copy(d->label, d->target, sizeof(d->label));
}

static void silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int lv_parse_domain_xml(const char *xml, size_t len, struct lv_domain_info *info, struct tally_err *e)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr set = NULL;
	char expr[320];
	int rc = 0;

	memset(info, 0, sizeof(*info));
	xmlSetGenericErrorFunc(NULL, silent);
	if (len > INT32_MAX)
		return err_set(e, -EINVAL, "domain xml too large");
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING);
	if (!doc)
		return err_set(e, -EINVAL, "domain xml is not well-formed");
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (!root || xmlStrcmp(root->name, (const xmlChar *)"domain")) {
		rc = err_set(e, -EINVAL, "xml is not a <domain> description");
		goto out;
	}
	if (!(ctx = xmlXPathNewContext(doc))) {
		rc = -ENOMEM;
		goto out;
	}
	/* Nova wrote namespace 1.0 until Zed (2022) and 1.1 since (it added
	 * nova:ports); the fields we read are the same in both */
	xmlXPathRegisterNs(ctx, (const xmlChar *)"nova",
			   (const xmlChar *)"http://openstack.org/xmlns/libvirt/nova/1.0");
	xmlXPathRegisterNs(ctx, (const xmlChar *)"nova11",
			   (const xmlChar *)"http://openstack.org/xmlns/libvirt/nova/1.1");
	xstr(ctx, "string(/domain/uuid)", info->uuid, sizeof(info->uuid));
	xstr(ctx, "string(/domain/name)", info->name, sizeof(info->name));
	if (!info->uuid[0]) {
		rc = err_set(e, -EINVAL, "domain '%s' has no <uuid>", info->name);
		goto out;
	}

	set = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/disk[@device='disk' or not(@device)]", ctx);
	int n = set && set->nodesetval ? set->nodesetval->nodeNr : 0;
	for (int i = 0; i < n; i++) {
		struct lv_disk d;
		memset(&d, 0, sizeof(d));
		snprintf(expr, sizeof(expr), "string((/domain/devices/disk[@device='disk' or not(@device)])[%d]/target/@dev)", i + 1);
		xstr(ctx, expr, d.target, sizeof(d.target));
		snprintf(expr, sizeof(expr), "string((/domain/devices/disk[@device='disk' or not(@device)])[%d]/serial)", i + 1);
		xstr(ctx, expr, d.serial, sizeof(d.serial));
		snprintf(expr, sizeof(expr), "string((/domain/devices/disk[@device='disk' or not(@device)])[%d]/source/@*[name()='file' or name()='dev' or name()='name' or name()='volume'])", i + 1);
		xstr(ctx, expr, d.source, sizeof(d.source));
		if (!d.target[0] || info->n_disks == LV_MAX_DEVS) {
			info->skipped_devs++;
			continue;
		}
		disk_label(&d);
		info->disks[info->n_disks++] = d;
	}
	xmlXPathFreeObject(set);
	set = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/interface", ctx);
	n = set && set->nodesetval ? set->nodesetval->nodeNr : 0;
	for (int i = 0; i < n; i++) {
		struct lv_nic c;
		memset(&c, 0, sizeof(c));
		snprintf(expr, sizeof(expr), "string((/domain/devices/interface)[%d]/mac/@address)", i + 1);
		xstr(ctx, expr, c.mac, sizeof(c.mac));
		snprintf(expr, sizeof(expr), "string((/domain/devices/interface)[%d]/target/@dev)", i + 1);
		xstr(ctx, expr, c.target, sizeof(c.target));
		snprintf(expr, sizeof(expr), "string((/domain/devices/interface)[%d]/@type)", i + 1);
		xstr(ctx, expr, c.type, sizeof(c.type));
		if (!c.mac[0] || info->n_nics == LV_MAX_DEVS) {
			info->skipped_devs++;
			continue;
		}
		info->nics[info->n_nics++] = c;
	}
	char probe[8];
	const char *ns = "nova";
	xstr(ctx, "string(count(/domain/metadata/nova:instance))", probe, sizeof(probe));
	if (!probe[0] || !strcmp(probe, "0")) {
		ns = "nova11";
		xstr(ctx, "string(count(/domain/metadata/nova11:instance))", probe, sizeof(probe));
	}
	info->has_nova = probe[0] && strcmp(probe, "0") != 0;
	if (info->has_nova) {
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:name)", ns, ns);
		xstr(ctx, expr, info->nova_name, sizeof(info->nova_name));
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:owner/%s:project/@uuid)", ns, ns, ns);
		xstr(ctx, expr, info->project, sizeof(info->project));
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:owner/%s:user/@uuid)", ns, ns, ns);
		xstr(ctx, expr, info->user, sizeof(info->user));
		snprintf(expr, sizeof(expr), "string(/domain/metadata/%s:instance/%s:flavor/@name)", ns, ns);
		xstr(ctx, expr, info->flavor, sizeof(info->flavor));
	}
out:
	xmlXPathFreeObject(set);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return rc;
}

/* ---- the tenant mapping file ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int lv_mapping_load(const char *path, struct lv_mapping *m, struct tally_err *e)
{
	static const char *const keys[] = { "uuid", "name", "tenant", "user", "flavor", "labels", NULL };
	struct cfg_node *root = NULL;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = cfg_load_file(path, &root, e)))
		return rc;
	if (!root) {
		rc = err_set(e, -EINVAL, "%s: empty mapping file (expected a list of rules)", path);
		goto out;
	}
	if (root->type != CFG_SEQ) {
		rc = err_set(e, -EINVAL, "%s:%d:%d: expected a list of rules ('- uuid: ...' or '- name: ...')",
			     path, root->line, root->col);
		goto out;
	}
	m->rules = calloc(root->n_kids ? root->n_kids : 1, sizeof(*m->rules));
	if (!m->rules) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < root->n_kids; i++) {
		const struct cfg_node *r = root->kids[i];
		struct lv_rule *rule = &m->rules[m->n];
		if ((rc = cfg_check_keys(r, "mapping rule", keys, e)) ||
		    (rc = cfg_get_string(r, "uuid", rule->uuid, sizeof(rule->uuid), e)) ||
		    (rc = cfg_get_string(r, "name", rule->name, sizeof(rule->name), e)) ||
		    (rc = cfg_get_string(r, "tenant", rule->tenant, sizeof(rule->tenant), e)) ||
		    (rc = cfg_get_string(r, "user", rule->user, sizeof(rule->user), e)) ||
		    (rc = cfg_get_string(r, "flavor", rule->flavor, sizeof(rule->flavor), e)))
			goto out;
		if (!rule->uuid[0] == !rule->name[0]) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: a rule needs exactly one of 'uuid' or 'name'", path,
				     r->line, r->col);
			goto out;
		}
		if (!rule->tenant[0]) {
			rc = err_set(e, -EINVAL, "%s:%d:%d: a rule needs a 'tenant'", path, r->line, r->col);
			goto out;
		}
		const struct cfg_node *lb = NULL;
		if ((rc = cfg_get_map(r, "labels", &lb, e)))
			goto out;
		if (lb) {
			const char *kv[64];
			char buf[64][96];
			size_t n = 0;
			for (size_t k = 0; k < lb->n_kids && n < 64; k++) {
				const struct cfg_node *l = lb->kids[k];
				if (l->type != CFG_SCALAR || strpbrk(l->key, ",=") || strpbrk(l->value, ",=")) {
					rc = err_set(e, -EINVAL, "%s:%d:%d: label '%s': a plain value without ',' or"
						     " '=' expected", path, l->line, l->col, l->key);
					goto out;
				}
				snprintf(buf[n], sizeof(buf[n]), "%s=%s", l->key, l->value);
				kv[n] = buf[n];
				n++;
			}
			qsort(kv, n, sizeof(kv[0]), cmp_str);
			size_t used = 0;
			for (size_t k = 0; k < n && used < sizeof(rule->labels); k++)
				used += (size_t)snprintf(rule->labels + used, sizeof(rule->labels) - used, "%s%s",
							 k ? "," : "", kv[k]);
		}
		m->n++;
	}
	rc = 0;
out:
	cfg_free(root);
	if (rc)
		lv_mapping_release(m);
	return rc;
}

/* out = labels (sorted "k=v,k=v") with k=v added in its sorted place. */
static void labels_with(char *out, size_t len, const char *labels, const char *k, const char *v)
{
	char copy[512], extra[160];
	const char *kv[65];
	size_t n = 0;
	str_copy(copy, labels, sizeof(copy));
	for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
		kv[n++] = t;
	snprintf(extra, sizeof(extra), "%s=%s", k, v);
	kv[n++] = extra;
	qsort(kv, n, sizeof(kv[0]), cmp_str);
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", kv[i]);
}

void lv_mapping_release(struct lv_mapping *m)
{
	free(m->rules);
	m->rules = NULL;
	m->n = 0;
}

const struct lv_rule *lv_mapping_match(const struct lv_mapping *m, const char *uuid, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct lv_rule *r = &m->rules[i];
		if (r->uuid[0] ? !strcasecmp(r->uuid, uuid) : fnmatch(r->name, name, 0) == 0)
			return r;
	}
	return NULL;
}

/* ---- the collector ---- */

/* Per NIC slot (index in the XML's NIC list) and counter (rx/tx
 * bytes/pkts): what put_nic() needs to tell a tap that went on counting. */
struct lv_nic_slot {
	char mac[18];                /* the NIC these counters are of */
	struct lv_nic_ctr {
		uint64_t prev;       /* the last value read, in any life */
		int64_t life;        /* origin_ns of the life `carry` was decided for */
		uint8_t have, carry; /* carry: the counter went on across the restart */
	} ctr[4];
};

/* One domain. Its devices are heap arrays of exactly the XML's length (a
 * host's thousand domains would otherwise carry LV_MAX_DEVS of each). */
struct lv_dom {
	char uuid[37];
	struct lv_disk *disks;       /* n_disks, from the XML */
	struct lv_disk_size {        /* parallel to disks */
		uint64_t capacity, allocation;  /* bytes, last read */
		uint8_t have;
	} *sizes;
	int n_disks;
	struct lv_nic *nics;         /* n_nics, from the XML */
	int n_nics;
	struct lv_nic_slot *slots;   /* n_slots >= n_nics: never shrinks, so a NIC that
					comes back in its slot finds its counters */
	int n_slots;
	struct resource_meta sent;   /* last metadata sent */
	int have_info;
	int seen_cycle;              /* last cycle it was read */
	int64_t first_seen_ns;
	int64_t origin_ns;           /* counted from zero since (0: baseline) */
	int origin_by_event;         /* origin_ns came from a started event */
	double mem_resident, mem_usage;   /* bytes, last memory stats; < 0 = not reported */
	int have_memstats;
	struct lv_last {             /* the last reading of each series, for the final one: */
		int64_t time_ns, origin_ns;      /* a sample without its resource (uuid) */
		uint64_t bits;                   /* sample.v, as stored */
		uint16_t meter;
		uint8_t kind, flags;
		char device[TALLY_DEV_MAX];
	} *last;
	int n_last, cap_last;
	int64_t last_reboot_ns;      /* to fold the 2-3 reboot events of one reboot */
	uint64_t last_cpu;           /* ns, the last cpu time read */
	unsigned int dom_id;         /* the domain id (one QEMU process) it was read from */
	int have_cpu;
	unsigned int origin_id;      /* the process origin_ns is the start of (0: none known) */
	int64_t stop_ns;             /* the last stop's time (its final reading) */
	uint64_t xml_hash;           /* of the XML info was parsed from */
	virDomainPtr ptr;            /* list path: our reference, kept across cycles */
	int ptr_id;                  /* the active domain id ptr was found by (0: none) */
};

struct lv {
	char uri[256];
	int xml_refresh;             /* cycles */
	char mapping_path[4096];
	struct lv_mapping mapping;   /* tenants of domains without Nova metadata */
	virConnectPtr conn;
	int nowait_ok;               /* the driver accepts NOWAIT */
	int bulk_useless;            /* the last bulk answer had no domain's groups */
	int cycle;
	int64_t prev_read_ns;
	struct lv_dom *dom;
	size_t n_dom, cap_dom;
	uint32_t *slot;              /* open addressing: index + 1 into dom, by uuid */
	size_t mask;
	/* the list path (a driver whose bulk answer is useless): active domain
	 * ids each cycle, and the domain each id was found to be, so a domain
	 * is looked up (virDomainLookupByID, virDomainGetUUID) once per QEMU
	 * process rather than listed, identified and freed every cycle */
	int *ids;
	size_t cap_ids;
	uint32_t *id_slot;           /* open addressing: index + 1 into dom, by ptr_id */
	size_t id_mask;
	int id_stale;                /* id_slot must be rebuilt */
	struct complaint conn_fail, fallback_note, xml_fail, stale_note, dev_note, ev_note, torn_note;
	/* lifecycle events: filled by libvirt's event thread, drained by read() */
	pthread_mutex_t ev_lock;
	struct lv_event {
		int64_t time_ns;
		unsigned char uuid[VIR_UUID_BUFLEN];
		unsigned int id;             /* the domain id (QEMU process) it speaks of */
		char type[24];
		char reason[64];
	} ev[LV_EVENT_QUEUE];
	size_t ev_n;
	uint64_t ev_dropped;         /* events lost to a full queue */
	int cb_lifecycle, cb_reboot, cb_unplug;   /* callback ids, -1 = none */
	/* figures */
	uint64_t bulk_domains, fallback_domains, stale, reads, events;
};

static const char *const lv_keys[] = { "uri", "xml_refresh", "mapping", NULL };

/* ---- libvirt's event loop: one thread per process ---- */

static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_ok;

static void loop_tick(int timer, void *opaque)
{
	(void)timer;
	(void)opaque; /* wakes the loop at least once a second */
}

static void *loop_main(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			break;
	return NULL;
}

static void loop_start(void)
{
	pthread_t t;
	if (virEventRegisterDefaultImpl() < 0)
		return;
	virEventAddTimeout(1000, loop_tick, NULL, NULL);
	if (pthread_create(&t, NULL, loop_main, NULL) == 0) {
		pthread_detach(t);
		loop_ok = 1;
	}
}

static void queue_event(struct lv *s, virDomainPtr dom, const char *type, const char *reason)
{
	int64_t now = time_collect_ns();    /* the clock the readings are stamped with */
	pthread_mutex_lock(&s->ev_lock);
	if (s->ev_n == LV_EVENT_QUEUE) {
		s->ev_dropped++;
	} else {
		struct lv_event *ev = &s->ev[s->ev_n];
		if (virDomainGetUUID(dom, ev->uuid) == 0) {
			ev->time_ns = now;
			ev->id = virDomainGetID(dom);
			str_copy(ev->type, type, sizeof(ev->type));
			str_copy(ev->reason, reason, sizeof(ev->reason));
			s->ev_n++;
		}
	}
	pthread_mutex_unlock(&s->ev_lock);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	const char *type = NULL, *reason = "";
	(void)conn;
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		type = detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? "migrated_in" : "started";
		reason = detail == VIR_DOMAIN_EVENT_STARTED_BOOTED ? "booted"
			 : detail == VIR_DOMAIN_EVENT_STARTED_RESTORED ? "restored"
			 : detail == VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT ? "from-snapshot"
			 : detail == VIR_DOMAIN_EVENT_STARTED_WAKEUP ? "wakeup" : "migrated";
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		type = detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED ? "migrated_out"
		       : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? "crashed" : "stopped";
		reason = detail == VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN ? "shutdown"
			 : detail == VIR_DOMAIN_EVENT_STOPPED_DESTROYED ? "destroyed"
			 : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? "crashed"
			 : detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED ? "migrated"
			 : detail == VIR_DOMAIN_EVENT_STOPPED_SAVED ? "saved"
			 : detail == VIR_DOMAIN_EVENT_STOPPED_FAILED ? "failed" : "from-snapshot";
		break;
	case VIR_DOMAIN_EVENT_SHUTDOWN: type = "shutdown"; reason = "guest"; break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		/* the SLA tells a pause by an I/O error (downtime) from one asked for */
		type = "suspended";
		reason = detail == VIR_DOMAIN_EVENT_SUSPENDED_IOERROR ? "ioerror"
			 : detail == VIR_DOMAIN_EVENT_SUSPENDED_PAUSED ? "paused"
			 : detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ? "migrated"
			 : detail == VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG ? "watchdog"
			 : detail == VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR ? "api-error" : "";
		break;
	case VIR_DOMAIN_EVENT_RESUMED: type = "resumed"; break;
	case VIR_DOMAIN_EVENT_CRASHED: type = "crashed"; reason = "panicked"; break;
	case VIR_DOMAIN_EVENT_DEFINED: type = "defined"; break;
	case VIR_DOMAIN_EVENT_UNDEFINED: type = "undefined"; break;
	default: return 0;
	}
	queue_event(opaque, dom, type, reason);
	return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
	(void)conn;
	queue_event(opaque, dom, "rebooted", "");
}

static void on_unplug(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	(void)conn;
	queue_event(opaque, dom, "device_removed", alias ? alias : "");
}

static int lv_configure(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			struct tally_err *e)
{
	struct lv *s = calloc(1, sizeof(*s));
	uint64_t refresh = 60;
	int rc;
	if (!s)
		return -ENOMEM;
	str_copy(s->uri, "qemu:///system", sizeof(s->uri));
	if ((rc = cfg_check_keys(cfg, "collectors.libvirt", lv_keys, e)) ||
	    (rc = cfg_get_string(cfg, "uri", s->uri, sizeof(s->uri), e)) ||
	    (rc = cfg_get_uint(cfg, "xml_refresh", 1, 100000, &refresh, e)) ||
	    (rc = cfg_get_string(cfg, "mapping", s->mapping_path, sizeof(s->mapping_path), e)) ||
	    (s->mapping_path[0] && (rc = lv_mapping_load(s->mapping_path, &s->mapping, e)))) {
		free(s);
		return rc;
	}
	s->xml_refresh = (int)refresh;
	s->nowait_ok = 1;
	s->cb_lifecycle = s->cb_reboot = s->cb_unplug = -1;
	pthread_mutex_init(&s->ev_lock, NULL);
	*state = s;
	return 0;
}

static void lv_quiet(void *ud, virErrorPtr err)
{
	(void)ud;
	(void)err; /* errors are read with virGetLastError and logged once by us */
}

static int lv_connect(struct lv *s, struct tally_err *e)
{
	if (s->conn)
		return 0;
	s->conn = virConnectOpenReadOnly(s->uri);
	if (!s->conn) {
		virErrorPtr err = virGetLastError();
		return err_set(e, -ECONNREFUSED, "libvirt %s: cannot connect: %s", s->uri,
			       err && err->message ? err->message : "unknown error");
	}
	if (loop_ok) {
		/* notice a dead libvirtd within ~15 s even between reads */
		virConnectSetKeepAlive(s->conn, 5, 3);
		s->cb_lifecycle = virConnectDomainEventRegisterAny(s->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
			VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), s, NULL);
		s->cb_reboot = virConnectDomainEventRegisterAny(s->conn, NULL, VIR_DOMAIN_EVENT_ID_REBOOT,
			VIR_DOMAIN_EVENT_CALLBACK(on_reboot), s, NULL);
		s->cb_unplug = virConnectDomainEventRegisterAny(s->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
			VIR_DOMAIN_EVENT_CALLBACK(on_unplug), s, NULL);
		if (s->cb_lifecycle < 0)
			complain(&s->ev_note, LOG_WARN, "libvirt %s: lifecycle events unavailable; starts and"
				 " stops are seen only at the next read", s->uri);
	}
	return 0;
}

/* Drop every domain reference of the list path (they belong to the
 * connection): the next list looks every domain up again. */
static void drop_ptrs(struct lv *s)
{
	for (size_t i = 0; i < s->n_dom; i++) {
		if (s->dom[i].ptr)
			virDomainFree(s->dom[i].ptr);
		s->dom[i].ptr = NULL;
		s->dom[i].ptr_id = 0;
	}
	s->id_stale = 1;
}

static void lv_disconnect(struct lv *s)
{
	if (!s->conn)
		return;
	drop_ptrs(s);
	if (s->cb_lifecycle >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_lifecycle);
	if (s->cb_reboot >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_reboot);
	if (s->cb_unplug >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_unplug);
	virConnectClose(s->conn);
	s->conn = NULL;
	s->cb_lifecycle = s->cb_reboot = s->cb_unplug = -1;
	s->bulk_useless = 0;
}

static int lv_init(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct lv *s = state;
	virSetErrorFunc(NULL, lv_quiet);
	xmlInitParser();
	pthread_once(&loop_once, loop_start);
	if (lv_connect(s, e)) {
		/* libvirtd may come up later (boot order, a restart): read()
		 * connects again every interval and says so once per back-off
		 * window, so tallyd starts, serves and counts the failed reads */
		complain(&s->conn_fail, LOG_WARN, "%s; trying again every interval", e->msg);
		e->msg[0] = '\0';
	}
	return 0;
}

static size_t uuid_hash(const char *uuid)
{
	return fnv32(uuid) * 0x9e3779b1u;
}

static int rehash(struct lv *s)
{
	size_t size = s->mask ? (s->mask + 1) * 2 : 256;
	uint32_t *t = calloc(size, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_dom; i++) {
		size_t j = uuid_hash(s->dom[i].uuid) & (size - 1);
		while (t[j])
			j = (j + 1) & (size - 1);
		t[j] = (uint32_t)i + 1;
	}
	free(s->slot);
	s->slot = t;
	s->mask = size - 1;
	return 0;
}

/* The domain with this uuid, added if new (*is_new). NULL without memory. */
static struct lv_dom *dom_get(struct lv *s, const char *uuid, int *is_new)
{
	if (!s->slot && rehash(s))
		return NULL;
	size_t j = uuid_hash(uuid) & s->mask;
	for (; s->slot[j]; j = (j + 1) & s->mask)
		if (!strcmp(s->dom[s->slot[j] - 1].uuid, uuid)) {
			*is_new = 0;
			return &s->dom[s->slot[j] - 1];
		}
	if (s->n_dom == s->cap_dom) {
		size_t n = s->cap_dom ? s->cap_dom * 2 : 64;
		struct lv_dom *p = realloc(s->dom, n * sizeof(*p));
		if (!p)
			return NULL;
		s->dom = p;
		s->cap_dom = n;
	}
	struct lv_dom *d = &s->dom[s->n_dom++];
	memset(d, 0, sizeof(*d));
	str_copy(d->uuid, uuid, sizeof(d->uuid));
	*is_new = 1;
	s->slot[j] = (uint32_t)s->n_dom;
	if (s->n_dom * 2 > s->mask + 1 && rehash(s))
		return NULL;
	return d;
}

static void uuid_text(const unsigned char raw[VIR_UUID_BUFLEN], char out[VIR_UUID_STRING_BUFLEN]);

static size_t id_hash(int id)
{
	return (size_t)((uint32_t)id * 0x9e3779b1u);
}

/* Rebuild the id table from the domains that hold a reference. Returns 0
 * or -ENOMEM (the table is then empty and every id a miss). */
static int id_rebuild(struct lv *s)
{
	size_t size = 256;
	while (size < s->n_dom * 2)
		size *= 2;
	if (size != s->id_mask + 1 || !s->id_slot) {
		uint32_t *t = calloc(size, sizeof(*t));
		if (!t) {
			free(s->id_slot);
			s->id_slot = NULL;
			s->id_mask = 0;
			return -ENOMEM;
		}
		free(s->id_slot);
		s->id_slot = t;
		s->id_mask = size - 1;
	} else {
		memset(s->id_slot, 0, size * sizeof(*s->id_slot));
	}
	for (size_t i = 0; i < s->n_dom; i++) {
		if (!s->dom[i].ptr_id)
			continue;
		size_t j = id_hash(s->dom[i].ptr_id) & s->id_mask;
		while (s->id_slot[j])
			j = (j + 1) & s->id_mask;
		s->id_slot[j] = (uint32_t)i + 1;
	}
	s->id_stale = 0;
	return 0;
}

/* The domain running as active id `id`, by the reference found for that
 * id before, or else looked up now (virDomainLookupByID, whose reference
 * is kept in the domain). Domain ids name one QEMU process and are not
 * reused while the connection lives (a restarted libvirtd ends it, and
 * lv_disconnect() drops every reference); a domain not listed in a cycle
 * loses its id at the end of that cycle. NULL when the domain went away
 * since the list, or without memory. */
static struct lv_dom *dom_by_id(struct lv *s, int id, int *is_new)
{
	*is_new = 0;
	if (s->id_slot)
		for (size_t j = id_hash(id) & s->id_mask; s->id_slot[j]; j = (j + 1) & s->id_mask) {
			struct lv_dom *d = &s->dom[s->id_slot[j] - 1];
			if (d->ptr_id == id)
				return d;
		}
	virDomainPtr p = virDomainLookupByID(s->conn, id);
	unsigned char raw[VIR_UUID_BUFLEN];
	char uuid[VIR_UUID_STRING_BUFLEN];
	if (!p)
		return NULL;
	if (virDomainGetUUID(p, raw) != 0) {
		virDomainFree(p);
		return NULL;
	}
	uuid_text(raw, uuid);
	struct lv_dom *d = dom_get(s, uuid, is_new);
	if (!d) {
		virDomainFree(p);
		return NULL;
	}
	if (d->ptr)
		virDomainFree(d->ptr);
	d->ptr = p;
	d->ptr_id = id;
	s->id_stale = 1;
	return d;
}

/* This cycle's active domain ids into s->ids. Returns their number, or -1
 * (libvirt's error is the last one). */
static int list_ids(struct lv *s)
{
	for (;;) {
		if (s->cap_ids < s->n_dom + 64) {
			size_t cap = (s->n_dom + 64) * 2;
			int *p = realloc(s->ids, cap * sizeof(*p));
			if (!p)
				return -1;
			s->ids = p;
			s->cap_ids = cap;
		}
		int max = s->cap_ids > INT32_MAX ? INT32_MAX : (int)s->cap_ids;
		int n = virConnectListDomains(s->conn, s->ids, max);
		if (n < max)
			return n;
		/* maybe more than we had room for: ask again with more */
		size_t cap = s->cap_ids * 2;
		int *p = realloc(s->ids, cap * sizeof(*p));
		if (!p)
			return -1;
		s->ids = p;
		s->cap_ids = cap;
	}
}

/* The domain's devices from a parsed XML. Disk sizes are kept while the
 * disks stay as they were (else they are per index and stale); NIC slots
 * keep their counters. Returns 0 or -ENOMEM (nothing changed). */
static int set_devices(struct lv_dom *d, const struct lv_domain_info *info)
{
	size_t nd = (size_t)info->n_disks, nn = (size_t)info->n_nics;
	if (info->n_nics > d->n_slots) {
		struct lv_nic_slot *p = realloc(d->slots, nn * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memset(p + d->n_slots, 0, (nn - (size_t)d->n_slots) * sizeof(*p));
		d->slots = p;
		d->n_slots = info->n_nics;
	}
	if (!d->have_info || info->n_disks != d->n_disks ||
	    (nd && memcmp(info->disks, d->disks, nd * sizeof(info->disks[0])))) {
		struct lv_disk *dk = nd ? malloc(nd * sizeof(*dk)) : NULL;
		struct lv_disk_size *sz = nd ? calloc(nd, sizeof(*sz)) : NULL;
		if (nd && (!dk || !sz)) {
			free(dk);
			free(sz);
			return -ENOMEM;
		}
		if (nd)
			memcpy(dk, info->disks, nd * sizeof(*dk));
		free(d->disks);
		free(d->sizes);
		d->disks = dk;
		d->sizes = sz;
		d->n_disks = info->n_disks;
	}
	if (info->n_nics != d->n_nics || (nn && memcmp(info->nics, d->nics, nn * sizeof(info->nics[0])))) {
		struct lv_nic *nc = nn ? malloc(nn * sizeof(*nc)) : NULL;
		if (nn && !nc)
			return -ENOMEM;
		if (nn)
			memcpy(nc, info->nics, nn * sizeof(*nc));
		free(d->nics);
		d->nics = nc;
		d->n_nics = info->n_nics;
	}
	return 0;
}

static void refresh_xml(struct lv *s, virDomainPtr dom, struct lv_dom *d, int64_t now,
			const struct sink *sink)
{
	char *xml = virDomainGetXMLDesc(dom, 0);
	struct tally_err e = { 0 };
	if (!xml) {
		virErrorPtr err = virGetLastError();
		complain(&s->xml_fail, LOG_WARN, "libvirt: domain %s: cannot read its xml: %s", d->uuid,
			 err && err->message ? err->message : "unknown error");
		return;
	}
	/* the same XML as last time: the same devices and metadata, already
	 * sent (parsing it again costs more than all of a cycle's reads) */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *c = (const unsigned char *)xml; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	if (d->have_info && d->xml_hash == h) {
		free(xml);
		return;
	}
	struct lv_domain_info info;
	int rc = lv_parse_domain_xml(xml, strlen(xml), &info, &e);
	free(xml);
	if (rc) {
		complain(&s->xml_fail, LOG_WARN, "libvirt: domain %s: %s", d->uuid, e.msg);
		return;
	}
	int no_tap = 0;
	for (int i = 0; i < info.n_nics; i++)
		no_tap += !info.nics[i].target[0];
	if (info.skipped_devs)
		complain(&s->dev_note, LOG_INFO, "libvirt: domain %s: %d device(s) without a target or MAC"
			 " are not metered", d->uuid, info.skipped_devs);
	else if (no_tap)
		/* a running domain's NIC without a host device (user-mode
		 * networking, a vhost-user port) has no counters to read */
		complain(&s->dev_note, LOG_INFO, "libvirt: domain %s: %d NIC(s) without a host device"
			 " (<target dev>) have no counters: not metered", d->uuid, no_tap);
	if (set_devices(d, &info)) {
		complain(&s->xml_fail, LOG_WARN, "libvirt: domain %s: out of memory", d->uuid);
		return;
	}
	d->have_info = 1;

	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	m.time_ns = now;
	str_copy(m.resource, d->uuid, sizeof(m.resource));
	str_copy(m.type, "instance", sizeof(m.type));
	str_copy(m.name, info.has_nova && info.nova_name[0] ? info.nova_name : info.name, sizeof(m.name));
	const struct lv_rule *rule = info.project[0] ? NULL : lv_mapping_match(&s->mapping, d->uuid, info.name);
	if (rule) {
		str_copy(m.tenant, rule->tenant, sizeof(m.tenant));
		str_copy(m.project, rule->tenant, sizeof(m.project));
		str_copy(m.user, rule->user, sizeof(m.user));
		str_copy(m.flavor, rule->flavor, sizeof(m.flavor));
		labels_with(m.labels, sizeof(m.labels), rule->labels, "source", "mapping");
	} else {
		str_copy(m.tenant, info.project, sizeof(m.tenant));
		str_copy(m.project, info.project, sizeof(m.project));
		str_copy(m.user, info.user, sizeof(m.user));
		str_copy(m.flavor, info.flavor, sizeof(m.flavor));
		if (info.flavor[0])
			snprintf(m.labels, sizeof(m.labels), "flavor=%s,source=%s", info.flavor,
				 info.has_nova ? "nova" : "libvirt");
		else
			snprintf(m.labels, sizeof(m.labels), "source=libvirt");
	}
	struct resource_meta cmp = m;
	cmp.time_ns = d->sent.time_ns;
	if (!d->sent.time_ns || memcmp(&cmp, &d->sent, sizeof(cmp))) {
		if (sink->meta(sink->ctx, NULL, &m) != 0)
			return; /* not sent: parsed and tried again at the next refresh */
		d->sent = m;
	}
	d->xml_hash = h;
}

struct emit {
	const struct sink *sink;
	struct sample smp;
	struct lv_dom *d;            /* remembers what was sent */
	unsigned int id;             /* the domain id when known (list path), else 0 */
	int rc;
};

static void remember(struct emit *x)
{
	struct lv_dom *d = x->d;
	if (d->n_last == d->cap_last) {
		int n = d->cap_last ? d->cap_last * 2 : 16;
		struct lv_last *p = realloc(d->last, (size_t)n * sizeof(*p));
		if (!p)
			return;
		d->last = p;
		d->cap_last = n;
	}
	struct lv_last *l = &d->last[d->n_last++];
	l->time_ns = x->smp.time_ns;
	l->origin_ns = x->smp.origin_ns;
	memcpy(&l->bits, &x->smp.v, sizeof(l->bits));
	l->meter = x->smp.meter;
	l->kind = x->smp.kind;
	l->flags = x->smp.flags;
	memcpy(l->device, x->smp.device, sizeof(l->device));
}

static void put_c(struct emit *x, int meter, const char *dev, uint64_t v)
{
	x->smp.meter = (uint16_t)meter;
	x->smp.kind = SAMPLE_CUMULATIVE;
	str_copy(x->smp.device, dev, sizeof(x->smp.device));
	x->smp.v.counter = v;
	x->rc |= x->sink->sample(x->sink->ctx, NULL, &x->smp);
	remember(x);
}

static void put_g(struct emit *x, int meter, const char *dev, double v)
{
	x->smp.meter = (uint16_t)meter;
	x->smp.kind = SAMPLE_GAUGE;
	str_copy(x->smp.device, dev, sizeof(x->smp.device));
	x->smp.v.gauge = v;
	x->rc |= x->sink->sample(x->sink->ctx, NULL, &x->smp);
	remember(x);
}

/* NIC counters live as long as the host tap, not the QEMU process: an
 * unmanaged tap (type ethernet, managed='no') keeps counting across a
 * restart of its domain. A NIC counter that did not go down at the first
 * read of a new life went on: it is sent as a baseline for that whole life
 * (origin 0) rather than counted from zero, which would bill the tap's old
 * total twice. (A tap created afresh starts below its predecessor's last
 * value, unless its new life sent more in one interval than the old one in
 * all: then that first interval is not counted.) */
static void put_nic(struct emit *x, const struct lv_nic *nc, int f, int meter, uint64_t v)
{
	struct lv_dom *d = x->d;
	int n = (int)(nc - d->nics);
	int64_t origin = x->smp.origin_ns;
	struct lv_nic_slot *sl = &d->slots[n];
	struct lv_nic_ctr *c = &sl->ctr[f];
	if (strcmp(sl->mac, nc->mac)) {
		memset(sl->ctr, 0, sizeof(sl->ctr)); /* another NIC in this slot */
		str_copy(sl->mac, nc->mac, sizeof(sl->mac));
	}
	if (origin && c->life != origin) {
		c->life = origin;
		c->carry = c->have && c->prev > 0 && v >= c->prev;
	}
	if (origin && c->carry)
		x->smp.origin_ns = 0;
	put_c(x, meter, nc->mac, v);
	x->smp.origin_ns = origin;
	c->prev = v;
	c->have = 1;
}

static const struct lv_disk *disk_by_target(const struct lv_dom *d, const char *target)
{
	for (int i = 0; i < d->n_disks; i++)
		if (!strcmp(d->disks[i].target, target))
			return &d->disks[i];
	return NULL;
}

static const struct lv_nic *nic_by_target(const struct lv_dom *d, const char *target)
{
	for (int i = 0; i < d->n_nics; i++)
		if (d->nics[i].target[0] && !strcmp(d->nics[i].target, target))
			return &d->nics[i];
	return NULL;
}

/* The canonical text form of a raw UUID, without a printf per domain. */
static void uuid_text(const unsigned char raw[VIR_UUID_BUFLEN], char out[VIR_UUID_STRING_BUFLEN])
{
	static const char hex[] = "0123456789abcdef";
	int o = 0;
	for (int i = 0; i < VIR_UUID_BUFLEN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[raw[i] >> 4];
		out[o++] = hex[raw[i] & 15];
	}
	out[o] = '\0';
}

static int instance_running(int state)
{
	return state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_BLOCKED;
}

/* Which QEMU process (domain id) a reading comes from, before anything of
 * it is sent. Returns 1 when the reading must be dropped:
 * - A domain's cpu time never goes back within one process. When it does,
 *   the stats were taken while the domain was being torn down: with libvirt
 *   9.0 and QEMU 7.2 a destroy that overlaps the stats call returns a
 *   fraction of the cpu time (the threads still alive). The aggregator
 *   would take that for a reset and bill the fraction again; the stop event
 *   that follows repeats the last good reading instead.
 * - An inactive domain (id -1) has no counters.
 * A new process whose start event has not arrived yet (events come on
 * their own thread, and lag under load) is a new life that began after the
 * previous read and after the last stop: its counters count from then, and
 * the late start event must not begin the same life again (rule 3). */
static int torn_down(struct lv *s, struct lv_dom *d, virDomainPtr dom, uint64_t cpu, struct emit *x)
{
	unsigned int id = x->id ? x->id : virDomainGetID(dom);
	if (id == (unsigned int)-1 || (d->have_cpu && id == d->dom_id && cpu < d->last_cpu))
		return 1;
	if (d->have_cpu && id != d->dom_id && id != d->origin_id) {
		d->origin_ns = s->prev_read_ns > d->stop_ns ? s->prev_read_ns : d->stop_ns;
		d->origin_id = id;
		d->origin_by_event = 0;
		x->smp.origin_ns = d->origin_ns;
	}
	d->last_cpu = cpu;
	d->dom_id = id;
	d->have_cpu = 1;
	return 0;
}

/* Readings of one domain from its bulk record. Returns 1 when the record
 * had the groups we need, 0 when the per-domain calls must be used, -1
 * when the domain was being torn down (nothing sent). */
static int from_record(struct lv *s, struct lv_dom *d, virDomainStatsRecordPtr rec, struct emit *x)
{
	virTypedParameterPtr p = rec->params;
	int np = rec->nparams, state = 0;
	unsigned long long u = 0, cpu = 0;
	unsigned int vc = 0, count = 0;
	char key[64];
	const char *name;

	if (virTypedParamsGetULLong(p, np, "cpu.time", &cpu) != 1)
		return 0;
	if (torn_down(s, d, rec->dom, cpu, x))
		return -1;
	virTypedParamsGetInt(p, np, "state.state", &state);
	put_c(x, M_CPU, "", cpu);
	if (virTypedParamsGetUInt(p, np, "vcpu.current", &vc) == 1)
		put_g(x, M_VCPUS, "", vc);
	if (virTypedParamsGetULLong(p, np, "balloon.current", &u) == 1)
		put_g(x, M_MEMORY, "", (double)u * 1024.0);
	if (virTypedParamsGetULLong(p, np, "balloon.rss", &u) == 1)
		put_g(x, M_MEMORY_RESIDENT, "", (double)u * 1024.0);
	unsigned long long avail = 0, unused = 0;
	if (virTypedParamsGetULLong(p, np, "balloon.available", &avail) == 1 &&
	    virTypedParamsGetULLong(p, np, "balloon.unused", &unused) == 1 && avail >= unused)
		put_g(x, M_MEMORY_USAGE, "", (double)(avail - unused) * 1024.0);
	put_g(x, M_INSTANCE, "", instance_running(state));
	if (virTypedParamsGetUInt(p, np, "block.count", &count) == 1)
		for (unsigned int i = 0; i < count; i++) {
			snprintf(key, sizeof(key), "block.%u.name", i);
			if (virTypedParamsGetString(p, np, key, &name) != 1)
				continue;
			const struct lv_disk *dk = disk_by_target(d, name);
			if (!dk)
				continue; /* a cdrom, or a disk hot-plugged since the xml was read */
			static const struct { const char *k; int m; int gauge; } bf[] = {
				{ "rd.bytes", M_DISK_READ_BYTES, 0 }, { "wr.bytes", M_DISK_WRITE_BYTES, 0 },
				{ "rd.reqs", M_DISK_READ_REQUESTS, 0 }, { "wr.reqs", M_DISK_WRITE_REQUESTS, 0 },
				{ "capacity", M_DISK_CAPACITY, 1 }, { "allocation", M_DISK_ALLOCATION, 1 },
			};
			for (size_t f = 0; f < sizeof(bf) / sizeof(bf[0]); f++) {
				snprintf(key, sizeof(key), "block.%u.%s", i, bf[f].k);
				if (virTypedParamsGetULLong(p, np, key, &u) != 1)
					continue;
				if (bf[f].gauge)
					put_g(x, bf[f].m, dk->label, (double)u);
				else
					put_c(x, bf[f].m, dk->label, u);
			}
		}
	if (virTypedParamsGetUInt(p, np, "net.count", &count) == 1)
		for (unsigned int i = 0; i < count; i++) {
			snprintf(key, sizeof(key), "net.%u.name", i);
			if (virTypedParamsGetString(p, np, key, &name) != 1)
				continue;
			const struct lv_nic *nc = nic_by_target(d, name);
			if (!nc)
				continue;
			static const struct { const char *k; int m; } nf[] = {
				{ "rx.bytes", M_NET_IN_BYTES }, { "tx.bytes", M_NET_OUT_BYTES },
				{ "rx.pkts", M_NET_IN_PACKETS }, { "tx.pkts", M_NET_OUT_PACKETS },
			};
			for (size_t f = 0; f < sizeof(nf) / sizeof(nf[0]); f++) {
				snprintf(key, sizeof(key), "net.%u.%s", i, nf[f].k);
				if (virTypedParamsGetULLong(p, np, key, &u) == 1)
					put_nic(x, nc, (int)f, nf[f].m, u);
			}
		}
	return 1;
}

/* Readings of one domain through the per-domain calls. Disk capacity and
 * allocation (one more call per disk) and the guest's memory stats are read
 * again only when `sizes` is set: they change slowly; the last values are
 * sent every cycle. Returns 0, or -1 when the domain was being torn down
 * (nothing sent). */
static int from_calls(struct lv *s, struct lv_dom *d, virDomainPtr dom, struct emit *x, int sizes)
{
	virDomainInfo info;
	int have_info = virDomainGetInfo(dom, &info) == 0;
	if (have_info && torn_down(s, d, dom, info.cpuTime, x))
		return -1;
	if (have_info) {
		put_c(x, M_CPU, "", info.cpuTime);
		put_g(x, M_VCPUS, "", info.nrVirtCpu);
		put_g(x, M_MEMORY, "", (double)info.memory * 1024.0);
		put_g(x, M_INSTANCE, "", instance_running(info.state));
	}
	/* guest memory stats change slowly and are not billed by the hour:
	 * measured with the disk sizes, the last values sent every cycle */
	if (sizes || !d->have_memstats) {
		virDomainMemoryStatStruct ms[VIR_DOMAIN_MEMORY_STAT_NR];
		int n = virDomainMemoryStats(dom, ms, VIR_DOMAIN_MEMORY_STAT_NR, 0);
		unsigned long long avail = 0, unused = 0;
		int have_avail = 0, have_unused = 0;
		d->mem_resident = d->mem_usage = -1;
		for (int i = 0; i < n; i++) {
			if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_RSS)
				d->mem_resident = (double)ms[i].val * 1024.0;
			if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_AVAILABLE) {
				avail = ms[i].val;
				have_avail = 1;
			}
			if (ms[i].tag == VIR_DOMAIN_MEMORY_STAT_UNUSED) {
				unused = ms[i].val;
				have_unused = 1;
			}
		}
		if (have_avail && have_unused && avail >= unused)
			d->mem_usage = (double)(avail - unused) * 1024.0;
		d->have_memstats = 1;
	}
	if (d->mem_resident >= 0)
		put_g(x, M_MEMORY_RESIDENT, "", d->mem_resident);
	if (d->mem_usage >= 0)
		put_g(x, M_MEMORY_USAGE, "", d->mem_usage);
	for (int i = 0; i < d->n_disks; i++) {
		const struct lv_disk *dk = &d->disks[i];
		struct lv_disk_size *sz = &d->sizes[i];
		virDomainBlockStatsStruct bs;
		if (virDomainBlockStats(dom, dk->target, &bs, sizeof(bs)) == 0) {
			if (bs.rd_bytes >= 0)
				put_c(x, M_DISK_READ_BYTES, dk->label, (uint64_t)bs.rd_bytes);
			if (bs.wr_bytes >= 0)
				put_c(x, M_DISK_WRITE_BYTES, dk->label, (uint64_t)bs.wr_bytes);
			if (bs.rd_req >= 0)
				put_c(x, M_DISK_READ_REQUESTS, dk->label, (uint64_t)bs.rd_req);
			if (bs.wr_req >= 0)
				put_c(x, M_DISK_WRITE_REQUESTS, dk->label, (uint64_t)bs.wr_req);
		}
		virDomainBlockInfo bi;
		if ((sizes || !sz->have) && virDomainGetBlockInfo(dom, dk->target, &bi, 0) == 0) {
			sz->capacity = bi.capacity;
			sz->allocation = bi.allocation;
			sz->have = 1;
		}
		/* sent every cycle (from the last reading) so the allocation is
		 * integrated up to each read, and to the last one before a stop */
		if (sz->have) {
			put_g(x, M_DISK_CAPACITY, dk->label, (double)sz->capacity);
			put_g(x, M_DISK_ALLOCATION, dk->label, (double)sz->allocation);
		}
	}
	for (int i = 0; i < d->n_nics; i++) {
		const struct lv_nic *nc = &d->nics[i];
		virDomainInterfaceStatsStruct is;
		if (!nc->target[0] || virDomainInterfaceStats(dom, nc->target, &is, sizeof(is)) != 0)
			continue;
		if (is.rx_bytes >= 0)
			put_nic(x, nc, 0, M_NET_IN_BYTES, (uint64_t)is.rx_bytes);
		if (is.tx_bytes >= 0)
			put_nic(x, nc, 1, M_NET_OUT_BYTES, (uint64_t)is.tx_bytes);
		if (is.rx_packets >= 0)
			put_nic(x, nc, 2, M_NET_IN_PACKETS, (uint64_t)is.rx_packets);
		if (is.tx_packets >= 0)
			put_nic(x, nc, 3, M_NET_OUT_PACKETS, (uint64_t)is.tx_packets);
	}
	return 0;
}

/* Rule 4, as far as libvirt allows: the counters are gone when the stop
 * event arrives, so the domain's last readings are repeated at the stop
 * time with SAMPLE_F_LAST. Gauges (vCPUs, memory, disk sizes, instance)
 * are then integrated to the second of the stop; counters gain nothing
 * (their use since the last read is not measurable) but their life ends,
 * so the next start counts from zero. */
static void final_reading(struct lv_dom *d, int64_t t_ns, const struct sink *sink)
{
	for (int i = 0; i < d->n_last; i++) {
		const struct lv_last *l = &d->last[i];
		struct sample f;
		if (l->time_ns >= t_ns)
			continue; /* read after the event: that reading was already the last */
		memset(&f, 0, sizeof(f));
		f.time_ns = t_ns;
		f.origin_ns = l->origin_ns;
		memcpy(&f.v, &l->bits, sizeof(f.v));
		f.meter = l->meter;
		f.kind = l->kind;
		f.flags = l->flags | SAMPLE_F_LAST;
		str_copy(f.resource, d->uuid, sizeof(f.resource));
		memcpy(f.device, l->device, sizeof(f.device));
		sink->sample(sink->ctx, NULL, &f);
	}
	d->n_last = 0;
	d->stop_ns = t_ns;
}

/* Send the events queued since the last read; a start tells when the
 * domain's counters began (rule 3). */
static void drain_events(struct lv *s, const struct sink *sink)
{
	static struct lv_event batch[LV_EVENT_QUEUE];
	size_t n;
	uint64_t dropped;
	pthread_mutex_lock(&s->ev_lock);
	n = s->ev_n;
	memcpy(batch, s->ev, n * sizeof(batch[0]));
	s->ev_n = 0;
	dropped = s->ev_dropped;
	s->ev_dropped = 0;
	pthread_mutex_unlock(&s->ev_lock);
	if (dropped)
		complain(&s->ev_note, LOG_WARN, "libvirt %s: %llu lifecycle event(s) dropped: more than %d"
			 " between two reads", s->uri, (unsigned long long)dropped, LV_EVENT_QUEUE);
	for (size_t i = 0; i < n; i++) {
		struct lifecycle_event le;
		int is_new;
		char uuid[VIR_UUID_STRING_BUFLEN];
		uuid_text(batch[i].uuid, uuid);
		struct lv_dom *d = dom_get(s, uuid, &is_new);
		if (!d)
			return;
		if (is_new)
			d->first_seen_ns = batch[i].time_ns;
		if (!strcmp(batch[i].type, "rebooted")) {
			/* libvirt says one reboot two or three times, ~100 ms apart
			 * on an idle host, over a second on a loaded one (seen under
			 * TCG); no guest reboots twice within 2 s */
			if (batch[i].time_ns - d->last_reboot_ns < 2 * NS_PER_SEC)
				continue; /* the same reboot, said again */
			d->last_reboot_ns = batch[i].time_ns;
		}
		/* a start begins a life, unless a read already met its process */
		if ((!strcmp(batch[i].type, "started") || !strcmp(batch[i].type, "migrated_in")) &&
		    !(d->have_cpu && d->dom_id == batch[i].id)) {
			d->origin_ns = batch[i].time_ns;
			d->origin_by_event = 1;
			d->origin_id = batch[i].id;
		}
		if (!strcmp(batch[i].type, "stopped") || !strcmp(batch[i].type, "migrated_out") ||
		    !strcmp(batch[i].type, "crashed"))
			final_reading(d, batch[i].time_ns, sink);
		memset(&le, 0, sizeof(le));
		le.time_ns = batch[i].time_ns;
		str_copy(le.resource, uuid, sizeof(le.resource));
		str_copy(le.type, batch[i].type, sizeof(le.type));
		str_copy(le.reason, batch[i].reason, sizeof(le.reason));
		sink->event(sink->ctx, NULL, &le);
		s->events++;
	}
}

static int lv_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct lv *s = state;
	virDomainStatsRecordPtr *recs = NULL;
	unsigned int groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |
			      VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
	unsigned int flags = VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE;
	int rc;

	if ((rc = lv_connect(s, e))) {
		complain(&s->conn_fail, LOG_WARN, "%s", e->msg);
		return rc;
	}
	int n;
	/* events first: a domain stopped since the last read gets its final
	 * reading before anything newer of it is read */
	drain_events(s, sink);
	/* A driver whose bulk answer lacked every group last cycle (the test
	 * driver) is listed instead: the bulk call would cost without giving
	 * anything. It is asked again every xml_refresh cycles. */
	int list_only = s->bulk_useless && (s->cycle + 1) % s->xml_refresh != 0;
	if (list_only)
		n = list_ids(s);
	else
		n = virConnectGetAllDomainStats(s->conn, groups, &recs,
						flags | (s->nowait_ok ? VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT : 0));
	if (n < 0 && !list_only && s->nowait_ok) {
		/* an older driver refuses NOWAIT: ask without it from now on */
		s->nowait_ok = 0;
		n = virConnectGetAllDomainStats(s->conn, groups, &recs, flags);
	}
	if (n < 0) {
		virErrorPtr err = virGetLastError();
		int rc2 = err_set(e, -EIO, "libvirt %s: cannot read domain stats: %s", s->uri,
				  err && err->message ? err->message : "unknown error");
		if (virConnectIsAlive(s->conn) != 1)
			lv_disconnect(s); /* reconnect next cycle; series keep their last values */
		complain(&s->conn_fail, LOG_WARN, "%s", e->msg);
		return rc2;
	}
	if (s->conn_fail.window_ns)
		complaint_clear(&s->conn_fail, "libvirt %s: reading again", s->uri);
	s->cycle++;
	uint64_t fallback = 0, bulk = 0, torn = 0;
	if (list_only && s->id_stale && id_rebuild(s))
		complain(&s->conn_fail, LOG_WARN, "libvirt %s: out of memory", s->uri);
	for (int i = 0; i < n; i++) {
		virDomainPtr dom;
		struct lv_dom *d;
		int is_new;
		if (list_only) {
			if (!(d = dom_by_id(s, s->ids[i], &is_new)))
				continue; /* gone since the list (or no memory: read next cycle) */
			dom = d->ptr;
		} else {
			char uuid[VIR_UUID_STRING_BUFLEN];
			unsigned char raw[VIR_UUID_BUFLEN];
			dom = recs[i]->dom;
			if (virDomainGetUUID(dom, raw) != 0)
				continue;
			uuid_text(raw, uuid);
			if (!(d = dom_get(s, uuid, &is_new)))
				break;
		}
		if (is_new || (!d->seen_cycle && !d->origin_by_event)) {
			if (is_new)
				d->first_seen_ns = now_ns;
			/* never read before, after our first read, and no start event
			 * said when: it started since the previous cycle */
			if (!d->origin_by_event)
				d->origin_ns = s->cycle > 1 ? s->prev_read_ns : 0;
		}
		int refresh = !d->have_info || (s->cycle + (int)(i % s->xml_refresh)) % s->xml_refresh == 0;
		if (refresh)
			refresh_xml(s, dom, d, now_ns, sink);
		struct emit x;
		memset(&x, 0, sizeof(x));
		x.sink = sink;
		x.d = d;
		x.id = list_only ? (unsigned int)s->ids[i] : 0;
		int keep = d->n_last; /* the last good readings, for a stop's final reading */
		d->n_last = 0;
		str_copy(x.smp.resource, d->uuid, sizeof(x.smp.resource));
		x.smp.time_ns = now_ns;
		x.smp.origin_ns = d->origin_ns;
		int got = list_only ? 0 : from_record(s, d, recs[i], &x);
		if (got > 0) {
			s->bulk_domains++;
			bulk++;
		} else if (got == 0 && (got = from_calls(s, d, dom, &x, refresh)) == 0) {
			s->fallback_domains++;
			fallback++;
		}
		if (got < 0) {
			d->n_last = keep;
			torn++;
			continue;
		}
		d->seen_cycle = s->cycle;
	}
	if (torn)
		complain(&s->torn_note, LOG_INFO, "libvirt %s: %llu domain(s) not read this cycle: their cpu"
			 " time went back while they were being stopped", s->uri, (unsigned long long)torn);
	if (fallback)
		complain(&s->fallback_note, LOG_INFO, "libvirt %s: the driver answers the bulk stats call"
			 " without cpu/block/net groups; reading %llu domain(s) with per-domain calls",
			 s->uri, (unsigned long long)fallback);
	uint64_t stale = 0;
	for (size_t i = 0; i < s->n_dom; i++)
		if (s->dom[i].seen_cycle == s->cycle - 1)
			stale++; /* read last cycle, not this one: stopped, or stats did not come back */
	if (stale)
		complain(&s->stale_note, LOG_INFO, "libvirt %s: %llu domain(s) read last cycle returned no"
			 " stats this cycle (stopped, or busy)", s->uri, (unsigned long long)stale);
	s->stale += stale;
	if (recs)
		virDomainStatsRecordListFree(recs);
	/* a domain not listed is not running as the id it had: forget the id
	 * (a start gives it a new one, looked up then) */
	for (size_t i = 0; list_only && i < s->n_dom; i++)
		if (s->dom[i].ptr_id && s->dom[i].seen_cycle != s->cycle) {
			s->dom[i].ptr_id = 0;
			s->id_stale = 1;
		}
	if (!list_only)
		s->bulk_useless = n > 0 && bulk == 0;
	s->prev_read_ns = now_ns;
	s->reads++;
	return 0;
}

static void lv_free(void *state)
{
	struct lv *s = state;
	if (!s)
		return;
	lv_disconnect(s);
	pthread_mutex_destroy(&s->ev_lock);
	lv_mapping_release(&s->mapping);
	for (size_t i = 0; i < s->n_dom; i++) {
		struct lv_dom *d = &s->dom[i];
		free(d->last);
		free(d->disks);
		free(d->sizes);
		free(d->nics);
		free(d->slots);
	}
	free(s->dom);
	free(s->slot);
	free(s->ids);
	free(s->id_slot);
	free(s);
}

const struct collector_ops libvirt_collector = {
	.name = "libvirt",
	.configure = lv_configure,
	.init = lv_init,
	.read = lv_read,
	.free = lv_free,
};
