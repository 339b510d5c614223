/*
 * usage.h: `tally usage`, the operator's read-only view of the usage ledger.
 *
 * usage_query() opens the ledger read-only (refusing a missing file, a file
 * that is not a tally ledger, or a ledger of another schema version), sums
 * the hourly rows of [from, to) by tenant, resource or hour and meter in one
 * SQL statement, and returns rows sorted by tenant, resource, hour and the
 * meter table's order. A row's tenant is the one the resource had at the
 * start of the hour (resource_attrs), or its first known one if the
 * resource was first described later. usage_render() prints them.
 *
 * The result owns its rows; usage_result_release() frees them.
 */
#ifndef TALLY_USAGE_H
#define TALLY_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tally_err;

enum usage_by { USAGE_BY_TENANT, USAGE_BY_RESOURCE, USAGE_BY_HOUR };
enum usage_format { USAGE_TABLE, USAGE_CSV, USAGE_JSON };

struct usage_query {
	const char *ledger;          /* path */
	int64_t from_ns, to_ns;      /* whole hours, from < to */
	const char *tenant;          /* NULL: all */
	const char *resource;        /* uuid, NULL: all */
	int meter;                   /* enum meter_id, -1: all */
	enum usage_by by;
};

struct usage_row {
	char tenant[64];
	char resource[64];           /* by resource */
	char name[128];              /* by resource: its latest name */
	int64_t hour_ns;             /* by hour */
	int meter;                   /* enum meter_id */
	int is_real;                 /* a gauge's integral: qty in milli-unit-seconds */
	__int128 qty;                /* exact: a counter's base units, or milli-unit-seconds */
	int64_t covered_ns, spanned_ns, samples;
};

struct usage_result {
	struct usage_row *rows;
	size_t n;
};

/* Returns 0; -ENOENT (no ledger), -EINVAL (not a ledger / bad query),
 * -EPROTO (schema version), -EIO; message in e. */
int usage_query(const struct usage_query *q, struct usage_result *out, struct tally_err *e);
void usage_result_release(struct usage_result *r);

/* The quantity in the meter's human unit (meter_table[].human_unit): for
 * display where a double is fine; usage_quantity_text() is exact. */
double usage_human(const struct usage_row *r);
/* The same as an exact decimal, rounded half to even to places. */
char *usage_quantity_text(const struct usage_row *r, int places, char *buf, size_t len);
/* The unit of base_quantity: the meter's base unit for counters, unit-seconds
 * ("B·s", "vCPU·s", "instance·s") for a gauge's integral. */
const char *usage_base_unit(int meter);

int usage_render(FILE *f, const struct usage_query *q, const struct usage_result *r,
		 enum usage_format fmt);

#endif
