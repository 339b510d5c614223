#!/bin/sh
# Crash safety (docs/architecture.md rule 7): kill -9 tallyd at random instants while it
# ingests a fast-forwarded simulated fleet, at least 20 times, restarting it
# after each kill, and check that the final ledger equals the ledger of a run
# that was never killed: same usage rows (to the last unit), same series
# state, same agents' seqs, same events, same resources.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || { echo "no $TALLYD: run make first"; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI missing (scripts/deps.sh installs it)"; exit 1; }
work=$(mktemp -d /tmp/tally-crash-XXXXXX)
trap 'rm -rf "$work"' EXIT

conf() { # $1 = data dir
	cat <<EOC
tallyd:
  agent_id: crash
  data_dir: $1
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-11-01T00:00:00Z
  log_level: error
ledger:
  commit_every: 10ms
rrd:
  enabled: true
collectors:
  sim:
    vms: 24
    tenants: 3
    hosts: 3
    disks: 1
    nics: 1
    seed: 99
    loss: 0.05
    reboots_per_day: 0.5
    stops_per_day: 0.3
    migrations_per_day: 0.3
EOC
}
conf "$work/ref" > "$work/ref.yaml"
conf "$work/kill" > "$work/kill.yaml"

t0=$(date +%s%N)
"$TALLYD" -q -c "$work/ref.yaml"
t1=$(date +%s%N)
ref_ms=$(( (t1 - t0) / 1000000 ))
echo "reference run: ${ref_ms} ms"

# kill at a random instant up to 1/30 of the reference run's length after
# each start, so at least 20 kills land before the work is done (each run
# resumes after the last commit of the one killed before it)
max_ms=$(( ref_ms / 30 )); [ "$max_ms" -lt 30 ] && max_ms=30
kills=0 runs=0
while [ "$kills" -lt 24 ] && [ "$runs" -lt 200 ]; do
	runs=$((runs + 1))
	"$TALLYD" -q -c "$work/kill.yaml" &
	pid=$!
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % max_ms + 5 ))
	sleep "$(printf '0.%03d' "$ms")"
	if kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		kills=$((kills + 1))
	else
		wait "$pid" || { echo "tallyd failed on restart $runs"; exit 1; }
		echo "run $runs finished before its kill"
		break
	fi
done
# finish the run
"$TALLYD" -q -c "$work/kill.yaml" || { echo "tallyd failed to finish after $kills kills"; exit 1; }
echo "killed tallyd $kills times in $runs runs"
[ "$kills" -ge 20 ] || { echo "only $kills kills: the run was too short to kill 20 times"; exit 1; }

dump() {
	sqlite3 "$1" <<'EOS'
.mode list
SELECT 'usage', r.uuid, m.name, u.device, u.hour_ns, u.quantity, u.spanned_ns, u.covered_ns, u.samples
  FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id
  ORDER BY r.uuid, m.name, u.device, u.hour_ns;
SELECT 'series', r.uuid, m.name, s.device, s.agent, s.last_ns, s.origin_ns, s.last_value, s.flags
  FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
  ORDER BY 2, 3, 4, 5;
SELECT 'agent', agent, last_seq, last_time_ns, batches FROM agents ORDER BY agent;
SELECT 'event', r.uuid, e.time_ns, e.agent, e.type, e.reason FROM events e
  JOIN resources r ON r.id = e.resource_id ORDER BY 2, 3, 4, 5;
SELECT 'resource', uuid, type, name, tenant, flavor, labels, host, first_seen_ns, last_seen_ns
  FROM resources ORDER BY uuid;
SELECT 'attrs', r.uuid, a.since_ns, a.tenant, a.flavor FROM resource_attrs a
  JOIN resources r ON r.id = a.resource_id ORDER BY 2, 3;
EOS
}
dump "$work/ref/ledger.db" > "$work/ref.txt"
dump "$work/kill/ledger.db" > "$work/kill.txt"
rows=$(grep -c '^usage' "$work/ref.txt")
[ "$rows" -gt 1000 ] || { echo "reference ledger has only $rows usage rows"; exit 1; }
if ! cmp -s "$work/ref.txt" "$work/kill.txt"; then
	echo "ledger after $kills kills differs from the reference:"
	diff "$work/ref.txt" "$work/kill.txt" | head -20
	exit 1
fi
echo "ledgers equal: $rows usage rows, $(grep -c '^event' "$work/ref.txt") events"
# the RRD files written across the kills are still readable
f=$(find "$work/kill/rrd" -name '*.rrd' | head -n 1)
[ -n "$f" ] && rrdtool info "$f" >/dev/null || { echo "no readable RRD file after the kills"; exit 1; }
