/*
 * ledger_id.h: how a tally ledger file identifies itself, shared by its one
 * writer (ledger/ledger.c, on behalf of the aggregator) and its readers (billing/). The schema is
 * schemas/ledger.sql.
 */
#ifndef TALLY_LEDGER_ID_H
#define TALLY_LEDGER_ID_H

#define LEDGER_SCHEMA_VERSION 10         /* PRAGMA user_version */
#define LEDGER_APP_ID 1952541804         /* PRAGMA application_id, 'tall' */

#endif
