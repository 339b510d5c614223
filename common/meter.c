/*
 * meter.c: the meter table (see meter.h, DESIGN.md "Meters" and
 * docs/meters.md, which must list every row).
 */
#include "meter.h"

#include <string.h>

#define GIB_HOUR (1073741824.0 * 3600.0)

const struct meter_def meter_table[METER_COUNT] = {
	[M_CPU] = { "cpu", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "instance", "cpu" },
	[M_VCPUS] = { "vcpus", SAMPLE_GAUGE, "vCPU", "vCPU-hours", 3600.0, "instance", "vcpus" },
	[M_MEMORY] = { "memory", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "instance", "memory" },
	[M_MEMORY_USAGE] = { "memory.usage", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "instance", "memory_usage" },
	[M_MEMORY_RESIDENT] = { "memory.resident", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "instance", "memory_resident" },
	[M_DISK_READ_BYTES] = { "disk.device.read.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "disk", "read_bytes" },
	[M_DISK_WRITE_BYTES] = { "disk.device.write.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "disk", "write_bytes" },
	[M_DISK_READ_REQUESTS] = { "disk.device.read.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "disk", "read_requests" },
	[M_DISK_WRITE_REQUESTS] = { "disk.device.write.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "disk", "write_requests" },
	[M_DISK_CAPACITY] = { "disk.device.capacity", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "disk", "capacity" },
	[M_DISK_ALLOCATION] = { "disk.device.allocation", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "disk", "allocation" },
	[M_NET_IN_BYTES] = { "network.incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "net", "in_bytes" },
	[M_NET_OUT_BYTES] = { "network.outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "net", "out_bytes" },
	[M_NET_IN_PACKETS] = { "network.incoming.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "net", "in_packets" },
	[M_NET_OUT_PACKETS] = { "network.outgoing.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "net", "out_packets" },
	[M_INSTANCE] = { "instance", SAMPLE_GAUGE, "instance", "instance-hours", 3600.0, "instance", "instance" },
	[M_IF_IN_BYTES] = { "if.incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "if", "in_bytes" },
	[M_IF_OUT_BYTES] = { "if.outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "if", "out_bytes" },
	[M_PSI_CPU_SOME] = { "pressure.cpu.some", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "cpu_some" },
	[M_PSI_CPU_FULL] = { "pressure.cpu.full", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "cpu_full" },
	[M_PSI_MEMORY_SOME] = { "pressure.memory.some", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "memory_some" },
	[M_PSI_MEMORY_FULL] = { "pressure.memory.full", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "memory_full" },
	[M_PSI_IO_SOME] = { "pressure.io.some", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "io_some" },
	[M_PSI_IO_FULL] = { "pressure.io.full", SAMPLE_CUMULATIVE, "ns", "hours", 3.6e12, "pressure", "io_full" },
	[M_HOST_CPU] = { "host.cpu", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "host", "cpu" },
	[M_HOST_CPU_IDLE] = { "host.cpu.idle", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "host", "cpu_idle" },
	[M_HOST_CPU_STEAL] = { "host.cpu.steal", SAMPLE_CUMULATIVE, "ns", "CPU-hours", 3.6e12, "host", "cpu_steal" },
	[M_HOST_MEMORY] = { "host.memory", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "host", "memory" },
	[M_HOST_MEMORY_AVAILABLE] = { "host.memory.available", SAMPLE_GAUGE, "B", "GiB-hours", GIB_HOUR, "host", "memory_available" },
	[M_HOST_DISK_READ_BYTES] = { "host.disk.read.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostdisk", "read_bytes" },
	[M_HOST_DISK_WRITE_BYTES] = { "host.disk.write.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostdisk", "write_bytes" },
	[M_HOST_DISK_READ_REQUESTS] = { "host.disk.read.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "hostdisk", "read_requests" },
	[M_HOST_DISK_WRITE_REQUESTS] = { "host.disk.write.requests", SAMPLE_CUMULATIVE, "request", "requests", 1.0, "hostdisk", "write_requests" },
	[M_HOST_NET_IN_BYTES] = { "host.network.incoming.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostnet", "in_bytes" },
	[M_HOST_NET_OUT_BYTES] = { "host.network.outgoing.bytes", SAMPLE_CUMULATIVE, "B", "GB", 1e9, "hostnet", "out_bytes" },
	[M_HOST_NET_IN_PACKETS] = { "host.network.incoming.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "hostnet", "in_packets" },
	[M_HOST_NET_OUT_PACKETS] = { "host.network.outgoing.packets", SAMPLE_CUMULATIVE, "packet", "packets", 1.0, "hostnet", "out_packets" },
};

int meter_lookup(const char *name)
{
	for (int i = 0; i < METER_COUNT; i++)
		if (!strcmp(meter_table[i].name, name))
			return i;
	return -1;
}
