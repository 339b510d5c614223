/*
 * libvirt_xml.h: a libvirt domain XML (virDomainGetXMLDesc) into what the
 * libvirt collector needs of it: the disks and NICs that name its series,
 * and Nova's metadata (tenant, user, flavor). A pure function of the text,
 * fuzzed by tests/fuzz/fuzz_domxml.c; the XML comes from libvirtd, whose
 * domains a tenant may define, so it is outside input.
 */
#ifndef TALLY_LIBVIRT_XML_H
#define TALLY_LIBVIRT_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "sample.h"

struct tally_err;

#define LV_MAX_DEVS 32

struct lv_disk {
	char target[32];             /* "vda" */
	char serial[64];             /* "" when none */
	char source[256];            /* file, dev or volume name; "" when none */
	char label[TALLY_DEV_MAX];   /* the device label series use (lv_disk_label) */
};

struct lv_nic {
	char mac[18];                /* "52:54:00:12:34:56", the NIC's identity */
	char target[32];             /* "vnet3", "" when not running */
	char type[16];               /* "bridge", "ethernet", "network", "direct" */
};

struct lv_domain_info {
	char uuid[37];
	char name[128];
	struct lv_disk disks[LV_MAX_DEVS];
	int n_disks;
	struct lv_nic nics[LV_MAX_DEVS];
	int n_nics;
	bool has_nova;               /* Nova's <nova:instance> metadata was there */
	char nova_name[128];
	char project[64];            /* nova:owner/nova:project uuid = the tenant */
	char user[64];
	char flavor[64];
	int skipped_devs;            /* disks or NICs we could not identify */
};

/* Parse a domain XML (virDomainGetXMLDesc) into info. Returns 0, or
 * -EINVAL with a message for XML that is not a domain description. */
int lv_parse_domain_xml(const char *xml, size_t len, struct lv_domain_info *info,
			struct tally_err *e);

#endif
