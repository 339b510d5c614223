#!/bin/sh
# The HTML invoice in a real browser: headless Chromium (Debian's package)
# loads the page tally wrote; a script added to a copy of the page reports,
# after the load, every chart image's state and the text of every line,
# subtotal and total. Each must match the same invoice as JSON (its line
# descriptions and amounts), every image must have loaded (decoded, with a
# width), and a screenshot is kept as a test artifact in $B/test-artifacts/.
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
sim_ledger "$work/d" 2026-10-04T00:00:00Z 6 2 5 true
L=$work/d/ledger.db
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan config/plan-example.yaml --format html > "$work/inv.html"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan config/plan-example.yaml --format json > "$work/inv.json"

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

in_chromium "$work/inv.html" "$work/got.json" <<'EOJS'
  var imgs = Array.prototype.slice.call(document.images);
  return {
    images: imgs.length,
    loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    invoices: Array.prototype.map.call(document.querySelectorAll('section.invoice'), function (s) {
      return {
        tenant: s.querySelector('.tenant').textContent,
        lines: Array.prototype.map.call(s.querySelectorAll('tr.line'), function (tr) {
          var td = tr.querySelectorAll('td');
          return [td[1].textContent, td[5].textContent];
        }),
        total: s.querySelector('tr.total td.n').textContent
      };
    })
  };
EOJS
# shellcheck disable=SC2086
timeout 120 "$CHROMIUM" $flags --window-size=1100,3000 --screenshot="$art/invoice.png" "file://$work/inv.html" \
	> /dev/null 2>> "$work/chromium.log" || { echo "chromium screenshot failed"; exit 1; }
echo "screenshot: $art/invoice.png"

"$PY" - "$work/got.json" "$work/inv.json" <<'EOPY'
import json, sys
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))["invoices"]
bad = 0
if got["images"] == 0 or got["loaded"] != got["images"]:
    print("FAIL images: %d of %d loaded" % (got["loaded"], got["images"])); bad += 1
if len(got["invoices"]) != len(want):
    print("FAIL %d invoices on the page, %d in JSON" % (len(got["invoices"]), len(want))); bad += 1
for page, inv in zip(got["invoices"], want):
    if page["tenant"] != inv["tenant"]:
        print("FAIL tenant", page["tenant"], "vs", inv["tenant"]); bad += 1
    rows = [(l["description"] + (" [%s]" % l["selector"] if l.get("selector") else ""), l["amount"]) for l in inv["lines"]]
    if [tuple(x) for x in page["lines"]] != rows:
        print("FAIL lines of", inv["tenant"], page["lines"], "want", rows); bad += 1
    if page["total"] != inv["total"]:
        print("FAIL total of", inv["tenant"], page["total"], "want", inv["total"]); bad += 1
print("ok   %d invoices, %d lines, %d of %d charts loaded in Chromium" %
      (len(got["invoices"]), sum(len(i["lines"]) for i in got["invoices"]), got["loaded"], got["images"]))
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
