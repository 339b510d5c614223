#!/bin/sh
# Crash safety in real time (docs/architecture.md rules 1, 5, 7; docs/config.md
# ledger.commit_every): a real-time tallyd commits every 10 s, so a kill -9
# lands between commits and loses the cycles since the last one. Two
# tallyds read the same simulated fleet (same seed and start: the counters
# are the same functions of time) from the same first tick: one runs
# undisturbed, the other is killed -9 at random instants and restarted.
# Both are stopped cleanly after the same tick. The oracle is the
# undisturbed run: every series' total usage (counters, and gauges
# integrated over time) must be equal to the unit, because the readings
# lost with a killed process only held counter progress and unchanged
# gauges, which the first reading after the restart covers. What a kill
# may lose is resolution: fewer samples, less covered time.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || { echo "no $TALLYD: run make first"; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI missing (scripts/deps.sh installs it)"; exit 1; }
work=$(mktemp -d /tmp/tally-crashrt-XXXXXX)
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)

conf() { # $1 = data dir
	cat <<EOC
tallyd:
  agent_id: crashrt
  data_dir: $1
  interval: 1s
  log_level: error
rrd:
  enabled: false
collectors:
  sim:
    vms: 6
    tenants: 2
    hosts: 2
    disks: 1
    nics: 1
    seed: 7
    start: $start
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
EOC
}
conf "$work/ref" > "$work/ref.yaml"
conf "$work/kill" > "$work/kill.yaml"

# start both just after a second boundary, so their first tick is the same
# (the next whole second): the first readings are baselines in both
while [ "$(date +%N | cut -c1)" != 2 ]; do sleep 0.05; done
"$TALLYD" -q -c "$work/ref.yaml" & ref=$!
"$TALLYD" -q -c "$work/kill.yaml" & victim=$!
pids="$ref $victim"

kills=0
while [ "$kills" -lt 6 ]; do
	# 1.3 - 4.2 s: after at least one tick of this run, mostly before its
	# next periodic commit (10 s)
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 2900 + 1300 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 "$victim"
	wait "$victim" 2>/dev/null || true
	kills=$((kills + 1))
	"$TALLYD" -q -c "$work/kill.yaml" & victim=$!
	pids="$ref $victim"
done
sleep 3
# stop both in the middle of a second: both have read the same last tick
while [ "$(date +%N | cut -c1)" != 5 ]; do sleep 0.05; done
kill -TERM "$ref" "$victim"
wait "$ref" || { echo "reference tallyd exited $? after SIGTERM"; exit 1; }
wait "$victim" || { echo "killed tallyd exited $? after SIGTERM"; exit 1; }
pids=

q() { sqlite3 "$1" "$2"; }
totals() {
	sqlite3 "$1" <<'EOS'
.mode list
SELECT r.uuid, m.name, u.device, sum(u.quantity), sum(u.spanned_ns)
  FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT 'series', r.uuid, m.name, s.device, s.last_ns, s.origin_ns, s.last_value, s.flags
  FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
  ORDER BY 2, 3, 4;
EOS
}
totals "$work/ref/ledger.db" > "$work/ref.txt"
totals "$work/kill/ledger.db" > "$work/kill.txt"
series=$(grep -c '^series' "$work/ref.txt")
[ "$series" -ge 60 ] || { echo "reference ledger has only $series series"; exit 1; }
cpu=$(q "$work/ref/ledger.db" "SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'")
[ "$cpu" -gt 0 ] || { echo "no cpu usage in the reference ledger"; exit 1; }
if ! cmp -s "$work/ref.txt" "$work/kill.txt"; then
	echo "ledger totals after $kills kills -9 differ from the undisturbed run:"
	diff "$work/ref.txt" "$work/kill.txt" | head -20
	exit 1
fi
# the kills did lose uncommitted cycles (else this test proves nothing):
# the killed run committed fewer readings than the undisturbed one
s_ref=$(q "$work/ref/ledger.db" "SELECT sum(samples) FROM usage")
s_kill=$(q "$work/kill/ledger.db" "SELECT sum(samples) FROM usage")
[ "$s_kill" -lt "$s_ref" ] || { echo "the killed run lost no readings ($s_kill vs $s_ref): no kill landed between commits"; exit 1; }
echo "killed tallyd -9 $kills times between commits: $series series, totals equal to the undisturbed run" \
	"(cpu $cpu ns); readings kept $s_kill of $s_ref"
