/*
 * sink.c: what a read's sink refusals come to (sink.h).
 */
#include "sink.h"
#include "err.h"

#include <string.h>

int sink_status_err(const struct sink_status *st, const char *who, struct tally_err *e)
{
	if (!st->first)
		return 0;
	return err_set(e, st->first, "%s: %lu readings refused by the sink (%s)", who, st->refused,
		       strerror(-st->first));
}
