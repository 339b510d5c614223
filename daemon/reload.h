/*
 * reload.h: what SIGHUP may change in a running tallyd, and what needs a
 * restart (docs/config.md, "Reloading").
 *
 * The config file is read again and checked whole, as `tallyd -n` and a
 * start would; an invalid one is refused with one log line and the
 * running config stays. Of a valid one, these are taken at the end of the
 * cycle that was running when the signal came: the log level, the alert
 * rules and built-ins, the listener's tokens and plan (and so the SLA
 * probe's plan), http.stale_after, and whatever each collector's reload
 * takes (the mapping file, SNMP targets). The rest (role, data_dir,
 * interval, clock, the ledger and RRD sections, the collectors that run,
 * the listener's address, port and limits, the Alertmanager sender) needs
 * a restart: each key that differs is named in one log line, and its
 * running value stays.
 */
#ifndef TALLY_DAEMON_RELOAD_H
#define TALLY_DAEMON_RELOAD_H

#include <stddef.h>

#include "daemoncfg.h"

/* The keys whose new value differs from the running one and needs a
 * restart, as "tallyd.interval, http.port" into out (len bytes); "" when
 * none. */
void reload_restart_keys(const struct daemon_config *run, const struct daemon_config *fresh, char *out,
			 size_t len);

/* Copy into run the values of fresh that a reload applies (log level,
 * alert rules and built-ins, tokens, plan, stale_after). Collectors are
 * the pipeline's to hand over (collector_ops.reload). */
void reload_take(struct daemon_config *run, const struct daemon_config *fresh);

#endif
