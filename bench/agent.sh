#!/bin/sh
# The agent role's figures (docs/transport.md), printed, never asserted:
#  1. what an agent costs per sample: a 100-VM simulated fleet at a 10 s
#     interval, 6 h of it in fast-forward (2161 cycles), spooling only (no
#     aggregator), then spooling and sending to an aggregator on loopback:
#     CPU of the whole agent process (the simulated collector included) per
#     sample, and fsyncs per batch (one fdatasync per cycle's batch, plus
#     segments and acknowledgements), which at a 10 s interval is that
#     divided by 10 per second. Median of 3 runs.
#  2. the agent's RSS through an hour's outage, and ten: sampled every
#     100 ms while it spools with no aggregator (the spool is on disk).
#  3. catch-up: 100 agents of 100 VMs each, an hour's outage, then the
#     aggregator: the seconds until every spool is empty (needs this build's
#     aggregator role; skipped without it).
#  4. through the same outage, side by side: collectd 5.12's network plugin
#     forwarding to a second collectd on loopback, and a tally agent sending
#     to its aggregator (real time, 1 s interval, a 20 s outage of the
#     receiver): the samples each lost.
# usage: agent.sh B WORK
set -eu
B=$1 work=$2
TALLYD=$PWD/$B/tallyd
mkdir -p "$work"
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
. tests/lib/agent.sh
med() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Is there an aggregator role in this build?
cat > "$work/aggchk.yaml" <<EOC
tallyd:
  role: aggregator
http:
  port: 0
  tokens: [{token: bench-agent-token-000, agent: x}]
EOC
have_agg=0
"$TALLYD" -n -c "$work/aggchk.yaml" > /dev/null 2>&1 && have_agg=1

# agg_start NAME TOKENS_FILE [PORT]: a tallyd aggregator on loopback, on
# PORT or a free one (its config's http.tokens from TOKENS_FILE); sets
# AGG_URL, AGG_PID.
agg_start() {
	p=${3:-$(free_port)}
	cat > "$work/$1.yaml" <<EOC
tallyd:
  role: aggregator
  data_dir: $work/$1
  interval: 10s
  log_level: warning
rrd:
  enabled: false
ingest: {}
http:
  port: $p
  max_connections_per_address: 1024
  tokens:
$(cat "$2")
EOC
	"$TALLYD" -c "$work/$1.yaml" 2> "$work/$1.log" &
	AGG_PID=$!
	pids="$pids $AGG_PID"
	AGG_URL=http://127.0.0.1:$p
	for i in $(seq 1 100); do curl -s -o /dev/null "$AGG_URL/metrics" && return 0; sleep 0.1; done
	echo "the aggregator did not start:"; cat "$work/$1.log"; exit 1
}

# conf NAME URL END VMS PREFIX SEED: a fast-forward agent of one simulated host
conf() {
	cat <<EOC
tallyd:
  role: agent
  data_dir: $work/$1
  interval: 10s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: $3
  log_level: info
agent:
  aggregator: $2
  token: bench-agent-token-$5
  backoff_min: 100ms
  backoff_max: 1s
collectors:
  sim:
    vms: $4
    hosts: 1
    host_prefix: $5
    seed: $6
EOC
}
# the summary line's figures: samples CPU fsyncs batches RSS
summary() {
	sed -n 's/.*(\([0-9]*\) samples) spooled.* \([0-9]*\) fsyncs, .* CPU \([0-9.]*\) s, peak RSS \([0-9.]*\) MiB.*/\1 \3 \2 \4/p' "$1"
}

echo "-- 1. an agent's cost per sample: 100 VMs, 10 s interval, 6 h in fast-forward (2161 cycles)"
for mode in spool send; do
	: > "$work/cost.$mode"
	for run in 1 2 3; do
		rm -rf "$work/c"
		if [ "$mode" = send ]; then
			if [ "$have_agg" = 1 ]; then
				echo "    - {token: bench-agent-token-h, agent: h0}" > "$work/c.tokens"
				agg_start cagg "$work/c.tokens"
				url=$AGG_URL
			else
				stub_start cstub$run --no-crc
				pids="$pids $STUB_PID"
				url=http://127.0.0.1:$STUB_PORT
			fi
		else
			url=http://127.0.0.1:1
		fi
		conf c "$url" 2026-10-01T06:00:00Z 100 h 7 > "$work/c.yaml"
		"$TALLYD" -c "$work/c.yaml" 2> "$work/c.log" &
		p=$!
		if [ "$mode" = spool ]; then
			wait_log "$work/c.log" "agent: the period is collected" 120 || true
			kill "$p"
		fi
		wait "$p" || true
		if [ "$mode" = send ]; then
			q=${AGG_PID:-$STUB_PID}
			kill "$q" 2>/dev/null || true
			wait "$q" 2>/dev/null || true
		fi
		summary "$work/c.log" >> "$work/cost.$mode"
	done
	set -- $(awk '{ print $2 / $1 * 1e6 }' "$work/cost.$mode" | med) \
		$(awk '{ print $3 / 2161 }' "$work/cost.$mode" | med) $(awk '{ print $1 }' "$work/cost.$mode" | med)
	echo "   $mode: ${1} us CPU per sample (median of 3; $3 samples), $2 fsyncs per cycle's batch" \
		"= $(echo "$2" | awk '{ printf "%.2f", $1 / 10 }') fsyncs/s at a 10 s interval"
done
[ "$have_agg" = 1 ] || echo "   (sent to tests/lib/ingest_stub.py: this build has no aggregator role)"

echo "-- 2. the agent's RSS through an outage: 100 VMs, 10 s interval, 10 h in fast-forward, no aggregator"
rm -rf "$work/r"
conf r http://127.0.0.1:1 2026-10-01T10:00:00Z 100 h 7 > "$work/r.yaml"
"$TALLYD" -c "$work/r.yaml" 2> "$work/r.log" &
p=$!
: > "$work/rss"
while kill -0 "$p" 2>/dev/null && ! grep -q "the period is collected" "$work/r.log"; do
	awk '/^VmRSS/ { print $2 }' "/proc/$p/status" >> "$work/rss" 2>/dev/null || true
	sleep 0.1
done
kill "$p"; wait "$p" || true
n=$(wc -l < "$work/rss")
h1=$(head -n $((n / 10 + 1)) "$work/rss" | tail -n 1) h10=$(tail -n 1 "$work/rss")
echo "   RSS after the first hour $((h1 / 1024)) MiB, after ten hours $((h10 / 1024)) MiB;" \
	"median $(med < "$work/rss" | awk '{ printf "%.1f", $1 / 1024 }') MiB, max $(sort -n "$work/rss" | tail -n 1 |
	awk '{ printf "%.1f", $1 / 1024 }') MiB over $n samples (target: flat, under 32 MiB);" \
	"spool on disk $(du -sk "$work/r/spool" | awk '{ printf "%.1f", $1 / 1024 }') MiB"

echo "-- 3. catch-up: 100 agents x 100 VMs, an hour's outage, then the aggregator"
if [ "$have_agg" = 1 ]; then
	: > "$work/k.tokens"
	for i in $(seq 0 99); do echo "    - {token: bench-agent-token-k$i-, agent: k$i-0}" >> "$work/k.tokens"; done
	kport=$(free_port)
	apids=""
	for i in $(seq 0 99); do
		rm -rf "$work/k$i"
		conf "k$i" "http://127.0.0.1:$kport" 2026-10-01T01:00:00Z 100 "k$i-" "$((100 + i))" > "$work/k$i.yaml"
		"$TALLYD" -q -c "$work/k$i.yaml" 2> "$work/k$i.log" &
		apids="$apids $!"
	done
	pids="$pids $apids"
	for i in $(seq 0 99); do wait_log "$work/k$i.log" "the period is collected" 300 || true; done
	# the hour is spooled; the aggregator comes on the agents' address
	t0=$(date +%s.%N)
	agg_start kagg "$work/k.tokens" "$kport"
	for a in $apids; do wait "$a" || true; done
	t1=$(date +%s.%N)
	kill "$AGG_PID"; wait "$AGG_PID" 2>/dev/null || true
	echo "   every spool drained $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s after the aggregator started" \
		"(100 x 361 batches; target: under 2 minutes)"
else
	echo "   (skipped: this build has no aggregator role)"
fi

echo "-- 4. through a 20 s outage of the receiver, real time, 1 s interval"
if command -v collectd >/dev/null && [ -e /usr/lib/collectd/network.so ]; then
	cport=$(free_port)
	types=/usr/share/collectd/types.db
	for side in a b; do
		mkdir -p "$work/cd$side"
		{
			echo "Hostname \"bench-$side\""
			echo "FQDNLookup false"
			echo "BaseDir \"$work/cd$side\""
			echo "PIDFile \"$work/cd$side/pid\""
			echo "TypesDB \"$types\""
			echo "Interval 1"
			echo "LoadPlugin csv"
			echo "<Plugin csv>"
			echo "  DataDir \"$work/cd$side/csv\""
			echo "</Plugin>"
			echo "LoadPlugin network"
			if [ "$side" = a ]; then
				# enough value lists a second (some 30) that the network
				# plugin's 1452-byte packets leave every second or so
				for pl in load cpu memory interface; do echo "LoadPlugin $pl"; done
				echo "<Plugin network>"
				echo "  Server \"127.0.0.1\" \"$cport\""
				echo "</Plugin>"
			else
				echo "<Plugin network>"
				echo "  Listen \"127.0.0.1\" \"$cport\""
				echo "</Plugin>"
			fi
		} > "$work/cd$side.conf"
	done
	collectd -f -C "$work/cdb.conf" > "$work/cdb.log" 2>&1 &
	cb=$!
	collectd -f -C "$work/cda.conf" > "$work/cda.log" 2>&1 &
	ca=$!
	pids="$pids $ca $cb"
	sleep 10
	kill "$cb"; wait "$cb" 2>/dev/null || true
	sleep 20
	collectd -f -C "$work/cdb.conf" >> "$work/cdb.log" 2>&1 &
	cb=$!
	pids="$pids $cb"
	sleep 10
	kill "$ca" "$cb"; wait "$ca" "$cb" 2>/dev/null || true
	# what the sender wrote itself (a csv line per value list) against what
	# reached the receiver
	sent=$(find "$work/cda/csv" -type f -exec cat {} + | grep -vc '^epoch')
	got=$(find "$work/cdb/csv" -type f -exec cat {} + 2>/dev/null | grep -vc '^epoch' || true)
	echo "   collectd network plugin: $((sent - got)) of $sent value lists lost ($got arrived)"
else
	echo "   (collectd's network plugin is not installed: scripts/deps.sh installs collectd-core)"
fi
# the agent, through the same outage of its aggregator
rm -rf "$work/o"
sport=$(free_port)
cat > "$work/o.yaml" <<EOC
tallyd:
  role: agent
  data_dir: $work/o
  interval: 1s
  log_level: info
agent:
  aggregator: http://127.0.0.1:$sport
  token: bench-agent-token-o
  backoff_min: 100ms
  backoff_max: 1s
collectors:
  sim:
    vms: 10
    hosts: 1
    host_prefix: o
EOC
stub_start o --port "$sport"
pids="$pids $STUB_PID"
"$TALLYD" -c "$work/o.yaml" 2> "$work/o.log" &
ap=$!
pids="$pids $ap"
sleep 10
kill "$STUB_PID"; wait "$STUB_PID" 2>/dev/null || true
sleep 20
stub_start o --port "$sport"
pids="$pids $STUB_PID"
sleep 10
kill "$ap"; wait "$ap" || true
sent=$(summary "$work/o.log" | awk '{ print $1 }')
waiting=$(sed -n 's/.* \([0-9]*\) waiting.*/\1/p' "$work/o.log")
got=$(awk '{ s += $4 } END { print s + 0 }' "$work/o.rec")
echo "   tally agent: $((sent - got)) of $sent samples not at the aggregator ($got arrived; $waiting batches" \
	"still in the spool when it stopped, to be sent at its next start: lost none)"
fs=$(summary "$work/o.log" | awk '{ print $3 }')
cyc=$(sed -n 's/^tallyd: agent, \([0-9]*\) cycles.*/\1/p' "$work/o.log")
echo "   (in real time the agent made $fs fsyncs in $cyc cycles, $(echo "$fs $cyc" | awk '{ printf "%.1f", $1 / $2 }')" \
	"a cycle: the batch's fdatasync and the acknowledgement's file and directory fsyncs)"
