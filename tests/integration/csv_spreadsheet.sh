#!/bin/sh
# CSV that a spreadsheet opens safely (issue 9, OWASP's CSV injection rule):
# VM display names and a tenant name chosen to be formulas (=1+41,
# @SUM(1+1), +2+3, -4+5, =HYPERLINK(...)) go through `tally invoice --format
# csv --detail` and `tally usage --format csv --by resource`; LibreOffice
# Calc (headless, a real spreadsheet engine) converts each CSV to xlsx and
# the sheet must hold no formula (<f> element), the hostile cells as text,
# and tally's own amounts (some negative, like -0.05) as numbers. A control
# CSV written here with a bare =1+41 shows the engine does evaluate
# formulas (it becomes 42), so the check can fail. Python's csv module
# then checks the rule cell by cell and that the files are RFC 4180.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
PY=/usr/bin/python3
command -v soffice >/dev/null || { echo "soffice (libreoffice-calc-nogui) is not installed: make deps installs it"; exit 77; }
work=$(mktemp -d /tmp/tally-csv-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
sim_ledger "$work/d" 2026-10-02T00:00:00Z 5 2 3
L=$work/d/ledger.db
# names a tenant controls (the ledger is ours to change: a test fixture)
sqlite3 "$L" "UPDATE resources SET name = CASE id % 5 WHEN 0 THEN '=1+41' WHEN 1 THEN '@SUM(1+1)'
  WHEN 2 THEN '+2+3' WHEN 3 THEN '-4+5' ELSE '=HYPERLINK(\"http://example.invalid/\",\"x\")' END;
  UPDATE resource_attrs SET tenant = '=2+40' WHERE tenant = 'tenant-01'"
cat > "$work/plan.yaml" <<EOP
plan: csv
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - {meter: vcpus, unit: vCPU-hour, price: 0.0125}
      - {meter: network.outgoing.bytes, unit: GB, price: 0.09}
tenants:
  tenant-00:
    discount: 50%
EOP
"$TALLY" invoice --ledger "$L" --period 2026-10-01 --plan "$work/plan.yaml" --format csv --detail > "$work/invoice.csv"
"$TALLY" usage --ledger "$L" --from 2026-10-01 --to 2026-10-01 --by resource --format csv > "$work/usage.csv"
printf 'a,b\r\n=1+41,-0.05\r\n' > "$work/control.csv"

for f in control invoice usage; do
	soffice -env:UserInstallation=file://$work/lo --headless --norestore --convert-to xlsx --outdir "$work" \
		"$work/$f.csv" > "$work/soffice.log" 2>&1 || { cat "$work/soffice.log"; exit 1; }
done

if "$PY" - "$work" <<'EOPY'
import csv, re, sys, zipfile
from decimal import Decimal
w = sys.argv[1]
bad = 0
def sheet(name):
    z = zipfile.ZipFile(f"{w}/{name}.xlsx")
    xml = z.read("xl/worksheets/sheet1.xml").decode()
    strings = re.findall(r"<si>(.*?)</si>", z.read("xl/sharedStrings.xml").decode(), re.S)
    strings = [re.sub(r"<[^>]+>", "", s).replace("&apos;", "'").replace("&quot;", '"').replace("&amp;", "&") for s in strings]
    cells = {}
    for ref, attrs, body in re.findall(r'<c r="([A-Z]+[0-9]+)"([^>]*?)(?:/>|>(.*?)</c>)', xml, re.S):
        t = re.search(r't="(\w+)"', attrs)
        v = re.search(r"<v>(.*?)</v>", body or "")
        typ = t.group(1) if t else "n"
        val = v.group(1) if v else ""
        if typ == "s" and val:
            val = strings[int(val)]
        cells[ref] = (typ, val, "<f" in (body or ""))
    return cells
# the control: the engine evaluates a bare formula
c = sheet("control")
if not (c["A2"][2] and c["A2"][1] == "42"):
    print("FAIL the control =1+41 was not evaluated by the engine:", c.get("A2")); bad += 1
for name in ("invoice", "usage"):
    cells = sheet(name)
    rows = list(csv.reader(open(f"{w}/{name}.csv", newline="")))
    header = rows[0]
    formulas = [r for r, (t, v, f) in cells.items() if f]
    if formulas:
        print("FAIL", name, "has formulas in", formulas[:5]); bad += 1
    hostile = sum(1 for r in rows[1:] for x in r if x[:1] == "'")
    if hostile < 5:
        print("FAIL", name, "carries only", hostile, "neutralised cells (the names did not reach it)"); bad += 1
    numeric = {"amount", "quantity", "unit_price", "base_quantity", "covered_seconds", "spanned_seconds", "samples"}
    for i, r in enumerate(rows[1:], start=2):
        for j, x in enumerate(r):
            col = header[j]
            ref = "".join(chr(65 + k) for k in ([j] if j < 26 else [j // 26 - 1, j % 26])) + str(i)
            typ, val, f = cells.get(ref, ("n", "", False))
            if col in numeric and x not in ("", "tiered"):
                Decimal(x)
                if typ != "n" or Decimal(val) != Decimal(x):
                    print("FAIL", name, ref, col, repr(x), "is not the number", (typ, val)); bad += 1
            elif x[:1] in ("=", "+", "-", "@", "\t", "\r"):
                # our times and words never start so: only a name could, and it must be neutralised
                print("FAIL", name, ref, col, "text cell starts like a formula:", repr(x)); bad += 1
            elif x[:1] == "'" and (typ != "s" or val != x):
                print("FAIL", name, ref, col, repr(x), "did not stay text:", (typ, val)); bad += 1
    neg = [x for r in rows[1:] for j, x in enumerate(r) if header[j] == "amount" and x.startswith("-")]
    print("ok  ", name, len(rows) - 1, "rows,", hostile, "neutralised cells, no formula;",
          len(neg), "negative amounts kept as numbers")
    if name == "invoice" and not neg:
        print("FAIL no negative amount (the discount) to check"); bad += 1
sys.exit(1 if bad else 0)
EOPY
then :; else fails=$((fails + 1)); fi
[ "$fails" -eq 0 ]
