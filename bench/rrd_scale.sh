#!/bin/sh
# RRD at fleet scale: tallyd with the libvirt collector on a test-driver node
# of N domains (2 disks, 1 NIC each: 4 RRD files per domain), 10 s
# interval, real time, RRD on. Prints
#   - how long the first RRD files took to exist (created by the RRD writer
#     thread while metering goes on) and whether a cycle overran;
#   - the daemon's CPU per domain per 10 s cycle in steady state (all files
#     exist), over 60 s windows (one RRD step: each file is written once a
#     step) after the creation burst;
#   - RRD megabytes per domain, peak RSS, RRD rows dropped.
# With PEERS=DIR (an installed copy of the peer benchmark harness), collectd
# 5.12 (virt -> rrdtool plugin) on a node of the same size and interval in the
# same run. usage: rrd_scale.sh TALLYD N WORKDIR [STEADY_WINDOWS]
set -eu
tallyd=$1 n=$2 dir=$3 nwin=${4:-3}
mkdir -p "$dir"
node="$dir/node$n.xml"
[ -f "$node" ] || sh tests/fixtures/libvirt/gen-testnode.sh "$n" "$node"
rm -rf "$dir/data"
cat > "$dir/t.yaml" <<EOC
tallyd:
  agent_id: bench-rrd
  data_dir: $dir/data
  interval: 10s
  log_level: warning
rrd:
  enabled: true
http:
  port: 0
collectors:
  libvirt:
    uri: 'test://$node'
EOC
"$tallyd" -c "$dir/t.yaml" 2>"$dir/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / t }' "/proc/$pid/stat"; }
now() { date +%s.%N; }
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
port=
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$dir/log" | head -n 1)
	[ -n "$port" ] && break
	sleep 0.2
done
[ -n "$port" ] || { echo "rrd_scale: tallyd did not start"; cat "$dir/log"; exit 1; }
t0=$(now)
want=$((n * 4))
# the creation burst: until every file exists and the writer has caught up
while :; do
	sleep 2
	files=$(find "$dir/data/rrd" -name '*.rrd' 2>/dev/null | wc -l)
	backlog=$(metric tally_rrd_backlog_rows)
	[ "$files" -ge "$want" ] && [ "${backlog:-1}" = 0 ] && break
	if awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 900) }'; then
		echo "rrd_scale: $files of $want files after 900 s; giving up"; exit 1
	fi
done
t1=$(now)
sleep 10
c0=$(cpu) w0=$(now) cs=$c0 ws=$w0 wins= k=0
while [ "$k" -lt "$nwin" ]; do
	sleep 60
	c1=$(cpu) w1=$(now)
	wins="$wins $(awk -v a="$c0" -v b="$c1" -v x="$w0" -v y="$w1" -v n="$n" 'BEGIN { printf "%.2f", 1e6 * (b - a) / ((y - x) / 10) / n }')"
	c0=$c1 w0=$w1 k=$((k + 1))
done
cycles=$(metric tally_collection_cycles_total)
overruns=$(metric tally_collection_overruns_total)
dropped=$(metric tally_rrd_rows_dropped_total)
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
mb=$(du -sm "$dir/data/rrd" | awk '{ print $1 }')
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
mean=$(awk -v a="$cs" -v b="$c0" -v x="$ws" -v y="$w0" -v n="$n" 'BEGIN { printf "%.2f", 1e6 * (b - a) / ((y - x) / 10) / n }')
echo "$wins" | tr ' ' '\n' | sort -g | awk -v n="$n" -v burst="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')" \
	-v files="$want" -v mb="$mb" -v hwm="$hwm" -v cy="$cycles" -v ov="$overruns" -v dr="$dropped" -v mean="$mean" '
	NF { a[++k] = $1 }
	END { m = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	      printf "tallyd rrd: %d domains, %d files created in %s s while metering (cycles %s, overruns %s, rows dropped %s)\n", n, files, burst, cy, ov, dr
	      printf "tallyd rrd: steady state CPU per 10 s cycle median %.1f us per domain (mean %.1f; min %.1f, max %.1f over %d windows of 60 s)\n", m, mean, a[1], a[k], k
	      printf "tallyd rrd: %.2f MB of RRD per domain, peak RSS %.1f MiB\n", mb / n, hwm / 1024 }'
if [ -n "${PEERS:-}" ]; then
	(cd "$PEERS" && ./gen-testdriver-xml.sh "$n" >/dev/null &&
		WRITERS=rrdtool SETTLE_MAX=900 ./bench-collectd.sh "$n" $((nwin * 60)) 10 |
		grep -E '^(cpu_us_per_cycle_per_domain|win_med_us|rrd_files|rrd_MB|settle_s|cpu_startup_s)[[:space:]]')
fi
