#!/bin/sh
# Which tenants a period invoices, and what a tenant that was not in it
# owes (docs/invoice.md, "How an invoice is made"). Found by an adversarial
# probe: the run over all tenants left off a charge for a period a tenant
# had left (never invoiced, exit 0), left off a charge for a tenant the
# ledger never saw (exit 0), and never carried a departed tenant's late
# usage of an issued period; `--tenant` gave a departed tenant the plan's
# fees for months it was not there. Expected values by hand (api.calls at
# 0.40 a thousand; a fee of 30.00 a month for a tenant in the month):
#   October: t1 1000 calls (5 Oct): 0.40 + 30.00 = 30.40; t2 2000 calls:
#     0.80 + 30.00 = 30.80. Issued.
#   Then: 500 more calls of t1 on 6 October (late): October rated again is
#     0.60 + 30.00 = 30.60 for t1, 0.20 more than issued.
#   November: t2 3000 calls: 1.20 + 30.00 = 31.20; t1, gone since 5
#     October, gets the 0.20 alone (no fee): 0.20. Issued (#2 t1, #3 t2:
#     tenant order). A charge for zzz, a tenant no resource ever had, is
#     refused when added; one of 20.00 a ledger holds from before that
#     check stops the run (exit 2) until a charge of -20.00 undoes it.
#   December: a 50.00 charge for t1: its invoice is that charge alone,
#     50.00 (no fee); t2, gone since November, gets none; asked for alone
#     it gets none either (exit 0, said on stderr).
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-who-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh
command -v jq >/dev/null || { echo "jq missing" >&2; exit 1; }
L=$work/ledger.db
cat > "$work/tally.yaml" <<'EOC'
meters:
  - {name: api.calls, kind: counter, unit: request, title: API calls}
EOC
export TALLY_CONFIG="$work/tally.yaml"
cat > "$work/plan.yaml" <<'EOP'
plan: who
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - {meter: api.calls, unit: request-thousand, price: 0.40}
    fees:
      - {name: support, amount: 30.00}
EOP
# total TENANT FILE: that tenant's invoice total in a JSON rendering ("" if none)
total() { jq -r --arg t "$1" '.invoices[] | select(.tenant == $t) | .total' "$2"; }
count() { jq -r '.invoices | length' "$1"; }
check() { # WHAT GOT WANT
	[ "$2" = "$3" ] && ok "$1: '$2'" || bad "$1: '$2', want '$3'"
}
inv() { # PERIOD OUT [ARGS]: a draft as JSON
	p=$1 out=$2
	shift 2
	"$TALLY" invoice --ledger "$L" --period "$p" --plan "$work/plan.yaml" --format json "$@" > "$out"
}

cat > "$work/ev.csv" <<'EOV'
id,tenant,resource,meter,time,quantity
o1,t1,api:t1,api.calls,2026-10-05T10:00:00Z,1000
o2,t2,api:t2,api.calls,2026-10-10T10:00:00Z,2000
n1,t2,api:t2,api.calls,2026-11-10T10:00:00Z,3000
EOV
expect 0 "imported 3 events" "$TALLY" import --ledger "$L" --source api "$work/ev.csv"
inv 2026-10 "$work/oct.json"
check "October t1" "$(total t1 "$work/oct.json")" 30.40
check "October t2" "$(total t2 "$work/oct.json")" 30.80
expect 0 "INVOICE  who #1" "$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$work/plan.yaml" --issue \
	--allow-incomplete

printf 'id,tenant,resource,meter,time,quantity\nlate1,t1,api:t1,api.calls,2026-10-06T10:00:00Z,500\n' > "$work/late.csv"
expect 0 "1 event falls in periods already invoiced" "$TALLY" import --ledger "$L" --source api "$work/late.csv"
# a tenant no resource has had: refused when added (a misspelt name)...
expect 2 "tenant 'zzz' is not in the ledger: no resource has had it" \
	"$TALLY" charge add --ledger "$L" --tenant zzz --period 2026-11 --amount 20.00 --description Typo
# ...and one a ledger holds from before that check stops the run until undone
sqlite3 "$L" "INSERT INTO charges (tenant, from_ns, to_ns, description, amount, currency, added_ns)
	VALUES ('zzz', 1793491200000000000, 1796083200000000000, 'Typo', '20.00', '', 1793491200000000000)"
expect 2 "charge #1 of tenant 'zzz' is for a tenant no resource of the ledger has had" \
	"$TALLY" invoice --ledger "$L" --period 2026-11 --plan "$work/plan.yaml"
expect 0 "charge #2" "$TALLY" charge add --ledger "$L" --tenant zzz --period 2026-11 --amount -20.00 --description Undo
inv 2026-11 "$work/nov.json"
check "November invoices" "$(count "$work/nov.json")" 2
check "November t2" "$(total t2 "$work/nov.json")" 31.20
check "November t1 (gone): the late usage of October alone" "$(total t1 "$work/nov.json")" 0.20
check "November t1's one line" "$(jq -r '.invoices[] | select(.tenant == "t1") | .lines | length' "$work/nov.json")" 1
expect 0 "INVOICE  who #3" "$TALLY" invoice --ledger "$L" --period 2026-11 --plan "$work/plan.yaml" --issue \
	--allow-incomplete

expect 0 "charge #3" "$TALLY" charge add --ledger "$L" --tenant t1 --period 2026-12 --amount 50.00 \
	--description "Data export"
inv 2026-12 "$work/dec.json"
check "December invoices" "$(count "$work/dec.json")" 1
check "December t1 (gone): its charge alone" "$(total t1 "$work/dec.json")" 50.00
expect 0 "tenant 't2' had no usage, no resource alive, no charge and no late usage" \
	"$TALLY" invoice --ledger "$L" --period 2026-12 --plan "$work/plan.yaml" --tenant t2
inv 2026-12 "$work/dec-t2.json" --tenant t2
check "December t2 asked alone" "$(count "$work/dec-t2.json")" 0
[ "$fails" -eq 0 ]
