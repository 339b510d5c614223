/*
 * metercfg.h: the config's `meters:` section: custom meters declared
 * without recompiling (docs/meters.md, "Custom meters"; docs/config.md).
 *
 *   meters:
 *     - name: storage.objects.size   # [a-z0-9][a-z0-9._-]*, at most 63, not a built-in's
 *       kind: gauge                  # counter, gauge or delta
 *       unit: B                      # the base unit of its quantities
 *       title: Object storage        # what a customer calls it (invoices)
 *
 * meter_config_parse() checks the whole list first (every mistake with
 * its file:line:col and the key named; the first one in e) and, when it
 * is good and define is set, adds the meters to the registry (meter.h) in
 * their order. A name declared twice, or a built-in's, is refused.
 */
#ifndef TALLY_METERCFG_H
#define TALLY_METERCFG_H

#include <stdbool.h>

struct cfg_node;
struct tally_err;

/* seq: the value of `meters:` (NULL: none). 0, -EINVAL, -ENOSPC, -ENOMEM. */
int meter_config_parse(const struct cfg_node *seq, bool define, struct tally_err *e);

/* The `meters:` section of the config file at path, defined. 0, or the
 * error of reading or parsing it (message with the place in e). */
int meter_config_load(const char *path, struct tally_err *e);

#endif
