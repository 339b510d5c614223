/*
 * tables.h: every table of a ledger, its columns and their types, the same
 * on both engines (schemas/ledger.sql + migrations, schemas/pg/): what
 * `tally ledger copy` (copy.h) carries from one ledger to another. A new
 * table is one more entry in tables.c (and its schema version for both
 * engines), and copy carries it.
 *
 * Column types: what a value may be. LCOL_NUM is a quantity that is an
 * integer count or a binary64 (a gauge's integral, a gauge's reading):
 * SQLite keeps it in one untyped column, PostgreSQL in NAME (BIGINT) and
 * NAME_real (DOUBLE PRECISION).
 */
#ifndef TALLY_LEDGER_TABLES_H
#define TALLY_LEDGER_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ledger_col { LCOL_INT, LCOL_REAL, LCOL_TEXT, LCOL_BLOB, LCOL_NUM };

#define LEDGER_MAX_COLS 16

struct ledger_table {
	const char *name;
	const char *order;           /* ORDER BY: its primary key */
	bool identity;               /* its id is assigned by the engine when not given */
	int n;
	struct ledger_column {
		const char *name;
		enum ledger_col type;
	} col[LEDGER_MAX_COLS];
};

extern const struct ledger_table ledger_tables[];
extern const int ledger_n_tables;

/* One value of a row, as read: its own type (a tampered ledger may hold a
 * type its column does not expect; copy refuses it). p/len: text (not
 * NUL-terminated in general) or bytes, borrowed until the callback
 * returns. */
struct ledger_value {
	enum { LV_NULL, LV_INT, LV_REAL, LV_TEXT, LV_BLOB } type;
	int64_t i;
	double d;
	const char *p;
	size_t len;
};
typedef int (*ledger_tuple_fn)(void *ctx, const struct ledger_value *v);

#endif
