/*
 * fuzz_domxml: libFuzzer target for the libvirt collector's domain XML
 * parser (collectors/libvirt_xml.c). The bytes are a domain description as
 * virDomainGetXMLDesc would give it (a tenant may define the domain, so it
 * is outside input): it parses or is refused with a message, every string
 * in the result is terminated within its field, and the device counts
 * stay within LV_MAX_DEVS. The buffer is copied to one of exactly its
 * length, so ASan sees any read past it.
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "err.h"
#include "libvirt_xml.h"

#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct lv_domain_info info;
	struct tally_err e = { 0 };

	if (!init) {
		xmlInitParser();
		init = 1;
	}
	char *b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	if (lv_parse_domain_xml(b, size, &info, &e)) {
		if (!e.msg[0])
			abort();   /* a refusal always says why */
		free(b);
		return 0;
	}
	if (info.n_disks < 0 || info.n_disks > LV_MAX_DEVS || info.n_nics < 0 || info.n_nics > LV_MAX_DEVS ||
	    !TERMINATED(info.uuid) || !TERMINATED(info.name) || !TERMINATED(info.project) ||
	    !TERMINATED(info.user) || !TERMINATED(info.flavor) || !TERMINATED(info.nova_name))
		abort();
	for (int i = 0; i < info.n_disks; i++)
		if (!TERMINATED(info.disks[i].target) || !TERMINATED(info.disks[i].label))
			abort();
	for (int i = 0; i < info.n_nics; i++)
		if (!TERMINATED(info.nics[i].mac) || !TERMINATED(info.nics[i].target))
			abort();
	free(b);
	return 0;
}
