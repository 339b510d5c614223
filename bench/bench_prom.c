/*
 * bench_prom: /metrics scrape latency, the figure issue 5 names (target:
 * at most 0.5 us per series).
 *
 * tallyd's real pipeline (pipeline_run: the simulated fleet of VMS VMs
 * with 2 disks and 1 NIC each, fast-forwarded through 10 minutes) fills the
 * live store; the real HTTP listener (httpd_start, its thread pool of 2)
 * serves it on 127.0.0.1, and CLIENTS threads scrape /metrics SCRAPES times
 * each over fresh TCP connections, reading the whole answer. Printed: the
 * series and bytes of one scrape, the render alone on one thread (median of
 * 20), and the median and p99 latency of the concurrent scrapes, in ms and
 * in us per series. Nothing is asserted.
 *
 * usage: bench_prom [VMS [CLIENTS [SCRAPES]]]   (defaults 1000 4 50)
 */
#include "pipeline.h"
#include "err.h"
#include "httpd.h"
#include "prom.h"
#include "state.h"
#include "tallytime.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint16_t port;
static int scrapes;
static int64_t *lat;          /* clients * scrapes */
static size_t body_bytes;

static int64_t scrape(void)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	char buf[65536];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int64_t t0 = time_mono_ns();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t total = 0;
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		perror("bench_prom: scrape");
		exit(1);
	}
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	close(fd);
	int64_t dt = time_mono_ns() - t0;
	body_bytes = total;
	return dt;
}

static void *client(void *arg)
{
	int64_t *out = arg;
	for (int i = 0; i < scrapes; i++)
		out[i] = scrape();
	return NULL;
}

static int cmp64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
	unsigned vms = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	int clients = argc > 2 ? atoi(argv[2]) : 4;
	scrapes = argc > 3 ? atoi(argv[3]) : 50;
	char dir[] = "/tmp/tally-bench-prom-XXXXXX", text[1024];
	struct daemon_config cfg;
	struct pipeline_summary sum;
	struct tally_err e = { 0 };
	struct live_store store;
	struct httpd *h = NULL;
	volatile sig_atomic_t stop = 0;

	if (!mkdtemp(dir) || clients < 1 || scrapes < 1)
		return 1;
	snprintf(text, sizeof(text),
		 "tallyd: {agent_id: bench, data_dir: %s, interval: 60s, clock: fast-forward,"
		 " start: 2026-10-01T00:00:00Z, end: 2026-10-01T00:10:00Z, log_level: warning}\n"
		 "rrd: {enabled: false}\n"
		 "collectors: {sim: {vms: %u, tenants: 20, hosts: 10, disks: 2, nics: 1, seed: 3}}\n",
		 dir, vms);
	if (daemon_config_load(&cfg, "bench_prom.yaml", text, &e) || live_store_init(&store) ||
	    pipeline_run(&cfg, &(struct pipeline_outputs){ .live = &store }, &stop, &sum, &e)) {
		fprintf(stderr, "bench_prom: %s\n", e.msg);
		return 1;
	}
	struct httpd_config hc = { .address = "127.0.0.1", .port = 0, .ledger_path = cfg.agg.ledger_path };
	if (httpd_start(&h, &hc, &store, &e)) {
		fprintf(stderr, "bench_prom: %s\n", e.msg);
		return 1;
	}
	port = httpd_port(h);

	/* the render alone, one thread */
	struct live_state *st = live_acquire(&store);
	size_t series = 0;
	for (size_t i = 0; i < st->n_series; i++)
		series += !st->resources[st->series[i].res].stale;
	int64_t rt[20];
	struct sbuf b = { 0 };
	for (int i = 0; i < 20; i++) {
		b.len = 0;
		int64_t t0 = time_mono_ns();
		prom_render(st, PROM_TEXT, NULL, &b);
		rt[i] = time_mono_ns() - t0;
	}
	live_put(&store, st);
	qsort(rt, 20, sizeof(rt[0]), cmp64);
	double render_us = (double)rt[10] / 1e3;
	size_t page = b.len;
	sbuf_release(&b);

	scrape(); /* warm-up */
	lat = calloc((size_t)clients * (size_t)scrapes, sizeof(*lat));
	pthread_t *th = calloc((size_t)clients, sizeof(*th));
	for (int c = 0; c < clients; c++)
		pthread_create(&th[c], NULL, client, lat + (size_t)c * (size_t)scrapes);
	for (int c = 0; c < clients; c++)
		pthread_join(th[c], NULL);
	size_t n = (size_t)clients * (size_t)scrapes;
	qsort(lat, n, sizeof(*lat), cmp64);
	double med = (double)lat[n / 2] / 1e3, p99 = (double)lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3;

	printf("%u VMs: %zu series, %zu bytes per scrape (%zu with the HTTP head)\n", vms, series, page,
	       body_bytes);
	printf("render alone (1 thread, median of 20): %.0f us = %.3f us per series\n", render_us,
	       render_us / (double)series);
	printf("%d concurrent scrapers x %d scrapes over loopback TCP: median %.0f us (%.3f us/series),"
	       " p99 %.0f us (%.3f us/series)\n", clients, scrapes, med, med / (double)series, p99,
	       p99 / (double)series);
	httpd_stop(h);
	live_store_release(&store);
	daemon_config_release(&cfg);
	free(lat);
	free(th);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? 1 : 0;
}
