#!/bin/sh
# The HTML invoice in a real browser: headless Chromium (Debian's package)
# loads the page tally wrote; a script added to a copy of the page reports,
# after the load, every chart image's state and the text of every line,
# subtotal, tax and total, the issuer's and the customer's blocks and the
# columns. Each must match the same invoice as JSON (descriptions, amounts,
# the tax note), every quantity must be the exact ledger quantity (JSON's
# base_quantity) over its unit, rounded half-even to the unit's display
# places written down by hand, no internal column or text may show by
# default (and --detail must show them), and every image must have loaded.
# Chromium prints the page to PDF and pdftotext reads the customer and the
# total back; a screenshot and the PDF are kept in $B/test-artifacts/.
# Then the SLA report's page (tally sla --format html) the same way.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
PY=/usr/bin/python3
CHROMIUM=$(command -v chromium || true)
if [ -z "$CHROMIUM" ]; then
	echo "chromium is not installed (scripts/deps.sh installs it): cannot render the HTML invoice" >&2
	exit 1
fi
work=$(mktemp -d /tmp/tally-html-XXXXXX)
trap 'rm -rf "$work"' EXIT
art=$PWD/$B/test-artifacts
mkdir -p "$art"
. tests/lib/cli.sh
# under ASan: librrd's graphing keeps caches for good (tests/lsan-librrd.supp);
# the full unwind lets the suppression see rrd_graph_v on the stack
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan-librrd.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
sim_ledger "$work/d" 2026-10-04T00:00:00Z 6 2 5 true 1
L=$work/d/ledger.db
# a plan with every way a price makes an amount: per unit, graduated tiers
# after a free allowance, volume tiers, blocks, a per-month unit; an
# issuer with its details and customers with theirs (issue 18)
cat > "$work/plan.yaml" <<'EOP'
plan: html
issuer:
  name: Example Cloud GmbH
  address: [Cloudstraße 1, 10115 Berlin, Germany]
  vat_id: DE987654321
  email: billing@example.cloud
  payment: [IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX]
  invoice_prefix: INV-
currency: EUR
tax:
  - {name: VAT, rate: 19%}
versions:
  - from: 2026-01-01
    prices:
      - {meter: vcpus, unit: vCPU-hour, select: {flavor: m1.small}, price: 0.0125}
      - {meter: vcpus, unit: vCPU-hour, select: {flavor: m1.medium}, price: 0.012, description: "vCPUs, medium"}
      - {meter: vcpus, unit: vCPU-hour, select: {flavor: m1.large}, price: 0.011}
      - {meter: memory, unit: GiB-hour, price: 0.004}
      - {meter: disk.device.capacity, unit: GiB-month, price: 0.05, description: Block storage (SSD)}
      - {meter: disk.device.read.requests, unit: request-million, price: 0.40}
      - meter: disk.device.read.bytes
        unit: GB
        mode: volume
        tiers: [{up_to: 100, price: 0.02}, {price: 0.01}]
      - meter: network.outgoing.bytes
        unit: GB
        free: 10
        mode: graduated
        tiers: [{up_to: 200, price: 0.09}, {price: 0.05}]
      - {meter: instance, unit: instance-hour, block: 24, price: 0.50}
    fees:
      - {name: Support, amount: 50.00}
sla:
  classes:
    - name: standard
      target: 99.95%
      credits: [{below: 99.95%, credit: 10%}, {below: 99%, credit: 25%}]
EOP
cat > "$work/customers.yaml" <<'EOC'
customers:
  tenant-00:
    name: Acme Widgets GmbH
    address: [Hauptstraße 1, 10115 Berlin]
    vat_id: DE123456789
    tax: reverse-charge
  tenant-01:
    name: Beta & Sons Ltd
    address: [1 High Street, London]
EOC
inv() { "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --customers "$work/customers.yaml" "$@"; }
inv --format html > "$work/inv.html"
inv --format html --detail > "$work/detail.html"
inv --format json > "$work/inv.json"
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
 --disable-component-update --disable-sync --hide-scrollbars --user-data-dir=$work/chromium"
# in_chromium PAGE OUT: PAGE as tally wrote it, plus a reporter that runs
# after the load: the body of a function (on stdin) whose result, as JSON,
# the page shows in <pre id="tally-check">; Chromium dumps the DOM and OUT
# gets that JSON.
in_chromium() {
	{ sed 's|</body></html>||' "$1"
	  echo "<script>"
	  echo "window.addEventListener('load', function () {"
	  echo "  var r = (function () {"
	  cat
	  echo "  })();"
	  echo "  var pre = document.createElement('pre');"
	  echo "  pre.id = 'tally-check';"
	  echo "  pre.textContent = JSON.stringify(r);"
	  echo "  document.body.appendChild(pre);"
	  echo "});"
	  echo "</script>"
	  echo "</body></html>"; } > "$work/check.html"
	# shellcheck disable=SC2086
	timeout 120 "$CHROMIUM" $flags --virtual-time-budget=5000 --dump-dom "file://$work/check.html" \
		> "$work/dom.html" 2>> "$work/chromium.log" || { echo "chromium failed:"; tail -n 5 "$work/chromium.log"; exit 1; }
	"$PY" - "$work/dom.html" > "$2" <<'EOPY'
import html, re, sys
m = re.search(r'<pre id="tally-check">(.*?)</pre>', open(sys.argv[1]).read(), re.S)
if not m:
    print("FAIL the page's reporter did not run", file=sys.stderr); sys.exit(1)
print(html.unescape(m.group(1)))
EOPY
}

# what the page shows, read in the browser after the load
cat > "$work/reporter.js" <<'EOJS'
  var imgs = Array.prototype.slice.call(document.images);
  var txt = function (e) { return e ? e.textContent : null; };
  return {
    images: imgs.length,
    loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    internal: document.querySelectorAll('.internal').length,
    text: document.body.innerText,
    invoices: Array.prototype.map.call(document.querySelectorAll('section.invoice'), function (s) {
      return {
        tenant: txt(s.querySelector('.tenant')),
        issuer: txt(s.querySelector('.party.issuer .name')),
        customer: txt(s.querySelector('.party.customer .name')),
        vat: txt(s.querySelector('.party.customer .vat')),
        heads: Array.prototype.map.call(s.querySelectorAll('table.lines thead th'), txt),
        lines: Array.prototype.map.call(s.querySelectorAll('tr.line'), function (tr) {
          return [txt(tr.querySelector('td.desc')), txt(tr.querySelector('td.qty')),
                  txt(tr.querySelector('td.unit')), txt(tr.querySelector('td.amount'))];
        }),
        calc: s.querySelectorAll('tr.calc').length,
        tiers: Array.prototype.map.call(s.querySelectorAll('tr.calc td.tier'), txt),
        credits: s.querySelectorAll('tbody.credits tr.line').length,
        subtotal: txt(s.querySelector('tr.subtotal td.n')),
        taxes: Array.prototype.map.call(s.querySelectorAll('tr.tax td.n'), txt),
        total: txt(s.querySelector('tr.total td.n')),
        taxnote: txt(s.querySelector('.taxnote'))
      };
    })
  };
EOJS
in_chromium "$work/inv.html" "$work/got.json" < "$work/reporter.js"
in_chromium "$work/detail.html" "$work/got-detail.json" < "$work/reporter.js"
# shellcheck disable=SC2086
timeout 120 "$CHROMIUM" $flags --window-size=1100,3000 --screenshot="$art/invoice.png" "file://$work/inv.html" \
	> /dev/null 2>> "$work/chromium.log" || { echo "chromium screenshot failed"; exit 1; }
echo "screenshot: $art/invoice.png"
# the printable form: Chromium prints it to PDF (A4), pdftotext reads it back
# shellcheck disable=SC2086
timeout 120 "$CHROMIUM" $flags --no-pdf-header-footer --print-to-pdf="$art/invoice.pdf" "file://$work/inv.html" \
	> /dev/null 2>> "$work/chromium.log" || { echo "chromium print-to-pdf failed"; exit 1; }
pdftotext -layout "$art/invoice.pdf" "$work/pdf.txt"
echo "pdf: $art/invoice.pdf ($(pdfinfo "$art/invoice.pdf" | sed -n 's/^Pages: *//p') pages)"

"$PY" - "$work/got.json" "$work/inv.json" "$work/got-detail.json" "$work/pdf.txt" <<'EOPY'
import json, sys
from decimal import Decimal, ROUND_HALF_EVEN
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))["invoices"]
detail = json.load(open(sys.argv[3]))
pdf = open(sys.argv[4]).read()
bad = 0
def fail(*a):
    global bad
    print("FAIL", *a); bad += 1
# one billing unit in ledger units (schemas/plan.md), and the places an
# invoice shows it with, written down by hand; October has 2678400 s
S = 31 * 86400
units = {"vCPU-hour": (3600, 2), "GiB-hour": (2**30 * 3600, 2), "GiB-month": (2**30 * S, 4),
         "request-million": (10**6, 3), "GB": (10**9, 3), "instance-hour": (3600, 2)}
human = {"request-million": "million requests"}
if got["images"] == 0 or got["loaded"] != got["images"]:
    fail("images: %d of %d loaded" % (got["loaded"], got["images"]))
if got["internal"] != 0:
    fail("%d internal elements in the default view" % got["internal"])
for word in ("Data", "flavor=", "network.outgoing.bytes", "files)", "100.0%", "SHA-256", "rrdtool"):
    if word in got["text"]:
        fail("the default view shows internal text %r" % word)
if detail["internal"] == 0 or "Selector" not in detail["invoices"][0]["heads"]:
    fail("--detail shows no internal column")
if len(got["invoices"]) != len(want):
    fail("%d invoices on the page, %d in JSON" % (len(got["invoices"]), len(want)))
calc = 0
for page, inv in zip(got["invoices"], want):
    t = inv["tenant"]
    if page["heads"] != ["Description", "Quantity", "Unit", "Unit price", "Amount"]:
        fail(t, "columns", page["heads"])
    if page["tenant"] != t:
        fail("tenant", page["tenant"], "vs", t)
    if page["issuer"] != inv["issuer_details"]["name"] or page["customer"] != inv["customer"]["name"]:
        fail(t, "parties", page["issuer"], page["customer"])
    rows = []
    for l in inv["lines"]:
        q, u = "", ""
        if l["type"] == "usage":
            ratio, places = units[l["unit"]]
            exact = Decimal(l["base_quantity"]) / Decimal(ratio)   # a gauge: unit-seconds
            q = str(exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)) if places else str(exact.quantize(Decimal(1)))
            u = human.get(l["unit"], l["unit"])
        rows.append([l["description"], q, u, l["amount"]])
    if [[x or "" for x in r] for r in page["lines"]] != rows:
        fail("lines of", t, page["lines"], "want", rows)
    if page["subtotal"] != inv["subtotal"] or page["total"] != inv["total"]:
        fail(t, "totals", page["subtotal"], page["total"], "want", inv["subtotal"], inv["total"])
    if page["taxes"] != [x["amount"] for x in inv["taxes"]]:
        fail(t, "taxes", page["taxes"], [x["amount"] for x in inv["taxes"]])
    if (page["taxnote"] or "") != inv.get("tax_note", ""):
        fail(t, "tax note", page["taxnote"])
    calc += page["calc"]
    # each tier row names its tier's bounds as the plan above gives them
    # (graduated egress: up to 200 GB, then the rest; volume reads: up to
    # 100 GB, then the rest), and the JSON's bounds are those too
    plan_bounds = {"network.outgoing.bytes": [("0", "200"), ("200", None)],
                   "disk.device.read.bytes": [("0", "100"), ("100", None)]}
    want_tiers = []
    for l in inv["lines"]:
        for tr in l.get("tiers") or []:
            f = format(Decimal(tr["from"]).normalize(), "f")
            u = None if tr["up_to"] is None else format(Decimal(tr["up_to"]).normalize(), "f")
            if (f, u) not in plan_bounds.get(l["meter"], []):
                fail(t, l["meter"], "tier bounds in JSON", tr["from"], tr["up_to"])
            w = ("first %s GB" % u if f == "0" and u is not None else "over %s up to %s GB" % (f, u)
                 if u is not None else "over %s GB" % f)
            want_tiers.append(("all at the price for " if l["meter"] == "disk.device.read.bytes" else "") + w)
    if page["tiers"] != want_tiers:
        fail(t, "tier rows", page["tiers"], "want", want_tiers)
    tier_rows = globals().get("tier_rows", 0) + len(want_tiers)
    globals()["tier_rows"] = tier_rows
    for s in (inv["customer"]["name"], inv["total"]):
        if s not in pdf:
            fail(t, "the PDF lacks", repr(s))
if calc == 0:
    fail("no allowance, tier or block row under any line")
if globals().get("tier_rows", 0) == 0:
    fail("no tier row under any line")
credits = sum(p["credits"] for p in got["invoices"])
want_credits = sum(1 for i in want for l in i["lines"] if l["type"] == "credit")
if want_credits == 0 or credits != want_credits:
    fail("SLA credits in their own section: %d on the page, %d in JSON" % (credits, want_credits))
print("ok   %d invoices, %d lines, %d calculation rows, %d SLA credits apart, %d of %d charts loaded in Chromium;"
      " PDF has them" % (len(got["invoices"]), sum(len(i["lines"]) for i in got["invoices"]), calc, credits,
                         got["loaded"], got["images"]))
sys.exit(1 if bad else 0)
EOPY

# The SLA report's page, in the same browser: a row per VM (name,
# availability, credit) and the fleet's summary must be those of the same
# report as JSON, which test_sla and api_billing.sh check against hand
# work and the API.
sim_ledger "$work/s" 2026-10-04T00:00:00Z 6 2 5 false 1
"$TALLY" sla --ledger "$work/s/ledger.db" --period 2026-10 --plan config/plan-example.yaml --format html > "$work/sla.html"
"$TALLY" sla --ledger "$work/s/ledger.db" --period 2026-10 --plan config/plan-example.yaml --format json > "$work/sla.json"
in_chromium "$work/sla.html" "$work/sla-got.json" <<'EOJS'
  var t = function (e, sel) { return e.querySelector(sel).textContent; };
  return {
    vms: Array.prototype.map.call(document.querySelectorAll('tr.vm'), function (tr) {
      return [t(tr, 'td.name'), t(tr, 'td.avail'), t(tr, 'td.credit')];
    }),
    incidents: document.querySelectorAll('tr.incident').length,
    fleet: [t(document, 'tr.total .vms'), t(document, 'tr.total td.avail')]
  };
EOJS
"$PY" - "$work/sla-got.json" "$work/sla.json" <<'EOPY'
import json, sys
got = json.load(open(sys.argv[1]))
rep = json.load(open(sys.argv[2]))
want = [[v["name"], v["availability_percent"], v["credit_percent"]] for v in rep["vms"]]
bad = 0
if got["vms"] != want:
    print("FAIL SLA rows", got["vms"], "want", want); bad += 1
n_inc = sum(len(v["incidents"]) for v in rep["vms"])
if got["incidents"] != n_inc:
    print("FAIL %d incident rows, %d in JSON" % (got["incidents"], n_inc)); bad += 1
if got["fleet"] != [str(rep["fleet"]["vms"]), rep["fleet"]["availability_percent"]]:
    print("FAIL fleet", got["fleet"], "want", rep["fleet"]); bad += 1
if n_inc == 0:
    print("FAIL the fleet had no incident: nothing to show"); bad += 1
print("ok   SLA page: %d VMs, %d incidents, fleet %s %% in Chromium" % (len(got["vms"]), got["incidents"], got["fleet"][1]))
sys.exit(1 if bad else 0)
EOPY
