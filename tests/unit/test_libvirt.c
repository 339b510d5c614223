/*
 * test_libvirt.c: the libvirt collector against libvirt's real test driver,
 * with virsh as the oracle, and its XML reading on fixtures.
 *
 * The test driver's counters grow with the wall clock (cpu time in ns,
 * block and interface counters in fixed multiples of microseconds), so the
 * comparison allows for the time between our read and virsh's: virsh's
 * value must lie between ours and ours plus (elapsed time x the counter's
 * rate). Gauges (vCPUs, memory) must match exactly.
 * tests/integration/libvirt_oracle.sh does the same through tallyd and its
 * ledger for every series of a 100-domain fleet.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>

#include "aggregator.h"
#include "batch.h"
#include "cfg.h"
#include "collector.h"
#include "err.h"
#include "libvirt_internal.h"
#include "lvrpc_daemon.h"
#include "str.h"
#include "tallytime.h"
#include "testutil.h"

extern const struct collector_ops libvirt_collector;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

START_TEST(test_parse_nova)
{
	size_t len;
	char *xml = slurp("tests/fixtures/libvirt/nova.xml", &len);
	struct lv_domain_info d;
	struct tally_err e = { 0 };
	ck_assert_int_eq(lv_parse_domain_xml(xml, len, &d, &e), 0);
	ck_assert_str_eq(d.uuid, "1f6f9a0e-3c1b-4c3e-9a57-2d1f3c0b7e11");
	ck_assert_str_eq(d.name, "instance-0000002a");
	ck_assert(d.has_nova);
	ck_assert_str_eq(d.nova_name, "web-frontend-1");
	ck_assert_str_eq(d.project, "4e1f2a3b5c6d7e8f9a0b1c2d3e4f5a6b");
	ck_assert_str_eq(d.user, "9b2c6f1d0a7e4e3b8f5a1c2d3e4f5a6b");
	ck_assert_str_eq(d.flavor, "m1.large");
	/* the cdrom is not a disk we meter */
	ck_assert_int_eq(d.n_disks, 2);
	ck_assert_str_eq(d.disks[0].target, "vda");
	ck_assert_str_eq(d.disks[0].label, "vda:1f6f9a0e-disk");           /* target + serial */
	ck_assert_str_eq(d.disks[1].target, "vdb");
	ck_assert_str_eq(d.disks[1].source, "volumes/volume-77");
	ck_assert_int_eq((int)strlen(d.disks[1].label), 4 + 8);               /* "vdb:" + 8 hex */
	ck_assert_int_eq(strncmp(d.disks[1].label, "vdb:", 4), 0);
	ck_assert_int_eq(d.n_nics, 1);
	ck_assert_str_eq(d.nics[0].mac, "fa:16:3e:11:22:33");
	ck_assert_str_eq(d.nics[0].target, "tap1234abcd-ef");
	ck_assert_str_eq(d.nics[0].type, "bridge");
	ck_assert_int_eq(d.skipped_devs, 0);
	free(xml);
}
END_TEST

START_TEST(test_parse_nova_1_1)
{
	/* Nova since Zed writes namespace 1.1: the same fields */
	size_t len;
	char *xml = slurp("tests/fixtures/libvirt/nova-1.1.xml", &len);
	struct lv_domain_info d;
	struct tally_err e = { 0 };
	ck_assert_int_eq(lv_parse_domain_xml(xml, len, &d, &e), 0);
	ck_assert(d.has_nova);
	ck_assert_str_eq(d.nova_name, "web-frontend-1");
	ck_assert_str_eq(d.project, "4e1f2a3b5c6d7e8f9a0b1c2d3e4f5a6b");
	ck_assert_str_eq(d.user, "9b2c6f1d0a7e4e3b8f5a1c2d3e4f5a6b");
	ck_assert_str_eq(d.flavor, "m1.large");
	free(xml);
}
END_TEST

START_TEST(test_parse_plain)
{
	size_t len;
	char *xml = slurp("tests/fixtures/libvirt/plain.xml", &len);
	struct lv_domain_info d;
	struct tally_err e = { 0 };
	ck_assert_int_eq(lv_parse_domain_xml(xml, len, &d, &e), 0);
	ck_assert(!d.has_nova);
	ck_assert_str_eq(d.project, "");
	/* sda: no serial, no source: the target alone; the disk without a
	 * target and the NIC without a MAC cannot be identified: skipped */
	ck_assert_int_eq(d.n_disks, 1);
	ck_assert_str_eq(d.disks[0].label, "sda");
	ck_assert_int_eq(d.n_nics, 1);
	ck_assert_str_eq(d.nics[0].mac, "52:54:00:aa:bb:cc");
	ck_assert_str_eq(d.nics[0].target, "");
	ck_assert_int_eq(d.skipped_devs, 2);
	free(xml);
}
END_TEST

START_TEST(test_parse_bad)
{
	size_t len;
	struct lv_domain_info d;
	struct tally_err e = { 0 };
	char *xml = slurp("tests/fixtures/libvirt/malformed.xml", &len);
	ck_assert_int_eq(lv_parse_domain_xml(xml, len, &d, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not well-formed"));
	free(xml);
	xml = slurp("tests/fixtures/libvirt/notadomain.xml", &len);
	ck_assert_int_eq(lv_parse_domain_xml(xml, len, &d, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a <domain>"));
	free(xml);
}
END_TEST

START_TEST(test_mapping_file)
{
	struct mapping m;
	struct tally_err e = { 0 };
	ck_assert_msg(mapping_load("tests/fixtures/libvirt/mapping.yaml", &m, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(m.n, 3);
	const struct mapping_rule *r = mapping_match(&m, "6b0f3c2a-0000-4000-8000-000000000001", "vm00001");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->tenant, "acme");                         /* uuid matched, case aside */
	ck_assert_str_eq(r->labels, "region=eu-west,tier=gold");     /* sorted by key */
	ck_assert_str_eq(mapping_match(&m, "x", "vm00004")->tenant, "globex");
	ck_assert_str_eq(mapping_match(&m, "x", "vm00004")->flavor, "small");
	ck_assert_str_eq(mapping_match(&m, "x", "vm00006")->tenant, "unassigned");
	mapping_release(&m);
	ck_assert_int_eq(mapping_load("tests/fixtures/libvirt/mapping-bad.yaml", &m, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "tests/fixtures/libvirt/mapping-bad.yaml:1:3: a rule needs exactly one of"
				" 'uuid' or 'name'");
	ck_assert_int_eq(mapping_load("tests/fixtures/libvirt/mapping-typo.yaml", &m, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "mapping-typo.yaml:2:3: unknown key 'tennant' in 'mapping rule'"));
}
END_TEST

/* ---- against the test driver ---- */

struct rec {
	struct sample s[8192];
	int n;
	struct resource_meta m[1024];
	int nm;
	struct lifecycle_event ev[64];
	int nev;
};

static int rec_sample(void *ctx, const char *agent, const struct sample *s)
{
	struct rec *r = ctx;
	ck_assert_int_lt(r->n, 8192);
	r->s[r->n++] = *s;
	return 0;
}
static int rec_meta(void *ctx, const char *agent, const struct resource_meta *m)
{
	struct rec *r = ctx;
	ck_assert_int_lt(r->nm, 1024);
	r->m[r->nm++] = *m;
	return 0;
}
static int rec_event(void *ctx, const char *agent, const struct lifecycle_event *ev)
{
	struct rec *r = ctx;
	ck_assert_int_lt(r->nev, 64);
	r->ev[r->nev++] = *ev;
	return 0;
}

static const struct sample *find(const struct rec *r, const char *uuid, int meter, const char *dev)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->s[i].resource, uuid) && r->s[i].meter == meter &&
		    (!dev || !strcmp(r->s[i].device, dev)))
			return &r->s[i];
	return NULL;
}

static void *open_collector_with(const char *uri, const char *extra)
{
	char yaml[512];
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "t", .interval_ns = NS_PER_SEC, .start_ns = 0 };
	void *st = NULL;
	snprintf(yaml, sizeof(yaml), "uri: '%s'\n%s", uri, extra);
	ck_assert_int_eq(cfg_load_string("lv.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_msg(libvirt_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_msg(libvirt_collector.init(st, 0, &e) == 0, "%s", e.msg);
	return st;
}

static void *open_collector(const char *uri)
{
	return open_collector_with(uri, "");
}

/* one number from virsh output: the token after `key` */
static double virsh_num(const char *out, const char *key)
{
	const char *p = strstr(out, key);
	ck_assert_msg(p != NULL, "virsh printed no '%s'", key);
	return strtod(p + strlen(key), NULL);
}

static char *virsh(const char *uri, const char *cmds)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "virsh -q -c '%s' '%s' 2>&1", uri, cmds);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	return buf;
}

/* virsh's counter v_virsh, read `elapsed` s after ours (v_ours), for a
 * counter growing `rate` per second: ours <= virsh <= ours + rate * elapsed */
static void within(const char *what, double ours, double theirs, double rate, double elapsed)
{
	ck_assert_msg(theirs >= ours - 0.1 * rate && theirs <= ours + rate * (elapsed + 0.1),
		      "%s: ours %.0f, virsh %.0f %.3f s later (rate %.0f/s)", what, ours, theirs, elapsed, rate);
}

START_TEST(test_default_driver_vs_virsh)
{
	const char *uri = "test:///default";
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	struct tally_err e = { 0 };
	void *st = open_collector(uri);
	int64_t t0 = time_now_ns();
	ck_assert_int_eq(libvirt_collector.read(st, t0, &sk, &e), 0);
	char *out = virsh(uri, "dominfo test; domblkstat test vda; domifstat test testnet0; dommemstat test");
	double elapsed = (double)(time_now_ns() - t0) / 1e9;
	const char *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";

	ck_assert_int_eq(r->nm, 1);
	ck_assert_str_eq(r->m[0].resource, u);
	ck_assert_str_eq(r->m[0].name, "test");
	/* gauges: exactly what virsh says */
	ck_assert_double_eq(find(r, u, M_VCPUS, "")->v.gauge, virsh_num(out, "CPU(s):"));
	ck_assert_double_eq(find(r, u, M_MEMORY, "")->v.gauge, virsh_num(out, "Used memory:") * 1024);
	ck_assert_double_eq(find(r, u, M_MEMORY_RESIDENT, "")->v.gauge, virsh_num(out, "rss") * 1024);
	ck_assert_double_eq(find(r, u, M_MEMORY_USAGE, "")->v.gauge,
			    (virsh_num(out, "available") - virsh_num(out, "\nunused")) * 1024);
	ck_assert_double_eq(find(r, u, M_INSTANCE, "")->v.gauge, 1);
	/* counters: cpu time in s with one decimal; the driver's cpu grows 1 s/s */
	within("cpu", (double)find(r, u, M_CPU, "")->v.counter / 1e9, virsh_num(out, "CPU time:"), 1.0,
	       elapsed + 0.1);
	const struct sample *rd = find(r, u, M_DISK_READ_REQUESTS, NULL);
	ck_assert_ptr_nonnull(rd);
	ck_assert_int_eq(strncmp(rd->device, "vda:", 4), 0);   /* by target + source hash */
	within("vda rd_req", (double)rd->v.counter, virsh_num(out, "rd_req"), 1e5, elapsed);
	within("vda rd_bytes", (double)find(r, u, M_DISK_READ_BYTES, NULL)->v.counter,
	       virsh_num(out, "rd_bytes"), 5e4, elapsed);
	/* NICs by MAC, never by the target name; incoming = rx (guest's view) */
	const struct sample *rx = find(r, u, M_NET_IN_BYTES, "aa:bb:cc:dd:ee:ff");
	ck_assert_ptr_nonnull(rx);
	within("rx_bytes", (double)rx->v.counter, virsh_num(out, "rx_bytes"), 1e5, elapsed);
	within("tx_bytes", (double)find(r, u, M_NET_OUT_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter,
	       virsh_num(out, "tx_bytes"), 5e4, elapsed);
	/* first read: a baseline, the domain ran before we watched */
	ck_assert_int_eq(rx->origin_ns, 0);
	/* disk sizes are measured now and then but sent with every read, so
	 * the allocation is integrated up to the last read before a stop */
	const struct sample *cap = find(r, u, M_DISK_CAPACITY, NULL);
	ck_assert_ptr_nonnull(cap);
	double cap1 = cap->v.gauge;
	r->n = 0;
	ck_assert_int_eq(libvirt_collector.read(st, time_now_ns(), &sk, &e), 0);
	cap = find(r, u, M_DISK_CAPACITY, NULL);
	ck_assert_ptr_nonnull(cap);
	ck_assert_double_eq(cap->v.gauge, cap1);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

START_TEST(test_fleet_of_100_vs_virsh)
{
	char dir[64], file[128], uri[160], cmd[300];
	tu_mkdtemp(dir, sizeof(dir), "lvfleet");
	snprintf(file, sizeof(file), "%s/node.xml", dir);
	snprintf(cmd, sizeof(cmd), "sh tests/fixtures/libvirt/gen-testnode.sh 100 '%s'", file);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(uri, sizeof(uri), "test://%s", file);
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	struct tally_err e = { 0 };
	void *st = open_collector_with(uri, "mapping: tests/fixtures/libvirt/mapping.yaml\n");
	int64_t t0 = time_now_ns();
	ck_assert_int_eq(libvirt_collector.read(st, t0, &sk, &e), 0);
	/* every domain reported: a UUID list from virsh, each with our readings */
	char *list = virsh(uri, "list --uuid");
	int n = 0;
	for (char *l = strtok(list, "\n"); l; l = strtok(NULL, "\n")) {
		if (!l[0])
			continue;
		n++;
		ck_assert_msg(find(r, l, M_CPU, "") != NULL, "no cpu reading for %s", l);
		ck_assert_msg(find(r, l, M_NET_OUT_BYTES, NULL) != NULL, "no NIC reading for %s", l);
	}
	ck_assert_int_eq(n, 100);
	ck_assert_int_eq(r->nm, 100);
	/* vm00003: Nova metadata -> tenant proj-0, flavor m1.small, name web-3
	 * (Nova wins over the mapping's catch-all); vm00001, 4, 7: no Nova
	 * metadata, tenant from the mapping file. Disks: vda by serial. */
	int nova = 0;
	for (int i = 0; i < r->nm; i++)
		if (!strcmp(r->m[i].resource, "6b0f3c2a-0000-4000-8000-000000000003")) {
			ck_assert_str_eq(r->m[i].tenant, "proj-0");
			ck_assert_str_eq(r->m[i].flavor, "m1.small");
			ck_assert_str_eq(r->m[i].name, "web-3");
			ck_assert_str_eq(r->m[i].user, "user-3");
			nova++;
		} else if (!strcmp(r->m[i].resource, "6b0f3c2a-0000-4000-8000-000000000001")) {
			/* no Nova metadata: the mapping file's uuid rule */
			ck_assert_str_eq(r->m[i].tenant, "acme");
			ck_assert_str_eq(r->m[i].name, "vm00001");
			ck_assert_str_eq(r->m[i].labels, "region=eu-west,source=mapping,tier=gold");
			nova++;
		} else if (!strcmp(r->m[i].resource, "6b0f3c2a-0000-4000-8000-000000000004")) {
			ck_assert_str_eq(r->m[i].tenant, "globex");
			ck_assert_str_eq(r->m[i].flavor, "small");
			nova++;
		} else if (!strcmp(r->m[i].resource, "6b0f3c2a-0000-4000-8000-000000000007")) {
			ck_assert_str_eq(r->m[i].tenant, "unassigned");
			nova++;
		}
	ck_assert_int_eq(nova, 4);
	const char *u7 = "6b0f3c2a-0000-4000-8000-000000000007";
	ck_assert_ptr_nonnull(find(r, u7, M_DISK_READ_BYTES, "vda:SER7"));
	char *out = virsh(uri, "dominfo vm00007; domblkstat vm00007 vda; domifstat vm00007 tap00007");
	double elapsed = (double)(time_now_ns() - t0) / 1e9;
	ck_assert_double_eq(find(r, u7, M_VCPUS, "")->v.gauge, virsh_num(out, "CPU(s):"));
	ck_assert_double_eq(find(r, u7, M_MEMORY, "")->v.gauge, virsh_num(out, "Used memory:") * 1024);
	within("vm00007 rd_req", (double)find(r, u7, M_DISK_READ_REQUESTS, "vda:SER7")->v.counter,
	       virsh_num(out, "rd_req"), 1e5, elapsed);
	within("vm00007 rx_bytes", (double)find(r, u7, M_NET_IN_BYTES, "52:54:00:00:00:07")->v.counter,
	       virsh_num(out, "rx_bytes"), 1e5, elapsed);
	libvirt_collector.free(st);
	free(r);
	tu_rmrf(dir);
}
END_TEST

/* Until libvirt's event thread has queued n events for the collector st:
 * a liveness bound of 30 s, never a timing assertion. */
static void wait_events(void *st, size_t n)
{
	for (int k = 0; lv_events_queued(st) < n; k++) {
		ck_assert_msg(k < 3000, "%zu of %zu lifecycle events after 30 s", lv_events_queued(st), n);
		usleep(10 * 1000);
	}
}

START_TEST(test_lifecycle_events)
{
	/* libvirt's default test driver is one per process: a second, read-write
	 * connection here drives the domain our collector watches */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	struct tally_err e = { 0 };
	void *st = open_collector(uri);
	ck_assert_int_eq(libvirt_collector.read(st, time_now_ns(), &sk, &e), 0);
	ck_assert_int_eq(find(r, u, M_CPU, "")->origin_ns, 0);       /* baseline */
	int n_first = r->n;
	double mem_first = find(r, u, M_MEMORY, "")->v.gauge;
	virConnectPtr rw = virConnectOpen(uri);
	ck_assert_ptr_nonnull(rw);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	ck_assert_int_eq(virDomainSuspend(dom), 0);
	ck_assert_int_eq(virDomainResume(dom), 0);
	ck_assert_int_eq(virDomainDestroy(dom), 0);
	int64_t before = time_now_ns();
	ck_assert_int_eq(virDomainCreate(dom), 0);
	wait_events(st, 4);
	r->n = r->nev = 0;
	int64_t t_read = time_now_ns();
	ck_assert_int_eq(libvirt_collector.read(st, t_read, &sk, &e), 0);
	const char *want[][2] = { { "suspended", "paused" }, { "resumed", "unpaused" }, { "stopped", "destroyed" },
				  { "started", "booted" } };
	ck_assert_int_eq(r->nev, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_str_eq(r->ev[i].resource, u);
		ck_assert_str_eq(r->ev[i].type, want[i][0]);
		ck_assert_str_eq(r->ev[i].reason, want[i][1]);
	}
	/* rule 4: the stop repeats the last readings at its own time, marked
	 * final, so gauges are integrated to the second of the stop */
	int finals = 0, first_read = 0;
	for (int i = 0; i < r->n; i++)
		if (r->s[i].flags & SAMPLE_F_LAST) {
			ck_assert_int_eq(r->s[i].time_ns, r->ev[2].time_ns);
			finals++;
		}
	first_read = n_first;
	ck_assert_int_eq(finals, first_read);
	const struct sample *fm = NULL;
	for (int i = 0; i < r->n; i++)
		if ((r->s[i].flags & SAMPLE_F_LAST) && r->s[i].meter == M_MEMORY)
			fm = &r->s[i];
	ck_assert_ptr_nonnull(fm);
	ck_assert_double_eq(fm->v.gauge, mem_first);
	/* the restarted domain's counters count from its start (rule 3) */
	const struct sample *cpu = NULL;
	for (int i = 0; i < r->n; i++)
		if (r->s[i].meter == M_CPU && !(r->s[i].flags & SAMPLE_F_LAST))
			cpu = &r->s[i];
	ck_assert_ptr_nonnull(cpu);
	ck_assert_int_ge(cpu->origin_ns, before);
	ck_assert_int_le(cpu->origin_ns, t_read);          /* its event came before this read */
	ck_assert_int_eq(r->ev[3].time_ns, cpu->origin_ns);
	/* the test driver's NIC counters follow the wall clock, so they went on
	 * across the restart, as an unmanaged tap's do: a baseline for the new
	 * life (origin 0), never counted from zero again */
	const struct sample *rx = NULL;
	for (int i = 0; i < r->n; i++)
		if (r->s[i].meter == M_NET_IN_BYTES && !(r->s[i].flags & SAMPLE_F_LAST))
			rx = &r->s[i];
	ck_assert_ptr_nonnull(rx);
	ck_assert_int_eq(rx->origin_ns, 0);
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

/* ---- reasons from the event detail ---- */

START_TEST(test_event_reasons)
{
	/* libvirt-domain.h's detail numbers, and what the ledger must say */
	static const struct {
		int event, detail;
		const char *type, *reason;
		enum lv_edge edge;
	} t[] = {
		{ VIR_DOMAIN_EVENT_SHUTDOWN, 2, "shutdown", "host", LV_EDGE_NONE },   /* "after host request" */
		{ VIR_DOMAIN_EVENT_SHUTDOWN, 1, "shutdown", "guest", LV_EDGE_NONE },
		{ VIR_DOMAIN_EVENT_SHUTDOWN, 0, "shutdown", "", LV_EDGE_NONE },       /* QEMU did not say who */
		{ VIR_DOMAIN_EVENT_STOPPED, 0, "stopped", "shutdown", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 1, "stopped", "destroyed", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 2, "crashed", "crashed", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 3, "migrated_out", "migrated", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 4, "stopped", "saved", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 5, "stopped", "failed", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 6, "stopped", "from-snapshot", LV_EDGE_STOP },
		{ VIR_DOMAIN_EVENT_STOPPED, 77, "stopped", "", LV_EDGE_STOP },        /* a detail newer than us */
		{ VIR_DOMAIN_EVENT_SUSPENDED, 0, "suspended", "paused", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, 1, "suspended", "migrated", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, 2, "suspended", "ioerror", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, 3, "suspended", "watchdog", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, 5, "suspended", "from-snapshot", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, 6, "suspended", "api-error", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, 7, "suspended", "postcopy", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_SUSPENDED, -1, "suspended", "", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_RESUMED, 0, "resumed", "unpaused", LV_EDGE_RESUME },
		{ VIR_DOMAIN_EVENT_RESUMED, 1, "resumed", "migrated", LV_EDGE_RESUME },
		{ VIR_DOMAIN_EVENT_STARTED, 0, "started", "booted", LV_EDGE_START },
		{ VIR_DOMAIN_EVENT_STARTED, 1, "migrated_in", "migrated", LV_EDGE_START },
		{ VIR_DOMAIN_EVENT_STARTED, 2, "started", "restored", LV_EDGE_START },
		{ VIR_DOMAIN_EVENT_CRASHED, 0, "crashed", "panicked", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_CRASHED, 1, "crashed", "crashloaded", LV_EDGE_PAUSE },
		{ VIR_DOMAIN_EVENT_UNDEFINED, 0, "undefined", "removed", LV_EDGE_NONE },
		{ LV_EV_REBOOT, 0, "rebooted", "", LV_EDGE_REBOOT },
		{ LV_EV_DEVICE_REMOVED, 0, "device_removed", "", LV_EDGE_DEVICE },  /* its disks' sizes read again */
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct lv_event_desc d;
		ck_assert_int_eq(lv_event_describe(t[i].event, t[i].detail, &d), 0);
		ck_assert_msg(!strcmp(d.type, t[i].type) && !strcmp(d.reason, t[i].reason) && d.edge == t[i].edge,
			      "event %d detail %d: %s/%s edge %d, want %s/%s edge %d", t[i].event, t[i].detail,
			      d.type, d.reason, d.edge, t[i].type, t[i].reason, t[i].edge);
	}
	struct lv_event_desc d;
	ck_assert_int_eq(lv_event_describe(VIR_DOMAIN_EVENT_PMSUSPENDED, 0, &d), -ENOENT);
	ck_assert_int_eq(lv_event_describe(LV_EV_BALLOON, 0, &d), 0);
	ck_assert_ptr_null(d.type);                        /* a gauge change: no ledger event */
	ck_assert_int_eq(lv_event_describe(LV_EV_DEVICE_ADDED, 0, &d), 0);
	ck_assert_ptr_null(d.type);                        /* devices read again: no ledger event */
	ck_assert_int_eq(d.edge, LV_EDGE_DEVICE);
}
END_TEST

/* ---- partial bulk answers and the final reading ---- */

/* A bulk-answer record for dom built from "key=value" strings: values
 * with a '.' in the key's last part are numbers of the key's type. */
struct prec {
	virDomainStatsRecord r;
	int max;
};

static void prec_init(struct prec *p, virDomainPtr dom)
{
	memset(p, 0, sizeof(*p));
	p->r.dom = dom;
}

static void p_ull(struct prec *p, const char *k, unsigned long long v)
{
	ck_assert_int_eq(virTypedParamsAddULLong(&p->r.params, &p->r.nparams, &p->max, k, v), 0);
}

static void p_uint(struct prec *p, const char *k, unsigned int v)
{
	ck_assert_int_eq(virTypedParamsAddUInt(&p->r.params, &p->r.nparams, &p->max, k, v), 0);
}

static void p_int(struct prec *p, const char *k, int v)
{
	ck_assert_int_eq(virTypedParamsAddInt(&p->r.params, &p->r.nparams, &p->max, k, v), 0);
}

static void p_str(struct prec *p, const char *k, const char *v)
{
	ck_assert_int_eq(virTypedParamsAddString(&p->r.params, &p->r.nparams, &p->max, k, v), 0);
}

/* state, cpu, vcpu and interface groups: what a NOWAIT answer still has
 * for a domain that is being destroyed */
static void rec_small(struct prec *p, virDomainPtr dom, int state, unsigned long long cpu_ns, unsigned long long rx)
{
	prec_init(p, dom);
	p_int(p, "state.state", state);
	p_ull(p, "cpu.time", cpu_ns);
	p_uint(p, "vcpu.current", 2);
	p_uint(p, "net.count", 1);
	p_str(p, "net.0.name", "testnet0");
	p_ull(p, "net.0.rx.bytes", rx);
	p_ull(p, "net.0.tx.bytes", rx * 2);
	p_ull(p, "net.0.rx.pkts", rx / 100);
	p_ull(p, "net.0.tx.pkts", rx / 50);
}

/* all six groups */
static void rec_full(struct prec *p, virDomainPtr dom, int state, unsigned long long cpu_ns, unsigned long long rx)
{
	rec_small(p, dom, state, cpu_ns, rx);
	p_ull(p, "balloon.current", 1048576);       /* KiB: 1 GiB */
	p_ull(p, "balloon.rss", 500000);
	p_ull(p, "balloon.available", 1000000);
	p_ull(p, "balloon.unused", 400000);
	p_uint(p, "block.count", 1);
	p_str(p, "block.0.name", "vda");
	p_ull(p, "block.0.rd.bytes", 4096);
	p_ull(p, "block.0.wr.bytes", 8192);
	p_ull(p, "block.0.rd.reqs", 1);
	p_ull(p, "block.0.wr.reqs", 2);
	p_ull(p, "block.0.capacity", 1073741824);
	p_ull(p, "block.0.allocation", 2097152);
}

static void feed(void *st, struct prec *p, int64_t t, struct rec *r)
{
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	virDomainStatsRecordPtr one[1] = { NULL };
	if (p)
		one[0] = &p->r;
	ck_assert_int_eq(lv_read_records(st, p ? one : NULL, p ? 1 : 0, NULL, t, &sk), 0);
	if (p)
		virTypedParamsFree(p->r.params, p->r.nparams);
}

static const struct sample *find_last(const struct rec *r, int meter, const char *dev)
{
	for (int i = 0; i < r->n; i++)
		if (r->s[i].meter == meter && (r->s[i].flags & SAMPLE_F_LAST) && (!dev || !strcmp(r->s[i].device, dev)))
			return &r->s[i];
	return NULL;
}

/* The tail figures a collector publishes through its metrics() hook. */
struct figs {
	double open_series, open_s, closed;
};

static void put_fig(void *ctx, const struct collector_metric *m)
{
	struct figs *f = ctx;
	if (!strcmp(m->name, "tally_libvirt_tail_open_series"))
		f->open_series = m->value;
	if (!strcmp(m->name, "tally_libvirt_tail_open_seconds"))
		f->open_s = m->value;
	if (!strcmp(m->name, "tally_libvirt_tail_closed_series"))
		f->closed = m->value;
}

START_TEST(test_partial_bulk_answer)
{
	/* A destroy that overlaps a read: the NOWAIT answer for the dying
	 * domain has state, cpu, vcpu and interface but no block or balloon
	 * group. The stop's final reading must still end all 16 series the
	 * life had, each with its last value read (worked out from the
	 * records below), at the stop's time. */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rec *r = calloc(1, sizeof(*r));
	void *st = open_collector(uri);
	virConnectPtr rw = virConnectOpen(uri);
	ck_assert_ptr_nonnull(rw);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	struct prec p;
	int64_t t1 = time_now_ns() - 2 * NS_PER_SEC, t2 = t1 + NS_PER_SEC;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL, 1000);
	feed(st, &p, t1, r);
	ck_assert_int_eq(r->n, 16);
	const char *disk = find(r, u, M_DISK_READ_BYTES, NULL)->device;
	char vda[TALLY_DEV_MAX];
	str_copy(vda, disk, sizeof(vda));
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 6000000000ULL, 1500);
	feed(st, &p, t2, r);
	/* cpu, vcpus, instance, 4 NIC counters; memory, usage and resident
	 * (no balloon group) and the disk's capacity and allocation (no block
	 * group) sent again with their last values */
	ck_assert_int_eq(r->n, 16 + 7 + 3 + 2);
	ck_assert_int_eq(virDomainDestroy(dom), 0);
	wait_events(st, 1);
	r->n = r->nev = 0;
	feed(st, NULL, time_now_ns(), r);
	ck_assert_int_eq(r->nev, 1);
	ck_assert_str_eq(r->ev[0].type, "stopped");
	ck_assert_str_eq(r->ev[0].reason, "destroyed");
	const int64_t ts = r->ev[0].time_ns;
	static const struct { int meter; int disk; int gauge; double v; } want[] = {
		{ M_CPU, 0, 0, 6000000000.0 },                     /* second read */
		{ M_VCPUS, 0, 1, 2 },
		{ M_MEMORY, 0, 1, 1048576.0 * 1024 },              /* first read: 1 GiB */
		{ M_MEMORY_RESIDENT, 0, 1, 500000.0 * 1024 },
		{ M_MEMORY_USAGE, 0, 1, (1000000.0 - 400000) * 1024 },
		{ M_INSTANCE, 0, 1, 1 },
		{ M_DISK_READ_BYTES, 1, 0, 4096 },                 /* block: first read */
		{ M_DISK_WRITE_BYTES, 1, 0, 8192 },
		{ M_DISK_READ_REQUESTS, 1, 0, 1 },
		{ M_DISK_WRITE_REQUESTS, 1, 0, 2 },
		{ M_DISK_CAPACITY, 1, 1, 1073741824.0 },
		{ M_DISK_ALLOCATION, 1, 1, 2097152.0 },
		{ M_NET_IN_BYTES, 0, 0, 1500 },                    /* NIC: second read */
		{ M_NET_OUT_BYTES, 0, 0, 3000 },
		{ M_NET_IN_PACKETS, 0, 0, 15 },
		{ M_NET_OUT_PACKETS, 0, 0, 30 },
	};
	ck_assert_int_eq(r->n, 16);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int nic = want[i].meter >= M_NET_IN_BYTES && want[i].meter <= M_NET_OUT_PACKETS;
		const char *dev = want[i].disk ? vda : nic ? "aa:bb:cc:dd:ee:ff" : "";
		const struct sample *f = find_last(r, want[i].meter, dev);
		ck_assert_msg(f != NULL, "no final reading of meter %d device '%s'", want[i].meter, dev);
		ck_assert_int_eq(f->time_ns, ts);
		ck_assert_str_eq(f->resource, u);
		double v = want[i].gauge ? f->v.gauge : (double)f->v.counter;
		ck_assert_msg(v == want[i].v, "meter %d: final %.0f, want %.0f", want[i].meter, v, want[i].v);
	}
	/* the tails left open (test:/// is not this host's hypervisor: no tap
	 * is read): cpu and the 4 NIC counters since the second read, the 4
	 * disk counters since the first (as with block_every 2), each summed */
	struct figs fg = { -1, -1, -1 };
	libvirt_collector.metrics(st, put_fig, &fg);
	double open_series = fg.open_series, open_s = fg.open_s, closed = fg.closed;
	ck_assert_double_eq(open_series, 9);
	ck_assert_double_eq(closed, 0);
	ck_assert_double_eq(open_s, (double)(uint64_t)(5 * (ts - t2) + 4 * (ts - t1)) / 1e9);
	/* a stop that comes again (a late duplicate) ends nothing twice */
	r->n = 0;
	feed(st, NULL, time_now_ns(), r);
	ck_assert_int_eq(r->n, 0);
	ck_assert_int_eq(virDomainCreate(dom), 0);
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

START_TEST(test_record_shapes)
{
	/* The bulk record is read in one pass over its parameters. A record
	 * whose fields come in another order than libvirt's (a device's fields
	 * before its name, the second disk before the first), with a field
	 * given twice (the first counts, as virTypedParamsGet* would), a field
	 * of the wrong type (not read), a device index past LV_MAX_DEVS, and a
	 * count larger than the devices present: each value below is what the
	 * collector must send, worked out from the parameters by hand. */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rec *r = calloc(1, sizeof(*r));
	void *st = open_collector(uri);
	virConnectPtr rw = virConnectOpen(uri);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	struct prec p;
	prec_init(&p, dom);
	p_ull(&p, "net.0.rx.bytes", 700);                 /* before net.count and the name */
	p_uint(&p, "net.count", 1);
	p_str(&p, "net.0.name", "testnet0");
	p_ull(&p, "net.0.tx.bytes", 900);
	p_ull(&p, "cpu.time", 7000000000ULL);
	p_ull(&p, "cpu.time", 1ULL);                      /* given twice: the first counts */
	p_int(&p, "state.state", VIR_DOMAIN_RUNNING);
	p_uint(&p, "vcpu.current", 3);
	p_uint(&p, "balloon.current", 5);                 /* not the documented ullong: not read */
	p_uint(&p, "block.count", 3);                     /* one more than there are */
	p_ull(&p, "block.1.rd.bytes", 111);               /* a device libvirt's XML does not have */
	p_str(&p, "block.1.name", "vdz");
	p_ull(&p, "block.0.wr.bytes", 2048);              /* before its name */
	p_str(&p, "block.0.name", "vda");
	p_ull(&p, "block.0.capacity", 4096);
	p_ull(&p, "block.40.rd.bytes", 5);                /* past LV_MAX_DEVS */
	p_ull(&p, "block.0x.rd.bytes", 6);                /* not an index */
	feed(st, &p, time_now_ns(), r);
	ck_assert_uint_eq(find(r, u, M_CPU, "")->v.counter, 7000000000ULL);
	ck_assert_double_eq(find(r, u, M_VCPUS, "")->v.gauge, 3);
	ck_assert_double_eq(find(r, u, M_INSTANCE, "")->v.gauge, 1);
	const struct sample *wr = find(r, u, M_DISK_WRITE_BYTES, NULL);
	ck_assert_ptr_nonnull(wr);
	ck_assert_uint_eq(wr->v.counter, 2048);
	ck_assert_double_eq(find(r, u, M_DISK_CAPACITY, wr->device)->v.gauge, 4096);
	ck_assert_ptr_null(find(r, u, M_DISK_READ_BYTES, NULL)); /* vda has none; vdz is not ours */
	ck_assert_ptr_null(find(r, u, M_DISK_ALLOCATION, NULL));
	ck_assert_uint_eq(find(r, u, M_NET_IN_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, 700);
	ck_assert_uint_eq(find(r, u, M_NET_OUT_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, 900);
	ck_assert_ptr_null(find(r, u, M_NET_IN_PACKETS, NULL));
	/* memory: the balloon field was not read; the domain's first reading
	 * takes it from virDomainGetInfo (the test driver's "test": 8 GiB max,
	 * 2 GiB used: virsh -c test:///default dominfo test says 2097152 KiB) */
	ck_assert_double_eq(find(r, u, M_MEMORY, "")->v.gauge, 2097152.0 * 1024);
	/* 1 cpu + vcpus + memory + instance + 2 disk + 2 NIC = 8 samples */
	ck_assert_int_eq(r->n, 8);
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

/* path = printf(fmt, ...), its directories made, and text written to it */
static void put_file(const char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_file(const char *text, const char *fmt, ...)
{
	char path[512], cmd[1100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	ck_assert_int_eq(system(cmd), 0);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* state, interface and block: a bulk answer that did not ask for cpu-total */
static void rec_nocpu(struct prec *p, virDomainPtr dom)
{
	prec_init(p, dom);
	p_int(p, "state.state", VIR_DOMAIN_RUNNING);
	p_uint(p, "net.count", 1);
	p_str(p, "net.0.name", "testnet0");
	p_ull(p, "net.0.rx.bytes", 1000);
}

/* The cpu time the collector sent in the recording's last cpu sample, or 0
 * when this read sent none. */
static uint64_t sent_cpu(const struct rec *r, int from)
{
	uint64_t v = 0;
	for (int i = from; i < r->n; i++)
		if (r->s[i].meter == M_CPU)
			v = r->s[i].v.counter;
	return v;
}

START_TEST(test_cpu_from_cgroup)
{
	/* libvirt 9's cpu-total group also asks QEMU for halt-poll times, so
	 * the collector reads the domain's cgroup file libvirt takes cpu.time
	 * from, and asks cpu-total only every slow cycle, to check the two
	 * agree. On a fake cgroup tree (the layouts libvirt makes), each value
	 * below is the file's, worked out by hand: usage_usec x 1000 (v2),
	 * cpuacct.usage as it is (v1). */
	const char *uri = "test:///default";
	char dir[64], cg[128], net[128];
	tu_mkdtemp(dir, sizeof(dir), "lvcg");
	snprintf(cg, sizeof(cg), "%s/cg", dir);
	snprintf(net, sizeof(net), "%s/net", dir);
	struct rec *r = calloc(1, sizeof(*r));
	virConnectPtr rw = virConnectOpen(uri);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	unsigned int id = virDomainGetID(dom);
	struct prec p;
	int64_t t = time_now_ns() - 100 * NS_PER_SEC;

	/* v2 without systemd (this project's hosts: unified/ on a hybrid one) */
	void *st = open_collector(uri);
	put_file("usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\n",
		 "%s/unified/machine/qemu-%u-test.libvirt-qemu/cpu.stat", cg, id);
	lv_test_host(st, net, cg, 1);
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 4999990000ULL, 1000);   /* libvirt read 10 us earlier */
	feed(st, &p, t, r);
	ck_assert_uint_eq(sent_cpu(r, 0), 5000000000ULL);              /* agreed: the cgroup's */
	put_file("usage_usec 6000001\n", "%s/unified/machine/qemu-%u-test.libvirt-qemu/cpu.stat", cg, id);
	lv_test_host(st, net, cg, 0);
	int n0 = r->n;
	rec_nocpu(&p, dom);
	feed(st, &p, t + NS_PER_SEC, r);
	ck_assert_uint_eq(sent_cpu(r, n0), 6000001000ULL);
	libvirt_collector.free(st);

	/* systemd: the scope, and libvirt's own group in it, which libvirt reads */
	st = open_collector(uri);
	put_file("usage_usec 9999999\n", "%s/unified/machine.slice/machine-qemu\\x2d%u\\x2dtest.scope/cpu.stat", cg, id);
	put_file("usage_usec 7000000\n",
		 "%s/unified/machine.slice/machine-qemu\\x2d%u\\x2dtest.scope/libvirt/cpu.stat", cg, id);
	snprintf(net, sizeof(net), "%s/unified/machine", cg);
	tu_rmrf(net);                                                   /* only the systemd layout */
	snprintf(net, sizeof(net), "%s/net", dir);
	lv_test_host(st, net, cg, 1);
	n0 = r->n;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 7000000000ULL, 1000);
	feed(st, &p, t + 2 * NS_PER_SEC, r);
	ck_assert_uint_eq(sent_cpu(r, n0), 7000000000ULL);
	libvirt_collector.free(st);

	/* v1: cpuacct.usage in ns */
	st = open_collector(uri);
	snprintf(net, sizeof(net), "%s/unified", cg);
	tu_rmrf(net);
	snprintf(net, sizeof(net), "%s/net", dir);
	put_file("7000000123\n", "%s/cpuacct/machine/qemu-%u-test.libvirt-qemu/cpuacct.usage", cg, id);
	lv_test_host(st, net, cg, 1);
	n0 = r->n;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 7000000000ULL, 1000);
	feed(st, &p, t + 3 * NS_PER_SEC, r);
	ck_assert_uint_eq(sent_cpu(r, n0), 7000000123ULL);
	lv_test_host(st, net, cg, 0);
	n0 = r->n;
	rec_nocpu(&p, dom);
	feed(st, &p, t + 4 * NS_PER_SEC, r);
	ck_assert_uint_eq(sent_cpu(r, n0), 7000000123ULL);
	libvirt_collector.free(st);

	/* a cgroup that disagrees with libvirt (here 3 s below it): libvirt's
	 * value is sent, and a cycle without cpu-total reads nothing (the
	 * collector asks for cpu-total every cycle from then on) */
	st = open_collector(uri);
	lv_test_host(st, net, cg, 1);
	n0 = r->n;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 10000000000ULL, 1000);
	feed(st, &p, t + 5 * NS_PER_SEC, r);
	ck_assert_uint_eq(sent_cpu(r, n0), 10000000000ULL);
	lv_test_host(st, net, cg, 0);
	n0 = r->n;
	rec_nocpu(&p, dom);
	feed(st, &p, t + 6 * NS_PER_SEC, r);
	ck_assert_int_eq(r->n, n0);
	libvirt_collector.free(st);

	/* no cgroup at all: libvirt's value; without cpu-total, nothing */
	st = open_collector(uri);
	snprintf(net, sizeof(net), "%s/cpuacct", cg);
	tu_rmrf(net);
	snprintf(net, sizeof(net), "%s/net", dir);
	lv_test_host(st, net, cg, 1);
	n0 = r->n;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 11000000000ULL, 1000);
	feed(st, &p, t + 7 * NS_PER_SEC, r);
	ck_assert_uint_eq(sent_cpu(r, n0), 11000000000ULL);
	lv_test_host(st, net, cg, 0);
	n0 = r->n;
	rec_nocpu(&p, dom);
	feed(st, &p, t + 8 * NS_PER_SEC, r);
	ck_assert_int_eq(r->n, n0);
	libvirt_collector.free(st);

	virDomainFree(dom);
	virConnectClose(rw);
	free(r);
	tu_rmrf(dir);
}
END_TEST

/* the instance samples of the recording, in order: time and value */
static int instance_track(const struct rec *r, int64_t *t, double *v, int max)
{
	int k = 0;
	for (int i = 0; i < r->n && k < max; i++)
		if (r->s[i].meter == M_INSTANCE) {
			t[k] = r->s[i].time_ns;
			v[k++] = r->s[i].v.gauge;
		}
	return k;
}

START_TEST(test_pause_at_event_time)
{
	/* suspended and resumed between two reads: the instance gauge goes to
	 * 0 at the suspended event's time and back to 1 at the resumed one's,
	 * and vCPUs and memory are stamped at both edges; a read that sees
	 * the pause before its event is drained keeps the events' state */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rec *r = calloc(1, sizeof(*r));
	void *st = open_collector(uri);
	virConnectPtr rw = virConnectOpen(uri);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	struct prec p;
	int64_t t1 = time_now_ns() - 10 * NS_PER_SEC;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL, 1000);
	feed(st, &p, t1, r);
	ck_assert_int_eq(virDomainSuspend(dom), 0);
	wait_events(st, 1);
	ck_assert_int_eq(virDomainResume(dom), 0);
	wait_events(st, 2);
	r->n = r->nev = 0;
	int64_t t2 = time_now_ns();
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5100000000ULL, 1000);
	feed(st, &p, t2, r);
	ck_assert_int_eq(r->nev, 2);
	int64_t ts = r->ev[0].time_ns, tr = r->ev[1].time_ns, t[8];
	double v[8];
	ck_assert_int_eq(instance_track(r, t, v, 8), 3);
	ck_assert_int_eq(t[0], ts);
	ck_assert_double_eq(v[0], 0);
	ck_assert_int_eq(t[1], tr);
	ck_assert_double_eq(v[1], 1);
	ck_assert_int_eq(t[2], t2);
	ck_assert_double_eq(v[2], 1);
	/* vCPUs and memory stamped at both edges, with their values */
	int at_edges = 0;
	for (int i = 0; i < r->n; i++)
		if ((r->s[i].meter == M_VCPUS || r->s[i].meter == M_MEMORY) &&
		    (r->s[i].time_ns == ts || r->s[i].time_ns == tr)) {
			ck_assert_str_eq(r->s[i].resource, u);
			ck_assert_double_eq(r->s[i].v.gauge, r->s[i].meter == M_VCPUS ? 2 : 1073741824.0);
			at_edges++;
		}
	ck_assert_int_eq(at_edges, 4);
	/* a read that says paused while no event said so: its event may be on
	 * its way, the running state holds; a second such read is believed */
	r->n = 0;
	rec_full(&p, dom, VIR_DOMAIN_PAUSED, 5100000000ULL, 1000);
	feed(st, &p, t2 + NS_PER_SEC, r);
	rec_full(&p, dom, VIR_DOMAIN_PAUSED, 5100000000ULL, 1000);
	feed(st, &p, t2 + 2 * NS_PER_SEC, r);
	ck_assert_int_eq(instance_track(r, t, v, 8), 2);
	ck_assert_double_eq(v[0], 1);
	ck_assert_double_eq(v[1], 0);
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

/* ---- a metadata change reaching the ledger ---- */

static int to_agg(void *ctx, struct batch *b)
{
	struct tally_err e = { 0 };
	int rc = agg_ingest(ctx, b, &e);
	ck_assert_msg(rc >= 0, "%s", e.msg);
	return 0;
}

static uint64_t agg_next(void *ctx, const char *agent)
{
	return agg_agent_seq(ctx, agent) + 1;
}

/* one collection cycle at t, through the batcher and the aggregator, committed */
static void cycle(void *st, struct batcher *bt, struct aggregator *a, int64_t t)
{
	struct tally_err e = { 0 };
	struct sink sk = batcher_sink(bt);
	ck_assert_msg(libvirt_collector.read(st, t, &sk, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(batcher_flush(bt, t), 0);
	ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
}

START_TEST(test_metadata_change_reaches_ledger)
{
	/* the running domain gains Nova metadata mid-run (as Nova writes it on a
	 * resize or a project move), loses it again, and each state reaches
	 * resource_attrs from the cycle the collector read it: read with the
	 * sqlite3 CLI, an independent reader */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	const char *nova_ns = "http://openstack.org/xmlns/libvirt/nova/1.0";
	char dir[64], path[128], cmd[512];
	tu_mkdtemp(dir, sizeof(dir), "lvmeta");
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	struct aggregator *a;
	struct agg_config ac = { .ledger_path = path, .max_gap_ns = 300 * NS_PER_SEC };
	struct tally_err e = { 0 };
	ck_assert_msg(agg_open(&a, &ac, &e) == 0, "%s", e.msg);
	struct batcher bt;
	batcher_init(&bt, "t", to_agg, agg_next, a);
	void *st = open_collector_with(uri, "xml_refresh: 1\n");
	int64_t t0 = time_now_ns() / NS_PER_SEC * NS_PER_SEC;
	cycle(st, &bt, a, t0);

	virConnectPtr rw = virConnectOpen(uri);
	ck_assert_ptr_nonnull(rw);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	ck_assert_int_eq(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
		"<instance><name>db-7</name><flavor name='m1.xlarge'/><owner><user uuid='user-7'>u</user>"
		"<project uuid='proj-7'>p</project></owner></instance>", "nova", nova_ns, VIR_DOMAIN_AFFECT_LIVE), 0);
	cycle(st, &bt, a, t0 + NS_PER_SEC);
	cycle(st, &bt, a, t0 + 2 * NS_PER_SEC);                  /* unchanged: no new row */
	ck_assert_int_eq(virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, NULL, NULL, nova_ns,
					      VIR_DOMAIN_AFFECT_LIVE), 0);
	cycle(st, &bt, a, t0 + 3 * NS_PER_SEC);
	libvirt_collector.free(st);
	batcher_release(&bt);
	agg_close(a);

	snprintf(cmd, sizeof(cmd), "sqlite3 -separator ' ' '%s' \"SELECT (a.since_ns - %lld) / 1000000000,"
		 " a.name, a.tenant, a.user_id, a.flavor, a.labels FROM resource_attrs a JOIN resources r"
		 " ON r.id = a.resource_id WHERE r.uuid = '%s' ORDER BY a.since_ns\"", path, (long long)t0, u);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char out[1024];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_str_eq(out, "0 test    source=libvirt\n"
			      "1 db-7 proj-7 user-7 m1.xlarge flavor=m1.xlarge,source=nova\n"
			      "3 test    source=libvirt\n");
	tu_rmrf(dir);
}
END_TEST

/* A ledger in a temporary directory, its aggregator, and a batcher that
 * hands it a collector's samples. */
struct ledger_rig {
	char dir[64], path[128];
	struct aggregator *a;
	struct batcher bt;
};

static void rig_open(struct ledger_rig *g, const char *name)
{
	struct tally_err e = { 0 };
	tu_mkdtemp(g->dir, sizeof(g->dir), name);
	snprintf(g->path, sizeof(g->path), "%s/ledger.db", g->dir);
	struct agg_config ac = { .ledger_path = g->path, .max_gap_ns = 300 * NS_PER_SEC };
	ck_assert_msg(agg_open(&g->a, &ac, &e) == 0, "%s", e.msg);
	batcher_init(&g->bt, "t", to_agg, agg_next, g->a);
}

static void rig_close(struct ledger_rig *g)
{
	batcher_release(&g->bt);
	agg_close(g->a);
	tu_rmrf(g->dir);
}

/* One cycle of records (NULL: none, the events only), read the way c says
 * (NULL: the records have every group), at t through the batcher and the
 * aggregator, committed. */
static void cycle_records(void *st, struct prec *p, struct lv_test_cycle *c, struct ledger_rig *g, int64_t t)
{
	struct batcher *bt = &g->bt;
	struct aggregator *a = g->a;
	struct tally_err e = { 0 };
	struct sink sk = batcher_sink(bt);
	virDomainStatsRecordPtr one[1] = { p ? &p->r : NULL };
	ck_assert_int_eq(lv_read_records(st, p ? one : NULL, p ? 1 : 0, c, t, &sk), 0);
	if (p)
		virTypedParamsFree(p->r.params, p->r.nparams);
	ck_assert_int_eq(batcher_flush(bt, t), 0);
	ck_assert_msg(agg_commit(a, &e) == 0, "%s", e.msg);
}

/* The first line the sqlite3 CLI prints for query on the ledger at path. */
static void sql(const char *path, const char *query, char *out, size_t len)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "sqlite3 -separator ' ' '%s' \"%s\"", path, query);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	ck_assert_int_eq(pclose(f), 0);
}

/* One series of the ledger at path: "last_value usage flags". */
static void series_row(const char *path, const char *uuid, const char *meter, char *out, size_t len)
{
	char q[512];
	snprintf(q, sizeof(q), "SELECT s.last_value, (SELECT total(u.quantity) FROM usage u WHERE u.resource_id ="
		 " s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device), s.flags FROM series s JOIN"
		 " resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '%s' AND"
		 " m.name = '%s'", uuid, meter);
	sql(path, q, out, len);
}

START_TEST(test_destroy_through_ledger)
{
	/* check-vm's destroy 0.4 s before a read, through the aggregator to the
	 * ledger, read back with the sqlite3 CLI: QEMU takes a second or two
	 * to die under TCG, so the read after the destroy began still answers
	 * (without block and balloon) and with more cpu time than the read
	 * before; that read belongs to the first life, and the stop's final
	 * reading repeats it. Worked out by hand from the records: cpu 5.0 s at
	 * the first read (the baseline), 6.0 s at the read during the destroy,
	 * so the first life used 1.0 s and ended at 6.0 s; the NIC read 1000
	 * then 1500 bytes in: 500. Every one of the life's 16 series ends with
	 * the stop: flags 3 in the ledger (1 = has a reading, 2 = ended), none
	 * left at 1. The new process's first read (cpu 0.25 s) counts from
	 * zero and opens the cpu series again (flags 1): 1.25 s in all.
	 * (check-vm took flags & 1 for "ended", which every row has, read the
	 * first life's end before the final reading was stored and found the
	 * read during the destroy "counted twice".) */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	char q[512], out[256];
	struct ledger_rig g;
	rig_open(&g, "lvdestroy");
	const char *path = g.path;
	void *st = open_collector(uri);
	virConnectPtr rw = virConnectOpen(uri);
	ck_assert_ptr_nonnull(rw);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	struct prec p;
	int64_t t1 = time_now_ns() - 3 * NS_PER_SEC;
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL, 1000);
	cycle_records(st, &p, NULL, &g, t1);
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 6000000000ULL, 1500);
	cycle_records(st, &p, NULL, &g, t1 + NS_PER_SEC);
	ck_assert_int_eq(virDomainDestroy(dom), 0);
	wait_events(st, 1);
	cycle_records(st, NULL, NULL, &g, time_now_ns());
	snprintf(q, sizeof(q), "SELECT count(*), total(s.flags = 3), total(s.flags = 1) FROM series s"
		 " JOIN resources r ON r.id = s.resource_id WHERE r.uuid = '%s'", u);
	sql(path, q, out, sizeof(out));
	ck_assert_str_eq(out, "16 16.0 0.0");
	series_row(path, u, "cpu", out, sizeof(out));
	ck_assert_str_eq(out, "6000000000 1000000000.0 3");
	series_row(path, u, "network.incoming.bytes", out, sizeof(out));
	ck_assert_str_eq(out, "1500 500.0 3");
	/* the new process: its start event, then its first read */
	ck_assert_int_eq(virDomainCreate(dom), 0);
	wait_events(st, 1);
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 250000000ULL, 0);
	cycle_records(st, &p, NULL, &g, time_now_ns());
	series_row(path, u, "cpu", out, sizeof(out));
	ck_assert_str_eq(out, "250000000 1250000000.0 1");
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	rig_close(&g);
}
END_TEST

/* ---- disk counters by per-disk calls, disk sizes every slow cycle ---- */

/* One cycle of one record read the way c says (c->asked gets what the
 * collector asked the second calls for). */
static void feed_c(void *st, struct prec *p, struct lv_test_cycle *c, int64_t t, struct rec *r)
{
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	virDomainStatsRecordPtr one[1] = { &p->r };
	ck_assert_int_eq(lv_read_records(st, one, 1, c, t, &sk), 0);
	virTypedParamsFree(p->r.params, p->r.nparams);
}

/* The block group of one disk `name`: counters from rd, its capacity. */
static void rec_blk(struct prec *p, virDomainPtr dom, const char *name, unsigned long long rd,
		    unsigned long long cap)
{
	p_uint(p, "block.count", 1);
	p_str(p, "block.0.name", name);
	p_ull(p, "block.0.rd.bytes", rd);
	p_ull(p, "block.0.wr.bytes", rd * 2);
	p_ull(p, "block.0.rd.reqs", rd / 512);
	p_ull(p, "block.0.wr.reqs", rd / 256);
	p_ull(p, "block.0.capacity", cap);
	p_ull(p, "block.0.allocation", cap / 512);
	(void)dom;
}

/* One cycle of rec_small()'s record for dom, read the way c says, with
 * a block group answer for the second call (used where it was asked): one
 * disk, its counters from rd and its capacity. */
static void feed_blk(void *st, virDomainPtr dom, unsigned long long cpu_ns, const char *disk, unsigned long long rd,
		     unsigned long long cap, struct lv_test_cycle *c, int64_t t, struct rec *r)
{
	struct prec p, xb;
	virDomainStatsRecordPtr xblk[1] = { &xb.r };
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, cpu_ns, 0);
	prec_init(&xb, dom);
	rec_blk(&xb, dom, disk, rd, cap);
	c->xblk = xblk;
	feed_c(st, &p, c, t, r);
	c->xblk = NULL;
	virTypedParamsFree(xb.r.params, xb.r.nparams);
}

/* How many samples of meter (any device) the recording has from index from. */
static int count_meter(const struct rec *r, int from, int meter)
{
	int k = 0;
	for (int i = from; i < r->n; i++)
		k += r->s[i].meter == meter;
	return k;
}

/* The value of gauge `meter` of device dev sent from index from on, or -1. */
static double gauge_from(const struct rec *r, int from, int meter, const char *dev)
{
	double v = -1;
	for (int i = from; i < r->n; i++)
		if (r->s[i].meter == meter && !strcmp(r->s[i].device, dev))
			v = r->s[i].v.gauge;
	return v;
}

/* The test driver's virDomainBlockStats (src/test/test_driver.c): for the
 * real time T in microseconds at the call, rd_req = T / 10, rd_bytes =
 * T / 20, wr_req = T / 30, wr_bytes = T / 40 (integer divisions). The
 * four counters of disk dev sent from index from must be those of one T
 * between t0_us and t1_us: each within its bounds, and rd_bytes =
 * rd_req / 2, wr_bytes = rd_req / 4 (floor(floor(T / 10) / 2) =
 * floor(T / 20)). */
static void check_driver_disk(const struct rec *r, int from, const char *dev, int64_t t0_us, int64_t t1_us)
{
	static const int m[4] = { M_DISK_READ_BYTES, M_DISK_WRITE_BYTES, M_DISK_READ_REQUESTS, M_DISK_WRITE_REQUESTS };
	static const int div[4] = { 20, 40, 10, 30 };
	uint64_t v[4] = { 0 };
	int have = 0;
	for (int i = from; i < r->n; i++)
		for (int k = 0; k < 4; k++)
			if (r->s[i].meter == m[k] && !strcmp(r->s[i].device, dev)) {
				v[k] = r->s[i].v.counter;
				have |= 1 << k;
			}
	ck_assert_int_eq(have, 15);
	for (int k = 0; k < 4; k++)
		ck_assert_msg(v[k] >= (uint64_t)(t0_us / div[k]) && v[k] <= (uint64_t)(t1_us / div[k]),
			      "meter %d: %llu outside %lld .. %lld", m[k], (unsigned long long)v[k],
			      (long long)(t0_us / div[k]), (long long)(t1_us / div[k]));
	ck_assert_uint_eq(v[0], v[2] / 2);
	ck_assert_uint_eq(v[1], v[2] / 4);
}

START_TEST(test_disk_calls)
{
	/* A slow cycle reads the block group with the bulk call: counters,
	 * capacity, allocation. The cycles between read the one disk's
	 * counters with virDomainBlockStats (two QMP queries instead of the
	 * group's three) and send its sizes again with their last values. A
	 * device added or removed has the block group asked for the domain
	 * alone at the next cycle (its sizes), with no per-disk call; when
	 * that NOWAIT answer does not come (the domain's job is taken), the
	 * cycle reads no disk counter at all (a per-disk call would wait for
	 * the job) and asks again at the next. */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	const double gib = 1073741824.0;
	struct rec *r = calloc(1, sizeof(*r));
	void *st = open_collector(uri);
	virConnectPtr rw = virConnectOpen(uri);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	struct prec p;
	unsigned char asked[1];
	struct lv_test_cycle slow = { .block_main = 1, .asked = asked };
	struct lv_test_cycle fast = { .disk_calls = 1, .asked = asked };  /* no block group answer */
	int64_t t = time_now_ns() - 60 * NS_PER_SEC, b, a;

	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL, 1000);
	feed_c(st, &p, &slow, t, r);
	ck_assert_int_eq(asked[0], 0);
	char vda[TALLY_DEV_MAX];
	str_copy(vda, find(r, u, M_DISK_READ_BYTES, NULL)->device, sizeof(vda));
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vda), gib);

	/* between slow cycles: virDomainBlockStats; sizes held */
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 6000000000ULL, 1500);
	b = time_now_ns() / 1000;
	feed_c(st, &p, &fast, t + NS_PER_SEC, r);
	a = time_now_ns() / 1000;
	ck_assert_int_eq(asked[0], 0);
	check_driver_disk(r, 0, vda, b, a);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vda), gib);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_ALLOCATION, vda), 2097152.0);
	/* cpu, vcpus, instance, 4 NIC and 4 disk counters; memory, usage,
	 * resident, capacity and allocation held */
	ck_assert_int_eq(r->n, 16);

	/* a device added: the block group for this domain, no per-disk call */
	lv_test_event(st, dom, LV_EV_DEVICE_ADDED, 0);
	r->n = 0;
	feed_blk(st, dom, 7000000000ULL, "vda", 1048576, 2 * 1073741824ULL, &fast, t + 2 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 2);
	ck_assert_int_eq(count_meter(r, 0, M_DISK_READ_BYTES), 1);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_BYTES, vda)->v.counter, 1048576);
	ck_assert_uint_eq(find(r, u, M_DISK_WRITE_REQUESTS, vda)->v.counter, 4096);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vda), 2 * gib);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_ALLOCATION, vda), 4194304.0);

	/* its sizes read: per-disk calls again, the new capacity held */
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 8000000000ULL, 2500);
	b = time_now_ns() / 1000;
	feed_c(st, &p, &fast, t + 3 * NS_PER_SEC, r);
	a = time_now_ns() / 1000;
	ck_assert_int_eq(asked[0], 0);
	check_driver_disk(r, 0, vda, b, a);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vda), 2 * gib);

	/* a device removed, and the NOWAIT block group does not answer: no
	 * disk counter this cycle, sizes held; the group asked again next */
	lv_test_event(st, dom, LV_EV_DEVICE_REMOVED, 0);
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 9000000000ULL, 3000);
	feed_c(st, &p, &fast, t + 4 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 2);
	for (int m = M_DISK_READ_BYTES; m <= M_DISK_WRITE_REQUESTS; m++)
		ck_assert_int_eq(count_meter(r, 0, m), 0);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vda), 2 * gib);
	ck_assert_uint_eq(find(r, u, M_CPU, "")->v.counter, 9000000000ULL);   /* the rest is read */
	r->n = 0;
	feed_blk(st, dom, 9500000000ULL, "vda", 2097152, 2 * 1073741824ULL, &fast, t + 5 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 2);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_BYTES, vda)->v.counter, 2097152);
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

START_TEST(test_disk_call_stalls)
{
	/* A per-disk call that takes more than a quarter interval (libvirt's
	 * per-domain calls wait up to 30 s for a domain's job; here the
	 * interval is 1 ns, so every call is slow) moves the domain to the
	 * NOWAIT block group, asked for it alone each cycle, until a slow
	 * cycle's bulk answer brings its block group (its job was free):
	 * then per-disk calls again. */
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "t", .interval_ns = 1 };
	void *st = NULL;
	const char *yaml = "uri: 'test:///default'\n";
	ck_assert_int_eq(cfg_load_string("lv.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_msg(libvirt_collector.configure(root, &env, &st, &e) == 0, "%s", e.msg);
	cfg_free(root);
	ck_assert_int_eq(libvirt_collector.init(st, 0, &e), 0);
	struct rec *r = calloc(1, sizeof(*r));
	virConnectPtr rw = virConnectOpen("test:///default");
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	struct prec p;
	unsigned char asked[1];
	struct lv_test_cycle slow = { .block_main = 1, .asked = asked };
	struct lv_test_cycle fast = { .disk_calls = 1, .asked = asked };
	int64_t t = time_now_ns() - 60 * NS_PER_SEC;
	/* slow, per-disk (slow: busy), group, group, slow (answers), per-disk */
	static const struct { int slow; unsigned char asked; } step[] = {
		{ 1, 0 }, { 0, 0 }, { 0, 2 }, { 0, 2 }, { 1, 0 }, { 0, 0 }, { 0, 2 },
	};
	for (size_t k = 0; k < sizeof(step) / sizeof(step[0]); k++) {
		if (step[k].slow)
			rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL + k, 1000);
		else
			rec_small(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL + k, 1000);
		asked[0] = 9;
		feed_c(st, &p, step[k].slow ? &slow : &fast, t + (int64_t)k * NS_PER_SEC, r);
		ck_assert_msg(asked[0] == step[k].asked, "cycle %zu: asked %d, want %d", k, asked[0], step[k].asked);
	}
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

/* The per-disk calls over libvirt's protocol, to a daemon this test plays
 * (lvrpc_daemon.h; lv_test_rpc points the collector at it): the counters
 * sent are the ones answered; a call not answered within a quarter
 * interval (1 s here) moves the domain to the NOWAIT block group until a
 * slow cycle, as a stalled library call does; its answer, coming in a
 * later cycle, is skipped; an error answer reads no disk counter; a daemon
 * that goes away has the library's call read the counters that cycle (not
 * a stall: per-disk calls go on). */
static unsigned char rpc_uuid[16];
static int rpc_id;

static void script_collector(int fd)
{
	static const uint32_t none[] = { 0 };
	struct call c;
	serve_open(fd, "test:///default", none, 1);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_stats_call(&c, "test", rpc_uuid, rpc_id, "vda");
	reply_stats(fd, c.serial, 11, (1LL << 40) + 3, 13, 14);
	ck_assert_int_eq(get_call(fd, &c), 0);      /* not answered in its cycle */
	uint32_t late = c.serial;
	ck_assert_int_eq(get_call(fd, &c), 0);      /* the next per-disk cycle's call */
	want_stats_call(&c, "test", rpc_uuid, rpc_id, "vda");
	reply_stats(fd, late, 99, 99, 99, 99);
	reply_error(fd, c.serial, 55);              /* VIR_ERR_OPERATION_INVALID */
	ck_assert_int_eq(get_call(fd, &c), 0);      /* then the daemon goes away unanswering */
}

/* The test driver's domain "test" read by a collector whose protocol calls
 * go to a daemon playing script (the caller ends with rpc_done). */
struct rpc_rig {
	char dir[256], sock[300];
	struct rec *r;
	void *st;
	virConnectPtr rw;
	virDomainPtr dom;
	struct daemon d;
};

static void rpc_rig(struct rpc_rig *g, script_fn script)
{
	tu_mkdtemp(g->dir, sizeof(g->dir), "lvrpc");
	snprintf(g->sock, sizeof(g->sock), "%s/sock", g->dir);
	g->r = calloc(1, sizeof(*g->r));
	g->st = open_collector("test:///default");
	g->rw = virConnectOpen("test:///default");
	g->dom = virDomainLookupByName(g->rw, "test");
	ck_assert_ptr_nonnull(g->dom);
	ck_assert_int_eq(virDomainGetUUID(g->dom, rpc_uuid), 0);
	rpc_id = (int)virDomainGetID(g->dom);
	daemon_start(&g->d, g->sock, script);
	lv_test_rpc(g->st, g->sock);
}

static void rpc_done(struct rpc_rig *g)
{
	virDomainFree(g->dom);
	virConnectClose(g->rw);
	libvirt_collector.free(g->st);
	tu_rmrf(g->dir);
	free(g->r);
}

START_TEST(test_disk_calls_rpc)
{
	const char *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rpc_rig g;
	rpc_rig(&g, script_collector);
	struct rec *r = g.r;
	void *st = g.st;
	virDomainPtr dom = g.dom;
	struct prec p;
	unsigned char asked[1];
	struct lv_test_cycle slow = { .block_main = 1, .asked = asked };
	struct lv_test_cycle fast = { .disk_calls = 1, .asked = asked };
	int64_t t = time_now_ns() - 60 * NS_PER_SEC;

	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL, 1000);
	feed_c(st, &p, &slow, t, r);
	char vda[TALLY_DEV_MAX];
	str_copy(vda, find(r, u, M_DISK_READ_BYTES, NULL)->device, sizeof(vda));
	/* answered: those counters, not the test driver's */
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 6000000000ULL, 1500);
	feed_c(st, &p, &fast, t + NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 0);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_REQUESTS, vda)->v.counter, 11);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_BYTES, vda)->v.counter, 1099511627779ULL);
	ck_assert_uint_eq(find(r, u, M_DISK_WRITE_REQUESTS, vda)->v.counter, 13);
	ck_assert_uint_eq(find(r, u, M_DISK_WRITE_BYTES, vda)->v.counter, 14);
	/* not answered within 250 ms: no disk counter; the block group next */
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 7000000000ULL, 2000);
	feed_c(st, &p, &fast, t + 2 * NS_PER_SEC, r);
	for (int m = M_DISK_READ_BYTES; m <= M_DISK_WRITE_REQUESTS; m++)
		ck_assert_int_eq(count_meter(r, 0, m), 0);
	ck_assert_uint_eq(find(r, u, M_CPU, "")->v.counter, 7000000000ULL);
	r->n = 0;
	feed_blk(st, dom, 7500000000ULL, "vda", 1048576, 1073741824ULL, &fast, t + 3 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 2);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_BYTES, vda)->v.counter, 1048576);
	/* a slow cycle brings the block group: per-disk calls again; the late
	 * answer of before is skipped and the error reads no disk counter */
	rec_full(&p, dom, VIR_DOMAIN_RUNNING, 8000000000ULL, 2500);
	feed_c(st, &p, &slow, t + 4 * NS_PER_SEC, r);
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 9000000000ULL, 3000);
	feed_c(st, &p, &fast, t + 5 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 0);
	for (int m = M_DISK_READ_BYTES; m <= M_DISK_WRITE_REQUESTS; m++)
		ck_assert_int_eq(count_meter(r, 0, m), 0);
	/* the daemon goes away: the test driver's counters, by the library */
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 9500000000ULL, 3500);
	int64_t b = time_now_ns() / 1000;
	feed_c(st, &p, &fast, t + 6 * NS_PER_SEC, r);
	int64_t a = time_now_ns() / 1000;
	ck_assert_int_eq(asked[0], 0);
	check_driver_disk(r, 0, vda, b, a);
	daemon_join(&g.d);
	r->n = 0;
	rec_small(&p, dom, VIR_DOMAIN_RUNNING, 9700000000ULL, 3600);
	feed_c(st, &p, &fast, t + 7 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 0);            /* no stall was taken from it */
	rpc_done(&g);
}
END_TEST

/* The bulk stats call over the protocol, to a daemon this test plays: the
 * readings are the answer's (values chosen by hand, none the test
 * driver's); a record of a domain the library's connection does not know
 * (gone since the answer) is skipped; the next cycle's record of the same
 * process is read the same way, and its per-disk call answered; a daemon
 * that answers the bulk call with an error has the library's call read
 * the domain that cycle (the test driver's values), and is not asked the
 * bulk call again on that connection (its other calls go on). */
static void script_bulk(int fd)
{
	static const uint32_t none[] = { 0 };
	static const unsigned char ghost[16] = { 0xde, 0xad };
	struct call c;
	struct xbuf x = { .n = 0 };
	serve_open(fd, "test:///default", none, 1);
	/* cycle 1, slow: state, cpu-total, balloon, interface, block */
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 1 | 2 | 4 | 16 | 32, 0x20000001);
	xb_u32(&x, 2);
	xb_record(&x, "ghost", ghost, 99, 1);
	xb_word(&x, "state.state", 1, 1);
	xb_record(&x, "test", rpc_uuid, rpc_id, 16);
	xb_word(&x, "state.state", 1, 1);
	xb_wide(&x, "cpu.time", 4, 5000000000ULL);
	xb_word(&x, "net.count", 2, 1);
	xb_string(&x, "net.0.name", "testnet0");
	xb_wide(&x, "net.0.rx.bytes", 4, (1ULL << 40) + 5);
	xb_wide(&x, "net.0.tx.bytes", 4, 77);
	xb_wide(&x, "balloon.current", 4, 1048576);
	xb_word(&x, "block.count", 2, 1);
	xb_string(&x, "block.0.name", "vda");
	xb_wide(&x, "block.0.rd.bytes", 4, 4096);
	xb_wide(&x, "block.0.wr.bytes", 4, 8192);
	xb_wide(&x, "block.0.rd.reqs", 4, 1);
	xb_wide(&x, "block.0.wr.reqs", 4, 2);
	xb_wide(&x, "block.0.capacity", 4, 1073741824);
	xb_wide(&x, "block.0.allocation", 4, 2097152);
	xb_wide(&x, "block.0.physical", 4, 2097152);
	reply_buf(fd, c.serial, 0, &x);
	/* cycle 2: state, cpu-total, interface; then vda's per-disk call */
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 1 | 2 | 16, 0x20000001);
	x.n = 0;
	xb_u32(&x, 1);
	xb_record(&x, "test", rpc_uuid, rpc_id, 6);
	xb_word(&x, "state.state", 1, 1);
	xb_wide(&x, "cpu.time", 4, 6000000000ULL);
	xb_word(&x, "net.count", 2, 1);
	xb_string(&x, "net.0.name", "testnet0");
	xb_wide(&x, "net.0.rx.bytes", 4, (1ULL << 40) + 1005);
	xb_wide(&x, "net.0.tx.bytes", 4, 177);
	reply_buf(fd, c.serial, 0, &x);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_stats_call(&c, "test", rpc_uuid, rpc_id, "vda");
	reply_stats(fd, c.serial, 11, (1LL << 40) + 3, 13, 14);
	/* cycle 3: refused */
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_all_stats_call(&c, 1 | 2 | 16, 0x20000001);
	reply_error(fd, c.serial, 55);              /* VIR_ERR_OPERATION_INVALID */
	/* from now on: the other calls, never the bulk one */
	while (get_call(fd, &c) == 0) {
		ck_assert_uint_ne(c.proc, 344);
		if (c.proc == 64)
			reply_stats(fd, c.serial, 21, 22, 23, 24);
		else
			reply_info(fd, c.serial, 1, 8388608, 2097152, 2, 5000000000ULL);
	}
}

START_TEST(test_bulk_rpc)
{
	const char *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rpc_rig g;
	rpc_rig(&g, script_bulk);
	/* the XML every 2 cycles: the test driver's bulk answer, useless to
	 * the collector, is then asked again at the fourth read (else listed) */
	libvirt_collector.free(g.st);
	g.st = open_collector_with("test:///default", "xml_refresh: 2\n");
	lv_test_rpc(g.st, g.sock);
	struct rec *r = g.r;
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	struct tally_err e = { 0 };
	char nocg[320];
	snprintf(nocg, sizeof(nocg), "%s/no-cgroups", g.dir);   /* cpu time from cpu.time */
	lv_test_host(g.st, g.dir, nocg, 1);
	int64_t t = time_now_ns() - 60 * NS_PER_SEC;

	ck_assert_msg(libvirt_collector.read(g.st, t, &sk, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(r->nm, 1);                 /* the ghost's record skipped */
	ck_assert_str_eq(r->m[0].resource, u);
	ck_assert_uint_eq(find(r, u, M_CPU, "")->v.counter, 5000000000ULL);
	ck_assert_uint_eq(find(r, u, M_NET_IN_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, (1ULL << 40) + 5);
	ck_assert_uint_eq(find(r, u, M_NET_OUT_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, 77);
	const struct sample *rd = find(r, u, M_DISK_READ_BYTES, NULL);
	ck_assert_ptr_nonnull(rd);
	ck_assert_int_eq(strncmp(rd->device, "vda:", 4), 0);
	char vda[TALLY_DEV_MAX];
	str_copy(vda, rd->device, sizeof(vda));
	ck_assert_uint_eq(rd->v.counter, 4096);
	ck_assert_uint_eq(find(r, u, M_DISK_WRITE_REQUESTS, vda)->v.counter, 2);
	ck_assert_double_eq(find(r, u, M_DISK_CAPACITY, vda)->v.gauge, 1073741824.0);
	ck_assert_double_eq(find(r, u, M_MEMORY, "")->v.gauge, 1073741824.0);   /* 1048576 KiB */

	r->n = 0;
	ck_assert_msg(libvirt_collector.read(g.st, t + NS_PER_SEC, &sk, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(find(r, u, M_CPU, "")->v.counter, 6000000000ULL);
	ck_assert_uint_eq(find(r, u, M_NET_IN_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, (1ULL << 40) + 1005);
	ck_assert_uint_eq(find(r, u, M_NET_OUT_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, 177);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_BYTES, vda)->v.counter, (1ULL << 40) + 3);
	ck_assert_uint_eq(find(r, u, M_DISK_READ_REQUESTS, vda)->v.counter, 11);

	/* refused: the test driver's readings, by the library's calls */
	r->n = 0;
	ck_assert_msg(libvirt_collector.read(g.st, t + 2 * NS_PER_SEC, &sk, &e) == 0, "%s", e.msg);
	const struct sample *cpu = find(r, u, M_CPU, "");
	ck_assert_ptr_nonnull(cpu);
	ck_assert_uint_ne(cpu->v.counter, 6000000000ULL);
	ck_assert_uint_ne(find(r, u, M_NET_IN_BYTES, "aa:bb:cc:dd:ee:ff")->v.counter, (1ULL << 40) + 1005);
	for (int k = 3; k < 6; k++) {
		r->n = 0;
		ck_assert_msg(libvirt_collector.read(g.st, t + k * NS_PER_SEC, &sk, &e) == 0, "%s", e.msg);
		ck_assert_ptr_nonnull(find(r, u, M_CPU, ""));
	}
	libvirt_collector.free(g.st);               /* the daemon sees the close */
	g.st = NULL;
	daemon_join(&g.d);
	virDomainFree(g.dom);
	virConnectClose(g.rw);
	tu_rmrf(g.dir);
	free(g.r);
}
END_TEST

/* A slow cycle's virDomainGetInfo over the protocol (the vCPU count), to a
 * daemon this test plays: the first cycle's domain is not known yet (its
 * info by the library: the test driver's 2 vCPUs); then the count sent is
 * the one answered (7, where the test driver says 2); an error answer
 * leaves the last count held (7); a daemon that goes away has the library
 * read it that cycle (2). */
static void script_info(int fd)
{
	static const uint32_t none[] = { 0 };
	struct call c;
	serve_open(fd, "test:///default", none, 1);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_info_call(&c, "test", rpc_uuid, rpc_id);
	reply_info(fd, c.serial, 1, 8388608, 2097152, 7, 5000000000ULL);
	ck_assert_int_eq(get_call(fd, &c), 0);
	want_info_call(&c, "test", rpc_uuid, rpc_id);
	reply_error(fd, c.serial, 42);              /* VIR_ERR_NO_DOMAIN */
	ck_assert_int_eq(get_call(fd, &c), 0);      /* then the daemon goes away unanswering */
}

START_TEST(test_info_calls_rpc)
{
	const char *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	struct rpc_rig g;
	rpc_rig(&g, script_info);
	struct rec *r = g.r;
	void *st = g.st;
	virDomainPtr dom = g.dom;
	struct prec p;
	unsigned char asked[1];
	struct lv_test_cycle slow = { .block_main = 1, .vcpus_by_info = 1, .asked = asked };
	int64_t t = time_now_ns() - 60 * NS_PER_SEC;
	static const double want[4] = { 2, 7, 7, 2 };
	for (int k = 0; k < 4; k++) {
		r->n = 0;
		prec_init(&p, dom);          /* no vcpu group: a hypervisor on this host */
		p_int(&p, "state.state", VIR_DOMAIN_RUNNING);
		p_ull(&p, "cpu.time", 5000000000ULL + (uint64_t)k);
		feed_c(st, &p, &slow, t + k * NS_PER_SEC, r);
		ck_assert_msg(find(r, u, M_VCPUS, "")->v.gauge == want[k], "cycle %d: %g vCPUs, want %g", k,
			      find(r, u, M_VCPUS, "")->v.gauge, want[k]);
	}
	daemon_join(&g.d);
	rpc_done(&g);
}
END_TEST

/* libvirt's event loop held on its own thread (hold_loop), so that no
 * event reaches the collector until the test lets it go: the order of a
 * domain's change and its event on a busy host. */
static int hold_pipe[2];
static volatile int held;

static void hold_loop(int timer, void *opaque)
{
	char c;
	(void)opaque;
	virEventRemoveTimeout(timer);
	held = 1;
	ck_assert_int_eq(read(hold_pipe[0], &c, 1), 1);
	held = 0;
}

static void loop_hold(void)
{
	ck_assert_int_eq(pipe(hold_pipe), 0);
	ck_assert_int_ge(virEventAddTimeout(0, hold_loop, NULL, NULL), 0);
	for (int k = 0; !held; k++) {
		ck_assert_msg(k < 3000, "libvirt's event loop did not run the hold in 30 s");
		usleep(10 * 1000);
	}
}

static void loop_release(void)
{
	ck_assert_int_eq(write(hold_pipe[1], "x", 1), 1);
	for (int k = 0; held; k++) {
		ck_assert(k < 3000);
		usleep(10 * 1000);
	}
	close(hold_pipe[0]);
	close(hold_pipe[1]);
}

static virDomainPtr create_dom_disk(virConnectPtr rw, const char *name, const char *uuid, const char *disk)
{
	char xml[800];
	snprintf(xml, sizeof(xml), "<domain type='test'><name>%s</name><uuid>%s</uuid>"
		 "<memory unit='KiB'>102400</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
		 "<devices><disk type='file' device='disk'><source file='/tally-test/%s.img'/>"
		 "<target dev='%s' bus='virtio'/></disk></devices></domain>", name, uuid, disk, disk);
	virDomainPtr d = virDomainCreateXML(rw, xml, 0);
	ck_assert_ptr_nonnull(d);
	return d;
}

START_TEST(test_disk_call_errors)
{
	/* Events lag (they come on libvirt's event thread; here it is held):
	 * - a domain destroyed between the bulk call and its per-disk call:
	 *   the call fails, the cycle sends no disk counter of it, the rest of
	 *   its record is read;
	 * - the domain started again as a new process with another disk (vdc
	 *   for vdb) before any event says so: the read that meets the new
	 *   process (another domain id) reads its XML again and asks the block
	 *   group for it instead of a per-disk call for vdb (the disk is
	 *   gone), which brings vdc's counters and sizes; vdb's sizes are not
	 *   sent again; the next read makes a per-disk call for vdc. */
	const char *uri = "test:///default", *u = "0b4d3c2a-0000-4000-8000-0000000000d1";
	const double gib = 1073741824.0;
	virConnectPtr rw = virConnectOpen(uri);
	ck_assert_ptr_nonnull(rw);
	struct rec *r = calloc(1, sizeof(*r));
	void *st = open_collector(uri);
	virDomainPtr dk = create_dom_disk(rw, "dk", u, "vdb");
	wait_events(st, 1); /* its start, drained by the first read */
	struct prec p;
	unsigned char asked[1];
	struct lv_test_cycle slow = { .block_main = 1, .asked = asked };
	struct lv_test_cycle fast = { .disk_calls = 1, .asked = asked };  /* no block group answer */
	int64_t t = time_now_ns() - 60 * NS_PER_SEC;
	rec_small(&p, dk, VIR_DOMAIN_RUNNING, 5000000000ULL, 1000);
	rec_blk(&p, dk, "vdb", 4096, 1073741824ULL);
	feed_c(st, &p, &slow, t, r);
	char vdb[TALLY_DEV_MAX];
	str_copy(vdb, find(r, u, M_DISK_READ_BYTES, NULL)->device, sizeof(vdb));
	ck_assert_ptr_nonnull(strstr(vdb, "vdb"));

	/* the bulk answer's domain object is the client's own: a destroy made
	 * elsewhere leaves its id as it was (virDomainDestroy sets -1 on the
	 * object it is given) */
	virDomainPtr seen = virDomainLookupByUUIDString(rw, u);
	ck_assert_ptr_nonnull(seen);
	loop_hold();
	ck_assert_int_eq(virDomainDestroy(dk), 0);
	r->n = 0;
	rec_small(&p, seen, VIR_DOMAIN_RUNNING, 5500000000ULL, 1200);
	feed_c(st, &p, &fast, t + NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 0);                                    /* the per-disk call was made */
	for (int m = M_DISK_READ_BYTES; m <= M_DISK_WRITE_REQUESTS; m++)
		ck_assert_int_eq(count_meter(r, 0, m), 0);
	ck_assert_uint_eq(find(r, u, M_CPU, "")->v.counter, 5500000000ULL);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vdb), gib);  /* held */

	virDomainFree(seen);
	virDomainFree(dk);
	dk = create_dom_disk(rw, "dk", u, "vdc");
	/* the new process (another domain id): its XML read again, and the
	 * block group asked for it; vdb is gone, vdc read with its sizes */
	r->n = 0;
	feed_blk(st, dk, 100000000ULL, "vdc", 8192, 3 * 1073741824ULL, &fast, t + 2 * NS_PER_SEC, r);
	ck_assert_int_eq(asked[0], 2);
	const struct sample *rd = find(r, u, M_DISK_READ_BYTES, NULL);
	ck_assert_ptr_nonnull(rd);
	char vdc[TALLY_DEV_MAX];
	str_copy(vdc, rd->device, sizeof(vdc));
	ck_assert_ptr_nonnull(strstr(vdc, "vdc"));
	ck_assert_uint_eq(rd->v.counter, 8192);
	ck_assert_int_eq(count_meter(r, 0, M_DISK_READ_BYTES), 1);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vdc), 3 * gib);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vdb), -1);  /* gone from the XML */
	/* then vdc by per-disk calls, its sizes held */
	r->n = 0;
	rec_small(&p, dk, VIR_DOMAIN_RUNNING, 200000000ULL, 0);
	int64_t b = time_now_ns() / 1000;
	feed_c(st, &p, &fast, t + 3 * NS_PER_SEC, r);
	int64_t a = time_now_ns() / 1000;
	ck_assert_int_eq(asked[0], 0);
	check_driver_disk(r, 0, vdc, b, a);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vdc), 3 * gib);
	ck_assert_double_eq(gauge_from(r, 0, M_DISK_CAPACITY, vdb), -1);
	loop_release();
	virDomainDestroy(dk);
	virDomainFree(dk);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

START_TEST(test_slow_every_default)
{
	/* slow_every's default is the cycles in two minutes, at least one,
	 * at most the key's ceiling (docs/config.md): worked out by hand */
	ck_assert_uint_eq(lv_slow_every_default(10 * NS_PER_SEC), 12);     /* the default interval */
	ck_assert_uint_eq(lv_slow_every_default(NS_PER_SEC), 120);
	ck_assert_uint_eq(lv_slow_every_default(7 * NS_PER_SEC), 17);      /* 119 s, never past 2 min */
	ck_assert_uint_eq(lv_slow_every_default(999 * NS_PER_SEC / 1000), 120);
	ck_assert_uint_eq(lv_slow_every_default(120 * NS_PER_SEC - 1), 1);
	ck_assert_uint_eq(lv_slow_every_default(120 * NS_PER_SEC), 1);     /* every cycle from here */
	ck_assert_uint_eq(lv_slow_every_default(3600 * NS_PER_SEC), 1);
	ck_assert_uint_eq(lv_slow_every_default(NS_PER_SEC / 1000), 100000); /* 120000 cycles: the ceiling */
	ck_assert_uint_eq(lv_slow_every_default(0), 1);
	ck_assert_uint_eq(lv_slow_every_default(-NS_PER_SEC), 1);
}
END_TEST

START_TEST(test_capacity_between_slow_reads)
{
	/* A live resize (virsh blockresize) has no event in libvirt 9.0 and
	 * QEMU 7.2: the capacity is seen at the next slow cycle, and the
	 * billed integral is off by the change times the time it took to be
	 * seen, at most slow_every intervals (docs/libvirt.md). Reads every
	 * second, slow ones (the block group) at 0, 3 and 6 s; the disk grows
	 * from 1 GiB to 3 GiB at 1.2 s. Billed, through the aggregator to the
	 * ledger (read with the sqlite3 CLI): 3 s x 1 GiB + 3 s x 3 GiB =
	 * 12 GiB s = 12884901888 byte-seconds. The truth is 1.2 x 1 + 4.8 x 3
	 * = 15.6 GiB s: 3.6 GiB s under (2 GiB for 1.8 s), within the bound
	 * of 2 GiB x 3 intervals = 6 GiB s. */
	const char *uri = "test:///default", *u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	char q[512], out[256];
	struct ledger_rig g;
	rig_open(&g, "lvcap");
	void *st = open_collector(uri);
	virConnectPtr rw = virConnectOpen(uri);
	virDomainPtr dom = virDomainLookupByName(rw, "test");
	ck_assert_ptr_nonnull(dom);
	unsigned char asked[1];
	struct lv_test_cycle slow = { .block_main = 1, .asked = asked };
	struct lv_test_cycle fast = { .disk_calls = 1, .asked = asked };
	/* whole seconds, an hour's middle: no hour boundary splits the rows */
	int64_t t0 = (time_now_ns() / NS_PER_SEC / 3600 * 3600 - 1800) * NS_PER_SEC;
	for (int k = 0; k <= 6; k++) {
		struct prec p;
		rec_small(&p, dom, VIR_DOMAIN_RUNNING, 5000000000ULL + (unsigned long long)k * 1000000, 1000);
		if (k % 3 == 0)
			rec_blk(&p, dom, "vda", 4096, (k ? 3 : 1) * 1073741824ULL);
		cycle_records(st, &p, k % 3 ? &fast : &slow, &g, t0 + k * NS_PER_SEC);
	}
	snprintf(q, sizeof(q), "SELECT total(u.quantity) FROM usage u JOIN resources r ON r.id = u.resource_id"
		 " JOIN meters m ON m.id = u.meter_id WHERE r.uuid = '%s' AND m.name = 'disk.device.capacity'", u);
	sql(g.path, q, out, sizeof(out));
	ck_assert_str_eq(out, "12884901888.0");
	virDomainFree(dom);
	virConnectClose(rw);
	libvirt_collector.free(st);
	rig_close(&g);
}
END_TEST

START_TEST(test_unreachable_uri)
{
	struct cfg_node *root;
	struct tally_err e = { 0 };
	struct collector_env env = { .agent_id = "t", .interval_ns = NS_PER_SEC };
	void *st = NULL;
	const char *yaml = "uri: 'test:///nonexistent/node.xml'\n";
	ck_assert_int_eq(cfg_load_string("lv.yaml", yaml, strlen(yaml), &root, &e), 0);
	ck_assert_int_eq(libvirt_collector.configure(root, &env, &st, &e), 0);
	cfg_free(root);
	/* an unreachable libvirt does not stop tallyd from starting: init
	 * succeeds, every read tries again and fails with the reason */
	ck_assert_int_eq(libvirt_collector.init(st, 0, &e), 0);
	struct sink none = { 0 };
	for (int i = 0; i < 2; i++) {
		e.msg[0] = '\0';
		ck_assert_int_lt(libvirt_collector.read(st, (1790812800LL + i) * NS_PER_SEC, &none, &e), 0);
		ck_assert_ptr_nonnull(strstr(e.msg, "test:///nonexistent/node.xml: cannot connect"));
	}
	libvirt_collector.free(st);
}
END_TEST

/* ---- the list path follows domain ids ---- */

static virDomainPtr create_dom(virConnectPtr rw, const char *name, const char *uuid, int mem_kib)
{
	char xml[640];
	snprintf(xml, sizeof(xml), "<domain type='test'><name>%s</name><uuid>%s</uuid>"
		 "<memory unit='KiB'>%d</memory><currentMemory unit='KiB'>%d</currentMemory>"
		 "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>", name, uuid, mem_kib,
		 mem_kib);
	virDomainPtr d = virDomainCreateXML(rw, xml, 0);
	ck_assert_ptr_nonnull(d);
	return d;
}

/* The domains read this cycle (readings that are not final ones), each
 * with the memory its XML gives it: a reading under the wrong uuid would
 * carry another domain's memory. want: uuid and KiB, NULL-terminated. */
static void expect_read(const struct rec *r, const char *const want[][2], const char *when)
{
	int n_want = 0;
	for (; want[n_want][0]; n_want++) {
		const struct sample *m = NULL;
		for (int i = 0; i < r->n; i++)
			if (!strcmp(r->s[i].resource, want[n_want][0]) && r->s[i].meter == M_MEMORY &&
			    !(r->s[i].flags & SAMPLE_F_LAST))
				m = &r->s[i];
		ck_assert_msg(m != NULL, "%s: %s not read", when, want[n_want][0]);
		ck_assert_msg(m->v.gauge == atof(want[n_want][1]) * 1024.0, "%s: %s memory %.0f, want %s KiB",
			      when, want[n_want][0], m->v.gauge, want[n_want][1]);
	}
	int n_read = 0;
	for (int i = 0; i < r->n; i++)
		if (r->s[i].meter == M_CPU && !(r->s[i].flags & SAMPLE_F_LAST))
			n_read++;
	ck_assert_msg(n_read == n_want, "%s: %d domains read, want %d", when, n_read, n_want);
}

/* The test driver answers the bulk call without cpu/block/net, so from the
 * second read on the collector lists active domain ids and keeps each
 * domain's reference across cycles. Domains destroyed, started again
 * (a new id, the same uuid) and started new must each be read under their
 * own uuid, and a destroyed one not at all. */
START_TEST(test_list_path_follows_ids)
{
	const char *uri = "test:///default", *t = "6695eb01-f6a4-8304-79aa-97f2502e193f";
	const char *ua = "0b4d3c2a-0000-4000-8000-00000000000a", *ub = "0b4d3c2a-0000-4000-8000-00000000000b",
		   *uc = "0b4d3c2a-0000-4000-8000-00000000000c";
	struct rec *r = calloc(1, sizeof(*r));
	struct sink sk = { r, rec_sample, rec_meta, rec_event };
	struct tally_err e = { 0 };
	virConnectPtr rw = virConnectOpen(uri);
	ck_assert_ptr_nonnull(rw);
	virDomainPtr a = create_dom(rw, "list-a", ua, 102400);
	virDomainPtr b = create_dom(rw, "list-b", ub, 204800);
	void *st = open_collector(uri);
	/* the default domain "test" uses 2 GiB (virsh -c test:///default dominfo test) */
	const char *const w1[][2] = { { t, "2097152" }, { ua, "102400" }, { ub, "204800" }, { NULL, NULL } };
	for (int k = 0; k < 3; k++) { /* the bulk call, then the list path twice */
		r->n = r->nev = 0;
		ck_assert_int_eq(libvirt_collector.read(st, time_now_ns(), &sk, &e), 0);
		expect_read(r, w1, k ? "listed" : "bulk");
	}
	/* a goes away and comes back as a new process; c is new */
	ck_assert_int_eq(virDomainDestroy(a), 0);
	virDomainFree(a);
	virDomainPtr c = create_dom(rw, "list-c", uc, 307200);
	a = create_dom(rw, "list-a", ua, 102400);
	const char *const w2[][2] = { { t, "2097152" }, { ua, "102400" }, { ub, "204800" }, { uc, "307200" },
				      { NULL, NULL } };
	for (int k = 0; k < 2; k++) {
		r->n = r->nev = 0;
		ck_assert_int_eq(libvirt_collector.read(st, time_now_ns(), &sk, &e), 0);
		expect_read(r, w2, "after a restart and a start");
	}
	/* b stops: not read any more */
	ck_assert_int_eq(virDomainDestroy(b), 0);
	virDomainFree(b);
	const char *const w3[][2] = { { t, "2097152" }, { ua, "102400" }, { uc, "307200" }, { NULL, NULL } };
	for (int k = 0; k < 2; k++) {
		r->n = r->nev = 0;
		ck_assert_int_eq(libvirt_collector.read(st, time_now_ns(), &sk, &e), 0);
		expect_read(r, w3, "after a stop");
	}
	virDomainFree(a);
	virDomainFree(c);
	virConnectClose(rw);
	libvirt_collector.free(st);
	free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("libvirt");
	TCase *tc = tcase_create("libvirt");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_parse_nova);
	tcase_add_test(tc, test_parse_nova_1_1);
	tcase_add_test(tc, test_parse_plain);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_mapping_file);
	tcase_add_test(tc, test_default_driver_vs_virsh);
	tcase_add_test(tc, test_fleet_of_100_vs_virsh);
	tcase_add_test(tc, test_lifecycle_events);
	tcase_add_test(tc, test_event_reasons);
	tcase_add_test(tc, test_partial_bulk_answer);
	tcase_add_test(tc, test_record_shapes);
	tcase_add_test(tc, test_cpu_from_cgroup);
	tcase_add_test(tc, test_pause_at_event_time);
	tcase_add_test(tc, test_list_path_follows_ids);
	tcase_add_test(tc, test_metadata_change_reaches_ledger);
	tcase_add_test(tc, test_destroy_through_ledger);
	tcase_add_test(tc, test_unreachable_uri);
	tcase_add_test(tc, test_disk_calls);
	tcase_add_test(tc, test_disk_call_stalls);
	tcase_add_test(tc, test_disk_calls_rpc);
	tcase_add_test(tc, test_bulk_rpc);
	tcase_add_test(tc, test_info_calls_rpc);
	tcase_add_test(tc, test_disk_call_errors);
	tcase_add_test(tc, test_slow_every_default);
	tcase_add_test(tc, test_capacity_between_slow_reads);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
