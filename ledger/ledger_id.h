/*
 * ledger_id.h: how a tally ledger identifies itself, shared by every
 * backend's writer and readers. The schema is schemas/ledger.sql (SQLite)
 * and schemas/pg/ledger.sql (PostgreSQL), at the same version numbers.
 */
#ifndef TALLY_LEDGER_ID_H
#define TALLY_LEDGER_ID_H

#define LEDGER_SCHEMA_VERSION 10         /* PRAGMA user_version; tally_ledger.version */
#define LEDGER_APP_ID 1952541804         /* PRAGMA application_id; tally_ledger.application_id */

#endif
