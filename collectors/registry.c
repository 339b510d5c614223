/*
 * registry.c: the table of collectors built into this tally.
 */
#include "collector.h"

#include <string.h>

extern const struct collector_ops sim_collector;
extern const struct collector_ops libvirt_collector;
extern const struct collector_ops snmp_collector;
extern const struct collector_ops cgroup_collector;
extern const struct collector_ops pcap_collector;

const struct collector_ops *const collector_all[] = {
	&sim_collector,
	&libvirt_collector,
	&snmp_collector,
	&cgroup_collector,
	&pcap_collector,
	NULL,
};

const struct collector_ops *collector_find(const char *name)
{
	for (int i = 0; collector_all[i]; i++)
		if (!strcmp(collector_all[i]->name, name))
			return collector_all[i];
	return NULL;
}
