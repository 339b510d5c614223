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
# --period, as tally invoice takes it: the same month, and never both ways at once
expect 2 "give --period or --from/--to, not both" "$TALLY" usage --ledger "$L" --period 2026-10 --to 2026-10
expect 2 "--period '2026-13': month must be 01-12" "$TALLY" usage --ledger "$L" --period 2026-13
"$TALLY" usage --ledger "$L" --from 2026-10 --to 2026-10 --by resource --format csv > "$work/u-fromto.csv"
"$TALLY" usage --ledger "$L" --period 2026-10 --by resource --format csv > "$work/u-period.csv"
if [ ! -s "$work/u-period.csv" ] || ! cmp -s "$work/u-fromto.csv" "$work/u-period.csv"; then
	echo "FAIL usage --period 2026-10 is not --from 2026-10 --to 2026-10"; fails=$((fails + 1))
fi
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

# JSON: valid against schemas/usage.schema.json for every --by, and every
# quantity an exact decimal string: base_quantity equals sqlite3's sum for
# counters (integers, exact in SQLite), and quantity is base_quantity over
# the human unit, rounded half to even (Python's decimal, independent)
for by in tenant resource hour; do
	"$TALLY" usage --ledger "$L" --from 2026-10-01 --to 2026-10-01 --by $by --format json > "$work/u-$by.json"
done
sqlite3 -csv "$L" "SELECT ra.tenant, m.name, sum(u.quantity) FROM usage u JOIN meters m ON m.id = u.meter_id
  JOIN resource_attrs ra ON ra.resource_id = u.resource_id WHERE m.kind <> 'gauge'
  AND u.hour_ns >= 1790812800000000000 AND u.hour_ns < 1790899200000000000 GROUP BY ra.tenant, m.name" > "$work/sums.csv"
if /usr/bin/python3 - "$work" schemas/usage.schema.json <<'EOPY'
import csv, json, sys
from decimal import Decimal, ROUND_HALF_EVEN
import jsonschema
w, schema = sys.argv[1], json.load(open(sys.argv[2]))
div = {"CPU-hours": Decimal(3600 * 10**9), "vCPU-hours": Decimal(3600), "GiB-hours": Decimal(2**30 * 3600),
       "GB": Decimal(10**9), "requests": Decimal(1), "packets": Decimal(1), "instance-hours": Decimal(3600)}
bad = 0
for by in ("tenant", "resource", "hour"):
    doc = json.load(open(f"{w}/u-{by}.json"))
    jsonschema.validate(doc, schema)
    for r in doc["rows"]:
        want = (Decimal(r["base_quantity"]) / div[r["unit"]]).quantize(Decimal("1e-9"), ROUND_HALF_EVEN)
        if Decimal(r["quantity"]) != want or r["base_unit"].endswith("·s") != (r["unit"] in ("vCPU-hours", "GiB-hours", "instance-hours")):
            print("FAIL", by, r); bad += 1
sums = {(t, m): q for t, m, q in csv.reader(open(f"{w}/sums.csv"))}
for r in json.load(open(f"{w}/u-tenant.json"))["rows"]:
    if not r["base_unit"].endswith("·s") and sums.pop((r["tenant"], r["meter"])) != r["base_quantity"]:
        print("FAIL counter sum", r); bad += 1
if sums:
    print("FAIL counters missing from the JSON:", sums); bad += 1
print("ok   usage JSON valid for --by tenant, resource, hour; quantities exact decimal strings")
sys.exit(1 if bad else 0)
EOPY
then :; else fails=$((fails + 1)); fi
[ "$fails" -eq 0 ]
