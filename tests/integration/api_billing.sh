#!/bin/sh
# The JSON API's billing endpoints on a running tallyd (fast-forwarded
# through two days of a fleet that crashes VMs, then serving):
# - /api/v1/sla equals what tally sla reports from the same ledger and plan,
#   and a tenant token sees only its own VMs (another tenant: 404);
# - /api/v1/invoices lists what tally invoice --issue stored (a tenant: its
#   own), /api/v1/invoices/N is the stored document, whose sha256sum is the
#   hash listed; another tenant's invoice is a 404;
# - check_tally -m sla and -m alerts judge what the API says, on the edges;
# - without http.plan, /api/v1/sla says so;
# - the request limit: 429 with Retry-After past the burst, per client.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
CHECK=$PWD/$B/check_tally
for t in jq curl sha256sum; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d /tmp/tally-api-XXXXXX)
tpid=""
cleanup() {
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
. tests/lib/cli.sh
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

ADMIN=admin-0123456789abcdef
T1=tenant01-0123456789abcdef
PLAN=$PWD/config/plan-example.yaml
start_tallyd() { # PLAN-LINE
	cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: api
  data_dir: $work/d
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-03T00:00:00Z
  log_level: info
rrd:
  enabled: false
http:
  address: 127.0.0.1
  port: 0
  serve_after_end: true
$1
  tokens:
    - token: $ADMIN
      admin: true
    - token: $T1
      tenant: tenant-01
alerts:
  stale_intervals: 0
collectors:
  sim:
    vms: 12
    tenants: 3
    seed: 3
    crashes_per_day: 2
EOC
	: > "$work/tallyd.log"     # emptied here, not by the child: no race with the last run's log
	"$TALLYD" -c "$work/t.yaml" 2>>"$work/tallyd.log" &
	tpid=$!
	wait_serving "$work/tallyd.log" "$tpid"
}
get() { # TOKEN PATH -> body in $work/body, prints the status
	curl -s -o "$work/body" -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$PORT$2" || true
}

start_tallyd "  plan: $PLAN"
L=$work/d/ledger.db

# SLA: the API's report and the CLI's, from the same ledger and plan
st=$(get $ADMIN "/api/v1/sla?period=2026-10")
"$TALLY" sla --ledger "$L" --period 2026-10 --plan "$PLAN" --format json > "$work/cli.json"
if [ "$st" = 200 ] && jq -S . "$work/body" > "$work/a" && jq -S . "$work/cli.json" > "$work/b" && cmp -s "$work/a" "$work/b"; then
	ok "/api/v1/sla equals tally sla: $(jq '.vms | length' "$work/body") VMs, $(jq '[.vms[].incidents[]] | length' "$work/body") incidents"
else
	bad "/api/v1/sla ($st) differs from tally sla"
fi
[ "$(jq '[.vms[].incidents[] | select(.cause == "crashed")] | length' "$work/body")" -gt 0 ] &&
	ok "the fleet's crashes are incidents" || bad "no crash in the SLA report"
st=$(get $T1 "/api/v1/sla?period=2026-10")
others=$(jq '[.vms[] | select(.tenant != "tenant-01")] | length' "$work/body")
[ "$st" = 200 ] && [ "$others" = 0 ] && [ "$(jq '.vms | length' "$work/body")" -gt 0 ] &&
	ok "a tenant token sees only its VMs" || bad "tenant SLA: status $st, $others VMs of other tenants"
st=$(get $T1 "/api/v1/sla?period=2026-10&tenant=tenant-02")
[ "$st" = 404 ] && ok "another tenant's SLA: 404" || bad "another tenant's SLA: $st"
st=$(get $ADMIN "/api/v1/sla?period=2026-13")
[ "$st" = 400 ] && jq -e .error "$work/body" >/dev/null && ok "a bad period: 400 $(jq -r .error "$work/body")" ||
	bad "a bad period: $st"

# Invoices: issue two tenants' October, then read them back
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan "$PLAN" --issue --allow-incomplete > "$work/issued.txt"
st=$(get $ADMIN /api/v1/invoices)
n=$(jq '.invoices | length' "$work/body")
[ "$st" = 200 ] && [ "$n" = 3 ] && ok "/api/v1/invoices lists the 3 issued" || bad "invoices: $st, $n listed"
mine=$(jq -r '.invoices[] | select(.tenant == "tenant-01") | .number' "$work/body")
theirs=$(jq -r '.invoices[] | select(.tenant == "tenant-02") | .number' "$work/body")
hash=$(jq -r ".invoices[] | select(.number == $mine) | .sha256" "$work/body")
st=$(get $T1 /api/v1/invoices)
[ "$st" = 200 ] && [ "$(jq -c '[.invoices[].tenant] | unique' "$work/body")" = '["tenant-01"]' ] &&
	ok "a tenant token lists only its own" || bad "tenant invoice list: $st $(cat "$work/body")"
st=$(get $T1 "/api/v1/invoices/$mine")
got=$(sha256sum < "$work/body" | cut -d' ' -f1)
[ "$st" = 200 ] && [ "$got" = "$hash" ] && ok "invoice #$mine is the stored document (sha256 $got)" ||
	bad "invoice #$mine: $st, sha256 $got, listed $hash"
st=$(get $T1 "/api/v1/invoices/$theirs")
[ "$st" = 404 ] && ok "another tenant's invoice #$theirs: 404" || bad "another tenant's invoice: $st"
st=$(get $ADMIN "/api/v1/invoices/99")
[ "$st" = 404 ] && ok "no invoice #99: 404" || bad "invoice 99: $st"
# check_tally on the SLA: the availability the API gives a VM, judged on
# the edges of the ranges (the edge is inside: OK; just above it: CRITICAL)
get $ADMIN "/api/v1/sla?period=2026-10" > /dev/null
uuid=$(jq -r '[.vms[] | select(.downtime_seconds > 0)][0].resource' "$work/body")
pct=$(jq -r ".vms[] | select(.resource == \"$uuid\") | .availability_percent" "$work/body")
above=$(awk "BEGIN { printf \"%.4f\", $pct + 0.0001 }")
checks() { # want-exit fragment args...
	want=$1 frag=$2; shift 2
	if "$CHECK" -p "$PORT" -T "$ADMIN" "$@" > "$work/chk"; then got=0; else got=$?; fi
	if [ "$got" = "$want" ] && grep -qF -- "$frag" "$work/chk"; then ok "check_tally $*: exit $got: $(cat "$work/chk")"
	else bad "check_tally $*: exit $got (want $want): $(cat "$work/chk")"; fi
}
checks 0 "'availability'=$pct%" -m sla -r "$uuid" -P 2026-10 -w "$pct:" -c "0:"
checks 2 "availability is $pct %" -m sla -r "$uuid" -P 2026-10 -c "$above:"
# firing alerts: as many as /api/v1/alerts lists in state firing
get $ADMIN /api/v1/alerts > /dev/null
firing=$(jq '[.alerts[] | select(.state == "firing")] | length' "$work/body")
if [ "$firing" -gt 0 ]; then checks 2 "'firing'=$firing;" -m alerts -c 0
else checks 0 "'firing'=0;" -m alerts -c 0; fi
checks 3 "-P '2026-1x;'" -m sla -P "2026-1x;"

kill "$tpid" 2>/dev/null || true; wait "$tpid" 2>/dev/null || true; tpid=""

# without a plan
rm -rf "$work/d"
start_tallyd ""
st=$(get $ADMIN "/api/v1/sla?period=2026-10")
[ "$st" = 404 ] && grep -q "http.plan" "$work/body" && ok "no plan: 404 $(jq -r .error "$work/body")" ||
	bad "no plan: $st $(cat "$work/body")"
kill "$tpid" 2>/dev/null || true; wait "$tpid" 2>/dev/null || true; tpid=""

# the request limit: one request per 100 s sustained, 3 at once, per client
# (address and token): the admin's 4th request is a 429 that says to retry
# after 100 s; the tenant's token is another client; a wrong token is
# limited the same way (3 x 401, then 429)
rm -rf "$work/d"
start_tallyd "  rate_limit: 0.01
  rate_burst: 3"
codes=""
for i in 1 2 3 4; do codes="$codes $(get $ADMIN /api/v1/resources)"; done
[ "$codes" = " 200 200 200 429" ] && ok "the admin's 4 requests: $codes" || bad "the admin's 4 requests: $codes"
retry=$(curl -s -D - -o "$work/body" -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/metrics" |
	tr -d '\r' | sed -n 's/^Retry-After: //Ip')
[ "$retry" = 100 ] && ok "Retry-After: $retry" || bad "Retry-After: '$retry', want 100"
jq -r .error "$work/body" | grep -q "^too many requests: at most 0.01 per second (3 at once) per client" &&
	ok "429: $(jq -r .error "$work/body")" || bad "429 body: $(cat "$work/body")"
st=$(get $T1 /api/v1/resources)
[ "$st" = 200 ] && ok "the tenant's token is another client: $st" || bad "the tenant's token: $st"
codes=""
for i in 1 2 3 4; do codes="$codes $(get wrong-0123456789abcdef /api/v1/resources)"; done
[ "$codes" = " 401 401 401 429" ] && ok "a wrong token's 4 requests: $codes" || bad "a wrong token's 4 requests: $codes"
[ "$fails" -eq 0 ]
