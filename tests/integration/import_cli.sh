#!/bin/sh
# Custom meters, tally import and tally charge from the command line
# (issue 18, item 4): tallyd -n accepts a good meters: section and refuses
# a bad one with its place; a plan that prices a custom meter needs the
# config; events land in the ledger (an event seen twice counts once, a
# late one for an invoiced period is said to be an adjustment), a bad
# event file is refused with its place and nothing is booked, a ledger
# whose writer's lock is held (flock(1), as a running tallyd holds it) is
# refused with exit 1; a charge for an issued period is refused, exit 2;
# two events that each fit a row but together pass 2^63 - 1 are refused
# with the second one's place, exit 2.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-import-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
sim_ledger "$work/d" 2026-10-02T00:00:00Z 2 1 3
L=$work/d/ledger.db
cat > "$work/tally.yaml" <<EOC
tallyd:
  data_dir: $work/d
collectors:
  sim: {vms: 1}
meters:
  - {name: storage.objects.size, kind: gauge, unit: B, title: Object storage}
  - {name: network.floatingip, kind: gauge, unit: IP, title: Floating IP}
EOC
printf 'collectors:\n  sim: {vms: 1}\nmeters:\n  - {name: cpu, kind: counter, unit: ns, title: X}\n' > "$work/bad.yaml"
cat > "$work/plan.yaml" <<'EOP'
plan: imp
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - {meter: storage.objects.size, unit: GiB-month, price: 0.023}
      - {meter: network.floatingip, unit: IP-month, price: 3.50}
EOP
expect 0 "" "$TALLYD" -n -c "$work/tally.yaml"
expect 2 "bad.yaml:4:12: key 'name': 'cpu' is a built-in meter" "$TALLYD" -n -c "$work/bad.yaml"
expect 2 "unknown meter 'storage.objects.size'" "$TALLY" plan check "$work/plan.yaml"
expect 0 "" "$TALLY" plan check --config "$work/tally.yaml" "$work/plan.yaml"
export TALLY_CONFIG="$work/tally.yaml"
expect 0 "" "$TALLY" plan check "$work/plan.yaml"

cat > "$work/ev.csv" <<'EOV'
id,tenant,resource,meter,time,end,quantity,name
s3-1,tenant-00,bucket:backups,storage.objects.size,2026-10-01T00:00:00Z,2026-10-16T00:00:00Z,10737418240,backups
fip-1,tenant-00,fip:203.0.113.10,network.floatingip,2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,1,203.0.113.10
EOV
printf 'id,tenant,resource,meter,time,end,quantity\nx,tenant-00,b,storage.objects.size,2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,-1\n' > "$work/neg.csv"
expect 2 "neg.csv:2:78: 'quantity': -1 is negative" "$TALLY" import --ledger "$L" "$work/neg.csv"
printf 'id,tenant,resource,meter,time,quantity\nx,tenant-00,b,objects,2026-10-01T00:00:00Z,1\n' > "$work/unk.csv"
expect 2 "unk.csv:2:15: 'meter': unknown meter 'objects'" "$TALLY" import --ledger "$L" "$work/unk.csv"
# each fits a row, both in one: 2^62 B-s for a second, twice in one hour,
# is 2^63, one past what a row holds exactly
printf 'id,tenant,resource,meter,time,end,quantity\nbig1,tenant-00,b,storage.objects.size,2026-10-01T00:00:00Z,2026-10-01T00:00:01Z,4611686018427387904\nbig2,tenant-00,b,storage.objects.size,2026-10-01T00:00:01Z,2026-10-01T00:00:02Z,4611686018427387904\n' > "$work/big.csv"
expect 2 "big.csv:3:1: event 'big2': $L: the usage of resource" "$TALLY" import --ledger "$L" "$work/big.csv"
n=$(sqlite3 "$L" "SELECT count(*) FROM usage_events")
[ "$n" = 0 ] && ok "nothing booked from bad files" || bad "$n events booked from bad files"
# the writer's lock held, as a running tallyd holds it
flock "$L.lock" sh -c "echo \$\$ > '$work/holder'; exec sleep 30" &
i=0
until [ -s "$work/holder" ] || [ $i -ge 50 ]; do i=$((i + 1)); sleep 0.1; done
expect 1 "the ledger has a writer already" "$TALLY" import --ledger "$L" "$work/ev.csv"
kill "$(cat "$work/holder")" 2>/dev/null || true
wait 2>/dev/null || true
expect 0 "imported 2 events" "$TALLY" import --ledger "$L" --source rgw "$work/ev.csv"
expect 0 "2 events were imported before: counted once" "$TALLY" import --ledger "$L" --source rgw "$work/ev.csv"
expect 0 "ok:" "$TALLY" ledger verify --ledger "$L"
# 10 GiB for 15 of October's 31 days: 15/31 = 0.483870968 GiB-month x 10
# = 4.838709677; the IP all month: 1 IP-month
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format json > "$work/inv.json"
q=$(jq -r '.invoices[0].lines[] | select(.meter == "storage.objects.size") | .quantity' "$work/inv.json")
[ "$q" = "4.838709677" ] && ok "object storage: $q GiB-month" || bad "object storage: '$q' GiB-month, want 4.838709677"
q=$(jq -r '.invoices[0].lines[] | select(.meter == "network.floatingip") | .amount' "$work/inv.json")
[ "$q" = "3.50" ] && ok "floating IP: $q" || bad "floating IP: '$q', want 3.50"
# a charge; October issued; a charge and a late event for it then
expect 0 "charge #1" "$TALLY" charge add --ledger "$L" --tenant tenant-00 --period 2026-10 --amount 150.00 \
	--description "Onboarding workshop"
expect 2 "--amount 'x'" "$TALLY" charge add --ledger "$L" --tenant tenant-00 --period 2026-10 --amount x --description y
expect 0 "INVOICE  imp #1" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --issue --allow-incomplete
expect 2 "is invoiced for that period already (imp #1)" "$TALLY" charge add --ledger "$L" --tenant tenant-00 \
	--period 2026-10-20 --amount 5.00 --description late
printf 'id,tenant,resource,meter,time,end,quantity\ns3-2,tenant-00,bucket:backups,storage.objects.size,2026-10-16T00:00:00Z,2026-10-17T00:00:00Z,1073741824000\n' > "$work/late.csv"
expect 0 "1 event falls in periods already invoiced" "$TALLY" import --ledger "$L" --source rgw "$work/late.csv"
expect 0 "usage for 2026-10 recorded after imp #1 was issued" "$TALLY" invoice --ledger "$L" --period 2026-11 \
	--plan "$work/plan.yaml" --tenant tenant-00
[ "$fails" -eq 0 ]
