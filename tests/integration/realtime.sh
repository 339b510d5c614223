#!/bin/sh
# tallyd in real time: ticks on the wall clock, a clean stop on SIGTERM with
# everything committed (exit 0), and a restart that continues the same
# agents' sequence numbers and series: no batch counted twice, and the cpu
# usage of the second run adds to the first.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-realtime-XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: rt
  data_dir: $work/d
  interval: 1s
  log_level: warning
collectors:
  sim:
    vms: 4
    hosts: 2
    start: $start
EOC
run() { # seconds
	"$TALLYD" -q -c "$work/t.yaml" &
	pid=$!
	sleep "$1"
	kill -TERM "$pid"
	wait "$pid" || { echo "tallyd exited $? after SIGTERM, expected 0"; exit 1; }
}
q() { sqlite3 "$work/d/ledger.db" "$1"; }
run 3.5
seq1=$(q "SELECT sum(last_seq) FROM agents")
cpu1=$(q "SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'")
[ "$seq1" -ge 4 ] || { echo "only $seq1 batches in 3.5 s at a 1 s interval"; exit 1; }
[ "$cpu1" -gt 0 ] || { echo "no cpu usage after the first run"; exit 1; }
run 2.5
seq2=$(q "SELECT sum(last_seq) FROM agents")
batches=$(q "SELECT sum(batches) FROM agents")
cpu2=$(q "SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'")
[ "$seq2" -gt "$seq1" ] || { echo "the restart did not continue the sequence ($seq1 -> $seq2)"; exit 1; }
[ "$batches" -eq "$seq2" ] || { echo "$batches batches ingested for seqs summing to $seq2"; exit 1; }
[ "$cpu2" -gt "$cpu1" ] || { echo "cpu usage did not grow across the restart ($cpu1 -> $cpu2)"; exit 1; }
# 4 VMs run 5-95% of their vCPUs: no VM can use more CPU than its vCPUs times
# the wall time, which a double count across the restart would break
over=$(q "SELECT count(*) FROM (SELECT u.resource_id, sum(u.quantity) AS cpu FROM usage u
  JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu' GROUP BY u.resource_id) c
  WHERE c.cpu > 4 * 12 * 1000000000")
[ "$over" -eq 0 ] || { echo "$over VMs used more CPU than possible"; exit 1; }
echo "real time: $seq1 then $seq2 batches, cpu $cpu1 -> $cpu2 ns, no batch twice"

# without a fixed 'start' the sim cannot continue a real-time ledger: refused
sed '/    start:/d' "$work/t.yaml" > "$work/nostart.yaml"
if "$TALLYD" -q -c "$work/nostart.yaml" 2>"$work/err"; then rc=0; else rc=$?; fi
[ "$rc" -eq 1 ] && grep -q "set collectors.sim.start" "$work/err" || { echo "resume without start: exit $rc: $(cat "$work/err")"; exit 1; }
echo "resume without a fixed start refused: $(cat "$work/err")"
