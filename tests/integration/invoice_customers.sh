#!/bin/sh
# Invoices a finance team can send (issue 18, item 1): the issuer's
# details from the plan and the customers file on the invoice, the invoice
# and due dates, the invoice number once issued, the customer's tax
# treatment (reverse charge: no VAT, the legal note instead), and every
# operator mistake refused with its place and exit 2, nothing printed or
# issued. The CSV read back by Python's csv module: customer fields on
# every row, amounts decimal strings that add up. Credit notes from the
# command line.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
PY=/usr/bin/python3
work=$(mktemp -d /tmp/tally-customers-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
sim_ledger "$work/d" 2026-10-03T00:00:00Z 4 2 3
L=$work/d/ledger.db
cat > "$work/plan.yaml" <<'EOP'
plan: it
issuer:
  name: Example Cloud GmbH
  address: [Cloudstraße 1, 10115 Berlin, Germany]
  vat_id: DE987654321
  email: billing@example.cloud
  payment: [IBAN DE89 3704 0044 0532 0130 00]
  payment_terms: 30
  invoice_prefix: INV-2026-
currency: EUR
tax:
  - {name: VAT, rate: 19%}
versions:
  - from: 2026-01-01
    prices:
      - {meter: vcpus, unit: vCPU-hour, price: 0.0125}
    fees:
      - {name: support, amount: 50.00}
EOP
cat > "$work/customers.yaml" <<'EOC'
customers:
  tenant-00:
    name: Acme Widgets GmbH
    address: [Hauptstraße 1, 10115 Berlin]
    vat_id: DE123456789
    email: billing@acme.example
    tax: reverse-charge
    payment_terms: 14
    reference: PO-4711
  tenant-01:
    name: "Beta, Ltd"
    address: 1 High Street, London
EOC
printf 'customers:\n  tenant-00:\n    name: Acme\n    vatid: DE1\n' > "$work/typo.yaml"
printf 'customers:\n  tenant-00:\n    name: Acme\n    currency: USD\n' > "$work/usd.yaml"
printf 'customers:\n  tenant-00:\n    name: Acme\n' > "$work/one.yaml"

expect 2 "typo.yaml:4:5: unknown key 'vatid' in 'customer 'tenant-00''" \
	"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/typo.yaml"
if [ -s "$work/out" ]; then echo "FAIL: a bad customers file printed an invoice"; fails=$((fails + 1)); fi
expect 2 "tenant 'tenant-00' is billed in USD" \
	"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/usd.yaml"
expect 2 "cannot open" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/none.yaml"
expect 2 "--date '2026-11': expected a day" \
	"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --date 2026-11
expect 2 "tenant 'tenant-01' has no entry in" \
	"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/one.yaml" \
	--issue --allow-incomplete
n=$(sqlite3 "$L" "SELECT count(*) FROM invoices")
if [ "$n" = 0 ]; then echo "ok   nothing issued"; else echo "FAIL $n invoices issued"; fails=$((fails + 1)); fi
# a draft without a customers file is still a draft (no customer block)
expect 0 "DRAFT" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/one.yaml"

"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/customers.yaml" \
	--format csv > "$work/draft.csv"
expect 0 "INVOICE  Example Cloud GmbH #1" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" \
	--customers "$work/customers.yaml" --issue --allow-incomplete --date 2026-11-02
"$TALLY" invoice --ledger "$L" show 1 > "$work/doc1.json"
"$TALLY" invoice --ledger "$L" show 2 > "$work/doc2.json"

if "$PY" - "$work/doc1.json" "$work/doc2.json" "$work/draft.csv" <<'EOPY'
import csv, json, sys
from decimal import Decimal
bad = 0
def check(what, got, want):
    global bad
    if got != want:
        print("FAIL", what, repr(got), "want", repr(want)); bad += 1
a = json.load(open(sys.argv[1]))["invoices"][0]
b = json.load(open(sys.argv[2]))["invoices"][0]
check("number", a["invoice_number"], "INV-2026-1")
check("number 2", b["invoice_number"], "INV-2026-2")
check("date", a["invoice_date"], "2026-11-02")
check("due +14", a["due_date"], "2026-11-16")          # acme's terms
check("due +30", b["due_date"], "2026-12-02")          # the issuer's
check("customer", a["customer"]["name"], "Acme Widgets GmbH")
check("vat id", a["customer"]["vat_id"], "DE123456789")
check("reference", a["customer"]["reference"], "PO-4711")
check("issuer", a["issuer_details"]["vat_id"], "DE987654321")
check("treatment", a["tax_treatment"], "reverse-charge")
check("reverse charge: no tax", a["taxes"], [])
check("reverse charge: total = subtotal", a["total"], a["subtotal"])
if "Reverse charge" not in a.get("tax_note", ""):
    print("FAIL no reverse-charge note:", a.get("tax_note")); bad += 1
# beta is domestic: 19 % VAT on the subtotal, half-even to the cent
sub = Decimal(b["subtotal"])
check("VAT", Decimal(b["taxes"][0]["amount"]), (sub * Decimal("0.19")).quantize(Decimal("0.01")))
# the CSV, as a spreadsheet-like consumer reads it
rows = list(csv.DictReader(open(sys.argv[3], newline="")))
for r in rows:
    want = {"tenant-00": ("Acme Widgets GmbH", "DE123456789", "reverse-charge"),
            "tenant-01": ("Beta, Ltd", "", "domestic")}[r["tenant"]]
    check("csv customer", (r["customer_name"], r["customer_vat_id"], r["tax_treatment"]), want)
    check("csv dates", (r["invoice_date"], r["due_date"]),
          ("2026-11-01", "2026-11-15" if r["tenant"] == "tenant-00" else "2026-12-01"))
    Decimal(r["amount"])                                # a decimal string, or this raises
for t in ("tenant-00", "tenant-01"):
    lines = sum(Decimal(r["amount"]) for r in rows if r["tenant"] == t and r["type"] in ("usage", "fee"))
    total = [Decimal(r["amount"]) for r in rows if r["tenant"] == t and r["type"] == "total"][0]
    taxes = sum(Decimal(r["amount"]) for r in rows if r["tenant"] == t and r["type"] == "tax")
    check("csv total " + t, total, lines + taxes)
print("ok   parties, dates, numbers and tax treatment; CSV of %d rows with customer fields" % len(rows))
sys.exit(1 if bad else 0)
EOPY
then :; else fails=$((fails + 1)); fi
# Credit notes from the command line (tally invoice credit): refused
# without a reason or past what is left (exit 2); the whole invoice
# credited, its period issued again; the stored note shown as HTML.
expect 2 "needs a --reason" "$TALLY" invoice --ledger "$L" credit 1 --reason ""
expect 2 "is more than is left to credit" "$TALLY" invoice --ledger "$L" credit 1 --reason x --amount 1000000
expect 2 "no issued invoice '7'" "$TALLY" invoice credit 7 --ledger "$L" --reason x
expect 0 "CREDIT NOTE  CN-1" "$TALLY" invoice --ledger "$L" credit 1 --reason "wrong customer address"
expect 2 "cancelled by a credit note already" "$TALLY" invoice --ledger "$L" credit 1 --reason again
expect 0 "INVOICE  Example Cloud GmbH #3" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" \
	--customers "$work/customers.yaml" --issue --allow-incomplete --tenant tenant-00
expect 0 "Credit note <span class=\"number\">CN-1</span>" "$TALLY" invoice --ledger "$L" credit show 1 --format html
expect 2 "no credit note '2'" "$TALLY" invoice --ledger "$L" credit show 2
[ "$fails" -eq 0 ]
