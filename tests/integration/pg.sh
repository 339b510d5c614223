#!/bin/sh
# The ledger on PostgreSQL (docs/ledger.md): one PostgreSQL 15 cluster,
# started once here in a temp dir by tests/lib/pg.sh (initdb/pg_ctl on a
# Unix socket of its own, a free port), shared by every case, each in a
# schema of its own:
#   - the ledger, usage, invoice, issue, credit-note, import, events, customer, unit,
#     SLA and alert-state unit suites on
#     PostgreSQL (TALLY_TEST_PG; tests/unit/ledger_backend.h);
#   - tests/pg/*.sh, each a sourced case with PG_URI, $work, $B and the
#     helpers of tests/lib/cli.sh (see tests/pg/README).
# Skips (77) only when the PostgreSQL server programs are not installed.
set -u
B=${B:-build}
export B
. tests/lib/pg.sh
pg_need || exit 77
top=$(mktemp -d /tmp/tally-pg-XXXXXX)
trap 'pg_stop; rm -rf "$top"' EXIT
pg_start "$top/pg" || exit 1
total=0 failed=""

for t in test_ledger test_usage test_invoice test_issue test_credit test_import test_events test_customer test_units test_sla test_alerting; do
	total=$((total + 1))
	if TALLY_TEST_PG=$PG_URI "$B/tests/$t" > "$top/$t.log" 2>&1 && grep -q '100%: Checks' "$top/$t.log"; then
		echo "ok   $t on PostgreSQL: $(grep -E '^[0-9]+%: Checks' "$top/$t.log")"
	else
		echo "FAIL $t on PostgreSQL:"; grep -E ':[EF]:|Checks' "$top/$t.log" | head -n 20
		failed="$failed $t"
	fi
done

for c in tests/pg/*.sh; do
	name=$(basename "$c" .sh)
	total=$((total + 1))
	# a case that stopped the server and failed before it started it again
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status > /dev/null 2>&1 || pg_up > /dev/null 2>&1 ||
		echo "(the server could not be started again after the case before)"
	work=$top/$name
	mkdir -p "$work"
	if (fails=0; . "$c"; [ "$fails" -eq 0 ]) > "$top/$name.log" 2>&1; then
		echo "ok   $name"; sed 's/^/     /' "$top/$name.log" | grep -v '^     ok' | head -n 5
	else
		echo "FAIL $name:"; sed 's/^/     /' "$top/$name.log" | tail -n 30
		failed="$failed $name"
	fi
done
echo "postgresql: $total cases, failed:${failed:- none}"
[ -z "$failed" ]
