/*
 * lifecycle.c: the lifecycle event names (lifecycle.h). The names are
 * stored in ledgers and sent on the wire: never change one.
 */
#include "lifecycle.h"

#include <string.h>

static const char *const names[LIFECYCLE_COUNT] = {
	[LIFECYCLE_OTHER] = "",
	[LIFECYCLE_STARTED] = "started",
	[LIFECYCLE_STOPPED] = "stopped",
	[LIFECYCLE_SHUTDOWN] = "shutdown",
	[LIFECYCLE_CRASHED] = "crashed",
	[LIFECYCLE_SUSPENDED] = "suspended",
	[LIFECYCLE_RESUMED] = "resumed",
	[LIFECYCLE_MIGRATED_IN] = "migrated_in",
	[LIFECYCLE_MIGRATED_OUT] = "migrated_out",
	[LIFECYCLE_REBOOTED] = "rebooted",
	[LIFECYCLE_DEVICE_ADDED] = "device_added",
	[LIFECYCLE_DEVICE_REMOVED] = "device_removed",
	[LIFECYCLE_DEFINED] = "defined",
	[LIFECYCLE_UNDEFINED] = "undefined",
	[LIFECYCLE_SILENT] = "silent",
	[LIFECYCLE_HEARD] = "heard",
};

const char *lifecycle_name(enum lifecycle_type t)
{
	return (unsigned)t < LIFECYCLE_COUNT ? names[t] : "";
}

enum lifecycle_type lifecycle_type_of(const char *name)
{
	for (int t = 1; t < LIFECYCLE_COUNT; t++)
		if (!strcmp(name, names[t]))
			return (enum lifecycle_type)t;
	return LIFECYCLE_OTHER;
}

bool lifecycle_ends_life(enum lifecycle_type t)
{
	return t == LIFECYCLE_STOPPED || t == LIFECYCLE_CRASHED || t == LIFECYCLE_MIGRATED_OUT ||
	       t == LIFECYCLE_UNDEFINED || t == LIFECYCLE_SHUTDOWN;
}

bool lifecycle_starts_life(enum lifecycle_type t)
{
	return t == LIFECYCLE_STARTED || t == LIFECYCLE_MIGRATED_IN || t == LIFECYCLE_RESUMED;
}
