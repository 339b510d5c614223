#!/bin/sh
# make demo: fast-forward the simulated fleet of config/demo.yaml through
# October 2026 into ./var/demo, then show what the ledger says per tenant.
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
echo "== tally sla --period 2026-10 (the plan's SLA classes; crashes are downtime, stops are not)"
"$B/tally" sla --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml
"$B/tally" sla --ledger "$dir/ledger.db" --period 2026-10 --plan config/plan-example.yaml \
	--format html > "$dir/sla-2026-10.html"
echo "(also as $dir/sla-2026-10.html: one printable page)"
echo
echo "== tallyd: libvirt's test driver, live for 5 seconds (config/demo-libvirt.yaml)"
live=./var/demo-libvirt
rm -rf "$live"
"$B/tallyd" -q -c config/demo-libvirt.yaml &
pid=$!
sleep 5
kill -TERM "$pid"
wait "$pid"
hour=$(date -u +%Y-%m-%dT%H:00:00Z)
next=$(date -u -d "$hour + 1 hour" +%Y-%m-%dT%H:00:00Z)
"$B/tally" usage --ledger "$live/ledger.db" --from "$hour" --to "$next" --by resource
echo
echo "ledgers: $dir/ledger.db, $live/ledger.db (sqlite3 FILE .schema)"
echo "open in a browser: $(realpath "$dir/invoices-2026-10.html")"
echo "                   $(realpath "$dir/sla-2026-10.html")"
echo
sh scripts/demo_split.sh
