#!/bin/sh
# Real time with commits far apart (ledger.commit_every: 1h, docs/config.md):
# /metrics still follows every cycle (the live state is published after
# each one), while the ledger holds what was committed: the first cycle
# (first readings commit at once) and nothing more until the clean stop,
# which commits everything.
set -eu
. tests/lib/tallyd.sh
B=${B:-build}
TALLYD=$PWD/$B/tallyd
for c in curl sqlite3; do
	command -v "$c" >/dev/null || { echo "skip: '$c' missing (scripts/deps.sh installs it)"; exit 77; }
done
work=$(mktemp -d /tmp/tally-live-XXXXXX)
tpid=
trap '[ -n "$tpid" ] && kill "$tpid" 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: live
  data_dir: $work/d
  interval: 1s
  log_level: info
ledger:
  commit_every: 1h
rrd:
  enabled: false
http:
  port: 0
collectors:
  sim:
    vms: 3
    start: $(date -u +%Y-%m-%dT%H:%M:%SZ)
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
EOC
"$TALLYD" -c "$work/t.yaml" 2> "$work/log" &
tpid=$!
tallyd_port "$work/log" "$tpid" 10 || exit 1
m() { # the value of metric $1 (no labels) in the current scrape
	curl -s "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
cpu() { # the sum of the VMs' tally_cpu_seconds_total in the current scrape
	curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^tally_cpu_seconds_total\{/ { s += $2 } END { printf "%.9f\n", s }'
}
ledger_cpu() {
	sqlite3 "$work/d/ledger.db" "SELECT coalesce(sum(quantity), 0) FROM usage u JOIN meters m ON m.id = u.meter_id WHERE m.name = 'cpu'"
}
# wait for the second cycle: the first (all baselines) was committed at once
i=0
while :; do
	c1=$(m tally_collection_cycles_total)
	[ -n "$c1" ] && [ "$c1" -ge 2 ] && break
	i=$((i + 1)); [ $i -lt 100 ] || { echo "no second cycle in 10 s"; exit 1; }
	sleep 0.1
done
commit1=$(m tally_ledger_last_commit_timestamp_seconds)
cpu1=$(cpu)
lcpu1=$(ledger_cpu)
i=0
while :; do # a few more cycles (bounded wait, no timing asserted)
	sleep 0.5
	c2=$(m tally_collection_cycles_total)
	i=$((i + 1)); { [ "$c2" -ge $((c1 + 3)) ] || [ $i -ge 40 ]; } && break
done
commit2=$(m tally_ledger_last_commit_timestamp_seconds)
cpu2=$(cpu)
lcpu2=$(ledger_cpu)
fails=0
[ "$c2" -ge $((c1 + 3)) ] && echo "ok   cycles exposed $c1 -> $c2" || { echo "FAIL cycles exposed $c1 -> $c2"; fails=$((fails + 1)); }
[ "$commit1" = "$commit2" ] && echo "ok   no commit in between (last commit $commit1)" ||
	{ echo "FAIL a commit happened: $commit1 -> $commit2"; fails=$((fails + 1)); }
awk -v a="$cpu1" -v b="$cpu2" 'BEGIN { exit !(b > a) }' && echo "ok   /metrics cpu grew $cpu1 -> $cpu2 s" ||
	{ echo "FAIL /metrics cpu $cpu1 -> $cpu2"; fails=$((fails + 1)); }
[ "$lcpu1" = "$lcpu2" ] && echo "ok   ledger cpu unchanged between commits ($lcpu2 ns)" ||
	{ echo "FAIL ledger cpu changed without a commit: $lcpu1 -> $lcpu2"; fails=$((fails + 1)); }
kill -TERM "$tpid"
if wait "$tpid"; then echo "ok   stopped cleanly"; else echo "FAIL tallyd exited $?"; fails=$((fails + 1)); fi
tpid=
lcpu3=$(ledger_cpu)
[ "$lcpu3" -gt "$lcpu2" ] && echo "ok   the clean stop committed the cpu usage ($lcpu2 -> $lcpu3 ns)" ||
	{ echo "FAIL ledger cpu after the stop: $lcpu2 -> $lcpu3"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ]
