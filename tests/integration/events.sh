#!/bin/sh
# Usage events pushed to a running tallyd, POST /api/v1/events (issue 18,
# item 4; schemas/events-api.md): a real all-in-one tallyd on loopback, its
# ledger on a small tmpfs of the test's own, a source service's requests
# made with curl and python.
#   Hostile and mistaken requests first, each refused with its status,
#   nothing of them in the ledger: no token, a wrong one, a tenant's, an
#   agent's, a source naming another source, an admin's without a source,
#   an unknown meter, a negative counter, a float quantity, quantities past
#   64 bits (as a JSON integer and as a string), an unknown key, a bad time,
#   a body over events.max_request (413 from the head, before a byte of the
#   body is sent), the pending budget held by a body that trickles (429).
#   Then the same event twice (counted once), a key reused for another event
#   (409, the whole request refused), a quantity past 2^53 kept exact; the
#   happy path whose invoice is worked out by hand; a full disk (503 with
#   Retry-After, nothing written, the same request taken once there is
#   room); a late event for an issued month (an adjustment on the next
#   invoice); the events posted, then imported from a file with tally import
#   (counted once). Last, a tallyd of role aggregator takes an event too.
#   Needs root for the tmpfs (skips, 77, without).
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
for t in curl jq sqlite3 python3; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d /tmp/tally-events-XXXXXX)
. tests/lib/cli.sh
. tests/lib/events.sh
small_tmpfs 12m
tpid= hold=
trap 'set +e; [ -n "$hold" ] && kill "$hold" 2>/dev/null; [ -n "$tpid" ] && kill -9 "$tpid" 2>/dev/null;
	umount "$small" 2>/dev/null; rm -rf "$work"' EXIT
fails=0
L=$small/ledger.db
ADMIN=events-admin-0123456789abcdef
RGW=events-source-rgw-0123456789
TEN=events-tenant-acme-0123456789
AGT=events-agent-h1-0123456789ab

cat > "$work/tally.yaml" <<EOC
tallyd:
  data_dir: $work/d
  interval: 1s
  log_level: info
ledger:
  path: $L
  commit_every: 1s
rrd:
  enabled: false
collectors:
  sim: {vms: 1}
http:
  port: 0
  tokens:
    - {token: $ADMIN, admin: true}
    - {token: $RGW, source: rgw}
    - {token: $TEN, tenant: acme}
    - {token: $AGT, agent: h1}
events:
  max_request: 8192
  max_pending: 8192
$EV_METERS
EOC
ev_plan "$work/plan.yaml"
export TALLY_CONFIG="$work/tally.yaml"
"$TALLYD" -c "$work/tally.yaml" 2>"$work/tallyd.log" & tpid=$!
tallyd_port "$work/tallyd.log" "$tpid" 30 || exit 1
URL=http://127.0.0.1:$PORT/api/v1/events

booked_events() { sqlite3 "$L" "SELECT count(*) FROM usage_events"; }
nothing_booked() {
	n=$(booked_events)
	[ "$n" = "$1" ] && ok "nothing of it in the ledger ($n events)" || bad "the ledger holds $n events, want $1"
}
good=$(ev g1 acme api:acme api.calls 2026-10-07T00:00:00Z 1)

# ---- who may post ----
ev_post "" "{\"events\": [$good]}"; ev_want 401 "no token"
grep -qi '^WWW-Authenticate: Bearer' "$work/head" && ok "401 says Bearer" || bad "401 without WWW-Authenticate"
ev_post "events-wrong-token-0123456789" "{\"events\": [$good]}"; ev_want 401 "a wrong token"
ev_post "$TEN" "{\"events\": [$good]}"; ev_want 403 "a tenant's token"
ev_post "$AGT" "{\"events\": [$good]}"; ev_want 403 "an agent's token"
ev_post "$RGW" "{\"source\": \"billing\", \"events\": [$good]}"; ev_want 403 "a source naming another source" .key source
ev_post "$ADMIN" "{\"events\": [$good]}"; ev_want 400 "an admin's token without a source" .key source
c=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $RGW" "http://127.0.0.1:$PORT/api/v1/usage?from=2026-10&to=2026-10")
[ "$c" = 403 ] && ok "a source's token reads nothing: $c" || bad "a source's token read the usage: $c"
nothing_booked 0

# ---- events the rules refuse: the request whole, nothing booked ----
ev_post "$RGW" "{\"events\": [$good, $(ev b1 acme api:acme api.callz 2026-10-07T00:00:00Z 1)]}"
ev_want 422 "an unknown meter" '"\(.index) \(.key)"' "1 meter"
ev_post "$RGW" "{\"events\": [$good, $(ev b2 acme api:acme api.calls 2026-10-07T00:00:00Z -5)]}"
ev_want 422 "a negative counter" '"\(.index) \(.key)"' "1 quantity"
ev_post "$RGW" "{\"events\": [$good, $(ev b3 acme api:acme api.calls 2026-10-07T00:00:00Z 1.5)]}"
ev_want 400 "a float quantity" '"\(.index) \(.key)"' "1 quantity"
ev_post "$RGW" "{\"events\": [$good, $(ev b4 acme api:acme api.calls 2026-10-07T00:00:00Z 1.0)]}"
ev_want 400 "a float quantity of a whole value"
ev_post "$RGW" "{\"events\": [$good, $(ev b5 acme api:acme api.calls 2026-10-07T00:00:00Z 99999999999999999999)]}"
ev_want 400 "a JSON integer past 2^63"
grep -q "too big integer" "$work/resp" && ok "the JSON reader refused the number" || bad "no reason: $(cat "$work/resp")"
ev_post "$RGW" "{\"events\": [$good, $(ev b6 acme api:acme api.calls 2026-10-07T00:00:00Z '"9223372036854775808"')]}"
ev_want 422 "a quantity string past 2^63" '"\(.index) \(.key)"' "1 quantity"
grep -q "beyond what a ledger row holds exactly" "$work/resp" && ok "it says why" || bad "no reason: $(cat "$work/resp")"
ev_post "$RGW" "{\"events\": [{\"id\": \"b7\", \"tenant\": \"acme\", \"resource\": \"r\", \"meter\": \"api.calls\", \"time\": \"2026-10-07\", \"quantity\": 1, \"qty\": 2}]}"
ev_want 400 "an unknown key" .index 0
ev_post "$RGW" "{\"events\": [$good, $(ev b8 acme api:acme api.calls yesterday 1)]}"
ev_want 422 "a bad time" '"\(.index) \(.key)"' "1 time"
ev_post "$RGW" "not json"; ev_want 400 "not JSON"
nothing_booked 0

# ---- over the limits ----
# 413 from the head alone: the body is never sent
python3 - "$PORT" "$RGW" > "$work/413" <<'EOP'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n" % sys.argv[2]).encode())
print(s.recv(4096).decode().split("\r\n")[0])
EOP
grep -q "413" "$work/413" && ok "a body over events.max_request: $(cat "$work/413"), before it was sent" ||
	bad "over max_request: $(cat "$work/413")"
# a body that trickles holds the whole pending budget (8192 bytes): the
# next request is 429 with Retry-After
python3 - "$PORT" "$RGW" "$work/held" <<'EOP' & hold=$!
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(("POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: 8192\r\n\r\n{\"events\"" % sys.argv[2]).encode())
open(sys.argv[3], "w").write("held")
time.sleep(30)
EOP
i=0
until [ -s "$work/held" ] || [ $i -ge 50 ]; do i=$((i + 1)); sleep 0.1; done
sleep 0.3
ev_post "$RGW" "{\"events\": [$good]}"; ev_want 429 "the pending budget held by a trickling body"
grep -qi '^Retry-After: [0-9]' "$work/head" && ok "429 with Retry-After" || bad "429 without Retry-After"
kill "$hold" 2>/dev/null || true
wait "$hold" 2>/dev/null || true
hold=
nothing_booked 0

# ---- the same event twice; a key reused; exact past 2^53 ----
A="{\"events\": [$EV_S1, $EV_C1, $EV_C2]}"
ev_post "$RGW" "$A"; ev_want 200 "three events" '"\(.booked) \(.duplicates)"' "3 0"
ev_post "$RGW" "$A"; ev_want 200 "the same three again: duplicates" '"\(.booked) \(.duplicates) \([.results[].result] | unique | join(","))"' "0 3 duplicate"
ev_post "$RGW" "{\"events\": [$(ev c3 acme api:acme api.calls 2026-10-06T00:00:00Z 7), $(ev c1 acme api:acme api.calls 2026-10-02T00:30:00Z 1001 2026-10-02T03:00:00Z)]}"
ev_want 409 "a key reused for another event" '"\(.index) \(.id) \(.key)"' "1 c1 id"
[ "$(sqlite3 "$L" "SELECT count(*) FROM usage_events WHERE event_id = 'c3'")" = 0 ] &&
	ok "the new event of the refused request is not booked" || bad "c3 was booked from a refused request"
ev_post "$RGW" "{\"events\": [$(ev d1 acme api:acme api.calls 2026-10-09T00:00:00Z 5), $(ev d1 acme api:acme api.calls 2026-10-09T00:00:00Z 5)]}"
ev_want 200 "one event twice in a request" '"\(.booked) \(.duplicates)"' "1 1"
ev_post "$ADMIN" "{\"source\": \"bigco-meter\", \"events\": [$(ev x1 bigco api:big api.calls 2026-10-20T00:00:00Z 9007199254740993)]}"
ev_want 200 "an admin's request naming its source" .source bigco-meter
q=$(sqlite3 "$L" "SELECT u.quantity FROM usage u JOIN resources r ON r.id = u.resource_id WHERE r.uuid = 'api:big'")
[ "$q" = 9007199254740993 ] && ok "2^53 + 1 kept exact: $q" || bad "2^53 + 1 stored as $q"

# ---- the invoice, by hand ----
# s1 = 1.00 and c1's hours 200 / 400 / 400 (tests/lib/events.sh); c1 + c2
# + d1 = 1000 + 2500 + 5 = 3505 calls = 3.505 thousand x 0.40 = 1.402 ->
# 1.40; total 2.40
rows=$(sqlite3 "$L" "SELECT group_concat(quantity, ' ') FROM (SELECT u.quantity FROM usage u JOIN meters m ON m.id = u.meter_id
	JOIN resources r ON r.id = u.resource_id WHERE m.name = 'api.calls' AND r.uuid = 'api:acme'
	AND u.hour_ns < 1790985600000000000 ORDER BY u.hour_ns)")
[ "$rows" = "200 400 400" ] && ok "1000 calls over 2.5 h: $rows" || bad "c1's hours: '$rows', ev_want 200 400 400"
"$TALLY" invoice --ledger "$L" --period 2026-10 --tenant acme --plan "$work/plan.yaml" --format json > "$work/inv.json" 2>"$work/inv.err" ||
	bad "tally invoice: $(cat "$work/inv.err")"
for x in "storage.objects.size|1.00" "api.calls|1.40"; do
	a=$(jq -r --arg m "${x%|*}" '.invoices[0].lines[] | select(.meter == $m) | .amount' "$work/inv.json")
	[ "$a" = "${x#*|}" ] && ok "${x%|*}: $a" || bad "${x%|*}: '$a', want ${x#*|}"
done
t=$(jq -r '.invoices[0].total' "$work/inv.json")
[ "$t" = 2.40 ] && ok "October's total for acme: $t" || bad "October's total: '$t', want 2.40"

# ---- a full disk: 503 with Retry-After, nothing written; then taken ----
dd if=/dev/zero of="$small/filler" bs=64k 2>/dev/null || true
dd if=/dev/zero of="$small/filler2" bs=512 2>/dev/null || true
wait_for 20 "tallyd's commits fail on the full disk" grep -q "metering goes on" "$work/tallyd.log"
before=$(booked_events)
F="{\"events\": [$(ev f1 acme api:acme api.calls 2026-10-10T00:00:00Z 10)]}"
ev_post "$RGW" "$F"; ev_want 503 "a full disk"
grep -qi '^Retry-After: [0-9]' "$work/head" && ok "503 with $(grep -i '^Retry-After' "$work/head" | tr -d '\r')" ||
	bad "503 without Retry-After"
nothing_booked "$before"
rm -f "$small/filler" "$small/filler2"
i=0
while :; do
	ev_post "$RGW" "$F"
	[ "$code" = 200 ] && break
	i=$((i + 1))
	[ $i -lt 60 ] || break
	sleep 0.5
done
ev_want 200 "the same request once there is room" .booked 1

# ---- a late event for an issued month: an adjustment on the next invoice ----
expect 0 "INVOICE  ev #1" "$TALLY" invoice --ledger "$L" --period 2026-10 --tenant acme --plan "$work/plan.yaml" --issue
ev_post "$RGW" "{\"events\": [$(ev late1 acme api:acme api.calls 2026-10-20T12:00:00Z 1000)]}"
ev_want 200 "a late event for issued October" .booked 1
# 1000 calls = 1 thousand x 0.40 = 0.40, carried by November's invoice
"$TALLY" invoice --ledger "$L" --period 2026-11 --tenant acme --plan "$work/plan.yaml" --format json > "$work/nov.json" 2>"$work/nov.err" ||
	bad "November's invoice: $(cat "$work/nov.err")"
a=$(jq -r '[.invoices[0].lines[] | select(.type == "adjustment") | .amount] | join(",")' "$work/nov.json")
[ "$a" = 0.40 ] && ok "November carries October's late calls: $a" || bad "November's adjustments: '$a', want 0.40"
expect 0 "usage for 2026-10 recorded after ev #1 was issued" "$TALLY" invoice --ledger "$L" --period 2026-11 \
	--tenant acme --plan "$work/plan.yaml"

# ---- its figures; a clean stop; the same events imported: counted once ----
# booked: s1 c1 c2, d1, x1, f1, late1; duplicates: s1 c1 c2 again, d1's
# twin (the snapshot /metrics serves follows within a cycle)
metrics_say() {
	curl -s -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/metrics" > "$work/metrics"
	grep -q '^tally_events_total{result="booked"} 7$' "$work/metrics" &&
		grep -q '^tally_events_total{result="duplicate"} 4$' "$work/metrics" &&
		grep -q '^tally_events_requests_total{status="409"} 1$' "$work/metrics" &&
		grep -q '^tally_events_requests_total{status="422"} 4$' "$work/metrics"
}
wait_for 10 "/metrics: 7 events booked, 4 duplicates, one 409, four 422 (meter, negative, past 2^63, time)" metrics_say ||
	grep tally_events "$work/metrics"
kill -TERM "$tpid"
if wait "$tpid"; then ok "tallyd stopped cleanly"; else bad "tallyd exited $?: $(tail -n 5 "$work/tallyd.log")"; fi
tpid=
printf '%s\n' "$A" > "$work/a.json"
expect 0 "3 events were imported before: counted once" "$TALLY" import --ledger "$L" --source rgw "$work/a.json"
grep -q "imported 0 events" "$work/out" && ok "none booked again" || bad "$(cat "$work/out")"
expect 0 "ok: " "$TALLY" ledger verify --ledger "$L"

# ---- the aggregator role books them too, between its agents' rounds ----
cat > "$work/agg.yaml" <<EOC
tallyd:
  role: aggregator
  data_dir: $work/agg
  log_level: info
rrd:
  enabled: false
http:
  port: 0
  tokens:
    - {token: $AGT, agent: h1}
    - {token: $RGW, source: rgw}
meters:
  - {name: api.calls, kind: counter, unit: request, title: API calls}
EOC
"$TALLYD" -c "$work/agg.yaml" 2>"$work/agg.log" & tpid=$!
tallyd_port "$work/agg.log" "$tpid" 30 || exit 1
URL=http://127.0.0.1:$PORT/api/v1/events
ev_post "$RGW" "{\"events\": [$EV_C1]}"; ev_want 200 "an aggregator takes an event" .booked 1
ev_post "$RGW" "{\"events\": [$EV_C1]}"; ev_want 200 "and counts it once" .duplicates 1
kill -TERM "$tpid"
if wait "$tpid"; then ok "the aggregator stopped cleanly"; else bad "the aggregator exited $?: $(tail -n 5 "$work/agg.log")"; fi
tpid=
r=$(sqlite3 "$work/agg/ledger.db" "SELECT group_concat(quantity, ' ') FROM (SELECT quantity FROM usage ORDER BY hour_ns)")
[ "$r" = "200 400 400" ] && ok "in the aggregator's ledger: $r" || bad "the aggregator's ledger: '$r', ev_want 200 400 400"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "events: 0 failed"
