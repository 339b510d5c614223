#!/bin/sh
# An agent whose aggregator is away until its spool fills (docs/transport.md,
# "When the spool fills"): a 1 MiB spool, a fast-forwarded fleet, nothing
# answering at the aggregator's address. The spool passes the thin level
# and reaches the full one: /metrics says so (level, thinned readings), the
# built-in SpoolFilling fires, is listed at /api/v1/alerts and reaches a
# real Alertmanager with the agent's id. Then the aggregator comes (the
# ingest protocol's stand-in, tests/lib/ingest_stub.py, on the address the
# agent was given): every cycle's batch arrives once and in order, the
# spool empties, SpoolFilling resolves (Alertmanager no longer has it
# active) and the agent exits 0.
# A second run goes on past the ceiling (max_bytes + reserve_bytes): the
# spool refuses batches, their readings are held in memory and then dropped
# and counted; SpoolFilling says the spool is at its ceiling; afterwards
# every batch the spool took arrives, once.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
for t in curl jq python3; do
	command -v "$t" >/dev/null || { echo "$t missing (scripts/deps.sh installs it)"; exit 1; }
done
[ -x /usr/bin/prometheus-alertmanager ] || { echo "prometheus-alertmanager missing (scripts/deps.sh)"; exit 1; }
work=$(mktemp -d /tmp/tally-spoolfull-$$-XXXXXX)
pid="" apid="" STUB_PID=""
cleanup() {
	for p in $pid $apid $STUB_PID; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
. tests/lib/tallyd.sh
. tests/lib/agent.sh
. tests/lib/alertmanager.sh
am_start
agg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# phase NAME END: run the agent over [2026-10-01, END) until it has spooled
# all it can (the aggregator away), check the spool and SpoolFilling, then
# bring the aggregator and check what arrives; sets SPOOLED, DROPPED.
phase() {
	name=$1 end=$2
	cat > "$work/$name.yaml" <<EOC
tallyd:
  role: agent
  data_dir: $work/$name
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: $end
agent:
  aggregator: http://127.0.0.1:$agg_port
  backoff_min: 50ms
  backoff_max: 300ms
  spool:
    max_bytes: 1048576
    segment_bytes: 65536
http:
  port: 0
  serve_after_end: true
alerts:
  alertmanager: $AMURL
  resend: 1s
collectors:
  sim:
    vms: 10
    hosts: 1
    seed: 11
EOC
	"$TALLYD" -c "$work/$name.yaml" 2> "$work/$name.log" &
	pid=$!
	tallyd_port "$work/$name.log" "$pid"
	M=http://127.0.0.1:$PORT
	# the period collected: the agent now only waits for the aggregator
	wait_log "$work/$name.log" "agent: the period is collected" 60 || { echo "$name: not collected"; exit 1; }
	curl -s "$M/metrics" > "$work/$name.metrics"
	level=$(metric spool_level) thinned=$(metric readings_thinned_total) bytes=$(metric spool_bytes)
	SPOOLED=$(metric batches_spooled_total) DROPPED=$(metric readings_dropped_total)
	refused=$(metric batches_refused_total)
	echo "$name: spool at level $level, $bytes bytes; $SPOOLED batches spooled, $refused refused;" \
		"$thinned readings thinned, $DROPPED dropped"
	[ "$level" -eq 2 ] || { echo "$name: the spool is not at the full level"; exit 1; }
	[ "$thinned" -gt 0 ] || { echo "$name: nothing thinned"; exit 1; }
	[ "$bytes" -ge 1048576 ] || { echo "$name: level 2 below max_bytes ($bytes bytes)"; exit 1; }
	# never past the ceiling: max_bytes + reserve_bytes
	[ "$bytes" -le $((1048576 + 131072)) ] || { echo "$name: the spool passed its ceiling: $bytes"; exit 1; }
	# SpoolFilling: on the agent's API and at Alertmanager
	curl -s "$M/api/v1/alerts" > "$work/$name.alerts"
	jq -e '.alerts[] | select(.labels.alertname == "SpoolFilling" and .labels.agent == "sim-host-0"
		and .state == "firing")' "$work/$name.alerts" > /dev/null ||
		{ echo "$name: SpoolFilling is not firing at /api/v1/alerts:"; cat "$work/$name.alerts"; exit 1; }
	for i in $(seq 1 100); do am_has && break; sleep 0.1; done
	am_has || { echo "$name: Alertmanager has no SpoolFilling"; curl -s "$AMURL/api/v2/alerts"; exit 1; }
	SUMMARY=$(jq -r '.alerts[] | select(.labels.alertname == "SpoolFilling") | .annotations.summary' "$work/$name.alerts")
	echo "$name: SpoolFilling fires, at /api/v1/alerts and in Alertmanager: $SUMMARY"

	# the aggregator comes: everything spooled arrives once, the spool empties
	stub_start "$name-agg" --port "$agg_port"
	wait_log "$work/$name.log" "agent: every batch is acknowledged" 60 ||
		{ echo "$name: the spool was not drained"; tail "$work/$name.log"; exit 1; }
	N=$(wc -l < "$work/$name-agg.rec")
	awk '$1 != "sim-host-0" || $2 != NR { bad = 1 } END { exit bad }' "$work/$name-agg.rec" ||
		{ echo "$name: the batches did not arrive once each, in order"; exit 1; }
	# what was held in memory at the end is spooled once there is room
	curl -s "$M/metrics" > "$work/$name.metrics"
	SPOOLED=$(metric batches_spooled_total)
	[ "$N" -eq "$SPOOLED" ] || { echo "$name: $N batches arrived, $SPOOLED were spooled"; exit 1; }
	for i in $(seq 1 100); do am_has || break; sleep 0.1; done
	! am_has || { echo "$name: SpoolFilling still active at Alertmanager after the spool emptied"; exit 1; }
	curl -s "$M/api/v1/alerts" | jq -e '[.alerts[] | select(.labels.alertname == "SpoolFilling")] | length == 0' \
		> /dev/null || { echo "$name: SpoolFilling still listed"; exit 1; }
	[ "$(metric spool_level)" -eq 0 ] || { echo "$name: the level is not back to 0"; exit 1; }
	echo "$name: the aggregator got the $N batches once each, in order; SpoolFilling resolved"
	kill "$pid"; wait "$pid" || { echo "$name: the agent did not stop cleanly"; exit 1; }
	pid=""
	kill "$STUB_PID"; wait "$STUB_PID" 2>/dev/null || true
	STUB_PID=""
}
metric() { sed -n "s/^tally_agent_$1{agent=\"sim-host-0\"} //p" "$work/$name.metrics" | sed 's/\..*//'; }
am_has() {
	curl -s "$AMURL/api/v2/alerts?active=true" |
		jq -e '.[] | select(.labels.alertname == "SpoolFilling" and .labels.agent == "sim-host-0")' > /dev/null
}

# one day: thin, then full, but under the ceiling: every cycle's batch (1441)
phase full 2026-10-02T00:00:00Z
[ "$SPOOLED" -eq 1441 ] || { echo "full: $SPOOLED batches spooled, not one per cycle (1441)"; exit 1; }
# the sim's gauges are all allocations (vCPUs, memory, capacity, instance):
# a left-out one is implied by the last one written, nothing is lost
[ "$DROPPED" -eq 0 ] || { echo "full: $DROPPED readings dropped, none should be"; exit 1; }
# two days: past the ceiling; the refused readings are dropped and counted
phase ceiling 2026-10-03T00:00:00Z
case $SUMMARY in *"at its ceiling"*) ;; *) echo "ceiling: SpoolFilling does not say so: $SUMMARY"; exit 1 ;; esac
grep -q "spool full" "$work/ceiling.log" || { echo "ceiling: the refusal is not logged"; exit 1; }
grep -q "dropped the .* readings, .* events and .* metadata changes held in memory" "$work/ceiling.log" ||
	{ echo "ceiling: the dropped readings are not logged"; exit 1; }
