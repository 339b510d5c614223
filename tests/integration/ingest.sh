#!/bin/sh
# The aggregator role with real processes (issue 12): a tallyd of `role:
# aggregator` on loopback, and bench/simagents posting a simulated fleet of
# three hosts to it as three agents would, each with its own token, through
# replays (a request sent again after its 200), reordered requests (a 409
# gap, then the sender resumes) and frames out of order (a 409 order).
# The ground truth is an all-in-one tallyd fast-forwarding the same fleet:
# the aggregator's ledger must hold the same usage, row for row, and its
# hash chain must verify; each agent's batches are counted once. Then the
# config mistakes of the role, each named with file:line:col (exit 2).
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
TALLY=$PWD/$B/tally
AGENTS=$PWD/$B/bench/simagents
for t in sqlite3 curl; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 1; }
done
[ -x "$AGENTS" ] || { echo "$AGENTS is missing: make $B/bench/simagents"; exit 1; }
work=$(mktemp -d /tmp/tally-ingest-XXXXXX)
. tests/lib/cli.sh
apid=
trap '[ -n "$apid" ] && kill -9 "$apid" 2>/dev/null; rm -rf "$work"' EXIT
fails=0
END=2026-10-01T04:00:00Z
FLEET="--vms 24 --hosts 3 --tenants 4 --seed 5 --loss 0.02"

# ---- the ground truth: all-in-one, fast-forward ----
fleet_ref "$work/ref" $END 24 3 4 5 0.02 || { echo "the all-in-one run failed"; exit 1; }

# ---- the aggregator ----
cat > "$work/agg.yaml" <<EOC
tallyd:
  role: aggregator
  agent_id: aggregator
  data_dir: $work/agg
  interval: 1s
  log_level: info
rrd:
  enabled: false
alerts:
  agent_silent: 3s
http:
  port: 0
  tokens:
    - {token: tok-0123456789abcdef-quiet-host, agent: quiet-host}
    - {token: tok-0123456789abcdef-sim-host-0, agent: sim-host-0}
    - {token: tok-0123456789abcdef-sim-host-1, agent: sim-host-1}
    - {token: tok-0123456789abcdef-sim-host-2, agent: sim-host-2}
    - {token: tok-0123456789abcdef-admin, admin: true}
ingest:
  max_request: 1048576
EOC
expect 0 "agg.yaml: ok" "$TALLYD" -n -c "$work/agg.yaml"
"$TALLYD" -c "$work/agg.yaml" 2>"$work/agg.log" & apid=$!
tallyd_port "$work/agg.log" "$apid" 30 || exit 1
URL=http://127.0.0.1:$PORT

if "$AGENTS" -u "$URL" --token-prefix tok-0123456789abcdef- $FLEET --end $END --interval 10s \
	--max-frames 9 --replay 0.2 --reorder 0.05 --shuffle 0.05 > "$work/agents.out" 2>&1; then
	ok "simagents: $(cat "$work/agents.out")"
else
	bad "simagents failed: $(cat "$work/agents.out")"
fi
grep -q "409: " "$work/agents.out" && ok "reordered requests were answered 409" || bad "no 409 for a reordered request"
grep -q " 0 sent twice" "$work/agents.out" && bad "no request was sent twice" || ok "requests were sent twice"
# a token for another agent's batches is a 403, answered by the live aggregator
code=$(printf 'TLYB' | curl -s -o "$work/body" -w '%{http_code}' -H "Authorization: Bearer tok-0123456789abcdef-admin" \
	-H 'Content-Type: application/x-tally-batch' --data-binary @- "$URL/api/v1/ingest")
[ "$code" = 403 ] && ok "an admin's token may not ingest: 403 $(cat "$work/body")" || bad "admin token: $code"
# the listener's own refusals, before the aggregator sees a byte: no token
# (401), a body that is not a batch (415); one each, counted on /metrics
code=$(printf 'TLYB' | curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-tally-batch' \
	--data-binary @- "$URL/api/v1/ingest")
[ "$code" = 401 ] && ok "no token: 401" || bad "no token: $code"
code=$(printf 'TLYB' | curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer tok-0123456789abcdef-sim-host-0" \
	-H 'Content-Type: text/plain' --data-binary @- "$URL/api/v1/ingest")
[ "$code" = 415 ] && ok "a body of another type: 415" || bad "text/plain: $code"
# /metrics: the ingest's counts and each agent's last seq and contact
want=$(grep -o '[0-9]* batches and' "$work/agents.out" | cut -d' ' -f1)
i=0
until curl -s -H "Authorization: Bearer tok-0123456789abcdef-admin" "$URL/metrics" > "$work/metrics" &&
	grep -q "^tally_ingest_batches_total{result=\"taken\"} $want\$" "$work/metrics"; do
	i=$((i + 1))
	[ $i -lt 100 ] || break
	sleep 0.1
done
grep -q '^tally_agent_last_seq{agent="sim-host-2"} 1441$' "$work/metrics" &&
	ok "/metrics: $(grep '^tally_agent_last_seq{agent="sim-host-2"}' "$work/metrics")" || bad "/metrics has no last seq of sim-host-2"
taken=$(sed -n 's/^tally_ingest_batches_total{result="taken"} //p' "$work/metrics")
[ "$taken" = "$want" ] && ok "/metrics: $taken batches taken, as the agents counted their acknowledgements" ||
	bad "/metrics: batches taken '$taken', the agents had $want acknowledged"
grep -q '^tally_ingest_requests_total{status="409"} [1-9]' "$work/metrics" && ok "/metrics counts the 409s" ||
	bad "/metrics: $(grep tally_ingest_requests "$work/metrics")"
for st in 401 415; do
	n=$(sed -n "s|^tally_http_post_refused_total{path=\"/api/v1/ingest\",status=\"$st\"} ||p" "$work/metrics")
	[ "$n" = 1 ] && ok "/metrics: the listener's $st on /api/v1/ingest counted once" ||
		bad "/metrics: the listener's $st on /api/v1/ingest: '$n', want 1"
done
h=$(sed -n 's|^tally_http_connections_total{result="handed_over"} ||p' "$work/metrics")
[ "${h:-0}" -gt 0 ] && ok "/metrics: $h connections handed over by the listener" ||
	bad "/metrics: no tally_http_connections_total{result=\"handed_over\"}"
grep -q '^tally_agent_last_contact_timestamp_seconds{agent="quiet-host"}' "$work/metrics" &&
	bad "an agent never heard has a last contact" || ok "an agent never heard has no last contact on /metrics"
if command -v promtool >/dev/null; then
	promtool check metrics < "$work/metrics" > "$work/promtool.out" 2>&1 && ok "promtool check metrics: clean" ||
		bad "promtool: $(head -n 5 "$work/promtool.out")"
fi

# AgentSilent: quiet-host has a token and never sends anything
i=0
until curl -s -H "Authorization: Bearer tok-0123456789abcdef-admin" "$URL/api/v1/alerts" > "$work/alerts.json" &&
	grep -q '"alertname":"AgentSilent".*"host":"quiet-host".*"state":"firing"\|"host":"quiet-host".*"alertname":"AgentSilent"' "$work/alerts.json"; do
	i=$((i + 1))
	[ $i -lt 150 ] || break
	sleep 0.1
done
if command -v jq >/dev/null; then
	st=$(jq -r '.alerts[] | select(.labels.alertname == "AgentSilent" and .labels.host == "quiet-host") | .state' "$work/alerts.json")
	[ "$st" = firing ] && ok "AgentSilent fires for an agent never heard: $(jq -c '.alerts[] | select(.labels.host == "quiet-host") | {labels, state, startsAt}' "$work/alerts.json")" ||
		bad "AgentSilent for quiet-host: '$st': $(head -c 600 "$work/alerts.json")"
fi
kill -TERM "$apid"
if wait "$apid"; then ok "the aggregator stopped cleanly"; else bad "the aggregator exited $?"; fi
apid=
grep -q "ingest: .* requests: " "$work/agg.log" && ok "$(grep 'ingest: .* requests: ' "$work/agg.log" | sed 's/^.*ingest:/ingest:/')" ||
	bad "no ingest summary in the log"
grep -q "refused (409): gap" "$work/agg.log" && ok "a gap is one log line naming agent, seqs and reason: $(grep -m1 'refused (409): gap' "$work/agg.log" | sed 's/^.*ingest:/ingest:/')" ||
	bad "no log line for a gap"

usage_rows "$work/ref/ledger.db" > "$work/ref.rows"
usage_rows "$work/agg/ledger.db" > "$work/agg.rows"
n=$(wc -l < "$work/ref.rows")
[ "$n" -gt 300 ] || bad "the reference has only $n usage rows"
if cmp -s "$work/ref.rows" "$work/agg.rows"; then
	ok "the aggregator's usage equals the all-in-one run's, all $n rows"
else
	bad "the ledgers differ: $(diff "$work/ref.rows" "$work/agg.rows" | head -n 4)"
fi
q="SELECT count(*) FROM events"
[ "$(sqlite3 "$work/ref/ledger.db" "$q")" = "$(sqlite3 "$work/agg/ledger.db" "$q")" ] &&
	ok "the same $(sqlite3 "$work/agg/ledger.db" "$q") lifecycle events" || bad "the events differ"
# each batch counted once: the agents' batches are their last seqs
got=$(sqlite3 "$work/agg/ledger.db" "SELECT group_concat(agent || '=' || last_seq || '/' || batches, ' ') FROM agents ORDER BY agent")
case $got in
*=*) ;;
*) bad "no agents in the ledger" ;;
esac
for a in $got; do
	s=${a#*=}
	[ "${s%/*}" = "${s#*/}" ] && ok "agent ${a%%=*}: ${s%/*} batches, each counted once" || bad "agent $a: seq and batch count differ"
done
expect 0 "ok: " "$TALLY" ledger verify --ledger "$work/agg/ledger.db"

# ---- tally agents: what the ledger says of each agent ----
expect 0 "sim-host-2" "$TALLY" agents --ledger "$work/agg/ledger.db"
cp "$work/out" "$work/agents.txt"
last=$(sqlite3 "$work/agg/ledger.db" "SELECT last_seq FROM agents WHERE agent = 'sim-host-1'")
grep -q "^sim-host-1 .* $last  *$last  2026-10-01T04:00:00Z .* batch" "$work/agents.txt" &&
	ok "tally agents: $(grep '^sim-host-1' "$work/agents.txt")" || bad "tally agents: $(cat "$work/agents.txt")"
expect 0 '"agents"' "$TALLY" agents --format json --ledger "$work/agg/ledger.db"
if command -v jq >/dev/null; then
	j=$(jq -r '.agents[] | select(.agent == "sim-host-0") | "\(.last_seq) \(.batches) \(.data_until) \(.spool_batches >= 1) \(.last_contact != null) \(.lag_seconds > 0) \(.spool_first_seq)"' "$work/out")
	want="$(sqlite3 "$work/agg/ledger.db" "SELECT last_seq || ' ' || batches FROM agents WHERE agent = 'sim-host-0'") 2026-10-01T04:00:00Z true true true 1"
	[ "$j" = "$want" ] && ok "tally agents --format json: $j" || bad "tally agents json: '$j', want '$want'"
fi
expect 2 "--ledger given twice" "$TALLY" agents --ledger "$work/agg/ledger.db" --ledger "$work/ref/ledger.db"
for c in "usage --from 2026-10 --to 2026-10" "invoice --period 2026-10" "sla --period 2026-10" "ledger verify"; do
	# shellcheck disable=SC2086
	expect 2 "--ledger given twice" "$TALLY" $c --ledger "$work/agg/ledger.db" --ledger "$work/ref/ledger.db"
done
expect 1 "no ledger here" "$TALLY" agents --ledger "$work/none.db"
# an all-in-one ledger: its own batches, no contact and no spool recorded
expect 0 "not reported" "$TALLY" agents --ledger "$work/ref/ledger.db"
grep -q "^sim-host-0  *-  " "$work/out" && ok "an all-in-one ledger's agents have no contact" || bad "$(cat "$work/out")"

# ---- the role's config, checked by tallyd -n ----
check() { # TEXT FRAGMENT: the config TEXT is refused (exit 2) naming FRAGMENT
	printf '%b\n' "$1" > "$work/n.yaml"
	if "$TALLYD" -n -c "$work/n.yaml" > "$work/n.out" 2>&1; then got=0; else got=$?; fi
	if [ "$got" -eq 2 ] && grep -qF -- "$2" "$work/n.out" && grep -q "n.yaml:[0-9]*:[0-9]*:" "$work/n.out"; then
		ok "tallyd -n: $(cat "$work/n.out")"
	else
		bad "tallyd -n with '$1': exit $got: $(cat "$work/n.out")"
	fi
}
HTTP='http:\n  tokens: [{token: 0123456789abcdef-h1, agent: h1}]'
check "tallyd:\n  role: aggregator\n$HTTP\ncollectors:\n  sim: {}" "an aggregator runs none"
check "tallyd:\n  role: aggregator" "give an 'http:' section"
check "tallyd:\n  role: aggregator\nhttp:\n  tokens: [{token: 0123456789abcdef-ad, admin: true}]" "needs its agents' tokens"
check "tallyd:\n  role: aggregator\n  clock: fast-forward\n  start: 2026-10-01\n  end: 2026-10-02\n$HTTP" "runs in real time"
check "tallyd:\n  role: aggregator\n$HTTP\ningest:\n  max_request: 100" "key 'max_request': 100 is out of range"
check "tallyd:\n  role: aggregator\n$HTTP\ningest:\n  max_pending: 2000000" "must hold at least one request"
check "tallyd:\n  role: aggregator\n$HTTP\ningest:\n  body_timeot: 5s" "unknown key 'body_timeot' in 'ingest'"
check "ingest:\n  max_request: 100000\ncollectors:\n  sim: {}" "'ingest' is for 'role: aggregator'"
check "tallyd:\n  role: aggregator\n$HTTP\n  tls_cert: $work/n.yaml" "TLS needs both"
printf 'tallyd:\n  role: aggregator\nhttp:\n  tokens: [{token: 0123456789abcdef-h1, agent: h1}]\ningest:\n' > "$work/n.yaml"
expect 0 "n.yaml: ok" "$TALLYD" -n -c "$work/n.yaml"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
