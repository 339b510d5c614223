/*
 * libvirt.c: every VM on a KVM host through libvirt: configuration,
 * lifecycle events, the domains and their readings, the cycle.
 *
 * Per interval one virConnectGetAllDomainStats() call for all active
 * domains with NOWAIT, so a domain stuck in a job never stalls the others:
 * state and interface every cycle, the dearer groups only as often as
 * their meters need (lv_read(); docs/libvirt.md has the table and what
 * each costs the host). The calls besides that one are libvirt_calls.c's,
 * cpu time from the cgroups libvirt_cgroup.c's; the state all three share
 * is libvirt_state.h. A driver that answers the bulk call without the
 * groups we asked for (libvirt's test driver in Debian 12 returns `state`
 * alone) is read per domain instead: virDomainGetInfo,
 * virDomainBlockStats, virDomainGetBlockInfo, virDomainInterfaceStats,
 * virDomainMemoryStats. Which path ran is counted and said once in the
 * log.
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
#include "vec.h"
#include "hash.h"
#include "collector.h"
#include "lifecycle.h"
#include "err.h"
#include "libvirt_state.h"
#include "libvirt_loop.h"
#include "libvirt_rpc.h"
#include "log.h"
#include "str.h"
#include "tallytime.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t fnv32(const char *s)
{
	return hash_fnv32_str(HASH_FNV32_INIT, s);
}

/* ---- the collector ---- */

static const char *const lv_keys[] = { "uri", "xml_refresh", "slow_every", "block_every", "disk_counters",
				       "mapping", NULL };
static const char *const disk_ways[] = { "bulk", "per-disk", NULL };

/* ---- libvirt's event loop: one thread per process (libvirt_loop.h) ---- */

static int loop_ok;

/* Called on libvirt's event thread: the event is stamped with the time it
 * reached us and queued for the next read. Nothing here touches a domain's
 * state (read() owns it). */
static void queue_event(struct lv *s, virDomainPtr dom, int event, int detail, uint64_t value,
			const char *alias)
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
			ev->event = event;
			ev->detail = detail;
			ev->value = value;
			str_copy(ev->alias, alias ? alias : "", sizeof(ev->alias));
			s->ev_n++;
		}
	}
	pthread_mutex_unlock(&s->ev_lock);
}

int lv_event_describe(int event, int detail, struct lv_event_desc *out)
{
	static const char *const started[] = { "booted", "migrated", "restored", "from-snapshot", "wakeup" };
	static const char *const suspended[] = { "paused", "migrated", "ioerror", "watchdog", "restored",
						 "from-snapshot", "api-error", "postcopy", "postcopy-failed" };
	static const char *const resumed[] = { "unpaused", "migrated", "from-snapshot", "postcopy",
					       "postcopy-failed" };
	static const char *const stopped[] = { "shutdown", "destroyed", "crashed", "migrated", "saved",
					       "failed", "from-snapshot" };
	/* SHUTDOWN_FINISHED (0) comes from a QEMU that does not say who asked */
	static const char *const shutdown[] = { "", "guest", "host" };
	static const char *const crashed[] = { "panicked", "crashloaded" };
	static const char *const defined[] = { "added", "updated", "renamed", "from-snapshot" };
	static const char *const undefined[] = { "removed", "renamed" };
#define LV_DETAIL(tab) (detail >= 0 && (size_t)detail < sizeof(tab) / sizeof(tab[0]) ? tab[detail] : "")
	memset(out, 0, sizeof(*out));
	out->reason = "";
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		out->type = lifecycle_name(detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? LIFECYCLE_MIGRATED_IN : LIFECYCLE_STARTED);
		out->reason = LV_DETAIL(started);
		out->edge = LV_EDGE_START;
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		/* the SLA tells a pause by an I/O error (downtime) from one asked for */
		out->type = lifecycle_name(LIFECYCLE_SUSPENDED);
		out->reason = LV_DETAIL(suspended);
		out->edge = LV_EDGE_PAUSE;
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		out->type = lifecycle_name(LIFECYCLE_RESUMED);
		out->reason = LV_DETAIL(resumed);
		out->edge = LV_EDGE_RESUME;
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		/* the types VMDown and the SLA read: a crash that ended the
		 * process is a crash, a migration away is not a stop */
		out->type = lifecycle_name(detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED ? LIFECYCLE_MIGRATED_OUT
					   : detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? LIFECYCLE_CRASHED
					   : LIFECYCLE_STOPPED);
		out->reason = LV_DETAIL(stopped);
		out->edge = LV_EDGE_STOP;
		break;
	case VIR_DOMAIN_EVENT_SHUTDOWN:
		out->type = lifecycle_name(LIFECYCLE_SHUTDOWN);
		out->reason = LV_DETAIL(shutdown);
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		/* the guest panicked; its process may live on (on_crash=preserve)
		 * or be stopped (a stopped event follows): not running either way */
		out->type = lifecycle_name(LIFECYCLE_CRASHED);
		out->reason = LV_DETAIL(crashed);
		out->edge = LV_EDGE_PAUSE;
		break;
	case VIR_DOMAIN_EVENT_DEFINED:
		out->type = lifecycle_name(LIFECYCLE_DEFINED);
		out->reason = LV_DETAIL(defined);
		break;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		out->type = lifecycle_name(LIFECYCLE_UNDEFINED);
		out->reason = LV_DETAIL(undefined);
		break;
	case LV_EV_REBOOT:
		out->type = lifecycle_name(LIFECYCLE_REBOOTED);
		out->edge = LV_EDGE_REBOOT;
		break;
	case LV_EV_DEVICE_REMOVED:
		out->type = lifecycle_name(LIFECYCLE_DEVICE_REMOVED);
		out->edge = LV_EDGE_DEVICE;
		break;
	case LV_EV_DEVICE_ADDED:
		out->edge = LV_EDGE_DEVICE; /* the devices change, no lifecycle edge: no type */
		break;
	case LV_EV_BALLOON:
		out->edge = LV_EDGE_BALLOON; /* a gauge change, not a lifecycle edge: no type */
		break;
	default:
		return -ENOENT;
	}
#undef LV_DETAIL
	return 0;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct lv_event_desc d;
	(void)conn;
	if (lv_event_describe(event, detail, &d) == 0)
		queue_event(opaque, dom, event, detail, 0, NULL);
	return 0;
}

static void on_reboot(virConnectPtr conn, virDomainPtr dom, void *opaque)
{
	(void)conn;
	queue_event(opaque, dom, LV_EV_REBOOT, 0, 0, NULL);
}

static void on_unplug(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	(void)conn;
	queue_event(opaque, dom, LV_EV_DEVICE_REMOVED, 0, 0, alias);
}

static void on_plug(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	(void)conn;
	queue_event(opaque, dom, LV_EV_DEVICE_ADDED, 0, 0, alias);
}

static void on_balloon(virConnectPtr conn, virDomainPtr dom, unsigned long long actual_kib, void *opaque)
{
	(void)conn;
	queue_event(opaque, dom, LV_EV_BALLOON, 0, actual_kib, NULL);
}

/* The slow groups' default rate is a time, not a count of cycles: the
 * levels they read (the guest's memory, disk sizes, vCPU counts without an
 * event) need no more resolution because the cycle is short, and their
 * stats are QEMU's dearest (docs/libvirt.md). The cycles in LV_SLOW_NS of
 * data time, at least one: 12 at the default 10 s interval, 120 at 1 s. */
#define LV_SLOW_NS (120 * NS_PER_SEC)

uint64_t lv_slow_every_default(int64_t interval_ns)
{
	if (interval_ns <= 0 || interval_ns >= LV_SLOW_NS)
		return 1;
	uint64_t n = (uint64_t)(LV_SLOW_NS / interval_ns);
	return n > 100000 ? 100000 : n;
}

static int lv_configure(const struct cfg_node *cfg, const struct collector_env *env, void **state,
			struct tally_err *e)
{
	struct lv *s = calloc(1, sizeof(*s));
	uint64_t refresh = 60, block = 1;
	int rc, disk_way = 1;
	if (!s)
		return -ENOMEM;
	s->interval_ns = env->interval_ns > 0 ? env->interval_ns : NS_PER_SEC;
	uint64_t slow = lv_slow_every_default(s->interval_ns);
	str_copy(s->uri, "qemu:///system", sizeof(s->uri));
	if ((rc = cfg_check_keys(cfg, "collectors.libvirt", lv_keys, e)) ||
	    (rc = cfg_get_string(cfg, "uri", s->uri, sizeof(s->uri), e)) ||
	    (rc = cfg_get_uint(cfg, "xml_refresh", 1, 100000, &refresh, e)) ||
	    (rc = cfg_get_uint(cfg, "slow_every", 1, 100000, &slow, e)) ||
	    (rc = cfg_get_uint(cfg, "block_every", 1, 100000, &block, e)) ||
	    (rc = cfg_get_enum(cfg, "disk_counters", disk_ways, &disk_way, e)) ||
	    (rc = cfg_get_string(cfg, "mapping", s->mapping_path, sizeof(s->mapping_path), e)) ||
	    (s->mapping_path[0] && (rc = mapping_load(s->mapping_path, &s->mapping, e)))) {
		free(s);
		return rc;
	}
	s->xml_refresh = (int)refresh;
	s->slow_every = (int)slow;
	s->block_every = (int)block;
	s->disk_calls = disk_way;
	s->nowait_ok = 1;
	/* a hypervisor on this host (no host in the URI): its taps are ours to read */
	s->local = !strncmp(s->uri, "qemu:///", 8) || !strncmp(s->uri, "qemu+unix:///", 13);
	str_copy(s->sysfs_net, "/sys/class/net", sizeof(s->sysfs_net));
	str_copy(s->sysfs_cgroup, "/sys/fs/cgroup", sizeof(s->sysfs_cgroup));
	s->asked_cpu = 1;
	s->cb_lifecycle = s->cb_reboot = s->cb_unplug = s->cb_plug = s->cb_balloon = -1;
	if (!(s->ev_batch = malloc(LV_EVENT_QUEUE * sizeof(*s->ev_batch)))) {
		mapping_release(&s->mapping);
		free(s);
		return err_set(e, -ENOMEM, "libvirt: out of memory");
	}
	pthread_mutex_init(&s->ev_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cb_gone, &ca);
	pthread_condattr_destroy(&ca);
	*state = s;
	return 0;
}

static void lv_quiet(void *ud, virErrorPtr err)
{
	(void)ud;
	(void)err; /* errors are read with virGetLastError and logged once by us */
}

/* The handshake with libvirt's event thread: every callback registered
 * counts one in cb_live, and libvirt calls cb_freed when it has dropped
 * the callback for good (after its deregistration, once no call of it is
 * running or can start). lv_free frees the state the callbacks write into
 * only when the count is back to zero. */
static void cb_freed(void *opaque)
{
	struct lv *s = opaque;
	pthread_mutex_lock(&s->ev_lock);
	if (s->cb_live > 0)
		s->cb_live--;
	pthread_cond_broadcast(&s->cb_gone);
	pthread_mutex_unlock(&s->ev_lock);
}

/* Counted once registered; deregistration happens only on this thread
 * (lv_disconnect), so cb_freed cannot come for it before the count. */
static int cb_register(struct lv *s, int id, virConnectDomainEventGenericCallback cb)
{
	int r = virConnectDomainEventRegisterAny(s->conn, NULL, id, cb, s, cb_freed);
	if (r >= 0) {
		pthread_mutex_lock(&s->ev_lock);
		s->cb_live++;
		pthread_mutex_unlock(&s->ev_lock);
	}
	return r;
}

/* Wait up to 5 s for libvirt to drop every callback (cb_freed); false
 * when some are still held (the state must then not be freed). */
static bool cb_wait_gone(struct lv *s)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&s->ev_lock);
	while (s->cb_live > 0 && pthread_cond_timedwait(&s->cb_gone, &s->ev_lock, &until) == 0)
		;
	bool gone = s->cb_live == 0;
	pthread_mutex_unlock(&s->ev_lock);
	return gone;
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
		s->cb_lifecycle = cb_register(s, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle));
		s->cb_reboot = cb_register(s, VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_CALLBACK(on_reboot));
		s->cb_unplug = cb_register(s, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(on_unplug));
		s->cb_plug = cb_register(s, VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(on_plug));
		s->cb_balloon = cb_register(s, VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
					    VIR_DOMAIN_EVENT_CALLBACK(on_balloon));
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
	lvrpc_close(s->rpc);   /* the daemon may be another one next time */
	s->rpc = NULL;
	s->rpc_retry_ns = 0;
	if (!s->conn)
		return;
	drop_ptrs(s);
	/* another libvirtd may give the ids again */
	for (size_t i = 0; i < s->n_dom; i++)
		s->dom[i].bulk_id = 0;
	free(s->bid_slot);
	s->bid_slot = NULL;
	s->bid_mask = s->bid_used = 0;
	if (s->cb_lifecycle >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_lifecycle);
	if (s->cb_reboot >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_reboot);
	if (s->cb_unplug >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_unplug);
	if (s->cb_plug >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_plug);
	if (s->cb_balloon >= 0)
		virConnectDomainEventDeregisterAny(s->conn, s->cb_balloon);
	virConnectClose(s->conn);
	s->conn = NULL;
	s->cb_lifecycle = s->cb_reboot = s->cb_unplug = s->cb_plug = s->cb_balloon = -1;
	s->bulk_useless = 0;
}

static int lv_init(void *state, int64_t resume_ns, struct tally_err *e)
{
	struct lv *s = state;
	virSetErrorFunc(NULL, lv_quiet);
	xmlInitParser();
	if (!loop_ok) {
		int rc = lvloop_start();
		if (rc)
			log_msg(LOG_WARN, "libvirt: no event loop (%s): starts and stops are seen only at the next"
				" read", strerror(-rc));
		loop_ok = rc == 0;
	}
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

static void uuid_text(const unsigned char raw[VIR_UUID_BUFLEN], char out[VIR_UUID_STRING_BUFLEN]);

/* The domain with this uuid (its bytes, as libvirt gives them), added if
 * new (*is_new). NULL without memory. */
static struct lv_dom *dom_get(struct lv *s, const unsigned char raw[VIR_UUID_BUFLEN], int *is_new)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	uuid_text(raw, uuid);
	if (!s->slot && rehash(s))
		return NULL;
	size_t j = uuid_hash(uuid) & s->mask;
	for (; s->slot[j]; j = (j + 1) & s->mask)
		if (!strcmp(s->dom[s->slot[j] - 1].uuid, uuid)) {
			*is_new = 0;
			return &s->dom[s->slot[j] - 1];
		}
	if (vec_reserve((void **)&s->dom, &s->cap_dom, s->n_dom + 1, sizeof(*s->dom), 64))
		return NULL;
	struct lv_dom *d = &s->dom[s->n_dom++];
	memset(d, 0, sizeof(*d));
	str_copy(d->uuid, uuid, sizeof(d->uuid));
	memcpy(d->raw, raw, sizeof(d->raw));
	d->ev_running = -1;
	d->cg_fd = -1;
	d->want_sizes = 1;
	*is_new = 1;
	s->slot[j] = (uint32_t)s->n_dom;
	if (s->n_dom * 2 > s->mask + 1 && rehash(s))
		return NULL;
	return d;
}

/* The domain whose records came with domain id `id` on this connection,
 * or NULL. */
struct lv_dom *lv_dom_by_bulk_id(struct lv *s, unsigned int id)
{
	if (!s->bid_slot || id == 0 || id == (unsigned int)-1)
		return NULL;
	for (size_t j = ((size_t)id * 0x9e3779b1u) & s->bid_mask; s->bid_slot[j]; j = (j + 1) & s->bid_mask) {
		struct lv_dom *d = &s->dom[s->bid_slot[j] - 1];
		if (d->bulk_id == id)
			return d;
	}
	return NULL;
}

/* Remember that d's records come with id. Without memory nothing is
 * remembered (the next record is matched by its UUID again). */
static void bulk_id_put(struct lv *s, struct lv_dom *d, unsigned int id)
{
	if (id == 0 || id == (unsigned int)-1)
		return;
	d->bulk_id = id;
	size_t size = s->bid_mask + 1;
	if (!s->bid_slot || (s->bid_used + 1) * 2 > size) {
		/* rebuilt from the domains that hold an id: the stopped ones'
		 * entries go */
		size_t live = 0;
		for (size_t i = 0; i < s->n_dom; i++)
			live += s->dom[i].bulk_id != 0;
		for (size_t want = 256; ; want *= 2)
			if (live * 2 < want) {
				size = want;
				break;
			}
		uint32_t *t = calloc(size, sizeof(*t));
		if (!t) {
			d->bulk_id = 0;
			return;
		}
		free(s->bid_slot);
		s->bid_slot = t;
		s->bid_mask = size - 1;
		s->bid_used = 0;
		for (size_t i = 0; i < s->n_dom; i++) {
			if (!s->dom[i].bulk_id)
				continue;
			size_t j = ((size_t)s->dom[i].bulk_id * 0x9e3779b1u) & s->bid_mask;
			while (s->bid_slot[j])
				j = (j + 1) & s->bid_mask;
			s->bid_slot[j] = (uint32_t)i + 1;
			s->bid_used++;
		}
		return;
	}
	size_t j = ((size_t)id * 0x9e3779b1u) & s->bid_mask;
	while (s->bid_slot[j])
		j = (j + 1) & s->bid_mask;
	s->bid_slot[j] = (uint32_t)(d - s->dom) + 1;
	s->bid_used++;
}

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
	if (!p)
		return NULL;
	if (virDomainGetUUID(p, raw) != 0) {
		virDomainFree(p);
		return NULL;
	}
	struct lv_dom *d = dom_get(s, raw, is_new);
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
		if (err && err->code == VIR_ERR_NO_DOMAIN)
			return; /* stopped since the bulk call: its stop event ends it */
		complain(&s->xml_fail, LOG_WARN, "libvirt: domain %s: cannot read its xml: %s", d->uuid,
			 err && err->message ? err->message : "unknown error");
		return;
	}
	/* the same XML as last time: the same devices and metadata, already
	 * sent (parsing it again costs more than all of a cycle's reads) */
	uint64_t h = hash_fnv64_str(HASH_FNV64_INIT, xml);
	if (d->have_info && d->xml_hash == h) {
		free(xml);
		d->xml_stale = 0;
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
	d->xml_stale = 0;

	struct resource_meta m;
	memset(&m, 0, sizeof(m));
	m.time_ns = now;
	str_copy(m.resource, d->uuid, sizeof(m.resource));
	str_copy(m.type, "instance", sizeof(m.type));
	str_copy(m.name, info.has_nova && info.nova_name[0] ? info.nova_name : info.name, sizeof(m.name));
	const struct mapping_rule *rule = info.project[0] ? NULL : mapping_match(&s->mapping, d->uuid, info.name);
	if (rule) {
		str_copy(m.tenant, rule->tenant, sizeof(m.tenant));
		str_copy(m.project, rule->tenant, sizeof(m.project));
		str_copy(m.user, rule->user, sizeof(m.user));
		str_copy(m.flavor, rule->flavor, sizeof(m.flavor));
		mapping_labels_with(m.labels, sizeof(m.labels), rule->labels, "source", "mapping");
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
		if (sink_note(&s->ss, sink->meta(sink->ctx, NULL, &m)) != 0)
			return; /* not sent: parsed and tried again at the next refresh */
		d->sent = m;
	}
	d->xml_hash = h;
}

struct emit {
	const struct sink *sink;
	struct sample smp;
	struct lv *s;
	struct lv_dom *d;            /* remembers what was sent */
	unsigned int id;             /* the domain id when known (list path), else 0 */
};

/* The entry of series (meter, device) in d->last, added if new; NULL
 * without memory. Reads put their series in the same order every time, so
 * the entry after the previous one is tried first. */
static struct lv_last *last_entry(struct lv_dom *d, uint16_t meter, const char *device)
{
	if (d->last_cur < d->n_last && d->last[d->last_cur].meter == meter &&
	    !strcmp(d->last[d->last_cur].device, device))
		return &d->last[d->last_cur++];
	for (int i = 0; i < d->n_last; i++)
		if (d->last[i].meter == meter && !strcmp(d->last[i].device, device)) {
			d->last_cur = i + 1;
			return &d->last[i];
		}
	if (d->n_last == d->cap_last) {
		int n = d->cap_last ? d->cap_last * 2 : 16;
		struct lv_last *p = realloc(d->last, (size_t)n * sizeof(*p));
		if (!p)
			return NULL;
		d->last = p;
		d->cap_last = n;
	}
	struct lv_last *l = &d->last[d->n_last++];
	memset(l, 0, sizeof(*l));
	l->meter = meter;
	str_copy(l->device, device, sizeof(l->device));
	d->last_cur = d->n_last;
	return l;
}

static void remember(struct lv_dom *d, const struct sample *smp)
{
	struct lv_last *l = last_entry(d, smp->meter, smp->device);
	if (!l)
		return; /* no memory: this series' final reading repeats an older value or is missed */
	l->time_ns = smp->time_ns;
	l->origin_ns = smp->origin_ns;
	memcpy(&l->bits, &smp->v, sizeof(l->bits));
	l->kind = smp->kind;
	l->flags = smp->flags;
}

static void put_c(struct emit *x, int meter, const char *dev, uint64_t v)
{
	x->smp.meter = (uint16_t)meter;
	x->smp.kind = SAMPLE_CUMULATIVE;
	str_copy(x->smp.device, dev, sizeof(x->smp.device));
	x->smp.v.counter = v;
	sink_note(&x->s->ss, x->sink->sample(x->sink->ctx, NULL, &x->smp));
	remember(x->d, &x->smp);
}

static void put_g(struct emit *x, int meter, const char *dev, double v)
{
	x->smp.meter = (uint16_t)meter;
	x->smp.kind = SAMPLE_GAUGE;
	str_copy(x->smp.device, dev, sizeof(x->smp.device));
	x->smp.v.gauge = v;
	sink_note(&x->s->ss, x->sink->sample(x->sink->ctx, NULL, &x->smp));
	remember(x->d, &x->smp);
}

/* One number from a sysfs file of the host's network device `dev`
 * (`what` = "ifindex", "statistics/rx_bytes", ...). 0, or -errno when the
 * device is gone or the file holds no number. */
static int netdev_read(const struct lv *s, const char *dev, const char *what, uint64_t *v)
{
	char path[256], buf[32], *end;
	if (!dev[0] || strchr(dev, '/') || dev[0] == '.')
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s/%s", s->sysfs_net, dev, what);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	errno = 0;
	unsigned long long u = strtoull(buf, &end, 10);
	if (end == buf || errno || (*end && *end != '\n'))
		return -EINVAL;
	*v = u;
	return 0;
}

/* The host device's ifindex of NIC nc (local hypervisor only), or 0. */
static int tap_ifindex(const struct lv *s, const struct lv_nic *nc)
{
	uint64_t v;
	if (!s->local || netdev_read(s, nc->target, "ifindex", &v) || !v || v > INT32_MAX)
		return 0;
	return (int)v;
}

/* NIC counters live as long as the host tap, not the QEMU process: an
 * unmanaged tap (type ethernet, managed='no') keeps counting across a
 * restart of its domain. At the first read of a new life, a NIC whose tap
 * is the same device as before (the same ifindex, on a local hypervisor)
 * went on: its counter is one life across the restart. Its final value
 * (read from the tap at the stop) is sent again as a baseline at the new
 * life's start, and the new life's readings count from it: nothing billed
 * twice, nothing lost, since a tap without its QEMU counts nothing. A
 * fresh tap (another ifindex) counts from zero with the domain. Where the
 * tap cannot be looked at (a remote hypervisor), a counter that did not go
 * down at the first read of a new life is taken to have gone on. */
static void put_nic(struct emit *x, const struct lv_nic *nc, int f, int meter, uint64_t v)
{
	struct lv_dom *d = x->d;
	int n = (int)(nc - d->nics);
	int64_t origin = x->smp.origin_ns, now = x->smp.time_ns;
	struct lv_nic_slot *sl = &d->slots[n];
	struct lv_nic_ctr *c = &sl->ctr[f];
	if (strcmp(sl->mac, nc->mac)) {
		memset(sl, 0, sizeof(*sl)); /* another NIC in this slot */
		str_copy(sl->mac, nc->mac, sizeof(sl->mac));
	}
	if (!sl->looked || sl->ifindex_life != origin) {
		/* once per NIC and life: is its host device the one of before? */
		int idx = tap_ifindex(x->s, nc);
		sl->same_dev = idx && sl->ifindex ? idx == sl->ifindex : -1;
		sl->ifindex_life = origin;
		sl->looked = 1;
		if (idx)
			sl->ifindex = idx;
	}
	if (origin && c->life != origin) {
		c->life = origin;
		c->carry = c->have && (sl->same_dev >= 0 ? sl->same_dev : c->prev > 0 && v >= c->prev);
		if (c->carry && origin < now) {
			/* the tap's value when the new life began: its last one */
			x->smp.time_ns = origin;
			x->smp.origin_ns = 0;
			put_c(x, meter, nc->mac, c->prev);
			x->smp.time_ns = now;
		}
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

/* The instance gauge of a read whose state says `state`. With lifecycle
 * events, the running state changes at the event, never at a read: a read
 * that sees another state than the last event said is a change whose event
 * is on its way (it arrives with the next drain, stamped with its time);
 * only a second read in a row that disagrees is believed (an event lost). */
static int instance_value(const struct lv *s, struct lv_dom *d, int running)
{
	if (s->cb_lifecycle >= 0 && d->ev_running >= 0 && running != d->ev_running && !d->disagree) {
		d->disagree = 1;
		return d->ev_running;
	}
	d->disagree = 0;
	d->ev_running = running;
	return running;
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
		d->want_sizes = 1; /* the new process's disks, from the block group */
		d->xml_stale = 1;
	}
	d->last_cpu = cpu;
	d->dom_id = id;
	d->have_cpu = 1;
	return 0;
}

/* The allocation gauges a bulk answer did not bring: the balloon and vcpu
 * groups are asked for every slow_every cycles (their stats cost libvirtd
 * and QEMU more than all the counters; docs/libvirt.md), and a NOWAIT
 * answer for a domain in a job lacks groups. Their last values hold: they
 * are sent again at this read (changes between come with events: balloon
 * change, pause, resume). A domain with no value yet (first seen between
 * two slow cycles) gets vCPUs and memory from virDomainGetInfo, which asks
 * no guest. */
static void slow_gauges(struct lv *s, struct lv_dom *d, virDomainPtr dom, struct emit *x, int have_vc, int have_mem)
{
	int got_vc = have_vc, got_mem = have_mem;
	(void)s;
	for (int i = 0; i < d->n_last; i++) {
		const struct lv_last *l = &d->last[i];
		int m = l->meter;
		if (l->kind != SAMPLE_GAUGE || l->device[0] || l->time_ns >= x->smp.time_ns ||
		    (m == M_VCPUS && have_vc) || (m != M_VCPUS && have_mem) ||
		    (m != M_VCPUS && m != M_MEMORY && m != M_MEMORY_USAGE && m != M_MEMORY_RESIDENT))
			continue;
		double v;
		memcpy(&v, &l->bits, sizeof(v));
		got_vc |= m == M_VCPUS;
		got_mem |= m == M_MEMORY;
		put_g(x, m, "", v); /* updates entry i in place */
	}
	virDomainInfo info;
	if ((!got_vc || !got_mem) && virDomainGetInfo(dom, &info) == 0) {
		if (!got_vc)
			put_g(x, M_VCPUS, "", info.nrVirtCpu);
		if (!got_mem)
			put_g(x, M_MEMORY, "", (double)info.memory * 1024.0);
	}
}

static const char *const blk_fields[6] = { "rd.bytes", "wr.bytes", "rd.reqs", "wr.reqs", "capacity", "allocation" };
static const int blk_meters[6] = { M_DISK_READ_BYTES, M_DISK_WRITE_BYTES, M_DISK_READ_REQUESTS,
				   M_DISK_WRITE_REQUESTS, M_DISK_CAPACITY, M_DISK_ALLOCATION };
static const char *const net_fields[4] = { "rx.bytes", "tx.bytes", "rx.pkts", "tx.pkts" };
static const int net_meters[4] = { M_NET_IN_BYTES, M_NET_OUT_BYTES, M_NET_IN_PACKETS, M_NET_OUT_PACKETS };

/* "N.rest" after a "block." or "net." prefix: the device d of r's array
 * and rest, or NULL. */
static struct lv_rec_dev *rec_dev(struct lv_rec_dev *arr, const char *k, const char **rest)
{
	unsigned int i = 0;
	const char *c = k;
	if (*c < '0' || *c > '9')
		return NULL;
	for (; *c >= '0' && *c <= '9'; c++)
		if ((i = i * 10 + (unsigned int)(*c - '0')) >= LV_MAX_DEVS)
			return NULL;
	if (*c != '.')
		return NULL;
	*rest = c + 1;
	return &arr[i];
}

static void rec_ull(const virTypedParameter *p, unsigned long long *v, uint8_t *have)
{
	if (!*have && p->type == VIR_TYPED_PARAM_ULLONG) {
		*v = p->value.ul;
		*have = 1;
	}
}

static void rec_uint(const virTypedParameter *p, unsigned int *v, uint8_t *have)
{
	if (!*have && p->type == VIR_TYPED_PARAM_UINT) {
		*v = p->value.ui;
		*have = 1;
	}
}

/* Add one record's fields to r (cleared by the caller): a domain's
 * readings of one cycle can come in two or three records (the bulk call's
 * and, for some domains, those of the second calls: lv_extra_calls()). */
static void rec_add(const virDomainStatsRecord *rec, struct lv_rec *r)
{
	for (int i = 0; i < rec->nparams; i++) {
		const virTypedParameter *p = &rec->params[i];
		const char *k = p->field, *rest;
		struct lv_rec_dev *dv;
		switch (k[0]) {
		case 's':
			if (!strcmp(k, "state.state") && !r->have_state && p->type == VIR_TYPED_PARAM_INT) {
				r->state = p->value.i;
				r->have_state = 1;
			}
			break;
		case 'c':
			if (!strcmp(k, "cpu.time"))
				rec_ull(p, &r->cpu, &r->have_cpu);
			break;
		case 'v':
			if (!strcmp(k, "vcpu.current"))
				rec_uint(p, &r->vcpus, &r->have_vcpus);
			break;
		case 'b':
			if (!strncmp(k, "balloon.", 8)) {
				k += 8;
				if (!strcmp(k, "current"))
					rec_ull(p, &r->bal_cur, &r->have_cur);
				else if (!strcmp(k, "rss"))
					rec_ull(p, &r->bal_rss, &r->have_rss);
				else if (!strcmp(k, "available"))
					rec_ull(p, &r->bal_avail, &r->have_avail);
				else if (!strcmp(k, "unused"))
					rec_ull(p, &r->bal_unused, &r->have_unused);
			} else if (!strncmp(k, "block.", 6)) {
				if (!strcmp(k + 6, "count"))
					rec_uint(p, &r->n_blk, &r->have_n_blk);
				else if ((dv = rec_dev(r->blk, k + 6, &rest))) {
					if (!strcmp(rest, "name")) {
						if (!dv->name && p->type == VIR_TYPED_PARAM_STRING)
							dv->name = p->value.s;
						break;
					}
					for (int f = 0; f < 6; f++)
						if (!strcmp(rest, blk_fields[f])) {
							uint8_t h = dv->have >> f & 1;
							rec_ull(p, &dv->v[f], &h);
							dv->have |= (uint8_t)(h << f);
							break;
						}
				}
			}
			break;
		case 'n':
			if (strncmp(k, "net.", 4))
				break;
			if (!strcmp(k + 4, "count"))
				rec_uint(p, &r->n_net, &r->have_n_net);
			else if ((dv = rec_dev(r->net, k + 4, &rest))) {
				if (!strcmp(rest, "name")) {
					if (!dv->name && p->type == VIR_TYPED_PARAM_STRING)
						dv->name = p->value.s;
					break;
				}
				for (int f = 0; f < 4; f++)
					if (!strcmp(rest, net_fields[f])) {
						uint8_t h = dv->have >> f & 1;
						rec_ull(p, &dv->v[f], &h);
						dv->have |= (uint8_t)(h << f);
						break;
					}
			}
			break;
		}
	}
}

/* The disk sizes (capacity, allocation) of d's current disks that this
 * read did not bring: read with the block group every slow cycle, their
 * last values hold and are sent again, so they are integrated up to each
 * read (and to the last one before a stop). A disk no longer in the XML is
 * not sent again. */
static void hold_disk_sizes(struct emit *x)
{
	struct lv_dom *d = x->d;
	for (int i = 0; i < d->n_last; i++) {
		const struct lv_last *l = &d->last[i];
		if (l->kind != SAMPLE_GAUGE || l->time_ns >= x->smp.time_ns ||
		    (l->meter != M_DISK_CAPACITY && l->meter != M_DISK_ALLOCATION))
			continue;
		for (int k = 0; k < d->n_disks; k++)
			if (!strcmp(d->disks[k].label, l->device)) {
				double v;
				memcpy(&v, &l->bits, sizeof(v));
				put_g(x, l->meter, l->device, v); /* updates entry i in place */
				break;
			}
	}
}

/* Readings of one domain from its bulk record, and its answers to the
 * cycle's second calls (xr, or NULL). Returns 1 when the records had the
 * groups we need, 0 when the per-domain calls must be used, -1 when the
 * domain was being torn down (nothing sent). */
static int from_record(struct lv *s, struct lv_dom *d, virDomainStatsRecordPtr rec, const struct lv_xrec *xr,
		       struct emit *x)
{
	struct lv_rec *r = &s->rec;
	memset(r, 0, sizeof(*r));
	rec_add(rec, r);
	for (int g = 0; xr && g < 2; g++)
		if (xr->rec[g])
			rec_add(xr->rec[g], r);
	unsigned int id = x->id ? x->id : virDomainGetID(rec->dom);
	uint64_t cg;
	x->id = id;
	if (r->have_cpu) {
		if (s->local && !s->cg_off)
			lv_cg_check(s, d, id, &r->cpu);
	} else if (s->asked_cpu) {
		return 0; /* a driver that answers without the groups asked for */
	} else if (s->cg_ok && lv_cg_cpu(s, d, id, &cg) == 0) {
		/* checked, or (the check's call failed) a cgroup found the way
		 * the checked ones were */
		r->cpu = cg;
		r->have_cpu = 1;
	} else {
		d->cg_ok_id = 0; /* no cgroup to read: cpu-total is asked for it at the next cycle */
		return -2;
	}
	if (torn_down(s, d, rec->dom, r->cpu, x))
		return -1;
	/* the vCPUs: the domain's definition (no guest or QEMU is asked),
	 * asked with the others (lv_rpc_calls()) or through the library */
	virDomainInfo info;
	if (!r->have_vcpus && s->vcpus_by_info) {
		if (d->info_cycle == s->cycle) {
			r->vcpus = d->info.vcpus;
			r->have_vcpus = d->info.state == LVRPC_OK;
		} else if (virDomainGetInfo(rec->dom, &info) == 0) {
			r->vcpus = info.nrVirtCpu;
			r->have_vcpus = 1;
		}
	}
	if (r->have_n_blk) {
		d->want_sizes = 0;
		if (s->blk_main)
			d->blk_busy = 0; /* its job was free for the NOWAIT call: per-disk calls again */
	} else if (lv_disk_call_due(s, d, xr)) {
		lv_disk_call(s, d, rec->dom, r);
	}
	put_c(x, M_CPU, "", r->cpu);
	if (!r->have_vcpus || !r->have_cur)
		slow_gauges(s, d, rec->dom, x, r->have_vcpus, r->have_cur);
	if (r->have_vcpus)
		put_g(x, M_VCPUS, "", r->vcpus);
	if (r->have_cur)
		put_g(x, M_MEMORY, "", (double)r->bal_cur * 1024.0);
	if (r->have_rss)
		put_g(x, M_MEMORY_RESIDENT, "", (double)r->bal_rss * 1024.0);
	if (r->have_avail && r->have_unused && r->bal_avail >= r->bal_unused)
		put_g(x, M_MEMORY_USAGE, "", (double)(r->bal_avail - r->bal_unused) * 1024.0);
	put_g(x, M_INSTANCE, "", instance_value(s, d, instance_running(r->state)));
	for (unsigned int i = 0; r->have_n_blk && i < r->n_blk && i < LV_MAX_DEVS; i++) {
		const struct lv_rec_dev *dv = &r->blk[i];
		const struct lv_disk *dk = dv->name ? disk_by_target(d, dv->name) : NULL;
		if (!dk)
			continue; /* a cdrom, or a disk hot-plugged since the xml was read */
		for (int f = 0; f < 6; f++) {
			if (!(dv->have >> f & 1))
				continue;
			if (blk_meters[f] == M_DISK_CAPACITY || blk_meters[f] == M_DISK_ALLOCATION)
				put_g(x, blk_meters[f], dk->label, (double)dv->v[f]);
			else
				put_c(x, blk_meters[f], dk->label, dv->v[f]);
		}
	}
	for (unsigned int i = 0; r->have_n_net && i < r->n_net && i < LV_MAX_DEVS; i++) {
		const struct lv_rec_dev *dv = &r->net[i];
		const struct lv_nic *nc = dv->name ? nic_by_target(d, dv->name) : NULL;
		if (!nc)
			continue;
		for (int f = 0; f < 4; f++)
			if (dv->have >> f & 1)
				put_nic(x, nc, f, net_meters[f], dv->v[f]);
	}
	hold_disk_sizes(x);
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
		put_g(x, M_INSTANCE, "", instance_value(s, d, instance_running(info.state)));
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

/* The value NIC counter `meter` of `mac` has on its host tap now, when
 * the tap outlived the domain's process (unmanaged, type ethernet): the
 * same device the life was read from (its ifindex), and not below the last
 * value read. libvirt gives the guest's view, the tap's swapped. 0 or
 * -errno (no tap: its counters went with the process). */
static int tap_tail(const struct lv *s, struct lv_dom *d, uint16_t meter, const char *mac, uint64_t last,
		    uint64_t *v)
{
	static const char *const file[] = {
		[M_NET_IN_BYTES - M_NET_IN_BYTES] = "statistics/tx_bytes",
		[M_NET_OUT_BYTES - M_NET_IN_BYTES] = "statistics/rx_bytes",
		[M_NET_IN_PACKETS - M_NET_IN_BYTES] = "statistics/tx_packets",
		[M_NET_OUT_PACKETS - M_NET_IN_BYTES] = "statistics/rx_packets",
	};
	if (!s->local || meter < M_NET_IN_BYTES || meter > M_NET_OUT_PACKETS)
		return -ENOENT;
	for (int i = 0; i < d->n_nics && i < d->n_slots; i++) {
		const struct lv_nic *nc = &d->nics[i];
		if (strcmp(nc->mac, mac) || strcmp(d->slots[i].mac, mac) || !d->slots[i].ifindex ||
		    tap_ifindex(s, nc) != d->slots[i].ifindex)
			continue;
		int rc = netdev_read(s, nc->target, file[meter - M_NET_IN_BYTES], v);
		if (rc)
			return rc;
		if (*v < last)
			return -ERANGE; /* not the counter we read: a tap made afresh */
		d->slots[i].ctr[meter - M_NET_IN_BYTES].prev = *v;
		return 0;
	}
	return -ENOENT;
}

/* Rule 4: the process's counters are gone when the stop event arrives, so
 * every series of the life ends at the stop's time with SAMPLE_F_LAST:
 * gauges (vCPUs, memory, disk sizes, instance) are integrated to the stop,
 * counters end with the last value read - their use since that read (the
 * tail) is not measurable - except a NIC counter whose tap outlived the
 * process, which is read now from the tap (tail_ok: no new process can
 * have counted on it yet). Every series the life had ends here, also those
 * whose group the last read lacked; their next reading begins a new life.
 * The tails left open are counted (tail_open, tail_open_ns). */
static void final_reading(struct lv *s, struct lv_dom *d, int64_t t_ns, int tail_ok, const struct sink *sink)
{
	for (int i = 0; i < d->n_last; i++) {
		const struct lv_last *l = &d->last[i];
		struct sample f;
		memset(&f, 0, sizeof(f));
		/* a reading stamped at or after the stop (the same instant) is
		 * ended just after it, never left open */
		f.time_ns = l->time_ns < t_ns ? t_ns : l->time_ns + 1;
		f.origin_ns = l->origin_ns;
		memcpy(&f.v, &l->bits, sizeof(f.v));
		f.meter = l->meter;
		f.kind = l->kind;
		f.flags = l->flags | SAMPLE_F_LAST;
		str_copy(f.resource, d->uuid, sizeof(f.resource));
		memcpy(f.device, l->device, sizeof(f.device));
		if (f.kind == SAMPLE_CUMULATIVE) {
			uint64_t v;
			if (tail_ok && tap_tail(s, d, f.meter, f.device, f.v.counter, &v) == 0) {
				f.v.counter = v;
				s->tail_closed++;
			} else {
				s->tail_open++;
				s->tail_open_ns += (uint64_t)(t_ns - l->time_ns);
			}
		}
		sink_note(&s->ss, sink->sample(sink->ctx, NULL, &f));
	}
	d->n_last = 0;
	d->last_cur = 0;
	d->stop_ns = t_ns;
	lv_cg_close(d); /* the process and its cgroup are gone */
	d->cg_id = 0;
	d->cg_ok_id = 0;
	d->want_sizes = 1; /* the next life's disk sizes come with the block group */
	d->bulk_id = 0;
	d->ev_running = -1;
	d->disagree = 0;
}

/* A lifecycle edge that changes an allocation gauge (instance on a pause
 * or resume, memory on a balloon change) takes effect at the event's time,
 * not at the next read (rule 7): the gauges of the life, vCPUs and memory
 * included, are sent at t_ns, so billing integrates to the same edge the
 * SLA reads from the event. meter < 0: instance = running; else that
 * meter's new value. Nothing is sent for a domain not read in this life. */
static void event_gauges(struct lv *s, struct lv_dom *d, int64_t t_ns, int meter, double value,
			 const struct sink *sink)
{
	for (int i = 0; i < d->n_last; i++) {
		struct lv_last *l = &d->last[i];
		struct sample g;
		if (l->kind != SAMPLE_GAUGE || l->device[0] || l->time_ns >= t_ns ||
		    (l->meter != M_INSTANCE && l->meter != M_VCPUS && l->meter != M_MEMORY))
			continue;
		memset(&g, 0, sizeof(g));
		g.time_ns = t_ns;
		g.origin_ns = l->origin_ns;
		memcpy(&g.v, &l->bits, sizeof(g.v));
		if (meter < 0 && l->meter == M_INSTANCE)
			g.v.gauge = value;
		else if (l->meter == meter)
			g.v.gauge = value;
		g.meter = l->meter;
		g.kind = SAMPLE_GAUGE;
		g.flags = l->flags;
		str_copy(g.resource, d->uuid, sizeof(g.resource));
		if (sink_note(&s->ss, sink->sample(sink->ctx, NULL, &g)) == 0)
			remember(d, &g);
	}
}

/* Was domain `uuid` started again by an event after batch[i]? */
static int restarted_after(const struct lv_event *batch, size_t n, size_t i)
{
	for (size_t k = i + 1; k < n; k++)
		if (!memcmp(batch[k].uuid, batch[i].uuid, VIR_UUID_BUFLEN) && batch[k].event == VIR_DOMAIN_EVENT_STARTED)
			return 1;
	return 0;
}

/* Send the events queued since the last read, and what they change: a
 * start tells when the domain's counters began (rule 3), a stop ends every
 * series (rule 4), a pause or resume moves the running state and a balloon
 * change the memory at the event's time. */
static void drain_events(struct lv *s, const struct sink *sink)
{
	struct lv_event *batch = s->ev_batch;
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
		struct lv_event_desc ed;
		int is_new;
		const struct lv_event *ev = &batch[i];
		if (lv_event_describe(ev->event, ev->detail, &ed))
			continue;
		struct lv_dom *d = dom_get(s, ev->uuid, &is_new);
		if (!d)
			return;
		if (is_new)
			d->first_seen_ns = ev->time_ns;
		switch (ed.edge) {
		case LV_EDGE_REBOOT:
			/* libvirt says one reboot two or three times, ~100 ms apart
			 * on an idle host, over a second on a loaded one (seen under
			 * TCG); no guest reboots twice within 2 s */
			if (ev->time_ns - d->last_reboot_ns < 2 * NS_PER_SEC)
				continue; /* the same reboot, said again */
			d->last_reboot_ns = ev->time_ns;
			break;
		case LV_EDGE_START:
			/* a start begins a life, unless a read already met its process */
			if (!(d->have_cpu && d->dom_id == ev->id)) {
				d->origin_ns = ev->time_ns;
				d->origin_by_event = 1;
				d->origin_id = ev->id;
				/* a new process may have other devices: its XML, and its
				 * disks' sizes from the block group, at the next read */
				d->xml_stale = 1;
				d->want_sizes = 1;
			}
			d->ev_running = 1;
			break;
		case LV_EDGE_STOP:
			final_reading(s, d, ev->time_ns, !restarted_after(batch, n, i), sink);
			break;
		case LV_EDGE_PAUSE:
		case LV_EDGE_RESUME:
			d->ev_running = ed.edge == LV_EDGE_RESUME;
			d->disagree = 0;
			event_gauges(s, d, ev->time_ns, -1, d->ev_running, sink);
			break;
		case LV_EDGE_BALLOON:
			event_gauges(s, d, ev->time_ns, M_MEMORY, (double)ev->value * 1024.0, sink);
			break;
		case LV_EDGE_DEVICE:
			/* a disk or NIC came or went: the devices from the XML and
			 * the disks' sizes from the block group at the next read */
			d->xml_stale = 1;
			d->want_sizes = 1;
			break;
		case LV_EDGE_NONE:
			break;
		}
		if (!ed.type)
			continue;
		memset(&le, 0, sizeof(le));
		le.time_ns = ev->time_ns;
		str_copy(le.resource, d->uuid, sizeof(le.resource));
		str_copy(le.type, ed.type, sizeof(le.type));
		str_copy(le.reason, ev->event == LV_EV_DEVICE_REMOVED ? ev->alias : ed.reason, sizeof(le.reason));
		if (sink_note(&s->ss, sink->event(sink->ctx, NULL, &le)) == 0)
			s->events++;
	}
}

/* One cycle's readings of every domain: the bulk answer's records (n of
 * them), or the n active ids of s->ids (list_only). */
static void read_domains(struct lv *s, virDomainStatsRecordPtr *recs, int n, int list_only, int64_t now_ns,
			 const struct sink *sink)
{
	s->cycle++;
	uint64_t fallback = 0, bulk = 0, torn = 0;
	if (list_only && s->id_stale && id_rebuild(s))
		complain(&s->conn_fail, LOG_WARN, "libvirt %s: out of memory", s->uri);
	for (int i = 0; i < n; i++) {
		virDomainPtr dom;
		struct lv_dom *d;
		int is_new;
		unsigned int bid = 0;
		if (list_only) {
			if (!(d = dom_by_id(s, s->ids[i], &is_new)))
				continue; /* gone since the list (or no memory: read next cycle) */
			dom = d->ptr;
		} else {
			unsigned char raw[VIR_UUID_BUFLEN];
			dom = recs[i]->dom;
			bid = s->rid[i];
			if ((d = lv_dom_by_bulk_id(s, bid))) {
				is_new = 0;
			} else {
				if (virDomainGetUUID(dom, raw) != 0)
					continue;
				if (!(d = dom_get(s, raw, &is_new)))
					break;
				if (d->bulk_id != bid)
					bulk_id_put(s, d, bid);
			}
			if (s->bulk_rpc && s->bulk_rec[i].own) {
				/* a protocol record's reference, looked up for
				 * this process: the domain keeps it */
				if (d->ptr)
					virDomainFree(d->ptr);
				d->ptr = dom;
				d->ptr_id = (int)bid;
				s->bulk_rec[i].own = 0;
				s->id_stale = 1;
			}
		}
		if (is_new || (!d->seen_cycle && !d->origin_by_event)) {
			if (is_new)
				d->first_seen_ns = now_ns;
			/* never read before, after our first read, and no start event
			 * said when: it started since the previous cycle */
			if (!d->origin_by_event)
				d->origin_ns = s->cycle > 1 ? s->prev_read_ns : 0;
		}
		/* the XML: at first sight, after a device event, for a new
		 * process (it may have other devices), and every xml_refresh
		 * cycles */
		int refresh = !d->have_info || d->xml_stale || (bid && d->have_cpu && bid != d->dom_id) ||
			      (s->cycle + (int)(i % s->xml_refresh)) % s->xml_refresh == 0;
		if (refresh)
			refresh_xml(s, dom, d, now_ns, sink);
		struct emit x;
		memset(&x, 0, sizeof(x));
		x.sink = sink;
		x.s = s;
		x.d = d;
		x.id = list_only ? (unsigned int)s->ids[i] : bid;
		d->last_cur = 0;
		str_copy(x.smp.resource, d->uuid, sizeof(x.smp.resource));
		x.smp.time_ns = now_ns;
		x.smp.origin_ns = d->origin_ns;
		int got = list_only ? 0 : from_record(s, d, recs[i], i < s->n_xrec ? &s->xrec[i] : NULL, &x);
		if (got > 0) {
			s->bulk_domains++;
			bulk++;
		} else if (got == -2) {
			bulk++; /* no cpu time this cycle (no cgroup found): read at the next */
			d->seen_cycle = s->cycle;
			continue;
		} else if (got == 0 && (got = from_calls(s, d, dom, &x, refresh)) == 0) {
			s->fallback_domains++;
			fallback++;
		}
		if (got < 0) {
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
	/* the per-domain path is said by the note above */
	int path = fallback ? 2 : bulk ? 1 : s->path;
	if (path == 1 && s->path != 1) {
		int per_disk = s->disk_calls && s->local;
		char disks[160];
		if (per_disk)
			snprintf(disks, sizeof(disks), "disk counters every %d cycle(s) by a virDomainBlockStats call"
				 " per one-disk domain, the block group with capacity and allocation every %d",
				 s->block_every, s->slow_every);
		else
			snprintf(disks, sizeof(disks), "the block group every %d cycle(s)", s->block_every);
		log_msg(LOG_INFO, "libvirt %s: reading %llu domain(s) with one bulk call a cycle (state,"
			" interface every cycle; cpu time %s; %s; balloon and vCPUs every %d)",
			s->uri, (unsigned long long)bulk, s->cg_ok && !s->cg_off ?
			"from the domains' cgroups, each process checked once against cpu-total" :
			"from cpu-total every cycle", disks, s->slow_every);
	}
	s->path = path;
	uint64_t stale = 0;
	for (size_t i = 0; i < s->n_dom; i++)
		if (s->dom[i].seen_cycle == s->cycle - 1)
			stale++; /* read last cycle, not this one: stopped, or stats did not come back */
	if (stale)
		complain(&s->stale_note, LOG_INFO, "libvirt %s: %llu domain(s) read last cycle returned no"
			 " stats this cycle (stopped, or busy)", s->uri, (unsigned long long)stale);
	s->stale += stale;
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
}

/* s->rid[0..n): each library record's domain id, asked of libvirt once
 * (lv_rpc_bulk() fills them from the protocol's answer). -ENOMEM, or 0. */
static int rec_ids(struct lv *s, virDomainStatsRecordPtr *recs, int n)
{
	if (n <= 0)
		return 0;
	if (vec_reserve((void **)&s->rid, &s->cap_rid, (size_t)n, sizeof(*s->rid), 64))
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		s->rid[i] = (unsigned int)virDomainGetID(recs[i]->dom);
	return 0;
}

int lv_read_records(void *state, virDomainStatsRecordPtr *recs, int n, struct lv_test_cycle *c, int64_t now_ns,
		    const struct sink *sink)
{
	struct lv *s = state;
	s->n_xrec = 0;
	if (rec_ids(s, recs, n))
		return -ENOMEM;
	drain_events(s, sink);
	if (c) {
		s->blk_main = c->block_main;
		s->blk_calls = c->disk_calls;
		s->vcpus_by_info = c->vcpus_by_info;
		if (lv_extra_plan(s, recs, n, NULL, NULL))
			return -ENOMEM;
		for (int i = 0; i < s->n_xrec; i++) {
			c->asked[i] = s->xrec[i].asked;
			s->xrec[i].rec[0] = s->xrec[i].asked & 1 && c->xcpu ? c->xcpu[i] : NULL;
			s->xrec[i].rec[1] = s->xrec[i].asked & 2 && c->xblk ? c->xblk[i] : NULL;
		}
		lv_rpc_calls(s, recs, n);
	}
	read_domains(s, recs, n, 0, now_ns, sink);
	s->n_xrec = 0;
	return 0;
}

void lv_test_event(void *state, virDomainPtr dom, int event, int detail)
{
	queue_event(state, dom, event, detail, 0, NULL);
}

void lv_test_host(void *state, const char *net_root, const char *cgroup_root, int cpu_total)
{
	struct lv *s = state;
	s->local = 1;
	str_copy(s->sysfs_net, net_root, sizeof(s->sysfs_net));
	str_copy(s->sysfs_cgroup, cgroup_root, sizeof(s->sysfs_cgroup));
	s->asked_cpu = cpu_total;
}

void lv_test_rpc(void *state, const char *socket_path)
{
	struct lv *s = state;
	str_copy(s->rpc_path, socket_path, sizeof(s->rpc_path));
	s->rpc_test = 1;
	s->rpc_retry_ns = 0;
}

size_t lv_events_queued(void *state)
{
	struct lv *s = state;
	pthread_mutex_lock(&s->ev_lock);
	size_t n = s->ev_n;
	pthread_mutex_unlock(&s->ev_lock);
	return n;
}

static int lv_read(void *state, int64_t now_ns, const struct sink *sink, struct tally_err *e)
{
	struct lv *s = state;
	virDomainStatsRecordPtr *recs = NULL;
	/* every cycle the groups of the billed counters (cpu, disk, NICs) and
	 * the state; every slow_every cycles (and the first) also balloon,
	 * whose stats make QEMU answer for its guest (docs/libvirt.md), and
	 * the vCPUs: from virDomainGetInfo on a hypervisor on this host (the
	 * vcpu group also sends QEMU two QMP queries no meter uses), else the
	 * vcpu group */
	int slow = s->cycle % s->slow_every == 0, block = s->cycle % s->block_every == 0;
	/* cpu-total: every cycle until one domain's cgroup was found to say
	 * what libvirt says (cg_check), and wherever the cgroups are not read;
	 * then only for the processes not checked yet (extra_calls) */
	s->asked_cpu = !s->local || !s->cg_ok || s->cg_off;
	s->vcpus_by_info = slow && s->local;
	/* disk counters every block_every cycles: on a hypervisor on this host
	 * by per-disk calls (lv_disk_way()), with the block group (which adds
	 * capacity and allocation) every slow cycle; else the block group */
	int per_disk = s->disk_calls && s->local;
	s->blk_main = per_disk ? slow : block;
	s->blk_calls = per_disk && block && !slow;
	unsigned int groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_INTERFACE |
			      (s->asked_cpu ? VIR_DOMAIN_STATS_CPU_TOTAL : 0) |
			      (s->blk_main ? VIR_DOMAIN_STATS_BLOCK : 0) |
			      (slow ? VIR_DOMAIN_STATS_BALLOON : 0) |
			      (slow && !s->local ? VIR_DOMAIN_STATS_VCPU : 0);
	unsigned int flags = VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE;
	int rc;

	memset(&s->ss, 0, sizeof(s->ss));
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
	int by_rpc = 0;
	if (list_only) {
		n = list_ids(s);
	} else {
		unsigned int f = flags | (s->nowait_ok ? VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT : 0);
		by_rpc = (n = lv_rpc_bulk(s, groups, f, &recs)) >= 0;
		if (!by_rpc)
			n = virConnectGetAllDomainStats(s->conn, groups, &recs, f);
	}
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
	if (!list_only && !by_rpc && rec_ids(s, recs, n)) {
		virDomainStatsRecordListFree(recs);
		return err_set(e, -ENOMEM, "libvirt %s: out of memory", s->uri);
	}
	if (!list_only) {
		lv_extra_calls(s, recs, n);
		lv_rpc_calls(s, recs, n);
	}
	read_domains(s, recs, n, list_only, now_ns, sink);
	lv_extra_free(s);
	if (by_rpc)
		lv_rpc_bulk_free(s);
	else if (recs)
		virDomainStatsRecordListFree(recs);
	return sink_status_err(&s->ss, "libvirt", e);
}

static void lv_free(void *state)
{
	struct lv *s = state;
	if (!s)
		return;
	lv_disconnect(s);
	if (!cb_wait_gone(s)) {
		/* libvirt still holds a callback that writes into s: leaking s is
		 * the one safe thing left (a process going down anyway) */
		log_msg(LOG_WARN, "libvirt %s: event callbacks not released within 5 s; not freeing their"
			" state", s->uri);
		return;
	}
	pthread_cond_destroy(&s->cb_gone);
	pthread_mutex_destroy(&s->ev_lock);
	free(s->ev_batch);
	mapping_release(&s->mapping);
	for (size_t i = 0; i < s->n_dom; i++) {
		struct lv_dom *d = &s->dom[i];
		free(d->last);
		free(d->disks);
		free(d->sizes);
		free(d->nics);
		free(d->slots);
		lv_cg_close(d);
	}
	free(s->dom);
	free(s->slot);
	free(s->ids);
	free(s->id_slot);
	free(s->bid_slot);
	free(s->xrec);
	free(s->rpc_batch);
	free(s->bulk_rec);
	free(s->bulk_ptr);
	free(s->rid);
	free(s);
}

/* The collector's own figures for /metrics (collector.h metrics()): the
 * tails of counters at a stop (docs/libvirt.md), events, and which stats
 * path read the domains. */
static void lv_metrics(void *state, void (*put)(void *ctx, const struct collector_metric *m), void *ctx)
{
	const struct lv *s = state;
	const struct collector_metric m[] = {
		{ "tally_libvirt_tail_closed_series", "Counter series whose final reading was read on the host"
		  " at the stop (a tap that outlived QEMU).", true, "", (double)s->tail_closed },
		{ "tally_libvirt_tail_open_series", "Counter series ended at a stop with their last value read:"
		  " their use since that read (the tail) is not measurable.", true, "", (double)s->tail_open },
		{ "tally_libvirt_tail_open_seconds", "Summed time from those series' last reading to their stop:"
		  " the tail time not billed.", true, "", (double)s->tail_open_ns / 1e9 },
		{ "tally_libvirt_events", "Lifecycle events recorded.", true, "", (double)s->events },
		{ "tally_libvirt_bulk_domains", "Domain readings from the bulk stats call.", true, "",
		  (double)s->bulk_domains },
		{ "tally_libvirt_per_domain_domains", "Domain readings from per-domain calls.", true, "",
		  (double)s->fallback_domains },
		{ "tally_libvirt_cgroup_checks", "Domains asked for cpu-total to check their cgroup's cpu time"
		  " (once per QEMU process).", true, "", (double)s->cg_checks },
		{ "tally_libvirt_block_group_alone", "Domains asked for the block group alone between slow"
		  " cycles (several disks, a device event, a new process, a stalled per-disk call).", true, "",
		  (double)s->blk_alone },
		{ "tally_libvirt_disk_calls", "Per-disk virDomainBlockStats calls.", true, "", (double)s->disk_calls_n },
		{ "tally_libvirt_disk_calls_batched", "Of the per-disk calls, those asked at once over libvirt's"
		  " protocol on the daemon's read-only socket.", true, "", (double)s->disk_calls_rpc },
		{ "tally_libvirt_info_calls_batched", "virDomainGetInfo calls (the vCPU counts, every slow cycle)"
		  " asked at once over libvirt's protocol on the daemon's read-only socket.", true, "",
		  (double)s->info_calls_rpc },
		{ "tally_libvirt_bulk_calls_protocol", "Bulk stats calls (virConnectGetAllDomainStats) answered"
		  " over libvirt's protocol on the daemon's read-only socket.", true, "", (double)s->bulk_calls_rpc },
		{ "tally_libvirt_disk_calls_failed", "Per-disk virDomainBlockStats calls that failed (the domain"
		  " stopped, the disk went, a stall).", true, "", (double)s->disk_calls_failed },
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		put(ctx, &m[i]);
}

/* SIGHUP (collector.h): the mapping file, read again by configure, is
 * taken; each domain's metadata is worked out again with it at its next
 * XML refresh (within xml_refresh intervals). The rest of the section
 * (uri, the intervals of the slow groups) needs a restart. */
static int lv_reload(void *state, void *fresh, struct tally_err *e)
{
	struct lv *s = state, *f = fresh;
	struct mapping old = s->mapping;
	(void)e;
	s->mapping = f->mapping;
	f->mapping = old;            /* freed with fresh */
	memcpy(s->mapping_path, f->mapping_path, sizeof(s->mapping_path));
	for (size_t i = 0; i < s->n_dom; i++)
		s->dom[i].xml_hash = 0;   /* parsed again, metadata sent if it changed */
	return 0;
}

const struct collector_ops libvirt_collector = {
	.name = "libvirt",
	.configure = lv_configure,
	.init = lv_init,
	.read = lv_read,
	.free = lv_free,
	.metrics = lv_metrics,
	.reload = lv_reload,
};
