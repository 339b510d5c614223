#!/bin/sh
# make demo: fast-forward the simulated fleet of config/demo.yaml through
# October 2026 into ./var/demo, then show what the ledger says per tenant:
# usage, invoices, object storage and floating IPs imported from a file, a
# one-off charge, the customer-ready invoice of one tenant (HTML and PDF),
# a credit note, the SLA report.
set -eu
B=${B:-build}
dir=./var/demo
rm -rf "$dir"
echo "== tallyd: simulated fleet, October 2026, fast-forward (config/demo.yaml)"
"$B/tallyd" -c config/demo.yaml
echo
echo "== tally usage --from 2026-10 --to 2026-10 (per tenant)"
"$B/tally" usage --ledger "$dir/ledger.db" --from 2026-10 --to 2026-10
echo
n=$(find "$dir/rrd" -name '*.rrd' 2>/dev/null | wc -l)
echo "== $n RRD files under $dir/rrd; one of them, read back by rrdtool:"
f=$(find "$dir/rrd" -name 'instance.rrd' 2>/dev/null | head -n 1)
if [ -n "$f" ]; then
	echo "$f"
	rrdtool fetch "$f" AVERAGE -r 3600 -s 1790812800 -e 1790827200 | head -n 6
fi
echo
echo "== tally invoice --period 2026-10 --plan config/plan-example.yaml (one per tenant, SLA credits included)"
"$B/tally" invoice --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml
"$B/tally" invoice --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml \
	--format csv --detail > "$dir/invoices-2026-10.csv"
"$B/tally" invoice --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml \
	--format json --detail > "$dir/invoices-2026-10.json"
"$B/tally" invoice --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml \
	--format html > "$dir/invoices-2026-10.html"
echo "(also as $dir/invoices-2026-10.csv and .json with the per-VM detail, and"
echo " $dir/invoices-2026-10.html: printable, with a usage chart per meter from the RRD files)"
echo
echo "== tally import: object storage and floating IPs from a file (config/demo-usage.csv; custom meters"
echo "   of config/demo.yaml), into the same hourly ledger rows; a second import counts nothing twice"
"$B/tally" import --config config/demo.yaml --ledger "$dir/ledger.db" --source rgw config/demo-usage.csv
"$B/tally" import --config config/demo.yaml --ledger "$dir/ledger.db" --source rgw config/demo-usage.csv
echo
echo "== tally charge add: a one-off workshop for tenant-01 in October"
"$B/tally" charge add --ledger "$dir/ledger.db" --tenant tenant-01 --period 2026-10 --amount 450.00 \
	--description "Migration workshop (1 day)"
echo
echo "== the invoice a finance team sends: tenant-01 (Globex B.V.), from a public price list"
echo "   (config/plan-demo.yaml) and its billing details (config/customers-demo.yaml): VMs, object"
echo "   storage imported from a file, floating IPs per month, a support fee, the workshop, SLA credits;"
echo "   reverse charge (no VAT, the legal note). As a draft, then issued and numbered:"
demo_inv() {
	"$B/tally" invoice --config config/demo.yaml --ledger "$dir/ledger.db" --period 2026-10 \
		--plan config/plan-demo.yaml --customers config/customers-demo.yaml --tenant tenant-01 "$@"
}
demo_inv
demo_inv --issue --date 2026-11-02 --format html > "$dir/invoice-tenant-01.html"
"$B/tally" invoice --ledger "$dir/ledger.db" show 1 > "$dir/invoice-tenant-01.json"
echo "issued: $(jq -r '.invoices[0] | .invoice_number + ", " + .invoice_date + ", due " + .due_date + ", total " + .total + " " + .currency' "$dir/invoice-tenant-01.json")"
echo "(as $dir/invoice-tenant-01.html, and the stored document $dir/invoice-tenant-01.json)"
if command -v chromium >/dev/null 2>&1; then
	chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir="$dir/chromium" --no-pdf-header-footer \
		--print-to-pdf="$dir/invoice-tenant-01.pdf" "file://$(realpath "$dir/invoice-tenant-01.html")" \
		> /dev/null 2>&1 && echo "(printed to PDF by headless Chromium: $dir/invoice-tenant-01.pdf)"
	rm -rf "$dir/chromium"
fi
echo
echo "== a credit note corrects it, never an edit: 25.00 of goodwill, with the invoice's tax treatment"
"$B/tally" invoice credit 1 --config config/demo.yaml --ledger "$dir/ledger.db" --reason "Goodwill: storage outage on 2026-10-14" \
	--amount 25.00 --date 2026-11-05
echo
echo "== tally sla --period 2026-10 (the plan's SLA classes; crashes are downtime, stops are not)"
"$B/tally" sla --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml
"$B/tally" sla --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml \
	--format html > "$dir/sla-2026-10.html"
echo "(also as $dir/sla-2026-10.html: one printable page)"
echo
echo "== tallyd: libvirt's test driver, live for 5 seconds (config/demo-libvirt.yaml); meanwhile the"
echo "   object store posts one usage event to it (POST /api/v1/events, schemas/events-api.md)"
live=./var/demo-libvirt
rm -rf "$live"
mkdir -p "$live"
"$B/tallyd" -q -c config/demo-libvirt.yaml 2>"$live/tallyd.log" &
pid=$!
port=
for i in $(seq 50); do
	port=$(sed -n 's/.*http: listening on .* port \([0-9]*\).*/\1/p' "$live/tallyd.log" | head -n 1)
	[ -n "$port" ] && break
	sleep 0.1
done
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
curl -sS -X POST -H "Authorization: Bearer demo-object-store-0123456789" -H "Content-Type: application/json" \
	--data "{\"events\": [{\"id\": \"rgw-demo-1\", \"tenant\": \"tenant-demo\", \"resource\": \"bucket:demo\",
	  \"meter\": \"storage.objects.requests\", \"time\": \"$now\", \"quantity\": 1200}]}" \
	"http://127.0.0.1:$port/api/v1/events"
echo
sleep 5
kill -TERM "$pid"
wait "$pid"
hour=$(date -u +%Y-%m-%dT%H:00:00Z)
next=$(date -u -d "$hour + 1 hour" +%Y-%m-%dT%H:00:00Z)
"$B/tally" usage --config config/demo-libvirt.yaml --ledger "$live/ledger.db" --from "$hour" --to "$next" --by resource
echo
echo "ledgers: $dir/ledger.db, $live/ledger.db (sqlite3 FILE .schema)"
echo "open in a browser: $(realpath "$dir/invoice-tenant-01.html")"
echo "                   $(realpath "$dir/invoices-2026-10.html")"
echo "                   $(realpath "$dir/sla-2026-10.html")"
echo
sh scripts/demo_split.sh
