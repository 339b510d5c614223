/*
 * import.h: usage that no collector measures, imported as events
 * (`tally import FILE`; docs/meters.md, "Imported usage").
 *
 * An event says that a tenant's resource used a quantity of a meter
 * (usually a custom meter: object storage, a floating IP, licences):
 *
 *   counter  an amount >= 0 of the meter's base unit at `time`, or spread
 *            over [time, end) in proportion to time when `end` is given;
 *   delta    the same, and the amount may be negative (a correction);
 *   gauge    a level >= 0 held over [time, end) (`end` required, both in
 *            whole seconds): its integral, level x seconds, in unit-seconds.
 *
 * Events go to custom meters only: the built-in meters are measured by the
 * collectors, and their series are the aggregator's.
 *
 * The importer is the aggregator's second way into the ledger: it holds
 * the writer's lock (ledger_open) for one transaction, books every event
 * into the same hourly usage rows collected usage goes to, split exactly
 * at hour boundaries (docs/architecture.md rule 6: a counter's amount by
 * cumulative floor, so the parts add up to it; a gauge's integral exactly,
 * as integer unit-seconds), creates the resources it names with their
 * tenant, writes a series row per (resource, meter, device) under the
 * source host "import:SOURCE" (ended: the readers find a series' usage
 * through it, and the aggregator leaves meters it does not know alone),
 * and records each event's (source, id) in the ledger's
 * usage_events table in the same transaction: an event seen twice counts
 * once, and a key that comes back with other values is refused. All the
 * events of a file are booked, or none.
 *
 * The file is CSV (RFC 4180, a header row naming the columns) or JSON (a
 * list of events, or {"events": [...]}); unknown columns or keys, a
 * missing one, a value of the wrong shape, an unknown meter, a negative
 * counter quantity are refused with file:line:col and the column named.
 */
#ifndef TALLY_IMPORT_H
#define TALLY_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

struct tally_err;

#define IMPORT_ID_MAX 128            /* an idempotency key's length */
#define IMPORT_FIELDS 9              /* id, tenant, resource, meter, time, end, quantity, device, name */

struct import_event {
	char id[IMPORT_ID_MAX + 1];
	char tenant[64];
	char resource[TALLY_ID_MAX];
	char device[64];
	char name[128];              /* the resource's name ("" : its id) */
	int meter;                   /* meter_find() index */
	int64_t time_ns, end_ns;     /* end_ns == time_ns: an instant */
	int64_t quantity;            /* base units; a gauge's level */
	char where[300];             /* "file:line:col" of the event, for messages */
	bool booked;                 /* import_apply booked it (not a duplicate) */
};

struct import_batch {
	struct import_event *v;      /* owned */
	size_t n, cap;
};

/* Parse path into b (appending). format "csv", "json", or NULL: by the
 * file's extension (.csv, .json). Returns 0; -EINVAL (message with
 * file:line:col), -ENOENT and others for an unreadable file, -ENOMEM. */
int import_parse_file(const char *path, const char *format, struct import_batch *b, struct tally_err *e);
/* The same from text in memory; path names it in messages (and its
 * extension says the format when format is NULL). */
int import_parse_text(const char *path, const char *text, size_t len, const char *format, struct import_batch *b,
		      struct tally_err *e);
void import_batch_release(struct import_batch *b);

/* The body of POST /api/v1/events (schemas/events-api.md): a JSON object
 * {"events": [...], "source": S} read by jansson (strict JSON: a key given
 * twice is refused), each event the keys of an imported JSON event with the
 * same checks. Values are strings or JSON integers (exact in 64 bits); a
 * JSON real is refused wherever it is, a quantity included: a quantity is
 * a whole number of the meter's base unit, never a float.
 *
 * Returns 0 with 1 to max_events events appended to b and the body's
 * "source" in source ("" when not given; filled as soon as it is read, so
 * also when an event after it is refused). Else -EBADMSG when the body is
 * not of that shape (not JSON, another type, an unknown key: HTTP 400) or
 * the error of the event refused (-EINVAL, -ERANGE: HTTP 422), -ENOMEM;
 * the message in e ("events[3]: 'quantity': ..."), and in f which event
 * (its index, -1: the body as a whole) and which key (NULL: none). */
struct import_fault {
	long index;
	const char *key;             /* static */
	bool shape;                  /* the body's shape (400), not an event's rule (422) */
};
int import_parse_request(const char *text, size_t len, size_t max_events, char *source, size_t source_len,
			 struct import_batch *b, struct import_fault *f, struct tally_err *e);
/* A source's name: 1 to 63 bytes, no space or control character. */
bool import_source_ok(const char *s);

struct import_result {
	size_t events;               /* booked */
	size_t duplicates;           /* seen before (or twice in the file): counted once */
	size_t rows;                 /* hourly usage rows added to */
	size_t resources_new;
	int64_t from_ns, to_ns;      /* the span of the events booked (0, 0: none) */
};

/* Book b's events into the ledger at path under source, in one writer's
 * transaction at now_ns. Returns 0; -EBUSY (a tallyd writes the ledger:
 * its pid in e), -EEXIST (a key used for another event), -EINVAL (a
 * resource of another tenant), -ERANGE (a row too large), the ledger's
 * errors; nothing is booked on failure. */
int import_apply(const char *ledger_path, const char *source, struct import_batch *b, int64_t now_ns,
		 struct import_result *r, struct tally_err *e);

/* ---- booking with a ledger another writer holds open ----
 *
 * tallyd books the events POSTed to it (daemon/events.h) through the
 * ledger its aggregator writes. The resources events name are then the
 * aggregator's too: one id per uuid across both, and the aggregator must
 * know every resource row written beside it (or it would write another
 * row for the same uuid, or give its id to another). So the booking asks
 * the writer for a resource (find), takes the id of a new one from it
 * (new_id), and once its transaction committed tells it of every resource
 * row it wrote (learn). The caller owns the transaction. */
struct ledger;
struct ledger_resource;
struct import_resources {
	/* 1 with *out when the writer knows uuid (*in_ledger: its row is
	 * committed with out->id), 0 when it does not */
	int (*find)(void *ctx, const char *uuid, struct ledger_resource *out, bool *in_ledger);
	int64_t (*new_id)(void *ctx);
	void (*learn)(void *ctx, const struct ledger_resource *r);
	void *ctx;
};

struct import_writer;
/* A booking state on l (borrowed) and res (copied). 0 or -ENOMEM. */
int import_writer_new(struct import_writer **out, struct ledger *l, const struct import_resources *res);
void import_writer_free(struct import_writer *w);
/* Book b's events under source inside the transaction the caller began
 * on l (an event whose (source, id) the ledger holds already, or that came
 * before in b, is a duplicate: skipped, v[i].booked false). Returns 0, or
 * with *bad the index of the event refused: -EEXIST (its key names
 * another event), -EINVAL (its resource is another tenant's), -ERANGE (an
 * hour of it does not fit a ledger row); or the ledger's errors (*bad
 * SIZE_MAX). On any failure the caller rolls back. */
int import_writer_book(struct import_writer *w, const char *source, struct import_batch *b, int64_t now_ns,
		       struct import_result *r, size_t *bad, struct tally_err *e);
/* The caller's transaction ended: committed (the resources written are
 * learned) or rolled back (what it wrote is forgotten). */
void import_writer_end(struct import_writer *w, bool committed);

#endif
