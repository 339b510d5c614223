# Usage events pushed to a real-time tallyd whose ledger is PostgreSQL
# (schemas/events-api.md): booked through the aggregator's own connection,
# the same event twice counted once, a key reused for another event 409,
# an event the rules refuse 422 with nothing booked; `tally import` of the
# same events while tallyd runs (PostgreSQL takes several writers) counts
# nothing twice; a quantity past 2^53 kept exact; the invoice worked out by
# hand; the server stopped: 503 with Retry-After, nothing written, and the
# same request taken once it is back.
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
. tests/lib/cli.sh
. tests/lib/events.sh
pg_schema events_$$ || exit 1
ev_pid=
trap '[ -n "$ev_pid" ] && kill -9 "$ev_pid" 2>/dev/null' EXIT
RGW=pg-events-source-rgw-0123456789
ADMIN=pg-events-admin-0123456789abc
cat > "$work/t.yaml" <<EOC
tallyd:
  data_dir: $work/d
  interval: 1s
  log_level: info
ledger:
  url: "$PG_LEDGER"
  commit_every: 1s
  statement_timeout: 5s
rrd:
  enabled: false
collectors:
  sim: {vms: 1}
http:
  port: 0
  tokens:
    - {token: $RGW, source: rgw}
    - {token: $ADMIN, admin: true}
$EV_METERS
EOC
ev_plan "$work/plan.yaml"
export TALLY_CONFIG="$work/t.yaml"
"$TALLYD" -c "$work/t.yaml" 2>"$work/tallyd.log" & ev_pid=$!
tallyd_port "$work/tallyd.log" "$ev_pid" 30 || exit 1
URL=http://127.0.0.1:$PORT/api/v1/events
events() { psql -X -A -t -d "$PG_LEDGER" -c "SELECT count(*) FROM usage_events"; }
A="{\"events\": [$EV_S1, $EV_C1, $EV_C2]}"
ev_post "$RGW" "{\"events\": [$EV_S1, $(ev n1 acme api:acme api.calls 2026-10-07T00:00:00Z -5)]}"
ev_want 422 "a negative counter" '"\(.index) \(.key)"' "1 quantity"
[ "$(events)" = 0 ] && ok "nothing of it booked" || bad "$(events) events booked from a refused request"
ev_post "$RGW" "$A"; ev_want 200 "three events" .booked 3
ev_post "$RGW" "$A"; ev_want 200 "the same again" .duplicates 3
ev_post "$RGW" "{\"events\": [$(ev c1 acme api:acme api.calls 2026-10-02T00:30:00Z 999 2026-10-02T03:00:00Z)]}"
ev_want 409 "a key reused for another event" '"\(.index) \(.key)"' "0 id"
printf '%s\n' "$A" > "$work/a.json"
expect 0 "3 events were imported before: counted once" "$TALLY" import --ledger "$PG_LEDGER" --source rgw "$work/a.json"
ev_post "$ADMIN" "{\"source\": \"bigco\", \"events\": [$(ev x1 bigco api:big api.calls 2026-10-20T00:00:00Z 9007199254740993)]}"
ev_want 200 "an admin naming the source" .booked 1
q=$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT u.quantity FROM usage u JOIN resources r ON r.id = u.resource_id WHERE r.uuid = 'api:big'")
[ "$q" = 9007199254740993 ] && ok "2^53 + 1 kept exact: $q" || bad "2^53 + 1 stored as '$q'"
[ "$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT count(*) - count(DISTINCT uuid) FROM resources")" = 0 ] &&
	ok "one row per resource" || bad "a resource has two rows"

# s1 = 1.00 (tests/lib/events.sh); c1 + c2 = 3500 calls = 3.5 thousand x
# 0.40 = 1.40; total 2.40
"$TALLY" invoice --ledger "$PG_LEDGER" --period 2026-10 --tenant acme --plan "$work/plan.yaml" --format json \
	> "$work/inv.json" 2>"$work/inv.err" || bad "tally invoice: $(cat "$work/inv.err")"
t=$(jq -r '([.invoices[0].lines[] | .amount] | join(" ")) + " = " + .invoices[0].total' "$work/inv.json")
[ "$t" = "1.00 1.40 = 2.40" ] && ok "October for acme: $t" || bad "October for acme: '$t', want 1.00 1.40 = 2.40"

# the server away: 503 with Retry-After, nothing written; back: taken
metric() { curl -sf -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/metrics" | sed -n "s/^$1 //p"; }
pg_down || exit 1
failing() { [ "$(metric tally_ledger_write_failing)" = 1 ]; }
wait_for 30 "tallyd's commits fail while the server is away" failing
F="{\"events\": [$(ev f1 acme api:acme api.calls 2026-10-10T00:00:00Z 10)]}"
ev_post "$RGW" "$F"; ev_want 503 "the server away"
grep -qi '^Retry-After: [0-9]' "$work/head" && ok "503 with Retry-After" || bad "503 without Retry-After"
pg_up || exit 1
[ "$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT count(*) FROM usage_events WHERE event_id = 'f1'")" = 0 ] &&
	ok "nothing of it written" || bad "f1 was written while the server was away"
i=0
while :; do
	ev_post "$RGW" "$F"
	[ "$code" = 200 ] && break
	i=$((i + 1))
	[ $i -lt 90 ] || break
	sleep 0.5
done
ev_want 200 "the same request once the server is back" .booked 1
kill -TERM "$ev_pid"
if wait "$ev_pid"; then ok "tallyd stopped cleanly"; else bad "tallyd exited $?: $(tail -n 5 "$work/tallyd.log")"; fi
ev_pid=
expect 0 ": ok: " "$TALLY" ledger verify --ledger "$PG_LEDGER"
