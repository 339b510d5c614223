/*
 * procself.h: this process's own figures for the standard Prometheus
 * process_* metrics (CPU, memory, file descriptors, start time), read from
 * /proc/self the way every Prometheus client library reports them.
 */
#ifndef TALLY_PROCSELF_H
#define TALLY_PROCSELF_H

#include <stdint.h>

struct procself {
	double cpu_seconds;          /* user + system CPU since the process started */
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	double start_time_seconds;   /* Unix time the process started */
	uint64_t open_fds;
	uint64_t max_fds;            /* the soft RLIMIT_NOFILE */
};

/* Fill p. Returns 0, or -errno when /proc/self cannot be read (p is then
 * zeroed: the caller leaves the metrics out). */
int procself_read(struct procself *p);

#endif
