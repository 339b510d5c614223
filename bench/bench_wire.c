/*
 * bench_wire: the batch wire format (common/wire.c) beside JSON (jansson)
 * for the same batch, and the agent's spool (daemon/spool.c): appends per
 * second with an fdatasync each (the durable path), the same without
 * (the CPU cost), the disk's own fdatasync rate, and the spool's RSS and
 * disk use through a long outage.
 *
 * The batch is one 10 s cycle of VMS simulated VMs, 19 series each (cpu,
 * vcpus, memory, memory.usage, instance; two disks with read/write
 * bytes/requests and capacity; one NIC with in/out bytes/packets), UUID
 * resource ids. Each figure is the median of RUNS runs.
 *
 * usage: bench_wire [VMS [RUNS [DIR]]]   (defaults 1000 5 /tmp)
 */
#include "batch.h"
#include "spool.h"
#include "tallytime.h"
#include "wire.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = atol(line + 6);
	if (f)
		fclose(f);
	return v;
}

static void add(struct batch *b, const char *res, const char *dev, int meter, int kind, int64_t t, uint64_t c,
		double g)
{
	struct sample s = { .time_ns = t, .meter = (uint16_t)meter, .kind = (uint8_t)kind };
	strcpy(s.resource, res);
	strcpy(s.device, dev);
	if (kind == SAMPLE_GAUGE)
		s.v.gauge = g;
	else
		s.v.counter = c;
	batch_add_sample(b, &s);
}

static void fleet(struct batch *b, unsigned vms, uint64_t seq)
{
	int64_t t = 1790812800LL * NS_PER_SEC + (int64_t)seq * 10 * NS_PER_SEC;
	batch_init(b, "bench-host-01");
	b->seq = seq;
	b->time_ns = t;
	for (unsigned i = 0; i < vms; i++) {
		char res[64], mac[32];
		snprintf(res, sizeof(res), "%08x-1c2d-4e5f-8a9b-%012x", 0x5eed0000u + i, i * 2654435761u);
		snprintf(mac, sizeof(mac), "52:54:00:%02x:%02x:%02x", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		int64_t ti = t - (int64_t)(i % 1000) * 1000000;
		uint64_t k = seq * 1000 + i;
		add(b, res, "", M_CPU, SAMPLE_CUMULATIVE, ti, k * 9876543, 0);
		add(b, res, "", M_VCPUS, SAMPLE_GAUGE, ti, 0, 2 + i % 4);
		add(b, res, "", M_MEMORY, SAMPLE_GAUGE, ti, 0, 4294967296.0);
		add(b, res, "", M_MEMORY_USAGE, SAMPLE_GAUGE, ti, 0, 1e9 + (double)((seq * 7 + i) % 1000) * 4096);
		add(b, res, "", M_INSTANCE, SAMPLE_GAUGE, ti, 0, 1);
		for (int d = 0; d < 2; d++) {
			const char *dev = d ? "vdb" : "vda";
			add(b, res, dev, M_DISK_READ_BYTES, SAMPLE_CUMULATIVE, ti, k * 40960, 0);
			add(b, res, dev, M_DISK_WRITE_BYTES, SAMPLE_CUMULATIVE, ti, k * 81920, 0);
			add(b, res, dev, M_DISK_READ_REQUESTS, SAMPLE_CUMULATIVE, ti, k * 10, 0);
			add(b, res, dev, M_DISK_WRITE_REQUESTS, SAMPLE_CUMULATIVE, ti, k * 20, 0);
			add(b, res, dev, M_DISK_CAPACITY, SAMPLE_GAUGE, ti, 0, 21474836480.0);
		}
		add(b, res, mac, M_NET_IN_BYTES, SAMPLE_CUMULATIVE, ti, k * 150000, 0);
		add(b, res, mac, M_NET_OUT_BYTES, SAMPLE_CUMULATIVE, ti, k * 50000, 0);
		add(b, res, mac, M_NET_IN_PACKETS, SAMPLE_CUMULATIVE, ti, k * 120, 0);
		add(b, res, mac, M_NET_OUT_PACKETS, SAMPLE_CUMULATIVE, ti, k * 80, 0);
	}
}

static const char *const kinds[] = { "cumulative", "gauge", "delta" };

static char *json_encode(const struct batch *b)
{
	json_t *o = json_object(), *arr = json_array();
	json_object_set_new(o, "agent", json_string(b->agent));
	json_object_set_new(o, "seq", json_integer((json_int_t)b->seq));
	json_object_set_new(o, "time_ns", json_integer(b->time_ns));
	json_object_set_new(o, "clock_step_ns", json_integer(b->clock_step_ns));
	for (size_t i = 0; i < b->n_samples; i++) {
		const struct sample *s = &b->samples[i];
		json_t *x = json_object();
		json_object_set_new(x, "resource", json_string(s->resource));
		json_object_set_new(x, "device", json_string(s->device));
		json_object_set_new(x, "meter", json_string(meter_table[s->meter].name));
		json_object_set_new(x, "kind", json_string(kinds[s->kind]));
		json_object_set_new(x, "time_ns", json_integer(s->time_ns));
		json_object_set_new(x, "origin_ns", json_integer(s->origin_ns));
		json_object_set_new(x, "value", s->kind == SAMPLE_GAUGE ? json_real(s->v.gauge)
									 : json_integer((json_int_t)s->v.counter));
		json_object_set_new(x, "flags", json_integer(s->flags));
		json_array_append_new(arr, x);
	}
	json_object_set_new(o, "samples", arr);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static int json_decode(const char *text, struct batch *b)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	if (!o)
		return -1;
	batch_clear(b);
	b->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
	b->time_ns = json_integer_value(json_object_get(o, "time_ns"));
	json_t *arr = json_object_get(o, "samples"), *x;
	size_t i;
	json_array_foreach(arr, i, x) {
		struct sample s = { 0 };
		const char *k = json_string_value(json_object_get(x, "kind"));
		s.kind = !strcmp(k, "gauge") ? SAMPLE_GAUGE : !strcmp(k, "delta") ? SAMPLE_DELTA : SAMPLE_CUMULATIVE;
		s.meter = (uint16_t)meter_lookup(json_string_value(json_object_get(x, "meter")));
		strncpy(s.resource, json_string_value(json_object_get(x, "resource")), sizeof(s.resource) - 1);
		strncpy(s.device, json_string_value(json_object_get(x, "device")), sizeof(s.device) - 1);
		s.time_ns = json_integer_value(json_object_get(x, "time_ns"));
		s.origin_ns = json_integer_value(json_object_get(x, "origin_ns"));
		json_t *v = json_object_get(x, "value");
		if (s.kind == SAMPLE_GAUGE)
			s.v.gauge = json_number_value(v);
		else
			s.v.counter = (uint64_t)json_integer_value(v);
		s.flags = (uint8_t)json_integer_value(json_object_get(x, "flags"));
		batch_add_sample(b, &s);
	}
	json_decref(o);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned vms = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	const char *tmp = argc > 3 ? argv[3] : "/tmp";
	struct batch b, d;
	struct wire_enc w;
	struct wire_buf f = { 0 };
	struct tally_err e = { 0 };
	double enc[16], dec[16], jenc[16], jdec[16];
	if (runs > 16)
		runs = 16;

	fleet(&b, vms, 1);
	batch_init(&d, NULL);
	wire_enc_init(&w);
	double ns = (double)b.n_samples;
	wire_encode(&w, &b, NULL, &f, &e);
	size_t wire_bytes = f.len;
	char *js = json_encode(&b);
	size_t json_bytes = strlen(js);
	free(js);
	int reps = (int)(2000000 / b.n_samples) + 1;
	for (int r = 0; r < runs; r++) {
		double t0 = now_s();
		for (int i = 0; i < reps; i++) {
			f.len = 0;
			if (wire_encode(&w, &b, NULL, &f, &e))
				return fprintf(stderr, "encode: %s\n", e.msg), 1;
		}
		double t1 = now_s();
		for (int i = 0; i < reps; i++)
			if (wire_decode(f.p, f.len, &d, NULL, &e))
				return fprintf(stderr, "decode: %s\n", e.msg), 1;
		double t2 = now_s();
		enc[r] = ns * reps / (t1 - t0);
		dec[r] = ns * reps / (t2 - t1);
		int jr = reps / 10 + 1;
		double t3 = now_s();
		char *text = NULL;
		for (int i = 0; i < jr; i++) {
			free(text);
			text = json_encode(&b);
		}
		double t4 = now_s();
		for (int i = 0; i < jr; i++)
			json_decode(text, &d);
		double t5 = now_s();
		free(text);
		jenc[r] = ns * jr / (t4 - t3);
		jdec[r] = ns * jr / (t5 - t4);
	}
	double me = median(enc, runs), md = median(dec, runs), mje = median(jenc, runs), mjd = median(jdec, runs);
	printf("batch: %u VMs, %zu samples; wire %zu bytes (%.1f B/sample), JSON %zu bytes (%.1f B/sample)\n", vms,
	       b.n_samples, wire_bytes, (double)wire_bytes / ns, json_bytes, (double)json_bytes / ns);
	printf("wire encode   %12.0f samples/s   (JSON/jansson %10.0f; ratio %.1fx)\n", me, mje, me / mje);
	printf("wire decode   %12.0f samples/s   (JSON/jansson %10.0f; ratio %.1fx)\n", md, mjd, md / mjd);
	batch_release(&b);

	/* the spool: one agent of 100 VMs, one batch per 10 s cycle */
	char dir[512];
	double ap[16], apn[16], fs[16];
	int n = 200;
	struct batch *bs = calloc((size_t)n, sizeof(*bs));
	for (int i = 0; i < n; i++)
		fleet(&bs[i], 100, (uint64_t)i + 1);
	for (int r = 0; r < runs; r++) {
		for (int nofs = 0; nofs < 2; nofs++) {
			snprintf(dir, sizeof(dir), "%s/tally-bench-spool-%d-%d-%d", tmp, (int)getpid(), r, nofs);
			struct spool *sp;
			struct spool_opts o = { .no_fsync = nofs };
			if (spool_open(&sp, dir, "bench-host-01", &o, NULL, &e))
				return fprintf(stderr, "%s\n", e.msg), 1;
			double t0 = now_s();
			for (int i = 0; i < n; i++)
				if (spool_append(sp, &bs[i], &e))
					return fprintf(stderr, "%s\n", e.msg), 1;
			double t1 = now_s();
			(nofs ? apn : ap)[r] = n / (t1 - t0);
			spool_close(sp);
			char cmd[600];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
			if (system(cmd))
				return 1;
		}
		/* the disk's own rate: 4 KiB appended and fdatasync'd, 200 times */
		snprintf(dir, sizeof(dir), "%s/tally-bench-fsync-%d", tmp, (int)getpid());
		int fd = open(dir, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char blk[4096] = { 0 };
		double t0 = now_s();
		for (int i = 0; i < n; i++)
			if (write(fd, blk, sizeof(blk)) != sizeof(blk) || fdatasync(fd))
				return perror("fsync"), 1;
		fs[r] = n / (now_s() - t0);
		close(fd);
		unlink(dir);
	}
	double map = median(ap, runs), mapn = median(apn, runs), mfs = median(fs, runs);
	printf("spool append  %12.0f batches/s = %.0f fsyncs/s (1 fdatasync per batch of %zu samples; %.0f samples/s)\n",
	       map, map, bs[0].n_samples, map * (double)bs[0].n_samples);
	printf("  no fsync    %12.0f batches/s (%.1f us of CPU per batch, %.0f ns per sample)\n", mapn, 1e6 / mapn,
	       1e9 / mapn / (double)bs[0].n_samples);
	printf("  the disk's own 4 KiB append + fdatasync: %.0f/s\n", mfs);

	for (int i = 0; i < n; i++)
		batch_release(&bs[i]);
	free(bs);

	/* RSS and disk through 10 hours of outage (3600 batches, no fsync:
	 * the memory is what is measured), limit 16 MiB */
	snprintf(dir, sizeof(dir), "%s/tally-bench-outage-%d", tmp, (int)getpid());
	struct spool *sp;
	struct spool_opts o = { .no_fsync = 1, .max_bytes = 16 << 20 };
	struct spool_stats st;
	if (spool_open(&sp, dir, "bench-host-01", &o, NULL, &e))
		return fprintf(stderr, "%s\n", e.msg), 1;
	long rss0 = 0;
	printf("outage of a 100-VM agent, spool limit 16 MiB (thin from 8 MiB):\n");
	for (uint64_t q = 1; q <= 3600; q++) {
		struct batch x;
		fleet(&x, 100, q);
		if (spool_append(sp, &x, &e))
			return fprintf(stderr, "%s\n", e.msg), 1;
		batch_release(&x);
		if (q == 60)
			rss0 = rss_kib();
		if (q == 360 || q == 1800 || q == 3600) {
			spool_get_stats(sp, &st);
			printf("  after %4.1f h: RSS %ld KiB (at 10 min: %ld), spool %.1f MiB, level %d, thinned %llu, "
			       "dropped %llu\n", (double)q / 360, rss_kib(), rss0, (double)st.bytes / 1048576.0, st.level,
			       (unsigned long long)st.thinned, (unsigned long long)st.dropped);
		}
	}
	spool_close(sp);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		return 1;
	batch_release(&d);
	wire_buf_release(&f);
	wire_enc_release(&w);
	return 0;
}
