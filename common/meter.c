/*
 * meter.c: the meter table (see meter.h and docs/meters.md).
 */
#include "meter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB_HOUR (1073741824.0 * 3600.0)

const struct meter_def meter_table[METER_COUNT] = {
	[M_CPU] = { "cpu", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "instance", "cpu", "CPU time" },
	[M_VCPUS] = { "vcpus", SAMPLE_GAUGE, "vCPU", "vCPU-hours", 3600.0, "instance", "vcpus", "vCPUs" },
	[M_MEMORY] = { "memory", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "instance", "memory", "Memory" },
	[M_MEMORY_USAGE] = { "memory.usage", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "instance", "memory_usage", "Memory used by the guest" },
	[M_MEMORY_RESIDENT] = { "memory.resident", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "instance", "memory_resident", "Memory resident on the host" },
	[M_DISK_READ_BYTES] = { "disk.device.read.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "disk", "read_bytes", "Disk reads" },
	[M_DISK_WRITE_BYTES] = { "disk.device.write.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "disk", "write_bytes", "Disk writes" },
	[M_DISK_READ_REQUESTS] = { "disk.device.read.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "disk", "read_requests", "Disk read requests" },
	[M_DISK_WRITE_REQUESTS] = { "disk.device.write.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "disk", "write_requests", "Disk write requests" },
	[M_DISK_CAPACITY] = { "disk.device.capacity", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "disk", "capacity", "Block storage" },
	[M_DISK_ALLOCATION] = { "disk.device.allocation", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "disk", "allocation", "Block storage allocated" },
	[M_NET_IN_BYTES] = { "network.incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "net", "in_bytes", "Inbound traffic" },
	[M_NET_OUT_BYTES] = { "network.outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "net", "out_bytes", "Outbound traffic" },
	[M_NET_IN_PACKETS] = { "network.incoming.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "net", "in_packets", "Inbound packets" },
	[M_NET_OUT_PACKETS] = { "network.outgoing.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "net", "out_packets", "Outbound packets" },
	[M_INSTANCE] = { "instance", SAMPLE_GAUGE, "instance", "instance-hours", 3600.0, "instance", "instance", "Instance running time" },
	[M_IF_IN_BYTES] = { "if.incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "if", "in_bytes", "Port inbound traffic" },
	[M_IF_OUT_BYTES] = { "if.outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "if", "out_bytes", "Port outbound traffic" },
	/* SNMP ports and hosts: docs/meters.md says which OID each comes from
	 * and from whose side (the tenant's) incoming and outgoing are seen */
	[M_IF_IN_PACKETS] = { "if.incoming.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "if", "in_packets", "Port inbound packets" },
	[M_IF_OUT_PACKETS] = { "if.outgoing.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "if", "out_packets", "Port outbound packets" },
	[M_IF_IN_BYTES32] = { "if.incoming.bytes32", SAMPLE_DELTA, "B", "GB", 1e9, "if", "in_bytes32", "Port inbound traffic" },
	[M_IF_OUT_BYTES32] = { "if.outgoing.bytes32", SAMPLE_DELTA, "B", "GB", 1e9, "if", "out_bytes32", "Port outbound traffic" },
	[M_IF_IN_ERRORS] = { "if.incoming.errors", SAMPLE_DELTA, "packet", "packets", 1.0, "if", "in_errors", "Port inbound errors" },
	[M_IF_OUT_ERRORS] = { "if.outgoing.errors", SAMPLE_DELTA, "packet", "packets", 1.0, "if", "out_errors", "Port outbound errors" },
	[M_IF_IN_DISCARDS] = { "if.incoming.discards", SAMPLE_DELTA, "packet", "packets", 1.0, "if", "in_discards", "Port inbound discards" },
	[M_IF_OUT_DISCARDS] = { "if.outgoing.discards", SAMPLE_DELTA, "packet", "packets", 1.0, "if", "out_discards", "Port outbound discards" },
	[M_IF_UP] = { "if.up", SAMPLE_GAUGE, "up", "up-hours", 3600.0, "if", "up", "Port up time" },
	[M_IF_SPEED] = { "if.speed", SAMPLE_GAUGE, "B/s", "GB/s-hours", 3.6e12, "if", "speed", "Port speed" },
	[M_HW_CPU_UTIL] = { "hardware.cpu.util", SAMPLE_GAUGE, "ratio", "CPU-hours", 3600.0, "hwcpu", "util", "Host CPU utilisation" },
	[M_HW_MEMORY_TOTAL] = { "hardware.memory.total", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "hwmem", "total", "Host memory" },
	[M_HW_MEMORY_USED] = { "hardware.memory.used", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "hwmem", "used", "Host memory used" },
	[M_HW_DISK_TOTAL] = { "hardware.disk.size.total", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "hwdisk", "total", "Host disk" },
	[M_HW_DISK_USED] = { "hardware.disk.size.used", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "hwdisk", "used", "Host disk used" },
	[M_PSI_CPU_SOME] = { "pressure.cpu.some", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "cpu_some", "CPU pressure" },
	[M_PSI_CPU_FULL] = { "pressure.cpu.full", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "cpu_full", "CPU pressure (full)" },
	[M_PSI_MEMORY_SOME] = { "pressure.memory.some", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "memory_some", "Memory pressure" },
	[M_PSI_MEMORY_FULL] = { "pressure.memory.full", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "memory_full", "Memory pressure (full)" },
	[M_PSI_IO_SOME] = { "pressure.io.some", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "io_some", "I/O pressure" },
	[M_PSI_IO_FULL] = { "pressure.io.full", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "io_full", "I/O pressure (full)" },
	[M_HOST_CPU] = { "host.cpu", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "host", "cpu", "Host CPU time" },
	[M_HOST_CPU_IDLE] = { "host.cpu.idle", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "host", "cpu_idle", "Host CPU idle" },
	[M_HOST_CPU_STEAL] = { "host.cpu.steal", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "host", "cpu_steal", "Host CPU steal" },
	[M_HOST_MEMORY] = { "host.memory", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "host", "memory", "Host memory" },
	[M_HOST_MEMORY_AVAILABLE] = { "host.memory.available", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "host", "memory_available", "Host memory available" },
	[M_HOST_DISK_READ_BYTES] = { "host.disk.read.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostdisk", "read_bytes", "Host disk reads" },
	[M_HOST_DISK_WRITE_BYTES] = { "host.disk.write.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostdisk", "write_bytes", "Host disk writes" },
	[M_HOST_DISK_READ_REQUESTS] = { "host.disk.read.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "hostdisk", "read_requests", "Host disk read requests" },
	[M_HOST_DISK_WRITE_REQUESTS] = { "host.disk.write.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "hostdisk", "write_requests", "Host disk write requests" },
	[M_HOST_NET_IN_BYTES] = { "host.network.incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostnet", "in_bytes", "Host inbound traffic" },
	[M_HOST_NET_OUT_BYTES] = { "host.network.outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostnet", "out_bytes", "Host outbound traffic" },
	[M_HOST_NET_IN_PACKETS] = { "host.network.incoming.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "hostnet", "in_packets", "Host inbound packets" },
	[M_HOST_NET_OUT_PACKETS] = { "host.network.outgoing.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "hostnet", "out_packets", "Host outbound packets" },
	/* per traffic class k: what the VM's NIC (device = MAC) received from
	 * and sent to addresses of that class (docs/meters.md) */
#define NETC(cls, k) \
	[M_NETC_FIRST + 4 * (k) + 0] = { "network." #cls ".incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, \
					 "net_" #cls, "in_bytes", "Inbound traffic, " #cls }, \
	[M_NETC_FIRST + 4 * (k) + 1] = { "network." #cls ".outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, \
					 "net_" #cls, "out_bytes", "Outbound traffic, " #cls }, \
	[M_NETC_FIRST + 4 * (k) + 2] = { "network." #cls ".incoming.packets", SAMPLE_CUMULATIVE, "packet", \
					 "packets", 1.0, "net_" #cls, "in_packets", "Inbound packets, " #cls }, \
	[M_NETC_FIRST + 4 * (k) + 3] = { "network." #cls ".outgoing.packets", SAMPLE_CUMULATIVE, "packet", \
					 "packets", 1.0, "net_" #cls, "out_packets", "Outbound packets, " #cls }
	NETC(internet, 0),
	NETC(internal, 1),
	NETC(peering, 2),
	NETC(nonip, 3),
	NETC(malformed, 4),
#undef NETC
	/* the capture (device = interface, or the file offline): what libpcap
	 * and the kernel say of it, and frames no NIC of the mapping matched */
	[M_PCAP_RECEIVED] = { "pcap.received.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "pcap", "received", "Captured packets" },
	[M_PCAP_DROPPED] = { "pcap.dropped.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "pcap", "dropped", "Capture drops" },
	[M_PCAP_IFDROPPED] = { "pcap.ifdropped.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "pcap", "ifdropped", "Interface drops" },
	[M_PCAP_UNATTRIBUTED] = { "pcap.unattributed.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "pcap",
				  "unattributed", "Unattributed packets" },
};

int meter_lookup(const char *name)
{
	for (int i = 0; i < METER_COUNT; i++)
		if (!strcmp(meter_table[i].name, name))
			return i;
	return -1;
}

int meter_allocation_gauge(unsigned meter)
{
	return meter == M_VCPUS || meter == M_MEMORY || meter == M_DISK_CAPACITY || meter == M_INSTANCE;
}

/* The custom meters: their definitions and the strings they own. */
static struct meter_def custom[METER_CUSTOM_MAX];
static char *custom_strings[METER_CUSTOM_MAX][4];
static int n_custom;

const struct meter_def *meter_get(int m)
{
	if (m >= 0 && m < METER_COUNT)
		return &meter_table[m];
	if (m >= METER_COUNT && m < METER_COUNT + n_custom)
		return &custom[m - METER_COUNT];
	return NULL;
}

int meter_find(const char *name)
{
	int m = meter_lookup(name);
	for (int i = 0; m < 0 && i < n_custom; i++)
		if (!strcmp(custom[i].name, name))
			m = METER_COUNT + i;
	return m;
}

int meter_count(void)
{
	return METER_COUNT + n_custom;
}

int meter_define(const char *name, enum sample_kind kind, const char *unit, const char *title)
{
	if (meter_find(name) >= 0)
		return -EEXIST;
	if (n_custom == METER_CUSTOM_MAX)
		return -ENOSPC;
	char *n = strdup(name), *u = strdup(unit), *t = strdup(title);
	/* tally usage's human unit: the base unit, or unit-hours for a level */
	size_t hl = strlen(unit) + sizeof("GiB-hours");
	char *h = malloc(hl);
	if (!n || !u || !t || !h) {
		free(n);
		free(u);
		free(t);
		free(h);
		return -ENOMEM;
	}
	/* bytes read as the built-in byte meters' (GiB-hours, GB) */
	bool bytes = !strcmp(unit, "B");
	snprintf(h, hl, "%s%s", bytes ? (kind == SAMPLE_GAUGE ? "GiB" : "GB") : unit, kind == SAMPLE_GAUGE ? "-hours" : "");
	double div = bytes ? (kind == SAMPLE_GAUGE ? GIB_HOUR : 1e9) : kind == SAMPLE_GAUGE ? 3600.0 : 1.0;
	custom[n_custom] = (struct meter_def){ .name = n, .kind = kind, .unit = u, .human_unit = h, .human_div = div,
					       .rrd_group = NULL, .rrd_ds = NULL, .title = t };
	custom_strings[n_custom][0] = n;
	custom_strings[n_custom][1] = u;
	custom_strings[n_custom][2] = t;
	custom_strings[n_custom][3] = h;
	return METER_COUNT + n_custom++;
}

void meter_custom_clear(void)
{
	for (int i = 0; i < n_custom; i++)
		for (int k = 0; k < 4; k++)
			free(custom_strings[i][k]);
	memset(custom, 0, sizeof(custom));
	n_custom = 0;
}
