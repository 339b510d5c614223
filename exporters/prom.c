/*
 * prom.c: Prometheus text 0.0.4 and OpenMetrics 1.0 exposition of a live
 * snapshot (see prom.h).
 *
 * A scrape of 1000 VMs is ~20 000 series, so the per-series path avoids
 * printf: each resource's label set is escaped once into a scratch buffer,
 * and counters print as integers (cpu as an exact decimal of seconds from
 * its nanoseconds), so the value a scraper parses is the closest double to
 * the exact usage.
 */
#include "prom.h"
#include "procself.h"
#include "version.h"
#include "meter.h"
#include "str.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct family {
	const char *name;       /* without _total */
	const char *help;
	bool counter;
	bool device;            /* has a device label */
	bool ns_to_s;           /* value in ns, exposed in seconds */
};

static const struct family fam[METER_COUNT] = {
	[M_CPU] = { "tally_cpu_seconds", "CPU time used by the VM since tallyd started.", true, false, true },
	[M_VCPUS] = { "tally_vcpus", "vCPUs allocated to the VM.", false, false, false },
	[M_MEMORY] = { "tally_memory_bytes", "Memory allocated to the VM.", false, false, false },
	[M_MEMORY_USAGE] = { "tally_memory_usage_bytes", "Memory used by the guest.", false, false, false },
	[M_MEMORY_RESIDENT] = { "tally_memory_resident_bytes", "Memory of the VM resident on the host.", false, false, false },
	[M_DISK_READ_BYTES] = { "tally_disk_read_bytes", "Bytes read from the disk since tallyd started.", true, true, false },
	[M_DISK_WRITE_BYTES] = { "tally_disk_write_bytes", "Bytes written to the disk since tallyd started.", true, true, false },
	[M_DISK_READ_REQUESTS] = { "tally_disk_read_requests", "Read requests to the disk since tallyd started.", true, true, false },
	[M_DISK_WRITE_REQUESTS] = { "tally_disk_write_requests", "Write requests to the disk since tallyd started.", true, true, false },
	[M_DISK_CAPACITY] = { "tally_disk_capacity_bytes", "Capacity of the disk.", false, true, false },
	[M_DISK_ALLOCATION] = { "tally_disk_allocation_bytes", "Bytes allocated to the disk on the host.", false, true, false },
	[M_NET_IN_BYTES] = { "tally_network_incoming_bytes", "Bytes received by the NIC since tallyd started.", true, true, false },
	[M_NET_OUT_BYTES] = { "tally_network_outgoing_bytes", "Bytes sent by the NIC since tallyd started.", true, true, false },
	[M_NET_IN_PACKETS] = { "tally_network_incoming_packets", "Packets received by the NIC since tallyd started.", true, true, false },
	[M_NET_OUT_PACKETS] = { "tally_network_outgoing_packets", "Packets sent by the NIC since tallyd started.", true, true, false },
	[M_INSTANCE] = { "tally_instance_running", "1 while the VM runs.", false, false, false },
	/* SNMP ports: incoming/outgoing from the tenant's side (docs/meters.md) */
	[M_IF_IN_BYTES] = { "tally_interface_incoming_bytes", "Bytes the port's tenant received (64-bit counters) since tallyd started.", true, true, false },
	[M_IF_OUT_BYTES] = { "tally_interface_outgoing_bytes", "Bytes the port's tenant sent (64-bit counters) since tallyd started.", true, true, false },
	[M_IF_IN_PACKETS] = { "tally_interface_incoming_packets", "Packets the port's tenant received since tallyd started.", true, true, false },
	[M_IF_OUT_PACKETS] = { "tally_interface_outgoing_packets", "Packets the port's tenant sent since tallyd started.", true, true, false },
	[M_IF_IN_BYTES32] = { "tally_interface_incoming_bytes32", "Bytes the port's tenant received, from 32-bit counters (monitoring only) since tallyd started.", true, true, false },
	[M_IF_OUT_BYTES32] = { "tally_interface_outgoing_bytes32", "Bytes the port's tenant sent, from 32-bit counters (monitoring only) since tallyd started.", true, true, false },
	[M_IF_IN_ERRORS] = { "tally_interface_incoming_errors", "Packets to the port's tenant dropped as errors since tallyd started.", true, true, false },
	[M_IF_OUT_ERRORS] = { "tally_interface_outgoing_errors", "Packets from the port's tenant dropped as errors since tallyd started.", true, true, false },
	[M_IF_IN_DISCARDS] = { "tally_interface_incoming_discards", "Packets to the port's tenant discarded since tallyd started.", true, true, false },
	[M_IF_OUT_DISCARDS] = { "tally_interface_outgoing_discards", "Packets from the port's tenant discarded since tallyd started.", true, true, false },
	[M_IF_UP] = { "tally_interface_up", "1 while the port's operational status is up.", false, true, false },
	[M_IF_SPEED] = { "tally_interface_speed_bytes_per_second", "The port's speed (ifHighSpeed x 10^6 / 8).", false, true, false },
	[M_HW_CPU_UTIL] = { "tally_host_cpu_utilization_ratio", "Busy fraction of a host's processor over the last minute (hrProcessorLoad).", false, true, false },
	[M_HW_MEMORY_TOTAL] = { "tally_host_memory_total_bytes", "A host's memory (hrStorageRam size).", false, true, false },
	[M_HW_MEMORY_USED] = { "tally_host_memory_used_bytes", "A host's memory in use (hrStorageRam used).", false, true, false },
	[M_HW_DISK_TOTAL] = { "tally_host_disk_total_bytes", "Size of a host's file system (hrStorageFixedDisk).", false, true, false },
	[M_HW_DISK_USED] = { "tally_host_disk_used_bytes", "Bytes in use on a host's file system.", false, true, false },
	[M_PSI_CPU_SOME] = { "tally_pressure_cpu_some_seconds", "Time some tasks waited for a CPU (PSI) since tallyd started.", true, false, true },
	[M_PSI_CPU_FULL] = { "tally_pressure_cpu_full_seconds", "Time all tasks waited for a CPU (PSI) since tallyd started.", true, false, true },
	[M_PSI_MEMORY_SOME] = { "tally_pressure_memory_some_seconds", "Time some tasks stalled on memory (PSI) since tallyd started.", true, false, true },
	[M_PSI_MEMORY_FULL] = { "tally_pressure_memory_full_seconds", "Time all tasks stalled on memory (PSI) since tallyd started.", true, false, true },
	[M_PSI_IO_SOME] = { "tally_pressure_io_some_seconds", "Time some tasks stalled on I/O (PSI) since tallyd started.", true, false, true },
	[M_PSI_IO_FULL] = { "tally_pressure_io_full_seconds", "Time all tasks stalled on I/O (PSI) since tallyd started.", true, false, true },
	[M_HOST_CPU] = { "tally_host_cpu_seconds", "Busy CPU time of the host since tallyd started.", true, false, true },
	[M_HOST_CPU_IDLE] = { "tally_host_cpu_idle_seconds", "Idle CPU time of the host (iowait included) since tallyd started.", true, false, true },
	[M_HOST_CPU_STEAL] = { "tally_host_cpu_steal_seconds", "CPU time stolen from the host by its own hypervisor since tallyd started.", true, false, true },
	[M_HOST_MEMORY] = { "tally_host_memory_bytes", "Memory of the host (MemTotal).", false, false, false },
	[M_HOST_MEMORY_AVAILABLE] = { "tally_host_memory_available_bytes", "Memory available for new work on the host (MemAvailable).", false, false, false },
	[M_HOST_DISK_READ_BYTES] = { "tally_host_disk_read_bytes", "Bytes read from the host's disk since tallyd started.", true, true, false },
	[M_HOST_DISK_WRITE_BYTES] = { "tally_host_disk_write_bytes", "Bytes written to the host's disk since tallyd started.", true, true, false },
	[M_HOST_DISK_READ_REQUESTS] = { "tally_host_disk_read_requests", "Reads completed by the host's disk since tallyd started.", true, true, false },
	[M_HOST_DISK_WRITE_REQUESTS] = { "tally_host_disk_write_requests", "Writes completed by the host's disk since tallyd started.", true, true, false },
	[M_HOST_NET_IN_BYTES] = { "tally_host_network_incoming_bytes", "Bytes received by the host's interface since tallyd started.", true, true, false },
	[M_HOST_NET_OUT_BYTES] = { "tally_host_network_outgoing_bytes", "Bytes sent by the host's interface since tallyd started.", true, true, false },
	[M_HOST_NET_IN_PACKETS] = { "tally_host_network_incoming_packets", "Packets received by the host's interface since tallyd started.", true, true, false },
	[M_HOST_NET_OUT_PACKETS] = { "tally_host_network_outgoing_packets", "Packets sent by the host's interface since tallyd started.", true, true, false },
#define NETC(cls, k) \
	[M_NETC_FIRST + 4 * (k) + 0] = { "tally_network_" #cls "_incoming_bytes", \
		"Bytes of class " #cls " the NIC received since tallyd started.", true, true, false }, \
	[M_NETC_FIRST + 4 * (k) + 1] = { "tally_network_" #cls "_outgoing_bytes", \
		"Bytes of class " #cls " the NIC sent since tallyd started.", true, true, false }, \
	[M_NETC_FIRST + 4 * (k) + 2] = { "tally_network_" #cls "_incoming_packets", \
		"Packets of class " #cls " the NIC received since tallyd started.", true, true, false }, \
	[M_NETC_FIRST + 4 * (k) + 3] = { "tally_network_" #cls "_outgoing_packets", \
		"Packets of class " #cls " the NIC sent since tallyd started.", true, true, false }
	NETC(internet, 0),
	NETC(internal, 1),
	NETC(peering, 2),
	NETC(nonip, 3),
	NETC(malformed, 4),
#undef NETC
	[M_PCAP_RECEIVED] = { "tally_pcap_received_packets", "Packets the capture received since tallyd started.", true, true, false },
	[M_PCAP_DROPPED] = { "tally_pcap_dropped_packets", "Packets the kernel dropped from the capture's buffer (it was full) since tallyd started.", true, true, false },
	[M_PCAP_IFDROPPED] = { "tally_pcap_ifdropped_packets", "Packets the interface dropped since tallyd started.", true, true, false },
	[M_PCAP_UNATTRIBUTED] = { "tally_pcap_unattributed_packets", "Captured packets of no NIC in the mapping since tallyd started.", true, true, false },
};

const char *prom_family(int meter, bool *counter)
{
	if (meter < 0 || meter >= METER_COUNT)
		return NULL;
	if (counter)
		*counter = fam[meter].counter;
	return fam[meter].name;
}

enum prom_format prom_negotiate(const char *accept)
{
	/* Prometheus sends "application/openmetrics-text;version=1.0.0,...;q=0.5,
	 * text/plain;version=0.0.4;q=0.4, any;q=0.1" and means it: honour the
	 * media type when it is offered at all (a q of 0 refuses it). */
	if (!accept)
		return PROM_TEXT;
	const char *p = strcasestr(accept, "application/openmetrics-text");
	if (!p)
		return PROM_TEXT;
	const char *end = strchr(p, ',');
	const char *q = strstr(p, "q=");
	if (q && (!end || q < end) && strtod(q + 2, NULL) <= 0)
		return PROM_TEXT;
	return PROM_OPENMETRICS;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), 0 when there is none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;   /* the second byte's range */
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* A label value: \\, \" and \n escaped, and valid UTF-8 whatever the
 * input: Prometheus refuses the whole scrape over one bad byte, and a name
 * cut to its field's size (str_copy) can end in half a character. Each byte
 * that starts no valid sequence becomes U+FFFD. */
static void put_escaped(struct sbuf *b, const char *s)
{
	const char *run = s;
	while (*s) {
		unsigned char c = (unsigned char)*s;
		const char *rep = NULL;
		size_t skip = 1;
		if (c == '\\')
			rep = "\\\\";
		else if (c == '"')
			rep = "\\\"";
		else if (c == '\n')
			rep = "\\n";
		else if (c >= 0x80 && !(skip = utf8_len((const unsigned char *)s))) {
			rep = "\xef\xbf\xbd";
			skip = 1;
		}
		if (!rep) {
			s += skip;
			continue;
		}
		sbuf_add(b, run, (size_t)(s - run));
		sbuf_puts(b, rep);
		s += skip;
		run = s;
	}
	sbuf_add(b, run, (size_t)(s - run));
}

static void put_double(struct sbuf *b, double v)
{
	char t[40];
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		if (v < 0) {
			sbuf_putc(b, '-');
			v = -v;
		}
		sbuf_u64(b, (uint64_t)v);
		return;
	}
	/* the shortest of 15 or 17 digits that reads back as v */
	int n = snprintf(t, sizeof(t), "%.15g", v);
	if (strtod(t, NULL) != v)
		n = snprintf(t, sizeof(t), "%.17g", v);
	sbuf_add(b, t, (size_t)n);
}

/* ns as exact decimal seconds: 1500000000 -> 1.5 */
static void put_seconds(struct sbuf *b, uint64_t ns)
{
	sbuf_u64(b, ns / 1000000000u);
	uint64_t frac = ns % 1000000000u;
	if (!frac)
		return;
	char t[10];
	int n = 9;
	for (int i = 8; i >= 0; i--) {
		t[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	while (n > 1 && t[n - 1] == '0')
		n--;
	sbuf_putc(b, '.');
	sbuf_add(b, t, (size_t)n);
}

static void header(struct sbuf *b, enum prom_format fmt, const char *name, const char *type,
		   const char *help)
{
	bool counter = !strcmp(type, "counter");
	sbuf_puts(b, "# HELP ");
	sbuf_puts(b, name);
	if (counter && fmt == PROM_TEXT)
		sbuf_puts(b, "_total");
	sbuf_putc(b, ' ');
	sbuf_puts(b, help);
	sbuf_puts(b, "\n# TYPE ");
	sbuf_puts(b, name);
	if (counter && fmt == PROM_TEXT)
		sbuf_puts(b, "_total");
	sbuf_putc(b, ' ');
	sbuf_puts(b, type);
	sbuf_putc(b, '\n');
}

/* A self-metric without labels. */
static void self_u64(struct sbuf *b, enum prom_format fmt, const char *name, const char *type,
		     const char *help, uint64_t v)
{
	header(b, fmt, name, type, help);
	sbuf_puts(b, name);
	if (!strcmp(type, "counter"))
		sbuf_puts(b, "_total");
	sbuf_putc(b, ' ');
	sbuf_u64(b, v);
	sbuf_putc(b, '\n');
}

/* What only a process with the ledger has (not an agent). */
static void ledger_metrics(const struct live_state *st, enum prom_format fmt, struct sbuf *b)
{
	self_u64(b, fmt, "tally_samples_ingested", "counter",
		 "Samples applied to the usage series since tallyd started.", st->stats.samples);
	header(b, fmt, "tally_source_checks", "counter",
	       "Readings of a second source (the cgroup collector beside libvirt): intervals compared with"
	       " the billed counter, and readings with no billed counter to compare.");
	sbuf_puts(b, "tally_source_checks_total{result=\"compared\"} ");
	sbuf_u64(b, st->stats.checks_compared);
	sbuf_puts(b, "\ntally_source_checks_total{result=\"unmatched\"} ");
	sbuf_u64(b, st->stats.checks_unmatched);
	sbuf_putc(b, '\n');
	self_u64(b, fmt, "tally_source_resets", "counter",
		 "Source counters that went down (counted as a new life, never as negative usage).",
		 st->stats.resets);
	self_u64(b, fmt, "tally_rrd_rows_dropped", "counter",
		 "RRD rows dropped because the RRD writer was behind (graphs only; the ledger is unaffected).",
		 st->stats.rrd_dropped);
	self_u64(b, fmt, "tally_rrd_errors", "counter", "RRD file creations or updates that failed.",
		 st->stats.rrd_errors);
	self_u64(b, fmt, "tally_rrd_backlog_rows", "gauge",
		 "RRD rows handed to the RRD writer and not yet written, at the last commit.",
		 st->stats.rrd_backlog);
	self_u64(b, fmt, "tally_ingest_queue_samples", "gauge",
		 "Samples ingested and not yet committed to the ledger.", st->pending_samples);
	self_u64(b, fmt, "tally_stale_resources", "gauge",
		 "Resources seen since tallyd started without a reading within stale_after.",
		 st->stale_resources);
	self_u64(b, fmt, "tally_ledger_write_failing", "gauge",
		 "1 while the ledger's commits fail (a full disk): readings are kept in memory and the commit"
		 " retried; else 0.", st->stats.commit_failures_in_row > 0);
	self_u64(b, fmt, "tally_ledger_commit_failures", "counter",
		 "Ledger commits that failed since tallyd started (each rolled back, its data kept and retried).",
		 st->stats.commit_failures);
	self_u64(b, fmt, "tally_ledger_resyncs", "counter",
		 "Commits that found another aggregator had committed an agent's batches first: what this one"
		 " had computed from that agent's older readings was dropped and its state reloaded from the ledger.",
		 st->stats.resyncs);
	header(b, fmt, "tally_ledger_last_commit_timestamp_seconds", "gauge",
	       "Wall-clock time of the last successful ledger commit (0: none yet).");
	sbuf_puts(b, "tally_ledger_last_commit_timestamp_seconds ");
	put_seconds(b, (uint64_t)(st->last_commit_ns > 0 ? st->last_commit_ns : 0));
	sbuf_putc(b, '\n');
}

void prom_render_listener(const struct prom_listener *l, enum prom_format fmt, struct sbuf *b)
{
	static const char eof[] = "# EOF\n";
	bool om = fmt == PROM_OPENMETRICS && b->len >= sizeof(eof) - 1 &&
		  !memcmp(b->p + b->len - (sizeof(eof) - 1), eof, sizeof(eof) - 1);
	if (om)
		b->len -= sizeof(eof) - 1;
	static const char *const results[] = { "handed_over", "table_full", "too_large", "timed_out", "evicted",
					       "client_closed", "body_timed_out" };
	const uint64_t v[] = { l->handed_over, l->table_full, l->too_large, l->timed_out, l->evicted,
			       l->client_closed, l->swept };
	header(b, fmt, "tally_http_connections", "counter",
	       "Connections the HTTP listener accepted, by what became of them: handed to a handler with their"
	       " request head whole, that handler's tables full, refused as too large, head not whole in time"
	       " (a slow client), closed for a newer one, closed by the client; and body_timed_out: a request"
	       " body not whole in time, shut down.");
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		sbuf_puts(b, "tally_http_connections_total{result=\"");
		sbuf_puts(b, results[i]);
		sbuf_puts(b, "\"} ");
		sbuf_u64(b, v[i]);
		sbuf_putc(b, '\n');
	}
	header(b, fmt, "tally_http_accept_failures", "counter",
	       "accept() failures of the HTTP listener other than EAGAIN (EMFILE: out of file descriptors).");
	sbuf_puts(b, "tally_http_accept_failures_total ");
	sbuf_u64(b, l->accept_failures);
	sbuf_putc(b, '\n');
	static const char *const paths[] = { "/api/v1/ingest", "/api/v1/events" };
	static const unsigned statuses[] = PROM_REFUSAL_STATUSES;
	if (l->has_post[0] || l->has_post[1])
		header(b, fmt, "tally_http_post_refused", "counter",
		       "POST requests the HTTP listener refused before the aggregator saw them, by route and status"
		       " (401 no or a wrong token, 403 a token of another role, 411/413/415 the body, 429 the"
		       " request limit, 503 out of memory).");
	for (int r = 0; r < 2; r++) {
		if (!l->has_post[r])
			continue;
		for (int i = 0; i < PROM_N_REFUSAL; i++) {
			char line[96];
			snprintf(line, sizeof(line), "tally_http_post_refused_total{path=\"%s\",status=\"%u\"} ", paths[r],
				 statuses[i]);
			sbuf_puts(b, line);
			sbuf_u64(b, l->refused[r][i]);
			sbuf_putc(b, '\n');
		}
	}
	if (om)
		sbuf_puts(b, eof);
}

static void self_metrics(const struct live_state *st, enum prom_format fmt, struct sbuf *b)
{
	header(b, fmt, "tally_collector_duration_seconds", "gauge",
	       "Wall time of the collector's last read.");
	for (size_t i = 0; i < st->n_coll; i++) {
		sbuf_puts(b, "tally_collector_duration_seconds{collector=\"");
		put_escaped(b, st->coll[i].name);
		sbuf_puts(b, "\"} ");
		put_double(b, st->coll[i].read_s);
		sbuf_putc(b, '\n');
	}
	header(b, fmt, "tally_collector_errors", "counter", "Collector reads that failed.");
	for (size_t i = 0; i < st->n_coll; i++) {
		sbuf_puts(b, "tally_collector_errors_total{collector=\"");
		put_escaped(b, st->coll[i].name);
		sbuf_puts(b, "\"} ");
		sbuf_u64(b, st->coll[i].errors);
		sbuf_putc(b, '\n');
	}
	/* the collectors' own (collector.h): one family's series together */
	for (size_t i = 0; i < st->n_cmetrics; i++) {
		const struct collector_metric *m = &st->cmetrics[i];
		if (!i || strcmp(m->name, st->cmetrics[i - 1].name))
			header(b, fmt, m->name, m->counter ? "counter" : "gauge", m->help);
		sbuf_puts(b, m->name);
		if (m->counter)
			sbuf_puts(b, "_total");
		if (m->labels[0]) {
			/* "k=v,k=v" -> {k="v",k="v"} */
			char lab[sizeof(m->labels)];
			str_copy(lab, m->labels, sizeof(lab));
			sbuf_putc(b, '{');
			for (char *save = NULL, *kv = strtok_r(lab, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
				char *eq = strchr(kv, '=');
				if (!eq)
					continue;
				*eq = '\0';
				if (kv != lab)
					sbuf_putc(b, ',');
				sbuf_puts(b, kv);
				sbuf_puts(b, "=\"");
				put_escaped(b, eq + 1);
				sbuf_putc(b, '"');
			}
			sbuf_putc(b, '}');
		}
		sbuf_putc(b, ' ');
		put_double(b, m->value);
		sbuf_putc(b, '\n');
	}
	self_u64(b, fmt, "tally_collection_cycles", "counter", "Collection cycles run since tallyd started.",
		 st->cycles);
	self_u64(b, fmt, "tally_collection_overruns", "counter",
		 "Cycles that took longer than the interval.", st->overruns);
	self_u64(b, fmt, "tally_clock_steps", "counter",
		 "Steps of the wall clock seen (docs/clock.md).", st->clock_steps);
	header(b, fmt, "tally_clock_skipped_seconds", "counter",
	       "Data time skipped by following forward steps of the wall clock.");
	sbuf_puts(b, "tally_clock_skipped_seconds_total ");
	put_double(b, (double)st->clock_skipped_ns / 1e9);
	sbuf_putc(b, '\n');
	header(b, fmt, "tally_clock_ahead_seconds", "gauge",
	       "How far data time runs ahead of the wall clock after it stepped back (0: on it).");
	sbuf_puts(b, "tally_clock_ahead_seconds ");
	put_double(b, (double)st->clock_ahead_ns / 1e9);
	sbuf_putc(b, '\n');
	if (!st->no_ledger)
		ledger_metrics(st, fmt, b);
	header(b, fmt, "tally_samples_dropped", "counter", "Samples not applied, by reason.");
	static const char *const reasons[] = { "not_newer", "invalid", "no_memory" };
	uint64_t dropped[] = { st->stats.dropped_old, st->stats.invalid, st->batcher_dropped };
	for (int i = 0; i < 3; i++) {
		sbuf_puts(b, "tally_samples_dropped_total{reason=\"");
		sbuf_puts(b, reasons[i]);
		sbuf_puts(b, "\"} ");
		sbuf_u64(b, dropped[i]);
		sbuf_putc(b, '\n');
	}
	if (st->alerting) {
		header(b, fmt, "tally_alerts", "gauge", "Alerts by state (pending: waiting out their 'for').");
		sbuf_puts(b, "tally_alerts{state=\"pending\"} ");
		sbuf_u64(b, st->alerts_pending);
		sbuf_puts(b, "\ntally_alerts{state=\"firing\"} ");
		sbuf_u64(b, st->alerts_firing);
		sbuf_putc(b, '\n');
		header(b, fmt, "tally_alertmanager_posts", "counter", "POSTs of alerts to Alertmanager, by result.");
		sbuf_puts(b, "tally_alertmanager_posts_total{result=\"ok\"} ");
		sbuf_u64(b, st->send.posts);
		sbuf_puts(b, "\ntally_alertmanager_posts_total{result=\"failed\"} ");
		sbuf_u64(b, st->send.failures);
		sbuf_putc(b, '\n');
		header(b, fmt, "tally_alertmanager_last_success_timestamp_seconds", "gauge",
		       "Wall-clock time of the last successful POST to Alertmanager (0: none yet).");
		sbuf_puts(b, "tally_alertmanager_last_success_timestamp_seconds ");
		put_seconds(b, (uint64_t)(st->send.last_success_ns > 0 ? st->send.last_success_ns : 0));
		sbuf_putc(b, '\n');
	}
	header(b, fmt, "tally_build_info", "gauge", "The version and commit of this tallyd; always 1.");
	sbuf_puts(b, "tally_build_info{version=\"");
	put_escaped(b, tally_version);
	sbuf_puts(b, "\",revision=\"");
	put_escaped(b, tally_revision);
	sbuf_puts(b, "\"} 1\n");
	struct procself ps;
	if (procself_read(&ps) == 0) {
		header(b, fmt, "process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds.");
		sbuf_puts(b, "process_cpu_seconds_total ");
		put_double(b, ps.cpu_seconds);
		sbuf_putc(b, '\n');
		self_u64(b, fmt, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
			 ps.resident_bytes);
		self_u64(b, fmt, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
			 ps.virtual_bytes);
		header(b, fmt, "process_start_time_seconds", "gauge",
		       "Start time of the process since unix epoch in seconds.");
		sbuf_puts(b, "process_start_time_seconds ");
		put_double(b, ps.start_time_seconds);
		sbuf_putc(b, '\n');
		self_u64(b, fmt, "process_open_fds", "gauge", "Number of open file descriptors.", ps.open_fds);
		self_u64(b, fmt, "process_max_fds", "gauge", "Maximum number of open file descriptors.", ps.max_fds);
	}
	header(b, fmt, "tally_data_timestamp_seconds", "gauge",
	       "The collection cycle the exposed values close (virtual time in fast-forward).");
	sbuf_puts(b, "tally_data_timestamp_seconds ");
	put_seconds(b, (uint64_t)(st->tick_ns > 0 ? st->tick_ns : 0));
	sbuf_putc(b, '\n');
}

int prom_render(const struct live_state *st, enum prom_format fmt, const char *tenant,
		struct sbuf *out)
{
	/* each resource's escaped uuid, name, tenant and flavor labels, once */
	struct sbuf lab = { 0 };
	size_t *off = calloc(st->n_resources + 1, sizeof(*off));
	int rc = 0;
	if (!off || !sbuf_reserve(out, 0)) {   /* an empty answer is still a string */
		free(off);
		return -ENOMEM;
	}
	for (size_t r = 0; r < st->n_resources; r++) {
		const struct live_resource *lr = &st->resources[r];
		off[r] = lab.len;
		sbuf_puts(&lab, "uuid=\"");
		put_escaped(&lab, lr->uuid);
		sbuf_puts(&lab, "\",name=\"");
		put_escaped(&lab, lr->name);
		sbuf_puts(&lab, "\",tenant=\"");
		put_escaped(&lab, lr->tenant);
		sbuf_puts(&lab, "\",flavor=\"");
		put_escaped(&lab, lr->flavor);
		sbuf_puts(&lab, "\",host=\"");
	}
	off[st->n_resources] = lab.len;
	if (lab.oom) {
		rc = -ENOMEM;
		goto out;
	}
	for (int m = 0; m < METER_COUNT; m++) {
		const struct family *f = &fam[m];
		bool any = false;
		for (uint32_t k = st->meter_start[m]; k < st->meter_start[m + 1]; k++) {
			const struct live_series *s = &st->series[st->by_meter[k]];
			const struct live_resource *lr = &st->resources[s->res];
			if (lr->stale || (tenant && strcmp(lr->tenant, tenant)))
				continue;
			/* a series the resource left behind (a host it migrated
			 * away from, an unplugged device) goes stale on its own */
			if (st->stale_after_ns > 0 && s->last_ns < st->tick_ns - st->stale_after_ns)
				continue;
			if (!any) {
				header(out, fmt, f->name, f->counter ? "counter" : "gauge", f->help);
				any = true;
			}
			sbuf_puts(out, f->name);
			if (f->counter)
				sbuf_add(out, "_total{", 7);
			else
				sbuf_putc(out, '{');
			sbuf_add(out, lab.p + off[s->res], off[s->res + 1] - off[s->res]);
			put_escaped(out, s->host);
			if (f->device && s->device[0]) {
				sbuf_add(out, "\",device=\"", 10);
				put_escaped(out, s->device);
			}
			sbuf_add(out, "\"} ", 3);
			if (!f->counter)
				put_double(out, s->gauge);
			else if (f->ns_to_s)
				put_seconds(out, s->total);
			else
				sbuf_u64(out, s->total);
			sbuf_putc(out, '\n');
		}
	}
	/* a second source's check of the billed counters (docs/meters.md,
	 * "Two sources"): one gauge per checked series */
	bool any = false;
	for (size_t i = 0; i < st->n_series; i++) {
		const struct live_series *s = &st->series[i];
		const struct live_resource *lr = &st->resources[s->res];
		if (s->divergence < 0 || lr->stale || (tenant && strcmp(lr->tenant, tenant)) ||
		    (st->stale_after_ns > 0 && s->last_ns < st->tick_ns - st->stale_after_ns))
			continue;
		if (!any) {
			header(out, fmt, "tally_source_divergence_ratio", "gauge",
			       "How far a second source's reading of a billed counter differs from it over the last"
			       " interval both read: |checked - billed| / the larger (0: the same).");
			any = true;
		}
		sbuf_puts(out, "tally_source_divergence_ratio{");
		sbuf_add(out, lab.p + off[s->res], off[s->res + 1] - off[s->res]);
		put_escaped(out, s->host);
		sbuf_puts(out, "\",meter=\"");
		sbuf_puts(out, meter_table[s->meter].name);
		if (s->device[0]) {
			sbuf_add(out, "\",device=\"", 10);
			put_escaped(out, s->device);
		}
		sbuf_add(out, "\"} ", 3);
		put_double(out, s->divergence);
		sbuf_putc(out, '\n');
	}
	if (!tenant)
		self_metrics(st, fmt, out);
	if (fmt == PROM_OPENMETRICS)
		sbuf_puts(out, "# EOF\n");
	if (out->oom)
		rc = -ENOMEM;
out:
	sbuf_release(&lab);
	free(off);
	return rc;
}
