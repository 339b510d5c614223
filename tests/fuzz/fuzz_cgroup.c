/*
 * fuzz_cgroup: libFuzzer target for the kernel file parsers of the
 * cgroup/procfs collector (collectors/cgroup_parse.c). The first byte picks
 * the format, the rest is the file: every input must be read or refused
 * with a message, never crash or read outside the buffer. The buffer is
 * copied to one of exactly its length, so ASan sees any read past it (the
 * parsers take a length, never a NUL).
 * Build and run: make fuzz (see tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_internal.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "usage_usec", "anon", "file", "MemTotal", "populated" };
	if (size < 1)
		return 0;
	size_t n = size - 1;
	char *b = malloc(n ? n : 1);
	if (!b)
		return 0;
	memcpy(b, data + 1, n);
	struct tally_err e = { 0 };
	uint64_t v[5];
	uint32_t found;
	int cnt, skipped;
	switch (data[0] % 12) {
	case 0: cg_parse_keyed(b, n, 0, keys, 5, v, &found, &e); break;
	case 1: cg_parse_keyed(b, n, CG_KEYED_MEMINFO, keys, 5, v, &found, &e); break;
	case 2: cg_parse_u64(b, n, v, &e); break;
	case 3: { struct cg_psi p; cg_parse_psi(b, n, &p, &e); break; }
	case 4: { struct cg_io_dev d[4]; cg_parse_io_stat(b, n, d, 4, &cnt, &skipped, &e); break; }
	case 5: { struct cg_io_dev d[4]; cnt = skipped = 0;
		  cg_parse_blkio_v1(b, n, data[0] & 0x80, d, 4, &cnt, &skipped, &e); break; }
	case 6: { struct cg_host_cpu c; cg_parse_proc_stat(b, n, &c, &e); break; }
	case 7: { struct cg_disk d[4]; cg_parse_diskstats(b, n, d, 4, &cnt, &skipped, &e); break; }
	case 8: { struct cg_netif f[4]; cg_parse_net_dev(b, n, f, 4, &cnt, &skipped, &e); break; }
	case 9: { static struct cg_qemu q; cg_parse_qemu_cmdline(b, n, &q, &e); break; }
	case 10: { char name[16]; int pid; bool pop;
		   cg_parse_fdinfo_iff(b, n, name, sizeof(name)); cg_parse_first_pid(b, n, &pid, &e);
		   cg_parse_events(b, n, &pop, &e); break; }
	default: {
		/* the NUL-terminated helpers, on a terminated copy */
		char *s = malloc(n + 1);
		if (s) {
			char u[37];
			uint8_t m[6];
			memcpy(s, b, n);
			s[n] = '\0';
			cg_find_uuid(s, u);
			cg_is_uuid(s);
			cg_parse_mac(s, m);
			free(s);
		}
	}
	}
	free(b);
	return 0;
}
