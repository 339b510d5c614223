#!/bin/sh
# A delta meter's negative correction (docs/meters.md: "it may be
# negative"): booked alone in its hour, its row is below zero. Before, every
# `tally usage` and `tally invoice` over that hour stopped (exit 1, "the
# ledger's quantity '-3' is negative") for every tenant. Now the rows net
# within the period; a line whose period nets below zero is refused (exit
# 2, the tenant and the net named), never priced. Expected values by hand:
#   October, t1: +10 seats (5 Oct 13:00) and -3 (20 Oct 09:00) = 7 seats;
#     the price: 2 free, then graduated, the first 4 at 1.00, the rest at
#     0.50: 7 - 2 = 5 charged: 4 x 1.00 + 1 x 0.50 = 4.50 EUR.
#   October, t2: +1 seat, within the allowance: 0.00.
#   November, t1: -4 alone: nets to -4: refused; t2 (+2, free) alone: 0.00;
#     once t1's correction is itself corrected (+4 in the same hour), t1
#     nets to 0: 0.00, and the whole run goes through.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-delta-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
command -v jq >/dev/null || { echo "jq missing" >&2; exit 1; }
L=$work/ledger.db
cat > "$work/tally.yaml" <<'EOC'
meters:
  - {name: licence.seats, kind: delta, unit: seat, title: Licence seats}
EOC
export TALLY_CONFIG="$work/tally.yaml"
cat > "$work/plan.yaml" <<'EOP'
plan: seats
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - meter: licence.seats
        unit: seat
        free: 2
        mode: graduated
        tiers:
          - {up_to: 4, price: 1.00}
          - {price: 0.50}
EOP
cat > "$work/oct.csv" <<'EOV'
id,tenant,resource,meter,time,quantity
a1,t1,lic:t1,licence.seats,2026-10-05T13:00:00Z,10
a2,t1,lic:t1,licence.seats,2026-10-20T09:00:00Z,-3
a3,t2,lic:t2,licence.seats,2026-10-07T00:00:00Z,1
EOV
expect 0 "imported 3 events" "$TALLY" import --ledger "$L" --source lic "$work/oct.csv"

# the usage report: the correction's own hour, and the month's net
expect 0 "t1,2026-10-20T09:00:00Z,licence.seats,-3.000000000,seat,-3,seat" \
	"$TALLY" usage --ledger "$L" --period 2026-10 --by hour --format csv
expect 0 "t1,licence.seats,7.000000000,seat,7,seat" "$TALLY" usage --ledger "$L" --period 2026-10 --format csv

"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --format json > "$work/oct.json"
got=$(jq -r '.invoices[] | select(.tenant == "t1") | .lines[] | select(.meter == "licence.seats")
	| "\(.quantity) \(.amount)"' "$work/oct.json")
[ "$got" = "7.000000000 4.50" ] && ok "October t1: 7 seats net, 4.50" || bad "October t1: '$got', want '7.000000000 4.50'"
got=$(jq -r '.invoices[] | select(.tenant == "t2") | .total' "$work/oct.json")
[ "$got" = "0.00" ] && ok "October t2: 0.00" || bad "October t2: '$got', want 0.00"

# November: a correction with nothing to correct in its period
cat > "$work/nov.csv" <<'EOV'
id,tenant,resource,meter,time,quantity
b1,t1,lic:t1,licence.seats,2026-11-03T10:00:00Z,-4
b2,t2,lic:t2,licence.seats,2026-11-04T00:00:00Z,2
EOV
expect 0 "imported 2 events" "$TALLY" import --ledger "$L" --source lic "$work/nov.csv"
expect 0 "t1,licence.seats,-4.000000000,seat,-4,seat" "$TALLY" usage --ledger "$L" --period 2026-11 --format csv
expect 2 "tenant 't1', usage line Licence seats: the period's usage nets to -4 seat" \
	"$TALLY" invoice --ledger "$L" --period 2026-11 --plan "$work/plan.yaml"
expect 2 "nets to -4 seat" "$TALLY" invoice --ledger "$L" --period 2026-11 --plan "$work/plan.yaml" --issue \
	--allow-incomplete
n=$(sqlite3 "$L" "SELECT count(*) FROM invoices")
[ "$n" = 0 ] && ok "nothing issued" || bad "$n invoices issued from a refused run"
"$TALLY" invoice --ledger "$L" --period 2026-11 --plan "$work/plan.yaml" --tenant t2 --format json > "$work/t2.json"
got=$(jq -r '.invoices[0].total' "$work/t2.json")
[ "$got" = "0.00" ] && ok "November t2 alone: 0.00" || bad "November t2 alone: '$got', want 0.00"

# the correction corrected: t1 nets to 0 in November
printf 'id,tenant,resource,meter,time,quantity\nb3,t1,lic:t1,licence.seats,2026-11-03T10:00:00Z,4\n' > "$work/fix.csv"
expect 0 "imported 1 event" "$TALLY" import --ledger "$L" --source lic "$work/fix.csv"
"$TALLY" invoice --ledger "$L" --period 2026-11 --plan "$work/plan.yaml" --format json > "$work/nov.json"
got=$(jq -r '.invoices[] | select(.tenant == "t1") | .total' "$work/nov.json")
[ "$got" = "0.00" ] && ok "November t1 after its correction: 0.00" || bad "November t1: '$got', want 0.00"
expect 0 "ok:" "$TALLY" ledger verify --ledger "$L"
[ "$fails" -eq 0 ]
