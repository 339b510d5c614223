/*
 * rrdname.h: how a resource id or device becomes a file name under the RRD
 * directory (schemas/rrd.md): A-Z a-z 0-9 _ - stay, '.' stays except first,
 * every other byte becomes %XX. Shared by the writer (aggregator/rrdstore.c)
 * and the readers (billing's charts), so both find the same files.
 */
#ifndef TALLY_RRDNAME_H
#define TALLY_RRDNAME_H

#include <stddef.h>

/* Escape in into out[len]. 0, or -ENAMETOOLONG when it does not fit. An
 * empty name becomes "_". */
int rrd_name_escape(char *out, size_t len, const char *in);

#endif
