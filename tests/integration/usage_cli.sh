#!/bin/sh
# tally usage and tally plan check from the command line: exit codes and
# messages for bad input,
# and the demo-sized ledger read back with totals cross-checked against the
# ledger with the sqlite3 CLI (an independent reader).
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-usage-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
sim_ledger "$work/d" 2026-10-02T00:00:00Z 5 2 1
L=$work/d/ledger.db
expect 2 "--from is required" "$TALLY" usage --ledger "$L" --to 2026-10
expect 2 "--from '2026-13': month must be 01-12" "$TALLY" usage --ledger "$L" --from 2026-13 --to 2026-10
expect 2 "give whole hours" "$TALLY" usage --ledger "$L" --from 2026-10-01T00:30:00Z --to 2026-10
expect 2 "--meter 'cpu.time': no such meter" "$TALLY" usage --ledger "$L" --from 2026-10 --to 2026-10 --meter cpu.time
expect 2 "--format 'xml'" "$TALLY" usage --ledger "$L" --from 2026-10 --to 2026-10 --format xml
expect 2 "is not before" "$TALLY" usage --ledger "$L" --from 2026-11 --to 2026-10
expect 1 "$work/nope.db: no ledger here" "$TALLY" usage --ledger "$work/nope.db" --from 2026-10 --to 2026-10
expect 2 "unknown command 'usag'" "$TALLY" usag
expect 0 "tenant-00" "$TALLY" usage --ledger "$L" --from 2026-10 --to 2026-10
expect 0 "config/plan-example.yaml: ok" "$TALLY" plan check config/plan-example.yaml
expect 2 "mistakes.yaml:18:15: unit 'GB' does not fit meter 'cpu'" "$TALLY" plan check tests/fixtures/plans/mistakes.yaml
expect 2 "nope.yaml: cannot open" "$TALLY" plan check "$work/nope.yaml"

# cpu per tenant from tally (CSV base_quantity) and from sqlite3 directly
"$TALLY" usage --ledger "$L" --from 2026-10 --to 2026-10 --meter cpu --format csv |
	tr -d '\r' | awk -F, 'NR > 1 { print $1, $5 }' > "$work/ours"
sqlite3 "$L" "SELECT ra.tenant, sum(u.quantity) FROM usage u JOIN meters m ON m.id = u.meter_id
  JOIN resource_attrs ra ON ra.resource_id = u.resource_id WHERE m.name = 'cpu'
  GROUP BY ra.tenant ORDER BY ra.tenant" | tr '|' ' ' > "$work/theirs"
if cmp -s "$work/ours" "$work/theirs"; then
	echo "ok   cpu per tenant equals the sqlite3 sum: $(tr '\n' ';' < "$work/ours")"
else
	echo "FAIL cpu per tenant: tally says $(cat "$work/ours"), sqlite3 says $(cat "$work/theirs")"
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
