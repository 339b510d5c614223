/*
 * nagios.h: check_tally, the Nagios/Icinga plugin that asks a running
 * tallyd's JSON API (httpd.h) about one VM or about the data as a whole.
 *
 * Monitoring-plugins guidelines: exit 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN; one status line under 1 KiB with perfdata
 * 'label'=value[UOM];warn;crit;min;max; -w/-c thresholds in the range
 * syntax below; -t timeout ends in UNKNOWN; -h and -V.
 *
 * Ranges (nagios_range_parse): "10" is 0..10, "10:" is 10..inf, "~:10" is
 * -inf..10, "10:20" is 10..20, and a leading "@" turns alerting around:
 * the check alerts when the value is OUTSIDE a plain range (the edges
 * themselves are inside, so they do not alert) and INSIDE an "@" range
 * (edges included, so they alert). An empty start (":10") is 0.
 */
#ifndef TALLY_NAGIOS_H
#define TALLY_NAGIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum nagios_state { NAGIOS_OK = 0, NAGIOS_WARNING = 1, NAGIOS_CRITICAL = 2, NAGIOS_UNKNOWN = 3 };

struct nagios_range {
	double start, end;
	bool start_inf, end_inf;     /* -inf / +inf */
	bool inside;                 /* "@": alert inside [start, end] */
};

/* Parse s. Returns 0, or -EINVAL with a message in err[len]. */
int nagios_range_parse(const char *s, struct nagios_range *r, char *err, size_t len);

/* Whether value v raises the alert of range r. */
bool nagios_range_alert(const struct nagios_range *r, double v);

/* The whole plugin: parse argv, ask tallyd, print the status line on out.
 * Returns the exit status (enum nagios_state). */
int nagios_check_main(int argc, char **argv, FILE *out);

#endif
