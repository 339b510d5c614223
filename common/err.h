/*
 * err.h: the error message buffer that library code fills instead of logging.
 *
 * Functions in common/, aggregator/ and billing/ return 0 or a negative errno
 * and, when given a struct tally_err, write one lower-case sentence there that
 * says what went wrong and where ("ledger.db: schema version 7 is newer than
 * this tally (1)"). The caller that has the context logs or prints it once.
 */
#ifndef TALLY_ERR_H
#define TALLY_ERR_H

#include <stddef.h>

struct tally_err {
	int code;        /* negative errno of the last failure, 0 if none */
	char msg[512];
};

/* Fill e (may be NULL) with a formatted message; returns code, so that
 * "return err_set(e, -EINVAL, ...)" reads as one statement. */
int err_set(struct tally_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message with "what: " (for adding a file name). */
int err_prefix(struct tally_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
