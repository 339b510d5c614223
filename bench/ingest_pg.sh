#!/bin/sh
# Aggregator ingest over the network into PostgreSQL (issue 13): a cluster
# of its own (tests/lib/pg.sh, fsync on, 512 MB of shared buffers), and
# bench/simagents posting a simulated fleet of AGENTS hosts (VMS VMs in all)
# at a 10 s interval in fast-forward, PERIOD of it (1 h: 361 cycles), every
# batch acknowledged only once committed: to ONE aggregator on the
# PostgreSQL ledger, then to TWO aggregators on the same ledger (agent i
# posts to aggregator i mod 2; their commits take turns under the commit
# lock). Median of RUNS runs of each; bench/ingest.sh gives the SQLite
# figure of the same fleet beside it. Target (issue 13): >= 300,000
# samples/s with two aggregators.
#
# usage: sh bench/ingest_pg.sh [B [AGENTS [VMS [RUNS]]]]
set -eu
B=${1:-${B:-build}}
AGENTS=${2:-100}
VMS=${3:-10000}
RUNS=${4:-3}
PERIOD=${PERIOD:-2026-10-01T01:00:00Z}
TALLYD=$PWD/$B/tallyd
SIM=$PWD/$B/bench/simagents
work=$(mktemp -d /tmp/tally-bench-ingestpg-XXXXXX)
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null; done; pg_stop; rm -rf "$work"' EXIT
. tests/lib/tallyd.sh
. tests/lib/pg.sh
pg_need || { echo "   (skipped: PostgreSQL 15 is not installed)"; exit 0; }
PG_FSYNC=on PG_SHARED_BUFFERS=512MB pg_start "$work/pg" >/dev/null || { echo "   (skipped: PostgreSQL cannot start here)"; exit 0; }

conf() { # NAME
	cat <<EOC
tallyd:
  role: aggregator
  agent_id: $1
  data_dir: $work/$1
  log_level: warning
ledger:
  url: "$PG_LEDGER"
rrd:
  enabled: false
http:
  port: 0
  max_connections_per_address: 1024
  tokens:
EOC
	i=0
	while [ $i -lt "$AGENTS" ]; do
		echo "    - {token: bench-token-0123456789-sim-host-$i, agent: sim-host-$i}"
		i=$((i + 1))
	done
}

# one N: a fresh ledger, N aggregators on it, one run; prints "samples/s cpu%"
one() {
	pg_schema "bench_$1_$$" >/dev/null
	urls= pids= c0=0
	for k in $(seq 1 "$1"); do
		conf "agg$k" > "$work/agg$k.yaml"
		: > "$work/agg$k.log"
		"$TALLYD" -q -c "$work/agg$k.yaml" 2>"$work/agg$k.log" &
		p=$!
		pids="$pids $p"
		tallyd_port "$work/agg$k.log" "$p" 30 >/dev/null 2>&1 || { echo "an aggregator did not start"; cat "$work/agg$k.log"; exit 1; }
		urls="$urls -u http://127.0.0.1:$PORT"
	done
	for p in $pids; do c0=$((c0 + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$SIM" $urls --token-prefix bench-token-0123456789- --vms "$VMS" --hosts "$AGENTS" --tenants 50 \
		--seed 3 --end "$PERIOD" --backlog 128 > "$work/sim.out" 2>&1 || { echo "simagents failed:"; cat "$work/sim.out"; exit 1; }
	t1=$(date +%s.%N)
	c1=0
	for p in $pids; do c1=$((c1 + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	for p in $pids; do kill -TERM "$p"; wait "$p" || true; done
	pids=
	rate=$(sed -n 's/.* \([0-9][0-9]*\) samples\/s;.*/\1/p' "$work/sim.out")
	echo "$rate $(echo "$c0 $c1 $t0 $t1 $(getconf CLK_TCK)" | awk '{printf "%.0f", ($2 - $1) / $5 / ($4 - $3) * 100}')"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "   $AGENTS agents, $VMS VMs in all, 10 s interval, to $PERIOD, fast-forward, RRD off, PostgreSQL 15 on this host"
for n in 1 2; do
	: > "$work/runs"
	r=0
	while [ $r -lt "$RUNS" ]; do
		one "$n" >> "$work/runs"
		r=$((r + 1))
	done
	printf '   %d aggregator%s on one PostgreSQL ledger: samples/s median %s (min %s, max %s, %s runs); the aggregators'"'"' CPU %s%% of a core\n' \
		"$n" "$([ "$n" = 1 ] && echo "" || echo s)" "$(cut -d' ' -f1 "$work/runs" | median)" \
		"$(cut -d' ' -f1 "$work/runs" | sort -n | head -n 1)" "$(cut -d' ' -f1 "$work/runs" | sort -n | tail -n 1)" \
		"$RUNS" "$(cut -d' ' -f2 "$work/runs" | median)"
done
echo "   (target with two aggregators: >= 300000 samples/s; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
