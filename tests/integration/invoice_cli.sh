#!/bin/sh
# tally invoice from the command line: exit codes and messages for bad
# input (no invoice at all when the plan is wrong), the CSV read back and
# every usage line recomputed from the ledger by sqlite3 and Python's
# decimal module (independent of our arithmetic), the JSON validated
# against schemas/invoice.schema.json, and two runs byte-identical.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
PY=/usr/bin/python3
work=$(mktemp -d /tmp/tally-invoice-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
sim_ledger "$work/d" 2026-10-03T00:00:00Z 6 2 7
L=$work/d/ledger.db
cat > "$work/plan.yaml" <<EOP
plan: it
currency: EUR
tax:
  - {name: VAT, rate: 19%}
versions:
  - from: 2026-01-01
    prices:
      - {meter: vcpus, unit: vCPU-hour, price: 0.0125}
      - {meter: cpu, unit: CPU-hour, price: 0.0377}
      - {meter: network.outgoing.bytes, unit: GB, price: 0.0891}
EOP
printf 'plan: x\nversions:\n  - from: 2026-01-01\n    prices:\n      - {meter: cpu, unit: GB, price: 1}\n' > "$work/bad.yaml"

expect 2 "bad.yaml:1:1: missing 'currency'" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/bad.yaml"
if [ -s "$work/out" ]; then echo "FAIL: a bad plan printed an invoice"; fails=$((fails + 1)); fi
expect 2 "bad.yaml:5:28: unit 'GB' does not fit meter 'cpu'" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/bad.yaml"
expect 2 "tenant 'nobody' is not in the ledger" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --tenant nobody
expect 2 "--format 'xml'" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format xml
expect 2 "give --period or --from/--to, not both" "$TALLY" invoice --ledger "$L" --period 2026-10 --from 2026-10 --plan "$work/plan.yaml"
expect 2 "--period '2026-13'" "$TALLY" invoice --ledger "$L" --period 2026-13 --plan "$work/plan.yaml"
expect 1 "no ledger here" "$TALLY" invoice --ledger "$work/none.db" --period 2026-10 --plan "$work/plan.yaml"
expect 2 "cannot open" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/none.yaml"
expect 0 "NOTE     usage is recorded only up to 2026-10-03T00:00:00Z" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml"

"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format csv --detail > "$work/a.csv"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format csv --detail > "$work/b.csv"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format json --detail > "$work/a.json"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format json --detail > "$work/b.json"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" > "$work/a.txt"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" > "$work/b.txt"
for f in csv json txt; do
	if cmp -s "$work/a.$f" "$work/b.$f"; then echo "ok   two runs, identical $f"
	else echo "FAIL two runs differ in $f"; fails=$((fails + 1)); fi
done

# The ledger's own sums per tenant and meter, read by sqlite3.
sqlite3 -csv "$L" "SELECT ra.tenant, m.name, sum(u.quantity) FROM usage u JOIN meters m ON m.id = u.meter_id
  JOIN resource_attrs ra ON ra.resource_id = u.resource_id
  WHERE u.hour_ns >= 1790812800000000000 AND u.hour_ns < 1793491200000000000
  GROUP BY ra.tenant, m.name" > "$work/ledger.csv"

if "$PY" - "$work/a.csv" "$work/ledger.csv" "$work/a.json" schemas/invoice.schema.json <<'EOPY'
import csv, json, sys
from decimal import Decimal, ROUND_HALF_EVEN
import jsonschema

ours, ledger, js, schema = sys.argv[1:5]
# per unit: ledger quantity / units per billing unit, and the price
units = {"vcpus": (Decimal(3600), Decimal("0.0125")), "cpu": (Decimal(3600 * 10**9), Decimal("0.0377")),
         "network.outgoing.bytes": (Decimal(10**9), Decimal("0.0891"))}
truth = {}
for tenant, meter, q in csv.reader(open(ledger)):
    if meter in units:
        truth[(tenant, meter)] = Decimal(q) / units[meter][0]
rows = list(csv.DictReader(open(ours, newline="")))
bad = 0
sub = {}
lines = 0
for r in rows:
    if r["type"] == "usage":
        lines += 1
        want_q = truth.pop((r["tenant"], r["meter"]))
        want_a = (want_q * units[r["meter"]][1]).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        if Decimal(r["quantity"]) != want_q.quantize(Decimal("1e-9"), ROUND_HALF_EVEN) or Decimal(r["amount"]) != want_a:
            print("FAIL", r["tenant"], r["meter"], r["quantity"], r["amount"], "want", want_q, want_a); bad += 1
        sub[r["tenant"]] = sub.get(r["tenant"], Decimal(0)) + Decimal(r["amount"])
    elif r["type"] == "subtotal":
        if Decimal(r["amount"]) != sub.get(r["tenant"], 0):
            print("FAIL subtotal", r["tenant"], r["amount"], "lines sum to", sub.get(r["tenant"])); bad += 1
    elif r["type"] == "tax":
        want = (sub[r["tenant"]] * Decimal("0.19")).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        if Decimal(r["amount"]) != want:
            print("FAIL tax", r["tenant"], r["amount"], "want", want); bad += 1
if truth:
    print("FAIL ledger usage missing from the invoice:", truth); bad += 1
doc = json.load(open(js))
jsonschema.validate(doc, json.load(open(schema)))
for inv in doc["invoices"]:
    total = [r for r in rows if r["type"] == "total" and r["tenant"] == inv["tenant"]][0]["amount"]
    if inv["total"] != total:
        print("FAIL json total", inv["tenant"], inv["total"], "csv", total); bad += 1
print("ok  ", lines, "usage lines equal the ledger's sums x price (Decimal, half-even); JSON valid,",
      len(doc["invoices"]), "invoices")
sys.exit(1 if bad else 0)
EOPY
then :; else fails=$((fails + 1)); fi

# Issuing: refused while the period's data are incomplete; then issued,
# the stored document hashes (sha256sum, an independent implementation) to
# what the invoice says, a second issue is refused, and the ledger's
# triggers keep the stored invoice from changing.
expect 2 "usage is recorded only up to 2026-10-03T00:00:00Z" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --issue
expect 0 "INVOICE  it #1" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --issue --allow-incomplete
said=$(sed -n 's/^INVOICE  it #1 .*sha256 \([0-9a-f]*\)$/\1/p' "$work/out")
"$TALLY" invoice --ledger "$L" show 1 > "$work/doc1.json"
got=$(sha256sum < "$work/doc1.json" | cut -d' ' -f1)
if [ -n "$said" ] && [ "$said" = "$got" ]; then echo "ok   stored invoice #1 hashes to $got"
else echo "FAIL stored invoice #1: sha256sum $got, invoice says '$said'"; fails=$((fails + 1)); fi
expect 2 "already invoiced for 2026-10: it #1" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --issue --allow-incomplete
expect 0 "ledger rows (" "$TALLY" invoice --ledger "$L" explain 1 1
expect 2 "no issued invoice '9'" "$TALLY" invoice --ledger "$L" show 9
if sqlite3 "$L" "UPDATE invoices SET total_minor = 0" 2>"$work/err"; then
	echo "FAIL an issued invoice could be changed"; fails=$((fails + 1))
else
	echo "ok   UPDATE refused: $(cat "$work/err")"
fi
[ "$fails" -eq 0 ]
