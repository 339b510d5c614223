#!/bin/sh
# make demo, the split deployment (docs/transport.md): on loopback, one
# tallyd in the aggregator role (the only writer of the ledger) and three in
# the agent role, each its own simulated fleet (racks a, b and c: 8 VMs on 2
# hosts each, their own agent ids and tokens), fast-forwarding the first
# week of October 2026 into their spools and sending it; then what the
# aggregator knows of its agents (tally agents) and the combined invoice of
# the three fleets from the one ledger.
# AGG_TALLYD and TALLY name other binaries for the aggregator and the CLI.
set -eu
B=${B:-build}
AGG=${AGG_TALLYD:-$B/tallyd}
TALLY=${TALLY:-$B/tally}
dir=./var/demo-split
rm -rf "$dir"
mkdir -p "$dir"
TOK=demo-token-0123456789
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done' EXIT

printf 'tallyd:\n  role: aggregator\nhttp:\n  tokens: [{token: %s-x, agent: x}]\n' "$TOK" > "$dir/check.yaml"
if ! "$AGG" -n -c "$dir/check.yaml" > /dev/null 2>&1; then
	echo "(the split demo needs the aggregator role, which this build does not have)"
	exit 0
fi

echo "== the split: one aggregator, three agents (racks a, b, c) on loopback, 2026-10-01 to 2026-10-08"
{
	cat <<EOC
tallyd:
  role: aggregator
  agent_id: aggregator
  data_dir: $dir/aggregator
  interval: 60s
  log_level: warning
rrd:
  enabled: false
http:
  port: 0
  tokens:
EOC
	for r in a b c; do
		for h in 0 1; do echo "    - {token: $TOK-rack-$r-$h, agent: rack-$r-$h}"; done
	done
} > "$dir/aggregator.yaml"
"$AGG" -c "$dir/aggregator.yaml" 2> "$dir/aggregator.log" &
apid=$!
pids="$pids $apid"
port=""
for i in $(seq 1 100); do
	port=$(sed -n 's/.*http: listening on .* port \([0-9][0-9]*\).*/\1/p' "$dir/aggregator.log" | head -n 1)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "the aggregator did not start:"; cat "$dir/aggregator.log"; exit 1; }
echo "aggregator: http://127.0.0.1:$port (ledger $dir/aggregator/ledger.db)"

seed=1
for r in a b c; do
	cat > "$dir/rack-$r.yaml" <<EOC
tallyd:
  role: agent
  data_dir: $dir/rack-$r
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-08T00:00:00Z
  log_level: warning
agent:
  aggregator: http://127.0.0.1:$port
  tokens:
    - {agent: rack-$r-0, token: $TOK-rack-$r-0}
    - {agent: rack-$r-1, token: $TOK-rack-$r-1}
collectors:
  sim:
    vms: 8
    tenants: 3
    hosts: 2
    host_prefix: rack-$r-
    seed: $seed
    crashes_per_day: 0.1
EOC
	seed=$((seed + 1))
	"$B/tallyd" -c "$dir/rack-$r.yaml" 2> "$dir/rack-$r.log" &
	pids="$pids $!"
	eval "pid_$r=\$!"
done
for r in a b c; do
	eval "p=\$pid_$r"
	wait "$p" || { echo "agent rack-$r failed:"; tail -n 5 "$dir/rack-$r.log"; exit 1; }
	echo "rack-$r: $(grep '^tallyd: agent' "$dir/rack-$r.log" | sed 's/^tallyd: agent, //')"
done
kill -TERM "$apid"
wait "$apid" || { echo "the aggregator failed:"; tail -n 5 "$dir/aggregator.log"; exit 1; }
L=$dir/aggregator/ledger.db
echo
echo "== tally agents (what the aggregator knows of each agent id)"
"$TALLY" agents --ledger "$L"
echo
echo "== tally invoice --period 2026-10: the three fleets in one ledger, one invoice per tenant"
"$TALLY" invoice --ledger "$L" --period 2026-10 --plan config/plan-example.yaml
