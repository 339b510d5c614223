/*
 * mapping.h: the tenant mapping file (collectors.libvirt.mapping and
 * collectors.cgroup.mapping, docs/config.md): who a VM belongs to when
 * the hypervisor does not say (no Nova metadata). Parsing and matching are
 * pure functions of the file and the VM's uuid and name, shared by the
 * libvirt and the cgroup collectors and fuzzed by tests/fuzz/fuzz_mapping.c.
 */
#ifndef TALLY_MAPPING_H
#define TALLY_MAPPING_H

#include <stddef.h>

struct tally_err;

/* The tenant mapping file (collectors.libvirt.mapping): for domains without
 * Nova metadata, a list of rules matched in order, first match wins:
 *   - uuid: 6b0f3c2a-0000-4000-8000-000000000001   # exact
 *     tenant: acme
 *   - name: "web-*"                                 # shell pattern on the name
 *     tenant: web-team
 *     flavor: m1.small
 *     labels: {region: eu-west, tier: gold}
 */
struct mapping_rule {
	char uuid[37];               /* "" = match by name */
	char name[128];              /* fnmatch pattern */
	char tenant[64], user[64], flavor[64];
	char labels[400];            /* "k=v,k=v", sorted by key */
};

struct mapping {
	struct mapping_rule *rules;
	size_t n;
};

/* Load and check a mapping file: errors name file:line:col. 0 or -errno.
 * *m is overwritten (release an older one first); empty on failure. */
int mapping_load(const char *path, struct mapping *m, struct tally_err *e);
/* The same from len bytes of text, named name in messages (tests, fuzz). */
int mapping_load_text(const char *name, const char *text, size_t len, struct mapping *m, struct tally_err *e);
void mapping_release(struct mapping *m);
/* The first rule for (uuid, name), or NULL. */
const struct mapping_rule *mapping_match(const struct mapping *m, const char *uuid, const char *name);

/* labels ("k=v,k=v", sorted by key) with k=v added, sorted again, into
 * out (len bytes, cut when it does not fit). */
void mapping_labels_with(char *out, size_t len, const char *labels, const char *k, const char *v);

#endif
