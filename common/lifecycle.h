/*
 * lifecycle.h: the lifecycle event types, as one enum like the meters.
 *
 * A lifecycle_event (sample.h) carries its type as the stored string: the
 * ledger's events.type column and the batch wire format (schemas/
 * batch-wire.md) keep the names below, unchanged, so a ledger or an agent
 * of another version reads the same. Code compares enums: producers take
 * the name from lifecycle_name(), consumers the enum from
 * lifecycle_type_of(), and a name this build does not know is
 * LIFECYCLE_OTHER (kept and stored as it came, never an error).
 */
#ifndef TALLY_LIFECYCLE_H
#define TALLY_LIFECYCLE_H

#include <stdbool.h>

enum lifecycle_type {
	LIFECYCLE_OTHER = 0,         /* a name this build does not know */
	LIFECYCLE_STARTED,
	LIFECYCLE_STOPPED,
	LIFECYCLE_SHUTDOWN,
	LIFECYCLE_CRASHED,
	LIFECYCLE_SUSPENDED,
	LIFECYCLE_RESUMED,
	LIFECYCLE_MIGRATED_IN,
	LIFECYCLE_MIGRATED_OUT,
	LIFECYCLE_REBOOTED,
	LIFECYCLE_DEVICE_ADDED,
	LIFECYCLE_DEVICE_REMOVED,
	LIFECYCLE_DEFINED,
	LIFECYCLE_UNDEFINED,
	LIFECYCLE_SILENT,            /* the aggregator's: a running VM's readings stopped */
	LIFECYCLE_HEARD,             /* the aggregator's: ... and came back */
	LIFECYCLE_COUNT
};

/* The stored name ("started", ...); "" for LIFECYCLE_OTHER. */
const char *lifecycle_name(enum lifecycle_type t);
/* The type of a stored name; LIFECYCLE_OTHER when unknown. */
enum lifecycle_type lifecycle_type_of(const char *name);

/* The VM stops running (for VMDown's end of life, the SLA's stretches). */
bool lifecycle_ends_life(enum lifecycle_type t);
/* The VM runs again. */
bool lifecycle_starts_life(enum lifecycle_type t);

#endif
