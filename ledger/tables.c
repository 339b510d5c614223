/*
 * tables.c: the ledger's tables for `tally ledger copy` (tables.h), in an
 * order that keeps every row's references before it. Not here, on
 * purpose: the schema's own bookkeeping (SQLite's PRAGMAs, PostgreSQL's
 * tally_ledger) and meta (which tally made and wrote this ledger: a copy
 * records the tally that made it).
 */
#include "tables.h"

const struct ledger_table ledger_tables[] = {
	{ "meters", "id", true, 4, { { "id", LCOL_INT }, { "name", LCOL_TEXT }, { "kind", LCOL_TEXT },
				    { "unit", LCOL_TEXT } } },
	{ "resources", "id", true, 12,
	  { { "id", LCOL_INT }, { "uuid", LCOL_TEXT }, { "type", LCOL_TEXT }, { "name", LCOL_TEXT },
	    { "tenant", LCOL_TEXT }, { "project", LCOL_TEXT }, { "user_id", LCOL_TEXT }, { "flavor", LCOL_TEXT },
	    { "labels", LCOL_TEXT }, { "host", LCOL_TEXT }, { "first_seen_ns", LCOL_INT },
	    { "last_seen_ns", LCOL_INT } } },
	{ "resource_attrs", "resource_id, since_ns", false, 8,
	  { { "resource_id", LCOL_INT }, { "since_ns", LCOL_INT }, { "name", LCOL_TEXT }, { "tenant", LCOL_TEXT },
	    { "project", LCOL_TEXT }, { "user_id", LCOL_TEXT }, { "flavor", LCOL_TEXT }, { "labels", LCOL_TEXT } } },
	{ "usage", "resource_id, meter_id, device, hour_ns", false, 8,
	  { { "resource_id", LCOL_INT }, { "meter_id", LCOL_INT }, { "device", LCOL_TEXT }, { "hour_ns", LCOL_INT },
	    { "quantity", LCOL_NUM }, { "spanned_ns", LCOL_INT }, { "covered_ns", LCOL_INT },
	    { "samples", LCOL_INT } } },
	{ "series", "resource_id, meter_id, device, agent", false, 9,
	  { { "resource_id", LCOL_INT }, { "meter_id", LCOL_INT }, { "device", LCOL_TEXT }, { "agent", LCOL_TEXT },
	    { "last_ns", LCOL_INT }, { "origin_ns", LCOL_INT }, { "kind", LCOL_TEXT }, { "last_value", LCOL_NUM },
	    { "flags", LCOL_INT } } },
	{ "agents", "agent", false, 9,
	  { { "agent", LCOL_TEXT }, { "last_seq", LCOL_INT }, { "last_time_ns", LCOL_INT }, { "batches", LCOL_INT },
	    { "spool_id", LCOL_BLOB }, { "spool_first_seq", LCOL_INT }, { "contact_ns", LCOL_INT },
	    { "spool_batches", LCOL_INT }, { "spool_bytes", LCOL_INT } } },
	{ "events", "id", true, 6,
	  { { "id", LCOL_INT }, { "resource_id", LCOL_INT }, { "time_ns", LCOL_INT }, { "agent", LCOL_TEXT },
	    { "type", LCOL_TEXT }, { "reason", LCOL_TEXT } } },
	{ "invoices", "id", true, 14,
	  { { "id", LCOL_INT }, { "issuer", LCOL_TEXT }, { "number", LCOL_INT }, { "tenant", LCOL_TEXT },
	    { "from_ns", LCOL_INT }, { "to_ns", LCOL_INT }, { "issued_ns", LCOL_INT }, { "currency", LCOL_TEXT },
	    { "base_minor", LCOL_INT }, { "subtotal_minor", LCOL_INT }, { "total_minor", LCOL_INT },
	    { "plan_text", LCOL_TEXT }, { "document", LCOL_TEXT }, { "sha256", LCOL_TEXT } } },
	{ "invoice_adjustments", "invoice_id, for_id", false, 3,
	  { { "invoice_id", LCOL_INT }, { "for_id", LCOL_INT }, { "amount_minor", LCOL_INT } } },
	{ "credit_notes", "id", true, 13,
	  { { "id", LCOL_INT }, { "issuer", LCOL_TEXT }, { "number", LCOL_INT }, { "invoice_id", LCOL_INT },
	    { "tenant", LCOL_TEXT }, { "issued_ns", LCOL_INT }, { "currency", LCOL_TEXT }, { "cancels", LCOL_INT },
	    { "subtotal_minor", LCOL_INT }, { "total_minor", LCOL_INT }, { "reason", LCOL_TEXT },
	    { "document", LCOL_TEXT }, { "sha256", LCOL_TEXT } } },
	{ "usage_events", "source, event_id", false, 10,
	  { { "source", LCOL_TEXT }, { "event_id", LCOL_TEXT }, { "resource_id", LCOL_INT }, { "meter_id", LCOL_INT },
	    { "device", LCOL_TEXT }, { "time_ns", LCOL_INT }, { "end_ns", LCOL_INT }, { "quantity", LCOL_INT },
	    { "digest", LCOL_TEXT }, { "imported_ns", LCOL_INT } } },
	{ "charges", "id", true, 8,
	  { { "id", LCOL_INT }, { "tenant", LCOL_TEXT }, { "from_ns", LCOL_INT }, { "to_ns", LCOL_INT },
	    { "description", LCOL_TEXT }, { "amount", LCOL_TEXT }, { "currency", LCOL_TEXT }, { "added_ns", LCOL_INT } } },
	{ "alerts", "key", false, 12,
	  { { "key", LCOL_TEXT }, { "labels", LCOL_TEXT }, { "annotations", LCOL_TEXT }, { "rule", LCOL_TEXT },
	    { "tenant", LCOL_TEXT }, { "subject", LCOL_TEXT }, { "device", LCOL_TEXT }, { "state", LCOL_TEXT },
	    { "active_ns", LCOL_INT }, { "fired_ns", LCOL_INT }, { "resolved_ns", LCOL_INT }, { "value", LCOL_REAL } } },
	{ "alert_windows", "key, t_ns", false, 3,
	  { { "key", LCOL_TEXT }, { "t_ns", LCOL_INT }, { "value", LCOL_REAL } } },
	{ "chain", "id", false, 5,
	  { { "id", LCOL_INT }, { "time_ns", LCOL_INT }, { "upgrade", LCOL_INT }, { "hours", LCOL_INT },
	    { "hash", LCOL_BLOB } } },
	{ "chain_hours", "commit_id, hour_ns", false, 5,
	  { { "commit_id", LCOL_INT }, { "hour_ns", LCOL_INT }, { "rows", LCOL_INT }, { "altered", LCOL_INT },
	    { "digest", LCOL_BLOB } } },
};

const int ledger_n_tables = sizeof(ledger_tables) / sizeof(ledger_tables[0]);
